//! Disputes (chargebacks) on payments' card legs: the channel's `dispute.*` notifications
//! open and decide them, the merchant answers with evidence or accepts; each step moves the
//! merchant's money in the ledger exactly once.
//!
//! - **Opening** (`dispute.opened`, or a decision that arrives first: its body carries the
//!   same terms): the dispute names the capture's reference; its payment's card leg must
//!   have at least the amount left (captured, less refunded, less other disputes not won),
//!   or the notification is refused `422 dispute_exceeds_captured` and nothing is stored.
//!   The rules (`tally_payments::dispute`) split the amount over the merchant's pending,
//!   available and reserve balances, in that order; the row with the split (and the lower
//!   reserve rows, when the reserve gives) is stored first, then one entry under
//!   `payments-dispute:{id}:opening` debits those balances and credits
//!   `payments-channel-clearing-{CUR}` (the bank owes Tally less: it took the money back).
//! - **Decision**: `dispute.won` posts `payments-dispute:{id}:outcome`, the amount back from
//!   the clearing account to the merchant's pending balance; `dispute.lost` posts the
//!   channel's fee from the merchant's pending balance to the clearing account (nothing
//!   when the fee is zero). Final: the same decision again changes nothing, the other one
//!   is refused `409 dispute_decided_other_way`.
//! - **Redelivery**: a dispute is one row per channel dispute id and each entry has its own
//!   idempotency key, and a flag says which are posted; so a dispute notification is applied
//!   again even when its event id was seen (a crash between recording the event and
//!   posting would otherwise leave the money unmoved) and answers `duplicate` then.
//!
//! - **Settlement**: an opening holds the merchants' reserves lock
//!   (`tally_store::funding_lock`, across processes) from reading the balances to posting,
//!   as a settlement run holds it for each chunk, so neither reads what the other is moving.
//!
//! Every entry carries `merchant_movement = dispute`: the settlement run counts what such
//! entries move on the pending account as the statement's `disputes`.

use crate::credit::views::AmountView;
use crate::payments::accounts::PAYMENTS_SERVICE;
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::merchant_entries::{MOVEMENT, MOVEMENT_DISPUTE};
use crate::payments::notifications::{
    NotificationOutcome, NotificationReceipt, NotificationRefusal,
};
use crate::payments::record::PaymentRecord;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_channel::{DisputeDetails, Notification, NotificationType};
use tally_core::{AccountId, Amount, Currency};
use tally_ledger::{Command, NewEntry, NewLeg, Side};
use tally_payments::dispute::{self, Decision, REASON_CODE_LENGTH_MAX};
use tally_payments::{DisputeDebit, DisputeError, DisputeStatus};
use tally_store::disputes::DisputeRow;
use tally_store::payments::NewChannelNotification;
use tally_store::{StoreError, WriteError};
use utoipa::ToSchema;

/// Most disputes one list answers.
pub const DISPUTES_PER_PAGE_MAX: i64 = 500;

/// What a dispute's opening took from each of the merchant's balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisputeTakenFrom {
    #[schema(value_type = AmountView)]
    pub available: Amount,
    #[schema(value_type = AmountView)]
    pub pending: Amount,
    #[schema(value_type = AmountView)]
    pub reserve: Amount,
}

/// A dispute as shown. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisputeView {
    /// Disputed: taken from the merchant when the dispute opened.
    #[schema(value_type = AmountView)]
    pub amount: Amount,
    /// Tally's reference of the disputed capture at the channel.
    pub capture_reference: String,
    /// The channel's id of the dispute.
    pub channel_dispute_id: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    /// The merchant's evidence (a text or a document reference), once submitted.
    pub evidence: Option<String>,
    /// Evidence is taken before this moment.
    #[schema(value_type = String, format = DateTime)]
    pub evidence_due_by: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub evidence_submitted_at: Option<Timestamp>,
    /// The channel's fee charged to the merchant on a lost dispute; zero otherwise.
    #[schema(value_type = AmountView)]
    pub fee: Amount,
    pub id: String,
    pub merchant_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    pub payment_id: String,
    /// The card scheme's reason code, as the channel sent it.
    pub reason_code: String,
    /// `opened`, `evidence_submitted`, `accepted`, `won` or `lost`.
    pub status: String,
    pub taken_from: DisputeTakenFrom,
}

/// A page of disputes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisputeList {
    pub disputes: Vec<DisputeView>,
}

fn corrupt(what: String) -> PaymentServiceError {
    StoreError::Corrupt(what).into()
}

