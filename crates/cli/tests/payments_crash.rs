//! Crash test of combined checkout: a real bank simulator process and a real `tally serve`,
//! driven by the shared crash driver. Orders are paid from the wallet and a card: captured
//! at once, or authorised and then captured in whole or in part, or cancelled; some are
//! refunded in part or in whole, some declined. Concurrent clients confirm every payment,
//! each request under its idempotency key, and the server is killed with SIGKILL mid-load,
//! restarted on the same database, and every confirm sent again with its key; then the same
//! for the captures, cancels and refunds. Then: each payment ended once, where its story
//! says (no step pending, no leg still reserved, no refund unfinished, no ledger hold left);
//! each request acknowledged before a crash answers the same after it; each change
//! announced to merchants' webhooks once; the books balance;
//! each wallet holds what its payments say; and the bank's view of each card (captured,
//! refunded, held) agrees with Tally's legs. Runs on SQLite and on PostgreSQL
//! (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_channel::CardToken;
use tally_store::Database;

mod support;
use support::crash::{assert_books_balance, crash_tests, kill_mid_load_and_retry, Load, Served};
use support::{free_port, scalar, BINARY};

mod bank;
use bank::Bank;

/// Customers who pay; each has a card and a wallet topped up from it.
const CUSTOMERS: usize = 6;
/// A customer whose wallet holds too little: their payments are declined.
const POOR: usize = CUSTOMERS;
const PAYMENTS: usize = 120;
const CLIENTS: usize = 8;
/// What each customer's wallet is topped up with before the load, in fen (the poor one: 1.00).
const TOP_UP: i64 = 500_000;
const POOR_TOP_UP: i64 = 100;
/// The wallet's part of every payment, in fen; the card pays the rest.
const WALLET_PART: i64 = 3_000;
/// Added by the bank to every answer, so that a kill mostly finds card steps at the bank
/// (written as pending in the intent log, their outcome not yet known).
const BANK_LATENCY_MS: u64 = 10;

fn cny(minor: i64) -> Value {
    json!({"value": format!("{}.{:02}", minor / 100, minor % 100), "currency": "CNY"})
}

fn fen_of(text: &str) -> i64 {
    text.replace('.', "").parse().unwrap()
}

fn fen(value: &Value) -> i64 {
    fen_of(value["value"].as_str().unwrap())
}

fn customer(index: usize) -> String {
    format!("shopper-{index}")
}

/// What happens to payment `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Captured at confirmation.
    Automatic,
    /// Authorised, then captured whole.
    ManualCapture,
    /// Authorised, then captured all but 20.00 (the rest released).
    PartialCapture,
    /// Captured at confirmation, then 25.00 refunded (to the card first).
    PartialRefund,
    /// Authorised, then cancelled.
    Cancel,
    /// Captured at confirmation, then refunded whole, pro rata.
    FullRefund,
    /// The wallet holds too little: confirmation declines it.
    Declined,
}

fn story(index: usize) -> Story {
    if index % 12 == 11 {
        return Story::Declined;
    }
    match index % 6 {
        0 => Story::Automatic,
        1 => Story::ManualCapture,
        2 => Story::PartialCapture,
        3 => Story::PartialRefund,
        4 => Story::Cancel,
        _ => Story::FullRefund,
    }
}

/// Whether payment `index` is captured at confirmation.
fn automatic(index: usize) -> bool {
    matches!(
        story(index),
        Story::Automatic | Story::PartialRefund | Story::FullRefund | Story::Declined
    )
}

/// The customer who pays payment `index`.
fn payer(index: usize) -> usize {
    match story(index) {
        Story::Declined => POOR,
        _ => index % CUSTOMERS,
    }
}

/// The order's amount of payment `index`, in fen.
fn order_amount(index: usize) -> i64 {
    10_000 + 137 * index as i64
}

fn create_request(index: usize, card: &CardToken) -> Value {
    let mut body = json!({
        "merchant_id": "merchant-1",
        "order_reference": format!("order-{index}"),
        "customer": customer(payer(index)),
        "amount": cny(order_amount(index)),
        "fundings": [
            {"kind": "wallet", "amount": cny(WALLET_PART)},
            {"kind": "card", "card_token": card.as_str()},
        ],
    });
    if !automatic(index) {
        body["capture_method"] = json!("manual");
    }
    body
}

/// The status payment `index` is in once confirmed.
fn confirmed_status(index: usize) -> &'static str {
    match story(index) {
        Story::Declined => "failed",
        _ if automatic(index) => "captured",
        _ => "authorized",
    }
}

