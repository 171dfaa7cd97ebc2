//! Property tests: random sequences of accounts, entries and holds never break the ledger's
#![allow(clippy::unwrap_used)]
//! invariants, and idempotent replays return what the first call returned.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency, HoldId};
use tally_ledger::memory::MemoryError;
use tally_ledger::{
    AccountFlags, AccountKind, Command, HoldStatus, LedgerError, MemoryLedger, NewAccount,
    NewEntry, NewHold, NewLeg, Outcome, Side,
};

/// A step of a random scenario. Indexes pick accounts and holds created earlier.
#[derive(Debug, Clone)]
enum Step {
    Transfer {
        from: usize,
        to: usize,
        minor: i64,
        currency: usize,
    },
    Split {
        from: usize,
        to: Vec<usize>,
        minor: i64,
    },
    Hold {
        from: usize,
        to: usize,
        minor: i64,
        ttl_seconds: i64,
    },
    PostHold {
        hold: usize,
        fraction_percent: i64,
    },
    VoidHold {
        hold: usize,
    },
    Wait {
        seconds: i64,
    },
    Replay {
        earlier: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..8_usize, 0..8_usize, 1..5_000_i64, 0..2_usize)
            .prop_map(|(from, to, minor, currency)| Step::Transfer { from, to, minor, currency }),
        1 => (0..8_usize, proptest::collection::vec(0..8_usize, 1..4), 1..5_000_i64)
            .prop_map(|(from, to, minor)| Step::Split { from, to, minor }),
        2 => (0..8_usize, 0..8_usize, 1..5_000_i64, 1..120_i64)
            .prop_map(|(from, to, minor, ttl_seconds)| Step::Hold { from, to, minor, ttl_seconds }),
        2 => (0..16_usize, 1..=100_i64)
            .prop_map(|(hold, fraction_percent)| Step::PostHold { hold, fraction_percent }),
        1 => (0..16_usize).prop_map(|hold| Step::VoidHold { hold }),
        1 => (1..90_i64).prop_map(|seconds| Step::Wait { seconds }),
        1 => (0..64_usize).prop_map(|earlier| Step::Replay { earlier }),
    ]
}

struct Scenario {
    ledger: MemoryLedger,
    now: Timestamp,
    accounts: Vec<(AccountId, Currency)>,
    holds: Vec<HoldId>,
    history: Vec<(String, Command, Result<Outcome, MemoryError>)>,
}

impl Scenario {
    fn new() -> Self {
        let mut scenario = Scenario {
            ledger: MemoryLedger::new(),
            now: "2026-01-01T00:00:00Z".parse().unwrap(),
            accounts: Vec::new(),
            holds: Vec::new(),
            history: Vec::new(),
        };
        // Four accounts per currency: a funding source without limits, two wallets that
        // must not go negative, and one account whose credits may not exceed its debits.
        for currency in [Currency::CNY, Currency::USD] {
            for (index, flags) in [
                AccountFlags::default(),
                AccountFlags {
                    debits_must_not_exceed_credits: true,
                    ..Default::default()
                },
                AccountFlags {
                    debits_must_not_exceed_credits: true,
                    ..Default::default()
                },
                AccountFlags {
                    credits_must_not_exceed_debits: true,
                    ..Default::default()
                },
            ]
            .into_iter()
            .enumerate()
            {
                let command = Command::CreateAccount(NewAccount {
                    code: format!("{currency}-{index}"),
                    kind: AccountKind::Asset,
                    currency,
                    flags,
                    metadata: BTreeMap::new(),
                });
                let Ok(Outcome::Account(account)) = scenario.run(command) else {
                    panic!("account creation failed");
                };
                scenario.accounts.push((account.id, currency));
            }
        }
        scenario
    }

    fn run(&mut self, command: Command) -> Result<Outcome, MemoryError> {
        let key = format!("key-{}", self.history.len());
        let result = self.ledger.apply(&key, &command, self.now);
        self.history.push((key, command, result.clone()));
        result
    }

    /// Runs `command` and checks that a refusal is one of `expected` (by its stable code):
    /// a random scenario may be refused, but only for a reason its step can have.
    fn run_expecting(
        &mut self,
        command: Command,
        expected: &[&str],
    ) -> Result<Outcome, MemoryError> {
        let result = self.run(command);
        if let Err(error) = &result {
            let code = match error {
                MemoryError::Ledger(error) => error.code(),
                MemoryError::KeyReused(_) => "idempotency_key_reused",
            };
            assert!(
                expected.contains(&code),
                "refused with {code} ({error}), expected one of {expected:?}"
            );
        }
        result
    }

