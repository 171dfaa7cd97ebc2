//! Credit products: how a purchase is priced and split, configured in TOML (serde).

use crate::error::CreditError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{Currency, Rounding};

/// Terms (in monthly periods) that monthly products may offer.
pub const MONTHLY_TERMS: [u32; 5] = [1, 3, 6, 12, 24];
/// Most installments of a pay-in-N plan.
pub const PAY_IN_N_INSTALLMENTS_MAX: u32 = 12;

/// How the price of a plan is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeeModel {
    /// A fee each period of `rate` × the original principal; principal split evenly.
    /// The term's rate is the fee rate per period (0.005 = 0.5% a period).
    FlatFee,
    /// Interest on the declining balance at the term's annual rate / 12, equal installments.
    Annuity,
    /// Equal principal parts; interest on the declining balance at the term's annual rate / 12.
    EqualPrincipal,
    /// The customer pays the principal only, split evenly; the merchant pays the term's rate
    /// × the principal as a discount on its settlement.
    InterestFree,
    /// `first_share` of the principal at purchase, the rest in equal parts every
    /// `interval_days`; no fee to the customer, the term's rate is the merchant discount.
    PayInN {
        #[serde(with = "tally_core::rate::exact")]
        first_share: Decimal,
        interval_days: i32,
    },
}

impl FeeModel {
    /// Whether the term's rate is charged to the customer (fees or interest) rather than
    /// being the merchant's discount.
    pub fn charges_the_customer(&self) -> bool {
        matches!(
            self,
            FeeModel::FlatFee | FeeModel::Annuity | FeeModel::EqualPrincipal
        )
    }
}

/// Which installment receives the minor units left over when the principal is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemainderOn {
    First,
    Last,
}

/// What paying a plan off early costs beyond its remaining principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EarlyPayoffRule {
    /// Remaining principal only; fees and interest of unbilled periods are waived.
    PrincipalOnly,
    /// Remaining principal plus the fee or interest of the next unbilled period.
    OneMorePeriod,
    /// Remaining principal plus every remaining fee or interest (flat-fee products in China
    /// often work this way).
    AllRemainingCharges,
}

/// The price of one term of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermPricing {
    /// Number of installments.
    pub periods: u32,
    /// Fee rate per period (flat fee), annual rate (annuity, equal principal) or merchant
    /// discount (interest-free, pay-in-N), as a decimal fraction written as a string.
    #[serde(with = "tally_core::rate::exact")]
    pub rate: Decimal,
    /// The rate for accounts of a pricing tier (the tier the credit decision gave at
    /// opening), by tier name; an account whose tier is not listed pays `rate`. Only products
    /// that charge the customer (flat fee, annuity, equal principal) may price by tier: the
    /// rate of the others is the merchant's discount, which does not depend on the customer.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "tally_core::rate::exact::map"
    )]
    pub tier_rates: BTreeMap<String, Decimal>,
}

/// The rate a plan is priced at and the pricing tier that chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub rate: Decimal,
    /// The tier whose own rate was used; none when the term's `rate` was.
    pub tier: Option<String>,
}

impl TermPricing {
    /// A term at one rate for every account.
    pub fn new(periods: u32, rate: Decimal) -> TermPricing {
        TermPricing {
            periods,
            rate,
            tier_rates: BTreeMap::new(),
        }
    }

    /// The rate for an account of pricing tier `tier`: the tier's rate when the term lists
    /// it, otherwise the term's rate.
    pub fn pricing_for(&self, tier: Option<&str>) -> Pricing {
        match tier.and_then(|tier| self.tier_rates.get_key_value(tier)) {
            Some((tier, rate)) => Pricing {
                rate: *rate,
                tier: Some(tier.clone()),
            },
            None => Pricing {
                rate: self.rate,
                tier: None,
            },
        }
    }
}

/// A credit product. Load one with [`Product::from_toml`]; it is validated on load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub code: String,
    pub name: String,
    pub currency: Currency,
    pub fee_model: FeeModel,
    pub terms: Vec<TermPricing>,
    /// Rounding of fees and interest to the minor unit.
    #[serde(default = "default_rounding")]
    pub rounding: Rounding,
    /// Where the principal's left-over minor units go.
    #[serde(default = "default_remainder")]
    pub remainder_on: RemainderOn,
    #[serde(default = "default_early_payoff")]
    pub early_payoff: EarlyPayoffRule,
    /// Whether the fees of a refunded principal are refunded too.
    #[serde(default = "default_true")]
    pub fees_refundable: bool,
}

fn default_rounding() -> Rounding {
    Rounding::HalfUp
}
fn default_remainder() -> RemainderOn {
    RemainderOn::Last
}
fn default_early_payoff() -> EarlyPayoffRule {
    EarlyPayoffRule::PrincipalOnly
}
fn default_true() -> bool {
    true
}

/// The products a lender offers, by code: a TOML file of `[[product]]` tables.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "product", default)]
    pub products: Vec<Product>,
}

/// The catalog Tally ships (`crates/credit/catalog/default.toml`).
pub const DEFAULT_CATALOG: &str = include_str!("../catalog/default.toml");

