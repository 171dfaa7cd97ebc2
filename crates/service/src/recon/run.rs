//! One reconciliation run of Tally's books for a business date: the ledger side read from
//! the journal, matched by `tally_recon` against the channel's settlement file of the date,
//! the timing items of earlier runs carried in and matched, and the run stored with every
//! exception in one transaction.
//!
//! **Dates.** A business date is a UTC day, the bank simulator's value date: the ledger
//! side is what the journal recorded in `[D 00:00Z, D+1 00:00Z)`.
//!
//! **Timing items.** A ledger record missing from the bank's file is a timing difference,
//! not a break, when it was recorded within `timing_window_seconds` of the day's end: the
//! bank settles it in the next file. The next run carries it: if the bank's file of that day
//! has its reference with the same amount, it is matched there (the earlier exception is
//! resolved as `matched_later` on that date); if not, its window has passed and it becomes
//! `missing_in_channel`. The reverse (the bank settled it on D, Tally's books recorded it on
//! D+1, as when a step lost in flight is finished by recovery after midnight) is carried the
//! same way: a `missing_in_ledger` exception is carried into the next run once and matched
//! against that day's unmatched ledger records. Each exception is carried once, so the
//! window is one run.
//!
//! **Once per date.** A date reconciled is stored whole or not at all; asking again answers
//! the stored run, so a daily job repeated or resumed after a crash reconciles nothing twice.

use crate::recon::error::ReconServiceError;
use crate::recon::ledger_side::{write_ledger_side, LEDGER_LAYOUT};
use crate::recon::views::{exception_id, summary_of, RunView};
use jiff::civil::Date;
use jiff::{tz::TimeZone, Timestamp};
use std::collections::HashMap;
use std::path::PathBuf;
use tally_recon::kernel::Exception;
use tally_recon::{Class, Layout, NoProgress, NoStopwatch, Rules, RunOptions};
use tally_store::recon::{CarriedOutcome, ReconExceptionRow, ReconRunRow, RunInsert};
use tally_store::Database;

/// The bank simulator's settlement-file layout (layouts/simulator-settlement.toml).
pub const SIMULATOR_LAYOUT: &str = include_str!("../../../../layouts/simulator-settlement.toml");

/// Default timing window: records of the day's last two hours may settle the next day.
pub const TIMING_WINDOW_SECONDS_DEFAULT: i64 = 2 * 3600;

/// What a run of Tally's books needs.
#[derive(Debug, Clone)]
pub struct BooksRunOptions {
    pub business_date: Date,
    /// The channel's settlement file of the date.
    pub settlement_file: PathBuf,
    /// Its layout; the simulator's when `None`.
    pub channel_layout: Option<Layout>,
    /// Where the ledger-side file and the engine's outputs go.
    pub work_dir: PathBuf,
    pub timing_window_seconds: i64,
    pub memory_limit_bytes: u64,
    /// 0: one per core.
    pub threads: usize,
}

impl BooksRunOptions {
    pub fn new(business_date: Date, settlement_file: PathBuf, work_dir: PathBuf) -> Self {
        BooksRunOptions {
            business_date,
            settlement_file,
            channel_layout: None,
            work_dir,
            timing_window_seconds: TIMING_WINDOW_SECONDS_DEFAULT,
            memory_limit_bytes: 512 << 20,
            threads: 0,
        }
    }
}

/// What asking for a date's run did.
#[derive(Debug, Clone, PartialEq)]
pub enum BooksRun {
    Reconciled(RunView),
    /// The date was reconciled before; this is that run.
    AlreadyReconciled(RunView),
}

impl BooksRun {
    pub fn view(&self) -> &RunView {
        match self {
            BooksRun::Reconciled(view) | BooksRun::AlreadyReconciled(view) => view,
        }
    }
}

/// The start and end of a business date.
pub fn day_bounds(date: Date) -> Result<(Timestamp, Timestamp), ReconServiceError> {
    let invalid = |error: jiff::Error| ReconServiceError::Invalid(format!("date {date}: {error}"));
    let start = date.to_zoned(TimeZone::UTC).map_err(invalid)?.timestamp();
    let end = date
        .tomorrow()
        .and_then(|day| day.to_zoned(TimeZone::UTC))
        .map_err(invalid)?
        .timestamp();
    Ok((start, end))
}

/// One side of an unmatched record: its reference, currency and amount in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Unmatched {
    reference: String,
    currency: String,
    amount: i64,
}

fn side_amount(side: &Option<tally_recon::kernel::ExceptionSide>) -> Option<i64> {
    side.as_ref()
        .and_then(|side| i64::try_from(side.amount).ok())
}

fn currency_of(exception: &Exception) -> String {
    let side = exception.ledger.as_ref().or(exception.channel.as_ref());
    side.map(|side| String::from_utf8_lossy(&side.currency).into_owned())
        .unwrap_or_default()
}

