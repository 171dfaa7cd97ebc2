//! The working set of one batch: the accounts and holds it touches, the rules applied to
//! them, and the effects to write back.

use crate::account::{forbidden_in_code, Account, AccountState, Actor, Balance, NewAccount};
use crate::command::{Command, Outcome};
use crate::entry::{Entry, Leg, LegRecord, NewEntry, NewLeg, Side};
use crate::error::LedgerError;
use crate::hold::{Hold, HoldStatus, NewHold};
use crate::{ENTRY_AMOUNT_MAX_DEFAULT, LEGS_PER_ENTRY_MAX, METADATA_KEYS_MAX, TEXT_LENGTH_MAX};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tally_core::{AccountId, Amount, Currency, EntryId, HoldId};

/// Ids for whatever a command creates. The caller mints them (the pure ledger has no
/// randomness); unused ones are simply dropped.
#[derive(Debug, Clone, Copy)]
pub struct NewIds {
    pub account: AccountId,
    pub entry: EntryId,
    pub hold: HoldId,
}

/// What a batch changed, to be written to storage in one transaction.
#[derive(Debug, Default)]
pub struct Effects {
    pub new_accounts: Vec<Account>,
    /// Final balance, leg count and time of the latest leg of every account that changed.
    pub balances: Vec<(AccountId, Balance, i64, Option<Timestamp>)>,
    pub entries: Vec<Entry>,
    pub legs: Vec<LegRecord>,
    pub new_holds: Vec<Hold>,
    /// Holds that already existed and changed status.
    pub resolved_holds: Vec<Hold>,
}

/// Accounts and holds loaded for a batch, with the rules that change them.
#[derive(Debug)]
pub struct Working {
    /// The largest amount one entry (per currency) or hold may move, in minor units.
    entry_amount_max: i64,
    accounts: HashMap<AccountId, AccountState>,
    holds: HashMap<HoldId, Hold>,
    taken_codes: HashSet<String>,
    new_accounts: Vec<AccountId>,
    new_holds: BTreeSet<HoldId>,
    changed_accounts: BTreeSet<AccountId>,
    resolved_holds: BTreeSet<HoldId>,
    entries: Vec<Entry>,
    legs: Vec<LegRecord>,
}

fn check_text(field: &'static str, text: &str, allow_empty: bool) -> Result<(), LedgerError> {
    if !allow_empty && text.trim().is_empty() {
        return Err(LedgerError::InvalidField {
            field,
            reason: "must not be empty".into(),
        });
    }
    if text.len() > TEXT_LENGTH_MAX {
        return Err(LedgerError::InvalidField {
            field,
            reason: format!("longer than {TEXT_LENGTH_MAX} bytes"),
        });
    }
    Ok(())
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), LedgerError> {
    if metadata.len() > METADATA_KEYS_MAX {
        return Err(LedgerError::InvalidField {
            field: "metadata",
            reason: format!("more than {METADATA_KEYS_MAX} keys"),
        });
    }
    for (key, value) in metadata {
        check_text("metadata", key, false)?;
        check_text("metadata", value, true)?;
    }
    Ok(())
}

fn add(total: i64, amount: i64) -> Result<i64, LedgerError> {
    total.checked_add(amount).ok_or(LedgerError::Overflow)
}

fn subtract(total: i64, amount: i64) -> Result<i64, LedgerError> {
    // Pending totals are sums of live holds, so this never goes below zero; a broken
    // invariant is reported rather than stored.
    match total.checked_sub(amount) {
        Some(value) if value >= 0 => Ok(value),
        _ => Err(LedgerError::Overflow),
    }
}

impl Default for Working {
    fn default() -> Self {
        Self {
            entry_amount_max: ENTRY_AMOUNT_MAX_DEFAULT,
            accounts: HashMap::new(),
            holds: HashMap::new(),
            taken_codes: HashSet::new(),
            new_accounts: Vec::new(),
            new_holds: BTreeSet::new(),
            changed_accounts: BTreeSet::new(),
            resolved_holds: BTreeSet::new(),
            entries: Vec::new(),
            legs: Vec::new(),
        }
    }
}

impl Working {
    pub fn new() -> Self {
        Self::default()
    }

