//! Fair credit decisions: which columns are protected attributes (never a scorecard feature),
//! when age may be one, and the disparate-impact report of `tally score eval --group-column`.
//!
//! # Protected attributes
//!
//! A column is protected when its name says it holds sex or gender, marital status, ethnicity
//! or race, religion, or national origin (words of the name, split at every character that
//! is not a letter or digit: `personal_status_and_sex` of the German credit data is sex and
//! marital status in one column), or when the training settings list it in `protected` (a
//! lender's own names, e.g. a column that stands in for one of these). Such a column is
//! never a feature: [`crate::train`] refuses a table that has one unless the settings exclude
//! it (the model file then records that it was left out and why it had to be), and loading
//! refuses a model that scores one. Why refuse rather than silently drop: the person training
//! states what the model was denied, and a model file from elsewhere cannot bring one in.
//!
//! Age (`age`, `birth`, `dob` in the name) is protected too unless the settings say why the
//! lender's market allows it (`age_allowed_because`, a non-empty reason written into the
//! model file). Where age is a lawful factor (many markets let a lender use it in an
//! empirically derived scorecard) the reason says which rule allows it.
//!
//! Recognition by name is a guard, not a proof of fairness: a column can stand in for a
//! protected attribute (a postcode for ethnicity). That is why a lender checks outcomes by
//! group with [`group_report`].
//!
//! # The group report
//!
//! For each value of a group column: rows, bad rows, approved rows, the approval rate, the
//! adverse impact ratio (the group's approval rate over the highest group's, the "four-fifths
//! rule" of the US Uniform Guidelines: below 0.8 is evidence of adverse impact), and the
//! distribution of scores. Every figure is an exact decimal with a stated rounding, so a
//! person can recompute it by hand:
//!
//! - a score is first rounded to 2 decimal places (half to even);
//! - quantiles are by nearest rank on those rounded scores: the q-quantile of n sorted scores
//!   is the one at rank `ceil(q * n)` (1-based); no interpolation;
//! - the mean is the exact sum of the rounded scores over n, rounded to 2 places half to even;
//! - the approval rate and the ratio are rounded to 4 places half to even, while the
//!   four-fifths check itself is done exactly in integers
//!   (`5 * approved * reference_rows >= 4 * reference_approved * rows`).

use crate::error::ScoringError;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a protected column holds, as recognised from its name or stated in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectedAttribute {
    Sex,
    MaritalStatus,
    SexAndMaritalStatus,
    Ethnicity,
    Religion,
    NationalOrigin,
    Age,
    /// A column the lender's settings name as protected.
    Declared,
}

impl ProtectedAttribute {
    /// Words for an error message.
    pub fn describe(self) -> &'static str {
        match self {
            ProtectedAttribute::Sex => "sex",
            ProtectedAttribute::MaritalStatus => "marital status",
            ProtectedAttribute::SexAndMaritalStatus => "sex and marital status",
            ProtectedAttribute::Ethnicity => "ethnicity",
            ProtectedAttribute::Religion => "religion",
            ProtectedAttribute::NationalOrigin => "national origin",
            ProtectedAttribute::Age => "age",
            ProtectedAttribute::Declared => "declared protected in the settings",
        }
    }
}

/// What a column name says it holds, if it is a protected attribute (see the module notes).
pub fn recognise(name: &str) -> Option<ProtectedAttribute> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let has = |word: &str| words.contains(&word);
    let sex = has("sex") || has("gender");
    let marital =
        has("marital") || has("married") || (has("personal") && has("status")) || has("marriage");
    match (sex, marital) {
        (true, true) => return Some(ProtectedAttribute::SexAndMaritalStatus),
        (true, false) => return Some(ProtectedAttribute::Sex),
        (false, true) => return Some(ProtectedAttribute::MaritalStatus),
        (false, false) => {}
    }
    if has("ethnicity") || has("ethnic") || has("race") || has("racial") {
        return Some(ProtectedAttribute::Ethnicity);
    }
    if has("religion") || has("religious") {
        return Some(ProtectedAttribute::Religion);
    }
    if has("nationality") || (has("national") && has("origin")) || (has("foreign") && has("worker"))
    {
        return Some(ProtectedAttribute::NationalOrigin);
    }
    if has("age") || has("birth") || has("dob") || has("birthdate") || has("birthday") {
        return Some(ProtectedAttribute::Age);
    }
    None
}

/// The settings that decide which columns may not be features.
#[derive(Debug, Clone, Copy)]
pub struct Protection<'a> {
    /// Further columns the lender declares protected.
    pub declared: &'a [String],
    /// Why age may be used in the lender's market; `None`: it may not.
    pub age_allowed_because: Option<&'a str>,
}

