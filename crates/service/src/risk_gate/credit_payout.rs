//! A customer's credit-balance payout behind the risk gate: a `payout` event of the
//! account's customer (id `credit-balance-payout:` of the account and the idempotency key),
//! decided before any money moves, like every payout.
//!
//! The payment service's own checks come first and move nothing (the account has a
//! customer with a bank card bound to pay to). Rejected, nothing moves (`risk_rejected`);
//! held (step-up or review), nothing moves while it waits and letting it through pays it out
//! then, under the request's own key (the credit rules check the credit balance again); a
//! held delivery means nothing for money out. A held credit-balance payout is a held
//! `payout` whose operation names the credit account instead of a merchant.

use super::credit::{answer_of, stored_answer, Gated};
use super::{event_id, GateError, Guarded, Passage, RiskGate, Subject};
use crate::caller::Caller;
use crate::credit::operations::{Answer, AnswerKind};
use crate::payments::payouts::customers::CreditBalancePayout;
use crate::payments::payouts::PayoutServiceError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tally_core::Amount;
use tally_risk::{Event, EventKind};
use tally_store::credit::CreditAccountId;
use tally_store::held_operations::HeldOperationRow;
use tally_store::StoreError;

/// A credit-balance payout of `amount` from account `account` under idempotency key `key`;
/// `request_hash` is the credit request's.
#[derive(Debug, Clone)]
pub struct CreditBalancePayoutRequest<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    pub account: CreditAccountId,
    pub amount: Amount,
    pub subject: Subject,
    pub caller: &'a Caller,
}

/// A held credit-balance payout: what to pay out when it is let through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeldCreditBalancePayout {
    credit_account: CreditAccountId,
    amount: Amount,
    request_hash: String,
}

/// The answer of a credit-balance payout made: the credit operation's answer (`paid_out`
/// and the account) with the payout that carries the money to the customer's bank card.
fn answer(made: CreditBalancePayout) -> Answer {
    let mut body = made.answer.body;
    if let Value::Object(fields) = &mut body {
        fields.insert("payout".into(), json!(made.payout));
    }
    Answer {
        kind: AnswerKind::Done,
        body,
    }
}

/// A refusal of the payment service as the gate answers it: a credit rule's as the credit
/// operation's, the others as the payout's.
fn refusal(error: PayoutServiceError) -> GateError {
    match error {
        PayoutServiceError::Credit(error) => GateError::Operation(error),
        other => GateError::Payout(other),
    }
}

impl RiskGate {
    /// Pays a customer's credit balance out once the risk engine let it through (see the
    /// module).
    pub async fn pay_out_credit_balance(
        &self,
        request: CreditBalancePayoutRequest<'_>,
    ) -> Result<Gated, GateError> {
        let payments = self.payments.as_deref().ok_or_else(|| {
            GateError::Invalid("the payment service is not running in this process".into())
        })?;
        let now = self.clock.now();
        let id = event_id(
            "credit-balance-payout",
            &[&request.account.to_string(), request.key],
        );
        let pay = || {
            payments.pay_out_credit_balance(
                request.key,
                request.account,
                request.amount,
                request.request_hash,
                now,
            )
        };
        if let Some(held) = self.database.held_operation(&id).await? {
            return match self.as_it_stands(held, request.request_hash)? {
                Passage::Held(held) => Ok(Gated::Held(held)),
                Passage::Completed(stored) => Ok(Gated::Done(answer_of(stored))),
                Passage::Proceed(_) => Err(GateError::HeldNotFound(id)),
            };
        }
        if payments.credit_balance_payout_made(request.key).await? {
            return Ok(Gated::Done(answer(pay().await.map_err(refusal)?)));
        }
        let customer = payments
            .check_credit_balance_payout(request.account)
            .await
            .map_err(refusal)?;
        let mut event = Event::new(id, EventKind::Payout, now, customer);
        self.describe(&mut event, &request.subject)?;
        // The customer's delivery address and phone are looked up with the device.
        let identifiers = self
            .contact(&event.customer, &request.subject, None)
            .await?;
        event.amount = Some(request.amount);
        let operation = HeldCreditBalancePayout {
            credit_account: request.account,
            amount: request.amount,
            request_hash: request.request_hash.to_string(),
        };
        let passage = self
            .pass(Guarded {
                event,
                kind: "payout",
                key: request.key,
                request_hash: request.request_hash,
                operation: json!(operation),
                caller: request.caller,
                identifiers,
            })
            .await?;
        match passage {
            Passage::Proceed(_) => Ok(Gated::Done(answer(pay().await.map_err(refusal)?))),
            Passage::Held(held) => Ok(Gated::Held(held)),
            Passage::Completed(stored) => Ok(Gated::Done(answer_of(stored))),
        }
    }

    /// Completes a held credit-balance payout, if `held` is one (`None` otherwise): the
    /// payout is made now under the held request's key.
    pub(super) async fn complete_credit_balance_payout(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Option<Result<Value, GateError>> {
        let operation: HeldCreditBalancePayout = serde_json::from_str(&held.operation).ok()?;
        let Some(payments) = self.payments.as_deref() else {
            return Some(Err(GateError::Store(StoreError::Corrupt(format!(
                "held operation {}: a credit-balance payout, and no payment service",
                held.id
            )))));
        };
        let made = payments
            .pay_out_credit_balance(
                &held.idempotency_key,
                operation.credit_account,
                operation.amount,
                &operation.request_hash,
                now,
            )
            .await
            .map_err(refusal);
        Some(made.map(|made| stored_answer(&answer(made))))
    }
}
