//! A credit account: its limit and available credit, status, repayment allocated across its
//! plans, credit balance payout, daily interest and penalties, delinquency and charge-off, and
//! the end of day that runs every step in order. Pure: every operation takes the business
//! date and returns the journal postings it produces; the store persists the account (serde).
//!
//! What concerns one part of the account lives with that part: [`Plan`]s (billing, early
//! payoff, refund, stolen-account write-off) in `plan.rs`; statements ([`Statement`],
//! [`OpenStatement`], the minimum payment, judging a due date, bill installment) in
//! `statement.rs`; [`Authorization`]s (authorise, capture, void, expiry) in
//! `authorization.rs`; the lender's rules ([`AccountPolicy`]) in `policy.rs`; delinquency
//! ([`Bucket`]s, their [`DelinquencyAction`]s, aging and charge-off) in `delinquency.rs`; the
//! day's interest and penalties in `daily_charges.rs`; the credit balance (applied to bills,
//! paid out) in `credit_balance.rs`; a stolen-account claim (freeze, confirm, restore) in
//! `claim.rs`. Every type stays reachable here, at
//! `tally_credit::account::*`.

use crate::allocation::{allocate, Applied, Due};
use crate::amounts::total;
use crate::error::CreditError;
use crate::posting::{LedgerRole, Posting};
use crate::schedule::Cycle;
use jiff::civil::Date;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Currency};

mod authorization;
mod claim;
mod credit_balance;
mod daily_charges;
mod delinquency;
mod plan;
mod policy;
mod statement;

pub use authorization::Authorization;
pub use claim::{ConfirmedClaim, StolenAccountClaim};
pub use delinquency::{Bucket, BucketAction, ContactTask, DelinquencyAction};
pub use plan::{Plan, PlanStatus};
pub use policy::AccountPolicy;
use statement::add_to;
pub use statement::{CycleActivity, OpenStatement, PlanMinimum, Statement, StatementLine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Open,
    /// Frozen by hand or by a delinquency action; `frozen_by_delinquency` tells which.
    Frozen,
    ChargedOff,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporaryLimit {
    pub amount: Amount,
    /// Last day the temporary limit applies.
    pub until: Date,
}

/// What one end of day produced for one account. Reuse one across accounts: it is cleared,
/// not reallocated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayOutcome {
    pub postings: Vec<Posting>,
    pub statement: Option<Statement>,
    pub actions: Vec<DelinquencyAction>,
    pub contacts: Vec<ContactTask>,
    /// Authorisations that expired: their credit was released.
    #[serde(default)]
    pub expired_authorizations: Vec<Authorization>,
}

impl DayOutcome {
    pub fn clear(&mut self) {
        self.postings.clear();
        self.statement = None;
        self.actions.clear();
        self.contacts.clear();
        self.expired_authorizations.clear();
    }
}

/// What a repayment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repayment {
    pub applied: Vec<Applied>,
    pub to_credit_balance: Amount,
    pub posting: Posting,
}

/// A credit account's whole state: plain data the store persists as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub currency: Currency,
    pub limit: Amount,
    pub temporary_limit: Option<TemporaryLimit>,
    pub held: Amount,
    pub status: AccountStatus,
    pub frozen_by_delinquency: bool,
    pub cycle: Cycle,
    pub credit_balance: Amount,
    pub plans: Vec<Plan>,
    pub dues: Vec<Due>,
    pub open_statement: Option<OpenStatement>,
    /// Statements cut before the open one and not yet judged, oldest first. Only accounts
    /// opened before Tally limited `due_days` to 28 have any: with 29 to 31 days a due date
    /// can fall after the next statement date, and the statement is kept until the end of
    /// its own due date and judged then, like the open one (payments count towards each
    /// statement they fall in the window of).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_statements: Vec<OpenStatement>,
    pub last_closing_balance: Amount,
    pub activity: CycleActivity,
    pub bucket: Bucket,
    pub days_past_due: i32,
    pub charged_off: Amount,
    pub next_plan_id: u32,
    /// The last business date end of day ran for: running it again is a no-op.
    pub last_end_of_day: Option<Date>,
    /// Purchases authorised and not yet captured or voided; their sum is part of `held`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorizations: Vec<Authorization>,
    #[serde(default = "first_id")]
    pub next_authorization_id: u32,
    /// The pricing tier the credit decision gave at opening; plans are priced at its rate
    /// where a product's term lists one (`TermPricing::tier_rates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_tier: Option<String>,
    /// The bucket the last end of day left, kept only while a repayment or write-off since
    /// has moved `bucket`: end of day runs a bucket's actions when its bucket is above the
    /// one the previous end of day left, so a payment on the day an account enters a bucket
    /// cannot hide the rise. Absent: `bucket` is still that one (and on accounts stored
    /// before Tally kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_at_end_of_day: Option<Bucket>,
    /// A stolen-account claim on the customer, from the moment it is made until it is
    /// rejected or the customer's access is restored (see `claim.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stolen_account_claim: Option<StolenAccountClaim>,
}

