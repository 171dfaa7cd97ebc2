//! The product catalog: the products offered, and a product added by an administrator.

use super::{operation_error, service};
use crate::error::{ApiError, ErrorBody};
use crate::json::Json;
use crate::state::AppState;
use crate::wire::credit::{ProductAddedBody, ProductBody, ProductList};
use axum::extract::State;
use axum::http::StatusCode;

#[utoipa::path(
    get, path = "/v1/credit/products", tag = "credit",
    responses(
        (status = 200, description = "The product catalog", body = ProductList),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn products(State(state): State<AppState>) -> Result<axum::Json<ProductList>, ApiError> {
    let service = service(&state)?;
    Ok(axum::Json(ProductList {
        products: service.operations.catalog().products.clone(),
    }))
}

/// Adds a product to the catalog (scope `admin`): validated like the catalog file's.
#[utoipa::path(
    post, path = "/v1/credit/products", tag = "credit",
    request_body(content = ProductBody, description = "A product as in the catalog file (code, name, currency, fee_model, terms with optional tier_rates, rounding, remainder_on, early_payoff, fees_refundable)"),
    responses(
        (status = 201, description = "Added", body = ProductAddedBody),
        (status = 409, description = "The code exists (`credit_product_exists`)", body = ErrorBody),
        (status = 422, description = "Invalid product, or a tier rate for a tier no score band gives (`credit_invalid_product`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn add_product(
    State(state): State<AppState>,
    Json(product): Json<tally_credit::Product>,
) -> Result<(StatusCode, axum::Json<ProductAddedBody>), ApiError> {
    let service = service(&state)?;
    product
        .validate()
        .map_err(|error| ApiError::unprocessable("credit_invalid_product", error.to_string()))?;
    tally_service::credit::decision::check_tiers(&product, &service.decision.score_policy)
        .map_err(|message| ApiError::unprocessable("credit_invalid_product", message))?;
    let code = product.code.clone();
    service
        .operations
        .add_product(product, state.clock.now())
        .await
        .map_err(operation_error)?;
    let product = service.operations.catalog().product(&code).cloned();
    Ok((
        StatusCode::CREATED,
        axum::Json(ProductAddedBody { product }),
    ))
}
