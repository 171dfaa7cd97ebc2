//! What the tests of the `tally` binary share: a free port, starting the real binary and
//! waiting for it to answer, an API key made by `tally keys create`, a POST with an
//! idempotency key, a count read straight from the database, the crash driver
//! ([`crash`]) that kills `tally serve` mid-load and retries every request, and the power
//! cut ([`power_cut`]) that also drops every write not yet synced.
// Each test binary uses part of it.
#![allow(dead_code)]

pub mod crash;
pub mod power_cut;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tally_store::Database;

pub const BINARY: &str = env!("CARGO_BIN_EXE_tally");

/// 32 bytes of 7 and of 9, base64: fixed test keys for personal data.
pub const ENCRYPTION_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
pub const BLIND_INDEX_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/// The environment that gives `tally serve` those privacy keys.
pub const PRIVACY_KEYS: &[(&str, &str)] = &[
    ("TALLY__PRIVACY__ENCRYPTION_KEYS__K1", ENCRYPTION_KEY),
    ("TALLY__PRIVACY__ACTIVE_ENCRYPTION_KEY", "k1"),
    ("TALLY__PRIVACY__BLIND_INDEX_KEY", BLIND_INDEX_KEY),
];

/// The scorecard attributes of the example credit application.
const APPLICATION: &str = include_str!("../../../../models/example-application.json");

/// The body of `POST /v1/credit/accounts` for `customer` (its id as JSON): statement day 5,
/// an income of 15,000.00 and debts of 2,000.00 a month, and the example application's
/// attributes.
pub fn credit_application(customer: &Value) -> Value {
    let attributes: Value = serde_json::from_str(APPLICATION).unwrap();
    serde_json::json!({
        "customer_id": customer,
        "statement_day": 5,
        "application": {
            "monthly_income": {"value": "15000.00", "currency": "CNY"},
            "monthly_debt_payments": {"value": "2000.00", "currency": "CNY"},
            "attributes": attributes,
        }
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary with `arguments` in `directory`, with extra environment, logging
/// warnings only and printing nothing.
pub fn spawn(arguments: &[&str], directory: &Path, environment: &[(&str, &str)]) -> Child {
    Command::new(BINARY)
        .args(arguments)
        .current_dir(directory)
        .env("TALLY_LOG", "warn")
        .envs(environment.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `tally serve` on `url` and `port` in `directory`, with extra environment.
pub fn start_server(url: &str, port: u16, directory: &Path, environment: &[(&str, &str)]) -> Child {
    let listen = format!("127.0.0.1:{port}");
    spawn(
        &["serve", "--database-url", url, "--listen", &listen],
        directory,
        environment,
    )
}

/// Waits until `url` answers with success, for at most `timeout`; panics with `message`.
pub async fn wait_until_answering(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    message: &str,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(response) = client.get(url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{message}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_until_healthy(client: &reqwest::Client, base: &str) {
    let url = format!("{base}/healthz");
    let timeout = Duration::from_secs(60);
    wait_until_answering(client, &url, timeout, "server did not become healthy").await;
}

/// What one run of the binary printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

/// Runs the binary with `arguments` in `directory` to its end: whether it succeeded, and
/// what it printed (standard output, then standard error).
pub fn run_binary(arguments: &[&str], directory: &Path) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(arguments)
        .current_dir(directory)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `tally keys create --name NAME --scope …` on the database at `url`: the key's secret.
pub fn create_key(url: &str, directory: &Path, name: &str, scopes: &[&str]) -> String {
    let mut arguments = vec!["keys", "create", "--name", name];
    for scope in scopes {
        arguments.extend(["--scope", scope]);
    }
    arguments.extend(["--database-url", url]);
    let output = Command::new(BINARY)
        .args(&arguments)
        .current_dir(directory)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

pub async fn post(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    idempotency: &str,
    path: &str,
    body: &Value,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let value = response.json().await?;
    Ok((status, value))
}

/// The JSON answer of a GET with `key`.
pub async fn get(client: &reqwest::Client, base: &str, key: &str, path: &str) -> Value {
    client
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The single number a query answers (a count, a balance), read straight from the database.
pub async fn scalar(database: &Database, sql: &str) -> i64 {
    tally_store::with_pool!(database, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
        sql
    ))
    .fetch_one(pool)
    .await
    .unwrap())
}

/// A migrated SQLite database in `directory`: its URL and a pool.
pub async fn sqlite_database(directory: &Path, file: &str) -> (String, Database) {
    let url = format!("sqlite://{}", directory.join(file).display());
    let database = Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    (url, database)
}
