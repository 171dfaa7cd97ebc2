//! Rules on query, path and header parameters: ranges, page sizes, fixed sets of values.

use super::fields::{Text, CUSTOMER_PATTERN};
use super::*;

/// Query and path parameters: (path, name, rule).
pub(super) enum Parameter {
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
pub(super) enum PageMaximum {
    Fixed(i64),
    PageSize,
}

pub(super) fn parameters() -> Vec<(&'static str, &'static str, Parameter)> {
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
pub(super) fn recon_page() -> Parameter {
    Parameter::Range {
        minimum: 1,
        maximum: PageMaximum::Fixed(tally_service::recon::worklist::PAGE_LIMIT_MAX),
    }
}

/// The rules of [`parameters`], and the `Idempotency-Key` header's, with `page_size_max` as
/// the largest page.
pub(super) fn apply_parameters(openapi: &mut OpenApi, page_size_max: i64) {
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