/// Reconciles the books of `options.business_date`, or answers the stored run of it.
pub async fn reconcile_books(
    database: &Database,
    options: &BooksRunOptions,
    now: Timestamp,
) -> Result<BooksRun, ReconServiceError> {
    let date = options.business_date;
    let date_text = date.to_string();
    if let Some(stored) = database.recon_run(&date_text).await? {
        return Ok(BooksRun::AlreadyReconciled(RunView::of(&stored)?));
    }
    let (start, end) = day_bounds(date)?;
    if now < end {
        return Err(ReconServiceError::DateNotOver {
            date: date_text,
            ends_at: end.to_string(),
        });
    }
    std::fs::create_dir_all(&options.work_dir).map_err(|error| ReconServiceError::LedgerSide {
        path: options.work_dir.display().to_string(),
        message: error.to_string(),
    })?;
    let ledger_path = options.work_dir.join(format!("ledger-{date_text}.csv"));
    let ledger_records = write_ledger_side(database, start, end, &ledger_path).await?;

    // Amounts exactly (the default tolerance is none).
    let rules = Rules {
        timing_window_seconds: Some(options.timing_window_seconds),
        timing_cutoff: Some(end.as_second()),
        // Tally's books do not hold the bank's fee, and neither file has a status.
        status_check: false,
        fee_check: false,
        ..Rules::default()
    };
    let channel_layout = match &options.channel_layout {
        Some(layout) => layout.clone(),
        None => Layout::from_toml(SIMULATOR_LAYOUT, "simulator-settlement.toml")?,
    };
    let mut engine = RunOptions::new(
        ledger_path,
        Layout::from_toml(LEDGER_LAYOUT, "tally-ledger-side.toml")?,
        options.settlement_file.clone(),
        channel_layout,
        rules,
        options.work_dir.join(format!("out-{date_text}")),
    );
    engine.memory_limit_bytes = options.memory_limit_bytes;
    engine.threads = options.threads;
    let outcome =
        tokio::task::spawn_blocking(move || tally_recon::run(&engine, &NoProgress, &NoStopwatch))
            .await
            .map_err(|error| {
                ReconServiceError::Invalid(format!("the engine's task failed: {error}"))
            })??;

    // Carry the earlier runs' timing items in and match them against what is unmatched today.
    let carried_rows = database
        .recon_exceptions_to_carry(&date_text, &["timing", "missing_in_ledger"])
        .await?;
    let mut exceptions: Vec<Option<Exception>> = outcome.exceptions.into_iter().map(Some).collect();
    // Today's unmatched records by side, for the carried items to find.
    let mut only_in_channel: HashMap<Unmatched, usize> = HashMap::new();
    let mut only_in_ledger: HashMap<Unmatched, usize> = HashMap::new();
    for (index, exception) in exceptions.iter().enumerate() {
        let Some(exception) = exception else { continue };
        let unmatched = |side| {
            side_amount(side).map(|amount| Unmatched {
                reference: String::from_utf8_lossy(&exception.key).into_owned(),
                currency: currency_of(exception),
                amount,
            })
        };
        match exception.class {
            Class::MissingInLedger => {
                if let Some(key) = unmatched(&exception.channel) {
                    only_in_channel.entry(key).or_insert(index);
                }
            }
            Class::MissingInChannel | Class::Timing => {
                if let Some(key) = unmatched(&exception.ledger) {
                    only_in_ledger.entry(key).or_insert(index);
                }
            }
            _ => {}
        }
    }
    let mut carried = Vec::with_capacity(carried_rows.len());
    let mut carried_matched = 0_i64;
    for row in &carried_rows {
        let from_ledger = row.class == "timing";
        let amount = if from_ledger {
            row.ledger_amount_minor
        } else {
            row.channel_amount_minor
        };
        let found = amount.and_then(|amount| {
            let key = Unmatched {
                reference: row.reference.clone(),
                currency: row.currency.clone(),
                amount,
            };
            let today = if from_ledger {
                &mut only_in_channel
            } else {
                &mut only_in_ledger
            };
            today.remove(&key)
        });
        match found {
            Some(index) => {
                exceptions[index] = None;
                carried_matched += 1;
                carried.push(CarriedOutcome {
                    id: row.id.clone(),
                    matched_on: Some(date_text.clone()),
                    class: row.class.clone(),
                });
            }
            None => carried.push(CarriedOutcome {
                id: row.id.clone(),
                matched_on: None,
                class: if from_ledger {
                    Class::MissingInChannel.name().to_string()
                } else {
                    row.class.clone()
                },
            }),
        }
    }

    let created_at = now.as_microsecond();
    let rows: Vec<ReconExceptionRow> = exceptions
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, exception)| {
            let sequence = index as i64 + 1;
            ReconExceptionRow {
                id: exception_id(date, sequence),
                business_date: date_text.clone(),
                sequence,
                class: exception.class.name().to_string(),
                reference: String::from_utf8_lossy(&exception.key).into_owned(),
                currency: currency_of(&exception),
                ledger_amount_minor: side_amount(&exception.ledger),
                channel_amount_minor: side_amount(&exception.channel),
                ledger_at: exception
                    .ledger
                    .as_ref()
                    .and_then(|side| side.timestamp)
                    .map(|seconds| seconds * 1_000_000),
                state: "open".into(),
                assignee: None,
                resolution: None,
                note: None,
                adjusting_entry_id: None,
                carried_to: None,
                matched_on: None,
                version: 1,
                created_at,
                updated_at: created_at,
            }
        })
        .collect();
    let matched = outcome
        .summary
        .classes
        .get(Class::Matched.name())
        .map_or(0, |class| class.count);
    let summary = summary_of(&outcome.summary, &rows)?;
    let run = ReconRunRow {
        business_date: date_text.clone(),
        settlement_file: options
            .settlement_file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ledger_records: ledger_records as i64,
        channel_records: outcome.summary.channel.rows as i64,
        matched: matched as i64,
        exceptions: rows.len() as i64,
        carried_in: carried_rows.len() as i64,
        carried_matched,
        summary,
        created_at,
    };
    match database.insert_recon_run(&run, &rows, &carried).await? {
        RunInsert::Inserted => Ok(BooksRun::Reconciled(RunView::of(&run)?)),
        RunInsert::DateTaken => {
            let stored = database
                .recon_run(&date_text)
                .await?
                .ok_or_else(|| ReconServiceError::RunNotFound(date_text.clone()))?;
            Ok(BooksRun::AlreadyReconciled(RunView::of(&stored)?))
        }
    }
}
