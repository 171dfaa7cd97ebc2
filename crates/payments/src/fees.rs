//! A merchant's fee schedule: per payment method (wallet, vault, bank card, and the credit
//! line per installment term), a percentage of the captured amount plus a fixed amount,
//! kept between a minimum and a maximum.
//!
//! # How a fee is computed
//!
//! For a leg of a payment captured for `amount` by `method`:
//! `fee = clamp(round(amount × rate, rounding) + fixed, minimum, maximum)`, and never more
//! than `amount` itself (a merchant is never credited a negative sum for a sale). The
//! rounding mode is the schedule's, named (`half_up` unless the schedule says otherwise).
//! A method the schedule does not list costs nothing. A zero capture costs nothing.
//! Each leg pays its own fee: a payment split over a wallet and a card pays each
//! method's fixed part once.
//!
//! # The credit line and the credit product's merchant discount
//!
//! An interest-free (or pay-in-N) credit plan already charges the merchant a discount:
//! the credit business keeps it at capture (`credit-merchant-discount-income`) and returns
//! it pro rata on a refund (`tally_credit::schedule`, `Plan::refund`). The schedule's
//! `credit_line_{term}` entry is the merchant's *whole* charge for that term, the discount
//! included: the payment service's fee income takes `fee − discount`, and when the
//! schedule's fee is below the discount the discount stands, so a merchant never pays less
//! than its plan's discount and never pays it twice ([`FeeSchedule::credit_line_fee`]).

use crate::merchant::MerchantError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use tally_core::{Amount, Currency, Rounding};

/// Most decimals a fee rate may have (0.000001 is a ten-thousandth of a basis point).
pub const RATE_SCALE_MAX: u32 = 6;

/// The installment terms a credit-line fee may be set for.
pub const CREDIT_LINE_TERMS: [u32; 5] = crate::funding::INSTALLMENT_TERMS;

/// What a leg was paid with, as a fee schedule knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentMethod {
    Wallet,
    Vault,
    Card,
    /// The credit line in `term` monthly installments.
    CreditLine(u32),
}

impl PaymentMethod {
    /// Every method a schedule may list.
    pub fn all() -> Vec<PaymentMethod> {
        let mut methods = vec![
            PaymentMethod::Wallet,
            PaymentMethod::Vault,
            PaymentMethod::Card,
        ];
        methods.extend(
            CREDIT_LINE_TERMS
                .iter()
                .map(|term| PaymentMethod::CreditLine(*term)),
        );
        methods
    }

    /// The method of a payment's source.
    pub fn of_source(source: &crate::Source) -> PaymentMethod {
        match source {
            crate::Source::Wallet => PaymentMethod::Wallet,
            crate::Source::Vault => PaymentMethod::Vault,
            crate::Source::Card { .. } => PaymentMethod::Card,
            crate::Source::CreditLine { term, .. } => PaymentMethod::CreditLine(*term),
        }
    }

    /// Its name in a schedule: `wallet`, `vault`, `card`, `credit_line_12`.
    pub fn name(&self) -> String {
        match self {
            PaymentMethod::Wallet => "wallet".into(),
            PaymentMethod::Vault => "vault".into(),
            PaymentMethod::Card => "card".into(),
            PaymentMethod::CreditLine(term) => format!("credit_line_{term}"),
        }
    }

    pub fn parse(name: &str) -> Option<PaymentMethod> {
        PaymentMethod::all()
            .into_iter()
            .find(|method| method.name() == name)
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.name())
    }
}

/// One method's fee as written by a client: decimal strings, the amounts in major units
/// of the schedule's currency.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeeText {
    pub rate: String,
    pub fixed: Option<String>,
    pub minimum: Option<String>,
    pub maximum: Option<String>,
}

/// One method's fee, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    /// Share of the captured amount, 0 to 1, at most [`RATE_SCALE_MAX`] decimals.
    #[serde(with = "tally_core::rate::exact")]
    pub rate: Decimal,
    pub fixed: Amount,
    pub minimum: Amount,
    /// No maximum when `None`.
    pub maximum: Option<Amount>,
}

/// A merchant's fees in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    pub currency: Currency,
    /// How `amount × rate` becomes whole minor units.
    pub rounding: Rounding,
    /// By method name ([`PaymentMethod::name`]).
    pub fees: BTreeMap<String, Fee>,
}

