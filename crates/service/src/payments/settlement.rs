//! The daily settlement run: for a business date, every merchant's captures that are due
//! (T+N business days in its zone) move from its pending account to its available account,
//! less the reserve share held, plus the reserves whose time is up; each merchant gets a
//! statement (gross, fees, refunds, disputes, reserve held and released, net, balances
//! after). A dispute's movements on the pending account (`disputes.rs`: amounts taken,
//! the channel's fees on lost ones, less amounts returned on won ones) settle like refunds,
//! by the date they were posted. The statement's `disputes` counts every dispute movement
//! posted in its period, also what a dispute took straight from available or reserve (read
//! from those accounts' legs of the same window); `disputes_through_pending` is the part
//! that went through pending, so gross − fees − refunds − disputes_through_pending is what
//! became due.
//!
//! # Exactly once, resumable (as end of day)
//!
//! A run is a row (`settlement_runs`) with a cursor: merchants are settled one by one in id
//! order, and after each the statement, the reserve rows and the cursor are written in one
//! transaction. A merchant's movement is one ledger entry under
//! `payments-settlement:{date}:{merchant}:{currency}`, computed only from what cannot change
//! any more: ledger legs of closed past days (the capture dates settled are those after the
//! merchant's last statement's `through_date`), and reserves not yet marked released. So a
//! run killed between the entry and its statement computes the same entry again when
//! resumed, and the ledger answers it from its idempotency record instead of moving the
//! money twice. A finished run asked again answers what it did; a later run carries on from
//! each merchant's last `through_date`, so a capture date is settled by exactly one run,
//! whatever dates the runs are for and whether some were skipped.
//!
//! # Negative balances
//!
//! A day whose refunds exceed its captures has a negative net: it is moved to available
//! all the same, holds no reserve, and the available balance may go below zero. That debt
//! is carried against later sales, never paid out; the statement shows it (`carried`).

#[allow(unused_imports)]
use crate::credit::views::AmountView;
use crate::payments::accounts::{MerchantLedgerAccounts, PAYMENTS_SERVICE};
use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::merchant_entries::{MOVEMENT_CAPTURE, MOVEMENT_DISPUTE, MOVEMENT_REFUND};
use crate::payments::merchants::Merchant;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tally_core::{AccountId, Amount, Currency};
use tally_ledger::{AccountState, Command, NewEntry, NewLeg, Side};
use tally_payments::settlement::{start_of, SettlementDay};
use tally_store::merchants::{
    AccountLegRow, LegWindow, MerchantRow, ReserveRow, SettlementRecord, SettlementRunRow,
    StatementRow,
};
use tally_store::{StoreError, WriteError};
use utoipa::ToSchema;

/// Merchants read per page of a run.
pub const MERCHANTS_PER_PAGE: i64 = 200;

/// Merchants whose entries go to the ledger as one batch and whose statements are stored in
/// one transaction: one commit each per chunk rather than per merchant.
pub const MERCHANTS_PER_CHUNK: usize = 200;

/// How a run is driven.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettlementOptions {
    /// Test hook: stop (as a crash would) after settling this many merchants in this call.
    pub stop_after: Option<usize>,
}

/// A run as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettlementRunView {
    #[schema(value_type = String, format = Date)]
    pub business_date: Date,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub merchants_settled: i64,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// `running` (stopped mid-way: run it again to resume) or `done`.
    pub status: String,
}

/// A merchant's balances after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettlementBalances {
    #[schema(value_type = AmountView)]
    pub available: Amount,
    #[schema(value_type = AmountView)]
    pub pending: Amount,
    #[schema(value_type = AmountView)]
    pub reserve: Amount,
}

