//! What the payment service stores for a payment (the pure payment, where each leg is
//! reserved, a capture or an unpaid end in progress, its refunds), and the steps of its
//! intent log.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, HoldId};
use tally_payments::{Payment, PaymentStatus, RefundPolicy};

/// A payment as the service keeps it (stored as JSON in `payments.state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub id: String,
    pub payment: Payment,
    /// Where each leg is held, once reserved (one entry per leg).
    pub reservations: Vec<Option<Reservation>>,
    /// The sequence number the next step of the intent log takes.
    pub next_step: i64,
    /// A capture decided and not yet taken on every leg.
    pub capturing: Option<Progress>,
    /// An unpaid end decided, its reserved legs being released.
    pub ending: Option<Ending>,
    pub refunds: Vec<RefundRecord>,
    /// Why the payment failed, given again to every later request about it.
    pub failure: Option<Failure>,
    /// What risk control decided, once it did.
    #[serde(default)]
    pub risk: Option<crate::payments::risk_control::RiskVerdict>,
    /// The one-time code the payment waits for, in `requires_action`.
    #[serde(default)]
    pub step_up: Option<crate::payments::risk_control::StepUp>,
    /// The merchant's fee schedule when the payment was created: its captures are charged
    /// by it, whatever the merchant's schedule is by then. `None` on payments stored before
    /// merchants existed, which pay no fee.
    #[serde(default)]
    pub fees: Option<tally_payments::FeeSchedule>,
    /// Per leg, what a credit-line leg costs the shopper as disclosed at creation (`None`
    /// for other legs); empty on payments stored before Tally disclosed them.
    #[serde(default)]
    pub credit_terms: Vec<Option<crate::payments::views::CreditTermsView>>,
}

/// Where a leg's money is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reservation {
    /// A ledger hold from the wallet or vault to the merchant payable.
    Hold { hold_id: HoldId },
    /// A credit authorisation on a credit account; the plan once captured.
    Credit {
        account: i64,
        authorization: u32,
        plan: Option<u32>,
    },
    /// A card authorisation at the channel, mirrored by a ledger hold from the channel
    /// clearing account to the merchant payable.
    Card { channel_id: String, hold_id: HoldId },
}

/// Amounts to take per leg, and which legs are done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub parts: Vec<Amount>,
    pub done: Vec<bool>,
}

impl Progress {
    /// A capture: every leg has a step, a zero part releasing the leg whole.
    pub fn new(parts: Vec<Amount>) -> Progress {
        let done = vec![false; parts.len()];
        Progress { parts, done }
    }

    /// A refund: a leg with nothing to get back has no step.
    pub fn new_refund(parts: Vec<Amount>) -> Progress {
        let done = parts.iter().map(Amount::is_zero).collect();
        Progress { parts, done }
    }

    pub fn is_done(&self) -> bool {
        self.done.iter().all(|done| *done)
    }
}

/// An unpaid end being carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    pub to: PaymentStatus,
    pub cause: String,
}

/// Why a payment failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    /// The leg whose source refused, if one did.
    pub leg: Option<usize>,
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    /// A source refused its part for good; the parts that went through are kept
    /// (`refunded`), the rest is refundable again.
    Failed,
}

impl RefundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }
}

/// One refund of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub id: String,
    /// The request that made it (its scoped idempotency key), so a retry continues it.
    pub request: String,
    pub amount: Amount,
    pub policy: RefundPolicy,
    pub progress: Progress,
    pub status: RefundStatus,
    pub created_at: Timestamp,
    pub failure: Option<Failure>,
}

/// One step of the intent log: written before it is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Reserve {
        leg: usize,
    },
    Release {
        leg: usize,
    },
    Capture {
        leg: usize,
        amount: Amount,
    },
    Refund {
        refund: String,
        leg: usize,
        amount: Amount,
    },
}

impl Action {
    pub fn leg(&self) -> usize {
        match self {
            Action::Reserve { leg }
            | Action::Release { leg }
            | Action::Capture { leg, .. }
            | Action::Refund { leg, .. } => *leg,
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Taken {
    Reserved {
        reservation: Reservation,
    },
    Released,
    /// Captured; for a credit leg, the plan it became.
    Captured {
        plan: Option<u32>,
    },
    Refunded,
    /// The source refused; nothing moved.
    Refused {
        code: String,
        message: String,
    },
}
