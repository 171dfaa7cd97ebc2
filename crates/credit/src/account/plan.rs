//! Plans: a purchase on credit (or a statement put into installments) with its schedule, and
//! what happens to one plan: billing its installments, early payoff, refund and stolen-account
//! write-off. A plan's billed items are the account's `dues` with its id, so a plan's methods
//! are given them; the `Account` methods below book what the plan's change does to the whole
//! account (credit balance, the cycle's totals, statements not yet judged, delinquency).

use super::statement::add_to;
use super::{add, amount, Account, Bucket, DayOutcome};
use crate::allocation::Due;
use crate::amounts::{scale_down, smaller, total};
use crate::error::CreditError;
use crate::posting::{LedgerRole, Posting};
use crate::product::{EarlyPayoffRule, Product};
use crate::schedule::{Installment, Schedule};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Active,
    Settled,
    Refunded,
    WrittenOffFraud,
    ChargedOff,
}

/// A purchase on credit and its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: u32,
    pub product_code: String,
    pub status: PlanStatus,
    pub early_payoff: EarlyPayoffRule,
    pub fees_refundable: bool,
    pub schedule: Schedule,
    /// Installments billed so far (the first `billed` of the schedule).
    pub billed: u32,
    pub refunded: Amount,
    pub fee_billed: Amount,
    /// Installment interest billed plus daily interest accrued on the plan's items.
    pub interest_billed: Amount,
    pub penalty_charged: Amount,
    /// Merchant discount given back on refunds.
    pub discount_refunded: Amount,
    /// When the purchase was authorised (see [`Account::authorize_purchase_at`]); absent on
    /// bill installments and on purchases stored before Tally kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchased_at: Option<jiff::Timestamp>,
}

/// What billing installments added up to: the cycle's new principal, fees and interest.
pub(super) struct BilledTotals {
    principal: Amount,
    fees: Amount,
    interest: Amount,
}

/// What a refund cancelled of one billed item, with the dates that place it on a statement.
pub(super) struct Cancelled {
    pub(super) statement_date: Date,
    pub(super) due_date: Date,
    pub(super) principal: Amount,
    pub(super) charges: Amount,
}

/// What a refund did to a plan, for the account to book.
struct Refunded {
    posting: Posting,
    /// Principal the customer had already paid, back to their credit balance.
    to_credit_balance: Amount,
    /// Fees and interest the customer had paid, back to their credit balance (a full refund
    /// of refundable fees; zero otherwise).
    charges_paid: Amount,
    /// Everything given back to the credit balance: `to_credit_balance` + `charges_paid`.
    given_back: Amount,
    /// What the refund cancelled of billed items, in all and item by item.
    billed_cancelled: Amount,
    cancelled: Vec<Cancelled>,
}

/// What writing a plan off as stolen takes off the account, computed before anything
/// changes so that a total that would not fit refuses the write-off unchanged.
struct StolenWriteOff {
    /// What the customer still owed for the plan, billed or not.
    owed: Amount,
    /// Of `owed`, what its billed items owed.
    owed_billed: Amount,
    /// What the customer had paid for it: given back to their credit balance.
    give_back: Amount,
    posting: Posting,
}

impl Plan {
    /// A new active plan `id` of `product` on `schedule`, nothing billed, refunded or charged
    /// yet. A purchase's fees are refundable when its product's are; a bill installment's
    /// are not.
    pub(super) fn new(
        id: u32,
        product: &Product,
        schedule: Schedule,
        fees_refundable: bool,
    ) -> Plan {
        let zero = Amount::zero(schedule.principal.currency());
        Plan {
            id,
            product_code: product.code.clone(),
            status: PlanStatus::Active,
            early_payoff: product.early_payoff,
            fees_refundable,
            schedule,
            billed: 0,
            refunded: zero,
            fee_billed: zero,
            interest_billed: zero,
            penalty_charged: zero,
            discount_refunded: zero,
            purchased_at: None,
        }
    }

