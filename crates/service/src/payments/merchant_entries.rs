//! The merchant's side of a capture and a refund: the ledger entries that move a leg's
//! money to (or back from) its merchant's pending account, net of fees.
//!
//! - **Capture**: in the same step as the leg's capture, under the step's key and
//!   `:merchant`, one entry takes the leg's gross from where the capture put it (the
//!   captures in transit for wallet, vault and card; what the credit business owes, net of
//!   the plan's discount, for the credit line) and credits the merchant's pending account
//!   with the gross less the fee and the fee income with the payment service's part of
//!   the fee. Holds in Tally's ledger are between two accounts, so the capture itself (a
//!   hold posted) cannot carry the fee's leg; the split is the next entry of the same
//!   step, taken again with it by retries and recovery, so it is never missing once the
//!   capture step is done.
//! - **Refund**: the entry that gives the money back to the source debits the merchant's
//!   pending account. Fees are not returned on a refund (as Stripe and Adyen do), except
//!   the credit plan's merchant discount, which the credit business returns pro rata
//!   (`Plan::refund`) and so is returned to the merchant likewise.
//!
//! Every such entry carries `merchant`, `merchant_movement` (`capture` or `refund`),
//! `gross` and `fee` (minor units; for a refund, the fee returned) in its metadata: the
//! settlement run reads a merchant's gross, fees and refunds from them.

use crate::payments::checkout::{PaymentService, StepError};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::PaymentRecord;
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount, Currency};
use tally_ledger::{Command, NewEntry, NewLeg, Side};
use tally_payments::{FeeSchedule, PaymentError, PaymentMethod};
use tally_store::StoreError;

/// Metadata key naming what a merchant entry is.
pub const MOVEMENT: &str = "merchant_movement";
pub const MOVEMENT_CAPTURE: &str = "capture";
pub const MOVEMENT_REFUND: &str = "refund";
/// A dispute's entries (`disputes.rs`): what they move on the pending account is the
/// statement's `disputes`.
pub const MOVEMENT_DISPUTE: &str = "dispute";

/// A credit plan's amounts, as its account's answer shows them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanTerms {
    pub principal: Amount,
    pub discount: Amount,
    pub refunded: Amount,
}

fn internal(message: &'static str) -> StepError {
    StepError::Fatal(PaymentServiceError::Rules(PaymentError::Internal(message)))
}

fn money(error: tally_core::MoneyError) -> StepError {
    StepError::Fatal(PaymentServiceError::Rules(PaymentError::Money(error)))
}

/// Plan `plan`'s principal, merchant discount and refunded amount, read from a credit
/// operation's answer (its `account.plans`).
pub(crate) fn plan_terms(
    body: &serde_json::Value,
    plan: Option<u32>,
    currency: Currency,
    key: &str,
) -> Result<PlanTerms, StepError> {
    let corrupt = |what: &str| {
        StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
            "the credit answer under {key} has no {what}"
        ))))
    };
    let plan = plan.ok_or_else(|| corrupt("plan id"))?;
    let found = body["account"]["plans"]
        .as_array()
        .and_then(|plans| {
            plans
                .iter()
                .find(|candidate| candidate["id"].as_u64() == Some(u64::from(plan)))
        })
        .ok_or_else(|| corrupt("plan"))?;
    let amount = |field: &str| -> Result<Amount, StepError> {
        let amount: Amount =
            serde_json::from_value(found[field].clone()).map_err(|_| corrupt(field))?;
        if amount.currency() != currency {
            return Err(corrupt(field));
        }
        Ok(amount)
    };
    Ok(PlanTerms {
        principal: amount("principal")?,
        discount: amount("merchant_discount")?,
        refunded: amount("refunded")?,
    })
}

/// The merchant discount the credit business gives back on a refund of `value` of a
/// credit leg, by its own rule (`tally_credit` `Plan::refund`): the discount times the
/// refunded share of the principal, rounded down; on the refund that completes the
/// principal, whatever of the discount is left. The earlier refunds of the leg are the
/// payment's refunds before `refund` whose part on `leg` was taken.
pub(crate) fn discount_returned(
    record: &PaymentRecord,
    refund: &str,
    leg: usize,
    value: Amount,
    terms: &PlanTerms,
) -> Result<Amount, PaymentServiceError> {
    let share = |part: Amount| -> Result<Amount, PaymentServiceError> {
        if !terms.principal.is_positive() {
            return Ok(Amount::zero(part.currency()));
        }
        let scaled = i128::from(terms.discount.minor()) * i128::from(part.minor())
            / i128::from(terms.principal.minor());
        let minor = i64::try_from(scaled)
            .map_err(|_| PaymentError::Internal("a discount share fits in an amount"))?;
        Ok(Amount::new(minor, part.currency()))
    };
    if terms.refunded == terms.principal {
        let mut before = Amount::zero(value.currency());
        for earlier in &record.refunds {
            if earlier.id == refund {
                break;
            }
            let part = earlier.progress.parts.get(leg).copied();
            let taken = earlier.progress.done.get(leg).copied().unwrap_or(false);
            if let (Some(part), true) = (part, taken) {
                before = before
                    .checked_add(share(part)?)
                    .map_err(PaymentError::from)?;
            }
        }
        return Ok(terms
            .discount
            .checked_sub(before)
            .map_err(PaymentError::from)?);
    }
    share(value)
}

