//! Crash test of the credit service: start `tally serve`, open a credit line, drive
//! concurrent repayments and purchase authorisations with idempotency keys, kill the process
//! with SIGKILL mid-load, restart it on the same database, retry every request, and check
//! that each was applied exactly once: in the account (credit balance, held) and in the
//! ledger (repayments received, pending holds), with no operation left half done.
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

const OPERATIONS: usize = 600;
const CLIENTS: usize = 8;
/// Acknowledged operations after which the server is killed.
const KILL_AFTER: usize = 80;

/// Operation `index`: even ones repay `index + 1` fen, odd ones authorise `index + 1` fen.
fn operation(account: i64, index: usize) -> (String, Value, u16) {
    let minor = index + 1;
    let amount = json!({"value": format!("{}.{:02}", minor / 100, minor % 100), "currency": "CNY"});
    if index.is_multiple_of(2) {
        (
            format!("/v1/credit/accounts/{account}/repayments"),
            json!({"amount": amount}),
            200,
        )
    } else {
        (
            format!("/v1/credit/accounts/{account}/authorizations"),
            json!({"amount": amount}),
            201,
        )
    }
}

fn fen(value: &Value) -> i64 {
    value["value"]
        .as_str()
        .unwrap()
        .replace('.', "")
        .parse()
        .unwrap()
}

async fn crash_and_recover(url: String, database: Database) {
    let scopes = ["credit:read", "credit:write"];
    let mut served = Served::start(url, "credit-crash-test", &scopes, PRIVACY_KEYS).await;

    let (status, customer) = served
        .post(
            "customer",
            "/v1/customers",
            &json!({"name": "王五", "phone": "13912345678", "national_id": "110105199003071239"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{customer}");
    let (status, opened) = served
        .post(
            "open",
            "/v1/credit/accounts",
            &credit_application(&customer["id"]),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{opened}");
    let account = opened["account"]["id"].as_i64().unwrap();

    let load = Load {
        requests: OPERATIONS,
        clients: CLIENTS,
        kill_after: KILL_AFTER,
        poll: Duration::from_millis(2),
        idempotency_prefix: "op-",
        noun: "operation",
        request: Arc::new(move |index| operation(account, index)),
    };
    let acknowledged_before_crash = kill_mid_load_and_retry(&mut served, &load).await;

    // Each operation exactly once, in the account and in the ledger.
    let repaid: i64 = (0..OPERATIONS)
        .filter(|index| index % 2 == 0)
        .map(|index| index as i64 + 1)
        .sum();
    let authorised: i64 = (0..OPERATIONS)
        .filter(|index| index % 2 == 1)
        .map(|index| index as i64 + 1)
        .sum();
    let view = served.get(&format!("/v1/credit/accounts/{account}")).await;
    assert_eq!(fen(&view["credit_balance"]), repaid);
    assert_eq!(fen(&view["held"]), authorised);
    assert_eq!(
        view["authorizations"].as_array().unwrap().len(),
        OPERATIONS / 2
    );
    served.kill();
    let balance = |role: LedgerRole, column: &str| {
        format!(
            "SELECT b.{column} FROM account_balances b JOIN accounts a ON a.id = b.account_id \
             WHERE a.code = '{}'",
            ledger_account_code(role, Currency::CNY)
        )
    };
    assert_eq!(
        scalar(
            &database,
            &balance(LedgerRole::RepaymentClearing, "debits_posted")
        )
        .await,
        repaid
    );
    assert_eq!(
        scalar(
            &database,
            &balance(LedgerRole::CustomerReceivable, "debits_pending")
        )
        .await,
        authorised
    );
    assert_eq!(
        scalar(&database, "SELECT COUNT(*) FROM holds").await,
        (OPERATIONS / 2) as i64
    );
    assert_no_operation_pending(&database).await;
    assert_books_balance(&database).await;
    eprintln!("acknowledged before the crash: {acknowledged_before_crash} of {OPERATIONS}; all applied exactly once");
}

crash_tests!(
    crash_and_recover, "credit-crash.db";
    credit_operations_survive_kill_nine_on_sqlite,
    credit_operations_survive_kill_nine_on_postgres
);
