//! `tally bench checkout`: combined checkouts over HTTP, each paid by the wallet, the credit
//! line and a card at once, created and confirmed (captured at once, durable) by concurrent
//! clients against `tally serve` and the bank simulator, both started in this process
//! unless `--url` names a running server: checkouts per second and latency percentiles.

use super::{milliseconds, percentile};
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_channel::simulator::{SimulatorConfig, SimulatorControl};
use tally_core::{Amount, Clock, Currency, Secret, SystemClock};
use tally_store::testing::TestDatabase;
use tally_store::{Backend, Database};

#[derive(Debug, clap::Args)]
pub struct CheckoutBenchArgs {
    /// Database of the server started here: a SQLite file (default
    /// `sqlite://tally-bench-checkout.db` in the working directory, recreated) or a
    /// PostgreSQL server, where a fresh schema is made for the run and dropped after.
    #[arg(long, value_name = "URL", conflicts_with = "url")]
    pub database_url: Option<String>,
    /// A running `tally serve` to measure instead of starting one (with `--api-key`, and
    /// `--bank-url` for the simulator it uses, to register cards).
    #[arg(long, value_name = "URL", requires_all = ["api_key", "bank_url", "bank_secret"])]
    pub url: Option<String>,
    /// API key for `--url`: admin, or credit:write, payments:write and payments:read.
    #[arg(long, env = "TALLY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The bank simulator the server at `--url` uses.
    #[arg(long, value_name = "URL")]
    pub bank_url: Option<String>,
    /// The simulator's secret (with `--bank-url`; made up otherwise).
    #[arg(long, env = "TALLY_CHANNEL_SECRET", hide_env_values = true)]
    pub bank_secret: Option<String>,
    /// Added by the simulator started here to every answer, in milliseconds.
    #[arg(long, default_value_t = 0, conflicts_with = "url")]
    pub bank_latency_ms: u64,
    /// Concurrent HTTP clients, each with its own keep-alive connection and its own
    /// customers (a shopper never pays twice at once).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Customers, each with a credit account, a saved card and a topped-up wallet.
    #[arg(long, default_value_t = 256)]
    pub customers: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 20)]
    pub duration_seconds: u64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup_seconds: u64,
    /// Pay from the wallet and the card only: no customers or credit accounts are opened.
    #[arg(long)]
    pub without_credit_line: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Fixed personal-data keys of the server started here (32 bytes of 5 and of 6, base64):
/// its database is thrown away after the run.
const ENCRYPTION_KEY: &str = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";
const BLIND_INDEX_KEY: &str = "BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY=";
/// What each customer's card holds at the bank and tops the wallet up with, in major units.
const CARD_BALANCE: &str = "10000000.00";
const TOP_UP: &str = "50000.00";
/// One checkout: 60.00, of which 10.00 from the wallet, 20.00 from the credit line in 3
/// installments and the rest from the card (above the card-testing rules' 20.00).
const ORDER: &str = "60.00";
const WALLET_PART: &str = "10.00";
const CREDIT_PART: &str = "20.00";
const TERM: u32 = 3;
/// Customers set up at once.
const SETUP_CONCURRENCY: usize = 16;

/// Where the clients send their requests, and with which key.
struct Endpoint {
    base: String,
    key: String,
}

/// The server and bank being measured.
struct Target {
    endpoint: Arc<Endpoint>,
    bank: SimulatorControl,
    label: String,
    /// The database of a server started here, to check the books at the end.
    database: Option<Database>,
    scratch: Option<TestDatabase>,
}

/// One customer ready to pay.
#[derive(Debug, Clone)]
struct Shopper {
    reference: String,
    card: String,
    credit_account: Option<i64>,
}

