//! Durability asserted, not assumed: every connection Tally opens (the pool, the ledger
//! writer's own, the SQLite checkpointer's, the consortium log's) commits durably. SQLite:
//! `journal_mode = wal` with `synchronous = FULL` (2), so a commit returns after the log is
//! flushed. PostgreSQL: `synchronous_commit = on`, even on a database whose default is `off`.
//! Tally answers a write as soon as its commit returns, so a weaker setting on any of these
//! connections would lose acknowledged money movements on a power cut or server crash.
//!
//! What these settings buy is tested by cutting the power: `crates/cli/tests/power_loss.rs`
//! runs `tally serve` on SQLite with a recorder loaded through LD_PRELOAD (C, since the
//! workspace forbids `unsafe` Rust, which a SQLite VFS would need), undoes every write not
//! covered by a completed sync after killing it, and finds every acknowledged transfer
//! (with `synchronous = NORMAL`, where the log is flushed only at checkpoints, it does not).
//! `crates/cli/tests/crash.rs` covers a killed process, whose written but unflushed bytes
//! the operating system still keeps. PostgreSQL's flush is its server's; here only the
//! setting each connection asks for is asserted.
//!
//! Every SQLite connection also has `secure_delete = ON` (1): a value a write replaces or
//! deletes (an erased customer's ciphertexts) is zeroed, not left in free space.
#![allow(clippy::unwrap_used)]

use tally_store::on_both_backends;
use tally_store::testing::{durability_of_every_connection, Durability, TestDatabase};
use tally_store::Database;

fn assert_every_connection_is_durable(found: &[(String, Durability)], backend_is_sqlite: bool) {
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["pool connection 0", "ledger writer", "consortium log"] {
        assert!(
            names.contains(&expected),
            "{expected} not inspected: {names:?}"
        );
    }
    if backend_is_sqlite {
        assert!(names.contains(&"checkpointer"), "{names:?}");
    }
    for (name, durability) in found {
        let durable = match durability {
            Durability::Sqlite {
                journal_mode,
                synchronous,
                secure_delete,
            } => journal_mode == "wal" && *synchronous == 2 && *secure_delete == 1,
            Durability::Postgres { synchronous_commit } => synchronous_commit == "on",
        };
        assert!(durable, "{name} does not commit durably: {durability:?}");
    }
}

async fn every_connection_commits_durably(test: TestDatabase) {
    let found = durability_of_every_connection(&test.database)
        .await
        .unwrap();
    assert_every_connection_is_durable(&found, matches!(test.database, Database::Sqlite(_)));
}

on_both_backends!(every_connection_commits_durably);

/// A PostgreSQL database whose default is `synchronous_commit = off` (as a database or role
/// may be configured for speed): Tally's connections still commit with `on`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_commit_synchronously_when_the_database_default_is_off() {
    use sqlx::Connection;
    let Some(url) = tally_store::testing::postgres_url() else {
        return;
    };
    let name = format!(
        "tally_test_asynchronous_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET synchronous_commit = off"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url.as_str(), String::new()),
    };
    let (server, _) = base.rsplit_once('/').unwrap();
    let asynchronous_url = format!("{server}/{name}{query}");
    let result = tokio::spawn(async move {
        // A plain connection gets the database's default; Tally's do not.
        let mut plain = sqlx::PgConnection::connect(&asynchronous_url)
            .await
            .unwrap();
        let (default,): (String,) = sqlx::query_as("SHOW synchronous_commit")
            .fetch_one(&mut plain)
            .await
            .unwrap();
        assert_eq!(default, "off");
        plain.close().await.unwrap();
        let database = Database::connect(&asynchronous_url).await.unwrap();
        let found = durability_of_every_connection(&database).await.unwrap();
        database.close().await;
        assert_every_connection_is_durable(&found, false);
    })
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    if let Err(error) = result {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// The SQLite that Tally bundles has the fix for the WAL-reset race (SQLite 3.51.3): before
/// it, a commit on one connection while another checkpoints, as the ledger writer and the
/// checkpointer do, can damage the database (https://sqlite.org/wal.html#walresetbug).
#[tokio::test]
async fn sqlite_is_past_the_wal_reset_race() {
    let test = TestDatabase::sqlite().await.unwrap();
    let Database::Sqlite(pool) = &test.database else {
        unreachable!("TestDatabase::sqlite opens SQLite");
    };
    let (version,): (String,) = sqlx::query_as("SELECT sqlite_version()")
        .fetch_one(pool)
        .await
        .unwrap();
    let parts: Vec<u32> = version
        .split('.')
        .map(|part| part.parse().unwrap())
        .collect();
    assert!(
        parts.as_slice() >= [3, 51, 3].as_slice(),
        "SQLite {version} has the WAL-reset race"
    );
    eprintln!("SQLite {version}");
}
