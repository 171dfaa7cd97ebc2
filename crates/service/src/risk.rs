//! The risk service: one in-memory `RiskEngine` behind a lock, rebuilt from storage on
//! start (rule set versions in order, the active version, live list entries, the last 90
//! days of events), with every decision stored before it is answered. The engine's hash
//! seed is drawn at random at every start.
//!
//! Its use cases with rules of their own:
//!
//! - **Each event id is decided once** ([`RiskService::decide`]): a retry of a stored event,
//!   or of one whose storage is under way or failed in this process, answers the first
//!   decision without feeding the features again; another event under the same id is
//!   refused.
//! - **Four eyes on rule sets** ([`RiskService::upload_rule_set`],
//!   [`RiskService::request_activation`], [`RiskService::decide_activation`]): one key asks
//!   for a version to go live, a different key approves it; the stored and the live version
//!   change together under the engine lock.
//! - **Anomalies reach collections** ([`AnomalyAlerts`]): a decision whose enforced reasons
//!   include one that signals trouble on a credit account (a takeover pattern, a bust-out
//!   pattern) raises the collections queue's anomaly alert task on each of the customer's
//!   credit accounts, in the transaction that stores the decision: stored once with it, never
//!   without it.
//! - **The case queue** ([`RiskService::cases`], [`RiskService::move_case`]): an analyst
//!   claims an open case and only that key approves or rejects it; approving a stolen-account
//!   claim blocks the customer in the same transaction.

pub mod anomaly_alerts;
pub mod backtest;
pub mod cases;
pub mod sealed_text;

pub use anomaly_alerts::{AnomalyAlerts, ANOMALY_ALERT_PRIORITY, DEFAULT_ANOMALY_REASONS};
pub use cases::{
    case_priority, note_context, summary_context, thief_devices, thief_identifiers, CaseAction,
    CASES_PER_PAGE_MAX, CASE_KINDS, CASE_STATUSES,
};

use crate::caller::Caller;
use crate::consortium::member_client::{with_consortium_lookups, EventIdentifiers, MemberClient};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tally_core::Clock;
use tally_risk::{
    Action, Activation, EngineConfig, EntityField, Event, ListEntry, ListKind, RiskEngine,
    RiskError, RuleSet, DEFAULT_RULES,
};
use tally_store::risk::{
    ActivationRequestRow, ConsortiumIdentifierRow, DecisionRows, EventRow, ListEntryRow, RiskStore,
};
use tally_store::sealed_texts::TextColumn;
use tally_store::{Database, StoreError};
use tokio::sync::{mpsc, watch, Mutex};

/// How far ahead of the service clock an event's time may be (client clock skew); a later
/// event is refused (`risk_event_in_future`), since it would move its keys' windows past
/// every real event.
pub const EVENT_AHEAD_MAX: SignedDuration = SignedDuration::from_secs(5 * 60);

/// How much history rebuilds the engine's velocity features on start.
pub const HISTORY_DAYS: i64 = 90;

/// The risk engine of one Tally process and its storage.
pub struct RiskService {
    pub store: RiskStore,
    pub clock: Arc<dyn Clock>,
    /// Shared with the maintenance task (see [`RiskService::open_with_maintenance`]).
    pub state: Arc<Mutex<RiskState>>,
    /// Decisions on their way to storage, in decision order (group commit).
    pub decisions: mpsc::Sender<PendingDecision>,
    /// How often stored decisions were forgotten from `RiskState::in_flight` (bumped under
    /// the lock). A request looks its event id up in storage before taking the lock; if
    /// this did not move meanwhile, an id absent from `in_flight` was not decided.
    pub in_flight_prunes: std::sync::atomic::AtomicU64,
    /// Which decisions raise an anomaly alert in the collections queue.
    pub anomaly_alerts: AnomalyAlerts,
    /// The consortium log this lender is a member of: decisions look its records up and
    /// confirmed fraud is published to it; `None` when not configured.
    pub consortium: Option<Arc<MemberClient>>,
    /// The personal-data keys that seal what analysts type (claim descriptions, case notes);
    /// `None` without keys, when that text is stored as written.
    pub privacy: Option<Arc<tally_privacy::Privacy>>,
}

