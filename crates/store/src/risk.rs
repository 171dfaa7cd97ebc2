//! Storage of the risk engine: rule set versions and activations, every event with its
//! decision in decision order, list entries, and the case queue with its audit trail
//! ([`cases`]), stolen-account claims ([`claims`]) and what confirmed cases publish to the
//! consortium log ([`publications`]). The engine itself is in memory; on start the service
//! rebuilds it from these tables.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;

/// Keeps one identifier of a risk event for the consortium on `$executor` (a pool or a
/// transaction); one kept already for the event and kind stays (a retry keeps it once).
macro_rules! insert_identifier {
    ($executor:expr, $row:expr) => {{
        let row: &ConsortiumIdentifierRow = $row;
        sqlx::query(
            "INSERT INTO consortium_identifiers (event_id, customer, at, kind, fingerprint, \
             sealed, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (event_id, kind) DO NOTHING",
        )
        .bind(&row.event_id)
        .bind(&row.customer)
        .bind(row.at)
        .bind(&row.kind)
        .bind(&row.fingerprint)
        .bind(&row.sealed)
        .bind(row.expires_at)
        .execute($executor)
        .await?;
    }};
}

pub mod cases;
pub mod claims;
pub mod identifiers;
pub mod member_checkpoints;
pub mod publications;

pub use cases::{CaseLogRow, CaseQueue, CaseRow};
pub use claims::ClaimRow;
pub use identifiers::ConsortiumIdentifierRow;
pub use publications::PublicationRow;

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

/// A decision to store: the event row, the case it opens, the alerts it raises and the
/// identifiers of the event kept for the consortium, all in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRows {
    pub event: EventRow,
    pub case: Option<(CaseRow, CaseLogRow)>,
    pub alerts: Vec<AnomalyAlertRow>,
    pub identifiers: Vec<ConsortiumIdentifierRow>,
}

impl DecisionRows {
    /// A decision alone: no case, no alert, no identifier kept.
    pub fn event(event: EventRow) -> Self {
        DecisionRows {
            event,
            case: None,
            alerts: Vec::new(),
            identifiers: Vec::new(),
        }
    }
}

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

/// Writes a line of a case's audit trail on `$executor` (a transaction).
macro_rules! insert_log {
    ($executor:expr, $log:expr) => {{
        let log: &CaseLogRow = $log;
        sqlx::query(
            "INSERT INTO risk_case_log (id, case_id, at, actor, action, note) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&log.id)
        .bind(&log.case_id)
        .bind(log.at)
        .bind(&log.actor)
        .bind(&log.action)
        .bind(&log.note)
        .execute($executor)
        .await?;
    }};
}
pub(crate) use insert_log;

/// Writes a new case and the first line of its trail on `$executor` (a transaction).
macro_rules! insert_case {
    ($executor:expr, $case:expr, $log:expr) => {{
        let case: &CaseRow = $case;
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
        .execute($executor)
        .await?;
        insert_log!($executor, $log);
    }};
}
pub(crate) use insert_case;

/// Writes a live list entry on `$executor` (a transaction).
macro_rules! insert_list_entry {
    ($executor:expr, $entry:expr) => {{
        let entry: &ListEntryRow = $entry;
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
        .execute($executor)
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
        .execute($executor)
        .await?;
    }};
}
pub(crate) use insert_list_entry;

/// Raises an anomaly alert on `$executor` (a transaction): one collections task per credit
/// account of the customer that is not closed.
macro_rules! insert_alert {
    ($executor:expr, $alert:expr) => {{
        let alert: &AnomalyAlertRow = $alert;
        let accounts: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM credit_accounts WHERE customer_id = $1 ORDER BY id",
        )
        .bind(&alert.customer)
        .fetch_all($executor)
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
            .execute($executor)
            .await?;
        }
    }};
}

const EVENT_COLUMNS: &str = "SELECT sequence, event_id, customer, at, body, action, \
    version, decision, decided_at FROM risk_events";
pub(crate) const LIST_COLUMNS: &str = "SELECT id, kind, field, value, reason, source, added_at, \
    added_by, expires_at FROM risk_list_entries";
const REQUEST_COLUMNS: &str = "SELECT id, version, note, requested_at, requested_by, \
    requested_by_key, status, decided_at, decided_by, decided_by_key \
    FROM risk_activation_requests";

/// The risk tables of a database. Its methods are in this file (rule sets and their
/// activation, events and decisions, lists) and in [`cases`], [`claims`] and
/// [`publications`]; each statement is written once and runs on either backend.
#[derive(Debug, Clone)]
pub struct RiskStore {
    database: Database,
}

