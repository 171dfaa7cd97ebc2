//! A strict JSON extractor: malformed JSON, unknown fields, wrong types, a missing content
//! type and oversized bodies each get their own stable error code instead of axum's text.
//!
//! A number with a zero fraction (`12.0`) is read where an integer is expected: JSON
//! Schema, which the OpenAPI document speaks, counts it an integer, and serde does not.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(request.headers()) {
            return Err(missing_content_type());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| rejection_to_error(rejection.into()))?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection @ JsonRejection::JsonDataError(_)) => {
                // Only a body that failed is read again, so every other answer and message
                // stays serde's own.
                integral_numbers_as_integers(&bytes)
                    .map(Json)
                    .ok_or_else(|| rejection_to_error(rejection))
            }
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

/// The body read again with every number that has a zero fraction written as the integer
/// it is; `None` when that changes nothing or still does not read.
fn integral_numbers_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    if !make_integral_numbers_integers(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Rewrites `12.0` as `12` throughout `value` (within ±2^53, where a double holds every
/// integer exactly); true if anything changed.
fn make_integral_numbers_integers(value: &mut Value) -> bool {
    const EXACT_MAX: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(number) => {
            let Some(float) = number.as_f64().filter(|_| number.is_f64()) else {
                return false;
            };
            if float.fract() != 0.0 || float.abs() > EXACT_MAX {
                return false;
            }
            // Exact: the value is an integer within ±2^53.
            *number = serde_json::Number::from(float as i64);
            true
        }
        // Every item is visited, changed or not.
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= make_integral_numbers_integers(item);
            }
            changed
        }
        Value::Object(fields) => {
            let mut changed = false;
            for item in fields.values_mut() {
                changed |= make_integral_numbers_integers(item);
            }
            changed
        }
        _ => false,
    }
}

/// Whether the request says its body is JSON, as axum's extractor decides it:
/// `application/json` or `application/...+json`, with any parameters.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some((kind, subtype)) => {
            kind == "application" && (subtype == "json" || subtype.ends_with("+json"))
        }
        None => false,
    }
}

fn missing_content_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected Content-Type: application/json",
    )
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
        JsonRejection::MissingJsonContentType(_) => missing_content_type(),
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

#[cfg(test)]
mod tests {
    use super::integral_numbers_as_integers;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Term {
        periods: u32,
        count: Option<i64>,
    }

    #[test]
    fn numbers_with_a_zero_fraction_read_as_integers() {
        assert_eq!(
            integral_numbers_as_integers::<Term>(br#"{"periods": 12.0, "count": -1.0}"#),
            Some(Term {
                periods: 12,
                count: Some(-1)
            })
        );
        assert_eq!(
            integral_numbers_as_integers::<Vec<Term>>(br#"[{"periods": 3e0}]"#),
            Some(vec![Term {
                periods: 3,
                count: None
            }])
        );
        // A fraction, a number past 2^53 or a body that reads no better stays refused.
        assert_eq!(
            integral_numbers_as_integers::<Term>(br#"{"periods": 12.5}"#),
            None
        );
        assert_eq!(
            integral_numbers_as_integers::<Term>(br#"{"periods": 1e300}"#),
            None
        );
        assert_eq!(
            integral_numbers_as_integers::<Term>(br#"{"periods": -1.0}"#),
            None
        );
        assert_eq!(
            integral_numbers_as_integers::<Term>(br#"{"periods": 2}"#),
            None
        );
    }
}
