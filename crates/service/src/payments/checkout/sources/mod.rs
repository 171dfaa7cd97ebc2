//! How a step acts on a funding source: the wallet and the vault (ledger holds), the
//! credit line (the credit service's operations) and a card (the channel, mirrored in the
//! ledger). Each acts once however often it is taken under the same key.

mod balance;
mod card;
mod credit_line;
mod credit_terms;

use super::{PaymentService, StepError};
use crate::intent::{submit, Unsent};
use crate::payments::accounts::{Balance, PAYMENTS_SERVICE};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{Action, PaymentRecord, Taken};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount};
use tally_ledger::{Command, LedgerError, NewEntry, NewLeg, Outcome, Side};
use tally_payments::payment::AUTHORIZATION_VALIDITY;
use tally_payments::{Payment, PaymentError, Source};
use tally_store::StoreError;

impl PaymentService {
    /// Takes one step under `key`: acts once however often it is taken.
    pub(super) async fn take(
        &self,
        record: &PaymentRecord,
        key: &str,
        action: &Action,
        now: Timestamp,
    ) -> Result<Taken, StepError> {
        let leg_index = action.leg();
        let leg = record
            .payment
            .legs
            .get(leg_index)
            .ok_or(PaymentServiceError::Rules(PaymentError::LegNotFound(
                leg_index,
            )))?;
        let reservation = record.reservations.get(leg_index).cloned().flatten();
        match &leg.source {
            Source::Wallet | Source::Vault => {
                let balance = if matches!(leg.source, Source::Wallet) {
                    Balance::Wallet
                } else {
                    Balance::Vault
                };
                self.take_on_balance(record, balance, leg.amount, reservation, key, action)
                    .await
            }
            Source::CreditLine { account, term } => {
                self.take_on_credit(
                    record,
                    *account,
                    *term,
                    leg.amount,
                    reservation,
                    key,
                    action,
                    now,
                )
                .await
            }
            Source::Card { token } => {
                self.take_on_card(record, token, leg.amount, reservation, key, action)
                    .await
            }
        }
    }

    /// Sends a ledger command as the payment service. `Ok(Err(..))` is the ledger's refusal.
    pub(crate) async fn submit(
        &self,
        key: &str,
        command: Command,
    ) -> Result<Result<Outcome, LedgerError>, StepError> {
        submit(&self.writer, PAYMENTS_SERVICE, key, command)
            .await
            .map_err(|unsent| match unsent {
                Unsent::KeyTaken(key) => StepError::Fatal(key_taken(&key)),
                Unsent::Unavailable(reason) => StepError::Unknown(reason),
            })
    }
}

/// A ledger key the payment service needs holds another command: no retry can mend it.
pub(crate) fn key_taken(key: &str) -> PaymentServiceError {
    PaymentServiceError::LedgerConflict(format!(
        "the ledger idempotency key {key} is taken by another command"
    ))
}

/// When the ledger drops a payment's hold by itself: a day after the latest moment the
/// payment could still be captured, so that the payment's own expiry always comes first.
fn hold_expiry(payment: &Payment) -> Result<Timestamp, StepError> {
    payment
        .expires_at
        .checked_add(AUTHORIZATION_VALIDITY)
        .and_then(|at| at.checked_add(SignedDuration::from_hours(24)))
        .map_err(|error| StepError::Fatal(PaymentServiceError::Invalid(error.to_string())))
}

fn unexpected(key: &str, outcome: &Outcome) -> StepError {
    StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
        "the ledger answered {key} with {outcome:?}"
    ))))
}

/// A two-leg entry moving `amount` from `debit` to `credit`.
pub(crate) fn transfer(
    debit: AccountId,
    credit: AccountId,
    amount: Amount,
    description: String,
    payment: &str,
) -> NewEntry {
    NewEntry {
        description,
        metadata: BTreeMap::from([("payment".to_string(), payment.to_string())]),
        legs: vec![
            NewLeg {
                account_id: debit,
                side: Side::Debit,
                amount,
            },
            NewLeg {
                account_id: credit,
                side: Side::Credit,
                amount,
            },
        ],
    }
}
