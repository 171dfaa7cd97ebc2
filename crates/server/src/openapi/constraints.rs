//! What the OpenAPI document states beyond the types, so that every request a client (or a
//! contract tester) builds from the document is one Tally accepts: the characters and
//! lengths of text fields, the digits of amounts in each currency, enumerations, numbers'
//! ranges, fields that go together, and request bodies that take no field they do not
//! name.
//!
//! Each rule here mirrors a check a handler or the domain makes, and says no more than that
//! check allows: where a check cannot be written as a schema (a code's Unicode look-alikes,
//! an amount's digits when the currency is the account's, a byte length), the schema states
//! the strictest rule that is still true, so that whatever it allows is accepted. Rules that
//! depend on stored state or on the clock (an unknown customer, an entry that does not
//! balance, an expiry in the past) are described in the operations' `422` answers instead.
//!
//! utoipa's `Object` has no `anyOf`, `oneOf` or `not` beside its properties; its flattened
//! extension map serialises any key, so those keywords are written through it
//! ([`keyword`]).

use serde_json::{json, Value};
use tally_core::Currency;
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, Schema, SchemaFormat};
use utoipa::openapi::{OpenApi, RefOr, Type};
use utoipa::Modify;

mod amounts;
mod credit;
mod customers;
mod fields;
mod parameters;
mod payments;
mod risk;

pub use amounts::{
    amount_pattern, amount_pattern_any_currency, amount_pattern_every_currency,
    currencies_by_exponent, Sign,
};
use amounts::{amount_rules, AMOUNTS};
use credit::product_rules;
pub use credit::RATE_PATTERN;
use customers::customer_rules;
pub use customers::{NATIONAL_ID_FORMAT, PHONE_PATTERN};
pub use fields::WEBHOOK_URL_PATTERN;
use fields::{text_fields, ENUMERATIONS, NOT_NULL, REQUIRED};
use parameters::apply_parameters;
use payments::{funding_rules, webhook_rules};
use risk::risk_event_rules;

/// The characters `char::is_whitespace` (what `str::trim` strips) is true of, as a
/// character-class body in the syntax JSON Schema patterns share with ECMA 262 and Rust.
pub const WHITESPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// The characters `char::is_control` is true of (Unicode category Cc).
pub const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// The characters no account code may hold ([`tally_ledger::forbidden_in_code`]): control
/// characters and bidirectional formatting characters.
pub const FORBIDDEN_IN_CODE: &str =
    r"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// Longest text the ledger keeps in one field is 1024 bytes
/// ([`tally_ledger::TEXT_LENGTH_MAX`]); 256 characters always fit, whatever they are.
pub const LEDGER_TEXT_CHARACTERS_MAX: usize = tally_ledger::TEXT_LENGTH_MAX / 4;
/// The risk engine's entity values and event ids are at most 256 bytes; 64 characters
/// always fit.
pub const RISK_ENTITY_CHARACTERS_MAX: usize = 256 / 4;
/// Longest name of a customer, in characters ([`tally_privacy::identity::normalise_name`]).
pub const CUSTOMER_NAME_CHARACTERS_MAX: usize = 100;
/// Longest reason for a lookup or a read in clear, in characters.
pub const REASON_CHARACTERS_MAX: usize = 500;

/// Text that holds something besides whitespace (the check `text.trim().is_empty()`
/// refuses the rest). Unanchored: a pattern matches anywhere in the text.
pub fn not_blank() -> String {
    format!("[^{WHITESPACE}]")
}

/// An account code: no forbidden character, and something besides whitespace.
pub fn account_code() -> String {
    format!("^[^{FORBIDDEN_IN_CODE}]*[^{FORBIDDEN_IN_CODE}{WHITESPACE}][^{FORBIDDEN_IN_CODE}]*$")
}

/// Text without control characters that holds something besides whitespace (a customer's
/// name).
pub fn visible_text() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{WHITESPACE}][^{CONTROL}]*$")
}

/// Text without control characters (a reason).
pub fn no_control_characters() -> String {
    format!("^[^{CONTROL}]*$")
}

