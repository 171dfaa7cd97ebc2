//! Combined checkout: create, confirm (reserve every leg, all or nothing), capture, cancel
//! and refund a payment, and recover payments left mid-way.
//!
//! # How a step is taken
//!
//! Every movement outside the payment row (a ledger hold, a credit authorisation, a call
//! to the channel) is a step of the payment's intent log:
//!
//! 1. the step is written as `pending` (`payment_steps`) under the next sequence number;
//! 2. it is taken under idempotency keys derived from the payment and the sequence
//!    (`payments:{payment}:{sequence}`), so taking it again acts once;
//! 3. its outcome is applied to the payment, which is saved (version-checked) with the
//!    sequence it has applied through;
//! 4. the step is marked `done` or `refused`.
//!
//! A crash anywhere leaves at most one step pending per payment, and its payment saved as
//! of the step before. Recovery (at start, periodically, and before any request about that
//! payment) takes the pending step again, which acts once whatever happened before, and
//! applies it unless the payment already has. A step whose outcome is unknown (the ledger
//! or channel did not answer) stays pending, and the request answers `payment_in_flight`:
//! retrying with the same key, or recovery, finishes it. No answer lost in a timeout can
//! charge twice or strand a hold.
//!
//! # Decisions that are never half-done
//!
//! A capture is decided (the amount per leg) and saved before its first step; an unpaid
//! end (failed, cancelled, expired) likewise, before its first release. Recovery carries
//! either to its end. A confirm interrupted with some legs reserved is not rolled back at
//! once (a retry with the same key continues it); if nobody retries, the payment expires at
//! its deadline and every reserved leg is released.

use crate::credit::commands::CreditCommand;
use crate::credit::decision::CreditService;
use crate::credit::operations::{request_hash as credit_request_hash, OperationError};
use crate::payments::accounts::{check_customer, AccountsCache, Balance, PAYMENTS_SERVICE};
use crate::payments::error::PaymentServiceError;
use crate::payments::merchant_entries::{discount_returned, plan_terms};
use crate::payments::record::{
    Action, Ending, Failure, PaymentRecord, Progress, RefundRecord, RefundStatus, Reservation,
    Taken,
};
use crate::payments::risk_control::{
    code_hash, new_code, same_hash, CodeSink, LogSink, RiskVerdict, StepUp, STEP_UP_ATTEMPTS_MAX,
    STEP_UP_VALIDITY,
};
use crate::payments::views::{payment_view, PaymentView};
use crate::payments::webhooks::{created_event, Announced, DELIVERY_TIMEOUT};
use crate::risk::RiskService;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_channel::{
    refusal, AuthorizationStatus, AuthorizeRequest, CaptureRequest as ChannelCapture, CardToken,
    Channel, ChannelError, ChannelId, Reference, RefundRequest as ChannelRefundRequest,
    VoidRequest,
};
use tally_core::{AccountId, Amount, HoldId, Secret};
use tally_credit::CreditError;
use tally_ledger::{Command, LedgerError, NewEntry, NewHold, NewLeg, Outcome, Side};
use tally_payments::payment::AUTHORIZATION_VALIDITY;
use tally_payments::vault::AnnualRate;
use tally_payments::{
    CaptureMethod, Funding, NewPayment, Payment, PaymentError, PaymentStatus, RefundPolicy, Source,
};
use tally_risk::{Event, EventKind};
use tally_store::payments::{NewPaymentRequest, NewPaymentRow, StoredPayment};
use tally_store::{Database, LedgerWriter, StoreError, WriteError};

/// Longest a payment may wait for its shopper.
pub const EXPIRY_MAX: SignedDuration = SignedDuration::from_hours(24);
/// How long a payment waits for its shopper when the merchant does not say.
pub const EXPIRY_DEFAULT: SignedDuration = SignedDuration::from_mins(30);
/// Longest merchant id or order reference, in bytes.
pub const REFERENCE_LENGTH_MAX: usize = 128;
/// Refunds one payment may have.
pub const REFUNDS_PER_PAYMENT_MAX: usize = 100;

const LOCK_STRIPES: usize = 64;

/// How the payment service runs.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Business dates (for the credit line) are dates in this zone.
    pub time_zone: TimeZone,
    /// The credit product a credit-line leg is captured into.
    pub credit_product: String,
    /// The vault's annual yield (1.85 % by default).
    pub vault_annual_rate: AnnualRate,
    /// The key the channel signs its notifications with; without it none is believed.
    pub channel_secret: Option<Secret<String>>,
}

/// The vault's annual yield when none is configured.
pub const VAULT_ANNUAL_RATE_DEFAULT: &str = "0.0185";

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            time_zone: TimeZone::UTC,
            credit_product: "installment".to_string(),
            vault_annual_rate: AnnualRate::new(rust_decimal::Decimal::new(185, 4))
                .unwrap_or(AnnualRate::ZERO),
            channel_secret: None,
        }
    }
}

/// A merchant's request for a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePayment {
    pub merchant_id: String,
    pub order_reference: String,
    pub customer: String,
    pub amount: Amount,
    /// Until when the shopper may complete it; [`EXPIRY_DEFAULT`] from now when `None`.
    pub expires_at: Option<Timestamp>,
    pub capture_method: CaptureMethod,
    pub fundings: Vec<Funding>,
}

/// What recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Payments looked at.
    pub examined: usize,
    /// Payments whose work is finished now.
    pub settled: usize,
    /// Payments still in flight (a step's outcome still unknown).
    pub in_flight: usize,
}

/// Why a step could not be taken.
pub(crate) enum StepError {
    /// The outcome is unknown; take it again later.
    Unknown(String),
    /// A failure no retry of the step can mend.
    Fatal(PaymentServiceError),
}

impl From<PaymentServiceError> for StepError {
    fn from(error: PaymentServiceError) -> Self {
        StepError::Fatal(error)
    }
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        StepError::Unknown(error.to_string())
    }
}

/// A payment read for a change, with its version.
struct Loaded {
    record: PaymentRecord,
    version: i64,
    /// The sequence the stored record has applied through.
    applied_through: i64,
    /// What the stored version announced to merchants: a save announces the rest.
    announced: Announced,
}

/// The stored state: the record and the last step applied.
#[derive(Serialize, Deserialize)]
struct StoredState {
    record: PaymentRecord,
    applied_through: i64,
}

/// The payment service.
pub struct PaymentService {
    database: Database,
    writer: LedgerWriter,
    credit: Option<Arc<CreditService>>,
    channel: Option<Arc<dyn Channel>>,
    accounts: AccountsCache,
    stripes: Vec<tokio::sync::Mutex<()>>,
    config: PaymentsConfig,
    /// Test hook: the step taken when this reaches zero acts, then its answer is lost.
    lose_answer_in: std::sync::atomic::AtomicI64,
    /// Sends merchant webhooks (no redirects followed: the endpoint is the URL registered).
    webhook_client: reqwest::Client,
    /// The risk engine, attached once it is rebuilt from storage; without it payments are
    /// not risk-decided (a process that serves no risk routes).
    risk: std::sync::OnceLock<Arc<RiskService>>,
    /// Where one-time codes go; [`LogSink`] unless another is attached.
    code_sink: std::sync::OnceLock<Arc<dyn CodeSink>>,
}

/// What the shopper's device adds to a confirm: where it comes from (for risk control) and
/// the one-time code when the payment asked for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmInput {
    pub device: Option<String>,
    pub ip: Option<String>,
    pub code: Option<String>,
}

/// The kind of answer stored for a request.
const ANSWER_CREATED: i32 = 201;
const ANSWER_DONE: i32 = 200;
const ANSWER_DECLINED: i32 = 402;

/// A stored answer to a request: the payment, or the decline with the payment.
#[derive(Serialize, Deserialize)]
struct DeclinedAnswer {
    code: String,
    message: String,
    payment: PaymentView,
}

