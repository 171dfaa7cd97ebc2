//! A merchant's settlement terms: when captured money becomes the merchant's to be paid
//! (T+N business days in the merchant's time zone, weekends and a holiday calendar
//! skipped), and the rolling reserve held back from each day's settlement.
//!
//! # The calendar
//!
//! A capture belongs to the business date of its moment in the merchant's zone (a capture
//! at 23:59:59 and one at 00:00:00 the next day are on different dates, whatever UTC says).
//! A capture on a weekend or holiday counts from the next business day, as card schemes'
//! processing days do; it settles `N` business days after that day (`N = 0`: that day).
//! Settlement dates never decrease as capture dates increase, which is what lets a run for
//! date `D` settle every capture date up to [`SettlementTerms::last_capture_date_due`] and
//! a later run carry on from there.
//!
//! # The rolling reserve
//!
//! Of each day's positive net moved to the merchant's available balance, a share (basis
//! points, rounded down to the minor unit, so the reserve never takes more than its share)
//! is held in the merchant's reserve account and released `hold_days` calendar days later.
//! A day whose net is zero or negative holds nothing.

use crate::merchant::MerchantError;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tally_core::Amount;

/// Longest settlement delay, in business days.
pub const DELAY_DAYS_MAX: u32 = 30;
/// Longest a reserve may be held, in calendar days.
pub const RESERVE_HOLD_DAYS_MAX: u32 = 365;
/// Basis points in the whole.
pub const BASIS_POINTS_WHOLE: u32 = 10_000;
/// Most holidays a calendar may list.
pub const HOLIDAYS_MAX: usize = 1_000;
/// How far back a run looks for a capture date it settles: far more than the longest delay
/// plus any plausible run of holidays.
const LOOKBACK_DAYS_MAX: i32 = 400;

/// When a merchant is paid and what is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementTerms {
    /// N of T+N, in business days.
    pub delay_days: u32,
    /// Dates that are not business days besides Saturdays and Sundays.
    pub holidays: BTreeSet<Date>,
    /// Share of each day's positive net held as reserve, in basis points.
    pub reserve_basis_points: u32,
    /// Calendar days a day's reserve is held before it is released.
    pub reserve_hold_days: u32,
}

impl Default for SettlementTerms {
    /// T+1, no holidays, no reserve.
    fn default() -> Self {
        SettlementTerms {
            delay_days: 1,
            holidays: BTreeSet::new(),
            reserve_basis_points: 0,
            reserve_hold_days: 0,
        }
    }
}

impl SettlementTerms {
    /// Checks terms written by a client; holidays are ISO dates (`2026-10-01`). Refusals
    /// name their field (`settlement.holidays[2]`).
    pub fn parse(
        delay_days: u32,
        holidays: &[String],
        reserve_basis_points: u32,
        reserve_hold_days: u32,
    ) -> Result<SettlementTerms, MerchantError> {
        if delay_days > DELAY_DAYS_MAX {
            return Err(MerchantError::field_error(
                "settlement.delay_days",
                format!("must be 0 to {DELAY_DAYS_MAX}"),
            ));
        }
        if holidays.len() > HOLIDAYS_MAX {
            return Err(MerchantError::field_error(
                "settlement.holidays",
                format!("may list at most {HOLIDAYS_MAX} dates"),
            ));
        }
        let mut dates = BTreeSet::new();
        for (index, text) in holidays.iter().enumerate() {
            let date: Date = text.parse().map_err(|_| {
                MerchantError::field_error(
                    format!("settlement.holidays[{index}]"),
                    format!("{text:?} is not a date (YYYY-MM-DD)"),
                )
            })?;
            dates.insert(date);
        }
        if reserve_basis_points > BASIS_POINTS_WHOLE {
            return Err(MerchantError::field_error(
                "settlement.reserve_basis_points",
                format!("must be 0 to {BASIS_POINTS_WHOLE}"),
            ));
        }
        if reserve_hold_days > RESERVE_HOLD_DAYS_MAX {
            return Err(MerchantError::field_error(
                "settlement.reserve_hold_days",
                format!("must be 0 to {RESERVE_HOLD_DAYS_MAX}"),
            ));
        }
        if reserve_basis_points > 0 && reserve_hold_days == 0 {
            return Err(MerchantError::field_error(
                "settlement.reserve_hold_days",
                "a reserve must be held at least one day",
            ));
        }
        Ok(SettlementTerms {
            delay_days,
            holidays: dates,
            reserve_basis_points,
            reserve_hold_days,
        })
    }

