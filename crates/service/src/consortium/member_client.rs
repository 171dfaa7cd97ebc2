//! Tally as a member of a consortium log over HTTP: signed requests in sequence, lookups
//! of identifiers for risk decisions (cached, within the member's quota, never waiting
//! longer than a stated timeout), and the publication of confirmed fraud exactly once.
//!
//! - **Sequence numbers**: the log refuses a request whose sequence number is not above the
//!   member's last (`replayed_request`). Requests are signed and sent one at a time under
//!   one lock, numbered from the last the log reports for the member (`GET /members`),
//!   learnt again after a refusal.
//! - **Lookups** ([`MemberClient::lookup`]): an answer (records or none) is kept for
//!   `hit_seconds` or `miss_seconds`, a failure for [`FAILURE_BACKOFF_SECONDS`]; at most
//!   one query per identifier is in flight, run on a task of its own, so a decision that
//!   stops waiting at the timeout leaves it to fill the cache for the next one. Queries
//!   are counted per UTC day (as the log counts them) against `queries_per_day`; when the
//!   count is spent, or the log answers `quota_exceeded`, no query is sent until the next
//!   day and lookups say `quota_spent`.
//! - **Publications** ([`MemberClient::publish_pending`]): a confirmed case's identifiers
//!   are rows of `consortium_publications`, written with the confirmation. Each is signed
//!   and its signed request stored before it is sent; a resend after a crash or a lost
//!   answer is the same request, which the log logs at most once (its sequence number).
//!   When the log refuses it as a replay, the entries since the log's size at signing are
//!   read for it: found, it was published; absent, a later request overtook it, and it is
//!   signed again with a new number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tally_consortium::{
    decode_entry_range, normalise, Action, Entry, IdentifierKind, IdentifierOpening, RiskType,
    SignedRequest, SignerKey, UnixSeconds,
};
use tally_core::Clock;
use tally_risk::{ListHit, ListKind, CONSORTIUM_SOURCE};
use tally_store::risk::{PublicationRow, RiskStore};
use tokio::sync::{watch, Mutex};

/// How long a failed query (log unreachable, an error answer) is remembered before the
/// identifier is asked again, so that a log that is down costs no connection per decision.
pub const FAILURE_BACKOFF_SECONDS: i64 = 5;

/// Most identifiers the lookup cache holds; past it, expired answers are dropped, then all.
pub const CACHE_ENTRIES_MAX: usize = 100_000;

/// How long a request to the log may take when nothing waits for it (a query left to
/// fill the cache, a publication).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most entries read at once when looking for a publication whose answer was lost.
const ENTRIES_PER_READ: u64 = 1000;

/// This member's settings.
#[derive(Debug, Clone)]
pub struct MemberSettings {
    /// The log's base URL (`http://host:port`, without `/v1/consortium`).
    pub url: String,
    /// The consortium's name, as in its genesis.
    pub consortium: String,
    /// This member's signing key; its name is the member's name in the log.
    pub key: Arc<SignerKey>,
    /// Longest a decision waits for a lookup.
    pub lookup_timeout: Duration,
    /// How long a found record is remembered.
    pub hit_seconds: i64,
    /// How long an answer without records is remembered.
    pub miss_seconds: i64,
    /// Most queries a UTC day (at most the log's quota for the member).
    pub queries_per_day: u32,
    /// Days a published record stays live.
    pub record_days: u64,
}

/// A live record of the log about an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordSeen {
    pub record: u64,
    pub publisher: String,
    pub risk_type: String,
    pub severity: u8,
    pub expires_at: u64,
}

/// What a lookup learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupOutcome {
    /// The log answered (now or within the cache's memory): its live records, maybe none.
    Answered {
        records: Arc<Vec<RecordSeen>>,
        cached: bool,
    },
    /// No answer within the timeout: no hit known. The query goes on and fills the cache.
    TimedOut,
    /// The day's queries are spent: not asked.
    QuotaSpent,
    /// The log could not be asked or refused the query (remembered briefly).
    Unavailable(String),
    /// Not an identifier of its kind (the log would refuse it): not asked.
    InvalidIdentifier,
}

