//! `tally demo --size small --no-serve --seed 7`, run twice on two files: both runs print
//! the same figures (the simulation is deterministic by seed), every figure agrees with the
//! simulation's ground truth (settlement and the books' reconciliation among them), the
//! sign-in key is printed apart from the figures, and each database's books balance, read
//! straight from the file. The console's work the demo leaves (a held delivery, an open
//! claim, open reviews) is read straight from the file too. A database that exists already, and an unknown size, are refused.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use tally_store::Database;

mod support;
use support::BINARY;

fn demo(directory: &Path, file: &str, seed: &str) -> std::process::Child {
    demo_on(directory, file, seed, None)
}

/// The small demo, on `url` when given (its configuration beside `file`).
fn demo_on(directory: &Path, file: &str, seed: &str, url: Option<&str>) -> std::process::Child {
    let mut command = Command::new(BINARY);
    command.args([
        "demo",
        "--size",
        "small",
        "--no-serve",
        "--seed",
        seed,
        "--database",
        file,
    ]);
    if let Some(url) = url {
        command.args(["--database-url", url]);
    }
    command
        .current_dir(directory)
        .env("TALLY_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8(output.stdout.clone()).unwrap(),
        String::from_utf8(output.stderr.clone()).unwrap(),
    )
}

/// The number after `name` on its line of the figures.
fn figure(stdout: &str, name: &str) -> i64 {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} in\n{stdout}"));
    line.trim_start()[name.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{line}"))
}

