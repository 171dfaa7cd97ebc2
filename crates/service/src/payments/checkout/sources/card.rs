//! A card leg: the channel acts first under the step's key as its reference, then the
//! ledger mirrors it between the channel clearing account and the merchant payable.

use super::{hold_expiry, unexpected};
use crate::intent::step_key;
use crate::payments::checkout::{PaymentService, StepError};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{Action, PaymentRecord, Reservation, Taken};
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_channel::{
    refusal, AuthorizationStatus, AuthorizeRequest, CaptureRequest as ChannelCapture, CardToken,
    Channel, ChannelError, ChannelId, Reference, RefundRequest as ChannelRefundRequest,
    VoidRequest,
};
use tally_core::Amount;
use tally_ledger::{Command, NewHold, Outcome};
use tally_payments::PaymentError;
use tally_store::StoreError;

impl PaymentService {
    /// A card leg: the channel acts first (authorise, capture, void, refund under the
    /// step's key as the reference, so the bank acts once), then the ledger mirrors it
    /// (a hold from the channel clearing account to the merchant payable, posted, voided,
    /// or a refund entry) under `{key}:ledger`.
    pub(super) async fn take_on_card(
        &self,
        record: &PaymentRecord,
        token: &str,
        amount: Amount,
        reservation: Option<Reservation>,
        key: &str,
        action: &Action,
    ) -> Result<Taken, StepError> {
        let channel = self.channel().map_err(StepError::Fatal)?;
        let currency = record.payment.amount.currency();
        let accounts = self
            .accounts
            .service(&self.database, &self.writer, currency)
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        let reference = channel_reference(key)?;
        let ledger_key = step_key(key, "ledger");
        let reserved = match reservation {
            Some(Reservation::Card {
                channel_id,
                hold_id,
            }) => Some((channel_id, hold_id)),
            _ => None,
        };
        let needs_reserved = || {
            reserved
                .clone()
                .ok_or(StepError::Fatal(PaymentServiceError::Rules(
                    PaymentError::Internal("a reserved card leg has its authorisation and hold"),
                )))
        };
        let parse_channel_id = |text: &str| {
            ChannelId::new(text).map_err(|error| {
                StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
                    "channel id {text:?}: {error}"
                ))))
            })
        };
        match action {
            Action::Reserve { .. } => {
                let token = CardToken::new(token).map_err(|error| {
                    StepError::Fatal(PaymentServiceError::Invalid(error.to_string()))
                })?;
                let authorization = channel
                    .authorize(&AuthorizeRequest {
                        reference,
                        token,
                        amount,
                    })
                    .await;
                let authorization = match authorization {
                    Ok(authorization) => authorization,
                    Err(ChannelError::Refused { code, message }) => {
                        return Ok(Taken::Refused {
                            code: "card_declined".into(),
                            message: format!("the bank refused the card: {message} ({code})"),
                        })
                    }
                    Err(error) => return Err(StepError::Unknown(error.to_string())),
                };
                if let AuthorizationStatus::Declined { code, message } = authorization.status {
                    return Ok(Taken::Refused {
                        code: "card_declined".into(),
                        message: format!("the bank declined the card: {message} ({code})"),
                    });
                }
                let hold = Command::CreateHold(NewHold {
                    debit_account_id: accounts.channel_clearing,
                    credit_account_id: accounts.merchant_payable,
                    amount,
                    expires_at: hold_expiry(&record.payment)?,
                    description: format!("payment {} by card", record.id),
                    metadata: BTreeMap::from([
                        ("payment".to_string(), record.id.clone()),
                        (
                            "channel_id".to_string(),
                            authorization.channel_id.as_str().to_string(),
                        ),
                    ]),
                });
                match self.submit(&ledger_key, hold).await? {
                    Ok(Outcome::Hold(hold)) => Ok(Taken::Reserved {
                        reservation: Reservation::Card {
                            channel_id: authorization.channel_id.as_str().to_string(),
                            hold_id: hold.id,
                        },
                    }),
                    Ok(other) => Err(unexpected(&ledger_key, &other)),
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: ledger_key,
                        message: error.to_string(),
                    })),
                }
            }
            Action::Release { .. } => {
                let (channel_id, hold_id) = needs_reserved()?;
                self.void_card(channel, reference, parse_channel_id(&channel_id)?)
                    .await?;
                self.release_hold(&ledger_key, hold_id).await
            }
            Action::Capture { amount, .. } => {
                let (channel_id, hold_id) = needs_reserved()?;
                let channel_id = parse_channel_id(&channel_id)?;
                if amount.is_zero() {
                    self.void_card(channel, reference, channel_id).await?;
                    self.release_hold(&ledger_key, hold_id).await?;
                    return Ok(Taken::Captured { plan: None });
                }
                let captured = channel
                    .capture(&ChannelCapture {
                        reference,
                        channel_id,
                        amount: *amount,
                    })
                    .await;
                match captured {
                    Ok(_) => {}
                    Err(ChannelError::Refused { code, message }) => {
                        return Ok(Taken::Refused {
                            code: "card_capture_refused".into(),
                            message: format!("the bank refused the capture: {message} ({code})"),
                        })
                    }
                    Err(error) => return Err(StepError::Unknown(error.to_string())),
                }
                let post = Command::PostHold {
                    hold_id,
                    amount: Some(*amount),
                };
                match self.submit(&ledger_key, post).await? {
                    Ok(_) => {
                        let from = accounts.merchant_payable;
                        self.credit_merchant(record, action.leg(), *amount, None, from, key)
                            .await?;
                        Ok(Taken::Captured { plan: None })
                    }
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: ledger_key,
                        message: error.to_string(),
                    })),
                }
            }
            Action::Refund { amount, .. } => {
                let (channel_id, _) = needs_reserved()?;
                let refunded = channel
                    .refund(&ChannelRefundRequest {
                        reference,
                        channel_id: parse_channel_id(&channel_id)?,
                        amount: *amount,
                    })
                    .await;
                match refunded {
                    Ok(_) => {}
                    Err(ChannelError::Refused { code, message }) => {
                        return Ok(Taken::Refused {
                            code: "card_refund_refused".into(),
                            message: format!("the bank refused the refund: {message} ({code})"),
                        })
                    }
                    Err(error) => return Err(StepError::Unknown(error.to_string())),
                }
                let entry = self
                    .merchant_refund_entry(
                        record,
                        accounts.channel_clearing,
                        *amount,
                        None,
                        format!("refund of payment {} to the card", record.id),
                    )
                    .await?
                    .ok_or(StepError::Fatal(PaymentServiceError::Rules(
                        PaymentError::Internal("a refund to a balance or card moves money"),
                    )))?;
                match self.submit(&ledger_key, Command::PostEntry(entry)).await? {
                    Ok(_) => Ok(Taken::Refunded),
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: ledger_key,
                        message: error.to_string(),
                    })),
                }
            }
        }
    }

    /// Voids a card authorisation; one no longer pending at the bank (voided, captured or
    /// expired there) holds nothing, which is what a void wants.
    pub(super) async fn void_card(
        &self,
        channel: &Arc<dyn Channel>,
        reference: Reference,
        channel_id: ChannelId,
    ) -> Result<(), StepError> {
        match channel
            .void(&VoidRequest {
                reference,
                channel_id,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(ChannelError::Refused { code, .. })
                if code == refusal::AUTHORIZATION_NOT_PENDING =>
            {
                Ok(())
            }
            Err(ChannelError::Refused { code, message }) => {
                Err(StepError::Fatal(PaymentServiceError::ChannelRefused {
                    action: "a void",
                    code,
                    message,
                }))
            }
            Err(error) => Err(StepError::Unknown(error.to_string())),
        }
    }
}

/// The channel reference of a step: its key, which is short, visible ASCII.
fn channel_reference(key: &str) -> Result<Reference, StepError> {
    Reference::new(key).map_err(|error| {
        StepError::Fatal(PaymentServiceError::Invalid(format!(
            "channel reference {key:?}: {error}"
        )))
    })
}
