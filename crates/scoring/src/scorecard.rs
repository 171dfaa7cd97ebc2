//! The scorecard model: training (binning, selection by information value, logistic fit,
//! points), the readable JSON model file, and scoring of one applicant or a batch.

use crate::binning::{self, Bin, BinningConfig, FeatureKind, Trend, MISSING_LABEL};
use crate::data::{is_missing, Table};
use crate::error::ScoringError;
use crate::logistic;
use crate::tuning::Selection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Identifies the model file format; bumped when the layout changes incompatibly.
pub const MODEL_FORMAT: &str = "tally-scorecard/1";

/// Most adverse reason codes returned for one applicant (an adverse-action notice commonly
/// lists up to four).
pub const REASONS_MAX: usize = 4;

/// Label of the bin used for a category not seen in training.
pub const UNSEEN_LABEL: &str = "unseen";

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
    fn weight(self, bins: &[Bin]) -> f64 {
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

/// A value of one applicant attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Missing,
    Number(f64),
    Text(String),
}

/// An applicant: attribute values by feature name. Attributes the model does not use are
/// ignored; attributes it uses but the applicant lacks are missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applicant {
    values: BTreeMap<String, Value>,
}

impl Applicant {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.values.insert(name.into(), value);
        self
    }

    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.values.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// From a JSON object: strings are text, numbers are numbers, null is missing, booleans
    /// are the text `true`/`false`. Nested values are refused.
    pub fn from_json(json: &serde_json::Value) -> Result<Applicant, ScoringError> {
        let object = json.as_object().ok_or_else(|| {
            ScoringError::InvalidApplicant("expected a JSON object of attribute values".into())
        })?;
        let mut applicant = Applicant::new();
        for (name, value) in object {
            let value = match value {
                serde_json::Value::Null => Value::Missing,
                serde_json::Value::Bool(flag) => Value::Text(flag.to_string()),
                serde_json::Value::Number(number) => match number.as_f64() {
                    Some(number) => Value::Number(number),
                    None => Value::Missing,
                },
                serde_json::Value::String(text) => Value::Text(text.clone()),
                _ => {
                    return Err(ScoringError::InvalidApplicant(format!(
                        "attribute {name:?}: expected a string, number or null"
                    )))
                }
            };
            applicant.insert(name.clone(), value);
        }
        Ok(applicant)
    }

    /// From one CSV row: every cell is text.
    pub fn from_record(headers: &[String], cells: &[String]) -> Applicant {
        let mut applicant = Applicant::new();
        for (name, cell) in headers.iter().zip(cells) {
            applicant.insert(name.clone(), Value::Text(cell.clone()));
        }
        applicant
    }
}

/// How an attribute value found its bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// The value fell in one of the trained bins.
    Bin,
    /// The value was missing.
    Missing,
    /// A number was expected and the text does not parse; treated as missing.
    Invalid,
    /// A category not seen in training.
    Unseen,
}

/// The points one attribute earned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub feature: String,
    pub bin: String,
    pub points: f64,
    #[serde(rename = "match")]
    pub matched: Match,
}

/// An adverse reason: an attribute whose bin cost points against the best bin of its feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCode {
    /// Stable code: the feature name.
    pub code: String,
    pub bin: String,
    pub points: f64,
    /// Points below the best bin of the same feature.
    pub points_lost: f64,
}

/// The result of scoring one applicant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreResult {
    pub score: f64,
    pub probability_of_default: f64,
    pub attributes: Vec<Attribute>,
    /// Up to [`REASONS_MAX`] adverse reasons, the costliest first.
    pub reasons: Vec<ReasonCode>,
}

/// How a feature's bins are found at scoring time.
#[derive(Debug, Clone)]
enum Lookup {
    /// Lower bounds of bins 1..; bin = number of bounds <= x.
    Numeric { bounds: Vec<f64> },
    /// Category text and its bin.
    Categorical { categories: Vec<(Box<str>, u32)> },
}

#[derive(Debug, Clone)]
struct Compiled {
    lookup: Lookup,
    points: Vec<f64>,
    missing_points: f64,
    unseen_points: f64,
    best_points: f64,
}

