//! Storage of payouts: batches (a bank file each), their payouts with how far each one's
//! funding has come, and every state a payout was in with its time and cause. Persistence
//! only: the rules are `tally_payments::payout`, the use case `tally_service::payments::payouts`.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::{is_unique_violation, StoreError};
use crate::rows::micros;
use jiff::Timestamp;

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutBatchRow {
    pub id: String,
    pub kind: String,
    pub currency: String,
    pub value_date: String,
    pub request_hash: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A payout as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutRow {
    pub id: String,
    pub batch_id: String,
    pub sequence: i64,
    /// `merchant` or `customer`.
    pub payee_kind: String,
    /// The merchant paid (a merchant's payout).
    pub merchant_id: Option<String>,
    /// The customer paid, to the bank card bound to them (a customer's payout).
    pub customer_id: Option<String>,
    /// `merchant_available` or `credit_balance`.
    pub source: String,
    /// The account the money came from when not the payee's own: the credit account of a
    /// credit-balance payout.
    pub source_account: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    pub state: String,
    pub funding: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A state a payout was in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutTransitionRow {
    pub sequence: i64,
    pub state: String,
    pub cause: String,
    pub at: i64,
}

const BATCH_COLUMNS: &str =
    "id, kind, currency, value_date, request_hash, status, created_at, updated_at";
const PAYOUT_COLUMNS: &str = "id, batch_id, sequence, payee_kind, merchant_id, customer_id, \
     source, source_account, currency, amount_minor, state, funding, created_at, updated_at";

/// Which payouts a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayoutFilter<'a> {
    pub merchant: Option<&'a str>,
    pub state: Option<&'a str>,
    /// Only payouts after this id (ids grow with time).
    pub after: Option<&'a str>,
}

impl Database {
    /// Writes a batch with its payouts, each `created` with `cause`, in one transaction;
    /// false (nothing written) when a batch with this id exists.
    pub async fn insert_payout_batch(
        &self,
        batch: &PayoutBatchRow,
        payouts: &[PayoutRow],
        cause: &str,
    ) -> Result<bool, StoreError> {
        let written: Result<(), sqlx::Error> = on_pool!(self, pool => {
            async {
                let mut transaction = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO payout_batches (id, kind, currency, value_date, request_hash, \
                     status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&batch.id)
                .bind(&batch.kind)
                .bind(&batch.currency)
                .bind(&batch.value_date)
                .bind(&batch.request_hash)
                .bind(&batch.status)
                .bind(batch.created_at)
                .bind(batch.updated_at)
                .execute(&mut *transaction)
                .await?;
                for payout in payouts {
                    sqlx::query(
                        "INSERT INTO payouts (id, batch_id, sequence, payee_kind, merchant_id, \
                         customer_id, source, source_account, currency, amount_minor, state, \
                         funding, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(&payout.id)
                    .bind(&payout.batch_id)
                    .bind(payout.sequence)
                    .bind(&payout.payee_kind)
                    .bind(&payout.merchant_id)
                    .bind(&payout.customer_id)
                    .bind(&payout.source)
                    .bind(&payout.source_account)
                    .bind(&payout.currency)
                    .bind(payout.amount_minor)
                    .bind(&payout.state)
                    .bind(&payout.funding)
                    .bind(payout.created_at)
                    .bind(payout.updated_at)
                    .execute(&mut *transaction)
                    .await?;
                    sqlx::query(
                        "INSERT INTO payout_transitions (payout_id, sequence, state, cause, at) \
                         VALUES ($1, 1, $2, $3, $4)",
                    )
                    .bind(&payout.id)
                    .bind(&payout.state)
                    .bind(cause)
                    .bind(payout.created_at)
                    .execute(&mut *transaction)
                    .await?;
                }
                transaction.commit().await
            }
            .await
        });
        match written {
            Ok(()) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn payout_batch(&self, id: &str) -> Result<Option<PayoutBatchRow>, StoreError> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM payout_batches WHERE id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The scheduled batches of a date, by currency.
    pub async fn scheduled_payout_batches(
        &self,
        value_date: &str,
    ) -> Result<Vec<PayoutBatchRow>, StoreError> {
        let sql = format!(
            "SELECT {BATCH_COLUMNS} FROM payout_batches \
             WHERE kind = 'scheduled' AND value_date = $1 ORDER BY currency"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(value_date)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Sets a batch's status.
    pub async fn set_payout_batch_status(
        &self,
        id: &str,
        status: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE payout_batches SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status)
                .bind(micros(now))
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn payout(&self, id: &str) -> Result<Option<PayoutRow>, StoreError> {
        let sql = format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A batch's payouts in file order.
    pub async fn payouts_of_batch(&self, batch: &str) -> Result<Vec<PayoutRow>, StoreError> {
        let sql =
            format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE batch_id = $1 ORDER BY sequence");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(batch)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Payouts matching `filter` in id order, at most `limit`.
    pub async fn payouts(
        &self,
        filter: &PayoutFilter<'_>,
        limit: i64,
    ) -> Result<Vec<PayoutRow>, StoreError> {
        // The filters are bound as parameters; an absent one matches every row.
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts \
             WHERE ($1 = '' OR merchant_id = $1) AND ($2 = '' OR state = $2) AND id > $3 \
             ORDER BY id LIMIT $4"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(filter.merchant.unwrap_or(""))
                .bind(filter.state.unwrap_or(""))
                .bind(filter.after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// A merchant's payouts whose funding is `funding`, oldest first.
    pub async fn merchant_payouts_funding(
        &self,
        merchant: &str,
        funding: &str,
    ) -> Result<Vec<PayoutRow>, StoreError> {
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE merchant_id = $1 AND funding = $2 \
             ORDER BY id"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(merchant)
                .bind(funding)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Sets a payout's funding if it is still `from`; false when it is not.
    pub async fn set_payout_funding(
        &self,
        id: &str,
        from: &str,
        to: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE payouts SET funding = $1, updated_at = $2 WHERE id = $3 AND funding = $4",
            )
            .bind(to)
            .bind(micros(now))
            .bind(id)
            .bind(from)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Moves a payout from state `from` to `to` (and its funding to `funding` when given)
    /// with the change in its history, in one transaction; false when it is not in `from`.
    pub async fn move_payout(
        &self,
        id: &str,
        from: &str,
        to: &str,
        funding: Option<&str>,
        cause: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let moved = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE payouts SET state = $1, funding = COALESCE($2, funding), updated_at = $3 \
                 WHERE id = $4 AND state = $5",
            )
            .bind(to)
            .bind(funding)
            .bind(micros(now))
            .bind(id)
            .bind(from)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if updated == 1 {
                sqlx::query(
                    "INSERT INTO payout_transitions (payout_id, sequence, state, cause, at) \
                     SELECT $1, COALESCE(MAX(sequence), 0) + 1, $2, $3, $4 \
                     FROM payout_transitions WHERE payout_id = $1",
                )
                .bind(id)
                .bind(to)
                .bind(cause)
                .bind(micros(now))
                .execute(&mut *transaction)
                .await?;
            }
            transaction.commit().await?;
            updated == 1
        });
        Ok(moved)
    }

    /// Every state a payout was in, oldest first.
    pub async fn payout_transitions(
        &self,
        id: &str,
    ) -> Result<Vec<PayoutTransitionRow>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT sequence, state, cause, at FROM payout_transitions \
                 WHERE payout_id = $1 ORDER BY sequence",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Merchants with payouts whose funding was decided but may not be posted (a crash
    /// between the two), at most `limit`.
    pub async fn merchants_with_undone_funding(
        &self,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT DISTINCT merchant_id FROM payouts \
                 WHERE funding IN ('unchecked', 'decided') AND merchant_id IS NOT NULL \
                 ORDER BY merchant_id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(merchant,)| merchant).collect())
    }
}