impl LookupOutcome {
    /// Its stable name on a decision.
    pub fn name(&self) -> &'static str {
        match self {
            LookupOutcome::Answered { records, .. } if records.is_empty() => "no_record",
            LookupOutcome::Answered { .. } => "records",
            LookupOutcome::TimedOut => "timed_out",
            LookupOutcome::QuotaSpent => "quota_spent",
            LookupOutcome::Unavailable(_) => "unavailable",
            LookupOutcome::InvalidIdentifier => "invalid_identifier",
        }
    }
}

/// A cached answer: records, or the failure, until `expires_at` (Unix seconds).
#[derive(Debug, Clone)]
struct Cached {
    answer: Result<Arc<Vec<RecordSeen>>, String>,
    expires_at: i64,
}

type CacheKey = (IdentifierKind, String);
type Pending = watch::Receiver<Option<Result<Arc<Vec<RecordSeen>>, String>>>;

/// What the cache tells a lookup to do.
#[derive(Debug)]
pub(crate) enum CacheStep {
    Known(Result<Arc<Vec<RecordSeen>>, String>),
    Wait(Pending),
    Ask(
        watch::Sender<Option<Result<Arc<Vec<RecordSeen>>, String>>>,
        Pending,
    ),
    QuotaSpent,
}

/// Answers by identifier with their expiry, queries in flight, and the day's count. Pure
/// but for the times it is given.
#[derive(Debug, Default)]
pub(crate) struct LookupCache {
    answers: HashMap<CacheKey, Cached>,
    in_flight: HashMap<CacheKey, Pending>,
    day: i64,
    queries_in_day: u32,
    spent_day: Option<i64>,
}

impl LookupCache {
    /// What to do about `key` at `now` (Unix seconds): an answer still remembered, a
    /// query in flight to wait on, a new query (counted), or nothing (quota spent).
    pub(crate) fn step(&mut self, key: &CacheKey, now: i64, queries_per_day: u32) -> CacheStep {
        if let Some(cached) = self.answers.get(key) {
            if now < cached.expires_at {
                return CacheStep::Known(cached.answer.clone());
            }
        }
        if let Some(pending) = self.in_flight.get(key) {
            return CacheStep::Wait(pending.clone());
        }
        let day = now.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.queries_in_day = 0;
        }
        if self.spent_day == Some(day) || self.queries_in_day >= queries_per_day {
            return CacheStep::QuotaSpent;
        }
        self.queries_in_day += 1;
        let (sender, receiver) = watch::channel(None);
        self.in_flight.insert(key.clone(), receiver.clone());
        CacheStep::Ask(sender, receiver)
    }

    /// Remembers the answer to `key` (or its failure) until `expires_at`.
    pub(crate) fn answered(
        &mut self,
        key: CacheKey,
        answer: Result<Arc<Vec<RecordSeen>>, String>,
        now: i64,
        expires_at: i64,
    ) {
        self.in_flight.remove(&key);
        if self.answers.len() >= CACHE_ENTRIES_MAX {
            self.answers.retain(|_, cached| now < cached.expires_at);
            if self.answers.len() >= CACHE_ENTRIES_MAX {
                self.answers.clear();
            }
        }
        self.answers.insert(key, Cached { answer, expires_at });
    }

    /// The log said the member's quota is spent: no query until the next UTC day.
    pub(crate) fn quota_spent(&mut self, now: i64) {
        self.spent_day = Some(now.div_euclid(86_400));
    }

    /// Queries counted on the current day.
    pub(crate) fn queries_in_day(&self) -> u32 {
        self.queries_in_day
    }
}

