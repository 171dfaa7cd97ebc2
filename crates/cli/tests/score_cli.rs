//! `tally score` and fair credit decisions: training refuses a protected attribute by name
//! until it is excluded, and `tally score eval --group-column` reports approval rates, the
//! adverse impact ratio and score distributions by group, checked against figures computed
//! by hand on a small fixture (a one-feature model whose points are round numbers).
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

mod support;
use support::{Run, BINARY};

fn tally(arguments: &[&str]) -> Run {
    Run::of(Command::new(BINARY).args(arguments).output().unwrap())
}

fn write(directory: &Path, name: &str, text: &str) -> String {
    let path = directory.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// 200 applicants: income 0 to 199, sex alternating, bad mostly below an income of 70.
fn training_data() -> String {
    let mut text = String::from("income,sex,label\n");
    for row in 0..200 {
        let bad = (row < 70 && row % 7 != 0) || row % 13 == 0;
        let sex = if row % 2 == 0 { "f" } else { "m" };
        let label = if bad { "bad" } else { "good" };
        text.push_str(&format!("{row},{sex},{label}\n"));
    }
    text
}

#[test]
fn training_refuses_a_protected_attribute_until_it_is_excluded() {
    let directory = tempfile::tempdir().unwrap();
    let data = write(directory.path(), "train.csv", &training_data());
    let model = directory.path().join("model.json").display().to_string();
    let common = [
        "score",
        "train",
        "--data",
        &data,
        "--target",
        "label",
        "--bad-value",
        "bad",
        "--out",
        &model,
    ];
    let refused = tally(&common);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains(
            "column \"sex\" is a protected attribute (sex): a credit scorecard may not use it"
        ),
        "{}",
        refused.stderr
    );
    assert!(!Path::new(&model).exists(), "nothing is written");
    let trained = tally(&[&common[..], &["--exclude", "sex"]].concat());
    assert_eq!(trained.code, 0, "{}", trained.stderr);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    let features: Vec<&str> = file["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|feature| feature["name"].as_str().unwrap())
        .collect();
    assert_eq!(features, ["income"]);
    assert_eq!(
        file["training"]["config"]["exclude"],
        serde_json::json!(["sex"])
    );
}

/// A scorecard of one feature: 500 points, 40 more from an income of 100.
const MODEL: &str = r#"{
  "format": "tally-scorecard/1",
  "target": { "column": "label", "bad_value": "bad" },
  "scaling": { "base_score": 600.0, "base_odds": 50.0, "points_to_double_odds": 20.0 },
  "intercept": 0.0,
  "base_points": 500.0,
  "features": [
    {
      "name": "income",
      "kind": "numeric",
      "trend": "decreasing",
      "information_value": 0.5,
      "coefficient": -1.0,
      "bins": [
        { "label": "< 100", "upper": 100.0, "good": 1, "bad": 2, "woe": -0.5, "points": 0.0 },
        { "label": ">= 100", "lower": 100.0, "good": 3, "bad": 0, "woe": 1.0, "points": 40.0 }
      ],
      "missing": { "label": "missing", "good": 0, "bad": 0, "woe": -0.5, "points": 0.0 }
    }
  ],
  "training": { "rows": 6, "good": 4, "bad": 2, "config": {}, "iterations": 1, "log_likelihood": 0.0 }
}"#;

/// Approve from 520 points.
const POLICY: &str = r#"currency = "CNY"

[[band]]
name = "decline"
decision = "decline"

[[band]]
name = "approve"
min_score = 520
decision = "approve"
credit_limit = "1000.00"
pricing_tier = "A"
"#;

#[test]
fn eval_by_group_reports_approval_rates_ratios_and_scores_as_computed_by_hand() {
    let directory = tempfile::tempdir().unwrap();
    let model = write(directory.path(), "model.json", MODEL);
    let policy = write(directory.path(), "policy.toml", POLICY);
    // Scores: a 500, 540, 540 (2 of 3 approved); b 500, 500, 540 (1 of 3).
    let data = write(
        directory.path(),
        "applicants.csv",
        "income,group,label\n50,a,bad\n150,a,good\n200,a,good\n20,b,bad\n30,b,good\n300,b,good\n",
    );
    let run = tally(&[
        "score",
        "eval",
        "--model",
        &model,
        "--data",
        &data,
        "--group-column",
        "group",
        "--policy",
        &policy,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["groups"],
        serde_json::json!({
            "column": "group",
            // a approves 2/3, b 1/3: a is the reference.
            "reference_group": "a",
            "groups": [
                {
                    "group": "a", "rows": 3, "bad": 1, "approved": 2,
                    "approval_rate": "0.6667",
                    "adverse_impact_ratio": "1.0000",
                    "four_fifths_rule_met": true,
                    // Ranks ceil(0.75) = 1, ceil(1.5) = 2, ceil(2.25) = 3; 1580 / 3 = 526.67.
                    "score": {
                        "min": "500.00", "quartile_lower": "500.00", "median": "540.00",
                        "quartile_upper": "540.00", "max": "540.00", "mean": "526.67"
                    }
                },
                {
                    "group": "b", "rows": 3, "bad": 1, "approved": 1,
                    "approval_rate": "0.3333",
                    // (1/3) / (2/3) = 0.5 < 0.8: evidence of adverse impact.
                    "adverse_impact_ratio": "0.5000",
                    "four_fifths_rule_met": false,
                    // 1540 / 3 = 513.33.
                    "score": {
                        "min": "500.00", "quartile_lower": "500.00", "median": "500.00",
                        "quartile_upper": "540.00", "max": "540.00", "mean": "513.33"
                    }
                }
            ]
        })
    );
    // The text report says the same.
    let text = tally(&[
        "score",
        "eval",
        "--model",
        &model,
        "--data",
        &data,
        "--group-column",
        "group",
        "--policy",
        &policy,
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let line = text
        .stdout
        .lines()
        .find(|line| line.starts_with("b "))
        .unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "b", "3", "1", "1", "0.3333", "0.5000", "NOT", "500.00", "500.00", "500.00", "540.00",
            "540.00", "513.33"
        ]
    );
    // A group column the data lacks is an error naming it.
    let missing = tally(&[
        "score",
        "eval",
        "--model",
        &model,
        "--data",
        &data,
        "--group-column",
        "sex",
    ]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("\"sex\""), "{}", missing.stderr);
}
