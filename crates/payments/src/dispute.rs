//! Disputes (chargebacks) on a payment's card leg: the states, the deadline for evidence,
//! and what each step moves.
//!
//! ```text
//! opened ──evidence──► evidence_submitted ──┐
//!   │  └──accept──► accepted ◄──accept──────┤
//!   └───────────────────┴── channel decides ┴──► won | lost
//! ```
//!
//! - **Opened** by the channel's `dispute.opened`: the channel takes the amount back, so
//!   the merchant is debited at once ([`DisputeDebit::take`]): from its pending balance
//!   (money not yet settled) first, then its available balance, then its reserve, each only
//!   as far as it is positive; what none of them covers is taken from pending all the same
//!   (a debt carried against later sales, as a refund above sales is).
//! - **Evidence** (a text or a document reference) is accepted before the evidence
//!   deadline, as often as the merchant sends more; refused after it and on a dispute that
//!   is closed.
//! - **Accepted** by the merchant: it will not contest; the channel's decision still comes.
//! - **Won** (the channel's `dispute.won`): the amount comes back to the merchant's pending
//!   balance. **Lost** (`dispute.lost`): final, and the channel's fee is charged to the
//!   merchant's pending balance too. A decision is taken once; the same again is a
//!   repetition (no movement), the other way round is refused.

use serde::{Deserialize, Serialize};
use tally_core::{Amount, MoneyError};

/// Longest evidence text (or document reference), in characters.
pub const EVIDENCE_LENGTH_MAX: usize = 4_000;
/// Longest reason code the channel may send, in bytes.
pub const REASON_CODE_LENGTH_MAX: usize = 16;

/// Where a dispute stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    Opened,
    EvidenceSubmitted,
    Accepted,
    Won,
    Lost,
}

impl DisputeStatus {
    pub const ALL: [DisputeStatus; 5] = [
        DisputeStatus::Opened,
        DisputeStatus::EvidenceSubmitted,
        DisputeStatus::Accepted,
        DisputeStatus::Won,
        DisputeStatus::Lost,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeStatus::Opened => "opened",
            DisputeStatus::EvidenceSubmitted => "evidence_submitted",
            DisputeStatus::Accepted => "accepted",
            DisputeStatus::Won => "won",
            DisputeStatus::Lost => "lost",
        }
    }

    pub fn parse(text: &str) -> Option<DisputeStatus> {
        DisputeStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Decided by the channel: nothing moves any more.
    pub fn is_decided(&self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }

    /// The merchant can no longer answer it (accepted or decided).
    pub fn is_closed_to_merchant(&self) -> bool {
        matches!(
            self,
            DisputeStatus::Accepted | DisputeStatus::Won | DisputeStatus::Lost
        )
    }
}

/// Why a dispute rule refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisputeError {
    #[error("the dispute is {status}: it takes no more evidence and cannot be accepted")]
    Closed { status: &'static str },
    #[error("the evidence deadline passed at {due_by}")]
    DeadlinePassed { due_by: String },
    #[error("evidence must be 1 to {EVIDENCE_LENGTH_MAX} characters")]
    EvidenceLength,
    #[error("the channel decided this dispute {status} already")]
    DecidedOtherWay { status: &'static str },
    #[error("a dispute of {disputed} is above the {left} left of the captured card leg")]
    ExceedsCaptured { disputed: String, left: String },
    #[error("the disputed amount must be positive, got {0}")]
    AmountNotPositive(String),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl DisputeError {
    /// A stable code; never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            DisputeError::Closed { .. } => "dispute_closed",
            DisputeError::DeadlinePassed { .. } => "dispute_evidence_deadline_passed",
            DisputeError::EvidenceLength => "invalid_evidence",
            DisputeError::DecidedOtherWay { .. } => "dispute_decided_other_way",
            DisputeError::ExceedsCaptured { .. } => "dispute_exceeds_captured",
            DisputeError::AmountNotPositive(_) => "dispute_amount_not_positive",
            DisputeError::Money(_) => "amount_overflow",
        }
    }
}