/// Where a value falls: `Some(bin)` or `None` with why not.
fn locate(lookup: &Lookup, value: &Value) -> Result<usize, Match> {
    match (lookup, value) {
        (_, Value::Missing) => Err(Match::Missing),
        (Lookup::Numeric { bounds }, Value::Number(number)) => {
            if number.is_nan() {
                Err(Match::Missing)
            } else {
                Ok(bounds.partition_point(|&bound| bound <= *number))
            }
        }
        (Lookup::Numeric { bounds }, Value::Text(text)) => {
            if is_missing(text) {
                return Err(Match::Missing);
            }
            match text.trim().parse::<f64>() {
                Ok(number) if !number.is_nan() => {
                    Ok(bounds.partition_point(|&bound| bound <= number))
                }
                _ => Err(Match::Invalid),
            }
        }
        (Lookup::Categorical { categories }, Value::Text(text)) => {
            let text = text.trim();
            match categories.iter().find(|(name, _)| **name == *text) {
                Some(&(_, bin)) => Ok(bin as usize),
                None if is_missing(text) => Err(Match::Missing),
                None => Err(Match::Unseen),
            }
        }
        (Lookup::Categorical { .. }, Value::Number(number)) => {
            locate(lookup, &Value::Text(number.to_string()))
        }
    }
}

/// A validated scorecard, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    file: ModelFile,
    compiled: Vec<Compiled>,
}

impl TryFrom<ModelFile> for Model {
    type Error = ScoringError;

    fn try_from(file: ModelFile) -> Result<Model, ScoringError> {
        let fail = |reason: String| Err(ScoringError::InvalidModel(reason));
        if file.format != MODEL_FORMAT {
            return fail(format!(
                "format {:?}, expected {MODEL_FORMAT:?}",
                file.format
            ));
        }
        file.scaling.validate()?;
        // A model that scores a protected attribute is refused, whatever made it.
        let protection = file.training.config.protection();
        protection.validate()?;
        protection.check(file.features.iter().map(|feature| feature.name.as_str()))?;
        if !file.base_points.is_finite() {
            return fail("base_points must be finite".into());
        }
        let mut compiled = Vec::with_capacity(file.features.len());
        for feature in &file.features {
            let name = &feature.name;
            if feature.bins.is_empty() {
                return fail(format!("feature {name:?} has no bins"));
            }
            let all_points = feature
                .bins
                .iter()
                .chain(std::iter::once(&feature.missing))
                .chain(feature.unseen.iter());
            if all_points.clone().any(|bin| !bin.points.is_finite()) {
                return fail(format!("feature {name:?} has points that are not finite"));
            }
            let lookup = match feature.kind {
                FeatureKind::Numeric => {
                    let first = &feature.bins[0];
                    let last = &feature.bins[feature.bins.len() - 1];
                    if first.lower.is_some() || last.upper.is_some() {
                        return fail(format!(
                            "feature {name:?}: the first bin must have no lower bound and the last no upper bound"
                        ));
                    }
                    let mut bounds = Vec::new();
                    for pair in feature.bins.windows(2) {
                        match (pair[0].upper, pair[1].lower) {
                            (Some(upper), Some(lower))
                                if upper == lower
                                    && upper.is_finite()
                                    && bounds.last().is_none_or(|&previous| previous < lower) =>
                            {
                                bounds.push(lower)
                            }
                            _ => {
                                return fail(format!(
                                    "feature {name:?}: bins must be contiguous and ascending"
                                ))
                            }
                        }
                    }
                    Lookup::Numeric { bounds }
                }
                FeatureKind::Categorical => {
                    let mut categories: Vec<(Box<str>, u32)> = Vec::new();
                    for (index, bin) in feature.bins.iter().enumerate() {
                        if bin.categories.is_empty() {
                            return fail(format!("feature {name:?}: a bin has no categories"));
                        }
                        for category in &bin.categories {
                            let category = category.trim();
                            if categories.iter().any(|(known, _)| **known == *category) {
                                return fail(format!(
                                    "feature {name:?}: category {category:?} is in two bins"
                                ));
                            }
                            categories.push((category.into(), index as u32));
                        }
                    }
                    Lookup::Categorical { categories }
                }
            };
            let points: Vec<f64> = feature.bins.iter().map(|bin| bin.points).collect();
            let unseen_points = feature.unseen.as_ref().map_or(0.0, |bin| bin.points);
            let best_points = points
                .iter()
                .copied()
                .chain([feature.missing.points, unseen_points])
                .fold(f64::NEG_INFINITY, f64::max);
            compiled.push(Compiled {
                lookup,
                points,
                missing_points: feature.missing.points,
                unseen_points,
                best_points,
            });
        }
        Ok(Model { file, compiled })
    }
}

