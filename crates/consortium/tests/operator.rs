//! The operator end to end over the in-memory store: found, admit, publish, query, checkpoint, reopen, tamper.

use tally_consortium::{
    normalise, open_checkpoint, verify_inclusion, Action, BlindingKey, Entry, Error, Genesis,
    IdentifierKind, IdentifierOpening, KeyType, MemberKey, MemoryLogStore, Operator, Quorum,
    RiskType, SignedRequest, SignerKey,
};

const CONSORTIUM: &str = "alliance";
const TIME: u64 = 1_800_000_000;

fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, KeyType::Ed25519, [seed; 32]).expect("key")
}

#[test]
fn an_operator_runs_the_consortium_and_survives_a_reopen_but_not_tampering() -> Result<(), Error> {
    let operator_key = key("alliance.example/log", 9);
    let bank = key("bank-a", 1);
    let payments = key("pay-b", 2);
    let genesis = Genesis {
        consortium: CONSORTIUM.into(),
        founders: vec![MemberKey {
            name: "bank-a".into(),
            public_key: bank.verifier().public_key(),
        }],
        quorum: Quorum {
            numerator: 1,
            denominator: 2,
        },
        query_quota_per_day: 100,
        proposal_lifetime_seconds: 86_400,
        request_skew_seconds_max: 300,
    };
    let blinding = BlindingKey::new(1, [8; 32]);
    let mut operator = Operator::found(
        MemoryLogStore::new(),
        operator_key.clone(),
        blinding.clone(),
        genesis,
        TIME,
    )?;
    let admit = Action::ProposeAdmission {
        candidate: MemberKey {
            name: "pay-b".into(),
            public_key: payments.verifier().public_key(),
        },
    };
    operator.submit(SignedRequest::sign(CONSORTIUM, &bank, 1, TIME, admit), TIME)?;
    // The member commits to the card number with a salt of its own; the operator blinds.
    let card = normalise(IdentifierKind::Card, "4111 1111 1111 1111", None)?;
    let publisher_opening = IdentifierOpening::new(card.clone(), [1; 16]);
    let querier_opening = IdentifierOpening::new(card, [2; 16]);
    let publish = Action::PublishRecord {
        identifier: publisher_opening.commitment(),
        risk_type: RiskType::Fraud,
        severity: 5,
        expires_at: TIME + 86_400,
        evidence_reference: "police report 77".into(),
    };
    let publication = SignedRequest::sign(CONSORTIUM, &payments, 1, TIME, publish);
    // A plain request cannot carry a publication, and a wrong opening is refused.
    assert_eq!(
        operator
            .submit(publication.clone(), TIME)
            .map(|_| ())
            .map_err(|error| error.code()),
        Err("invalid_field")
    );
    let wrong_card = normalise(IdentifierKind::Card, "4000 0000 0000 0002", None)?;
    assert_eq!(
        operator
            .publish(
                publication.clone(),
                &IdentifierOpening::new(wrong_card, [1; 16]),
                TIME
            )
            .map(|_| ())
            .map_err(|error| error.code()),
        Err("commitment_mismatch")
    );
    operator.publish(publication, &publisher_opening, TIME)?;
    let query = Action::Query {
        identifier: querier_opening.commitment(),
    };
    let answer = operator.query(
        SignedRequest::sign(CONSORTIUM, &bank, 2, TIME, query.clone()),
        &querier_opening,
        TIME,
    )?;
    assert_eq!(answer.records.len(), 1);
    assert_eq!(answer.records[0].publisher, "pay-b");

    // A batch with a refused entry: the refused one is left out, the others land.
    let replayed = SignedRequest::sign(CONSORTIUM, &bank, 2, TIME, query);
    let results = operator.append(vec![Entry {
        time: TIME,
        body: tally_consortium::EntryBody::Request(replayed),
    }])?;
    assert!(results[0].is_err());
    assert_eq!(operator.log().size(), 4);

    // The checkpoint verifies and the query record is provably in the log.
    let checkpoint = operator.checkpoint()?.to_string();
    let opened = open_checkpoint(&checkpoint, &operator_key.verifier(), &[])?;
    assert_eq!(opened.checkpoint.size, 4);
    let proof = operator.log().inclusion_proof(answer.index, 4)?;
    let leaf = operator.log().leaf_hash(answer.index)?;
    verify_inclusion(answer.index, 4, &leaf, &proof, &opened.checkpoint.root)?;

    // Reopening replays the stored entries into the same state.
    let store = operator.log().store().clone();
    let reopened = Operator::open(store.clone(), operator_key.clone(), blinding.clone())?;
    assert_eq!(reopened.state().members(), operator.state().members());
    assert_eq!(
        reopened.state().query_counts(),
        operator.state().query_counts()
    );
    assert_eq!(reopened.log().root(), operator.log().root());

    // An entry edited in the store is caught on reopening.
    let mut tampered = store;
    let mut bytes = operator.log().entry(2)?.unwrap_or_default();
    let last = bytes.len() - 70;
    bytes[last] ^= 1;
    tampered.overwrite_entry_for_tamper_test(2, bytes);
    assert_eq!(
        Operator::open(tampered, operator_key, blinding)
            .map(|_| ())
            .map_err(|error| error.code()),
        Err("storage")
    );
    Ok(())
}

