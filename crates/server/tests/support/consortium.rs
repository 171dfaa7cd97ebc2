//! The consortium log of the tests: three founding banks (`bank-a`, `bank-b`, `bank-d`), a
//! quorum of two of three, five queries a day, on a fixed clock; their signed requests, each
//! member numbering its own.

use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tally_consortium::{
    normalise, Action, BlindingKey, Genesis, IdentifierKind, IdentifierOpening, KeyType, MemberKey,
    Quorum, RiskType, SignedRequest, SignerKey,
};
use tally_core::{Clock, ManualClock};
use tally_server::consortium_app;
use tally_server::routes::consortium::ConsortiumAppState;
use tally_service::consortium::{ConsortiumConfig, ConsortiumLog};
use tally_store::Database;

/// The time of every request and of the log's clock, in seconds since the epoch.
pub const TIME: u64 = 1_800_000_000;
pub const CONSORTIUM: &str = "test";

pub fn signer(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, KeyType::Ed25519, [seed; 32]).unwrap()
}

pub fn operator_key() -> SignerKey {
    signer("log.tally.example/test", 99)
}

pub fn config() -> ConsortiumConfig {
    config_with_quota(5)
}

/// The test log's configuration with `queries_per_day` queries a member per day.
pub fn config_with_quota(queries_per_day: u32) -> ConsortiumConfig {
    let founders = [
        signer("bank-a", 1),
        signer("bank-b", 2),
        signer("bank-d", 4),
    ]
    .iter()
    .map(|member| MemberKey {
        name: member.name().to_owned(),
        public_key: member.verifier().public_key(),
    })
    .collect();
    ConsortiumConfig::new(
        operator_key(),
        BlindingKey::new(1, [7; 32]),
        Some(Genesis {
            consortium: CONSORTIUM.into(),
            founders,
            // Two of three founders.
            quorum: Quorum {
                numerator: 2,
                denominator: 3,
            },
            query_quota_per_day: queries_per_day,
            proposal_lifetime_seconds: 86_400,
            request_skew_seconds_max: 300,
        }),
    )
}

/// Starts the log over `database` (replaying what it holds).
pub async fn start(database: &Database) -> ConsortiumLog {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        jiff::Timestamp::from_second(TIME as i64).unwrap(),
    ));
    ConsortiumLog::start(database, clock, config())
        .await
        .unwrap()
        .0
}

/// The log's own router over `database`.
pub async fn router(database: &Database) -> Router {
    consortium_app(ConsortiumAppState::new(start(database).await))
}

pub fn opening(phone: &str) -> IdentifierOpening {
    IdentifierOpening::new(
        normalise(IdentifierKind::Phone, phone, None).unwrap(),
        [5; 16],
    )
}

/// The identifier a member sends in clear with a request about `phone`.
pub fn identifier_json(phone: &str) -> Value {
    json!({"kind": "phone", "value": phone, "salt": hex::encode([5u8; 16])})
}

pub fn encode(request: &SignedRequest) -> String {
    BASE64.encode(request.to_bytes())
}

/// The body a member posts: the signed request, and the identifier in clear (if any).
pub fn body(request: &SignedRequest, phone: Option<&str>) -> Value {
    let mut body = json!({"request": encode(request)});
    if let Some(phone) = phone {
        body["identifier"] = identifier_json(phone);
    }
    body
}

pub fn publish_action(phone: &str) -> Action {
    Action::PublishRecord {
        identifier: opening(phone).commitment(),
        risk_type: RiskType::StolenAccount,
        severity: 4,
        expires_at: TIME + 86_400,
        evidence_reference: "case 17".into(),
    }
}

pub fn query_action(phone: &str) -> Action {
    Action::Query {
        identifier: opening(phone).commitment(),
    }
}

/// The last sequence number each member signed.
#[derive(Default)]
pub struct Sequences(Mutex<BTreeMap<String, u64>>);

impl Sequences {
    /// `action` signed by `member` with its next sequence number.
    pub fn sign(&self, member: &SignerKey, action: Action) -> SignedRequest {
        let mut sequences = self.0.lock().unwrap();
        let sequence = sequences.entry(member.name().to_owned()).or_insert(0);
        *sequence += 1;
        SignedRequest::sign(CONSORTIUM, member, *sequence, TIME, action)
    }

    /// Numbers `member`'s requests from 1 again.
    pub fn start_again(&self, member: &str) {
        self.0.lock().unwrap().insert(member.into(), 0);
    }
}
