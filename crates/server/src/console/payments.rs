//! Payments: every payment in a sorted, paged table, and a payment's page — its timeline
//! (every status change, and every hold and release of its delivery, with its time and
//! cause), its legs across sources, its refunds —
//! as `GET /v1/payments/{id}` gives it (`PaymentService::get`), money as the API's
//! decimal strings. An analyst releases an order's delivery held by risk control from
//! the page, through `PaymentService::release_delivery` as
//! `POST /v1/payments/{id}/delivery-release` does. Scopes: `payments:read` to see,
//! `risk:analyst` to release.

use super::layout::{csrf_field, page, require, respond, time, PageError};
use super::session::Viewer;
use super::table::{Table, TableQuery};
use super::ConsoleState;
use crate::routes::payments::payment_api_error;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;
use tally_core::{Amount, Currency};
use tally_service::credit::views::AmountView;
use tally_service::payments::views::PaymentView;
use tally_service::payments::PaymentService;
use tally_store::lists::PAYMENT_SORTS;

/// Payments on one page of the table.
const PAYMENTS_PER_PAGE: i64 = 50;

pub(super) fn payment_service(state: &ConsoleState) -> Result<&Arc<PaymentService>, PageError> {
    state.app.payments.as_ref().ok_or_else(|| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payments_unavailable",
            "the payment service is not running in this process",
        )
    })
}

/// An amount as the API writes it: its exact decimal string and currency.
pub(super) fn money(amount: &AmountView) -> String {
    format!("{} {}", amount.value, amount.currency)
}

/// Minor units of a stored row as the API writes them; the code as stored when it is not
/// a currency Tally knows.
fn stored_money(minor: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(currency) => format!(
            "{} {currency}",
            Amount::new(minor, currency).to_decimal_string()
        ),
        Err(_) => format!("{minor} minor units of {currency}"),
    }
}

/// `GET /console/payments`: every payment, sorted and paged.
pub async fn list(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TableQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let service = payment_service(&state)?;
    let table = Table::read(
        &query,
        "/console/payments",
        &PAYMENT_SORTS,
        true,
        PAYMENTS_PER_PAGE,
    )?;
    let rows = service.database().payments_list(&table.list).await?;
    let (rows, more) = table.cut(rows);
    let content = html! {
        h1 { "Payments" }
        form.filters method="get" action="/console/payments/find" {
            label { "Payment id " input type="text" name="id" required; }
            button type="submit" { "Open" }
        }
        @if rows.is_empty() {
            p { "No payments." }
        } @else {
            table {
                thead { tr {
                    th { "Payment" }
                    (table.header("Merchant", "merchant"))
                    (table.header("Customer", "customer"))
                    (table.header("Amount", "amount"))
                    (table.header("Status", "status"))
                    (table.header("Created", "created_at"))
                } }
                tbody {
                    @for row in &rows {
                        tr {
                            td { a href=(format!("/console/payments/{}", row.id)) { code { (row.id) } } }
                            td { a href=(format!("/console/merchants/{}", row.merchant_id)) { (row.merchant_id) } }
                            td { code { (row.customer) } }
                            td.number { (stored_money(row.amount_minor, &row.currency)) }
                            td { (row.status.replace('_', " ")) }
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
        page(Some(&viewer), "Payments", content),
    ))
}

#[derive(Debug, Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    id: String,
}

/// `GET /console/payments/find?id=`: to the payment's page.
pub async fn find(
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<FindQuery>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let id = query.id.trim();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{id:?} is not a payment id"),
        ));
    }
    Ok(Redirect::to(&format!("/console/payments/{id}")).into_response())
}

fn legs_table(payment: &PaymentView) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Leg" } th { "Source" } th { "Status" } th.number { "Amount" }
                th.number { "Captured" } th.number { "Refunded" } th.number { "Refunding" } th { "Detail" }
            } }
            tbody {
                @for (index, leg) in payment.legs.iter().enumerate() {
                    tr {
                        td.number { (index) }
                        td { (leg.kind.replace('_', " ")) }
                        td { (leg.status) }
                        td.number { (money(&leg.amount)) }
                        td.number { (money(&leg.captured)) }
                        td.number { (money(&leg.refunded)) }
                        td.number { (money(&leg.refunding)) }
                        td {
                            @if let Some(account) = leg.credit_account_id { "credit account " (account) }
                            @if let Some(term) = leg.term { ", " (term) " installments" }
                            @if let Some(plan) = leg.credit_plan_id { ", plan " (plan) }
                            @if let Some(token) = &leg.card_token { "card " code { (token) } }
                        }
                    }
                }
            }
        }
    }
}

