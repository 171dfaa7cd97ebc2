//! State snapshots: opening from a snapshot gives the state a full replay gives, and an edited, foreign or misplaced snapshot refuses the start.

use tally_consortium::{
    normalise, Action, BlindingKey, Error, Genesis, IdentifierKind, IdentifierOpening, KeyType,
    LogStore, MemberKey, MemoryLogStore, Operator, Quorum, RiskType, SignedRequest, SignerKey,
};

const CONSORTIUM: &str = "alliance";
const TIME: u64 = 1_800_000_000;

fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, KeyType::Ed25519, [seed; 32]).expect("key")
}

fn operator_key() -> SignerKey {
    key("alliance.example/log", 9)
}

fn blinding() -> BlindingKey {
    BlindingKey::new(1, [8; 32])
}

/// Two founders (quorum: both), a pending proposal, a quota, records, a retraction and
/// queries: every part of the state.
fn busy_operator() -> Result<(Operator<MemoryLogStore>, u64), Error> {
    let (bank, pay) = (key("bank-a", 1), key("pay-b", 2));
    let genesis = Genesis {
        consortium: CONSORTIUM.into(),
        founders: [&bank, &pay]
            .iter()
            .map(|member| MemberKey {
                name: member.name().to_owned(),
                public_key: member.verifier().public_key(),
            })
            .collect(),
        quorum: Quorum {
            numerator: 1,
            denominator: 1,
        },
        query_quota_per_day: 100,
        proposal_lifetime_seconds: 86_400,
        request_skew_seconds_max: 300,
    };
    let mut operator = Operator::found(
        MemoryLogStore::new(),
        operator_key(),
        blinding(),
        genesis,
        TIME,
    )?;
    let mut sequence = 0;
    let mut next = || {
        sequence += 1;
        sequence
    };
    let admit = Action::ProposeAdmission {
        candidate: MemberKey {
            name: "shop-c".into(),
            public_key: key("shop-c", 3).verifier().public_key(),
        },
    };
    operator.submit(
        SignedRequest::sign(CONSORTIUM, &bank, next(), TIME, admit),
        TIME,
    )?;
    let quota = Action::ProposeQuota {
        member: "pay-b".into(),
        queries_per_day: 7,
    };
    let (proposal, _) = operator.submit(
        SignedRequest::sign(CONSORTIUM, &bank, next(), TIME, quota),
        TIME,
    )?;
    operator.submit(
        SignedRequest::sign(CONSORTIUM, &pay, 1, TIME, Action::Approve { proposal }),
        TIME,
    )?;
    for number in 0..20u64 {
        let phone = normalise(
            IdentifierKind::Phone,
            &format!("+4477009001{number:02}"),
            None,
        )?;
        let opening = IdentifierOpening::new(phone, [number as u8; 16]);
        let publish = Action::PublishRecord {
            identifier: opening.commitment(),
            risk_type: RiskType::MoneyMule,
            severity: 3,
            expires_at: TIME + 3_600,
            evidence_reference: format!("case {number}"),
        };
        let (record, _) = operator.publish(
            SignedRequest::sign(CONSORTIUM, &bank, next(), TIME, publish),
            &opening,
            TIME,
        )?;
        if number % 5 == 0 {
            let retract = Action::RetractRecord {
                record,
                reason: "closed".into(),
            };
            operator.submit(
                SignedRequest::sign(CONSORTIUM, &bank, next(), TIME, retract),
                TIME,
            )?;
        }
        if number % 3 == 0 {
            let query = Action::Query {
                identifier: opening.commitment(),
            };
            operator.query(
                SignedRequest::sign(CONSORTIUM, &pay, 2 + number, TIME, query),
                &opening,
                TIME,
            )?;
        }
    }
    Ok((operator, sequence))
}

#[test]
fn opening_from_a_snapshot_gives_the_replayed_state() -> Result<(), Error> {
    let (mut operator, sequence) = busy_operator()?;
    let size = operator.log().size();
    // Not due for a small log (every 100,000 entries at least).
    assert!(!operator.snapshot_if_due()?);
    operator.write_snapshot()?;
    // More entries after the snapshot: opening replays only those.
    let phone = normalise(IdentifierKind::Phone, "+447700900999", None)?;
    let opening = IdentifierOpening::new(phone, [1; 16]);
    let query = Action::Query {
        identifier: opening.commitment(),
    };
    operator.query(
        SignedRequest::sign(CONSORTIUM, &key("bank-a", 1), sequence + 1, TIME, query),
        &opening,
        TIME,
    )?;
    let store = operator.log().store().clone();
    assert_eq!(
        store.read_snapshot()?.map(|snapshot| snapshot.size),
        Some(size)
    );
    let reopened = Operator::open(store.clone(), operator_key(), blinding())?;
    assert_eq!(reopened.state(), operator.state());
    assert_eq!(
        reopened.checkpoint()?.to_string(),
        operator.checkpoint()?.to_string()
    );
    // The same as a full replay without the snapshot.
    let mut bare = store.clone();
    bare.overwrite_snapshot_for_tamper_test(None);
    let replayed = Operator::open(bare, operator_key(), blinding())?;
    assert_eq!(replayed.state(), reopened.state());
    Ok(())
}

#[test]
fn an_edited_foreign_or_misplaced_snapshot_refuses_the_start() -> Result<(), Error> {
    let (mut operator, _) = busy_operator()?;
    operator.write_snapshot()?;
    let store = operator.log().store().clone();
    let Some(honest) = store.read_snapshot()? else {
        return Err(Error::Internal("no snapshot".into()));
    };
    let open_with = |snapshot: tally_consortium::StoredSnapshot| {
        let mut copy = store.clone();
        copy.overwrite_snapshot_for_tamper_test(Some(snapshot));
        Operator::open(copy, operator_key(), blinding()).map(|_| ())
    };
    open_with(honest.clone())?;
    // A flipped bit anywhere in the state bytes (a count, a record, a key).
    for position in (0..honest.state.len()).step_by(7) {
        let mut edited = honest.clone();
        edited.state[position] ^= 0x04;
        assert!(open_with(edited).is_err(), "byte {position}");
    }
    // Another operator's signature, and a snapshot that claims another size.
    let foreign = tally_consortium::snapshot::seal(
        operator.state(),
        &operator.log().root(),
        &key("alliance.example/log", 10),
    )?;
    assert!(open_with(foreign).is_err());
    let mut moved = honest.clone();
    moved.size -= 1;
    assert!(open_with(moved).is_err());
    // A snapshot of another history (same size, another root) signed by the operator.
    let other = tally_consortium::snapshot::seal(
        operator.state(),
        &tally_consortium::leaf_hash(b"another history"),
        &operator_key(),
    )?;
    assert!(open_with(other).is_err());
    // A snapshot beyond the stored log.
    let mut beyond = honest;
    beyond.size += 1;
    assert!(open_with(beyond).is_err());
    Ok(())
}