fn first_id() -> u32 {
    1
}

fn amount(minor: i64, currency: Currency) -> Amount {
    Amount::new(minor, currency)
}

fn add(left: Amount, right: Amount) -> Result<Amount, CreditError> {
    Ok(left.checked_add(right)?)
}

/// The value of an accessor the account view reads without a `Result`. `result` fails only
/// on a state no operation of the credit rules leaves behind (each refuses, with
/// `amount_overflow`, a step after which a total would not fit in an amount), such as an
/// account edited by hand: debug builds stop there; release builds show `fallback`.
fn shown(result: Result<Amount, CreditError>, fallback: Amount) -> Amount {
    debug_assert!(result.is_ok(), "{result:?}");
    result.unwrap_or(fallback)
}

impl Account {
    /// Opens an account with a limit on a billing cycle.
    pub fn open(limit: Amount, cycle: Cycle) -> Result<Account, CreditError> {
        cycle.validate()?;
        if limit.is_negative() {
            return Err(CreditError::AmountNotPositive(limit.to_string()));
        }
        let currency = limit.currency();
        let zero = Amount::zero(currency);
        Ok(Account {
            currency,
            limit,
            temporary_limit: None,
            held: zero,
            status: AccountStatus::Open,
            frozen_by_delinquency: false,
            cycle,
            credit_balance: zero,
            plans: Vec::new(),
            dues: Vec::new(),
            open_statement: None,
            earlier_statements: Vec::new(),
            last_closing_balance: zero,
            activity: CycleActivity::zero(currency),
            bucket: Bucket::Current,
            days_past_due: 0,
            charged_off: zero,
            next_plan_id: 1,
            last_end_of_day: None,
            authorizations: Vec::new(),
            next_authorization_id: 1,
            pricing_tier: None,
            bucket_at_end_of_day: None,
            stolen_account_claim: None,
        })
    }

    fn check_currency(&self, value: Amount) -> Result<(), CreditError> {
        if value.currency() == self.currency {
            Ok(())
        } else {
            Err(CreditError::CurrencyMismatch(format!(
                "account in {}, amount in {}",
                self.currency,
                value.currency()
            )))
        }
    }

    fn check_positive(&self, value: Amount) -> Result<(), CreditError> {
        self.check_currency(value)?;
        if value.is_positive() {
            Ok(())
        } else {
            Err(CreditError::AmountNotPositive(value.to_string()))
        }
    }

    /// The limit in force on `date`: a temporary limit until its last day, else the limit.
    pub fn effective_limit(&self, date: Date) -> Amount {
        match self.temporary_limit {
            Some(temporary) if date <= temporary.until => temporary.amount,
            _ => self.limit,
        }
    }

    /// Principal not yet repaid: billed principal outstanding plus unbilled principal. Exact
    /// for every account the credit rules keep (purchases are authorised within limits, and
    /// an operation after which it would not fit is refused); money movements use the
    /// checked sums.
    pub fn unpaid_principal(&self) -> Amount {
        shown(
            self.checked_unpaid_principal(),
            amount(i64::MAX, self.currency),
        )
    }

