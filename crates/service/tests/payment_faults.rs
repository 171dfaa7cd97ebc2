//! A property of the payment service under channel faults, on SQLite and PostgreSQL: random
//! orders paid by random mixes of the wallet, the vault, the credit line and a card, the
//! in-process bank simulator declining, acting and losing its answer (a timeout after the
//! bank acted), Tally's own steps losing their answers after acting, then random captures,
//! cancellations, refunds and recovery passes. After every step (once `recover` has
//! finished what a fault left in flight):
//!
//! - each source holds exactly what the payments say: posted = funded − captured + refunded,
//!   held = what reserved legs hold; so a failed or cancelled payment leaves every source as
//!   before it, and what a leg reserved is captured or released, never both, never neither;
//! - no leg has more refunded than captured, nor more captured than it reserved;
//! - the books balance (debits = credits, posted and pending);
//! - the bank's view of the card (available, held, captured, refunded) is Tally's.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_channel::simulator::{FaultsUpdate, PartsPerMillion, SimulatorControl};
use tally_channel::CardToken;
use tally_core::{Amount, Clock, Currency, ManualClock};
use tally_payments::{CaptureMethod, Funding, RefundPolicy, Share, Source};
use tally_service::credit::decision::CreditService;
use tally_service::payments::accounts::Balance;
use tally_service::payments::merchants::testing::onboard_test_merchants;
use tally_service::payments::{
    ConfirmInput, CreatePayment, PaymentService, PaymentServiceError, PaymentView, PaymentsConfig,
};
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;

use support::CUSTOMER;
/// The credit account's limit, in fen.
const CREDIT_LIMIT: i64 = 500_000;

fn cny_minor(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn minor(text: &str) -> i64 {
    Amount::parse(text, Currency::CNY).unwrap().minor()
}

fn now() -> Timestamp {
    "2026-03-01T08:00:00Z".parse().unwrap()
}

/// The sources a payment may draw on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wallet,
    Vault,
    Credit,
    Card,
}

/// What the bank (or Tally's own step) does to the confirm.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// The bank declines the card.
    Decline,
    /// The bank acts and its answer is lost (the channel times out).
    BankAnswerLost,
    /// Tally's `n`-th step from the confirm acts and its answer is lost.
    StepAnswerLost(i64),
}

#[derive(Debug, Clone, Copy)]
enum Action {
    /// A capture of this share (per cent, 1 to 100) of the order.
    Capture(u8),
    Cancel,
    /// A refund of this share (per cent) of what is captured and not refunded.
    Refund(u8, RefundPolicy),
    /// A refund whose bank answer is lost.
    RefundWithBankAnswerLost(u8),
    Recover,
}

#[derive(Debug, Clone)]
struct Order {
    /// In fen.
    amount: i64,
    /// Distinct sources in funding order, with a weight each (the last takes the rest).
    sources: Vec<(Kind, u8)>,
    manual: bool,
    fault: Fault,
    actions: Vec<Action>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Wallet),
        Just(Kind::Vault),
        Just(Kind::Credit),
        Just(Kind::Card)
    ]
}

fn policy() -> impl Strategy<Value = RefundPolicy> {
    prop_oneof![
        Just(RefundPolicy::ReverseFunding),
        Just(RefundPolicy::ProRata),
        Just(RefundPolicy::CardLast)
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (1_u8..=100).prop_map(Action::Capture),
        1 => Just(Action::Cancel),
        4 => ((1_u8..=100), policy()).prop_map(|(share, policy)| Action::Refund(share, policy)),
        1 => (1_u8..=100).prop_map(Action::RefundWithBankAnswerLost),
        1 => Just(Action::Recover),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::Decline),
        1 => Just(Fault::BankAnswerLost),
        1 => (1_i64..=4).prop_map(Fault::StepAnswerLost),
    ]
}

fn order() -> impl Strategy<Value = Order> {
    (
        100_i64..=40_000,
        prop::collection::vec((kind(), 1_u8..=9), 1..=4),
        any::<bool>(),
        fault(),
        prop::collection::vec(action(), 1..=4),
    )
        .prop_map(|(amount, picked, manual, fault, actions)| {
            let mut sources: Vec<(Kind, u8)> = Vec::new();
            for (kind, weight) in picked {
                if !sources.iter().any(|(seen, _)| *seen == kind) {
                    sources.push((kind, weight));
                }
            }
            Order {
                amount,
                sources,
                manual,
                fault,
                actions,
            }
        })
}

