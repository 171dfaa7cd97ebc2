//! The rule table of the credit decision at activation: approve or decline with reason
//! codes and an income-based limit (through the table's limit tiers), from the applicant's
//! attributes and score. Its tiers set limits only; the pricing tier comes from the
//! scorecard's score bands. The
//! service (`tally_service::credit::decision`) combines it with the scorecard's score-band policy:
//! both must approve and the lower limit wins, so the table keeps what a score does not
//! cover (age, income, debt-to-income, the block list).
//!
//! The rules, in order (every failing rule adds its reason; any reason declines):
//! 1. `block_listed`: the applicant is on a block list;
//! 2. `age_out_of_range`: age below `age_min` (the age of legal capacity to contract, which
//!    every market requires), or above `age_max` when the table has one. An upper age limit
//!    treats applicants differently by age, so it is set only where the law of the lender's
//!    market allows it; the service refuses one unless `[credit] age_allowed_because` says
//!    why (the shipped table has none);
//! 3. `no_income`: monthly income is not positive;
//! 4. `debt_to_income_too_high`: monthly debt payments / monthly income > `debt_to_income_max`;
//! 5. `score_too_low`: a score is given and is below the lowest tier's `score_min`, or no
//!    score is given and no tier accepts applicants without one (`score_min` 0).
//!
//! An approved applicant gets the tier with the highest `score_min` at or below their score
//! (no score counts as 0); limit = monthly income × the tier's `income_multiple`, at most its
//! `limit_max`, rounded down to a whole `limit_step`.

use crate::error::CreditError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Rounding};

/// What credit needs to know about an applicant, and nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    pub age_years: u8,
    pub monthly_income: Amount,
    pub monthly_debt_payments: Amount,
    /// The scorecard's points, when the scorecard has scored the applicant.
    pub score: Option<u16>,
    pub block_listed: bool,
}

/// One limit tier of the rule table (not a pricing tier: those come from the score bands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    pub score_min: u16,
    #[serde(with = "tally_core::rate::exact")]
    pub income_multiple: Decimal,
    /// Largest limit of the tier, in minor units.
    pub limit_max_minor: i64,
}

/// The rule table (TOML, serde).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditPolicy {
    /// The age of legal capacity to contract.
    pub age_min: u8,
    /// The oldest applicant accepted, where the lender's market allows an upper age limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_max: Option<u8>,
    #[serde(with = "tally_core::rate::exact")]
    pub debt_to_income_max: Decimal,
    /// Limits are rounded down to a multiple of this many minor units.
    pub limit_step_minor: i64,
    pub tiers: Vec<Tier>,
}

impl Default for CreditPolicy {
    fn default() -> Self {
        let tier = |name: &str, score_min, multiple, limit_max_minor| Tier {
            name: name.into(),
            score_min,
            income_multiple: Decimal::new(multiple, 1),
            limit_max_minor,
        };
        CreditPolicy {
            age_min: 18,
            age_max: None,
            debt_to_income_max: Decimal::new(50, 2),
            limit_step_minor: 10_000,
            tiers: vec![
                tier("starter", 0, 5, 500_000),
                tier("standard", 600, 10, 1_000_000),
                tier("prime", 700, 20, 5_000_000),
            ],
        }
    }
}

/// Why an application was declined; serialised as its stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    BlockListed,
    AgeOutOfRange,
    NoIncome,
    DebtToIncomeTooHigh,
    ScoreTooLow,
}

/// The outcome of a credit decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    Approved { limit: Amount, tier: String },
    Declined { reasons: Vec<DeclineReason> },
}

