//! `tally settle --date` on a database: a date not over yet is refused with its code and
//! exit 1; a past date is settled (no merchants: nothing to move) and, run again, answers
//! the same run without settling anything twice.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::process::Command;
use tally_store::testing::TestDatabase;

mod support;
use support::{Run, BINARY};

fn settle(url: &str, date: &str, directory: &std::path::Path) -> Run {
    Run::of(
        Command::new(BINARY)
            .args(["settle", "--date", date, "--database-url", url])
            .current_dir(directory)
            .env("TALLY_LOG", "warn")
            .output()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_date_is_settled_once_and_only_when_it_is_over() {
    let test = TestDatabase::sqlite().await.unwrap();
    let url = test.url_for_another_process();
    let directory = tempfile::tempdir().unwrap();

    let early = settle(&url, "2999-01-01", directory.path());
    assert_eq!(early.code, 1, "{}", early.stdout);
    assert!(early.stdout.is_empty(), "{}", early.stdout);
    assert!(
        early.stderr.trim_end().ends_with("settlement_date_not_closed: business date 2999-01-01 is not closed yet: it is not over yet in the service's zone"),
        "{}",
        early.stderr
    );

    let first = settle(&url, "2020-01-06", directory.path());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let run: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(run["business_date"], "2020-01-06");
    assert_eq!(run["status"], "done");
    assert_eq!(run["merchants_settled"], 0);
    let again = settle(&url, "2020-01-06", directory.path());
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(serde_json::from_str::<Value>(&again.stdout).unwrap(), run);
}
