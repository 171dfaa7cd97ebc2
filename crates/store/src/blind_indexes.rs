//! Storage side of the blind index key's rotation: a customer's indexes (phone, national id)
//! and its creation's keyed request hash replaced by the same values' indexes under the new
//! key, each only if the row still holds what was read (compare and set), so the walk runs
//! beside the service and can be stopped and run again.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;

/// A customer's indexes as read (`old_*`) and as computed under the new key (`new_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    pub customer_id: String,
    pub old_phone_index: String,
    pub old_national_id_index: String,
    pub new_phone_index: String,
    pub new_national_id_index: String,
    /// The creation's request hash under the previous key and the new one, when known.
    pub request_hash: Option<(String, String)>,
}

impl Database {
    /// Writes `rekeyed`'s new indexes (and request hash) in one transaction; `false` when the
    /// customer's indexes changed since they were read (read it again).
    pub async fn rekey_customer(&self, rekeyed: &Rekeyed) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE customers SET phone_index = $1, national_id_index = $2 \
                 WHERE id = $3 AND phone_index = $4 AND national_id_index = $5",
            )
            .bind(&rekeyed.new_phone_index)
            .bind(&rekeyed.new_national_id_index)
            .bind(&rekeyed.customer_id)
            .bind(&rekeyed.old_phone_index)
            .bind(&rekeyed.old_national_id_index)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if changed == 1 {
                if let Some((old, new)) = &rekeyed.request_hash {
                    sqlx::query(
                        "UPDATE customer_idempotency_keys SET request_hash = $1 \
                         WHERE customer_id = $2 AND request_hash = $3",
                    )
                    .bind(new)
                    .bind(&rekeyed.customer_id)
                    .bind(old)
                    .execute(&mut *transaction)
                    .await?;
                }
                transaction.commit().await?;
            } else {
                transaction.rollback().await?;
            }
            changed == 1
        });
        Ok(done)
    }
}