/// Rule set versions and their activation under four eyes.
impl RiskStore {
    /// The database it stores in.
    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub async fn rule_sets(&self) -> Result<Vec<(i64, String)>, StoreError> {
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as("SELECT version, source FROM risk_rule_sets ORDER BY version")
                .fetch_all(pool)
                .await?)
        })
    }

    pub async fn insert_rule_set(
        &self,
        version: i64,
        source: &str,
        at: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
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
        })
    }

    pub async fn active_version(&self) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT version FROM risk_activations ORDER BY activated_at DESC, id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(version,)| version))
    }

    pub async fn insert_activation(
        &self,
        version: i64,
        at: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO risk_activations (id, version, activated_at, activated_by) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(version)
            .bind(at)
            .bind(by)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn insert_activation_request(
        &self,
        request: &ActivationRequestRow,
    ) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
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
        })
    }

    pub async fn activation_request(
        &self,
        id: &str,
    ) -> Result<Option<ActivationRequestRow>, StoreError> {
        let sql = format!("{REQUEST_COLUMNS} WHERE id = $1");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
        })
    }

    /// The latest `limit` requests, newest first.
    pub async fn activation_requests(
        &self,
        limit: i64,
    ) -> Result<Vec<ActivationRequestRow>, StoreError> {
        let sql = format!("{REQUEST_COLUMNS} ORDER BY requested_at DESC, id DESC LIMIT $1");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?)
        })
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
        on_pool!(&self.database, pool => {
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
            if let Some(activation_id) = &activation_id {
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
        })
    }
}

/// Events with their decisions, in decision order.
impl RiskStore {
    pub async fn last_sequence(&self) -> Result<i64, StoreError> {
        let (last,): (Option<i64>,) = on_pool!(&self.database, pool => {
            sqlx::query_as("SELECT MAX(sequence) FROM risk_events")
                .fetch_one(pool)
                .await?
        });
        Ok(last.unwrap_or(0))
    }

    pub async fn events_since(&self, at: i64) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!("{EVENT_COLUMNS} WHERE at >= $1 ORDER BY sequence");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(at).fetch_all(pool).await?)
        })
    }

    pub async fn event(&self, sequence: i64) -> Result<Option<EventRow>, StoreError> {
        let sql = format!("{EVENT_COLUMNS} WHERE sequence = $1");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(sequence).fetch_optional(pool).await?)
        })
    }

    /// The first stored event with this client id, if any.
    pub async fn event_by_id(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        let sql = format!("{EVENT_COLUMNS} WHERE event_id = $1 ORDER BY sequence LIMIT 1");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(event_id).fetch_optional(pool).await?)
        })
    }

    /// The case (review or hold delivery) the decision on event `sequence` opened, if any.
    pub async fn event_case(&self, sequence: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT id FROM risk_cases WHERE event_sequence = $1 \
                 AND kind IN ('review', 'hold_delivery') ORDER BY created_at, id LIMIT 1",
            )
            .bind(sequence)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(id,)| id))
    }

    pub async fn customer_events(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!("{EVENT_COLUMNS} WHERE customer = $1 ORDER BY sequence DESC LIMIT $2");
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(customer).bind(limit).fetch_all(pool).await?)
        })
    }

    /// Stores events with their decisions, the cases they open, the alerts they raise and
    /// their identifiers kept for the consortium, in one transaction: a decision is never on
    /// disk without its identifiers, nor its identifiers without it.
    pub async fn insert_events(&self, items: &[DecisionRows]) -> Result<(), StoreError> {
        let _turn = self.database.write_turn().await;
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            for DecisionRows { event, case, alerts, identifiers } in items {
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
                    insert_case!(&mut *transaction, case, log);
                }
                for alert in alerts {
                    insert_alert!(&mut *transaction, alert);
                }
                for row in identifiers {
                    insert_identifier!(&mut *transaction, row);
                }
            }
            transaction.commit().await?;
            Ok(())
        })
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
}

/// The block, allow and watch lists.
impl RiskStore {
    /// Stores a live list entry; a live entry of the same kind, field and value is marked
    /// removed (at `entry.added_at`, by `entry.added_by`) in the same transaction.
    pub async fn insert_list_entry(&self, entry: &ListEntryRow) -> Result<(), StoreError> {
        on_pool!(&self.database, pool => {
            let mut transaction = pool.begin().await?;
            insert_list_entry!(&mut *transaction, entry);
            transaction.commit().await?;
            Ok(())
        })
    }

    /// Marks a live entry removed (it stays for the audit trail) and returns it.
    pub async fn remove_list_entry(
        &self,
        id: &str,
        at: i64,
        by: &str,
    ) -> Result<Option<ListEntryRow>, StoreError> {
        let sql = format!("{LIST_COLUMNS} WHERE id = $1 AND removed_at IS NULL");
        on_pool!(&self.database, pool => {
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
        })
    }

    /// The list entries in force at `now` (microseconds): not removed, and without expiry or
    /// expiring after `now`, as the engine applies them.
    pub async fn live_list_entries(&self, now: i64) -> Result<Vec<ListEntryRow>, StoreError> {
        let sql = format!(
            "{LIST_COLUMNS} WHERE removed_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1) ORDER BY added_at, id"
        );
        on_pool!(&self.database, pool => {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(pool).await?)
        })
    }

    /// Whether `customer` is on the block list now (a confirmed stolen account, a fraud).
    pub async fn customer_blocked(&self, customer: &str, now: i64) -> Result<bool, StoreError> {
        let (count,): (i64,) = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT COUNT(*) FROM risk_list_entries WHERE kind = 'block' \
                 AND field = 'customer' AND value = $1 AND removed_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(customer)
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(count > 0)
    }
}
