//! Operations on credit accounts (open, authorise, capture, void, repay, refund, pay off,
//! bill installment, write off, limits, freeze, close): each changes an account's state and
//! moves money in the ledger, exactly once, even across crashes and retries.
//!
//! # How an operation is applied
//!
//! 1. **Replay.** The client's idempotency key names the operation. A key seen before
//!    answers what it answered the first time (same request) or `idempotency_key_reused`
//!    (another request). Refusals are not stored: a refused request may succeed later.
//! 2. **Apply.** The account is read with its version, the pure credit rules run on a copy,
//!    giving the answer and the ledger steps (postings, holds).
//! 3. **Intent.** One transaction writes the new state (only if the version is still the
//!    one read: another writer, such as end of day, makes this one start again) and the
//!    operation row with its ledger commands, status `pending`.
//! 4. **Ledger.** The commands go to the ledger writer under keys derived from the
//!    operation's key (`credit:{key}:{index}`), then the row becomes `done`.
//!
//! A crash between 3 and 4 leaves a pending row; it is finished (its commands sent again,
//! which the ledger replays or applies once) before anything else touches the account, at
//! start, and before end of day. So the books never hold a posting whose account state was
//! not saved, and never miss one that was.
//!
//! Within one process, operations on one account are also serialised by a lock, so the
//! version check only ever fails against another process or end of day.

use crate::credit::{
    bring_up_to_runs, credit_ledger_accounts, decode, encode, on_pool, CreditAccountId,
    CreditLedgerAccounts, EndOfDayError, CREDIT_SERVICE,
};
use crate::database::Database;
use crate::error::{StoreError, WriteError};
use crate::rows::micros;
use crate::writer::LedgerWriter;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tally_core::{Amount, Currency, HoldId};
use tally_credit::{Account, AccountPolicy, Catalog, CreditError, LedgerRole, Posting, Product};
use tally_ledger::{Command, LedgerError, NewHold, Outcome};

/// Why a credit operation was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The credit rules refused it; nothing changed.
    #[error(transparent)]
    Credit(#[from] CreditError),
    #[error("credit account {0} does not exist")]
    AccountNotFound(CreditAccountId),
    #[error("product {0:?} is not in the catalog")]
    ProductNotFound(String),
    #[error("product {0:?} exists already; products are never changed, add one with a new code")]
    ProductExists(String),
    #[error("idempotency key {0:?} was already used for a different request")]
    KeyReused(String),
    /// Other writers kept changing the account; the operation was not applied.
    #[error("credit account {0} changed under this operation too often; retry")]
    Contended(CreditAccountId),
    /// The ledger could not be reached; the operation is stored as pending and is finished
    /// by a retry with the same key, or at the next start.
    #[error("the ledger is unavailable ({0}); retry with the same idempotency key")]
    LedgerUnavailable(String),
    /// The ledger refused a command the credit rules produced: a bug or a hand-made change
    /// to the credit ledger accounts. The operation stays pending and the account is blocked
    /// until an operator resolves it.
    #[error("the ledger refused {key}: {error}")]
    LedgerRefused { key: String, error: LedgerError },
    /// A ledger idempotency key or account code the credit service needs is held by
    /// something else (a key taken for another command, an account under a credit code that
    /// is not what credit needs). Retrying cannot help: the operation stays pending and the
    /// account (or currency) is blocked until an operator resolves it.
    #[error("{0}")]
    LedgerConflict(String),
    #[error("{0}")]
    Invalid(String),
}

impl OperationError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            OperationError::Store(_) => "storage_unavailable",
            OperationError::Credit(error) => error.code(),
            OperationError::AccountNotFound(_) => "credit_account_not_found",
            OperationError::ProductNotFound(_) => "credit_product_not_found",
            OperationError::ProductExists(_) => "credit_product_exists",
            OperationError::KeyReused(_) => "idempotency_key_reused",
            OperationError::Contended(_) => "credit_account_contended",
            OperationError::LedgerUnavailable(_) => "ledger_unavailable",
            OperationError::LedgerRefused { .. } => "credit_ledger_refused",
            OperationError::LedgerConflict(_) => "credit_ledger_conflict",
            OperationError::Invalid(_) => "invalid_request",
        }
    }
}

