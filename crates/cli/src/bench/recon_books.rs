//! `tally bench recon-books`: the reconciliation of Tally's own books timed on a generated
//! day read from the database.
//!
//! Setup (not timed) is built fast rather than through checkout: each card payment's
//! capture is posted through the ledger writer's batch path (1,000 commands a call), under
//! the key checkout's card step posts it with (`payments:{payment}:step:1:ledger`, so its
//! channel reference is `payments:{payment}:step:1`): the channel clearing account debited,
//! the merchant payable credited. The clock moves through the business day from 08:00 to
//! 20:00 UTC, outside the timing window. The bank's settlement file of the day is written
//! beside it in the simulator's format, with discrepancies injected at fixed places: one
//! payment in 50,000 missing from the file, one with an amount a fen higher, one extra row
//! the books never saw. Then `reconcile_books` is timed (the ledger side read from the
//! database, the engine's match, the run and its exceptions stored), and its counts checked
//! against what was injected.

use anyhow::{anyhow, bail, Context};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tally_core::{Amount, Clock, Currency, ManualClock, SplitMix64};
use tally_ledger::{Command, NewEntry, NewLeg, Side};
use tally_service::payments::accounts::PAYMENTS_SERVICE;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_service::recon::{reconcile_books, BooksRun, BooksRunOptions};
use tally_store::{LedgerWriter, WriterConfig};

/// Commands per call to the writer's batch path.
const COMMANDS_PER_BATCH: usize = 1_000;

/// Setup batches queued on the writer at once.
const BATCHES_IN_FLIGHT: usize = 4;

/// One payment in this many of each injected discrepancy.
const DISCREPANCY_EVERY: usize = 50_000;

#[derive(Debug, clap::Args)]
pub struct ReconBooksBenchArgs {
    /// Database: a SQLite file (default `sqlite://tally-bench.db`, recreated) or a
    /// PostgreSQL server, where a fresh schema is made for the run.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Card payments captured on the day.
    #[arg(long, default_value_t = 100_000)]
    pub payments: usize,
    /// Seed of the amounts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where the settlement file, the ledger-side file and the engine's outputs go
    /// (default: a directory beside the database, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn day_start() -> Timestamp {
    // Monday 2026-05-04, the captures' date; reconciled the next morning.
    "2026-05-04T08:00:00Z".parse().expect("a fixed time")
}

async fn submit_all(writer: LedgerWriter, commands: Vec<(String, Command)>) -> anyhow::Result<()> {
    for outcome in writer.submit_batch_as(PAYMENTS_SERVICE, commands).await {
        outcome.map_err(|error| anyhow!("setup write refused: {error}"))?;
    }
    Ok(())
}

/// What the injected discrepancies should show as.
#[derive(Debug, Default)]
struct Injected {
    missing_in_channel: u64,
    amount_mismatch: u64,
    missing_in_ledger: u64,
}