fn timestamp(micros: i64) -> Result<Timestamp, PaymentServiceError> {
    Timestamp::from_microsecond(micros).map_err(|error| corrupt(format!("stored time: {error}")))
}

fn currency_of(row: &DisputeRow) -> Result<Currency, PaymentServiceError> {
    Currency::from_code(&row.currency)
        .map_err(|error| corrupt(format!("dispute {} currency: {error}", row.id)))
}

fn status_of(row: &DisputeRow) -> Result<DisputeStatus, PaymentServiceError> {
    DisputeStatus::parse(&row.status)
        .ok_or_else(|| corrupt(format!("dispute {} status {:?}", row.id, row.status)))
}

fn view(row: &DisputeRow) -> Result<DisputeView, PaymentServiceError> {
    let currency = currency_of(row)?;
    let amount = |minor| Amount::new(minor, currency);
    Ok(DisputeView {
        amount: amount(row.amount_minor),
        capture_reference: row.capture_reference.clone(),
        channel_dispute_id: row.channel_id.clone(),
        decided_at: row.decided_at.map(timestamp).transpose()?,
        evidence: row.evidence.clone(),
        evidence_due_by: timestamp(row.evidence_due_by)?,
        evidence_submitted_at: row.evidence_submitted_at.map(timestamp).transpose()?,
        fee: amount(row.fee_minor),
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        opened_at: timestamp(row.opened_at)?,
        payment_id: row.payment_id.clone(),
        reason_code: row.reason_code.clone(),
        status: row.status.clone(),
        taken_from: DisputeTakenFrom {
            available: amount(row.from_available_minor),
            pending: amount(row.from_pending_minor),
            reserve: amount(row.from_reserve_minor),
        },
    })
}

/// The payment a capture's reference (`payments:{payment}:{step}`) belongs to.
fn payment_of(reference: &str) -> Option<&str> {
    let rest = reference.strip_prefix("payments:")?;
    let (payment, step) = rest.rsplit_once(':')?;
    step.parse::<i64>().ok()?;
    Some(payment)
}

/// The part of the stored payment state this module reads.
#[derive(Deserialize)]
struct StoredRecord {
    record: PaymentRecord,
}

fn leg(account_id: AccountId, side: Side, amount: Amount) -> Option<NewLeg> {
    amount.is_positive().then_some(NewLeg {
        account_id,
        side,
        amount,
    })
}

fn refused(error: PaymentServiceError) -> NotificationRefusal {
    match error {
        PaymentServiceError::Store(error) => NotificationRefusal::Store(error),
        PaymentServiceError::Dispute(error) => NotificationRefusal::Dispute(error),
        PaymentServiceError::Invalid(message) => NotificationRefusal::Malformed(message),
        other => NotificationRefusal::NotApplied(other.to_string()),
    }
}

impl PaymentService {
    /// Receives a verified `dispute.*` notification (see the module's docs).
    pub(crate) async fn receive_dispute_notification(
        &self,
        notification: &Notification,
        now: Timestamp,
    ) -> Result<NotificationReceipt, NotificationRefusal> {
        let outcome = self
            .apply_dispute_notification(notification, now)
            .await
            .map_err(refused)?;
        let event_id = notification.event_id.as_str();
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
        if recorded {
            self.database()
                .resolve_channel_notification(event_id, outcome.as_str(), now)
                .await?;
        }
        tracing::info!(
            event_id,
            kind = notification.kind.as_str(),
            dispute = notification.channel_id.as_str(),
            outcome = outcome.as_str(),
            duplicate = !recorded,
            "dispute notification received"
        );
        Ok(NotificationReceipt {
            duplicate: !recorded,
            event_id: event_id.to_string(),
            outcome: recorded.then_some(outcome),
        })
    }

    async fn apply_dispute_notification(
        &self,
        notification: &Notification,
        now: Timestamp,
    ) -> Result<NotificationOutcome, PaymentServiceError> {
        let details = notification.dispute.as_ref().ok_or_else(|| {
            PaymentServiceError::Invalid(format!(
                "a {} notification must carry its dispute terms",
                notification.kind.as_str()
            ))
        })?;
        let won = match notification.kind {
            NotificationType::DisputeOpened => None,
            NotificationType::DisputeWon => Some(true),
            NotificationType::DisputeLost => Some(false),
            _ => {
                return Err(PaymentServiceError::Invalid(format!(
                    "{} is not a dispute notification",
                    notification.kind.as_str()
                )))
            }
        };
        let _guard = self.lock(notification.channel_id.as_str()).await;
        // A settlement run's chunk (in any process) waits until the split is read, the
        // reserve rows lowered and the opening posted, and the other way round.
        let reserves = self.database().lock_merchant_reserves().await?;
        let Some((row, opened_now)) = self.open_dispute(notification, details, now).await? else {
            return Ok(NotificationOutcome::UnknownReference);
        };
        let (row, posted_now) = self.post_opening(row).await?;
        reserves.release().await?;
        let mut applied = opened_now || posted_now;
        if let Some(won) = won {
            if details.fee.is_negative() {
                return Err(PaymentServiceError::Invalid(
                    "a dispute fee must not be negative".into(),
                ));
            }
            applied |= self.decide(row, won, details.fee, now).await?;
        }
        Ok(if applied {
            NotificationOutcome::Applied
        } else {
            NotificationOutcome::AlreadyApplied
        })
    }

