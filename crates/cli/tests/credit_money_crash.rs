//! Crash test of the credit service's other money writes: with purchases authorised and
//! plans captured beforehand, drive concurrent captures, refunds and credit balance payouts
//! with idempotency keys against `tally serve`, kill it with SIGKILL mid-load, restart it
//! on the same database, retry every request, and check that each was applied exactly
//! once: in the account (plans, unpaid principal, credit balance, nothing held) and in the
//! ledger (receivable, payout payable, no pending hold), with no operation left half done.
//! Runs on SQLite and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_core::Currency;
use tally_credit::LedgerRole;
use tally_service::credit::ledger_accounts::ledger_account_code;
use tally_store::Database;

mod support;
use support::crash::{
    assert_books_balance, assert_no_operation_pending, crash_tests, kill_mid_load_and_retry, Load,
    Served,
};
use support::{credit_application, scalar, PRIVACY_KEYS};

/// Purchases of each kind: authorised before the load and captured under it, and captured
/// before the load and refunded in part under it.
const PURCHASES: usize = 40;
/// Operations under load: a capture, a refund and a payout for each purchase index.
const OPERATIONS: usize = 3 * PURCHASES;
const CLIENTS: usize = 8;
/// Acknowledged operations after which the server is killed.
const KILL_AFTER: usize = 20;
/// The credit balance paid in before the load, in fen.
const REPAID: i64 = 50_000;
/// What each captured-before plan costs, and what is refunded of it, in fen.
const PLAN: i64 = 200;
const REFUND: i64 = 50;

fn cny(minor: i64) -> Value {
    json!({"value": format!("{}.{:02}", minor / 100, minor % 100), "currency": "CNY"})
}

fn fen(value: &Value) -> i64 {
    value["value"]
        .as_str()
        .unwrap()
        .replace('.', "")
        .parse()
        .unwrap()
}

/// The amount authorised before the load for purchase `index` (captured under it).
fn authorised(index: usize) -> i64 {
    100 + index as i64
}

/// What a payout under load pays, in fen.
fn payout(index: usize) -> i64 {
    1 + index as i64
}

/// Operation `index` under load: a capture of authorisation `1 + index / 3`, a refund of
/// part of plan `1 + index / 3`, or a payout.
fn operation(account: i64, index: usize) -> (String, Value) {
    let purchase = index / 3;
    match index % 3 {
        0 => (
            // Authorisations 1..=PURCHASES were made for the captures under load.
            format!(
                "/v1/credit/accounts/{account}/authorizations/{}/capture",
                purchase + 1
            ),
            json!({"product": "installment", "periods": 3}),
        ),
        1 => (
            // Plans 1..=PURCHASES were captured before the load.
            format!(
                "/v1/credit/accounts/{account}/plans/{}/refunds",
                purchase + 1
            ),
            json!({"amount": cny(REFUND)}),
        ),
        _ => (
            format!("/v1/credit/accounts/{account}/credit-balance/payouts"),
            json!({"amount": cny(payout(purchase))}),
        ),
    }
}

