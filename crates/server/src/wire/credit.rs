//! Wire types of the credit routes: applications and the other requests on credit accounts,
//! the answers operations store and give again to a retry, offers, payoff quotes,
//! statements, the product catalog and contact tasks. The account itself is the credit
//! service's view of it ([`AccountView`]).
//!
//! Response fields are declared in alphabetical order: the API has always answered with
//! sorted keys (its bodies were once built as `serde_json::Value` maps, which sort them, and
//! stored operations keep those bytes), and a struct serialises its fields in declaration
//! order. Domain values shown as they are go through [`sorted_keys`] for the same reason.
//!
//! Requests serialise as they did before they were typed here: an operation's request hash
//! is taken over that serialisation, and a retry must match the stored one.

use crate::wire::{AmountInput, NotNegativeAmount, PositiveAmount, SignedAmount};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tally_credit::{Pricing, Product, TrueApr};
use tally_service::credit::decision::CreditDecision;
use tally_service::credit::operations::ContactTaskRow;
use tally_service::credit::views::{
    sorted_keys, AccountView, AmountView, AuthorizationView, InstallmentView,
};
use tally_store::credit::CreditAccountId;
use tally_store::credit_operations::ContactRow;
use utoipa::ToSchema;
use uuid::Uuid;

// ----- Requests -----

/// What the applicant declares, and the scorecard's attributes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Application {
    #[schema(value_type = NotNegativeAmount)]
    pub monthly_income: AmountInput,
    /// In the currency of `monthly_income`.
    #[schema(value_type = NotNegativeAmount)]
    pub monthly_debt_payments: AmountInput,
    /// The scorecard's attributes (see the model file's features); missing ones are scored
    /// in their stated bin.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
}

/// An application for a credit account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountRequest {
    pub customer_id: Uuid,
    /// Day of the month statements are cut (1–28).
    #[schema(minimum = 1, maximum = 28)]
    pub statement_day: i8,
    /// Days from statement to due date, 1 to 28 (default 9).
    #[serde(default = "default_due_days")]
    #[schema(default = 9, minimum = 1, maximum = 28)]
    pub due_days: i32,
    pub application: Application,
    /// The device the customer applies from (the lender's device id), for the risk engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The customer's IP address, for the risk engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

fn default_due_days() -> i32 {
    9
}

/// A new limit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    #[schema(value_type = NotNegativeAmount)]
    pub limit: AmountInput,
}

/// A temporary limit until a date.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemporaryLimitRequest {
    #[schema(value_type = NotNegativeAmount)]
    pub limit: AmountInput,
    /// Last day the temporary limit applies.
    #[schema(value_type = String, format = Date)]
    pub until: Date,
}

/// A purchase to authorise.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
    /// Last day the authorisation can be captured (default in 7 days; at most 30).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub expires_on: Option<Date>,
    /// The merchant's reference for the purchase, kept on the ledger hold.
    #[serde(default)]
    pub merchant_reference: Option<String>,
    /// The device the customer buys from (the lender's device id), for the risk engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The customer's IP address, for the risk engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Where the goods go (1 to 300 characters): the risk engine sees only its keyed
    /// fingerprint, never the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<String>,
}

/// An authorisation to capture into an installment plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// At most the authorised amount (default all of it); the rest is released.
    #[serde(default)]
    #[schema(value_type = Option<PositiveAmount>)]
    pub amount: Option<AmountInput>,
    /// The product's code.
    pub product: String,
    /// A term the product offers.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub periods: u32,
}

/// An amount: a repayment, a refund, a payoff or a credit balance payout.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountRequest {
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
}

/// The open statement to put into installments, on a product's term.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillInstallmentRequest {
    /// The product's code.
    pub product: String,
    /// A term the product offers.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub periods: u32,
}

/// The evidence for writing off a stolen purchase.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOffRequest {
    /// The risk case that confirmed the account stolen (kind `stolen_account`, approved).
    pub case_id: String,
}

