//! Storage of customers and of the audit log of their personal data read in clear.
//!
//! The store never sees personal data in clear: the server seals name, phone, national id
//! and date of birth with `tally_privacy::FieldCipher` and computes the blind indexes before
//! calling [`Database::create_customer`]. Unique blind indexes make one person one customer.
//! A creation is idempotent: its key and a keyed hash of the request are stored in the
//! customer's transaction, so a retry replays the customer and a key reused for another
//! request is refused. `pii_reads` (fields read in clear) and `pii_lookups` (exact lookups
//! by phone or national id, with the blind index searched, never the value) are append-only
//! (database triggers refuse changes).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, timestamp};
use jiff::Timestamp;

/// A customer as stored: personal fields sealed (`v1:<key id>:<base64>`), indexes as hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCustomer {
    pub id: String,
    pub created_at: Timestamp,
    pub name: String,
    pub phone: String,
    pub national_id: String,
    pub date_of_birth: String,
    pub phone_index: String,
    pub national_id_index: String,
}

/// One personal field read in clear: who, when, which customer and field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiRead {
    pub id: String,
    pub at: Timestamp,
    pub api_key_id: String,
    pub principal: String,
    pub customer_id: String,
    pub field: String,
    pub reason: String,
}

/// One exact lookup of a customer: who, when, which field (`phone` or `national_id`), the
/// blind index of the value searched (never the value), the reason if one was given, and the
/// customer found (`None` when nothing matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiLookup {
    pub id: String,
    pub at: Timestamp,
    pub api_key_id: String,
    pub principal: String,
    pub field: String,
    pub value_index: String,
    pub reason: Option<String>,
    pub customer_id: Option<String>,
}

/// What a creation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerCreated {
    /// A new customer was stored.
    Created(StoredCustomer),
    /// The key had created this customer with the same request before.
    Replayed(StoredCustomer),
}

/// Why a creation stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CustomerWriteError {
    #[error("idempotency key {0:?} was already used for a different request")]
    KeyReused(String),
    #[error("a customer with this phone number exists")]
    PhoneTaken,
    #[error("a customer with this national id exists")]
    NationalIdTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CustomerWriteError {
    fn from(error: sqlx::Error) -> Self {
        CustomerWriteError::Store(StoreError::Database(error))
    }
}

