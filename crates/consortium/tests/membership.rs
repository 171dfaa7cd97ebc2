//! Membership rules, signed requests, risk records and queries, replayed from log entries.

use tally_consortium::{
    leaf_hash, normalise, verify_inclusion, Action, BlindedIdentifier, ConsortiumState, Effect,
    Entry, EntryBody, Error, Genesis, IdentifierCommitment, IdentifierKind, IdentifierOpening,
    KeyType, MemberKey, MemberStatus, MemoryLogStore, MerkleLog, Quorum, Refusal, RiskType,
    SignedRequest, SignerKey,
};

const CONSORTIUM: &str = "payment-security-alliance";
const DAY: u64 = 86_400;
const START: u64 = 1_800_000_000;

struct World {
    state: ConsortiumState,
    log: MerkleLog<MemoryLogStore>,
    entries: Vec<Entry>,
    keys: Vec<SignerKey>,
    sequences: std::collections::HashMap<String, u64>,
    now: u64,
}

fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, KeyType::Ed25519, [seed; 32]).expect("key")
}

impl World {
    fn new(quota: u32) -> Self {
        let keys = vec![
            key("bank-a", 1),
            key("bank-b", 2),
            key("pay-c", 3),
            key("police-d", 4),
        ];
        let founders = keys[..3]
            .iter()
            .map(|key| MemberKey {
                name: key.name().to_owned(),
                public_key: key.verifier().public_key(),
            })
            .collect();
        let mut world = World {
            state: ConsortiumState::new(),
            log: MerkleLog::open(MemoryLogStore::new()).expect("log"),
            entries: Vec::new(),
            keys,
            sequences: Default::default(),
            now: START,
        };
        let genesis = Entry {
            time: START,
            body: EntryBody::Genesis(Genesis {
                consortium: CONSORTIUM.into(),
                founders,
                quorum: Quorum {
                    numerator: 2,
                    denominator: 3,
                },
                query_quota_per_day: quota,
                proposal_lifetime_seconds: 7 * DAY,
                request_skew_seconds_max: 300,
            }),
        };
        world.append(genesis).expect("genesis");
        world
    }

    fn key(&self, name: &str) -> &SignerKey {
        self.keys
            .iter()
            .find(|key| key.name() == name)
            .expect("known key")
    }

    fn request(&mut self, member: &str, action: Action) -> SignedRequest {
        let sequence = self.sequences.entry(member.to_owned()).or_insert(0);
        *sequence += 1;
        let sequence = *sequence;
        SignedRequest::sign(CONSORTIUM, self.key(member), sequence, self.now, action)
    }

    /// What the operator does: check and apply, then append to the Merkle log.
    fn append(&mut self, entry: Entry) -> Result<Effect, Error> {
        let effect = self.state.apply(&entry)?;
        self.log
            .append_batch(&[leaf_hash(&entry.encode())])
            .expect("append");
        self.entries.push(entry);
        Ok(effect)
    }

    fn submit(&mut self, member: &str, action: Action) -> Result<Effect, Error> {
        let request = self.request(member, action);
        self.submit_signed(request)
    }

    fn submit_signed(&mut self, request: SignedRequest) -> Result<Effect, Error> {
        let body = match &request.action {
            Action::PublishRecord { identifier, .. } => EntryBody::Publication {
                identifier: stand_in(*identifier),
                request,
            },
            _ => EntryBody::Request(request),
        };
        let entry = Entry {
            time: self.now,
            body,
        };
        self.append(entry)
    }

    fn query(&mut self, member: &str, identifier: IdentifierCommitment) -> Result<u32, Error> {
        let request = self.request(member, Action::Query { identifier });
        let entry = self
            .state
            .query_entry(request, stand_in(identifier), self.now)?;
        match self.append(entry)? {
            Effect::Queried { result_count } => Ok(result_count),
            other => panic!("unexpected effect {other:?}"),
        }
    }

    fn admission(&mut self, proposer: &str, candidate: &str) -> Result<Effect, Error> {
        let candidate = MemberKey {
            name: candidate.to_owned(),
            public_key: self.key(candidate).verifier().public_key(),
        };
        self.submit(proposer, Action::ProposeAdmission { candidate })
    }
}

fn refusal(result: Result<impl std::fmt::Debug, Error>) -> Option<Refusal> {
    result.err().and_then(|error| error.refusal())
}

