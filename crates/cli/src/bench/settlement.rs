//! `tally bench settlement`: the daily settlement run timed on a generated day.
//!
//! Setup (not timed) is built fast rather than through checkout: merchant rows are inserted
//! in bulk in one transaction (their sealed fields are placeholders: settlement never opens
//! them), their ledger accounts are opened and each payment's capture entry is posted
//! through the ledger writer's batch path (`submit_batch_as`, 1,000 commands a call, as
//! `POST /v1/entries/batch` does), with the same codes, keys and metadata as checkout's
//! capture step: the card money the channel owes Tally is debited, the merchant's pending
//! account credited net of its fee and the fee income with the fee. Every merchant is in
//! UTC at T+0 with a 10 % rolling reserve, so one run settles every capture. Then the run
//! of the captures' date is timed, and the result checked: every pending balance back to
//! zero, statements whose gross sums to what was captured, balanced books.

use anyhow::{anyhow, bail, Context};
use jiff::Timestamp;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tally_core::{AccountId, Amount, Clock, Currency, ManualClock, SplitMix64};
use tally_ledger::{AccountFlags, AccountKind, Command, NewAccount, NewEntry, NewLeg, Side};
use tally_payments::{FeeSchedule, FeeText, PaymentMethod, SettlementTerms};
use tally_service::payments::accounts::{merchant_code, MerchantBalance, PAYMENTS_SERVICE};
use tally_service::payments::merchant_entries::{MOVEMENT, MOVEMENT_CAPTURE};
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_service::service_accounts::owner_metadata;
use tally_store::{LedgerWriter, WriterConfig};

/// Commands per call to the writer's batch path.
const COMMANDS_PER_BATCH: usize = 1_000;

/// Setup batches queued on the writer at once.
const BATCHES_IN_FLIGHT: usize = 4;

