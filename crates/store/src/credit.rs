//! Storage of credit accounts and of the end-of-day run's rows: accounts as JSON rows, the
//! run table that makes a run resumable, and a chunk's changes written in one transaction.
//! The run itself (what to compute, what to post, in which order) is the credit service's
//! (`tally_service::credit::end_of_day`).
//!
//! # Decisions
//!
//! - **Stored form.** A `tally_credit::Account` is stored whole as its serde JSON in one row
//!   (`credit_accounts.state`), keyed by an integer id. JSON because the credit crate's types
//!   are serde plain data already (amounts as exact decimal strings, dates as ISO text), it
//!   needs no new dependency, stays readable with `sqlite3`/`psql` when an account must be
//!   inspected, and survives additive changes to the types; PostgreSQL compresses it (TOAST)
//!   on its own. The integer id gives the run its cursor (accounts are processed in id order).
//! - **Not rewriting what did not change.** Most account-days change nothing but the date.
//!   Such accounts are not rewritten: the run table says which dates ran for every account,
//!   so an account stored at date `x` that every run since has seen is, in effect, at the
//!   previous business date ([`effective_last`]). Runs are contiguous (a date starts only
//!   when the previous one has finished), which is what makes that inference sound.

use crate::database::Database;
use crate::error::StoreError;
use crate::rows::micros;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use tally_core::{AccountId, Currency};
use tally_credit::{Account, ContactTask};

/// The identifier of a stored credit account.
pub type CreditAccountId = i64;

/// The stable name of a bucket (`current`, `m1`, … `m6_plus`).
pub fn bucket_name(bucket: tally_credit::Bucket) -> String {
    serde_json::to_value(bucket)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{bucket:?}"))
}

/// Runs `$body` with `$pool` bound to the SQLite or the PostgreSQL pool: the statements are
/// the same on both backends.
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            crate::database::Database::Sqlite($pool) => $body,
            crate::database::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

pub fn encode(account: &Account) -> Result<String, StoreError> {
    serde_json::to_string(account)
        .map_err(|error| StoreError::Corrupt(format!("credit account: {error}")))
}

pub fn decode(id: CreditAccountId, state: &str) -> Result<Account, StoreError> {
    serde_json::from_str(state)
        .map_err(|error| StoreError::Corrupt(format!("credit account {id}: {error}")))
}

/// Rows per multi-row statement (4 parameters each; both backends accept this many).
const ROWS_PER_STATEMENT: usize = 500;

/// Appends `rows` parenthesised lists of `columns` numbered parameters: `($1, $2), ($3, $4)`.
pub(crate) fn push_value_rows(sql: &mut String, rows: usize, columns: usize) {
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
}

/// Inserts or replaces accounts (already encoded), several rows per statement, in one
/// transaction.
async fn upsert_encoded(
    database: &Database,
    rows: &[(CreditAccountId, Currency, Option<Date>, String)],
) -> Result<(), StoreError> {
    on_pool!(database, pool => {
        let mut transaction = pool.begin().await?;
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO credit_accounts (id, currency, last_end_of_day, state) VALUES ",
            );
            push_value_rows(&mut sql, part.len(), 4);
            sql.push_str(
                " ON CONFLICT (id) DO UPDATE SET currency = excluded.currency, \
                 last_end_of_day = excluded.last_end_of_day, state = excluded.state, \
                 version = credit_accounts.version + 1",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, currency, last, state) in part {
                query = query
                    .bind(*id)
                    .bind(currency.code().to_string())
                    .bind(last.map(|date| date.to_string()))
                    .bind(state.as_str());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
    });
    Ok(())
}

/// What a chunk of an end-of-day run did, added to the run's counts.
#[derive(Debug, Clone, Copy)]
pub struct RunProgress {
    pub next_account: i64,
    pub accounts: i64,
    pub written: i64,
    pub postings: i64,
    pub failures: i64,
}

/// What one chunk of an end-of-day run stores in its transaction.
#[derive(Debug, Default)]
pub struct ChunkWrite {
    /// Changed accounts: id, version read, end-of-day date, state.
    pub accounts: Vec<(CreditAccountId, i64, Option<Date>, String)>,
    /// The chunk's ledger commands (JSON text), stored as a pending operation; `None` when
    /// there are none.
    pub commands: Option<String>,
    pub statements: Vec<(CreditAccountId, Date, String)>,
    pub contacts: Vec<(CreditAccountId, ContactTask)>,
}

/// What became of a chunk's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkWritten {
    Written,
    /// An account's version changed since it was read: nothing was stored.
    Conflict,
    /// The operation key is held by an operation that is not end of day's: nothing was
    /// stored.
    KeyTaken,
}

