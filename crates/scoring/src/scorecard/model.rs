//! A validated scorecard compiled for scoring: each feature's bin lookup and points, and
//! the scoring of one applicant, a batch or a table.

use super::batch::Column;
use super::*;

/// How a feature's bins are found at scoring time.
#[derive(Debug, Clone)]
pub(super) enum Lookup {
    /// Lower bounds of bins 1..; bin = number of bounds <= x.
    Numeric { bounds: Vec<f64> },
    /// Category text and its bin.
    Categorical { categories: Vec<(Box<str>, u32)> },
}

#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub(super) lookup: Lookup,
    pub(super) points: Vec<f64>,
    pub(super) missing_points: f64,
    pub(super) unseen_points: f64,
    pub(super) best_points: f64,
}

/// Where a value falls: `Some(bin)` or `None` with why not.
pub(super) fn locate(lookup: &Lookup, value: &Value) -> Result<usize, Match> {
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
    pub(super) file: ModelFile,
    pub(super) compiled: Vec<Compiled>,
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
