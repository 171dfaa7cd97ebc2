//! Storage of credit accounts and the end-of-day run: accounts as JSON rows, a run table
//! that makes a run resumable, and the run's postings sent to the ledger writer.
//!
//! # Decisions
//!
//! - **Stored form.** A `tally_credit::Account` is stored whole as its serde JSON in one row
//!   (`credit_accounts.state`), keyed by an integer id. JSON because the credit crate's types
//!   are serde plain data already (amounts as exact decimal strings, dates as ISO text), it
//!   needs no new dependency, stays readable with `sqlite3`/`psql` when an account must be
//!   inspected, and survives additive changes to the types; PostgreSQL compresses it (TOAST)
//!   on its own. The integer id gives the run its cursor (accounts are processed in id order).
//! - **Not rewriting what did not change.** Most account-days change nothing but the date
//!   (no statement, nothing revolving or overdue). Such accounts are not rewritten: the run
//!   table says which dates ran for every account, so an account stored at date `x` that
//!   every run since has seen is, in effect, at the previous business date. Runs are
//!   contiguous (a date starts only when the previous one has finished), which is what makes
//!   that inference sound.
//! - **Resuming, and operations meanwhile.** A run processes accounts in chunks: read (with
//!   each account's version), compute in parallel (one scoped thread per core), then one
//!   transaction writes the changed accounts (each only if its version is still the one
//!   read: an HTTP operation may have changed it, and then the chunk is computed again),
//!   the chunk's ledger commands as a pending credit operation, its statements and contact
//!   tasks, and the run's cursor. Then the commands go to the ledger writer and the
//!   operation is marked done. A crash after the commit leaves a pending operation, which
//!   the resumed run (or the credit service's start) finishes; a crash before it leaves
//!   nothing. See `credit_operations` for the pattern.
//! - **Summary entries.** A chunk's movements are posted as one entry per currency, net per
//!   ledger role (`credit-eod:{date}:{first account}:{currency}`), the way a subledger
//!   posts to a general ledger: the per-account detail is in each account's state and
//!   statements, and the books still equal the sum of the accounts (tested). One entry per
//!   chunk instead of one per account-posting keeps the ledger writer out of the run's time.
//! - **Ledger accounts** are created once per role and currency through the writer (key
//!   `credit-ledger-account:{code}`) and found again by their code (`credit-receivable-CNY`).

use crate::credit_operations::{
    bucket_name, finish_pending, key_taken, resolve_steps, send_commands_unordered, IfRefused,
    LedgerCommand, OperationError, Step,
};
use crate::database::Database;
use crate::error::{StoreError, WriteError};
use crate::rows::micros;
use crate::writer::LedgerWriter;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tally_core::{AccountId, Amount, Clock, Currency};
use tally_credit::{
    Account, AccountPolicy, Authorization, ContactTask, DayOutcome, LedgerRole, Posting, Statement,
};
use tally_ledger::{
    AccountFlags, AccountKind, Actor, Command, LedgerError, NewAccount, Outcome, Side,
};

/// The identifier of a stored credit account.
pub type CreditAccountId = i64;

/// Prefixes of the idempotency keys Tally makes for itself: the credit service's ledger
/// commands (`credit:{key}:{index}`, `credit:{key}:hold`), its ledger accounts
/// (`credit-ledger-account:{code}`) and end of day (`credit-eod:…`, both ledger keys and
/// credit operation keys). A client key must not start with one of them, or it could take a
/// key the service needs (or be overwritten by it).
pub const RESERVED_KEY_PREFIXES: [&str; 2] = ["credit:", "credit-"];

/// Prefix of the ledger account codes of the credit business (`credit-receivable-CNY`, see
/// [`ledger_account_code`]): a client may not open a ledger account under such a code.
pub const RESERVED_ACCOUNT_CODE_PREFIX: &str = "credit-";

/// The credit service as an actor of the ledger: the accounts it opens are its own, and
/// no client may move them.
pub const CREDIT_SERVICE: Actor = Actor::Service("credit");

/// The reserved prefix `key` starts with, if any (see [`RESERVED_KEY_PREFIXES`]).
pub fn reserved_key_prefix(key: &str) -> Option<&'static str> {
    RESERVED_KEY_PREFIXES
        .into_iter()
        .find(|prefix| key.starts_with(prefix))
}