impl From<EndOfDayError> for OperationError {
    fn from(error: EndOfDayError) -> Self {
        match error {
            EndOfDayError::Store(error) => OperationError::Store(error),
            EndOfDayError::Posting { key, error } => match error {
                WriteError::Ledger(error) => OperationError::LedgerRefused { key, error },
                WriteError::KeyReused(_) => OperationError::LedgerConflict(key_taken(&key)),
                other => OperationError::LedgerUnavailable(other.to_string()),
            },
            EndOfDayError::LedgerConflict(message) => OperationError::LedgerConflict(message),
            other => OperationError::Invalid(other.to_string()),
        }
    }
}

/// A ledger movement an operation asks for, before ledger ids are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A journal entry.
    Post(Posting),
    /// Reserve `amount` from the receivable to the merchant payable (the purchase being
    /// authorised), released by the ledger itself two days after `expires_on` if end of day
    /// has not released it first.
    Hold {
        amount: Amount,
        expires_on: Date,
        description: String,
    },
    /// Post `amount` of the hold made by operation `reference` (the rest is released). If
    /// the ledger refuses (the hold was voided or expired there), `otherwise` is posted.
    CaptureHold {
        reference: String,
        amount: Amount,
        otherwise: Posting,
    },
    /// Release the hold made by operation `reference`; one already released is fine.
    ReleaseHold { reference: String },
}

/// What to do when the ledger refuses a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IfRefused {
    Fail,
    Ignore,
    Instead { key: String, command: Command },
}

/// A ledger command with its idempotency key, as stored in a pending operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerCommand {
    pub key: String,
    pub command: Command,
    pub if_refused: IfRefused,
}

/// The answer to an operation: HTTP status and JSON body, stored and replayed as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The idempotency key of the ledger hold an authorisation made.
pub fn hold_key(reference: &str) -> String {
    format!("credit:{reference}:hold")
}

