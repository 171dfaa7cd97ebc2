//! Merchant webhooks: every payment and refund state change announced to the endpoints a
//! merchant registered, signed, retried with back-off, with every attempt in a delivery log.
//!
//! **Events are written with the change.** When the payment service saves a payment (and
//! when it creates one), the changes since the stored version — each new status transition,
//! a refund created or finished, a delivery held or released — become rows of an outbox
//! (`payment_events`) in the same transaction as the new state. So an event exists exactly
//! when its change was stored, however the request or the process ended.
//!
//! **Delivery is a worker's pass** ([`PaymentService::deliver_webhooks`], run by `tally
//! serve` every `webhook_interval_ms`; tests call it with the time they want): new events get
//! one delivery per endpoint of their merchant subscribed to their type (endpoints
//! registered after the event do not get it, as with Stripe), then every delivery due is
//! POSTed with `Tally-Event-Id` and `Tally-Signature: t=<unix seconds>,v1=<hex>`, the hex
//! being HMAC-SHA256 under the endpoint's secret of `"<t>.<body>"` (the scheme of the
//! channel's notifications, `tally_channel::notification`, so a receiver checks it the same
//! way and refuses replays by the signed time). A 2xx delivers it; anything else (another
//! status, a refused connection, no answer within 10 s) is retried after 1 s, doubling up
//! to an hour, and given up (`failed`) after [`ATTEMPTS_MAX`] attempts.
//!
//! **Secrets are sealed** with the keys that seal customers' personal data (associated data
//! [`sealed_secret_field`]), answered in clear once, when the endpoint is created, and opened
//! only to sign an attempt; without privacy keys no endpoint is registered. Rows stored in
//! clear before that are sealed by [`PaymentService::seal_webhook_secrets`] at start.
//!
//! **Endpoints are https or http**: the client speaks TLS through rustls with the Mozilla
//! roots compiled in (webpki-roots), so a receiver's certificate must chain to one of them;
//! an attempt refused on its certificate is logged with the cause.
//!
//! **The outbox is pruned**: events older than `[payments] webhook_retention_days` whose
//! every delivery is delivered or given up are removed with their deliveries and attempts
//! ([`PaymentService::prune_webhook_events`], hourly in `tally serve`); until then the
//! delivery log lists them.
//!
//! **Who sees what**: API keys are not tied to merchants (a `payments:read` key reads every
//! merchant's payments), so the listings take the merchant (an endpoint, an event) as a
//! filter, and listing every merchant's endpoints or latest deliveries at once needs `admin`.
//!
//! **Receivers deduplicate by event id**: delivery is at least once (an answer lost after
//! the receiver acted is sent again), and a retried event carries the same id and body.
//! A delivery is claimed before it is sent (its next attempt moved a minute on), so two
//! `tally serve` on one database do not both send it. Endpoints are served side by side,
//! each one's deliveries in order; one that does not answer at all holds back its own
//! other deliveries until the next pass, and nobody else's.

use crate::payments::checkout::PaymentService;
use crate::payments::error::PaymentServiceError;
use crate::payments::record::{PaymentRecord, RefundStatus};
use crate::payments::views::{payment_view, PaymentView};
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use tally_privacy::Privacy;
use tally_store::webhooks::{
    AttemptRecord, DueDelivery, FanOut, NewPaymentEvent, WebhookEndpointRow,
};
use tally_store::StoreError;
use utoipa::ToSchema;

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "payment.created",
    "payment.requires_action",
    "payment.authorized",
    "payment.under_review",
    "payment.captured",
    "payment.partially_captured",
    "payment.partially_refunded",
    "payment.refunded",
    "payment.failed",
    "payment.cancelled",
    "payment.expired",
    "payment.delivery_held",
    "payment.delivery_released",
    "refund.created",
    "refund.succeeded",
    "refund.failed",
];