/// Whether a queued decision is on disk: `None` while it waits, then the outcome.
pub type StoreOutcome = Option<Result<(), String>>;

/// A decision waiting to be stored, with the case it opens, the alerts it raises and the
/// identifiers it keeps, and who waits for it.
pub struct PendingDecision {
    pub rows: DecisionRows,
    pub stored: watch::Sender<StoreOutcome>,
}

/// A decision made in this process whose storage is under way or failed: a retry of the
/// same event id answers it (waiting for the disk, or storing it again after a failure)
/// instead of deciding and counting the event a second time.
pub struct InFlight {
    /// The event as stored (`Event::to_json`), to tell a retry from a reused id.
    pub body: String,
    /// What is stored, in one transaction: the event and its decision, the case, the
    /// alerts, the identifiers kept for the consortium.
    pub rows: DecisionRows,
    pub stored: watch::Receiver<StoreOutcome>,
}

/// Fewest decisions in flight before the stored ones are forgotten.
const IN_FLIGHT_PRUNE_MIN: usize = 1024;

/// How often (real time) the service forgets feature keys with nothing left in their
/// windows and expired list entries, by the service clock.
pub const MAINTENANCE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Every `every`, forgets from the engine the feature keys with nothing left in their
/// windows (plus the lateness allowance) and the list entries expired at the service
/// clock's time, under the lock. Stops when the service is dropped.
async fn maintain(
    state: std::sync::Weak<Mutex<RiskState>>,
    clock: Arc<dyn Clock>,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        let mut state = state.lock().await;
        let now = clock.now();
        state.engine.prune(now.as_millisecond());
        state.engine.lists_mut().remove_expired(now);
    }
}

/// Most decisions stored in one transaction.
const DECISIONS_PER_COMMIT_MAX: usize = 512;
/// Most decisions waiting for storage before deciding waits for room.
const DECISIONS_WAITING_MAX: usize = 4096;

/// Stores decisions in the order they were made, many per transaction, and tells each
/// waiting request when its decision is on disk.
async fn store_decisions(store: RiskStore, mut receiver: mpsc::Receiver<PendingDecision>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < DECISIONS_PER_COMMIT_MAX {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let mut items = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for pending in batch {
            items.push(pending.rows);
            waiting.push(pending.stored);
        }
        let result = store.insert_events(&items).await.map_err(|error| {
            tracing::error!(%error, "storing risk decisions failed");
            error.to_string()
        });
        for stored in waiting {
            stored.send_replace(Some(result.clone()));
        }
    }
}

impl std::fmt::Debug for RiskService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RiskService")
            .finish_non_exhaustive()
    }
}

/// What the lock guards: the engine, the sequence number of the next event and the
/// decisions in flight by event id.
pub struct RiskState {
    pub engine: RiskEngine,
    pub next_sequence: i64,
    pub in_flight: HashMap<String, InFlight>,
    /// Size of `in_flight` at which the stored decisions are forgotten (amortised O(1)).
    in_flight_prune_at: usize,
}

