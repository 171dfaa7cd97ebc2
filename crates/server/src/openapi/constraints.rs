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

/// A phone number as [`tally_privacy::identity::normalise_phone`] accepts it, in its plain
/// international form: `+`, then 8 to 15 digits not starting with 0; a Chinese number
/// (`+86`) is an 11-digit mobile starting with 1. The handler also takes spaces, dashes,
/// parentheses and national Chinese mobiles (`13800138000`), which the description names.
pub const PHONE_PATTERN: &str = r"^\+(861[0-9]{10}|[1-79][0-9]{7,14}|8[0-57-9][0-9]{6,13})$";
/// The format of a national id: a well-formed PRC resident identity number with a real
/// birth date and a matching check character (ISO 7064 MOD 11-2), which no pattern can
/// check.
pub const NATIONAL_ID_FORMAT: &str = "prc-resident-identity-number";

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
const AMOUNT_DIGITS_MAX: u8 = 18;

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

/// A text rule: lengths in characters and a pattern.
#[derive(Debug, Clone)]
struct Text {
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<String>,
}

impl Text {
    fn new(min_length: Option<usize>, max_length: Option<usize>, pattern: Option<String>) -> Self {
        Self {
            min_length,
            max_length,
            pattern,
        }
    }

    fn apply(&self, object: &mut Object) {
        if self.min_length.is_some() {
            object.min_length = self.min_length;
        }
        if self.max_length.is_some() {
            object.max_length = self.max_length;
        }
        if self.pattern.is_some() {
            object.pattern = self.pattern.clone();
        }
    }
}

