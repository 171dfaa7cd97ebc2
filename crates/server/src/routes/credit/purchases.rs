//! Purchases on credit: authorised as a ledger hold, captured into an installment plan or
//! voided.

use super::{execute, gated_reply, hash_of, Reply};
use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::extract::{idempotency_key, Path};
use crate::json::Json;
use crate::routes::held::{gate_error, HeldOperationBody};
use crate::state::AppState;
use crate::wire::credit::{
    AccountChangedBody, AuthorizeRequest, AuthorizedBody, CaptureRequest, PlanCreatedBody,
};
use crate::wire::AmountInput;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Extension;
use serde_json::json;
use tally_service::credit::commands::CreditCommand;
use tally_service::risk_gate::credit::AuthorizationRequest;
use tally_service::risk_gate::Subject;
use tally_store::credit::CreditAccountId;

/// Longest merchant reference: it goes into the ledger hold's description after about 60
/// bytes of its own, within the ledger's 1,024.
pub const MERCHANT_REFERENCE_CHARACTERS_MAX: usize = 200;

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations", tag = "credit",
    request_body = AuthorizeRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "The authorisation and the account; a ledger hold is made. Decided first by the risk engine as a `transaction` event: when it held the delivery, `risk` gives the action, reasons and case", body = AuthorizedBody),
        (status = 202, description = "Held by the risk engine: a one-time code was sent to the customer (`step_up`; `POST /v1/held-operations/{id}/code`) or an analyst reviews the case (`review`; approving it authorises, rejecting it refuses). The same request again answers where it stands", body = HeldOperationBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "Frozen or closed, or the customer is on the risk block list (`customer_blocked`); refused by the risk engine with the decision's reason codes (`risk_rejected`); a held authorisation that ended refused (`step_up_failed`, `step_up_expired`, `risk_review_rejected`)", body = ErrorBody),
        (status = 422, description = "Insufficient credit (`credit_insufficient`), amount, currency, expiry, a merchant reference over 200 characters (`invalid_merchant_reference`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn authorize(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<AuthorizeRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    if let Some(reference) = &request.merchant_reference {
        if reference.chars().count() > MERCHANT_REFERENCE_CHARACTERS_MAX {
            return Err(crate::error::ApiError::unprocessable(
                "invalid_merchant_reference",
                format!(
                    "merchant_reference must be at most {MERCHANT_REFERENCE_CHARACTERS_MAX} characters"
                ),
            ));
        }
    }
    let Some(gate) = state.risk_gate.as_ref() else {
        let command = CreditCommand::Authorize {
            amount,
            expires_on: request.expires_on,
            merchant_reference: request.merchant_reference.clone(),
        };
        return execute(&state, &headers, id, &request, command).await;
    };
    let key = idempotency_key(&headers)?;
    let caller = principal.caller();
    let hash = hash_of("authorize", id, &request);
    let gated = gate
        .authorize(AuthorizationRequest {
            key: &key,
            request_hash: &hash,
            account: id,
            amount,
            expires_on: request.expires_on,
            merchant_reference: request.merchant_reference.clone(),
            subject: Subject {
                device: request.device.clone(),
                ip: request.ip.clone(),
                address: request.delivery_address.clone(),
            },
            caller: &caller,
        })
        .await
        .map_err(gate_error)?;
    gated_reply(gated)
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations/{authorization}/capture", tag = "credit",
    request_body = CaptureRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("authorization" = u32, Path, description = "Authorisation id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The new plan id and the account", body = PlanCreatedBody),
        (status = 404, description = "No such account or authorisation", body = ErrorBody),
        (status = 422, description = "Unknown product or term, more than authorised", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn capture(
    State(state): State<AppState>,
    Path((id, authorization)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
    Json(request): Json<CaptureRequest>,
) -> Reply {
    let amount = request
        .amount
        .as_ref()
        .map(AmountInput::parse)
        .transpose()?;
    let command = CreditCommand::Capture {
        authorization,
        amount,
        product: request.product.clone(),
        periods: request.periods,
    };
    let body = json!({ "authorization": authorization, "request": request });
    execute(&state, &headers, id, &body, command).await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations/{authorization}/void", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id"), ("authorization" = u32, Path, description = "Authorisation id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account; the hold is released", body = AccountChangedBody),
        (status = 404, description = "No such account or authorisation", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn void(
    State(state): State<AppState>,
    Path((id, authorization)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
) -> Reply {
    execute(
        &state,
        &headers,
        id,
        &json!({ "authorization": authorization }),
        CreditCommand::Void { authorization },
    )
    .await
}
