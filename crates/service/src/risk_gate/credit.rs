//! Credit behind the risk gate: a purchase authorisation is a `credit_authorization` event
//! (its own kind, so rules and velocity features tell a purchase on a line from a checkout's
//! whole order, a `transaction`) and opening a line a `credit_activation` event, decided
//! after the credit decision approved it and before the account is opened.
//!
//! The event's customer is the account's Tally customer (`credit-account:{id}` for an
//! account opened without one). Its id is derived from the account and the idempotency key
//! (`credit-authorization:…`) or the key (`credit-activation:…`).

use super::{event_id, GateError, Guarded, Passage, RiskGate, Subject};
use crate::caller::Caller;
use crate::credit::commands::{CreditCommand, AUTHORIZATION_DAYS_DEFAULT};
use crate::credit::decision::{CreditDecision, CreditService};
use crate::credit::opening::{Application, OpeningError};
use crate::credit::operations::{Answer, AnswerKind, OperationError};
use crate::credit::views::AccountView;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tally_core::Amount;
use tally_credit::{Account, Cycle};
use tally_privacy::Privacy;
use tally_risk::{Event, EventKind};
use tally_store::credit::CreditAccountId;
use tally_store::held_operations::HeldOperationRow;
use tally_store::risk::RiskStore;
use tally_store::StoreError;

/// A gated operation's result: its answer, or held (see the row's status).
#[derive(Debug, Clone)]
pub enum Gated {
    Done(Answer),
    Held(Box<HeldOperationRow>),
}

/// A purchase to authorise on account `account` under idempotency key `key`.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    pub account: CreditAccountId,
    pub amount: Amount,
    pub expires_on: Option<Date>,
    pub merchant_reference: Option<String>,
    pub subject: Subject,
    pub caller: &'a Caller,
}

/// A held authorisation: what to authorise when it is let through.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldAuthorization {
    account: CreditAccountId,
    amount: Amount,
    expires_on: Option<Date>,
    merchant_reference: Option<String>,
}

/// A held activation: the account the credit decision approved, and the answer to give
/// with the account's view in `account`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldActivation {
    customer_id: String,
    limit: Amount,
    statement_day: i8,
    due_days: i32,
    pricing_tier: Option<String>,
    answer: Value,
}

/// A credit answer as a held operation stores it.
pub(super) fn stored_answer(answer: &Answer) -> Value {
    let kind = match answer.kind {
        AnswerKind::Created => "created",
        AnswerKind::Done => "done",
    };
    json!({ "kind": kind, "body": answer.body })
}

/// The credit answer a held operation stored.
pub fn answer_of(stored: Value) -> Answer {
    let kind = match stored["kind"].as_str() {
        Some("created") => AnswerKind::Created,
        _ => AnswerKind::Done,
    };
    Answer {
        kind,
        body: stored["body"].clone(),
    }
}

fn corrupt(held: &HeldOperationRow, error: impl std::fmt::Display) -> GateError {
    StoreError::Corrupt(format!("held operation {}: {error}", held.id)).into()
}

impl RiskGate {
    fn credit_service(&self) -> Result<&CreditService, GateError> {
        self.credit.as_deref().ok_or_else(|| {
            GateError::Invalid("the credit service is not running in this process".into())
        })
    }

    /// The credit business date now.
    fn credit_today(&self, credit: &CreditService, now: Timestamp) -> Date {
        now.to_zoned(credit.time_zone.clone()).date()
    }

