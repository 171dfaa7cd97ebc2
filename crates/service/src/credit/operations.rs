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
//! Steps 3 and 4's writes go through a group-commit task (`tally_store::credit_operations::
//! writer::CreditWriter`): the operations and completions of many requests share one
//! transaction and one disk flush, each with its own version check and key (a refused one
//! writes nothing of itself), and each request goes on only once its write is committed.
//! Why: one commit each cost a checkout's credit leg four durable commits of its own, all
//! behind SQLite's single write lock.
//!
//! A crash between 3 and 4 leaves a pending row; it is finished (its commands sent again,
//! which the ledger replays or applies once) before anything else touches the account, at
//! start, and before end of day. So the books never hold a posting whose account state was
//! not saved, and never miss one that was.
//!
//! Within one process, operations on one account are also serialised by a lock, so the
//! version check only ever fails against another process or end of day.

use crate::credit::end_of_day::EndOfDayError;
use crate::credit::ledger_accounts::{
    credit_ledger_accounts, CreditLedgerAccounts, CREDIT_SERVICE,
};
use crate::intent::{self, intent_key, request_fingerprint, step_key, LockStripes, Unsent};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tally_core::{Amount, Currency, HoldId};
use tally_credit::{Account, AccountPolicy, Catalog, CreditError, LedgerRole, Posting, Product};
use tally_store::credit::CreditAccountId;
use tally_store::credit_operations::writer::CreditWriter;
use tally_store::credit_operations::{CreditWrite, NewContactTask, NewOperation, OperationWritten};
use tally_store::{Database, LedgerWriter, StoreError, WriteError};

use tally_ledger::{Command, LedgerError, NewHold, Outcome};
pub use tally_store::credit::bucket_name;
pub use tally_store::credit_operations::{ContactTaskRow, StoredAccount};

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
    /// A confirmed stolen account's customer buys nothing more.
    #[error("customer {0} is on the risk block list")]
    CustomerBlocked(String),
    #[error("risk case {0} does not exist")]
    CaseNotFound(String),
    #[error("case {case_id} is a {kind} case with status {status}: a write-off needs an approved stolen_account case")]
    StolenAccountNotConfirmed {
        case_id: String,
        kind: String,
        status: String,
    },
    #[error("case {0} is about another customer")]
    StolenAccountOtherCustomer(String),
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
            OperationError::CustomerBlocked(_) => "customer_blocked",
            OperationError::CaseNotFound(_) => "risk_case_not_found",
            OperationError::StolenAccountNotConfirmed { .. } => "stolen_account_not_confirmed",
            OperationError::StolenAccountOtherCustomer(_) => "stolen_account_other_customer",
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

/// The answer to an operation, stored with it and given again to a retry as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub kind: AnswerKind,
    pub body: Value,
}

/// Whether an operation made something new (an account) or changed what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Created,
    Done,
}

impl AnswerKind {
    /// The code stored with the operation (column `answer_code`): 201 for an answer that
    /// made something, 200 otherwise, as rows written before this layer existed hold them.
    fn stored_code(self) -> i32 {
        match self {
            AnswerKind::Created => 201,
            AnswerKind::Done => 200,
        }
    }

    fn from_stored_code(code: i32) -> AnswerKind {
        if code == 201 {
            AnswerKind::Created
        } else {
            AnswerKind::Done
        }
    }
}

/// The idempotency key of the ledger hold an authorisation made.
pub fn hold_key(reference: &str) -> String {
    step_key(&intent_key("credit", reference), "hold")
}

/// The fingerprint of a request: its kind, account and body.
pub fn request_hash(kind: &str, account: CreditAccountId, body: &Value) -> String {
    request_fingerprint(&[
        kind.as_bytes(),
        &account.to_le_bytes(),
        body.to_string().as_bytes(),
    ])
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
    let Some(outcome) = database.ledger_outcome(key).await? else {
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
        let key = step_key(prefix, index);
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
                    key: step_key(&key, "entry"),
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
    match intent::submit(writer, CREDIT_SERVICE, key, command.clone()).await {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(error)) => Ok(Some(error)),
        // Not an outage: the key will hold that other command forever, so a retry can never
        // succeed (it is refused to clients, see `RESERVED_KEY_PREFIXES`; this can only be a
        // key taken before that, or a bug).
        Err(Unsent::KeyTaken(key)) => Err(OperationError::LedgerConflict(key_taken(&key))),
        Err(Unsent::Unavailable(reason)) => Err(OperationError::LedgerUnavailable(reason)),
    }
}