/// The header naming the event: the receiver's deduplication key.
pub const EVENT_ID_HEADER: &str = "Tally-Event-Id";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tally-Signature";
/// Attempts at one delivery before it is given up.
pub const ATTEMPTS_MAX: i64 = 16;
/// The wait after the first failed attempt; it doubles after each.
pub const RETRY_DELAY_FIRST: SignedDuration = SignedDuration::from_secs(1);
/// The longest wait between two attempts.
pub const RETRY_DELAY_MAX: SignedDuration = SignedDuration::from_hours(1);
/// How long a receiver has to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is left to the worker that claimed it.
const CLAIM_LEASE: SignedDuration = SignedDuration::from_mins(1);
/// How long delivered and given-up events stay in the outbox and the delivery log when
/// `[payments] webhook_retention_days` is not set.
pub const RETENTION_DAYS_DEFAULT: u32 = 30;
/// Most events one pruning pass removes (one transaction).
pub const PRUNED_PER_PASS: i64 = 1000;
/// Endpoints whose secret a sealing pass reads at once.
const SEALED_PER_PASS: i64 = 100;
/// Longest endpoint URL, in bytes.
pub const URL_LENGTH_MAX: usize = 2048;
/// Most rows one listing answers.
const LISTING_MAX: i64 = 1000;
/// Most endpoints the worker reads to give events their deliveries.
const ENDPOINTS_SCANNED_MAX: i64 = 100_000;

/// A merchant's request for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhookEndpoint {
    pub merchant_id: String,
    pub url: String,
    pub events: Vec<String>,
}

/// An endpoint; its secret only in the answer to its creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpointView {
    pub created_at: String,
    /// The event types sent to it.
    pub events: Vec<String>,
    pub id: String,
    pub merchant_id: String,
    /// The key of its signatures: shown once, when it is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub url: String,
}

/// The endpoints listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpointList {
    pub endpoints: Vec<WebhookEndpointView>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttemptView {
    pub attempt: i64,
    pub attempted_at: String,
    /// Why no status came back (a refused connection, a timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The receiver's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i64>,
}

/// One event's delivery to one endpoint, with every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryView {
    pub attempts: Vec<WebhookAttemptView>,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// When it is sent again, while `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub payment_id: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
}

/// The delivery log listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub deliveries: Vec<WebhookDeliveryView>,
}

/// What one pass of the delivery worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// New events given their deliveries.
    pub fanned_out: usize,
    /// Deliveries attempted.
    pub attempted: usize,
    pub delivered: usize,
    /// Attempts that failed and will be made again.
    pub retrying: usize,
    /// Deliveries given up.
    pub failed: usize,
}

/// The body every receiver gets. Fields in alphabetical order.
#[derive(Serialize)]
struct EventPayload<'a> {
    created_at: String,
    data: EventData,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct EventData {
    /// The payment as it stood when the change was stored.
    payment: PaymentView,
    /// The refund the event is about, for `refund.*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_id: Option<String>,
}

/// What of a payment has been announced already: what its stored version shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Announced {
    transitions: usize,
    delivery_held: bool,
    refunds: Vec<(String, RefundStatus)>,
}

impl Announced {
    pub(crate) fn of(record: &PaymentRecord) -> Announced {
        Announced {
            transitions: record.payment.transitions.len(),
            delivery_held: record.payment.delivery_held,
            refunds: record
                .refunds
                .iter()
                .map(|refund| (refund.id.clone(), refund.status))
                .collect(),
        }
    }

    /// The events announcing what changed in `record` since `self`, in order.
    pub(crate) fn events_since(
        &self,
        record: &PaymentRecord,
        now: Timestamp,
    ) -> Result<Vec<NewPaymentEvent>, StoreError> {
        let mut kinds: Vec<(String, Option<String>)> = Vec::new();
        for transition in record.payment.transitions.iter().skip(self.transitions) {
            kinds.push((format!("payment.{}", transition.to.as_str()), None));
        }
        if record.payment.delivery_held != self.delivery_held {
            let kind = if record.payment.delivery_held {
                "payment.delivery_held"
            } else {
                "payment.delivery_released"
            };
            kinds.push((kind.to_string(), None));
        }
        for refund in &record.refunds {
            let before = self
                .refunds
                .iter()
                .find(|(id, _)| id == &refund.id)
                .map(|(_, status)| *status);
            if before.is_none() {
                kinds.push(("refund.created".to_string(), Some(refund.id.clone())));
            }
            if refund.status != RefundStatus::Pending && before != Some(refund.status) {
                kinds.push((
                    format!("refund.{}", refund.status.as_str()),
                    Some(refund.id.clone()),
                ));
            }
        }
        events(record, kinds, now)
    }
}