#[derive(Debug, clap::Args)]
pub struct SettlementBenchArgs {
    /// Database: a SQLite file (default `sqlite://tally-bench.db`, recreated) or a
    /// PostgreSQL server, where a fresh schema is made for the run.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Merchants onboarded.
    #[arg(long, default_value_t = 1_000)]
    pub merchants: usize,
    /// Captured payments of the day, spread over the merchants at random.
    #[arg(long, default_value_t = 100_000)]
    pub payments: usize,
    /// Seed of the amounts and of which merchant each payment goes to.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Merchants settled per ledger batch and transaction (1: one merchant a commit, as
    /// the run first did).
    #[arg(long, default_value_t = tally_service::payments::settlement::MERCHANTS_PER_CHUNK)]
    pub chunk: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn day_start() -> Timestamp {
    // Monday 2026-05-04, the captures' date; the run is timed the next morning.
    "2026-05-04T08:00:00Z".parse().expect("a fixed time")
}

fn merchant_id(index: usize) -> String {
    format!("bench-{index:07}")
}

fn fee_schedule() -> anyhow::Result<FeeSchedule> {
    let fees = BTreeMap::from([(
        "card".to_string(),
        FeeText {
            rate: "0.006".into(),
            fixed: Some("0.10".into()),
            minimum: None,
            maximum: None,
        },
    )]);
    FeeSchedule::parse(Currency::CNY, Some("half_up"), &fees).map_err(|error| anyhow!("{error}"))
}

/// Inserts the merchants' rows in one transaction.
async fn insert_merchants(
    database: &tally_store::Database,
    count: usize,
    fees: &str,
    terms: &str,
    now: i64,
) -> anyhow::Result<()> {
    tally_store::with_pool!(database, |pool| {
        let mut transaction = pool.begin().await?;
        for index in 0..count {
            let id = merchant_id(index);
            sqlx::query(
                "INSERT INTO merchants (id, status, currency, category_code, time_zone, \
                 legal_name, licence_number, licence_number_index, bank_account, \
                 fee_schedule, settlement_terms, version, created_at, updated_at) \
                 VALUES ($1, 'active', 'CNY', '5411', 'UTC', 'bench', 'bench', $2, 'bench', \
                 $3, $4, 1, $5, $5)",
            )
            .bind(&id)
            .bind(format!("bench-licence-{index}"))
            .bind(fees)
            .bind(terms)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
    });
    Ok(())
}

/// Submits commands through the writer's batch path, `COMMANDS_PER_BATCH` a call, and
/// returns the accounts created (for account commands).
async fn submit_all(
    writer: &LedgerWriter,
    commands: Vec<(String, Command)>,
) -> anyhow::Result<Vec<AccountId>> {
    let mut created = Vec::new();
    let mut commands = commands.into_iter().peekable();
    while commands.peek().is_some() {
        let batch: Vec<(String, Command)> = commands.by_ref().take(COMMANDS_PER_BATCH).collect();
        for outcome in writer.submit_batch_as(PAYMENTS_SERVICE, batch).await {
            if let tally_ledger::Outcome::Account(account) =
                outcome.map_err(|error| anyhow!("setup write refused: {error}"))?
            {
                created.push(account.id);
            }
        }
    }
    Ok(created)
}

pub async fn run(arguments: SettlementBenchArgs) -> anyhow::Result<ExitCode> {
    if arguments.merchants == 0 {
        bail!("--merchants must be at least 1");
    }
    let (database, _scratch, label) = super::open_database(arguments.database_url.as_deref())
        .await
        .context("opening the database")?;
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

    let setup_started = Instant::now();
    let fees = fee_schedule()?;
    let terms = SettlementTerms::parse(0, &[], 1_000, 7).map_err(|error| anyhow!("{error}"))?;
    insert_merchants(
        &database,
        arguments.merchants,
        &serde_json::to_string(&fees)?,
        &serde_json::to_string(&terms)?,
        day_start().as_microsecond(),
    )
    .await
    .context("inserting merchants")?;
    let service = payments
        .accounts()
        .service(&database, &writer, Currency::CNY)
        .await
        .map_err(|error| anyhow!("opening the payment service's accounts: {error}"))?;
    // The merchants' four accounts each, under the keys the payment service opens them with.
    let mut opens = Vec::with_capacity(arguments.merchants * 4);
    for index in 0..arguments.merchants {
        for balance in MerchantBalance::ALL {
            let code = merchant_code(&merchant_id(index), balance, Currency::CNY);
            opens.push((
                format!("payments-account:{code}"),
                Command::CreateAccount(NewAccount {
                    code,
                    kind: AccountKind::Liability,
                    currency: Currency::CNY,
                    flags: AccountFlags::default(),
                    metadata: owner_metadata(&PAYMENTS_SERVICE),
                }),
            ));
        }
    }
    let accounts = submit_all(&writer, opens)
        .await
        .context("opening merchants' accounts")?;
    let pending: Vec<AccountId> = accounts.chunks(4).map(|four| four[0]).collect();

    let mut random = SplitMix64::new(arguments.seed);
    let mut gross_total = 0_i64;
    let mut fees_total = 0_i64;
    let mut captures = Vec::with_capacity(COMMANDS_PER_BATCH);
    let mut in_flight = tokio::task::JoinSet::new();
    for payment in 0..arguments.payments {
        let merchant = usize::try_from(random.next_u64() % arguments.merchants as u64)?;
        let gross = Amount::new(
            i64::try_from(100 + random.next_u64() % 99_900)?,
            Currency::CNY,
        );
        let fee = fees
            .fee(PaymentMethod::Card, gross)
            .map_err(|error| anyhow!("{error}"))?;
        let net = gross.checked_sub(fee).map_err(|error| anyhow!("{error}"))?;
        gross_total += gross.minor();
        fees_total += fee.minor();
        let id = merchant_id(merchant);
        let legs = [
            (service.channel_clearing, Side::Debit, gross),
            (pending[merchant], Side::Credit, net),
            (service.fee_income, Side::Credit, fee),
        ]
        .into_iter()
        .filter(|(_, _, amount)| amount.is_positive())
        .map(|(account_id, side, amount)| NewLeg {
            account_id,
            side,
            amount,
        })
        .collect();
        captures.push((
            format!("payments:bench-{payment}:capture-0:merchant"),
            Command::PostEntry(NewEntry {
                description: format!("payment bench-{payment} leg 0 to merchant {id} net of fees"),
                metadata: BTreeMap::from([
                    ("payment".to_string(), format!("bench-{payment}")),
                    ("merchant".to_string(), id),
                    (MOVEMENT.to_string(), MOVEMENT_CAPTURE.to_string()),
                    ("gross".to_string(), gross.minor().to_string()),
                    ("fee".to_string(), fee.minor().to_string()),
                ]),
                legs,
            }),
        ));
        if captures.len() == COMMANDS_PER_BATCH {
            // A few batches in flight, so the writer commits one while the next is queued.
            if in_flight.len() >= BATCHES_IN_FLIGHT {
                let _posted = in_flight.join_next().await.context("a setup batch")??;
            }
            let writer = writer.clone();
            let batch = std::mem::take(&mut captures);
            in_flight.spawn(async move { submit_all(&writer, batch).await });
        }
    }
    submit_all(&writer, captures).await?;
    while let Some(done) = in_flight.join_next().await {
        done.context("a setup batch")??;
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    // The next morning: Monday is over in UTC.
    let now: Timestamp = "2026-05-05T01:00:00Z".parse()?;
    clock.set(now);
    let date = "2026-05-04".parse()?;
    let started = Instant::now();
    let run = payments
        .run_settlement_in_chunks(date, now, SettlementOptions::default(), arguments.chunk)
        .await
        .map_err(|error| anyhow!("settlement run: {error}"))?;
    let run_seconds = started.elapsed().as_secs_f64();

    let statements = payments
        .settlement_statements(date, None)
        .await
        .map_err(|error| anyhow!("{error}"))?;
    let statement_gross: i64 = statements.iter().map(|s| s.gross.minor()).sum();
    let statement_fees: i64 = statements.iter().map(|s| s.fees.minor()).sum();
    let pending_left: i64 = statements.iter().map(|s| s.balances.pending.minor()).sum();
    let balanced = database
        .currency_totals()
        .await?
        .iter()
        .all(|totals| totals.debits_posted == totals.credits_posted);
    let checks_pass = run.status == "done"
        && usize::try_from(run.merchants_settled)? == arguments.merchants
        && statement_gross == gross_total
        && statement_fees == fees_total
        && pending_left == 0
        && balanced;
    let result = json!({
        "database": label,
        "merchants": arguments.merchants,
        "payments": arguments.payments,
        "chunk": arguments.chunk,
        "setup_seconds": setup_seconds,
        "settlement_seconds": run_seconds,
        "merchants_per_second": arguments.merchants as f64 / run_seconds,
        "statements": statements.len(),
        "gross": Amount::new(gross_total, Currency::CNY).to_decimal_string(),
        "checks_pass": checks_pass,
    });
    if arguments.json {
        println!("{result}");
    } else {
        println!(
            "{label}: {} merchants, {} payments, chunks of {}; setup {setup_seconds:.1} s; settlement run \
             {run_seconds:.2} s ({:.0} merchants/s); statements {}; gross {} CNY; checks {}",
            arguments.merchants,
            arguments.payments,
            arguments.chunk,
            arguments.merchants as f64 / run_seconds,
            statements.len(),
            Amount::new(gross_total, Currency::CNY).to_decimal_string(),
            if checks_pass { "pass" } else { "FAIL" }
        );
    }
    Ok(if checks_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