/// Account codes starting with this, in either letter case, are the credit service's. The
/// ledger also refuses Unicode look-alikes (full-width `ｃｒｅｄｉｔ-`), which the
/// operation's description names.
pub const RESERVED_CODE_PATTERN: &str = "^[Cc][Rr][Ee][Dd][Ii][Tt]-";
/// Idempotency keys starting with these are Tally's own
/// ([`tally_service::credit::ledger_accounts::RESERVED_KEY_PREFIXES`]).
pub const RESERVED_KEY_PATTERN: &str = "^credit[:-]";
/// The longest idempotency key, and the characters it may hold (visible ASCII), as
/// [`crate::extract::idempotency_key`] checks them.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// Writes a JSON Schema keyword utoipa's `Object` does not model (see the module's note).
fn keyword(object: &mut Object, name: &str, value: Value) {
    object
        .extensions
        .get_or_insert_with(Default::default)
        .insert(name.to_string(), value);
}

fn object_mut<'a>(
    schemas: &'a mut std::collections::BTreeMap<String, RefOr<Schema>>,
    name: &str,
) -> Option<&'a mut Object> {
    match schemas.get_mut(name) {
        Some(RefOr::T(Schema::Object(object))) => Some(object),
        _ => None,
    }
}

fn property_mut<'a>(object: &'a mut Object, name: &str) -> Option<&'a mut Object> {
    match object.properties.get_mut(name) {
        Some(RefOr::T(Schema::Object(property))) => Some(property),
        _ => None,
    }
}

/// Says in the document what the handlers check beyond the types (see the module's note),
/// with the default page size; [`PageSizes`] states a serving process's own.
pub struct Constraints;

/// The largest page of the serving process (`server.page_size_max`) as the maximum of every
/// paged listing's `limit`.
pub struct PageSizes(pub i64);

impl Modify for PageSizes {
    fn modify(&self, openapi: &mut OpenApi) {
        apply_parameters(openapi, self.0);
    }
}

impl Modify for Constraints {
    fn modify(&self, openapi: &mut OpenApi) {
        apply_parameters(
            openapi,
            crate::config::ServerConfig::default().page_size_max,
        );
        let request_schemas = request_schemas(openapi);
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let schemas = &mut components.schemas;
        let currencies: Vec<Value> = Currency::known_codes().map(Value::from).collect();
        for (name, schema) in schemas.iter_mut() {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            // Request bodies refuse unknown fields (`deny_unknown_fields`): say so.
            if request_schemas.contains(name) && object.additional_properties.is_none() {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
            if let Some(currency) = property_mut(object, "currency") {
                if currency.enum_values.is_none() {
                    currency.enum_values = Some(currencies.clone());
                }
            }
            if request_schemas.contains(name) {
                if let Some(metadata) = property_mut(object, "metadata") {
                    metadata_rules(metadata);
                }
            }
        }
        for (schema, property) in NOT_NULL {
            if let Some(field) = object_mut(schemas, schema).and_then(|o| property_mut(o, property))
            {
                if let utoipa::openapi::schema::SchemaType::Array(types) = &field.schema_type {
                    let types: Vec<Type> = types
                        .iter()
                        .filter(|kind| **kind != Type::Null)
                        .cloned()
                        .collect();
                    field.schema_type = match types.as_slice() {
                        [single] => single.clone().into(),
                        _ => utoipa::openapi::schema::SchemaType::Array(types),
                    };
                }
            }
        }
        for (schema, property) in REQUIRED {
            if let Some(object) = object_mut(schemas, schema) {
                if !object.required.iter().any(|name| name == property) {
                    object.required.push((*property).to_string());
                }
            }
        }
        for (schema, property, rule) in text_fields() {
            if let Some(field) = object_mut(schemas, schema).and_then(|o| property_mut(o, property))
            {
                rule.apply(field);
            }
        }
        for (schema, property, values) in ENUMERATIONS {
            if let Some(field) = object_mut(schemas, schema).and_then(|o| property_mut(o, property))
            {
                let mut values: Vec<Value> = values.iter().map(|value| json!(value)).collect();
                // A field that takes `null` keeps taking it.
                if let utoipa::openapi::schema::SchemaType::Array(types) = &field.schema_type {
                    if types.contains(&Type::Null) {
                        values.push(Value::Null);
                    }
                }
                field.enum_values = Some(values);
            }
        }
        for (schema, property, sign) in AMOUNTS {
            if let Some(object) = object_mut(schemas, schema) {
                amount_rules(object, property, *sign, *schema == "PostHoldRequest");
            }
        }
        if let Some(code) = object_mut(schemas, "CreateAccountRequest")
            .and_then(|object| property_mut(object, "code"))
        {
            keyword(code, "not", json!({ "pattern": RESERVED_CODE_PATTERN }));
        }
        // A batch item's key follows the `Idempotency-Key` header's rules.
        if let Some(key) = object_mut(schemas, "BatchEntryRequest")
            .and_then(|object| property_mut(object, "idempotency_key"))
        {
            key.pattern = Some(IDEMPOTENCY_KEY_PATTERN.to_string());
            keyword(key, "not", json!({ "pattern": RESERVED_KEY_PATTERN }));
        }
        // An account's balance may be bounded on one side, not both.
        if let Some(flags) = object_mut(schemas, "FlagsBody") {
            keyword(
                flags,
                "not",
                json!({
                    "properties": {
                        "debits_must_not_exceed_credits": { "const": true },
                        "credits_must_not_exceed_debits": { "const": true },
                    },
                    "required": ["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"],
                }),
            );
        }
        customer_rules(schemas);
        risk_event_rules(schemas);
        product_rules(schemas);
        funding_rules(schemas);
        webhook_rules(schemas);
    }
}

/// The names of the schemas operations take as request bodies.
fn request_schemas(openapi: &OpenApi) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for item in openapi.paths.paths.values() {
        let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
        for operation in operations.into_iter().flatten() {
            let bodies = operation.request_body.iter();
            for content in bodies.flat_map(|body| body.content.values()) {
                if let Some(RefOr::Ref(reference)) = &content.schema {
                    if let Some(name) = reference.ref_location.rsplit('/').next() {
                        names.insert(name.to_string());
                    }
                }
            }
        }
    }
    // Schemas that request bodies hold.
    for name in [
        "LegBody",
        "AdjustingEntryRequest",
        "AdjustingLegRequest",
        "Application",
        "TermBody",
        "PositiveAmount",
        "NotNegativeAmount",
        "SignedAmount",
        "EventAmount",
        "GeoPointBody",
        "FlagsBody",
    ] {
        names.insert(name.to_string());
    }
    names
}

