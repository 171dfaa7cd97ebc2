//! Phase one: read an input file in blocks, parse the blocks on all cores, and add their partitioned records to the store.

use crate::control::{
    merge_totals, read_control_line, ControlException, ControlKind, ControlOrigin, ControlScan,
};
use crate::error::ReconError;
use crate::layout::{Encoding, FileFormat, Layout};
use crate::progress::Progress;
use crate::record::{PartitionedRecords, RowBuilder, RowScratch};
use crate::store::{Side, Store};
use crate::text::{parse_text_block, BlockOutput, ColumnMap};
use crate::timestamp::TIMESTAMP_ABSENT;
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Writes `bad_rows.csv` as the blocks are absorbed, in file order, so that every bad row can
/// be written without holding them in memory; with a limit, the rest are counted.
#[derive(Debug)]
pub struct BadRowWriter {
    path: PathBuf,
    writer: BufWriter<File>,
    limit: Option<u64>,
    line: Vec<u8>,
    /// Bad rows written to the file.
    pub written: u64,
    /// Bad rows over the limit, counted but not written.
    pub left_out: u64,
}

impl BadRowWriter {
    /// Creates the file with its column names; `limit` caps the rows written.
    pub fn create(path: &Path, limit: Option<u64>) -> Result<BadRowWriter, ReconError> {
        let file = File::create(path).map_err(|error| ReconError::io(path, error))?;
        let mut writer = BufWriter::with_capacity(1 << 16, file);
        writer
            .write_all(b"file,line,reason\n")
            .map_err(|error| ReconError::io(path, error))?;
        Ok(BadRowWriter {
            path: path.to_owned(),
            writer,
            limit,
            line: Vec::new(),
            written: 0,
            left_out: 0,
        })
    }

    fn write(&mut self, file: &str, line: u64, reason: &str) -> Result<(), ReconError> {
        if self.limit.is_some_and(|limit| self.written >= limit) {
            self.left_out += 1;
            return Ok(());
        }
        self.line.clear();
        crate::output::csv_field(&mut self.line, file);
        self.line.extend_from_slice(format!(",{line},").as_bytes());
        crate::output::csv_field(&mut self.line, reason);
        self.line.push(b'\n');
        self.writer
            .write_all(&self.line)
            .map_err(|error| ReconError::io(&self.path, error))?;
        self.written += 1;
        Ok(())
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<(u64, u64), ReconError> {
        self.writer
            .flush()
            .map_err(|error| ReconError::io(&self.path, error))?;
        Ok((self.written, self.left_out))
    }
}

/// What scanning one side produced besides the records.
#[derive(Debug, Default)]
pub struct SideScan {
    pub rows: u64,
    pub bad_row_count: u64,
    /// Header and trailer lines, their totals, and the rows' totals per currency.
    pub controls: ControlScan,
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
        target: &mut ScanTarget<'_>,
        output: BlockOutput,
    ) -> Result<(), ReconError> {
        let start = self.line_cursor;
        self.block_first_line.push(start);
        for (line, reason) in &output.bad_rows {
            target
                .bad_rows
                .write(target.file, start + u64::from(*line) - 1, reason)?;
        }
        if output.last_row_line > 0 {
            self.controls.last_row_line = start + u64::from(output.last_row_line) - 1;
        }
        if let Some(trailer) = &target.layout.trailer {
            for (line, text) in &output.trailers {
                let line = start + u64::from(*line) - 1;
                self.controls.trailer_lines.push(line);
                match read_control_line(
                    text,
                    target.layout,
                    &trailer.fields,
                    ControlOrigin::Trailer,
                    line,
                ) {
                    Ok(declared) => self.controls.declared.push(declared),
                    Err(reason) => {
                        self.controls
                            .exceptions
                            .push(unreadable(target.file, line, reason))
                    }
                }
            }
        }
        merge_totals(&mut self.controls.totals, &output.records.totals);
        self.bad_row_count += output.bad_row_count;
        self.rows += output.records.rows;
        self.max_timestamp = self.max_timestamp.max(output.records.max_timestamp);
        self.line_cursor += u64::from(output.lines);
        target.store.add(target.side, output.records.parts)
    }
}

/// Where the scan of one file puts what it reads.
pub struct ScanTarget<'a> {
    pub file: &'a str,
    pub layout: &'a Layout,
    pub side: Side,
    pub store: &'a mut Store,
    pub bad_rows: &'a mut BadRowWriter,
}

fn unreadable(file: &str, line: u64, reason: String) -> ControlException {
    ControlException {
        kind: ControlKind::ControlUnreadable,
        file: file.to_owned(),
        line: Some(line),
        currency: None,
        declared: None,
        found: None,
        detail: reason,
    }
}

fn header_missing(file: &str, line: Option<u64>, detail: String) -> ControlException {
    ControlException {
        kind: ControlKind::HeaderMissing,
        file: file.to_owned(),
        line,
        currency: None,
        declared: None,
        found: None,
        detail,
    }
}

