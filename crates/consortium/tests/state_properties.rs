//! Property tests of the rules: random request sequences; a refused entry changes nothing, and replaying the accepted entries or decoding the state's snapshot bytes rebuilds the same state.

use proptest::prelude::*;
use tally_consortium::{
    Action, BlindedIdentifier, ConsortiumState, Entry, EntryBody, Genesis, IdentifierCommitment,
    IdentifierKind, KeyType, MemberKey, Quorum, RiskType, SignedRequest, SignerKey,
};

const CONSORTIUM: &str = "alliance";
const START: u64 = 1_800_000_000;
const NAMES: [&str; 5] = ["bank-a", "bank-b", "pay-c", "police-d", "bank-e"];

fn keys() -> Vec<SignerKey> {
    NAMES
        .iter()
        .enumerate()
        .map(|(seed, name)| {
            SignerKey::from_seed(name, KeyType::Ed25519, [seed as u8 + 1; 32]).expect("key")
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Step {
    Admit {
        by: usize,
        candidate: usize,
    },
    Suspend {
        by: usize,
        target: usize,
    },
    Quota {
        by: usize,
        target: usize,
        queries_per_day: u32,
    },
    Approve {
        by: usize,
        back: usize,
    },
    Publish {
        by: usize,
        identifier: u8,
        severity: u8,
        lifetime: u64,
    },
    Retract {
        by: usize,
        back: usize,
    },
    Query {
        by: usize,
        identifier: u8,
    },
    Replay {
        back: usize,
    },
    Wait {
        seconds: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..5usize, 0..5usize).prop_map(|(by, candidate)| Step::Admit { by, candidate }),
        (0..5usize, 0..5usize).prop_map(|(by, target)| Step::Suspend { by, target }),
        (0..5usize, 0..5usize, 0..6u32).prop_map(|(by, target, queries_per_day)| Step::Quota {
            by,
            target,
            queries_per_day
        }),
        (0..5usize, 0..8usize).prop_map(|(by, back)| Step::Approve { by, back }),
        (0..5usize, 0..4u8, 0..7u8, 1..200_000u64).prop_map(
            |(by, identifier, severity, lifetime)| {
                Step::Publish {
                    by,
                    identifier,
                    severity,
                    lifetime,
                }
            }
        ),
        (0..5usize, 0..8usize).prop_map(|(by, back)| Step::Retract { by, back }),
        (0..5usize, 0..4u8).prop_map(|(by, identifier)| Step::Query { by, identifier }),
        (0..8usize).prop_map(|back| Step::Replay { back }),
        (0..100_000u64).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

/// A member's commitment to identifier number `value`, and the blinded identifier the
/// operator would log with it (a stand-in: the rules never see the blinding).
fn commitment(value: u8) -> IdentifierCommitment {
    IdentifierCommitment {
        kind: IdentifierKind::Phone,
        digest: [value; 32],
    }
}

fn blinded(value: u8) -> BlindedIdentifier {
    BlindedIdentifier {
        kind: IdentifierKind::Phone,
        key_epoch: 1,
        value: [value; 32],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn refused_entries_change_nothing_and_replay_rebuilds_the_state(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let keys = keys();
        let founders = keys[..3]
            .iter()
            .map(|key| MemberKey { name: key.name().to_owned(), public_key: key.verifier().public_key() })
            .collect();
        let genesis = Entry {
            time: START,
            body: EntryBody::Genesis(Genesis {
                consortium: CONSORTIUM.into(),
                founders,
                quorum: Quorum { numerator: 2, denominator: 3 },
                query_quota_per_day: 4,
                proposal_lifetime_seconds: 86_400,
                request_skew_seconds_max: 300,
            }),
        };
        let mut state = ConsortiumState::new();
        state.apply(&genesis).expect("genesis");
        let mut accepted = vec![genesis];
        let mut sent: Vec<EntryBody> = Vec::new();
        let mut sequences = [0u64; 5];
        let mut now = START;
        let mut published: Vec<u64> = Vec::new();
        for step in steps {
            let mut sign = |by: usize, action: Action, now: u64| {
                sequences[by] += 1;
                SignedRequest::sign(CONSORTIUM, &keys[by], sequences[by], now, action)
            };
            let recent = |back: usize| accepted.len().saturating_sub(1 + back) as u64;
            let body = match step {
                Step::Admit { by, candidate } => EntryBody::Request(sign(by, Action::ProposeAdmission {
                    candidate: MemberKey {
                        name: NAMES[candidate].into(),
                        public_key: keys[candidate].verifier().public_key(),
                    },
                }, now)),
                Step::Suspend { by, target } => EntryBody::Request(sign(by, Action::ProposeSuspension {
                    member: NAMES[target].into(),
                    reason: "test".into(),
                }, now)),
                Step::Quota { by, target, queries_per_day } => EntryBody::Request(sign(
                    by,
                    Action::ProposeQuota { member: NAMES[target].into(), queries_per_day },
                    now,
                )),
                Step::Approve { by, back } => {
                    // Mostly an existing proposal, sometimes any recent index.
                    let proposals: Vec<u64> = state.proposals().keys().copied().collect();
                    let proposal = match proposals.len() {
                        0 => recent(back),
                        count => proposals[back % count],
                    };
                    EntryBody::Request(sign(by, Action::Approve { proposal }, now))
                }
                Step::Publish { by, identifier: value, severity, lifetime } => EntryBody::Publication {
                    request: sign(by, Action::PublishRecord {
                        identifier: commitment(value),
                        risk_type: RiskType::Fraud,
                        severity,
                        expires_at: now + lifetime,
                        evidence_reference: String::new(),
                    }, now),
                    identifier: blinded(value),
                },
                Step::Retract { by, back } => {
                    let record = match published.len() {
                        0 => recent(back),
                        count => published[back % count],
                    };
                    EntryBody::Request(sign(by, Action::RetractRecord { record, reason: String::new() }, now))
                }
                Step::Query { by, identifier: value } => {
                    let request = sign(by, Action::Query { identifier: commitment(value) }, now);
                    match state.query_entry(request, blinded(value), now) {
                        Ok(entry) => entry.body,
                        Err(_) => continue,
                    }
                }
                Step::Replay { back } => match sent.len().checked_sub(1 + back) {
                    Some(position) => sent[position].clone(),
                    None => continue,
                },
                Step::Wait { seconds } => {
                    now += seconds;
                    continue;
                }
            };
            if body.request().is_some() {
                sent.push(body.clone());
            }
            let entry = Entry { time: now, body };
            let before = state.clone();
            match state.apply(&entry) {
                Ok(effect) => {
                    if let tally_consortium::Effect::Published { record } = effect {
                        published.push(record);
                    }
                    accepted.push(entry);
                }
                Err(error) => {
                    prop_assert!(error.refusal().is_some(), "not a refusal: {error}");
                    prop_assert_eq!(&state, &before, "a refused entry changed the state");
                }
            }
        }
        let replayed = ConsortiumState::replay(&accepted).expect("replay");
        prop_assert_eq!(&replayed, &state);
        // A snapshot's bytes give the same state back.
        let decoded = ConsortiumState::decode(&state.encode()).expect("decode");
        prop_assert_eq!(decoded, state);
    }
}
