//! Outputs of a run: the exceptions file (CSV or Parquet, both sides side by side), bad rows, the JSON summary and the human report.

use crate::control::ControlException;
use crate::error::ReconError;
use crate::kernel::{Class, ClassTotals, Exception, ExceptionSide};
use crate::record::{StatusTable, KEY_SEPARATOR};
use crate::scan::SideScan;
use crate::timestamp::format_utc;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

/// The format of the exceptions file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExceptionsFormat {
    #[default]
    Csv,
    Parquet,
}

/// Counts and sums of one currency within a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencySummary {
    pub count: u64,
    pub ledger_amount: i128,
    pub channel_amount: i128,
}

/// Counts and sums of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassSummary {
    pub count: u64,
    pub by_currency: BTreeMap<String, CurrencySummary>,
}

/// One input of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideSummary {
    pub file: String,
    pub bytes: u64,
    pub rows: u64,
    pub bad_rows: u64,
    /// Bad rows of this file written to `bad_rows.csv`.
    pub bad_rows_written: u64,
    /// Control totals of its header and trailer lines compared with the rows.
    pub controls_checked: u64,
    pub control_exceptions: u64,
}

/// How the run went (not part of the reconciliation result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFacts {
    pub threads: usize,
    pub partitions: usize,
    pub memory_limit_bytes: u64,
    pub peak_accounted_bytes: u64,
    pub spilled_bytes: u64,
    pub spill_events: u64,
    pub read_seconds: f64,
    pub match_seconds: f64,
    pub elapsed_seconds: f64,
    /// Ledger-only records at or after this instant were classed as timing differences.
    pub timing_from: Option<String>,
}

/// The JSON summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub ledger: SideSummary,
    pub channel: SideSummary,
    /// Every class, with counts and sums per currency (amounts in minor units).
    pub classes: BTreeMap<String, ClassSummary>,
    /// Records (or batches) in a class other than matched.
    pub exceptions: u64,
    pub bad_rows: u64,
    /// Bad rows counted but not written to `bad_rows.csv` (over `--bad-rows-max`).
    pub bad_rows_not_written: u64,
    /// Files whose own control totals or framing do not hold: a class apart from the
    /// matching classes (the file, not a transaction, is in question).
    pub control_exceptions: Vec<ControlException>,
    /// 0 when everything matched, no row was bad and every control held; 1 otherwise.
    pub exit_code: u8,
    pub run: RunFacts,
}

impl Summary {
    pub(crate) fn classes_of(totals: &ClassTotals) -> BTreeMap<String, ClassSummary> {
        Class::ALL
            .iter()
            .map(|class| {
                let list = &totals.by_class[*class as usize];
                let by_currency = list
                    .iter()
                    .map(|(currency, totals)| {
                        (
                            String::from_utf8_lossy(currency).into_owned(),
                            CurrencySummary {
                                count: totals.count,
                                ledger_amount: totals.ledger_amount,
                                channel_amount: totals.channel_amount,
                            },
                        )
                    })
                    .collect();
                (
                    class.name().to_owned(),
                    ClassSummary {
                        count: totals.count(*class),
                        by_currency,
                    },
                )
            })
            .collect()
    }

    /// Count of a class.
    pub fn count(&self, class: Class) -> u64 {
        self.classes
            .get(class.name())
            .map_or(0, |summary| summary.count)
    }

