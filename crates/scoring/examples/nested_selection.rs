//! Nested cross-validation of the ways `tally score tune` can choose a setting, on the training
//! rows of a seeded split only (see `bench/scoring/PREREGISTRATION.md`).
//!
//! Outer loop: stratified folds of the training rows. On each outer training part the inner
//! search is `tally score tune`'s default (5 folds, 4 repeats, fold seed 42, the default grid);
//! the rules "best" and "one-standard-error" each choose a setting from the same inner results,
//! "defaults" trains the default settings (protected attributes excluded) without a search, and each model is scored on the
//! outer held-out part. The test rows of the split are never read.
//!
//! `cargo run --release -p tally-scoring --example nested_selection -- data/germancredit.csv 42`
//! (optional further arguments: outer folds, outer repeats, outer seed; default 5 2 7).

use std::time::Instant;
use tally_scoring::metrics::area_under_curve;
use tally_scoring::tuning::Partition;
use tally_scoring::{
    cross_validate, stratified_folds, stratified_split, train, FoldPlan, Grid, Rule, ScoringError,
    Table, Target, TrainConfig,
};

type Failure = Box<dyn std::error::Error + Send + Sync>;

const RULES: [&str; 3] = ["best", "one-standard-error", "defaults"];

struct OuterResult {
    auc: [f64; 3],
    chosen: [String; 2],
}

/// The default settings with the German credit data's protected attributes excluded, as the
/// shipped model is trained (training refuses the data otherwise).
fn shipped_settings() -> TrainConfig {
    TrainConfig {
        exclude: ["personal_status_and_sex", "age_in_years", "foreign_worker"]
            .map(String::from)
            .to_vec(),
        ..TrainConfig::default()
    }
}

fn describe(config: &TrainConfig) -> String {
    format!(
        "fine {} bins {} share {} monotonic {} iv {} l2 {}",
        config.binning.fine_bins,
        config.binning.bins_max,
        config.binning.bin_fraction_min,
        config.binning.monotonic,
        config.information_value_min,
        config.l2
    )
}

fn outer_fold(
    training: &Table,
    labels: &[bool],
    held_out_rows: &[usize],
    target: &Target,
) -> Result<OuterResult, ScoringError> {
    let inner_rows: Vec<usize> = (0..labels.len())
        .filter(|row| held_out_rows.binary_search(row).is_err())
        .collect();
    let inner = training.select_rows(&inner_rows);
    let held_out = training.select_rows(held_out_rows);
    let held_out_labels: Vec<bool> = held_out_rows.iter().map(|&row| labels[row]).collect();
    let inner_plan = FoldPlan {
        folds: 5,
        repeats: 4,
        seed: 42,
    };
    let configs = Grid::default().points(&shipped_settings())?;
    let results = cross_validate(&inner, target, &configs, &inner_plan)?;
    let choose = |rule: Rule| {
        rule.choose(&results)
            .map(|index| results[index].config.clone())
            .ok_or(ScoringError::Internal("every setting failed"))
    };
    let chosen_configs = [
        choose(Rule::Best)?,
        choose(Rule::OneStandardError)?,
        shipped_settings(),
    ];
    let mut auc = [0.0; 3];
    for (slot, config) in chosen_configs.iter().enumerate() {
        let model = train(&inner, target, config)?;
        let scores = model.score_table(&held_out)?;
        auc[slot] = area_under_curve(&scores, &held_out_labels)
            .ok_or(ScoringError::Internal("a stratified fold lacks a class"))?;
    }
    Ok(OuterResult {
        auc,
        chosen: [describe(&chosen_configs[0]), describe(&chosen_configs[1])],
    })
}

fn mean_and_deviation(values: &[f64]) -> (f64, f64) {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f64>()
        / (count - 1.0);
    (mean, variance.sqrt())
}

fn main() -> Result<(), Failure> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: u64| -> Result<u64, Failure> {
        match arguments.get(index) {
            Some(text) => Ok(text
                .parse()
                .map_err(|_| format!("argument {text:?} is not a whole number"))?),
            None => Ok(default),
        }
    };
    let path = arguments
        .first()
        .map_or("data/germancredit.csv", String::as_str);
    let split_seed = number(1, 42)?;
    let outer_plan = FoldPlan {
        folds: usize::try_from(number(2, 5)?)?,
        repeats: usize::try_from(number(3, 2)?)?,
        seed: number(4, 7)?,
    };
    let target = Target {
        column: "creditability".into(),
        bad_value: "bad".into(),
    };
    let file = std::fs::File::open(path).map_err(|error| format!("opening {path}: {error}"))?;
    let table = Table::from_csv(file)?;
    let labels = table.labels(&target.column, &target.bad_value)?;
    let split = stratified_split(&labels, 0.7, split_seed)?;
    let training = table.select_rows(&split.train);
    let training_labels = training.labels(&target.column, &target.bad_value)?;
    let partitions: Vec<Partition> = stratified_folds(&training_labels, &outer_plan)?;
    let folds: Vec<&Vec<usize>> = partitions.iter().flatten().collect();
    println!(
        "split seed {split_seed}: {} training rows; outer {} folds x {} repeats (seed {}); the test rows are not read",
        training_labels.len(),
        outer_plan.folds,
        outer_plan.repeats,
        outer_plan.seed
    );
    let started = Instant::now();
    // The outer folds are independent: two threads, one per core of the development machine.
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    let mut results: Vec<Option<Result<OuterResult, ScoringError>>> =
        (0..folds.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        for (worker, chunk) in results
            .chunks_mut(folds.len().div_ceil(threads))
            .enumerate()
        {
            let (training, training_labels, target, folds) =
                (&training, &training_labels, &target, &folds);
            scope.spawn(move || {
                let first = worker * folds.len().div_ceil(threads);
                for (offset, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(outer_fold(
                        training,
                        training_labels,
                        folds[first + offset],
                        target,
                    ));
                }
            });
        }
    });
    let results = results
        .into_iter()
        .map(|result| result.ok_or(ScoringError::Internal("an outer fold was not run"))?)
        .collect::<Result<Vec<OuterResult>, ScoringError>>()?;
    println!(
        "outer fold | {} | chosen by best | chosen by one-standard-error",
        RULES.join(" | ")
    );
    for (index, result) in results.iter().enumerate() {
        println!(
            "{} | {:.4} | {:.4} | {:.4} | {} | {}",
            index + 1,
            result.auc[0],
            result.auc[1],
            result.auc[2],
            result.chosen[0],
            result.chosen[1]
        );
    }
    for (slot, rule) in RULES.iter().enumerate() {
        let values: Vec<f64> = results.iter().map(|result| result.auc[slot]).collect();
        let (mean, deviation) = mean_and_deviation(&values);
        println!("{rule}: mean outer AUC {mean:.4} (sd {deviation:.4})");
    }
    for (left, right) in [(1, 0), (2, 0), (1, 2)] {
        let differences: Vec<f64> = results
            .iter()
            .map(|result| result.auc[left] - result.auc[right])
            .collect();
        let (mean, deviation) = mean_and_deviation(&differences);
        let wins = differences
            .iter()
            .filter(|&&difference| difference > 0.0)
            .count();
        println!(
            "{} - {}: mean {mean:+.4} (sd {deviation:.4}), ahead on {wins} of {} folds",
            RULES[left],
            RULES[right],
            differences.len()
        );
    }
    println!("{:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
