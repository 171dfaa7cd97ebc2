//! Provable query counts: the member map every checkpoint commits, count proofs, and a mirror's check of the map against the replayed entries.

use tally_consortium::{
    check_member_map, normalise, open_checkpoint, replay_batch, Action, BlindingKey, Checkpoint,
    ConsortiumState, CountProof, Entry, Error, Genesis, IdentifierKind, IdentifierOpening, KeyType,
    MapCommitment, MemberKey, MemberMap, MemberStatus, MemoryLogStore, Operator, Quorum,
    SignedRequest, SignerKey,
};

const CONSORTIUM: &str = "alliance";
const TIME: u64 = 1_800_000_000;

fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, KeyType::Ed25519, [seed; 32]).expect("key")
}

struct Consortium {
    operator: Operator<MemoryLogStore>,
    operator_key: SignerKey,
    members: Vec<SignerKey>,
    sequences: Vec<u64>,
}

/// Five founders; member `i` makes `i` queries.
fn consortium() -> Result<Consortium, Error> {
    let operator_key = key("alliance.example/log", 9);
    let members: Vec<SignerKey> = (0..5u8)
        .map(|i| key(&format!("member-{i}"), i + 1))
        .collect();
    let genesis = Genesis {
        consortium: CONSORTIUM.into(),
        founders: members
            .iter()
            .map(|member| MemberKey {
                name: member.name().to_owned(),
                public_key: member.verifier().public_key(),
            })
            .collect(),
        quorum: Quorum {
            numerator: 1,
            denominator: 2,
        },
        query_quota_per_day: 100,
        proposal_lifetime_seconds: 86_400,
        request_skew_seconds_max: 300,
    };
    let operator = Operator::found(
        MemoryLogStore::new(),
        operator_key.clone(),
        BlindingKey::new(1, [8; 32]),
        genesis,
        TIME,
    )?;
    let mut consortium = Consortium {
        operator,
        operator_key,
        members,
        sequences: vec![0; 5],
    };
    for member in 0..5 {
        for _ in 0..member {
            consortium.query(member)?;
        }
    }
    Ok(consortium)
}

impl Consortium {
    fn query(&mut self, member: usize) -> Result<(), Error> {
        self.sequences[member] += 1;
        let phone = normalise(IdentifierKind::Phone, "+447700900123", None)?;
        let opening = IdentifierOpening::new(phone, [member as u8; 16]);
        let request = SignedRequest::sign(
            CONSORTIUM,
            &self.members[member],
            self.sequences[member],
            TIME,
            Action::Query {
                identifier: opening.commitment(),
            },
        );
        self.operator.query(request, &opening, TIME)?;
        Ok(())
    }

    fn entries(&self) -> Result<Vec<Entry>, Error> {
        (0..self.operator.log().size())
            .map(|index| {
                let bytes = self
                    .operator
                    .log()
                    .entry(index)?
                    .ok_or_else(|| Error::Storage("missing entry".into()))?;
                Entry::decode(&bytes)
            })
            .collect()
    }
}

#[test]
fn a_count_proof_verifies_and_any_change_fails() -> Result<(), Error> {
    let consortium = consortium()?;
    let verifier = consortium.operator_key.verifier();
    for member in 0..5 {
        let name = format!("member-{member}");
        let proof = consortium
            .operator
            .count_proof(&name)?
            .ok_or_else(|| Error::Internal("no proof".into()))?;
        assert_eq!(proof.leaf.queries, member as u64);
        assert_eq!(proof.leaf.status, MemberStatus::Active);
        let parsed = CountProof::parse(&proof.to_text())?;
        assert_eq!(parsed, proof);
        let opened = parsed.verify(&verifier, &[])?;
        assert_eq!(opened.checkpoint.size, consortium.operator.log().size());
    }
    assert!(consortium.operator.count_proof("stranger")?.is_none());

    let proof = consortium
        .operator
        .count_proof("member-3")?
        .ok_or_else(|| Error::Internal("no proof".into()))?;
    // A wrong count, another member's name, another index.
    let mut wrong = proof.clone();
    wrong.leaf.queries = 2;
    assert_eq!(wrong.verify(&verifier, &[]), Err(Error::RootMismatch));
    let mut wrong = proof.clone();
    wrong.leaf.member = "member-2".into();
    assert!(wrong.verify(&verifier, &[]).is_err());
    let mut wrong = proof.clone();
    wrong.index = 2;
    assert!(wrong.verify(&verifier, &[]).is_err());
    // A flipped bit in any proof hash.
    for position in 0..proof.hashes.len() {
        let mut wrong = proof.clone();
        wrong.hashes[position].0[7] ^= 0x10;
        assert_eq!(wrong.verify(&verifier, &[]), Err(Error::RootMismatch));
    }
    // A flipped bit anywhere in the text of the file: it is refused, or proves nothing.
    let text = proof.to_text();
    for position in 0..text.len() {
        let mut bytes = text.clone().into_bytes();
        bytes[position] ^= 0x01;
        let Ok(edited) = String::from_utf8(bytes) else {
            continue;
        };
        if let Ok(parsed) = CountProof::parse(&edited) {
            assert!(
                parsed.verify(&verifier, &[]).is_err(),
                "flipping byte {position} still verifies"
            );
        }
    }
    // Another operator's key.
    assert!(proof
        .verify(&key("alliance.example/log", 10).verifier(), &[])
        .is_err());
    Ok(())
}

