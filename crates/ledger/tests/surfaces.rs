//! The ledger's rules at their edges, pinned down on the working set the writer uses: stored
//! names of kinds, sides and hold states read back; text, metadata and leg-count limits at
//! and one past their bound; the largest amount of a working set; what the store loads
//! (holds, codes taken elsewhere); the sequence of each account's legs; the fields a posted,
//! voided or expired hold records; which holds a batch reports as resolved. Each assertion
//! kills a mutant `mutants/run tally-ledger` found surviving (see TESTING.md).
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency, EntryId, HoldId};
use tally_ledger::working::{NewIds, Working};
use tally_ledger::{
    AccountFlags, AccountKind, AccountNamespaces, Actor, Balance, Command, HoldStatus, LedgerError,
    NewAccount, NewEntry, NewHold, NewLeg, Outcome, Side, LEGS_PER_ENTRY_MAX, METADATA_KEYS_MAX,
    TEXT_LENGTH_MAX,
};
use uuid::Uuid;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn now() -> Timestamp {
    at("2026-01-01T00:00:00Z")
}

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn ids(n: u128) -> NewIds {
    NewIds {
        account: AccountId(Uuid::from_u128(n)),
        entry: EntryId(Uuid::from_u128(n)),
        hold: HoldId(Uuid::from_u128(n)),
    }
}

fn new_account(code: &str) -> NewAccount {
    NewAccount {
        code: code.into(),
        kind: AccountKind::Asset,
        currency: Currency::CNY,
        flags: AccountFlags::default(),
        metadata: BTreeMap::new(),
    }
}

fn open(working: &mut Working, n: u128, code: &str) -> AccountId {
    match working.apply(&Command::CreateAccount(new_account(code)), ids(n), now()) {
        Ok(Outcome::Account(account)) => account.id,
        other => panic!("{other:?}"),
    }
}

fn legs(pairs: &[(AccountId, Side, i64)]) -> Vec<NewLeg> {
    pairs
        .iter()
        .map(|&(account_id, side, minor)| NewLeg {
            account_id,
            side,
            amount: cny(minor),
        })
        .collect()
}

fn entry(pairs: &[(AccountId, Side, i64)]) -> NewEntry {
    NewEntry {
        legs: legs(pairs),
        description: String::new(),
        metadata: BTreeMap::new(),
    }
}

fn new_hold(from: AccountId, to: AccountId, minor: i64, expires_at: Timestamp) -> NewHold {
    NewHold {
        debit_account_id: from,
        credit_account_id: to,
        amount: cny(minor),
        expires_at,
        description: String::new(),
        metadata: BTreeMap::new(),
    }
}

fn field_refused(result: Result<Outcome, LedgerError>) -> &'static str {
    match result {
        Err(error) => error.code(),
        Ok(outcome) => panic!("accepted: {outcome:?}"),
    }
}

