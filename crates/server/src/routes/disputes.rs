//! Dispute (chargeback) routes: list a merchant's disputes, read one, submit evidence
//! before its deadline, accept it. Disputes are opened and decided by the channel's
//! notifications (`POST /v1/payments/channel-notifications`), never by a client.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::routes::payments::{payment_error, payment_service};
use crate::state::AppState;
use crate::wire::disputes::{DisputeEvidenceRequest, DisputesQuery};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tally_service::payments::disputes::{DisputeList, DisputeView};
use tally_service::payments::PaymentServiceError;

/// Disputes a list answers when no `limit` is given.
const DISPUTES_PER_PAGE_DEFAULT: i64 = 100;

fn answer<T: serde::Serialize>(result: Result<T, PaymentServiceError>) -> Response {
    match result {
        Ok(view) => (StatusCode::OK, axum::Json(view)).into_response(),
        Err(error) => payment_error(error),
    }
}

#[utoipa::path(
    get, path = "/v1/disputes", tag = "disputes",
    params(DisputesQuery),
    responses(
        (status = 200, description = "Disputes by id, of one merchant and in one status when asked", body = DisputeList),
        (status = 404, description = "No such merchant (`merchant_not_found`)", body = ErrorBody),
        (status = 422, description = "An unknown status or a limit out of 1 to 500 (`invalid_request`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn list_disputes(
    State(state): State<AppState>,
    Query(query): Query<DisputesQuery>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(
        service
            .disputes(
                query.merchant_id.as_deref(),
                query.status.as_deref(),
                query.after.as_deref(),
                query.limit.unwrap_or(DISPUTES_PER_PAGE_DEFAULT),
            )
            .await,
    ))
}

#[utoipa::path(
    get, path = "/v1/disputes/{id}", tag = "disputes",
    params(("id" = String, Path, description = "Dispute id")),
    responses(
        (status = 200, description = "The dispute: amount, what it took from the merchant's pending, available and reserve balances, reason, evidence deadline, status and the channel's fee", body = DisputeView),
        (status = 404, description = "No such dispute (`dispute_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:read"]))
)]
pub async fn get_dispute(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(service.dispute(&id).await))
}

#[utoipa::path(
    post, path = "/v1/disputes/{id}/evidence", tag = "disputes",
    request_body = DisputeEvidenceRequest,
    params(("id" = String, Path, description = "Dispute id")),
    responses(
        (status = 200, description = "The dispute with its evidence, `evidence_submitted`", body = DisputeView),
        (status = 404, description = "No such dispute (`dispute_not_found`)", body = ErrorBody),
        (status = 409, description = "The dispute is accepted, won or lost (`dispute_closed`), or changed meanwhile (`payment_contended`)", body = ErrorBody),
        (status = 422, description = "The evidence deadline has passed (`dispute_evidence_deadline_passed`), or the evidence is blank or over 4,000 characters (`invalid_evidence`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn submit_evidence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<DisputeEvidenceRequest>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(
        service
            .submit_dispute_evidence(&id, &request.evidence, state.clock.now())
            .await,
    ))
}

#[utoipa::path(
    post, path = "/v1/disputes/{id}/accept", tag = "disputes",
    params(("id" = String, Path, description = "Dispute id")),
    responses(
        (status = 200, description = "The dispute, `accepted`: the merchant does not contest it; nothing more moves until the channel decides (a loss charges its fee)", body = DisputeView),
        (status = 404, description = "No such dispute (`dispute_not_found`)", body = ErrorBody),
        (status = 409, description = "The channel decided it already (`dispute_closed`), or it changed meanwhile (`payment_contended`)", body = ErrorBody),
    ),
    security(("api_key" = ["payments:write"]))
)]
pub async fn accept_dispute(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let service = payment_service(&state)?;
    Ok(answer(service.accept_dispute(&id).await))
}