/// What follows the confirm of payment `index`, if anything: path, body, expected status.
fn follow_up(index: usize, id: &str) -> Option<(String, Value, u16)> {
    let payment = format!("/v1/payments/{id}");
    let total = order_amount(index);
    Some(match story(index) {
        Story::Automatic | Story::Declined => return None,
        Story::ManualCapture => (format!("{payment}/capture"), json!({}), 200),
        Story::PartialCapture => (
            format!("{payment}/capture"),
            json!({"amount": cny(total - 2_000)}),
            200,
        ),
        Story::PartialRefund => (
            format!("{payment}/refunds"),
            json!({"amount": cny(2_500)}),
            200,
        ),
        Story::Cancel => (format!("{payment}/cancel"), json!({}), 200),
        Story::FullRefund => (
            format!("{payment}/refunds"),
            json!({"amount": cny(total), "policy": "pro_rata"}),
            200,
        ),
    })
}

/// The status payment `index` ends in.
fn final_status(index: usize) -> &'static str {
    match story(index) {
        Story::Automatic | Story::ManualCapture => "captured",
        Story::PartialCapture => "partially_captured",
        Story::PartialRefund => "partially_refunded",
        Story::Cancel => "cancelled",
        Story::FullRefund => "refunded",
        Story::Declined => "failed",
    }
}

/// Steps of the intent log whose outcome came more than a restart's worth of time after
/// they were written: those a crash left pending, finished after it (printed: what a kill
/// hits is up to timing).
async fn finished_after_a_restart(database: &Database) -> i64 {
    let sql = "SELECT COUNT(*) FROM payment_steps WHERE resolved_at - created_at > 250000";
    scalar(database, sql).await
}