/// The text fields of request bodies and their rules: (schema, property, rule).
fn text_fields() -> Vec<(&'static str, &'static str, Text)> {
    let ledger_text = Text::new(None, Some(LEDGER_TEXT_CHARACTERS_MAX), None);
    let risk_entity = Text::new(Some(1), Some(RISK_ENTITY_CHARACTERS_MAX), None);
    let not_empty = Text::new(Some(1), None, None);
    let not_blank = Text::new(Some(1), None, Some(not_blank()));
    let mut fields = vec![
        (
            "CreateAccountRequest",
            "code",
            Text::new(
                Some(1),
                Some(LEDGER_TEXT_CHARACTERS_MAX),
                Some(account_code()),
            ),
        ),
        ("PostEntryRequest", "description", ledger_text.clone()),
        ("CreateHoldRequest", "description", ledger_text),
        (
            "CreateCustomerRequest",
            "name",
            Text::new(
                Some(1),
                Some(CUSTOMER_NAME_CHARACTERS_MAX),
                Some(visible_text()),
            ),
        ),
        (
            "ChangeNameRequest",
            "name",
            Text::new(
                Some(1),
                Some(CUSTOMER_NAME_CHARACTERS_MAX),
                Some(visible_text()),
            ),
        ),
        (
            "SearchRequest",
            "reason",
            Text::new(
                None,
                Some(REASON_CHARACTERS_MAX),
                Some(no_control_characters()),
            ),
        ),
        (
            "RevealRequest",
            "reason",
            Text::new(Some(1), Some(REASON_CHARACTERS_MAX), Some(visible_text())),
        ),
        (
            "EraseCustomerRequest",
            "reason",
            Text::new(Some(1), Some(REASON_CHARACTERS_MAX), Some(visible_text())),
        ),
        ("CaptureRequest", "product", not_empty.clone()),
        ("BillInstallmentRequest", "product", not_empty.clone()),
        ("WriteOffRequest", "case_id", not_empty.clone()),
        ("NewTaskRequest", "reason", not_blank.clone()),
        // The reference goes into the ledger hold's description after about 60 bytes of
        // its own.
        (
            "AuthorizeRequest",
            "merchant_reference",
            Text::new(None, Some(200), None),
        ),
        ("AddListEntryRequest", "value", not_empty.clone()),
        ("AddListEntryRequest", "reason", not_empty.clone()),
        ("ClaimStolenAccountRequest", "customer", risk_entity.clone()),
        (
            "ClaimStolenAccountRequest",
            "description",
            Text::new(None, Some(1024), None),
        ),
        (
            "ClaimStolenAccountRequest",
            "police_reference",
            Text::new(Some(1), Some(32), Some(visible_text())),
        ),
        ("RestoreAccessRequest", "note", not_blank.clone()),
        ("ProductBody", "code", not_blank.clone()),
        ("ProductBody", "name", not_blank),
    ];
    for field in [
        "id", "customer", "device", "ip", "card", "address", "merchant",
    ] {
        fields.push(("RiskEventRequest", field, risk_entity.clone()));
    }
    // What the risk gate's requests tell the engine: device and IP are event entities; an
    // address is fingerprinted after its white space is collapsed, so it must show something.
    let address = Text::new(
        Some(1),
        Some(tally_service::risk_gate::profile::ADDRESS_CHARACTERS_MAX),
        Some(visible_text()),
    );
    for schema in [
        "AuthorizeRequest",
        "OpenAccountRequest",
        "ChangePhoneRequest",
        "ChangeNameRequest",
        "ChangeAddressRequest",
        "BindBankCardRequest",
        "WalletWithdrawalRequest",
    ] {
        fields.push((schema, "device", risk_entity.clone()));
        fields.push((schema, "ip", risk_entity.clone()));
    }
    fields.push(("AuthorizeRequest", "delivery_address", address.clone()));
    fields.push(("ChangeAddressRequest", "address", address));
    // Digits only here (the handler also ignores spaces and dashes); the check digit is in
    // the contract test's exceptions.
    fields.push((
        "BindBankCardRequest",
        "card_number",
        Text::new(None, None, Some("^[0-9]{12,19}$".to_string())),
    ));
    // Payments: references are at most 128 bytes; a customer names ledger accounts; a card
    // token never looks like a card number (digits and dashes only), so one starting with a
    // letter or `_.:` is always a token.
    let payment_reference = Text::new(
        Some(1),
        Some(PAYMENT_REFERENCE_CHARACTERS_MAX),
        Some(visible_text()),
    );
    let customer = Text::new(None, None, Some(CUSTOMER_PATTERN.to_string()));
    let card_token = Text::new(None, None, Some(CARD_TOKEN_PATTERN.to_string()));
    fields.push((
        "CreatePaymentRequest",
        "merchant_id",
        payment_reference.clone(),
    ));
    fields.push((
        "CreateWebhookEndpointRequest",
        "merchant_id",
        payment_reference.clone(),
    ));
    fields.push((
        "CreateWebhookEndpointRequest",
        "url",
        Text::new(
            Some(1),
            Some(WEBHOOK_URL_CHARACTERS_MAX),
            Some(WEBHOOK_URL_PATTERN.to_string()),
        ),
    ));
    fields.push(("CreatePaymentRequest", "order_reference", payment_reference));
    fields.push(("CreatePaymentRequest", "customer", customer.clone()));
    fields.push(("SaveCardRequest", "customer", customer));
    fields.push(("SaveCardRequest", "card_token", card_token.clone()));
    fields.push(("CardMovementRequest", "card_token", card_token.clone()));
    fields.push(("WalletWithdrawalRequest", "card_token", card_token));
    for field in ["device", "ip", "code"] {
        fields.push(("ConfirmRequest", field, risk_entity.clone()));
    }
    // Payouts name a merchant by its id.
    fields.push((
        "CreatePayoutRequest",
        "merchant_id",
        Text::new(None, None, Some(CUSTOMER_PATTERN.to_string())),
    ));
    // Merchants: the id names ledger accounts; sealed texts are at most 200 characters;
    // a category code is four digits (ISO 18245).
    fields.push((
        "OnboardMerchantRequest",
        "id",
        Text::new(None, None, Some(CUSTOMER_PATTERN.to_string())),
    ));
    for field in ["legal_name", "licence_number", "bank_account"] {
        fields.push((
            "OnboardMerchantRequest",
            field,
            Text::new(
                Some(1),
                Some(MERCHANT_TEXT_CHARACTERS_MAX),
                Some(visible_text()),
            ),
        ));
    }
    fields.push((
        "OnboardMerchantRequest",
        "category_code",
        Text::new(None, None, Some("^[0-9]{4}$".to_string())),
    ));
    fields.push((
        "MerchantStatusRequest",
        "reason",
        Text::new(Some(1), Some(REASON_CHARACTERS_MAX), Some(visible_text())),
    ));
    fields.push((
        "DisputeEvidenceRequest",
        "evidence",
        Text::new(
            Some(1),
            Some(tally_payments::dispute::EVIDENCE_LENGTH_MAX),
            Some(visible_text()),
        ),
    ));
    // The reconciliation worklist: texts not blank, within the service's limits (the
    // adjusting entry's description within the ledger's).
    use tally_service::recon::worklist::{
        ASSIGNEE_LENGTH_MAX, DESCRIPTION_LENGTH_MAX, NOTE_LENGTH_MAX,
    };
    for (schema, field, max) in [
        ("AssignExceptionRequest", "assignee", ASSIGNEE_LENGTH_MAX),
        ("ResolveExceptionRequest", "note", NOTE_LENGTH_MAX),
        (
            "AdjustingEntryRequest",
            "description",
            DESCRIPTION_LENGTH_MAX,
        ),
    ] {
        let pattern = crate::openapi::constraints::not_blank();
        fields.push((schema, field, Text::new(Some(1), Some(max), Some(pattern))));
    }
    fields.push((
        "AdjustingLegRequest",
        "account_code",
        Text::new(Some(1), None, Some(account_code())),
    ));
    fields
}

