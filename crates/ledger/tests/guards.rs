//! The ledger's guards of its own books: no account on both sides of an entry, a largest
//! amount per entry and hold, accounts a service owns moved by that service only, a client
//! limited to account-code namespaces kept within them, and account codes free of control
//! and bidirectional formatting characters.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency, HoldId};
use tally_ledger::memory::MemoryError;
use tally_ledger::{
    code_for_comparison, AccountFlags, AccountKind, AccountNamespaces, Actor, Command, LedgerError,
    MemoryLedger, NewAccount, NewEntry, NewHold, NewLeg, Outcome, Side, ENTRY_AMOUNT_MAX_DEFAULT,
};

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::from_code("CNY").unwrap())
}

fn open(ledger: &mut MemoryLedger, actor: &Actor, code: &str) -> AccountId {
    let command = Command::CreateAccount(NewAccount {
        code: code.into(),
        kind: AccountKind::Asset,
        currency: Currency::from_code("CNY").unwrap(),
        flags: AccountFlags::default(),
        metadata: BTreeMap::new(),
    });
    match ledger.apply_as(actor, &format!("open-{code}"), &command, now()) {
        Ok(Outcome::Account(account)) => account.id,
        other => panic!("{other:?}"),
    }
}

fn entry(legs: &[(AccountId, Side, i64)]) -> Command {
    Command::PostEntry(NewEntry {
        legs: legs
            .iter()
            .map(|&(account_id, side, minor)| NewLeg {
                account_id,
                side,
                amount: cny(minor),
            })
            .collect(),
        description: String::new(),
        metadata: BTreeMap::new(),
    })
}

fn hold(from: AccountId, to: AccountId, minor: i64) -> Command {
    Command::CreateHold(NewHold {
        debit_account_id: from,
        credit_account_id: to,
        amount: cny(minor),
        description: String::new(),
        metadata: BTreeMap::new(),
        expires_at: "2027-01-01T00:00:00Z".parse().unwrap(),
    })
}