impl Model {
    /// Parses and validates a model file.
    pub fn from_json(text: &str) -> Result<Model, ScoringError> {
        let file: ModelFile = serde_json::from_str(text)
            .map_err(|error| ScoringError::InvalidModel(error.to_string()))?;
        Model::try_from(file)
    }

    /// The model file as indented JSON.
    pub fn to_json(&self) -> Result<String, ScoringError> {
        serde_json::to_string_pretty(&self.file)
            .map_err(|error| ScoringError::InvalidModel(error.to_string()))
    }

    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// The same model, recording how its training settings were chosen.
    pub fn with_selection(self, selection: Selection) -> Result<Model, ScoringError> {
        Model::try_from(ModelFile {
            selection: Some(selection),
            ..self.file
        })
    }

    pub fn features(&self) -> &[Feature] {
        &self.file.features
    }

    pub fn target(&self) -> &Target {
        &self.file.target
    }

    pub fn scaling(&self) -> &Scaling {
        &self.file.scaling
    }

    /// Scores one applicant: score, probability of default, points per attribute and the top
    /// adverse reasons. Missing, invalid and unseen values go to their stated bins.
    pub fn score(&self, applicant: &Applicant) -> ScoreResult {
        let mut score = self.file.base_points;
        let mut attributes = Vec::with_capacity(self.compiled.len());
        let mut reasons = Vec::new();
        for (feature, compiled) in self.file.features.iter().zip(&self.compiled) {
            let value = applicant.get(&feature.name).unwrap_or(&Value::Missing);
            let (label, points, matched) = match locate(&compiled.lookup, value) {
                Ok(bin) => (&feature.bins[bin].label, compiled.points[bin], Match::Bin),
                Err(Match::Unseen) => (
                    feature
                        .unseen
                        .as_ref()
                        .map_or(&feature.missing.label, |bin| &bin.label),
                    compiled.unseen_points,
                    Match::Unseen,
                ),
                Err(other) => (&feature.missing.label, compiled.missing_points, other),
            };
            score += points;
            let points_lost = compiled.best_points - points;
            if points_lost > 1e-9 {
                reasons.push(ReasonCode {
                    code: feature.name.clone(),
                    bin: label.clone(),
                    points,
                    points_lost,
                });
            }
            attributes.push(Attribute {
                feature: feature.name.clone(),
                bin: label.clone(),
                points,
                matched,
            });
        }
        reasons.sort_by(|left, right| {
            right
                .points_lost
                .total_cmp(&left.points_lost)
                .then_with(|| left.code.cmp(&right.code))
        });
        reasons.truncate(REASONS_MAX);
        ScoreResult {
            score,
            probability_of_default: self.file.scaling.probability_of_default(score),
            attributes,
            reasons,
        }
    }

