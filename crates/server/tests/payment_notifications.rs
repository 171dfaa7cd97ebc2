//! The channel's notifications received at `POST /v1/payments/channel-notifications`, on
//! SQLite and PostgreSQL, from the bank simulator in this process: its notifications are
//! caught by a small receiver and handed to Tally in the order (and as often) each story
//! needs. A duplicate is applied once, a capture notified before its authorisation and a
//! capture notified after the refund end in the one correct state, a payout confirmed late
//! finishes its withdrawal, a bad signature is refused with nothing stored, and an unknown
//! reference is stored and changes nothing.
#![allow(clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_channel::{signature_header, ChannelId, Notification, NotificationType, Reference};
use tally_core::{Amount, Clock, Currency};
use tally_store::testing::TestDatabase;

mod support;
use support::{code, send, Setup, TestApp, BANK_SECRET};

/// A notification as the bank sent it: its signature header and its bytes.
#[derive(Clone)]
struct Received {
    signature: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the bank's notifications reached: every delivery, in arrival order.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Received>>>);

async fn catch(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get(tally_channel::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    inbox.0.lock().unwrap().push(Received {
        signature,
        body: body.to_vec(),
    });
    StatusCode::OK
}

/// A receiver on a free port: its URL and what it receives.
async fn receiver() -> (String, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notifications", listener.local_addr().unwrap());
    let inbox = Inbox::default();
    let router = axum::Router::new()
        .route("/notifications", axum::routing::post(catch))
        .with_state(inbox.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, inbox)
}

struct Bank {
    app: TestApp,
    inbox: Inbox,
    writer: String,
    token: String,
}

support::deref_to_app!(Bank);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

impl Bank {
    async fn new(test: TestDatabase) -> Self {
        let (url, inbox) = receiver().await;
        // The simulator signs on the wall clock; Tally's clock starts there, within the
        // signatures' tolerance.
        let start = jiff::Timestamp::now().to_string();
        let app = TestApp::start(test, &start, Setup::default().notify(url)).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let card = app
            .bank
            .clone()
            .unwrap()
            .register_card(
                "4242424242424242",
                "12/30",
                Amount::parse("1000.00", Currency::CNY).unwrap(),
            )
            .await
            .unwrap();
        let bank = Bank {
            app,
            inbox,
            writer,
            token: card.token.as_str().to_string(),
        };
        let (status, body) = bank
            .post(
                "/v1/payments/cards",
                None,
                json!({"customer": "c1", "card_token": bank.token}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        bank
    }

    async fn post(&self, uri: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.writer, key, Some(body)).await
    }

    /// A card payment of `total`, captured at once, confirmed: its id and the answer.
    async fn pay(&self, key: &str, total: &str) -> (String, StatusCode, Value) {
        let order = json!({
            "merchant_id": "m1",
            "order_reference": key,
            "customer": "c1",
            "amount": amount(total),
            "fundings": [{"kind": "card", "card_token": self.token}],
        });
        let (status, body) = self
            .post("/v1/payments", Some(&format!("{key}:create")), order)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .post(
                &format!("/v1/payments/{id}/confirm"),
                Some(&format!("{key}:confirm")),
                json!({}),
            )
            .await;
        (id, status, body)
    }

    /// The stored status of payment `id`, read without the request that would settle it.
    async fn status(&self, id: &str) -> String {
        tally_store::with_pool!(&self.database, |pool| sqlx::query_scalar::<_, String>(
            "SELECT status FROM payments WHERE id = $1"
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap())
    }

    /// The stored outcome of notification `event_id`.
    async fn outcome(&self, event_id: &str) -> String {
        tally_store::with_pool!(&self.database, |pool| sqlx::query_scalar::<_, String>(
            "SELECT outcome FROM channel_notifications WHERE event_id = $1"
        )
        .bind(event_id)
        .fetch_one(pool)
        .await
        .unwrap())
    }

    /// The bank's notification of `kind` about payment `id`, waiting for it to arrive.
    async fn notification(&self, id: &str, kind: &str) -> Received {
        self.notification_about(&format!("payments:{id}:"), kind)
            .await
    }

    /// The bank's notification of `kind` about a reference starting with `prefix`.
    async fn notification_about(&self, prefix: &str, kind: &str) -> Received {
        for _ in 0..200 {
            let found = self.inbox.0.lock().unwrap().iter().find_map(|received| {
                let body = received.json();
                (body["type"] == kind
                    && body["reference"]
                        .as_str()
                        .is_some_and(|reference| reference.starts_with(prefix)))
                .then(|| received.clone())
            });
            if let Some(found) = found {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {kind} notification about {prefix} arrived");
    }

    /// Delivers a notification to Tally with `signature`: the status and JSON answer.
    async fn deliver(&self, signature: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method("POST")
            .uri("/v1/payments/channel-notifications")
            .header("Content-Type", "application/json");
        if let Some(signature) = signature {
            request = request.header(tally_channel::SIGNATURE_HEADER, signature);
        }
        let answer = send(
            &self.router,
            request.body(Body::from(body.to_vec())).unwrap(),
        )
        .await;
        (answer.status, answer.json())
    }

    async fn forward(&self, received: &Received) -> Value {
        let (status, body) = self
            .deliver(Some(&received.signature), &received.body)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// The card's available balance and captured total at the bank.
    async fn card(&self) -> (String, String) {
        let token = tally_channel::CardToken::new(self.token.clone()).unwrap();
        let view = self.bank.as_ref().unwrap().card(&token).await.unwrap();
        (view.available, view.captured)
    }
}

tally_store::on_both_backends!(
    setup = Bank::new;
    a_late_capture_is_applied_once_however_often_and_in_whatever_order_it_comes,
    a_capture_notified_after_the_refund_leaves_the_payment_refunded,
    a_payout_the_bank_confirms_late_finishes_the_withdrawal,
    a_bad_signature_is_refused_and_nothing_is_stored,
    an_unknown_reference_is_stored_and_changes_nothing,
);

async fn a_late_capture_is_applied_once_however_often_and_in_whatever_order_it_comes(bank: Bank) {
    // The bank captures, and its answer is lost: the payment stays in flight.
    bank.payments.as_ref().unwrap().lose_answer_of_step(2);
    let (id, status, body) = bank.pay("order-1", "120.00").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(code(&body), "payment_in_flight");
    assert_eq!(bank.status(&id).await, "authorized");
    assert_eq!(bank.card().await, ("880.00".into(), "120.00".into()));

    // The capture's notification comes before the authorisation's: it resolves the capture.
    let capture = bank.notification(&id, "capture.succeeded").await;
    let authorization = bank.notification(&id, "authorization.succeeded").await;
    let entries = bank.count("journal_entries").await;
    let answer = bank.forward(&capture).await;
    let event_id = capture.json()["event_id"].as_str().unwrap().to_string();
    assert_eq!(
        answer,
        json!({"duplicate": false, "event_id": event_id, "outcome": "applied"})
    );
    assert_eq!(bank.status(&id).await, "captured");
    assert_eq!(bank.outcome(&event_id).await, "applied");
    // The ledger side of the capture was written before the answer was lost: taken again,
    // it is not written twice.
    assert_eq!(bank.count("journal_entries").await, entries);

    // Delivered again (the bank's at-least-once): answered, and nothing changes.
    let answer = bank.forward(&capture).await;
    assert_eq!(
        answer,
        json!({"duplicate": true, "event_id": event_id, "outcome": null})
    );
    // The authorisation, late: its step was resolved long ago.
    let answer = bank.forward(&authorization).await;
    assert_eq!(answer["outcome"], "already_applied");
    assert_eq!(answer["duplicate"], false);

    assert_eq!(bank.status(&id).await, "captured");
    assert_eq!(bank.count("journal_entries").await, entries);
    assert_eq!(bank.count("channel_notifications").await, 2);
    assert_eq!(bank.card().await, ("880.00".into(), "120.00".into()));
    let (status, body) = bank
        .call(
            "GET",
            &format!("/v1/payments/{id}"),
            &bank.writer,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "captured");
    assert_eq!(body["legs"][0]["captured"], amount("120.00"));
}

async fn a_capture_notified_after_the_refund_leaves_the_payment_refunded(bank: Bank) {
    let (id, status, body) = bank.pay("order-2", "200.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "captured");
    // The bank refunds, and its answer is lost.
    bank.payments.as_ref().unwrap().lose_answer_of_step(1);
    let (status, body) = bank
        .post(
            &format!("/v1/payments/{id}/refunds"),
            Some("refund-1"),
            json!({"amount": amount("200.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(code(&body), "payment_in_flight");
    assert_eq!(bank.status(&id).await, "captured");

    // The refund's notification first, then the capture's, late.
    let refund = bank.notification(&id, "refund.succeeded").await;
    let capture = bank.notification(&id, "capture.succeeded").await;
    assert_eq!(bank.forward(&refund).await["outcome"], "applied");
    assert_eq!(bank.status(&id).await, "refunded");
    let entries = bank.count("journal_entries").await;
    assert_eq!(bank.forward(&capture).await["outcome"], "already_applied");
    assert_eq!(bank.status(&id).await, "refunded");
    assert_eq!(bank.count("journal_entries").await, entries);
    assert_eq!(bank.card().await, ("1000.00".into(), "200.00".into()));
}

async fn a_payout_the_bank_confirms_late_finishes_the_withdrawal(bank: Bank) {
    let (status, body) = bank
        .post(
            "/v1/payments/wallets/c1/top-ups",
            Some("top-up-1"),
            json!({"card_token": bank.token, "amount": amount("300.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The bank pays out, and its answer is lost.
    let control = bank.bank.as_ref().unwrap();
    let faults = |rate| tally_channel::simulator::FaultsUpdate {
        timeout_rate_ppm: Some(rate),
        ..Default::default()
    };
    control
        .set_faults(&faults(tally_channel::simulator::PartsPerMillion::ALWAYS))
        .await
        .unwrap();
    let (status, body) = bank
        .post(
            "/v1/payments/wallets/c1/withdrawals",
            Some("withdrawal-1"),
            json!({"card_token": bank.token, "amount": amount("100.00")}),
        )
        .await;
    control
        .set_faults(&faults(tally_channel::simulator::PartsPerMillion::NEVER))
        .await
        .unwrap();
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || body["status"] == "pending",
        "{status} {body}"
    );
    let pending = "SELECT COUNT(*) FROM wallet_operations \
                   WHERE kind = 'withdrawal' AND status = 'pending'";
    assert_eq!(bank.scalar(pending).await, 1);
    assert_eq!(bank.card().await.0, "800.00");

    let paid = bank.notification_about("wop_", "payout.paid").await;
    assert_eq!(bank.forward(&paid).await["outcome"], "applied");
    assert_eq!(bank.scalar(pending).await, 0);
    let succeeded = "SELECT COUNT(*) FROM wallet_operations \
                     WHERE kind = 'withdrawal' AND status = 'succeeded'";
    assert_eq!(bank.scalar(succeeded).await, 1);
    let (status, balances) = bank
        .call("GET", "/v1/payments/wallets/c1", &bank.writer, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{balances}");
    assert_eq!(balances["wallet"]["balance"]["value"], "200.00");
    assert_eq!(balances["wallet"]["held"]["value"], "0.00");
    // Late again: nothing more to do.
    assert_eq!(bank.forward(&paid).await["duplicate"], true);
}

async fn a_bad_signature_is_refused_and_nothing_is_stored(bank: Bank) {
    let (id, status, body) = bank.pay("order-3", "50.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let capture = bank.notification(&id, "capture.succeeded").await;
    let forged = signature_header(b"not-the-bank", bank.clock.now(), &capture.body);
    let mut tampered = capture.body.clone();
    tampered.extend_from_slice(b" ");
    let stale = signature_header(
        BANK_SECRET.as_bytes(),
        bank.clock.now() - jiff::SignedDuration::from_mins(10),
        &capture.body,
    );
    for (signature, body) in [
        (Some(forged.as_str()), capture.body.as_slice()),
        (Some(capture.signature.as_str()), tampered.as_slice()),
        (Some(stale.as_str()), capture.body.as_slice()),
        (Some("t=1,v2=00"), capture.body.as_slice()),
        (None, capture.body.as_slice()),
    ] {
        let (status, answer) = bank.deliver(signature, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}: {answer}");
        assert_eq!(code(&answer), "invalid_notification_signature");
    }
    assert_eq!(bank.count("channel_notifications").await, 0);
    // The genuine one still goes through afterwards.
    assert_eq!(bank.forward(&capture).await["outcome"], "already_applied");
    assert_eq!(bank.count("channel_notifications").await, 1);
}

async fn an_unknown_reference_is_stored_and_changes_nothing(bank: Bank) {
    let entries = bank.count("journal_entries").await;
    for (event_id, reference) in [
        ("evt_unknown_1", "payments:pay_nobody:1"),
        ("evt_unknown_2", "wop_0123456789abcdef:payout"),
        ("evt_unknown_3", "someone-elses-order:capture"),
    ] {
        let notification = Notification {
            event_id: event_id.into(),
            kind: NotificationType::CaptureSucceeded,
            reference: Reference::new(reference).unwrap(),
            channel_id: ChannelId::new("cap_1").unwrap(),
            amount: Amount::new(1250, Currency::CNY),
            occurred_at: bank.clock.now(),
            dispute: None,
        };
        let body = notification.to_json();
        let signature = signature_header(BANK_SECRET.as_bytes(), bank.clock.now(), &body);
        let (status, answer) = bank.deliver(Some(&signature), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"duplicate": false, "event_id": event_id, "outcome": "unknown_reference"})
        );
        assert_eq!(bank.outcome(event_id).await, "unknown_reference");
    }
    assert_eq!(bank.count("channel_notifications").await, 3);
    assert_eq!(bank.count("payments").await, 0);
    assert_eq!(bank.count("journal_entries").await, entries);
}