/// Longest legal name, licence number or bank account of a merchant, in characters.
const MERCHANT_TEXT_CHARACTERS_MAX: usize = tally_service::payments::merchants::TEXT_LENGTH_MAX;

/// A payment's merchant id and order reference: 128 bytes, stated as characters that
/// always fit.
const PAYMENT_REFERENCE_CHARACTERS_MAX: usize = 32;
/// A webhook endpoint's URL as it is always accepted: `http` or `https`, a host whose
/// labels start with a letter (never read as an IPv4 address), an optional port and a
/// plain path. The handler accepts more (any URL the WHATWG parser reads with a host).
pub const WEBHOOK_URL_PATTERN: &str =
    "^https?://[A-Za-z][A-Za-z0-9-]{0,30}(\\.[A-Za-z][A-Za-z0-9-]{0,30}){0,4}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,30}){0,8}$";
/// Longest webhook URL the pattern allows is well under the 2048 bytes accepted.
const WEBHOOK_URL_CHARACTERS_MAX: usize = 400;
/// A payment's customer: the characters a ledger account code can carry.
const CUSTOMER_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// A channel's card token as Tally accepts it, never mistaken for a card number.
const CARD_TOKEN_PATTERN: &str = "^[A-Za-z_.:][A-Za-z0-9_.:-]{0,127}$";

/// Fixed sets of values: (schema, property, values).
const ENUMERATIONS: &[(&str, &str, &[&str])] = &[
    (
        "CreateAccountRequest",
        "kind",
        &["asset", "liability", "equity", "income", "expense"],
    ),
    ("LegBody", "side", &["debit", "credit"]),
    ("AdjustingLegRequest", "side", &["debit", "credit"]),
    ("NewTaskRequest", "kind", &["alert", "callback"]),
    (
        "NewContactRequest",
        "outcome",
        &[
            "no_answer",
            "left_message",
            "reached",
            "promise_to_pay",
            "refused",
            "wrong_number",
        ],
    ),
    (
        "ProductBody",
        "rounding",
        &["half_even", "half_up", "half_down", "down", "up"],
    ),
    ("ProductBody", "remainder_on", &["first", "last"]),
    ("AddListEntryRequest", "kind", &["block", "allow", "watch"]),
    (
        "AddListEntryRequest",
        "field",
        &["customer", "device", "ip", "card", "address", "merchant"],
    ),
    (
        "RiskEventRequest",
        "kind",
        &[
            "login",
            "credit_activation",
            "transaction",
            "profile_change",
            "payout",
            "credit_authorization",
        ],
    ),
    (
        "RiskEventRequest",
        "profile_field",
        &["password", "phone", "address", "bank_card"],
    ),
];

/// Amounts beside their currency in one object: (schema, amount property, sign).
const AMOUNTS: &[(&str, &str, Sign)] = &[
    ("LegBody", "amount", Sign::Positive),
    ("AdjustingLegRequest", "amount", Sign::Positive),
    ("CreateHoldRequest", "amount", Sign::Positive),
    ("PostHoldRequest", "amount", Sign::Positive),
    ("PositiveAmount", "value", Sign::Positive),
    ("NotNegativeAmount", "value", Sign::NotNegative),
    ("SignedAmount", "value", Sign::Any),
    ("EventAmount", "value", Sign::NotNegative),
];

