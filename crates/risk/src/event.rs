//! Risk events: the typed things the engine decides on, and the entities fraud hides behind.

use crate::error::RiskError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// What happened. Unknown kinds are refused when an event is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Login,
    CreditActivation,
    Transaction,
    ProfileChange,
    Payout,
    /// A purchase on a credit line, decided by Tally's credit service before it is
    /// authorised (the payments' checkout decides whole orders as `transaction`s).
    CreditAuthorization,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Login,
        EventKind::CreditActivation,
        EventKind::Transaction,
        EventKind::ProfileChange,
        EventKind::Payout,
        EventKind::CreditAuthorization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::CreditActivation => "credit_activation",
            EventKind::Transaction => "transaction",
            EventKind::ProfileChange => "profile_change",
            EventKind::Payout => "payout",
            EventKind::CreditAuthorization => "credit_authorization",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// A bit for kind filters: one bit per kind.
    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Which part of a profile a `profile_change` event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileField {
    Password,
    Phone,
    Address,
    BankCard,
    Name,
}

impl ProfileField {
    pub const ALL: [ProfileField; 5] = [
        ProfileField::Password,
        ProfileField::Phone,
        ProfileField::Address,
        ProfileField::BankCard,
        ProfileField::Name,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileField::Password => "password",
            ProfileField::Phone => "phone",
            ProfileField::Address => "address",
            ProfileField::BankCard => "bank_card",
            ProfileField::Name => "name",
        }
    }

    pub fn parse(text: &str) -> Option<ProfileField> {
        ProfileField::ALL
            .into_iter()
            .find(|field| field.as_str() == text)
    }
}

/// An entity field of an event that features are keyed on and lists match against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityField {
    Customer,
    Device,
    Ip,
    Card,
    Address,
    Merchant,
}

impl EntityField {
    pub const ALL: [EntityField; 6] = [
        EntityField::Customer,
        EntityField::Device,
        EntityField::Ip,
        EntityField::Card,
        EntityField::Address,
        EntityField::Merchant,
    ];
    pub const COUNT: usize = 6;

    pub fn as_str(self) -> &'static str {
        match self {
            EntityField::Customer => "customer",
            EntityField::Device => "device",
            EntityField::Ip => "ip",
            EntityField::Card => "card",
            EntityField::Address => "address",
            EntityField::Merchant => "merchant",
        }
    }

    pub fn parse(text: &str) -> Option<EntityField> {
        EntityField::ALL
            .into_iter()
            .find(|field| field.as_str() == text)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A point on the earth in degrees (WGS 84). Floats are fine here: this is not money.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    const EARTH_RADIUS_KM: f64 = 6371.0088;

    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let delta_lat = lat2 - lat1;
        let delta_lon = (other.lon - self.lon).to_radians();
        let a = (delta_lat / 2.0).sin().powi(2)
            + lat1.cos() * lat2.cos() * (delta_lon / 2.0).sin().powi(2);
        2.0 * Self::EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

/// One event to decide on. Build it with [`Event::from_json`] (which validates) or the
/// constructor and setters; the engine trusts an `Event` it is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EventWire", into = "EventWire")]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    /// When the event happened, from the caller: the engine never reads a clock.
    pub at: Timestamp,
    pub customer: String,
    pub device: Option<String>,
    pub ip: Option<String>,
    /// Card fingerprint (never the card number).
    pub card: Option<String>,
    /// Hash of the shipping or profile address (never the address).
    pub address: Option<String>,
    pub merchant: Option<String>,
    /// Integer minor units with a currency; required for transactions and payouts.
    pub amount: Option<Amount>,
    pub geo: Option<GeoPoint>,
    /// Required for `profile_change`, refused for every other kind.
    pub profile_field: Option<ProfileField>,
}

impl Event {
    /// A bare event with only the customer; set the other fields as needed.
    pub fn new(
        id: impl Into<String>,
        kind: EventKind,
        at: Timestamp,
        customer: impl Into<String>,
    ) -> Self {
        Event {
            id: id.into(),
            kind,
            at,
            customer: customer.into(),
            device: None,
            ip: None,
            card: None,
            address: None,
            merchant: None,
            amount: None,
            geo: None,
            profile_field: None,
        }
    }

