//! Installment schedules: how a purchase's principal, fees and interest fall due, per product.

use crate::amounts::{scale_down, smaller};
use crate::error::CreditError;
use crate::finance;
use crate::product::{FeeModel, Pricing, Product, RemainderOn};
use jiff::civil::Date;
use jiff::ToSpan;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Rounding};

/// The account's billing cycle: the day of the month statements are cut (1 to 28) and how
/// many days after the statement date payment is due (1 to 28 for a cycle chosen now;
/// accounts opened before Tally limited it may hold 0 to 31, see [`Cycle::check_stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cycle {
    pub statement_day: i8,
    #[serde(default = "default_due_days")]
    pub due_days: i32,
}

/// Default days from statement date to due date.
pub const DUE_DAYS_DEFAULT: i32 = 9;

/// The due days Tally accepted before it limited new cycles to 1 to 28: an account opened
/// then may hold any of them, and keeps working with it.
pub const STORED_DUE_DAYS: std::ops::RangeInclusive<i32> = 0..=31;

fn default_due_days() -> i32 {
    DUE_DAYS_DEFAULT
}

impl Cycle {
    /// A cycle chosen now, for a new account: see [`Cycle::validate`].
    pub fn new(statement_day: i8, due_days: i32) -> Result<Cycle, CreditError> {
        let cycle = Cycle {
            statement_day,
            due_days,
        };
        cycle.validate()?;
        Ok(cycle)
    }

    /// The rules for a cycle chosen now (opening an account): statement day 1 to 28 and
    /// `due_days` 1 to 28 (`credit_invalid_due_days`). Not for an existing account's cycle,
    /// which may predate the `due_days` rule ([`Cycle::check_stored`]).
    pub fn validate(&self) -> Result<(), CreditError> {
        self.check_statement_day()?;
        // A statement is judged at the end of its due date, before that day's statement is
        // cut; so a due date may fall on the next statement date (the shortest month has
        // 28 days) but not after it. Due on the statement date itself would leave no day to
        // pay.
        if !(1..=28).contains(&self.due_days) {
            return Err(CreditError::InvalidDueDays(self.due_days));
        }
        Ok(())
    }

    /// What any stored account's cycle satisfies, checked where an existing account's plans
    /// are built: statement day 1 to 28 and `due_days` 0 to 31 (what Tally accepted before
    /// new cycles were limited to 1 to 28). An account with `due_days` 0 or 29 to 31 keeps
    /// buying, and end of day keeps a statement not yet due when the next is cut until its
    /// due date (`Account::earlier_statements`).
    pub fn check_stored(&self) -> Result<(), CreditError> {
        self.check_statement_day()?;
        if !STORED_DUE_DAYS.contains(&self.due_days) {
            return Err(CreditError::InvalidConfiguration(format!(
                "due_days {} must be 0 to 31",
                self.due_days
            )));
        }
        Ok(())
    }

    fn check_statement_day(&self) -> Result<(), CreditError> {
        if !(1..=28).contains(&self.statement_day) {
            return Err(CreditError::InvalidStatementDay(self.statement_day));
        }
        Ok(())
    }

    /// The first statement date strictly after `date`: a purchase made on a statement day is
    /// billed on the next one.
    pub fn next_statement_date(&self, date: Date) -> Result<Date, CreditError> {
        let this_month = Date::new(date.year(), date.month(), self.statement_day)?;
        if this_month > date {
            Ok(this_month)
        } else {
            Ok(this_month.checked_add(1.month())?)
        }
    }

    /// Whether `date` is a statement date of this cycle.
    pub fn is_statement_date(&self, date: Date) -> bool {
        date.day() == self.statement_day
    }

    /// The due date of a statement cut on `statement_date`.
    pub fn due_date(&self, statement_date: Date) -> Result<Date, CreditError> {
        Ok(statement_date.checked_add(i64::from(self.due_days).days())?)
    }
}

/// One installment of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installment {
    /// 1-based.
    pub number: u32,
    /// The statement that bills it (equal to the due date for pay-in-N).
    pub statement_date: Date,
    pub due_date: Date,
    pub principal: Amount,
    /// Flat fee of the period (flat-fee products).
    pub fee: Amount,
    /// Interest of the period on the declining balance (annuity, equal principal).
    pub interest: Amount,
}