/// Properties that take `null` in Rust (an absent value) but whose `null` the handler does
/// not read as absent, or that are stated as strings so that a rule across fields can
/// require them: (schema, property).
const NOT_NULL: &[(&str, &str)] = &[
    ("PostHoldRequest", "amount"),
    ("PostHoldRequest", "currency"),
    ("SearchRequest", "phone"),
    ("SearchRequest", "national_id"),
    ("RevealRequest", "reason"),
    // The product's own reader takes these as absent or a value, never `null`.
    ("ProductBody", "rounding"),
    ("ProductBody", "remainder_on"),
    ("ProductBody", "early_payoff"),
    ("ProductBody", "fees_refundable"),
    ("TermBody", "tier_rates"),
];

/// Properties that are optional in Rust only so that their absence gets an answer of its
/// own, but that a request needs: (schema, property).
const REQUIRED: &[(&str, &str)] = &[("RevealRequest", "reason")];

/// Query and path parameters: (path, name, rule).
enum Parameter {
    Range {
        minimum: i64,
        maximum: PageMaximum,
    },
    Values(&'static [&'static str]),
    /// A currency code Tally knows.
    Currency,
    Text(Text),
}

/// A range's maximum: a number, or the serving process's page size.
#[derive(Clone, Copy)]
enum PageMaximum {
    Fixed(i64),
    PageSize,
}

fn parameters() -> Vec<(&'static str, &'static str, Parameter)> {
    let page = || Parameter::Range {
        minimum: 1,
        maximum: PageMaximum::PageSize,
    };
    vec![
        ("/v1/accounts/{id}/entries", "limit", page()),
        (
            "/v1/accounts/{id}/entries",
            "after",
            Parameter::Range {
                minimum: 0,
                maximum: PageMaximum::Fixed(i64::MAX),
            },
        ),
        ("/v1/customers/{id}/pii-reads", "limit", page()),
        ("/v1/pii-lookups", "limit", page()),
        ("/v1/credit/accounts/{id}/statements", "limit", page()),
        ("/v1/credit/tasks", "limit", page()),
        (
            "/v1/risk/cases",
            "limit",
            Parameter::Range {
                minimum: 1,
                maximum: PageMaximum::Fixed(crate::routes::risk::CASES_PER_PAGE_MAX),
            },
        ),
        (
            "/v1/risk/cases",
            "status",
            Parameter::Values(&["open", "claimed", "approved", "rejected"]),
        ),
        (
            "/v1/credit/accounts/{id}/{action}",
            "action",
            Parameter::Values(&["freeze", "unfreeze", "close"]),
        ),
        (
            "/v1/risk/cases/{id}/{action}",
            "action",
            Parameter::Values(&["claim", "approve", "reject", "note"]),
        ),
        (
            "/v1/risk/activation-requests/{id}/{decision}",
            "decision",
            Parameter::Values(&["approve", "reject"]),
        ),
        (
            "/v1/credit/accounts/{id}/offers",
            "amount",
            Parameter::Text(Text::new(
                None,
                None,
                Some(amount_pattern_any_currency(Sign::Positive)),
            )),
        ),
        (
            "/v1/credit/accounts/{id}/offers",
            "product",
            Parameter::Text(Text::new(Some(1), None, None)),
        ),
        (
            "/v1/payments/wallets/{customer}",
            "customer",
            Parameter::Text(Text::new(None, None, Some(CUSTOMER_PATTERN.to_string()))),
        ),
        (
            "/v1/payments/wallets/{customer}",
            "currency",
            Parameter::Currency,
        ),
        (
            "/v1/payments/cards",
            "customer",
            Parameter::Text(Text::new(Some(1), None, None)),
        ),
        (
            "/v1/disputes",
            "limit",
            Parameter::Range {
                minimum: 1,
                maximum: PageMaximum::Fixed(
                    tally_service::payments::disputes::DISPUTES_PER_PAGE_MAX,
                ),
            },
        ),
        (
            "/v1/disputes",
            "status",
            Parameter::Values(&["opened", "evidence_submitted", "accepted", "won", "lost"]),
        ),
        ("/v1/recon/runs", "limit", recon_page()),
        ("/v1/recon/exceptions", "limit", recon_page()),
        (
            "/v1/recon/exceptions",
            "class",
            Parameter::Values(&tally_service::recon::worklist::CLASSES),
        ),
        (
            "/v1/recon/exceptions",
            "state",
            Parameter::Values(&tally_service::recon::worklist::STATES),
        ),
        (
            "/v1/payouts",
            "limit",
            Parameter::Range {
                minimum: 1,
                maximum: PageMaximum::Fixed(tally_service::payments::payouts::LIST_LIMIT_MAX),
            },
        ),
        (
            "/v1/payouts",
            "state",
            Parameter::Values(&["created", "submitted", "paid", "failed", "returned"]),
        ),
        (
            "/v1/payouts/batches/{id}/file",
            "encoding",
            Parameter::Values(&["utf-8", "gbk"]),
        ),
        (
            "/v1/payouts/batches/{id}/return-file",
            "encoding",
            Parameter::Values(&["utf-8", "gbk"]),
        ),
        ("/v1/reports/flow-of-funds", "currency", Parameter::Currency),
        (
            "/v1/reports/flow-of-funds",
            "format",
            Parameter::Values(&["json", "csv"]),
        ),
    ]
}

