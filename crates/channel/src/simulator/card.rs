//! Card numbers as the simulated bank sees them: the Luhn check, the brand from the leading
//! digits, the expiry month, and the keyed fingerprint Tally gets instead of the number.

use hmac::{Hmac, Mac};
use jiff::civil::Date;
use sha2::Sha256;

/// Shortest and longest card number, in digits (ISO/IEC 7812).
pub const NUMBER_DIGITS_MIN: usize = 12;
pub const NUMBER_DIGITS_MAX: usize = 19;

/// A checked card number. Never printed, never leaves the simulator.
pub(crate) struct CardNumber(String);

impl CardNumber {
    /// 12 to 19 digits passing the Luhn check.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let digits = text.len();
        if !(NUMBER_DIGITS_MIN..=NUMBER_DIGITS_MAX).contains(&digits)
            || !text.bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(format!(
                "a card number has {NUMBER_DIGITS_MIN} to {NUMBER_DIGITS_MAX} digits"
            ));
        }
        if !luhn_valid(text) {
            return Err("the card number fails the Luhn check".into());
        }
        Ok(CardNumber(text.to_string()))
    }

    pub(crate) fn last_four(&self) -> String {
        self.0[self.0.len() - 4..].to_string()
    }

    /// The brand from the issuer identification number's leading digits.
    pub(crate) fn brand(&self) -> &'static str {
        let prefix = |digits: usize| self.0[..digits].parse::<u32>().unwrap_or(0);
        match (prefix(1), prefix(2), prefix(4)) {
            (4, _, _) => "visa",
            (_, 34 | 37, _) => "amex",
            (_, 51..=55, _) | (_, _, 2221..=2720) => "mastercard",
            (_, 62, _) => "unionpay",
            _ => "unknown",
        }
    }

    /// HMAC-SHA256 of the number under the simulator's secret, in hex: the same card gives
    /// the same fingerprint under every token and every restart with the same secret, and
    /// the fingerprint tells nothing of the number to whoever lacks the secret (a plain hash
    /// of a 16-digit number with a known prefix and a Luhn digit is guessed in seconds).
    pub(crate) fn fingerprint(&self, secret: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(b"tally-channel card fingerprint\0");
        mac.update(self.0.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The Luhn (mod 10) check digit test.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A card's expiry month, `MM/YY`: the card is good through the month's last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    year: i16,
    month: i8,
}

impl Expiry {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("expiry {text:?} is not MM/YY");
        let (month, year) = text.split_once('/').ok_or_else(invalid)?;
        if month.len() != 2 || year.len() != 2 {
            return Err(invalid());
        }
        let month: i8 = month.parse().map_err(|_| invalid())?;
        let year: i16 = year.parse().map_err(|_| invalid())?;
        if !(1..=12).contains(&month) || year < 0 {
            return Err(invalid());
        }
        Ok(Expiry {
            year: 2000 + year,
            month,
        })
    }

    pub(crate) fn has_passed(&self, today: Date) -> bool {
        (today.year(), today.month()) > (self.year, self.month)
    }
}

impl std::fmt::Display for Expiry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:02}/{:02}", self.month, self.year % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked_and_branded() {
        let visa = CardNumber::parse("4242424242424242").expect("a valid number");
        assert_eq!(visa.last_four(), "4242");
        assert_eq!(visa.brand(), "visa");
        let brand = |number: &str| CardNumber::parse(number).expect("valid").brand();
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("2223003122003222"), "mastercard");
        assert_eq!(brand("378282246310005"), "amex");
        assert_eq!(brand("6200000000000005"), "unionpay");
        assert!(CardNumber::parse("4242424242424241").is_err());
        assert!(CardNumber::parse("4242 4242 4242 4242").is_err());
        assert!(CardNumber::parse("42424242").is_err());
    }

    #[test]
    fn a_fingerprint_depends_on_the_number_and_the_secret() {
        let card = CardNumber::parse("4242424242424242").expect("valid");
        let other = CardNumber::parse("5555555555554444").expect("valid");
        assert_eq!(card.fingerprint(b"a"), card.fingerprint(b"a"));
        assert_ne!(card.fingerprint(b"a"), card.fingerprint(b"b"));
        assert_ne!(card.fingerprint(b"a"), other.fingerprint(b"a"));
    }

    #[test]
    fn a_card_is_good_through_its_expiry_month() {
        let expiry = Expiry::parse("03/26").expect("valid");
        assert_eq!(expiry.to_string(), "03/26");
        assert!(!expiry.has_passed(jiff::civil::date(2026, 3, 31)));
        assert!(expiry.has_passed(jiff::civil::date(2026, 4, 1)));
        for refused in ["3/26", "13/26", "00/26", "03-26", "03/2026"] {
            assert!(Expiry::parse(refused).is_err(), "{refused}");
        }
    }
}
