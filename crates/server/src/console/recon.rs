//! Reconciliation of Tally's books: the runs (date, records on each side, what is left
//! open, the summary by class), a run's exceptions as a worklist with filters (class, state,
//! assigned to me), and an exception assigned to the viewer or resolved with a note or with
//! an adjusting entry. Every read and move goes through `ReconWorklist`, as `/v1/recon`
//! does; `recon:read` to see, `recon:write` to act. An exception is assigned to the key's
//! name (the API's assignee is a person's name too), so "assigned to me" is that name.

use super::layout::{csrf_field, page, require, respond, PageError};
use super::session::Viewer;
use super::table::{Table, TableQuery};
use super::ConsoleState;
use crate::routes::recon::recon_error;
use crate::wire::recon::{AdjustingEntryRequest, AdjustingLegRequest, ResolveExceptionRequest};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use tally_service::recon::views::RunSummary;
use tally_service::recon::worklist::{CLASSES, STATES};
use tally_service::recon::{ExceptionView, ReconWorklist};
use tally_store::recon::{ExceptionFilter, RECON_EXCEPTION_SORTS, RECON_RUN_SORTS};

/// Runs on one page of the list.
const RUNS_PER_PAGE: i64 = 30;
/// Exceptions on one page of a run's worklist.
const EXCEPTIONS_PER_PAGE: i64 = 50;

fn worklist(state: &ConsoleState) -> ReconWorklist {
    ReconWorklist::new(state.app.database.clone(), state.app.writer.clone())
}

fn non_blank(value: Option<&String>) -> Option<&str> {
    value
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
}

/// A run's exceptions by class, as counts: every class but `matched`, summed over
/// currencies.
fn break_counts(summary: &RunSummary) -> Vec<(String, u64)> {
    summary
        .classes
        .iter()
        .filter(|(class, _)| class.as_str() != "matched")
        .map(|(class, by_currency)| {
            let count = by_currency.values().map(|totals| totals.count).sum();
            (class.replace('_', " "), count)
        })
        .collect()
}

/// `GET /console/recon`: the runs, latest first unless sorted by a column's header.
pub async fn runs(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TableQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "recon:read")?;
    let table = Table::read(
        &query,
        "/console/recon",
        &RECON_RUN_SORTS,
        true,
        RUNS_PER_PAGE,
    )?;
    let runs = worklist(&state)
        .runs_page(&table.list)
        .await
        .map_err(recon_error)?;
    let (runs, more) = table.cut(runs);
    let content = html! {
        h1 { "Reconciliation" }
        p.muted {
            "Each business date, the channel operations Tally's journal recorded matched against "
            "the channel's settlement file (" code { "tally recon books" } ", " code { "tally daily" } ")."
        }
        @if runs.is_empty() {
            p { "No reconciliation run yet." }
        } @else {
            table {
                thead { tr {
                    (table.header("Business date", "business_date"))
                    th.number { "Ledger records" }
                    th.number { "Channel records" }
                    (table.header("Matched", "matched"))
                    (table.header("Exceptions", "exceptions"))
                    (table.header("Unresolved", "unresolved"))
                    th { "Status" }
                    th { "Exceptions by class" }
                } }
                tbody {
                    @for (run, unresolved) in &runs {
                        tr {
                            td { a href=(format!("/console/recon/{}", run.business_date)) { (run.business_date) } }
                            td.number { (run.ledger_records) }
                            td.number { (run.channel_records) }
                            td.number { (run.matched) }
                            td.number { (run.exceptions) }
                            td.number { (unresolved) }
                            td {
                                @if *unresolved == 0 { "reconciled" }
                                @else { strong { "breaks open" } }
                            }
                            td {
                                @let breaks = break_counts(&run.summary);
                                @if breaks.is_empty() { "none" }
                                @for (index, (class, count)) in breaks.iter().enumerate() {
                                    @if index > 0 { ", " }
                                    (class) " " (count)
                                }
                            }
                        }
                    }
                }
            }
        }
        (table.pages(more))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Reconciliation", content),
    ))
}

/// A run's worklist filters, sort and page; a blank filter is no filter.
#[derive(Debug, Default, Deserialize)]
pub struct WorklistQuery {
    class: Option<String>,
    state: Option<String>,
    mine: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    page: Option<String>,
}

