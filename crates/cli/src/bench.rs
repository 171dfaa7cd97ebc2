//! `tally bench ...`: benchmarks that measure, never assert. Figures go in BENCHMARKS.md.

mod checkout;
mod recon_books;
mod settlement;

use anyhow::Context;
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_core::{Clock, SplitMix64, SystemClock};
use tally_server::state::Limits;
use tally_server::AppState;
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Two-leg ledger transfers over HTTP with concurrent clients, against an in-process
    /// server on a fresh database: transfers per second and latency percentiles.
    Ledger(LedgerBenchArgs),
    /// Risk decisions with the default pack and its velocity features: in process on one
    /// core, then over HTTP against an in-process server that stores every decision.
    Risk(RiskBenchArgs),
    /// Credit end of day on a generated portfolio (`--accounts 1000000`).
    Eod(crate::eod::BenchArguments),
    /// Combined checkouts (wallet + credit line + card) created and confirmed over HTTP by
    /// concurrent clients, against an in-process server and bank simulator (or `--url`):
    /// checkouts per second and latency percentiles.
    Checkout(checkout::CheckoutBenchArgs),
    /// The daily settlement run on a generated day (`--merchants 10000 --payments
    /// 1000000`): merchants and captures set up in bulk, the run timed and its result checked.
    Settlement(settlement::SettlementBenchArgs),
    /// The reconciliation of Tally's own books read from the database, on a generated day
    /// of card payments and the bank's settlement file with injected discrepancies
    /// (`--payments 1000000`): the day set up in bulk, the run timed and its counts checked.
    ReconBooks(recon_books::ReconBooksBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct RiskBenchArgs {
    #[command(flatten)]
    pub in_process: crate::risk::BenchArgs,
    /// Concurrent HTTP clients for the HTTP half.
    #[arg(long, default_value_t = 32)]
    pub http_clients: usize,
    /// Events sent over HTTP (the first ones of the generated traffic).
    #[arg(long, default_value_t = 20_000)]
    pub http_events: usize,
    /// Skip the in-process half.
    #[arg(long)]
    pub http_only: bool,
}

#[derive(Debug, clap::Args)]
pub struct LedgerBenchArgs {
    /// Database: a SQLite file (default `sqlite://tally-bench.db` in the working directory,
    /// recreated) or a PostgreSQL server, where a fresh schema is made for the run.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Concurrent HTTP clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 20)]
    pub duration_seconds: u64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup_seconds: u64,
    /// Accounts the transfers move money between.
    #[arg(long, default_value_t = 1000)]
    pub accounts: usize,
    /// Transfers per request through `POST /v1/entries/batch` (at most 1,000); 0 posts each
    /// transfer alone to `POST /v1/entries`. Latencies are then a batch's.
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Ledger(arguments) => ledger(arguments).await,
        BenchCommand::Risk(arguments) => risk(arguments).await,
        BenchCommand::Eod(arguments) => crate::eod::bench(arguments).await,
        BenchCommand::Checkout(arguments) => checkout::run(arguments).await,
        BenchCommand::Settlement(arguments) => settlement::run(arguments).await,
        BenchCommand::ReconBooks(arguments) => recon_books::run(arguments).await,
    }
}

