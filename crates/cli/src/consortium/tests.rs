//! Tests of `tally consortium`: demo files verify and tampering fails, key files, the
//! file-based follower, and `verify --url` and the mirror against a served log.

use std::path::PathBuf;
use std::process::ExitCode;

use tally_consortium::{
    leaf_hash, normalise, open_checkpoint, Action, BlindingKey, Checkpoint, CountProof, Genesis,
    IdentifierKind, IdentifierOpening, KeyType, MemberKey, Note, Observation, Quorum, RiskType,
    SignedRequest, SignerKey,
};

use super::demo::{demo, DEMO_TIME};
use super::keys::{keygen, verifier_key, write_secret};
use super::mirror::{cosign, follow};
use super::verify::run_verify;
use super::{keys, mirror, verify, Verify};

fn verify_exit(verify: Verify) -> u8 {
    let code = run_verify(verify).expect("runs");
    if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(1) {
        1
    } else {
        2
    }
}

#[test]
fn blinding_key_files_are_read_from_lower_or_upper_case_hex() -> anyhow::Result<()> {
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("blinding.key");
    let bytes: [u8; 32] = std::array::from_fn(|index| (index * 37 + 5) as u8);
    let phone = normalise(IdentifierKind::Phone, "+8613812345678", None)?;
    let expected = BlindingKey::new(3, bytes).blind(&phone)?;
    for text in [hex::encode(bytes), hex::encode_upper(bytes)] {
        std::fs::write(&path, format!("3 {text}\n"))?;
        let key = keys::read_blinding_key(&path)?;
        assert_eq!(key.epoch(), 3);
        assert_eq!(key.blind(&phone)?, expected);
    }
    let good = hex::encode(bytes);
    let signed = format!("+{}", &good[1..]);
    let short = &good[..62];
    let not_hex = format!("zz{}", &good[2..]);
    for bad in [signed.as_str(), short, not_hex.as_str()] {
        std::fs::write(&path, format!("3 {bad}\n"))?;
        assert!(keys::read_blinding_key(&path).is_err(), "{bad} was taken");
    }
    Ok(())
}

#[test]
fn demo_files_verify_and_tampering_fails() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path();
    demo(path, 300).expect("demo");
    let key = format!("@{}", path.join("operator.vkey").display());
    let checkpoint = |name: &str| path.join(name);
    let inclusion = |checkpoint_file: &str| Verify::Inclusion {
        log_key: key.clone(),
        checkpoint: checkpoint(checkpoint_file),
        proof: path.join("inclusion.proof"),
        entry: Some(path.join("entry.bin")),
    };
    assert_eq!(
        verify_exit(Verify::Checkpoint {
            log_key: key.clone(),
            witness: vec![],
            checkpoint: checkpoint("checkpoint-new.txt"),
        }),
        0
    );
    assert_eq!(verify_exit(inclusion("checkpoint-new.txt")), 0);
    // The proof is for the new size, not the old checkpoint.
    assert_eq!(verify_exit(inclusion("checkpoint-old.txt")), 1);
    assert_eq!(
        verify_exit(Verify::Consistency {
            log_key: key.clone(),
            old: checkpoint("checkpoint-old.txt"),
            new: checkpoint("checkpoint-new.txt"),
            proof: path.join("consistency.proof"),
        }),
        0
    );
    // A tampered entry and a tampered checkpoint fail.
    let mut entry = std::fs::read(path.join("entry.bin")).expect("entry");
    entry[20] ^= 1;
    std::fs::write(path.join("entry.bin"), entry).expect("write");
    assert_eq!(verify_exit(inclusion("checkpoint-new.txt")), 1);
    let text = std::fs::read_to_string(checkpoint("checkpoint-new.txt")).expect("read");
    let forged = text.replacen("\n300\n", "\n301\n", 1);
    std::fs::write(checkpoint("checkpoint-new.txt"), forged).expect("write");
    assert_eq!(
        verify_exit(Verify::Checkpoint {
            log_key: key,
            witness: vec![],
            checkpoint: checkpoint("checkpoint-new.txt"),
        }),
        1
    );
}