/// Why a request to the log failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MemberError {
    #[error("the consortium log could not be reached: {0}")]
    Unreachable(String),
    /// The log answered with an error code (`replayed_request`, `quota_exceeded`, ...).
    #[error("the consortium log refused the request: {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the consortium log answered something unreadable: {0}")]
    Unreadable(String),
}

impl MemberError {
    fn code(&self) -> Option<&str> {
        match self {
            MemberError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Tally as a member of one consortium log.
pub struct MemberClient {
    settings: MemberSettings,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The last sequence number used; `None`: ask the log.
    sequence: Mutex<Option<u64>>,
    cache: StdMutex<LookupCache>,
}

impl std::fmt::Debug for MemberClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MemberClient")
            .field("url", &self.settings.url)
            .field("member", &self.settings.key.name())
            .finish_non_exhaustive()
    }
}

/// The body of a member request: the signed request and the identifier that opens its
/// commitment, as `POST /v1/consortium/{records,queries}` take them.
pub fn request_body(request: &SignedRequest, opening: Option<&IdentifierOpening>) -> Value {
    let mut body = json!({
        "request": base64::engine::general_purpose::STANDARD.encode(request.to_bytes()),
    });
    if let Some(opening) = opening {
        body["identifier"] = json!({
            "kind": opening.identifier().kind().name(),
            "value": opening.identifier().expose(),
            "salt": hex::encode(opening.salt()),
        });
    }
    body
}

/// The last sequence number the log accepted from `member`, from `GET /members`' answer
/// (0 for none).
pub fn last_sequence(members: &Value, member: &str) -> u64 {
    members["members"]
        .as_array()
        .and_then(|members| {
            members
                .iter()
                .find(|candidate| candidate["name"] == member)
                .and_then(|candidate| candidate["last_sequence"].as_u64())
        })
        .unwrap_or(0)
}

fn random_salt() -> [u8; 16] {
    rand::random()
}

impl MemberClient {
    pub fn new(settings: MemberSettings, clock: Arc<dyn Clock>) -> Result<Self, MemberError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| MemberError::Unreachable(error.to_string()))?;
        Ok(MemberClient {
            settings,
            http,
            clock,
            sequence: Mutex::new(None),
            cache: StdMutex::new(LookupCache::default()),
        })
    }

    pub fn settings(&self) -> &MemberSettings {
        &self.settings
    }

    /// The member's name in the log.
    pub fn member(&self) -> &str {
        self.settings.key.name()
    }

    fn root(&self) -> String {
        format!("{}/v1/consortium", self.settings.url.trim_end_matches('/'))
    }

    fn now(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// Queries counted today by this process.
    pub fn queries_in_day(&self) -> u32 {
        self.cache_lock().queries_in_day()
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, LookupCache> {
        // A panic while the lock was held left whole entries only: keep serving.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, MemberError> {
        let response = self
            .http
            .get(format!("{}/{path}", self.root()))
            .send()
            .await
            .map_err(|error| MemberError::Unreachable(error.to_string()))?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        Ok(response)
    }

    /// The log's size, from its checkpoint's second line (only a place to start reading
    /// from: nothing is trusted on it).
    async fn log_size(&self) -> Result<u64, MemberError> {
        let text = self
            .get("checkpoint")
            .await?
            .text()
            .await
            .map_err(|error| MemberError::Unreachable(error.to_string()))?;
        text.lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| MemberError::Unreadable("a checkpoint without a size".into()))
    }

    /// The next sequence number, learnt from the log when not known. Under the lock.
    async fn next_sequence(&self, last: &mut Option<u64>) -> Result<u64, MemberError> {
        let previous = match *last {
            Some(previous) => previous,
            None => {
                let members: Value = self
                    .get("members")
                    .await?
                    .json()
                    .await
                    .map_err(|error| MemberError::Unreadable(error.to_string()))?;
                last_sequence(&members, self.member())
            }
        };
        let next = previous + 1;
        *last = Some(next);
        Ok(next)
    }

    fn sign(&self, sequence: u64, action: Action) -> SignedRequest {
        let time = UnixSeconds::try_from(self.now()).unwrap_or(0);
        SignedRequest::sign(
            &self.settings.consortium,
            &self.settings.key,
            sequence,
            time,
            action,
        )
    }

    async fn post(&self, route: &str, body: &Value) -> Result<Value, MemberError> {
        let response = self
            .http
            .post(format!("{}/{route}", self.root()))
            .json(body)
            .send()
            .await
            .map_err(|error| MemberError::Unreachable(error.to_string()))?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        response
            .json()
            .await
            .map_err(|error| MemberError::Unreadable(error.to_string()))
    }

    /// Sends a signed query about `opening` now: the log's live records about it.
    pub async fn query(&self, opening: &IdentifierOpening) -> Result<Vec<RecordSeen>, MemberError> {
        let mut last = self.sequence.lock().await;
        let sequence = self.next_sequence(&mut last).await?;
        let request = self.sign(
            sequence,
            Action::Query {
                identifier: opening.commitment(),
            },
        );
        let answer = self
            .post("queries", &request_body(&request, Some(opening)))
            .await;
        if matches!(&answer, Err(error) if error.code() == Some("replayed_request")) {
            *last = None;
        }
        let answer = answer?;
        serde_json::from_value(answer["records"].clone())
            .map_err(|error| MemberError::Unreadable(error.to_string()))
    }

    /// What the log knows about `raw` of `kind`, waiting at most the lookup timeout.
    pub async fn lookup(self: &Arc<Self>, kind: IdentifierKind, raw: &str) -> LookupOutcome {
        let Ok(identifier) = normalise(kind, raw, None) else {
            return LookupOutcome::InvalidIdentifier;
        };
        let key = (kind, identifier.expose().to_string());
        let now = self.now();
        let step = self
            .cache_lock()
            .step(&key, now, self.settings.queries_per_day);
        let mut pending = match step {
            CacheStep::Known(Ok(records)) => {
                return LookupOutcome::Answered {
                    records,
                    cached: true,
                }
            }
            CacheStep::Known(Err(error)) => return LookupOutcome::Unavailable(error),
            CacheStep::QuotaSpent => return LookupOutcome::QuotaSpent,
            CacheStep::Wait(pending) => pending,
            CacheStep::Ask(sender, pending) => {
                let client = Arc::clone(self);
                let opening = IdentifierOpening::new(identifier, random_salt());
                tokio::spawn(async move {
                    let answer = client.query(&opening).await;
                    let now = client.now();
                    let (answer, expires_at) = match answer {
                        Ok(records) => {
                            let seconds = if records.is_empty() {
                                client.settings.miss_seconds
                            } else {
                                client.settings.hit_seconds
                            };
                            (Ok(Arc::new(records)), now + seconds)
                        }
                        Err(error) => {
                            if error.code() == Some("quota_exceeded") {
                                client.cache_lock().quota_spent(now);
                            }
                            tracing::warn!(%error, "a consortium query failed; no hit known");
                            (Err(error.to_string()), now + FAILURE_BACKOFF_SECONDS)
                        }
                    };
                    client
                        .cache_lock()
                        .answered(key, answer.clone(), now, expires_at);
                    sender.send_replace(Some(answer));
                });
                pending
            }
        };
        let waited = tokio::time::timeout(self.settings.lookup_timeout, async {
            loop {
                if let Some(answer) = pending.borrow_and_update().clone() {
                    return Some(answer);
                }
                if pending.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match waited {
            Ok(Some(Ok(records))) => LookupOutcome::Answered {
                records,
                cached: false,
            },
            Ok(Some(Err(error))) => LookupOutcome::Unavailable(error),
            Ok(None) => LookupOutcome::Unavailable("the query stopped".into()),
            Err(_) => LookupOutcome::TimedOut,
        }
    }

    /// The consortium's list hits for the identifiers of an event (its device), and what
    /// each lookup learnt, as recorded on the decision. Records this member published are
    /// shown but are no hit: the rules act on what other members reported.
    pub async fn hits(self: &Arc<Self>, device: Option<&str>) -> (Vec<ListHit>, Value) {
        let mut hits = Vec::new();
        let mut lookups = Vec::new();
        if let Some(device) = device {
            let outcome = self.lookup(IdentifierKind::Device, device).await;
            let mut entry = json!({"field": "device", "outcome": outcome.name()});
            match &outcome {
                LookupOutcome::Answered { records, cached } => {
                    entry["cached"] = json!(cached);
                    entry["records"] = json!(records
                        .iter()
                        .map(|record| json!({
                            "record": record.record,
                            "publisher": record.publisher,
                            "risk_type": record.risk_type,
                            "severity": record.severity,
                        }))
                        .collect::<Vec<_>>());
                    for record in records
                        .iter()
                        .filter(|record| record.publisher != self.member())
                    {
                        hits.push(ListHit {
                            kind: ListKind::Watch,
                            field: tally_risk::EntityField::Device,
                            reason: format!(
                                "consortium record {} by {}: {}, severity {}",
                                record.record, record.publisher, record.risk_type, record.severity
                            ),
                            source: CONSORTIUM_SOURCE.to_string(),
                        });
                    }
                }
                LookupOutcome::Unavailable(error) => entry["error"] = json!(error),
                _ => {}
            }
            lookups.push(entry);
        }
        (hits, Value::Array(lookups))
    }

    /// Sends the pending publications (at most `limit`); how many were published now.
    pub async fn publish_pending(
        &self,
        store: &RiskStore,
        limit: i64,
    ) -> Result<usize, MemberError> {
        let pending = store
            .pending_publications(limit)
            .await
            .map_err(|error| MemberError::Unreachable(format!("storage: {error}")))?;
        let mut published = 0;
        for row in pending {
            match self.publish_one(store, &row).await {
                Ok(true) => published += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, publication = row.id, "a consortium publication failed; retried");
                    let _ = store
                        .publication_attempt_failed(&row.id, &error.to_string())
                        .await;
                }
            }
        }
        Ok(published)
    }

    /// Publishes one row: signs it (stored before sending) unless it is signed already,
    /// sends it, and marks it published (or refused) with its case's trail line.
    async fn publish_one(
        &self,
        store: &RiskStore,
        row: &PublicationRow,
    ) -> Result<bool, MemberError> {
        let storage =
            |error: tally_store::StoreError| MemberError::Unreachable(format!("storage: {error}"));
        let kind = IdentifierKind::from_name(&row.kind)
            .map_err(|error| MemberError::Unreadable(error.to_string()))?;
        let identifier = match normalise(kind, &row.identifier, None) {
            Ok(identifier) => identifier,
            Err(error) => {
                return self
                    .finish(store, row, None, Some(&error.to_string()))
                    .await
                    .map_err(storage);
            }
        };
        let mut last = self.sequence.lock().await;
        // The stored request, or a new one stored before it is sent.
        let (request, salt) = match (&row.request, &row.salt) {
            (Some(request), Some(salt)) => (decode_request(request)?, decode_salt(salt)?),
            _ => {
                let salt = random_salt();
                let opening = IdentifierOpening::new(identifier.clone(), salt);
                let search_from = self.log_size().await?;
                let sequence = self.next_sequence(&mut last).await?;
                let request = self.sign(sequence, publish_action(row, &opening));
                let encoded = base64::engine::general_purpose::STANDARD.encode(request.to_bytes());
                let search_from = i64::try_from(search_from).unwrap_or(i64::MAX);
                if !store
                    .sign_publication(
                        &row.id,
                        Some(&encoded),
                        Some(&hex::encode(salt)),
                        Some(search_from),
                        None,
                    )
                    .await
                    .map_err(storage)?
                {
                    return Ok(false);
                }
                (request, salt)
            }
        };
        let opening = IdentifierOpening::new(identifier, salt);
        match self
            .post("records", &request_body(&request, Some(&opening)))
            .await
        {
            Ok(answer) => {
                let index = answer["index"]
                    .as_i64()
                    .ok_or_else(|| MemberError::Unreadable("no index".into()))?;
                self.finish(store, row, Some(index), None)
                    .await
                    .map_err(storage)
            }
            Err(error) if error.code() == Some("replayed_request") => {
                *last = None;
                let from = u64::try_from(row.search_from.unwrap_or(0)).unwrap_or(0);
                match self.find_request(&request, from).await? {
                    Some(index) => self
                        .finish(store, row, Some(index), None)
                        .await
                        .map_err(storage),
                    None => {
                        // Overtaken by a later request before it reached the log: signed
                        // again with a new number at the next pass.
                        store
                            .sign_publication(&row.id, None, None, None, row.request.as_deref())
                            .await
                            .map_err(storage)?;
                        Err(error)
                    }
                }
            }
            Err(error @ MemberError::Refused { status, .. }) if status != 503 && status != 429 => {
                let message = error.to_string();
                self.finish(store, row, None, Some(&message))
                    .await
                    .map_err(storage)
            }
            Err(error) => Err(error),
        }
    }

    async fn finish(
        &self,
        store: &RiskStore,
        row: &PublicationRow,
        index: Option<i64>,
        error: Option<&str>,
    ) -> Result<bool, tally_store::StoreError> {
        let now = self.clock.now();
        let (action, note) = match index {
            Some(index) => (
                "consortium_published",
                format!(
                    "{} published to the consortium log as record {index} ({}, severity {})",
                    row.kind, row.risk_type, row.severity
                ),
            ),
            None => (
                "consortium_refused",
                format!("{} not published: {}", row.kind, error.unwrap_or("refused")),
            ),
        };
        let log =
            crate::risk::RiskService::log_line(&row.case_id, now, self.member(), action, &note);
        store
            .finish_publication(&row.id, index, crate::risk::micros(now), error, &log)
            .await
    }

    /// The log index of `request` among the entries from `from` on, if the log holds it.
    async fn find_request(
        &self,
        request: &SignedRequest,
        from: u64,
    ) -> Result<Option<i64>, MemberError> {
        let mut start = from;
        loop {
            let response = self
                .http
                .get(format!(
                    "{}/entries?start={start}&count={ENTRIES_PER_READ}",
                    self.root()
                ))
                .send()
                .await
                .map_err(|error| MemberError::Unreachable(error.to_string()))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(refusal(response).await);
            }
            let body = response
                .bytes()
                .await
                .map_err(|error| MemberError::Unreachable(error.to_string()))?;
            let entries = decode_entry_range(&body)
                .map_err(|error| MemberError::Unreadable(error.to_string()))?;
            if entries.is_empty() {
                return Ok(None);
            }
            for (offset, bytes) in entries.iter().enumerate() {
                let entry = Entry::decode(bytes)
                    .map_err(|error| MemberError::Unreadable(error.to_string()))?;
                if entry.body.request().is_some_and(|logged| {
                    logged.member == request.member
                        && logged.sequence == request.sequence
                        && logged.signature == request.signature
                }) {
                    let index = start + offset as u64;
                    return Ok(Some(i64::try_from(index).unwrap_or(i64::MAX)));
                }
            }
            start += entries.len() as u64;
        }
    }
}

