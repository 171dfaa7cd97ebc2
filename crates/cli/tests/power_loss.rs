//! Power-loss test: every transfer Tally acknowledged survives a power cut. `tally serve`
//! runs on a SQLite file with the power-cut recorder loaded (`support/power_cut.c`, through
//! LD_PRELOAD), concurrent clients send transfers while the checkpointer copies the log
//! into the database file, the process is killed with SIGKILL, and then the power is cut:
//! every write to the database, its log and its journals not covered by a completed sync
//! of its file is undone, newest first (`support/power_cut.rs`). A server started on what
//! remains must hold every acknowledged transfer, answer each retry with the first answer,
//! apply each transfer exactly once, and its books must balance.
//!
//! A plain SIGKILL (`crash.rs`) cannot find a missing sync: the operating system keeps the
//! written bytes. This test does; with `synchronous = NORMAL` (the log synced only at
//! checkpoints) or `OFF` it loses acknowledged transfers and fails.
//!
//! What the cut models and what not is said in `support/power_cut.rs`: it drops every
//! unsynced write; it does not model lost directory entries of newly created files, torn
//! or reordered sector writes, or a disk that ignores flushes. SQLite only: PostgreSQL's
//! durability is its server's (`synchronous_commit = on` is asserted in
//! `crates/store/tests/durability.rs`).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tally_store::Database;

mod support;
use support::crash::{assert_books_balance, retry_every_request, start_load, Load, Served};
use support::power_cut::Recorder;

/// More than are sent before the kill: the load is cut, not finished.
const TRANSFERS: usize = 1_000_000;
const CLIENTS: usize = 16;
const WALLETS: usize = 8;
/// Acknowledged transfers after which the server may be killed.
const KILL_AFTER: usize = 1500;
/// The database file (its log is `ledger.db-wal`).
const DATABASE: &str = "ledger.db";

