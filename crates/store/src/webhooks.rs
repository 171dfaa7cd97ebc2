//! Storage of merchant webhooks: the endpoints merchants register, the outbox of payment
//! and refund events (written by [`Database::write_payment_changes`] in the transaction of
//! the change they announce), one
//! delivery per event and subscribed endpoint, and every attempt at it. Persistence only:
//! which events exist, who gets them and when they are sent again is the payment
//! service's (`tally_service::payments::webhooks`).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::{inserted_unless_taken, StoreError};
use crate::rows::micros;
use jiff::Timestamp;

/// An event to write to the outbox with the change it announces.
#[derive(Debug, Clone)]
pub struct NewPaymentEvent {
    pub id: String,
    pub kind: String,
    pub payment_id: String,
    pub merchant_id: String,
    /// The JSON every receiver gets, as sent.
    pub payload: String,
    pub created_at: Timestamp,
}

/// An event of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentEventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub payload: String,
    pub created_at: i64,
}

/// A merchant's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    /// The event types it wants, as a JSON array.
    pub events: String,
    /// The key of its signatures, sealed when `secret_sealed` is 1.
    pub secret: String,
    /// 1 when `secret` is sealed; 0 for a row stored before secrets were, until it is sealed.
    pub secret_sealed: i64,
    /// What created it (hash of the request), so that a retry is recognised.
    pub request_hash: String,
    pub created_at: i64,
}

/// An event's deliveries to create: one per endpoint, due at `due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    pub event_id: String,
    pub endpoints: Vec<String>,
    pub due: Timestamp,
}

/// A delivery due, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueDelivery {
    pub event_id: String,
    pub endpoint_id: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub url: String,
    pub secret: String,
    pub secret_sealed: i64,
    pub payload: String,
}

/// A delivery with its state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookDeliveryRow {
    pub event_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub payment_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookAttemptRow {
    pub event_id: String,
    pub endpoint_id: String,
    pub attempt: i64,
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// What an attempt did and what follows it.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub event_id: &'a str,
    pub endpoint_id: &'a str,
    pub attempt: i64,
    pub attempted_at: Timestamp,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    /// `pending` (to be sent again at `next_attempt_at`), `delivered` or `failed`.
    pub status: &'a str,
    pub next_attempt_at: Option<Timestamp>,
}