fn hash_request(kind: &str, request: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(request.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

fn check_reference(field: &str, text: &str) -> Result<(), PaymentServiceError> {
    if text.trim().is_empty()
        || text.len() > REFERENCE_LENGTH_MAX
        || text.chars().any(char::is_control)
    {
        return Err(PaymentServiceError::Invalid(format!(
            "{field} must be 1 to {REFERENCE_LENGTH_MAX} bytes of text without control characters"
        )));
    }
    Ok(())
}

/// Whether the payment is authorised and waits for a capture that is automatic: only a
/// crash between the authorisation and the capture leaves one so.
fn automatic_capture_due(payment: &Payment) -> bool {
    payment.status == PaymentStatus::Authorized
        && payment.capture_method == CaptureMethod::Automatic
}

/// An expired payment's refusal: when it expired (its deadline).
fn expired(record: &PaymentRecord) -> PaymentServiceError {
    let payment = &record.payment;
    let at = payment
        .transitions
        .last()
        .map_or(payment.expires_at, |transition| transition.at);
    PaymentError::Expired(at.to_string()).into()
}

fn declined(record: &PaymentRecord) -> PaymentServiceError {
    let failure = record.failure.clone().unwrap_or(Failure {
        code: "payment_failed".into(),
        message: "the payment failed".into(),
        leg: None,
    });
    PaymentServiceError::Declined {
        code: failure.code,
        message: failure.message,
        payment: Box::new(payment_view(record)),
    }
}

impl PaymentService {
    pub fn new(
        database: Database,
        writer: LedgerWriter,
        credit: Option<Arc<CreditService>>,
        channel: Option<Arc<dyn Channel>>,
        config: PaymentsConfig,
    ) -> PaymentService {
        PaymentService {
            database,
            writer,
            credit,
            channel,
            accounts: AccountsCache::default(),
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            config,
            lose_answer_in: std::sync::atomic::AtomicI64::new(-1),
            webhook_client: reqwest::Client::builder()
                .timeout(DELIVERY_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            risk: std::sync::OnceLock::new(),
            code_sink: std::sync::OnceLock::new(),
        }
    }

    /// Decides every payment confirmed from now on with `risk`. Only the first call counts.
    pub fn attach_risk(&self, risk: Arc<RiskService>) {
        let _ = self.risk.set(risk);
    }

    /// Sends one-time codes to `sink`. Only the first call counts.
    pub fn attach_code_sink(&self, sink: Arc<dyn CodeSink>) {
        let _ = self.code_sink.set(sink);
    }

    fn send_code(&self, customer: &str, payment: &str, code: &str) {
        match self.code_sink.get() {
            Some(sink) => sink.send(customer, payment, code),
            None => LogSink.send(customer, payment, code),
        }
    }

    /// Test hook: the `steps`-th step taken from now (1 for the next) acts, and then its
    /// answer is lost, as when the ledger or the channel acted and the reply never came.
    /// The request answers `payment_in_flight`; a retry or recovery must finish it.
    pub fn lose_answer_of_step(&self, steps: i64) {
        self.lose_answer_in
            .store(steps, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the step being taken is the one whose answer the test hook loses.
    fn answer_is_lost(&self) -> bool {
        use std::sync::atomic::Ordering;
        let left = self.lose_answer_in.load(Ordering::SeqCst);
        if left < 1 {
            return false;
        }
        self.lose_answer_in.store(left - 1, Ordering::SeqCst);
        left == 1
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn writer(&self) -> &LedgerWriter {
        &self.writer
    }

    pub fn accounts(&self) -> &AccountsCache {
        &self.accounts
    }

    /// The vault's configured annual yield.
    pub fn vault_annual_rate(&self) -> AnnualRate {
        self.config.vault_annual_rate
    }

    /// The zone whose days are business days (the vault's yield days, credit dates).
    pub fn time_zone(&self) -> TimeZone {
        self.config.time_zone.clone()
    }

    pub(crate) fn webhook_client(&self) -> &reqwest::Client {
        &self.webhook_client
    }

    /// The key of the channel's notification signatures, when one is configured.
    pub(crate) fn channel_secret(&self) -> Option<&str> {
        self.config
            .channel_secret
            .as_ref()
            .map(|secret| secret.expose().as_str())
    }

    /// The channel for card money, when one is configured.
    pub fn channel(&self) -> Result<&Arc<dyn Channel>, PaymentServiceError> {
        self.channel
            .as_ref()
            .ok_or(PaymentServiceError::ChannelNotConfigured)
    }

    /// The lock that serialises work on `id` within this process.
    pub(crate) async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.stripe(id).lock().await
    }

    fn stripe(&self, id: &str) -> &tokio::sync::Mutex<()> {
        let digest = Sha256::digest(id.as_bytes());
        let index = usize::from(digest[0]) % self.stripes.len();
        &self.stripes[index]
    }

    // ----- requests and their stored answers -----

    async fn replayed(
        &self,
        key: &str,
        kind: &str,
        hash: &str,
    ) -> Result<Option<Result<PaymentView, PaymentServiceError>>, PaymentServiceError> {
        let Some(stored) = self.database.payment_request(key).await? else {
            return Ok(None);
        };
        if stored.kind != kind || stored.request_hash != hash {
            return Err(PaymentServiceError::KeyReused(key.to_string()));
        }
        let corrupt =
            |error: serde_json::Error| StoreError::Corrupt(format!("answer of {key}: {error}"));
        Ok(Some(if stored.answer_code == ANSWER_DECLINED {
            let answer: DeclinedAnswer = serde_json::from_str(&stored.answer).map_err(corrupt)?;
            Err(PaymentServiceError::Declined {
                code: answer.code,
                message: answer.message,
                payment: Box::new(answer.payment),
            })
        } else {
            Ok(serde_json::from_str(&stored.answer).map_err(corrupt)?)
        }))
    }

    /// Stores the answer to a request: a success, or a decline (the payment changed: it
    /// failed). Other refusals changed nothing and are not stored: the same request may
    /// succeed later.
    async fn remember(
        &self,
        key: &str,
        kind: &str,
        hash: &str,
        result: &Result<PaymentView, PaymentServiceError>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let (code, answer) = match result {
            Ok(view) => (ANSWER_DONE, encode(view, "answer")?),
            Err(PaymentServiceError::Declined {
                code,
                message,
                payment,
            }) => (
                ANSWER_DECLINED,
                encode(
                    &DeclinedAnswer {
                        code: code.clone(),
                        message: message.clone(),
                        payment: (**payment).clone(),
                    },
                    "answer",
                )?,
            ),
            Err(_) => return Ok(()),
        };
        self.database
            .insert_payment_request(NewPaymentRequest {
                key,
                kind,
                request_hash: hash,
                answer_code: code,
                answer: &answer,
                created_at: now,
            })
            .await?;
        Ok(())
    }

    // ----- loading and saving -----

    async fn load(&self, id: &str) -> Result<Loaded, PaymentServiceError> {
        let stored = self
            .database
            .payment(id)
            .await?
            .ok_or_else(|| PaymentServiceError::PaymentNotFound(id.to_string()))?;
        decode_loaded(stored)
    }

    async fn save(&self, loaded: &mut Loaded, now: Timestamp) -> Result<(), PaymentServiceError> {
        let state = encode(
            &StoredState {
                record: loaded.record.clone(),
                applied_through: loaded.applied_through,
            },
            "payment",
        )?;
        let record = &loaded.record;
        let payment = &record.payment;
        // Work decided and not finished (a capture, an unpaid end, a refund) is due at once:
        // if this request does not finish it (a crash), recovery does. A capture in
        // progress is finished, never expired.
        let in_progress = record.capturing.is_some()
            || record.ending.is_some()
            || automatic_capture_due(payment)
            || record
                .refunds
                .iter()
                .any(|refund| refund.status == RefundStatus::Pending);
        let deadline = if in_progress {
            Some(now)
        } else {
            payment.deadline()
        };
        let events = loaded.announced.events_since(record, now)?;
        let saved = self
            .database
            .update_payment(
                &loaded.record.id,
                loaded.version,
                payment.status.as_str(),
                &state,
                deadline,
                now,
                &events,
            )
            .await?;
        if !saved {
            return Err(PaymentServiceError::Contended(loaded.record.id.clone()));
        }
        loaded.version += 1;
        loaded.announced = Announced::of(&loaded.record);
        Ok(())
    }

    // ----- the use cases -----

    /// Creates a payment in `created`, its sources checked and resolved to exact amounts.
    pub async fn create(
        &self,
        key: &str,
        request: CreatePayment,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request(
            "create",
            &serde_json::to_value(&request)
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?,
        );
        if let Some(replay) = self.replayed(key, "create", &hash).await? {
            return replay;
        }
        check_reference("merchant_id", &request.merchant_id)?;
        check_reference("order_reference", &request.order_reference)?;
        check_customer(&request.customer).map_err(PaymentServiceError::Invalid)?;
        let merchant = self
            .merchant_for_payment(&request.merchant_id, request.amount.currency())
            .await?;
        let expires_at = match request.expires_at {
            Some(at) => at,
            None => now
                .checked_add(EXPIRY_DEFAULT)
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?,
        };
        let latest = now
            .checked_add(EXPIRY_MAX)
            .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
        if expires_at > latest {
            return Err(PaymentServiceError::Invalid(format!(
                "expires_at may be at most {} hours ahead",
                EXPIRY_MAX.as_hours()
            )));
        }
        let payment = Payment::new(
            NewPayment {
                merchant_id: request.merchant_id.clone(),
                order_reference: request.order_reference.clone(),
                customer: request.customer.clone(),
                amount: request.amount,
                expires_at,
                capture_method: request.capture_method,
                fundings: request.fundings.clone(),
            },
            now,
        )?;
        for leg in &payment.legs {
            self.check_source(&payment, &leg.source).await?;
        }
        let id = format!("pay_{}", uuid::Uuid::now_v7().simple());
        let record = PaymentRecord {
            id: id.clone(),
            reservations: vec![None; payment.legs.len()],
            payment,
            next_step: 1,
            capturing: None,
            ending: None,
            refunds: Vec::new(),
            failure: None,
            risk: None,
            step_up: None,
            fees: Some(merchant.fees),
        };
        let view = payment_view(&record);
        let state = encode(
            &StoredState {
                record: record.clone(),
                applied_through: 0,
            },
            "payment",
        )?;
        let answer = encode(&view, "answer")?;
        let payment = &record.payment;
        let inserted = self
            .database
            .insert_payment(
                NewPaymentRow {
                    id: &id,
                    merchant_id: &payment.merchant_id,
                    order_reference: &payment.order_reference,
                    customer: &payment.customer,
                    currency: payment.amount.currency().code(),
                    amount_minor: payment.amount.minor(),
                    status: payment.status.as_str(),
                    state: &state,
                    deadline: payment.deadline(),
                    created_at: now,
                },
                NewPaymentRequest {
                    key,
                    kind: "create",
                    request_hash: &hash,
                    answer_code: ANSWER_CREATED,
                    answer: &answer,
                    created_at: now,
                },
                &created_event(&record, now)?,
            )
            .await?;
        if !inserted {
            // The same request was stored meanwhile (a concurrent retry): its answer stands.
            if let Some(replay) = self.replayed(key, "create", &hash).await? {
                return replay;
            }
            return Err(PaymentServiceError::Contended(id));
        }
        Ok(view)
    }

    /// Refuses a source the customer cannot pay with: an unknown or foreign credit account,
    /// a wallet or vault that does not exist, a card not saved or saved by someone else.
    async fn check_source(
        &self,
        payment: &Payment,
        source: &Source,
    ) -> Result<(), PaymentServiceError> {
        let currency = payment.amount.currency();
        match source {
            Source::Wallet | Source::Vault => {
                let balance = if matches!(source, Source::Wallet) {
                    Balance::Wallet
                } else {
                    Balance::Vault
                };
                let found = self
                    .accounts
                    .balance(
                        &self.database,
                        &self.writer,
                        balance,
                        &payment.customer,
                        currency,
                        false,
                    )
                    .await?;
                if found.is_none() {
                    return Err(PaymentServiceError::BalanceNotFound {
                        customer: payment.customer.clone(),
                        balance: balance.as_str(),
                        currency: currency.code().to_string(),
                    });
                }
            }
            Source::CreditLine { account, .. } => {
                let credit = self
                    .credit
                    .as_ref()
                    .ok_or(PaymentServiceError::CreditUnavailable)?;
                let customer = credit
                    .operations
                    .customer_of(*account)
                    .await
                    .map_err(|error| match error {
                        OperationError::AccountNotFound(id) => {
                            PaymentServiceError::CreditAccountNotFound(id)
                        }
                        other => PaymentServiceError::Invalid(other.to_string()),
                    })?;
                if customer.as_deref() != Some(payment.customer.as_str()) {
                    return Err(PaymentServiceError::ForeignSource {
                        source_name: "credit account",
                        reference: account.to_string(),
                    });
                }
            }
            Source::Card { token } => {
                let card = self
                    .database
                    .card(token)
                    .await?
                    .ok_or_else(|| PaymentServiceError::CardNotFound(token.clone()))?;
                if card.customer != payment.customer {
                    return Err(PaymentServiceError::ForeignSource {
                        source_name: "card",
                        reference: token.clone(),
                    });
                }
                self.channel()?;
            }
        }
        Ok(())
    }

    /// The payment `id`, with any work left by a crash finished first.
    pub async fn get(&self, id: &str, now: Timestamp) -> Result<PaymentView, PaymentServiceError> {
        let _guard = self.stripe(id).lock().await;
        let mut loaded = self.load(id).await?;
        match self.settle(&mut loaded, now).await {
            Ok(()) | Err(PaymentServiceError::InFlight { .. }) => {}
            Err(error) => return Err(error),
        }
        Ok(payment_view(&loaded.record))
    }

    /// Reserves every leg (all or nothing), then captures at once when the payment's
    /// capture is automatic.
    pub async fn confirm(
        &self,
        key: &str,
        id: &str,
        input: ConfirmInput,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request(
            "confirm",
            &json!({ "payment": id, "device": input.device, "ip": input.ip, "code": input.code }),
        );
        self.run(key, "confirm", &hash, id, now, move |service, loaded| {
            Box::pin(service.confirm_loaded(loaded, input.clone(), now))
        })
        .await
    }

    /// An analyst's decision on a payment risk control sent to review: approved, it is
    /// captured (when its capture is automatic) or waits for the merchant's capture;
    /// rejected, every source is released and it fails.
    pub async fn review(
        &self,
        key: &str,
        id: &str,
        approve: bool,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request("review", &json!({ "payment": id, "approve": approve }));
        self.run(key, "review", &hash, id, now, move |service, loaded| {
            Box::pin(service.review_loaded(loaded, approve, now))
        })
        .await
    }

    /// An analyst releases an order's delivery that risk control held.
    pub async fn release_delivery(
        &self,
        key: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request("release_delivery", &json!({ "payment": id }));
        self.run(
            key,
            "release_delivery",
            &hash,
            id,
            now,
            move |service, loaded| {
                Box::pin(async move {
                    loaded.record.payment.release_delivery();
                    service.save(loaded, now).await
                })
            },
        )
        .await
    }

    /// Captures `amount` (the whole payment when `None`), split across the legs pro rata;
    /// the rest of every leg is released.
    pub async fn capture(
        &self,
        key: &str,
        id: &str,
        amount: Option<Amount>,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request(
            "capture",
            &json!({ "payment": id, "amount": amount.map(|amount| amount.to_string()) }),
        );
        self.run(key, "capture", &hash, id, now, move |service, loaded| {
            Box::pin(service.capture_loaded(loaded, amount, now))
        })
        .await
    }

    /// Cancels a payment not yet captured: every reserved leg is released.
    pub async fn cancel(
        &self,
        key: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request("cancel", &json!({ "payment": id }));
        self.run(key, "cancel", &hash, id, now, |service, loaded| {
            Box::pin(service.cancel_loaded(loaded, now))
        })
        .await
    }

    /// Refunds `amount` of a captured payment, split across its sources by `policy`.
    pub async fn refund(
        &self,
        key: &str,
        id: &str,
        amount: Amount,
        policy: RefundPolicy,
        now: Timestamp,
    ) -> Result<PaymentView, PaymentServiceError> {
        let hash = hash_request(
            "refund",
            &json!({ "payment": id, "amount": amount.to_string(), "policy": policy.as_str() }),
        );
        let request = key.to_string();
        self.run(key, "refund", &hash, id, now, move |service, loaded| {
            Box::pin(service.refund_loaded(loaded, request.clone(), amount, policy, now))
        })
        .await
    }

    /// Replays a stored answer, or runs `work` on the payment under its lock, then stores
    /// the answer.
    async fn run<'a, F>(
        &'a self,
        key: &str,
        kind: &str,
        hash: &str,
        id: &str,
        now: Timestamp,
        work: F,
    ) -> Result<PaymentView, PaymentServiceError>
    where
        F: for<'b> Fn(
            &'b PaymentService,
            &'b mut Loaded,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), PaymentServiceError>> + Send + 'b>,
        >,
    {
        if let Some(replay) = self.replayed(key, kind, hash).await? {
            return replay;
        }
        let _guard = self.stripe(id).lock().await;
        if let Some(replay) = self.replayed(key, kind, hash).await? {
            return replay;
        }
        let mut loaded = self.load(id).await?;
        let result = match self.settle(&mut loaded, now).await {
            Ok(()) => work(self, &mut loaded).await,
            Err(error) => Err(error),
        };
        let result = result.map(|()| payment_view(&loaded.record));
        self.remember(key, kind, hash, &result, now).await?;
        result
    }

    async fn confirm_loaded(
        &self,
        loaded: &mut Loaded,
        input: ConfirmInput,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let status = loaded.record.payment.status;
        match status {
            PaymentStatus::Failed => return Err(declined(&loaded.record)),
            PaymentStatus::Expired => return Err(expired(&loaded.record)),
            status if status.is_reserved() || status.is_paid() => return Ok(()),
            PaymentStatus::Created | PaymentStatus::RequiresAction => {}
            _ => {
                return Err(PaymentError::InvalidTransition {
                    status: status.as_str(),
                    action: "be confirmed",
                }
                .into())
            }
        }
        // A source refused and a crash came before the payment failed: it fails now, its
        // other sources released, rather than reserving the rest.
        let refused = loaded
            .record
            .payment
            .legs
            .iter()
            .any(|leg| leg.status == tally_payments::LegStatus::Failed);
        if let (true, Some(failure)) = (refused, loaded.record.failure.clone()) {
            let code = failure.code.clone();
            self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                .await?;
            return Err(declined(&loaded.record));
        }
        if loaded.record.payment.is_due_to_expire(now) {
            self.end(
                loaded,
                PaymentStatus::Expired,
                "expired before it was confirmed",
                None,
                now,
            )
            .await?;
            return Err(PaymentError::Expired(loaded.record.payment.expires_at.to_string()).into());
        }
        if loaded.record.risk.is_none() {
            if let Some(risk) = self.risk.get() {
                let verdict = self.decide_risk(risk, &loaded.record, &input).await?;
                loaded.record.risk = Some(verdict.clone());
                self.save(loaded, now).await?;
                match verdict.action.as_str() {
                    "reject" => {
                        let failure = Failure {
                            code: "risk_rejected".into(),
                            message: format!(
                                "risk control rejected the payment: {}",
                                verdict.reasons.join(", ")
                            ),
                            leg: None,
                        };
                        self.end(
                            loaded,
                            PaymentStatus::Failed,
                            "risk_rejected",
                            Some(failure),
                            now,
                        )
                        .await?;
                        return Err(declined(&loaded.record));
                    }
                    "step_up" => {
                        let code = new_code();
                        let expires_at = now
                            .checked_add(STEP_UP_VALIDITY)
                            .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
                        loaded.record.step_up = Some(StepUp {
                            code_hash: code_hash(&loaded.record.id, &code),
                            attempts: 0,
                            expires_at,
                        });
                        let cause = format!("step up: {}", verdict.reasons.join(", "));
                        loaded.record.payment.require_action(now, &cause)?;
                        self.save(loaded, now).await?;
                        self.send_code(&loaded.record.payment.customer, &loaded.record.id, &code);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        if loaded.record.payment.status == PaymentStatus::RequiresAction {
            self.check_code(loaded, input.code.as_deref(), now).await?;
        }
        for leg in 0..loaded.record.payment.legs.len() {
            if loaded.record.payment.legs[leg].status != tally_payments::LegStatus::Pending {
                continue;
            }
            if let Taken::Refused { code, message } =
                self.step(loaded, Action::Reserve { leg }, now).await?
            {
                let failure = Failure {
                    code: code.clone(),
                    message: message.clone(),
                    leg: Some(leg),
                };
                self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                    .await?;
                return Err(declined(&loaded.record));
            }
        }
        loaded.record.payment.authorize(now)?;
        let action = loaded.record.risk.as_ref().map(|risk| risk.action.clone());
        match action.as_deref() {
            Some("review") => {
                let case = loaded
                    .record
                    .risk
                    .as_ref()
                    .and_then(|risk| risk.case_id.clone())
                    .unwrap_or_default();
                let cause = format!("risk review, case {case}");
                loaded.record.payment.hold_for_review(now, &cause)?;
                return self.save(loaded, now).await;
            }
            Some("hold_delivery") => loaded.record.payment.hold_delivery(),
            _ => {}
        }
        self.save(loaded, now).await?;
        if loaded.record.payment.capture_method == CaptureMethod::Automatic {
            let amount = loaded.record.payment.amount;
            self.capture_loaded(loaded, Some(amount), now).await?;
        }
        Ok(())
    }

    /// The risk engine's decision on the payment as a `transaction` event (id
    /// `payment:{id}`, dated when the order was created): a retry after a crash sends the
    /// same event and is answered the same decision, never decided twice.
    async fn decide_risk(
        &self,
        risk: &RiskService,
        record: &PaymentRecord,
        input: &ConfirmInput,
    ) -> Result<RiskVerdict, PaymentServiceError> {
        let payment = &record.payment;
        let mut event = Event::new(
            format!("payment:{}", record.id),
            EventKind::Transaction,
            payment.created_at,
            payment.customer.clone(),
        );
        event.device = input.device.clone();
        event.ip = input.ip.clone();
        event.merchant = Some(payment.merchant_id.clone());
        event.amount = Some(payment.amount);
        for leg in &payment.legs {
            if let Source::Card { token } = &leg.source {
                event.card = self
                    .database
                    .card(token)
                    .await?
                    .map(|card| card.fingerprint);
            }
        }
        let decided = risk.decide(&event).await.map_err(|error| {
            PaymentServiceError::Invalid(format!("risk control: {error} ({})", error.code()))
        })?;
        let action = decided.decision["action"]
            .as_str()
            .unwrap_or("approve")
            .to_string();
        let reasons = decided.decision["reasons"]
            .as_array()
            .map(|reasons| {
                reasons
                    .iter()
                    .filter_map(|reason| reason.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(RiskVerdict {
            action,
            reasons,
            sequence: decided.sequence,
            case_id: decided.case_id,
        })
    }

    /// Checks the one-time code of a payment in `requires_action`: the right one clears the
    /// way; a wrong one counts, and the third fails the payment, as does an expired code.
    async fn check_code(
        &self,
        loaded: &mut Loaded,
        code: Option<&str>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let Some(step_up) = loaded.record.step_up.clone() else {
            return Err(PaymentError::Internal("a payment waiting for a code has one").into());
        };
        if now >= step_up.expires_at {
            let failure = Failure {
                code: "step_up_expired".into(),
                message: "the one-time code expired".into(),
                leg: None,
            };
            self.end(
                loaded,
                PaymentStatus::Failed,
                "step_up_expired",
                Some(failure),
                now,
            )
            .await?;
            return Err(declined(&loaded.record));
        }
        let Some(code) = code else {
            return Err(PaymentServiceError::StepUpRequired(
                loaded.record.id.clone(),
            ));
        };
        if same_hash(&code_hash(&loaded.record.id, code), &step_up.code_hash) {
            loaded.record.step_up = None;
            return self.save(loaded, now).await;
        }
        let attempts = step_up.attempts + 1;
        if attempts >= STEP_UP_ATTEMPTS_MAX {
            loaded.record.step_up = None;
            let failure = Failure {
                code: "step_up_failed".into(),
                message: format!("{STEP_UP_ATTEMPTS_MAX} wrong one-time codes"),
                leg: None,
            };
            self.end(
                loaded,
                PaymentStatus::Failed,
                "step_up_failed",
                Some(failure),
                now,
            )
            .await?;
            return Err(declined(&loaded.record));
        }
        loaded.record.step_up = Some(StepUp {
            attempts,
            ..step_up
        });
        self.save(loaded, now).await?;
        Err(PaymentServiceError::StepUpCodeWrong {
            payment: loaded.record.id.clone(),
            attempts_left: STEP_UP_ATTEMPTS_MAX - attempts,
        })
    }

    async fn review_loaded(
        &self,
        loaded: &mut Loaded,
        approve: bool,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let status = loaded.record.payment.status;
        if status != PaymentStatus::UnderReview {
            // The same decision again is answered as done.
            let done = if approve {
                status == PaymentStatus::Authorized || status.is_paid()
            } else {
                status == PaymentStatus::Failed
            };
            if done {
                return Ok(());
            }
            return Err(PaymentError::InvalidTransition {
                status: status.as_str(),
                action: "be reviewed",
            }
            .into());
        }
        if approve {
            loaded
                .record
                .payment
                .approve_review(now, "approved by an analyst")?;
            self.save(loaded, now).await?;
            if loaded.record.payment.capture_method == CaptureMethod::Automatic {
                let amount = loaded.record.payment.amount;
                self.capture_loaded(loaded, Some(amount), now).await?;
            }
            Ok(())
        } else {
            let failure = Failure {
                code: "review_rejected".into(),
                message: "an analyst rejected the payment".into(),
                leg: None,
            };
            self.end(
                loaded,
                PaymentStatus::Failed,
                "review_rejected",
                Some(failure),
                now,
            )
            .await
        }
    }

    async fn capture_loaded(
        &self,
        loaded: &mut Loaded,
        amount: Option<Amount>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let payment = &loaded.record.payment;
        let amount = amount.unwrap_or(payment.amount);
        if matches!(
            payment.status,
            PaymentStatus::Captured | PaymentStatus::PartiallyCaptured
        ) {
            let captured = Amount::checked_sum(
                payment.amount.currency(),
                payment.legs.iter().map(|leg| &leg.captured),
            )
            .map_err(PaymentError::from)?;
            if captured == amount {
                return Ok(());
            }
        }
        if payment.status == PaymentStatus::Failed {
            return Err(declined(&loaded.record));
        }
        if payment.status == PaymentStatus::Expired {
            return Err(expired(&loaded.record));
        }
        let parts = payment.capture_split(amount, now)?;
        loaded.record.capturing = Some(Progress::new(parts));
        self.save(loaded, now).await?;
        self.drive_capture(loaded, now).await
    }

    async fn cancel_loaded(
        &self,
        loaded: &mut Loaded,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let status = loaded.record.payment.status;
        if status == PaymentStatus::Cancelled {
            return Ok(());
        }
        if !(status.is_unreserved() || status.is_reserved()) {
            return Err(PaymentError::InvalidTransition {
                status: status.as_str(),
                action: "be cancelled",
            }
            .into());
        }
        self.end(
            loaded,
            PaymentStatus::Cancelled,
            "cancelled by the merchant",
            None,
            now,
        )
        .await
    }

    async fn refund_loaded(
        &self,
        loaded: &mut Loaded,
        request: String,
        amount: Amount,
        policy: RefundPolicy,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let index = match loaded
            .record
            .refunds
            .iter()
            .position(|refund| refund.request == request)
        {
            // A retry of a refund already started: it is continued, not made again.
            Some(index) => index,
            None => {
                if loaded.record.refunds.len() >= REFUNDS_PER_PAYMENT_MAX {
                    return Err(PaymentServiceError::Invalid(format!(
                        "a payment may have at most {REFUNDS_PER_PAYMENT_MAX} refunds"
                    )));
                }
                let parts = loaded.record.payment.refund_split(amount, policy)?;
                loaded.record.payment.refund_started(&parts)?;
                let number = loaded.record.refunds.len() + 1;
                loaded.record.refunds.push(RefundRecord {
                    id: format!("{}_refund_{number}", loaded.record.id),
                    request,
                    amount,
                    policy,
                    progress: Progress::new_refund(parts),
                    status: RefundStatus::Pending,
                    created_at: now,
                    failure: None,
                });
                self.save(loaded, now).await?;
                loaded.record.refunds.len() - 1
            }
        };
        self.drive_refund(loaded, index, now).await?;
        match &loaded.record.refunds[index] {
            refund if refund.status == RefundStatus::Failed => {
                let failure = refund.failure.clone().unwrap_or(Failure {
                    code: "refund_failed".into(),
                    message: "a source refused the refund".into(),
                    leg: None,
                });
                Err(PaymentServiceError::Declined {
                    code: failure.code,
                    message: failure.message,
                    payment: Box::new(payment_view(&loaded.record)),
                })
            }
            _ => Ok(()),
        }
    }

    /// Finishes what a crash or a lost answer left: the pending step of the intent log, a
    /// capture or an unpaid end in progress, refunds in progress; and expires the payment
    /// if its deadline has passed.
    async fn settle(&self, loaded: &mut Loaded, now: Timestamp) -> Result<(), PaymentServiceError> {
        let pending: Vec<_> = self
            .database
            .payment_steps(&loaded.record.id)
            .await?
            .into_iter()
            .filter(|step| step.status == "pending")
            .collect();
        for step in pending {
            let action: Action = serde_json::from_str(&step.action).map_err(|error| {
                StoreError::Corrupt(format!(
                    "step {} of {}: {error}",
                    step.sequence, step.payment_id
                ))
            })?;
            loaded.record.next_step = loaded.record.next_step.max(step.sequence + 1);
            self.take_and_apply(loaded, step.sequence, &action, now)
                .await?;
        }
        if loaded.record.capturing.is_some() {
            self.drive_capture(loaded, now).await?;
        }
        if let Some(ending) = loaded.record.ending.clone() {
            self.drive_end(loaded, &ending, now).await?;
        }
        for index in 0..loaded.record.refunds.len() {
            if loaded.record.refunds[index].status == RefundStatus::Pending {
                self.drive_refund(loaded, index, now).await?;
            }
        }
        // Authorised with automatic capture: a crash came between the two.
        if automatic_capture_due(&loaded.record.payment) && loaded.record.capturing.is_none() {
            let amount = loaded.record.payment.amount;
            self.capture_loaded(loaded, Some(amount), now).await?;
        }
        let payment = &loaded.record.payment;
        if payment.is_due_to_expire(now) && loaded.record.capturing.is_none() {
            self.end(loaded, PaymentStatus::Expired, "expired", None, now)
                .await?;
        }
        Ok(())
    }

    /// Finishes the work left mid-way on payment `id` (its pending step first), as recovery
    /// does for each payment it finds.
    pub(crate) async fn settle_payment(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let _guard = self.stripe(id).lock().await;
        let mut loaded = self.load(id).await?;
        self.settle(&mut loaded, now).await
    }

    /// Finishes the work of payments left mid-way and expires those past their deadline,
    /// up to `limit` payments.
    pub async fn recover(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<RecoveryReport, PaymentServiceError> {
        let mut report = RecoveryReport::default();
        for id in self.database.payments_to_recover(now, limit).await? {
            report.examined += 1;
            let _guard = self.stripe(&id).lock().await;
            let mut loaded = self.load(&id).await?;
            match self.settle(&mut loaded, now).await {
                Ok(()) => report.settled += 1,
                Err(PaymentServiceError::InFlight { .. }) => report.in_flight += 1,
                Err(error) => {
                    tracing::warn!(payment = %id, code = error.code(), %error, "payment recovery stopped");
                    report.in_flight += 1;
                }
            }
        }
        Ok(report)
    }

    // ----- flows -----

    /// Ends the payment unpaid: the decision is saved, every reserved leg released, then
    /// the payment moves to `to`.
    async fn end(
        &self,
        loaded: &mut Loaded,
        to: PaymentStatus,
        cause: &str,
        failure: Option<Failure>,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let ending = Ending {
            to,
            cause: cause.to_string(),
        };
        loaded.record.ending = Some(ending.clone());
        if failure.is_some() {
            loaded.record.failure = failure;
        }
        self.save(loaded, now).await?;
        self.drive_end(loaded, &ending, now).await
    }

    async fn drive_end(
        &self,
        loaded: &mut Loaded,
        ending: &Ending,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        for leg in loaded.record.payment.reserved_legs() {
            self.step(loaded, Action::Release { leg }, now).await?;
        }
        let to = ending.to;
        let payment = &mut loaded.record.payment;
        // An expiry decided at the deadline stays an expiry even if the release ran later.
        if payment.status.is_unreserved() || payment.status.is_reserved() {
            let allowed_late = to == PaymentStatus::Expired && !payment.is_due_to_expire(now);
            let to = if allowed_late {
                PaymentStatus::Cancelled
            } else {
                to
            };
            payment.end_unpaid(to, now, &ending.cause)?;
        }
        loaded.record.ending = None;
        self.save(loaded, now).await
    }

    /// The order legs are captured in: a card first (the only capture that can be refused,
    /// so that a refusal comes before anything moved), then the credit line, then the
    /// wallet and the vault.
    fn capture_order(payment: &Payment) -> Vec<usize> {
        let mut order: Vec<usize> = (0..payment.legs.len()).collect();
        order.sort_by_key(|index| match payment.legs[*index].source {
            Source::Card { .. } => 0,
            Source::CreditLine { .. } => 1,
            Source::Wallet | Source::Vault => 2,
        });
        order
    }

    async fn drive_capture(
        &self,
        loaded: &mut Loaded,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let Some(progress) = loaded.record.capturing.clone() else {
            return Ok(());
        };
        for leg in Self::capture_order(&loaded.record.payment) {
            if loaded
                .record
                .capturing
                .as_ref()
                .is_some_and(|progress| progress.done[leg])
            {
                continue;
            }
            let amount = progress.parts[leg];
            if let Taken::Refused { code, message } = self
                .step(loaded, Action::Capture { leg, amount }, now)
                .await?
            {
                let nothing_moved = loaded
                    .record
                    .capturing
                    .as_ref()
                    .is_some_and(|progress| progress.done.iter().all(|done| !done));
                if !nothing_moved {
                    return Err(PaymentServiceError::LedgerRefused {
                        key: format!("payments:{}:capture", loaded.record.id),
                        message: format!("leg {leg} refused its capture after others were captured: {message} ({code})"),
                    });
                }
                loaded.record.capturing = None;
                let failure = Failure {
                    code: code.clone(),
                    message,
                    leg: Some(leg),
                };
                self.end(loaded, PaymentStatus::Failed, &code, Some(failure), now)
                    .await?;
                return Err(declined(&loaded.record));
            }
        }
        loaded.record.capturing = None;
        loaded
            .record
            .payment
            .captured(&progress.parts, now, "captured")?;
        self.save(loaded, now).await
    }

    async fn drive_refund(
        &self,
        loaded: &mut Loaded,
        index: usize,
        now: Timestamp,
    ) -> Result<(), PaymentServiceError> {
        let refund = loaded.record.refunds[index].clone();
        if refund.status != RefundStatus::Pending {
            return Ok(());
        }
        // Tally's own sources first: they cannot refuse, and the card's refund is last.
        let mut order: Vec<usize> = (0..refund.progress.parts.len()).collect();
        order.sort_by_key(|leg| loaded.record.payment.legs[*leg].source.is_card());
        for leg in order {
            if loaded.record.refunds[index].progress.done[leg] {
                continue;
            }
            let action = Action::Refund {
                refund: refund.id.clone(),
                leg,
                amount: refund.progress.parts[leg],
            };
            if let Taken::Refused { code, message } = self.step(loaded, action, now).await? {
                let progress = &loaded.record.refunds[index].progress;
                let zero = Amount::zero(refund.amount.currency());
                let went: Vec<Amount> = progress
                    .parts
                    .iter()
                    .zip(&progress.done)
                    .map(|(part, done)| if *done { *part } else { zero })
                    .collect();
                let stayed: Vec<Amount> = progress
                    .parts
                    .iter()
                    .zip(&progress.done)
                    .map(|(part, done)| if *done { zero } else { *part })
                    .collect();
                loaded.record.payment.refund_abandoned(&stayed)?;
                loaded
                    .record
                    .payment
                    .refund_finished(&went, now, "refunded in part")?;
                let refund = &mut loaded.record.refunds[index];
                refund.status = RefundStatus::Failed;
                refund.failure = Some(Failure {
                    code,
                    message,
                    leg: Some(leg),
                });
                return self.save(loaded, now).await;
            }
        }
        loaded
            .record
            .payment
            .refund_finished(&refund.progress.parts, now, "refunded")?;
        loaded.record.refunds[index].status = RefundStatus::Succeeded;
        self.save(loaded, now).await
    }

    // ----- steps -----

    /// Takes a new step of the intent log (see the module documentation).
    async fn step(
        &self,
        loaded: &mut Loaded,
        action: Action,
        now: Timestamp,
    ) -> Result<Taken, PaymentServiceError> {
        let sequence = loaded.record.next_step;
        loaded.record.next_step += 1;
        let text = encode(&action, "step")?;
        self.database
            .append_payment_step(&loaded.record.id, sequence, &text, now)
            .await?;
        self.take_and_apply(loaded, sequence, &action, now).await
    }

    async fn take_and_apply(
        &self,
        loaded: &mut Loaded,
        sequence: i64,
        action: &Action,
        now: Timestamp,
    ) -> Result<Taken, PaymentServiceError> {
        let key = format!("payments:{}:{sequence}", loaded.record.id);
        let result = self.take(&loaded.record, &key, action, now).await;
        let result = match result {
            Ok(_) if self.answer_is_lost() => Err(StepError::Unknown(
                "the answer was lost after the step acted (test hook)".into(),
            )),
            other => other,
        };
        let taken = match result {
            Ok(taken) => taken,
            Err(StepError::Unknown(reason)) => {
                // Keep the sequence taken, so the next step does not reuse it.
                self.save(loaded, now).await?;
                return Err(PaymentServiceError::InFlight {
                    payment: loaded.record.id.clone(),
                    reason,
                });
            }
            Err(StepError::Fatal(error)) => {
                self.save(loaded, now).await?;
                return Err(error);
            }
        };
        if sequence > loaded.applied_through {
            apply(&mut loaded.record, action, &taken)?;
            loaded.applied_through = sequence;
            self.save(loaded, now).await?;
        }
        let status = if matches!(taken, Taken::Refused { .. }) {
            "refused"
        } else {
            "done"
        };
        self.database
            .resolve_payment_step(
                &loaded.record.id,
                sequence,
                status,
                &encode(&taken, "step outcome")?,
                now,
            )
            .await?;
        Ok(taken)
    }

    /// Takes one step under `key`: acts once however often it is taken.
    async fn take(
        &self,
        record: &PaymentRecord,
        key: &str,
        action: &Action,
        now: Timestamp,
    ) -> Result<Taken, StepError> {
        let leg_index = action.leg();
        let leg = record
            .payment
            .legs
            .get(leg_index)
            .ok_or(PaymentServiceError::Rules(PaymentError::LegNotFound(
                leg_index,
            )))?;
        let reservation = record.reservations.get(leg_index).cloned().flatten();
        match &leg.source {
            Source::Wallet | Source::Vault => {
                let balance = if matches!(leg.source, Source::Wallet) {
                    Balance::Wallet
                } else {
                    Balance::Vault
                };
                self.take_on_balance(record, balance, leg.amount, reservation, key, action)
                    .await
            }
            Source::CreditLine { account, term } => {
                self.take_on_credit(
                    record,
                    *account,
                    *term,
                    leg.amount,
                    reservation,
                    key,
                    action,
                    now,
                )
                .await
            }
            Source::Card { token } => {
                self.take_on_card(record, token, leg.amount, reservation, key, action)
                    .await
            }
        }
    }

    /// Sends a ledger command as the payment service. `Ok(Err(..))` is the ledger's refusal.
    pub(crate) async fn submit(
        &self,
        key: &str,
        command: Command,
    ) -> Result<Result<Outcome, LedgerError>, StepError> {
        match self
            .writer
            .submit_as(PAYMENTS_SERVICE, key.to_string(), command)
            .await
        {
            Ok(outcome) => Ok(Ok(outcome)),
            Err(WriteError::Ledger(error)) => Ok(Err(error)),
            Err(WriteError::KeyReused(key)) => {
                Err(StepError::Fatal(PaymentServiceError::LedgerConflict(
                    format!("the ledger idempotency key {key} is taken by another command"),
                )))
            }
            Err(error) => Err(StepError::Unknown(error.to_string())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn take_on_balance(
        &self,
        record: &PaymentRecord,
        balance: Balance,
        amount: Amount,
        reservation: Option<Reservation>,
        key: &str,
        action: &Action,
    ) -> Result<Taken, StepError> {
        let payment = &record.payment;
        let currency = payment.amount.currency();
        let accounts = self
            .accounts
            .service(&self.database, &self.writer, currency)
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        let Some(account) = self
            .accounts
            .balance(
                &self.database,
                &self.writer,
                balance,
                &payment.customer,
                currency,
                false,
            )
            .await
            .map_err(|error| StepError::Fatal(error.into()))?
        else {
            return Ok(Taken::Refused {
                code: "balance_not_found".into(),
                message: format!("customer {} has no {}", payment.customer, balance.as_str()),
            });
        };
        let hold_id = match reservation {
            Some(Reservation::Hold { hold_id }) => Some(hold_id),
            _ => None,
        };
        let needs_hold = || {
            hold_id.ok_or(StepError::Fatal(PaymentServiceError::Rules(
                PaymentError::Internal("a reserved balance leg has a hold"),
            )))
        };
        match action {
            Action::Reserve { .. } => {
                let expires_at = hold_expiry(payment)?;
                let command = Command::CreateHold(NewHold {
                    debit_account_id: account,
                    credit_account_id: accounts.merchant_payable,
                    amount,
                    expires_at,
                    description: format!("payment {} from the {}", record.id, balance.as_str()),
                    metadata: BTreeMap::from([("payment".to_string(), record.id.clone())]),
                });
                match self.submit(key, command).await? {
                    Ok(Outcome::Hold(hold)) => Ok(Taken::Reserved {
                        reservation: Reservation::Hold { hold_id: hold.id },
                    }),
                    Ok(other) => Err(unexpected(key, &other)),
                    Err(LedgerError::ExceedsCredits(_)) => Ok(Taken::Refused {
                        code: "insufficient_balance".into(),
                        message: format!(
                            "the {} of customer {} holds less than {}",
                            balance.as_str(),
                            payment.customer,
                            amount
                        ),
                    }),
                    Err(error) => Ok(Taken::Refused {
                        code: error.code().to_string(),
                        message: error.to_string(),
                    }),
                }
            }
            Action::Release { .. } => self.release_hold(key, needs_hold()?).await,
            Action::Capture { amount, .. } => {
                let hold_id = needs_hold()?;
                if amount.is_zero() {
                    self.release_hold(key, hold_id).await?;
                    return Ok(Taken::Captured { plan: None });
                }
                match self
                    .submit(
                        key,
                        Command::PostHold {
                            hold_id,
                            amount: Some(*amount),
                        },
                    )
                    .await?
                {
                    Ok(_) => {
                        let leg = action.leg();
                        let from = accounts.merchant_payable;
                        self.credit_merchant(record, leg, *amount, None, from, key)
                            .await?;
                        Ok(Taken::Captured { plan: None })
                    }
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: key.to_string(),
                        message: error.to_string(),
                    })),
                }
            }
            Action::Refund { amount, .. } => {
                let entry = self
                    .merchant_refund_entry(
                        record,
                        account,
                        *amount,
                        None,
                        format!(
                            "refund of payment {} to the {}",
                            record.id,
                            balance.as_str()
                        ),
                    )
                    .await?
                    .ok_or(StepError::Fatal(PaymentServiceError::Rules(
                        PaymentError::Internal("a refund to a balance or card moves money"),
                    )))?;
                match self.submit(key, Command::PostEntry(entry)).await? {
                    Ok(_) => Ok(Taken::Refunded),
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: key.to_string(),
                        message: error.to_string(),
                    })),
                }
            }
        }
    }

    /// Voids a hold; one already released (voided or expired at the ledger) is released.
    async fn release_hold(&self, key: &str, hold_id: HoldId) -> Result<Taken, StepError> {
        match self.submit(key, Command::VoidHold { hold_id }).await? {
            Ok(_) | Err(LedgerError::HoldNotPending { .. }) => Ok(Taken::Released),
            Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                key: key.to_string(),
                message: error.to_string(),
            })),
        }
    }

    /// A card leg: the channel acts first (authorise, capture, void, refund under the
    /// step's key as the reference, so the bank acts once), then the ledger mirrors it
    /// (a hold from the channel clearing account to the merchant payable, posted, voided,
    /// or a refund entry) under `{key}:ledger`.
    async fn take_on_card(
        &self,
        record: &PaymentRecord,
        token: &str,
        amount: Amount,
        reservation: Option<Reservation>,
        key: &str,
        action: &Action,
    ) -> Result<Taken, StepError> {
        let channel = self.channel().map_err(StepError::Fatal)?;
        let currency = record.payment.amount.currency();
        let accounts = self
            .accounts
            .service(&self.database, &self.writer, currency)
            .await
            .map_err(|error| StepError::Fatal(error.into()))?;
        let reference = channel_reference(key)?;
        let ledger_key = format!("{key}:ledger");
        let reserved = match reservation {
            Some(Reservation::Card {
                channel_id,
                hold_id,
            }) => Some((channel_id, hold_id)),
            _ => None,
        };
        let needs_reserved = || {
            reserved
                .clone()
                .ok_or(StepError::Fatal(PaymentServiceError::Rules(
                    PaymentError::Internal("a reserved card leg has its authorisation and hold"),
                )))
        };
        let parse_channel_id = |text: &str| {
            ChannelId::new(text).map_err(|error| {
                StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
                    "channel id {text:?}: {error}"
                ))))
            })
        };
        match action {
            Action::Reserve { .. } => {
                let token = CardToken::new(token).map_err(|error| {
                    StepError::Fatal(PaymentServiceError::Invalid(error.to_string()))
                })?;
                let authorization = channel
                    .authorize(&AuthorizeRequest {
                        reference,
                        token,
                        amount,
                    })
                    .await;
                let authorization = match authorization {
                    Ok(authorization) => authorization,
                    Err(ChannelError::Refused { code, message }) => {
                        return Ok(Taken::Refused {
                            code: "card_declined".into(),
                            message: format!("the bank refused the card: {message} ({code})"),
                        })
                    }
                    Err(error) => return Err(StepError::Unknown(error.to_string())),
                };
                if let AuthorizationStatus::Declined { code, message } = authorization.status {
                    return Ok(Taken::Refused {
                        code: "card_declined".into(),
                        message: format!("the bank declined the card: {message} ({code})"),
                    });
                }
                let hold = Command::CreateHold(NewHold {
                    debit_account_id: accounts.channel_clearing,
                    credit_account_id: accounts.merchant_payable,
                    amount,
                    expires_at: hold_expiry(&record.payment)?,
                    description: format!("payment {} by card", record.id),
                    metadata: BTreeMap::from([
                        ("payment".to_string(), record.id.clone()),
                        (
                            "channel_id".to_string(),
                            authorization.channel_id.as_str().to_string(),
                        ),
                    ]),
                });
                match self.submit(&ledger_key, hold).await? {
                    Ok(Outcome::Hold(hold)) => Ok(Taken::Reserved {
                        reservation: Reservation::Card {
                            channel_id: authorization.channel_id.as_str().to_string(),
                            hold_id: hold.id,
                        },
                    }),
                    Ok(other) => Err(unexpected(&ledger_key, &other)),
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: ledger_key,
                        message: error.to_string(),
                    })),
                }
            }
            Action::Release { .. } => {
                let (channel_id, hold_id) = needs_reserved()?;
                self.void_card(channel, reference, parse_channel_id(&channel_id)?)
                    .await?;
                self.release_hold(&ledger_key, hold_id).await
            }
            Action::Capture { amount, .. } => {
                let (channel_id, hold_id) = needs_reserved()?;
                let channel_id = parse_channel_id(&channel_id)?;
                if amount.is_zero() {
                    self.void_card(channel, reference, channel_id).await?;
                    self.release_hold(&ledger_key, hold_id).await?;
                    return Ok(Taken::Captured { plan: None });
                }
                let captured = channel
                    .capture(&ChannelCapture {
                        reference,
                        channel_id,
                        amount: *amount,
                    })
                    .await;
                match captured {
                    Ok(_) => {}
                    Err(ChannelError::Refused { code, message }) => {
                        return Ok(Taken::Refused {
                            code: "card_capture_refused".into(),
                            message: format!("the bank refused the capture: {message} ({code})"),
                        })
                    }
                    Err(error) => return Err(StepError::Unknown(error.to_string())),
                }
                let post = Command::PostHold {
                    hold_id,
                    amount: Some(*amount),
                };
                match self.submit(&ledger_key, post).await? {
                    Ok(_) => {
                        let from = accounts.merchant_payable;
                        self.credit_merchant(record, action.leg(), *amount, None, from, key)
                            .await?;
                        Ok(Taken::Captured { plan: None })
                    }
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: ledger_key,
                        message: error.to_string(),
                    })),
                }
            }
            Action::Refund { amount, .. } => {
                let (channel_id, _) = needs_reserved()?;
                let refunded = channel
                    .refund(&ChannelRefundRequest {
                        reference,
                        channel_id: parse_channel_id(&channel_id)?,
                        amount: *amount,
                    })
                    .await;
                match refunded {
                    Ok(_) => {}
                    Err(ChannelError::Refused { code, message }) => {
                        return Ok(Taken::Refused {
                            code: "card_refund_refused".into(),
                            message: format!("the bank refused the refund: {message} ({code})"),
                        })
                    }
                    Err(error) => return Err(StepError::Unknown(error.to_string())),
                }
                let entry = self
                    .merchant_refund_entry(
                        record,
                        accounts.channel_clearing,
                        *amount,
                        None,
                        format!("refund of payment {} to the card", record.id),
                    )
                    .await?
                    .ok_or(StepError::Fatal(PaymentServiceError::Rules(
                        PaymentError::Internal("a refund to a balance or card moves money"),
                    )))?;
                match self.submit(&ledger_key, Command::PostEntry(entry)).await? {
                    Ok(_) => Ok(Taken::Refunded),
                    Err(error) => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: ledger_key,
                        message: error.to_string(),
                    })),
                }
            }
        }
    }

    /// Voids a card authorisation; one no longer pending at the bank (voided, captured or
    /// expired there) holds nothing, which is what a void wants.
    async fn void_card(
        &self,
        channel: &Arc<dyn Channel>,
        reference: Reference,
        channel_id: ChannelId,
    ) -> Result<(), StepError> {
        match channel
            .void(&VoidRequest {
                reference,
                channel_id,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(ChannelError::Refused { code, .. })
                if code == refusal::AUTHORIZATION_NOT_PENDING =>
            {
                Ok(())
            }
            Err(ChannelError::Refused { code, message }) => {
                Err(StepError::Fatal(PaymentServiceError::ChannelRefused {
                    action: "a void",
                    code,
                    message,
                }))
            }
            Err(error) => Err(StepError::Unknown(error.to_string())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn take_on_credit(
        &self,
        record: &PaymentRecord,
        account: i64,
        term: u32,
        amount: Amount,
        reservation: Option<Reservation>,
        key: &str,
        action: &Action,
        now: Timestamp,
    ) -> Result<Taken, StepError> {
        let credit = self
            .credit
            .as_ref()
            .ok_or(StepError::Fatal(PaymentServiceError::CreditUnavailable))?;
        let date = now.to_zoned(self.config.time_zone.clone()).date();
        let authorization = match reservation {
            Some(Reservation::Credit {
                authorization,
                plan,
                ..
            }) => Some((authorization, plan)),
            _ => None,
        };
        let needs_authorization = || {
            authorization.ok_or(StepError::Fatal(PaymentServiceError::Rules(
                PaymentError::Internal("a reserved credit leg has an authorisation"),
            )))
        };
        let (command, body) = match action {
            Action::Reserve { .. } => {
                let last_day = hold_expiry(&record.payment)?
                    .to_zoned(self.config.time_zone.clone())
                    .date();
                (
                    CreditCommand::Authorize {
                        amount,
                        expires_on: Some(last_day),
                        merchant_reference: Some(format!("payment {}", record.id)),
                    },
                    json!({ "payment": record.id, "amount": amount.to_string(), "expires_on": last_day.to_string() }),
                )
            }
            Action::Release { .. } => {
                let (authorization, _) = needs_authorization()?;
                (
                    CreditCommand::Void { authorization },
                    json!({ "payment": record.id, "authorization": authorization }),
                )
            }
            Action::Capture { amount, .. } => {
                let (authorization, _) = needs_authorization()?;
                if amount.is_zero() {
                    (
                        CreditCommand::Void { authorization },
                        json!({ "payment": record.id, "authorization": authorization }),
                    )
                } else {
                    (
                        CreditCommand::Capture {
                            authorization,
                            amount: Some(*amount),
                            product: self.config.credit_product.clone(),
                            periods: term,
                        },
                        json!({ "payment": record.id, "authorization": authorization, "amount": amount.to_string(), "periods": term }),
                    )
                }
            }
            Action::Refund { amount, .. } => {
                let plan = needs_authorization()?.1.ok_or(StepError::Fatal(
                    PaymentServiceError::Rules(PaymentError::Internal(
                        "a captured credit leg has a plan",
                    )),
                ))?;
                (
                    CreditCommand::Refund {
                        plan,
                        amount: *amount,
                    },
                    json!({ "payment": record.id, "plan": plan, "amount": amount.to_string() }),
                )
            }
        };
        let hash = credit_request_hash(command.kind(), account, &body);
        let answer = credit
            .operations
            .execute(key, account, &command, &hash, date, now)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                return match (&error, action) {
                    // Already released at the credit account (voided, expired or captured).
                    (
                        OperationError::Credit(CreditError::AuthorizationNotFound(_)),
                        Action::Release { .. },
                    ) => Ok(Taken::Released),
                    (
                        OperationError::Store(_)
                        | OperationError::LedgerUnavailable(_)
                        | OperationError::Contended(_),
                        _,
                    ) => Err(StepError::Unknown(error.to_string())),
                    (_, Action::Reserve { .. }) => Ok(Taken::Refused {
                        code: error.code().to_string(),
                        message: error.to_string(),
                    }),
                    _ => Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                        key: key.to_string(),
                        message: format!("credit account {account}: {error} ({})", error.code()),
                    })),
                };
            }
        };
        match action {
            Action::Reserve { .. } => {
                let authorization = answer.body["authorization"]["id"]
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| {
                        StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
                            "the credit authorisation under {key} has no id"
                        ))))
                    })?;
                Ok(Taken::Reserved {
                    reservation: Reservation::Credit {
                        account,
                        authorization,
                        plan: None,
                    },
                })
            }
            Action::Release { .. } => Ok(Taken::Released),
            Action::Capture { amount, .. } => {
                if amount.is_zero() {
                    return Ok(Taken::Captured { plan: None });
                }
                let plan = answer.body["plan_id"]
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok());
                let terms = plan_terms(&answer.body, plan, amount.currency(), key)?;
                let accounts = self
                    .accounts
                    .service(&self.database, &self.writer, amount.currency())
                    .await
                    .map_err(|error| StepError::Fatal(error.into()))?;
                self.credit_merchant(
                    record,
                    action.leg(),
                    *amount,
                    Some(terms.discount),
                    accounts.credit_due,
                    key,
                )
                .await?;
                Ok(Taken::Captured { plan })
            }
            Action::Refund { amount, refund, .. } => {
                let plan = match reservation {
                    Some(Reservation::Credit { plan, .. }) => plan,
                    _ => None,
                };
                let terms = plan_terms(&answer.body, plan, amount.currency(), key)?;
                let returned = discount_returned(record, refund, action.leg(), *amount, &terms)
                    .map_err(StepError::Fatal)?;
                let accounts = self
                    .accounts
                    .service(&self.database, &self.writer, amount.currency())
                    .await
                    .map_err(|error| StepError::Fatal(error.into()))?;
                let entry = self
                    .merchant_refund_entry(
                        record,
                        accounts.credit_due,
                        *amount,
                        Some(returned),
                        format!("refund of payment {} to the credit line", record.id),
                    )
                    .await?;
                if let Some(entry) = entry {
                    let merchant_key = format!("{key}:merchant");
                    if let Err(error) = self
                        .submit(&merchant_key, Command::PostEntry(entry))
                        .await?
                    {
                        return Err(StepError::Fatal(PaymentServiceError::LedgerRefused {
                            key: merchant_key,
                            message: error.to_string(),
                        }));
                    }
                }
                Ok(Taken::Refunded)
            }
        }
    }
}

