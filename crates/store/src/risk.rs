//! Storage of the risk engine: rule set versions and activations, every event with its
//! decision in decision order, list entries, and the case queue with its audit trail.
//! The engine itself is in memory; on start the service rebuilds it from these tables.

use crate::database::Database;
use crate::error::StoreError;

/// An account-anomaly alert to raise in the transaction that stores a decision: one task in
/// the collections queue for each credit account of the event's customer that is not closed,
/// at most one a day per account and reason (the queue's unique index), so a burst of
/// takeover events makes one call, not many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyAlertRow {
    pub customer: String,
    pub event_id: String,
    /// The risk reason code that signals the anomaly (`ACCOUNT_TAKEOVER`, `BUST_OUT`, ...).
    pub reason: String,
    /// The business date of the credit service (`YYYY-MM-DD`).
    pub business_date: String,
    /// The event's amount, shown on the task when it is in the account's currency.
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub priority: i32,
    pub created_at: i64,
}

/// A decision to store: the event row, the case it opens, the alerts it raises.
pub type DecisionRows = (
    EventRow,
    Option<(CaseRow, CaseLogRow)>,
    Vec<AnomalyAlertRow>,
);

/// A stored event with the decision made on it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub sequence: i64,
    pub event_id: String,
    pub customer: String,
    pub at: i64,
    pub body: String,
    pub action: String,
    pub version: i64,
    pub decision: String,
    pub decided_at: i64,
}

/// The identifiers an evidence package looks for in other customers' events: device ids,
/// card fingerprints and address hashes, as events carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedIdentifiers {
    pub devices: Vec<String>,
    pub cards: Vec<String>,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListEntryRow {
    pub id: String,
    pub kind: String,
    pub field: String,
    pub value: String,
    pub reason: String,
    pub source: String,
    pub added_at: i64,
    pub added_by: String,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub kind: String,
    pub priority: i64,
    pub status: String,
    pub customer: String,
    pub event_sequence: Option<i64>,
    pub summary: String,
    pub assignee: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stolen-account claim beside its case (see migration `stolen_account_claims`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimRow {
    pub case_id: String,
    /// Microseconds since the epoch.
    pub compromised_at: Option<i64>,
    pub police_reference: Option<String>,
    /// How far the customer's credit lines followed the case: none, frozen, confirmed,
    /// ended, restoring, restored.
    pub followed_up: String,
    pub restored_at: Option<i64>,
    pub restored_by: Option<String>,
}

/// An identifier a confirmed case publishes to the consortium log (the outbox of migration
/// `consortium_publications`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PublicationRow {
    pub id: String,
    pub case_id: String,
    /// The consortium's identifier kind (`device`).
    pub kind: String,
    /// The identifier as the events carry it.
    pub identifier: String,
    pub risk_type: String,
    pub severity: i32,
    /// When the record stops being live, Unix seconds.
    pub expires_at: i64,
    pub created_at: i64,
    /// pending, published or refused.
    pub status: String,
    /// The signed request, base64, once signed (stored before it is sent).
    pub request: Option<String>,
    /// The salt of the request's identifier commitment, hex.
    pub salt: Option<String>,
    /// The log's size when the request was signed: where to look for it in the log.
    pub search_from: Option<i64>,
    pub record_index: Option<i64>,
    pub published_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

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

const PUBLICATION_COLUMNS: &str = "SELECT id, case_id, kind, identifier, risk_type, severity, \
    expires_at, created_at, status, request, salt, search_from, record_index, published_at, \
    attempts, last_error FROM consortium_publications";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseLogRow {
    pub id: String,
    pub case_id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub note: String,
}

/// A request to make a rule set version live, and its decision: the maker (who asked) and
/// the checker (who approved or rejected) are different API keys.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivationRequestRow {
    pub id: String,
    pub version: i64,
    pub note: String,
    pub requested_at: i64,
    pub requested_by: String,
    pub requested_by_key: String,
    /// pending, approved or rejected.
    pub status: String,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_by_key: Option<String>,
}

/// Which cases one page of the queue shows: a status, optionally a kind and the key that
/// claimed them, and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseQueue {
    pub status: String,
    pub kind: Option<String>,
    pub assignee_key: Option<String>,
    pub limit: i64,
    pub offset: i64,
    /// A sort of [`crate::lists::CASE_SORTS`] and its direction (its own offset and limit
    /// are not used); `None`: by priority, then oldest first.
    pub sort: Option<crate::lists::ListPage>,
}

impl CaseQueue {
    /// The queue's `ORDER BY`, from a fixed set of columns, ending with the id.
    fn order(&self) -> String {
        match &self.sort {
            None => "ORDER BY priority, created_at, id".to_string(),
            Some(page) => crate::lists::order_by(
                page,
                &[
                    ("priority", "priority"),
                    ("created_at", "created_at"),
                    ("kind", "kind"),
                    ("customer", "customer"),
                    ("assignee", "assignee"),
                ],
                "id",
            ),
        }
    }
}