impl Catalog {
    /// Parses and validates a catalog; product codes must be unique.
    pub fn from_toml(text: &str) -> Result<Catalog, CreditError> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|error| CreditError::InvalidProduct(error.to_string()))?;
        for (index, product) in catalog.products.iter().enumerate() {
            product.validate()?;
            if catalog.products[..index]
                .iter()
                .any(|other| other.code == product.code)
            {
                return Err(CreditError::InvalidProduct(format!(
                    "product code {} is listed twice",
                    product.code
                )));
            }
        }
        Ok(catalog)
    }

    /// The shipped default catalog.
    pub fn default_catalog() -> Result<Catalog, CreditError> {
        Catalog::from_toml(DEFAULT_CATALOG)
    }

    pub fn product(&self, code: &str) -> Option<&Product> {
        self.products.iter().find(|product| product.code == code)
    }
}

impl Product {
    /// Parses and validates a product from TOML.
    pub fn from_toml(text: &str) -> Result<Product, CreditError> {
        let product: Product =
            toml::from_str(text).map_err(|error| CreditError::InvalidProduct(error.to_string()))?;
        product.validate()?;
        Ok(product)
    }

    /// Checks the rules a product must follow.
    pub fn validate(&self) -> Result<(), CreditError> {
        let refuse = |reason: String| Err(CreditError::InvalidProduct(reason));
        if self.code.is_empty() {
            return refuse("code must not be empty".into());
        }
        if self.terms.is_empty() {
            return refuse("at least one term is required".into());
        }
        for (index, term) in self.terms.iter().enumerate() {
            if self.terms[..index]
                .iter()
                .any(|other| other.periods == term.periods)
            {
                return refuse(format!("term {} is listed twice", term.periods));
            }
            if term.rate.is_sign_negative() || term.rate >= Decimal::ONE {
                return refuse(format!("rate {} must be in [0, 1)", term.rate));
            }
            if !term.tier_rates.is_empty() && !self.fee_model.charges_the_customer() {
                return refuse(format!(
                    "term {} lists tier_rates, but the rate of this fee model is the \
                     merchant's discount, which does not depend on the customer's tier",
                    term.periods
                ));
            }
            for (tier, rate) in &term.tier_rates {
                if tier.trim().is_empty() {
                    return refuse(format!("term {} has a tier without a name", term.periods));
                }
                if rate.is_sign_negative() || *rate >= Decimal::ONE {
                    return refuse(format!(
                        "term {} tier {tier}: rate {rate} must be in [0, 1)",
                        term.periods
                    ));
                }
            }
            match self.fee_model {
                FeeModel::PayInN { .. } => {
                    if term.periods < 2 || term.periods > PAY_IN_N_INSTALLMENTS_MAX {
                        return refuse(format!(
                            "pay-in-N needs 2 to {PAY_IN_N_INSTALLMENTS_MAX} installments, got {}",
                            term.periods
                        ));
                    }
                }
                _ => {
                    if !MONTHLY_TERMS.contains(&term.periods) {
                        return refuse(format!(
                            "term {} is not one of {MONTHLY_TERMS:?}",
                            term.periods
                        ));
                    }
                }
            }
        }
        if let FeeModel::PayInN {
            first_share,
            interval_days,
        } = self.fee_model
        {
            if first_share <= Decimal::ZERO || first_share >= Decimal::ONE {
                return refuse(format!("first_share {first_share} must be in (0, 1)"));
            }
            if !(1..=31).contains(&interval_days) {
                return refuse(format!("interval_days {interval_days} must be 1 to 31"));
            }
        }
        Ok(())
    }

    /// The pricing of a term, or an error if the product does not offer it.
    pub fn term(&self, periods: u32) -> Result<&TermPricing, CreditError> {
        self.terms
            .iter()
            .find(|term| term.periods == periods)
            .ok_or_else(|| CreditError::TermNotOffered {
                product: self.code.clone(),
                periods,
            })
    }

    /// The tiers any term of this product prices, each once, in order.
    pub fn priced_tiers(&self) -> Vec<&str> {
        let mut tiers: Vec<&str> = self
            .terms
            .iter()
            .flat_map(|term| term.tier_rates.keys().map(String::as_str))
            .collect();
        tiers.sort_unstable();
        tiers.dedup();
        tiers
    }

