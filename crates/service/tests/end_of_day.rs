//! Credit accounts in the store and the end-of-day run, on SQLite and PostgreSQL: the same
//! date twice changes nothing, a run stopped mid-way and resumed gives the same books as one
//! that was not, and the ledger balances and matches the accounts after a run.
#![allow(clippy::unwrap_used)]

use jiff::civil::{date, Date};
use jiff::{Timestamp, ToSpan};
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{Amount, Clock, Currency, ManualClock};
use tally_credit::{Account, AccountPolicy, Cycle, LedgerRole, Product};
use tally_ledger::{Balance, Command};
use tally_service::credit::end_of_day::{
    run_end_of_day, EndOfDayError, EndOfDayOptions, EndOfDayReport,
};
use tally_service::credit::ledger_accounts::{
    credit_ledger_accounts, CREDIT_SERVICE, LEDGER_ROLES,
};
use tally_store::credit::CreditAccountId;
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

const ACCOUNTS: i64 = 30;

async fn writer(database: &Database) -> LedgerWriter {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        "2026-03-01T08:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    LedgerWriter::start(database, clock, WriterConfig::default())
        .await
        .unwrap()
        .0
}

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

fn product() -> Product {
    serde_json::from_str(
        r#"{"code": "flat", "name": "flat fee", "currency": "CNY",
            "fee_model": {"kind": "flat_fee"},
            "terms": [{"periods": 1, "rate": "0"}, {"periods": 3, "rate": "0.007"},
                      {"periods": 6, "rate": "0.006"}, {"periods": 12, "rate": "0.008"}]}"#,
    )
    .unwrap()
}

/// Accounts with statement days spread over the month and one to three purchases each,
/// stored, with their purchases posted to the ledger. Some are paid in part (revolving),
/// most not at all (overdue and penalised after the due date).
async fn seed(database: &Database, writer: &LedgerWriter) {
    let product = product();
    let ledger = credit_ledger_accounts(database, writer, Currency::CNY)
        .await
        .unwrap();
    let mut accounts = Vec::new();
    for id in 1..=ACCOUNTS {
        let statement_day = i8::try_from(1 + id % 28).unwrap();
        let mut account =
            Account::open(cny("20000.00"), Cycle::new(statement_day, 9).unwrap()).unwrap();
        let purchases = 1 + id % 3;
        for purchase in 0..purchases {
            let day = date(2025, 12, 1)
                .checked_add((purchase * 7).days())
                .unwrap();
            let value = cny(&format!(
                "{}.{:02}",
                300 + id * 17 + purchase * 101,
                id % 100
            ));
            account.authorize(day, value).unwrap();
            let periods = [1, 3, 6, 12][usize::try_from((id + purchase) % 4).unwrap()];
            let (_, posting) = account.capture(day, value, &product, periods).unwrap();
            writer
                .submit_as(
                    CREDIT_SERVICE,
                    format!("purchase:{id}:{purchase}"),
                    Command::PostEntry(ledger.entry(&posting)),
                )
                .await
                .unwrap();
        }
        accounts.push((id, account));
    }
    // Bring every account to 31 December, paying some statements in part.
    let policy = AccountPolicy::default();
    let mut outcome = tally_credit::DayOutcome::default();
    let mut day = date(2025, 12, 1);
    while day <= date(2025, 12, 31) {
        for (id, account) in &mut accounts {
            account.end_of_day(day, &policy, &mut outcome).unwrap();
            for (index, posting) in outcome.postings.iter().enumerate() {
                if posting.is_empty() {
                    continue;
                }
                writer
                    .submit_as(
                        CREDIT_SERVICE,
                        format!("seed:{id}:{day}:{index}"),
                        Command::PostEntry(ledger.entry(posting)),
                    )
                    .await
                    .unwrap();
            }
            if *id % 4 == 0 {
                if let Some(statement) = &outcome.statement {
                    if statement.minimum_payment.is_positive() {
                        let repayment = account
                            .repay(day, statement.minimum_payment, &policy)
                            .unwrap();
                        writer
                            .submit_as(
                                CREDIT_SERVICE,
                                format!("repay:{id}:{day}"),
                                Command::PostEntry(ledger.entry(&repayment.posting)),
                            )
                            .await
                            .unwrap();
                    }
                }
            }
        }
        day = day.checked_add(1.day()).unwrap();
    }
    database.put_credit_accounts(&accounts).await.unwrap();
}

