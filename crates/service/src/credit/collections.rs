//! The collections queue's contacts: an agent records each call on a task (its outcome, a
//! promise to pay with its amount and date, the follow-up date), within the contact hours
//! and the daily limit of contacts per customer that `[credit.collections]` states; and which
//! risk reasons raise the queue's anomaly alert task (see [`crate::risk::AnomalyAlerts`]).
//!
//! Why the limits are checked by the service rather than left to the agents: rules on debt
//! collection (e.g. contact only between 08:00 and 21:00, a few contacts a day) bind the
//! lender, and a queue that lets an agent record a call it should not have made leaves no
//! trace of the breach. The count and the write are one transaction in the store, so two
//! agents calling the same customer at once cannot both pass the limit.

use crate::caller::Caller;
use crate::credit::decision::CreditService;
use crate::risk::{AnomalyAlerts, DEFAULT_ANOMALY_REASONS};
use crate::sealed_texts::{open_text, seal_text};
use jiff::civil::{Date, Time};
use jiff::Timestamp;
use tally_credit::{CallOutcome, ContactRefusal, ContactRules, Promise};
use tally_privacy::Privacy;
use tally_store::credit_operations::{ContactRecorded, ContactRow, NewContact};
use tally_store::sealed_texts::TextColumn;
use tally_store::StoreError;

/// `contact` with its note opened.
fn opened_contact(privacy: Option<&Privacy>, mut contact: ContactRow) -> ContactRow {
    contact.note = open_text(
        privacy,
        TextColumn::ContactNote,
        &contact.task_id.to_string(),
        &contact.note,
    );
    contact
}

/// `[credit.collections]`: contact hours (local time of `[credit] time_zone`, `HH:MM`, the
/// end excluded), most contacts of a customer a day, how far ahead a promise to pay may be
/// dated, and the rule pack's reason codes that raise an anomaly alert.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionsSettings {
    pub contact_hours_start: String,
    pub contact_hours_end: String,
    pub contacts_per_day_max: u32,
    pub promise_days_max: i32,
    pub anomaly_reasons: Vec<String>,
}

impl Default for CollectionsSettings {
    fn default() -> Self {
        let rules = ContactRules::default();
        CollectionsSettings {
            contact_hours_start: rules.hours_start.strftime("%H:%M").to_string(),
            contact_hours_end: rules.hours_end.strftime("%H:%M").to_string(),
            contacts_per_day_max: rules.contacts_per_day_max,
            promise_days_max: rules.promise_days_max,
            anomaly_reasons: DEFAULT_ANOMALY_REASONS.map(String::from).to_vec(),
        }
    }
}

impl CollectionsSettings {
    /// The contact rules, validated.
    pub fn rules(&self) -> Result<ContactRules, String> {
        let time = |name: &str, text: &str| {
            text.parse::<Time>()
                .map_err(|error| format!("{name} {text:?} is not a time of day (HH:MM): {error}"))
        };
        let rules = ContactRules {
            hours_start: time("contact_hours_start", &self.contact_hours_start)?,
            hours_end: time("contact_hours_end", &self.contact_hours_end)?,
            contacts_per_day_max: self.contacts_per_day_max,
            promise_days_max: self.promise_days_max,
        };
        rules.validate()?;
        if self
            .anomaly_reasons
            .iter()
            .any(|reason| reason.trim().is_empty())
        {
            return Err("anomaly_reasons must not hold an empty reason code".into());
        }
        Ok(rules)
    }

    /// The risk service's anomaly alerts, dated in the credit service's time zone.
    pub fn anomaly_alerts(&self, time_zone: jiff::tz::TimeZone) -> AnomalyAlerts {
        AnomalyAlerts {
            reasons: self.anomaly_reasons.clone(),
            time_zone,
        }
    }
}

/// A contact to record on a task.
#[derive(Debug, Clone)]
pub struct ContactRequest<'a> {
    pub task_id: i64,
    pub outcome: &'a str,
    pub note: &'a str,
    pub promise: Option<Promise>,
    pub follow_up: Option<Date>,
}

