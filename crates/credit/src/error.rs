//! Why a credit operation was refused. Each kind has a stable code that clients can match on.

use tally_core::MoneyError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreditError {
    #[error("invalid product: {0}")]
    InvalidProduct(String),
    #[error("product {product} does not offer a term of {periods} periods")]
    TermNotOffered { product: String, periods: u32 },
    #[error("amount must be positive, got {0}")]
    AmountNotPositive(String),
    #[error("currency mismatch: {0}")]
    CurrencyMismatch(String),
    #[error("statement day must be 1 to 28, got {0}")]
    InvalidStatementDay(i8),
    #[error(
        "due_days must be 1 to 28 (a statement must fall due by the next statement date), got {0}"
    )]
    InvalidDueDays(i32),
    #[error("insufficient available credit: requested {requested}, available {available}")]
    InsufficientCredit {
        requested: String,
        available: String,
    },
    #[error("the account is frozen")]
    AccountFrozen,
    #[error("a stolen-account claim (case {0}) is open on the account: its authorisations wait for the case to be decided")]
    StolenAccountClaimOpen(String),
    #[error("no stolen-account claim of case {0} is on the account")]
    StolenAccountClaimNotFound(String),
    #[error("the account is closed")]
    AccountClosed,
    #[error("plan {0} does not exist")]
    PlanNotFound(u32),
    #[error("plan {0} is already settled or written off")]
    PlanNotActive(u32),
    #[error("refund of {requested} exceeds the refundable principal {refundable}")]
    RefundExceedsPrincipal {
        requested: String,
        refundable: String,
    },
    #[error("authorisation {0} does not exist, was captured or voided, or has expired")]
    AuthorizationNotFound(u32),
    #[error("capture of {requested} exceeds the authorised {authorized}")]
    CaptureExceedsAuthorization {
        requested: String,
        authorized: String,
    },
    #[error("the account cannot be closed: it owes {owes} and holds {held}")]
    AccountNotSettled { owes: String, held: String },
    #[error("the account cannot be closed: the customer's credit balance of {0} must be paid back first")]
    CreditBalanceOwed(String),
    #[error("the account is charged off: its credit balance stays against the debt charged off")]
    AccountChargedOff,
    #[error("payout of {requested} exceeds what can be paid out, {payable} (credit balance {credit_balance} less {billed} billed and still owed, which it settles first)")]
    PayoutExceedsCreditBalance {
        requested: String,
        payable: String,
        credit_balance: String,
        billed: String,
    },
    #[error("a returned payout of {returned} is more than the {paid_out} paid out of the credit balance")]
    PayoutReturnExceedsPaidOut { returned: String, paid_out: String },
    #[error("amounts too large: {0}")]
    AmountTooLarge(String),
    #[error("paying plan {plan} off needs {needed}, got {given}")]
    PayoffBelowQuote {
        plan: u32,
        needed: String,
        given: String,
    },
    #[error("statement cannot be put into installments: {0}")]
    BillInstallmentRefused(String),
    #[error("the internal rate of return did not converge: {0}")]
    RateNotFound(&'static str),
    #[error("date out of range: {0}")]
    DateOutOfRange(String),
    #[error("end of day for {requested} cannot run: the last date run is {last}; run every date in order")]
    EndOfDayOutOfOrder { last: String, requested: String },
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
    #[error("money: {0}")]
    Money(#[source] MoneyError),
    /// A sum of money would not fit in an amount (64-bit minor units): refused, never
    /// clamped or wrapped.
    #[error("amount overflow: {0}")]
    AmountOverflow(String),
    /// A state the credit rules never produce (a broken invariant): reported, not panicked
    /// on, and never papered over with a made-up amount.
    #[error("internal error of the credit rules: {0}")]
    Internal(String),
}

impl From<MoneyError> for CreditError {
    /// An overflow of money arithmetic is `amount_overflow`, like the ledger's; other money
    /// errors keep their own variant.
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::Overflow => CreditError::AmountOverflow(error.to_string()),
            other => CreditError::Money(other),
        }
    }
}

impl CreditError {
    /// The stable code of this error on the API. Never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            CreditError::InvalidProduct(_) => "credit_invalid_product",
            CreditError::TermNotOffered { .. } => "credit_term_not_offered",
            CreditError::AmountNotPositive(_) => "amount_not_positive",
            CreditError::CurrencyMismatch(_) => "currency_mismatch",
            CreditError::InvalidStatementDay(_) => "credit_invalid_statement_day",
            CreditError::InvalidDueDays(_) => "credit_invalid_due_days",
            CreditError::InsufficientCredit { .. } => "credit_insufficient",
            CreditError::AccountFrozen => "credit_account_frozen",
            CreditError::StolenAccountClaimOpen(_) => "credit_stolen_account_claim_open",
            CreditError::StolenAccountClaimNotFound(_) => "credit_stolen_account_claim_not_found",
            CreditError::AccountClosed => "credit_account_closed",
            CreditError::PlanNotFound(_) => "credit_plan_not_found",
            CreditError::PlanNotActive(_) => "credit_plan_not_active",
            CreditError::RefundExceedsPrincipal { .. } => "credit_refund_exceeds_principal",
            CreditError::AuthorizationNotFound(_) => "credit_authorization_not_found",
            CreditError::CaptureExceedsAuthorization { .. } => {
                "credit_capture_exceeds_authorization"
            }
            CreditError::AccountNotSettled { .. } => "credit_account_not_settled",
            CreditError::CreditBalanceOwed(_) => "credit_account_has_credit_balance",
            CreditError::AccountChargedOff => "credit_account_charged_off",
            CreditError::PayoutExceedsCreditBalance { .. } => {
                "credit_payout_exceeds_credit_balance"
            }
            CreditError::PayoutReturnExceedsPaidOut { .. } => {
                "credit_payout_return_exceeds_paid_out"
            }
            CreditError::AmountTooLarge(_) => "credit_amount_too_large",
            CreditError::PayoffBelowQuote { .. } => "credit_payoff_below_quote",
            CreditError::BillInstallmentRefused(_) => "credit_bill_installment_refused",
            CreditError::RateNotFound(_) => "credit_rate_not_found",
            CreditError::DateOutOfRange(_) => "credit_date_out_of_range",
            CreditError::EndOfDayOutOfOrder { .. } => "credit_end_of_day_out_of_order",
            CreditError::InvalidConfiguration(_) => "credit_invalid_configuration",
            CreditError::Money(MoneyError::Overflow) | CreditError::AmountOverflow(_) => {
                "amount_overflow"
            }
            CreditError::Money(_) => "money_error",
            CreditError::Internal(_) => "credit_internal",
        }
    }
}

impl From<jiff::Error> for CreditError {
    fn from(error: jiff::Error) -> Self {
        CreditError::DateOutOfRange(error.to_string())
    }
}
