//! What the server's integration tests share: the application in process (tower `oneshot`,
//! no socket) on a fixed clock over a fresh test database, SQLite or PostgreSQL (each test
//! file runs its stories on both through `tally_store::on_both_backends!`), API keys, and
//! requests answered as status and JSON, or as status, headers and bytes where the headers
//! or the exact body matter.
// Each test binary uses part of the harness.
#![allow(dead_code)]

pub mod console;
pub mod consortium;
pub mod recon;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_channel::simulator::{serve, SimulatorConfig, SimulatorControl};
use tally_channel::{Channel, HttpChannel, HttpChannelConfig};
use tally_core::{Clock, Currency, ManualClock, Secret};
use tally_privacy::Privacy;
use tally_server::state::Limits;
use tally_server::{app_with_risk, AppState};
use tally_service::credit::decision::{CreditFiles, CreditService};
use tally_service::payments::merchants::testing::onboard_test_merchants;
use tally_service::payments::risk_control::KeptCodes;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_service::risk::RiskService;
use tally_service::risk_gate::RiskGate;
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};
use tower::ServiceExt;

// ----- Requests and answers -----

/// A request with an `Authorization` header value (if any), an idempotency key (if any) and
/// a JSON body (if any).
pub fn request(
    method: &str,
    uri: &str,
    authorization: Option<&str>,
    idempotency: Option<&str>,
    body: Option<String>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body)),
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// The `Authorization` header value of an API key.
pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// An answer as received: status, headers and the body's bytes.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or `null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as JSON, or as a JSON string when it is not JSON (a text answer such as the
    /// metrics can then still be read).
    pub fn json_or_text(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: body.to_vec(),
    }
}

/// A request to `router` with API key `key` (if any): its status and JSON body.
pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let authorization = key.map(bearer);
    let answer = send(
        router,
        request(method, uri, authorization.as_deref(), idempotency, body),
    )
    .await;
    (answer.status, answer.json_or_text())
}

/// The stable code of an error answer, or "" when it has none.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

// ----- The application -----

/// What a test serves besides the ledger: privacy keys (customers), the credit service, the
/// risk service, and the request limits.
#[derive(Clone, Default)]
pub struct Setup {
    pub limits: Limits,
    pub privacy: Option<Arc<Privacy>>,
    pub credit: bool,
    pub risk: bool,
    /// The payment service (with the credit service) and a bank simulator for its channel.
    pub payments: bool,
    /// Where the bank simulator sends its notifications; none are sent without it.
    pub notify_url: Option<String>,
}

impl Setup {
    pub fn limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    pub fn privacy(self, privacy: Arc<Privacy>) -> Self {
        Self {
            privacy: Some(privacy),
            ..self
        }
    }

    pub fn credit(self) -> Self {
        Self {
            credit: true,
            ..self
        }
    }

    /// The risk service, with the personal-data keys its events' cards and addresses are
    /// fingerprinted under ([`privacy`] unless keys were given).
    pub fn risk(self) -> Self {
        Self {
            risk: true,
            privacy: self.privacy.or_else(|| Some(privacy())),
            ..self
        }
    }

    pub fn payments(self) -> Self {
        Self {
            payments: true,
            credit: true,
            ..self
        }
    }

    /// The payment service, its bank sending notifications to `url`.
    pub fn notify(self, url: String) -> Self {
        Self {
            notify_url: Some(url),
            ..self.payments()
        }
    }
}

/// The secret of the bank simulator the payment tests run.
pub const BANK_SECRET: &str = "bank-secret";

/// A bank simulator on a free port, in this process: its URL and control client. Answers
/// it loses arrive 1.5 s late, after the channel's 300 ms timeout.
pub async fn bank() -> (String, Arc<SimulatorControl>) {
    bank_notifying(None).await
}