impl CreditPolicy {
    pub fn from_toml(text: &str) -> Result<CreditPolicy, CreditError> {
        let policy: CreditPolicy = toml::from_str(text)
            .map_err(|error| CreditError::InvalidConfiguration(error.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    pub fn validate(&self) -> Result<(), CreditError> {
        let refuse = |reason: &str| Err(CreditError::InvalidConfiguration(reason.into()));
        if self.tiers.is_empty() {
            return refuse("a credit policy needs at least one tier");
        }
        if self.age_max.is_some_and(|age_max| self.age_min > age_max) {
            return refuse("age_min is above age_max");
        }
        if self.limit_step_minor <= 0 {
            return refuse("limit_step_minor must be positive");
        }
        if self
            .tiers
            .iter()
            .any(|tier| tier.income_multiple.is_sign_negative() || tier.limit_max_minor < 0)
        {
            return refuse("tier multiples and limits must not be negative");
        }
        Ok(())
    }

    /// Decides an application.
    pub fn decide(&self, applicant: &Applicant) -> Result<Decision, CreditError> {
        let mut reasons = Vec::new();
        if applicant.block_listed {
            reasons.push(DeclineReason::BlockListed);
        }
        if applicant.age_years < self.age_min
            || self
                .age_max
                .is_some_and(|age_max| applicant.age_years > age_max)
        {
            reasons.push(DeclineReason::AgeOutOfRange);
        }
        let income = applicant.monthly_income.minor();
        if income <= 0 {
            reasons.push(DeclineReason::NoIncome);
        } else {
            let ratio = Decimal::from(applicant.monthly_debt_payments.minor())
                .checked_div(Decimal::from(income))
                .ok_or(CreditError::RateNotFound("debt-to-income overflow"))?;
            if ratio > self.debt_to_income_max {
                reasons.push(DeclineReason::DebtToIncomeTooHigh);
            }
        }
        let score = applicant.score.unwrap_or(0);
        let tier = self
            .tiers
            .iter()
            .filter(|tier| tier.score_min <= score)
            .max_by_key(|tier| tier.score_min);
        let Some(tier) = tier else {
            reasons.push(DeclineReason::ScoreTooLow);
            return Ok(Decision::Declined { reasons });
        };
        if !reasons.is_empty() {
            return Ok(Decision::Declined { reasons });
        }
        let currency = applicant.monthly_income.currency();
        // The tier's most, and a whole number of steps below it.
        let raw = applicant
            .monthly_income
            .apply_rate(tier.income_multiple, Rounding::Down)?
            .minor()
            .min(tier.limit_max_minor);
        let below_step = raw.checked_rem(self.limit_step_minor).ok_or_else(|| {
            CreditError::InvalidConfiguration("limit_step_minor must be positive".into())
        })?;
        let limit = Amount::new(raw, currency).checked_sub(Amount::new(below_step, currency))?;
        Ok(Decision::Approved {
            limit,
            tier: tier.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Currency;

    fn cny(text: &str) -> Amount {
        Amount::parse(text, Currency::CNY).unwrap()
    }

    fn applicant(score: Option<u16>) -> Applicant {
        Applicant {
            age_years: 30,
            monthly_income: cny("8765.43"),
            monthly_debt_payments: cny("1000.00"),
            score,
            block_listed: false,
        }
    }

    #[test]
    fn tiers_and_limits_by_the_table() {
        let policy = CreditPolicy::default();
        // No score: starter, 8,765.43 × 0.5 = 4,382.71, down to a hundred: 4,300.00.
        assert_eq!(
            policy.decide(&applicant(None)).unwrap(),
            Decision::Approved {
                limit: cny("4300.00"),
                tier: "starter".into()
            }
        );
        // 650: standard, × 1 = 8,765.43 → 8,700.00.
        assert_eq!(
            policy.decide(&applicant(Some(650))).unwrap(),
            Decision::Approved {
                limit: cny("8700.00"),
                tier: "standard".into()
            }
        );
        // 720: prime, × 2 = 17,530.86 → 17,500.00.
        assert_eq!(
            policy.decide(&applicant(Some(720))).unwrap(),
            Decision::Approved {
                limit: cny("17500.00"),
                tier: "prime".into()
            }
        );
    }

    #[test]
    fn every_failing_rule_gives_its_reason() {
        let policy = CreditPolicy::default();
        let bad = Applicant {
            age_years: 17,
            monthly_income: cny("1000.00"),
            monthly_debt_payments: cny("600.00"),
            score: Some(800),
            block_listed: true,
        };
        assert_eq!(
            policy.decide(&bad).unwrap(),
            Decision::Declined {
                reasons: vec![
                    DeclineReason::BlockListed,
                    DeclineReason::AgeOutOfRange,
                    DeclineReason::DebtToIncomeTooHigh
                ]
            }
        );
        let strict = CreditPolicy::from_toml(
            r#"age_min = 18
               age_max = 70
               debt_to_income_max = "0.4"
               limit_step_minor = 100
               tiers = [{ name = "only", score_min = 600, income_multiple = "1", limit_max_minor = 100000 }]"#,
        )
        .unwrap();
        assert_eq!(
            strict.decide(&applicant(Some(599))).unwrap(),
            Decision::Declined {
                reasons: vec![DeclineReason::ScoreTooLow]
            }
        );
        assert!(CreditPolicy::from_toml("age_min = 18").is_err());
        // With an upper age limit (where the market allows one), an older applicant is
        // declined; without one, age only checks legal capacity.
        assert_eq!(strict.age_max, Some(70));
        let older = Applicant {
            age_years: 71,
            score: Some(650),
            ..applicant(None)
        };
        assert_eq!(
            strict.decide(&older).unwrap(),
            Decision::Declined {
                reasons: vec![DeclineReason::AgeOutOfRange]
            }
        );
        assert_eq!(CreditPolicy::default().age_max, None);
        assert!(matches!(
            CreditPolicy::default().decide(&older).unwrap(),
            Decision::Approved { .. }
        ));
        // A ratio written as a number is refused: it must be exactly what its author wrote.
        let error = CreditPolicy::from_toml(
            r#"age_min = 18
               age_max = 70
               debt_to_income_max = 0.4
               limit_step_minor = 100
               tiers = []"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("expected a decimal written as a string"),
            "{error}"
        );
    }
}
