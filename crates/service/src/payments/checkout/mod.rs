//! Combined checkout: create, confirm (reserve every leg, all or nothing), capture, cancel
//! and refund a payment, and recover payments left mid-way.
//!
//! The module is split along the data it works on:
//!
//! - here: the payment service, its configuration, the payment row (load, save) and the
//!   public entry points;
//! - [`requests`]: merchants' requests and their stored answers (replay, key reuse);
//! - [`flows`]: what each request does to a payment, and the decided work (a capture, an
//!   unpaid end, a refund) carried leg by leg;
//! - [`risk`]: the risk engine's decision and the one-time code;
//! - [`intent_log`]: the payment's intent log, every step written before it is taken, and
//!   recovery;
//! - [`sources`]: how a step acts on each funding source (balance holds, the credit line,
//!   a card at the channel).
//!
//! # How a step is taken
//!
//! Every movement outside the payment row (a ledger hold, a credit authorisation, a call
//! to the channel) is a step of the payment's intent log:
//!
//! 1. the step is written as `pending` (`payment_steps`) under the next sequence number,
//!    in one transaction with everything the payment's work changed before it (the
//!    payment, with the sequence it has applied through and the step left pending; the
//!    previous step marked `done` or `refused`);
//! 2. it is taken under idempotency keys derived from the payment and the sequence
//!    (`payments:{payment}:{sequence}`), so taking it again acts once;
//! 3. its outcome is applied to the payment in memory and the step marked resolved, both
//!    written with the next step's intent, or at the end of the request together with the
//!    request's answer (`PaymentService::flush`).
//!
//! So a request makes one commit per step plus one at its end, and nothing that must be on
//! disk before an outside call is written after it. A crash anywhere leaves at most one
//! step pending per payment, and its payment as of the write before the step. Recovery (at
//! start, periodically, and before any request about that payment) takes the pending step
//! again, which acts once whatever happened before, and applies it unless the payment
//! already has. The payment records which step is pending, so a request on a payment with
//! none reads no log. A step whose outcome is unknown (the ledger or channel did not
//! answer) stays pending, and the request answers `payment_in_flight`: retrying with the
//! same key, or recovery, finishes it. No answer lost in a timeout can charge twice or
//! strand a hold.
//!
//! # Decisions that are never half-done
//!
//! A capture is decided (the amount per leg) and saved before its first step; an unpaid
//! end (failed, cancelled, expired) likewise, before its first release. Recovery carries
//! either to its end. A confirm interrupted with some legs reserved is not rolled back at
//! once (a retry with the same key continues it); if nobody retries, the payment expires at
//! its deadline and every reserved leg is released.

mod flows;
mod intent_log;
mod requests;
mod risk;
mod sources;

pub(crate) use intent_log::StepError;
pub(crate) use sources::{key_taken, transfer};

use crate::credit::decision::CreditService;
use crate::credit::operations::OperationError;
use crate::intent::{intent_key, LockStripes};
use crate::payments::accounts::{check_customer, AccountsCache, Balance};
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{Failure, PaymentRecord, RefundStatus};
use crate::payments::risk_control::CodeSink;
use crate::payments::views::{payment_view, PaymentView};
use crate::payments::webhooks::{created_event, Announced, DELIVERY_TIMEOUT};
use crate::risk::RiskService;
use crate::service_accounts::ServiceAccountError;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use requests::{hash_request, ANSWER_CREATED};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use tally_channel::Channel;
use tally_core::{AccountId, Amount, Currency, Secret};
use tally_payments::vault::AnnualRate;
use tally_payments::{
    CaptureMethod, Funding, NewPayment, Payment, PaymentError, PaymentStatus, RefundPolicy, Source,
};
use tally_store::payments::writer::PaymentWriter;
use tally_store::payments::{
    AppendedStep, PaymentAnswer, PaymentChanges, PaymentInsert, PaymentUpdate, ResolvedStep,
    StoredPayment,
};
use tally_store::{Database, LedgerWriter, StoreError};

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

/// A payment read for a change, with its version, and what its work has changed since it
/// was last written (see [`PaymentService::flush`]).
struct Loaded {
    record: PaymentRecord,
    version: i64,
    /// The sequence the record has applied through.
    applied_through: i64,
    /// What the stored version announced to merchants: a write announces the rest.
    announced: Announced,
    /// The record changed since it was written.
    changed: bool,
    /// Steps taken and applied whose end is not written yet.
    resolved: Vec<ResolvedStep>,
    /// The steps about to be taken, written as pending with the rest before they are.
    append: Vec<AppendedStep>,
    /// The step of the intent log left pending once the changes are written; `None` when
    /// none is, so that settling a payment need not read its log.
    pending_step: Option<i64>,
    /// Whether `pending_step` is known: a payment stored before it was kept says nothing,
    /// and its log is read.
    steps_tracked: bool,
}

