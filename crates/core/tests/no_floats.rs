//! Money is never carried by floating point: this test fails if `f32` or `f64` appears in
//! the source of a crate that handles amounts, outside the few files listed below with the
//! reason their floats are not money (and how many lines carry them, so a new float in such
//! a file fails too).
//!
//! Every directory under `crates/` must be classified, as a money crate or as a crate that
//! handles no money (with the reason): a new crate (payments) fails the test until someone
//! decides which it is, and a listed crate that cannot be found fails it too, so the scan
//! can never pass by looking at nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates that handle amounts: every line of their `src/` is scanned.
const MONEY_CRATES: &[&str] = &[
    "core",     // Amount, rates and rounding themselves.
    "ledger",   // Accounts, entries, holds and limits.
    "credit",   // Schedules, interest, fees, repayment allocation, statements.
    "payments", // Fundings, captures, refunds and the vault's daily yield.
    "store",    // Stored balances, legs, credit accounts and their SQL.
    "recon",    // Amounts parsed from bank and processor files, matched against the ledger.
    "risk",     // Velocity features sum event amounts (as i64 minor units).
    "server",   // Wire amounts parsed into minor units.
    "service",  // Credit operations and end of day move amounts; the decision sets limits.
    "cli",      // The credit, end of day and bench commands print and send amounts.
    "channel",  // Card authorisations, captures, refunds, payouts and settlement files.
];

/// Crates that handle no amount, and why floats are allowed there.
const CRATES_WITHOUT_MONEY: &[(&str, &str)] = &[
    (
        "scoring",
        "the scorecard is statistics (WOE, logistic regression, probabilities); the limits its \
         policy gives are Amount, parsed from text",
    ),
    (
        "privacy",
        "field encryption and masking of personal data; no amounts",
    ),
    (
        "consortium",
        "a Merkle log of risk information shared between institutions; no amounts",
    ),
];

/// Files of money crates whose floats are not money: (path under `crates/`, number of lines
/// with `f32`/`f64`, reason). The count must match exactly.
const FILES_WITH_FLOATS_THAT_ARE_NOT_MONEY: &[(&str, usize, &str)] = &[
    (
        "core/src/random.rs",
        3,
        "a generated fraction in [0, 1) and the chance of a generated event",
    ),
    (
        "recon/src/output.rs",
        6,
        "seconds and megabytes of a run's report",
    ),
    (
        "risk/src/feature.rs",
        4,
        "travel distance and speed between events; amount sums are i64",
    ),
    (
        "risk/src/event.rs",
        4,
        "geographic coordinates and distances",
    ),
    (
        "risk/src/backtest.rs",
        4,
        "precision, recall and rates of a rule back-test",
    ),
    ("risk/src/bench.rs", 7, "decisions per second"),
    (
        "cli/src/bench/settlement.rs",
        2,
        "merchants settled per second, printed by the settlement benchmark",
    ),
    (
        "risk/src/scenario.rs",
        3,
        "city coordinates of generated events",
    ),
    (
        "server/src/json.rs",
        1,
        "the largest integer a double holds exactly, to read a JSON number such as 12.0 as \
         the integer it is; amounts travel as strings",
    ),
    (
        "server/src/metrics.rs",
        1,
        "latency histogram buckets in seconds",
    ),
    (
        "service/src/credit/decision.rs",
        4,
        "the scorecard's score, probability of default and points lost; limits are Amount",
    ),
    ("cli/src/eod.rs", 2, "accounts per second in the report"),
    (
        "server/src/wire/risk.rs",
        2,
        "an event's geographic point (latitude and longitude), documented for the decision route",
    ),
    (
        "cli/src/consortium/bench.rs",
        2,
        "throughput of the consortium benchmarks",
    ),
    (
        "cli/src/consortium/bench/durable.rs",
        3,
        "latency percentiles and sizes of the durable consortium benchmark",
    ),
    (
        "cli/src/score.rs",
        15,
        "scorecard training options and statistics, scores reported by group",
    ),
    (
        "cli/src/recon.rs",
        1,
        "share of generated test transactions given a discrepancy",
    ),
];

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", directory.display()));
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn has_float_type(line: &str) -> bool {
    let bytes = line.as_bytes();
    ["f32", "f64"].iter().any(|word| {
        line.match_indices(word).any(|(start, _)| {
            let before = start.checked_sub(1).map(|index| bytes[index]);
            let after = bytes.get(start + word.len()).copied();
            let is_identifier = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
            !before.is_some_and(is_identifier) && !after.is_some_and(is_identifier)
        })
    })
}

