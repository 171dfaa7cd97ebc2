//! Storage of the operations console: its sessions, and the counts its overview shows.
//!
//! A session row holds a SHA-256 of the session token (never the token), the API key it was
//! opened with, that key's scopes, the CSRF token of its forms, and when it was created and
//! last used. The overview's counts are plain aggregates over the tables of the ledger, the
//! risk engine, customers and credit; they read, never write.

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, timestamp};
use jiff::Timestamp;

/// A console session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 (hex) of the token the cookie carries.
    pub token_hash: String,
    pub api_key_id: String,
    pub scopes: Vec<String>,
    /// The token every form of the session carries back.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

type SessionTuple = (String, String, String, String, i64, i64);

fn session_of(row: SessionTuple) -> Result<ConsoleSession, StoreError> {
    let (token_hash, api_key_id, scopes, csrf_token, created_at, last_seen_at) = row;
    Ok(ConsoleSession {
        token_hash,
        api_key_id,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        csrf_token,
        created_at: timestamp(created_at)?,
        last_seen_at: timestamp(last_seen_at)?,
    })
}

/// How many of something there are under one name (an action, a status, a bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCount {
    pub name: String,
    pub count: i64,
}

fn named(rows: Vec<(String, i64)>) -> Vec<NamedCount> {
    rows.into_iter()
        .map(|(name, count)| NamedCount { name, count })
        .collect()
}

/// What the overview counts over a time range: each names its table, its time column
/// (microseconds) and a fixed condition, so that no SQL name ever comes from input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Journal entries posted.
    EntriesPosted,
    /// Purchases authorised on credit lines.
    CreditPurchases,
    /// Payments created.
    PaymentsCreated,
}

impl Counted {
    /// The table, its time column and a condition ending in `AND ` (or nothing).
    fn source(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Counted::EntriesPosted => ("journal_entries", "posted_at", ""),
            Counted::CreditPurchases => {
                ("credit_operations", "created_at", "kind = 'authorize' AND ")
            }
            Counted::PaymentsCreated => ("payments", "created_at", ""),
        }
    }
}

/// The count of `counted` over a range bound as `$1` (from) and `$2` (until).
fn count_between_sql(counted: Counted) -> String {
    let (table, column, condition) = counted.source();
    // Table, column and condition come from the fixed set of `Counted`; the range is bound.
    format!("SELECT COUNT(*) FROM {table} WHERE {condition}{column} >= $1 AND {column} < $2")
}

/// Credit applications over a range bound as `$1` and `$2`, by answer: a range of
/// `credit_operations_by_kind_and_time` (migrations 0044 on SQLite, 0045 on PostgreSQL).
const CREDIT_APPLICATIONS_SQL: &str =
    "SELECT CASE WHEN answer_code = 201 THEN 'approved' ELSE 'declined' END AS answer, \
     COUNT(*) FROM credit_operations WHERE kind = 'open' AND created_at >= $1 \
     AND created_at < $2 GROUP BY answer ORDER BY answer";

/// Accounts by bucket, each backend reading the state's JSON its own way: the expression
/// is the index's (`credit_accounts_by_bucket`) exactly, so the count reads the index, not
/// every account's state.
const BUCKETS_SQLITE_SQL: &str = "SELECT json_extract(state, '$.bucket'), COUNT(*) \
     FROM credit_accounts GROUP BY json_extract(state, '$.bucket')";
const BUCKETS_POSTGRES_SQL: &str = "SELECT state::jsonb ->> 'bucket', COUNT(*) \
     FROM credit_accounts GROUP BY state::jsonb ->> 'bucket'";