/// Why a contact was not recorded; [`ContactError::code`] is its stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContactError {
    #[error("no open task {0}")]
    TaskNotFound(i64),
    #[error("unknown outcome {0:?}; one of no_answer, left_message, reached, promise_to_pay, refused, wrong_number")]
    UnknownOutcome(String),
    #[error(transparent)]
    Refused(#[from] ContactRefusal),
    /// The note could not be sealed.
    #[error("sealing the note: {0}")]
    Sealing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ContactError {
    pub fn code(&self) -> &'static str {
        match self {
            ContactError::TaskNotFound(_) => "credit_task_not_found",
            ContactError::UnknownOutcome(_) => "invalid_contact",
            ContactError::Refused(refusal) => refusal.code(),
            ContactError::Store(_) => "storage_unavailable",
            ContactError::Sealing(_) => "internal",
        }
    }
}

impl CreditService {
    /// Records `request` by `caller` at `now`: refused outside the contact hours (local time
    /// of the credit time zone), past the customer's contacts for the business date, or with
    /// an outcome that does not carry what it must; otherwise stored with its outcome,
    /// promise and follow-up left on the task. The note (free text that may name people) is
    /// sealed with `privacy` where stored, and answered opened.
    pub async fn record_contact(
        &self,
        privacy: Option<&Privacy>,
        caller: &Caller,
        request: &ContactRequest<'_>,
        now: Timestamp,
    ) -> Result<ContactRow, ContactError> {
        let outcome = CallOutcome::parse(request.outcome)
            .ok_or_else(|| ContactError::UnknownOutcome(request.outcome.to_string()))?;
        let local = now.to_zoned(self.time_zone.clone()).datetime();
        let today = local.date();
        let database = self.operations.database();
        let task = database
            .contact_task(request.task_id)
            .await?
            .filter(|task| task.status == "open")
            .ok_or(ContactError::TaskNotFound(request.task_id))?;
        let currency = tally_core::Currency::from_code(&task.currency).map_err(|error| {
            StoreError::Corrupt(format!("task {} currency: {error}", request.task_id))
        })?;
        let rules = &self.contact_rules;
        let plan = rules.plan(outcome, request.promise, request.follow_up, today, currency)?;
        // The hours first (no count needed); the daily limit is counted again where the
        // contact is written, under a lock.
        rules.allows(local, 0)?;
        let owner = request.task_id.to_string();
        let note = seal_text(privacy, TextColumn::ContactNote, &owner, request.note)
            .map_err(|error| ContactError::Sealing(error.to_string()))?;
        let recorded = database
            .record_contact(NewContact {
                task_id: request.task_id,
                business_date: today,
                at: now,
                outcome: plan.outcome.as_str(),
                note: &note,
                promise: plan.promise,
                follow_up_date: plan.follow_up,
                recorded_by: &caller.name,
                contacts_per_day_max: rules.contacts_per_day_max,
            })
            .await?;
        match recorded {
            ContactRecorded::Recorded(row) => Ok(opened_contact(privacy, *row)),
            ContactRecorded::NoOpenTask => Err(ContactError::TaskNotFound(request.task_id)),
            ContactRecorded::LimitReached(made) => Err(ContactRefusal::LimitReached {
                date: today,
                made,
                max: rules.contacts_per_day_max,
            }
            .into()),
        }
    }

    /// The contacts recorded on task `id`, oldest first, their notes opened with `privacy`;
    /// `None` when there is no such task.
    pub async fn task_contacts(
        &self,
        privacy: Option<&Privacy>,
        id: i64,
    ) -> Result<Option<Vec<ContactRow>>, StoreError> {
        let database = self.operations.database();
        if database.contact_task(id).await?.is_none() {
            return Ok(None);
        }
        let contacts = database.task_contacts(id).await?;
        Ok(Some(
            contacts
                .into_iter()
                .map(|contact| opened_contact(privacy, contact))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_give_the_contact_rules_or_say_what_is_wrong() {
        let defaults = CollectionsSettings::default();
        assert_eq!(defaults.contact_hours_start, "08:00");
        assert_eq!(defaults.rules().unwrap(), ContactRules::default());
        let reversed = CollectionsSettings {
            contact_hours_start: "22:00".into(),
            ..defaults.clone()
        };
        assert!(reversed.rules().unwrap_err().contains("start before"));
        let garbled = CollectionsSettings {
            contact_hours_end: "9pm".into(),
            ..defaults.clone()
        };
        assert!(garbled
            .rules()
            .unwrap_err()
            .starts_with("contact_hours_end \"9pm\""));
        let blank = CollectionsSettings {
            anomaly_reasons: vec![" ".into()],
            ..defaults
        };
        assert!(blank.rules().is_err());
    }
}
