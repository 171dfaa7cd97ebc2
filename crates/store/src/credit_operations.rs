//! Storage of credit operations, products, statements and contact tasks: the rows the credit
//! service (`tally_service::credit::operations`) reads and writes. Persistence only: which
//! rows to write, and when, is the service's; an operation's answer and ledger commands are
//! stored as the service encoded them.

use crate::credit::{bring_up_to_runs, bucket_name, decode, encode, on_pool, CreditAccountId};
use crate::database::Database;
use crate::error::{inserted_unless_taken, is_unique_violation, StoreError};
use crate::rows::micros;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::Serialize;
use tally_core::Amount;
use tally_credit::Account;

pub mod writer;

/// A credit operation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOperation {
    pub request_hash: String,
    /// The service's code for the kind of answer (column `answer_code`).
    pub answer_code: i32,
    /// The answer as JSON text.
    pub answer: String,
    /// The ledger commands are stored but not yet all sent.
    pub pending: bool,
    /// The ledger commands as JSON text.
    pub commands: String,
}

/// An operation row to write.
#[derive(Debug, Clone, Copy)]
pub struct NewOperation<'a> {
    pub key: &'a str,
    pub kind: &'a str,
    pub request_hash: &'a str,
    pub answer_code: i32,
    pub answer: &'a str,
    pub commands: &'a str,
    pub pending: bool,
    pub created_at: Timestamp,
}

/// What became of writing an operation with its account's new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationWritten {
    Written,
    /// The account's version is no longer the one read: nothing was written.
    VersionChanged,
    /// An operation is stored under the key already: nothing was written.
    KeyExists,
}

/// An account as read for an operation.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub id: CreditAccountId,
    pub customer_id: Option<String>,
    pub version: i64,
    pub account: Account,
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
    /// The risk event that raised an anomaly alert.
    pub risk_event_id: Option<String>,
    /// Contacts recorded on the task.
    pub contacts: i32,
    pub last_outcome: Option<String>,
    /// The last promise to pay, in minor units of `currency`, and its date.
    pub promised_amount_minor: Option<i64>,
    pub promised_date: Option<String>,
    /// When the task is to be worked again.
    pub follow_up_date: Option<String>,
}

/// Columns of a [`ContactTaskRow`], read from `credit_contact_tasks AS task` joined to
/// `credit_accounts AS account`.
const TASK_COLUMNS: &str = "SELECT task.id, task.account_id, account.customer_id, \
     task.business_date, task.kind, task.reason, task.bucket, task.days_past_due, \
     task.amount_minor, task.currency, task.priority, task.status, task.note, \
     task.risk_event_id, task.contacts, task.last_outcome, task.promised_amount_minor, \
     task.promised_date, task.follow_up_date \
     FROM credit_contact_tasks AS task \
     LEFT JOIN credit_accounts AS account ON account.id = task.account_id";

/// One contact attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct ContactRow {
    pub id: i64,
    pub task_id: i64,
    pub account_id: i64,
    pub business_date: String,
    /// Microseconds since the epoch.
    pub at: i64,
    pub outcome: String,
    pub note: String,
    pub promised_amount_minor: Option<i64>,
    pub promised_currency: Option<String>,
    pub promised_date: Option<String>,
    pub follow_up_date: Option<String>,
    pub recorded_by: String,
}

/// A contact attempt to record on a task.
#[derive(Debug, Clone, Copy)]
pub struct NewContact<'a> {
    pub task_id: i64,
    pub business_date: Date,
    pub at: Timestamp,
    pub outcome: &'a str,
    pub note: &'a str,
    pub promise: Option<tally_credit::Promise>,
    pub follow_up_date: Option<Date>,
    pub recorded_by: &'a str,
    /// Most contacts of the task's customer (or account, without one) on `business_date`.
    pub contacts_per_day_max: u32,
}

/// What became of recording a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRecorded {
    Recorded(Box<ContactRow>),
    /// No open task with that id.
    NoOpenTask,
    /// The customer was contacted this many times on the date already: nothing was stored.
    LimitReached(u32),
}

/// A contact task to add by hand.
#[derive(Debug, Clone, Copy)]
pub struct NewContactTask<'a> {
    pub account_id: CreditAccountId,
    pub date: Date,
    pub kind: &'a str,
    pub reason: &'a str,
    pub bucket: tally_credit::Bucket,
    pub days_past_due: i32,
    pub amount: Amount,
    pub priority: i32,
    pub created_at: Timestamp,
}

