//! Merchants and settlement: every merchant in a sorted, paged table; a merchant's page —
//! status and its history, fee schedule, settlement terms, its settlement statements
//! across runs — as `GET /v1/merchants/{id}` gives it (`PaymentService::merchant_view`,
//! sealed fields masked); the settlement runs, and one run's statements as
//! `GET /v1/settlement/runs/{date}/statements` gives them. Money as the API's decimal
//! strings. Scope `payments:read`.

use super::layout::{page, require, respond, time, PageError};
use super::payments::payment_service;
use super::session::Viewer;
use super::table::{Table, TableQuery};
use super::ConsoleState;
use crate::routes::payments::payment_api_error;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use tally_core::Amount;
use tally_service::payments::error::PaymentServiceError;
use tally_service::payments::settlement::SettlementStatementView;
use tally_store::lists::{MERCHANT_SORTS, SETTLEMENT_RUN_SORTS};

/// Rows on one page of a table.
const ROWS_PER_PAGE: i64 = 50;
/// A merchant's statements on one page of its page.
const STATEMENTS_PER_PAGE: i64 = 30;

/// An amount as the API writes it.
fn exact(amount: &Amount) -> String {
    format!("{} {}", amount.to_decimal_string(), amount.currency())
}

/// A JSON value as text: a string without its quotes, an amount as its exact decimal
/// string and currency.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "—".to_string(),
        Value::Object(fields) => match (fields.get("value"), fields.get("currency")) {
            (Some(Value::String(amount)), Some(Value::String(currency))) => {
                format!("{amount} {currency}")
            }
            _ => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// `GET /console/merchants`: every merchant, sorted and paged.
pub async fn list(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TableQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let service = payment_service(&state)?;
    let table = Table::read(
        &query,
        "/console/merchants",
        &MERCHANT_SORTS,
        false,
        ROWS_PER_PAGE,
    )?;
    let rows = service.database().merchants_list(&table.list).await?;
    let (rows, more) = table.cut(rows);
    let content = html! {
        h1 { "Merchants" }
        p { a href="/console/settlement" { "Settlement runs →" } }
        @if rows.is_empty() {
            p { "No merchants." }
        } @else {
            table {
                thead { tr {
                    (table.header("Merchant", "id"))
                    (table.header("Status", "status"))
                    th { "Currency" }
                    (table.header("Category", "category"))
                    (table.header("Onboarded", "created_at"))
                } }
                tbody {
                    @for row in &rows {
                        tr {
                            td { a href=(format!("/console/merchants/{}", row.id)) { (row.id) } }
                            td { (row.status) }
                            td { (row.currency) }
                            td { (row.category_code) }
                            td { (time(row.created_at)) }
                        }
                    }
                }
            }
        }
        (table.pages(more))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Merchants", content),
    ))
}

