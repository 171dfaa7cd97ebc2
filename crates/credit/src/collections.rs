//! The collections queue: contact tasks (who to call, why, how much, how urgent) from
//! delinquency, account-anomaly alerts and callbacks, worked most urgent first.

use crate::account::{Bucket, ContactTask};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

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
