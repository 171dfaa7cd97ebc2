//! An in-memory ledger that applies the same rules as the stored one, with idempotency.
//! It is the reference model for property and differential tests.

use crate::account::{AccountState, Actor};
use crate::command::{Command, Outcome};
use crate::entry::{Entry, LegRecord};
use crate::error::LedgerError;
use crate::hold::{Hold, HoldStatus};
use crate::working::{NewIds, Working};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use tally_core::{AccountId, Currency, EntryId, HoldId};
use uuid::Uuid;

/// Why the in-memory ledger refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("idempotency key {0:?} was used for a different request")]
    KeyReused(String),
}

#[derive(Debug, Default)]
pub struct MemoryLedger {
    working: Working,
    entries: Vec<Entry>,
    legs: Vec<LegRecord>,
    replies: HashMap<String, (Command, Outcome)>,
    next_id: u128,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn mint(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    /// Applies a command under an idempotency key: a replay of the same key and command
    /// returns the first outcome; the same key with another command is refused.
    pub fn apply(
        &mut self,
        key: &str,
        command: &Command,
        now: Timestamp,
    ) -> Result<Outcome, MemoryError> {
        self.apply_as(&Actor::Client, key, command, now)
    }

    /// Applies a command of `actor` under an idempotency key, as [`MemoryLedger::apply`].
    pub fn apply_as(
        &mut self,
        actor: &Actor,
        key: &str,
        command: &Command,
        now: Timestamp,
    ) -> Result<Outcome, MemoryError> {
        if let Some((first, outcome)) = self.replies.get(key) {
            // A retry is answered only to an actor that may apply the command.
            self.working.check_actor(actor, command)?;
            if first == command {
                return Ok(outcome.clone());
            }
            return Err(MemoryError::KeyReused(key.to_string()));
        }
        self.expire_due(now);
        let ids = NewIds {
            account: AccountId(self.mint()),
            entry: EntryId(self.mint()),
            hold: HoldId(self.mint()),
        };
        let outcome = self.working.apply_as(actor, command, ids, now)?;
        let effects = self.working.take_effects();
        self.entries.extend(effects.entries);
        self.legs.extend(effects.legs);
        self.replies
            .insert(key.to_string(), (command.clone(), outcome.clone()));
        Ok(outcome)
    }

    /// Expires every pending hold whose deadline is at or before `now`.
    pub fn expire_due(&mut self, now: Timestamp) -> Vec<Hold> {
        let due: Vec<HoldId> = self
            .working
            .holds()
            .filter(|hold| hold.status == HoldStatus::Pending && hold.expires_at <= now)
            .map(|hold| hold.id)
            .collect();
        let expired = due
            .into_iter()
            .filter_map(|id| self.working.expire_hold(id, now).ok())
            .collect();
        let effects = self.working.take_effects();
        debug_assert!(effects.entries.is_empty());
        expired
    }

    pub fn account(&self, id: AccountId) -> Option<&AccountState> {
        self.working.account(id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountState> {
        self.working.accounts()
    }

    pub fn hold(&self, id: HoldId) -> Option<&Hold> {
        self.working.hold(id)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn legs(&self) -> &[LegRecord] {
        &self.legs
    }

    /// Sum of posted (debits − credits) over all accounts, per currency. Double entry
    /// means every total is zero.
    pub fn posted_totals(&self) -> BTreeMap<Currency, i128> {
        let mut totals = BTreeMap::new();
        for state in self.working.accounts() {
            *totals.entry(state.account.currency).or_insert(0) += state.balance.net_debit();
        }
        totals
    }

    /// Sum of pending (debits − credits) over all accounts, per currency; zero as well.
    pub fn pending_totals(&self) -> BTreeMap<Currency, i128> {
        let mut totals = BTreeMap::new();
        for state in self.working.accounts() {
            *totals.entry(state.account.currency).or_insert(0) +=
                i128::from(state.balance.debits_pending)
                    - i128::from(state.balance.credits_pending);
        }
        totals
    }
}