    /// The dispute of this notification, opened (stored, entry not yet posted) if it is new:
    /// with whether it was opened now. `None` when its reference names no payment with a
    /// card leg.
    async fn open_dispute(
        &self,
        notification: &Notification,
        details: &DisputeDetails,
        now: Timestamp,
    ) -> Result<Option<(DisputeRow, bool)>, PaymentServiceError> {
        let channel_id = notification.channel_id.as_str();
        if let Some(row) = self.database().dispute_by_channel_id(channel_id).await? {
            return Ok(Some((row, false)));
        }
        let Some(payment_id) = payment_of(notification.reference.as_str()) else {
            return Ok(None);
        };
        let Some(stored) = self.database().payment(payment_id).await? else {
            return Ok(None);
        };
        let stored: StoredRecord = serde_json::from_str(&stored.state)
            .map_err(|error| corrupt(format!("payment {payment_id}: {error}")))?;
        let payment = &stored.record.payment;
        let Some(card) = payment.legs.iter().find(|leg| leg.source.is_card()) else {
            return Ok(None);
        };
        let amount = notification.amount;
        let currency = payment.amount.currency();
        if amount.currency() != currency {
            return Err(PaymentServiceError::Invalid(format!(
                "the dispute is in {}, payment {payment_id} in {currency}",
                amount.currency()
            )));
        }
        let code = &details.reason_code;
        if code.is_empty()
            || code.len() > REASON_CODE_LENGTH_MAX
            || !code.chars().all(|character| character.is_ascii_graphic())
        {
            return Err(PaymentServiceError::Invalid(format!(
                "reason_code must be 1 to {REASON_CODE_LENGTH_MAX} visible ASCII characters"
            )));
        }
        let mut disputed = Amount::zero(currency);
        for other in self.database().disputes_of_payment(payment_id).await? {
            if other.status != DisputeStatus::Won.as_str() {
                disputed = disputed
                    .checked_add(Amount::new(other.amount_minor, currency))
                    .map_err(DisputeError::from)?;
            }
        }
        dispute::check_amount(amount, card.captured, card.refunded, disputed)?;
        let merchant_id = &payment.merchant_id;
        let accounts = self
            .accounts()
            .merchant(self.database(), self.writer(), merchant_id, currency)
            .await?;
        let debit = DisputeDebit::take(
            amount,
            self.liability(accounts.pending, currency).await?,
            self.liability(accounts.available, currency).await?,
            self.liability(accounts.reserve, currency).await?,
        )?;
        let row = DisputeRow {
            id: format!("dsp_{}", uuid::Uuid::now_v7().simple()),
            channel_id: channel_id.to_string(),
            payment_id: payment_id.to_string(),
            merchant_id: merchant_id.clone(),
            capture_reference: notification.reference.as_str().to_string(),
            currency: currency.code().to_string(),
            amount_minor: amount.minor(),
            reason_code: code.clone(),
            evidence_due_by: details.evidence_due_by.as_microsecond(),
            status: DisputeStatus::Opened.as_str().to_string(),
            from_pending_minor: debit.pending.minor(),
            from_available_minor: debit.available.minor(),
            from_reserve_minor: debit.reserve.minor(),
            opening_posted: false,
            fee_minor: 0,
            outcome_posted: false,
            evidence: None,
            evidence_submitted_at: None,
            opened_at: now.as_microsecond(),
            decided_at: None,
            version: 1,
        };
        let inserted = self.database().insert_dispute(&row).await?;
        let row = match inserted {
            true => row,
            // Another process opened it meanwhile: its split is the one that counts.
            false => self
                .database()
                .dispute_by_channel_id(channel_id)
                .await?
                .ok_or_else(|| corrupt(format!("dispute {channel_id} vanished")))?,
        };
        Ok(Some((row, inserted)))
    }