pub fn key_taken(key: &str) -> String {
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
    database.mark_credit_operation_done(key).await?;
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
    intent::finish_pending(&mut PendingOperations {
        database,
        writer,
        account,
    })
    .await
}

/// Credit operations left pending (of one account, or all): each one's commands are sent
/// again (the ledger applies each once under its key) and it is marked done.
struct PendingOperations<'a> {
    database: &'a Database,
    writer: &'a LedgerWriter,
    account: Option<CreditAccountId>,
}

impl intent::PendingIntents for PendingOperations<'_> {
    /// The operation's key and its stored commands.
    type Intent = (String, String);
    type Error = OperationError;

    async fn pending(&mut self) -> Result<Vec<(String, String)>, OperationError> {
        Ok(self
            .database
            .pending_credit_operations(self.account)
            .await?)
    }

    async fn finish(&mut self, (key, commands): (String, String)) -> Result<(), OperationError> {
        let commands = decode_commands(&key, &commands)?;
        finish_operation(self.database, self.writer, &key, &commands).await
    }
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
    /// When the operation is applied (an authorisation records it as its purchase time).
    pub now: Timestamp,
}

/// What an operation's rules produce: the answer and the ledger steps.
pub struct Applied {
    pub kind: AnswerKind,
    pub body: Value,
    pub steps: Vec<Step>,
}

/// Locks per account stripe: operations on one account in one process run one at a time.
const LOCK_STRIPES: usize = 256;
/// Attempts of an operation whose version check failed.
const ATTEMPTS_MAX: usize = 5;

