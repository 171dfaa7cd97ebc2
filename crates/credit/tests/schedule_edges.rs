//! Edges of installment schedules that no built plan reaches: the cycles an existing account
//! may hold (due days 0 to 31) against those a new one may choose (1 to 28), and the
//! schedule's own invariant check, which must refuse a plan whose principal parts do not sum
//! to its principal or that has any negative part.

use jiff::civil::date;
use rust_decimal::Decimal;
use tally_core::{Amount, Currency, Rounding};
use tally_credit::{
    Cycle, EarlyPayoffRule, FeeModel, Installment, Product, RemainderOn, Schedule, TermPricing,
};

fn yuan(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn flat_fee_product() -> Product {
    Product {
        code: "flat".into(),
        name: "flat".into(),
        currency: Currency::CNY,
        fee_model: FeeModel::FlatFee,
        terms: vec![TermPricing::new(3, Decimal::new(7, 3))],
        rounding: Rounding::HalfUp,
        remainder_on: RemainderOn::Last,
        early_payoff: EarlyPayoffRule::PrincipalOnly,
        fees_refundable: true,
    }
}

/// A cycle as an account stored it, without the rules for a new one.
fn stored(statement_day: i8, due_days: i32) -> Cycle {
    Cycle {
        statement_day,
        due_days,
    }
}

fn build_with(cycle: Cycle) -> Result<Schedule, tally_credit::CreditError> {
    Schedule::build(
        &flat_fee_product(),
        yuan(30_000),
        3,
        date(2026, 1, 10),
        cycle,
    )
}

#[test]
fn a_new_cycle_is_due_one_to_twenty_eight_days_after_its_statement() {
    for due_days in [1, 28] {
        assert!(Cycle::new(20, due_days).is_ok(), "due days {due_days}");
    }
    for due_days in [0, 29, -1] {
        let error = Cycle::new(20, due_days).expect_err("refused");
        assert_eq!(
            error.code(),
            "credit_invalid_due_days",
            "due days {due_days}"
        );
    }
    for statement_day in [1, 28] {
        assert!(Cycle::new(statement_day, 9).is_ok(), "day {statement_day}");
    }
    for statement_day in [0, 29] {
        let error = Cycle::new(statement_day, 9).expect_err("refused");
        assert_eq!(error.code(), "credit_invalid_statement_day");
    }
}

#[test]
fn an_existing_account_keeps_buying_with_any_due_days_tally_once_accepted() {
    // 0 and 29 to 31 predate the rule for new cycles: a plan is still built for them.
    for due_days in [0, 29, 31] {
        let plan = build_with(stored(20, due_days)).expect("a stored cycle builds");
        assert_eq!(
            plan.installments[0].due_date,
            date(2026, 1, 20) + jiff::Span::new().days(due_days)
        );
    }
    // Outside what Tally ever accepted, the stored cycle is refused as a broken record.
    for due_days in [-1, 32] {
        let error = build_with(stored(20, due_days)).expect_err("refused");
        assert_eq!(
            error.code(),
            "credit_invalid_configuration",
            "due days {due_days}"
        );
    }
    let error = build_with(stored(29, 9)).expect_err("refused");
    assert_eq!(error.code(), "credit_invalid_statement_day");
}

#[test]
fn a_statement_date_is_the_cycle_day_of_any_month() {
    let cycle = Cycle::new(20, 9).expect("a cycle");
    assert!(cycle.is_statement_date(date(2026, 1, 20)));
    assert!(cycle.is_statement_date(date(2027, 2, 20)));
    assert!(!cycle.is_statement_date(date(2026, 1, 19)));
    assert!(!cycle.is_statement_date(date(2026, 1, 21)));
}

#[test]
fn the_invariant_check_refuses_parts_that_do_not_sum_or_are_negative() {
    let built = build_with(Cycle::new(20, 9).expect("a cycle")).expect("a plan");
    assert!(built.check().is_ok());

    let refused = |schedule: &Schedule| {
        let error = schedule.check().expect_err("refused");
        assert_eq!(error.code(), "credit_invalid_configuration");
    };
    // One minor unit of principal missing.
    let mut short = built.clone();
    short.installments[2].principal = yuan(9_999);
    refused(&short);
    // The parts still sum to the principal, but one is negative.
    let mut negative_principal = built.clone();
    negative_principal.installments[1].principal = yuan(-100);
    negative_principal.installments[2].principal = yuan(20_100);
    refused(&negative_principal);
    // A negative fee alone, and a negative interest alone.
    let mut negative_fee = built.clone();
    negative_fee.installments[0].fee = yuan(-1);
    refused(&negative_fee);
    let mut negative_interest = built.clone();
    negative_interest.installments[0].interest = yuan(-1);
    refused(&negative_interest);
    // Zero parts are allowed (a refund leaves them).
    let mut zero = built;
    zero.installments[0] = Installment {
        principal: yuan(0),
        fee: yuan(0),
        ..zero.installments[0]
    };
    zero.installments[2].principal = yuan(20_000);
    assert!(zero.check().is_ok());
}

#[test]
fn a_cycle_stored_without_due_days_is_due_nine_days_after_its_statement() {
    let cycle: Cycle = serde_json::from_str(r#"{"statement_day": 20}"#).expect("a cycle");
    assert_eq!(cycle.due_days, 9);
    assert_eq!(
        cycle.due_date(date(2026, 1, 20)).expect("a date"),
        date(2026, 1, 29)
    );
}

#[test]
fn a_stored_plan_without_interest_has_no_interest_basis() {
    // A flat-fee plan stored before Tally kept the interest basis: its rate is a fee per
    // period, not an annual rate, and it bills no interest, so no basis is inferred from it.
    let built = build_with(Cycle::new(20, 9).expect("a cycle")).expect("a plan");
    assert_eq!(built.declining_balance, None);
    assert!(built.pricing.is_some());
    assert_eq!(built.interest_basis().expect("a basis"), None);
}
