//! Route handlers, by area.

pub mod consortium;
pub mod credit;
pub mod customers;
pub mod disputes;
pub mod held;
pub mod ledger;
pub mod merchants;
pub mod payments;
pub mod payouts;
pub mod profile;
pub mod recon;
pub mod reports;
pub mod risk;

use crate::error::ApiError;
use axum::http::StatusCode;

/// Liveness: answers without authentication.
pub async fn health() -> &'static str {
    "ok"
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
