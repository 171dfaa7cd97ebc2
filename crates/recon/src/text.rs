//! Byte-level parsers of CSV and fixed-width blocks: split lines with memchr, pick the layout's columns, hand them to the row builder.

use crate::layout::{CsvDialect, Encoding, FileFormat, Layout, SlotSource, SLOTS_MAX};
use crate::record::{PartitionedRecords, RowBuilder, RowScratch};
use memchr::{memchr, memchr_iter};
use std::borrow::Cow;

const NO_SLOT: u8 = u8::MAX;
/// U+FFFD in UTF-8.
const REPLACEMENT_CHARACTER: &[u8] = "\u{FFFD}".as_bytes();

/// Where the slots of a text layout are on a line, once the header is known.
#[derive(Debug, Clone)]
pub enum ColumnMap {
    /// CSV: column index → slot (or `NO_SLOT`), up to the last column read.
    Csv {
        dialect: CsvDialect,
        slot_of_column: Vec<u8>,
        slot_count: usize,
    },
    /// Fixed width: 0-based first byte and width of each slot, and the fields that read it.
    FixedWidth {
        ranges: Vec<(usize, usize)>,
        names: Vec<String>,
    },
}

impl ColumnMap {
    /// Resolves a layout's slots against a CSV header (already decoded to UTF-8), if any.
    pub fn new(layout: &Layout, header: Option<&[u8]>) -> Result<ColumnMap, String> {
        match layout.format {
            FileFormat::Csv => {
                let names: Vec<Vec<u8>> = match header {
                    Some(line) => split_csv_line(line, &layout.csv)
                        .into_iter()
                        .map(|name| crate::record::trim_ascii(&name).to_vec())
                        .collect(),
                    None => Vec::new(),
                };
                let mut columns = Vec::new();
                for slot in &layout.slots {
                    columns.push(match slot {
                        SlotSource::Index(index) => *index,
                        SlotSource::Name(name) => names
                            .iter()
                            .position(|candidate| candidate.as_slice() == name.as_bytes())
                            .ok_or_else(|| format!("the header has no column {name:?}"))?,
                        SlotSource::Range { .. } => {
                            return Err("a CSV layout cannot use start/width".to_owned())
                        }
                    });
                }
                let last = columns.iter().copied().max().unwrap_or(0);
                let mut slot_of_column = vec![NO_SLOT; last + 1];
                for (slot, column) in columns.iter().enumerate() {
                    slot_of_column[*column] = slot as u8;
                }
                Ok(ColumnMap::Csv {
                    dialect: layout.csv,
                    slot_of_column,
                    slot_count: layout.slots.len(),
                })
            }
            FileFormat::FixedWidth => {
                let mut ranges = Vec::new();
                for slot in &layout.slots {
                    match slot {
                        SlotSource::Range { start, width } => ranges.push((*start, *width)),
                        _ => return Err("a fixed-width layout needs start and width".to_owned()),
                    }
                }
                Ok(ColumnMap::FixedWidth {
                    ranges,
                    names: layout.slot_names(),
                })
            }
            FileFormat::Parquet => Err("a Parquet layout has no text columns".to_owned()),
        }
    }
}

/// Splits one CSV line into unquoted fields (used for headers).
pub fn split_csv_line(line: &[u8], dialect: &CsvDialect) -> Vec<Vec<u8>> {
    let mut record = QuotedRecord::default();
    let _ = parse_quoted_record(line, dialect, &mut record);
    record.fields().map(<[u8]>::to_vec).collect()
}

/// The unquoted fields of one record, stored back to back (reused from record to record).
#[derive(Debug, Default)]
pub struct QuotedRecord {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl QuotedRecord {
    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let field = &self.bytes[start..end];
            start = end;
            field
        })
    }
}

/// Parses one record that may contain quotes, starting at the beginning of `rest`, into
/// `record`. Returns the bytes consumed (through the ending newline) and the newlines inside
/// quoted fields, or an error when a quote is never closed.
///
/// Quoting follows RFC 4180, leniently (as Python's `csv` and the Rust `csv` crate do): a
/// quote opens a quoted field only as the first byte of a field; a quote anywhere else in an
/// unquoted field (`O"Brien`) is a literal character. Inside a quoted field a doubled quote is
/// one quote and newlines are part of the field; text after the closing quote, up to the next
/// delimiter, is kept as it is (`"a"b` reads as `ab`). So a record reaches past its first line
/// only when a field that starts with a quote holds a newline.
fn parse_quoted_record(
    rest: &[u8],
    dialect: &CsvDialect,
    record: &mut QuotedRecord,
) -> Result<(usize, u32), usize> {
    record.bytes.clear();
    record.ends.clear();
    let quote = dialect.quote;
    let mut in_quotes = false;
    let mut field_start = true;
    let mut newlines = 0u32;
    let mut index = 0;
    while index < rest.len() {
        let byte = rest[index];
        if in_quotes {
            if Some(byte) == quote {
                if rest.get(index + 1).copied() == quote {
                    record.bytes.push(byte);
                    index += 2;
                } else {
                    in_quotes = false;
                    index += 1;
                }
                continue;
            }
            if byte == b'\n' {
                newlines += 1;
            }
            record.bytes.push(byte);
            index += 1;
            continue;
        }
        if field_start && Some(byte) == quote {
            in_quotes = true;
            field_start = false;
        } else if byte == dialect.delimiter {
            record.ends.push(record.bytes.len());
            field_start = true;
        } else if byte == b'\n' {
            index += 1;
            break;
        } else {
            record.bytes.push(byte);
            field_start = false;
        }
        index += 1;
    }
    if in_quotes {
        return Err(index);
    }
    let field_start = record.ends.last().copied().unwrap_or(0);
    if record.bytes.len() > field_start && record.bytes.last() == Some(&b'\r') {
        record.bytes.pop();
    }
    record.ends.push(record.bytes.len());
    Ok((index, newlines))
}

