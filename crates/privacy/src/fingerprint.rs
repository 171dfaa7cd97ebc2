//! Keyed fingerprints of the personal values risk control matches on: card numbers and
//! addresses reach the risk engine, its stored events, lists and evidence packages only as
//! HMAC-SHA-256 under Tally's fingerprint key, over a normalised form, so the same card or
//! address gives the same fingerprint (velocity features and lists keep working) and
//! nothing in storage gives the value back or lets a guess be confirmed without the key.
//!
//! Normalisation decides what counts as "the same": a card number written with spaces or
//! dashes is its digits; an address is its words joined by one space, in lower case.

/// Blind index domain of card fingerprints (profile bank cards and risk events share it, so
/// a card bound to a profile is the card used in a purchase).
pub const CARD_DOMAIN: &str = "risk.card";
/// Blind index domain of address fingerprints (delivery and profile addresses).
pub const ADDRESS_DOMAIN: &str = "risk.address";

/// Length of a fingerprint in hex (HMAC-SHA-256).
const FINGERPRINT_HEX_LENGTH: usize = 64;

/// Whether `value` is already a fingerprint in Tally's form (64 lower-case hex digits), as an
/// analyst copies it from an evidence package or a list: it is kept, not fingerprinted again.
/// No card number (at most 19 digits) or address has this form.
pub fn is_fingerprint(value: &str) -> bool {
    value.len() == FINGERPRINT_HEX_LENGTH
        && value
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Whether `digits` (ASCII digits only) passes the Luhn check.
pub fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte.wrapping_sub(b'0'));
            if position % 2 == 1 {
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

/// The digits of `raw` when it looks like a payment card number (PAN): 12 to 19 digits once
/// spaces and dashes are removed, with a valid Luhn check digit.
pub fn card_number(raw: &str) -> Option<String> {
    let digits: String = raw
        .trim()
        .chars()
        .filter(|character| *character != ' ' && *character != '-')
        .collect();
    let pan = (12..=19).contains(&digits.len())
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && luhn(&digits);
    pan.then_some(digits)
}

/// The form of a card identifier that is fingerprinted: a card number's digits, or any other
/// identifier (a lender's card token, a number that fails the Luhn check) trimmed, with
/// spaces and dashes removed when what remains is digits, so `4111 1111 1111 1112` and
/// `4111111111111112` are one card too.
pub fn normalise_card(raw: &str) -> String {
    if let Some(digits) = card_number(raw) {
        return digits;
    }
    let trimmed = raw.trim();
    let compact: String = trimmed
        .chars()
        .filter(|character| *character != ' ' && *character != '-')
        .collect();
    if !compact.is_empty() && compact.bytes().all(|byte| byte.is_ascii_digit()) {
        compact
    } else {
        trimmed.to_string()
    }
}

/// An address normalised for fingerprinting: its words joined by one space, lower case;
/// `None` when it has no words.
pub fn normalise_address(raw: &str) -> Option<String> {
    let normalised = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    (!normalised.is_empty()).then_some(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_recognised_by_length_and_luhn() {
        assert_eq!(
            card_number("4111 1111 1111 1111").as_deref(),
            Some("4111111111111111")
        );
        assert_eq!(
            card_number("5500-0000-0000-0004").as_deref(),
            Some("5500000000000004")
        );
        assert_eq!(card_number("4111111111111112"), None);
        assert_eq!(card_number("41111"), None);
        assert_eq!(card_number("tok_4111111111111111"), None);
        assert!(luhn("79927398713"));
        assert!(!luhn("79927398710"));
    }

    #[test]
    fn one_card_or_address_written_two_ways_normalises_to_one_form() {
        assert_eq!(normalise_card(" 4111-1111-1111-1111 "), "4111111111111111");
        assert_eq!(normalise_card("4111 1111 1111 1112"), "4111111111111112");
        assert_eq!(normalise_card(" tok_abc "), "tok_abc");
        assert_eq!(
            normalise_address("  88 Jianguo Road,\n Chaoyang  ").as_deref(),
            Some("88 jianguo road, chaoyang")
        );
        assert_eq!(normalise_address(" \t "), None);
    }

    #[test]
    fn fingerprints_are_told_from_values() {
        assert!(is_fingerprint(&"a1".repeat(32)));
        assert!(!is_fingerprint(&"A1".repeat(32)));
        assert!(!is_fingerprint("4111111111111111"));
        assert!(!is_fingerprint(&"a1".repeat(31)));
    }
}
