//! The identifiers of an event another member can match (card number, delivery address,
//! receiving phone), normalised as the consortium normalises them and kept sealed for a
//! later publication.

use super::*;

impl MemberClient {
    /// The rows that keep `identifiers` of `event` sealed for a later publication, deleted
    /// after the member's `record_days`. None without privacy keys.
    pub fn keep(
        &self,
        event: &tally_risk::Event,
        identifiers: &EventIdentifiers,
    ) -> Result<Vec<ConsortiumIdentifierRow>, tally_privacy::PrivacyError> {
        let Some(privacy) = &self.privacy else {
            return Ok(Vec::new());
        };
        let days = i64::try_from(self.settings.record_days).unwrap_or(365);
        let expires_at = self.now() + days * 86_400;
        identifiers
            .all()
            .map(|identifier| {
                let kind = identifier.kind().name();
                Ok(ConsortiumIdentifierRow {
                    event_id: event.id.clone(),
                    customer: event.customer.clone(),
                    at: event.at.as_microsecond(),
                    kind: kind.to_string(),
                    fingerprint: identifier_fingerprint(privacy, identifier),
                    sealed: privacy
                        .cipher
                        .encrypt(&sealed_field(kind), identifier.expose())?,
                    expires_at,
                })
            })
            .collect()
    }
}

/// The raw identifiers of an event that another member can match, in the consortium's
/// normalised form: a card number (not a lender's token), a delivery address, a receiving
/// phone. Personal data: never logged, stored only sealed.
#[derive(Clone, Default)]
pub struct EventIdentifiers {
    pub card: Option<NormalisedIdentifier>,
    pub address: Option<NormalisedIdentifier>,
    pub phone: Option<NormalisedIdentifier>,
}

impl std::fmt::Debug for EventIdentifiers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self
            .all()
            .map(|identifier| identifier.kind().name())
            .collect();
        write!(formatter, "EventIdentifiers({kinds:?})")
    }
}

impl EventIdentifiers {
    /// The identifiers of an event's raw card, address and phone, each kept only when it is
    /// one of its kind: a card number with a valid check digit, an address of 4 characters
    /// or more, a phone that normalises (Chinese mobiles without `+86` too). What is not one
    /// of its kind is left out; where the event enters, [`EventIdentifiers::parse`] refuses
    /// a malformed card number or phone instead.
    pub fn from_raw(card: Option<&str>, address: Option<&str>, phone: Option<&str>) -> Self {
        let card = card
            .and_then(tally_privacy::fingerprint::card_number)
            .and_then(|digits| normalise(IdentifierKind::Card, &digits, None).ok());
        EventIdentifiers {
            card,
            address: address.and_then(address_identifier),
            phone: phone
                .and_then(|phone| tally_privacy::identity::normalise_phone(phone).ok())
                .and_then(|phone| normalise(IdentifierKind::Phone, &phone, None).ok()),
        }
    }

    /// The identifiers of an event as it enters Tally, refusing a card that is written as a
    /// card number (digits, spaces and dashes only) but is none (12 to 19 digits with a
    /// valid check digit), and a phone that is not a phone number: either would otherwise
    /// be left out of the consortium lookup without anyone knowing. A card with any other
    /// character is a lender's token, which no other member could match: not looked up.
    /// An address too short for the consortium (under 4 characters once its words are
    /// joined) is still the event's address for the engine, which fingerprints it; it is
    /// only left out of the lookup, since so short a text names no delivery another member
    /// could have seen.
    pub fn parse(
        card: Option<&str>,
        address: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Self, IdentifierError> {
        let card = match card {
            Some(raw) if written_as_card_number(raw) => {
                let digits = tally_privacy::fingerprint::card_number(raw)
                    .ok_or(IdentifierError::CardNumber)?;
                Some(
                    normalise(IdentifierKind::Card, &digits, None)
                        .map_err(|_| IdentifierError::CardNumber)?,
                )
            }
            _ => None,
        };
        let phone = match phone {
            Some(raw) => {
                let phone = tally_privacy::identity::normalise_phone(raw)
                    .map_err(|error| IdentifierError::Phone(error.to_string()))?;
                Some(
                    normalise(IdentifierKind::Phone, &phone, None)
                        .map_err(|error| IdentifierError::Phone(error.to_string()))?,
                )
            }
            None => None,
        };
        Ok(EventIdentifiers {
            card,
            address: address.and_then(address_identifier),
            phone,
        })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.all().next().is_none()
    }

    /// Each identifier present.
    pub fn all(&self) -> impl Iterator<Item = &NormalisedIdentifier> {
        [&self.card, &self.address, &self.phone]
            .into_iter()
            .flatten()
    }
}

/// Why an event's card number or receiving phone was refused where it entered Tally;
/// [`IdentifierError::code`] is its stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    #[error(
        "card is written as a card number (digits, spaces, dashes) but is not one: a card \
         number has 12 to 19 digits and a valid check digit; a lender's card token has other \
         characters too"
    )]
    CardNumber,
    #[error("phone is not a phone number: {0}")]
    Phone(String),
}

impl IdentifierError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            IdentifierError::CardNumber => "invalid_card_number",
            IdentifierError::Phone(_) => "invalid_phone",
        }
    }
}

/// Whether a card value is written as a card number: digits, with spaces and dashes only.
fn written_as_card_number(raw: &str) -> bool {
    let mut digits = 0;
    for character in raw.trim().chars() {
        match character {
            '0'..='9' => digits += 1,
            ' ' | '-' => {}
            _ => return false,
        }
    }
    digits > 0
}

/// An address in the consortium's normalised form; `None` for one too short to be matched.
fn address_identifier(address: &str) -> Option<NormalisedIdentifier> {
    normalise(IdentifierKind::Address, address, None).ok()
}

/// The field name a kept identifier of `kind` is sealed under.
pub(super) fn sealed_field(kind: &str) -> String {
    format!("consortium_identifier.{kind}")
}

/// The keyed fingerprint of a normalised identifier (one value, one fingerprint), under the
/// risk fingerprint key, in a domain of its own.
pub fn identifier_fingerprint(privacy: &Privacy, identifier: &NormalisedIdentifier) -> String {
    privacy.fingerprints.compute(
        &format!("consortium.{}", identifier.kind().name()),
        identifier.expose(),
    )
}
