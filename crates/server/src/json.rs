//! A strict JSON extractor: malformed JSON, unknown fields, wrong types, a missing content
//! type and oversized bodies each get their own stable error code instead of axum's text.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(error) => ApiError::bad_request(
            "malformed_json",
            format!("malformed JSON: {}", error.body_text()),
        ),
        JsonRejection::JsonDataError(error) => {
            let text = error.body_text();
            if text.contains("unknown field") {
                ApiError::bad_request("unknown_field", text)
            } else {
                ApiError::bad_request("invalid_request", text)
            }
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(error) => {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is larger than the limit",
                )
            } else {
                ApiError::bad_request("invalid_body", error.body_text())
            }
        }
        other => ApiError::bad_request("invalid_request", other.body_text()),
    }
}
