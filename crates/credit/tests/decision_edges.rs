//! Edges of the credit decision's rule table: an applicant exactly at the youngest or oldest
//! age, exactly at the most debt for their income, with no income at all; and the tables the
//! rules refuse to load (ages that cross, a negative tier).

use rust_decimal::Decimal;
use tally_core::{Amount, Currency};
use tally_credit::{Applicant, CreditPolicy, Decision, DeclineReason};

fn yuan(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

/// 18 to 70, at most 40 % of income in debt payments, one tier from score 600.
fn policy() -> CreditPolicy {
    CreditPolicy::from_toml(
        r#"age_min = 18
           age_max = 70
           debt_to_income_max = "0.4"
           limit_step_minor = 100
           tiers = [{ name = "only", score_min = 600, income_multiple = "1", limit_max_minor = 100000 }]"#,
    )
    .expect("a policy")
}

fn applicant(age_years: u8, income: i64, debt: i64) -> Applicant {
    Applicant {
        age_years,
        monthly_income: yuan(income),
        monthly_debt_payments: yuan(debt),
        score: Some(600),
        block_listed: false,
    }
}

fn declined(reasons: Vec<DeclineReason>) -> Decision {
    Decision::Declined { reasons }
}

fn approved(limit: i64) -> Decision {
    Decision::Approved {
        limit: yuan(limit),
        tier: "only".into(),
    }
}

#[test]
fn the_youngest_and_the_oldest_age_are_inside_the_range() {
    let policy = policy();
    let decide = |age| {
        policy
            .decide(&applicant(age, 50_000, 0))
            .expect("a decision")
    };
    assert_eq!(decide(18), approved(50_000));
    assert_eq!(decide(70), approved(50_000));
    assert_eq!(decide(17), declined(vec![DeclineReason::AgeOutOfRange]));
    assert_eq!(decide(71), declined(vec![DeclineReason::AgeOutOfRange]));
}

#[test]
fn debt_exactly_at_the_most_for_the_income_is_accepted() {
    let policy = policy();
    // 200.00 of 500.00 is 40 %: at the most, approved; a minor unit more is not.
    assert_eq!(
        policy
            .decide(&applicant(30, 50_000, 20_000))
            .expect("a decision"),
        approved(50_000)
    );
    assert_eq!(
        policy
            .decide(&applicant(30, 50_000, 20_001))
            .expect("a decision"),
        declined(vec![DeclineReason::DebtToIncomeTooHigh])
    );
}

#[test]
fn no_income_declines_for_that_reason_without_dividing_by_it() {
    let policy = policy();
    for income in [0, -100] {
        assert_eq!(
            policy
                .decide(&applicant(30, income, 1_000))
                .expect("a decision"),
            declined(vec![DeclineReason::NoIncome]),
            "income {income}"
        );
    }
}

#[test]
fn a_table_whose_ages_cross_or_whose_tiers_are_negative_is_refused() {
    let base = policy();
    // One age only is a valid (if narrow) table.
    let one_age = CreditPolicy {
        age_min: 40,
        age_max: Some(40),
        ..base.clone()
    };
    assert!(one_age.validate().is_ok());
    let crossed = CreditPolicy {
        age_min: 41,
        age_max: Some(40),
        ..base.clone()
    };
    let error = crossed.validate().expect_err("ages cross");
    assert_eq!(error.code(), "credit_invalid_configuration");
    assert!(
        error.to_string().contains("age_min is above age_max"),
        "{error}"
    );

    // A tier may cap limits at zero (it approves nothing above it), not below.
    let mut zero = base.clone();
    zero.tiers[0].limit_max_minor = 0;
    assert!(zero.validate().is_ok());
    assert_eq!(
        zero.decide(&applicant(30, 50_000, 0)).expect("a decision"),
        approved(0)
    );
    let mut negative_limit = base.clone();
    negative_limit.tiers[0].limit_max_minor = -1;
    let mut negative_multiple = base.clone();
    negative_multiple.tiers[0].income_multiple = Decimal::new(-1, 1);
    for table in [negative_limit, negative_multiple] {
        let error = table.validate().expect_err("a negative tier");
        assert!(
            error
                .to_string()
                .contains("tier multiples and limits must not be negative"),
            "{error}"
        );
    }
    let mut no_step = base;
    no_step.limit_step_minor = 0;
    assert!(no_step.validate().is_err());
}
