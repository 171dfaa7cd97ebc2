//! Tokenising, authorising, capturing, voiding, refunding, paying out and asking for status,
//! and the idempotency of every mutating call by reference.

use crate::support::{
    balance, channel_id, cny, config, reference, refusal_code, start, MASTERCARD, SECRET, VISA,
};
use std::time::Duration;
use tally_channel::simulator::CardView;
use tally_channel::{
    refusal, AuthorizationStatus, AuthorizeRequest, CaptureRequest, Operation, PayoutRequest,
    PayoutStatus, RefundRequest, RefundStatus, VoidRequest,
};
use tally_core::{Amount, Currency};

fn available(view: &CardView) -> String {
    balance(view, |view| &view.available)
}

fn held(view: &CardView) -> String {
    balance(view, |view| &view.held)
}

#[tokio::test]
async fn a_card_number_becomes_a_token_with_a_stable_fingerprint() {
    let bank = start(config()).await;
    let first = bank.card(VISA, "1000.00").await;
    let second = bank.card(VISA, "1.00").await;
    let other = bank.card(MASTERCARD, "10.00").await;
    assert_ne!(first, second, "every registration gives a new token");

    let details = bank.channel.card(&first).await.expect("card details");
    assert_eq!(details.token, first);
    assert_eq!(details.last_four, "4242");
    assert_eq!(details.brand, "visa");
    let again = bank.channel.card(&second).await.expect("card details");
    assert_eq!(
        again.fingerprint, details.fingerprint,
        "same card, same fingerprint"
    );
    let different = bank.channel.card(&other).await.expect("card details");
    assert_ne!(different.fingerprint, details.fingerprint);
    assert_eq!(different.brand, "mastercard");

    // One card, one balance, whatever token reaches it.
    assert_eq!(available(&bank.view(&second).await), "1000.00");

    let unknown = tally_channel::CardToken::new("tok_unknown").expect("a token");
    assert_eq!(
        refusal_code(bank.channel.card(&unknown).await),
        refusal::CARD_NOT_FOUND
    );
    let refused = bank
        .control
        .register_card("4242424242424241", "12/35", cny("1.00"))
        .await;
    assert_eq!(refusal_code(refused), refusal::INVALID_CARD_NUMBER);
}

#[tokio::test]
async fn a_partial_capture_releases_the_rest_of_the_hold() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "1000.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-1:authorize"),
            token: token.clone(),
            amount: cny("100.00"),
        })
        .await
        .expect("an answer");
    assert_eq!(authorization.status, AuthorizationStatus::Authorized);
    assert_eq!(authorization.amount, cny("100.00"));
    let view = bank.view(&token).await;
    assert_eq!(
        (available(&view).as_str(), held(&view).as_str()),
        ("900.00", "100.00")
    );

    let capture = bank
        .channel
        .capture(&CaptureRequest {
            reference: reference("order-1:capture"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("60.00"),
        })
        .await
        .expect("a capture");
    assert_eq!(capture.authorization_id, authorization.channel_id);
    assert_eq!(
        (capture.captured, capture.released),
        (cny("60.00"), cny("40.00"))
    );
    let view = bank.view(&token).await;
    assert_eq!(available(&view), "940.00");
    assert_eq!(held(&view), "0.00");
    assert_eq!(balance(&view, |view| &view.captured), "60.00");

    let twice = bank
        .channel
        .capture(&CaptureRequest {
            reference: reference("order-1:capture-again"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("1.00"),
        })
        .await;
    assert_eq!(refusal_code(twice), refusal::AUTHORIZATION_NOT_PENDING);
}

#[tokio::test]
async fn a_capture_above_the_authorised_amount_is_refused_and_changes_nothing() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "1000.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-2:authorize"),
            token: token.clone(),
            amount: cny("100.00"),
        })
        .await
        .expect("an authorisation");
    let over = CaptureRequest {
        reference: reference("order-2:capture"),
        channel_id: authorization.channel_id.clone(),
        amount: cny("100.01"),
    };
    let refused = bank.channel.capture(&over).await;
    assert_eq!(refusal_code(refused), refusal::CAPTURE_EXCEEDS_AUTHORIZED);
    assert_eq!(held(&bank.view(&token).await), "100.00");
    // A refusal is not recorded: the reference is free for the corrected request.
    assert_eq!(
        bank.channel
            .status(&over.reference)
            .await
            .expect("a status"),
        None
    );
    let corrected = CaptureRequest {
        amount: cny("100.00"),
        ..over
    };
    let capture = bank.channel.capture(&corrected).await.expect("a capture");
    assert_eq!(capture.released, cny("0.00"));
}

