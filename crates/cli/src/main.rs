//! The `tally` command: a thin shell over Tally's library crates.

mod bench;
mod channel;
mod client;
mod consortium;
mod credit;
mod customers;
mod daily;
mod demo;
mod disputes;
mod eod;
mod jobs;
mod merchants;
mod pay;
mod payouts;
mod privacy;
mod recon;
mod report;
mod risk;
mod score;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version,
    about = "Consumer credit, payments, risk and reconciliation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A simulated lender in one command: builds months of business on a new SQLite file
    /// through Tally's own services, checks its figures, then serves the console.
    Demo(demo::Arguments),
    /// Runs the HTTP service (SQLite file tally.db by default; PostgreSQL with a postgres:// URL).
    Serve(serve::ServeArgs),
    /// Applies database migrations (also done at every start).
    Migrate(serve::ConfigArgs),
    /// Manages API keys.
    #[command(subcommand)]
    Keys(serve::KeysCommand),
    /// Benchmarks: measured figures for BENCHMARKS.md.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Reconcile the journal against channel settlement files.
    #[command(subcommand)]
    Recon(recon::Command),
    /// Train, evaluate and apply the credit scorecard.
    #[command(subcommand)]
    Score(score::Command),
    /// Risk engine tools: back-testing.
    #[command(subcommand)]
    Risk(risk::Command),
    /// Consortium risk-sharing log: serve, verify, mirror.
    #[command(subcommand)]
    Consortium(consortium::Command),
    /// Credit accounts over the API of a running `tally serve`: open, purchase, repay, ...
    /// (scopes credit:write / credit:read; admin to add products).
    Credit(credit::Arguments),
    /// Customers over the API of a running `tally serve`: create, show (masked unless
    /// pii:read), find, reads (the audit log). Scope credit:write to create, credit:read to
    /// show; pii:read for --unmasked.
    Customers(customers::Arguments),
    /// Combined checkout over the API of a running `tally serve`: create, confirm, capture,
    /// cancel, refund and show payments; save cards; wallet balances, top-ups, withdrawals
    /// (scopes payments:write / payments:read).
    Pay(pay::Arguments),
    /// Credit end of day for a business date (`--date YYYY-MM-DD`); `eod bench` times it.
    Eod(eod::Arguments),
    /// Merchants over the API of a running `tally serve`: onboard, show, status, fees, and
    /// settlement statements (JSON or CSV). Scope payments:write to onboard and change,
    /// payments:read to show.
    Merchants(merchants::Arguments),
    /// Merchant settlement for a business date (`--date YYYY-MM-DD`), on the database:
    /// resumable, and a date settled once.
    Settle(merchants::SettleArguments),
    /// The day's closing jobs on the database, in order: merchant settlement, the scheduled
    /// payouts, the repayment sweep, reconciliation of Tally's books against the channel's
    /// file; resumable.
    Daily(daily::DailyArguments),
    /// Payouts of merchants' balances over the API of a running `tally serve` (create,
    /// batch, show, list, the bank file and its return file), and `run --date` for the
    /// scheduled payouts after a settlement run, on the database. Scope payments:write to
    /// pay out and take files, payments:read to read.
    Payouts(payouts::Arguments),
    /// Disputes (chargebacks) over the API of a running `tally serve`: list, show, submit
    /// evidence, accept. Scope payments:read to read, payments:write for evidence and accept.
    Disputes(disputes::Arguments),
    /// Reports from the database: `flow-of-funds` of a business date and currency as JSON,
    /// CSV or Parquet.
    #[command(subcommand)]
    Report(report::Command),
    /// Customers' personal data in the database: re-seal it under the active key.
    #[command(subcommand)]
    Privacy(privacy::Command),
    /// Payment channel tools: `simulate` runs a bank simulator with injected faults.
    #[command(subcommand)]
    Channel(channel::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(arguments) => block_on(demo::run(arguments)),
        Command::Serve(arguments) => block_on(serve::serve(arguments)),
        Command::Migrate(arguments) => block_on(serve::migrate(arguments)),
        Command::Keys(command) => block_on(serve::keys(command)),
        Command::Bench(command) => block_on(bench::run(command)),
        Command::Recon(command) => recon::run(command),
        Command::Score(command) => score::run(command),
        Command::Risk(command) => risk::run(command),
        Command::Consortium(command) => consortium::run(command),
        Command::Eod(arguments) => block_on(eod::run(arguments)),
        Command::Credit(arguments) => block_on(credit::run(arguments)),
        Command::Customers(arguments) => block_on(customers::run(arguments)),
        Command::Pay(arguments) => block_on(pay::run(arguments)),
        Command::Merchants(arguments) => block_on(merchants::run(arguments)),
        Command::Settle(arguments) => block_on(merchants::settle(arguments)),
        Command::Daily(arguments) => block_on(daily::daily(arguments)),
        Command::Payouts(arguments) => block_on(payouts::run(arguments)),
        Command::Disputes(arguments) => block_on(disputes::run(arguments)),
        Command::Report(command) => block_on(report::run(command)),
        Command::Privacy(command) => block_on(privacy::run(command)),
        Command::Channel(command) => block_on(channel::run(command)),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs an async command on a multi-threaded runtime with one worker per core.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
