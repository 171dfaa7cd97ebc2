//! The writes a client can ask of the ledger, and what each produces.

use crate::account::{Account, NewAccount};
use crate::entry::{Entry, NewEntry};
use crate::hold::{Hold, NewHold};
use serde::{Deserialize, Serialize};
use tally_core::{Amount, HoldId};

/// One write. Each is applied atomically and idempotently under its client key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Command {
    CreateAccount(NewAccount),
    PostEntry(NewEntry),
    CreateHold(NewHold),
    /// Posts `amount` of the hold (all of it when `None`); the rest is released.
    PostHold {
        hold_id: HoldId,
        amount: Option<Amount>,
    },
    VoidHold {
        hold_id: HoldId,
    },
}

/// What a successful write produced. Replaying its idempotency key returns this again.
/// Tagged `outcome`, a name no payload type uses as a field (an `Account` has a `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Account(Account),
    Entry(Entry),
    Hold(Hold),
    /// A posted hold and the entry that posted it.
    PostedHold {
        hold: Hold,
        entry: Entry,
    },
}
