//! The credit service's own ledger accounts (receivable, clearing, payables, income and
//! expense per currency), opened through the ledger writer as the credit service's and found
//! again by their code; and the keys and codes reserved for the service.

use crate::credit::end_of_day::EndOfDayError;
use crate::service_accounts::{open_service_account, owner_metadata, ServiceAccountError};
use std::collections::BTreeMap;
use tally_core::{AccountId, Currency};
use tally_credit::{LedgerRole, Posting};
use tally_ledger::{AccountFlags, AccountKind, Actor, NewAccount};
use tally_store::{Database, LedgerWriter};

/// Prefixes of the idempotency keys Tally makes for itself: the credit service's ledger
/// commands (`credit:{key}:{index}`, `credit:{key}:hold`), its ledger accounts
/// (`credit-ledger-account:{code}`) and end of day (`credit-eod:…`, both ledger keys and
/// credit operation keys). A client key must not start with one of them, or it could take a
/// key the service needs (or be overwritten by it).
pub const RESERVED_KEY_PREFIXES: [&str; 2] = ["credit:", "credit-"];

/// Prefix of the ledger account codes of the credit business (`credit-receivable-CNY`, see
/// [`ledger_account_code`]): a client may not open a ledger account under such a code.
pub const RESERVED_ACCOUNT_CODE_PREFIX: &str = "credit-";

/// The credit service as an actor of the ledger: the accounts it opens are its own, and
/// no client may move them.
pub const CREDIT_SERVICE: Actor = Actor::Service("credit");

/// The reserved prefix `key` starts with, if any (see [`RESERVED_KEY_PREFIXES`]).
pub fn reserved_key_prefix(key: &str) -> Option<&'static str> {
    RESERVED_KEY_PREFIXES
        .into_iter()
        .find(|prefix| key.starts_with(prefix))
}

/// The ledger account of each role, for one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditLedgerAccounts {
    pub currency: Currency,
    pub accounts: BTreeMap<LedgerRole, AccountId>,
}

impl CreditLedgerAccounts {
    pub fn account_of(&self, role: LedgerRole) -> AccountId {
        // Every role is created by `credit_ledger_accounts`, so the lookup cannot miss.
        self.accounts
            .get(&role)
            .copied()
            .unwrap_or(AccountId(uuid::Uuid::nil()))
    }

    /// The ledger entry of `posting`.
    pub fn entry(&self, posting: &Posting) -> tally_ledger::NewEntry {
        posting.to_new_entry(|role| self.account_of(role))
    }
}

/// Every ledger role of the credit business.
pub const LEDGER_ROLES: [LedgerRole; 11] = [
    LedgerRole::CustomerReceivable,
    LedgerRole::RepaymentClearing,
    LedgerRole::MerchantPayable,
    LedgerRole::CustomerCreditBalance,
    LedgerRole::CustomerPayoutPayable,
    LedgerRole::FeeIncome,
    LedgerRole::InterestIncome,
    LedgerRole::PenaltyIncome,
    LedgerRole::MerchantDiscountIncome,
    LedgerRole::FraudLossExpense,
    LedgerRole::ChargeOffExpense,
];

/// The ledger account code of a role in a currency, e.g. `credit-receivable-CNY`.
pub fn ledger_account_code(role: LedgerRole, currency: Currency) -> String {
    let name = match role {
        LedgerRole::CustomerReceivable => "receivable",
        LedgerRole::RepaymentClearing => "repayment-clearing",
        LedgerRole::MerchantPayable => "merchant-payable",
        LedgerRole::CustomerCreditBalance => "credit-balance",
        LedgerRole::CustomerPayoutPayable => "payout-payable",
        LedgerRole::FeeIncome => "fee-income",
        LedgerRole::InterestIncome => "interest-income",
        LedgerRole::PenaltyIncome => "penalty-income",
        LedgerRole::MerchantDiscountIncome => "merchant-discount-income",
        LedgerRole::FraudLossExpense => "fraud-loss-expense",
        LedgerRole::ChargeOffExpense => "charge-off-expense",
    };
    format!("credit-{name}-{}", currency.code())
}

fn ledger_account_kind(role: LedgerRole) -> (AccountKind, AccountFlags) {
    let mut flags = AccountFlags::default();
    let kind = match role {
        LedgerRole::CustomerReceivable => {
            flags.credits_must_not_exceed_debits = true;
            AccountKind::Asset
        }
        LedgerRole::RepaymentClearing => AccountKind::Asset,
        LedgerRole::CustomerCreditBalance => {
            flags.debits_must_not_exceed_credits = true;
            AccountKind::Liability
        }
        // Debited when the payment system settles a payout: never more than was paid out.
        LedgerRole::CustomerPayoutPayable => {
            flags.debits_must_not_exceed_credits = true;
            AccountKind::Liability
        }
        LedgerRole::MerchantPayable => AccountKind::Liability,
        LedgerRole::FeeIncome
        | LedgerRole::InterestIncome
        | LedgerRole::PenaltyIncome
        | LedgerRole::MerchantDiscountIncome => AccountKind::Income,
        LedgerRole::FraudLossExpense | LedgerRole::ChargeOffExpense => AccountKind::Expense,
    };
    (kind, flags)
}

/// The ledger accounts of the credit business in `currency`, found by code, or created on
/// first use through the writer (idempotency key `credit-ledger-account:{code}`).
pub async fn credit_ledger_accounts(
    database: &Database,
    writer: &LedgerWriter,
    currency: Currency,
) -> Result<CreditLedgerAccounts, EndOfDayError> {
    let mut accounts = BTreeMap::new();
    for role in LEDGER_ROLES {
        let (kind, flags) = ledger_account_kind(role);
        let wanted = NewAccount {
            code: ledger_account_code(role, currency),
            kind,
            currency,
            flags,
            metadata: owner_metadata(&CREDIT_SERVICE),
        };
        let id = open_service_account(
            database,
            writer,
            CREDIT_SERVICE,
            "credit-ledger-account:",
            wanted,
        )
        .await
        .map_err(|error| match error {
            ServiceAccountError::Store(error) => EndOfDayError::Store(error),
            ServiceAccountError::Posting { key, error } => EndOfDayError::Posting { key, error },
            ServiceAccountError::Conflict(message) => EndOfDayError::LedgerConflict(message),
        })?;
        accounts.insert(role, id);
    }
    Ok(CreditLedgerAccounts { currency, accounts })
}