    /// Authorises a purchase once the risk engine let it through (see the module).
    pub async fn authorize(&self, request: AuthorizationRequest<'_>) -> Result<Gated, GateError> {
        let credit = self.credit_service()?;
        let operations = &credit.operations;
        let now = self.clock.now();
        let id = event_id(
            "credit-authorization",
            &[&request.account.to_string(), request.key],
        );
        // The held operation first: a parked authorisation has reserved its credit under the
        // request's key, and a retry must still answer that it is held.
        if let Some(held) = self.database.held_operation(&id).await? {
            return match self.as_it_stands(held, request.request_hash)? {
                Passage::Held(held) => Ok(Gated::Held(held)),
                Passage::Completed(stored) => Ok(Gated::Done(answer_of(stored))),
                Passage::Proceed(_) => Err(GateError::HeldNotFound(id)),
            };
        }
        if let Some(mut answer) = operations
            .replayed(request.key, request.request_hash)
            .await?
        {
            // The same answer as the first time: the delivery hold is the stored decision's.
            if let Some(verdict) = self.stored_verdict(&id).await? {
                mark_held_delivery(&mut answer, &verdict);
            }
            return Ok(Gated::Done(answer));
        }
        let stored = operations.load(request.account).await?;
        // A blocked customer is refused as before the gate, with its own code.
        if let Some(customer) = &stored.customer_id {
            if RiskStore::new(self.database.clone())
                .customer_blocked(customer, now.as_microsecond())
                .await?
            {
                return Err(OperationError::CustomerBlocked(customer.clone()).into());
            }
        }
        // The credit rules first, on a copy: a purchase they refuse (credit insufficient, a
        // frozen or closed line) is refused with their code, and no purchase that cannot
        // happen feeds the velocity features (it would look like a bust-out).
        let today = self.credit_today(credit, now);
        let expires_on = match request.expires_on {
            Some(day) => day,
            None => today
                .checked_add(AUTHORIZATION_DAYS_DEFAULT.days())
                .map_err(|error| GateError::Invalid(error.to_string()))?,
        };
        stored
            .account
            .clone()
            .authorize_purchase_at(
                now,
                today,
                request.amount,
                expires_on,
                request.key.to_string(),
            )
            .map_err(OperationError::from)?;
        let customer = stored
            .customer_id
            .unwrap_or_else(|| format!("credit-account:{}", request.account));
        let mut event = Event::new(id, EventKind::CreditAuthorization, now, customer);
        self.describe(&mut event, &request.subject)?;
        let identifiers = self
            .contact(&event.customer, &request.subject, None)
            .await?;
        event.amount = Some(request.amount);
        let operation = HeldAuthorization {
            account: request.account,
            amount: request.amount,
            expires_on: request.expires_on,
            merchant_reference: request.merchant_reference.clone(),
        };
        let passage = self
            .pass(Guarded {
                event,
                kind: "credit_authorization",
                key: request.key,
                request_hash: request.request_hash,
                operation: json!(operation),
                caller: request.caller,
                identifiers,
            })
            .await?;
        match passage {
            Passage::Proceed(verdict) => {
                let mut answer = self
                    .run_authorization(credit, &operation, request.key, request.request_hash, now)
                    .await?;
                mark_held_delivery(&mut answer, &verdict);
                Ok(Gated::Done(answer))
            }
            Passage::Held(held) if held.action == "review" => {
                self.reserve(credit, &held, &operation, now).await?;
                Ok(Gated::Held(held))
            }
            Passage::Held(held) => Ok(Gated::Held(held)),
            Passage::Completed(stored) => Ok(Gated::Done(answer_of(stored))),
        }
    }

