//! Statements: the statement cut each cycle (its header reconciles with its lines), the
//! minimum payment and each plan's part of it, the statements not yet judged and what
//! counts towards their minimum, judging one at the end of its due date, and putting a
//! statement into installments. Apart from the account's limits and plans because a
//! statement is a view of the account's billed items at one date, kept until it is judged.

use super::plan::Cancelled;
use super::{add, amount, shown, Account, AccountPolicy, Bucket};
use crate::allocation::{Applied, Due};
use crate::amounts::{net, scale_down, smaller, total, zero_if_negative};
use crate::error::CreditError;
use crate::product::Product;
use crate::schedule::{Cycle, Schedule};
use jiff::civil::Date;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Currency, Rounding};

/// The statement of the current cycle, until its due date has been judged.
///
/// **When the minimum is met.** At the end of the due date (so payments dated on or before
/// it count, and none dated after), the statement is judged: the minimum is met when what
/// the customer's money settled on the account since the statement reaches the minimum less
/// the part of it that refunds and stolen-account write-offs have since taken away (never
/// below zero). What the customer's money settled: repayments (the part that settled billed
/// items; an overpayment counts when its credit balance settles items), early payoffs (the
/// quote paid), and credit balance applied by end of day. Money a refund or write-off gives
/// back to the credit balance is first taken out of what that plan was paid in this window,
/// so that it counts once, when it settles something else. The part of the minimum a
/// refund or write-off takes away is, per plan, its overdue items, its current fees,
/// interest and penalties, and the principal share of its current principal (rounded
/// down), as they stood when the statement was cut: all of it on a write-off; on a refund,
/// what the refund cancelled of those (of cancelled current principal, the plan's principal
/// share in proportion, rounded down).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenStatement {
    pub statement_date: Date,
    pub due_date: Date,
    pub minimum_payment: Amount,
    /// What the customer's money settled on the account since the statement (see above).
    pub paid: Amount,
    /// Each plan's part of the minimum and what was paid on it since the statement; empty on
    /// statements cut before Tally kept it (their minimum is judged on `paid` alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanMinimum>,
}

/// One plan's part in an open statement's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMinimum {
    pub plan_id: u32,
    /// The plan's part of the minimum when the statement was cut (principal share rounded
    /// down, so the parts never add up to more than the minimum).
    pub share: Amount,
    /// The plan's current (not overdue) principal on the statement, and the part of `share`
    /// that is its principal share: a refund of current principal takes that part away in
    /// proportion (rounded down).
    pub current_principal: Amount,
    pub principal_share: Amount,
    /// The part of `share` refunds and write-offs have taken away since.
    pub excused: Amount,
    /// What the customer's money settled on this plan since the statement.
    pub paid: Amount,
}

impl PlanMinimum {
    /// Plan `plan_id`'s part, before anything is counted in it.
    fn zero(plan_id: u32, currency: Currency) -> PlanMinimum {
        let zero = Amount::zero(currency);
        PlanMinimum {
            plan_id,
            share: zero,
            current_principal: zero,
            principal_share: zero,
            excused: zero,
            paid: zero,
        }
    }
}

impl OpenStatement {
    /// The statement `statement` opens until it is judged, with each plan's part of its
    /// minimum; nothing paid yet.
    fn opened(statement: &Statement, plans: Vec<PlanMinimum>) -> OpenStatement {
        OpenStatement {
            statement_date: statement.statement_date,
            due_date: statement.due_date,
            minimum_payment: statement.minimum_payment,
            paid: Amount::zero(statement.minimum_payment.currency()),
            plans,
        }
    }

    /// The minimum less what refunds and write-offs took away, never below zero. Exact for
    /// every statement the credit rules keep (see [`OpenStatement::checked_minimum_due`]).
    pub fn minimum_due(&self) -> Amount {
        shown(
            self.checked_minimum_due(),
            Amount::zero(self.minimum_payment.currency()),
        )
    }

    /// The minimum less what refunds and write-offs took away, never below zero: once they
    /// took the whole minimum away, nothing is due. Each plan's excused part is at most its
    /// share and the shares add up to at most the minimum, so the sum fits; it is checked.
    pub fn checked_minimum_due(&self) -> Result<Amount, CreditError> {
        let currency = self.minimum_payment.currency();
        let excused = total(currency, self.plans.iter().map(|plan| plan.excused))?;
        Ok(zero_if_negative(self.minimum_payment.checked_sub(excused)?))
    }

    /// What is still to pay by the due date for the minimum to be met.
    pub fn still_to_pay(&self) -> Amount {
        shown(
            self.checked_still_to_pay(),
            Amount::zero(self.minimum_payment.currency()),
        )
    }