pub async fn run(arguments: ReconBooksBenchArgs) -> anyhow::Result<ExitCode> {
    if arguments.payments == 0 {
        bail!("--payments must be at least 1");
    }
    let (database, scratch, label) = super::open_database(arguments.database_url.as_deref())
        .await
        .context("opening the database")?;
    let work_dir = arguments.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tally-bench-recon-{}", std::process::id()))
    });
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let clock = Arc::new(ManualClock::new(day_start()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let (writer, _task) = LedgerWriter::start(&database, dyn_clock, WriterConfig::default())
        .await
        .context("starting the ledger writer")?;
    let payments = PaymentService::new(
        database.clone(),
        writer.clone(),
        None,
        None,
        PaymentsConfig::default(),
    );
    let service = payments
        .accounts()
        .service(&database, &writer, Currency::CNY)
        .await
        .map_err(|error| anyhow!("opening the payment service's accounts: {error}"))?;

    let setup_started = Instant::now();
    let date: jiff::civil::Date = "2026-05-04".parse()?;
    let settlement_path = work_dir.join(format!("settlement-{date}.csv"));
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&settlement_path)
            .with_context(|| format!("creating {}", settlement_path.display()))?,
    );
    writeln!(
        file,
        "record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee"
    )?;
    let mut rows = 0_u64;
    let mut amount_sum = 0_i64;
    let mut fee_sum = 0_i64;
    let mut write_row = |file: &mut std::io::BufWriter<std::fs::File>,
                         reference: &str,
                         index: usize,
                         minor: i64|
     -> anyhow::Result<()> {
        // The bank's fee: 0.3 % half up.
        let fee = (minor * 3 + 500) / 1000;
        writeln!(
            file,
            "capture,{date},{reference},ch_{index:09},4242,{},CNY,{}",
            Amount::new(minor, Currency::CNY).to_decimal_string(),
            Amount::new(fee, Currency::CNY).to_decimal_string(),
        )?;
        rows += 1;
        amount_sum += minor;
        fee_sum += fee;
        Ok(())
    };
    let mut injected = Injected::default();
    let mut random = SplitMix64::new(arguments.seed);
    // Twelve hours of captures, evenly spaced, outside the last two hours' timing window.
    let step = SignedDuration::from_micros(
        i64::try_from(12 * 3_600_000_000_u64 / arguments.payments as u64)?.max(1),
    );
    let mut batch = Vec::with_capacity(COMMANDS_PER_BATCH);
    let mut in_flight = tokio::task::JoinSet::new();
    for payment in 0..arguments.payments {
        let minor = i64::try_from(100 + random.next_u64() % 99_900)?;
        let reference = format!("payments:bench-{payment:09}:step:1");
        let amount = Amount::new(minor, Currency::CNY);
        batch.push((
            format!("{reference}:ledger"),
            Command::PostEntry(NewEntry {
                description: format!("payment bench-{payment} card capture"),
                metadata: BTreeMap::from([("payment".to_string(), format!("bench-{payment}"))]),
                legs: vec![
                    NewLeg {
                        account_id: service.channel_clearing,
                        side: Side::Debit,
                        amount,
                    },
                    NewLeg {
                        account_id: service.merchant_payable,
                        side: Side::Credit,
                        amount,
                    },
                ],
            }),
        ));
        match payment % DISCREPANCY_EVERY {
            1 => injected.missing_in_channel += 1,
            2 => {
                injected.amount_mismatch += 1;
                write_row(&mut file, &reference, payment, minor + 1)?;
            }
            3 => {
                injected.missing_in_ledger += 1;
                write_row(&mut file, &reference, payment, minor)?;
                write_row(
                    &mut file,
                    &format!("payments:unknown-{payment:09}:step:1"),
                    payment,
                    minor,
                )?;
            }
            _ => write_row(&mut file, &reference, payment, minor)?,
        }
        if batch.len() == COMMANDS_PER_BATCH {
            if in_flight.len() >= BATCHES_IN_FLIGHT {
                in_flight.join_next().await.context("a setup batch")???;
            }
            in_flight.spawn(submit_all(writer.clone(), std::mem::take(&mut batch)));
        }
        clock.advance(step);
    }
    submit_all(writer.clone(), batch).await?;
    while let Some(done) = in_flight.join_next().await {
        done.context("a setup batch")??;
    }
    writeln!(
        file,
        "trailer,{date},{rows},,,{},CNY,{}",
        Amount::new(amount_sum, Currency::CNY).to_decimal_string(),
        Amount::new(fee_sum, Currency::CNY).to_decimal_string(),
    )?;
    file.flush()?;
    drop(file);
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    let now: Timestamp = "2026-05-05T01:00:00Z".parse()?;
    clock.set(now);
    let options = BooksRunOptions::new(date, settlement_path.clone(), work_dir.clone());
    let started = Instant::now();
    let outcome = reconcile_books(&database, &options, now)
        .await
        .map_err(|error| anyhow!("reconciliation: {error}"))?;
    let run_seconds = started.elapsed().as_secs_f64();
    let view = match &outcome {
        BooksRun::Reconciled(view) => view.clone(),
        BooksRun::AlreadyReconciled(_) => bail!("the fresh database had a run already"),
    };
    let class_count = |class: &str| -> u64 {
        view.summary
            .classes
            .get(class)
            .map(|currencies| currencies.values().map(|totals| totals.count).sum())
            .unwrap_or(0)
    };
    let expected_exceptions =
        injected.missing_in_channel + injected.amount_mismatch + injected.missing_in_ledger;
    let payments_count = u64::try_from(arguments.payments)?;
    let checks_pass = u64::try_from(view.ledger_records)? == payments_count
        && u64::try_from(view.channel_records)? == rows
        && u64::try_from(view.exceptions)? == expected_exceptions
        && class_count("missing_in_channel") == injected.missing_in_channel
        && class_count("missing_in_ledger") == injected.missing_in_ledger
        && u64::try_from(view.matched)?
            == payments_count - injected.missing_in_channel - injected.amount_mismatch;
    let result = json!({
        "database": label,
        "payments": arguments.payments,
        "setup_seconds": setup_seconds,
        "reconciliation_seconds": run_seconds,
        "ledger_records": view.ledger_records,
        "channel_records": view.channel_records,
        "matched": view.matched,
        "exceptions": view.exceptions,
        "classes": view.summary.classes.iter().map(|(class, currencies)| {
            (class.clone(), currencies.values().map(|totals| totals.count).sum::<u64>())
        }).collect::<BTreeMap<String, u64>>(),
        "checks_pass": checks_pass,
    });
    if arguments.json {
        println!("{result}");
    } else {
        println!(
            "{label}: {} card payments; setup {setup_seconds:.1} s; reconciliation from the \
             database {run_seconds:.2} s; ledger records {}, channel records {}, matched {}, \
             exceptions {} (injected {expected_exceptions}); checks {}",
            arguments.payments,
            view.ledger_records,
            view.channel_records,
            view.matched,
            view.exceptions,
            if checks_pass { "pass" } else { "FAIL" }
        );
    }
    database.close().await;
    if let Some(scratch) = scratch {
        scratch.drop_schema().await?;
    }
    if arguments.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(if checks_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
