//! The `tally` command: a thin shell over Tally's library crates.

mod consortium;
mod recon;
mod risk;
mod score;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "tally", version, about = "Consumer credit, payments, risk and reconciliation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Recon(command) => recon::run(command),
        Command::Score(command) => score::run(command),
        Command::Risk(command) => risk::run(command),
        Command::Consortium(command) => consortium::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