    /// What is still to pay by the due date for the minimum to be met: the minimum due less
    /// what was paid, nothing once that reaches it.
    pub fn checked_still_to_pay(&self) -> Result<Amount, CreditError> {
        Ok(zero_if_negative(
            self.checked_minimum_due()?.checked_sub(self.paid)?,
        ))
    }

    /// Judges the statement at the end of its due date: minimum met, its items still owed
    /// (in `dues`, the account's billed items) revolve to the next due date on `cycle`
    /// (interest from the day after); not met, they stay due on their own due date and
    /// become overdue.
    fn judge(&self, cycle: Cycle, dues: &mut [Due]) -> Result<(), CreditError> {
        if !self.checked_still_to_pay()?.is_zero() {
            return Ok(());
        }
        let next_statement = self.statement_date.checked_add(1.month())?;
        let next_due = cycle.due_date(next_statement)?;
        for due in dues.iter_mut().filter(|due| {
            due.statement_date <= self.statement_date && due.owes() && due.due_date >= self.due_date
        }) {
            due.revolving = true;
            due.due_date = next_due;
        }
        Ok(())
    }

    fn plan_mut(&mut self, plan_id: u32) -> &mut PlanMinimum {
        let position = match self.plans.iter().position(|plan| plan.plan_id == plan_id) {
            Some(position) => position,
            None => {
                let currency = self.minimum_payment.currency();
                self.plans.push(PlanMinimum::zero(plan_id, currency));
                self.plans.len() - 1
            }
        };
        &mut self.plans[position]
    }

    /// Counts `value` the customer's money settled on plan `plan_id` on `date`.
    pub(super) fn record_paid(
        &mut self,
        date: Date,
        plan_id: u32,
        value: Amount,
    ) -> Result<(), CreditError> {
        if date > self.due_date || value.is_zero() {
            return Ok(());
        }
        self.paid = add(self.paid, value)?;
        let plan = self.plan_mut(plan_id);
        plan.paid = add(plan.paid, value)?;
        Ok(())
    }

    /// Takes the minimum's part of what a refund or write-off cancelled off the minimum (at
    /// most what is left of the plan's share): on a write-off all of it; on a refund
    /// `excused` in full, and of `current_principal` cancelled, the plan's principal share in
    /// proportion (rounded down). Takes money `given_back` to the credit balance out of what
    /// the plan was paid since the statement.
    fn cancelled(
        &mut self,
        plan_id: u32,
        cancellation: Cancellation,
        given_back: Amount,
    ) -> Result<(), CreditError> {
        let plan = self.plan_mut(plan_id);
        let zero = Amount::zero(plan.share.currency());
        // What is left of the plan's part of the minimum; a cancellation takes at most that,
        // and never less than nothing.
        let room = zero_if_negative(plan.share.checked_sub(plan.excused)?);
        let excused = match cancellation {
            Cancellation::Whole => room,
            Cancellation::Part {
                excused,
                current_principal,
            } => {
                let proportional = if plan.current_principal.is_positive() {
                    scale_down(
                        plan.principal_share,
                        current_principal,
                        plan.current_principal,
                    )?
                } else {
                    zero
                };
                smaller(zero_if_negative(excused.checked_add(proportional)?), room)
            }
        };
        plan.excused = plan.excused.checked_add(excused)?;
        // Only what the plan was paid since the statement can be taken out of it.
        let taken = zero_if_negative(smaller(given_back, plan.paid));
        plan.paid = plan.paid.checked_sub(taken)?;
        self.paid = self.paid.checked_sub(taken)?;
        Ok(())
    }

    /// A refund of plan `plan_id` cancelled `cancelled` of its billed items and gave
    /// `given_back` to the credit balance: the minimum's part of what it cancelled on this
    /// statement's items comes off (overdue items and charges in full, current principal by
    /// the principal share, rounded down).
    pub(super) fn refunded(
        &mut self,
        plan_id: u32,
        cancelled: &[Cancelled],
        given_back: Amount,
    ) -> Result<(), CreditError> {
        let zero = Amount::zero(self.minimum_payment.currency());
        let mut excused = zero;
        let mut current_principal = zero;
        for item in cancelled
            .iter()
            .filter(|item| item.statement_date <= self.statement_date)
        {
            excused = add(excused, item.charges)?;
            if item.due_date < self.statement_date {
                excused = add(excused, item.principal)?;
            } else {
                current_principal = add(current_principal, item.principal)?;
            }
        }
        self.cancelled(
            plan_id,
            Cancellation::Part {
                excused,
                current_principal,
            },
            given_back,
        )
    }

