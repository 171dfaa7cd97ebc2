//! The risk service: one in-memory `RiskEngine` behind a lock, rebuilt from storage on
//! start (rule set versions in order, the active version, live list entries, the last 90
//! days of events), with every decision stored before it is answered. The engine's hash
//! seed is drawn at random at every start.

use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use tally_core::Clock;
use tally_risk::{
    EngineConfig, EntityField, Event, ListEntry, ListKind, RiskEngine, RiskError, DEFAULT_RULES,
};
use tally_store::risk::{CaseLogRow, CaseRow, EventRow, ListEntryRow, RiskStore};
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
}

/// Whether a queued decision is on disk: `None` while it waits, then the outcome.
pub type StoreOutcome = Option<Result<(), String>>;

/// A decision waiting to be stored, with the case it opens, and who waits for it.
pub struct PendingDecision {
    pub event: EventRow,
    pub case: Option<(CaseRow, CaseLogRow)>,
    pub stored: watch::Sender<StoreOutcome>,
}

/// A decision made in this process whose storage is under way or failed: a retry of the
/// same event id answers it (waiting for the disk, or storing it again after a failure)
/// instead of deciding and counting the event a second time.
pub struct InFlight {
    /// The event as stored (`Event::to_json`), to tell a retry from a reused id.
    pub body: String,
    pub event: EventRow,
    pub case: Option<(CaseRow, CaseLogRow)>,
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
            items.push((pending.event, pending.case));
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
        })
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
                    !stored.contains(&waiting.event.sequence) && waiting.event.at >= micros(since)
                })
                .map(|waiting| (waiting.event.sequence, waiting.event.body.as_str())),
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
        event: EventRow,
        case: Option<(CaseRow, CaseLogRow)>,
    ) -> Result<watch::Receiver<StoreOutcome>, RiskServiceError> {
        let (stored, on_disk) = watch::channel(None);
        self.decisions
            .send(PendingDecision {
                event,
                case,
                stored,
            })
            .await
            .map_err(|_| RiskServiceError::Stopped)?;
        Ok(on_disk)
    }

    /// Writes a line of a case's audit trail.
    pub fn log_line(
        case_id: &str,
        at: Timestamp,
        actor: &str,
        action: &str,
        note: &str,
    ) -> CaseLogRow {
        CaseLogRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: case_id.to_string(),
            at: micros(at),
            actor: actor.to_string(),
            action: action.to_string(),
            note: note.to_string(),
        }
    }

    /// A new open case.
    pub fn new_case(
        kind: &str,
        priority: i64,
        customer: &str,
        event_sequence: Option<i64>,
        summary: String,
        at: Timestamp,
    ) -> CaseRow {
        CaseRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.to_string(),
            priority,
            status: "open".to_string(),
            customer: customer.to_string(),
            event_sequence,
            summary,
            assignee: None,
            created_at: micros(at),
            updated_at: micros(at),
        }
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
