//! `tally recon`: generate reconciliation test data and reconcile a ledger file against a channel file.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tally_recon::generate::{generate, GenerateOptions};
use tally_recon::layout::{Encoding, FileFormat};
use tally_recon::{
    ExceptionsFormat, Layout, NoProgress, Progress, Rules, RunOptions, TerminalProgress,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a ledger file, a channel file in another layout, their layouts, rules and ground truth.
    Generate(GenerateArguments),
    /// Reconcile a ledger file against a channel file (layouts: docs/recon-layout.md). Exit
    /// code 0: everything matched; 1: exceptions, control exceptions or bad rows; 2: error.
    Run(RunArguments),
    /// Reconcile Tally's own books on the database (the channel operations its journal
    /// recorded on a business date) against the channel's settlement file of that date,
    /// and store the run and its exceptions (the worklist of `/v1/recon`). Exit code 0:
    /// nothing unmatched; 1: exceptions; 2: error.
    Books(crate::daily::BooksArguments),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArgument {
    Csv,
    FixedWidth,
    Parquet,
}

impl From<FormatArgument> for FileFormat {
    fn from(format: FormatArgument) -> FileFormat {
        match format {
            FormatArgument::Csv => FileFormat::Csv,
            FormatArgument::FixedWidth => FileFormat::FixedWidth,
            FormatArgument::Parquet => FileFormat::Parquet,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EncodingArgument {
    #[value(name = "utf-8")]
    Utf8,
    Gbk,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExceptionsArgument {
    Csv,
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArguments {
    /// Transactions to generate (each file has about this many rows).
    #[arg(long)]
    rows: u64,
    /// Seed of the generator: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of transactions with an injected discrepancy, from 0 to 1.
    #[arg(long, default_value_t = 0.01)]
    discrepancy_rate: f64,
    /// Directory to write into.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    ledger_format: FormatArgument,
    #[arg(long, value_enum, default_value = "csv")]
    channel_format: FormatArgument,
    #[arg(long, value_enum, default_value = "utf-8")]
    channel_encoding: EncodingArgument,
}

#[derive(Debug, clap::Args)]
pub struct RunArguments {
    #[arg(long)]
    ledger: PathBuf,
    #[arg(long)]
    ledger_layout: PathBuf,
    #[arg(long)]
    channel: PathBuf,
    #[arg(long)]
    channel_layout: PathBuf,
    /// Rules TOML; without it, exact amounts, no timing window, status and fee checked.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Directory for exceptions, bad_rows.csv, summary.json and report.txt.
    #[arg(long)]
    out: PathBuf,
    /// Memory budget, such as 4GiB or 512MiB; partitions beyond it are spilled to disk.
    #[arg(long, default_value = "5GiB")]
    memory_limit: String,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Directory for spill files (default: inside --out).
    #[arg(long)]
    spill_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "csv")]
    exceptions_format: ExceptionsArgument,
    /// Partition count as a power of two (default: chosen from the input size and budget).
    #[arg(long)]
    partition_bits: Option<u32>,
    /// Do not draw a progress bar even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Write at most this many bad rows to bad_rows.csv (default: every one); the report
    /// and summary.json say how many were left out.
    #[arg(long)]
    bad_rows_max: Option<u64>,
}

struct Clock(Instant);

impl tally_recon::Stopwatch for Clock {
    fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

fn progress(disabled: bool) -> Box<dyn Progress> {
    match TerminalProgress::when_terminal() {
        Some(bar) if !disabled => Box::new(bar),
        _ => Box::new(NoProgress),
    }
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Generate(arguments) => {
            if !(0.0..=1.0).contains(&arguments.discrepancy_rate) {
                anyhow::bail!("--discrepancy-rate must be between 0 and 1");
            }
            let options = GenerateOptions {
                rows: arguments.rows,
                seed: arguments.seed,
                discrepancy_parts_per_million: (arguments.discrepancy_rate * 1e6).round() as u64,
                out_dir: arguments.out,
                ledger_format: arguments.ledger_format.into(),
                channel_format: arguments.channel_format.into(),
                channel_encoding: match arguments.channel_encoding {
                    EncodingArgument::Utf8 => Encoding::Utf8,
                    EncodingArgument::Gbk => Encoding::Gbk,
                },
            };
            let started = Instant::now();
            let outcome = generate(&options, progress(false).as_ref()).context("generate")?;
            println!(
                "wrote {}, {}, layouts, {} and {} in {:.1} s",
                outcome.ledger.display(),
                outcome.channel.display(),
                outcome.rules.display(),
                outcome.ground_truth.display(),
                started.elapsed().as_secs_f64()
            );
            for (class, count) in &outcome.expected {
                println!("  expected {class:<22} {count}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Books(arguments) => crate::block_on(crate::daily::books(arguments)),
        Command::Run(arguments) => {
            let clock = Clock(Instant::now());
            let rules = match &arguments.rules {
                Some(path) => Rules::from_file(path)?,
                None => Rules::default(),
            };
            let mut options = RunOptions::new(
                arguments.ledger,
                Layout::from_file(&arguments.ledger_layout)?,
                arguments.channel,
                Layout::from_file(&arguments.channel_layout)?,
                rules,
                arguments.out,
            );
            options.memory_limit_bytes = tally_recon::parse_byte_size(&arguments.memory_limit)?;
            options.threads = arguments.threads;
            options.spill_dir = arguments.spill_dir;
            options.partition_bits = arguments.partition_bits;
            options.bad_rows_max = arguments.bad_rows_max;
            options.exceptions_format = match arguments.exceptions_format {
                ExceptionsArgument::Csv => ExceptionsFormat::Csv,
                ExceptionsArgument::Parquet => ExceptionsFormat::Parquet,
            };
            let progress = progress(arguments.no_progress);
            let outcome = tally_recon::run(&options, progress.as_ref(), &clock)?;
            print!("{}", outcome.summary.report());
            Ok(ExitCode::from(outcome.summary.exit_code))
        }
    }
}