async fn crash_and_recover(url: String, database: Database) {
    let bank = Bank::start(BINARY, free_port(), BANK_LATENCY_MS).await;
    // Recovery looks for work a crash left every half second.
    let mut extra = vec![("TALLY__PAYMENTS__RECOVERY_INTERVAL_MS", "500")];
    // Merchants' sealed fields need the personal-data keys.
    extra.extend_from_slice(support::PRIVACY_KEYS);
    let environment = bank.server_environment(&extra);
    let scopes = ["payments:write", "payments:read"];
    let mut served = Served::start(url, "payments-crash-test", &scopes, environment).await;
    // The merchant the payments name, onboarded first.
    let merchant = json!({
        "id": "merchant-1", "legal_name": "Merchant One Ltd", "licence_number": "LIC-1",
        "bank_account": "6222020000000001", "category_code": "5411", "time_zone": "UTC",
        "currency": "CNY",
    });
    served.expect_ok("unused", "/v1/merchants", merchant).await;

    // Before the load: a card per customer, saved, and the wallet topped up from it; then
    // every payment created.
    let mut cards = Vec::new();
    for index in 0..=POOR {
        let token = bank.card(index as u64, "100000.00").await;
        let body = json!({"customer": customer(index), "card_token": token.as_str()});
        served.expect_ok("unused", "/v1/payments/cards", body).await;
        let top_up = if index == POOR { POOR_TOP_UP } else { TOP_UP };
        let body = json!({"card_token": token.as_str(), "amount": cny(top_up)});
        let path = format!("/v1/payments/wallets/{}/top-ups", customer(index));
        let reply = served
            .expect_ok(&format!("top-up-{index}"), &path, body)
            .await;
        assert_eq!(reply["status"], "succeeded", "{reply}");
        cards.push(token);
    }
    let mut ids = Vec::new();
    for index in 0..PAYMENTS {
        let body = create_request(index, &cards[payer(index)]);
        let created = served
            .expect_ok(&format!("create-{index}"), "/v1/payments", body)
            .await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let ids = Arc::new(ids);

    // The first crash: while every payment is confirmed.
    let confirms = Load {
        requests: PAYMENTS,
        clients: CLIENTS,
        kill_after: PAYMENTS / 3,
        poll: Duration::from_millis(1),
        idempotency_prefix: "confirm-",
        noun: "confirm",
        request: Arc::new({
            let ids = ids.clone();
            move |index| {
                let expected = if story(index) == Story::Declined {
                    402
                } else {
                    200
                };
                let path = format!("/v1/payments/{}/confirm", ids[index]);
                (path, json!({}), expected)
            }
        }),
    };
    let acknowledged = kill_mid_load_and_retry(&mut served, &confirms).await;
    let finished_after_first = finished_after_a_restart(&database).await;
    eprintln!(
        "confirms acknowledged before the first crash: {acknowledged} of {PAYMENTS}; \
         steps it left pending, finished after it: {finished_after_first}"
    );
    for (index, id) in ids.iter().enumerate() {
        let payment = served.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(
            payment["status"],
            confirmed_status(index),
            "payment {index} after its confirm: {payment}"
        );
    }

    // The second crash: while the authorised ones are captured or cancelled, and the
    // captured ones refunded.
    let followed: Arc<Vec<usize>> = Arc::new(
        (0..PAYMENTS)
            .filter(|&index| follow_up(index, "").is_some())
            .collect(),
    );
    let follow_ups = Load {
        requests: followed.len(),
        clients: CLIENTS,
        kill_after: followed.len() / 3,
        poll: Duration::from_millis(1),
        idempotency_prefix: "follow-up-",
        noun: "capture, cancel or refund",
        request: Arc::new({
            let (ids, followed) = (ids.clone(), followed.clone());
            move |request| {
                let index = followed[request];
                follow_up(index, &ids[index]).unwrap()
            }
        }),
    };
    let acknowledged = kill_mid_load_and_retry(&mut served, &follow_ups).await;
    eprintln!(
        "follow-ups acknowledged before the second crash: {acknowledged} of {}; steps it \
         left pending, finished after it: {}",
        followed.len(),
        finished_after_a_restart(&database).await - finished_after_first
    );

    // Each payment ended once, where its story says, and each source shows what it gave.
    let mut wallet_spent = [0_i64; POOR + 1];
    let mut card_captured = [0_i64; POOR + 1];
    let mut card_refunded = [0_i64; POOR + 1];
    for (index, id) in ids.iter().enumerate() {
        let payment = served.get(&format!("/v1/payments/{id}")).await;
        let status = &payment["status"];
        assert_eq!(status, final_status(index), "payment {index}: {payment}");
        let transitions = payment["transitions"].as_array().unwrap();
        let ends = transitions
            .iter()
            .filter(|transition| &transition["to"] == status)
            .count();
        assert_eq!(ends, 1, "payment {index} ended more than once: {payment}");
        for leg in payment["legs"].as_array().unwrap() {
            let leg_status = leg["status"].as_str().unwrap();
            assert!(
                ["captured", "released", "failed"].contains(&leg_status),
                "payment {index} left a leg {leg_status}: {payment}"
            );
            assert_eq!(fen(&leg["refunding"]), 0, "payment {index}: {payment}");
            let (captured, refunded) = (fen(&leg["captured"]), fen(&leg["refunded"]));
            match leg["kind"].as_str().unwrap() {
                "wallet" => wallet_spent[payer(index)] += captured - refunded,
                "card" => {
                    card_captured[payer(index)] += captured;
                    card_refunded[payer(index)] += refunded;
                }
                other => panic!("payment {index} has a {other} leg"),
            }
        }
        for refund in payment["refunds"].as_array().unwrap() {
            assert_eq!(refund["status"], "succeeded", "payment {index}: {payment}");
        }
        // Every change announced to merchants once, in order, whatever the kills cut short.
        let events: Vec<String> = database
            .payment_events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect();
        let announced: Vec<&str> = events
            .iter()
            .map(String::as_str)
            .filter(|kind| kind.starts_with("payment."))
            .collect();
        let mut changes = vec!["payment.created".to_string()];
        changes.extend(
            transitions
                .iter()
                .map(|transition| format!("payment.{}", transition["to"].as_str().unwrap())),
        );
        assert_eq!(announced, changes, "payment {index}: {payment}");
        let refunds = payment["refunds"].as_array().unwrap().len();
        for kind in ["refund.created", "refund.succeeded"] {
            let count = events.iter().filter(|event| *event == kind).count();
            assert_eq!(count, refunds, "payment {index} {kind}: {events:?}");
        }
    }
    for index in 0..=POOR {
        let top_up = if index == POOR { POOR_TOP_UP } else { TOP_UP };
        let path = format!("/v1/payments/wallets/{}", customer(index));
        let balances = served.get(&path).await;
        assert_eq!(fen(&balances["wallet"]["held"]), 0, "{balances}");
        assert_eq!(
            fen(&balances["wallet"]["balance"]),
            top_up - wallet_spent[index],
            "{balances}"
        );
        // The bank captured each top-up and each card leg, refunded what Tally refunded to
        // the card, and holds nothing.
        let at_bank = bank.view(&cards[index]).await;
        assert_eq!(fen_of(&at_bank.held), 0, "card {index}: {at_bank:?}");
        assert_eq!(
            fen_of(&at_bank.captured),
            top_up + card_captured[index],
            "card {index}: {at_bank:?}"
        );
        assert_eq!(
            fen_of(&at_bank.refunded),
            card_refunded[index],
            "card {index}: {at_bank:?}"
        );
    }
    served.kill();

    // In the database: one payment per order, nothing pending, the books balance.
    let count = |sql: &'static str| scalar(&database, sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM payments").await,
        PAYMENTS as i64
    );
    let pending_steps = "SELECT COUNT(*) FROM payment_steps WHERE status = 'pending'";
    assert_eq!(count(pending_steps).await, 0);
    let pending_operations = "SELECT COUNT(*) FROM wallet_operations WHERE status = 'pending'";
    assert_eq!(count(pending_operations).await, 0);
    let pending_holds = "SELECT COUNT(*) FROM holds WHERE status = 'pending'";
    assert_eq!(count(pending_holds).await, 0);
    assert_books_balance(&database).await;
}

crash_tests!(crash_and_recover, "payments-crash.db";
    combined_payments_survive_kill_nine_on_sqlite,
    combined_payments_survive_kill_nine_on_postgres);