/// A contact task added by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTaskRequest {
    #[schema(value_type = i64)]
    pub account_id: CreditAccountId,
    /// `alert` (account anomaly) or `callback`.
    #[schema(example = "callback")]
    pub kind: String,
    pub reason: String,
    #[schema(value_type = SignedAmount)]
    pub amount: AmountInput,
    /// 1 (most urgent) to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub priority: i32,
}

/// A contact made on a task: its outcome, a promise to pay (only with `promise_to_pay`), and
/// when to work the task again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactRequest {
    /// `no_answer`, `left_message`, `reached`, `promise_to_pay`, `refused` or `wrong_number`.
    #[schema(example = "promise_to_pay")]
    pub outcome: String,
    pub note: String,
    /// The promised amount, in the task's currency (with `promise_to_pay`).
    #[schema(value_type = Option<PositiveAmount>)]
    pub promised_amount: Option<AmountInput>,
    /// The promised date, from today to `promise_days_max` days on (with `promise_to_pay`).
    #[schema(value_type = Option<String>, format = Date, example = "2026-05-20")]
    pub promised_date: Option<Date>,
    /// When to work the task again; by default the day after a promised date, the next day
    /// after an unanswered call.
    #[schema(value_type = Option<String>, format = Date, example = "2026-05-21")]
    pub follow_up_date: Option<Date>,
}

/// How a task was closed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseTaskRequest {
    pub note: String,
}

// The handler reads the body as the credit rules' product, so that its refusals keep their
// messages; this type documents that body (and the products answered), and a test below
// holds it to the product.
/// A credit product, as in the catalog file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    /// Unique code of the product.
    #[schema(example = "installment")]
    pub code: String,
    pub name: String,
    /// ISO 4217 code.
    #[schema(example = "CNY")]
    pub currency: String,
    /// `{kind}`: flat_fee, annuity, equal_principal, interest_free, or pay_in_n with
    /// `first_share` (a decimal string) and `interval_days`.
    #[schema(value_type = Object)]
    pub fee_model: Value,
    pub terms: Vec<TermBody>,
    /// Rounding of fees and interest to the minor unit: half_even, half_up (default),
    /// half_down, down or up.
    pub rounding: Option<String>,
    /// Which installment receives the principal's left-over minor units: first or last
    /// (default).
    pub remainder_on: Option<String>,
    /// `{kind}`: principal_only (default), one_more_period or all_remaining_charges.
    #[schema(value_type = Option<Object>)]
    pub early_payoff: Option<Value>,
    /// Whether the fees of a refunded principal are refunded too (default true).
    pub fees_refundable: Option<bool>,
}

/// The price of one term of a product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermBody {
    /// Number of installments.
    pub periods: u32,
    /// Fee rate per period (flat fee), annual rate (annuity, equal principal) or merchant
    /// discount (interest-free, pay-in-N), a decimal fraction as a string.
    #[schema(example = "0.006")]
    pub rate: String,
    /// The rate for accounts of a pricing tier, by tier name; absent when every account
    /// pays `rate`.
    pub tier_rates: Option<std::collections::BTreeMap<String, String>>,
}

// ----- Answers of operations -----
//
// Operations store their answers and give them again to a retry as stored; these types
// document them, and tests below hold them to the answers the API gives.

/// The answer to an application: the decision, and the account when it was approved.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpeningBody {
    /// The account, when the application was approved.
    #[schema(required = true)]
    pub account: Option<AccountView>,
    /// The decision: `outcome` (approved or declined), `score`, `probability_of_default`,
    /// `band`, `pricing_tier`, `limit`, `reasons` (every failed rule's code),
    /// `adverse_reasons` (bins that lost the most points) and `age_years`.
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = Object)]
    pub decision: CreditDecision,
}

/// An account after an operation on it.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct AccountChangedBody {
    pub account: AccountView,
}

/// An authorised purchase and the account.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct AuthorizedBody {
    pub account: AccountView,
    pub authorization: AuthorizationView,
}