/// The funding amounts of `order`: each source its weight's share in fen, rounded down, at
/// least a fen, the last one the rest.
fn fundings(order: &Order, credit_account: i64, card: &CardToken) -> Vec<Funding> {
    let total_weight: i64 = order
        .sources
        .iter()
        .map(|(_, weight)| i64::from(*weight))
        .sum();
    let count = order.sources.len();
    order
        .sources
        .iter()
        .enumerate()
        .map(|(index, (kind, weight))| {
            let source = match kind {
                Kind::Wallet => Source::Wallet,
                Kind::Vault => Source::Vault,
                Kind::Credit => Source::CreditLine {
                    account: credit_account,
                    term: 3,
                },
                Kind::Card => Source::Card {
                    token: card.as_str().to_string(),
                },
            };
            let share = if index + 1 == count {
                Share::Rest
            } else {
                Share::Fixed(cny_minor(
                    (order.amount * i64::from(*weight)
                        / total_weight
                        / i64::try_from(count).unwrap())
                    .max(1),
                ))
            };
            Funding { source, share }
        })
        .collect()
}

struct Shop {
    _test: TestDatabase,
    database: Database,
    payments: PaymentService,
    credit: Arc<CreditService>,
    credit_account: i64,
    bank: SimulatorControl,
    card: CardToken,
    /// What was put in at the start, in fen.
    wallet_funded: i64,
    vault_funded: i64,
    card_funded: i64,
}

