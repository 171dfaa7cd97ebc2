//! `tally eod --date YYYY-MM-DD`: end of day of every credit account for a business date,
//! resumable and idempotent; and `tally eod bench`, which generates a portfolio of credit
//! accounts directly in the store and times end of day on it.

use anyhow::{bail, Context};
use jiff::civil::Date;
use jiff::ToSpan;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tally_core::{Amount, Clock, Currency, SystemClock};
use tally_credit::{Account, AccountPolicy, Cycle, DayOutcome, LedgerRole, Posting, Product};
use tally_ledger::{Command, Side};
use tally_service::credit::end_of_day::{run_end_of_day, EndOfDayOptions, EndOfDayReport};
use tally_service::credit::ledger_accounts::credit_ledger_accounts;
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

/// `tally eod`: run a business date, or `tally eod bench`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Arguments {
    #[command(subcommand)]
    pub command: Option<Subcommand>,
    #[command(flatten)]
    pub run: RunArguments,
}

#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Generate N credit accounts (about three active plans each) in a fresh database and
    /// time end of day on them.
    Bench(BenchArguments),
}

#[derive(Debug, clap::Args)]
pub struct RunArguments {
    /// The business date to run (YYYY-MM-DD). The previous date must have finished.
    #[arg(long)]
    pub date: Option<Date>,
    /// Account rules (TOML, `tally_credit::AccountPolicy`); default: the configuration's
    /// `credit.account_policy`, else the rules Tally ships.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// Database (`--database-url`) and configuration file, as for `tally serve`.
    #[command(flatten)]
    pub config: crate::serve::ConfigArgs,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Tuning {
    /// Accounts read, computed and committed together (memory is about 10 KB an account).
    #[arg(long, default_value_t = 20_000)]
    pub chunk_size: usize,
    /// Threads computing a chunk (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Debug, clap::Args)]
pub struct BenchArguments {
    /// Credit accounts to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: u64,
    /// Database: a SQLite file (default /var/tmp/tally-bench-eod.db, recreated and removed
    /// afterwards) or a PostgreSQL server, where a fresh schema is made and dropped.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Consecutive business dates to run (the first is 2026-03-16).
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Keep the SQLite file (or PostgreSQL schema) afterwards.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    match arguments.command {
        Some(Subcommand::Bench(bench_arguments)) => bench(bench_arguments).await,
        None => end_of_day(arguments.run).await,
    }
}

fn options(tuning: &Tuning) -> EndOfDayOptions {
    EndOfDayOptions {
        chunk_size: tuning.chunk_size.max(1),
        threads: tuning.threads,
        crash_after_accounts: None,
    }
}

async fn start_writer(database: &Database) -> anyhow::Result<LedgerWriter> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (writer, _task) = LedgerWriter::start(database, clock, WriterConfig::default())
        .await
        .context("starting the ledger writer")?;
    Ok(writer)
}

/// `tally eod --date D`.
async fn end_of_day(arguments: RunArguments) -> anyhow::Result<ExitCode> {
    let Some(date) = arguments.date else {
        bail!("--date YYYY-MM-DD is required");
    };
    let config = arguments.config.load()?;
    let policy = match &arguments.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let policy: AccountPolicy = toml::from_str(&text)
                .with_context(|| format!("{} is not an account policy", path.display()))?;
            policy
                .validate()
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
            policy
        }
        None => {
            config
                .credit
                .load()
                .map_err(|error| anyhow::anyhow!("credit configuration: {error}"))?
                .account_policy
        }
    };
    let database = crate::jobs::connect(config.database.url.expose()).await?;
    let writer = start_writer(&database).await?;
    let started = Instant::now();
    let report = run_end_of_day(
        &database,
        &writer,
        date,
        &policy,
        &options(&arguments.tuning),
        &SystemClock,
    )
    .await
    .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    print_report(date, &report, started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn print_report(date: Date, report: &EndOfDayReport, seconds: f64) {
    if report.already_finished {
        println!("end of day {date}: already finished, nothing to do");
        return;
    }
    println!(
        "end of day {date}{}: {} accounts in {seconds:.2} s ({:.0}/s), {} rewritten, {} statements, {} postings",
        if report.resumed { " (resumed)" } else { "" },
        report.accounts,
        report.accounts as f64 / seconds.max(1e-9),
        report.accounts_written,
        report.statements,
        report.postings,
    );
    println!(
        "  read {:.2} s, compute {:.2} s, post {:.2} s, write {:.2} s",
        report.timings.read.as_secs_f64(),
        report.timings.compute.as_secs_f64(),
        report.timings.post.as_secs_f64(),
        report.timings.write.as_secs_f64(),
    );
}

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn products() -> anyhow::Result<Vec<Product>> {
    let flat: Product = serde_json::from_str(
        r#"{"code": "flat", "name": "flat fee", "currency": "CNY", "fee_model": {"kind": "flat_fee"},
            "terms": [{"periods": 1, "rate": "0"}, {"periods": 3, "rate": "0.007"},
                      {"periods": 6, "rate": "0.006"}, {"periods": 12, "rate": "0.008"}]}"#,
    )?;
    let annuity: Product = serde_json::from_str(
        r#"{"code": "annuity", "name": "annuity", "currency": "CNY", "fee_model": {"kind": "annuity"},
            "terms": [{"periods": 6, "rate": "0.12"}, {"periods": 12, "rate": "0.15"}]}"#,
    )?;
    let free: Product = serde_json::from_str(
        r#"{"code": "free", "name": "interest free", "currency": "CNY",
            "fee_model": {"kind": "interest_free"}, "terms": [{"periods": 3, "rate": "0.03"}]}"#,
    )?;
    Ok(vec![flat, annuity, free])
}