/// Sends pending publications every `interval` until the process stops: `tally serve`'s
/// worker. A failure is logged and the rows stay pending for the next pass.
pub async fn publish_continuously(client: Arc<MemberClient>, store: RiskStore, interval: Duration) {
    loop {
        match client.publish_pending(&store, 100).await {
            Ok(0) => {}
            Ok(published) => {
                tracing::info!(published, "confirmed fraud published to the consortium log")
            }
            Err(error) => {
                tracing::warn!(%error, "consortium publications could not be read; retried")
            }
        }
        tokio::time::sleep(interval).await;
    }
}

fn publish_action(row: &PublicationRow, opening: &IdentifierOpening) -> Action {
    let risk_type = [
        RiskType::Fraud,
        RiskType::StolenAccount,
        RiskType::MoneyMule,
        RiskType::IdentityTheft,
        RiskType::SyntheticIdentity,
        RiskType::Other,
    ]
    .into_iter()
    .find(|risk_type| risk_type.name() == row.risk_type)
    .unwrap_or(RiskType::Fraud);
    Action::PublishRecord {
        identifier: opening.commitment(),
        risk_type,
        severity: u8::try_from(row.severity).unwrap_or(5),
        expires_at: u64::try_from(row.expires_at).unwrap_or(0),
        evidence_reference: format!("case {}", row.case_id),
    }
}

