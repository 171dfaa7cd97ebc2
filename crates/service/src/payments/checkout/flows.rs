//! What each request does to a loaded payment (confirm, review, capture, cancel, refund),
//! and the work a request decides and saves before its first step (a capture, an unpaid
//! end, a refund), carried leg by leg through the intent log so recovery can finish it.

use super::{declined, expired, ConfirmInput, Loaded, PaymentService, REFUNDS_PER_PAYMENT_MAX};
use crate::intent::step_key;
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{
    Action, Ending, Failure, Progress, RefundRecord, RefundStatus, Taken,
};
use crate::payments::risk_control::{code_hash, new_code, StepUp, STEP_UP_VALIDITY};
use crate::payments::views::payment_view;
use jiff::Timestamp;
use tally_core::Amount;
use tally_payments::{CaptureMethod, Payment, PaymentError, PaymentStatus, RefundPolicy, Source};

impl PaymentService {
    pub(super) async fn confirm_loaded(
        &self,
        loaded: &mut Loaded,
        input: ConfirmInput,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let status = loaded.record.payment.status;
        match status {
            PaymentStatus::Failed => return Err(declined(&loaded.record)),
            PaymentStatus::Expired => return Err(expired(&loaded.record)),
            status if status.is_reserved() || status.is_paid() => return Ok(()),
            PaymentStatus::Created | PaymentStatus::RequiresAction => {}
            _ => {
                return Err(PaymentError::InvalidTransition {
                    status: status.as_str(),
                    action: "be confirmed",
                }
                .into())
            }
        }
        // A source refused and a crash came before the payment failed: it fails now, its
        // other sources released, rather than reserving the rest.
        let refused = loaded
            .record
            .payment
            .legs
            .iter()
            .any(|leg| leg.status == tally_payments::LegStatus::Failed);
        if let (true, Some(failure)) = (refused, loaded.record.failure.clone()) {
            let code = failure.code.clone();
            self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                .await?;
            return Err(declined(&loaded.record));
        }
        if loaded.record.payment.is_due_to_expire(now) {
            self.end(
                loaded,
                PaymentStatus::Expired,
                "expired before it was confirmed",
                None,
                now,
            )
            .await?;
            return Err(PaymentError::Expired(loaded.record.payment.expires_at.to_string()).into());
        }
        if loaded.record.risk.is_none() {
            if let Some(risk) = self.risk.get() {
                let verdict = self.decide_risk(risk, &loaded.record, &input).await?;
                loaded.record.risk = Some(verdict.clone());
                loaded.stage();
                match verdict.action.as_str() {
                    "reject" => {
                        let failure = Failure {
                            code: "risk_rejected".into(),
                            message: format!(
                                "risk control rejected the payment: {}",
                                verdict.reasons.join(", ")
                            ),
                            leg: None,
                        };
                        self.end(
                            loaded,
                            PaymentStatus::Failed,
                            "risk_rejected",
                            Some(failure),
                            now,
                        )
                        .await?;
                        return Err(declined(&loaded.record));
                    }
                    "step_up" => {
                        let code = new_code();
                        let expires_at = now
                            .checked_add(STEP_UP_VALIDITY)
                            .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
                        loaded.record.step_up = Some(StepUp {
                            code_hash: code_hash(&loaded.record.id, &code),
                            attempts: 0,
                            expires_at,
                        });
                        let cause = format!("step up: {}", verdict.reasons.join(", "));
                        loaded.record.payment.require_action(now, &cause)?;
                        // The code's hash is on disk before the shopper can hold the code.
                        loaded.stage();
                        self.flush(loaded, now, None).await?;
                        self.send_code(&loaded.record.payment.customer, &loaded.record.id, &code);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        if loaded.record.payment.status == PaymentStatus::RequiresAction {
            self.check_code(loaded, input.code.as_deref(), now).await?;
        }
        // Every source is reserved at once: a refusal of any then releases the others, as
        // when one after another had been reserved before it.
        let pending: Vec<usize> = (0..loaded.record.payment.legs.len())
            .filter(|leg| {
                loaded.record.payment.legs[*leg].status == tally_payments::LegStatus::Pending
            })
            .collect();
        let actions = pending
            .iter()
            .map(|leg| Action::Reserve { leg: *leg })
            .collect();
        let taken = self.steps(loaded, actions, now).await?;
        // The first refusal in the order of the sources is the one the shopper hears of.
        let refusal = pending
            .iter()
            .zip(taken)
            .find_map(|(leg, taken)| match taken {
                Taken::Refused { code, message } => Some((*leg, code, message)),
                _ => None,
            });
        if let Some((leg, code, message)) = refusal {
            let failure = Failure {
                code: code.clone(),
                message,
                leg: Some(leg),
            };
            self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                .await?;
            return Err(declined(&loaded.record));
        }
        loaded.record.payment.authorize(now)?;
        let action = loaded.record.risk.as_ref().map(|risk| risk.action.clone());
        match action.as_deref() {
            Some("review") => {
                let case = loaded
                    .record
                    .risk
                    .as_ref()
                    .and_then(|risk| risk.case_id.clone())
                    .unwrap_or_default();
                let cause = format!("risk review, case {case}");
                loaded.record.payment.hold_for_review(now, &cause)?;
                loaded.stage();
                return Ok(());
            }
            Some("hold_delivery") => {
                let case = loaded
                    .record
                    .risk
                    .as_ref()
                    .and_then(|risk| risk.case_id.clone())
                    .unwrap_or_default();
                let cause = format!("risk control held the delivery, case {case}");
                loaded.record.payment.hold_delivery(now, &cause);
            }
            _ => {}
        }
        loaded.stage();
        if loaded.record.payment.capture_method == CaptureMethod::Automatic {
            let amount = loaded.record.payment.amount;
            self.capture_loaded(loaded, Some(amount), now).await?;
        }
        Ok(())
    }

    pub(super) async fn review_loaded(
        &self,
        loaded: &mut Loaded,
        approve: bool,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let status = loaded.record.payment.status;
        if status != PaymentStatus::UnderReview {
            // The same decision again is answered as done.
            let done = if approve {
                status == PaymentStatus::Authorized || status.is_paid()
            } else {
                status == PaymentStatus::Failed
            };
            if done {
                return Ok(());
            }
            return Err(PaymentError::InvalidTransition {
                status: status.as_str(),
                action: "be reviewed",
            }
            .into());
        }
        if approve {
            loaded
                .record
                .payment
                .approve_review(now, "approved by an analyst")?;
            loaded.stage();
            if loaded.record.payment.capture_method == CaptureMethod::Automatic {
                let amount = loaded.record.payment.amount;
                self.capture_loaded(loaded, Some(amount), now).await?;
            }
            Ok(())
        } else {
            let failure = Failure {
                code: "review_rejected".into(),
                message: "an analyst rejected the payment".into(),
                leg: None,
            };
            self.end(
                loaded,
                PaymentStatus::Failed,
                "review_rejected",
                Some(failure),
                now,
            )
            .await
        }
    }

    pub(super) async fn capture_loaded(
        &self,
        loaded: &mut Loaded,
        amount: Option<Amount>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let payment = &loaded.record.payment;
        let amount = amount.unwrap_or(payment.amount);
        if matches!(
            payment.status,
            PaymentStatus::Captured | PaymentStatus::PartiallyCaptured
        ) {
            let captured = Amount::checked_sum(
                payment.amount.currency(),
                payment.legs.iter().map(|leg| &leg.captured),
            )
            .map_err(PaymentError::from)?;
            if captured == amount {
                return Ok(());
            }
        }
        if payment.status == PaymentStatus::Failed {
            return Err(declined(&loaded.record));
        }
        if payment.status == PaymentStatus::Expired {
            return Err(expired(&loaded.record));
        }
        let parts = payment.capture_split(amount, now)?;
        loaded.record.capturing = Some(Progress::new(parts));
        loaded.stage();
        self.drive_capture(loaded, now).await
    }

    pub(super) async fn cancel_loaded(
        &self,
        loaded: &mut Loaded,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let status = loaded.record.payment.status;
        if status == PaymentStatus::Cancelled {
            return Ok(());
        }
        if !(status.is_unreserved() || status.is_reserved()) {
            return Err(PaymentError::InvalidTransition {
                status: status.as_str(),
                action: "be cancelled",
            }
            .into());
        }
        self.end(
            loaded,
            PaymentStatus::Cancelled,
            "cancelled by the merchant",
            None,
            now,
        )
        .await
    }

    pub(super) async fn refund_loaded(
        &self,
        loaded: &mut Loaded,
        request: String,
        amount: Amount,
        policy: RefundPolicy,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let index = match loaded
            .record
            .refunds
            .iter()
            .position(|refund| refund.request == request)
        {
            // A retry of a refund already started: it is continued, not made again.
            Some(index) => index,
            None => {
                if loaded.record.refunds.len() >= REFUNDS_PER_PAYMENT_MAX {
                    return Err(PaymentServiceError::Invalid(format!(
                        "a payment may have at most {REFUNDS_PER_PAYMENT_MAX} refunds"
                    )));
                }
                let parts = loaded.record.payment.refund_split(amount, policy)?;
                loaded.record.payment.refund_started(&parts)?;
                let number = loaded.record.refunds.len() + 1;
                loaded.record.refunds.push(RefundRecord {
                    id: format!("{}_refund_{number}", loaded.record.id),
                    request,
                    amount,
                    policy,
                    progress: Progress::new_refund(parts),
                    status: RefundStatus::Pending,
                    created_at: now,
                    failure: None,
                });
                loaded.stage();
                loaded.record.refunds.len() - 1
            }
        };
        self.drive_refund(loaded, index, now).await?;
        match &loaded.record.refunds[index] {
            refund if refund.status == RefundStatus::Failed => {
                let failure = refund.failure.clone().unwrap_or(Failure {
                    code: "refund_failed".into(),
                    message: "a source refused the refund".into(),
                    leg: None,
                });
                Err(PaymentServiceError::Declined {
                    code: failure.code,
                    message: failure.message,
                    payment: Box::new(payment_view(&loaded.record)),
                })
            }
            _ => Ok(()),
        }
    }

    /// Ends the payment unpaid: the decision is saved, every reserved leg released, then
    /// the payment moves to `to`.
    pub(super) async fn end(
        &self,
        loaded: &mut Loaded,
        to: PaymentStatus,
        cause: &str,
        failure: Option<Failure>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let ending = Ending {
            to,
            cause: cause.to_string(),
        };
        loaded.record.ending = Some(ending.clone());
        if failure.is_some() {
            loaded.record.failure = failure;
        }
        loaded.stage();
        self.drive_end(loaded, &ending, now).await
    }

    pub(super) async fn drive_end(
        &self,
        loaded: &mut Loaded,
        ending: &Ending,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let releases = loaded
            .record
            .payment
            .reserved_legs()
            .into_iter()
            .map(|leg| Action::Release { leg })
            .collect();
        self.steps(loaded, releases, now).await?;
        let to = ending.to;
        let payment = &mut loaded.record.payment;
        // An expiry decided at the deadline stays an expiry even if the release ran later.
        if payment.status.is_unreserved() || payment.status.is_reserved() {
            let allowed_late = to == PaymentStatus::Expired && !payment.is_due_to_expire(now);
            let to = if allowed_late {
                PaymentStatus::Cancelled
            } else {
                to
            };
            payment.end_unpaid(to, now, &ending.cause)?;
        }
        loaded.record.ending = None;
        loaded.stage();
        Ok(())
    }

    /// The order legs are captured in: a card first (the only capture that can be refused,
    /// so that a refusal comes before anything moved), then the credit line, then the
    /// wallet and the vault.
    pub(super) fn capture_order(payment: &Payment) -> Vec<usize> {
        let mut order: Vec<usize> = (0..payment.legs.len()).collect();
        order.sort_by_key(|index| match payment.legs[*index].source {
            Source::Card { .. } => 0,
            Source::CreditLine { .. } => 1,
            Source::Wallet | Source::Vault => 2,
        });
        order
    }

    /// The capture order in rounds taken one after the other, each round's legs side by
    /// side: the cards first, alone, then Tally's own sources together.
    fn capture_rounds(payment: &Payment) -> [Vec<usize>; 2] {
        let (cards, own): (Vec<usize>, Vec<usize>) = Self::capture_order(payment)
            .into_iter()
            .partition(|leg| payment.legs[*leg].source.is_card());
        [cards, own]
    }

    pub(super) async fn drive_capture(
        &self,
        loaded: &mut Loaded,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let Some(progress) = loaded.record.capturing.clone() else {
            return Ok(());
        };
        for round in Self::capture_rounds(&loaded.record.payment) {
            let legs: Vec<usize> = round
                .into_iter()
                .filter(|leg| {
                    loaded
                        .record
                        .capturing
                        .as_ref()
                        .is_some_and(|progress| !progress.done[*leg])
                })
                .collect();
            let actions = legs
                .iter()
                .map(|leg| Action::Capture {
                    leg: *leg,
                    amount: progress.parts[*leg],
                })
                .collect();
            let taken = self.steps(loaded, actions, now).await?;
            let refusal = legs.iter().zip(taken).find_map(|(leg, taken)| match taken {
                Taken::Refused { code, message } => Some((*leg, code, message)),
                _ => None,
            });
            if let Some((leg, code, message)) = refusal {
                let nothing_moved = loaded
                    .record
                    .capturing
                    .as_ref()
                    .is_some_and(|progress| progress.done.iter().all(|done| !done));
                if !nothing_moved {
                    return Err(PaymentServiceError::LedgerRefused {
                        key: step_key(&Self::intent_key(&loaded.record.id), "capture"),
                        message: format!("leg {leg} refused its capture after others were captured: {message} ({code})"),
                    });
                }
                loaded.record.capturing = None;
                let failure = Failure {
                    code: code.clone(),
                    message,
                    leg: Some(leg),
                };
                self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                    .await?;
                return Err(declined(&loaded.record));
            }
        }
        loaded.record.capturing = None;
        loaded
            .record
            .payment
            .captured(&progress.parts, now, "captured")?;
        loaded.stage();
        Ok(())
    }

    pub(super) async fn drive_refund(
        &self,
        loaded: &mut Loaded,
        index: usize,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let refund = loaded.record.refunds[index].clone();
        if refund.status != RefundStatus::Pending {
            return Ok(());
        }
        // Tally's own sources first: they cannot refuse, and the card's refund is last.
        let mut order: Vec<usize> = (0..refund.progress.parts.len()).collect();
        order.sort_by_key(|leg| loaded.record.payment.legs[*leg].source.is_card());
        for leg in order {
            if loaded.record.refunds[index].progress.done[leg] {
                continue;
            }
            let action = Action::Refund {
                refund: refund.id.clone(),
                leg,
                amount: refund.progress.parts[leg],
            };
            if let Taken::Refused { code, message } = self.step(loaded, action, now).await? {
                let progress = &loaded.record.refunds[index].progress;
                let zero = Amount::zero(refund.amount.currency());
                let went: Vec<Amount> = progress
                    .parts
                    .iter()
                    .zip(&progress.done)
                    .map(|(part, done)| if *done { *part } else { zero })
                    .collect();
                let stayed: Vec<Amount> = progress
                    .parts
                    .iter()
                    .zip(&progress.done)
                    .map(|(part, done)| if *done { zero } else { *part })
                    .collect();
                loaded.record.payment.refund_abandoned(&stayed)?;
                loaded
                    .record
                    .payment
                    .refund_finished(&went, now, "refunded in part")?;
                let refund = &mut loaded.record.refunds[index];
                refund.status = RefundStatus::Failed;
                refund.failure = Some(Failure {
                    code,
                    message,
                    leg: Some(leg),
                });
                loaded.stage();
                return Ok(());
            }
        }
        loaded
            .record
            .payment
            .refund_finished(&refund.progress.parts, now, "refunded")?;
        loaded.record.refunds[index].status = RefundStatus::Succeeded;
        loaded.stage();
        Ok(())
    }
}
