//! Storage of the consortium log: a SQL [`LogStore`] and the operator thread that owns it.
//!
//! Tables (migration `consortium`): `consortium_entries (entry_index, bytes)`,
//! `consortium_tiles (level, tile_index, bytes)` — a tile is `Tile::to_bytes`, at most
//! 272 hashes (8.7 KB) — and one row `consortium_log (tree_size)`. Each [`Commit`] is
//! one transaction (`BEGIN IMMEDIATE` on SQLite; `BEGIN` plus a transaction-scoped
//! advisory lock on PostgreSQL) that first checks the stored size is the commit's first
//! index, so a second operator on the same database cannot interleave.
//!
//! The pure core's [`LogStore`] trait is synchronous. [`SqlLogStore`] serves it from a
//! current-thread runtime of its own with one connection, and [`ConsortiumLog`] runs the
//! [`Operator`] on a dedicated thread: requests queue on a bounded channel, the thread
//! takes everything waiting (up to `batch_size_max`), appends it as one batch (one
//! commit, one disk flush), signs one checkpoint, and only then replies (group commit,
//! as the ledger writer does). Reads that need the tree (proofs, tiles, entries, the
//! replayed state) run as closures on the same thread, after the writes queued before
//! them; the latest signed checkpoint is shared and read without the thread.
//!
//! `consortium_snapshot` (migration `consortium_member_map`) holds one row: the latest
//! signed state snapshot (`tally_consortium::snapshot`). The thread writes one after a
//! batch when a tenth of the log (at least 100,000 entries) came since the last, and
//! [`Operator::open`] starts from it, replaying only the entries after it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sqlx::ConnectOptions;
use tally_consortium::{
    Action, Commit, Entry, EntryBody, Error, Genesis, IdentifierOpening, LogStore, Operator,
    QueryAnswer, SignedRequest, SignerKey, StoredSnapshot, Tile, TileId, UnixSeconds,
};
use tally_consortium::{BlindingKey, Effect};
use tally_core::Clock;
use tokio::sync::{mpsc, oneshot};

use crate::database::Database;
use crate::error::StoreError;

/// Rows per multi-row insert: well under both engines' bind-parameter limits.
const ROWS_PER_STATEMENT_MAX: usize = 1000;
/// Entries read ahead by one read of an entry (replays read in order).
const ENTRY_READ_AHEAD: u64 = 1024;
/// Full tiles kept in memory (full tiles never change): about 36 MB.
const CACHED_TILES_MAX: usize = 4096;

macro_rules! log_sql {
    ($module:ident, $database:ty, $begin:expr) => {
        mod $module {
            use crate::error::StoreError;
            use sqlx::QueryBuilder;
            use tally_consortium::Commit;

            pub(super) type Connection = <$database as sqlx::Database>::Connection;

            pub(super) async fn tree_size(connection: &mut Connection) -> Result<i64, StoreError> {
                let (size,): (i64,) =
                    sqlx::query_as("SELECT tree_size FROM consortium_log WHERE id = 1")
                        .fetch_one(&mut *connection)
                        .await?;
                Ok(size)
            }

            pub(super) async fn read_tile(
                connection: &mut Connection,
                level: i64,
                index: i64,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let row: Option<(Vec<u8>,)> = sqlx::query_as(
                    "SELECT bytes FROM consortium_tiles WHERE level = $1 AND tile_index = $2",
                )
                .bind(level)
                .bind(index)
                .fetch_optional(&mut *connection)
                .await?;
                Ok(row.map(|(bytes,)| bytes))
            }

            pub(super) async fn read_entries(
                connection: &mut Connection,
                start: i64,
                end: i64,
            ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT entry_index, bytes FROM consortium_entries \
                     WHERE entry_index >= $1 AND entry_index < $2 ORDER BY entry_index",
                )
                .bind(start)
                .bind(end)
                .fetch_all(&mut *connection)
                .await?)
            }

            pub(super) async fn read_snapshot(
                connection: &mut Connection,
            ) -> Result<Option<(i64, String, Vec<u8>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT tree_size, note, state FROM consortium_snapshot WHERE id = 1",
                )
                .fetch_optional(&mut *connection)
                .await?)
            }

            pub(super) async fn write_snapshot(
                connection: &mut Connection,
                size: i64,
                note: &str,
                state: &[u8],
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO consortium_snapshot (id, tree_size, note, state) \
                     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET \
                     tree_size = excluded.tree_size, note = excluded.note, state = excluded.state",
                )
                .bind(size)
                .bind(note)
                .bind(state)
                .execute(&mut *connection)
                .await?;
                Ok(())
            }

            pub(super) async fn commit(
                connection: &mut Connection,
                commit: &Commit,
            ) -> Result<(), StoreError> {
                for statement in $begin {
                    sqlx::query(statement).execute(&mut *connection).await?;
                }
                match write(connection, commit).await {
                    Ok(()) => {
                        sqlx::query("COMMIT").execute(&mut *connection).await?;
                        Ok(())
                    }
                    Err(error) => {
                        // The transaction is abandoned; the error that matters is the first.
                        let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                        Err(error)
                    }
                }
            }

            async fn write(connection: &mut Connection, commit: &Commit) -> Result<(), StoreError> {
                let stored = tree_size(connection).await?;
                let first = i64::try_from(commit.first_index)
                    .map_err(|_| StoreError::Corrupt("first index beyond i64".into()))?;
                let size = i64::try_from(commit.tree_size)
                    .map_err(|_| StoreError::Corrupt("tree size beyond i64".into()))?;
                if stored != first || size < first {
                    return Err(StoreError::Corrupt(format!(
                        "commit of entries {first}..{size} does not continue the stored log of {stored} \
                         (another operator writes to this database?)"
                    )));
                }
                let mut index = first;
                for chunk in commit.entries.chunks(super::ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO consortium_entries (entry_index, bytes) ",
                    );
                    query.push_values(chunk, |mut row, bytes| {
                        row.push_bind(index).push_bind(bytes.as_slice());
                        index += 1;
                    });
                    query.build().execute(&mut *connection).await?;
                }
                let tiles: Vec<(i64, i64, Vec<u8>)> = commit
                    .tiles
                    .iter()
                    .map(|(id, tile)| {
                        i64::try_from(id.index)
                            .map(|tile_index| (i64::from(id.level), tile_index, tile.to_bytes()))
                            .map_err(|_| StoreError::Corrupt("tile index beyond i64".into()))
                    })
                    .collect::<Result<_, _>>()?;
                for chunk in tiles.chunks(super::ROWS_PER_STATEMENT_MAX) {
                    let mut query = QueryBuilder::<$database>::new(
                        "INSERT INTO consortium_tiles (level, tile_index, bytes) ",
                    );
                    query.push_values(chunk, |mut row, (level, tile_index, bytes)| {
                        row.push_bind(*level)
                            .push_bind(*tile_index)
                            .push_bind(bytes.as_slice());
                    });
                    query.push(
                        " ON CONFLICT (level, tile_index) DO UPDATE SET bytes = excluded.bytes",
                    );
                    query.build().execute(&mut *connection).await?;
                }
                sqlx::query("UPDATE consortium_log SET tree_size = $1 WHERE id = 1")
                    .bind(size)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            }
        }
    };
}