impl RiskState {
    /// Remembers a queued decision by its event id, forgetting stored ones now and then;
    /// true when it forgot some (see `RiskService::in_flight_prunes`).
    pub fn remember(&mut self, event_id: String, in_flight: InFlight) -> bool {
        let prune = self.in_flight.len() >= self.in_flight_prune_at;
        if prune {
            self.in_flight
                .retain(|_, waiting| !matches!(*waiting.stored.borrow(), Some(Ok(()))));
            self.in_flight_prune_at = IN_FLIGHT_PRUNE_MIN.max(2 * self.in_flight.len());
        }
        self.in_flight.insert(event_id, in_flight);
        prune
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RiskServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored risk data: {0}")]
    Risk(#[from] RiskError),
    #[error("stored risk data is inconsistent: {0}")]
    Inconsistent(String),
    /// The task that stores decisions has stopped.
    #[error("the risk decision store has stopped")]
    Stopped,
}

/// Why the risk service refused a request or could not serve it; [`RiskRequestError::code`]
/// is its stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RiskRequestError {
    /// The risk rules refused it: an invalid event or rule set, an unknown version.
    #[error(transparent)]
    Refused(#[from] RiskError),
    /// Dated past the service clock plus [`EVENT_AHEAD_MAX`]: it would move its keys'
    /// windows past every real event.
    #[error(
        "the event is dated {at}, later than the service clock allows ({latest_allowed}: now \
         plus {minutes} minutes of clock skew)",
        minutes = EVENT_AHEAD_MAX.as_secs() / 60
    )]
    EventInFuture {
        at: Timestamp,
        latest_allowed: Timestamp,
    },
    #[error("event id {0:?} was already decided for a different event; nothing was changed")]
    EventIdReused(String),
    /// The decision was made (and counted in the features) but could not be stored.
    #[error(
        "the decision could not be stored; it was counted in the velocity features once, \
         and a retry with the same event id stores it"
    )]
    DecisionNotStored,
    #[error("no activation request {0}")]
    ActivationRequestNotFound(String),
    /// `status` is the request's status as read before the decision.
    #[error("activation request {id} is already {status}")]
    ActivationRequestDecided { id: String, status: String },
    #[error("an activation is approved by a key other than the one that requested it")]
    ApproverIsRequester,
    /// A queue asked for with an unknown status or kind, or a page out of range.
    #[error("{0}")]
    InvalidCaseQuery(String),
    #[error("case {0} does not exist")]
    CaseNotFound(String),
    #[error("no such case action")]
    UnknownCaseAction,
    #[error("a note must not be empty")]
    EmptyNote,
    /// `status` is the case's status when it was read; `expected` the one `action` needs.
    #[error("case {id} is {status}, {action} needs it {expected}")]
    CaseWrongStatus {
        id: String,
        status: String,
        action: &'static str,
        expected: &'static str,
    },
    /// The case left the status the action needs between its read and its move.
    #[error("case {0} moved meanwhile")]
    CaseMovedMeanwhile(String),
    #[error("case {id} is claimed by {assignee:?}")]
    CaseClaimedByAnother {
        id: String,
        assignee: Option<String>,
    },
    /// The service's own failure (storage, inconsistent stored data): not the request's.
    #[error(transparent)]
    Service(#[from] RiskServiceError),
}

impl RiskRequestError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RiskRequestError::Refused(error) => error.code(),
            RiskRequestError::EventInFuture { .. } => "risk_event_in_future",
            RiskRequestError::EventIdReused(_) => "risk_event_id_reused",
            RiskRequestError::DecisionNotStored => "storage_unavailable",
            RiskRequestError::ActivationRequestNotFound(_) => "risk_activation_request_not_found",
            RiskRequestError::ActivationRequestDecided { .. } => "risk_activation_request_decided",
            RiskRequestError::ApproverIsRequester => "risk_approver_is_requester",
            RiskRequestError::InvalidCaseQuery(_) => "invalid_query",
            RiskRequestError::CaseNotFound(_) => "risk_case_not_found",
            RiskRequestError::UnknownCaseAction => "not_found",
            RiskRequestError::EmptyNote => "invalid_request",
            RiskRequestError::CaseWrongStatus { .. } | RiskRequestError::CaseMovedMeanwhile(_) => {
                "risk_case_wrong_status"
            }
            RiskRequestError::CaseClaimedByAnother { .. } => "risk_case_claimed_by_another",
            RiskRequestError::Service(_) => "internal",
        }
    }
}

impl From<StoreError> for RiskRequestError {
    fn from(error: StoreError) -> Self {
        RiskRequestError::Service(RiskServiceError::Store(error))
    }
}

/// A decision on an event, as answered: its sequence number, the decision with its action,
/// reasons and features, and the case it opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub sequence: i64,
    pub decision: serde_json::Value,
    pub case_id: Option<String>,
}

/// A rule set version stored and loaded, and its activation request when one was asked for.
#[derive(Debug, Clone)]
pub struct UploadedRuleSet {
    pub version: u32,
    pub activation_request: Option<ActivationRequestRow>,
}

/// An activation request decided, and the activation when it was approved.
#[derive(Debug, Clone)]
pub struct DecidedActivation {
    pub request: ActivationRequestRow,
    pub activation: Option<Activation>,
}