/// What a credit-line leg costs the merchant, and who keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditLineFee {
    /// The merchant's whole charge for the leg: the larger of the schedule's fee and the
    /// plan's discount.
    pub total: Amount,
    /// Kept by the credit business at capture.
    pub discount: Amount,
    /// The payment service's fee income: `total − discount`.
    pub payments_part: Amount,
}

fn parse_amount(field: &str, text: &str, currency: Currency) -> Result<Amount, MerchantError> {
    let amount = Amount::parse(text.trim(), currency)
        .map_err(|error| MerchantError::field_error(field, error.to_string()))?;
    if amount.is_negative() {
        return Err(MerchantError::field_error(field, "must not be negative"));
    }
    Ok(amount)
}

fn parse_rate(field: &str, text: &str) -> Result<Decimal, MerchantError> {
    let rate = tally_core::rate::exact::parse(text)
        .map_err(|reason| MerchantError::field_error(field, reason))?;
    if rate.is_sign_negative() || rate > Decimal::ONE {
        return Err(MerchantError::field_error(
            field,
            format!("must be between 0 and 1, got {text}"),
        ));
    }
    if rate.scale() > RATE_SCALE_MAX {
        return Err(MerchantError::field_error(
            field,
            format!("has more than {RATE_SCALE_MAX} decimals: {text}"),
        ));
    }
    Ok(rate.normalize())
}

/// Parses a rounding mode's name (`half_up`, `half_even`, `down`, …).
pub fn parse_rounding(field: &str, text: &str) -> Result<Rounding, MerchantError> {
    let rounding = match text {
        "half_even" => Rounding::HalfEven,
        "half_up" => Rounding::HalfUp,
        "half_down" => Rounding::HalfDown,
        "down" => Rounding::Down,
        "up" => Rounding::Up,
        "floor" => Rounding::Floor,
        "ceiling" => Rounding::Ceiling,
        _ => {
            return Err(MerchantError::field_error(
                field,
                format!(
                    "unknown rounding mode {text:?}; use half_even, half_up, half_down, down, \
                     up, floor or ceiling"
                ),
            ))
        }
    };
    Ok(rounding)
}

impl Fee {
    /// Checks one method's fee; `field` is its path (`fees.card`).
    pub fn parse(field: &str, text: &FeeText, currency: Currency) -> Result<Fee, MerchantError> {
        let rate = parse_rate(&format!("{field}.rate"), &text.rate)?;
        let amount = |name: &str, value: &Option<String>| match value {
            Some(value) => parse_amount(&format!("{field}.{name}"), value, currency),
            None => Ok(Amount::zero(currency)),
        };
        let fixed = amount("fixed", &text.fixed)?;
        let minimum = amount("minimum", &text.minimum)?;
        let maximum = match &text.maximum {
            Some(value) => Some(parse_amount(&format!("{field}.maximum"), value, currency)?),
            None => None,
        };
        if let Some(maximum) = maximum {
            if maximum.minor() < minimum.minor() {
                return Err(MerchantError::field_error(
                    format!("{field}.maximum"),
                    format!("{maximum} is below the minimum {minimum}"),
                ));
            }
        }
        Ok(Fee {
            rate,
            fixed,
            minimum,
            maximum,
        })
    }

    /// The fee on `amount` (see the module's rule), rounded by `rounding`.
    pub fn on(&self, amount: Amount, rounding: Rounding) -> Result<Amount, MerchantError> {
        let overflow =
            |error: tally_core::MoneyError| MerchantError::field_error("amount", error.to_string());
        if !amount.is_positive() {
            return Ok(Amount::zero(amount.currency()));
        }
        let mut fee = amount
            .apply_rate(self.rate, rounding)
            .and_then(|share| share.checked_add(self.fixed))
            .map_err(overflow)?;
        if fee.minor() < self.minimum.minor() {
            fee = self.minimum;
        }
        if let Some(maximum) = self.maximum {
            if fee.minor() > maximum.minor() {
                fee = maximum;
            }
        }
        if fee.minor() > amount.minor() {
            fee = amount;
        }
        Ok(fee)
    }
}

impl FeeSchedule {
    /// A schedule that charges nothing.
    pub fn free(currency: Currency) -> FeeSchedule {
        FeeSchedule {
            currency,
            rounding: Rounding::HalfUp,
            fees: BTreeMap::new(),
        }
    }

