//! The crash driver of `tally serve`: concurrent clients send numbered requests, each with
//! its own idempotency key, the process is killed with SIGKILL once enough were
//! acknowledged, restarted on the same database, and every request is sent again with its
//! key, acknowledged or not. Each retry must answer the status its request expects, and each
//! request acknowledged before the crash the same body as then: nothing acknowledged was
//! lost, nothing was applied twice.

use super::{create_key, post, scalar, start_server, wait_until_healthy};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_store::Database;
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// `tally serve` on a test database, with one API key.
pub struct Served {
    pub url: String,
    pub port: u16,
    pub base: String,
    pub client: reqwest::Client,
    pub key: String,
    pub directory: TempDir,
    environment: Vec<(String, String)>,
    server: Child,
}

impl Served {
    /// Makes the key `key_name` with `scopes` on the database at `url` and starts the
    /// server with `environment`.
    pub async fn start(
        url: String,
        key_name: &str,
        scopes: &[&str],
        environment: &[(&str, &str)],
    ) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let key = create_key(&url, directory.path(), key_name, scopes);
        let port = super::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let server = start_server(&url, port, directory.path(), environment);
        wait_until_healthy(&client, &base).await;
        Self {
            url,
            port,
            base,
            client,
            key,
            directory,
            environment: environment
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            server,
        }
    }

    pub async fn post(
        &self,
        idempotency: &str,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        post(&self.client, &self.base, &self.key, idempotency, path, body).await
    }

    /// A POST that must succeed (any 2xx): its answer.
    pub async fn expect_ok(&self, idempotency: &str, path: &str, body: Value) -> Value {
        let (status, reply) = self.post(idempotency, path, &body).await.unwrap();
        assert!(
            (200..300).contains(&status),
            "{idempotency} {path}: {status} {reply}"
        );
        reply
    }

    pub async fn get(&self, path: &str) -> Value {
        super::get(&self.client, &self.base, &self.key, path).await
    }

    /// Stops the server with SIGKILL.
    pub fn kill(&mut self) {
        self.server.kill().unwrap();
        self.server.wait().unwrap();
    }

    /// Starts the server again on the same database, port and environment.
    pub async fn restart(&mut self) {
        let environment: Vec<(&str, &str)> = self
            .environment
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        self.server = start_server(&self.url, self.port, self.directory.path(), &environment);
        wait_until_healthy(&self.client, &self.base).await;
    }

    /// The environment of the next [`Served::restart`].
    pub fn set_environment(&mut self, environment: Vec<(String, String)>) {
        self.environment = environment;
    }

    /// The running server's process.
    pub fn process(&mut self) -> &mut Child {
        &mut self.server
    }
}

/// A test that fails leaves no server behind (it would go on serving, and recovering,
/// until the machine stops).
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A request of the load: its path, body and the status that acknowledges it.
pub type Request = (String, Value, u16);

/// The load a crash test drives.
pub struct Load {
    /// Requests `0..requests`, each made by `request`.
    pub requests: usize,
    pub clients: usize,
    /// Acknowledged requests after which the server is killed.
    pub kill_after: usize,
    /// How often the driver looks at the acknowledged count.
    pub poll: Duration,
    /// Request `index` is sent with idempotency key `{idempotency_prefix}{index}`.
    pub idempotency_prefix: &'static str,
    /// What a request is called in failure messages ("transfer", "operation").
    pub noun: &'static str,
    pub request: Arc<dyn Fn(usize) -> Request + Send + Sync>,
}

/// The replies to the requests acknowledged so far, by request index.
pub type Replies = Arc<Mutex<BTreeMap<usize, Value>>>;

/// Drives `load` against `served` until `kill_after` requests are acknowledged, kills the
/// server, restarts it and retries every request; answers how many were acknowledged
/// before the crash (at least `kill_after`, fewer than all).
pub async fn kill_mid_load_and_retry(served: &mut Served, load: &Load) -> usize {
    let noun = load.noun;
    let (clients, first_replies) = start_load(served, load);
    let message = format!("the load never reached {} {noun}s", load.kill_after);
    let timeout = Duration::from_secs(120);
    clients
        .kill_server_at(
            &mut served.server,
            load.kill_after,
            timeout,
            load.poll,
            &message,
        )
        .await;
    let acknowledged_before_crash = first_replies.lock().unwrap().len();
    assert!(acknowledged_before_crash >= load.kill_after);
    assert!(
        acknowledged_before_crash < load.requests,
        "the server was killed after the load ended"
    );

    // Restart on the same database and retry every request, acknowledged or not.
    served.restart().await;
    retry_every_request(served, load, &first_replies).await;
    acknowledged_before_crash
}

