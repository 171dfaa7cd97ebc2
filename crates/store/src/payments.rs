//! Storage of payments: each payment's state with its version (its refunds included), the
//! intent log of steps taken outside the payment row, write requests by idempotency key
//! with their answers, saved cards, wallet operations and the vault's yield. Persistence only: what to write, and when,
//! is the payment service's (`tally_service::payments`); states, steps and answers are
//! stored as the service encoded them. What one point of a payment's work makes durable
//! is one [`PaymentChanges`], written in one transaction, and the [`writer::PaymentWriter`]
//! writes many payments' changes in one (group commit).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::{inserted_unless_taken, StoreError};
use crate::rows::micros;
use crate::webhooks::NewPaymentEvent;
use jiff::Timestamp;

pub mod writer;

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayment {
    pub id: String,
    pub version: i64,
    /// The state as JSON text.
    pub state: String,
}

/// A write request's stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPaymentRequest {
    pub kind: String,
    pub request_hash: String,
    pub answer_code: i32,
    /// The answer as JSON text.
    pub answer: String,
}

/// One step of a payment's intent log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentStepRow {
    pub payment_id: String,
    pub sequence: i64,
    /// The action as JSON text.
    pub action: String,
    /// `pending`, `done` or `refused`.
    pub status: String,
    /// The outcome as JSON text, once resolved.
    pub outcome: Option<String>,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
}

/// A payment's new state, replacing the stored one if its version is still `version`.
#[derive(Debug, Clone)]
pub struct PaymentUpdate {
    pub version: i64,
    pub status: String,
    pub state: String,
    pub deadline: Option<Timestamp>,
    /// What the change announces to merchants (the outbox).
    pub events: Vec<NewPaymentEvent>,
}

/// How a step of the intent log ended: `done` or `refused`, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStep {
    pub sequence: i64,
    pub status: String,
    /// The outcome as JSON text.
    pub outcome: String,
}

/// A step written as pending, before it is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedStep {
    pub sequence: i64,
    /// The action as JSON text.
    pub action: String,
}

/// An answer to store for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAnswer {
    pub key: String,
    pub kind: String,
    pub request_hash: String,
    pub answer_code: i32,
    pub answer: String,
}

/// A new payment, written with the answer to the request that made it (the changes'
/// `answer`) and the events announcing it.
#[derive(Debug, Clone)]
pub struct PaymentInsert {
    pub merchant_id: String,
    pub order_reference: String,
    pub customer: String,
    pub currency: String,
    pub amount_minor: i64,
    pub status: String,
    pub state: String,
    pub deadline: Option<Timestamp>,
    pub events: Vec<NewPaymentEvent>,
}

/// Everything one payment's work has to make durable at one point, written in one
/// transaction, in this order: the new state (version-checked), the steps it has applied
/// resolved, the next step written as pending, the request's answer. Nothing in it needs
/// to be on disk before the rest, so one commit serves all of it.
#[derive(Debug, Clone)]
pub struct PaymentChanges {
    pub payment_id: String,
    /// The payment is new: it is written only if no answer is stored under the answer's
    /// key (else nothing is, and the write answers false).
    pub insert: Option<PaymentInsert>,
    pub update: Option<PaymentUpdate>,
    pub resolved: Vec<ResolvedStep>,
    /// Steps about to be taken (several when a request takes them side by side).
    pub append: Vec<AppendedStep>,
    pub answer: Option<PaymentAnswer>,
    pub now: Timestamp,
}

impl PaymentChanges {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.insert.is_none()
            && self.update.is_none()
            && self.resolved.is_empty()
            && self.append.is_empty()
            && self.answer.is_none()
    }
}

/// A wallet or vault operation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWalletOperation {
    pub id: String,
    pub request_hash: String,
    /// The state as JSON text.
    pub state: String,
}

/// A new wallet or vault operation, written as pending.
#[derive(Debug, Clone, Copy)]
pub struct NewWalletOperation<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub customer: &'a str,
    pub currency: &'a str,
    pub amount_minor: i64,
    pub request_hash: &'a str,
    pub state: &'a str,
    pub created_at: Timestamp,
}

/// A saved card: the channel's token and what may be shown of the card.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CardRow {
    pub token: String,
    pub customer: String,
    pub last_four: String,
    pub brand: String,
    pub fingerprint: String,
    pub created_at: i64,
}

/// A notification from the channel, as received.
#[derive(Debug, Clone, Copy)]
pub struct NewChannelNotification<'a> {
    pub event_id: &'a str,
    pub kind: &'a str,
    pub reference: &'a str,
    pub channel_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
}

