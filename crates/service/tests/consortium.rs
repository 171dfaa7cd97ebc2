//! The consortium log operator service over the SQL store, on SQLite and PostgreSQL:
//! commits survive a restart (replay), proofs from the stored tiles verify against the
//! signed checkpoint, and an entry or a hash edited directly in the database is detected.
//! Every test runs on both backends.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tally_consortium::{
    normalise, verify_inclusion, Action, BlindingKey, Genesis, IdentifierKind, IdentifierOpening,
    KeyType, LogFollower, LogStore, MemberKey, Quorum, RiskType, SignedRequest, SignerKey,
};
use tally_core::{Clock, ManualClock};
use tally_service::consortium::{Accepted, ConsortiumConfig, ConsortiumLog};
use tally_store::consortium::SqlLogStore;
use tally_store::testing::TestDatabase;
use tally_store::Database;

const TIME: u64 = 1_800_000_000;

fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(
        jiff::Timestamp::from_second(TIME as i64).unwrap(),
    ))
}

fn member(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, KeyType::Ed25519, [seed; 32]).unwrap()
}

fn config() -> ConsortiumConfig {
    let founders = [member("bank-a", 1), member("bank-b", 2)]
        .iter()
        .map(|key| MemberKey {
            name: key.name().to_owned(),
            public_key: key.verifier().public_key(),
        })
        .collect();
    ConsortiumConfig::new(
        SignerKey::from_seed("log.tally.example/test", KeyType::Ed25519, [9; 32]).unwrap(),
        BlindingKey::new(1, [7; 32]),
        Some(Genesis {
            consortium: "test".into(),
            founders,
            quorum: Quorum {
                numerator: 1,
                denominator: 2,
            },
            query_quota_per_day: 100,
            proposal_lifetime_seconds: 86_400,
            request_skew_seconds_max: 300,
        }),
    )
}

fn opening(phone: &str) -> IdentifierOpening {
    IdentifierOpening::new(
        normalise(IdentifierKind::Phone, phone, None).unwrap(),
        [5; 16],
    )
}

fn publication(key: &SignerKey, sequence: u64, phone: &str) -> (SignedRequest, IdentifierOpening) {
    let opening = opening(phone);
    let action = Action::PublishRecord {
        identifier: opening.commitment(),
        risk_type: RiskType::Fraud,
        severity: 3,
        expires_at: TIME + 86_400,
        evidence_reference: format!("case {sequence}"),
    };
    (
        SignedRequest::sign("test", key, sequence, TIME, action),
        opening,
    )
}

async fn start(database: &Database) -> Result<ConsortiumLog, tally_consortium::Error> {
    ConsortiumLog::start(database, clock(), config())
        .await
        .map(|(log, _)| log)
}

/// Publishes `count` records from bank-a, one after the other.
async fn fill(log: &ConsortiumLog, first_sequence: u64, count: u64) {
    let key = member("bank-a", 1);
    for sequence in first_sequence..first_sequence + count {
        let (request, opening) = publication(&key, sequence, &format!("+86138{sequence:08}"));
        log.submit(request, Some(opening)).await.unwrap();
    }
}