/// Statements as a table; with `merchant_column`, which merchant each is of.
fn statements_table(statements: &[SettlementStatementView], merchant_column: bool) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Business date" }
                @if merchant_column { th { "Merchant" } }
                th { "Capture dates" } th.number { "Gross" } th.number { "Fees" }
                th.number { "Refunds" } th.number { "Reserve held" } th.number { "Reserve released" }
                th.number { "Net" } th.number { "Available after" } th.number { "Reserve after" }
            } }
            tbody {
                @for statement in statements {
                    tr {
                        td { a href=(format!("/console/settlement/{}", statement.business_date)) { (statement.business_date) } }
                        @if merchant_column {
                            td { a href=(format!("/console/merchants/{}", statement.merchant_id)) { (statement.merchant_id) } }
                        }
                        td {
                            @match statement.from_date {
                                Some(from) => { "after " (from) " through " (statement.through_date) }
                                None => { "through " (statement.through_date) }
                            }
                        }
                        td.number { (exact(&statement.gross)) }
                        td.number { (exact(&statement.fees)) }
                        td.number { (exact(&statement.refunds)) }
                        td.number { (exact(&statement.reserve_held)) }
                        td.number { (exact(&statement.reserve_released)) }
                        td.number { strong { (exact(&statement.net)) } }
                        td.number {
                            (exact(&statement.balances.available))
                            @if statement.carried { " (carried)" }
                        }
                        td.number { (exact(&statement.balances.reserve)) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct MerchantQuery {
    page: Option<String>,
}

/// `GET /console/merchants/{id}`: status, fees, terms and statements, masked.
pub async fn merchant_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(query): Query<MerchantQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let service = payment_service(&state)?;
    let privacy = state
        .app
        .privacy
        .as_deref()
        .ok_or_else(|| payment_api_error(PaymentServiceError::PrivacyKeysNotConfigured))?;
    let merchant = service
        .merchant_view(privacy, &id)
        .await
        .map_err(payment_api_error)?;
    // The statements page through the same table reading as the lists (one sort: by date).
    let table = Table::read(
        &TableQuery {
            page: query.page,
            ..TableQuery::default()
        },
        &format!("/console/merchants/{id}"),
        &["business_date"],
        true,
        STATEMENTS_PER_PAGE,
    )?;
    let statements = service
        .merchant_statements(&id, table.list.offset, table.list.limit)
        .await
        .map_err(payment_api_error)?;
    let (statements, more) = table.cut(statements);
    let fees = serde_json::to_value(&merchant.fees).unwrap_or(Value::Null);
    let terms = serde_json::to_value(&merchant.settlement).unwrap_or(Value::Null);
    let content = html! {
        p { a href="/console/merchants" { "← Merchants" } }
        h1 { "Merchant " (merchant.id) }
        dl.facts {
            dt { "Status" } dd { strong { (plain(&serde_json::to_value(merchant.status).unwrap_or(Value::Null))) } }
            dt { "Legal name" } dd.masked { (merchant.legal_name) }
            dt { "Licence number" } dd.masked { (merchant.licence_number) }
            dt { "Bank account" } dd.masked { (merchant.bank_account) }
            dt { "Category" } dd { (merchant.category_code) }
            dt { "Currency" } dd { (merchant.currency) }
            dt { "Time zone" } dd { (merchant.time_zone) }
            dt { "Onboarded" } dd { (merchant.created_at) }
        }
        section {
            h2 { "Status history" }
            table {
                thead { tr { th { "When" } th { "Status" } th { "Reason" } } }
                tbody {
                    @for change in &merchant.history {
                        tr { td { (change.at) } td { (change.status) } td { (change.reason) } }
                    }
                }
            }
        }
        section {
            h2 { "Fee schedule" }
            p.muted { "Rounding: " (plain(&fees["rounding"])) "; amounts in " (plain(&fees["currency"])) "." }
            table {
                thead { tr { th { "Method" } th.number { "Rate" } th.number { "Fixed" } th.number { "Minimum" } th.number { "Maximum" } } }
                tbody {
                    @if let Some(methods) = fees["fees"].as_object() {
                        @for (method, fee) in methods {
                            tr {
                                td { (method.replace('_', " ")) }
                                td.number { (plain(&fee["rate"])) }
                                td.number { (plain(&fee["fixed"])) }
                                td.number { (plain(&fee["minimum"])) }
                                td.number { (plain(&fee["maximum"])) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Settlement terms" }
            dl.facts {
                dt { "Delay" } dd { "T+" (plain(&terms["delay_days"])) " business days" }
                dt { "Reserve" } dd { (plain(&terms["reserve_basis_points"])) " basis points, held "
                    (plain(&terms["reserve_hold_days"])) " days" }
                dt { "Holidays" } dd {
                    @match terms["holidays"].as_array() {
                        Some(days) if !days.is_empty() => {
                            @for day in days { (plain(day)) " " }
                        }
                        _ => { "none" }
                    }
                }
            }
        }
        section {
            h2 { "Settlement statements" }
            @if statements.is_empty() {
                p { "None." }
            } @else {
                (statements_table(&statements, false))
            }
            (table.pages(more))
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Merchant", content),
    ))
}

/// `GET /console/settlement`: the settlement runs, sorted and paged.
pub async fn runs(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TableQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let service = payment_service(&state)?;
    let table = Table::read(
        &query,
        "/console/settlement",
        &SETTLEMENT_RUN_SORTS,
        true,
        ROWS_PER_PAGE,
    )?;
    let runs = service
        .settlement_runs(&table.list)
        .await
        .map_err(payment_api_error)?;
    let (runs, more) = table.cut(runs);
    let content = html! {
        h1 { "Settlement runs" }
        @if runs.is_empty() {
            p { "No runs." }
        } @else {
            table {
                thead { tr {
                    (table.header("Business date", "business_date"))
                    (table.header("Status", "status"))
                    (table.header("Merchants settled", "merchants_settled"))
                    th { "Started" } th { "Finished" }
                } }
                tbody {
                    @for run in &runs {
                        tr {
                            td { a href=(format!("/console/settlement/{}", run.business_date)) { (run.business_date) } }
                            td { (run.status) }
                            td.number { (run.merchants_settled) }
                            td { (run.started_at) }
                            td { (run.finished_at.map_or("—".to_string(), |at| at.to_string())) }
                        }
                    }
                }
            }
        }
        (table.pages(more))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Settlement runs", content),
    ))
}

/// `GET /console/settlement/{date}`: one run's statements.
pub async fn run_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(date): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let service = payment_service(&state)?;
    let business_date: jiff::civil::Date = date.parse().map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_date",
            format!("{date:?} is not a date such as 2026-06-01"),
        )
    })?;
    let run = service
        .settlement_run(business_date)
        .await
        .map_err(payment_api_error)?;
    let statements = service
        .settlement_statements(business_date, None)
        .await
        .map_err(payment_api_error)?;
    let content = html! {
        p { a href="/console/settlement" { "← Settlement runs" } }
        h1 { "Settlement of " (run.business_date) }
        dl.facts {
            dt { "Status" } dd { strong { (run.status) } }
            dt { "Merchants settled" } dd { (run.merchants_settled) }
            dt { "Started" } dd { (run.started_at) }
            dt { "Finished" } dd { (run.finished_at.map_or("—".to_string(), |at| at.to_string())) }
        }
        @if statements.is_empty() {
            p { "No statements." }
        } @else {
            (statements_table(&statements, true))
        }
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Settlement run", content),
    ))
}