fn transfer_body(bank: &str, wallets: &[String], index: usize) -> Value {
    let minor = index + 1;
    let amount = format!("{}.{:02}", minor / 100, minor % 100);
    json!({"legs": [
        {"account_id": bank, "side": "debit", "amount": amount, "currency": "CNY"},
        {"account_id": wallets[index % WALLETS], "side": "credit", "amount": amount, "currency": "CNY"},
    ], "description": format!("power-loss transfer {index}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_transfer_survives_a_power_cut_on_sqlite() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let recorder = Recorder::build(work.path(), &data);
    // Created and migrated by a process without the recorder, then closed: what the server
    // finds at its start is taken as on disk.
    let (url, database) = support::sqlite_database(&data, DATABASE).await;
    database.close().await;

    let scopes = ["ledger:read", "ledger:write"];
    let environment = recorder.environment();
    let environment: Vec<(&str, &str)> = environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut served = Served::start(url.clone(), "power-loss-test", &scopes, &environment).await;

    let mut ids = Vec::new();
    for code in std::iter::once("bank".to_string())
        .chain((0..WALLETS).map(|index| format!("wallet-{index}")))
    {
        let body = json!({"code": code, "kind": "asset", "currency": "CNY"});
        let reply = served
            .expect_ok(&format!("open-{code}"), "/v1/accounts", body)
            .await;
        ids.push(reply["id"].as_str().unwrap().to_string());
    }
    let bank = ids[0].clone();
    let wallets: Arc<Vec<String>> = Arc::new(ids[1..].to_vec());

    // The highest transfer a client began to send: the retries go up to it.
    let highest_sent = Arc::new(AtomicUsize::new(0));
    let request = {
        let (wallets, highest_sent) = (wallets.clone(), highest_sent.clone());
        Arc::new(move |index: usize| {
            highest_sent.fetch_max(index, Ordering::SeqCst);
            let body = transfer_body(&bank, &wallets, index);
            ("/v1/entries".to_string(), body, 201)
        })
    };
    let load = Load {
        requests: TRANSFERS,
        clients: CLIENTS,
        kill_after: KILL_AFTER,
        poll: Duration::from_millis(100),
        idempotency_prefix: "power-",
        noun: "transfer",
        request,
    };
    let (clients, first_replies) = start_load(&served, &load);
    // Kill once enough transfers are acknowledged and a checkpoint has written the database
    // file itself, so that the cut meets writes to both the log and the database.
    let database_file_written = || {
        recorder
            .journal()
            .files()
            .get(DATABASE)
            .is_some_and(|file| file.kept + file.undone > 0)
    };
    let ready = |acknowledged| acknowledged >= KILL_AFTER && database_file_written();
    let message = format!("the load never reached {KILL_AFTER} transfers and a checkpoint");
    clients
        .kill_server_when(
            served.process(),
            ready,
            Duration::from_secs(120),
            load.poll,
            &message,
        )
        .await;

    let files = recorder.journal().cut_power();
    eprintln!("power cut: {files:?}");
    // The recorder saw the server write its log (else the cut would prove nothing).
    let log = files[&format!("{DATABASE}-wal")];
    assert!(log.kept + log.undone > 0, "{files:?}");
    // What the cut left is a sound SQLite database (checked on a copy, so that the server
    // below recovers the log itself).
    let problems = integrity_of_a_copy(&data, &work.path().join("copy")).await;
    assert_eq!(problems, ["ok"], "the power cut left a damaged database");

    served.set_environment(Vec::new());
    served.restart().await;
    let acknowledged = first_replies.lock().unwrap().clone();
    let sent = highest_sent.load(Ordering::SeqCst) + 1;
    assert!(acknowledged.len() >= KILL_AFTER && sent < TRANSFERS);

    // Every acknowledged transfer is there, as it was acknowledged.
    let mut lost = Vec::new();
    for (index, reply) in &acknowledged {
        let id = reply["id"].as_str().unwrap();
        let response = served
            .client
            .get(format!("{}/v1/entries/{id}", served.base))
            .bearer_auth(&served.key)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => {
                let entry: Value = response.json().await.unwrap();
                assert_eq!(
                    &entry, reply,
                    "transfer {index} changed after the power cut"
                );
            }
            404 => lost.push(*index),
            other => panic!("transfer {index}: {other}"),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged transfers were lost by the power cut (the first: {:?})",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(log.syncs > 0, "the log was never synced: {files:?}");

    // Each retry answers as the first time, and every transfer sent is applied exactly once.
    let retries = Load {
        requests: sent,
        ..load
    };
    retry_every_request(&served, &retries, &first_replies).await;
    for (wallet_index, wallet) in wallets.iter().enumerate() {
        let expected: Vec<usize> = (0..sent)
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
    }
    served.kill();
    let database = Database::connect(&url).await.unwrap();
    // Damage found here but not after the cut arose while the restarted server ran. SQLite
    // before 3.51.3 has a race that can damage a database one connection writes while
    // another checkpoints, as Tally's writer and checkpointer do
    // (https://sqlite.org/wal.html#walresetbug). On SQLite 3.46.0 this check found damage
    // here in 3 of about 120 runs; on 3.54.1, which has the fix, in none of 201.
    let problems = integrity(&database).await;
    assert_eq!(
        problems,
        ["ok"],
        "the database is damaged after the retries"
    );
    assert_books_balance(&database).await;
    database.close().await;
    eprintln!(
        "acknowledged before the power cut: {} of {sent} sent; none lost",
        acknowledged.len()
    );
}

/// What `PRAGMA integrity_check` finds in `database` ("ok" alone if nothing; the error if
/// the file is too damaged to check).
async fn integrity(database: &Database) -> Vec<String> {
    let Database::Sqlite(pool) = database else {
        panic!("the power-loss test runs on SQLite")
    };
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .unwrap_or_else(|error| vec![error.to_string()])
}

/// The integrity of a copy of the database and its log in `data`, made in `copy`.
async fn integrity_of_a_copy(data: &Path, copy: &Path) -> Vec<String> {
    std::fs::create_dir(copy).unwrap();
    for name in [DATABASE.to_string(), format!("{DATABASE}-wal")] {
        if data.join(&name).exists() {
            std::fs::copy(data.join(&name), copy.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}", copy.join(DATABASE).display());
    let database = Database::connect(&url).await.unwrap();
    let problems = integrity(&database).await;
    database.close().await;
    problems
}