macro_rules! risk_sql {
    ($module:ident, $database:ty) => {
        mod $module {
            use super::*;
            use sqlx::Pool;

            const CASE_COLUMNS: &str = "SELECT id, kind, priority, status, customer, event_sequence, \
                summary, assignee, created_at, updated_at FROM risk_cases";
            const EVENT_COLUMNS: &str = "SELECT sequence, event_id, customer, at, body, action, \
                version, decision, decided_at FROM risk_events";
            const LIST_COLUMNS: &str = "SELECT id, kind, field, value, reason, source, added_at, \
                added_by, expires_at FROM risk_list_entries";
            const CLAIM_COLUMNS: &str = "SELECT case_id, compromised_at, police_reference, \
                followed_up, restored_at, restored_by FROM stolen_account_claims";

            pub async fn rule_sets(pool: &Pool<$database>) -> Result<Vec<(i64, String)>, StoreError> {
                Ok(sqlx::query_as("SELECT version, source FROM risk_rule_sets ORDER BY version")
                    .fetch_all(pool)
                    .await?)
            }

            pub async fn insert_rule_set(
                pool: &Pool<$database>,
                version: i64,
                source: &str,
                at: i64,
                by: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO risk_rule_sets (version, source, uploaded_at, uploaded_by) VALUES ($1, $2, $3, $4)",
                )
                .bind(version)
                .bind(source)
                .bind(at)
                .bind(by)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn active_version(pool: &Pool<$database>) -> Result<Option<i64>, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT version FROM risk_activations ORDER BY activated_at DESC, id DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?;
                Ok(row.map(|(version,)| version))
            }

            pub async fn insert_activation(
                pool: &Pool<$database>,
                id: &str,
                version: i64,
                at: i64,
                by: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO risk_activations (id, version, activated_at, activated_by) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(version)
                .bind(at)
                .bind(by)
                .execute(pool)
                .await?;
                Ok(())
            }

            const REQUEST_COLUMNS: &str = "SELECT id, version, note, requested_at, requested_by, \
                requested_by_key, status, decided_at, decided_by, decided_by_key \
                FROM risk_activation_requests";

            pub async fn insert_activation_request(
                pool: &Pool<$database>,
                request: &ActivationRequestRow,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO risk_activation_requests (id, version, note, requested_at, \
                     requested_by, requested_by_key, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&request.id)
                .bind(request.version)
                .bind(&request.note)
                .bind(request.requested_at)
                .bind(&request.requested_by)
                .bind(&request.requested_by_key)
                .bind(&request.status)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn activation_request(
                pool: &Pool<$database>,
                id: &str,
            ) -> Result<Option<ActivationRequestRow>, StoreError> {
                let sql = format!("{REQUEST_COLUMNS} WHERE id = $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
            }

            pub async fn activation_requests(
                pool: &Pool<$database>,
                limit: i64,
            ) -> Result<Vec<ActivationRequestRow>, StoreError> {
                let sql = format!("{REQUEST_COLUMNS} ORDER BY requested_at DESC, id DESC LIMIT $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?)
            }

            /// Decides a pending request (by a key other than the requester's); when it is
            /// approved, stores the activation with it, in one transaction. False when the
            /// request was not pending any more, or the decider is the requester.
            pub async fn decide_activation_request(
                pool: &Pool<$database>,
                decided: &ActivationRequestRow,
                activation_id: Option<&str>,
            ) -> Result<bool, StoreError> {
                let mut transaction = pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE risk_activation_requests SET status = $2, decided_at = $3, \
                     decided_by = $4, decided_by_key = $5 WHERE id = $1 AND status = 'pending' \
                     AND ($2 <> 'approved' OR requested_by_key <> $5)",
                )
                .bind(&decided.id)
                .bind(&decided.status)
                .bind(decided.decided_at)
                .bind(&decided.decided_by)
                .bind(&decided.decided_by_key)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
                if updated != 1 {
                    transaction.rollback().await?;
                    return Ok(false);
                }
                if let Some(activation_id) = activation_id {
                    sqlx::query(
                        "INSERT INTO risk_activations (id, version, activated_at, activated_by, \
                         request_id) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(activation_id)
                    .bind(decided.version)
                    .bind(decided.decided_at)
                    .bind(&decided.decided_by)
                    .bind(&decided.id)
                    .execute(&mut *transaction)
                    .await?;
                }
                transaction.commit().await?;
                Ok(true)
            }

            pub async fn last_sequence(pool: &Pool<$database>) -> Result<i64, StoreError> {
                let (last,): (Option<i64>,) = sqlx::query_as("SELECT MAX(sequence) FROM risk_events")
                    .fetch_one(pool)
                    .await?;
                Ok(last.unwrap_or(0))
            }

            pub async fn events_since(pool: &Pool<$database>, at: i64) -> Result<Vec<EventRow>, StoreError> {
                let sql = format!("{EVENT_COLUMNS} WHERE at >= $1 ORDER BY sequence");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(at).fetch_all(pool).await?)
            }

            pub async fn event(pool: &Pool<$database>, sequence: i64) -> Result<Option<EventRow>, StoreError> {
                let sql = format!("{EVENT_COLUMNS} WHERE sequence = $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(sequence).fetch_optional(pool).await?)
            }

            pub async fn event_by_id(pool: &Pool<$database>, event_id: &str) -> Result<Option<EventRow>, StoreError> {
                let sql = format!("{EVENT_COLUMNS} WHERE event_id = $1 ORDER BY sequence LIMIT 1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(event_id).fetch_optional(pool).await?)
            }

            pub async fn event_case(pool: &Pool<$database>, sequence: i64) -> Result<Option<String>, StoreError> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM risk_cases WHERE event_sequence = $1 \
                     AND kind IN ('review', 'hold_delivery') ORDER BY created_at, id LIMIT 1",
                )
                .bind(sequence)
                .fetch_optional(pool)
                .await?;
                Ok(row.map(|(id,)| id))
            }

            pub async fn customer_events(
                pool: &Pool<$database>,
                customer: &str,
                limit: i64,
            ) -> Result<Vec<EventRow>, StoreError> {
                let sql = format!("{EVENT_COLUMNS} WHERE customer = $1 ORDER BY sequence DESC LIMIT $2");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).bind(limit).fetch_all(pool).await?)
            }

            /// Stores events with their decisions, and the cases they open, in one transaction.
            pub async fn insert_events(
                pool: &Pool<$database>,
                items: &[DecisionRows],
            ) -> Result<(), StoreError> {
                let mut transaction = pool.begin().await?;
                for (event, case, alerts) in items {
                    sqlx::query(
                        "INSERT INTO risk_events (sequence, event_id, customer, at, body, action, version, \
                         decision, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(event.sequence)
                    .bind(&event.event_id)
                    .bind(&event.customer)
                    .bind(event.at)
                    .bind(&event.body)
                    .bind(&event.action)
                    .bind(event.version)
                    .bind(&event.decision)
                    .bind(event.decided_at)
                    .execute(&mut *transaction)
                    .await?;
                    if let Some((case, log)) = case {
                        insert_case_in(&mut transaction, case, log).await?;
                    }
                    for alert in alerts {
                        insert_alert_in(&mut transaction, alert).await?;
                    }
                }
                transaction.commit().await?;
                Ok(())
            }

            async fn insert_alert_in(
                transaction: &mut sqlx::Transaction<'_, $database>,
                alert: &AnomalyAlertRow,
            ) -> Result<(), StoreError> {
                let accounts: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, state FROM credit_accounts WHERE customer_id = $1 ORDER BY id",
                )
                .bind(&alert.customer)
                .fetch_all(&mut **transaction)
                .await?;
                for (id, state) in accounts {
                    let account = crate::credit::decode(id, &state)?;
                    if account.status == tally_credit::AccountStatus::Closed {
                        continue;
                    }
                    let currency = account.currency.code();
                    let amount_minor = match (&alert.currency, alert.amount_minor) {
                        (Some(code), Some(minor)) if code == currency => minor,
                        _ => 0,
                    };
                    sqlx::query(
                        "INSERT INTO credit_contact_tasks (account_id, business_date, kind, reason, \
                         bucket, days_past_due, amount_minor, currency, priority, status, created_at, \
                         risk_event_id) VALUES ($1, $2, 'alert', $3, $4, $5, $6, $7, $8, 'open', $9, $10) \
                         ON CONFLICT (account_id, business_date, kind, reason) DO NOTHING",
                    )
                    .bind(id)
                    .bind(&alert.business_date)
                    .bind(&alert.reason)
                    .bind(crate::credit::bucket_name(account.bucket))
                    .bind(account.days_past_due)
                    .bind(amount_minor)
                    .bind(currency)
                    .bind(alert.priority)
                    .bind(alert.created_at)
                    .bind(&alert.event_id)
                    .execute(&mut **transaction)
                    .await?;
                }
                Ok(())
            }

            async fn insert_case_in(
                transaction: &mut sqlx::Transaction<'_, $database>,
                case: &CaseRow,
                log: &CaseLogRow,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO risk_cases (id, kind, priority, status, customer, event_sequence, summary, \
                     assignee, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&case.id)
                .bind(&case.kind)
                .bind(case.priority)
                .bind(&case.status)
                .bind(&case.customer)
                .bind(case.event_sequence)
                .bind(&case.summary)
                .bind(&case.assignee)
                .bind(case.created_at)
                .bind(case.updated_at)
                .execute(&mut **transaction)
                .await?;
                insert_log_in(transaction, log).await
            }

            async fn insert_log_in(
                transaction: &mut sqlx::Transaction<'_, $database>,
                log: &CaseLogRow,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO risk_case_log (id, case_id, at, actor, action, note) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&log.id)
                .bind(&log.case_id)
                .bind(log.at)
                .bind(&log.actor)
                .bind(&log.action)
                .bind(&log.note)
                .execute(&mut **transaction)
                .await?;
                Ok(())
            }

            pub async fn insert_case(pool: &Pool<$database>, case: &CaseRow, log: &CaseLogRow) -> Result<(), StoreError> {
                let mut transaction = pool.begin().await?;
                insert_case_in(&mut transaction, case, log).await?;
                transaction.commit().await?;
                Ok(())
            }

            pub async fn insert_claim(pool: &Pool<$database>, case: &CaseRow, log: &CaseLogRow, claim: &ClaimRow) -> Result<(), StoreError> {
                let mut transaction = pool.begin().await?;
                insert_case_in(&mut transaction, case, log).await?;
                sqlx::query(
                    "INSERT INTO stolen_account_claims \
                     (case_id, compromised_at, police_reference, followed_up, restored_at, restored_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&claim.case_id)
                .bind(claim.compromised_at)
                .bind(&claim.police_reference)
                .bind(&claim.followed_up)
                .bind(claim.restored_at)
                .bind(&claim.restored_by)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                Ok(())
            }

            pub async fn claim(pool: &Pool<$database>, case_id: &str) -> Result<Option<ClaimRow>, StoreError> {
                let sql = format!("{CLAIM_COLUMNS} WHERE case_id = $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_optional(pool).await?)
            }

            /// Claims whose credit lines have not yet followed their case's status.
            pub async fn claims_to_follow_up(pool: &Pool<$database>) -> Result<Vec<ClaimRow>, StoreError> {
                let sql = format!(
                    "{CLAIM_COLUMNS} WHERE followed_up <> (CASE \
                       WHEN restored_at IS NOT NULL THEN 'restored' \
                       WHEN (SELECT status FROM risk_cases WHERE id = case_id) = 'approved' THEN 'confirmed' \
                       WHEN (SELECT status FROM risk_cases WHERE id = case_id) = 'rejected' THEN 'ended' \
                       ELSE 'frozen' END) ORDER BY case_id"
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?)
            }

            pub async fn set_claim_followed_up(pool: &Pool<$database>, case_id: &str, followed_up: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE stolen_account_claims SET followed_up = $1 WHERE case_id = $2")
                    .bind(followed_up)
                    .bind(case_id)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            /// Records the re-verification of a confirmed claim's customer, removes the block
            /// list entries the case added and logs the step, in one transaction. The removed
            /// entries, or `None` when the claim was restored before.
            pub async fn restore_claim(
                pool: &Pool<$database>,
                case_id: &str,
                log: &CaseLogRow,
            ) -> Result<Option<Vec<ListEntryRow>>, StoreError> {
                let mut transaction = pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE stolen_account_claims SET restored_at = $1, restored_by = $2, \
                     followed_up = 'restoring' WHERE case_id = $3 AND restored_at IS NULL",
                )
                .bind(log.at)
                .bind(&log.actor)
                .bind(case_id)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
                if updated != 1 {
                    transaction.rollback().await?;
                    return Ok(None);
                }
                let source = format!("case {case_id}");
                let sql = format!("{LIST_COLUMNS} WHERE source = $1 AND kind = 'block' AND removed_at IS NULL");
                let removed: Vec<ListEntryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&source)
                    .fetch_all(&mut *transaction)
                    .await?;
                sqlx::query(
                    "UPDATE risk_list_entries SET removed_at = $1, removed_by = $2 \
                     WHERE source = $3 AND kind = 'block' AND removed_at IS NULL",
                )
                .bind(log.at)
                .bind(&log.actor)
                .bind(&source)
                .execute(&mut *transaction)
                .await?;
                insert_log_in(&mut transaction, log).await?;
                transaction.commit().await?;
                Ok(Some(removed))
            }

            /// Moves a case from `expected_status` to its new state, with a log line; `false`
            /// when the case was not in `expected_status` (someone else moved it first).
            pub async fn update_case(
                pool: &Pool<$database>,
                case: &CaseRow,
                expected_status: &str,
                log: &CaseLogRow,
                entry: Option<&ListEntryRow>,
                assignee_key: Option<&str>,
                publications: &[PublicationRow],
            ) -> Result<bool, StoreError> {
                let mut transaction = pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE risk_cases SET status = $1, assignee = $2, updated_at = $3, \
                     assignee_key = COALESCE($6, assignee_key) WHERE id = $4 AND status = $5",
                )
                .bind(&case.status)
                .bind(&case.assignee)
                .bind(case.updated_at)
                .bind(&case.id)
                .bind(expected_status)
                .bind(assignee_key)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
                if updated != 1 {
                    transaction.rollback().await?;
                    return Ok(false);
                }
                insert_log_in(&mut transaction, log).await?;
                if let Some(entry) = entry {
                    insert_list_entry_in(&mut transaction, entry).await?;
                }
                for publication in publications {
                    sqlx::query(
                        "INSERT INTO consortium_publications (id, case_id, kind, identifier, \
                         risk_type, severity, expires_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (case_id, kind, identifier) DO NOTHING",
                    )
                    .bind(&publication.id)
                    .bind(&publication.case_id)
                    .bind(&publication.kind)
                    .bind(&publication.identifier)
                    .bind(&publication.risk_type)
                    .bind(publication.severity)
                    .bind(publication.expires_at)
                    .bind(publication.created_at)
                    .execute(&mut *transaction)
                    .await?;
                }
                transaction.commit().await?;
                Ok(true)
            }

            /// Stores an event's identifiers; an identifier stored already for the event is
            /// kept (a retried decision stores nothing twice).
            pub async fn insert_consortium_identifiers(
                pool: &Pool<$database>,
                rows: &[ConsortiumIdentifierRow],
            ) -> Result<(), StoreError> {
                let mut transaction = pool.begin().await?;
                for row in rows {
                    sqlx::query(
                        "INSERT INTO consortium_identifiers (event_id, customer, at, kind, \
                         fingerprint, sealed, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (event_id, kind) DO NOTHING",
                    )
                    .bind(&row.event_id)
                    .bind(&row.customer)
                    .bind(row.at)
                    .bind(&row.kind)
                    .bind(&row.fingerprint)
                    .bind(&row.sealed)
                    .bind(row.expires_at)
                    .execute(&mut *transaction)
                    .await?;
                }
                transaction.commit().await?;
                Ok(())
            }

            /// A customer's stored identifiers, oldest event first (at most `limit`).
            pub async fn customer_consortium_identifiers(
                pool: &Pool<$database>,
                customer: &str,
                limit: i64,
            ) -> Result<Vec<ConsortiumIdentifierRow>, StoreError> {
                let sql = format!("{IDENTIFIER_COLUMNS} WHERE customer = $1 ORDER BY at, event_id, kind LIMIT $2");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).bind(limit).fetch_all(pool).await?)
            }

            /// The stored identifiers of one event.
            pub async fn event_consortium_identifiers(
                pool: &Pool<$database>,
                event_id: &str,
            ) -> Result<Vec<ConsortiumIdentifierRow>, StoreError> {
                let sql = format!("{IDENTIFIER_COLUMNS} WHERE event_id = $1 ORDER BY kind");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(event_id).fetch_all(pool).await?)
            }

            /// The latest stored row of an identifier, by kind and fingerprint.
            pub async fn consortium_identifier(
                pool: &Pool<$database>,
                kind: &str,
                fingerprint: &str,
            ) -> Result<Option<ConsortiumIdentifierRow>, StoreError> {
                let sql = format!("{IDENTIFIER_COLUMNS} WHERE kind = $1 AND fingerprint = $2 ORDER BY at DESC LIMIT 1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind).bind(fingerprint).fetch_optional(pool).await?)
            }

            /// Deletes the identifiers whose retention ended before `now` (Unix seconds).
            pub async fn delete_expired_consortium_identifiers(pool: &Pool<$database>, now: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM consortium_identifiers WHERE expires_at < $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected())
            }

            /// Publications not yet published or refused, oldest first.
            pub async fn pending_publications(pool: &Pool<$database>, limit: i64) -> Result<Vec<PublicationRow>, StoreError> {
                let sql = format!("{PUBLICATION_COLUMNS} WHERE status = 'pending' ORDER BY created_at, id LIMIT $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?)
            }

            /// The publications of case `case_id`, in the order they were written.
            pub async fn case_publications(pool: &Pool<$database>, case_id: &str) -> Result<Vec<PublicationRow>, StoreError> {
                let sql = format!("{PUBLICATION_COLUMNS} WHERE case_id = $1 ORDER BY created_at, id");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_all(pool).await?)
            }

            /// Stores the signed request of a pending publication before it is sent; false
            /// when the row already has one (or is no longer pending).
            pub async fn sign_publication(
                pool: &Pool<$database>,
                id: &str,
                request: Option<&str>,
                salt: Option<&str>,
                search_from: Option<i64>,
                expected: Option<&str>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE consortium_publications SET request = $1, salt = $2, search_from = $3 \
                     WHERE id = $4 AND status = 'pending' AND request IS NOT DISTINCT FROM $5",
                )
                .bind(request)
                .bind(salt)
                .bind(search_from)
                .bind(id)
                .bind(expected)
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            /// A failed attempt: counted, with its error.
            pub async fn publication_attempt_failed(pool: &Pool<$database>, id: &str, error: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE consortium_publications SET attempts = attempts + 1, last_error = $1 WHERE id = $2")
                    .bind(error)
                    .bind(id)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            /// A publication published (`record_index`) or refused for good (`None`, with
            /// `error`), with the line of its case's trail, in one transaction; false when
            /// it was no longer pending.
            pub async fn finish_publication(
                pool: &Pool<$database>,
                id: &str,
                record_index: Option<i64>,
                at: i64,
                error: Option<&str>,
                log: &CaseLogRow,
            ) -> Result<bool, StoreError> {
                let mut transaction = pool.begin().await?;
                let status = if record_index.is_some() { "published" } else { "refused" };
                let done = sqlx::query(
                    "UPDATE consortium_publications SET status = $1, record_index = $2, \
                     published_at = $3, last_error = COALESCE($4, last_error), attempts = attempts + 1 \
                     WHERE id = $5 AND status = 'pending'",
                )
                .bind(status)
                .bind(record_index)
                .bind(record_index.map(|_| at))
                .bind(error)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
                if done.rows_affected() != 1 {
                    transaction.rollback().await?;
                    return Ok(false);
                }
                insert_log_in(&mut transaction, log).await?;
                transaction.commit().await?;
                Ok(true)
            }

            pub async fn add_case_note(pool: &Pool<$database>, log: &CaseLogRow) -> Result<(), StoreError> {
                let mut transaction = pool.begin().await?;
                insert_log_in(&mut transaction, log).await?;
                transaction.commit().await?;
                Ok(())
            }

            pub async fn case(pool: &Pool<$database>, id: &str) -> Result<Option<CaseRow>, StoreError> {
                let sql = format!("{CASE_COLUMNS} WHERE id = $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
            }

            pub async fn case_assignee_key(pool: &Pool<$database>, id: &str) -> Result<Option<String>, StoreError> {
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT assignee_key FROM risk_cases WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?;
                Ok(row.and_then(|(key,)| key))
            }

            pub async fn cases(pool: &Pool<$database>, status: &str, limit: i64) -> Result<Vec<CaseRow>, StoreError> {
                let sql = format!("{CASE_COLUMNS} WHERE status = $1 ORDER BY priority, created_at, id LIMIT $2");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(status).bind(limit).fetch_all(pool).await?)
            }

            pub async fn case_queue(pool: &Pool<$database>, queue: &CaseQueue) -> Result<Vec<CaseRow>, StoreError> {
                // A NULL parameter leaves its condition out.
                let order = queue.order();
                let sql = format!(
                    "{CASE_COLUMNS} WHERE status = $1 AND ($2 IS NULL OR kind = $2) \
                     AND ($3 IS NULL OR assignee_key = $3) \
                     {order} LIMIT $4 OFFSET $5"
                );
                // Fixed column list and order columns; the filters are bound parameters.
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&queue.status)
                    .bind(&queue.kind)
                    .bind(&queue.assignee_key)
                    .bind(queue.limit)
                    .bind(queue.offset)
                    .fetch_all(pool)
                    .await?)
            }

            pub async fn customer_cases(
                pool: &Pool<$database>,
                customer: &str,
                limit: i64,
            ) -> Result<Vec<CaseRow>, StoreError> {
                let sql = format!("{CASE_COLUMNS} WHERE customer = $1 ORDER BY created_at DESC, id LIMIT $2");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).bind(limit).fetch_all(pool).await?)
            }

            pub async fn case_log(pool: &Pool<$database>, case_id: &str) -> Result<Vec<CaseLogRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, case_id, at, actor, action, note FROM risk_case_log WHERE case_id = $1 ORDER BY at, id",
                )
                .bind(case_id)
                .fetch_all(pool)
                .await?)
            }

            pub async fn insert_list_entry(pool: &Pool<$database>, entry: &ListEntryRow) -> Result<(), StoreError> {
                let mut transaction = pool.begin().await?;
                insert_list_entry_in(&mut transaction, entry).await?;
                transaction.commit().await?;
                Ok(())
            }

            async fn insert_list_entry_in(
                transaction: &mut sqlx::Transaction<'_, $database>,
                entry: &ListEntryRow,
            ) -> Result<(), StoreError> {
                // The entry replaces a live one of the same kind, field and value, as in the
                // engine: that one is marked removed by this addition.
                sqlx::query(
                    "UPDATE risk_list_entries SET removed_at = $1, removed_by = $2 \
                     WHERE kind = $3 AND field = $4 AND value = $5 AND removed_at IS NULL",
                )
                .bind(entry.added_at)
                .bind(&entry.added_by)
                .bind(&entry.kind)
                .bind(&entry.field)
                .bind(&entry.value)
                .execute(&mut **transaction)
                .await?;
                sqlx::query(
                    "INSERT INTO risk_list_entries (id, kind, field, value, reason, source, added_at, added_by, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&entry.id)
                .bind(&entry.kind)
                .bind(&entry.field)
                .bind(&entry.value)
                .bind(&entry.reason)
                .bind(&entry.source)
                .bind(entry.added_at)
                .bind(&entry.added_by)
                .bind(entry.expires_at)
                .execute(&mut **transaction)
                .await?;
                Ok(())
            }

            pub async fn remove_list_entry(
                pool: &Pool<$database>,
                id: &str,
                at: i64,
                by: &str,
            ) -> Result<Option<ListEntryRow>, StoreError> {
                let sql = format!("{LIST_COLUMNS} WHERE id = $1 AND removed_at IS NULL");
                let entry: Option<ListEntryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
                if entry.is_some() {
                    sqlx::query("UPDATE risk_list_entries SET removed_at = $1, removed_by = $2 WHERE id = $3")
                        .bind(at)
                        .bind(by)
                        .bind(id)
                        .execute(pool)
                        .await?;
                }
                Ok(entry)
            }

            pub async fn live_list_entries(
                pool: &Pool<$database>,
                now: i64,
            ) -> Result<Vec<ListEntryRow>, StoreError> {
                let sql = format!(
                    "{LIST_COLUMNS} WHERE removed_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $1) ORDER BY added_at, id"
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(pool).await?)
            }

            pub async fn customer_blocked(
                pool: &Pool<$database>,
                customer: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM risk_list_entries WHERE kind = 'block' \
                     AND field = 'customer' AND value = $1 AND removed_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(customer)
                .bind(now)
                .fetch_one(pool)
                .await?;
                Ok(count > 0)
            }
        }
    };
}

