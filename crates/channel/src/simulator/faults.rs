//! The faults the simulator injects (latency, declines, lost answers, duplicate and late
//! notifications, returned payouts, settlement discrepancies) and the rates they happen at,
//! in parts per million so that no float is needed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tally_core::SplitMix64;

const MILLION: u32 = 1_000_000;

/// A probability in parts per million (0 never, 1,000,000 always). On the command line it
/// is written as a decimal fraction (`0.05`, at most 6 fraction digits); in JSON as the
/// integer (`50000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PartsPerMillion(u32);

impl PartsPerMillion {
    pub const NEVER: PartsPerMillion = PartsPerMillion(0);
    pub const ALWAYS: PartsPerMillion = PartsPerMillion(MILLION);

    pub fn new(parts: u32) -> Result<Self, String> {
        if parts > MILLION {
            return Err(format!("{parts} parts per million is more than 1,000,000"));
        }
        Ok(PartsPerMillion(parts))
    }

    pub fn parts(self) -> u32 {
        self.0
    }

    /// Draws once from `random` (always, so that the sequence of draws does not depend on
    /// the rate) and says whether the event happens.
    pub fn happens(self, random: &mut SplitMix64) -> bool {
        random.below(u64::from(MILLION)) < u64::from(self.0)
    }
}

impl TryFrom<u32> for PartsPerMillion {
    type Error = String;

    fn try_from(parts: u32) -> Result<Self, String> {
        PartsPerMillion::new(parts)
    }
}

impl From<PartsPerMillion> for u32 {
    fn from(rate: PartsPerMillion) -> u32 {
        rate.0
    }
}

impl FromStr for PartsPerMillion {
    type Err = String;

    /// `0`, `1`, `0.05`, `0.000001`: a fraction from 0 to 1 with at most 6 fraction digits.
    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?} is not a fraction from 0 to 1 (at most 6 decimals)");
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 6 {
            return Err(invalid());
        }
        if text.ends_with('.') {
            return Err(invalid());
        }
        let whole: u32 = match whole.trim_start_matches('0') {
            "" => 0,
            "1" => 1,
            _ => return Err(invalid()),
        };
        let mut fraction_parts: u32 = 0;
        for (index, digit) in fraction.bytes().enumerate() {
            // At most 6 digits: the sum stays below 1,000,000.
            fraction_parts += u32::from(digit - b'0') * 10_u32.pow(5 - index as u32);
        }
        PartsPerMillion::new(whole * MILLION + fraction_parts).map_err(|_| invalid())
    }
}

impl fmt::Display for PartsPerMillion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fraction = format!("{:06}", self.0 % MILLION);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            write!(formatter, "{}", self.0 / MILLION)
        } else {
            write!(formatter, "{}.{fraction}", self.0 / MILLION)
        }
    }
}

/// A deliberate difference in a settlement file, against what the bank did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discrepancy {
    /// One row is left out.
    Missing,
    /// One row's amount is one minor unit more than what happened.
    AmountMismatch,
    /// One row appears twice.
    Duplicate,
    /// One extra capture row under a reference Tally never sent.
    UnknownReference,
    /// The day's last row is settled a day late: left out of its date's file and put first
    /// in the next date's (a timing difference, which the next day's reconciliation matches).
    Late,
}

/// The faults in force. Changed at run time by `POST /v1/faults`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added to every answer of the bank's API, in milliseconds.
    pub latency_ms: u64,
    /// Authorisations declined `do_not_honor`.
    pub decline_rate_ppm: PartsPerMillion,
    /// Mutating calls whose answer is lost after the bank acted: the answer is held for
    /// `lost_answer_delay_ms`, past any sensible client timeout.
    pub timeout_rate_ppm: PartsPerMillion,
    /// Notifications delivered twice (same `event_id`).
    pub duplicate_rate_ppm: PartsPerMillion,
    /// Each delivery waits a random 0..=this many milliseconds first: notifications arrive
    /// late and out of order.
    pub notification_delay_max_ms: u64,
    /// Payouts the card's bank sends back (`payout.returned`, `account_closed`).
    pub payout_return_rate_ppm: PartsPerMillion,
    /// Rows of a batch payout file the bank does not send (`FAILED`, `insufficient_funds`);
    /// rows it sends are returned at `payout_return_rate_ppm` (`RETURNED`, `account_closed`).
    #[serde(default)]
    pub payout_failure_rate_ppm: PartsPerMillion,
    /// Differences put into every settlement file served, one row each, in this order.
    pub settlement_discrepancies: Vec<Discrepancy>,
}