impl Protection<'_> {
    /// Checks the age reason: when given, it must say something.
    pub fn validate(&self) -> Result<(), ScoringError> {
        if self
            .age_allowed_because
            .is_some_and(|reason| reason.trim().is_empty())
        {
            return Err(ScoringError::InvalidConfiguration(
                "age_allowed_because must state why the lender's market allows age (or be left out)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Why `name` may not be a feature under these settings, if it may not.
    pub fn forbids(&self, name: &str) -> Option<ProtectedAttribute> {
        if self.declared.iter().any(|declared| declared == name) {
            return Some(ProtectedAttribute::Declared);
        }
        match recognise(name)? {
            ProtectedAttribute::Age if self.age_allowed_because.is_some() => None,
            attribute => Some(attribute),
        }
    }

    /// The first of `names` that may not be a feature, as the error naming it.
    pub fn check<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Result<(), ScoringError> {
        for name in names {
            if let Some(attribute) = self.forbids(name) {
                return Err(ScoringError::ProtectedAttribute {
                    column: name.to_string(),
                    attribute: attribute.describe(),
                });
            }
        }
        Ok(())
    }
}

/// The figures of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupFigures {
    pub group: String,
    pub rows: u64,
    pub bad: u64,
    pub approved: u64,
    /// approved / rows, 4 places half to even.
    pub approval_rate: Decimal,
    /// This group's approval rate over the reference group's, 4 places half to even; `None`
    /// when no group has an approval.
    pub adverse_impact_ratio: Option<Decimal>,
    /// Whether the ratio is at least four fifths, decided exactly.
    pub four_fifths_rule_met: bool,
    pub score: ScoreDistribution,
}

/// Scores of one group, each rounded to 2 places half to even first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreDistribution {
    pub min: Decimal,
    pub quartile_lower: Decimal,
    pub median: Decimal,
    pub quartile_upper: Decimal,
    pub max: Decimal,
    pub mean: Decimal,
}

/// The disparate-impact report over the values of one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    pub column: String,
    /// The group with the highest approval rate (the first by name on a tie): the ratios'
    /// denominator.
    pub reference_group: String,
    /// Groups by name.
    pub groups: Vec<GroupFigures>,
}

/// The name of the group of rows whose cell is missing.
pub const MISSING_GROUP: &str = "(missing)";

/// A score as the report counts it: 2 places, half to even; a score that is not finite
/// (never produced by a valid model) is refused.
fn rounded_score(score: f64) -> Result<Decimal, ScoringError> {
    Decimal::from_f64(score)
        .map(|value| {
            let mut value = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
            value.rescale(2);
            value
        })
        .ok_or(ScoringError::InvalidData(format!(
            "score {score} cannot be reported as a decimal"
        )))
}

/// The q-quantile (`numerator / denominator`) by nearest rank of sorted, non-empty `values`.
fn nearest_rank(sorted: &[Decimal], numerator: usize, denominator: usize) -> Decimal {
    let rank = (numerator * sorted.len()).div_ceil(denominator).max(1);
    sorted[rank - 1]
}

fn ratio(numerator: u64, denominator: u64) -> Decimal {
    if denominator == 0 {
        return Decimal::ZERO;
    }
    four_places(Decimal::from(numerator) / Decimal::from(denominator))
}

/// Rounded half to even and written with exactly four places.
fn four_places(value: Decimal) -> Decimal {
    let mut value = value.round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven);
    value.rescale(4);
    value
}

