//! A credit-line leg: an authorisation, capture into the installment term, void or refund
//! through the credit service's operations, under the step's key as the operation's key.

use super::hold_expiry;
use crate::credit::commands::CreditCommand;
use crate::credit::operations::{request_hash as credit_request_hash, OperationError};
use crate::intent::step_key;
use crate::payments::checkout::{PaymentService, StepError};
use crate::payments::error::PaymentServiceError;
use crate::payments::merchant_entries::{discount_returned, plan_terms};
use crate::payments::record::{Action, PaymentRecord, Reservation, Taken};
use jiff::Timestamp;
use serde_json::json;
use tally_core::Amount;
use tally_credit::CreditError;
use tally_ledger::Command;
use tally_payments::PaymentError;
use tally_store::StoreError;

impl PaymentService {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn take_on_credit(
        &self,
        record: &PaymentRecord,
        account: i64,
        term: u32,
        amount: Amount,
        reservation: Option<Reservation>,
        key: &str,
        action: &Action,
        now: Timestamp,
    ) -> Result<Taken, StepError> {
        let credit = self
            .credit
            .as_ref()
            .ok_or(StepError::Fatal(PaymentServiceError::CreditUnavailable))?;
        let date = now.to_zoned(self.config.time_zone.clone()).date();
        let authorization = match reservation {
            Some(Reservation::Credit {
                authorization,
                plan,
                ..
            }) => Some((authorization, plan)),
            _ => None,
        };
        let needs_authorization = || {
            authorization.ok_or(StepError::Fatal(PaymentServiceError::Rules(
                PaymentError::Internal("a reserved credit leg has an authorisation"),
            )))
        };
        let (command, body) = match action {
            Action::Reserve { .. } => {
                let last_day = hold_expiry(&record.payment)?
                    .to_zoned(self.config.time_zone.clone())
                    .date();
                (
                    CreditCommand::Authorize {
                        amount,
                        expires_on: Some(last_day),
                        merchant_reference: Some(format!("payment {}", record.id)),
                    },
                    json!({ "payment": record.id, "amount": amount.to_string(), "expires_on": last_day.to_string() }),
                )
            }
            Action::Release { .. } => {
                let (authorization, _) = needs_authorization()?;
                (
                    CreditCommand::Void { authorization },
                    json!({ "payment": record.id, "authorization": authorization }),
                )
            }
            Action::Capture { amount, .. } => {
                let (authorization, _) = needs_authorization()?;
                if amount.is_zero() {
                    (
                        CreditCommand::Void { authorization },
                        json!({ "payment": record.id, "authorization": authorization }),
                    )
                } else {
                    (
                        CreditCommand::Capture {
                            authorization,
                            amount: Some(*amount),
                            product: self.config.credit_product.clone(),
                            periods: term,
                        },
                        json!({ "payment": record.id, "authorization": authorization, "amount": amount.to_string(), "periods": term }),
                    )
                }
            }
            Action::Refund { amount, .. } => {
                let plan = needs_authorization()?.1.ok_or(StepError::Fatal(
                    PaymentServiceError::Rules(PaymentError::Internal(
                        "a captured credit leg has a plan",
                    )),
                ))?;
                (
                    CreditCommand::Refund {
                        plan,
                        amount: *amount,
                    },
                    json!({ "payment": record.id, "plan": plan, "amount": amount.to_string() }),
                )
            }
        };
        let hash = credit_request_hash(command.kind(), account, &body);
        let answer = credit
            .operations
            .execute(key, account, &command, &hash, date, now)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                return match (&error, action) {
                    // Already released at the credit account (voided, expired or captured).
                    (
                        OperationError::Credit(CreditError::AuthorizationNotFound(_)),
                        Action::Release { .. },
                    ) => Ok(Taken::Released),
                    (
                        OperationError::Store(_)
                        | OperationError::LedgerUnavailable(_)
                        | OperationError::Contended(_),
                        _,
                    ) => Err(StepError::Unknown(error.to_string())),
                    (_, Action::Reserve { .. }) => Ok(Taken::Refused {
                        code: error.code().to_string(),
                        message: error.to_string(),
                    }),
                    _ => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: key.to_string(),
                        message: format!("credit account {account}: {error} ({})", error.code()),
                    })),
                };
            }
        };
        match action {
            Action::Reserve { .. } => {
                let authorization = answer.body["authorization"]["id"]
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| {
                        StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
                            "the credit authorisation under {key} has no id"
                        ))))
                    })?;
                Ok(Taken::Reserved {
                    reservation: Reservation::Credit {
                        account,
                        authorization,
                        plan: None,
                    },
                })
            }
            Action::Release { .. } => Ok(Taken::Released),
            Action::Capture { amount, .. } => {
                if amount.is_zero() {
                    return Ok(Taken::Captured { plan: None });
                }
                let plan = answer.body["plan_id"]
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok());
                let terms = plan_terms(&answer.body, plan, amount.currency(), key)?;
                let accounts = self
                    .accounts
                    .service(&self.database, &self.writer, amount.currency())
                    .await
                    .map_err(|error| StepError::Fatal(error.into()))?;
                self.credit_merchant(
                    record,
                    action.leg(),
                    *amount,
                    Some(terms.discount),
                    accounts.credit_due,
                    key,
                )
                .await?;
                Ok(Taken::Captured { plan })
            }
            Action::Refund { amount, refund, .. } => {
                let plan = match reservation {
                    Some(Reservation::Credit { plan, .. }) => plan,
                    _ => None,
                };
                let terms = plan_terms(&answer.body, plan, amount.currency(), key)?;
                let returned = discount_returned(record, refund, action.leg(), *amount, &terms)
                    .map_err(StepError::Fatal)?;
                let accounts = self
                    .accounts
                    .service(&self.database, &self.writer, amount.currency())
                    .await
                    .map_err(|error| StepError::Fatal(error.into()))?;
                let entry = self
                    .merchant_refund_entry(
                        record,
                        accounts.credit_due,
                        *amount,
                        Some(returned),
                        format!("refund of payment {} to the credit line", record.id),
                    )
                    .await?;
                if let Some(entry) = entry {
                    let merchant_key = step_key(key, "merchant");
                    if let Err(error) = self
                        .submit(&merchant_key, Command::PostEntry(entry))
                        .await?
                    {
                        return Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                            key: merchant_key,
                            message: error.to_string(),
                        }));
                    }
                }
                Ok(Taken::Refunded)
            }
        }
    }
}