/// The member's commitment to a phone number (a fixed salt per test, so the same
/// number gives the same commitment).
fn phone(raw: &str) -> IdentifierCommitment {
    let identifier = normalise(IdentifierKind::Phone, raw, Some("86")).expect("phone");
    IdentifierOpening::new(identifier, [7; 16]).commitment()
}

/// The rules never see openings or the blinding key (the operator blinds; see the
/// operator tests): here the blinded value stands in as the commitment's digest.
fn stand_in(commitment: IdentifierCommitment) -> BlindedIdentifier {
    BlindedIdentifier {
        kind: commitment.kind,
        key_epoch: 1,
        value: commitment.digest,
    }
}

fn publish(identifier: IdentifierCommitment, expires_at: u64) -> Action {
    Action::PublishRecord {
        identifier,
        risk_type: RiskType::StolenAccount,
        severity: 4,
        expires_at,
        evidence_reference: "case 2026-117".into(),
    }
}

#[test]
fn admission_needs_the_quorum() -> Result<(), Error> {
    let mut world = World::new(10);
    // 3 active members, quorum 2/3: two approvals are needed, the proposer's counts.
    let Effect::ProposalOpened {
        proposal,
        carried_out,
    } = world.admission("bank-a", "police-d")?
    else {
        panic!("not a proposal")
    };
    assert!(!carried_out, "one approval is below the quorum");
    assert_eq!(
        refusal(world.submit("police-d", publish(phone("13800138000"), START + DAY))),
        Some(Refusal::NotAMember)
    );
    // The proposer cannot approve twice.
    assert_eq!(
        refusal(world.submit("bank-a", Action::Approve { proposal })),
        Some(Refusal::AlreadyApproved)
    );
    assert_eq!(
        world.submit("bank-b", Action::Approve { proposal })?,
        Effect::Approved {
            proposal,
            carried_out: true
        }
    );
    assert_eq!(
        world.state.members()["police-d"].status,
        MemberStatus::Active
    );
    world.submit("police-d", publish(phone("13800138000"), START + DAY))?;
    // A closed proposal takes no more approvals.
    assert_eq!(
        refusal(world.submit("pay-c", Action::Approve { proposal })),
        Some(Refusal::UnknownReference)
    );
    Ok(())
}

#[test]
fn a_second_admission_proposal_for_an_admitted_member_is_closed() -> Result<(), Error> {
    let mut world = World::new(10);
    let Effect::ProposalOpened {
        proposal: first, ..
    } = world.admission("bank-a", "police-d")?
    else {
        panic!("not a proposal")
    };
    let Effect::ProposalOpened {
        proposal: second, ..
    } = world.admission("bank-b", "police-d")?
    else {
        panic!("not a proposal")
    };
    world.submit("pay-c", Action::Approve { proposal: first })?;
    world.submit("police-d", publish(phone("13800138000"), START + DAY))?;
    let last_sequence = world.state.members()["police-d"].last_sequence;
    assert_eq!(
        refusal(world.submit("pay-c", Action::Approve { proposal: second })),
        Some(Refusal::AlreadyMember)
    );
    assert_eq!(
        world.state.members()["police-d"].last_sequence,
        last_sequence
    );
    Ok(())
}

#[test]
fn expired_proposals_take_no_approvals() -> Result<(), Error> {
    let mut world = World::new(10);
    let Effect::ProposalOpened { proposal, .. } = world.admission("bank-a", "police-d")? else {
        panic!("not a proposal")
    };
    world.now += 8 * DAY;
    assert_eq!(
        refusal(world.submit("bank-b", Action::Approve { proposal })),
        Some(Refusal::UnknownReference)
    );
    Ok(())
}

