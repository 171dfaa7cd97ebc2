//! Differential tests against numpy-financial: the issue's figures and the generated table
//! `tests/data/numpy_financial_oracle.csv` (regenerate with `python3 bench/credit/oracle.py`).
#![allow(clippy::unwrap_used)]

use jiff::civil::date;
use rust_decimal::Decimal;
use std::str::FromStr;
use tally_core::{Amount, Currency, Rounding};
use tally_credit::finance;
use tally_credit::{Cycle, FeeModel, Product, RemainderOn, Schedule, TermPricing};

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

fn cents(text: &str) -> i64 {
    Amount::parse(text, Currency::CNY).unwrap().minor()
}

fn product(model: FeeModel, periods: u32, rate: Decimal) -> Product {
    Product {
        code: "oracle".into(),
        name: "oracle".into(),
        currency: Currency::CNY,
        fee_model: model,
        terms: vec![TermPricing::new(periods, rate)],
        rounding: Rounding::HalfUp,
        remainder_on: RemainderOn::Last,
        early_payoff: tally_credit::EarlyPayoffRule::PrincipalOnly,
        fees_refundable: true,
    }
}

fn schedule(model: FeeModel, principal_minor: i64, periods: u32, rate: Decimal) -> Schedule {
    Schedule::build(
        &product(model, periods, rate),
        Amount::new(principal_minor, Currency::CNY),
        periods,
        date(2026, 1, 10),
        Cycle::new(20, 9).unwrap(),
    )
    .unwrap()
}

fn round_to_minor(major: Decimal) -> i64 {
    Rounding::HalfUp
        .round_minor(major * Decimal::ONE_HUNDRED)
        .unwrap()
}

#[test]
fn the_issue_figures() {
    // pmt(0.075/12, 180, 200000) = -1854.02
    let monthly = decimal("0.075") / Decimal::from(12);
    let payment = finance::payment(monthly, 180, decimal("200000")).unwrap();
    assert_eq!(round_to_minor(payment), 185402);

    // 2,500 at 8.24% / 12 over 12: payment 217.75, first interest 17.17, first principal 200.58.
    let plan = schedule(FeeModel::Annuity, 250000, 12, decimal("0.0824"));
    let first = plan.installments[0];
    assert_eq!(first.total().unwrap().minor(), 21775);
    assert_eq!(first.interest.minor(), 1717);
    assert_eq!(first.principal.minor(), 20058);

    // Flat-fee true APR: 3 at 0.7% ≈ 12.56%; 24 at 0.5% ≈ 11.13%; 12 at 0.8% ≈ 17.27%.
    for (periods, rate, percent) in [
        (3, "0.007", "12.56"),
        (24, "0.005", "11.13"),
        (12, "0.008", "17.27"),
    ] {
        let plan = schedule(FeeModel::FlatFee, 1_200_000, periods, decimal(rate));
        let apr = plan.true_apr().unwrap();
        assert_eq!(
            apr.nominal_percent(),
            decimal(percent),
            "{periods} at {rate}: {apr:?}"
        );
        assert!(apr.effective_annual > apr.nominal_annual);
    }
}

struct Row {
    model: String,
    principal: String,
    rate: String,
    periods: u32,
    period: u32,
    principal_part: String,
    fee: String,
    interest: String,
    numpy: Option<(String, String, String)>,
    numpy_irr: String,
}

fn rows() -> Vec<Row> {
    let text = include_str!("data/numpy_financial_oracle.csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 12, "{line}");
            Row {
                model: fields[0].into(),
                principal: fields[1].into(),
                rate: fields[2].into(),
                periods: fields[3].parse().unwrap(),
                period: fields[4].parse().unwrap(),
                principal_part: fields[5].into(),
                fee: fields[6].into(),
                interest: fields[7].into(),
                numpy: (!fields[8].is_empty())
                    .then(|| (fields[8].into(), fields[9].into(), fields[10].into())),
                numpy_irr: fields[11].into(),
            }
        })
        .collect()
}

