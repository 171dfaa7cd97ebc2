//! Training: protected columns refused, binning, selection by information value, the
//! logistic fit, and the points of the model file.

use super::model::locate;
use super::*;

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

pub(super) fn model_file(
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