    /// Plan `plan_id` was written off as stolen, giving `given_back` to the credit balance:
    /// none of its part of the minimum is the customer's any more.
    pub(super) fn written_off(
        &mut self,
        plan_id: u32,
        given_back: Amount,
    ) -> Result<(), CreditError> {
        self.cancelled(plan_id, Cancellation::Whole, given_back)
    }
}

/// What a refund or write-off cancelled of a plan's part in a statement's minimum.
enum Cancellation {
    /// A write-off: none of the plan's part is the customer's any more.
    Whole,
    /// A refund: `excused` (overdue items and charges) in full, and `current_principal`
    /// cancelled, by the principal share.
    Part {
        excused: Amount,
        current_principal: Amount,
    },
}

/// Totals since the last statement, printed on the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleActivity {
    pub purchases: Amount,
    pub payments: Amount,
    pub refunds: Amount,
    /// Installment interest billed and daily interest accrued.
    pub interest: Amount,
    pub penalties: Amount,
    pub written_off: Amount,
    pub credit_balance_applied: Amount,
    /// Credit balance paid back to the customer this cycle; absent when none was (and on
    /// accounts stored before Tally paid credit balances out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_balance_paid_out: Option<Amount>,
    /// Installment principal billed; absent when none (and on accounts stored before Tally
    /// reconciled statement headers), like every field below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_principal: Option<Amount>,
    /// Installment fees billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_fees: Option<Amount>,
    /// What payments settled of billed items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments_applied: Option<Amount>,
    /// What refunds cancelled of billed items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunds_applied: Option<Amount>,
    /// What stolen-account write-offs cancelled of billed items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_off_applied: Option<Amount>,
    /// Billed items a bill installment converted into a new plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_to_installments: Option<Amount>,
}

/// Adds `value` to an activity total kept only once something moved.
pub(super) fn add_to(total: &mut Option<Amount>, value: Amount) -> Result<(), CreditError> {
    if value.is_zero() {
        return Ok(());
    }
    *total = Some(match *total {
        Some(before) => add(before, value)?,
        None => value,
    });
    Ok(())
}

impl CycleActivity {
    pub(super) fn zero(currency: Currency) -> CycleActivity {
        let zero = Amount::zero(currency);
        CycleActivity {
            purchases: zero,
            payments: zero,
            refunds: zero,
            interest: zero,
            penalties: zero,
            written_off: zero,
            credit_balance_applied: zero,
            credit_balance_paid_out: None,
            billed_principal: None,
            billed_fees: None,
            payments_applied: None,
            refunds_applied: None,
            written_off_applied: None,
            converted_to_installments: None,
        }
    }
}

/// One line of a statement: one billed item still owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    pub plan_id: u32,
    pub installment: u32,
    pub due_date: Date,
    pub overdue: bool,
    pub principal: Amount,
    pub fee: Amount,
    pub interest: Amount,
    pub penalty: Amount,
}

/// A statement as cut on the statement date.
///
/// The header reconciles with the lines ([`Statement::check_reconciles`]): the closing
/// balance is what the lines still owe, and is the previous balance plus the new principal,
/// fees, interest and penalties, less what payments, the credit balance, refunds and
/// stolen-account write-offs settled or cancelled of billed items and what a bill
/// installment converted. `purchases`, `payments`, `refunds` and `written_off` are the
/// cycle's whole amounts, billed or not; the `…_applied` figures are their part in the
/// closing balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub statement_date: Date,
    pub due_date: Date,
    pub previous_balance: Amount,
    pub purchases: Amount,
    /// Repayments and early payoffs received this cycle.
    pub payments: Amount,
    /// Of `payments`, what settled billed items (the rest paid plans off before their
    /// installments were billed, or became credit balance).
    pub payments_applied: Amount,
    /// Principal refunded this cycle, billed or not.
    pub refunds: Amount,
    /// Of the refunds, what they cancelled of billed items (principal, and the charges a
    /// full refund reverses).
    pub refunds_applied: Amount,
    /// What stolen-account write-offs cancelled this cycle, billed or not.
    pub written_off: Amount,
    /// Of `written_off`, what was billed.
    pub written_off_applied: Amount,
    /// Billed items a bill installment converted into a new plan this cycle.
    pub converted_to_installments: Amount,
    pub new_principal: Amount,
    pub new_fees: Amount,
    /// Installment interest billed plus daily interest accrued this cycle.
    pub new_interest: Amount,
    pub penalties: Amount,
    pub credit_balance_applied: Amount,
    /// Credit balance paid back to the customer since the last statement; absent when none
    /// was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_balance_paid_out: Option<Amount>,
    /// Everything billed and still owed.
    pub closing_balance: Amount,
    pub minimum_payment: Amount,
    pub overdue: Amount,
    pub unbilled_principal: Amount,
    pub credit_balance: Amount,
    pub available_credit: Amount,
    pub bucket: Bucket,
    pub lines: Vec<StatementLine>,
}

