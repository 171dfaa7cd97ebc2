//! Disputes (chargebacks) in process on SQLite and PostgreSQL, raised and decided by the
//! bank simulator: its signed notifications are caught and handed to Tally (re-signed at
//! Tally's clock, the body as the bank sent it, as a redelivery would be).
//!
//! The story: two card payments settled with a reserve held; a dispute taken from the
//! merchant's available balance, another that empties available and reserve and leaves
//! pending negative; evidence; one won (returned), one accepted and lost (the bank's fee
//! charged); the next statement shows the disputes and its net adds up; the books balance
//! after every step. And every refusal: an unknown dispute, evidence after the deadline,
//! evidence on a closed dispute, a dispute above the captured card leg, a decision the
//! other way round, a list for an unknown merchant or status.
#![allow(clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use jiff::Timestamp;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_channel::{signature_header, Reference};
use tally_core::{Amount, Clock, Currency};
use tally_store::testing::TestDatabase;

mod support;
use support::{code, privacy, send, Setup, TestApp, BANK_SECRET};

/// Every notification body the bank sent, in arrival order.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Vec<u8>>>>);

async fn catch(State(inbox): State<Inbox>, _headers: HeaderMap, body: Bytes) -> StatusCode {
    inbox.0.lock().unwrap().push(body.to_vec());
    StatusCode::OK
}

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

const MERCHANT: &str = "shop-d";

struct Shop {
    app: TestApp,
    inbox: Inbox,
    writer: String,
    reader: String,
    admin: String,
    token: String,
}

support::deref_to_app!(Shop);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, expected: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(code(&answer.1), expected, "{}", answer.1);
}

