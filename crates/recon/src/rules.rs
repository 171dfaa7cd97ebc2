//! Matching rules (amount tolerance, timing window, status equivalence, fee check, batch matching), read from TOML.

use crate::error::ReconError;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesToml {
    #[serde(default)]
    amount: AmountToml,
    #[serde(default)]
    timing: TimingToml,
    #[serde(default)]
    status: StatusToml,
    #[serde(default)]
    fee: FeeToml,
    #[serde(default)]
    batch: BatchToml,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountToml {
    tolerance_minor: Option<i64>,
    /// A decimal string such as "0.5" (per mille of the ledger amount).
    tolerance_per_mille: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingToml {
    window_seconds: Option<i64>,
    cutoff: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusToml {
    check: Option<bool>,
    equivalent: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeToml {
    check: Option<bool>,
    tolerance_minor: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchToml {
    enabled: Option<bool>,
}

/// Validated matching rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Amounts match when they differ by at most this many minor units...
    pub amount_tolerance_minor: i64,
    /// ...or by at most this many millionths of a per mille of the ledger amount.
    pub amount_tolerance_per_mille_millionths: i64,
    /// A ledger row missing in the channel file is a timing difference (it settles later)
    /// when its timestamp is at or after `cutoff - window`. Without a window there is no
    /// timing class.
    pub timing_window_seconds: Option<i64>,
    /// Unix seconds; when absent, the latest timestamp of the channel file.
    pub timing_cutoff: Option<i64>,
    pub status_check: bool,
    /// Groups of canonical statuses that count as equal.
    pub status_equivalent: Vec<Vec<String>>,
    pub fee_check: bool,
    pub fee_tolerance_minor: i64,
    /// Many-to-one: ledger rows are grouped by their batch reference and each group is
    /// matched, by sum, against the channel row whose key is that batch reference.
    pub batch_enabled: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            amount_tolerance_minor: 0,
            amount_tolerance_per_mille_millionths: 0,
            timing_window_seconds: None,
            timing_cutoff: None,
            status_check: true,
            status_equivalent: Vec::new(),
            fee_check: true,
            fee_tolerance_minor: 0,
            batch_enabled: false,
        }
    }
}

impl Rules {
    /// Reads and validates a rules file.
    pub fn from_file(path: &Path) -> Result<Rules, ReconError> {
        let text = std::fs::read_to_string(path).map_err(|error| ReconError::io(path, error))?;
        Rules::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates rules TOML; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Rules, ReconError> {
        let invalid = |reason: String| ReconError::Rules {
            origin: origin.to_owned(),
            reason,
        };
        let raw: RulesToml = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let defaults = Rules::default();
        let amount_tolerance_minor = raw.amount.tolerance_minor.unwrap_or(0);
        if amount_tolerance_minor < 0 {
            return Err(invalid(
                "amount.tolerance_minor must not be negative".to_owned(),
            ));
        }
        let amount_tolerance_per_mille_millionths = match &raw.amount.tolerance_per_mille {
            Some(text) => crate::amount::parse_amount(
                text.trim().as_bytes(),
                &crate::amount::AmountFormat::major(6),
            )
            .ok()
            .filter(|value| (0..=1_000_000_000).contains(value))
            .ok_or_else(|| {
                invalid(format!(
                    "amount.tolerance_per_mille must be a decimal from 0 to 1000 with at most 6 places, got {text:?}"
                ))
            })?,
            None => 0,
        };
        if let Some(window) = raw.timing.window_seconds {
            if window < 0 {
                return Err(invalid(
                    "timing.window_seconds must not be negative".to_owned(),
                ));
            }
        }
        let timing_cutoff = match &raw.timing.cutoff {
            Some(text) => Some(
                text.parse::<jiff::Timestamp>()
                    .map_err(|error| {
                        invalid(format!("timing.cutoff {text:?} is not RFC 3339: {error}"))
                    })?
                    .as_second(),
            ),
            None => None,
        };
        let fee_tolerance_minor = raw.fee.tolerance_minor.unwrap_or(0);
        if fee_tolerance_minor < 0 {
            return Err(invalid(
                "fee.tolerance_minor must not be negative".to_owned(),
            ));
        }
        Ok(Rules {
            amount_tolerance_minor,
            amount_tolerance_per_mille_millionths,
            timing_window_seconds: raw.timing.window_seconds,
            timing_cutoff,
            status_check: raw.status.check.unwrap_or(defaults.status_check),
            status_equivalent: raw.status.equivalent.unwrap_or_default(),
            fee_check: raw.fee.check.unwrap_or(defaults.fee_check),
            fee_tolerance_minor,
            batch_enabled: raw.batch.enabled.unwrap_or(false),
        })
    }

    /// Whether a ledger and a channel amount agree under the tolerances.
    #[inline]
    pub fn amounts_agree(&self, ledger: i64, channel: i64) -> bool {
        let difference = (i128::from(ledger) - i128::from(channel)).abs();
        if difference <= i128::from(self.amount_tolerance_minor) {
            return true;
        }
        self.amount_tolerance_per_mille_millionths > 0
            && difference * 1_000_000_000
                <= i128::from(ledger).abs() * i128::from(self.amount_tolerance_per_mille_millionths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rules_and_applies_tolerances() {
        let rules = Rules::from_toml(
            r#"
            [amount]
            tolerance_minor = 1
            tolerance_per_mille = "0.5"
            [timing]
            window_seconds = 7200
            cutoff = "2026-11-21T00:00:00+08:00"
            [status]
            equivalent = [["success", "settled"]]
            [fee]
            check = false
            "#,
            "test",
        )
        .expect("valid rules");
        assert_eq!(rules.amount_tolerance_per_mille_millionths, 500_000);
        assert_eq!(rules.timing_cutoff, Some(1_795_190_400));
        assert!(!rules.fee_check);
        assert!(rules.amounts_agree(1000, 1001));
        assert!(!rules.amounts_agree(1000, 1002));
        // 0.5 per mille of 100,000 is 50.
        assert!(rules.amounts_agree(100_000, 100_050));
        assert!(!rules.amounts_agree(100_000, 100_051));
        assert!(Rules::from_toml("[amount]\ntolerance_minor = -1", "test").is_err());
        assert!(Rules::from_toml("[amount]\ntolerance_per_mille = \"abc\"", "test").is_err());
        assert!(Rules::from_toml("[nonsense]", "test").is_err());
    }
}