/// How a generated customer behaves before the benchmark's date.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Pays every statement in full on its statement date.
    PaysInFull,
    /// Pays the minimum: the rest revolves with daily interest.
    PaysMinimum,
    /// Never pays: overdue, penalised, frozen at M1.
    NeverPays,
}

/// Share of each behaviour in 100 accounts.
const BEHAVIOURS: [(Behaviour, u64); 3] = [
    (Behaviour::PaysInFull, 80),
    (Behaviour::PaysMinimum, 12),
    (Behaviour::NeverPays, 8),
];

/// A template account simulated up to the day before the first benchmark date, with the
/// postings its history produced (summed into the opening books).
struct Template {
    account: Account,
    state: String,
    history: Vec<Posting>,
}

fn simulate(
    statement_day: i8,
    behaviour: Behaviour,
    variant: u64,
    until: Date,
    products: &[Product],
) -> anyhow::Result<Template> {
    let policy = AccountPolicy::default();
    let mut account = Account::open(cny(5_000_000), Cycle::new(statement_day, 9)?)?;
    let mut history = Vec::new();
    // Three purchases in the four months before `until`, on different products and terms.
    let first = until.checked_sub(100.days())?;
    // A customer who never pays is frozen at M1, so buys everything in the first days.
    let offsets: [i64; 3] = match behaviour {
        Behaviour::NeverPays => [0, 1, 2],
        _ => [0, 23, 61],
    };
    let variant = i64::try_from(variant)?;
    let purchases: [(i64, i64, usize, u32); 3] = [
        (offsets[0], 120_000 + 1_700 * variant, 0, 6),
        (offsets[1], 80_000 + 900 * variant, 1, 12),
        (offsets[2], 45_000 + 300 * variant, 2, 3),
    ];
    let mut outcome = DayOutcome::default();
    let mut day = first;
    while day <= until {
        for (offset, value, product, periods) in purchases {
            if day == first.checked_add(offset.days())? {
                account.authorize(day, cny(value))?;
                let (_, posting) = account.capture(day, cny(value), &products[product], periods)?;
                history.push(posting);
            }
        }
        account.end_of_day(day, &policy, &mut outcome)?;
        history.extend(outcome.postings.iter().filter(|p| !p.is_empty()).cloned());
        if let Some(statement) = &outcome.statement {
            let payment = match behaviour {
                Behaviour::PaysInFull => statement.closing_balance,
                Behaviour::PaysMinimum => statement.minimum_payment,
                Behaviour::NeverPays => cny(0),
            };
            if payment.is_positive() {
                history.push(account.repay(day, payment, &policy)?.posting);
            }
        }
        day = day.checked_add(1.day())?;
    }
    let state = serde_json::to_string(&account)?;
    Ok(Template {
        account,
        state,
        history,
    })
}

