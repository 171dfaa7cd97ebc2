//! Choice of training settings by stratified k-fold cross-validation on the training data only:
//! seeded folds, a small grid of settings, the mean held-out AUC of each, one setting chosen by
//! a stated [`Rule`] and retrained on all the training rows. The test rows are never seen here.

use crate::data::Table;
use crate::error::ScoringError;
use crate::metrics::area_under_curve;
use crate::scorecard::{train, Model, Target, TrainConfig};
use serde::{Deserialize, Serialize};
use tally_core::SplitMix64;

/// One way of cutting the rows into folds: each fold's rows, in ascending order.
pub type Partition = Vec<Vec<usize>>;

/// Most folds; more would leave too few rows of a class in each.
pub const FOLDS_MAX: usize = 50;

/// Most repetitions of the fold cut.
pub const REPEATS_MAX: usize = 100;

/// Most points of a grid, so that a mistyped grid fails clearly instead of running for hours.
pub const GRID_POINTS_MAX: usize = 10_000;

/// How the folds are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldPlan {
    /// Number of folds (k).
    pub folds: usize,
    /// Number of independent cuts into k folds; each setting is scored on all of them.
    pub repeats: usize,
    /// Seed of the SplitMix64 generator that shuffles the rows.
    pub seed: u64,
}

impl FoldPlan {
    pub fn validate(&self) -> Result<(), ScoringError> {
        if !(2..=FOLDS_MAX).contains(&self.folds) {
            return Err(ScoringError::InvalidConfiguration(format!(
                "folds {} must be in 2..={FOLDS_MAX}",
                self.folds
            )));
        }
        if !(1..=REPEATS_MAX).contains(&self.repeats) {
            return Err(ScoringError::InvalidConfiguration(format!(
                "repeats {} must be in 1..={REPEATS_MAX}",
                self.repeats
            )));
        }
        Ok(())
    }
}

/// Seeded, stratified folds: for each repeat, within the bad rows and within the good rows
/// separately, a Fisher–Yates shuffle (one SplitMix64 generator for all repeats) and then the
/// i-th shuffled row goes to fold `i mod k`, so each fold holds a k-th of each class (give or
/// take one row). Every class needs at least k rows, so that each fold has both classes.
pub fn stratified_folds(labels: &[bool], plan: &FoldPlan) -> Result<Vec<Partition>, ScoringError> {
    plan.validate()?;
    let bad = labels.iter().filter(|&&label| label).count();
    let good = labels.len() - bad;
    if bad < plan.folds || good < plan.folds {
        return Err(ScoringError::InvalidData(format!(
            "{} folds need at least {} bad and {} good rows; there are {bad} and {good}",
            plan.folds, plan.folds, plan.folds
        )));
    }
    let mut generator = SplitMix64::new(plan.seed);
    let mut partitions = Vec::with_capacity(plan.repeats);
    for _ in 0..plan.repeats {
        let mut folds: Partition = vec![Vec::new(); plan.folds];
        for class in [true, false] {
            let mut rows: Vec<usize> = (0..labels.len())
                .filter(|&row| labels[row] == class)
                .collect();
            for index in (1..rows.len()).rev() {
                let other = generator.index_below(index + 1);
                rows.swap(index, other);
            }
            for (position, &row) in rows.iter().enumerate() {
                folds[position % plan.folds].push(row);
            }
        }
        for fold in &mut folds {
            fold.sort_unstable();
        }
        partitions.push(folds);
    }
    Ok(partitions)
}

/// The settings tried: every combination of the listed values (a Cartesian grid). Settings not
/// listed keep the base configuration's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grid {
    /// Quantile fine classes of numeric features before merging (coarse classing).
    pub fine_bins: Vec<usize>,
    /// Most bins per feature.
    pub bins_max: Vec<usize>,
    /// Least share of the training rows in each bin.
    pub bin_fraction_min: Vec<f64>,
    /// Whether bins must have a monotonic bad rate.
    pub monotonic: Vec<bool>,
    /// Least information value for a feature to be kept.
    pub information_value_min: Vec<f64>,
    /// L2 penalty on the coefficients.
    pub l2: Vec<f64>,
}