/// The event announcing a new payment.
pub(crate) fn created_event(
    record: &PaymentRecord,
    now: Timestamp,
) -> Result<Vec<NewPaymentEvent>, StoreError> {
    events(record, vec![("payment.created".to_string(), None)], now)
}

fn events(
    record: &PaymentRecord,
    kinds: Vec<(String, Option<String>)>,
    now: Timestamp,
) -> Result<Vec<NewPaymentEvent>, StoreError> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let view = payment_view(record);
    kinds
        .into_iter()
        .map(|(kind, refund_id)| {
            let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
            let payload = serde_json::to_string(&EventPayload {
                created_at: now.to_string(),
                data: EventData {
                    payment: view.clone(),
                    refund_id,
                },
                id: &id,
                kind: &kind,
            })
            .map_err(|error| StoreError::Corrupt(format!("event payload: {error}")))?;
            Ok(NewPaymentEvent {
                id,
                kind,
                payment_id: record.id.clone(),
                merchant_id: record.payment.merchant_id.clone(),
                payload,
                created_at: now,
            })
        })
        .collect()
}

/// The wait before the attempt after `attempts` failed ones: 1 s, doubling, at most an hour.
pub fn retry_delay(attempts: i64) -> SignedDuration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    let seconds = RETRY_DELAY_FIRST
        .as_secs()
        .saturating_mul(1_i64.checked_shl(doublings).unwrap_or(i64::MAX));
    SignedDuration::from_secs(seconds.min(RETRY_DELAY_MAX.as_secs()))
}

fn time(micros: i64) -> String {
    Timestamp::from_microsecond(micros)
        .map(|at| at.to_string())
        .unwrap_or_default()
}

/// The associated data an endpoint's sealed secret is bound to: a secret copied to another
/// endpoint's row does not open.
pub fn sealed_secret_field(endpoint_id: &str) -> String {
    format!("webhook_endpoint.secret:{endpoint_id}")
}

/// The signing secret of an endpoint as stored: opened when sealed, as it is when stored
/// before secrets were sealed.
fn open_secret(
    privacy: Option<&Privacy>,
    endpoint_id: &str,
    secret: &str,
    sealed: i64,
) -> Result<String, PaymentServiceError> {
    if sealed == 0 {
        return Ok(secret.to_string());
    }
    let privacy = privacy.ok_or(PaymentServiceError::PrivacyKeysNotConfigured)?;
    privacy
        .cipher
        .decrypt(&sealed_secret_field(endpoint_id), secret)
        .map(|opened| opened.expose().clone())
        .map_err(|error| {
            StoreError::Corrupt(format!("endpoint {endpoint_id}'s secret: {error}")).into()
        })
}

/// An endpoint as shown, with `secret` only in the answer to its creation.
fn endpoint_view(row: &WebhookEndpointRow, secret: Option<String>) -> WebhookEndpointView {
    WebhookEndpointView {
        created_at: time(row.created_at),
        events: serde_json::from_str(&row.events).unwrap_or_default(),
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        secret,
        url: row.url.clone(),
    }
}