/// Why an end-of-day run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndOfDayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger refused or could not store a posting; the chunk was not committed and a
    /// rerun replays what was posted.
    #[error("posting {key} failed: {error}")]
    Posting { key: String, error: WriteError },
    /// The previous business date has not finished (or was never run).
    #[error("end of day for {requested} needs {previous} to have finished first")]
    PreviousUnfinished { previous: String, requested: String },
    /// A later date has already run.
    #[error("end of day for {requested} is before the last run date {last}")]
    OutOfOrder { last: String, requested: String },
    #[error("policy: {0}")]
    Policy(String),
    /// The credit rules refused an account's end of day (`code`): the run stops before the
    /// account's chunk is committed, so the date cannot finish with the account skipped.
    #[error("account {id}: end of day refused ({code})")]
    AccountRefused {
        id: CreditAccountId,
        code: &'static str,
    },
    /// A ledger idempotency key or account code the credit service needs is held by
    /// something else: a key taken for another command, or an account under a credit code
    /// with another kind, currency or limits (using it would misbook or refuse every
    /// posting). Retrying cannot help; an operator must resolve it.
    #[error("{0}")]
    LedgerConflict(String),
    /// The key of a chunk's operation is held by another kind of credit operation (made
    /// before client keys under `credit-` were refused): the chunk is not stored, and the run
    /// stops rather than overwrite it.
    #[error("credit operation key {0:?} is held by another operation; end of day cannot store its chunk under it")]
    OperationKeyTaken(String),
}

impl EndOfDayError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            EndOfDayError::Store(_) => "storage_unavailable",
            EndOfDayError::Posting { .. } => "credit_end_of_day_posting_failed",
            EndOfDayError::PreviousUnfinished { .. } => "credit_end_of_day_previous_unfinished",
            EndOfDayError::OutOfOrder { .. } => "credit_end_of_day_out_of_order",
            EndOfDayError::Policy(_) => "credit_invalid_configuration",
            EndOfDayError::AccountRefused { .. } => "credit_end_of_day_account_refused",
            EndOfDayError::LedgerConflict(_) => "credit_ledger_conflict",
            EndOfDayError::OperationKeyTaken(_) => "credit_end_of_day_key_taken",
        }
    }
}

/// How an end-of-day run works through the accounts.
#[derive(Debug, Clone)]
pub struct EndOfDayOptions {
    /// Accounts read, computed and committed together (bounds memory: about 4 KB each).
    pub chunk_size: usize,
    /// Threads computing a chunk (0 = one per core).
    pub threads: usize,
    /// Tests only: stop as a crash would, once this many accounts were computed in this
    /// call; the chunk in progress has its postings committed but not its accounts.
    pub crash_after_accounts: Option<u64>,
}

impl Default for EndOfDayOptions {
    fn default() -> Self {
        EndOfDayOptions {
            chunk_size: 20_000,
            threads: 0,
            crash_after_accounts: None,
        }
    }
}

/// What a run (or the resumed part of a run) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndOfDayReport {
    /// The date had already finished: nothing was done.
    pub already_finished: bool,
    /// The run stopped early (`crash_after_accounts`).
    pub interrupted: bool,
    /// The run continued one that had stopped.
    pub resumed: bool,
    pub accounts: u64,
    pub accounts_written: u64,
    pub postings: u64,
    pub statements: u64,
    pub timings: EndOfDayTimings,
}

/// Where the time of a run went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndOfDayTimings {
    pub read: Duration,
    pub compute: Duration,
    pub post: Duration,
    pub write: Duration,
}

/// The ledger account of each role, for one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditLedgerAccounts {
    pub currency: Currency,
    pub accounts: BTreeMap<LedgerRole, AccountId>,
}

impl CreditLedgerAccounts {
    pub fn account_of(&self, role: LedgerRole) -> AccountId {
        // Every role is created by `credit_ledger_accounts`, so the lookup cannot miss.
        self.accounts
            .get(&role)
            .copied()
            .unwrap_or(AccountId(uuid::Uuid::nil()))
    }

    /// The ledger entry of `posting`.
    pub fn entry(&self, posting: &Posting) -> tally_ledger::NewEntry {
        posting.to_new_entry(|role| self.account_of(role))
    }
}

/// Every ledger role of the credit business.
pub const LEDGER_ROLES: [LedgerRole; 11] = [
    LedgerRole::CustomerReceivable,
    LedgerRole::RepaymentClearing,
    LedgerRole::MerchantPayable,
    LedgerRole::CustomerCreditBalance,
    LedgerRole::CustomerPayoutPayable,
    LedgerRole::FeeIncome,
    LedgerRole::InterestIncome,
    LedgerRole::PenaltyIncome,
    LedgerRole::MerchantDiscountIncome,
    LedgerRole::FraudLossExpense,
    LedgerRole::ChargeOffExpense,
];