/// Longest delay a fault may add, in milliseconds (an hour): a typo must not hang a test
/// for days.
pub const FAULT_DELAY_MS_MAX: u64 = 3_600_000;

/// `POST /v1/faults`: the fields given replace those in force, the others stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_rate_ppm: Option<PartsPerMillion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_rate_ppm: Option<PartsPerMillion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_rate_ppm: Option<PartsPerMillion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_delay_max_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_return_rate_ppm: Option<PartsPerMillion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_failure_rate_ppm: Option<PartsPerMillion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_discrepancies: Option<Vec<Discrepancy>>,
}

impl Faults {
    /// Checks the delays against [`FAULT_DELAY_MS_MAX`].
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("latency_ms", self.latency_ms),
            ("notification_delay_max_ms", self.notification_delay_max_ms),
        ] {
            if value > FAULT_DELAY_MS_MAX {
                return Err(format!("{name} {value} is above {FAULT_DELAY_MS_MAX}"));
            }
        }
        Ok(())
    }

    /// The faults after `update`, checked; `self` is unchanged if it is refused.
    pub fn updated(&self, update: FaultsUpdate) -> Result<Faults, String> {
        let mut faults = self.clone();
        let FaultsUpdate {
            latency_ms,
            decline_rate_ppm,
            timeout_rate_ppm,
            duplicate_rate_ppm,
            notification_delay_max_ms,
            payout_return_rate_ppm,
            payout_failure_rate_ppm,
            settlement_discrepancies,
        } = update;
        faults.latency_ms = latency_ms.unwrap_or(faults.latency_ms);
        faults.decline_rate_ppm = decline_rate_ppm.unwrap_or(faults.decline_rate_ppm);
        faults.timeout_rate_ppm = timeout_rate_ppm.unwrap_or(faults.timeout_rate_ppm);
        faults.duplicate_rate_ppm = duplicate_rate_ppm.unwrap_or(faults.duplicate_rate_ppm);
        faults.notification_delay_max_ms =
            notification_delay_max_ms.unwrap_or(faults.notification_delay_max_ms);
        faults.payout_return_rate_ppm =
            payout_return_rate_ppm.unwrap_or(faults.payout_return_rate_ppm);
        faults.payout_failure_rate_ppm =
            payout_failure_rate_ppm.unwrap_or(faults.payout_failure_rate_ppm);
        if let Some(discrepancies) = settlement_discrepancies {
            faults.settlement_discrepancies = discrepancies;
        }
        faults.check()?;
        Ok(faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_parse_exactly_into_parts_per_million() {
        let parse = |text: &str| text.parse::<PartsPerMillion>().map(PartsPerMillion::parts);
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1"), Ok(1_000_000));
        assert_eq!(parse("1.0"), Ok(1_000_000));
        assert_eq!(parse("0.05"), Ok(50_000));
        assert_eq!(parse("0.000001"), Ok(1));
        assert_eq!(parse("00.5"), Ok(500_000));
        for refused in [
            "",
            ".5",
            "1.",
            "1.000001",
            "2",
            "0.0000001",
            "-0.1",
            "0,5",
            "1e-3",
        ] {
            assert!(parse(refused).is_err(), "{refused:?} should be refused");
        }
        assert_eq!(PartsPerMillion(50_000).to_string(), "0.05");
        assert_eq!(PartsPerMillion::ALWAYS.to_string(), "1");
    }

    #[test]
    fn rates_happen_never_and_always() {
        let mut random = SplitMix64::new(7);
        assert!((0..1000).all(|_| !PartsPerMillion::NEVER.happens(&mut random)));
        assert!((0..1000).all(|_| PartsPerMillion::ALWAYS.happens(&mut random)));
        assert!(serde_json::from_str::<PartsPerMillion>("1000001").is_err());
    }

    #[test]
    fn an_update_changes_only_the_fields_given() {
        let faults = Faults {
            latency_ms: 5,
            ..Faults::default()
        };
        let update: FaultsUpdate =
            serde_json::from_str(r#"{"decline_rate_ppm": 1000000}"#).expect("an update");
        let updated = faults.updated(update).expect("valid");
        assert_eq!(updated.latency_ms, 5);
        assert_eq!(updated.decline_rate_ppm, PartsPerMillion::ALWAYS);
        let too_slow = FaultsUpdate {
            latency_ms: Some(FAULT_DELAY_MS_MAX + 1),
            ..FaultsUpdate::default()
        };
        assert!(faults.updated(too_slow).is_err());
    }
}
