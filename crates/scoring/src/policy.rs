//! The credit policy: a TOML table from score bands to a decision (decline or approve), a
//! credit limit in integer minor units, and a pricing tier.

use crate::error::ScoringError;
use serde::{Deserialize, Serialize};
use tally_core::{Amount, Currency};

/// Most bands a policy may have.
pub const BANDS_MAX: usize = 100;

/// Decline or approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Decline,
    Approve,
}

/// One band as written in the policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandFile {
    pub name: String,
    /// Lowest score in the band (inclusive). The first band has none: it takes every lower
    /// score, and a score that is not a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    pub decision: Outcome,
    /// Credit limit in major units as a decimal string ("5000.00"); approve bands only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<String>,
    /// Pricing tier understood by the credit products; approve bands only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_tier: Option<String>,
}

/// The policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub currency: Currency,
    #[serde(rename = "band")]
    pub bands: Vec<BandFile>,
}

#[derive(Debug, Clone, PartialEq)]
struct Band {
    name: String,
    min_score: f64,
    outcome: Outcome,
    credit_limit: Amount,
    pricing_tier: Option<String>,
}

/// A validated policy: bands in ascending order of score.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    currency: Currency,
    bands: Vec<Band>,
}

/// What the policy decided for a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// Zero when declined.
    pub credit_limit: Amount,
    pub pricing_tier: Option<String>,
    /// Name of the band that decided.
    pub band: String,
}

impl Policy {
    /// Parses and validates a policy: the first band has no `min_score` and declines; the
    /// others have strictly increasing `min_score`; approve bands have a positive credit limit
    /// and a pricing tier, decline bands neither.
    pub fn from_toml(text: &str) -> Result<Policy, ScoringError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|error| ScoringError::InvalidPolicy(error.to_string()))?;
        Policy::try_from(file)
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The pricing tiers the approving bands give, in band order, each once.
    pub fn pricing_tiers(&self) -> Vec<&str> {
        let mut tiers: Vec<&str> = Vec::new();
        for tier in self
            .bands
            .iter()
            .filter_map(|band| band.pricing_tier.as_deref())
        {
            if !tiers.contains(&tier) {
                tiers.push(tier);
            }
        }
        tiers
    }

    /// The decision for a score. Pure and total: a NaN score falls in the first band.
    pub fn decide(&self, score: f64) -> Decision {
        let index = if score.is_nan() {
            0
        } else {
            // Bands after the first all have a min_score; the first takes the rest.
            self.bands[1..].partition_point(|band| band.min_score <= score)
        };
        let band = &self.bands[index];
        Decision {
            outcome: band.outcome,
            credit_limit: band.credit_limit,
            pricing_tier: band.pricing_tier.clone(),
            band: band.name.clone(),
        }
    }
}

impl TryFrom<PolicyFile> for Policy {
    type Error = ScoringError;

