//! Delinquency: the buckets of days past due, what entering one triggers (freeze, a
//! collections contact, charge-off), and how an account ages through them at end of day and
//! when a payment moves it between ends of day.

use super::{add, amount, Account, AccountPolicy, AccountStatus, DayOutcome, PlanStatus};
use crate::error::CreditError;
use crate::posting::{LedgerRole, Posting};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// Days past due at which each bucket starts: M1 = 1–30, M2 = 31–60, … M6 = 151–180,
/// M6+ = over 180.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Current,
    M1,
    M2,
    M3,
    M4,
    M5,
    M6,
    M6Plus,
}

impl Bucket {
    pub fn of_days_past_due(days: i32) -> Bucket {
        match days {
            i32::MIN..=0 => Bucket::Current,
            1..=30 => Bucket::M1,
            31..=60 => Bucket::M2,
            61..=90 => Bucket::M3,
            91..=120 => Bucket::M4,
            121..=150 => Bucket::M5,
            151..=180 => Bucket::M6,
            _ => Bucket::M6Plus,
        }
    }
}

/// What entering a bucket triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelinquencyAction {
    /// No new purchases until the account is current again.
    Freeze,
    /// A collections contact task.
    Contact,
    /// Charge the whole receivable off.
    ChargeOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketAction {
    pub bucket: Bucket,
    pub action: DelinquencyAction,
}

/// A collections contact task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTask {
    pub reason: String,
    pub bucket: Bucket,
    pub days_past_due: i32,
    pub amount: Amount,
    /// 1 is the most urgent.
    pub priority: u8,
}

impl Account {
    /// Days past due on `date`: from the oldest unpaid due date.
    pub fn days_past_due_on(&self, date: Date) -> i32 {
        self.dues
            .iter()
            .filter(|due| due.is_overdue(date))
            .map(|due| due.due_date)
            .min()
            .map(|oldest| (date - oldest).get_days())
            .unwrap_or(0)
    }

    pub(super) fn refresh_delinquency(&mut self, date: Date) {
        self.days_past_due = self.days_past_due_on(date);
        self.bucket = Bucket::of_days_past_due(self.days_past_due);
    }

    /// Refreshes the bucket between ends of day, remembering the one the last end of day
    /// left (see `bucket_at_end_of_day`).
    pub(super) fn refresh_delinquency_during_day(&mut self, date: Date) {
        let before = self.bucket;
        self.refresh_delinquency(date);
        if self.bucket != before && self.bucket_at_end_of_day.is_none() {
            self.bucket_at_end_of_day = Some(before);
        }
    }

    /// Ages the delinquency bucket at the end of `date` and runs the policy's actions for the
    /// bucket when it is above `previous`, the one the previous end of day left; lifts a
    /// delinquency freeze once the account is current again.
    pub(super) fn age_delinquency(
        &mut self,
        date: Date,
        previous: Bucket,
        policy: &AccountPolicy,
        outcome: &mut DayOutcome,
    ) -> Result<(), CreditError> {
        self.refresh_delinquency(date);
        if self.bucket > previous {
            for rule in &policy.bucket_actions {
                if rule.bucket != self.bucket {
                    continue;
                }
                outcome.actions.push(rule.action);
                match rule.action {
                    DelinquencyAction::Freeze => {
                        if self.status == AccountStatus::Open {
                            self.status = AccountStatus::Frozen;
                            self.frozen_by_delinquency = true;
                        }
                    }
                    DelinquencyAction::Contact => {
                        let mut overdue = Amount::zero(self.currency);
                        for due in self.dues.iter().filter(|due| due.is_overdue(date)) {
                            overdue =
                                add(overdue, amount(due.checked_outstanding()?, self.currency))?;
                        }
                        outcome.contacts.push(ContactTask {
                            reason: format!("{:?} overdue", self.bucket),
                            bucket: self.bucket,
                            days_past_due: self.days_past_due,
                            amount: overdue,
                            priority: crate::collections::collection_priority(self.bucket),
                        });
                    }
                    DelinquencyAction::ChargeOff => {
                        outcome.postings.push(self.charge_off()?);
                    }
                }
            }
        } else if self.bucket == Bucket::Current && self.frozen_by_delinquency {
            self.unfreeze();
        }
        Ok(())
    }