impl Default for Grid {
    /// The documented default grid: 2 × 4 × 3 × 2 × 2 × 5 = 480 settings around the usual
    /// scorecard choices (20 fine classes, 5 bins of 5 %, IV 0.02), from unpenalised to
    /// strongly penalised.
    fn default() -> Self {
        Self {
            fine_bins: vec![10, 20],
            bins_max: vec![4, 5, 6, 8],
            bin_fraction_min: vec![0.03, 0.05, 0.1],
            monotonic: vec![true, false],
            information_value_min: vec![0.0, 0.02],
            l2: vec![0.0, 0.01, 0.1, 1.0, 10.0],
        }
    }
}

impl Grid {
    /// Parses a grid written as TOML; absent keys keep the default grid's values.
    pub fn from_toml(text: &str) -> Result<Grid, ScoringError> {
        toml::from_str(text).map_err(|error| ScoringError::InvalidConfiguration(error.to_string()))
    }

    /// Every combination, in a fixed order (the last setting listed varies fastest), applied to
    /// `base`. Combinations the binning refuses (more bins than fine classes) are left out.
    pub fn points(&self, base: &TrainConfig) -> Result<Vec<TrainConfig>, ScoringError> {
        let sizes = [
            self.fine_bins.len(),
            self.bins_max.len(),
            self.bin_fraction_min.len(),
            self.monotonic.len(),
            self.information_value_min.len(),
            self.l2.len(),
        ];
        if sizes.contains(&0) {
            return Err(ScoringError::InvalidConfiguration(
                "every setting of the grid needs at least one value".into(),
            ));
        }
        let count = sizes
            .iter()
            .try_fold(1usize, |product, &size| product.checked_mul(size))
            .filter(|&count| count <= GRID_POINTS_MAX)
            .ok_or_else(|| {
                ScoringError::InvalidConfiguration(format!(
                    "the grid has more than {GRID_POINTS_MAX} points"
                ))
            })?;
        let mut points = Vec::with_capacity(count);
        for &fine_bins in &self.fine_bins {
            for &bins_max in &self.bins_max {
                for &bin_fraction_min in &self.bin_fraction_min {
                    for &monotonic in &self.monotonic {
                        for &information_value_min in &self.information_value_min {
                            for &l2 in &self.l2 {
                                if bins_max > fine_bins {
                                    continue;
                                }
                                let mut config = base.clone();
                                config.binning.fine_bins = fine_bins;
                                config.binning.bins_max = bins_max;
                                config.binning.bin_fraction_min = bin_fraction_min;
                                config.binning.monotonic = monotonic;
                                config.information_value_min = information_value_min;
                                config.l2 = l2;
                                config.binning.validate()?;
                                if !(l2 >= 0.0 && l2.is_finite()) {
                                    return Err(ScoringError::InvalidConfiguration(format!(
                                        "l2 {l2} must be finite and not negative"
                                    )));
                                }
                                points.push(config);
                            }
                        }
                    }
                }
            }
        }
        Ok(points)
    }
}

/// The cross-validated result of one setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    pub config: TrainConfig,
    /// Held-out AUC of each fold, repeat by repeat; empty when training failed.
    pub fold_auc: Vec<f64>,
    /// Mean of `fold_auc`; NaN when training failed.
    pub mean_auc: f64,
    /// Sample standard deviation of `fold_auc`.
    pub standard_deviation: f64,
    /// Why training failed on some fold (the setting is then never chosen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The rows of one fold's training part and held-out part.
struct FoldTables {
    train: Table,
    held_out: Table,
    held_out_labels: Vec<bool>,
}

fn fold_tables(table: &Table, labels: &[bool], partitions: &[Partition]) -> Vec<FoldTables> {
    let mut tables = Vec::new();
    for partition in partitions {
        for (index, held_out) in partition.iter().enumerate() {
            let mut train_rows: Vec<usize> = partition
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .flat_map(|(_, rows)| rows.iter().copied())
                .collect();
            train_rows.sort_unstable();
            tables.push(FoldTables {
                train: table.select_rows(&train_rows),
                held_out: table.select_rows(held_out),
                held_out_labels: held_out.iter().map(|&row| labels[row]).collect(),
            });
        }
    }
    tables
}

fn mean_and_deviation(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let variance = values
        .iter()
        .map(|value| (value - mean) * (value - mean))
        .sum::<f64>()
        / (count - 1.0);
    (mean, variance.sqrt())
}

