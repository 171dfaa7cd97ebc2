//! The channel's notifications received: verified, recorded once by event id, and applied
//! by resolving the step they are about exactly as recovery does.
//!
//! A notification says the bank did something (authorised, captured, refunded, paid out)
//! under one of Tally's references. Tally does not take the bank's word from the body: the
//! step that reference belongs to is taken again under the same reference, which the
//! channel answers with what it did, and applied once through the payment's intent log
//! (`checkout/intent_log.rs`) or the wallet operation's steps (`wallets.rs`) — the resolution recovery
//! does. So a notification only makes a step left in flight finish sooner; a duplicate, a
//! late one, or two in the wrong order (a capture before its authorisation) cannot move a
//! payment to any state but the one the channel's own records give.
//!
//! Each event id is recorded before it is applied: a repeated delivery answers at once and
//! changes nothing. The record is not in the transaction of the effect (the effect reaches
//! the channel and the ledger), and need not be: applying is idempotent, and a crash
//! between the record and the effect leaves the step pending, for recovery.

use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use jiff::Timestamp;
use serde::Serialize;
use std::time::Duration;
use tally_channel::{verify_notification, Notification, NotificationError, NotificationType};
use tally_store::payments::NewChannelNotification;
use tally_store::StoreError;
use utoipa::ToSchema;

/// How far a notification's signing time may be from Tally's clock: older, it is a replay.
pub const NOTIFICATION_TOLERANCE: Duration = Duration::from_secs(300);

/// Longest event id stored, in bytes.
pub const EVENT_ID_LENGTH_MAX: usize = 128;

/// What receiving a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// The step it is about was in flight and is resolved now.
    Applied,
    /// The step it is about was resolved already (by the answer, a retry or recovery).
    AlreadyApplied,
    /// The step it is about is still in flight (the channel did not answer again); recovery
    /// finishes it.
    InFlight,
    /// No payment step or wallet operation has this reference; kept, nothing changed.
    UnknownReference,
}

impl NotificationOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            NotificationOutcome::Applied => "applied",
            NotificationOutcome::AlreadyApplied => "already_applied",
            NotificationOutcome::InFlight => "in_flight",
            NotificationOutcome::UnknownReference => "unknown_reference",
        }
    }
}

/// The answer to the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotificationReceipt {
    /// True when this event id was received before: nothing was done this time.
    pub duplicate: bool,
    pub event_id: String,
    /// What the first delivery did; `null` for a duplicate.
    pub outcome: Option<NotificationOutcome>,
}

/// Why a notification was refused (the channel sends it again, or gives up).
#[derive(Debug, thiserror::Error)]
pub enum NotificationRefusal {
    #[error("no channel secret is configured ([payments] channel_secret): notifications cannot be verified")]
    NotConfigured,
    #[error("missing Tally-Channel-Signature header")]
    MissingSignature,
    #[error("{0}")]
    Signature(NotificationError),
    #[error("{0}")]
    Malformed(String),
    /// A dispute notification the dispute rules refuse (above the card leg's capture,
    /// decided the other way already); nothing was stored.
    #[error(transparent)]
    Dispute(tally_payments::DisputeError),
    /// A dispute notification that could not be applied (the ledger refused it); sent
    /// again, it is tried again.
    #[error("{0}")]
    NotApplied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NotificationRefusal {
    /// A stable code; never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            NotificationRefusal::NotConfigured => "notifications_not_configured",
            NotificationRefusal::MissingSignature | NotificationRefusal::Signature(_) => {
                "invalid_notification_signature"
            }
            NotificationRefusal::Malformed(_) => "invalid_notification",
            NotificationRefusal::Dispute(error) => error.code(),
            NotificationRefusal::NotApplied(_) => "dispute_not_applied",
            NotificationRefusal::Store(_) => "storage_unavailable",
        }
    }
}

/// What a reference names: a payment's step, or a wallet operation.
enum Target<'a> {
    PaymentStep { payment: &'a str, sequence: i64 },
    WalletOperation { id: &'a str },
}

/// A payment step's reference is `payments:{payment}:{sequence}` (see `checkout/intent_log.rs`); a
/// wallet operation's is `{operation}:{step}` (see `wallets.rs`).
fn target(reference: &str) -> Option<Target<'_>> {
    if let Some(rest) = reference.strip_prefix("payments:") {
        let (payment, sequence) = rest.rsplit_once(':')?;
        let sequence = sequence.parse().ok()?;
        return Some(Target::PaymentStep { payment, sequence });
    }
    let (id, _step) = reference.split_once(':')?;
    id.starts_with("wop_")
        .then_some(Target::WalletOperation { id })
}

