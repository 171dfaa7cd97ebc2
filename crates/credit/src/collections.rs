//! The collections queue: contact tasks (who to call, why, how much, how urgent) from
//! delinquency, account-anomaly alerts and callbacks, worked most urgent first; and the rules
//! of a contact: when a customer may be called, how often a day, and what a call's outcome
//! must carry (a promise to pay names its amount and date, and is followed up the day after).

use crate::account::{Bucket, ContactTask};
use jiff::civil::{Date, DateTime, Time};
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// What came of one contact attempt with the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    NoAnswer,
    LeftMessage,
    /// Spoke to the customer, no promise.
    Reached,
    /// The customer promised an amount by a date.
    PromiseToPay,
    /// The customer refused to pay.
    Refused,
    /// The number does not reach the customer.
    WrongNumber,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 6] = [
        CallOutcome::NoAnswer,
        CallOutcome::LeftMessage,
        CallOutcome::Reached,
        CallOutcome::PromiseToPay,
        CallOutcome::Refused,
        CallOutcome::WrongNumber,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::LeftMessage => "left_message",
            CallOutcome::Reached => "reached",
            CallOutcome::PromiseToPay => "promise_to_pay",
            CallOutcome::Refused => "refused",
            CallOutcome::WrongNumber => "wrong_number",
        }
    }

    pub fn parse(text: &str) -> Option<CallOutcome> {
        CallOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// A promise to pay `amount` by `date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    pub amount: Amount,
    pub date: Date,
}

/// When and how often a customer may be contacted: local hours in the lender's time zone
/// (`start` inclusive, `end` exclusive) and most contacts a day (every attempt counts,
/// answered or not, as the rules on debt collection count them), and how far ahead a promise
/// to pay may be dated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactRules {
    pub hours_start: Time,
    pub hours_end: Time,
    pub contacts_per_day_max: u32,
    pub promise_days_max: i32,
}

impl Default for ContactRules {
    /// 08:00 to 21:00, three contacts a day, promises within 30 days.
    fn default() -> Self {
        ContactRules {
            hours_start: Time::constant(8, 0, 0, 0),
            hours_end: Time::constant(21, 0, 0, 0),
            contacts_per_day_max: 3,
            promise_days_max: 30,
        }
    }
}

/// Why a contact may not be made or recorded as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactRefusal {
    #[error("contact is allowed from {start} to {end} local time; it is {now}")]
    OutsideHours { now: Time, start: Time, end: Time },
    #[error("the customer was already contacted {made} times on {date}, the most a day is {max}")]
    LimitReached { date: Date, made: u32, max: u32 },
    #[error("{0}")]
    Invalid(String),
}

impl ContactRefusal {
    /// The stable code of this refusal on the API.
    pub fn code(&self) -> &'static str {
        match self {
            ContactRefusal::OutsideHours { .. } => "collections_contact_outside_hours",
            ContactRefusal::LimitReached { .. } => "collections_contact_limit_reached",
            ContactRefusal::Invalid(_) => "invalid_contact",
        }
    }
}

/// What a recorded contact leaves on its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactPlan {
    pub outcome: CallOutcome,
    pub promise: Option<Promise>,
    /// When the task is worked again; none: when the queue's order says.
    pub follow_up: Option<Date>,
}

impl ContactRules {
    pub fn validate(&self) -> Result<(), String> {
        if self.hours_start >= self.hours_end {
            return Err(format!(
                "contact hours must start before they end: {} to {}",
                self.hours_start, self.hours_end
            ));
        }
        if self.contacts_per_day_max == 0 {
            return Err("contacts_per_day_max must be at least 1".into());
        }
        if self.promise_days_max < 0 {
            return Err("promise_days_max must not be negative".into());
        }
        Ok(())
    }

    /// May the customer be contacted at local time `now`, having been contacted
    /// `made_today` times on its date?
    pub fn allows(&self, now: DateTime, made_today: u32) -> Result<(), ContactRefusal> {
        let time = now.time();
        if time < self.hours_start || time >= self.hours_end {
            return Err(ContactRefusal::OutsideHours {
                now: time,
                start: self.hours_start,
                end: self.hours_end,
            });
        }
        if made_today >= self.contacts_per_day_max {
            return Err(ContactRefusal::LimitReached {
                date: now.date(),
                made: made_today,
                max: self.contacts_per_day_max,
            });
        }
        Ok(())
    }