/// The summary of a run by class and currency: counts and the sums of each side.
fn summary_table(summary: &RunSummary) -> Markup {
    html! {
        table {
            caption.visually-hidden { "Summary by class and currency" }
            thead { tr {
                th { "Class" } th { "Currency" } th.number { "Count" }
                th.number { "Ledger amount" } th.number { "Channel amount" }
            } }
            tbody {
                @for (class, by_currency) in &summary.classes {
                    @for (currency, totals) in by_currency {
                        tr {
                            td { (class.replace('_', " ")) }
                            td { (currency) }
                            td.number { (totals.count) }
                            td.number { (totals.ledger_amount) " " (currency) }
                            td.number { (totals.channel_amount) " " (currency) }
                        }
                    }
                }
            }
        }
    }
}

/// An amount of an exception as the API gives it, or a dash for a side that lacks it.
fn amount(value: Option<&String>, currency: &str) -> String {
    value.map_or("—".to_string(), |value| format!("{value} {currency}"))
}

/// The form that assigns the exception to the viewer.
fn assign_form(viewer: &Viewer, exception: &ExceptionView) -> Markup {
    html! {
        form.inline method="post" action=(format!("/console/recon/exceptions/{}/assign", exception.id)) {
            (csrf_field(viewer))
            // The id, hidden, names which exception the button assigns; the visible words
            // stay the start of the name, as speech input expects.
            button type="submit" { "Assign to me" span.visually-hidden { " " (exception.id) } }
        }
    }
}