impl Statement {
    /// The closing balance as the header computes it: the previous balance, plus the new
    /// principal, fees, interest and penalties, less the payments, credit balance, refunds
    /// and write-offs applied to billed items and the bill-installment conversion.
    pub fn closing_from_header(&self) -> Result<Amount, CreditError> {
        // Netted in an order that never leaves an amount, so a balance near the top is
        // reconciled exactly rather than refused halfway.
        net(
            self.previous_balance,
            &[
                self.new_principal,
                self.new_fees,
                self.new_interest,
                self.penalties,
            ],
            &[
                self.payments_applied,
                self.credit_balance_applied,
                self.refunds_applied,
                self.written_off_applied,
                self.converted_to_installments,
            ],
        )
    }

    /// The closing balance as the lines add up: what each still owes.
    pub fn closing_from_lines(&self) -> Result<Amount, CreditError> {
        let mut total = Amount::zero(self.closing_balance.currency());
        for line in &self.lines {
            for part in [line.principal, line.fee, line.interest, line.penalty] {
                total = total.checked_add(part)?;
            }
        }
        Ok(total)
    }

    /// Whether the header reconciles with the lines: the closing balance equals both what
    /// the lines add up to and what the header computes. Every statement end of day cuts
    /// does, except the first after an account stored before Tally kept the `…_applied`
    /// figures; a difference is reported, not panicked on.
    pub fn check_reconciles(&self) -> Result<(), CreditError> {
        let lines = self.closing_from_lines()?;
        let header = self.closing_from_header()?;
        if lines != self.closing_balance || header != self.closing_balance {
            return Err(CreditError::InvalidConfiguration(format!(
                "statement of {}: closing balance {}, lines add to {lines}, header to {header}",
                self.statement_date, self.closing_balance
            )));
        }
        Ok(())
    }
}

/// A statement's minimum payment (see [`Minimum::of`]).
struct Minimum {
    payment: Amount,
    /// Everything overdue, part of the payment.
    overdue: Amount,
    /// Each plan's part of the payment.
    plans: Vec<PlanMinimum>,
}

impl Minimum {
    /// The minimum payment of a statement cut on `date` on the account's billed items
    /// (`dues`), and each plan's part of it: the one place Tally computes a minimum. It is
    /// everything overdue, every current fee, interest and penalty, and the policy's share of
    /// current principal. On the statement the share is of the account's current principal,
    /// rounded up, and the minimum is never more than the balance; each plan's part takes the
    /// share of its own current principal rounded down, so the parts never add up to more
    /// than the minimum (see [`OpenStatement`]).
    fn of(
        dues: &[Due],
        currency: Currency,
        date: Date,
        policy: &AccountPolicy,
        closing_balance: Amount,
    ) -> Result<Minimum, CreditError> {
        let zero = Amount::zero(currency);
        let mut overdue = zero;
        let mut current_principal = zero;
        let mut current_charges = zero;
        let mut plans: Vec<PlanMinimum> = Vec::new();
        for due in dues {
            let position = match plans.iter().position(|plan| plan.plan_id == due.plan_id) {
                Some(position) => position,
                None => {
                    plans.push(PlanMinimum::zero(due.plan_id, currency));
                    plans.len() - 1
                }
            };
            let plan = &mut plans[position];
            if due.is_overdue(date) {
                let owed = amount(due.checked_outstanding()?, currency);
                overdue = add(overdue, owed)?;
                plan.share = add(plan.share, owed)?;
            } else {
                let charges = total(currency, [due.fee, due.interest, due.penalty])?;
                current_charges = add(current_charges, charges)?;
                current_principal = add(current_principal, due.principal)?;
                plan.share = add(plan.share, charges)?;
                plan.current_principal = add(plan.current_principal, due.principal)?;
            }
        }
        for plan in &mut plans {
            plan.principal_share = plan
                .current_principal
                .apply_rate(policy.minimum_principal_share, Rounding::Down)?;
            plan.share = add(plan.share, plan.principal_share)?;
        }
        let principal_share =
            current_principal.apply_rate(policy.minimum_principal_share, Rounding::Up)?;
        let payment = total(currency, [overdue, current_charges, principal_share])?;
        Ok(Minimum {
            // Never more than the balance: a minimum above what is owed could not be met.
            payment: smaller(payment, closing_balance),
            overdue,
            plans,
        })
    }
}

impl Account {
    /// The statements not yet judged: the earlier ones (oldest first), then the open one.
    pub fn unjudged_statements(&self) -> impl Iterator<Item = &OpenStatement> {
        self.earlier_statements
            .iter()
            .chain(self.open_statement.as_ref())
    }

