//! Why the ledger refused a write. Each kind has a stable code that clients can match on.

use tally_core::{AccountId, Currency, HoldId, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error("account {0} does not exist")]
    AccountNotFound(AccountId),
    #[error("account code {0:?} is already taken")]
    AccountCodeTaken(String),
    #[error("hold {0} does not exist")]
    HoldNotFound(HoldId),
    #[error("a journal entry needs at least two legs, got {0}")]
    TooFewLegs(usize),
    #[error("a journal entry may have at most {max} legs, got {count}")]
    TooManyLegs { count: usize, max: usize },
    #[error("amounts must be positive, got {0}")]
    AmountNotPositive(String),
    #[error("leg in {leg} but account {account_id} is in {account}")]
    CurrencyMismatch {
        account_id: AccountId,
        account: Currency,
        leg: Currency,
    },
    #[error(
        "entry does not balance in {currency}: debits {debits} minor units, credits {credits}"
    )]
    Unbalanced {
        currency: Currency,
        debits: i128,
        credits: i128,
    },
    #[error("account {0}: debits would exceed credits")]
    ExceedsCredits(AccountId),
    #[error("account {0}: credits would exceed debits")]
    ExceedsDebits(AccountId),
    #[error("a hold needs two different accounts")]
    SameAccount,
    #[error(
        "account {account_id} belongs to Tally's {owner} service and only that service may move it"
    )]
    AccountOwnedByService {
        account_id: AccountId,
        owner: String,
    },
    #[error(
        "account {} lies outside the API key's account namespaces ({}): the key may open, move \
         and read only accounts whose codes start with one of them",
        describe_account(*account_id, code),
        namespaces.iter().map(|prefix| format!("{prefix:?}")).collect::<Vec<_>>().join(", ")
    )]
    AccountOutsideKeyNamespace {
        /// None for an account not opened yet.
        account_id: Option<AccountId>,
        code: String,
        namespaces: Vec<String>,
    },
    #[error("account {0} is debited and credited the same amount in one entry: that moves nothing on the account and only inflates its totals")]
    NetsToZero(AccountId),
    #[error("{amount} minor units in {currency} is above the most one entry or hold may move ({max} minor units, the ledger's entry_amount_max)")]
    AmountAboveMaximum {
        currency: Currency,
        amount: i128,
        max: i64,
    },
    #[error("hold expiry {0} is not in the future")]
    ExpiryNotInFuture(String),
    #[error("hold {hold_id} is {status}, not pending")]
    HoldNotPending {
        hold_id: HoldId,
        status: &'static str,
    },
    #[error("cannot post {requested} minor units of hold {hold_id}: it reserves {held}")]
    PostExceedsHold {
        hold_id: HoldId,
        requested: i64,
        held: i64,
    },
    #[error("account flags debits_must_not_exceed_credits and credits_must_not_exceed_debits cannot both be set")]
    ConflictingFlags,
    #[error("invalid field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("total overflows 64-bit minor units")]
    Overflow,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// An account in a refusal: its id and code, or its code alone before it is opened.
fn describe_account(account_id: Option<AccountId>, code: &str) -> String {
    match account_id {
        Some(id) => format!("{id} ({code:?})"),
        None => format!("{code:?}"),
    }
}

impl LedgerError {
    /// The stable code of this error on the API. Never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::AccountNotFound(_) => "account_not_found",
            LedgerError::AccountCodeTaken(_) => "account_code_taken",
            LedgerError::HoldNotFound(_) => "hold_not_found",
            LedgerError::TooFewLegs(_) => "entry_too_few_legs",
            LedgerError::TooManyLegs { .. } => "entry_too_many_legs",
            LedgerError::AmountNotPositive(_) => "amount_not_positive",
            LedgerError::CurrencyMismatch { .. } => "currency_mismatch",
            LedgerError::Unbalanced { .. } => "entry_unbalanced",
            LedgerError::ExceedsCredits(_) => "exceeds_credits",
            LedgerError::ExceedsDebits(_) => "exceeds_debits",
            LedgerError::SameAccount => "hold_same_account",
            LedgerError::AccountOwnedByService { .. } => "account_owned_by_service",
            LedgerError::AccountOutsideKeyNamespace { .. } => "account_outside_key_namespace",
            LedgerError::NetsToZero(_) => "entry_nets_to_zero_on_account",
            LedgerError::AmountAboveMaximum { .. } => "entry_amount_too_large",
            LedgerError::ExpiryNotInFuture(_) => "hold_expiry_not_in_future",
            LedgerError::HoldNotPending { .. } => "hold_not_pending",
            LedgerError::PostExceedsHold { .. } => "post_exceeds_hold",
            LedgerError::ConflictingFlags => "account_flags_conflict",
            LedgerError::InvalidField { .. } => "invalid_field",
            LedgerError::Overflow => "amount_overflow",
            LedgerError::Money(MoneyError::CurrencyMismatch { .. }) => "currency_mismatch",
            LedgerError::Money(MoneyError::Overflow) => "amount_overflow",
            LedgerError::Money(_) => "invalid_amount",
        }
    }
}