impl Loaded {
    /// Records that the payment changed: the change is written with the next step, before
    /// that step is taken, or at the end of the request with its answer.
    fn stage(&mut self) {
        self.changed = true;
    }
}

/// The stored state: the record, the last step applied and the step left pending.
#[derive(Serialize, Deserialize)]
struct StoredState {
    record: PaymentRecord,
    applied_through: i64,
    #[serde(default)]
    pending_step: Option<i64>,
    #[serde(default)]
    steps_tracked: bool,
}

/// The payment service.
pub struct PaymentService {
    database: Database,
    writer: LedgerWriter,
    credit: Option<Arc<CreditService>>,
    channel: Option<Arc<dyn Channel>>,
    accounts: AccountsCache,
    stripes: LockStripes,
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
    /// The keys that seal merchants' webhook secrets, once attached.
    privacy: std::sync::OnceLock<Arc<tally_privacy::Privacy>>,
    /// Writes payments' changes with other payments' in one transaction (group commit);
    /// started on the first write, on the runtime that serves the payments.
    payment_writer: std::sync::OnceLock<PaymentWriter>,
}

/// What the shopper's device adds to a confirm: where it comes from (for risk control) and
/// the one-time code when the payment asked for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmInput {
    pub device: Option<String>,
    pub ip: Option<String>,
    pub code: Option<String>,
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