    /// The principal of installments not yet billed: part of the plan's principal (the parts
    /// are never negative and sum to it), so the sum fits; it is checked all the same.
    pub(super) fn unbilled_principal(&self) -> Result<Amount, CreditError> {
        total(
            self.schedule.principal.currency(),
            self.schedule
                .installments
                .iter()
                .skip(self.billed as usize)
                .map(|item| item.principal),
        )
    }

    /// Everything the installments not yet billed will bill, charges included.
    pub(super) fn unbilled_total(&self) -> Result<Amount, CreditError> {
        let mut owed = Amount::zero(self.schedule.principal.currency());
        for item in &self.schedule.installments[self.billed as usize..] {
            owed = add(owed, item.total()?)?;
        }
        Ok(owed)
    }

    /// What the plan's billed items still owe.
    fn billed_outstanding(&self, dues: &[Due]) -> Result<Amount, CreditError> {
        let currency = self.schedule.principal.currency();
        let mut billed = Amount::zero(currency);
        for due in dues.iter().filter(|due| due.plan_id == self.id) {
            billed = add(billed, amount(due.checked_outstanding()?, currency))?;
        }
        Ok(billed)
    }

    /// Zeroes what the plan's billed items owe.
    fn clear_billed(&self, dues: &mut [Due]) {
        let zero = Amount::zero(self.schedule.principal.currency());
        for due in dues.iter_mut().filter(|due| due.plan_id == self.id) {
            due.principal = zero;
            due.fee = zero;
            due.interest = zero;
            due.penalty = zero;
        }
    }

    /// Settles an active plan whose installments are all billed and whose billed items owe
    /// nothing.
    fn settle_if_paid(&mut self, dues: &[Due]) {
        if self.status != PlanStatus::Active
            || (self.billed as usize) < self.schedule.installments.len()
        {
            return;
        }
        let owes = dues.iter().any(|due| due.plan_id == self.id && due.owes());
        if !owes {
            self.status = PlanStatus::Settled;
        }
    }

    /// Bills an active plan's installments whose statement date has come by `date`: each
    /// becomes a due item, and its principal, fee and interest are added to `billed`.
    fn bill_installments(
        &mut self,
        date: Date,
        dues: &mut Vec<Due>,
        billed: &mut BilledTotals,
    ) -> Result<(), CreditError> {
        if self.status != PlanStatus::Active {
            return Ok(());
        }
        let zero = Amount::zero(self.schedule.principal.currency());
        while let Some(item) = self.schedule.installments.get(self.billed as usize) {
            if item.statement_date > date {
                break;
            }
            let item_total = item.total()?;
            dues.push(Due {
                plan_id: self.id,
                installment: item.number,
                statement_date: item.statement_date,
                due_date: item.due_date,
                revolving: false,
                principal: item.principal,
                fee: item.fee,
                interest: item.interest,
                penalty: zero,
                penalty_charged: zero,
                billed: item_total,
            });
            self.fee_billed = add(self.fee_billed, item.fee)?;
            self.interest_billed = add(self.interest_billed, item.interest)?;
            billed.principal = add(billed.principal, item.principal)?;
            billed.fees = add(billed.fees, item.fee)?;
            billed.interest = add(billed.interest, item.interest)?;
            self.billed += 1;
        }
        Ok(())
    }

    /// What paying the plan off today costs (its billed items still owed, its unbilled
    /// principal, and the charge its early payoff rule states), and that charge.
    fn early_payoff_quote(&self, dues: &[Due]) -> Result<(Amount, Amount), CreditError> {
        if self.status != PlanStatus::Active {
            return Err(CreditError::PlanNotActive(self.id));
        }
        let currency = self.schedule.principal.currency();
        let billed = self.billed_outstanding(dues)?;
        let unbilled = &self.schedule.installments[self.billed as usize..];
        let charges = |item: &Installment| add(item.fee, item.interest);
        let charge = match self.early_payoff {
            EarlyPayoffRule::PrincipalOnly => Amount::zero(currency),
            EarlyPayoffRule::OneMorePeriod => match unbilled.first() {
                Some(item) => charges(item)?,
                None => Amount::zero(currency),
            },
            EarlyPayoffRule::AllRemainingCharges => {
                let mut all = Amount::zero(currency);
                for item in unbilled {
                    all = add(all, charges(item)?)?;
                }
                all
            }
        };
        let quote = total(currency, [billed, self.unbilled_principal()?, charge])?;
        Ok((quote, charge))
    }