    /// A short human report.
    pub fn report(&self) -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        let _ = writeln!(text, "Reconciliation report");
        for (name, side) in [("ledger", &self.ledger), ("channel", &self.channel)] {
            let _ = writeln!(
                text,
                "  {name:<8} {}: {} rows, {} bad, {:.1} MB",
                side.file,
                side.rows,
                side.bad_rows,
                side.bytes as f64 / 1e6
            );
        }
        let _ = writeln!(
            text,
            "  {:<22} {:>12}  sums by currency (ledger / channel, minor units)",
            "class", "count"
        );
        for class in Class::ALL {
            if let Some(summary) = self.classes.get(class.name()) {
                let sums: Vec<String> = summary
                    .by_currency
                    .iter()
                    .map(|(currency, totals)| {
                        format!(
                            "{currency} {} / {}",
                            totals.ledger_amount, totals.channel_amount
                        )
                    })
                    .collect();
                let _ = writeln!(
                    text,
                    "  {:<22} {:>12}  {}",
                    class.name(),
                    summary.count,
                    sums.join(", ")
                );
            }
        }
        let checked = self.ledger.controls_checked + self.channel.controls_checked;
        if checked > 0 || !self.control_exceptions.is_empty() {
            let _ = writeln!(
                text,
                "  control totals of header and trailer lines: {checked} checked, {} control exceptions",
                self.control_exceptions.len()
            );
            for exception in &self.control_exceptions {
                let line = exception
                    .line
                    .map(|line| format!(", line {line}"))
                    .unwrap_or_default();
                let currency = exception
                    .currency
                    .as_ref()
                    .map(|currency| format!(" {currency}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    text,
                    "    {}{currency} ({}{line}): {}",
                    exception.kind.name(),
                    exception.file,
                    exception.detail
                );
            }
        }
        if self.bad_rows > 0 {
            if self.bad_rows_not_written == 0 {
                let _ = writeln!(
                    text,
                    "  bad rows: {}, every one written to bad_rows.csv",
                    self.bad_rows
                );
            } else {
                let _ = writeln!(
                    text,
                    "  bad rows: {}; bad_rows.csv holds the first {}, {} were left out (--bad-rows-max)",
                    self.bad_rows,
                    self.bad_rows - self.bad_rows_not_written,
                    self.bad_rows_not_written
                );
            }
        }
        let _ = writeln!(
            text,
            "  exceptions: {}, control exceptions: {}, bad rows: {}; {}",
            self.exceptions,
            self.control_exceptions.len(),
            self.bad_rows,
            if self.exit_code == 0 {
                "everything matched"
            } else {
                "differences found"
            }
        );
        let run = &self.run;
        let rows = self.ledger.rows + self.channel.rows;
        let _ = writeln!(
            text,
            "  {:.2} s ({:.2} s read, {:.2} s match), {:.1} M rows/s, {} threads, {} partitions, {:.1} MB spilled",
            run.elapsed_seconds,
            run.read_seconds,
            run.match_seconds,
            if run.elapsed_seconds > 0.0 { rows as f64 / run.elapsed_seconds / 1e6 } else { 0.0 },
            run.threads,
            run.partitions,
            run.spilled_bytes as f64 / 1e6
        );
        text
    }
}

/// Sorts exceptions into a stable order: by ledger line, then channel line.
pub(crate) fn sort_exceptions(exceptions: &mut [Exception], ledger: &SideScan, channel: &SideScan) {
    let position = |side: &Option<ExceptionSide>, scan: &SideScan| {
        side.as_ref()
            .map_or(u64::MAX, |side| scan.line(side.block, side.line))
    };
    exceptions.sort_by_cached_key(|exception| {
        (
            position(&exception.ledger, ledger),
            position(&exception.channel, channel),
            exception.class,
        )
    });
}

fn display_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace(char::from(KEY_SEPARATOR), "|")
}

