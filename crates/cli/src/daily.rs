//! `tally recon books --date D` reconciles Tally's own books on the database against the
//! channel's settlement file of the date (a file given, or fetched from the configured
//! channel); `tally daily --date D` runs the day's closing jobs in order: merchant
//! settlement, then the scheduled payouts of the settled balances, then the sweep of the
//! date's repayments to the bank account, then the reconciliation. Every step is resumable
//! and runs a date once, so the job repeated or resumed after a crash does nothing twice.

use anyhow::{anyhow, Context};
use jiff::civil::Date;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tally_core::{Clock, Currency, SystemClock};
use tally_recon::Layout;
use tally_service::credit::sweep::sweep_repayments;
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_service::recon::run::TIMING_WINDOW_SECONDS_DEFAULT;
use tally_service::recon::{reconcile_books, BooksRun, BooksRunOptions};
use tally_store::{Database, LedgerWriter, WriterConfig};

/// Where the bank's side comes from, and how the run is made.
#[derive(Debug, clap::Args)]
pub struct ChannelFileArguments {
    /// The channel's settlement file of the date. Without it the file is fetched from the
    /// configured channel (`[payments] channel_url` and `channel_secret`).
    #[arg(long)]
    settlement_file: Option<PathBuf>,
    /// The settlement file's layout (docs/recon-layout.md); the bank simulator's when absent.
    #[arg(long)]
    layout: Option<PathBuf>,
    /// Directory for the ledger-side file, a fetched settlement file and the engine's
    /// outputs (exceptions, summary, report) of each date.
    #[arg(long, default_value = "recon")]
    work_dir: PathBuf,
    /// A ledger record missing from the bank's file is a timing item, carried to the next
    /// day's run, when it was recorded this many seconds before the day's end or later.
    #[arg(long, default_value_t = TIMING_WINDOW_SECONDS_DEFAULT)]
    timing_window_seconds: i64,
}

/// `tally recon books`.
#[derive(Debug, clap::Args)]
pub struct BooksArguments {
    /// The business date (a UTC day, the channel's value date), YYYY-MM-DD; it must be over.
    #[arg(long)]
    date: Date,
    #[command(flatten)]
    channel: ChannelFileArguments,
    /// Database (`--database-url`) and configuration file, as for `tally serve`.
    #[command(flatten)]
    config: crate::serve::ConfigArgs,
}

/// `tally daily`.
#[derive(Debug, clap::Args)]
pub struct DailyArguments {
    /// The business date to close, YYYY-MM-DD.
    #[arg(long)]
    date: Date,
    #[command(flatten)]
    channel: ChannelFileArguments,
    /// A currency whose repayments of the date are swept from the credit repayment clearing
    /// account to the bank account; repeat it for several.
    #[arg(long = "sweep-currency", default_value = "CNY")]
    sweep_currencies: Vec<String>,
    #[command(flatten)]
    config: crate::serve::ConfigArgs,
}

