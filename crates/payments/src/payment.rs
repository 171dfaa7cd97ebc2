//! A payment: a merchant's order funded by several sources, all or nothing. Its state
//! machine, the legs (one per source) and every status change with its time and cause.
//!
//! ```text
//!            ┌──────────────── requires_action (step-up code) ───┐
//!            │                        │                          │
//!  created ──┴──(every leg reserved)──┴──► authorized ──► captured ──► partially_refunded ──► refunded
//!     │                                     │   ▲   │  └──► partially_captured ──┘      ▲
//!     │                                     ▼   │   │                                   │
//!     │                                 under_review│                                   │
//!     └──► failed / cancelled / expired ◄───────────┘     (refunds, one or many) ───────┘
//! ```
//!
//! **All or nothing.** A payment leaves `created` for `authorized` only when every leg is
//! reserved, and is captured only while every leg still is. It can end `failed`, `cancelled` or `expired` only when no leg is still
//! reserved: whoever drives it releases every reserved leg first, so a shopper is never
//! charged on a payment that did not succeed.
//!
//! **Partial capture.** One capture per payment, of the whole or a part; a part is taken
//! from the legs in proportion to what each funds (largest remainder, ties to the earlier
//! leg), so every source pays the same share of the order it agreed to fund, and the rest of
//! every leg is released.

use crate::error::PaymentError;
use crate::funding::{self, Funding, Source};
use crate::refund::{self, RefundPolicy};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// How long an authorised payment waits for its capture before it expires and releases.
pub const AUTHORIZATION_VALIDITY: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Whether a payment is captured as soon as it is authorised, or waits for the merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    #[default]
    Automatic,
    Manual,
}

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Sources resolved to amounts; nothing reserved yet.
    Created,
    /// Waiting for the shopper (a one-time code); nothing reserved yet.
    RequiresAction,
    /// Every leg reserved; waiting for the capture.
    Authorized,
    /// Every leg reserved; waiting for an analyst to approve (capture) or reject (release).
    UnderReview,
    /// Captured whole.
    Captured,
    /// Captured in part; the rest of every leg released.
    PartiallyCaptured,
    PartiallyRefunded,
    Refunded,
    Failed,
    Cancelled,
    Expired,
}

impl PaymentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::UnderReview => "under_review",
            PaymentStatus::Captured => "captured",
            PaymentStatus::PartiallyCaptured => "partially_captured",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
        }
    }

    /// Before any money is reserved.
    pub fn is_unreserved(&self) -> bool {
        matches!(self, PaymentStatus::Created | PaymentStatus::RequiresAction)
    }

    /// Every leg reserved, nothing captured.
    pub fn is_reserved(&self) -> bool {
        matches!(self, PaymentStatus::Authorized | PaymentStatus::UnderReview)
    }

    /// Money moved to the merchant: refunds are possible.
    pub fn is_paid(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Captured
                | PaymentStatus::PartiallyCaptured
                | PaymentStatus::PartiallyRefunded
                | PaymentStatus::Refunded
        )
    }

    /// Ended without moving money.
    pub fn is_unpaid_end(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Expired
        )
    }
}

/// Where one leg's money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegStatus {
    /// Not reserved yet.
    Pending,
    /// Held at its source (a ledger hold, a credit authorisation, a card authorisation).
    Reserved,
    /// Part or all moved to the merchant; the rest released.
    Captured,
    /// Holds nothing: released after being reserved, or never reserved by a payment that
    /// ended.
    Released,
    /// Its source refused to reserve it.
    Failed,
}

impl LegStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            LegStatus::Pending => "pending",
            LegStatus::Reserved => "reserved",
            LegStatus::Captured => "captured",
            LegStatus::Released => "released",
            LegStatus::Failed => "failed",
        }
    }
}

/// One source's part of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub source: Source,
    /// What this source funds of the order.
    pub amount: Amount,
    pub status: LegStatus,
    pub captured: Amount,
    /// In refunds that have started and not yet finished.
    pub refunding: Amount,
    pub refunded: Amount,
}

impl Leg {
    /// What this source can still get back by a new refund.
    pub fn refundable(&self) -> Result<Amount, PaymentError> {
        Ok(self
            .captured
            .checked_sub(self.refunded)?
            .checked_sub(self.refunding)?)
    }
}

/// A status change, kept for ever with the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
    pub at: Timestamp,
    pub cause: String,
}

/// Risk control held the order's delivery, or an analyst released it: kept for ever with
/// the payment, beside its status changes (the status itself does not change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryChange {
    /// `true` when the delivery was held, `false` when it was released.
    pub held: bool,
    pub at: Timestamp,
    pub cause: String,
}

