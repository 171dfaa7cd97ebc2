//! Money in and back: repayments, refunds, early payoffs, a statement put into
//! installments, stolen-account write-offs and credit balance payouts.

use super::{execute, gated_reply, hash_of, Reply};
use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::extract::idempotency_key;
use crate::extract::Path;
use crate::json::Json;
use crate::routes::held::{gate_error, HeldOperationBody};
use crate::routes::payouts::{money_gate, payout_api_error};
use crate::state::AppState;
use crate::wire::credit::{
    AccountChangedBody, AmountRequest, BillInstallmentRequest, PayoutBody, PlanCreatedBody,
    RepaymentBody, WriteOffRequest,
};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Extension;
use serde::Serialize;
use serde_json::json;
use tally_core::Amount;
use tally_service::credit::commands::CreditCommand;
use tally_service::risk_gate::credit_payout::CreditBalancePayoutRequest;
use tally_service::risk_gate::{GateError, Subject};
use tally_store::credit::CreditAccountId;

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
    let refund = |plan, amount| CreditCommand::Refund { plan, amount };
    amount_on_plan(&state, &headers, (id, plan), &request, refund).await
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
    let pay_off = |plan, amount| CreditCommand::PayOff { plan, amount };
    amount_on_plan(&state, &headers, (id, plan), &request, pay_off).await
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
    execute_on_plan(&state, &headers, (id, plan), &request, command).await
}

/// Pays part or all of the customer's credit balance back to them: it becomes a payable to
/// the customer (ledger account `credit-payout-payable-{currency}`) and, with the payment
/// service running, a payout to the bank card bound to the customer, sent through the same
/// batches and bank files as merchants' payouts and decided first by the risk engine as a
/// `payout` event. Billed items still owed come first.
#[utoipa::path(
    post, path = "/v1/credit/accounts/{id}/credit-balance/payouts", tag = "credit",
    request_body(content = AmountRequest, description = "At most the credit balance less what is billed and still owed"),
    params(("id" = i64, Path, description = "Credit account id"), ("Idempotency-Key" = String, Header, description = "Client key that makes retries safe")),
    responses(
        (status = 200, description = "What was paid out (`paid_out`), the account and the payout (`payout`: paid, failed or returned as the bank answers; failed or returned, the amount is credit balance again)", body = PayoutBody),
        (status = 202, description = "Held by the risk engine, nothing moved: a one-time code was sent (`step_up`) or an analyst reviews the case (`review`); letting it through pays it out, the credit balance checked again", body = HeldOperationBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "The account is charged off (`credit_account_charged_off`); refused by the risk engine with the decision's reason codes (`risk_rejected`), nothing moved; idempotency key used for another request (`idempotency_key_reused`)", body = ErrorBody),
        (status = 422, description = "Amount not a decimal of its currency (`invalid_amount`), unknown currency (`unknown_currency`), not positive (`amount_not_positive`), another currency than the account's (`currency_mismatch`), more than can be paid out (`credit_payout_exceeds_credit_balance`), an account without a customer (`payout_no_customer`) or a customer without a bank card bound (`payout_no_bank_card`)", body = ErrorBody),
    ),
    security(("api_key" = ["credit:write"]))
)]
pub async fn pay_out_credit_balance(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<CreditAccountId>,
    headers: HeaderMap,
    Json(request): Json<AmountRequest>,
) -> Reply {
    let amount = request.amount.parse()?;
    let command = CreditCommand::PayOutCreditBalance { amount };
    let Some(gate) = money_gate(&state) else {
        // Without the payment service (or the risk engine) in this process, the credit
        // balance moves to the payable to the customer and waits there.
        return execute(&state, &headers, id, &request, command).await;
    };
    let key = idempotency_key(&headers)?;
    let caller = principal.caller();
    let hash = hash_of(command.kind(), id, &request);
    let gated = gate
        .pay_out_credit_balance(CreditBalancePayoutRequest {
            key: &key,
            request_hash: &hash,
            account: id,
            amount,
            subject: Subject::default(),
            caller: &caller,
        })
        .await
        .map_err(|error| match error {
            GateError::Payout(error) => payout_api_error(error),
            other => gate_error(other),
        })?;
    gated_reply(gated)
}

/// The command `command` makes of a plan and the request's amount, run on that plan.
async fn amount_on_plan(
    state: &AppState,
    headers: &HeaderMap,
    (id, plan): (CreditAccountId, u32),
    request: &AmountRequest,
    command: impl FnOnce(u32, Amount) -> CreditCommand,
) -> Reply {
    let amount = request.amount.parse()?;
    execute_on_plan(state, headers, (id, plan), request, command(plan, amount)).await
}

/// Runs `command` on plan `plan` of account `id`. The plan is hashed with the request, so
/// that one idempotency key sent again for another plan is refused, not replayed.
async fn execute_on_plan(
    state: &AppState,
    headers: &HeaderMap,
    (id, plan): (CreditAccountId, u32),
    request: &impl Serialize,
    command: CreditCommand,
) -> Reply {
    let body = json!({ "plan": plan, "request": request });
    execute(state, headers, id, &body, command).await
}