async fn crash_and_recover(url: String, database: Database) {
    let scopes = ["credit:read", "credit:write"];
    let mut served = Served::start(url, "credit-money-crash-test", &scopes, PRIVACY_KEYS).await;

    let customer = served
        .expect_ok(
            "customer",
            "/v1/customers",
            json!({"name": "赵六", "phone": "13712345678", "national_id": "110105199003071239"}),
        )
        .await;
    // The credit-balance payouts go to the customer's bound bank card.
    let customer_id = customer["id"].as_str().unwrap();
    served
        .expect_ok(
            "bank-card",
            &format!("/v1/customers/{customer_id}/bank-card"),
            json!({"card_number": "4111 1111 1111 1111"}),
        )
        .await;
    let opened = served
        .expect_ok(
            "open",
            "/v1/credit/accounts",
            credit_application(&customer["id"]),
        )
        .await;
    let account = opened["account"]["id"].as_i64().unwrap();
    let accounts = format!("/v1/credit/accounts/{account}");

    // Before the load, one at a time: the credit balance the payouts draw on, the
    // authorisations the load captures (ids 1..=PURCHASES), and the plans it refunds
    // (authorisations after those, captured here as plans 1..=PURCHASES).
    served
        .expect_ok(
            "repay",
            &format!("{accounts}/repayments"),
            json!({"amount": cny(REPAID)}),
        )
        .await;
    for index in 0..PURCHASES {
        served
            .expect_ok(
                &format!("authorise-{index}"),
                &format!("{accounts}/authorizations"),
                json!({"amount": cny(authorised(index))}),
            )
            .await;
    }
    for index in 0..PURCHASES {
        let reply = served
            .expect_ok(
                &format!("plan-authorise-{index}"),
                &format!("{accounts}/authorizations"),
                json!({"amount": cny(PLAN)}),
            )
            .await;
        let authorisation = reply["authorization"]["id"].as_i64().unwrap();
        assert_eq!(authorisation, (PURCHASES + index + 1) as i64);
        let reply = served
            .expect_ok(
                &format!("plan-capture-{index}"),
                &format!("{accounts}/authorizations/{authorisation}/capture"),
                json!({"product": "installment", "periods": 3}),
            )
            .await;
        assert_eq!(reply["plan_id"], json!(index + 1), "{reply}");
    }

    let load = Load {
        requests: OPERATIONS,
        clients: CLIENTS,
        kill_after: KILL_AFTER,
        poll: Duration::from_millis(1),
        idempotency_prefix: "op-",
        noun: "operation",
        request: Arc::new(move |index| {
            let (path, body) = operation(account, index);
            (path, body, 200)
        }),
    };
    let acknowledged_before_crash = kill_mid_load_and_retry(&mut served, &load).await;

    // Each operation exactly once, in the account and in the ledger.
    let captured: i64 = (0..PURCHASES).map(authorised).sum();
    let refunded = PURCHASES as i64 * REFUND;
    let paid_out: i64 = (0..PURCHASES).map(payout).sum();
    let unpaid = captured + PURCHASES as i64 * PLAN - refunded;
    let view = served.get(&accounts).await;
    assert_eq!(fen(&view["unpaid_principal"]), unpaid, "{view}");
    assert_eq!(fen(&view["held"]), 0, "{view}");
    assert_eq!(fen(&view["credit_balance"]), REPAID - paid_out, "{view}");
    assert_eq!(view["plans"].as_array().unwrap().len(), 2 * PURCHASES);
    served.kill();

    let net = |role: LedgerRole| {
        format!(
            "SELECT b.debits_posted - b.credits_posted FROM account_balances b \
             JOIN accounts a ON a.id = b.account_id WHERE a.code = '{}'",
            ledger_account_code(role, Currency::CNY)
        )
    };
    assert_eq!(
        scalar(&database, &net(LedgerRole::CustomerReceivable)).await,
        unpaid
    );
    assert_eq!(
        scalar(&database, &net(LedgerRole::CustomerPayoutPayable)).await,
        -paid_out
    );
    assert_eq!(
        scalar(
            &database,
            "SELECT COUNT(*) FROM holds WHERE status = 'pending'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &database,
            "SELECT COUNT(*) FROM holds WHERE status = 'posted'"
        )
        .await,
        2 * PURCHASES as i64
    );
    assert_no_operation_pending(&database).await;
    assert_books_balance(&database).await;
    eprintln!("acknowledged before the crash: {acknowledged_before_crash} of {OPERATIONS}; all applied exactly once");
}

crash_tests!(
    crash_and_recover, "credit-money-crash.db";
    captures_refunds_and_payouts_survive_kill_nine_on_sqlite,
    captures_refunds_and_payouts_survive_kill_nine_on_postgres
);
