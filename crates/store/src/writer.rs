//! The single ledger writer: batches queued writes, applies the ledger rules, and commits
//! each batch in one durable transaction before replying to any of its writers.

use crate::database::Database;
use crate::error::{StoreError, WriteError};
use crate::rows::{micros, HoldRow};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::{ConnectOptions, PgConnection, SqliteConnection};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tally_core::{AccountId, Clock, EntryId, HoldId};
use tally_ledger::working::{NewIds, Working};
use tally_ledger::{Actor, Command, Outcome};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Limits of the writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most writes committed in one transaction.
    pub batch_size_max: usize,
    /// Most writes waiting in the queue; further writers wait for room (back-pressure).
    pub queue_length_max: usize,
    /// How often an idle writer looks for holds past their deadline.
    pub expiry_check_interval: Duration,
    /// The largest amount one entry (per currency) or hold may move, in minor units.
    pub entry_amount_max: i64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size_max: 512,
            queue_length_max: 8192,
            expiry_check_interval: Duration::from_secs(1),
            entry_amount_max: tally_ledger::ENTRY_AMOUNT_MAX_DEFAULT,
        }
    }
}

/// Most expired holds released in one batch; the rest wait for the next one.
const EXPIRED_PER_BATCH_MAX: i64 = 1000;

struct Request {
    actor: Actor,
    key: String,
    command: Command,
    request_hash: String,
    reply: oneshot::Sender<Result<Outcome, WriteError>>,
}

/// Handle to the writer task. Cheap to clone; the task stops when every handle is dropped.
#[derive(Clone, Debug)]
pub struct LedgerWriter {
    sender: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("key", &self.key).finish()
    }
}

pub(crate) enum WriterConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

macro_rules! on_connection {
    ($connection:expr, $function:ident ( $($argument:expr),* )) => {
        match $connection {
            WriterConnection::Sqlite(connection) => {
                crate::backend::sqlite::$function(connection, $($argument),*).await
            }
            WriterConnection::Postgres(connection) => {
                crate::backend::postgres::$function(connection, $($argument),*).await
            }
        }
    };
}

