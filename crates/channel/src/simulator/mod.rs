//! A simulated bank for Tally's tests and demos, served over HTTP: cards with balances,
//! authorisations, captures, voids, refunds and payouts, idempotent by reference; signed
//! notifications; daily settlement files; and faults injected on purpose.
//!
//! Run it with [`serve`] (or [`run`]; `tally channel simulate --listen ADDR`), point an
//! [`crate::HttpChannel`] at it, and drive faults with [`SimulatorControl`]. State is in
//! memory and deterministic given the seed and the order of requests.
//!
//! # API
//!
//! Every request needs `Authorization: Bearer <secret>` (else `401 unauthorized`). Amounts
//! are decimal strings in major units beside a `currency` field. Refusals answer
//! `{"error": {"code", "message"}}`: 400 `invalid_request`/`invalid_card_number`, 401, 404
//! `card_not_found`/`authorization_not_found`/`operation_not_found`, 409
//! `reference_reused`, 422 for the bank's other refusals (`insufficient_funds`,
//! `capture_exceeds_authorized`, `refund_exceeds_captured`, `authorization_not_pending`,
//! `authorization_not_captured`, `currency_mismatch`, `card_expired`), 503 `channel_down`
//! and `simulator_full`. A refused request changes nothing and is not recorded.
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/cards` | [`CardRegistration`] | 201 [`CardView`] (the only place a card number goes) |
//! | `GET /v1/cards/{token}` | | [`CardView`]: balance, held, captured, refunded, paid out |
//! | `POST /v1/authorizations` | `{reference, token, amount, currency}` | operation |
//! | `POST /v1/authorizations/{id}/capture` | `{reference, amount, currency}` | operation |
//! | `POST /v1/authorizations/{id}/void` | `{reference}` | operation |
//! | `POST /v1/authorizations/{id}/refunds` | `{reference, amount, currency}` | operation |
//! | `POST /v1/payouts` | `{reference, token, amount, currency}` | operation |
//! | `POST /v1/disputes` | [`DisputeRequest`] (a cardholder disputes a capture) | 201 [`DisputeView`] |
//! | `POST /v1/disputes/{id}/decision` | [`DisputeDecision`] (`won` or `lost`) | [`DisputeView`] |
//! | `GET /v1/operations/{reference}` | | operation as it stands, or 404 `operation_not_found` |
//! | `GET /v1/settlement-files/{YYYY-MM-DD}` | | CSV, see [`settlement`] |
//! | `GET`/`POST /v1/faults` | [`FaultsUpdate`] | [`Faults`] in force |
//! | `POST /v1/down`, `POST /v1/up` | | 204; while down the bank's API answers 503 `channel_down` |
//!
//! An operation answer is [`crate::wire::OperationBody`], tagged by `operation`. The same
//! reference with the same request answers the first answer again (a payout's first answer
//! even after it settled; `GET /v1/operations` gives its current state); with another
//! request, 409 `reference_reused`. References are shared by all operation kinds.
//!
//! # Money on a card
//!
//! An authorisation holds against the available balance (`insufficient_funds` if short); a
//! capture takes up to the held amount and releases the rest; a void releases all; a refund
//! (up to captured minus refunded) and a paid payout add to the available balance. Declines
//! (`do_not_honor`, at `decline_rate_ppm`) are recorded answers with a channel id.
//!
//! # Faults
//!
//! `latency_ms` is added to every answer of the bank's API; at `timeout_rate_ppm` a mutating
//! call is carried out and recorded as usual and then its answer, whatever it is, is held
//! for `lost_answer_delay_ms` (the client times out; `GET /v1/operations/{reference}` shows
//! what was done);
//! notifications are delayed up to `notification_delay_max_ms` and sent twice at
//! `duplicate_rate_ppm`; payouts are returned at `payout_return_rate_ppm`; settlement files
//! carry `settlement_discrepancies`. The control endpoints (`/v1/faults`, `/v1/down`,
//! `/v1/up`) are never delayed nor down.
//!
//! # Notifications
//!
//! With `notify_url`, every operation's event (`authorization.succeeded`,
//! `authorization.declined`, `capture.succeeded`, `void.succeeded`, `refund.succeeded`,
//! `payout.paid`, `payout.returned`, `dispute.opened`, `dispute.won`, `dispute.lost`) is POSTed there, signed as
//! [`crate::notification`] describes, retried with doubling back-off (from
//! `notification_retry_base_ms`) up to `notification_attempts_max` times until a 2xx.

mod balance;
mod card;
pub mod control;
pub mod disputes;
pub mod faults;
mod notify;
mod routes;
pub mod settlement;
mod state;

pub use control::{CardRegistration, CardView, SimulatorControl};
pub use disputes::{DisputeDecision, DisputeRequest, DisputeView};
pub use faults::{Discrepancy, Faults, FaultsUpdate, PartsPerMillion};
pub use settlement::{RecordType, SettlementFile, SettlementRow, Totals, Trailer};
pub use state::{ACCOUNT_CLOSED, SIMULATOR_FULL};

use axum::Router;
use notify::Notifier;
use state::{Bank, BankConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_core::{Clock, Secret, SystemClock};
use tokio::net::TcpListener;

/// The refusal code of every call to the bank's API while it is down.
pub const CHANNEL_DOWN: &str = "channel_down";

/// How the simulator starts. Faults can be changed later through `POST /v1/faults`.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Seeds every id and every random fault: the same seed and the same requests in the
    /// same order give the same answers.
    pub seed: u64,
    /// The bearer token of every request, the key of the notifications' signatures and of
    /// card fingerprints.
    pub secret: Secret<String>,
    /// Where notifications go; none are sent without it.
    pub notify_url: Option<String>,
    pub faults: Faults,
    /// How long an answer lost by the `timeout_rate` fault is held before it is sent anyway.
    pub lost_answer_delay_ms: u64,
    /// 0: a payout is paid (or returned) before its answer. More: it answers `pending` and
    /// settles this many milliseconds later.
    pub payout_settle_ms: u64,
    /// The bank's fee on captures.
    pub fee_rate_ppm: PartsPerMillion,
    pub notification_attempts_max: u32,
    pub notification_retry_base_ms: u64,
    /// Most card tokens held; past it, registration answers 503 `simulator_full`.
    pub cards_max: usize,
    /// Most operations held; past it, new operations answer 503 `simulator_full`.
    pub operations_max: usize,
    /// The channel's fee on a lost dispute, in minor units of the dispute's currency.
    pub dispute_fee_minor: i64,
}

/// Largest request body, in bytes.
pub const REQUEST_SIZE_MAX: usize = 64 * 1024;

impl SimulatorConfig {
    /// Defaults: seed 0, no faults, answers lost for 60 s, payouts settled at once, a fee of
    /// 0.6 % on captures, 8 notification attempts from 100 ms, 100,000 cards, 1,000,000
    /// operations, a fee of 15.00 on a lost dispute.
    pub fn new(secret: impl Into<String>) -> Self {
        SimulatorConfig {
            seed: 0,
            secret: Secret::new(secret.into()),
            notify_url: None,
            faults: Faults::default(),
            lost_answer_delay_ms: 60_000,
            payout_settle_ms: 0,
            fee_rate_ppm: PartsPerMillion::new(6_000).expect("0.6 % is a valid rate"),
            notification_attempts_max: 8,
            notification_retry_base_ms: 100,
            cards_max: 100_000,
            operations_max: 1_000_000,
            dispute_fee_minor: 1_500,
        }
    }

    pub fn check(&self) -> Result<(), SimulatorError> {
        let fail = |reason: String| Err(SimulatorError::Config(reason));
        if self.secret.expose().is_empty() {
            return fail("the secret must not be empty".into());
        }
        self.faults.check().map_err(SimulatorError::Config)?;
        for (name, value) in [
            ("lost_answer_delay_ms", self.lost_answer_delay_ms),
            ("payout_settle_ms", self.payout_settle_ms),
            (
                "notification_retry_base_ms",
                self.notification_retry_base_ms,
            ),
        ] {
            if value > faults::FAULT_DELAY_MS_MAX {
                return fail(format!(
                    "{name} {value} is above {}",
                    faults::FAULT_DELAY_MS_MAX
                ));
            }
        }
        if self.dispute_fee_minor < 0 {
            return fail("dispute_fee_minor must not be negative".into());
        }
        if self.notification_attempts_max == 0 {
            return fail("notification_attempts_max must be at least 1".into());
        }
        if let Some(url) = &self.notify_url {
            reqwest::Url::parse(url)
                .map_err(|error| SimulatorError::Config(format!("notify_url: {error}")))?;
        }
        Ok(())
    }
}

/// Why the simulator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("simulator I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The simulator's shared state, cloned into every handler.
#[derive(Clone)]
pub(crate) struct Simulator {
    bank: Arc<Mutex<Bank>>,
    clock: Arc<dyn Clock>,
    notifier: Option<Notifier>,
    secret: Secret<String>,
    lost_answer_delay: Duration,
}

impl Simulator {
    fn bank(&self) -> std::sync::MutexGuard<'_, Bank> {
        // A panic while holding the lock leaves the books as the last finished call left
        // them (every change is made after all checks), so the state is still usable.
        self.bank
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The simulator's routes on the wall clock.
pub fn router(config: SimulatorConfig) -> Result<Router, SimulatorError> {
    router_with_clock(config, Arc::new(SystemClock))
}

/// The simulator's routes on `clock` (operations' times, value dates, signatures).
pub fn router_with_clock(
    config: SimulatorConfig,
    clock: Arc<dyn Clock>,
) -> Result<Router, SimulatorError> {
    config.check()?;
    let notifier = match &config.notify_url {
        Some(url) => Some(
            Notifier::new(
                url.clone(),
                config.secret.clone(),
                clock.clone(),
                config.notification_attempts_max,
                Duration::from_millis(config.notification_retry_base_ms),
            )
            .map_err(|error| SimulatorError::Config(format!("notification client: {error}")))?,
        ),
        None => None,
    };
    let bank = Bank::new(BankConfig {
        seed: config.seed,
        fingerprint_key: config.secret.expose().as_bytes().to_vec(),
        fee_rate: config.fee_rate_ppm,
        payout_settle_ms: config.payout_settle_ms,
        cards_max: config.cards_max,
        operations_max: config.operations_max,
        faults: config.faults.clone(),
        dispute_fee_minor: config.dispute_fee_minor,
    });
    let simulator = Simulator {
        bank: Arc::new(Mutex::new(bank)),
        clock,
        notifier,
        secret: config.secret,
        lost_answer_delay: Duration::from_millis(config.lost_answer_delay_ms),
    };
    Ok(routes::routes(simulator))
}

/// Serves the simulator on `listener` (wall clock) until the listener fails.
pub async fn serve(listener: TcpListener, config: SimulatorConfig) -> Result<(), SimulatorError> {
    serve_with_clock(listener, config, Arc::new(SystemClock)).await
}

/// Serves the simulator on `listener` with `clock`.
pub async fn serve_with_clock(
    listener: TcpListener,
    config: SimulatorConfig,
    clock: Arc<dyn Clock>,
) -> Result<(), SimulatorError> {
    let router = router_with_clock(config, clock)?;
    axum::serve(listener, router).await?;
    Ok(())
}

/// Binds `listen` (`127.0.0.1:7070`) and serves the simulator there.
pub async fn run(listen: &str, config: SimulatorConfig) -> Result<(), SimulatorError> {
    config.check()?;
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "channel simulator listening");
    serve(listener, config).await
}
