//! Payment routes under `/v1/payments`: create a combined payment, confirm it (every source
//! reserved, all or nothing), capture it whole or in part, cancel it, refund it, read it.
//!
//! Every write needs an `Idempotency-Key`, scoped to the API key that sent it: two
//! merchants' keys never collide, and a retry answers what the first request answered
//! (see `tally_service::payments::checkout`). A declined payment answers `402` with the
//! reason and the payment as it ended, every source released.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::{idempotency_key, Path};
use crate::json::Json;
use crate::state::AppState;
use crate::extract::Query;
use crate::wire::payments::{
    CaptureRequest, CardList, CardsQuery, CreatePaymentRequest, DeclinedBody, RefundRequest,
    SaveCardRequest,
};
use tally_service::payments::cards::CardView;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;
use tally_payments::PaymentError;
use tally_service::payments::{PaymentService, PaymentServiceError, PaymentView};

fn service(state: &AppState) -> Result<&Arc<PaymentService>, ApiError> {
    state.payments.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payments_unavailable",
            "the payment service is not running in this process",
        )
    })
}

/// The client's idempotency key, scoped to the API key that sent it.
fn scoped_key(principal: &Principal, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(format!(
        "{}:{}",
        principal.key_id,
        idempotency_key(headers)?
    ))
}