/// The channel reference of a step: its key, which is short, visible ASCII.
fn channel_reference(key: &str) -> Result<Reference, StepError> {
    Reference::new(key).map_err(|error| {
        StepError::Fatal(PaymentServiceError::Invalid(format!(
            "channel reference {key:?}: {error}"
        )))
    })
}

fn decode_loaded(stored: StoredPayment) -> Result<Loaded, PaymentServiceError> {
    let state: StoredState = serde_json::from_str(&stored.state)
        .map_err(|error| StoreError::Corrupt(format!("payment {}: {error}", stored.id)))?;
    Ok(Loaded {
        announced: Announced::of(&state.record),
        record: state.record,
        version: stored.version,
        applied_through: state.applied_through,
    })
}

/// When the ledger drops a payment's hold by itself: a day after the latest moment the
/// payment could still be captured, so that the payment's own expiry always comes first.
fn hold_expiry(payment: &Payment) -> Result<Timestamp, StepError> {
    payment
        .expires_at
        .checked_add(AUTHORIZATION_VALIDITY)
        .and_then(|at| at.checked_add(SignedDuration::from_hours(24)))
        .map_err(|error| StepError::Fatal(PaymentServiceError::Invalid(error.to_string())))
}

fn unexpected(key: &str, outcome: &Outcome) -> StepError {
    StepError::Fatal(PaymentServiceError::Store(StoreError::Corrupt(format!(
        "the ledger answered {key} with {outcome:?}"
    ))))
}

