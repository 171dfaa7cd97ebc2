//! How the credit service shows an account and its statements: the figures computed for a
//! business date beside the whole state. Stored as operations' answers and given by reads,
//! so one shape serves the API, the CLI and the console.

use crate::credit::operations::bucket_name;
use serde_json::{json, Value};
use tally_credit::account::OpenStatement;
use tally_credit::Account;
use tally_store::credit::CreditAccountId;

/// An account as Tally shows it: figures computed for `date` beside the whole state.
pub fn account_view(
    id: CreditAccountId,
    customer_id: Option<&str>,
    account: &Account,
    date: jiff::civil::Date,
) -> Value {
    let plans: Vec<Value> = account
        .plans
        .iter()
        .map(|plan| {
            json!({
                "id": plan.id,
                "product": plan.product_code,
                "status": plan.status,
                "principal": plan.schedule.principal,
                "periods": plan.schedule.periods,
                "billed": plan.billed,
                "refunded": plan.refunded,
                "merchant_discount": plan.schedule.merchant_discount,
                "pricing": plan.schedule.pricing,
                "true_apr": plan.schedule.true_apr().ok(),
                "installments": plan.schedule.installments,
            })
        })
        .collect();
    json!({
        "id": id,
        "customer_id": customer_id,
        "currency": account.currency,
        "status": account.status,
        "pricing_tier": account.pricing_tier,
        "limit": account.limit,
        "temporary_limit": account.temporary_limit,
        "effective_limit": account.effective_limit(date),
        "available_credit": account.available_credit(date),
        "held": account.held,
        "unpaid_principal": account.unpaid_principal(),
        "billed_balance": account.billed_balance(),
        "credit_balance": account.credit_balance,
        "bucket": bucket_name(account.bucket),
        "days_past_due": account.days_past_due,
        "statement_day": account.cycle.statement_day,
        "open_statement": account.open_statement.as_ref().map(statement_view),
        "earlier_statements": account
            .earlier_statements
            .iter()
            .map(statement_view)
            .collect::<Vec<_>>(),
        "authorizations": account.authorizations,
        "plans": plans,
        "last_end_of_day": account.last_end_of_day,
    })
}

/// A statement not yet judged: its stored fields (`minimum_payment` as cut, `paid`: what
/// the customer's money settled since it, repayments of billed items, early payoffs' quotes
/// and credit balance applied) and what a client needs so that it never computes
/// `minimum_payment - paid`: `minimum_due`, the minimum less what refunds and
/// stolen-account write-offs took off it, and `still_to_pay`, what is left of that to pay
/// by the due date (zero once the minimum is met).
pub fn statement_view(open: &OpenStatement) -> Value {
    let mut view = serde_json::to_value(open).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut view {
        fields.insert("minimum_due".into(), json!(open.minimum_due()));
        fields.insert("still_to_pay".into(), json!(open.still_to_pay()));
    }
    view
}