log_sql!(sqlite, sqlx::Sqlite, ["BEGIN IMMEDIATE"]);
log_sql!(
    postgres,
    sqlx::Postgres,
    [
        "BEGIN",
        // One log commit at a time per schema, across processes.
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/consortium'))",
    ]
);

pub(crate) enum LogConnection {
    Sqlite(sqlite::Connection),
    Postgres(postgres::Connection),
}

macro_rules! on_connection {
    ($connection:expr, $function:ident ( $($argument:expr),* )) => {
        match $connection {
            LogConnection::Sqlite(connection) => sqlite::$function(connection, $($argument),*).await,
            LogConnection::Postgres(connection) => postgres::$function(connection, $($argument),*).await,
        }
    };
}

fn storage(error: StoreError) -> Error {
    Error::Storage(error.to_string())
}

/// The consortium log's tables behind the synchronous [`LogStore`] trait: one connection
/// and a current-thread runtime of its own. Create and use it on a thread that is not
/// running a tokio runtime (the operator's thread, a test's `spawn_blocking`).
pub struct SqlLogStore {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) connection: std::cell::RefCell<LogConnection>,
    tiles: std::cell::RefCell<HashMap<TileId, Arc<Tile>>>,
    /// Entries read ahead: the index of the first, and their bytes.
    read_ahead: std::cell::RefCell<(u64, Vec<Vec<u8>>)>,
}

impl std::fmt::Debug for SqlLogStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SqlLogStore")
            .finish_non_exhaustive()
    }
}

impl SqlLogStore {
    /// Opens a connection of its own to `database` (migrated), with the pool's settings:
    /// on SQLite WAL with `synchronous = FULL`, so a commit is on disk when it returns.
    pub fn connect(database: &Database) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let connection = runtime.block_on(async {
            Ok::<_, StoreError>(match database {
                Database::Sqlite(pool) => {
                    LogConnection::Sqlite(pool.connect_options().connect().await?)
                }
                Database::Postgres(pool) => {
                    let mut connection = pool.connect_options().connect().await?;
                    sqlx::query(
                        "SELECT set_config('application_name', 'tally consortium ' || current_schema(), false)",
                    )
                    .execute(&mut connection)
                    .await?;
                    LogConnection::Postgres(connection)
                }
            })
        })?;
        Ok(SqlLogStore {
            runtime,
            connection: std::cell::RefCell::new(connection),
            tiles: std::cell::RefCell::new(HashMap::new()),
            read_ahead: std::cell::RefCell::new((0, Vec::new())),
        })
    }

    /// Forgets cached tiles and entries, so the next reads see the database as it is.
    pub fn forget_cache(&self) {
        self.tiles.borrow_mut().clear();
        *self.read_ahead.borrow_mut() = (0, Vec::new());
    }
}