impl Installment {
    /// What the customer pays for this installment.
    pub fn total(&self) -> Result<Amount, CreditError> {
        Ok(self
            .principal
            .checked_add(self.fee)?
            .checked_add(self.interest)?)
    }
}

/// A priced plan for one purchase: its installments and what the merchant gives up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub principal: Amount,
    pub periods: u32,
    pub purchase_date: Date,
    /// Installment 1 is paid at purchase (pay-in-N).
    pub first_due_at_purchase: bool,
    /// Periods a year, to annualise the true APR (12, or 26 for every two weeks).
    pub periods_per_year: u32,
    /// Paid by the merchant out of its settlement (interest-free and pay-in-N products).
    pub merchant_discount: Amount,
    pub installments: Vec<Installment>,
    /// The rate used (the account's tier's when the term lists one, else the term's) and
    /// that tier; absent only on schedules stored before Tally recorded them. The rate is a
    /// fee per period (flat fee), an annual rate (annuity, equal principal) or the merchant's
    /// discount (interest-free, pay-in-N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// How each installment's interest follows the principal still owed (annuity and equal
    /// principal plans), kept so that a refund can charge interest only on what is still
    /// owed. Absent on plans without interest, and on schedules stored before Tally kept it
    /// (see [`Schedule::interest_basis`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declining_balance: Option<DecliningBalance>,
}

/// The interest of an installment is `periodic_rate` × the plan's principal still owed at
/// the start of its period (the principal parts of it and of every later installment),
/// rounded to the minor unit by `rounding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecliningBalance {
    #[serde(with = "tally_core::rate::exact")]
    pub periodic_rate: Decimal,
    pub rounding: Rounding,
}

impl DecliningBalance {
    /// The interest of a period that starts with `balance` owed.
    pub fn interest(&self, balance: Amount) -> Result<Amount, CreditError> {
        Ok(balance.apply_rate(self.periodic_rate, self.rounding)?)
    }
}

impl Schedule {
    /// Builds the schedule of `principal` over `periods` installments of `product`.
    ///
    /// Rounding: fees and interest are rounded to the minor unit by the product's mode. The
    /// principal parts of even splits are the principal divided by the number of parts,
    /// truncated, with the left-over minor units all on the installment the product names
    /// (`remainder_on`); an annuity's last installment takes the remaining balance.
    pub fn build(
        product: &Product,
        principal: Amount,
        periods: u32,
        purchase_date: Date,
        cycle: Cycle,
    ) -> Result<Schedule, CreditError> {
        Schedule::build_for_tier(product, None, principal, periods, purchase_date, cycle)
    }