fn decode_loaded(stored: StoredPayment) -> Result<Loaded, PaymentServiceError> {
    let state: StoredState = serde_json::from_str(&stored.state)
        .map_err(|error| StoreError::Corrupt(format!("payment {}: {error}", stored.id)))?;
    Ok(Loaded {
        announced: Announced::of(&state.record),
        record: state.record,
        version: stored.version,
        applied_through: state.applied_through,
        changed: false,
        resolved: Vec::new(),
        append: Vec::new(),
        pending_step: state.pending_step,
        steps_tracked: state.steps_tracked,
    })
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
            stripes: LockStripes::new(LOCK_STRIPES),
            config,
            lose_answer_in: std::sync::atomic::AtomicI64::new(-1),
            webhook_client: reqwest::Client::builder()
                .timeout(DELIVERY_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            risk: std::sync::OnceLock::new(),
            code_sink: std::sync::OnceLock::new(),
            privacy: std::sync::OnceLock::new(),
            payment_writer: std::sync::OnceLock::new(),
        }
    }

    /// Seals merchants' webhook secrets with `privacy`. Only the first call counts.
    pub fn attach_privacy(&self, privacy: Arc<tally_privacy::Privacy>) {
        let _ = self.privacy.set(privacy);
    }

    /// The sealing keys, once attached.
    pub(crate) fn privacy(&self) -> Option<&Arc<tally_privacy::Privacy>> {
        self.privacy.get()
    }

    /// Decides every payment confirmed from now on with `risk`. Only the first call counts.
    pub fn attach_risk(&self, risk: Arc<RiskService>) {
        let _ = self.risk.set(risk);
    }

    /// Sends one-time codes to `sink`. Only the first call counts.
    pub fn attach_code_sink(&self, sink: Arc<dyn CodeSink>) {
        let _ = self.code_sink.set(sink);
    }

    /// Test hook: the `steps`-th step taken from now (1 for the next) acts, and then its
    /// answer is lost, as when the ledger or the channel acted and the reply never came.
    /// The request answers `payment_in_flight`; a retry or recovery must finish it.
    pub fn lose_answer_of_step(&self, steps: i64) {
        self.lose_answer_in
            .store(steps, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn writer(&self) -> &LedgerWriter {
        &self.writer
    }

    /// The credit service, when this process runs one.
    pub fn credit(&self) -> Option<&CreditService> {
        self.credit.as_deref()
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

    /// The ledger account of `customer`'s `balance` in `currency`; `None` when it was never
    /// opened (paying from it opens nothing).
    async fn balance_account(
        &self,
        balance: Balance,
        customer: &str,
        currency: Currency,
    ) -> Result<Option<AccountId>, ServiceAccountError> {
        self.accounts
            .balance(
                &self.database,
                &self.writer,
                balance,
                customer,
                currency,
                false,
            )
            .await
    }

    /// The lock that serialises work on `id` within this process.
    pub(crate) async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.stripe(id).lock().await
    }

    fn stripe(&self, id: &str) -> &tokio::sync::Mutex<()> {
        self.stripes.of_name(id)
    }

    /// The task that writes payments' changes in batches, started on the first write.
    fn payment_writer(&self) -> &PaymentWriter {
        self.payment_writer
            .get_or_init(|| PaymentWriter::start(self.database.clone()))
    }

    /// The key every step of payment `id` derives its keys from (`payments:{id}`).
    fn intent_key(id: &str) -> String {
        intent_key("payments", id)
    }

    async fn load(&self, id: &str) -> Result<Loaded, PaymentServiceError> {
        let stored = self
            .database
            .payment(id)
            .await?
            .ok_or_else(|| PaymentServiceError::PaymentNotFound(id.to_string()))?;
        decode_loaded(stored)
    }

    /// Writes what the payment's work changed since it was last written, in one
    /// transaction: the record (version-checked, with the events it announces), the steps
    /// it applied marked resolved, the next step as pending, and `answer` when the request
    /// ends. Called before each step is taken (its intent is then on disk) and at the end
    /// of every request; a crash before it leaves the last step pending, and recovery takes
    /// that step again.
    async fn flush(
        &self,
        loaded: &mut Loaded,
        now: Timestamp,
        answer: Option<PaymentAnswer>,
    ) -> Result<(), PaymentServiceError> {
        let update = if loaded.changed || !loaded.resolved.is_empty() || !loaded.append.is_empty() {
            let state = encode(
                &StoredState {
                    record: loaded.record.clone(),
                    applied_through: loaded.applied_through,
                    pending_step: loaded.pending_step,
                    steps_tracked: loaded.steps_tracked,
                },
                "payment",
            )?;
            let record = &loaded.record;
            let payment = &record.payment;
            // Work decided and not finished (a capture, an unpaid end, a refund) is due at
            // once: if this request does not finish it (a crash), recovery does. A capture
            // in progress is finished, never expired.
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
            Some(PaymentUpdate {
                version: loaded.version,
                status: payment.status.as_str().to_string(),
                state,
                deadline,
                events: loaded.announced.events_since(record, now)?,
            })
        } else {
            None
        };
        let changes = PaymentChanges {
            payment_id: loaded.record.id.clone(),
            insert: None,
            resolved: loaded.resolved.clone(),
            append: loaded.append.clone(),
            answer,
            now,
            update,
        };
        if changes.is_empty() {
            return Ok(());
        }
        let updated = changes.update.is_some();
        if !self.payment_writer().write(changes).await? {
            return Err(PaymentServiceError::Contended(loaded.record.id.clone()));
        }
        if updated {
            loaded.version += 1;
            loaded.announced = Announced::of(&loaded.record);
        }
        loaded.changed = false;
        loaded.resolved.clear();
        loaded.append.clear();
        Ok(())
    }

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
        let credit_terms = self.credit_terms(&payment, now).await?;
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
            credit_terms,
        };
        let view = payment_view(&record);
        let state = encode(
            &StoredState {
                record: record.clone(),
                applied_through: 0,
                pending_step: None,
                steps_tracked: true,
            },
            "payment",
        )?;
        let answer = encode(&view, "answer")?;
        let payment = &record.payment;
        // Written with other payments' changes in one transaction (group commit).
        let inserted = self
            .payment_writer()
            .write(PaymentChanges {
                payment_id: id.clone(),
                insert: Some(PaymentInsert {
                    merchant_id: payment.merchant_id.clone(),
                    order_reference: payment.order_reference.clone(),
                    customer: payment.customer.clone(),
                    currency: payment.amount.currency().code().to_string(),
                    amount_minor: payment.amount.minor(),
                    status: payment.status.as_str().to_string(),
                    state,
                    deadline: payment.deadline(),
                    events: created_event(&record, now)?,
                }),
                update: None,
                resolved: Vec::new(),
                append: Vec::new(),
                answer: Some(PaymentAnswer {
                    key: key.to_string(),
                    kind: "create".to_string(),
                    request_hash: hash.clone(),
                    answer_code: ANSWER_CREATED,
                    answer,
                }),
                now,
            })
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
                    .balance_account(balance, &payment.customer, currency)
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
        let settled = self.settle(&mut loaded, now).await;
        self.flush(&mut loaded, now, None).await?;
        match settled {
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
        self.run(key, "release_delivery", &hash, id, now, move |_, loaded| {
            Box::pin(async move {
                loaded
                    .record
                    .payment
                    .release_delivery(now, "released by an analyst");
                loaded.stage();
                Ok(())
            })
        })
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
}
