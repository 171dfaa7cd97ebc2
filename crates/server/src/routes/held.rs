//! Operations the risk engine held (`tally_service::risk_gate`): how a held operation is
//! answered (`202 Accepted` with where it stands), its read, the one-time code that lets a
//! stepped-up one through, and the HTTP form of the gate's refusals.

use crate::error::{ApiError, ErrorBody};
use crate::extract::Path;
use crate::json::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tally_service::payments::risk_control::STEP_UP_ATTEMPTS_MAX;
use tally_service::risk_gate::payout::{self, Paid};
use tally_service::risk_gate::profile::ProfileError;
use tally_service::risk_gate::{GateError, RiskGate};
use tally_store::held_operations::HeldOperationRow;
use utoipa::ToSchema;

/// An operation the risk engine held, and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldOperationBody {
    /// `step_up` (a one-time code was sent to the customer) or `review` (an analyst decides
    /// the case).
    pub action: String,
    /// Wrong codes still allowed while `waiting_for_code`.
    pub attempts_left: Option<i64>,
    /// The review's case.
    pub case_id: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub code_expires_at: Option<Timestamp>,
    /// The risk event's id; the held operation's id.
    pub id: String,
    /// `credit_authorization`, `credit_activation`, `profile_change`, `payout` (a merchant's),
    /// `withdrawal` (from a wallet to a card) or `scheduled_payout` (after settlement).
    pub kind: String,
    /// When it ended: the answer it completed with (`{kind, body}` for credit operations, the
    /// payout or wallet operation for money out), or the refusal (`{code, message}`).
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Value>,
    /// The decision's reason codes.
    pub reasons: Vec<String>,
    /// `waiting_for_code`, `under_review`, `completed` or `refused`.
    pub status: String,
}

impl HeldOperationBody {
    pub fn new(row: &HeldOperationRow) -> Self {
        HeldOperationBody {
            action: row.action.clone(),
            attempts_left: (row.status == "waiting_for_code")
                .then(|| i64::from(STEP_UP_ATTEMPTS_MAX) - row.attempts),
            case_id: row.case_id.clone(),
            code_expires_at: row.code_expires_at,
            id: row.id.clone(),
            kind: row.kind.clone(),
            outcome: row
                .outcome
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            reasons: serde_json::from_str(&row.reasons).unwrap_or_default(),
            status: row.status.clone(),
        }
    }
}

/// A held operation's answer: `202 Accepted` with where it stands.
pub fn held_reply(row: &HeldOperationRow) -> (StatusCode, axum::Json<Value>) {
    let body = serde_json::to_value(HeldOperationBody::new(row)).unwrap_or(Value::Null);
    (StatusCode::ACCEPTED, axum::Json(body))
}

/// The answer of gated money out (a payout, a withdrawal): the payment's own answer with
/// `status`, or `202` with the held operation; a refusal as `refusal` answers it (the
/// payment service's own in the payment routes' form, the gate's by [`gate_error`]).
pub fn paid_reply<T: Serialize>(
    status: StatusCode,
    paid: Result<Paid<T>, GateError>,
    refusal: impl FnOnce(GateError) -> axum::response::Response,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match paid {
        Ok(Paid::Done(view)) => (status, axum::Json(view)).into_response(),
        Ok(Paid::Held(held)) => held_reply(&held).into_response(),
        Err(error) => refusal(error),
    }
}

/// The gate of this process, or `503 risk_unavailable`.
pub fn gate(state: &AppState) -> Result<&Arc<RiskGate>, ApiError> {
    state.risk_gate.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "risk_unavailable",
            "the risk engine is not running in this process",
        )
    })
}

/// The HTTP form of a refusal of the risk gate.
pub fn gate_error(error: GateError) -> ApiError {
    let code = error.code().to_string();
    let status = match &error {
        GateError::Operation(_) | GateError::Risk(_) | GateError::Store(_) => {
            return match error {
                GateError::Operation(error) => crate::routes::credit::operation_error(error),
                GateError::Risk(error) => error.into(),
                GateError::Store(error) => error.into(),
                _ => ApiError::internal("unreachable gate error"),
            }
        }
        GateError::Opening(_) => {
            return match error {
                GateError::Opening(error) => crate::routes::credit::opening_error(error),
                _ => ApiError::internal("unreachable gate error"),
            }
        }
        GateError::Rejected { .. }
        | GateError::KeyReused(_)
        | GateError::NotWaitingForCode { .. }
        | GateError::Ended { .. }
        | GateError::Profile(ProfileError::PhoneTaken) => StatusCode::CONFLICT,
        GateError::CustomerUnknown(_) | GateError::HeldNotFound(_) => StatusCode::NOT_FOUND,
        GateError::PrivacyKeysNotConfigured
        | GateError::Profile(ProfileError::PrivacyKeysNotConfigured) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // A held payout whose completion met storage or a bank answer not known yet: it
        // stays held, and the same code or case move tries again.
        error @ (GateError::Payout(_) | GateError::Payment(_)) if payout::retryable(error) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, code, error.to_string())
}

#[utoipa::path(
    get, path = "/v1/held-operations/{id}", tag = "risk",
    params(("id" = String, Path, description = "The held operation's id (its risk event's id)")),
    responses(
        (status = 200, description = "Where the held operation stands", body = HeldOperationBody),
        (status = 404, description = "No such held operation (`risk_held_operation_not_found`)", body = ErrorBody),
        (status = 503, description = "The risk engine is not running in this process (`risk_unavailable`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn held_operation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<HeldOperationBody>, ApiError> {
    let held = gate(&state)?.held(&id).await.map_err(gate_error)?;
    Ok(axum::Json(HeldOperationBody::new(&held)))
}

/// The one-time code the customer received.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Six digits.
    pub code: String,
}

#[utoipa::path(
    post, path = "/v1/held-operations/{id}/code", tag = "risk",
    request_body = CodeRequest,
    params(("id" = String, Path, description = "The held operation's id (its risk event's id)")),
    responses(
        (status = 200, description = "The right code: the operation was completed, and this is what it answered (`{kind, body}` for credit operations: `created` is the 201 the request would have had; a profile change's answer)", body = Object),
        (status = 404, description = "No such held operation (`risk_held_operation_not_found`)", body = ErrorBody),
        (status = 409, description = "Not waiting for a code (`risk_held_operation_not_waiting_for_code`); ended by the third wrong code (`step_up_failed`) or an expired code (`step_up_expired`); the operation itself refused when it ran (its own code, e.g. `credit_insufficient`)", body = ErrorBody),
        (status = 422, description = "A wrong code (`step_up_code_wrong`), with the attempts left", body = ErrorBody),
        (status = 503, description = "The risk engine is not running in this process (`risk_unavailable`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn enter_code(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<CodeRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let answer = gate(&state)?
        .enter_code(&id, &request.code)
        .await
        .map_err(gate_error)?;
    Ok(axum::Json(answer))
}