    /// Builds the schedule for an account of pricing tier `tier`: at the tier's rate when the
    /// term lists one (`tier_rates`), otherwise at the term's rate; the schedule records which.
    pub fn build_for_tier(
        product: &Product,
        tier: Option<&str>,
        principal: Amount,
        periods: u32,
        purchase_date: Date,
        cycle: Cycle,
    ) -> Result<Schedule, CreditError> {
        if principal.currency() != product.currency {
            return Err(CreditError::CurrencyMismatch(format!(
                "purchase in {}, product {} in {}",
                principal.currency(),
                product.code,
                product.currency
            )));
        }
        if !principal.is_positive() {
            return Err(CreditError::AmountNotPositive(principal.to_string()));
        }
        // The account's cycle as stored, which may predate the limit on new cycles' due
        // days: a plan for an existing account must not be refused for it.
        cycle.check_stored()?;
        let pricing = product.term(periods)?.pricing_for(tier);
        let rate = pricing.rate;
        let rounding = product.rounding;
        let zero = Amount::zero(principal.currency());
        let count = usize::try_from(periods)
            .map_err(|_| CreditError::InvalidProduct("too many periods".into()))?;
        let mut installments = Vec::with_capacity(count);
        let mut merchant_discount = zero;
        let mut first_due_at_purchase = false;
        let mut declining_balance = None;

        // Installment `number` of a monthly schedule: due on the cycle's due date after the
        // `number`th statement from the purchase.
        let monthly = |number: u32,
                       principal: Amount,
                       fee: Amount,
                       interest: Amount|
         -> Result<Installment, CreditError> {
            let first = cycle.next_statement_date(purchase_date)?;
            let statement_date = first.checked_add(i64::from(number - 1).months())?;
            Ok(Installment {
                number,
                statement_date,
                due_date: cycle.due_date(statement_date)?,
                principal,
                fee,
                interest,
            })
        };

        match product.fee_model {
            FeeModel::FlatFee => {
                let parts = split_principal(principal, periods, product.remainder_on)?;
                let fee = principal.apply_rate(rate, rounding)?;
                for (number, part) in (1..).zip(parts) {
                    installments.push(monthly(number, part, fee, zero)?);
                }
            }
            FeeModel::InterestFree => {
                let parts = split_principal(principal, periods, product.remainder_on)?;
                merchant_discount = principal.apply_rate(rate, rounding)?;
                for (number, part) in (1..).zip(parts) {
                    installments.push(monthly(number, part, zero, zero)?);
                }
            }
            FeeModel::EqualPrincipal => {
                let basis = DecliningBalance {
                    periodic_rate: monthly_rate(rate)?,
                    rounding,
                };
                declining_balance = Some(basis);
                let parts = split_principal(principal, periods, product.remainder_on)?;
                let mut balance = principal;
                for (number, part) in (1..).zip(parts) {
                    let interest = basis.interest(balance)?;
                    balance = balance.checked_sub(part)?;
                    installments.push(monthly(number, part, zero, interest)?);
                }
            }
            FeeModel::Annuity => {
                let basis = DecliningBalance {
                    periodic_rate: monthly_rate(rate)?,
                    rounding,
                };
                declining_balance = Some(basis);
                let payment = annuity_payment(principal, basis.periodic_rate, periods, rounding)?;
                let mut balance = principal;
                for number in 1..=periods {
                    let interest = basis.interest(balance)?;
                    let part = if number == periods {
                        balance
                    } else {
                        // The payment less the period's interest; kept between zero and the
                        // balance, so that a rounding never makes a part negative or larger
                        // than what is still owed (the last installment takes the rest).
                        let raw = payment.checked_sub(interest)?;
                        if raw.is_negative() {
                            Amount::zero(principal.currency())
                        } else {
                            smaller(raw, balance)
                        }
                    };
                    balance = balance.checked_sub(part)?;
                    installments.push(monthly(number, part, zero, interest)?);
                }
            }
            FeeModel::PayInN {
                first_share,
                interval_days,
            } => {
                first_due_at_purchase = true;
                merchant_discount = principal.apply_rate(rate, rounding)?;
                let first = principal.apply_rate(first_share, rounding)?;
                let rest = principal.checked_sub(first)?;
                let later = split_principal(rest, periods - 1, product.remainder_on)?;
                for (number, part) in (1..).zip(std::iter::once(first).chain(later)) {
                    let offset = i64::from(interval_days) * i64::from(number - 1);
                    let due_date = purchase_date.checked_add(offset.days())?;
                    installments.push(Installment {
                        number,
                        statement_date: due_date,
                        due_date,
                        principal: part,
                        fee: zero,
                        interest: zero,
                    });
                }
            }
        }

        let schedule = Schedule {
            principal,
            periods,
            purchase_date,
            first_due_at_purchase,
            periods_per_year: product.periods_per_year(),
            merchant_discount,
            installments,
            pricing: Some(pricing),
            declining_balance,
        };
        schedule.check()?;
        // The plan's whole cost must fit in an amount, or summing what it bills would
        // overflow later, at end of day.
        schedule.total().map_err(|_| {
            CreditError::AmountTooLarge(format!(
                "the principal and charges of a plan of {principal} over {periods} do not fit \
                 in an amount"
            ))
        })?;
        Ok(schedule)
    }

    /// Asserts the schedule's invariants: principal parts sum exactly to the principal and
    /// no part is negative. A failure is a bug, reported rather than panicking.
    pub fn check(&self) -> Result<(), CreditError> {
        let currency = self.principal.currency();
        let parts: Vec<Amount> = self
            .installments
            .iter()
            .map(|item| item.principal)
            .collect();
        let sum = Amount::checked_sum(currency, &parts)?;
        if sum != self.principal {
            return Err(CreditError::InvalidConfiguration(format!(
                "schedule principal parts sum to {sum}, not {}",
                self.principal
            )));
        }
        if self.installments.iter().any(|item| {
            item.principal.is_negative() || item.fee.is_negative() || item.interest.is_negative()
        }) {
            return Err(CreditError::InvalidConfiguration(
                "schedule has a negative part".into(),
            ));
        }
        Ok(())
    }