/// A bank simulator as [`bank`] that sends its notifications to `notify_url`.
pub async fn bank_notifying(notify_url: Option<String>) -> (String, Arc<SimulatorControl>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let mut config = SimulatorConfig::new(BANK_SECRET);
    config.lost_answer_delay_ms = 1_500;
    config.notify_url = notify_url;
    tokio::spawn(async move { serve(listener, config).await });
    let control = Arc::new(SimulatorControl::new(&url, BANK_SECRET).unwrap());
    (url, control)
}

/// The merchants the payment tests' payments name.
pub const TEST_MERCHANTS: &[&str] = &["m1", "m2", "merchant-1"];

/// The payment service over `database`, its channel the bank at `bank_url`.
pub fn payment_service(
    database: &Database,
    writer: &LedgerWriter,
    credit: Option<Arc<CreditService>>,
    bank_url: &str,
) -> Arc<PaymentService> {
    let channel: Arc<dyn Channel> = Arc::new(
        HttpChannel::new(HttpChannelConfig {
            base_url: bank_url.to_string(),
            timeout: std::time::Duration::from_millis(300),
            secret: Secret::new(BANK_SECRET.to_string()),
        })
        .unwrap(),
    );
    Arc::new(PaymentService::new(
        database.clone(),
        writer.clone(),
        credit,
        Some(channel),
        PaymentsConfig {
            channel_secret: Some(Secret::new(BANK_SECRET.to_string())),
            ..PaymentsConfig::default()
        },
    ))
}

/// One `tally serve` in process over a database: its own ledger writer, services and router.
pub struct Instance {
    pub router: Router,
    pub state: AppState,
    pub writer: LedgerWriter,
    pub credit: Option<Arc<CreditService>>,
    pub risk: Option<Arc<RiskService>>,
    pub payments: Option<Arc<PaymentService>>,
    /// The bank simulator behind the payment service's channel.
    pub bank: Option<Arc<SimulatorControl>>,
    /// The one-time codes the risk gate sent.
    pub codes: Arc<KeptCodes>,
}

/// `state` with a risk gate over `risk` (when there is one) that keeps its one-time codes in
/// `codes`, as `tally serve` sends them to the log.
pub fn with_gate(
    state: AppState,
    risk: Option<&Arc<RiskService>>,
    codes: &Arc<KeptCodes>,
) -> AppState {
    let gate = risk.map(|risk| {
        Arc::new(
            RiskGate::new(
                risk.clone(),
                state.database.clone(),
                state.clock.clone(),
                state.privacy.clone(),
                state.credit.clone(),
            )
            .with_payments(state.payments.clone())
            .with_code_sink(codes.clone()),
        )
    });
    state.with_risk_gate(gate)
}

impl Instance {
    pub async fn start(database: &Database, clock: Arc<ManualClock>, setup: &Setup) -> Self {
        Self::start_with_risk(database, clock, setup, None).await
    }

    /// As [`Instance::start`], with `shared` as its risk engine when given: one risk process
    /// serves a database, so a second service instance uses the first one's.
    pub async fn start_with_risk(
        database: &Database,
        clock: Arc<ManualClock>,
        setup: &Setup,
        shared: Option<Arc<RiskService>>,
    ) -> Self {
        let dyn_clock: Arc<dyn Clock> = clock;
        let (writer, _) = LedgerWriter::start(database, dyn_clock.clone(), WriterConfig::default())
            .await
            .unwrap();
        let credit = if setup.credit {
            Some(credit_service(database, &writer).await)
        } else {
            None
        };
        let risk = if shared.is_some() {
            shared
        } else if setup.risk {
            let risk = RiskService::open(database, dyn_clock.clone()).await;
            Some(Arc::new(risk.unwrap().with_privacy(setup.privacy.clone())))
        } else {
            None
        };
        let (payments, bank) = if setup.payments {
            let (url, bank) = bank_notifying(setup.notify_url.clone()).await;
            let payments = payment_service(database, &writer, credit.clone(), &url);
            // The merchants the payment tests name, onboarded as a merchant would be first.
            onboard_test_merchants(&payments, TEST_MERCHANTS, Currency::CNY, dyn_clock.now())
                .await
                .unwrap();
            if let Some(risk) = &risk {
                payments.attach_risk(risk.clone());
            }
            (Some(payments), Some(bank))
        } else {
            (None, None)
        };
        let state = AppState::new(database.clone(), writer.clone(), dyn_clock, setup.limits)
            .with_privacy(setup.privacy.clone())
            .with_credit(credit.clone())
            .with_payments(payments.clone());
        let codes = Arc::new(KeptCodes::default());
        let state = with_gate(state, risk.as_ref(), &codes);
        Self {
            router: app_with_risk(state.clone(), risk.clone()),
            state,
            writer,
            credit,
            risk,
            payments,
            bank,
            codes,
        }
    }
}

