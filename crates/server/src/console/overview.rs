//! The overview: one day's counts (today's, or the latest day with activity when today has
//! none yet), each part shown only to a key whose scopes allow it: volumes, credit
//! applications approved and declined, orders stopped by risk control, risk decisions and
//! cases, delinquency by bucket, settlement and reconciliation status.

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
use tally_service::overview::{overview, overview_day, OverviewRequest};
use tally_store::console::NamedCount;

fn bars(counts: &[NamedCount]) -> Vec<(String, i64)> {
    counts
        .iter()
        .map(|count| (count.name.replace('_', " "), count.count))
        .collect()
}

/// The count named `name` among `counts`, 0 when absent.
fn count_of(counts: &[NamedCount], name: &str) -> i64 {
    counts
        .iter()
        .find(|count| count.name == name)
        .map_or(0, |count| count.count)
}

/// `GET /console/overview`: today (in the credit service's time zone, UTC without one), or
/// the latest day with activity when today has none yet.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, PageError> {
    let time_zone = state
        .app
        .credit
        .as_ref()
        .map_or(TimeZone::UTC, |credit| credit.time_zone.clone());
    let today = state.app.clock.now().to_zoned(time_zone.clone()).date();
    let (day, earlier) = overview_day(&state.app.database, today, &time_zone)
        .await
        .map_err(ApiError::internal)?;
    let principal = &viewer.principal;
    let request = OverviewRequest {
        day,
        time_zone,
        ledger: principal.has("ledger:read"),
        risk_decisions: principal.has("risk:read") || principal.has("risk:analyst"),
        cases: principal.has("risk:analyst"),
        customers: principal.has("credit:read"),
        credit: principal.has("credit:read"),
        payments: principal.has("payments:read"),
        recon: principal.has("recon:read"),
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
    let stopped = counted
        .decisions_by_action
        .as_ref()
        .map(|decisions| count_of(decisions, "reject") + count_of(decisions, "hold_delivery"));
    let content = html! {
        h1 { "Overview" }
        @if earlier {
            p.notice {
                "Nothing has happened today (" (today) ") yet: this is " strong { (counted.day) }
                ", the latest day with activity."
            }
        } @else {
            p.muted { "Today is " (counted.day) "." }
        }
        section.tiles aria-label="The day in numbers" {
            @if let Some(purchases) = counted.credit_purchases {
                div.tile { span.number { (purchases) } span { "purchases on credit" } }
            }
            @if let Some(payments) = counted.payments_created {
                div.tile {
                    span.number { (payments) }
                    a href="/console/payments" { "payments" }
                }
            }
            @if let Some(applications) = &counted.applications {
                div.tile {
                    span.number { (count_of(applications, "approved")) " / " (count_of(applications, "declined")) }
                    span { "credit applications approved / declined" }
                }
            }
            @if let Some(stopped) = stopped {
                div.tile {
                    span.number { (stopped) }
                    span { "orders stopped by risk control (rejected or delivery held)" }
                }
            }
            @if let Some(entries) = counted.entries_posted {
                div.tile { span.number { (entries) } span { "ledger entries posted" } }
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
            @if let Some(settlement) = &counted.settlement {
                div.tile {
                    @match settlement {
                        Some(run) => {
                            span.number { (run.status) }
                            a href=(format!("/console/settlement/{}", run.business_date)) {
                                "settlement of " (run.business_date)
                            }
                        }
                        None => { span.number { "—" } span { "no settlement run yet" } }
                    }
                }
            }
            @if let Some(recon) = &counted.recon {
                div.tile {
                    span.number { (recon.unresolved) }
                    a href="/console/recon" { "reconciliation exceptions open" }
                    @if let Some((date, exceptions, unresolved)) = &recon.latest {
                        span.muted.detail {
                            "latest run " (date) ": " (exceptions) " found, " (unresolved) " open"
                        }
                    } @else {
                        span.muted.detail { "no run yet" }
                    }
                }
            }
        }
        @if let Some(decisions) = &counted.decisions_by_action {
            section {
                h2 { "Risk decisions of the day, by action" }
                (bar_chart("Risk decisions of the day, by action", &bars(decisions)))
            }
        }
        @if let Some(applications) = &counted.applications {
            section {
                h2 { "Credit applications of the day" }
                (bar_chart("Credit applications of the day", &bars(applications)))
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
            && counted.customers.is_none() && counted.payments_created.is_none()
            && counted.recon.is_none() {
            p { "This key's scopes show no part of the overview." }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Overview", content),
    ))
}