/// The ledger account code of a role in a currency, e.g. `credit-receivable-CNY`.
pub fn ledger_account_code(role: LedgerRole, currency: Currency) -> String {
    let name = match role {
        LedgerRole::CustomerReceivable => "receivable",
        LedgerRole::RepaymentClearing => "repayment-clearing",
        LedgerRole::MerchantPayable => "merchant-payable",
        LedgerRole::CustomerCreditBalance => "credit-balance",
        LedgerRole::CustomerPayoutPayable => "payout-payable",
        LedgerRole::FeeIncome => "fee-income",
        LedgerRole::InterestIncome => "interest-income",
        LedgerRole::PenaltyIncome => "penalty-income",
        LedgerRole::MerchantDiscountIncome => "merchant-discount-income",
        LedgerRole::FraudLossExpense => "fraud-loss-expense",
        LedgerRole::ChargeOffExpense => "charge-off-expense",
    };
    format!("credit-{name}-{}", currency.code())
}

fn ledger_account_kind(role: LedgerRole) -> (AccountKind, AccountFlags) {
    let mut flags = AccountFlags::default();
    let kind = match role {
        LedgerRole::CustomerReceivable => {
            flags.credits_must_not_exceed_debits = true;
            AccountKind::Asset
        }
        LedgerRole::RepaymentClearing => AccountKind::Asset,
        LedgerRole::CustomerCreditBalance => {
            flags.debits_must_not_exceed_credits = true;
            AccountKind::Liability
        }
        // Debited when the payment system settles a payout: never more than was paid out.
        LedgerRole::CustomerPayoutPayable => {
            flags.debits_must_not_exceed_credits = true;
            AccountKind::Liability
        }
        LedgerRole::MerchantPayable => AccountKind::Liability,
        LedgerRole::FeeIncome
        | LedgerRole::InterestIncome
        | LedgerRole::PenaltyIncome
        | LedgerRole::MerchantDiscountIncome => AccountKind::Income,
        LedgerRole::FraudLossExpense | LedgerRole::ChargeOffExpense => AccountKind::Expense,
    };
    (kind, flags)
}

/// The ledger accounts of the credit business in `currency`, found by code, or created on
/// first use through the writer (idempotency key `credit-ledger-account:{code}`).
pub async fn credit_ledger_accounts(
    database: &Database,
    writer: &LedgerWriter,
    currency: Currency,
) -> Result<CreditLedgerAccounts, EndOfDayError> {
    let mut accounts = BTreeMap::new();
    for role in LEDGER_ROLES {
        let code = ledger_account_code(role, currency);
        let (kind, flags) = ledger_account_kind(role);
        let command = Command::CreateAccount(NewAccount {
            code: code.clone(),
            kind,
            currency,
            flags,
            metadata: BTreeMap::from([("owner".to_string(), "credit".to_string())]),
        });
        // Looked up by code first: replaying a stored account creation fails to decode today
        // (the outcome's `kind` tag collides with the account's `kind` field), and a lookup
        // is cheaper than a trip through the writer anyway.
        if let Some(id) = account_id_by_code(database, &code).await? {
            check_adopted(database, id, &command).await?;
            accounts.insert(role, id);
            continue;
        }
        let key = format!("credit-ledger-account:{code}");
        let id = match writer
            .submit_as(CREDIT_SERVICE, key.clone(), command.clone())
            .await
        {
            Ok(Outcome::Account(account)) => account.id,
            // Created by other means (not under our key): used if it is what credit needs.
            Err(WriteError::Ledger(LedgerError::AccountCodeTaken(_))) => {
                match account_id_by_code(database, &code).await? {
                    Some(id) => {
                        check_adopted(database, id, &command).await?;
                        id
                    }
                    None => {
                        return Err(EndOfDayError::Store(StoreError::Corrupt(format!(
                            "ledger account {code} is taken but cannot be found"
                        ))))
                    }
                }
            }
            Ok(other) => {
                return Err(EndOfDayError::Store(StoreError::Corrupt(format!(
                    "creating {code} gave {other:?}"
                ))))
            }
            Err(WriteError::KeyReused(_)) => {
                return Err(EndOfDayError::LedgerConflict(key_taken(&key)))
            }
            Err(error) => return Err(EndOfDayError::Posting { key, error }),
        };
        accounts.insert(role, id);
    }
    Ok(CreditLedgerAccounts { currency, accounts })
}

/// Runs `$body` with `$pool` bound to the SQLite or the PostgreSQL pool: the statements are
/// the same on both backends.
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            crate::database::Database::Sqlite($pool) => $body,
            crate::database::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Refuses a ledger account found under a credit code unless it has the kind, currency and
