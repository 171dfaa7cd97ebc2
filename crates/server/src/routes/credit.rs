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

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::routes::ledger::idempotency_key;
use crate::state::AppState;
use crate::wire::credit::{
    AccountChangedBody, AmountRequest, AuthorizeRequest, AuthorizedBody, BillInstallmentRequest,
    CaptureRequest, CloseTaskRequest, LimitRequest, NewTaskRequest, OfferBody, OffersBody,
    OpenAccountRequest, OpeningBody, PayoffQuoteBody, PayoutBody, PlanCreatedBody,
    ProductAddedBody, ProductBody, ProductList, RepaymentBody, StatementList, TaskAddedBody,
    TaskBody, TaskClosedBody, TaskList, TemporaryLimitRequest, WriteOffRequest,
};
use crate::wire::AmountInput;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use tally_core::Amount;
use tally_credit::{Account, Cycle};
use tally_service::credit::commands::{CreditCommand, StatusChange};
use tally_service::credit::decision::{age_on, CreditService};
use tally_service::credit::operations::{request_hash, Answer, AnswerKind, OperationError};
use tally_service::credit::views::{installment_views, AccountView};
use tally_store::credit::CreditAccountId;
use tally_store::customers::PiiRead;
use tally_store::risk::RiskStore;
use uuid::Uuid;

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

// ----- Opening -----

/// Opens a credit account: the decision, and the account when approved (201); a declined
/// application answers 200 with the decision and its reasons. Both are stored under the
/// idempotency key.
#[utoipa::path(
    post, path = "/v1/credit/accounts", tag = "credit",
    request_body(content = OpenAccountRequest, description = "Opens an account through the credit decision"),
    params(("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "Approved: the decision and the account", body = OpeningBody),
        (status = 200, description = "Declined: the decision with every reason code and the adverse reasons; `account` is null", body = OpeningBody),
        (status = 422, description = "Unknown customer (`customer_not_found`), statement day, currencies", body = ErrorBody),
        (status = 409, description = "Idempotency key reused", body = ErrorBody),
        (status = 503, description = "Personal-data keys not configured", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn open_account(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(request): Json<OpenAccountRequest>,
) -> Reply {
    let key = idempotency_key(&headers)?;
    let service = service(&state)?;
    let monthly_income = request.application.monthly_income.parse()?;
    let monthly_debt_payments = request.application.monthly_debt_payments.parse()?;
    let hash = hash_of("open", 0, &request);
    if let Some(answer) = service
        .operations
        .replayed(&key, &hash)
        .await
        .map_err(operation_error)?
    {
        return reply(answer);
    }
    let cycle = Cycle::new(request.statement_day, request.due_days)
        .map_err(|error| operation_error(error.into()))?;
    let application = &request.application;
    if monthly_income.currency() != monthly_debt_payments.currency() {
        return Err(ApiError::unprocessable(
            "currency_mismatch",
            "monthly income and debt payments must be in one currency",
        ));
    }
    // The age comes from the date of birth sealed with the customer (read in clear for the
    // decision, and audited as such).
    let privacy = state.privacy.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "privacy_keys_not_configured",
            format!(
                "opening an account needs the customer's date of birth: {}",
                crate::routes::customers::PRIVACY_KEYS_HELP
            ),
        )
    })?;
    let customer_id = request.customer_id.to_string();
    let stored = state
        .database
        .customer(&customer_id)
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable(
                "customer_not_found",
                format!("customer {customer_id} does not exist"),
            )
        })?;
    let birth_text = privacy
        .cipher
        .decrypt(
            &tally_service::customers::sealed_field("date_of_birth", &stored.id),
            &stored.date_of_birth,
        )
        .map_err(ApiError::internal)?;
    let birth: Date = birth_text
        .expose()
        .parse()
        .map_err(|_| ApiError::internal("a stored date of birth does not parse"))?;
    let now = state.clock.now();
    state
        .database
        .record_pii_reads(&[PiiRead {
            id: Uuid::now_v7().to_string(),
            at: now,
            api_key_id: principal.key_id.clone(),
            principal: principal.name.clone(),
            customer_id: customer_id.clone(),
            field: "date_of_birth".into(),
            reason: format!("credit decision (operation {key})"),
        }])
        .await?;
    let date = today(&state);
    let block_listed = RiskStore::new(state.database.clone())
        .customer_blocked(&customer_id, now.as_microsecond())
        .await?;
    let decision = service
        .decision
        .decide(
            &Value::Object(application.attributes.clone()),
            age_on(birth, date),
            monthly_income,
            monthly_debt_payments,
            block_listed,
        )
        .map_err(|message| ApiError::unprocessable("credit_decision_refused", message))?;
    let account = match decision.limit {
        Some(limit) => {
            let mut account =
                Account::open(limit, cycle).map_err(|error| operation_error(error.into()))?;
            account.pricing_tier = decision.pricing_tier.clone();
            Some(account)
        }
        None => None,
    };
    let answer = service
        .operations
        .open(
            &key,
            &hash,
            Some(&customer_id),
            account.as_ref(),
            now,
            |id| {
                let (kind, account) = match (id, &account) {
                    (Some(id), Some(account)) => (
                        AnswerKind::Created,
                        Some(AccountView::new(id, Some(&customer_id), account, date)),
                    ),
                    _ => (AnswerKind::Done, None),
                };
                let body = OpeningBody {
                    account,
                    decision: decision.clone(),
                };
                Answer {
                    kind,
                    body: stored_answer(&body),
                }
            },
        )
        .await
        .map_err(operation_error)?;
    reply(answer)
}

