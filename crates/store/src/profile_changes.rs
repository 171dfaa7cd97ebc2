//! Storage of customers' profile changes: a new phone (sealed, with its blind index), a
//! name, a delivery address or a bound bank card (sealed), each written with its audit row in one
//! transaction. The store never sees a value in clear; the audit row never holds the value.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, timestamp};
use jiff::Timestamp;

/// A sealed value for one profile field of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileValue {
    /// The phone sealed, and its blind index (unique across customers).
    Phone {
        sealed: String,
        index: String,
    },
    Name {
        sealed: String,
    },
    Address {
        sealed: String,
    },
    BankCard {
        sealed: String,
    },
}

impl ProfileValue {
    /// The field's name, as the audit row and the risk event name it.
    pub fn field(&self) -> &'static str {
        match self {
            ProfileValue::Phone { .. } => "phone",
            ProfileValue::Name { .. } => "name",
            ProfileValue::Address { .. } => "address",
            ProfileValue::BankCard { .. } => "bank_card",
        }
    }
}

/// One profile change applied: who, when, which field, and the risk event that let it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    pub id: String,
    pub at: Timestamp,
    pub api_key_id: String,
    pub principal: String,
    pub customer_id: String,
    pub field: String,
    pub risk_event_id: String,
    pub risk_action: String,
}

/// Why a profile change stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileChangeError {
    #[error("customer {0} does not exist")]
    CustomerNotFound(String),
    #[error("another customer has this phone number")]
    PhoneTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProfileChangeError {
    fn from(error: sqlx::Error) -> Self {
        ProfileChangeError::Store(StoreError::Database(error))
    }
}

/// The sealed delivery address and bank card of a customer (`None` until set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SealedProfile {
    pub address: Option<String>,
    pub bank_card: Option<String>,
}

type ChangeTuple = (String, i64, String, String, String, String, String, String);

fn change_of(row: ChangeTuple) -> Result<ProfileChange, StoreError> {
    let (id, at, api_key_id, principal, customer_id, field, risk_event_id, risk_action) = row;
    Ok(ProfileChange {
        id,
        at: timestamp(at)?,
        api_key_id,
        principal,
        customer_id,
        field,
        risk_event_id,
        risk_action,
    })
}

impl Database {
    /// Writes `value` to customer `change.customer_id` and appends `change` to the audit
    /// trail, in one transaction.
    pub async fn change_customer_profile(
        &self,
        value: &ProfileValue,
        change: &ProfileChange,
    ) -> Result<(), ProfileChangeError> {
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            if let ProfileValue::Phone { index, .. } = value {
                let holder: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM customers WHERE phone_index = $1")
                        .bind(index)
                        .fetch_optional(&mut *transaction)
                        .await?;
                if holder.is_some_and(|(id,)| id != change.customer_id) {
                    return Err(ProfileChangeError::PhoneTaken);
                }
            }
            let updated = match value {
                ProfileValue::Phone { sealed, index } => {
                    sqlx::query("UPDATE customers SET phone = $1, phone_index = $2 WHERE id = $3 \
                         AND phone_index NOT LIKE 'erased:%'")
                        .bind(sealed)
                        .bind(index)
                        .bind(&change.customer_id)
                        .execute(&mut *transaction)
                        .await
                }
                ProfileValue::Name { sealed } => {
                    sqlx::query("UPDATE customers SET name = $1 WHERE id = $2 \
                         AND phone_index NOT LIKE 'erased:%'")
                        .bind(sealed)
                        .bind(&change.customer_id)
                        .execute(&mut *transaction)
                        .await
                }
                ProfileValue::Address { sealed } => {
                    sqlx::query("UPDATE customers SET address = $1 WHERE id = $2 \
                         AND phone_index NOT LIKE 'erased:%'")
                        .bind(sealed)
                        .bind(&change.customer_id)
                        .execute(&mut *transaction)
                        .await
                }
                ProfileValue::BankCard { sealed } => {
                    sqlx::query("UPDATE customers SET bank_card = $1 WHERE id = $2 \
                         AND phone_index NOT LIKE 'erased:%'")
                        .bind(sealed)
                        .bind(&change.customer_id)
                        .execute(&mut *transaction)
                        .await
                }
            };
            // The phone's index is unique: a concurrent change to the same number loses here.
            let updated = match updated {
                Ok(done) => done.rows_affected(),
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    return Err(ProfileChangeError::PhoneTaken)
                }
                Err(error) => return Err(error.into()),
            };
            // An erased customer takes no personal data again.
            if updated == 0 {
                return Err(ProfileChangeError::CustomerNotFound(change.customer_id.clone()));
            }
            sqlx::query(
                "INSERT INTO customer_profile_changes (id, at, api_key_id, principal, \
                 customer_id, field, risk_event_id, risk_action) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&change.id)
            .bind(micros(change.at))
            .bind(&change.api_key_id)
            .bind(&change.principal)
            .bind(&change.customer_id)
            .bind(&change.field)
            .bind(&change.risk_event_id)
            .bind(&change.risk_action)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
        });
        Ok(())
    }

    /// The sealed address and bank card of customer `id` (`None` when no such customer).
    pub async fn customer_sealed_profile(
        &self,
        id: &str,
    ) -> Result<Option<SealedProfile>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT address, bank_card FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(address, bank_card)| SealedProfile { address, bank_card }))
    }

    /// Replaces customer `id`'s sealed `field` (`address` or `bank_card`) with `new`, only if
    /// it still holds `old` (compare and set, for `tally privacy reseal`): whether it did.
    pub async fn reseal_customer_profile_field(
        &self,
        id: &str,
        field: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        // `field` is one of two column names, never input.
        let sql = match field {
            "address" => "UPDATE customers SET address = $1 WHERE id = $2 AND address = $3",
            "bank_card" => "UPDATE customers SET bank_card = $1 WHERE id = $2 AND bank_card = $3",
            other => {
                return Err(StoreError::Corrupt(format!(
                    "resealing unknown profile field {other}"
                )))
            }
        };
        let changed = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(new)
                .bind(id)
                .bind(old)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    /// The profile change with this id (its risk event's id).
    pub async fn customer_profile_change(
        &self,
        id: &str,
    ) -> Result<Option<ProfileChange>, StoreError> {
        let row: Option<ChangeTuple> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, at, api_key_id, principal, customer_id, field, risk_event_id, \
                 risk_action FROM customer_profile_changes WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(change_of).transpose()
    }

    /// The profile changes of customer `id`, oldest first.
    pub async fn customer_profile_changes(
        &self,
        id: &str,
    ) -> Result<Vec<ProfileChange>, StoreError> {
        let rows: Vec<ChangeTuple> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, at, api_key_id, principal, customer_id, field, risk_event_id, \
                 risk_action FROM customer_profile_changes WHERE customer_id = $1 \
                 ORDER BY at, id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(change_of).collect()
    }
}
