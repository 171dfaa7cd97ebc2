//! Payout routes under `/v1/payouts`: pay a merchant out of its available balance (a batch of
//! one), many at once in a batch, read and list them; take a batch's bank file (UTF-8 or
//! GBK) and read the bank's return file back; run the scheduled payouts after a settlement
//! run. Creating needs an `Idempotency-Key`, scoped to the API key: a retry answers the
//! batch as it stands.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{idempotency_key, Path, Query};
use crate::json::Json;
use crate::routes::held::{paid_reply, HeldOperationBody};
use crate::routes::payments::{payment_error, payment_service};
use crate::state::AppState;
use crate::wire::payouts::{
    CreatePayoutBatchRequest, CreatePayoutRequest, PayoutFileQuery, PayoutRunRequest, PayoutsQuery,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tally_payments::PayoutError;
use tally_service::payments::payouts::{
    PayoutBatchView, PayoutList, PayoutRunView, PayoutServiceError, PayoutView,
};
use tally_service::risk_gate::payout::MerchantPayoutRequest;
use tally_service::risk_gate::{GateError, RiskGate, Subject};

/// A batch some of whose items the risk engine held.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HeldPayoutBatchBody {
    /// The batch of the items let through; absent when every item was held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<PayoutBatchView>,
    /// The items held, in request order.
    pub held: Vec<HeldPayoutItemBody>,
}

/// One held item of a payout batch.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HeldPayoutItemBody {
    /// Its place in the request's `payouts` (from 0).
    pub index: usize,
    /// Its held operation (kind `payout`): completing it pays the item out on its own.
    pub operation: HeldOperationBody,
}

/// The HTTP form of a payout refusal.
pub fn payout_error(error: PayoutServiceError) -> Response {
    let error = match error {
        PayoutServiceError::Payment(inner) => return payment_error(inner),
        PayoutServiceError::Credit(inner) => {
            return crate::routes::credit::operation_error(inner).into_response()
        }
        // A batch item refused by the payment service (an unknown merchant): its status,
        // the item named in the message.
        PayoutServiceError::Item { index, error } => match *error {
            PayoutServiceError::Payment(inner) => {
                let message = format!("payouts[{index}]: {inner}");
                let code = inner.code().to_string();
                let response = payment_error(inner);
                if !response.status().is_client_error() {
                    return response;
                }
                return ApiError::new(response.status(), code, message).into_response();
            }
            other => PayoutServiceError::Item {
                index,
                error: Box::new(other),
            },
        },
        other => other,
    };
    let status = match error.innermost() {
        PayoutServiceError::PayoutNotFound(_) | PayoutServiceError::BatchNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        PayoutServiceError::Rule(PayoutError::InvalidTransition { .. })
        | PayoutServiceError::NotSubmitted(_)
        | PayoutServiceError::SettlementRunNotDone(_) => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, error.code().to_string(), error.to_string()).into_response()
}

/// A payout refusal as an API error (the payment service's in its API form): for answers
/// that are not a payout's own, such as a credit-balance payout's.
pub fn payout_api_error(error: PayoutServiceError) -> ApiError {
    match error {
        PayoutServiceError::Payment(inner) => crate::routes::payments::payment_api_error(inner),
        PayoutServiceError::Credit(inner) => crate::routes::credit::operation_error(inner),
        other => {
            let status = match other.innermost() {
                PayoutServiceError::PayoutNotFound(_) | PayoutServiceError::BatchNotFound(_) => {
                    StatusCode::NOT_FOUND
                }
                PayoutServiceError::Rule(PayoutError::InvalidTransition { .. })
                | PayoutServiceError::NotSubmitted(_)
                | PayoutServiceError::SettlementRunNotDone(_) => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, other.code().to_string(), other.to_string())
        }
    }
}

fn answer<T: serde::Serialize>(
    status: StatusCode,
    result: Result<T, PayoutServiceError>,
) -> Response {
    match result {
        Ok(view) => (status, axum::Json(view)).into_response(),
        Err(error) => payout_error(error),
    }
}

fn scoped_key(principal: &Principal, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(format!(
        "{}:{}",
        principal.key_id,
        idempotency_key(headers)?
    ))
}

