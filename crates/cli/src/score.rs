//! `tally score`: train (or tune by cross-validation), evaluate, apply and benchmark the credit
//! scorecard; write the seeded train/test split.

use anyhow::{bail, Context};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tally_core::SplitMix64;
use tally_scoring::{
    metrics, Applicant, Batch, FoldPlan, Grid, GroupReport, Model, Outcome, Policy, Rule, Table,
    Target, TrainConfig,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the seeded, stratified train/test split of a labelled CSV.
    Split(SplitArgs),
    /// Train a scorecard and write the model JSON.
    Train(TrainArgs),
    /// Choose the training settings by stratified k-fold cross-validation on the training rows,
    /// retrain the best on all of them and write the model JSON.
    Tune(TuneArgs),
    /// Print AUC, KS, Gini, the deciles with bad rates and (with --baseline) the PSI.
    Eval(EvalArgs),
    /// Score one applicant (JSON) or every row of a CSV; with a policy, decide too.
    Apply(ApplyArgs),
    /// Measure batch scoring speed on one core.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct SplitOptions {
    /// Use only the part of --data given by a stratified split with this seed.
    #[arg(long)]
    split_seed: Option<u64>,
    /// Share of each class that goes to training in the split.
    #[arg(long, default_value_t = 0.7)]
    train_fraction: f64,
}

#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    target: String,
    #[arg(long)]
    bad_value: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 0.7)]
    train_fraction: f64,
    #[arg(long)]
    train_out: PathBuf,
    #[arg(long)]
    test_out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// CSV with a header row and a label column.
    #[arg(long)]
    data: PathBuf,
    /// The label column.
    #[arg(long)]
    target: String,
    /// The label value that marks a bad outcome; every other value is good.
    #[arg(long)]
    bad_value: String,
    /// Where to write the model JSON.
    #[arg(long)]
    out: PathBuf,
    /// Train on the training part of this split of --data.
    #[command(flatten)]
    split: SplitOptions,
    /// Training settings as TOML (the `config` object of a model file); flags below override.
    #[arg(long)]
    config: Option<PathBuf>,
    /// L2 penalty on the coefficients.
    #[arg(long)]
    l2: Option<f64>,
    /// Score at the base odds.
    #[arg(long)]
    base_score: Option<f64>,
    /// Odds good:bad at the base score.
    #[arg(long)]
    base_odds: Option<f64>,
    /// Points to double the odds.
    #[arg(long)]
    pdo: Option<f64>,
    /// Most bins per feature.
    #[arg(long)]
    bins_max: Option<usize>,
    /// Least information value for a feature to be kept.
    #[arg(long)]
    information_value_min: Option<f64>,
    /// Quantile fine classes of numeric features before merging.
    #[arg(long)]
    fine_bins: Option<usize>,
    /// Least share of the training rows in each bin.
    #[arg(long)]
    bin_fraction_min: Option<f64>,
    /// Whether bins must have a monotonic bad rate (true or false).
    #[arg(long)]
    monotonic: Option<bool>,
    #[command(flatten)]
    fairness: FairnessOptions,
}

/// The columns a scorecard may not use (see `tally_scoring::fairness`).
#[derive(Debug, clap::Args)]
pub struct FairnessOptions {
    /// A column never used as a feature (repeat the flag for more); every protected attribute
    /// of the data (sex, marital status, ethnicity, religion, national origin, age) must be
    /// excluded, or training refuses naming it.
    #[arg(long = "exclude", value_name = "COLUMN")]
    exclude: Vec<String>,
    /// Why the law of the lender's market allows age as a feature; without it age is a
    /// protected attribute like the others. Written into the model file.
    #[arg(long, value_name = "REASON")]
    age_allowed_because: Option<String>,
}

