//! A payment as the API, the CLI and the console show it. Fields are declared in
//! alphabetical order, the order of Tally's other JSON answers.

use crate::credit::views::{AmountView, InstallmentView};
use crate::payments::record::{PaymentRecord, Reservation};
use serde::{Deserialize, Serialize};
use tally_payments::Source;
use utoipa::ToSchema;

/// One source's part of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LegView {
    /// What this source funds.
    pub amount: AmountView,
    pub captured: AmountView,
    /// The card token, for a card leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    /// The credit account, for a credit-line leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_account_id: Option<i64>,
    /// The installment plan the credit-line leg became, once captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_plan_id: Option<u32>,
    /// For a credit-line leg, what it costs the shopper: shown before confirming.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_terms: Option<CreditTermsView>,
    /// `wallet`, `vault`, `credit_line` or `card`.
    #[schema(example = "wallet")]
    pub kind: String,
    pub refunded: AmountView,
    /// In refunds not yet finished.
    pub refunding: AmountView,
    /// `pending`, `reserved`, `captured`, `released` or `failed`.
    pub status: String,
    /// The installment term, for a credit-line leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u32>,
}

/// What a credit-line leg costs the shopper, computed by the credit product's own rules for
/// the leg's amount and term before the payment is confirmed. Amounts and rates are exact
/// decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreditTermsView {
    /// The installments, each with its principal, fee and interest. Their dates are those
    /// of a capture today; a capture on a later day moves them, not their amounts.
    pub installments: Vec<InstallmentView>,
    /// The term: the number of monthly installments.
    pub periods: u32,
    /// What the credit line pays the merchant.
    pub principal: AmountView,
    /// The credit product the plan is of.
    pub product: String,
    /// Fees and interest over the whole plan.
    pub total_charges: AmountView,
    /// The principal and its charges: what the shopper repays.
    pub total_repayable: AmountView,
    pub true_apr: TrueAprView,
}

/// The true APR of a plan: the internal rate of return of the shopper's cash flows per
/// period, annualised. Decimal strings, never rounded through floating point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrueAprView {
    /// (1 + periodic) ^ periods_per_year − 1, as a fraction.
    #[schema(example = "0.2021")]
    pub effective_annual: String,
    /// periodic × periods_per_year, as a fraction.
    #[schema(example = "0.1856")]
    pub nominal_annual: String,
    /// The nominal APR in percent, two decimals, half-even: the figure disclosed.
    #[schema(example = "18.56")]
    pub nominal_percent: String,
    /// The rate per period.
    #[schema(example = "0.0155")]
    pub periodic: String,
    /// 12 for monthly installments.
    pub periods_per_year: u32,
}

/// A status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransitionView {
    pub at: String,
    pub cause: String,
    pub from: String,
    pub to: String,
}

/// The order's delivery held by risk control, or released by an analyst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryChangeView {
    pub at: String,
    pub cause: String,
    /// `true` when the delivery was held, `false` when it was released.
    pub held: bool,
}

/// Why a payment or a refund failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FailureView {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg: Option<usize>,
    pub message: String,
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub amount: AmountView,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureView>,
    pub id: String,
    /// The part each leg gets back, in leg order.
    pub parts: Vec<AmountView>,
    /// `reverse_funding`, `pro_rata` or `card_last`.
    pub policy: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub amount: AmountView,
    /// Until when an authorised payment may be captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_before: Option<String>,
    /// `automatic` or `manual`.
    pub capture_method: String,
    pub created_at: String,
    pub customer: String,
    /// Every hold and release of the order's delivery, in order.
    #[serde(default)]
    pub delivery_changes: Vec<DeliveryChangeView>,
    /// Risk control holds the order's delivery until an analyst releases it.
    pub delivery_held: bool,
    /// Until when the shopper may complete it.
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureView>,
    pub id: String,
    pub legs: Vec<LegView>,
    pub merchant_id: String,
    pub order_reference: String,
    pub refunds: Vec<RefundView>,
    /// `created`, `requires_action`, `authorized`, `under_review`, `captured`,
    /// `partially_captured`, `partially_refunded`, `refunded`, `failed`, `cancelled` or
    /// `expired`.
    pub status: String,
    pub transitions: Vec<TransitionView>,
}

fn failure_view(failure: &crate::payments::record::Failure) -> FailureView {
    FailureView {
        code: failure.code.clone(),
        leg: failure.leg,
        message: failure.message.clone(),
    }
}

/// The view of a stored payment.
pub fn payment_view(record: &PaymentRecord) -> PaymentView {
    let payment = &record.payment;
    let legs = payment
        .legs
        .iter()
        .enumerate()
        .map(|(index, leg)| {
            let (credit_account_id, credit_plan_id, term, card_token) = match &leg.source {
                Source::CreditLine { account, term } => {
                    let plan = match record.reservations.get(index) {
                        Some(Some(Reservation::Credit { plan, .. })) => *plan,
                        _ => None,
                    };
                    (Some(*account), plan, Some(*term), None)
                }
                Source::Card { token } => (None, None, None, Some(token.clone())),
                _ => (None, None, None, None),
            };
            LegView {
                amount: leg.amount.into(),
                captured: leg.captured.into(),
                card_token,
                credit_account_id,
                credit_plan_id,
                credit_terms: record.credit_terms.get(index).cloned().flatten(),
                kind: leg.source.kind().to_string(),
                refunded: leg.refunded.into(),
                refunding: leg.refunding.into(),
                status: leg.status.as_str().to_string(),
                term,
            }
        })
        .collect();
    PaymentView {
        amount: payment.amount.into(),
        capture_before: payment.capture_before.map(|at| at.to_string()),
        capture_method: match payment.capture_method {
            tally_payments::CaptureMethod::Automatic => "automatic",
            tally_payments::CaptureMethod::Manual => "manual",
        }
        .to_string(),
        created_at: payment.created_at.to_string(),
        customer: payment.customer.clone(),
        delivery_changes: payment
            .delivery_changes
            .iter()
            .map(|change| DeliveryChangeView {
                at: change.at.to_string(),
                cause: change.cause.clone(),
                held: change.held,
            })
            .collect(),
        delivery_held: payment.delivery_held,
        expires_at: payment.expires_at.to_string(),
        failure: record.failure.as_ref().map(failure_view),
        id: record.id.clone(),
        legs,
        merchant_id: payment.merchant_id.clone(),
        order_reference: payment.order_reference.clone(),
        refunds: record
            .refunds
            .iter()
            .map(|refund| RefundView {
                amount: refund.amount.into(),
                created_at: refund.created_at.to_string(),
                failure: refund.failure.as_ref().map(failure_view),
                id: refund.id.clone(),
                parts: refund
                    .progress
                    .parts
                    .iter()
                    .map(|part| (*part).into())
                    .collect(),
                policy: refund.policy.as_str().to_string(),
                status: refund.status.as_str().to_string(),
            })
            .collect(),
        status: payment.status.as_str().to_string(),
        transitions: payment
            .transitions
            .iter()
            .map(|transition| TransitionView {
                at: transition.at.to_string(),
                cause: transition.cause.clone(),
                from: transition.from.as_str().to_string(),
                to: transition.to.as_str().to_string(),
            })
            .collect(),
    }
}