    /// Checks a schedule written by a client. Every refusal names its field: `rounding`,
    /// `fees.{method}` for an unknown method, `fees.{method}.rate` and so on.
    pub fn parse(
        currency: Currency,
        rounding: Option<&str>,
        fees: &BTreeMap<String, FeeText>,
    ) -> Result<FeeSchedule, MerchantError> {
        let rounding = match rounding {
            Some(text) => parse_rounding("rounding", text)?,
            None => Rounding::HalfUp,
        };
        let mut checked = BTreeMap::new();
        for (name, text) in fees {
            let field = format!("fees.{name}");
            if PaymentMethod::parse(name).is_none() {
                let known: Vec<String> = PaymentMethod::all()
                    .iter()
                    .map(PaymentMethod::name)
                    .collect();
                return Err(MerchantError::field_error(
                    field,
                    format!("unknown payment method; use one of {}", known.join(", ")),
                ));
            }
            checked.insert(name.clone(), Fee::parse(&field, text, currency)?);
        }
        Ok(FeeSchedule {
            currency,
            rounding,
            fees: checked,
        })
    }

    /// The fee for a leg of `amount` paid by `method` (zero when the method is not listed).
    pub fn fee(&self, method: PaymentMethod, amount: Amount) -> Result<Amount, MerchantError> {
        match self.fees.get(&method.name()) {
            Some(fee) => fee.on(amount, self.rounding),
            None => Ok(Amount::zero(amount.currency())),
        }
    }

