//! The daily sweep of repayments on SQLite and PostgreSQL: a date's repayments (and only
//! that date's) move from the repayment clearing account to the bank account, once however
//! often the sweep is asked; a date not over yet is refused; the books balance.
#![allow(clippy::unwrap_used)]

use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{Amount, Clock, Currency, ManualClock};
use tally_credit::LedgerRole;
use tally_ledger::{Command, NewEntry, NewLeg, Side};
use tally_service::credit::ledger_accounts::{credit_ledger_accounts, CREDIT_SERVICE};
use tally_service::credit::sweep::{bank_account_code, sweep_repayments, SweepError};
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A repayment of `minor` arriving at the clock's time: clearing debited, the customer's
/// credit balance credited (an overpayment, the simplest repayment to post by hand).
async fn repay(database: &Database, writer: &LedgerWriter, key: &str, minor: i64) {
    let accounts = credit_ledger_accounts(database, writer, Currency::CNY)
        .await
        .unwrap();
    let amount = Amount::new(minor, Currency::CNY);
    let entry = NewEntry {
        description: format!("repayment {key}"),
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
    };
    writer
        .submit_as(
            CREDIT_SERVICE,
            format!("credit-test:{key}"),
            Command::PostEntry(entry),
        )
        .await
        .unwrap();
}

async fn balance(database: &Database, code: &str) -> i64 {
    let id = database.account_id_by_code(code).await.unwrap().unwrap();
    let balance = database.account(id).await.unwrap().unwrap().balance;
    balance.debits_posted - balance.credits_posted
}

async fn a_days_repayments_are_swept_once(test: TestDatabase) {
    let database = test.database.clone();
    let clock = Arc::new(ManualClock::new(at("2026-05-04T09:00:00Z")));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let (writer, _) = LedgerWriter::start(&database, dyn_clock, WriterConfig::default())
        .await
        .unwrap();
    let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
    // 2026-05-04 in Shanghai runs from 2026-05-03T16:00Z to 2026-05-04T16:00Z.
    repay(&database, &writer, "r1", 10_000).await;
    clock.set(at("2026-05-04T15:59:00Z"));
    repay(&database, &writer, "r2", 2_550).await;
    clock.set(at("2026-05-04T16:01:00Z"));
    repay(&database, &writer, "r3", 700).await;

    let early = sweep_repayments(
        &database,
        &writer,
        Currency::CNY,
        date(2026, 5, 5),
        &shanghai,
        clock.now(),
    )
    .await;
    assert!(
        matches!(early, Err(SweepError::DateNotClosed { .. })),
        "{early:?}"
    );
    assert_eq!(early.unwrap_err().code(), "sweep_date_not_closed");

    let sweep = || {
        sweep_repayments(
            &database,
            &writer,
            Currency::CNY,
            date(2026, 5, 4),
            &shanghai,
            clock.now(),
        )
    };
    let first = sweep().await.unwrap();
    assert_eq!(first.amount.value, "125.50");
    assert_eq!(first.key, "credit-sweep:2026-05-04:CNY");
    let bank = bank_account_code(Currency::CNY);
    assert_eq!(balance(&database, &bank).await, 12_550);
    assert_eq!(
        balance(&database, "credit-repayment-clearing-CNY").await,
        700
    );
    // Asked again (a rerun of the daily job), it moves nothing more.
    clock.set(at("2026-05-05T03:00:00Z"));
    let again = sweep().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(balance(&database, &bank).await, 12_550);
    // The next date takes only its own repayment.
    clock.set(at("2026-05-05T17:00:00Z"));
    let next = sweep_repayments(
        &database,
        &writer,
        Currency::CNY,
        date(2026, 5, 5),
        &shanghai,
        clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(next.amount.value, "7.00");
    assert_eq!(balance(&database, "credit-repayment-clearing-CNY").await, 0);
    // A date with nothing repaid posts nothing.
    let entries = || async {
        tally_store::with_pool!(&database, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM journal_entries"
        )
        .fetch_one(pool)
        .await
        .unwrap())
    };
    let before = entries().await;
    let empty = sweep_repayments(
        &database,
        &writer,
        Currency::CNY,
        date(2026, 5, 1),
        &shanghai,
        clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(empty.amount.value, "0.00");
    assert_eq!(entries().await, before);
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
    }
    assert!(database.inconsistent_accounts().await.unwrap().is_empty());
}

tally_store::on_both_backends!(a_days_repayments_are_swept_once);