#[test]
fn unsigned_wrongly_signed_and_replayed_requests_are_refused() -> Result<(), Error> {
    let mut world = World::new(10);
    let identifier = phone("13800138000");
    // Unsigned: an all-zero signature.
    let mut unsigned = world.request("bank-a", publish(identifier, START + DAY));
    unsigned.signature = [0; 64];
    assert_eq!(
        refusal(world.submit_signed(unsigned)),
        Some(Refusal::BadSignature)
    );
    // Signed by another member's key under bank-a's name.
    let forged = SignedRequest::sign(
        CONSORTIUM,
        &key("bank-a", 2),
        50,
        world.now,
        publish(identifier, START + DAY),
    );
    assert_eq!(
        refusal(world.submit_signed(forged)),
        Some(Refusal::BadSignature)
    );
    // Signed for another consortium.
    let elsewhere = SignedRequest::sign(
        "another-alliance",
        world.key("bank-a"),
        51,
        world.now,
        publish(identifier, START + DAY),
    );
    assert_eq!(
        refusal(world.submit_signed(elsewhere)),
        Some(Refusal::BadSignature)
    );
    // From a key that is not a member.
    let outsider = SignedRequest::sign(
        CONSORTIUM,
        &key("mallory", 9),
        1,
        world.now,
        publish(identifier, START + DAY),
    );
    assert_eq!(
        refusal(world.submit_signed(outsider)),
        Some(Refusal::NotAMember)
    );
    // Replays: the same request twice, then an older sequence number.
    let first = world.request("bank-a", publish(identifier, START + DAY));
    let second = world.request("bank-a", publish(identifier, START + 2 * DAY));
    world.submit_signed(second.clone())?;
    assert_eq!(refusal(world.submit_signed(second)), Some(Refusal::Replay));
    assert_eq!(refusal(world.submit_signed(first)), Some(Refusal::Replay));
    // A stale request (beyond the allowed clock skew) is refused too.
    let stale = world.request("bank-a", publish(identifier, START + 2 * DAY));
    world.now += 3_600;
    assert_eq!(
        refusal(world.submit_signed(stale)),
        Some(Refusal::InvalidField)
    );
    // Refused requests left nothing behind: the state replays from the log alone.
    let replayed = ConsortiumState::replay(&world.entries)?;
    assert_eq!(replayed.next_index(), world.state.next_index());
    Ok(())
}

#[test]
fn a_suspended_member_can_neither_publish_nor_query() -> Result<(), Error> {
    let mut world = World::new(10);
    let Effect::ProposalOpened { proposal, .. } = world.admission("bank-a", "police-d")? else {
        panic!("not a proposal")
    };
    world.submit("pay-c", Action::Approve { proposal })?;
    let identifier = phone("+86 139 0000 0000");
    world.submit("police-d", publish(identifier, START + DAY))?;
    // Suspension: bank-b proposes, police-d may not vote on it, bank-a's approval carries it.
    let Effect::ProposalOpened {
        proposal,
        carried_out: false,
    } = world.submit(
        "bank-b",
        Action::ProposeSuspension {
            member: "police-d".into(),
            reason: "bulk querying".into(),
        },
    )?
    else {
        panic!("not an open proposal")
    };
    assert_eq!(
        refusal(world.submit("police-d", Action::Approve { proposal })),
        Some(Refusal::InvalidField)
    );
    world.submit("bank-a", Action::Approve { proposal })?;
    assert_eq!(
        world.state.members()["police-d"].status,
        MemberStatus::Suspended
    );
    assert_eq!(
        refusal(world.submit("police-d", publish(identifier, START + DAY))),
        Some(Refusal::Suspended)
    );
    assert_eq!(
        refusal(world.query("police-d", identifier)),
        Some(Refusal::Suspended)
    );
    let candidate = MemberKey {
        name: "mallory".into(),
        public_key: key("mallory", 9).verifier().public_key(),
    };
    assert_eq!(
        refusal(world.submit("police-d", Action::ProposeAdmission { candidate })),
        Some(Refusal::Suspended)
    );
    // Its records stay in the log and stay live until they expire or are retracted.
    assert_eq!(world.query("bank-a", identifier)?, 1);
    Ok(())
}

