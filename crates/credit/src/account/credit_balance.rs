//! The credit balance: what the customer paid or was refunded beyond what they owe. End of
//! day uses it to settle billed items first; what is left can be paid back to the customer.

use super::{add, Account, AccountPolicy, AccountStatus, DayOutcome};
use crate::allocation::{allocate, Due};
use crate::amounts::zero_if_negative;
use crate::error::CreditError;
use crate::posting::{LedgerRole, Posting};
use jiff::civil::Date;
use tally_core::Amount;

impl Account {
    /// The part of the credit balance that can be paid back to the customer now: the credit
    /// balance less what is billed and still owed, which end of day settles from it first
    /// (never below zero).
    pub fn payable_credit_balance(&self) -> Result<Amount, CreditError> {
        let billed = self.checked_billed_balance()?;
        // Billed items take the credit balance first: with more billed than held, nothing
        // can be paid out.
        Ok(zero_if_negative(self.credit_balance.checked_sub(billed)?))
    }

    /// Pays `value` of the customer's credit balance back to them: the credit balance
    /// becomes a payable to the customer until the payment system settles the transfer.
    /// Only what [`Account::payable_credit_balance`] allows: billed items still owed come
    /// first. An open, frozen or closed account pays its credit balance out (it is the
    /// customer's money, and a refund can reach an account after it closed); a charged-off
    /// account does not (the balance stays against the debt charged off). Not a payment:
    /// it counts towards no minimum and changes no delinquency.
    pub fn pay_out_credit_balance(&mut self, value: Amount) -> Result<Posting, CreditError> {
        self.check_positive(value)?;
        if self.status == AccountStatus::ChargedOff {
            return Err(CreditError::AccountChargedOff);
        }
        let payable = self.payable_credit_balance()?;
        if value.minor() > payable.minor() {
            return Err(CreditError::PayoutExceedsCreditBalance {
                requested: value.to_string(),
                payable: payable.to_string(),
                credit_balance: self.credit_balance.to_string(),
                billed: self.checked_billed_balance()?.to_string(),
            });
        }
        let paid_out = match self.activity.credit_balance_paid_out {
            Some(before) => add(before, value)?,
            None => value,
        };
        self.credit_balance = self.credit_balance.checked_sub(value)?;
        self.activity.credit_balance_paid_out = Some(paid_out);
        Ok(Posting::new("credit balance paid out")
            .debit(LedgerRole::CustomerCreditBalance, value)
            .credit(LedgerRole::CustomerPayoutPayable, value))
    }

    /// Takes back into the credit balance `value` of a payout the bank did not make or the
    /// receiving bank sent back: the payable to the customer becomes credit balance again,
    /// and what was paid out is lowered by it. Any status: it is the customer's money
    /// coming back, whatever became of the account meanwhile. Never more than was paid out.
    pub fn return_credit_balance_payout(&mut self, value: Amount) -> Result<Posting, CreditError> {
        self.check_positive(value)?;
        let paid_out = self
            .activity
            .credit_balance_paid_out
            .unwrap_or(Amount::zero(self.currency));
        if value.minor() > paid_out.minor() {
            return Err(CreditError::PayoutReturnExceedsPaidOut {
                returned: value.to_string(),
                paid_out: paid_out.to_string(),
            });
        }
        self.credit_balance = add(self.credit_balance, value)?;
        self.activity.credit_balance_paid_out = Some(paid_out.checked_sub(value)?);
        Ok(Posting::new("credit balance payout returned")
            .debit(LedgerRole::CustomerPayoutPayable, value)
            .credit(LedgerRole::CustomerCreditBalance, value))
    }