    /// Periods in a year for this product's installments: 12 for monthly, 365 / interval for
    /// pay-in-N (26 for every two weeks). Used to annualise the true APR.
    pub fn periods_per_year(&self) -> u32 {
        match self.fee_model {
            FeeModel::PayInN { interval_days, .. } => {
                // interval_days is validated to 1..=31, so this is positive.
                365 / interval_days.unsigned_abs().max(1)
            }
            _ => 12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalog_loads_and_refuses_duplicates() {
        let catalog = Catalog::default_catalog().unwrap();
        assert_eq!(catalog.products.len(), 5);
        assert!(catalog.product("installment").is_some());
        let twice = format!("{DEFAULT_CATALOG}\n{DEFAULT_CATALOG}");
        assert!(Catalog::from_toml(&twice).is_err());
    }

    #[test]
    fn a_flat_fee_product_loads_from_toml() {
        let product = Product::from_toml(
            r#"
            code = "baitiao"
            name = "White bar installments"
            currency = "CNY"
            fee_model = { kind = "flat_fee" }
            terms = [
              { periods = 1, rate = "0" },
              { periods = 3, rate = "0.007" },
              { periods = 24, rate = "0.005" },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(product.rounding, Rounding::HalfUp);
        assert_eq!(product.remainder_on, RemainderOn::Last);
        assert_eq!(product.term(3).unwrap().rate, Decimal::new(7, 3));
        assert_eq!(
            product.term(6).unwrap_err().code(),
            "credit_term_not_offered"
        );
    }

    #[test]
    fn a_term_prices_listed_tiers_at_their_own_rate_and_others_at_its_rate() {
        let product = Product::from_toml(
            r#"
            code = "loan"
            name = "Loan"
            currency = "CNY"
            fee_model = { kind = "annuity" }
            terms = [
              { periods = 12, rate = "0.15", tier_rates = { A = "0.09", B = "0.12" } },
              { periods = 24, rate = "0.18" },
            ]
            "#,
        )
        .unwrap();
        let twelve = product.term(12).unwrap();
        assert_eq!(
            twelve.pricing_for(Some("A")),
            Pricing {
                rate: Decimal::new(9, 2),
                tier: Some("A".into())
            }
        );
        for tier in [Some("C"), Some("a"), None] {
            assert_eq!(
                twelve.pricing_for(tier),
                Pricing {
                    rate: Decimal::new(15, 2),
                    tier: None
                },
                "{tier:?}"
            );
        }
        assert_eq!(product.term(24).unwrap().pricing_for(Some("A")).tier, None);
        assert_eq!(product.priced_tiers(), vec!["A", "B"]);
        // The tier rates survive a round trip through JSON (products added over HTTP are
        // stored as JSON); a term without them does not write an empty table.
        let json = serde_json::to_string(&product).unwrap();
        assert!(!json.contains(r#""tier_rates":{}"#), "{json}");
        assert_eq!(serde_json::from_str::<Product>(&json).unwrap(), product);
    }

    #[test]
    fn bad_tier_rates_are_refused() {
        for (text, reason) in [
            (
                r#"fee_model = { kind = "interest_free" }
                   terms = [{ periods = 3, rate = "0.02", tier_rates = { A = "0.01" } }]"#,
                "merchant's discount",
            ),
            (
                r#"fee_model = { kind = "pay_in_n", first_share = "0.25", interval_days = 14 }
                   terms = [{ periods = 4, rate = "0.04", tier_rates = { A = "0.01" } }]"#,
                "merchant's discount",
            ),
            (
                r#"fee_model = { kind = "flat_fee" }
                   terms = [{ periods = 3, rate = "0.007", tier_rates = { A = "1.2" } }]"#,
                "tier A: rate 1.2 must be in [0, 1)",
            ),
            (
                r#"fee_model = { kind = "flat_fee" }
                   terms = [{ periods = 3, rate = "0.007", tier_rates = { A = "-0.001" } }]"#,
                "must be in [0, 1)",
            ),
            (
                r#"fee_model = { kind = "flat_fee" }
                   terms = [{ periods = 3, rate = "0.007", tier_rates = { " " = "0.005" } }]"#,
                "a tier without a name",
            ),
            (
                r#"fee_model = { kind = "flat_fee" }
                   terms = [{ periods = 3, rate = "0.007", tier_rates = { A = 0.005 } }]"#,
                "string",
            ),
        ] {
            let text = format!("code = \"x\"\nname = \"x\"\ncurrency = \"CNY\"\n{text}");
            let error = Product::from_toml(&text).unwrap_err();
            assert_eq!(error.code(), "credit_invalid_product", "{text}");
            assert!(error.to_string().contains(reason), "{error} / {text}");
        }
    }

    #[test]
    fn bad_products_are_refused() {
        for text in [
            // a term that is not offered to monthly products
            r#"code = "x"
               name = "x"
               currency = "CNY"
               fee_model = { kind = "annuity" }
               terms = [{ periods = 5, rate = "0.1" }]"#,
            // a negative rate
            r#"code = "x"
               name = "x"
               currency = "CNY"
               fee_model = { kind = "flat_fee" }
               terms = [{ periods = 3, rate = "-0.1" }]"#,
            // a rate as a float would be refused as a string is expected
            r#"code = "x"
               name = "x"
               currency = "CNY"
               fee_model = { kind = "pay_in_n", first_share = "1.5", interval_days = 14 }
               terms = [{ periods = 4, rate = "0.03" }]"#,
            // an unknown field
            r#"code = "x"
               name = "x"
               currency = "CNY"
               colour = "red"
               fee_model = { kind = "flat_fee" }
               terms = [{ periods = 3, rate = "0.1" }]"#,
        ] {
            let error = Product::from_toml(text).unwrap_err();
            assert_eq!(error.code(), "credit_invalid_product", "{text}");
        }
    }
}
