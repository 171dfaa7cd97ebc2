//! A whole run: plan the memory budget, scan both inputs into partitions, match the partitions on all cores, write the outputs.

use crate::control::{check, ControlOutcome};
use crate::error::ReconError;
use crate::kernel::{reconcile_partition, ClassTotals, Exception, KernelSettings};
use crate::layout::Layout;
use crate::output::{
    sort_exceptions, write_exceptions, ExceptionsFormat, RunFacts, SideSummary, Summary,
};
use crate::progress::Progress;
use crate::record::{RowBuilder, StatusTable};
use crate::rules::Rules;
use crate::scan::{scan_file, BadRowWriter, ScanSettings};
use crate::store::{Side, Store};
use crate::timestamp::{format_utc, TIMESTAMP_ABSENT};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

/// Default memory budget: 5 GiB (the 50M × 50M CSV benchmark then runs without spilling,
/// under the 6 GB peak target).
pub const MEMORY_LIMIT_DEFAULT_BYTES: u64 = 5 << 30;
/// Largest block of input parsed by one task.
const BLOCK_BYTES_MAX: usize = 8 << 20;
/// Smallest block of input parsed by one task.
const BLOCK_BYTES_MIN: usize = 64 << 10;
/// Partition counts are powers of two between these.
const PARTITION_BITS_MIN: u32 = 8;
const PARTITION_BITS_MAX: u32 = 12;
/// Input bytes per partition aimed at when the budget allows it.
const PARTITION_INPUT_BYTES: u64 = 8 << 20;

/// Measures elapsed time for the report; the caller provides it (the engine reads no clock).
pub trait Stopwatch: Sync {
    fn elapsed(&self) -> Duration;
}

/// A stopwatch that always reads zero (tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStopwatch;

impl Stopwatch for NoStopwatch {
    fn elapsed(&self) -> Duration {
        Duration::ZERO
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub ledger: PathBuf,
    pub ledger_layout: Layout,
    pub channel: PathBuf,
    pub channel_layout: Layout,
    pub rules: Rules,
    pub out_dir: PathBuf,
    pub memory_limit_bytes: u64,
    /// 0: one per core.
    pub threads: usize,
    /// Where spill files go; default: a temporary directory inside `out_dir`.
    pub spill_dir: Option<PathBuf>,
    pub exceptions_format: ExceptionsFormat,
    /// Overrides the partition count (2^bits) chosen from the input size and budget.
    pub partition_bits: Option<u32>,
    /// Most bad rows written to `bad_rows.csv`; the others are counted and the report says
    /// how many were left out. `None`: every one is written.
    pub bad_rows_max: Option<u64>,
}

impl RunOptions {
    /// Options with the default budget, threads and formats.
    pub fn new(
        ledger: PathBuf,
        ledger_layout: Layout,
        channel: PathBuf,
        channel_layout: Layout,
        rules: Rules,
        out_dir: PathBuf,
    ) -> RunOptions {
        RunOptions {
            ledger,
            ledger_layout,
            channel,
            channel_layout,
            rules,
            out_dir,
            memory_limit_bytes: MEMORY_LIMIT_DEFAULT_BYTES,
            threads: 0,
            spill_dir: None,
            exceptions_format: ExceptionsFormat::Csv,
            partition_bits: None,
            bad_rows_max: None,
        }
    }
}

/// The result of a run; the outputs are already written.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub summary: Summary,
    pub exceptions: Vec<Exception>,
}

/// Parses a byte size such as `4GiB`, `512MB`, `64KiB` or `1000000`.
pub fn parse_byte_size(text: &str) -> Result<u64, ReconError> {
    let text = text.trim();
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| ReconError::Argument(format!("{text:?} is not a byte size like 4GiB")))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(ReconError::Argument(format!(
                "{text:?}: unknown unit {unit:?}"
            )))
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| ReconError::Argument(format!("{text:?} is too large")))
}

/// Reconciles the ledger file against the channel file and writes the outputs to `out_dir`:
/// `exceptions.csv` (or `.parquet`), `bad_rows.csv`, `summary.json` and `report.txt`.
pub fn run(
    options: &RunOptions,
    progress: &dyn Progress,
    stopwatch: &dyn Stopwatch,
) -> Result<RunOutcome, ReconError> {
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |count| count.get())
    } else {
        options.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|error| ReconError::Internal(format!("cannot start threads: {error}")))?;
    pool.install(|| run_in_pool(options, threads, progress, stopwatch))
}