impl Shop {
    async fn open(test: TestDatabase, wallet: i64, vault: i64, card: i64) -> Shop {
        let database = test.database.clone();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now()));
        let (writer, credit) = support::credit_service(&database, clock).await;
        let credit_account =
            support::open_credit_line(&credit, cny_minor(CREDIT_LIMIT), now()).await;
        // Lost answers arrive after the channel has given up on them.
        let (url, bank) = support::bank(400).await;
        let channel = support::channel(url, std::time::Duration::from_millis(150));
        let payments = PaymentService::new(
            database.clone(),
            writer,
            Some(credit.clone()),
            Some(channel),
            PaymentsConfig::default(),
        );
        onboard_test_merchants(&payments, &["merchant-1"], Currency::CNY, now())
            .await
            .unwrap();
        let registered = bank
            .register_card("4242424242424242", "12/30", cny_minor(card))
            .await
            .unwrap();
        payments
            .save_card(CUSTOMER, registered.token.as_str(), now())
            .await
            .unwrap();
        let shop = Shop {
            _test: test,
            database,
            payments,
            credit,
            credit_account,
            bank,
            card: registered.token,
            wallet_funded: wallet,
            vault_funded: vault,
            card_funded: card,
        };
        // Both balances exist (a payment from one never opened is refused before anything).
        shop.fund(Balance::Wallet, wallet).await;
        shop.fund(Balance::Vault, vault).await;
        shop
    }

    /// Puts `amount` fen in the customer's `balance`, as a top-up through the channel would.
    async fn fund(&self, balance: Balance, amount: i64) {
        // The balance is opened even when nothing goes in, before the service's accounts.
        self.balance_account(balance, true).await;
        if amount == 0 {
            return;
        }
        support::fund(
            &self.payments,
            balance,
            cny_minor(amount),
            format!("payments-test-fund:{}", balance.as_str()),
            "funding",
        )
        .await;
    }

    async fn balance_account(&self, balance: Balance, open: bool) -> tally_core::AccountId {
        self.payments
            .accounts()
            .balance(
                self.payments.database(),
                self.payments.writer(),
                balance,
                CUSTOMER,
                Currency::CNY,
                open,
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// A balance's posted amount and the part of it held, in fen.
    async fn balance(&self, balance: Balance) -> (i64, i64) {
        let account = self.balance_account(balance, false).await;
        let state = self.database.account(account).await.unwrap().unwrap();
        let totals = state.balance;
        (
            totals.credits_posted - totals.debits_posted,
            totals.debits_pending,
        )
    }

    async fn available_credit(&self) -> i64 {
        let stored = self
            .credit
            .operations
            .load(self.credit_account)
            .await
            .unwrap();
        stored
            .account
            .available_credit(now().to_zoned(jiff::tz::TimeZone::UTC).date())
            .minor()
    }

    async fn set_faults(&self, decline: bool, timeout: bool) {
        let rate = |on: bool| {
            Some(if on {
                PartsPerMillion::ALWAYS
            } else {
                PartsPerMillion::NEVER
            })
        };
        self.bank
            .set_faults(&FaultsUpdate {
                decline_rate_ppm: rate(decline),
                timeout_rate_ppm: rate(timeout),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
    }

    /// Finishes whatever a fault left in flight: recovery passes until none is left, as
    /// the recovery worker would run them. The channel's lost answers arrive meanwhile.
    async fn settle(&self, ids: &[String]) {
        self.set_faults(false, false).await;
        let _ = ids;
        for _ in 0..20 {
            self.payments.recover(now(), 100).await.unwrap();
            // Work left in flight is due at once; nothing else is due today.
            if self
                .database
                .payments_to_recover(now(), 100)
                .await
                .unwrap()
                .is_empty()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("payments still in flight after recovery");
    }

    /// Every invariant, over every payment so far.
    async fn check(&self, ids: &[String], step: &str) {
        let mut views = Vec::new();
        for id in ids {
            views.push(self.payments.get(id, now()).await.unwrap());
        }
        // Per source: (captured − refunded, held by reserved legs).
        let mut taken: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for view in &views {
            for leg in &view.legs {
                let amount = minor(&leg.amount.value);
                let captured = minor(&leg.captured.value);
                let refunded = minor(&leg.refunded.value);
                assert!(
                    (0..=amount).contains(&captured),
                    "{step}: {} captured {captured} of {amount}: {view:?}",
                    leg.kind
                );
                assert!(
                    (0..=captured).contains(&refunded),
                    "{step}: {} refunded {refunded} of {captured}: {view:?}",
                    leg.kind
                );
                match leg.status.as_str() {
                    // Held only while the payment waits for its capture (or an analyst).
                    "reserved" => {
                        assert_eq!(captured, 0, "{step}: {view:?}");
                        assert!(
                            matches!(view.status.as_str(), "authorized" | "under_review"),
                            "{step}: a leg held by a payment {}: {view:?}",
                            view.status
                        );
                    }
                    "released" | "failed" => {
                        assert_eq!(captured, 0, "{step}: {view:?}");
                    }
                    "captured" => {}
                    // Never reserved: not confirmed, or failed before its turn came.
                    "pending" if matches!(view.status.as_str(), "created" | "failed") => {}
                    other => panic!("{step}: leg {other} after recovery: {view:?}"),
                }
                if matches!(view.status.as_str(), "failed" | "cancelled" | "expired") {
                    assert_eq!(captured, 0, "{step}: a failed payment took money: {view:?}");
                    assert_ne!(leg.status, "reserved", "{step}: {view:?}");
                }
                let entry = taken.entry(leg_kind(&leg.kind)).or_default();
                entry.0 += captured - refunded;
                if leg.status == "reserved" {
                    entry.1 += amount;
                }
            }
        }
        let of = |kind: &str| taken.get(kind).copied().unwrap_or_default();
        let (wallet_taken, wallet_held) = of("wallet");
        assert_eq!(
            self.balance(Balance::Wallet).await,
            (self.wallet_funded - wallet_taken, wallet_held),
            "{step}: the wallet"
        );
        let (vault_taken, vault_held) = of("vault");
        assert_eq!(
            self.balance(Balance::Vault).await,
            (self.vault_funded - vault_taken, vault_held),
            "{step}: the vault"
        );
        let (credit_taken, credit_held) = of("credit_line");
        assert_eq!(
            self.available_credit().await,
            CREDIT_LIMIT - credit_taken - credit_held,
            "{step}: the credit line"
        );
        // The bank's view of the card is Tally's.
        let mut card_captured = 0;
        let mut card_refunded = 0;
        let mut card_held = 0;
        for view in &views {
            for leg in view.legs.iter().filter(|leg| leg.kind == "card") {
                card_captured += minor(&leg.captured.value);
                card_refunded += minor(&leg.refunded.value);
                if leg.status == "reserved" {
                    card_held += minor(&leg.amount.value);
                }
            }
        }
        let bank = self.bank.card(&self.card).await.unwrap();
        assert_eq!(
            [
                minor(&bank.available),
                minor(&bank.held),
                minor(&bank.captured),
                minor(&bank.refunded)
            ],
            [
                self.card_funded - card_held - card_captured + card_refunded,
                card_held,
                card_captured,
                card_refunded
            ],
            "{step}: the card at the bank"
        );
        for totals in self.database.currency_totals().await.unwrap() {
            assert_eq!(
                totals.debits_posted, totals.credits_posted,
                "{step}: {totals:?}"
            );
            assert_eq!(
                totals.debits_pending, totals.credits_pending,
                "{step}: {totals:?}"
            );
        }
    }
}

fn leg_kind(kind: &str) -> &'static str {
    match kind {
        "wallet" => "wallet",
        "vault" => "vault",
        "credit_line" => "credit_line",
        "card" => "card",
        other => panic!("unknown leg kind {other}"),
    }
}

/// A refusal the property allows: the rules said no (a state that does not allow it, too
/// little in a source, a decline) or a fault left it in flight. Anything else is a bug.
fn allowed(error: &PaymentServiceError) -> bool {
    !matches!(
        error.code(),
        "storage_unavailable"
            | "payments_ledger_conflict"
            | "payments_ledger_refused"
            | "channel_refused"
            | "payment_internal"
            | "invalid_request"
    )
}

fn captured_net(view: &PaymentView) -> i64 {
    view.legs
        .iter()
        .map(|leg| {
            minor(&leg.captured.value) - minor(&leg.refunded.value) - minor(&leg.refunding.value)
        })
        .sum()
}

async fn story(test: TestDatabase, funds: (i64, i64, i64), orders: Vec<Order>) {
    let shop = Shop::open(test, funds.0, funds.1, funds.2).await;
    let mut ids: Vec<String> = Vec::new();
    shop.check(&ids, "start").await;
    for (number, order) in orders.iter().enumerate() {
        let request = CreatePayment {
            merchant_id: "merchant-1".into(),
            order_reference: format!("order-{number}"),
            customer: CUSTOMER.into(),
            amount: cny_minor(order.amount),
            expires_at: None,
            capture_method: if order.manual {
                CaptureMethod::Manual
            } else {
                CaptureMethod::Automatic
            },
            fundings: fundings(order, shop.credit_account, &shop.card),
        };
        let created = match shop
            .payments
            .create(&format!("{number}:create"), request, now())
            .await
        {
            Ok(view) => view,
            Err(error) => {
                // Fundings that do not sum (a rounding left the rest at zero or below).
                assert!(allowed(&error), "order {number}: {error:?}");
                continue;
            }
        };
        let id = created.id.clone();
        ids.push(id.clone());
        match order.fault {
            Fault::None => {}
            Fault::Decline => shop.set_faults(true, false).await,
            Fault::BankAnswerLost => shop.set_faults(false, true).await,
            Fault::StepAnswerLost(step) => shop.payments.lose_answer_of_step(step),
        }
        let confirm_key = format!("{number}:confirm");
        let confirm = || {
            shop.payments
                .confirm(&confirm_key, &id, ConfirmInput::default(), now())
        };
        let confirmed = confirm().await;
        // A step hook not reached by this payment must not fire in the next one.
        shop.payments.lose_answer_of_step(-1);
        shop.settle(&ids).await;
        // The shopper's device sends an answer it never got again, with the same key.
        let confirmed = match confirmed {
            Err(PaymentServiceError::InFlight { .. }) => confirm().await,
            other => other,
        };
        if let Err(error) = &confirmed {
            assert!(allowed(error), "order {number} confirm: {error:?}");
        }
        shop.settle(&ids).await;
        shop.check(
            &ids,
            &format!("order {number} confirmed ({:?})", order.fault),
        )
        .await;
        for (index, action) in order.actions.iter().enumerate() {
            let key = format!("{number}:{index}");
            let view = shop.payments.get(&id, now()).await.unwrap();
            let answer = match *action {
                Action::Capture(share) => {
                    let amount = (order.amount * i64::from(share) / 100).max(1);
                    Some(
                        shop.payments
                            .capture(&key, &id, Some(cny_minor(amount)), now())
                            .await,
                    )
                }
                Action::Cancel => Some(shop.payments.cancel(&key, &id, now()).await),
                Action::Refund(share, policy) => {
                    let left = captured_net(&view);
                    let amount = (left * i64::from(share) / 100).max(1);
                    Some(
                        shop.payments
                            .refund(&key, &id, cny_minor(amount), policy, now())
                            .await,
                    )
                }
                Action::RefundWithBankAnswerLost(share) => {
                    let left = captured_net(&view);
                    let amount = (left * i64::from(share) / 100).max(1);
                    shop.set_faults(false, true).await;
                    Some(
                        shop.payments
                            .refund(&key, &id, cny_minor(amount), RefundPolicy::CardLast, now())
                            .await,
                    )
                }
                Action::Recover => {
                    shop.payments.recover(now(), 100).await.unwrap();
                    None
                }
            };
            shop.settle(&ids).await;
            if let Some(Err(error)) = &answer {
                assert!(allowed(error), "order {number} {action:?}: {error:?}");
            }
            shop.check(&ids, &format!("order {number} {action:?}"))
                .await;
        }
    }
}

fn funds() -> impl Strategy<Value = (i64, i64, i64)> {
    (0_i64..=30_000, 0_i64..=30_000, 0_i64..=60_000)
}

proptest! {
    // Each case opens a database, a credit service and a bank simulator, and every fault
    // costs a channel timeout: a few cases keep the whole under a minute a backend.
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn payments_under_channel_faults_keep_every_source_whole_sqlite(
        funds in funds(),
        orders in prop::collection::vec(order(), 1..=3),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            story(TestDatabase::sqlite().await.unwrap(), funds, orders).await;
        });
    }

    #[test]
    fn payments_under_channel_faults_keep_every_source_whole_postgres(
        funds in funds(),
        orders in prop::collection::vec(order(), 1..=3),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            if let Some(test) = TestDatabase::postgres().await {
                story(test, funds, orders).await;
            }
        });
    }
}
