//! Storage of the identifiers of risk events that another consortium member can match (card
//! numbers, delivery addresses, receiving phones), sealed and kept for a retention so that
//! confirmed fraud can publish them (table `consortium_identifiers`).

use super::RiskStore;
use crate::credit::on_pool;
use crate::error::StoreError;

/// An identifier of a risk event that another consortium member can match (card number,
/// delivery address, receiving phone), sealed, kept so that confirmed fraud can publish it
/// (table `consortium_identifiers`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsortiumIdentifierRow {
    pub event_id: String,
    /// The event's customer reference.
    pub customer: String,
    /// The event's time, microseconds.
    pub at: i64,
    /// card, address or phone.
    pub kind: String,
    /// Keyed HMAC of the normalised value: one value, one fingerprint.
    pub fingerprint: String,
    /// The consortium's normalised value, sealed (`v1:<key id>:...`).
    pub sealed: String,
    /// When the row is deleted, Unix seconds.
    pub expires_at: i64,
}

const IDENTIFIER_COLUMNS: &str = "SELECT event_id, customer, at, kind, fingerprint, sealed, \
    expires_at FROM consortium_identifiers";

impl RiskStore {
    /// A customer's identifiers kept for the consortium, oldest event first (at most
    /// `limit`).
    pub async fn customer_consortium_identifiers(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<ConsortiumIdentifierRow>, StoreError> {
        let sql = format!(
            "{IDENTIFIER_COLUMNS} WHERE customer = $1 ORDER BY at, event_id, kind LIMIT $2"
        );
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(customer)
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }

    /// One event's identifiers kept for the consortium.
    pub async fn event_consortium_identifiers(
        &self,
        event_id: &str,
    ) -> Result<Vec<ConsortiumIdentifierRow>, StoreError> {
        let sql = format!("{IDENTIFIER_COLUMNS} WHERE event_id = $1 ORDER BY kind");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(event_id).fetch_all(pool).await?)
        })
    }

    /// The latest kept row of an identifier, by kind and fingerprint.
    pub async fn consortium_identifier(
        &self,
        kind: &str,
        fingerprint: &str,
    ) -> Result<Option<ConsortiumIdentifierRow>, StoreError> {
        let sql = format!(
            "{IDENTIFIER_COLUMNS} WHERE kind = $1 AND fingerprint = $2 ORDER BY at DESC LIMIT 1"
        );
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(kind)
                .bind(fingerprint)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Deletes the identifiers whose retention ended before `now` (Unix seconds).
    pub async fn delete_expired_consortium_identifiers(&self, now: i64) -> Result<u64, StoreError> {
        on_pool!(&self.database, pool => {
            let done = sqlx::query("DELETE FROM consortium_identifiers WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}
