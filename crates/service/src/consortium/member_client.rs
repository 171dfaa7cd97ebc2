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
//! - **Answers are verified** ([`MemberClient::query`]): the log's checkpoint must carry
//!   the operator's signature (`log_key`) and extend the last one this member verified (a
//!   consistency proof; one of another history is a fork, an older one is never taken in
//!   its place), and the query's own entry and each record's publication entry must be in
//!   that tree (inclusion proofs over the entries' bytes), the query entry must hold this
//!   member's signed request and the records' count, and each record's entry must be a
//!   publication of the same blinded identifier saying what the answer says. An answer
//!   that fails any check is `unavailable` (the decision goes on without the hit), logged
//!   as an error and counted (`tally_consortium_member_unverified_answers_total`). The last
//!   checkpoint verified is stored and loaded at start ([`MemberClient::resumed`]), so a
//!   restart does not trust the first one it sees again. Not checked: that the answer
//!   lists every live record (that needs the whole log replayed).
//! - **Identifiers other members can match**: the device, and card numbers, delivery
//!   addresses and receiving phones in the consortium's normalised form
//!   ([`EventIdentifiers`]), taken where the event enters Tally, when the value is in hand.
//!   For publication they are kept sealed ([`MemberClient::keep`], table
//!   `consortium_identifiers`, deleted after `record_days`): the log blinds the normalised
//!   value itself, so nothing Tally could store in its place (its own keyed fingerprints,
//!   meaningless to others) would let a confirmed case publish them later.
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
    decode_entry_range, leaf_hash, normalise, open_checkpoint, verify_inclusion, Action,
    Checkpoint, Entry, EntryBody, Hash, IdentifierKind, IdentifierOpening, LogFollower,
    NormalisedIdentifier, Observation, RiskType, SignedRequest, SignerKey, UnixSeconds,
    VerifierKey,
};
use tally_core::Clock;
use tally_privacy::Privacy;
use tally_risk::{EntityField, ListHit, ListKind, CONSORTIUM_SOURCE};
use tally_store::risk::{ConsortiumIdentifierRow, PublicationRow, RiskStore};
use tokio::sync::{watch, Mutex};

mod identifiers;
mod publication;
mod verification;