/// Checks an endpoint's URL: absolute `http` or `https` with a host, no credentials, no
/// fragment.
pub fn check_url(text: &str) -> Result<(), PaymentServiceError> {
    let refuse = |reason: &str| {
        Err(PaymentServiceError::InvalidWebhookUrl(format!(
            "{text:?}: {reason}"
        )))
    };
    if text.len() > URL_LENGTH_MAX {
        return refuse(&format!("longer than {URL_LENGTH_MAX} bytes"));
    }
    let url = match reqwest::Url::parse(text) {
        Ok(url) => url,
        Err(error) => return refuse(&error.to_string()),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("the scheme must be http or https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return refuse("no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("credentials do not belong in the URL");
    }
    if url.fragment().is_some() {
        return refuse("a fragment is never sent");
    }
    Ok(())
}

impl PaymentService {
    /// Registers a merchant's endpoint under `key` (scoped to the API key): a new signing
    /// secret, answered with it. A retry with the same key and request answers the same.
    pub async fn create_webhook_endpoint(
        &self,
        key: &str,
        request: NewWebhookEndpoint,
        now: Timestamp,
    ) -> Result<WebhookEndpointView, PaymentServiceError> {
        let merchant = &request.merchant_id;
        if merchant.trim().is_empty()
            || merchant.len() > crate::payments::checkout::REFERENCE_LENGTH_MAX
            || merchant.chars().any(char::is_control)
        {
            return Err(PaymentServiceError::Invalid(format!(
                "merchant_id must be 1 to {} bytes of text without control characters",
                crate::payments::checkout::REFERENCE_LENGTH_MAX
            )));
        }
        check_url(&request.url)?;
        if request.events.is_empty() {
            return Err(PaymentServiceError::InvalidWebhookEvents(
                "name at least one event type".into(),
            ));
        }
        let mut events = request.events.clone();
        events.sort();
        events.dedup();
        if let Some(unknown) = events
            .iter()
            .find(|event| !EVENT_TYPES.contains(&event.as_str()))
        {
            return Err(PaymentServiceError::InvalidWebhookEvents(format!(
                "{unknown:?} is not an event type; they are {}",
                EVENT_TYPES.join(", ")
            )));
        }
        let request_hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&request)
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?,
        ));
        let privacy = self
            .privacy()
            .ok_or(PaymentServiceError::PrivacyKeysNotConfigured)?;
        let id = format!("we_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32]);
        let answer = |stored: &WebhookEndpointRow| {
            let secret = open_secret(
                Some(privacy),
                &stored.id,
                &stored.secret,
                stored.secret_sealed,
            )?;
            Ok::<_, PaymentServiceError>(endpoint_view(stored, Some(secret)))
        };
        if let Some(stored) = self.database().webhook_endpoint(&id).await? {
            if stored.request_hash != request_hash {
                return Err(PaymentServiceError::KeyReused(key.to_string()));
            }
            return answer(&stored);
        }
        let mut secret = [0_u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let secret = format!("whsec_{}", hex::encode(secret));
        let row = WebhookEndpointRow {
            id: id.clone(),
            merchant_id: merchant.clone(),
            url: request.url.clone(),
            events: serde_json::to_string(&events)
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?,
            secret: privacy
                .cipher
                .encrypt(&sealed_secret_field(&id), &secret)
                .map_err(|error| StoreError::Corrupt(format!("sealing a secret: {error}")))?,
            secret_sealed: 1,
            request_hash,
            created_at: now.as_microsecond(),
        };
        if !self.database().insert_webhook_endpoint(&row).await? {
            // A concurrent retry stored it first: its answer stands.
            let stored = self
                .database()
                .webhook_endpoint(&id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("endpoint {id} vanished")))?;
            if stored.request_hash != row.request_hash {
                return Err(PaymentServiceError::KeyReused(key.to_string()));
            }
            return answer(&stored);
        }
        Ok(endpoint_view(&row, Some(secret)))
    }

    /// Seals the secrets of endpoints stored before secrets were sealed (migration 0034 on
    /// SQLite, 0035 on PostgreSQL, left them in clear), each under the endpoint's own
    /// associated data: the number sealed. Nothing without privacy keys. Run by `tally
    /// serve` at start; two processes running it at once seal each row once.
    pub async fn seal_webhook_secrets(&self) -> Result<usize, PaymentServiceError> {
        let Some(privacy) = self.privacy() else {
            return Ok(0);
        };
        let mut sealed = 0;
        loop {
            let rows = self
                .database()
                .unsealed_webhook_endpoints(SEALED_PER_PASS)
                .await?;
            if rows.is_empty() {
                return Ok(sealed);
            }
            for row in rows {
                let text = privacy
                    .cipher
                    .encrypt(&sealed_secret_field(&row.id), &row.secret)
                    .map_err(|error| StoreError::Corrupt(format!("sealing a secret: {error}")))?;
                if self.database().seal_webhook_secret(&row.id, &text).await? {
                    sealed += 1;
                }
            }
        }
    }

    /// The endpoints, of one merchant when given, without their secrets.
    pub async fn webhook_endpoints(
        &self,
        merchant_id: Option<&str>,
    ) -> Result<WebhookEndpointList, PaymentServiceError> {
        let rows = self
            .database()
            .webhook_endpoints(merchant_id, LISTING_MAX)
            .await?;
        Ok(WebhookEndpointList {
            endpoints: rows.iter().map(|row| endpoint_view(row, None)).collect(),
        })
    }

    /// The delivery log, newest event first: of an endpoint, of an event, or (neither
    /// named) the latest deliveries; each delivery with every attempt.
    pub async fn webhook_deliveries(
        &self,
        endpoint: Option<&str>,
        event: Option<&str>,
    ) -> Result<WebhookDeliveryList, PaymentServiceError> {
        if let Some(endpoint) = endpoint {
            if self.database().webhook_endpoint(endpoint).await?.is_none() {
                return Err(PaymentServiceError::WebhookEndpointNotFound(
                    endpoint.to_string(),
                ));
            }
        }
        if let Some(event) = event {
            if self.database().payment_event(event).await?.is_none() {
                return Err(PaymentServiceError::WebhookEventNotFound(event.to_string()));
            }
        }
        let rows = self
            .database()
            .webhook_deliveries(endpoint, event, LISTING_MAX)
            .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in rows {
            let attempts = self
                .database()
                .webhook_attempts(&row.event_id, &row.endpoint_id)
                .await?
                .into_iter()
                .map(|attempt| WebhookAttemptView {
                    attempt: attempt.attempt,
                    attempted_at: time(attempt.attempted_at),
                    error: attempt.error,
                    status_code: attempt.status_code,
                })
                .collect();
            deliveries.push(WebhookDeliveryView {
                attempts,
                endpoint_id: row.endpoint_id,
                event_id: row.event_id,
                event_type: row.event_type,
                next_attempt_at: (row.status == "pending")
                    .then(|| row.next_attempt_at.map(time))
                    .flatten(),
                payment_id: row.payment_id,
                status: row.status,
            });
        }
        Ok(WebhookDeliveryList { deliveries })
    }

    /// Removes from the outbox at most `limit` events created more than `retention` before
    /// `now` whose every delivery is done (delivered or given up), with their deliveries and
    /// attempts: the number removed. Events still being sent somewhere stay, however old.
    /// Why by the event's age: a delivery is given up within about four hours of its event
    /// (16 attempts, waits doubling to an hour), so an event older than the retention is
    /// one whose log has been readable for the retention, less those hours.
    pub async fn prune_webhook_events(
        &self,
        now: Timestamp,
        retention: SignedDuration,
        limit: i64,
    ) -> Result<u64, PaymentServiceError> {
        let cutoff = now
            .checked_sub(retention)
            .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
        Ok(self.database().prune_webhook_events(cutoff, limit).await?)
    }

    /// One pass of the delivery worker at `now`: new events (at most `limit`) given their
    /// deliveries, then the deliveries due (at most `limit`) attempted.
    pub async fn deliver_webhooks(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<DeliveryReport, PaymentServiceError> {
        let mut report = DeliveryReport::default();
        let events = self.database().events_to_fan_out(limit).await?;
        if !events.is_empty() {
            // Every endpoint read once a pass, not once an event.
            let endpoints = self
                .database()
                .webhook_endpoints(None, ENDPOINTS_SCANNED_MAX)
                .await?;
            let fan_outs: Vec<FanOut> = events
                .iter()
                .map(|event| FanOut {
                    event_id: event.id.clone(),
                    endpoints: endpoints
                        .iter()
                        .filter(|endpoint| {
                            endpoint.merchant_id == event.merchant_id
                                && endpoint.created_at <= event.created_at
                                && serde_json::from_str::<Vec<String>>(&endpoint.events)
                                    .unwrap_or_default()
                                    .contains(&event.kind)
                        })
                        .map(|endpoint| endpoint.id.clone())
                        .collect(),
                    due: Timestamp::from_microsecond(event.created_at).unwrap_or(now),
                })
                .collect();
            self.database().fan_out_events(&fan_outs).await?;
            report.fanned_out = fan_outs.len();
        }
        // One task per endpoint: a slow or unreachable receiver delays only its own
        // deliveries, and each endpoint still gets its events in order.
        let mut by_endpoint: BTreeMap<String, Vec<DueDelivery>> = BTreeMap::new();
        for delivery in self.database().due_webhook_deliveries(now, limit).await? {
            by_endpoint
                .entry(delivery.endpoint_id.clone())
                .or_default()
                .push(delivery);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for deliveries in by_endpoint.into_values() {
            let database = self.database().clone();
            let client = self.webhook_client().clone();
            let privacy = self.privacy().cloned();
            tasks.spawn(async move {
                send_to_endpoint(&database, &client, privacy.as_deref(), deliveries, now).await
            });
        }
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(part)) => {
                    report.attempted += part.attempted;
                    report.delivered += part.delivered;
                    report.retrying += part.retrying;
                    report.failed += part.failed;
                }
                Ok(Err(error)) => failure = Some(error),
                Err(error) => tracing::error!(%error, "a webhook delivery task stopped"),
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(report)
    }
}