#[tokio::test]
async fn a_void_gives_the_whole_hold_back() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "200.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-3:authorize"),
            token: token.clone(),
            amount: cny("50.00"),
        })
        .await
        .expect("an authorisation");
    let void = bank
        .channel
        .void(&VoidRequest {
            reference: reference("order-3:void"),
            channel_id: authorization.channel_id.clone(),
        })
        .await
        .expect("a void");
    assert_eq!(void.released, cny("50.00"));
    assert_eq!(void.authorization_id, authorization.channel_id);
    let view = bank.view(&token).await;
    assert_eq!(
        (available(&view).as_str(), held(&view).as_str()),
        ("200.00", "0.00")
    );
    let capture = bank
        .channel
        .capture(&CaptureRequest {
            reference: reference("order-3:capture"),
            channel_id: authorization.channel_id,
            amount: cny("1.00"),
        })
        .await;
    assert_eq!(refusal_code(capture), refusal::AUTHORIZATION_NOT_PENDING);
}

#[tokio::test]
async fn refunds_add_up_to_the_captured_amount_and_no_further() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "500.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-4:authorize"),
            token: token.clone(),
            amount: cny("100.00"),
        })
        .await
        .expect("an authorisation");
    let authorization_id = authorization.channel_id;
    let refund = |name: &str, amount: &str| RefundRequest {
        reference: reference(name),
        channel_id: authorization_id.clone(),
        amount: cny(amount),
    };
    let early = bank
        .channel
        .refund(&refund("order-4:refund-0", "1.00"))
        .await;
    assert_eq!(refusal_code(early), refusal::AUTHORIZATION_NOT_CAPTURED);
    bank.channel
        .capture(&CaptureRequest {
            reference: reference("order-4:capture"),
            channel_id: authorization_id.clone(),
            amount: cny("80.00"),
        })
        .await
        .expect("a capture");

    let too_much = bank
        .channel
        .refund(&refund("order-4:refund-1", "80.01"))
        .await;
    assert_eq!(refusal_code(too_much), refusal::REFUND_EXCEEDS_CAPTURED);
    let first = bank
        .channel
        .refund(&refund("order-4:refund-1", "30.00"))
        .await
        .expect("a refund");
    assert_eq!(first.status, RefundStatus::Succeeded);
    assert_eq!(first.authorization_id, authorization_id);
    let second = bank
        .channel
        .refund(&refund("order-4:refund-2", "50.00"))
        .await
        .expect("a refund");
    assert_ne!(first.channel_id, second.channel_id);
    let third = bank
        .channel
        .refund(&refund("order-4:refund-3", "0.01"))
        .await;
    assert_eq!(refusal_code(third), refusal::REFUND_EXCEEDS_CAPTURED);

    let view = bank.view(&token).await;
    assert_eq!(available(&view), "500.00");
    assert_eq!(balance(&view, |view| &view.refunded), "80.00");
}

#[tokio::test]
async fn a_payout_adds_to_the_card() {
    let bank = start(config()).await;
    let token = bank.card(MASTERCARD, "10.00").await;
    let payout = bank
        .channel
        .payout(&PayoutRequest {
            reference: reference("withdrawal-1"),
            token: token.clone(),
            amount: cny("25.50"),
        })
        .await
        .expect("a payout");
    assert_eq!(payout.status, PayoutStatus::Paid);
    let view = bank.view(&token).await;
    assert_eq!(available(&view), "35.50");
    assert_eq!(balance(&view, |view| &view.paid_out), "25.50");
}

