//! Storage of merchants and their settlement: the merchant rows (sealed fields as the
//! service sealed them, the fee schedule and settlement terms as JSON), status history,
//! settlement runs with their cursor, per-merchant statements and reserves, and the read of
//! a merchant's pending-account legs a run settles. Persistence only: what to write is the
//! payment service's (`tally_service::payments::merchants`, `settlement`).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::{is_unique_violation, StoreError};
use crate::rows::micros;
use jiff::Timestamp;

/// A merchant as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MerchantRow {
    pub id: String,
    pub status: String,
    pub currency: String,
    pub category_code: String,
    pub time_zone: String,
    /// Sealed.
    pub legal_name: String,
    /// Sealed.
    pub licence_number: String,
    pub licence_number_index: String,
    /// Sealed.
    pub bank_account: String,
    /// JSON.
    pub fee_schedule: String,
    /// JSON.
    pub settlement_terms: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What onboarding a merchant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantInsert {
    Inserted,
    /// A merchant with this id exists.
    IdTaken,
    /// A merchant with this licence number (by blind index) exists.
    LicenceTaken,
}

/// A status a merchant had.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusChangeRow {
    pub sequence: i64,
    pub status: String,
    pub reason: String,
    pub api_key_id: Option<String>,
    pub changed_at: i64,
}

/// A settlement run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SettlementRunRow {
    pub business_date: String,
    pub status: String,
    pub cursor: Option<String>,
    pub merchants_settled: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// A merchant's settlement statement of one run and currency.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    pub business_date: String,
    pub merchant_id: String,
    pub currency: String,
    pub from_date: Option<String>,
    pub through_date: String,
    pub gross_minor: i64,
    pub fees_minor: i64,
    pub refunds_minor: i64,
    pub reserve_held_minor: i64,
    pub reserve_released_minor: i64,
    pub net_minor: i64,
    pub pending_after_minor: i64,
    pub available_after_minor: i64,
    pub reserve_after_minor: i64,
    pub entry_key: Option<String>,
    pub created_at: i64,
    /// Taken for disputes (amounts and the channel's fees, less amounts returned).
    pub disputes_minor: i64,
}

/// A reserve held by a run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReserveRow {
    pub merchant_id: String,
    pub currency: String,
    pub held_on: String,
    pub amount_minor: i64,
    pub release_on: String,
    pub released_on: Option<String>,
}

/// A leg on a merchant's pending account with its entry's metadata (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingLegRow {
    pub side: String,
    pub amount: i64,
    pub metadata: String,
    pub posted_at: i64,
}

/// A leg of one of several pending accounts read at once, with its entry's metadata.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountLegRow {
    pub account_id: String,
    pub sequence: i64,
    pub side: String,
    pub amount: i64,
    pub metadata: String,
    pub posted_at: i64,
}

/// The legs of `account_id` posted in `[from, to)` (microseconds), as one part of a read
/// of many accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegWindow {
    pub account_id: String,
    pub from: i64,
    pub to: i64,
}

/// The last capture date settled for a merchant in a currency.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SettledThroughRow {
    pub merchant_id: String,
    pub currency: String,
    pub through_date: String,
}

/// Windows read per statement of [`Database::legs_in_windows`] (3 parameters each).
const WINDOWS_PER_STATEMENT: usize = 100;

/// Rows per multi-row insert of the settlement's writes (at most 17 parameters each).
const SETTLEMENT_ROWS_PER_STATEMENT: usize = 200;

/// Everything one merchant's settlement in a run writes besides its ledger entry.
#[derive(Debug, Clone)]
pub struct SettlementRecord {
    pub statement: StatementRow,
    /// The reserve this run holds, if any.
    pub held: Option<ReserveRow>,
    /// `held_on` of the reserves this run releases.
    pub released: Vec<String>,
}

const MERCHANT_COLUMNS: &str = "id, status, currency, category_code, time_zone, legal_name, \
     licence_number, licence_number_index, bank_account, fee_schedule, settlement_terms, \
     version, created_at, updated_at";

