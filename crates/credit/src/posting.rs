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

/// A balanced journal entry on ledger roles. Zero legs are dropped when it is built.
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
        // A negative amount is the same movement on the other side.
        let (side, amount) = if amount.is_negative() {
            let flipped = match side {
                Side::Debit => Side::Credit,
                Side::Credit => Side::Debit,
            };
            (
                flipped,
                Amount::new(amount.minor().saturating_neg(), amount.currency()),
            )
        } else {
            (side, amount)
        };
        if amount.is_zero() {
            return;
        }
        if let Some(leg) = self
            .legs
            .iter_mut()
            .find(|leg| leg.role == role && leg.side == side)
        {
            leg.amount = Amount::new(
                leg.amount.minor().saturating_add(amount.minor()),
                amount.currency(),
            );
        } else {
            self.legs.push(PostingLeg { role, side, amount });
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