#[utoipa::path(
    post, path = "/v1/payouts", tag = "payouts",
    request_body = CreatePayoutRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 201, description = "The payout, created: the amount moved from the merchant's available balance to its payable, in a batch of its own whose file goes to the bank. Decided first by the risk engine as a `payout` event", body = PayoutView),
        (status = 202, description = "Held by the risk engine, nothing moved: a one-time code was sent (`step_up`; `POST /v1/held-operations/{id}/code`) or an analyst reviews the case (`review`; approving it pays out, the balance checked again; rejecting it refuses it). The same request again answers where it stands", body = HeldOperationBody),
        (status = 404, description = "No such merchant (`merchant_not_found`)", body = ErrorBody),
        (status = 409, description = "Idempotency key used for another request (`idempotency_key_reused`); refused by the risk engine with the decision's reason codes (`risk_rejected`), nothing moved; a held payout that ended refused (`step_up_failed`, `step_up_expired`, `risk_review_rejected`)", body = ErrorBody),
        (status = 422, description = "Above the merchant's available balance (`payout_above_available_balance`), a suspended merchant (`merchant_suspended`), another currency than the merchant's (`payout_currency_mismatch`), not positive (`payout_amount_not_positive`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable; retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn create_payout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(request): Json<CreatePayoutRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let payout = request.parse()?;
    if let Some(gate) = money_gate(&state) {
        let caller = principal.caller();
        let paid = gate
            .pay_out_merchant(MerchantPayoutRequest {
                key: &key,
                payout,
                subject: Subject::default(),
                caller: &caller,
            })
            .await;
        return Ok(paid_reply(StatusCode::CREATED, paid, payout_refusal));
    }
    Ok(answer(
        StatusCode::CREATED,
        service.create_payout(&key, payout, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payouts/batches", tag = "payouts",
    request_body = CreatePayoutBatchRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 201, description = "The batch, every payout created (its amount moved to the merchant's payable); a payout a concurrent one left uncovered is failed, nothing moved. Each item is decided first by the risk engine as a `payout` event", body = PayoutBatchView),
        (status = 202, description = "Some items held by the risk engine (a one-time code sent to the merchant, or a review): they are left out of the batch, nothing moved for them, each paid out on its own once let through (`/v1/held-operations/{id}`); the batch holds the others (absent when every item was held). The same request again answers the same", body = HeldPayoutBatchBody),
        (status = 404, description = "An item's merchant does not exist (`merchant_not_found`, naming the item)", body = ErrorBody),
        (status = 409, description = "Idempotency key used for another request (`idempotency_key_reused`); an item refused by the risk engine with the decision's reason codes refuses the whole batch (`risk_rejected`), nothing moved", body = ErrorBody),
        (status = 422, description = "No payouts (`payout_batch_empty`), more than 1,000 (`payout_batch_too_large`), payouts in several currencies (`payout_batch_currency_mixed`), or an item refused as a single payout is, named `payouts[i]` (a merchant's items together above its available balance)", body = ErrorBody),
        (status = 503, description = "Storage unavailable; retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn create_payout_batch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(request): Json<CreatePayoutBatchRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let mut payouts = Vec::with_capacity(request.payouts.len());
    for (index, payout) in request.payouts.iter().enumerate() {
        payouts.push(payout.parse().map_err(|error| ApiError {
            message: format!("payouts[{index}]: {}", error.message),
            ..error
        })?);
    }
    if let Some(gate) = money_gate(&state) {
        let caller = principal.caller();
        return Ok(match gate.pay_out_batch(&key, payouts, &caller).await {
            Ok(gated) if gated.held.is_empty() => match gated.batch {
                Some(batch) => (StatusCode::CREATED, axum::Json(batch)).into_response(),
                None => payout_error(PayoutServiceError::Invalid {
                    code: "payout_batch_empty",
                    message: "a batch needs at least one payout".into(),
                }),
            },
            Ok(gated) => (
                StatusCode::ACCEPTED,
                axum::Json(HeldPayoutBatchBody {
                    batch: gated.batch,
                    held: gated
                        .held
                        .iter()
                        .map(|item| HeldPayoutItemBody {
                            index: item.index,
                            operation: HeldOperationBody::new(&item.held),
                        })
                        .collect(),
                }),
            )
                .into_response(),
            Err(error) => payout_refusal(error),
        });
    }
    Ok(answer(
        StatusCode::CREATED,
        service
            .create_payout_batch(&key, payouts, state.clock.now())
            .await,
    ))
}

#[utoipa::path(
    get, path = "/v1/payouts/{id}", tag = "payouts",
    params(("id" = String, Path, description = "Payout id")),
    responses(
        (status = 200, description = "The payout with every state it has been in, when and why", body = PayoutView),
        (status = 404, description = "No such payout (`payout_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_payout(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(StatusCode::OK, service.payout(&id).await))
}

#[utoipa::path(
    get, path = "/v1/payouts", tag = "payouts",
    params(PayoutsQuery),
    responses(
        (status = 200, description = "Payouts in id (time) order, by merchant and state", body = PayoutList),
        (status = 404, description = "No such merchant (`merchant_not_found`)", body = ErrorBody),
        (status = 422, description = "A state that is not one (`invalid_payout_state`), a limit out of 1 to 500 (`invalid_limit`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn list_payouts(
    State(state): State<AppState>,
    Query(query): Query<PayoutsQuery>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(
        StatusCode::OK,
        service.payouts(&query.query()).await,
    ))
}

#[utoipa::path(
    get, path = "/v1/payouts/batches/{id}", tag = "payouts",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The batch and its payouts", body = PayoutBatchView),
        (status = 404, description = "No such batch (`payout_batch_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_payout_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(StatusCode::OK, service.payout_batch(&id).await))
}

#[utoipa::path(
    post, path = "/v1/payouts/batches/{id}/file", tag = "payouts",
    params(("id" = String, Path, description = "Batch id"), PayoutFileQuery),
    responses(
        (status = 200, description = "The batch's bank file (CSV: an H record with control totals, a D record per funded payout, account numbers and names in clear for the bank). Taking it sends it: its payouts become `submitted`. Taken again, the same file", body = String, content_type = "text/csv"),
        (status = 404, description = "No such batch (`payout_batch_not_found`)", body = ErrorBody),
        (status = 422, description = "An encoding other than utf-8 or gbk (`invalid_encoding`), or a name GBK cannot write (`invalid_payout_file`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys are configured (`privacy_keys_not_configured`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn take_payout_batch_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PayoutFileQuery>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let encoding = query.encoding()?;
    let result = service
        .payout_batch_file(state.privacy.as_deref(), &id, encoding, state.clock.now())
        .await;
    Ok(match result {
        Ok(bytes) => {
            let content_type = format!("text/csv; charset={}", encoding.as_str());
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type)],
                bytes,
            )
                .into_response()
        }
        Err(error) => payout_error(error),
    })
}

#[utoipa::path(
    post, path = "/v1/payouts/batches/{id}/return-file", tag = "payouts",
    params(("id" = String, Path, description = "Batch id"), PayoutFileQuery),
    request_body(content = String, content_type = "text/csv", description = "The bank's return file: an H record, a D record per payout answered (PAID, FAILED or RETURNED with a reason)"),
    responses(
        (status = 200, description = "The batch, each payout the file answers paid (to the bank) or failed or returned (the money back in the merchant's available balance). Read again, it moves nothing twice", body = PayoutBatchView),
        (status = 404, description = "No such batch (`payout_batch_not_found`)", body = ErrorBody),
        (status = 409, description = "A payout whose file was never taken (`payout_not_submitted`), or a change its state does not allow (`payout_state_conflict`: failed after paid)", body = ErrorBody),
        (status = 422, description = "A file that does not parse, naming the line (`invalid_payout_file`), or answers another batch, a payout not in it or another amount (`return_file_mismatch`); nothing moved", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn read_payout_return_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PayoutFileQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    let encoding = query.encoding()?;
    Ok(answer(
        StatusCode::OK,
        service
            .read_payout_return_file(&id, &body, encoding, state.clock.now())
            .await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payouts/runs", tag = "payouts",
    request_body = PayoutRunRequest,
    responses(
        (status = 200, description = "The scheduled payouts of the date: one batch per currency paying every merchant's positive available balance (suspended merchants left out). Each payout is decided by the risk engine first: rejected or held ones are left out (held ones are paid out on their own once let through). Asked again, the same batches", body = PayoutRunView),
        (status = 409, description = "The settlement run of the date is not done (`settlement_run_not_done`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn run_scheduled_payouts(
    State(state): State<AppState>,
    Json(request): Json<PayoutRunRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    if let Some(gate) = money_gate(&state) {
        return Ok(
            match gate
                .run_scheduled_payouts(request.business_date, state.clock.now())
                .await
            {
                Ok(run) => (StatusCode::OK, axum::Json(run)).into_response(),
                Err(error) => payout_refusal(error),
            },
        );
    }
    Ok(answer(
        StatusCode::OK,
        service
            .run_scheduled_payouts(request.business_date, state.clock.now())
            .await,
    ))
}

/// The risk gate when it gates this process's payments (money out is decided by it).
pub(crate) fn money_gate(state: &AppState) -> Option<&std::sync::Arc<RiskGate>> {
    state
        .risk_gate
        .as_ref()
        .filter(|gate| gate.payments.is_some())
}

/// A refusal of gated money out: the payment service's in its own form, the gate's in its.
fn payout_refusal(error: GateError) -> Response {
    match error {
        GateError::Payout(error) => payout_error(error),
        other => crate::routes::held::gate_error(other).into_response(),
    }
}
