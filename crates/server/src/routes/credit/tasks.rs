//! The collections queue: open contact tasks, a task added by hand, a task closed, and the
//! contacts recorded on a task (call outcomes, promises to pay, follow-up dates) within the
//! contact hours and the daily limit of `[credit.collections]`.

use super::{operation_error, service, today, ListQuery};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::state::AppState;
use crate::wire::credit::{
    CloseTaskRequest, ContactBody, ContactList, NewContactRequest, NewTaskRequest, TaskAddedBody,
    TaskBody, TaskClosedBody, TaskList,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use tally_service::credit::collections::{ContactError, ContactRequest};

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

#[utoipa::path(
    post, path = "/v1/credit/tasks/{id}/contacts", tag = "credit",
    request_body = NewContactRequest,
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 201, description = "Recorded; the task keeps its outcome, promise and follow-up date", body = ContactBody),
        (status = 404, description = "No open task with that id (`credit_task_not_found`)", body = ErrorBody),
        (status = 422, description = "An outcome that does not carry what it must, an unknown outcome, a promise out of range (`invalid_contact`), or an amount that does not parse", body = ErrorBody),
        (status = 409, description = "Outside the contact hours (`collections_contact_outside_hours`) or past the customer's contacts for the day (`collections_contact_limit_reached`): nothing recorded", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn record_contact(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    Json(request): Json<NewContactRequest>,
) -> Result<(StatusCode, axum::Json<ContactBody>), ApiError> {
    let service = service(&state)?;
    let promise = match (&request.promised_amount, request.promised_date) {
        (None, None) => None,
        (Some(amount), Some(date)) => Some(tally_credit::Promise {
            amount: amount.parse()?,
            date,
        }),
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_contact",
                "a promise names both promised_amount and promised_date",
            ))
        }
    };
    let contact = service
        .record_contact(
            state.privacy.as_deref(),
            &principal.caller(),
            &ContactRequest {
                task_id: id,
                outcome: &request.outcome,
                note: request.note.trim(),
                promise,
                follow_up: request.follow_up_date,
            },
            state.clock.now(),
        )
        .await
        .map_err(contact_error)?;
    Ok((StatusCode::CREATED, axum::Json(ContactBody::from(contact))))
}

fn contact_error(error: ContactError) -> ApiError {
    let code = error.code();
    match &error {
        ContactError::TaskNotFound(_) => ApiError::not_found(code, error.to_string()),
        ContactError::UnknownOutcome(_) => ApiError::unprocessable(code, error.to_string()),
        ContactError::Refused(tally_credit::ContactRefusal::Invalid(_)) => {
            ApiError::unprocessable(code, error.to_string())
        }
        ContactError::Refused(_) => ApiError::new(StatusCode::CONFLICT, code, error.to_string()),
        ContactError::Store(_) => {
            tracing::error!(%error, "a collections contact could not be stored");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                "the contact could not be stored; nothing was recorded",
            )
        }
        _ => ApiError::internal(&error),
    }
}

#[utoipa::path(
    get, path = "/v1/credit/tasks/{id}/contacts", tag = "credit",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "The contacts recorded on the task, oldest first", body = ContactList),
        (status = 404, description = "No task with that id (`credit_task_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn task_contacts(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<axum::Json<ContactList>, ApiError> {
    let service = service(&state)?;
    let contacts = service
        .task_contacts(state.privacy.as_deref(), id)
        .await
        .map_err(|error| contact_error(ContactError::Store(error)))?
        .ok_or_else(|| ApiError::not_found("credit_task_not_found", format!("no task {id}")))?;
    Ok(axum::Json(ContactList {
        contacts: contacts.into_iter().map(ContactBody::from).collect(),
    }))
}
