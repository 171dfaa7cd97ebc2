//! The end-of-day run of the credit service: every account's day (statements, interest,
//! penalties, delinquency, expired authorisations) computed in parallel chunks and posted
//! to the ledger, resumable after a crash.
//!
//! # Decisions
//!
//! - **Resuming, and operations meanwhile.** A run processes accounts in chunks: read (with
//!   each account's version), compute in parallel (one scoped thread per core), then one
//!   transaction writes the changed accounts (each only if its version is still the one
//!   read: an HTTP operation may have changed it, and then the chunk is computed again),
//!   the chunk's ledger commands as a pending credit operation, its statements and contact
//!   tasks, and the run's cursor. Then the commands go to the ledger writer and the
//!   operation is marked done. A crash after the commit leaves a pending operation, which
//!   the resumed run (or the credit service's start) finishes; a crash before it leaves
//!   nothing. See `operations` for the pattern.
//! - **Not rewriting what did not change**: see `tally_store::credit` (an account is written
//!   only when something but its date changed).
//! - **Summary entries.** A chunk's movements are posted as one entry per currency, net per
//!   ledger role (`credit-eod:{date}:{first account}:{currency}`), the way a subledger
//!   posts to a general ledger: the per-account detail is in each account's state and
//!   statements, and the books still equal the sum of the accounts (tested). One entry per
//!   chunk instead of one per account-posting keeps the ledger writer out of the run's time.
//! - **Ledger accounts** are created once per role and currency through the writer (see
//!   `ledger_accounts`).

use crate::credit::ledger_accounts::{credit_ledger_accounts, CreditLedgerAccounts};
use crate::credit::operations::{
    finish_pending, resolve_steps, send_commands_unordered, IfRefused, LedgerCommand,
    OperationError, Step,
};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tally_core::{Amount, Clock, Currency};
use tally_credit::{
    Account, AccountPolicy, Authorization, ContactTask, DayOutcome, LedgerRole, Posting, Statement,
};
use tally_ledger::{Command, Side};
use tally_store::credit::{
    decode, effective_last, encode, ChunkWrite, ChunkWritten, CreditAccountId, RunProgress,
};
use tally_store::{Database, LedgerWriter, StoreError, WriteError};

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
        let rows = database
            .credit_accounts_from(cursor, options.chunk_size)
            .await?;
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
        let mut commands: Vec<LedgerCommand> = Vec::new();
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
                commands.extend(
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
            commands.push(LedgerCommand {
                key: format!("credit-eod:{date}:{cursor}:{currency}"),
                command: Command::PostEntry(ledgers.entry(&summary)),
                if_refused: IfRefused::Fail,
            });
        }
        progress.written = i64::try_from(chunk.accounts.len()).unwrap_or(i64::MAX);
        report.timings.post += started.elapsed();

        let started = Instant::now();
        let operation_key = format!("credit-eod:{date}:{cursor}");
        if !commands.is_empty() {
            chunk.commands = Some(encode_json(&commands)?);
        }
        let written = database
            .write_end_of_day_chunk(&chunk, &operation_key, &date_text, progress, clock.now())
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
        if !commands.is_empty() {
            send_commands_unordered(writer, &commands)
                .await
                .map_err(|error| posting_error(&operation_key, error))?;
            database.mark_credit_operation_done(&operation_key).await?;
        }
        report.timings.post += started.elapsed();
        cursor = last_id + 1;
    }
    database.finish_end_of_day_run(date, clock.now()).await?;
    Ok(report)
}

/// Times a chunk may be redone because operations changed its accounts meanwhile.
const CHUNK_CONFLICTS_MAX: u32 = 1000;

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
    database.insert_end_of_day_run(date, now).await?;
    Ok((0, false, false))
}
