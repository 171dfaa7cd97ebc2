//! Purchases on credit: authorised as a ledger hold, captured into an installment plan or
//! voided.

use super::{execute, Reply};
use crate::error::ErrorBody;
use crate::extract::Path;
use crate::json::Json;
use crate::state::AppState;
use crate::wire::credit::{
    AccountChangedBody, AuthorizeRequest, AuthorizedBody, CaptureRequest, PlanCreatedBody,
};
use crate::wire::AmountInput;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::json;
use tally_service::credit::commands::CreditCommand;
use tally_store::credit::CreditAccountId;

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations", tag = "credit",
    request_body = AuthorizeRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "The authorisation and the account; a ledger hold is made", body = AuthorizedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "Frozen or closed, or the customer is on the risk block list (`customer_blocked`)", body = ErrorBody),
        (status = 422, description = "Insufficient credit (`credit_insufficient`), amount, currency, expiry", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn authorize(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<AuthorizeRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    let command = CreditCommand::Authorize {
        amount,
        expires_on: request.expires_on,
        merchant_reference: request.merchant_reference.clone(),
    };
    execute(&state, &headers, id, &request, command).await
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
