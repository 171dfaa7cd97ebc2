//! Accounts, their flags, and their balances.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{AccountId, Currency};

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
    /// The Tally service that opened the account and alone may move it (`credit`), or
    /// `None` for an account a client opened through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Who asks for a write: a client of the API, a client whose API key is limited to
/// account-code namespaces, or one of Tally's own services by name. An account a service
/// opened can be moved only by that service, so that no client can post to the books a
/// service keeps in step with its own records (the credit service's receivables, for one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    Client,
    /// A client that may open, move and read only accounts whose codes start with one of
    /// these prefixes (a merchant's key kept to `merchant-a-` accounts).
    LimitedClient(AccountNamespaces),
    Service(&'static str),
}

impl Actor {
    /// The owner recorded on an account this actor opens.
    pub fn owner(&self) -> Option<String> {
        match self {
            Actor::Client | Actor::LimitedClient(_) => None,
            Actor::Service(name) => Some((*name).to_string()),
        }
    }

    /// Whether this actor may move `account`, as far as owners go.
    pub fn may_move(&self, account: &Account) -> bool {
        match (&account.owner, self) {
            (None, _) => true,
            (Some(owner), Actor::Service(name)) => owner == name,
            (Some(_), Actor::Client | Actor::LimitedClient(_)) => false,
        }
    }

    /// The namespaces this actor is limited to, if it is.
    pub fn namespaces(&self) -> Option<&AccountNamespaces> {
        match self {
            Actor::LimitedClient(namespaces) => Some(namespaces),
            Actor::Client | Actor::Service(_) => None,
        }
    }

    /// Whether an account with `code` lies within what this actor may open, move and read.
    pub fn may_touch_code(&self, code: &str) -> bool {
        self.namespaces()
            .is_none_or(|namespaces| namespaces.contains(code))
    }
}

/// Account-code prefixes an API key is limited to. Codes are compared as the ledger compares
/// them against reserved prefixes ([`code_for_comparison`]: compatibility forms folded,
/// lower case), so that `MERCHANT-A-1` and the full-width `ｍｅｒｃｈａｎｔ-ａ-1` are in the
/// namespace `merchant-a-`, and nothing outside it passes for inside by its letter case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountNamespaces {
    /// As given, to show.
    prefixes: Vec<String>,
    /// As compared.
    compared: Vec<String>,
}

impl AccountNamespaces {
    /// The namespaces of `prefixes`; `None` when there are none (a key without namespaces
    /// is not limited by code).
    pub fn new(prefixes: &[String]) -> Option<Self> {
        if prefixes.is_empty() {
            return None;
        }
        Some(Self {
            prefixes: prefixes.to_vec(),
            compared: prefixes
                .iter()
                .map(|prefix| code_for_comparison(prefix))
                .collect(),
        })
    }

    /// Whether `code` starts with one of the prefixes.
    pub fn contains(&self, code: &str) -> bool {
        let code = code_for_comparison(code);
        self.compared.iter().any(|prefix| code.starts_with(prefix))
    }

    /// The prefixes as given.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }
}

/// An account code as compared against reserved prefixes: Unicode compatibility forms
/// folded (NFKC, so the full-width `ｃｒｅｄｉｔ-` is `credit-`) and lower-cased, so that a
/// code cannot pass for a reserved one by its letter case or look-alike forms.
pub fn code_for_comparison(code: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    code.nfkc().collect::<String>().to_lowercase()
}

/// Whether `character` may not appear in an account code: control characters, and the
/// bidirectional formatting characters that make a code display otherwise than it reads
/// (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069).
pub fn forbidden_in_code(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
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