pub use identifiers::*;
pub use publication::*;

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
    /// The operator's public key: every answer is checked against a checkpoint it signed.
    pub log_key: VerifierKey,
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
    /// The answer did not verify against a checkpoint the operator signed.
    #[error("the consortium log's answer did not verify: {0}")]
    Unverified(String),
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
    /// The latest checkpoint verified (signature, and consistency with the one before);
    /// held while a checkpoint is fetched and checked, so that two answers checked at once
    /// never check a proof from a size the other has moved past.
    follower: Mutex<LogFollower>,
    /// The keys that seal identifiers kept for publication; without them only devices are
    /// kept and published.
    privacy: Option<Arc<Privacy>>,
    /// Where each checkpoint verified is stored, to go on from it after a restart
    /// ([`MemberClient::resumed`]); `None`: kept in memory only.
    checkpoints: Option<RiskStore>,
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
            http,
            clock,
            follower: Mutex::new(LogFollower::new(settings.log_key.clone())),
            settings,
            sequence: Mutex::new(None),
            cache: StdMutex::new(LookupCache::default()),
            privacy: None,
            checkpoints: None,
        })
    }

    /// The client going on from the last checkpoint it verified of this log (stored in
    /// `store` by the operator's key), and storing each one it verifies from now on: a
    /// restarted member refuses a checkpoint older than that one, or of another history,
    /// as the running one did. A stored checkpoint the configured `log_key` does not open
    /// (the operator's key was changed in the configuration) is not trusted: the member
    /// starts from the first checkpoint it sees, with a warning.
    pub async fn resumed(mut self, store: RiskStore) -> Result<Self, tally_store::StoreError> {
        let log_key = self.settings.log_key.to_string();
        if let Some(text) = store.verified_checkpoint(&log_key).await? {
            let follower = self.follower.get_mut();
            match follower.observe(&text, &[]) {
                Ok(_) => {
                    if let Some(checkpoint) = follower.latest() {
                        tracing::info!(
                            size = checkpoint.size,
                            "consortium member going on from its last verified checkpoint"
                        );
                    }
                }
                Err(error) => {
                    let reason = match error {
                        Ok(fork) => fork.reason,
                        Err(error) => error.to_string(),
                    };
                    tracing::warn!(%reason, "the stored consortium checkpoint does not open with the configured log key; starting from the log's current one");
                }
            }
        }
        self.checkpoints = Some(store);
        Ok(self)
    }

    /// The client with the privacy keys that seal the identifiers it keeps for publication.
    pub fn with_privacy(mut self, privacy: Option<Arc<Privacy>>) -> Self {
        self.privacy = privacy;
        self
    }

    /// The size of the latest checkpoint verified, if any.
    pub async fn verified_size(&self) -> Option<u64> {
        self.follower
            .lock()
            .await
            .latest()
            .map(|checkpoint| checkpoint.size)
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

    /// Sends a signed query about `opening` now: the log's live records about it, once the
    /// answer verified against a checkpoint the operator signed ([`MemberError::Unverified`]
    /// otherwise).
    pub async fn query(&self, opening: &IdentifierOpening) -> Result<Vec<RecordSeen>, MemberError> {
        let (request, answer) = {
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
            (request, answer?)
        };
        let records: Vec<RecordSeen> = serde_json::from_value(answer["records"].clone())
            .map_err(|error| MemberError::Unreadable(error.to_string()))?;
        let index = answer["index"]
            .as_u64()
            .ok_or_else(|| MemberError::Unreadable("an answer without its index".into()))?;
        if let Err(error) = self.verify_answer(&request, index, &records).await {
            if let MemberError::Unverified(reason) = &error {
                metrics::counter!("tally_consortium_member_unverified_answers_total").increment(1);
                tracing::error!(
                    %reason,
                    index,
                    "the consortium log's answer did not verify: treated as unavailable"
                );
            }
            return Err(error);
        }
        Ok(records)
    }

    /// What the log knows about `raw` of `kind`, waiting at most the lookup timeout.
    pub async fn lookup(self: &Arc<Self>, kind: IdentifierKind, raw: &str) -> LookupOutcome {
        match normalise(kind, raw, None) {
            Ok(identifier) => self.lookup_normalised(identifier).await,
            Err(_) => LookupOutcome::InvalidIdentifier,
        }
    }

    /// What the log knows about a normalised identifier, waiting at most the lookup timeout.
    pub async fn lookup_normalised(
        self: &Arc<Self>,
        identifier: NormalisedIdentifier,
    ) -> LookupOutcome {
        let key = (identifier.kind(), identifier.expose().to_string());
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

    /// The consortium's list hits for the identifiers of an event (its device, and the card
    /// number, delivery address and receiving phone it came with), looked up together
    /// under one timeout (each counted against the quota), and what each lookup learnt, as
    /// recorded on the decision. Records this member published are shown but are no hit:
    /// the rules act on what other members reported.
    pub async fn hits(
        self: &Arc<Self>,
        device: Option<&str>,
        identifiers: &EventIdentifiers,
    ) -> (Vec<ListHit>, Value) {
        let device = device.map(|device| normalise(IdentifierKind::Device, device, None));
        let look = |identifier: Option<NormalisedIdentifier>| async move {
            match identifier {
                Some(identifier) => Some(self.lookup_normalised(identifier).await),
                None => None,
            }
        };
        let device_outcome = async {
            match device {
                Some(Ok(identifier)) => Some(self.lookup_normalised(identifier).await),
                Some(Err(_)) => Some(LookupOutcome::InvalidIdentifier),
                None => None,
            }
        };
        let (device, card, address, phone) = tokio::join!(
            device_outcome,
            look(identifiers.card.clone()),
            look(identifiers.address.clone()),
            look(identifiers.phone.clone()),
        );
        let mut hits = Vec::new();
        let mut lookups = Vec::new();
        // A receiving phone is part of the delivery: the engine knows no phone field.
        for (name, field, outcome) in [
            ("device", EntityField::Device, device),
            ("card", EntityField::Card, card),
            ("address", EntityField::Address, address),
            ("phone", EntityField::Address, phone),
        ] {
            let Some(outcome) = outcome else { continue };
            let mut entry = json!({"field": name, "outcome": outcome.name()});
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
                            field,
                            reason: format!(
                                "consortium record {} by {} on the {name}: {}, severity {}",
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
            log_key: SignerKey::from_seed("log", KeyType::Ed25519, [9; 32])
                .unwrap()
                .verifier(),
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
        let (hits, lookups) = client
            .hits(Some("device-1"), &EventIdentifiers::default())
            .await;
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

    #[test]
    fn only_identifiers_another_member_can_match_are_taken() {
        let taken = EventIdentifiers::from_raw(
            Some("4111 1111 1111 1111"),
            Some("  88 Jianguo ROAD "),
            Some("138 0013 8000"),
        );
        assert_eq!(taken.card.as_ref().unwrap().expose(), "4111111111111111");
        assert_eq!(taken.address.as_ref().unwrap().expose(), "88 jianguo road");
        assert_eq!(taken.phone.as_ref().unwrap().expose(), "+8613800138000");
        // Personal data never reaches a log line.
        let shown = format!("{taken:?}");
        assert!(
            !shown.contains("4111") && !shown.contains("jianguo"),
            "{shown}"
        );
        // A lender's card token, a number failing its check digit, a blank address and a
        // phone that is none are not identifiers another member could match.
        let none = EventIdentifiers::from_raw(Some("tok_abc"), Some("  "), Some("12"));
        assert!(none.is_empty(), "{none:?}");
        let bad_digit = EventIdentifiers::from_raw(Some("4111 1111 1111 1112"), None, None);
        assert!(bad_digit.is_empty());
    }

    #[test]
    fn where_an_event_enters_a_malformed_card_number_or_phone_is_refused() {
        let taken = EventIdentifiers::parse(
            Some("4111-1111-1111-1111"),
            Some("88 Jianguo Road"),
            Some("+86 138 0013 8000"),
        )
        .unwrap();
        assert_eq!(taken.card.as_ref().unwrap().expose(), "4111111111111111");
        assert_eq!(taken.phone.as_ref().unwrap().expose(), "+8613800138000");
        // Written as a card number and not one: a wrong check digit, too few digits.
        for card in ["4111 1111 1111 1112", "4111", "  1234-5678 "] {
            let refused = EventIdentifiers::parse(Some(card), None, None).unwrap_err();
            assert_eq!(refused.code(), "invalid_card_number", "{card}");
        }
        for phone in ["12", "phone", "+86 23800138000", ""] {
            let refused = EventIdentifiers::parse(None, None, Some(phone)).unwrap_err();
            assert_eq!(refused.code(), "invalid_phone", "{phone}");
            // The refusal names no personal value.
            assert!(!refused.to_string().contains("23800138000"), "{refused}");
        }
        // A lender's token is no card number: taken as it is, not looked up. An address too
        // short for the consortium is left to the engine's fingerprint.
        let token = EventIdentifiers::parse(Some("tok_4111"), Some("B2"), None).unwrap();
        assert!(token.is_empty(), "{token:?}");
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