    fn checked_unpaid_principal(&self) -> Result<Amount, CreditError> {
        add(
            self.checked_unpaid_principal_billed()?,
            self.checked_unpaid_principal_unbilled()?,
        )
    }

    /// Limit − unpaid principal − held, never below zero (a lowered limit can leave less).
    pub fn available_credit(&self, date: Date) -> Amount {
        debug_assert!(!self.held.is_negative(), "held {}", self.held);
        // The only failure is a sum of what is used that does not fit in an amount: that is
        // more than any limit, so nothing is available.
        self.checked_available_credit(date)
            .unwrap_or(Amount::zero(self.currency))
    }

    /// Limit − unpaid principal − held, never below zero (a lowered limit can leave less
    /// than is used, and then nothing is available), or `amount_overflow` when what is used
    /// does not fit in an amount.
    pub fn checked_available_credit(&self, date: Date) -> Result<Amount, CreditError> {
        let used = self.checked_unpaid_principal()?.checked_add(self.held)?;
        let limit = self.effective_limit(date);
        if used.minor() >= limit.minor() {
            return Ok(Amount::zero(self.currency));
        }
        Ok(limit.checked_sub(used)?)
    }

    /// Billed principal still owed (counted both in unpaid principal and billed balance).
    fn checked_unpaid_principal_billed(&self) -> Result<Amount, CreditError> {
        total(self.currency, self.dues.iter().map(|due| due.principal))
    }

    /// Everything billed and still owed. Exact for every account the credit rules keep (end
    /// of day refuses a day after which it would not fit); money movements use
    /// [`Account::checked_billed_balance`].
    pub fn billed_balance(&self) -> Amount {
        shown(
            self.checked_billed_balance(),
            amount(i64::MAX, self.currency),
        )
    }

    /// Everything billed and still owed, or an overflow error.
    pub fn checked_billed_balance(&self) -> Result<Amount, CreditError> {
        let mut billed = Amount::zero(self.currency);
        for due in &self.dues {
            billed = add(billed, amount(due.checked_outstanding()?, self.currency))?;
        }
        Ok(billed)
    }

    /// Everything the account can come to owe without new purchases or accruals: billed
    /// items still owed and every unbilled installment of active plans, with its charges.
    fn checked_total_owed(&self) -> Result<Amount, CreditError> {
        let mut owed = self.checked_billed_balance()?;
        for plan in &self.plans {
            if plan.status == PlanStatus::Active {
                owed = add(owed, plan.unbilled_total()?)?;
            }
        }
        Ok(owed)
    }

    /// Every total of the account fits in an amount, so that the figures the account view
    /// reads without a `Result` (`billed_balance`, `unpaid_principal`, `Due::outstanding`,
    /// an open statement's `minimum_due` and `still_to_pay`) are exact. Each operation that
    /// can make a total grow ends with this check and is refused (`amount_overflow`) when
    /// one would not fit.
    fn check_totals_fit(&self) -> Result<(), CreditError> {
        let refuse = |error: CreditError| match error {
            CreditError::AmountOverflow(_) => CreditError::AmountOverflow(
                "what the account owes would not fit in an amount".into(),
            ),
            other => other,
        };
        self.checked_total_owed().map_err(refuse)?;
        self.checked_unpaid_principal().map_err(refuse)?;
        for open in self.unjudged_statements() {
            open.checked_still_to_pay().map_err(refuse)?;
        }
        Ok(())
    }

    pub fn set_limit(&mut self, limit: Amount) -> Result<(), CreditError> {
        self.check_currency(limit)?;
        if limit.is_negative() {
            return Err(CreditError::AmountNotPositive(limit.to_string()));
        }
        self.limit = limit;
        Ok(())
    }

    pub fn set_temporary_limit(&mut self, limit: Amount, until: Date) -> Result<(), CreditError> {
        self.check_currency(limit)?;
        self.temporary_limit = Some(TemporaryLimit {
            amount: limit,
            until,
        });
        Ok(())
    }

    pub fn freeze(&mut self) {
        if self.status == AccountStatus::Open {
            self.status = AccountStatus::Frozen;
        }
    }

