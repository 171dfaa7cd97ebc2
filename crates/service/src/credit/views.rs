//! How the credit service shows an account and its statements: the figures computed for a
//! business date beside the whole state. Stored as operations' answers and given by reads,
//! so one shape serves the API, the CLI and the console.
//!
//! Fields are declared in alphabetical order: the account has always been shown with sorted
//! keys (it was once built as a `serde_json::Value` map, which sorts them, and stored
//! answers keep those bytes), and a struct serialises its fields in declaration order.
//! Domain values shown as they are (pricing, true APR) go through [`sorted_keys`] for the
//! same reason. The views read back too, for clients in Rust and for the tests that hold
//! them to the answers the API gives.

use crate::credit::operations::bucket_name;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use tally_core::{Amount, Currency};
use tally_credit::account::{OpenStatement, PlanMinimum, PlanStatus};
use tally_credit::{Account, AccountStatus, Authorization, Installment, Plan, Pricing, TrueApr};
use tally_store::credit::CreditAccountId;
use utoipa::ToSchema;

/// Serialises `value` as its JSON value: object keys sorted at every level. For domain
/// types shown as they are, whose fields (and an amount's `value` and `currency`) are
/// declared in their own order.
pub fn sorted_keys<T: Serialize, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde_json::to_value(value)
        .map_err(serde::ser::Error::custom)?
        .serialize(serializer)
}

/// An amount: a decimal string in major units beside its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AmountView {
    /// ISO 4217 code.
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    #[schema(example = "1234.50")]
    pub value: String,
}

impl From<Amount> for AmountView {
    fn from(amount: Amount) -> Self {
        AmountView {
            currency: amount.currency(),
            value: amount.to_decimal_string(),
        }
    }
}

/// An account as Tally shows it: figures computed for a business date beside the whole
/// state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Purchases authorised and not yet captured or voided.
    pub authorizations: Vec<AuthorizationView>,
    /// The effective limit less what is used and held.
    pub available_credit: AmountView,
    /// Billed items still owed.
    pub billed_balance: AmountView,
    /// Delinquency bucket: current, m1 to m6, m6_plus.
    #[schema(example = "current")]
    pub bucket: String,
    /// The customer's money held on the account.
    pub credit_balance: AmountView,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    #[schema(required = true)]
    pub customer_id: Option<String>,
    pub days_past_due: i32,
    /// Statements not yet judged, cut before the open one, oldest first (only on accounts
    /// opened with `due_days` over 28).
    pub earlier_statements: Vec<OpenStatementView>,
    /// The temporary limit while it applies, otherwise the limit.
    pub effective_limit: AmountView,
    /// Credit reserved by open authorisations.
    pub held: AmountView,
    #[schema(value_type = i64)]
    pub id: CreditAccountId,
    /// The last business date end of day ran for.
    #[schema(value_type = Option<String>, format = Date, required = true)]
    pub last_end_of_day: Option<jiff::civil::Date>,
    pub limit: AmountView,
    /// The open statement, until its due date has been judged.
    #[schema(required = true)]
    pub open_statement: Option<OpenStatementView>,
    pub plans: Vec<PlanView>,
    /// The pricing tier the credit decision gave at opening.
    #[schema(required = true)]
    pub pricing_tier: Option<String>,
    /// Day of the month statements are cut.
    pub statement_day: i8,
    /// open, frozen, charged_off or closed.
    #[schema(value_type = String, example = "open")]
    pub status: AccountStatus,
    #[schema(required = true)]
    pub temporary_limit: Option<TemporaryLimitView>,
    pub unpaid_principal: AmountView,
}

