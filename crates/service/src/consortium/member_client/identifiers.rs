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
    /// or more, a phone that normalises (Chinese mobiles without `+86` too).
    pub fn from_raw(card: Option<&str>, address: Option<&str>, phone: Option<&str>) -> Self {
        let card = card
            .and_then(tally_privacy::fingerprint::card_number)
            .and_then(|digits| normalise(IdentifierKind::Card, &digits, None).ok());
        let address =
            address.and_then(|address| normalise(IdentifierKind::Address, address, None).ok());
        let phone = phone
            .and_then(|phone| tally_privacy::identity::normalise_phone(phone).ok())
            .and_then(|phone| normalise(IdentifierKind::Phone, &phone, None).ok());
        EventIdentifiers {
            card,
            address,
            phone,
        }
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
