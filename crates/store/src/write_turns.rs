//! Turns at SQLite's single write lock within one process.
//!
//! SQLite lets one connection write at a time. Tally's group-commit writers (the ledger's, the
//! payments', the credit operations' and the risk service's) each hold many requests' changes
//! in one transaction; when two of them want the lock at once, SQLite's busy handler makes
//! the loser sleep (1 to 100 ms, growing) and poll, and under a steady load those sleeps, not
//! the disk, set every checkout's latency. Here each writer first waits for its turn in one
//! first-come, first-served queue per database file, so the next writer starts the moment
//! the last one commits. Other processes on the same file still meet the busy handler.

use sqlx::SqlitePool;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One queue per database file opened by this process.
static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A writer's turn: the write transaction must begin after this is granted and end (commit
/// or roll back) before it is dropped.
#[must_use = "the turn ends when it is dropped"]
pub struct WriteTurn {
    _permit: Option<OwnedSemaphorePermit>,
}

/// Waits for the turn to write to the SQLite file behind `pool`.
pub async fn write_turn(pool: &SqlitePool) -> WriteTurn {
    let path = pool.connect_options().get_filename().to_path_buf();
    let queue = {
        // A poisoned map only means another thread panicked while inserting; its contents
        // are still whole.
        let mut queues = QUEUES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(
            queues
                .entry(path)
                .or_insert_with(|| Arc::new(Semaphore::new(1))),
        )
    };
    // The queue is never closed; were it, the writer would go without a turn and meet
    // SQLite's busy handler as another process's writer does.
    WriteTurn {
        _permit: queue.acquire_owned().await.ok(),
    }
}

impl crate::database::Database {
    /// Waits for this process's turn to write on SQLite (see the module documentation);
    /// PostgreSQL lets writers commit side by side and needs none.
    pub async fn write_turn(&self) -> Option<WriteTurn> {
        match self {
            crate::database::Database::Sqlite(pool) => Some(write_turn(pool).await),
            crate::database::Database::Postgres(_) => None,
        }
    }
}
