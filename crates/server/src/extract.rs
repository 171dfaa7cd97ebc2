//! Path and query extractors that answer a bad path parameter or query string with the API's
//! error shape and a stable code (`invalid_id`, `invalid_query`) instead of axum's plain
//! text, as [`crate::json::Json`] does for bodies.

use crate::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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