    /// How the interest of this schedule's installments follows the principal still owed:
    /// as recorded, or, for a schedule stored before Tally recorded it, the one its build
    /// used (only annuity and equal-principal plans bill interest, at the recorded annual
    /// rate / 12) with the products' default rounding, half-up. None for a plan without
    /// interest, or stored before Tally recorded its rate.
    pub fn interest_basis(&self) -> Result<Option<DecliningBalance>, CreditError> {
        if let Some(basis) = self.declining_balance {
            return Ok(Some(basis));
        }
        let bills_interest = self
            .installments
            .iter()
            .any(|item| item.interest.is_positive());
        match &self.pricing {
            Some(pricing) if bills_interest => Ok(Some(DecliningBalance {
                periodic_rate: monthly_rate(pricing.rate)?,
                rounding: Rounding::HalfUp,
            })),
            _ => Ok(None),
        }
    }

    /// Takes up to `value` minor units of principal off the installments from index `first`
    /// on (those not yet billed), the last first, and returns what it took: a refund shortens
    /// the plan and no remaining installment's principal rises.
    ///
    /// The charges follow the principal still owed. A flat fee is charged per installment, so
    /// an installment keeps its fee in proportion to the principal left on it (rounded down).
    /// Interest on the declining balance (annuity, equal principal) is charged again on what
    /// is still owed at the start of each remaining period, by the schedule's
    /// [`DecliningBalance`]: a period's interest never rises. A schedule without a known basis
    /// keeps each installment's interest in proportion, like a fee.
    pub fn take_principal_from_last(
        &mut self,
        first: usize,
        value: i64,
    ) -> Result<i64, CreditError> {
        let basis = self.interest_basis()?;
        let currency = self.principal.currency();
        // A negative value takes nothing.
        let mut left = Amount::new(value.max(0), currency);
        let mut taken = Amount::zero(currency);
        let remaining = self.installments.get_mut(first..).unwrap_or_default();
        for item in remaining.iter_mut().rev() {
            if left.is_zero() {
                break;
            }
            let before = item.principal;
            let take = smaller(left, before);
            if !take.is_positive() {
                continue;
            }
            let after = before.checked_sub(take)?;
            item.fee = scale_down(item.fee, after, before)?;
            if basis.is_none() {
                item.interest = scale_down(item.interest, after, before)?;
            }
            item.principal = after;
            left = left.checked_sub(take)?;
            taken = taken.checked_add(take)?;
        }
        if let (Some(basis), true) = (basis, taken.is_positive()) {
            let parts: Vec<Amount> = remaining.iter().map(|item| item.principal).collect();
            let mut balance = Amount::checked_sum(currency, &parts)?;
            for item in remaining.iter_mut() {
                let interest = basis.interest(balance)?;
                // Never more than the schedule disclosed (a stored schedule's inferred
                // rounding could otherwise add a minor unit).
                if interest.minor() < item.interest.minor() {
                    item.interest = interest;
                }
                balance = balance.checked_sub(item.principal)?;
            }
        }
        Ok(taken.minor())
    }

    /// Principal, fees and interest over the whole plan: what the customer pays for it.
    pub fn total(&self) -> Result<Amount, CreditError> {
        Ok(self.principal.checked_add(self.total_charges()?)?)
    }

    /// Fees plus interest over the whole plan.
    pub fn total_charges(&self) -> Result<Amount, CreditError> {
        let mut total = Amount::zero(self.principal.currency());
        for item in &self.installments {
            total = total.checked_add(item.fee)?.checked_add(item.interest)?;
        }
        Ok(total)
    }

    /// The customer's cash flows per period, in minor units: index 0 is the purchase (the
    /// principal received as a negative flow, less any installment paid at once), index k the
    /// installment due k periods later.
    pub fn cash_flows(&self) -> Result<Vec<Decimal>, CreditError> {
        // Negated as a decimal: `-i64::MIN` does not fit in an i64.
        let mut flows = vec![-Decimal::from(self.principal.minor())];
        for (index, item) in self.installments.iter().enumerate() {
            let total = Decimal::from(item.total()?.minor());
            let period = if self.first_due_at_purchase {
                index
            } else {
                index + 1
            };
            if period == 0 {
                flows[0] += total;
            } else {
                flows.push(total);
            }
        }
        Ok(flows)
    }

