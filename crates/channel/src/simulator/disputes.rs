//! Disputes (chargebacks) the simulated bank raises on captures, and their decisions.
//!
//! A test or demo plays the cardholder's issuer: `POST /v1/disputes` disputes up to what a
//! capture took less what was refunded and already disputed, with a reason code and an
//! evidence deadline, and the bank sends a signed `dispute.opened` (its `channel_id` is
//! the dispute's id, its `reference` the capture's). `POST /v1/disputes/{id}/decision`
//! decides it once: `dispute.won` gives the amount back, `dispute.lost` is final and
//! carries the bank's dispute fee. The card's balances are not touched: the money moves
//! between the acquirer and Tally, which is what Tally books, and what the daily settlement
//! file shows: a `dispute` row when a dispute opens, `dispute_won` when it is decided for
//! the merchant, `dispute_fee` when it is lost with a fee (`settlement.rs`).

use crate::error::refusal;
use crate::identifiers::{ChannelId, Reference};
use crate::notification::{DisputeDetails, Notification, NotificationType};
use crate::simulator::settlement::{RecordType, SettlementRow};
use crate::simulator::state::{date_of, Bank, Delivery, Refusal};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// No dispute has this id.
pub const DISPUTE_NOT_FOUND: &str = "dispute_not_found";
/// No capture was made under the reference disputed.
pub const CAPTURE_NOT_FOUND: &str = "capture_not_found";
/// The amount is above what the capture has left to dispute.
pub const DISPUTE_EXCEEDS_CAPTURED: &str = "dispute_exceeds_captured";
/// The dispute was decided the other way already.
pub const DISPUTE_DECIDED: &str = "dispute_decided";

/// `POST /v1/disputes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeRequest {
    /// Tally's reference of the capture disputed.
    pub reference: Reference,
    pub amount: String,
    pub currency: String,
    /// The scheme's reason code, 1 to 16 visible ASCII characters.
    pub reason_code: String,
    pub evidence_due_by: Timestamp,
}

/// `POST /v1/disputes/{id}/decision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeDecision {
    /// `won` (for the merchant) or `lost`.
    pub outcome: String,
}

/// A dispute as the bank shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeView {
    pub dispute_id: ChannelId,
    pub reference: Reference,
    pub amount: String,
    pub currency: String,
    pub reason_code: String,
    pub evidence_due_by: Timestamp,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// The fee charged (on `lost`), else zero.
    pub fee: String,
}

/// A dispute in the bank's books.
#[derive(Debug, Clone)]
pub(crate) struct DisputeRecord {
    reference: Reference,
    amount: Amount,
    reason_code: String,
    evidence_due_by: Timestamp,
    /// `Some(true)` won, `Some(false)` lost.
    decided: Option<bool>,
    fee: Amount,
}

fn view(id: &ChannelId, record: &DisputeRecord) -> DisputeView {
    DisputeView {
        dispute_id: id.clone(),
        reference: record.reference.clone(),
        amount: record.amount.to_decimal_string(),
        currency: record.amount.currency().code().to_string(),
        reason_code: record.reason_code.clone(),
        evidence_due_by: record.evidence_due_by,
        status: match record.decided {
            None => "open",
            Some(true) => "won",
            Some(false) => "lost",
        }
        .to_string(),
        fee: record.fee.to_decimal_string(),
    }
}

impl Bank {
    /// The settlement file's row of a movement of dispute `id` (see `settlement.rs`).
    fn settle_dispute(
        &mut self,
        id: &ChannelId,
        record_type: RecordType,
        amount: Amount,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let suffix = match record_type {
            RecordType::DisputeWon => "dispute-won",
            RecordType::DisputeFee => "dispute-fee",
            _ => "dispute",
        };
        let reference = Reference::new(format!("{id}:{suffix}"))
            .map_err(|error| Refusal::new(refusal::INVALID_REQUEST, error.to_string()))?;
        let captured = self.disputes.get(id).map(|record| record.reference.clone());
        let card_last_four = captured
            .and_then(|capture| self.card_last_four_of(&capture))
            .unwrap_or_default();
        self.settle(SettlementRow {
            record_type,
            value_date: date_of(now),
            reference,
            channel_id: id.clone(),
            card_last_four,
            amount,
            fee: Amount::zero(amount.currency()),
        });
        Ok(())
    }

    /// The last four digits of the card of the capture under `reference`, from its row.
    fn card_last_four_of(&self, reference: &Reference) -> Option<String> {
        self.settled.values().flatten().find_map(|row| {
            (row.record_type == RecordType::Capture && &row.reference == reference)
                .then(|| row.card_last_four.clone())
        })
    }

