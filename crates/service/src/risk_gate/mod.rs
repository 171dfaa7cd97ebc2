//! Risk on every link: credit activation, every credit authorisation and every customer
//! profile change is decided by the risk engine before it takes effect, and the decision's
//! action is enforced.
//!
//! - `approve`: the operation goes on.
//! - `reject`: refused ([`GateError::Rejected`], `risk_rejected`) with the decision's reason
//!   codes; nothing took effect.
//! - `step_up`: the operation is held (a [`HeldOperationRow`] under the event's id) and a
//!   one-time code goes to the customer through the [`CodeSink`] payments use, with the same
//!   rules (`payments::risk_control`: six digits, kept only as a hash bound to the operation,
//!   ten minutes, three wrong codes end it); the right code completes it.
//! - `review`: held likewise until the case the engine opened is decided: approving it
//!   completes the operation, rejecting it refuses it (`risk_review_rejected`).
//! - `hold_delivery`: the operation goes on and its answer says the delivery is held, with
//!   the case.
//!
//! Exactly once: the event id is derived from the operation's idempotency key (and account
//! or customer), so a retry decides the stored event again (the risk service answers its
//! first decision without counting it twice) and finds the held operation; a held operation
//! is completed under the request's own idempotency key (credit operations replay it) and
//! moved by compare-and-set, so two completions do it once.
//!
//! Money out is gated too ([`payout`]): merchant payouts, wallet withdrawals and the
//! scheduled payouts after settlement are `payout` events decided before money moves, and
//! so are customers' credit-balance payouts ([`credit_payout`]).

pub mod credit;
pub mod credit_payout;
pub mod payout;
pub mod profile;

use crate::caller::Caller;
use crate::consortium::member_client::EventIdentifiers;
use crate::credit::decision::CreditService;
use crate::credit::operations::OperationError;
use crate::customers::contact_identifiers;
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::payouts::PayoutServiceError;
use crate::payments::risk_control::{
    code_hash, new_code, same_hash, CodeSink, LogSink, STEP_UP_ATTEMPTS_MAX, STEP_UP_VALIDITY,
};
use crate::risk::{RiskRequestError, RiskService};
use jiff::Timestamp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tally_core::Clock;
use tally_privacy::Privacy;
use tally_risk::Event;
use tally_store::held_operations::HeldOperationRow;
use tally_store::{Database, StoreError};