impl AccountView {
    /// Account `id` (of customer `customer_id`) with its figures for `date`.
    pub fn new(
        id: CreditAccountId,
        customer_id: Option<&str>,
        account: &Account,
        date: jiff::civil::Date,
    ) -> Self {
        AccountView {
            authorizations: account
                .authorizations
                .iter()
                .map(AuthorizationView::from)
                .collect(),
            available_credit: account.available_credit(date).into(),
            billed_balance: account.billed_balance().into(),
            bucket: bucket_name(account.bucket),
            credit_balance: account.credit_balance.into(),
            currency: account.currency,
            customer_id: customer_id.map(str::to_owned),
            days_past_due: account.days_past_due,
            earlier_statements: account
                .earlier_statements
                .iter()
                .map(OpenStatementView::new)
                .collect(),
            effective_limit: account.effective_limit(date).into(),
            held: account.held.into(),
            id,
            last_end_of_day: account.last_end_of_day,
            limit: account.limit.into(),
            open_statement: account.open_statement.as_ref().map(OpenStatementView::new),
            plans: account.plans.iter().map(PlanView::new).collect(),
            pricing_tier: account.pricing_tier.clone(),
            statement_day: account.cycle.statement_day,
            status: account.status,
            temporary_limit: account.temporary_limit.map(|temporary| TemporaryLimitView {
                amount: temporary.amount.into(),
                until: temporary.until,
            }),
            unpaid_principal: account.unpaid_principal().into(),
        }
    }
}

/// An account as Tally shows it, as the JSON value operations store as their answers.
pub fn account_view(
    id: CreditAccountId,
    customer_id: Option<&str>,
    account: &Account,
    date: jiff::civil::Date,
) -> Value {
    // The view has string keys only and amounts that always serialise: this cannot fail.
    serde_json::to_value(AccountView::new(id, customer_id, account, date)).unwrap_or(Value::Null)
}

/// A limit above the account's own until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemporaryLimitView {
    pub amount: AmountView,
    /// Last day the temporary limit applies.
    #[schema(value_type = String, format = Date)]
    pub until: jiff::civil::Date,
}

/// Credit reserved for a purchase being authorised, until it is captured, voided or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationView {
    pub amount: AmountView,
    /// When the purchase was authorised (absent on authorisations made before Tally kept
    /// it); a stolen-account claim writes off purchases from its compromise time on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub authorized_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = Date)]
    pub authorized_on: jiff::civil::Date,
    /// Last day it can be captured; end of day after it releases the credit.
    #[schema(value_type = String, format = Date)]
    pub expires_on: jiff::civil::Date,
    /// Its id on the account.
    pub id: u32,
    /// The idempotency key of the operation that made its ledger hold.
    pub reference: String,
}

impl From<&Authorization> for AuthorizationView {
    fn from(authorization: &Authorization) -> Self {
        AuthorizationView {
            amount: authorization.amount.into(),
            authorized_at: authorization.authorized_at,
            authorized_on: authorization.authorized_on,
            expires_on: authorization.expires_on,
            id: authorization.id,
            reference: authorization.reference.clone(),
        }
    }
}

/// A purchase on credit and its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    /// Installments billed so far (the first `billed` of the schedule).
    pub billed: u32,
    /// Its id on the account.
    pub id: u32,
    pub installments: Vec<InstallmentView>,
    /// Paid by the merchant out of its settlement (interest-free and pay-in-N products).
    pub merchant_discount: AmountView,
    pub periods: u32,
    /// The rate used and the pricing tier whose rate it is, `{rate, tier}`; null only on
    /// plans priced before Tally recorded them.
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = Option<Object>, required = true)]
    pub pricing: Option<Pricing>,
    pub principal: AmountView,
    /// The product's code.
    pub product: String,
    pub refunded: AmountView,
    /// active, settled, refunded, written_off_fraud or charged_off.
    #[schema(value_type = String, example = "active")]
    pub status: PlanStatus,
    /// `{periodic, periods_per_year, nominal_annual, effective_annual}`, rates as decimal
    /// strings; null when it cannot be computed.
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = Option<Object>, required = true)]
    pub true_apr: Option<TrueApr>,
}

