//! `tally demo`: a simulated lender to look at in one command. It builds a business on the
//! embedded SQLite through Tally's own application services, in process (the code the API
//! runs, without HTTP): applicants onboarded through the credit decision, months of
//! installment purchases, each day's end of day (statements, repayments, delinquency),
//! fraud attacks decided by the risk engine and worked as cases, a confirmed
//! stolen-account claim written off, combined-checkout payments with wallets, a
//! reconciliation run with breaks and records shared on a consortium log. Then it prints
//! its figures, checks them against what the simulation injected (a mismatch exits 1),
//! and serves the console.
//!
//! Everything random comes from `--seed` ([`world`]); the calendar is fixed, so one seed
//! prints the same figures on any day.

mod consortium;
mod figures;
mod fraud;
mod lending;
mod onboarding;
mod payments;
mod reconciliation;
mod world;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tally_core::{Clock, ManualClock, Secret};
use tally_server::state::AppState;
use tally_server::Config;
use tally_service::caller::Caller;
use tally_service::credit::decision::CreditService;
use tally_service::customers::CustomerService;
use tally_service::risk::RiskService;

pub use world::Size;

/// `tally demo`.
#[derive(Debug, clap::Args)]
pub struct Arguments {
    /// Seed of the simulation: the same seed gives the same business and figures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// small (about 5 s), default (at most 60 s on 2 cores) or large.
    #[arg(long, default_value = "default", value_parser = ["small", "default", "large"])]
    pub size: String,
    /// Applicants instead of the size's number.
    #[arg(long)]
    pub applicants: Option<usize>,
    /// Months of business instead of the size's number (1 to 24).
    #[arg(long)]
    pub months: Option<i32>,
    /// The SQLite file to build; it must not exist yet. A configuration file with the
    /// personal-data keys of its customers is written beside it (`.toml` instead of `.db`).
    #[arg(long, value_name = "FILE", default_value = "tally-demo.db")]
    pub database: PathBuf,
    /// Build on this database instead of the SQLite file (`postgres://...`, as `tally serve
    /// --database-url` takes it); it must hold no business yet. The configuration and the
    /// reconciliation files are still written beside `--database`.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Build the data, print the figures and exit, without serving the console.
    #[arg(long)]
    pub no_serve: bool,
    /// Address to serve on afterwards (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// The application services the simulation drives, over one database, on a clock it moves
/// day by day.
pub struct Services {
    pub state: AppState,
    pub credit: Arc<CreditService>,
    pub risk: Arc<RiskService>,
    pub customers: CustomerService,
    pub clock: Arc<ManualClock>,
    /// The credit officer, analyst and clerk of the demo: its one key with every scope.
    pub caller: Caller,
    pub seed: u64,
}

impl Services {
    /// Moves the clock to `time` on `day` (UTC): business dates are UTC in the demo.
    pub fn at(&self, day: Date, hour: i8, minute: i8) -> anyhow::Result<Timestamp> {
        let time = day
            .at(hour, minute, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)?;
        Ok(time.timestamp())
    }

    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn set_time(&self, day: Date, hour: i8) -> anyhow::Result<()> {
        let to = self.at(day, hour, 0)?;
        if to > self.clock.now() {
            self.clock.set(to);
        }
        Ok(())
    }
}

fn size_of(arguments: &Arguments) -> anyhow::Result<Size> {
    let Some(mut size) = Size::named(&arguments.size) else {
        bail!("--size must be small, default or large");
    };
    if let Some(applicants) = arguments.applicants {
        if !(10..=100_000).contains(&applicants) {
            bail!("--applicants must be 10 to 100000");
        }
        size.applicants = applicants;
    }
    if let Some(months) = arguments.months {
        if !(1..=24).contains(&months) {
            bail!("--months must be 1 to 24");
        }
        size.months = months;
    }
    Ok(size)
}

/// The configuration file beside the database: its URL and fresh personal-data keys.
fn configuration_text(url: &str, config_file: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut encryption = [0_u8; 32];
    let mut index = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut encryption);
    rand::rngs::OsRng.fill_bytes(&mut index);
    let engine = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "# Written by `tally demo`: the demo database and the keys sealing its customers'\n\
         # personal data. Serve it again with `tally serve --config {}`.\n\
         [database]\nurl = {}\n\n[privacy]\nactive_encryption_key = \"demo\"\n\
         encryption_keys = {{ demo = \"{}\" }}\nblind_index_key = \"{}\"\n",
        config_file.display(),
        toml::Value::String(url.to_string()),
        engine.encode(encryption),
        engine.encode(index),
    ))
}