/// Approval rates, adverse impact ratios and score distributions by group: `groups[i]` is row
/// i's group (its cell of `column`), `scores[i]` its score, `approved[i]` whether the policy
/// approved it, `bad[i]` its label. All four must be as long.
pub fn group_report(
    column: &str,
    groups: &[&str],
    scores: &[f64],
    approved: &[bool],
    bad: &[bool],
) -> Result<GroupReport, ScoringError> {
    let rows = groups.len();
    if scores.len() != rows || approved.len() != rows || bad.len() != rows {
        return Err(ScoringError::Internal(
            "group report: groups, scores, decisions and labels differ in length",
        ));
    }
    if rows == 0 {
        return Err(ScoringError::InvalidData(
            "no rows to report by group".into(),
        ));
    }
    #[derive(Default)]
    struct Tally {
        rows: u64,
        bad: u64,
        approved: u64,
        scores: Vec<Decimal>,
    }
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for row in 0..rows {
        let name = if crate::data::is_missing(groups[row]) {
            MISSING_GROUP.to_string()
        } else {
            groups[row].trim().to_string()
        };
        let tally = tallies.entry(name).or_default();
        tally.rows += 1;
        tally.bad += u64::from(bad[row]);
        tally.approved += u64::from(approved[row]);
        tally.scores.push(rounded_score(scores[row])?);
    }
    // The highest approval rate, compared exactly as fractions (a/b > c/d ⇔ a·d > c·b).
    let mut reference: Option<(&String, &Tally)> = None;
    for (name, tally) in &tallies {
        let better = reference.is_none_or(|(_, best)| {
            u128::from(tally.approved) * u128::from(best.rows)
                > u128::from(best.approved) * u128::from(tally.rows)
        });
        if better {
            reference = Some((name, tally));
        }
    }
    let Some((reference_name, reference_tally)) = reference else {
        return Err(ScoringError::Internal("group report: no group"));
    };
    let reference_group = reference_name.clone();
    let (reference_rows, reference_approved) = (reference_tally.rows, reference_tally.approved);
    let mut figures = Vec::with_capacity(tallies.len());
    for (name, mut tally) in tallies {
        tally.scores.sort_unstable();
        let sum: Decimal = tally.scores.iter().copied().sum();
        let count = tally.scores.len();
        let adverse_impact_ratio = (reference_approved > 0).then(|| {
            four_places(
                Decimal::from(tally.approved) * Decimal::from(reference_rows)
                    / (Decimal::from(reference_approved) * Decimal::from(tally.rows)),
            )
        });
        let four_fifths_rule_met = 5 * u128::from(tally.approved) * u128::from(reference_rows)
            >= 4 * u128::from(reference_approved) * u128::from(tally.rows);
        figures.push(GroupFigures {
            group: name,
            rows: tally.rows,
            bad: tally.bad,
            approved: tally.approved,
            approval_rate: ratio(tally.approved, tally.rows),
            adverse_impact_ratio,
            four_fifths_rule_met,
            score: ScoreDistribution {
                min: tally.scores[0],
                quartile_lower: nearest_rank(&tally.scores, 1, 4),
                median: nearest_rank(&tally.scores, 1, 2),
                quartile_upper: nearest_rank(&tally.scores, 3, 4),
                max: tally.scores[count - 1],
                mean: {
                    let mut mean = (sum / Decimal::from(count as u64))
                        .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
                    mean.rescale(2);
                    mean
                },
            },
        });
    }
    Ok(GroupReport {
        column: column.to_string(),
        reference_group,
        groups: figures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_columns_are_recognised_by_the_words_of_their_names() {
        let cases = [
            (
                "personal_status_and_sex",
                Some(ProtectedAttribute::SexAndMaritalStatus),
            ),
            ("Gender", Some(ProtectedAttribute::Sex)),
            ("marital-status", Some(ProtectedAttribute::MaritalStatus)),
            ("ethnicity", Some(ProtectedAttribute::Ethnicity)),
            ("applicant race", Some(ProtectedAttribute::Ethnicity)),
            ("religion", Some(ProtectedAttribute::Religion)),
            ("foreign_worker", Some(ProtectedAttribute::NationalOrigin)),
            ("national_origin", Some(ProtectedAttribute::NationalOrigin)),
            ("age_in_years", Some(ProtectedAttribute::Age)),
            ("date_of_birth", Some(ProtectedAttribute::Age)),
            // Words, not substrings: a mortgage or a status is not age or sex.
            ("mortgage_balance", None),
            ("status_of_existing_checking_account", None),
            ("average_balance", None),
            ("essex_branch", None),
            ("credit_amount", None),
        ];
        for (name, expected) in cases {
            assert_eq!(recognise(name), expected, "{name}");
        }
    }

    #[test]
    fn age_is_allowed_only_with_a_stated_reason_and_declared_columns_are_forbidden() {
        let declared = vec!["postcode".to_string()];
        let forbidding = Protection {
            declared: &declared,
            age_allowed_because: None,
        };
        assert_eq!(
            forbidding.forbids("age_in_years"),
            Some(ProtectedAttribute::Age)
        );
        assert_eq!(
            forbidding.forbids("postcode"),
            Some(ProtectedAttribute::Declared)
        );
        assert_eq!(forbidding.forbids("purpose"), None);
        let error = forbidding
            .check(["purpose", "postcode", "age_in_years"])
            .unwrap_err();
        assert_eq!(error.code(), "scoring_protected_attribute");
        assert!(error.to_string().contains("\"postcode\""), "{error}");
        let allowing = Protection {
            declared: &[],
            age_allowed_because: Some("the market's law allows age in a validated scorecard"),
        };
        assert!(allowing.validate().is_ok());
        assert_eq!(allowing.forbids("age_in_years"), None);
        assert_eq!(
            allowing.forbids("personal_status_and_sex"),
            Some(ProtectedAttribute::SexAndMaritalStatus)
        );
        let empty = Protection {
            declared: &[],
            age_allowed_because: Some("  "),
        };
        assert!(empty.validate().is_err());
    }

    fn decimal(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// Six applicants in two groups, every figure computed by hand in the comments.
    #[test]
    fn the_report_by_group_matches_figures_computed_by_hand() {
        let groups = ["f", "m", "f", "m", "f", "m", "m"];
        let scores = [510.004, 620.0, 480.5, 700.125, 530.0, 455.0, 600.0];
        let approved = [true, true, false, true, true, false, true];
        let bad = [false, false, true, false, false, true, false];
        let report = group_report("sex", &groups, &scores, &approved, &bad).unwrap();
        assert_eq!(report.column, "sex");
        // f: 2 of 3 approved = 0.6667; m: 3 of 4 = 0.75, the reference.
        assert_eq!(report.reference_group, "m");
        let female = &report.groups[0];
        assert_eq!(female.group, "f");
        assert_eq!((female.rows, female.bad, female.approved), (3, 1, 2));
        assert_eq!(female.approval_rate, decimal("0.6667"));
        // Written with their stated places, as the JSON report shows them.
        assert_eq!(
            serde_json::to_value(&report.groups[1]).unwrap()["approval_rate"],
            "0.7500"
        );
        assert_eq!(
            serde_json::to_value(&report.groups[1]).unwrap()["score"]["min"],
            "455.00"
        );
        // (2/3) / (3/4) = 8/9 = 0.88888… → 0.8889; 5·2·4 = 40 ≥ 4·3·3 = 36: met.
        assert_eq!(female.adverse_impact_ratio, Some(decimal("0.8889")));
        assert!(female.four_fifths_rule_met);
        // Rounded scores 480.50, 510.00, 530.00; ranks ceil(0.75) = 1, ceil(1.5) = 2,
        // ceil(2.25) = 3; mean 1520.50 / 3 = 506.8333… → 506.83.
        assert_eq!(
            female.score,
            ScoreDistribution {
                min: decimal("480.50"),
                quartile_lower: decimal("480.50"),
                median: decimal("510.00"),
                quartile_upper: decimal("530.00"),
                max: decimal("530.00"),
                mean: decimal("506.83"),
            }
        );
        let male = &report.groups[1];
        assert_eq!((male.rows, male.bad, male.approved), (4, 1, 3));
        assert_eq!(male.approval_rate, decimal("0.75"));
        assert_eq!(male.adverse_impact_ratio, Some(decimal("1")));
        assert!(male.four_fifths_rule_met);
        // Rounded 455.00, 600.00, 620.00, 700.12 (700.125 half to even); ranks 1, 2, 3;
        // mean 2375.12 / 4 = 593.78.
        assert_eq!(
            male.score,
            ScoreDistribution {
                min: decimal("455.00"),
                quartile_lower: decimal("455.00"),
                median: decimal("600.00"),
                quartile_upper: decimal("620.00"),
                max: decimal("700.12"),
                mean: decimal("593.78"),
            }
        );
    }

    #[test]
    fn a_group_below_four_fifths_fails_the_rule_and_missing_cells_form_their_group() {
        // a: 1 of 4 approved (0.25); b: 2 of 2 (1, the reference); missing: 0 of 1.
        let groups = ["a", "a", "b", "a", "", "b", "a"];
        let scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let approved = [true, false, true, false, false, true, false];
        let bad = [false; 7];
        let report = group_report("g", &groups, &scores, &approved, &bad).unwrap();
        assert_eq!(report.reference_group, "b");
        let names: Vec<&str> = report
            .groups
            .iter()
            .map(|group| group.group.as_str())
            .collect();
        assert_eq!(names, ["(missing)", "a", "b"]);
        assert_eq!(report.groups[0].adverse_impact_ratio, Some(decimal("0")));
        assert!(!report.groups[0].four_fifths_rule_met);
        assert_eq!(report.groups[1].adverse_impact_ratio, Some(decimal("0.25")));
        assert!(!report.groups[1].four_fifths_rule_met);
        assert!(report.groups[2].four_fifths_rule_met);
        // Exactly four fifths meets the rule: 4 of 5 against 5 of 5.
        let report = group_report(
            "g",
            &["x", "x", "x", "x", "x", "y", "y", "y", "y", "y"],
            &[0.0; 10],
            &[true, true, true, true, false, true, true, true, true, true],
            &[false; 10],
        )
        .unwrap();
        assert_eq!(report.groups[0].adverse_impact_ratio, Some(decimal("0.8")));
        assert!(report.groups[0].four_fifths_rule_met);
        // No approval anywhere: no ratio, and nobody is below four fifths of nothing.
        let report =
            group_report("g", &["x", "y"], &[1.0, 2.0], &[false, false], &[false; 2]).unwrap();
        assert_eq!(report.groups[0].adverse_impact_ratio, None);
        assert!(group_report("g", &[], &[], &[], &[]).is_err());
        assert!(group_report("g", &["x"], &[f64::NAN], &[true], &[false]).is_err());
    }
}
