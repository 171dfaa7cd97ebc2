//! The consortium log operator as a service: the [`Operator`] on a thread of its own over
//! the SQL store, with group commit.
//!
//! [`ConsortiumLog`] runs the operator on a dedicated thread that owns its
//! [`SqlLogStore`] (persistence: `tally_store::consortium`): requests queue on a bounded
//! channel, the thread takes everything waiting (up to `batch_size_max`), appends it as
//! one batch (one commit, one disk flush), signs one checkpoint, and only then replies
//! (group commit, as the ledger writer does). Reads that need the tree (proofs, tiles,
//! entries, the replayed state) run as closures on the same thread, after the writes
//! queued before them; the latest signed checkpoint is shared and read without the
//! thread.
//!
//! After a batch the thread stores a signed state snapshot when a tenth of the log (at
//! least 100,000 entries) came since the last, and [`Operator::open`] starts from it,
//! replaying only the entries after it.
//!
//! After each batch (and at start) the thread also stores the signed checkpoint, so that
//! a database can be checked on its own (`tally consortium verify --database`); and on a
//! schedule ([`ConsortiumConfig::integrity_check_interval_seconds`]) the stored log is
//! re-read against the signed tree ([`integrity`]), with an alarm on anything that no
//! longer hashes to it.

mod integrity;
pub mod member_client;
pub mod member_view;

use std::sync::{Arc, RwLock};

use tally_consortium::{
    Action, BlindingKey, Effect, Entry, EntryBody, Error, Genesis, IdentifierOpening, LogStore,
    Operator, QueryAnswer, SignedRequest, SignerKey, UnixSeconds,
};
use tally_core::Clock;
use tally_store::consortium::{log_storage_error, SqlLogStore};
use tally_store::Database;
use tokio::sync::{mpsc, oneshot, watch};

use integrity::Integrity;
pub use integrity::{IntegrityState, IntegrityStatus, INTEGRITY_CHECK_INTERVAL_SECONDS_DEFAULT};

/// Keys and limits of the operator's service.
#[derive(Debug, Clone)]
pub struct ConsortiumConfig {
    /// Signs checkpoints; its name is the log's origin.
    pub signer: SignerKey,
    /// Blinds identifiers.
    pub blinding: BlindingKey,
    /// Founds the log when the store is empty; ignored otherwise.
    pub genesis: Option<Genesis>,
    /// Most requests appended in one batch (one commit).
    pub batch_size_max: usize,
    /// Most requests waiting; further callers wait for room (back-pressure).
    pub queue_length_max: usize,
    /// Seconds between two scheduled checks of the stored log against the signed tree
    /// ([`ConsortiumLog::check_integrity`]); 0 schedules none.
    pub integrity_check_interval_seconds: u64,
}

impl ConsortiumConfig {
    /// A configuration with the default limits.
    pub fn new(signer: SignerKey, blinding: BlindingKey, genesis: Option<Genesis>) -> Self {
        ConsortiumConfig {
            signer,
            blinding,
            genesis,
            batch_size_max: tally_consortium::operator::ENTRY_BATCH_SIZE_MAX,
            queue_length_max: 4 * tally_consortium::operator::ENTRY_BATCH_SIZE_MAX,
            integrity_check_interval_seconds: INTEGRITY_CHECK_INTERVAL_SECONDS_DEFAULT,
        }
    }
}

/// What became of an accepted member request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Logged at `index` with this effect.
    Logged {
        /// Log index of the entry.
        index: u64,
        /// What it did.
        effect: Effect,
    },
    /// A query: logged, with its answer.
    Answered(QueryAnswer),
}

/// The replayed operator, as the reads on its thread see it.
pub type StoredOperator = Operator<SqlLogStore>;

type ReadJob = Box<dyn FnOnce(&StoredOperator) + Send>;

struct RequestJob {
    request: SignedRequest,
    opening: Option<IdentifierOpening>,
    reply: oneshot::Sender<Result<Accepted, Error>>,
}

