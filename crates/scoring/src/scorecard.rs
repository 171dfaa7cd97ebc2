//! The scorecard model: training (binning, selection by information value, logistic fit,
//! points), the readable JSON model file, and scoring of one applicant or a batch.

use crate::binning::{self, Bin, BinningConfig, FeatureKind, Trend, MISSING_LABEL};
use crate::data::{is_missing, Table};
use crate::error::ScoringError;
use crate::logistic;
use crate::tuning::Selection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod applicant;
mod batch;
mod file;
mod model;
mod settings;
mod training;

pub use applicant::{Applicant, Attribute, Match, ReasonCode, ScoreResult, Value};
pub use batch::Batch;
pub use file::{Feature, ModelFile, RejectedFeature, TrainingSummary};
pub use model::Model;
pub use settings::{Scaling, Target, TrainConfig, UnknownValue};
pub use training::{check_protected, train};

/// Identifies the model file format; bumped when the layout changes incompatibly.
pub const MODEL_FORMAT: &str = "tally-scorecard/1";

/// Most adverse reason codes returned for one applicant (an adverse-action notice commonly
/// lists up to four).
pub const REASONS_MAX: usize = 4;

/// Label of the bin used for a category not seen in training.
pub const UNSEEN_LABEL: &str = "unseen";

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