    /// Pays the plan off: its billed items owe nothing, every installment counts as billed,
    /// and the early payoff `charge` is billed as a fee. The fee total is computed before
    /// anything changes.
    fn pay_off(&mut self, charge: Amount, dues: &mut [Due]) -> Result<(), CreditError> {
        let fee_billed = add(self.fee_billed, charge)?;
        self.clear_billed(dues);
        self.billed = self.schedule.periods;
        self.status = PlanStatus::Settled;
        self.fee_billed = fee_billed;
        Ok(())
    }

    /// Refunds `value` of the plan's principal (see [`Account::refund`]): unbilled
    /// installments last-first, then billed principal still owed (newest first), then
    /// principal already paid; on a full refund of refundable fees, every fee and interest
    /// too. Returns the posting and what the account books: the credit balance given back
    /// and what was cancelled of billed items.
    fn refund(&mut self, value: Amount, dues: &mut [Due]) -> Result<Refunded, CreditError> {
        let plan_id = self.id;
        let currency = self.schedule.principal.currency();
        if !matches!(self.status, PlanStatus::Active | PlanStatus::Settled) {
            return Err(CreditError::PlanNotActive(plan_id));
        }
        let refundable = self.schedule.principal.checked_sub(self.refunded)?;
        if value.minor() > refundable.minor() {
            return Err(CreditError::RefundExceedsPrincipal {
                requested: value.to_string(),
                refundable: refundable.to_string(),
            });
        }
        // Unbilled installments first, the last first: the plan ends sooner, and the charges
        // of what is left follow what is still owed (`Schedule::take_principal_from_last`).
        // Unbilled charges were never posted: cancelling them moves no money.
        let billed = self.billed as usize;
        let mut from_receivable = amount(
            self.schedule
                .take_principal_from_last(billed, value.minor())?,
            currency,
        );
        let mut left = value.checked_sub(from_receivable)?;
        let zero = Amount::zero(currency);
        let mut billed_cancelled = zero;
        let mut plan_dues: Vec<usize> = (0..dues.len())
            .filter(|position| dues[*position].plan_id == plan_id)
            .collect();
        plan_dues.sort_by_key(|position| std::cmp::Reverse(dues[*position].installment));
        // What the refund cancels of each billed item, in the order of `plan_dues`:
        // principal, then (on a full refund of refundable fees) fee and interest. Each
        // statement not yet judged takes its minimum's part of it off
        // (`OpenStatement::refunded`).
        let mut cancelled: Vec<Cancelled> = plan_dues
            .iter()
            .map(|position| Cancelled {
                statement_date: dues[*position].statement_date,
                due_date: dues[*position].due_date,
                principal: zero,
                charges: zero,
            })
            .collect();
        for (position, item) in plan_dues.iter().zip(&mut cancelled) {
            if left.is_zero() {
                break;
            }
            let due = &mut dues[*position];
            let take = smaller(left, due.principal);
            due.principal = due.principal.checked_sub(take)?;
            left = left.checked_sub(take)?;
            from_receivable = add(from_receivable, take)?;
            billed_cancelled = add(billed_cancelled, take)?;
            item.principal = take;
        }
        let to_credit_balance = left;
        self.refunded = add(self.refunded, value)?;
        let full = self.refunded == self.schedule.principal;
        // The merchant gives back the refunded principal less its share of the merchant
        // discount, which we give up in proportion (rounded down; the rest on a full refund).
        let discount = self.schedule.merchant_discount;
        let discount_share = if full {
            discount.checked_sub(self.discount_refunded)?
        } else {
            // The value is at most what is left to refund, so at most the principal.
            scale_down(discount, value, self.schedule.principal)?
        };
        self.discount_refunded = add(self.discount_refunded, discount_share)?;
        let mut posting = Posting::new(format!("refund of plan {plan_id}"))
            .debit(
                LedgerRole::MerchantPayable,
                value.checked_sub(discount_share)?,
            )
            .debit(LedgerRole::MerchantDiscountIncome, discount_share)
            .credit(LedgerRole::CustomerReceivable, from_receivable)
            .credit(LedgerRole::CustomerCreditBalance, to_credit_balance);
        let mut given_back = to_credit_balance;
        let mut charges_paid = zero;
        if full {
            self.status = PlanStatus::Refunded;
            if self.fees_refundable {
                let (fee_billed, interest_billed) = (self.fee_billed, self.interest_billed);
                let mut outstanding = zero;
                for (position, item) in plan_dues.iter().zip(&mut cancelled) {
                    let due = &mut dues[*position];
                    let charges = add(due.fee, due.interest)?;
                    outstanding = add(outstanding, charges)?;
                    item.charges = charges;
                    due.fee = zero;
                    due.interest = zero;
                }
                let paid = add(fee_billed, interest_billed)?.checked_sub(outstanding)?;
                given_back = add(given_back, paid)?;
                billed_cancelled = add(billed_cancelled, outstanding)?;
                posting = posting
                    .debit(LedgerRole::FeeIncome, fee_billed)
                    .debit(LedgerRole::InterestIncome, interest_billed)
                    .credit(LedgerRole::CustomerReceivable, outstanding)
                    .credit(LedgerRole::CustomerCreditBalance, paid);
                charges_paid = paid;
            }
        }
        Ok(Refunded {
            posting,
            to_credit_balance,
            charges_paid,
            given_back,
            billed_cancelled,
            cancelled,
        })
    }

