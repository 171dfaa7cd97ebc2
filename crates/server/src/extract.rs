//! What handlers read from a request besides the body: path and query extractors that answer
//! a bad path parameter or query string with the API's error shape and a stable code
//! (`invalid_id`, `invalid_query`) instead of axum's plain text, as [`crate::json::Json`]
//! does for bodies, and the client's `Idempotency-Key` header.

use crate::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use tally_service::credit::ledger_accounts::{reserved_key_prefix, RESERVED_KEY_PREFIXES};

/// Path parameters; one that does not parse (`/accounts/abc` where an integer id is
/// expected, or a percent-escape that is not UTF-8) answers `400 invalid_id`.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                Err(ApiError::bad_request("invalid_id", error.body_text()))
            }
            // No parameters where the handler expects some: the route table is wrong.
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// A query string; a malformed one, a value of the wrong type or an unknown parameter
/// answers `400 invalid_query`.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(query_error)
    }
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", rejection.body_text())
}

/// Longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;

/// The client's idempotency key from the `Idempotency-Key` header, required on every write.
/// Keys starting with a prefix Tally uses for its own keys (`credit:`, `credit-`; see
/// [`RESERVED_KEY_PREFIXES`]) are refused: a client could otherwise take a key the credit
/// service needs, or have a credit operation overwritten by end of day.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get("idempotency-key").ok_or_else(|| {
        ApiError::bad_request(
            "idempotency_key_required",
            "every write needs an Idempotency-Key header",
        )
    })?;
    let key = value.to_str().map_err(|_| invalid_key("Idempotency-Key"))?;
    checked_idempotency_key(key, "Idempotency-Key")
}

/// `key` if it is a valid idempotency key: 1 to [`IDEMPOTENCY_KEY_LENGTH_MAX`] visible ASCII
/// characters, not under a prefix Tally keeps for itself. `what` names it in the refusal
/// (the header, or a batch item's field).
pub fn checked_idempotency_key(key: &str, what: &str) -> Result<String, ApiError> {
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_LENGTH_MAX
        || !key.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(invalid_key(what));
    }
    if let Some(prefix) = reserved_key_prefix(key) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!(
                "{what} must not start with {prefix:?}: keys starting with {} are \
                 reserved for Tally's own records",
                RESERVED_KEY_PREFIXES
                    .iter()
                    .map(|prefix| format!("{prefix:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    Ok(key.to_string())
}

fn invalid_key(what: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_idempotency_key",
        format!("{what} must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} visible ASCII characters"),
    )
}