/// A page of the reconciliation worklist: 1 to its own maximum.
fn recon_page() -> Parameter {
    Parameter::Range {
        minimum: 1,
        maximum: PageMaximum::Fixed(tally_service::recon::worklist::PAGE_LIMIT_MAX),
    }
}

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

/// A webhook endpoint names at least one event type, each one Tally sends.
fn webhook_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    let Some(object) = object_mut(schemas, "CreateWebhookEndpointRequest") else {
        return;
    };
    let types: Vec<Value> = tally_service::payments::webhooks::EVENT_TYPES
        .iter()
        .map(|kind| json!(kind))
        .collect();
    let events = utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(types)),
        )
        .min_items(Some(1))
        .build();
    object
        .properties
        .insert("events".to_string(), RefOr::T(Schema::Array(events)));
}

/// The rules of [`parameters`], and the `Idempotency-Key` header's, with `page_size_max` as
/// the largest page.
fn apply_parameters(openapi: &mut OpenApi, page_size_max: i64) {
    let rules = parameters();
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.name.eq_ignore_ascii_case("Idempotency-Key") {
                    let mut schema = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(crate::extract::IDEMPOTENCY_KEY_LENGTH_MAX))
                        .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
                        .build();
                    keyword(
                        &mut schema,
                        "not",
                        json!({ "pattern": RESERVED_KEY_PATTERN }),
                    );
                    parameter.schema = Some(RefOr::T(Schema::Object(schema)));
                    continue;
                }
                let Some((_, _, rule)) = rules
                    .iter()
                    .find(|(at, name, _)| at == path && *name == parameter.name)
                else {
                    continue;
                };
                let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() else {
                    continue;
                };
                match rule {
                    Parameter::Range { minimum, maximum } => {
                        let maximum = match maximum {
                            PageMaximum::Fixed(maximum) => *maximum,
                            PageMaximum::PageSize => page_size_max,
                        };
                        schema.minimum = Some((*minimum).into());
                        schema.maximum = Some(maximum.into());
                    }
                    Parameter::Values(values) => {
                        schema.enum_values =
                            Some(values.iter().map(|value| json!(value)).collect());
                    }
                    Parameter::Currency => {
                        schema.enum_values =
                            Some(Currency::known_codes().map(Value::from).collect());
                    }
                    Parameter::Text(text) => text.apply(schema),
                }
            }
        }
    }
}

