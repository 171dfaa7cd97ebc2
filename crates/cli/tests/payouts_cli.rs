//! `tally payouts run --date` and `tally payouts sweep --date` on a database: scheduled
//! payouts wait for the date's settlement run (exit 1 with its code), then answer the same
//! run however often they are asked; a sweep of a date not over is refused, a past one
//! answers its key.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::process::Command;
use tally_store::testing::TestDatabase;

mod support;
use support::{Run, BINARY};

fn tally(arguments: &[&str], url: &str, directory: &std::path::Path) -> Run {
    Run::of(
        Command::new(BINARY)
            .args(arguments)
            .args(["--database-url", url])
            .current_dir(directory)
            .env("TALLY_LOG", "warn")
            .output()
            .unwrap(),
    )
}

#[tokio::test]
async fn scheduled_payouts_follow_settlement_and_sweeps_wait_for_the_day() {
    let test = TestDatabase::sqlite().await.unwrap();
    let url = test.url_for_another_process();
    let directory = tempfile::tempdir().unwrap();
    let run = ["payouts", "run", "--date", "2020-01-06"];

    let early = tally(&run, &url, directory.path());
    assert_eq!(early.code, 1, "{}", early.stdout);
    assert!(
        early
            .stderr
            .trim_end()
            .starts_with("settlement_run_not_done: the settlement run of 2020-01-06 is not done"),
        "{}",
        early.stderr
    );
    let settled = tally(&["settle", "--date", "2020-01-06"], &url, directory.path());
    assert_eq!(settled.code, 0, "{}", settled.stderr);
    let first = tally(&run, &url, directory.path());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let answer: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(answer["business_date"], "2020-01-06");
    assert_eq!(answer["batches"], serde_json::json!([]));
    let again = tally(&run, &url, directory.path());
    assert_eq!(
        serde_json::from_str::<Value>(&again.stdout).unwrap(),
        answer
    );

    let future = tally(
        &["payouts", "sweep", "--date", "2999-01-01"],
        &url,
        directory.path(),
    );
    assert_eq!(future.code, 1, "{}", future.stdout);
    assert!(
        future.stderr.starts_with("sweep_date_not_closed: "),
        "{}",
        future.stderr
    );
    let swept = tally(
        &[
            "payouts",
            "sweep",
            "--date",
            "2020-01-06",
            "--currency",
            "CNY",
        ],
        &url,
        directory.path(),
    );
    assert_eq!(swept.code, 0, "{}", swept.stderr);
    let sweep: Value = serde_json::from_str(&swept.stdout).unwrap();
    assert_eq!(sweep["key"], "credit-sweep:2020-01-06:CNY");
    assert_eq!(sweep["amount"]["value"], "0.00");
}