impl FairnessOptions {
    fn apply(&self, config: &mut TrainConfig) {
        for column in &self.exclude {
            if !config.exclude.contains(column) {
                config.exclude.push(column.clone());
            }
        }
        if let Some(reason) = &self.age_allowed_because {
            config.age_allowed_because = Some(reason.clone());
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// CSV with a header row and a label column.
    #[arg(long)]
    data: PathBuf,
    /// The label column.
    #[arg(long)]
    target: String,
    /// The label value that marks a bad outcome; every other value is good.
    #[arg(long)]
    bad_value: String,
    /// Where to write the model JSON of the chosen setting.
    #[arg(long)]
    out: PathBuf,
    /// Tune and train on the training part of this split of --data (the test part is never read).
    #[command(flatten)]
    split: SplitOptions,
    /// Base training settings as TOML; the grid overrides the settings it lists.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The grid as TOML (keys fine_bins, bins_max, bin_fraction_min, monotonic,
    /// information_value_min, l2, each a list); absent keys keep the default grid's values.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Number of folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Number of independent cuts into folds (more cuts, a steadier choice).
    #[arg(long, default_value_t = 4)]
    repeats: usize,
    /// Seed of the fold shuffle.
    #[arg(long, default_value_t = 42)]
    fold_seed: u64,
    /// Write every setting's cross-validated AUC to this CSV.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Settings listed on the terminal, best first.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// How the setting is chosen: "best" (the greatest mean AUC) or "one-standard-error" (the
    /// simplest setting within one standard error of the best).
    #[arg(long, default_value = "best", value_parser = parse_rule)]
    rule: Rule,
    #[command(flatten)]
    fairness: FairnessOptions,
}

fn parse_rule(name: &str) -> Result<Rule, String> {
    Rule::from_name(name).map_err(|error| error.to_string())
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    /// Labelled CSV to evaluate on.
    #[arg(long)]
    data: PathBuf,
    /// Evaluate on the test part of this split of --data.
    #[command(flatten)]
    split: SplitOptions,
    /// A second data set (e.g. the training data, or last quarter's applicants) to compute the
    /// population stability index of the scores against.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Report approval rates, the adverse impact ratio (four-fifths rule) and score
    /// distributions for each value of this column, to check for disparate impact. The column
    /// need not be a feature (a protected attribute never is).
    #[arg(long, value_name = "NAME")]
    group_column: Option<String>,
    /// Score-band policy TOML that decides approval for --group-column (default: the policy
    /// Tally ships, models/default-policy.toml).
    #[arg(long, requires = "group_column")]
    policy: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[arg(long)]
    model: PathBuf,
    /// Policy TOML: adds the decision, credit limit and pricing tier.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// One applicant as a JSON object, e.g. '{"duration_in_month": 12, "purpose": "education"}'.
    #[arg(long, conflicts_with = "data", required_unless_present = "data")]
    applicant: Option<String>,
    /// CSV of applicants: one JSON line per row is printed.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[arg(long)]
    model: PathBuf,
    /// CSV to draw applicants from (rows are resampled with a seeded generator).
    #[arg(long)]
    data: PathBuf,
    /// Applicants per run.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Split(args) => split(args),
        Command::Train(args) => train(args),
        Command::Tune(args) => tune(args),
        Command::Eval(args) => eval(args),
        Command::Apply(args) => apply(args),
        Command::Bench(args) => bench(args),
    }
}

fn read_table(path: &Path) -> anyhow::Result<Table> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Table::from_csv(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))
}

fn read_model(path: &Path) -> anyhow::Result<Model> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Model::from_json(&text).with_context(|| format!("loading model {}", path.display()))
}

/// The training (`train = true`) or test part of a split, or the whole table without one.
fn part_of(
    table: Table,
    target: &Target,
    options: &SplitOptions,
    train: bool,
) -> anyhow::Result<Table> {
    let Some(seed) = options.split_seed else {
        return Ok(table);
    };
    let labels = table.labels(&target.column, &target.bad_value)?;
    let split = tally_scoring::stratified_split(&labels, options.train_fraction, seed)?;
    Ok(table.select_rows(if train { &split.train } else { &split.test }))
}