/// What parsing one block produced.
#[derive(Debug)]
pub struct BlockOutput {
    pub records: PartitionedRecords,
    /// Block-local line (1-based) and reason of each bad row: every one of them (the run
    /// writes them all, or says how many it left out).
    pub bad_rows: Vec<(u32, String)>,
    pub bad_row_count: u64,
    /// Block-local line and text of each trailer line (as the parser saw it: decoded for CSV).
    pub trailers: Vec<(u32, Vec<u8>)>,
    /// Block-local line of the last data line (row or bad row); 0 when there is none.
    pub last_row_line: u32,
    /// Lines in the block (up to `tail` when there is one).
    pub lines: u32,
    /// Where the block's last record starts when a quoted field of it is still open at the end
    /// of an open-ended block: that record continues in the next block, and these bytes (of
    /// the undecoded input) are to be read again in front of it.
    pub tail: Option<usize>,
}

/// Parses a block of whole lines of a text file.
///
/// With `open_end`, more of the file may follow: a last record whose quoted field is still
/// open at the end of the block is left unread and reported as [`BlockOutput::tail`], so that
/// a quoted field holding newlines may cross a block boundary. Otherwise, and whenever the
/// open record started at the very beginning of the block (it would then be longer than a
/// block), a quote that is never closed makes a bad row of its first line only, and reading
/// goes on with the next line: no other line is ever taken into the bad row.
pub fn parse_text_block(
    data: &[u8],
    block: u32,
    encoding: Encoding,
    columns: &ColumnMap,
    builder: &RowBuilder,
    partition_bits: u32,
    open_end: bool,
) -> BlockOutput {
    let raw = data;
    let mut check_replacements = false;
    let decoded: Cow<'_, [u8]> = match (encoding, columns) {
        (Encoding::Gbk, ColumnMap::Csv { .. }) => {
            let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(data);
            // GBK cannot encode U+FFFD, so in the decoded text it marks an invalid sequence.
            check_replacements = had_errors;
            match text {
                Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
                Cow::Owned(text) => Cow::Owned(text.into_bytes()),
            }
        }
        _ => Cow::Borrowed(data),
    };
    let decoded_is_raw = matches!(decoded, Cow::Borrowed(_));
    let data: &[u8] = &decoded;
    let mut output = BlockOutput {
        // Records take a bit over half the bytes of their text: reserve so buffers rarely grow.
        records: PartitionedRecords::with_capacity(
            partition_bits,
            (data.len() / 4 * 3) >> partition_bits,
        ),
        bad_rows: Vec::new(),
        bad_row_count: 0,
        trailers: Vec::new(),
        last_row_line: 0,
        lines: 0,
        tail: None,
    };
    let trailer_prefix = builder.trailer_prefix();
    let mut scratch = RowScratch::default();
    let mut quoted_record = QuotedRecord::default();
    let mut decoded_fields: Vec<String> = Vec::new();
    let mut position = 0usize;
    let mut line_number = 0u32;
    while position < data.len() {
        line_number += 1;
        let rest = &data[position..];
        let line_end = memchr(b'\n', rest).unwrap_or(rest.len());
        let mut line = &rest[..line_end];
        let mut consumed = (line_end + 1).min(rest.len());
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let row_line = line_number;
        if line.is_empty() {
            position += consumed;
            continue;
        }
        if let Some(prefix) = trailer_prefix {
            if line.starts_with(prefix) {
                output.trailers.push((row_line, line.to_vec()));
                position += consumed;
                continue;
            }
        }
        let mut fields: [&[u8]; SLOTS_MAX] = [&[]; SLOTS_MAX];
        let result: Result<(), String> = match columns {
            ColumnMap::Csv {
                dialect,
                slot_of_column,
                slot_count: _,
            } => {
                let has_quote = dialect
                    .quote
                    .is_some_and(|quote| memchr(quote, line).is_some());
                if has_quote {
                    match parse_quoted_record(rest, dialect, &mut quoted_record) {
                        Ok((used, newlines)) => {
                            consumed = used;
                            line_number += newlines;
                            pick_columns(quoted_record.fields(), slot_of_column, &mut fields)
                        }
                        Err(_) if open_end && position > 0 => {
                            output.tail = Some(if decoded_is_raw {
                                position
                            } else {
                                raw_offset_of_line(raw, line_number)
                            });
                            line_number -= 1;
                            break;
                        }
                        Err(_) => Err("a quoted field is not closed".to_owned()),
                    }
                } else {
                    pick_columns(
                        SplitFields::new(line, dialect.delimiter),
                        slot_of_column,
                        &mut fields,
                    )
                }
            }
            ColumnMap::FixedWidth { ranges, names } => pick_ranges(
                line,
                ranges,
                names,
                encoding,
                &mut decoded_fields,
                &mut fields,
            ),
        };
        let result = result.and_then(|()| {
            // The whole record: a quoted field may have taken it past its first line.
            if check_replacements
                && memchr::memmem::find(&rest[..consumed], REPLACEMENT_CHARACTER).is_some()
            {
                return Err("invalid GBK byte sequence".to_owned());
            }
            builder.append(&fields, block, row_line, &mut scratch, &mut output.records)
        });
        if let Err(reason) = result {
            output.bad_row_count += 1;
            output.bad_rows.push((row_line, reason));
        }
        output.last_row_line = row_line;
        position += consumed.max(1);
    }
    output.lines = line_number;
    // Keep exact-size copies: shrinking the reserved buffers in place would leave holes in the
    // heap that later reservations cannot use; freed whole, they are reused by the next block.
    for part in &mut output.records.parts {
        if part.capacity() > part.len() {
            *part = part.as_slice().to_vec();
        }
    }
    output
}

