//! Edges of product configuration: the fewest and most installments of a pay-in-N plan, the
//! periods a year its APR is annualised over, what a product left unsaid defaults to, and a
//! catalog asked for one product by code.

use rust_decimal::Decimal;
use tally_core::Rounding;
use tally_credit::{Catalog, EarlyPayoffRule, FeeModel, Product, RemainderOn};

fn pay_in_n(periods: u32, interval_days: i32) -> Result<Product, tally_credit::CreditError> {
    Product::from_toml(&format!(
        r#"code = "pay"
           name = "Pay in N"
           currency = "CNY"
           fee_model = {{ kind = "pay_in_n", first_share = "0.25", interval_days = {interval_days} }}
           terms = [{{ periods = {periods}, rate = "0.04" }}]"#
    ))
}

#[test]
fn a_pay_in_n_plan_has_two_to_twelve_installments() {
    for periods in [2, 12] {
        assert!(pay_in_n(periods, 14).is_ok(), "{periods} installments");
    }
    for periods in [1, 13] {
        let error = pay_in_n(periods, 14).expect_err("refused");
        assert_eq!(error.code(), "credit_invalid_product");
        assert!(
            error.to_string().contains(&format!(
                "pay-in-N needs 2 to 12 installments, got {periods}"
            )),
            "{error}"
        );
    }
}

#[test]
fn a_pay_in_n_plan_is_annualised_over_its_intervals_in_a_year() {
    // 365 / 14 = 26 fortnights, 365 / 7 = 52 weeks, 365 / 30 = 12, 365 / 1 = 365 days.
    for (interval_days, periods_per_year) in [(14, 26), (7, 52), (30, 12), (1, 365)] {
        let product = pay_in_n(4, interval_days).expect("a product");
        assert_eq!(
            product.periods_per_year(),
            periods_per_year,
            "every {interval_days} days"
        );
    }
    let catalog = Catalog::default_catalog().expect("the catalog");
    for product in &catalog.products {
        let expected = match product.fee_model {
            FeeModel::PayInN { .. } => 26,
            _ => 12,
        };
        assert_eq!(product.periods_per_year(), expected, "{}", product.code);
    }
}

#[test]
fn what_a_product_leaves_unsaid_takes_the_documented_default() {
    let product = Product::from_toml(
        r#"code = "plain"
           name = "Plain"
           currency = "CNY"
           fee_model = { kind = "annuity" }
           terms = [{ periods = 12, rate = "0.15" }]"#,
    )
    .expect("a product");
    assert_eq!(product.rounding, Rounding::HalfUp);
    assert_eq!(product.remainder_on, RemainderOn::Last);
    assert_eq!(product.early_payoff, EarlyPayoffRule::PrincipalOnly);
    // The fees of a refunded principal are refunded unless the product says otherwise.
    assert!(product.fees_refundable);
    let kept = Product::from_toml(
        r#"code = "kept"
           name = "Fees kept"
           currency = "CNY"
           fee_model = { kind = "flat_fee" }
           terms = [{ periods = 3, rate = "0.007" }]
           fees_refundable = false"#,
    )
    .expect("a product");
    assert!(!kept.fees_refundable);
}

#[test]
fn a_catalog_finds_each_product_by_its_own_code() {
    let catalog = Catalog::default_catalog().expect("the catalog");
    for code in [
        "installment",
        "loan",
        "equal-principal",
        "interest-free",
        "pay-in-4",
    ] {
        let product = catalog.product(code).expect("listed");
        assert_eq!(product.code, code);
    }
    assert!(catalog.product("mortgage").is_none());
    let loan = catalog.product("loan").expect("listed");
    assert_eq!(loan.fee_model, FeeModel::Annuity);
    assert_eq!(loan.term(12).expect("offered").rate, Decimal::new(15, 2));
}
