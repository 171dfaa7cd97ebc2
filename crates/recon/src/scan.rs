//! Phase one: read an input file in blocks, parse the blocks on all cores, and add their partitioned records to the store.

use crate::error::ReconError;
use crate::layout::{Encoding, FileFormat, Layout};
use crate::progress::Progress;
use crate::record::{PartitionedRecords, RowBuilder, RowScratch};
use crate::store::{Side, Store};
use crate::text::{parse_text_block, BlockOutput, ColumnMap, BAD_ROWS_KEPT_PER_BLOCK_MAX};
use crate::timestamp::TIMESTAMP_ABSENT;
use rayon::prelude::*;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// Bad rows kept with their reason per file; beyond it they are only counted.
pub const BAD_ROWS_KEPT_MAX: usize = 100_000;

/// What scanning one side produced besides the records.
#[derive(Debug, Default)]
pub struct SideScan {
    pub rows: u64,
    pub bad_row_count: u64,
    pub bad_rows: Vec<BadRow>,
    /// First line (1-based) of each block; for Parquet, first row of each batch.
    pub block_first_line: Vec<u64>,
    pub max_timestamp: i64,
    pub bytes: u64,
    /// Line number of the first line of the next block.
    line_cursor: u64,
}

impl SideScan {
    /// The line in the file of a block-local line.
    pub fn line(&self, block: u32, line: u32) -> u64 {
        self.block_first_line
            .get(block as usize)
            .map_or(0, |first| first + u64::from(line) - 1)
    }

    fn absorb(
        &mut self,
        file: &str,
        output: BlockOutput,
        store: &mut Store,
        side: Side,
    ) -> Result<(), ReconError> {
        let start = self.line_cursor;
        self.block_first_line.push(start);
        for (line, reason) in output.bad_rows {
            if self.bad_rows.len() < BAD_ROWS_KEPT_MAX {
                self.bad_rows.push(BadRow {
                    file: file.to_owned(),
                    line: start + u64::from(line) - 1,
                    reason,
                });
            }
        }
        self.bad_row_count += output.bad_row_count;
        self.rows += output.records.rows;
        self.max_timestamp = self.max_timestamp.max(output.records.max_timestamp);
        self.line_cursor += u64::from(output.lines);
        store.add(side, output.records.parts)
    }
}

/// Reading position of a text file between blocks.
#[derive(Debug, Default)]
struct BlockReader {
    carry: Vec<u8>,
    finished: bool,
    /// Parsed blocks' buffers, reused for reading (no new pages to fault in for every block).
    spare: Vec<Vec<u8>>,
}

impl BlockReader {
    /// Reads the next block of whole lines (at least `block_bytes` unless the file ends).
    fn next_block(
        &mut self,
        file: &mut File,
        path: &Path,
        block_bytes: usize,
    ) -> Result<Option<Vec<u8>>, ReconError> {
        if self.finished {
            return Ok(None);
        }
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(&self.carry);
        self.carry.clear();
        buffer.reserve(block_bytes + block_bytes / 8);
        let mut searched = 0usize;
        loop {
            let want = (block_bytes.saturating_sub(buffer.len())).max(64 * 1024) as u64;
            let read = Read::by_ref(file)
                .take(want)
                .read_to_end(&mut buffer)
                .map_err(|error| ReconError::io(path, error))?;
            if read == 0 {
                self.finished = true;
                return Ok(if buffer.is_empty() {
                    None
                } else {
                    Some(buffer)
                });
            }
            if buffer.len() < block_bytes {
                continue;
            }
            if let Some(last_newline) = memchr::memrchr(b'\n', &buffer[searched..]) {
                let cut = searched + last_newline + 1;
                self.carry.extend_from_slice(&buffer[cut..]);
                buffer.truncate(cut);
                return Ok(Some(buffer));
            }
            searched = buffer.len();
        }
    }
}

/// Settings of a scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanSettings {
    pub partition_bits: u32,
    pub block_bytes: usize,
    pub blocks_in_flight: usize,
}

/// Scans one input file into the store.
pub fn scan_file(
    path: &Path,
    layout: &Layout,
    builder: &RowBuilder,
    side: Side,
    settings: ScanSettings,
    store: &mut Store,
    progress: &dyn Progress,
) -> Result<SideScan, ReconError> {
    match layout.format {
        FileFormat::Csv | FileFormat::FixedWidth => {
            scan_text(path, layout, builder, side, settings, store, progress)
        }
        FileFormat::Parquet => crate::parquet_input::scan_parquet(
            path, layout, builder, side, settings, store, progress,
        ),
    }
}