impl Database {
    /// Stores accounts under the given ids, replacing any stored under the same id.
    pub async fn put_credit_accounts(
        &self,
        accounts: &[(CreditAccountId, Account)],
    ) -> Result<(), StoreError> {
        let rows = accounts
            .iter()
            .map(|(id, account)| {
                Ok((
                    *id,
                    account.currency,
                    account.last_end_of_day,
                    encode(account)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        upsert_encoded(self, &rows).await
    }

    /// Stores accounts already encoded as JSON (the benchmark's generator stores one
    /// template many times without encoding it again).
    pub async fn put_credit_accounts_encoded(
        &self,
        rows: &[(CreditAccountId, Currency, Option<Date>, String)],
    ) -> Result<(), StoreError> {
        upsert_encoded(self, rows).await
    }

    /// An account as stored. Its `last_end_of_day` may lag behind runs that changed nothing
    /// in it; [`Database::credit_account_as_of_runs`] gives the account as the runs see it.
    pub async fn credit_account(&self, id: CreditAccountId) -> Result<Option<Account>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT state FROM credit_accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(state,)| decode(id, &state)).transpose()
    }

    /// An account with `last_end_of_day` brought up to the last finished run it took part in.
    pub async fn credit_account_as_of_runs(
        &self,
        id: CreditAccountId,
    ) -> Result<Option<Account>, StoreError> {
        let runs = self.runs_covering(id).await?;
        let Some(mut account) = self.credit_account(id).await? else {
            return Ok(None);
        };
        bring_up_to_runs(&mut account, runs);
        Ok(Some(account))
    }

    /// The first run's date and the last date whose run covered account `id` (finished, or
    /// in progress past it), when there are such runs.
    pub async fn runs_covering(
        &self,
        id: CreditAccountId,
    ) -> Result<Option<(Date, Date)>, StoreError> {
        let (first, last): (Option<String>, Option<String>) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT MIN(business_date) FROM credit_end_of_day_runs), \
                 (SELECT MAX(business_date) FROM credit_end_of_day_runs \
                 WHERE finished_at IS NOT NULL OR next_account > $1)",
            )
            .bind(id)
            .fetch_one(pool)
            .await?
        });
        let parse = |text: String| {
            text.parse::<Date>()
                .map_err(|_| StoreError::Corrupt(format!("run date {text}")))
        };
        match (first, last) {
            (Some(first), Some(last)) => Ok(Some((parse(first)?, parse(last)?))),
            _ => Ok(None),
        }
    }

    /// The highest stored credit account id, if any.
    pub async fn last_credit_account_id(&self) -> Result<Option<CreditAccountId>, StoreError> {
        let row: (Option<i64>,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT MAX(id) FROM credit_accounts")
                .fetch_one(pool)
                .await?
        });
        Ok(row.0)
    }

    /// Every run: business date, cursor, finished; oldest first.
    pub async fn end_of_day_runs(&self) -> Result<Vec<(Date, i64, bool)>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT business_date, next_account, finished_at FROM credit_end_of_day_runs \
                 ORDER BY business_date",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(date, next, finished)| {
                let date: Date = date
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("run date {date}")))?;
                Ok((date, next, finished.is_some()))
            })
            .collect()
    }

    /// The id of the ledger account under `code`.
    pub async fn account_id_by_code(&self, code: &str) -> Result<Option<AccountId>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id FROM accounts WHERE code = $1")
                .bind(code)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(id,)| {
            uuid::Uuid::parse_str(&id)
                .map(AccountId)
                .map_err(|_| StoreError::Corrupt(format!("account id {id}")))
        })
        .transpose()
    }

    /// Up to `limit` accounts from id `cursor` on, in id order: id, version and state (JSON
    /// text, see [`decode`]).
    pub async fn credit_accounts_from(
        &self,
        cursor: CreditAccountId,
        limit: usize,
    ) -> Result<Vec<(CreditAccountId, i64, String)>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, version, state FROM credit_accounts WHERE id >= $1 ORDER BY id \
                 LIMIT $2",
            )
            .bind(cursor)
            .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Starts the run of `date` at the first account (a run of that date stored already is
    /// left as it is).
    pub async fn insert_end_of_day_run(
        &self,
        date: Date,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO credit_end_of_day_runs (business_date, next_account, accounts_done, \
                 accounts_written, postings, failures, started_at) VALUES ($1, 0, 0, 0, 0, 0, $2) \
                 ON CONFLICT (business_date) DO NOTHING",
            )
            .bind(date.to_string())
            .bind(micros(now))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks the run of `date` finished.
    pub async fn finish_end_of_day_run(
        &self,
        date: Date,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE credit_end_of_day_runs SET finished_at = $2 WHERE business_date = $1")
                .bind(date.to_string())
                .bind(micros(now))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores a chunk in one transaction: changed states (only where the version is still the
    /// one read; otherwise nothing is stored), the pending operation holding its ledger
    /// commands, statements, contact tasks and the run's cursor.
    pub async fn write_end_of_day_chunk(
        &self,
        chunk: &ChunkWrite,
        operation_key: &str,
        date: &str,
        progress: RunProgress,
        now: Timestamp,
    ) -> Result<ChunkWritten, StoreError> {
        let now = micros(now);
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            for part in chunk.accounts.chunks(ROWS_PER_STATEMENT) {
                let mut sql = String::from("WITH changed (id, version, last_end_of_day, state) AS (VALUES ");
                push_value_rows(&mut sql, part.len(), 4);
                sql.push_str(
                    ") UPDATE credit_accounts SET state = changed.state, \
                     last_end_of_day = changed.last_end_of_day, version = credit_accounts.version + 1 \
                     FROM changed WHERE credit_accounts.id = changed.id \
                     AND credit_accounts.version = changed.version",
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, version, last, state) in part {
                    query = query
                        .bind(*id)
                        .bind(*version)
                        .bind(last.map(|date| date.to_string()))
                        .bind(state.as_str());
                }
                let updated = query.execute(&mut *transaction).await?;
                if updated.rows_affected() != part.len() as u64 {
                    transaction.rollback().await?;
                    return Ok(ChunkWritten::Conflict);
                }
            }
            if let Some(commands) = &chunk.commands {
                // Only ever replaces an end-of-day operation: a client's operation under the same
                // key (made before `credit-` keys were refused) keeps its commands.
                let stored = sqlx::query(
                    "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                     answer_code, response, commands, status, created_at) \
                     VALUES ($1, -1, 'end_of_day', '', 200, '{}', $2, 'pending', $3) \
                     ON CONFLICT (key) DO UPDATE SET commands = excluded.commands, \
                     status = 'pending' WHERE credit_operations.kind = 'end_of_day'",
                )
                .bind(operation_key)
                .bind(commands)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
                if stored.rows_affected() != 1 {
                    transaction.rollback().await?;
                    return Ok(ChunkWritten::KeyTaken);
                }
            }
            for (id, statement_date, statement) in &chunk.statements {
                sqlx::query(
                    "INSERT INTO credit_statements (account_id, statement_date, statement) \
                     VALUES ($1, $2, $3) ON CONFLICT (account_id, statement_date) DO NOTHING",
                )
                .bind(*id)
                .bind(statement_date.to_string())
                .bind(statement)
                .execute(&mut *transaction)
                .await?;
            }
            for (id, task) in &chunk.contacts {
                sqlx::query(
                    "INSERT INTO credit_contact_tasks (account_id, business_date, kind, reason, \
                     bucket, days_past_due, amount_minor, currency, priority, status, created_at) \
                     VALUES ($1, $2, 'collections', $3, $4, $5, $6, $7, $8, 'open', $9) \
                     ON CONFLICT (account_id, business_date, kind, reason) DO NOTHING",
                )
                .bind(*id)
                .bind(date)
                .bind(&task.reason)
                .bind(bucket_name(task.bucket))
                .bind(task.days_past_due)
                .bind(task.amount.minor())
                .bind(task.amount.currency().code())
                .bind(i32::from(task.priority))
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            }
            sqlx::query(
                "UPDATE credit_end_of_day_runs SET next_account = $2, \
                 accounts_done = accounts_done + $3, accounts_written = accounts_written + $4, \
                 postings = postings + $5, failures = failures + $6 WHERE business_date = $1",
            )
            .bind(date)
            .bind(progress.next_account)
            .bind(progress.accounts)
            .bind(progress.written)
            .bind(progress.postings)
            .bind(progress.failures)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
        });
        Ok(ChunkWritten::Written)
    }
}

/// Sets an account's end-of-day date to what the runs that covered it make it (see
/// [`effective_last`]); `runs` as [`Database::runs_covering`] gives them.
pub fn bring_up_to_runs(account: &mut Account, runs: Option<(Date, Date)>) {
    if let Some((first, last)) = runs {
        account.last_end_of_day = effective_last(account.last_end_of_day, first, last);
    }
}

/// The date an account stored at `stored` is effectively at, given that every run from
/// `first` to `last` (contiguous) processed it and wrote it only when it changed.
pub fn effective_last(stored: Option<Date>, first: Date, last: Date) -> Option<Date> {
    match stored {
        Some(stored) if stored < last => match first.checked_sub(1.day()) {
            Ok(before_first) if stored >= before_first => Some(last),
            _ => Some(stored),
        },
        other => other,
    }
}
