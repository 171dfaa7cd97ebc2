//! Holds: an amount reserved from one account to another, posted, voided or expired later.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, EntryId, HoldId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewHold {
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: Amount,
    pub expires_at: Timestamp,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl HoldStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            HoldStatus::Pending => "pending",
            HoldStatus::Posted => "posted",
            HoldStatus::Voided => "voided",
            HoldStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => HoldStatus::Pending,
            "posted" => HoldStatus::Posted,
            "voided" => HoldStatus::Voided,
            "expired" => HoldStatus::Expired,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: Amount,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    pub status: HoldStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was posted, voided or expired.
    pub resolved_at: Option<Timestamp>,
    /// The amount posted (the rest was released), when posted.
    pub posted_amount: Option<Amount>,
    /// The journal entry that posted it, when posted.
    pub entry_id: Option<EntryId>,
}