/// The credit service with the shipped files (products, policy, models).
pub async fn credit_service(database: &Database, writer: &LedgerWriter) -> Arc<CreditService> {
    let files = CreditFiles::default().load().unwrap();
    Arc::new(
        CreditService::start(database.clone(), writer.clone(), files)
            .await
            .unwrap(),
    )
}

/// The application on a fixed clock over a fresh test database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub database: Database,
    pub writer: LedgerWriter,
    pub clock: Arc<ManualClock>,
    pub credit: Option<Arc<CreditService>>,
    pub risk: Option<Arc<RiskService>>,
    pub payments: Option<Arc<PaymentService>>,
    pub bank: Option<Arc<SimulatorControl>>,
    /// The one-time codes the risk gate sent.
    pub codes: Arc<KeptCodes>,
    pub setup: Setup,
    pub test: TestDatabase,
}

impl TestApp {
    /// Serves `test`'s database from `start` (an RFC 3339 time) on.
    pub async fn start(test: TestDatabase, start: &str, setup: Setup) -> Self {
        let clock = Arc::new(ManualClock::new(start.parse().unwrap()));
        let database = test.database.clone();
        let instance = Instance::start(&database, clock.clone(), &setup).await;
        Self {
            router: instance.router,
            state: instance.state,
            database,
            writer: instance.writer,
            clock,
            credit: instance.credit,
            risk: instance.risk,
            payments: instance.payments,
            bank: instance.bank,
            codes: instance.codes,
            setup,
            test,
        }
    }

    /// Serves again with the current setup and services, on the same writer (a restart
    /// with another configuration, or after a service was started again).
    pub fn serve(&mut self) {
        let dyn_clock: Arc<dyn Clock> = self.clock.clone();
        self.state = AppState::new(
            self.database.clone(),
            self.writer.clone(),
            dyn_clock,
            self.setup.limits,
        )
        .with_privacy(self.setup.privacy.clone())
        .with_credit(self.credit.clone())
        .with_payments(self.payments.clone());
        self.state = with_gate(self.state.clone(), self.risk.as_ref(), &self.codes);
        self.router = app_with_risk(self.state.clone(), self.risk.clone());
    }

    /// Another `tally serve` on the same database: its own writer, services and key cache,
    /// and the first one's risk engine (one risk process per database).
    pub async fn another_instance(&self) -> Instance {
        Instance::start_with_risk(
            &self.database,
            self.clock.clone(),
            &self.setup,
            self.risk.clone(),
        )
        .await
    }

    /// A new API key's secret.
    pub async fn key(&self, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|scope| scope.to_string()).collect();
        self.database
            .create_api_key(name, &scopes, self.clock.now())
            .await
            .unwrap()
            .secret
            .expose()
            .clone()
    }

    /// A request with API key `key`, an idempotency key (if any) and a JSON body (if any):
    /// its status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        idempotency: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|body| body.to_string());
        self.call_raw(method, uri, Some(key), idempotency, body)
            .await
    }

    /// A request with API key `key` (if any) and a body sent as it is (if any): its status
    /// and JSON body.
    pub async fn call_raw(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        idempotency: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        call(&self.router, method, uri, key, idempotency, body).await
    }

    /// The single number a query answers (a count).
    pub async fn scalar(&self, sql: &str) -> i64 {
        tally_store::with_pool!(&self.database, |pool| sqlx::query_scalar(
            sqlx::AssertSqlSafe(sql)
        )
        .fetch_one(pool)
        .await
        .unwrap())
    }

    /// Runs a statement; the rows it changed.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        tally_store::with_pool!(&self.database, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
    }
}