/// Why a gated operation was refused or could not be decided; [`GateError::code`] is its
/// stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    #[error("risk control rejected the operation (event {event_id}): {}", reasons.join(", "))]
    Rejected {
        event_id: String,
        reasons: Vec<String>,
    },
    #[error("customer {0} is not a Tally customer")]
    CustomerUnknown(String),
    #[error("idempotency key {0:?} was already used for a different request")]
    KeyReused(String),
    #[error("no held operation {0}")]
    HeldNotFound(String),
    #[error("held operation {id} is {status}: it takes no one-time code")]
    NotWaitingForCode { id: String, status: String },
    #[error("wrong one-time code for held operation {id}; {attempts_left} attempts left")]
    CodeWrong { id: String, attempts_left: i64 },
    /// The held operation ended refused (a third wrong code, an expired code, a rejected
    /// review, or the operation itself refused when it was completed): its stored refusal.
    #[error("{message}")]
    Ended { code: String, message: String },
    #[error("fingerprinting an address for risk control needs personal-data keys, and none are configured")]
    PrivacyKeysNotConfigured,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Risk(#[from] RiskRequestError),
    #[error(transparent)]
    Operation(#[from] OperationError),
    /// The credit decision could not decide the application (see its code).
    #[error(transparent)]
    Opening(crate::credit::opening::OpeningError),
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    /// A merchant payout refused by the payment service (see its code).
    #[error(transparent)]
    Payout(#[from] PayoutServiceError),
    /// A wallet withdrawal refused by the payment service (see its code).
    #[error(transparent)]
    Payment(#[from] PaymentServiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GateError {
    /// The stable error code.
    pub fn code(&self) -> &str {
        match self {
            GateError::Rejected { .. } => "risk_rejected",
            GateError::CustomerUnknown(_) => "customer_unknown",
            GateError::KeyReused(_) => "idempotency_key_reused",
            GateError::HeldNotFound(_) => "risk_held_operation_not_found",
            GateError::NotWaitingForCode { .. } => "risk_held_operation_not_waiting_for_code",
            GateError::CodeWrong { .. } => "step_up_code_wrong",
            GateError::Ended { code, .. } => code,
            GateError::PrivacyKeysNotConfigured => "privacy_keys_not_configured",
            GateError::Invalid(_) => "invalid_request",
            GateError::Risk(error) => error.code(),
            GateError::Operation(error) => error.code(),
            GateError::Opening(error) => error.code(),
            GateError::Profile(error) => error.code(),
            GateError::Payout(error) => error.code(),
            GateError::Payment(error) => error.code(),
            GateError::Store(_) => "internal",
        }
    }
}

/// What the request tells about who acts and where, beside the customer: the event's device,
/// IP and the address (in clear here; the event carries only its keyed fingerprint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub device: Option<String>,
    pub ip: Option<String>,
    pub address: Option<String>,
}

/// The engine's decision as the gate acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub event_id: String,
    pub action: String,
    pub reasons: Vec<String>,
    pub case_id: Option<String>,
}

impl Verdict {
    /// What an answer carries about the decision when it changed something (a held
    /// delivery): the action, the reasons and the case.
    pub fn marking(&self) -> Value {
        json!({ "action": self.action, "case_id": self.case_id, "reasons": self.reasons })
    }
}

/// What the gate decided for one operation.
#[derive(Debug, Clone)]
pub enum Passage {
    /// Go on (approved, or delivery held: see the verdict).
    Proceed(Verdict),
    /// Held: waiting for a one-time code or a review.
    Held(Box<HeldOperationRow>),
    /// A held operation completed earlier under this request: its stored answer.
    Completed(Value),
}

/// One operation to decide: its event (id derived from the request), what it is, and what
/// to do when a held one is let through.
pub(crate) struct Guarded<'a> {
    pub event: Event,
    pub kind: &'static str,
    pub key: &'a str,
    pub request_hash: &'a str,
    pub operation: Value,
    pub caller: &'a Caller,
    /// What the decision looks up in the consortium log besides the device.
    pub identifiers: EventIdentifiers,
}

/// The risk engine in front of credit and customer operations.
pub struct RiskGate {
    pub risk: Arc<RiskService>,
    pub database: Database,
    pub clock: Arc<dyn Clock>,
    pub privacy: Option<Arc<Privacy>>,
    pub credit: Option<Arc<CreditService>>,
    /// The payment service whose payouts and withdrawals are gated.
    pub payments: Option<Arc<PaymentService>>,
    codes: Arc<dyn CodeSink>,
}

impl std::fmt::Debug for RiskGate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RiskGate")
            .field("credit", &self.credit.is_some())
            .finish_non_exhaustive()
    }
}

/// An event id from its parts: a prefix naming the operation, then a SHA-256 of the rest
/// (idempotency keys are up to 255 characters, event ids 256).
pub fn event_id(prefix: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0x1f]);
    }
    format!("{prefix}:{}", hex::encode(hash.finalize()))
}

impl RiskGate {
    pub fn new(
        risk: Arc<RiskService>,
        database: Database,
        clock: Arc<dyn Clock>,
        privacy: Option<Arc<Privacy>>,
        credit: Option<Arc<CreditService>>,
    ) -> Self {
        RiskGate {
            risk,
            database,
            clock,
            privacy,
            credit,
            payments: None,
            codes: Arc::new(LogSink),
        }
    }

    /// Gates the payouts and withdrawals of `payments` too.
    pub fn with_payments(mut self, payments: Option<Arc<PaymentService>>) -> Self {
        self.payments = payments;
        self
    }

    /// Where one-time codes go (the log by default).
    pub fn with_code_sink(mut self, codes: Arc<dyn CodeSink>) -> Self {
        self.codes = codes;
        self
    }

    /// The keyed fingerprint of an address: trimmed, inner white space collapsed, lower case.
    pub fn address_fingerprint(&self, address: &str) -> Result<String, GateError> {
        let privacy = self
            .privacy
            .as_deref()
            .ok_or(GateError::PrivacyKeysNotConfigured)?;
        // The engine sees the same fingerprint for the same address, never the address.
        privacy
            .address_fingerprint(address)
            .ok_or_else(|| GateError::Invalid("an address must not be blank".into()))
    }