    pub fn unfreeze(&mut self) {
        if self.status == AccountStatus::Frozen {
            self.status = AccountStatus::Open;
            self.frozen_by_delinquency = false;
        }
    }

    /// Closes an account that owes nothing, holds nothing and owes the customer nothing: a
    /// positive credit balance is the customer's money, and end of day does not look at a
    /// closed account, so it must be paid back (or used) first.
    pub fn close(&mut self) -> Result<(), CreditError> {
        if self.credit_balance.is_positive() {
            return Err(CreditError::CreditBalanceOwed(
                self.credit_balance.to_string(),
            ));
        }
        let owes = self
            .checked_unpaid_principal()?
            .checked_add(self.checked_billed_balance()?)?
            .checked_sub(self.checked_unpaid_principal_billed()?)?;
        if owes.is_positive() || self.held.is_positive() {
            return Err(CreditError::AccountNotSettled {
                owes: owes.to_string(),
                held: self.held.to_string(),
            });
        }
        self.status = AccountStatus::Closed;
        Ok(())
    }

    /// Applies a repayment in the policy's allocation order; the rest becomes credit balance.
    pub fn repay(
        &mut self,
        date: Date,
        value: Amount,
        policy: &AccountPolicy,
    ) -> Result<Repayment, CreditError> {
        self.check_positive(value)?;
        // Allocated on a copy, so that a total that would not fit (the credit balance, the
        // cycle's payments) refuses the repayment before the dues change.
        let mut dues = self.dues.clone();
        let mut applied = Vec::new();
        let left = allocate(
            &mut dues,
            value,
            date,
            &policy.allocation_order,
            &mut applied,
        )?;
        let settled = value.checked_sub(left)?;
        let credit_balance = add(self.credit_balance, left)?;
        let payments = add(self.activity.payments, value)?;
        let mut payments_applied = self.activity.payments_applied;
        add_to(&mut payments_applied, settled)?;
        self.dues = dues;
        self.credit_balance = credit_balance;
        self.activity.payments = payments;
        self.activity.payments_applied = payments_applied;
        self.record_paid(date, &applied)?;
        self.settle_paid_plans();
        let posting = Posting::new("repayment")
            .debit(LedgerRole::RepaymentClearing, value)
            .credit(LedgerRole::CustomerReceivable, settled)
            .credit(LedgerRole::CustomerCreditBalance, left);
        self.refresh_delinquency_during_day(date);
        Ok(Repayment {
            applied,
            to_credit_balance: left,
            posting,
        })
    }

    /// End of day for business date `date`, in this order: accrue the day's interest and
    /// penalties, bill installments whose date has come, apply the credit balance, judge a
    /// statement whose due date this is (payments dated on or before it count; minimum met:
    /// the remainder revolves to the next due date, with interest from the day after), cut
    /// the statement on the statement day (after judging the previous one, which may fall
    /// due that day), age the delinquency bucket and run the actions of a bucket above the
    /// one the previous end of day left.
    ///
    /// Dates must come one after the other: a date already run is a no-op (so a resumed run
    /// changes nothing), a gap is refused (`credit_end_of_day_out_of_order`). The account
    /// records the last date run (`last_end_of_day`) and is persisted with it. An error
    /// leaves the account partly changed: the store keeps the state from before the call.
    pub fn end_of_day(
        &mut self,
        date: Date,
        policy: &AccountPolicy,
        outcome: &mut DayOutcome,
    ) -> Result<(), CreditError> {
        outcome.clear();
        if let Some(last) = self.last_end_of_day {
            if date <= last {
                // Already run: the same date twice changes nothing.
                return Ok(());
            }
            if date != last.checked_add(1.day())? {
                return Err(CreditError::EndOfDayOutOfOrder {
                    last: last.to_string(),
                    requested: date.to_string(),
                });
            }
        }
        self.last_end_of_day = Some(date);
        // The bucket the previous end of day left, whatever a payment did to it since.
        let previous = self.bucket_at_end_of_day.take().unwrap_or(self.bucket);
        if self.status == AccountStatus::ChargedOff || self.status == AccountStatus::Closed {
            return Ok(());
        }
        if let Some(temporary) = self.temporary_limit {
            if date > temporary.until {
                self.temporary_limit = None;
            }
        }
        // 0. Authorisations whose last day this is release their credit.
        self.expire_authorizations(date, outcome)?;
        // 1. The day's interest on revolving items and penalties on overdue ones.
        self.accrue_daily_charges(date, policy, outcome)?;
        // 2. Installments whose date has come.
        self.bill_installments(date, outcome)?;
        // 3. A credit balance settles whatever is billed.
        self.apply_credit_balance(date, policy, outcome)?;
        // 4. A statement due today is judged at the end of its due date, before a statement
        // cut today could replace it; earlier statements still unjudged come first.
        self.judge_due_statements(date)?;
        // 5. The statement.
        if self.cycle.is_statement_date(date) {
            outcome.statement = Some(self.cut_statement(date, policy)?);
        }
        // 6. Delinquency: actions when the bucket is above the previous end of day's.
        self.age_delinquency(date, previous, policy, outcome)?;
        // The day's interest and penalties must leave every total of the account in an
        // amount: a day after which one would not fit is refused (`amount_overflow`), never
        // run with a clamped or wrapped total.
        self.check_totals_fit()
    }