    fn try_from(file: PolicyFile) -> Result<Policy, ScoringError> {
        let fail = |reason: String| Err(ScoringError::InvalidPolicy(reason));
        if file.bands.is_empty() || file.bands.len() > BANDS_MAX {
            return fail(format!("a policy needs 1 to {BANDS_MAX} bands"));
        }
        let mut bands = Vec::with_capacity(file.bands.len());
        for (index, band) in file.bands.iter().enumerate() {
            let name = &band.name;
            let min_score = match (index, band.min_score) {
                (0, None) => f64::NEG_INFINITY,
                (0, Some(_)) => {
                    return fail(format!(
                        "band {name:?}: the first band takes every score below the next band and has no min_score"
                    ))
                }
                (_, None) => return fail(format!("band {name:?} needs a min_score")),
                (_, Some(min_score)) if !min_score.is_finite() => {
                    return fail(format!("band {name:?}: min_score must be finite"))
                }
                (_, Some(min_score)) => min_score,
            };
            if let Some(previous) = bands.last().map(|band: &Band| band.min_score) {
                if min_score <= previous {
                    return fail(format!(
                        "band {name:?}: min_score must be above the previous band's"
                    ));
                }
            }
            let (credit_limit, pricing_tier) = match band.decision {
                Outcome::Decline => {
                    if band.credit_limit.is_some() || band.pricing_tier.is_some() {
                        return fail(format!(
                            "band {name:?} declines and so has no credit_limit or pricing_tier"
                        ));
                    }
                    (Amount::zero(file.currency), None)
                }
                Outcome::Approve => {
                    if index == 0 {
                        return fail(format!(
                            "band {name:?}: the first band (the lowest scores) must decline"
                        ));
                    }
                    let Some(text) = &band.credit_limit else {
                        return fail(format!("band {name:?} approves and needs a credit_limit"));
                    };
                    let limit = Amount::parse(text, file.currency).map_err(|error| {
                        ScoringError::InvalidPolicy(format!("band {name:?}: {error}"))
                    })?;
                    if !limit.is_positive() {
                        return fail(format!("band {name:?}: credit_limit must be positive"));
                    }
                    let Some(tier) = band.pricing_tier.clone().filter(|tier| !tier.is_empty())
                    else {
                        return fail(format!("band {name:?} approves and needs a pricing_tier"));
                    };
                    (limit, Some(tier))
                }
            };
            bands.push(Band {
                name: name.clone(),
                min_score,
                outcome: band.decision,
                credit_limit,
                pricing_tier,
            });
        }
        Ok(Policy {
            currency: file.currency,
            bands,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
currency = "CNY"

[[band]]
name = "decline"
decision = "decline"

[[band]]
name = "starter"
min_score = 500
decision = "approve"
credit_limit = "2000.00"
pricing_tier = "D"

[[band]]
name = "prime"
min_score = 560.5
decision = "approve"
credit_limit = "20000"
pricing_tier = "A"
"#;

    #[test]
    fn bands_decide_limits_in_minor_units() {
        let policy = Policy::from_toml(POLICY).unwrap();
        let decline = policy.decide(499.99);
        assert_eq!(decline.outcome, Outcome::Decline);
        assert_eq!(decline.credit_limit, Amount::zero(Currency::CNY));
        assert_eq!(decline.pricing_tier, None);
        assert_eq!(policy.decide(f64::NAN).band, "decline");
        assert_eq!(policy.decide(f64::NEG_INFINITY).band, "decline");
        let starter = policy.decide(500.0);
        assert_eq!(starter.outcome, Outcome::Approve);
        assert_eq!(starter.credit_limit, Amount::new(200_000, Currency::CNY));
        assert_eq!(starter.pricing_tier.as_deref(), Some("D"));
        assert_eq!(policy.decide(560.49).band, "starter");
        let prime = policy.decide(900.0);
        assert_eq!(prime.credit_limit.minor(), 2_000_000);
        assert_eq!(prime.band, "prime");
        assert_eq!(policy.pricing_tiers(), vec!["D", "A"]);
    }

    #[test]
    fn invalid_policies_are_refused() {
        let broken = [
            // Unsorted bands.
            POLICY.replace("560.5", "400"),
            // Fractions the currency does not have.
            POLICY.replace("2000.00", "2000.001"),
            // An approve band without a limit.
            POLICY.replace("credit_limit = \"20000\"", ""),
            // First band approving.
            POLICY.replacen("decision = \"decline\"", "decision = \"approve\"", 1),
            // Unknown currency.
            POLICY.replace("CNY", "XXX"),
            // Unknown field.
            POLICY.replace("pricing_tier = \"A\"", "pricing_tier = \"A\"\ncolour = 1"),
        ];
        for text in broken {
            assert!(
                matches!(
                    Policy::from_toml(&text),
                    Err(ScoringError::InvalidPolicy(_))
                ),
                "{text}"
            );
        }
    }
}
