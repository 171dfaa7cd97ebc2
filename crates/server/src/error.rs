//! The one error shape of the API: `{"error":{"code":"...","message":"..."}}` with a stable
//! code and the right status. Internal failures are logged and answered without detail.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tally_core::MoneyError;
use tally_ledger::LedgerError;
use tally_risk::RiskError;
use tally_service::risk::{RiskRequestError, RiskServiceError};
use tally_service::stolen_accounts::ClaimError;
use tally_store::{StoreError, WriteError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable codes are written in Tally's source; a few come from a service's stored
    /// outcome (a payment's decline), hence a `Cow`.
    pub code: std::borrow::Cow<'static, str>,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `entry_unbalanced`. Never renamed.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<std::borrow::Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A failure that is not the client's: logged in full, answered without detail.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request may be retried with the same idempotency key",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        let status = match &error {
            LedgerError::AccountNotFound(_) | LedgerError::HoldNotFound(_) => StatusCode::NOT_FOUND,
            LedgerError::AccountCodeTaken(_) | LedgerError::HoldNotPending { .. } => {
                StatusCode::CONFLICT
            }
            LedgerError::AccountOwnedByService { .. }
            | LedgerError::AccountOutsideKeyNamespace { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<MoneyError> for ApiError {
    fn from(error: MoneyError) -> Self {
        ApiError::from(LedgerError::from(error))
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Ledger(error) => error.into(),
            WriteError::KeyReused(key) => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                format!("idempotency key {key:?} was already used for a different request"),
            ),
            WriteError::Unavailable(reason) => {
                tracing::error!(%reason, "ledger write failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the ledger could not store the write; retry with the same idempotency key",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::internal(error)
    }
}

impl From<RiskError> for ApiError {
    fn from(error: RiskError) -> Self {
        let status = match error {
            RiskError::UnknownVersion(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

/// The risk service's own failures are internal: its refusals of a request are
/// [`RiskError`]s, given straight to the route.
impl From<RiskServiceError> for ApiError {
    fn from(error: RiskServiceError) -> Self {
        match error {
            RiskServiceError::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

/// A refusal of the risk service's use cases, with the status of its kind.
impl From<RiskRequestError> for ApiError {
    fn from(error: RiskRequestError) -> Self {
        let code = error.code();
        let status = match error {
            RiskRequestError::Refused(error) => return error.into(),
            RiskRequestError::Service(error) => return error.into(),
            RiskRequestError::EventInFuture { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RiskRequestError::EventIdReused(_)
            | RiskRequestError::ActivationRequestDecided { .. } => StatusCode::CONFLICT,
            RiskRequestError::DecisionNotStored => StatusCode::SERVICE_UNAVAILABLE,
            RiskRequestError::ActivationRequestNotFound(_) => StatusCode::NOT_FOUND,
            RiskRequestError::ApproverIsRequester => StatusCode::FORBIDDEN,
            RiskRequestError::InvalidCaseQuery(_) => StatusCode::BAD_REQUEST,
            RiskRequestError::CaseNotFound(_) | RiskRequestError::UnknownCaseAction => {
                StatusCode::NOT_FOUND
            }
            RiskRequestError::EmptyNote => StatusCode::UNPROCESSABLE_ENTITY,
            RiskRequestError::CaseWrongStatus { .. }
            | RiskRequestError::CaseMovedMeanwhile(_)
            | RiskRequestError::CaseClaimedByAnother { .. } => StatusCode::CONFLICT,
            ref other => return ApiError::internal(other),
        };
        ApiError::new(status, code, error.to_string())
    }
}

/// A refusal of the stolen-account flow, with the status of its kind.
impl From<ClaimError> for ApiError {
    fn from(error: ClaimError) -> Self {
        let code = error.code();
        let status = match error {
            ClaimError::Risk(error) => return error.into(),
            ClaimError::Credit { error, .. } => {
                return crate::routes::credit::operation_error(error)
            }
            ClaimError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ClaimError::NotAClaim(_) => StatusCode::NOT_FOUND,
            ClaimError::NotConfirmed { .. } | ClaimError::AlreadyRestored(_) => {
                StatusCode::CONFLICT
            }
        };
        ApiError::new(status, code, error.to_string())
    }
}

/// Longest request target (path and query string) Tally reads; a longer one is answered
/// `414 uri_too_long`. Below hyper's own limit (64 KiB), which answers without a body.
pub const URI_LENGTH_MAX: usize = 8 * 1024;

/// Middleware: refuses a request target longer than [`URI_LENGTH_MAX`] before routing.
pub async fn limit_uri_length(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > URI_LENGTH_MAX {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {length} bytes; at most {URI_LENGTH_MAX} are read"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Middleware (response side): a 4xx answered without Tally's JSON error body, by axum
/// (405 of a route without that method, 404, 413, 415, ...) or a tower layer, gets one with
/// a code named after its status, keeping the response's other headers (`Allow`,
/// `WWW-Authenticate`). Every client error then has the one shape clients parse; an HTML
/// page (the console's) is left as it is.
pub async fn json_client_errors(response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    // The console's pages answer their own refusals in HTML, for a person.
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "missing or invalid API key"),
        StatusCode::FORBIDDEN => ("forbidden", "the API key may not do this"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long to arrive"),
        StatusCode::LENGTH_REQUIRED => ("length_required", "the request needs a Content-Length"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the request body must be application/json",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "request_headers_too_large",
            "the request headers are too large",
        ),
        _ => ("client_error", "the request was refused"),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = ApiError::new(status, code, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in replacement.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, replacement.into_body())
}
