//! `Amount`: an integer count of minor units with its currency, and the exact operations on it.
//!
//! There is no floating point here. Arithmetic is checked (overflow and currency mixes are
//! errors, never wraps), allocation always sums back to the whole, and text conversion at
//! the boundaries refuses digits the currency does not have.

use crate::currency::Currency;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a money operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    #[error("currency mismatch: {left} and {right} cannot be combined")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflow: the result does not fit in 64-bit minor units")]
    Overflow,
    #[error("invalid amount {text:?}: {reason}")]
    Parse { text: String, reason: String },
    #[error("cannot allocate: {0}")]
    Allocation(&'static str),
}

/// An exact amount of money: `minor` units of `currency` (fen for CNY, cents for USD, yen).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    minor: i64,
    currency: Currency,
}

impl Amount {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    pub const fn minor(&self) -> i64 {
        self.minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    fn same_currency(&self, other: &Amount) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    pub fn checked_neg(self) -> Result<Amount, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Amount, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    /// Sums amounts of one currency; an empty list is zero of `currency`.
    pub fn checked_sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Amount>,
    ) -> Result<Amount, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Amount::zero(currency), |total, amount| {
                total.checked_add(*amount)
            })
    }

    /// Splits the amount into `parts` amounts that differ by at most one minor unit and sum
    /// exactly to the whole. The extra units go to the first parts (tie-break: lowest index).
    pub fn allocate_evenly(self, parts: usize) -> Result<Vec<Amount>, MoneyError> {
        if parts == 0 {
            return Err(MoneyError::Allocation(
                "the number of parts must be at least 1",
            ));
        }
        self.allocate_by_ratios(&vec![1_u64; parts])
    }

    /// Splits the amount in proportion to `ratios` by the largest-remainder method: each
    /// part first gets the floor of its exact share (toward zero), then the minor units left
    /// over go one each to the parts with the largest remainders; equal remainders are broken
    /// by the lowest index. The parts always sum exactly to the whole, and a negative amount
    /// is split like its absolute value with every part negated.
    pub fn allocate_by_ratios(self, ratios: &[u64]) -> Result<Vec<Amount>, MoneyError> {
        if ratios.is_empty() {
            return Err(MoneyError::Allocation("at least one ratio is required"));
        }
        let total_ratio: u128 = ratios.iter().map(|ratio| u128::from(*ratio)).sum();
        if total_ratio == 0 {
            return Err(MoneyError::Allocation("the ratios must not all be zero"));
        }
        let magnitude = u128::from(self.minor.unsigned_abs());
        let mut shares: Vec<u128> = Vec::with_capacity(ratios.len());
        let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(ratios.len());
        let mut allocated: u128 = 0;
        for (index, ratio) in ratios.iter().enumerate() {
            // magnitude < 2^64 and ratio < 2^64, so the product fits in u128.
            let exact = magnitude * u128::from(*ratio);
            let share = exact / total_ratio;
            shares.push(share);
            remainders.push((exact % total_ratio, index));
            allocated += share;
        }
        let mut left_over = magnitude - allocated;
        // Largest remainder first; for equal remainders, the lower index first.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, index) in remainders {
            if left_over == 0 {
                break;
            }
            shares[index] += 1;
            left_over -= 1;
        }
        let negative = self.minor < 0;
        shares
            .into_iter()
            .map(|share| {
                // Each share is at most the magnitude, which came from an i64.
                let share = i128::try_from(share).map_err(|_| MoneyError::Overflow)?;
                let signed = if negative { -share } else { share };
                let minor = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
                Ok(Amount::new(minor, self.currency))
            })
            .collect()
    }

    /// Parses a decimal string in major units ("1234.50", "-3", "0.005") exactly. More fraction
    /// digits than the currency has, exponents, spaces, signs other than a leading '-', and
    /// empty parts ("1.", ".5") are refused.
    pub fn parse(text: &str, currency: Currency) -> Result<Amount, MoneyError> {
        let fail = |reason: &str| MoneyError::Parse {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        if whole.is_empty() || !whole.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(fail("expected digits before the decimal point"));
        }
        let exponent = usize::from(currency.exponent());
        let fraction = match fraction {
            None => "",
            Some(fraction) => {
                if fraction.is_empty() || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(fail("expected digits after the decimal point"));
                }
                if fraction.len() > exponent {
                    return Err(fail(&format!(
                        "{} has {} fraction digit(s), got {}",
                        currency,
                        exponent,
                        fraction.len()
                    )));
                }
                fraction
            }
        };
        let overflow = || fail("too large for 64-bit minor units");
        let mut minor: i64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|value| value.checked_add(i64::from(digit - b'0')))
                .ok_or_else(overflow)?;
        }
        for _ in fraction.len()..exponent {
            minor = minor.checked_mul(10).ok_or_else(overflow)?;
        }
        if negative {
            minor = -minor;
        }
        Ok(Amount::new(minor, currency))
    }

    /// The amount in major units with exactly the currency's fraction digits: "1234.50".
    pub fn to_decimal_string(&self) -> String {
        let exponent = u32::from(self.currency.exponent());
        let magnitude = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10_u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            magnitude / scale,
            magnitude % scale,
            width = exponent as usize
        )
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// The wire form: `{"value": "1234.50", "currency": "CNY"}`. The value is a decimal string in
/// major units; a JSON number is refused so that no float can ever carry an amount.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountWire {
    value: String,
    currency: Currency,
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AmountWire {
            value: self.to_decimal_string(),
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = AmountWire::deserialize(deserializer)?;
        Amount::parse(&wire.value, wire.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    #[test]
    fn parse_and_print_round_trip_at_the_boundary() {
        assert_eq!(
            Amount::parse("1234.50", Currency::CNY).unwrap(),
            cny(123450)
        );
        assert_eq!(Amount::parse("1234.5", Currency::CNY).unwrap(), cny(123450));
        assert_eq!(Amount::parse("1234", Currency::CNY).unwrap(), cny(123400));
        assert_eq!(Amount::parse("-0.01", Currency::CNY).unwrap(), cny(-1));
        assert_eq!(Amount::parse("7", Currency::JPY).unwrap().minor(), 7);
        assert_eq!(Amount::parse("1.005", Currency::KWD).unwrap().minor(), 1005);
        assert_eq!(cny(123450).to_decimal_string(), "1234.50");
        assert_eq!(cny(-5).to_decimal_string(), "-0.05");
        assert_eq!(
            Amount::new(1005, Currency::KWD).to_decimal_string(),
            "1.005"
        );
        assert_eq!(Amount::new(-42, Currency::JPY).to_decimal_string(), "-42");
        assert_eq!(cny(i64::MIN).to_decimal_string(), "-92233720368547758.08");
    }

    #[test]
    fn parse_refuses_what_the_currency_cannot_hold() {
        for bad in [
            "1.005",
            "",
            "-",
            "1.",
            ".5",
            "1e3",
            " 1",
            "1 ",
            "+1",
            "1,000",
            "0x10",
            "1.2.3",
            "NaN",
            "--1",
            "99999999999999999999",
        ] {
            assert!(
                Amount::parse(bad, Currency::CNY).is_err(),
                "accepted {bad:?}"
            );
        }
        assert!(Amount::parse("1.5", Currency::JPY).is_err());
        assert!(Amount::parse("1.0", Currency::JPY).is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(cny(5).checked_add(cny(7)).unwrap(), cny(12));
        assert_eq!(cny(i64::MAX).checked_add(cny(1)), Err(MoneyError::Overflow));
        assert_eq!(cny(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert!(matches!(
            cny(1).checked_add(Amount::new(1, Currency::USD)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn allocation_uses_largest_remainder_with_lowest_index_tie_break() {
        let parts = cny(100).allocate_evenly(3).unwrap();
        assert_eq!(parts, vec![cny(34), cny(33), cny(33)]);
        let parts = cny(-100).allocate_evenly(3).unwrap();
        assert_eq!(parts, vec![cny(-34), cny(-33), cny(-33)]);
        // 10 by 1:1:1:1 (2.5 each): remainders tie, so the first two get the extra unit.
        assert_eq!(
            cny(10).allocate_by_ratios(&[1, 1, 1, 1]).unwrap(),
            vec![cny(3), cny(3), cny(2), cny(2)]
        );
        // 5 by 3:7 = 1.5 and 3.5: tie on remainder 0.5, lowest index wins.
        assert_eq!(
            cny(5).allocate_by_ratios(&[3, 7]).unwrap(),
            vec![cny(2), cny(3)]
        );
        // 100 by 1:2:0.
        assert_eq!(
            cny(100).allocate_by_ratios(&[1, 2, 0]).unwrap(),
            vec![cny(33), cny(67), cny(0)]
        );
        assert!(cny(1).allocate_by_ratios(&[]).is_err());
        assert!(cny(1).allocate_by_ratios(&[0, 0]).is_err());
        assert!(cny(1).allocate_evenly(0).is_err());
    }

    #[test]
    fn serde_uses_decimal_strings_never_numbers() {
        let json = serde_json::to_string(&cny(123450)).unwrap();
        assert_eq!(json, r#"{"value":"1234.50","currency":"CNY"}"#);
        let back: Amount = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cny(123450));
        assert!(serde_json::from_str::<Amount>(r#"{"value":1234.5,"currency":"CNY"}"#).is_err());
        assert!(serde_json::from_str::<Amount>(r#"{"value":"1.001","currency":"CNY"}"#).is_err());
        assert!(serde_json::from_str::<Amount>(r#"{"value":"1","currency":"CNY","x":1}"#).is_err());
    }

    proptest! {
        #[test]
        fn allocation_always_sums_to_the_whole(
            minor in any::<i64>(),
            ratios in proptest::collection::vec(0_u64..1_000_000, 1..40),
        ) {
            prop_assume!(ratios.iter().any(|ratio| *ratio > 0));
            let whole = cny(minor);
            let parts = whole.allocate_by_ratios(&ratios).unwrap();
            prop_assert_eq!(parts.len(), ratios.len());
            let sum: i128 = parts.iter().map(|part| i128::from(part.minor())).sum();
            prop_assert_eq!(sum, i128::from(minor));
            // A part with a zero ratio gets nothing; every part is within one unit of its share.
            let total: i128 = ratios.iter().map(|ratio| i128::from(*ratio)).sum();
            for (part, ratio) in parts.iter().zip(&ratios) {
                let exact_times_total = i128::from(minor) * i128::from(*ratio);
                let part_times_total = i128::from(part.minor()) * total;
                prop_assert!((part_times_total - exact_times_total).abs() < total);
                if *ratio == 0 { prop_assert_eq!(part.minor(), 0); }
            }
        }

        #[test]
        fn even_allocation_differs_by_at_most_one(minor in any::<i64>(), parts in 1_usize..64) {
            let split = cny(minor).allocate_evenly(parts).unwrap();
            let max = split.iter().map(Amount::minor).max().unwrap();
            let min = split.iter().map(Amount::minor).min().unwrap();
            prop_assert!(max - min <= 1);
            prop_assert_eq!(split.iter().map(|part| i128::from(part.minor())).sum::<i128>(), i128::from(minor));
        }

        #[test]
        fn printing_then_parsing_is_the_identity(minor in any::<i64>(), which in 0_usize..3) {
            let currency = [Currency::CNY, Currency::JPY, Currency::KWD][which];
            let amount = Amount::new(minor, currency);
            prop_assert_eq!(Amount::parse(&amount.to_decimal_string(), currency).unwrap(), amount);
        }
    }
}