/// Flips one bit of a stored blob, directly in the database: `table` has `bytes` and a
/// key `condition` such as `entry_index = 3`.
async fn flip_bit(database: &Database, table: &str, condition: &str, offset: usize) {
    let select = format!("SELECT bytes FROM {table} WHERE {condition}");
    let update = format!("UPDATE {table} SET bytes = $1 WHERE {condition}");
    match database {
        Database::Sqlite(pool) => {
            let (mut bytes,): (Vec<u8>,) = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .fetch_one(pool)
                .await
                .unwrap();
            bytes[offset] ^= 1;
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(bytes)
                .execute(pool)
                .await
                .unwrap();
        }
        Database::Postgres(pool) => {
            let (mut bytes,): (Vec<u8>,) = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .fetch_one(pool)
                .await
                .unwrap();
            bytes[offset] ^= 1;
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(bytes)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

tally_store::on_both_backends!(
    commits_survive_a_restart_and_proofs_verify,
    an_edited_entry_is_detected,
    an_edited_hash_is_detected,
    a_second_writer_cannot_interleave,
    a_failed_query_commit_reopens_the_operator,
);

async fn commits_survive_a_restart_and_proofs_verify(test: TestDatabase) {
    let log = start(&test.database).await.unwrap();
    let key = member("bank-a", 1);
    let mut sequence = 0;
    for phone in ["+8613800000001", "+8613800000002", "+8613800000001"] {
        sequence += 1;
        let (request, opening) = publication(&key, sequence, phone);
        let accepted = log.submit(request, Some(opening)).await.unwrap();
        assert!(matches!(accepted, Accepted::Logged { .. }));
    }
    // A query by the other member finds both live records about the first number.
    let other = member("bank-b", 2);
    let query = SignedRequest::sign(
        "test",
        &other,
        1,
        TIME,
        Action::Query {
            identifier: opening("+8613800000001").commitment(),
        },
    );
    let Accepted::Answered(answer) = log
        .submit(query, Some(opening("+8613800000001")))
        .await
        .unwrap()
    else {
        panic!("a query is answered");
    };
    assert_eq!(answer.records.len(), 2);
    assert_eq!(answer.index, 4);
    // A replay of the query is refused.
    let replay = SignedRequest::sign(
        "test",
        &other,
        1,
        TIME,
        Action::Query {
            identifier: opening("+8613800000001").commitment(),
        },
    );
    let refused = log
        .submit(replay, Some(opening("+8613800000001")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "replayed_request");

    let text = log.checkpoint();
    let verifier = config().signer.verifier();
    let mut follower = LogFollower::new(verifier.clone());
    follower.observe(&text, &[]).unwrap();
    let checkpoint = follower.latest().unwrap().clone();
    assert_eq!(checkpoint.size, 5);
    let (leaf, proof) = log
        .read(move |operator| {
            let leaf = operator.log().leaf_hash(2).unwrap();
            (leaf, operator.log().inclusion_proof(2, 5).unwrap())
        })
        .await
        .unwrap();
    verify_inclusion(2, 5, &leaf, &proof, &checkpoint.root).unwrap();
    drop(log);

    // Restart: the log is replayed from the database, same root, same state.
    let log = start(&test.database).await.unwrap();
    let reopened = log.checkpoint();
    assert_eq!(
        follower.observe(&reopened, &[]).unwrap(),
        tally_consortium::Observation::Unchanged
    );
    let counts = log
        .read(|operator| operator.state().query_count("bank-b").total)
        .await
        .unwrap();
    assert_eq!(counts, 1);
    // More entries after the restart extend the same history.
    fill(&log, 4, 300).await;
    let (size, consistency) = {
        let old = checkpoint.size;
        log.read(move |operator| {
            let size = operator.log().size();
            (size, operator.log().consistency_proof(old, size).unwrap())
        })
        .await
        .unwrap()
    };
    assert!(size > 256, "a full tile was written");
    assert!(matches!(
        follower.observe(&log.checkpoint(), &consistency).unwrap(),
        tally_consortium::Observation::Advanced { .. }
    ));
    // The stored tiles audit clean.
    let audited = log
        .read(|operator| {
            operator.log().audit_entries().unwrap();
            operator.log().audit().unwrap()
        })
        .await
        .unwrap();
    assert_eq!(
        audited,
        follower.latest().unwrap().root,
        "the audit recomputes the signed root"
    );
}

async fn an_edited_entry_is_detected(test: TestDatabase) {
    let log = start(&test.database).await.unwrap();
    fill(&log, 1, 20).await;
    let before = log.checkpoint();
    drop(log);
    // Change one bit near the end of entry 3 (its evidence reference), in the database.
    flip_bit(&test.database, "consortium_entries", "entry_index = 3", 60).await;
    // The operator refuses to start on it: the entry no longer hashes to its leaf.
    let error = start(&test.database).await.unwrap_err();
    assert_eq!(error.code(), "storage", "{error}");
    assert!(error.to_string().contains("entry 3"), "{error}");
    // An audit of the store finds it too, without the rules.
    let database = test.database.clone();
    let audit = tokio::task::spawn_blocking(move || {
        let store = SqlLogStore::connect(&database).unwrap();
        let log = tally_consortium::MerkleLog::open(store).unwrap();
        log.audit_entries()
    })
    .await
    .unwrap();
    assert!(audit.is_err());
    assert!(!before.is_empty());
}

async fn an_edited_hash_is_detected(test: TestDatabase) {
    let log = start(&test.database).await.unwrap();
    fill(&log, 1, 300).await;
    let verifier = config().signer.verifier();
    let mut follower = LogFollower::new(verifier);
    follower.observe(&log.checkpoint(), &[]).unwrap();
    let size = follower.latest().unwrap().size;
    drop(log);
    // Flip a bit of leaf hash 10 in tile 0/0 (full).
    flip_bit(
        &test.database,
        "consortium_tiles",
        "level = 0 AND tile_index = 0",
        10 * 32 + 3,
    )
    .await;
    let database = test.database.clone();
    let (audit, root, leaf_check) = tokio::task::spawn_blocking(move || {
        let store = SqlLogStore::connect(&database).unwrap();
        assert_eq!(store.tree_size().unwrap(), size);
        let log = tally_consortium::MerkleLog::open(store).unwrap();
        (log.audit(), log.root(), log.audit_entries())
    })
    .await
    .unwrap();
    // The root comes from hashes higher up, so it is unchanged, but the audit (stored
    // hashes against the hashes below them) and the entries against their leaves fail.
    assert_eq!(root, follower.latest().unwrap().root);
    assert!(audit.is_err());
    assert!(leaf_check.is_err());
    // The operator refuses to start (entry 10 no longer hashes to its stored leaf).
    assert_eq!(start(&test.database).await.unwrap_err().code(), "storage");
}

async fn a_second_writer_cannot_interleave(test: TestDatabase) {
    let log = start(&test.database).await.unwrap();
    fill(&log, 1, 3).await;
    // A second store, opened at the same size, commits; the first one's next commit
    // does not continue the stored log and is refused, and its operator reopens.
    let database = test.database.clone();
    tokio::task::spawn_blocking(move || {
        let store = SqlLogStore::connect(&database).unwrap();
        let mut merkle = tally_consortium::MerkleLog::open(store).unwrap();
        merkle.append_entries(vec![b"intruder".to_vec()]).unwrap();
    })
    .await
    .unwrap();
    let (request, opening) = publication(&member("bank-b", 2), 1, "+8613900000000");
    let error = log.submit(request, Some(opening)).await.unwrap_err();
    assert_eq!(error.code(), "storage");
}

/// Makes every insert into `consortium_entries` fail (as a full disk would), or stops it.
async fn fail_entry_inserts(database: &Database, fail: bool) {
    match database {
        Database::Sqlite(pool) => {
            let statement = if fail {
                "CREATE TRIGGER consortium_test_failure BEFORE INSERT ON consortium_entries \
                 BEGIN SELECT RAISE(ABORT, 'the disk is full (test)'); END"
            } else {
                "DROP TRIGGER consortium_test_failure"
            };
            sqlx::query(statement).execute(pool).await.unwrap();
        }
        Database::Postgres(pool) => {
            let statements: &[&'static str] = if fail {
                &[
                    "CREATE FUNCTION consortium_test_failure() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'the disk is full (test)'; END $$",
                    "CREATE TRIGGER consortium_test_failure BEFORE INSERT ON consortium_entries \
                     FOR EACH ROW EXECUTE FUNCTION consortium_test_failure()",
                ]
            } else {
                &["DROP TRIGGER consortium_test_failure ON consortium_entries"]
            };
            for statement in statements {
                sqlx::query(*statement).execute(pool).await.unwrap();
            }
        }
    }
}

fn query(key: &SignerKey, sequence: u64, phone: &str) -> (SignedRequest, IdentifierOpening) {
    let action = Action::Query {
        identifier: opening(phone).commitment(),
    };
    (
        SignedRequest::sign("test", key, sequence, TIME, action),
        opening(phone),
    )
}

async fn a_failed_query_commit_reopens_the_operator(test: TestDatabase) {
    let log = start(&test.database).await.unwrap();
    fill(&log, 1, 2).await;
    let verifier = config().signer.verifier();
    let size = |text: String| {
        tally_consortium::open_checkpoint(&text, &verifier, &[])
            .unwrap()
            .checkpoint
            .size
    };
    assert_eq!(size(log.checkpoint()), 3);
    // A query whose commit fails is answered with the storage error.
    fail_entry_inserts(&test.database, true).await;
    let bank_b = member("bank-b", 2);
    let (request, opening) = query(&bank_b, 1, "+8613800000001");
    let error = log.submit(request, Some(opening)).await.unwrap_err();
    assert_eq!(error.code(), "storage");
    // Once the store takes writes again, the next query (with only queries coming) is
    // answered and the shared checkpoint moves on: the operator reopened from the store.
    fail_entry_inserts(&test.database, false).await;
    let (request, opening) = query(&bank_b, 2, "+8613800000001");
    let accepted = log.submit(request, Some(opening)).await.unwrap();
    let Accepted::Answered(answer) = accepted else {
        panic!("a query is answered");
    };
    assert_eq!(answer.records.len(), 1);
    assert_eq!(answer.index, 3);
    assert_eq!(size(log.checkpoint()), 4);
}