pub(crate) const STATEMENT_COLUMNS: &str =
    "business_date, merchant_id, currency, from_date, through_date, \
     gross_minor, fees_minor, refunds_minor, reserve_held_minor, reserve_released_minor, \
     net_minor, pending_after_minor, available_after_minor, reserve_after_minor, entry_key, \
     created_at, disputes_minor";

impl Database {
    /// Onboards a merchant with its first status change (`active`, "onboarded").
    pub async fn insert_merchant(
        &self,
        row: &MerchantRow,
        api_key_id: Option<&str>,
    ) -> Result<MerchantInsert, StoreError> {
        let written: Result<(), sqlx::Error> = on_pool!(self, pool => {
            async {
                let mut transaction = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO merchants (id, status, currency, category_code, time_zone, \
                     legal_name, licence_number, licence_number_index, bank_account, \
                     fee_schedule, settlement_terms, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&row.id)
                .bind(&row.status)
                .bind(&row.currency)
                .bind(&row.category_code)
                .bind(&row.time_zone)
                .bind(&row.legal_name)
                .bind(&row.licence_number)
                .bind(&row.licence_number_index)
                .bind(&row.bank_account)
                .bind(&row.fee_schedule)
                .bind(&row.settlement_terms)
                .bind(row.version)
                .bind(row.created_at)
                .bind(row.updated_at)
                .execute(&mut *transaction)
                .await?;
                sqlx::query(
                    "INSERT INTO merchant_status_changes \
                     (merchant_id, sequence, status, reason, api_key_id, changed_at) \
                     VALUES ($1, 1, $2, 'onboarded', $3, $4)",
                )
                .bind(&row.id)
                .bind(&row.status)
                .bind(api_key_id)
                .bind(row.created_at)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await
            }
            .await
        });
        match written {
            Ok(()) => Ok(MerchantInsert::Inserted),
            Err(error) if is_unique_violation(&error) => {
                if self.merchant(&row.id).await?.is_some() {
                    Ok(MerchantInsert::IdTaken)
                } else {
                    Ok(MerchantInsert::LicenceTaken)
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn merchant(&self, id: &str) -> Result<Option<MerchantRow>, StoreError> {
        let sql = format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Merchants in id order after `after` (from the first when `None`), at most `limit`.
    pub async fn merchants_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MerchantRow>, StoreError> {
        let sql =
            format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The distinct time zones merchants are in.
    pub async fn merchant_time_zones(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT DISTINCT time_zone FROM merchants ORDER BY time_zone")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(zone,)| zone).collect())
    }

    /// Changes a merchant's status if its version is still `version`, with the change in
    /// its history; false when another writer changed it first.
    pub async fn update_merchant_status(
        &self,
        id: &str,
        version: i64,
        status: &str,
        reason: &str,
        api_key_id: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE merchants SET status = $1, version = version + 1, updated_at = $2 \
                 WHERE id = $3 AND version = $4",
            )
            .bind(status)
            .bind(micros(now))
            .bind(id)
            .bind(version)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if updated == 1 {
                sqlx::query(
                    "INSERT INTO merchant_status_changes \
                     (merchant_id, sequence, status, reason, api_key_id, changed_at) \
                     SELECT $1, COALESCE(MAX(sequence), 0) + 1, $2, $3, $4, $5 \
                     FROM merchant_status_changes WHERE merchant_id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(reason)
                .bind(api_key_id)
                .bind(micros(now))
                .execute(&mut *transaction)
                .await?;
            }
            transaction.commit().await?;
            updated
        });
        Ok(updated == 1)
    }

    /// Replaces a merchant's fee schedule and settlement terms if its version is still
    /// `version`; false when another writer changed it first.
    pub async fn update_merchant_terms(
        &self,
        id: &str,
        version: i64,
        fee_schedule: &str,
        settlement_terms: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE merchants SET fee_schedule = $1, settlement_terms = $2, \
                 version = version + 1, updated_at = $3 WHERE id = $4 AND version = $5",
            )
            .bind(fee_schedule)
            .bind(settlement_terms)
            .bind(micros(now))
            .bind(id)
            .bind(version)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// A merchant's status history, oldest first.
    pub async fn merchant_status_changes(
        &self,
        id: &str,
    ) -> Result<Vec<StatusChangeRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT sequence, status, reason, api_key_id, changed_at \
                 FROM merchant_status_changes WHERE merchant_id = $1 ORDER BY sequence",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The legs posted on `account_id` in `[from, to)` (microseconds) with their entries'
    /// metadata, in posting order.
    pub async fn pending_legs_between(
        &self,
        account_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<PendingLegRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT l.side, l.amount, e.metadata, l.posted_at FROM journal_legs l \
                 JOIN journal_entries e ON e.id = l.entry_id \
                 WHERE l.account_id = $1 AND l.posted_at >= $2 AND l.posted_at < $3 \
                 ORDER BY l.sequence",
            )
            .bind(account_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The legs of every window's account posted in its `[from, to)`, with their entries'
    /// metadata, by account and posting order: the pending legs a chunk of merchants
    /// settles, in one read rather than one per merchant. Each window is its own range of
    /// the `(account_id, posted_at)` index.
    pub async fn legs_in_windows(
        &self,
        windows: &[LegWindow],
    ) -> Result<Vec<AccountLegRow>, StoreError> {
        let mut rows = Vec::new();
        for part in windows.chunks(WINDOWS_PER_STATEMENT) {
            let mut sql = String::new();
            for index in 0..part.len() {
                if index > 0 {
                    sql.push_str(" UNION ALL ");
                }
                let first = index * 3 + 1;
                sql.push_str(&format!(
                    "SELECT l.account_id AS account_id, l.sequence AS sequence, l.side AS side, \
                     l.amount AS amount, e.metadata AS metadata, l.posted_at AS posted_at \
                     FROM journal_legs l JOIN journal_entries e ON e.id = l.entry_id \
                     WHERE l.account_id = ${first} AND l.posted_at >= ${} AND l.posted_at < ${}",
                    first + 1,
                    first + 2
                ));
            }
            sql.push_str(" ORDER BY account_id, sequence");
            let found: Vec<AccountLegRow> = on_pool!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for window in part {
                    query = query.bind(&window.account_id).bind(window.from).bind(window.to);
                }
                query.fetch_all(pool).await?
            });
            rows.extend(found);
        }
        Ok(rows)
    }

    /// The last capture date settled, by any run, for every merchant with an id from
    /// `first` through `last` and every currency it has statements in: a chunk's
    /// [`settled_through`](Self::settled_through) in one read.
    pub async fn settled_through_between(
        &self,
        first: &str,
        last: &str,
    ) -> Result<Vec<SettledThroughRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT merchant_id, currency, MAX(through_date) AS through_date \
                 FROM settlement_statements WHERE merchant_id >= $1 AND merchant_id <= $2 \
                 GROUP BY merchant_id, currency",
            )
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The reserves not yet released whose release date is on or before `date`, of every
    /// merchant with an id from `first` through `last`, by merchant, currency and
    /// `held_on`: a chunk's [`reserves_due`](Self::reserves_due) in one read.
    pub async fn reserves_due_between(
        &self,
        first: &str,
        last: &str,
        date: &str,
    ) -> Result<Vec<ReserveRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT merchant_id, currency, held_on, amount_minor, release_on, released_on \
                 FROM merchant_reserves WHERE merchant_id >= $1 AND merchant_id <= $2 \
                 AND released_on IS NULL AND release_on <= $3 \
                 ORDER BY merchant_id, currency, held_on",
            )
            .bind(first)
            .bind(last)
            .bind(date)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The run of `business_date`, started (as `running`, no cursor) if it was not.
    pub async fn start_settlement_run(
        &self,
        business_date: &str,
        now: Timestamp,
    ) -> Result<SettlementRunRow, StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO settlement_runs \
                 (business_date, status, cursor, merchants_settled, started_at) \
                 VALUES ($1, 'running', NULL, 0, $2) ON CONFLICT (business_date) DO NOTHING",
            )
            .bind(business_date)
            .bind(micros(now))
            .execute(pool)
            .await?;
        });
        self.settlement_run(business_date)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("settlement run {business_date} vanished")))
    }

    pub async fn settlement_run(
        &self,
        business_date: &str,
    ) -> Result<Option<SettlementRunRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT business_date, status, cursor, merchants_settled, started_at, finished_at \
                 FROM settlement_runs WHERE business_date = $1",
            )
            .bind(business_date)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Stores one merchant's settlement (statements, the reserve held, the reserves
    /// released) and moves the run's cursor to `merchant_id`, in one transaction. A
    /// statement stored already (a run resumed after this commit) is left as it is.
    pub async fn record_settlement(
        &self,
        business_date: &str,
        merchant_id: &str,
        records: &[SettlementRecord],
    ) -> Result<(), StoreError> {
        self.record_settlements(
            business_date,
            &[(merchant_id.to_string(), records.to_vec())],
        )
        .await
    }

    /// Stores the settlements of a chunk of merchants, in id order, as
    /// [`record_settlement`](Self::record_settlement) does for one, all in one transaction:
    /// the cursor ends on the chunk's last merchant.
    pub async fn record_settlements(
        &self,
        business_date: &str,
        merchants: &[(String, Vec<SettlementRecord>)],
    ) -> Result<(), StoreError> {
        if merchants.is_empty() {
            return Ok(());
        }
        let records: Vec<(&str, &SettlementRecord)> = merchants
            .iter()
            .flat_map(|(merchant_id, records)| {
                records
                    .iter()
                    .map(move |record| (merchant_id.as_str(), record))
            })
            .collect();
        let held: Vec<&ReserveRow> = records
            .iter()
            .filter_map(|(_, record)| record.held.as_ref())
            .collect();
        // (merchant, currency, held_on) of every reserve released.
        let released: Vec<(&str, &str, &str)> = records
            .iter()
            .flat_map(|(merchant_id, record)| {
                record.released.iter().map(move |held_on| {
                    (
                        *merchant_id,
                        record.statement.currency.as_str(),
                        held_on.as_str(),
                    )
                })
            })
            .collect();
        let ids: Vec<&str> = merchants.iter().map(|(id, _)| id.as_str()).collect();
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            for part in records.chunks(SETTLEMENT_ROWS_PER_STATEMENT) {
                let mut sql = format!("INSERT INTO settlement_statements ({STATEMENT_COLUMNS}) VALUES ");
                crate::credit::push_value_rows(&mut sql, part.len(), 17);
                sql.push_str(" ON CONFLICT (business_date, merchant_id, currency) DO NOTHING");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (_, record) in part {
                    let statement = &record.statement;
                    query = query
                        .bind(&statement.business_date)
                        .bind(&statement.merchant_id)
                        .bind(&statement.currency)
                        .bind(&statement.from_date)
                        .bind(&statement.through_date)
                        .bind(statement.gross_minor)
                        .bind(statement.fees_minor)
                        .bind(statement.refunds_minor)
                        .bind(statement.reserve_held_minor)
                        .bind(statement.reserve_released_minor)
                        .bind(statement.net_minor)
                        .bind(statement.pending_after_minor)
                        .bind(statement.available_after_minor)
                        .bind(statement.reserve_after_minor)
                        .bind(&statement.entry_key)
                        .bind(statement.created_at)
                        .bind(statement.disputes_minor);
                }
                query.execute(&mut *transaction).await?;
            }
            for part in held.chunks(SETTLEMENT_ROWS_PER_STATEMENT) {
                let mut sql = String::from(
                    "INSERT INTO merchant_reserves \
                     (merchant_id, currency, held_on, amount_minor, release_on) VALUES ",
                );
                crate::credit::push_value_rows(&mut sql, part.len(), 5);
                sql.push_str(" ON CONFLICT (merchant_id, currency, held_on) DO NOTHING");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for reserve in part {
                    query = query
                        .bind(&reserve.merchant_id)
                        .bind(&reserve.currency)
                        .bind(&reserve.held_on)
                        .bind(reserve.amount_minor)
                        .bind(&reserve.release_on);
                }
                query.execute(&mut *transaction).await?;
            }
            for part in released.chunks(SETTLEMENT_ROWS_PER_STATEMENT) {
                // `released_on` is NULL on insert, so this names exactly the rows released.
                let mut sql = String::from(
                    "UPDATE merchant_reserves SET released_on = $1 WHERE released_on IS NULL \
                     AND (",
                );
                for index in 0..part.len() {
                    if index > 0 {
                        sql.push_str(" OR ");
                    }
                    let first = index * 3 + 2;
                    sql.push_str(&format!(
                        "(merchant_id = ${first} AND currency = ${} AND held_on = ${})",
                        first + 1,
                        first + 2
                    ));
                }
                sql.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(business_date);
                for (merchant_id, currency, held_on) in part {
                    query = query.bind(*merchant_id).bind(*currency).bind(*held_on);
                }
                query.execute(&mut *transaction).await?;
            }
            // The cursor moves to the chunk's last merchant, counting the merchants past
            // where it stood (none when a run resumed after this commit asks again).
            for part in ids.chunks(SETTLEMENT_ROWS_PER_STATEMENT) {
                let mut sql = String::from(
                    "UPDATE settlement_runs SET merchants_settled = merchants_settled + \
                     (SELECT COUNT(*) FROM (VALUES ",
                );
                for index in 0..part.len() {
                    if index > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("(${})", index + 3));
                }
                sql.push_str(
                    ") AS chunk WHERE settlement_runs.cursor IS NULL \
                     OR chunk.column1 > settlement_runs.cursor), cursor = $1 \
                     WHERE business_date = $2 AND (cursor IS NULL OR cursor < $1)",
                );
                let last = part.last().copied().unwrap_or_default();
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(last)
                    .bind(business_date);
                for id in part {
                    query = query.bind(*id);
                }
                query.execute(&mut *transaction).await?;
            }
            transaction.commit().await?;
        });
        Ok(())
    }

    pub async fn finish_settlement_run(
        &self,
        business_date: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE settlement_runs SET status = 'done', finished_at = $1 \
                 WHERE business_date = $2 AND status = 'running'",
            )
            .bind(micros(now))
            .bind(business_date)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The last capture date settled for a merchant in a currency, by any run.
    pub async fn settled_through(
        &self,
        merchant_id: &str,
        currency: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT MAX(through_date) FROM settlement_statements \
                 WHERE merchant_id = $1 AND currency = $2",
            )
            .bind(merchant_id)
            .bind(currency)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.and_then(|(through,)| through))
    }

    /// A merchant's reserves not yet released whose release date is on or before `date`.
    pub async fn reserves_due(
        &self,
        merchant_id: &str,
        currency: &str,
        date: &str,
    ) -> Result<Vec<ReserveRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT merchant_id, currency, held_on, amount_minor, release_on, released_on \
                 FROM merchant_reserves WHERE merchant_id = $1 AND currency = $2 \
                 AND released_on IS NULL AND release_on <= $3 ORDER BY held_on",
            )
            .bind(merchant_id)
            .bind(currency)
            .bind(date)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The statements of a run (every merchant's when `merchant_id` is `None`), by
    /// merchant and currency.
    pub async fn settlement_statements(
        &self,
        business_date: &str,
        merchant_id: Option<&str>,
    ) -> Result<Vec<StatementRow>, StoreError> {
        let sql = format!(
            "SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE business_date = $1 \
             AND ($2 = '' OR merchant_id = $2) ORDER BY merchant_id, currency"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(business_date)
                .bind(merchant_id.unwrap_or(""))
                .fetch_all(pool)
                .await?
        }))
    }
}
