//! Customers: a phone number and a national id, and which of them a request needs.

use super::*;

/// A phone number as [`tally_privacy::identity::normalise_phone`] accepts it, in its plain
/// international form: `+`, then 8 to 15 digits not starting with 0; a Chinese number
/// (`+86`) is an 11-digit mobile starting with 1. The handler also takes spaces, dashes,
/// parentheses and national Chinese mobiles (`13800138000`), which the description names.
pub const PHONE_PATTERN: &str = r"^\+(861[0-9]{10}|[1-79][0-9]{7,14}|8[0-57-9][0-9]{6,13})$";
/// The format of a national id: a well-formed PRC resident identity number with a real
/// birth date and a matching check character (ISO 7064 MOD 11-2), which no pattern can
/// check.
pub const NATIONAL_ID_FORMAT: &str = "prc-resident-identity-number";

/// A customer's phone and national id; a lookup gives exactly one of them.
pub(super) fn customer_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    for schema in [
        "CreateCustomerRequest",
        "SearchRequest",
        "ChangePhoneRequest",
    ] {
        let Some(object) = object_mut(schemas, schema) else {
            continue;
        };
        if let Some(phone) = property_mut(object, "phone") {
            phone.pattern = Some(PHONE_PATTERN.to_string());
        }
        // A format and no pattern: a generator that knows the format (the contract test's)
        // makes only numbers that pass the check character, and one that does not still
        // reads the description.
        if let Some(national_id) = property_mut(object, "national_id") {
            national_id.format = Some(SchemaFormat::Custom(NATIONAL_ID_FORMAT.to_string()));
            national_id.description = Some(format!(
                "A PRC resident identity number (format `{NATIONAL_ID_FORMAT}`): {}, whose \
                 last character is the ISO 7064 MOD 11-2 check character of the others; spaces \
                 are ignored and `x` is read as `X`.",
                "six digits of region, a birth date from 1900 to 2099 (YYYYMMDD), three \
                 digits of sequence and a check character (a digit or X)"
            ));
        }
    }
    if let Some(search) = object_mut(schemas, "SearchRequest") {
        keyword(
            search,
            "oneOf",
            json!([{ "required": ["phone"] }, { "required": ["national_id"] }]),
        );
    }
}
