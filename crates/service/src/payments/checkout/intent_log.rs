//! The payment's intent log (`payment_steps`): each step is written before it is taken,
//! taken under keys derived from the payment and its sequence, applied to the payment once,
//! then resolved; and recovery, which takes a pending step again before anything else.

use super::{automatic_capture_due, encode, Loaded, PaymentService, RecoveryReport};
use crate::intent::{finish_pending, step_key, PendingIntents};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{Action, Failure, PaymentRecord, RefundStatus, Reservation, Taken};
use jiff::Timestamp;
use tally_payments::{PaymentError, PaymentStatus};
use tally_store::payments::{AppendedStep, PaymentStepRow, ResolvedStep};
use tally_store::StoreError;

/// Why a step could not be taken.
pub(crate) enum StepError {
    /// The outcome is unknown; take it again later.
    Unknown(String),
    /// A failure no retry of the step can mend.
    Fatal(PaymentServiceError),
}

impl From<PaymentServiceError> for StepError {
    fn from(error: PaymentServiceError) -> Self {
        StepError::Fatal(error)
    }
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        StepError::Unknown(error.to_string())
    }
}

/// The steps of one payment left pending by a crash or a lost answer: each is taken again
/// (it acts once under its key) and applied unless the payment already has it.
struct PendingSteps<'a> {
    service: &'a PaymentService,
    loaded: &'a mut Loaded,
    now: Timestamp,
}

impl PendingIntents for PendingSteps<'_> {
    type Intent = PaymentStepRow;
    type Error = PaymentServiceError;

    async fn pending(&mut self) -> Result<Vec<PaymentStepRow>, PaymentServiceError> {
        // The stored payment says whether a step is pending: most requests find none and
        // read no log.
        if self.loaded.steps_tracked && self.loaded.pending_step.is_none() {
            return Ok(Vec::new());
        }
        let steps = self
            .service
            .database
            .payment_steps(&self.loaded.record.id)
            .await?;
        let pending: Vec<PaymentStepRow> = steps
            .into_iter()
            .filter(|step| step.status == "pending")
            .collect();
        self.loaded.pending_step = pending.iter().map(|step| step.sequence).max();
        self.loaded.steps_tracked = true;
        Ok(pending)
    }

    async fn finish(&mut self, step: PaymentStepRow) -> Result<(), PaymentServiceError> {
        let action: Action = serde_json::from_str(&step.action).map_err(|error| {
            StoreError::Corrupt(format!(
                "step {} of {}: {error}",
                step.sequence, step.payment_id
            ))
        })?;
        let record = &mut self.loaded.record;
        record.next_step = record.next_step.max(step.sequence + 1);
        self.loaded.stage();
        self.service
            .take_and_apply(self.loaded, step.sequence, &action, self.now)
            .await?;
        Ok(())
    }
}

impl PaymentService {
    /// Whether the step being taken is the one whose answer the test hook loses.
    pub(super) fn answer_is_lost(&self) -> bool {
        use std::sync::atomic::Ordering;
        let left = self.lose_answer_in.load(Ordering::SeqCst);
        if left < 1 {
            return false;
        }
        self.lose_answer_in.store(left - 1, Ordering::SeqCst);
        left == 1
    }

    /// Finishes what a crash or a lost answer left: the pending step of the intent log, a
    /// capture or an unpaid end in progress, refunds in progress; and expires the payment
    /// if its deadline has passed.
    pub(super) async fn settle(
        &self,
        loaded: &mut Loaded,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        finish_pending(&mut PendingSteps {
            service: self,
            loaded,
            now,
        })
        .await?;
        // The pending step was a source's refusal (its answer lost before, a crash): the
        // payment fails now and its other sources are released, as the confirm that took
        // the step would have done, rather than held until the payment expires.
        let refused = loaded
            .record
            .payment
            .legs
            .iter()
            .any(|leg| leg.status == tally_payments::LegStatus::Failed);
        if matches!(
            loaded.record.payment.status,
            PaymentStatus::Created | PaymentStatus::RequiresAction
        ) && refused
            && loaded.record.ending.is_none()
        {
            if let Some(failure) = loaded.record.failure.clone() {
                let code = failure.code.clone();
                self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                    .await?;
            }
        }
        if loaded.record.capturing.is_some() {
            self.drive_capture(loaded, now).await?;
        }
        if let Some(ending) = loaded.record.ending.clone() {
            self.drive_end(loaded, &ending, now).await?;
        }
        for index in 0..loaded.record.refunds.len() {
            if loaded.record.refunds[index].status == RefundStatus::Pending {
                self.drive_refund(loaded, index, now).await?;
            }
        }
        // Authorised with automatic capture: a crash came between the two.
        if automatic_capture_due(&loaded.record.payment) && loaded.record.capturing.is_none() {
            let amount = loaded.record.payment.amount;
            self.capture_loaded(loaded, Some(amount), now).await?;
        }
        let payment = &loaded.record.payment;
        if payment.is_due_to_expire(now) && loaded.record.capturing.is_none() {
            self.end(loaded, PaymentStatus::Expired, "expired", None, now)
                .await?;
        }
        Ok(())
    }

