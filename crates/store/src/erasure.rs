//! Erasure of a customer's personal data (PIPL art. 47, GDPR art. 17): the sealed fields and
//! blind indexes overwritten in the customer's row, the keyed hashes that could confirm a
//! guessed value (creation requests, lookups' searched indexes) overwritten, held profile
//! changes (which carry sealed values) refused and emptied, and one `customer_erasures` row
//! (who, when, why; never a value), all in one transaction. In the same transaction the
//! customer's risk events lose the fields that identify the person ([`ERASED_EVENT_FIELDS`])
//! and the identifiers kept for a consortium publication (`consortium_identifiers`) are
//! deleted. The row itself stays, under its pseudonymous id, so the ledger, credit accounts
//! and payments that name it stay whole.

use crate::credit::on_pool;
use crate::customers::StoredCustomer;
use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, timestamp};
use jiff::Timestamp;

/// What an erased customer's sealed fields hold: no value, and not a sealed one.
pub const ERASED: &str = "erased";

/// The blind index an erased customer's phone and national id hold: unique per customer (the
/// columns are unique) and matching no value, since real indexes are hex.
pub fn erased_index(customer_id: &str) -> String {
    format!("erased:{customer_id}")
}

impl StoredCustomer {
    /// Whether the customer's personal data was erased.
    pub fn is_erased(&self) -> bool {
        self.phone_index == erased_index(&self.id)
    }
}

/// One erasure: whose, when, by whom (API key id and name), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerErasure {
    pub customer_id: String,
    pub at: Timestamp,
    pub api_key_id: String,
    pub principal: String,
    pub reason: String,
}

/// What an erasure request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erased {
    /// Erased now.
    Now(CustomerErasure),
    /// Erased before: the first erasure, unchanged.
    Already(CustomerErasure),
}

type ErasureTuple = (String, i64, String, String, String);

fn erasure_of(row: ErasureTuple) -> Result<CustomerErasure, StoreError> {
    let (customer_id, at, api_key_id, principal, reason) = row;
    Ok(CustomerErasure {
        customer_id,
        at: timestamp(at)?,
        api_key_id,
        principal,
        reason,
    })
}

/// The answer a held profile change of an erased customer ends with.
const HELD_CHANGE_REFUSED: &str =
    r#"{"code":"customer_erased","message":"the customer's personal data was erased"}"#;

/// The fields of a stored risk event that identify the person, removed by an erasure: the
/// device and IP address, the card's and the delivery address's keyed fingerprints, and the
/// location. Kept: the event's id, kind and time, the pseudonymous customer id, the merchant,
/// the amount and which profile field changed (never its value).
pub const ERASED_EVENT_FIELDS: [&str; 5] = ["device", "ip", "card", "address", "geo"];

/// `body` (a stored event) without [`ERASED_EVENT_FIELDS`], or `None` when it has none of
/// them.
pub fn scrubbed_event(body: &str) -> Result<Option<String>, StoreError> {
    let mut event: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
        .map_err(|error| StoreError::Corrupt(format!("risk event body: {error}")))?;
    let mut removed = false;
    for field in ERASED_EVENT_FIELDS {
        removed |= event.remove(field).is_some();
    }
    if !removed {
        return Ok(None);
    }
    serde_json::to_string(&event)
        .map(Some)
        .map_err(|error| StoreError::Corrupt(format!("risk event body: {error}")))
}

impl Database {
    /// Erases customer `erasure.customer_id`'s personal data, once: `None` when no such
    /// customer exists, [`Erased::Already`] with the first erasure when it was erased before.
    pub async fn erase_customer(
        &self,
        erasure: &CustomerErasure,
    ) -> Result<Option<Erased>, StoreError> {
        let id = &erasure.customer_id;
        let index = erased_index(id);
        let at = micros(erasure.at);
        let outcome = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let before: Option<(String,)> =
                sqlx::query_as("SELECT phone_index FROM customers WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *transaction)
                    .await?;
            // Done again for a customer erased before: an erasure made before risk events
            // and consortium identifiers were covered completes when it is asked again.
            if before.is_some() {
                // Risk events keep what the books and the fraud record need (what
                // happened, when, how much, at which merchant, and the decision with its
                // reasons) and lose what identifies the person.
                let events: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT sequence, body FROM risk_events WHERE customer = $1",
                )
                .bind(id)
                .fetch_all(&mut *transaction)
                .await?;
                for (sequence, body) in events {
                    if let Some(scrubbed) = scrubbed_event(&body)? {
                        sqlx::query("UPDATE risk_events SET body = $1 WHERE sequence = $2")
                            .bind(scrubbed)
                            .bind(sequence)
                            .execute(&mut *transaction)
                            .await?;
                    }
                }
                // Cards, addresses and phones kept sealed for a publication.
                sqlx::query("DELETE FROM consortium_identifiers WHERE customer = $1")
                    .bind(id)
                    .execute(&mut *transaction)
                    .await?;
            }
            let outcome = match before {
                None => None,
                Some((phone_index,)) if phone_index == index => {
                    let first: ErasureTuple = sqlx::query_as(
                        "SELECT customer_id, at, api_key_id, principal, reason \
                         FROM customer_erasures WHERE customer_id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *transaction)
                    .await?;
                    Some(Erased::Already(erasure_of(first)?))
                }
                Some(_) => {
                    sqlx::query(
                        "UPDATE customers SET name = $1, phone = $1, national_id = $1, \
                         date_of_birth = $1, address = NULL, bank_card = NULL, \
                         phone_index = $2, national_id_index = $2 WHERE id = $3",
                    )
                    .bind(ERASED)
                    .bind(&index)
                    .bind(id)
                    .execute(&mut *transaction)
                    .await?;
                    sqlx::query(
                        "UPDATE customer_idempotency_keys SET request_hash = $1 \
                         WHERE customer_id = $2",
                    )
                    .bind(ERASED)
                    .bind(id)
                    .execute(&mut *transaction)
                    .await?;
                    sqlx::query("UPDATE pii_lookups SET value_index = $1 WHERE customer_id = $2")
                        .bind(ERASED)
                        .bind(id)
                        .execute(&mut *transaction)
                        .await?;
                    // Held profile changes carry the new value sealed: emptied, and those
                    // still waiting end refused.
                    sqlx::query(
                        "UPDATE risk_held_operations SET operation = '{}', \
                         status = CASE WHEN status IN ('waiting_for_code', 'under_review') \
                         THEN 'refused' ELSE status END, \
                         outcome = CASE WHEN status IN ('waiting_for_code', 'under_review') \
                         THEN $1 ELSE outcome END, updated_at = $2 \
                         WHERE customer_id = $3 AND kind = 'profile_change'",
                    )
                    .bind(HELD_CHANGE_REFUSED)
                    .bind(at)
                    .bind(id)
                    .execute(&mut *transaction)
                    .await?;
                    sqlx::query(
                        "INSERT INTO customer_erasures (customer_id, at, api_key_id, \
                         principal, reason) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(&erasure.api_key_id)
                    .bind(&erasure.principal)
                    .bind(&erasure.reason)
                    .execute(&mut *transaction)
                    .await?;
                    Some(Erased::Now(erasure.clone()))
                }
            };
            transaction.commit().await?;
            outcome
        });
        Ok(outcome)
    }

    /// The erasure of customer `id`, if it was erased.
    pub async fn customer_erasure(&self, id: &str) -> Result<Option<CustomerErasure>, StoreError> {
        let row: Option<ErasureTuple> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT customer_id, at, api_key_id, principal, reason \
                 FROM customer_erasures WHERE customer_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(erasure_of).transpose()
    }
}