    /// Sets the event's device, IP and address fingerprint from `subject`.
    pub(crate) fn describe(&self, event: &mut Event, subject: &Subject) -> Result<(), GateError> {
        event.device = subject.device.clone();
        event.ip = subject.ip.clone();
        event.address = subject
            .address
            .as_deref()
            .map(|address| self.address_fingerprint(address))
            .transpose()?;
        Ok(())
    }

    /// What a decision on an event about `customer` looks up in the consortium log besides
    /// the device, when Tally is a member: the operation's delivery address (`subject`) or
    /// else the customer's, and `phone` (a new phone) or else the customer's
    /// ([`contact_identifiers`]). Nothing without a consortium log or personal-data keys.
    pub(crate) async fn contact(
        &self,
        customer: &str,
        subject: &Subject,
        phone: Option<&str>,
    ) -> Result<EventIdentifiers, GateError> {
        match (&self.risk.consortium, self.privacy.as_deref()) {
            (Some(_), Some(privacy)) => Ok(contact_identifiers(
                &self.database,
                privacy,
                customer,
                subject.address.as_deref(),
                phone,
            )
            .await?),
            _ => Ok(EventIdentifiers::default()),
        }
    }

    /// Refuses a customer id that names no Tally customer.
    pub async fn check_customer(&self, customer: &str) -> Result<(), GateError> {
        if self.database.customer_exists(customer).await? {
            Ok(())
        } else {
            Err(GateError::CustomerUnknown(customer.to_string()))
        }
    }

    /// Decides `guarded`: a held operation already under its event id answers as it stands;
    /// otherwise the engine decides and the action is enforced (see the module).
    pub(crate) async fn pass(&self, guarded: Guarded<'_>) -> Result<Passage, GateError> {
        if let Some(held) = self.database.held_operation(&guarded.event.id).await? {
            return self.as_it_stands(held, guarded.request_hash);
        }
        let verdict = self.decide(&guarded.event, &guarded.identifiers).await?;
        match verdict.action.as_str() {
            "reject" => Err(GateError::Rejected {
                event_id: verdict.event_id,
                reasons: verdict.reasons,
            }),
            "step_up" | "review" => Ok(Passage::Held(Box::new(
                self.hold(&guarded, &verdict).await?,
            ))),
            _ => Ok(Passage::Proceed(verdict)),
        }
    }

    /// A held operation found again under its event id, for a request with `request_hash`.
    fn as_it_stands(
        &self,
        held: HeldOperationRow,
        request_hash: &str,
    ) -> Result<Passage, GateError> {
        if held.request_hash != request_hash {
            return Err(GateError::KeyReused(held.idempotency_key));
        }
        match held.status.as_str() {
            "completed" => Ok(Passage::Completed(stored_outcome(&held)?)),
            "refused" => Err(ended(&held)?),
            _ => Ok(Passage::Held(Box::new(held))),
        }
    }

    /// The engine's decision on `event`. An event stored under its id before (a retry after
    /// a crash) is decided as stored, so the retry gets the first decision, counted once.
    async fn decide(
        &self,
        event: &Event,
        identifiers: &EventIdentifiers,
    ) -> Result<Verdict, GateError> {
        let event = match self.risk.store.event_by_id(&event.id).await? {
            Some(row) => Event::from_json(&row.body).map_err(RiskRequestError::Refused)?,
            None => event.clone(),
        };
        let decided = self
            .risk
            .decide_with_identifiers(&event, identifiers)
            .await?;
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
        Ok(Verdict {
            event_id: event.id.clone(),
            action,
            reasons,
            case_id: decided.case_id,
        })
    }

    /// The engine's first decision on event `id` if it was decided (a replayed request
    /// answers as the first time, marks included); counted once.
    pub(crate) async fn stored_verdict(&self, id: &str) -> Result<Option<Verdict>, GateError> {
        let Some(row) = self.risk.store.event_by_id(id).await? else {
            return Ok(None);
        };
        let event = Event::from_json(&row.body).map_err(RiskRequestError::Refused)?;
        Ok(Some(
            self.decide(&event, &EventIdentifiers::default()).await?,
        ))
    }