fn write_table(table: &Table, path: &Path) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    table.write_csv(BufWriter::new(file))?;
    Ok(())
}

fn split(args: SplitArgs) -> anyhow::Result<ExitCode> {
    let table = read_table(&args.data)?;
    let labels = table.labels(&args.target, &args.bad_value)?;
    let split = tally_scoring::stratified_split(&labels, args.train_fraction, args.seed)?;
    write_table(&table.select_rows(&split.train), &args.train_out)?;
    write_table(&table.select_rows(&split.test), &args.test_out)?;
    println!(
        "seed {}: {} training rows -> {}, {} test rows -> {}",
        args.seed,
        split.train.len(),
        args.train_out.display(),
        split.test.len(),
        args.test_out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_config(path: Option<&Path>) -> anyhow::Result<TrainConfig> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(TrainConfig::from_toml(&text)
                .with_context(|| format!("parsing {}", path.display()))?)
        }
        None => Ok(TrainConfig::default()),
    }
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let mut config = read_config(args.config.as_deref())?;
    if let Some(l2) = args.l2 {
        config.l2 = l2;
    }
    if let Some(base_score) = args.base_score {
        config.scaling.base_score = base_score;
    }
    if let Some(base_odds) = args.base_odds {
        config.scaling.base_odds = base_odds;
    }
    if let Some(pdo) = args.pdo {
        config.scaling.points_to_double_odds = pdo;
    }
    if let Some(bins_max) = args.bins_max {
        config.binning.bins_max = bins_max;
    }
    if let Some(minimum) = args.information_value_min {
        config.information_value_min = minimum;
    }
    if let Some(fine_bins) = args.fine_bins {
        config.binning.fine_bins = fine_bins;
    }
    if let Some(share) = args.bin_fraction_min {
        config.binning.bin_fraction_min = share;
    }
    if let Some(monotonic) = args.monotonic {
        config.binning.monotonic = monotonic;
    }
    args.fairness.apply(&mut config);
    let target = Target {
        column: args.target.clone(),
        bad_value: args.bad_value.clone(),
    };
    let table = part_of(read_table(&args.data)?, &target, &args.split, true)?;
    let model = tally_scoring::train(&table, &target, &config)?;
    write_model(&model, &args.out)?;
    print_model(&model, &args.out);
    Ok(ExitCode::SUCCESS)
}