/// One merchant's settlement statement of one run. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettlementStatementView {
    pub balances: SettlementBalances,
    #[schema(value_type = String, format = Date)]
    pub business_date: Date,
    /// Whether the available balance is below zero (refunds above sales): a debt carried
    /// against later sales, not paid out.
    pub carried: bool,
    /// Taken for disputes on those dates, from the pending, available and reserve
    /// balances: disputed amounts and the channel's fees on lost disputes, less amounts
    /// returned on won ones.
    #[schema(value_type = AmountView)]
    pub disputes: Amount,
    /// The part of `disputes` that went through the pending balance (the rest was taken
    /// from available or reserve when the dispute opened): gross − fees − refunds −
    /// disputes_through_pending is what became due.
    #[schema(value_type = AmountView)]
    pub disputes_through_pending: Amount,
    /// Fees charged on the dates settled, less fees returned on their refunds.
    #[schema(value_type = AmountView)]
    pub fees: Amount,
    /// The capture dates settled are after `from_date` (from the first when null) through
    /// `through_date`, in the merchant's zone.
    #[schema(value_type = Option<String>, format = Date)]
    pub from_date: Option<Date>,
    /// Captured on those dates.
    #[schema(value_type = AmountView)]
    pub gross: Amount,
    pub merchant_id: String,
    /// Moved to available: gross − fees − refunds − disputes_through_pending − reserve
    /// held + reserve released.
    #[schema(value_type = AmountView)]
    pub net: Amount,
    /// Refunded on those dates.
    #[schema(value_type = AmountView)]
    pub refunds: Amount,
    #[schema(value_type = AmountView)]
    pub reserve_held: Amount,
    #[schema(value_type = AmountView)]
    pub reserve_released: Amount,
    #[schema(value_type = String, format = Date)]
    pub through_date: Date,
}

/// A run's statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettlementStatementList {
    pub statements: Vec<SettlementStatementView>,
}

/// The header of a statements CSV.
pub const STATEMENT_CSV_HEADER: &str = "business_date,merchant_id,currency,from_date,\
through_date,gross,fees,refunds,reserve_held,reserve_released,net,pending,available,reserve,\
carried,disputes,disputes_through_pending";

impl SettlementStatementView {
    /// The statement as a CSV line (amounts in major units, no thousands separators).
    pub fn csv_line(&self) -> String {
        let amount = |value: &Amount| value.to_decimal_string();
        [
            self.business_date.to_string(),
            csv_field(&self.merchant_id),
            self.gross.currency().code().to_string(),
            self.from_date
                .map(|date| date.to_string())
                .unwrap_or_default(),
            self.through_date.to_string(),
            amount(&self.gross),
            amount(&self.fees),
            amount(&self.refunds),
            amount(&self.reserve_held),
            amount(&self.reserve_released),
            amount(&self.net),
            amount(&self.balances.pending),
            amount(&self.balances.available),
            amount(&self.balances.reserve),
            self.carried.to_string(),
            amount(&self.disputes),
            amount(&self.disputes_through_pending),
        ]
        .join(",")
    }
}

/// Statements as a CSV document with its header.
pub fn statements_csv(statements: &[SettlementStatementView]) -> String {
    let mut csv = String::from(STATEMENT_CSV_HEADER);
    csv.push('\n');
    for statement in statements {
        csv.push_str(&statement.csv_line());
        csv.push('\n');
    }
    csv
}

/// A merchant id is plain ASCII without commas or quotes; quoted anyway if it were not.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn corrupt(what: String) -> PaymentServiceError {
    StoreError::Corrupt(what).into()
}

fn parse_date(text: &str) -> Result<Date, PaymentServiceError> {
    text.parse()
        .map_err(|error| corrupt(format!("stored date {text:?}: {error}")))
}

fn timestamp(micros: i64) -> Result<Timestamp, PaymentServiceError> {
    Timestamp::from_microsecond(micros).map_err(|error| corrupt(format!("stored time: {error}")))
}

fn run_view(row: &SettlementRunRow) -> Result<SettlementRunView, PaymentServiceError> {
    Ok(SettlementRunView {
        business_date: parse_date(&row.business_date)?,
        status: row.status.clone(),
        merchants_settled: row.merchants_settled,
        started_at: timestamp(row.started_at)?,
        finished_at: row.finished_at.map(timestamp).transpose()?,
    })
}

