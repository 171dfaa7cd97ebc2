//! The model file: the features with their bins, weights of evidence and points, the
//! features left out and why, and what the model was trained on, as readable JSON.

use super::*;

/// One feature of the scorecard: its bins with weight of evidence and points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    pub trend: Trend,
    pub information_value: f64,
    /// Coefficient of the feature's weight of evidence in the log-odds of bad.
    pub coefficient: f64,
    pub bins: Vec<Bin>,
    /// Where missing values (and numbers that do not parse) go.
    pub missing: Bin,
    /// Where categories not seen in training go (categorical features only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<Bin>,
}

/// A candidate feature left out of the model, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedFeature {
    pub name: String,
    pub information_value: f64,
    pub reason: String,
}

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub rows: u64,
    pub good: u64,
    pub bad: u64,
    pub config: TrainConfig,
    pub iterations: usize,
    pub log_likelihood: f64,
}

/// The model file as stored: JSON a person can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    pub target: Target,
    pub scaling: Scaling,
    /// How to read the points: a comment for the human reader.
    #[serde(default)]
    pub explanation: String,
    pub intercept: f64,
    /// Points every applicant starts with: `offset - factor * intercept`.
    pub base_points: f64,
    pub features: Vec<Feature>,
    #[serde(default)]
    pub rejected: Vec<RejectedFeature>,
    pub training: TrainingSummary,
    /// How the training settings were chosen, when by cross-validation (`tally score tune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}
