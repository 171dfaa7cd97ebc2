//! Rules: the risk engine's rule set versions (which is live), the activation requests with
//! their four-eyes decision, and the upload of a new version, refused with the rule and line
//! where it does not compile. Each action is the call its API route makes
//! (`RiskService::upload_rule_set`, `decide_activation`); scope `risk:admin`, as
//! `/v1/risk/rule-sets` and `/v1/risk/activation-requests`.

use super::layout::{csrf_field, page, require, respond, time, PageError};
use super::session::Viewer;
use super::ConsoleState;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;
use tally_service::risk::backtest::StoredBacktest;
use tally_service::risk::RiskService;

/// Activation requests shown, newest first.
const REQUESTS_SHOWN: i64 = 20;

fn risk_service(state: &ConsoleState) -> Result<&Arc<RiskService>, PageError> {
    state.risk.as_ref().ok_or_else(|| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "risk_unavailable",
            "this process does not serve the risk engine",
        )
    })
}

/// What the page says after a move: a notice, or the refusal of an upload with the source
/// sent (kept in the form, so the fault can be fixed where it is).
enum Outcome<'a> {
    Nothing,
    Notice(String),
    Refused { message: &'a str, source: &'a str },
}

async fn rules_page(
    risk: &RiskService,
    viewer: &Viewer,
    outcome: Outcome<'_>,
) -> Result<Markup, PageError> {
    let (active, versions) = {
        let state = risk.state.lock().await;
        (state.engine.active_version(), state.engine.versions())
    };
    let requests: Vec<_> = risk
        .store
        .activation_requests(REQUESTS_SHOWN)
        .await?
        .into_iter()
        .map(|request| risk.opened_activation_request(request))
        .collect();
    let (error, source) = match &outcome {
        Outcome::Refused { message, source } => (Some(*message), *source),
        _ => (None, ""),
    };
    let content = html! {
        h1 { "Rules" }
        @if let Outcome::Notice(notice) = &outcome {
            p.notice role="status" { (notice) }
        }
        p { "Live: version " strong { (active) } "." }
        table {
            thead { tr {
                th { "Version" } th { "Name" } th.number { "Rules" } th.number { "Shadow rules" }
                th.number { "Features" } th { "Live" }
            } }
            tbody {
                @for version in versions.iter().rev() {
                    tr {
                        td.number { (version.version) } td { (version.name) }
                        td.number { (version.rules) } td.number { (version.shadow_rules) }
                        td.number { (version.features) }
                        td { @if version.active { strong { "live" } } }
                    }
                }
            }
        }
        section {
            h2 { "Activation requests" }
            p.muted { "A version goes live when a key other than the requester's approves it." }
            @if requests.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr {
                        th { "Version" } th { "Asked" } th { "By" } th { "Note" } th { "Status" } th { "Decide" }
                    } }
                    tbody {
                        @for request in &requests {
                            tr {
                                td.number { (request.version) }
                                td { (time(request.requested_at)) }
                                td { (request.requested_by) }
                                td { (request.note) }
                                td { (request.status)
                                    @if let Some(by) = &request.decided_by { " by " (by) } }
                                td {
                                    @if request.status == "pending" {
                                        @for (decision, label) in [("approve", "Approve"), ("reject", "Reject")] {
                                            form.decide method="post"
                                                action=(format!("/console/rules/activation-requests/{}/{decision}", request.id)) {
                                                (csrf_field(viewer))
                                                button type="submit" { (label) " version " (request.version) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Upload a version" }
            p.muted { "Checked before it is stored: a rule that does not compile is refused with its line, and the live version keeps running." }
            @if let Some(error) = error {
                p.error #upload-error role="alert" { (error) }
            }
            form.upload method="post" action="/console/rules" {
                (csrf_field(viewer))
                label for="source" { "Rule set (TOML)" }
                textarea #source name="source" rows="16" required
                    aria-describedby=[error.map(|_| "upload-error")] { (source) }
                label { input type="checkbox" name="activate" value="1"; " Ask for it to go live" }
                button type="submit" { "Upload" }
            }
        }
        section {
            h2 { "Back-test a candidate" }
            p.muted { "Replays the stored events of the last 90 days through the candidate and the live version. Nothing is stored and nothing goes live." }
            form.upload method="post" action="/console/rules/backtest" {
                (csrf_field(viewer))
                label for="candidate" { "Candidate rule set (TOML)" }
                textarea #candidate name="source" rows="12" required {}
                button type="submit" { "Back-test" }
            }
        }
    };
    Ok(page(Some(viewer), "Rules", content))
}

#[derive(Debug, Default, Deserialize)]
pub struct RulesQuery {
    uploaded: Option<String>,
    decided: Option<String>,
}

/// `GET /console/rules`: the versions, the activation requests and the upload form.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<RulesQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:admin")?;
    let risk = risk_service(&state)?;
    // Only digits and known words are echoed back from the address.
    let notice = match (query.uploaded.as_deref(), query.decided.as_deref()) {
        (Some(version), _) if version.parse::<u32>().is_ok() => {
            Outcome::Notice(format!("Version {version} uploaded."))
        }
        (_, Some(decision @ ("approved" | "rejected"))) => {
            Outcome::Notice(format!("Activation request {decision}."))
        }
        _ => Outcome::Nothing,
    };
    let markup = rules_page(risk, &viewer, notice).await?;
    Ok(respond(StatusCode::OK, markup))
}

#[derive(Debug, Deserialize)]
pub struct UploadForm {
    #[serde(default)]
    source: String,
    #[serde(default)]
    activate: Option<String>,
}

/// `POST /console/rules`: the upload. Stored → back to the page (303) with a notice; a rule
/// set that does not compile → the page again, 422, with the fault and the source sent.
pub async fn upload(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<UploadForm>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:admin")?;
    let risk = risk_service(&state)?;
    let activate = form.activate.is_some();
    match risk
        .upload_rule_set(&form.source, activate, &viewer.principal.caller())
        .await
    {
        Ok(uploaded) => Ok(
            Redirect::to(&format!("/console/rules?uploaded={}", uploaded.version)).into_response(),
        ),
        Err(error)
            if matches!(
                error.code(),
                "risk_invalid_rule_set" | "risk_rule_does_not_compile"
            ) =>
        {
            let message = error.to_string();
            let outcome = Outcome::Refused {
                message: &message,
                source: &form.source,
            };
            let markup = rules_page(risk, &viewer, outcome).await?;
            Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, markup))
        }
        Err(error) => Err(ApiError::from(error).into()),
    }
}

/// `POST /console/rules/activation-requests/{id}/{decision}`: approve or reject, then back
/// to the page (303).
pub async fn decide(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path((id, decision)): Path<(String, String)>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:admin")?;
    let risk = risk_service(&state)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(PageError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{other:?} is not approve or reject"),
            ))
        }
    };
    let decided = risk
        .decide_activation(&id, approve, &viewer.principal.caller())
        .await
        .map_err(ApiError::from)?;
    Ok(Redirect::to(&format!(
        "/console/rules?decided={}",
        decided.request.status
    ))
    .into_response())
}

/// `part` of `whole` as a percentage to one decimal, in integers (no float between the
/// counts and the page); "—" when `whole` is 0.
fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "—".to_string();
    }
    let tenths = (part as u128 * 1000 + whole as u128 / 2) / whole as u128;
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// The back-test's results: precision and recall against the analysts' decisions, the
/// actions and rule hits, and the stored decisions that would change.
fn backtest_results(result: &StoredBacktest) -> Markup {
    let report = &result.report;
    html! {
        h1 { "Back-test of " (report.rule_set) }
        p { a href="/console/rules" { "← Rules" } }
        p { (report.events) " stored events replayed; compared with live version "
            strong { (result.live_version) } "." }
        section {
            h2 { "Against the analysts' decisions" }
            p.muted { (result.labelled_fraud) " events labelled fraud (a rejected review or held delivery), "
                (result.labelled_clean) " labelled clean (approved); every other event counts as clean." }
            @if let Some(labels) = &report.labels {
                @let flagged = labels.true_positives + labels.false_positives;
                dl.facts {
                    dt { "Precision" } dd { strong { (percent(labels.true_positives, flagged)) } " — "
                        (labels.true_positives) " of " (flagged) " flagged events were fraud" }
                    dt { "Recall" } dd { strong { (percent(labels.true_positives, labels.fraud_events)) } " — "
                        (labels.true_positives) " of " (labels.fraud_events) " fraud events flagged" }
                    dt { "False positives" } dd { (labels.false_positives) " of " (labels.clean_events) " clean events" }
                }
            }
            @if let Some(live) = report.live_diff.as_ref().and_then(|diff| diff.live_labels.as_ref()) {
                @let flagged = live.true_positives + live.false_positives;
                p { "The live version: precision " (percent(live.true_positives, flagged))
                    ", recall " (percent(live.true_positives, live.fraud_events)) "." }
            }
        }
        section {
            h2 { "Actions and rule hits" }
            table {
                thead { tr { th { "Action" } th.number { "Events" } } }
                tbody { @for (action, count) in &report.actions {
                    tr { td { (action.replace('_', " ")) } td.number { (count) } }
                } }
            }
            table {
                thead { tr { th { "Rule" } th { "Mode" } th.number { "Hits" } } }
                tbody { @for hits in &report.rule_hits {
                    tr { td { code { (hits.rule_id) } } td { (format!("{:?}", hits.mode).to_lowercase()) } td.number { (hits.hits) } }
                } }
            }
        }
        section {
            h2 { "Decisions that would change" }
            p { (result.changed_from_stored) " stored decisions would be decided otherwise"
                @if result.changed.len() < result.changed_from_stored { "; the first " (result.changed.len()) " are listed" } "." }
            @if let Some(diff) = &report.live_diff {
                p.muted { "Against the live version replayed now: " (diff.events_changed) " events change." }
            }
            @if !result.changed.is_empty() {
                table {
                    thead { tr { th { "Sequence" } th { "When" } th { "Event" } th { "Customer" } th { "Was" } th { "Would be" } th { "Reason codes" } } }
                    tbody { @for change in &result.changed {
                        tr {
                            td.number { (change.sequence) } td { (time(change.at)) }
                            td { code { (change.event_id) } } td { code { (change.customer) } }
                            td { (change.was.replace('_', " ")) } td { strong { (change.would_be.replace('_', " ")) } }
                            td { @for reason in &change.reasons { code { (reason) } " " } }
                        }
                    } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct BacktestForm {
    #[serde(default)]
    source: String,
}

/// `POST /console/rules/backtest`: the candidate replayed against the stored history
/// (`RiskService::backtest_stored`, as `POST /v1/risk/rule-sets/backtests`); a candidate
/// that does not compile → the Rules page again, 422, with the fault.
pub async fn backtest(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<BacktestForm>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:admin")?;
    let risk = risk_service(&state)?;
    match risk.backtest_stored(&form.source).await {
        Ok(result) => Ok(respond(
            StatusCode::OK,
            page(Some(&viewer), "Back-test", backtest_results(&result)),
        )),
        Err(error)
            if matches!(
                error.code(),
                "risk_invalid_rule_set" | "risk_rule_does_not_compile"
            ) =>
        {
            let message = format!("The candidate was not back-tested: {error}");
            let outcome = Outcome::Refused {
                message: &message,
                source: &form.source,
            };
            let markup = rules_page(risk, &viewer, outcome).await?;
            Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, markup))
        }
        Err(error) => Err(ApiError::from(error).into()),
    }
}
