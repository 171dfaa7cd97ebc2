//! The consortium log: the demo lender and a peer lender found a log (stored in the demo
//! database), the demo lender publishes a record for each fraudster it confirmed (the
//! phone number blinded, never in clear), and the peer's query about one of them finds it.
//! Every request is signed and logged; each batch ends in a signed checkpoint.

use super::figures::GroundTruth;
use super::fraud::Fraud;
use super::Services;
use jiff::civil::Date;
use std::sync::Arc;
use tally_consortium::{
    normalise, Action, BlindingKey, Genesis, IdentifierKind, IdentifierOpening, KeyType, MemberKey,
    Quorum, RiskType, SignedRequest, SignerKey,
};
use tally_core::{Clock, SplitMix64};
use tally_service::consortium::{Accepted, ConsortiumConfig, ConsortiumLog};

const CONSORTIUM: &str = "tally-demo";

/// What the log holds at the end.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    pub published: u64,
    /// Records the peer's query found about the first fraudster.
    pub found_by_peer: u64,
    /// Entries in the log after the last signed checkpoint.
    pub log_size: u64,
    /// The operator's verifier key (`name+id+key`), which checks the log's checkpoints.
    pub log_key: String,
    /// The demo lender's name in the log.
    pub member: String,
}

fn seed_bytes(random: &mut SplitMix64) -> [u8; 32] {
    let mut bytes = [0_u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&random.next_u64().to_le_bytes());
    }
    bytes
}

pub async fn run(
    services: &Services,
    fraud: &Fraud,
    last_day: Date,
    truth: &mut GroundTruth,
) -> anyhow::Result<Shared> {
    let mut random = SplitMix64::new(services.seed ^ 0xC0_5047);
    let lender = SignerKey::from_seed(
        "tally-demo-lender",
        KeyType::Ed25519,
        seed_bytes(&mut random),
    )?;
    let peer = SignerKey::from_seed("peer-lender", KeyType::Ed25519, seed_bytes(&mut random))?;
    let founders = [&lender, &peer]
        .iter()
        .map(|key| MemberKey {
            name: key.name().to_owned(),
            public_key: key.verifier().public_key(),
        })
        .collect();
    let operator = SignerKey::from_seed(
        "log.demo.tally.example",
        KeyType::Ed25519,
        seed_bytes(&mut random),
    )?;
    let mut shared = Shared {
        log_key: operator.verifier().to_string(),
        member: lender.name().to_owned(),
        ..Shared::default()
    };
    let config = ConsortiumConfig::new(
        operator,
        BlindingKey::new(1, seed_bytes(&mut random)),
        Some(Genesis {
            consortium: CONSORTIUM.into(),
            founders,
            quorum: Quorum {
                numerator: 1,
                denominator: 2,
            },
            query_quota_per_day: 1_000,
            proposal_lifetime_seconds: 86_400,
            request_skew_seconds_max: 300,
        }),
    );
    services.set_time(last_day, 23)?;
    let clock: Arc<dyn Clock> = services.clock.clone();
    let (log, thread) = ConsortiumLog::start(&services.state.database, clock, config).await?;
    let now = u64::try_from(services.clock.now().as_second())?;
    let opening = |phone: &str, random: &mut SplitMix64| -> anyhow::Result<IdentifierOpening> {
        let mut salt = [0_u8; 16];
        salt.copy_from_slice(&seed_bytes(random)[..16]);
        Ok(IdentifierOpening::new(
            normalise(IdentifierKind::Phone, phone, None)?,
            salt,
        ))
    };
    let mut sequence = 0;
    for confirmed in &fraud.confirmed {
        sequence += 1;
        let opened = opening(&confirmed.phone, &mut random)?;
        let action = Action::PublishRecord {
            identifier: opened.commitment(),
            risk_type: RiskType::Fraud,
            severity: 3,
            expires_at: now + 365 * 86_400,
            evidence_reference: confirmed.evidence.clone(),
        };
        let request = SignedRequest::sign(CONSORTIUM, &lender, sequence, now, action);
        if let Accepted::Logged { .. } = log.submit(request, Some(opened)).await? {
            shared.published += 1;
        }
        truth.consortium_published += 1;
    }
    if let Some(first) = fraud.confirmed.first() {
        let opened = opening(&first.phone, &mut random)?;
        let query = SignedRequest::sign(
            CONSORTIUM,
            &peer,
            1,
            now,
            Action::Query {
                identifier: opened.commitment(),
            },
        );
        if let Accepted::Answered(answer) = log.submit(query, Some(opened)).await? {
            shared.found_by_peer = answer.records.len() as u64;
        }
        truth.consortium_found = 1;
    }
    shared.log_size = log.read(|operator| operator.log().size()).await?;
    drop(log);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    Ok(shared)
}
