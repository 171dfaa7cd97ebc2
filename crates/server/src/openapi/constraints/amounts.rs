//! Amounts: the decimal strings an amount takes in each currency, and the objects that
//! hold an amount beside its currency.

use super::*;

/// Which amounts a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// More than zero.
    Positive,
    /// Zero or more.
    NotNegative,
    /// Any sign.
    Any,
}

/// Most digits an amount may have in all, whole and fraction: any 18-digit number of
/// minor units fits in the 64 bits [`tally_core::Amount`] keeps.
pub(super) const AMOUNT_DIGITS_MAX: u8 = 18;

/// The decimal strings [`tally_core::Amount::parse`] reads for a currency of `exponent`
/// fraction digits, with `sign`: no more fraction digits than the currency has, no more
/// than 18 digits in all, and no leading zeros (the parser takes them; the pattern, the
/// strictest true rule, leaves them out to keep the digit count simple).
pub fn amount_pattern(exponent: u8, sign: Sign) -> String {
    let whole_extra = AMOUNT_DIGITS_MAX - exponent - 1;
    let fraction = if exponent == 0 {
        String::new()
    } else {
        format!(r"(\.[0-9]{{1,{exponent}}})?")
    };
    match sign {
        Sign::NotNegative => format!("^(0|[1-9][0-9]{{0,{whole_extra}}}){fraction}$"),
        Sign::Any => format!("^-?(0|[1-9][0-9]{{0,{whole_extra}}}){fraction}$"),
        Sign::Positive if exponent == 0 => format!("^[1-9][0-9]{{0,{whole_extra}}}$"),
        Sign::Positive => {
            // Below one: some fraction digit other than zero.
            let below_one: Vec<String> = (0..exponent)
                .map(|zeros| {
                    let rest = match exponent - zeros - 1 {
                        0 => String::new(),
                        rest => format!("[0-9]{{0,{rest}}}"),
                    };
                    format!("{}[1-9]{rest}", "0".repeat(usize::from(zeros)))
                })
                .collect();
            format!(
                r"^([1-9][0-9]{{0,{whole_extra}}}{fraction}|0\.({}))$",
                below_one.join("|")
            )
        }
    }
}

/// The known currencies grouped by their number of fraction digits, fewest first.
pub fn currencies_by_exponent() -> Vec<(u8, Vec<&'static str>)> {
    let mut groups: Vec<(u8, Vec<&'static str>)> = Vec::new();
    for code in Currency::known_codes() {
        let Ok(currency) = Currency::from_code(code) else {
            continue;
        };
        let exponent = currency.exponent();
        match groups.iter_mut().find(|(known, _)| *known == exponent) {
            Some((_, codes)) => codes.push(code),
            None => groups.push((exponent, vec![code])),
        }
    }
    groups.sort_by_key(|(exponent, _)| *exponent);
    groups
}

/// The strictest amount pattern true in every currency: whole major units only, with no
/// more digits than the currency with the most fraction digits leaves. For an amount read
/// in a currency the request does not name (the account's).
pub fn amount_pattern_any_currency(sign: Sign) -> String {
    let exponent = currencies_by_exponent()
        .last()
        .map_or(0, |(exponent, _)| *exponent);
    let whole_extra = AMOUNT_DIGITS_MAX - exponent - 1;
    match sign {
        Sign::Positive => format!("^[1-9][0-9]{{0,{whole_extra}}}$"),
        Sign::NotNegative => format!("^(0|[1-9][0-9]{{0,{whole_extra}}})$"),
        Sign::Any => format!("^-?(0|[1-9][0-9]{{0,{whole_extra}}})$"),
    }
}

/// A pattern every branch of [`amount_rules`] lies within: up to 18 digits, up to as many
/// fraction digits as any currency has, and a sign only where negative amounts are taken.
/// It states the shape of an amount for readers of the document that skip `anyOf`.
pub fn amount_pattern_every_currency(sign: Sign) -> String {
    let exponent = currencies_by_exponent()
        .last()
        .map_or(0, |(exponent, _)| *exponent);
    let whole_extra = AMOUNT_DIGITS_MAX - 1;
    let minus = if sign == Sign::Any { "-?" } else { "" };
    format!(r"^{minus}(0|[1-9][0-9]{{0,{whole_extra}}})(\.[0-9]{{1,{exponent}}})?$")
}

/// Amounts beside their currency in one object: (schema, amount property, sign).
pub(super) const AMOUNTS: &[(&str, &str, Sign)] = &[
    ("LegBody", "amount", Sign::Positive),
    ("AdjustingLegRequest", "amount", Sign::Positive),
    ("CreateHoldRequest", "amount", Sign::Positive),
    ("PostHoldRequest", "amount", Sign::Positive),
    ("PositiveAmount", "value", Sign::Positive),
    ("NotNegativeAmount", "value", Sign::NotNegative),
    ("SignedAmount", "value", Sign::Any),
    ("EventAmount", "value", Sign::NotNegative),
];

/// An amount and its `currency` in one object: the amount's pattern for the currency's
/// fraction digits, one branch of `anyOf` per number of digits. `both_or_neither`: the two
/// are optional but go together.
pub(super) fn amount_rules(object: &mut Object, property: &str, sign: Sign, both_or_neither: bool) {
    let groups = currencies_by_exponent();
    let mut branches: Vec<Value> = groups
        .iter()
        .map(|(exponent, codes)| {
            let mut branch = json!({
                "properties": {
                    "currency": { "enum": codes },
                    property: { "pattern": amount_pattern(*exponent, sign) },
                },
            });
            if both_or_neither {
                branch["required"] = json!([property, "currency"]);
            }
            branch
        })
        .collect();
    if both_or_neither {
        branches.push(json!({ "maxProperties": 0 }));
    }
    if let Some(amount) = property_mut(object, property) {
        amount.pattern = Some(amount_pattern_every_currency(sign));
    }
    keyword(object, "anyOf", Value::Array(branches));
}