    fn account(&self, index: usize) -> (AccountId, Currency) {
        self.accounts[index % self.accounts.len()]
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::Transfer {
                from,
                to,
                minor,
                currency,
            } => {
                let offset = currency * 4;
                let (from, from_currency) = self.account(offset + from % 4);
                let (to, _) = self.account(offset + to % 4);
                let amount = Amount::new(minor, from_currency);
                // To the same account the legs net to zero; otherwise only a limit refuses.
                let expected: &[&str] = if from == to {
                    &["entry_nets_to_zero_on_account"]
                } else {
                    &["exceeds_credits", "exceeds_debits"]
                };
                let _ = self.run_expecting(
                    Command::PostEntry(NewEntry {
                        legs: vec![
                            NewLeg {
                                account_id: from,
                                side: Side::Credit,
                                amount,
                            },
                            NewLeg {
                                account_id: to,
                                side: Side::Debit,
                                amount,
                            },
                        ],
                        description: String::new(),
                        metadata: BTreeMap::new(),
                    }),
                    expected,
                );
            }
            Step::Split { from, to, minor } => {
                let (from, currency) = self.account(from % 4);
                let whole = Amount::new(minor, currency);
                let parts = whole.allocate_evenly(to.len()).unwrap();
                // Fewer minor units than parts leaves a part of zero, which no leg may carry.
                let zero_part = parts.iter().any(|part| !part.is_positive());
                let mut legs = vec![NewLeg {
                    account_id: from,
                    side: Side::Credit,
                    amount: whole,
                }];
                for (index, part) in to.iter().zip(parts) {
                    legs.push(NewLeg {
                        account_id: self.account(index % 4).0,
                        side: Side::Debit,
                        amount: part,
                    });
                }
                let expected: &[&str] = if zero_part {
                    &["amount_not_positive"]
                } else {
                    &[
                        "exceeds_credits",
                        "exceeds_debits",
                        "entry_nets_to_zero_on_account",
                    ]
                };
                let _ = self.run_expecting(
                    Command::PostEntry(NewEntry {
                        legs,
                        description: "split".into(),
                        metadata: BTreeMap::new(),
                    }),
                    expected,
                );
            }
            Step::Hold {
                from,
                to,
                minor,
                ttl_seconds,
            } => {
                let (from, currency) = self.account(from);
                let (to, to_currency) = self.account(to);
                let expected: &[&str] = if from == to {
                    &["hold_same_account"]
                } else if currency != to_currency {
                    &["currency_mismatch"]
                } else {
                    &["exceeds_credits", "exceeds_debits"]
                };
                let result = self.run_expecting(
                    Command::CreateHold(NewHold {
                        debit_account_id: to,
                        credit_account_id: from,
                        amount: Amount::new(minor, currency),
                        expires_at: self.now + SignedDuration::from_secs(ttl_seconds),
                        description: String::new(),
                        metadata: BTreeMap::new(),
                    }),
                    expected,
                );
                if let Ok(Outcome::Hold(hold)) = result {
                    self.holds.push(hold.id);
                }
            }
            Step::PostHold {
                hold,
                fraction_percent,
            } => {
                let Some(hold_id) = self.holds.get(hold).copied() else {
                    return;
                };
                let held = self.ledger.hold(hold_id).unwrap().amount;
                let minor = (held.minor() * fraction_percent / 100).max(1);
                // Posting moves a reservation already within limits: only a hold that is
                // no longer pending (posted, voided or expired) is refused.
                let _ = self.run_expecting(
                    Command::PostHold {
                        hold_id,
                        amount: Some(Amount::new(minor, held.currency())),
                    },
                    &["hold_not_pending"],
                );
            }
            Step::VoidHold { hold } => {
                let Some(hold_id) = self.holds.get(hold).copied() else {
                    return;
                };
                let _ = self.run_expecting(Command::VoidHold { hold_id }, &["hold_not_pending"]);
            }
            Step::Wait { seconds } => {
                self.now += SignedDuration::from_secs(seconds);
                self.ledger.expire_due(self.now);
            }
            Step::Replay { earlier } => {
                if self.history.is_empty() {
                    return;
                }
                let (key, command, first) = self.history[earlier % self.history.len()].clone();
                let again = self.ledger.apply(&key, &command, self.now);
                // A successful write replays to the identical outcome. A refused write was not
                // recorded, so replaying it is a fresh attempt.
                if let Ok(outcome) = first {
                    assert_eq!(again, Ok(outcome), "replay of {key} differs");
                } else if let Ok(Outcome::Hold(hold)) = &again {
                    // A refused hold that now succeeds is a new hold to keep track of; its key
                    // now holds that outcome, so replaying the same refused request again
                    // answers the same hold, which is tracked once.
                    if !self.holds.contains(&hold.id) {
                        self.holds.push(hold.id);
                    }
                }
            }
        }
    }

    fn check_invariants(&self) {
        // Every account opened is there, and every currency with an account has a total
        // (an empty map of totals would pass the checks below vacuously).
        assert_eq!(self.ledger.accounts().count(), self.accounts.len());
        let currencies: std::collections::BTreeSet<Currency> = self
            .accounts
            .iter()
            .map(|(_, currency)| *currency)
            .collect();
        assert!(self.ledger.posted_totals().keys().eq(currencies.iter()));
        assert!(self.ledger.pending_totals().keys().eq(currencies.iter()));
        for (currency, total) in self.ledger.posted_totals() {
            assert_eq!(total, 0, "posted balances of {currency} do not sum to zero");
        }
        for (currency, total) in self.ledger.pending_totals() {
            assert_eq!(
                total, 0,
                "pending balances of {currency} do not sum to zero"
            );
        }
        for state in self.ledger.accounts() {
            assert!(
                state.balance.within_limits(state.account.flags),
                "account {} broke its limit: {:?}",
                state.account.code,
                state.balance
            );
            // Pending amounts equal the sum of the account's live holds.
            let mut debits_pending = 0;
            let mut credits_pending = 0;
            for hold_id in &self.holds {
                let hold = self.ledger.hold(*hold_id).unwrap();
                if hold.status != HoldStatus::Pending {
                    continue;
                }
                if hold.debit_account_id == state.account.id {
                    debits_pending += hold.amount.minor();
                }
                if hold.credit_account_id == state.account.id {
                    credits_pending += hold.amount.minor();
                }
            }
            assert_eq!(state.balance.debits_pending, debits_pending);
            assert_eq!(state.balance.credits_pending, credits_pending);
            // The last leg of the account carries its current posted totals.
            let last = self
                .ledger
                .legs()
                .iter()
                .rfind(|leg| leg.account_id == state.account.id);
            match last {
                Some(leg) => {
                    assert_eq!(leg.sequence, state.leg_count);
                    assert_eq!(leg.balance_after.debits_posted, state.balance.debits_posted);
                    assert_eq!(
                        leg.balance_after.credits_posted,
                        state.balance.credits_posted
                    );
                }
                None => assert_eq!(state.leg_count, 0),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(steps in proptest::collection::vec(step(), 1..80)) {
        let mut scenario = Scenario::new();
        // Fund the limited wallets so that transfers can succeed as well as fail.
        for (index, minor) in [(1, 20_000), (2, 5_000), (5, 20_000), (6, 5_000)] {
            let (wallet, currency) = scenario.account(index);
            let (source, _) = scenario.account(index / 4 * 4);
            let amount = Amount::new(minor, currency);
            scenario.run(Command::PostEntry(NewEntry {
                legs: vec![
                    NewLeg { account_id: source, side: Side::Debit, amount },
                    NewLeg { account_id: wallet, side: Side::Credit, amount },
                ],
                description: "funding".into(),
                metadata: BTreeMap::new(),
            })).unwrap();
        }
        for step in steps {
            scenario.apply(step);
            scenario.check_invariants();
        }
    }
}

#[test]
fn an_unbalanced_entry_is_refused_and_changes_nothing() {
    let mut scenario = Scenario::new();
    let (a, currency) = scenario.account(0);
    let (b, _) = scenario.account(3);
    let before: Vec<_> = scenario
        .ledger
        .accounts()
        .map(|state| state.balance)
        .collect();
    let result = scenario.run(Command::PostEntry(NewEntry {
        legs: vec![
            NewLeg {
                account_id: a,
                side: Side::Debit,
                amount: Amount::new(100, currency),
            },
            NewLeg {
                account_id: b,
                side: Side::Credit,
                amount: Amount::new(99, currency),
            },
        ],
        description: String::new(),
        metadata: BTreeMap::new(),
    }));
    assert!(matches!(
        result,
        Err(MemoryError::Ledger(LedgerError::Unbalanced { .. }))
    ));
    let after: Vec<_> = scenario
        .ledger
        .accounts()
        .map(|state| state.balance)
        .collect();
    assert_eq!(before, after);
    assert!(scenario.ledger.entries().is_empty());
}

#[test]
fn a_key_reused_for_another_request_is_refused() {
    let mut ledger = MemoryLedger::new();
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let open = |code: &str| {
        Command::CreateAccount(NewAccount {
            code: code.into(),
            kind: AccountKind::Liability,
            currency: Currency::JPY,
            flags: AccountFlags::default(),
            metadata: BTreeMap::new(),
        })
    };
    let first = ledger.apply("k1", &open("a"), now).unwrap();
    assert_eq!(ledger.apply("k1", &open("a"), now).unwrap(), first);
    assert_eq!(
        ledger.apply("k1", &open("b"), now),
        Err(MemoryError::KeyReused("k1".into()))
    );
    assert!(matches!(
        ledger.apply("k2", &open("a"), now),
        Err(MemoryError::Ledger(LedgerError::AccountCodeTaken(_)))
    ));
}

#[test]
fn a_hold_reserves_then_posts_part_and_releases_the_rest() {
    let mut scenario = Scenario::new();
    let (source, currency) = scenario.account(0);
    let (wallet, _) = scenario.account(1);
    let (merchant, _) = scenario.account(2);
    let fund = Amount::new(1_000, currency);
    scenario
        .run(Command::PostEntry(NewEntry {
            legs: vec![
                NewLeg {
                    account_id: source,
                    side: Side::Debit,
                    amount: fund,
                },
                NewLeg {
                    account_id: wallet,
                    side: Side::Credit,
                    amount: fund,
                },
            ],
            description: String::new(),
            metadata: BTreeMap::new(),
        }))
        .unwrap();
    let new_hold = |minor| {
        Command::CreateHold(NewHold {
            debit_account_id: wallet,
            credit_account_id: merchant,
            amount: Amount::new(minor, currency),
            expires_at: "2026-01-01T01:00:00Z".parse().unwrap(),
            description: String::new(),
            metadata: BTreeMap::new(),
        })
    };
    let Ok(Outcome::Hold(first)) = scenario.run(new_hold(700)) else {
        panic!()
    };
    // 700 of 1,000 is reserved: a second hold of 400 would overdraw the wallet.
    assert!(matches!(
        scenario.run(new_hold(400)),
        Err(MemoryError::Ledger(LedgerError::ExceedsCredits(_)))
    ));
    let Ok(Outcome::PostedHold { hold, entry }) = scenario.run(Command::PostHold {
        hold_id: first.id,
        amount: Some(Amount::new(500, currency)),
    }) else {
        panic!()
    };
    assert_eq!(hold.status, HoldStatus::Posted);
    assert_eq!(entry.legs[0].amount.minor(), 500);
    let balance = scenario.ledger.account(wallet).unwrap().balance;
    assert_eq!(
        (
            balance.debits_posted,
            balance.debits_pending,
            balance.credits_posted
        ),
        (500, 0, 1_000)
    );
    assert!(matches!(
        scenario.run(Command::VoidHold { hold_id: first.id }),
        Err(MemoryError::Ledger(LedgerError::HoldNotPending { .. }))
    ));
    // A hold past its deadline expires and can no longer be posted.
    let Ok(Outcome::Hold(second)) = scenario.run(new_hold(300)) else {
        panic!()
    };
    scenario.now = "2026-01-01T01:00:00Z".parse().unwrap();
    assert_eq!(scenario.ledger.expire_due(scenario.now).len(), 1);
    assert_eq!(
        scenario.ledger.hold(second.id).unwrap().status,
        HoldStatus::Expired
    );
    assert_eq!(
        scenario
            .ledger
            .account(wallet)
            .unwrap()
            .balance
            .debits_pending,
        0
    );
    scenario.check_invariants();
}

/// Regression: outcomes were tagged `kind`, the name of an `Account` field, so a stored
/// account outcome could not be read back and replaying its key failed.
#[test]
fn every_outcome_survives_its_stored_form() {
    let mut scenario = Scenario::new();
    let (source, currency) = scenario.account(0);
    let (wallet, _) = scenario.account(1);
    let fund = Amount::new(500, currency);
    let mut outcomes = vec![scenario
        .run(Command::PostEntry(NewEntry {
            legs: vec![
                NewLeg {
                    account_id: source,
                    side: Side::Debit,
                    amount: fund,
                },
                NewLeg {
                    account_id: wallet,
                    side: Side::Credit,
                    amount: fund,
                },
            ],
            description: String::new(),
            metadata: BTreeMap::new(),
        }))
        .unwrap()];
    outcomes.push(scenario.history[0].2.clone().unwrap());
    let hold = scenario
        .run(Command::CreateHold(NewHold {
            debit_account_id: wallet,
            credit_account_id: source,
            amount: Amount::new(100, currency),
            expires_at: "2026-01-02T00:00:00Z".parse().unwrap(),
            description: String::new(),
            metadata: BTreeMap::new(),
        }))
        .unwrap();
    let Outcome::Hold(created) = &hold else {
        panic!()
    };
    let hold_id = created.id;
    outcomes.push(hold);
    outcomes.push(
        scenario
            .run(Command::PostHold {
                hold_id,
                amount: None,
            })
            .unwrap(),
    );
    assert!(matches!(outcomes[1], Outcome::Account(_)));
    for outcome in outcomes {
        let stored = serde_json::to_string(&outcome).unwrap();
        let read: Outcome = serde_json::from_str(&stored).unwrap();
        assert_eq!(read, outcome, "{stored}");
    }
}
