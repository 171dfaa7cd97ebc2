//! Crash test: start `tally serve`, drive concurrent transfers with idempotency keys, kill
//! the process with SIGKILL mid-load, restart it on the same database, retry every request,
//! and check that each transfer was applied exactly once and the books balance.
//! Runs on SQLite and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;
use support::{free_port, post, start_server, wait_until_healthy, BINARY};

const TRANSFERS: usize = 3000;
const CLIENTS: usize = 16;
const WALLETS: usize = 8;
/// Acknowledged transfers after which the server is killed.
const KILL_AFTER: usize = 300;

fn transfer_body(bank: &str, wallets: &[String], index: usize) -> Value {
    let minor = index + 1;
    let amount = format!("{}.{:02}", minor / 100, minor % 100);
    json!({"legs": [
        {"account_id": bank, "side": "debit", "amount": amount, "currency": "CNY"},
        {"account_id": wallets[index % WALLETS], "side": "credit", "amount": amount, "currency": "CNY"},
    ], "description": format!("crash transfer {index}")})
}

async fn crash_and_recover(url: String, database: Database) {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args([
            "keys",
            "create",
            "--name",
            "crash-test",
            "--scope",
            "ledger:read",
            "--scope",
            "ledger:write",
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
    assert!(key.starts_with("tally_"));

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(&url, port, directory.path(), &[]);
    wait_until_healthy(&client, &base).await;

    let mut ids = Vec::new();
    for code in std::iter::once("bank".to_string())
        .chain((0..WALLETS).map(|index| format!("wallet-{index}")))
    {
        let (status, body) = post(
            &client,
            &base,
            &key,
            &format!("open-{code}"),
            "/v1/accounts",
            &json!({"code": code, "kind": "asset", "currency": "CNY"}),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let bank = ids[0].clone();
    let wallets: Arc<Vec<String>> = Arc::new(ids[1..].to_vec());

    // Drive transfers until the server dies under us.
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let first_replies: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base, key, bank, wallets) = (
            reqwest::Client::new(),
            base.clone(),
            key.clone(),
            bank.clone(),
            wallets.clone(),
        );
        let (next, acknowledged, dead, first_replies) = (
            next.clone(),
            acknowledged.clone(),
            dead.clone(),
            first_replies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= TRANSFERS || dead.load(Ordering::SeqCst) {
                    break;
                }
                let body = transfer_body(&bank, &wallets, index);
                if let Ok((201, reply)) = post(
                    &client,
                    &base,
                    &key,
                    &format!("crash-{index}"),
                    "/v1/entries",
                    &body,
                )
                .await
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
            "the load never reached {KILL_AFTER} transfers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush beyond what was committed.
    server.wait().unwrap();
    dead.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged_before_crash = first_replies.lock().unwrap().len();
    assert!(acknowledged_before_crash >= KILL_AFTER);
    assert!(
        acknowledged_before_crash < TRANSFERS,
        "the server was killed after the load ended"
    );

    // Restart on the same database and retry every request, acknowledged or not.
    let mut server = start_server(&url, port, directory.path(), &[]);
    wait_until_healthy(&client, &base).await;
    let mut retries = Vec::new();
    for worker in 0..CLIENTS {
        let (client, base, key, bank, wallets, first_replies) = (
            reqwest::Client::new(),
            base.clone(),
            key.clone(),
            bank.clone(),
            wallets.clone(),
            first_replies.clone(),
        );
        retries.push(tokio::spawn(async move {
            for index in (worker..TRANSFERS).step_by(CLIENTS) {
                let body = transfer_body(&bank, &wallets, index);
                let (status, reply) = post(
                    &client,
                    &base,
                    &key,
                    &format!("crash-{index}"),
                    "/v1/entries",
                    &body,
                )
                .await
                .unwrap();
                assert_eq!(status, 201, "retry of transfer {index}: {reply}");
                if let Some(first) = first_replies.lock().unwrap().get(&index) {
                    assert_eq!(
                        &reply, first,
                        "transfer {index} answered differently after the crash"
                    );
                }
            }
        }));
    }
    for retry in retries {
        retry.await.unwrap();
    }

    // Each transfer exactly once: every wallet holds exactly its transfers, leg by leg.
    for (wallet_index, wallet) in wallets.iter().enumerate() {
        let expected: Vec<usize> = (0..TRANSFERS)
            .filter(|index| index % WALLETS == wallet_index)
            .collect();
        let total: usize = expected.iter().map(|index| index + 1).sum();
        let account: Value = client
            .get(format!("{base}/v1/accounts/{wallet}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let credits = account["balance"]["credits_posted"]
            .as_str()
            .unwrap()
            .replace('.', "");
        assert_eq!(
            credits.parse::<usize>().unwrap(),
            total,
            "wallet {wallet_index}"
        );
        let page: Value = client
            .get(format!("{base}/v1/accounts/{wallet}/entries?limit=1000"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["legs"].as_array().unwrap().len(),
            expected.len(),
            "wallet {wallet_index} legs"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted);
        assert_eq!(totals.debits_pending, totals.credits_pending);
    }
    assert!(database.inconsistent_accounts().await.unwrap().is_empty());
    eprintln!("acknowledged before the crash: {acknowledged_before_crash} of {TRANSFERS}; all applied exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_load_loses_and_duplicates_nothing_on_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("crash.db").display());
    let database = Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    crash_and_recover(url, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_load_loses_and_duplicates_nothing_on_postgres() {
    // `None` only under TALLY_TEST_SKIP_POSTGRES=1; the skip is printed.
    let Some(test) = TestDatabase::postgres().await else {
        return;
    };
    crash_and_recover(test.url_for_another_process(), test.database.clone()).await;
}
