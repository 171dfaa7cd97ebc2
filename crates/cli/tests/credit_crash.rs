//! Crash test of the credit service: start `tally serve`, open a credit line, drive
//! concurrent repayments and purchase authorisations with idempotency keys, kill the process
//! with SIGKILL mid-load, restart it on the same database, retry every request, and check
//! that each was applied exactly once: in the account (credit balance, held) and in the
//! ledger (repayments received, pending holds), with no operation left half done.
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
const OPERATIONS: usize = 600;
const CLIENTS: usize = 8;
/// Acknowledged operations after which the server is killed.
const KILL_AFTER: usize = 80;
/// 32 bytes of 7 and of 9, base64: fixed test keys for personal data.
const ENCRYPTION_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const BLIND_INDEX_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
const PRIVACY_KEYS: &[(&str, &str)] = &[
    ("TALLY__PRIVACY__ENCRYPTION_KEYS__K1", ENCRYPTION_KEY),
    ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k1"),
    ("TALLY__PRIVACY__BLIND_INDEX_KEY", BLIND_INDEX_KEY),
];

/// Operation `index`: even ones repay `index + 1` fen, odd ones authorise `index + 1` fen.
fn operation(account: i64, index: usize) -> (String, Value, u16) {
    let minor = index + 1;
    let amount = json!({"value": format!("{}.{:02}", minor / 100, minor % 100), "currency": "CNY"});
    if index % 2 == 0 {
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

async fn scalar(database: &Database, sql: &str) -> i64 {
    match database {
        Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn crash_and_recover(url: String, database: Database) {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args([
            "keys",
            "create",
            "--name",
            "credit-crash-test",
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

    let (status, customer) = post(
        &client,
        &base,
        &key,
        "customer",
        "/v1/customers",
        &json!({"name": "王五", "phone": "13912345678", "national_id": "110105199003071239"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{customer}");
    let attributes: Value = serde_json::from_str(APPLICATION).unwrap();
    let (status, opened) = post(
        &client,
        &base,
        &key,
        "open",
        "/v1/credit/accounts",
        &json!({
            "customer_id": customer["id"],
            "statement_day": 5,
            "application": {
                "monthly_income": {"value": "15000.00", "currency": "CNY"},
                "monthly_debt_payments": {"value": "2000.00", "currency": "CNY"},
                "attributes": attributes,
            }
        }),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{opened}");
    let account = opened["account"]["id"].as_i64().unwrap();

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
                let (path, body, expected) = operation(account, index);
                if let Ok((status, reply)) =
                    post(&client, &base, &key, &format!("op-{index}"), &path, &body).await
                {
                    if status == expected {
                        first_replies.lock().unwrap().insert(index, reply);
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
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
        tokio::time::sleep(Duration::from_millis(2)).await;
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
                let (path, body, expected) = operation(account, index);
                let (status, reply) =
                    post(&client, &base, &key, &format!("op-{index}"), &path, &body)
                        .await
                        .unwrap();
                assert_eq!(status, expected, "retry of operation {index}: {reply}");
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
    let repaid: i64 = (0..OPERATIONS)
        .filter(|index| index % 2 == 0)
        .map(|index| index as i64 + 1)
        .sum();
    let authorised: i64 = (0..OPERATIONS)
        .filter(|index| index % 2 == 1)
        .map(|index| index as i64 + 1)
        .sum();
    let view: Value = client
        .get(format!("{base}/v1/credit/accounts/{account}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fen(&view["credit_balance"]), repaid);
    assert_eq!(fen(&view["held"]), authorised);
    assert_eq!(
        view["authorizations"].as_array().unwrap().len(),
        OPERATIONS / 2
    );
    server.kill().unwrap();
    server.wait().unwrap();
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
async fn credit_operations_survive_kill_nine_on_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        directory.path().join("credit-crash.db").display()
    );
    let database = Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    crash_and_recover(url, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_operations_survive_kill_nine_on_postgres() {
    // `None` only under TALLY_TEST_SKIP_POSTGRES=1; the skip is printed.
    let Some(test) = TestDatabase::postgres().await else {
        return;
    };
    crash_and_recover(test.url_for_another_process(), test.database.clone()).await;
}