    /// The charge for a credit-line leg of `amount` in `term` installments whose plan's
    /// merchant discount is `discount` (see the module's docs).
    pub fn credit_line_fee(
        &self,
        term: u32,
        amount: Amount,
        discount: Amount,
    ) -> Result<CreditLineFee, MerchantError> {
        let scheduled = self.fee(PaymentMethod::CreditLine(term), amount)?;
        let total = if scheduled.minor() < discount.minor() {
            discount
        } else {
            scheduled
        };
        let payments_part = total
            .checked_sub(discount)
            .map_err(|error| MerchantError::field_error("amount", error.to_string()))?;
        Ok(CreditLineFee {
            total,
            discount,
            payments_part,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    fn text(
        rate: &str,
        fixed: Option<&str>,
        minimum: Option<&str>,
        maximum: Option<&str>,
    ) -> FeeText {
        FeeText {
            rate: rate.into(),
            fixed: fixed.map(Into::into),
            minimum: minimum.map(Into::into),
            maximum: maximum.map(Into::into),
        }
    }

    fn schedule(rounding: &str, fees: &[(&str, FeeText)]) -> Result<FeeSchedule, MerchantError> {
        let fees: BTreeMap<String, FeeText> = fees
            .iter()
            .map(|(name, fee)| (name.to_string(), fee.clone()))
            .collect();
        FeeSchedule::parse(Currency::CNY, Some(rounding), &fees)
    }

    #[test]
    fn percentage_plus_fixed_rounded_by_the_named_mode() {
        let card = [("card", text("0.006", Some("0.30"), None, None))];
        let half_up = schedule("half_up", &card).unwrap();
        // 125.25 × 0.6 % = 75.15 fen → 75 (half up) + 30.
        assert_eq!(
            half_up.fee(PaymentMethod::Card, cny(12_525)).unwrap(),
            cny(105)
        );
        // 12.50 × 0.6 % = 7.5 fen: half up 8, half even 8, down 7, up 8.
        let cases = [
            ("half_up", 38),
            ("half_even", 38),
            ("down", 37),
            ("up", 38),
            ("half_down", 37),
        ];
        for (mode, expected) in cases {
            let fees = schedule(mode, &card).unwrap();
            assert_eq!(
                fees.fee(PaymentMethod::Card, cny(1_250)).unwrap(),
                cny(expected),
                "{mode}"
            );
        }
        // 10.50 × 0.6 % = 6.3 fen: ceiling 7.
        let ceiling = schedule("ceiling", &card).unwrap();
        assert_eq!(
            ceiling.fee(PaymentMethod::Card, cny(1_050)).unwrap(),
            cny(37)
        );
    }

    #[test]
    fn minimum_and_maximum_clamp_and_never_above_the_amount() {
        let fees = schedule(
            "half_up",
            &[("wallet", text("0.01", None, Some("1.00"), Some("5.00")))],
        )
        .unwrap();
        // 1 % of 50.00 = 0.50, raised to the minimum 1.00.
        assert_eq!(
            fees.fee(PaymentMethod::Wallet, cny(5_000)).unwrap(),
            cny(100)
        );
        // 1 % of 300.00 = 3.00, within.
        assert_eq!(
            fees.fee(PaymentMethod::Wallet, cny(30_000)).unwrap(),
            cny(300)
        );
        // 1 % of 1,000.00 = 10.00, cut to the maximum 5.00.
        assert_eq!(
            fees.fee(PaymentMethod::Wallet, cny(100_000)).unwrap(),
            cny(500)
        );
        // A 0.50 sale: the minimum 1.00 is cut to the sale itself.
        assert_eq!(fees.fee(PaymentMethod::Wallet, cny(50)).unwrap(), cny(50));
        // Zero costs nothing; an unlisted method costs nothing.
        assert_eq!(fees.fee(PaymentMethod::Wallet, cny(0)).unwrap(), cny(0));
        assert_eq!(fees.fee(PaymentMethod::Card, cny(10_000)).unwrap(), cny(0));
    }

    #[test]
    fn refusals_name_their_field() {
        let cases: [(&str, FeeText, &str); 7] = [
            ("card", text("0.0.1", None, None, None), "fees.card.rate"),
            ("card", text("-0.01", None, None, None), "fees.card.rate"),
            ("card", text("1.5", None, None, None), "fees.card.rate"),
            (
                "card",
                text("0.0000001", None, None, None),
                "fees.card.rate",
            ),
            (
                "vault",
                text("0.01", Some("0.001"), None, None),
                "fees.vault.fixed",
            ),
            (
                "wallet",
                text("0.01", None, Some("-1"), None),
                "fees.wallet.minimum",
            ),
            (
                "credit_line_3",
                text("0.01", None, Some("2.00"), Some("1.00")),
                "fees.credit_line_3.maximum",
            ),
        ];
        for (method, fee, field) in cases {
            let refused = schedule("half_up", &[(method, fee)]).unwrap_err();
            assert_eq!(refused.field(), Some(field), "{refused}");
            assert_eq!(refused.code(), "invalid_merchant_field");
        }
        let unknown = schedule(
            "half_up",
            &[("credit_line_5", text("0.01", None, None, None))],
        );
        assert_eq!(unknown.unwrap_err().field(), Some("fees.credit_line_5"));
        let rounding = schedule("nearest", &[]).unwrap_err();
        assert_eq!(rounding.field(), Some("rounding"));
    }

    #[test]
    fn credit_line_fee_counts_the_plan_discount_once() {
        let fees = schedule(
            "half_up",
            &[("credit_line_12", text("0.03", None, None, None))],
        )
        .unwrap();
        // Schedule 3 % of 1,000.00 = 30.00; the plan's discount 27.00 is part of it.
        let split = fees.credit_line_fee(12, cny(100_000), cny(2_700)).unwrap();
        assert_eq!(split.total, cny(3_000));
        assert_eq!(split.payments_part, cny(300));
        // A discount above the schedule's fee stands; the payment service takes nothing.
        let split = fees.credit_line_fee(12, cny(100_000), cny(4_000)).unwrap();
        assert_eq!(split.total, cny(4_000));
        assert_eq!(split.payments_part, cny(0));
        // No schedule entry for the term: the discount alone.
        let split = fees.credit_line_fee(3, cny(100_000), cny(0)).unwrap();
        assert_eq!(split.total, cny(0));
    }

    #[test]
    fn method_names_round_trip() {
        for method in PaymentMethod::all() {
            assert_eq!(PaymentMethod::parse(&method.name()), Some(method));
        }
        assert_eq!(PaymentMethod::parse("credit_line_2"), None);
    }

    proptest! {
        #[test]
        fn a_fee_stays_within_its_bounds(
            minor in 0_i64..10_000_000_000,
            rate in 0_u32..=1_000_000,
            fixed in 0_i64..10_000,
            minimum in 0_i64..10_000,
            extra in 0_i64..100_000,
        ) {
            let fee = Fee {
                rate: Decimal::new(i64::from(rate), 6),
                fixed: cny(fixed),
                minimum: cny(minimum),
                maximum: Some(cny(minimum + extra)),
            };
            let charged = fee.on(cny(minor), Rounding::HalfEven).unwrap();
            prop_assert!(charged.minor() >= 0);
            prop_assert!(charged.minor() <= minor);
            prop_assert!(charged.minor() <= minimum + extra);
            if minor >= minimum { prop_assert!(charged.minor() >= minimum); }
        }
    }
}