fn evaluate(config: &TrainConfig, target: &Target, folds: &[FoldTables]) -> PointResult {
    let mut fold_auc = Vec::with_capacity(folds.len());
    for fold in folds {
        let auc = train(&fold.train, target, config).and_then(|model| {
            let scores = model.score_table(&fold.held_out)?;
            area_under_curve(&scores, &fold.held_out_labels)
                .ok_or(ScoringError::Internal("a stratified fold lacks a class"))
        });
        match auc {
            Ok(auc) => fold_auc.push(auc),
            Err(error) => {
                return PointResult {
                    config: config.clone(),
                    fold_auc: Vec::new(),
                    mean_auc: f64::NAN,
                    standard_deviation: f64::NAN,
                    error: Some(error.to_string()),
                }
            }
        }
    }
    let (mean_auc, standard_deviation) = mean_and_deviation(&fold_auc);
    PointResult {
        config: config.clone(),
        fold_auc,
        mean_auc,
        standard_deviation,
        error: None,
    }
}

/// Cross-validates each setting on the same folds of `table` (the training data).
pub fn cross_validate(
    table: &Table,
    target: &Target,
    configs: &[TrainConfig],
    plan: &FoldPlan,
) -> Result<Vec<PointResult>, ScoringError> {
    for config in configs {
        crate::scorecard::check_protected(table, target, config)?;
    }
    let labels = table.labels(&target.column, &target.bad_value)?;
    let partitions = stratified_folds(&labels, plan)?;
    let folds = fold_tables(table, &labels, &partitions);
    Ok(configs
        .iter()
        .map(|config| evaluate(config, target, &folds))
        .collect())
}

/// How one setting is chosen from the cross-validated results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rule {
    /// The greatest mean held-out AUC; on a tie the first in grid order.
    #[default]
    Best,
    /// The simplest setting whose mean AUC is within one standard error of the best (Breiman
    /// et al.'s rule, glmnet's `lambda.1se`): the maximum of many noisy estimates is
    /// optimistic, and a simpler scorecard that is statistically as good generalises as well
    /// or better. See [`one_standard_error`] for the order of simplicity.
    OneStandardError,
}

impl Rule {
    /// The rule's name on the command line and in the model file.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Best => "best",
            Rule::OneStandardError => "one-standard-error",
        }
    }

    /// Parses a rule's name, as [`Rule::name`] writes it.
    pub fn from_name(name: &str) -> Result<Rule, ScoringError> {
        match name {
            "best" => Ok(Rule::Best),
            "one-standard-error" => Ok(Rule::OneStandardError),
            other => Err(ScoringError::InvalidConfiguration(format!(
                "unknown selection rule {other:?}; expected \"best\" or \"one-standard-error\""
            ))),
        }
    }

    /// The index into `results` of the setting this rule chooses; `None` when every setting
    /// failed.
    pub fn choose(self, results: &[PointResult]) -> Option<usize> {
        match self {
            Rule::Best => best(results),
            Rule::OneStandardError => one_standard_error(results),
        }
    }
}

/// Whether a setting was cross-validated on every fold.
fn usable(result: &PointResult) -> bool {
    result.error.is_none() && !result.mean_auc.is_nan()
}

/// The setting with the greatest mean held-out AUC; on a tie the first in grid order. `None`
/// when every setting failed.
pub fn best(results: &[PointResult]) -> Option<usize> {
    let mut chosen: Option<usize> = None;
    for (index, result) in results.iter().enumerate() {
        if !usable(result) {
            continue;
        }
        if chosen.is_none_or(|best| result.mean_auc > results[best].mean_auc) {
            chosen = Some(index);
        }
    }
    chosen
}

/// The one-standard-error rule. With `m` the best mean AUC and `s` its standard error (the
/// sample standard deviation of its fold AUCs over the square root of their number), among the
/// settings whose mean AUC is at least `m - s` the simplest: fewest most-bins, then the largest
/// least bin share, then monotonic before not, then the largest least IV, then the largest L2,
/// then the fewest fine classes, then grid order. The folds of repeated cross-validation
/// overlap, so `s` understates the true uncertainty: the rule errs towards the best setting.
pub fn one_standard_error(results: &[PointResult]) -> Option<usize> {
    let top = &results[best(results)?];
    let standard_error = top.standard_deviation / (top.fold_auc.len() as f64).sqrt();
    let threshold = top.mean_auc - standard_error;
    (0..results.len())
        .filter(|&index| usable(&results[index]) && results[index].mean_auc >= threshold)
        .min_by(|&left, &right| {
            let (left_config, right_config) = (&results[left].config, &results[right].config);
            let (a, b) = (&left_config.binning, &right_config.binning);
            a.bins_max
                .cmp(&b.bins_max)
                .then(b.bin_fraction_min.total_cmp(&a.bin_fraction_min))
                .then(b.monotonic.cmp(&a.monotonic))
                .then(
                    right_config
                        .information_value_min
                        .total_cmp(&left_config.information_value_min),
                )
                .then(right_config.l2.total_cmp(&left_config.l2))
                .then(a.fine_bins.cmp(&b.fine_bins))
                .then(left.cmp(&right))
        })
}

