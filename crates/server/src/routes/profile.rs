//! Customer profile changes: a new phone, a new name, a delivery address, a bound bank card. Each is
//! decided by the risk engine first (a `profile_change` event) and applied sealed, with its
//! audit row, by `tally_service::risk_gate::profile`; a stepped-up or reviewed change is
//! answered `202` with the held operation.

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{idempotency_key, Path};
use crate::json::Json;
use crate::routes::held::{gate, gate_error, held_reply, HeldOperationBody};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tally_service::risk_gate::profile::{NewValue, ProfileChangeRequest, ProfileOutcome};
use tally_service::risk_gate::Subject;
use utoipa::ToSchema;
use uuid::Uuid;

/// A new phone number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePhoneRequest {
    /// A mobile number in any accepted form (`+86 138-0013-8000`).
    pub phone: String,
    /// The device the customer acts from (the lender's device id), for the risk engine.
    pub device: Option<String>,
    /// The customer's IP address, for the risk engine.
    pub ip: Option<String>,
}

/// A new name, as on the identity document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeNameRequest {
    /// 1 to 100 characters without control characters (`欧阳娜娜`).
    pub name: String,
    pub device: Option<String>,
    pub ip: Option<String>,
}

/// A new delivery address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAddressRequest {
    /// The address as the customer writes it (1 to 300 characters).
    pub address: String,
    pub device: Option<String>,
    pub ip: Option<String>,
}

/// A bank card to bind.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindBankCardRequest {
    /// 12 to 19 digits (spaces and dashes ignored) with a valid Luhn check digit.
    pub card_number: String,
    pub device: Option<String>,
    pub ip: Option<String>,
}

/// A profile change applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileChangedBody {
    #[schema(value_type = String, format = DateTime)]
    pub changed_at: String,
    pub customer_id: Uuid,
    /// `phone`, `name`, `address` or `bank_card`.
    pub field: String,
    /// The risk engine's action that let it through (`approve`, or `step_up`/`review` for a
    /// held change completed later).
    pub risk_action: String,
    pub risk_event_id: String,
}

type Reply = Result<(StatusCode, axum::Json<Value>), ApiError>;

/// A profile change request: the new value, and who acts from where.
trait ProfileRequest {
    fn into_change(self) -> (NewValue, Subject);
}

fn subject(device: Option<String>, ip: Option<String>) -> Subject {
    Subject {
        device,
        ip,
        address: None,
    }
}

impl ProfileRequest for ChangePhoneRequest {
    fn into_change(self) -> (NewValue, Subject) {
        (NewValue::Phone(self.phone), subject(self.device, self.ip))
    }
}

impl ProfileRequest for ChangeNameRequest {
    fn into_change(self) -> (NewValue, Subject) {
        (NewValue::Name(self.name), subject(self.device, self.ip))
    }
}

impl ProfileRequest for ChangeAddressRequest {
    fn into_change(self) -> (NewValue, Subject) {
        (
            NewValue::Address(self.address),
            subject(self.device, self.ip),
        )
    }
}

impl ProfileRequest for BindBankCardRequest {
    fn into_change(self) -> (NewValue, Subject) {
        (
            NewValue::BankCard(self.card_number),
            subject(self.device, self.ip),
        )
    }
}

/// The one body of the four profile routes: they differ only in the value they change.
async fn change(
    state: AppState,
    principal: Principal,
    customer: String,
    headers: HeaderMap,
    request: impl ProfileRequest,
) -> Reply {
    let key = idempotency_key(&headers)?;
    let customer = customer
        .parse::<Uuid>()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{customer:?} is not a UUID")))?
        .to_string();
    let (value, subject) = request.into_change();
    let caller = principal.caller();
    let outcome = gate(&state)?
        .change_profile(ProfileChangeRequest {
            key: &key,
            customer: &customer,
            value,
            subject,
            caller: &caller,
        })
        .await
        .map_err(gate_error)?;
    Ok(match outcome {
        ProfileOutcome::Changed(answer) => (StatusCode::OK, axum::Json(answer)),
        ProfileOutcome::Held(held) => held_reply(&held),
    })
}