    /// A liability's posted balance (credits less debits).
    async fn liability(
        &self,
        account: AccountId,
        currency: Currency,
    ) -> Result<Amount, PaymentServiceError> {
        let state = self
            .database()
            .account(account)
            .await?
            .ok_or_else(|| corrupt(format!("ledger account {account} is missing")))?;
        let balance =
            i128::from(state.balance.credits_posted) - i128::from(state.balance.debits_posted);
        let minor = i64::try_from(balance).map_err(|_| corrupt("a balance overflows".into()))?;
        Ok(Amount::new(minor, currency))
    }

    /// Posts `legs` under `key`, the ledger's idempotency making a repetition harmless.
    async fn post(
        &self,
        row: &DisputeRow,
        key: String,
        description: String,
        legs: Vec<NewLeg>,
    ) -> Result<(), PaymentServiceError> {
        if legs.is_empty() {
            return Ok(());
        }
        let entry = NewEntry {
            description,
            metadata: BTreeMap::from([
                ("dispute".to_string(), row.id.clone()),
                // The bank's dispute id: its settlement file's rows of the dispute are
                // under it (reconciliation matches them, `recon::ledger_side`).
                ("channel_dispute".to_string(), row.channel_id.clone()),
                ("merchant".to_string(), row.merchant_id.clone()),
                ("payment".to_string(), row.payment_id.clone()),
                (MOVEMENT.to_string(), MOVEMENT_DISPUTE.to_string()),
            ]),
            legs,
        };
        match self
            .writer()
            .submit_as(PAYMENTS_SERVICE, key.clone(), Command::PostEntry(entry))
            .await
        {
            Ok(_) => Ok(()),
            Err(WriteError::Ledger(error)) => Err(PaymentServiceError::LedgerRefused {
                key,
                message: error.to_string(),
            }),
            Err(WriteError::KeyReused(key)) => Err(PaymentServiceError::LedgerConflict(format!(
                "the dispute key {key} is taken by another entry"
            ))),
            Err(error) => Err(corrupt(error.to_string())),
        }
    }

    /// Stores `row` one version on; refused as contended when another writer came first.
    async fn save_dispute(&self, mut row: DisputeRow) -> Result<DisputeRow, PaymentServiceError> {
        row.version += 1;
        if !self.database().update_dispute(&row).await? {
            return Err(PaymentServiceError::Contended(row.id));
        }
        Ok(row)
    }

