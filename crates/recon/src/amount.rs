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

/// The bad-row reason of an amount that did not parse: what is wrong with `text` and, when one
/// exists, the setting of the layout key `key` (such as `fields.amount`) that would read it.
///
/// Runs only for amounts that failed, so it may try other formats at leisure: each candidate
/// changes one or two settings and is suggested only if it reads the text (a thousands
/// separator only where it stands between groups of three digits).
pub fn explain(text: &[u8], format: &AmountFormat, reason: &str, key: &str) -> String {
    let shown = String::from_utf8_lossy(&text[..text.len().min(40)]).into_owned();
    let base = if text.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason} ({shown:?})")
    };
    match suggestion(text, format, key) {
        Some(hint) => format!("{base}; {hint}"),
        None => base,
    }
}

fn suggestion(text: &[u8], format: &AmountFormat, key: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let trimmed = crate::record::trim_ascii(text);
    if trimmed.len() != text.len() && parse_amount(trimmed, format).is_ok() {
        return Some("spaces around the amount need trim = true".to_owned());
    }
    let body = match trimmed.first() {
        Some(b'-' | b'+') => &trimmed[1..],
        _ => trimmed,
    };
    let foreign =
        |byte: &u8| !byte.is_ascii_digit() && !matches!(byte, b'.' | b',' | b' ' | b'\'' | b'_');
    if let Some((last, rest)) = body.split_last() {
        if *last == b'-' && !rest.iter().any(foreign) {
            return Some(
                "no layout key reads a trailing minus sign: the sign must come first".to_owned(),
            );
        }
    }
    if body.iter().any(foreign) {
        return Some(
            "no layout key reads currency signs, words or brackets in an amount: the column must hold only a sign, digits and separators"
                .to_owned(),
        );
    }
    let places = fraction_places(body, format.decimal_point);
    let separators: &[u8] = b",. '_";
    // One setting changed.
    if format.scale == 0 && places.is_some() && format.decimal_point == b'.' {
        let scale = places.unwrap_or(2).max(2);
        let candidate = AmountFormat { scale, ..*format };
        if parse_amount(trimmed, &candidate).is_ok() {
            return Some(format!(
                "decimal amounts need {key}.unit = \"major\" with {key}.scale = {scale}"
            ));
        }
    }
    if let Some(places) = places.filter(|places| *places > format.scale && format.scale > 0) {
        let candidate = AmountFormat {
            scale: places,
            ..*format
        };
        if places <= SCALE_MAX && parse_amount(trimmed, &candidate).is_ok() {
            return Some(format!(
                "{places} decimal places need {key}.scale = {places} (if the file really has them)"
            ));
        }
    }
    for &separator in separators {
        if separator == format.decimal_point || Some(separator) == format.thousands_separator {
            continue;
        }
        let candidate = AmountFormat {
            thousands_separator: Some(separator),
            ..*format
        };
        if grouped_in_threes(body, separator, format.decimal_point)
            && parse_amount(trimmed, &candidate).is_ok()
        {
            return Some(format!(
                "thousands separators need {key}.thousands_separator = \"{}\"",
                char::from(separator)
            ));
        }
    }
    for &point in b",." {
        if point == format.decimal_point {
            continue;
        }
        let scale = if format.scale == 0 {
            fraction_places(body, point).unwrap_or(2).max(2)
        } else {
            format.scale
        };
        let unit = if format.scale == 0 {
            format!(" with {key}.unit = \"major\", {key}.scale = {scale}")
        } else {
            String::new()
        };
        let thousands = format
            .thousands_separator
            .filter(|separator| *separator != point);
        let candidate = AmountFormat {
            scale,
            decimal_point: point,
            thousands_separator: thousands,
        };
        if parse_amount(trimmed, &candidate).is_ok() {
            return Some(format!(
                "a decimal point written \"{}\" needs {key}.decimal_point = \"{}\"{unit}",
                char::from(point),
                char::from(point)
            ));
        }
        // Two settings changed: `1.234,50` and `1 234,50`.
        for &separator in separators {
            if separator == point {
                continue;
            }
            let candidate = AmountFormat {
                thousands_separator: Some(separator),
                ..candidate
            };
            if grouped_in_threes(body, separator, point)
                && parse_amount(trimmed, &candidate).is_ok()
            {
                return Some(format!(
                    "this form needs {key}.decimal_point = \"{}\" and {key}.thousands_separator = \"{}\"{unit}",
                    char::from(point),
                    char::from(separator)
                ));
            }
        }
    }
    None
}

/// Digits after the last `point` of `body`, if it has one and only digits follow it.
fn fraction_places(body: &[u8], point: u8) -> Option<u32> {
    let at = memchr::memrchr(point, body)?;
    let fraction = &body[at + 1..];
    fraction
        .iter()
        .all(u8::is_ascii_digit)
        .then(|| u32::try_from(fraction.len()).unwrap_or(u32::MAX))
}