    /// The plan's true APR: the internal rate of return of its cash flows.
    pub fn true_apr(&self) -> Result<finance::TrueApr, CreditError> {
        finance::TrueApr::of_cash_flows(&self.cash_flows()?, self.periods_per_year)
    }
}

/// The annual rate / 12.
pub fn monthly_rate(annual: Decimal) -> Result<Decimal, CreditError> {
    annual
        .checked_div(Decimal::from(12))
        .ok_or(CreditError::RateNotFound("monthly rate overflow"))
}

/// The equal installment of an annuity, rounded to the minor unit by `rounding`.
pub fn annuity_payment(
    principal: Amount,
    periodic_rate: Decimal,
    periods: u32,
    rounding: Rounding,
) -> Result<Amount, CreditError> {
    let exact = finance::payment(periodic_rate, periods, Decimal::from(principal.minor()))?;
    Ok(Amount::new(
        rounding.round_minor(exact)?,
        principal.currency(),
    ))
}

/// Splits `principal` into `parts` equal parts truncated to the minor unit, with all the
/// left-over minor units on the first or the last part.
pub fn split_principal(
    principal: Amount,
    parts: u32,
    remainder_on: RemainderOn,
) -> Result<Vec<Amount>, CreditError> {
    if parts == 0 {
        return Err(CreditError::InvalidProduct(
            "a plan needs at least one installment".into(),
        ));
    }
    let divisor = i64::from(parts);
    // Truncated toward zero, so `base × parts` is at most the principal and fits.
    let base = Amount::new(principal.minor() / divisor, principal.currency());
    let remainder = principal.checked_sub(base.checked_mul(divisor)?)?;
    let count =
        usize::try_from(parts).map_err(|_| CreditError::InvalidProduct("too many parts".into()))?;
    let mut split = vec![base; count];
    let index = match remainder_on {
        RemainderOn::First => 0,
        RemainderOn::Last => count - 1,
    };
    split[index] = base.checked_add(remainder)?;
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::{EarlyPayoffRule, TermPricing};
    use jiff::civil::date;
    use tally_core::Currency;

    fn product(fee_model: FeeModel, periods: u32, rate: Decimal) -> Product {
        Product {
            code: "p".into(),
            name: "p".into(),
            currency: Currency::CNY,
            fee_model,
            terms: vec![TermPricing::new(periods, rate)],
            rounding: Rounding::HalfUp,
            remainder_on: RemainderOn::Last,
            early_payoff: EarlyPayoffRule::PrincipalOnly,
            fees_refundable: true,
        }
    }

    #[test]
    fn statement_and_due_dates_follow_the_cycle() {
        let cycle = Cycle::new(20, 9).unwrap();
        assert_eq!(
            cycle.next_statement_date(date(2026, 1, 10)).unwrap(),
            date(2026, 1, 20)
        );
        // A purchase on the statement day is billed on the next one.
        assert_eq!(
            cycle.next_statement_date(date(2026, 1, 20)).unwrap(),
            date(2026, 2, 20)
        );
        assert_eq!(
            cycle.next_statement_date(date(2026, 12, 25)).unwrap(),
            date(2027, 1, 20)
        );
        assert_eq!(cycle.due_date(date(2026, 2, 20)).unwrap(), date(2026, 3, 1));
        assert!(Cycle::new(29, 9).is_err());
        assert!(Cycle::new(0, 9).is_err());
    }

    #[test]
    fn a_flat_fee_plan_by_hand() {
        // 1,000.00 over 3 at 0.7% a period: fee 7.00 a period, principal 333.33, 333.33, 333.34.
        let plan = Schedule::build(
            &product(FeeModel::FlatFee, 3, Decimal::new(7, 3)),
            Amount::new(100_000, Currency::CNY),
            3,
            date(2026, 1, 10),
            Cycle::new(20, 9).unwrap(),
        )
        .unwrap();
        let parts: Vec<(i64, i64)> = plan
            .installments
            .iter()
            .map(|item| (item.principal.minor(), item.fee.minor()))
            .collect();
        assert_eq!(parts, vec![(33_333, 700), (33_333, 700), (33_334, 700)]);
        let dues: Vec<Date> = plan.installments.iter().map(|item| item.due_date).collect();
        assert_eq!(
            dues,
            vec![date(2026, 1, 29), date(2026, 3, 1), date(2026, 3, 29)]
        );
        assert_eq!(plan.total_charges().unwrap().minor(), 2_100);
    }

    #[test]
    fn pay_in_four_every_two_weeks() {
        // 100.01: 25% now = 25.0025, half-up 25.00; 75.01 left: 25.00, 25.00, 25.01.
        let model = FeeModel::PayInN {
            first_share: Decimal::new(25, 2),
            interval_days: 14,
        };
        let plan = Schedule::build(
            &product(model, 4, Decimal::new(3, 2)),
            Amount::new(10_001, Currency::CNY),
            4,
            date(2026, 3, 1),
            Cycle::new(5, 9).unwrap(),
        )
        .unwrap();
        let parts: Vec<i64> = plan
            .installments
            .iter()
            .map(|item| item.principal.minor())
            .collect();
        assert_eq!(parts, vec![2_500, 2_500, 2_500, 2_501]);
        let dues: Vec<Date> = plan.installments.iter().map(|item| item.due_date).collect();
        assert_eq!(
            dues,
            vec![
                date(2026, 3, 1),
                date(2026, 3, 15),
                date(2026, 3, 29),
                date(2026, 4, 12)
            ]
        );
        // The merchant pays 3%: 300.03 fen, half-up 3.00.
        assert_eq!(plan.merchant_discount.minor(), 300);
        assert_eq!(plan.periods_per_year, 26);
        let apr = plan.true_apr().unwrap();
        assert_eq!(apr.nominal_annual, Decimal::ZERO);
        assert_eq!(plan.cash_flows().unwrap()[0], Decimal::from(-7_501));
    }

    #[test]
    fn interest_free_with_a_merchant_discount() {
        let plan = Schedule::build(
            &product(FeeModel::InterestFree, 12, Decimal::new(45, 3)),
            Amount::new(600_000, Currency::CNY),
            12,
            date(2026, 1, 10),
            Cycle::new(1, 9).unwrap(),
        )
        .unwrap();
        assert!(plan
            .installments
            .iter()
            .all(|item| item.principal.minor() == 50_000));
        assert_eq!(plan.merchant_discount.minor(), 27_000);
        assert_eq!(plan.true_apr().unwrap().nominal_annual, Decimal::ZERO);
    }

    #[test]
    fn wrong_currency_and_zero_principal_are_refused() {
        let product = product(FeeModel::FlatFee, 3, Decimal::new(7, 3));
        let cycle = Cycle::new(20, 9).unwrap();
        let error = Schedule::build(
            &product,
            Amount::new(100, Currency::USD),
            3,
            date(2026, 1, 1),
            cycle,
        )
        .unwrap_err();
        assert_eq!(error.code(), "currency_mismatch");
        let error = Schedule::build(
            &product,
            Amount::new(0, Currency::CNY),
            3,
            date(2026, 1, 1),
            cycle,
        )
        .unwrap_err();
        assert_eq!(error.code(), "amount_not_positive");
    }

    fn minor(items: &[Installment], part: fn(&Installment) -> Amount) -> Vec<i64> {
        items.iter().map(|item| part(item).minor()).collect()
    }

    #[test]
    fn a_refund_comes_off_the_last_installments_and_interest_follows_what_is_still_owed() {
        let cycle = Cycle::new(20, 9).unwrap();
        let build = |fee_model: FeeModel, rate: Decimal| {
            Schedule::build(
                &product(fee_model, 6, rate),
                Amount::new(120_000, Currency::CNY),
                6,
                date(2026, 1, 10),
                cycle,
            )
            .unwrap()
        };
        // Equal principal at 18% a year (1.5% a month): 200.00 a month; interest 18.00,
        // 15.00, 12.00, 9.00, 6.00, 3.00. Installment 1 billed, then 500.00 refunded: 6 and
        // 5 go, 4 keeps 100.00, and interest is 1.5% of what is still owed: 500.00 before
        // installment 2 (7.50), 300.00 (4.50), 100.00 (1.50).
        let mut equal = build(FeeModel::EqualPrincipal, Decimal::new(18, 2));
        assert_eq!(equal.take_principal_from_last(1, 50_000).unwrap(), 50_000);
        let items = &equal.installments;
        assert_eq!(
            minor(items, |item| item.principal),
            vec![20_000, 20_000, 20_000, 10_000, 0, 0]
        );
        assert_eq!(
            minor(items, |item| item.interest),
            vec![1_800, 750, 450, 150, 0, 0]
        );
        // Annuity: the same rule, so each remaining installment keeps its principal and pays
        // less interest; the plan ends sooner.
        let original = build(FeeModel::Annuity, Decimal::new(18, 2));
        let mut annuity = original.clone();
        assert_eq!(annuity.take_principal_from_last(1, 50_000).unwrap(), 50_000);
        let basis = annuity.declining_balance.unwrap();
        let mut balance: i64 = minor(&annuity.installments[1..], |item| item.principal)
            .iter()
            .sum();
        assert_eq!(
            balance,
            120_000 - original.installments[0].principal.minor() - 50_000
        );
        for (item, before) in annuity
            .installments
            .iter()
            .zip(&original.installments)
            .skip(1)
        {
            assert_eq!(
                item.interest,
                basis.interest(Amount::new(balance, Currency::CNY)).unwrap()
            );
            assert!(item.interest.minor() <= before.interest.minor());
            assert!(item.principal.minor() <= before.principal.minor());
            balance -= item.principal.minor();
        }
        assert_eq!(annuity.installments[0], original.installments[0]);
        // Flat fee 0.7% a period (8.40): the fee goes with the principal it was charged with.
        let mut flat = build(FeeModel::FlatFee, Decimal::new(7, 3));
        flat.take_principal_from_last(1, 50_000).unwrap();
        assert_eq!(
            minor(&flat.installments, |item| item.fee),
            vec![840, 840, 840, 420, 0, 0]
        );
        // Interest-free and pay-in-N: principal only, the last first.
        for fee_model in [
            FeeModel::InterestFree,
            FeeModel::PayInN {
                first_share: Decimal::new(25, 2),
                interval_days: 14,
            },
        ] {
            let mut plan = Schedule::build(
                &product(fee_model, 4, Decimal::new(3, 2)),
                Amount::new(120_000, Currency::CNY),
                4,
                date(2026, 1, 10),
                cycle,
            )
            .unwrap();
            assert_eq!(plan.take_principal_from_last(1, 50_000).unwrap(), 50_000);
            assert_eq!(
                minor(&plan.installments, |item| item.principal),
                vec![30_000, 30_000, 10_000, 0]
            );
            assert_eq!(plan.total_charges().unwrap().minor(), 0);
        }
        // No more than the unbilled principal is taken.
        let mut equal = build(FeeModel::EqualPrincipal, Decimal::new(18, 2));
        assert_eq!(equal.take_principal_from_last(5, 50_000).unwrap(), 20_000);
        assert_eq!(equal.installments[5].interest.minor(), 0);
    }

    #[test]
    fn a_schedule_stored_before_its_interest_basis_was_kept_is_repriced_at_its_rate() {
        let built = Schedule::build(
            &product(FeeModel::Annuity, 12, Decimal::new(18, 2)),
            Amount::new(240_000, Currency::CNY),
            12,
            date(2026, 3, 20),
            Cycle::new(5, 9).unwrap(),
        )
        .unwrap();
        let mut json = serde_json::to_value(&built).unwrap();
        json.as_object_mut().unwrap().remove("declining_balance");
        let stored: Schedule = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(stored.declining_balance, None);
        assert_eq!(stored.interest_basis().unwrap(), built.declining_balance);
        let (mut stored, mut current) = (stored, built);
        stored.take_principal_from_last(3, 120_000).unwrap();
        current.take_principal_from_last(3, 120_000).unwrap();
        assert_eq!(stored.installments, current.installments);
        // Without a recorded rate either, interest shrinks in proportion, like a fee.
        json.as_object_mut().unwrap().remove("pricing");
        let mut oldest: Schedule = serde_json::from_value(json).unwrap();
        assert_eq!(oldest.interest_basis().unwrap(), None);
        let last = oldest.installments[11];
        oldest
            .take_principal_from_last(3, last.principal.minor() / 2)
            .unwrap();
        assert_eq!(
            oldest.installments[11].interest.minor(),
            last.interest.minor() * (last.principal.minor() - last.principal.minor() / 2)
                / last.principal.minor()
        );
    }
}