impl Database {
    /// Registers an endpoint; false when its id is taken (a retry: nothing written).
    pub async fn insert_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpointRow,
    ) -> Result<bool, StoreError> {
        let inserted: Result<_, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO webhook_endpoints \
                 (id, merchant_id, url, events, secret, secret_sealed, request_hash, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&endpoint.id)
            .bind(&endpoint.merchant_id)
            .bind(&endpoint.url)
            .bind(&endpoint.events)
            .bind(&endpoint.secret)
            .bind(endpoint.secret_sealed)
            .bind(&endpoint.request_hash)
            .bind(endpoint.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        inserted_unless_taken(inserted)
    }

    /// Endpoint `id`.
    pub async fn webhook_endpoint(
        &self,
        id: &str,
    ) -> Result<Option<WebhookEndpointRow>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, merchant_id, url, events, secret, secret_sealed, request_hash, \
                 created_at \
                 FROM webhook_endpoints WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Endpoints, of merchant `merchant_id` when given, oldest first, at most `limit`.
    pub async fn webhook_endpoints(
        &self,
        merchant_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookEndpointRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, merchant_id, url, events, secret, secret_sealed, request_hash, \
                 created_at \
                 FROM webhook_endpoints WHERE ($1 IS NULL OR merchant_id = $1) \
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(merchant_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Outbox event `id`.
    pub async fn payment_event(&self, id: &str) -> Result<Option<PaymentEventRow>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, type, payment_id, merchant_id, payload, created_at \
                 FROM payment_events WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// The events of payment `payment_id`, in order.
    pub async fn payment_events(
        &self,
        payment_id: &str,
    ) -> Result<Vec<PaymentEventRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, type, payment_id, merchant_id, payload, created_at \
                 FROM payment_events WHERE payment_id = $1 ORDER BY sequence",
            )
            .bind(payment_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Events not yet given their deliveries, oldest first, at most `limit`.
    pub async fn events_to_fan_out(&self, limit: i64) -> Result<Vec<PaymentEventRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, type, payment_id, merchant_id, payload, created_at \
                 FROM payment_events WHERE fanned_out = 0 ORDER BY sequence LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Gives each event of `fan_outs` one pending delivery per endpoint named with it, due at
    /// the time given, and marks it fanned out: all in one transaction (one commit a pass,
    /// however many events; most have no endpoint).
    pub async fn fan_out_events(&self, fan_outs: &[FanOut]) -> Result<(), StoreError> {
        if fan_outs.is_empty() {
            return Ok(());
        }
        // In turn with the group-commit writers, which it would otherwise make sleep.
        let _turn = self.write_turn().await;
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            for fan_out in fan_outs {
                for endpoint in &fan_out.endpoints {
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, \
                         attempts, next_attempt_at, created_at) \
                         VALUES ($1, $2, 'pending', 0, $3, $3) \
                         ON CONFLICT (event_id, endpoint_id) DO NOTHING",
                    )
                    .bind(&fan_out.event_id)
                    .bind(endpoint)
                    .bind(micros(fan_out.due))
                    .execute(&mut *transaction)
                    .await?;
                }
                sqlx::query("UPDATE payment_events SET fanned_out = 1 WHERE id = $1")
                    .bind(&fan_out.event_id)
                    .execute(&mut *transaction)
                    .await?;
            }
            transaction.commit().await?;
        });
        Ok(())
    }

    /// Pending deliveries due at `now`, the oldest due first, at most `limit`.
    pub async fn due_webhook_deliveries(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT d.event_id, d.endpoint_id, d.attempts, d.next_attempt_at, \
                 e.url, e.secret, e.secret_sealed, v.payload \
                 FROM webhook_deliveries d \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 JOIN payment_events v ON v.id = d.event_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                 ORDER BY d.next_attempt_at, v.sequence, d.endpoint_id LIMIT $2",
            )
            .bind(micros(now))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Takes a due delivery for one attempt: moves its next attempt to `lease_until` if it
    /// is still due at `next_attempt_at`, so that another process's worker leaves it. False
    /// when another took it first.
    pub async fn claim_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        next_attempt_at: i64,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let claimed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE webhook_deliveries SET next_attempt_at = $1 \
                 WHERE event_id = $2 AND endpoint_id = $3 AND status = 'pending' \
                 AND next_attempt_at = $4",
            )
            .bind(micros(lease_until))
            .bind(event_id)
            .bind(endpoint_id)
            .bind(next_attempt_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(claimed == 1)
    }

    /// Records an attempt and the delivery's state after it, in one transaction.
    pub async fn record_webhook_attempt(
        &self,
        record: &AttemptRecord<'_>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (event_id, endpoint_id, attempt, attempted_at, \
                 status_code, error) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.event_id)
            .bind(record.endpoint_id)
            .bind(record.attempt)
            .bind(micros(record.attempted_at))
            .bind(record.status_code)
            .bind(record.error)
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, \
                 next_attempt_at = $3 WHERE event_id = $4 AND endpoint_id = $5",
            )
            .bind(record.status)
            .bind(record.attempt)
            .bind(record.next_attempt_at.map(micros))
            .bind(record.event_id)
            .bind(record.endpoint_id)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
        });
        Ok(())
    }

    /// Deliveries to endpoint `endpoint_id` (newest event first), or of event `event_id`,
    /// at most `limit`.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: Option<&str>,
        event_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT d.event_id, d.endpoint_id, v.type AS event_type, v.payment_id, \
                 d.status, d.attempts, d.next_attempt_at, d.created_at \
                 FROM webhook_deliveries d JOIN payment_events v ON v.id = d.event_id \
                 WHERE ($1 IS NULL OR d.endpoint_id = $1) AND ($2 IS NULL OR d.event_id = $2) \
                 ORDER BY v.sequence DESC, d.endpoint_id LIMIT $3",
            )
            .bind(endpoint_id)
            .bind(event_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The attempts at delivering `event_id` to `endpoint_id`, in order.
    pub async fn webhook_attempts(
        &self,
        event_id: &str,
        endpoint_id: &str,
    ) -> Result<Vec<WebhookAttemptRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT event_id, endpoint_id, attempt, attempted_at, status_code, error \
                 FROM webhook_attempts WHERE event_id = $1 AND endpoint_id = $2 \
                 ORDER BY attempt",
            )
            .bind(event_id)
            .bind(endpoint_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
    /// Removes at most `limit` events created before `cutoff` that are done with (given
    /// their deliveries, none of them still pending), oldest first, with their deliveries
    /// and attempts, in one transaction: the number removed.
    pub async fn prune_webhook_events(
        &self,
        cutoff: Timestamp,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let removed = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let ids: Vec<(String,)> = sqlx::query_as(
                "SELECT v.id FROM payment_events v \
                 WHERE v.fanned_out = 1 AND v.created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                 WHERE d.event_id = v.id AND d.status = 'pending') \
                 ORDER BY v.sequence LIMIT $2",
            )
            .bind(micros(cutoff))
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
            for (id,) in &ids {
                for statement in [
                    "DELETE FROM webhook_attempts WHERE event_id = $1",
                    "DELETE FROM webhook_deliveries WHERE event_id = $1",
                    "DELETE FROM payment_events WHERE id = $1",
                ] {
                    sqlx::query(statement)
                        .bind(id)
                        .execute(&mut *transaction)
                        .await?;
                }
            }
            transaction.commit().await?;
            ids.len()
        });
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }
    /// Endpoints whose secret is still in clear, at most `limit`.
    pub async fn unsealed_webhook_endpoints(
        &self,
        limit: i64,
    ) -> Result<Vec<WebhookEndpointRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, merchant_id, url, events, secret, secret_sealed, request_hash, \
                 created_at FROM webhook_endpoints WHERE secret_sealed = 0 ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Endpoints whose secret is sealed, after id `after` in id order, at most `limit`: what
    /// `tally privacy reseal` walks.
    pub async fn sealed_webhook_endpoints_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<WebhookEndpointRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, merchant_id, url, events, secret, secret_sealed, request_hash, \
                 created_at FROM webhook_endpoints WHERE secret_sealed = 1 AND id > $1 \
                 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Replaces endpoint `id`'s sealed secret `old` by `new` (the same secret sealed under
    /// another key), only if it still holds `old`: whether it did.
    pub async fn reseal_webhook_secret(
        &self,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE webhook_endpoints SET secret = $1 \
                 WHERE id = $2 AND secret = $3 AND secret_sealed = 1",
            )
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Replaces endpoint `id`'s secret in clear by `sealed`, unless another process sealed
    /// it first: whether this call did.
    pub async fn seal_webhook_secret(&self, id: &str, sealed: &str) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE webhook_endpoints SET secret = $1, secret_sealed = 1 \
                 WHERE id = $2 AND secret_sealed = 0",
            )
            .bind(sealed)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }
}