risk_sql!(sqlite, sqlx::Sqlite);
risk_sql!(postgres, sqlx::Postgres);

macro_rules! on_pool {
    ($database:expr, $function:ident ( $($argument:expr),* )) => {
        match $database {
            Database::Sqlite(pool) => sqlite::$function(pool, $($argument),*).await,
            Database::Postgres(pool) => postgres::$function(pool, $($argument),*).await,
        }
    };
}

/// The risk tables of a database.
#[derive(Debug, Clone)]
pub struct RiskStore {
    database: Database,
}

impl RiskStore {
    /// The database it stores in.
    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub async fn rule_sets(&self) -> Result<Vec<(i64, String)>, StoreError> {
        on_pool!(&self.database, rule_sets())
    }

    pub async fn insert_rule_set(
        &self,
        version: i64,
        source: &str,
        at: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, insert_rule_set(version, source, at, by))
    }

    pub async fn active_version(&self) -> Result<Option<i64>, StoreError> {
        on_pool!(&self.database, active_version())
    }

    pub async fn insert_activation(
        &self,
        version: i64,
        at: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(&self.database, insert_activation(&id, version, at, by))
    }

    pub async fn insert_activation_request(
        &self,
        request: &ActivationRequestRow,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, insert_activation_request(request))
    }

    pub async fn activation_request(
        &self,
        id: &str,
    ) -> Result<Option<ActivationRequestRow>, StoreError> {
        on_pool!(&self.database, activation_request(id))
    }

    /// The latest `limit` requests, newest first.
    pub async fn activation_requests(
        &self,
        limit: i64,
    ) -> Result<Vec<ActivationRequestRow>, StoreError> {
        on_pool!(&self.database, activation_requests(limit))
    }

    /// Stores the decision on a pending request (`decided` carries it), with the activation
    /// it makes when approved, in one transaction; false when the request was no longer
    /// pending, or an approval came from the requesting key.
    pub async fn decide_activation_request(
        &self,
        decided: &ActivationRequestRow,
    ) -> Result<bool, StoreError> {
        let activation_id =
            (decided.status == "approved").then(|| uuid::Uuid::now_v7().to_string());
        on_pool!(
            &self.database,
            decide_activation_request(decided, activation_id.as_deref())
        )
    }

    pub async fn last_sequence(&self) -> Result<i64, StoreError> {
        on_pool!(&self.database, last_sequence())
    }

    pub async fn events_since(&self, at: i64) -> Result<Vec<EventRow>, StoreError> {
        on_pool!(&self.database, events_since(at))
    }

    pub async fn event(&self, sequence: i64) -> Result<Option<EventRow>, StoreError> {
        on_pool!(&self.database, event(sequence))
    }

    /// The first stored event with this client id, if any.
    pub async fn event_by_id(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        on_pool!(&self.database, event_by_id(event_id))
    }

    /// The case (review or hold delivery) the decision on event `sequence` opened, if any.
    pub async fn event_case(&self, sequence: i64) -> Result<Option<String>, StoreError> {
        on_pool!(&self.database, event_case(sequence))
    }

    pub async fn customer_events(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        on_pool!(&self.database, customer_events(customer, limit))
    }

    /// Stores events with their decisions, and the cases they open, in one transaction.
    pub async fn insert_events(&self, items: &[DecisionRows]) -> Result<(), StoreError> {
        on_pool!(&self.database, insert_events(items))
    }

    /// Stores a stolen-account case with its claim, in one transaction.
    pub async fn insert_claim(
        &self,
        case: &CaseRow,
        log: &CaseLogRow,
        claim: &ClaimRow,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, insert_claim(case, log, claim))
    }

    /// The claim of case `case_id`, if it is a stolen-account case made with one.
    pub async fn claim(&self, case_id: &str) -> Result<Option<ClaimRow>, StoreError> {
        on_pool!(&self.database, claim(case_id))
    }

    /// Claims whose customer's credit lines have not yet followed the case (a crash between
    /// the case's move and the credit steps leaves such a claim).
    pub async fn claims_to_follow_up(&self) -> Result<Vec<ClaimRow>, StoreError> {
        on_pool!(&self.database, claims_to_follow_up())
    }

    /// Records how far the credit lines followed claim `case_id`.
    pub async fn set_claim_followed_up(
        &self,
        case_id: &str,
        followed_up: &str,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, set_claim_followed_up(case_id, followed_up))
    }

    /// Records the customer's re-verification after claim `case_id`: the case's block list
    /// entries are removed (kept for the audit trail) and `log` is added, in one
    /// transaction. The removed entries; `None` when the claim was restored before.
    pub async fn restore_claim(
        &self,
        case_id: &str,
        log: &CaseLogRow,
    ) -> Result<Option<Vec<ListEntryRow>>, StoreError> {
        on_pool!(&self.database, restore_claim(case_id, log))
    }

    pub async fn insert_case(&self, case: &CaseRow, log: &CaseLogRow) -> Result<(), StoreError> {
        on_pool!(&self.database, insert_case(case, log))
    }

    pub async fn update_case(
        &self,
        case: &CaseRow,
        expected_status: &str,
        log: &CaseLogRow,
    ) -> Result<bool, StoreError> {
        on_pool!(
            &self.database,
            update_case(case, expected_status, log, None, None, &[])
        )
    }

    /// Moves a case like `update_case` and stores `entry` (a confirmed stolen account's
    /// block) in the same transaction: both or neither. `assignee_key`, when given, records
    /// the id of the API key that now holds the case (the owner of a claim).
    pub async fn update_case_with_entry(
        &self,
        case: &CaseRow,
        expected_status: &str,
        log: &CaseLogRow,
        entry: Option<&ListEntryRow>,
        assignee_key: Option<&str>,
        publications: &[PublicationRow],
    ) -> Result<bool, StoreError> {
        on_pool!(
            &self.database,
            update_case(
                case,
                expected_status,
                log,
                entry,
                assignee_key,
                publications
            )
        )
    }

    /// Stores an event's identifiers kept for the consortium (kept if already stored).
    pub async fn insert_consortium_identifiers(
        &self,
        rows: &[ConsortiumIdentifierRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        on_pool!(&self.database, insert_consortium_identifiers(rows))
    }

    /// A customer's identifiers kept for the consortium, oldest event first.
    pub async fn customer_consortium_identifiers(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<ConsortiumIdentifierRow>, StoreError> {
        on_pool!(
            &self.database,
            customer_consortium_identifiers(customer, limit)
        )
    }

    /// One event's identifiers kept for the consortium.
    pub async fn event_consortium_identifiers(
        &self,
        event_id: &str,
    ) -> Result<Vec<ConsortiumIdentifierRow>, StoreError> {
        on_pool!(&self.database, event_consortium_identifiers(event_id))
    }

    /// The latest kept row of an identifier, by kind and fingerprint.
    pub async fn consortium_identifier(
        &self,
        kind: &str,
        fingerprint: &str,
    ) -> Result<Option<ConsortiumIdentifierRow>, StoreError> {
        on_pool!(&self.database, consortium_identifier(kind, fingerprint))
    }

    /// Deletes the identifiers whose retention ended before `now` (Unix seconds).
    pub async fn delete_expired_consortium_identifiers(&self, now: i64) -> Result<u64, StoreError> {
        on_pool!(&self.database, delete_expired_consortium_identifiers(now))
    }

    /// Publications to the consortium log not yet published or refused, oldest first.
    pub async fn pending_publications(
        &self,
        limit: i64,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        on_pool!(&self.database, pending_publications(limit))
    }

    /// The publications of case `case_id`.
    pub async fn case_publications(
        &self,
        case_id: &str,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        on_pool!(&self.database, case_publications(case_id))
    }

    /// Replaces a pending publication's signed request (`expected`: the one it holds), so
    /// that it is stored before it is sent; false when another replaced it first.
    pub async fn sign_publication(
        &self,
        id: &str,
        request: Option<&str>,
        salt: Option<&str>,
        search_from: Option<i64>,
        expected: Option<&str>,
    ) -> Result<bool, StoreError> {
        on_pool!(
            &self.database,
            sign_publication(id, request, salt, search_from, expected)
        )
    }

    pub async fn publication_attempt_failed(
        &self,
        id: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, publication_attempt_failed(id, error))
    }

    /// Marks a publication published (`record_index`) or refused (`None`, `error`) with
    /// its case's trail line, in one transaction; false when it was no longer pending.
    pub async fn finish_publication(
        &self,
        id: &str,
        record_index: Option<i64>,
        at: i64,
        error: Option<&str>,
        log: &CaseLogRow,
    ) -> Result<bool, StoreError> {
        on_pool!(
            &self.database,
            finish_publication(id, record_index, at, error, log)
        )
    }

    /// The id of the API key that claimed case `id`; `None` for a case never claimed, or
    /// claimed before key ids were recorded (its owner is then known only by name).
    pub async fn case_assignee_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        on_pool!(&self.database, case_assignee_key(id))
    }

    pub async fn add_case_note(&self, log: &CaseLogRow) -> Result<(), StoreError> {
        on_pool!(&self.database, add_case_note(log))
    }

    pub async fn case(&self, id: &str) -> Result<Option<CaseRow>, StoreError> {
        on_pool!(&self.database, case(id))
    }

    pub async fn cases(&self, status: &str, limit: i64) -> Result<Vec<CaseRow>, StoreError> {
        on_pool!(&self.database, cases(status, limit))
    }

    /// One page of the queue: the cases of one status (and kind, and claimed by one key,
    /// when given), stolen-account claims first, then held deliveries, then reviews, oldest
    /// first within each.
    pub async fn case_queue(&self, queue: &CaseQueue) -> Result<Vec<CaseRow>, StoreError> {
        on_pool!(&self.database, case_queue(queue))
    }

    /// The cases of `customer`, newest first, at most `limit`.
    pub async fn customer_cases(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        on_pool!(&self.database, customer_cases(customer, limit))
    }

    /// Events of customers other than `customer` that carry one of `identifiers`, newest
    /// first, at most `limit`, looked for among the latest `window` events (by sequence):
    /// the evidence package's linked cases. The bound keeps an export's cost fixed however
    /// long the event history grows.
    pub async fn linked_events(
        &self,
        customer: &str,
        identifiers: &SharedIdentifiers,
        window: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        const RECENT: &str = "SELECT sequence, event_id, customer, at, body, action, version, \
            decision, decided_at FROM (SELECT * FROM risk_events ORDER BY sequence DESC LIMIT $1) \
            AS recent WHERE customer <> $2 AND ";
        match &self.database {
            Database::Sqlite(pool) => {
                let sql = format!(
                    "{RECENT}(json_extract(body, '$.device') IN (SELECT value FROM json_each($3)) \
                     OR json_extract(body, '$.card') IN (SELECT value FROM json_each($4)) \
                     OR json_extract(body, '$.address') IN (SELECT value FROM json_each($5))) \
                     ORDER BY sequence DESC LIMIT $6"
                );
                let json = |values: &[String]| {
                    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string())
                };
                // Fixed text; the identifiers are bound parameters.
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(window)
                    .bind(customer)
                    .bind(json(&identifiers.devices))
                    .bind(json(&identifiers.cards))
                    .bind(json(&identifiers.addresses))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?)
            }
            Database::Postgres(pool) => {
                let sql = format!(
                    "{RECENT}((body::jsonb ->> 'device') = ANY($3) \
                     OR (body::jsonb ->> 'card') = ANY($4) \
                     OR (body::jsonb ->> 'address') = ANY($5)) \
                     ORDER BY sequence DESC LIMIT $6"
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(window)
                    .bind(customer)
                    .bind(&identifiers.devices)
                    .bind(&identifiers.cards)
                    .bind(&identifiers.addresses)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?)
            }
        }
    }

    pub async fn case_log(&self, case_id: &str) -> Result<Vec<CaseLogRow>, StoreError> {
        on_pool!(&self.database, case_log(case_id))
    }

    /// Stores a live list entry; a live entry of the same kind, field and value is marked
    /// removed (at `entry.added_at`, by `entry.added_by`) in the same transaction.
    pub async fn insert_list_entry(&self, entry: &ListEntryRow) -> Result<(), StoreError> {
        on_pool!(&self.database, insert_list_entry(entry))
    }

    /// Marks a live entry removed (it stays for the audit trail) and returns it.
    pub async fn remove_list_entry(
        &self,
        id: &str,
        at: i64,
        by: &str,
    ) -> Result<Option<ListEntryRow>, StoreError> {
        on_pool!(&self.database, remove_list_entry(id, at, by))
    }

    /// The list entries in force at `now` (microseconds): not removed, and without expiry or
    /// expiring after `now`, as the engine applies them.
    pub async fn live_list_entries(&self, now: i64) -> Result<Vec<ListEntryRow>, StoreError> {
        on_pool!(&self.database, live_list_entries(now))
    }

    /// Whether `customer` is on the block list now (a confirmed stolen account, a fraud).
    pub async fn customer_blocked(&self, customer: &str, now: i64) -> Result<bool, StoreError> {
        on_pool!(&self.database, customer_blocked(customer, now))
    }
}
