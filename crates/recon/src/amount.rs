//! Exact parsing of money amounts from bytes: integer minor units or decimal major units, never through a float.

/// How an amount column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountFormat {
    /// Number of decimal places of the major unit written in the file: 0 when the column
    /// already holds minor units, 2 for "12.34" yuan written as major units.
    pub scale: u32,
    /// The decimal point byte, usually `.`.
    pub decimal_point: u8,
    /// An optional thousands separator that is skipped before the decimal point (`1,234.56`).
    pub thousands_separator: Option<u8>,
}

impl AmountFormat {
    /// Integer minor units (`1234` is 12.34 yuan).
    pub const MINOR: AmountFormat = AmountFormat {
        scale: 0,
        decimal_point: b'.',
        thousands_separator: None,
    };

    /// Decimal major units with `scale` decimal places.
    pub fn major(scale: u32) -> AmountFormat {
        AmountFormat {
            scale,
            decimal_point: b'.',
            thousands_separator: None,
        }
    }
}

/// Largest scale accepted: 10^18 still fits an i64.
pub const SCALE_MAX: u32 = 18;

/// Parses `text` (already trimmed) into minor units, exactly.
///
/// Accepts an optional sign, digits, an optional decimal point and at most `scale` significant
/// decimal places (extra trailing zeros are accepted: `12.340` at scale 2 is 1234). Anything
/// else, an empty field or an overflow of i64 is an error with a short reason.
pub fn parse_amount(text: &[u8], format: &AmountFormat) -> Result<i64, &'static str> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        Some(_) => (false, text),
        None => return Err("empty amount"),
    };
    let mut value: i64 = 0;
    let mut digit_count = 0usize;
    let mut fraction_digits = 0u32;
    let mut seen_point = false;
    for &byte in digits {
        if byte.is_ascii_digit() {
            let digit = i64::from(byte - b'0');
            if seen_point {
                if fraction_digits == format.scale {
                    if digit != 0 {
                        return Err("amount has more decimal places than the layout allows");
                    }
                    digit_count += 1;
                    continue;
                }
                fraction_digits += 1;
            }
            value = value
                .checked_mul(10)
                .and_then(|shifted| shifted.checked_add(digit))
                .ok_or("amount out of range")?;
            digit_count += 1;
        } else if byte == format.decimal_point && !seen_point {
            seen_point = true;
        } else if Some(byte) == format.thousands_separator && !seen_point {
            continue;
        } else {
            return Err("amount is not a decimal number");
        }
    }
    if digit_count == 0 {
        return Err("amount has no digits");
    }
    for _ in fraction_digits..format.scale {
        value = value.checked_mul(10).ok_or("amount out of range")?;
    }
    Ok(if negative { -value } else { value })
}

/// Writes `minor` as a decimal string in major units with `scale` places (`1234`, 2 → `12.34`).
pub fn format_major(minor: i64, scale: u32, out: &mut String) {
    use std::fmt::Write;
    if scale == 0 {
        let _ = write!(out, "{minor}");
        return;
    }
    let divisor = 10u64.pow(scale);
    let magnitude = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    let _ = write!(
        out,
        "{sign}{}.{:0width$}",
        magnitude / divisor,
        magnitude % divisor,
        width = scale as usize
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minor_and_major_units_exactly() {
        assert_eq!(parse_amount(b"1234", &AmountFormat::MINOR), Ok(1234));
        assert_eq!(parse_amount(b"-7", &AmountFormat::MINOR), Ok(-7));
        assert_eq!(parse_amount(b"12.34", &AmountFormat::major(2)), Ok(1234));
        assert_eq!(parse_amount(b"12.3", &AmountFormat::major(2)), Ok(1230));
        assert_eq!(parse_amount(b"12", &AmountFormat::major(2)), Ok(1200));
        assert_eq!(parse_amount(b".5", &AmountFormat::major(2)), Ok(50));
        assert_eq!(parse_amount(b"12.340", &AmountFormat::major(2)), Ok(1234));
        assert_eq!(parse_amount(b"0.1", &AmountFormat::major(2)), Ok(10));
        let thousands = AmountFormat {
            thousands_separator: Some(b','),
            ..AmountFormat::major(2)
        };
        assert_eq!(parse_amount(b"1,234,567.89", &thousands), Ok(123_456_789));
    }

    #[test]
    fn rejects_what_is_not_an_exact_amount() {
        assert!(parse_amount(b"", &AmountFormat::MINOR).is_err());
        assert!(parse_amount(b"-", &AmountFormat::MINOR).is_err());
        assert!(parse_amount(b"12.345", &AmountFormat::major(2)).is_err());
        assert!(parse_amount(b"12.5", &AmountFormat::MINOR).is_err());
        assert!(parse_amount(b"1e5", &AmountFormat::major(2)).is_err());
        assert!(parse_amount(b"1.2.3", &AmountFormat::major(2)).is_err());
        assert!(parse_amount(b"99999999999999999999", &AmountFormat::MINOR).is_err());
        assert!(parse_amount(b"92233720368547758.08", &AmountFormat::major(2)).is_err());
    }

    #[test]
    fn formats_major_units() {
        let mut text = String::new();
        format_major(-1205, 2, &mut text);
        assert_eq!(text, "-12.05");
    }
}