/// Lets a test file's harness, a struct holding the application in its field `app`, be used
/// as the application itself (`harness.database`, `harness.key(…)`); with `mut`, changed as
/// well (`harness.router = …`).
// Not every test binary uses it.
#[allow(unused_macros)]
macro_rules! deref_to_app {
    ($harness:ty) => {
        impl std::ops::Deref for $harness {
            type Target = $crate::support::TestApp;

            fn deref(&self) -> &Self::Target {
                &self.app
            }
        }
    };
    (mut $harness:ty) => {
        $crate::support::deref_to_app!($harness);

        impl std::ops::DerefMut for $harness {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.app
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use deref_to_app;

// ----- Risk events -----

/// A risk event's body: `id`, `kind`, time `at` and `customer`, with the fields of `extra`
/// (an object) added.
pub fn risk_event(
    id: &str,
    kind: &str,
    at: jiff::Timestamp,
    customer: &str,
    extra: Value,
) -> Value {
    let mut event = json!({"id": id, "kind": kind, "at": at.to_string(), "customer": customer});
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            event.insert(key.clone(), value.clone());
        }
    }
    event
}

// ----- Personal data and credit applications -----

/// Privacy keys: encryption keys by id, each 32 bytes of its byte, `active` sealing new
/// values, and one blind index key (32 bytes of 9) throughout.
pub fn privacy_keys(keys: &[(&str, u8)], active: &str) -> Arc<Privacy> {
    let keys: BTreeMap<String, Secret<String>> = keys
        .iter()
        .map(|(id, byte)| (id.to_string(), Secret::new(BASE64.encode([*byte; 32]))))
        .collect();
    let blind_index_key = Secret::new(BASE64.encode([9_u8; 32]));
    Arc::new(Privacy::new(&keys, active, &blind_index_key).unwrap())
}

/// The privacy keys of the credit tests: one encryption key `a`, 32 bytes of 7.
pub fn privacy() -> Arc<Privacy> {
    privacy_keys(&[("a", 7)], "a")
}

pub fn cny(value: &str) -> Value {
    json!({"value": value, "currency": "CNY"})
}

/// Scorecard attributes taking the best (or worst) bin of every feature of the shipped
/// model, read from the model file so the tests follow a retrained model.
pub fn attributes(best: bool) -> Value {
    let model: Value =
        serde_json::from_str(tally_service::credit::decision::DEFAULT_SCORECARD).unwrap();
    let mut attributes = serde_json::Map::new();
    for feature in model["features"].as_array().unwrap() {
        let bins = feature["bins"].as_array().unwrap();
        let points = |bin: &&Value| bin["points"].as_f64().unwrap();
        let chosen = if best {
            bins.iter().max_by(|a, b| points(a).total_cmp(&points(b)))
        } else {
            bins.iter().min_by(|a, b| points(a).total_cmp(&points(b)))
        }
        .unwrap();
        let value = if let Some(categories) = chosen["categories"].as_array() {
            categories[0].clone()
        } else if let Some(lower) = chosen["lower"].as_f64() {
            json!(lower)
        } else {
            json!(chosen["upper"].as_f64().unwrap() - 0.5)
        };
        attributes.insert(feature["name"].as_str().unwrap().to_string(), value);
    }
    Value::Object(attributes)
}

/// The body of `POST /v1/credit/accounts` for `customer`: statement day 5, an income of
/// 20,000.00 and debts of 1,000.00 a month, and the best (or worst) scorecard attributes.
pub fn application(customer: &str, best: bool) -> Value {
    json!({
        "customer_id": customer,
        "statement_day": 5,
        "application": {
            "monthly_income": cny("20000.00"),
            "monthly_debt_payments": cny("1000.00"),
            "attributes": attributes(best),
        }
    })
}
