//! Merchant and settlement routes: onboard a merchant, read it (sealed fields masked),
//! change its status, replace its fee schedule and settlement terms; run the daily
//! settlement of a business date and read its statements as JSON or CSV.
//!
//! Onboarding is not retried by idempotency key: the merchant's id is its key, and a second
//! onboarding of an id (or of a licence number) answers `409`.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::routes::payments::{payment_error, payment_service};
use crate::state::AppState;
use crate::wire::merchants::{
    MerchantStatusRequest, MerchantTermsRequest, OnboardMerchantRequest, SettlementRunRequest,
    StatementsQuery,
};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tally_service::payments::merchants::MerchantView;
use tally_service::payments::settlement::{
    statements_csv, SettlementOptions, SettlementRunView, SettlementStatementList,
};
use tally_service::payments::PaymentServiceError;

fn answer<T: serde::Serialize>(
    status: StatusCode,
    result: Result<T, PaymentServiceError>,
) -> Response {
    match result {
        Ok(view) => (status, axum::Json(view)).into_response(),
        Err(error) => payment_error(error),
    }
}

#[utoipa::path(
    post, path = "/v1/merchants", tag = "merchants",
    request_body = OnboardMerchantRequest,
    responses(
        (status = 201, description = "The merchant, active, its legal name, licence number and bank account sealed and shown masked; its ledger accounts (pending, available, reserve, payable) opened", body = MerchantView),
        (status = 409, description = "A merchant with this id (`merchant_exists`) or this licence number (`merchant_licence_taken`) is onboarded already", body = ErrorBody),
        (status = 422, description = "A field that does not parse, named in the message (`invalid_merchant_field`: `id`, `category_code`, `time_zone`, `currency`, `fee_schedule.fees.card.rate`, `settlement.holidays[0]`, …)", body = ErrorBody),
        (status = 503, description = "No personal-data keys are configured (`privacy_keys_not_configured`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn onboard_merchant(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<OnboardMerchantRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let merchant = request.parse()?;
    Ok(answer(
        StatusCode::CREATED,
        service
            .onboard_merchant(
                state.privacy.as_deref(),
                merchant,
                Some(&principal.key_id),
                state.clock.now(),
            )
            .await,
    ))
}

#[utoipa::path(
    get, path = "/v1/merchants/{id}", tag = "merchants",
    params(("id" = String, Path, description = "Merchant id")),
    responses(
        (status = 200, description = "The merchant, sealed fields masked, with its status history", body = MerchantView),
        (status = 404, description = "No such merchant (`merchant_not_found`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys are configured", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_merchant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let Some(privacy) = state.privacy.as_deref() else {
        return Ok(payment_error(PaymentServiceError::PrivacyKeysNotConfigured));
    };
    Ok(answer(
        StatusCode::OK,
        service.merchant_view(privacy, &id).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/merchants/{id}/status", tag = "merchants",
    request_body = MerchantStatusRequest,
    params(("id" = String, Path, description = "Merchant id")),
    responses(
        (status = 200, description = "The merchant in its new status: active and suspended go either way, both may close, closed is final; only an active merchant takes payments", body = MerchantView),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 409, description = "A move not allowed, or to the status it has (`merchant_status_conflict`), or changed meanwhile (`payment_contended`)", body = ErrorBody),
        (status = 422, description = "A blank or over-long reason (`invalid_merchant_field`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys are configured", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn change_merchant_status(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(request): Json<MerchantStatusRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(
        StatusCode::OK,
        service
            .change_merchant_status(
                state.privacy.as_deref(),
                &id,
                request.status.status(),
                &request.reason,
                Some(&principal.key_id),
                state.clock.now(),
            )
            .await,
    ))
}

#[utoipa::path(
    put, path = "/v1/merchants/{id}/fee-schedule", tag = "merchants",
    request_body = MerchantTermsRequest,
    params(("id" = String, Path, description = "Merchant id")),
    responses(
        (status = 200, description = "The merchant with its new fee schedule (and settlement terms when given): payments created from now on are charged by it", body = MerchantView),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 409, description = "Changed meanwhile (`payment_contended`)", body = ErrorBody),
        (status = 422, description = "A field that does not parse, named in the message (`invalid_merchant_field`: `fee_schedule.rounding`, `fee_schedule.fees.credit_line_5`, `fee_schedule.fees.card.maximum`, `settlement.delay_days`, …)", body = ErrorBody),
        (status = 503, description = "No personal-data keys are configured", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn set_fee_schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<MerchantTermsRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let merchant = match service.merchant(&id).await {
        Ok(merchant) => merchant,
        Err(error) => return Ok(payment_error(error)),
    };
    let fees = request.fee_schedule.parse(merchant.currency)?;
    let settlement = match &request.settlement {
        Some(terms) => terms.parse()?,
        None => merchant.settlement.clone(),
    };
    Ok(answer(
        StatusCode::OK,
        service
            .set_merchant_terms(
                state.privacy.as_deref(),
                &id,
                fees,
                settlement,
                state.clock.now(),
            )
            .await,
    ))
}

#[utoipa::path(
    post, path = "/v1/settlement/runs", tag = "settlement",
    request_body = SettlementRunRequest,
    responses(
        (status = 200, description = "The run of the date, done: every merchant's due captures moved from pending to available, reserves held and released, a statement each. Asked again it answers the same and moves nothing; a run stopped mid-way is resumed", body = SettlementRunView),
        (status = 422, description = "The date is not over yet in the service's zone or in some merchant's zone (`settlement_date_not_closed`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn run_settlement(
    State(state): State<AppState>,
    Json(request): Json<SettlementRunRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(
        StatusCode::OK,
        service
            .run_settlement(
                request.business_date,
                state.clock.now(),
                SettlementOptions::default(),
            )
            .await,
    ))
}

fn parse_date(text: &str) -> Result<jiff::civil::Date, ApiError> {
    text.parse().map_err(|_| {
        ApiError::unprocessable(
            "invalid_business_date",
            format!("{text:?} is not a date (YYYY-MM-DD)"),
        )
    })
}

async fn statements(
    state: &AppState,
    date: &str,
    query: &StatementsQuery,
    csv: bool,
) -> Result<Response, ApiError> {
    let service = payment_service(state)?;
    let date = parse_date(date)?;
    let statements = match service
        .settlement_statements(date, query.merchant_id.as_deref())
        .await
    {
        Ok(statements) => statements,
        Err(error) => return Ok(payment_error(error)),
    };
    if csv {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            statements_csv(&statements),
        )
            .into_response());
    }
    Ok((
        StatusCode::OK,
        axum::Json(SettlementStatementList { statements }),
    )
        .into_response())
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"))
}

#[utoipa::path(
    get, path = "/v1/settlement/runs/{business_date}/statements", tag = "settlement",
    params(
        ("business_date" = String, Path, description = "The run's date, YYYY-MM-DD"),
        StatementsQuery,
    ),
    responses(
        (status = 200, description = "The run's statements by merchant: gross, fees, refunds, reserve held and released, net, balances after, and whether a negative balance is carried; CSV (`text/csv`) when the request accepts it", body = SettlementStatementList),
        (status = 404, description = "No run of that date (`settlement_run_not_found`), or no such merchant (`merchant_not_found`)", body = ErrorBody),
        (status = 422, description = "Not a date (`invalid_business_date`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_statements(
    State(state): State<AppState>,
    Path(date): Path<String>,
    Query(query): Query<StatementsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    statements(&state, &date, &query, wants_csv(&headers)).await
}

#[utoipa::path(
    get, path = "/v1/settlement/runs/{business_date}/statements.csv", tag = "settlement",
    params(
        ("business_date" = String, Path, description = "The run's date, YYYY-MM-DD"),
        StatementsQuery,
    ),
    responses(
        (status = 200, description = "The run's statements as CSV, one line per merchant and currency after a header", body = String, content_type = "text/csv"),
        (status = 404, description = "No run of that date, or no such merchant", body = ErrorBody),
        (status = 422, description = "Not a date (`invalid_business_date`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_statements_csv(
    State(state): State<AppState>,
    Path(date): Path<String>,
    Query(query): Query<StatementsQuery>,
) -> Result<Response, ApiError> {
    statements(&state, &date, &query, true).await
}