/// The clock end of day reads its run times from.
fn clock() -> ManualClock {
    ManualClock::new("2026-03-01T23:00:00Z".parse::<Timestamp>().unwrap())
}

fn options(chunk_size: usize) -> EndOfDayOptions {
    EndOfDayOptions {
        chunk_size,
        threads: 2,
        crash_after_accounts: None,
    }
}

/// End of day for `day` with the default policy, chunks of 7 and the tests' clock.
async fn run_day(
    database: &Database,
    writer: &LedgerWriter,
    day: Date,
) -> Result<EndOfDayReport, EndOfDayError> {
    let policy = AccountPolicy::default();
    run_end_of_day(database, writer, day, &policy, &options(7), &clock()).await
}

async fn run_days(database: &Database, writer: &LedgerWriter, from: Date, until: Date) {
    let mut day = from;
    while day <= until {
        let report = run_day(database, writer, day).await.unwrap();
        assert!(!report.already_finished && !report.interrupted);
        assert_eq!(report.accounts, u64::try_from(ACCOUNTS).unwrap());
        day = day.checked_add(1.day()).unwrap();
    }
}

/// Every account as the runs see it, and every credit ledger account's balance by role.
async fn books(
    database: &Database,
    writer: &LedgerWriter,
) -> (Vec<Account>, BTreeMap<LedgerRole, Balance>) {
    let mut accounts = Vec::new();
    for id in 1..=ACCOUNTS {
        accounts.push(
            database
                .credit_account_as_of_runs(id as CreditAccountId)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let ledger = credit_ledger_accounts(database, writer, Currency::CNY)
        .await
        .unwrap();
    let mut balances = BTreeMap::new();
    for role in LEDGER_ROLES {
        let state = database
            .account(ledger.account_of(role))
            .await
            .unwrap()
            .unwrap();
        balances.insert(role, state.balance);
    }
    (accounts, balances)
}

async fn assert_books_balance(database: &Database) {
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
    }
    assert_eq!(
        database.inconsistent_accounts().await.unwrap(),
        Vec::<String>::new()
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(
                    TestDatabase::sqlite().await.unwrap(),
                    TestDatabase::sqlite().await.unwrap(),
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                // `None` only under TALLY_TEST_SKIP_POSTGRES=1; the skip is printed.
                if let (Some(one), Some(other)) =
                    (TestDatabase::postgres().await, TestDatabase::postgres().await)
                {
                    super::$name(one, other).await;
                }
            }
        })*
    };
}

on_both_backends!(
    the_same_date_twice_changes_nothing,
    a_run_stopped_mid_way_resumes_to_the_same_books,
    the_ledger_balances_and_matches_the_accounts,
    a_refused_account_stops_the_run_until_it_is_fixed,
    end_of_day_reads_the_time_from_the_callers_clock,
    end_of_day_never_overwrites_another_operation_under_its_key,
);

async fn the_same_date_twice_changes_nothing(test: TestDatabase, _other: TestDatabase) {
    let writer = writer(&test.database).await;
    seed(&test.database, &writer).await;
    run_days(&test.database, &writer, date(2026, 1, 1), date(2026, 1, 3)).await;
    let before = books(&test.database, &writer).await;
    let totals = test.database.currency_totals().await.unwrap();
    let report = run_day(&test.database, &writer, date(2026, 1, 3))
        .await
        .unwrap();
    assert!(report.already_finished);
    assert_eq!(report.postings, 0);
    assert_eq!(books(&test.database, &writer).await, before);
    assert_eq!(test.database.currency_totals().await.unwrap(), totals);
    // An earlier date that ran is a no-op too; one before the first run, or one after a gap,
    // is refused and changes nothing.
    let report = run_day(&test.database, &writer, date(2026, 1, 2))
        .await
        .unwrap();
    assert!(report.already_finished);
    for (day, code) in [
        (date(2025, 12, 31), "credit_end_of_day_out_of_order"),
        (date(2026, 1, 5), "credit_end_of_day_previous_unfinished"),
    ] {
        let error = run_day(&test.database, &writer, day).await.unwrap_err();
        assert_eq!(error.code(), code);
    }
    assert_eq!(books(&test.database, &writer).await, before);
    assert_books_balance(&test.database).await;
}