/// What a merchant asks to be paid, and by which sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPayment {
    pub merchant_id: String,
    pub order_reference: String,
    pub customer: String,
    pub amount: Amount,
    pub expires_at: Timestamp,
    pub capture_method: CaptureMethod,
    pub fundings: Vec<Funding>,
}

/// A payment and its legs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub merchant_id: String,
    pub order_reference: String,
    pub customer: String,
    pub amount: Amount,
    pub capture_method: CaptureMethod,
    pub created_at: Timestamp,
    /// Until when the shopper may complete it (before authorisation).
    pub expires_at: Timestamp,
    /// Until when an authorised payment may be captured.
    pub capture_before: Option<Timestamp>,
    pub status: PaymentStatus,
    pub legs: Vec<Leg>,
    pub transitions: Vec<Transition>,
    /// The order's delivery is held by risk control until an analyst releases it.
    pub delivery_held: bool,
    /// Every hold and release of the delivery, in order (none on payments stored before
    /// they were kept).
    #[serde(default)]
    pub delivery_changes: Vec<DeliveryChange>,
}

impl Payment {
    /// A new payment in `created`, its sources resolved to exact amounts.
    pub fn new(new: NewPayment, now: Timestamp) -> Result<Payment, PaymentError> {
        let amounts = funding::resolve(new.amount, &new.fundings)?;
        if new.expires_at <= now {
            return Err(PaymentError::Expired(new.expires_at.to_string()));
        }
        let zero = Amount::zero(new.amount.currency());
        let legs = new
            .fundings
            .into_iter()
            .zip(amounts)
            .map(|(funding, amount)| Leg {
                source: funding.source,
                amount,
                status: LegStatus::Pending,
                captured: zero,
                refunding: zero,
                refunded: zero,
            })
            .collect();
        Ok(Payment {
            merchant_id: new.merchant_id,
            order_reference: new.order_reference,
            customer: new.customer,
            amount: new.amount,
            capture_method: new.capture_method,
            created_at: now,
            expires_at: new.expires_at,
            capture_before: None,
            status: PaymentStatus::Created,
            legs,
            transitions: Vec::new(),
            delivery_held: false,
            delivery_changes: Vec::new(),
        })
    }

    fn refuse(&self, action: &'static str) -> PaymentError {
        PaymentError::InvalidTransition {
            status: self.status.as_str(),
            action,
        }
    }

    fn move_to(&mut self, to: PaymentStatus, now: Timestamp, cause: &str) {
        self.transitions.push(Transition {
            from: self.status,
            to,
            at: now,
            cause: cause.to_string(),
        });
        self.status = to;
    }

    fn leg_mut(&mut self, index: usize, expected: LegStatus) -> Result<&mut Leg, PaymentError> {
        let leg = self
            .legs
            .get_mut(index)
            .ok_or(PaymentError::LegNotFound(index))?;
        if leg.status != expected {
            return Err(PaymentError::LegState {
                leg: index,
                status: leg.status.as_str(),
                expected: expected.as_str(),
            });
        }
        Ok(leg)
    }

    /// The moment after which the payment, if not yet paid, expires.
    pub fn deadline(&self) -> Option<Timestamp> {
        match self.status {
            status if status.is_unreserved() => Some(self.expires_at),
            status if status.is_reserved() => self.capture_before,
            _ => None,
        }
    }

