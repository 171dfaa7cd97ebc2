//! The operator's scheduled re-reading of its stored log: every entry, every tile, and
//! the root they give against the root the operator signed, with an alarm on anything
//! that no longer hashes to the tree.
//!
//! Why: the operator serves proofs from its store and replays entries only when it
//! starts, so a row edited in the database (by a person with access, a bad restore, a
//! disk) would otherwise be served until the next restart, and members would be the first
//! to see it. The check reads on a connection of its own, on a blocking thread, at the
//! tree size the operator had when it began: the operator keeps appending meanwhile
//! (entries and full tiles never change, and a partial tile only widens).
//!
//! An alarm is three things at once: an error in the log (`consortium log integrity`),
//! the metrics `tally_consortium_integrity_intact` (1 or 0),
//! `tally_consortium_integrity_checks_total` and `tally_consortium_integrity_alarms_total`,
//! and the status that `GET /v1/consortium/status` answers.

use std::sync::Arc;

use tally_consortium::{check_stored_log, Error, Hash, StoreCheck};
use tally_core::Clock;
use tally_store::consortium::{log_storage_error, SqlLogStore};
use tally_store::Database;
use tokio::sync::watch;

/// Seconds between two checks of the stored log by default (`[consortium_log]
/// integrity_check_interval_seconds`): a check reads the whole log, so a few minutes.
pub const INTEGRITY_CHECK_INTERVAL_SECONDS_DEFAULT: u64 = 300;

/// What the latest check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityState {
    /// No check has finished since the operator started.
    NotChecked,
    /// Every entry and tile hashes to the signed tree.
    Intact,
    /// Something no longer hashes to the tree (the finding names it).
    Tampered,
    /// The check could not read the store.
    CheckFailed,
}

impl IntegrityState {
    /// Stable name, as the status route answers it.
    pub fn name(self) -> &'static str {
        match self {
            IntegrityState::NotChecked => "not_checked",
            IntegrityState::Intact => "intact",
            IntegrityState::Tampered => "tampered",
            IntegrityState::CheckFailed => "check_failed",
        }
    }
}

/// The latest check of the stored log, and counts since the operator started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityStatus {
    /// What it found.
    pub state: IntegrityState,
    /// When it finished.
    pub checked_at: Option<jiff::Timestamp>,
    /// The tree size it checked.
    pub tree_size: u64,
    /// Entries it read and hashed.
    pub entries: u64,
    /// Tiles it read and checked.
    pub tiles: u64,
    /// The first bad entry, when the finding is about one.
    pub first_bad_entry: Option<u64>,
    /// What is wrong, or why the check failed.
    pub detail: Option<String>,
    /// Checks finished.
    pub checks: u64,
    /// Checks that alarmed (tampered or failed).
    pub alarms: u64,
    /// Seconds between scheduled checks (0: none scheduled).
    pub interval_seconds: u64,
}

impl IntegrityStatus {
    fn new(interval_seconds: u64) -> Self {
        IntegrityStatus {
            state: IntegrityState::NotChecked,
            checked_at: None,
            tree_size: 0,
            entries: 0,
            tiles: 0,
            first_bad_entry: None,
            detail: None,
            checks: 0,
            alarms: 0,
            interval_seconds,
        }
    }
}

/// The check's shared part: where to read, the clock, and the status.
pub(super) struct Integrity {
    database: Database,
    clock: Arc<dyn Clock>,
    status: watch::Sender<IntegrityStatus>,
}

impl Integrity {
    pub(super) fn new(database: Database, clock: Arc<dyn Clock>, interval_seconds: u64) -> Self {
        Integrity {
            database,
            clock,
            status: watch::Sender::new(IntegrityStatus::new(interval_seconds)),
        }
    }

    pub(super) fn status(&self) -> IntegrityStatus {
        self.status.borrow().clone()
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<IntegrityStatus> {
        self.status.subscribe()
    }

    /// Reads the store at `size` against `root` (the operator's signed root at that size)
    /// and records what it found.
    pub(super) async fn check(&self, size: u64, root: Hash) -> IntegrityStatus {
        let database = self.database.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            // A connection of its own, with no cache: what the database holds now.
            let store = SqlLogStore::connect(&database).map_err(log_storage_error)?;
            check_stored_log(&store, size, Some((size, root)))
        })
        .await
        .unwrap_or_else(|error| Err(Error::Internal(format!("the check stopped: {error}"))));
        self.record(size, outcome)
    }

    fn record(&self, size: u64, outcome: Result<StoreCheck, Error>) -> IntegrityStatus {
        let mut status = self.status();
        status.checked_at = Some(self.clock.now());
        status.tree_size = size;
        status.checks += 1;
        match outcome {
            Ok(check) => {
                status.entries = check.entries;
                status.tiles = check.tiles;
                status.first_bad_entry = check.finding.as_ref().and_then(|found| found.entry());
                status.detail = check.finding.as_ref().map(ToString::to_string);
                status.state = match &check.finding {
                    None => IntegrityState::Intact,
                    Some(finding) => {
                        tracing::error!(
                            tree_size = size,
                            first_bad_entry = status.first_bad_entry,
                            %finding,
                            "consortium log integrity: the stored log no longer hashes to the signed tree"
                        );
                        IntegrityState::Tampered
                    }
                };
            }
            Err(error) => {
                tracing::error!(
                    tree_size = size,
                    %error,
                    "consortium log integrity: the stored log could not be checked"
                );
                status.entries = 0;
                status.tiles = 0;
                status.first_bad_entry = None;
                status.detail = Some(error.to_string());
                status.state = IntegrityState::CheckFailed;
            }
        }
        let intact = status.state == IntegrityState::Intact;
        if !intact {
            status.alarms += 1;
            metrics::counter!("tally_consortium_integrity_alarms_total").increment(1);
        }
        metrics::counter!("tally_consortium_integrity_checks_total").increment(1);
        metrics::gauge!("tally_consortium_integrity_intact").set(if intact { 1.0 } else { 0.0 });
        self.status.send_replace(status.clone());
        status
    }
}
