//! A wallet or vault leg: a ledger hold on the customer's balance, posted to the merchant
//! payable on capture, voided on release; a refund is an entry back to the balance.

use super::{hold_expiry, unexpected};
use crate::payments::accounts::Balance;
use crate::payments::checkout::{PaymentService, StepError};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{Action, PaymentRecord, Reservation, Taken};
use std::collections::BTreeMap;
use tally_core::{Amount, HoldId};
use tally_ledger::{Command, LedgerError, NewHold, Outcome};
use tally_payments::PaymentError;

impl PaymentService {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn take_on_balance(
        &self,
        record: &PaymentRecord,
        balance: Balance,
        amount: Amount,
        reservation: Option<Reservation>,
        key: &str,
        action: &Action,
    ) -> Result<Taken, StepError> {
        let payment = &record.payment;
        let currency = payment.amount.currency();
        let accounts = self
            .accounts
            .service(&self.database, &self.writer, currency)
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        let Some(account) = self
            .balance_account(balance, &payment.customer, currency)
            .await
            .map_err(|error| StepError::Fatal(error.into()))?
        else {
            return Ok(Taken::Refused {
                code: "balance_not_found".into(),
                message: format!("customer {} has no {}", payment.customer, balance.as_str()),
            });
        };
        let hold_id = match reservation {
            Some(Reservation::Hold { hold_id }) => Some(hold_id),
            _ => None,
        };
        let needs_hold = || {
            hold_id.ok_or(StepError::Fatal(PaymentServiceError::Rules(
                PaymentError::Internal("a reserved balance leg has a hold"),
            )))
        };
        match action {
            Action::Reserve { .. } => {
                let expires_at = hold_expiry(payment)?;
                let command = Command::CreateHold(NewHold {
                    debit_account_id: account,
                    credit_account_id: accounts.merchant_payable,
                    amount,
                    expires_at,
                    description: format!("payment {} from the {}", record.id, balance.as_str()),
                    metadata: BTreeMap::from([("payment".to_string(), record.id.clone())]),
                });
                match self.submit(key, command).await? {
                    Ok(Outcome::Hold(hold)) => Ok(Taken::Reserved {
                        reservation: Reservation::Hold { hold_id: hold.id },
                    }),
                    Ok(other) => Err(unexpected(key, &other)),
                    Err(LedgerError::ExceedsCredits(_)) => Ok(Taken::Refused {
                        code: "insufficient_balance".into(),
                        message: format!(
                            "the {} of customer {} holds less than {}",
                            balance.as_str(),
                            payment.customer,
                            amount
                        ),
                    }),
                    Err(error) => Ok(Taken::Refused {
                        code: error.code().to_string(),
                        message: error.to_string(),
                    }),
                }
            }
            Action::Release { .. } => self.release_hold(key, needs_hold()?).await,
            Action::Capture { amount, .. } => {
                let hold_id = needs_hold()?;
                if amount.is_zero() {
                    self.release_hold(key, hold_id).await?;
                    return Ok(Taken::Captured { plan: None });
                }
                match self
                    .submit(
                        key,
                        Command::PostHold {
                            hold_id,
                            amount: Some(*amount),
                        },
                    )
                    .await?
                {
                    Ok(_) => {
                        let leg = action.leg();
                        let from = accounts.merchant_payable;
                        self.credit_merchant(record, leg, *amount, None, from, key)
                            .await?;
                        Ok(Taken::Captured { plan: None })
                    }
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: key.to_string(),
                        message: error.to_string(),
                    })),
                }
            }
            Action::Refund { amount, .. } => {
                let entry = self
                    .merchant_refund_entry(
                        record,
                        account,
                        *amount,
                        None,
                        format!(
                            "refund of payment {} to the {}",
                            record.id,
                            balance.as_str()
                        ),
                    )
                    .await?
                    .ok_or(StepError::Fatal(PaymentServiceError::Rules(
                        PaymentError::Internal("a refund to a balance or card moves money"),
                    )))?;
                match self.submit(key, Command::PostEntry(entry)).await? {
                    Ok(_) => Ok(Taken::Refunded),
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: key.to_string(),
                        message: error.to_string(),
                    })),
                }
            }
        }
    }

    /// Voids a hold; one already released (voided or expired at the ledger) is released.
    pub(super) async fn release_hold(
        &self,
        key: &str,
        hold_id: HoldId,
    ) -> Result<Taken, StepError> {
        match self.submit(key, Command::VoidHold { hold_id }).await? {
            Ok(_) | Err(LedgerError::HoldNotPending { .. }) => Ok(Taken::Released),
            Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                key: key.to_string(),
                message: error.to_string(),
            })),
        }
    }
}