    async fn run_authorization(
        &self,
        credit: &CreditService,
        operation: &HeldAuthorization,
        key: &str,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<Answer, GateError> {
        let command = CreditCommand::Authorize {
            amount: operation.amount,
            expires_on: operation.expires_on,
            merchant_reference: operation.merchant_reference.clone(),
        };
        Ok(credit
            .operations
            .execute(
                key,
                operation.account,
                &command,
                request_hash,
                self.credit_today(credit, now),
                now,
            )
            .await?)
    }

    /// Reserves the credit of an authorisation parked for review: it is authorised now
    /// under the request's own key (a ledger hold, so the customer cannot spend the amount
    /// twice meanwhile); approving the case answers that authorisation (the key replays it),
    /// rejecting it voids it ([`RiskGate::release_authorization`]). Credit the rules refuse by
    /// now ends the held operation refused with their code.
    async fn reserve(
        &self,
        credit: &CreditService,
        held: &HeldOperationRow,
        operation: &HeldAuthorization,
        now: Timestamp,
    ) -> Result<(), GateError> {
        match self
            .run_authorization(
                credit,
                operation,
                &held.idempotency_key,
                &held.request_hash,
                now,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(
                error @ GateError::Operation(
                    OperationError::Store(_) | OperationError::LedgerUnavailable(_),
                ),
            ) => Err(error),
            Err(error) => {
                let code = error.code().to_string();
                Err(self.refuse(held, &code, &error.to_string(), now).await?)
            }
        }
    }

    /// Gives back the credit a rejected review had reserved: the authorisation made under
    /// the held request's key is voided (once, under a key derived from the held operation).
    /// A parked authorisation that reserved nothing (held before reservations, or its
    /// reservation failed) has nothing to give back.
    pub(super) async fn release_authorization(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Result<(), GateError> {
        let credit = self.credit_service()?;
        let Some(reserved) = credit
            .operations
            .replayed(&held.idempotency_key, &held.request_hash)
            .await?
        else {
            return Ok(());
        };
        let operation: HeldAuthorization =
            serde_json::from_str(&held.operation).map_err(|error| corrupt(held, error))?;
        let Some(authorization) = reserved.body["authorization"]["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
        else {
            return Err(corrupt(held, "its reserved authorisation has no id"));
        };
        let command = CreditCommand::Void { authorization };
        let key = format!("risk-review-release:{}", held.id);
        let hash = crate::credit::operations::request_hash(
            command.kind(),
            operation.account,
            &json!({ "authorization": authorization }),
        );
        match credit
            .operations
            .execute(
                &key,
                operation.account,
                &command,
                &hash,
                self.credit_today(credit, now),
                now,
            )
            .await
        {
            Ok(_) => Ok(()),
            // Captured or voided by now (or expired): there is no hold left to give back.
            Err(OperationError::Credit(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    pub(super) async fn complete_authorization(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Result<Value, GateError> {
        let credit = self.credit_service()?;
        let operation: HeldAuthorization =
            serde_json::from_str(&held.operation).map_err(|error| corrupt(held, error))?;
        let answer = self
            .run_authorization(
                credit,
                &operation,
                &held.idempotency_key,
                &held.request_hash,
                now,
            )
            .await?;
        Ok(stored_answer(&answer))
    }

    /// Opens a credit account: the credit decision, then (approved) the risk engine on a
    /// `credit_activation` event, then the account. A declined application is recorded as
    /// before, with no risk event: nothing takes effect.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_account(
        &self,
        privacy: Option<&Privacy>,
        caller: &Caller,
        application: &Application<'_>,
        subject: &Subject,
        today: Date,
        now: Timestamp,
        answer: impl Fn(Option<AccountView>, &CreditDecision) -> Value,
    ) -> Result<Gated, GateError> {
        let credit = self.credit_service()?;
        if let Some(answer) = credit
            .operations
            .replayed(application.key, application.request_hash)
            .await?
        {
            return Ok(Gated::Done(answer));
        }
        let id = event_id("credit-activation", &[application.key]);
        if let Some(held) = self.database.held_operation(&id).await? {
            return match self.as_it_stands(held, application.request_hash)? {
                Passage::Held(held) => Ok(Gated::Held(held)),
                Passage::Completed(stored) => Ok(Gated::Done(answer_of(stored))),
                Passage::Proceed(_) => Err(GateError::HeldNotFound(id)),
            };
        }
        let decided = credit
            .decide_application(privacy, caller, application, today, now)
            .await
            .map_err(opening)?;
        let Some(account) = &decided.account else {
            return Ok(Gated::Done(
                credit
                    .open_decided(application, &decided, today, now, answer)
                    .await
                    .map_err(opening)?,
            ));
        };
        let mut event = Event::new(
            id,
            EventKind::CreditActivation,
            now,
            decided.customer_id.clone(),
        );
        self.describe(&mut event, subject)?;
        let identifiers = self.contact(&event.customer, subject, None).await?;
        let operation = HeldActivation {
            customer_id: decided.customer_id.clone(),
            limit: account.limit,
            statement_day: application.statement_day,
            due_days: application.due_days,
            pricing_tier: decided.decision.pricing_tier.clone(),
            answer: answer(None, &decided.decision),
        };
        let passage = self
            .pass(Guarded {
                event,
                kind: "credit_activation",
                key: application.key,
                request_hash: application.request_hash,
                operation: json!(operation),
                caller,
                identifiers,
            })
            .await?;
        match passage {
            Passage::Proceed(_) => Ok(Gated::Done(
                credit
                    .open_decided(application, &decided, today, now, answer)
                    .await
                    .map_err(opening)?,
            )),
            Passage::Held(held) => Ok(Gated::Held(held)),
            Passage::Completed(stored) => Ok(Gated::Done(answer_of(stored))),
        }
    }

    pub(super) async fn complete_activation(
        &self,
        held: &HeldOperationRow,
        now: Timestamp,
    ) -> Result<Value, GateError> {
        let credit = self.credit_service()?;
        let operation: HeldActivation =
            serde_json::from_str(&held.operation).map_err(|error| corrupt(held, error))?;
        let cycle = Cycle::new(operation.statement_day, operation.due_days)
            .map_err(OperationError::from)?;
        let mut account = Account::open(operation.limit, cycle).map_err(OperationError::from)?;
        account.pricing_tier = operation.pricing_tier.clone();
        let today = self.credit_today(credit, now);
        let customer = operation.customer_id.as_str();
        let answer = credit
            .operations
            .open(
                &held.idempotency_key,
                &held.request_hash,
                Some(customer),
                Some(&account),
                now,
                |id| {
                    let mut body = operation.answer.clone();
                    if let (Some(id), Value::Object(fields)) = (id, &mut body) {
                        let view = AccountView::new(id, Some(customer), &account, today);
                        fields.insert("account".into(), json!(view));
                    }
                    Answer {
                        kind: AnswerKind::Created,
                        body,
                    }
                },
            )
            .await?;
        Ok(stored_answer(&answer))
    }
}

/// Adds the risk decision to an authorisation's answer when it held the delivery.
fn mark_held_delivery(answer: &mut Answer, verdict: &super::Verdict) {
    if verdict.action == "hold_delivery" {
        if let Value::Object(body) = &mut answer.body {
            body.insert("risk".into(), verdict.marking());
        }
    }
}

/// An opening's refusal as the gate's: the operation's own errors keep their codes.
fn opening(error: OpeningError) -> GateError {
    match error {
        OpeningError::Operation(error) => GateError::Operation(error),
        OpeningError::Store(error) => GateError::Store(error),
        other => GateError::Opening(other),
    }
}