    fn dispute_delivery(
        &mut self,
        kind: NotificationType,
        id: &ChannelId,
        now: Timestamp,
    ) -> Option<Delivery> {
        let record = self.disputes.get(id)?.clone();
        let notification = Notification {
            event_id: self.new_identifier("evt"),
            kind,
            reference: record.reference.clone(),
            channel_id: id.clone(),
            amount: record.amount,
            occurred_at: now,
            dispute: Some(DisputeDetails {
                reason_code: record.reason_code,
                evidence_due_by: record.evidence_due_by,
                fee: record.fee,
            }),
        };
        let delivery = self.schedule(notification);
        Some(delivery)
    }

    /// Opens a dispute on the capture under `request.reference`.
    pub(crate) fn raise_dispute(
        &mut self,
        request: &DisputeRequest,
        amount: Amount,
        now: Timestamp,
    ) -> Result<(DisputeView, Vec<Delivery>), Refusal> {
        if !amount.is_positive() {
            return Err(Refusal::new(
                refusal::INVALID_REQUEST,
                format!("the amount must be positive, got {amount}"),
            ));
        }
        let code = &request.reason_code;
        if code.is_empty() || code.len() > 16 || !code.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Refusal::new(
                refusal::INVALID_REQUEST,
                "reason_code must be 1 to 16 visible ASCII characters",
            ));
        }
        let Some((captured, refunded)) = self.captured_under(&request.reference) else {
            return Err(Refusal::new(
                CAPTURE_NOT_FOUND,
                format!("no capture under {}", request.reference),
            ));
        };
        if captured.currency() != amount.currency() {
            return Err(Refusal::new(
                refusal::CURRENCY_MISMATCH,
                format!("the capture is in {}", captured.currency()),
            ));
        }
        let mut left = captured.minor() - refunded.minor();
        for record in self.disputes.values() {
            if record.reference == request.reference && record.decided != Some(true) {
                left -= record.amount.minor();
            }
        }
        if amount.minor() > left {
            return Err(Refusal::new(
                DISPUTE_EXCEEDS_CAPTURED,
                format!(
                    "{amount} disputed, {} left of the capture",
                    Amount::new(left, amount.currency())
                ),
            ));
        }
        let id = self.new_channel_id("dsp");
        self.disputes.insert(
            id.clone(),
            DisputeRecord {
                reference: request.reference.clone(),
                amount,
                reason_code: code.clone(),
                evidence_due_by: request.evidence_due_by,
                decided: None,
                fee: Amount::zero(amount.currency()),
            },
        );
        self.settle_dispute(&id, RecordType::Dispute, amount, now)?;
        let deliveries = self
            .dispute_delivery(NotificationType::DisputeOpened, &id, now)
            .into_iter()
            .collect();
        Ok((view(&id, &self.disputes[&id]), deliveries))
    }

    /// Decides dispute `id`; the same decision again answers it again and sends nothing.
    pub(crate) fn decide_dispute(
        &mut self,
        id: &ChannelId,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(DisputeView, Vec<Delivery>), Refusal> {
        let won = match outcome {
            "won" => true,
            "lost" => false,
            other => {
                return Err(Refusal::new(
                    refusal::INVALID_REQUEST,
                    format!("outcome must be won or lost, got {other:?}"),
                ))
            }
        };
        let record = self
            .disputes
            .get(id)
            .ok_or_else(|| Refusal::new(DISPUTE_NOT_FOUND, format!("no dispute {id}")))?;
        match record.decided {
            Some(decided) if decided == won => return Ok((view(id, record), Vec::new())),
            Some(_) => {
                return Err(Refusal::new(
                    DISPUTE_DECIDED,
                    format!("dispute {id} was decided the other way"),
                ))
            }
            None => {}
        }
        let amount = record.amount;
        let fee = if won {
            Amount::zero(record.amount.currency())
        } else {
            self.dispute_fee(record.amount.currency())
        };
        if let Some(record) = self.disputes.get_mut(id) {
            record.decided = Some(won);
            record.fee = fee;
        }
        if won {
            self.settle_dispute(id, RecordType::DisputeWon, amount, now)?;
        } else if fee.is_positive() {
            self.settle_dispute(id, RecordType::DisputeFee, fee, now)?;
        }
        let kind = if won {
            NotificationType::DisputeWon
        } else {
            NotificationType::DisputeLost
        };
        let deliveries = self.dispute_delivery(kind, id, now).into_iter().collect();
        Ok((view(id, &self.disputes[id]), deliveries))
    }
}
