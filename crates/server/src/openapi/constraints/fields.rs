//! Rules on single fields of request bodies: texts' lengths and patterns, fixed sets of
//! values, and properties that must not be `null` or must be present.

use super::*;

/// A text rule: lengths in characters and a pattern.
#[derive(Debug, Clone)]
pub(super) struct Text {
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<String>,
}

impl Text {
    pub(super) fn new(
        min_length: Option<usize>,
        max_length: Option<usize>,
        pattern: Option<String>,
    ) -> Self {
        Self {
            min_length,
            max_length,
            pattern,
        }
    }

    pub(super) fn apply(&self, object: &mut Object) {
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
pub(super) fn text_fields() -> Vec<(&'static str, &'static str, Text)> {
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
pub(super) const MERCHANT_TEXT_CHARACTERS_MAX: usize =
    tally_service::payments::merchants::TEXT_LENGTH_MAX;

/// A payment's merchant id and order reference: 128 bytes, stated as characters that
/// always fit.
pub(super) const PAYMENT_REFERENCE_CHARACTERS_MAX: usize = 32;
/// A webhook endpoint's URL as it is always accepted: `http` or `https`, a host whose
/// labels start with a letter (never read as an IPv4 address), an optional port and a
/// plain path. The handler accepts more (any URL the WHATWG parser reads with a host).
pub const WEBHOOK_URL_PATTERN: &str =
    "^https?://[A-Za-z][A-Za-z0-9-]{0,30}(\\.[A-Za-z][A-Za-z0-9-]{0,30}){0,4}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,30}){0,8}$";
/// Longest webhook URL the pattern allows is well under the 2048 bytes accepted.
pub(super) const WEBHOOK_URL_CHARACTERS_MAX: usize = 400;
/// A payment's customer: the characters a ledger account code can carry.
pub(super) const CUSTOMER_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// A channel's card token as Tally accepts it, never mistaken for a card number.
pub(super) const CARD_TOKEN_PATTERN: &str = "^[A-Za-z_.:][A-Za-z0-9_.:-]{0,127}$";

/// Fixed sets of values: (schema, property, values).
pub(super) const ENUMERATIONS: &[(&str, &str, &[&str])] = &[
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

/// Properties that take `null` in Rust (an absent value) but whose `null` the handler does
/// not read as absent, or that are stated as strings so that a rule across fields can
/// require them: (schema, property).
pub(super) const NOT_NULL: &[(&str, &str)] = &[
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
pub(super) const REQUIRED: &[(&str, &str)] = &[("RevealRequest", "reason")];