    /// Scores every applicant of a batch (columns in the model's feature order) into `scores`,
    /// which is cleared first. Same points as [`Model::score`], without the explanation.
    pub fn score_batch(&self, batch: &Batch, scores: &mut Vec<f64>) -> Result<(), ScoringError> {
        if batch.columns.len() != self.compiled.len() {
            return Err(ScoringError::InvalidData(
                "the batch was not built for this model".into(),
            ));
        }
        scores.clear();
        scores.resize(batch.rows, self.file.base_points);
        for (compiled, column) in self.compiled.iter().zip(&batch.columns) {
            match (&compiled.lookup, column) {
                (Lookup::Numeric { bounds }, Column::Numbers(numbers)) => {
                    for (score, &number) in scores.iter_mut().zip(numbers) {
                        *score += if number.is_nan() {
                            compiled.missing_points
                        } else {
                            compiled.points[bounds.partition_point(|&bound| bound <= number)]
                        };
                    }
                }
                (Lookup::Categorical { categories }, Column::Texts { text, ends }) => {
                    let mut start = 0;
                    for (score, &end) in scores.iter_mut().zip(ends) {
                        let cell = &text[start..end];
                        start = end;
                        *score += match categories.iter().find(|(name, _)| **name == *cell) {
                            Some(&(_, bin)) => compiled.points[bin as usize],
                            None if is_missing(cell) => compiled.missing_points,
                            None => compiled.unseen_points,
                        };
                    }
                }
                _ => {
                    return Err(ScoringError::InvalidData(
                        "the batch was not built for this model".into(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// For each feature, the share of the table's rows in each bin: the trained bins in order,
    /// then missing (with invalid), then unseen. Compared between two tables with
    /// [`crate::metrics::stability_of_shares`] it gives each feature's stability index.
    pub fn bin_shares(&self, table: &Table) -> Result<Vec<Vec<f64>>, ScoringError> {
        let mut shares = Vec::with_capacity(self.compiled.len());
        for (feature, compiled) in self.file.features.iter().zip(&self.compiled) {
            let index = table.column_index(&feature.name)?;
            let mut counts = vec![0usize; feature.bins.len() + 2];
            for row in &table.rows {
                let slot = match locate(&compiled.lookup, &Value::Text(row[index].clone())) {
                    Ok(bin) => bin,
                    Err(Match::Unseen) => feature.bins.len() + 1,
                    Err(_) => feature.bins.len(),
                };
                counts[slot] += 1;
            }
            let total = table.rows.len().max(1) as f64;
            shares.push(counts.iter().map(|&count| count as f64 / total).collect());
        }
        Ok(shares)
    }

    /// Scores every row of a table (which must have every feature column).
    pub fn score_table(&self, table: &Table) -> Result<Vec<f64>, ScoringError> {
        let batch = Batch::from_table(self, table)?;
        let mut scores = Vec::new();
        self.score_batch(&batch, &mut scores)?;
        Ok(scores)
    }
}

impl Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.file.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Model {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = ModelFile::deserialize(deserializer)?;
        Model::try_from(file).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone)]
enum Column {
    /// NaN marks a missing or unparseable number.
    Numbers(Vec<f64>),
    /// Trimmed cells laid end to end; `ends[row]` is where the row's cell ends.
    Texts { text: String, ends: Vec<usize> },
}

/// Applicants laid out by column in the model's feature order, for fast batch scoring.
#[derive(Debug, Clone)]
pub struct Batch {
    rows: usize,
    columns: Vec<Column>,
}

impl Batch {
    /// An empty batch for the model's features.
    pub fn new(model: &Model) -> Batch {
        let columns = model
            .file
            .features
            .iter()
            .map(|feature| match feature.kind {
                FeatureKind::Numeric => Column::Numbers(Vec::new()),
                FeatureKind::Categorical => Column::Texts {
                    text: String::new(),
                    ends: Vec::new(),
                },
            })
            .collect();
        Batch { rows: 0, columns }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one applicant given as one cell per model feature, in the model's order.
    pub fn push(&mut self, cells: &[&str]) -> Result<(), ScoringError> {
        if cells.len() != self.columns.len() {
            return Err(ScoringError::InvalidApplicant(format!(
                "expected {} cells, got {}",
                self.columns.len(),
                cells.len()
            )));
        }
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            match column {
                Column::Numbers(numbers) => numbers.push(if is_missing(cell) {
                    f64::NAN
                } else {
                    cell.trim().parse::<f64>().unwrap_or(f64::NAN)
                }),
                Column::Texts { text, ends } => {
                    text.push_str(cell.trim());
                    ends.push(text.len());
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// A batch of every row of a table, which must have a column for each model feature.
    pub fn from_table(model: &Model, table: &Table) -> Result<Batch, ScoringError> {
        let indices: Vec<usize> = model
            .file
            .features
            .iter()
            .map(|feature| table.column_index(&feature.name))
            .collect::<Result<_, _>>()?;
        let mut batch = Batch::new(model);
        let mut cells: Vec<&str> = Vec::with_capacity(indices.len());
        for row in &table.rows {
            cells.clear();
            cells.extend(indices.iter().map(|&index| row[index].as_str()));
            batch.push(&cells)?;
        }
        Ok(batch)
    }
}

/// Refuses settings that would let a protected column of `table` (other than the label)
/// become a feature: each one must be in `config.exclude`.
pub fn check_protected(
    table: &Table,
    target: &Target,
    config: &TrainConfig,
) -> Result<(), ScoringError> {
    let protection = config.protection();
    protection.validate()?;
    protection.check(table.headers.iter().map(String::as_str).filter(|name| {
        *name != target.column && !config.exclude.iter().any(|excluded| excluded == name)
    }))
}

/// Trains a scorecard on a table with a label column.
pub fn train(table: &Table, target: &Target, config: &TrainConfig) -> Result<Model, ScoringError> {
    config.binning.validate()?;
    config.scaling.validate()?;
    if !(config.information_value_min >= 0.0 && config.information_value_min.is_finite()) {
        return Err(ScoringError::InvalidConfiguration(
            "information_value_min must be a finite number >= 0".into(),
        ));
    }
    let labels = table.labels(&target.column, &target.bad_value)?;
    let bad = labels.iter().filter(|&&label| label).count() as u64;
    let good = labels.len() as u64 - bad;
    if bad == 0 || good == 0 {
        return Err(ScoringError::InvalidData(format!(
            "the label column {:?} needs both rows equal to {:?} (bad) and other rows (good)",
            target.column, target.bad_value
        )));
    }
    let target_index = table.column_index(&target.column)?;
    // Every protected column of the data must be excluded by name, so the model file records
    // what the model was denied.
    check_protected(table, target, config)?;
    let mut candidates = Vec::new();
    let mut rejected = Vec::new();
    for (index, name) in table.headers.iter().enumerate() {
        if index == target_index || config.exclude.iter().any(|excluded| excluded == name) {
            continue;
        }
        let cells: Vec<&str> = table.rows.iter().map(|row| row[index].as_str()).collect();
        let binning = binning::bin_feature(name, &cells, &labels, &config.binning)?;
        let reason = if binning.bins.len() < 2 {
            Some(format!(
                "a single bin: no monotonic split leaves {} % of the rows in each bin",
                config.binning.bin_fraction_min * 100.0
            ))
        } else if binning.information_value < config.information_value_min {
            Some(format!(
                "information value {:.4} below {}",
                binning.information_value, config.information_value_min
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            rejected.push(RejectedFeature {
                name: name.clone(),
                information_value: binning.information_value,
                reason,
            });
        } else {
            candidates.push((index, binning));
        }
    }
    // Strongest features first, so the model file reads from most to least important.
    candidates.sort_by(|left, right| {
        right
            .1
            .information_value
            .total_cmp(&left.1.information_value)
            .then_with(|| left.1.name.cmp(&right.1.name))
    });
    let factor = config.scaling.factor();
    let count_min = (labels.len() as f64 * config.binning.bin_fraction_min).ceil() as u64;
    loop {
        let features: Vec<Feature> = candidates
            .iter()
            .map(|(_, binning)| Feature {
                name: binning.name.clone(),
                kind: binning.kind,
                trend: binning.trend,
                information_value: binning.information_value,
                coefficient: 0.0,
                bins: binning.bins.clone(),
                missing: Bin {
                    woe: if binning.missing.counts().total() < count_min {
                        config.missing_without_evidence.weight(&binning.bins)
                    } else {
                        binning.missing.woe
                    },
                    ..binning.missing.clone()
                },
                unseen: (binning.kind == FeatureKind::Categorical).then(|| Bin {
                    label: UNSEEN_LABEL.to_string(),
                    lower: None,
                    upper: None,
                    categories: Vec::new(),
                    good: 0,
                    bad: 0,
                    woe: config.unseen_category.weight(&binning.bins),
                    points: 0.0,
                }),
            })
            .collect();
        // The weight-of-evidence design matrix, through the same lookup as scoring.
        let woe_model = Model::try_from(model_file(
            target,
            config,
            features.clone(),
            0.0,
            0.0,
            &rejected,
            None,
        ))?;
        let rows: Vec<Vec<f64>> = table
            .rows
            .iter()
            .map(|row| {
                candidates
                    .iter()
                    .zip(&woe_model.compiled)
                    .zip(&features)
                    .map(|(((index, _), compiled), feature)| {
                        match locate(&compiled.lookup, &Value::Text(row[*index].clone())) {
                            Ok(bin) => feature.bins[bin].woe,
                            Err(_) => feature.missing.woe,
                        }
                    })
                    .collect()
            })
            .collect();
        let fit = logistic::fit(&rows, &labels, config.l2)?;
        // A positive coefficient would give more points to riskier bins: drop the feature
        // with the most reversed sign and fit again.
        let reversed = fit
            .coefficients
            .iter()
            .enumerate()
            .filter(|(_, &coefficient)| coefficient >= 0.0)
            .max_by(|left, right| left.1.total_cmp(right.1))
            .map(|(index, _)| index);
        if let Some(index) = reversed {
            let (_, binning) = candidates.remove(index);
            rejected.push(RejectedFeature {
                name: binning.name.clone(),
                information_value: binning.information_value,
                reason: format!(
                    "coefficient {:.4} has the reversed sign in the joint fit (collinear with stronger features)",
                    fit.coefficients[index]
                ),
            });
            if candidates.is_empty() {
                return Err(ScoringError::InvalidData(
                    "no feature is left to fit".into(),
                ));
            }
            continue;
        }
        let mut features = features;
        for (feature, &coefficient) in features.iter_mut().zip(&fit.coefficients) {
            feature.coefficient = coefficient;
            for bin in feature
                .bins
                .iter_mut()
                .chain(std::iter::once(&mut feature.missing))
                .chain(feature.unseen.iter_mut())
            {
                bin.points = -factor * coefficient * bin.woe;
            }
        }
        let base_points = config.scaling.offset() - factor * fit.intercept;
        let summary = TrainingSummary {
            rows: labels.len() as u64,
            good,
            bad,
            config: config.clone(),
            iterations: fit.iterations,
            log_likelihood: fit.log_likelihood,
        };
        return Model::try_from(model_file(
            target,
            config,
            features,
            fit.intercept,
            base_points,
            &rejected,
            Some(summary),
        ));
    }
}

fn model_file(
    target: &Target,
    config: &TrainConfig,
    features: Vec<Feature>,
    intercept: f64,
    base_points: f64,
    rejected: &[RejectedFeature],
    summary: Option<TrainingSummary>,
) -> ModelFile {
    ModelFile {
        format: MODEL_FORMAT.to_string(),
        target: target.clone(),
        scaling: config.scaling,
        explanation: format!(
            "score = base_points + sum of the points of the applicant's bin in each feature. \
             points = -factor * coefficient * woe, factor = points_to_double_odds / ln 2 = {:.6}, \
             offset = base_score - factor * ln(base_odds) = {:.6}, base_points = offset - factor * intercept. \
             woe = ln(share of goods / share of bads) in the bin. probability of default = \
             1 / (1 + exp((score - offset) / factor)). Missing values score the '{MISSING_LABEL}' bin \
             (its own woe if at least bin_fraction_min of the training rows were missing, else {:?}), \
             categories unseen in training the '{UNSEEN_LABEL}' bin ({:?}); neutral = woe 0, \
             riskiest = the woe of the feature's riskiest bin.",
            config.scaling.factor(),
            config.scaling.offset(),
            config.missing_without_evidence,
            config.unseen_category,
        ),
        intercept,
        base_points,
        features,
        rejected: rejected.to_vec(),
        training: summary.unwrap_or(TrainingSummary {
            rows: 0,
            good: 0,
            bad: 0,
            config: config.clone(),
            iterations: 0,
            log_likelihood: 0.0,
        }),
        selection: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_to_double_the_odds_arithmetic() {
        // Siddiqi's example: 600 points at 50:1, 20 points to double the odds.
        let scaling = Scaling::default();
        let factor = 20.0 / 2f64.ln();
        assert!((scaling.factor() - 28.853_900_817_779_27).abs() < 1e-12);
        assert!((scaling.factor() - factor).abs() < 1e-12);
        assert!((scaling.offset() - (600.0 - factor * 50f64.ln())).abs() < 1e-12);
        assert!((scaling.offset() - 487.122_876_204_505_5).abs() < 1e-9);
        assert!((scaling.score_of_log_odds(50f64.ln()) - 600.0).abs() < 1e-9);
        assert!((scaling.score_of_log_odds(100f64.ln()) - 620.0).abs() < 1e-9);
        assert!((scaling.score_of_log_odds(25f64.ln()) - 580.0).abs() < 1e-9);
        // At 600 the odds are 50:1, so the probability of default is 1/51.
        assert!((scaling.probability_of_default(600.0) - 1.0 / 51.0).abs() < 1e-12);
        assert!((scaling.probability_of_default(620.0) - 1.0 / 101.0).abs() < 1e-12);
    }

    /// A small table: "grade" decides risk, "income" helps, "noise" carries nothing.
    fn training_table() -> Table {
        let mut rows = Vec::new();
        for index in 0..400u32 {
            let grade = ["a", "b", "c", "d"][(index % 4) as usize];
            let income = (index * 37 % 100) as f64;
            let risk = match grade {
                "a" => 0.05,
                "b" => 0.2,
                "c" => 0.4,
                _ => 0.6,
            } + if income > 50.0 { -0.04 } else { 0.04 };
            let draw = f64::from(index * 7919 % 1000) / 1000.0;
            let bad = draw < risk;
            let income = if index % 50 == 0 {
                String::new()
            } else {
                income.to_string()
            };
            rows.push(vec![
                grade.to_string(),
                income,
                "same".to_string(),
                if bad { "bad" } else { "good" }.to_string(),
            ]);
        }
        Table {
            headers: ["grade", "income", "noise", "label"]
                .map(String::from)
                .to_vec(),
            rows,
        }
    }

    fn target() -> Target {
        Target {
            column: "label".into(),
            bad_value: "bad".into(),
        }
    }

    #[test]
    fn training_builds_consistent_points_and_scores() {
        let table = training_table();
        let config = TrainConfig::default();
        let model = train(&table, &target(), &config).unwrap();
        let names: Vec<&str> = model.features().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names[0], "grade");
        assert!(model
            .file()
            .rejected
            .iter()
            .any(|rejected| rejected.name == "noise"));
        for feature in model.features() {
            assert!(feature.coefficient < 0.0);
            for bin in &feature.bins {
                let expected = -config.scaling.factor() * feature.coefficient * bin.woe;
                assert!((bin.points - expected).abs() < 1e-9);
            }
        }
        // The batch path and the single path agree, and the score maps back to the fit.
        let scores = model.score_table(&table).unwrap();
        for (row, &batch_score) in table.rows.iter().zip(&scores).take(50) {
            let single = model.score(&Applicant::from_record(&table.headers, row));
            assert!((single.score - batch_score).abs() < 1e-9);
            let log_odds_bad = model.file().intercept
                + model
                    .features()
                    .iter()
                    .zip(&single.attributes)
                    .map(|(feature, attribute)| {
                        let bin = feature
                            .bins
                            .iter()
                            .chain(std::iter::once(&feature.missing))
                            .find(|bin| bin.label == attribute.bin)
                            .unwrap();
                        feature.coefficient * bin.woe
                    })
                    .sum::<f64>();
            let probability = 1.0 / (1.0 + (-log_odds_bad).exp());
            assert!((single.probability_of_default - probability).abs() < 1e-9);
        }
        let labels = table.labels("label", "bad").unwrap();
        assert!(crate::metrics::area_under_curve(&scores, &labels).unwrap() > 0.7);
    }

    #[test]
    fn missing_invalid_and_unseen_values_go_to_their_stated_bins() {
        let model = train(&training_table(), &target(), &TrainConfig::default()).unwrap();
        let grade = &model.features()[0];
        let riskiest = grade
            .bins
            .iter()
            .map(|bin| bin.points)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(riskiest, grade.bins[3].points);
        assert_eq!(grade.unseen.as_ref().unwrap().points, riskiest);
        let applicant = Applicant::new()
            .with("grade", Value::Text("z".into()))
            .with("income", Value::Text("lots".into()));
        let result = model.score(&applicant);
        let matched: Vec<Match> = result.attributes.iter().map(|a| a.matched).collect();
        assert_eq!(matched[0], Match::Unseen);
        assert_eq!(result.attributes[0].bin, UNSEEN_LABEL);
        assert_eq!(result.attributes[0].points, riskiest);
        assert_eq!(result.reasons[0].code, "grade");
        let income = model
            .features()
            .iter()
            .position(|f| f.name == "income")
            .unwrap();
        assert_eq!(matched[income], Match::Invalid);
        assert_eq!(result.attributes[income].bin, MISSING_LABEL);
        // Missing entirely, null, and empty text all land in the missing bin.
        for value in [None, Some(Value::Missing), Some(Value::Text("  ".into()))] {
            let mut applicant = Applicant::new();
            if let Some(value) = value {
                applicant.insert("grade", value);
            }
            let result = model.score(&applicant);
            assert_eq!(result.attributes[0].matched, Match::Missing);
            assert_eq!(result.attributes[0].points, grade.missing.points);
        }
        // 2% of incomes were missing in training, under the 5% minimum: the riskiest weight.
        let income = &model.features()[income];
        let riskiest_income = income.bins.iter().map(|bin| bin.woe).fold(0.0, f64::min);
        assert_eq!(income.missing.woe, riskiest_income);
        assert!(result.score.is_finite());
        // The neutral choice gives 0 points instead.
        let config = TrainConfig {
            missing_without_evidence: UnknownValue::Neutral,
            unseen_category: UnknownValue::Neutral,
            ..TrainConfig::default()
        };
        let neutral = train(&training_table(), &target(), &config).unwrap();
        let result = neutral.score(&Applicant::new().with("grade", Value::Text("z".into())));
        assert_eq!(result.attributes[0].points, 0.0);
        assert_eq!(result.attributes[1].points, 0.0);
    }

    #[test]
    fn reasons_name_the_costliest_bins() {
        let model = train(&training_table(), &target(), &TrainConfig::default()).unwrap();
        let risky = Applicant::new()
            .with("grade", Value::Text("d".into()))
            .with("income", Value::Number(10.0));
        let result = model.score(&risky);
        assert!(!result.reasons.is_empty() && result.reasons.len() <= REASONS_MAX);
        assert_eq!(result.reasons[0].code, "grade");
        for pair in result.reasons.windows(2) {
            assert!(pair[0].points_lost >= pair[1].points_lost);
        }
        let safe = Applicant::new()
            .with("grade", Value::Text("a".into()))
            .with("income", Value::Number(90.0));
        assert!(model.score(&safe).reasons.is_empty());
    }

    #[test]
    fn the_model_file_round_trips_and_is_validated() {
        let model = train(&training_table(), &target(), &TrainConfig::default()).unwrap();
        let json = model.to_json().unwrap();
        let again = Model::from_json(&json).unwrap();
        // Text round trips exactly; floats to within an ulp (serde_json's fast float parser).
        let labels = |model: &Model| -> Vec<String> {
            model
                .features()
                .iter()
                .flat_map(|f| f.bins.iter().map(|b| b.label.clone()))
                .collect()
        };
        assert_eq!(labels(&again), labels(&model));
        let table = training_table();
        let (first, second) = (
            model.score_table(&table).unwrap(),
            again.score_table(&table).unwrap(),
        );
        for (left, right) in first.iter().zip(&second) {
            assert!((left - right).abs() < 1e-9);
        }
        let mut broken: serde_json::Value = serde_json::from_str(&json).unwrap();
        broken["features"][0]["bins"][1]["categories"] = serde_json::json!(["a"]);
        let error = Model::from_json(&broken.to_string()).unwrap_err();
        assert_eq!(error.code(), "scoring_invalid_model");
        assert!(Model::from_json("{}").is_err());
    }
}