// ----- Reads -----

#[utoipa::path(
    get, path = "/v1/credit/accounts/{id}", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id")),
    responses(
        (status = 200, description = "The account: limit, available credit, held, balances, bucket, authorisations, plans with schedules and true APR, and the open statement (`open_statement`: `minimum_payment` as cut, `paid`, `minimum_due` = the minimum less what refunds and stolen-account write-offs took off it, `still_to_pay` = what is left to pay by `due_date` for the minimum to be met, zero once met; `earlier_statements`: statements not yet judged, cut before it, each with the same fields; only on accounts opened with `due_days` over 28)", body = AccountView),
        (status = 404, description = "No such account (`credit_account_not_found`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
) -> Result<axum::Json<AccountView>, ApiError> {
    let service = service(&state)?;
    let stored = service.operations.load(id).await.map_err(operation_error)?;
    Ok(axum::Json(AccountView::new(
        id,
        stored.customer_id.as_deref(),
        &stored.account,
        today(&state),
    )))
}

#[utoipa::path(
    get, path = "/v1/credit/accounts/{id}/plans/{plan}/payoff-quote", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id"), ("plan" = u32, Path, description = "Plan id on the account")),
    responses(
        (status = 200, description = "What paying the plan off today costs and the charge in it", body = PayoffQuoteBody),
        (status = 404, description = "No such account or plan", body = ErrorBody),
        (status = 409, description = "Plan already settled or written off", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn payoff_quote(
    State(state): State<AppState>,
    Path((id, plan)): Path<(CreditAccountId, u32)>,
) -> Result<axum::Json<PayoffQuoteBody>, ApiError> {
    let service = service(&state)?;
    let stored = service.operations.load(id).await.map_err(operation_error)?;
    let (total, charge) = stored
        .account
        .early_payoff_quote(plan)
        .map_err(|error| operation_error(error.into()))?;
    Ok(axum::Json(PayoffQuoteBody {
        amount: total.into(),
        charge: charge.into(),
        plan,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OffersQuery {
    /// The purchase, a decimal string in the account currency's major units (`1200.00`).
    pub amount: String,
    /// Only this product's terms (default: every product in the account's currency).
    pub product: Option<String>,
}

/// What a purchase of `amount` would cost on each term of the catalog, priced at the
/// account's pricing tier as a capture today would be: installments with their fees and
/// interest, total charges and repayable, the merchant's discount, and the true APR. The
/// disclosure a customer sees before choosing a term; it changes nothing.
#[utoipa::path(
    get, path = "/v1/credit/accounts/{id}/offers", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id"), OffersQuery),
    responses(
        (status = 200, description = "Every term's schedule and price for this account today", body = OffersBody),
        (status = 400, description = "Missing or unknown query parameter (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "No such account (`credit_account_not_found`)", body = ErrorBody),
        (status = 422, description = "Amount not a decimal of the currency (`invalid_amount`), not positive (`amount_not_positive`), unknown product (`credit_product_not_found`), product in another currency (`currency_mismatch`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn offers(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    Query(query): Query<OffersQuery>,
) -> Result<axum::Json<OffersBody>, ApiError> {
    let service = service(&state)?;
    let stored = service.operations.load(id).await.map_err(operation_error)?;
    let account = &stored.account;
    let amount = Amount::parse(&query.amount, account.currency)
        .map_err(|error| ApiError::unprocessable("invalid_amount", error.to_string()))?;
    let refused = |error: tally_credit::CreditError| operation_error(error.into());
    if !amount.is_positive() {
        return Err(refused(tally_credit::CreditError::AmountNotPositive(
            amount.to_string(),
        )));
    }
    let date = today(&state);
    let catalog = service.operations.catalog();
    let products: Vec<&tally_credit::Product> = match &query.product {
        Some(code) => vec![catalog
            .product(code)
            .ok_or_else(|| operation_error(OperationError::ProductNotFound(code.clone())))?],
        None => catalog
            .products
            .iter()
            .filter(|product| product.currency == account.currency)
            .collect(),
    };
    let mut offers = Vec::new();
    for product in products {
        for term in &product.terms {
            let schedule = tally_credit::Schedule::build_for_tier(
                product,
                account.pricing_tier.as_deref(),
                amount,
                term.periods,
                date,
                account.cycle,
            )
            .map_err(refused)?;
            let charges = schedule.total_charges().map_err(refused)?;
            offers.push(OfferBody {
                installments: installment_views(&schedule.installments),
                merchant_discount: schedule.merchant_discount.into(),
                name: product.name.clone(),
                periods: term.periods,
                pricing: schedule.pricing.clone(),
                product: product.code.clone(),
                total_charges: charges.into(),
                total_repayable: amount.checked_add(charges)?.into(),
                true_apr: schedule.true_apr().ok(),
            });
        }
    }
    let available = account.available_credit(date);
    Ok(axum::Json(OffersBody {
        account: id,
        amount: amount.into(),
        available_credit: available.into(),
        date,
        offers,
        pricing_tier: account.pricing_tier.clone(),
        within_available_credit: amount.minor() <= available.minor(),
    }))
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

#[utoipa::path(
    get, path = "/v1/credit/accounts/{id}/statements", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id"), ListQuery),
    responses(
        (status = 200, description = "Statements, newest first (`?limit=`)", body = StatementList),
        (status = 400, description = "A limit that is not a number, or an unknown query parameter (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("api_key" = ["credit:read"]))
)]
pub async fn statements(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<StatementList>, ApiError> {
    let service = service(&state)?;
    service.operations.load(id).await.map_err(operation_error)?;
    let limit = query
        .limit
        .unwrap_or(12)
        .clamp(1, state.limits.page_size_max);
    let statements = service
        .operations
        .statements(id, limit)
        .await
        .map_err(operation_error)?;
    Ok(axum::Json(StatementList { statements }))
}

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

// ----- Account changes -----

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/limit", tag = "credit",
    request_body = LimitRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account", body = AccountChangedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "Negative limit or another currency", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn set_limit(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<LimitRequest>,
) -> Reply {
    let limit = request.limit.parse()?;
    execute(
        &state,
        &headers,
        id,
        &request,
        CreditCommand::SetLimit { limit },
    )
    .await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/temporary-limit", tag = "credit",
    request_body = TemporaryLimitRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account", body = AccountChangedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "Invalid limit or a past end date", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn set_temporary_limit(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<TemporaryLimitRequest>,
) -> Reply {
    let limit = request.limit.parse()?;
    let until = request.until;
    execute(
        &state,
        &headers,
        id,
        &request,
        CreditCommand::SetTemporaryLimit { limit, until },
    )
    .await
}

/// Freeze, unfreeze or close (`action`).
#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/{action}", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id"), ("action" = String, Path, description = "freeze, unfreeze or close"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account", body = AccountChangedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "An account that owes or holds money cannot close (`credit_account_not_settled`), nor one holding the customer's credit balance (`credit_account_has_credit_balance`: pay it out first)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn change_status(
    State(state): State<AppState>,
    Path((id, action)): Path<(CreditAccountId, String)>,
    headers: HeaderMap,
) -> Reply {
    let change = match action.as_str() {
        "freeze" => StatusChange::Freeze,
        "unfreeze" => StatusChange::Unfreeze,
        "close" => StatusChange::Close,
        _ => return Err(ApiError::not_found("not_found", "no such route")),
    };
    execute(
        &state,
        &headers,
        id,
        &Value::Null,
        CreditCommand::ChangeStatus(change),
    )
    .await
}

// ----- Purchases -----

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations", tag = "credit",
    request_body = AuthorizeRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 201, description = "The authorisation and the account; a ledger hold is made", body = AuthorizedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "Frozen or closed, or the customer is on the risk block list (`customer_blocked`)", body = ErrorBody),
        (status = 422, description = "Insufficient credit (`credit_insufficient`), amount, currency, expiry", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn authorize(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<AuthorizeRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    let command = CreditCommand::Authorize {
        amount,
        expires_on: request.expires_on,
        merchant_reference: request.merchant_reference.clone(),
    };
    execute(&state, &headers, id, &request, command).await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations/{authorization}/capture", tag = "credit",
    request_body = CaptureRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("authorization" = u32, Path, description = "Authorisation id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The new plan id and the account", body = PlanCreatedBody),
        (status = 404, description = "No such account or authorisation", body = ErrorBody),
        (status = 422, description = "Unknown product or term, more than authorised", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn capture(
    State(state): State<AppState>,
    Path((id, authorization)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
    Json(request): Json<CaptureRequest>,
) -> Reply {
    let amount = request
        .amount
        .as_ref()
        .map(AmountInput::parse)
        .transpose()?;
    let command = CreditCommand::Capture {
        authorization,
        amount,
        product: request.product.clone(),
        periods: request.periods,
    };
    let body = json!({ "authorization": authorization, "request": request });
    execute(&state, &headers, id, &body, command).await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/authorizations/{authorization}/void", tag = "credit",
    params(("id" = i64, Path, description = "Credit account id"), ("authorization" = u32, Path, description = "Authorisation id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account; the hold is released", body = AccountChangedBody),
        (status = 404, description = "No such account or authorisation", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn void(
    State(state): State<AppState>,
    Path((id, authorization)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
) -> Reply {
    execute(
        &state,
        &headers,
        id,
        &json!({ "authorization": authorization }),
        CreditCommand::Void { authorization },
    )
    .await
}

// ----- Money in and back -----

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/repayments", tag = "credit",
    request_body = AmountRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "How it was applied, what went to credit balance, and the account", body = RepaymentBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "Amount not a decimal of its currency (`invalid_amount`), unknown currency (`unknown_currency`), another currency than the account's (`currency_mismatch`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn repay(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<AmountRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    execute(
        &state,
        &headers,
        id,
        &request,
        CreditCommand::Repay { amount },
    )
    .await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/plans/{plan}/refunds", tag = "credit",
    request_body = AmountRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("plan" = u32, Path, description = "Plan id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account", body = AccountChangedBody),
        (status = 404, description = "No such account or plan", body = ErrorBody),
        (status = 409, description = "Plan written off", body = ErrorBody),
        (status = 422, description = "More than the refundable principal", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn refund(
    State(state): State<AppState>,
    Path((id, plan)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
    Json(request): Json<AmountRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    let body = json!({ "plan": plan, "request": request });
    execute(
        &state,
        &headers,
        id,
        &body,
        CreditCommand::Refund { plan, amount },
    )
    .await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/plans/{plan}/payoff", tag = "credit",
    request_body(content = AmountRequest, description = "At least the payoff quote"),
    params(("id" = i64, Path, description = "Credit account id"), ("plan" = u32, Path, description = "Plan id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account", body = AccountChangedBody),
        (status = 404, description = "No such account or plan", body = ErrorBody),
        (status = 422, description = "Below the quote (`credit_payoff_below_quote`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn pay_off(
    State(state): State<AppState>,
    Path((id, plan)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
    Json(request): Json<AmountRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    let body = json!({ "plan": plan, "request": request });
    execute(
        &state,
        &headers,
        id,
        &body,
        CreditCommand::PayOff { plan, amount },
    )
    .await
}

#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/bill-installments", tag = "credit",
    request_body = BillInstallmentRequest,
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The new plan id and the account", body = PlanCreatedBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "Refused (`credit_bill_installment_refused`), unknown product or term", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn bill_installment(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<BillInstallmentRequest>,
) -> Reply {
    let command = CreditCommand::BillInstallment {
        product: request.product.clone(),
        periods: request.periods,
    };
    execute(&state, &headers, id, &request, command).await
}

/// Writes off a purchase made by a thief, on the evidence of an approved stolen-account
/// case of the account's customer.
#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/plans/{plan}/stolen-write-off", tag = "credit",
    request_body(content = WriteOffRequest, description = "An approved stolen_account risk case of the customer"),
    params(("id" = i64, Path, description = "Credit account id"), ("plan" = u32, Path, description = "Plan id on the account"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "The account; the principal is booked to fraud-loss expense", body = AccountChangedBody),
        (status = 404, description = "No such account or plan", body = ErrorBody),
        (status = 422, description = "No such case, not approved, or another customer", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn write_off_stolen(
    State(state): State<AppState>,
    Path((id, plan)): Path<(CreditAccountId, u32)>,
    headers: HeaderMap,
    Json(request): Json<WriteOffRequest>,
) -> Reply {
    let command = CreditCommand::WriteOffStolen {
        plan,
        case_id: request.case_id.clone(),
    };
    let body = json!({ "plan": plan, "request": request });
    execute(&state, &headers, id, &body, command).await
}

/// Pays part or all of the customer's credit balance back to them: it becomes a payable to
/// the customer (ledger account `credit-payout-payable-{currency}`) until the payment system
/// settles the transfer. Billed items still owed come first.
#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/credit-balance/payouts", tag = "credit",
    request_body(content = AmountRequest, description = "At most the credit balance less what is billed and still owed"),
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "What was paid out (`paid_out`) and the account", body = PayoutBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "The account is charged off (`credit_account_charged_off`)", body = ErrorBody),
        (status = 422, description = "Amount not a decimal of its currency (`invalid_amount`), unknown currency (`unknown_currency`), not positive (`amount_not_positive`), another currency than the account's (`currency_mismatch`), more than can be paid out (`credit_payout_exceeds_credit_balance`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn pay_out_credit_balance(
    State(state): State<AppState>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<AmountRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    execute(
        &state,
        &headers,
        id,
        &request,
        CreditCommand::PayOutCreditBalance { amount },
    )
    .await
}
