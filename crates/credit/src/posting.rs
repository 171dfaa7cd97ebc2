//! Journal entries the credit rules produce, on ledger accounts a finance team recognises.
//! The store maps each [`LedgerRole`] to a ledger account id and posts them as
//! `tally_ledger::NewEntry` values.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{AccountId, Amount};
use tally_ledger::{NewEntry, NewLeg, Side};

/// The ledger accounts of the credit business (one set per currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerRole {
    /// Asset: what customers owe (billed and unbilled principal, billed charges).
    CustomerReceivable,
    /// Asset: repayments received, before they are swept to the bank.
    RepaymentClearing,
    /// Liability: owed to merchants for credit purchases.
    MerchantPayable,
    /// Liability: customers' overpayments, used first next cycle.
    CustomerCreditBalance,
    /// Liability: credit balances paid out to customers, owed to them until the payment
    /// system settles the transfer (which debits this account).
    CustomerPayoutPayable,
    /// Income: installment fees (and early payoff fees).
    FeeIncome,
    /// Income: interest on declining balances and revolving remainders.
    InterestIncome,
    /// Income: late-payment penalties.
    PenaltyIncome,
    /// Income: the merchant discount of interest-free and pay-in-N plans.
    MerchantDiscountIncome,
    /// Expense: purchases written off as made by a thief on a stolen account.
    FraudLossExpense,
    /// Expense: receivables charged off as uncollectable.
    ChargeOffExpense,
}

/// One leg of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingLeg {
    pub role: LedgerRole,
    pub side: Side,
    pub amount: Amount,
}

/// A balanced journal entry on ledger roles. Zero legs are dropped when it is built, and legs
/// on one role and side are merged into one while their sum fits in an amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub description: String,
    pub legs: Vec<PostingLeg>,
}

impl Posting {
    pub fn new(description: impl Into<String>) -> Posting {
        Posting {
            description: description.into(),
            legs: Vec::new(),
        }
    }

    pub fn debit(mut self, role: LedgerRole, amount: Amount) -> Posting {
        self.push(role, Side::Debit, amount);
        self
    }

    pub fn credit(mut self, role: LedgerRole, amount: Amount) -> Posting {
        self.push(role, Side::Credit, amount);
        self
    }

    fn push(&mut self, role: LedgerRole, side: Side, amount: Amount) {
        if !amount.is_negative() {
            self.merge(role, side, amount);
            return;
        }
        // A negative amount is the same movement on the other side.
        let flipped = match side {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        };
        match amount.checked_neg() {
            Ok(positive) => self.merge(role, flipped, positive),
            Err(_) => {
                // Only `i64::MIN` has no positive amount: it moves one minor unit more than
                // `i64::MAX`, so it becomes two legs that together move exactly that.
                self.merge(role, flipped, Amount::new(i64::MAX, amount.currency()));
                self.merge(role, flipped, Amount::new(1, amount.currency()));
            }
        }
    }

    /// Adds a non-negative `amount` to the leg on `role` and `side`, or starts a new leg: a
    /// second leg when the sum would not fit in an amount (or the currencies differ), so the
    /// posting always moves exactly what it was given.
    fn merge(&mut self, role: LedgerRole, side: Side, amount: Amount) {
        if amount.is_zero() {
            return;
        }
        let merged = self
            .legs
            .iter_mut()
            .filter(|leg| leg.role == role && leg.side == side)
            .find_map(|leg| leg.amount.checked_add(amount).ok().map(|sum| (leg, sum)));
        match merged {
            Some((leg, sum)) => leg.amount = sum,
            None => self.legs.push(PostingLeg { role, side, amount }),
        }
    }

    /// Debits minus credits in minor units: zero for a balanced posting.
    pub fn imbalance(&self) -> i128 {
        self.legs
            .iter()
            .map(|leg| match leg.side {
                Side::Debit => i128::from(leg.amount.minor()),
                Side::Credit => -i128::from(leg.amount.minor()),
            })
            .sum()
    }

    /// Whether the posting moves nothing (every leg was zero): do not send it to the ledger,
    /// which refuses entries with fewer than two legs.
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// The ledger entry, with each role resolved to the account the store keeps for it.
    pub fn to_new_entry(&self, account_of: impl Fn(LedgerRole) -> AccountId) -> NewEntry {
        NewEntry {
            legs: self
                .legs
                .iter()
                .map(|leg| NewLeg {
                    account_id: account_of(leg.role),
                    side: leg.side,
                    amount: leg.amount,
                })
                .collect(),
            description: self.description.clone(),
            metadata: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Currency;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    fn moved(posting: &Posting, role: LedgerRole, side: Side) -> i128 {
        posting
            .legs
            .iter()
            .filter(|leg| leg.role == role && leg.side == side)
            .map(|leg| i128::from(leg.amount.minor()))
            .sum()
    }

    #[test]
    fn legs_move_exactly_what_they_are_given_near_the_limit() {
        // Two debits on one role whose sum does not fit stay two legs.
        let posting = Posting::new("near the limit")
            .debit(LedgerRole::CustomerReceivable, cny(i64::MAX))
            .debit(LedgerRole::CustomerReceivable, cny(5))
            .credit(LedgerRole::MerchantPayable, cny(i64::MAX))
            .credit(LedgerRole::MerchantPayable, cny(5));
        assert_eq!(posting.imbalance(), 0);
        assert_eq!(
            moved(&posting, LedgerRole::CustomerReceivable, Side::Debit),
            i128::from(i64::MAX) + 5
        );
        assert!(posting.legs.iter().all(|leg| leg.amount.is_positive()));
        // Legs that fit still merge into one.
        let merged = Posting::new("small")
            .debit(LedgerRole::FeeIncome, cny(2))
            .debit(LedgerRole::FeeIncome, cny(3));
        assert_eq!(merged.legs.len(), 1);
        assert_eq!(merged.legs[0].amount, cny(5));
        // The most negative amount moves one unit more than i64::MAX on the other side.
        let flipped = Posting::new("most negative").credit(LedgerRole::FeeIncome, cny(i64::MIN));
        assert_eq!(
            moved(&flipped, LedgerRole::FeeIncome, Side::Debit),
            -i128::from(i64::MIN)
        );
        assert!(flipped.legs.iter().all(|leg| leg.amount.is_positive()));
    }
}