fn refunds_section(payment: &PaymentView) -> Markup {
    html! {
        section {
            h2 { "Refunds" }
            @if payment.refunds.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr {
                        th { "Refund" } th { "Created" } th.number { "Amount" } th { "Policy" }
                        th { "Parts by leg" } th { "Status" }
                    } }
                    tbody {
                        @for refund in &payment.refunds {
                            tr {
                                td { code { (refund.id) } }
                                td { (refund.created_at) }
                                td.number { (money(&refund.amount)) }
                                td { (refund.policy.replace('_', " ")) }
                                td { @for (leg, part) in refund.parts.iter().enumerate() {
                                    "leg " (leg) ": " (money(part)) br;
                                } }
                                td {
                                    (refund.status)
                                    @if let Some(failure) = &refund.failure {
                                        ": " code { (failure.code) } " " (failure.message)
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

/// The payment's status changes and its delivery's holds and releases, in the order of
/// their times (a status change first when both have the same time: risk control holds
/// a delivery once the payment is authorised).
fn timeline(payment: &PaymentView) -> Vec<Markup> {
    let when = |at: &str| at.parse::<jiff::Timestamp>().ok();
    let mut rows: Vec<(Option<jiff::Timestamp>, Markup)> = payment
        .transitions
        .iter()
        .map(|change| {
            (
                when(&change.at),
                html! { tr {
                    td { (change.at) } td { (change.from.replace('_', " ")) }
                    td { (change.to.replace('_', " ")) } td { (change.cause) }
                } },
            )
        })
        .collect();
    rows.extend(payment.delivery_changes.iter().map(|change| {
        (
            when(&change.at),
            html! { tr.delivery {
                td { (change.at) }
                td colspan="2" {
                    @if change.held { "delivery held by risk control" } @else { "delivery released" }
                }
                td { (change.cause) }
            } },
        )
    }));
    // Stable: rows of the same time keep the order above.
    rows.sort_by_key(|(at, _)| *at);
    rows.into_iter().map(|(_, row)| row).collect()
}

/// `GET /console/payments/{id}`: the payment's timeline, legs and refunds.
pub async fn payment_page(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "payments:read")?;
    let service = payment_service(&state)?;
    let payment = service
        .get(&id, state.app.clock.now())
        .await
        .map_err(payment_api_error)?;
    let content = html! {
        p { a href="/console/payments" { "← Payments" } }
        h1 { "Payment " code { (payment.id) } }
        dl.facts {
            dt { "Status" } dd { strong { (payment.status.replace('_', " ")) } }
            dt { "Amount" } dd { (money(&payment.amount)) }
            dt { "Merchant" } dd { a href=(format!("/console/merchants/{}", payment.merchant_id)) { (payment.merchant_id) } }
            dt { "Order" } dd { (payment.order_reference) }
            dt { "Customer" } dd { code { (payment.customer) } }
            dt { "Capture" } dd { (payment.capture_method)
                @if let Some(before) = &payment.capture_before { ", before " (before) } }
            dt { "Created" } dd { (payment.created_at) }
            dt { "Expires" } dd { (payment.expires_at) }
            dt { "Delivery" } dd { @if payment.delivery_held { strong { "held by risk control" } } @else { "not held" } }
            @if let Some(failure) = &payment.failure {
                dt { "Failure" } dd.error { code { (failure.code) } " " (failure.message)
                    @if let Some(leg) = failure.leg { " (leg " (leg) ")" } }
            }
        }
        @if payment.delivery_held && viewer.principal.has("risk:analyst") {
            form.move method="post" action=(format!("/console/payments/{}/delivery-release", payment.id)) {
                (csrf_field(&viewer))
                button type="submit" { "Release delivery" }
            }
        }
        section {
            h2 { "Timeline" }
            table {
                thead { tr { th { "When" } th { "From" } th { "To" } th { "Cause" } } }
                tbody {
                    @for row in timeline(&payment) { (row) }
                }
            }
        }
        section {
            h2 { "Sources" }
            (legs_table(&payment))
        }
        (refunds_section(&payment))
    };
    Ok(respond(
        StatusCode::OK,
        page(Some(&viewer), "Payment", content),
    ))
}

/// `POST /console/payments/{id}/delivery-release`: the analyst releases the held
/// delivery, then back to the payment (303). The idempotency key is the API key's and the
/// payment's: sending the form twice releases once, as a retried API call would.
pub async fn release_delivery(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    require(&viewer, "risk:analyst")?;
    let service = payment_service(&state)?;
    let key = format!("{}:console-delivery-release:{id}", viewer.principal.key_id);
    let payment = service
        .release_delivery(&key, &id, state.app.clock.now())
        .await
        .map_err(payment_api_error)?;
    Ok(Redirect::to(&format!("/console/payments/{}", payment.id)).into_response())
}
