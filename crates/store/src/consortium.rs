//! Storage of the consortium log: the SQL [`LogStore`] of its entries, tiles and size.
//!
//! Tables (migration `consortium`): `consortium_entries (entry_index, bytes)`,
//! `consortium_tiles (level, tile_index, bytes)` — a tile is `Tile::to_bytes`, at most
//! 272 hashes (8.7 KB) — and one row `consortium_log (tree_size)`. Each [`Commit`] is
//! one transaction (`BEGIN IMMEDIATE` on SQLite; `BEGIN` plus a transaction-scoped
//! advisory lock on PostgreSQL) that first checks the stored size is the commit's first
//! index, so a second operator on the same database cannot interleave.
//!
//! The pure core's [`LogStore`] trait is synchronous. [`SqlLogStore`] serves it from a
//! current-thread runtime of its own with one connection; the operator thread that owns
//! it (group commit, reads after the writes queued before them) is a service,
//! `tally_service::consortium`.
//!
//! `consortium_snapshot` (migration `consortium_member_map`) holds one row: the latest
//! signed state snapshot (`tally_consortium::snapshot`), which
//! [`tally_consortium::Operator::open`] starts from, replaying only the entries after it.
//!
//! `consortium_checkpoint` (migration `consortium_checks`) holds one row: the latest signed
//! checkpoint, which `tally consortium verify --database` checks the stored log against.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::ConnectOptions;
use tally_consortium::{Commit, Error, LogStore, StoredSnapshot, Tile, TileId};

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

            pub(super) async fn read_checkpoint(
                connection: &mut Connection,
            ) -> Result<Option<(i64, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT tree_size, note FROM consortium_checkpoint WHERE id = 1",
                )
                .fetch_optional(&mut *connection)
                .await?)
            }

            pub(super) async fn write_checkpoint(
                connection: &mut Connection,
                size: i64,
                note: &str,
            ) -> Result<(), StoreError> {
                // Never replaced by an older one (a second process, a reordered write).
                sqlx::query(
                    "INSERT INTO consortium_checkpoint (id, tree_size, note) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, \
                     note = excluded.note WHERE consortium_checkpoint.tree_size <= excluded.tree_size",
                )
                .bind(size)
                .bind(note)
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

/// A store error as the consortium log's storage error (code `storage`), the form the
/// pure core's [`LogStore`] trait and the operator report it in.
pub fn log_storage_error(error: StoreError) -> Error {
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

    /// The latest signed checkpoint stored, with its tree size (`None` before the first).
    pub fn read_checkpoint(&self) -> Result<Option<(u64, String)>, Error> {
        let mut connection = self.connection.borrow_mut();
        let row = self
            .runtime
            .block_on(async { on_connection!(&mut *connection, read_checkpoint()) })
            .map_err(log_storage_error)?;
        row.map(|(size, note)| {
            u64::try_from(size)
                .map(|size| (size, note))
                .map_err(|_| Error::Storage(format!("stored checkpoint size {size}")))
        })
        .transpose()
    }

    /// Stores the latest signed checkpoint (its own transaction), unless a larger one is
    /// stored already.
    pub fn write_checkpoint(&self, size: u64, note: &str) -> Result<(), Error> {
        let size =
            i64::try_from(size).map_err(|_| Error::Storage("checkpoint size beyond i64".into()))?;
        let mut connection = self.connection.borrow_mut();
        self.runtime
            .block_on(async { on_connection!(&mut *connection, write_checkpoint(size, note)) })
            .map_err(log_storage_error)
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
            .map_err(log_storage_error)?;
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
            .map_err(log_storage_error)?;
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
            .map_err(log_storage_error)?;
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
            .map_err(log_storage_error)?;
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
            .map_err(log_storage_error)?;
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
            .map_err(log_storage_error)
    }
}