impl LogStore for SqlLogStore {
    fn tree_size(&self) -> Result<u64, Error> {
        let mut connection = self.connection.borrow_mut();
        let size = self
            .runtime
            .block_on(async { on_connection!(&mut *connection, tree_size()) })
            .map_err(storage)?;
        u64::try_from(size).map_err(|_| Error::Storage(format!("stored tree size {size}")))
    }

    fn read_tile(&self, id: TileId) -> Result<Option<Arc<Tile>>, Error> {
        if let Some(tile) = self.tiles.borrow().get(&id) {
            return Ok(Some(tile.clone()));
        }
        let index = i64::try_from(id.index)
            .map_err(|_| Error::OutOfRange(format!("tile index {}", id.index)))?;
        let mut connection = self.connection.borrow_mut();
        let bytes = self
            .runtime
            .block_on(async {
                on_connection!(&mut *connection, read_tile(i64::from(id.level), index))
            })
            .map_err(storage)?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let tile = Arc::new(Tile::from_bytes(&bytes)?);
        if tile.hashes.len() == tally_consortium::TILE_WIDTH {
            let mut tiles = self.tiles.borrow_mut();
            if tiles.len() >= CACHED_TILES_MAX {
                tiles.clear();
            }
            tiles.insert(id, tile.clone());
        }
        Ok(Some(tile))
    }

    fn read_entry(&self, index: u64) -> Result<Option<Vec<u8>>, Error> {
        {
            let read_ahead = self.read_ahead.borrow();
            let (first, entries) = &*read_ahead;
            if index >= *first {
                if let Some(bytes) = entries.get((index - first) as usize) {
                    return Ok(Some(bytes.clone()));
                }
            }
        }
        let start =
            i64::try_from(index).map_err(|_| Error::OutOfRange(format!("entry {index}")))?;
        let end = start.saturating_add(ENTRY_READ_AHEAD as i64);
        let mut connection = self.connection.borrow_mut();
        let rows = self
            .runtime
            .block_on(async { on_connection!(&mut *connection, read_entries(start, end)) })
            .map_err(storage)?;
        // Keep only the run of consecutive entries from `index`.
        let mut entries = Vec::with_capacity(rows.len());
        for (position, (stored_index, bytes)) in rows.into_iter().enumerate() {
            if stored_index != start + position as i64 {
                break;
            }
            entries.push(bytes);
        }
        let found = entries.first().cloned();
        *self.read_ahead.borrow_mut() = (index, entries);
        Ok(found)
    }

    fn commit(&mut self, commit: Commit) -> Result<(), Error> {
        let connection = self.connection.get_mut();
        self.runtime
            .block_on(async { on_connection!(connection, commit(&commit)) })
            .map_err(storage)?;
        let tiles = self.tiles.get_mut();
        if tiles.len() + commit.tiles.len() > CACHED_TILES_MAX {
            tiles.clear();
        }
        for (id, tile) in commit.tiles {
            if tile.hashes.len() == tally_consortium::TILE_WIDTH {
                tiles.insert(id, Arc::new(tile));
            } else {
                tiles.remove(&id);
            }
        }
        Ok(())
    }

    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, Error> {
        let mut connection = self.connection.borrow_mut();
        let row = self
            .runtime
            .block_on(async { on_connection!(&mut *connection, read_snapshot()) })
            .map_err(storage)?;
        row.map(|(size, note, state)| {
            let size = u64::try_from(size)
                .map_err(|_| Error::Storage(format!("stored snapshot size {size}")))?;
            Ok(StoredSnapshot { size, note, state })
        })
        .transpose()
    }

    fn write_snapshot(&mut self, snapshot: StoredSnapshot) -> Result<(), Error> {
        let size = i64::try_from(snapshot.size)
            .map_err(|_| Error::Storage("snapshot size beyond i64".into()))?;
        let connection = self.connection.get_mut();
        self.runtime
            .block_on(async {
                on_connection!(
                    connection,
                    write_snapshot(size, &snapshot.note, &snapshot.state)
                )
            })
            .map_err(storage)
    }
}

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
        Ok((ConsortiumLog { sender, checkpoint }, thread))
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

fn open_operator(
    database: &Database,
    config: &ConsortiumConfig,
    clock: &Arc<dyn Clock>,
) -> Result<StoredOperator, Error> {
    let store = SqlLogStore::connect(database).map_err(storage)?;
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
}

impl Worker {
    fn publish_checkpoint(&mut self) -> Result<(), Error> {
        let text = self.operator.checkpoint()?.to_string();
        if let Ok(mut shared) = self.checkpoint.write() {
            *shared = text;
        }
        Ok(())
    }

    fn run(&mut self, mut receiver: mpsc::Receiver<Job>) {
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
