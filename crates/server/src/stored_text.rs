//! Refuses, at the edge, requests carrying text that a store cannot keep.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold the NUL character (U+0000); SQLite can. A NUL
//! that reached the store used to fail late and differently per backend (`503
//! storage_unavailable`, which a retry can never fix, or `500`), after side effects such as
//! counting a risk event, and it sent the ledger writer into retrying its batch one write
//! at a time. Every request is therefore checked once, before any handler runs, on every
//! route and both backends alike: a NUL in the path, the query string or any string of a
//! JSON body (escaped as `\u0000`; a raw NUL byte is already malformed JSON) answers `400
//! invalid_text` and changes nothing. serde_json already refuses the other text no store
//! can keep (invalid UTF-8, lone surrogates).

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The refusal of a request that carries a NUL character.
fn refusal(place: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_text",
        format!(
            "the request's {place} contains the NUL character (U+0000), which no text field accepts"
        ),
    )
}

/// The largest bodies the middleware reads: the batch route's, and every other route's.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub batch: usize,
}

/// The route of ledger batches, whose body may exceed the default limit.
const BATCH_PATH: &str = "/v1/entries/batch";

/// Whether `path` takes the batch limit: ledger batches, and payout batches and their
/// bank return files (1,000 payouts do not fit the default limit).
fn takes_batch_limit(path: &str) -> bool {
    path == BATCH_PATH
        || path == "/v1/payouts/batches"
        || (path.starts_with("/v1/payouts/batches/") && path.ends_with("/return-file"))
}

/// Middleware: refuses a request whose path, query string or body holds a NUL character.
/// The route's limit in `limits` is the largest body read; a larger one answers `413
/// payload_too_large`, as the JSON extractor would.
pub async fn refuse_unstorable_text(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let uri = request.uri();
    let body_limit_bytes = if takes_batch_limit(uri.path()) {
        limits.batch
    } else {
        limits.default
    };
    if percent_escaped_nul(uri.path().as_bytes()) {
        return refusal("path").into_response();
    }
    if uri
        .query()
        .is_some_and(|query| percent_escaped_nul(query.as_bytes()) || query.as_bytes().contains(&0))
    {
        return refusal("query string").into_response();
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, body_limit_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than the limit",
            )
            .into_response()
        }
    };
    if json_escaped_nul(&bytes) {
        return refusal("body").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether `text` holds `%00`, a percent-escaped NUL.
fn percent_escaped_nul(text: &[u8]) -> bool {
    text.windows(3).any(|window| window == b"%00")
}

/// Whether a JSON text holds the escape `\u0000` inside a string. Backslashes are read in
/// pairs, so the escaped backslash of `"\\u0000"` (the six visible characters `\u0000`)
/// is not taken for a NUL.
fn json_escaped_nul(json: &[u8]) -> bool {
    let mut index = 0;
    while let Some(offset) = memchr::memchr(b'\\', &json[index..]) {
        let at = index + offset;
        match json.get(at + 1) {
            Some(b'u') if json.get(at + 2..at + 6) == Some(b"0000") => return true,
            // Any other escape is two bytes long; skip both so that `\\` is one escape.
            Some(_) => index = at + 2,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{json_escaped_nul, percent_escaped_nul};

    #[test]
    fn finds_an_escaped_nul_in_json_strings_only() {
        assert!(json_escaped_nul(br#"{"description": "a\u0000b"}"#));
        assert!(json_escaped_nul(br#"{"a\u0000": 1}"#));
        assert!(json_escaped_nul(br#"["\\\u0000"]"#));
        // An escaped backslash followed by the letters u0000 is ordinary text.
        assert!(!json_escaped_nul(br#"{"description": "\\u0000"}"#));
        assert!(!json_escaped_nul(br#"{"description": "\u0001 \n \" \\"}"#));
        assert!(json_escaped_nul(br#"{"description": "\u00001"}"#));
        assert!(!json_escaped_nul(b"\\"));
        assert!(!json_escaped_nul(b""));
    }

    #[test]
    fn finds_a_percent_escaped_nul() {
        assert!(percent_escaped_nul(b"code=a%00b"));
        assert!(!percent_escaped_nul(b"code=a%200"));
        assert!(!percent_escaped_nul(b"%0"));
    }
}