#[tokio::test]
async fn status_tells_what_the_bank_did_under_a_reference() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    let request = AuthorizeRequest {
        reference: reference("order-5/authorize?#%"),
        token: token.clone(),
        amount: cny("10.00"),
    };
    assert_eq!(
        bank.channel
            .status(&request.reference)
            .await
            .expect("a status"),
        None
    );
    let authorization = bank
        .channel
        .authorize(&request)
        .await
        .expect("an authorisation");
    let status = bank
        .channel
        .status(&request.reference)
        .await
        .expect("a status")
        .expect("the bank acted");
    assert_eq!(status.reference, request.reference);
    assert_eq!(status.operation, Operation::Authorization(authorization));

    let short = AuthorizeRequest {
        reference: reference("order-6:authorize"),
        token,
        amount: cny("1000.00"),
    };
    let refused = bank.channel.authorize(&short).await;
    assert_eq!(refusal_code(refused), refusal::INSUFFICIENT_FUNDS);
    assert_eq!(
        bank.channel
            .status(&short.reference)
            .await
            .expect("a status"),
        None
    );
}

#[tokio::test]
async fn a_repeated_reference_gets_the_first_answer_and_the_bank_acts_once() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    let request = AuthorizeRequest {
        reference: reference("order-7:authorize"),
        token: token.clone(),
        amount: cny("30.00"),
    };
    let first = bank
        .channel
        .authorize(&request)
        .await
        .expect("an authorisation");
    let second = bank
        .channel
        .authorize(&request)
        .await
        .expect("the same answer");
    assert_eq!(first, second);
    assert_eq!(held(&bank.view(&token).await), "30.00");

    let capture = CaptureRequest {
        reference: reference("order-7:capture"),
        channel_id: first.channel_id.clone(),
        amount: cny("30.00"),
    };
    let captured = bank.channel.capture(&capture).await.expect("a capture");
    assert_eq!(bank.channel.capture(&capture).await, Ok(captured));
    let payout = PayoutRequest {
        reference: reference("order-7:payout"),
        token: token.clone(),
        amount: cny("5.00"),
    };
    let paid = bank.channel.payout(&payout).await.expect("a payout");
    assert_eq!(bank.channel.payout(&payout).await, Ok(paid));
    let view = bank.view(&token).await;
    assert_eq!(balance(&view, |view| &view.captured), "30.00");
    assert_eq!(balance(&view, |view| &view.paid_out), "5.00");
    assert_eq!(available(&view), "75.00");
}

#[tokio::test]
async fn a_reference_used_for_another_request_is_refused() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    let request = AuthorizeRequest {
        reference: reference("order-8"),
        token: token.clone(),
        amount: cny("10.00"),
    };
    let authorization = bank
        .channel
        .authorize(&request)
        .await
        .expect("an authorisation");
    let other_amount = AuthorizeRequest {
        amount: cny("10.01"),
        ..request.clone()
    };
    let refused = bank.channel.authorize(&other_amount).await;
    assert_eq!(refusal_code(refused), refusal::REFERENCE_REUSED);
    // References are shared by every kind of operation.
    let void = bank
        .channel
        .void(&VoidRequest {
            reference: request.reference.clone(),
            channel_id: authorization.channel_id,
        })
        .await;
    assert_eq!(refusal_code(void), refusal::REFERENCE_REUSED);
    assert_eq!(held(&bank.view(&token).await), "10.00");
}

