//! `tally risk`: back-test rule sets on history, generate scenario traffic with injected
//! attacks, and benchmark decisions in process.

use anyhow::Context;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tally_risk::backtest::{backtest, BacktestInput, Label};
use tally_risk::bench::BenchConfig;
use tally_risk::scenario::{generate, ScenarioConfig};
use tally_risk::{EngineConfig, Event, ListEntry, RuleSet, DEFAULT_RULES};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replay history through a candidate rule set, features rebuilt as they were at each
    /// event's time: decisions per action, per-rule hits, and with labels precision, recall
    /// and the difference from the live rule set. Prints a JSON report.
    Backtest(BacktestArgs),
    /// Generate scenario traffic (clean customers plus injected attacks) with fraud labels
    /// and the block-list entries the attacks run into, as NDJSON files.
    Generate(GenerateArgs),
    /// Decisions per second and p50/p99 latency of the default pack on one core, in process.
    Bench(BenchArgs),
    /// Check an evidence package saved from `GET /v1/risk/cases/{id}/evidence`: its content
    /// against its seal's SHA-256 digest, and the seal's signature against Tally's evidence
    /// verifier key. Exit 1, saying what failed, when either does not hold.
    VerifyEvidence(VerifyEvidenceArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyEvidenceArgs {
    /// The package, as the API served it (JSON).
    #[arg(long, value_name = "FILE")]
    pub package: PathBuf,
    /// Tally's evidence verifier key (`<name>+<id>+<key>`, printed by `tally consortium
    /// keygen` when the signing key was made), or `@FILE` to read it from a file.
    #[arg(long, value_name = "KEY")]
    pub verifier_key: String,
}

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The candidate rule set (TOML).
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// History in the order it was decided: NDJSON, one event per line, or Parquet when
    /// the name ends in `.parquet` (columns as in `tally_risk::history`).
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
    /// Fraud labels as NDJSON: {"event_id": "...", "fraud": true, "attack": "..."}.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// The live rule set, to report how the candidate's decisions differ.
    #[arg(long, value_name = "FILE")]
    pub live: Option<PathBuf>,
    /// List entries in force during the history, NDJSON.
    #[arg(long, value_name = "FILE")]
    pub lists: Option<PathBuf>,
    /// Write every candidate decision here as NDJSON.
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Directory for events.ndjson, labels.ndjson and lists.ndjson (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub customers: usize,
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Instances of each attack kind.
    #[arg(long, default_value_t = 5)]
    pub attacks_per_kind: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the events as events.parquet.
    #[arg(long)]
    pub parquet: bool,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rule set to measure (default: the shipped default pack).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Customers in the generated traffic (7 days, about 11 events per customer).
    #[arg(long, default_value_t = 20_000)]
    pub customers: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Backtest(arguments) => run_backtest(arguments),
        Command::Generate(arguments) => run_generate(arguments),
        Command::Bench(arguments) => bench(arguments),
        Command::VerifyEvidence(arguments) => verify_evidence(arguments),
    }
}

fn verify_evidence(arguments: VerifyEvidenceArgs) -> anyhow::Result<ExitCode> {
    let verifier = crate::consortium::keys::verifier_key(&arguments.verifier_key)?;
    let text = std::fs::read_to_string(&arguments.package)
        .with_context(|| format!("cannot read {}", arguments.package.display()))?;
    let package: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", arguments.package.display()))?;
    match tally_service::evidence::verify(&package, &verifier) {
        Ok(verified) => {
            println!(
                "verified: case {} exported {}, sha256 {}, signed by {}",
                verified.case_id, verified.generated, verified.sha256, verified.key_name
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {} ({})", error, error.code());
            Ok(ExitCode::from(1))
        }
    }
}

/// Reads an NDJSON file, one value per non-empty line, with the line number in errors.
fn read_ndjson<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, tally_risk::RiskError>,
) -> anyhow::Result<Vec<T>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut values = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value = parse(&line).with_context(|| format!("{}:{}", path.display(), index + 1))?;
        values.push(value);
    }
    Ok(values)
}

fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    if path
        .extension()
        .is_some_and(|extension| extension == "parquet")
    {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        return tally_risk::history::read_parquet_events(file)
            .with_context(|| format!("{}", path.display()));
    }
    read_ndjson(path, Event::from_json)
}

fn read_rule_set(path: &Path) -> anyhow::Result<RuleSet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    RuleSet::parse(&text).with_context(|| format!("{} refused", path.display()))
}

fn run_backtest(arguments: BacktestArgs) -> anyhow::Result<ExitCode> {
    let candidate = read_rule_set(&arguments.rules)?;
    let live = arguments.live.as_deref().map(read_rule_set).transpose()?;
    let events = read_events(&arguments.events)?;
    let labels = arguments
        .labels
        .as_deref()
        .map(|path| read_ndjson(path, Label::from_json))
        .transpose()?;
    let list_entries = match &arguments.lists {
        None => Vec::new(),
        Some(path) => read_ndjson(path, |line| {
            serde_json::from_str::<ListEntry>(line).map_err(|error| {
                tally_risk::RiskError::InvalidListEntry {
                    message: error.to_string(),
                }
            })
        })?,
    };
    let mut decisions_out = match &arguments.decisions {
        None => None,
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
    };
    let mut write_error = None;
    let report = backtest(
        BacktestInput {
            candidate,
            events: &events,
            list_entries: &list_entries,
            labels: labels.as_deref(),
            live,
            config: EngineConfig::default(),
            recorded_hits: &[],
        },
        |_, decision| {
            if let Some(out) = &mut decisions_out {
                if let Err(error) = writeln!(out, "{}", decision.to_json()) {
                    write_error.get_or_insert(error);
                }
            }
        },
    )?;
    if let Some(error) = write_error {
        return Err(error).context("cannot write the decisions");
    }
    if let Some(mut out) = decisions_out {
        out.flush().context("cannot write the decisions")?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn write_lines<T>(path: &Path, values: &[T], line: impl Fn(&T) -> String) -> anyhow::Result<()> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for value in values {
        writeln!(out, "{}", line(value))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

fn run_generate(arguments: GenerateArgs) -> anyhow::Result<ExitCode> {
    let scenario = generate(&ScenarioConfig {
        seed: arguments.seed,
        customers: arguments.customers,
        days: arguments.days,
        attacks_per_kind: arguments.attacks_per_kind,
        ..ScenarioConfig::default()
    });
    std::fs::create_dir_all(&arguments.out)
        .with_context(|| format!("cannot create {}", arguments.out.display()))?;
    write_lines(
        &arguments.out.join("events.ndjson"),
        &scenario.events,
        Event::to_json,
    )?;
    if arguments.parquet {
        let path = arguments.out.join("events.parquet");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        tally_risk::history::write_parquet_events(&scenario.events, file)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    write_lines(
        &arguments.out.join("labels.ndjson"),
        &scenario.labels,
        |label| serde_json::to_string(label).unwrap_or_default(),
    )?;
    write_lines(
        &arguments.out.join("lists.ndjson"),
        &scenario.list_entries,
        |entry| serde_json::to_string(entry).unwrap_or_default(),
    )?;
    println!(
        "{} events, {} labelled fraud, {} list entries written to {}",
        scenario.events.len(),
        scenario.labels.len(),
        scenario.list_entries.len(),
        arguments.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The in-process risk benchmark (`tally risk bench`; meant to be wired as
/// `tally bench risk`): prints a JSON report with the median of the runs.
pub fn bench(arguments: BenchArgs) -> anyhow::Result<ExitCode> {
    let rules = match &arguments.rules {
        None => DEFAULT_RULES.to_string(),
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    };
    let mut config = BenchConfig::default();
    config.scenario.customers = arguments.customers;
    config.scenario.seed = arguments.seed;
    config.runs = arguments.runs;
    let clock = Instant::now();
    let report = tally_risk::bench::run(&rules, &config, || {
        u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX)
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tally risk verify-evidence` exits 0 on a package as sealed, 1 on a changed one or
    /// under another key, and reads the verifier key from a file with `@`.
    #[test]
    fn verify_evidence_accepts_a_sealed_package_and_refuses_a_changed_one() {
        use tally_consortium::{KeyType, SignerKey};
        let directory = tempfile::tempdir().unwrap();
        let signer =
            SignerKey::from_seed("evidence.tally.test", KeyType::Ed25519, [5; 32]).unwrap();
        let mut package =
            serde_json::json!({"case": {"id": "case-9"}, "events": [{"amount": "10.00"}]});
        let at: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let seal = tally_service::evidence::seal(&package, "case-9", at, Some(&signer)).unwrap();
        package["seal"] =
            serde_json::json!({"sha256": seal.sha256, "signed_note": seal.signed_note});
        let write = |name: &str, text: String| {
            let path = directory.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let verifier_file = write("evidence.vkey", format!("{}\n", signer.verifier()));
        let verify = |package: PathBuf, verifier_key: String| {
            run(Command::VerifyEvidence(VerifyEvidenceArgs {
                package,
                verifier_key,
            }))
            .unwrap()
        };
        let sealed = write(
            "sealed.json",
            serde_json::to_string_pretty(&package).unwrap(),
        );
        assert_eq!(
            verify(sealed.clone(), format!("@{}", verifier_file.display())),
            ExitCode::SUCCESS
        );
        package["events"][0]["amount"] = serde_json::json!("1.00");
        let changed = write("changed.json", package.to_string());
        assert_eq!(
            verify(changed, signer.verifier().to_string()),
            ExitCode::from(1)
        );
        let other = SignerKey::from_seed("evidence.tally.test", KeyType::Ed25519, [6; 32]).unwrap();
        assert_eq!(
            verify(sealed, other.verifier().to_string()),
            ExitCode::from(1)
        );
    }

    #[test]
    fn generate_then_backtest_with_labels_and_the_live_set() {
        let directory = tempfile::tempdir().unwrap();
        let out = directory.path().to_path_buf();
        run(Command::Generate(GenerateArgs {
            out: out.clone(),
            customers: 100,
            days: 3,
            attacks_per_kind: 1,
            seed: 5,
            parquet: true,
        }))
        .unwrap();
        let rules = out.join("default.toml");
        std::fs::write(&rules, DEFAULT_RULES).unwrap();
        let decisions = out.join("decisions.ndjson");
        let code = run(Command::Backtest(BacktestArgs {
            rules: rules.clone(),
            events: out.join("events.ndjson"),
            labels: Some(out.join("labels.ndjson")),
            live: Some(rules),
            lists: Some(out.join("lists.ndjson")),
            decisions: Some(decisions.clone()),
        }))
        .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let events = std::fs::read_to_string(out.join("events.ndjson")).unwrap();
        let written = std::fs::read_to_string(decisions).unwrap();
        assert_eq!(events.lines().count(), written.lines().count());
        assert!(written.contains("\"rule_set_version\":1"));

        // The same history from Parquet gives the same decisions.
        let from_parquet = out.join("decisions-from-parquet.ndjson");
        run(Command::Backtest(BacktestArgs {
            rules: out.join("default.toml"),
            events: out.join("events.parquet"),
            labels: None,
            live: None,
            lists: Some(out.join("lists.ndjson")),
            decisions: Some(from_parquet.clone()),
        }))
        .unwrap();
        let replayed = std::fs::read_to_string(from_parquet).unwrap();
        for (line, (parquet, ndjson)) in replayed.lines().zip(written.lines()).enumerate() {
            assert_eq!(parquet, ndjson, "decision {line}");
        }
        assert_eq!(replayed.lines().count(), written.lines().count());
    }

    #[test]
    fn a_bad_event_line_is_refused_with_its_line_number() {
        let directory = tempfile::tempdir().unwrap();
        let events = directory.path().join("events.ndjson");
        std::fs::write(&events, "\n{\"id\":\"e1\",\"kind\":\"teleport\"}\n").unwrap();
        let rules = directory.path().join("rules.toml");
        std::fs::write(&rules, DEFAULT_RULES).unwrap();
        let error = run(Command::Backtest(BacktestArgs {
            rules,
            events: events.clone(),
            labels: None,
            live: None,
            lists: None,
            decisions: None,
        }))
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("events.ndjson:2"),
            "{error:#}"
        );
    }
}