pub fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub fn timestamp(value: i64) -> Timestamp {
    Timestamp::from_microsecond(value).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn list_entry(row: &ListEntryRow) -> Result<ListEntry, RiskServiceError> {
    let kind = match row.kind.as_str() {
        "block" => ListKind::Block,
        "allow" => ListKind::Allow,
        "watch" => ListKind::Watch,
        other => {
            return Err(RiskServiceError::Inconsistent(format!(
                "list kind {other:?}"
            )))
        }
    };
    let field = EntityField::parse(&row.field)
        .ok_or_else(|| RiskServiceError::Inconsistent(format!("list field {:?}", row.field)))?;
    Ok(ListEntry {
        kind,
        field,
        value: row.value.clone(),
        reason: row.reason.clone(),
        source: row.source.clone(),
        added_at: timestamp(row.added_at),
        expires_at: row.expires_at.map(timestamp),
    })
}

impl RiskService {
    /// Rebuilds the engine from storage; a database without rule sets gets the default pack
    /// as version 1, active. Old feature keys and expired list entries are forgotten every
    /// [`MAINTENANCE_EVERY`].
    pub async fn open(
        database: &Database,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RiskServiceError> {
        Self::open_with_maintenance(database, clock, MAINTENANCE_EVERY).await
    }

    /// Like [`RiskService::open`], forgetting old feature keys and expired list entries
    /// every `every` (real time; the service clock decides what is old).
    pub async fn open_with_maintenance(
        database: &Database,
        clock: Arc<dyn Clock>,
        every: std::time::Duration,
    ) -> Result<Self, RiskServiceError> {
        let store = RiskStore::new(database.clone());
        let now = clock.now();
        let sets = store.rule_sets().await?;
        // A secret hash seed per start, so that nobody can pick colliding entity values; the
        // memory is rebuilt from stored events below, so the seed need not outlive the
        // process, and it changes hashing, never a decision.
        let config = EngineConfig {
            hash_seed: random_hash_seed(),
            ..EngineConfig::default()
        };
        let mut engine = match sets.split_first() {
            None => {
                let engine = RiskEngine::from_rule_set_text_with(DEFAULT_RULES, config)?;
                let version = i64::from(engine.active_version());
                store
                    .insert_rule_set(version, DEFAULT_RULES, micros(now), "tally default pack")
                    .await?;
                store
                    .insert_activation(version, micros(now), "tally default pack")
                    .await?;
                engine
            }
            Some(((first_version, first_source), rest)) => {
                let mut engine = RiskEngine::from_rule_set_text_with(first_source, config)?;
                check_version(i64::from(engine.active_version()), *first_version)?;
                for (version, source) in rest {
                    check_version(i64::from(engine.load_rule_set(source)?), *version)?;
                }
                if let Some(active) = store.active_version().await? {
                    let active = u32::try_from(active)
                        .map_err(|_| RiskServiceError::Inconsistent(format!("version {active}")))?;
                    engine.activate(active)?;
                }
                engine
            }
        };
        for row in store.live_list_entries(micros(now)).await? {
            engine.lists_mut().add(list_entry(&row)?)?;
        }
        let since = now - SignedDuration::from_hours(24 * HISTORY_DAYS);
        let rows = store.events_since(micros(since)).await?;
        let mut history = Vec::with_capacity(rows.len());
        for row in &rows {
            history.push(Event::from_json(&row.body)?);
        }
        engine.rebuild(history.iter());
        let next_sequence = store.last_sequence().await? + 1;
        let (decisions, receiver) = mpsc::channel(DECISIONS_WAITING_MAX);
        tokio::spawn(store_decisions(store.clone(), receiver));
        let state = Arc::new(Mutex::new(RiskState {
            engine,
            next_sequence,
            in_flight: HashMap::new(),
            in_flight_prune_at: IN_FLIGHT_PRUNE_MIN,
        }));
        tokio::spawn(maintain(Arc::downgrade(&state), clock.clone(), every));
        Ok(Self {
            decisions,
            in_flight_prunes: std::sync::atomic::AtomicU64::new(0),
            store,
            clock,
            state,
            anomaly_alerts: AnomalyAlerts::default(),
            consortium: None,
            privacy: None,
        })
    }

    /// The same service as a member of a consortium log: each decision looks the event's
    /// device up in it, and confirmed fraud is queued for publication to it.
    pub fn with_consortium(mut self, member: Option<Arc<MemberClient>>) -> Self {
        self.consortium = member;
        self
    }

    /// The same service, sealing the free text analysts type with `privacy`'s keys.
    pub fn with_privacy(mut self, privacy: Option<Arc<tally_privacy::Privacy>>) -> Self {
        self.privacy = privacy;
        self
    }

    /// The same service, raising anomaly alerts as `alerts` says.
    pub fn with_anomaly_alerts(mut self, alerts: AnomalyAlerts) -> Self {
        self.anomaly_alerts = alerts;
        self
    }

    /// The events to replay into the engine's features, in decision order: the stored
    /// history (the last `HISTORY_DAYS` days, as on start) and the decisions still on
    /// their way to storage. Replayed after an activation that starts features cold, they
    /// read as if the version had always been live. Call it under the lock.
    pub async fn history(&self, state: &RiskState) -> Result<Vec<Event>, RiskServiceError> {
        let since = self.clock.now() - SignedDuration::from_hours(24 * HISTORY_DAYS);
        let rows = self.store.events_since(micros(since)).await?;
        let mut bodies: Vec<(i64, &str)> = rows
            .iter()
            .map(|row| (row.sequence, row.body.as_str()))
            .collect();
        let stored: std::collections::HashSet<i64> = rows.iter().map(|row| row.sequence).collect();
        // Decided (and counted) but not yet read back from storage: queued, or failed and
        // waiting for a retry.
        bodies.extend(
            state
                .in_flight
                .values()
                .filter(|waiting| {
                    !stored.contains(&waiting.rows.event.sequence)
                        && waiting.rows.event.at >= micros(since)
                })
                .map(|waiting| {
                    (
                        waiting.rows.event.sequence,
                        waiting.rows.event.body.as_str(),
                    )
                }),
        );
        bodies.sort_unstable_by_key(|(sequence, _)| *sequence);
        let mut history = Vec::with_capacity(bodies.len());
        for (_, body) in bodies {
            history.push(
                Event::from_json(body)
                    .map_err(|error| RiskServiceError::Inconsistent(error.to_string()))?,
            );
        }
        Ok(history)
    }

    /// Queues a decision for storage (in decision order: call it under the lock) and
    /// returns what tells when it is on disk.
    pub async fn queue(
        &self,
        rows: DecisionRows,
    ) -> Result<watch::Receiver<StoreOutcome>, RiskServiceError> {
        let (stored, on_disk) = watch::channel(None);
        self.decisions
            .send(PendingDecision { rows, stored })
            .await
            .map_err(|_| RiskServiceError::Stopped)?;
        Ok(on_disk)
    }

    pub fn event_row(
        sequence: i64,
        event: &Event,
        decision_json: String,
        action: &str,
        version: u32,
        at: Timestamp,
    ) -> EventRow {
        EventRow {
            sequence,
            event_id: event.id.clone(),
            customer: event.customer.clone(),
            at: micros(event.at),
            body: event.to_json(),
            action: action.to_string(),
            version: i64::from(version),
            decision: decision_json,
            decided_at: micros(at),
        }
    }
}

/// The use cases of the engine: deciding events, and rule set versions under four eyes.
impl RiskService {
    /// Decides `event`: features, lists and the active rule set decide; the event and the
    /// decision are stored (with a case when the action opens one) before this returns. The
    /// same event again (same id, same body) answers the first decision and changes nothing;
    /// another event under its id is [`RiskRequestError::EventIdReused`]. A decision that
    /// could not be stored was counted in the features once, and a retry stores it.
    pub async fn decide(&self, event: &Event) -> Result<Decided, RiskRequestError> {
        self.decide_with_identifiers(event, &EventIdentifiers::default())
            .await
    }

    /// As [`RiskService::decide`], for an event that came with identifiers another member
    /// of the consortium log can match (its card number, delivery address, receiving
    /// phone): they are looked up with the device, and kept sealed for a publication if the
    /// case is confirmed, in the transaction that stores the decision (a decision is never
    /// stored without them, nor they without it; a retry keeps nothing twice).
    pub async fn decide_with_identifiers(
        &self,
        event: &Event,
        identifiers: &EventIdentifiers,
    ) -> Result<Decided, RiskRequestError> {
        event.validate()?;
        let latest_allowed = self.clock.now() + EVENT_AHEAD_MAX;
        if event.at > latest_allowed {
            return Err(RiskRequestError::EventInFuture {
                at: event.at,
                latest_allowed,
            });
        }
        // Sealed before the engine's lock is taken: encryption is no work for under it.
        let kept: Vec<ConsortiumIdentifierRow> = match &self.consortium {
            Some(member) if !identifiers.is_empty() => {
                member.keep(event, identifiers).map_err(|error| {
                    RiskServiceError::Inconsistent(format!("sealing identifiers: {error}"))
                })?
            }
            _ => Vec::new(),
        };
        // The consortium's records about the event's device, waited for at most the
        // member's lookup timeout and outside the engine's lock; what the lookup learnt (a
        // hit, none, a timeout, a spent quota) goes on the decision.
        let consortium = match &self.consortium {
            Some(member) => Some(member.hits(event.device.as_deref(), identifiers).await),
            None => None,
        };
        let body_json = event.to_json();
        // A retry of an event stored earlier (before a restart, or forgotten in memory) is
        // looked up before the lock, so that the lock is never held across a database read.
        let prunes = self.in_flight_prunes.load(Ordering::SeqCst);
        let mut stored = self.store.event_by_id(&event.id).await?;
        let mut state = self.state.lock().await;
        if stored.is_none()
            && !state.in_flight.contains_key(&event.id)
            && self.in_flight_prunes.load(Ordering::SeqCst) != prunes
        {
            // Decisions were forgotten from memory meanwhile: one of them may be this event.
            stored = self.store.event_by_id(&event.id).await?;
        }
        // A retry of an event decided in this process: wait for its storage (or store it
        // again after a failure) and answer the same decision; the features are not fed
        // again.
        if let Some(in_flight) = state.in_flight.get_mut(&event.id) {
            if in_flight.body != body_json {
                return Err(RiskRequestError::EventIdReused(event.id.clone()));
            }
            let failed = matches!(*in_flight.stored.borrow(), Some(Err(_)));
            if failed {
                in_flight.stored = self.queue(in_flight.rows.clone()).await?;
            }
            let mut on_disk = in_flight.stored.clone();
            let sequence = in_flight.rows.event.sequence;
            let decision_json = in_flight.rows.event.decision.clone();
            let case_id = in_flight
                .rows
                .case
                .as_ref()
                .map(|(case, _)| case.id.clone());
            drop(state);
            wait_on_disk(&mut on_disk).await?;
            return decided(sequence, &decision_json, case_id);
        }
        if let Some(row) = stored {
            drop(state);
            if row.body != body_json {
                return Err(RiskRequestError::EventIdReused(event.id.clone()));
            }
            let case_id = self.store.event_case(row.sequence).await?;
            return decided(row.sequence, &row.decision, case_id);
        }
        let decision = match &consortium {
            Some((hits, _)) => state.engine.decide_with_hits(event, hits)?,
            None => state.engine.decide(event)?,
        };
        let sequence = state.next_sequence;
        let now = self.clock.now();
        let mut decision_json = decision.to_json();
        if let Some((_, lookups)) = &consortium {
            with_consortium_lookups(&mut decision_json, lookups);
        }
        let row = RiskService::event_row(
            sequence,
            event,
            decision_json.clone(),
            decision.action.as_str(),
            decision.rule_set_version,
            now,
        );
        let case = decision.action.opens_case().then(|| {
            let kind = if decision.action == Action::HoldDelivery {
                "hold_delivery"
            } else {
                "review"
            };
            let summary = format!(
                "{} on {} event {}: {}",
                decision.action.as_str(),
                event.kind.as_str(),
                event.id,
                decision.reasons.join(", ")
            );
            let case = RiskService::new_case(
                kind,
                case_priority(kind),
                &event.customer,
                Some(sequence),
                summary,
                now,
            );
            let log = RiskService::log_line(
                &case.id,
                now,
                "risk engine",
                "opened",
                &format!("decision on event sequence {sequence}"),
            );
            (case, log)
        });
        let case_id = case.as_ref().map(|(case, _)| case.id.clone());
        let alerts = self.anomaly_alerts.raised(event, &decision.reasons, now);
        let rows = DecisionRows {
            event: row,
            case,
            alerts,
            identifiers: kept,
        };
        let mut on_disk = self.queue(rows.clone()).await?;
        state.next_sequence += 1;
        if state.remember(
            event.id.clone(),
            InFlight {
                body: body_json,
                rows,
                stored: on_disk.clone(),
            },
        ) {
            self.in_flight_prunes.fetch_add(1, Ordering::SeqCst);
        }
        drop(state);
        wait_on_disk(&mut on_disk).await?;
        decided(sequence, &decision_json, case_id)
    }

    /// Stores and loads a new rule set version, checked first: one that does not compile is
    /// refused with the rule id, line and message, and the live version keeps running. With
    /// `activate`, `caller` also asks for it to go live (another key must approve).
    pub async fn upload_rule_set(
        &self,
        source: &str,
        activate: bool,
        caller: &Caller,
    ) -> Result<UploadedRuleSet, RiskRequestError> {
        // Checked, then stored, then applied: a refusal at any step leaves the engine as the
        // database has it.
        let rule_set = RuleSet::parse(source)?;
        let mut state = self.state.lock().await;
        let version = state.engine.next_version();
        let now = self.clock.now();
        self.store
            .insert_rule_set(i64::from(version), source, micros(now), &caller.name)
            .await?;
        let loaded = state.engine.load_parsed(rule_set);
        if loaded != version {
            return Err(RiskServiceError::Inconsistent(format!(
                "rule set stored as version {version} loaded as version {loaded}"
            ))
            .into());
        }
        drop(state);
        let activation_request = if activate {
            let request = activation_request(caller, version, "requested at upload", now);
            self.store.insert_activation_request(&request).await?;
            Some(request)
        } else {
            None
        };
        Ok(UploadedRuleSet {
            version,
            activation_request,
        })
    }

    /// `caller` asks for stored version `version` to go live (an older version: the
    /// rollback). Nothing changes until a different key approves the request.
    pub async fn request_activation(
        &self,
        version: u32,
        note: &str,
        caller: &Caller,
    ) -> Result<ActivationRequestRow, RiskRequestError> {
        self.state.lock().await.engine.check_version(version)?;
        let mut request = activation_request(caller, version, note, self.clock.now());
        // The note is free text: sealed where stored, answered as written.
        request.note = self.seal_column(TextColumn::ActivationNote, &request.id, note)?;
        self.store.insert_activation_request(&request).await?;
        request.note = note.to_string();
        Ok(request)
    }

    /// Approves (`approve`) or rejects a pending activation request. Approval needs a key
    /// other than the requester's (by key id: names are not unique) and makes the version
    /// live; features defined the same way in the live version keep their state, the others
    /// are filled from the stored history before this returns. Rejection (or withdrawal by
    /// the requester) changes nothing live.
    pub async fn decide_activation(
        &self,
        id: &str,
        approve: bool,
        caller: &Caller,
    ) -> Result<DecidedActivation, RiskRequestError> {
        // Under the engine lock, so that the stored and the live version cannot part.
        let mut state = self.state.lock().await;
        let request = self
            .store
            .activation_request(id)
            .await?
            .ok_or_else(|| RiskRequestError::ActivationRequestNotFound(id.to_string()))?;
        let decided_error = || RiskRequestError::ActivationRequestDecided {
            id: id.to_string(),
            status: request.status.clone(),
        };
        if request.status != "pending" {
            return Err(decided_error());
        }
        if approve && request.requested_by_key == caller.key_id {
            return Err(RiskRequestError::ApproverIsRequester);
        }
        let version = u32::try_from(request.version).map_err(|_| {
            RiskServiceError::Inconsistent(format!(
                "activation request {id} names version {}",
                request.version
            ))
        })?;
        // The history that warms cold features is read before anything changes.
        let history = if approve && state.engine.activation_starts_cold(version)? {
            Some(self.history(&state).await?)
        } else {
            None
        };
        let decided = ActivationRequestRow {
            status: if approve { "approved" } else { "rejected" }.into(),
            decided_at: Some(micros(self.clock.now())),
            decided_by: Some(caller.name.clone()),
            decided_by_key: Some(caller.key_id.clone()),
            ..request.clone()
        };
        if !self.store.decide_activation_request(&decided).await? {
            return Err(decided_error());
        }
        let activation = if approve {
            let activation = state.engine.activate(version)?;
            if let Some(history) = history {
                state.engine.warm(&activation, history.iter());
            }
            Some(activation)
        } else {
            None
        };
        Ok(DecidedActivation {
            request: self.opened_activation_request(decided),
            activation,
        })
    }
}

/// A pending request by `caller` for `version` to go live.
fn activation_request(
    caller: &Caller,
    version: u32,
    note: &str,
    now: Timestamp,
) -> ActivationRequestRow {
    ActivationRequestRow {
        id: uuid::Uuid::now_v7().to_string(),
        version: i64::from(version),
        note: note.to_string(),
        requested_at: micros(now),
        requested_by: caller.name.clone(),
        requested_by_key: caller.key_id.clone(),
        status: "pending".into(),
        decided_at: None,
        decided_by: None,
        decided_by_key: None,
    }
}

/// Waits until a queued decision is on disk.
async fn wait_on_disk(on_disk: &mut watch::Receiver<StoreOutcome>) -> Result<(), RiskRequestError> {
    let outcome = on_disk
        .wait_for(Option::is_some)
        .await
        .map_err(|_| RiskServiceError::Stopped)?
        .clone();
    match outcome {
        Some(Ok(())) => Ok(()),
        _ => Err(RiskRequestError::DecisionNotStored),
    }
}

/// The answer of a decision from its stored parts.
fn decided(
    sequence: i64,
    decision_json: &str,
    case_id: Option<String>,
) -> Result<Decided, RiskRequestError> {
    let decision = serde_json::from_str(decision_json).map_err(|error| {
        RiskServiceError::Inconsistent(format!("decision of event sequence {sequence}: {error}"))
    })?;
    Ok(Decided {
        sequence,
        decision,
        case_id,
    })
}

fn check_version(engine: i64, stored: i64) -> Result<(), RiskServiceError> {
    if engine == stored {
        Ok(())
    } else {
        Err(RiskServiceError::Inconsistent(format!(
            "rule set stored as version {stored} loads as version {engine}"
        )))
    }
}

/// A secret seed for the engine's hash of entity values, from the operating system's random
/// source. The service draws one at every start: it rebuilds the engine's memory from stored
/// events, so the seed is never stored.
fn random_hash_seed() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::{Amount, Currency};
    use tally_risk::EventKind;
    use tally_store::risk::AnomalyAlertRow;

    /// An alert is raised for each anomaly reason of a customer's event, dated on the credit
    /// service's business date, and for nothing else.
    #[test]
    fn anomaly_reasons_raise_alerts_dated_in_the_credit_time_zone() {
        let alerts = AnomalyAlerts {
            time_zone: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
            ..AnomalyAlerts::default()
        };
        // 20:00 UTC on 1 May is 04:00 on 2 May in Beijing.
        let now: Timestamp = "2026-05-01T20:00:00Z".parse().unwrap();
        let mut event = Event::new("e1", EventKind::Transaction, now, "c1");
        event.amount = Some(Amount::new(1_000_000, Currency::CNY));
        let reasons: Vec<Arc<str>> = vec!["WATCH_LISTED".into(), "BUST_OUT".into()];
        let raised = alerts.raised(&event, &reasons, now);
        assert_eq!(
            raised,
            vec![AnomalyAlertRow {
                customer: "c1".into(),
                event_id: "e1".into(),
                reason: "BUST_OUT".into(),
                business_date: "2026-05-02".into(),
                amount_minor: Some(1_000_000),
                currency: Some("CNY".into()),
                priority: ANOMALY_ALERT_PRIORITY,
                created_at: micros(now),
            }]
        );
        assert!(alerts
            .raised(&event, &["WATCH_LISTED".into()], now)
            .is_empty());
        let anonymous = Event::new("e2", EventKind::Transaction, now, "");
        assert!(alerts.raised(&anonymous, &reasons, now).is_empty());
        let none = AnomalyAlerts {
            reasons: Vec::new(),
            ..alerts
        };
        assert!(none.raised(&event, &reasons, now).is_empty());
    }
}
