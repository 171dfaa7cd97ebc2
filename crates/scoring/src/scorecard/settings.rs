//! The settings of a scorecard: how log-odds become points, and how training runs (its
//! target, binning, selection and the weight of values without evidence).

use super::*;

/// Scaling of log-odds to points: `score = offset + factor * ln(odds good:bad)` with
/// `factor = points_to_double_odds / ln 2` and `offset = base_score - factor * ln(base_odds)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    /// The score given at `base_odds`.
    pub base_score: f64,
    /// Odds good:bad at `base_score` (50 means 50 good for each bad).
    pub base_odds: f64,
    /// Points added when the odds good:bad double (PDO).
    pub points_to_double_odds: f64,
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            base_score: 600.0,
            base_odds: 50.0,
            points_to_double_odds: 20.0,
        }
    }
}

impl Scaling {
    pub fn validate(&self) -> Result<(), ScoringError> {
        if !(self.base_score.is_finite()
            && self.base_odds.is_finite()
            && self.base_odds > 0.0
            && self.points_to_double_odds.is_finite()
            && self.points_to_double_odds > 0.0)
        {
            return Err(ScoringError::InvalidConfiguration(format!(
                "scaling needs a finite base score, base odds > 0 and points to double the odds > 0: {self:?}"
            )));
        }
        Ok(())
    }

    pub fn factor(&self) -> f64 {
        self.points_to_double_odds / std::f64::consts::LN_2
    }

    pub fn offset(&self) -> f64 {
        self.base_score - self.factor() * self.base_odds.ln()
    }

    /// The score of a natural-log odds good:bad.
    pub fn score_of_log_odds(&self, log_odds_good: f64) -> f64 {
        self.offset() + self.factor() * log_odds_good
    }

    /// Probability of default (bad) implied by a score.
    pub fn probability_of_default(&self, score: f64) -> f64 {
        let log_odds_good = (score - self.offset()) / self.factor();
        1.0 / (1.0 + log_odds_good.exp())
    }
}

/// Settings of training; stored in the model file so that a model documents how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub binning: BinningConfig,
    /// Features with a lower information value are left out (0.02: "not predictive").
    pub information_value_min: f64,
    /// L2 penalty on the coefficients (not the intercept), on the scale of the summed
    /// log-likelihood.
    pub l2: f64,
    pub scaling: Scaling,
    /// Columns never used as features (identifiers, dates, and every protected attribute of
    /// the data: training refuses a table with one that is not excluded).
    pub exclude: Vec<String>,
    /// Further columns that are protected attributes in the lender's eyes (a stand-in for one),
    /// beyond those recognised by name ([`crate::fairness::recognise`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protected: Vec<String>,
    /// Why the lender's market allows age as a feature; absent, age is a protected attribute
    /// like the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_allowed_because: Option<String>,
    /// Weight of a missing value when fewer than `bin_fraction_min` of the training rows were
    /// missing (too few to estimate its own weight).
    pub missing_without_evidence: UnknownValue,
    /// Weight of a category not seen in training.
    pub unseen_category: UnknownValue,
}

/// The weight given to a value training has no evidence about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownValue {
    /// Weight of evidence 0: average risk, 0 points.
    Neutral,
    /// The weight of the feature's riskiest bin: withholding or garbling information never
    /// earns points, and it shows as an adverse reason.
    Riskiest,
}

impl UnknownValue {
    pub(super) fn weight(self, bins: &[Bin]) -> f64 {
        match self {
            UnknownValue::Neutral => 0.0,
            UnknownValue::Riskiest => bins.iter().map(|bin| bin.woe).fold(0.0, f64::min),
        }
    }
}

impl TrainConfig {
    /// Which columns may not be features under these settings.
    pub fn protection(&self) -> crate::fairness::Protection<'_> {
        crate::fairness::Protection {
            declared: &self.protected,
            age_allowed_because: self.age_allowed_because.as_deref(),
        }
    }

    /// Parses settings written as TOML; absent keys keep their defaults.
    pub fn from_toml(text: &str) -> Result<TrainConfig, ScoringError> {
        toml::from_str(text).map_err(|error| ScoringError::InvalidConfiguration(error.to_string()))
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            binning: BinningConfig::default(),
            information_value_min: 0.02,
            l2: 1.0,
            scaling: Scaling::default(),
            exclude: Vec::new(),
            protected: Vec::new(),
            age_allowed_because: None,
            missing_without_evidence: UnknownValue::Riskiest,
            unseen_category: UnknownValue::Riskiest,
        }
    }
}

/// The label column and the value in it that marks a bad outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub column: String,
    pub bad_value: String,
}
