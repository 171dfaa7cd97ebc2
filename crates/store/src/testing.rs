//! Databases for tests: a fresh SQLite file, or a fresh PostgreSQL schema, per test, so
//! that tests run in parallel without seeing each other's rows.
//!
//! PostgreSQL tests run on the server named by `TALLY_TEST_DATABASE_URL`. They never pass by
//! skipping silently: with the variable unset they fail, unless `TALLY_TEST_SKIP_POSTGRES=1`
//! says the PostgreSQL half is deliberately skipped (a laptop without a server); with it set
//! and the server unreachable they fail too.

use crate::database::Database;
use crate::error::StoreError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::str::FromStr;

/// The variable naming the PostgreSQL server for tests.
pub const DATABASE_URL_VARIABLE: &str = "TALLY_TEST_DATABASE_URL";

/// The variable that, set to `1`, lets PostgreSQL tests be skipped when
/// [`DATABASE_URL_VARIABLE`] is unset.
pub const SKIP_POSTGRES_VARIABLE: &str = "TALLY_TEST_SKIP_POSTGRES";

/// The URL of the PostgreSQL server for tests, or `None` when it is unset and
/// `TALLY_TEST_SKIP_POSTGRES=1` allows skipping (the skip is printed). Panics, naming both
/// variables, when it is unset and skipping was not asked for: a test run that did not reach
/// PostgreSQL must not look like one that passed on it.
pub fn postgres_url() -> Option<String> {
    if let Ok(url) = std::env::var(DATABASE_URL_VARIABLE) {
        return Some(url);
    }
    if std::env::var(SKIP_POSTGRES_VARIABLE).as_deref() == Ok("1") {
        eprintln!(
            "PostgreSQL half skipped: {DATABASE_URL_VARIABLE} is unset and {SKIP_POSTGRES_VARIABLE}=1"
        );
        return None;
    }
    panic!(
        "this test needs PostgreSQL: set {DATABASE_URL_VARIABLE} (e.g. \
         postgres://postgres@127.0.0.1:5432/test), or set {SKIP_POSTGRES_VARIABLE}=1 to skip \
         the PostgreSQL half deliberately"
    );
}

/// Schemas of test runs older than this are dropped when a new test starts.
const STALE_SCHEMA_SECONDS: u64 = 6 * 3600;

/// A migrated database that lives as long as this value (SQLite) or until a later test run
/// sweeps it (PostgreSQL schemas are kept for inspection, then dropped after some hours).
#[derive(Debug)]
pub struct TestDatabase {
    pub database: Database,
    /// A URL that reaches the same database, for a second process or pool.
    pub url: String,
    /// For PostgreSQL, the schema to put first on the search path.
    pub schema: Option<String>,
    _directory: Option<tempfile_directory::Directory>,
}

impl TestDatabase {
    pub async fn sqlite() -> Result<Self, StoreError> {
        let directory = tempfile_directory::Directory::new()?;
        let url = format!("sqlite://{}", directory.path().join("tally.db").display());
        let database = Database::connect(&url).await?;
        database.migrate().await?;
        Ok(Self {
            database,
            url,
            schema: None,
            _directory: Some(directory),
        })
    }

    /// A fresh schema on the server named by `TALLY_TEST_DATABASE_URL`, or `None` when the
    /// variable is unset and `TALLY_TEST_SKIP_POSTGRES=1` (see [`postgres_url`]). Panics when
    /// it is unset without that, or set but the server cannot be reached.
    pub async fn postgres() -> Option<Self> {
        let url = postgres_url()?;
        match Self::postgres_at(&url).await {
            Ok(database) => Some(database),
            Err(error) => panic!("{DATABASE_URL_VARIABLE}={url} is set but unusable: {error}"),
        }
    }

    /// A fresh, migrated schema on the server at `url`.
    pub async fn postgres_at(url: &str) -> Result<Self, StoreError> {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let schema = format!("tally_test_{seconds}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(url).await?;
        sweep_stale_schemas(&mut admin, seconds).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let options = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
        let database = Database::connect_postgres(options).await?;
        database.migrate().await?;
        Ok(Self {
            database,
            url: url.to_string(),
            schema: Some(schema),
            _directory: None,
        })
    }

    /// A URL that reaches this database in another process (PostgreSQL: the test schema
    /// first on the search path).
    pub fn url_for_another_process(&self) -> String {
        match &self.schema {
            None => self.url.clone(),
            Some(schema) => {
                let separator = if self.url.contains('?') { '&' } else { '?' };
                format!("{}{separator}options=-c%20search_path%3D{schema}", self.url)
            }
        }
    }

    /// Drops the PostgreSQL schema now (benchmarks clean up after themselves); a no-op for
    /// SQLite, whose directory goes when this value is dropped.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        if let Some(schema) = &self.schema {
            self.database.close().await;
            let mut admin = PgConnection::connect(&self.url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut admin)
            .await?;
            admin.close().await?;
        }
        Ok(())
    }

    /// Another, independent connection pool to the same database: a second "process".
    pub async fn connect_again(&self) -> Result<Database, StoreError> {
        match &self.schema {
            None => Database::connect(&self.url).await,
            Some(schema) => {
                let options = PgConnectOptions::from_str(&self.url)?
                    .options([("search_path", schema.as_str())]);
                Database::connect_postgres(options).await
            }
        }
    }
}

/// What a connection reports about the durability of its commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// `PRAGMA journal_mode`, `PRAGMA synchronous` (2 is FULL) and `PRAGMA secure_delete`
    /// (1 is ON: deleted content is zeroed).
    Sqlite {
        journal_mode: String,
        synchronous: i64,
        secure_delete: i64,
    },
    /// `SHOW synchronous_commit`.
    Postgres { synchronous_commit: String },
}

