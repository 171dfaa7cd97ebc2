//! One input row as the engine keeps it: built from the row's field texts, stored compactly in partition buffers, read back as a view.

use crate::amount::{explain, parse_amount};
use crate::control::{add_to_totals, CurrencyTotal};
use crate::error::ReconError;
use crate::hash::{hash_key, partition_of};
use crate::layout::{FieldSource, Layout, StatusField};
use crate::rules::Rules;
use crate::timestamp::{ZoneMemo, TIMESTAMP_ABSENT};

/// Marks a record without a fee.
pub const FEE_ABSENT: i64 = i64::MIN;
/// Typical bytes of an encoded record besides its key and batch reference, for estimates.
///
/// A record is encoded as: flags u8 (bit 0: has a fee, bit 1: has a timestamp), block and
/// line as LEB128 varints, amount, fee (if any) and timestamp (if any) as zigzag LEB128
/// varints, currency [u8; 3], status u8, key length u8, batch length u8, key, batch. Varints
/// keep a typical record at about 22 bytes plus its key instead of 38.
pub const RECORD_HEADER_BYTES: usize = 22;
const FLAG_FEE: u8 = 1;
const FLAG_TIMESTAMP: u8 = 2;

#[inline]
fn write_varint(buffer: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buffer.push((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

#[inline]
fn write_signed(buffer: &mut Vec<u8>, value: i64) {
    write_varint(buffer, ((value << 1) ^ (value >> 63)) as u64);
}

#[inline]
fn read_varint(buffer: &[u8], offset: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *buffer.get(*offset)?;
        *offset += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

#[inline]
fn read_signed(buffer: &[u8], offset: &mut usize) -> Option<i64> {
    let value = read_varint(buffer, offset)?;
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}
/// Longest key or batch reference, in bytes.
pub const KEY_BYTES_MAX: usize = 255;
/// Separates the columns of a composite key.
pub const KEY_SEPARATOR: u8 = 0x1F;

/// The canonical statuses of a run: every value of every status map and rule, numbered.
#[derive(Debug, Clone)]
pub struct StatusTable {
    names: Vec<String>,
    equivalent: Vec<bool>,
}

impl StatusTable {
    /// Collects the canonical statuses of both layouts and the rules.
    pub fn build(layouts: &[&Layout], rules: &Rules) -> Result<StatusTable, ReconError> {
        let mut names: Vec<String> = ["success", "failed", "pending"]
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        let mut add = |name: &str| {
            if !names.iter().any(|existing| existing == name) {
                names.push(name.to_owned());
            }
        };
        for layout in layouts {
            if let Some(status) = &layout.status {
                status.map.values().for_each(|name| add(name));
                if let Some(default) = &status.default {
                    add(default);
                }
            }
        }
        for group in &rules.status_equivalent {
            group.iter().for_each(|name| add(name));
        }
        if names.len() > 255 {
            return Err(ReconError::Rules {
                origin: "layouts".to_owned(),
                reason: "more than 255 distinct statuses".to_owned(),
            });
        }
        let count = names.len();
        let mut equivalent = vec![false; count * count];
        for index in 0..count {
            equivalent[index * count + index] = true;
        }
        for group in &rules.status_equivalent {
            for left in group {
                for right in group {
                    let left = names.iter().position(|name| name == left);
                    let right = names.iter().position(|name| name == right);
                    if let (Some(left), Some(right)) = (left, right) {
                        equivalent[left * count + right] = true;
                    }
                }
            }
        }
        Ok(StatusTable { names, equivalent })
    }

    /// The code of a canonical status.
    pub fn code(&self, name: &str) -> Option<u8> {
        self.names
            .iter()
            .position(|existing| existing == name)
            .and_then(|index| u8::try_from(index).ok())
    }

    /// The canonical name of a status code.
    pub fn name(&self, code: u8) -> &str {
        self.names
            .get(usize::from(code))
            .map_or("?", String::as_str)
    }

    /// Whether two status codes count as equal under the rules.
    #[inline]
    pub fn equivalent(&self, left: u8, right: u8) -> bool {
        let count = self.names.len();
        self.equivalent
            .get(usize::from(left) * count + usize::from(right))
            .copied()
            .unwrap_or(false)
    }
}

/// A status field compiled: its source, raw value → status code, and the default code.
type CompiledStatus = (FieldSource, Vec<(Vec<u8>, u8)>, Option<u8>);

/// Turns the field texts of one row into an encoded record, following a layout.
#[derive(Debug, Clone)]
pub struct RowBuilder {
    key: Vec<FieldSource>,
    key_from_batch: bool,
    amount: (FieldSource, crate::amount::AmountFormat),
    currency: FieldSource,
    currency_map: Vec<(Vec<u8>, Vec<u8>)>,
    status: Option<CompiledStatus>,
    status_names: StatusTable,
    success_code: u8,
    timestamp: Option<(FieldSource, crate::timestamp::TimestampFormat)>,
    fee: Option<(FieldSource, crate::amount::AmountFormat)>,
    batch: Option<FieldSource>,
    trim: bool,
    /// Total the rows per currency for the layout's control totals.
    control_totals: bool,
    /// Lines starting with these bytes are trailer lines, not rows.
    trailer_prefix: Option<Vec<u8>>,
}

/// Encoded records of one piece of input, split by partition.
#[derive(Debug)]
pub struct PartitionedRecords {
    pub bits: u32,
    pub parts: Vec<Vec<u8>>,
    pub rows: u64,
    pub max_timestamp: i64,
    /// Rows per currency, kept only when the layout declares control totals.
    pub totals: Vec<CurrencyTotal>,
}

impl PartitionedRecords {
    pub fn new(bits: u32) -> PartitionedRecords {
        PartitionedRecords::with_capacity(bits, 0)
    }

    /// Empty partitions with `capacity` bytes reserved in each.
    pub fn with_capacity(bits: u32, capacity: usize) -> PartitionedRecords {
        PartitionedRecords {
            bits,
            parts: (0..1usize << bits)
                .map(|_| Vec::with_capacity(capacity))
                .collect(),
            rows: 0,
            max_timestamp: TIMESTAMP_ABSENT,
            totals: Vec::new(),
        }
    }
}

/// Scratch space a thread reuses from row to row.
#[derive(Debug, Default)]
pub struct RowScratch {
    key: Vec<u8>,
    pub memo: ZoneMemo,
}

#[inline]
pub fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let mut start = 0;
    let mut end = bytes.len();
    while start < end && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    &bytes[start..end]
}

impl RowBuilder {
    /// Compiles a layout against the run's status table. `key_from_batch` makes the batch
    /// reference the key (the ledger side of many-to-one batch matching).
    pub fn new(
        layout: &Layout,
        statuses: &StatusTable,
        key_from_batch: bool,
    ) -> Result<RowBuilder, ReconError> {
        let invalid = |reason: String| ReconError::Layout {
            origin: layout.origin.clone(),
            reason,
        };
        if key_from_batch && layout.batch.is_none() {
            return Err(invalid(
                "batch matching is enabled but the ledger layout has no batch field".to_owned(),
            ));
        }
        let status = match &layout.status {
            Some(StatusField {
                source,
                map,
                default,
            }) => {
                let mut compiled = Vec::new();
                for (raw, name) in map {
                    let code = statuses
                        .code(name)
                        .ok_or_else(|| invalid(format!("unknown status {name:?}")))?;
                    compiled.push((raw.as_bytes().to_vec(), code));
                }
                let default = match default {
                    Some(name) => Some(
                        statuses
                            .code(name)
                            .ok_or_else(|| invalid(format!("unknown status {name:?}")))?,
                    ),
                    None => None,
                };
                Some((source.clone(), compiled, default))
            }
            None => None,
        };
        Ok(RowBuilder {
            key: layout.key.clone(),
            key_from_batch,
            amount: layout.amount.clone(),
            currency: layout.currency.0.clone(),
            currency_map: layout
                .currency
                .1
                .iter()
                .map(|(raw, code)| (raw.as_bytes().to_vec(), code.as_bytes().to_vec()))
                .collect(),
            status,
            success_code: statuses
                .code("success")
                .ok_or_else(|| ReconError::Internal("no success status".to_owned()))?,
            status_names: statuses.clone(),
            timestamp: layout.timestamp.clone(),
            fee: layout.fee.clone(),
            batch: layout.batch.clone(),
            trim: layout.trim,
            control_totals: layout.has_control_totals(),
            trailer_prefix: layout.trailer_prefix_bytes(),
        })
    }

    /// The bytes trailer lines start with, as the row parser sees them.
    #[inline]
    pub fn trailer_prefix(&self) -> Option<&[u8]> {
        self.trailer_prefix.as_deref()
    }

    #[inline]
    fn text<'a>(&'a self, source: &'a FieldSource, fields: &[&'a [u8]]) -> &'a [u8] {
        let raw = match source {
            FieldSource::Slot(slot) => fields.get(*slot).copied().unwrap_or(&[]),
            FieldSource::Constant(value) => value.as_slice(),
        };
        if self.trim {
            trim_ascii(raw)
        } else {
            raw
        }
    }

    /// Builds the record of one row from the texts of its slots and appends it to its
    /// partition. On a bad row, returns the reason and appends nothing.
    pub fn append(
        &self,
        fields: &[&[u8]],
        block: u32,
        line: u32,
        scratch: &mut RowScratch,
        out: &mut PartitionedRecords,
    ) -> Result<(), String> {
        let batch: &[u8] = match &self.batch {
            Some(source) => self.text(source, fields),
            None => &[],
        };
        if batch.len() > KEY_BYTES_MAX {
            return Err(format!("batch reference longer than {KEY_BYTES_MAX} bytes"));
        }
        let key: &[u8] = if self.key_from_batch {
            batch
        } else if let [single] = self.key.as_slice() {
            self.text(single, fields)
        } else {
            scratch.key.clear();
            for (index, source) in self.key.iter().enumerate() {
                if index > 0 {
                    scratch.key.push(KEY_SEPARATOR);
                }
                scratch.key.extend_from_slice(self.text(source, fields));
            }
            &scratch.key
        };
        if key.is_empty() || key.iter().all(|&byte| byte == KEY_SEPARATOR) {
            return Err("empty key".to_owned());
        }
        if key.len() > KEY_BYTES_MAX {
            return Err(format!("key longer than {KEY_BYTES_MAX} bytes"));
        }
        let amount_text = self.text(&self.amount.0, fields);
        let amount = parse_amount(amount_text, &self.amount.1).map_err(|reason| {
            format!(
                "amount: {}",
                explain(amount_text, &self.amount.1, reason, "fields.amount")
            )
        })?;
        let currency = self.currency(self.text(&self.currency, fields))?;
        let status = match &self.status {
            Some((source, map, default)) => {
                let raw = self.text(source, fields);
                match map.iter().find(|(value, _)| value.as_slice() == raw) {
                    Some((_, code)) => *code,
                    None if map.is_empty() => std::str::from_utf8(raw)
                        .ok()
                        .and_then(|name| self.status_names.code(name))
                        .or(*default)
                        .ok_or_else(|| {
                            format!("status: unknown value {:?}", String::from_utf8_lossy(raw))
                        })?,
                    None => default.ok_or_else(|| {
                        format!(
                            "status: value {:?} is not in the layout's map",
                            String::from_utf8_lossy(raw)
                        )
                    })?,
                }
            }
            None => self.success_code,
        };
        let timestamp = match &self.timestamp {
            Some((source, format)) => format
                .parse(self.text(source, fields), &mut scratch.memo)
                .map_err(|reason| format!("timestamp: {reason}"))?,
            None => TIMESTAMP_ABSENT,
        };
        let fee = match &self.fee {
            Some((source, format)) => {
                let text = self.text(source, fields);
                if text.is_empty() {
                    0
                } else {
                    parse_amount(text, format).map_err(|reason| {
                        format!("fee: {}", explain(text, format, reason, "fields.fee"))
                    })?
                }
            }
            None => FEE_ABSENT,
        };
        let partition = partition_of(hash_key(key), out.bits);
        let buffer = &mut out.parts[partition];
        let flags = if fee != FEE_ABSENT { FLAG_FEE } else { 0 }
            | if timestamp != TIMESTAMP_ABSENT {
                FLAG_TIMESTAMP
            } else {
                0
            };
        buffer.push(flags);
        write_varint(buffer, u64::from(block));
        write_varint(buffer, u64::from(line));
        write_signed(buffer, amount);
        if fee != FEE_ABSENT {
            write_signed(buffer, fee);
        }
        if timestamp != TIMESTAMP_ABSENT {
            write_signed(buffer, timestamp);
        }
        buffer.extend_from_slice(&currency);
        buffer.push(status);
        buffer.push(key.len() as u8);
        buffer.push(batch.len() as u8);
        buffer.extend_from_slice(key);
        buffer.extend_from_slice(batch);
        out.rows += 1;
        if self.control_totals {
            add_to_totals(
                &mut out.totals,
                currency,
                amount,
                if fee == FEE_ABSENT { 0 } else { fee },
            );
        }
        if timestamp > out.max_timestamp {
            out.max_timestamp = timestamp;
        }
        Ok(())
    }

    fn currency(&self, raw: &[u8]) -> Result<[u8; 3], String> {
        let mapped = self
            .currency_map
            .iter()
            .find(|(value, _)| value.as_slice() == raw)
            .map_or(raw, |(_, code)| code.as_slice());
        match mapped {
            [first, second, third] if mapped.iter().all(u8::is_ascii_alphabetic) => Ok([
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase(),
                third.to_ascii_uppercase(),
            ]),
            _ => Err(format!(
                "currency: {:?} is not a three-letter code",
                String::from_utf8_lossy(raw)
            )),
        }
    }
}