/// What a statement's disputes took through pending, from its stored figures: what became
/// due (net + reserve held − reserve released) is gross − fees − refunds − that part.
/// Statements stored before `disputes` counted available and reserve too have it equal to
/// `disputes`.
fn disputes_through_pending(row: &StatementRow) -> Result<i64, PaymentServiceError> {
    let overflow = || corrupt("a statement's figures overflow".into());
    let due = row
        .net_minor
        .checked_add(row.reserve_held_minor)
        .and_then(|value| value.checked_sub(row.reserve_released_minor))
        .ok_or_else(overflow)?;
    row.gross_minor
        .checked_sub(row.fees_minor)
        .and_then(|value| value.checked_sub(row.refunds_minor))
        .and_then(|value| value.checked_sub(due))
        .ok_or_else(overflow)
}

fn statement_view(row: &StatementRow) -> Result<SettlementStatementView, PaymentServiceError> {
    let currency = Currency::from_code(&row.currency)
        .map_err(|error| corrupt(format!("statement currency: {error}")))?;
    let amount = |minor| Amount::new(minor, currency);
    Ok(SettlementStatementView {
        business_date: parse_date(&row.business_date)?,
        merchant_id: row.merchant_id.clone(),
        from_date: row.from_date.as_deref().map(parse_date).transpose()?,
        through_date: parse_date(&row.through_date)?,
        gross: amount(row.gross_minor),
        fees: amount(row.fees_minor),
        refunds: amount(row.refunds_minor),
        disputes: amount(row.disputes_minor),
        disputes_through_pending: amount(disputes_through_pending(row)?),
        reserve_held: amount(row.reserve_held_minor),
        reserve_released: amount(row.reserve_released_minor),
        net: amount(row.net_minor),
        balances: SettlementBalances {
            pending: amount(row.pending_after_minor),
            available: amount(row.available_after_minor),
            reserve: amount(row.reserve_after_minor),
        },
        carried: row.available_after_minor < 0,
    })
}

/// What the pending account's legs of the settled dates add up to.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    gross: i64,
    fees: i64,
    refunds: i64,
    /// Disputes' debits less their returns.
    disputes: i64,
    /// Credits less debits of those legs: gross − fees − refunds − disputes.
    due: i64,
}

fn add(total: &mut i64, value: i64) -> Result<(), PaymentServiceError> {
    *total = total
        .checked_add(value)
        .ok_or_else(|| corrupt("a merchant's settlement overflows".into()))?;
    Ok(())
}

/// One merchant's settlement, planned before its entry is posted.
struct MerchantPlan {
    merchant: Merchant,
    accounts: MerchantLedgerAccounts,
    /// The entry's idempotency key.
    key: String,
    /// `None` when nothing moves.
    entry: Option<NewEntry>,
    /// `None` when nothing can be due yet: no statement, only the cursor moves.
    day: Option<PlannedDay>,
}

struct PlannedDay {
    settled_through: Option<Date>,
    through: Date,
    window: Window,
    day: SettlementDay,
    released: Vec<ReserveRow>,
}

/// The business date `date` is over in `zone` at `now`.
fn closed_in(date: Date, zone: &TimeZone, now: Timestamp) -> Result<bool, PaymentServiceError> {
    let next = date
        .tomorrow()
        .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
    Ok(now >= start_of(next, zone)?)
}

/// A liability's balance from its state: credits less debits, posted.
fn liability_balance(state: &AccountState) -> Result<i64, PaymentServiceError> {
    let balance =
        i128::from(state.balance.credits_posted) - i128::from(state.balance.debits_posted);
    i64::try_from(balance).map_err(|_| corrupt("a balance overflows".into()))
}

/// The metadata of a merchant entry the window reads, borrowed from its JSON (the other
/// keys are skipped unread).
#[derive(Deserialize)]
struct MovementMetadata<'a> {
    #[serde(borrow, rename = "merchant_movement")]
    movement: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    gross: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    fee: Option<std::borrow::Cow<'a, str>>,
}