fn leg(account_id: AccountId, side: Side, amount: Amount) -> Option<NewLeg> {
    amount.is_positive().then_some(NewLeg {
        account_id,
        side,
        amount,
    })
}

fn metadata(
    record: &PaymentRecord,
    movement: &str,
    gross: Amount,
    fee: Amount,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("payment".to_string(), record.id.clone()),
        ("merchant".to_string(), record.payment.merchant_id.clone()),
        (MOVEMENT.to_string(), movement.to_string()),
        ("gross".to_string(), gross.minor().to_string()),
        ("fee".to_string(), fee.minor().to_string()),
    ])
}

impl PaymentService {
    /// The payment's fee schedule, or none (payments stored before merchants existed, or
    /// in another currency than the schedule's).
    fn fees_of(record: &PaymentRecord) -> FeeSchedule {
        let currency = record.payment.amount.currency();
        match &record.fees {
            Some(fees) if fees.currency == currency => fees.clone(),
            _ => FeeSchedule::free(currency),
        }
    }

    /// Credits the merchant's pending account with leg `leg`'s capture of `gross` net of
    /// its fee, taking the money from `from` (see the module's docs), under `{key}:merchant`.
    /// `discount` is the credit plan's merchant discount on a credit-line leg.
    pub(crate) async fn credit_merchant(
        &self,
        record: &PaymentRecord,
        leg_index: usize,
        gross: Amount,
        discount: Option<Amount>,
        from: AccountId,
        key: &str,
    ) -> Result<(), StepError> {
        let source = &record
            .payment
            .legs
            .get(leg_index)
            .ok_or(internal("a captured leg exists"))?
            .source;
        let fees = Self::fees_of(record);
        let method = PaymentMethod::of_source(source);
        let discount = discount.unwrap_or(Amount::zero(gross.currency()));
        let (total_fee, payments_fee) = match method {
            PaymentMethod::CreditLine(term) => {
                let split = fees
                    .credit_line_fee(term, gross, discount)
                    .map_err(|error| StepError::Fatal(error.into()))?;
                (split.total, split.payments_part)
            }
            _ => {
                let fee = fees
                    .fee(method, gross)
                    .map_err(|error| StepError::Fatal(error.into()))?;
                (fee, fee)
            }
        };
        let taken = gross.checked_sub(discount).map_err(money)?;
        let net = gross.checked_sub(total_fee).map_err(money)?;
        let merchant = self
            .accounts()
            .merchant(
                self.database(),
                self.writer(),
                &record.payment.merchant_id,
                gross.currency(),
            )
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        let service = self
            .accounts()
            .service(self.database(), self.writer(), gross.currency())
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        let legs: Vec<NewLeg> = [
            leg(from, Side::Debit, taken),
            leg(merchant.pending, Side::Credit, net),
            leg(service.fee_income, Side::Credit, payments_fee),
        ]
        .into_iter()
        .flatten()
        .collect();
        if legs.is_empty() {
            return Ok(());
        }
        let entry = NewEntry {
            description: format!(
                "payment {} leg {leg_index} to merchant {} net of fees",
                record.id, record.payment.merchant_id
            ),
            metadata: metadata(record, MOVEMENT_CAPTURE, gross, total_fee),
            legs,
        };
        let merchant_key = format!("{key}:merchant");
        match self
            .submit(&merchant_key, Command::PostEntry(entry))
            .await?
        {
            Ok(_) => Ok(()),
            Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                key: merchant_key,
                message: error.to_string(),
            })),
        }
    }

    /// The entry of a refund of `amount` from the merchant's pending account to `to`;
    /// `fee_returned` is the credit plan's discount given back (nothing otherwise). `None`
    /// when nothing moves (a refund the discount covers whole).
    pub(crate) async fn merchant_refund_entry(
        &self,
        record: &PaymentRecord,
        to: AccountId,
        amount: Amount,
        fee_returned: Option<Amount>,
        description: String,
    ) -> Result<Option<NewEntry>, StepError> {
        let returned = fee_returned.unwrap_or(Amount::zero(amount.currency()));
        let moved = amount.checked_sub(returned).map_err(money)?;
        if !moved.is_positive() {
            return Ok(None);
        }
        let merchant = self
            .accounts()
            .merchant(
                self.database(),
                self.writer(),
                &record.payment.merchant_id,
                amount.currency(),
            )
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        Ok(Some(NewEntry {
            description,
            metadata: metadata(record, MOVEMENT_REFUND, amount, returned),
            legs: vec![
                NewLeg {
                    account_id: merchant.pending,
                    side: Side::Debit,
                    amount: moved,
                },
                NewLeg {
                    account_id: to,
                    side: Side::Credit,
                    amount: moved,
                },
            ],
        }))
    }
}