/// Checks a new dispute of `amount` against the card leg: at most what it captured, less
/// what was refunded and what other disputes not won hold already.
pub fn check_amount(
    amount: Amount,
    captured: Amount,
    refunded: Amount,
    disputed: Amount,
) -> Result<(), DisputeError> {
    if !amount.is_positive() {
        return Err(DisputeError::AmountNotPositive(amount.to_string()));
    }
    let left = captured.checked_sub(refunded)?.checked_sub(disputed)?;
    if amount.minor() > left.minor() {
        return Err(DisputeError::ExceedsCaptured {
            disputed: amount.to_string(),
            left: left.to_string(),
        });
    }
    Ok(())
}

/// The status after evidence is submitted at `now` (`now` and `due_by` in any one unit,
/// e.g. microseconds).
pub fn submit_evidence(
    status: DisputeStatus,
    evidence: &str,
    now: i64,
    due_by: i64,
    due_by_text: &str,
) -> Result<DisputeStatus, DisputeError> {
    if status.is_closed_to_merchant() {
        return Err(DisputeError::Closed {
            status: status.as_str(),
        });
    }
    let length = evidence.chars().count();
    if length == 0 || length > EVIDENCE_LENGTH_MAX || evidence.trim().is_empty() {
        return Err(DisputeError::EvidenceLength);
    }
    if now >= due_by {
        return Err(DisputeError::DeadlinePassed {
            due_by: due_by_text.to_string(),
        });
    }
    Ok(DisputeStatus::EvidenceSubmitted)
}

/// The status after the merchant accepts the dispute; accepting twice is one acceptance.
pub fn accept(status: DisputeStatus) -> Result<DisputeStatus, DisputeError> {
    match status {
        DisputeStatus::Opened | DisputeStatus::EvidenceSubmitted | DisputeStatus::Accepted => {
            Ok(DisputeStatus::Accepted)
        }
        DisputeStatus::Won | DisputeStatus::Lost => Err(DisputeError::Closed {
            status: status.as_str(),
        }),
    }
}

/// What the channel's decision does to a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The dispute moves to this (decided) status and its money moves.
    Decide(DisputeStatus),
    /// Decided so already: nothing moves again.
    Repeated,
}

/// The channel decided `won` (for the merchant) or not.
pub fn decide(status: DisputeStatus, won: bool) -> Result<Decision, DisputeError> {
    let target = if won {
        DisputeStatus::Won
    } else {
        DisputeStatus::Lost
    };
    match status {
        DisputeStatus::Won | DisputeStatus::Lost if status == target => Ok(Decision::Repeated),
        DisputeStatus::Won | DisputeStatus::Lost => Err(DisputeError::DecidedOtherWay {
            status: status.as_str(),
        }),
        _ => Ok(Decision::Decide(target)),
    }
}

/// What the opening of a dispute takes from each of the merchant's balances. They sum to
/// the disputed amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeDebit {
    pub pending: Amount,
    pub available: Amount,
    pub reserve: Amount,
}

impl DisputeDebit {
    /// Takes `amount` from pending, then available, then reserve, each as far as its
    /// balance (a liability: what Tally owes the merchant) is positive; the rest from
    /// pending, which may go below zero.
    pub fn take(
        amount: Amount,
        pending: Amount,
        available: Amount,
        reserve: Amount,
    ) -> Result<DisputeDebit, DisputeError> {
        let currency = amount.currency();
        let mut left = amount.minor();
        let mut part = |balance: Amount| {
            let taken = left.min(balance.minor().max(0));
            left -= taken;
            Amount::new(taken, currency)
        };
        let from_pending = part(pending);
        let from_available = part(available);
        let from_reserve = part(reserve);
        Ok(DisputeDebit {
            pending: from_pending.checked_add(Amount::new(left, currency))?,
            available: from_available,
            reserve: from_reserve,
        })
    }

