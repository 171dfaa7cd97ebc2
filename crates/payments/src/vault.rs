//! The vault: a stored-value fund that earns a daily yield at a configured annual rate, and
//! the limit on instant redemptions.
//!
//! **Daily yield.** Day count actual/365 fixed: each day earns `balance × annual_rate / 365`
//! minor units, exactly. The whole minor units are credited, rounded down (`Rounding::Down`:
//! the fund never pays what it has not earned), and the fraction left over is carried to the
//! next day in exact integer units of `1 / (365 × 10^10)` of a minor unit. So over any run of
//! days the customer is credited the floor of the exact total, never less: no remainder is
//! lost across days.

use crate::error::PaymentError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Rounding};

/// Days in the yield's year (actual/365 fixed).
pub const DAYS_PER_YEAR: i128 = 365;

/// Decimals an annual rate may have: the carried fraction is exact at this scale.
pub const RATE_SCALE_MAX: u32 = 10;

/// The rounding of the credited yield, named because every rounding is a decision.
pub const YIELD_ROUNDING: Rounding = Rounding::Down;

const RATE_UNITS_PER_ONE: i128 = 10_000_000_000;

/// An annual yield rate between 0 and 1 (`0.0185` is 1.85 % a year), with at most
/// [`RATE_SCALE_MAX`] decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualRate(#[serde(with = "tally_core::rate::exact")] Decimal);

impl AnnualRate {
    /// No yield.
    pub const ZERO: AnnualRate = AnnualRate(Decimal::ZERO);

    pub fn new(rate: Decimal) -> Result<AnnualRate, PaymentError> {
        let refuse = || PaymentError::InvalidYieldRate {
            rate: rate.to_string(),
            max_scale: RATE_SCALE_MAX,
        };
        if rate.is_sign_negative() || rate > Decimal::ONE {
            return Err(refuse());
        }
        if rate.normalize().scale() > RATE_SCALE_MAX {
            return Err(refuse());
        }
        Ok(AnnualRate(rate))
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    /// The rate in units of 10^-10, exact by construction.
    fn units(&self) -> i128 {
        let mut scaled = self.0;
        scaled.rescale(RATE_SCALE_MAX);
        scaled.mantissa()
    }
}

/// One day's yield: what is credited, and the fraction carried to the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyYield {
    pub credited: Amount,
    /// In units of `1 / (365 × 10^10)` of a minor unit; always below one minor unit.
    pub carried: i64,
}

/// The units one minor unit is divided into for the carried fraction.
pub const CARRY_UNITS_PER_MINOR: i64 = 3_650_000_000_000;

/// The yield `balance` earns in one day at `rate`, with `carried` from the day before.
/// A negative balance (which the ledger does not allow for a vault) earns nothing.
pub fn daily_yield(
    balance: Amount,
    rate: AnnualRate,
    carried: i64,
) -> Result<DailyYield, PaymentError> {
    if !(0..CARRY_UNITS_PER_MINOR).contains(&carried) {
        return Err(PaymentError::Internal(
            "the carried yield is a fraction of one minor unit",
        ));
    }
    let earning = i128::from(balance.minor().max(0));
    // balance < 2^63 and rate units ≤ 10^10, so the product fits in i128 with room.
    let total = earning * rate.units() + i128::from(carried);
    let per_minor = DAYS_PER_YEAR * RATE_UNITS_PER_ONE;
    let credited =
        i64::try_from(total / per_minor).map_err(|_| tally_core::MoneyError::Overflow)?;
    let carried = i64::try_from(total % per_minor)
        .map_err(|_| PaymentError::Internal("the carried yield fits in i64"))?;
    Ok(DailyYield {
        credited: Amount::new(credited, balance.currency()),
        carried,
    })
}

/// Checks an instant redemption against what is left of today's limit.
pub fn check_instant_redemption(
    amount: Amount,
    redeemed_today: Amount,
    daily_limit: Amount,
) -> Result<(), PaymentError> {
    let left = daily_limit.checked_sub(redeemed_today)?;
    if amount.minor() > left.minor() {
        return Err(PaymentError::InstantRedemptionLimit {
            requested: amount.to_string(),
            left: left.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tally_core::Currency;

    fn rate(text: &str) -> AnnualRate {
        AnnualRate::new(Decimal::from_str(text).expect("decimal")).expect("rate")
    }

    #[test]
    fn ten_thousand_yuan_at_1_825_percent_earns_50_fen_a_day() {
        let day =
            daily_yield(Amount::new(1_000_000, Currency::CNY), rate("0.01825"), 0).expect("yield");
        assert_eq!(day.credited, Amount::new(50, Currency::CNY));
        assert_eq!(day.carried, 0);
    }

    #[test]
    fn the_remainder_is_carried_not_lost() {
        // 100 fen at 1.85 %: 0.00507 fen a day; the first whole fen arrives on day 198.
        let balance = Amount::new(100, Currency::CNY);
        let mut carried = 0;
        let mut credited = 0;
        let mut first_fen_day = None;
        for day in 1..=365 {
            let result = daily_yield(balance, rate("0.0185"), carried).expect("yield");
            carried = result.carried;
            credited += result.credited.minor();
            if credited > 0 && first_fen_day.is_none() {
                first_fen_day = Some(day);
            }
        }
        // A year earns 1.85 fen exactly: 1 credited, 0.85 carried.
        assert_eq!(credited, 1);
        assert_eq!(carried, CARRY_UNITS_PER_MINOR * 85 / 100);
        assert_eq!(first_fen_day, Some(198));
    }

    #[test]
    fn rates_out_of_range_or_too_fine_are_refused() {
        for text in ["-0.01", "1.5", "0.00000000001"] {
            let refused = AnnualRate::new(Decimal::from_str(text).expect("decimal"));
            assert_eq!(
                refused.map_err(|error| error.code()),
                Err("invalid_yield_rate"),
                "{text}"
            );
        }
        assert!(AnnualRate::new(Decimal::from_str("0.0000000001").expect("decimal")).is_ok());
    }

    #[test]
    fn instant_redemption_stops_at_the_daily_limit() {
        let cny = |minor| Amount::new(minor, Currency::CNY);
        assert!(check_instant_redemption(cny(400_000), cny(600_000), cny(1_000_000)).is_ok());
        let refused = check_instant_redemption(cny(400_001), cny(600_000), cny(1_000_000));
        assert_eq!(
            refused.map_err(|error| error.code()),
            Err("instant_redemption_limit")
        );
    }
}