    /// What writing the plan off as bought by a thief takes off (see
    /// [`Account::write_off_stolen`]): everything still owed for it, and what the customer
    /// paid for it back to them. Refused for a plan neither active nor settled.
    fn stolen_write_off(&self, dues: &[Due]) -> Result<StolenWriteOff, CreditError> {
        let plan_id = self.id;
        let currency = self.schedule.principal.currency();
        if !matches!(self.status, PlanStatus::Active | PlanStatus::Settled) {
            return Err(CreditError::PlanNotActive(plan_id));
        }
        let zero = Amount::zero(currency);
        let mut owed_principal = self.unbilled_principal()?;
        let mut owed_charges = zero;
        let mut owed_billed = zero;
        for due in dues.iter().filter(|due| due.plan_id == plan_id) {
            owed_principal = add(owed_principal, due.principal)?;
            owed_billed = add(owed_billed, amount(due.checked_outstanding()?, currency))?;
            owed_charges = total(currency, [owed_charges, due.fee, due.interest, due.penalty])?;
        }
        let (fee_billed, interest_billed, penalty_charged) =
            (self.fee_billed, self.interest_billed, self.penalty_charged);
        let principal_net = self.schedule.principal.checked_sub(self.refunded)?;
        let principal_paid = principal_net.checked_sub(owed_principal)?;
        let charges_billed = total(currency, [fee_billed, interest_billed, penalty_charged])?;
        let charges_paid = charges_billed.checked_sub(owed_charges)?;
        let give_back = add(principal_paid, charges_paid)?;
        let owed = add(owed_principal, owed_charges)?;
        let posting = Posting::new(format!("stolen-account write-off of plan {plan_id}"))
            .debit(LedgerRole::FraudLossExpense, principal_net)
            .debit(LedgerRole::FeeIncome, fee_billed)
            .debit(LedgerRole::InterestIncome, interest_billed)
            .debit(LedgerRole::PenaltyIncome, penalty_charged)
            .credit(LedgerRole::CustomerReceivable, owed)
            .credit(LedgerRole::CustomerCreditBalance, give_back);
        Ok(StolenWriteOff {
            owed,
            owed_billed,
            give_back,
            posting,
        })
    }
}