/// A two-leg entry moving `amount` from `debit` to `credit`.
pub(crate) fn transfer(
    debit: AccountId,
    credit: AccountId,
    amount: Amount,
    description: String,
    payment: &str,
) -> NewEntry {
    NewEntry {
        description,
        metadata: BTreeMap::from([("payment".to_string(), payment.to_string())]),
        legs: vec![
            NewLeg {
                account_id: debit,
                side: Side::Debit,
                amount,
            },
            NewLeg {
                account_id: credit,
                side: Side::Credit,
                amount,
            },
        ],
    }
}

/// Applies what a step did to the payment.
fn apply(
    record: &mut PaymentRecord,
    action: &Action,
    taken: &Taken,
) -> Result<(), PaymentServiceError> {
    let payment = &mut record.payment;
    match (action, taken) {
        (Action::Reserve { leg }, Taken::Reserved { reservation }) => {
            record.reservations[*leg] = Some(reservation.clone());
            payment.leg_reserved(*leg)?;
        }
        (Action::Reserve { leg }, Taken::Refused { code, message }) => {
            payment.leg_failed(*leg)?;
            record.failure = Some(Failure {
                code: code.clone(),
                message: message.clone(),
                leg: Some(*leg),
            });
        }
        (Action::Release { leg }, Taken::Released) => {
            if payment.legs[*leg].status == tally_payments::LegStatus::Reserved {
                payment.leg_released(*leg)?;
            }
        }
        (Action::Capture { leg, .. }, Taken::Captured { plan }) => {
            if let Some(progress) = record.capturing.as_mut() {
                progress.done[*leg] = true;
            }
            if let (Some(plan), Some(Some(Reservation::Credit { plan: slot, .. }))) =
                (plan, record.reservations.get_mut(*leg))
            {
                *slot = Some(*plan);
            }
        }
        (Action::Refund { refund, leg, .. }, Taken::Refunded) => {
            if let Some(found) = record.refunds.iter_mut().find(|found| &found.id == refund) {
                found.progress.done[*leg] = true;
            }
        }
        // A refused capture or refund changes nothing here; the flow that took it decides.
        (_, Taken::Refused { .. }) => {}
        _ => return Err(PaymentError::Internal("a step's outcome does not fit its action").into()),
    }
    Ok(())
}