/// A stored notification from the channel.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelNotificationRow {
    pub event_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub reference: String,
    pub channel_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub outcome: String,
    pub resolved_at: Option<i64>,
}

/// Writes an event to the outbox inside the transaction of the change it announces.
macro_rules! insert_event {
    ($executor:expr, $event:expr) => {
        sqlx::query(
            "INSERT INTO payment_events (id, type, payment_id, merchant_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$event.id)
        .bind(&$event.kind)
        .bind(&$event.payment_id)
        .bind(&$event.merchant_id)
        .bind(&$event.payload)
        .bind(micros($event.created_at))
        .execute($executor)
        .await?
    };
}

/// Writes one payment's changes on `$executor` (a transaction); evaluates to false, having
/// written nothing, when the version check fails. Stored steps and answers are kept
/// (`ON CONFLICT DO NOTHING`), so that nothing here fails a transaction it shares.
macro_rules! write_changes {
    ($executor:expr, $changes:expr) => {{
        let changes: &PaymentChanges = $changes;
        let now = micros(changes.now);
        let mut written = true;
        let mut answer = changes.answer.as_ref();
        if let Some(insert) = &changes.insert {
            // The request's answer first: a key stored already means the payment exists.
            if let Some(request) = answer.take() {
                let stored = sqlx::query(
                    "INSERT INTO payment_requests \
                     (key, kind, request_hash, answer_code, answer, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                )
                .bind(&request.key)
                .bind(&request.kind)
                .bind(&request.request_hash)
                .bind(request.answer_code)
                .bind(&request.answer)
                .bind(now)
                .execute(&mut *$executor)
                .await?
                .rows_affected();
                written = stored == 1;
            }
            if written {
                sqlx::query(
                    "INSERT INTO payments (id, merchant_id, order_reference, customer, currency, \
                     amount_minor, status, state, version, deadline, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
                )
                .bind(&changes.payment_id)
                .bind(&insert.merchant_id)
                .bind(&insert.order_reference)
                .bind(&insert.customer)
                .bind(&insert.currency)
                .bind(insert.amount_minor)
                .bind(&insert.status)
                .bind(&insert.state)
                .bind(optional_micros(insert.deadline))
                .bind(now)
                .execute(&mut *$executor)
                .await?;
                for event in &insert.events {
                    insert_event!(&mut *$executor, event);
                }
            }
        }
        if let (true, Some(update)) = (written, &changes.update) {
            let updated = sqlx::query(
                "UPDATE payments SET state = $1, status = $2, deadline = $3, \
                 version = version + 1, updated_at = $4 WHERE id = $5 AND version = $6",
            )
            .bind(&update.state)
            .bind(&update.status)
            .bind(optional_micros(update.deadline))
            .bind(now)
            .bind(&changes.payment_id)
            .bind(update.version)
            .execute(&mut *$executor)
            .await?
            .rows_affected();
            written = updated == 1;
            if written {
                for event in &update.events {
                    insert_event!(&mut *$executor, event);
                }
            }
        }
        if written {
            for step in &changes.resolved {
                sqlx::query(
                    "UPDATE payment_steps SET status = $1, outcome = $2, resolved_at = $3 \
                     WHERE payment_id = $4 AND sequence = $5",
                )
                .bind(&step.status)
                .bind(&step.outcome)
                .bind(now)
                .bind(&changes.payment_id)
                .bind(step.sequence)
                .execute(&mut *$executor)
                .await?;
            }
            for step in &changes.append {
                sqlx::query(
                    "INSERT INTO payment_steps (payment_id, sequence, action, status, created_at) \
                     VALUES ($1, $2, $3, 'pending', $4) \
                     ON CONFLICT (payment_id, sequence) DO NOTHING",
                )
                .bind(&changes.payment_id)
                .bind(step.sequence)
                .bind(&step.action)
                .bind(now)
                .execute(&mut *$executor)
                .await?;
            }
            if let Some(answer) = answer {
                sqlx::query(
                    "INSERT INTO payment_requests \
                     (key, kind, request_hash, answer_code, answer, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                )
                .bind(&answer.key)
                .bind(&answer.kind)
                .bind(&answer.request_hash)
                .bind(answer.answer_code)
                .bind(&answer.answer)
                .bind(now)
                .execute(&mut *$executor)
                .await?;
            }
        }
        written
    }};
}
fn optional_micros(at: Option<Timestamp>) -> Option<i64> {
    at.map(micros)
}

impl Database {
    /// The payment `id` with its version.
    pub async fn payment(&self, id: &str) -> Result<Option<StoredPayment>, StoreError> {
        let row: Option<(String, i64, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, version, state FROM payments WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(id, version, state)| StoredPayment { id, version, state }))
    }

    /// Writes `changes` in one transaction (see [`PaymentChanges`]). False when the payment's
    /// version is no longer the one updated (nothing written). A step or an answer stored
    /// already is left as it is: the step is then taken again under the same keys, and the
    /// first answer stands.
    pub async fn write_payment_changes(
        &self,
        changes: &PaymentChanges,
    ) -> Result<bool, StoreError> {
        if changes.is_empty() {
            return Ok(true);
        }
        let written = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let written = write_changes!(&mut *transaction, changes);
            if written {
                transaction.commit().await?;
            } else {
                transaction.rollback().await?;
            }
            written
        });
        Ok(written)
    }

    /// Writes each of `batch` in one transaction, one commit for all (group commit): for
    /// each, whether it was written (false: its version check failed and nothing of it was
    /// written, the others are). An error writes none of them.
    pub async fn write_payment_changes_batch(
        &self,
        batch: &[&PaymentChanges],
    ) -> Result<Vec<bool>, StoreError> {
        let mut written = Vec::with_capacity(batch.len());
        let _turn = self.write_turn().await;
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            for changes in batch {
                written.push(write_changes!(&mut *transaction, changes));
            }
            transaction.commit().await?;
        });
        Ok(written)
    }

    /// The payments of `customer`, newest first: id and state.
    pub async fn payments_of_customer(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<StoredPayment>, StoreError> {
        let rows: Vec<(String, i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, version, state FROM payments WHERE customer = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2",
            )
            .bind(customer)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, version, state)| StoredPayment { id, version, state })
            .collect())
    }

    /// Payments that need the recovery worker: a step of the intent log still pending, or
    /// an unpaid payment whose deadline is before `now`. Oldest first, at most `limit`.
    pub async fn payments_to_recover(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT payment_id FROM payment_steps WHERE status = 'pending' \
                 UNION SELECT id FROM payments WHERE deadline IS NOT NULL AND deadline <= $1 \
                 ORDER BY 1 LIMIT $2",
            )
            .bind(micros(now))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The answer stored for request `key`.
    pub async fn payment_request(
        &self,
        key: &str,
    ) -> Result<Option<StoredPaymentRequest>, StoreError> {
        let row: Option<(String, String, i32, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT kind, request_hash, answer_code, answer FROM payment_requests WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(kind, request_hash, answer_code, answer)| StoredPaymentRequest {
                kind,
                request_hash,
                answer_code,
                answer,
            },
        ))
    }

    /// Payment `payment_id`'s intent log, in order.
    pub async fn payment_steps(&self, payment_id: &str) -> Result<Vec<PaymentStepRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT payment_id, sequence, action, status, outcome, created_at, resolved_at \
                 FROM payment_steps WHERE payment_id = $1 ORDER BY sequence",
            )
            .bind(payment_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Saves a card; false when its token is saved already.
    pub async fn insert_card(&self, card: &CardRow) -> Result<bool, StoreError> {
        let inserted: Result<_, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO payment_cards (token, customer, last_four, brand, fingerprint, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&card.token)
            .bind(&card.customer)
            .bind(&card.last_four)
            .bind(&card.brand)
            .bind(&card.fingerprint)
            .bind(card.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        inserted_unless_taken(inserted)
    }

    /// The saved card with token `token`.
    pub async fn card(&self, token: &str) -> Result<Option<CardRow>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT token, customer, last_four, brand, fingerprint, created_at \
                 FROM payment_cards WHERE token = $1",
            )
            .bind(token)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// The cards `customer` saved, oldest first.
    pub async fn cards_of_customer(&self, customer: &str) -> Result<Vec<CardRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT token, customer, last_four, brand, fingerprint, created_at \
                 FROM payment_cards WHERE customer = $1 ORDER BY created_at, token",
            )
            .bind(customer)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The last day the vault yield of `customer` in `currency` was credited, and the
    /// fraction carried.
    pub async fn vault_yield(
        &self,
        customer: &str,
        currency: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT accrued_through, carried FROM vault_yields \
                 WHERE customer = $1 AND currency = $2",
            )
            .bind(customer)
            .bind(currency)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Records the vault yield of `customer` credited through `day` with `carried` left.
    pub async fn set_vault_yield(
        &self,
        customer: &str,
        currency: &str,
        day: &str,
        carried: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO vault_yields (customer, currency, accrued_through, carried) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (customer, currency) \
                 DO UPDATE SET accrued_through = excluded.accrued_through, carried = excluded.carried",
            )
            .bind(customer)
            .bind(currency)
            .bind(day)
            .bind(carried)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Writes a new wallet operation as pending; false when its id is taken (a retry).
    pub async fn insert_wallet_operation(
        &self,
        operation: NewWalletOperation<'_>,
    ) -> Result<bool, StoreError> {
        let inserted: Result<_, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO wallet_operations (id, kind, customer, currency, amount_minor, \
                 request_hash, state, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)",
            )
            .bind(operation.id)
            .bind(operation.kind)
            .bind(operation.customer)
            .bind(operation.currency)
            .bind(operation.amount_minor)
            .bind(operation.request_hash)
            .bind(operation.state)
            .bind(micros(operation.created_at))
            .execute(pool)
            .await
            .map(|_| ())
        });
        inserted_unless_taken(inserted)
    }

    /// Wallet operation `id`.
    pub async fn wallet_operation(
        &self,
        id: &str,
    ) -> Result<Option<StoredWalletOperation>, StoreError> {
        let row: Option<(String, String, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, request_hash, state FROM wallet_operations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(id, request_hash, state)| StoredWalletOperation {
            id,
            request_hash,
            state,
        }))
    }

    /// Replaces a wallet operation's state and status.
    pub async fn update_wallet_operation(
        &self,
        id: &str,
        state: &str,
        status: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE wallet_operations SET state = $1, status = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(state)
            .bind(status)
            .bind(micros(now))
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Pending wallet operations, oldest first, at most `limit`: their ids.
    pub async fn pending_wallet_operations(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM wallet_operations WHERE status = 'pending' \
                 ORDER BY created_at, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The minor units of operations of `kind` by `customer` in `currency` since `since`
    /// that did not fail (pending ones count: they may yet succeed).
    pub async fn wallet_operations_total_since(
        &self,
        customer: &str,
        kind: &str,
        currency: &str,
        since: Timestamp,
    ) -> Result<i64, StoreError> {
        let (total,): (Option<i64>,) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(SUM(amount_minor) AS BIGINT) FROM wallet_operations \
                 WHERE customer = $1 AND kind = $2 AND currency = $3 AND created_at >= $4 \
                 AND status <> 'failed'",
            )
            .bind(customer)
            .bind(kind)
            .bind(currency)
            .bind(micros(since))
            .fetch_one(pool)
            .await?
        });
        Ok(total.unwrap_or(0))
    }

    /// Ledger accounts whose code starts with `prefix`, in code order, at most `limit` after
    /// code `after`: id and code.
    pub async fn accounts_with_code_prefix(
        &self,
        prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(tally_core::AccountId, String)>, StoreError> {
        // The prefix is Tally's own (no `%` or `_`), so LIKE matches it as written.
        let pattern = format!("{prefix}%");
        let rows: Vec<(String, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, code FROM accounts WHERE code LIKE $1 AND code > $2 \
                 ORDER BY code LIMIT $3",
            )
            .bind(&pattern)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, code)| {
                uuid::Uuid::parse_str(&id)
                    .map(|id| (tally_core::AccountId(id), code))
                    .map_err(|_| StoreError::Corrupt(format!("account id {id}")))
            })
            .collect()
    }

    /// Records a notification from the channel as `received`, before it is applied; false
    /// when its event id is recorded already (a duplicate delivery: nothing written).
    pub async fn insert_channel_notification(
        &self,
        notification: NewChannelNotification<'_>,
    ) -> Result<bool, StoreError> {
        let inserted: Result<_, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO channel_notifications (event_id, type, reference, channel_id, \
                 amount_minor, currency, occurred_at, received_at, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received')",
            )
            .bind(notification.event_id)
            .bind(notification.kind)
            .bind(notification.reference)
            .bind(notification.channel_id)
            .bind(notification.amount_minor)
            .bind(notification.currency)
            .bind(micros(notification.occurred_at))
            .bind(micros(notification.received_at))
            .execute(pool)
            .await
            .map(|_| ())
        });
        inserted_unless_taken(inserted)
    }

    /// Records what applying notification `event_id` did.
    pub async fn resolve_channel_notification(
        &self,
        event_id: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE channel_notifications SET outcome = $1, resolved_at = $2 \
                 WHERE event_id = $3",
            )
            .bind(outcome)
            .bind(micros(now))
            .bind(event_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Notification `event_id` as stored.
    pub async fn channel_notification(
        &self,
        event_id: &str,
    ) -> Result<Option<ChannelNotificationRow>, StoreError> {
        let row = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT event_id, type, reference, channel_id, amount_minor, currency, \
                 occurred_at, received_at, outcome, resolved_at \
                 FROM channel_notifications WHERE event_id = $1",
            )
            .bind(event_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }
}