/// The fingerprint of a request, to tell a replay from a different request under one key.
pub fn request_hash(command: &Command) -> String {
    // Commands serialise deterministically: fixed field order, metadata in sorted maps.
    let bytes = serde_json::to_vec(command).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

impl LedgerWriter {
    /// Starts the writer on a thread of its own, with its own connection to `database`.
    ///
    /// The writer does not share the service's runtime: its awaits on the database would
    /// otherwise queue behind every HTTP task between two statements of a batch, and every
    /// write waits for the writer.
    pub async fn start(
        database: &Database,
        clock: Arc<dyn Clock>,
        config: WriterConfig,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let (sender, receiver) = mpsc::channel(config.queue_length_max.max(1));
        let (ready, started) = oneshot::channel();
        let database = database.clone();
        let task = tokio::task::spawn_blocking(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(StoreError::Io(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                match connect(&database).await {
                    Ok(connection) => {
                        let _ = ready.send(Ok(()));
                        let checkpointer = tokio::spawn(checkpoint(database.clone()));
                        run(database, connection, receiver, clock, config).await;
                        checkpointer.abort();
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                }
            });
        });
        started.await.map_err(|_| {
            StoreError::Corrupt("the ledger writer thread stopped while starting".into())
        })??;
        Ok((Self { sender }, task))
    }

    /// Applies `command` under the idempotency key `key` and returns its outcome once it is
    /// committed to disk. The same key with the same command returns the first outcome.
    /// The write is a client's: it cannot move an account a Tally service owns.
    pub async fn submit(&self, key: String, command: Command) -> Result<Outcome, WriteError> {
        self.submit_as(Actor::Client, key, command).await
    }

    /// Applies `command` for `actor` as [`LedgerWriter::submit`] does. Tally's services
    /// submit as [`Actor::Service`]: the accounts they open are theirs, and only they may
    /// move them.
    pub async fn submit_as(
        &self,
        actor: Actor,
        key: String,
        command: Command,
    ) -> Result<Outcome, WriteError> {
        let answer = self.enqueue(actor, key, command).await?;
        Self::outcome(answer).await
    }

    /// Applies `writes` for `actor` in their order, each under its own idempotency key, and
    /// answers each one's outcome as [`LedgerWriter::submit_as`] would, one answer per write
    /// in the same order. The writes are queued together before any answer is awaited, so the
    /// writer commits them in as few durable transactions as its batch size allows, and a
    /// later write sees the earlier ones (a transfer may spend what the one before it
    /// brought). One refused write refuses only itself. Other writers' requests may be
    /// committed between two of them.
    pub async fn submit_batch_as(
        &self,
        actor: Actor,
        writes: Vec<(String, Command)>,
    ) -> Vec<Result<Outcome, WriteError>> {
        let mut answers = Vec::with_capacity(writes.len());
        for (key, command) in writes {
            answers.push(self.enqueue(actor.clone(), key, command).await);
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(match answer {
                Ok(answer) => Self::outcome(answer).await,
                Err(error) => Err(error),
            });
        }
        outcomes
    }

    /// Queues one write and returns where its outcome will arrive.
    async fn enqueue(
        &self,
        actor: Actor,
        key: String,
        command: Command,
    ) -> Result<oneshot::Receiver<Result<Outcome, WriteError>>, WriteError> {
        let (reply, answer) = oneshot::channel();
        let request_hash = request_hash(&command);
        let request = Request {
            actor,
            key,
            command,
            request_hash,
            reply,
        };
        self.sender
            .send(request)
            .await
            .map_err(|_| WriteError::Unavailable("the ledger writer has stopped".into()))?;
        Ok(answer)
    }

    /// Waits for a queued write's outcome.
    async fn outcome(
        answer: oneshot::Receiver<Result<Outcome, WriteError>>,
    ) -> Result<Outcome, WriteError> {
        answer
            .await
            .map_err(|_| WriteError::Unavailable("the ledger writer stopped mid-write".into()))?
    }
}

/// How often the SQLite write-ahead log is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Copies the SQLite write-ahead log back into the database file from a connection of its
/// own, so that the writer's commits never stop to do it (the writer's connection has
/// automatic checkpoints turned off). PASSIVE: it never blocks the writer or readers.
/// PostgreSQL checkpoints by itself.
async fn checkpoint(database: Database) {
    let Database::Sqlite(pool) = database else {
        return;
    };
    loop {
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
        let error = checkpoint_until_failure(&pool).await;
        tracing::warn!(%error, "SQLite checkpoint failed; retrying");
    }
}

/// Opens the checkpoint task's connection, with the pool's settings (a checkpoint syncs
/// the database file before it lets the log be reused, so it needs `synchronous = FULL` too).
pub(crate) async fn connect_checkpointer(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::SqliteConnection, sqlx::Error> {
    pool.connect_options().connect().await
}

async fn checkpoint_until_failure(pool: &sqlx::SqlitePool) -> sqlx::Error {
    let mut connection = match connect_checkpointer(pool).await {
        Ok(connection) => connection,
        Err(error) => return error,
    };
    loop {
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut connection)
            .await
        {
            return error;
        }
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
    }
}

fn truncate_to_microseconds(at: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(at.as_microsecond()).unwrap_or(at)
}

/// Opens the writer's own connection, with the pool's settings, on the writer's runtime.
pub(crate) async fn connect(database: &Database) -> Result<WriterConnection, StoreError> {
    Ok(match database {
        Database::Sqlite(pool) => {
            let mut connection = pool.connect_options().connect().await?;
            // The checkpoint task copies the log back; commits only append to it.
            sqlx::query("PRAGMA wal_autocheckpoint = 0")
                .execute(&mut connection)
                .await?;
            WriterConnection::Sqlite(connection)
        }
        Database::Postgres(pool) => {
            let mut connection = pool.connect_options().connect().await?;
            // Named so that operators can find the writer in pg_stat_activity.
            sqlx::query(
                "SELECT set_config('application_name', 'tally writer ' || current_schema(), false)",
            )
            .execute(&mut connection)
            .await?;
            WriterConnection::Postgres(connection)
        }
    })
}

/// Whether the writer's connection still answers; after a failed batch a dead connection
/// (a restarted database server, a dropped socket) is replaced instead of failing forever.
async fn alive(connection: &mut WriterConnection) -> bool {
    match connection {
        WriterConnection::Sqlite(connection) => {
            sqlx::query("SELECT 1").execute(connection).await.is_ok()
        }
        WriterConnection::Postgres(connection) => {
            sqlx::query("SELECT 1").execute(connection).await.is_ok()
        }
    }
}

/// The writer task's state: its connection, and the accounts it has seen, kept between
/// batches so that a batch reads only the accounts it has not seen before.
struct Writer {
    database: Database,
    connection: WriterConnection,
    accounts: AccountCache,
    /// The largest amount one entry or hold may move, in minor units.
    entry_amount_max: i64,
    /// Earliest deadline of a pending hold, in microseconds: `None` when unknown (at start,
    /// after a failure, after another process wrote), `Some(i64::MAX)` when none is pending.
    /// Holds are swept exactly when one is due, without a query per batch otherwise.
    next_expiry: Option<i64>,
}

/// Accounts as of the writer's last commit. Valid only while no other ledger writer has
/// committed since: each batch moves a counter in the database under the write lock
/// (`writer_epoch`) and empties the cache when it moved by more than its own step, i.e. when
/// another process's writer has written. The counter is the ledger's own: the payment,
/// credit and risk writers commit beside it all the time and never touch the ledger's
/// tables, so their commits leave the cache alone.
#[derive(Default)]
struct AccountCache {
    states: HashMap<AccountId, tally_ledger::AccountState>,
    marker: Option<i64>,
}

/// Most accounts kept between batches; the cache is emptied when it grows past this.
const CACHED_ACCOUNTS_MAX: usize = 200_000;

async fn run(
    database: Database,
    connection: WriterConnection,
    mut receiver: mpsc::Receiver<Request>,
    clock: Arc<dyn Clock>,
    config: WriterConfig,
) {
    let mut writer = Writer {
        database,
        connection,
        accounts: AccountCache::default(),
        entry_amount_max: config.entry_amount_max,
        next_expiry: None,
    };
    let mut last_now = Timestamp::UNIX_EPOCH;
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            received = receiver.recv() => match received {
                Some(request) => batch.push(request),
                None => break,
            },
            _ = tokio::time::sleep(config.expiry_check_interval) => {}
        }
        while batch.len() < config.batch_size_max {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        // Time never runs backwards within the ledger, even if the wall clock does.
        // Stored times have microsecond precision; replies carry exactly what is stored.
        let now = truncate_to_microseconds(clock.now()).max(last_now);
        last_now = now;
        if !writer.process(batch, now).await && !alive(&mut writer.connection).await {
            match connect(&writer.database).await {
                Ok(fresh) => {
                    tracing::warn!("ledger writer reconnected to the database");
                    writer.connection = fresh;
                }
                Err(error) => tracing::error!(%error, "ledger writer cannot reconnect"),
            }
        }
    }
}

