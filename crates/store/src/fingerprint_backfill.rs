//! Storage side of `tally privacy fingerprint-events`: risk events and list entries stored
//! before cards and addresses were fingerprinted at the edge, read a page at a time in a
//! fixed order and rewritten one row at a time, each only if the row still holds what was
//! read (compare and set), so the walk runs beside the service and can be stopped and run
//! again.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;

/// A list entry whose value may be a card or an address in clear.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListValueRow {
    pub id: String,
    pub kind: String,
    pub field: String,
    pub value: String,
}

impl Database {
    /// On SQLite, copies the write-ahead log into the database file and empties it
    /// (`wal_checkpoint(TRUNCATE)`), so that the page images of rows since rewritten (a card
    /// in clear) no longer sit in the `-wal` file: whether it could (readers still on older
    /// pages make it wait for another run). PostgreSQL keeps no such file for us to empty:
    /// `true`.
    pub async fn truncate_write_ahead_log(&self) -> Result<bool, StoreError> {
        match self {
            Database::Sqlite(pool) => {
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(pool)
                        .await?;
                Ok(busy == 0)
            }
            Database::Postgres(_) => Ok(true),
        }
    }

    /// At most `limit` stored risk events after sequence `after`, in sequence order, as
    /// (sequence, body).
    pub async fn risk_event_bodies_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT sequence, body FROM risk_events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// Replaces an event's body with `new`, only if it still is `old`; `false` otherwise.
    pub async fn rewrite_risk_event_body(
        &self,
        sequence: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE risk_events SET body = $1 WHERE sequence = $2 AND body = $3",
        )
        .bind(new)
        .bind(sequence)
        .bind(old)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// At most `limit` card and address list entries, live or removed (a removed row keeps
    /// its value), after id `after`, in id order.
    pub async fn card_and_address_list_entries_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ListValueRow>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind, field, value FROM risk_list_entries \
             WHERE field IN ('card', 'address') AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// One card or address list entry by its id.
    pub async fn card_or_address_list_entry(
        &self,
        id: &str,
    ) -> Result<Option<ListValueRow>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind, field, value FROM risk_list_entries \
             WHERE field IN ('card', 'address') AND id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Replaces a list entry's value with `new`, only if it still is `row.value`: `None`
    /// otherwise, `Some(merged)` when written. A live entry whose fingerprint is already live in another entry of the same
    /// kind (the value was added again after fingerprinting began) is marked removed at
    /// `now` by `by` in the same statement: one live entry per value, as the engine keeps
    /// them, and the newer one is what the engine has been matching.
    pub async fn rewrite_list_entry_value(
        &self,
        row: &ListValueRow,
        new: &str,
        now: i64,
        by: &str,
    ) -> Result<Option<bool>, StoreError> {
        let (changed, merged) = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let (duplicates,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM risk_list_entries AS other WHERE other.kind = $1 \
                 AND other.field = $2 AND other.value = $3 AND other.id <> $4 \
                 AND other.removed_at IS NULL AND EXISTS (SELECT 1 FROM risk_list_entries \
                 AS this WHERE this.id = $4 AND this.removed_at IS NULL)",
            )
            .bind(&row.kind)
            .bind(&row.field)
            .bind(new)
            .bind(&row.id)
            .fetch_one(&mut *transaction)
            .await?;
            let changed = if duplicates > 0 {
                sqlx::query(
                    "UPDATE risk_list_entries SET value = $1, \
                     removed_by = CASE WHEN removed_at IS NULL THEN $4 ELSE removed_by END, \
                     removed_at = CASE WHEN removed_at IS NULL THEN $5 ELSE removed_at END \
                     WHERE id = $2 AND value = $3",
                )
                .bind(new)
                .bind(&row.id)
                .bind(&row.value)
                .bind(by)
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected()
            } else {
                sqlx::query("UPDATE risk_list_entries SET value = $1 WHERE id = $2 AND value = $3")
                    .bind(new)
                    .bind(&row.id)
                    .bind(&row.value)
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected()
            };
            transaction.commit().await?;
            (changed, duplicates > 0)
        });
        Ok((changed == 1).then_some(merged))
    }
}