/// limits `command` would have given it (one opened by a client before such codes were
/// reserved may not).
async fn check_adopted(
    database: &Database,
    id: AccountId,
    command: &Command,
) -> Result<(), EndOfDayError> {
    let Command::CreateAccount(wanted) = command else {
        return Ok(());
    };
    let Some(found) = database.account(id).await? else {
        return Err(StoreError::Corrupt(format!("ledger account {id} vanished")).into());
    };
    let found = &found.account;
    if found.kind != wanted.kind || found.currency != wanted.currency || found.flags != wanted.flags
    {
        return Err(EndOfDayError::LedgerConflict(format!(
            "ledger account {} ({id}) is a {} account in {} with {:?}, but the credit service \
             needs a {} account in {} with {:?}: it was not opened by the credit service, and \
             an operator must rename or retire it",
            found.code,
            found.kind.as_str(),
            found.currency.code(),
            found.flags,
            wanted.kind.as_str(),
            wanted.currency.code(),
            wanted.flags,
        )));
    }
    // An account the credit service does not own could be moved by clients behind the
    // credit subledger's back.
    if found.owner.as_deref() != CREDIT_SERVICE.owner().as_deref() {
        return Err(EndOfDayError::LedgerConflict(format!(
            "ledger account {} ({id}) has the credit service's code but is owned by {}: it \
             was not opened by the credit service, and an operator must rename or retire it",
            found.code,
            found.owner.as_deref().unwrap_or("clients"),
        )));
    }
    Ok(())
}

async fn account_id_by_code(
    database: &Database,
    code: &str,
) -> Result<Option<AccountId>, StoreError> {
    let row: Option<(String,)> = on_pool!(database, pool => {
        sqlx::query_as("SELECT id FROM accounts WHERE code = $1")
            .bind(code)
            .fetch_optional(pool)
            .await?
    });
    row.map(|(id,)| {
        uuid::Uuid::parse_str(&id)
            .map(AccountId)
            .map_err(|_| StoreError::Corrupt(format!("account id {id}")))
    })
    .transpose()
}

pub(crate) fn encode(account: &Account) -> Result<String, StoreError> {
    serde_json::to_string(account)
        .map_err(|error| StoreError::Corrupt(format!("credit account: {error}")))
}

pub(crate) fn decode(id: CreditAccountId, state: &str) -> Result<Account, StoreError> {
    serde_json::from_str(state)
        .map_err(|error| StoreError::Corrupt(format!("credit account {id}: {error}")))
}

/// Rows per multi-row statement (4 parameters each; both backends accept this many).
const ROWS_PER_STATEMENT: usize = 500;

/// Appends `rows` parenthesised lists of `columns` numbered parameters: `($1, $2), ($3, $4)`.
fn push_value_rows(sql: &mut String, rows: usize, columns: usize) {
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
}

/// Inserts or replaces accounts (already encoded), several rows per statement, in one
/// transaction.
async fn upsert_encoded(
    database: &Database,
    rows: &[(CreditAccountId, Currency, Option<Date>, String)],
) -> Result<(), StoreError> {
    on_pool!(database, pool => {
        let mut transaction = pool.begin().await?;
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO credit_accounts (id, currency, last_end_of_day, state) VALUES ",
            );
            push_value_rows(&mut sql, part.len(), 4);
            sql.push_str(
                " ON CONFLICT (id) DO UPDATE SET currency = excluded.currency, \
                 last_end_of_day = excluded.last_end_of_day, state = excluded.state, \
                 version = credit_accounts.version + 1",
            );
            let mut query = sqlx::query(&sql);
            for (id, currency, last, state) in part {
                query = query
                    .bind(*id)
                    .bind(currency.code().to_string())
                    .bind(last.map(|date| date.to_string()))
                    .bind(state.as_str());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
    });
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct RunProgress {
    next_account: i64,
    accounts: i64,
    written: i64,
    postings: i64,
    failures: i64,
}

impl Database {
    /// Stores accounts under the given ids, replacing any stored under the same id.
    pub async fn put_credit_accounts(
        &self,
        accounts: &[(CreditAccountId, Account)],
    ) -> Result<(), StoreError> {
        let rows = accounts
            .iter()
            .map(|(id, account)| {
                Ok((
                    *id,
                    account.currency,
                    account.last_end_of_day,
                    encode(account)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        upsert_encoded(self, &rows).await
    }

    /// Stores accounts already encoded as JSON (the benchmark's generator stores one
    /// template many times without encoding it again).
    pub async fn put_credit_accounts_encoded(
        &self,
        rows: &[(CreditAccountId, Currency, Option<Date>, String)],
    ) -> Result<(), StoreError> {
        upsert_encoded(self, rows).await
    }

    /// An account as stored. Its `last_end_of_day` may lag behind runs that changed nothing
    /// in it; [`Database::credit_account_as_of_runs`] gives the account as the runs see it.
    pub async fn credit_account(&self, id: CreditAccountId) -> Result<Option<Account>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT state FROM credit_accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(state,)| decode(id, &state)).transpose()
    }

    /// An account with `last_end_of_day` brought up to the last finished run it took part in.
    pub async fn credit_account_as_of_runs(
        &self,
        id: CreditAccountId,
    ) -> Result<Option<Account>, StoreError> {
        let runs = self.runs_covering(id).await?;
        let Some(mut account) = self.credit_account(id).await? else {
            return Ok(None);
        };
        bring_up_to_runs(&mut account, runs);
        Ok(Some(account))
    }

    /// The first run's date and the last date whose run covered account `id` (finished, or
    /// in progress past it), when there are such runs.
    pub(crate) async fn runs_covering(
        &self,
        id: CreditAccountId,
    ) -> Result<Option<(Date, Date)>, StoreError> {
        let (first, last): (Option<String>, Option<String>) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT MIN(business_date) FROM credit_end_of_day_runs), \
                 (SELECT MAX(business_date) FROM credit_end_of_day_runs \
                 WHERE finished_at IS NOT NULL OR next_account > $1)",
            )
            .bind(id)
            .fetch_one(pool)
            .await?
        });
        let parse = |text: String| {
            text.parse::<Date>()
                .map_err(|_| StoreError::Corrupt(format!("run date {text}")))
        };
        match (first, last) {
            (Some(first), Some(last)) => Ok(Some((parse(first)?, parse(last)?))),
            _ => Ok(None),
        }
    }

    /// The highest stored credit account id, if any.
    pub async fn last_credit_account_id(&self) -> Result<Option<CreditAccountId>, StoreError> {
        let row: (Option<i64>,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT MAX(id) FROM credit_accounts")
                .fetch_one(pool)
                .await?
        });
        Ok(row.0)
    }

    /// Every run: business date, cursor, finished; oldest first.
    pub async fn end_of_day_runs(&self) -> Result<Vec<(Date, i64, bool)>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT business_date, next_account, finished_at FROM credit_end_of_day_runs \
                 ORDER BY business_date",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(date, next, finished)| {
                let date: Date = date
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("run date {date}")))?;
                Ok((date, next, finished.is_some()))
            })
            .collect()
    }
}

