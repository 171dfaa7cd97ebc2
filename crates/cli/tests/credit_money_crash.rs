//! Crash test of the credit service's other money writes: with purchases authorised and
//! plans captured beforehand, drive concurrent captures, refunds and credit balance payouts
//! with idempotency keys against `tally serve`, kill it with SIGKILL mid-load, restart it
//! on the same database, retry every request, and check that each was applied exactly
//! once: in the account (plans, unpaid principal, credit balance, nothing held) and in the
//! ledger (receivable, payout payable, no pending hold), with no operation left half done.
//! Runs on SQLite and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_core::Currency;
use tally_credit::LedgerRole;
use tally_service::credit::ledger_accounts::ledger_account_code;
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;
use support::{free_port, post, start_server, wait_until_healthy, BINARY};

const APPLICATION: &str = include_str!("../../../models/example-application.json");
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
/// 32 bytes of 7 and of 9, base64: fixed test keys for personal data.
const PRIVACY_KEYS: &[(&str, &str)] = &[
    (
        "TALLY__PRIVACY__ENCRYPTION_KEYS__K1",
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    ),
    ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k1"),
    (
        "TALLY__PRIVACY__BLIND_INDEX_KEY",
        "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    ),
];

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

async fn scalar(database: &Database, sql: &str) -> i64 {
    match database {
        Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn expect_ok(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    idempotency: &str,
    path: &str,
    body: Value,
) -> Value {
    let (status, reply) = post(client, base, key, idempotency, path, &body)
        .await
        .unwrap();
    assert!(
        (200..300).contains(&status),
        "{idempotency} {path}: {status} {reply}"
    );
    reply
}

async fn crash_and_recover(url: String, database: Database) {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args([
            "keys",
            "create",
            "--name",
            "credit-money-crash-test",
            "--scope",
            "credit:read",
            "--scope",
            "credit:write",
            "--database-url",
            &url,
        ])
        .current_dir(directory.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_string();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(&url, port, directory.path(), PRIVACY_KEYS);
    wait_until_healthy(&client, &base).await;

    let customer = expect_ok(
        &client,
        &base,
        &key,
        "customer",
        "/v1/customers",
        json!({"name": "赵六", "phone": "13712345678", "national_id": "110105199003071239"}),
    )
    .await;
    let attributes: Value = serde_json::from_str(APPLICATION).unwrap();
    let opened = expect_ok(
        &client,
        &base,
        &key,
        "open",
        "/v1/credit/accounts",
        json!({
            "customer_id": customer["id"],
            "statement_day": 5,
            "application": {
                "monthly_income": {"value": "15000.00", "currency": "CNY"},
                "monthly_debt_payments": {"value": "2000.00", "currency": "CNY"},
                "attributes": attributes,
            }
        }),
    )
    .await;
    let account = opened["account"]["id"].as_i64().unwrap();
    let accounts = format!("/v1/credit/accounts/{account}");

    // Before the load, one at a time: the credit balance the payouts draw on, the
    // authorisations the load captures (ids 1..=PURCHASES), and the plans it refunds
    // (authorisations after those, captured here as plans 1..=PURCHASES).
    expect_ok(
        &client,
        &base,
        &key,
        "repay",
        &format!("{accounts}/repayments"),
        json!({"amount": cny(REPAID)}),
    )
    .await;
    for index in 0..PURCHASES {
        expect_ok(
            &client,
            &base,
            &key,
            &format!("authorise-{index}"),
            &format!("{accounts}/authorizations"),
            json!({"amount": cny(authorised(index))}),
        )
        .await;
    }
    for index in 0..PURCHASES {
        let reply = expect_ok(
            &client,
            &base,
            &key,
            &format!("plan-authorise-{index}"),
            &format!("{accounts}/authorizations"),
            json!({"amount": cny(PLAN)}),
        )
        .await;
        let authorisation = reply["authorization"]["id"].as_i64().unwrap();
        assert_eq!(authorisation, (PURCHASES + index + 1) as i64);
        let reply = expect_ok(
            &client,
            &base,
            &key,
            &format!("plan-capture-{index}"),
            &format!("{accounts}/authorizations/{authorisation}/capture"),
            json!({"product": "installment", "periods": 3}),
        )
        .await;
        assert_eq!(reply["plan_id"], json!(index + 1), "{reply}");
    }

    // Drive operations until the server dies under us.
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let first_replies: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base, key) = (reqwest::Client::new(), base.clone(), key.clone());
        let (next, acknowledged, dead, first_replies) = (
            next.clone(),
            acknowledged.clone(),
            dead.clone(),
            first_replies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= OPERATIONS || dead.load(Ordering::SeqCst) {
                    break;
                }
                let (path, body) = operation(account, index);
                if let Ok((200, reply)) =
                    post(&client, &base, &key, &format!("op-{index}"), &path, &body).await
                {
                    first_replies.lock().unwrap().insert(index, reply);
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "the load never reached {KILL_AFTER} operations"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill().unwrap(); // SIGKILL: no shutdown, nothing beyond what was committed.
    server.wait().unwrap();
    dead.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged_before_crash = first_replies.lock().unwrap().len();
    assert!(acknowledged_before_crash >= KILL_AFTER);
    assert!(
        acknowledged_before_crash < OPERATIONS,
        "the server was killed after the load ended"
    );

    // Restart on the same database and retry every request, acknowledged or not.
    let mut server = start_server(&url, port, directory.path(), PRIVACY_KEYS);
    wait_until_healthy(&client, &base).await;
    let mut retries = Vec::new();
    for worker in 0..CLIENTS {
        let (client, base, key, first_replies) = (
            reqwest::Client::new(),
            base.clone(),
            key.clone(),
            first_replies.clone(),
        );
        retries.push(tokio::spawn(async move {
            for index in (worker..OPERATIONS).step_by(CLIENTS) {
                let (path, body) = operation(account, index);
                let (status, reply) =
                    post(&client, &base, &key, &format!("op-{index}"), &path, &body)
                        .await
                        .unwrap();
                assert_eq!(status, 200, "retry of operation {index}: {reply}");
                if let Some(first) = first_replies.lock().unwrap().get(&index) {
                    assert_eq!(
                        &reply, first,
                        "operation {index} answered differently after the crash"
                    );
                }
            }
        }));
    }
    for retry in retries {
        retry.await.unwrap();
    }

    // Each operation exactly once, in the account and in the ledger.
    let captured: i64 = (0..PURCHASES).map(authorised).sum();
    let refunded = PURCHASES as i64 * REFUND;
    let paid_out: i64 = (0..PURCHASES).map(payout).sum();
    let unpaid = captured + PURCHASES as i64 * PLAN - refunded;
    let view: Value = client
        .get(format!("{base}{accounts}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fen(&view["unpaid_principal"]), unpaid, "{view}");
    assert_eq!(fen(&view["held"]), 0, "{view}");
    assert_eq!(fen(&view["credit_balance"]), REPAID - paid_out, "{view}");
    assert_eq!(view["plans"].as_array().unwrap().len(), 2 * PURCHASES);
    server.kill().unwrap();
    server.wait().unwrap();

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
    assert_eq!(
        scalar(
            &database,
            "SELECT COUNT(*) FROM credit_operations WHERE status = 'pending'"
        )
        .await,
        0
    );
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted);
        assert_eq!(totals.debits_pending, totals.credits_pending);
    }
    assert!(database.inconsistent_accounts().await.unwrap().is_empty());
    eprintln!("acknowledged before the crash: {acknowledged_before_crash} of {OPERATIONS}; all applied exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_refunds_and_payouts_survive_kill_nine_on_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        directory.path().join("credit-money-crash.db").display()
    );
    let database = Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    crash_and_recover(url, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_refunds_and_payouts_survive_kill_nine_on_postgres() {
    // `None` only under TALLY_TEST_SKIP_POSTGRES=1; the skip is printed.
    let Some(test) = TestDatabase::postgres().await else {
        return;
    };
    crash_and_recover(test.url_for_another_process(), test.database.clone()).await;
}