    pub fn total(&self) -> Result<Amount, MoneyError> {
        self.pending
            .checked_add(self.available)?
            .checked_add(self.reserve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tally_core::Currency;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    #[test]
    fn the_debit_takes_pending_then_available_then_reserve() {
        let debit = DisputeDebit::take(cny(1000), cny(300), cny(500), cny(900)).unwrap();
        assert_eq!(
            (debit.pending, debit.available, debit.reserve),
            (cny(300), cny(500), cny(200))
        );
        let short = DisputeDebit::take(cny(1000), cny(-50), cny(100), cny(0)).unwrap();
        assert_eq!(
            (short.pending, short.available, short.reserve),
            (cny(900), cny(100), cny(0))
        );
    }

    #[test]
    fn evidence_is_refused_after_the_deadline_and_on_a_closed_dispute() {
        let evidence = |status, now| submit_evidence(status, "tracking 1Z999", now, 100, "then");
        assert_eq!(
            evidence(DisputeStatus::Opened, 99),
            Ok(DisputeStatus::EvidenceSubmitted)
        );
        assert_eq!(
            evidence(DisputeStatus::EvidenceSubmitted, 50),
            Ok(DisputeStatus::EvidenceSubmitted)
        );
        assert_eq!(
            evidence(DisputeStatus::Opened, 100).unwrap_err().code(),
            "dispute_evidence_deadline_passed"
        );
        for closed in [
            DisputeStatus::Accepted,
            DisputeStatus::Won,
            DisputeStatus::Lost,
        ] {
            assert_eq!(evidence(closed, 0).unwrap_err().code(), "dispute_closed");
        }
        assert_eq!(
            submit_evidence(DisputeStatus::Opened, " ", 0, 100, "then")
                .unwrap_err()
                .code(),
            "invalid_evidence"
        );
    }

    #[test]
    fn a_decision_is_taken_once() {
        assert_eq!(
            decide(DisputeStatus::Accepted, false),
            Ok(Decision::Decide(DisputeStatus::Lost))
        );
        assert_eq!(decide(DisputeStatus::Won, true), Ok(Decision::Repeated));
        assert_eq!(
            decide(DisputeStatus::Won, false).unwrap_err().code(),
            "dispute_decided_other_way"
        );
        assert_eq!(accept(DisputeStatus::Accepted), Ok(DisputeStatus::Accepted));
        assert_eq!(
            accept(DisputeStatus::Lost).unwrap_err().code(),
            "dispute_closed"
        );
    }

    #[test]
    fn a_dispute_is_at_most_what_is_left_of_the_capture() {
        assert!(check_amount(cny(400), cny(1000), cny(300), cny(300)).is_ok());
        assert_eq!(
            check_amount(cny(401), cny(1000), cny(300), cny(300))
                .unwrap_err()
                .code(),
            "dispute_exceeds_captured"
        );
        assert_eq!(
            check_amount(cny(0), cny(1000), cny(0), cny(0))
                .unwrap_err()
                .code(),
            "dispute_amount_not_positive"
        );
    }

    proptest! {
        #[test]
        fn the_debit_sums_to_the_amount_and_never_overdraws_available_or_reserve(
            amount in 1_i64..1_000_000,
            pending in -1_000_000_i64..1_000_000,
            available in -1_000_000_i64..1_000_000,
            reserve in -1_000_000_i64..1_000_000,
        ) {
            let debit = DisputeDebit::take(cny(amount), cny(pending), cny(available), cny(reserve)).unwrap();
            prop_assert_eq!(debit.total().unwrap(), cny(amount));
            prop_assert!(!debit.available.is_negative() && !debit.reserve.is_negative());
            prop_assert!(debit.available.minor() <= available.max(0));
            prop_assert!(debit.reserve.minor() <= reserve.max(0));
            // Reserve is touched only when pending and available are exhausted.
            if debit.reserve.is_positive() {
                prop_assert_eq!(debit.available.minor(), available.max(0));
                prop_assert!(debit.pending.minor() >= pending.max(0));
            }
        }
    }
}
