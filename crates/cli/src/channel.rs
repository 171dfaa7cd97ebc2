//! `tally channel simulate`: runs the bank simulator of `tally-channel` as its own process,
//! for demos and for crash tests of the payment service.

use anyhow::Context;
use std::process::ExitCode;
use tally_channel::simulator::{self, PartsPerMillion, SimulatorConfig};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Runs a simulated bank (cards, authorisations, captures, refunds, payouts, signed
    /// notifications, settlement files) with injected faults. Rates are fractions from 0 to
    /// 1 (`0.05`); everything random follows `--seed`. Faults can be changed at run time with
    /// `POST /v1/faults`, and `POST /v1/down` / `up` take the bank down and up.
    Simulate(SimulateArgs),
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// The bearer token of every request and the key of notification signatures and card
    /// fingerprints.
    #[arg(long, env = "TALLY_CHANNEL_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Seeds every id and every random fault.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of authorisations declined `do_not_honor`.
    #[arg(long, default_value = "0")]
    pub decline_rate: PartsPerMillion,
    /// Share of mutating calls carried out whose answer is then lost (held for
    /// `--lost-answer-delay-ms`).
    #[arg(long, default_value = "0")]
    pub timeout_rate: PartsPerMillion,
    /// How long a lost answer is held, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub lost_answer_delay_ms: u64,
    /// Where to POST signed notifications; none are sent without it.
    #[arg(long, value_name = "URL")]
    pub notify_url: Option<String>,
    /// Share of notifications delivered twice.
    #[arg(long, default_value = "0")]
    pub duplicate_rate: PartsPerMillion,
    /// Each notification waits a random 0 to this many milliseconds: late and out of order.
    #[arg(long, default_value_t = 0)]
    pub notification_delay_max_ms: u64,
    /// 0: payouts are paid before their answer; more: they answer `pending` and settle
    /// this many milliseconds later.
    #[arg(long, default_value_t = 0)]
    pub payout_settle_ms: u64,
    /// Share of payouts returned by the card's bank.
    #[arg(long, default_value = "0")]
    pub payout_return_rate: PartsPerMillion,
    /// The bank's fee on captures.
    #[arg(long, default_value = "0.006")]
    pub fee_rate: PartsPerMillion,
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Simulate(arguments) => simulate(arguments).await,
    }
}

async fn simulate(arguments: SimulateArgs) -> anyhow::Result<ExitCode> {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mut config = SimulatorConfig::new(arguments.secret);
    config.seed = arguments.seed;
    config.notify_url = arguments.notify_url;
    config.lost_answer_delay_ms = arguments.lost_answer_delay_ms;
    config.payout_settle_ms = arguments.payout_settle_ms;
    config.fee_rate_ppm = arguments.fee_rate;
    config.faults.latency_ms = arguments.latency_ms;
    config.faults.decline_rate_ppm = arguments.decline_rate;
    config.faults.timeout_rate_ppm = arguments.timeout_rate;
    config.faults.duplicate_rate_ppm = arguments.duplicate_rate;
    config.faults.notification_delay_max_ms = arguments.notification_delay_max_ms;
    config.faults.payout_return_rate_ppm = arguments.payout_return_rate;
    config.check()?;
    let listener = tokio::net::TcpListener::bind(&arguments.listen)
        .await
        .with_context(|| format!("listening on {}", arguments.listen))?;
    let address = listener.local_addr()?;
    eprintln!("channel simulator listening on http://{address}");
    simulator::serve(listener, config).await?;
    Ok(ExitCode::SUCCESS)
}