fn crates_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Lines with a float type in each scanned file of `name`, keyed by the path under `crates/`.
fn float_lines_of_crate(crates: &Path, name: &str) -> BTreeMap<String, Vec<String>> {
    let source = crates.join(name).join("src");
    assert!(
        source.join("lib.rs").is_file() || source.join("main.rs").is_file(),
        "money crate {name} not found at {}: fix the list in no_floats.rs",
        source.display()
    );
    let mut files = Vec::new();
    rust_files(&source, &mut files);
    let mut lines = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        let relative = file
            .strip_prefix(crates)
            .expect("a file under crates/")
            .to_string_lossy()
            .replace('\\', "/");
        let found: Vec<String> = text
            .lines()
            .enumerate()
            .filter(|(_, line)| has_float_type(line))
            .map(|(number, line)| format!("{relative}:{}: {}", number + 1, line.trim()))
            .collect();
        lines.insert(relative, found);
    }
    lines
}

#[test]
fn every_crate_is_classified_as_handling_money_or_not() {
    let crates = crates_directory();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&crates)
        .expect("the crates directory")
        .map(|entry| entry.expect("a readable directory entry"))
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let classified: BTreeSet<String> = MONEY_CRATES
        .iter()
        .copied()
        .chain(CRATES_WITHOUT_MONEY.iter().map(|(name, _)| *name))
        .map(str::to_string)
        .collect();
    let unclassified: Vec<_> = on_disk.difference(&classified).collect();
    let missing: Vec<_> = classified.difference(&on_disk).collect();
    assert!(
        unclassified.is_empty() && missing.is_empty(),
        "no_floats.rs must list every crate under crates/: not listed {unclassified:?}, \
         listed but not found {missing:?}"
    );
}

#[test]
fn no_floating_point_in_money_crates() {
    let crates = crates_directory();
    let allowed: BTreeMap<&str, usize> = FILES_WITH_FLOATS_THAT_ARE_NOT_MONEY
        .iter()
        .map(|(path, count, _)| (*path, *count))
        .collect();
    let mut offenders = Vec::new();
    let mut seen_allowed = BTreeSet::new();
    for name in MONEY_CRATES {
        let files = float_lines_of_crate(&crates, name);
        assert!(
            !files.is_empty(),
            "no source file found in money crate {name}"
        );
        for (path, lines) in files {
            match allowed.get(path.as_str()) {
                Some(count) => {
                    seen_allowed.insert(path.clone());
                    if lines.len() != *count {
                        offenders.push(format!(
                            "{path}: {} lines with floats, {count} listed as not money:\n  {}",
                            lines.len(),
                            lines.join("\n  ")
                        ));
                    }
                }
                None => offenders.extend(lines),
            }
        }
    }
    for path in allowed.keys() {
        if !seen_allowed.contains(*path) {
            offenders.push(format!("{path}: listed as not money but not found"));
        }
    }
    assert!(
        offenders.is_empty(),
        "floating point in money code:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn a_money_crate_that_cannot_be_found_fails_the_scan() {
    let result = std::panic::catch_unwind(|| {
        float_lines_of_crate(&crates_directory(), "payments-that-does-not-exist")
    });
    assert!(
        result.is_err(),
        "a missing crate must fail, not scan nothing"
    );
}

#[test]
fn the_scanner_sees_float_types_and_ignores_lookalikes() {
    assert!(has_float_type("let x: f64 = 1.0;"));
    assert!(has_float_type("fn ratio() -> f32"));
    assert!(has_float_type("as f64)"));
    assert!(!has_float_type("let shelf64 = 1;"));
    assert!(!has_float_type("let f640 = 1;"));
}