impl Shop {
    async fn new(test: TestDatabase) -> Self {
        let (url, inbox) = receiver().await;
        // Monday 2026-05-04, 09:00 UTC.
        let setup = Setup::default().privacy(privacy()).notify(url);
        let app = TestApp::start(test, "2026-05-04T09:00:00Z", setup).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let reader = app.key("reader", &["payments:read"]).await;
        let admin = app.key("operator", &["admin"]).await;
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
        let shop = Shop {
            app,
            inbox,
            writer,
            reader,
            admin,
            token: card.token.as_str().to_string(),
        };
        let (status, body) = shop
            .post(
                "/v1/payments/cards",
                json!({"customer": "c1", "card_token": shop.token}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = shop
            .post(
                "/v1/merchants",
                json!({
                    "id": MERCHANT,
                    "legal_name": "Dispute Test Trading Co.",
                    "licence_number": "91310000DISPUTE1",
                    "bank_account": "6222021234567890",
                    "category_code": "5411",
                    "time_zone": "UTC",
                    "currency": "CNY",
                    "fee_schedule": {"rounding": "half_up", "fees": {"card": {"rate": "0.02"}}},
                    "settlement": {"delay_days": 0, "reserve_basis_points": 1000, "reserve_hold_days": 30}
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        shop
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        let key = format!("{uri}:{body}");
        let key = format!("k{:x}", {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut hasher);
            hasher.finish()
        });
        self.call("POST", uri, &self.writer, Some(&key), Some(body))
            .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &self.reader, None, None).await
    }

    /// A card payment of `total` to the merchant, captured at once: its id.
    async fn pay(&self, order: &str, total: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/payments",
                json!({
                    "merchant_id": MERCHANT,
                    "order_reference": order,
                    "customer": "c1",
                    "amount": amount(total),
                    "fundings": [{"kind": "card", "card_token": self.token}],
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .post(&format!("/v1/payments/{id}/confirm"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "captured", "{body}");
        id
    }

    /// The bank's notification of `kind` whose `field` is `value`, waiting for it.
    async fn notification(&self, kind: &str, field: &str, value: &str) -> Value {
        for _ in 0..200 {
            let found = self.inbox.0.lock().unwrap().iter().find_map(|body| {
                let body: Value = serde_json::from_slice(body).unwrap();
                let matches = body["type"] == kind
                    && body[field]
                        .as_str()
                        .is_some_and(|text| text.starts_with(value));
                matches.then_some(body)
            });
            if let Some(found) = found {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {kind} notification with {field} {value} arrived");
    }

    /// The reference of payment `id`'s capture at the bank.
    async fn capture_reference(&self, id: &str) -> Reference {
        let capture = self
            .notification("capture.succeeded", "reference", &format!("payments:{id}:"))
            .await;
        Reference::new(capture["reference"].as_str().unwrap()).unwrap()
    }

    /// Hands `body` to Tally, signed now by the bank's secret.
    async fn deliver(&self, body: &Value) -> (StatusCode, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let signature = signature_header(BANK_SECRET.as_bytes(), self.clock.now(), &bytes);
        let request = Request::builder()
            .method("POST")
            .uri("/v1/payments/channel-notifications")
            .header("Content-Type", "application/json")
            .header(tally_channel::SIGNATURE_HEADER, signature)
            .body(Body::from(bytes))
            .unwrap();
        let answer = send(&self.router, request).await;
        (answer.status, answer.json())
    }

    /// Raises a dispute at the bank and hands its `dispute.opened` to Tally: the
    /// notification and Tally's dispute.
    async fn dispute(&self, payment: &str, disputed: &str) -> (Value, Value) {
        let reference = self.capture_reference(payment).await;
        let due_by = self
            .clock
            .now()
            .checked_add(jiff::SignedDuration::from_hours(7 * 24))
            .unwrap();
        let raised = self
            .bank
            .as_ref()
            .unwrap()
            .raise_dispute(
                &reference,
                Amount::parse(disputed, Currency::CNY).unwrap(),
                "13.1",
                due_by,
            )
            .await
            .unwrap();
        let opened = self
            .notification("dispute.opened", "channel_id", raised.dispute_id.as_str())
            .await;
        let (status, receipt) = self.deliver(&opened).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["outcome"], "applied", "{receipt}");
        let (_, list) = self
            .get(&format!("/v1/disputes?merchant_id={MERCHANT}"))
            .await;
        let dispute = list["disputes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|dispute| dispute["channel_dispute_id"] == raised.dispute_id.as_str())
            .unwrap()
            .clone();
        (opened, dispute)
    }

    /// Has the bank decide `dispute` and hands the decision to Tally.
    async fn decide(&self, dispute: &Value, outcome: &str) -> Value {
        let channel_id = dispute["channel_dispute_id"].as_str().unwrap();
        self.bank
            .as_ref()
            .unwrap()
            .decide_dispute(channel_id, outcome)
            .await
            .unwrap();
        let decided = self
            .notification(&format!("dispute.{outcome}"), "channel_id", channel_id)
            .await;
        let (status, receipt) = self.deliver(&decided).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["outcome"], "applied", "{receipt}");
        decided
    }

    /// The merchant's `balance` (credits less debits), in minor units.
    async fn balance(&self, balance: &str) -> i64 {
        self.scalar(&format!(
            "SELECT b.credits_posted - b.debits_posted FROM accounts a \
             JOIN account_balances b ON b.account_id = a.id \
             WHERE a.code = 'payments-merchant-{MERCHANT}-{balance}-CNY'"
        ))
        .await
    }

    /// Pending, available and reserve, in minor units.
    async fn balances(&self) -> (i64, i64, i64) {
        (
            self.balance("pending").await,
            self.balance("available").await,
            self.balance("reserve").await,
        )
    }

    async fn unreleased_reserves(&self) -> i64 {
        self.scalar(&format!(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM merchant_reserves \
             WHERE merchant_id = '{MERCHANT}' AND released_on IS NULL"
        ))
        .await
    }

    /// Every currency's debits equal its credits, posted and pending.
    async fn assert_books_balance(&self) {
        for totals in self.database.currency_totals().await.unwrap() {
            assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
            assert_eq!(totals.debits_pending, totals.credits_pending, "{totals:?}");
        }
    }

    async fn settle(&self, date: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/v1/settlement/runs",
                &self.admin,
                None,
                Some(json!({"business_date": date})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self
            .get(&format!(
                "/v1/settlement/runs/{date}/statements?merchant_id={MERCHANT}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["statements"][0].clone()
    }

    fn set_now(&self, at: &str) {
        let at: Timestamp = at.parse().unwrap();
        self.clock.set(at);
    }

    async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }
}

fn minor(value: &Value) -> i64 {
    Amount::parse(value["value"].as_str().unwrap(), Currency::CNY)
        .unwrap()
        .minor()
}

async fn a_dispute_story_from_opening_to_won_and_lost(shop: Shop) {
    // Monday: two card payments, 2 % fee each, captured into pending net of the fee.
    let first = shop.pay("order-1", "100.00").await;
    let second = shop.pay("order-2", "200.00").await;
    assert_eq!(shop.balances().await, (29_400, 0, 0));
    shop.assert_books_balance().await;

    // Tuesday: Monday is settled T+0, 10 % held in reserve.
    shop.set_now("2026-05-05T01:00:00Z");
    let monday = shop.settle("2026-05-04").await;
    assert_eq!(monday["net"], amount("264.60"), "{monday}");
    assert_eq!(monday["disputes"], amount("0.00"));
    assert_eq!(shop.balances().await, (0, 26_460, 2_940));
    assert_eq!(shop.unreleased_reserves().await, 2_940);
    shop.assert_books_balance().await;

    // The cardholder disputes the first payment whole: nothing pending, so available gives.
    shop.set_now("2026-05-05T09:00:00Z");
    let (opened, first_dispute) = shop.dispute(&first, "100.00").await;
    assert_eq!(first_dispute["status"], "opened");
    assert_eq!(first_dispute["payment_id"], first.as_str());
    assert_eq!(first_dispute["amount"], amount("100.00"));
    assert_eq!(first_dispute["reason_code"], "13.1");
    assert_eq!(first_dispute["taken_from"]["pending"], amount("0.00"));
    assert_eq!(first_dispute["taken_from"]["available"], amount("100.00"));
    assert_eq!(first_dispute["taken_from"]["reserve"], amount("0.00"));
    assert_eq!(shop.balances().await, (0, 16_460, 2_940));
    shop.assert_books_balance().await;

    // Redelivered, the same notification moves nothing again.
    let entries = shop.count("journal_entries").await;
    let (status, receipt) = shop.deliver(&opened).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["duplicate"], true);
    assert_eq!(shop.count("journal_entries").await, entries);
    assert_eq!(shop.count("disputes").await, 1);

    // The second payment disputed whole: available, then the reserve, then pending below 0.
    let (_, second_dispute) = shop.dispute(&second, "200.00").await;
    assert_eq!(second_dispute["taken_from"]["available"], amount("164.60"));
    assert_eq!(second_dispute["taken_from"]["reserve"], amount("29.40"));
    assert_eq!(second_dispute["taken_from"]["pending"], amount("6.00"));
    assert_eq!(shop.balances().await, (-600, 0, 0));
    // The reserve given up is gone from the reserves a later run releases.
    assert_eq!(shop.unreleased_reserves().await, 0);
    shop.assert_books_balance().await;

    // Evidence for the first, then the bank decides it for the merchant: returned.
    let first_id = first_dispute["id"].as_str().unwrap();
    let (status, answered) = shop
        .post(
            &format!("/v1/disputes/{first_id}/evidence"),
            json!({"evidence": "delivered 2026-05-02, signed by the cardholder: tracking 1Z999AA10123456784"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["status"], "evidence_submitted");
    assert!(answered["evidence"]
        .as_str()
        .unwrap()
        .contains("1Z999AA10123456784"));
    let won = shop.decide(&first_dispute, "won").await;
    assert_eq!(shop.balances().await, (9_400, 0, 0));
    shop.assert_books_balance().await;
    let (_, read) = shop.get(&format!("/v1/disputes/{first_id}")).await;
    assert_eq!(read["status"], "won");
    assert_eq!(read["fee"], amount("0.00"));
    // The decision redelivered moves nothing.
    let entries = shop.count("journal_entries").await;
    let (status, receipt) = shop.deliver(&won).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["duplicate"], true);
    assert_eq!(shop.count("journal_entries").await, entries);

    // The merchant accepts the second; the bank decides it lost, with its 15.00 fee.
    let second_id = second_dispute["id"].as_str().unwrap();
    let (status, accepted) = shop
        .post(&format!("/v1/disputes/{second_id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    shop.decide(&second_dispute, "lost").await;
    let (_, read) = shop.get(&format!("/v1/disputes/{second_id}")).await;
    assert_eq!(read["status"], "lost");
    assert_eq!(read["fee"], amount("15.00"));
    assert_eq!(shop.balances().await, (7_900, 0, 0));
    shop.assert_books_balance().await;

    // Lists by merchant and by status.
    let (_, all) = shop
        .get(&format!("/v1/disputes?merchant_id={MERCHANT}"))
        .await;
    assert_eq!(all["disputes"].as_array().unwrap().len(), 2);
    let (_, lost) = shop.get("/v1/disputes?status=lost").await;
    let lost = lost["disputes"].as_array().unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["id"], second_id);

    // Wednesday: Tuesday's statement counts every dispute movement of the day — 100.00
    // and 164.60 taken from available, 29.40 from the reserve, 6.00 from pending, 100.00
    // returned, the 15.00 fee: 215.00 — and shows the part that went through pending (6.00
    // taken, 100.00 returned, the fee: −79.00); gross − fees − refunds − that part is what
    // was due, of which 10 % is held.
    shop.set_now("2026-05-06T01:00:00Z");
    let tuesday = shop.settle("2026-05-05").await;
    assert_eq!(tuesday["disputes"], amount("215.00"), "{tuesday}");
    assert_eq!(
        tuesday["disputes_through_pending"],
        amount("-79.00"),
        "{tuesday}"
    );
    let due = minor(&tuesday["gross"])
        - minor(&tuesday["fees"])
        - minor(&tuesday["refunds"])
        - minor(&tuesday["disputes_through_pending"]);
    assert_eq!(due, 7_900);
    assert_eq!(
        minor(&tuesday["net"]),
        due - minor(&tuesday["reserve_held"]) + minor(&tuesday["reserve_released"])
    );
    assert_eq!(tuesday["net"], amount("71.10"));
    assert_eq!(shop.balances().await, (0, 7_110, 790));
    shop.assert_books_balance().await;
    let (status, csv) = shop
        .get("/v1/settlement/runs/2026-05-05/statements.csv")
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = csv.as_str().unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",carried,disputes,disputes_through_pending"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|line| line.contains(MERCHANT) && line.ends_with(",false,215.00,-79.00")),
        "{csv}"
    );
}

async fn every_refusal_of_the_dispute_routes(shop: Shop) {
    let first = shop.pay("order-1", "100.00").await;
    let (opened, dispute) = shop.dispute(&first, "60.00").await;
    let id = dispute["id"].as_str().unwrap();

    // Unknown dispute.
    refused(
        &shop.get("/v1/disputes/dsp_nobody").await,
        StatusCode::NOT_FOUND,
        "dispute_not_found",
    );
    refused(
        &shop
            .post("/v1/disputes/dsp_nobody/evidence", json!({"evidence": "x"}))
            .await,
        StatusCode::NOT_FOUND,
        "dispute_not_found",
    );
    refused(
        &shop.post("/v1/disputes/dsp_nobody/accept", json!({})).await,
        StatusCode::NOT_FOUND,
        "dispute_not_found",
    );
    // Blank evidence, and a list for an unknown merchant, status or page size.
    refused(
        &shop
            .post(
                &format!("/v1/disputes/{id}/evidence"),
                json!({"evidence": "  "}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_evidence",
    );
    refused(
        &shop.get("/v1/disputes?merchant_id=nobody").await,
        StatusCode::NOT_FOUND,
        "merchant_not_found",
    );
    refused(
        &shop.get("/v1/disputes?status=pending").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    refused(
        &shop.get("/v1/disputes?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );

    // A dispute above what is left of the captured card leg (100.00, 60.00 disputed): the
    // bank itself refuses it, and a notification claiming it is refused with nothing
    // stored.
    let reference = shop.capture_reference(&first).await;
    let bank = shop.bank.as_ref().unwrap();
    let too_much = bank
        .raise_dispute(
            &reference,
            Amount::parse("40.01", Currency::CNY).unwrap(),
            "10.4",
            shop.clock.now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&too_much, tally_channel::ChannelError::Refused { code, .. } if code == "dispute_exceeds_captured"),
        "{too_much:?}"
    );
    let mut forged = opened.clone();
    forged["event_id"] = json!("evt_forged_1");
    forged["channel_id"] = json!("dsp_forged_1");
    forged["amount"] = json!("40.01");
    let (notifications, disputes, entries) = (
        shop.count("channel_notifications").await,
        shop.count("disputes").await,
        shop.count("journal_entries").await,
    );
    refused(
        &shop.deliver(&forged).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "dispute_exceeds_captured",
    );
    assert_eq!(shop.count("channel_notifications").await, notifications);
    assert_eq!(shop.count("disputes").await, disputes);
    assert_eq!(shop.count("journal_entries").await, entries);
    // 40.00 is what is left: a second dispute of it is taken.
    forged["amount"] = json!("40.00");
    let (status, receipt) = shop.deliver(&forged).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["outcome"], "applied");

    // Evidence after the deadline (seven days on).
    shop.set_now("2026-05-11T09:00:01Z");
    refused(
        &shop
            .post(
                &format!("/v1/disputes/{id}/evidence"),
                json!({"evidence": "receipt 42"}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "dispute_evidence_deadline_passed",
    );

    // Decided: evidence and acceptance are refused, and a decision the other way too.
    let lost = shop.decide(&dispute, "lost").await;
    refused(
        &shop
            .post(
                &format!("/v1/disputes/{id}/evidence"),
                json!({"evidence": "receipt 42"}),
            )
            .await,
        StatusCode::CONFLICT,
        "dispute_closed",
    );
    refused(
        &shop
            .post(&format!("/v1/disputes/{id}/accept"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "dispute_closed",
    );
    let mut contrary = lost.clone();
    contrary["event_id"] = json!("evt_contrary_1");
    contrary["type"] = json!("dispute.won");
    refused(
        &shop.deliver(&contrary).await,
        StatusCode::CONFLICT,
        "dispute_decided_other_way",
    );
    // An accepted dispute takes no evidence either.
    let forged_id = {
        let (_, list) = shop.get("/v1/disputes?status=opened").await;
        list["disputes"][0]["id"].as_str().unwrap().to_string()
    };
    let (status, _) = shop
        .post(&format!("/v1/disputes/{forged_id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    refused(
        &shop
            .post(
                &format!("/v1/disputes/{forged_id}/evidence"),
                json!({"evidence": "too late to contest"}),
            )
            .await,
        StatusCode::CONFLICT,
        "dispute_closed",
    );
    shop.assert_books_balance().await;
}

tally_store::on_both_backends!(
    setup = Shop::new;
    a_dispute_story_from_opening_to_won_and_lost,
    every_refusal_of_the_dispute_routes,
);