/// Starts the clients of `load` against `served`; they send requests until the load ends or
/// they are told the server died. Answers them, and the replies that acknowledged requests.
pub fn start_load(served: &Served, load: &Load) -> (Clients, Replies) {
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let first_replies: Replies = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..load.clients {
        let (client, base, key) = (
            reqwest::Client::new(),
            served.base.clone(),
            served.key.clone(),
        );
        let (next, acknowledged, dead, first_replies) = (
            next.clone(),
            acknowledged.clone(),
            dead.clone(),
            first_replies.clone(),
        );
        let (request, requests, prefix) =
            (load.request.clone(), load.requests, load.idempotency_prefix);
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= requests || dead.load(Ordering::SeqCst) {
                    break;
                }
                let (path, body, expected) = request(index);
                let idempotency = format!("{prefix}{index}");
                // A request cut off by the kill gets no answer; one that is answered gets
                // the status that acknowledges it, or the test fails: a refusal under load
                // is a defect, not noise to skip.
                if let Ok((status, reply)) =
                    post(&client, &base, &key, &idempotency, &path, &body).await
                {
                    assert_eq!(
                        status, expected,
                        "{path} ({idempotency}) under load: {reply}"
                    );
                    first_replies.lock().unwrap().insert(index, reply);
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let clients = Clients {
        acknowledged,
        dead,
        tasks,
    };
    (clients, first_replies)
}

/// Sends every request of `load` again with its key, acknowledged or not: each must answer
/// the status its request expects, and each acknowledged one the same body as the first
/// time.
pub async fn retry_every_request(served: &Served, load: &Load, first_replies: &Replies) {
    let noun = load.noun;
    let mut retries = Vec::new();
    for worker in 0..load.clients {
        let (client, base, key, first_replies) = (
            reqwest::Client::new(),
            served.base.clone(),
            served.key.clone(),
            first_replies.clone(),
        );
        let (request, requests, clients, prefix) = (
            load.request.clone(),
            load.requests,
            load.clients,
            load.idempotency_prefix,
        );
        retries.push(tokio::spawn(async move {
            for index in (worker..requests).step_by(clients) {
                let (path, body, expected) = request(index);
                let idempotency = format!("{prefix}{index}");
                let (status, reply) = post(&client, &base, &key, &idempotency, &path, &body)
                    .await
                    .unwrap();
                assert_eq!(status, expected, "retry of {noun} {index}: {reply}");
                if let Some(first) = first_replies.lock().unwrap().get(&index) {
                    assert_eq!(
                        &reply, first,
                        "{noun} {index} answered differently after the crash"
                    );
                }
            }
        }));
    }
    for retry in retries {
        retry.await.unwrap();
    }
}

/// The clients of a load: how many requests were acknowledged, whether they were told the
/// server died, and their tasks.
pub struct Clients {
    pub acknowledged: Arc<AtomicUsize>,
    pub dead: Arc<AtomicBool>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Clients {
    /// Waits until `kill_after` requests are acknowledged (looking every `poll`, failing with
    /// `message` after `timeout`), kills `server` with SIGKILL (no shutdown, nothing beyond
    /// what was committed survives), tells the clients and waits for them to stop.
    pub async fn kill_server_at(
        self,
        server: &mut Child,
        kill_after: usize,
        timeout: Duration,
        poll: Duration,
        message: &str,
    ) {
        let ready = |acknowledged| acknowledged >= kill_after;
        self.kill_server_when(server, ready, timeout, poll, message)
            .await;
    }

    /// As [`Clients::kill_server_at`], once `ready` holds of the acknowledged count.
    pub async fn kill_server_when(
        self,
        server: &mut Child,
        mut ready: impl FnMut(usize) -> bool,
        timeout: Duration,
        poll: Duration,
        message: &str,
    ) {
        let deadline = Instant::now() + timeout;
        while !ready(self.acknowledged.load(Ordering::SeqCst)) {
            assert!(Instant::now() < deadline, "{message}");
            tokio::time::sleep(poll).await;
        }
        server.kill().unwrap();
        server.wait().unwrap();
        self.dead.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// The books balance after the retries: in every currency posted and pending debits equal
/// credits, and every account's balance agrees with its legs.
pub async fn assert_books_balance(database: &Database) {
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted);
        assert_eq!(totals.debits_pending, totals.credits_pending);
    }
    assert!(database.inconsistent_accounts().await.unwrap().is_empty());
}

/// No credit operation is left half done.
pub async fn assert_no_operation_pending(database: &Database) {
    let sql = "SELECT COUNT(*) FROM credit_operations WHERE status = 'pending'";
    assert_eq!(scalar(database, sql).await, 0);
}

/// The two tests of a crash test: `$run(url, database)` on a migrated SQLite file named
/// `$file`, and on a PostgreSQL schema (skipped only under `TALLY_TEST_SKIP_POSTGRES=1`,
/// which prints the skip).
// Not every test binary uses it.
#[allow(unused_macros)]
macro_rules! crash_tests {
    ($run:ident, $file:literal; $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let directory = tempfile::tempdir().unwrap();
            let (url, database) = $crate::support::sqlite_database(directory.path(), $file).await;
            $run(url, database).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(test) = tally_store::testing::TestDatabase::postgres().await else {
                return;
            };
            $run(test.url_for_another_process(), test.database.clone()).await;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use crash_tests;
