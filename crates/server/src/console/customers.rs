//! Customers: an exact lookup by phone or national id (through the blind index, on the
//! lookup audit log, rate limited per key, as `POST /v1/customers/search`), a customer masked
//! by default (scope `credit:read`), and "show in clear" of one field, which asks for a reason
//! and goes through the audited read (`CustomerService::reveal_fields`, scope `pii:read`):
//! the value is shown once, in the answer to that form, and the page is never cached.

use super::layout::{csrf_field, page, require, respond, PageError};
use super::session::Viewer;
use super::ConsoleState;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::CustomerId;
use tally_service::customers::{
    CustomerError, CustomerService, CustomerView, Lookup, PersonalField, REASON_LENGTH_MAX,
};

fn customers(state: &ConsoleState) -> CustomerService {
    CustomerService::new(
        state.app.database.clone(),
        state.app.privacy.clone(),
        state.app.clock.clone(),
    )
}

/// A refusal of the customer service as a page: the API's status and code, and for the
/// refusals whose API message speaks of JSON bodies, the service's own words.
fn refused(error: CustomerError) -> PageError {
    let own_words = matches!(
        error,
        CustomerError::ReasonRequired | CustomerError::LookupFieldRequired
    );
    let message = error.to_string();
    let mut refusal = PageError::from(ApiError::from(error));
    if own_words {
        refusal.message = message;
    }
    refusal
}

fn parse_customer_id(text: &str) -> Result<CustomerId, PageError> {
    text.trim().parse().map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("{text:?} is not a customer id (a UUID)"),
        )
    })
}

fn search_form(viewer: &Viewer) -> Markup {
    html! {
        form.search method="post" action="/console/customers/search" {
            (csrf_field(viewer))
            label { "Find by "
                select name="field" {
                    option value="phone" selected { "phone" }
                    option value="national_id" { "national id" }
                }
            }
            label { "Value " input type="text" name="value" required autocomplete="off"; }
            label { "Reason (ticket, call) "
                input type="text" name="reason" maxlength=(REASON_LENGTH_MAX) autocomplete="off";
            }
            button type="submit" { "Find" }
        }
        p.muted { "Each lookup is written to the audit log with your key and reason." }
        form.open method="get" action="/console/customers" {
            label { "Or open by customer id " input type="text" name="id" autocomplete="off"; }
            button type="submit" { "Open" }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchPageQuery {
    id: Option<String>,
}

/// `GET /console/customers`: the lookup form (or, with `?id=`, that customer).
pub async fn search_page(
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<SearchPageQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "credit:read")?;
    if let Some(id) = query.id.as_deref().filter(|id| !id.trim().is_empty()) {
        let id = parse_customer_id(id)?;
        return Ok(Redirect::to(&format!("/console/customers/{id}")).into_response());
    }
    let content = html! {
        h1 { "Customers" }
        (search_form(&viewer))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Customers", content),
    ))
}

#[derive(Debug, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/customers/search`: the lookup, audited, and the customer found (masked).
pub async fn search(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<SearchForm>,
) -> Result<Response, PageError> {
    require(&viewer, "credit:read")?;
    // The same per-key budget as the API's lookups: the console is no way around it.
    if let Err(retry_after) = state.app.lookups.check(&viewer.principal.key_id) {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this API key may look up {} customers a minute; retry after {} s",
                state.app.lookups.per_minute(),
                retry_after.0
            ),
        ));
    }
    let value = Some(form.value);
    let lookup = match form.field.as_str() {
        "phone" => Lookup {
            phone: value,
            ..Lookup::default()
        },
        "national_id" => Lookup {
            national_id: value,
            ..Lookup::default()
        },
        other => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{other:?} is not phone or national_id"),
            ))
        }
    };
    let lookup = Lookup {
        reason: Some(form.reason).filter(|reason| !reason.trim().is_empty()),
        ..lookup
    };
    let found = customers(&state)
        .search(&viewer.principal.caller(), &lookup)
        .await
        .map_err(refused)?;
    let content = html! {
        h1 { "Customers" }
        (search_form(&viewer))
        h2 { "Found" }
        @if found.is_empty() {
            p { "No customer has this " (form.field.replace('_', " ")) "." }
        } @else {
            table {
                thead { tr { th { "Customer" } th { "Name" } th { "Phone" } th { "National id" } } }
                tbody {
                    @for customer in &found {
                        tr {
                            td { a href=(format!("/console/customers/{}", customer.id)) { code { (customer.id) } } }
                            td { (customer.name) } td { (customer.phone) } td { (customer.national_id) }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Customers", content),
    ))
}

/// The customer's fields, each masked unless it is in `in_clear`, with a "show in clear"
/// form per masked field for a key with `pii:read`.
fn customer_content(
    viewer: &Viewer,
    customer: &CustomerView,
    in_clear: Option<PersonalField>,
) -> Markup {
    let may_reveal = viewer.principal.has("pii:read");
    let value = |field: PersonalField| match field {
        PersonalField::Name => &customer.name,
        PersonalField::Phone => &customer.phone,
        PersonalField::NationalId => &customer.national_id,
        PersonalField::DateOfBirth => &customer.date_of_birth,
    };
    html! {
        p { a href="/console/customers" { "← Customers" } }
        h1 { "Customer " code { (customer.id) } }
        @if let Some(field) = in_clear {
            p.notice role="status" {
                "The " (field.as_str().replace('_', " ")) " is shown in clear once, in this "
                "answer; the read is on the audit log with your key and reason."
            }
        }
        dl.facts {
            dt { "Created" } dd { (customer.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")) }
        }
        table.fields {
            thead { tr { th { "Field" } th { "Value" } th { } } }
            tbody {
                @for field in PersonalField::ALL {
                    tr {
                        th scope="row" { (field.as_str().replace('_', " ")) }
                        td {
                            @if in_clear == Some(field) {
                                strong.clear { (value(field)) }
                            } @else {
                                span.masked { (value(field)) }
                            }
                        }
                        td {
                            @if may_reveal && in_clear != Some(field) {
                                form.reveal method="post" action=(format!("/console/customers/{}/reveal", customer.id)) {
                                    (csrf_field(viewer))
                                    input type="hidden" name="field" value=(field.as_str());
                                    label { "Reason "
                                        input type="text" name="reason" required
                                            maxlength=(REASON_LENGTH_MAX) autocomplete="off";
                                    }
                                    button type="submit" { "Show in clear" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/customers/{id}`: the customer, masked. Not audited: nothing personal is
/// shown.
pub async fn customer_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "credit:read")?;
    let id = parse_customer_id(&id)?;
    let customer = customers(&state).show(id).await.map_err(refused)?;
    Ok(respond(
        StatusCode::OK,
        page(
            Some(&viewer),
            "Customer",
            customer_content(&viewer, &customer, None),
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    field: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/customers/{id}/reveal`: one field in clear for the reason given, on the
/// audit log before it is shown; shown in this answer only.
pub async fn reveal(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<RevealForm>,
) -> Result<Response, PageError> {
    require(&viewer, "pii:read")?;
    let id = parse_customer_id(&id)?;
    let field = PersonalField::parse(&form.field).ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "{:?} is not name, phone, national_id or date_of_birth",
                form.field
            ),
        )
    })?;
    let customer = customers(&state)
        .reveal_fields(
            id,
            &[field],
            &viewer.principal.caller(),
            Some(form.reason.as_str()),
        )
        .await
        .map_err(refused)?;
    Ok(respond(
        StatusCode::OK,
        page(
            Some(&viewer),
            "Customer",
            customer_content(&viewer, &customer, Some(field)),
        ),
    ))
}
