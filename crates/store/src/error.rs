//! Errors of the storage layer.

use tally_ledger::LedgerError;

/// A storage failure: the database could not be reached or answered unexpectedly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported database URL {0:?}: use a SQLite file path, sqlite://PATH or postgres://..."
    )]
    UnsupportedUrl(String),
    #[error("file system error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Why a ledger write was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The ledger's rules refused it; nothing changed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    KeyReused(String),
    /// The write could not be stored; it was not applied and may be retried with its key.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// Whether a database error is a unique key refusing a second row.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.is_unique_violation())
}

/// An insert's outcome: `true` when the row went in, `false` when a row with its key is
/// there already (a retry, or a race another writer won).
pub(crate) fn inserted_unless_taken(result: Result<(), sqlx::Error>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(error.into()),
    }
}