/// The credit service: accounts, operations, statements and tasks.
pub struct CreditOperations {
    database: Database,
    writer: LedgerWriter,
    /// The catalog file's products and those added through the API.
    catalog: std::sync::RwLock<Arc<Catalog>>,
    policy: AccountPolicy,
    ledgers: LedgerAccountsCache,
    stripes: LockStripes,
    /// Tests only: stop after the intent is stored, as a crash would.
    stop_before_ledger: std::sync::atomic::AtomicBool,
    /// Group commit of operations and their completions, started on the first write.
    operation_writer: std::sync::OnceLock<CreditWriter>,
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
        for (code, definition) in database.credit_products().await? {
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
            stripes: LockStripes::new(LOCK_STRIPES),
            stop_before_ledger: std::sync::atomic::AtomicBool::new(false),
            operation_writer: std::sync::OnceLock::new(),
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
        if !self
            .database
            .insert_credit_product(&product.code, &definition, now)
            .await?
        {
            return Err(OperationError::ProductExists(product.code));
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

    /// Whether operations and their completions go through the group-commit task: on
    /// SQLite, whose single write lock makes each commit of its own a queue of fsyncs. Not on
    /// PostgreSQL, which commits transactions side by side and groups their flushes itself,
    /// and where a batch holding several accounts' rows would deadlock with end of day
    /// updating the same rows in another order (two instances on one database found it).
    fn groups_commits(&self) -> bool {
        self.database.backend() == tally_store::Backend::Sqlite
    }

    /// The task that writes operations and their completions in batches: many checkouts'
    /// credit legs share one durable commit instead of two each.
    fn operation_writer(&self) -> &CreditWriter {
        self.operation_writer
            .get_or_init(|| CreditWriter::start(self.database.clone()))
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
        let Some(stored) = self.database.credit_operation(key).await? else {
            return Ok(None);
        };
        if stored.request_hash != request_hash {
            return Err(OperationError::KeyReused(key.into()));
        }
        if stored.pending {
            finish_operation(
                &self.database,
                &self.writer,
                key,
                &decode_commands(key, &stored.commands)?,
            )
            .await?;
        }
        let body = serde_json::from_str(&stored.answer)
            .map_err(|error| StoreError::Corrupt(format!("answer of {key}: {error}")))?;
        Ok(Some(Answer {
            kind: AnswerKind::from_stored_code(stored.answer_code),
            body,
        }))
    }

    /// Reads an account with its version, its end-of-day date brought up to the runs that
    /// covered it.
    pub async fn load(&self, id: CreditAccountId) -> Result<StoredAccount, OperationError> {
        self.database
            .stored_credit_account(id)
            .await?
            .ok_or(OperationError::AccountNotFound(id))
    }

    /// The customer an account belongs to (`None` for accounts loaded in bulk), reading that
    /// one column: it never changes after opening, so checks that need only it (the block
    /// list, a case's customer) need not read and decode the whole state.
    pub async fn customer_of(&self, id: CreditAccountId) -> Result<Option<String>, OperationError> {
        self.database
            .credit_account_customer(id)
            .await?
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
        let operation = NewOperation {
            key,
            kind: "open",
            request_hash,
            answer_code: AnswerKind::Done.stored_code(),
            answer: "",
            commands: "[]",
            pending: false,
            created_at: now,
        };
        for _ in 0..ATTEMPTS_MAX {
            let opened = self
                .database
                .open_credit_account(account, customer_id, operation, |id| {
                    let answer = answer(id);
                    (answer.kind.stored_code(), answer.body.to_string())
                })
                .await?;
            match opened {
                Some((code, text)) => {
                    let body = serde_json::from_str(&text).map_err(|error| {
                        StoreError::Corrupt(format!("answer of {key}: {error}"))
                    })?;
                    return Ok(Answer {
                        kind: AnswerKind::from_stored_code(code),
                        body,
                    });
                }
                // The same key raced in from elsewhere (answer as it did), or two new accounts
                // took one id (try again with the next).
                None => {
                    if let Some(replay) = self.replayed(key, request_hash).await? {
                        return Ok(replay);
                    }
                }
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
        let _guard = self.stripes.of_number(id).lock().await;
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
                now,
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
                &intent_key("credit", key),
                key,
                &applied.steps,
            )
            .await?;
            let commands_text = serde_json::to_string(&commands)
                .map_err(|error| StoreError::Corrupt(format!("commands: {error}")))?;
            let answer_text = applied.body.to_string();
            let operation = NewOperation {
                key,
                kind,
                request_hash,
                answer_code: applied.kind.stored_code(),
                answer: &answer_text,
                commands: &commands_text,
                pending: !commands.is_empty(),
                created_at: now,
            };
            let written = if self.groups_commits() {
                let write = CreditWrite::operation(id, stored.version, &account, operation)?;
                self.operation_writer().write(write).await?
            } else {
                self.database
                    .write_credit_operation(id, stored.version, &account, operation)
                    .await?
            };
            match written {
                OperationWritten::Written => {}
                OperationWritten::VersionChanged => continue,
                OperationWritten::KeyExists => {
                    // The same key was applied by another process meanwhile.
                    return match self.replayed(key, request_hash).await? {
                        Some(replay) => Ok(replay),
                        None => Err(OperationError::Contended(id)),
                    };
                }
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
                if self.groups_commits() {
                    send_commands(&self.writer, &commands).await?;
                    self.operation_writer()
                        .write(CreditWrite::Done {
                            key: key.to_string(),
                        })
                        .await?;
                } else {
                    finish_operation(&self.database, &self.writer, key, &commands).await?;
                }
            }
            return Ok(Answer {
                kind: applied.kind,
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
        self.database
            .credit_statements(id, limit)
            .await?
            .iter()
            .map(|text| {
                serde_json::from_str(text)
                    .map_err(|error| StoreError::Corrupt(format!("statement: {error}")).into())
            })
            .collect()
    }

    /// Open contact tasks, most urgent first.
    pub async fn open_tasks(&self, limit: i64) -> Result<Vec<ContactTaskRow>, OperationError> {
        Ok(self.database.open_contact_tasks(limit).await?)
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
        self.database
            .insert_contact_task(NewContactTask {
                account_id,
                date,
                kind,
                reason,
                bucket: stored.account.bucket,
                days_past_due: stored.account.days_past_due,
                amount,
                priority,
                created_at: now,
            })
            .await?
            .ok_or_else(|| {
                OperationError::Invalid(format!(
                    "a {kind} task for this reason already exists for account {account_id} on {date}"
                ))
            })
    }

    /// Closes an open task with a note; false when there is no open task `id`.
    pub async fn close_task(
        &self,
        id: i64,
        note: &str,
        now: Timestamp,
    ) -> Result<bool, OperationError> {
        Ok(self.database.close_contact_task(id, note, now).await?)
    }
}