impl BilledTotals {
    fn zero(currency: tally_core::Currency) -> BilledTotals {
        let zero = Amount::zero(currency);
        BilledTotals {
            principal: zero,
            fees: zero,
            interest: zero,
        }
    }
}

impl Account {
    pub(super) fn plan_index(&self, plan_id: u32) -> Result<usize, CreditError> {
        self.plans
            .iter()
            .position(|plan| plan.id == plan_id)
            .ok_or(CreditError::PlanNotFound(plan_id))
    }

    /// Adds an active plan of `product` on `schedule` under the next plan id, and returns it.
    pub(super) fn add_plan(
        &mut self,
        product: &Product,
        schedule: Schedule,
        fees_refundable: bool,
    ) -> u32 {
        let id = self.next_plan_id;
        self.next_plan_id += 1;
        self.plans
            .push(Plan::new(id, product, schedule, fees_refundable));
        id
    }

    /// Settles every active plan that is fully billed and owes nothing.
    pub(super) fn settle_paid_plans(&mut self) {
        for plan in &mut self.plans {
            plan.settle_if_paid(&self.dues);
        }
    }

    /// Bills every active plan's installments whose statement date has come by `date`, and
    /// posts their fees and interest.
    pub(super) fn bill_installments(
        &mut self,
        date: Date,
        outcome: &mut DayOutcome,
    ) -> Result<(), CreditError> {
        let mut billed = BilledTotals::zero(self.currency);
        for plan in &mut self.plans {
            plan.bill_installments(date, &mut self.dues, &mut billed)?;
        }
        // Billed on any day of the cycle (pay-in-N installments fall due between statement
        // dates): the next statement's header counts them.
        add_to(&mut self.activity.billed_principal, billed.principal)?;
        add_to(&mut self.activity.billed_fees, billed.fees)?;
        self.activity.interest = add(self.activity.interest, billed.interest)?;
        if billed.fees.is_positive() || billed.interest.is_positive() {
            outcome.postings.push(
                Posting::new("installment fees and interest billed")
                    .debit(
                        LedgerRole::CustomerReceivable,
                        add(billed.fees, billed.interest)?,
                    )
                    .credit(LedgerRole::FeeIncome, billed.fees)
                    .credit(LedgerRole::InterestIncome, billed.interest),
            );
        }
        Ok(())
    }

    /// What paying plan `plan_id` off today costs: its billed items still owed, its unbilled
    /// principal, and the charge its early payoff rule states.
    pub fn early_payoff_quote(&self, plan_id: u32) -> Result<(Amount, Amount), CreditError> {
        self.plans[self.plan_index(plan_id)?].early_payoff_quote(&self.dues)
    }

    /// Pays plan `plan_id` off on `date` with `value` (at least the quote; the rest is credit
    /// balance). The quote counts towards an open statement's minimum.
    /// A plan that owes nothing more (quote zero) settles with a zero value and an empty
    /// posting, which the caller does not send to the ledger.
    pub fn early_payoff(
        &mut self,
        date: Date,
        plan_id: u32,
        value: Amount,
    ) -> Result<Posting, CreditError> {
        self.check_currency(value)?;
        if value.is_negative() {
            return Err(CreditError::AmountNotPositive(value.to_string()));
        }
        let (quote, charge) = self.early_payoff_quote(plan_id)?;
        if value.minor() < quote.minor() {
            return Err(CreditError::PayoffBelowQuote {
                plan: plan_id,
                needed: quote.to_string(),
                given: value.to_string(),
            });
        }
        let index = self.plan_index(plan_id)?;
        // Every total first, so that one that would not fit refuses the payoff unchanged.
        let billed_paid = self.plans[index].billed_outstanding(&self.dues)?;
        let excess = value.checked_sub(quote)?;
        let credit_balance = add(self.credit_balance, excess)?;
        let payments = add(self.activity.payments, value)?;
        let mut payments_applied = self.activity.payments_applied;
        add_to(&mut payments_applied, billed_paid)?;
        self.plans[index].pay_off(charge, &mut self.dues)?;
        self.credit_balance = credit_balance;
        self.activity.payments = payments;
        self.activity.payments_applied = payments_applied;
        for open in self.unjudged_statements_mut() {
            open.record_paid(date, plan_id, quote)?;
        }
        Ok(Posting::new(format!("early payoff of plan {plan_id}"))
            .debit(LedgerRole::RepaymentClearing, value)
            .debit(LedgerRole::CustomerReceivable, charge)
            .credit(LedgerRole::FeeIncome, charge)
            .credit(LedgerRole::CustomerReceivable, quote)
            .credit(LedgerRole::CustomerCreditBalance, excess))
    }