/// Takes the first line off `block` (without its line end).
fn take_line(block: &mut Vec<u8>) -> Vec<u8> {
    let end = memchr::memchr(b'\n', block).map_or(block.len(), |index| index + 1);
    let mut line: Vec<u8> = block.drain(..end).collect();
    while line
        .last()
        .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
    {
        line.pop();
    }
    line
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

/// Scans one input file into the store, writing its bad rows as it goes.
#[allow(clippy::too_many_arguments)]
pub fn scan_file(
    path: &Path,
    layout: &Layout,
    builder: &RowBuilder,
    side: Side,
    settings: ScanSettings,
    store: &mut Store,
    bad_rows: &mut BadRowWriter,
    progress: &dyn Progress,
) -> Result<SideScan, ReconError> {
    let file = path.display().to_string();
    let mut target = ScanTarget {
        file: &file,
        layout,
        side,
        store,
        bad_rows,
    };
    match layout.format {
        FileFormat::Csv | FileFormat::FixedWidth => {
            scan_text(path, builder, settings, &mut target, progress)
        }
        FileFormat::Parquet => {
            crate::parquet_input::scan_parquet(path, builder, settings, &mut target, progress)
        }
    }
}

/// Decodes one line of the top of a GBK CSV file (blocks are decoded before they are split,
/// so the lines read before the blocks are decoded here the same way).
fn decode_top_line(
    raw: Vec<u8>,
    layout: &Layout,
    path: &Path,
    line: u64,
    what: &str,
) -> Result<Vec<u8>, ReconError> {
    match (layout.format, layout.encoding) {
        (FileFormat::Csv, Encoding::Gbk) => {
            let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(&raw);
            if had_errors {
                return Err(ReconError::Input {
                    path: path.to_owned(),
                    line,
                    reason: format!("the {what} is not valid GBK (invalid byte sequence)"),
                });
            }
            Ok(text.into_owned().into_bytes())
        }
        _ => Ok(raw),
    }
}

/// Reads the layout's header lines off the front of the first block.
fn read_header_lines(
    first: &mut Vec<u8>,
    path: &Path,
    scan: &mut SideScan,
    target: &ScanTarget<'_>,
) -> Result<(), ReconError> {
    let Some(header) = &target.layout.header else {
        return Ok(());
    };
    for index in 1..=header.lines {
        let line_number = scan.line_cursor;
        if first.is_empty() {
            scan.controls.exceptions.push(header_missing(
                target.file,
                None,
                format!(
                    "the file has {} lines, its header takes {}",
                    index - 1,
                    header.lines
                ),
            ));
            return Ok(());
        }
        let line = decode_top_line(
            take_line(first),
            target.layout,
            path,
            line_number,
            "bank's header line",
        )?;
        scan.line_cursor += 1;
        if index == 1 {
            if let Some(prefix) = &header.prefix {
                let text = match (target.layout.format, target.layout.encoding) {
                    (FileFormat::FixedWidth, Encoding::Gbk) => encoding_rs::GBK
                        .decode_without_bom_handling(&line)
                        .0
                        .into_owned(),
                    _ => String::from_utf8_lossy(&line).into_owned(),
                };
                if !text.starts_with(prefix.as_str()) {
                    scan.controls.exceptions.push(header_missing(
                        target.file,
                        Some(line_number),
                        format!(
                            "the first line does not start with the header prefix {prefix:?}: the header may be missing and a row taken for it"
                        ),
                    ));
                }
            }
        }
        if index == header.totals_line && header.fields != Default::default() {
            match read_control_line(
                &line,
                target.layout,
                &header.fields,
                ControlOrigin::Header,
                line_number,
            ) {
                Ok(declared) => scan.controls.declared.push(declared),
                Err(reason) => {
                    scan.controls
                        .exceptions
                        .push(unreadable(target.file, line_number, reason))
                }
            }
        }
    }
    Ok(())
}

fn scan_text(
    path: &Path,
    builder: &RowBuilder,
    settings: ScanSettings,
    target: &mut ScanTarget<'_>,
    progress: &dyn Progress,
) -> Result<SideScan, ReconError> {
    let layout = target.layout;
    let file_name = target.file.to_owned();
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
    read_header_lines(&mut first, path, &mut scan, target)?;
    let mut header: Option<Vec<u8>> = None;
    if layout.format == FileFormat::Csv && layout.csv.header {
        let line_number = scan.line_cursor;
        header = Some(decode_top_line(
            take_line(&mut first),
            layout,
            path,
            line_number,
            "header",
        )?);
        scan.line_cursor += 1;
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
            scan.absorb(target, output)?;
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
                    scan.absorb(target, output)?;
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
    target: &mut ScanTarget<'_>,
    output: BlockOutput,
) -> Result<(), ReconError> {
    scan.absorb(target, output)
}

/// A fresh block output for row-at-a-time sources.
pub fn empty_block_output(partition_bits: u32) -> (BlockOutput, RowScratch) {
    (
        BlockOutput {
            records: PartitionedRecords::new(partition_bits),
            bad_rows: Vec::new(),
            bad_row_count: 0,
            trailers: Vec::new(),
            last_row_line: 0,
            lines: 0,
            tail: None,
        },
        RowScratch::default(),
    )
}

/// Records a bad row of a row-at-a-time source.
pub fn note_bad_row(output: &mut BlockOutput, line: u32, reason: String) {
    output.bad_row_count += 1;
    output.bad_rows.push((line, reason));
}
