//! `tally report flow-of-funds`: the daily flow of funds of a currency read from the
//! database (as `tally settle` does, no server needed), printed or written as JSON, CSV or
//! Parquet. Parquet keeps the CSV's long shape (one figure a row) with amounts as exact
//! decimals (`Decimal128` at the currency's exponent), so an analysis tool sums them
//! without floating point.

use anyhow::{anyhow, Context};
use arrow_array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use jiff::civil::Date;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tally_core::{Clock, Currency, SystemClock};
use tally_service::reports::flow_of_funds::FigureValue;
use tally_service::reports::{flow_of_funds, FlowOfFunds};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The flow of funds of a business date (a day in the service's zone that is over) in
    /// one currency: captured, refunded, fees, settled, reserves, paid out, clearing, and
    /// each balance's opening, movements and closing.
    FlowOfFunds(FlowOfFundsArguments),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct FlowOfFundsArguments {
    /// The business date (YYYY-MM-DD).
    #[arg(long)]
    pub date: Date,
    /// ISO 4217 code.
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Where to write it; standard output when absent (required for Parquet).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Database (`--database-url`) and configuration file, as for `tally serve`.
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::FlowOfFunds(arguments) => flow_of_funds_command(arguments).await,
    }
}

async fn flow_of_funds_command(arguments: FlowOfFundsArguments) -> anyhow::Result<ExitCode> {
    let currency =
        Currency::from_code(&arguments.currency).map_err(|error| anyhow!("--currency: {error}"))?;
    if arguments.format == Format::Parquet && arguments.output.is_none() {
        return Err(anyhow!("--format parquet needs --output FILE"));
    }
    let (database, config) = crate::jobs::open(&arguments.config).await?;
    let setup = config
        .credit
        .load()
        .map_err(|error| anyhow!("credit configuration: {error}"))?;
    let report = match flow_of_funds(
        &database,
        &setup.time_zone,
        arguments.date,
        currency,
        SystemClock.now(),
    )
    .await
    {
        Ok(report) => report,
        Err(error) => {
            eprintln!("{}: {error}", error.code());
            return Ok(ExitCode::from(1));
        }
    };
    let text = match arguments.format {
        Format::Json => Some(serde_json::to_string_pretty(&report)? + "\n"),
        Format::Csv => Some(report.to_csv()),
        Format::Parquet => None,
    };
    match (text, &arguments.output) {
        (Some(text), None) => print!("{text}"),
        (Some(text), Some(path)) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        (None, Some(path)) => write_parquet(&report, path)?,
        (None, None) => unreachable!("checked above: Parquet needs --output"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the report's figures as Parquet: `business_date`, `currency`, `figure`,
/// `amount` (exact decimal; null for a count) and `count` (null for an amount).
pub fn write_parquet(report: &FlowOfFunds, path: &Path) -> anyhow::Result<()> {
    let exponent = report.currency.exponent();
    let schema = Arc::new(Schema::new(vec![
        Field::new("business_date", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("figure", DataType::Utf8, false),
        Field::new(
            "amount",
            DataType::Decimal128(38, i8::try_from(exponent)?),
            true,
        ),
        Field::new("count", DataType::Int64, true),
    ]));
    let figures = report.figures();
    let date = report.business_date.to_string();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            figures.iter().map(|_| date.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            figures.iter().map(|_| report.currency.code()),
        )),
        Arc::new(StringArray::from_iter_values(
            figures.iter().map(|figure| figure.name.as_str()),
        )),
        Arc::new(
            Decimal128Array::from_iter(figures.iter().map(|figure| match figure.value {
                FigureValue::Amount(amount) => Some(i128::from(amount.minor())),
                FigureValue::Count(_) => None,
            }))
            .with_precision_and_scale(38, i8::try_from(exponent)?)?,
        ),
        Arc::new(Int64Array::from_iter(figures.iter().map(
            |figure| match figure.value {
                FigureValue::Amount(_) => None,
                FigureValue::Count(count) => Some(count),
            },
        ))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::Array;
    use tally_core::Amount;
    use tally_service::reports::flow_of_funds::Flows;

    fn report() -> FlowOfFunds {
        let cny = |minor| Amount::new(minor, Currency::CNY);
        FlowOfFunds {
            balances: Vec::new(),
            business_date: "2026-05-04".parse().unwrap(),
            currency: Currency::CNY,
            flows: Flows {
                captured: cny(123_456),
                captures: 3,
                clearing: cny(-5),
                fees_charged: cny(1_234),
                fee_income: cny(1_000),
                fees_returned: cny(0),
                paid_out: cny(0),
                refunded: cny(10_001),
                refunds: 1,
                reserve_held_net: cny(77),
                settled: cny(-42),
            },
            from: "2026-05-03T16:00:00Z".parse().unwrap(),
            time_zone: "Asia/Shanghai".into(),
            to: "2026-05-04T16:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn parquet_keeps_every_figure_exact() {
        let report = report();
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("flow.parquet");
        write_parquet(&report, &path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let mut read = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let names = batch
                .column(2)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let amounts = batch
                .column(3)
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap();
            let counts = batch
                .column(4)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            assert_eq!(amounts.scale(), 2);
            for row in 0..batch.num_rows() {
                let value = if amounts.is_null(row) {
                    FigureValue::Count(counts.value(row))
                } else {
                    FigureValue::Amount(Amount::new(
                        i64::try_from(amounts.value(row)).unwrap(),
                        Currency::CNY,
                    ))
                };
                read.push((names.value(row).to_string(), value));
            }
        }
        let expected: Vec<(String, FigureValue)> = report
            .figures()
            .into_iter()
            .map(|figure| (figure.name, figure.value))
            .collect();
        assert_eq!(read, expected);
        assert!(read.contains(&(
            "settled".to_string(),
            FigureValue::Amount(Amount::new(-42, Currency::CNY))
        )));
    }
}