    /// Uses the credit balance (overpayments, refunds, write-offs of paid purchases) to settle
    /// billed items, in the allocation order. Returns what it used.
    pub(super) fn apply_credit_balance(
        &mut self,
        date: Date,
        policy: &AccountPolicy,
        outcome: &mut DayOutcome,
    ) -> Result<Amount, CreditError> {
        let before = self.credit_balance;
        if !before.is_positive() || !self.dues.iter().any(Due::owes) {
            return Ok(Amount::zero(self.currency));
        }
        let mut applied = Vec::new();
        let left = allocate(
            &mut self.dues,
            before,
            date,
            &policy.allocation_order,
            &mut applied,
        )?;
        let used = before.checked_sub(left)?;
        self.credit_balance = left;
        if used.is_positive() {
            self.activity.credit_balance_applied = add(self.activity.credit_balance_applied, used)?;
            self.record_paid(date, &applied)?;
            outcome.postings.push(
                Posting::new("credit balance applied")
                    .debit(LedgerRole::CustomerCreditBalance, used)
                    .credit(LedgerRole::CustomerReceivable, used),
            );
            self.settle_paid_plans();
        }
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::product::EarlyPayoffRule;
    use crate::schedule::Cycle;
    use jiff::civil::date;
    use tally_core::Currency;

    #[test]
    fn a_credit_balance_is_paid_out_in_parts_and_the_account_then_closes() {
        let mut account = holding_150();
        assert_eq!(account.payable_credit_balance().unwrap(), cny("150.00"));
        let posting = account.pay_out_credit_balance(cny("40.00")).unwrap();
        assert_eq!(posting.imbalance(), 0);
        assert_eq!(
            posting.legs,
            vec![
                crate::posting::PostingLeg {
                    role: LedgerRole::CustomerCreditBalance,
                    side: tally_ledger::Side::Debit,
                    amount: cny("40.00"),
                },
                crate::posting::PostingLeg {
                    role: LedgerRole::CustomerPayoutPayable,
                    side: tally_ledger::Side::Credit,
                    amount: cny("40.00"),
                },
            ]
        );
        assert_eq!(account.credit_balance, cny("110.00"));
        account.pay_out_credit_balance(cny("110.00")).unwrap();
        assert_eq!(account.credit_balance, cny("0.00"));
        // Not a payment: what the customer paid in is unchanged.
        assert_eq!(account.activity.payments, cny("250.00"));
        account.close().unwrap();
        assert_eq!(account.status, AccountStatus::Closed);
    }

    #[test]
    fn a_returned_payout_is_credit_balance_again_and_never_more_than_paid_out() {
        let mut account = holding_150();
        account.pay_out_credit_balance(cny("40.00")).unwrap();
        let before = account.clone();
        let error = account
            .return_credit_balance_payout(cny("40.01"))
            .unwrap_err();
        assert_eq!(error.code(), "credit_payout_return_exceeds_paid_out");
        assert_eq!(account, before);
        let posting = account.return_credit_balance_payout(cny("40.00")).unwrap();
        assert_eq!(posting.imbalance(), 0);
        assert_eq!(
            posting.legs[0],
            crate::posting::PostingLeg {
                role: LedgerRole::CustomerPayoutPayable,
                side: tally_ledger::Side::Debit,
                amount: cny("40.00"),
            }
        );
        assert_eq!(account.credit_balance, cny("150.00"));
        assert_eq!(account.activity.credit_balance_paid_out, Some(cny("0.00")));
        // A charged-off account takes its customer's money back too.
        account.pay_out_credit_balance(cny("10.00")).unwrap();
        account.charge_off().unwrap();
        account.return_credit_balance_payout(cny("10.00")).unwrap();
        assert_eq!(account.credit_balance, cny("150.00"));
    }

    #[test]
    fn payouts_are_refused_with_their_codes_and_change_nothing() {
        let mut account = holding_150();
        let before = account.clone();
        let usd = Amount::parse("10.00", Currency::USD).unwrap();
        for (value, code) in [
            (cny("0.00"), "amount_not_positive"),
            (cny("-1.00"), "amount_not_positive"),
            (usd, "currency_mismatch"),
            (cny("150.01"), "credit_payout_exceeds_credit_balance"),
        ] {
            let error = account.pay_out_credit_balance(value).unwrap_err();
            assert_eq!(error.code(), code, "{value}: {error}");
            assert_eq!(account, before);
        }
        let error = account.pay_out_credit_balance(cny("150.01")).unwrap_err();
        assert!(error.to_string().contains("150.00"), "{error}");
        // Nothing to pay out at all.
        let mut empty = Account::open(cny("1000.00"), Cycle::new(20, 9).unwrap()).unwrap();
        assert_eq!(
            empty
                .pay_out_credit_balance(cny("0.01"))
                .unwrap_err()
                .code(),
            "credit_payout_exceeds_credit_balance"
        );
    }

    #[test]
    fn a_frozen_or_closed_account_pays_out_and_a_charged_off_one_does_not() {
        let mut frozen = holding_150();
        frozen.freeze();
        assert_eq!(frozen.status, AccountStatus::Frozen);
        frozen.pay_out_credit_balance(cny("150.00")).unwrap();
        assert_eq!(frozen.credit_balance, cny("0.00"));

        // A merchant's refund of a settled purchase after the account closed.
        let (mut closed, plan) = with_purchase("100.00", 1, EarlyPayoffRule::PrincipalOnly);
        let (quote, _) = closed.early_payoff_quote(plan).unwrap();
        closed.early_payoff(date(2026, 1, 11), plan, quote).unwrap();
        closed.close().unwrap();
        closed.refund(plan, cny("30.00")).unwrap();
        assert_eq!(closed.credit_balance, cny("30.00"));
        closed.pay_out_credit_balance(cny("30.00")).unwrap();
        assert_eq!(closed.credit_balance, cny("0.00"));
        assert_eq!(closed.status, AccountStatus::Closed);

        let mut charged_off = holding_150();
        charged_off.charge_off().unwrap();
        let before = charged_off.clone();
        let error = charged_off.pay_out_credit_balance(cny("1.00")).unwrap_err();
        assert_eq!(error.code(), "credit_account_charged_off");
        assert_eq!(charged_off, before);
    }

    #[test]
    fn billed_items_still_owed_come_before_a_payout() {
        // Two purchases; the first's installment is billed on 20 January and not yet paid
        // when the second is refunded after being paid off: the refund is credit balance
        // that end of day would use for the bill, so only the rest can be paid out.
        let policy = AccountPolicy::default();
        let (mut account, first) = with_purchase("300.00", 6, EarlyPayoffRule::PrincipalOnly);
        account.authorize(date(2026, 1, 10), cny("200.00")).unwrap();
        let (second, _) = account
            .capture(
                date(2026, 1, 10),
                cny("200.00"),
                &flat(EarlyPayoffRule::PrincipalOnly),
                1,
            )
            .unwrap();
        let (quote, _) = account.early_payoff_quote(second).unwrap();
        account
            .early_payoff(date(2026, 1, 11), second, quote)
            .unwrap();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 21));
        let billed = account.checked_billed_balance().unwrap();
        assert!(billed.is_positive(), "plan {first} billed nothing");
        account.refund(second, cny("200.00")).unwrap();
        assert_eq!(account.credit_balance, cny("200.00"));
        let payable = account.payable_credit_balance().unwrap();
        assert_eq!(payable.minor(), 20_000 - billed.minor());
        let before = account.clone();
        let error = account.pay_out_credit_balance(cny("200.00")).unwrap_err();
        assert_eq!(error.code(), "credit_payout_exceeds_credit_balance");
        assert_eq!(account, before);
        account.pay_out_credit_balance(payable).unwrap();
        // End of day settles the bill from what is left: nothing is billed any more.
        run(&mut account, &policy, date(2026, 1, 22), date(2026, 1, 22));
        assert_eq!(account.checked_billed_balance().unwrap(), cny("0.00"));
        assert_eq!(account.credit_balance, cny("0.00"));
    }
}