    /// Stores the operation as held by `verdict` (step-up: with a new code, sent once the
    /// row is stored; review: with its case).
    async fn hold(
        &self,
        guarded: &Guarded<'_>,
        verdict: &Verdict,
    ) -> Result<HeldOperationRow, GateError> {
        let now = self.clock.now();
        let step_up = verdict.action == "step_up";
        let code = step_up.then(new_code);
        let expires_at = if step_up {
            Some(
                now.checked_add(STEP_UP_VALIDITY)
                    .map_err(|error| GateError::Invalid(error.to_string()))?,
            )
        } else {
            None
        };
        let row = HeldOperationRow {
            id: guarded.event.id.clone(),
            kind: guarded.kind.to_string(),
            idempotency_key: guarded.key.to_string(),
            request_hash: guarded.request_hash.to_string(),
            customer_id: guarded.event.customer.clone(),
            operation: guarded.operation.to_string(),
            action: verdict.action.clone(),
            reasons: json!(verdict.reasons).to_string(),
            case_id: verdict.case_id.clone(),
            code_hash: code
                .as_deref()
                .map(|code| code_hash(&guarded.event.id, code)),
            attempts: 0,
            code_expires_at: expires_at,
            status: if step_up {
                "waiting_for_code"
            } else {
                "under_review"
            }
            .into(),
            outcome: None,
            api_key_id: guarded.caller.key_id.clone(),
            principal: guarded.caller.name.clone(),
            created_at: now,
            updated_at: now,
        };
        if !self.database.insert_held_operation(&row).await? {
            // A concurrent request under the same key held it first.
            let stored = self
                .database
                .held_operation(&row.id)
                .await?
                .ok_or_else(|| GateError::HeldNotFound(row.id.clone()))?;
            return match self.as_it_stands(stored, guarded.request_hash)? {
                Passage::Held(held) => Ok(*held),
                _ => Err(GateError::HeldNotFound(row.id)),
            };
        }
        if let Some(code) = code {
            self.codes.send(&row.customer_id, &row.id, &code);
        }
        Ok(row)
    }

    /// The held operation `id`.
    pub async fn held(&self, id: &str) -> Result<HeldOperationRow, GateError> {
        self.database
            .held_operation(id)
            .await?
            .ok_or_else(|| GateError::HeldNotFound(id.to_string()))
    }

    /// Checks the one-time code of held operation `id`: the right one completes the
    /// operation and answers what it answered; a wrong one counts, and the third, like an
    /// expired code, ends it refused.
    pub async fn enter_code(&self, id: &str, code: &str) -> Result<Value, GateError> {
        let held = self.held(id).await?;
        match held.status.as_str() {
            "completed" => return stored_outcome(&held),
            "refused" => return Err(ended(&held)?),
            "waiting_for_code" => {}
            other => {
                return Err(GateError::NotWaitingForCode {
                    id: id.to_string(),
                    status: other.to_string(),
                })
            }
        }
        let now = self.clock.now();
        if held.code_expires_at.is_some_and(|deadline| now >= deadline) {
            return Err(self
                .refuse(&held, "step_up_expired", "the one-time code expired", now)
                .await?);
        }
        let expected = held.code_hash.clone().unwrap_or_default();
        if same_hash(&code_hash(&held.id, code), &expected) {
            return self.complete(&held, now).await;
        }
        let attempts = held.attempts + 1;
        if attempts >= i64::from(STEP_UP_ATTEMPTS_MAX) {
            let message = format!("{STEP_UP_ATTEMPTS_MAX} wrong one-time codes");
            return Err(self.refuse(&held, "step_up_failed", &message, now).await?);
        }
        let counted = HeldOperationRow {
            attempts,
            updated_at: now,
            ..held.clone()
        };
        if !self
            .database
            .move_held_operation(&counted, &held.status, held.attempts)
            .await?
        {
            // Another code for the same operation was checked meanwhile: judge this one
            // against the row as it is now.
            return Box::pin(self.enter_code(id, code)).await;
        }
        Err(GateError::CodeWrong {
            id: id.to_string(),
            attempts_left: i64::from(STEP_UP_ATTEMPTS_MAX) - attempts,
        })
    }

