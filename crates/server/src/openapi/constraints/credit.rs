//! Credit products: fee models, early payoff rules and rates.

use super::*;

/// A rate of a product: a decimal fraction in [0, 1) written as a string (`"0.006"`), as
/// [`tally_core::rate::exact`] reads it and [`tally_credit::Product::validate`] bounds it.
pub const RATE_PATTERN: &str = r"^0(\.[0-9]{1,18})?$";

/// A product's fee model and early payoff rule as the credit crate reads them (tagged by
/// `kind`), and its rates.
pub(super) fn product_rules(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
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