    /// Finishes the work left mid-way on payment `id` (its pending step first), as recovery
    /// does for each payment it finds.
    pub(crate) async fn settle_payment(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let _guard = self.stripe(id).lock().await;
        let mut loaded = self.load(id).await?;
        let settled = self.settle(&mut loaded, now).await;
        self.flush(&mut loaded, now, None).await?;
        settled
    }

    /// Finishes the work of payments left mid-way and expires those past their deadline,
    /// up to `limit` payments.
    pub async fn recover(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<RecoveryReport, PaymentServiceError> {
        let mut report = RecoveryReport::default();
        for id in self.database.payments_to_recover(now, limit).await? {
            report.examined += 1;
            let _guard = self.stripe(&id).lock().await;
            let mut loaded = self.load(&id).await?;
            let settled = self.settle(&mut loaded, now).await;
            let settled = match self.flush(&mut loaded, now, None).await {
                Ok(()) => settled,
                Err(error) => Err(error),
            };
            match settled {
                Ok(()) => report.settled += 1,
                Err(PaymentServiceError::InFlight { .. }) => report.in_flight += 1,
                Err(error) => {
                    tracing::warn!(payment = %id, code = error.code(), %error, "payment recovery stopped");
                    report.in_flight += 1;
                }
            }
        }
        Ok(report)
    }

    /// Takes a new step of the intent log (see the module documentation).
    pub(super) async fn step(
        &self,
        loaded: &mut Loaded,
        action: Action,
        now: Timestamp,
    ) -> Result<Taken, PaymentServiceError> {
        let sequence = Self::append_step(loaded, &action)?;
        loaded.stage();
        // The step is on disk, with everything decided before it, before it is taken.
        self.flush(loaded, now, None).await?;
        self.take_and_apply(loaded, sequence, &action, now).await
    }

    /// Takes several steps side by side (the legs of a payment reserved or captured at
    /// once): all are written as pending in one write before any is taken, taken together,
    /// then applied one by one in their order. Each acts once under its own key, as a step
    /// taken alone does. When one's outcome is unknown, the ones before it are applied and
    /// it and those after it stay pending: recovery takes them again in order (each acts
    /// once under its key), so the record applies every step in sequence.
    pub(super) async fn steps(
        &self,
        loaded: &mut Loaded,
        actions: Vec<Action>,
        now: Timestamp,
    ) -> Result<Vec<Taken>, PaymentServiceError> {
        if actions.len() <= 1 {
            let mut taken = Vec::with_capacity(1);
            for action in actions {
                taken.push(self.step(loaded, action, now).await?);
            }
            return Ok(taken);
        }
        let mut sequences = Vec::with_capacity(actions.len());
        for action in &actions {
            sequences.push(Self::append_step(loaded, action)?);
        }
        loaded.stage();
        self.flush(loaded, now, None).await?;
        let intent = Self::intent_key(&loaded.record.id);
        let record = &loaded.record;
        let results = futures_util::future::join_all(actions.iter().zip(&sequences).map(
            |(action, sequence)| {
                let key = step_key(&intent, *sequence);
                async move { self.take(record, &key, action, now).await }
            },
        ))
        .await;
        let mut taken = Vec::with_capacity(actions.len());
        for ((action, sequence), result) in actions.iter().zip(sequences).zip(results) {
            taken.push(self.apply_taken(loaded, sequence, action, result)?);
        }
        Ok(taken)
    }

    /// Numbers `action` as the payment's next step and queues it to be written as pending.
    fn append_step(loaded: &mut Loaded, action: &Action) -> Result<i64, PaymentServiceError> {
        let sequence = loaded.record.next_step;
        loaded.record.next_step += 1;
        loaded.append.push(AppendedStep {
            sequence,
            action: encode(action, "step")?,
        });
        loaded.pending_step = Some(sequence);
        Ok(sequence)
    }

    pub(super) async fn take_and_apply(
        &self,
        loaded: &mut Loaded,
        sequence: i64,
        action: &Action,
        now: Timestamp,
    ) -> Result<Taken, PaymentServiceError> {
        let key = step_key(&Self::intent_key(&loaded.record.id), sequence);
        let result = self.take(&loaded.record, &key, action, now).await;
        self.apply_taken(loaded, sequence, action, result)
    }

    /// Applies what taking step `sequence` answered: the payment changes once, and the step
    /// is resolved with the payment's next write; an unknown outcome leaves it pending.
    fn apply_taken(
        &self,
        loaded: &mut Loaded,
        sequence: i64,
        action: &Action,
        result: Result<Taken, StepError>,
    ) -> Result<Taken, PaymentServiceError> {
        let result = match result {
            Ok(_) if self.answer_is_lost() => Err(StepError::Unknown(
                "the answer was lost after the step acted (test hook)".into(),
            )),
            other => other,
        };
        let taken = match result {
            Ok(taken) => taken,
            Err(StepError::Unknown(reason)) => {
                // The step stays pending; the sequence taken is on disk already, so the
                // next step does not reuse it.
                return Err(PaymentServiceError::InFlight {
                    payment: loaded.record.id.clone(),
                    reason,
                });
            }
            Err(StepError::Fatal(error)) => return Err(error),
        };
        if sequence > loaded.applied_through {
            apply(&mut loaded.record, action, &taken)?;
            loaded.applied_through = sequence;
            loaded.stage();
        }
        let status = if matches!(taken, Taken::Refused { .. }) {
            "refused"
        } else {
            "done"
        };
        // Written with the payment's next change (the next step's intent, or the answer).
        loaded.resolved.push(ResolvedStep {
            sequence,
            status: status.to_string(),
            outcome: encode(&taken, "step outcome")?,
        });
        // With steps taken side by side the last one's sequence marks them pending: the
        // mark goes once that one, applied last, is resolved.
        if loaded.pending_step == Some(sequence) {
            loaded.pending_step = None;
        }
        Ok(taken)
    }
}

/// Applies what a step did to the payment.
fn apply(
    record: &mut PaymentRecord,
    action: &Action,
    taken: &Taken,
) -> Result<(), PaymentServiceError> {
    let payment = &mut record.payment;
    match (action, taken) {
        (Action::Reserve { leg }, Taken::Reserved { reservation }) => {
            record.reservations[*leg] = Some(reservation.clone());
            payment.leg_reserved(*leg)?;
        }
        (Action::Reserve { leg }, Taken::Refused { code, message }) => {
            payment.leg_failed(*leg)?;
            record.failure = Some(Failure {
                code: code.clone(),
                message: message.clone(),
                leg: Some(*leg),
            });
        }
        (Action::Release { leg }, Taken::Released) => {
            if payment.legs[*leg].status == tally_payments::LegStatus::Reserved {
                payment.leg_released(*leg)?;
            }
        }
        (Action::Capture { leg, .. }, Taken::Captured { plan }) => {
            if let Some(progress) = record.capturing.as_mut() {
                progress.done[*leg] = true;
            }
            if let (Some(plan), Some(Some(Reservation::Credit { plan: slot, .. }))) =
                (plan, record.reservations.get_mut(*leg))
            {
                *slot = Some(*plan);
            }
        }
        (Action::Refund { refund, leg, .. }, Taken::Refunded) => {
            if let Some(found) = record.refunds.iter_mut().find(|found| &found.id == refund) {
                found.progress.done[*leg] = true;
            }
        }
        // A refused capture or refund changes nothing here; the flow that took it decides.
        (_, Taken::Refused { .. }) => {}
        _ => return Err(PaymentError::Internal("a step's outcome does not fit its action").into()),
    }
    Ok(())
}
