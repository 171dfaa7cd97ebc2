//! Risk events: what an event's kind requires beside it.

use super::*;

/// An event's kind decides what else it needs: an amount for a transaction or a payout, a
/// profile field for a profile change and for no other kind.
pub(super) fn risk_event_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
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
