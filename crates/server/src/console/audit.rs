//! The personal-data audit: every field read in clear (`pii_reads`) and every exact lookup
//! (`pii_lookups`), oldest first, a page at a time by cursor. Scope `admin`, as
//! `GET /v1/customers/{id}/pii-reads` and `GET /v1/pii-lookups`.

use super::layout::{page, require, respond, time, PageError};
use super::session::Viewer;
use super::ConsoleState;
use crate::error::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::html;
use serde::Deserialize;
use tally_service::customers::CustomerService;

/// Rows on one page.
const ROWS_PER_PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// `reads` (the default) or `lookups`.
    log: Option<String>,
    /// The id of the last row already seen.
    after: Option<String>,
}

fn micros(at: jiff::Timestamp) -> i64 {
    at.as_microsecond()
}

/// `GET /console/audit`: one page of the reads in clear or of the lookups.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "admin")?;
    let service = CustomerService::new(
        state.app.database.clone(),
        state.app.privacy.clone(),
        state.app.clock.clone(),
    );
    let log = query.log.as_deref().unwrap_or("reads");
    let after = query
        .after
        .as_deref()
        .map(str::trim)
        .filter(|after| !after.is_empty());
    if let Some(after) = after {
        uuid::Uuid::parse_str(after).map_err(|_| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("after {after:?} is not a row id"),
            )
        })?;
    }
    let tabs = html! {
        nav.tabs aria-label="Audit logs" {
            a href="/console/audit?log=reads" aria-current=[(log == "reads").then_some("page")] { "Reads in clear" }
            a href="/console/audit?log=lookups" aria-current=[(log == "lookups").then_some("page")] { "Lookups" }
        }
    };
    let content = match log {
        "reads" => {
            let reads = service
                .all_reads(after, ROWS_PER_PAGE)
                .await
                .map_err(ApiError::from)?;
            let next = (i64::try_from(reads.len()).unwrap_or(0) == ROWS_PER_PAGE)
                .then(|| reads.last().map(|read| read.id.clone()))
                .flatten();
            html! {
                h1 { "Audit" }
                (tabs)
                h2 { "Personal data read in clear" }
                @if reads.is_empty() { p { "No reads." } } @else {
                    table {
                        thead { tr { th { "When" } th { "Key" } th { "Customer" } th { "Field" } th { "Reason" } } }
                        tbody {
                            @for read in &reads {
                                tr {
                                    td { (time(micros(read.at))) }
                                    td { (read.principal) " " code.muted { (read.api_key_id) } }
                                    td { a href=(format!("/console/customers/{}", read.customer_id)) { code { (read.customer_id) } } }
                                    td { (read.field.replace('_', " ")) }
                                    td { (read.reason) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    nav.pages aria-label="Pages" {
                        a href=(format!("/console/audit?log=reads&after={next}")) { "Next →" }
                    }
                }
            }
        }
        "lookups" => {
            let lookups = service
                .lookups(after, ROWS_PER_PAGE)
                .await
                .map_err(ApiError::from)?;
            let next = (i64::try_from(lookups.len()).unwrap_or(0) == ROWS_PER_PAGE)
                .then(|| lookups.last().map(|lookup| lookup.id.clone()))
                .flatten();
            html! {
                h1 { "Audit" }
                (tabs)
                h2 { "Exact lookups of customers" }
                p.muted { "The value searched is never kept, only its blind index." }
                @if lookups.is_empty() { p { "No lookups." } } @else {
                    table {
                        thead { tr { th { "When" } th { "Key" } th { "By" } th { "Found" } th { "Reason" } } }
                        tbody {
                            @for lookup in &lookups {
                                tr {
                                    td { (time(micros(lookup.at))) }
                                    td { (lookup.principal) " " code.muted { (lookup.api_key_id) } }
                                    td { (lookup.field.replace('_', " ")) }
                                    td {
                                        @if let Some(customer) = &lookup.customer_id {
                                            a href=(format!("/console/customers/{customer}")) { code { (customer) } }
                                        } @else { "nobody" }
                                    }
                                    td { (lookup.reason.as_deref().unwrap_or("—")) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    nav.pages aria-label="Pages" {
                        a href=(format!("/console/audit?log=lookups&after={next}")) { "Next →" }
                    }
                }
            }
        }
        other => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("log {other:?} is not reads or lookups"),
            ))
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Audit", content),
    ))
}
