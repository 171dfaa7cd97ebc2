//! Decision benchmark: the default pack with its velocity features, in process, on one core.
//! The comparison with GoRules zen-engine lives in `comparisons/risk-engines`, outside the
//! main workspace.
//!
//! Run: `cargo bench -p tally-risk --bench decision`

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark: a panic is the report.

use std::time::Instant;
use tally_risk::bench::{self, BenchConfig};
use tally_risk::DEFAULT_RULES;

fn main() {
    let config = BenchConfig::default();
    let clock = Instant::now();
    let now = || clock.elapsed().as_nanos() as u64;
    let report = bench::run(DEFAULT_RULES, &config, now).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