pub async fn run(arguments: CheckoutBenchArgs) -> anyhow::Result<ExitCode> {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    ensure!(
        arguments.clients > 0 && arguments.customers >= arguments.clients,
        "need clients ≥ 1 and customers ≥ clients"
    );
    let target = match &arguments.url {
        Some(url) => Target {
            endpoint: Arc::new(Endpoint {
                base: url.trim_end_matches('/').to_string(),
                key: arguments.api_key.clone().context("--api-key")?,
            }),
            bank: SimulatorControl::new(
                arguments.bank_url.as_deref().context("--bank-url")?,
                arguments.bank_secret.as_deref().unwrap_or_default(),
            )?,
            label: format!("tally serve at {url}"),
            database: None,
            scratch: None,
        },
        None => start_here(&arguments).await?,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(arguments.clients + SETUP_CONCURRENCY)
        .build()?;
    // Distinct customers, cards and keys on every run, also against a server kept running.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        % 100_000;
    let setup_started = Instant::now();
    let shoppers = set_up(&client, &target, &arguments, run).await?;
    eprintln!(
        "{} customers ready in {:.1} s; {} clients: {} s warm-up, then {} s measured",
        shoppers.len(),
        setup_started.elapsed().as_secs_f64(),
        arguments.clients,
        arguments.warmup_seconds,
        arguments.duration_seconds
    );
    let outcome = measure(&client, &target, &arguments, run, Arc::new(shoppers)).await?;
    let balanced = match &target.database {
        Some(database) => Some(books_balance(database).await?),
        None => None,
    };
    report(&arguments, &target, &outcome, balanced);
    if let Some(database) = &target.database {
        database.close().await;
    }
    if let Some(scratch) = target.scratch {
        scratch.drop_schema().await?;
    }
    Ok(
        if outcome.errors.is_empty() && balanced != Some(false) && !outcome.latencies.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Starts the bank simulator and `tally serve` (as `tally serve` builds itself: ledger
/// writer, credit, payments with risk control and recovery) on `127.0.0.1:0`.
async fn start_here(arguments: &CheckoutBenchArgs) -> anyhow::Result<Target> {
    let secret = arguments
        .bank_secret
        .clone()
        .unwrap_or_else(|| "bench-bank-secret".to_string());
    let mut bank = SimulatorConfig::new(secret.clone());
    bank.faults.latency_ms = arguments.bank_latency_ms;
    bank.check()?;
    let bank_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bank_url = format!("http://{}/", bank_listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(error) = tally_channel::simulator::serve(bank_listener, bank).await {
            eprintln!("bank simulator stopped: {error}");
        }
    });

    let (url, scratch, label) = match arguments.database_url.as_deref() {
        Some(url) if Database::backend_of(url) == Backend::Postgres => {
            let scratch = TestDatabase::postgres_at(url)
                .await
                .context("making a scratch schema on PostgreSQL")?;
            let label = format!(
                "PostgreSQL (schema {})",
                scratch.schema.clone().unwrap_or_default()
            );
            (scratch.url_for_another_process(), Some(scratch), label)
        }
        url => {
            let url = url
                .unwrap_or("sqlite://tally-bench-checkout.db")
                .to_string();
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .to_string();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            (
                url,
                None,
                format!("SQLite file {path} (WAL, synchronous=FULL)"),
            )
        }
    };
    let mut config = tally_server::Config::load(None)?;
    config.database.url = Secret::new(url);
    config.payments.channel_url = Some(bank_url.clone());
    config.payments.channel_secret = Some(Secret::new(secret.clone()));
    config
        .privacy
        .encryption_keys
        .insert("bench".into(), Secret::new(ENCRYPTION_KEY.into()));
    config.privacy.active_encryption_key = Some("bench".into());
    config.privacy.blind_index_key = Some(Secret::new(BLIND_INDEX_KEY.into()));
    config.validate()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (state, _writer) = tally_server::open(&config, clock.clone())
        .await
        .context("opening the database")?;
    let risk =
        Arc::new(tally_service::risk::RiskService::open(&state.database, clock.clone()).await?);
    if let Some(payments) = state.payments.clone() {
        payments.attach_risk(risk.clone());
        // Runs until the process ends, as in `tally serve`.
        let _recovery = crate::serve::spawn_payment_recovery(
            payments.clone(),
            clock.clone(),
            Duration::from_millis(config.payments.recovery_interval_ms.max(100)),
        );
        let _webhooks = crate::serve::spawn_webhook_delivery(
            payments,
            clock.clone(),
            Duration::from_millis(config.payments.webhook_interval_ms.max(100)),
        );
    }
    let database = state.database.clone();
    let key = database
        .create_api_key("bench", &["admin".to_string()], clock.now())
        .await?
        .secret
        .expose()
        .clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = tally_server::app_with_risk(state, Some(risk));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Target {
        endpoint: Arc::new(Endpoint {
            base: format!("http://{address}"),
            key,
        }),
        bank: SimulatorControl::new(&bank_url, &secret)?,
        label,
        database: Some(database),
        scratch,
    })
}

/// A POST with an idempotency key that must answer `expected`: its JSON answer.
async fn post(
    client: &reqwest::Client,
    target: &Endpoint,
    path: &str,
    idempotency: &str,
    body: &Value,
    expected: u16,
) -> anyhow::Result<Value> {
    let response = client
        .post(format!("{}{path}", target.base))
        .bearer_auth(&target.key)
        .header("Idempotency-Key", idempotency)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status != expected {
        bail!("POST {path}: {status} {answer}");
    }
    Ok(answer)
}

/// A valid PRC identity number for person `number` (born 1960–1999, MOD 11-2 check).
fn national_id(number: u64) -> String {
    let sequence = number % 1000;
    let day = 1 + (number / 1000) % 28;
    let month = 1 + (number / 28_000) % 12;
    let year = 1960 + (number / 336_000) % 40;
    let body = format!("110105{year:04}{month:02}{day:02}{sequence:03}");
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(weights)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// A 16-digit card number passing the Luhn check, distinct for each `number` below 10^9.
fn card_number(number: u64) -> String {
    let body = format!("510000{:09}", number % 1_000_000_000);
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, digit)| {
            let digit = u32::from(digit - b'0');
            // The check digit will stand to the right: from the right, the first is doubled.
            match position % 2 {
                0 if digit * 2 > 9 => digit * 2 - 9,
                0 => digit * 2,
                _ => digit,
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Customer `index` of run `run`: a customer with a credit account (unless without the
/// credit line), a card registered at the bank and saved, and the wallet topped up from it.
async fn set_up_customer(
    client: &reqwest::Client,
    target: &Endpoint,
    bank: &SimulatorControl,
    with_credit_line: bool,
    run: u64,
    index: usize,
) -> anyhow::Result<Shopper> {
    let person = run * 100_000 + index as u64;
    let (reference, credit_account) = if with_credit_line {
        let customer = post(
            client,
            target,
            "/v1/customers",
            &format!("bench-{run}-customer-{index}"),
            &json!({
                "name": format!("Bench Shopper {index}"),
                "phone": format!("13{:09}", person % 1_000_000_000),
                "national_id": national_id(person),
            }),
            201,
        )
        .await?;
        let customer_id = customer["id"].as_str().context("customer id")?.to_string();
        let attributes: Value =
            serde_json::from_str(include_str!("../../../../models/example-application.json"))?;
        let opened = post(
            client,
            target,
            "/v1/credit/accounts",
            &format!("bench-{run}-account-{index}"),
            &json!({
                "customer_id": customer_id,
                "statement_day": 5,
                "application": {
                    "monthly_income": {"value": "30000.00", "currency": "CNY"},
                    "monthly_debt_payments": {"value": "1000.00", "currency": "CNY"},
                    "attributes": attributes,
                }
            }),
            201,
        )
        .await
        .context("opening a credit account (a declined application answers 200)")?;
        let account = opened["account"]["id"].as_i64().context("account id")?;
        (customer_id, Some(account))
    } else {
        (format!("bench-{run}-{index}"), None)
    };
    let card = bank
        .register_card(
            &card_number(person),
            "12/39",
            Amount::parse(CARD_BALANCE, Currency::CNY)?,
        )
        .await?
        .token
        .as_str()
        .to_string();
    let response = client
        .post(format!("{}/v1/payments/cards", target.base))
        .bearer_auth(&target.key)
        .json(&json!({"customer": reference, "card_token": card}))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "saving a card: {}",
        response.text().await?
    );
    let top_up = post(
        client,
        target,
        &format!("/v1/payments/wallets/{reference}/top-ups"),
        &format!("bench-{run}-top-up-{index}"),
        &json!({"card_token": card, "amount": {"value": TOP_UP, "currency": "CNY"}}),
        200,
    )
    .await?;
    ensure!(top_up["status"] == "succeeded", "top-up: {top_up}");
    Ok(Shopper {
        reference,
        card,
        credit_account,
    })
}

async fn set_up(
    client: &reqwest::Client,
    target: &Target,
    arguments: &CheckoutBenchArgs,
    run: u64,
) -> anyhow::Result<Vec<Shopper>> {
    eprintln!(
        "setting up {} customers on {}",
        arguments.customers, target.label
    );
    // The merchant the checkouts name, onboarded first (already onboarded on a server
    // measured before: 409 is as good).
    let merchant = serde_json::json!({
        "id": "bench-merchant", "legal_name": "Bench Merchant Ltd", "licence_number": "BENCH-1",
        "bank_account": "6222020000000000", "category_code": "5411", "time_zone": "UTC",
        "currency": "CNY",
    });
    let response = client
        .post(format!("{}/v1/merchants", target.endpoint.base))
        .bearer_auth(&target.endpoint.key)
        .json(&merchant)
        .send()
        .await
        .context("POST /v1/merchants")?;
    let status = response.status().as_u16();
    if status != 201 && status != 409 {
        let answer = response.text().await.unwrap_or_default();
        bail!("POST /v1/merchants: {status} {answer}");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let (customers, with_credit_line) = (arguments.customers, !arguments.without_credit_line);
    let mut workers = Vec::new();
    for _ in 0..SETUP_CONCURRENCY {
        let (client, endpoint, bank, next) = (
            client.clone(),
            target.endpoint.clone(),
            target.bank.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= customers {
                    return anyhow::Ok(made);
                }
                let shopper =
                    set_up_customer(&client, &endpoint, &bank, with_credit_line, run, index)
                        .await
                        .with_context(|| format!("setting up customer {index}"))?;
                made.push((index, shopper));
            }
        }));
    }
    let mut shoppers = BTreeMap::new();
    for worker in workers {
        shoppers.extend(worker.await??);
    }
    Ok(shoppers.into_values().collect())
}

/// What the clients measured.
struct Outcome {
    /// Microseconds from the create being sent to the confirm's answer, of every checkout
    /// started in the measured window that ended captured.
    latencies: Vec<u64>,
    /// Failed checkouts by what failed.
    errors: BTreeMap<String, u64>,
    seconds: u64,
}

/// The body of checkout `sequence` of `shopper`.
fn checkout_body(shopper: &Shopper, order: &str) -> Value {
    let amount = |value: &str| json!({"value": value, "currency": "CNY"});
    let mut fundings = vec![json!({"kind": "wallet", "amount": amount(WALLET_PART)})];
    if let Some(account) = shopper.credit_account {
        fundings.push(json!({
            "kind": "credit_line",
            "credit_account_id": account,
            "term": TERM,
            "amount": amount(CREDIT_PART),
        }));
    }
    fundings.push(json!({"kind": "card", "card_token": shopper.card}));
    json!({
        "merchant_id": "bench-merchant",
        "order_reference": order,
        "customer": shopper.reference,
        "amount": amount(ORDER),
        "fundings": fundings,
    })
}

/// Why a checkout failed: the status and error code of the request that failed.
async fn checkout(
    client: &reqwest::Client,
    target: &Endpoint,
    shopper: &Shopper,
    order: &str,
) -> Result<(), String> {
    let send = |path: String, key: String, body: Value| async move {
        let response = client
            .post(format!("{}{path}", target.base))
            .bearer_auth(&target.key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .map_err(|error| format!("connection: {error}"))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        Ok::<_, String>((status, answer))
    };
    let describe = |step: &str, status: u16, answer: &Value| {
        let code = answer["error"]["code"].as_str().unwrap_or("no error code");
        format!("{step} {status} {code}")
    };
    let (status, created) = send(
        "/v1/payments".into(),
        format!("{order}-create"),
        checkout_body(shopper, order),
    )
    .await?;
    if status != 201 {
        return Err(describe("create", status, &created));
    }
    let id = created["id"].as_str().unwrap_or_default();
    let (status, confirmed) = send(
        format!("/v1/payments/{id}/confirm"),
        format!("{order}-confirm"),
        json!({}),
    )
    .await?;
    if status != 200 {
        return Err(describe("confirm", status, &confirmed));
    }
    match confirmed["status"].as_str() {
        Some("captured") => Ok(()),
        other => Err(format!(
            "confirm ended {}",
            other.unwrap_or("without status")
        )),
    }
}

async fn measure(
    client: &reqwest::Client,
    target: &Target,
    arguments: &CheckoutBenchArgs,
    run: u64,
    shoppers: Arc<Vec<Shopper>>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(arguments.warmup_seconds);
    let stop_at = measure_from + Duration::from_secs(arguments.duration_seconds);
    let clients = arguments.clients;
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let (client, endpoint, shoppers) =
            (client.clone(), target.endpoint.clone(), shoppers.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            // This client's customers: client_index, + clients, + 2 × clients, …
            let mine: Vec<&Shopper> = shoppers
                .iter()
                .skip(client_index)
                .step_by(clients)
                .collect();
            let mut sequence = 0_usize;
            while Instant::now() < stop_at {
                let shopper = mine[sequence % mine.len()];
                sequence += 1;
                let order = format!("bench-{run}-{client_index}-{sequence}");
                let sent = Instant::now();
                let result = checkout(&client, &endpoint, shopper, &order).await;
                let elapsed = sent.elapsed().as_micros() as u64;
                if sent >= measure_from {
                    match result {
                        Ok(()) => latencies.push(elapsed),
                        Err(error) => *errors.entry(error).or_default() += 1,
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = BTreeMap::new();
    for task in tasks {
        let (mut client_latencies, client_errors) = task.await?;
        latencies.append(&mut client_latencies);
        for (error, count) in client_errors {
            *errors.entry(error).or_default() += count;
        }
    }
    latencies.sort_unstable();
    Ok(Outcome {
        latencies,
        errors,
        seconds: arguments.duration_seconds.max(1),
    })
}

/// Whether every currency's posted and pending debits equal its credits and every
/// account's balance agrees with its legs.
async fn books_balance(database: &Database) -> anyhow::Result<bool> {
    let totals = database.currency_totals().await?;
    Ok(totals.iter().all(|total| {
        total.debits_posted == total.credits_posted && total.debits_pending == total.credits_pending
    }) && database.inconsistent_accounts().await?.is_empty())
}

fn report(
    arguments: &CheckoutBenchArgs,
    target: &Target,
    outcome: &Outcome,
    balanced: Option<bool>,
) {
    let latencies = &outcome.latencies;
    let rate = latencies.len() as u64 / outcome.seconds;
    let sources = if arguments.without_credit_line {
        "wallet + card"
    } else {
        "wallet + credit line + card"
    };
    let failed: u64 = outcome.errors.values().sum();
    let report = json!({
        "benchmark": "checkout",
        "database": target.label,
        "sources": sources,
        // Against `--url`, whatever that bank was started with.
        "bank_latency_ms": arguments.url.is_none().then_some(arguments.bank_latency_ms),
        "clients": arguments.clients,
        "customers": arguments.customers,
        "measured_seconds": outcome.seconds,
        "checkouts": latencies.len(),
        "errors": failed,
        "error_kinds": outcome.errors,
        "checkouts_per_second": rate,
        "latency_ms": {
            "p50": milliseconds(percentile(latencies, 500)),
            "p90": milliseconds(percentile(latencies, 900)),
            "p99": milliseconds(percentile(latencies, 990)),
            "p999": milliseconds(percentile(latencies, 999)),
            "max": milliseconds(latencies.last().copied().unwrap_or(0)),
        },
        "books_balance": balanced,
    });
    if arguments.json {
        println!("{report}");
        return;
    }
    println!(
        "checkouts ({sources}; create + confirm, captured at once) over HTTP, {}",
        target.label
    );
    let bank_latency = match arguments.url {
        None => format!("bank latency {} ms", arguments.bank_latency_ms),
        Some(_) => "bank latency as that bank was started".to_string(),
    };
    println!(
        "  {bank_latency}, {} clients, {} customers, {} s: {} checkouts, {failed} failed",
        arguments.clients,
        arguments.customers,
        outcome.seconds,
        latencies.len()
    );
    for (error, count) in &outcome.errors {
        println!("    {count} × {error}");
    }
    println!("  throughput: {rate} checkouts/s");
    let field = |name: &str| {
        report["latency_ms"][name]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    println!(
        "  latency ms: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        field("p50"),
        field("p90"),
        field("p99"),
        field("p999"),
        field("max")
    );
    match balanced {
        Some(balanced) => println!("  books balance afterwards: {balanced}"),
        None => println!("  books not checked (a server elsewhere)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_identities_pass_their_checks() {
        for number in [0, 1, 999, 1_000, 27_999, 336_000, 9_999_999_999] {
            let id = national_id(number);
            assert!(
                tally_privacy::identity::normalise_national_id(&id).is_ok(),
                "{id}"
            );
            let card = card_number(number);
            assert_eq!(card.len(), 16);
            let sum: u32 = card
                .bytes()
                .rev()
                .enumerate()
                .map(|(position, digit)| {
                    let digit = u32::from(digit - b'0');
                    if position % 2 == 1 {
                        (digit * 2) / 10 + (digit * 2) % 10
                    } else {
                        digit
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{card}");
        }
    }
}