impl Database {
    /// The operation stored under `key`.
    pub async fn credit_operation(&self, key: &str) -> Result<Option<StoredOperation>, StoreError> {
        let row: Option<(String, i32, String, String, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT request_hash, answer_code, response, status, commands \
                 FROM credit_operations WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(request_hash, answer_code, answer, status, commands)| StoredOperation {
                request_hash,
                answer_code,
                answer,
                pending: status == "pending",
                commands,
            },
        ))
    }

    /// Marks operation `key` done: its ledger commands were all sent.
    pub async fn mark_credit_operation_done(&self, key: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE credit_operations SET status = 'done' WHERE key = $1")
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Pending operations (of one account, or all when `account` is `None`), oldest first:
    /// key and ledger commands.
    pub async fn pending_credit_operations(
        &self,
        account: Option<CreditAccountId>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = on_pool!(self, pool => {
            match account {
                Some(id) => sqlx::query_as(
                    "SELECT key, commands FROM credit_operations \
                     WHERE account_id = $1 AND status = 'pending' ORDER BY created_at, key",
                )
                .bind(id)
                .fetch_all(pool)
                .await?,
                None => sqlx::query_as(
                    "SELECT key, commands FROM credit_operations WHERE status = 'pending' \
                     ORDER BY created_at, key",
                )
                .fetch_all(pool)
                .await?,
            }
        });
        Ok(rows)
    }

    /// The outcome the ledger stored under idempotency key `key` (JSON text).
    pub async fn ledger_outcome(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT outcome FROM idempotency_keys WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(outcome,)| outcome))
    }

    /// Products added through the API: code and definition (JSON text), by code.
    pub async fn credit_products(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as("SELECT code, definition FROM credit_products ORDER BY code")
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Stores a product; false when its code is stored already.
    pub async fn insert_credit_product(
        &self,
        code: &str,
        definition: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let inserted: Result<_, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO credit_products (code, definition, created_at) VALUES ($1, $2, $3)",
            )
            .bind(code)
            .bind(definition)
            .bind(micros(now))
            .execute(pool)
            .await
            .map(|_| ())
        });
        inserted_unless_taken(inserted)
    }

    /// An account with its version, its end-of-day date brought up to the runs that
    /// covered it.
    pub async fn stored_credit_account(
        &self,
        id: CreditAccountId,
    ) -> Result<Option<StoredAccount>, StoreError> {
        let runs = self.runs_covering(id).await?;
        let row: Option<(i64, Option<String>, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT version, customer_id, state FROM credit_accounts WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some((version, customer_id, state)) = row else {
            return Ok(None);
        };
        let mut account = decode(id, &state)?;
        bring_up_to_runs(&mut account, runs);
        Ok(Some(StoredAccount {
            id,
            customer_id,
            version,
            account,
        }))
    }

    /// The customer of account `id` (the outer `None`: no such account), reading that one
    /// column.
    pub async fn credit_account_customer(
        &self,
        id: CreditAccountId,
    ) -> Result<Option<Option<String>>, StoreError> {
        let row: Option<(Option<String>,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT customer_id FROM credit_accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(customer_id,)| customer_id))
    }

    /// The credit accounts of customer `customer`, in id order.
    pub async fn credit_accounts_of_customer(
        &self,
        customer: &str,
    ) -> Result<Vec<CreditAccountId>, StoreError> {
        let rows: Vec<(CreditAccountId,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id FROM credit_accounts WHERE customer_id = $1 ORDER BY id")
                .bind(customer)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Opens an account under the next id (none when `account` is `None`: a declined
    /// application) and stores its opening operation in one transaction; `answer` gives the
    /// operation's answer code and text from the new id. `None` when the key or the id was
    /// taken meanwhile (nothing was stored).
    pub async fn open_credit_account(
        &self,
        account: Option<&Account>,
        customer_id: Option<&str>,
        operation: NewOperation<'_>,
        answer: impl Fn(Option<CreditAccountId>) -> (i32, String),
    ) -> Result<Option<(i32, String)>, StoreError> {
        let state = account.map(encode).transpose()?;
        let currency = account.map(|account| account.currency.code().to_string());
        let postgres = matches!(self, Database::Postgres(_));
        let inserted: Result<(i32, String), sqlx::Error> = on_pool!(self, pool => {
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
                let (code, text) = answer(id);
                sqlx::query(
                    "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                     answer_code, response, commands, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(operation.key)
                .bind(id.unwrap_or(0))
                .bind(operation.kind)
                .bind(operation.request_hash)
                .bind(code)
                .bind(&text)
                .bind(operation.commands)
                .bind(if operation.pending { "pending" } else { "done" })
                .bind(micros(operation.created_at))
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                Ok((code, text))
            }
            .await
        });
        match inserted {
            Ok(answer) => Ok(Some(answer)),
            Err(error) if is_unique_violation(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes an account's new state (only if its version is still `version`) and the
    /// operation that changed it, in one transaction.
    pub async fn write_credit_operation(
        &self,
        id: CreditAccountId,
        version: i64,
        account: &Account,
        operation: NewOperation<'_>,
    ) -> Result<OperationWritten, StoreError> {
        let state = encode(account)?;
        let written: Result<bool, sqlx::Error> = on_pool!(self, pool => {
            async {
                let mut transaction = pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE credit_accounts SET state = $1, last_end_of_day = $2, \
                     version = version + 1 WHERE id = $3 AND version = $4",
                )
                .bind(&state)
                .bind(account.last_end_of_day.map(|date| date.to_string()))
                .bind(id)
                .bind(version)
                .execute(&mut *transaction)
                .await?;
                if updated.rows_affected() != 1 {
                    transaction.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                     answer_code, response, commands, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(operation.key)
                .bind(id)
                .bind(operation.kind)
                .bind(operation.request_hash)
                .bind(operation.answer_code)
                .bind(operation.answer)
                .bind(operation.commands)
                .bind(if operation.pending { "pending" } else { "done" })
                .bind(micros(operation.created_at))
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                Ok(true)
            }
            .await
        });
        match written {
            Ok(true) => Ok(OperationWritten::Written),
            Ok(false) => Ok(OperationWritten::VersionChanged),
            Err(error) if is_unique_violation(&error) => Ok(OperationWritten::KeyExists),
            Err(error) => Err(error.into()),
        }
    }

    /// Statements of an account (JSON text), newest first.
    pub async fn credit_statements(
        &self,
        id: CreditAccountId,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT statement FROM credit_statements WHERE account_id = $1 \
                 ORDER BY statement_date DESC LIMIT $2",
            )
            .bind(id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(text,)| text).collect())
    }

    /// Open contact tasks, most urgent first.
    pub async fn open_contact_tasks(&self, limit: i64) -> Result<Vec<ContactTaskRow>, StoreError> {
        // Built from a fixed column list, no input in it.
        let sql = format!(
            "{TASK_COLUMNS} WHERE task.status = 'open' ORDER BY task.priority, task.id LIMIT $1"
        );
        let rows: Vec<ContactTaskRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The contact task `id`, open or closed.
    pub async fn contact_task(&self, id: i64) -> Result<Option<ContactTaskRow>, StoreError> {
        let sql = format!("{TASK_COLUMNS} WHERE task.id = $1");
        let row: Option<ContactTaskRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// The contacts recorded on task `id`, oldest first.
    pub async fn task_contacts(&self, id: i64) -> Result<Vec<ContactRow>, StoreError> {
        let rows: Vec<ContactRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, task_id, account_id, business_date, at, outcome, note, \
                 promised_amount_minor, promised_currency, promised_date, follow_up_date, \
                 recorded_by FROM credit_contacts WHERE task_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Records a contact on an open task and leaves its outcome, promise and follow-up on
    /// the task, unless the task's customer (its account, without one) has had
    /// `contacts_per_day_max` contacts on the date already: counted and written in one
    /// transaction that holds the database's write lock (SQLite) or a lock on the customer
    /// (PostgreSQL), so two agents calling at once cannot both pass the limit.
    pub async fn record_contact(
        &self,
        contact: NewContact<'_>,
    ) -> Result<ContactRecorded, StoreError> {
        let postgres = matches!(self, Database::Postgres(_));
        let date = contact.business_date.to_string();
        let promised_minor = contact.promise.map(|promise| promise.amount.minor());
        let promised_currency = contact
            .promise
            .map(|promise| promise.amount.currency().code().to_string());
        let promised_date = contact.promise.map(|promise| promise.date.to_string());
        let follow_up = contact.follow_up_date.map(|date| date.to_string());
        let recorded: Result<ContactRecorded, sqlx::Error> = on_pool!(self, pool => {
            async {
                let mut transaction = if postgres {
                    pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?
                } else {
                    pool.begin_with("BEGIN IMMEDIATE").await?
                };
                let task: Option<(i64, Option<String>)> = sqlx::query_as(
                    "SELECT task.account_id, account.customer_id FROM credit_contact_tasks AS task \
                     LEFT JOIN credit_accounts AS account ON account.id = task.account_id \
                     WHERE task.id = $1 AND task.status = 'open'",
                )
                .bind(contact.task_id)
                .fetch_optional(&mut *transaction)
                .await?;
                let Some((account_id, customer_id)) = task else {
                    return Ok(ContactRecorded::NoOpenTask);
                };
                let contact_key = match &customer_id {
                    Some(customer) => format!("customer:{customer}"),
                    None => format!("account:{account_id}"),
                };
                if postgres {
                    // Contacts of one customer take turns; others go on.
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/contacts/' || $1))")
                        .bind(&contact_key)
                        .execute(&mut *transaction)
                        .await?;
                }
                let (made,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM credit_contacts WHERE contact_key = $1 AND business_date = $2",
                )
                .bind(&contact_key)
                .bind(&date)
                .fetch_one(&mut *transaction)
                .await?;
                let made = u32::try_from(made).unwrap_or(u32::MAX);
                if made >= contact.contacts_per_day_max {
                    return Ok(ContactRecorded::LimitReached(made));
                }
                let row: ContactRow = sqlx::query_as(
                    "INSERT INTO credit_contacts (task_id, account_id, contact_key, business_date, \
                     at, outcome, note, promised_amount_minor, promised_currency, promised_date, \
                     follow_up_date, recorded_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     RETURNING id, task_id, account_id, business_date, at, outcome, note, \
                     promised_amount_minor, promised_currency, promised_date, follow_up_date, \
                     recorded_by",
                )
                .bind(contact.task_id)
                .bind(account_id)
                .bind(&contact_key)
                .bind(&date)
                .bind(micros(contact.at))
                .bind(contact.outcome)
                .bind(contact.note)
                .bind(promised_minor)
                .bind(&promised_currency)
                .bind(&promised_date)
                .bind(&follow_up)
                .bind(contact.recorded_by)
                .fetch_one(&mut *transaction)
                .await?;
                // A contact without a promise or a follow-up keeps the task's last ones: a
                // promise stands until it is kept or broken, and its follow-up with it.
                sqlx::query(
                    "UPDATE credit_contact_tasks SET contacts = contacts + 1, last_outcome = $2, \
                     promised_amount_minor = COALESCE($3, promised_amount_minor), \
                     promised_date = COALESCE($4, promised_date), \
                     follow_up_date = COALESCE($5, follow_up_date) WHERE id = $1",
                )
                .bind(contact.task_id)
                .bind(contact.outcome)
                .bind(promised_minor)
                .bind(&promised_date)
                .bind(&follow_up)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                Ok(ContactRecorded::Recorded(Box::new(row)))
            }
            .await
        });
        Ok(recorded?)
    }

    /// Adds a contact task; `None` when a task of its kind and reason exists for the
    /// account on that date.
    pub async fn insert_contact_task(
        &self,
        task: NewContactTask<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let inserted: Result<(i64,), sqlx::Error> = on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO credit_contact_tasks (account_id, business_date, kind, reason, \
                 bucket, days_past_due, amount_minor, currency, priority, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10) RETURNING id",
            )
            .bind(task.account_id)
            .bind(task.date.to_string())
            .bind(task.kind)
            .bind(task.reason)
            .bind(bucket_name(task.bucket))
            .bind(task.days_past_due)
            .bind(task.amount.minor())
            .bind(task.amount.currency().code())
            .bind(task.priority)
            .bind(micros(task.created_at))
            .fetch_one(pool)
            .await
        });
        match inserted {
            Ok((id,)) => Ok(Some(id)),
            Err(error) if is_unique_violation(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Closes an open task with a note; false when there is no open task `id`.
    pub async fn close_contact_task(
        &self,
        id: i64,
        note: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done: u64 = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE credit_contact_tasks SET status = 'closed', closed_at = $2, note = $3 \
                 WHERE id = $1 AND status = 'open'",
            )
            .bind(id)
            .bind(micros(now))
            .bind(note)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}

/// A write of the credit operations' group commit ([`writer::CreditWriter`]).
#[derive(Debug, Clone)]
pub enum CreditWrite {
    /// An account's new state (only if its version is still `version`) with the operation
    /// that changed it, as [`Database::write_credit_operation`] writes them.
    Operation {
        account_id: CreditAccountId,
        version: i64,
        state: String,
        last_end_of_day: Option<String>,
        operation: OwnedOperation,
    },
    /// An operation's ledger commands are all applied: it is done.
    Done { key: String },
}

/// An operation row to write, owned (it waits in the writer's queue).
#[derive(Debug, Clone)]
pub struct OwnedOperation {
    pub key: String,
    pub kind: String,
    pub request_hash: String,
    pub answer_code: i32,
    pub answer: String,
    pub commands: String,
    pub pending: bool,
    pub created_at: Timestamp,
}

impl CreditWrite {
    /// Account `id`'s new state `account`, from `version`, with `operation`.
    pub fn operation(
        id: CreditAccountId,
        version: i64,
        account: &Account,
        operation: NewOperation<'_>,
    ) -> Result<CreditWrite, StoreError> {
        Ok(CreditWrite::Operation {
            account_id: id,
            version,
            state: encode(account)?,
            last_end_of_day: account.last_end_of_day.map(|date| date.to_string()),
            operation: OwnedOperation {
                key: operation.key.to_string(),
                kind: operation.kind.to_string(),
                request_hash: operation.request_hash.to_string(),
                answer_code: operation.answer_code,
                answer: operation.answer.to_string(),
                commands: operation.commands.to_string(),
                pending: operation.pending,
                created_at: operation.created_at,
            },
        })
    }

    /// The operation's key.
    pub fn key(&self) -> &str {
        match self {
            CreditWrite::Operation { operation, .. } => &operation.key,
            CreditWrite::Done { key } => key,
        }
    }
}

impl Database {
    /// Writes each of `writes` in one transaction, one commit for all (group commit): for
    /// each, what [`Database::write_credit_operation`] would have answered (a completion is
    /// `Written`). An operation refused by its version check or its key writes nothing of
    /// itself (it is rolled back to its savepoint); the others are written. An error writes
    /// none of them.
    pub async fn write_credit_batch(
        &self,
        writes: &[&CreditWrite],
    ) -> Result<Vec<OperationWritten>, StoreError> {
        let mut outcomes = Vec::with_capacity(writes.len());
        let _turn = self.write_turn().await;
        let result: Result<(), sqlx::Error> = on_pool!(self, pool => {
            async {
                let mut transaction = pool.begin().await?;
                for write in writes {
                    let outcome = match write {
                        CreditWrite::Done { key } => {
                            sqlx::query("UPDATE credit_operations SET status = 'done' WHERE key = $1")
                                .bind(key)
                                .execute(&mut *transaction)
                                .await?;
                            OperationWritten::Written
                        }
                        CreditWrite::Operation { account_id, version, state, last_end_of_day, operation } => {
                            sqlx::query("SAVEPOINT credit_operation")
                                .execute(&mut *transaction)
                                .await?;
                            let updated = sqlx::query(
                                "UPDATE credit_accounts SET state = $1, last_end_of_day = $2, \
                                 version = version + 1 WHERE id = $3 AND version = $4",
                            )
                            .bind(state)
                            .bind(last_end_of_day)
                            .bind(account_id)
                            .bind(version)
                            .execute(&mut *transaction)
                            .await?
                            .rows_affected();
                            let inserted = if updated == 1 {
                                sqlx::query(
                                    "INSERT INTO credit_operations (key, account_id, kind, request_hash, \
                                     answer_code, response, commands, status, created_at) \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                                )
                                .bind(&operation.key)
                                .bind(account_id)
                                .bind(&operation.kind)
                                .bind(&operation.request_hash)
                                .bind(operation.answer_code)
                                .bind(&operation.answer)
                                .bind(&operation.commands)
                                .bind(if operation.pending { "pending" } else { "done" })
                                .bind(micros(operation.created_at))
                                .execute(&mut *transaction)
                                .await
                                .map(|_| ())
                            } else {
                                Ok(())
                            };
                            let outcome = match inserted {
                                Ok(()) if updated == 1 => OperationWritten::Written,
                                Ok(()) => OperationWritten::VersionChanged,
                                Err(error) if is_unique_violation(&error) => OperationWritten::KeyExists,
                                Err(error) => return Err(error),
                            };
                            if outcome != OperationWritten::Written {
                                sqlx::query("ROLLBACK TO SAVEPOINT credit_operation")
                                    .execute(&mut *transaction)
                                    .await?;
                            }
                            sqlx::query("RELEASE SAVEPOINT credit_operation")
                                .execute(&mut *transaction)
                                .await?;
                            outcome
                        }
                    };
                    outcomes.push(outcome);
                }
                transaction.commit().await?;
                Ok(())
            }
            .await
        });
        result?;
        Ok(outcomes)
    }
}
