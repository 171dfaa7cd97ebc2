//! Tally's reconciliation engine: match the journal against channel settlement files, tens of millions of rows in seconds, in bounded memory.
//!
//! A pure library: it reads the files it is given and writes its outputs, but it reads no
//! clock (the caller passes a [`Stopwatch`] for the report) and uses no randomness it was not
//! given (the [`generate`] module takes a seed). `tally recon run` and `tally recon generate`
//! (crates/cli/src/recon.rs) are thin shells over [`run`] and [`generate::generate`].
//!
//! # Architecture
//!
//! The problem is a full outer join of two files on a transaction key, followed by a
//! classification of every key, where the files are 50 million rows each (about 4 GB of CSV
//! apiece), may be larger than memory, and come in layouts chosen by banks. The engine is a
//! Grace hash join specialised for that one query:
//!
//! ```text
//!  layout TOML ─► Layout ─► RowBuilder (compiled: slots, amount formats, status codes, time zone)
//!                                │
//!  ledger file ─► blocks ─► parse (all cores) ─► records, hash-partitioned ─┐
//!  channel file ► blocks ─► parse (all cores) ─► records, hash-partitioned ─┤
//!                                                                           ▼
//!                                  Store: per partition, in-memory segments + spill file
//!                                                                           │
//!                          match partitions (all cores, largest first) ◄────┘
//!                                   │ hash table on the ledger side, probe with the channel side
//!                                   ▼
//!          totals per class and currency + exceptions ─► exceptions.csv|parquet, bad_rows.csv,
//!                                                        summary.json, report.txt
//! ```
//!
//! **Phase one: scan** ([`scan`], [`text`], `parquet_input`). A text file is read in blocks of
//! whole lines (8 MiB by default, cut at the last newline). Two blocks per thread are parsed
//! at once with rayon; each block is parsed by one thread with no shared state. A GBK CSV
//! block is first decoded to UTF-8 with encoding_rs (a newline byte never occurs inside a GBK
//! character, so cutting at newlines is safe; trail bytes can be ASCII such as `|`, which is
//! why the block is decoded before it is split). An invalid GBK sequence on any line of a
//! record makes that record a bad row; in the header it stops the run with an error naming
//! the file and line 1. Lines are found with `memchr`, fields with
//! `memchr` on the delimiter; only a line that contains the quote byte takes the slower
//! quote-aware path (which also handles doubled quotes and newlines inside quotes). A quote
//! opens a quoted field only as the first byte of a field (RFC 4180); elsewhere (`O"Brien`)
//! it is a literal character, so a stray quote never joins lines. A quote that is never
//! closed makes a bad row of its own line only, and reading goes on with the next line. When
//! a quoted field holding a newline straddles the cut between two blocks, the first block
//! hands its unfinished record to the next one, which is parsed again with it in front (a
//! record may not be longer than one block). Fixed-width fields are byte ranges, cut
//! before decoding, so GBK positions are byte positions as in bank specifications; a line
//! that ends before a field's last byte is a bad row naming the field (never a field cut
//! short). Parquet is
//! read batch by batch with a column projection.
//!
//! Each row's fields go through the compiled layout ([`record::RowBuilder`]): the key (one or
//! more columns joined with 0x1F), the amount parsed exactly from its digits into i64 minor
//! units ([`amount`]: no float ever touches an amount), currency (constant, column, optional
//! map), status (raw value → canonical status through the layout's map, stored as one byte),
//! timestamp (a compiled strftime subset parsed without allocation, converted to Unix seconds
//! with a fixed offset or an IANA zone via jiff, memoised per civil hour), fee and batch
//! reference. A row that fails any of this is a bad row: counted, and written to
//! `bad_rows.csv` with file, line and reason as its block is absorbed (every one, in file
//! order, without holding them in memory; `--bad-rows-max` caps the file and the report
//! says how many were left out), and the run goes on. An amount that fails says which
//! layout key would read it (`amount::explain`).
//!
//! **Header and trailer lines** ([`control`]). Banks frame their files with lines that are
//! not rows: a layout's `[header]` names the first lines, read before the blocks, and its
//! `[trailer]` a prefix that each line of every block is compared with. Neither is a bad
//! row; their control totals (record count, amount sum, fee sum, per currency or for the
//! whole file) are checked against totals kept per currency while the rows are parsed, and
//! a difference is a control exception, a class apart in the summary. A layout without a
//! header or trailer costs one predictable branch per line and one per row.
//!
//! The key is hashed once ([`hash::hash_key`]); the top bits choose the partition, and the
//! record is appended to that partition's buffer in a compact binary form (varints: about 22
//! bytes plus key and batch reference; no per-row allocation). Line numbers are stored
//! block-relative and resolved through a table of block start lines, so blocks can be parsed
//! in any order. Each block's partition buffers are copied to exact size before they are
//! kept, so the heap holds no reserved-but-unused tails.
//!
//! **Memory accounting and spill** ([`store`]). Partition buffers are accounted by capacity.
//! The budget (`--memory-limit`, default 5 GiB) is divided up front: blocks in flight
//! (two waves of 2 × threads blocks, × 3 for raw, decoded and parsed data: one wave is parsed
//! while the next is read), then partition buffers up to nine tenths of the rest. When the
//! buffers exceed that threshold, the largest partitions (of either side) are appended to
//! their spill files until half the threshold is free. Spilled data of a partition always precedes its in-memory data, so file order within
//! a partition is kept and the result does not depend on whether or when a partition spilled.
//! The partition count (256 to 4096) is chosen from the input size so that one partition pair
//! holds about 8 MiB of input (its hash table then mostly stays in cache) and at most
//! budget / (8 × threads): in phase two, each thread holds one pair and its table.
//!
//! **Phase two: match** ([`kernel`]). Partitions are matched in parallel, largest first (a
//! partition swollen by a skewed key starts early and the other threads work around it; rayon
//! steals work). For one partition: the ledger records go into a hash table keyed by
//! (precomputed hash, key bytes borrowed from the buffer); the first row of a key is its
//! primary, later rows are `duplicate_in_ledger` (or, in batch matching, are summed into the
//! batch). Each channel record probes the table: the first channel row of a key is compared
//! with the ledger primary — currency, then amount (absolute or per-mille tolerance, in
//! i128), then status (equivalence groups), then fee — giving `currency_mismatch`,
//! `amount_mismatch`, `status_mismatch`, `fee_mismatch` or `matched`; later channel rows are
//! `duplicate_in_channel`; keys absent from the ledger are `missing_in_ledger`. Ledger
//! primaries left unmatched are `timing` when their timestamp is at or after
//! `cutoff - window` (they are expected to settle in the next file), `missing_in_channel`
//! otherwise. Totals per class and currency are summed per partition and merged.
//!
//! **Outputs** ([`output`]). Exceptions are sorted by ledger line, then channel line, so the
//! exceptions file is identical whatever the partition count, thread count or spilling.
//! Exit code 0 means every record matched, no row was bad and every control total held.
//!
//! **Why this design.** A sort-merge join would need a full sort of 100 million rows; a hash
//! join over partitions touches each record twice and keeps each hash table small enough to
//! stay mostly in cache. Partitioning by the key hash gives independent units of work for
//! all cores without locks, and a natural unit to spill. Parsing is the dominant cost for
//! CSV, so it is done on bytes with memchr, without per-field allocation, and the kernel
//! works on borrowed slices of the partition buffers.
//!
//! **Measured** (bench/recon/BENCHMARKS.md): 50M × 50M rows of CSV (8 GB) in 41–43 s wall,
//! 39–42 CPU-seconds, 4.2 GiB peak, on a shared, loaded 2-core VM where DuckDB took 157–245 s
//! and 17 GiB for the same classification (same counts); with `--memory-limit 2GiB` the same
//! run spills 2.6 GB and gives byte-identical outputs.
//!
//! **Limits, honestly.** What the budget does not account: the hash tables of phase two (one
//! partition per thread), the exceptions (held in memory until they are sorted and written),
//! the reasons of a block's bad rows until the block is absorbed (a wholly bad block of
//! short rows holds about a hundred bytes a line, tens of MB for an 8 MiB block) and
//! allocator overhead — the 2 GiB run above peaked at 2.06 GiB. A single key repeated
//! millions of times lands in one partition;
//! it is processed correctly but by one thread, and that partition is not split further
//! (there is no recursive repartitioning: a partition pair must fit in memory in phase two).
//! Parquet batches are converted on one thread. A record longer than one block (a quoted
//! field left open for 8 MiB) is reported as a bad row of its first line.

pub mod amount;
pub mod control;
pub mod engine;
pub mod error;
pub mod generate;
pub mod hash;
pub mod kernel;
pub mod layout;
pub mod output;
mod parquet_input;
pub mod progress;
pub mod record;
pub mod rules;
pub mod scan;
pub mod store;
pub mod text;
pub mod timestamp;

pub use control::{ControlException, ControlKind};
pub use engine::{
    parse_byte_size, run, NoStopwatch, RunOptions, RunOutcome, Stopwatch,
    MEMORY_LIMIT_DEFAULT_BYTES,
};
pub use error::ReconError;
pub use kernel::Class;
pub use layout::Layout;
pub use output::{ExceptionsFormat, Summary};
pub use progress::{NoProgress, Progress, TerminalProgress};
pub use rules::Rules;
