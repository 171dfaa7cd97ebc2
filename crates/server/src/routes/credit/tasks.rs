//! The collections queue: open contact tasks, a task added by hand, a task closed.

use super::{operation_error, service, today, ListQuery};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::state::AppState;
use crate::wire::credit::{
    CloseTaskRequest, NewTaskRequest, TaskAddedBody, TaskBody, TaskClosedBody, TaskList,
};
use axum::extract::State;
use axum::http::StatusCode;

#[utoipa::path(
    get, path = "/v1/credit/tasks", tag = "credit",
    params(ListQuery),
    responses(
        (status = 200, description = "Open contact tasks, most urgent first (`?limit=`)", body = TaskList),
        (status = 400, description = "A limit that is not a number, or an unknown query parameter (`invalid_query`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn tasks(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<TaskList>, ApiError> {
    let service = service(&state)?;
    let limit = query
        .limit
        .unwrap_or(100)
        .clamp(1, state.limits.page_size_max);
    let tasks = service
        .operations
        .open_tasks(limit)
        .await
        .map_err(operation_error)?;
    Ok(axum::Json(TaskList {
        tasks: tasks.into_iter().map(TaskBody::from).collect(),
    }))
}

#[utoipa::path(
    post, path = "/v1/credit/tasks", tag = "credit",
    request_body = NewTaskRequest,
    responses(
        (status = 201, description = "Added", body = TaskAddedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "Invalid task", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn add_task(
    State(state): State<AppState>,
    Json(request): Json<NewTaskRequest>,
) -> Result<(StatusCode, axum::Json<TaskAddedBody>), ApiError> {
    let service = service(&state)?;
    let amount = request.amount.parse()?;
    if !matches!(request.kind.as_str(), "alert" | "callback") {
        return Err(ApiError::unprocessable(
            "invalid_task_kind",
            "a task added by hand is an alert or a callback",
        ));
    }
    if !(1..=5).contains(&request.priority) || request.reason.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_task",
            "priority must be 1 to 5 and the reason must not be empty",
        ));
    }
    let id = service
        .operations
        .add_task(
            request.account_id,
            today(&state),
            &request.kind,
            request.reason.trim(),
            amount,
            request.priority,
            state.clock.now(),
        )
        .await
        .map_err(operation_error)?;
    Ok((StatusCode::CREATED, axum::Json(TaskAddedBody { id })))
}

#[utoipa::path(
    post, path = "/v1/credit/tasks/{id}/close", tag = "credit",
    request_body = CloseTaskRequest,
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Closed", body = TaskClosedBody),
        (status = 404, description = "No open task with that id", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn close_task(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(request): Json<CloseTaskRequest>,
) -> Result<axum::Json<TaskClosedBody>, ApiError> {
    let service = service(&state)?;
    if service
        .operations
        .close_task(id, &request.note, state.clock.now())
        .await
        .map_err(operation_error)?
    {
        Ok(axum::Json(TaskClosedBody {
            id,
            status: "closed".into(),
        }))
    } else {
        Err(ApiError::not_found(
            "credit_task_not_found",
            format!("no open task {id}"),
        ))
    }
}
