//! Customer profile changes behind the risk gate: a new phone, a new name (as on the
//! identity document), a delivery address, a bound bank card. Each is a `profile_change` event (the engine's takeover rules watch phone
//! changes from new devices), decided before anything is written; then the value is sealed
//! like the customer's other fields (associated data `customer.<field>:<id>`), the phone's
//! blind index is replaced (still unique: one phone, one customer), and the change is on the
//! `customer_profile_changes` audit trail in the same transaction (who, when, which field,
//! which risk event; never the value).
//!
//! The value is sealed before the decision, so a held change keeps only the sealed value and
//! the phone's index; the request hash stored with it is keyed (as customer creation's is),
//! since a plain hash of a phone number could be reversed by guessing.

use super::{event_id, GateError, Guarded, Passage, RiskGate, Subject};
use crate::caller::Caller;
use crate::consortium::member_client::EventIdentifiers;
use crate::customers::sealed_field;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tally_privacy::fingerprint::luhn;
use tally_privacy::identity::{self, IdentityError};
use tally_privacy::Privacy;
use tally_risk::{Event, EventKind, ProfileField};
use tally_store::held_operations::HeldOperationRow;
use tally_store::profile_changes::{ProfileChange, ProfileChangeError, ProfileValue};
use tally_store::StoreError;

/// Longest delivery address, in characters.
pub const ADDRESS_CHARACTERS_MAX: usize = 300;

/// Blind index domains: the phone's (shared with customer creation, so lookups find the new
/// number) and the keyed request hash. A bank card reaches risk events as
/// [`Privacy::card_fingerprint`].
const PHONE_INDEX: &str = "customer.phone";
const REQUEST_HASH: &str = "customer.profile_change_request";

/// Why a profile change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A phone number or a name that is not valid.
    #[error(transparent)]
    Phone(#[from] IdentityError),
    #[error("address must be 1 to {ADDRESS_CHARACTERS_MAX} characters without control characters")]
    InvalidAddress,
    #[error("card_number must be 12 to 19 digits with a valid check digit")]
    InvalidCardNumber,
    #[error("another customer has this phone number")]
    PhoneTaken,
    #[error("changing a profile needs personal-data keys, and none are configured")]
    PrivacyKeysNotConfigured,
}

impl ProfileError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ProfileError::Phone(error) => error.code(),
            ProfileError::InvalidAddress => "invalid_address",
            ProfileError::InvalidCardNumber => "invalid_card_number",
            ProfileError::PhoneTaken => "customer_phone_taken",
            ProfileError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
        }
    }
}

/// The new value of one profile field, in clear as the customer gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    Phone(String),
    Name(String),
    Address(String),
    BankCard(String),
}

impl NewValue {
    fn field(&self) -> ProfileField {
        match self {
            NewValue::Phone(_) => ProfileField::Phone,
            NewValue::Name(_) => ProfileField::Name,
            NewValue::Address(_) => ProfileField::Address,
            NewValue::BankCard(_) => ProfileField::BankCard,
        }
    }
}

/// A profile change of customer `customer` under idempotency key `key`.
#[derive(Debug, Clone)]
pub struct ProfileChangeRequest<'a> {
    pub key: &'a str,
    pub customer: &'a str,
    pub value: NewValue,
    pub subject: Subject,
    pub caller: &'a Caller,
}

/// A profile change's result: applied (the answer), or held.
#[derive(Debug, Clone)]
pub enum ProfileOutcome {
    Changed(Value),
    Held(Box<HeldOperationRow>),
}

/// What a held change writes when it is let through.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldChange {
    customer: String,
    field: String,
    sealed: String,
    /// The phone's blind index.
    index: Option<String>,
}

/// The value normalised: a phone in E.164, an address trimmed, a card number's digits.
fn normalised(value: &NewValue) -> Result<String, ProfileError> {
    match value {
        NewValue::Phone(phone) => Ok(identity::normalise_phone(phone)?),
        NewValue::Name(name) => Ok(identity::normalise_name(name)?),
        NewValue::Address(address) => {
            let trimmed = address.trim();
            let length = trimmed.chars().count();
            if length == 0
                || length > ADDRESS_CHARACTERS_MAX
                || trimmed.chars().any(char::is_control)
            {
                return Err(ProfileError::InvalidAddress);
            }
            Ok(trimmed.to_string())
        }
        NewValue::BankCard(number) => {
            let digits: String = number.chars().filter(|c| *c != ' ' && *c != '-').collect();
            if !(12..=19).contains(&digits.len())
                || !digits.bytes().all(|byte| byte.is_ascii_digit())
                || !luhn(&digits)
            {
                return Err(ProfileError::InvalidCardNumber);
            }
            Ok(digits)
        }
    }
}

impl RiskGate {
    fn privacy_keys(&self) -> Result<&Privacy, GateError> {
        self.privacy
            .as_deref()
            .ok_or(GateError::Profile(ProfileError::PrivacyKeysNotConfigured))
    }

