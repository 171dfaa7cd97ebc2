//! `tally payouts ...`: merchants' payouts from the command line. Each subcommand but `run`
//! is one call to a running `tally serve` (`--url`, key in `--api-key` or `TALLY_API_KEY`);
//! `run --date` makes the scheduled payouts of a settled date on the database directly, as
//! `tally settle` runs settlement, each payout decided by the risk engine first as the
//! API's run decides it.
//!
//! - `create --merchant ID --amount 120.50 --currency CNY [--idempotency-key K]`: `POST
//!   /v1/payouts`;
//! - `batch FILE [--idempotency-key K]`: `POST /v1/payouts/batches` (FILE is the body's JSON,
//!   `{"payouts": [{"merchant_id": …, "amount": {"value": …, "currency": …}}, …]}`);
//! - `show ID`, `list [--merchant ID] [--state S]`, `batch-show ID`: the reads;
//! - `file BATCH [--encoding gbk] [--out FILE]`: takes the batch's bank file (its payouts
//!   become submitted), written to FILE or standard output as the bank receives it;
//! - `return BATCH FILE [--encoding gbk]`: reads the bank's return file back;
//! - `run --date D`: the scheduled payouts after the settlement run of D;
//! - `sweep --date D [--currency CNY]`: the repayments of D swept from the credit repayment
//!   clearing account to the bank account (on the database, once per date).

use anyhow::{anyhow, bail, Context};
use jiff::civil::Date;
use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use tally_core::{Clock, SystemClock};
use tally_service::payments::payouts::PayoutRunView;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_service::risk::RiskService;
use tally_service::risk_gate::{GateError, RiskGate};
use tally_store::{Database, LedgerWriter, WriterConfig};

