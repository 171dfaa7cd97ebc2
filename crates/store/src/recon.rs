//! Storage of the reconciliation of Tally's own books: the page-by-page read of the ledger
//! outcomes a business date recorded (the ledger side), and the runs with their exceptions,
//! the worklist. Persistence only: what a run is and how an exception moves is the
//! service's (`tally_service::recon`).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::{is_unique_violation, StoreError};
use crate::lists::{order_by, ListPage};

/// Sorts of [`Database::recon_runs_list`], the first the default.
pub const RECON_RUN_SORTS: [&str; 4] = ["business_date", "exceptions", "unresolved", "matched"];
/// Sorts of [`Database::recon_exceptions_list`], the first the default (the order the run
/// found them in).
pub const RECON_EXCEPTION_SORTS: [&str; 6] = [
    "id",
    "class",
    "state",
    "assignee",
    "ledger_amount",
    "channel_amount",
];

/// A ledger write as its idempotency record keeps it: the key, the outcome as JSON and
/// when it was recorded (microseconds).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerOutcomeRow {
    pub key: String,
    pub outcome: String,
    pub created_at: i64,
}

/// Where a page of ledger outcomes starts: after this record (in `(created_at, key)`
/// order), or at the range's start when `None`.
pub type OutcomeCursor = Option<(i64, String)>;

/// Exceptions per multi-row insert (19 parameters each).
const EXCEPTIONS_PER_STATEMENT: usize = 200;

/// A stored reconciliation run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconRunRow {
    pub business_date: String,
    pub settlement_file: String,
    pub ledger_records: i64,
    pub channel_records: i64,
    pub matched: i64,
    pub exceptions: i64,
    pub carried_in: i64,
    pub carried_matched: i64,
    /// JSON: per class, per currency, count and sums.
    pub summary: String,
    pub created_at: i64,
}

/// A stored exception: one worklist item.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconExceptionRow {
    pub id: String,
    pub business_date: String,
    pub sequence: i64,
    pub class: String,
    pub reference: String,
    pub currency: String,
    pub ledger_amount_minor: Option<i64>,
    pub channel_amount_minor: Option<i64>,
    pub ledger_at: Option<i64>,
    pub state: String,
    pub assignee: Option<String>,
    pub resolution: Option<String>,
    pub note: Option<String>,
    pub adjusting_entry_id: Option<String>,
    pub carried_to: Option<String>,
    pub matched_on: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored run with how many of its exceptions are not resolved yet (its status on a
/// list of runs).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconRunListRow {
    #[sqlx(flatten)]
    pub run: ReconRunRow,
    pub unresolved: i64,
}

/// What an earlier exception became in a later run that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedOutcome {
    pub id: String,
    /// Matched there: resolved as `matched_later` on this date.
    pub matched_on: Option<String>,
    /// Still unmatched: its class now (a timing item past its window is missing).
    pub class: String,
}

/// Filters of the exception list; `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionFilter {
    pub business_date: Option<String>,
    pub class: Option<String>,
    pub state: Option<String>,
    pub assignee: Option<String>,
}

/// A change to one exception, made only if it is at `version` and not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExceptionChange {
    Assign {
        assignee: String,
    },
    Resolve {
        resolution: String,
        note: Option<String>,
        adjusting_entry_id: Option<String>,
    },
}

/// Whether a run was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunInsert {
    Inserted,
    /// A run of this date is stored already (another process reconciled it first).
    DateTaken,
}

const RUN_COLUMNS: &str = "business_date, settlement_file, ledger_records, channel_records, \
     matched, exceptions, carried_in, carried_matched, summary, created_at";

const EXCEPTION_COLUMNS: &str = "id, business_date, sequence, class, reference, currency, \
     ledger_amount_minor, channel_amount_minor, ledger_at, state, assignee, resolution, note, \
     adjusting_entry_id, carried_to, matched_on, version, created_at, updated_at";

