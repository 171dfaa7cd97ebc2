//! Exact helpers on `Amount` the credit rules share: the smaller of two amounts and a share
//! in proportion. Nothing here clamps or wraps a sum: a result that does not fit is an error.

use crate::error::CreditError;
use tally_core::Amount;

/// The smaller of two amounts (the first on a tie).
pub(crate) fn smaller(left: Amount, right: Amount) -> Amount {
    if right.minor() < left.minor() {
        right
    } else {
        left
    }
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
    use tally_core::Currency;

    fn cny(minor: i64) -> Amount {
        Amount::new(minor, Currency::CNY)
    }

    #[test]
    fn shares_are_exact() {
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
        assert_eq!(smaller(cny(2), cny(1)), cny(1));
    }
}
