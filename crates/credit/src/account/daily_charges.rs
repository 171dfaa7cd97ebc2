//! The day's charges of an account: interest on items revolving to their next due date and
//! penalties on items overdue past the grace days, each item's penalties capped at a share
//! of what it billed.

use super::{add, Account, AccountPolicy, DayOutcome};
use crate::amounts::{smaller, zero_if_negative};
use crate::error::CreditError;
use crate::posting::{LedgerRole, Posting};
use jiff::civil::Date;
use tally_core::{Amount, Rounding};

impl Account {
    /// Accrues the day's interest on items revolving to their next due date and the day's
    /// penalty on items overdue past the grace days (up to each item's cap), onto the items
    /// and their plans, and posts both.
    pub(super) fn accrue_daily_charges(
        &mut self,
        date: Date,
        policy: &AccountPolicy,
        outcome: &mut DayOutcome,
    ) -> Result<(), CreditError> {
        let zero = Amount::zero(self.currency);
        let mut interest = zero;
        let mut penalties = zero;
        let plans = &mut self.plans;
        for due in &mut self.dues {
            if !due.owes() {
                continue;
            }
            let plan = plans.iter_mut().find(|plan| plan.id == due.plan_id);
            let base = add(due.principal, due.fee)?;
            if due.revolving && due.due_date >= date {
                let accrued = base.apply_rate(policy.revolving_daily_rate, policy.rounding)?;
                due.interest = add(due.interest, accrued)?;
                interest = add(interest, accrued)?;
                if let Some(plan) = plan {
                    plan.interest_billed = add(plan.interest_billed, accrued)?;
                }
            } else if due.due_date < date && (date - due.due_date).get_days() > policy.grace_days {
                let base = add(base, due.interest)?;
                let cap = due
                    .billed
                    .apply_rate(policy.penalty_cap_share, Rounding::Down)?;
                // What the cap leaves: nothing more once it is reached.
                let room = zero_if_negative(cap.checked_sub(due.penalty_charged)?);
                let daily = base.apply_rate(policy.penalty_daily_rate, policy.rounding)?;
                let charged = smaller(daily, room);
                if charged.is_positive() {
                    due.penalty = add(due.penalty, charged)?;
                    due.penalty_charged = add(due.penalty_charged, charged)?;
                    penalties = add(penalties, charged)?;
                    if let Some(plan) = plan {
                        plan.penalty_charged = add(plan.penalty_charged, charged)?;
                    }
                }
            }
        }
        if interest.is_positive() || penalties.is_positive() {
            self.activity.interest = add(self.activity.interest, interest)?;
            self.activity.penalties = add(self.activity.penalties, penalties)?;
            outcome.postings.push(
                Posting::new("daily interest and penalties")
                    .debit(LedgerRole::CustomerReceivable, add(interest, penalties)?)
                    .credit(LedgerRole::InterestIncome, interest)
                    .credit(LedgerRole::PenaltyIncome, penalties),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::account::{AccountStatus, Bucket};
    use crate::product::EarlyPayoffRule;
    use jiff::civil::date;

    #[test]
    fn penalties_stop_at_the_cap() {
        let (mut account, _) = with_purchase("100.00", 1, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy {
            bucket_actions: Vec::new(),
            ..AccountPolicy::default()
        };
        // Billed 20 January, due 29 January, never paid: 0.05 a day from 2 February, capped
        // at 25% of 100.00 = 25.00 after 500 days.
        run(&mut account, &policy, date(2026, 1, 11), date(2027, 9, 1));
        assert_eq!(account.dues[0].penalty, cny("25.00"));
        assert_eq!(account.bucket, Bucket::M6Plus);
        assert_eq!(account.status, AccountStatus::Open);
    }
}
