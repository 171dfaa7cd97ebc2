//! Property tests of schedules: principal parts sum exactly, nothing negative, dates ordered,
//! for every product kind and term.
#![allow(clippy::unwrap_used)]

use jiff::civil::Date;
use proptest::prelude::*;
use rust_decimal::Decimal;
use tally_core::{Amount, Currency, Rounding};
use tally_credit::{Cycle, EarlyPayoffRule, FeeModel, Product, RemainderOn, Schedule, TermPricing};

fn models() -> Vec<FeeModel> {
    vec![
        FeeModel::FlatFee,
        FeeModel::Annuity,
        FeeModel::EqualPrincipal,
        FeeModel::InterestFree,
        FeeModel::PayInN {
            first_share: Decimal::new(25, 2),
            interval_days: 14,
        },
    ]
}

const ROUNDINGS: [Rounding; 4] = [
    Rounding::HalfUp,
    Rounding::HalfEven,
    Rounding::Down,
    Rounding::Up,
];

proptest! {
    #[test]
    fn schedules_sum_exactly_and_nothing_is_negative(
        minor in 1_i64..10_000_000_000,
        model_index in 0_usize..5,
        term_index in 0_usize..5,
        rate_thousandths in 0_i64..400,
        rounding_index in 0_usize..4,
        remainder_first in any::<bool>(),
        day_offset in 0_i64..3000,
        statement_day in 1_i8..=28,
    ) {
        let model = models()[model_index].clone();
        let periods = if model_index == 4 { [2, 3, 4, 6, 12][term_index] } else { [1, 3, 6, 12, 24][term_index] };
        // Flat fee rates are per period (up to 4%), others annual (up to 40%).
        let rate = if model_index == 0 { Decimal::new(rate_thousandths, 4) } else { Decimal::new(rate_thousandths, 3) };
        let product = Product {
            code: "p".into(),
            name: "p".into(),
            currency: Currency::CNY,
            fee_model: model,
            terms: vec![TermPricing::new(periods, rate)],
            rounding: ROUNDINGS[rounding_index],
            remainder_on: if remainder_first { RemainderOn::First } else { RemainderOn::Last },
            early_payoff: EarlyPayoffRule::PrincipalOnly,
            fees_refundable: true,
        };
        product.validate().unwrap();
        let purchase = Date::constant(2025, 1, 1).checked_add(jiff::Span::new().days(day_offset)).unwrap();
        let principal = Amount::new(minor, Currency::CNY);
        let plan = Schedule::build(&product, principal, periods, purchase, Cycle::new(statement_day, 9).unwrap()).unwrap();
        prop_assert_eq!(plan.installments.len(), periods as usize);
        let sum: i64 = plan.installments.iter().map(|item| item.principal.minor()).sum();
        prop_assert_eq!(sum, minor);
        for item in &plan.installments {
            prop_assert!(!item.principal.is_negative() && !item.fee.is_negative() && !item.interest.is_negative());
            prop_assert!(item.due_date >= item.statement_date);
            prop_assert!(item.statement_date >= purchase);
        }
        for pair in plan.installments.windows(2) {
            prop_assert!(pair[0].due_date < pair[1].due_date);
        }
        // Principal parts of even splits differ only by the stated remainder.
        if !matches!(plan_model(&product), FeeModel::Annuity | FeeModel::PayInN { .. }) {
            let base = minor / i64::from(periods);
            let remainder_index = if remainder_first { 0 } else { periods as usize - 1 };
            for (index, item) in plan.installments.iter().enumerate() {
                let expected = if index == remainder_index { minor - base * (i64::from(periods) - 1) } else { base };
                prop_assert_eq!(item.principal.minor(), expected);
            }
        }
        // The true APR exists and is never negative for these plans.
        let apr = plan.true_apr().unwrap();
        prop_assert!(!apr.nominal_annual.is_sign_negative() || apr.nominal_annual.is_zero());
    }
}

fn plan_model(product: &Product) -> &FeeModel {
    &product.fee_model
}
