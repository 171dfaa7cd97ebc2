//! Why a reconciliation of Tally's books or a worklist change was refused or failed. Each
//! kind has a stable code; the HTTP layer maps kinds to statuses.

use tally_recon::ReconError;
use tally_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The matching engine could not read an input or write an output.
    #[error("reconciliation engine: {0}")]
    Engine(#[from] ReconError),
    #[error("the ledger side could not be written to {path}: {message}")]
    LedgerSide { path: String, message: String },
    #[error("business date {date} is not over yet (it ends at {ends_at}): its settlement file is not final")]
    DateNotOver { date: String, ends_at: String },
    #[error("no reconciliation run for business date {0}")]
    RunNotFound(String),
    #[error("reconciliation exception {0} does not exist")]
    ExceptionNotFound(String),
    #[error("reconciliation exception {id} is resolved already ({resolution})")]
    ExceptionResolved { id: String, resolution: String },
    /// A request field is out of its bounds; says which and why.
    #[error("{0}")]
    Invalid(String),
    #[error("account {0:?} does not exist")]
    AccountNotFound(String),
    /// The ledger refused the adjusting entry (unbalanced, mixed currencies, ...); nothing
    /// was posted and the exception is unchanged.
    #[error("the adjusting entry was refused: {message}")]
    EntryRefused { code: &'static str, message: String },
    /// The ledger writer could not store the adjusting entry; retrying is safe.
    #[error("the ledger is unavailable: {0}")]
    LedgerUnavailable(String),
    /// Another request changed the exception between this one's read and its write.
    #[error("reconciliation exception {0} was changed by another request; read it again")]
    Conflict(String),
}

impl ReconServiceError {
    pub fn code(&self) -> &'static str {
        match self {
            ReconServiceError::Store(_) => "storage",
            ReconServiceError::Engine(_) => "recon_engine",
            ReconServiceError::LedgerSide { .. } => "recon_ledger_side",
            ReconServiceError::DateNotOver { .. } => "recon_date_not_over",
            ReconServiceError::RunNotFound(_) => "recon_run_not_found",
            ReconServiceError::ExceptionNotFound(_) => "recon_exception_not_found",
            ReconServiceError::ExceptionResolved { .. } => "recon_exception_resolved",
            ReconServiceError::Invalid(_) => "invalid_recon_field",
            ReconServiceError::AccountNotFound(_) => "account_not_found",
            ReconServiceError::EntryRefused { code, .. } => code,
            ReconServiceError::LedgerUnavailable(_) => "ledger_unavailable",
            ReconServiceError::Conflict(_) => "recon_exception_conflict",
        }
    }
}