    /// Charges the whole receivable off (billed and unbilled) as uncollectable.
    pub fn charge_off(&mut self) -> Result<Posting, CreditError> {
        let total = add(
            self.checked_billed_balance()?,
            self.checked_unpaid_principal_unbilled()?,
        )?;
        let currency = self.currency;
        for due in &mut self.dues {
            due.principal = Amount::zero(currency);
            due.fee = Amount::zero(currency);
            due.interest = Amount::zero(currency);
            due.penalty = Amount::zero(currency);
        }
        for plan in &mut self.plans {
            if plan.status == PlanStatus::Active {
                plan.status = PlanStatus::ChargedOff;
            }
        }
        self.charged_off = add(self.charged_off, total)?;
        self.status = AccountStatus::ChargedOff;
        Ok(Posting::new("charge-off")
            .debit(LedgerRole::ChargeOffExpense, total)
            .credit(LedgerRole::CustomerReceivable, total))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::product::EarlyPayoffRule;
    use jiff::civil::date;

    #[test]
    fn buckets_by_days_past_due() {
        let cases = [
            (0, Bucket::Current),
            (1, Bucket::M1),
            (30, Bucket::M1),
            (31, Bucket::M2),
            (90, Bucket::M3),
            (150, Bucket::M5),
            (151, Bucket::M6),
            (180, Bucket::M6),
            (181, Bucket::M6Plus),
        ];
        for (days, bucket) in cases {
            assert_eq!(Bucket::of_days_past_due(days), bucket, "{days}");
        }
    }

    #[test]
    fn m6_plus_charges_the_receivable_off() {
        let (mut account, _) = with_purchase("1200.00", 6, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        let postings = run(&mut account, &policy, date(2026, 1, 11), date(2026, 8, 31));
        assert_eq!(account.status, AccountStatus::ChargedOff);
        let charge_off = postings
            .iter()
            .find(|posting| posting.description == "charge-off")
            .unwrap();
        // Everything owed: 1,200.00 principal, billed fees and the penalties so far.
        assert_eq!(charge_off.legs[0].role, LedgerRole::ChargeOffExpense);
        assert_eq!(charge_off.legs[0].amount, account.charged_off);
        assert!(account.charged_off.minor() > 120_000);
        assert_eq!(account.billed_balance(), cny("0.00"));
        assert_eq!(account.unpaid_principal(), cny("0.00"));
    }

    #[test]
    fn a_payment_on_the_day_an_account_enters_m6_plus_does_not_skip_the_charge_off() {
        // 1,000.00 in one period, billed 20 January, due 29 January, never paid: 180 days
        // past due on 28 July (M6), 181 on 29 July (M6+).
        let (mut account, _) = with_purchase("1000.00", 1, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 7, 28));
        assert_eq!(account.bucket, Bucket::M6);
        // A cent paid on 29 July moves the bucket to M6+ before end of day sees it.
        account
            .repay(date(2026, 7, 29), cny("0.01"), &policy)
            .unwrap();
        let postings = run_to(&mut account, &policy, date(2026, 8, 31));
        assert_eq!(account.status, AccountStatus::ChargedOff);
        assert!(postings
            .iter()
            .any(|posting| posting.description == "charge-off"));
    }

    #[test]
    fn a_part_payment_the_day_an_account_falls_due_still_freezes_it_and_queues_a_contact() {
        let (mut account, _) = with_purchase("1000.00", 1, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 29));
        assert_eq!(account.bucket, Bucket::Current);
        account
            .repay(date(2026, 1, 30), cny("50.00"), &policy)
            .unwrap();
        let mut outcome = DayOutcome::default();
        account
            .end_of_day(date(2026, 1, 30), &policy, &mut outcome)
            .unwrap();
        assert_eq!(account.bucket, Bucket::M1);
        assert_eq!(
            outcome.actions,
            vec![DelinquencyAction::Freeze, DelinquencyAction::Contact]
        );
        assert_eq!(outcome.contacts.len(), 1);
        assert_eq!(outcome.contacts[0].amount, cny("950.00"));
        assert_eq!(account.status, AccountStatus::Frozen);
        assert!(account.frozen_by_delinquency);
        // The next day is no new rise: nothing more fires.
        account
            .end_of_day(date(2026, 1, 31), &policy, &mut outcome)
            .unwrap();
        assert!(outcome.actions.is_empty() && outcome.contacts.is_empty());
    }
}
