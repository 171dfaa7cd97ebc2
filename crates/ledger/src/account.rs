//! Accounts, their flags, and their balances.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency};

/// The five kinds of account in double-entry bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

impl AccountKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountKind::Asset => "asset",
            AccountKind::Liability => "liability",
            AccountKind::Equity => "equity",
            AccountKind::Income => "income",
            AccountKind::Expense => "expense",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "asset" => AccountKind::Asset,
            "liability" => AccountKind::Liability,
            "equity" => AccountKind::Equity,
            "income" => AccountKind::Income,
            "expense" => AccountKind::Expense,
            _ => return None,
        })
    }
}

/// Balance limits. At most one may be set: both together would freeze the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountFlags {
    /// Posted plus pending debits may never exceed posted credits (a wallet cannot go below zero).
    pub debits_must_not_exceed_credits: bool,
    /// Posted plus pending credits may never exceed posted debits.
    pub credits_must_not_exceed_debits: bool,
}

/// What a client asks for when opening an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub code: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
    pub metadata: BTreeMap<String, String>,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub code: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
    pub metadata: BTreeMap<String, String>,
    pub created_at: Timestamp,
}

/// Running totals of an account in minor units. Totals only grow, except pending amounts,
/// which fall when a hold is resolved. They are non-negative by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

impl Balance {
    /// Posted debits minus posted credits: positive for a funded asset account.
    pub fn net_debit(&self) -> i128 {
        i128::from(self.debits_posted) - i128::from(self.credits_posted)
    }

    /// Whether the balance respects the account's flags.
    pub fn within_limits(&self, flags: AccountFlags) -> bool {
        let debits = i128::from(self.debits_posted) + i128::from(self.debits_pending);
        let credits = i128::from(self.credits_posted) + i128::from(self.credits_pending);
        let debits_ok =
            !flags.debits_must_not_exceed_credits || debits <= i128::from(self.credits_posted);
        let credits_ok =
            !flags.credits_must_not_exceed_debits || credits <= i128::from(self.debits_posted);
        debits_ok && credits_ok
    }

    /// The amount that can still be debited under `debits_must_not_exceed_credits`.
    pub fn available_to_debit(&self) -> i128 {
        i128::from(self.credits_posted)
            - i128::from(self.debits_posted)
            - i128::from(self.debits_pending)
    }

    pub fn posted_amount(&self, currency: Currency) -> Option<Amount> {
        i64::try_from(self.net_debit())
            .ok()
            .map(|minor| Amount::new(minor, currency))
    }
}

/// An account with its current balance and the number of legs posted to it so far (the
/// sequence number of its latest leg, used as the pagination cursor of its entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub account: Account,
    pub balance: Balance,
    pub leg_count: i64,
    /// When its latest leg was posted. New legs are never posted before it, so an
    /// account's legs are in time order even when writers' clocks disagree.
    pub last_posted_at: Option<Timestamp>,
}
