//! Risk control of a payment: the risk engine's decision on it as a `transaction` event,
//! and the one-time code a `step_up` decision sends to the shopper.

use super::{declined, ConfirmInput, Loaded, PaymentService};
use crate::consortium::member_client::EventIdentifiers;
use crate::customers::contact_identifiers;
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{Failure, PaymentRecord};
use crate::payments::risk_control::{
    code_hash, same_hash, CodeSink, LogSink, RiskVerdict, StepUp, STEP_UP_ATTEMPTS_MAX,
};
use crate::risk::RiskService;
use jiff::Timestamp;
use tally_payments::{PaymentError, PaymentStatus, Source};
use tally_risk::{Event, EventKind};

impl PaymentService {
    pub(super) fn send_code(&self, customer: &str, payment: &str, code: &str) {
        match self.code_sink.get() {
            Some(sink) => sink.send(customer, payment, code),
            None => LogSink.send(customer, payment, code),
        }
    }

    /// The risk engine's decision on the payment as a `transaction` event (id
    /// `payment:{id}`, dated when the order was created): a retry after a crash sends the
    /// same event and is answered the same decision, never decided twice.
    pub(super) async fn decide_risk(
        &self,
        risk: &RiskService,
        record: &PaymentRecord,
        input: &ConfirmInput,
    ) -> Result<RiskVerdict, PaymentServiceError> {
        let payment = &record.payment;
        let mut event = Event::new(
            format!("payment:{}", record.id),
            EventKind::Transaction,
            payment.created_at,
            payment.customer.clone(),
        );
        event.device = input.device.clone();
        event.ip = input.ip.clone();
        event.merchant = Some(payment.merchant_id.clone());
        event.amount = Some(payment.amount);
        for leg in &payment.legs {
            if let Source::Card { token } = &leg.source {
                event.card = self
                    .database
                    .card(token)
                    .await?
                    .map(|card| card.fingerprint);
            }
        }
        // With a consortium log, the customer's phone and delivery address are looked up
        // with the device (a checkout request carries neither; card numbers never enter
        // Tally, and a card token is no identifier another member could match).
        let identifiers = match (&risk.consortium, self.privacy.get()) {
            (Some(_), Some(privacy)) => {
                contact_identifiers(&self.database, privacy, &payment.customer, None, None).await?
            }
            _ => EventIdentifiers::default(),
        };
        let decided = risk
            .decide_with_identifiers(&event, &identifiers)
            .await
            .map_err(|error| {
                PaymentServiceError::Invalid(format!("risk control: {error} ({})", error.code()))
            })?;
        let action = decided.decision["action"]
            .as_str()
            .unwrap_or("approve")
            .to_string();
        let reasons = decided.decision["reasons"]
            .as_array()
            .map(|reasons| {
                reasons
                    .iter()
                    .filter_map(|reason| reason.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(RiskVerdict {
            action,
            reasons,
            sequence: decided.sequence,
            case_id: decided.case_id,
        })
    }

    /// Checks the one-time code of a payment in `requires_action`: the right one clears the
    /// way; a wrong one counts, and the third fails the payment, as does an expired code.
    pub(super) async fn check_code(
        &self,
        loaded: &mut Loaded,
        code: Option<&str>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let Some(step_up) = loaded.record.step_up.clone() else {
            return Err(PaymentError::Internal("a payment waiting for a code has one").into());
        };
        if now >= step_up.expires_at {
            let failure = Failure {
                code: "step_up_expired".into(),
                message: "the one-time code expired".into(),
                leg: None,
            };
            self.end(
                loaded,
                PaymentStatus::Failed,
                "step_up_expired",
                Some(failure),
                now,
            )
            .await?;
            return Err(declined(&loaded.record));
        }
        let Some(code) = code else {
            return Err(PaymentServiceError::StepUpRequired(
                loaded.record.id.clone(),
            ));
        };
        if same_hash(&code_hash(&loaded.record.id, code), &step_up.code_hash) {
            loaded.record.step_up = None;
            loaded.stage();
            return Ok(());
        }
        let attempts = step_up.attempts + 1;
        if attempts >= STEP_UP_ATTEMPTS_MAX {
            loaded.record.step_up = None;
            let failure = Failure {
                code: "step_up_failed".into(),
                message: format!("{STEP_UP_ATTEMPTS_MAX} wrong one-time codes"),
                leg: None,
            };
            self.end(
                loaded,
                PaymentStatus::Failed,
                "step_up_failed",
                Some(failure),
                now,
            )
            .await?;
            return Err(declined(&loaded.record));
        }
        loaded.record.step_up = Some(StepUp {
            attempts,
            ..step_up
        });
        loaded.stage();
        Err(PaymentServiceError::StepUpCodeWrong {
            payment: loaded.record.id.clone(),
            attempts_left: STEP_UP_ATTEMPTS_MAX - attempts,
        })
    }
}