    /// Refunds `value` of plan `plan_id`'s principal: unbilled installments last-first, so the
    /// plan ends sooner and no remaining installment's principal rises (a flat fee shrinks
    /// with its installment's principal, rounded down; interest on a declining balance is
    /// charged again on what is still owed, see [`Schedule::take_principal_from_last`]),
    /// then billed principal still owed
    /// (newest first), then principal already paid back to the customer's credit balance. On
    /// a full refund of a product whose fees are refundable, every fee and interest of the
    /// plan is reversed too (a partial refund reverses no billed fee). The merchant returns
    /// the refunded principal less its proportional share of the merchant discount.
    pub fn refund(&mut self, plan_id: u32, value: Amount) -> Result<Posting, CreditError> {
        self.check_positive(value)?;
        let index = self.plan_index(plan_id)?;
        let refunded = self.plans[index].refund(value, &mut self.dues)?;
        self.credit_balance = add(self.credit_balance, refunded.charges_paid)?;
        self.credit_balance = add(self.credit_balance, refunded.to_credit_balance)?;
        self.activity.refunds = add(self.activity.refunds, value)?;
        add_to(
            &mut self.activity.refunds_applied,
            refunded.billed_cancelled,
        )?;
        for open in self.unjudged_statements_mut() {
            open.refunded(plan_id, &refunded.cancelled, refunded.given_back)?;
        }
        self.settle_paid_plans();
        Ok(refunded.posting)
    }