impl Database {
    /// Stores a new session.
    pub async fn insert_console_session(&self, session: &ConsoleSession) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO console_sessions (token_hash, api_key_id, scopes, csrf_token, \
                 created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&session.token_hash)
            .bind(&session.api_key_id)
            .bind(session.scopes.join(" "))
            .bind(&session.csrf_token)
            .bind(micros(session.created_at))
            .bind(micros(session.last_seen_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The session whose token hashes to `token_hash`.
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row: Option<SessionTuple> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT token_hash, api_key_id, scopes, csrf_token, created_at, last_seen_at \
                 FROM console_sessions WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
        });
        row.map(session_of).transpose()
    }

    /// Records that the session was used at `at`.
    pub async fn touch_console_session(
        &self,
        token_hash: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .bind(token_hash)
                .bind(micros(at))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a session; `false` when there was none.
    pub async fn delete_console_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// Ends every session last used before `cutoff` (idle past the timeout); how many.
    pub async fn delete_console_sessions_idle_since(
        &self,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query("DELETE FROM console_sessions WHERE last_seen_at < $1")
                .bind(micros(cutoff))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// How many of `counted` happened in `[from, to)`.
    pub async fn count_between(
        &self,
        counted: Counted,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<i64, StoreError> {
        let sql = count_between_sql(counted);
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(micros(from))
                .bind(micros(to))
                .fetch_one(pool)
                .await?
        }))
    }

    /// Risk decisions on events dated in `[from, to)`, by action, in action name order.
    pub async fn risk_decisions_by_action(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<NamedCount>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT action, COUNT(*) FROM risk_events WHERE at >= $1 AND at < $2 \
                 GROUP BY action ORDER BY action",
            )
            .bind(micros(from))
            .bind(micros(to))
            .fetch_all(pool)
            .await?
        });
        Ok(named(rows))
    }

    /// The latest time anything was recorded: a journal entry posted or an event the risk
    /// engine decided (`None` on an empty database). The overview falls back to its day
    /// when today has nothing yet, as on a demo's database whose business is in the past.
    pub async fn latest_activity_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let latest: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT MAX(at) FROM (SELECT MAX(posted_at) AS at FROM journal_entries \
                 UNION ALL SELECT MAX(at) AS at FROM risk_events) latest",
            )
            .fetch_one(pool)
            .await?
        });
        latest.map(timestamp).transpose()
    }

    /// Credit applications decided in `[from, to)`: `approved` (an account opened) and
    /// `declined`, from the opening operations stored with their answer.
    pub async fn credit_applications_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<NamedCount>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(CREDIT_APPLICATIONS_SQL)
            .bind(micros(from))
            .bind(micros(to))
            .fetch_all(pool)
            .await?
        });
        Ok(named(rows))
    }

    /// Risk cases by status, in status name order.
    pub async fn risk_cases_by_status(&self) -> Result<Vec<NamedCount>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM risk_cases GROUP BY status ORDER BY status",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(named(rows))
    }

    /// How many customers there are.
    pub async fn customer_count(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM customers")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Credit accounts by delinquency bucket (`current`, `m1`, … `m6_plus`), read from each
    /// account's stored state, in bucket name order.
    pub async fn credit_accounts_by_bucket(&self) -> Result<Vec<NamedCount>, StoreError> {
        // The bucket lives in the state's JSON; each backend has its own way to read it (see
        // `BUCKETS_SQLITE_SQL`); an account without one is `unknown`.
        let rows: Vec<(Option<String>, i64)> = match self {
            Database::Sqlite(pool) => sqlx::query_as(BUCKETS_SQLITE_SQL).fetch_all(pool).await?,
            Database::Postgres(pool) => {
                sqlx::query_as(BUCKETS_POSTGRES_SQL).fetch_all(pool).await?
            }
        };
        let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
        for (bucket, count) in rows {
            *counts
                .entry(bucket.unwrap_or_else(|| "unknown".to_string()))
                .or_insert(0) += count;
        }
        Ok(named(counts.into_iter().collect()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    async fn given(test: TestDatabase) -> TestDatabase {
        test
    }

    crate::on_both_backends!(
        setup = given;
        sessions_are_stored_touched_and_ended,
        accounts_are_counted_by_bucket_one_without_as_unknown,
        the_overview_counts_read_their_indexes,
    );

    /// The plan the database makes for `sql` (its `$n` parameters bound to 0), one line a
    /// step: `EXPLAIN QUERY PLAN` on SQLite; `EXPLAIN` on PostgreSQL with sequential scans
    /// priced out (`enable_seqscan = off`, in a transaction rolled back), since on a nearly
    /// empty table reading the table is rightly cheaper: what is asked is whether the index
    /// can serve the query at all. A query whose expression no longer matches its index
    /// still gets a sequential scan then.
    async fn plan(database: &Database, sql: &str, parameters: usize) -> String {
        match database {
            Database::Sqlite(pool) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let mut query =
                    sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
                for _ in 0..parameters {
                    query = query.bind(0_i64);
                }
                let steps = query.fetch_all(pool).await.unwrap();
                steps
                    .into_iter()
                    .map(|(_, _, _, detail)| detail)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Database::Postgres(pool) => {
                let mut transaction = pool.begin().await.unwrap();
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *transaction)
                    .await
                    .unwrap();
                let explain = format!("EXPLAIN {sql}");
                let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(explain));
                for _ in 0..parameters {
                    query = query.bind(0_i64);
                }
                let steps = query.fetch_all(&mut *transaction).await.unwrap();
                transaction.rollback().await.unwrap();
                steps.join("\n")
            }
        }
    }

    /// The overview's counts of purchases, applications and buckets read the indexes made
    /// for them (`credit_operations_by_kind_and_time`, `credit_accounts_by_bucket`:
    /// migrations 0044 on SQLite, 0045 on PostgreSQL), the time range within the index
    /// rather than filtered after it: without them the overview read every credit
    /// operation and every account's state. The statements are the ones the counts run.
    async fn the_overview_counts_read_their_indexes(test: TestDatabase) {
        let database = &test.database;
        let by_kind_and_time = [
            count_between_sql(Counted::CreditPurchases),
            CREDIT_APPLICATIONS_SQL.to_string(),
        ];
        for sql in &by_kind_and_time {
            let plan = plan(database, sql, 2).await;
            match database {
                Database::Sqlite(_) => assert!(
                    plan.contains(
                        "INDEX credit_operations_by_kind_and_time \
                         (kind=? AND created_at>? AND created_at<?)"
                    ),
                    "{sql}\n{plan}"
                ),
                Database::Postgres(_) => {
                    assert!(
                        plan.contains("using credit_operations_by_kind_and_time"),
                        "{sql}\n{plan}"
                    );
                    let condition = plan
                        .lines()
                        .find(|line| line.trim_start().starts_with("Index Cond:"))
                        .unwrap_or_else(|| panic!("{sql}\n{plan}"));
                    for bound in ["kind = ", "created_at >= ", "created_at < "] {
                        assert!(condition.contains(bound), "{bound} in {sql}\n{plan}");
                    }
                    assert!(!plan.contains("Filter:"), "{sql}\n{plan}");
                }
            }
        }
        let (buckets, expected) = match database {
            Database::Sqlite(_) => (BUCKETS_SQLITE_SQL, "INDEX credit_accounts_by_bucket"),
            Database::Postgres(_) => (
                BUCKETS_POSTGRES_SQL,
                "Index Scan using credit_accounts_by_bucket",
            ),
        };
        let plan = plan(database, buckets, 0).await;
        assert!(plan.contains(expected), "{buckets}\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{buckets}\n{plan}");
    }

    /// Buckets in name order; a state without one counted as `unknown` (NULL sorts first on
    /// SQLite and last on PostgreSQL: the order is not the database's).
    async fn accounts_are_counted_by_bucket_one_without_as_unknown(test: TestDatabase) {
        let database = test.database.clone();
        for (id, state) in [
            (1, r#"{"bucket":"m1"}"#),
            (2, r#"{"bucket":"current"}"#),
            (3, r#"{"bucket":"current"}"#),
            (4, r#"{"limit":1}"#),
            (5, r#"{"bucket":"m6_plus"}"#),
        ] {
            on_pool!(&database, pool => {
                sqlx::query("INSERT INTO credit_accounts (id, currency, state) VALUES ($1, 'CNY', $2)")
                    .bind(id as i64)
                    .bind(state)
                    .execute(pool)
                    .await
                    .unwrap()
                    .rows_affected()
            });
        }
        let counted: Vec<(String, i64)> = database
            .credit_accounts_by_bucket()
            .await
            .unwrap()
            .into_iter()
            .map(|count| (count.name, count.count))
            .collect();
        assert_eq!(
            counted,
            [
                ("current".to_string(), 2),
                ("m1".to_string(), 1),
                ("m6_plus".to_string(), 1),
                ("unknown".to_string(), 1)
            ]
        );
    }

    async fn sessions_are_stored_touched_and_ended(test: TestDatabase) {
        let database = test.database.clone();
        let at = Timestamp::from_microsecond(1_777_000_000_000_000).unwrap();
        let key = database
            .create_api_key("analyst", &["risk:analyst".to_string()], at)
            .await
            .unwrap();
        let session = ConsoleSession {
            token_hash: "hash".into(),
            api_key_id: key.key.id.clone(),
            scopes: vec!["risk:analyst".into(), "credit:read".into()],
            csrf_token: "csrf".into(),
            created_at: at,
            last_seen_at: at,
        };
        database.insert_console_session(&session).await.unwrap();
        assert_eq!(
            database.console_session("hash").await.unwrap(),
            Some(session.clone())
        );
        let later = Timestamp::from_microsecond(1_777_000_060_000_000).unwrap();
        database.touch_console_session("hash", later).await.unwrap();
        let touched = database.console_session("hash").await.unwrap().unwrap();
        assert_eq!(touched.last_seen_at, later);
        assert_eq!(
            database
                .delete_console_sessions_idle_since(later)
                .await
                .unwrap(),
            0
        );
        assert!(database.delete_console_session("hash").await.unwrap());
        assert!(!database.delete_console_session("hash").await.unwrap());
        assert_eq!(database.console_session("hash").await.unwrap(), None);
    }
}
