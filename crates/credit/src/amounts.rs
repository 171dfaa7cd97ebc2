//! Exact helpers on `Amount` the credit rules share: the smaller of two amounts, zero as a
//! floor, a checked sum and a share in proportion. Nothing here clamps or wraps a sum: a
//! result that does not fit is an error.

use crate::error::CreditError;
use tally_core::{Amount, Currency};

/// The smaller of two amounts (the first on a tie).
pub(crate) fn smaller(left: Amount, right: Amount) -> Amount {
    if right.minor() < left.minor() {
        right
    } else {
        left
    }
}

/// `value`, or zero when it is negative. Only for the business rules that say "never below
/// zero" (available credit, what is still due), each named where it is used.
pub(crate) fn zero_if_negative(value: Amount) -> Amount {
    if value.is_negative() {
        Amount::zero(value.currency())
    } else {
        value
    }
}

/// The sum of `values` in `currency` (zero when there are none), or `amount_overflow`.
pub(crate) fn total(
    currency: Currency,
    values: impl IntoIterator<Item = Amount>,
) -> Result<Amount, CreditError> {
    values
        .into_iter()
        .try_fold(Amount::zero(currency), |sum, value| {
            Ok(sum.checked_add(value)?)
        })
}

/// `start + Σ added − Σ taken`, exact whenever the result fits in an amount, even when adding
/// everything first would not (a statement's previous balance near the top plus its charges,
/// less its payments). With every part not negative, it subtracts while the running total is
/// not negative and adds while it is, so each step stays within an amount; once one side is
/// used up, the rest moves the total steadily towards the result. A result that does not
/// fit is `amount_overflow`.
pub(crate) fn net(
    start: Amount,
    added: &[Amount],
    taken: &[Amount],
) -> Result<Amount, CreditError> {
    let mut result = start;
    let (mut added, mut taken) = (added.iter(), taken.iter());
    loop {
        let next = if result.is_negative() {
            added.next().map(|part| result.checked_add(*part))
        } else {
            taken.next().map(|part| result.checked_sub(*part))
        };
        match next {
            Some(step) => result = step?,
            None => break,
        }
    }
    for part in added {
        result = result.checked_add(*part)?;
    }
    for part in taken {
        result = result.checked_sub(*part)?;
    }
    Ok(result)
}

/// `value × numerator / denominator`, rounded toward zero, for a part that follows a base
/// going from `denominator` down to `numerator` (0 ≤ numerator ≤ denominator, so the result
/// is at most `value` and fits). The product is taken in 128 bits, where it cannot
/// overflow; any other ratio is a bug, reported as `credit_internal`.
pub(crate) fn scale_down(
    value: Amount,
    numerator: Amount,
    denominator: Amount,
) -> Result<Amount, CreditError> {
    if !denominator.is_positive()
        || numerator.is_negative()
        || numerator.minor() > denominator.minor()
    {
        return Err(CreditError::Internal(format!(
            "cannot scale {value} by {numerator} / {denominator}"
        )));
    }
    let scaled =
        i128::from(value.minor()) * i128::from(numerator.minor()) / i128::from(denominator.minor());
    let minor = i64::try_from(scaled)
        .map_err(|_| CreditError::Internal(format!("{value} scaled does not fit")))?;
    Ok(Amount::new(minor, value.currency()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    #[test]
    fn sums_are_checked_and_shares_exact() {
        assert_eq!(total(Currency::CNY, [cny(1), cny(2)]), Ok(cny(3)));
        assert_eq!(total(Currency::CNY, []), Ok(cny(0)));
        assert_eq!(
            total(Currency::CNY, [cny(i64::MAX), cny(1)]).map_err(|error| error.code()),
            Err("amount_overflow")
        );
        // Near the top the product needs more than 64 bits; the share is still exact.
        assert_eq!(
            scale_down(cny(i64::MAX), cny(i64::MAX - 1), cny(i64::MAX)),
            Ok(cny(i64::MAX - 1))
        );
        assert_eq!(scale_down(cny(10), cny(1), cny(3)), Ok(cny(3)));
        assert_eq!(
            scale_down(cny(10), cny(4), cny(3)).map_err(|error| error.code()),
            Err("credit_internal")
        );
        // Added first, the previous balance and charges would pass the top.
        let near_top = cny(i64::MAX - 10);
        assert_eq!(
            net(near_top, &[cny(20), cny(5)], &[cny(30), cny(1)]),
            Ok(cny(i64::MAX - 16))
        );
        assert_eq!(
            net(cny(-5), &[], &[cny(i64::MAX)]).map_err(|error| error.code()),
            Err("amount_overflow")
        );
        assert_eq!(
            net(cny(0), &[cny(i64::MAX), cny(1)], &[cny(2)]),
            Ok(cny(i64::MAX - 1))
        );
        assert_eq!(smaller(cny(2), cny(1)), cny(1));
        assert_eq!(zero_if_negative(cny(-1)), cny(0));
        assert_eq!(zero_if_negative(cny(i64::MAX)), cny(i64::MAX));
    }
}