/// Sums the pending account's capture, refund and dispute legs of the settled dates.
fn window_of<'a>(
    legs: impl Iterator<Item = &'a AccountLegRow>,
) -> Result<Window, PaymentServiceError> {
    let mut window = Window::default();
    for leg in legs {
        let metadata: MovementMetadata = serde_json::from_str(&leg.metadata)
            .map_err(|error| corrupt(format!("entry metadata: {error}")))?;
        let number = |key: &str, value: &Option<std::borrow::Cow<str>>| {
            value
                .as_deref()
                .and_then(|value| value.parse::<i64>().ok())
                .ok_or_else(|| corrupt(format!("a merchant entry without {key}")))
        };
        let signed = match leg.side.as_str() {
            "credit" => leg.amount,
            _ => -leg.amount,
        };
        match metadata.movement.as_deref() {
            Some(MOVEMENT_CAPTURE) => {
                add(&mut window.gross, number("gross", &metadata.gross)?)?;
                add(&mut window.fees, number("fee", &metadata.fee)?)?;
            }
            Some(MOVEMENT_REFUND) => {
                add(&mut window.refunds, number("gross", &metadata.gross)?)?;
                add(&mut window.fees, -number("fee", &metadata.fee)?)?;
            }
            Some(MOVEMENT_DISPUTE) => {
                add(
                    &mut window.disputes,
                    signed
                        .checked_neg()
                        .ok_or_else(|| corrupt("a dispute leg overflows".into()))?,
                )?;
            }
            // The run's own entries, and anything else, are not sales.
            _ => continue,
        }
        add(&mut window.due, signed)?;
    }
    Ok(window)
}

/// What dispute entries took from a balance other than pending (available or reserve) in
/// its legs: debits less credits of the entries marked `merchant_movement = dispute`.
fn disputes_taken<'a>(
    legs: impl Iterator<Item = &'a AccountLegRow>,
) -> Result<i64, PaymentServiceError> {
    let mut taken = 0_i64;
    for leg in legs {
        let metadata: MovementMetadata = serde_json::from_str(&leg.metadata)
            .map_err(|error| corrupt(format!("entry metadata: {error}")))?;
        if metadata.movement.as_deref() != Some(MOVEMENT_DISPUTE) {
            continue;
        }
        let taken_here = match leg.side.as_str() {
            "credit" => -leg.amount,
            _ => leg.amount,
        };
        add(&mut taken, taken_here)?;
    }
    Ok(taken)
}

/// The microsecond range `[from, to)` of the capture dates after `after` (from the first
/// when `None`) through `through` in `zone`.
fn window_bounds(
    zone: &TimeZone,
    after: Option<Date>,
    through: Date,
) -> Result<(i64, i64), PaymentServiceError> {
    let from = match after {
        Some(date) => start_of(
            date.tomorrow()
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?,
            zone,
        )?
        .as_microsecond(),
        None => i64::MIN,
    };
    let to = start_of(
        through
            .tomorrow()
            .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?,
        zone,
    )?
    .as_microsecond();
    Ok((from, to))
}

/// What a merchant's settlement reads before its plan: the last date settled and the
/// dates settled now (`None` when nothing can be due yet).
struct Settling {
    settled_through: Option<Date>,
    through: Option<Date>,
}

impl PaymentService {
    /// Runs (or resumes) the settlement of `date`. Refused while `date` is not over in the
    /// service's zone and in every merchant's zone at `now`. A run already done answers as
    /// it stands.
    pub async fn run_settlement(
        &self,
        date: Date,
        now: Timestamp,
        options: SettlementOptions,
    ) -> Result<SettlementRunView, PaymentServiceError> {
        self.run_settlement_in_chunks(date, now, options, MERCHANTS_PER_CHUNK)
            .await
    }