    /// Whether it should expire at `now` (its deadline has passed and it is not paid).
    pub fn is_due_to_expire(&self, now: Timestamp) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }

    fn refuse_if_expired(&self, now: Timestamp) -> Result<(), PaymentError> {
        match self.deadline() {
            Some(deadline) if now >= deadline => Err(PaymentError::Expired(deadline.to_string())),
            _ => Ok(()),
        }
    }

    /// The shopper must act (enter a one-time code) before anything is reserved.
    pub fn require_action(&mut self, now: Timestamp, cause: &str) -> Result<(), PaymentError> {
        if self.status != PaymentStatus::Created {
            return Err(self.refuse("require an action"));
        }
        self.refuse_if_expired(now)?;
        self.move_to(PaymentStatus::RequiresAction, now, cause);
        Ok(())
    }

    /// Leg `index` is now held at its source. Recorded even past the deadline: the money
    /// is held, and only a release (which expiry does) may undo it.
    pub fn leg_reserved(&mut self, index: usize) -> Result<(), PaymentError> {
        if !self.status.is_unreserved() {
            return Err(self.refuse("reserve a leg"));
        }
        self.leg_mut(index, LegStatus::Pending)?.status = LegStatus::Reserved;
        Ok(())
    }

    /// Leg `index`'s source refused to reserve it. The payment must then release every
    /// reserved leg and fail.
    pub fn leg_failed(&mut self, index: usize) -> Result<(), PaymentError> {
        if !self.status.is_unreserved() {
            return Err(self.refuse("fail a leg"));
        }
        self.leg_mut(index, LegStatus::Pending)?.status = LegStatus::Failed;
        Ok(())
    }

    /// Leg `index`'s hold was released at its source.
    pub fn leg_released(&mut self, index: usize) -> Result<(), PaymentError> {
        if self.status.is_paid() || self.status.is_unpaid_end() {
            return Err(self.refuse("release a leg"));
        }
        self.leg_mut(index, LegStatus::Reserved)?.status = LegStatus::Released;
        Ok(())
    }

    /// The legs still held at their sources.
    pub fn reserved_legs(&self) -> Vec<usize> {
        self.legs
            .iter()
            .enumerate()
            .filter(|(_, leg)| leg.status == LegStatus::Reserved)
            .map(|(index, _)| index)
            .collect()
    }

    /// Every leg reserved: the payment is authorised until `now` + [`AUTHORIZATION_VALIDITY`].
    pub fn authorize(&mut self, now: Timestamp) -> Result<(), PaymentError> {
        if !self.status.is_unreserved() {
            return Err(self.refuse("be authorised"));
        }
        if let Some(index) = self
            .legs
            .iter()
            .position(|leg| leg.status != LegStatus::Reserved)
        {
            return Err(PaymentError::LegState {
                leg: index,
                status: self.legs[index].status.as_str(),
                expected: LegStatus::Reserved.as_str(),
            });
        }
        let capture_before = now
            .checked_add(AUTHORIZATION_VALIDITY)
            .map_err(|_| PaymentError::Internal("the capture deadline is past year 9999"))?;
        self.capture_before = Some(capture_before);
        self.move_to(PaymentStatus::Authorized, now, "every source reserved");
        Ok(())
    }

    /// Risk control wants an analyst to look first; the legs stay reserved.
    pub fn hold_for_review(&mut self, now: Timestamp, cause: &str) -> Result<(), PaymentError> {
        if self.status != PaymentStatus::Authorized {
            return Err(self.refuse("be held for review"));
        }
        self.move_to(PaymentStatus::UnderReview, now, cause);
        Ok(())
    }

    /// The analyst approved: the payment may be captured.
    pub fn approve_review(&mut self, now: Timestamp, cause: &str) -> Result<(), PaymentError> {
        if self.status != PaymentStatus::UnderReview {
            return Err(self.refuse("be approved"));
        }
        self.move_to(PaymentStatus::Authorized, now, cause);
        Ok(())
    }

    /// How a capture of `amount` is taken from the legs (see the module's "Partial capture").
    pub fn capture_split(
        &self,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Vec<Amount>, PaymentError> {
        if self.status != PaymentStatus::Authorized {
            return Err(self.refuse("be captured"));
        }
        self.refuse_if_expired(now)?;
        if amount.currency() != self.amount.currency() {
            return Err(PaymentError::CurrencyMismatch {
                index: 0,
                expected: self.amount.currency().to_string(),
                found: amount.currency().to_string(),
            });
        }
        if !amount.is_positive() {
            return Err(PaymentError::AmountNotPositive(amount.to_string()));
        }
        if let Some(index) = self
            .legs
            .iter()
            .position(|leg| leg.status != LegStatus::Reserved)
        {
            return Err(PaymentError::LegState {
                leg: index,
                status: self.legs[index].status.as_str(),
                expected: LegStatus::Reserved.as_str(),
            });
        }
        if amount.minor() > self.amount.minor() {
            return Err(PaymentError::CaptureExceedsAuthorized {
                requested: amount.to_string(),
                authorized: self.amount.to_string(),
            });
        }
        let ratios: Vec<u64> = self
            .legs
            .iter()
            .map(|leg| u64::try_from(leg.amount.minor()).unwrap_or(0))
            .collect();
        Ok(amount.allocate_by_ratios(&ratios)?)
    }

    /// Every leg captured for its part of the split (the rest of it released).
    pub fn captured(
        &mut self,
        parts: &[Amount],
        now: Timestamp,
        cause: &str,
    ) -> Result<(), PaymentError> {
        if self.status != PaymentStatus::Authorized {
            return Err(self.refuse("be captured"));
        }
        if parts.len() != self.legs.len() {
            return Err(PaymentError::Internal("one capture part per leg"));
        }
        for (index, part) in parts.iter().enumerate() {
            let leg = &self.legs[index];
            if leg.status != LegStatus::Reserved {
                return Err(PaymentError::LegState {
                    leg: index,
                    status: leg.status.as_str(),
                    expected: LegStatus::Reserved.as_str(),
                });
            }
            if part.is_negative() || part.minor() > leg.amount.minor() {
                return Err(PaymentError::CaptureExceedsAuthorized {
                    requested: part.to_string(),
                    authorized: leg.amount.to_string(),
                });
            }
        }
        for (leg, part) in self.legs.iter_mut().zip(parts) {
            leg.status = LegStatus::Captured;
            leg.captured = *part;
        }
        let total = Amount::checked_sum(self.amount.currency(), parts)?;
        let to = if total == self.amount {
            PaymentStatus::Captured
        } else {
            PaymentStatus::PartiallyCaptured
        };
        self.move_to(to, now, cause);
        Ok(())
    }

    /// Ends the payment without moving money: `failed`, `cancelled` or `expired`. Refused
    /// while a leg is still reserved; legs never reserved are marked released.
    pub fn end_unpaid(
        &mut self,
        to: PaymentStatus,
        now: Timestamp,
        cause: &str,
    ) -> Result<(), PaymentError> {
        if !to.is_unpaid_end() {
            return Err(PaymentError::Internal("end_unpaid takes an unpaid end"));
        }
        if !(self.status.is_unreserved() || self.status.is_reserved()) {
            return Err(self.refuse(match to {
                PaymentStatus::Cancelled => "be cancelled",
                PaymentStatus::Expired => "expire",
                _ => "fail",
            }));
        }
        if to == PaymentStatus::Expired && !self.is_due_to_expire(now) {
            return Err(self.refuse("expire before its deadline"));
        }
        let reserved = self.reserved_legs().len();
        if reserved > 0 {
            return Err(PaymentError::LegsStillReserved(reserved));
        }
        for leg in &mut self.legs {
            if leg.status == LegStatus::Pending {
                leg.status = LegStatus::Released;
            }
        }
        self.move_to(to, now, cause);
        Ok(())
    }

    /// What each leg can still get back.
    pub fn refundable(&self) -> Result<Vec<Amount>, PaymentError> {
        self.legs.iter().map(Leg::refundable).collect()
    }

    /// How a refund of `amount` is split across the legs by `policy`.
    pub fn refund_split(
        &self,
        amount: Amount,
        policy: RefundPolicy,
    ) -> Result<Vec<Amount>, PaymentError> {
        if !self.status.is_paid() {
            return Err(self.refuse("be refunded"));
        }
        if amount.currency() != self.amount.currency() {
            return Err(PaymentError::CurrencyMismatch {
                index: 0,
                expected: self.amount.currency().to_string(),
                found: amount.currency().to_string(),
            });
        }
        let sources: Vec<Source> = self.legs.iter().map(|leg| leg.source.clone()).collect();
        refund::split(amount, &sources, &self.refundable()?, policy)
    }

    /// A refund split into `parts` has started: those amounts are no longer refundable.
    pub fn refund_started(&mut self, parts: &[Amount]) -> Result<(), PaymentError> {
        if !self.status.is_paid() {
            return Err(self.refuse("be refunded"));
        }
        self.check_parts(parts)?;
        for (index, part) in parts.iter().enumerate() {
            if part.minor() > self.legs[index].refundable()?.minor() {
                return Err(PaymentError::RefundExceedsPaid {
                    requested: part.to_string(),
                    refundable: self.legs[index].refundable()?.to_string(),
                });
            }
        }
        for (leg, part) in self.legs.iter_mut().zip(parts) {
            leg.refunding = leg.refunding.checked_add(*part)?;
        }
        Ok(())
    }

    /// A started refund reached every source.
    pub fn refund_finished(
        &mut self,
        parts: &[Amount],
        now: Timestamp,
        cause: &str,
    ) -> Result<(), PaymentError> {
        self.take_refunding(parts)?;
        for (leg, part) in self.legs.iter_mut().zip(parts) {
            leg.refunded = leg.refunded.checked_add(*part)?;
        }
        let captured = Amount::checked_sum(
            self.amount.currency(),
            self.legs.iter().map(|leg| &leg.captured),
        )?;
        let refunded = Amount::checked_sum(
            self.amount.currency(),
            self.legs.iter().map(|leg| &leg.refunded),
        )?;
        let to = if refunded == captured {
            PaymentStatus::Refunded
        } else if refunded.is_zero() {
            self.status
        } else {
            PaymentStatus::PartiallyRefunded
        };
        if to != self.status {
            self.move_to(to, now, cause);
        }
        Ok(())
    }

    /// A started refund failed for good: its amounts are refundable again.
    pub fn refund_abandoned(&mut self, parts: &[Amount]) -> Result<(), PaymentError> {
        self.take_refunding(parts)
    }

    fn take_refunding(&mut self, parts: &[Amount]) -> Result<(), PaymentError> {
        self.check_parts(parts)?;
        for (index, part) in parts.iter().enumerate() {
            if part.minor() > self.legs[index].refunding.minor() {
                return Err(PaymentError::Internal(
                    "a refund finished for more than was started",
                ));
            }
        }
        for (leg, part) in self.legs.iter_mut().zip(parts) {
            leg.refunding = leg.refunding.checked_sub(*part)?;
        }
        Ok(())
    }

    fn check_parts(&self, parts: &[Amount]) -> Result<(), PaymentError> {
        if parts.len() != self.legs.len() {
            return Err(PaymentError::Internal("one refund part per leg"));
        }
        if parts
            .iter()
            .any(|part| part.is_negative() || part.currency() != self.amount.currency())
        {
            return Err(PaymentError::Internal(
                "refund parts are non-negative, in the payment's currency",
            ));
        }
        Ok(())
    }

    /// Risk control held the order's delivery (the payment itself succeeds). Holding a
    /// held delivery changes nothing.
    pub fn hold_delivery(&mut self, now: Timestamp, cause: &str) {
        self.change_delivery(true, now, cause);
    }

    /// An analyst released the order's delivery. Releasing one not held changes nothing.
    pub fn release_delivery(&mut self, now: Timestamp, cause: &str) {
        self.change_delivery(false, now, cause);
    }

    fn change_delivery(&mut self, held: bool, now: Timestamp, cause: &str) {
        if self.delivery_held == held {
            return;
        }
        self.delivery_held = held;
        self.delivery_changes.push(DeliveryChange {
            held,
            at: now,
            cause: cause.to_string(),
        });
    }

    /// The rules every payment keeps, whatever happened to it. Property tests call this
    /// after every step; the service may call it before storing.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let currency = self.amount.currency();
        let sum = |pick: fn(&Leg) -> Amount| -> Result<i64, &'static str> {
            Amount::checked_sum(
                currency,
                self.legs.iter().map(pick).collect::<Vec<_>>().iter(),
            )
            .map(|amount| amount.minor())
            .map_err(|_| "leg amounts overflow")
        };
        if sum(|leg| leg.amount)? != self.amount.minor() {
            return Err("the legs do not sum to the order");
        }
        for leg in &self.legs {
            if leg.captured.is_negative() || leg.captured.minor() > leg.amount.minor() {
                return Err("a leg captured more than it funds");
            }
            let back = leg.refunded.minor().checked_add(leg.refunding.minor());
            if leg.refunded.is_negative()
                || leg.refunding.is_negative()
                || back.is_none_or(|back| back > leg.captured.minor())
            {
                return Err("a leg is refunded more than it paid");
            }
            if leg.status != LegStatus::Captured && !leg.captured.is_zero() {
                return Err("a leg that is not captured has a captured amount");
            }
        }
        let captured = sum(|leg| leg.captured)?;
        let reserved = self.reserved_legs().len();
        // Reserved legs are released one by one before a reserved payment ends unpaid.
        let reserved_or_released = self
            .legs
            .iter()
            .all(|leg| matches!(leg.status, LegStatus::Reserved | LegStatus::Released));
        let holds = match self.status {
            PaymentStatus::Created | PaymentStatus::RequiresAction => captured == 0,
            PaymentStatus::Authorized | PaymentStatus::UnderReview => {
                reserved_or_released && captured == 0
            }
            PaymentStatus::Captured => reserved == 0 && captured == self.amount.minor(),
            PaymentStatus::PartiallyCaptured => {
                reserved == 0 && captured > 0 && captured < self.amount.minor()
            }
            PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => {
                reserved == 0 && captured > 0
            }
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Expired => {
                reserved == 0
                    && captured == 0
                    && self
                        .legs
                        .iter()
                        .all(|leg| matches!(leg.status, LegStatus::Released | LegStatus::Failed))
            }
        };
        if !holds {
            return Err("the legs do not match the payment's status");
        }
        Ok(())
    }
}