async fn a_run_stopped_mid_way_resumes_to_the_same_books(test: TestDatabase, other: TestDatabase) {
    let straight = writer(&test.database).await;
    seed(&test.database, &straight).await;
    run_days(
        &test.database,
        &straight,
        date(2026, 1, 1),
        date(2026, 1, 12),
    )
    .await;
    let expected = books(&test.database, &straight).await;

    let interrupted = writer(&other.database).await;
    seed(&other.database, &interrupted).await;
    run_days(
        &other.database,
        &interrupted,
        date(2026, 1, 1),
        date(2026, 1, 9),
    )
    .await;
    let policy = AccountPolicy::default();
    // 10 January: stop after 12 accounts (the second chunk of 7 has posted but not saved),
    // then again after 8 more, then finish with a new writer, as after a restart.
    for stop in [12, 8] {
        let report = run_end_of_day(
            &other.database,
            &interrupted,
            date(2026, 1, 10),
            &policy,
            &EndOfDayOptions {
                crash_after_accounts: Some(stop),
                ..options(7)
            },
            &clock(),
        )
        .await
        .unwrap();
        assert!(report.interrupted);
    }
    // 11 January cannot start before 10 January has finished.
    let error = run_end_of_day(
        &other.database,
        &interrupted,
        date(2026, 1, 11),
        &policy,
        &options(7),
        &clock(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "credit_end_of_day_previous_unfinished");
    drop(interrupted);
    let restarted = writer(&other.database).await;
    let report = run_end_of_day(
        &other.database,
        &restarted,
        date(2026, 1, 10),
        &policy,
        &options(7),
        &clock(),
    )
    .await
    .unwrap();
    assert!(report.resumed && !report.interrupted);
    assert!(report.accounts < u64::try_from(ACCOUNTS).unwrap());
    run_days(
        &other.database,
        &restarted,
        date(2026, 1, 11),
        date(2026, 1, 12),
    )
    .await;
    assert_eq!(books(&other.database, &restarted).await, expected);
    assert_eq!(
        other.database.currency_totals().await.unwrap(),
        test.database.currency_totals().await.unwrap()
    );
    assert_books_balance(&other.database).await;
}

async fn the_ledger_balances_and_matches_the_accounts(test: TestDatabase, _other: TestDatabase) {
    let writer = writer(&test.database).await;
    seed(&test.database, &writer).await;
    run_days(&test.database, &writer, date(2026, 1, 1), date(2026, 2, 15)).await;
    assert_books_balance(&test.database).await;
    let (accounts, balances) = books(&test.database, &writer).await;
    let owed: i64 = accounts
        .iter()
        .map(|account| {
            account.billed_balance().minor() + account.unpaid_principal().minor()
                - account
                    .dues
                    .iter()
                    .map(|due| due.principal.minor())
                    .sum::<i64>()
        })
        .sum();
    let receivable = balances[&LedgerRole::CustomerReceivable];
    assert_eq!(receivable.debits_posted - receivable.credits_posted, owed);
    let credit_balance: i64 = accounts
        .iter()
        .map(|account| account.credit_balance.minor())
        .sum();
    let held = balances[&LedgerRole::CustomerCreditBalance];
    assert_eq!(held.credits_posted - held.debits_posted, credit_balance);
    // Penalties were charged (accounts that never paid) and the run wrote them.
    assert!(balances[&LedgerRole::PenaltyIncome].credits_posted > 0);
    assert!(accounts
        .iter()
        .all(|account| account.last_end_of_day == Some(date(2026, 2, 15))));
}

async fn a_refused_account_stops_the_run_until_it_is_fixed(
    test: TestDatabase,
    _other: TestDatabase,
) {
    let writer = writer(&test.database).await;
    seed(&test.database, &writer).await;
    let good = test.database.credit_account(17).await.unwrap().unwrap();
    let mut behind = good.clone();
    behind.last_end_of_day = Some(date(2025, 12, 20));
    test.database
        .put_credit_accounts(&[(17, behind)])
        .await
        .unwrap();
    let error = run_day(&test.database, &writer, date(2026, 1, 1))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "credit_end_of_day_account_refused");
    // The date has not finished: the next one cannot start.
    let error = run_day(&test.database, &writer, date(2026, 1, 2))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "credit_end_of_day_previous_unfinished");
    // Once the account is repaired, the run resumes at its chunk and finishes.
    test.database
        .put_credit_accounts(&[(17, good)])
        .await
        .unwrap();
    let report = run_day(&test.database, &writer, date(2026, 1, 1))
        .await
        .unwrap();
    assert!(report.resumed);
    run_days(&test.database, &writer, date(2026, 1, 2), date(2026, 1, 2)).await;
    assert_books_balance(&test.database).await;
}