    /// Checks a contact's outcome against what it carries, on business date `today`, for a
    /// task in `currency`: a promise to pay (and only that outcome) names a positive amount
    /// in the task's currency, dated from today to `promise_days_max` days on; a follow-up
    /// is not in the past. A promise is followed up the day after its date unless a date is
    /// given; an unanswered call the next day.
    pub fn plan(
        &self,
        outcome: CallOutcome,
        promise: Option<Promise>,
        follow_up: Option<Date>,
        today: Date,
        currency: tally_core::Currency,
    ) -> Result<ContactPlan, ContactRefusal> {
        let invalid = |message: String| Err(ContactRefusal::Invalid(message));
        match (outcome, promise) {
            (CallOutcome::PromiseToPay, None) => {
                return invalid("a promise to pay needs the promised amount and date".into())
            }
            (CallOutcome::PromiseToPay, Some(promise)) => {
                if !promise.amount.is_positive() {
                    return invalid("the promised amount must be positive".into());
                }
                if promise.amount.currency() != currency {
                    return invalid(format!(
                        "the promised amount is in {}, the task in {currency}",
                        promise.amount.currency()
                    ));
                }
                let latest = today
                    .checked_add(jiff::Span::new().days(self.promise_days_max))
                    .map_err(|error| ContactRefusal::Invalid(error.to_string()))?;
                if promise.date < today || promise.date > latest {
                    return invalid(format!(
                        "the promised date must be from {today} to {latest}, got {}",
                        promise.date
                    ));
                }
            }
            (other, Some(_)) => {
                return invalid(format!(
                    "only a promise_to_pay carries a promise, not {}",
                    other.as_str()
                ))
            }
            (_, None) => {}
        }
        if let Some(date) = follow_up {
            if date < today {
                return invalid(format!("the follow-up date {date} is before {today}"));
            }
        }
        let next_day = |date: Date| {
            date.tomorrow()
                .map_err(|error| ContactRefusal::Invalid(error.to_string()))
        };
        let follow_up = match (follow_up, outcome, promise) {
            (Some(date), _, _) => Some(date),
            (None, CallOutcome::PromiseToPay, Some(promise)) => Some(next_day(promise.date)?),
            (None, CallOutcome::NoAnswer | CallOutcome::LeftMessage, _) => Some(next_day(today)?),
            (None, _, _) => None,
        };
        Ok(ContactPlan {
            outcome,
            promise,
            follow_up,
        })
    }
}

/// Why a task is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// An account-anomaly alert from risk control (a possible stolen account): first.
    AnomalyAlert,
    /// A callback the customer asked for.
    Callback,
    /// A delinquent account.
    Collection,
}

/// One task of the queue. `account` is the store's id of the credit account, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub kind: TaskKind,
    pub account: String,
    pub reason: String,
    pub amount: Amount,
    /// 1 is the most urgent.
    pub priority: u8,
    pub days_past_due: i32,
    /// Not before this date (a callback's agreed day; the creation date otherwise).
    pub not_before: Date,
}

impl Task {
    /// A collection task from the contact an end of day produced for `account`.
    pub fn from_contact(account: impl Into<String>, contact: &ContactTask, date: Date) -> Task {
        Task {
            kind: TaskKind::Collection,
            account: account.into(),
            reason: contact.reason.clone(),
            amount: contact.amount,
            priority: contact.priority,
            days_past_due: contact.days_past_due,
            not_before: date,
        }
    }
}

/// The tasks workable on `date`, most urgent first: by priority, then anomaly alerts before
/// callbacks before collections, then most days past due, then the largest amount, then the
/// account id (so the order is total and deterministic).
pub fn worklist(tasks: &[Task], date: Date) -> Vec<&Task> {
    let mut ready: Vec<&Task> = tasks
        .iter()
        .filter(|task| task.not_before <= date)
        .collect();
    ready.sort_by(|left, right| {
        left.priority
            .cmp(&right.priority)
            .then(left.kind.cmp(&right.kind))
            .then(right.days_past_due.cmp(&left.days_past_due))
            .then(right.amount.minor().cmp(&left.amount.minor()))
            .then(left.account.cmp(&right.account))
    });
    ready
}