impl Writer {
    /// Drops what the writer remembers between batches, after a failure.
    fn forget(&mut self) {
        self.accounts = AccountCache::default();
        self.next_expiry = None;
    }

    /// Applies a batch and replies to its writers. Returns whether the database answered.
    async fn process(&mut self, batch: Vec<Request>, now: Timestamp) -> bool {
        // Held through the rollbacks and retries below: the next writer starts on a free lock.
        let _turn = self.database.write_turn().await;
        match self.apply(&batch, now).await {
            Ok(results) => {
                for (request, result) in batch.into_iter().zip(results) {
                    let _ = request.reply.send(result);
                }
                true
            }
            Err(error) => {
                let _ = on_connection!(&mut self.connection, rollback());
                self.forget();
                if batch.len() <= 1 {
                    tracing::error!(%error, "ledger batch failed");
                    for request in batch {
                        let _ = request
                            .reply
                            .send(Err(WriteError::Unavailable(error.to_string())));
                    }
                    return false;
                }
                // One write may be at fault: retry each alone so the others still succeed.
                tracing::warn!(%error, size = batch.len(), "ledger batch failed; retrying one by one");
                for request in batch {
                    let result = match self.apply(std::slice::from_ref(&request), now).await {
                        Ok(mut results) => results
                            .pop()
                            .unwrap_or_else(|| Err(WriteError::Unavailable("no result".into()))),
                        Err(error) => {
                            let _ = on_connection!(&mut self.connection, rollback());
                            self.forget();
                            tracing::error!(%error, key = %request.key, "ledger write failed");
                            Err(WriteError::Unavailable(error.to_string()))
                        }
                    };
                    let _ = request.reply.send(result);
                }
                false
            }
        }
    }
}