fn scan_text(
    path: &Path,
    layout: &Layout,
    builder: &RowBuilder,
    side: Side,
    settings: ScanSettings,
    store: &mut Store,
    progress: &dyn Progress,
) -> Result<SideScan, ReconError> {
    let file_name = path.display().to_string();
    let mut file = File::open(path).map_err(|error| ReconError::io(path, error))?;
    let mut scan = new_side_scan();
    scan.bytes = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let mut reader = BlockReader::default();
    let mut first = reader
        .next_block(&mut file, path, settings.block_bytes)?
        .unwrap_or_default();
    if layout.encoding == Encoding::Utf8 && first.starts_with(&[0xEF, 0xBB, 0xBF]) {
        first.drain(..3);
    }
    let mut header: Option<Vec<u8>> = None;
    if layout.format == FileFormat::Csv && layout.csv.header {
        let end = memchr::memchr(b'\n', &first).map_or(first.len(), |index| index + 1);
        let raw: Vec<u8> = first.drain(..end).collect();
        let mut line = match layout.encoding {
            Encoding::Utf8 => raw,
            Encoding::Gbk => {
                let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(&raw);
                if had_errors {
                    return Err(ReconError::Input {
                        path: path.to_owned(),
                        line: 1,
                        reason: "the header is not valid GBK (invalid byte sequence)".to_owned(),
                    });
                }
                text.into_owned().into_bytes()
            }
        };
        while line
            .last()
            .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
        {
            line.pop();
        }
        header = Some(line);
        scan.line_cursor = 2;
    }
    let columns =
        ColumnMap::new(layout, header.as_deref()).map_err(|reason| ReconError::Layout {
            origin: format!("{} (applied to {file_name})", layout.origin),
            reason,
        })?;
    let mut pending = vec![first];
    let mut block_index = 0u32;
    let read_wave = |reader: &mut BlockReader, file: &mut File, wanted: usize| {
        let mut blocks = Vec::new();
        while blocks.len() < wanted {
            match reader.next_block(file, path, settings.block_bytes)? {
                Some(block) => blocks.push(block),
                None => break,
            }
        }
        Ok::<_, ReconError>(blocks)
    };
    pending.extend(read_wave(
        &mut reader,
        &mut file,
        settings.blocks_in_flight - 1,
    )?);
    let parse = |data: &[u8], block: u32, open_end: bool| {
        parse_text_block(
            data,
            block,
            layout.encoding,
            &columns,
            builder,
            settings.partition_bits,
            open_end,
        )
    };
    // Bytes at the front of `pending[0]` that were already counted as read: the unfinished
    // last record of the previous wave.
    let mut carried_in = 0u64;
    while !pending.is_empty() {
        // Parse this wave on the pool while this thread reads the next one.
        let (outputs, next) = rayon::join(
            || {
                pending
                    .par_iter()
                    .enumerate()
                    .map(|(offset, data)| parse(data, block_index + offset as u32, true))
                    .collect::<Vec<BlockOutput>>()
            },
            || read_wave(&mut reader, &mut file, settings.blocks_in_flight),
        );
        let mut next = next?;
        let read: u64 = pending.iter().map(|block| block.len() as u64).sum();
        // A block whose last record has a quoted field still open hands that record to the
        // next block, which is then parsed again with the record in front (rare: only a
        // quoted field holding a newline that straddles the cut between two blocks).
        let mut carried: Option<Vec<u8>> = None;
        for (offset, output) in outputs.into_iter().enumerate() {
            let block = block_index + offset as u32;
            let (output, tail) = match carried.take() {
                Some(mut joined) => {
                    joined.extend_from_slice(&pending[offset]);
                    let output = parse(&joined, block, true);
                    let tail = output.tail.map(|start| joined[start..].to_vec());
                    (output, tail)
                }
                None => {
                    let tail = output.tail.map(|start| pending[offset][start..].to_vec());
                    (output, tail)
                }
            };
            carried = tail;
            scan.absorb(&file_name, output, store, side)?;
        }
        block_index += pending.len() as u32;
        let carried_out = carried.as_ref().map_or(0, |tail| tail.len() as u64);
        if let Some(mut tail) = carried {
            match next.first_mut() {
                Some(first) => {
                    tail.extend_from_slice(first);
                    *first = tail;
                }
                None => {
                    // The file ends inside the quoted field: its first line is a bad row.
                    let output = parse(&tail, block_index, false);
                    block_index += 1;
                    scan.absorb(&file_name, output, store, side)?;
                }
            }
        }
        progress.advance(read - carried_in);
        carried_in = if next.is_empty() { 0 } else { carried_out };
        reader.spare.append(&mut pending);
        pending = next;
    }
    Ok(scan)
}

/// A scan that has not read anything yet.
pub fn new_side_scan() -> SideScan {
    SideScan {
        max_timestamp: TIMESTAMP_ABSENT,
        line_cursor: 1,
        ..SideScan::default()
    }
}

/// Adds rows given as slot texts (used by the Parquet reader) to the store, one batch at a time.
pub fn absorb_rows(
    scan: &mut SideScan,
    file: &str,
    output: BlockOutput,
    store: &mut Store,
    side: Side,
) -> Result<(), ReconError> {
    scan.absorb(file, output, store, side)
}

/// A fresh block output for row-at-a-time sources.
pub fn empty_block_output(partition_bits: u32) -> (BlockOutput, RowScratch) {
    (
        BlockOutput {
            records: PartitionedRecords::new(partition_bits),
            bad_rows: Vec::new(),
            bad_row_count: 0,
            lines: 0,
            tail: None,
        },
        RowScratch::default(),
    )
}

/// Records a bad row of a row-at-a-time source.
pub fn note_bad_row(output: &mut BlockOutput, line: u32, reason: String) {
    output.bad_row_count += 1;
    if output.bad_rows.len() < BAD_ROWS_KEPT_PER_BLOCK_MAX {
        output.bad_rows.push((line, reason));
    }
}