/// Whether every `separator` in the integer part of `body` is followed by exactly three
/// digits and preceded by one to three, so `12,50` is not taken for a thousands separator.
fn grouped_in_threes(body: &[u8], separator: u8, point: u8) -> bool {
    let integer = match memchr::memchr(point, body) {
        Some(at) => &body[..at],
        None => body,
    };
    let mut groups = integer.split(|byte| *byte == separator);
    let first = groups.next().unwrap_or_default();
    if !(1..=3).contains(&first.len()) || !first.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut count = 0;
    for group in groups {
        if group.len() != 3 || !group.iter().all(u8::is_ascii_digit) {
            return false;
        }
        count += 1;
    }
    count > 0
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

    fn hint(text: &str, format: &AmountFormat) -> String {
        let reason = parse_amount(text.as_bytes(), format).expect_err("does not parse");
        explain(text.as_bytes(), format, reason, "fields.amount")
    }

    #[test]
    fn an_amount_that_fails_says_which_layout_key_would_read_it() {
        let major = AmountFormat::major(2);
        assert_eq!(
            hint("1,234.50", &major),
            "amount is not a decimal number (\"1,234.50\"); thousands separators need fields.amount.thousands_separator = \",\""
        );
        assert!(hint("1 234 567.50", &major)
            .ends_with("thousands separators need fields.amount.thousands_separator = \" \""));
        assert!(hint("12,50", &major)
            .ends_with("a decimal point written \",\" needs fields.amount.decimal_point = \",\""));
        assert!(hint("1.234,50", &major).ends_with(
            "this form needs fields.amount.decimal_point = \",\" and fields.amount.thousands_separator = \".\""
        ));
        assert!(hint("1 234,50", &major).ends_with(
            "this form needs fields.amount.decimal_point = \",\" and fields.amount.thousands_separator = \" \""
        ));
        assert!(hint("12.34", &AmountFormat::MINOR).ends_with(
            "decimal amounts need fields.amount.unit = \"major\" with fields.amount.scale = 2"
        ));
        assert!(hint("10.001", &major).ends_with(
            "3 decimal places need fields.amount.scale = 3 (if the file really has them)"
        ));
        assert!(hint("12.00-", &major).contains("trailing minus sign"));
        assert!(hint("¥12.00", &major).contains("no layout key reads currency signs"));
        assert!(hint("12.00 CNY", &major).contains("no layout key reads currency signs"));
        let untrimmed = hint(" 12.00", &major);
        assert!(
            untrimmed.ends_with("spaces around the amount need trim = true"),
            "{untrimmed}"
        );
        assert_eq!(hint("", &major), "empty amount");
        // Nothing would read it: no hint, only the reason and the text.
        assert_eq!(
            hint("1.2.3", &major),
            "amount is not a decimal number (\"1.2.3\")"
        );
        let key = explain(
            b"1,5",
            &major,
            "amount is not a decimal number",
            "trailer.sum",
        );
        assert!(key.ends_with("trailer.sum.decimal_point = \",\""), "{key}");
    }

    /// Writes `minor` at scale 2 with a thousands separator and a decimal point.
    fn written(minor: i64, separator: u8, point: u8) -> String {
        let digits = (minor.unsigned_abs() / 100).to_string();
        let mut grouped = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                grouped.push(char::from(separator));
            }
            grouped.push(digit);
        }
        let sign = if minor < 0 { "-" } else { "" };
        format!(
            "{sign}{grouped}{}{:02}",
            char::from(point),
            minor.unsigned_abs() % 100
        )
    }

    proptest::proptest! {
        /// An amount written with separators reads exactly with the layout that declares
        /// them; read with the default layout, it reads the same (no separator was needed)
        /// or fails with a suggestion whose settings read it exactly.
        #[test]
        fn suggested_settings_read_the_amount_exactly(
            minor in -1_000_000_000_000i64..1_000_000_000_000,
            style in 0usize..5,
        ) {
            let (separator, point) = [(b',', b'.'), (b' ', b'.'), (b'\'', b'.'), (b'.', b','), (b' ', b',')][style];
            let text = written(minor, separator, point);
            let declared = AmountFormat {
                scale: 2,
                decimal_point: point,
                thousands_separator: Some(separator),
            };
            proptest::prop_assert_eq!(parse_amount(text.as_bytes(), &declared), Ok(minor));
            let plain = AmountFormat::major(2);
            match parse_amount(text.as_bytes(), &plain) {
                Ok(value) => proptest::prop_assert_eq!(value, minor),
                Err(reason) => {
                    let message = explain(text.as_bytes(), &plain, reason, "fields.amount");
                    let point_needed = point != b'.';
                    let separator_needed = text.contains(char::from(separator)) && separator != point;
                    proptest::prop_assert!(
                        !point_needed || message.contains("decimal_point = \",\""),
                        "{}: {}", text, message
                    );
                    proptest::prop_assert!(
                        !separator_needed || point_needed || message.contains(&format!("thousands_separator = \"{}\"", char::from(separator))),
                        "{}: {}", text, message
                    );
                }
            }
        }
    }

    #[test]
    fn formats_major_units() {
        let mut text = String::new();
        format_major(-1205, 2, &mut text);
        assert_eq!(text, "-12.05");
    }
}
