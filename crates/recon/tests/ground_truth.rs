//! Ground-truth tests: generated files with known discrepancies, in every layout, must reconcile to exactly the injected classes.

use std::collections::BTreeMap;
use std::path::Path;
use tally_recon::generate::{generate, GenerateOptions, GenerateOutcome};
use tally_recon::layout::{Encoding, FileFormat};
use tally_recon::{
    Class, ExceptionsFormat, Layout, NoProgress, NoStopwatch, Rules, RunOptions, RunOutcome,
};

fn generate_files(
    directory: &Path,
    rows: u64,
    seed: u64,
    ledger_format: FileFormat,
    channel_format: FileFormat,
    channel_encoding: Encoding,
) -> GenerateOutcome {
    let options = GenerateOptions {
        rows,
        seed,
        discrepancy_parts_per_million: 200_000,
        out_dir: directory.to_path_buf(),
        ledger_format,
        channel_format,
        channel_encoding,
    };
    generate(&options, &NoProgress).expect("generate")
}

fn options_for(files: &GenerateOutcome, out: &Path) -> RunOptions {
    RunOptions::new(
        files.ledger.clone(),
        Layout::from_file(&files.ledger_layout).expect("ledger layout"),
        files.channel.clone(),
        Layout::from_file(&files.channel_layout).expect("channel layout"),
        Rules::from_file(&files.rules).expect("rules"),
        out.to_path_buf(),
    )
}

fn counts(outcome: &RunOutcome) -> BTreeMap<&'static str, u64> {
    Class::ALL
        .iter()
        .map(|class| (class.name(), outcome.summary.count(*class)))
        .collect()
}

fn exception_keys(outcome: &RunOutcome) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = outcome
        .exceptions
        .iter()
        .map(|exception| {
            (
                exception.class.name().to_owned(),
                String::from_utf8_lossy(&exception.key).into_owned(),
            )
        })
        .collect();
    keys.sort();
    keys
}

fn ground_truth(files: &GenerateOutcome) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(&files.ground_truth).expect("ground truth");
    let mut keys: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let (class, key) = line.split_once(',').expect("class,key");
            (class.to_owned(), key.to_owned())
        })
        .collect();
    keys.sort();
    keys
}

fn check_layouts(
    ledger_format: FileFormat,
    channel_format: FileFormat,
    channel_encoding: Encoding,
) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let files = generate_files(
        directory.path(),
        3000,
        7,
        ledger_format,
        channel_format,
        channel_encoding,
    );
    let outcome = tally_recon::run(
        &options_for(&files, &directory.path().join("out")),
        &NoProgress,
        &NoStopwatch,
    )
    .expect("run");
    assert_eq!(
        outcome.summary.bad_rows,
        0,
        "{:?}",
        std::fs::read_to_string(directory.path().join("out/bad_rows.csv"))
    );
    assert_eq!(counts(&outcome), files.expected);
    assert_eq!(exception_keys(&outcome), ground_truth(&files));
    assert!(
        Class::ALL
            .iter()
            .all(|class| outcome.summary.count(*class) > 0),
        "every class occurs: {:?}",
        counts(&outcome)
    );
    assert_eq!(outcome.summary.exit_code, 1);
}

#[test]
fn csv_against_csv() {
    check_layouts(FileFormat::Csv, FileFormat::Csv, Encoding::Utf8);
}

#[test]
fn csv_against_gbk_csv() {
    check_layouts(FileFormat::Csv, FileFormat::Csv, Encoding::Gbk);
}

#[test]
fn fixed_width_against_gbk_fixed_width() {
    check_layouts(
        FileFormat::FixedWidth,
        FileFormat::FixedWidth,
        Encoding::Gbk,
    );
}

#[test]
fn csv_against_utf8_fixed_width() {
    check_layouts(FileFormat::Csv, FileFormat::FixedWidth, Encoding::Utf8);
}