impl PlanView {
    pub fn new(plan: &Plan) -> Self {
        PlanView {
            billed: plan.billed,
            id: plan.id,
            installments: installment_views(&plan.schedule.installments),
            merchant_discount: plan.schedule.merchant_discount.into(),
            periods: plan.schedule.periods,
            pricing: plan.schedule.pricing.clone(),
            principal: plan.schedule.principal.into(),
            product: plan.product_code.clone(),
            refunded: plan.refunded.into(),
            status: plan.status,
            true_apr: plan.schedule.true_apr().ok(),
        }
    }
}

/// One installment of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstallmentView {
    #[schema(value_type = String, format = Date)]
    pub due_date: jiff::civil::Date,
    /// Flat fee of the period (flat-fee products).
    pub fee: AmountView,
    /// Interest of the period on the declining balance (annuity, equal principal).
    pub interest: AmountView,
    /// 1-based.
    pub number: u32,
    pub principal: AmountView,
    /// The statement that bills it (equal to the due date for pay-in-N).
    #[schema(value_type = String, format = Date)]
    pub statement_date: jiff::civil::Date,
}

impl From<&Installment> for InstallmentView {
    fn from(installment: &Installment) -> Self {
        InstallmentView {
            due_date: installment.due_date,
            fee: installment.fee.into(),
            interest: installment.interest.into(),
            number: installment.number,
            principal: installment.principal.into(),
            statement_date: installment.statement_date,
        }
    }
}

/// The views of a schedule's installments.
pub fn installment_views(installments: &[Installment]) -> Vec<InstallmentView> {
    installments.iter().map(InstallmentView::from).collect()
}

/// A statement not yet judged: its stored fields (`minimum_payment` as cut, `paid`: what
/// the customer's money settled since it, repayments of billed items, early payoffs' quotes
/// and credit balance applied) and what a client needs so that it never computes
/// `minimum_payment - paid`: `minimum_due`, the minimum less what refunds and
/// stolen-account write-offs took off it, and `still_to_pay`, what is left of that to pay
/// by the due date (zero once the minimum is met).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpenStatementView {
    #[schema(value_type = String, format = Date)]
    pub due_date: jiff::civil::Date,
    pub minimum_due: AmountView,
    pub minimum_payment: AmountView,
    pub paid: AmountView,
    /// Each plan's part of the minimum and what was paid on it since the statement; absent
    /// on statements cut before Tally kept it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanMinimumView>,
    #[schema(value_type = String, format = Date)]
    pub statement_date: jiff::civil::Date,
    pub still_to_pay: AmountView,
}

impl OpenStatementView {
    pub fn new(open: &OpenStatement) -> Self {
        OpenStatementView {
            due_date: open.due_date,
            minimum_due: open.minimum_due().into(),
            minimum_payment: open.minimum_payment.into(),
            paid: open.paid.into(),
            plans: open.plans.iter().map(PlanMinimumView::from).collect(),
            statement_date: open.statement_date,
            still_to_pay: open.still_to_pay().into(),
        }
    }
}

/// One plan's part in an open statement's minimum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanMinimumView {
    /// The plan's current (not overdue) principal on the statement.
    pub current_principal: AmountView,
    /// The part of `share` refunds and write-offs have taken away since.
    pub excused: AmountView,
    /// What the customer's money settled on this plan since the statement.
    pub paid: AmountView,
    pub plan_id: u32,
    /// The part of `share` that is the plan's principal share.
    pub principal_share: AmountView,
    /// The plan's part of the minimum when the statement was cut.
    pub share: AmountView,
}

