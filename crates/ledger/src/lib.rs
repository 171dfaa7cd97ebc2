//! Double-entry ledger rules of Tally, as pure logic with no I/O.
//!
//! The store loads the accounts a batch of commands touches into a [`Working`] set, applies
//! the commands here, and writes back what changed. [`MemoryLedger`] applies the same rules
//! to in-memory maps; property tests use it as the reference the stored ledger must match.
//!
//! Invariants, checked on every write:
//! - a journal entry has two or more legs, every leg amount is positive, every leg is in its
//!   account's currency, and debits equal credits per currency;
//! - no entry's legs on one account net to zero (such legs move nothing and only inflate
//!   the account's totals), and no entry or hold moves more than the configured
//!   `entry_amount_max`, so that the totals, which only grow, last through any valid use;
//! - an account flagged `debits_must_not_exceed_credits` never has posted plus pending
//!   debits above its posted credits (and the mirror rule for the other flag);
//! - a hold reserves its amount as pending on both accounts until it is posted (all or
//!   part, the rest released), voided or expired; each hold is resolved at most once;
//! - nothing is edited: balances only change by new legs and holds.

pub mod account;
pub mod command;
pub mod entry;
pub mod error;
pub mod hold;
pub mod memory;
pub mod working;

pub use account::{
    code_for_comparison, forbidden_in_code, Account, AccountFlags, AccountKind, AccountNamespaces,
    AccountState, Actor, Balance, NewAccount,
};
pub use command::{Command, Outcome};
pub use entry::{Entry, Leg, LegRecord, NewEntry, NewLeg, Side};
pub use error::LedgerError;
pub use hold::{Hold, HoldStatus, NewHold};
pub use memory::MemoryLedger;
pub use working::Working;

/// Most legs one journal entry may have.
pub const LEGS_PER_ENTRY_MAX: usize = 128;
/// Longest account code, description or metadata value accepted, in bytes.
pub const TEXT_LENGTH_MAX: usize = 1024;
/// Most metadata keys on one account, entry or hold.
pub const METADATA_KEYS_MAX: usize = 32;
/// The default of the largest amount one entry (its debits in one currency) or one hold may
/// move, in minor units: 10^13, a hundred billion in a currency of two decimals. With it an
/// account's posted totals, which only grow, need over 900,000 entries of the largest
/// amount before they could reach `i64::MAX`; a lender configures it with
/// `[ledger] entry_amount_max`.
pub const ENTRY_AMOUNT_MAX_DEFAULT: i64 = 10_000_000_000_000;
