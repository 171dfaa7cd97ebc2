//! Report routes: the daily flow of funds per currency as JSON, or as CSV when the request
//! accepts `text/csv` or asks `format=csv`. Reports cover every merchant's money, so they
//! need the `admin` scope.

use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::routes::payments::payment_service;
use crate::state::AppState;
use crate::wire::parse_currency;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tally_service::reports::{flow_of_funds, FlowOfFunds, ReportError};

/// The query of `GET /v1/reports/flow-of-funds`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FlowOfFundsQuery {
    /// The business date, YYYY-MM-DD, a day in the service's zone that is over.
    pub date: String,
    /// ISO 4217 code.
    pub currency: String,
    /// `json` (the default) or `csv`.
    pub format: Option<String>,
}

fn report_error(error: ReportError) -> ApiError {
    let status = match error {
        ReportError::DateNotClosed { .. } | ReportError::InvalidDate(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ReportError::Store(error) => return error.into(),
        other => return ApiError::internal(other),
    };
    ApiError::new(status, error.code(), error.to_string())
}

fn wants_csv(headers: &HeaderMap, format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::unprocessable(
            "invalid_report_format",
            format!("format {other:?} is not one of json, csv"),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"))),
    }
}

#[utoipa::path(
    get, path = "/v1/reports/flow-of-funds", tag = "reports",
    params(FlowOfFundsQuery),
    responses(
        (status = 200, description = "The day's flow of funds of the payment service in the currency, from the ledger's posted legs: captured, refunded, fees, settled to merchants, reserves, paid out, the channel's clearing, and every balance by account role with opening, increases, decreases (by kind of movement) and closing. CSV (`text/csv`, one figure a line) when the request accepts it or asks `format=csv`", body = FlowOfFunds),
        (status = 400, description = "No date or currency, or another parameter (`invalid_query`)", body = ErrorBody),
        (status = 422, description = "Not a date (`invalid_business_date`), not an ISO 4217 currency (`unknown_currency`), a day not over yet in the service's zone (`report_date_not_closed`), a format other than json or csv (`invalid_report_format`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"]))
)]
pub async fn get_flow_of_funds(
    State(state): State<AppState>,
    Query(query): Query<FlowOfFundsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let date: jiff::civil::Date = query.date.parse().map_err(|_| {
        ApiError::unprocessable(
            "invalid_business_date",
            format!("{:?} is not a date (YYYY-MM-DD)", query.date),
        )
    })?;
    let currency = parse_currency(&query.currency)?;
    let csv = wants_csv(&headers, query.format.as_deref())?;
    let service = payment_service(&state)?;
    let report = flow_of_funds(
        service.database(),
        &service.time_zone(),
        date,
        currency,
        state.clock.now(),
    )
    .await
    .map_err(report_error)?;
    if csv {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report.to_csv(),
        )
            .into_response());
    }
    Ok((StatusCode::OK, axum::Json(report)).into_response())
}
