//! Exact time-value-of-money functions on `Decimal` (payment, interest and principal parts,
//! internal rate of return) and the true APR disclosed for every plan. No floating point.

use crate::error::CreditError;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Bisection steps of the internal rate of return: a bracket of width 1 shrinks to below
/// 10^-20 after 67 halvings.
const IRR_STEPS_MAX: u32 = 100;
/// Decimal places kept in reported rates.
pub const RATE_DECIMAL_PLACES: u32 = 10;

fn overflow() -> CreditError {
    CreditError::RateNotFound("decimal overflow")
}

/// `base` to the power `exponent` by repeated squaring, in checked decimal arithmetic.
pub fn power(base: Decimal, exponent: u32) -> Result<Decimal, CreditError> {
    let mut result = Decimal::ONE;
    let mut square = base;
    let mut remaining = exponent;
    while remaining > 0 {
        if remaining & 1 == 1 {
            result = result.checked_mul(square).ok_or_else(overflow)?;
        }
        remaining >>= 1;
        if remaining > 0 {
            square = square.checked_mul(square).ok_or_else(overflow)?;
        }
    }
    Ok(result)
}

/// The equal payment that repays `principal` over `periods` at `rate` a period, paid at the
/// end of each period: numpy-financial's `-pmt(rate, periods, principal)`.
pub fn payment(rate: Decimal, periods: u32, principal: Decimal) -> Result<Decimal, CreditError> {
    if periods == 0 {
        return Err(CreditError::InvalidProduct("zero periods".into()));
    }
    if rate.is_zero() {
        return principal
            .checked_div(Decimal::from(periods))
            .ok_or_else(overflow);
    }
    let growth = power(Decimal::ONE + rate, periods)?;
    let numerator = principal
        .checked_mul(rate)
        .and_then(|value| value.checked_mul(growth))
        .ok_or_else(overflow)?;
    numerator
        .checked_div(growth - Decimal::ONE)
        .ok_or_else(overflow)
}

/// The principal part of payment `period` (1-based) of the exact annuity: numpy-financial's
/// `-ppmt(rate, period, periods, principal)`.
pub fn principal_part(
    rate: Decimal,
    period: u32,
    periods: u32,
    principal: Decimal,
) -> Result<Decimal, CreditError> {
    let installment = payment(rate, periods, principal)?;
    // The principal parts grow by (1 + rate) each period, from installment / (1+rate)^periods.
    let growth = power(Decimal::ONE + rate, periods - period + 1)?;
    installment.checked_div(growth).ok_or_else(overflow)
}

/// The interest part of payment `period` (1-based) of the exact annuity: numpy-financial's
/// `-ipmt(rate, period, periods, principal)`.
pub fn interest_part(
    rate: Decimal,
    period: u32,
    periods: u32,
    principal: Decimal,
) -> Result<Decimal, CreditError> {
    Ok(payment(rate, periods, principal)? - principal_part(rate, period, periods, principal)?)
}

/// Net present value of `flows` (index = period) at `rate` a period.
pub fn net_present_value(rate: Decimal, flows: &[Decimal]) -> Result<Decimal, CreditError> {
    let discount = Decimal::ONE
        .checked_div(Decimal::ONE + rate)
        .ok_or_else(overflow)?;
    let mut factor = Decimal::ONE;
    let mut total = Decimal::ZERO;
    for flow in flows {
        total = total
            .checked_add(flow.checked_mul(factor).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        factor = factor.checked_mul(discount).ok_or_else(overflow)?;
    }
    Ok(total)
}

/// The internal rate of return per period of `flows` (index = period; a loan's flows are
/// negative at 0 and positive after), found by bisection on [-0.99, 1] in decimal arithmetic
/// and rounded half-even to [`RATE_DECIMAL_PLACES`]. Refused if the flows do not change sign
/// across the bracket (no rate, or more than one plausible).
pub fn internal_rate_of_return(flows: &[Decimal]) -> Result<Decimal, CreditError> {
    let total: Decimal = flows.iter().sum();
    let (mut low, mut high) = if total.is_sign_negative() && !total.is_zero() {
        (Decimal::new(-5, 1), Decimal::ZERO)
    } else {
        (Decimal::ZERO, Decimal::ONE)
    };
    let mut value_low = net_present_value(low, flows)?;
    let value_high = net_present_value(high, flows)?;
    if value_low.is_zero() {
        return Ok(low);
    }
    if value_low.is_sign_negative() == value_high.is_sign_negative() && !value_high.is_zero() {
        return Err(CreditError::RateNotFound(
            "no rate between -50% and 100% a period gives the cash flows a zero value",
        ));
    }
    let two = Decimal::TWO;
    let tolerance = Decimal::new(1, 20);
    for _ in 0..IRR_STEPS_MAX {
        let middle = (low + high) / two;
        let value_middle = net_present_value(middle, flows)?;
        if value_middle.is_zero() {
            return Ok(round_rate(middle));
        }
        if value_middle.is_sign_negative() == value_low.is_sign_negative() {
            low = middle;
            value_low = value_middle;
        } else {
            high = middle;
        }
        if high - low < tolerance {
            break;
        }
    }
    Ok(round_rate((low + high) / two))
}

fn round_rate(rate: Decimal) -> Decimal {
    rate.round_dp_with_strategy(RATE_DECIMAL_PLACES, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

/// The true APR of a plan, as disclosed.
///
/// Convention: the nominal APR is the periodic internal rate of return times the periods in
/// a year (12 for monthly plans, 26 for pay-in-N every two weeks), as consumer-credit
/// disclosures and numpy-financial users state it; the effective annual rate
/// (1 + periodic)^periods_per_year − 1 is reported beside it. Periods are equal (months
/// are not counted in days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrueApr {
    pub periodic: Decimal,
    pub periods_per_year: u32,
    pub nominal_annual: Decimal,
    pub effective_annual: Decimal,
}

impl TrueApr {
    pub fn of_cash_flows(flows: &[Decimal], periods_per_year: u32) -> Result<TrueApr, CreditError> {
        let periodic = if flows.iter().skip(1).all(Decimal::is_zero) || flows.len() < 2 {
            Decimal::ZERO
        } else {
            internal_rate_of_return(flows)?
        };
        let nominal_annual = round_rate(periodic * Decimal::from(periods_per_year));
        let effective_annual =
            round_rate(power(Decimal::ONE + periodic, periods_per_year)? - Decimal::ONE);
        Ok(TrueApr {
            periodic,
            periods_per_year,
            nominal_annual,
            effective_annual,
        })
    }

    /// The nominal APR in percent with two decimals, half-even: "12.56".
    pub fn nominal_percent(&self) -> Decimal {
        (self.nominal_annual * Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn power_by_squaring() {
        assert_eq!(power(decimal("1.1"), 0).unwrap(), Decimal::ONE);
        assert_eq!(power(decimal("1.1"), 3).unwrap(), decimal("1.331"));
        assert_eq!(power(Decimal::TWO, 10).unwrap(), Decimal::from(1024));
    }

    #[test]
    fn irr_of_a_simple_loan() {
        // 100 now, 110 in a year: 10%.
        let rate = internal_rate_of_return(&[decimal("-100"), decimal("110")]).unwrap();
        assert_eq!(rate, decimal("0.1"));
        assert!(internal_rate_of_return(&[decimal("100"), decimal("110")]).is_err());
    }
}
