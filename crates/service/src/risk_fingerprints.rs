//! Personal values of risk events and list entries replaced by keyed fingerprints where they
//! enter Tally (`POST /v1/risk/decisions`, `POST /v1/risk/lists`), before the engine, its
//! store or an evidence package sees them.
//!
//! - `card`: always fingerprinted ([`Privacy::card_fingerprint`]): a card number (12 to 19
//!   digits, Luhn valid, spaces and dashes dropped) by its digits, so it matches the bank card
//!   bound to a profile; any other card identifier (a lender's token) as it is. Fingerprinted
//!   rather than refused: a lender sends what its checkout has, often the number itself, and
//!   a refusal would push it to hash the number unkeyed, which a guess confirms.
//! - `address`: always fingerprinted after normalisation (words joined by one space, lower
//!   case), so the same address written twice is one address to the velocity features.
//! - `customer`: the lender's customer reference, shown to analysts and acted on; one that
//!   reads as a phone number is refused (`risk_customer_is_phone_number`) rather than stored,
//!   since a fingerprint in its place would leave the lender unable to act on a case.
//! - A value already in fingerprint form (64 lower-case hex digits, as copied from an evidence
//!   package or a list) is kept, so analysts can block what they see.
//!
//! Without personal-data keys an event carrying a card or an address is refused
//! (`privacy_keys_not_configured`): storing it as sent is what this module exists to prevent.

use tally_privacy::{identity, Privacy};
use tally_risk::{EntityField, Event};

/// Why an event or list entry was refused before it reached the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    #[error("risk events with a card or an address need personal-data keys ([privacy] blind_index_key), and none are configured: they are never stored in clear")]
    PrivacyKeysNotConfigured,
    #[error("customer must be the lender's customer reference, not a phone number: personal data is never stored in clear in risk events")]
    CustomerIsPhoneNumber,
    #[error("address must not be blank")]
    BlankAddress,
}

impl FingerprintError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            FingerprintError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
            FingerprintError::CustomerIsPhoneNumber => "risk_customer_is_phone_number",
            FingerprintError::BlankAddress => "risk_invalid_event",
        }
    }
}

fn keys(privacy: Option<&Privacy>) -> Result<&Privacy, FingerprintError> {
    privacy.ok_or(FingerprintError::PrivacyKeysNotConfigured)
}

/// Whether a customer reference reads as a phone number: digits with the separators phones
/// are written with, and normalisable as one. A Tally customer id (a UUID) never is.
fn is_phone_number(customer: &str) -> bool {
    customer
        .chars()
        .all(|character| character.is_ascii_digit() || " +-.()".contains(character))
        && identity::normalise_phone(customer).is_ok()
}

/// `event` with its card and address replaced by their keyed fingerprints.
pub fn fingerprint_event(
    privacy: Option<&Privacy>,
    event: &mut Event,
) -> Result<(), FingerprintError> {
    if is_phone_number(&event.customer) {
        return Err(FingerprintError::CustomerIsPhoneNumber);
    }
    if let Some(card) = &event.card {
        event.card = Some(keys(privacy)?.card_fingerprint(card));
    }
    if let Some(address) = &event.address {
        event.address = Some(
            keys(privacy)?
                .address_fingerprint(address)
                .ok_or(FingerprintError::BlankAddress)?,
        );
    }
    Ok(())
}

/// A list entry's value as the engine matches it: the fingerprint for a card or an address
/// (what events carry), the value itself for the other fields.
pub fn fingerprint_list_value(
    privacy: Option<&Privacy>,
    field: EntityField,
    value: &str,
) -> Result<String, FingerprintError> {
    match field {
        EntityField::Card => Ok(keys(privacy)?.card_fingerprint(value)),
        EntityField::Address => keys(privacy)?
            .address_fingerprint(value)
            .ok_or(FingerprintError::BlankAddress),
        EntityField::Customer if is_phone_number(value) => {
            Err(FingerprintError::CustomerIsPhoneNumber)
        }
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::merchants::testing::test_privacy as privacy;
    use tally_risk::EventKind;

    fn event(customer: &str) -> Event {
        let mut event = Event::new(
            "e1",
            EventKind::Login,
            "2026-06-01T00:00:00Z".parse().unwrap(),
            customer,
        );
        event.card = Some("4111 1111 1111 1111".into());
        event.address = Some(" 88 Jianguo Road ".into());
        event
    }

    #[test]
    fn cards_and_addresses_leave_as_the_fingerprints_lists_match() {
        let privacy = privacy();
        let mut sent = event("lender-customer-1");
        fingerprint_event(Some(&privacy), &mut sent).unwrap();
        let card = sent.card.clone().unwrap();
        let address = sent.address.clone().unwrap();
        assert!(!card.contains("4111") && !address.contains("jianguo"));
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Card, "4111-1111-1111-1111"),
            Ok(card.clone())
        );
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Address, "88 JIANGUO ROAD"),
            Ok(address)
        );
        // A fingerprint copied from an evidence package is kept as it is.
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Card, &card),
            Ok(card)
        );
        assert_eq!(
            fingerprint_list_value(Some(&privacy), EntityField::Device, "d-1"),
            Ok("d-1".into())
        );
    }

    #[test]
    fn refusals_have_their_codes() {
        let mut sent = event("lender-customer-1");
        let error = fingerprint_event(None, &mut sent).unwrap_err();
        assert_eq!(error.code(), "privacy_keys_not_configured");
        assert_eq!(sent.card.as_deref(), Some("4111 1111 1111 1111"));
        let mut phone = event("+86 138 0013 8000");
        let error = fingerprint_event(Some(&privacy()), &mut phone).unwrap_err();
        assert_eq!(error.code(), "risk_customer_is_phone_number");
        let mut blank = event("c");
        blank.address = Some("  ".into());
        assert_eq!(
            fingerprint_event(Some(&privacy()), &mut blank)
                .unwrap_err()
                .code(),
            "risk_invalid_event"
        );
        // Without a card or an address, no keys are needed.
        let mut plain = event("019de0e2-0000-7000-8000-000000000000");
        plain.card = None;
        plain.address = None;
        assert!(fingerprint_event(None, &mut plain).is_ok());
    }
}