    /// Posts the opening's entry if it is not yet; with whether it was posted now.
    async fn post_opening(
        &self,
        row: DisputeRow,
    ) -> Result<(DisputeRow, bool), PaymentServiceError> {
        if row.opening_posted {
            return Ok((row, false));
        }
        let currency = currency_of(&row)?;
        let amount = |minor| Amount::new(minor, currency);
        let merchant = self
            .accounts()
            .merchant(self.database(), self.writer(), &row.merchant_id, currency)
            .await?;
        let service = self
            .accounts()
            .service(self.database(), self.writer(), currency)
            .await?;
        let legs = [
            leg(
                merchant.pending,
                Side::Debit,
                amount(row.from_pending_minor),
            ),
            leg(
                merchant.available,
                Side::Debit,
                amount(row.from_available_minor),
            ),
            leg(
                merchant.reserve,
                Side::Debit,
                amount(row.from_reserve_minor),
            ),
            leg(
                service.channel_clearing,
                Side::Credit,
                amount(row.amount_minor),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.post(
            &row,
            format!("payments-dispute:{}:opening", row.id),
            format!(
                "dispute {} on payment {}: taken from merchant {}",
                row.id, row.payment_id, row.merchant_id
            ),
            legs,
        )
        .await?;
        let mut posted = row;
        posted.opening_posted = true;
        Ok((self.save_dispute(posted).await?, true))
    }

    /// Applies the channel's decision; true when anything moved now.
    async fn decide(
        &self,
        row: DisputeRow,
        won: bool,
        fee: Amount,
        now: Timestamp,
    ) -> Result<bool, PaymentServiceError> {
        let row = match dispute::decide(status_of(&row)?, won)? {
            Decision::Repeated if row.outcome_posted => return Ok(false),
            Decision::Repeated => row,
            Decision::Decide(status) => {
                let mut decided = row;
                decided.status = status.as_str().to_string();
                decided.fee_minor = if won { 0 } else { fee.minor() };
                decided.decided_at = Some(now.as_microsecond());
                self.save_dispute(decided).await?
            }
        };
        let currency = currency_of(&row)?;
        let merchant = self
            .accounts()
            .merchant(self.database(), self.writer(), &row.merchant_id, currency)
            .await?;
        let service = self
            .accounts()
            .service(self.database(), self.writer(), currency)
            .await?;
        let (moved, description) = if won {
            (
                Amount::new(row.amount_minor, currency),
                format!(
                    "dispute {} won: returned to merchant {}",
                    row.id, row.merchant_id
                ),
            )
        } else {
            (
                Amount::new(row.fee_minor, currency),
                format!(
                    "dispute {} lost: the channel's fee to merchant {}",
                    row.id, row.merchant_id
                ),
            )
        };
        let legs = if won {
            [
                leg(service.channel_clearing, Side::Debit, moved),
                leg(merchant.pending, Side::Credit, moved),
            ]
        } else {
            [
                leg(merchant.pending, Side::Debit, moved),
                leg(service.channel_clearing, Side::Credit, moved),
            ]
        };
        self.post(
            &row,
            format!("payments-dispute:{}:outcome", row.id),
            description,
            legs.into_iter().flatten().collect(),
        )
        .await?;
        let mut posted = row;
        posted.outcome_posted = true;
        self.save_dispute(posted).await?;
        Ok(true)
    }

    async fn dispute_row(&self, id: &str) -> Result<DisputeRow, PaymentServiceError> {
        self.database()
            .dispute(id)
            .await?
            .ok_or_else(|| PaymentServiceError::DisputeNotFound(id.to_string()))
    }

    /// Dispute `id`.
    pub async fn dispute(&self, id: &str) -> Result<DisputeView, PaymentServiceError> {
        view(&self.dispute_row(id).await?)
    }

    /// Disputes by id after `after`, one merchant's (which must exist) and in one status
    /// when given; at most `limit` (1 to [`DISPUTES_PER_PAGE_MAX`]).
    pub async fn disputes(
        &self,
        merchant: Option<&str>,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<DisputeList, PaymentServiceError> {
        if !(1..=DISPUTES_PER_PAGE_MAX).contains(&limit) {
            return Err(PaymentServiceError::Invalid(format!(
                "limit must be 1 to {DISPUTES_PER_PAGE_MAX}"
            )));
        }
        if let Some(status) = status {
            if DisputeStatus::parse(status).is_none() {
                return Err(PaymentServiceError::Invalid(format!(
                    "status must be one of opened, evidence_submitted, accepted, won, lost; got {status:?}"
                )));
            }
        }
        if let Some(merchant) = merchant {
            self.merchant(merchant).await?;
        }
        let rows = self
            .database()
            .disputes(merchant, status, after, limit)
            .await?;
        Ok(DisputeList {
            disputes: rows.iter().map(view).collect::<Result<_, _>>()?,
        })
    }

    /// The merchant's evidence for dispute `id`, taken before its deadline and while it is
    /// neither accepted nor decided; evidence sent again replaces the earlier.
    pub async fn submit_dispute_evidence(
        &self,
        id: &str,
        evidence: &str,
        now: Timestamp,
    ) -> Result<DisputeView, PaymentServiceError> {
        let row = self.dispute_row(id).await?;
        let _guard = self.lock(&row.channel_id).await;
        let row = self.dispute_row(id).await?;
        let due_by = timestamp(row.evidence_due_by)?;
        let status = dispute::submit_evidence(
            status_of(&row)?,
            evidence,
            now.as_microsecond(),
            row.evidence_due_by,
            &due_by.to_string(),
        )?;
        let mut changed = row;
        changed.status = status.as_str().to_string();
        changed.evidence = Some(evidence.to_string());
        changed.evidence_submitted_at = Some(now.as_microsecond());
        view(&self.save_dispute(changed).await?)
    }

    /// The merchant accepts dispute `id` (it will not contest); accepting again answers the
    /// same. Nothing moves: the amount was taken at opening, and the channel's decision
    /// (with its fee) still comes.
    pub async fn accept_dispute(&self, id: &str) -> Result<DisputeView, PaymentServiceError> {
        let row = self.dispute_row(id).await?;
        let _guard = self.lock(&row.channel_id).await;
        let row = self.dispute_row(id).await?;
        let status = dispute::accept(status_of(&row)?)?;
        if status_of(&row)? == status {
            return view(&row);
        }
        let mut changed = row;
        changed.status = status.as_str().to_string();
        view(&self.save_dispute(changed).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_reference_names_its_payment() {
        assert_eq!(payment_of("payments:pay_0192:3"), Some("pay_0192"));
        assert_eq!(payment_of("payments:pay_0192:x"), None);
        assert_eq!(payment_of("wop_ab12:payout"), None);
    }
}