    /// [`run_settlement`](Self::run_settlement) with `merchants_per_chunk` merchants'
    /// entries posted in one ledger batch and their statements, reserves and the cursor
    /// stored in one transaction (1 gives one merchant a commit, as the run first did;
    /// `tally bench settlement --chunk` compares them). What each merchant gets does not
    /// depend on it.
    pub async fn run_settlement_in_chunks(
        &self,
        date: Date,
        now: Timestamp,
        options: SettlementOptions,
        merchants_per_chunk: usize,
    ) -> Result<SettlementRunView, PaymentServiceError> {
        let date_text = date.to_string();
        if let Some(run) = self.database().settlement_run(&date_text).await? {
            if run.status == "done" {
                return run_view(&run);
            }
        }
        let mut zones: BTreeSet<String> = self
            .database()
            .merchant_time_zones()
            .await?
            .into_iter()
            .collect();
        let service_zone = self.time_zone();
        let mut zone_list = vec![("the service's zone".to_string(), service_zone)];
        for name in std::mem::take(&mut zones) {
            let zone = TimeZone::get(&name)
                .map_err(|error| corrupt(format!("merchant time zone {name}: {error}")))?;
            zone_list.push((name, zone));
        }
        for (name, zone) in &zone_list {
            if !closed_in(date, zone, now)? {
                return Err(PaymentServiceError::SettlementDateNotClosed {
                    date: date_text,
                    reason: format!("it is not over yet in {name}"),
                });
            }
        }
        let run = self
            .database()
            .start_settlement_run(&date_text, now)
            .await?;
        let mut cursor = run.cursor.clone();
        let mut settled_now = 0_usize;
        let chunk_size = merchants_per_chunk.max(1);
        loop {
            let merchants = self
                .database()
                .merchants_after(cursor.as_deref(), MERCHANTS_PER_PAGE)
                .await?;
            if merchants.is_empty() {
                break;
            }
            // The test hook stops before the first merchant beyond its count.
            let take = options.stop_after.map_or(merchants.len(), |limit| {
                merchants.len().min(limit.saturating_sub(settled_now))
            });
            for chunk in merchants[..take].chunks(chunk_size) {
                self.settle_merchants(chunk, date, now).await?;
                settled_now += chunk.len();
                cursor = chunk.last().map(|row| row.id.clone());
            }
            if take < merchants.len() {
                let run = self
                    .database()
                    .settlement_run(&date_text)
                    .await?
                    .ok_or_else(|| corrupt(format!("settlement run {date_text} vanished")))?;
                return run_view(&run);
            }
        }
        self.database()
            .finish_settlement_run(&date_text, now)
            .await?;
        self.settlement_run(date).await
    }

    /// The run of `date`.
    pub async fn settlement_run(
        &self,
        date: Date,
    ) -> Result<SettlementRunView, PaymentServiceError> {
        let run = self
            .database()
            .settlement_run(&date.to_string())
            .await?
            .ok_or_else(|| PaymentServiceError::SettlementRunNotFound(date.to_string()))?;
        run_view(&run)
    }

    /// One page of the settlement runs, as the console lists them.
    pub async fn settlement_runs(
        &self,
        page: &tally_store::lists::ListPage,
    ) -> Result<Vec<SettlementRunView>, PaymentServiceError> {
        self.database()
            .settlement_runs_list(page)
            .await?
            .iter()
            .map(run_view)
            .collect()
    }

