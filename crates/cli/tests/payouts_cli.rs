//! `tally payouts run --date` and `tally payouts sweep --date` on a database: scheduled
//! payouts wait for the date's settlement run (exit 1 with its code), then answer the same
//! run however often they are asked; a sweep of a date not over is refused, a past one
//! answers its key. The run on the database is decided by the risk engine: a block-listed
//! merchant's payout is left out.
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

/// `tally payouts run` decides each scheduled payout with the risk engine rebuilt from the
/// database, as the API's run: a block-listed merchant's payout is left out (its balance
/// stays available), the other is paid, and the run again decides nothing twice.
#[tokio::test]
async fn the_scheduled_run_on_the_database_is_decided_by_the_risk_engine() {
    use std::sync::Arc;
    use tally_core::{Amount, Currency, ManualClock};
    use tally_ledger::{Command as LedgerCommand, NewEntry, NewLeg, Side};
    use tally_service::payments::accounts::PAYMENTS_SERVICE;
    use tally_service::payments::merchants::testing::{test_merchant, test_privacy};
    use tally_service::payments::{PaymentService, PaymentsConfig};
    use tally_store::risk::{ListEntryRow, RiskStore};
    use tally_store::{LedgerWriter, WriterConfig};

    let test = TestDatabase::sqlite().await.unwrap();
    let url = test.url_for_another_process();
    let directory = tempfile::tempdir().unwrap();
    let database = test.database.clone();
    let at = "2020-01-06T08:00:00Z".parse().unwrap();
    let (writer, _task) = LedgerWriter::start(
        &database,
        Arc::new(ManualClock::new(at)),
        WriterConfig::default(),
    )
    .await
    .unwrap();
    let payments = PaymentService::new(
        database.clone(),
        writer.clone(),
        None,
        None,
        PaymentsConfig::default(),
    );
    let clearing = payments
        .accounts()
        .service(&database, &writer, Currency::CNY)
        .await
        .unwrap()
        .channel_clearing;
    for merchant in ["paid-shop", "blocked-shop"] {
        payments
            .onboard_merchant(
                Some(&test_privacy()),
                test_merchant(merchant, Currency::CNY),
                None,
                at,
            )
            .await
            .unwrap();
        let available = payments
            .accounts()
            .merchant(&database, &writer, merchant, Currency::CNY)
            .await
            .unwrap()
            .available;
        let amount = Amount::new(5_000, Currency::CNY);
        writer
            .submit_as(
                PAYMENTS_SERVICE,
                format!("payments-test-fund:{merchant}"),
                LedgerCommand::PostEntry(NewEntry {
                    description: format!("test settlement of {merchant}"),
                    metadata: Default::default(),
                    legs: vec![
                        NewLeg {
                            account_id: clearing,
                            side: Side::Debit,
                            amount,
                        },
                        NewLeg {
                            account_id: available,
                            side: Side::Credit,
                            amount,
                        },
                    ],
                }),
            )
            .await
            .unwrap();
    }
    RiskStore::new(database.clone())
        .insert_list_entry(&ListEntryRow {
            id: "block-1".into(),
            kind: "block".into(),
            field: "merchant".into(),
            value: "blocked-shop".into(),
            reason: "test".into(),
            source: "manual".into(),
            added_at: at.as_microsecond(),
            added_by: "test".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    drop(payments);
    drop(writer);

    let settled = tally(&["settle", "--date", "2020-01-06"], &url, directory.path());
    assert_eq!(settled.code, 0, "{}", settled.stderr);
    let run = ["payouts", "run", "--date", "2020-01-06"];
    let first = tally(&run, &url, directory.path());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let answer: Value = serde_json::from_str(&first.stdout).unwrap();
    let batches = answer["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{answer}");
    let payouts = batches[0]["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1, "{answer}");
    assert_eq!(payouts[0]["merchant_id"], "paid-shop");
    let count = |sql: &'static str| {
        let database = database.clone();
        async move {
            tally_store::with_pool!(&database, |pool| {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(pool)
                    .await
                    .unwrap()
            })
        }
    };
    let rejected = "SELECT COUNT(*) FROM risk_events WHERE action = 'reject'";
    assert_eq!(count(rejected).await, 1);
    let available = database
        .account_id_by_code("payments-merchant-blocked-shop-available-CNY")
        .await
        .unwrap()
        .unwrap();
    let balance = database.account(available).await.unwrap().unwrap().balance;
    assert_eq!(balance.credits_posted - balance.debits_posted, 5_000);
    let again = tally(&run, &url, directory.path());
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(&again.stdout).unwrap(),
        answer
    );
    assert_eq!(count(rejected).await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM risk_events").await, 2);
}