/// `GET /console/recon/{date}`: the run's summary and its exceptions.
pub async fn run_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(date): Path<String>,
    Query(query): Query<WorklistQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "recon:read")?;
    let worklist = worklist(&state);
    let run = worklist.run(&date).await.map_err(recon_error)?;
    let class = non_blank(query.class.as_ref()).map(str::to_string);
    let state_filter = non_blank(query.state.as_ref()).map(str::to_string);
    let mine = non_blank(query.mine.as_ref()).is_some();
    let mut filters = Vec::new();
    if let Some(class) = &class {
        filters.push(("class".to_string(), class.clone()));
    }
    if let Some(state) = &state_filter {
        filters.push(("state".to_string(), state.clone()));
    }
    if mine {
        filters.push(("mine".to_string(), "1".to_string()));
    }
    let path = format!("/console/recon/{}", run.business_date);
    let table = Table::read(
        &TableQuery {
            sort: query.sort.clone(),
            order: query.order.clone(),
            page: query.page.clone(),
        },
        &path,
        &RECON_EXCEPTION_SORTS,
        false,
        EXCEPTIONS_PER_PAGE,
    )?
    .with_filters(filters);
    let filter = ExceptionFilter {
        business_date: Some(run.business_date.clone()),
        class: class.clone(),
        state: state_filter.clone(),
        assignee: mine.then(|| viewer.principal.name.clone()),
    };
    let exceptions = worklist
        .exceptions_page(&filter, &table.list)
        .await
        .map_err(recon_error)?;
    let (exceptions, more) = table.cut(exceptions);
    let may_act = viewer.principal.has("recon:write");
    let content = html! {
        p { a href="/console/recon" { "← Every run" } }
        h1 { "Reconciliation of " (run.business_date) }
        dl.facts {
            dt { "Settlement file" } dd { code { (run.settlement_file) } }
            dt { "Ledger records" } dd { (run.ledger_records) }
            dt { "Channel records" } dd { (run.channel_records) }
            dt { "Matched" } dd { (run.matched) }
            dt { "Exceptions opened" } dd { (run.exceptions) }
            dt { "Carried in, of them matched" } dd { (run.carried_in) ", " (run.carried_matched) }
            dt { "Unreadable rows" } dd { (run.summary.bad_rows) }
            dt { "Reconciled at" } dd { (run.created_at) }
        }
        @if !run.summary.control_exceptions.is_empty() {
            h2 { "Control totals that do not hold" }
            ul { @for control in &run.summary.control_exceptions { li.error { (control) } } }
        }
        h2 { "Summary by class" }
        (summary_table(&run.summary))
        h2 { "Exceptions" }
        form.filters method="get" action=(path) {
            label { "Class "
                select name="class" {
                    option value="" selected[class.is_none()] { "any" }
                    @for option in CLASSES {
                        option value=(option) selected[class.as_deref() == Some(option)] {
                            (option.replace('_', " "))
                        }
                    }
                }
            }
            label { "State "
                select name="state" {
                    option value="" selected[state_filter.is_none()] { "any" }
                    @for option in STATES {
                        option value=(option) selected[state_filter.as_deref() == Some(option)] { (option) }
                    }
                }
            }
            label { input type="checkbox" name="mine" value="1" checked[mine]; " Assigned to me" }
            button type="submit" { "Show" }
        }
        @if exceptions.is_empty() {
            p { "No exceptions." }
        } @else {
            table.worklist {
                thead { tr {
                    (table.header("Exception", "id"))
                    (table.header("Class", "class"))
                    th { "Reference" }
                    (table.header("Ledger amount", "ledger_amount"))
                    (table.header("Channel amount", "channel_amount"))
                    (table.header("State", "state"))
                    (table.header("Assignee", "assignee"))
                    @if may_act { th { "Action" } }
                } }
                tbody {
                    @for exception in &exceptions {
                        tr {
                            td { a href=(format!("/console/recon/exceptions/{}", exception.id)) { code { (exception.id) } } }
                            td { (exception.class.replace('_', " ")) }
                            td { code { (exception.reference) } }
                            td.number { (amount(exception.ledger_amount.as_ref(), &exception.currency)) }
                            td.number { (amount(exception.channel_amount.as_ref(), &exception.currency)) }
                            td { (exception.state) }
                            td { (exception.assignee.as_deref().unwrap_or("—")) }
                            @if may_act {
                                td {
                                    @if exception.state != "resolved"
                                        && exception.assignee.as_deref() != Some(viewer.principal.name.as_str()) {
                                        (assign_form(&viewer, exception))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (table.pages(more))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Reconciliation run", content),
    ))
}

/// `GET /console/recon/exceptions/{id}`: the exception and, to a key with `recon:write`,
/// the forms that assign it and resolve it.
pub async fn exception_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "recon:read")?;
    let exception = worklist(&state).exception(&id).await.map_err(recon_error)?;
    let may_act = viewer.principal.has("recon:write") && exception.state != "resolved";
    let action = format!("/console/recon/exceptions/{}/resolve", exception.id);
    let content = html! {
        p { a href=(format!("/console/recon/{}", exception.business_date)) { "← The run of " (exception.business_date) } }
        h1 { "Exception " code { (exception.id) } }
        dl.facts {
            dt { "Class" } dd { (exception.class.replace('_', " ")) }
            dt { "State" } dd { strong { (exception.state) } }
            dt { "Reference" } dd { code { (exception.reference) } }
            dt { "Ledger amount" } dd { (amount(exception.ledger_amount.as_ref(), &exception.currency)) }
            dt { "Channel amount" } dd { (amount(exception.channel_amount.as_ref(), &exception.currency)) }
            dt { "Recorded in the books" } dd { (exception.ledger_at.as_deref().unwrap_or("—")) }
            dt { "Assignee" } dd { (exception.assignee.as_deref().unwrap_or("—")) }
            @if let Some(carried) = &exception.carried_to { dt { "Carried to" } dd { (carried) } }
            @if let Some(matched) = &exception.matched_on { dt { "Matched on" } dd { (matched) } }
            @if let Some(resolution) = &exception.resolution { dt { "Resolution" } dd { (resolution.replace('_', " ")) } }
            @if let Some(note) = &exception.note { dt { "Note" } dd.note { (note) } }
            @if let Some(entry) = &exception.adjusting_entry_id { dt { "Adjusting entry" } dd { code { (entry) } } }
            dt { "Last changed" } dd { (exception.updated_at) }
        }
        @if may_act {
            section.actions {
                h2 { "Work the exception" }
                @if exception.assignee.as_deref() != Some(viewer.principal.name.as_str()) {
                    (assign_form(&viewer, &exception))
                }
                form.move.resolve-note method="post" action=(action) {
                    (csrf_field(&viewer))
                    label { "Why no money needs to move"
                        textarea name="note" rows="3" required {}
                    }
                    button type="submit" { "Resolve with a note" }
                }
                form.move.resolve-entry method="post" action=(action) {
                    (csrf_field(&viewer))
                    fieldset {
                        legend { "Resolve with an adjusting entry in " (exception.currency) }
                        label { "Note" textarea name="note" rows="2" required {} }
                        label { "Entry description" input type="text" name="description" required; }
                        label { "Debit account code" input type="text" name="debit_account" required; }
                        label { "Credit account code" input type="text" name="credit_account" required; }
                        label { "Amount" input type="text" name="amount" inputmode="decimal" required; }
                        input type="hidden" name="currency" value=(exception.currency);
                    }
                    button type="submit" { "Post the entry and resolve" }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Reconciliation exception", content),
    ))
}

/// `POST /console/recon/exceptions/{id}/assign`: the exception to this key's name, as
/// `POST /v1/recon/exceptions/{id}/assign` does; back to its run (303).
pub async fn assign(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "recon:write")?;
    let exception = worklist(&state)
        .assign(&id, &viewer.principal.name, state.app.clock.now())
        .await
        .map_err(recon_error)?;
    Ok(Redirect::to(&format!("/console/recon/exceptions/{}", exception.id)).into_response())
}

/// The resolve form: a note alone, or with the two legs of an adjusting entry.
#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    note: String,
    description: Option<String>,
    debit_account: Option<String>,
    credit_account: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
}

impl ResolveForm {
    /// The API's request for this form: the entry's fields become a two-leg entry, parsed
    /// by the API's own rules ([`ResolveExceptionRequest::parse`]).
    fn request(self) -> ResolveExceptionRequest {
        let text = |value: Option<String>| value.unwrap_or_default().trim().to_string();
        let adjusting = self.description.is_some()
            || self.debit_account.is_some()
            || self.credit_account.is_some()
            || self.amount.is_some();
        let adjusting_entry = adjusting.then(|| {
            let amount = text(self.amount);
            let currency = text(self.currency);
            let leg = |account: Option<String>, side: &str| AdjustingLegRequest {
                account_code: text(account),
                side: side.to_string(),
                amount: amount.clone(),
                currency: currency.clone(),
            };
            AdjustingEntryRequest {
                description: self.description.unwrap_or_default(),
                legs: vec![
                    leg(self.debit_account, "debit"),
                    leg(self.credit_account, "credit"),
                ],
            }
        });
        ResolveExceptionRequest {
            note: self.note,
            adjusting_entry,
        }
    }
}

/// `POST /console/recon/exceptions/{id}/resolve`: resolved with the note, or with the
/// adjusting entry posted first, as `POST /v1/recon/exceptions/{id}/resolve` does; back to
/// the exception (303).
pub async fn resolve(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, PageError> {
    require(&viewer, "recon:write")?;
    let resolution = form.request().parse()?;
    let exception = worklist(&state)
        .resolve(&id, resolution, state.app.clock.now())
        .await
        .map_err(recon_error)?;
    Ok(Redirect::to(&format!("/console/recon/exceptions/{}", exception.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(entry: bool) -> ResolveForm {
        ResolveForm {
            note: "booked to suspense".into(),
            description: entry.then(|| "bank-only row".into()),
            debit_account: entry.then(|| " recon-suspense-CNY ".into()),
            credit_account: entry.then(|| "bank-differences-CNY".into()),
            amount: entry.then(|| "10.00".into()),
            currency: Some("CNY".into()),
        }
    }

    #[test]
    fn a_note_alone_resolves_with_a_note_and_the_entry_fields_make_two_legs() {
        let request = form(false).request();
        assert!(request.adjusting_entry.is_none());
        let request = form(true).request();
        let entry = request.adjusting_entry.unwrap();
        assert_eq!(entry.legs.len(), 2);
        assert_eq!(entry.legs[0].account_code, "recon-suspense-CNY");
        assert_eq!(entry.legs[0].side, "debit");
        assert_eq!(entry.legs[1].side, "credit");
        assert_eq!(entry.legs[1].amount, "10.00");
        assert_eq!(entry.legs[1].currency, "CNY");
    }
}