fn percentile(sorted: &[u64], fraction_per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = (sorted.len() * fraction_per_mille)
        .div_ceil(1000)
        .saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn milliseconds(microseconds: u64) -> String {
    format!("{}.{:03}", microseconds / 1000, microseconds % 1000)
}

async fn open_database(
    url: Option<&str>,
) -> anyhow::Result<(Database, Option<TestDatabase>, String)> {
    match url {
        Some(url) if Database::backend_of(url) == tally_store::Backend::Postgres => {
            let scratch = TestDatabase::postgres_at(url)
                .await
                .context("making a scratch schema on PostgreSQL")?;
            let label = format!(
                "PostgreSQL (schema {})",
                scratch.schema.clone().unwrap_or_default()
            );
            Ok((scratch.database.clone(), Some(scratch), label))
        }
        _ => {
            let url = url.unwrap_or("sqlite://tally-bench.db").to_string();
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .to_string();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            let database = crate::jobs::connect(&url).await?;
            Ok((
                database,
                None,
                format!("SQLite file {path} (WAL, synchronous=FULL)"),
            ))
        }
    }
}

async fn ledger(arguments: LedgerBenchArgs) -> anyhow::Result<ExitCode> {
    // TALLY_LOG=tally_store=debug shows each ledger batch's size and phase timings.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    anyhow::ensure!(
        arguments.clients > 0 && arguments.accounts >= 2,
        "need clients ≥ 1 and accounts ≥ 2"
    );
    anyhow::ensure!(
        arguments.batch <= tally_server::wire::BATCH_ENTRIES_MAX,
        "--batch is at most {}",
        tally_server::wire::BATCH_ENTRIES_MAX
    );
    let batch = arguments.batch;
    let (database, scratch, label) = open_database(arguments.database_url.as_deref()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (writer, _) =
        LedgerWriter::start(&database, clock.clone(), WriterConfig::default()).await?;
    let state = AppState::new(database.clone(), writer, clock.clone(), Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, tally_server::app(state)).await;
    });
    let key = database
        .create_api_key("bench", &["admin".to_string()], clock.now())
        .await?
        .secret
        .expose()
        .clone();
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(arguments.clients)
        .build()?;
    eprintln!("opening {} accounts on {label}", arguments.accounts);
    let mut accounts = Vec::with_capacity(arguments.accounts);
    for index in 0..arguments.accounts {
        let response = client
            .post(format!("{base}/v1/accounts"))
            .bearer_auth(&key)
            .header("Idempotency-Key", format!("bench-account-{index}"))
            .json(&json!({"code": format!("bench-{index}"), "kind": "asset", "currency": "CNY"}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "opening an account failed: {}",
            response.text().await?
        );
        let body: serde_json::Value = response.json().await?;
        accounts.push(body["id"].as_str().unwrap_or_default().to_string());
    }
    let accounts = Arc::new(accounts);
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(arguments.warmup_seconds);
    let stop_at = measure_from + Duration::from_secs(arguments.duration_seconds);
    eprintln!(
        "{} clients: {} s warm-up, then {} s measured",
        arguments.clients, arguments.warmup_seconds, arguments.duration_seconds
    );
    let mut tasks = Vec::new();
    for client_index in 0..arguments.clients {
        let client = client.clone();
        let key = key.clone();
        let base = base.clone();
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            let mut random = SplitMix64::new(client_index as u64 + 1);
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            let mut transfers = 0_u64;
            let mut sequence = 0_u64;
            let mut transfer = |random: &mut SplitMix64| {
                let from = random.below(accounts.len() as u64) as usize;
                let mut to = random.below(accounts.len() as u64) as usize;
                if to == from {
                    to = (to + 1) % accounts.len();
                }
                let minor = 1 + random.below(100_000);
                let amount = format!("{}.{:02}", minor / 100, minor % 100);
                sequence += 1;
                let key = format!("bench-{client_index}-{sequence}");
                let entry = json!({"legs": [
                    {"account_id": accounts[from], "side": "debit", "amount": amount, "currency": "CNY"},
                    {"account_id": accounts[to], "side": "credit", "amount": amount, "currency": "CNY"},
                ]});
                (key, entry)
            };
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                let request = if batch == 0 {
                    let (idempotency, entry) = transfer(&mut random);
                    client
                        .post(format!("{base}/v1/entries"))
                        .header("Idempotency-Key", idempotency)
                        .json(&entry)
                } else {
                    let entries: Vec<serde_json::Value> = (0..batch)
                        .map(|_| {
                            let (idempotency, entry) = transfer(&mut random);
                            json!({"idempotency_key": idempotency, "entry": entry})
                        })
                        .collect();
                    client
                        .post(format!("{base}/v1/entries/batch"))
                        .json(&json!({ "entries": entries }))
                };
                let sent = Instant::now();
                let result = request.bearer_auth(&key).send().await;
                // Transfers applied by the request: one, or the batch's `applied`.
                let applied = match result {
                    Ok(response) if response.status().is_success() => {
                        if batch == 0 {
                            let _ = response.bytes().await;
                            1
                        } else {
                            response
                                .json::<serde_json::Value>()
                                .await
                                .ok()
                                .and_then(|body| body["applied"].as_u64())
                                .unwrap_or(0)
                        }
                    }
                    Ok(response) => {
                        let _ = response.bytes().await;
                        0
                    }
                    Err(_) => 0,
                };
                let elapsed = sent.elapsed().as_micros() as u64;
                let expected = batch.max(1) as u64;
                if sent >= measure_from {
                    transfers += applied;
                    if applied == expected {
                        latencies.push(elapsed);
                    } else {
                        errors += expected - applied;
                    }
                }
            }
            (latencies, errors, transfers)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut transfers = 0;
    for task in tasks {
        let (mut client_latencies, client_errors, client_transfers) = task.await?;
        latencies.append(&mut client_latencies);
        errors += client_errors;
        transfers += client_transfers;
    }
    latencies.sort_unstable();
    let seconds = arguments.duration_seconds.max(1);
    let rate = transfers / seconds;
    let totals = database.currency_totals().await?;
    let balanced = totals
        .iter()
        .all(|total| total.debits_posted == total.credits_posted)
        && database.inconsistent_accounts().await?.is_empty();
    let report = json!({
        "benchmark": "ledger",
        "database": label,
        "clients": arguments.clients,
        "transfers_per_request": batch.max(1),
        "measured_seconds": seconds,
        "requests": latencies.len(),
        "transfers": transfers,
        "errors": errors,
        "transfers_per_second": rate,
        "latency_ms": {
            "p50": milliseconds(percentile(&latencies, 500)),
            "p90": milliseconds(percentile(&latencies, 900)),
            "p99": milliseconds(percentile(&latencies, 990)),
            "p999": milliseconds(percentile(&latencies, 999)),
            "max": milliseconds(latencies.last().copied().unwrap_or(0)),
        },
        "books_balance": balanced,
    });
    if arguments.json {
        println!("{report}");
    } else {
        println!("ledger transfers over HTTP, {label}");
        let per_request = if batch == 0 {
            "one transfer a request".to_string()
        } else {
            format!("batches of {batch}; latencies are a batch's")
        };
        println!(
            "  {} clients, {per_request}, {} s: {transfers} transfers, {} errors",
            arguments.clients, seconds, errors
        );
        println!("  throughput: {rate} transfers/s");
        println!(
            "  latency ms: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            report["latency_ms"]["p50"].as_str().unwrap_or_default(),
            report["latency_ms"]["p90"].as_str().unwrap_or_default(),
            report["latency_ms"]["p99"].as_str().unwrap_or_default(),
            report["latency_ms"]["p999"].as_str().unwrap_or_default(),
            report["latency_ms"]["max"].as_str().unwrap_or_default(),
        );
        println!("  books balance afterwards: {balanced}");
    }
    database.close().await;
    if let Some(scratch) = scratch {
        scratch.drop_schema().await?;
    }
    Ok(if balanced && errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn risk(arguments: RiskBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(arguments.http_clients > 0, "need at least one HTTP client");
    let mut config = tally_risk::bench::BenchConfig::default();
    config.scenario.customers = arguments.in_process.customers;
    config.scenario.seed = arguments.in_process.seed;
    let http_events = arguments.http_events;
    let http_clients = arguments.http_clients;
    if !arguments.http_only {
        let in_process = arguments.in_process;
        let code = tokio::task::spawn_blocking(move || crate::risk::bench(in_process)).await??;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    let (events, list_entries) = tally_risk::bench::traffic(&config);
    let events: Arc<Vec<serde_json::Value>> = Arc::new(
        events
            .iter()
            .take(http_events)
            .map(|event| serde_json::from_str(&event.to_json()))
            .collect::<Result<_, _>>()?,
    );
    let (database, _, label) = open_database(Some("sqlite://tally-bench-risk.db")).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (writer, _) =
        LedgerWriter::start(&database, clock.clone(), WriterConfig::default()).await?;
    let risk = tally_service::risk::RiskService::open(&database, clock.clone()).await?;
    {
        let mut state = risk.state.lock().await;
        for entry in list_entries {
            state.engine.lists_mut().add(entry)?;
        }
    }
    let state = AppState::new(database.clone(), writer, clock.clone(), Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = tally_server::app_with_risk(state, Some(Arc::new(risk)));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let key = database
        .create_api_key("bench", &["admin".to_string()], clock.now())
        .await?
        .secret
        .expose()
        .clone();
    let url = format!("http://{address}/v1/risk/decisions");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(http_clients)
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..http_clients {
        let (client, url, key, events, next) = (
            client.clone(),
            url.clone(),
            key.clone(),
            events.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(event) = events.get(index) else {
                    break;
                };
                let sent = Instant::now();
                let ok = match client.post(&url).bearer_auth(&key).json(event).send().await {
                    Ok(response) => {
                        let success = response.status().is_success();
                        let _ = response.bytes().await;
                        success
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut client_latencies, client_errors) = task.await?;
        latencies.append(&mut client_latencies);
        errors += client_errors;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let rate = (latencies.len() as u128 * 1000 / elapsed.as_millis().max(1)) as u64;
    println!(
        "{}",
        json!({
            "benchmark": "risk decisions over HTTP (stored, group commit)",
            "database": label,
            "clients": http_clients,
            "decisions": latencies.len(),
            "errors": errors,
            "decisions_per_second": rate,
            "latency_ms": {
                "p50": milliseconds(percentile(&latencies, 500)),
                "p99": milliseconds(percentile(&latencies, 990)),
                "max": milliseconds(latencies.last().copied().unwrap_or(0)),
            },
        })
    );
    database.close().await;
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