enum Job {
    Request(Box<RequestJob>),
    Read(ReadJob),
}

/// Handle to the operator thread. Cheap to clone; the thread stops when every handle is
/// dropped.
#[derive(Clone)]
pub struct ConsortiumLog {
    sender: mpsc::Sender<Job>,
    checkpoint: Arc<RwLock<String>>,
    integrity: Arc<Integrity>,
}

impl std::fmt::Debug for ConsortiumLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ConsortiumLog")
            .finish_non_exhaustive()
    }
}

fn stopped() -> Error {
    Error::Storage("the consortium log operator has stopped".into())
}

impl ConsortiumLog {
    /// Starts the operator on a thread of its own over `database` (migrated): founds the
    /// log with the configured genesis when it is empty, else opens it from its signed
    /// snapshot and replays the entries after it (each one's leaf hash, signature and
    /// rules are checked: an edited entry or snapshot stops the start).
    pub async fn start(
        database: &Database,
        clock: Arc<dyn Clock>,
        config: ConsortiumConfig,
    ) -> Result<(Self, std::thread::JoinHandle<()>), Error> {
        let (sender, receiver) = mpsc::channel(config.queue_length_max.max(1));
        let (ready, started) = oneshot::channel();
        let interval_seconds = config.integrity_check_interval_seconds;
        let integrity = Arc::new(Integrity::new(
            database.clone(),
            clock.clone(),
            interval_seconds,
        ));
        let database = database.clone();
        let checkpoint = Arc::new(RwLock::new(String::new()));
        let shared = checkpoint.clone();
        let thread = std::thread::Builder::new()
            .name("consortium-operator".into())
            .spawn(move || {
                let opened = open_operator(&database, &config, &clock);
                match opened {
                    Ok(operator) => {
                        let mut worker = Worker {
                            database,
                            operator,
                            config,
                            clock,
                            checkpoint: shared,
                            checkpoint_to_store: false,
                        };
                        match worker.publish_checkpoint() {
                            Ok(()) => {
                                let _ = ready.send(Ok(()));
                                worker.run(receiver);
                            }
                            Err(error) => {
                                let _ = ready.send(Err(error));
                            }
                        }
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                }
            })
            .map_err(|error| Error::Storage(format!("starting the operator thread: {error}")))?;
        started
            .await
            .map_err(|_| Error::Storage("the operator thread stopped while starting".into()))??;
        let log = ConsortiumLog {
            sender,
            checkpoint,
            integrity,
        };
        if interval_seconds > 0 {
            tokio::spawn(check_on_schedule(
                log.sender.downgrade(),
                log.checkpoint.clone(),
                log.integrity.clone(),
                interval_seconds,
            ));
        }
        Ok((log, thread))
    }

    /// Re-reads every stored entry and tile against the tree the operator signed, at the
    /// size it has now, and records the outcome (an alarm when anything no longer hashes to
    /// the tree or the store cannot be read): what the schedule runs. `Err` only when the
    /// operator has stopped.
    pub async fn check_integrity(&self) -> Result<IntegrityStatus, Error> {
        let (size, root) = self
            .read(|operator| (operator.log().size(), operator.log().root()))
            .await?;
        Ok(self.integrity.check(size, root).await)
    }

    /// The latest check of the stored log.
    pub fn integrity(&self) -> IntegrityStatus {
        self.integrity.status()
    }

    /// Each new check outcome, as it is recorded.
    pub fn integrity_changes(&self) -> watch::Receiver<IntegrityStatus> {
        self.integrity.subscribe()
    }

    /// Logs a signed member request once it is committed to disk. Publications and
    /// queries need the opening of the identifier commitment they sign.
    pub async fn submit(
        &self,
        request: SignedRequest,
        opening: Option<IdentifierOpening>,
    ) -> Result<Accepted, Error> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job::Request(Box::new(RequestJob {
                request,
                opening,
                reply,
            })))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `read` on the operator's thread, after every write queued before it.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&StoredOperator) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |operator| {
            let _ = reply.send(read(operator));
        });
        self.sender
            .send(Job::Read(job))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }

    /// The latest signed checkpoint (C2SP signed note text), signed after the last commit.
    pub fn checkpoint(&self) -> String {
        self.checkpoint
            .read()
            .map(|text| text.clone())
            .unwrap_or_default()
    }
}