    pub fn is_business_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.holidays.contains(&date)
    }

    /// The first business day on or after `date`.
    pub fn roll_forward(&self, date: Date) -> Result<Date, MerchantError> {
        let mut day = date;
        for _ in 0..LOOKBACK_DAYS_MAX {
            if self.is_business_day(day) {
                return Ok(day);
            }
            day = next_day(day)?;
        }
        Err(MerchantError::field_error(
            "settlement.holidays",
            format!("leave no business day within {LOOKBACK_DAYS_MAX} days of {date}"),
        ))
    }

    /// The date a capture made on `capture_date` is settled (T+N business days).
    pub fn settlement_date(&self, capture_date: Date) -> Result<Date, MerchantError> {
        let mut day = self.roll_forward(capture_date)?;
        for _ in 0..self.delay_days {
            day = self.roll_forward(next_day(day)?)?;
        }
        Ok(day)
    }

    /// The latest capture date whose settlement date is on or before `run_date`; `None`
    /// when no date within the look-back is due yet.
    pub fn last_capture_date_due(&self, run_date: Date) -> Result<Option<Date>, MerchantError> {
        let mut day = run_date;
        for _ in 0..LOOKBACK_DAYS_MAX {
            if self.settlement_date(day)? <= run_date {
                return Ok(Some(day));
            }
            day = day
                .checked_sub(1.day())
                .map_err(|error| MerchantError::field_error("business_date", error.to_string()))?;
        }
        Ok(None)
    }

    /// What a day's net holds in reserve: its share, rounded down; nothing when the net is
    /// not positive.
    pub fn reserve_share(&self, net: Amount) -> Result<Amount, MerchantError> {
        if !net.is_positive() || self.reserve_basis_points == 0 {
            return Ok(Amount::zero(net.currency()));
        }
        let share = i128::from(net.minor()) * i128::from(self.reserve_basis_points)
            / i128::from(BASIS_POINTS_WHOLE);
        // At most the net itself, which fits.
        let minor = i64::try_from(share)
            .map_err(|_| MerchantError::field_error("amount", "reserve share overflows"))?;
        Ok(Amount::new(minor, net.currency()))
    }

    /// When a reserve held on `held_on` is released.
    pub fn reserve_release_date(&self, held_on: Date) -> Result<Date, MerchantError> {
        held_on
            .checked_add(i64::from(self.reserve_hold_days).days())
            .map_err(|error| MerchantError::field_error("business_date", error.to_string()))
    }
}

fn next_day(date: Date) -> Result<Date, MerchantError> {
    date.tomorrow()
        .map_err(|error| MerchantError::field_error("business_date", error.to_string()))
}

/// The business date of `at` in `zone`: the calendar date a clock on the merchant's wall
/// shows.
pub fn business_date(at: Timestamp, zone: &TimeZone) -> Date {
    at.to_zoned(zone.clone()).date()
}

/// The first moment of `date` in `zone` (the start of the business day).
pub fn start_of(date: Date, zone: &TimeZone) -> Result<Timestamp, MerchantError> {
    date.to_zoned(zone.clone())
        .map(|zoned| zoned.timestamp())
        .map_err(|error| MerchantError::field_error("business_date", error.to_string()))
}

/// One merchant's settlement of one run, in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementDay {
    /// Net of captures (after fees) less refunds, of the capture dates this run settles.
    pub due: Amount,
    /// Held in reserve out of `due`.
    pub reserve_held: Amount,
    /// Earlier reserves released today.
    pub reserve_released: Amount,
}

