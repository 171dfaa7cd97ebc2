//! Storage of disputes (chargebacks): one row per channel dispute id, with what its
//! opening took from each of the merchant's balances and which of its ledger entries are
//! posted. Opening a dispute that takes from the merchant's reserve lowers the merchant's
//! unreleased reserve rows (oldest first) in the same transaction, so a later settlement
//! run releases only what is left of them. Persistence only: the rules are the payment
//! service's (`tally_service::payments::disputes`).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;

/// A dispute as stored. Times are microseconds (UTC).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DisputeRow {
    pub id: String,
    pub channel_id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub capture_reference: String,
    pub currency: String,
    pub amount_minor: i64,
    pub reason_code: String,
    pub evidence_due_by: i64,
    pub status: String,
    pub from_pending_minor: i64,
    pub from_available_minor: i64,
    pub from_reserve_minor: i64,
    pub opening_posted: bool,
    pub fee_minor: i64,
    pub outcome_posted: bool,
    pub evidence: Option<String>,
    pub evidence_submitted_at: Option<i64>,
    pub opened_at: i64,
    pub decided_at: Option<i64>,
    pub version: i64,
}

const DISPUTE_COLUMNS: &str = "id, channel_id, payment_id, merchant_id, capture_reference, \
     currency, amount_minor, reason_code, evidence_due_by, status, from_pending_minor, \
     from_available_minor, from_reserve_minor, opening_posted, fee_minor, outcome_posted, \
     evidence, evidence_submitted_at, opened_at, decided_at, version";

impl Database {
    /// Stores a new dispute and, when its opening takes from the reserve, lowers the
    /// merchant's unreleased reserves by as much, oldest first, in one transaction. False
    /// when a dispute with this channel id exists already (nothing written).
    pub async fn insert_dispute(&self, row: &DisputeRow) -> Result<bool, StoreError> {
        let insert = format!(
            "INSERT INTO disputes ({DISPUTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (channel_id) DO NOTHING"
        );
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let inserted = sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(&row.id)
                .bind(&row.channel_id)
                .bind(&row.payment_id)
                .bind(&row.merchant_id)
                .bind(&row.capture_reference)
                .bind(&row.currency)
                .bind(row.amount_minor)
                .bind(&row.reason_code)
                .bind(row.evidence_due_by)
                .bind(&row.status)
                .bind(row.from_pending_minor)
                .bind(row.from_available_minor)
                .bind(row.from_reserve_minor)
                .bind(row.opening_posted)
                .bind(row.fee_minor)
                .bind(row.outcome_posted)
                .bind(&row.evidence)
                .bind(row.evidence_submitted_at)
                .bind(row.opened_at)
                .bind(row.decided_at)
                .bind(row.version)
                .execute(&mut *transaction)
                .await?
                .rows_affected()
                == 1;
            if !inserted {
                return Ok(false);
            }
            let mut left = row.from_reserve_minor;
            if left > 0 {
                let reserves: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT held_on, amount_minor FROM merchant_reserves WHERE merchant_id = $1 \
                     AND currency = $2 AND released_on IS NULL AND amount_minor > 0 \
                     ORDER BY held_on",
                )
                .bind(&row.merchant_id)
                .bind(&row.currency)
                .fetch_all(&mut *transaction)
                .await?;
                for (held_on, amount) in reserves {
                    if left == 0 {
                        break;
                    }
                    let taken = left.min(amount);
                    sqlx::query(
                        "UPDATE merchant_reserves SET amount_minor = amount_minor - $1 \
                         WHERE merchant_id = $2 AND currency = $3 AND held_on = $4",
                    )
                    .bind(taken)
                    .bind(&row.merchant_id)
                    .bind(&row.currency)
                    .bind(&held_on)
                    .execute(&mut *transaction)
                    .await?;
                    left -= taken;
                }
            }
            transaction.commit().await?;
        });
        Ok(true)
    }

    pub async fn dispute(&self, id: &str) -> Result<Option<DisputeRow>, StoreError> {
        let sql = format!("SELECT {DISPUTE_COLUMNS} FROM disputes WHERE id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn dispute_by_channel_id(
        &self,
        channel_id: &str,
    ) -> Result<Option<DisputeRow>, StoreError> {
        let sql = format!("SELECT {DISPUTE_COLUMNS} FROM disputes WHERE channel_id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(channel_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A payment's disputes, oldest first.
    pub async fn disputes_of_payment(
        &self,
        payment_id: &str,
    ) -> Result<Vec<DisputeRow>, StoreError> {
        let sql = format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE payment_id = $1 ORDER BY opened_at, id"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(payment_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Disputes by id after `after`, of one merchant and in one status when given.
    pub async fn disputes(
        &self,
        merchant_id: Option<&str>,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DisputeRow>, StoreError> {
        let sql = format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE ($1 = '' OR merchant_id = $1) \
             AND ($2 = '' OR status = $2) AND id > $3 ORDER BY id LIMIT $4"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(merchant_id.unwrap_or(""))
                .bind(status.unwrap_or(""))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Writes a dispute's changing fields if its version is still `row.version - 1`; false
    /// when another writer changed it first (nothing written).
    pub async fn update_dispute(&self, row: &DisputeRow) -> Result<bool, StoreError> {
        let updated = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE disputes SET status = $1, opening_posted = $2, fee_minor = $3, \
                 outcome_posted = $4, evidence = $5, evidence_submitted_at = $6, \
                 decided_at = $7, version = $8 WHERE id = $9 AND version = $10",
            )
            .bind(&row.status)
            .bind(row.opening_posted)
            .bind(row.fee_minor)
            .bind(row.outcome_posted)
            .bind(&row.evidence)
            .bind(row.evidence_submitted_at)
            .bind(row.decided_at)
            .bind(row.version)
            .bind(&row.id)
            .bind(row.version - 1)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }
}