/// Where the decoded text's line `line` (1-based, past line 1) starts in the undecoded block:
/// a newline byte never occurs inside a GBK character and the decoder keeps every newline, so
/// both have the same lines.
fn raw_offset_of_line(raw: &[u8], line: u32) -> usize {
    memchr_iter(b'\n', raw)
        .nth(line as usize - 2)
        .map_or(raw.len(), |newline| newline + 1)
}

/// Fields of an unquoted line, split on the delimiter with memchr.
struct SplitFields<'a> {
    line: &'a [u8],
    positions: memchr::Memchr<'a>,
    start: usize,
    done: bool,
}

impl<'a> SplitFields<'a> {
    fn new(line: &'a [u8], delimiter: u8) -> SplitFields<'a> {
        SplitFields {
            line,
            positions: memchr_iter(delimiter, line),
            start: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for SplitFields<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        match self.positions.next() {
            Some(end) => {
                let field = &self.line[self.start..end];
                self.start = end + 1;
                Some(field)
            }
            None => {
                self.done = true;
                Some(&self.line[self.start..])
            }
        }
    }
}

#[inline]
fn pick_columns<'a>(
    columns: impl Iterator<Item = &'a [u8]>,
    slot_of_column: &[u8],
    fields: &mut [&'a [u8]; SLOTS_MAX],
) -> Result<(), String> {
    let mut seen = 0usize;
    for (column, text) in columns.take(slot_of_column.len()).enumerate() {
        let slot = slot_of_column[column];
        if slot != NO_SLOT {
            fields[usize::from(slot)] = text;
        }
        seen = column + 1;
    }
    if seen < slot_of_column.len() {
        return Err(format!(
            "the row has {seen} fields, the layout reads field {}",
            slot_of_column.len()
        ));
    }
    Ok(())
}

/// Cuts a fixed-width line into its slots. Every field must lie wholly within the line: a
/// line that ends before a field's last byte is a bad row naming that field, never a field
/// cut short (a right-aligned amount `000000012345` cut to `000000012` would read as 12).
/// Producers that strip the trailing spaces of a last text field must keep them for Tally.
fn pick_ranges<'a>(
    line: &'a [u8],
    ranges: &[(usize, usize)],
    names: &[String],
    encoding: Encoding,
    decoded: &'a mut Vec<String>,
    fields: &mut [&'a [u8]; SLOTS_MAX],
) -> Result<(), String> {
    decoded.clear();
    let mut raw: [&[u8]; SLOTS_MAX] = [&[]; SLOTS_MAX];
    for (slot, &(start, width)) in ranges.iter().enumerate() {
        let end = start + width;
        if end > line.len() {
            return Err(format!(
                "{}: the line has {} bytes, the field takes bytes {} to {end}",
                names.get(slot).map_or("field", String::as_str),
                line.len(),
                start + 1,
            ));
        }
        raw[slot] = &line[start..end];
    }
    if encoding == Encoding::Gbk {
        for text in raw.iter().take(ranges.len()) {
            let (value, had_errors) = encoding_rs::GBK.decode_without_bom_handling(text);
            if had_errors {
                return Err("invalid GBK byte sequence".to_owned());
            }
            decoded.push(value.into_owned());
        }
        for (slot, text) in decoded.iter().enumerate() {
            fields[slot] = text.as_bytes();
        }
    } else {
        fields[..ranges.len()].copy_from_slice(&raw[..ranges.len()]);
    }
    Ok(())
}