/// `tally eod bench --accounts N`.
pub async fn bench(arguments: BenchArguments) -> anyhow::Result<ExitCode> {
    let first_date: Date = "2026-03-16".parse()?;
    let until = first_date.checked_sub(1.day())?;
    let sqlite_path = "/var/tmp/tally-bench-eod.db";
    let url = arguments
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{sqlite_path}"));
    let (database, test_database) = if Database::backend_of(&url) == tally_store::Backend::Postgres
    {
        let test = TestDatabase::postgres_at(&url)
            .await
            .context("creating a schema")?;
        (test.database.clone(), Some(test))
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(&url)
            .to_string();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        (crate::jobs::connect(&url).await?, None)
    };
    let writer = start_writer(&database).await?;

    // Templates: every statement day × behaviour × a few amounts.
    let started = Instant::now();
    let products = products()?;
    let mut templates = Vec::new();
    for (behaviour, share) in BEHAVIOURS {
        for statement_day in 1..=28_i8 {
            for variant in 0..3 {
                templates.push((
                    share,
                    simulate(statement_day, behaviour, variant, until, &products)?,
                ));
            }
        }
    }
    // Account i gets a template by weighted round robin, so every chunk has the mix.
    let mut wheel = Vec::new();
    for (index, (share, _)) in templates.iter().enumerate() {
        for _ in 0..*share {
            wheel.push(index);
        }
    }
    let mut counts = vec![0_i64; templates.len()];
    let mut rows = Vec::with_capacity(5_000);
    let mut generated = 0_u64;
    for id in 1..=arguments.accounts {
        let template = wheel[usize::try_from(id.wrapping_mul(7_919))? % wheel.len()];
        counts[template] += 1;
        let account = &templates[template].1;
        rows.push((
            i64::try_from(id)?,
            Currency::CNY,
            account.account.last_end_of_day,
            account.state.clone(),
        ));
        if rows.len() == 5_000 || id == arguments.accounts {
            database.put_credit_accounts_encoded(&rows).await?;
            generated += rows.len() as u64;
            rows.clear();
        }
    }
    // The opening books: every template's history times its count, netted per role.
    let mut net: BTreeMap<LedgerRole, i64> = BTreeMap::new();
    for ((_, template), count) in templates.iter().zip(&counts) {
        for posting in &template.history {
            for leg in &posting.legs {
                let signed = match leg.side {
                    Side::Debit => leg.amount.minor(),
                    Side::Credit => -leg.amount.minor(),
                };
                *net.entry(leg.role).or_default() += signed * count;
            }
        }
    }
    let mut opening = Posting::new("opening balances of the generated portfolio");
    for (role, minor) in &net {
        opening = opening.debit(*role, cny(*minor));
    }
    let ledger = credit_ledger_accounts(&database, &writer, Currency::CNY)
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    if !opening.is_empty() {
        writer
            .submit_as(
                tally_service::credit::ledger_accounts::CREDIT_SERVICE,
                "bench-eod-opening".into(),
                Command::PostEntry(ledger.entry(&opening)),
            )
            .await?;
    }
    let generation_seconds = started.elapsed().as_secs_f64();
    let average_state = templates
        .iter()
        .map(|(_, template)| template.state.len())
        .sum::<usize>()
        / templates.len().max(1);
    let active_plans: usize = templates
        .iter()
        .zip(&counts)
        .map(|((_, template), count)| {
            template
                .account
                .plans
                .iter()
                .filter(|plan| plan.status == tally_credit::account::PlanStatus::Active)
                .count()
                * usize::try_from(*count).unwrap_or(0)
        })
        .sum();
    println!(
        "generated {generated} accounts ({active_plans} active plans, {} templates, JSON {average_state} bytes an account on average) in {generation_seconds:.1} s",
        templates.len()
    );

    let policy = AccountPolicy::default();
    let mut date = first_date;
    for _ in 0..arguments.days.max(1) {
        let started = Instant::now();
        let report = run_end_of_day(
            &database,
            &writer,
            date,
            &policy,
            &options(&arguments.tuning),
            &SystemClock,
        )
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
        print_report(date, &report, started.elapsed().as_secs_f64());
        date = date.checked_add(1.day())?;
    }
    // The same date again: nothing to do.
    let started = Instant::now();
    let again = run_end_of_day(
        &database,
        &writer,
        date.checked_sub(1.day())?,
        &policy,
        &options(&arguments.tuning),
        &SystemClock,
    )
    .await
    .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    println!(
        "same date again: already finished = {} in {:.3} s",
        again.already_finished,
        started.elapsed().as_secs_f64()
    );
    // A run whose books do not balance is a failed run, whatever its speed.
    let mut balanced = true;
    for totals in database.currency_totals().await? {
        let currency_balanced = totals.debits_posted == totals.credits_posted
            && totals.debits_pending == totals.credits_pending;
        balanced &= currency_balanced;
        println!(
            "books {}: debits {} = credits {}: {currency_balanced}",
            totals.currency, totals.debits_posted, totals.credits_posted,
        );
    }
    let inconsistent = database.inconsistent_accounts().await?;
    if !inconsistent.is_empty() {
        balanced = false;
        eprintln!(
            "error: {} accounts' stored balances differ from the sum of their legs",
            inconsistent.len()
        );
    }
    drop(writer);
    if arguments.keep {
        // What `tally eod --database-url` needs to run the next dates on the kept books.
        let kept = match &test_database {
            Some(test) => test.url_for_another_process(),
            None => url.clone(),
        };
        println!("kept database: {kept}");
    }
    if let Some(test) = test_database {
        if !arguments.keep {
            test.drop_schema().await?;
        }
    } else if !arguments.keep {
        database.close().await;
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(&url)
            .to_string();
        if let Ok(metadata) = std::fs::metadata(&path) {
            println!("SQLite file: {} MB", metadata.len() / 1_000_000);
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    if balanced {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the books do not balance after end of day");
        Ok(ExitCode::FAILURE)
    }
}