type CustomerTuple = (String, i64, String, String, String, String, String, String);
type PiiReadTuple = (String, i64, String, String, String, String, String);
type PiiLookupTuple = (
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn customer_of(row: CustomerTuple) -> Result<StoredCustomer, StoreError> {
    let (id, created_at, name, phone, national_id, date_of_birth, phone_index, national_id_index) =
        row;
    Ok(StoredCustomer {
        id,
        created_at: timestamp(created_at)?,
        name,
        phone,
        national_id,
        date_of_birth,
        phone_index,
        national_id_index,
    })
}

fn pii_read_of(row: PiiReadTuple) -> Result<PiiRead, StoreError> {
    let (id, at, api_key_id, principal, customer_id, field, reason) = row;
    Ok(PiiRead {
        id,
        at: timestamp(at)?,
        api_key_id,
        principal,
        customer_id,
        field,
        reason,
    })
}

fn pii_lookup_of(row: PiiLookupTuple) -> Result<PiiLookup, StoreError> {
    let (id, at, api_key_id, principal, field, value_index, reason, customer_id) = row;
    Ok(PiiLookup {
        id,
        at: timestamp(at)?,
        api_key_id,
        principal,
        field,
        value_index,
        reason,
        customer_id,
    })
}

/// How a stored key compares with the request that carries it again.
enum KeyState {
    Unused,
    Replay(String),
    Reused,
}

const CUSTOMER_COLUMNS: &str = "SELECT id, created_at, name, phone, national_id, \
    date_of_birth, phone_index, national_id_index FROM customers";
const PII_READ_COLUMNS: &str = "SELECT id, at, api_key_id, principal, customer_id, \
    field, reason FROM pii_reads";

/// Attempts at a creation: a conflict with a concurrent request under the same key is
/// settled on the second look, when that request has committed.
const CREATE_ATTEMPTS_MAX: usize = 3;

impl Database {
    /// Stores a new customer (fields already sealed, indexes computed) under an
    /// idempotency key. `request_hash` identifies the request; it must be keyed, since it is
    /// stored beside the key.
    pub async fn create_customer(
        &self,
        key: &str,
        request_hash: &str,
        customer: &StoredCustomer,
    ) -> Result<CustomerCreated, CustomerWriteError> {
        for _ in 0..CREATE_ATTEMPTS_MAX {
            match self.customer_key_state(key, request_hash).await? {
                KeyState::Reused => return Err(CustomerWriteError::KeyReused(key.to_string())),
                KeyState::Replay(id) => {
                    let stored = self.customer(&id).await?.ok_or_else(|| {
                        StoreError::Corrupt(format!("idempotency key names missing customer {id}"))
                    })?;
                    return Ok(CustomerCreated::Replayed(stored));
                }
                KeyState::Unused => {}
            }
            if self.insert_customer(key, request_hash, customer).await? {
                return Ok(CustomerCreated::Created(customer.clone()));
            }
            // Something conflicted. A concurrent request under the same key is settled by
            // looking at the key again; otherwise the person is a customer already.
            if !matches!(
                self.customer_key_state(key, request_hash).await?,
                KeyState::Unused
            ) {
                continue;
            }
            if self
                .customer_index_taken("phone_index", &customer.phone_index)
                .await?
            {
                return Err(CustomerWriteError::PhoneTaken);
            }
            if self
                .customer_index_taken("national_id_index", &customer.national_id_index)
                .await?
            {
                return Err(CustomerWriteError::NationalIdTaken);
            }
        }
        Err(StoreError::Corrupt(format!(
            "customer creation under key {key:?} kept conflicting with a row that then vanished"
        ))
        .into())
    }

    async fn customer_key_state(
        &self,
        key: &str,
        request_hash: &str,
    ) -> Result<KeyState, StoreError> {
        let row: Option<(String, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT request_hash, customer_id FROM customer_idempotency_keys WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(match row {
            None => KeyState::Unused,
            Some((stored, customer_id)) if stored == request_hash => KeyState::Replay(customer_id),
            Some(_) => KeyState::Reused,
        })
    }

    /// Stores the customer and its key in one transaction; `false` when either conflicted
    /// with a stored row (nothing is then stored).
    async fn insert_customer(
        &self,
        key: &str,
        request_hash: &str,
        customer: &StoredCustomer,
    ) -> Result<bool, StoreError> {
        Ok(on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO customers (id, created_at, name, phone, national_id, \
                 date_of_birth, phone_index, national_id_index) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(&customer.id)
            .bind(micros(customer.created_at))
            .bind(&customer.name)
            .bind(&customer.phone)
            .bind(&customer.national_id)
            .bind(&customer.date_of_birth)
            .bind(&customer.phone_index)
            .bind(&customer.national_id_index)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            let inserted = inserted == 1
                && sqlx::query(
                    "INSERT INTO customer_idempotency_keys (key, request_hash, customer_id, \
                     created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(key)
                .bind(request_hash)
                .bind(&customer.id)
                .bind(micros(customer.created_at))
                .execute(&mut *transaction)
                .await?
                .rows_affected()
                    == 1;
            if inserted {
                transaction.commit().await?;
            } else {
                transaction.rollback().await?;
            }
            inserted
        }))
    }

    async fn customer_index_taken(&self, column: &str, index: &str) -> Result<bool, StoreError> {
        // `column` is one of two names fixed by the caller, never input.
        let sql = format!("SELECT id FROM customers WHERE {column} = $1");
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(index)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some())
    }

    /// The stored customer with this id.
    pub async fn customer(&self, id: &str) -> Result<Option<StoredCustomer>, StoreError> {
        let sql = format!("{CUSTOMER_COLUMNS} WHERE id = $1");
        let row: Option<CustomerTuple> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(customer_of).transpose()
    }

    /// Whether a customer with this id exists (e.g. before a credit account is activated).
    pub async fn customer_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some())
    }

    /// Customers whose blind indexes equal the given ones (each `None` matches every
    /// customer; give at least one). At most one per index, since the indexes are unique.
    pub async fn find_customers(
        &self,
        phone_index: Option<&str>,
        national_id_index: Option<&str>,
    ) -> Result<Vec<StoredCustomer>, StoreError> {
        if phone_index.is_none() && national_id_index.is_none() {
            return Ok(Vec::new());
        }
        // A NULL parameter leaves its condition out.
        let sql = format!(
            "{CUSTOMER_COLUMNS} WHERE ($1 IS NULL OR phone_index = $1) \
             AND ($2 IS NULL OR national_id_index = $2) ORDER BY id"
        );
        let rows: Vec<CustomerTuple> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(phone_index)
                .bind(national_id_index)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(customer_of).collect()
    }

    /// At most `limit` customers with ids after `after` (`""` for the first), in id order:
    /// a walk over every customer in pages.
    pub async fn customers_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StoredCustomer>, StoreError> {
        let sql = format!("{CUSTOMER_COLUMNS} WHERE id > $1 ORDER BY id LIMIT $2");
        let rows: Vec<CustomerTuple> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(customer_of).collect()
    }

    /// Replaces a customer's sealed fields (name, phone, national id, date of birth) with
    /// `new`'s, the same values sealed again under another key, only if the row still holds
    /// `old`'s: `false` when it changed meanwhile (read it again). Indexes are unchanged, as
    /// the values are.
    pub async fn reseal_customer(
        &self,
        old: &StoredCustomer,
        new: &StoredCustomer,
    ) -> Result<bool, StoreError> {
        if old.id != new.id {
            return Err(StoreError::Corrupt(format!(
                "resealing customer {} with the fields of {}",
                old.id, new.id
            )));
        }
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE customers SET name = $1, phone = $2, national_id = $3, \
                 date_of_birth = $4 WHERE id = $5 AND name = $6 AND phone = $7 \
                 AND national_id = $8 AND date_of_birth = $9",
            )
            .bind(&new.name)
            .bind(&new.phone)
            .bind(&new.national_id)
            .bind(&new.date_of_birth)
            .bind(&old.id)
            .bind(&old.name)
            .bind(&old.phone)
            .bind(&old.national_id)
            .bind(&old.date_of_birth)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Appends reads to the audit log, all or none.
    pub async fn record_pii_reads(&self, reads: &[PiiRead]) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            for read in reads {
                sqlx::query(
                    "INSERT INTO pii_reads (id, at, api_key_id, principal, customer_id, \
                     field, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&read.id)
                .bind(micros(read.at))
                .bind(&read.api_key_id)
                .bind(&read.principal)
                .bind(&read.customer_id)
                .bind(&read.field)
                .bind(&read.reason)
                .execute(&mut *transaction)
                .await?;
            }
            transaction.commit().await?;
        });
        Ok(())
    }

    /// Appends an exact lookup to its audit log.
    pub async fn record_pii_lookup(&self, lookup: &PiiLookup) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO pii_lookups (id, at, api_key_id, principal, field, \
                 value_index, reason, customer_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&lookup.id)
            .bind(micros(lookup.at))
            .bind(&lookup.api_key_id)
            .bind(&lookup.principal)
            .bind(&lookup.field)
            .bind(&lookup.value_index)
            .bind(&lookup.reason)
            .bind(&lookup.customer_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The audit log of lookups in their order: at most `limit` rows after the lookup with
    /// id `after`.
    pub async fn pii_lookups(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PiiLookup>, StoreError> {
        // Ids are UUID v7, so their order is the order of the lookups.
        let rows: Vec<PiiLookupTuple> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, at, api_key_id, principal, field, value_index, reason, \
                 customer_id FROM pii_lookups WHERE ($1 IS NULL OR id > $1) \
                 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(pii_lookup_of).collect()
    }

    /// The audit log of every customer's reads in clear, in their order: at most `limit`
    /// rows after the read with id `after`.
    pub async fn all_pii_reads(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PiiRead>, StoreError> {
        // Fixed column list; no input in the text.
        let sql = format!("{PII_READ_COLUMNS} WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2");
        let rows: Vec<PiiReadTuple> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(pii_read_of).collect()
    }

    /// A customer's audit log in the order of the reads: at most `limit` rows after the
    /// read with id `after`.
    pub async fn pii_reads(
        &self,
        customer_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PiiRead>, StoreError> {
        // Ids are UUID v7, so their order is the order of the reads.
        let sql = format!(
            "{PII_READ_COLUMNS} WHERE customer_id = $1 AND ($2 IS NULL OR id > $2) \
             ORDER BY id LIMIT $3"
        );
        let rows: Vec<PiiReadTuple> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(customer_id)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(pii_read_of).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    fn customer(id: &str, phone_index: &str, national_id_index: &str) -> StoredCustomer {
        StoredCustomer {
            id: id.to_string(),
            created_at: Timestamp::from_microsecond(1_777_000_000_000_000).unwrap(),
            name: format!("v1:k:name-{id}"),
            phone: format!("v1:k:phone-{id}"),
            national_id: format!("v1:k:national-id-{id}"),
            date_of_birth: format!("v1:k:date-of-birth-{id}"),
            phone_index: phone_index.to_string(),
            national_id_index: national_id_index.to_string(),
        }
    }

    /// The database as it comes (named here, so the macro's `use super::*` has a use).
    async fn given(test: TestDatabase) -> TestDatabase {
        test
    }

    crate::on_both_backends!(
        setup = given;
        concurrent_retries_create_one_customer,
        concurrent_people_with_one_phone_make_one_customer,
        reads_are_listed_in_order_by_page,
        lookups_are_listed_in_order_and_never_change,
    );

    async fn concurrent_retries_create_one_customer(test: TestDatabase) {
        let database = test.database.clone();
        let mut tasks = tokio::task::JoinSet::new();
        for attempt in 0..8 {
            let database = database.clone();
            tasks.spawn(async move {
                // Each retry made its own id; only the first stored one counts.
                let customer = customer(&format!("c{attempt}"), "phone-1", "national-id-1");
                database.create_customer("key-1", "hash-1", &customer).await
            });
        }
        let mut created = Vec::new();
        let mut replayed = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result.unwrap().unwrap() {
                CustomerCreated::Created(stored) => created.push(stored.id),
                CustomerCreated::Replayed(stored) => replayed.push(stored.id),
            }
        }
        assert_eq!(created.len(), 1);
        assert!(replayed.iter().all(|id| *id == created[0]), "{replayed:?}");
        assert!(matches!(
            database
                .create_customer(
                    "key-1",
                    "hash-2",
                    &customer("d", "phone-2", "national-id-2")
                )
                .await,
            Err(CustomerWriteError::KeyReused(_))
        ));
        assert!(database.customer_exists(&created[0]).await.unwrap());
    }

    async fn concurrent_people_with_one_phone_make_one_customer(test: TestDatabase) {
        let database = test.database.clone();
        let mut tasks = tokio::task::JoinSet::new();
        for attempt in 0..8 {
            let database = database.clone();
            tasks.spawn(async move {
                let customer = customer(
                    &format!("c{attempt}"),
                    "phone-1",
                    &format!("national-id-{attempt}"),
                );
                database
                    .create_customer(&format!("key-{attempt}"), "hash", &customer)
                    .await
            });
        }
        let (mut created, mut taken) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(CustomerCreated::Created(_)) => created += 1,
                Err(CustomerWriteError::PhoneTaken) => taken += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((created, taken), (1, 7));
        assert_eq!(
            database
                .find_customers(Some("phone-1"), None)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(database
            .find_customers(None, None)
            .await
            .unwrap()
            .is_empty());
    }

    async fn reads_are_listed_in_order_by_page(test: TestDatabase) {
        let database = test.database.clone();
        database
            .create_customer("key", "hash", &customer("c", "p", "n"))
            .await
            .unwrap();
        let reads: Vec<PiiRead> = (0..5)
            .map(|index| PiiRead {
                id: uuid::Uuid::now_v7().to_string(),
                at: Timestamp::from_microsecond(1_777_000_000_000_000 + index).unwrap(),
                api_key_id: "key".into(),
                principal: "compliance".into(),
                customer_id: "c".into(),
                field: "phone".into(),
                reason: format!("ticket {index}"),
            })
            .collect();
        database.record_pii_reads(&reads).await.unwrap();
        let first = database.pii_reads("c", None, 3).await.unwrap();
        let rest = database
            .pii_reads("c", Some(&first[2].id), 3)
            .await
            .unwrap();
        assert_eq!([first, rest].concat(), reads);
        // A read of an unknown field is refused, and with it the whole batch.
        let mut bad = reads[0].clone();
        bad.id = uuid::Uuid::now_v7().to_string();
        bad.field = "income".into();
        assert!(database.record_pii_reads(&[bad]).await.is_err());
        assert_eq!(database.pii_reads("c", None, 100).await.unwrap().len(), 5);
    }

    async fn lookups_are_listed_in_order_and_never_change(test: TestDatabase) {
        let database = test.database.clone();
        database
            .create_customer("key", "hash", &customer("c", "p", "n"))
            .await
            .unwrap();
        let lookup = |field: &str, customer_id: Option<&str>, reason: Option<&str>| PiiLookup {
            id: uuid::Uuid::now_v7().to_string(),
            at: Timestamp::from_microsecond(1_777_000_000_000_000).unwrap(),
            api_key_id: "key".into(),
            principal: "call-centre".into(),
            field: field.into(),
            value_index: "p".into(),
            reason: reason.map(str::to_string),
            customer_id: customer_id.map(str::to_string),
        };
        let lookups = vec![
            lookup("phone", Some("c"), Some("call 1")),
            lookup("national_id", None, None),
        ];
        for one in &lookups {
            database.record_pii_lookup(one).await.unwrap();
        }
        assert_eq!(database.pii_lookups(None, 100).await.unwrap(), lookups);
        assert_eq!(
            database
                .pii_lookups(Some(&lookups[0].id), 100)
                .await
                .unwrap(),
            lookups[1..]
        );
        // Only the two searchable fields, and a found customer must exist.
        assert!(database
            .record_pii_lookup(&lookup("name", None, None))
            .await
            .is_err());
        assert!(database
            .record_pii_lookup(&lookup("phone", Some("nobody"), None))
            .await
            .is_err());
        let (update, delete) = (
            "UPDATE pii_lookups SET customer_id = NULL",
            "DELETE FROM pii_lookups",
        );
        for sql in [update, delete] {
            let refused = match &database {
                Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.is_err(),
                Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.is_err(),
            };
            assert!(refused, "{sql}");
        }
        assert_eq!(database.pii_lookups(None, 100).await.unwrap(), lookups);
    }
}