/// The fingerprint of a request: its kind, account and body.
pub fn request_hash(kind: &str, account: CreditAccountId, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update(account.to_le_bytes());
    hasher.update(body.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// When the ledger drops a credit hold on its own: two days after the authorisation's last
/// day, so that end of day (which releases it the night after that day) always comes first.
fn ledger_hold_expiry(expires_on: Date) -> Result<Timestamp, StoreError> {
    expires_on
        .checked_add(2.days())
        .and_then(|day| day.to_zoned(TimeZone::UTC))
        .map(|zoned| zoned.timestamp())
        .map_err(|error| StoreError::Corrupt(format!("hold expiry: {error}")))
}

/// Ledger accounts per currency, created once.
#[derive(Default)]
pub struct LedgerAccountsCache {
    by_currency: tokio::sync::Mutex<HashMap<Currency, CreditLedgerAccounts>>,
}

impl LedgerAccountsCache {
    pub async fn get(
        &self,
        database: &Database,
        writer: &LedgerWriter,
        currency: Currency,
    ) -> Result<CreditLedgerAccounts, OperationError> {
        let mut cache = self.by_currency.lock().await;
        if let Some(found) = cache.get(&currency) {
            return Ok(found.clone());
        }
        let accounts = credit_ledger_accounts(database, writer, currency).await?;
        cache.insert(currency, accounts.clone());
        Ok(accounts)
    }
}

/// The id of the ledger hold made under `key`, from the ledger's idempotency record.
async fn hold_id_of(database: &Database, key: &str) -> Result<HoldId, OperationError> {
    let row: Option<(String,)> = on_pool!(database, pool => {
        sqlx::query_as("SELECT outcome FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from)?
    });
    let Some((outcome,)) = row else {
        return Err(StoreError::Corrupt(format!("the ledger has no hold under {key}")).into());
    };
    match serde_json::from_str::<Outcome>(&outcome) {
        Ok(Outcome::Hold(hold)) => Ok(hold.id),
        _ => Err(StoreError::Corrupt(format!("the outcome under {key} is not a hold")).into()),
    }
}

/// Turns steps into ledger commands under keys `{prefix}:{index}` (holds under
/// [`hold_key`]).
pub async fn resolve_steps(
    database: &Database,
    ledgers: &CreditLedgerAccounts,
    prefix: &str,
    reference: &str,
    steps: &[Step],
) -> Result<Vec<LedgerCommand>, OperationError> {
    let mut commands = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let key = format!("{prefix}:{index}");
        commands.push(match step {
            Step::Post(posting) => LedgerCommand {
                key,
                command: Command::PostEntry(ledgers.entry(posting)),
                if_refused: IfRefused::Fail,
            },
            Step::Hold {
                amount,
                expires_on,
                description,
            } => LedgerCommand {
                key: hold_key(reference),
                command: Command::CreateHold(NewHold {
                    debit_account_id: ledgers.account_of(LedgerRole::CustomerReceivable),
                    credit_account_id: ledgers.account_of(LedgerRole::MerchantPayable),
                    amount: *amount,
                    expires_at: ledger_hold_expiry(*expires_on)?,
                    description: description.clone(),
                    metadata: BTreeMap::from([("credit_operation".into(), reference.into())]),
                }),
                if_refused: IfRefused::Fail,
            },
            Step::CaptureHold {
                reference,
                amount,
                otherwise,
            } => LedgerCommand {
                command: Command::PostHold {
                    hold_id: hold_id_of(database, &hold_key(reference)).await?,
                    amount: Some(*amount),
                },
                if_refused: IfRefused::Instead {
                    key: format!("{key}:entry"),
                    command: Command::PostEntry(ledgers.entry(otherwise)),
                },
                key,
            },
            Step::ReleaseHold { reference } => LedgerCommand {
                command: Command::VoidHold {
                    hold_id: hold_id_of(database, &hold_key(reference)).await?,
                },
                if_refused: IfRefused::Ignore,
                key,
            },
        });
    }
    Ok(commands)
}

/// Sends stored commands to the ledger in order.
pub async fn send_commands(
    writer: &LedgerWriter,
    commands: &[LedgerCommand],
) -> Result<(), OperationError> {
    for command in commands {
        let Some(error) = submit(writer, &command.key, &command.command).await? else {
            continue;
        };
        match &command.if_refused {
            IfRefused::Ignore => {}
            IfRefused::Fail => {
                return Err(OperationError::LedgerRefused {
                    key: command.key.clone(),
                    error,
                })
            }
            IfRefused::Instead { key, command } => {
                if let Some(error) = submit(writer, key, command).await? {
                    return Err(OperationError::LedgerRefused {
                        key: key.clone(),
                        error,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Sends one command: `None` when the ledger applied it (now or before, under its key), the
/// ledger's refusal otherwise; an error when it could not be sent or the key holds another
/// command.
async fn submit(
    writer: &LedgerWriter,
    key: &str,
    command: &Command,
) -> Result<Option<LedgerError>, OperationError> {
    match writer
        .submit_as(CREDIT_SERVICE, key.to_string(), command.clone())
        .await
    {
        Ok(_) => Ok(None),
        Err(WriteError::Ledger(error)) => Ok(Some(error)),
        // Not an outage: the key will hold that other command forever, so a retry can never
        // succeed (it is refused to clients, see `RESERVED_KEY_PREFIXES`; this can only be a
        // key taken before that, or a bug).
        Err(WriteError::KeyReused(key)) => Err(OperationError::LedgerConflict(key_taken(&key))),
        Err(other) => Err(OperationError::LedgerUnavailable(other.to_string())),
    }
}

pub(crate) fn key_taken(key: &str) -> String {
    format!(
        "ledger idempotency key {key:?} holds a different command than the credit service's; \
         an operator must resolve it"
    )
}

/// Sends independent commands all at once, so the ledger writer commits them in batches.
pub async fn send_commands_unordered(
    writer: &LedgerWriter,
    commands: &[LedgerCommand],
) -> Result<(), OperationError> {
    let mut pending = tokio::task::JoinSet::new();
    for command in commands {
        let writer = writer.clone();
        let command = command.clone();
        pending.spawn(async move { send_commands(&writer, std::slice::from_ref(&command)).await });
    }
    let mut first_error = None;
    while let Some(joined) = pending.join_next().await {
        let result = joined
            .map_err(|_| OperationError::from(StoreError::Corrupt("a ledger task panicked".into())))
            .and_then(|result| result);
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Sends a pending operation's commands and marks it done.
pub async fn finish_operation(
    database: &Database,
    writer: &LedgerWriter,
    key: &str,
    commands: &[LedgerCommand],
) -> Result<(), OperationError> {
    send_commands(writer, commands).await?;
    on_pool!(database, pool => {
        sqlx::query("UPDATE credit_operations SET status = 'done' WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await
            .map_err(StoreError::from)?;
    });
    Ok(())
}

fn decode_commands(key: &str, text: &str) -> Result<Vec<LedgerCommand>, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("commands of operation {key}: {error}")))
}

/// Finishes every pending operation (of one account, or all when `account` is `None`).
/// Returns how many were finished.
pub async fn finish_pending(
    database: &Database,
    writer: &LedgerWriter,
    account: Option<CreditAccountId>,
) -> Result<usize, OperationError> {
    let rows: Vec<(String, String)> = on_pool!(database, pool => {
        match account {
            Some(id) => sqlx::query_as(
                "SELECT key, commands FROM credit_operations \
                 WHERE account_id = $1 AND status = 'pending' ORDER BY created_at, key",
            )
            .bind(id)
            .fetch_all(pool)
            .await,
            None => sqlx::query_as(
                "SELECT key, commands FROM credit_operations WHERE status = 'pending' \
                 ORDER BY created_at, key",
            )
            .fetch_all(pool)
            .await,
        }
        .map_err(StoreError::from)?
    });
    for (key, commands) in &rows {
        finish_operation(database, writer, key, &decode_commands(key, commands)?).await?;
    }
    Ok(rows.len())
}

/// An account as read for an operation.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub id: CreditAccountId,
    pub customer_id: Option<String>,
    pub version: i64,
    pub account: Account,
}

/// What an operation's rules see besides the account.
pub struct Context<'a> {
    pub id: CreditAccountId,
    pub customer_id: Option<&'a str>,
    pub date: Date,
    pub catalog: &'a Catalog,
    pub policy: &'a AccountPolicy,
    /// The operation's idempotency key (an authorisation records it as its reference).
    pub key: &'a str,
}

/// What an operation's rules produce: the answer and the ledger steps.
pub struct Applied {
    pub status: u16,
    pub body: Value,
    pub steps: Vec<Step>,
}

/// Locks per account stripe: operations on one account in one process run one at a time.
const LOCK_STRIPES: usize = 256;
/// Attempts of an operation whose version check failed.
const ATTEMPTS_MAX: usize = 5;

/// The credit service's storage side: accounts, operations, statements and tasks.
pub struct CreditOperations {
    database: Database,
    writer: LedgerWriter,
    /// The catalog file's products and those added through the API.
    catalog: std::sync::RwLock<Arc<Catalog>>,
    policy: AccountPolicy,
    ledgers: LedgerAccountsCache,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// Tests only: stop after the intent is stored, as a crash would.
    stop_before_ledger: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for CreditOperations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreditOperations")
            .field("products", &self.catalog().products.len())
            .finish()
    }
}

impl CreditOperations {
    /// The service over `database`, finishing operations a crash left pending.
    pub async fn start(
        database: Database,
        writer: LedgerWriter,
        catalog: Catalog,
        policy: AccountPolicy,
    ) -> Result<CreditOperations, OperationError> {
        policy.validate()?;
        finish_pending(&database, &writer, None).await?;
        let mut catalog = catalog;
        let stored: Vec<(String, String)> = on_pool!(&database, pool => {
            sqlx::query_as("SELECT code, definition FROM credit_products ORDER BY code")
                .fetch_all(pool)
                .await
                .map_err(StoreError::from)?
        });
        for (code, definition) in stored {
            let product: Product = serde_json::from_str(&definition)
                .map_err(|error| StoreError::Corrupt(format!("product {code}: {error}")))?;
            if catalog.product(&code).is_none() {
                catalog.products.push(product);
            }
        }
        Ok(CreditOperations {
            database,
            writer,
            catalog: std::sync::RwLock::new(Arc::new(catalog)),
            policy,
            ledgers: LedgerAccountsCache::default(),
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            stop_before_ledger: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Tests only: when set, operations stop after their intent is stored and before the
    /// ledger hears of them, as a crash at that point would, answering `ledger_unavailable`.
    pub fn stop_before_ledger(&self, stop: bool) {
        self.stop_before_ledger
            .store(stop, std::sync::atomic::Ordering::SeqCst);
    }

    /// The products on offer now.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(catalog) => catalog.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Adds a product (validated; its code must be new). Products are never changed or
    /// removed: plans priced by them keep their own schedule either way.
    pub async fn add_product(
        &self,
        product: Product,
        now: Timestamp,
    ) -> Result<(), OperationError> {
        product.validate()?;
        if self.catalog().product(&product.code).is_some() {
            return Err(OperationError::ProductExists(product.code));
        }
        let definition = serde_json::to_string(&product)
            .map_err(|error| StoreError::Corrupt(format!("product: {error}")))?;
        let inserted: Result<_, sqlx::Error> = on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO credit_products (code, definition, created_at) VALUES ($1, $2, $3)",
            )
            .bind(&product.code)
            .bind(&definition)
            .bind(micros(now))
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted {
            Ok(()) => {}
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                return Err(OperationError::ProductExists(product.code));
            }
            Err(error) => return Err(StoreError::from(error).into()),
        }
        let mut catalog = match self.catalog.write() {
            Ok(catalog) => catalog,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = Catalog::clone(&catalog);
        next.products.push(product);
        *catalog = Arc::new(next);
        Ok(())
    }

    pub fn policy(&self) -> &AccountPolicy {
        &self.policy
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The stored answer of operation `key`, finishing it first if it is pending; `None`
    /// for a new key; `KeyReused` when the key was used for another request.
    pub async fn replayed(
        &self,
        key: &str,
        request_hash: &str,
    ) -> Result<Option<Answer>, OperationError> {
        let row: Option<(String, i32, String, String, String)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT request_hash, http_status, response, status, commands \
                 FROM credit_operations WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from)?
        });
        let Some((hash, status, response, state, commands)) = row else {
            return Ok(None);
        };
        if hash != request_hash {
            return Err(OperationError::KeyReused(key.into()));
        }
        if state == "pending" {
            finish_operation(
                &self.database,
                &self.writer,
                key,
                &decode_commands(key, &commands)?,
            )
            .await?;
        }
        let body = serde_json::from_str(&response)
            .map_err(|error| StoreError::Corrupt(format!("answer of {key}: {error}")))?;
        Ok(Some(Answer {
            status: u16::try_from(status).unwrap_or(500),
            body,
        }))
    }

    /// Reads an account with its version, its end-of-day date brought up to the runs that
    /// covered it.
    pub async fn load(&self, id: CreditAccountId) -> Result<StoredAccount, OperationError> {
        let runs = self.database.runs_covering(id).await?;
        let row: Option<(i64, Option<String>, String)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT version, customer_id, state FROM credit_accounts WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from)?
        });
        let Some((version, customer_id, state)) = row else {
            return Err(OperationError::AccountNotFound(id));
        };
        let mut account = decode(id, &state)?;
        bring_up_to_runs(&mut account, runs);
        Ok(StoredAccount {
            id,
            customer_id,
            version,
            account,
        })
    }

    /// The customer an account belongs to (`None` for accounts loaded in bulk), reading that
    /// one column: it never changes after opening, so checks that need only it (the block
    /// list, a case's customer) need not read and decode the whole state.
    pub async fn customer_of(&self, id: CreditAccountId) -> Result<Option<String>, OperationError> {
        let row: Option<(Option<String>,)> = on_pool!(&self.database, pool => {
            sqlx::query_as("SELECT customer_id FROM credit_accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from)?
        });
        row.map(|(customer_id,)| customer_id)
            .ok_or(OperationError::AccountNotFound(id))
    }

    /// Opens an account (or records a declined application when `account` is `None`) under
    /// idempotency key `key`; `answer` builds the reply from the new account's id.
    pub async fn open(
        &self,
        key: &str,
        request_hash: &str,
        customer_id: Option<&str>,
        account: Option<&Account>,
        now: Timestamp,
        answer: impl Fn(Option<CreditAccountId>) -> Answer,
    ) -> Result<Answer, OperationError> {
        if let Some(replay) = self.replayed(key, request_hash).await? {
            return Ok(replay);
        }
        let state = account.map(encode).transpose()?;
        let currency = account.map(|account| account.currency.code().to_string());
        let postgres = matches!(self.database, Database::Postgres(_));
        for _ in 0..ATTEMPTS_MAX {
            let inserted: Result<Answer, sqlx::Error> = on_pool!(&self.database, pool => {
                async {
                    let mut transaction = pool.begin().await?;
                    if postgres {
                        // New ids are the largest plus one, so openings take turns (SQLite's
                        // write lock does this by itself); the two-key lock space is not the
                        // ledger writer's. READ COMMITTED (whatever the server's default), so
                        // that the largest id is read after the lock, not before it.
                        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .execute(&mut *transaction)
                            .await?;
                        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 1)")
                            .execute(&mut *transaction)
                            .await?;
                    }
                    let id = match &state {
                        Some(state) => {
                            let (id,): (i64,) = sqlx::query_as(
                                "INSERT INTO credit_accounts (id, currency, last_end_of_day, state, \
                                 version, customer_id) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 \
                                 FROM credit_accounts), $1, NULL, $2, 0, $3) RETURNING id",
                            )
                            .bind(&currency)
                            .bind(state)
                            .bind(customer_id)
                            .fetch_one(&mut *transaction)
                            .await?;
                            Some(id)
                        }
                        None => None,
                    };
                    let answer = answer(id);
                    sqlx::query(
                        "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                         http_status, response, commands, status, created_at) \
                         VALUES ($1, $2, 'open', $3, $4, $5, '[]', 'done', $6)",
                    )
                    .bind(key)
                    .bind(id.unwrap_or(0))
                    .bind(request_hash)
                    .bind(i32::from(answer.status))
                    .bind(answer.body.to_string())
                    .bind(micros(now))
                    .execute(&mut *transaction)
                    .await?;
                    transaction.commit().await?;
                    Ok(answer)
                }
                .await
            });
            match inserted {
                Ok(answer) => return Ok(answer),
                // The same key raced in from elsewhere (answer as it did), or two new accounts
                // took one id (try again with the next).
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    if let Some(replay) = self.replayed(key, request_hash).await? {
                        return Ok(replay);
                    }
                }
                Err(error) => return Err(StoreError::from(error).into()),
            }
        }
        Err(OperationError::Contended(0))
    }

    /// Applies operation `kind` to account `id` under idempotency key `key` (see the module
    /// documentation for the steps).
    #[allow(clippy::too_many_arguments)]
    pub async fn operate(
        &self,
        key: &str,
        kind: &'static str,
        id: CreditAccountId,
        request_hash: &str,
        date: Date,
        now: Timestamp,
        rules: impl Fn(&mut Account, &Context<'_>) -> Result<Applied, OperationError>,
    ) -> Result<Answer, OperationError> {
        if let Some(replay) = self.replayed(key, request_hash).await? {
            return Ok(replay);
        }
        let stripe = usize::try_from(id.rem_euclid(LOCK_STRIPES as i64)).unwrap_or(0);
        let _guard = self.stripes[stripe].lock().await;
        // The same request may have been applied while this one waited for the lock (a
        // client sending it twice at once): it answers what that one answered.
        if let Some(replay) = self.replayed(key, request_hash).await? {
            return Ok(replay);
        }
        for _ in 0..ATTEMPTS_MAX {
            finish_pending(&self.database, &self.writer, Some(id)).await?;
            let stored = self.load(id).await?;
            let mut account = stored.account.clone();
            let catalog = self.catalog();
            let context = Context {
                id,
                customer_id: stored.customer_id.as_deref(),
                date,
                catalog: &catalog,
                policy: &self.policy,
                key,
            };
            let applied = match rules(&mut account, &context) {
                Ok(applied) => applied,
                // Another process may have applied the same request meanwhile (and changed
                // the account so that the rules now refuse it): its answer is the answer.
                Err(refusal) => {
                    return match self.replayed(key, request_hash).await? {
                        Some(replay) => Ok(replay),
                        None => Err(refusal),
                    }
                }
            };
            let ledgers = self
                .ledgers
                .get(&self.database, &self.writer, account.currency)
                .await?;
            let commands = resolve_steps(
                &self.database,
                &ledgers,
                &format!("credit:{key}"),
                key,
                &applied.steps,
            )
            .await?;
            let commands_text = serde_json::to_string(&commands)
                .map_err(|error| StoreError::Corrupt(format!("commands: {error}")))?;
            let state = encode(&account)?;
            let status = if commands.is_empty() {
                "done"
            } else {
                "pending"
            };
            let written: Result<bool, sqlx::Error> = on_pool!(&self.database, pool => {
                async {
                    let mut transaction = pool.begin().await?;
                    let updated = sqlx::query(
                        "UPDATE credit_accounts SET state = $1, last_end_of_day = $2, \
                         version = version + 1 WHERE id = $3 AND version = $4",
                    )
                    .bind(&state)
                    .bind(account.last_end_of_day.map(|date| date.to_string()))
                    .bind(id)
                    .bind(stored.version)
                    .execute(&mut *transaction)
                    .await?;
                    if updated.rows_affected() != 1 {
                        transaction.rollback().await?;
                        return Ok(false);
                    }
                    sqlx::query(
                        "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                         http_status, response, commands, status, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(key)
                    .bind(id)
                    .bind(kind)
                    .bind(request_hash)
                    .bind(i32::from(applied.status))
                    .bind(applied.body.to_string())
                    .bind(&commands_text)
                    .bind(status)
                    .bind(micros(now))
                    .execute(&mut *transaction)
                    .await?;
                    transaction.commit().await?;
                    Ok(true)
                }
                .await
            });
            match written {
                Ok(true) => {}
                Ok(false) => continue,
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    // The same key was applied by another process meanwhile.
                    return match self.replayed(key, request_hash).await? {
                        Some(replay) => Ok(replay),
                        None => Err(OperationError::Contended(id)),
                    };
                }
                Err(error) => return Err(StoreError::from(error).into()),
            }
            if !commands.is_empty() {
                if self
                    .stop_before_ledger
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    return Err(OperationError::LedgerUnavailable(
                        "stopped before the ledger (test hook)".into(),
                    ));
                }
                finish_operation(&self.database, &self.writer, key, &commands).await?;
            }
            return Ok(Answer {
                status: applied.status,
                body: applied.body,
            });
        }
        Err(OperationError::Contended(id))
    }

    /// Statements of an account, newest first.
    pub async fn statements(
        &self,
        id: CreditAccountId,
        limit: i64,
    ) -> Result<Vec<Value>, OperationError> {
        let rows: Vec<(String,)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT statement FROM credit_statements WHERE account_id = $1 \
                 ORDER BY statement_date DESC LIMIT $2",
            )
            .bind(id)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from)?
        });
        rows.into_iter()
            .map(|(text,)| {
                serde_json::from_str(&text)
                    .map_err(|error| StoreError::Corrupt(format!("statement: {error}")).into())
            })
            .collect()
    }

    /// Open contact tasks, most urgent first.
    pub async fn open_tasks(&self, limit: i64) -> Result<Vec<ContactTaskRow>, OperationError> {
        let rows: Vec<ContactTaskRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT task.id, task.account_id, account.customer_id, task.business_date, \
                 task.kind, task.reason, task.bucket, task.days_past_due, task.amount_minor, \
                 task.currency, task.priority, task.status, task.note \
                 FROM credit_contact_tasks AS task \
                 LEFT JOIN credit_accounts AS account ON account.id = task.account_id \
                 WHERE task.status = 'open' ORDER BY task.priority, task.id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from)?
        });
        Ok(rows)
    }

    /// Adds a task by hand (an account-anomaly alert or a callback).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_task(
        &self,
        account_id: CreditAccountId,
        date: Date,
        kind: &str,
        reason: &str,
        amount: Amount,
        priority: i32,
        now: Timestamp,
    ) -> Result<i64, OperationError> {
        let stored = self.load(account_id).await?;
        let (id,): (i64,) = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "INSERT INTO credit_contact_tasks (account_id, business_date, kind, reason, \
                 bucket, days_past_due, amount_minor, currency, priority, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10) RETURNING id",
            )
            .bind(account_id)
            .bind(date.to_string())
            .bind(kind)
            .bind(reason)
            .bind(bucket_name(stored.account.bucket))
            .bind(stored.account.days_past_due)
            .bind(amount.minor())
            .bind(amount.currency().code())
            .bind(priority)
            .bind(micros(now))
            .fetch_one(pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(database) if database.is_unique_violation() => {
                    OperationError::Invalid(format!(
                        "a {kind} task for this reason already exists for account {account_id} on {date}"
                    ))
                }
                _ => StoreError::from(error).into(),
            })?
        });
        Ok(id)
    }

    /// Closes an open task with a note; false when there is no open task `id`.
    pub async fn close_task(
        &self,
        id: i64,
        note: &str,
        now: Timestamp,
    ) -> Result<bool, OperationError> {
        let done: u64 = on_pool!(&self.database, pool => {
            sqlx::query(
                "UPDATE credit_contact_tasks SET status = 'closed', closed_at = $2, note = $3 \
                 WHERE id = $1 AND status = 'open'",
            )
            .bind(id)
            .bind(micros(now))
            .bind(note)
            .execute(pool)
            .await
            .map_err(StoreError::from)?
            .rows_affected()
        });
        Ok(done == 1)
    }
}

/// A contact task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ContactTaskRow {
    pub id: i64,
    pub account_id: i64,
    /// Who to call: the account's customer (their contact details are read through the
    /// customer routes, masked or with `pii:read`).
    pub customer_id: Option<String>,
    pub business_date: String,
    pub kind: String,
    pub reason: String,
    pub bucket: String,
    pub days_past_due: i32,
    pub amount_minor: i64,
    pub currency: String,
    pub priority: i32,
    pub status: String,
    pub note: Option<String>,
}

/// The stable name of a bucket (`current`, `m1`, … `m6_plus`).
pub fn bucket_name(bucket: tally_credit::Bucket) -> String {
    serde_json::to_value(bucket)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{bucket:?}"))
}