#[test]
fn parquet_against_parquet() {
    check_layouts(FileFormat::Parquet, FileFormat::Parquet, Encoding::Utf8);
}

#[test]
fn parquet_against_gbk_csv() {
    check_layouts(FileFormat::Parquet, FileFormat::Csv, Encoding::Gbk);
}

#[test]
fn a_memory_limit_that_forces_spilling_gives_the_same_result() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let files = generate_files(
        directory.path(),
        5000,
        11,
        FileFormat::Csv,
        FileFormat::Csv,
        Encoding::Gbk,
    );
    let in_memory = tally_recon::run(
        &options_for(&files, &directory.path().join("memory")),
        &NoProgress,
        &NoStopwatch,
    )
    .expect("run in memory");
    assert_eq!(in_memory.summary.run.spilled_bytes, 0);
    let mut options = options_for(&files, &directory.path().join("spill"));
    options.memory_limit_bytes = 64 * 1024;
    options.threads = 2;
    let spilled = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run with spilling");
    assert!(spilled.summary.run.spilled_bytes > 0, "the run must spill");
    assert_eq!(spilled.summary.classes, in_memory.summary.classes);
    assert_eq!(spilled.exceptions.len(), in_memory.exceptions.len());
    let read = |name: &str| {
        std::fs::read(directory.path().join(name).join("exceptions.csv")).expect("exceptions")
    };
    assert_eq!(read("spill"), read("memory"));
    assert_eq!(counts(&spilled), files.expected);
}

#[test]
fn one_thread_and_many_partitions_give_the_same_result() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let files = generate_files(
        directory.path(),
        2000,
        3,
        FileFormat::Csv,
        FileFormat::Csv,
        Encoding::Utf8,
    );
    let mut options = options_for(&files, &directory.path().join("one"));
    options.threads = 1;
    options.partition_bits = Some(0);
    let one = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("one thread");
    let mut options = options_for(&files, &directory.path().join("many"));
    options.partition_bits = Some(12);
    let many = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("many partitions");
    assert_eq!(one.summary.classes, many.summary.classes);
    assert_eq!(one.exceptions, many.exceptions);
}

#[test]
fn clean_files_exit_with_zero_and_parquet_exceptions_are_written() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let options = GenerateOptions {
        rows: 1000,
        seed: 5,
        discrepancy_parts_per_million: 0,
        out_dir: directory.path().to_path_buf(),
        ledger_format: FileFormat::Csv,
        channel_format: FileFormat::Csv,
        channel_encoding: Encoding::Utf8,
    };
    let files = generate(&options, &NoProgress).expect("generate");
    let mut run_options = options_for(&files, &directory.path().join("out"));
    run_options.exceptions_format = ExceptionsFormat::Parquet;
    let outcome = tally_recon::run(&run_options, &NoProgress, &NoStopwatch).expect("run");
    assert_eq!(outcome.summary.exit_code, 0);
    assert_eq!(outcome.summary.count(Class::Matched), 1000);
    assert!(directory.path().join("out/exceptions.parquet").exists());
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(directory.path().join("out/summary.json")).expect("summary"),
    )
    .expect("summary is JSON");
    assert_eq!(summary["classes"]["matched"]["count"], 1000);
}

#[test]
fn generated_exceptions_parquet_has_one_row_per_exception() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let directory = tempfile::tempdir().expect("temporary directory");
    let files = generate_files(
        directory.path(),
        1500,
        9,
        FileFormat::Csv,
        FileFormat::Parquet,
        Encoding::Utf8,
    );
    let mut options = options_for(&files, &directory.path().join("out"));
    options.exceptions_format = ExceptionsFormat::Parquet;
    let outcome = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run");
    let file = std::fs::File::open(directory.path().join("out/exceptions.parquet")).expect("open");
    let reader = SerializedFileReader::new(file).expect("parquet");
    assert_eq!(
        reader.metadata().file_metadata().num_rows() as u64,
        outcome.summary.exceptions
    );
    assert_eq!(counts(&outcome), files.expected);
}
