//! Edges of the collections rules: the first and last day a promise to pay may be dated, a
//! follow-up on the day of the call, contact rules that allow no promise ahead or refuse a
//! negative window, and the bucket from which a collection task goes first.

use jiff::civil::date;
use tally_core::{Amount, Currency};
use tally_credit::collections::collection_priority;
use tally_credit::{Bucket, CallOutcome, ContactRules, Promise};

fn yuan(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

#[test]
fn a_promise_may_be_dated_from_today_to_the_last_day_of_the_window() {
    let rules = ContactRules::default();
    let today = date(2026, 3, 10);
    let promise_on = |day| {
        rules.plan(
            CallOutcome::PromiseToPay,
            Some(Promise {
                amount: yuan(50_000),
                date: day,
            }),
            None,
            today,
            Currency::CNY,
        )
    };
    // Today itself: followed up tomorrow.
    let same_day = promise_on(today).expect("a promise for today");
    assert_eq!(same_day.follow_up, Some(date(2026, 3, 11)));
    // 30 days on, the last day of the default window.
    let last = promise_on(date(2026, 4, 9)).expect("a promise 30 days on");
    assert_eq!(last.follow_up, Some(date(2026, 4, 10)));
    // A day either side is refused.
    for day in [date(2026, 3, 9), date(2026, 4, 10)] {
        let error = promise_on(day).expect_err("outside the window");
        assert_eq!(error.code(), "invalid_contact", "{day}");
        assert_eq!(
            error.to_string(),
            format!("the promised date must be from 2026-03-10 to 2026-04-09, got {day}")
        );
    }
}

#[test]
fn a_follow_up_may_be_the_day_of_the_call_but_not_before() {
    let rules = ContactRules::default();
    let today = date(2026, 3, 10);
    let plan = rules
        .plan(
            CallOutcome::Reached,
            None,
            Some(today),
            today,
            Currency::CNY,
        )
        .expect("a follow-up today");
    assert_eq!(plan.follow_up, Some(today));
    let error = rules
        .plan(
            CallOutcome::Reached,
            None,
            Some(date(2026, 3, 9)),
            today,
            Currency::CNY,
        )
        .expect_err("a follow-up yesterday");
    assert_eq!(
        error.to_string(),
        "the follow-up date 2026-03-09 is before 2026-03-10"
    );
    // A message left is followed up the next day, like an unanswered call.
    let left = rules
        .plan(CallOutcome::LeftMessage, None, None, today, Currency::CNY)
        .expect("a message left");
    assert_eq!(left.follow_up, Some(date(2026, 3, 11)));
}

#[test]
fn the_promise_window_may_be_zero_days_but_not_negative() {
    let today_only = ContactRules {
        promise_days_max: 0,
        ..ContactRules::default()
    };
    assert_eq!(today_only.validate(), Ok(()));
    let today = date(2026, 3, 10);
    let plan = today_only
        .plan(
            CallOutcome::PromiseToPay,
            Some(Promise {
                amount: yuan(1),
                date: today,
            }),
            None,
            today,
            Currency::CNY,
        )
        .expect("a promise for today");
    assert_eq!(plan.follow_up, Some(date(2026, 3, 11)));

    for days in [-1, -30] {
        let error = ContactRules {
            promise_days_max: days,
            ..ContactRules::default()
        }
        .validate()
        .expect_err("a negative window");
        assert_eq!(error, "promise_days_max must not be negative", "{days}");
    }
}

#[test]
fn collection_tasks_go_first_from_the_third_month_past_due() {
    for bucket in [Bucket::Current, Bucket::M1, Bucket::M2] {
        assert_eq!(collection_priority(bucket), 2, "{bucket:?}");
    }
    for bucket in [
        Bucket::M3,
        Bucket::M4,
        Bucket::M5,
        Bucket::M6,
        Bucket::M6Plus,
    ] {
        assert_eq!(collection_priority(bucket), 1, "{bucket:?}");
    }
}
