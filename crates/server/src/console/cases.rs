//! Risk cases: the queue with its filters (status, kind, claimed by me), a case with the
//! decision that opened it (the rules that fired with their reason codes, the features, list
//! hits), its event, the customer's latest events and its trail, and the moves: claim,
//! approve, reject, note, and for a confirmed stolen-account claim the customer's
//! re-verification. Every move goes through `StolenAccountClaims`, as
//! `POST /v1/risk/cases/{id}/{action}` and `POST /v1/risk/claims/{id}/restore` do; scope
//! `risk:analyst`.

use super::layout::{csrf_field, page, require, respond, time, PageError};
use super::session::Viewer;
use super::table::{Table, TableQuery};
use super::ConsoleState;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use tally_service::risk::{RiskService, CASE_KINDS, CASE_STATUSES};
use tally_store::lists::CASE_SORTS;
use tally_store::risk::CaseQueue;

/// Cases on one page of the queue.
const CASES_PER_PAGE: i64 = 50;
/// The customer's latest events shown on a case.
const RECENT_EVENTS: i64 = 20;

fn risk_service(state: &ConsoleState) -> Result<&Arc<RiskService>, PageError> {
    state.risk.as_ref().ok_or_else(|| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "risk_unavailable",
            "this process does not serve the risk engine",
        )
    })
}

/// The queue's filters, sort and page as the query string gives them; a blank filter is
/// no filter.
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    kind: Option<String>,
    mine: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    page: Option<String>,
}

fn non_blank(value: Option<&String>) -> Option<&str> {
    value
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
}

/// `GET /console/cases`: one page of the queue, by priority then age unless sorted by a
/// column's header.
pub async fn queue(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<QueueQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:analyst")?;
    let risk = risk_service(&state)?;
    let status = non_blank(query.status.as_ref())
        .unwrap_or("open")
        .to_string();
    let kind = non_blank(query.kind.as_ref()).map(str::to_string);
    let mine = non_blank(query.mine.as_ref()).is_some();
    let mut filters = vec![("status".to_string(), status.clone())];
    if let Some(kind) = &kind {
        filters.push(("kind".to_string(), kind.clone()));
    }
    if mine {
        filters.push(("mine".to_string(), "1".to_string()));
    }
    let table = Table::read(
        &TableQuery {
            sort: query.sort.clone(),
            order: query.order.clone(),
            page: query.page.clone(),
        },
        "/console/cases",
        &CASE_SORTS,
        false,
        CASES_PER_PAGE,
    )?
    .with_filters(filters);
    // Unsorted, the queue keeps its working order: by priority, then oldest first.
    let sorted = non_blank(query.sort.as_ref()).is_some();
    let cases = risk
        .cases(&CaseQueue {
            status: status.clone(),
            kind: kind.clone(),
            assignee_key: mine.then(|| viewer.principal.key_id.clone()),
            limit: table.list.limit,
            offset: table.list.offset,
            sort: sorted.then(|| table.list.clone()),
        })
        .await
        .map_err(ApiError::from)?;
    let (cases, more) = table.cut(cases);
    let content = html! {
        h1 { "Risk cases" }
        form.filters method="get" action="/console/cases" {
            label { "Status "
                select name="status" {
                    @for option in CASE_STATUSES {
                        option value=(option) selected[option == status] { (option) }
                    }
                }
            }
            label { "Kind "
                select name="kind" {
                    option value="" selected[kind.is_none()] { "any" }
                    @for option in CASE_KINDS {
                        option value=(option) selected[kind.as_deref() == Some(option)] {
                            (option.replace('_', " "))
                        }
                    }
                }
            }
            label { input type="checkbox" name="mine" value="1" checked[mine]; " Assigned to me" }
            button type="submit" { "Show" }
        }
        @if cases.is_empty() {
            p { "No cases." }
        } @else {
            // One form for the whole table: the checked cases are claimed together.
            form.bulk method="post" action="/console/cases/claim" {
                (csrf_field(&viewer))
                table {
                    thead { tr {
                        th { span.visually-hidden { "Select" } }
                        (table.header("Kind", "kind"))
                        th { "Status" }
                        (table.header("Customer", "customer"))
                        th { "Summary" }
                        (table.header("Assignee", "assignee"))
                        (table.header("Opened", "created_at"))
                    } }
                    tbody {
                        @for case in &cases {
                            tr {
                                td {
                                    @if case.status == "open" {
                                        input type="checkbox" name="case" value=(case.id)
                                            aria-label=(format!("Select case {}", case.id));
                                    }
                                }
                                td { a href=(format!("/console/cases/{}", case.id)) { (case.kind.replace('_', " ")) } }
                                td { (case.status) }
                                td { code { (case.customer) } }
                                td { (case.summary) }
                                td { (case.assignee.as_deref().unwrap_or("—")) }
                                td { (time(case.created_at)) }
                            }
                        }
                    }
                }
                @if cases.iter().any(|case| case.status == "open") {
                    button type="submit" { "Claim selected cases" }
                }
            }
        }
        (table.pages(more))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Risk cases", content),
    ))
}