#[utoipa::path(
    post, path = "/v1/customers/{id}/phone", tag = "customers",
    request_body = ChangePhoneRequest,
    params(("id" = Uuid, Path, description = "Customer id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "Changed: sealed, its blind index replaced, audited", body = ProfileChangedBody),
        (status = 202, description = "Held by the risk engine: a one-time code was sent (`step_up`) or an analyst reviews it (`review`)", body = HeldOperationBody),
        (status = 404, description = "No such customer (`customer_unknown`)", body = ErrorBody),
        (status = 409, description = "Refused by the risk engine with its reason codes (`risk_rejected`); another customer has the number (`customer_phone_taken`); idempotency key reused", body = ErrorBody),
        (status = 422, description = "Not a phone number (`invalid_phone`), a device or IP over 256 characters (`risk_invalid_event`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys, or no risk engine in this process", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn change_phone(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<ChangePhoneRequest>,
) -> Reply {
    change(state, principal, id, headers, request).await
}

#[utoipa::path(
    post, path = "/v1/customers/{id}/name", tag = "customers",
    request_body = ChangeNameRequest,
    params(("id" = Uuid, Path, description = "Customer id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "Changed: sealed and audited (the risk event carries no name, only the field changed)", body = ProfileChangedBody),
        (status = 202, description = "Held by the risk engine (`step_up` or `review`)", body = HeldOperationBody),
        (status = 404, description = "No such customer (`customer_unknown`)", body = ErrorBody),
        (status = 409, description = "Refused by the risk engine with its reason codes (`risk_rejected`); idempotency key reused", body = ErrorBody),
        (status = 422, description = "Blank, over 100 characters or with control characters (`invalid_name`); a device or IP over 256 characters (`risk_invalid_event`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys, or no risk engine in this process", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn change_name(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<ChangeNameRequest>,
) -> Reply {
    change(state, principal, id, headers, request).await
}

#[utoipa::path(
    post, path = "/v1/customers/{id}/address", tag = "customers",
    request_body = ChangeAddressRequest,
    params(("id" = Uuid, Path, description = "Customer id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "Changed: sealed and audited", body = ProfileChangedBody),
        (status = 202, description = "Held by the risk engine (`step_up` or `review`)", body = HeldOperationBody),
        (status = 404, description = "No such customer (`customer_unknown`)", body = ErrorBody),
        (status = 409, description = "Refused by the risk engine with its reason codes (`risk_rejected`); idempotency key reused", body = ErrorBody),
        (status = 422, description = "Blank, over 300 characters or with control characters (`invalid_address`); a device or IP over 256 characters (`risk_invalid_event`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys, or no risk engine in this process", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn change_address(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<ChangeAddressRequest>,
) -> Reply {
    change(state, principal, id, headers, request).await
}

#[utoipa::path(
    post, path = "/v1/customers/{id}/bank-card", tag = "customers",
    request_body = BindBankCardRequest,
    params(("id" = Uuid, Path, description = "Customer id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "Bound: sealed and audited (the risk event carries only the card's keyed fingerprint)", body = ProfileChangedBody),
        (status = 202, description = "Held by the risk engine (`step_up` or `review`)", body = HeldOperationBody),
        (status = 404, description = "No such customer (`customer_unknown`)", body = ErrorBody),
        (status = 409, description = "Refused by the risk engine with its reason codes (`risk_rejected`); idempotency key reused", body = ErrorBody),
        (status = 422, description = "Not 12 to 19 digits with a valid check digit (`invalid_card_number`); a device or IP over 256 characters (`risk_invalid_event`)", body = ErrorBody),
        (status = 503, description = "No personal-data keys, or no risk engine in this process", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn bind_bank_card(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<BindBankCardRequest>,
) -> Reply {
    change(state, principal, id, headers, request).await
}
