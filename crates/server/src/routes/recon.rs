//! Reconciliation routes: the runs of Tally's books (`tally recon books`, `tally daily`)
//! and their exceptions as a worklist — list and read, assign, resolve with a note or with
//! an adjusting journal entry that references the exception. Reads need `recon:read`,
//! changes `recon:write`.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::state::AppState;
use crate::wire::recon::{
    AssignExceptionRequest, ExceptionList, ExceptionsQuery, ResolveExceptionRequest, RunList,
    RunsQuery,
};
use axum::extract::State;
use axum::http::StatusCode;
use tally_service::recon::{ExceptionView, ReconServiceError, ReconWorklist, RunView};
use tally_store::recon::ExceptionFilter;

/// Items of a page when the request names no limit.
const PAGE_LIMIT_DEFAULT: i64 = 100;

fn worklist(state: &AppState) -> ReconWorklist {
    ReconWorklist::new(state.database.clone(), state.writer.clone())
}

/// The answer to a refusal of the reconciliation service.
pub fn recon_error(error: ReconServiceError) -> ApiError {
    let code = error.code();
    let status = match &error {
        ReconServiceError::Store(_)
        | ReconServiceError::Engine(_)
        | ReconServiceError::LedgerSide { .. } => return ApiError::internal(error),
        ReconServiceError::RunNotFound(_) | ReconServiceError::ExceptionNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        ReconServiceError::ExceptionResolved { .. } | ReconServiceError::Conflict(_) => {
            StatusCode::CONFLICT
        }
        ReconServiceError::LedgerUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, code, error.to_string())
}

fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(PAGE_LIMIT_DEFAULT),
        Some(limit @ 1..=500) => Ok(limit),
        Some(limit) => Err(ApiError::unprocessable(
            "invalid_recon_field",
            format!("limit {limit} is not between 1 and 500"),
        )),
    }
}

#[utoipa::path(
    get, path = "/v1/recon/runs", tag = "recon",
    params(RunsQuery),
    responses(
        (status = 200, description = "Reconciliation runs of Tally's books, latest date first: records on each side, matched, exceptions opened, timing items carried in and matched, and the summary by class and currency", body = RunList),
        (status = 422, description = "A limit outside 1 to 500 (`invalid_recon_field`)", body = ErrorBody),
    ),
    security(("api_key" = ["recon:read"]))
)]
pub async fn list_runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<axum::Json<RunList>, ApiError> {
    let limit = limit(query.limit)?;
    let runs = worklist(&state)
        .runs(query.before.as_deref(), limit)
        .await
        .map_err(recon_error)?;
    Ok(axum::Json(RunList { runs }))
}

#[utoipa::path(
    get, path = "/v1/recon/runs/{business_date}", tag = "recon",
    params(("business_date" = String, Path, description = "The run's date, YYYY-MM-DD")),
    responses(
        (status = 200, description = "The run of that date", body = RunView),
        (status = 404, description = "No run of that date (`recon_run_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["recon:read"]))
)]
pub async fn get_run(
    State(state): State<AppState>,
    Path(business_date): Path<String>,
) -> Result<axum::Json<RunView>, ApiError> {
    let run = worklist(&state)
        .run(&business_date)
        .await
        .map_err(recon_error)?;
    Ok(axum::Json(run))
}

#[utoipa::path(
    get, path = "/v1/recon/exceptions", tag = "recon",
    params(ExceptionsQuery),
    responses(
        (status = 200, description = "Exceptions matching every filter given, by run date and then as the run found them", body = ExceptionList),
        (status = 404, description = "A `run` filter naming a date with no run (`recon_run_not_found`)", body = ErrorBody),
        (status = 422, description = "A class or state that does not exist, or a limit outside 1 to 500 (`invalid_recon_field`)", body = ErrorBody),
    ),
    security(("api_key" = ["recon:read"]))
)]
pub async fn list_exceptions(
    State(state): State<AppState>,
    Query(query): Query<ExceptionsQuery>,
) -> Result<axum::Json<ExceptionList>, ApiError> {
    let limit = limit(query.limit)?;
    let filter = ExceptionFilter {
        business_date: query.run,
        class: query.class,
        state: query.state,
        assignee: query.assignee,
    };
    let exceptions = worklist(&state)
        .exceptions(&filter, query.after.as_deref(), limit)
        .await
        .map_err(recon_error)?;
    Ok(axum::Json(ExceptionList { exceptions }))
}

#[utoipa::path(
    get, path = "/v1/recon/exceptions/{id}", tag = "recon",
    params(("id" = String, Path, description = "Exception id, `rex_YYYYMMDD_NNNNNNNN`")),
    responses(
        (status = 200, description = "The exception", body = ExceptionView),
        (status = 404, description = "No such exception (`recon_exception_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["recon:read"]))
)]
pub async fn get_exception(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ExceptionView>, ApiError> {
    let exception = worklist(&state).exception(&id).await.map_err(recon_error)?;
    Ok(axum::Json(exception))
}

#[utoipa::path(
    post, path = "/v1/recon/exceptions/{id}/assign", tag = "recon",
    request_body = AssignExceptionRequest,
    params(("id" = String, Path, description = "Exception id")),
    responses(
        (status = 200, description = "The exception, assigned (again, or to another person, while it is not resolved)", body = ExceptionView),
        (status = 404, description = "No such exception (`recon_exception_not_found`)", body = ErrorBody),
        (status = 409, description = "Resolved already (`recon_exception_resolved`), or changed meanwhile (`recon_exception_conflict`)", body = ErrorBody),
        (status = 422, description = "A blank or over-long assignee (`invalid_recon_field`)", body = ErrorBody),
    ),
    security(("api_key" = ["recon:write"]))
)]
pub async fn assign_exception(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<AssignExceptionRequest>,
) -> Result<axum::Json<ExceptionView>, ApiError> {
    let exception = worklist(&state)
        .assign(&id, &request.assignee, state.clock.now())
        .await
        .map_err(recon_error)?;
    Ok(axum::Json(exception))
}

#[utoipa::path(
    post, path = "/v1/recon/exceptions/{id}/resolve", tag = "recon",
    request_body = ResolveExceptionRequest,
    params(("id" = String, Path, description = "Exception id")),
    responses(
        (status = 200, description = "The exception, resolved with the note, and with the adjusting entry's id when one was posted (its metadata `recon_exception` names the exception)", body = ExceptionView),
        (status = 404, description = "No such exception (`recon_exception_not_found`)", body = ErrorBody),
        (status = 409, description = "Resolved already (`recon_exception_resolved`), or changed meanwhile (`recon_exception_conflict`)", body = ErrorBody),
        (status = 422, description = "A blank or over-long note or description (`invalid_recon_field`); an unknown account code (`account_not_found`); an entry the ledger refuses, nothing posted: `entry_unbalanced`, `currency_mismatch`, `entry_too_few_legs`, `invalid_amount`, `invalid_side`, …", body = ErrorBody),
        (status = 503, description = "The ledger could not store the entry; retrying is safe (`ledger_unavailable`)", body = ErrorBody),
    ),
    security(("api_key" = ["recon:write"]))
)]
pub async fn resolve_exception(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<ResolveExceptionRequest>,
) -> Result<axum::Json<ExceptionView>, ApiError> {
    let resolution = request.parse()?;
    let exception = worklist(&state)
        .resolve(&id, resolution, state.clock.now())
        .await
        .map_err(recon_error)?;
    Ok(axum::Json(exception))
}