/// The HTTP form of the payment service's refusals.
pub fn payment_error(error: PaymentServiceError) -> Response {
    let status = match &error {
        PaymentServiceError::Declined {
            code,
            message,
            payment,
        } => {
            let body = DeclinedBody {
                error: ErrorDetail {
                    code: code.clone(),
                    message: message.clone(),
                },
                payment: (**payment).clone(),
            };
            return (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
        }
        PaymentServiceError::Store(_) | PaymentServiceError::InFlight { .. } => {
            tracing::warn!(%error, "payment request could not finish");
            StatusCode::SERVICE_UNAVAILABLE
        }
        PaymentServiceError::CreditUnavailable | PaymentServiceError::ChannelNotConfigured => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        PaymentServiceError::LedgerConflict(_)
        | PaymentServiceError::LedgerRefused { .. }
        | PaymentServiceError::ChannelRefused { .. } => {
            tracing::error!(%error, "the ledger or the channel refused a payment's movement");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        PaymentServiceError::Rules(PaymentError::Internal(_)) => {
            tracing::error!(%error, "a payment reached an impossible state");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        PaymentServiceError::PaymentNotFound(_) => StatusCode::NOT_FOUND,
        PaymentServiceError::KeyReused(_) | PaymentServiceError::Contended(_) => {
            StatusCode::CONFLICT
        }
        PaymentServiceError::Rules(
            PaymentError::InvalidTransition { .. }
            | PaymentError::LegState { .. }
            | PaymentError::LegsStillReserved(_)
            | PaymentError::Expired(_),
        ) => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let message = match &error {
        PaymentServiceError::Store(_) => {
            "storage is unavailable; retry with the same idempotency key".to_string()
        }
        PaymentServiceError::LedgerConflict(_)
        | PaymentServiceError::LedgerRefused { .. }
        | PaymentServiceError::ChannelRefused { .. } => {
            "internal error; an operator has been told".to_string()
        }
        other => other.to_string(),
    };
    ApiError::new(status, error.code().to_string(), message).into_response()
}

fn answer(status: StatusCode, result: Result<PaymentView, PaymentServiceError>) -> Response {
    match result {
        Ok(view) => (status, axum::Json(view)).into_response(),
        Err(error) => payment_error(error),
    }
}

#[utoipa::path(
    post, path = "/v1/payments", tag = "payments",
    request_body = CreatePaymentRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 201, description = "The payment, created: its sources resolved to exact amounts, nothing reserved yet", body = PaymentView),
        (status = 409, description = "Idempotency key used for another request (`idempotency_key_reused`)", body = ErrorBody),
        (status = 422, description = "Sources not summing to the order (`fundings_do_not_sum`), a source listed twice, an unknown wallet or vault (`balance_not_found`), an unknown or foreign credit account or card (`credit_account_not_found`, `card_not_found`, `funding_foreign_source`), a card number instead of a token (`invalid_card_token`), an installment term not offered", body = ErrorBody),
        (status = 503, description = "Storage, the credit service or the channel unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn create_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(request): Json<CreatePaymentRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let request = request.parse()?;
    Ok(answer(
        StatusCode::CREATED,
        service.create(&key, request, state.clock.now()).await,
    ))
}

#[utoipa::path(
    get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment, with its legs, refunds and every status change", body = PaymentView),
        (status = 404, description = "No such payment (`payment_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_payment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    Ok(answer(
        StatusCode::OK,
        service.get(&id, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/confirm", tag = "payments",
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "Every source reserved (`authorized`), and captured when the capture is automatic", body = PaymentView),
        (status = 402, description = "A source refused (`insufficient_balance`, a credit refusal, `card_declined`): the payment failed and every source was released", body = DeclinedBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Expired (`payment_expired`) or in a status that cannot be confirmed (`payment_state_conflict`)", body = ErrorBody),
        (status = 503, description = "A step's outcome is unknown (`payment_in_flight`): retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn confirm_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    Ok(answer(
        StatusCode::OK,
        service.confirm(&key, &id, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/capture", tag = "payments",
    request_body(content = CaptureRequest, description = "The amount to capture; the whole payment when absent"),
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "Captured (`captured`, or `partially_captured` with the rest of every source released); a part is taken from the sources pro rata", body = PaymentView),
        (status = 402, description = "The card's capture was refused before anything moved: the payment failed and every source was released", body = DeclinedBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Not authorised, or past its capture deadline", body = ErrorBody),
        (status = 422, description = "More than authorised (`capture_exceeds_authorized`), not positive, another currency", body = ErrorBody),
        (status = 503, description = "A step's outcome is unknown (`payment_in_flight`): retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn capture_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<CaptureRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let amount = request.parse()?;
    Ok(answer(
        StatusCode::OK,
        service.capture(&key, &id, amount, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/cancel", tag = "payments",
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "Cancelled: every reserved source released", body = PaymentView),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Already captured or ended", body = ErrorBody),
        (status = 503, description = "A release's outcome is unknown (`payment_in_flight`): retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn cancel_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    Ok(answer(
        StatusCode::OK,
        service.cancel(&key, &id, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/refunds", tag = "payments",
    request_body = RefundRequest,
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "The payment with the refund (`refunds`, newest last): split across the sources by the policy, never more than a source paid", body = PaymentView),
        (status = 402, description = "A source refused its part: the parts that went through stay refunded, the rest is refundable again", body = DeclinedBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Not captured", body = ErrorBody),
        (status = 422, description = "More than was paid and not yet refunded (`refund_exceeds_paid`), not positive, another currency", body = ErrorBody),
        (status = 503, description = "A step's outcome is unknown (`payment_in_flight`): retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn refund_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<RefundRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let (amount, policy) = request.parse()?;
    Ok(answer(
        StatusCode::OK,
        service
            .refund(&key, &id, amount, policy, state.clock.now())
            .await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/cards", tag = "payments",
    request_body = SaveCardRequest,
    responses(
        (status = 201, description = "The card, saved for the customer (or as saved before); Tally keeps the token, last four digits, brand and the channel's fingerprint, never the number", body = CardView),
        (status = 422, description = "A card number instead of a token (`invalid_card_token`), a token the channel does not know (`invalid_request`), a card saved by another customer (`funding_foreign_source`)", body = ErrorBody),
        (status = 503, description = "No channel configured (`channel_not_configured`) or the channel did not answer (`payment_in_flight`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn save_card(
    State(state): State<AppState>,
    Json(request): Json<SaveCardRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    Ok(
        match service
            .save_card(&request.customer, &request.card_token, state.clock.now())
            .await
        {
            Ok(card) => (StatusCode::CREATED, axum::Json(card)).into_response(),
            Err(error) => payment_error(error),
        },
    )
}

#[utoipa::path(
    get, path = "/v1/payments/cards", tag = "payments",
    params(CardsQuery),
    responses(
        (status = 200, description = "The customer's saved cards, oldest first", body = CardList),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn list_cards(
    State(state): State<AppState>,
    Query(query): Query<CardsQuery>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    Ok(match service.cards(&query.customer).await {
        Ok(cards) => (StatusCode::OK, axum::Json(CardList { cards })).into_response(),
        Err(error) => payment_error(error),
    })
}