fn refusal(result: Result<Outcome, MemoryError>) -> &'static str {
    match result {
        Err(MemoryError::Ledger(error)) => error.code(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The entry that bricked an account: one account debited and credited near the 64-bit
/// limit, which left its posted totals with almost no headroom for ever. Refused twice
/// over: it nets to zero on the account, and it is above the largest amount of one entry.
#[test]
fn a_self_transfer_near_the_limit_is_refused_and_leaves_the_account_usable() {
    let mut ledger = MemoryLedger::new();
    let wallet = open(&mut ledger, &Actor::Client, "wallet");
    let bank = open(&mut ledger, &Actor::Client, "bank");
    let near_limit = i64::MAX - 74_600;
    let result = ledger.apply(
        "brick",
        &entry(&[
            (wallet, Side::Debit, near_limit),
            (wallet, Side::Credit, near_limit),
        ]),
        now(),
    );
    assert_eq!(refusal(result), "entry_nets_to_zero_on_account");
    // Even a smaller self-transfer is refused: it moves nothing and only inflates totals.
    let result = ledger.apply(
        "self",
        &entry(&[(wallet, Side::Debit, 100), (wallet, Side::Credit, 100)]),
        now(),
    );
    assert_eq!(refusal(result), "entry_nets_to_zero_on_account");
    // Legs that net to zero on one account inside a larger entry are refused too.
    let result = ledger.apply(
        "netting",
        &entry(&[
            (wallet, Side::Debit, 60),
            (wallet, Side::Credit, 20),
            (wallet, Side::Credit, 40),
            (bank, Side::Debit, 5),
            (bank, Side::Credit, 5),
        ]),
        now(),
    );
    assert_eq!(refusal(result), "entry_nets_to_zero_on_account");
    let state = ledger.account(wallet).unwrap();
    assert_eq!(state.balance.debits_posted, 0);
    assert_eq!(state.balance.credits_posted, 0);
    // Gross legs that move something on the account (interest charged and principal
    // repaid on one receivable) are an ordinary entry.
    let result = ledger.apply(
        "gross",
        &entry(&[
            (wallet, Side::Debit, 100),
            (wallet, Side::Credit, 60),
            (bank, Side::Credit, 40),
        ]),
        now(),
    );
    assert!(result.is_ok(), "{result:?}");
    // The largest entry allowed still posts, and the account keeps working.
    let result = ledger.apply(
        "largest",
        &entry(&[
            (wallet, Side::Debit, ENTRY_AMOUNT_MAX_DEFAULT),
            (bank, Side::Credit, ENTRY_AMOUNT_MAX_DEFAULT),
        ]),
        now(),
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn an_entry_or_hold_above_the_maximum_is_refused() {
    let mut ledger = MemoryLedger::new();
    let wallet = open(&mut ledger, &Actor::Client, "wallet");
    let bank = open(&mut ledger, &Actor::Client, "bank");
    let other = open(&mut ledger, &Actor::Client, "other");
    let above = ENTRY_AMOUNT_MAX_DEFAULT + 1;
    let result = ledger.apply(
        "big",
        &entry(&[(wallet, Side::Debit, above), (bank, Side::Credit, above)]),
        now(),
    );
    assert_eq!(refusal(result), "entry_amount_too_large");
    // The maximum is per entry, not per leg: two legs of half plus one are one entry.
    let half = ENTRY_AMOUNT_MAX_DEFAULT / 2 + 1;
    let result = ledger.apply(
        "split",
        &entry(&[
            (wallet, Side::Debit, half),
            (other, Side::Debit, half),
            (bank, Side::Credit, 2 * half),
        ]),
        now(),
    );
    assert_eq!(refusal(result), "entry_amount_too_large");
    let result = ledger.apply("hold", &hold(wallet, bank, above), now());
    assert_eq!(refusal(result), "entry_amount_too_large");
    assert!(ledger.entries().is_empty());
}

#[test]
fn a_client_limited_to_namespaces_opens_and_moves_only_accounts_within_them() {
    let mut ledger = MemoryLedger::new();
    assert_eq!(AccountNamespaces::new(&[]), None);
    let merchant = Actor::LimitedClient(
        AccountNamespaces::new(&["Merchant-A-".to_string(), "shop-".to_string()]).unwrap(),
    );
    // Codes compare as reserved prefixes do: letter case and compatibility forms folded.
    let wallet = open(&mut ledger, &merchant, "merchant-a-wallet");
    let shop = open(&mut ledger, &merchant, "ＳＨＯＰ-till");
    assert_eq!(ledger.account(wallet).unwrap().account.owner, None);
    let bank = open(&mut ledger, &Actor::Client, "bank");
    let command = Command::CreateAccount(NewAccount {
        code: "merchant-b-wallet".into(),
        kind: AccountKind::Asset,
        currency: Currency::from_code("CNY").unwrap(),
        flags: AccountFlags::default(),
        metadata: BTreeMap::new(),
    });
    let result = ledger.apply_as(&merchant, "open-b", &command, now());
    assert_eq!(
        result.unwrap_err(),
        MemoryError::Ledger(LedgerError::AccountOutsideKeyNamespace {
            account_id: None,
            code: "merchant-b-wallet".into(),
            namespaces: vec!["Merchant-A-".into(), "shop-".into()],
        })
    );
    let inside = entry(&[(wallet, Side::Debit, 100), (shop, Side::Credit, 100)]);
    assert!(ledger.apply_as(&merchant, "inside", &inside, now()).is_ok());
    let outside = entry(&[(wallet, Side::Debit, 100), (bank, Side::Credit, 100)]);
    let result = ledger.apply_as(&merchant, "outside", &outside, now());
    assert_eq!(refusal(result), "account_outside_key_namespace");
    let result = ledger.apply_as(&merchant, "outside-hold", &hold(bank, wallet, 100), now());
    assert_eq!(refusal(result), "account_outside_key_namespace");
    // A client not limited moves the same accounts; its outcome is not given to the
    // limited client that retries under its key.
    assert!(ledger.apply("outside", &outside, now()).is_ok());
    let result = ledger.apply_as(&merchant, "outside", &outside, now());
    assert_eq!(refusal(result), "account_outside_key_namespace");
    assert_eq!(ledger.entries().len(), 2);
}

#[test]
fn a_service_account_moves_only_by_its_service() {
    let mut ledger = MemoryLedger::new();
    let credit = Actor::Service("credit");
    let receivable = open(&mut ledger, &credit, "credit-receivable-CNY");
    let clearing = open(&mut ledger, &credit, "credit-clearing-CNY");
    let client_account = open(&mut ledger, &Actor::Client, "wallet");
    assert_eq!(
        ledger.account(receivable).unwrap().account.owner.as_deref(),
        Some("credit")
    );
    assert_eq!(ledger.account(client_account).unwrap().account.owner, None);

    // A client can neither post to it nor reserve on it.
    let result = ledger.apply(
        "client-entry",
        &entry(&[
            (receivable, Side::Credit, 100),
            (client_account, Side::Debit, 100),
        ]),
        now(),
    );
    assert_eq!(refusal(result), "account_owned_by_service");
    let result = ledger.apply("client-hold", &hold(client_account, receivable, 100), now());
    assert_eq!(refusal(result), "account_owned_by_service");

    // Another service cannot either.
    let result = ledger.apply_as(
        &Actor::Service("payments"),
        "other-service",
        &entry(&[
            (receivable, Side::Debit, 100),
            (client_account, Side::Credit, 100),
        ]),
        now(),
    );
    assert_eq!(refusal(result), "account_owned_by_service");

    // The owner can, and its holds cannot be posted or voided by a client.
    let result = ledger.apply_as(
        &credit,
        "owner-hold",
        &hold(receivable, clearing, 100),
        now(),
    );
    let hold_id: HoldId = match result {
        Ok(Outcome::Hold(hold)) => hold.id,
        other => panic!("{other:?}"),
    };
    let result = ledger.apply("client-void", &Command::VoidHold { hold_id }, now());
    assert_eq!(refusal(result), "account_owned_by_service");
    let result = ledger.apply(
        "client-post",
        &Command::PostHold {
            hold_id,
            amount: None,
        },
        now(),
    );
    assert_eq!(refusal(result), "account_owned_by_service");
    let result = ledger.apply_as(
        &credit,
        "owner-post",
        &Command::PostHold {
            hold_id,
            amount: None,
        },
        now(),
    );
    assert!(result.is_ok(), "{result:?}");
    // A service may move a client's account (it acts for Tally).
    let result = ledger.apply_as(
        &credit,
        "owner-entry",
        &entry(&[
            (receivable, Side::Debit, 50),
            (client_account, Side::Credit, 50),
        ]),
        now(),
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn codes_refuse_control_and_bidirectional_characters() {
    let mut ledger = MemoryLedger::new();
    for (name, code) in [
        ("newline", "bank\ncash"),
        ("escape", "bank\u{1b}[31m"),
        ("right-to-left override", "bank\u{202E}lac"),
        ("isolate", "\u{2067}bank"),
        ("mark", "bank\u{200F}"),
    ] {
        let command = Command::CreateAccount(NewAccount {
            code: code.into(),
            kind: AccountKind::Asset,
            currency: Currency::from_code("CNY").unwrap(),
            flags: AccountFlags::default(),
            metadata: BTreeMap::new(),
        });
        let result = ledger.apply(name, &command, now());
        assert!(
            matches!(
                result,
                Err(MemoryError::Ledger(LedgerError::InvalidField {
                    field: "code",
                    ..
                }))
            ),
            "{name}: {result:?}"
        );
    }
    assert_eq!(ledger.accounts().count(), 0);
}

#[test]
fn codes_compare_without_case_or_compatibility_forms() {
    assert_eq!(
        code_for_comparison("CREDIT-receivable"),
        "credit-receivable"
    );
    assert_eq!(code_for_comparison("ｃｒｅｄｉｔ-x"), "credit-x");
    assert_eq!(code_for_comparison("Ｃｒｅｄｉｔ－x"), "credit-x");
    assert!(!code_for_comparison("crédit-x").starts_with("credit-"));
}

proptest! {
    /// A balanced entry is refused with `entry_nets_to_zero_on_account` exactly when the
    /// legs on some account net to zero, and with `entry_amount_too_large` exactly when its
    /// debits pass the maximum; otherwise it posts.
    #[test]
    fn an_entry_is_refused_exactly_when_it_nets_on_an_account_or_is_too_large(
        legs in proptest::collection::vec((0..5_usize, any::<bool>(), prop_oneof![Just(100_i64), Just(200), 1..=ENTRY_AMOUNT_MAX_DEFAULT / 2]), 1..5),
        balancing_account in 0..5_usize,
    ) {
        let mut ledger = MemoryLedger::new();
        let accounts: Vec<AccountId> = (0..5)
            .map(|index| open(&mut ledger, &Actor::Client, &format!("a{index}")))
            .collect();
        let mut legs: Vec<(usize, Side, i64)> = legs
            .iter()
            .map(|&(index, debit, minor)| (index, if debit { Side::Debit } else { Side::Credit }, minor))
            .collect();
        let debits: i64 = legs.iter().filter(|leg| leg.1 == Side::Debit).map(|leg| leg.2).sum();
        let credits: i64 = legs.iter().filter(|leg| leg.1 == Side::Credit).map(|leg| leg.2).sum();
        match debits.cmp(&credits) {
            std::cmp::Ordering::Greater => legs.push((balancing_account, Side::Credit, debits - credits)),
            std::cmp::Ordering::Less => legs.push((balancing_account, Side::Debit, credits - debits)),
            std::cmp::Ordering::Equal => {}
        }
        prop_assume!(legs.len() >= 2);
        let nets_to_zero = (0..5).any(|index| {
            let on_account = |side: Side| -> i64 {
                legs.iter().filter(|leg| leg.0 == index && leg.1 == side).map(|leg| leg.2).sum()
            };
            legs.iter().any(|leg| leg.0 == index) && on_account(Side::Debit) == on_account(Side::Credit)
        });
        let total = debits.max(credits);
        let legs: Vec<(AccountId, Side, i64)> =
            legs.iter().map(|&(index, side, minor)| (accounts[index], side, minor)).collect();
        let result = ledger.apply("entry", &entry(&legs), now());
        if nets_to_zero {
            prop_assert_eq!(refusal(result), "entry_nets_to_zero_on_account");
        } else if total > ENTRY_AMOUNT_MAX_DEFAULT {
            prop_assert_eq!(refusal(result), "entry_amount_too_large");
        } else {
            prop_assert!(result.is_ok(), "{:?}", result);
            let posted: i64 = accounts
                .iter()
                .map(|account| ledger.account(*account).unwrap().balance.debits_posted)
                .sum();
            prop_assert_eq!(posted, total);
        }
    }
}
