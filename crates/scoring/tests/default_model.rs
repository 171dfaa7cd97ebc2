//! The shipped default model and policy: reproducible from the shipped data, and as good on the
//! held-out 30 % as reported.

// A test file: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use tally_scoring::metrics::area_under_curve;
use tally_scoring::policy::Outcome;
use tally_scoring::{
    stratified_split, train, Applicant, Model, Policy, Table, Target, TrainConfig, Value,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn german_credit() -> Table {
    let file = std::fs::File::open(root().join("data/germancredit.csv")).unwrap();
    Table::from_csv(file).unwrap()
}

fn default_model() -> Model {
    Model::from_json(
        &std::fs::read_to_string(root().join("models/default-scorecard.json")).unwrap(),
    )
    .unwrap()
}

/// `tally score train --data data/germancredit.csv --target creditability --bad-value bad
/// --split-seed 42 --out models/default-scorecard.json` gives the shipped model.
#[test]
fn the_default_model_is_reproduced_by_its_command() {
    let table = german_credit();
    let target = Target {
        column: "creditability".into(),
        bad_value: "bad".into(),
    };
    let labels = table.labels("creditability", "bad").unwrap();
    let split = stratified_split(&labels, 0.7, 42).unwrap();
    let trained = train(
        &table.select_rows(&split.train),
        &target,
        &TrainConfig::default(),
    )
    .unwrap();
    let shipped = default_model();
    assert_eq!(trained.features().len(), shipped.features().len());
    for (left, right) in trained.features().iter().zip(shipped.features()) {
        assert_eq!(left.name, right.name);
        assert!((left.coefficient - right.coefficient).abs() < 1e-9);
        assert!((left.missing.points - right.missing.points).abs() < 1e-9);
        let unseen =
            |feature: &tally_scoring::Feature| feature.unseen.as_ref().map(|bin| bin.points);
        match (unseen(left), unseen(right)) {
            (Some(left), Some(right)) => assert!((left - right).abs() < 1e-9),
            (None, None) => {}
            other => panic!("unseen bins differ: {other:?}"),
        }
        let labels = |feature: &tally_scoring::Feature| -> Vec<String> {
            feature.bins.iter().map(|bin| bin.label.clone()).collect()
        };
        assert_eq!(labels(left), labels(right));
    }
    // Test-set AUC of the shipped model on the held-out rows (reported in the bench README).
    let test = table.select_rows(&split.test);
    let test_labels = test.labels("creditability", "bad").unwrap();
    let scores = shipped.score_table(&test).unwrap();
    let auc = area_under_curve(&scores, &test_labels).unwrap();
    let retrained = area_under_curve(&trained.score_table(&test).unwrap(), &test_labels).unwrap();
    assert!((auc - retrained).abs() < 1e-12);
    assert!((auc - 0.758_994_709).abs() < 1e-6, "test AUC {auc}");
}

#[test]
fn the_default_policy_turns_scores_into_limits() {
    let policy = Policy::from_toml(
        &std::fs::read_to_string(root().join("models/default-policy.toml")).unwrap(),
    )
    .unwrap();
    let model = default_model();
    let applicant = Applicant::new()
        .with(
            "status_of_existing_checking_account",
            Value::Text("no checking account".into()),
        )
        .with("duration_in_month", Value::Number(12.0))
        .with(
            "credit_history",
            Value::Text("critical account/ other credits existing (not at this bank)".into()),
        )
        .with("age_in_years", Value::Number(45.0))
        .with("purpose", Value::Text("a purpose never seen".into()));
    let result = model.score(&applicant);
    assert!(result.score.is_finite());
    let decision = policy.decide(result.score);
    match decision.outcome {
        Outcome::Approve => assert!(decision.credit_limit.is_positive()),
        Outcome::Decline => assert!(decision.credit_limit.is_zero()),
    }
    assert_eq!(decision.credit_limit.currency().code(), "CNY");
    assert_eq!(policy.decide(300.0).outcome, Outcome::Decline);
    assert_eq!(policy.decide(700.0).credit_limit.minor(), 2_000_000);
}
