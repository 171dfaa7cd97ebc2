//! Locks on a merchant's money that hold across processes: while one is held, no other
//! process takes the same lock.
//!
//! - **Payout funding** ([`Database::lock_payout_funding`], one per merchant): held from a
//!   payout's balance check until its funding entry is committed by the ledger writer (which
//!   runs its own transaction, on its own connection), so that no other process checks that
//!   merchant's available balance meanwhile. Why a lock and not a ledger rule: a merchant's
//!   available balance may go negative (a refund or a dispute carried), so the ledger cannot
//!   refuse a debit below zero; the check is the payout service's.
//! - **Reserves** ([`Database::lock_merchant_reserves`], one for all merchants): held by a
//!   settlement run for each chunk of merchants (from reading the reserve rows due to
//!   posting their release and marking them released) and by a dispute's opening (from
//!   reading the balances it splits over to lowering the reserve rows and posting), so a
//!   release never pays out a reserve row's amount a dispute has just taken, and a dispute
//!   never splits over balances a run is moving. Disputes are rare and a chunk short, so
//!   one lock for every merchant costs little.
//!
//! How each backend holds them:
//!
//! - **PostgreSQL**: a transaction-scoped advisory lock in a transaction kept open on a
//!   pooled connection (two-key form, a key space apart from the writer's one-key lock). A
//!   process that dies releases it with its connection.
//! - **SQLite**: an exclusive `flock` on a file beside the database
//!   (`{file}-payout-funding.lock`, `{file}-merchant-reserves.lock`), one for every merchant
//!   of the database: SQLite has one writer at a time anyway. The database's own write lock
//!   cannot serve, since the ledger writer needs it to post while the lock is held. An
//!   in-memory database is one process's: no file.
//!
//! At most [`HELD_LOCKS_MAX`] locks are held (or waited for) at once in a process, so that
//! the connections held open for them never take the whole reading pool (the holders read
//! balances through it). A holder never takes a second lock, so the limit cannot deadlock.

use crate::database::{Database, READ_CONNECTIONS_MAX};
use crate::error::StoreError;
use std::path::PathBuf;
use std::sync::LazyLock;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Locks held at once in a process: half the reading pool's connections.
pub const HELD_LOCKS_MAX: usize = READ_CONNECTIONS_MAX as usize / 2;

static HELD_LOCKS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(HELD_LOCKS_MAX));

/// A held lock (see the module); dropped or [released](FundingLock::release), it is let go.
#[derive(Debug)]
pub struct FundingLock {
    held: Held,
    _permit: SemaphorePermit<'static>,
}

#[derive(Debug)]
enum Held {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    File(std::fs::File),
    InProcess,
}

/// What a lock covers.
#[derive(Debug, Clone, Copy)]
enum Namespace {
    PayoutFunding,
    MerchantReserves,
}

impl Namespace {
    fn name(self) -> &'static str {
        match self {
            Namespace::PayoutFunding => "payout-funding",
            Namespace::MerchantReserves => "merchant-reserves",
        }
    }
}

impl Database {
    /// Waits for, then takes, the lock on `merchant`'s payout funding.
    pub async fn lock_payout_funding(&self, merchant: &str) -> Result<FundingLock, StoreError> {
        self.lock_across_processes(Namespace::PayoutFunding, merchant)
            .await
    }

    /// Waits for, then takes, the lock that keeps settlement runs and disputes' openings
    /// apart on merchants' reserves and balances.
    pub async fn lock_merchant_reserves(&self) -> Result<FundingLock, StoreError> {
        self.lock_across_processes(Namespace::MerchantReserves, "")
            .await
    }

    async fn lock_across_processes(
        &self,
        namespace: Namespace,
        key: &str,
    ) -> Result<FundingLock, StoreError> {
        let permit = HELD_LOCKS
            .acquire()
            .await
            .map_err(|error| StoreError::Corrupt(format!("money locks: {error}")))?;
        let held = match self {
            Database::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                sqlx::query(
                    "SELECT pg_advisory_xact_lock(\
                     hashtext(current_schema() || '/' || $1), hashtext($2))",
                )
                .bind(namespace.name())
                .bind(key)
                .execute(&mut *transaction)
                .await?;
                Held::Postgres(transaction)
            }
            Database::Sqlite(pool) => {
                match lock_file_path(pool.connect_options().get_filename(), namespace) {
                    None => Held::InProcess,
                    Some(path) => {
                        let file = tokio::task::spawn_blocking(move || {
                            let file = std::fs::OpenOptions::new()
                                .create(true)
                                .truncate(false)
                                .write(true)
                                .open(&path)?;
                            file.lock()?;
                            Ok::<_, std::io::Error>(file)
                        })
                        .await
                        .map_err(|error| StoreError::Corrupt(format!("money lock: {error}")))??;
                        Held::File(file)
                    }
                }
            }
        };
        Ok(FundingLock {
            held,
            _permit: permit,
        })
    }
}

/// The lock file of a SQLite database file; none for an in-memory database.
fn lock_file_path(database: &std::path::Path, namespace: Namespace) -> Option<PathBuf> {
    let text = database.to_string_lossy();
    if text.is_empty() || text == ":memory:" || text.starts_with("file::memory:") {
        return None;
    }
    let mut name = database.as_os_str().to_owned();
    name.push(format!("-{}.lock", namespace.name()));
    Some(PathBuf::from(name))
}

impl FundingLock {
    /// Lets the lock go (PostgreSQL: ends its transaction, which wrote nothing).
    pub async fn release(self) -> Result<(), StoreError> {
        match self.held {
            Held::Postgres(transaction) => transaction.commit().await?,
            Held::File(file) => file.unlock()?,
            Held::InProcess => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{lock_file_path, Namespace};
    use std::path::Path;

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        let funding = Namespace::PayoutFunding;
        assert_eq!(
            lock_file_path(Path::new("/data/tally.db"), funding),
            Some("/data/tally.db-payout-funding.lock".into())
        );
        assert_eq!(
            lock_file_path(Path::new("/data/tally.db"), Namespace::MerchantReserves),
            Some("/data/tally.db-merchant-reserves.lock".into())
        );
        assert_eq!(lock_file_path(Path::new(":memory:"), funding), None);
        assert_eq!(lock_file_path(Path::new(""), funding), None);
    }
}