/// `[consortium_member]` of the configuration: the demo log's verifier key and the demo
/// lender's name in it, so that `serve` shows that log on the Consortium page.
fn append_consortium_member(config_file: &Path, shared: &consortium::Shared) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(config_file)
        .with_context(|| format!("writing {}", config_file.display()))?;
    write!(
        file,
        "\n# The consortium log the demo founded, as its member the demo lender sees it.\n\
         [consortium_member]\nlog_key = {}\nmember = {}\n",
        toml::Value::String(shared.log_key.clone()),
        toml::Value::String(shared.member.clone()),
    )?;
    Ok(())
}

fn config_path(database: &Path) -> PathBuf {
    database.with_extension("toml")
}

fn progress_bar(length: u64) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let size = size_of(&arguments)?;
    // Absolute, so that the configuration written beside it serves it from anywhere.
    let database_path = std::path::absolute(&arguments.database)?;
    let config_file = config_path(&database_path);
    if arguments.database_url.is_none() && database_path.exists() {
        bail!(
            "{} exists: the demo builds a new database; `tally serve --config {}` serves the \
             one built before, or remove it (and {}) or pass another --database",
            arguments.database.display(),
            config_file.display(),
            config_file.display()
        );
    }
    if config_file.exists() {
        bail!(
            "{} exists: the demo writes its configuration there; remove it or pass another \
             --database",
            config_file.display()
        );
    }
    let url = arguments
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", database_path.display()));
    std::fs::write(&config_file, configuration_text(&url, &config_file)?)
        .with_context(|| format!("writing {}", config_file.display()))?;
    let mut config = Config::load(Some(&config_file))?;
    let started = std::time::Instant::now();
    let clock = Arc::new(ManualClock::new(
        world::FIRST_DAY
            .at(8, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)?
            .timestamp(),
    ));
    let shared_clock: Arc<dyn Clock> = clock.clone();
    // The bank of the card top-ups: Tally's simulator, for the build only (the configuration
    // written beside the database has no channel, so `serve` answers card sources 503). It
    // runs on the demo's clock, so that its settlement files are dated the demo's days.
    let (bank_url, bank) = payments::start_bank(arguments.seed, shared_clock.clone()).await?;
    config.payments.channel_url = Some(bank_url);
    config.payments.channel_secret = Some(Secret::new(payments::BANK_SECRET.to_string()));
    let (state, writer_task) = tally_server::open(&config, shared_clock.clone())
        .await
        .context("opening the demo database")?;
    // A new SQLite file is empty; a server's database must be too: the figures count
    // everything in it.
    if state.database.latest_activity_at().await?.is_some()
        || !state.database.api_keys().await?.is_empty()
    {
        let _ = std::fs::remove_file(&config_file);
        bail!(
            "the database at --database-url holds data already: the demo builds on an empty \
             database (a new one, or a new schema on its search path)"
        );
    }
    let credit = state
        .credit
        .clone()
        .context("the credit service did not start")?;
    let risk = Arc::new(
        RiskService::open(&state.database, shared_clock.clone())
            .await
            .context("starting the risk engine")?
            .with_privacy(state.privacy.clone()),
    );
    if let Some(payments) = &state.payments {
        payments.attach_risk(risk.clone());
    }
    let scopes: Vec<String> = tally_server::auth::SCOPES
        .iter()
        .map(|scope| (*scope).to_string())
        .collect();
    let key = state
        .database
        .create_api_key_in_namespaces("tally demo", &scopes, &[], None, Timestamp::now())
        .await?;
    let customers = CustomerService::new(
        state.database.clone(),
        state.privacy.clone(),
        shared_clock.clone(),
    );
    let services = Arc::new(Services {
        caller: Caller {
            key_id: key.key.id.clone(),
            name: key.key.name.clone(),
        },
        state,
        credit,
        risk,
        customers,
        clock,
        seed: arguments.seed,
    });
    let scorecard: serde_json::Value =
        serde_json::from_str(tally_service::credit::decision::DEFAULT_SCORECARD)?;
    let applicants = world::applicants(arguments.seed, &size, &scorecard)?;
    let last_day = size.last_day()?;
    let days = u64::try_from((last_day - world::FIRST_DAY).get_days() + 1)?;
    let bar = progress_bar(days + 3);
    bar.set_message("customers and their credit applications");

    let mut truth = figures::GroundTruth::default();
    let mut lending = lending::Lending::new(applicants, arguments.seed)?;
    let mut fraud = fraud::Fraud::plan(&size, arguments.seed, world::FIRST_DAY, last_day)?;
    let mut payments = payments::Payments::plan(bank, &size, arguments.seed, last_day)?;
    let mut day = world::FIRST_DAY;
    while day <= last_day {
        bar.set_message(format!("business day {day}"));
        lending.open_accounts_of(&services, day, &mut truth).await?;
        fraud
            .run_day(&services, &mut lending, day, &mut truth)
            .await?;
        lending.trade(&services, day, &mut truth).await?;
        payments
            .run_day(&services, &lending, day, &mut truth)
            .await?;
        if day == last_day {
            payments
                .hold_an_order(&services, &lending, day, &mut truth)
                .await?;
        }
        payments.settle_yesterday(&services, day).await?;
        lending.end_of_day(&services, day).await?;
        bar.inc(1);
        day = day.checked_add(1.day())?;
    }
    bar.set_message("risk analysts work the case queue");
    fraud.work_cases(&services, last_day, &mut truth).await?;
    fraud
        .open_a_claim(&services, &lending, &payments.held_shoppers(), &mut truth)
        .await?;
    bar.inc(1);
    bar.set_message("reconciliation against the channel's file");
    let recon_directory = database_path.with_extension("recon");
    let recon = reconciliation::run(&lending, &recon_directory, arguments.seed, &mut truth)?;
    let books = payments
        .reconcile_books(
            &services,
            &recon_directory.join("books"),
            last_day,
            &mut truth,
        )
        .await?;
    bar.inc(1);
    bar.set_message("sharing records on the consortium log");
    let shared = consortium::run(&services, &fraud, last_day, &mut truth).await?;
    // The console's Consortium page reads that log with the operator's public key, as
    // the lender it shows: its settings go in the configuration beside the database.
    append_consortium_member(&config_file, &shared)?;
    bar.inc(1);
    bar.finish_and_clear();

    truth.attacks = fraud.attacks.len() as u64;
    truth.buckets = lending.expected_buckets(last_day)?;
    let paid = payments.count(&services).await?;
    payments.expect_settlement(&mut truth)?;
    let settled = payments.settled(&services).await?;
    let mut counted = figures::count(&services, &lending, &fraud, &recon, &shared, paid).await?;
    counted.settled = settled;
    counted.books = books;
    let elapsed = started.elapsed();
    let matches = figures::print(&arguments, &size, last_day, &counted, &truth);
    eprintln!(
        "built in {:.1} s: {} (configuration and keys in {}, reconciliation files in {})",
        elapsed.as_secs_f64(),
        database_path.display(),
        config_file.display(),
        recon_directory.display()
    );

    // Every writer handle goes with the services; the writer then drains and stops.
    let database = services.state.database.clone();
    drop(lending);
    drop(fraud);
    drop(payments);
    drop(services);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), writer_task).await;
    database.close().await;

    if !matches {
        eprintln!("error: the figures do not match the simulation's ground truth");
        return Ok(ExitCode::from(1));
    }
    if arguments.no_serve {
        // On standard error, as the build's other notes: the figures on standard output
        // stay the same for one seed.
        eprintln!(
            "Serve it with `tally serve --config {}` and sign in to the operations console \
             at /console with this API key (it has every scope; it is shown once):",
            config_file.display()
        );
        eprintln!();
        eprintln!("    {}", Secret::expose(&key.secret));
        eprintln!();
        return Ok(ExitCode::SUCCESS);
    }
    let listen = arguments
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    println!();
    println!("Sign in to the operations console at http://{listen}/console with this API key");
    println!("(it has every scope; it is shown once):");
    println!();
    println!("    {}", Secret::expose(&key.secret));
    println!();
    crate::serve::serve(crate::serve::ServeArgs {
        config: crate::serve::ConfigArgs {
            database_url: None,
            config: Some(config_file),
        },
        listen: Some(listen),
    })
    .await
}
