//! Credit account routes: opening through the credit decision, the account, payoff quotes,
//! offers and statements, and changes of limit and status.

use super::{
    execute, hash_of, operation_error, reply, service, stored_answer, today, ListQuery, Reply,
};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::idempotency_key;
use crate::extract::{Path, Query};
use crate::json::Json;
use crate::routes::held::HeldOperationBody;
use crate::state::AppState;
use crate::wire::credit::{
    AccountChangedBody, LimitRequest, OfferBody, OffersBody, OpenAccountRequest, OpeningBody,
    PayoffQuoteBody, StatementList, TemporaryLimitRequest,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use serde::Deserialize;
use serde_json::Value;
use tally_core::{Amount, CustomerId};
use tally_service::credit::commands::{CreditCommand, StatusChange};
use tally_service::credit::opening::{Application, OpeningError};
use tally_service::credit::operations::OperationError;
use tally_service::credit::views::{installment_views, AccountView};
use tally_store::credit::CreditAccountId;

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
        (status = 202, description = "Approved by the credit decision and held by the risk engine (a `credit_activation` event): a one-time code was sent (`step_up`) or an analyst reviews the case (`review`); the account opens when it is let through", body = HeldOperationBody),
        (status = 422, description = "Unknown customer (`customer_not_found`), statement day, currencies", body = ErrorBody),
        (status = 409, description = "Idempotency key reused; refused by the risk engine with the decision's reason codes (`risk_rejected`); a held opening that ended refused (`step_up_failed`, `step_up_expired`, `risk_review_rejected`)", body = ErrorBody),
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
    let application = Application {
        key: &key,
        request_hash: &hash,
        customer_id: CustomerId(request.customer_id),
        statement_day: request.statement_day,
        due_days: request.due_days,
        monthly_income,
        monthly_debt_payments,
        attributes: Value::Object(request.application.attributes),
    };
    let answer_of = |account, decision: &tally_service::credit::decision::CreditDecision| {
        stored_answer(&OpeningBody {
            account,
            decision: decision.clone(),
        })
    };
    if let Some(gate) = state.risk_gate.as_ref() {
        let subject = tally_service::risk_gate::Subject {
            device: request.device.clone(),
            ip: request.ip.clone(),
            address: None,
        };
        let gated = gate
            .open_account(
                state.privacy.as_deref(),
                &principal.caller(),
                &application,
                &subject,
                today(&state),
                state.clock.now(),
                answer_of,
            )
            .await
            .map_err(crate::routes::held::gate_error)?;
        return super::gated_reply(gated);
    }
    let answer = service
        .open_account(
            state.privacy.as_deref(),
            &principal.caller(),
            &application,
            today(&state),
            state.clock.now(),
            answer_of,
        )
        .await
        .map_err(opening_error)?;
    reply(answer)
}

/// The HTTP form of an application's refusal.
pub fn opening_error(error: OpeningError) -> ApiError {
    let code = error.code();
    match error {
        OpeningError::Operation(error) => operation_error(error),
        OpeningError::CurrencyMismatch
        | OpeningError::CustomerNotFound(_)
        | OpeningError::DecisionRefused(_) => ApiError::unprocessable(code, error.to_string()),
        OpeningError::PrivacyKeysNotConfigured => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!(
                "opening an account needs the customer's date of birth: {}",
                crate::routes::customers::PRIVACY_KEYS_HELP
            ),
        ),
        OpeningError::Store(error) => error.into(),
        other => ApiError::internal(other),
    }
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