/// A ledger object's metadata: at most [`tally_ledger::METADATA_KEYS_MAX`] keys, each with
/// something besides whitespace, keys and values within the ledger's text length. Values
/// say they hold no NUL (`400 invalid_text` everywhere): a schema-driven generator asked
/// not to produce NUL still put one in a free-form map's value.
fn metadata_rules(metadata: &mut Object) {
    metadata.max_properties = Some(tally_ledger::METADATA_KEYS_MAX);
    metadata.property_names = Some(Box::new(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(LEDGER_TEXT_CHARACTERS_MAX))
            .pattern(Some(not_blank()))
            .build(),
    )));
    metadata.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(LEDGER_TEXT_CHARACTERS_MAX))
                .pattern(Some("^[^\\x00]*$"))
                .build(),
        ),
    ))));
}

#[cfg(test)]
mod tests {
    //! Whatever a pattern of the document allows, the check it mirrors accepts: strings are
    //! drawn from each pattern (proptest reads the same syntax) and given to that check.
    use super::amounts::AMOUNT_DIGITS_MAX;
    use super::*;
    use proptest::prelude::*;
    use proptest::string::string_regex;
    use tally_core::Amount;

    /// Strings a pattern matches in whole. proptest draws whole matches and takes no
    /// anchors, so an anchored pattern's `^` and `$` are dropped.
    fn drawn(pattern: &str) -> impl Strategy<Value = String> {
        let whole = pattern.strip_prefix('^').unwrap_or(pattern);
        let whole = whole.strip_suffix('$').unwrap_or(whole);
        string_regex(whole).expect("the pattern compiles")
    }

    /// An unanchored pattern as a whole-text one: any text, a match, any text.
    fn anywhere(pattern: &str) -> String {
        format!(r"[\s\S]{{0,8}}{pattern}[\s\S]{{0,8}}")
    }

    fn every_amount_rule() -> Vec<(u8, Vec<&'static str>, Sign)> {
        let mut rules = Vec::new();
        for (exponent, codes) in currencies_by_exponent() {
            for sign in [Sign::Positive, Sign::NotNegative, Sign::Any] {
                rules.push((exponent, codes.clone(), sign));
            }
        }
        rules
    }