/// A record read back from a partition buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub block: u32,
    pub line: u32,
    pub amount: i64,
    pub fee: i64,
    pub timestamp: i64,
    pub currency: [u8; 3],
    pub status: u8,
    pub key: &'a [u8],
    pub batch: &'a [u8],
}

/// Iterates over the records of one buffer of whole encoded records.
#[derive(Debug, Clone)]
pub struct RecordReader<'a> {
    buffer: &'a [u8],
    offset: usize,
}

impl<'a> RecordReader<'a> {
    pub fn new(buffer: &'a [u8]) -> RecordReader<'a> {
        RecordReader { buffer, offset: 0 }
    }
}

impl<'a> Iterator for RecordReader<'a> {
    type Item = RecordView<'a>;

    #[inline]
    fn next(&mut self) -> Option<RecordView<'a>> {
        let (view, next) = decode_at(self.buffer, self.offset)?;
        self.offset = next;
        Some(view)
    }
}

/// Decodes the record at `offset` of `buffer`; returns it and the offset of the next one.
#[inline]
pub fn decode_at(buffer: &[u8], offset: usize) -> Option<(RecordView<'_>, usize)> {
    let mut position = offset;
    let flags = *buffer.get(position)?;
    position += 1;
    let block = u32::try_from(read_varint(buffer, &mut position)?).ok()?;
    let line = u32::try_from(read_varint(buffer, &mut position)?).ok()?;
    let amount = read_signed(buffer, &mut position)?;
    let fee = if flags & FLAG_FEE != 0 {
        read_signed(buffer, &mut position)?
    } else {
        FEE_ABSENT
    };
    let timestamp = if flags & FLAG_TIMESTAMP != 0 {
        read_signed(buffer, &mut position)?
    } else {
        TIMESTAMP_ABSENT
    };
    let fixed = buffer.get(position..position + 6)?;
    let currency = [fixed[0], fixed[1], fixed[2]];
    let status = fixed[3];
    let key_start = position + 6;
    let batch_start = key_start + usize::from(fixed[4]);
    let end = batch_start + usize::from(fixed[5]);
    let view = RecordView {
        block,
        line,
        amount,
        fee,
        timestamp,
        currency,
        status,
        key: buffer.get(key_start..batch_start)?,
        batch: buffer.get(batch_start..end)?,
    };
    Some((view, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            1_795_153_512,
            i64::MAX,
            i64::MIN + 1,
            i64::MIN,
        ] {
            let mut buffer = Vec::new();
            write_signed(&mut buffer, value);
            let mut offset = 0;
            assert_eq!(read_signed(&buffer, &mut offset), Some(value));
            assert_eq!(offset, buffer.len());
        }
    }
}