#[test]
fn queries_list_live_records_and_count_against_the_quota() -> Result<(), Error> {
    let mut world = World::new(3);
    let identifier = phone("13800138000");
    let other = phone("13800138001");
    let Effect::Published { record } = world.submit("bank-a", publish(identifier, START + DAY))?
    else {
        panic!("not a publication")
    };
    world.submit("bank-b", publish(identifier, START + 2 * DAY))?;
    world.submit("bank-b", publish(other, START + DAY))?;
    assert_eq!(world.query("pay-c", identifier)?, 2);
    let live = world.state.live_records(&stand_in(identifier), world.now);
    assert_eq!(live[0].publisher, "bank-a");
    assert_eq!(live[0].risk_type, RiskType::StolenAccount);
    // Only the publisher may retract; retraction is a new entry.
    assert_eq!(
        refusal(world.submit(
            "bank-b",
            Action::RetractRecord {
                record,
                reason: "not mine".into()
            }
        )),
        Some(Refusal::NotThePublisher)
    );
    world.submit(
        "bank-a",
        Action::RetractRecord {
            record,
            reason: "customer cleared".into(),
        },
    )?;
    assert_eq!(world.query("pay-c", identifier)?, 1);
    assert!(world
        .state
        .record(record)
        .is_some_and(|record| record.retracted_at.is_some()));
    // Expired records are not live.
    world.now = START + DAY + 10;
    assert_eq!(world.query("pay-c", other)?, 0);
    // Quota: 3 a day. pay-c made 2 yesterday and 1 today; a fourth today exceeds it.
    assert_eq!(world.query("pay-c", identifier)?, 1);
    assert_eq!(world.query("pay-c", identifier)?, 1);
    assert_eq!(
        refusal(world.query("pay-c", identifier)),
        Some(Refusal::QuotaExceeded)
    );
    world.now = START + 2 * DAY + 10;
    assert_eq!(world.query("pay-c", identifier)?, 0);
    let counts = world.state.query_count("pay-c");
    assert_eq!((counts.total, counts.in_day), (6, 1));
    Ok(())
}

#[test]
fn members_vote_a_quota_for_one_member() -> Result<(), Error> {
    let mut world = World::new(1);
    let identifier = phone("13800138000");
    assert_eq!(world.query("pay-c", identifier)?, 0);
    assert_eq!(
        refusal(world.query("pay-c", identifier)),
        Some(Refusal::QuotaExceeded)
    );
    let Effect::ProposalOpened {
        proposal,
        carried_out: false,
    } = world.submit(
        "bank-a",
        Action::ProposeQuota {
            member: "pay-c".into(),
            queries_per_day: 3,
        },
    )?
    else {
        panic!("not an open proposal")
    };
    world.submit("bank-b", Action::Approve { proposal })?;
    assert_eq!(world.state.members()["pay-c"].query_quota_per_day, Some(3));
    assert_eq!(world.query("pay-c", identifier)?, 0);
    assert_eq!(world.query("pay-c", identifier)?, 0);
    assert_eq!(
        refusal(world.query("pay-c", identifier)),
        Some(Refusal::QuotaExceeded)
    );
    // The others keep the consortium's quota of one.
    assert_eq!(world.query("bank-b", identifier)?, 0);
    assert_eq!(
        refusal(world.query("bank-b", identifier)),
        Some(Refusal::QuotaExceeded)
    );
    Ok(())
}

#[test]
fn replaying_the_log_gives_the_same_state_and_every_query_is_provable() -> Result<(), Error> {
    let mut world = World::new(10);
    let identifier = phone("13800138000");
    world.submit("bank-a", publish(identifier, START + DAY))?;
    world.query("bank-b", identifier)?;
    let query_index = world.entries.len() as u64 - 1;

    let bytes: Vec<Vec<u8>> = world.entries.iter().map(Entry::encode).collect();
    let decoded = bytes
        .iter()
        .map(|bytes| Entry::decode(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let replayed = ConsortiumState::replay(&decoded)?;
    assert_eq!(replayed.query_counts(), world.state.query_counts());
    assert_eq!(replayed.members(), world.state.members());

    // The query record is in the log: its inclusion proof verifies against the root.
    let size = world.log.size();
    let proof = world.log.inclusion_proof(query_index, size)?;
    let leaf = leaf_hash(&bytes[query_index as usize]);
    verify_inclusion(query_index, size, &leaf, &proof, &world.log.root())?;

    // A query record that lies about its result count is refused on replay.
    let mut lying = decoded.clone();
    if let EntryBody::QueryRecord { result_count, .. } = &mut lying[query_index as usize].body {
        *result_count = 0;
    }
    assert_eq!(
        refusal(ConsortiumState::replay(&lying)),
        Some(Refusal::InvalidField)
    );
    // And a second genesis is refused.
    let mut twice = decoded.clone();
    twice.push(decoded[0].clone());
    assert_eq!(
        refusal(ConsortiumState::replay(&twice)),
        Some(Refusal::Genesis)
    );
    Ok(())
}