#[test]
fn stored_names_read_back() {
    for kind in [
        AccountKind::Asset,
        AccountKind::Liability,
        AccountKind::Equity,
        AccountKind::Income,
        AccountKind::Expense,
    ] {
        assert_eq!(AccountKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(AccountKind::Liability.as_str(), "liability");
    for side in [Side::Debit, Side::Credit] {
        assert_eq!(Side::parse(side.as_str()), Some(side));
    }
    assert_eq!(Side::Credit.as_str(), "credit");
    for status in [
        HoldStatus::Pending,
        HoldStatus::Posted,
        HoldStatus::Voided,
        HoldStatus::Expired,
    ] {
        assert_eq!(HoldStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(HoldStatus::Expired.as_str(), "expired");
    assert_eq!(AccountKind::parse("Asset"), None);
    assert_eq!(Side::parse(""), None);
    assert_eq!(HoldStatus::parse("cancelled"), None);
}

#[test]
fn a_balance_nets_posted_debits_against_credits() {
    let balance = Balance {
        debits_posted: 500,
        credits_posted: 200,
        debits_pending: 7,
        credits_pending: 11,
    };
    assert_eq!(balance.net_debit(), 300);
}

#[test]
fn text_metadata_and_legs_are_accepted_up_to_their_limits_and_refused_past_them() {
    let mut working = Working::new();
    let a = open(&mut working, 1, "a");
    let b = open(&mut working, 2, "b");
    let mut at_limit = entry(&[(a, Side::Debit, 1), (b, Side::Credit, 1)]);
    at_limit.description = "d".repeat(TEXT_LENGTH_MAX);
    at_limit.metadata = (0..METADATA_KEYS_MAX)
        .map(|index| (format!("k{index}"), String::new()))
        .collect();
    working
        .apply(&Command::PostEntry(at_limit.clone()), ids(10), now())
        .unwrap();

    let mut long = at_limit.clone();
    long.description.push('d');
    let refused = working.apply(&Command::PostEntry(long), ids(11), now());
    assert_eq!(field_refused(refused), "invalid_field");

    let mut many_keys = at_limit.clone();
    many_keys.metadata.insert("one-more".into(), String::new());
    let refused = working.apply(&Command::PostEntry(many_keys), ids(12), now());
    assert_eq!(field_refused(refused), "invalid_field");

    let mut empty_key = entry(&[(a, Side::Debit, 1), (b, Side::Credit, 1)]);
    empty_key.metadata.insert(" ".into(), "value".into());
    let refused = working.apply(&Command::PostEntry(empty_key), ids(13), now());
    assert_eq!(field_refused(refused), "invalid_field");

    let refused = working.apply(&Command::CreateAccount(new_account("  ")), ids(14), now());
    assert_eq!(field_refused(refused), "invalid_field");

    // 64 pairs of legs is the most one entry holds; one more leg is refused.
    let mut pairs = Vec::new();
    for _ in 0..LEGS_PER_ENTRY_MAX / 2 {
        pairs.push((a, Side::Debit, 1));
        pairs.push((b, Side::Credit, 1));
    }
    working
        .apply(&Command::PostEntry(entry(&pairs)), ids(15), now())
        .unwrap();
    let mut too_many = entry(&pairs);
    too_many.legs.extend(legs(&[(a, Side::Debit, 1)]));
    let refused = working.apply(&Command::PostEntry(too_many), ids(16), now());
    assert_eq!(field_refused(refused), "entry_too_many_legs");
}

#[test]
fn a_working_set_refuses_entries_above_its_largest_amount() {
    let mut working = Working::with_entry_amount_max(100);
    let a = open(&mut working, 1, "a");
    let b = open(&mut working, 2, "b");
    working
        .apply(
            &Command::PostEntry(entry(&[(a, Side::Debit, 100), (b, Side::Credit, 100)])),
            ids(3),
            now(),
        )
        .unwrap();
    let refused = working.apply(
        &Command::PostEntry(entry(&[(a, Side::Debit, 101), (b, Side::Credit, 101)])),
        ids(4),
        now(),
    );
    assert_eq!(field_refused(refused), "entry_amount_too_large");
}

#[test]
fn what_the_store_loads_is_what_the_rules_see() {
    let mut working = Working::new();
    working.mark_code_taken("taken-elsewhere".into());
    let refused = working.apply(
        &Command::CreateAccount(new_account("taken-elsewhere")),
        ids(1),
        now(),
    );
    assert_eq!(field_refused(refused), "account_code_taken");

    let a = open(&mut working, 2, "a");
    let b = open(&mut working, 3, "b");
    assert_eq!(working.accounts().count(), 2);
    // A hold made by an earlier batch, loaded from storage, can be posted in this one.
    let mut earlier = Working::new();
    for state in working.accounts() {
        earlier.load_account(state.clone());
    }
    let made = earlier
        .create_hold(
            HoldId(Uuid::from_u128(9)),
            &new_hold(a, b, 50, at("2026-02-01T00:00:00Z")),
            now(),
        )
        .unwrap();
    let pending = earlier.account(a).unwrap().clone();
    let mut later = Working::new();
    later.load_account(pending);
    later.load_account(earlier.account(b).unwrap().clone());
    later.load_hold(made.clone());
    let (posted, _) = later
        .post_hold(made.id, Some(cny(30)), EntryId(Uuid::from_u128(10)), now())
        .unwrap();
    assert_eq!(posted.status, HoldStatus::Posted);
}

#[test]
fn each_accounts_legs_are_numbered_in_order() {
    let mut working = Working::new();
    let a = open(&mut working, 1, "a");
    let b = open(&mut working, 2, "b");
    let c = open(&mut working, 3, "c");
    for n in 0..3 {
        working
            .apply(
                &Command::PostEntry(entry(&[(a, Side::Debit, 5), (b, Side::Credit, 5)])),
                ids(10 + n),
                now(),
            )
            .unwrap();
    }
    working
        .apply(
            &Command::PostEntry(entry(&[(c, Side::Debit, 5), (a, Side::Credit, 5)])),
            ids(20),
            now(),
        )
        .unwrap();
    let effects = working.take_effects();
    let sequences = |account: AccountId| -> Vec<i64> {
        effects
            .legs
            .iter()
            .filter(|leg| leg.account_id == account)
            .map(|leg| leg.sequence)
            .collect()
    };
    assert_eq!(sequences(a), [1, 2, 3, 4]);
    assert_eq!(sequences(b), [1, 2, 3]);
    assert_eq!(sequences(c), [1]);
    let count_of = |account: AccountId| {
        effects
            .balances
            .iter()
            .find(|(id, ..)| *id == account)
            .map(|(_, _, count, _)| *count)
    };
    assert_eq!((count_of(a), count_of(c)), (Some(4), Some(1)));
}

#[test]
fn a_resolved_hold_records_when_and_how() {
    let mut working = Working::new();
    let a = open(&mut working, 1, "a");
    let b = open(&mut working, 2, "b");
    let deadline = at("2026-01-02T00:00:00Z");
    let later = at("2026-01-01T06:00:00Z");
    let posted_hold = working
        .create_hold(
            HoldId(Uuid::from_u128(10)),
            &new_hold(a, b, 40, deadline),
            now(),
        )
        .unwrap();
    let (posted, entry) = working
        .post_hold(
            posted_hold.id,
            Some(cny(25)),
            EntryId(Uuid::from_u128(11)),
            later,
        )
        .unwrap();
    assert_eq!(posted.resolved_at, Some(later));
    assert_eq!(posted.posted_amount, Some(cny(25)));
    assert_eq!(posted.entry_id, Some(entry.id));

    let voided_hold = working
        .create_hold(
            HoldId(Uuid::from_u128(12)),
            &new_hold(a, b, 40, deadline),
            now(),
        )
        .unwrap();
    let voided = working.void_hold(voided_hold.id, later).unwrap();
    assert_eq!(
        (voided.status, voided.resolved_at),
        (HoldStatus::Voided, Some(later))
    );
    assert_eq!(voided.posted_amount, None);

    // A hold expires only once its deadline has come.
    let expiring = working
        .create_hold(
            HoldId(Uuid::from_u128(13)),
            &new_hold(a, b, 40, deadline),
            now(),
        )
        .unwrap();
    let early = working.expire_hold(expiring.id, later).unwrap_err();
    assert_eq!(early.code(), "invalid_field");
    let expired = working.expire_hold(expiring.id, deadline).unwrap();
    assert_eq!(
        (expired.status, expired.resolved_at),
        (HoldStatus::Expired, Some(deadline))
    );

    // Made and resolved in one batch: stored once, as new, not also as resolved.
    let effects = working.take_effects();
    assert_eq!(effects.new_holds.len(), 3);
    assert!(effects.resolved_holds.is_empty());

    // Resolved in a later batch: reported as resolved.
    let pending = working
        .create_hold(
            HoldId(Uuid::from_u128(14)),
            &new_hold(a, b, 40, deadline),
            now(),
        )
        .unwrap();
    let mut next = Working::new();
    for state in working.accounts() {
        next.load_account(state.clone());
    }
    next.load_hold(pending.clone());
    next.void_hold(pending.id, later).unwrap();
    let effects = next.take_effects();
    assert!(effects.new_holds.is_empty());
    assert_eq!(effects.resolved_holds.len(), 1);
    assert_eq!(effects.resolved_holds[0].status, HoldStatus::Voided);
}

#[test]
fn a_refusal_names_the_account_by_id_and_code() {
    let mut working = Working::new();
    let outside = open(&mut working, 1, "shop-till");
    let inside = open(&mut working, 2, "merchant-a-till");
    let limited =
        Actor::LimitedClient(AccountNamespaces::new(&["merchant-a-".to_string()]).unwrap());
    let error = working
        .apply_as(
            &limited,
            &Command::PostEntry(entry(&[
                (outside, Side::Debit, 1),
                (inside, Side::Credit, 1),
            ])),
            ids(3),
            now(),
        )
        .unwrap_err();
    assert_eq!(error.code(), "account_outside_key_namespace");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{} (\"shop-till\")", outside.0)),
        "{message}"
    );
    // An account not opened yet is named by its code alone.
    let error = working
        .apply_as(
            &limited,
            &Command::CreateAccount(new_account("other-till")),
            ids(4),
            now(),
        )
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("account \"other-till\" lies outside"),
        "{error}"
    );
}