impl PaymentService {
    /// Receives a notification from the channel: `signature` is its
    /// `Tally-Channel-Signature` header, `body` its bytes as sent.
    pub async fn receive_notification(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<NotificationReceipt, NotificationRefusal> {
        let secret = self
            .channel_secret()
            .ok_or(NotificationRefusal::NotConfigured)?;
        let signature = signature.ok_or(NotificationRefusal::MissingSignature)?;
        let notification = verify_notification(
            secret.as_bytes(),
            signature,
            body,
            now,
            NOTIFICATION_TOLERANCE,
        )
        .map_err(|error| match error {
            NotificationError::MalformedBody(reason) => {
                NotificationRefusal::Malformed(format!("malformed notification body: {reason}"))
            }
            other => NotificationRefusal::Signature(other),
        })?;
        let event_id = notification.event_id.as_str();
        if event_id.len() > EVENT_ID_LENGTH_MAX
            || !event_id
                .chars()
                .all(|character| character.is_ascii_graphic())
        {
            return Err(NotificationRefusal::Malformed(format!(
                "event_id must be 1 to {EVENT_ID_LENGTH_MAX} visible ASCII characters"
            )));
        }
        if notification.dispute.is_some()
            || matches!(
                notification.kind,
                NotificationType::DisputeOpened
                    | NotificationType::DisputeWon
                    | NotificationType::DisputeLost
            )
        {
            return self.receive_dispute_notification(&notification, now).await;
        }
        let recorded = self
            .database()
            .insert_channel_notification(NewChannelNotification {
                event_id,
                kind: notification.kind.as_str(),
                reference: notification.reference.as_str(),
                channel_id: notification.channel_id.as_str(),
                amount_minor: notification.amount.minor(),
                currency: notification.amount.currency().code(),
                occurred_at: notification.occurred_at,
                received_at: now,
            })
            .await?;
        if !recorded {
            return Ok(NotificationReceipt {
                duplicate: true,
                event_id: event_id.to_string(),
                outcome: None,
            });
        }
        let outcome = self.apply_notification(&notification, now).await?;
        self.database()
            .resolve_channel_notification(event_id, outcome.as_str(), now)
            .await?;
        tracing::info!(
            event_id,
            kind = notification.kind.as_str(),
            reference = notification.reference.as_str(),
            outcome = outcome.as_str(),
            "channel notification received"
        );
        Ok(NotificationReceipt {
            duplicate: false,
            event_id: event_id.to_string(),
            outcome: Some(outcome),
        })
    }

    async fn apply_notification(
        &self,
        notification: &Notification,
        now: Timestamp,
    ) -> Result<NotificationOutcome, StoreError> {
        match target(notification.reference.as_str()) {
            Some(Target::PaymentStep { payment, sequence }) => {
                self.resolve_step_of(payment, sequence, now).await
            }
            Some(Target::WalletOperation { id }) => self.resolve_wallet_operation(id, now).await,
            None => Ok(NotificationOutcome::UnknownReference),
        }
    }

    /// Resolves step `sequence` of `payment` when it is pending, as recovery would.
    async fn resolve_step_of(
        &self,
        payment: &str,
        sequence: i64,
        now: Timestamp,
    ) -> Result<NotificationOutcome, StoreError> {
        let pending = |steps: &[tally_store::payments::PaymentStepRow]| {
            steps
                .iter()
                .find(|step| step.sequence == sequence)
                .map(|step| step.status == "pending")
        };
        match pending(&self.database().payment_steps(payment).await?) {
            None => return Ok(NotificationOutcome::UnknownReference),
            Some(false) => return Ok(NotificationOutcome::AlreadyApplied),
            Some(true) => {}
        }
        match self.settle_payment(payment, now).await {
            Ok(()) | Err(PaymentServiceError::InFlight { .. }) => {}
            // A payment the step's resolution declined (a card refused) is resolved too.
            Err(PaymentServiceError::Declined { .. }) => {}
            Err(PaymentServiceError::Store(error)) => return Err(error),
            Err(error) => {
                tracing::warn!(payment, code = error.code(), %error, "a notified step could not be resolved; recovery tries again");
            }
        }
        Ok(
            match pending(&self.database().payment_steps(payment).await?) {
                Some(false) => NotificationOutcome::Applied,
                _ => NotificationOutcome::InFlight,
            },
        )
    }

    /// Takes the remaining steps of wallet operation `id` when it is pending.
    async fn resolve_wallet_operation(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<NotificationOutcome, StoreError> {
        let status = |state: &str| {
            serde_json::from_str::<serde_json::Value>(state)
                .ok()
                .and_then(|state| state["status"].as_str().map(str::to_string))
        };
        let Some(stored) = self.database().wallet_operation(id).await? else {
            return Ok(NotificationOutcome::UnknownReference);
        };
        if status(&stored.state).as_deref() != Some("pending") {
            return Ok(NotificationOutcome::AlreadyApplied);
        }
        match self.continue_wallet_operation(id, now).await {
            Ok(view) if view.status == "pending" => Ok(NotificationOutcome::InFlight),
            Ok(_) | Err(PaymentServiceError::WalletDeclined { .. }) => {
                Ok(NotificationOutcome::Applied)
            }
            Err(PaymentServiceError::Store(error)) => Err(error),
            Err(error) => {
                tracing::warn!(operation = id, code = error.code(), %error, "a notified wallet operation is still in flight");
                Ok(NotificationOutcome::InFlight)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_payment_step_or_a_wallet_operation() {
        assert!(matches!(
            target("payments:pay_0192:3"),
            Some(Target::PaymentStep {
                payment: "pay_0192",
                sequence: 3
            })
        ));
        assert!(matches!(
            target("wop_ab12:payout"),
            Some(Target::WalletOperation { id: "wop_ab12" })
        ));
        assert!(target("payments:pay_0192:x").is_none());
        assert!(target("payments:pay_0192").is_none());
        assert!(target("order-1:capture").is_none());
        assert!(target("").is_none());
    }
}
