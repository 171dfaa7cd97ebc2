//! The in-process decision benchmark: generated traffic through the default pack, timed by
//! a clock the caller passes in (the library reads none). `tally bench risk` and
//! `cargo bench -p tally-risk --bench decision` both run it.

use crate::decision::Decision;
use crate::engine::{EngineConfig, RiskEngine};
use crate::error::RiskError;
use crate::event::Event;
use crate::list::ListEntry;
use crate::rule::RuleSet;
use crate::scenario::{generate, ScenarioConfig};
use serde::Serialize;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    pub scenario: ScenarioConfig,
    /// Timed runs; the report gives the median.
    pub runs: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            scenario: ScenarioConfig {
                seed: 42,
                customers: 20_000,
                days: 7,
                attacks_per_kind: 50,
                ..ScenarioConfig::default()
            },
            runs: 5,
        }
    }
}

/// One timed run over the whole history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenchRun {
    pub decisions: usize,
    pub elapsed_nanoseconds: u64,
    pub decisions_per_second: f64,
    pub p50_nanoseconds: u64,
    pub p99_nanoseconds: u64,
    pub max_nanoseconds: u64,
}

/// The median of the runs, and the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub rule_set: String,
    pub rules: usize,
    pub features: usize,
    pub events: usize,
    pub median_decisions_per_second: f64,
    pub median_p50_nanoseconds: u64,
    pub median_p99_nanoseconds: u64,
    pub runs: Vec<BenchRun>,
}

/// Generated traffic and list entries for a benchmark.
pub fn traffic(config: &BenchConfig) -> (Vec<Event>, Vec<ListEntry>) {
    let scenario = generate(&config.scenario);
    (scenario.events, scenario.list_entries)
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// One run: a fresh engine on `rules_text`, every event decided once on one thread, each
/// decision timed with `now_nanoseconds`.
pub fn run_once(
    rules_text: &str,
    events: &[Event],
    list_entries: &[ListEntry],
    now_nanoseconds: &mut impl FnMut() -> u64,
) -> Result<BenchRun, RiskError> {
    let mut engine = RiskEngine::new(RuleSet::parse(rules_text)?, EngineConfig::default());
    for entry in list_entries {
        engine.lists_mut().add(entry.clone())?;
    }
    let mut decision = Decision::empty();
    let mut latencies = Vec::with_capacity(events.len());
    let started = now_nanoseconds();
    for event in events {
        let before = now_nanoseconds();
        engine.decide_into(event, &mut decision)?;
        latencies.push(now_nanoseconds().saturating_sub(before));
    }
    let elapsed = now_nanoseconds().saturating_sub(started).max(1);
    latencies.sort_unstable();
    Ok(BenchRun {
        decisions: events.len(),
        elapsed_nanoseconds: elapsed,
        decisions_per_second: events.len() as f64 * 1e9 / elapsed as f64,
        p50_nanoseconds: percentile(&latencies, 0.50),
        p99_nanoseconds: percentile(&latencies, 0.99),
        max_nanoseconds: latencies.last().copied().unwrap_or(0),
    })
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn median_u64(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Runs the benchmark `config.runs` times and reports the median.
pub fn run(
    rules_text: &str,
    config: &BenchConfig,
    mut now_nanoseconds: impl FnMut() -> u64,
) -> Result<BenchReport, RiskError> {
    let rule_set = RuleSet::parse(rules_text)?;
    let (events, list_entries) = traffic(config);
    let mut runs = Vec::with_capacity(config.runs);
    for _ in 0..config.runs.max(1) {
        runs.push(run_once(
            rules_text,
            &events,
            &list_entries,
            &mut now_nanoseconds,
        )?);
    }
    Ok(BenchReport {
        rule_set: rule_set.name.clone(),
        rules: rule_set.rules.len(),
        features: rule_set.features.len(),
        events: events.len(),
        median_decisions_per_second: median_f64(
            runs.iter().map(|run| run.decisions_per_second).collect(),
        ),
        median_p50_nanoseconds: median_u64(runs.iter().map(|run| run.p50_nanoseconds).collect()),
        median_p99_nanoseconds: median_u64(runs.iter().map(|run| run.p99_nanoseconds).collect()),
        runs,
    })
}