    /// Writes plan `plan_id` off as bought by a thief: the customer owes nothing for it, gets
    /// back whatever they paid for it (credit balance), carries no penalty or delinquency for
    /// it, and the principal is a fraud loss; its fees, interest and penalties are reversed.
    pub fn write_off_stolen(&mut self, date: Date, plan_id: u32) -> Result<Posting, CreditError> {
        let index = self.plan_index(plan_id)?;
        // Every total first, so that one that would not fit refuses the write-off unchanged.
        let write_off = self.plans[index].stolen_write_off(&self.dues)?;
        let credit_balance = add(self.credit_balance, write_off.give_back)?;
        let written_off = add(self.activity.written_off, write_off.owed)?;
        let mut written_off_applied = self.activity.written_off_applied;
        add_to(&mut written_off_applied, write_off.owed_billed)?;
        let plan = &mut self.plans[index];
        plan.clear_billed(&mut self.dues);
        plan.status = PlanStatus::WrittenOffFraud;
        self.credit_balance = credit_balance;
        self.activity.written_off = written_off;
        self.activity.written_off_applied = written_off_applied;
        for open in self.unjudged_statements_mut() {
            // None of the plan's part of the minimum is the customer's any more.
            open.written_off(plan_id, write_off.give_back)?;
        }
        self.refresh_delinquency_during_day(date);
        if self.bucket == Bucket::Current && self.frozen_by_delinquency {
            self.unfreeze();
        }
        Ok(write_off.posting)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::account::{AccountPolicy, AccountStatus};
    use crate::product::{FeeModel, TermPricing};
    use crate::schedule::Cycle;
    use jiff::civil::date;
    use rust_decimal::Decimal;

    #[test]
    fn early_payoff_quotes_follow_the_product_rule() {
        // 1,200.00 over 6 at 0.6%: 200.00 + 7.20 a month. After the first statement, 1,000.00
        // is unbilled and 207.20 billed.
        for (rule, charge) in [
            (EarlyPayoffRule::PrincipalOnly, "0.00"),
            (EarlyPayoffRule::OneMorePeriod, "7.20"),
            (EarlyPayoffRule::AllRemainingCharges, "36.00"),
        ] {
            let (mut account, plan) = with_purchase("1200.00", 6, rule);
            run(
                &mut account,
                &AccountPolicy::default(),
                date(2026, 1, 11),
                date(2026, 1, 20),
            );
            let (quote, quoted_charge) = account.early_payoff_quote(plan).unwrap();
            assert_eq!(quoted_charge, cny(charge));
            assert_eq!(
                quote,
                cny("1207.20").checked_add(cny(charge)).unwrap(),
                "{rule:?}"
            );
            let posting = account
                .early_payoff(
                    date(2026, 1, 20),
                    plan,
                    quote.checked_add(cny("1.00")).unwrap(),
                )
                .unwrap();
            assert_eq!(posting.imbalance(), 0);
            assert_eq!(account.credit_balance, cny("1.00"));
            assert_eq!(account.unpaid_principal(), cny("0.00"));
            assert_eq!(account.plans[0].status, PlanStatus::Settled);
        }
    }

    #[test]
    fn a_partial_refund_comes_off_the_last_installments_first() {
        let (mut account, plan) = with_purchase("1200.00", 6, EarlyPayoffRule::PrincipalOnly);
        run(
            &mut account,
            &AccountPolicy::default(),
            date(2026, 1, 11),
            date(2026, 1, 20),
        );
        let posting = account.refund(plan, cny("300.00")).unwrap();
        assert_eq!(posting.imbalance(), 0);
        let parts: Vec<(Amount, Amount)> = account.plans[0]
            .schedule
            .installments
            .iter()
            .map(|item| (item.principal, item.fee))
            .collect();
        // Installment 6 is gone with its fee; installment 5 keeps half its principal and half
        // its fee (7.20 × 100/200 = 3.60, rounded down).
        assert_eq!(parts[5], (cny("0.00"), cny("0.00")));
        assert_eq!(parts[4], (cny("100.00"), cny("3.60")));
        assert_eq!(parts[3], (cny("200.00"), cny("7.20")));
        assert_eq!(account.unpaid_principal(), cny("900.00"));
        // Refunding more than is left is refused and changes nothing.
        let before = account.clone();
        let error = account.refund(plan, cny("900.01")).unwrap_err();
        assert_eq!(error.code(), "credit_refund_exceeds_principal");
        assert_eq!(account, before);
    }

    #[test]
    fn write_off_after_revolving_interest_refunds_exactly_what_was_paid() {
        // Regression: daily interest accrued on a plan's items was not counted as billed to
        // the plan, so the write-off gave back a negative amount and the ledger refused it.
        let (mut account, plan) = with_purchase("1200.00", 6, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
        // Statement 20 January: 207.20, minimum 20.00 + 7.20 = 27.20, paid; the rest revolves.
        account
            .repay(date(2026, 1, 25), cny("27.20"), &policy)
            .unwrap();
        run(&mut account, &policy, date(2026, 1, 21), date(2026, 2, 10));
        let accrued = account.plans[0].interest_billed;
        // 12 days (30 January to 10 February) of 180.00 × 0.05% = 0.09.
        assert_eq!(accrued, cny("1.08"));
        let posting = account.write_off_stolen(date(2026, 2, 10), plan).unwrap();
        assert_eq!(posting.imbalance(), 0);
        assert!(posting.legs.iter().all(|leg| leg.amount.is_positive()));
        // The customer gets back the 27.20 paid and owes nothing.
        assert_eq!(account.credit_balance, cny("27.20"));
        assert_eq!(account.billed_balance(), cny("0.00"));
        assert_eq!(account.unpaid_principal(), cny("0.00"));
    }

    #[test]
    fn a_stolen_purchase_leaves_no_delinquency_behind() {
        let (mut account, plan) = with_purchase("1200.00", 6, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        // Never paid: due 29 January, M1 and frozen from 30 January, penalties from 2 February.
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 2, 5));
        assert_eq!(account.bucket, Bucket::M1);
        assert_eq!(account.status, AccountStatus::Frozen);
        assert!(account.plans[0].penalty_charged.is_positive());
        let posting = account.write_off_stolen(date(2026, 2, 5), plan).unwrap();
        assert_eq!(account.bucket, Bucket::Current);
        assert_eq!(account.days_past_due, 0);
        assert_eq!(account.status, AccountStatus::Open);
        // The penalties are reversed out of penalty income with everything else.
        assert!(posting
            .legs
            .iter()
            .any(|leg| leg.role == LedgerRole::PenaltyIncome
                && leg.side == tally_ledger::Side::Debit));
        assert!(posting
            .legs
            .iter()
            .any(|leg| leg.role == LedgerRole::FraudLossExpense && leg.amount == cny("1200.00")));
        assert_eq!(account.credit_balance, cny("0.00"));
        assert!(account.authorize(date(2026, 2, 5), cny("100.00")).is_ok());
    }

    #[test]
    fn a_refund_gives_back_the_merchant_discount_in_proportion() {
        let product = Product {
            fee_model: FeeModel::InterestFree,
            terms: vec![TermPricing::new(3, Decimal::new(3, 2))],
            ..flat(EarlyPayoffRule::PrincipalOnly)
        };
        let mut account = Account::open(cny("5000.00"), Cycle::new(20, 9).unwrap()).unwrap();
        account
            .authorize(date(2026, 1, 10), cny("1000.01"))
            .unwrap();
        let (plan, purchase) = account
            .capture(date(2026, 1, 10), cny("1000.01"), &product, 3)
            .unwrap();
        // 3% of 1,000.01 = 30.0003, half-up 30.00: the merchant is owed 970.01.
        let merchant = |posting: &Posting, role: LedgerRole| {
            posting
                .legs
                .iter()
                .find(|leg| leg.role == role)
                .map(|leg| leg.amount)
        };
        assert_eq!(
            merchant(&purchase, LedgerRole::MerchantPayable),
            Some(cny("970.01"))
        );
        // Half back: 30.00 × 500.00 / 1,000.01 = 14.9998…, down to 14.99.
        let first = account.refund(plan, cny("500.00")).unwrap();
        assert_eq!(
            merchant(&first, LedgerRole::MerchantDiscountIncome),
            Some(cny("14.99"))
        );
        assert_eq!(
            merchant(&first, LedgerRole::MerchantPayable),
            Some(cny("485.01"))
        );
        // The rest: the remaining 15.01 of the discount, so the merchant nets to zero.
        let second = account.refund(plan, cny("500.01")).unwrap();
        assert_eq!(
            merchant(&second, LedgerRole::MerchantDiscountIncome),
            Some(cny("15.01"))
        );
        assert_eq!(
            merchant(&second, LedgerRole::MerchantPayable),
            Some(cny("485.00"))
        );
    }

    #[test]
    fn a_full_refund_returns_paid_principal_and_refundable_fees() {
        let (mut account, plan) = with_purchase("1200.00", 6, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
        account
            .repay(date(2026, 1, 25), cny("207.20"), &policy)
            .unwrap();
        let posting = account.refund(plan, cny("1200.00")).unwrap();
        assert_eq!(posting.imbalance(), 0);
        // 200.00 principal and the 7.20 fee paid come back as credit balance.
        assert_eq!(account.credit_balance, cny("207.20"));
        assert_eq!(account.plans[0].status, PlanStatus::Refunded);
        assert_eq!(account.unpaid_principal(), cny("0.00"));
        assert_eq!(account.billed_balance(), cny("0.00"));
    }
}
