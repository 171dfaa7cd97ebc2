//! Edges of the credit crate's decimal finance: powers whose next square would overflow,
//! and a negative rate of return (cash flows that repay less than was lent, as after a
//! refund or a write-off).

use rust_decimal::Decimal;
use std::str::FromStr;
use tally_credit::finance::{internal_rate_of_return, net_present_value, power};
use tally_credit::TrueApr;

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal")
}

#[test]
fn a_power_never_squares_past_what_it_needs() {
    // 10^9 cubed fits in a decimal; its fourth power (the square a needless last step
    // would take) does not.
    let base = decimal("1000000000");
    assert_eq!(
        power(base, 3).expect("fits"),
        decimal("1000000000000000000000000000")
    );
    assert_eq!(power(Decimal::MAX, 1).expect("fits"), Decimal::MAX);
    assert_eq!(power(base, 0).expect("fits"), Decimal::ONE);
    assert!(power(base, 4).is_err(), "10^36 does not fit in a decimal");
}

#[test]
fn cash_flows_that_repay_less_than_was_lent_have_a_negative_rate() {
    // 100 lent, 50 and 40 repaid: 50/(1+r) + 40/(1+r)^2 = 100 gives r = -6.9926...%.
    let flows = [decimal("-100"), decimal("50"), decimal("40")];
    let rate = internal_rate_of_return(&flows).expect("a rate");
    assert!(
        rate > decimal("-0.06993") && rate < decimal("-0.06992"),
        "rate {rate}"
    );
    let value = net_present_value(rate, &flows).expect("a value");
    assert!(
        value.abs() < decimal("0.000001"),
        "value at the rate {value}"
    );
    // Repaid exactly what was lent: a zero rate.
    let even = [decimal("-100"), decimal("60"), decimal("40")];
    assert_eq!(
        internal_rate_of_return(&even).expect("a rate"),
        Decimal::ZERO
    );
}

#[test]
fn a_plan_that_repays_nothing_after_the_purchase_has_a_zero_rate() {
    // What is left of a pay-in-N plan refunded after its first installment: nothing flows
    // after the purchase, so there is no rate to search for and the disclosed APR is zero.
    let flows = [
        decimal("-7500"),
        Decimal::ZERO,
        Decimal::ZERO,
        Decimal::ZERO,
    ];
    let apr = TrueApr::of_cash_flows(&flows, 26).expect("an APR");
    assert_eq!(apr.periodic, Decimal::ZERO);
    assert_eq!(apr.nominal_annual, Decimal::ZERO);
    assert_eq!(apr.effective_annual, Decimal::ZERO);
    assert_eq!(apr.periods_per_year, 26);
    // A single flow, and none at all, likewise.
    for flows in [&[decimal("-100")][..], &[]] {
        assert_eq!(
            TrueApr::of_cash_flows(flows, 12).expect("an APR").periodic,
            Decimal::ZERO
        );
    }
}

#[test]
fn the_effective_annual_rate_compounds_the_periodic_rate() {
    // 100 lent, 101 repaid a month later: 1% a month, 12% nominal a year, and
    // 1.01^12 - 1 = 0.126825030131969720661201 effective, rounded to 10 places.
    let apr = TrueApr::of_cash_flows(&[decimal("-100"), decimal("101")], 12).expect("an APR");
    assert_eq!(apr.periodic, decimal("0.01"));
    assert_eq!(apr.nominal_annual, decimal("0.12"));
    assert_eq!(apr.effective_annual, decimal("0.1268250301"));
    assert_eq!(apr.nominal_percent(), decimal("12.00"));
}