/// How the settings of a model were chosen; stored in the model file for the auditor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub method: String,
    pub plan: FoldPlan,
    pub grid: Grid,
    /// Settings evaluated (the grid's points).
    pub points: usize,
    /// Settings whose training failed on some fold.
    pub failed: usize,
    /// Mean and sample standard deviation of the chosen setting's held-out fold AUCs.
    pub mean_auc: f64,
    pub standard_deviation: f64,
    pub fold_auc: Vec<f64>,
}

/// A model trained with the settings chosen by cross-validation, and the evidence.
#[derive(Debug, Clone)]
pub struct Tuned {
    pub model: Model,
    pub results: Vec<PointResult>,
    /// Index into `results` of the chosen setting.
    pub chosen: usize,
}

/// Cross-validates every point of `grid` (applied to `base`) on `table`, chooses a setting by
/// `rule`, and retrains it on all of `table`. The model file records the selection.
pub fn tune(
    table: &Table,
    target: &Target,
    base: &TrainConfig,
    grid: &Grid,
    plan: &FoldPlan,
    rule: Rule,
) -> Result<Tuned, ScoringError> {
    let configs = grid.points(base)?;
    // A protected column would fail every setting alike: say so once, by name.
    crate::scorecard::check_protected(table, target, base)?;
    let results = cross_validate(table, target, &configs, plan)?;
    let chosen = rule.choose(&results).ok_or_else(|| {
        ScoringError::InvalidData("training failed for every setting of the grid".into())
    })?;
    let winner = &results[chosen];
    let model = train(table, target, &winner.config)?;
    let choice = match rule {
        Rule::Best => {
            "the setting with the greatest mean held-out AUC (ties: the first in grid order)"
        }
        Rule::OneStandardError => {
            "the simplest setting within one standard error of the greatest mean held-out AUC \
             (one-standard-error rule)"
        }
    };
    let selection = Selection {
        method: format!(
            "stratified {}-fold cross-validation repeated {} times (seed {}) on the training rows; \
             {choice}, retrained on all the training rows",
            plan.folds, plan.repeats, plan.seed
        ),
        plan: *plan,
        grid: grid.clone(),
        points: results.len(),
        failed: results
            .iter()
            .filter(|result| result.error.is_some())
            .count(),
        mean_auc: winner.mean_auc,
        standard_deviation: winner.standard_deviation,
        fold_auc: winner.fold_auc.clone(),
    };
    let model = model.with_selection(selection)?;
    Ok(Tuned {
        model,
        results,
        chosen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<bool> {
        (0..103).map(|row| row % 10 < 3).collect()
    }

    #[test]
    fn folds_are_stratified_disjoint_and_complete() {
        let labels = labels();
        let plan = FoldPlan {
            folds: 5,
            repeats: 3,
            seed: 7,
        };
        let partitions = stratified_folds(&labels, &plan).unwrap();
        assert_eq!(partitions.len(), 3);
        let bad_total = labels.iter().filter(|&&bad| bad).count();
        let good_total = labels.len() - bad_total;
        for partition in &partitions {
            assert_eq!(partition.len(), 5);
            let mut all: Vec<usize> = partition.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(
                all,
                (0..labels.len()).collect::<Vec<_>>(),
                "disjoint, complete"
            );
            for fold in partition {
                let bad = fold.iter().filter(|&&row| labels[row]).count();
                let good = fold.len() - bad;
                assert!(bad == bad_total / 5 || bad == bad_total / 5 + 1, "{bad}");
                assert!(
                    good == good_total / 5 || good == good_total / 5 + 1,
                    "{good}"
                );
                assert!(fold.windows(2).all(|pair| pair[0] < pair[1]));
            }
        }
        // The repeats are different cuts.
        assert_ne!(partitions[0], partitions[1]);
    }

    #[test]
    fn folds_are_deterministic_for_a_seed() {
        let labels = labels();
        let plan = FoldPlan {
            folds: 4,
            repeats: 2,
            seed: 42,
        };
        let first = stratified_folds(&labels, &plan).unwrap();
        assert_eq!(first, stratified_folds(&labels, &plan).unwrap());
        let other = FoldPlan { seed: 43, ..plan };
        assert_ne!(first, stratified_folds(&labels, &other).unwrap());
    }

    #[test]
    fn folds_refuse_too_few_rows_of_a_class() {
        let labels = [true, true, false, false, false, false];
        let plan = FoldPlan {
            folds: 3,
            repeats: 1,
            seed: 1,
        };
        assert!(stratified_folds(&labels, &plan).is_err());
        assert!(stratified_folds(&labels, &FoldPlan { folds: 2, ..plan }).is_ok());
        assert!(stratified_folds(&labels, &FoldPlan { folds: 1, ..plan }).is_err());
        assert!(stratified_folds(&labels, &FoldPlan { repeats: 0, ..plan }).is_err());
    }

    fn result(mean_auc: f64, error: bool) -> PointResult {
        PointResult {
            config: TrainConfig::default(),
            fold_auc: if error { Vec::new() } else { vec![mean_auc] },
            mean_auc: if error { f64::NAN } else { mean_auc },
            standard_deviation: 0.0,
            error: error.then(|| "failed".to_string()),
        }
    }

    #[test]
    fn best_picks_the_greatest_mean_and_the_first_of_ties() {
        let results = [
            result(0.70, false),
            result(0.90, true),
            result(0.75, false),
            result(0.74, false),
            result(0.75, false),
        ];
        assert_eq!(best(&results), Some(2));
        assert_eq!(best(&[result(0.8, true)]), None);
        assert_eq!(best(&[]), None);
    }

    fn setting(bins_max: usize, l2: f64, fold_auc: &[f64]) -> PointResult {
        let mut config = TrainConfig::default();
        config.binning.bins_max = bins_max;
        config.l2 = l2;
        let (mean_auc, standard_deviation) = mean_and_deviation(fold_auc);
        PointResult {
            config,
            fold_auc: fold_auc.to_vec(),
            mean_auc,
            standard_deviation,
            error: None,
        }
    }

    #[test]
    fn one_standard_error_picks_the_simplest_setting_close_enough_to_the_best() {
        // The best: mean 0.80, sample sd 0.04 over 4 folds, so its standard error is
        // 0.04 / sqrt(4) = 0.02 and the threshold is 0.78.
        let best_folds = [0.76, 0.84, 0.76, 0.84];
        let (mean, deviation) = mean_and_deviation(&best_folds);
        assert!((mean - 0.80).abs() < 1e-12);
        assert!((deviation - (0.0064_f64 / 3.0).sqrt() * 1.0).abs() < 1e-12);
        let threshold = 0.80 - deviation / 2.0;
        let results = [
            setting(8, 1.0, &best_folds),
            // Within one standard error, 6 bins.
            setting(6, 1.0, &[threshold + 0.001; 4]),
            // Simpler (4 bins) but below the threshold.
            setting(4, 1.0, &[threshold - 0.001; 4]),
            // 6 bins and more L2, within: the simplest of the eligible ones.
            setting(6, 10.0, &[threshold + 0.0005; 4]),
            // Simplest of all, but failed.
            PointResult {
                error: Some("failed".into()),
                ..setting(2, 10.0, &[])
            },
        ];
        assert_eq!(best(&results), Some(0));
        assert_eq!(Rule::Best.choose(&results), Some(0));
        assert_eq!(Rule::OneStandardError.choose(&results), Some(3));
        // With a single setting, or all folds equal (no spread), the best is the only choice.
        assert_eq!(one_standard_error(&results[..1]), Some(0));
        let flat = [setting(8, 1.0, &[0.8; 4]), setting(4, 1.0, &[0.799; 4])];
        assert_eq!(one_standard_error(&flat), Some(0));
        // Ties in simplicity fall to grid order.
        let tied = [
            setting(8, 1.0, &[0.8; 4]),
            setting(4, 1.0, &[0.8; 4]),
            setting(4, 1.0, &[0.8; 4]),
        ];
        assert_eq!(one_standard_error(&tied), Some(1));
        assert_eq!(one_standard_error(&[]), None);
        assert_eq!(one_standard_error(&results[4..]), None);
    }

    #[test]
    fn rules_are_named_and_parsed() {
        for rule in [Rule::Best, Rule::OneStandardError] {
            assert_eq!(Rule::from_name(rule.name()).unwrap(), rule);
        }
        let error = Rule::from_name("median").unwrap_err().to_string();
        assert!(
            error.contains("unknown selection rule \"median\""),
            "{error}"
        );
    }

    #[test]
    fn grid_points_cover_every_valid_combination_in_order() {
        let grid = Grid {
            fine_bins: vec![4, 10],
            bins_max: vec![3, 5],
            bin_fraction_min: vec![0.05],
            monotonic: vec![true, false],
            information_value_min: vec![0.02],
            l2: vec![1.0, 10.0],
        };
        let points = grid.points(&TrainConfig::default()).unwrap();
        // 2 * 2 * 2 * 2 = 16, less the 4 with 5 bins of 4 fine classes.
        assert_eq!(points.len(), 12);
        assert_eq!(points[0].binning.fine_bins, 4);
        assert_eq!(points[0].l2, 1.0);
        assert_eq!(points[1].l2, 10.0);
        assert!(!points[2].binning.monotonic);
        assert!(points
            .iter()
            .all(|point| point.binning.bins_max <= point.binning.fine_bins));
        let empty = Grid {
            l2: Vec::new(),
            ..grid.clone()
        };
        assert!(empty.points(&TrainConfig::default()).is_err());
        let negative = Grid {
            l2: vec![-1.0],
            ..grid
        };
        assert!(negative.points(&TrainConfig::default()).is_err());
        assert_eq!(
            Grid::default()
                .points(&TrainConfig::default())
                .unwrap()
                .len(),
            480
        );
        let parsed = Grid::from_toml("l2 = [2.0]\nmonotonic = [true]").unwrap();
        assert_eq!(parsed.l2, [2.0]);
        assert_eq!(parsed.bins_max, Grid::default().bins_max);
        assert!(Grid::from_toml("l3 = [2.0]").is_err());
    }

    /// A small table where "grade" decides risk and "income" adds a little.
    fn table() -> Table {
        let mut rows = Vec::new();
        for index in 0..300u32 {
            let grade = ["a", "b", "c"][(index % 3) as usize];
            let income = index * 37 % 100;
            let risk = match grade {
                "a" => 0.1,
                "b" => 0.3,
                _ => 0.5,
            } + if income > 50 { -0.05 } else { 0.05 };
            let bad = f64::from(index * 7919 % 1000) / 1000.0 < risk;
            rows.push(vec![
                grade.to_string(),
                income.to_string(),
                if bad { "bad" } else { "good" }.to_string(),
            ]);
        }
        Table {
            headers: ["grade", "income", "label"].map(String::from).to_vec(),
            rows,
        }
    }

    #[test]
    fn tuning_picks_the_best_cross_validated_setting_and_records_it() {
        let target = Target {
            column: "label".into(),
            bad_value: "bad".into(),
        };
        let grid = Grid {
            fine_bins: vec![10],
            bins_max: vec![2, 4],
            bin_fraction_min: vec![0.05],
            monotonic: vec![true],
            information_value_min: vec![0.0],
            l2: vec![0.1, 1000.0],
        };
        let plan = FoldPlan {
            folds: 3,
            repeats: 2,
            seed: 5,
        };
        let tuned = tune(
            &table(),
            &target,
            &TrainConfig::default(),
            &grid,
            &plan,
            Rule::Best,
        )
        .unwrap();
        assert_eq!(tuned.results.len(), 4);
        for result in &tuned.results {
            assert_eq!(result.fold_auc.len(), 6);
            assert!(result.error.is_none());
        }
        let chosen = &tuned.results[tuned.chosen];
        assert!(tuned
            .results
            .iter()
            .all(|result| result.mean_auc <= chosen.mean_auc));
        // The retrained model carries the chosen setting and the evidence.
        let file = tuned.model.file();
        assert_eq!(file.training.config, chosen.config);
        let selection = file.selection.as_ref().unwrap();
        assert_eq!(selection.points, 4);
        assert_eq!(selection.mean_auc, chosen.mean_auc);
        // Deterministic: the same inputs give the same model file.
        let again = tune(
            &table(),
            &target,
            &TrainConfig::default(),
            &grid,
            &plan,
            Rule::Best,
        )
        .unwrap();
        assert_eq!(
            again.model.to_json().unwrap(),
            tuned.model.to_json().unwrap()
        );
        // And it survives the model file's round trip.
        let loaded = Model::from_json(&tuned.model.to_json().unwrap()).unwrap();
        let loaded = loaded.file().selection.as_ref().unwrap();
        assert_eq!(loaded.grid, selection.grid);
        assert!((loaded.mean_auc - selection.mean_auc).abs() < 1e-12);
    }
}