/// A new installment plan (a capture, or a statement put into installments) and the account.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct PlanCreatedBody {
    pub account: AccountView,
    /// The new plan's id on the account.
    pub plan_id: u32,
}

/// A repayment: how it was applied, what went to the credit balance, and the account.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct RepaymentBody {
    pub account: AccountView,
    /// Each part of the repayment applied to a component of a billed item, in order.
    pub applied: Vec<AppliedBody>,
    /// What was left over, kept as the customer's credit balance.
    pub to_credit_balance: AmountView,
}

/// One part of a payment applied to one component of one billed item.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct AppliedBody {
    pub amount: AmountView,
    /// principal, fee, interest or penalty.
    #[schema(example = "principal")]
    pub component: String,
    /// The installment's number in its plan.
    pub installment: u32,
    pub plan_id: u32,
}

/// What was paid out of the credit balance, and the account.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct PayoutBody {
    pub account: AccountView,
    pub paid_out: AmountView,
    /// The payout carrying the money to the bank card bound to the customer (payee
    /// `customer`, source `credit_balance`), in a batch of its own whose file goes to the
    /// bank (`/v1/payouts/batches/{id}/file`); a failed or returned payout is credit balance
    /// again. Absent when this process runs no payment service: the money then waits in
    /// the payable to the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout: Option<tally_service::payments::payouts::PayoutView>,
}

// ----- Reads -----

/// What paying a plan off today costs.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct PayoffQuoteBody {
    /// The whole amount to pay.
    pub amount: AmountView,
    /// The charge in it beyond the remaining principal (the product's early payoff rule).
    pub charge: AmountView,
    pub plan: u32,
}

/// What a purchase would cost on each term of the catalog for an account today.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct OffersBody {
    #[schema(value_type = i64)]
    pub account: CreditAccountId,
    /// The purchase.
    pub amount: AmountView,
    pub available_credit: AmountView,
    /// The business date the offers are priced for.
    #[schema(value_type = String, format = Date)]
    pub date: Date,
    pub offers: Vec<OfferBody>,
    /// The account's pricing tier, which prices the terms that list it.
    #[schema(required = true)]
    pub pricing_tier: Option<String>,
    /// Whether the purchase fits in the available credit.
    pub within_available_credit: bool,
}

/// One term of a product, priced for a purchase.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct OfferBody {
    pub installments: Vec<InstallmentView>,
    /// Paid by the merchant out of its settlement (interest-free and pay-in-N products).
    pub merchant_discount: AmountView,
    /// The product's name.
    pub name: String,
    pub periods: u32,
    /// The rate used and the pricing tier whose rate it is, `{rate, tier}`.
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = Option<Object>, required = true)]
    pub pricing: Option<Pricing>,
    /// The product's code.
    pub product: String,
    /// Fees and interest over the whole plan.
    pub total_charges: AmountView,
    /// The purchase and its charges.
    pub total_repayable: AmountView,
    /// `{periodic, periods_per_year, nominal_annual, effective_annual}`, rates as decimal
    /// strings; null when it cannot be computed.
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = Option<Object>, required = true)]
    pub true_apr: Option<TrueApr>,
}

/// An account's statements, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct StatementList {
    /// Each statement as cut: dates, opening and closing balances, the cycle's movements,
    /// the minimum payment, the lines billed and the bucket.
    #[schema(value_type = Vec<Object>)]
    pub statements: Vec<Value>,
}

/// The product catalog.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct ProductList {
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = Vec<ProductBody>)]
    pub products: Vec<Product>,
}

/// A product added to the catalog.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct ProductAddedBody {
    // The catalog is read again after the product is stored, where it always is.
    #[serde(serialize_with = "sorted_keys")]
    #[schema(value_type = ProductBody)]
    pub product: Option<Product>,
}

/// Open contact tasks, most urgent first.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TaskList {
    pub tasks: Vec<TaskBody>,
}