#[test]
fn follow_advances_and_alarms_on_a_fork() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path();
    demo(path, 300).expect("demo");
    let key = format!("@{}", path.join("operator.vkey").display());
    let state = path.join("state.txt");
    let step = |checkpoint: &str, proof: Option<&str>| {
        let proof = proof.map(|name| path.join(name));
        let code = follow(&key, &state, &path.join(checkpoint), proof.as_deref()).expect("runs");
        code == ExitCode::SUCCESS
    };
    assert!(step("checkpoint-old.txt", None));
    assert!(step("checkpoint-new.txt", Some("consistency.proof")));
    // As a witness: cosign what was verified; the cosignature verifies.
    let witness_file = path.join("witness.key");
    let witness = SignerKey::from_seed("witness.example/w1", KeyType::CosignatureV1, [5; 32])
        .expect("witness");
    write_secret(&witness_file, &witness.to_secret_string()).expect("write");
    assert_eq!(
        cosign(&key, &state, &witness_file).expect("cosign"),
        ExitCode::SUCCESS
    );
    let cosigned = std::fs::read_to_string(state.with_extension("cosigned")).expect("read");
    let operator_key = verifier_key(&key).expect("key");
    let opened = open_checkpoint(&cosigned, &operator_key, &[witness.verifier()]).expect("open");
    assert_eq!(opened.cosigners().len(), 1);
    // Another history of the same size, signed by the same operator: a fork.
    let operator = SignerKey::parse(
        std::fs::read_to_string(path.join("operator.key"))
            .expect("key")
            .trim(),
    )
    .expect("parse");
    let forged = Checkpoint {
        origin: operator.name().to_owned(),
        size: 300,
        root: leaf_hash(b"another history"),
        extensions: vec![],
    };
    let note = forged.sign(&operator).expect("sign");
    std::fs::write(path.join("forked.txt"), note.to_string()).expect("write");
    assert!(!step("forked.txt", None));
}

#[test]
fn keygen_writes_a_secret_that_matches_the_printed_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let secret = dir.path().join("member.key");
    keygen("bank-a", false, &secret).expect("keygen");
    let text = std::fs::read_to_string(&secret).expect("secret");
    let signer = SignerKey::parse(text.trim()).expect("parse");
    assert_eq!(signer.name(), "bank-a");
    // Refuses to overwrite.
    assert!(keygen("bank-a", false, &secret).is_err());
}

/// A log served over a real socket, for `verify --url` and the mirror.
struct Served {
    url: String,
    log: tally_service::consortium::ConsortiumLog,
    server: tokio::task::JoinHandle<()>,
}

fn operator_signer() -> SignerKey {
    SignerKey::from_seed("cli.tally.example/log", KeyType::Ed25519, [8; 32]).expect("key")
}

async fn serve_log(database: &tally_store::Database, quota: u32) -> Served {
    serve_log_with(database, quota, false).await
}

/// A lying operator: its checkpoints commit a member map in which bank-a made one
/// query fewer than the log holds (signed with the real operator key).
async fn lying_checkpoint(
    log: tally_service::consortium::ConsortiumLog,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !path.ends_with("/checkpoint") {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let note = Note::parse(std::str::from_utf8(&bytes).expect("text")).expect("note");
    let honest = Checkpoint::parse(&note.text).expect("checkpoint");
    let mut leaves = log
        .read(|operator| {
            tally_consortium::MemberMap::of(operator.state())
                .leaves()
                .to_vec()
        })
        .await
        .expect("read");
    leaves[0].queries = leaves[0].queries.saturating_sub(1);
    let hashes: Vec<tally_consortium::Hash> = leaves
        .iter()
        .map(tally_consortium::MemberLeaf::hash)
        .collect();
    let lie = Checkpoint {
        extensions: vec![tally_consortium::MapCommitment {
            members: leaves.len() as u64,
            root: tally_consortium::root_of(&hashes),
        }
        .extension_line()],
        ..honest
    };
    let text = lie.sign(&operator_signer()).expect("sign").to_string();
    axum::response::IntoResponse::into_response(text)
}

async fn serve_log_with(database: &tally_store::Database, quota: u32, lying: bool) -> Served {
    let member = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).expect("key");
    let genesis = Genesis {
        consortium: "cli".into(),
        founders: vec![MemberKey {
            name: "bank-a".into(),
            public_key: member.verifier().public_key(),
        }],
        quorum: Quorum {
            numerator: 1,
            denominator: 2,
        },
        query_quota_per_day: quota,
        proposal_lifetime_seconds: 86_400,
        request_skew_seconds_max: 300,
    };
    let clock: std::sync::Arc<dyn tally_core::Clock> = std::sync::Arc::new(
        tally_core::ManualClock::new(jiff::Timestamp::from_second(DEMO_TIME as i64).expect("time")),
    );
    let config = tally_service::consortium::ConsortiumConfig::new(
        operator_signer(),
        BlindingKey::new(1, [3; 32]),
        Some(genesis),
    );
    let (log, _) = tally_service::consortium::ConsortiumLog::start(database, clock, config)
        .await
        .expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let mut router = tally_server::consortium_app(
        tally_server::routes::consortium::ConsortiumAppState::new(log.clone()),
    );
    if lying {
        let shared = log.clone();
        router = router.layer(axum::middleware::from_fn(move |request, next| {
            lying_checkpoint(shared.clone(), request, next)
        }));
    }
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Served {
        url: format!("http://{address}"),
        log,
        server,
    }
}