fn file_size(path: &std::path::Path) -> Result<u64, ReconError> {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .map_err(|error| ReconError::io(path, error))
}

fn run_in_pool(
    options: &RunOptions,
    threads: usize,
    progress: &dyn Progress,
    stopwatch: &dyn Stopwatch,
) -> Result<RunOutcome, ReconError> {
    let rules = &options.rules;
    let statuses = StatusTable::build(&[&options.ledger_layout, &options.channel_layout], rules)?;
    let ledger_builder = RowBuilder::new(&options.ledger_layout, &statuses, rules.batch_enabled)?;
    let channel_builder = RowBuilder::new(&options.channel_layout, &statuses, false)?;
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|error| ReconError::io(&options.out_dir, error))?;
    let input_bytes = file_size(&options.ledger)? + file_size(&options.channel)?;

    // Memory plan: blocks in flight, partition buffers up to the threshold, and in phase two
    // one partition pair (plus its hash table) per thread.
    let limit = usize::try_from(options.memory_limit_bytes).unwrap_or(usize::MAX);
    let block_bytes = (limit / (8 * threads)).clamp(BLOCK_BYTES_MIN, BLOCK_BYTES_MAX);
    let blocks_in_flight = 2 * threads;
    // One wave parsed while the next is read: raw, decoded and parsed bytes of two waves.
    let in_flight_bytes = 2 * blocks_in_flight * block_bytes * 3;
    // A tenth is kept for phase two: one hash table per thread and the exceptions.
    let threshold_bytes = limit.saturating_sub(in_flight_bytes) / 10 * 9;
    let partition_bits = match options.partition_bits {
        Some(bits) => bits.min(PARTITION_BITS_MAX),
        None => {
            // A partition pair must fit one thread's share of the budget, and should hold about
            // 8 MiB of input so that its hash table stays small enough for the caches.
            let per_partition = ((limit / (8 * threads)) as u64).clamp(1, PARTITION_INPUT_BYTES);
            let wanted = input_bytes.div_ceil(per_partition).max(1);
            (64 - (wanted - 1).leading_zeros()).clamp(PARTITION_BITS_MIN, PARTITION_BITS_MAX)
        }
    };
    let spill_parent = options
        .spill_dir
        .clone()
        .unwrap_or_else(|| options.out_dir.clone());
    std::fs::create_dir_all(&spill_parent).map_err(|error| ReconError::io(&spill_parent, error))?;
    let spill_directory = tempfile::Builder::new()
        .prefix(".tally-recon-spill-")
        .tempdir_in(&spill_parent)
        .map_err(|error| ReconError::io(&spill_parent, error))?;
    let mut store = Store::new(1 << partition_bits, spill_directory.path(), threshold_bytes);
    let settings = ScanSettings {
        partition_bits,
        block_bytes,
        blocks_in_flight,
    };

    let mut bad_rows =
        BadRowWriter::create(&options.out_dir.join("bad_rows.csv"), options.bad_rows_max)?;
    progress.begin("read", input_bytes);
    let ledger = scan_file(
        &options.ledger,
        &options.ledger_layout,
        &ledger_builder,
        Side::Ledger,
        settings,
        &mut store,
        &mut bad_rows,
        progress,
    )?;
    let ledger_bad_rows_written = bad_rows.written;
    let channel = scan_file(
        &options.channel,
        &options.channel_layout,
        &channel_builder,
        Side::Channel,
        settings,
        &mut store,
        &mut bad_rows,
        progress,
    )?;
    progress.end();
    let (bad_rows_written, bad_rows_not_written) = bad_rows.finish()?;
    let ledger_name = options.ledger.display().to_string();
    let channel_name = options.channel.display().to_string();
    let ledger_controls = check(
        &options.ledger_layout,
        &ledger_name,
        &ledger.controls,
        ledger.rows,
        ledger.bad_row_count,
    );
    let channel_controls = check(
        &options.channel_layout,
        &channel_name,
        &channel.controls,
        channel.rows,
        channel.bad_row_count,
    );
    let read_seconds = stopwatch.elapsed().as_secs_f64();
    let statistics = store.statistics;

    let cutoff = rules
        .timing_cutoff
        .or((channel.max_timestamp != TIMESTAMP_ABSENT).then_some(channel.max_timestamp));
    let timing_from = match (rules.timing_window_seconds, cutoff) {
        (Some(window), Some(cutoff)) => Some(cutoff.saturating_sub(window)),
        _ => None,
    };
    let kernel_settings = KernelSettings {
        rules,
        statuses: &statuses,
        timing_from,
    };
    let mut pairs = store.into_pairs();
    // Largest partitions first, so that a partition swollen by a skewed key starts early and
    // the others fill the remaining cores around it.
    pairs.sort_by_key(|(index, ledger, channel)| {
        (
            std::cmp::Reverse(ledger.total_bytes() + channel.total_bytes()),
            *index,
        )
    });
    let partitions = pairs.len();
    progress.begin("match", partitions as u64);
    let outcomes: Vec<Result<(ClassTotals, Vec<Exception>), ReconError>> = pairs
        .into_par_iter()
        .map(|(_, ledger, channel)| {
            let ledger = ledger.load()?;
            let channel = channel.load()?;
            let outcome = reconcile_partition(&ledger, &channel, &kernel_settings);
            progress.advance(1);
            Ok((outcome.totals, outcome.exceptions))
        })
        .collect();
    progress.end();
    let mut totals = ClassTotals::default();
    let mut exceptions = Vec::new();
    for outcome in outcomes {
        let (partition_totals, partition_exceptions) = outcome?;
        totals.merge(&partition_totals);
        exceptions.extend(partition_exceptions);
    }
    sort_exceptions(&mut exceptions, &ledger, &channel);
    let exceptions_path = options.out_dir.join(match options.exceptions_format {
        ExceptionsFormat::Csv => "exceptions.csv",
        ExceptionsFormat::Parquet => "exceptions.parquet",
    });
    write_exceptions(
        &exceptions_path,
        options.exceptions_format,
        &exceptions,
        &ledger,
        &channel,
        &statuses,
    )?;
    drop(spill_directory);

    let bad_row_count = ledger.bad_row_count + channel.bad_row_count;
    let exception_count = exceptions.len() as u64;
    let elapsed_seconds = stopwatch.elapsed().as_secs_f64();
    let side_summary =
        |file: String, scan: &crate::scan::SideScan, written: u64, controls: &ControlOutcome| {
            SideSummary {
                file,
                bytes: scan.bytes,
                rows: scan.rows,
                bad_rows: scan.bad_row_count,
                bad_rows_written: written,
                controls_checked: controls.checked,
                control_exceptions: controls.exceptions.len() as u64,
            }
        };
    let control_exceptions: Vec<_> = ledger_controls
        .exceptions
        .iter()
        .chain(&channel_controls.exceptions)
        .cloned()
        .collect();
    let summary = Summary {
        ledger: side_summary(
            ledger_name,
            &ledger,
            ledger_bad_rows_written,
            &ledger_controls,
        ),
        channel: side_summary(
            channel_name,
            &channel,
            bad_rows_written - ledger_bad_rows_written,
            &channel_controls,
        ),
        classes: Summary::classes_of(&totals),
        exceptions: exception_count,
        bad_rows: bad_row_count,
        bad_rows_not_written,
        exit_code: u8::from(
            exception_count > 0 || bad_row_count > 0 || !control_exceptions.is_empty(),
        ),
        control_exceptions,
        run: RunFacts {
            threads,
            partitions,
            memory_limit_bytes: options.memory_limit_bytes,
            peak_accounted_bytes: statistics.peak_accounted_bytes as u64,
            spilled_bytes: statistics.spilled_bytes,
            spill_events: statistics.spill_events,
            read_seconds,
            match_seconds: elapsed_seconds - read_seconds,
            elapsed_seconds,
            timing_from: timing_from.map(format_utc),
        },
    };
    crate::output::write_summary(&options.out_dir, &summary)?;
    Ok(RunOutcome {
        summary,
        exceptions,
    })
}
