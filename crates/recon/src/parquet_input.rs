//! Parquet input: reads the layout's columns batch by batch and feeds each row's values, as text, to the row builder.

use crate::error::ReconError;
use crate::layout::{SlotSource, SLOTS_MAX};
use crate::progress::Progress;
use crate::record::RowBuilder;
use crate::scan::{
    absorb_rows, empty_block_output, new_side_scan, note_bad_row, ScanSettings, ScanTarget,
    SideScan,
};
use arrow_array::{
    Array, ArrayRef, Int32Array, Int64Array, LargeStringArray, StringArray, StringViewArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use std::fmt::Write;
use std::fs::File;
use std::path::Path;

/// Rows per Parquet batch.
const BATCH_ROWS: usize = 65_536;

enum Column<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Int64(&'a Int64Array),
    Int32(&'a Int32Array),
}

fn column<'a>(array: &'a ArrayRef, name: &str) -> Result<Column<'a>, String> {
    let any = array.as_any();
    if let Some(array) = any.downcast_ref::<StringArray>() {
        Ok(Column::Utf8(array))
    } else if let Some(array) = any.downcast_ref::<LargeStringArray>() {
        Ok(Column::LargeUtf8(array))
    } else if let Some(array) = any.downcast_ref::<StringViewArray>() {
        Ok(Column::Utf8View(array))
    } else if let Some(array) = any.downcast_ref::<Int64Array>() {
        Ok(Column::Int64(array))
    } else if let Some(array) = any.downcast_ref::<Int32Array>() {
        Ok(Column::Int32(array))
    } else {
        Err(format!(
            "column {name:?} has type {}; strings, int32 and int64 are supported",
            array.data_type()
        ))
    }
}

/// Scans a Parquet file into the store. Batches are read and converted one after another.
pub fn scan_parquet(
    path: &Path,
    builder: &RowBuilder,
    settings: ScanSettings,
    target: &mut ScanTarget<'_>,
    progress: &dyn Progress,
) -> Result<SideScan, ReconError> {
    let layout = target.layout;
    let parquet_error = |reason: String| ReconError::Parquet {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|error| ReconError::io(path, error))?;
    let bytes = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let reader_builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|error| parquet_error(error.to_string()))?;
    let schema = reader_builder.schema().clone();
    let mut names = Vec::new();
    let mut roots = Vec::new();
    for slot in &layout.slots {
        let SlotSource::Name(name) = slot else {
            return Err(parquet_error(
                "Parquet fields need column = \"name\"".to_owned(),
            ));
        };
        let index = schema
            .index_of(name)
            .map_err(|_| parquet_error(format!("no column {name:?}")))?;
        names.push(name.clone());
        roots.push(index);
    }
    let mask = ProjectionMask::roots(reader_builder.parquet_schema(), roots);
    let reader = reader_builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|error| parquet_error(error.to_string()))?;
    let mut scan = new_side_scan();
    scan.bytes = bytes;
    let mut texts: Vec<String> = vec![String::new(); SLOTS_MAX];
    for (batch_index, batch) in reader.enumerate() {
        let batch = batch.map_err(|error| parquet_error(error.to_string()))?;
        let mut arrays = Vec::new();
        for name in &names {
            let index = batch
                .schema()
                .index_of(name)
                .map_err(|_| parquet_error(format!("no column {name:?} in a batch")))?;
            arrays.push(batch.column(index).clone());
        }
        let columns = arrays
            .iter()
            .zip(&names)
            .map(|(array, name)| column(array, name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(parquet_error)?;
        let (mut output, mut scratch) = empty_block_output(settings.partition_bits);
        let block =
            u32::try_from(batch_index).map_err(|_| parquet_error("too many batches".to_owned()))?;
        for row in 0..batch.num_rows() {
            let line = (row + 1) as u32;
            for (slot, column) in columns.iter().enumerate() {
                let text = &mut texts[slot];
                text.clear();
                match column {
                    Column::Utf8(array) if array.is_valid(row) => text.push_str(array.value(row)),
                    Column::LargeUtf8(array) if array.is_valid(row) => {
                        text.push_str(array.value(row))
                    }
                    Column::Utf8View(array) if array.is_valid(row) => {
                        text.push_str(array.value(row))
                    }
                    Column::Int64(array) if array.is_valid(row) => {
                        let _ = write!(text, "{}", array.value(row));
                    }
                    Column::Int32(array) if array.is_valid(row) => {
                        let _ = write!(text, "{}", array.value(row));
                    }
                    _ => {}
                }
            }
            let mut fields: [&[u8]; SLOTS_MAX] = [&[]; SLOTS_MAX];
            for (slot, text) in texts.iter().enumerate().take(columns.len()) {
                fields[slot] = text.as_bytes();
            }
            if let Err(reason) =
                builder.append(&fields, block, line, &mut scratch, &mut output.records)
            {
                note_bad_row(&mut output, line, reason);
            }
        }
        output.lines = batch.num_rows() as u32;
        absorb_rows(&mut scan, target, output)?;
    }
    progress.advance(bytes);
    Ok(scan)
}
