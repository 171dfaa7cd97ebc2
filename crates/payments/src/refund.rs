//! Where a refund goes: split across the sources a payment was captured from, by a policy
//! the merchant chooses, never giving a source more than it paid and has not had back.

use crate::error::PaymentError;
use crate::funding::Source;
use serde::{Deserialize, Serialize};
use tally_core::Amount;

/// How a refund is split across the sources that paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// The last source listed is refunded first, each up to what it has left to get back:
    /// the shopper's most recent choice is undone first.
    #[default]
    ReverseFunding,
    /// Each source gets back in proportion to what it has left to get back (largest
    /// remainder; ties to the earlier source), so repeated partial refunds keep the split
    /// of the payment.
    ProRata,
    /// Tally's own sources (vault, wallet, credit line) first in reverse order, bank cards
    /// last: money that stays inside Tally is returned at once and for free, a card refund
    /// costs a channel fee and days.
    CardLast,
}

impl RefundPolicy {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundPolicy::ReverseFunding => "reverse_funding",
            RefundPolicy::ProRata => "pro_rata",
            RefundPolicy::CardLast => "card_last",
        }
    }
}

/// Splits `amount` over sources that can each still take back `refundable[i]`, by `policy`.
/// The parts sum to `amount` and none exceeds its source's refundable amount; a refund above
/// the total refundable is refused.
pub fn split(
    amount: Amount,
    sources: &[Source],
    refundable: &[Amount],
    policy: RefundPolicy,
) -> Result<Vec<Amount>, PaymentError> {
    if sources.len() != refundable.len() {
        return Err(PaymentError::Internal("one refundable amount per source"));
    }
    if !amount.is_positive() {
        return Err(PaymentError::AmountNotPositive(amount.to_string()));
    }
    let total = Amount::checked_sum(amount.currency(), refundable)?;
    if amount.minor() > total.minor() {
        return Err(PaymentError::RefundExceedsPaid {
            requested: amount.to_string(),
            refundable: total.to_string(),
        });
    }
    let zero = Amount::zero(amount.currency());
    match policy {
        RefundPolicy::ProRata => {
            let ratios: Vec<u64> = refundable
                .iter()
                .map(|part| u64::try_from(part.minor()).unwrap_or(0))
                .collect();
            Ok(amount.allocate_by_ratios(&ratios)?)
        }
        RefundPolicy::ReverseFunding | RefundPolicy::CardLast => {
            let mut order: Vec<usize> = (0..sources.len()).rev().collect();
            if policy == RefundPolicy::CardLast {
                // A stable sort keeps the reverse order within each group.
                order.sort_by_key(|index| sources[*index].is_card());
            }
            let mut parts = vec![zero; sources.len()];
            let mut left = amount;
            for index in order {
                let take = left.minor().min(refundable[index].minor()).max(0);
                parts[index] = Amount::new(take, amount.currency());
                left = left.checked_sub(parts[index])?;
            }
            if !left.is_zero() {
                return Err(PaymentError::Internal("a refund left an amount unplaced"));
            }
            Ok(parts)
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

    fn sources() -> Vec<Source> {
        vec![
            Source::Card {
                token: "tok_a".into(),
            },
            Source::Wallet,
            Source::CreditLine {
                account: 1,
                term: 3,
            },
        ]
    }

    #[test]
    fn each_policy_routes_the_refund_as_documented() {
        let refundable = [cny(3_000), cny(2_000), cny(5_000)];
        let reverse = split(
            cny(6_000),
            &sources(),
            &refundable,
            RefundPolicy::ReverseFunding,
        );
        assert_eq!(reverse, Ok(vec![cny(0), cny(1_000), cny(5_000)]));
        let card_last = split(cny(8_000), &sources(), &refundable, RefundPolicy::CardLast);
        assert_eq!(card_last, Ok(vec![cny(1_000), cny(2_000), cny(5_000)]));
        let pro_rata = split(cny(1_001), &sources(), &refundable, RefundPolicy::ProRata);
        assert_eq!(pro_rata, Ok(vec![cny(300), cny(200), cny(501)]));
    }

    #[test]
    fn a_refund_above_what_was_paid_is_refused() {
        let refundable = [cny(3_000), cny(0), cny(5_000)];
        let refused = split(cny(8_001), &sources(), &refundable, RefundPolicy::ProRata);
        assert_eq!(
            refused.map_err(|error| error.code()),
            Err("refund_exceeds_paid")
        );
        let zero = split(cny(0), &sources(), &refundable, RefundPolicy::ProRata);
        assert_eq!(
            zero.map_err(|error| error.code()),
            Err("amount_not_positive")
        );
    }
}