fn new_ids() -> NewIds {
    NewIds {
        account: AccountId(Uuid::now_v7()),
        entry: EntryId(Uuid::now_v7()),
        hold: HoldId(Uuid::now_v7()),
    }
}

impl Writer {
    /// Applies a batch in one transaction. An `Err` means nothing was committed.
    async fn apply(
        &mut self,
        batch: &[Request],
        now: Timestamp,
    ) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
        let connection = &mut self.connection;
        let started = std::time::Instant::now();
        on_connection!(connection, begin())?;
        let now_micros = micros(now);
        let (marker, step) = on_connection!(connection, change_marker())?;
        let cache = &mut self.accounts;
        if cache.marker.is_none_or(|last| last + step != marker)
            || cache.states.len() > CACHED_ACCOUNTS_MAX
        {
            // Another process wrote since our last commit (or this is the first batch).
            cache.states.clear();
            self.next_expiry = None;
        }
        let mut next_expiry = self.next_expiry;
        let due: Vec<HoldRow> = if next_expiry.is_none_or(|deadline| deadline <= now_micros) {
            let due = on_connection!(connection, due_holds(now_micros, EXPIRED_PER_BATCH_MAX))?;
            next_expiry = if due.len() as i64 >= EXPIRED_PER_BATCH_MAX {
                Some(now_micros)
            } else {
                let earliest = on_connection!(connection, next_pending_expiry(now_micros))?;
                Some(earliest.unwrap_or(i64::MAX))
            };
            due
        } else {
            Vec::new()
        };

        // Everything the batch reads: holds it resolves, accounts it touches, codes it takes.
        let mut hold_ids = BTreeSet::new();
        let mut account_ids = BTreeSet::new();
        let mut codes = BTreeSet::new();
        for request in batch {
            match &request.command {
                Command::CreateAccount(new) => {
                    codes.insert(new.code.clone());
                }
                Command::PostEntry(new) => {
                    account_ids.extend(new.legs.iter().map(|leg| leg.account_id.to_string()));
                }
                Command::CreateHold(new) => {
                    account_ids.insert(new.debit_account_id.to_string());
                    account_ids.insert(new.credit_account_id.to_string());
                }
                Command::PostHold { hold_id, .. } | Command::VoidHold { hold_id } => {
                    hold_ids.insert(hold_id.to_string());
                }
            }
        }
        let hold_ids: Vec<String> = hold_ids.into_iter().collect();
        let mut holds = if hold_ids.is_empty() {
            Vec::new()
        } else {
            on_connection!(connection, load_holds(&hold_ids))?
        };
        holds.extend(due.iter().cloned());
        for hold in &holds {
            account_ids.insert(hold.debit_account_id.clone());
            account_ids.insert(hold.credit_account_id.clone());
        }
        let mut working = Working::with_entry_amount_max(self.entry_amount_max);
        let mut missing = Vec::new();
        for id in account_ids {
            let cached = Uuid::parse_str(&id)
                .ok()
                .and_then(|uuid| cache.states.get(&AccountId(uuid)));
            match cached {
                Some(state) => working.load_account(state.clone()),
                None => missing.push(id),
            }
        }
        let accounts = if missing.is_empty() {
            Vec::new()
        } else {
            on_connection!(connection, load_accounts(&missing))?
        };
        let codes: Vec<String> = codes.into_iter().collect();
        let taken = if codes.is_empty() {
            Vec::new()
        } else {
            on_connection!(connection, taken_codes(&codes))?
        };
        let keys: Vec<String> = batch.iter().map(|request| request.key.clone()).collect();
        let stored = on_connection!(connection, stored_keys(&keys))?;