/// A collections contact task.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TaskBody {
    #[schema(value_type = i64)]
    pub account_id: CreditAccountId,
    /// The amount in minor units of `currency`.
    pub amount_minor: i64,
    /// The account's delinquency bucket when the task was made.
    #[schema(example = "m1")]
    pub bucket: String,
    #[schema(example = "2026-05-15")]
    pub business_date: String,
    /// Contacts recorded on the task.
    pub contacts: i32,
    #[schema(example = "CNY")]
    pub currency: String,
    /// Who to call: the account's customer (their contact details are read through the
    /// customer routes, masked or with `pii:read`).
    #[schema(required = true)]
    pub customer_id: Option<String>,
    pub days_past_due: i32,
    /// When the task is to be worked again.
    #[schema(required = true, example = "2026-05-21")]
    pub follow_up_date: Option<String>,
    pub id: i64,
    /// collections, alert or callback.
    #[schema(example = "collections")]
    pub kind: String,
    /// The outcome of the last contact.
    #[schema(required = true, example = "promise_to_pay")]
    pub last_outcome: Option<String>,
    /// How it was closed.
    #[schema(required = true)]
    pub note: Option<String>,
    /// 1 is the most urgent.
    pub priority: i32,
    /// The last promise to pay, in minor units of `currency`.
    #[schema(required = true)]
    pub promised_amount_minor: Option<i64>,
    #[schema(required = true, example = "2026-05-20")]
    pub promised_date: Option<String>,
    pub reason: String,
    /// The risk event that raised an anomaly alert.
    #[schema(required = true)]
    pub risk_event_id: Option<String>,
    #[schema(example = "open")]
    pub status: String,
}

impl From<ContactTaskRow> for TaskBody {
    fn from(row: ContactTaskRow) -> Self {
        TaskBody {
            account_id: row.account_id,
            amount_minor: row.amount_minor,
            bucket: row.bucket,
            business_date: row.business_date,
            currency: row.currency,
            customer_id: row.customer_id,
            days_past_due: row.days_past_due,
            id: row.id,
            kind: row.kind,
            note: row.note,
            priority: row.priority,
            reason: row.reason,
            status: row.status,
            contacts: row.contacts,
            follow_up_date: row.follow_up_date,
            last_outcome: row.last_outcome,
            promised_amount_minor: row.promised_amount_minor,
            promised_date: row.promised_date,
            risk_event_id: row.risk_event_id,
        }
    }
}

/// A contact recorded on a task.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct ContactBody {
    #[schema(value_type = i64)]
    pub account_id: CreditAccountId,
    /// When it was recorded (RFC 3339).
    pub at: String,
    #[schema(example = "2026-05-15")]
    pub business_date: String,
    #[schema(required = true, example = "2026-05-21")]
    pub follow_up_date: Option<String>,
    pub id: i64,
    pub note: String,
    #[schema(example = "promise_to_pay")]
    pub outcome: String,
    /// The promised amount, `{value, currency}`.
    #[schema(required = true)]
    pub promised_amount: Option<AmountView>,
    #[schema(required = true, example = "2026-05-20")]
    pub promised_date: Option<String>,
    /// The key that recorded it.
    pub recorded_by: String,
    pub task_id: i64,
}

impl From<ContactRow> for ContactBody {
    fn from(row: ContactRow) -> Self {
        let promised_amount = match (row.promised_amount_minor, &row.promised_currency) {
            (Some(minor), Some(code)) => tally_core::Currency::from_code(code)
                .ok()
                .map(|currency| AmountView::from(tally_core::Amount::new(minor, currency))),
            _ => None,
        };
        ContactBody {
            account_id: row.account_id,
            at: jiff::Timestamp::from_microsecond(row.at)
                .map(|at| at.to_string())
                .unwrap_or_default(),
            business_date: row.business_date,
            follow_up_date: row.follow_up_date,
            id: row.id,
            note: row.note,
            outcome: row.outcome,
            promised_amount,
            promised_date: row.promised_date,
            recorded_by: row.recorded_by,
            task_id: row.task_id,
        }
    }
}

/// The contacts of a task, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct ContactList {
    pub contacts: Vec<ContactBody>,
}

