//! Injected faults as the payment service meets them: declines, answers lost after the bank
//! acted, a bank that is down, latency, and a bank nobody answers for.

use crate::support::{balance, cny, config, reference, start, SECRET, VISA};
use std::time::Duration;
use tally_channel::simulator::{FaultsUpdate, PartsPerMillion};
use tally_channel::{
    refusal, AuthorizationStatus, AuthorizeRequest, CaptureRequest, ChannelError, HttpChannel,
    HttpChannelConfig, Operation,
};
use tally_core::Secret;

#[tokio::test]
async fn a_decline_rate_of_one_declines_every_authorisation() {
    let mut config = config();
    config.faults.decline_rate_ppm = PartsPerMillion::ALWAYS;
    let bank = start(config).await;
    let token = bank.card(VISA, "100.00").await;
    let request = AuthorizeRequest {
        reference: reference("order-1"),
        token: token.clone(),
        amount: cny("10.00"),
    };
    let authorization = bank.channel.authorize(&request).await.expect("an answer");
    let AuthorizationStatus::Declined { code, .. } = &authorization.status else {
        panic!("expected a decline, got {authorization:?}");
    };
    assert_eq!(code, refusal::DO_NOT_HONOR);
    assert_eq!(balance(&bank.view(&token).await, |view| &view.held), "0.00");
    // A decline is an answer the bank recorded: repeated and asked for, it is the same.
    assert_eq!(
        bank.channel.authorize(&request).await,
        Ok(authorization.clone())
    );
    let status = bank
        .channel
        .status(&request.reference)
        .await
        .expect("a status");
    assert_eq!(
        status.map(|status| status.operation),
        Some(Operation::Authorization(authorization.clone()))
    );
    let capture = bank
        .channel
        .capture(&CaptureRequest {
            reference: reference("order-1:capture"),
            channel_id: authorization.channel_id,
            amount: cny("10.00"),
        })
        .await;
    assert!(
        matches!(&capture, Err(ChannelError::Refused { code, .. }) if code == refusal::AUTHORIZATION_NOT_PENDING),
        "{capture:?}"
    );
}

/// The case the payment service must handle: no answer, yet the bank acted.
#[tokio::test]
async fn a_lost_answer_times_out_but_the_status_shows_the_bank_acted() {
    let mut config = config();
    config.faults.timeout_rate_ppm = PartsPerMillion::ALWAYS;
    config.lost_answer_delay_ms = 10_000;
    let bank = start(config).await;
    let token = bank.card(VISA, "100.00").await;
    let impatient = bank.channel_with(Duration::from_millis(300), SECRET);
    let request = AuthorizeRequest {
        reference: reference("order-2"),
        token: token.clone(),
        amount: cny("40.00"),
    };
    let error = impatient
        .authorize(&request)
        .await
        .expect_err("the answer is lost");
    assert!(matches!(error, ChannelError::Timeout(_)), "{error:?}");
    assert_eq!(error.code(), "channel_timeout");
    assert!(error.outcome_unknown());

    let status = impatient
        .status(&request.reference)
        .await
        .expect("status is answered")
        .expect("the bank acted");
    let Operation::Authorization(authorization) = status.operation else {
        panic!("expected an authorisation, got {:?}", status.operation);
    };
    assert_eq!(authorization.status, AuthorizationStatus::Authorized);
    assert_eq!(
        balance(&bank.view(&token).await, |view| &view.held),
        "40.00"
    );

    // The retry after recovery gets the same authorisation; the hold is not doubled.
    bank.control
        .set_faults(&FaultsUpdate {
            timeout_rate_ppm: Some(PartsPerMillion::NEVER),
            ..FaultsUpdate::default()
        })
        .await
        .expect("faults changed");
    let retried = impatient
        .authorize(&request)
        .await
        .expect("an answer this time");
    assert_eq!(retried, authorization);
    assert_eq!(
        balance(&bank.view(&token).await, |view| &view.held),
        "40.00"
    );
}

#[tokio::test]
async fn a_channel_that_is_down_is_unavailable_until_it_is_up() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    bank.control.down().await.expect("down");
    let request = AuthorizeRequest {
        reference: reference("order-3"),
        token: token.clone(),
        amount: cny("10.00"),
    };
    let error = bank.channel.authorize(&request).await.expect_err("down");
    assert!(
        matches!(&error, ChannelError::Unavailable(detail) if detail.contains("channel_down")),
        "{error:?}"
    );
    assert_eq!(error.code(), "channel_unavailable");
    let status = bank.channel.status(&request.reference).await;
    assert!(
        matches!(status, Err(ChannelError::Unavailable(_))),
        "{status:?}"
    );
    let card = bank.channel.card(&token).await;
    assert!(
        matches!(card, Err(ChannelError::Unavailable(_))),
        "{card:?}"
    );

    bank.control.up().await.expect("up");
    assert_eq!(bank.channel.status(&request.reference).await, Ok(None));
    let authorization = bank
        .channel
        .authorize(&request)
        .await
        .expect("an authorisation");
    assert_eq!(authorization.status, AuthorizationStatus::Authorized);
}

#[tokio::test]
async fn latency_past_the_client_timeout_is_a_timeout() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    let faults = bank
        .control
        .set_faults(&FaultsUpdate {
            latency_ms: Some(1_000),
            ..FaultsUpdate::default()
        })
        .await
        .expect("faults changed");
    assert_eq!(faults.latency_ms, 1_000);
    let impatient = bank.channel_with(Duration::from_millis(200), SECRET);
    let error = impatient.card(&token).await.expect_err("too slow");
    assert!(matches!(error, ChannelError::Timeout(_)), "{error:?}");
}

#[tokio::test]
async fn a_bank_nobody_answers_for_is_unavailable() {
    // Bind a port and close it again, so that nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    let channel = HttpChannel::new(HttpChannelConfig {
        base_url: format!("http://{address}/"),
        timeout: Duration::from_secs(2),
        secret: Secret::new(SECRET.into()),
    })
    .expect("a channel");
    use tally_channel::Channel as _;
    let error = channel
        .status(&reference("order-4"))
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, ChannelError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn faults_out_of_range_are_refused() {
    let bank = start(config()).await;
    let refused = bank
        .control
        .set_faults(&FaultsUpdate {
            latency_ms: Some(u64::MAX),
            ..FaultsUpdate::default()
        })
        .await;
    assert!(
        matches!(&refused, Err(ChannelError::Refused { code, .. }) if code == refusal::INVALID_REQUEST),
        "{refused:?}"
    );
}
