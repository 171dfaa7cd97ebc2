//! ISO 4217 currencies with their exponent (number of minor-unit digits).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A currency: its ISO 4217 alphabetic code and exponent (CNY 2, JPY 0, KWD 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// The currencies Tally knows. Codes outside this table are refused rather than guessed.
const KNOWN: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("MOP", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("RUB", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UGX", 0),
    ("USD", 2),
    ("VND", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("ZAR", 2),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency code {0:?}: expected an ISO 4217 code such as CNY, USD, JPY or KWD")]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub const CNY: Currency = Currency::new_unchecked(*b"CNY", 2);
    pub const USD: Currency = Currency::new_unchecked(*b"USD", 2);
    pub const EUR: Currency = Currency::new_unchecked(*b"EUR", 2);
    pub const JPY: Currency = Currency::new_unchecked(*b"JPY", 0);
    pub const KWD: Currency = Currency::new_unchecked(*b"KWD", 3);

    const fn new_unchecked(code: [u8; 3], exponent: u8) -> Self {
        Self { code, exponent }
    }

    /// Every code Tally knows, in alphabetical order (what [`Currency::from_code`] accepts).
    pub fn known_codes() -> impl Iterator<Item = &'static str> {
        KNOWN.iter().map(|(code, _)| *code)
    }

    /// Looks a code up in the ISO 4217 table. Codes are upper case, exactly three letters.
    pub fn from_code(code: &str) -> Result<Self, UnknownCurrency> {
        KNOWN
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, exponent)| {
                let bytes = known.as_bytes();
                Currency::new_unchecked([bytes[0], bytes[1], bytes[2]], *exponent)
            })
            .ok_or_else(|| UnknownCurrency(code.to_string()))
    }

    pub fn code(&self) -> &str {
        // The code bytes come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Number of digits after the decimal point in the currency's major unit.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Minor units in one major unit: 100 for CNY, 1 for JPY, 1000 for KWD.
    pub fn minor_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.exponent))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::from_code(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::from_code("CNY").unwrap().exponent(), 2);
        assert_eq!(Currency::from_code("USD").unwrap().exponent(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().exponent(), 3);
        assert_eq!(Currency::KWD.minor_per_major(), 1000);
    }

    #[test]
    fn unknown_and_lower_case_codes_are_refused() {
        assert!(Currency::from_code("XXX").is_err());
        assert!(Currency::from_code("cny").is_err());
        assert!(Currency::from_code("").is_err());
    }

    #[test]
    fn serde_is_the_code() {
        assert_eq!(serde_json::to_string(&Currency::JPY).unwrap(), "\"JPY\"");
        let parsed: Currency = serde_json::from_str("\"KWD\"").unwrap();
        assert_eq!(parsed, Currency::KWD);
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }
}