impl From<&PlanMinimum> for PlanMinimumView {
    fn from(plan: &PlanMinimum) -> Self {
        PlanMinimumView {
            current_principal: plan.current_principal.into(),
            excused: plan.excused.into(),
            paid: plan.paid.into(),
            plan_id: plan.plan_id,
            principal_share: plan.principal_share.into(),
            share: plan.share.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;
    use tally_credit::{AccountPolicy, Catalog, Cycle, DayOutcome};

    fn cny(text: &str) -> Amount {
        Amount::parse(text, Currency::CNY).unwrap()
    }

    /// The account view as it was built before it was typed: stored answers hold these
    /// bytes, and a typed view must give them again.
    fn view_as_a_value(
        id: CreditAccountId,
        customer_id: Option<&str>,
        account: &Account,
        date: jiff::civil::Date,
    ) -> Value {
        fn statement(open: &OpenStatement) -> Value {
            let mut view = serde_json::to_value(open).unwrap();
            if let Value::Object(fields) = &mut view {
                fields.insert("minimum_due".into(), json!(open.minimum_due()));
                fields.insert("still_to_pay".into(), json!(open.still_to_pay()));
            }
            view
        }
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
            "open_statement": account.open_statement.as_ref().map(statement),
            "earlier_statements": account
                .earlier_statements
                .iter()
                .map(statement)
                .collect::<Vec<_>>(),
            "authorizations": account.authorizations,
            "plans": plans,
            "last_end_of_day": account.last_end_of_day,
        })
    }

    /// The serialised view must be the serialised value of the view as it was built.
    fn assert_same_bytes(id: CreditAccountId, customer_id: Option<&str>, account: &Account) {
        let day = date(2026, 2, 25);
        let typed = AccountView::new(id, customer_id, account, day);
        let text = serde_json::to_string(&typed).unwrap();
        let before = view_as_a_value(id, customer_id, account, day).to_string();
        assert_eq!(text, before);
        assert_eq!(
            account_view(id, customer_id, account, day).to_string(),
            before
        );
    }

    #[test]
    fn a_new_account_is_shown_as_it_always_was() {
        let account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
        assert_same_bytes(1, None, &account);
    }

    #[test]
    fn an_account_with_plans_statements_and_holds_is_shown_as_it_always_was() {
        let catalog = Catalog::default_catalog().unwrap();
        let policy = AccountPolicy::default();
        let mut account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
        account.pricing_tier = Some("A".into());
        let bought = date(2026, 1, 10);
        for (code, value) in [
            ("installment", "1200.00"),
            ("loan", "600.00"),
            ("interest-free", "300.00"),
        ] {
            let product = catalog.product(code).unwrap();
            let authorization = account
                .authorize_purchase(bought, cny(value), date(2026, 1, 15), code.into())
                .unwrap();
            account
                .capture_authorization(bought, authorization, cny(value), product, 6)
                .unwrap();
        }
        account
            .set_temporary_limit(cny("6000.00"), date(2026, 3, 1))
            .unwrap();
        // End of day up to the first statement (20 January): an open statement with each
        // plan's part of its minimum.
        let mut outcome = DayOutcome::default();
        let mut day = bought;
        while day <= date(2026, 1, 20) {
            account.end_of_day(day, &policy, &mut outcome).unwrap();
            day = day.tomorrow().unwrap();
        }
        let open = account.open_statement.clone().unwrap();
        assert!(!open.plans.is_empty());
        account.repay(day, cny("100.00"), &policy).unwrap();
        account
            .authorize_purchase(day, cny("80.00"), date(2026, 1, 28), "open".into())
            .unwrap();
        // A statement cut before it and not yet judged, and one kept from before Tally
        // recorded each plan's part (its `plans` are absent).
        let mut older = open.clone();
        older.plans.clear();
        account.earlier_statements = vec![older, open];
        assert_eq!(account.plans.len(), 3);
        assert!(account
            .plans
            .iter()
            .all(|plan| plan.schedule.pricing.is_some()));
        assert!(!account.authorizations.is_empty());
        assert_same_bytes(7, Some("customer-1"), &account);
        // Plans priced before Tally recorded their pricing show it as null.
        account.plans[0].schedule.pricing = None;
        assert_same_bytes(7, Some("customer-1"), &account);
    }
}