/// The priority of a collection task for an account in `bucket`: 1 from M3 on, else 2.
pub fn collection_priority(bucket: Bucket) -> u8 {
    if bucket >= Bucket::M3 {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use tally_core::Currency;

    fn task(kind: TaskKind, account: &str, priority: u8, days: i32, minor: i64, day: i8) -> Task {
        Task {
            kind,
            account: account.into(),
            reason: "r".into(),
            amount: Amount::new(minor, Currency::CNY),
            priority,
            days_past_due: days,
            not_before: date(2026, 3, day),
        }
    }

    #[test]
    fn contact_is_allowed_within_the_hours_and_the_daily_limit() {
        let rules = ContactRules::default();
        let at = |hour: i8, minute: i8| date(2026, 3, 10).at(hour, minute, 0, 0);
        assert_eq!(rules.allows(at(8, 0), 0), Ok(()));
        assert_eq!(rules.allows(at(20, 59), 2), Ok(()));
        assert_eq!(
            rules.allows(at(7, 59), 0),
            Err(ContactRefusal::OutsideHours {
                now: Time::constant(7, 59, 0, 0),
                start: Time::constant(8, 0, 0, 0),
                end: Time::constant(21, 0, 0, 0),
            })
        );
        let late = rules.allows(at(21, 0), 0).unwrap_err();
        assert_eq!(late.code(), "collections_contact_outside_hours");
        let limit = rules.allows(at(12, 0), 3).unwrap_err();
        assert_eq!(limit.code(), "collections_contact_limit_reached");
        assert_eq!(
            limit.to_string(),
            "the customer was already contacted 3 times on 2026-03-10, the most a day is 3"
        );
        assert!(ContactRules {
            hours_start: Time::constant(21, 0, 0, 0),
            ..rules
        }
        .validate()
        .is_err());
        assert!(ContactRules {
            contacts_per_day_max: 0,
            ..rules
        }
        .validate()
        .is_err());
        assert!(rules.validate().is_ok());
    }

    #[test]
    fn outcomes_carry_what_they_must_and_set_the_follow_up() {
        let rules = ContactRules::default();
        let today = date(2026, 3, 10);
        let cny = |minor| Amount::new(minor, Currency::CNY);
        let promise = Promise {
            amount: cny(50_000),
            date: date(2026, 3, 15),
        };
        let plan = rules
            .plan(
                CallOutcome::PromiseToPay,
                Some(promise),
                None,
                today,
                Currency::CNY,
            )
            .unwrap();
        // Followed up the day after the promised date, to see it kept.
        assert_eq!(plan.follow_up, Some(date(2026, 3, 16)));
        assert_eq!(plan.promise, Some(promise));
        let given = rules
            .plan(
                CallOutcome::PromiseToPay,
                Some(promise),
                Some(date(2026, 3, 12)),
                today,
                Currency::CNY,
            )
            .unwrap();
        assert_eq!(given.follow_up, Some(date(2026, 3, 12)));
        let unanswered = rules
            .plan(CallOutcome::NoAnswer, None, None, today, Currency::CNY)
            .unwrap();
        assert_eq!(unanswered.follow_up, Some(date(2026, 3, 11)));
        let reached = rules
            .plan(CallOutcome::Reached, None, None, today, Currency::CNY)
            .unwrap();
        assert_eq!(reached.follow_up, None);
        let refusals = [
            (CallOutcome::PromiseToPay, None, None),
            (
                CallOutcome::PromiseToPay,
                Some(Promise {
                    amount: cny(0),
                    ..promise
                }),
                None,
            ),
            (
                CallOutcome::PromiseToPay,
                Some(Promise {
                    amount: Amount::new(100, Currency::USD),
                    ..promise
                }),
                None,
            ),
            (
                CallOutcome::PromiseToPay,
                Some(Promise {
                    date: date(2026, 3, 9),
                    ..promise
                }),
                None,
            ),
            (
                CallOutcome::PromiseToPay,
                Some(Promise {
                    date: date(2026, 4, 10),
                    ..promise
                }),
                None,
            ),
            (CallOutcome::Reached, Some(promise), None),
            (CallOutcome::Reached, None, Some(date(2026, 3, 9))),
        ];
        for (outcome, promise, follow_up) in refusals {
            let refused = rules
                .plan(outcome, promise, follow_up, today, Currency::CNY)
                .unwrap_err();
            assert_eq!(refused.code(), "invalid_contact", "{outcome:?} {promise:?}");
        }
        for outcome in CallOutcome::ALL {
            assert_eq!(CallOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(CallOutcome::parse("maybe"), None);
    }

    #[test]
    fn the_most_urgent_task_comes_first() {
        let tasks = vec![
            task(TaskKind::Collection, "a", 2, 5, 10_000, 1),
            task(TaskKind::Collection, "b", 1, 70, 5_000, 1),
            task(TaskKind::AnomalyAlert, "c", 1, 0, 0, 1),
            task(TaskKind::Callback, "d", 2, 0, 0, 20),
            task(TaskKind::Collection, "e", 2, 5, 20_000, 1),
        ];
        let order: Vec<&str> = worklist(&tasks, date(2026, 3, 10))
            .iter()
            .map(|task| task.account.as_str())
            .collect();
        // The callback is not due before 20 March.
        assert_eq!(order, vec!["c", "b", "e", "a"]);
        assert_eq!(collection_priority(Bucket::M1), 2);
        assert_eq!(collection_priority(Bucket::M6Plus), 1);
    }
}
