//! Payments: the kinds of funding, and webhook endpoints' event types.

use super::*;

/// A webhook endpoint names at least one event type, each one Tally sends.
pub(super) fn webhook_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
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

/// A payment's funding is one of four objects told apart by `kind`; each refuses unknown
/// fields, as the request body around them does.
pub(super) fn funding_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    let Some(RefOr::T(Schema::OneOf(one_of))) = schemas.get_mut("FundingRequest") else {
        return;
    };
    for variant in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = variant {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}