    /// Case `case_id` was decided: the operations it held are completed (approved) or
    /// refused (rejected). Each is moved once, whoever gets there first. The number moved.
    pub async fn case_decided(&self, case_id: &str, approved: bool) -> Result<usize, GateError> {
        let held = self.database.held_operations_of_case(case_id).await?;
        let now = self.clock.now();
        let mut moved = 0;
        for operation in &held {
            let result = if approved {
                self.complete(operation, now).await.map(|_| ())
            } else {
                if operation.kind == "credit_authorization" && operation.status == "under_review" {
                    self.release_authorization(operation, now).await?;
                }
                let message = format!("the analyst rejected it (case {case_id})");
                Err(self
                    .refuse(operation, "risk_review_rejected", &message, now)
                    .await?)
            };
            match result {
                // The operation's own refusal on completion is its outcome, not a failure.
                Ok(()) | Err(GateError::Ended { .. }) => moved += 1,
                Err(error) => return Err(error),
            }
        }
        Ok(moved)
    }

    /// Runs the held operation and stores what it answered (or the refusal it met).
    async fn complete(&self, held: &HeldOperationRow, now: Timestamp) -> Result<Value, GateError> {
        let done = match held.kind.as_str() {
            "credit_authorization" => self.complete_authorization(held, now).await,
            "credit_activation" => self.complete_activation(held, now).await,
            "profile_change" => self.complete_profile_change(held, now).await,
            "payout" | "scheduled_payout" => self.complete_payout(held, now).await,
            "withdrawal" => self.complete_withdrawal(held, now).await,
            other => Err(GateError::Invalid(format!(
                "held operation {} is of unknown kind {other}",
                held.id
            ))),
        };
        match done {
            Ok(outcome) => {
                let finished = HeldOperationRow {
                    status: "completed".into(),
                    outcome: Some(outcome.to_string()),
                    updated_at: now,
                    ..held.clone()
                };
                if !self
                    .database
                    .move_held_operation(&finished, &held.status, held.attempts)
                    .await?
                {
                    // Completed by another request: the operation replayed its answer.
                    return stored_outcome(&self.held(&held.id).await?);
                }
                Ok(outcome)
            }
            // Storage or the risk engine failing is not the operation's answer: it stays
            // held, and the next code or case move tries again.
            Err(
                error @ (GateError::Store(_)
                | GateError::Operation(
                    OperationError::Store(_) | OperationError::LedgerUnavailable(_),
                )),
            ) => Err(error),
            Err(error) if payout::retryable(&error) => Err(error),
            Err(error) => {
                let code = error.code().to_string();
                Err(self.refuse(held, &code, &error.to_string(), now).await?)
            }
        }
    }

    /// Ends a held operation refused with `code` and `message`; the error to answer.
    async fn refuse(
        &self,
        held: &HeldOperationRow,
        code: &str,
        message: &str,
        now: Timestamp,
    ) -> Result<GateError, GateError> {
        let refused = HeldOperationRow {
            status: "refused".into(),
            outcome: Some(json!({ "code": code, "message": message }).to_string()),
            updated_at: now,
            ..held.clone()
        };
        if !self
            .database
            .move_held_operation(&refused, &held.status, held.attempts)
            .await?
        {
            let now_stored = self.held(&held.id).await?;
            return match now_stored.status.as_str() {
                "refused" => ended(&now_stored),
                "completed" => Err(GateError::Invalid(format!(
                    "held operation {} was completed meanwhile",
                    held.id
                ))),
                _ => Err(GateError::Invalid(format!(
                    "held operation {} moved meanwhile; try again",
                    held.id
                ))),
            };
        }
        ended(&refused)
    }
}

/// The answer a completed held operation stored.
fn stored_outcome(held: &HeldOperationRow) -> Result<Value, GateError> {
    let text = held.outcome.as_deref().unwrap_or("null");
    serde_json::from_str(text).map_err(|error| {
        StoreError::Corrupt(format!("outcome of held operation {}: {error}", held.id)).into()
    })
}

/// The refusal a refused held operation stored, as the error to answer.
fn ended(held: &HeldOperationRow) -> Result<GateError, GateError> {
    let outcome = stored_outcome(held)?;
    Ok(GateError::Ended {
        code: outcome["code"].as_str().unwrap_or("internal").to_string(),
        message: outcome["message"].as_str().unwrap_or_default().to_string(),
    })
}
