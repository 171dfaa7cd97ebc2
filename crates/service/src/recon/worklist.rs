//! The exceptions of reconciliation runs as a worklist: list and read runs, list exceptions
//! (by run, class, state, assignee), assign one, and resolve it with a note or with an
//! adjusting journal entry that references it.
//!
//! An adjusting entry goes through the ledger writer as the payment service (the clearing
//! accounts it corrects are the payment service's) under the key
//! `payments-recon-adjust:{exception id}` with the exception's id in its metadata, so a
//! retry posts it once and the books say which break it corrects. The ledger checks it as
//! any entry (balanced, one currency, accounts that exist); refused, nothing is posted and
//! the exception stays as it was. Every change is made only if the exception is still at
//! the version read and not resolved, so two people resolving one exception cannot both
//! succeed.

use crate::payments::accounts::PAYMENTS_SERVICE;
use crate::recon::error::ReconServiceError;
use crate::recon::ledger_side::ADJUSTING_KEY_PREFIX;
use crate::recon::views::{ExceptionView, RunView};
use jiff::Timestamp;
use std::collections::BTreeMap;
use tally_core::Amount;
use tally_ledger::{Command, NewEntry, NewLeg, Outcome, Side};
use tally_store::lists::ListPage;
use tally_store::recon::{ExceptionChange, ExceptionFilter};
use tally_store::{Database, LedgerWriter, WriteError};

/// Longest note, assignee and description accepted, in characters.
pub const NOTE_LENGTH_MAX: usize = 1_000;
pub const ASSIGNEE_LENGTH_MAX: usize = 128;
/// An adjusting entry's description: what the ledger keeps in one field, 1,024 bytes,
/// stated as characters that always fit.
pub const DESCRIPTION_LENGTH_MAX: usize = tally_ledger::TEXT_LENGTH_MAX / 4;
/// Most items of one page of runs or exceptions.
pub const PAGE_LIMIT_MAX: i64 = 500;
/// The exception classes and states a filter may name.
pub const CLASSES: [&str; 9] = [
    "missing_in_channel",
    "missing_in_ledger",
    "amount_mismatch",
    "status_mismatch",
    "currency_mismatch",
    "fee_mismatch",
    "duplicate_in_ledger",
    "duplicate_in_channel",
    "timing",
];
pub const STATES: [&str; 3] = ["open", "assigned", "resolved"];

/// One leg of an adjusting entry, its account named by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustingLeg {
    pub account_code: String,
    pub side: Side,
    pub amount: Amount,
}

/// How an exception is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Explained, no money to move.
    Note(String),
    /// Corrected by an entry in the books.
    AdjustingEntry {
        note: String,
        description: String,
        legs: Vec<AdjustingLeg>,
    },
}

/// The worklist over the store and the ledger writer.
#[derive(Clone)]
pub struct ReconWorklist {
    database: Database,
    writer: LedgerWriter,
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), ReconServiceError> {
    let length = text.chars().count();
    if text.trim().is_empty() || length > max {
        return Err(ReconServiceError::Invalid(format!(
            "{field} must be 1 to {max} characters, not blank (got {length})"
        )));
    }
    Ok(())
}

impl ReconWorklist {
    pub fn new(database: Database, writer: LedgerWriter) -> ReconWorklist {
        ReconWorklist { database, writer }
    }

    /// Runs, latest first, before `before` (a date), at most `limit`.
    pub async fn runs(
        &self,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunView>, ReconServiceError> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let rows = self.database.recon_runs(before, limit).await?;
        rows.iter().map(RunView::of).collect()
    }

    pub async fn run(&self, business_date: &str) -> Result<RunView, ReconServiceError> {
        let row = self
            .database
            .recon_run(business_date)
            .await?
            .ok_or_else(|| ReconServiceError::RunNotFound(business_date.to_string()))?;
        RunView::of(&row)
    }

