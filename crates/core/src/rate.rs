//! Rates (fees, APR, daily penalties) are `rust_decimal` values; applying one to an amount
//! names its rounding mode, because every rounding in a money system is a decision.

use crate::money::{Amount, MoneyError};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// How a fractional minor unit is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To nearest, ties to the even neighbour (banker's rounding).
    HalfEven,
    /// To nearest, ties away from zero (the schoolbook rule).
    HalfUp,
    /// To nearest, ties toward zero.
    HalfDown,
    /// Toward zero (truncate).
    Down,
    /// Away from zero.
    Up,
    /// Toward negative infinity.
    Floor,
    /// Toward positive infinity.
    Ceiling,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfDown => RoundingStrategy::MidpointTowardZero,
            Rounding::Down => RoundingStrategy::ToZero,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::Floor => RoundingStrategy::ToNegativeInfinity,
            Rounding::Ceiling => RoundingStrategy::ToPositiveInfinity,
        }
    }

    /// Rounds a decimal count of minor units to a whole count.
    pub fn round_minor(self, minor: Decimal) -> Result<i64, MoneyError> {
        minor
            .round_dp_with_strategy(0, self.strategy())
            .to_i64()
            .ok_or(MoneyError::Overflow)
    }
}

impl Amount {
    /// `self × rate`, rounded to a whole minor unit by `rounding`. Exact up to the rounding:
    /// the product is computed in 96-bit decimal arithmetic, never in floating point.
    pub fn apply_rate(self, rate: Decimal, rounding: Rounding) -> Result<Amount, MoneyError> {
        let product = Decimal::from(self.minor())
            .checked_mul(rate)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(rounding.round_minor(product)?, self.currency()))
    }
}

/// Serde for a rate written as a decimal string (`"0.007"`), refusing a number: a binary
/// float such as `0.1` is not the decimal it looks like, and a configured price must be
/// exactly what its author wrote. Use with `#[serde(with = "tally_core::rate::exact")]`.
pub mod exact {
    use rust_decimal::Decimal;
    use serde::de::Visitor;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        deserializer.deserialize_str(Exact)
    }

    /// A decimal from its exact text; refuses more digits than a decimal can hold.
    pub fn parse(text: &str) -> Result<Decimal, String> {
        Decimal::from_str_exact(text.trim())
            .map_err(|error| format!("{text:?} is not an exact decimal: {error}"))
    }

    /// Takes a string only; a number is refused by serde's "invalid type" error, which quotes
    /// the number and this visitor's expectation (how to write it).
    struct Exact;

    impl Visitor<'_> for Exact {
        type Value = Decimal;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a decimal written as a string, such as \"0.007\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Decimal, E> {
            parse(text).map_err(E::custom)
        }
    }

    /// The same for a table of rates by name (`{ A = "0.005", B = "0.006" }`).
    pub mod map {
        use rust_decimal::Decimal;
        use serde::ser::SerializeMap;
        use serde::{Deserialize, Deserializer, Serializer};
        use std::collections::BTreeMap;

        pub fn serialize<S: Serializer>(
            rates: &BTreeMap<String, Decimal>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(rates.len()))?;
            for (name, rate) in rates {
                map.serialize_entry(name, &rate.to_string())?;
            }
            map.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<BTreeMap<String, Decimal>, D::Error> {
            #[derive(Deserialize)]
            struct Rate(#[serde(with = "super")] Decimal);
            Ok(BTreeMap::<String, Rate>::deserialize(deserializer)?
                .into_iter()
                .map(|(name, Rate(rate))| (name, rate))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::currency::Currency;
    use std::str::FromStr;

    fn rate(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Priced {
        #[serde(with = "exact")]
        rate: Decimal,
        #[serde(with = "exact::map")]
        tiers: std::collections::BTreeMap<String, Decimal>,
    }

    #[test]
    fn exact_rates_are_strings_and_numbers_are_refused() {
        let priced: Priced =
            serde_json::from_str(r#"{"rate": "0.007", "tiers": {"A": "0.0045"}}"#).unwrap();
        assert_eq!(priced.rate, rate("0.007"));
        assert_eq!(priced.tiers["A"], rate("0.0045"));
        assert_eq!(
            serde_json::to_string(&priced).unwrap(),
            r#"{"rate":"0.007","tiers":{"A":"0.0045"}}"#
        );
        let error = serde_json::from_str::<Priced>(r#"{"rate": 0.007, "tiers": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(r#"floating point `0.007`, expected a decimal written as a string"#),
            "{error}"
        );
        for text in [
            r#"{"rate": 0.007, "tiers": {}}"#,
            r#"{"rate": 1, "tiers": {}}"#,
            r#"{"rate": "0.007", "tiers": {"A": 0.0045}}"#,
            r#"{"rate": "seven", "tiers": {}}"#,
            r#"{"rate": "0.1234567890123456789012345678901", "tiers": {}}"#,
        ] {
            assert!(serde_json::from_str::<Priced>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn each_mode_rounds_as_named() {
        let half = Amount::new(25, Currency::CNY); // 0.25 × 0.1 = 2.5 minor units
        let tenth = rate("0.1");
        let cases = [
            (Rounding::HalfEven, 2),
            (Rounding::HalfUp, 3),
            (Rounding::HalfDown, 2),
            (Rounding::Down, 2),
            (Rounding::Up, 3),
            (Rounding::Floor, 2),
            (Rounding::Ceiling, 3),
        ];
        for (mode, expected) in cases {
            assert_eq!(
                half.apply_rate(tenth, mode).unwrap().minor(),
                expected,
                "{mode:?}"
            );
        }
        let negative = Amount::new(-25, Currency::CNY);
        assert_eq!(
            negative
                .apply_rate(tenth, Rounding::HalfUp)
                .unwrap()
                .minor(),
            -3
        );
        assert_eq!(
            negative.apply_rate(tenth, Rounding::Floor).unwrap().minor(),
            -3
        );
        assert_eq!(
            negative
                .apply_rate(tenth, Rounding::Ceiling)
                .unwrap()
                .minor(),
            -2
        );
        assert_eq!(
            negative
                .apply_rate(tenth, Rounding::HalfEven)
                .unwrap()
                .minor(),
            -2
        );
    }

    #[test]
    fn daily_penalty_on_a_real_amount() {
        // 0.05% a day on 1,234.56 CNY = 61.728 fen, which rounds half-up to 62 fen.
        let overdue = Amount::parse("1234.56", Currency::CNY).unwrap();
        let penalty = overdue
            .apply_rate(rate("0.0005"), Rounding::HalfUp)
            .unwrap();
        assert_eq!(penalty.to_decimal_string(), "0.62");
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = Amount::new(i64::MAX, Currency::CNY);
        assert_eq!(
            huge.apply_rate(rate("2"), Rounding::HalfEven),
            Err(MoneyError::Overflow)
        );
    }
}