    fn checked_unpaid_principal_unbilled(&self) -> Result<Amount, CreditError> {
        let mut unbilled = Amount::zero(self.currency);
        for plan in &self.plans {
            if plan.status == PlanStatus::Active {
                unbilled = add(unbilled, plan.unbilled_principal()?)?;
            }
        }
        Ok(unbilled)
    }
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::product::EarlyPayoffRule;
    use crate::schedule::Schedule;
    use jiff::civil::date;

    #[test]
    fn closing_needs_nothing_owed_or_held() {
        let (mut account, plan) = with_purchase("100.00", 1, EarlyPayoffRule::PrincipalOnly);
        assert!(matches!(
            account.close(),
            Err(CreditError::AccountNotSettled { .. })
        ));
        let (quote, _) = account.early_payoff_quote(plan).unwrap();
        assert!(matches!(
            account.early_payoff(date(2026, 1, 10), plan, cny("99.99")),
            Err(CreditError::PayoffBelowQuote { .. })
        ));
        account
            .early_payoff(date(2026, 1, 10), plan, quote)
            .unwrap();
        account.close().unwrap();
        assert_eq!(account.status, AccountStatus::Closed);
    }

    #[test]
    fn available_credit_and_temporary_limits() {
        let (mut account, _) = with_purchase("1200.00", 6, EarlyPayoffRule::PrincipalOnly);
        assert_eq!(account.available_credit(date(2026, 1, 10)), cny("3800.00"));
        account
            .set_temporary_limit(cny("8000.00"), date(2026, 1, 31))
            .unwrap();
        assert_eq!(account.available_credit(date(2026, 1, 31)), cny("6800.00"));
        assert_eq!(account.available_credit(date(2026, 2, 1)), cny("3800.00"));
        account.authorize(date(2026, 1, 11), cny("800.00")).unwrap();
        assert_eq!(account.available_credit(date(2026, 2, 1)), cny("3000.00"));
        let error = account
            .authorize(date(2026, 2, 1), cny("3000.01"))
            .unwrap_err();
        assert_eq!(error.code(), "credit_insufficient");
        account.set_limit(cny("100.00")).unwrap();
        assert_eq!(account.available_credit(date(2026, 2, 1)), cny("0.00"));
        account.freeze();
        assert_eq!(
            account
                .authorize(date(2026, 2, 1), cny("1.00"))
                .unwrap_err(),
            CreditError::AccountFrozen
        );
        assert!(account.close().is_err());
    }