#[test]
fn every_row_of_the_oracle_table_matches_to_the_minor_unit() {
    let rows = rows();
    assert!(rows.len() > 5000, "the oracle table looks truncated");
    let mut cases = 0;
    let mut start = 0;
    let mut largest_drift_from_exact = 0_i64;
    while start < rows.len() {
        let first = &rows[start];
        let count = first.periods as usize;
        let case = &rows[start..start + count];
        start += count;
        cases += 1;
        let model = match first.model.as_str() {
            "annuity" => FeeModel::Annuity,
            "equal_principal" => FeeModel::EqualPrincipal,
            "flat_fee" => FeeModel::FlatFee,
            other => panic!("unknown model {other}"),
        };
        let principal = cents(&first.principal);
        let rate = decimal(&first.rate);
        let label = format!(
            "{} {} at {} over {}",
            first.model, first.principal, first.rate, first.periods
        );
        let plan = schedule(model, principal, first.periods, rate);
        assert_eq!(plan.installments.len(), count, "{label}");
        for (row, installment) in case.iter().zip(&plan.installments) {
            assert_eq!(row.period, installment.number, "{label}");
            assert_eq!(
                installment.principal.minor(),
                cents(&row.principal_part),
                "{label} period {}",
                row.period
            );
            assert_eq!(
                installment.fee.minor(),
                cents(&row.fee),
                "{label} period {}",
                row.period
            );
            assert_eq!(
                installment.interest.minor(),
                cents(&row.interest),
                "{label} period {}",
                row.period
            );
            if let Some((payment, interest, principal_part)) = &row.numpy {
                // The exact annuity, in decimal, agrees with numpy's floats to 10^-6 of a unit.
                let monthly = rate / Decimal::from(12);
                let whole = Decimal::from(principal) / Decimal::ONE_HUNDRED;
                let exact_payment = finance::payment(monthly, row.periods, whole).unwrap();
                let exact_interest =
                    finance::interest_part(monthly, row.period, row.periods, whole).unwrap();
                let exact_principal =
                    finance::principal_part(monthly, row.period, row.periods, whole).unwrap();
                let tolerance = Decimal::new(1, 6);
                assert!(
                    (exact_payment - decimal(payment)).abs() < tolerance,
                    "{label}: payment {exact_payment} vs {payment}"
                );
                assert!(
                    (exact_interest - decimal(interest)).abs() < tolerance,
                    "{label}: interest {exact_interest} vs {interest}"
                );
                assert!(
                    (exact_principal - decimal(principal_part)).abs() < tolerance,
                    "{label}: principal {exact_principal} vs {principal_part}"
                );
                // The rounded schedule: the equal payment is the exact one rounded half-up to
                // the cent, and so is the first period's interest. (Rounding the exact decimal,
                // already shown equal to numpy's float to 10^-6, and not the float itself:
                // 2,500 × 0.075 / 12 = 15.625 exactly, which the float holds as 15.62499….) (Below 100.00 the
                // per-period rounding of interest can exhaust the balance before the last
                // period; the schedule still matches the independent one above exactly.)
                if row.period < row.periods && principal >= 10_000 {
                    assert_eq!(
                        installment.total().unwrap().minor(),
                        round_to_minor(exact_payment),
                        "{label}"
                    );
                }
                if row.period == 1 {
                    assert_eq!(
                        installment.interest.minor(),
                        round_to_minor(exact_interest),
                        "{label}"
                    );
                }
                let drift = (installment.interest.minor() - round_to_minor(exact_interest)).abs();
                largest_drift_from_exact = largest_drift_from_exact.max(drift);
            }
        }
        let apr = plan.true_apr().unwrap();
        let numpy_irr = decimal(&case[0].numpy_irr);
        assert!(
            (apr.periodic - numpy_irr).abs() < Decimal::new(1, 9),
            "{label}: irr {} vs numpy {numpy_irr}",
            apr.periodic
        );
    }
    assert_eq!(cases, 736);
    // Interest on the rounded declining balance stays within a cent of the exact annuity's
    // for every row of the table (the 180-period case included).
    assert!(
        largest_drift_from_exact <= 1,
        "drift {largest_drift_from_exact}"
    );
}
