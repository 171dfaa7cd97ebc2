//! Crash test of end of day: `tally eod` is killed with SIGKILL at several moments of one
//! business date (mid-chunk: between a chunk's read, its postings and its accounts' write),
//! run again until it finishes, and the books it leaves — every credit account's state,
//! every ledger account's balance, the totals per currency — must equal those of the same
//! portfolio run straight through. The next date then runs on both alike. Runs on SQLite
//! and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tally_store::Database;

mod support;
use support::{scalar, BINARY};

/// Credit accounts in the generated portfolio.
const ACCOUNTS: i64 = 1_500;
/// Small chunks, so that a run has well over a hundred of them and a kill lands inside one.
const CHUNK_SIZE: &str = "10";
/// The date the generator ran (`tally eod bench` starts on 2026-03-16).
const CRASHED_DATE: &str = "2026-03-17";
const NEXT_DATE: &str = "2026-03-18";
/// Kills of the crashed date's run before it is let finish.
const KILLS: usize = 4;

/// `tally eod bench --keep`: a generated portfolio whose first date has run; answers the URL
/// of the kept database.
fn generate(database_url: &str, directory: &Path) -> String {
    let output = Command::new(BINARY)
        .args([
            "eod",
            "bench",
            "--accounts",
            &ACCOUNTS.to_string(),
            "--days",
            "1",
            "--keep",
            "--database-url",
            database_url,
        ])
        .current_dir(directory)
        .env("TALLY_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tally eod bench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("kept database: "))
        .unwrap_or_else(|| panic!("tally eod bench did not say where it kept the books: {stdout}"))
        .to_string()
}

fn end_of_day(url: &str, date: &str, directory: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args([
            "eod",
            "--date",
            date,
            "--database-url",
            url,
            "--chunk-size",
            CHUNK_SIZE,
        ])
        .current_dir(directory)
        .env("TALLY_LOG", "warn");
    command
}

/// Runs end of day for `date` to its end: what it printed.
fn run_to_end(url: &str, date: &str, directory: &Path) -> String {
    let output = end_of_day(url, date, directory).output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "tally eod --date {date}: {printed}"
    );
    printed
}

/// Starts end of day for `date` and kills it with SIGKILL after `delay`; answers whether it
/// was still running (a run that finished first was not interrupted).
fn kill_after(url: &str, date: &str, directory: &Path, delay: Duration) -> bool {
    let mut child = end_of_day(url, date, directory)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "tally eod --date {date} failed: {status}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// What end of day leaves: every credit account's state (as the runs see it, in JSON), and
/// every ledger account's posted and pending balances by code.
async fn books(database: &Database) -> (Vec<String>, BTreeMap<String, String>) {
    let mut accounts = Vec::new();
    for id in 1..=ACCOUNTS {
        let account = database
            .credit_account_as_of_runs(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("credit account {id} is missing"));
        accounts.push(serde_json::to_string(&account).unwrap());
    }
    let mut balances = BTreeMap::new();
    for (id, code) in database
        .accounts_with_code_prefix("", "", 100_000)
        .await
        .unwrap()
    {
        let state = database.account(id).await.unwrap().unwrap();
        balances.insert(code, format!("{:?}", state.balance));
    }
    (accounts, balances)
}

async fn assert_books_balance(database: &Database) {
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
        assert_eq!(totals.debits_pending, totals.credits_pending, "{totals:?}");
    }
    assert!(database.inconsistent_accounts().await.unwrap().is_empty());
    let pending = "SELECT COUNT(*) FROM credit_operations WHERE status = 'pending'";
    assert_eq!(
        scalar(database, pending).await,
        0,
        "a chunk is left pending"
    );
}

async fn end_of_day_killed_mid_run_leaves_the_books_of_a_straight_run(
    straight_url: &str,
    crashed_url: &str,
) {
    let directory = tempfile::tempdir().unwrap();
    let straight_url = generate(straight_url, directory.path());
    let crashed_url = generate(crashed_url, directory.path());

    // How long a straight run of the date takes sets when the kills come: each a fifth of
    // it after its start, so each restart gets through a few chunks (after first finishing
    // the one left pending) and is cut inside another, at whichever step it has reached.
    let started = Instant::now();
    let printed = run_to_end(&straight_url, CRASHED_DATE, directory.path());
    let straight_time = started.elapsed();
    assert!(!printed.contains("(resumed)"), "{printed}");

    let mut interrupted = 0;
    for _ in 0..KILLS {
        let delay = (straight_time / 5).max(Duration::from_millis(30));
        if kill_after(&crashed_url, CRASHED_DATE, directory.path(), delay) {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "every run finished before it was killed (a straight run takes {straight_time:?})"
    );
    let printed = run_to_end(&crashed_url, CRASHED_DATE, directory.path());
    assert!(
        printed.contains("(resumed)") || printed.contains("already finished"),
        "the run after {interrupted} kills neither resumed nor found the date done: {printed}"
    );
    // Once finished, the date is not run again.
    let again = run_to_end(&crashed_url, CRASHED_DATE, directory.path());
    assert!(again.contains("already finished"), "{again}");

    // The next date runs on both, from the same books.
    run_to_end(&straight_url, NEXT_DATE, directory.path());
    run_to_end(&crashed_url, NEXT_DATE, directory.path());

    let straight = Database::connect(&straight_url).await.unwrap();
    let crashed = Database::connect(&crashed_url).await.unwrap();
    assert_books_balance(&straight).await;
    assert_books_balance(&crashed).await;
    let (straight_accounts, straight_balances) = books(&straight).await;
    let (crashed_accounts, crashed_balances) = books(&crashed).await;
    assert_eq!(crashed_balances, straight_balances);
    for (id, (crashed, straight)) in crashed_accounts.iter().zip(&straight_accounts).enumerate() {
        assert_eq!(crashed, straight, "credit account {}", id + 1);
    }
    assert_eq!(
        crashed.currency_totals().await.unwrap(),
        straight.currency_totals().await.unwrap()
    );
    eprintln!(
        "end of day killed {interrupted} times mid-run (a straight run takes {straight_time:?}); \
         the books equal the straight run's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", directory.path().join(name).display());
    end_of_day_killed_mid_run_leaves_the_books_of_a_straight_run(
        &url("straight.db"),
        &url("crashed.db"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    // `None` only under TALLY_TEST_SKIP_POSTGRES=1; the skip is printed.
    let Some(url) = tally_store::testing::postgres_url() else {
        return;
    };
    // `tally eod bench` makes a fresh schema for each portfolio and keeps it.
    end_of_day_killed_mid_run_leaves_the_books_of_a_straight_run(&url, &url).await;
}