    /// Changes one profile field of a customer once the risk engine let it through.
    pub async fn change_profile(
        &self,
        request: ProfileChangeRequest<'_>,
    ) -> Result<ProfileOutcome, GateError> {
        let privacy = self.privacy_keys()?;
        let value = normalised(&request.value)?;
        self.check_customer(request.customer).await?;
        let field = request.value.field();
        let request_hash = privacy.blind_index.compute(
            REQUEST_HASH,
            &format!("{}\u{1f}{}\u{1f}{value}", request.customer, field.as_str()),
        );
        let id = event_id("profile-change", &[request.customer, request.key]);
        // An applied change is on the audit trail under its event id: a retry answers it.
        if let Some(done) = self.database.customer_profile_change(&id).await? {
            return Ok(ProfileOutcome::Changed(changed_answer(&done)));
        }
        let mut event = Event::new(
            id,
            EventKind::ProfileChange,
            self.clock.now(),
            request.customer,
        );
        self.describe(&mut event, &request.subject)?;
        event.profile_field = Some(field);
        // The consortium looks up the new value too: a thief's phone, address or card.
        let mut subject = request.subject.clone();
        let mut new_phone = None;
        let mut new_card = None;
        match &request.value {
            NewValue::Address(_) => {
                event.address = Some(self.address_fingerprint(&value)?);
                subject.address = Some(value.clone());
            }
            NewValue::BankCard(_) => {
                event.card = Some(privacy.card_fingerprint(&value));
                new_card = Some(value.as_str());
            }
            NewValue::Phone(_) => new_phone = Some(value.as_str()),
            NewValue::Name(_) => {}
        }
        let mut identifiers = self.contact(request.customer, &subject, new_phone).await?;
        identifiers.card = EventIdentifiers::from_raw(new_card, None, None).card;
        let sealed = privacy
            .cipher
            .encrypt(&sealed_field(field.as_str(), request.customer), &value)
            .map_err(|error| {
                GateError::Invalid(format!("sealing the {}: {error}", field.as_str()))
            })?;
        let change = HeldChange {
            customer: request.customer.to_string(),
            field: field.as_str().to_string(),
            sealed,
            index: matches!(request.value, NewValue::Phone(_))
                .then(|| privacy.blind_index.compute(PHONE_INDEX, &value)),
        };
        let passage = self
            .pass(Guarded {
                event,
                kind: "profile_change",
                key: request.key,
                request_hash: &request_hash,
                operation: json!(change),
                caller: request.caller,
                identifiers,
            })
            .await?;
        match passage {
            Passage::Proceed(verdict) => {
                let applied = self
                    .apply_change(
                        &change,
                        &verdict.event_id,
                        &verdict.action,
                        request.caller,
                        self.clock.now(),
                    )
                    .await?;
                Ok(ProfileOutcome::Changed(applied))
            }
            Passage::Held(held) => Ok(ProfileOutcome::Held(held)),
            Passage::Completed(answer) => Ok(ProfileOutcome::Changed(answer)),
        }
    }

    async fn apply_change(
        &self,
        change: &HeldChange,
        event_id: &str,
        action: &str,
        caller: &Caller,
        now: Timestamp,
    ) -> Result<Value, GateError> {
        let value = match (change.field.as_str(), &change.index) {
            ("phone", Some(index)) => ProfileValue::Phone {
                sealed: change.sealed.clone(),
                index: index.clone(),
            },
            ("name", _) => ProfileValue::Name {
                sealed: change.sealed.clone(),
            },
            ("address", _) => ProfileValue::Address {
                sealed: change.sealed.clone(),
            },
            ("bank_card", _) => ProfileValue::BankCard {
                sealed: change.sealed.clone(),
            },
            (other, _) => {
                return Err(GateError::Invalid(format!(
                    "a held profile change of unknown field {other}"
                )))
            }
        };
        let row = ProfileChange {
            id: event_id.to_string(),
            at: now,
            api_key_id: caller.key_id.clone(),
            principal: caller.name.clone(),
            customer_id: change.customer.clone(),
            field: change.field.clone(),
            risk_event_id: event_id.to_string(),
            risk_action: action.to_string(),
        };
        match self.database.change_customer_profile(&value, &row).await {
            Ok(()) => Ok(changed_answer(&row)),
            Err(ProfileChangeError::PhoneTaken) => Err(ProfileError::PhoneTaken.into()),
            Err(ProfileChangeError::CustomerNotFound(customer)) => {
                Err(GateError::CustomerUnknown(customer))
            }
            Err(ProfileChangeError::Store(error)) => Err(error.into()),
            Err(other) => Err(StoreError::Corrupt(other.to_string()).into()),
        }
    }

    pub(super) async fn complete_profile_change(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Result<Value, GateError> {
        let change: HeldChange = serde_json::from_str(&held.operation).map_err(|error| {
            GateError::Store(StoreError::Corrupt(format!(
                "held operation {}: {error}",
                held.id
            )))
        })?;
        let caller = Caller {
            key_id: held.api_key_id.clone(),
            name: held.principal.clone(),
        };
        self.apply_change(&change, &held.id, &held.action, &caller, now)
            .await
    }
}

/// The answer to an applied change: which customer and field, and the risk event.
fn changed_answer(change: &ProfileChange) -> Value {
    json!({
        "changed_at": change.at,
        "customer_id": change.customer_id,
        "field": change.field,
        "risk_action": change.risk_action,
        "risk_event_id": change.risk_event_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_luhn_check_takes_valid_numbers_and_refuses_a_changed_digit() {
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));
        assert!(normalised(&NewValue::BankCard("4111 1111 1111 1111".into())).is_ok());
        assert!(matches!(
            normalised(&NewValue::BankCard("4111 1111 1111 1112".into())),
            Err(ProfileError::InvalidCardNumber)
        ));
        assert!(matches!(
            normalised(&NewValue::Address(" \n ".into())),
            Err(ProfileError::InvalidAddress)
        ));
    }
}
