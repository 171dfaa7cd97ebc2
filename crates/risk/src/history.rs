//! Event history in Parquet, for back-testing: one row per event, the same fields as the
//! NDJSON form. The caller opens the file; this module only decodes and encodes.
//!
//! Columns (by name; optional ones may be absent or null): `id`, `kind`, `at` (RFC 3339
//! text), `customer`, then optional `device`, `ip`, `card`, `address`, `merchant`,
//! `amount` (decimal text in major units, "12.50") with `currency` (ISO 4217), `lat` and
//! `lon` (float64), `profile_field`. Every row goes through the same validation as JSON.

use crate::error::RiskError;
use crate::event::{Event, EventKind, GeoPoint, ProfileField};
use arrow_array::{Array, ArrayRef, Float64Array, LargeStringArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::reader::ChunkReader;
use std::sync::Arc;
use tally_core::{Amount, Currency};

/// Rows per batch, read and written.
const BATCH_ROWS: usize = 8192;

const TEXT_COLUMNS: [&str; 12] = [
    "id",
    "kind",
    "at",
    "customer",
    "device",
    "ip",
    "card",
    "address",
    "merchant",
    "amount",
    "currency",
    "profile_field",
];

fn history_error(message: impl Into<String>) -> RiskError {
    RiskError::InvalidEvent {
        message: message.into(),
    }
}

enum TextColumn<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
}

impl TextColumn<'_> {
    fn get(&self, row: usize) -> Option<&str> {
        match self {
            TextColumn::Utf8(array) => (!array.is_null(row)).then(|| array.value(row)),
            TextColumn::LargeUtf8(array) => (!array.is_null(row)).then(|| array.value(row)),
        }
    }
}

fn text_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<Option<TextColumn<'a>>, RiskError> {
    let Some(array) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let any = array.as_any();
    if let Some(array) = any.downcast_ref::<StringArray>() {
        Ok(Some(TextColumn::Utf8(array)))
    } else if let Some(array) = any.downcast_ref::<LargeStringArray>() {
        Ok(Some(TextColumn::LargeUtf8(array)))
    } else {
        Err(history_error(format!(
            "column {name:?} has type {}, expected text",
            array.data_type()
        )))
    }
}

fn float_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<Option<&'a Float64Array>, RiskError> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(array) => array
            .as_any()
            .downcast_ref::<Float64Array>()
            .map(Some)
            .ok_or_else(|| {
                history_error(format!(
                    "column {name:?} has type {}, expected float64",
                    array.data_type()
                ))
            }),
    }
}

/// Decodes every event of a Parquet file, in file order.
pub fn read_parquet_events<R: ChunkReader + 'static>(reader: R) -> Result<Vec<Event>, RiskError> {
    let parquet_error =
        |error: parquet::errors::ParquetError| history_error(format!("parquet: {error}"));
    let batches = ParquetRecordBatchReaderBuilder::try_new(reader)
        .map_err(parquet_error)?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(parquet_error)?;
    let mut events = Vec::new();
    for batch in batches {
        let batch = batch.map_err(|error| history_error(format!("parquet: {error}")))?;
        let columns: Vec<Option<TextColumn<'_>>> = TEXT_COLUMNS
            .iter()
            .map(|name| text_column(&batch, name))
            .collect::<Result<_, _>>()?;
        let latitude = float_column(&batch, "lat")?;
        let longitude = float_column(&batch, "lon")?;
        for row in 0..batch.num_rows() {
            let row_number = events.len() + 1;
            let value = |index: usize| columns[index].as_ref().and_then(|column| column.get(row));
            let required = |index: usize| {
                value(index).ok_or_else(|| {
                    history_error(format!(
                        "row {row_number}: {} is missing",
                        TEXT_COLUMNS[index]
                    ))
                })
            };
            let row_error = |message: String| history_error(format!("row {row_number}: {message}"));
            let kind = EventKind::parse(required(1)?)
                .ok_or_else(|| row_error(format!("unknown event kind {:?}", value(1))))?;
            let at = required(2)?
                .parse()
                .map_err(|error| row_error(format!("at: {error}")))?;
            let mut event = Event::new(required(0)?, kind, at, required(3)?);
            event.device = value(4).map(str::to_string);
            event.ip = value(5).map(str::to_string);
            event.card = value(6).map(str::to_string);
            event.address = value(7).map(str::to_string);
            event.merchant = value(8).map(str::to_string);
            event.amount = match (value(9), value(10)) {
                (None, None) => None,
                (Some(amount), Some(currency)) => {
                    let currency: Currency = currency
                        .parse()
                        .map_err(|error| row_error(format!("{error}")))?;
                    Some(
                        Amount::parse(amount, currency)
                            .map_err(|error| row_error(error.to_string()))?,
                    )
                }
                _ => return Err(row_error("amount and currency go together".to_string())),
            };
            event.profile_field = match value(11) {
                None => None,
                Some(text) => Some(
                    ProfileField::parse(text)
                        .ok_or_else(|| row_error(format!("unknown profile_field {text:?}")))?,
                ),
            };
            let coordinate = |column: Option<&Float64Array>| {
                column.and_then(|array| (!array.is_null(row)).then(|| array.value(row)))
            };
            event.geo = match (coordinate(latitude), coordinate(longitude)) {
                (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
                (None, None) => None,
                _ => return Err(row_error("lat and lon go together".to_string())),
            };
            event
                .validate()
                .map_err(|error| row_error(error.to_string()))?;
            events.push(event);
        }
    }
    Ok(events)
}

/// Encodes events as Parquet (Snappy) into `writer`.
pub fn write_parquet_events<W: std::io::Write + Send>(
    events: &[Event],
    writer: W,
) -> Result<(), RiskError> {
    let parquet_error =
        |error: parquet::errors::ParquetError| history_error(format!("parquet: {error}"));
    let mut fields: Vec<Field> = TEXT_COLUMNS
        .iter()
        .enumerate()
        .map(|(index, name)| Field::new(*name, DataType::Utf8, index > 3))
        .collect();
    fields.push(Field::new("lat", DataType::Float64, true));
    fields.push(Field::new("lon", DataType::Float64, true));
    let schema = Arc::new(Schema::new(fields));
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut out =
        ArrowWriter::try_new(writer, schema.clone(), Some(properties)).map_err(parquet_error)?;
    for chunk in events.chunks(BATCH_ROWS) {
        let text = |value: fn(&Event) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from_iter(chunk.iter().map(value)))
        };
        let columns: Vec<ArrayRef> = vec![
            text(|event| Some(event.id.clone())),
            text(|event| Some(event.kind.as_str().to_string())),
            text(|event| Some(event.at.to_string())),
            text(|event| Some(event.customer.clone())),
            text(|event| event.device.clone()),
            text(|event| event.ip.clone()),
            text(|event| event.card.clone()),
            text(|event| event.address.clone()),
            text(|event| event.merchant.clone()),
            text(|event| event.amount.map(|amount| amount.to_decimal_string())),
            text(|event| {
                event
                    .amount
                    .map(|amount| amount.currency().code().to_string())
            }),
            text(|event| event.profile_field.map(|field| field.as_str().to_string())),
            Arc::new(Float64Array::from_iter(
                chunk.iter().map(|event| event.geo.map(|geo| geo.lat)),
            )),
            Arc::new(Float64Array::from_iter(
                chunk.iter().map(|event| event.geo.map(|geo| geo.lon)),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|error| history_error(format!("arrow: {error}")))?;
        out.write(&batch).map_err(parquet_error)?;
    }
    out.close().map_err(parquet_error)?;
    Ok(())
}