    /// The statements not yet judged, to count a payment or a cancellation in.
    pub(super) fn unjudged_statements_mut(&mut self) -> impl Iterator<Item = &mut OpenStatement> {
        self.earlier_statements
            .iter_mut()
            .chain(self.open_statement.as_mut())
    }

    /// Counts money the customer's payment settled (`applied`) on `date` towards the
    /// statements not yet judged, oldest first: an earlier statement still waiting for its
    /// due date takes what it still needs, and the open statement the rest, so one payment
    /// never meets two minimums.
    pub(super) fn record_paid(
        &mut self,
        date: Date,
        applied: &[Applied],
    ) -> Result<(), CreditError> {
        let earlier = self.earlier_statements.len();
        for part in applied {
            let mut left = part.amount;
            for (index, open) in self.unjudged_statements_mut().enumerate() {
                if index < earlier {
                    if date > open.due_date {
                        continue;
                    }
                    let taken = smaller(left, open.checked_still_to_pay()?);
                    open.record_paid(date, part.plan_id, taken)?;
                    left = left.checked_sub(taken)?;
                } else {
                    open.record_paid(date, part.plan_id, left)?;
                }
            }
        }
        Ok(())
    }

    /// Judges the statements whose due date `date` is, at its end: the earlier ones not yet
    /// judged (see `earlier_statements`) first, then the open one, before a statement cut
    /// today could replace it.
    pub(super) fn judge_due_statements(&mut self, date: Date) -> Result<(), CreditError> {
        if self
            .earlier_statements
            .iter()
            .any(|earlier| earlier.due_date <= date)
        {
            let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.earlier_statements)
                .into_iter()
                .partition(|earlier| earlier.due_date <= date);
            self.earlier_statements = kept;
            for earlier in &due {
                earlier.judge(self.cycle, &mut self.dues)?;
            }
        }
        if let Some(open) = self.open_statement.take_if(|open| open.due_date <= date) {
            open.judge(self.cycle, &mut self.dues)?;
        }
        Ok(())
    }

    /// Cuts the statement on statement date `date`: the statement cut before, if not yet
    /// judged, is kept; items settled drop off; the new statement opens, and the cycle's
    /// totals start again. Returns the statement.
    pub(super) fn cut_statement(
        &mut self,
        date: Date,
        policy: &AccountPolicy,
    ) -> Result<Statement, CreditError> {
        // A statement not yet due (a due date after this statement date, on accounts
        // opened with `due_days` over 28) is kept and judged at the end of its due date:
        // a cut never drops a statement unjudged.
        if let Some(unjudged) = self.open_statement.take() {
            self.earlier_statements.push(unjudged);
        }
        self.dues.retain(Due::owes);
        self.settle_paid_plans();
        let (statement, plans) = self.statement_on(date, policy)?;
        self.open_statement = Some(OpenStatement::opened(&statement, plans));
        self.last_closing_balance = statement.closing_balance;
        self.activity = CycleActivity::zero(self.currency);
        Ok(statement)
    }

    /// The statement cut on `date`, and each plan's part of its minimum.
    fn statement_on(
        &self,
        date: Date,
        policy: &AccountPolicy,
    ) -> Result<(Statement, Vec<PlanMinimum>), CreditError> {
        let currency = self.currency;
        let zero = Amount::zero(currency);
        let lines = self
            .dues
            .iter()
            .map(|due| StatementLine {
                plan_id: due.plan_id,
                installment: due.installment,
                due_date: due.due_date,
                overdue: due.is_overdue(date),
                principal: due.principal,
                fee: due.fee,
                interest: due.interest,
                penalty: due.penalty,
            })
            .collect();
        let closing_balance = self.checked_billed_balance()?;
        let minimum = Minimum::of(&self.dues, currency, date, policy, closing_balance)?;
        let statement = Statement {
            statement_date: date,
            due_date: self.cycle.due_date(date)?,
            previous_balance: self.last_closing_balance,
            purchases: self.activity.purchases,
            payments: self.activity.payments,
            payments_applied: self.activity.payments_applied.unwrap_or(zero),
            refunds: self.activity.refunds,
            refunds_applied: self.activity.refunds_applied.unwrap_or(zero),
            written_off: self.activity.written_off,
            written_off_applied: self.activity.written_off_applied.unwrap_or(zero),
            converted_to_installments: self.activity.converted_to_installments.unwrap_or(zero),
            new_principal: self.activity.billed_principal.unwrap_or(zero),
            new_fees: self.activity.billed_fees.unwrap_or(zero),
            new_interest: self.activity.interest,
            penalties: self.activity.penalties,
            credit_balance_applied: self.activity.credit_balance_applied,
            credit_balance_paid_out: self.activity.credit_balance_paid_out,
            closing_balance,
            minimum_payment: minimum.payment,
            overdue: minimum.overdue,
            unbilled_principal: self.checked_unpaid_principal_unbilled()?,
            credit_balance: self.credit_balance,
            available_credit: self.checked_available_credit(date)?,
            bucket: Bucket::of_days_past_due(self.days_past_due_on(date)),
            lines,
        };
        Ok((statement, minimum.plans))
    }

    /// Converts what the open statement billed (principal, fees and interest still owed; no
    /// penalty can be on it, as nothing may be overdue) into a new plan of `product` over
    /// `periods` (priced for the account's tier), between its statement date and its due
    /// date. Irrevocable. The receivable is unchanged: billed charges become principal.
    pub fn bill_installment(
        &mut self,
        date: Date,
        product: &Product,
        periods: u32,
        policy: &AccountPolicy,
    ) -> Result<u32, CreditError> {
        let refuse = |reason: &str| Err(CreditError::BillInstallmentRefused(reason.into()));
        let Some(open) = self.open_statement.clone() else {
            return refuse("there is no open statement");
        };
        if date < open.statement_date || date > open.due_date {
            return refuse("only between the statement date and the due date");
        }
        if self.dues.iter().any(|due| due.is_overdue(date)) {
            return refuse("the account has overdue items");
        }
        // Everything on this statement: what it billed and the revolving remainders it
        // carries (nothing is overdue, so every item still owed is on it).
        let on_statement = |due: &Due| due.statement_date <= open.statement_date && due.owes();
        let mut value = Amount::zero(self.currency);
        for due in self.dues.iter().filter(|due| on_statement(due)) {
            value = total(self.currency, [value, due.principal, due.fee, due.interest])?;
        }
        if value.minor() < policy.bill_installment_minimum_minor {
            return refuse("the statement balance is below the minimum");
        }
        let schedule = Schedule::build_for_tier(
            product,
            self.pricing_tier.as_deref(),
            value,
            periods,
            date,
            self.cycle,
        )?;
        // The new plan's charges come on top of what the account owes: all of it must still
        // fit in an amount, as for a purchase.
        let fits = self
            .checked_total_owed()
            .and_then(|owed| add(owed.checked_sub(value)?, schedule.total()?));
        if fits.is_err() {
            return Err(CreditError::AmountTooLarge(format!(
                "with a plan of {value}, what the account could owe does not fit in an amount"
            )));
        }
        let currency = self.currency;
        add_to(&mut self.activity.converted_to_installments, value)?;
        for due in self.dues.iter_mut().filter(|due| on_statement(due)) {
            due.principal = Amount::zero(currency);
            due.fee = Amount::zero(currency);
            due.interest = Amount::zero(currency);
        }
        // A statement put into installments: its fees are not refundable.
        let id = self.add_plan(product, schedule, false);
        self.settle_paid_plans();
        // Nothing is due on this statement any more, nor on an earlier one not yet judged
        // (its items are on this one too, and were converted with it).
        self.open_statement = None;
        self.earlier_statements.clear();
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::account::DayOutcome;
    use crate::product::EarlyPayoffRule;
    use jiff::civil::date;

    // ----- Review findings: each test failed before its fix. -----

    #[test]
    fn a_minimum_paid_the_day_after_the_due_date_is_late() {
        let policy = AccountPolicy::default();
        // Paid on the due date itself (before its end of day): on time, the rest revolves.
        let (mut on_time, _) = with_purchase("1000.00", 1, EarlyPayoffRule::PrincipalOnly);
        run(&mut on_time, &policy, date(2026, 1, 11), date(2026, 1, 28));
        on_time
            .repay(date(2026, 1, 29), cny("100.00"), &policy)
            .unwrap();
        run_to(&mut on_time, &policy, date(2026, 1, 30));
        assert!(on_time.dues[0].revolving);
        assert_eq!(on_time.dues[0].due_date, date(2026, 3, 1));
        assert_eq!(on_time.days_past_due, 0);
        // Interest from the day after the due date: 900.00 × 0.05% = 0.45 on 30 January.
        assert_eq!(on_time.dues[0].interest, cny("0.45"));
        // Paid the day after: late. One day past due, M1, and penalties after the grace.
        let (mut late, _) = with_purchase("1000.00", 1, EarlyPayoffRule::PrincipalOnly);
        run(&mut late, &policy, date(2026, 1, 11), date(2026, 1, 29));
        late.repay(date(2026, 1, 30), cny("100.00"), &policy)
            .unwrap();
        run_to(&mut late, &policy, date(2026, 1, 30));
        assert!(!late.dues[0].revolving);
        assert_eq!(late.dues[0].due_date, date(2026, 1, 29));
        assert_eq!(late.days_past_due, 1);
        assert_eq!(late.bucket, Bucket::M1);
        assert_eq!(late.dues[0].interest, cny("0.00"));
        // Three days' grace (30 January to 1 February), the first penalty on 2 February.
        run_to(&mut late, &policy, date(2026, 2, 1));
        assert_eq!(late.dues[0].penalty, cny("0.00"));
        run_to(&mut late, &policy, date(2026, 2, 2));
        assert_eq!(late.dues[0].penalty, cny("0.45"));
    }

    #[test]
    fn an_early_payoff_counts_towards_the_minimum() {
        let (mut account, _, six) = two_plans(false);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
        // 3.60 fee + 10% of 1,100.00 principal.
        assert_eq!(
            account.open_statement.clone().unwrap().minimum_payment,
            cny("113.60")
        );
        let (quote, _) = account.early_payoff_quote(six).unwrap();
        assert_eq!(quote, cny("603.60"));
        account.early_payoff(date(2026, 1, 25), six, quote).unwrap();
        account
            .repay(date(2026, 1, 25), cny("100.00"), &policy)
            .unwrap();
        run_to(&mut account, &policy, date(2026, 2, 3));
        assert_in_good_standing(&account);
    }

    #[test]
    fn a_stolen_plans_part_of_the_minimum_is_not_held_against_the_customer() {
        let (mut account, _, six) = two_plans(false);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
        account.write_off_stolen(date(2026, 1, 25), six).unwrap();
        // The stolen plan's part (3.60 + 10.00) is gone: 100.00 is the customer's own part.
        account
            .repay(date(2026, 1, 25), cny("100.00"), &policy)
            .unwrap();
        run_to(&mut account, &policy, date(2026, 2, 3));
        assert_in_good_standing(&account);
    }

    #[test]
    fn money_a_write_off_gives_back_counts_once_towards_the_minimum() {
        // The stolen six-period plan is plan 1, so a payment goes to it first: 60.00 pays its
        // 3.60 fee and 56.40 of its principal. The write-off gives the 60.00 back, and end
        // of day settles the customer's own plan with it; counted once, the customer still
        // owes 40.00 of their own 100.00 part by the due date.
        let policy = AccountPolicy::default();
        for (more, standing) in [("40.00", Bucket::Current), ("39.99", Bucket::M1)] {
            let (mut account, _, six) = two_plans(true);
            run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
            account
                .repay(date(2026, 1, 22), cny("60.00"), &policy)
                .unwrap();
            run_to(&mut account, &policy, date(2026, 1, 24));
            account.write_off_stolen(date(2026, 1, 25), six).unwrap();
            assert_eq!(account.credit_balance, cny("60.00"));
            run_to(&mut account, &policy, date(2026, 1, 27));
            account
                .repay(date(2026, 1, 28), cny(more), &policy)
                .unwrap();
            run_to(&mut account, &policy, date(2026, 2, 3));
            assert_eq!(account.bucket, standing, "{more}");
        }
    }

    #[test]
    fn a_statement_due_on_the_next_statement_day_is_judged_before_the_next_is_cut() {
        // Statement 1 February, due 1 March (28 days), the day the next statement is cut.
        let mut account = Account::open(cny("5000.00"), Cycle::new(1, 28).unwrap()).unwrap();
        let policy = AccountPolicy::default();
        account
            .authorize(date(2026, 1, 10), cny("1000.00"))
            .unwrap();
        account
            .capture(
                date(2026, 1, 10),
                cny("1000.00"),
                &flat(EarlyPayoffRule::PrincipalOnly),
                1,
            )
            .unwrap();
        run(&mut account, &policy, date(2026, 1, 10), date(2026, 2, 28));
        assert_eq!(
            account.open_statement.clone().unwrap().due_date,
            date(2026, 3, 1)
        );
        account
            .repay(date(2026, 3, 1), cny("100.00"), &policy)
            .unwrap();
        run_to(&mut account, &policy, date(2026, 3, 2));
        // Paid by the due date: the rest revolves onto the 1 March statement, due 29 March.
        assert!(account.dues[0].revolving);
        assert_eq!(account.dues[0].due_date, date(2026, 3, 29));
        assert_eq!(account.bucket, Bucket::Current);
        let open = account.open_statement.clone().unwrap();
        assert_eq!(open.statement_date, date(2026, 3, 1));
        // Its minimum: 10% of the 900.00 revolving principal and the interest it carries.
        assert_eq!(open.minimum_payment, cny("90.00"));
    }

    #[test]
    fn the_statement_shows_the_credit_balance_paid_out() {
        let mut account = holding_150();
        account.pay_out_credit_balance(cny("40.00")).unwrap();
        account.pay_out_credit_balance(cny("60.00")).unwrap();
        let mut outcome = DayOutcome::default();
        let mut statement = None;
        let mut day = date(2026, 1, 11);
        while statement.is_none() {
            account
                .end_of_day(day, &AccountPolicy::default(), &mut outcome)
                .unwrap();
            statement = outcome.statement.take();
            day = day.checked_add(1.day()).unwrap();
        }
        let statement = statement.unwrap();
        assert_eq!(statement.credit_balance_paid_out, Some(cny("100.00")));
        assert_eq!(statement.credit_balance, cny("50.00"));
        assert_eq!(statement.payments, cny("250.00"));
        // The next cycle starts with nothing paid out, and its statement says none.
        assert_eq!(account.activity.credit_balance_paid_out, None);
        let json = serde_json::to_value(&account).unwrap();
        assert!(json["activity"].get("credit_balance_paid_out").is_none());
    }

    #[test]
    fn a_refund_takes_off_the_minimum_only_what_it_cancelled_of_the_statement() {
        let policy = AccountPolicy::default();
        // A full refund of the six-period plan cancels its billed 100.00 (its 10.00 share)
        // and, its fees being refundable, its 3.60 fee: 100.00 is the customer's own part.
        // A refund of 500.00 takes only unbilled installments: the minimum stays 113.60.
        for (refund, pays, standing) in [
            ("600.00", "100.00", Bucket::Current),
            ("500.00", "100.00", Bucket::M1),
            ("500.00", "113.60", Bucket::Current),
        ] {
            let (mut account, _, six) = two_plans(false);
            run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
            account.refund(six, cny(refund)).unwrap();
            account
                .repay(date(2026, 1, 25), cny(pays), &policy)
                .unwrap();
            run_to(&mut account, &policy, date(2026, 2, 3));
            assert_eq!(account.bucket, standing, "{refund} {pays}");
        }
    }

    #[test]
    fn a_statement_due_after_the_next_statement_date_is_kept_and_judged_on_its_due_date() {
        // Due 30 days after the statement: the 20 February statement falls due 22 March,
        // after the 20 March statement is cut.
        let policy = AccountPolicy::default();
        for (pays, standing) in [(Some("100.00"), Bucket::Current), (None, Bucket::M1)] {
            let mut account = stored_with_due_days(30);
            let day = date(2026, 1, 25);
            account.authorize(day, cny("1000.00")).unwrap();
            account
                .capture(
                    day,
                    cny("1000.00"),
                    &flat(EarlyPayoffRule::PrincipalOnly),
                    1,
                )
                .unwrap();
            run(&mut account, &policy, day, date(2026, 3, 20));
            let earlier = account.earlier_statements.clone();
            assert_eq!(earlier.len(), 1);
            assert_eq!(earlier[0].statement_date, date(2026, 2, 20));
            assert_eq!(earlier[0].due_date, date(2026, 3, 22));
            assert_eq!(earlier[0].still_to_pay(), cny("100.00"));
            let open = account.open_statement.clone().unwrap();
            assert_eq!(open.statement_date, date(2026, 3, 20));
            // The stored account serialises and loads with it.
            let back: Account =
                serde_json::from_value(serde_json::to_value(&account).unwrap()).unwrap();
            assert_eq!(back, account);
            if let Some(pays) = pays {
                account
                    .repay(date(2026, 3, 22), cny(pays), &policy)
                    .unwrap();
                assert!(account.earlier_statements[0].still_to_pay().is_zero());
                // The payment met the earlier statement's minimum, so it does not count
                // towards the open one's as well.
                let open = account.open_statement.as_ref().unwrap();
                assert!(open.paid.is_zero());
                assert_eq!(open.still_to_pay(), open.minimum_due());
            }
            run_to(&mut account, &policy, date(2026, 3, 23));
            assert!(account.earlier_statements.is_empty());
            assert_eq!(account.bucket, standing, "{pays:?}");
            if pays.is_some() {
                // Minimum met by its due date: the rest revolves to the 20 March statement's
                // due date.
                assert!(account.dues[0].revolving);
                assert_eq!(account.dues[0].due_date, date(2026, 4, 19));
                assert_in_good_standing(&account);
                // The 20 March statement's minimum is owed on its own: unpaid by 19 April,
                // the account is past due.
                run_to(&mut account, &policy, date(2026, 4, 20));
                assert_eq!(account.bucket, Bucket::M1);
            } else {
                assert!(!account.dues[0].revolving);
                assert_eq!(account.dues[0].due_date, date(2026, 3, 22));
            }
        }
    }
}