#[test]
fn a_large_batch_checks_signatures_in_parallel_and_still_refuses_forgeries() -> Result<(), Error> {
    let operator_key = key("alliance.example/log", 9);
    let bank = key("bank-a", 1);
    let newcomer = key("pay-b", 2);
    let genesis = Genesis {
        consortium: CONSORTIUM.into(),
        founders: vec![MemberKey {
            name: "bank-a".into(),
            public_key: bank.verifier().public_key(),
        }],
        quorum: Quorum {
            numerator: 1,
            denominator: 2,
        },
        query_quota_per_day: 100,
        proposal_lifetime_seconds: 86_400,
        request_skew_seconds_max: 300,
    };
    let mut operator = Operator::found(
        MemoryLogStore::new(),
        operator_key,
        BlindingKey::new(1, [8; 32]),
        genesis,
        TIME,
    )?;
    let commitment = |sequence: u64| tally_consortium::IdentifierCommitment {
        kind: IdentifierKind::Device,
        digest: [sequence as u8; 32],
    };
    let publish = |sequence: u64| Action::PublishRecord {
        identifier: commitment(sequence),
        risk_type: RiskType::MoneyMule,
        severity: 2,
        expires_at: TIME + 60,
        evidence_reference: String::new(),
    };
    // Entries as the operator builds them after blinding (a stand-in blinded value).
    let entry = |request: SignedRequest| {
        let body = match &request.action {
            Action::PublishRecord { identifier, .. } => tally_consortium::EntryBody::Publication {
                identifier: tally_consortium::BlindedIdentifier {
                    kind: identifier.kind,
                    key_epoch: 1,
                    value: identifier.digest,
                },
                request,
            },
            _ => tally_consortium::EntryBody::Request(request),
        };
        Entry { time: TIME, body }
    };
    let mut batch = Vec::new();
    for sequence in 1..=100u64 {
        batch.push(entry(SignedRequest::sign(
            CONSORTIUM,
            &bank,
            sequence,
            TIME,
            publish(sequence),
        )));
    }
    // A forgery in the middle, signed by a key that is not bank-a's.
    batch[50] = entry(SignedRequest::sign(
        CONSORTIUM,
        &newcomer,
        51,
        TIME,
        publish(51),
    ));
    if let tally_consortium::EntryBody::Publication { request, .. } = &mut batch[50].body {
        request.member = "bank-a".into();
    }
    // A member admitted inside the batch publishes in the same batch.
    batch.push(entry(SignedRequest::sign(
        CONSORTIUM,
        &bank,
        101,
        TIME,
        Action::ProposeAdmission {
            candidate: MemberKey {
                name: "pay-b".into(),
                public_key: newcomer.verifier().public_key(),
            },
        },
    )));
    batch.push(entry(SignedRequest::sign(
        CONSORTIUM,
        &newcomer,
        1,
        TIME,
        publish(200),
    )));
    let results = operator.append(batch)?;
    let refused: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, result)| result.is_err())
        .map(|(position, _)| position)
        .collect();
    assert_eq!(refused, vec![50]);
    assert_eq!(
        results[50]
            .as_ref()
            .map(|_| ())
            .map_err(|error| error.code()),
        Err("bad_signature")
    );
    assert_eq!(operator.log().size(), 1 + 101);
    Ok(())
}