async fn publish_many(log: &tally_service::consortium::ConsortiumLog, first: u64, count: u64) {
    let member = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).expect("key");
    for sequence in first..first + count {
        let opening = IdentifierOpening::new(
            normalise(IdentifierKind::Phone, &format!("+86137{sequence:08}"), None).expect("phone"),
            [4; 16],
        );
        let action = Action::PublishRecord {
            identifier: opening.commitment(),
            risk_type: RiskType::Fraud,
            severity: 2,
            expires_at: DEMO_TIME + 86_400,
            evidence_reference: "case".into(),
        };
        let request = SignedRequest::sign("cli", &member, sequence, DEMO_TIME, action);
        log.submit(request, Some(opening)).await.expect("publish");
    }
}

async fn flip_bit(database: &tally_store::Database, table: &str, condition: &str, offset: usize) {
    let tally_store::Database::Sqlite(pool) = database else {
        panic!("SQLite");
    };
    let (mut bytes,): (Vec<u8>,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT bytes FROM {table} WHERE {condition}"
    )))
    .fetch_one(pool)
    .await
    .expect("select");
    bytes[offset] ^= 1;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET bytes = $1 WHERE {condition}"
    )))
    .bind(bytes)
    .execute(pool)
    .await
    .expect("update");
}

async fn step(url: &str, key: &str) -> Result<Observation, String> {
    let mut mirror = mirror::Mirror::new(url, key).expect("mirror");
    match mirror.step().await.expect("step") {
        Ok(observation) => Ok(observation),
        Err(mirror::Alarm::Fork(detail)) => Err(format!("FORK {detail}")),
        Err(mirror::Alarm::Tampered(detail)) => Err(format!("TAMPERED {detail}")),
    }
}

#[test]
fn verify_url_and_the_mirror_detect_edits_and_forks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let directory = tempfile::tempdir().expect("directory");
        let connect = |name: &str| {
            let url = format!("sqlite://{}", directory.path().join(name).display());
            async move {
                let database = tally_store::Database::connect(&url).await.expect("connect");
                database.migrate().await.expect("migrate");
                database
            }
        };
        let database = connect("log.db").await;
        let key = operator_signer().verifier().to_string();
        let served = serve_log(&database, 100).await;
        publish_many(&served.log, 1, 300).await;
        let check = |url: String, index: u64, old: Option<PathBuf>| {
            let key = key.clone();
            async move {
                verify::verify(&url, &key, Some(index), old.as_deref(), None)
                    .await
                    .expect("verify")
            }
        };
        // An entry edited in the database before the service read it.
        flip_bit(&database, "consortium_entries", "entry_index = 7", 60).await;
        assert_eq!(check(served.url.clone(), 7, None).await, ExitCode::from(1));
        let alarm = step(&served.url, &key).await.unwrap_err();
        assert!(alarm.starts_with("TAMPERED"), "{alarm}");
        flip_bit(&database, "consortium_entries", "entry_index = 7", 60).await;
        served.server.abort();
        drop(served);

        // Restored and restarted: everything verifies; keep the checkpoint.
        let served = serve_log(&database, 100).await;
        assert_eq!(
            step(&served.url, &key).await,
            Ok(Observation::First { size: 301 })
        );
        assert_eq!(
            check(served.url.clone(), 100, None).await,
            ExitCode::SUCCESS
        );
        let old = directory.path().join("old.txt");
        std::fs::write(&old, served.log.checkpoint()).expect("write");
        publish_many(&served.log, 301, 5).await;
        assert_eq!(
            check(served.url.clone(), 303, Some(old.clone())).await,
            ExitCode::SUCCESS
        );
        served.server.abort();
        drop(served);

        // A stored hash edited (the level-4 hash over entries 0..16): after a restart
        // the proofs served for entries 16..256 are wrong.
        flip_bit(
            &database,
            "consortium_tiles",
            "level = 0 AND tile_index = 0",
            256 * 32 + 1,
        )
        .await;
        let served = serve_log(&database, 100).await;
        assert_eq!(
            check(served.url.clone(), 100, None).await,
            ExitCode::from(1)
        );
        let alarm = step(&served.url, &key).await.unwrap_err();
        assert!(alarm.contains("wrong inclusion proof"), "{alarm}");
        served.server.abort();
        drop(served);

        // A fork: another history under the same operator key, of the same size.
        let other = connect("fork.db").await;
        let forked = serve_log(&other, 99).await;
        publish_many(&forked.log, 1, 305).await;
        let mut mirror = mirror::Mirror::new(&forked.url, &key).expect("mirror");
        // The mirror knows the first log at size 306 (from the old checkpoint + 5).
        let first = connect("log.db").await;
        let flipped_back = {
            flip_bit(
                &first,
                "consortium_tiles",
                "level = 0 AND tile_index = 0",
                256 * 32 + 1,
            )
            .await;
            serve_log(&first, 100).await
        };
        mirror.root_url = format!("{}/v1/consortium", flipped_back.url);
        assert!(matches!(
            mirror.step().await.expect("step"),
            Ok(Observation::First { size: 306 })
        ));
        mirror.root_url = format!("{}/v1/consortium", forked.url);
        assert!(matches!(
            mirror.step().await.expect("step"),
            Err(mirror::Alarm::Fork(_))
        ));
        // verify --url with the old checkpoint of the first log fails on the fork too.
        assert_eq!(
            check(forked.url.clone(), 3, Some(old)).await,
            ExitCode::from(1)
        );
    });
}