/// A task just added.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TaskAddedBody {
    pub id: i64,
}

/// A task just closed.
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TaskClosedBody {
    pub id: i64,
    #[schema(example = "closed")]
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;
    use tally_credit::Catalog;

    /// A body as the API sends it: the serialised struct must equal the serialised JSON
    /// value of it, whose object keys are sorted.
    fn assert_sorted_keys<T: Serialize>(body: &T) {
        let text = serde_json::to_string(body).expect("the body serialises");
        let value = serde_json::to_value(body).expect("the body serialises");
        assert_eq!(text, value.to_string());
    }

    /// The JSON body of a pinned answer (`tests/snapshots`, laid out one value per line),
    /// compact, with sorted keys as the API sends them (the answers' snapshots pin that).
    fn pinned_body(snapshot: &str) -> String {
        let after_header = snapshot
            .splitn(3, "---\n")
            .nth(2)
            .expect("a snapshot has a header");
        let body = after_header
            .split_once("\n\n")
            .expect("a pinned answer has a body")
            .1;
        let value: Value = serde_json::from_str(body).expect("the body is JSON");
        value.to_string()
    }

    /// A pinned answer read as its documented type serialises to the bytes the API sent:
    /// the type names every field, in the order sent, with the same values.
    fn assert_documents<T: Serialize + DeserializeOwned>(snapshot: &str) {
        let body = pinned_body(snapshot);
        let typed: T = serde_json::from_str(&body).expect("the documented type reads it");
        assert_eq!(serde_json::to_string(&typed).unwrap(), body);
        assert_sorted_keys(&typed);
    }

    macro_rules! pinned {
        ($name:literal) => {
            include_str!(concat!("../../tests/snapshots/answers__", $name, ".snap"))
        };
    }

    #[test]
    fn the_answers_of_operations_are_what_their_types_document() {
        assert_documents::<AccountChangedBody>(pinned!("credit_purchases_30_authorisation_voided"));
        assert_documents::<AccountChangedBody>(pinned!("credit_purchases_34_refunded_in_part"));
        assert_documents::<AccountChangedBody>(pinned!("credit_purchases_48_temporary_limit_set"));
        assert_documents::<AccountChangedBody>(pinned!("credit_statements_22_written_off"));
        assert_documents::<AuthorizedBody>(pinned!("credit_purchases_20_purchase_authorised"));
        assert_documents::<PlanCreatedBody>(pinned!(
            "credit_purchases_26_captured_into_installments"
        ));
        assert_documents::<PlanCreatedBody>(pinned!(
            "credit_statements_05_statement_put_into_installments"
        ));
        assert_documents::<RepaymentBody>(pinned!("credit_purchases_32_repaid_before_billing"));
        assert_documents::<RepaymentBody>(pinned!("credit_statements_17_overdue_account_repaid"));
        assert_documents::<PayoutBody>(pinned!("credit_purchases_45_credit_balance_paid_out"));
    }

    #[test]
    fn the_answers_of_reads_are_what_their_types_document() {
        assert_documents::<AccountView>(pinned!(
            "credit_statements_04_account_with_its_open_statement"
        ));
        assert_documents::<AccountView>(pinned!("credit_statements_08_account_overdue"));
        assert_documents::<PayoffQuoteBody>(pinned!("credit_purchases_37_payoff_quote"));
        assert_documents::<OffersBody>(pinned!("credit_purchases_15_offers_of_one_product"));
        assert_documents::<OffersBody>(pinned!("credit_purchases_16_offers_of_every_product"));
        assert_documents::<StatementList>(pinned!("credit_statements_01_statements"));
        assert_documents::<ProductList>(pinned!("credit_purchases_01_products"));
        assert_documents::<ProductAddedBody>(pinned!("credit_purchases_02_product_added"));
        assert_documents::<TaskList>(pinned!("credit_statements_09_collections_queue"));
        assert_documents::<TaskAddedBody>(pinned!("credit_statements_11_task_added"));
        assert_documents::<ContactBody>(pinned!("credit_statements_11a_contact_recorded"));
        assert_documents::<ContactList>(pinned!("credit_statements_11c_task_contacts"));
        assert_documents::<TaskClosedBody>(pinned!("credit_statements_15_task_closed"));
    }

    #[test]
    fn every_answer_serialises_with_sorted_keys() {
        let catalog = Catalog::default_catalog().unwrap();
        assert_sorted_keys(&ProductList {
            products: catalog.products.clone(),
        });
        assert_sorted_keys(&ProductAddedBody {
            product: catalog.products.first().cloned(),
        });
        assert_sorted_keys(&ProductAddedBody { product: None });
        assert_sorted_keys(&TaskBody::from(ContactTaskRow {
            id: 3,
            account_id: 2,
            customer_id: None,
            business_date: "2026-05-15".into(),
            kind: "callback".into(),
            reason: "asked to be called".into(),
            bucket: "current".into(),
            days_past_due: 0,
            amount_minor: 1_000,
            currency: "CNY".into(),
            priority: 3,
            status: "closed".into(),
            note: Some("called".into()),
            risk_event_id: Some("purchase-1".into()),
            contacts: 2,
            last_outcome: Some("promise_to_pay".into()),
            promised_amount_minor: Some(50_000),
            promised_date: Some("2026-05-20".into()),
            follow_up_date: Some("2026-05-21".into()),
        }));
        assert_sorted_keys(&ContactBody::from(ContactRow {
            id: 1,
            task_id: 3,
            account_id: 2,
            business_date: "2026-05-15".into(),
            at: 1_778_835_600_000_000,
            outcome: "promise_to_pay".into(),
            note: "salary".into(),
            promised_amount_minor: Some(50_000),
            promised_currency: Some("CNY".into()),
            promised_date: Some("2026-05-20".into()),
            follow_up_date: Some("2026-05-21".into()),
            recorded_by: "agent".into(),
        }));
    }

    #[test]
    fn the_product_body_documents_every_field_of_a_product() {
        // Every product of the shipped catalog, as answered, reads as the documented body
        // (which refuses unknown fields); and a body with only the required fields is a
        // product.
        for product in Catalog::default_catalog().unwrap().products {
            let answered = serde_json::to_value(&product).unwrap();
            let documented: ProductBody = serde_json::from_value(answered).unwrap();
            assert_eq!(documented.code, product.code);
            assert_eq!(documented.terms.len(), product.terms.len());
        }
        let minimal = json!({
            "code": "holiday-12",
            "name": "Holiday installments",
            "currency": "CNY",
            "fee_model": {"kind": "flat_fee"},
            "terms": [{"periods": 12, "rate": "0.007"}],
        });
        serde_json::from_value::<ProductBody>(minimal.clone()).unwrap();
        serde_json::from_value::<Product>(minimal).unwrap();
    }

    #[test]
    fn requests_serialise_as_their_hash_was_always_taken() {
        // An operation's request hash is taken over the request's JSON value: a retry of a
        // request stored before these types existed must give the same value.
        let request: AuthorizeRequest = serde_json::from_value(json!({
            "amount": {"value": "1000", "currency": "CNY"},
            "merchant_reference": "order-1",
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({
                "amount": {"value": "1000.00", "currency": "CNY"},
                "expires_on": null,
                "merchant_reference": "order-1",
            })
        );
        let request: OpenAccountRequest = serde_json::from_value(json!({
            "customer_id": "0196a1d2-0000-7000-8000-000000000001",
            "statement_day": 5,
            "application": {
                "monthly_income": {"value": "30000", "currency": "CNY"},
                "monthly_debt_payments": {"value": "2000.5", "currency": "CNY"},
            },
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({
                "customer_id": "0196a1d2-0000-7000-8000-000000000001",
                "statement_day": 5,
                "due_days": 9,
                "application": {
                    "monthly_income": {"value": "30000.00", "currency": "CNY"},
                    "monthly_debt_payments": {"value": "2000.50", "currency": "CNY"},
                    "attributes": {},
                },
            })
        );
    }
}
