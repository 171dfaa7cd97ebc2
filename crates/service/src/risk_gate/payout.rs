//! Money out behind the risk gate: a merchant's payout (`POST /v1/payouts`), each item of a
//! payout batch (`POST /v1/payouts/batches`), a customer's wallet withdrawal to a card (a
//! payout to the customer), and each payout of the scheduled run after settlement (through
//! the API or `tally payouts run` and `tally daily` on the database) are `payout` events,
//! decided before any money moves.
//!
//! The payment service's own checks come first and move nothing (an unknown or suspended
//! merchant, a payout above the available balance, a card not the customer's): what cannot
//! happen is refused with its code and feeds no velocity feature. A held payout moves nothing
//! while it waits; completing it makes the payout then, under the request's own key, so its
//! balance is checked again (spent meanwhile, it ends refused with the payout's code) and a
//! retry answers the payout made. A delivery hold means nothing for money out: the payout
//! goes on, with the case open for the analyst.
//!
//! A scheduled payout is decided per merchant (event `scheduled-payout:…` from the date,
//! merchant and currency). Rejected, it is left out of the date's batch and the money stays
//! in the merchant's available balance; held, it is left out too and parked (review: the case
//! decides; step-up: the code sent to the merchant pays it out), completed as a payout of its
//! own under a key derived from the held operation. Deciding the run again decides the same
//! events, counted once.

use super::{event_id, GateError, Guarded, Passage, RiskGate, Subject};
use crate::caller::Caller;
use crate::consortium::member_client::EventIdentifiers;
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::payouts::{
    self, NewPayout, PayoutBatchView, PayoutRunView, PayoutServiceError, PayoutView,
};
use crate::payments::wallets::WalletOperationView;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tally_core::Amount;
use tally_risk::{Event, EventKind};
use tally_store::held_operations::HeldOperationRow;
use tally_store::StoreError;

/// Who a scheduled payout's held operation names as its caller: the payout run.
const SCHEDULED_RUN: &str = "scheduled-payout-run";

/// A gated payout's result: made (its view), or held (see the row's status).
#[derive(Debug, Clone)]
pub enum Paid<T> {
    Done(T),
    Held(Box<HeldOperationRow>),
}

/// A batch item the risk engine held: its place in the request and its held operation.
#[derive(Debug, Clone)]
pub struct HeldItem {
    pub index: usize,
    pub held: Box<HeldOperationRow>,
}

/// A gated batch: the batch of the items let through (none when every item was held), and
/// the items held.
#[derive(Debug, Clone)]
pub struct GatedBatch {
    pub batch: Option<PayoutBatchView>,
    pub held: Vec<HeldItem>,
}

/// A merchant payout under the scoped idempotency key `key`.
#[derive(Debug, Clone)]
pub struct MerchantPayoutRequest<'a> {
    pub key: &'a str,
    pub payout: NewPayout,
    pub subject: Subject,
    pub caller: &'a Caller,
}

/// A wallet withdrawal to card `card_token` under the scoped idempotency key `key`.
#[derive(Debug, Clone)]
pub struct WithdrawalRequest<'a> {
    pub key: &'a str,
    pub customer: &'a str,
    pub card_token: &'a str,
    pub amount: Amount,
    pub subject: Subject,
    pub caller: &'a Caller,
}

/// A held merchant payout (also a held scheduled one): what to pay when it is let through.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldPayout {
    merchant: String,
    amount: Amount,
}

/// A held withdrawal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldWithdrawal {
    customer: String,
    card_token: String,
    amount: Amount,
}