    /// A working set whose entries and holds may move at most `entry_amount_max` minor
    /// units each.
    pub fn with_entry_amount_max(entry_amount_max: i64) -> Self {
        Self {
            entry_amount_max,
            ..Self::default()
        }
    }

    fn check_amount_max(&self, currency: Currency, amount: i128) -> Result<(), LedgerError> {
        if amount > i128::from(self.entry_amount_max) {
            return Err(LedgerError::AmountAboveMaximum {
                currency,
                amount,
                max: self.entry_amount_max,
            });
        }
        Ok(())
    }

    /// Adds an account loaded from storage.
    pub fn load_account(&mut self, state: AccountState) {
        self.taken_codes.insert(state.account.code.clone());
        self.accounts.insert(state.account.id, state);
    }

    /// Adds a hold loaded from storage.
    pub fn load_hold(&mut self, hold: Hold) {
        self.holds.insert(hold.id, hold);
    }

    /// Marks an account code as taken by an account that was not loaded.
    pub fn mark_code_taken(&mut self, code: String) {
        self.taken_codes.insert(code);
    }

    pub fn account(&self, id: AccountId) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    pub fn hold(&self, id: HoldId) -> Option<&Hold> {
        self.holds.get(&id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountState> {
        self.accounts.values()
    }

    pub fn holds(&self) -> impl Iterator<Item = &Hold> {
        self.holds.values()
    }

    /// Applies one command of a client. On error nothing in the working set has changed.
    pub fn apply(
        &mut self,
        command: &Command,
        ids: NewIds,
        now: Timestamp,
    ) -> Result<Outcome, LedgerError> {
        self.apply_as(&Actor::Client, command, ids, now)
    }

    /// Applies one command of `actor`, who may move only the accounts it is allowed to
    /// ([`Actor::may_move`]). On error nothing in the working set has changed.
    pub fn apply_as(
        &mut self,
        actor: &Actor,
        command: &Command,
        ids: NewIds,
        now: Timestamp,
    ) -> Result<Outcome, LedgerError> {
        self.check_actor(actor, command)?;
        match command {
            Command::CreateAccount(new) => self
                .create_account_for(ids.account, new, actor.owner(), now)
                .map(Outcome::Account),
            Command::PostEntry(new) => self
                .post_entry(ids.entry, new, None, now)
                .map(Outcome::Entry),
            Command::CreateHold(new) => self.create_hold(ids.hold, new, now).map(Outcome::Hold),
            Command::PostHold { hold_id, amount } => self
                .post_hold(*hold_id, *amount, ids.entry, now)
                .map(|(hold, entry)| Outcome::PostedHold { hold, entry }),
            Command::VoidHold { hold_id } => self.void_hold(*hold_id, now).map(Outcome::Hold),
        }
    }

    /// Refuses a command `actor` may not apply: one that moves an account a service owns
    /// (unless the actor is that service), and, for a client limited to account-code
    /// namespaces, one that opens or touches an account whose code lies outside them.
    /// Accounts the command names but that do not exist are left to the command's own
    /// checks. The writer also asks this before answering a retry with a stored outcome.
    pub fn check_actor(&self, actor: &Actor, command: &Command) -> Result<(), LedgerError> {
        let outside =
            |account_id: Option<AccountId>, code: &str| LedgerError::AccountOutsideKeyNamespace {
                account_id,
                code: code.to_string(),
                namespaces: actor
                    .namespaces()
                    .map(|namespaces| namespaces.prefixes().to_vec())
                    .unwrap_or_default(),
            };
        let hold_accounts;
        let accounts: Vec<AccountId> = match command {
            Command::CreateAccount(new) => {
                if !actor.may_touch_code(&new.code) {
                    return Err(outside(None, &new.code));
                }
                return Ok(());
            }
            Command::PostEntry(new) => new.legs.iter().map(|leg| leg.account_id).collect(),
            Command::CreateHold(new) => vec![new.debit_account_id, new.credit_account_id],
            Command::PostHold { hold_id, .. } | Command::VoidHold { hold_id } => {
                hold_accounts = self
                    .holds
                    .get(hold_id)
                    .map(|hold| vec![hold.debit_account_id, hold.credit_account_id]);
                hold_accounts.unwrap_or_default()
            }
        };
        for account_id in accounts {
            if let Some(state) = self.accounts.get(&account_id) {
                if !actor.may_move(&state.account) {
                    return Err(LedgerError::AccountOwnedByService {
                        account_id,
                        owner: state.account.owner.clone().unwrap_or_default(),
                    });
                }
                if !actor.may_touch_code(&state.account.code) {
                    return Err(outside(Some(account_id), &state.account.code));
                }
            }
        }
        Ok(())
    }

    /// Opens an account for a client.
    pub fn create_account(
        &mut self,
        id: AccountId,
        new: &NewAccount,
        now: Timestamp,
    ) -> Result<Account, LedgerError> {
        self.create_account_for(id, new, None, now)
    }

    /// Opens an account owned by `owner` (a service's name), or by clients when `None`.
    fn create_account_for(
        &mut self,
        id: AccountId,
        new: &NewAccount,
        owner: Option<String>,
        now: Timestamp,
    ) -> Result<Account, LedgerError> {
        check_text("code", &new.code, false)?;
        if let Some(character) = new
            .code
            .chars()
            .find(|&character| forbidden_in_code(character))
        {
            return Err(LedgerError::InvalidField {
                field: "code",
                reason: format!(
                    "must not contain control or bidirectional formatting characters (found U+{:04X})",
                    u32::from(character)
                ),
            });
        }
        check_metadata(&new.metadata)?;
        if new.flags.debits_must_not_exceed_credits && new.flags.credits_must_not_exceed_debits {
            return Err(LedgerError::ConflictingFlags);
        }
        if self.taken_codes.contains(&new.code) {
            return Err(LedgerError::AccountCodeTaken(new.code.clone()));
        }
        let account = Account {
            id,
            code: new.code.clone(),
            kind: new.kind,
            currency: new.currency,
            flags: new.flags,
            metadata: new.metadata.clone(),
            created_at: now,
            owner,
        };
        self.load_account(AccountState {
            account: account.clone(),
            balance: Balance::default(),
            leg_count: 0,
            last_posted_at: None,
        });
        self.new_accounts.push(id);
        // A new account gets its (zero) balance row in the same batch.
        self.changed_accounts.insert(id);
        Ok(account)
    }

    fn state(&self, id: AccountId) -> Result<&AccountState, LedgerError> {
        self.accounts
            .get(&id)
            .ok_or(LedgerError::AccountNotFound(id))
    }

    fn check_leg_amount(
        &self,
        account_id: AccountId,
        amount: Amount,
    ) -> Result<Currency, LedgerError> {
        let state = self.state(account_id)?;
        if !amount.is_positive() {
            return Err(LedgerError::AmountNotPositive(amount.to_string()));
        }
        if amount.currency() != state.account.currency {
            return Err(LedgerError::CurrencyMismatch {
                account_id,
                account: state.account.currency,
                leg: amount.currency(),
            });
        }
        Ok(state.account.currency)
    }

    fn check_limits(&self, id: AccountId, balance: &Balance) -> Result<(), LedgerError> {
        let flags = self.state(id)?.account.flags;
        if balance.within_limits(flags) {
            return Ok(());
        }
        if flags.debits_must_not_exceed_credits {
            Err(LedgerError::ExceedsCredits(id))
        } else {
            Err(LedgerError::ExceedsDebits(id))
        }
    }

    /// Posts a balanced entry. `hold_id` is set when the entry posts a hold, in which case
    /// the caller has already released the hold's pending amounts in `pending_release`.
    pub fn post_entry(
        &mut self,
        id: EntryId,
        new: &NewEntry,
        hold_id: Option<HoldId>,
        now: Timestamp,
    ) -> Result<Entry, LedgerError> {
        self.post_entry_releasing(id, new, hold_id, None, now)
    }

    /// The debits and credits of an entry per currency, refusing an entry whose legs on
    /// one account net to zero. (An account may be on both sides with different amounts:
    /// the credit service posts gross legs, interest charged and principal repaid, on its
    /// receivable in one entry; what such legs add to the totals is bounded by the
    /// entry's maximum like any other entry's.)
    fn debits_per_currency(
        &self,
        new: &NewEntry,
    ) -> Result<BTreeMap<Currency, (i128, i128)>, LedgerError> {
        let mut totals: BTreeMap<Currency, (i128, i128)> = BTreeMap::new();
        let mut per_account: BTreeMap<AccountId, (i128, i128)> = BTreeMap::new();
        for leg in &new.legs {
            let currency = self.check_leg_amount(leg.account_id, leg.amount)?;
            let minor = i128::from(leg.amount.minor());
            let total = totals.entry(currency).or_default();
            let account = per_account.entry(leg.account_id).or_default();
            match leg.side {
                Side::Debit => {
                    total.0 += minor;
                    account.0 += minor;
                }
                Side::Credit => {
                    total.1 += minor;
                    account.1 += minor;
                }
            }
        }
        if let Some((account_id, _)) = per_account
            .iter()
            .find(|(_, (debits, credits))| debits == credits)
        {
            return Err(LedgerError::NetsToZero(*account_id));
        }
        Ok(totals)
    }

    fn post_entry_releasing(
        &mut self,
        id: EntryId,
        new: &NewEntry,
        hold_id: Option<HoldId>,
        pending_release: Option<&Hold>,
        now: Timestamp,
    ) -> Result<Entry, LedgerError> {
        check_text("description", &new.description, true)?;
        check_metadata(&new.metadata)?;
        if new.legs.len() < 2 {
            return Err(LedgerError::TooFewLegs(new.legs.len()));
        }
        if new.legs.len() > LEGS_PER_ENTRY_MAX {
            return Err(LedgerError::TooManyLegs {
                count: new.legs.len(),
                max: LEGS_PER_ENTRY_MAX,
            });
        }
        let totals = self.debits_per_currency(new)?;
        for (currency, (debits, credits)) in &totals {
            if debits != credits {
                return Err(LedgerError::Unbalanced {
                    currency: *currency,
                    debits: *debits,
                    credits: *credits,
                });
            }
            // Posting a hold moves no more than the hold reserved, which was checked when
            // it was created (a hold from before the maximum was lowered still posts).
            if pending_release.is_none() {
                self.check_amount_max(*currency, *debits)?;
            }
        }
        // Work on copies so that a refusal leaves the working set untouched.
        let mut balances: BTreeMap<AccountId, (Balance, i64)> = BTreeMap::new();
        // Never before an account's latest leg: its legs stay in time order.
        let mut now = now;
        for leg in &new.legs {
            let state = self.state(leg.account_id)?;
            balances
                .entry(leg.account_id)
                .or_insert((state.balance, state.leg_count));
            if let Some(last) = state.last_posted_at {
                now = now.max(last);
            }
        }
        if let Some(hold) = pending_release {
            let debit = balances
                .get_mut(&hold.debit_account_id)
                .ok_or(LedgerError::AccountNotFound(hold.debit_account_id))?;
            debit.0.debits_pending = subtract(debit.0.debits_pending, hold.amount.minor())?;
            let credit = balances
                .get_mut(&hold.credit_account_id)
                .ok_or(LedgerError::AccountNotFound(hold.credit_account_id))?;
            credit.0.credits_pending = subtract(credit.0.credits_pending, hold.amount.minor())?;
        }
        let mut legs = Vec::with_capacity(new.legs.len());
        for leg in &new.legs {
            let (balance, leg_count) = balances
                .get_mut(&leg.account_id)
                .ok_or(LedgerError::AccountNotFound(leg.account_id))?;
            match leg.side {
                Side::Debit => {
                    balance.debits_posted = add(balance.debits_posted, leg.amount.minor())?
                }
                Side::Credit => {
                    balance.credits_posted = add(balance.credits_posted, leg.amount.minor())?
                }
            }
            *leg_count += 1;
            legs.push(LegRecord {
                entry_id: id,
                account_id: leg.account_id,
                sequence: *leg_count,
                side: leg.side,
                amount: leg.amount,
                posted_at: now,
                balance_after: *balance,
            });
        }
        for (account_id, (balance, _)) in &balances {
            self.check_limits(*account_id, balance)?;
        }
        // Accepted: apply.
        for (account_id, (balance, leg_count)) in balances {
            if let Some(state) = self.accounts.get_mut(&account_id) {
                state.balance = balance;
                state.leg_count = leg_count;
                state.last_posted_at = Some(now);
            }
            self.changed_accounts.insert(account_id);
        }
        let entry = Entry {
            id,
            legs: new
                .legs
                .iter()
                .map(|leg| Leg {
                    account_id: leg.account_id,
                    side: leg.side,
                    amount: leg.amount,
                })
                .collect(),
            description: new.description.clone(),
            metadata: new.metadata.clone(),
            posted_at: now,
            hold_id,
        };
        self.legs.extend(legs);
        self.entries.push(entry.clone());
        Ok(entry)
    }

    pub fn create_hold(
        &mut self,
        id: HoldId,
        new: &NewHold,
        now: Timestamp,
    ) -> Result<Hold, LedgerError> {
        check_text("description", &new.description, true)?;
        check_metadata(&new.metadata)?;
        if new.debit_account_id == new.credit_account_id {
            return Err(LedgerError::SameAccount);
        }
        self.check_leg_amount(new.debit_account_id, new.amount)?;
        self.check_leg_amount(new.credit_account_id, new.amount)?;
        self.check_amount_max(new.amount.currency(), i128::from(new.amount.minor()))?;
        if new.expires_at <= now {
            return Err(LedgerError::ExpiryNotInFuture(new.expires_at.to_string()));
        }
        let minor = new.amount.minor();
        let mut debit = self.state(new.debit_account_id)?.balance;
        debit.debits_pending = add(debit.debits_pending, minor)?;
        let mut credit = self.state(new.credit_account_id)?.balance;
        credit.credits_pending = add(credit.credits_pending, minor)?;
        self.check_limits(new.debit_account_id, &debit)?;
        self.check_limits(new.credit_account_id, &credit)?;
        self.set_balance(new.debit_account_id, debit);
        self.set_balance(new.credit_account_id, credit);
        let hold = Hold {
            id,
            debit_account_id: new.debit_account_id,
            credit_account_id: new.credit_account_id,
            amount: new.amount,
            description: new.description.clone(),
            metadata: new.metadata.clone(),
            status: HoldStatus::Pending,
            created_at: now,
            expires_at: new.expires_at,
            resolved_at: None,
            posted_amount: None,
            entry_id: None,
        };
        self.holds.insert(id, hold.clone());
        self.new_holds.insert(id);
        Ok(hold)
    }

    fn set_balance(&mut self, id: AccountId, balance: Balance) {
        if let Some(state) = self.accounts.get_mut(&id) {
            state.balance = balance;
            self.changed_accounts.insert(id);
        }
    }

    fn pending_hold(&self, hold_id: HoldId, now: Timestamp) -> Result<Hold, LedgerError> {
        let hold = self
            .holds
            .get(&hold_id)
            .ok_or(LedgerError::HoldNotFound(hold_id))?;
        if hold.status != HoldStatus::Pending {
            return Err(LedgerError::HoldNotPending {
                hold_id,
                status: hold.status.as_str(),
            });
        }
        if hold.expires_at <= now {
            return Err(LedgerError::HoldNotPending {
                hold_id,
                status: HoldStatus::Expired.as_str(),
            });
        }
        Ok(hold.clone())
    }

    /// Posts `amount` of a pending hold (all of it when `None`) as a journal entry; the rest
    /// of the reservation is released.
    pub fn post_hold(
        &mut self,
        hold_id: HoldId,
        amount: Option<Amount>,
        entry_id: EntryId,
        now: Timestamp,
    ) -> Result<(Hold, Entry), LedgerError> {
        let hold = self.pending_hold(hold_id, now)?;
        let amount = amount.unwrap_or(hold.amount);
        if amount.currency() != hold.amount.currency() {
            return Err(LedgerError::CurrencyMismatch {
                account_id: hold.debit_account_id,
                account: hold.amount.currency(),
                leg: amount.currency(),
            });
        }
        if !amount.is_positive() {
            return Err(LedgerError::AmountNotPositive(amount.to_string()));
        }
        if amount.minor() > hold.amount.minor() {
            return Err(LedgerError::PostExceedsHold {
                hold_id,
                requested: amount.minor(),
                held: hold.amount.minor(),
            });
        }
        let entry = NewEntry {
            legs: vec![
                NewLeg {
                    account_id: hold.debit_account_id,
                    side: Side::Debit,
                    amount,
                },
                NewLeg {
                    account_id: hold.credit_account_id,
                    side: Side::Credit,
                    amount,
                },
            ],
            description: hold.description.clone(),
            metadata: hold.metadata.clone(),
        };
        let entry = self.post_entry_releasing(entry_id, &entry, Some(hold_id), Some(&hold), now)?;
        let resolved = Hold {
            status: HoldStatus::Posted,
            resolved_at: Some(entry.posted_at),
            posted_amount: Some(amount),
            entry_id: Some(entry_id),
            ..hold
        };
        self.record_resolution(resolved.clone());
        Ok((resolved, entry))
    }

    pub fn void_hold(&mut self, hold_id: HoldId, now: Timestamp) -> Result<Hold, LedgerError> {
        let hold = self.pending_hold(hold_id, now)?;
        self.release(hold, HoldStatus::Voided, now)
    }

    /// Expires a pending hold whose deadline has passed, releasing its reservation.
    pub fn expire_hold(&mut self, hold_id: HoldId, now: Timestamp) -> Result<Hold, LedgerError> {
        let hold = self
            .holds
            .get(&hold_id)
            .ok_or(LedgerError::HoldNotFound(hold_id))?
            .clone();
        if hold.status != HoldStatus::Pending {
            return Err(LedgerError::HoldNotPending {
                hold_id,
                status: hold.status.as_str(),
            });
        }
        if hold.expires_at > now {
            return Err(LedgerError::InvalidField {
                field: "expires_at",
                reason: format!("hold {hold_id} does not expire until {}", hold.expires_at),
            });
        }
        // The hold expired at its deadline, whenever the sweep noticed it.
        let expired_at = hold.expires_at;
        self.release(hold, HoldStatus::Expired, expired_at)
    }

    fn release(
        &mut self,
        hold: Hold,
        status: HoldStatus,
        at: Timestamp,
    ) -> Result<Hold, LedgerError> {
        let minor = hold.amount.minor();
        let mut debit = self.state(hold.debit_account_id)?.balance;
        debit.debits_pending = subtract(debit.debits_pending, minor)?;
        let mut credit = self.state(hold.credit_account_id)?.balance;
        credit.credits_pending = subtract(credit.credits_pending, minor)?;
        // Releasing a reservation can only loosen limits, so there is nothing to check.
        self.set_balance(hold.debit_account_id, debit);
        self.set_balance(hold.credit_account_id, credit);
        let resolved = Hold {
            status,
            resolved_at: Some(at),
            ..hold
        };
        self.record_resolution(resolved.clone());
        Ok(resolved)
    }

    fn record_resolution(&mut self, hold: Hold) {
        let id = hold.id;
        self.holds.insert(id, hold);
        if !self.new_holds.contains(&id) {
            self.resolved_holds.insert(id);
        }
    }

    /// Hands over everything changed since the last call, for storage.
    pub fn take_effects(&mut self) -> Effects {
        let new_accounts = std::mem::take(&mut self.new_accounts)
            .into_iter()
            .filter_map(|id| self.accounts.get(&id).map(|state| state.account.clone()))
            .collect();
        let balances = std::mem::take(&mut self.changed_accounts)
            .into_iter()
            .filter_map(|id| {
                self.accounts
                    .get(&id)
                    .map(|state| (id, state.balance, state.leg_count, state.last_posted_at))
            })
            .collect();
        let new_holds = std::mem::take(&mut self.new_holds)
            .into_iter()
            .filter_map(|id| self.holds.get(&id).cloned())
            .collect();
        let resolved_holds = std::mem::take(&mut self.resolved_holds)
            .into_iter()
            .filter_map(|id| self.holds.get(&id).cloned())
            .collect();
        Effects {
            new_accounts,
            balances,
            entries: std::mem::take(&mut self.entries),
            legs: std::mem::take(&mut self.legs),
            new_holds,
            resolved_holds,
        }
    }
}