        for row in accounts {
            working.load_account(row.into_state()?);
        }
        for row in holds {
            working.load_hold(row.into_hold()?);
        }
        for code in taken {
            working.mark_code_taken(code);
        }
        for row in &due {
            let id = HoldId(
                Uuid::parse_str(&row.id)
                    .map_err(|_| StoreError::Corrupt(format!("hold id {}", row.id)))?,
            );
            working
                .expire_hold(id, now)
                .map_err(|error| StoreError::Corrupt(format!("expiring hold {id}: {error}")))?;
        }

        let mut replies: HashMap<String, (String, String)> = stored
            .into_iter()
            .map(|row| (row.key, (row.request_hash, row.outcome)))
            .collect();
        let mut new_keys = Vec::new();
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            if let Some((hash, outcome)) = replies.get(&request.key) {
                // A stored outcome is given only to an actor that may apply the command: a
                // key limited to namespaces learns nothing of another key's hold by
                // retrying under that key's idempotency key.
                if let Err(error) = working.check_actor(&request.actor, &request.command) {
                    results.push(Err(WriteError::Ledger(error)));
                    continue;
                }
                results.push(if *hash == request.request_hash {
                    serde_json::from_str::<Outcome>(outcome)
                        .map_err(|error| StoreError::Corrupt(format!("stored outcome: {error}")))
                        .map_err(|error| WriteError::Unavailable(error.to_string()))
                } else {
                    Err(WriteError::KeyReused(request.key.clone()))
                });
                continue;
            }
            match working.apply_as(&request.actor, &request.command, new_ids(), now) {
                Ok(outcome) => {
                    let text = serde_json::to_string(&outcome)
                        .map_err(|error| StoreError::Corrupt(format!("outcome: {error}")))?;
                    replies.insert(
                        request.key.clone(),
                        (request.request_hash.clone(), text.clone()),
                    );
                    new_keys.push((request.key.clone(), request.request_hash.clone(), text));
                    results.push(Ok(outcome));
                }
                Err(error) => results.push(Err(WriteError::Ledger(error))),
            }
        }
        let effects = working.take_effects();
        for hold in &effects.new_holds {
            next_expiry = next_expiry.map(|deadline| deadline.min(micros(hold.expires_at)));
        }
        let applied = started.elapsed();
        on_connection!(connection, write_effects(&effects, &new_keys, now_micros))?;
        let written = started.elapsed();
        on_connection!(connection, commit())?;
        let committed = started.elapsed();
        cache.marker = Some(marker);
        self.next_expiry = next_expiry;
        for state in working.accounts() {
            cache.states.insert(state.account.id, state.clone());
        }
        metrics::histogram!("tally_ledger_batch_size")
            .record(u32::try_from(batch.len()).unwrap_or(u32::MAX));
        metrics::histogram!("tally_ledger_batch_seconds", "phase" => "read_and_apply")
            .record(applied);
        metrics::histogram!("tally_ledger_batch_seconds", "phase" => "write")
            .record(written - applied);
        metrics::histogram!("tally_ledger_batch_seconds", "phase" => "commit")
            .record(committed - written);
        tracing::debug!(
            size = batch.len(),
            read_and_apply_us = applied.as_micros() as u64,
            write_us = (written - applied).as_micros() as u64,
            commit_us = (committed - written).as_micros() as u64,
            "ledger batch committed"
        );
        Ok(results)
    }
}