pub type Arguments = crate::client::Arguments<Command>;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pay a merchant out of its available balance.
    Create {
        #[arg(long)]
        merchant: String,
        /// Decimal string in major units, e.g. 120.50.
        #[arg(long)]
        amount: String,
        #[arg(long)]
        currency: String,
        /// Retry with the key printed by the first attempt.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Make a batch of payouts from a JSON file (the request body).
    Batch {
        file: std::path::PathBuf,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a payout with its history.
    Show { id: String },
    /// List payouts by merchant and state.
    List {
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long, value_parser = ["created", "submitted", "paid", "failed", "returned"])]
        state: Option<String>,
    },
    /// Show a batch and its payouts.
    BatchShow { id: String },
    /// Take a batch's bank file (its payouts become submitted).
    File {
        batch: String,
        #[arg(long, default_value = "utf-8", value_parser = ["utf-8", "gbk"])]
        encoding: String,
        /// Where to write it (standard output when absent).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Read the bank's return file for a batch.
    Return {
        batch: String,
        file: std::path::PathBuf,
        #[arg(long, default_value = "utf-8", value_parser = ["utf-8", "gbk"])]
        encoding: String,
    },
    /// The scheduled payouts after the settlement run of a date, on the database.
    Run {
        /// The settled business date (YYYY-MM-DD).
        #[arg(long)]
        date: Date,
        /// Database (`--database-url`) and configuration file, as for `tally serve`.
        #[command(flatten)]
        config: crate::serve::ConfigArgs,
    },
    /// Sweep a date's repayments from clearing to the bank account, on the database.
    Sweep {
        /// The business date, over in the service's zone (YYYY-MM-DD).
        #[arg(long)]
        date: Date,
        #[arg(long, default_value = "CNY")]
        currency: String,
        #[command(flatten)]
        config: crate::serve::ConfigArgs,
    },
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let command = match arguments.command {
        Command::Run { date, config } => return run_scheduled(date, config).await,
        Command::Sweep {
            date,
            currency,
            config,
        } => return sweep(date, &currency, config).await,
        command => command,
    };
    let api_key = arguments.server.api_key()?;
    let mut url = arguments.server.endpoint("")?;
    let mut push_path = |segments: &[&str]| arguments.server.push_path(&mut url, segments);
    let http = reqwest::Client::new();
    let request = match &command {
        Command::Create {
            merchant,
            amount,
            currency,
            idempotency_key,
        } => {
            push_path(&["payouts"])?;
            let key = crate::client::idempotency_key(idempotency_key.as_deref());
            http.post(url.clone())
                .header("Idempotency-Key", key)
                .json(&json!({
                    "merchant_id": merchant,
                    "amount": {"value": amount, "currency": currency},
                }))
        }
        Command::Batch {
            file,
            idempotency_key,
        } => {
            push_path(&["payouts", "batches"])?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let key = crate::client::idempotency_key(idempotency_key.as_deref());
            http.post(url.clone())
                .header("Idempotency-Key", key)
                .json(&body)
        }
        Command::Show { id } => {
            push_path(&["payouts", id])?;
            http.get(url.clone())
        }
        Command::List { merchant, state } => {
            push_path(&["payouts"])?;
            if let Some(merchant) = merchant {
                url.query_pairs_mut().append_pair("merchant_id", merchant);
            }
            if let Some(state) = state {
                url.query_pairs_mut().append_pair("state", state);
            }
            http.get(url.clone())
        }
        Command::BatchShow { id } => {
            push_path(&["payouts", "batches", id])?;
            http.get(url.clone())
        }
        Command::File {
            batch,
            encoding,
            out,
        } => {
            push_path(&["payouts", "batches", batch, "file"])?;
            url.query_pairs_mut().append_pair("encoding", encoding);
            let response = http
                .post(url.clone())
                .bearer_auth(&api_key)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            if !response.status().is_success() {
                return refused(response).await;
            }
            let bytes = response.bytes().await?;
            match out {
                Some(path) => std::fs::write(path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    let _ = std::io::stdout().lock().write_all(&bytes);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Return {
            batch,
            file,
            encoding,
        } => {
            push_path(&["payouts", "batches", batch, "return-file"])?;
            url.query_pairs_mut().append_pair("encoding", encoding);
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            http.post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "text/csv")
                .body(bytes)
        }
        // Taken on the database above.
        Command::Run { .. } | Command::Sweep { .. } => {
            bail!("payouts run and sweep work on the database, not over the API")
        }
    };
    crate::client::send_and_print(request.bearer_auth(&api_key), "request", url.as_str()).await
}

/// Prints a refusal as `{status}: {code}: {message}` on standard error (exit 1).
async fn refused(response: reqwest::Response) -> anyhow::Result<ExitCode> {
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    eprintln!(
        "{status}: {}: {}",
        answer["error"]["code"].as_str().unwrap_or("error"),
        answer["error"]["message"].as_str().unwrap_or("")
    );
    Ok(ExitCode::from(1))
}

/// Makes (or answers again) the scheduled payouts of `date` on the database, printing the
/// batches as JSON.
async fn run_scheduled(date: Date, config: crate::serve::ConfigArgs) -> anyhow::Result<ExitCode> {
    let (database, config) = crate::jobs::open(&config).await?;
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
        writer,
        None,
        None,
        PaymentsConfig {
            time_zone: setup.time_zone,
            ..PaymentsConfig::default()
        },
    ));
    match gated_scheduled_payouts(&database, payments, clock.clone(), date).await? {
        Ok(run) => {
            println!("{}", serde_json::to_string_pretty(&run)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{}: {error}", error.code());
            Ok(ExitCode::from(1))
        }
    }
}

/// The scheduled payouts of `date`, each decided by the risk engine first, as the API's
/// run (`POST /v1/payouts/runs`) decides them: the engine is rebuilt from the database's
/// rule sets and events, a rejected payout is left out (its balance stays available) and a
/// held one parked for its case or code.
pub(crate) async fn gated_scheduled_payouts(
    database: &Database,
    payments: Arc<PaymentService>,
    clock: Arc<dyn Clock>,
    date: Date,
) -> anyhow::Result<Result<PayoutRunView, GateError>> {
    let risk = RiskService::open(database, clock.clone())
        .await
        .context("rebuilding the risk engine from storage")?;
    let gate = RiskGate::new(Arc::new(risk), database.clone(), clock.clone(), None, None)
        .with_payments(Some(payments));
    Ok(gate.run_scheduled_payouts(date, clock.now()).await)
}

/// Sweeps the repayments of `date` in `currency`, printing the sweep as JSON.
async fn sweep(
    date: Date,
    currency: &str,
    config: crate::serve::ConfigArgs,
) -> anyhow::Result<ExitCode> {
    let currency = tally_core::Currency::from_code(currency)
        .map_err(|error| anyhow!("--currency {currency:?}: {error}"))?;
    let (database, config) = crate::jobs::open(&config).await?;
    let setup = config
        .credit
        .load()
        .map_err(|error| anyhow!("credit configuration: {error}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (writer, _task) = LedgerWriter::start(&database, clock.clone(), WriterConfig::default())
        .await
        .context("starting the ledger writer")?;
    match tally_service::credit::sweep::sweep_repayments(
        &database,
        &writer,
        currency,
        date,
        &setup.time_zone,
        clock.now(),
    )
    .await
    {
        Ok(sweep) => {
            println!("{}", serde_json::to_string_pretty(&sweep)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{}: {error}", error.code());
            Ok(ExitCode::from(1))
        }
    }
}