/// A payment's funding is one of four objects told apart by `kind`; each refuses unknown
/// fields, as the request body around them does.
fn funding_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    let Some(RefOr::T(Schema::OneOf(one_of))) = schemas.get_mut("FundingRequest") else {
        return;
    };
    for variant in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = variant {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
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

/// An amount and its `currency` in one object: the amount's pattern for the currency's
/// fraction digits, one branch of `anyOf` per number of digits. `both_or_neither`: the two
/// are optional but go together.
fn amount_rules(object: &mut Object, property: &str, sign: Sign, both_or_neither: bool) {
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

/// A customer's phone and national id; a lookup gives exactly one of them.
fn customer_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
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

/// An event's kind decides what else it needs: an amount for a transaction or a payout, a
/// profile field for a profile change and for no other kind.
fn risk_event_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    let Some(event) = object_mut(schemas, "RiskEventRequest") else {
        return;
    };
    keyword(
        event,
        "anyOf",
        json!([
            {
                "properties": {
                    "kind": { "enum": ["transaction", "payout", "credit_authorization"] },
                    "amount": { "$ref": "#/components/schemas/EventAmount" },
                    "profile_field": { "type": "null" },
                },
                "required": ["amount"],
            },
            {
                "properties": {
                    "kind": { "enum": ["profile_change"] },
                    "profile_field": { "type": "string" },
                },
                "required": ["profile_field"],
            },
            {
                "properties": {
                    "kind": { "enum": ["login", "credit_activation"] },
                    "profile_field": { "type": "null" },
                },
            },
        ]),
    );
    if let Some(RefOr::T(Schema::Object(geo))) = schemas.get_mut("GeoPointBody") {
        for (property, bound) in [("lat", 90), ("lon", 180)] {
            if let Some(field) = property_mut(geo, property) {
                field.minimum = Some((-bound).into());
                field.maximum = Some(bound.into());
            }
        }
    }
}

/// A rate of a product: a decimal fraction in [0, 1) written as a string (`"0.006"`), as
/// [`tally_core::rate::exact`] reads it and [`tally_credit::Product::validate`] bounds it.
pub const RATE_PATTERN: &str = r"^0(\.[0-9]{1,18})?$";

/// A product's fee model and early payoff rule as the credit crate reads them (tagged by
/// `kind`), and its rates.
fn product_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    if let Some(product) = object_mut(schemas, "ProductBody") {
        let mut fee_model = ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(
                "How the price of a plan is computed: `{kind}` for flat_fee, annuity, \
                 equal_principal and interest_free; pay_in_n also takes `first_share` (a \
                 decimal string in (0, 1)) and `interval_days` (1 to 31).",
            ))
            .build();
        // One keyword through the extension map, whose order of keys is not fixed.
        keyword(
            &mut fee_model,
            "oneOf",
            json!([
                    {
                        "type": "object",
                        "properties": {
                            "kind": {
                                "type": "string",
                                "enum": ["flat_fee", "annuity", "equal_principal", "interest_free"],
                            },
                        },
                        "required": ["kind"],
                        "additionalProperties": false,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "kind": { "type": "string", "enum": ["pay_in_n"] },
                            "first_share": {
                                "type": "string",
                                "pattern": r"^0\.[0-9]{0,17}[1-9][0-9]{0,17}$",
                                "maxLength": 20,
                            },
                            "interval_days": { "type": "integer", "minimum": 1, "maximum": 31 },
                        },
                        "required": ["kind", "first_share", "interval_days"],
                        "additionalProperties": false,
                    },
            ]),
        );
        product
            .properties
            .insert("fee_model".to_string(), RefOr::T(Schema::Object(fee_model)));
        let early_payoff = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "What paying a plan off early costs: `{kind}`, principal_only (the default), \
                 one_more_period or all_remaining_charges.",
            ))
            .property(
                "kind",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([
                        "principal_only",
                        "one_more_period",
                        "all_remaining_charges",
                    ])),
            )
            .required("kind")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .build();
        product.properties.insert(
            "early_payoff".to_string(),
            RefOr::T(Schema::Object(early_payoff)),
        );
    }
    if let Some(term) = object_mut(schemas, "TermBody") {
        if let Some(rate) = property_mut(term, "rate") {
            rate.pattern = Some(RATE_PATTERN.to_string());
        }
        if let Some(periods) = property_mut(term, "periods") {
            periods.minimum = Some(1.into());
            periods.maximum = Some(24.into());
        }
        if let Some(tier_rates) = property_mut(term, "tier_rates") {
            tier_rates.property_names = Some(Box::new(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(not_blank()))
                    .build(),
            )));
            tier_rates.additional_properties = Some(Box::new(AdditionalProperties::RefOr(
                RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(RATE_PATTERN))
                        .build(),
                )),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    //! Whatever a pattern of the document allows, the check it mirrors accepts: strings are
    //! drawn from each pattern (proptest reads the same syntax) and given to that check.
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