    /// The value of an entity field, if the event carries it.
    pub fn entity(&self, field: EntityField) -> Option<&str> {
        match field {
            EntityField::Customer => Some(self.customer.as_str()),
            EntityField::Device => self.device.as_deref(),
            EntityField::Ip => self.ip.as_deref(),
            EntityField::Card => self.card.as_deref(),
            EntityField::Address => self.address.as_deref(),
            EntityField::Merchant => self.merchant.as_deref(),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn at_millisecond(&self) -> i64 {
        self.at.as_millisecond()
    }

    /// Reads and validates one event from JSON.
    pub fn from_json(text: &str) -> Result<Event, RiskError> {
        serde_json::from_str(text).map_err(|error| RiskError::event(error.to_string()))
    }

    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and a timestamp cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the rules that the type system does not: required fields per kind, sizes.
    pub fn validate(&self) -> Result<(), RiskError> {
        const ENTITY_LENGTH_MAX: usize = 256;
        if self.id.is_empty() || self.id.len() > ENTITY_LENGTH_MAX {
            return Err(RiskError::event("id must be 1 to 256 characters"));
        }
        for field in EntityField::ALL {
            if let Some(value) = self.entity(field) {
                if value.is_empty() || value.len() > ENTITY_LENGTH_MAX {
                    return Err(RiskError::event(format!(
                        "{} must be 1 to {ENTITY_LENGTH_MAX} characters",
                        field.as_str()
                    )));
                }
            }
        }
        match (self.kind, &self.amount) {
            (EventKind::Transaction | EventKind::Payout | EventKind::CreditAuthorization, None) => {
                return Err(RiskError::event(format!(
                    "{} requires an amount",
                    self.kind.as_str()
                )))
            }
            (_, Some(amount)) if amount.is_negative() => {
                return Err(RiskError::event("amount must not be negative"))
            }
            _ => {}
        }
        match (self.kind, self.profile_field) {
            (EventKind::ProfileChange, None) => {
                return Err(RiskError::event("profile_change requires profile_field"))
            }
            (kind, Some(_)) if kind != EventKind::ProfileChange => {
                return Err(RiskError::event(
                    "profile_field is only allowed on profile_change",
                ))
            }
            _ => {}
        }
        if let Some(geo) = &self.geo {
            let valid = geo.lat.is_finite()
                && geo.lon.is_finite()
                && (-90.0..=90.0).contains(&geo.lat)
                && (-180.0..=180.0).contains(&geo.lon);
            if !valid {
                return Err(RiskError::event(
                    "geo must have lat in [-90, 90] and lon in [-180, 180]",
                ));
            }
        }
        Ok(())
    }
}

/// The JSON form of an event. Unknown fields are refused.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventWire {
    id: String,
    kind: String,
    at: Timestamp,
    customer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    card: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    merchant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    geo: Option<GeoPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile_field: Option<String>,
}

impl TryFrom<EventWire> for Event {
    type Error = RiskError;

    fn try_from(wire: EventWire) -> Result<Self, Self::Error> {
        let kind = EventKind::parse(&wire.kind).ok_or_else(|| {
            RiskError::event(format!(
                "unknown event kind {:?}: expected login, credit_activation, transaction, profile_change or payout",
                wire.kind
            ))
        })?;
        let profile_field = match wire.profile_field {
            None => None,
            Some(text) => Some(ProfileField::parse(&text).ok_or_else(|| {
                RiskError::event(format!(
                    "unknown profile_field {text:?}: expected password, phone, address or bank_card"
                ))
            })?),
        };
        let event = Event {
            id: wire.id,
            kind,
            at: wire.at,
            customer: wire.customer,
            device: wire.device,
            ip: wire.ip,
            card: wire.card,
            address: wire.address,
            merchant: wire.merchant,
            amount: wire.amount,
            geo: wire.geo,
            profile_field,
        };
        event.validate()?;
        Ok(event)
    }
}

impl From<Event> for EventWire {
    fn from(event: Event) -> Self {
        EventWire {
            id: event.id,
            kind: event.kind.as_str().to_string(),
            at: event.at,
            customer: event.customer,
            device: event.device,
            ip: event.ip,
            card: event.card,
            address: event.address,
            merchant: event.merchant,
            amount: event.amount,
            geo: event.geo,
            profile_field: event.profile_field.map(|field| field.as_str().to_string()),
        }
    }
}
