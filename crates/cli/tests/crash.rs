//! Crash test: start `tally serve`, drive concurrent transfers with idempotency keys, kill
//! the process with SIGKILL mid-load, restart it on the same database, retry every request,
//! and check that each transfer was applied exactly once and the books balance.
//! Runs on SQLite and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_store::Database;

mod support;
use support::crash::{assert_books_balance, crash_tests, kill_mid_load_and_retry, Load, Served};

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
    let scopes = ["ledger:read", "ledger:write"];
    let mut served = Served::start(url, "crash-test", &scopes, &[]).await;
    assert!(served.key.starts_with("tally_"));

    let mut ids = Vec::new();
    for code in std::iter::once("bank".to_string())
        .chain((0..WALLETS).map(|index| format!("wallet-{index}")))
    {
        let (status, body) = served
            .post(
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

    let load = Load {
        requests: TRANSFERS,
        clients: CLIENTS,
        kill_after: KILL_AFTER,
        poll: Duration::from_millis(5),
        idempotency_prefix: "crash-",
        noun: "transfer",
        request: {
            let wallets = wallets.clone();
            Arc::new(move |index| {
                let body = transfer_body(&bank, &wallets, index);
                ("/v1/entries".to_string(), body, 201)
            })
        },
    };
    let acknowledged_before_crash = kill_mid_load_and_retry(&mut served, &load).await;

    // Each transfer exactly once: every wallet holds exactly its transfers, leg by leg.
    for (wallet_index, wallet) in wallets.iter().enumerate() {
        let expected: Vec<usize> = (0..TRANSFERS)
            .filter(|index| index % WALLETS == wallet_index)
            .collect();
        let total: usize = expected.iter().map(|index| index + 1).sum();
        let account = served.get(&format!("/v1/accounts/{wallet}")).await;
        let credits = account["balance"]["credits_posted"]
            .as_str()
            .unwrap()
            .replace('.', "");
        assert_eq!(
            credits.parse::<usize>().unwrap(),
            total,
            "wallet {wallet_index}"
        );
        let page = served
            .get(&format!("/v1/accounts/{wallet}/entries?limit=1000"))
            .await;
        assert_eq!(
            page["legs"].as_array().unwrap().len(),
            expected.len(),
            "wallet {wallet_index} legs"
        );
    }
    served.kill();
    assert_books_balance(&database).await;
    eprintln!("acknowledged before the crash: {acknowledged_before_crash} of {TRANSFERS}; all applied exactly once");
}

crash_tests!(
    crash_and_recover, "crash.db";
    kill_nine_mid_load_loses_and_duplicates_nothing_on_sqlite,
    kill_nine_mid_load_loses_and_duplicates_nothing_on_postgres
);
