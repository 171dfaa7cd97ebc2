//! Databases for tests: a fresh SQLite file, or a fresh PostgreSQL schema, per test, so
//! that tests run in parallel without seeing each other's rows.
//!
//! PostgreSQL tests run when `TALLY_TEST_DATABASE_URL` is set. When it is set and the server
//! cannot be reached, they fail: a CI run must never pass by skipping them silently.

use crate::database::Database;
use crate::error::StoreError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::str::FromStr;

/// The variable naming the PostgreSQL server for tests.
pub const DATABASE_URL_VARIABLE: &str = "TALLY_TEST_DATABASE_URL";

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
    /// variable is unset. Panics when it is set but the server cannot be reached.
    pub async fn postgres() -> Option<Self> {
        let url = std::env::var(DATABASE_URL_VARIABLE).ok()?;
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
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
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
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
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
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
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

/// Runs each named async test function on a fresh SQLite database and, when
/// `TALLY_TEST_DATABASE_URL` is set, on a fresh PostgreSQL schema: a module per function with
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
                match $crate::testing::TestDatabase::postgres().await {
                    Some(test) => super::$name($setup(test).await).await,
                    None => eprintln!(
                        "PostgreSQL half skipped: {} is unset",
                        $crate::testing::DATABASE_URL_VARIABLE
                    ),
                }
            }
        })*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(setup = $crate::testing::as_is; $($name),*);
    };
}