/// Checks the stored log every `interval_seconds` while the operator runs. Holds the
/// operator's queue weakly, so that it does not keep the thread alive.
async fn check_on_schedule(
    sender: mpsc::WeakSender<Job>,
    checkpoint: Arc<RwLock<String>>,
    integrity: Arc<Integrity>,
    interval_seconds: u64,
) {
    let period = std::time::Duration::from_secs(interval_seconds);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // A check that ran long is not followed by a burst of checks.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(sender) = sender.upgrade() else {
            return;
        };
        let log = ConsortiumLog {
            sender,
            checkpoint: checkpoint.clone(),
            integrity: integrity.clone(),
        };
        if log.check_integrity().await.is_err() {
            return;
        }
    }
}

fn open_operator(
    database: &Database,
    config: &ConsortiumConfig,
    clock: &Arc<dyn Clock>,
) -> Result<StoredOperator, Error> {
    let store = SqlLogStore::connect(database).map_err(log_storage_error)?;
    if store.tree_size()? == 0 {
        let Some(genesis) = config.genesis.clone() else {
            return Err(Error::refused(
                tally_consortium::Refusal::Genesis,
                "the log is empty and no genesis is configured",
            ));
        };
        Operator::found(
            store,
            config.signer.clone(),
            config.blinding.clone(),
            genesis,
            unix_seconds(clock.as_ref()),
        )
    } else {
        Operator::open(store, config.signer.clone(), config.blinding.clone())
    }
}

fn unix_seconds(clock: &dyn Clock) -> UnixSeconds {
    u64::try_from(clock.now().as_second()).unwrap_or(0)
}

type Reply = oneshot::Sender<Result<Accepted, Error>>;

struct Worker {
    database: Database,
    operator: StoredOperator,
    config: ConsortiumConfig,
    clock: Arc<dyn Clock>,
    checkpoint: Arc<RwLock<String>>,
    /// Whether the published checkpoint is newer than the stored one.
    checkpoint_to_store: bool,
}

impl Worker {
    fn publish_checkpoint(&mut self) -> Result<(), Error> {
        let text = self.operator.checkpoint()?.to_string();
        if let Ok(mut shared) = self.checkpoint.write() {
            *shared = text;
        }
        self.checkpoint_to_store = true;
        Ok(())
    }

    /// Stores the published checkpoint, once the batch's replies are out (it costs a
    /// transaction of its own, and a reply need not wait for it). A failure is logged:
    /// the stored checkpoint then lags, which a check of the database still accepts.
    fn store_checkpoint(&mut self) {
        if !std::mem::take(&mut self.checkpoint_to_store) {
            return;
        }
        let text = self.checkpoint.read().map(|text| text.clone());
        let Ok(text) = text else {
            return;
        };
        let size = self.operator.log().size();
        if let Err(error) = self.operator.log().store().write_checkpoint(size, &text) {
            tracing::warn!(%error, "storing the consortium checkpoint failed");
        }
    }