/// A withdrawal's request hash: its customer, card and amount.
fn withdrawal_hash(customer: &str, card_token: &str, amount: Amount) -> String {
    let body =
        json!({"customer": customer, "card_token": card_token, "amount": amount.to_string()});
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

fn corrupt(held: &HeldOperationRow, error: impl std::fmt::Display) -> GateError {
    StoreError::Corrupt(format!("held operation {}: {error}", held.id)).into()
}

/// A completed payout's stored answer, as its view.
fn view_of<T: DeserializeOwned>(id: &str, stored: Value) -> Result<T, GateError> {
    serde_json::from_value(stored)
        .map_err(|error| StoreError::Corrupt(format!("held operation {id}: {error}")).into())
}

/// Whether a payment failure leaves the held payout held (storage, or the bank's answer not
/// known yet: the next code or case move tries again) rather than ending it refused.
pub fn retryable(error: &GateError) -> bool {
    let payment = match error {
        GateError::Payment(error) => error,
        GateError::Payout(PayoutServiceError::Payment(error)) => error,
        _ => return false,
    };
    matches!(
        payment,
        PaymentServiceError::Store(_) | PaymentServiceError::InFlight { .. }
    )
}

impl RiskGate {
    fn payment_service(&self) -> Result<&PaymentService, GateError> {
        self.payments.as_deref().ok_or_else(|| {
            GateError::Invalid("the payment service is not running in this process".into())
        })
    }

    /// Pays a merchant out once the risk engine let it through (see the module).
    pub async fn pay_out_merchant(
        &self,
        request: MerchantPayoutRequest<'_>,
    ) -> Result<Paid<PayoutView>, GateError> {
        let payments = self.payment_service()?;
        let now = self.clock.now();
        let id = event_id("payout", &[request.key]);
        let hash = payouts::request_hash(std::slice::from_ref(&request.payout));
        if let Some(held) = self.database.held_operation(&id).await? {
            return self.payout_as_it_stands(held, &hash);
        }
        if payments.payout_batch_made(request.key).await? {
            let made = payments
                .create_payout(request.key, request.payout, now)
                .await?;
            return Ok(Paid::Done(made));
        }
        payments.check_payout(&request.payout).await?;
        let mut event = Event::new(
            id,
            EventKind::Payout,
            now,
            format!("merchant:{}", request.payout.merchant),
        );
        self.describe(&mut event, &request.subject)?;
        let identifiers = self
            .contact(&event.customer, &request.subject, None)
            .await?;
        event.merchant = Some(request.payout.merchant.clone());
        event.amount = Some(request.payout.amount);
        let operation = HeldPayout {
            merchant: request.payout.merchant.clone(),
            amount: request.payout.amount,
        };
        let passage = self
            .pass(Guarded {
                event,
                kind: "payout",
                key: request.key,
                request_hash: &hash,
                operation: json!(operation),
                caller: request.caller,
                identifiers,
            })
            .await?;
        match passage {
            Passage::Proceed(_) => Ok(Paid::Done(
                payments
                    .create_payout(request.key, request.payout, now)
                    .await?,
            )),
            Passage::Held(held) => Ok(Paid::Held(held)),
            Passage::Completed(stored) => Ok(Paid::Done(view_of(&id_of(&stored), stored)?)),
        }
    }

    /// Withdraws from a customer's wallet to a card once the risk engine let it through.
    pub async fn withdraw(
        &self,
        request: WithdrawalRequest<'_>,
    ) -> Result<Paid<WalletOperationView>, GateError> {
        let payments = self.payment_service()?;
        let now = self.clock.now();
        let id = event_id("withdrawal", &[request.key]);
        let hash = withdrawal_hash(request.customer, request.card_token, request.amount);
        if let Some(held) = self.database.held_operation(&id).await? {
            return self.payout_as_it_stands(held, &hash);
        }
        let withdraw = || {
            payments.withdraw(
                request.key,
                request.customer,
                request.card_token,
                request.amount,
                now,
            )
        };
        if payments.wallet_operation_made(request.key).await? {
            return Ok(Paid::Done(withdraw().await?));
        }
        let card = payments
            .check_withdrawal(request.customer, request.card_token, request.amount, now)
            .await?;
        let mut event = Event::new(id, EventKind::Payout, now, request.customer);
        self.describe(&mut event, &request.subject)?;
        let identifiers = self
            .contact(request.customer, &request.subject, None)
            .await?;
        event.card = card;
        event.amount = Some(request.amount);
        let operation = HeldWithdrawal {
            customer: request.customer.to_string(),
            card_token: request.card_token.to_string(),
            amount: request.amount,
        };
        let passage = self
            .pass(Guarded {
                event,
                kind: "withdrawal",
                key: request.key,
                request_hash: &hash,
                operation: json!(operation),
                caller: request.caller,
                identifiers,
            })
            .await?;
        match passage {
            Passage::Proceed(_) => Ok(Paid::Done(withdraw().await?)),
            Passage::Held(held) => Ok(Paid::Held(held)),
            Passage::Completed(stored) => Ok(Paid::Done(view_of(&id_of(&stored), stored)?)),
        }
    }

    /// A held payout or withdrawal found again under its event id.
    fn payout_as_it_stands<T: DeserializeOwned>(
        &self,
        held: HeldOperationRow,
        request_hash: &str,
    ) -> Result<Paid<T>, GateError> {
        let id = held.id.clone();
        match self.as_it_stands(held, request_hash)? {
            Passage::Held(held) => Ok(Paid::Held(held)),
            Passage::Completed(stored) => Ok(Paid::Done(view_of(&id, stored)?)),
            Passage::Proceed(_) => Err(GateError::HeldNotFound(id)),
        }
    }

    /// Makes a batch of merchant payouts under the scoped key `key`, each item decided by
    /// the risk engine first (event `payout-batch:` of the key and the item's place). The
    /// payment service's checks of the whole batch come first (any refusal refuses it, moving
    /// nothing); then every item is decided before anything is held or written: one rejected
    /// refuses the whole batch (`risk_rejected`), nothing moved and nothing parked. Items
    /// held (step-up or review) are left out of the batch and parked, each completed as a
    /// payout of its own (under `{key}:item:{index}`) once let through; the others make the
    /// batch. The same request again answers the same batch and the same held items.
    pub async fn pay_out_batch(
        &self,
        key: &str,
        payouts: Vec<NewPayout>,
        caller: &Caller,
    ) -> Result<GatedBatch, GateError> {
        let payments = self.payment_service()?;
        let now = self.clock.now();
        let item_key = |index: usize| format!("{key}:item:{index}");
        let item_event = |index: usize| event_id("payout-batch", &[key, &index.to_string()]);
        let item_hash = |payout: &NewPayout| payouts::request_hash(std::slice::from_ref(payout));
        if payments.payout_batch_made(key).await?
            || self.batch_items_held(&payouts, &item_event).await?
        {
            // Decided before: the held items are those parked, the batch the rest.
            let mut held = Vec::new();
            let mut released = Vec::new();
            for (index, payout) in payouts.into_iter().enumerate() {
                match self.database.held_operation(&item_event(index)).await? {
                    Some(row) => {
                        if row.request_hash != item_hash(&payout) {
                            return Err(GateError::KeyReused(key.to_string()));
                        }
                        held.push(HeldItem {
                            index,
                            held: Box::new(row),
                        })
                    }
                    None => released.push(payout),
                }
            }
            let batch = if released.is_empty() {
                None
            } else {
                Some(payments.create_payout_batch(key, released, now).await?)
            };
            return Ok(GatedBatch { batch, held });
        }
        payments.check_payout_batch(&payouts).await?;
        let mut verdicts = Vec::with_capacity(payouts.len());
        for (index, payout) in payouts.iter().enumerate() {
            let mut event = Event::new(
                item_event(index),
                EventKind::Payout,
                now,
                format!("merchant:{}", payout.merchant),
            );
            event.merchant = Some(payout.merchant.clone());
            event.amount = Some(payout.amount);
            // A merchant's payout has no delivery or phone to look up: the device only.
            let verdict = self.decide(&event, &EventIdentifiers::default()).await?;
            if verdict.action == "reject" {
                return Err(GateError::Rejected {
                    event_id: verdict.event_id,
                    reasons: verdict.reasons,
                });
            }
            verdicts.push((event, verdict));
        }
        let mut held = Vec::new();
        let mut released = Vec::new();
        for (index, ((event, verdict), payout)) in verdicts.into_iter().zip(payouts).enumerate() {
            if verdict.action != "step_up" && verdict.action != "review" {
                released.push(payout);
                continue;
            }
            let operation = HeldPayout {
                merchant: payout.merchant.clone(),
                amount: payout.amount,
            };
            let hash = item_hash(&payout);
            let key = item_key(index);
            let row = self
                .hold(
                    &Guarded {
                        event,
                        kind: "payout",
                        key: &key,
                        request_hash: &hash,
                        operation: json!(operation),
                        caller,
                        identifiers: EventIdentifiers::default(),
                    },
                    &verdict,
                )
                .await?;
            held.push(HeldItem {
                index,
                held: Box::new(row),
            });
        }
        let batch = if released.is_empty() {
            None
        } else {
            Some(payments.create_payout_batch(key, released, now).await?)
        };
        Ok(GatedBatch { batch, held })
    }

    /// Whether any item of a batch was parked before (the batch was decided, even if every
    /// item was held and no batch was made).
    async fn batch_items_held(
        &self,
        payouts: &[NewPayout],
        item_event: &impl Fn(usize) -> String,
    ) -> Result<bool, GateError> {
        for index in 0..payouts.len() {
            if self
                .database
                .held_operation(&item_event(index))
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Runs the scheduled payouts of `date`, each decided by the risk engine first (see the
    /// module): the rejected and the held ones are left out of the batches.
    pub async fn run_scheduled_payouts(
        &self,
        date: Date,
        now: Timestamp,
    ) -> Result<PayoutRunView, GateError> {
        let payments = self.payment_service()?;
        let caller = Caller {
            key_id: SCHEDULED_RUN.into(),
            name: SCHEDULED_RUN.into(),
        };
        let mut released = Vec::new();
        for payout in payments.scheduled_payouts_due(date).await? {
            let date_text = date.to_string();
            let currency = payout.amount.currency();
            let parts = [
                date_text.as_str(),
                payout.merchant.as_str(),
                currency.code(),
            ];
            let id = event_id("scheduled-payout", &parts);
            let key = format!("{id}:payout");
            let hash = payouts::request_hash(std::slice::from_ref(&payout));
            let mut event = Event::new(
                id.clone(),
                EventKind::Payout,
                now,
                format!("merchant:{}", payout.merchant),
            );
            event.merchant = Some(payout.merchant.clone());
            event.amount = Some(payout.amount);
            let operation = HeldPayout {
                merchant: payout.merchant.clone(),
                amount: payout.amount,
            };
            let passage = self
                .pass(Guarded {
                    event,
                    kind: "scheduled_payout",
                    key: &key,
                    request_hash: &hash,
                    operation: json!(operation),
                    caller: &caller,
                    identifiers: EventIdentifiers::default(),
                })
                .await;
            match passage {
                Ok(Passage::Proceed(_)) => released.push(payout),
                Ok(Passage::Held(held)) => {
                    tracing::info!(merchant = %payout.merchant, held = %held.id, action = %held.action, "scheduled payout held by risk control");
                }
                Ok(Passage::Completed(_)) => {}
                Err(GateError::Rejected { event_id, reasons }) => {
                    tracing::warn!(merchant = %payout.merchant, event = %event_id, reasons = ?reasons, "scheduled payout rejected by risk control; the balance stays available");
                }
                Err(GateError::Ended { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(payments.make_scheduled_payouts(date, released, now).await?)
    }

    /// Completes a held merchant payout (or a held scheduled one): the payout is made now,
    /// under the held request's key, its balance checked again.
    pub(super) async fn complete_payout(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Result<Value, GateError> {
        if let Some(done) = self.complete_credit_balance_payout(held, now).await {
            return done;
        }
        let payments = self.payment_service()?;
        let operation: HeldPayout =
            serde_json::from_str(&held.operation).map_err(|error| corrupt(held, error))?;
        let payout = NewPayout {
            merchant: operation.merchant,
            amount: operation.amount,
        };
        let made = payments
            .create_payout(&held.idempotency_key, payout, now)
            .await?;
        Ok(json!(made))
    }

    /// Completes a held withdrawal: the wallet operation is made now, under the held
    /// request's key (pending while the bank pays out, as any withdrawal).
    pub(super) async fn complete_withdrawal(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Result<Value, GateError> {
        let payments = self.payment_service()?;
        let operation: HeldWithdrawal =
            serde_json::from_str(&held.operation).map_err(|error| corrupt(held, error))?;
        let made = payments
            .withdraw(
                &held.idempotency_key,
                &operation.customer,
                &operation.card_token,
                operation.amount,
                now,
            )
            .await?;
        Ok(json!(made))
    }
}

/// The id a stored payout answer names (for the message of a corrupt one).
fn id_of(stored: &Value) -> String {
    stored["id"].as_str().unwrap_or_default().to_string()
}