async fn query_many(log: &tally_service::consortium::ConsortiumLog, first: u64, count: u64) {
    let member = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).expect("key");
    for sequence in first..first + count {
        let opening = IdentifierOpening::new(
            normalise(IdentifierKind::Phone, "+8613700000001", None).expect("phone"),
            [6; 16],
        );
        let action = Action::Query {
            identifier: opening.commitment(),
        };
        let request = SignedRequest::sign("cli", &member, sequence, DEMO_TIME, action);
        log.submit(request, Some(opening)).await.expect("query");
    }
}

#[test]
fn count_proofs_verify_and_the_mirror_catches_counts_the_log_does_not_give() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let directory = tempfile::tempdir().expect("directory");
        let url = format!("sqlite://{}", directory.path().join("log.db").display());
        let database = tally_store::Database::connect(&url).await.expect("connect");
        database.migrate().await.expect("migrate");
        let key = operator_signer().verifier().to_string();
        let served = serve_log(&database, 100).await;
        publish_many(&served.log, 1, 250).await;
        query_many(&served.log, 251, 7).await;

        // The member's count proof, online and from the file it wrote.
        let file = directory.path().join("count.txt");
        assert_eq!(
            verify::verify(&served.url, &key, None, None, Some(("bank-a", Some(&file))))
                .await
                .expect("verify"),
            ExitCode::SUCCESS
        );
        let proof =
            CountProof::parse(&std::fs::read_to_string(&file).expect("read")).expect("parse");
        assert_eq!((proof.leaf.queries, proof.leaf.publications), (7, 250));
        let count = |path: PathBuf| {
            verify_exit(Verify::Count {
                log_key: key.clone(),
                proof: path,
            })
        };
        assert_eq!(count(file.clone()), 0);
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&file, text.replace("queries 7", "queries 6")).expect("write");
        assert_eq!(count(file.clone()), 1);

        // An honest log: the mirror replays its 258 entries and agrees, whether it
        // fetches them in ranges (cut at the end of the log) or one per request.
        for entries_per_request in [mirror::ENTRIES_PER_REQUEST, 100, 1] {
            let mut mirror = mirror::Mirror::new(&served.url, &key).expect("mirror");
            mirror.entries_per_request = entries_per_request;
            assert!(matches!(
                mirror.step().await.expect("step"),
                Ok(Observation::First { size: 258 })
            ));
        }
        served.server.abort();
        drop(served);

        // A lying operator: honest entries and tree, a signed member map that hides
        // one of bank-a's queries. Count proofs against it verify (the signature is
        // the operator's), and the mirror is what catches it.
        let lying = serve_log_with(&database, 100, true).await;
        let alarm = step(&lying.url, &key).await.unwrap_err();
        assert!(alarm.contains("member counts"), "{alarm}");
        lying.server.abort();
        drop(lying);

        // The last query's result count edited in the database under an honest
        // service (after its start, before it read the entry): the mirror alarms.
        let served = serve_log(&database, 100).await;
        let length = served
            .log
            .read(|operator| operator.log().entry(257))
            .await
            .expect("read")
            .expect("entry")
            .expect("bytes")
            .len();
        served
            .log
            .read(|operator| operator.log().store().forget_cache())
            .await
            .expect("forget");
        flip_bit(
            &database,
            "consortium_entries",
            "entry_index = 257",
            length - 1,
        )
        .await;
        let alarm = step(&served.url, &key).await.unwrap_err();
        assert!(alarm.starts_with("TAMPERED"), "{alarm}");
    });
}