/// Sets an account's end-of-day date to what the runs that covered it make it (see
/// [`effective_last`]); `runs` as [`Database::runs_covering`] gives them.
pub(crate) fn bring_up_to_runs(account: &mut Account, runs: Option<(Date, Date)>) {
    if let Some((first, last)) = runs {
        account.last_end_of_day = effective_last(account.last_end_of_day, first, last);
    }
}

/// The date an account stored at `stored` is effectively at, given that every run from
/// `first` to `last` (contiguous) processed it and wrote it only when it changed.
pub(crate) fn effective_last(stored: Option<Date>, first: Date, last: Date) -> Option<Date> {
    match stored {
        Some(stored) if stored < last => match first.checked_sub(1.day()) {
            Ok(before_first) if stored >= before_first => Some(last),
            _ => Some(stored),
        },
        other => other,
    }
}

/// One account's result in a chunk.
enum Computed {
    /// Nothing but the date changed, and nothing moved: not rewritten.
    Unchanged,
    Changed {
        account: Box<Account>,
        postings: Vec<Posting>,
        statement: Option<Box<Statement>>,
        contacts: Vec<ContactTask>,
        expired: Vec<Authorization>,
    },
    Failed(&'static str),
}

fn compute_one(
    id: CreditAccountId,
    state: &str,
    date: Date,
    first_run: Date,
    previous: Date,
    policy: &AccountPolicy,
    outcome: &mut DayOutcome,
) -> Result<Computed, StoreError> {
    let mut account = decode(id, state)?;
    account.last_end_of_day = effective_last(account.last_end_of_day, first_run, previous);
    let before = account.clone();
    if let Err(error) = account.end_of_day(date, policy, outcome) {
        return Ok(Computed::Failed(error.code()));
    }
    let postings: Vec<Posting> = outcome
        .postings
        .iter()
        .filter(|posting| !posting.is_empty())
        .cloned()
        .collect();
    let date_after = account.last_end_of_day;
    account.last_end_of_day = before.last_end_of_day;
    if account == before && postings.is_empty() && outcome.contacts.is_empty() {
        return Ok(Computed::Unchanged);
    }
    account.last_end_of_day = date_after;
    Ok(Computed::Changed {
        account: Box::new(account),
        postings,
        statement: outcome.statement.take().map(Box::new),
        contacts: std::mem::take(&mut outcome.contacts),
        expired: std::mem::take(&mut outcome.expired_authorizations),
    })
}

fn compute_chunk(
    rows: &[(CreditAccountId, i64, String)],
    date: Date,
    first_run: Date,
    policy: &AccountPolicy,
    threads: usize,
) -> Result<Vec<Computed>, StoreError> {
    let previous = date
        .checked_sub(1.day())
        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
    let part = rows.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(part)
            .map(|slice| {
                scope.spawn(move || {
                    let mut outcome = DayOutcome::default();
                    slice
                        .iter()
                        .map(|(id, _, state)| {
                            compute_one(*id, state, date, first_run, previous, policy, &mut outcome)
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(rows.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| StoreError::Corrupt("an end-of-day thread panicked".into()))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// Runs end of day for `date` on every stored credit account, resuming a run that stopped.
/// Running a date that has finished does nothing. The times the run records (its start and
/// end, its operations and contact tasks) are read from `clock`.
pub async fn run_end_of_day(
    database: &Database,
    writer: &LedgerWriter,
    date: Date,
    policy: &AccountPolicy,
    options: &EndOfDayOptions,
    clock: &dyn Clock,
) -> Result<EndOfDayReport, EndOfDayError> {
    policy
        .validate()
        .map_err(|error| EndOfDayError::Policy(error.to_string()))?;
    let mut report = EndOfDayReport::default();
    let date_text = date.to_string();
    let (mut cursor, resumed, finished) = start_run(database, date, clock.now()).await?;
    if finished {
        report.already_finished = true;
        return Ok(report);
    }
    report.resumed = resumed;
    let runs = database.end_of_day_runs().await?;
    let first_run = runs.first().map(|run| run.0).unwrap_or(date);
    let threads = if options.threads == 0 {
        std::thread::available_parallelism()
            .map(|count| count.get())
            .unwrap_or(1)
    } else {
        options.threads
    };
    let policy = std::sync::Arc::new(policy.clone());
    let mut ledgers: HashMap<Currency, CreditLedgerAccounts> = HashMap::new();
    // Chunks and operations a crash left half done are finished first.
    finish_pending(database, writer, None)
        .await
        .map_err(|error| posting_error("pending credit operations", error))?;
    let mut conflicts = 0_u32;
    loop {
        let started = Instant::now();
        let rows: Vec<(CreditAccountId, i64, String)> = on_pool!(database, pool => {
            sqlx::query_as(
                "SELECT id, version, state FROM credit_accounts WHERE id >= $1 ORDER BY id \
                 LIMIT $2",
            )
            .bind(cursor)
            .bind(i64::try_from(options.chunk_size.max(1)).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(StoreError::from)?
        });
        report.timings.read += started.elapsed();
        let Some(last_id) = rows.last().map(|row| row.0) else {
            break;
        };
        let started = Instant::now();
        let chunk_policy = policy.clone();
        let (rows, computed) = tokio::task::spawn_blocking(move || {
            let computed = compute_chunk(&rows, date, first_run, &chunk_policy, threads);
            (rows, computed)
        })
        .await
        .map_err(|_| StoreError::Corrupt("an end-of-day task panicked".into()))?;
        let computed = computed?;
        report.timings.compute += started.elapsed();

        // The chunk's ledger commands, stored with the chunk's states before they are sent.
        let started = Instant::now();
        let mut progress = RunProgress {
            next_account: last_id + 1,
            accounts: 0,
            written: 0,
            postings: 0,
            failures: 0,
        };
        let mut chunk = ChunkWrite::default();
        let mut summaries: BTreeMap<Currency, BTreeMap<LedgerRole, i64>> = BTreeMap::new();
        for ((id, version, _), result) in rows.iter().zip(computed) {
            progress.accounts += 1;
            let Computed::Changed {
                account,
                postings,
                statement,
                contacts,
                expired,
            } = result
            else {
                if let Computed::Failed(code) = result {
                    return Err(EndOfDayError::AccountRefused { id: *id, code });
                }
                continue;
            };
            let ledgers = match ledgers.entry(account.currency) {
                std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    vacant.insert(credit_ledger_accounts(database, writer, account.currency).await?)
                }
            };
            // The day's movements go to the ledger as one summary entry per chunk and
            // currency (net per role); each account's detail stays in its state and
            // statements, as a subledger's does.
            let net = summaries.entry(account.currency).or_default();
            for leg in postings.iter().flat_map(|posting| &posting.legs) {
                let signed = match leg.side {
                    Side::Debit => leg.amount.minor(),
                    Side::Credit => -leg.amount.minor(),
                };
                *net.entry(leg.role).or_insert(0) += signed;
            }
            progress.postings += i64::try_from(postings.len()).unwrap_or(0);
            for authorization in &expired {
                let steps = [Step::ReleaseHold {
                    reference: authorization.reference.clone(),
                }];
                let prefix = format!("credit-eod:{id}:{date}:release:{}", authorization.id);
                chunk.commands.extend(
                    resolve_steps(database, ledgers, &prefix, &authorization.reference, &steps)
                        .await
                        .map_err(|error| {
                            EndOfDayError::Store(StoreError::Corrupt(error.to_string()))
                        })?,
                );
            }
            if let Some(statement) = statement {
                report.statements += 1;
                chunk
                    .statements
                    .push((*id, statement.statement_date, encode_json(&statement)?));
            }
            for task in contacts {
                chunk.contacts.push((*id, task));
            }
            chunk
                .accounts
                .push((*id, *version, account.last_end_of_day, encode(&account)?));
        }
        for (currency, net) in &summaries {
            let mut summary = Posting::new(format!(
                "credit end of day {date}, accounts {cursor} to {last_id}"
            ));
            for (role, minor) in net {
                summary = summary.debit(*role, Amount::new(*minor, *currency));
            }
            if summary.is_empty() {
                continue;
            }
            let ledgers = &ledgers[currency];
            chunk.commands.push(LedgerCommand {
                key: format!("credit-eod:{date}:{cursor}:{currency}"),
                command: Command::PostEntry(ledgers.entry(&summary)),
                if_refused: IfRefused::Fail,
            });
        }
        progress.written = i64::try_from(chunk.accounts.len()).unwrap_or(i64::MAX);
        report.timings.post += started.elapsed();

        let started = Instant::now();
        let operation_key = format!("credit-eod:{date}:{cursor}");
        let written = write_chunk(
            database,
            &chunk,
            &operation_key,
            &date_text,
            progress,
            clock.now(),
        )
        .await?;
        report.timings.write += started.elapsed();
        if written == ChunkWritten::KeyTaken {
            return Err(EndOfDayError::OperationKeyTaken(operation_key));
        }
        if written == ChunkWritten::Conflict {
            // An operation changed one of the chunk's accounts since it was read: do the
            // chunk again from its new states (nothing of it was stored or posted).
            conflicts += 1;
            if conflicts > CHUNK_CONFLICTS_MAX {
                return Err(EndOfDayError::Store(StoreError::Corrupt(format!(
                    "accounts from {cursor} keep changing during end of day"
                ))));
            }
            continue;
        }
        report.accounts += u64::try_from(progress.accounts).unwrap_or(0);
        report.postings += u64::try_from(progress.postings).unwrap_or(0);
        report.accounts_written += u64::try_from(chunk.accounts.len()).unwrap_or(0);
        if let Some(limit) = options.crash_after_accounts {
            if report.accounts >= limit {
                // As a crash would: the chunk is stored, its postings are not yet sent.
                report.interrupted = true;
                return Ok(report);
            }
        }
        let started = Instant::now();
        if !chunk.commands.is_empty() {
            send_commands_unordered(writer, &chunk.commands)
                .await
                .map_err(|error| posting_error(&operation_key, error))?;
            mark_done(database, &operation_key).await?;
        }
        report.timings.post += started.elapsed();
        cursor = last_id + 1;
    }
    let finished_at = micros(clock.now());
    on_pool!(database, pool => {
        sqlx::query("UPDATE credit_end_of_day_runs SET finished_at = $2 WHERE business_date = $1")
            .bind(&date_text)
            .bind(finished_at)
            .execute(pool)
            .await
            .map_err(StoreError::from)?;
    });
    Ok(report)
}

/// Times a chunk may be redone because operations changed its accounts meanwhile.
const CHUNK_CONFLICTS_MAX: u32 = 1000;

/// What one chunk stores in its transaction.
#[derive(Default)]
struct ChunkWrite {
    /// Changed accounts: id, version read, end-of-day date, state.
    accounts: Vec<(CreditAccountId, i64, Option<Date>, String)>,
    commands: Vec<LedgerCommand>,
    statements: Vec<(CreditAccountId, Date, String)>,
    contacts: Vec<(CreditAccountId, ContactTask)>,
}

fn encode_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn posting_error(key: &str, error: OperationError) -> EndOfDayError {
    match error {
        OperationError::Store(error) => EndOfDayError::Store(error),
        OperationError::LedgerRefused { key, error } => EndOfDayError::Posting {
            key,
            error: WriteError::Ledger(error),
        },
        OperationError::LedgerConflict(message) => EndOfDayError::LedgerConflict(message),
        other => EndOfDayError::Posting {
            key: key.to_string(),
            error: WriteError::Unavailable(other.to_string()),
        },
    }
}

async fn mark_done(database: &Database, key: &str) -> Result<(), StoreError> {
    on_pool!(database, pool => {
        sqlx::query("UPDATE credit_operations SET status = 'done' WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// What became of a chunk's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkWritten {
    Written,
    /// An account's version changed since it was read: nothing was stored.
    Conflict,
    /// The operation key is held by an operation that is not end of day's: nothing was
    /// stored.
    KeyTaken,
}

/// Stores a chunk in one transaction: changed states (only where the version is still the
/// one read; otherwise nothing is stored), the pending operation holding its ledger
/// commands, statements, contact tasks and the run's cursor.
async fn write_chunk(
    database: &Database,
    chunk: &ChunkWrite,
    operation_key: &str,
    date: &str,
    progress: RunProgress,
    now: Timestamp,
) -> Result<ChunkWritten, StoreError> {
    let now = micros(now);
    on_pool!(database, pool => {
        let mut transaction = pool.begin().await?;
        for part in chunk.accounts.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from("WITH changed (id, version, last_end_of_day, state) AS (VALUES ");
            push_value_rows(&mut sql, part.len(), 4);
            sql.push_str(
                ") UPDATE credit_accounts SET state = changed.state, \
                 last_end_of_day = changed.last_end_of_day, version = credit_accounts.version + 1 \
                 FROM changed WHERE credit_accounts.id = changed.id \
                 AND credit_accounts.version = changed.version",
            );
            let mut query = sqlx::query(&sql);
            for (id, version, last, state) in part {
                query = query
                    .bind(*id)
                    .bind(*version)
                    .bind(last.map(|date| date.to_string()))
                    .bind(state.as_str());
            }
            let updated = query.execute(&mut *transaction).await?;
            if updated.rows_affected() != part.len() as u64 {
                transaction.rollback().await?;
                return Ok(ChunkWritten::Conflict);
            }
        }
        if !chunk.commands.is_empty() {
            // Only ever replaces an end-of-day operation: a client's operation under the same
            // key (made before `credit-` keys were refused) keeps its commands.
            let stored = sqlx::query(
                "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                 http_status, response, commands, status, created_at) \
                 VALUES ($1, -1, 'end_of_day', '', 200, '{}', $2, 'pending', $3) \
                 ON CONFLICT (key) DO UPDATE SET commands = excluded.commands, \
                 status = 'pending' WHERE credit_operations.kind = 'end_of_day'",
            )
            .bind(operation_key)
            .bind(encode_json(&chunk.commands)?)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
            if stored.rows_affected() != 1 {
                transaction.rollback().await?;
                return Ok(ChunkWritten::KeyTaken);
            }
        }
        for (id, statement_date, statement) in &chunk.statements {
            sqlx::query(
                "INSERT INTO credit_statements (account_id, statement_date, statement) \
                 VALUES ($1, $2, $3) ON CONFLICT (account_id, statement_date) DO NOTHING",
            )
            .bind(*id)
            .bind(statement_date.to_string())
            .bind(statement)
            .execute(&mut *transaction)
            .await?;
        }
        for (id, task) in &chunk.contacts {
            sqlx::query(
                "INSERT INTO credit_contact_tasks (account_id, business_date, kind, reason, \
                 bucket, days_past_due, amount_minor, currency, priority, status, created_at) \
                 VALUES ($1, $2, 'collections', $3, $4, $5, $6, $7, $8, 'open', $9) \
                 ON CONFLICT (account_id, business_date, kind, reason) DO NOTHING",
            )
            .bind(*id)
            .bind(date)
            .bind(&task.reason)
            .bind(bucket_name(task.bucket))
            .bind(task.days_past_due)
            .bind(task.amount.minor())
            .bind(task.amount.currency().code())
            .bind(i32::from(task.priority))
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        sqlx::query(
            "UPDATE credit_end_of_day_runs SET next_account = $2, \
             accounts_done = accounts_done + $3, accounts_written = accounts_written + $4, \
             postings = postings + $5, failures = failures + $6 WHERE business_date = $1",
        )
        .bind(date)
        .bind(progress.next_account)
        .bind(progress.accounts)
        .bind(progress.written)
        .bind(progress.postings)
        .bind(progress.failures)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
    });
    Ok(ChunkWritten::Written)
}

/// Finds or starts the run of `date`: its cursor, whether it is a resumption, whether it
/// has finished. Refuses a date out of order.
async fn start_run(
    database: &Database,
    date: Date,
    now: Timestamp,
) -> Result<(i64, bool, bool), EndOfDayError> {
    let runs = database.end_of_day_runs().await?;
    if let Some((_, next, finished)) = runs.iter().find(|run| run.0 == date) {
        return Ok((*next, true, *finished));
    }
    if let Some((last, _, finished)) = runs.last() {
        if *last > date {
            return Err(EndOfDayError::OutOfOrder {
                last: last.to_string(),
                requested: date.to_string(),
            });
        }
        let previous = date
            .checked_sub(1.day())
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        if *last != previous || !finished {
            return Err(EndOfDayError::PreviousUnfinished {
                previous: previous.to_string(),
                requested: date.to_string(),
            });
        }
    }
    let started_at = micros(now);
    on_pool!(database, pool => {
        sqlx::query(
            "INSERT INTO credit_end_of_day_runs (business_date, next_account, accounts_done, \
             accounts_written, postings, failures, started_at) VALUES ($1, 0, 0, 0, 0, 0, $2) \
             ON CONFLICT (business_date) DO NOTHING",
        )
        .bind(date.to_string())
        .bind(started_at)
        .execute(pool)
        .await
        .map_err(StoreError::from)?;
    });
    Ok((0, false, false))
}