/// Posted debits less posted credits per currency over every ledger account: zero in
/// balanced books.
async fn books(path: &Path) -> (Vec<(String, i64)>, Vec<String>, i64) {
    let database = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let Database::Sqlite(pool) = &database else {
        panic!("the demo builds SQLite");
    };
    let totals: Vec<(String, i64)> = sqlx::query_as(
        "SELECT accounts.currency, CAST(SUM(debits_posted) - SUM(credits_posted) AS BIGINT) \
         FROM account_balances JOIN accounts ON accounts.id = account_balances.account_id \
         GROUP BY accounts.currency ORDER BY accounts.currency",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let (customers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(pool)
        .await
        .unwrap();
    let inconsistent = database.inconsistent_accounts().await.unwrap();
    database.close().await;
    (totals, inconsistent, customers)
}

/// What the demo leaves for the console, counted in its database.
#[derive(Debug, PartialEq, Eq)]
struct ConsoleWork {
    open_claims: i64,
    open_held_deliveries: i64,
    open_reviews: i64,
    settlement_runs: i64,
    recon_runs: i64,
}

async fn console_work(path: &Path) -> ConsoleWork {
    let database = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let Database::Sqlite(pool) = &database else {
        panic!("the demo builds SQLite");
    };
    let count = |sql: &'static str| async move {
        let (count,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
        count
    };
    let work = ConsoleWork {
        open_claims: count(
            "SELECT COUNT(*) FROM risk_cases WHERE kind = 'stolen_account' AND status = 'open'",
        )
        .await,
        open_held_deliveries: count(
            "SELECT COUNT(*) FROM risk_cases WHERE kind = 'hold_delivery' AND status = 'open'",
        )
        .await,
        open_reviews: count(
            "SELECT COUNT(*) FROM risk_cases WHERE kind = 'review' AND status = 'open'",
        )
        .await,
        settlement_runs: count("SELECT COUNT(*) FROM settlement_runs WHERE status = 'done'").await,
        recon_runs: count("SELECT COUNT(*) FROM recon_runs").await,
    };
    database.close().await;
    work
}

#[tokio::test(flavor = "multi_thread")]
async fn the_small_demo_is_deterministic_matches_its_ground_truth_and_balances() {
    let directory = tempfile::tempdir().unwrap();
    let first = demo(directory.path(), "first.db", "7");
    let second = demo(directory.path(), "second.db", "7");
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    let (first_out, first_err) = text(&first);
    let (second_out, second_err) = text(&second);
    assert!(first.status.success(), "{first_out}\n{first_err}");
    assert!(second.status.success(), "{second_out}\n{second_err}");
    assert_eq!(first_out, second_out, "the same seed printed other figures");
    assert!(
        first_out.contains("ground truth: every figure matches"),
        "{first_out}"
    );
    assert!(!first_out.contains("MISMATCH"), "{first_out}");
    // Every part of the story happened.
    assert_eq!(figure(&first_out, "customers"), 60, "{first_out}");
    assert!(
        figure(&first_out, "credit accounts opened") > 0,
        "{first_out}"
    );
    assert!(
        figure(&first_out, "purchases in installments") > 0,
        "{first_out}"
    );
    assert!(
        figure(&first_out, "fraud attempts caught") > 0,
        "{first_out}"
    );
    assert!(
        figure(&first_out, "reconciliation breaks") > 0,
        "{first_out}"
    );
    assert!(
        figure(&first_out, "consortium records shared") > 0,
        "{first_out}"
    );
    // Settlement ran over the payment days, and the books were reconciled with breaks.
    assert!(figure(&first_out, "merchant settlement") > 0, "{first_out}");
    assert!(
        figure(&first_out, "books reconciliation") > 0,
        "{first_out}"
    );
    let reconciled = first_out
        .lines()
        .find(|line| line.trim_start().starts_with("books reconciliation"))
        .unwrap();
    assert!(reconciled.contains("missing_in_ledger 1"), "{reconciled}");
    // The sign-in key is on standard error, not among the figures.
    assert!(first_err.contains("    tally_"), "{first_err}");
    assert!(!first_out.contains("tally_"), "{first_out}");
    assert!(
        first_out.contains("books balance              yes"),
        "{first_out}"
    );
    // The figures are read from the database: checked here without the demo's code.
    for file in ["first.db", "second.db"] {
        let (totals, inconsistent, customers) = books(&directory.path().join(file)).await;
        assert!(!totals.is_empty(), "{file}: no ledger accounts");
        for (currency, net) in &totals {
            assert_eq!(
                *net, 0,
                "{file}: {currency} debits and credits differ by {net}"
            );
        }
        assert!(inconsistent.is_empty(), "{file}: {inconsistent:?}");
        assert_eq!(customers, 60, "{file}");
    }
    let work = console_work(&directory.path().join("first.db")).await;
    assert_eq!(
        work,
        ConsoleWork {
            open_claims: 1,
            open_held_deliveries: work.open_held_deliveries.max(1),
            open_reviews: work.open_reviews.max(1),
            settlement_runs: work.settlement_runs.max(1),
            recon_runs: work.recon_runs.max(1),
        },
        "the demo left no work of some kind for the console"
    );
    // The configuration written beside the database serves it again.
    let config = std::fs::read_to_string(directory.path().join("first.toml")).unwrap();
    assert!(config.contains("first.db\""), "{config}");
    assert!(config.contains("blind_index_key"), "{config}");
}

/// On PostgreSQL (`--database-url`, a fresh schema) the same seed prints the same figures
/// as on SQLite, every one matching the ground truth; the configuration serves that
/// database and shows the demo's consortium log; a database with business in it already is
/// refused and left as it was.
#[tokio::test(flavor = "multi_thread")]
async fn the_small_demo_on_postgresql_prints_the_figures_it_prints_on_sqlite() {
    let Some(schema) = tally_store::testing::TestDatabase::postgres().await else {
        return;
    };
    let url = schema.url_for_another_process();
    let directory = tempfile::tempdir().unwrap();
    let on_sqlite = demo(directory.path(), "lite.db", "7");
    let on_postgres = demo_on(directory.path(), "pg.db", "7", Some(&url));
    let on_sqlite = on_sqlite.wait_with_output().unwrap();
    let on_postgres = on_postgres.wait_with_output().unwrap();
    let (sqlite_out, sqlite_err) = text(&on_sqlite);
    let (postgres_out, postgres_err) = text(&on_postgres);
    assert!(on_sqlite.status.success(), "{sqlite_out}\n{sqlite_err}");
    assert!(
        on_postgres.status.success(),
        "{postgres_out}\n{postgres_err}"
    );
    assert!(
        postgres_out.contains("ground truth: every figure matches"),
        "{postgres_out}"
    );
    assert_eq!(
        postgres_out, sqlite_out,
        "the same seed printed other figures on PostgreSQL"
    );
    assert!(!directory.path().join("pg.db").exists());
    let config = std::fs::read_to_string(directory.path().join("pg.toml")).unwrap();
    assert!(config.contains(&format!("url = \"{url}\"")), "{config}");
    assert!(config.contains("[consortium_member]"), "{config}");
    assert!(
        config.contains("member = \"tally-demo-lender\""),
        "{config}"
    );
    let customers = support::scalar(&schema.database, "SELECT COUNT(*) FROM customers").await;
    assert_eq!(customers, 60);

    // Built once, the database is refused a second demo, which writes nothing.
    let again = demo_on(directory.path(), "again.db", "7", Some(&url))
        .wait_with_output()
        .unwrap();
    let (_, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds data already"), "{stderr}");
    assert!(!directory.path().join("again.toml").exists());
    assert_eq!(
        support::scalar(&schema.database, "SELECT COUNT(*) FROM customers").await,
        60
    );
}

#[test]
fn an_existing_database_and_an_unknown_size_are_refused() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("taken.db"), b"").unwrap();
    let refused = demo(directory.path(), "taken.db", "1")
        .wait_with_output()
        .unwrap();
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("taken.db exists"), "{stderr}");
    assert_eq!(
        std::fs::read(directory.path().join("taken.db")).unwrap(),
        b"",
        "the existing file was touched"
    );
    let unknown = Command::new(BINARY)
        .args(["demo", "--size", "huge", "--no-serve"])
        .current_dir(directory.path())
        .output()
        .unwrap();
    assert_ne!(unknown.status.code(), Some(0));
    assert!(!directory.path().join("tally-demo.db").exists());
}
