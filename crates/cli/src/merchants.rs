//! `tally merchants ...`: the merchant and settlement API from the command line, each
//! subcommand one call to a running `tally serve` (`--url`, key in `--api-key` or
//! `TALLY_API_KEY`), as `tally customers` does; and `tally settle --date`, which runs the
//! day's settlement on the database directly, as `tally eod` runs end of day.
//!
//! - `onboard --id … --legal-name … --licence-number … --bank-account … --category-code …
//!   --time-zone … --currency … [--fee-schedule FILE] [--settlement FILE]`: `POST
//!   /v1/merchants` (the files are the JSON of the body's `fee_schedule` and `settlement`);
//! - `show ID`: `GET /v1/merchants/{id}` (sealed fields masked);
//! - `status ID --to suspended --reason …`: `POST /v1/merchants/{id}/status`;
//! - `fees ID --fee-schedule FILE [--settlement FILE]`: `PUT /v1/merchants/{id}/fee-schedule`;
//! - `statements --date D [--merchant ID] [--csv]`: the run's statements, JSON or CSV.

use anyhow::{anyhow, Context};
use jiff::civil::Date;
use reqwest::Url;
use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use tally_core::{Clock, SystemClock};
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_store::{LedgerWriter, WriterConfig};

pub type Arguments = crate::client::Arguments<Command>;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Onboard a merchant (active); its legal name, licence number and bank account are
    /// sealed by the server.
    Onboard {
        #[arg(long)]
        id: String,
        #[arg(long)]
        legal_name: String,
        #[arg(long)]
        licence_number: String,
        #[arg(long)]
        bank_account: String,
        /// ISO 18245 merchant category code (four digits).
        #[arg(long)]
        category_code: String,
        /// IANA zone name, e.g. Asia/Shanghai.
        #[arg(long)]
        time_zone: String,
        /// ISO 4217 code of the currency it is paid in.
        #[arg(long)]
        currency: String,
        /// JSON file: `{"rounding": "half_up", "fees": {"card": {"rate": "0.006", ...}}}`.
        #[arg(long, value_name = "FILE")]
        fee_schedule: Option<std::path::PathBuf>,
        /// JSON file: `{"delay_days": 1, "holidays": [...], "reserve_basis_points": 500,
        /// "reserve_hold_days": 7}`.
        #[arg(long, value_name = "FILE")]
        settlement: Option<std::path::PathBuf>,
    },
    /// Show a merchant, sealed fields masked, with its status history.
    Show { id: String },
    /// Move a merchant to active, suspended or closed.
    Status {
        id: String,
        #[arg(long, value_parser = ["active", "suspended", "closed"])]
        to: String,
        #[arg(long)]
        reason: String,
    },
    /// Replace a merchant's fee schedule (and settlement terms when given).
    Fees {
        id: String,
        #[arg(long, value_name = "FILE")]
        fee_schedule: std::path::PathBuf,
        #[arg(long, value_name = "FILE")]
        settlement: Option<std::path::PathBuf>,
    },
    /// A settlement run's statements, every merchant's or one's, as JSON or CSV.
    Statements {
        #[arg(long)]
        date: Date,
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long)]
        csv: bool,
    },
}

fn json_file(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn optional_json_file(path: Option<&std::path::PathBuf>) -> anyhow::Result<Value> {
    path.map(|path| json_file(path))
        .transpose()
        .map(Option::unwrap_or_default)
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let api_key = arguments.server.api_key()?;
    let mut url = arguments.server.endpoint("")?;
    let mut push_path = |segments: &[&str]| arguments.server.push_path(&mut url, segments);
    let http = reqwest::Client::new();
    let (method, body) = match &arguments.command {
        Command::Onboard {
            id,
            legal_name,
            licence_number,
            bank_account,
            category_code,
            time_zone,
            currency,
            fee_schedule,
            settlement,
        } => {
            push_path(&["merchants"])?;
            let body = json!({
                "id": id,
                "legal_name": legal_name,
                "licence_number": licence_number,
                "bank_account": bank_account,
                "category_code": category_code,
                "time_zone": time_zone,
                "currency": currency,
                "fee_schedule": optional_json_file(fee_schedule.as_ref())?,
                "settlement": optional_json_file(settlement.as_ref())?,
            });
            ("POST", Some(body))
        }
        Command::Show { id } => {
            push_path(&["merchants", id])?;
            ("GET", None)
        }
        Command::Status { id, to, reason } => {
            push_path(&["merchants", id, "status"])?;
            ("POST", Some(json!({"status": to, "reason": reason})))
        }
        Command::Fees {
            id,
            fee_schedule,
            settlement,
        } => {
            push_path(&["merchants", id, "fee-schedule"])?;
            let body = json!({
                "fee_schedule": json_file(fee_schedule)?,
                "settlement": optional_json_file(settlement.as_ref())?,
            });
            ("PUT", Some(body))
        }
        Command::Statements {
            date,
            merchant,
            csv,
        } => {
            let last = if *csv { "statements.csv" } else { "statements" };
            push_path(&["settlement", "runs", &date.to_string(), last])?;
            if let Some(merchant) = merchant {
                url.query_pairs_mut().append_pair("merchant_id", merchant);
            }
            if *csv {
                return print_text(http.get(url.clone()).bearer_auth(&api_key), &url).await;
            }
            ("GET", None)
        }
    };
    let request = match (method, body) {
        ("POST", Some(body)) => http.post(url.clone()).json(&body),
        ("PUT", Some(body)) => http.put(url.clone()).json(&body),
        _ => http.get(url.clone()),
    };
    crate::client::send_and_print(request.bearer_auth(&api_key), method, url.as_str()).await
}

/// Prints a text answer (CSV) as it is; a refusal as `send_and_print` does.
async fn print_text(request: reqwest::RequestBuilder, url: &Url) -> anyhow::Result<ExitCode> {
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        eprintln!(
            "{status}: {}: {}",
            answer["error"]["code"].as_str().unwrap_or("error"),
            answer["error"]["message"].as_str().unwrap_or("")
        );
        return Ok(ExitCode::from(1));
    }
    let text = response.text().await?;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// `tally settle --date D`: the daily settlement run.
#[derive(Debug, clap::Args)]
pub struct SettleArguments {
    /// The business date to settle (YYYY-MM-DD); it must be over in every merchant's zone.
    #[arg(long)]
    pub date: Date,
    /// Database (`--database-url`) and configuration file, as for `tally serve`.
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
}

/// Runs (or resumes) the settlement of a date on the database, printing the run as JSON.
pub async fn settle(arguments: SettleArguments) -> anyhow::Result<ExitCode> {
    let (database, config) = crate::jobs::open(&arguments.config).await?;
    let setup = config
        .credit
        .load()
        .map_err(|error| anyhow!("credit configuration: {error}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (writer, _task) = LedgerWriter::start(&database, clock.clone(), WriterConfig::default())
        .await
        .context("starting the ledger writer")?;
    let payments = PaymentService::new(
        database,
        writer,
        None,
        None,
        PaymentsConfig {
            time_zone: setup.time_zone,
            ..PaymentsConfig::default()
        },
    );
    match payments
        .run_settlement(arguments.date, clock.now(), SettlementOptions::default())
        .await
    {
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
