//! Signed notifications to a receiver on a local port: every one verifies, a tampered body,
//! a wrong secret and a stale timestamp are refused, duplicates share their `event_id`, and
//! a receiver that fails first still gets the event.

use crate::support::{cny, config, reference, start, SECRET, VISA};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tally_channel::simulator::PartsPerMillion;
use tally_channel::{
    verify_notification, AuthorizeRequest, CaptureRequest, NotificationError, PayoutRequest,
    RefundRequest, SIGNATURE_HEADER,
};
use tokio::sync::mpsc;

const TOLERANCE: Duration = Duration::from_secs(300);

/// One delivery as received: the signature header and the body.
type Received = (String, Bytes);

#[derive(Clone)]
struct Receiver {
    deliveries: mpsc::UnboundedSender<Received>,
    /// Deliveries answered 500 before the receiver starts accepting.
    failures_left: Arc<AtomicU32>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let failing = receiver
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let _ = receiver.deliveries.send((header, body));
    StatusCode::OK
}

/// Starts a receiver; returns its URL and the deliveries it accepts.
pub(crate) async fn start_receiver(failures: u32) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, deliveries) = mpsc::unbounded_channel();
    let receiver = Receiver {
        deliveries: sender,
        failures_left: Arc::new(AtomicU32::new(failures)),
    };
    let app = Router::new()
        .route("/notifications", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let url = format!(
        "http://{}/notifications",
        listener.local_addr().expect("an address")
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the receiver serves");
    });
    (url, deliveries)
}

async fn collect(
    deliveries: &mut mpsc::UnboundedReceiver<Received>,
    count: usize,
) -> Vec<Received> {
    let mut received = Vec::new();
    while received.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(15), deliveries.recv())
            .await
            .expect("a delivery within 15 s")
            .expect("the receiver is running");
        received.push(next);
    }
    received
}

#[tokio::test]
async fn notifications_are_signed_duplicated_under_one_event_id_and_verifiable() {
    let (url, mut deliveries) = start_receiver(0).await;
    let mut config = config();
    config.notify_url = Some(url);
    config.faults.duplicate_rate_ppm = PartsPerMillion::ALWAYS;
    config.faults.notification_delay_max_ms = 50;
    let bank = start(config).await;
    let token = bank.card(VISA, "100.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-1:authorize"),
            token: token.clone(),
            amount: cny("50.00"),
        })
        .await
        .expect("an authorisation");
    bank.channel
        .capture(&CaptureRequest {
            reference: reference("order-1:capture"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("50.00"),
        })
        .await
        .expect("a capture");
    bank.channel
        .refund(&RefundRequest {
            reference: reference("order-1:refund"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("20.00"),
        })
        .await
        .expect("a refund");
    bank.channel
        .payout(&PayoutRequest {
            reference: reference("withdrawal-1"),
            token,
            amount: cny("5.00"),
        })
        .await
        .expect("a payout");

    let received = collect(&mut deliveries, 8).await;
    let now = Timestamp::now();
    let mut by_event: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for delivery in &received {
        let (header, body) = delivery;
        let notification = verify_notification(SECRET.as_bytes(), header, body, now, TOLERANCE)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(body)));
        by_event
            .entry(notification.event_id.clone())
            .or_default()
            .push(delivery);
    }
    assert_eq!(by_event.len(), 4, "four events, each delivered twice");
    for (event_id, copies) in &by_event {
        assert_eq!(copies.len(), 2, "{event_id}");
        assert_eq!(
            copies[0].1, copies[1].1,
            "a duplicate carries the same body"
        );
    }
    let types: BTreeSet<String> = received
        .iter()
        .map(|(header, body)| {
            let notification = verify_notification(SECRET.as_bytes(), header, body, now, TOLERANCE)
                .expect("verified above");
            format!(
                "{} {} {}",
                notification.kind.as_str(),
                notification.reference,
                notification.amount
            )
        })
        .collect();
    let expected: BTreeSet<String> = [
        "authorization.succeeded order-1:authorize 50.00 CNY",
        "capture.succeeded order-1:capture 50.00 CNY",
        "refund.succeeded order-1:refund 20.00 CNY",
        "payout.paid withdrawal-1 5.00 CNY",
    ]
    .map(String::from)
    .into();
    assert_eq!(types, expected);

    let (header, body) = &received[0];
    let mut tampered = body.to_vec();
    let position = tampered
        .windows(5)
        .position(|window| window == b"50.00" || window == b"20.00" || window == b"\"5.00")
        .expect("an amount in the body");
    tampered[position] = b'9';
    assert_eq!(
        verify_notification(SECRET.as_bytes(), header, &tampered, now, TOLERANCE),
        Err(NotificationError::BadSignature)
    );
    assert_eq!(
        verify_notification(b"another-secret", header, body, now, TOLERANCE),
        Err(NotificationError::BadSignature)
    );
    let later = now
        .checked_add(SignedDuration::from_mins(10))
        .expect("a later time");
    let stale = verify_notification(SECRET.as_bytes(), header, body, later, TOLERANCE);
    assert!(
        matches!(stale, Err(NotificationError::Stale { .. })),
        "{stale:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_fails_gets_the_notification_on_a_later_attempt() {
    let (url, mut deliveries) = start_receiver(2).await;
    let mut config = config();
    config.notify_url = Some(url);
    config.notification_retry_base_ms = 20;
    let bank = start(config).await;
    let token = bank.card(VISA, "100.00").await;
    bank.channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-2"),
            token,
            amount: cny("1.00"),
        })
        .await
        .expect("an authorisation");
    let received = collect(&mut deliveries, 1).await;
    let (header, body) = &received[0];
    let notification =
        verify_notification(SECRET.as_bytes(), header, body, Timestamp::now(), TOLERANCE)
            .expect("a valid notification");
    assert_eq!(notification.reference, reference("order-2"));
}
