//! Consortium: the log this lender is a member of, as stored in its database, every fact
//! checked on the server with the consortium crate before it is shown — the latest
//! checkpoint (size, root, the operator's signature), the stored entries against its root,
//! this member's query count through its count proof, and an entry looked up by index with
//! its inclusion proof (`tally_service::consortium::member_view`). Scope
//! `consortium:member`. Read-only: no form posts.

use super::layout::{page, require, respond, PageError};
use super::session::Viewer;
use super::ConsoleState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use tally_service::consortium::member_view::{member_view, Check, MemberView, MemberViewError};

#[derive(Debug, Default, Deserialize)]
pub struct ConsortiumQuery {
    /// The index of an entry to look up.
    entry: Option<String>,
}

/// A time in seconds since the epoch, in UTC.
fn seconds(time: u64) -> String {
    i64::try_from(time)
        .ok()
        .and_then(|time| jiff::Timestamp::from_second(time).ok())
        .map(|at| at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| time.to_string())
}

fn checks_table(checks: &[Check]) -> Markup {
    html! {
        table {
            thead { tr { th { "Checked" } th { "Outcome" } th { "What was checked" } } }
            tbody {
                @for check in checks {
                    tr {
                        td { (check.what) }
                        @match &check.outcome {
                            Ok(detail) => { td { strong { "verified" } } td { (detail) } }
                            Err(detail) => { td.error { "FAILED" } td.error { (detail) } }
                        }
                    }
                }
            }
        }
    }
}

fn content(view: &MemberView, lookup: Option<&str>) -> Markup {
    html! {
        h1 { "Consortium" }
        @if view.verified() {
            p.notice role="status" { "Verified: every fact below was checked against the operator's signature." }
        } @else {
            p.error role="alert" { "Not verified: a check failed. Do not rely on what this log says until it is explained." }
        }
        @if let Some(checkpoint) = &view.checkpoint {
            section {
                h2 { "Latest checkpoint" }
                dl.facts {
                    dt { "Log" } dd { code { (checkpoint.origin) } }
                    dt { "Size" } dd { (checkpoint.size) " entries" }
                    dt { "Root hash" } dd { code { (checkpoint.root) } }
                    dt { "Entries stored" } dd { (checkpoint.stored_entries) }
                }
            }
        }
        @if let Some(counts) = &view.counts {
            section {
                h2 { "This member's queries" }
                dl.facts {
                    dt { "Member" } dd { code { (counts.member) } " (" (counts.status) ")" }
                    dt { "Queries logged" } dd { (counts.queries) }
                    dt { "Records published" } dd { (counts.publications) }
                    dt { "Queries on its latest day" } dd { (counts.in_day) " (UTC day " (counts.day) ")" }
                    dt { "Member map leaf" } dd { (counts.leaf_index) " of " (counts.members) }
                }
            }
        }
        section {
            h2 { "Checks" }
            (checks_table(&view.checks))
        }
        section {
            h2 { "Look up an entry" }
            form.filters method="get" action="/console/consortium" {
                label { "Entry index "
                    input type="number" name="entry" min="0" value=[lookup] required;
                }
                button type="submit" { "Look up" }
            }
            @if let Some(refused) = &view.lookup_refused {
                p.error role="alert" { (refused) }
            }
            @if let Some(entry) = &view.entry {
                dl.facts {
                    dt { "Index" } dd { (entry.index) }
                    dt { "Kind" } dd { (entry.kind) }
                    dt { "Member" } dd { (entry.member.as_deref().unwrap_or("the operator")) }
                    dt { "Logged" } dd { (seconds(entry.time)) }
                    dt { "Leaf hash" } dd { code { (entry.leaf) } }
                }
            }
        }
    }
}

/// `GET /console/consortium[?entry=N]`: the checked view of the log.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<ConsortiumQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "consortium:member")?;
    let Some(member) = state.app.consortium_member.clone() else {
        return Err(PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "consortium_not_configured",
            "no consortium log is configured: set [consortium_member] log_key (the operator's \
             verifier key) and member (this lender's name in the log)",
        ));
    };
    let lookup = query
        .entry
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_string);
    let index = match &lookup {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("entry {text:?} is not an entry index (0 or more)"),
            )
        })?),
    };
    let database = state.app.database.clone();
    let view = tokio::task::spawn_blocking(move || {
        member_view(&database, &member.log_key, &member.member, index)
    })
    .await
    .map_err(|error| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the consortium check stopped: {error}"),
        )
    })?
    .map_err(|error| {
        let status = match error {
            MemberViewError::NoLog => StatusCode::NOT_FOUND,
            MemberViewError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        PageError::new(status, error.code(), error.to_string())
    })?;
    Ok(respond(
        StatusCode::OK,
        page(
            Some(&viewer),
            "Consortium",
            content(&view, lookup.as_deref()),
        ),
    ))
}
