//! Why a payout request was refused or could not finish. Each kind has a stable code; the
//! HTTP layer maps kinds to statuses.

use crate::payments::error::PaymentServiceError;
use tally_payments::PayoutError;
use tally_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayoutServiceError {
    /// A refusal or failure shared with the rest of the payment service (storage, an
    /// unknown merchant, an idempotency key reused, the ledger).
    #[error(transparent)]
    Payment(#[from] PaymentServiceError),
    /// The payout rules refused it; nothing changed.
    #[error(transparent)]
    Rule(#[from] PayoutError),
    /// One item of a batch was refused; nothing of the batch was made.
    #[error("payouts[{index}]: {error}")]
    Item {
        index: usize,
        error: Box<PayoutServiceError>,
    },
    #[error("payout {0} does not exist")]
    PayoutNotFound(String),
    #[error("payout batch {0} does not exist")]
    BatchNotFound(String),
    /// A request that does not make sense (`code` says which way).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A bank file that does not parse or does not match its batch.
    #[error("{message}")]
    File { code: &'static str, message: String },
    /// A return file answers a payout whose batch file was never taken for the bank.
    #[error("payout {0} was never sent to the bank: take the batch's file first")]
    NotSubmitted(String),
    /// The credit account refused the operation a credit-balance payout makes (see its code).
    #[error(transparent)]
    Credit(#[from] crate::credit::operations::OperationError),
    /// Scheduled payouts wait for the settlement run of their date.
    #[error("the settlement run of {0} is not done: run it first (tally settle --date {0})")]
    SettlementRunNotDone(String),
}

impl PayoutServiceError {
    pub fn code(&self) -> &str {
        match self {
            PayoutServiceError::Payment(error) => error.code(),
            PayoutServiceError::Rule(error) => error.code(),
            PayoutServiceError::Item { error, .. } => error.code(),
            PayoutServiceError::PayoutNotFound(_) => "payout_not_found",
            PayoutServiceError::BatchNotFound(_) => "payout_batch_not_found",
            PayoutServiceError::Invalid { code, .. } | PayoutServiceError::File { code, .. } => {
                code
            }
            PayoutServiceError::NotSubmitted(_) => "payout_not_submitted",
            PayoutServiceError::SettlementRunNotDone(_) => "settlement_run_not_done",
            PayoutServiceError::Credit(error) => error.code(),
        }
    }

    /// The error an item's refusal comes down to (the item itself when it is not a batch
    /// item's).
    pub fn innermost(&self) -> &PayoutServiceError {
        match self {
            PayoutServiceError::Item { error, .. } => error.innermost(),
            other => other,
        }
    }
}

impl From<StoreError> for PayoutServiceError {
    fn from(error: StoreError) -> Self {
        PayoutServiceError::Payment(PaymentServiceError::Store(error))
    }
}