    /// Exceptions matching `filter`, after the exception `after`, at most `limit`. A filter
    /// on a run that does not exist is refused rather than answered empty.
    pub async fn exceptions(
        &self,
        filter: &ExceptionFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExceptionView>, ReconServiceError> {
        self.check_filter(filter).await?;
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let rows = self.database.recon_exceptions(filter, after, limit).await?;
        rows.iter().map(ExceptionView::of).collect()
    }

    /// A filter's class and state must exist, and its run too.
    async fn check_filter(&self, filter: &ExceptionFilter) -> Result<(), ReconServiceError> {
        if let Some(class) = &filter.class {
            if !CLASSES.contains(&class.as_str()) {
                return Err(ReconServiceError::Invalid(format!(
                    "class {class:?} is not one of {}",
                    CLASSES.join(", ")
                )));
            }
        }
        if let Some(state) = &filter.state {
            if !STATES.contains(&state.as_str()) {
                return Err(ReconServiceError::Invalid(format!(
                    "state {state:?} is not one of {}",
                    STATES.join(", ")
                )));
            }
        }
        if let Some(date) = &filter.business_date {
            self.run(date).await?;
        }
        Ok(())
    }

    /// One page of the runs sorted as `page` says (the console's table), each with how
    /// many of its exceptions are not resolved yet.
    pub async fn runs_page(
        &self,
        page: &ListPage,
    ) -> Result<Vec<(RunView, i64)>, ReconServiceError> {
        let rows = self.database.recon_runs_list(page).await?;
        rows.iter()
            .map(|row| Ok((RunView::of(&row.run)?, row.unresolved)))
            .collect()
    }

    /// One page of the exceptions matching `filter` sorted as `page` says (the console's
    /// table), refused as [`ReconWorklist::exceptions`] refuses a filter.
    pub async fn exceptions_page(
        &self,
        filter: &ExceptionFilter,
        page: &ListPage,
    ) -> Result<Vec<ExceptionView>, ReconServiceError> {
        self.check_filter(filter).await?;
        let rows = self.database.recon_exceptions_list(filter, page).await?;
        rows.iter().map(ExceptionView::of).collect()
    }

    pub async fn exception(&self, id: &str) -> Result<ExceptionView, ReconServiceError> {
        let row = self.row(id).await?;
        ExceptionView::of(&row)
    }

    async fn row(
        &self,
        id: &str,
    ) -> Result<tally_store::recon::ReconExceptionRow, ReconServiceError> {
        self.database
            .recon_exception(id)
            .await?
            .ok_or_else(|| ReconServiceError::ExceptionNotFound(id.to_string()))
    }

    fn unresolved(row: &tally_store::recon::ReconExceptionRow) -> Result<(), ReconServiceError> {
        if row.state == "resolved" {
            return Err(ReconServiceError::ExceptionResolved {
                id: row.id.clone(),
                resolution: row.resolution.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Gives the exception to `assignee` (again, to another one, while it is not resolved).
    pub async fn assign(
        &self,
        id: &str,
        assignee: &str,
        now: Timestamp,
    ) -> Result<ExceptionView, ReconServiceError> {
        check_text("assignee", assignee, ASSIGNEE_LENGTH_MAX)?;
        let row = self.row(id).await?;
        Self::unresolved(&row)?;
        let change = ExceptionChange::Assign {
            assignee: assignee.to_string(),
        };
        self.change(&row, &change, now).await
    }

    /// Resolves the exception with a note, or posts the adjusting entry first and resolves
    /// it with the entry's id.
    pub async fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        now: Timestamp,
    ) -> Result<ExceptionView, ReconServiceError> {
        let row = self.row(id).await?;
        let change = match resolution {
            Resolution::Note(note) => {
                check_text("note", &note, NOTE_LENGTH_MAX)?;
                Self::unresolved(&row)?;
                ExceptionChange::Resolve {
                    resolution: "note".into(),
                    note: Some(note),
                    adjusting_entry_id: None,
                }
            }
            Resolution::AdjustingEntry {
                note,
                description,
                legs,
            } => {
                check_text("note", &note, NOTE_LENGTH_MAX)?;
                check_text("description", &description, DESCRIPTION_LENGTH_MAX)?;
                Self::unresolved(&row)?;
                let entry_id = self
                    .post_adjusting_entry(&row.id, description, legs)
                    .await?;
                ExceptionChange::Resolve {
                    resolution: "adjusting_entry".into(),
                    note: Some(note),
                    adjusting_entry_id: Some(entry_id),
                }
            }
        };
        self.change(&row, &change, now).await
    }

    async fn post_adjusting_entry(
        &self,
        id: &str,
        description: String,
        legs: Vec<AdjustingLeg>,
    ) -> Result<String, ReconServiceError> {
        let mut new_legs = Vec::with_capacity(legs.len());
        for leg in legs {
            let account_id = self
                .database
                .account_id_by_code(&leg.account_code)
                .await?
                .ok_or_else(|| ReconServiceError::AccountNotFound(leg.account_code.clone()))?;
            new_legs.push(NewLeg {
                account_id,
                side: leg.side,
                amount: leg.amount,
            });
        }
        let entry = NewEntry {
            legs: new_legs,
            description,
            metadata: BTreeMap::from([("recon_exception".to_string(), id.to_string())]),
        };
        let key = format!("{ADJUSTING_KEY_PREFIX}{id}");
        match self
            .writer
            .submit_as(PAYMENTS_SERVICE, key, Command::PostEntry(entry))
            .await
        {
            Ok(Outcome::Entry(entry)) => Ok(entry.id.to_string()),
            Ok(other) => Err(ReconServiceError::Invalid(format!(
                "the ledger answered {other:?} to an entry"
            ))),
            Err(WriteError::Ledger(error)) => Err(ReconServiceError::EntryRefused {
                code: error.code(),
                message: error.to_string(),
            }),
            Err(WriteError::KeyReused(_)) => Err(ReconServiceError::EntryRefused {
                code: "recon_adjusting_entry_differs",
                message: format!(
                    "an adjusting entry for exception {id} was posted before with other legs"
                ),
            }),
            Err(error) => Err(ReconServiceError::LedgerUnavailable(error.to_string())),
        }
    }

    async fn change(
        &self,
        row: &tally_store::recon::ReconExceptionRow,
        change: &ExceptionChange,
        now: Timestamp,
    ) -> Result<ExceptionView, ReconServiceError> {
        let changed = self
            .database
            .change_recon_exception(&row.id, row.version, change, now.as_microsecond())
            .await?;
        let after = self.row(&row.id).await?;
        if !changed {
            Self::unresolved(&after)?;
            return Err(ReconServiceError::Conflict(row.id.clone()));
        }
        ExceptionView::of(&after)
    }
}