fn decode_request(text: &str) -> Result<SignedRequest, MemberError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| MemberError::Unreadable(error.to_string()))?;
    SignedRequest::from_bytes(&bytes).map_err(|error| MemberError::Unreadable(error.to_string()))
}

fn decode_salt(text: &str) -> Result<[u8; 16], MemberError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| MemberError::Unreadable("a stored salt that is not 16 bytes".into()))
}

/// The error an unsuccessful answer carries.
async fn refusal(response: reqwest::Response) -> MemberError {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    MemberError::Refused {
        status,
        code: body["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        message: body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Adds what the consortium lookups learnt to a decision's JSON object, as its key
/// `consortium` (the engine's decision knows only the hits).
pub(crate) fn with_consortium_lookups(decision_json: &mut String, lookups: &serde_json::Value) {
    if decision_json.ends_with('}') && decision_json.len() > 2 {
        decision_json.pop();
        decision_json.push_str(",\"consortium\":");
        decision_json.push_str(&lookups.to_string());
        decision_json.push('}');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tally_consortium::KeyType;
    use tally_core::ManualClock;

    fn client(url: String, timeout: Duration) -> Arc<MemberClient> {
        let key = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).unwrap();
        let settings = MemberSettings {
            url,
            consortium: "test".into(),
            key: Arc::new(key),
            lookup_timeout: timeout,
            hit_seconds: 600,
            miss_seconds: 60,
            queries_per_day: 100,
            record_days: 365,
        };
        let clock = Arc::new(ManualClock::new(
            jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        Arc::new(MemberClient::new(settings, clock).unwrap())
    }

    #[tokio::test]
    async fn a_log_that_does_not_answer_costs_a_decision_the_timeout_and_no_more() {
        // A log that takes connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let client = client(format!("http://{address}"), Duration::from_millis(50));
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let outcome = client.lookup(IdentifierKind::Device, "device-1").await;
            let waited = started.elapsed();
            assert_eq!(outcome, LookupOutcome::TimedOut);
            assert!(waited >= Duration::from_millis(50), "{waited:?}");
            // The timeout plus scheduling on a loaded machine, far below the request's own.
            assert!(waited < Duration::from_millis(1_000), "{waited:?}");
        }
        // The second lookup waited on the first query, still in flight: one query counted.
        assert_eq!(client.queries_in_day(), 1);
        let (hits, lookups) = client.hits(Some("device-1")).await;
        assert!(hits.is_empty());
        assert_eq!(lookups[0]["outcome"], "timed_out");
    }

    #[tokio::test]
    async fn an_unreachable_log_is_no_hit_and_is_not_asked_again_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let client = client(format!("http://{address}"), Duration::from_secs(5));
        let outcome = client.lookup(IdentifierKind::Device, "device-1").await;
        assert!(
            matches!(outcome, LookupOutcome::Unavailable(_)),
            "{outcome:?}"
        );
        let again = client.lookup(IdentifierKind::Device, "device-1").await;
        assert!(matches!(again, LookupOutcome::Unavailable(_)), "{again:?}");
        assert_eq!(client.queries_in_day(), 1);
        assert_eq!(
            client.lookup(IdentifierKind::Device, "").await,
            LookupOutcome::InvalidIdentifier
        );
    }

    fn key() -> CacheKey {
        (IdentifierKind::Device, "device-1".into())
    }

    fn records() -> Arc<Vec<RecordSeen>> {
        Arc::new(vec![RecordSeen {
            record: 4,
            publisher: "bank-a".into(),
            risk_type: "stolen_account".into(),
            severity: 4,
            expires_at: 2_000_000_000,
        }])
    }

    #[test]
    fn an_answer_is_remembered_until_it_expires_then_asked_again() {
        let mut cache = LookupCache::default();
        let CacheStep::Ask(..) = cache.step(&key(), 1_000, 10) else {
            panic!("a first lookup asks the log");
        };
        // While the query is in flight, a second lookup waits on it, uncounted.
        assert!(matches!(cache.step(&key(), 1_000, 10), CacheStep::Wait(_)));
        assert_eq!(cache.queries_in_day(), 1);
        cache.answered(key(), Ok(records()), 1_000, 1_060);
        let CacheStep::Known(Ok(known)) = cache.step(&key(), 1_059, 10) else {
            panic!("remembered before its expiry");
        };
        assert_eq!(known, records());
        assert_eq!(cache.queries_in_day(), 1);
        assert!(matches!(cache.step(&key(), 1_060, 10), CacheStep::Ask(..)));
        assert_eq!(cache.queries_in_day(), 2);
    }

    #[test]
    fn misses_and_failures_are_remembered_too() {
        let mut cache = LookupCache::default();
        let _ = cache.step(&key(), 0, 10);
        cache.answered(key(), Ok(Arc::new(Vec::new())), 0, 30);
        assert!(
            matches!(cache.step(&key(), 29, 10), CacheStep::Known(Ok(records)) if records.is_empty())
        );
        let other = (IdentifierKind::Device, "device-2".to_string());
        let _ = cache.step(&other, 0, 10);
        cache.answered(other.clone(), Err("unreachable".into()), 0, 5);
        assert!(matches!(
            cache.step(&other, 4, 10),
            CacheStep::Known(Err(_))
        ));
        assert!(matches!(cache.step(&other, 5, 10), CacheStep::Ask(..)));
    }

    #[test]
    fn the_days_quota_stops_queries_until_the_next_day() {
        let mut cache = LookupCache::default();
        for device in 0..3 {
            let key = (IdentifierKind::Device, format!("device-{device}"));
            assert!(matches!(cache.step(&key, 100, 3), CacheStep::Ask(..)));
        }
        let fourth = (IdentifierKind::Device, "device-3".to_string());
        assert!(matches!(cache.step(&fourth, 100, 3), CacheStep::QuotaSpent));
        // Answers already known are still given.
        cache.answered(
            (IdentifierKind::Device, "device-0".into()),
            Ok(records()),
            100,
            1_000,
        );
        assert!(matches!(
            cache.step(&(IdentifierKind::Device, "device-0".into()), 200, 3),
            CacheStep::Known(Ok(_))
        ));
        // The next UTC day counts from zero.
        assert!(matches!(cache.step(&fourth, 86_400, 3), CacheStep::Ask(..)));
        // The log saying the quota is spent stops queries for the rest of its day.
        cache.quota_spent(86_500);
        let fifth = (IdentifierKind::Device, "device-4".to_string());
        assert!(matches!(
            cache.step(&fifth, 86_600, 3),
            CacheStep::QuotaSpent
        ));
        assert!(matches!(
            cache.step(&fifth, 2 * 86_400, 3),
            CacheStep::Ask(..)
        ));
    }
}