/// The one row `sql` answers, on whichever backend `database` is.
async fn row<T>(database: &Database, sql: &str) -> T
where
    T: Send
        + Unpin
        + for<'row> sqlx::FromRow<'row, sqlx::sqlite::SqliteRow>
        + for<'row> sqlx::FromRow<'row, sqlx::postgres::PgRow>,
{
    tally_store::with_pool!(database, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap())
}

/// One row of integers from `sql`.
async fn integers(database: &Database, sql: &str) -> Vec<i64> {
    let row: (i64, i64, i64) = row(database, sql).await;
    vec![row.0, row.1, row.2]
}

async fn end_of_day_reads_the_time_from_the_callers_clock(
    test: TestDatabase,
    _other: TestDatabase,
) {
    let writer = writer(&test.database).await;
    seed(&test.database, &writer).await;
    run_days(&test.database, &writer, date(2026, 1, 1), date(2026, 1, 1)).await;
    let then = clock().now().as_microsecond();
    // The run's start and end, and its operations: the caller's clock, not the wall clock.
    assert_eq!(
        integers(
            &test.database,
            "SELECT MIN(started_at), MAX(finished_at), COUNT(*) FROM credit_end_of_day_runs"
        )
        .await,
        vec![then, then, 1]
    );
    let operations = integers(
        &test.database,
        "SELECT MIN(created_at), MAX(created_at), COUNT(*) FROM credit_operations \
         WHERE kind = 'end_of_day'",
    )
    .await;
    assert_eq!(operations[..2], [then, then]);
    assert!(operations[2] > 0);
}

async fn end_of_day_never_overwrites_another_operation_under_its_key(
    test: TestDatabase,
    _other: TestDatabase,
) {
    let writer = writer(&test.database).await;
    seed(&test.database, &writer).await;
    // A client's operation under the key end of day gives its first chunk of 1 January (as
    // one could be stored before client keys under `credit-` were refused).
    let insert = "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                  answer_code, response, commands, status, created_at) \
                  VALUES ('credit-eod:2026-01-01:0', 3, 'repay', 'client', 200, '{}', '[]', \
                  'done', 0)";
    tally_store::with_pool!(&test.database, |pool| {
        sqlx::query(insert).execute(pool).await.unwrap();
    });
    let before = books(&test.database, &writer).await;
    let error = run_day(&test.database, &writer, date(2026, 1, 1))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "credit_end_of_day_key_taken", "{error}");
    // The client's operation is as it was, and nothing of the chunk was stored or posted.
    let select = "SELECT kind, request_hash, commands, status FROM credit_operations \
                  WHERE key = 'credit-eod:2026-01-01:0'";
    let row: (String, String, String, String) = row(&test.database, select).await;
    assert_eq!(
        row,
        ("repay".into(), "client".into(), "[]".into(), "done".into())
    );
    assert_eq!(books(&test.database, &writer).await, before);
    assert_books_balance(&test.database).await;
}
