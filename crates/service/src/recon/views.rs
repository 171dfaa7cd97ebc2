//! A reconciliation run and its exceptions as the API and the CLI show them. Fields are in
//! alphabetical order, the order of Tally's other JSON answers; amounts are decimal strings.

use crate::recon::error::ReconServiceError;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{Amount, Currency};
use tally_recon::Summary;
use tally_store::recon::{ReconExceptionRow, ReconRunRow};
use tally_store::StoreError;
use utoipa::ToSchema;

/// Count and sums of one class in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClassTotalsView {
    /// Sum of the channel side's amounts, in major units.
    #[schema(example = "120.00")]
    pub channel_amount: String,
    pub count: u64,
    /// Sum of the ledger side's amounts, in major units.
    #[schema(example = "120.00")]
    pub ledger_amount: String,
}

/// What a run found, stored as its summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    /// Rows of the channel's file that could not be read (the run's counts leave them out).
    pub bad_rows: u64,
    /// Per class (`matched`, `missing_in_channel`, `missing_in_ledger`, `amount_mismatch`,
    /// `duplicate_in_channel`, `timing`, ...), per currency. Only classes with records.
    pub classes: BTreeMap<String, BTreeMap<String, ClassTotalsView>>,
    /// Control totals of the channel's file (its trailers) that do not hold, as sentences.
    pub control_exceptions: Vec<String>,
}

/// A reconciliation run of one business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    #[schema(example = "2026-11-30")]
    pub business_date: String,
    /// Exceptions of earlier runs carried into this one (timing items and records the
    /// bank settled before Tally's books had them).
    pub carried_in: i64,
    /// Of those, matched in this run.
    pub carried_matched: i64,
    pub channel_records: i64,
    pub created_at: String,
    /// Exceptions this run opened.
    pub exceptions: i64,
    pub ledger_records: i64,
    pub matched: i64,
    /// The settlement file's name.
    pub settlement_file: String,
    pub summary: RunSummary,
}

impl RunView {
    pub fn of(row: &ReconRunRow) -> Result<RunView, ReconServiceError> {
        let summary: RunSummary = serde_json::from_str(&row.summary).map_err(|error| {
            StoreError::Corrupt(format!("recon run {} summary: {error}", row.business_date))
        })?;
        Ok(RunView {
            business_date: row.business_date.clone(),
            carried_in: row.carried_in,
            carried_matched: row.carried_matched,
            channel_records: row.channel_records,
            created_at: time_text(row.created_at)?,
            exceptions: row.exceptions,
            ledger_records: row.ledger_records,
            matched: row.matched,
            settlement_file: row.settlement_file.clone(),
            summary,
        })
    }
}

/// One exception: a worklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionView {
    /// The adjusting journal entry that resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjusting_entry_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The run that found it.
    #[schema(example = "2026-11-30")]
    pub business_date: String,
    /// The later run a timing item was carried into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carried_to: Option<String>,
    /// The channel's amount, when the channel's file has the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_amount: Option<String>,
    /// `missing_in_channel`, `missing_in_ledger`, `amount_mismatch`, `duplicate_in_channel`,
    /// `duplicate_in_ledger`, `currency_mismatch` or `timing`.
    #[schema(example = "amount_mismatch")]
    pub class: String,
    pub created_at: String,
    #[schema(example = "CNY")]
    pub currency: String,
    #[schema(example = "rex_20261130_00000001")]
    pub id: String,
    /// Tally's amount, when the books have the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_amount: Option<String>,
    /// When the books recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_at: Option<String>,
    /// The date a later run matched it, for a timing item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The channel reference Tally used (or the bank's, when Tally has none).
    pub reference: String,
    /// `note`, `adjusting_entry` or `matched_later`, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// `open`, `assigned` or `resolved`.
    pub state: String,
    pub updated_at: String,
    /// Changes with every assignment or resolution.
    pub version: i64,
}

fn time_text(micros: i64) -> Result<String, ReconServiceError> {
    Timestamp::from_microsecond(micros)
        .map(|at| at.to_string())
        .map_err(|error| StoreError::Corrupt(format!("time {micros}: {error}")).into())
}

fn major(minor: i64, currency: &str) -> String {
    match Currency::from_code(currency) {
        Ok(currency) => Amount::new(minor, currency).to_decimal_string(),
        // A currency the engine read from a file but Tally does not know: minor units.
        Err(_) => minor.to_string(),
    }
}

impl ExceptionView {
    pub fn of(row: &ReconExceptionRow) -> Result<ExceptionView, ReconServiceError> {
        Ok(ExceptionView {
            adjusting_entry_id: row.adjusting_entry_id.clone(),
            assignee: row.assignee.clone(),
            business_date: row.business_date.clone(),
            carried_to: row.carried_to.clone(),
            channel_amount: row
                .channel_amount_minor
                .map(|minor| major(minor, &row.currency)),
            class: row.class.clone(),
            created_at: time_text(row.created_at)?,
            currency: row.currency.clone(),
            id: row.id.clone(),
            ledger_amount: row
                .ledger_amount_minor
                .map(|minor| major(minor, &row.currency)),
            ledger_at: row.ledger_at.map(time_text).transpose()?,
            matched_on: row.matched_on.clone(),
            note: row.note.clone(),
            reference: row.reference.clone(),
            resolution: row.resolution.clone(),
            state: row.state.clone(),
            updated_at: time_text(row.updated_at)?,
            version: row.version,
        })
    }
}

/// The id of a run's `sequence`th exception: sorts by date, then sequence.
pub fn exception_id(date: Date, sequence: i64) -> String {
    format!("rex_{}_{sequence:08}", date.strftime("%Y%m%d"))
}

/// The summary JSON of a run: matched from the engine, every other class from the
/// exceptions stored (after carried items were matched).
pub(crate) fn summary_of(
    engine: &Summary,
    exceptions: &[ReconExceptionRow],
) -> Result<String, ReconServiceError> {
    let mut sums: BTreeMap<String, BTreeMap<String, (u64, i64, i64)>> = BTreeMap::new();
    if let Some(matched) = engine.classes.get("matched") {
        for (currency, totals) in &matched.by_currency {
            let ledger = i64::try_from(totals.ledger_amount).unwrap_or(i64::MAX);
            let channel = i64::try_from(totals.channel_amount).unwrap_or(i64::MAX);
            sums.entry("matched".into())
                .or_default()
                .insert(currency.clone(), (totals.count, ledger, channel));
        }
    }
    for row in exceptions {
        let totals = sums
            .entry(row.class.clone())
            .or_default()
            .entry(row.currency.clone())
            .or_insert((0, 0, 0));
        totals.0 += 1;
        totals.1 += row.ledger_amount_minor.unwrap_or(0);
        totals.2 += row.channel_amount_minor.unwrap_or(0);
    }
    let classes = sums
        .into_iter()
        .map(|(class, by_currency)| {
            let by_currency = by_currency
                .into_iter()
                .map(|(currency, (count, ledger, channel))| {
                    let view = ClassTotalsView {
                        channel_amount: major(channel, &currency),
                        count,
                        ledger_amount: major(ledger, &currency),
                    };
                    (currency, view)
                })
                .collect::<BTreeMap<_, _>>();
            (class, by_currency)
        })
        .collect();
    let summary = RunSummary {
        bad_rows: engine.bad_rows,
        classes,
        control_exceptions: engine
            .control_exceptions
            .iter()
            .map(|control| control.detail.clone())
            .collect(),
    };
    serde_json::to_string(&summary)
        .map_err(|error| StoreError::Corrupt(format!("recon summary: {error}")).into())
}