    /// Merchant `id`'s statements across runs, newest first: at most `limit` after
    /// skipping `offset`. An unknown merchant is refused.
    pub async fn merchant_statements(
        &self,
        id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<SettlementStatementView>, PaymentServiceError> {
        self.merchant(id).await?;
        self.database()
            .statements_of_merchant(id, offset, limit)
            .await?
            .iter()
            .map(statement_view)
            .collect()
    }

    /// The statements of the run of `date`, every merchant's or one's.
    pub async fn settlement_statements(
        &self,
        date: Date,
        merchant: Option<&str>,
    ) -> Result<Vec<SettlementStatementView>, PaymentServiceError> {
        self.settlement_run(date).await?;
        if let Some(id) = merchant {
            self.merchant(id).await?;
        }
        self.database()
            .settlement_statements(&date.to_string(), merchant)
            .await?
            .iter()
            .map(statement_view)
            .collect()
    }

    /// Settles a chunk of merchants for the run of `date` (see the module's docs): each
    /// merchant's movement planned from what cannot change any more, the chunk's entries
    /// posted as one ledger batch, then the statements, reserves and the cursor stored in
    /// one transaction. Killed in between, the chunk is planned again to the same entries,
    /// which the ledger answers from their idempotency records.
    async fn settle_merchants(
        &self,
        rows: &[MerchantRow],
        date: Date,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        // Disputes' openings wait (in every process) until the chunk's reserve rows are
        // read, released in the ledger and marked: a dispute lowering a row meanwhile
        // would see its amount released all the same.
        let reserves = self.database().lock_merchant_reserves().await?;
        self.settle_merchants_locked(rows, date, now).await?;
        reserves.release().await?;
        Ok(())
    }

    /// [`PaymentService::settle_merchants`] under the reserves' lock.
    async fn settle_merchants_locked(
        &self,
        rows: &[MerchantRow],
        date: Date,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let plans = self.plan_chunk(rows, date).await?;
        let writes: Vec<(String, Command)> = plans
            .iter()
            .filter_map(|plan| {
                plan.entry
                    .as_ref()
                    .map(|entry| (plan.key.clone(), Command::PostEntry(entry.clone())))
            })
            .collect();
        let mut outcomes = self
            .writer()
            .submit_batch_as(PAYMENTS_SERVICE, writes)
            .await
            .into_iter();
        // The balances after posting, of every merchant with a statement, in one read.
        let settled_accounts: Vec<AccountId> = plans
            .iter()
            .filter(|plan| plan.day.is_some())
            .flat_map(|plan| {
                [
                    plan.accounts.pending,
                    plan.accounts.available,
                    plan.accounts.reserve,
                ]
            })
            .collect();
        let balances: HashMap<AccountId, AccountState> = if settled_accounts.is_empty() {
            HashMap::new()
        } else {
            self.database()
                .accounts_by_ids(&settled_accounts)
                .await?
                .into_iter()
                .map(|state| (state.account.id, state))
                .collect()
        };
        let mut records: Vec<(String, Vec<SettlementRecord>)> = Vec::with_capacity(plans.len());
        let mut refusal = None;
        for plan in plans {
            if plan.entry.is_some() {
                let outcome = outcomes
                    .next()
                    .ok_or_else(|| corrupt("the ledger answered fewer entries".into()))?;
                if let Err(error) = outcome {
                    let key = plan.key.clone();
                    refusal = Some(match error {
                        WriteError::Ledger(error) => PaymentServiceError::LedgerRefused {
                            key,
                            message: error.to_string(),
                        },
                        WriteError::KeyReused(key) => PaymentServiceError::LedgerConflict(format!(
                            "the settlement key {key} is taken by another entry"
                        )),
                        error => corrupt(error.to_string()),
                    });
                    // The merchants before it are settled; it and those after are not,
                    // and are planned again when the run is resumed.
                    break;
                }
            }
            let merchant_id = plan.merchant.id.clone();
            records.push((merchant_id, settlement_record(plan, &balances, date, now)?));
        }
        self.database()
            .record_settlements(&date.to_string(), &records)
            .await?;
        match refusal {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// What each merchant of a chunk (in id order) settles in the run of `date`, from what
    /// cannot change any more: its accounts, last statements, pending legs and reserves
    /// due are read for the whole chunk at once, one read each.
    async fn plan_chunk(
        &self,
        rows: &[MerchantRow],
        date: Date,
    ) -> Result<Vec<MerchantPlan>, PaymentServiceError> {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(Vec::new());
        };
        let date_text = date.to_string();
        let merchants = rows
            .iter()
            .map(Merchant::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<(String, Currency)> = merchants
            .iter()
            .map(|merchant| (merchant.id.clone(), merchant.currency))
            .collect();
        let accounts = self
            .accounts()
            .merchants(self.database(), self.writer(), &keys)
            .await?;
        let mut settled: HashMap<(String, String), String> = self
            .database()
            .settled_through_between(&first.id, &last.id)
            .await?
            .into_iter()
            .map(|row| ((row.merchant_id, row.currency), row.through_date))
            .collect();
        let mut settling = Vec::with_capacity(merchants.len());
        let mut windows = Vec::new();
        for (merchant, accounts) in merchants.iter().zip(&accounts) {
            let settled_through = settled
                .remove(&(merchant.id.clone(), merchant.currency.code().to_string()))
                .as_deref()
                .map(parse_date)
                .transpose()?;
            let last_due = merchant.settlement.last_capture_date_due(date)?;
            let through = match (settled_through, last_due) {
                (Some(settled), Some(due)) => Some(settled.max(due)),
                (Some(settled), None) => Some(settled),
                (None, Some(due)) => Some(due),
                // Nothing can be due yet: move the cursor on, no statement.
                (None, None) => None,
            };
            if let Some(through) = through.filter(|through| Some(*through) != settled_through) {
                let (from, to) = window_bounds(&merchant.time_zone, settled_through, through)?;
                // The pending account's legs make the window; disputes may also have
                // taken from available and reserve in it.
                for account in [accounts.pending, accounts.available, accounts.reserve] {
                    windows.push(LegWindow {
                        account_id: account.to_string(),
                        from,
                        to,
                    });
                }
            }
            settling.push(Settling {
                settled_through,
                through,
            });
        }
        let legs = if windows.is_empty() {
            Vec::new()
        } else {
            self.database().legs_in_windows(&windows).await?
        };
        let mut legs_of: HashMap<&str, Vec<&AccountLegRow>> = HashMap::new();
        for leg in &legs {
            legs_of
                .entry(leg.account_id.as_str())
                .or_default()
                .push(leg);
        }
        let mut reserves_of: HashMap<(String, String), Vec<ReserveRow>> = HashMap::new();
        for reserve in self
            .database()
            .reserves_due_between(&first.id, &last.id, &date_text)
            .await?
        {
            reserves_of
                .entry((reserve.merchant_id.clone(), reserve.currency.clone()))
                .or_default()
                .push(reserve);
        }
        let mut plans = Vec::with_capacity(merchants.len());
        for ((merchant, accounts), settling) in merchants.into_iter().zip(accounts).zip(settling) {
            let legs_on = |account: AccountId| {
                legs_of
                    .get(account.to_string().as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
            };
            let window = legs_on(accounts.pending);
            let from_balances = [legs_on(accounts.available), legs_on(accounts.reserve)];
            let released = reserves_of
                .remove(&(merchant.id.clone(), merchant.currency.code().to_string()))
                .unwrap_or_default();
            let mut plan = plan_merchant(merchant, accounts, settling, window, released, date)?;
            if let Some(day) = plan.day.as_mut() {
                if Some(day.through) != day.settled_through {
                    for legs in from_balances {
                        add(
                            &mut day.window.disputes,
                            disputes_taken(legs.iter().copied())?,
                        )?;
                    }
                }
            }
            plans.push(plan);
        }
        Ok(plans)
    }
}

/// The statement and reserve rows of a planned merchant whose entry is posted (none
/// when nothing could be due).
fn settlement_record(
    plan: MerchantPlan,
    balances: &HashMap<AccountId, AccountState>,
    date: Date,
    now: Timestamp,
) -> Result<Vec<SettlementRecord>, PaymentServiceError> {
    let Some(planned) = plan.day else {
        return Ok(Vec::new());
    };
    let merchant = &plan.merchant;
    let accounts = &plan.accounts;
    let balance_after = |account: AccountId| {
        balances
            .get(&account)
            .ok_or_else(|| corrupt(format!("ledger account {account} is missing")))
            .and_then(liability_balance)
    };
    let currency = merchant.currency;
    let date_text = date.to_string();
    let net = planned.day.net_to_available()?;
    let reserve_held = planned.day.reserve_held;
    let statement = StatementRow {
        business_date: date_text.clone(),
        merchant_id: merchant.id.clone(),
        currency: currency.code().to_string(),
        from_date: planned.settled_through.map(|date| date.to_string()),
        through_date: planned.through.to_string(),
        gross_minor: planned.window.gross,
        fees_minor: planned.window.fees,
        refunds_minor: planned.window.refunds,
        reserve_held_minor: reserve_held.minor(),
        reserve_released_minor: planned.day.reserve_released.minor(),
        net_minor: net.minor(),
        pending_after_minor: balance_after(accounts.pending)?,
        available_after_minor: balance_after(accounts.available)?,
        reserve_after_minor: balance_after(accounts.reserve)?,
        entry_key: plan.entry.is_some().then(|| plan.key.clone()),
        created_at: now.as_microsecond(),
        disputes_minor: planned.window.disputes,
    };
    let held = reserve_held
        .is_positive()
        .then(|| -> Result<ReserveRow, PaymentServiceError> {
            Ok(ReserveRow {
                merchant_id: merchant.id.clone(),
                currency: currency.code().to_string(),
                held_on: date_text.clone(),
                amount_minor: reserve_held.minor(),
                release_on: merchant.settlement.reserve_release_date(date)?.to_string(),
                released_on: None,
            })
        });
    Ok(vec![SettlementRecord {
        statement,
        held: held.transpose()?,
        released: planned
            .released
            .into_iter()
            .map(|reserve| reserve.held_on)
            .collect(),
    }])
}

/// What one merchant's settlement in the run of `date` moves, from what its chunk read:
/// `legs` are its pending account's legs of the dates settled now.
fn plan_merchant(
    merchant: Merchant,
    accounts: MerchantLedgerAccounts,
    settling: Settling,
    legs: &[&AccountLegRow],
    released: Vec<ReserveRow>,
    date: Date,
) -> Result<MerchantPlan, PaymentServiceError> {
    let currency = merchant.currency;
    let date_text = date.to_string();
    let Settling {
        settled_through,
        through,
    } = settling;
    let Some(through) = through else {
        return Ok(MerchantPlan {
            merchant,
            accounts,
            key: String::new(),
            entry: None,
            day: None,
        });
    };
    let window = if Some(through) == settled_through {
        Window::default()
    } else {
        window_of(legs.iter().copied())?
    };
    let terms = &merchant.settlement;
    let amount = |minor| Amount::new(minor, currency);
    let due = amount(window.due);
    let reserve_held = terms.reserve_share(due)?;
    let mut released_minor = 0_i64;
    for reserve in &released {
        add(&mut released_minor, reserve.amount_minor)?;
    }
    let day = SettlementDay {
        due,
        reserve_held,
        reserve_released: amount(released_minor),
    };
    let movements = day.movements()?;
    let key = format!(
        "payments-settlement:{date_text}:{}:{}",
        merchant.id,
        currency.code()
    );
    let legs: Vec<NewLeg> = [
        (accounts.pending, movements.pending),
        (accounts.available, movements.available),
        (accounts.reserve, movements.reserve),
    ]
    .into_iter()
    .filter(|(_, change)| *change != 0)
    .map(|(account_id, change)| NewLeg {
        account_id,
        side: if change > 0 {
            Side::Credit
        } else {
            Side::Debit
        },
        amount: amount(change.abs()),
    })
    .collect();
    let entry = (!legs.is_empty()).then(|| NewEntry {
        description: format!("settlement of merchant {} for {date_text}", merchant.id),
        metadata: BTreeMap::from([
            ("merchant".to_string(), merchant.id.clone()),
            ("settlement".to_string(), date_text.clone()),
        ]),
        legs,
    });
    Ok(MerchantPlan {
        merchant,
        accounts,
        key,
        entry,
        day: Some(PlannedDay {
            settled_through,
            through,
            window,
            day,
            released,
        }),
    })
}