#[test]
fn a_proof_against_another_checkpoint_fails() -> Result<(), Error> {
    let mut consortium = consortium()?;
    let before = consortium
        .operator
        .count_proof("member-3")?
        .ok_or_else(|| Error::Internal("no proof".into()))?;
    consortium.query(3)?;
    let after = consortium
        .operator
        .count_proof("member-3")?
        .ok_or_else(|| Error::Internal("no proof".into()))?;
    assert_eq!(after.leaf.queries, 4);
    // The old leaf and path with the new checkpoint, and the new with the old.
    let mut mixed = before.clone();
    mixed.checkpoint = after.checkpoint.clone();
    assert_eq!(
        mixed.verify(&verifier(&consortium), &[]),
        Err(Error::RootMismatch)
    );
    let mut mixed = after.clone();
    mixed.checkpoint = before.checkpoint.clone();
    assert_eq!(
        mixed.verify(&verifier(&consortium), &[]),
        Err(Error::RootMismatch)
    );
    // A checkpoint without the member map line proves nothing.
    let opened = open_checkpoint(&after.checkpoint, &verifier(&consortium), &[])?;
    let bare = Checkpoint {
        extensions: vec![],
        ..opened.checkpoint
    }
    .sign(&consortium.operator_key)?;
    let mut mixed = after;
    mixed.checkpoint = bare.to_string();
    assert!(matches!(
        mixed.verify(&verifier(&consortium), &[]),
        Err(Error::MalformedCheckpoint(_))
    ));
    Ok(())
}

fn verifier(consortium: &Consortium) -> tally_consortium::VerifierKey {
    consortium.operator_key.verifier()
}

#[test]
fn a_mirror_recomputes_the_map_and_catches_a_lying_operator() -> Result<(), Error> {
    let consortium = consortium()?;
    let entries = consortium.entries()?;
    let mut state = ConsortiumState::new();
    replay_batch(&mut state, &entries)?;
    let signed = consortium.operator.checkpoint()?.to_string();
    let checkpoint = open_checkpoint(&signed, &verifier(&consortium), &[])?.checkpoint;
    check_member_map(&state, &checkpoint)?;

    // An operator that signs a map where member-4 made one query fewer: the tree of
    // entries is honest, the counts are not.
    let map = MemberMap::of(&state);
    let honest = map.commitment();
    let mut leaves = map.leaves().to_vec();
    leaves[4].queries -= 1;
    let root = tally_consortium::root_of(
        &leaves
            .iter()
            .map(tally_consortium::MemberLeaf::hash)
            .collect::<Vec<_>>(),
    );
    let lying = Checkpoint {
        extensions: vec![MapCommitment {
            members: honest.members,
            root,
        }
        .extension_line()],
        ..checkpoint.clone()
    };
    assert!(matches!(
        check_member_map(&state, &lying),
        Err(Error::InvalidProof(_))
    ));
    // The replay of a prefix is not the state of the whole checkpoint.
    let mut prefix = ConsortiumState::new();
    replay_batch(&mut prefix, &entries[..entries.len() - 1])?;
    assert!(check_member_map(&prefix, &checkpoint).is_err());
    Ok(())
}