/// The durability settings of every connection Tally opens on `database`, named by who
/// opens it: each connection of the pool (reads, credit, customers, risk and the
/// rest), the ledger writer's own connection, the SQLite checkpointer's, and the consortium
/// log's. Each is opened by the same function the service uses.
pub async fn durability_of_every_connection(
    database: &Database,
) -> Result<Vec<(String, Durability)>, StoreError> {
    let mut found = Vec::new();
    match database {
        Database::Sqlite(pool) => {
            let mut held = Vec::new();
            for index in 0..crate::database::READ_CONNECTIONS_MAX {
                let mut connection = pool.acquire().await?;
                found.push((
                    format!("pool connection {index}"),
                    sqlite_durability(&mut connection).await?,
                ));
                // Held so that the next acquire opens another connection.
                held.push(connection);
            }
            drop(held);
            let mut checkpointer = crate::writer::connect_checkpointer(pool).await?;
            found.push((
                "checkpointer".to_string(),
                sqlite_durability(&mut checkpointer).await?,
            ));
        }
        Database::Postgres(pool) => {
            let mut held = Vec::new();
            for index in 0..crate::database::READ_CONNECTIONS_MAX {
                let mut connection = pool.acquire().await?;
                found.push((
                    format!("pool connection {index}"),
                    postgres_durability(&mut connection).await?,
                ));
                held.push(connection);
            }
        }
    }
    let writer = match crate::writer::connect(database).await? {
        crate::writer::WriterConnection::Sqlite(mut connection) => {
            sqlite_durability(&mut connection).await?
        }
        crate::writer::WriterConnection::Postgres(mut connection) => {
            postgres_durability(&mut connection).await?
        }
    };
    found.push(("ledger writer".to_string(), writer));
    let log_database = database.clone();
    let log = tokio::task::spawn_blocking(move || -> Result<Durability, StoreError> {
        let store = crate::consortium::SqlLogStore::connect(&log_database)?;
        let mut connection = store.connection.borrow_mut();
        store.runtime.block_on(async {
            match &mut *connection {
                crate::consortium::LogConnection::Sqlite(connection) => {
                    sqlite_durability(connection).await
                }
                crate::consortium::LogConnection::Postgres(connection) => {
                    postgres_durability(connection).await
                }
            }
        })
    })
    .await
    .map_err(|error| StoreError::Corrupt(format!("the consortium log thread failed: {error}")))??;
    found.push(("consortium log".to_string(), log));
    Ok(found)
}

async fn sqlite_durability(
    connection: &mut sqlx::SqliteConnection,
) -> Result<Durability, StoreError> {
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *connection)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *connection)
        .await?;
    let secure_delete: i64 = sqlx::query_scalar("PRAGMA secure_delete")
        .fetch_one(&mut *connection)
        .await?;
    Ok(Durability::Sqlite {
        journal_mode,
        synchronous,
        secure_delete,
    })
}

async fn postgres_durability(connection: &mut PgConnection) -> Result<Durability, StoreError> {
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut *connection)
        .await?;
    Ok(Durability::Postgres { synchronous_commit })
}

async fn sweep_stale_schemas(admin: &mut PgConnection, now_seconds: u64) -> Result<(), StoreError> {
    let schemas: Vec<(String,)> = sqlx::query_as(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'tally_test_%'",
    )
    .fetch_all(&mut *admin)
    .await?;
    for (schema,) in schemas {
        let created = schema
            .split('_')
            .nth(2)
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .unwrap_or(0);
        if now_seconds.saturating_sub(created) > STALE_SCHEMA_SECONDS {
            // Another test may be sweeping the same schema; losing that race is harmless.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
    Ok(())
}

/// A temporary directory removed on drop, without pulling a test-only crate into the store.
mod tempfile_directory {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct Directory(PathBuf);

    impl Directory {
        pub fn new() -> std::io::Result<Self> {
            let path = std::env::temp_dir().join(format!("tally-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Directory {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The test database as it comes, for [`on_both_backends!`](crate::on_both_backends) without
/// a setup step.
pub async fn as_is(test: TestDatabase) -> TestDatabase {
    test
}

/// Runs each named async test function on a fresh SQLite database and on a fresh PostgreSQL
/// schema (skipped only under `TALLY_TEST_SKIP_POSTGRES=1`): a module per function with
/// tests `sqlite` and `postgres`. With `setup = path;` each database first goes through that
/// async function (e.g. a harness's constructor) and the test receives its result.
#[macro_export]
macro_rules! on_both_backends {
    (setup = $setup:path; $($name:ident),* $(,)?) => {
        $(mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let test = $crate::testing::TestDatabase::sqlite()
                    .await
                    .expect("a fresh SQLite test database");
                super::$name($setup(test).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                // `None` only when skipping was asked for; the skip is printed.
                if let Some(test) = $crate::testing::TestDatabase::postgres().await {
                    super::$name($setup(test).await).await;
                }
            }
        })*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(setup = $crate::testing::as_is; $($name),*);
    };
}

/// `$body` with `$pool` bound to the pool of `$database`, whichever backend it is: the raw
/// SQL of a test (a count, a row edited by hand) written once and compiled for each backend.
/// The statement must be one both backends accept (`$n` parameters).
#[macro_export]
macro_rules! with_pool {
    ($database:expr, |$pool:ident| $body:expr) => {
        match $database {
            $crate::Database::Sqlite($pool) => $body,
            $crate::Database::Postgres($pool) => $body,
        }
    };
}
