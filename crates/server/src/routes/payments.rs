//! Payment routes under `/v1/payments`: create a combined payment, confirm it (every source
//! reserved, all or nothing), capture it whole or in part, cancel it, refund it, read it.
//!
//! Every write needs an `Idempotency-Key`, scoped to the API key that sent it: two
//! merchants' keys never collide, and a retry answers what the first request answered
//! (see `tally_service::payments::checkout`). A declined payment answers `402` with the
//! reason and the payment as it ended, every source released.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::Query;
use crate::extract::{idempotency_key, Path};
use crate::json::Json;
use crate::state::AppState;
use crate::wire::payments::{
    BalancesQuery, CapturePaymentRequest, CardList, CardMovementRequest, CardsQuery,
    ConfirmRequest, CreatePaymentRequest, DeclinedBody, RefundPaymentRequest, ReviewDecision,
    ReviewRequest, SaveCardRequest, VaultMovementRequest, VaultYieldRequest, WalletDeclinedBody,
    WalletWithdrawalRequest,
};
use crate::wire::payments::{
    CreateWebhookEndpointRequest, WebhookDeliveriesQuery, WebhookEndpointsQuery,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;
use tally_payments::PaymentError;
use tally_service::payments::cards::CardView;
use tally_service::payments::vault_yield::YieldReport;
use tally_service::payments::wallets::{BalancesView, WalletOperationView};
use tally_service::payments::webhooks::{
    WebhookDeliveryList, WebhookEndpointList, WebhookEndpointView,
};
use tally_service::payments::{PaymentService, PaymentServiceError, PaymentView};
use tally_service::risk_gate::payout::WithdrawalRequest;
use tally_service::risk_gate::{GateError, Subject};

/// The payment service, or `503 payments_unavailable` in a process that runs none.
pub(crate) fn payment_service(state: &AppState) -> Result<&Arc<PaymentService>, ApiError> {
    service(state)
}

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
    match &error {
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
            (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response()
        }
        PaymentServiceError::WalletDeclined {
            code,
            message,
            operation,
        } => {
            let body = WalletDeclinedBody {
                error: ErrorDetail {
                    code: code.clone(),
                    message: message.clone(),
                },
                operation: (**operation).clone(),
            };
            (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response()
        }
        _ => payment_api_error(error).into_response(),
    }
}

/// A refusal of the payment service as an API error: its status, code and message (a
/// decline without the payment or operation the API's answer carries beside it). The
/// console shows what the API would say.
pub fn payment_api_error(error: PaymentServiceError) -> ApiError {
    let status = match &error {
        PaymentServiceError::Declined { .. } | PaymentServiceError::WalletDeclined { .. } => {
            StatusCode::PAYMENT_REQUIRED
        }
        PaymentServiceError::Store(_) | PaymentServiceError::InFlight { .. } => {
            tracing::warn!(%error, "payment request could not finish");
            StatusCode::SERVICE_UNAVAILABLE
        }
        PaymentServiceError::CreditUnavailable
        | PaymentServiceError::ChannelNotConfigured
        | PaymentServiceError::PrivacyKeysNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
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
        PaymentServiceError::PaymentNotFound(_)
        | PaymentServiceError::MerchantNotFound(_)
        | PaymentServiceError::SettlementRunNotFound(_)
        | PaymentServiceError::WebhookEndpointNotFound(_)
        | PaymentServiceError::WebhookEventNotFound(_)
        | PaymentServiceError::DisputeNotFound(_) => StatusCode::NOT_FOUND,
        PaymentServiceError::KeyReused(_)
        | PaymentServiceError::MerchantExists(_)
        | PaymentServiceError::MerchantLicenceTaken
        | PaymentServiceError::Merchant(tally_payments::MerchantError::InvalidStatusChange {
            ..
        })
        | PaymentServiceError::Contended(_)
        | PaymentServiceError::Dispute(
            tally_payments::DisputeError::Closed { .. }
            | tally_payments::DisputeError::DecidedOtherWay { .. },
        )
        | PaymentServiceError::StepUpRequired(_) => StatusCode::CONFLICT,
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
    ApiError::new(status, error.code().to_string(), message)
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
        (status = 422, description = "A merchant not onboarded (`merchant_unknown`), not active (`merchant_not_active`) or paid in another currency (`merchant_currency_mismatch`), sources not summing to the order (`fundings_do_not_sum`), a source listed twice, an unknown wallet or vault (`balance_not_found`), an unknown or foreign credit account or card (`credit_account_not_found`, `card_not_found`, `funding_foreign_source`), a card number instead of a token (`invalid_card_token`), an installment term not offered", body = ErrorBody),
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
    request_body(content = ConfirmRequest, description = "Optional: the shopper's device and IP for risk control, and the one-time code when the payment asked for one"),
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "Every source reserved (`authorized`), and captured when the capture is automatic; `requires_action` when risk control asks for a one-time code (sent to the shopper), `under_review` when it sends the payment to an analyst", body = PaymentView),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 402, description = "A source refused (`insufficient_balance`, a credit refusal, `card_declined`), risk control rejected it (`risk_rejected`), or three wrong one-time codes (`step_up_failed`): the payment failed and every source was released", body = DeclinedBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Expired (`payment_expired`), in a status that cannot be confirmed (`payment_state_conflict`), or waiting for its one-time code (`step_up_code_required`)", body = ErrorBody),
        (status = 422, description = "A wrong one-time code (`step_up_code_wrong`)", body = ErrorBody),
        (status = 503, description = "A step's outcome is unknown (`payment_in_flight`): retry with the same key", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn confirm_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let request: ConfirmRequest = optional_body(&body)?;
    Ok(answer(
        StatusCode::OK,
        service
            .confirm(&key, &id, request.into_input(), state.clock.now())
            .await,
    ))
}

/// A body that may be empty (then the type's default), else strict JSON.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request("invalid_request", format!("invalid JSON body: {error}"))
    })
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/review", tag = "payments",
    request_body = ReviewRequest,
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "Approved: the payment is authorised (and captured when its capture is automatic); rejected: every source released, the payment failed", body = PaymentView),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Not under review", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn review_payment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<ReviewRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let approve = matches!(request.decision, ReviewDecision::Approve);
    Ok(answer(
        StatusCode::OK,
        service.review(&key, &id, approve, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/delivery-release", tag = "payments",
    params(("id" = String, Path, description = "Payment id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "The order's delivery, held by risk control, is released (`delivery_held` false)", body = PaymentView),
        (status = 404, description = "No such payment", body = ErrorBody),
    ),
    security(("api_key" = ["risk:analyst"]))
)]
pub async fn release_delivery(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    Ok(answer(
        StatusCode::OK,
        service.release_delivery(&key, &id, state.clock.now()).await,
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/{id}/capture", tag = "payments",
    request_body(content = CapturePaymentRequest, description = "The amount to capture; the whole payment when absent"),
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
    Json(request): Json<CapturePaymentRequest>,
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
    request_body = RefundPaymentRequest,
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
    Json(request): Json<RefundPaymentRequest>,
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

fn operation_answer(result: Result<WalletOperationView, PaymentServiceError>) -> Response {
    match result {
        Ok(view) => (StatusCode::OK, axum::Json(view)).into_response(),
        Err(error) => payment_error(error),
    }
}

#[utoipa::path(
    get, path = "/v1/payments/wallets/{customer}", tag = "payments",
    params(("customer" = String, Path, description = "The customer"), BalancesQuery),
    responses(
        (status = 200, description = "The customer's wallet and vault in the currency: balance, held by payments in flight, available", body = BalancesView),
        (status = 422, description = "Not a customer reference, unknown currency", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_balances(
    State(state): State<AppState>,
    Path(customer): Path<String>,
    Query(query): Query<BalancesQuery>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let currency = query.currency()?;
    Ok(match service.balances(&customer, currency).await {
        Ok(view) => (StatusCode::OK, axum::Json(view)).into_response(),
        Err(error) => payment_error(error),
    })
}

macro_rules! wallet_route {
    ($name:ident, $path:literal, $request:ty, $summary:literal, |$service:ident, $key:ident, $customer:ident, $body:ident, $now:ident| $call:expr) => {
        #[utoipa::path(
            post, path = $path, tag = "payments",
            request_body = $request,
            params(("customer" = String, Path, description = "The customer"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
            responses(
                (status = 200, description = $summary, body = WalletOperationView),
                (status = 402, description = "The bank declined the card or returned the payout, or the wallet or vault holds too little (`insufficient_balance`): nothing stayed moved", body = WalletDeclinedBody),
                (status = 409, description = "Idempotency key used for another request", body = ErrorBody),
                (status = 422, description = "Not positive, a card not saved or saved by another customer, above the daily instant-redemption limit (`instant_redemption_limit`)", body = ErrorBody),
                (status = 503, description = "A step's outcome is unknown (`payment_in_flight`): retry with the same key; no channel configured", body = ErrorBody),
            ),
            security(("api_key" = ["payments:write"]))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(principal): Extension<Principal>,
            Path($customer): Path<String>,
            headers: HeaderMap,
            Json($body): Json<$request>,
        ) -> Result<Response, ApiError> {
            let $service = service(&state)?;
            let $key = scoped_key(&principal, &headers)?;
            let $now = state.clock.now();
            Ok(operation_answer($call))
        }
    };
}

wallet_route!(
    top_up,
    "/v1/payments/wallets/{customer}/top-ups",
    CardMovementRequest,
    "The top-up: `succeeded` once the card was charged and the wallet credited",
    |service, key, customer, body, now| {
        let amount = body.amount.parse()?;
        service
            .top_up(&key, &customer, &body.card_token, amount, now)
            .await
    }
);

#[utoipa::path(
    post, path = "/v1/payments/wallets/{customer}/withdrawals", tag = "payments",
    request_body = WalletWithdrawalRequest,
    params(("customer" = String, Path, description = "The customer"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 200, description = "The withdrawal: `pending` while the bank pays out (the amount held in the wallet), `succeeded` once paid. Decided first by the risk engine as a `payout` event", body = WalletOperationView),
        (status = 202, description = "Held by the risk engine, nothing moved: a one-time code was sent to the customer (`step_up`; `POST /v1/held-operations/{id}/code`) or an analyst reviews the case (`review`). The same request again answers where it stands", body = crate::routes::held::HeldOperationBody),
        (status = 402, description = "The bank declined the card or returned the payout, or the wallet holds too little (`insufficient_balance`): nothing stayed moved", body = WalletDeclinedBody),
        (status = 409, description = "Idempotency key used for another request; refused by the risk engine with the decision's reason codes (`risk_rejected`), nothing moved; a held withdrawal that ended refused (`step_up_failed`, `step_up_expired`, `risk_review_rejected`)", body = ErrorBody),
        (status = 422, description = "Not positive, a card not saved or saved by another customer", body = ErrorBody),
        (status = 503, description = "A step's outcome is unknown (`payment_in_flight`): retry with the same key; no channel configured", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn withdraw(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(customer): Path<String>,
    headers: HeaderMap,
    Json(body): Json<WalletWithdrawalRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    let now = state.clock.now();
    let amount = body.amount.parse()?;
    let Some(gate) = crate::routes::payouts::money_gate(&state) else {
        return Ok(operation_answer(
            service
                .withdraw(&key, &customer, &body.card_token, amount, now)
                .await,
        ));
    };
    let caller = principal.caller();
    let paid = gate
        .withdraw(WithdrawalRequest {
            key: &key,
            customer: &customer,
            card_token: &body.card_token,
            amount,
            subject: Subject {
                device: body.device.clone(),
                ip: body.ip.clone(),
                address: None,
            },
            caller: &caller,
        })
        .await;
    Ok(crate::routes::held::paid_reply(
        StatusCode::OK,
        paid,
        |error| match error {
            GateError::Payment(error) => payment_error(error),
            other => crate::routes::held::gate_error(other).into_response(),
        },
    ))
}

wallet_route!(
    subscribe_to_vault,
    "/v1/payments/wallets/{customer}/vault-subscriptions",
    VaultMovementRequest,
    "The move from the wallet to the vault",
    |service, key, customer, body, now| {
        let amount = body.amount.parse()?;
        service
            .subscribe_to_vault(&key, &customer, amount, now)
            .await
    }
);

wallet_route!(
    redeem_from_vault,
    "/v1/payments/wallets/{customer}/vault-redemptions",
    VaultMovementRequest,
    "The instant redemption from the vault to the wallet (at most 10,000 a day)",
    |service, key, customer, body, now| {
        let amount = body.amount.parse()?;
        service
            .redeem_from_vault(&key, &customer, amount, now)
            .await
    }
);

#[utoipa::path(
    post, path = "/v1/payments/vault-yields", tag = "payments",
    request_body = VaultYieldRequest,
    responses(
        (status = 200, description = "Every vault's yield accrued through the date at the configured annual rate (days missed before it first): vaults, days and what was credited per currency; a day already accrued credits nothing again", body = YieldReport),
        (status = 422, description = "A date not over yet in the service's time zone (`invalid_request`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn accrue_vault_yield(
    State(state): State<AppState>,
    Json(request): Json<VaultYieldRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let rate = service.vault_annual_rate();
    Ok(
        match service
            .accrue_vault_yield(request.date, rate, state.clock.now())
            .await
        {
            Ok(report) => (StatusCode::OK, axum::Json(report)).into_response(),
            Err(error) => payment_error(error),
        },
    )
}

/// `POST /v1/payments/channel-notifications`: the channel's signed notifications. Not
/// under an API key: the bank proves who it is by the `Tally-Channel-Signature` over the
/// body (`[payments] channel_secret`), checked before anything is read or stored. Answers
/// 200 to every authentic notification, a duplicate or one about a reference Tally does
/// not know included, so that the channel stops sending it; not in the OpenAPI document,
/// which describes the API for Tally's clients (the format is `tally_channel::notification`).
pub async fn receive_channel_notification(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use tally_service::payments::notifications::NotificationRefusal;
    let service = service(&state)?;
    let signature = headers
        .get(tally_channel::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    match service
        .receive_notification(signature, &body, state.clock.now())
        .await
    {
        Ok(receipt) => Ok((StatusCode::OK, axum::Json(receipt)).into_response()),
        Err(refusal) => {
            let status = match &refusal {
                NotificationRefusal::NotConfigured | NotificationRefusal::Store(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                NotificationRefusal::MissingSignature | NotificationRefusal::Signature(_) => {
                    StatusCode::UNAUTHORIZED
                }
                NotificationRefusal::Malformed(_) => StatusCode::BAD_REQUEST,
                NotificationRefusal::Dispute(tally_payments::DisputeError::DecidedOtherWay {
                    ..
                }) => StatusCode::CONFLICT,
                NotificationRefusal::Dispute(_) => StatusCode::UNPROCESSABLE_ENTITY,
                NotificationRefusal::NotApplied(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if matches!(refusal, NotificationRefusal::Store(_)) {
                tracing::warn!(%refusal, "a channel notification could not be recorded");
            }
            let message = match &refusal {
                NotificationRefusal::Store(_) => {
                    "storage is unavailable; send it again".to_string()
                }
                other => other.to_string(),
            };
            Err(ApiError::new(status, refusal.code(), message))
        }
    }
}

/// Refuses (`403 cross_merchant_view_needs_admin`) a listing of every merchant at once to a
/// key without `admin`. API keys are not tied to merchants, so one merchant's listing is
/// the route's own scope; all of them at once is an operator's view.
fn cross_merchant_view(principal: &Principal, what: &str) -> Result<(), ApiError> {
    if principal.has("admin") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_merchant_view_needs_admin",
        format!(
            "API key {:?} may list one merchant's at a time (name it); {what} is for admin keys",
            principal.name
        ),
    ))
}

#[utoipa::path(
    post, path = "/v1/payments/webhook-endpoints", tag = "payments",
    request_body = CreateWebhookEndpointRequest,
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe, scoped to the API key")),
    responses(
        (status = 201, description = "The endpoint, with its signing secret (shown here only, kept sealed): every event of the merchant's payments of the types named is POSTed to it with `Tally-Event-Id` and `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`, retried from 1 s doubling to an hour, at most 16 times", body = WebhookEndpointView),
        (status = 409, description = "Idempotency key used for another request (`idempotency_key_reused`)", body = ErrorBody),
        (status = 422, description = "Not an absolute http or https URL (`invalid_webhook_url`), no or an unknown event type (`invalid_webhook_events`), a merchant id that is blank, too long or holds control characters (`invalid_request`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys are configured: signing secrets are kept sealed with them (`privacy_keys_not_configured`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn create_webhook_endpoint(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(request): Json<CreateWebhookEndpointRequest>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let key = scoped_key(&principal, &headers)?;
    Ok(
        match service
            .create_webhook_endpoint(&key, request.parse(), state.clock.now())
            .await
        {
            Ok(endpoint) => (StatusCode::CREATED, axum::Json(endpoint)).into_response(),
            Err(error) => payment_error(error),
        },
    )
}

#[utoipa::path(
    get, path = "/v1/payments/webhook-endpoints", tag = "payments",
    params(WebhookEndpointsQuery),
    responses(
        (status = 200, description = "The endpoints, oldest first, without their secrets", body = WebhookEndpointList),
        (status = 403, description = "No `merchant_id` named by a key without `admin`: every merchant's endpoints at once are for Tally's operators (`cross_merchant_view_needs_admin`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn list_webhook_endpoints(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<WebhookEndpointsQuery>,
) -> Result<Response, ApiError> {
    if query.merchant_id.is_none() {
        cross_merchant_view(&principal, "every merchant's webhook endpoints at once")?;
    }
    let service = service(&state)?;
    Ok(
        match service
            .webhook_endpoints(query.merchant_id.as_deref())
            .await
        {
            Ok(list) => (StatusCode::OK, axum::Json(list)).into_response(),
            Err(error) => payment_error(error),
        },
    )
}

#[utoipa::path(
    get, path = "/v1/payments/webhook-deliveries", tag = "payments",
    params(WebhookDeliveriesQuery),
    responses(
        (status = 200, description = "The delivery log, newest event first (the latest 1,000 when neither `endpoint` nor `event` is named): each event's delivery to each endpoint, `pending`, `delivered` or `failed`, with every attempt (time, the receiver's status or the error)", body = WebhookDeliveryList),
        (status = 403, description = "Neither `endpoint` nor `event` named by a key without `admin`: the latest deliveries of every merchant are for Tally's operators (`cross_merchant_view_needs_admin`)", body = ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_endpoint_not_found`) or event (`webhook_event_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<WebhookDeliveriesQuery>,
) -> Result<Response, ApiError> {
    if query.endpoint.is_none() && query.event.is_none() {
        cross_merchant_view(&principal, "the latest deliveries of every merchant")?;
    }
    let service = service(&state)?;
    Ok(
        match service
            .webhook_deliveries(query.endpoint.as_deref(), query.event.as_deref())
            .await
        {
            Ok(list) => (StatusCode::OK, axum::Json(list)).into_response(),
            Err(error) => payment_error(error),
        },
    )
}