#[tokio::test]
async fn malformed_requests_are_refused_without_effect() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    let authorize = |amount: Amount| AuthorizeRequest {
        reference: reference("order-9"),
        token: token.clone(),
        amount,
    };
    let zero = bank.channel.authorize(&authorize(cny("0"))).await;
    assert_eq!(refusal_code(zero), refusal::INVALID_REQUEST);
    let dollars = bank
        .channel
        .authorize(&authorize(Amount::new(100, Currency::USD)))
        .await;
    assert_eq!(refusal_code(dollars), refusal::CURRENCY_MISMATCH);
    let missing = bank
        .channel
        .capture(&CaptureRequest {
            reference: reference("order-9:capture"),
            channel_id: channel_id("auth_missing"),
            amount: cny("1.00"),
        })
        .await;
    assert_eq!(refusal_code(missing), refusal::AUTHORIZATION_NOT_FOUND);
    assert_eq!(available(&bank.view(&token).await), "100.00");
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let bank = start(config()).await;
    let token = bank.card(VISA, "100.00").await;
    let intruder = bank.channel_with(Duration::from_secs(5), "not-the-secret");
    let refused = intruder.card(&token).await;
    assert_eq!(refusal_code(refused), refusal::UNAUTHORIZED);
    assert_ne!(SECRET, "not-the-secret");
}

#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_ids() {
    let mut answers = Vec::new();
    for _ in 0..2 {
        let bank = start(config()).await;
        let token = bank.card(VISA, "100.00").await;
        let authorization = bank
            .channel
            .authorize(&AuthorizeRequest {
                reference: reference("order-10"),
                token: token.clone(),
                amount: cny("10.00"),
            })
            .await
            .expect("an authorisation");
        answers.push((token, authorization));
    }
    assert_eq!(answers[0], answers[1]);
}

/// Waits until the payout under `name` is no longer pending, and returns its state.
async fn settled_payout(bank: &crate::support::Bank, name: &str) -> tally_channel::Payout {
    for _ in 0..100 {
        let status = bank
            .channel
            .status(&reference(name))
            .await
            .expect("a status")
            .expect("the payout is known");
        let Operation::Payout(payout) = status.operation else {
            panic!("expected a payout, got {:?}", status.operation);
        };
        if payout.status != PayoutStatus::Pending {
            return payout;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("payout {name} still pending after 2 s");
}

#[tokio::test]
async fn a_slow_payout_answers_pending_then_is_paid_or_returned() {
    let mut config = config();
    config.payout_settle_ms = 50;
    let bank = start(config).await;
    let token = bank.card(VISA, "10.00").await;
    let request = PayoutRequest {
        reference: reference("withdrawal-2"),
        token: token.clone(),
        amount: cny("5.00"),
    };
    let pending = bank.channel.payout(&request).await.expect("a payout");
    assert_eq!(pending.status, PayoutStatus::Pending);
    let paid = settled_payout(&bank, "withdrawal-2").await;
    assert_eq!(paid.status, PayoutStatus::Paid);
    assert_eq!(paid.channel_id, pending.channel_id);
    // A repetition gets the first answer; the status is the current state.
    assert_eq!(bank.channel.payout(&request).await, Ok(pending));
    assert_eq!(
        balance(&bank.view(&token).await, |view| &view.paid_out),
        "5.00"
    );

    bank.control
        .set_faults(&tally_channel::simulator::FaultsUpdate {
            payout_return_rate_ppm: Some(tally_channel::simulator::PartsPerMillion::ALWAYS),
            ..Default::default()
        })
        .await
        .expect("faults changed");
    bank.channel
        .payout(&PayoutRequest {
            reference: reference("withdrawal-3"),
            ..request
        })
        .await
        .expect("a payout");
    let returned = settled_payout(&bank, "withdrawal-3").await;
    assert_eq!(
        returned.status,
        PayoutStatus::Returned {
            code: tally_channel::simulator::ACCOUNT_CLOSED.into()
        }
    );
    let view = bank.view(&token).await;
    assert_eq!(
        balance(&view, |view| &view.paid_out),
        "5.00",
        "a returned payout adds nothing"
    );
    assert_eq!(available(&view), "15.00");
}