pub(crate) fn csv_field(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|byte| matches!(byte, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

const EXCEPTION_COLUMNS: [&str; 19] = [
    "class",
    "key",
    "ledger_line",
    "ledger_amount",
    "ledger_currency",
    "ledger_status",
    "ledger_timestamp",
    "ledger_fee",
    "ledger_batch",
    "ledger_rows",
    "channel_line",
    "channel_amount",
    "channel_currency",
    "channel_status",
    "channel_timestamp",
    "channel_fee",
    "channel_batch",
    "channel_rows",
    "amount_difference",
];

/// The text of every column of one exception row (empty for an absent side).
fn exception_texts(
    exception: &Exception,
    ledger: &SideScan,
    channel: &SideScan,
    statuses: &StatusTable,
) -> [String; 19] {
    let side_texts = |side: &Option<ExceptionSide>, scan: &SideScan| -> [String; 8] {
        match side {
            Some(side) => [
                scan.line(side.block, side.line).to_string(),
                side.amount.to_string(),
                String::from_utf8_lossy(&side.currency).into_owned(),
                statuses.name(side.status).to_owned(),
                side.timestamp.map(format_utc).unwrap_or_default(),
                side.fee.map(|fee| fee.to_string()).unwrap_or_default(),
                String::from_utf8_lossy(&side.batch).into_owned(),
                side.rows.to_string(),
            ],
            None => Default::default(),
        }
    };
    let [l0, l1, l2, l3, l4, l5, l6, l7] = side_texts(&exception.ledger, ledger);
    let [c0, c1, c2, c3, c4, c5, c6, c7] = side_texts(&exception.channel, channel);
    let difference = match (&exception.ledger, &exception.channel) {
        (Some(left), Some(right)) => (left.amount - right.amount).to_string(),
        _ => String::new(),
    };
    [
        exception.class.name().to_owned(),
        display_key(&exception.key),
        l0,
        l1,
        l2,
        l3,
        l4,
        l5,
        l6,
        l7,
        c0,
        c1,
        c2,
        c3,
        c4,
        c5,
        c6,
        c7,
        difference,
    ]
}

/// Writes the exceptions file.
pub(crate) fn write_exceptions(
    path: &Path,
    format: ExceptionsFormat,
    exceptions: &[Exception],
    ledger: &SideScan,
    channel: &SideScan,
    statuses: &StatusTable,
) -> Result<(), ReconError> {
    match format {
        ExceptionsFormat::Csv => {
            let file = File::create(path).map_err(|error| ReconError::io(path, error))?;
            let mut writer = BufWriter::with_capacity(1 << 20, file);
            let mut line = Vec::with_capacity(256);
            line.extend_from_slice(EXCEPTION_COLUMNS.join(",").as_bytes());
            line.push(b'\n');
            for exception in exceptions {
                for (index, text) in exception_texts(exception, ledger, channel, statuses)
                    .iter()
                    .enumerate()
                {
                    if index > 0 {
                        line.push(b',');
                    }
                    csv_field(&mut line, text);
                }
                line.push(b'\n');
                if line.len() > 64 * 1024 {
                    writer
                        .write_all(&line)
                        .map_err(|error| ReconError::io(path, error))?;
                    line.clear();
                }
            }
            writer
                .write_all(&line)
                .map_err(|error| ReconError::io(path, error))?;
            writer.flush().map_err(|error| ReconError::io(path, error))
        }
        ExceptionsFormat::Parquet => {
            write_exceptions_parquet(path, exceptions, ledger, channel, statuses)
        }
    }
}

fn write_exceptions_parquet(
    path: &Path,
    exceptions: &[Exception],
    ledger: &SideScan,
    channel: &SideScan,
    statuses: &StatusTable,
) -> Result<(), ReconError> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let parquet_error = |reason: String| ReconError::Parquet {
        path: path.to_path_buf(),
        reason,
    };
    let schema = Arc::new(Schema::new(
        EXCEPTION_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let file = File::create(path).map_err(|error| ReconError::io(path, error))?;
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(properties))
        .map_err(|error| parquet_error(error.to_string()))?;
    for chunk in exceptions.chunks(65_536) {
        let rows: Vec<[String; 19]> = chunk
            .iter()
            .map(|exception| exception_texts(exception, ledger, channel, statuses))
            .collect();
        let columns: Vec<ArrayRef> = (0..EXCEPTION_COLUMNS.len())
            .map(|column| {
                Arc::new(StringArray::from_iter(rows.iter().map(|row| {
                    let text = &row[column];
                    (!text.is_empty()).then_some(text.as_str())
                }))) as ArrayRef
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|error| parquet_error(error.to_string()))?;
        writer
            .write(&batch)
            .map_err(|error| parquet_error(error.to_string()))?;
    }
    writer
        .close()
        .map_err(|error| parquet_error(error.to_string()))?;
    Ok(())
}

/// Writes the summary JSON and the human report next to the exceptions.
pub fn write_summary(out_dir: &Path, summary: &Summary) -> Result<(), ReconError> {
    let path = out_dir.join("summary.json");
    let json = serde_json::to_string_pretty(summary)
        .map_err(|error| ReconError::Internal(format!("summary is not serialisable: {error}")))?;
    std::fs::write(&path, json + "\n").map_err(|error| ReconError::io(&path, error))?;
    let path = out_dir.join("report.txt");
    std::fs::write(&path, summary.report()).map_err(|error| ReconError::io(&path, error))
}