    fn accepted(value: &str, currency: Currency, sign: Sign) -> Result<(), String> {
        let amount = Amount::parse(value, currency).map_err(|error| error.to_string())?;
        let signed_right = match sign {
            Sign::Positive => amount.is_positive(),
            Sign::NotNegative => !amount.is_negative(),
            Sign::Any => true,
        };
        if signed_right {
            Ok(())
        } else {
            Err(format!(
                "{value} {currency} has the wrong sign for {sign:?}"
            ))
        }
    }

    #[test]
    fn the_longest_amount_of_each_pattern_parses() {
        for (exponent, codes) in currencies_by_exponent() {
            // As many digits as the pattern allows, all nines.
            let whole = "9".repeat(usize::from(AMOUNT_DIGITS_MAX - exponent));
            let value = match exponent {
                0 => whole,
                _ => format!("{whole}.{}", "9".repeat(usize::from(exponent))),
            };
            for code in codes {
                let currency = Currency::from_code(code).unwrap();
                assert_eq!(accepted(&value, currency, Sign::Positive), Ok(()));
                assert_eq!(accepted(&format!("-{value}"), currency, Sign::Any), Ok(()));
            }
        }
    }

    #[test]
    fn currencies_have_zero_two_or_three_fraction_digits() {
        let exponents: Vec<u8> = currencies_by_exponent()
            .iter()
            .map(|(exponent, _)| *exponent)
            .collect();
        assert_eq!(exponents, [0, 2, 3]);
    }

    proptest! {
        #[test]
        fn every_amount_a_pattern_allows_parses_in_its_currencies(
            (codes, sign, value) in proptest::sample::select(every_amount_rule()).prop_flat_map(
                |(exponent, codes, sign)| (Just(codes), Just(sign), drawn(&amount_pattern(exponent, sign))),
            ),
        ) {
            for code in codes {
                let currency = Currency::from_code(code).unwrap();
                prop_assert_eq!(accepted(&value, currency, sign), Ok(()));
            }
        }

        #[test]
        fn amounts_read_in_the_accounts_currency_parse_in_every_currency(
            value in drawn(&amount_pattern_any_currency(Sign::Positive)),
        ) {
            for code in Currency::known_codes() {
                let currency = Currency::from_code(code).unwrap();
                prop_assert_eq!(accepted(&value, currency, Sign::Positive), Ok(()));
            }
        }

        #[test]
        fn webhook_urls_the_pattern_allows_are_accepted(url in drawn(WEBHOOK_URL_PATTERN)) {
            let checked = tally_service::payments::webhooks::check_url(&url);
            prop_assert!(checked.is_ok(), "{}: {:?}", url, checked);
        }

        #[test]
        fn account_codes_the_pattern_allows_are_accepted(
            code in drawn(&account_code()),
        ) {
            prop_assert!(!code.trim().is_empty());
            prop_assert!(!code.chars().any(tally_ledger::forbidden_in_code));
        }

        #[test]
        fn text_that_is_not_blank_survives_trimming(text in drawn(&anywhere(&not_blank()))) {
            prop_assert!(!text.trim().is_empty());
        }

        #[test]
        fn names_the_pattern_allows_are_accepted(
            name in drawn(&visible_text()).prop_filter("at most 100 characters", |name| {
                name.chars().count() <= CUSTOMER_NAME_CHARACTERS_MAX
            }),
        ) {
            prop_assert!(tally_privacy::identity::normalise_name(&name).is_ok(), "{name:?}");
        }

        #[test]
        fn reasons_the_pattern_allows_hold_no_control_character(
            reason in drawn(&no_control_characters()),
        ) {
            prop_assert!(!reason.chars().any(char::is_control));
        }

        #[test]
        fn phones_the_pattern_allows_are_accepted(phone in drawn(PHONE_PATTERN)) {
            prop_assert!(tally_privacy::identity::normalise_phone(&phone).is_ok(), "{phone}");
        }

        #[test]
        fn rates_the_pattern_allows_are_in_zero_to_one(rate in drawn(RATE_PATTERN)) {
            let parsed = tally_core::rate::exact::parse(&rate).unwrap();
            prop_assert!(!parsed.is_sign_negative() && parsed < rust_decimal::Decimal::ONE);
        }
    }
}