#[test]
fn log_time_never_runs_backwards_so_a_clock_behind_cannot_reset_the_daily_quota(
) -> Result<(), Error> {
    // A quota of one query a day; T is ten seconds into day D + 1.
    const DAY: u64 = 86_400;
    let day = TIME / DAY;
    let t = (day + 1) * DAY + 10;
    let operator_key = key("alliance.example/log", 9);
    let bank = key("bank-a", 1);
    let genesis = Genesis {
        consortium: CONSORTIUM.into(),
        founders: vec![MemberKey {
            name: "bank-a".into(),
            public_key: bank.verifier().public_key(),
        }],
        quorum: Quorum {
            numerator: 1,
            denominator: 2,
        },
        query_quota_per_day: 1,
        proposal_lifetime_seconds: 86_400,
        request_skew_seconds_max: 300,
    };
    let blinding = BlindingKey::new(1, [8; 32]);
    let mut operator = Operator::found(
        MemoryLogStore::new(),
        operator_key.clone(),
        blinding.clone(),
        genesis,
        t - 1_000,
    )?;
    let opening = IdentifierOpening::new(
        normalise(IdentifierKind::Phone, "+8613800000001", None)?,
        [3; 16],
    );
    let query = |sequence: u64, time: u64| {
        SignedRequest::sign(
            CONSORTIUM,
            &bank,
            sequence,
            time,
            Action::Query {
                identifier: opening.commitment(),
            },
        )
    };
    // The day's one query, at T.
    operator.query(query(1, t), &opening, t)?;
    // A restart with the clock 20 s behind (day D): the log stamps the query at T, the
    // time of its last entry, so it counts against day D + 1, which is used up.
    let mut operator = Operator::open(
        operator.log().store().clone(),
        operator_key.clone(),
        blinding.clone(),
    )?;
    assert_eq!(
        operator
            .query(query(2, t - 20), &opening, t - 20)
            .map(|_| ())
            .map_err(|error| error.code()),
        Err("quota_exceeded")
    );
    // The clock is right again: still one query on day D + 1.
    assert_eq!(
        operator
            .query(query(3, t), &opening, t)
            .map(|_| ())
            .map_err(|error| error.code()),
        Err("quota_exceeded")
    );
    let count = operator.state().query_count("bank-a");
    assert_eq!((count.total, count.day, count.in_day), (1, day + 1, 1));
    // Entries appended directly with an earlier time are stamped at the last entry's.
    let admit = Action::ProposeAdmission {
        candidate: MemberKey {
            name: "pay-b".into(),
            public_key: key("pay-b", 2).verifier().public_key(),
        },
    };
    let results = operator.append(vec![Entry {
        time: t - 20,
        body: tally_consortium::EntryBody::Request(SignedRequest::sign(
            CONSORTIUM,
            &bank,
            4,
            t - 20,
            admit,
        )),
    }])?;
    assert!(results[0].is_ok());
    // Entry times never decrease, across the restart too.
    let mut times = Vec::new();
    for index in 0..operator.log().size() {
        let bytes = operator.log().entry(index)?.unwrap_or_default();
        times.push(Entry::decode(&bytes)?.time);
    }
    assert_eq!(times, vec![t - 1_000, t, t]);
    Ok(())
}