    fn run(&mut self, mut receiver: mpsc::Receiver<Job>) {
        self.store_checkpoint();
        self.snapshot_if_due();
        while let Some(first) = receiver.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < self.config.batch_size_max {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            // Time never runs backwards within the log: not within a batch, and not
            // across a restart or a reopen (the operator starts from its last entry's
            // time and stamps no entry before it).
            let time = unix_seconds(self.clock.as_ref()).max(self.operator.last_time());
            let mut pending: Vec<(Entry, Reply)> = Vec::new();
            for job in jobs {
                match job {
                    Job::Read(read) => {
                        self.flush(&mut pending);
                        read(&self.operator);
                    }
                    Job::Request(job) => {
                        let RequestJob {
                            request,
                            opening,
                            reply,
                        } = *job;
                        self.take(request, opening, reply, time, &mut pending);
                    }
                }
            }
            self.flush(&mut pending);
            self.store_checkpoint();
            self.snapshot_if_due();
        }
    }

    /// Stores a state snapshot when enough entries came since the last one, after the
    /// batch's replies went out. A failure only costs a longer replay at the next start.
    fn snapshot_if_due(&mut self) {
        if let Err(error) = self.operator.snapshot_if_due() {
            tracing::warn!(%error, "storing the consortium state snapshot failed");
        }
    }

    /// Queues a request's entry for the batch, or answers a query at once (after the
    /// batch so far, whose records it may find).
    fn take(
        &mut self,
        request: SignedRequest,
        opening: Option<IdentifierOpening>,
        reply: Reply,
        time: UnixSeconds,
        pending: &mut Vec<(Entry, Reply)>,
    ) {
        let missing_opening = || {
            Error::refused(
                tally_consortium::Refusal::InvalidField,
                "publications and queries need the identifier and salt that open their commitment",
            )
        };
        match &request.action {
            Action::Query { .. } => {
                self.flush(pending);
                let result = match opening {
                    None => Err(missing_opening()),
                    Some(opening) => self
                        .operator
                        .query(request, &opening, time)
                        .map(Accepted::Answered),
                };
                // A refused query changes nothing; a failed commit leaves the operator
                // ahead of the store, refusing work until it is replayed (as in `flush`).
                let poisoned = self.operator.is_poisoned();
                match &result {
                    Ok(_) => self.after_commit(),
                    Err(error) if poisoned => tracing::error!(
                        %error,
                        "consortium log commit of a query failed; reopening from the store"
                    ),
                    Err(_) => {}
                }
                let _ = reply.send(result);
                if poisoned {
                    self.reopen();
                }
            }
            Action::PublishRecord { identifier, .. } => {
                let blinded = opening
                    .ok_or_else(missing_opening)
                    .and_then(|opening| self.config.blinding.blind_opening(&opening, identifier));
                match blinded {
                    Ok(identifier) => pending.push((
                        Entry {
                            time,
                            body: EntryBody::Publication {
                                request,
                                identifier,
                            },
                        },
                        reply,
                    )),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            _ => pending.push((
                Entry {
                    time,
                    body: EntryBody::Request(request),
                },
                reply,
            )),
        }
    }

    fn flush(&mut self, pending: &mut Vec<(Entry, Reply)>) {
        if pending.is_empty() {
            return;
        }
        let (entries, replies): (Vec<Entry>, Vec<Reply>) =
            std::mem::take(pending).into_iter().unzip();
        match self.operator.append(entries) {
            Ok(results) => {
                self.after_commit();
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply
                        .send(result.map(|(index, effect)| Accepted::Logged { index, effect }));
                }
            }
            Err(error) => {
                tracing::error!(%error, "consortium log commit failed; reopening from the store");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
                self.reopen();
            }
        }
    }

    /// Signs the checkpoint of the log as committed.
    fn after_commit(&mut self) {
        if let Err(error) = self.publish_checkpoint() {
            tracing::error!(%error, "signing the consortium checkpoint failed");
        }
    }

    /// After a failed commit the operator refuses work: replay it from the store.
    fn reopen(&mut self) {
        match open_operator(&self.database, &self.config, &self.clock) {
            Ok(operator) => {
                self.operator = operator;
                self.after_commit();
            }
            Err(error) => {
                tracing::error!(%error, "reopening the consortium log failed; it refuses work");
            }
        }
    }
}
