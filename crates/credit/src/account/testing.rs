//! Fixtures the account's tests share: amounts in yuan, a flat-fee product, an account with
//! one or two purchases, and end of day run over a span of dates.

use super::{Account, AccountPolicy, AccountStatus, Bucket, DayOutcome};
use crate::posting::Posting;
use crate::product::{EarlyPayoffRule, FeeModel, Product, RemainderOn, TermPricing};
use crate::schedule::Cycle;
use jiff::civil::{date, Date};
use jiff::ToSpan;
use rust_decimal::Decimal;
use tally_core::{Amount, Currency, Rounding};

pub(super) fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

pub(super) fn flat(early_payoff: EarlyPayoffRule) -> Product {
    Product {
        code: "flat".into(),
        name: "flat".into(),
        currency: Currency::CNY,
        fee_model: FeeModel::FlatFee,
        terms: vec![
            TermPricing::new(1, Decimal::ZERO),
            TermPricing::new(6, Decimal::new(6, 3)),
        ],
        rounding: Rounding::HalfUp,
        remainder_on: RemainderOn::Last,
        early_payoff,
        fees_refundable: true,
    }
}

/// An account with a purchase of `value` over `periods` on 10 January.
pub(super) fn with_purchase(
    value: &str,
    periods: u32,
    early_payoff: EarlyPayoffRule,
) -> (Account, u32) {
    let mut account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
    account.authorize(date(2026, 1, 10), cny(value)).unwrap();
    let (id, _) = account
        .capture(date(2026, 1, 10), cny(value), &flat(early_payoff), periods)
        .unwrap();
    (account, id)
}

pub(super) fn run(
    account: &mut Account,
    policy: &AccountPolicy,
    from: Date,
    until: Date,
) -> Vec<Posting> {
    let mut postings = Vec::new();
    let mut outcome = DayOutcome::default();
    let mut day = from;
    while day <= until {
        account.end_of_day(day, policy, &mut outcome).unwrap();
        postings.extend(outcome.postings.iter().cloned());
        day = day.checked_add(1.day()).unwrap();
    }
    postings
}

/// Runs end of day from the day after the last one run up to and including `until`.
pub(super) fn run_to(account: &mut Account, policy: &AccountPolicy, until: Date) -> Vec<Posting> {
    let from = account
        .last_end_of_day
        .unwrap()
        .checked_add(1.day())
        .unwrap();
    run(account, policy, from, until)
}

/// 1,000.00 in one period and 600.00 over six at 0.6% (100.00 + 3.60 a month), bought
/// 10 January, in the order given (`six_first`: the six-period plan is plan 1).
pub(super) fn two_plans(six_first: bool) -> (Account, u32, u32) {
    let mut account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
    let product = flat(EarlyPayoffRule::PrincipalOnly);
    let day = date(2026, 1, 10);
    account.authorize(day, cny("1600.00")).unwrap();
    let mut capture = |value: &str, periods: u32| {
        account
            .capture(day, cny(value), &product, periods)
            .unwrap()
            .0
    };
    let (one, six) = if six_first {
        let six = capture("600.00", 6);
        (capture("1000.00", 1), six)
    } else {
        let one = capture("1000.00", 1);
        (one, capture("600.00", 6))
    };
    (account, one, six)
}

pub(super) fn assert_in_good_standing(account: &Account) {
    assert_eq!(account.bucket, Bucket::Current);
    assert_eq!(account.days_past_due, 0);
    assert_eq!(account.status, AccountStatus::Open);
    assert!(account.dues.iter().all(|due| due.penalty.is_zero()));
    assert!(account
        .plans
        .iter()
        .all(|plan| plan.penalty_charged.is_zero()));
    assert!(account
        .dues
        .iter()
        .all(|due| due.outstanding() == 0 || due.revolving));
}

/// An account whose plan is paid off and whose customer overpaid by 150.00.
pub(super) fn holding_150() -> Account {
    let (mut account, plan) = with_purchase("100.00", 1, EarlyPayoffRule::PrincipalOnly);
    account
        .repay(date(2026, 1, 11), cny("150.00"), &AccountPolicy::default())
        .unwrap();
    let (quote, _) = account.early_payoff_quote(plan).unwrap();
    account
        .early_payoff(date(2026, 1, 11), plan, quote)
        .unwrap();
    assert_eq!(account.credit_balance, cny("150.00"));
    account
}

/// An account as Tally stored it before new cycles were limited to `due_days` 1 to 28:
/// statement day 20 and `due_days` as given (0 to 31 were accepted then).
pub(super) fn stored_with_due_days(due_days: i32) -> Account {
    let account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
    let mut json = serde_json::to_value(&account).unwrap();
    json["cycle"]["due_days"] = due_days.into();
    let account: Account = serde_json::from_value(json).unwrap();
    assert_eq!(account.cycle.due_days, due_days);
    account
}
