//! `tally daily --date` on a database: settlement, scheduled payouts, the repayment sweep
//! and the reconciliation, in that order. A repayment received during the date is swept
//! from the credit repayment clearing account to the bank account; the job run again
//! answers the same steps and posts nothing twice. A currency that is not one is refused
//! before anything runs.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use tally_core::{Amount, Currency, ManualClock};
use tally_credit::LedgerRole;
use tally_ledger::{Command as LedgerCommand, NewEntry, NewLeg, Side};
use tally_service::credit::ledger_accounts::{credit_ledger_accounts, CREDIT_SERVICE};
use tally_store::testing::TestDatabase;
use tally_store::{LedgerWriter, WriterConfig};

mod support;
use support::{Run, BINARY};

const DATE: &str = "2020-01-06";

fn daily(url: &str, directory: &std::path::Path, extra: &[&str]) -> Run {
    let file = directory.join("settlement.csv");
    std::fs::write(
        &file,
        format!(
            "record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee\n\
             trailer,{DATE},0,,,0.00,CNY,0.00\n"
        ),
    )
    .unwrap();
    Run::of(
        Command::new(BINARY)
            .args(["daily", "--date", DATE, "--database-url", url])
            .arg("--settlement-file")
            .arg(&file)
            .arg("--work-dir")
            .arg(directory.join("recon"))
            .args(extra)
            .current_dir(directory)
            .env("TALLY_LOG", "warn")
            .output()
            .unwrap(),
    )
}

async fn entries(test: &TestDatabase) -> i64 {
    tally_store::with_pool!(&test.database, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM journal_entries")
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

#[tokio::test]
async fn the_daily_job_sweeps_the_repayments_of_the_date_once() {
    let test = TestDatabase::sqlite().await.unwrap();
    let url = test.url_for_another_process();
    let directory = tempfile::tempdir().unwrap();

    // A repayment of 123.45 received during the date (the ledger posts at its clock's time).
    let clock = Arc::new(ManualClock::new("2020-01-06T05:00:00Z".parse().unwrap()));
    let (writer, _task) = LedgerWriter::start(&test.database, clock, WriterConfig::default())
        .await
        .unwrap();
    let accounts = credit_ledger_accounts(&test.database, &writer, Currency::CNY)
        .await
        .unwrap();
    let amount = Amount::new(12_345, Currency::CNY);
    writer
        .submit_as(
            CREDIT_SERVICE,
            "credit-test-repayment:1".into(),
            LedgerCommand::PostEntry(NewEntry {
                description: "a repayment beyond what was owed".into(),
                metadata: BTreeMap::new(),
                legs: vec![
                    NewLeg {
                        account_id: accounts.account_of(LedgerRole::RepaymentClearing),
                        side: Side::Debit,
                        amount,
                    },
                    NewLeg {
                        account_id: accounts.account_of(LedgerRole::CustomerCreditBalance),
                        side: Side::Credit,
                        amount,
                    },
                ],
            }),
        )
        .await
        .unwrap();
    drop(writer);

    let refused = daily(&url, directory.path(), &["--sweep-currency", "XXQ"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--sweep-currency"),
        "{}",
        refused.stderr
    );

    let first = daily(&url, directory.path(), &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let answer: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(answer["settlement"]["status"], "done", "{answer}");
    assert_eq!(answer["payouts"]["batches"], json!([]), "{answer}");
    assert_eq!(
        answer["sweeps"],
        json!([{
            "amount": {"value": "123.45", "currency": "CNY"},
            "business_date": DATE,
            "key": "credit-sweep:2020-01-06:CNY",
        }]),
        "{answer}"
    );
    assert_eq!(answer["reconciliation"]["exceptions"], 0, "{answer}");
    let steps: Vec<&str> = first
        .stderr
        .lines()
        .filter(|line| line.ends_with("done") || line.contains("exceptions"))
        .collect();
    assert_eq!(steps.len(), 4, "{}", first.stderr);
    assert!(steps[2].starts_with("sweep of"), "{}", first.stderr);
    let bank = test
        .database
        .account_id_by_code("credit-bank-CNY")
        .await
        .unwrap()
        .unwrap();
    let balance = test.database.account(bank).await.unwrap().unwrap().balance;
    assert_eq!(balance.debits_posted - balance.credits_posted, 12_345);

    let posted = entries(&test).await;
    let again = daily(&url, directory.path(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let repeated: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(repeated["sweeps"], answer["sweeps"]);
    assert_eq!(entries(&test).await, posted);
}
