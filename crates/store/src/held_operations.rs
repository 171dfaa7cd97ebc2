//! Storage of operations the risk engine held: a credit authorisation, a credit activation
//! or a profile change whose decision was `step_up` (waiting for a one-time code) or
//! `review` (waiting for the analyst's case). The row is keyed by the risk event's id, so a
//! retry of the request finds it; it moves only forward (`waiting_for_code` or
//! `under_review`, then `completed` or `refused`), each move a compare-and-set on the status,
//! so two processes finishing one operation do it once.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, timestamp};
use jiff::Timestamp;

/// A held operation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOperationRow {
    /// The risk event's id.
    pub id: String,
    /// `credit_authorization`, `credit_activation` or `profile_change`.
    pub kind: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub customer_id: String,
    /// What to do when it is let through (JSON; personal values sealed).
    pub operation: String,
    /// `step_up` or `review`.
    pub action: String,
    /// The decision's reason codes (JSON array).
    pub reasons: String,
    pub case_id: Option<String>,
    /// SHA-256 of the one-time code bound to the operation; never the code.
    pub code_hash: Option<String>,
    pub attempts: i64,
    pub code_expires_at: Option<Timestamp>,
    /// `waiting_for_code`, `under_review`, `completed` or `refused`.
    pub status: String,
    /// The answer (completed) or refusal (refused) it ended with (JSON).
    pub outcome: Option<String>,
    pub api_key_id: String,
    pub principal: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A row as read: more columns than sqlx reads into a tuple.
#[derive(sqlx::FromRow)]
struct HeldRecord {
    id: String,
    kind: String,
    idempotency_key: String,
    request_hash: String,
    customer_id: String,
    operation: String,
    action: String,
    reasons: String,
    case_id: Option<String>,
    code_hash: Option<String>,
    attempts: i64,
    code_expires_at: Option<i64>,
    status: String,
    outcome: Option<String>,
    api_key_id: String,
    principal: String,
    created_at: i64,
    updated_at: i64,
}

const HELD_COLUMNS: &str = "SELECT id, kind, idempotency_key, request_hash, customer_id, \
    operation, action, reasons, case_id, code_hash, attempts, code_expires_at, status, outcome, \
    api_key_id, principal, created_at, updated_at FROM risk_held_operations";

fn held_of(row: HeldRecord) -> Result<HeldOperationRow, StoreError> {
    Ok(HeldOperationRow {
        id: row.id,
        kind: row.kind,
        idempotency_key: row.idempotency_key,
        request_hash: row.request_hash,
        customer_id: row.customer_id,
        operation: row.operation,
        action: row.action,
        reasons: row.reasons,
        case_id: row.case_id,
        code_hash: row.code_hash,
        attempts: row.attempts,
        code_expires_at: row.code_expires_at.map(timestamp).transpose()?,
        status: row.status,
        outcome: row.outcome,
        api_key_id: row.api_key_id,
        principal: row.principal,
        created_at: timestamp(row.created_at)?,
        updated_at: timestamp(row.updated_at)?,
    })
}

impl Database {
    /// Stores a new held operation; `false` when one with its id exists (nothing changed).
    pub async fn insert_held_operation(&self, row: &HeldOperationRow) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO risk_held_operations (id, kind, idempotency_key, request_hash, \
                 customer_id, operation, action, reasons, case_id, code_hash, attempts, \
                 code_expires_at, status, outcome, api_key_id, principal, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14, $15, $16, $17, $18) ON CONFLICT DO NOTHING",
            )
            .bind(&row.id)
            .bind(&row.kind)
            .bind(&row.idempotency_key)
            .bind(&row.request_hash)
            .bind(&row.customer_id)
            .bind(&row.operation)
            .bind(&row.action)
            .bind(&row.reasons)
            .bind(&row.case_id)
            .bind(&row.code_hash)
            .bind(row.attempts)
            .bind(row.code_expires_at.map(micros))
            .bind(&row.status)
            .bind(&row.outcome)
            .bind(&row.api_key_id)
            .bind(&row.principal)
            .bind(micros(row.created_at))
            .bind(micros(row.updated_at))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// The held operation under risk event id `id`.
    pub async fn held_operation(&self, id: &str) -> Result<Option<HeldOperationRow>, StoreError> {
        let sql = format!("{HELD_COLUMNS} WHERE id = $1");
        let row: Option<HeldRecord> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(held_of).transpose()
    }

    /// The operations waiting for case `case_id`.
    pub async fn held_operations_of_case(
        &self,
        case_id: &str,
    ) -> Result<Vec<HeldOperationRow>, StoreError> {
        let sql =
            format!("{HELD_COLUMNS} WHERE case_id = $1 AND status = 'under_review' ORDER BY id");
        let rows: Vec<HeldRecord> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(case_id)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(held_of).collect()
    }

    /// Moves a held operation from status `from` with `from_attempts` wrong codes to `row`'s
    /// status, attempts and outcome; `false` when it had moved meanwhile (another request
    /// moved it first).
    pub async fn move_held_operation(
        &self,
        row: &HeldOperationRow,
        from: &str,
        from_attempts: i64,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE risk_held_operations SET status = $1, attempts = $2, outcome = $3, \
                 updated_at = $4 WHERE id = $5 AND status = $6 AND attempts = $7",
            )
            .bind(&row.status)
            .bind(row.attempts)
            .bind(&row.outcome)
            .bind(micros(row.updated_at))
            .bind(&row.id)
            .bind(from)
            .bind(from_attempts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }
}
