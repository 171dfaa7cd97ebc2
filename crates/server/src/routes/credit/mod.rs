//! Credit routes under `/v1/credit`: open an account through the credit decision, read it,
//! change its limit, freeze, unfreeze or close it; authorise purchases (a ledger hold),
//! capture them into installment plans or void them; repay, refund, pay a plan off, put a
//! statement into installments, write off a purchase confirmed stolen, pay the customer's
//! credit balance back to them; statements, the collections queue and the product catalog.
//!
//! Every write needs an `Idempotency-Key`: the first answer is stored with the operation
//! and returned again to a retry (see `tally_service::credit::operations`). The business date
//! of an operation is today in the lender's time zone (`credit.time_zone`, default UTC) by
//! the service clock.
//!
//! Handlers by area: `accounts` (opening, reads, offers, statements, limits and status),
//! `purchases` (authorise, capture, void), `money` (repayments, refunds, payoffs, bill
//! installments, stolen-account write-offs, credit balance payouts), `catalog` (products)
//! and `tasks` (the collections queue). This module holds what they share: the service,
//! today's business date, the HTTP form of a refusal, and running an operation under its
//! idempotency key.

mod accounts;
mod catalog;
mod money;
mod purchases;
mod tasks;

pub use accounts::*;
pub use catalog::*;
pub use money::*;
pub use purchases::*;
pub use tasks::*;

use crate::error::ApiError;
use crate::extract::idempotency_key;
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tally_service::credit::commands::CreditCommand;
use tally_service::credit::decision::CreditService;
use tally_service::credit::operations::{request_hash, Answer, AnswerKind, OperationError};
use tally_store::credit::CreditAccountId;

/// The answer of an operation: stored with it and given again to a retry as stored.
type Reply = Result<(StatusCode, axum::Json<Value>), ApiError>;

pub use tally_service::credit::commands::{AUTHORIZATION_DAYS_DEFAULT, AUTHORIZATION_DAYS_MAX};

fn service(state: &AppState) -> Result<&Arc<CreditService>, ApiError> {
    state.credit.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "credit_unavailable",
            "the credit service is not running in this process",
        )
    })
}

/// Today's business date: the service clock's date in the lender's time zone.
fn today(state: &AppState) -> Date {
    let zone = state
        .credit
        .as_ref()
        .map_or(TimeZone::UTC, |credit| credit.time_zone.clone());
    state.clock.now().to_zoned(zone).date()
}

/// The HTTP form of an operation's refusal.
pub fn operation_error(error: OperationError) -> ApiError {
    use tally_credit::CreditError;
    let code = error.code();
    let status = match &error {
        OperationError::Store(_) | OperationError::LedgerUnavailable(_) => {
            tracing::error!(%error, "credit operation could not be stored");
            StatusCode::SERVICE_UNAVAILABLE
        }
        OperationError::LedgerRefused { .. } => {
            tracing::error!(%error, "the ledger refused a credit operation's command");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        // Not retryable (a 503 would have clients retry for ever): an operator must act.
        OperationError::LedgerConflict(_) => {
            tracing::error!(%error, "a credit ledger key or account is held by something else");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        OperationError::AccountNotFound(_) => StatusCode::NOT_FOUND,
        OperationError::KeyReused(_)
        | OperationError::Contended(_)
        | OperationError::ProductExists(_)
        | OperationError::CustomerBlocked(_) => StatusCode::CONFLICT,
        OperationError::Credit(credit) => match credit {
            CreditError::PlanNotFound(_) | CreditError::AuthorizationNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            CreditError::AccountFrozen
            | CreditError::StolenAccountClaimOpen(_)
            | CreditError::AccountClosed
            | CreditError::AccountChargedOff
            | CreditError::AccountNotSettled { .. }
            | CreditError::CreditBalanceOwed(_)
            | CreditError::PlanNotActive(_) => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let message = match &error {
        OperationError::Store(_) | OperationError::LedgerUnavailable(_) => {
            "storage is unavailable; retry with the same idempotency key".to_string()
        }
        other => other.to_string(),
    };
    ApiError::new(status, code, message)
}

/// The answer of a gated operation: its own, or `202` with the held operation.
fn gated_reply(gated: tally_service::risk_gate::credit::Gated) -> Reply {
    match gated {
        tally_service::risk_gate::credit::Gated::Done(answer) => reply(answer),
        tally_service::risk_gate::credit::Gated::Held(held) => {
            Ok(crate::routes::held::held_reply(&held))
        }
    }
}

fn reply(answer: Answer) -> Reply {
    let status = match answer.kind {
        AnswerKind::Created => StatusCode::CREATED,
        AnswerKind::Done => StatusCode::OK,
    };
    Ok((status, axum::Json(answer.body)))
}

/// The JSON value of an answer to store with its operation. Answers have string keys and
/// amounts that always serialise; should one ever fail, it is logged and stored as null.
fn stored_answer(body: &impl Serialize) -> Value {
    serde_json::to_value(body).unwrap_or_else(|error| {
        tracing::error!(%error, "a credit answer did not serialise");
        Value::Null
    })
}

fn hash_of(kind: &str, id: CreditAccountId, body: &impl Serialize) -> String {
    request_hash(kind, id, &serde_json::to_value(body).unwrap_or(Value::Null))
}

/// Applies `command` to account `id` under the request's idempotency key; the request
/// body (`body`) is what a retry must repeat.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    id: CreditAccountId,
    body: &impl Serialize,
    command: CreditCommand,
) -> Reply {
    let key = idempotency_key(headers)?;
    let service = service(state)?;
    let answer = service
        .operations
        .execute(
            &key,
            id,
            &command,
            &hash_of(command.kind(), id, body),
            today(state),
            state.clock.now(),
        )
        .await
        .map_err(operation_error)?;
    reply(answer)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many to answer, at least 1 and at most the server's page size (default: 12
    /// statements, 100 tasks).
    #[serde(default)]
    pub limit: Option<i64>,
}
