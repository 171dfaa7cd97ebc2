//! The overview: today's counts, each part shown only to a key whose scopes allow it.

use super::layout::{bar_chart, page, respond, PageError};
use super::session::Viewer;
use super::ConsoleState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use jiff::tz::TimeZone;
use maud::html;
use tally_service::overview::{overview, OverviewRequest};
use tally_store::console::NamedCount;

fn bars(counts: &[NamedCount]) -> Vec<(String, i64)> {
    counts
        .iter()
        .map(|count| (count.name.replace('_', " "), count.count))
        .collect()
}

/// `GET /console/overview`: today (in the credit service's time zone, UTC without one).
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, PageError> {
    let time_zone = state
        .app
        .credit
        .as_ref()
        .map_or(TimeZone::UTC, |credit| credit.time_zone.clone());
    let day = state.app.clock.now().to_zoned(time_zone.clone()).date();
    let principal = &viewer.principal;
    let request = OverviewRequest {
        day,
        time_zone,
        ledger: principal.has("ledger:read"),
        risk_decisions: principal.has("risk:read") || principal.has("risk:analyst"),
        cases: principal.has("risk:analyst"),
        customers: principal.has("credit:read"),
        credit: principal.has("credit:read"),
    };
    let counted = overview(&state.app.database, &request)
        .await
        .map_err(ApiError::internal)?;
    let open_cases = counted.cases_by_status.as_ref().map(|statuses| {
        statuses
            .iter()
            .find(|status| status.name == "open")
            .map_or(0, |status| status.count)
    });
    let content = html! {
        h1 { "Overview" }
        p.muted { "Today is " (counted.day) "." }
        section.tiles {
            @if let Some(entries) = counted.entries_posted {
                div.tile { span.number { (entries) } span { "ledger entries posted today" } }
            }
            @if let Some(open) = open_cases {
                div.tile {
                    span.number { (open) }
                    a href="/console/cases" { "open risk cases" }
                }
            }
            @if let Some(customers) = counted.customers {
                div.tile {
                    span.number { (customers) }
                    a href="/console/customers" { "customers" }
                }
            }
        }
        @if let Some(decisions) = &counted.decisions_by_action {
            section {
                h2 { "Risk decisions today, by action" }
                (bar_chart("Risk decisions today, by action", &bars(decisions)))
            }
        }
        @if let Some(statuses) = &counted.cases_by_status {
            section {
                h2 { "Risk cases by status" }
                (bar_chart("Risk cases by status", &bars(statuses)))
            }
        }
        @if let Some(buckets) = &counted.accounts_by_bucket {
            section {
                h2 { "Credit accounts by delinquency bucket" }
                (bar_chart("Credit accounts by delinquency bucket", &bars(buckets)))
            }
        }
        @if counted.entries_posted.is_none() && counted.decisions_by_action.is_none()
            && counted.customers.is_none() {
            p { "This key's scopes show no part of the overview." }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Overview", content),
    ))
}
