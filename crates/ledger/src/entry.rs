//! Journal entries and their legs.

use crate::account::Balance;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, EntryId, HoldId};

/// Which side of an account a leg lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn as_str(&self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }
}

/// One leg of a requested entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLeg {
    pub account_id: AccountId,
    pub side: Side,
    pub amount: Amount,
}

/// What a client asks to post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub legs: Vec<NewLeg>,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
}

/// A leg as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub account_id: AccountId,
    pub side: Side,
    pub amount: Amount,
}

/// A journal entry as posted. Immutable: a correction is a new, reversing entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    pub legs: Vec<Leg>,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    pub posted_at: Timestamp,
    /// The hold this entry posted, if it came from one.
    pub hold_id: Option<HoldId>,
}

/// A leg as it is stored for its account: with the account's sequence number and the
/// account's posted totals right after it, so that a balance as of any time is one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegRecord {
    pub entry_id: EntryId,
    pub account_id: AccountId,
    pub sequence: i64,
    pub side: Side,
    pub amount: Amount,
    pub posted_at: Timestamp,
    pub balance_after: Balance,
}
