//! Why a payment rule refused something. Each kind has a stable code clients can match on.

use tally_core::MoneyError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    #[error("the order amount must be positive, got {0}")]
    AmountNotPositive(String),
    #[error("a payment needs 1 to {max} funding sources, got {given}")]
    FundingCount { given: usize, max: usize },
    #[error("funding {index} is in {found}, the order is in {expected}")]
    CurrencyMismatch {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("funding {index} must be a positive amount, got {amount}")]
    FundingNotPositive { index: usize, amount: String },
    #[error("only one funding may take the rest of the order")]
    SeveralRests,
    #[error("the fundings sum to {funded}, the order is {order}")]
    FundingsDoNotSum { funded: String, order: String },
    #[error("funding {index} repeats source {source_name}; combine them into one")]
    DuplicateSource { index: usize, source_name: String },
    #[error("installment term {0} is not offered; choose 1, 3, 6, 12 or 24")]
    InstallmentTermNotOffered(u32),
    #[error("card token {0}")]
    InvalidCardToken(&'static str),
    #[error("a payment in status {status} cannot {action}")]
    InvalidTransition {
        status: &'static str,
        action: &'static str,
    },
    #[error("leg {0} does not exist")]
    LegNotFound(usize),
    #[error("leg {leg} is {status}, expected {expected}")]
    LegState {
        leg: usize,
        status: &'static str,
        expected: &'static str,
    },
    #[error("{0} legs are still reserved; release them before the payment can end")]
    LegsStillReserved(usize),
    #[error("the payment expired at {0}")]
    Expired(String),
    #[error("capture of {requested} exceeds the authorised {authorized}")]
    CaptureExceedsAuthorized {
        requested: String,
        authorized: String,
    },
    #[error("refund of {requested} exceeds the refundable {refundable}")]
    RefundExceedsPaid {
        requested: String,
        refundable: String,
    },
    #[error(
        "the annual yield must be between 0 and 1 with at most {max_scale} decimals, got {rate}"
    )]
    InvalidYieldRate { rate: String, max_scale: u32 },
    #[error("instant redemption of {requested} exceeds what is left of today's limit, {left}")]
    InstantRedemptionLimit { requested: String, left: String },
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A state the rules make impossible was reached: a bug, never the caller's fault.
    #[error("internal payment error: {0}")]
    Internal(&'static str),
}

impl PaymentError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::AmountNotPositive(_) => "amount_not_positive",
            PaymentError::FundingCount { .. } => "funding_count",
            PaymentError::CurrencyMismatch { .. } => "currency_mismatch",
            PaymentError::FundingNotPositive { .. } => "funding_not_positive",
            PaymentError::SeveralRests => "funding_several_rests",
            PaymentError::FundingsDoNotSum { .. } => "fundings_do_not_sum",
            PaymentError::DuplicateSource { .. } => "funding_duplicate_source",
            PaymentError::InstallmentTermNotOffered(_) => "installment_term_not_offered",
            PaymentError::InvalidCardToken(_) => "invalid_card_token",
            PaymentError::InvalidTransition { .. } => "payment_state_conflict",
            PaymentError::LegNotFound(_) => "payment_leg_not_found",
            PaymentError::LegState { .. } => "payment_leg_state_conflict",
            PaymentError::LegsStillReserved(_) => "payment_legs_still_reserved",
            PaymentError::Expired(_) => "payment_expired",
            PaymentError::CaptureExceedsAuthorized { .. } => "capture_exceeds_authorized",
            PaymentError::RefundExceedsPaid { .. } => "refund_exceeds_paid",
            PaymentError::InvalidYieldRate { .. } => "invalid_yield_rate",
            PaymentError::InstantRedemptionLimit { .. } => "instant_redemption_limit",
            PaymentError::Money(MoneyError::Overflow) => "amount_overflow",
            PaymentError::Money(_) => "invalid_amount",
            PaymentError::Internal(_) => "payment_internal",
        }
    }
}
