//! Repayment allocation: which outstanding parts a payment settles, in a configurable order.

use crate::amounts::smaller;
use crate::error::CreditError;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Currency};

/// A component of a due item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Principal,
    Fee,
    Interest,
    Penalty,
}

/// What one installment (or carried remainder) of one plan still owes, billed on a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub plan_id: u32,
    pub installment: u32,
    pub statement_date: Date,
    pub due_date: Date,
    /// The minimum was paid on its statement, so the remainder revolves (daily interest, no
    /// penalty) until its new due date.
    pub revolving: bool,
    pub principal: Amount,
    pub fee: Amount,
    pub interest: Amount,
    pub penalty: Amount,
    /// Penalty charged on this item so far, for the cap.
    pub penalty_charged: Amount,
    /// Principal, fee and interest when billed: the base of the penalty cap.
    pub billed: Amount,
}

impl Due {
    pub fn component(&self, component: Component) -> Amount {
        match component {
            Component::Principal => self.principal,
            Component::Fee => self.fee,
            Component::Interest => self.interest,
            Component::Penalty => self.penalty,
        }
    }

    fn component_mut(&mut self, component: Component) -> &mut Amount {
        match component {
            Component::Principal => &mut self.principal,
            Component::Fee => &mut self.fee,
            Component::Interest => &mut self.interest,
            Component::Penalty => &mut self.penalty,
        }
    }

    /// Everything still owed on this item, in minor units. Exact for every item the credit
    /// rules keep: end of day refuses (`amount_overflow`) a day that would leave an item
    /// owing more than an amount holds. Money sums use [`Due::checked_outstanding`].
    pub fn outstanding(&self) -> i64 {
        match self.checked_outstanding() {
            Ok(outstanding) => outstanding,
            Err(error) => {
                debug_assert!(false, "{self:?}: {error}");
                // Only a hand-made item gets here; it owes more than an amount holds.
                i64::MAX
            }
        }
    }

    /// Everything still owed on this item, or an error if it does not fit in an amount.
    pub fn checked_outstanding(&self) -> Result<i64, CreditError> {
        Ok(self
            .principal
            .checked_add(self.fee)?
            .checked_add(self.interest)?
            .checked_add(self.penalty)?
            .minor())
    }

    /// Whether anything is still owed on this item. Exact whatever the parts (summed in 128
    /// bits, where four amounts cannot overflow), so it needs no fallible sum.
    pub fn owes(&self) -> bool {
        let parts = [self.principal, self.fee, self.interest, self.penalty];
        parts
            .iter()
            .map(|part| i128::from(part.minor()))
            .sum::<i128>()
            > 0
    }

    /// Past its due date on `date` and unpaid.
    pub fn is_overdue(&self, date: Date) -> bool {
        self.due_date < date && self.owes()
    }
}

/// One step of the allocation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationStep {
    Penalty,
    OverdueInterest,
    OverdueFee,
    OverduePrincipal,
    CurrentFee,
    CurrentInterest,
    CurrentPrincipal,
}

impl AllocationStep {
    const ALL: [AllocationStep; 7] = [
        AllocationStep::Penalty,
        AllocationStep::OverdueInterest,
        AllocationStep::OverdueFee,
        AllocationStep::OverduePrincipal,
        AllocationStep::CurrentFee,
        AllocationStep::CurrentInterest,
        AllocationStep::CurrentPrincipal,
    ];

    fn selects(self, due: &Due, as_of: Date) -> Option<Component> {
        let overdue = due.due_date < as_of;
        match (self, overdue) {
            (AllocationStep::Penalty, _) => Some(Component::Penalty),
            (AllocationStep::OverdueInterest, true) => Some(Component::Interest),
            (AllocationStep::OverdueFee, true) => Some(Component::Fee),
            (AllocationStep::OverduePrincipal, true) => Some(Component::Principal),
            (AllocationStep::CurrentFee, false) => Some(Component::Fee),
            (AllocationStep::CurrentInterest, false) => Some(Component::Interest),
            (AllocationStep::CurrentPrincipal, false) => Some(Component::Principal),
            _ => None,
        }
    }
}

/// The order in which a repayment settles what is owed. Within a step, the oldest due date
/// first, then the lowest plan id and installment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AllocationOrder(pub Vec<AllocationStep>);

impl Default for AllocationOrder {
    /// Penalties, overdue interest and fees, overdue principal oldest first, then current
    /// fees, interest and principal.
    fn default() -> Self {
        AllocationOrder(AllocationStep::ALL.to_vec())
    }
}

impl AllocationOrder {
    /// Every step exactly once, so that a payment can always settle everything owed.
    pub fn validate(&self) -> Result<(), CreditError> {
        let complete = self.0.len() == AllocationStep::ALL.len()
            && AllocationStep::ALL.iter().all(|step| self.0.contains(step));
        if complete {
            Ok(())
        } else {
            Err(CreditError::InvalidConfiguration(
                "the allocation order must list each of the seven steps exactly once".into(),
            ))
        }
    }
}

/// One part of a payment applied to one component of one due item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub plan_id: u32,
    pub installment: u32,
    pub component: Component,
    pub amount: Amount,
}

/// Applies `payment` to `dues` in `order` as of `as_of`, recording each part in `applied`,
/// and returns what is left over (the overpayment). Every minor unit of the payment is either
/// applied or left over.
pub fn allocate(
    dues: &mut [Due],
    payment: Amount,
    as_of: Date,
    order: &AllocationOrder,
    applied: &mut Vec<Applied>,
) -> Result<Amount, CreditError> {
    if payment.is_negative() {
        return Err(CreditError::AmountNotPositive(payment.to_string()));
    }
    let currency: Currency = payment.currency();
    let mut left = payment;
    // Oldest first; a stable sort of indices keeps the caller's order for equal keys.
    let mut indices: Vec<usize> = (0..dues.len()).collect();
    indices.sort_by_key(|index| {
        let due = &dues[*index];
        (due.due_date, due.plan_id, due.installment)
    });
    for step in &order.0 {
        for index in &indices {
            if left.is_zero() {
                return Ok(left);
            }
            let due = &mut dues[*index];
            let Some(component) = step.selects(due, as_of) else {
                continue;
            };
            let owed = due.component_mut(component);
            if owed.currency() != currency {
                return Err(CreditError::CurrencyMismatch(format!(
                    "payment in {currency}, due in {}",
                    owed.currency()
                )));
            }
            let take = smaller(left, *owed);
            if take.is_positive() {
                *owed = owed.checked_sub(take)?;
                left = left.checked_sub(take)?;
                applied.push(Applied {
                    plan_id: due.plan_id,
                    installment: due.installment,
                    component,
                    amount: take,
                });
            }
        }
    }
    Ok(left)
}