/// A JSON value as text: strings without quotes, an amount as its value and currency.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Object(fields) => match (fields.get("value"), fields.get("currency")) {
            (Some(Value::String(amount)), Some(Value::String(currency))) => {
                format!("{amount} {currency}")
            }
            _ => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// The decision that opened a case: action and score, reason codes, every rule that fired,
/// list hits, runtime failures, and the feature values the rules saw.
fn decision_section(decision: &Value) -> Markup {
    let empty = Vec::new();
    let rules = decision["fired_rules"].as_array().unwrap_or(&empty);
    let hits = decision["list_hits"].as_array().unwrap_or(&empty);
    let failures = decision["failures"].as_array().unwrap_or(&empty);
    let reasons = decision["reasons"].as_array().unwrap_or(&empty);
    html! {
        section {
            h2 { "Why: the decision" }
            dl.facts {
                dt { "Action" } dd { strong { (shown(&decision["action"])) } }
                dt { "Score" } dd { (shown(&decision["score"])) }
                dt { "Rule set version" } dd { (shown(&decision["rule_set_version"])) }
                dt { "Reason codes" } dd {
                    @for reason in reasons { code { (shown(reason)) } " " }
                }
            }
            h3 { "Rules that fired" }
            @if rules.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr { th { "Rule" } th { "Reason code" } th { "Action" } th { "Score" } th { "Shadow" } } }
                    tbody {
                        @for rule in rules {
                            tr {
                                td { code { (shown(&rule["rule_id"])) } }
                                td { code { (shown(&rule["reason"])) } }
                                td { (shown(&rule["action"])) }
                                td.number { (shown(&rule["score"])) }
                                td { @if rule["shadow"].as_bool() == Some(true) { "shadow" } @else { "enforced" } }
                            }
                        }
                    }
                }
            }
            @if !hits.is_empty() {
                h3 { "List hits" }
                table {
                    thead { tr { th { "List" } th { "Field" } th { "Reason" } th { "Source" } } }
                    tbody {
                        @for hit in hits {
                            tr {
                                td { (shown(&hit["kind"])) } td { (shown(&hit["field"])) }
                                td { (shown(&hit["reason"])) } td { (shown(&hit["source"])) }
                            }
                        }
                    }
                }
            }
            @if !failures.is_empty() {
                h3 { "Rules that failed to evaluate" }
                ul { @for failure in failures {
                    li { code { (shown(&failure["rule_id"])) } ": " (shown(&failure["message"])) }
                } }
            }
            @if let Some(features) = decision["features"].as_object() {
                @if !features.is_empty() {
                    h3 { "Feature values" }
                    table {
                        thead { tr { th { "Feature" } th { "Value" } } }
                        tbody {
                            @for (name, value) in features {
                                tr { td { code { (name) } } td.number { (shown(value)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A form that moves the case by `action`, with a note (optional but for `note` itself).
/// Each note field is named for its move: several forms share the section, and a screen
/// reader announces a field by its label alone.
fn move_form(viewer: &Viewer, id: &str, action: &str, label: &str, note_required: bool) -> Markup {
    let note_label = match action {
        "claim" => "Note on the claim (optional)",
        "approve" => "Note on the approval (optional)",
        "reject" => "Note on the rejection (optional)",
        _ => "Note",
    };
    html! {
        form.move method="post" action=(format!("/console/cases/{id}/{action}")) {
            (csrf_field(viewer))
            label { (note_label)
                @if note_required {
                    textarea name="note" rows="2" required {}
                } @else {
                    textarea name="note" rows="2" {}
                }
            }
            button type="submit" { (label) }
        }
    }
}

/// The re-verification of a confirmed stolen-account claim's customer: how they proved who
/// they are is required, and goes into the case's trail.
fn restore_form(viewer: &Viewer, id: &str) -> Markup {
    html! {
        form.move method="post" action=(format!("/console/cases/{id}/restore")) {
            (csrf_field(viewer))
            label { "How the customer proved who they are"
                textarea name="note" rows="2" required {}
            }
            button type="submit" { "Restore access" }
        }
    }
}

/// `GET /console/cases/{id}`: the case, why it was opened, its event and its trail, and the
/// moves open to this analyst.
pub async fn case_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:analyst")?;
    let risk = risk_service(&state)?;
    let case = risk.case(&id).await.map_err(ApiError::from)?;
    let log = risk.case_log(&id).await.map_err(ApiError::from)?;
    let event = match case.event_sequence {
        Some(sequence) => risk
            .store
            .event(sequence)
            .await?
            .map(|event| risk.opened_event(event)),
        None => None,
    };
    let recent = risk
        .store
        .customer_events(&case.customer, RECENT_EVENTS)
        .await?;
    let claim = risk.store.claim(&id).await?;
    let mine = risk.store.case_assignee_key(&id).await?.as_deref()
        == Some(viewer.principal.key_id.as_str());
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    // A payment's risk event is named `payment:<id>`: its case links to the payment, and a
    // held delivery is released from here.
    let payment = event.as_ref().and_then(|event| {
        parse(&event.body)["id"]
            .as_str()
            .and_then(|id| id.strip_prefix("payment:"))
            .map(str::to_string)
    });
    let content = html! {
        p { a href="/console/cases" { "← The queue" } }
        h1 { "Case " code { (case.id) } }
        dl.facts {
            dt { "Kind" } dd { (case.kind.replace('_', " ")) }
            dt { "Status" } dd { strong { (case.status) } }
            dt { "Customer" } dd { code { (case.customer) } }
            dt { "Summary" } dd { (case.summary) }
            dt { "Assignee" } dd { (case.assignee.as_deref().unwrap_or("—")) @if mine { " (you)" } }
            dt { "Opened" } dd { (time(case.created_at)) }
            dt { "Last moved" } dd { (time(case.updated_at)) }
            @if let Some(claim) = &claim {
                dt { "Compromised from" } dd { (claim.compromised_at.map_or("not stated".to_string(), time)) }
                dt { "Police reference" } dd { (claim.police_reference.as_deref().unwrap_or("—")) }
                dt { "Access restored" } dd {
                    @match (claim.restored_at, &claim.restored_by) {
                        (Some(at), Some(by)) => { (time(at)) " by " (by) }
                        _ => { "no" }
                    }
                }
            }
        }
        section.actions {
            h2 { "Work the case" }
            @if case.status == "open" {
                (move_form(&viewer, &case.id, "claim", "Claim", false))
            }
            @if case.status == "claimed" && mine {
                (move_form(&viewer, &case.id, "approve", "Approve", false))
                (move_form(&viewer, &case.id, "reject", "Reject", false))
            }
            @if case.status == "claimed" && !mine {
                p.muted { "Claimed by another analyst: only they approve or reject it." }
            }
            @if let Some(claim) = &claim {
                @if case.status == "approved" && claim.restored_at.is_none() {
                    (restore_form(&viewer, &case.id))
                }
            }
            (move_form(&viewer, &case.id, "note", "Add note", true))
            @if let Some(payment) = &payment {
                p { "Payment " a href=(format!("/console/payments/{payment}")) { code { (payment) } } }
                @if case.kind == "hold_delivery" {
                    form.move method="post" action=(format!("/console/payments/{payment}/delivery-release")) {
                        (csrf_field(&viewer))
                        button type="submit" { "Release the held delivery" }
                    }
                }
            }
            form.move method="post" action=(format!("/console/cases/{}/evidence", case.id)) {
                (csrf_field(&viewer))
                p.muted { "The package holds the customer's events, devices and addresses; the export is written in the trail." }
                button type="submit" { "Export evidence (JSON)" }
            }
        }
        @if let Some(event) = &event {
            (decision_section(&parse(&event.decision)))
            section {
                h2 { "The event" }
                dl.facts {
                    dt { "Sequence" } dd { (event.sequence) }
                    @if let Some(fields) = parse(&event.body).as_object() {
                        @for (name, value) in fields {
                            dt { (name) } dd { (shown(value)) }
                        }
                    }
                }
            }
        }
        section {
            h2 { "The customer's recent events" }
            @if recent.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr {
                        th { "Sequence" } th { "When" } th { "Kind" } th { "Amount" }
                        th { "Device" } th { "Decision" }
                    } }
                    tbody {
                        @for row in &recent {
                            @let body = parse(&row.body);
                            tr {
                                td.number { (row.sequence) }
                                td { (time(row.at)) }
                                td { (shown(&body["kind"])) }
                                td.number { @if !body["amount"].is_null() { (shown(&body["amount"])) } }
                                td { @if !body["device"].is_null() { code { (shown(&body["device"])) } } }
                                td { (row.action.replace('_', " ")) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Trail" }
            table {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Note" } } }
                tbody {
                    @for line in &log {
                        tr {
                            td { (time(line.at)) } td { (line.actor) }
                            td { (line.action) } td { (line.note) }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Risk case", content),
    ))
}

#[derive(Debug, Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    note: String,
}

/// `POST /console/cases/{id}/{action}`: the move (or `restore`, the re-verification of a
/// confirmed stolen-account claim's customer), then back to the case (303).
pub async fn move_case(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<MoveForm>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:analyst")?;
    let risk = risk_service(&state)?;
    // The same flow as the API: a stolen-account claim's credit lines follow its case.
    let claims = tally_service::stolen_accounts::StolenAccountClaims {
        risk,
        credit: state.app.credit.as_deref(),
        gate: state.app.risk_gate.as_deref(),
    };
    let caller = viewer.principal.caller();
    let case = if action == "restore" {
        claims
            .restore_access(&id, &form.note, &caller)
            .await
            .map_err(ApiError::from)?
    } else {
        claims
            .move_case(&id, &action, &form.note, &caller)
            .await
            .map_err(ApiError::from)?
    };
    Ok(Redirect::to(&format!("/console/cases/{}", case.id)).into_response())
}

/// Most cases one bulk claim moves.
const BULK_CASES_MAX: usize = CASES_PER_PAGE as usize;

/// `POST /console/cases/claim`: claims every checked case for this analyst, each through
/// the same move as `POST /v1/risk/cases/{id}/claim`; a case another analyst claimed
/// first is refused alone, and the page lists what became of each.
pub async fn claim_cases(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    require(&viewer, "risk:analyst")?;
    let risk = risk_service(&state)?;
    // One `case` field per checked box: a repeated name, which the `Form` extractor's
    // struct reading does not collect.
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the form could not be read",
        )
    })?;
    let selected: Vec<String> = fields
        .into_iter()
        .filter(|(name, _)| name == "case")
        .map(|(_, id)| id)
        .collect();
    if selected.is_empty() {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_case_selected",
            "no case was selected: check the cases to claim, then send the form",
        ));
    }
    if selected.len() > BULK_CASES_MAX {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_cases",
            format!(
                "{} cases were selected; one claim moves at most {BULK_CASES_MAX}",
                selected.len()
            ),
        ));
    }
    let claims = tally_service::stolen_accounts::StolenAccountClaims {
        risk,
        credit: state.app.credit.as_deref(),
        gate: state.app.risk_gate.as_deref(),
    };
    let caller = viewer.principal.caller();
    let mut outcomes = Vec::new();
    for id in &selected {
        let outcome = claims
            .move_case(id, "claim", "", &caller)
            .await
            .map(|_| ())
            .map_err(|error| {
                let error = ApiError::from(error);
                format!("{} ({})", error.message, error.code)
            });
        outcomes.push((id.clone(), outcome));
    }
    let claimed = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .count();
    let content = html! {
        p { a href="/console/cases?mine=1&status=claimed" { "← My claimed cases" } }
        h1 { "Claimed " (claimed) " of " (outcomes.len()) " cases" }
        table {
            thead { tr { th { "Case" } th { "Outcome" } } }
            tbody {
                @for (id, outcome) in &outcomes {
                    tr {
                        td { a href=(format!("/console/cases/{id}")) { code { (id) } } }
                        @match outcome {
                            Ok(()) => { td { "claimed" } }
                            Err(reason) => { td.error { "refused: " (reason) } }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Cases claimed", content),
    ))
}

/// `POST /console/cases/{id}/evidence`: the case's evidence package as a JSON download,
/// what `GET /v1/risk/cases/{id}/evidence` gives, its export written in the case's trail
/// first. A form, not a link: the export writes, and carries the CSRF token.
pub async fn export_evidence(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:analyst")?;
    let risk = risk_service(&state)?;
    let package = crate::routes::risk::evidence_package(
        risk,
        state.app.evidence_signer.as_deref(),
        &viewer.principal,
        &id,
    )
    .await?;
    let body = serde_json::to_vec_pretty(&package).map_err(ApiError::internal)?;
    let file: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let disposition = format!("attachment; filename=\"case-{file}-evidence.json\"");
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
