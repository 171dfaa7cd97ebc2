//! Storage of the last consortium checkpoint this member verified, by the operator's key
//! (table `consortium_member_checkpoints`), so that a restart goes on from it.

use super::RiskStore;
use crate::credit::on_pool;
use crate::error::StoreError;

impl RiskStore {
    /// The signed text of the last checkpoint verified of the log signed by `log_key`.
    pub async fn verified_checkpoint(&self, log_key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.database, pool => {
            sqlx::query_as("SELECT checkpoint FROM consortium_member_checkpoints WHERE log_key = $1")
                .bind(log_key)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(checkpoint,)| checkpoint))
    }

    /// Stores `checkpoint` (of tree `size`, verified at `at`, Unix seconds) as the last one
    /// verified of the log signed by `log_key`, unless one of a larger tree is stored
    /// already (another process of the same lender moved further): never a step back.
    /// Whether it was stored.
    pub async fn save_verified_checkpoint(
        &self,
        log_key: &str,
        checkpoint: &str,
        size: u64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let size = i64::try_from(size)
            .map_err(|_| StoreError::Corrupt(format!("checkpoint size {size} out of range")))?;
        on_pool!(&self.database, pool => {
            let done = sqlx::query(
                "INSERT INTO consortium_member_checkpoints (log_key, checkpoint, size, verified_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (log_key) DO UPDATE SET \
                 checkpoint = excluded.checkpoint, size = excluded.size, \
                 verified_at = excluded.verified_at \
                 WHERE consortium_member_checkpoints.size <= excluded.size",
            )
            .bind(log_key)
            .bind(checkpoint)
            .bind(size)
            .bind(at)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