/// Reconciles `date`: the settlement file given, or fetched from the channel into the work
/// directory.
async fn reconcile(
    database: &Database,
    config: &tally_server::Config,
    date: Date,
    channel: &ChannelFileArguments,
    now: jiff::Timestamp,
) -> anyhow::Result<BooksRun> {
    std::fs::create_dir_all(&channel.work_dir)
        .with_context(|| format!("creating {}", channel.work_dir.display()))?;
    let settlement_file = match &channel.settlement_file {
        Some(path) => path.clone(),
        None => {
            let url = config.payments.channel_url.as_deref().ok_or_else(|| {
                anyhow!("no --settlement-file, and no [payments] channel_url to fetch it from")
            })?;
            let secret = config
                .payments
                .channel_secret
                .as_ref()
                .ok_or_else(|| anyhow!("[payments] channel_secret is not set"))?;
            let control = tally_channel::simulator::SimulatorControl::new(url, secret.expose())?;
            let text = control
                .settlement_file(date)
                .await
                .with_context(|| format!("fetching the settlement file of {date} from {url}"))?;
            let path = channel.work_dir.join(format!("settlement-{date}.csv"));
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    let mut options = BooksRunOptions::new(date, settlement_file, channel.work_dir.clone());
    options.timing_window_seconds = channel.timing_window_seconds;
    if let Some(layout) = &channel.layout {
        options.channel_layout = Some(Layout::from_file(layout)?);
    }
    reconcile_books(database, &options, now)
        .await
        .map_err(|error| anyhow!("{}: {error}", error.code()))
}

fn report(run: &BooksRun) -> anyhow::Result<ExitCode> {
    if let BooksRun::AlreadyReconciled(view) = run {
        eprintln!(
            "business date {} was reconciled before; its stored run:",
            view.business_date
        );
    }
    println!("{}", serde_json::to_string_pretty(run.view())?);
    Ok(if run.view().exceptions == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tally recon books`: exit code 0 when nothing is left unmatched, 1 when the run opened
/// exceptions (listed at `GET /v1/recon/exceptions?run=D`), 2 on an error.
pub async fn books(arguments: BooksArguments) -> anyhow::Result<ExitCode> {
    let (database, config) = crate::jobs::open(&arguments.config).await?;
    let clock = SystemClock;
    let run = reconcile(
        &database,
        &config,
        arguments.date,
        &arguments.channel,
        clock.now(),
    )
    .await?;
    report(&run)
}

/// `tally daily`: settlement, payouts, the repayment sweep, reconciliation, in that order;
/// each step resumes where a crash left it and does nothing twice. Exit code as `tally
/// recon books`.
pub async fn daily(arguments: DailyArguments) -> anyhow::Result<ExitCode> {
    let sweep_currencies = arguments
        .sweep_currencies
        .iter()
        .map(|code| {
            Currency::from_code(code).map_err(|error| anyhow!("--sweep-currency {code:?}: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (database, config) = crate::jobs::open(&arguments.config).await?;
    let setup = config
        .credit
        .load()
        .map_err(|error| anyhow!("credit configuration: {error}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (writer, _task) = LedgerWriter::start(&database, clock.clone(), WriterConfig::default())
        .await
        .context("starting the ledger writer")?;
    let payments = Arc::new(PaymentService::new(
        database.clone(),
        writer.clone(),
        None,
        None,
        PaymentsConfig {
            time_zone: setup.time_zone.clone(),
            ..PaymentsConfig::default()
        },
    ));
    let date = arguments.date;
    // 1. Settlement: what is due moves to the merchants' available balances.
    let settlement = payments
        .run_settlement(date, clock.now(), SettlementOptions::default())
        .await
        .map_err(|error| anyhow!("settlement of {date}: {}: {error}", error.code()))?;
    eprintln!("settlement of {date}: done");
    // 2. Scheduled payouts: each merchant's positive available balance, one batch per
    //    currency, before the reconciliation so that the books it matches hold them. Asked
    //    again for the date, the run answers the batches it made. Each payout is decided
    //    by the risk engine first, as the API's run.
    let payouts =
        crate::payouts::gated_scheduled_payouts(&database, payments.clone(), clock.clone(), date)
            .await?
            .map_err(|error| anyhow!("payouts of {date}: {}: {error}", error.code()))?;
    eprintln!("payouts of {date}: done");
    // 3. The repayment sweep: the date's repayments from clearing to the bank account, one
    //    entry per currency under a key of the date, so a rerun posts nothing again.
    let mut sweeps = Vec::new();
    for currency in sweep_currencies {
        let sweep = sweep_repayments(
            &database,
            &writer,
            currency,
            date,
            &setup.time_zone,
            clock.now(),
        )
        .await
        .map_err(|error| anyhow!("sweep of {date} in {currency}: {}: {error}", error.code()))?;
        sweeps.push(sweep);
    }
    eprintln!("sweep of {date}: done");
    // 4. Reconciliation of the books against the channel's file of the date.
    let run = reconcile(&database, &config, date, &arguments.channel, clock.now())
        .await
        .with_context(|| format!("reconciliation of {date}"))?;
    eprintln!(
        "reconciliation of {date}: {} matched, {} exceptions",
        run.view().matched,
        run.view().exceptions
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "payouts": payouts,
            "reconciliation": run.view(),
            "settlement": settlement,
            "sweeps": sweeps,
        }))?
    );
    // As `tally recon books`: 1 tells a scheduler the worklist has new exceptions.
    Ok(if run.view().exceptions == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