impl Database {
    /// Ledger outcomes of the payment service's writes (keys starting `payments`) recorded
    /// in `[from, to)` (microseconds), in `(created_at, key)` order after `after`, at most
    /// `limit`: the ledger side of a reconciliation is read in pages so that a day of
    /// millions of operations is never held in memory whole, and each page is a range of
    /// the index `idempotency_keys_payments_by_time`, so a day costs its own records and
    /// not every record ever written.
    pub async fn payment_ledger_outcomes_page(
        &self,
        from: i64,
        to: i64,
        after: &OutcomeCursor,
        limit: i64,
    ) -> Result<Vec<LedgerOutcomeRow>, StoreError> {
        // Resuming within the range: from the last record's time, past its key there.
        let (start, after_key) = match after {
            Some((at, key)) => ((*at).max(from), key.as_str()),
            None => (from, ""),
        };
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT key, outcome, created_at FROM idempotency_keys \
                 WHERE key LIKE 'payments%' AND created_at >= $1 AND created_at < $2 \
                 AND (created_at > $1 OR key > $3) \
                 ORDER BY created_at, key LIMIT $4",
            )
            .bind(start)
            .bind(to)
            .bind(after_key)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn recon_run(&self, business_date: &str) -> Result<Option<ReconRunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM recon_runs WHERE business_date = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(business_date)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Runs, latest date first, before `before` (from the latest when `None`), at most `limit`.
    pub async fn recon_runs(
        &self,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReconRunRow>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM recon_runs WHERE business_date < $1 \
             ORDER BY business_date DESC LIMIT $2"
        );
        // Every ISO date sorts before this.
        let before = before.unwrap_or("A");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(before)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// One page of the runs, each with its count of exceptions not resolved yet.
    pub async fn recon_runs_list(
        &self,
        page: &ListPage,
    ) -> Result<Vec<ReconRunListRow>, StoreError> {
        let order = order_by(
            page,
            &[
                ("business_date", "business_date"),
                ("exceptions", "exceptions"),
                ("unresolved", "unresolved"),
                ("matched", "matched"),
            ],
            "business_date",
        );
        let sql = format!(
            "SELECT {RUN_COLUMNS}, unresolved FROM (SELECT {RUN_COLUMNS}, \
             (SELECT COUNT(*) FROM recon_exceptions e WHERE e.business_date = r.business_date \
             AND e.state <> 'resolved') AS unresolved FROM recon_runs r) runs \
             {order} LIMIT $1 OFFSET $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Exceptions not resolved yet, across every run.
    pub async fn recon_exceptions_unresolved(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recon_exceptions WHERE state <> 'resolved'",
            )
            .fetch_one(pool)
            .await?
        }))
    }

    /// One page of the exceptions matching `filter`, sorted by one of
    /// [`RECON_EXCEPTION_SORTS`] (an amount sorts an absent side first when ascending).
    pub async fn recon_exceptions_list(
        &self,
        filter: &ExceptionFilter,
        page: &ListPage,
    ) -> Result<Vec<ReconExceptionRow>, StoreError> {
        let order = order_by(
            page,
            &[
                ("id", "id"),
                ("class", "class"),
                ("state", "state"),
                ("assignee", "COALESCE(assignee, '')"),
                ("ledger_amount", "COALESCE(ledger_amount_minor, -1)"),
                ("channel_amount", "COALESCE(channel_amount_minor, -1)"),
            ],
            "id",
        );
        let sql = format!(
            "SELECT {EXCEPTION_COLUMNS} FROM recon_exceptions \
             WHERE ($1 IS NULL OR business_date = $1) AND ($2 IS NULL OR class = $2) \
             AND ($3 IS NULL OR state = $3) AND ($4 IS NULL OR assignee = $4) \
             {order} LIMIT $5 OFFSET $6"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(filter.business_date.as_deref())
                .bind(filter.class.as_deref())
                .bind(filter.state.as_deref())
                .bind(filter.assignee.as_deref())
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Exceptions of runs before `business_date` that a later run should carry: open or
    /// assigned, of `classes`, not carried yet.
    pub async fn recon_exceptions_to_carry(
        &self,
        business_date: &str,
        classes: &[&str],
    ) -> Result<Vec<ReconExceptionRow>, StoreError> {
        let mut found = Vec::new();
        for class in classes {
            let sql = format!(
                "SELECT {EXCEPTION_COLUMNS} FROM recon_exceptions \
                 WHERE business_date < $1 AND carried_to IS NULL AND state <> 'resolved' \
                 AND class = $2 ORDER BY business_date, sequence"
            );
            let rows: Vec<ReconExceptionRow> = on_pool!(self, pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(business_date)
                    .bind(*class)
                    .fetch_all(pool)
                    .await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Stores a run, its exceptions and what it did to the exceptions it carried, in one
    /// transaction: a run is there whole or not at all.
    pub async fn insert_recon_run(
        &self,
        run: &ReconRunRow,
        exceptions: &[ReconExceptionRow],
        carried: &[CarriedOutcome],
    ) -> Result<RunInsert, StoreError> {
        let run_sql = format!(
            "INSERT INTO recon_runs ({RUN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let written: Result<(), sqlx::Error> = on_pool!(self, pool => {
            async {
                let mut transaction = pool.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(run_sql.clone()))
                    .bind(&run.business_date)
                    .bind(&run.settlement_file)
                    .bind(run.ledger_records)
                    .bind(run.channel_records)
                    .bind(run.matched)
                    .bind(run.exceptions)
                    .bind(run.carried_in)
                    .bind(run.carried_matched)
                    .bind(&run.summary)
                    .bind(run.created_at)
                    .execute(&mut *transaction)
                    .await?;
                for part in exceptions.chunks(EXCEPTIONS_PER_STATEMENT) {
                    let mut sql = format!("INSERT INTO recon_exceptions ({EXCEPTION_COLUMNS}) VALUES ");
                    crate::credit::push_value_rows(&mut sql, part.len(), 19);
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for row in part {
                        query = query
                            .bind(&row.id)
                            .bind(&row.business_date)
                            .bind(row.sequence)
                            .bind(&row.class)
                            .bind(&row.reference)
                            .bind(&row.currency)
                            .bind(row.ledger_amount_minor)
                            .bind(row.channel_amount_minor)
                            .bind(row.ledger_at)
                            .bind(&row.state)
                            .bind(&row.assignee)
                            .bind(&row.resolution)
                            .bind(&row.note)
                            .bind(&row.adjusting_entry_id)
                            .bind(&row.carried_to)
                            .bind(&row.matched_on)
                            .bind(row.version)
                            .bind(row.created_at)
                            .bind(row.updated_at);
                    }
                    query.execute(&mut *transaction).await?;
                }
                for outcome in carried {
                    match &outcome.matched_on {
                        Some(date) => sqlx::query(
                            "UPDATE recon_exceptions SET carried_to = $1, matched_on = $1, \
                             state = 'resolved', resolution = 'matched_later', \
                             version = version + 1, updated_at = $2 WHERE id = $3",
                        )
                        .bind(date)
                        .bind(run.created_at)
                        .bind(&outcome.id)
                        .execute(&mut *transaction)
                        .await?,
                        None => sqlx::query(
                            "UPDATE recon_exceptions SET carried_to = $1, class = $2, \
                             version = version + 1, updated_at = $3 WHERE id = $4",
                        )
                        .bind(&run.business_date)
                        .bind(&outcome.class)
                        .bind(run.created_at)
                        .bind(&outcome.id)
                        .execute(&mut *transaction)
                        .await?,
                    };
                }
                transaction.commit().await
            }
            .await
        });
        match written {
            Ok(()) => Ok(RunInsert::Inserted),
            Err(error) if is_unique_violation(&error) => Ok(RunInsert::DateTaken),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn recon_exception(&self, id: &str) -> Result<Option<ReconExceptionRow>, StoreError> {
        let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM recon_exceptions WHERE id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Exceptions matching `filter`, by date and sequence after `after` (an id; from the
    /// first when `None`), at most `limit`.
    pub async fn recon_exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReconExceptionRow>, StoreError> {
        // Ids sort as (date, sequence): `rex_YYYYMMDD_NNNNNNNN`.
        let sql = format!(
            "SELECT {EXCEPTION_COLUMNS} FROM recon_exceptions WHERE id > $1 \
             AND ($2 IS NULL OR business_date = $2) AND ($3 IS NULL OR class = $3) \
             AND ($4 IS NULL OR state = $4) AND ($5 IS NULL OR assignee = $5) \
             ORDER BY id LIMIT $6"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after.unwrap_or(""))
                .bind(filter.business_date.as_deref())
                .bind(filter.class.as_deref())
                .bind(filter.state.as_deref())
                .bind(filter.assignee.as_deref())
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Applies `change` if the exception is still at `version` and not resolved; false
    /// otherwise (someone else changed it first: the caller reads it again).
    pub async fn change_recon_exception(
        &self,
        id: &str,
        version: i64,
        change: &ExceptionChange,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => {
            match change {
                ExceptionChange::Assign { assignee } => sqlx::query(
                    "UPDATE recon_exceptions SET state = 'assigned', assignee = $1, \
                     version = version + 1, updated_at = $2 \
                     WHERE id = $3 AND version = $4 AND state <> 'resolved'",
                )
                .bind(assignee)
                .bind(now)
                .bind(id)
                .bind(version)
                .execute(pool)
                .await?
                .rows_affected(),
                ExceptionChange::Resolve {
                    resolution,
                    note,
                    adjusting_entry_id,
                } => sqlx::query(
                    "UPDATE recon_exceptions SET state = 'resolved', resolution = $1, note = $2, \
                     adjusting_entry_id = $3, version = version + 1, updated_at = $4 \
                     WHERE id = $5 AND version = $6 AND state <> 'resolved'",
                )
                .bind(resolution)
                .bind(note)
                .bind(adjusting_entry_id)
                .bind(now)
                .bind(id)
                .bind(version)
                .execute(pool)
                .await?
                .rows_affected(),
            }
        });
        Ok(changed == 1)
    }
}