    #[test]
    fn end_of_day_twice_changes_nothing_and_gaps_are_refused() {
        let (mut account, _) = with_purchase("300.00", 1, EarlyPayoffRule::PrincipalOnly);
        let policy = AccountPolicy::default();
        run(&mut account, &policy, date(2026, 1, 11), date(2026, 1, 20));
        let before = account.clone();
        let mut outcome = DayOutcome::default();
        account
            .end_of_day(date(2026, 1, 20), &policy, &mut outcome)
            .unwrap();
        assert_eq!(account, before);
        assert!(outcome.statement.is_none() && outcome.postings.is_empty());
        let error = account
            .end_of_day(date(2026, 1, 22), &policy, &mut outcome)
            .unwrap_err();
        assert_eq!(error.code(), "credit_end_of_day_out_of_order");
    }

    // ----- Review findings: each test failed before its fix. -----

    #[test]
    fn due_days_that_could_pass_the_next_statement_are_refused() {
        assert!(Cycle::new(1, 28).is_ok());
        assert!(Cycle::new(28, 1).is_ok());
        for due_days in [0, 29, 31, -1] {
            let error = Cycle::new(1, due_days).unwrap_err();
            assert_eq!(error.code(), "credit_invalid_due_days", "{due_days}");
        }
    }

    #[test]
    fn an_account_holding_the_customers_money_does_not_close() {
        // Nothing was billed when the customer repaid: the repayment is all credit balance.
        let mut account = holding_150();
        let before = account.clone();
        let error = account.close().unwrap_err();
        assert_eq!(error.code(), "credit_account_has_credit_balance");
        assert!(error.to_string().contains("150.00"), "{error}");
        assert_eq!(account, before);
    }

    #[test]
    fn an_old_stored_account_without_the_new_fields_still_loads() {
        let (mut account, _) = with_purchase("1000.00", 1, EarlyPayoffRule::PrincipalOnly);
        run(
            &mut account,
            &AccountPolicy::default(),
            date(2026, 1, 11),
            date(2026, 1, 20),
        );
        let mut json = serde_json::to_value(&account).unwrap();
        json["open_statement"]
            .as_object_mut()
            .unwrap()
            .remove("plans")
            .unwrap();
        assert!(json.get("bucket_at_end_of_day").is_none());
        let back: Account = serde_json::from_value(json).unwrap();
        let open = back.open_statement.clone().unwrap();
        assert!(open.plans.is_empty());
        assert_eq!(open.still_to_pay(), cny("100.00"));
        assert_eq!(back.bucket_at_end_of_day, None);
    }

    #[test]
    fn an_account_stored_with_due_days_0_or_over_28_still_buys() {
        let product = flat(EarlyPayoffRule::PrincipalOnly);
        for due_days in [0, 29, 30, 31] {
            let mut account = stored_with_due_days(due_days);
            let day = date(2026, 1, 10);
            let id = account
                .authorize_purchase(day, cny("1000.00"), date(2026, 1, 17), "order".into())
                .unwrap();
            let (_, plan, posting) = account
                .capture_authorization(day, id, cny("1000.00"), &product, 1)
                .unwrap();
            assert_eq!(posting.imbalance(), 0);
            assert!(account.authorizations.is_empty());
            assert_eq!(account.held, cny("0.00"));
            let installment = account.plans[0].schedule.installments[0];
            assert_eq!(account.plans[0].id, plan);
            assert_eq!(installment.statement_date, date(2026, 1, 20));
            assert_eq!(
                installment.due_date,
                date(2026, 1, 20)
                    .checked_add(i64::from(due_days).days())
                    .unwrap(),
                "{due_days}"
            );
            // Offers and bill installment build plans on the same cycle.
            Schedule::build_for_tier(&product, None, cny("500.00"), 6, day, account.cycle).unwrap();
            run(
                &mut account,
                &AccountPolicy::default(),
                day,
                date(2026, 1, 20),
            );
            if due_days > 0 {
                account
                    .bill_installment(date(2026, 1, 21), &product, 6, &AccountPolicy::default())
                    .unwrap();
            }
        }
        // A new account cannot choose them.
        for due_days in [0, 29, 30, 31] {
            let cycle = Cycle {
                statement_day: 20,
                due_days,
            };
            let error = Account::open(cny("5000.00"), cycle).unwrap_err();
            assert_eq!(error.code(), "credit_invalid_due_days");
        }
    }
}
