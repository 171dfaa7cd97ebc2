//! Connecting to SQLite or PostgreSQL, and migrating.

use crate::error::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of connections to the configured database.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connections to the reading pool.
pub(crate) const READ_CONNECTIONS_MAX: u32 = 8;

impl Database {
    /// `postgres://...` selects PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a bare path
    /// selects a SQLite file (created if missing) in WAL mode with full synchronous commits.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        match Self::backend_of(url) {
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)?;
                Self::connect_postgres(options).await
            }
            Backend::Sqlite => {
                let options = sqlite_options(url)?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(READ_CONNECTIONS_MAX)
                    .connect_with(options)
                    .await?;
                Ok(Database::Sqlite(pool))
            }
        }
    }

    /// Every connection runs its transactions at READ COMMITTED whatever the server's,
    /// database's or role's default: the store relies on it (a statement sees what another
    /// transaction committed while this one waited for a lock; a version check that lost a
    /// race updates no row instead of failing with a serialization error). Likewise every
    /// connection commits with `synchronous_commit = on`: a commit returns only once its WAL
    /// record is flushed, because Tally answers a write as soon as its commit returns, and a
    /// database or role configured with `off` would otherwise lose acknowledged writes when
    /// the server crashes.
    pub async fn connect_postgres(options: PgConnectOptions) -> Result<Self, StoreError> {
        // sqlx escapes the space in a startup option itself (since 0.9).
        let options = options.options([
            ("default_transaction_isolation", "read committed"),
            ("synchronous_commit", "on"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(READ_CONNECTIONS_MAX)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Database::Postgres(pool))
    }

    pub fn backend_of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every migration not yet applied. Safe to run at every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Database::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

/// SQLite settings that make a commit durable: WAL journal with `synchronous = FULL`, so
/// the WAL is flushed to disk before a commit returns; and `secure_delete`, so that what a
/// write replaces does not stay readable in the file.
pub(crate) fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || path.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .pragma("cache_size", "-65536")
        // Statement journals (for multi-row statements inside a batch) stay in memory
        // instead of a temporary file: they only matter until the statement ends.
        .pragma("temp_store", "memory")
        // Deleted and overwritten content (an erased customer's ciphertexts, a re-sealed
        // value's old one) is zeroed in the file instead of lingering in free space and
        // free pages until reused.
        .pragma("secure_delete", "ON"))
}