#[test]
fn verify_database_names_the_first_bad_entry_and_checks_the_stored_checkpoint() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let directory = tempfile::tempdir().expect("directory");
        let url = format!("sqlite://{}", directory.path().join("log.db").display());
        let database = tally_store::Database::connect(&url).await.expect("connect");
        database.migrate().await.expect("migrate");
        let served = serve_log(&database, 100).await;
        publish_many(&served.log, 1, 300).await;
        // A read queued after the last reply runs once the batch's checkpoint is stored.
        served.log.read(|_| ()).await.expect("read");
        let check = |key: SignerKey| {
            let database = database.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    verify::check_database(&database, &key.verifier())
                })
                .await
                .expect("join")
                .expect("readable")
            }
        };
        let lines = check(operator_signer()).await.expect("verified");
        assert!(lines[0].contains("size 301"), "{lines:?}");
        assert!(lines[1].starts_with("entries 301, tiles 3"), "{lines:?}");
        assert!(lines[2].starts_with("301 entries replayed"), "{lines:?}");
        // Through the command: exit 0.
        let key = operator_signer().verifier().to_string();
        assert_eq!(
            verify::verify_database(&url, &key).await.expect("runs"),
            ExitCode::SUCCESS
        );

        // Another operator key: the stored checkpoint is not signed by it.
        let stranger =
            SignerKey::from_seed("cli.tally.example/log", KeyType::Ed25519, [9; 32]).expect("key");
        let failure = check(stranger).await.unwrap_err();
        assert!(failure.starts_with("the stored checkpoint"), "{failure}");

        // Entries 7 and 200 edited: the first is named, and the command exits 1.
        flip_bit(&database, "consortium_entries", "entry_index = 200", 60).await;
        flip_bit(&database, "consortium_entries", "entry_index = 7", 60).await;
        let failure = check(operator_signer()).await.unwrap_err();
        assert_eq!(
            failure,
            "first bad entry 7: entry 7 does not hash to its leaf hash"
        );
        assert_eq!(
            verify::verify_database(&url, &key).await.expect("runs"),
            ExitCode::from(1)
        );
        flip_bit(&database, "consortium_entries", "entry_index = 7", 60).await;
        flip_bit(&database, "consortium_entries", "entry_index = 200", 60).await;
        assert!(check(operator_signer()).await.is_ok());

        // A stored middle hash edited: the tile is named.
        flip_bit(
            &database,
            "consortium_tiles",
            "level = 0 AND tile_index = 0",
            256 * 32 + 1,
        )
        .await;
        let failure = check(operator_signer()).await.unwrap_err();
        assert!(
            failure.starts_with("tile tile/0/000: middle hash 0"),
            "{failure}"
        );
        flip_bit(
            &database,
            "consortium_tiles",
            "level = 0 AND tile_index = 0",
            256 * 32 + 1,
        )
        .await;

        // The last entry and its leaf hash rewritten together: the store agrees with
        // itself, but not with the signed root.
        let tally_store::Database::Sqlite(pool) = &database else {
            panic!("SQLite");
        };
        let forged = b"forged entry".to_vec();
        sqlx::query("UPDATE consortium_entries SET bytes = $1 WHERE entry_index = 300")
            .bind(forged.clone())
            .execute(pool)
            .await
            .expect("update");
        let (mut tile,): (Vec<u8>,) =
            sqlx::query_as("SELECT bytes FROM consortium_tiles WHERE level = 0 AND tile_index = 1")
                .fetch_one(pool)
                .await
                .expect("select");
        tile[44 * 32..45 * 32].copy_from_slice(&leaf_hash(&forged).0);
        sqlx::query("UPDATE consortium_tiles SET bytes = $1 WHERE level = 0 AND tile_index = 1")
            .bind(tile)
            .execute(pool)
            .await
            .expect("update");
        let failure = check(operator_signer()).await.unwrap_err();
        assert!(
            failure.starts_with("the entries give root") && failure.contains("at size 301"),
            "{failure}"
        );
    });
}