fn write_model(model: &Model, path: &Path) -> anyhow::Result<()> {
    let mut json = model.to_json()?;
    json.push('\n');
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// One line per setting that the grid varies.
fn describe(config: &TrainConfig) -> String {
    format!(
        "fine_bins {:>2}  bins_max {:>2}  bin_fraction_min {:<4}  monotonic {:<5}  information_value_min {:<4}  l2 {}",
        config.binning.fine_bins,
        config.binning.bins_max,
        config.binning.bin_fraction_min,
        config.binning.monotonic,
        config.information_value_min,
        config.l2
    )
}

fn tune(args: TuneArgs) -> anyhow::Result<ExitCode> {
    let mut base = read_config(args.config.as_deref())?;
    args.fairness.apply(&mut base);
    let grid = match &args.grid {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Grid::from_toml(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Grid::default(),
    };
    let plan = FoldPlan {
        folds: args.folds,
        repeats: args.repeats,
        seed: args.fold_seed,
    };
    let target = Target {
        column: args.target.clone(),
        bad_value: args.bad_value.clone(),
    };
    let table = part_of(read_table(&args.data)?, &target, &args.split, true)?;
    let started = Instant::now();
    let tuned = tally_scoring::tune(&table, &target, &base, &grid, &plan, args.rule)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.report {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::new(file);
        writeln!(
            out,
            "point,fine_bins,bins_max,bin_fraction_min,monotonic,information_value_min,l2,mean_auc,standard_deviation,fold_auc,error"
        )?;
        for (index, result) in tuned.results.iter().enumerate() {
            let config = &result.config;
            let folds: Vec<String> = result
                .fold_auc
                .iter()
                .map(|auc| format!("{auc:.6}"))
                .collect();
            writeln!(
                out,
                "{index},{},{},{},{},{},{},{:.6},{:.6},{},\"{}\"",
                config.binning.fine_bins,
                config.binning.bins_max,
                config.binning.bin_fraction_min,
                config.binning.monotonic,
                config.information_value_min,
                config.l2,
                result.mean_auc,
                result.standard_deviation,
                folds.join(" "),
                result.error.as_deref().unwrap_or("").replace('"', "'")
            )?;
        }
        out.flush()?;
    }
    let mut order: Vec<usize> = (0..tuned.results.len())
        .filter(|&index| tuned.results[index].error.is_none())
        .collect();
    order.sort_by(|&left, &right| {
        tuned.results[right]
            .mean_auc
            .total_cmp(&tuned.results[left].mean_auc)
            .then(left.cmp(&right))
    });
    let failed = tuned.results.len() - order.len();
    println!(
        "{} settings x {} folds x {} repeats on {} training rows in {seconds:.1} s ({failed} failed)",
        tuned.results.len(),
        plan.folds,
        plan.repeats,
        table.rows.len()
    );
    println!("mean held-out AUC (sd over folds), best first:");
    for &index in order.iter().take(args.top) {
        let result = &tuned.results[index];
        println!(
            "  {:.4} ({:.4})  {}",
            result.mean_auc,
            result.standard_deviation,
            describe(&result.config)
        );
    }
    if let (Some(&worst), Some(&median)) = (order.last(), order.get(order.len() / 2)) {
        println!(
            "  median setting {:.4}, worst {:.4}",
            tuned.results[median].mean_auc, tuned.results[worst].mean_auc
        );
    }
    let chosen = &tuned.results[tuned.chosen];
    println!(
        "chosen: {}  (mean AUC {:.4}, sd {:.4})",
        describe(&chosen.config),
        chosen.mean_auc,
        chosen.standard_deviation
    );
    write_model(&tuned.model, &args.out)?;
    print_model(&tuned.model, &args.out);
    Ok(ExitCode::SUCCESS)
}

fn print_model(model: &Model, out: &Path) {
    let file = model.file();
    println!(
        "trained on {} rows ({} bad): {} features kept, {} rejected -> {}",
        file.training.rows,
        file.training.bad,
        file.features.len(),
        file.rejected.len(),
        out.display()
    );
    for feature in &file.features {
        println!(
            "  {:<58} IV {:.4}  bins {}  coefficient {:+.4}",
            feature.name,
            feature.information_value,
            feature.bins.len(),
            feature.coefficient
        );
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let model = read_model(&args.model)?;
    let target = model.target().clone();
    let table = part_of(read_table(&args.data)?, &target, &args.split, false)?;
    let labels = table.labels(&target.column, &target.bad_value)?;
    let scores = model.score_table(&table)?;
    let auc =
        metrics::area_under_curve(&scores, &labels).context("AUC needs both good and bad rows")?;
    let ks =
        metrics::kolmogorov_smirnov(&scores, &labels).context("KS needs both good and bad rows")?;
    let deciles = metrics::deciles(&scores, &labels);
    let mut feature_stability = Vec::new();
    let stability = match &args.baseline {
        Some(path) => {
            let baseline_table = read_table(path)?;
            let baseline = model.score_table(&baseline_table)?;
            let expected = model.bin_shares(&baseline_table)?;
            let actual = model.bin_shares(&table)?;
            for ((feature, expected), actual) in model.features().iter().zip(&expected).zip(&actual)
            {
                feature_stability.push(serde_json::json!({
                    "feature": feature.name,
                    "stability_index": metrics::stability_of_shares(expected, actual),
                }));
            }
            metrics::population_stability_index(&baseline, &scores)
        }
        None => None,
    };
    let groups = match &args.group_column {
        Some(column) => Some(group_report(
            &table,
            &scores,
            &labels,
            column,
            args.policy.as_deref(),
        )?),
        None => None,
    };
    if args.json {
        let report = serde_json::json!({
            "groups": groups,
            "rows": scores.len(),
            "bad": labels.iter().filter(|&&bad| bad).count(),
            "auc": auc,
            "gini": 2.0 * auc - 1.0,
            "ks": ks,
            "deciles": deciles,
            "population_stability_index": stability,
            "feature_stability": feature_stability,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rows {}  bad {}",
        scores.len(),
        labels.iter().filter(|&&bad| bad).count()
    );
    println!("AUC  {auc:.4}");
    println!("Gini {:.4}", 2.0 * auc - 1.0);
    println!("KS   {ks:.4}");
    println!();
    println!("decile  score min  score max   rows   bad  bad rate  cumulative bad share");
    for line in &deciles {
        println!(
            "{:>6}  {:>9.1}  {:>9.1}  {:>5}  {:>4}  {:>8.3}  {:>20.3}",
            line.decile,
            line.score_min,
            line.score_max,
            line.rows,
            line.bad,
            line.bad_rate,
            line.cumulative_bad_share
        );
    }
    if let Some(stability) = stability {
        let verdict = if stability < 0.1 {
            "stable"
        } else if stability < 0.25 {
            "watch"
        } else {
            "shifted"
        };
        println!();
        println!("PSI  {stability:.4} ({verdict}; < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted)");
        println!("stability index of each feature's bins (characteristic stability):");
        for line in &feature_stability {
            println!(
                "  {:<58} {:.4}",
                line["feature"].as_str().unwrap_or(""),
                line["stability_index"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(report) = &groups {
        print_group_report(report);
    }
    Ok(ExitCode::SUCCESS)
}

fn read_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Policy::from_toml(&text).with_context(|| format!("loading {}", path.display()))
        }
        None => Ok(Policy::from_toml(
            tally_service::credit::decision::DEFAULT_SCORE_POLICY,
        )?),
    }
}

/// Approval by the policy's score bands, then the figures of each value of `column`.
fn group_report(
    table: &Table,
    scores: &[f64],
    labels: &[bool],
    column: &str,
    policy: Option<&Path>,
) -> anyhow::Result<GroupReport> {
    let policy = read_policy(policy)?;
    let index = table.column_index(column)?;
    let groups: Vec<&str> = table.rows.iter().map(|row| row[index].as_str()).collect();
    let approved: Vec<bool> = scores
        .iter()
        .map(|&score| policy.decide(score).outcome == Outcome::Approve)
        .collect();
    Ok(tally_scoring::group_report(
        column, &groups, scores, &approved, labels,
    )?)
}

fn print_group_report(report: &GroupReport) {
    println!();
    println!(
        "by {}: approval rate, adverse impact ratio against {:?} (the highest rate; four-fifths rule: \
         a ratio below 0.8 is evidence of adverse impact), scores (rounded to 0.01, quartiles by nearest rank)",
        report.column, report.reference_group
    );
    println!(
        "{:<44} {:>5} {:>4} {:>8} {:>8} {:>7} {:>4}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "group",
        "rows",
        "bad",
        "approved",
        "rate",
        "ratio",
        "4/5",
        "min",
        "q25",
        "median",
        "q75",
        "max",
        "mean"
    );
    for group in &report.groups {
        let ratio = group
            .adverse_impact_ratio
            .map_or_else(|| "-".to_string(), |ratio| ratio.to_string());
        println!(
            "{:<44} {:>5} {:>4} {:>8} {:>8} {:>7} {:>4}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            group.group,
            group.rows,
            group.bad,
            group.approved,
            group.approval_rate.to_string(),
            ratio,
            if group.four_fifths_rule_met {
                "met"
            } else {
                "NOT"
            },
            group.score.min.to_string(),
            group.score.quartile_lower.to_string(),
            group.score.median.to_string(),
            group.score.quartile_upper.to_string(),
            group.score.max.to_string(),
            group.score.mean.to_string(),
        );
    }
}

fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let model = read_model(&args.model)?;
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(Policy::from_toml(&text).with_context(|| format!("loading {}", path.display()))?)
        }
        None => None,
    };
    let evaluate = |applicant: &Applicant| {
        let result = model.score(applicant);
        let decision = policy.as_ref().map(|policy| policy.decide(result.score));
        serde_json::json!({ "score": result, "decision": decision })
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if let Some(text) = &args.applicant {
        let json: serde_json::Value =
            serde_json::from_str(text).context("--applicant is not valid JSON")?;
        let applicant = Applicant::from_json(&json)?;
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&evaluate(&applicant))?
        )?;
    } else if let Some(path) = &args.data {
        let table = read_table(path)?;
        for row in &table.rows {
            let applicant = Applicant::from_record(&table.headers, row);
            writeln!(out, "{}", serde_json::to_string(&evaluate(&applicant))?)?;
        }
    } else {
        bail!("give --applicant JSON or --data FILE");
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Most applicants timed through the single-applicant path (it allocates per applicant).
const SINGLE_ROWS_MAX: usize = 200_000;

fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.rows == 0 || args.repeat == 0 {
        bail!("--rows and --repeat must be at least 1");
    }
    let model = read_model(&args.model)?;
    let table = read_table(&args.data)?;
    if table.rows.is_empty() {
        bail!("{} has no rows", args.data.display());
    }
    let indices: Vec<usize> = model
        .features()
        .iter()
        .map(|feature| table.column_index(&feature.name))
        .collect::<Result<_, _>>()?;
    let mut generator = SplitMix64::new(args.seed);
    let mut batch = Batch::new(&model);
    let mut cells: Vec<&str> = Vec::with_capacity(indices.len());
    let mut sampled = Vec::with_capacity(args.rows);
    for _ in 0..args.rows {
        let row = generator.index_below(table.rows.len());
        sampled.push(row);
        cells.clear();
        cells.extend(indices.iter().map(|&index| table.rows[row][index].as_str()));
        batch.push(&cells)?;
    }
    let mut scores = Vec::with_capacity(args.rows);
    // One warm-up run, then the timed runs.
    model.score_batch(&batch, &mut scores)?;
    let mut rates = Vec::with_capacity(args.repeat);
    for run in 1..=args.repeat {
        let started = Instant::now();
        model.score_batch(&batch, &mut scores)?;
        let seconds = started.elapsed().as_secs_f64();
        let checksum: f64 = scores.iter().sum::<f64>() / scores.len() as f64;
        let rate = args.rows as f64 / seconds;
        println!(
            "run {run}: {} applicants in {:.3} ms = {:.0} applicants/s (mean score {checksum:.3})",
            args.rows,
            seconds * 1e3,
            rate
        );
        rates.push(rate);
    }
    let median = median_of(&mut rates);
    println!(
        "batch: median of {} runs: {median:.0} applicants/s on one thread ({} features per applicant)",
        args.repeat,
        model.features().len()
    );
    // The single-applicant path credit activation uses: explanation and reasons included.
    let single_rows = args.rows.min(SINGLE_ROWS_MAX);
    let applicants: Vec<Applicant> = sampled[..single_rows]
        .iter()
        .map(|&row| Applicant::from_record(&table.headers, &table.rows[row]))
        .collect();
    let mut single_rates = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let started = Instant::now();
        let mut total = 0.0;
        for applicant in &applicants {
            total += model.score(applicant).score;
        }
        let seconds = started.elapsed().as_secs_f64();
        std::hint::black_box(total);
        single_rates.push(single_rows as f64 / seconds);
    }
    println!(
        "single (Model::score with attributes and reasons): median of {} runs over {single_rows} applicants: {:.0} applicants/s",
        args.repeat,
        median_of(&mut single_rates)
    );
    Ok(ExitCode::SUCCESS)
}