/// How a settlement moves the merchant's three balances (each a liability, so a positive
/// change is a credit): pending gives up `due`, the reserve takes what is held and gives
/// back what is released, available takes the rest. They sum to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementMovements {
    pub pending: i64,
    pub available: i64,
    pub reserve: i64,
}

impl SettlementDay {
    /// What the day adds to the available balance: `due − held + released`.
    pub fn net_to_available(&self) -> Result<Amount, MerchantError> {
        self.due
            .checked_sub(self.reserve_held)
            .and_then(|net| net.checked_add(self.reserve_released))
            .map_err(|error| MerchantError::field_error("amount", error.to_string()))
    }

    pub fn movements(&self) -> Result<SettlementMovements, MerchantError> {
        let overflow = || MerchantError::field_error("amount", "settlement overflows");
        let pending = self.due.minor().checked_neg().ok_or_else(overflow)?;
        let reserve = self
            .reserve_held
            .minor()
            .checked_sub(self.reserve_released.minor())
            .ok_or_else(overflow)?;
        let available = self.net_to_available()?.minor();
        Ok(SettlementMovements {
            pending,
            available,
            reserve,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use tally_core::Currency;

    fn terms(delay_days: u32, holidays: &[&str]) -> SettlementTerms {
        let holidays: Vec<String> = holidays.iter().map(|day| day.to_string()).collect();
        SettlementTerms::parse(delay_days, &holidays, 0, 0).unwrap()
    }

    #[test]
    fn t_plus_n_skips_weekends() {
        let t1 = terms(1, &[]);
        // 2026-12-04 is a Friday.
        assert_eq!(date(2026, 12, 4).weekday(), Weekday::Friday);
        assert_eq!(
            t1.settlement_date(date(2026, 12, 3)).unwrap(),
            date(2026, 12, 4)
        );
        assert_eq!(
            t1.settlement_date(date(2026, 12, 4)).unwrap(),
            date(2026, 12, 7)
        );
        // A Saturday or Sunday capture counts from Monday: T+1 is Tuesday.
        assert_eq!(
            t1.settlement_date(date(2026, 12, 5)).unwrap(),
            date(2026, 12, 8)
        );
        assert_eq!(
            t1.settlement_date(date(2026, 12, 6)).unwrap(),
            date(2026, 12, 8)
        );
        let t0 = terms(0, &[]);
        assert_eq!(
            t0.settlement_date(date(2026, 12, 4)).unwrap(),
            date(2026, 12, 4)
        );
        assert_eq!(
            t0.settlement_date(date(2026, 12, 5)).unwrap(),
            date(2026, 12, 7)
        );
        let t3 = terms(3, &[]);
        assert_eq!(
            t3.settlement_date(date(2026, 12, 3)).unwrap(),
            date(2026, 12, 8)
        );
    }

    #[test]
    fn holidays_are_skipped_like_weekends() {
        // 2026-10-01 (Thursday) to 2026-10-07: a week of holidays.
        let golden_week = [
            "2026-10-01",
            "2026-10-02",
            "2026-10-05",
            "2026-10-06",
            "2026-10-07",
        ];
        let t1 = terms(1, &golden_week);
        assert_eq!(
            t1.settlement_date(date(2026, 9, 30)).unwrap(),
            date(2026, 10, 8)
        );
        assert_eq!(
            t1.settlement_date(date(2026, 10, 3)).unwrap(),
            date(2026, 10, 9)
        );
        assert!(!t1.is_business_day(date(2026, 10, 1)));
        assert!(t1.is_business_day(date(2026, 10, 8)));
    }

    #[test]
    fn a_run_settles_every_capture_date_up_to_the_last_due() {
        let t1 = terms(1, &[]);
        // Monday 2026-12-07 settles Friday, Saturday and Sunday's captures? No: the weekend's
        // count from Monday and settle on Tuesday. Monday's run settles up to Friday.
        assert_eq!(
            t1.last_capture_date_due(date(2026, 12, 7)).unwrap(),
            Some(date(2026, 12, 4))
        );
        // Tuesday's run settles the weekend's and Monday's.
        assert_eq!(
            t1.last_capture_date_due(date(2026, 12, 8)).unwrap(),
            Some(date(2026, 12, 7))
        );
        // A run on a Saturday settles nothing more than Friday's run did.
        assert_eq!(
            t1.last_capture_date_due(date(2026, 12, 5)).unwrap(),
            Some(date(2026, 12, 3))
        );
        for offset in 0..60_i64 {
            let run = date(2026, 11, 1).checked_add(offset.days()).unwrap();
            if let Some(last) = t1.last_capture_date_due(run).unwrap() {
                assert!(t1.settlement_date(last).unwrap() <= run);
                assert!(t1.settlement_date(last.tomorrow().unwrap()).unwrap() > run);
            }
        }
    }

    #[test]
    fn the_business_date_turns_at_midnight_in_the_merchant_zone() {
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        // 15:59:59 UTC is 23:59:59 in Shanghai; one second later is the next day there.
        let before: Timestamp = "2026-12-04T15:59:59Z".parse().unwrap();
        let after: Timestamp = "2026-12-04T16:00:00Z".parse().unwrap();
        assert_eq!(business_date(before, &shanghai), date(2026, 12, 4));
        assert_eq!(business_date(after, &shanghai), date(2026, 12, 5));
        assert_eq!(business_date(after, &TimeZone::UTC), date(2026, 12, 4));
        assert_eq!(start_of(date(2026, 12, 5), &shanghai).unwrap(), after);
        // Friday 23:59:59 in Shanghai settles T+1 on Monday; a second later (Saturday) on Tuesday.
        let t1 = terms(1, &[]);
        assert_eq!(
            t1.settlement_date(business_date(before, &shanghai))
                .unwrap(),
            date(2026, 12, 7)
        );
        assert_eq!(
            t1.settlement_date(business_date(after, &shanghai)).unwrap(),
            date(2026, 12, 8)
        );
    }

    #[test]
    fn terms_refusals_name_their_field() {
        let field = |result: Result<SettlementTerms, MerchantError>| {
            result.unwrap_err().field().map(str::to_string)
        };
        assert_eq!(
            field(SettlementTerms::parse(31, &[], 0, 0)).as_deref(),
            Some("settlement.delay_days")
        );
        assert_eq!(
            field(SettlementTerms::parse(
                1,
                &["2026-01-01".into(), "2026-02-30".into()],
                0,
                0
            ))
            .as_deref(),
            Some("settlement.holidays[1]")
        );
        assert_eq!(
            field(SettlementTerms::parse(1, &[], 10_001, 5)).as_deref(),
            Some("settlement.reserve_basis_points")
        );
        assert_eq!(
            field(SettlementTerms::parse(1, &[], 500, 0)).as_deref(),
            Some("settlement.reserve_hold_days")
        );
        assert_eq!(
            field(SettlementTerms::parse(1, &[], 500, 366)).as_deref(),
            Some("settlement.reserve_hold_days")
        );
    }

    #[test]
    fn the_reserve_takes_its_share_rounded_down_and_nothing_of_a_loss() {
        let terms = SettlementTerms::parse(1, &[], 1_000, 7).unwrap();
        let cny = |minor| Amount::new(minor, Currency::CNY);
        assert_eq!(terms.reserve_share(cny(10_009)).unwrap(), cny(1_000));
        assert_eq!(terms.reserve_share(cny(-5_000)).unwrap(), cny(0));
        assert_eq!(
            terms.reserve_release_date(date(2026, 12, 7)).unwrap(),
            date(2026, 12, 14)
        );
        let day = SettlementDay {
            due: cny(10_000),
            reserve_held: cny(1_000),
            reserve_released: cny(300),
        };
        let movements = day.movements().unwrap();
        assert_eq!(
            movements.pending + movements.available + movements.reserve,
            0
        );
        assert_eq!(movements.available, 9_300);
        assert_eq!(movements.reserve, 700);
    }
}