/// Attempts `deliveries`, all to one endpoint, in order; after an attempt that got no
/// answer at all (the endpoint is down or silent) the rest wait for the next pass, so that
/// one dead endpoint costs one timeout per pass.
async fn send_to_endpoint(
    database: &tally_store::Database,
    client: &reqwest::Client,
    privacy: Option<&Privacy>,
    deliveries: Vec<DueDelivery>,
    now: Timestamp,
) -> Result<DeliveryReport, PaymentServiceError> {
    let mut report = DeliveryReport::default();
    let lease = now
        .checked_add(CLAIM_LEASE)
        .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
    for delivery in deliveries {
        let claimed = database
            .claim_webhook_delivery(
                &delivery.event_id,
                &delivery.endpoint_id,
                delivery.next_attempt_at,
                lease,
            )
            .await?;
        if !claimed {
            continue;
        }
        // Opened for this attempt only; a secret Tally cannot open leaves the delivery to a
        // later pass (claimed for a minute), with the cause in the worker's log.
        let secret = open_secret(
            privacy,
            &delivery.endpoint_id,
            &delivery.secret,
            delivery.secret_sealed,
        )?;
        report.attempted += 1;
        let signature =
            tally_channel::signature_header(secret.as_bytes(), now, delivery.payload.as_bytes());
        let sent = client
            .post(&delivery.url)
            .header(EVENT_ID_HEADER, &delivery.event_id)
            .header(SIGNATURE_HEADER, signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.payload.clone())
            .send()
            .await;
        let (status_code, error) = match sent {
            Ok(response) => (Some(i64::from(response.status().as_u16())), None),
            Err(error) => (None, Some(error_chain(&error))),
        };
        let attempt = delivery.attempts + 1;
        let delivered = status_code.is_some_and(|code| (200..300).contains(&code));
        let (status, next_attempt_at) = if delivered {
            report.delivered += 1;
            ("delivered", None)
        } else if attempt >= ATTEMPTS_MAX {
            report.failed += 1;
            tracing::warn!(event = %delivery.event_id, endpoint = %delivery.endpoint_id, attempt, "webhook delivery given up");
            ("failed", None)
        } else {
            report.retrying += 1;
            let next = now
                .checked_add(retry_delay(attempt))
                .map_err(|error| PaymentServiceError::Invalid(error.to_string()))?;
            ("pending", Some(next))
        };
        database
            .record_webhook_attempt(&AttemptRecord {
                event_id: &delivery.event_id,
                endpoint_id: &delivery.endpoint_id,
                attempt,
                attempted_at: now,
                status_code,
                error: error.as_deref(),
                status,
                next_attempt_at,
            })
            .await?;
        if status_code.is_none() {
            break;
        }
    }
    Ok(report)
}

/// An error with every cause after it: reqwest's own message names only the URL, and the
/// operator reading the log needs the cause (a refused connection, a certificate the
/// receiver's TLS presents that no trusted root signs).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_a_second_to_an_hour() {
        let waits: Vec<i64> = (1..=14)
            .map(|attempts| retry_delay(attempts).as_secs())
            .collect();
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
        assert_eq!(retry_delay(1_000).as_secs(), 3600);
    }

    #[test]
    fn only_absolute_http_urls_with_a_host_are_endpoints() {
        assert!(check_url("https://shop.example/hooks").is_ok());
        assert!(check_url("http://127.0.0.1:9000/tally").is_ok());
        for refused in [
            "",
            "shop.example/hooks",
            "ftp://shop.example/hooks",
            "https://user:pw@shop.example/",
            "https://shop.example/#x",
            "http://",
        ] {
            let error = check_url(refused).expect_err(refused);
            assert_eq!(error.code(), "invalid_webhook_url", "{refused}");
        }
    }
}
