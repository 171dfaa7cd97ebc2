//! In-process HTTP tests (tower `oneshot`) of the consortium log's routes on SQLite and
//! PostgreSQL: every route, every error path with its stable code, membership through
//! HTTP (quorum, signatures, replays, suspension), and tampering with the stored log.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tally_consortium::{
    leaf_hash, open_checkpoint, verify_consistency, verify_inclusion, Action, BlindingKey, Hash,
    MemberKey, SignedRequest, SignerKey,
};
use tally_core::{Clock, ManualClock};
use tally_service::consortium::{ConsortiumLog, IntegrityState};
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;
use support::consortium::{
    config, encode, identifier_json, operator_key, publish_action, query_action, router, signer,
    Sequences, CONSORTIUM, TIME,
};
use support::send;

struct Harness {
    router: Router,
    test: TestDatabase,
    sequences: Sequences,
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        Harness {
            router: router(&test.database).await,
            test,
            sequences: Sequences::default(),
        }
    }

    /// Restarts the service over the same database (the log is replayed).
    async fn restart(&mut self) {
        self.router = router(&self.test.database).await;
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let answer = send(&self.router, request).await;
        (answer.status, answer.body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Vec<u8>) {
        self.send(support::request("GET", uri, None, None, None))
            .await
    }

    async fn get_json(&self, uri: &str) -> (StatusCode, Value) {
        let (status, bytes) = self.get(uri).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let uri = format!("/v1/consortium/{path}");
        let request = support::request("POST", &uri, None, None, Some(body.to_owned()));
        let (status, bytes) = self.send(request).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_raw(path, &body.to_string()).await
    }

    /// A request signed by `member` with its next sequence number.
    fn sign(&mut self, member: &SignerKey, action: Action) -> SignedRequest {
        self.sequences.sign(member, action)
    }

    async fn act(
        &mut self,
        path: &str,
        member: &SignerKey,
        action: Action,
        phone: Option<&str>,
    ) -> (StatusCode, Value) {
        let request = self.sign(member, action);
        self.post(path, support::consortium::body(&request, phone))
            .await
    }

    async fn checkpoint(&self) -> tally_consortium::Checkpoint {
        let (status, bytes) = self.get("/v1/consortium/checkpoint").await;
        assert_eq!(status, StatusCode::OK);
        open_checkpoint(
            std::str::from_utf8(&bytes).unwrap(),
            &operator_key().verifier(),
            &[],
        )
        .unwrap()
        .checkpoint
    }

    /// Fetches entry `index` and its inclusion proof at `size` and checks both against
    /// the signed root, as a member's client does.
    async fn verify_entry(&self, index: u64, size: u64, root: &Hash) -> Result<(), String> {
        let (status, bytes) = self.get(&format!("/v1/consortium/entries/{index}")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, proof) = self
            .get_json(&format!(
                "/v1/consortium/proofs/inclusion?index={index}&size={size}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        let leaf = Hash::from_base64(proof["leaf"].as_str().unwrap()).unwrap();
        if leaf_hash(&bytes) != leaf {
            return Err("the entry does not hash to the proof's leaf".into());
        }
        let hashes = hashes(&proof["hashes"]);
        verify_inclusion(index, size, &leaf, &hashes, root).map_err(|error| error.to_string())
    }
}

fn hashes(value: &Value) -> Vec<Hash> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| Hash::from_base64(hash.as_str().unwrap()).unwrap())
        .collect()
}

async fn flip_bit(database: &Database, table: &str, condition: &str, offset: usize) {
    flip_bit_in(database, table, "bytes", condition, offset).await;
}

async fn flip_bit_in(
    database: &Database,
    table: &str,
    column: &str,
    condition: &str,
    offset: usize,
) {
    let select = format!("SELECT {column} FROM {table} WHERE {condition}");
    let update = format!("UPDATE {table} SET {column} = $1 WHERE {condition}");
    tally_store::with_pool!(database, |pool| {
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
    })
}

tally_store::on_both_backends!(
    setup = Harness::new;
    records_queries_proofs_entries_and_tiles,
    admission_needs_the_quorum_and_suspension_stops_a_member,
    unsigned_wrongly_signed_and_replayed_requests_are_refused,
    bad_input_gets_its_code,
    an_edited_entry_or_hash_fails_verification,
    a_stored_snapshot_opens_the_log_and_an_edited_one_refuses_it,
    the_log_serves_its_own_openapi_document,
    a_tlog_tiles_client_rebuilds_the_signed_root_from_tiles_and_bundles,
    an_entry_edited_in_the_database_raises_the_integrity_alarm,
);

async fn records_queries_proofs_entries_and_tiles(mut harness: Harness) {
    let (a, b) = (signer("bank-a", 1), signer("bank-b", 2));
    let genesis = harness.checkpoint().await;
    assert_eq!(genesis.size, 1);
    let phone = "+86 138 0013 8000";
    let (status, body) = harness
        .act("records", &a, publish_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({"index": 1, "effect": {"kind": "published", "record": 1}})
    );

    let (status, body) = harness
        .act("queries", &b, query_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["index"], 2);
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["publisher"], "bank-a");
    assert_eq!(records[0]["risk_type"], "stolen_account");
    assert_eq!(records[0]["severity"], 4);
    assert_eq!(records[0]["published_at"], TIME);

    // The query is counted and readable.
    let (status, body) = harness
        .get_json("/v1/consortium/members/bank-b/query-count")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 1);
    assert_eq!(body["in_day"], 1);
    // ... and provable: the proof verifies offline against the operator's key, and says
    // the same count at the same tree size as the checkpoint served now.
    let proof = tally_consortium::CountProof::parse(body["proof"].as_str().unwrap()).unwrap();
    let opened = proof.verify(&operator_key().verifier(), &[]).unwrap();
    assert_eq!(proof.leaf.member, "bank-b");
    assert_eq!(proof.leaf.queries, 1);
    assert_eq!(body["tree_size"], opened.checkpoint.size);
    let (_, served) = harness.get("/v1/consortium/checkpoint").await;
    assert_eq!(String::from_utf8(served).unwrap(), proof.checkpoint);
    let mut wrong = proof.clone();
    wrong.leaf.queries = 0;
    assert!(wrong.verify(&operator_key().verifier(), &[]).is_err());

    // Only the publisher retracts; then the record is no longer live.
    let (status, body) = harness
        .act(
            "retractions",
            &b,
            Action::RetractRecord {
                record: 1,
                reason: "not mine".into(),
            },
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "not_the_publisher");
    let (status, body) = harness
        .act(
            "retractions",
            &a,
            Action::RetractRecord {
                record: 1,
                reason: "resolved".into(),
            },
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["effect"], json!({"kind": "retracted", "record": 1}));
    let (status, body) = harness
        .act("queries", &b, query_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["records"], json!([]));

    // Members.
    let (status, body) = harness.get_json("/v1/consortium/members").await;
    assert_eq!(status, StatusCode::OK);
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[1]["name"], "bank-b");
    assert_eq!(members[1]["status"], "active");
    assert_eq!(members[1]["queries_total"], 2);

    // Checkpoint, inclusion of every entry, consistency from the genesis checkpoint.
    let checkpoint = harness.checkpoint().await;
    assert_eq!(checkpoint.size, 5);
    for index in 0..5 {
        harness
            .verify_entry(index, 5, &checkpoint.root)
            .await
            .unwrap();
    }
    let (status, body) = harness
        .get_json("/v1/consortium/proofs/consistency?old=1&new=5")
        .await;
    assert_eq!(status, StatusCode::OK);
    verify_consistency(
        1,
        5,
        &hashes(&body["hashes"]),
        &genesis.root,
        &checkpoint.root,
    )
    .unwrap();
    // Without a size, the proof is for the current size.
    let (_, body) = harness
        .get_json("/v1/consortium/proofs/inclusion?index=3")
        .await;
    assert_eq!(body["size"], 5);

    // The partial level-0 tile (C2SP tlog-tiles path) holds the five leaf hashes.
    let (status, tile) = harness.get("/v1/consortium/tile/0/000.p/5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tile.len(), 5 * 32);
    let (_, entry) = harness.get("/v1/consortium/entries/2").await;
    assert_eq!(tile[64..96], leaf_hash(&entry).0);

    // A range of entries in one response: each a 4-byte length and its bytes, cut at
    // the end of the log.
    let (status, range) = harness.get("/v1/consortium/entries?start=1&count=9").await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = Vec::new();
    for index in 1..5 {
        let (_, bytes) = harness
            .get(&format!("/v1/consortium/entries/{index}"))
            .await;
        expected.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        expected.extend_from_slice(&bytes);
    }
    assert_eq!(range, expected);
    let (_, range) = harness.get("/v1/consortium/entries?start=2&count=1").await;
    assert_eq!(range[4..], entry);

    // The state survives a restart.
    harness.restart().await;
    assert_eq!(harness.checkpoint().await.root, checkpoint.root);
    let (status, _) = harness.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

async fn admission_needs_the_quorum_and_suspension_stops_a_member(mut harness: Harness) {
    let (a, b, d) = (
        signer("bank-a", 1),
        signer("bank-b", 2),
        signer("bank-d", 4),
    );
    let candidate = signer("bank-c", 3);
    let phone = "+8613900000000";
    // Proposed by A: one approval of the two needed.
    let (status, body) = harness
        .act(
            "proposals",
            &a,
            Action::ProposeAdmission {
                candidate: MemberKey {
                    name: "bank-c".into(),
                    public_key: candidate.verifier().public_key(),
                },
            },
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["effect"]["carried_out"], false);
    let proposal = body["index"].as_u64().unwrap();
    // Below the quorum, the candidate is not a member.
    let (status, body) = harness
        .act("records", &candidate, publish_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "not_a_member");
    // A second approval from A is refused; B's carries it out.
    let (status, body) = harness
        .act("approvals", &a, Action::Approve { proposal }, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_approved");
    let (status, body) = harness
        .act("approvals", &b, Action::Approve { proposal }, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["effect"],
        json!({"kind": "approved", "proposal": proposal, "carried_out": true})
    );
    // The candidate signs its own sequence from 1 again: the refused request was not logged.
    harness.sequences.start_again("bank-c");
    let (status, body) = harness
        .act("records", &candidate, publish_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An approval of an unknown proposal.
    let (status, body) = harness
        .act("approvals", &b, Action::Approve { proposal: 999 }, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown_reference");

    // Suspend D: proposed by A, approved by B.
    let (status, body) = harness
        .act(
            "proposals",
            &a,
            Action::ProposeSuspension {
                member: "bank-d".into(),
                reason: "leaked data".into(),
            },
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let proposal = body["index"].as_u64().unwrap();
    let (status, body) = harness
        .act("approvals", &b, Action::Approve { proposal }, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["effect"]["carried_out"], true);
    // A suspended member can neither publish nor query.
    let (status, body) = harness
        .act("records", &d, publish_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "member_suspended");
    let (status, body) = harness
        .act("queries", &d, query_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "member_suspended");
    let (_, body) = harness.get_json("/v1/consortium/members").await;
    let statuses: Vec<_> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| (member["name"].clone(), member["status"].clone()))
        .collect();
    assert!(statuses.contains(&(json!("bank-d"), json!("suspended"))));
    assert!(statuses.contains(&(json!("bank-c"), json!("active"))));

    // Quotas: a member may query 5 times a day.
    for _ in 0..5 {
        let (status, _) = harness
            .act("queries", &a, query_action(phone), Some(phone))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = harness
        .act("queries", &a, query_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
}

async fn unsigned_wrongly_signed_and_replayed_requests_are_refused(mut harness: Harness) {
    let a = signer("bank-a", 1);
    let phone = "+8613900000001";
    let size = harness.checkpoint().await.size;
    // Unsigned: the signature field is all zeros.
    let mut unsigned = harness.sign(&a, publish_action(phone));
    unsigned.signature = [0; 64];
    let (status, body) = harness
        .post(
            "records",
            json!({"request": encode(&unsigned), "identifier": identifier_json(phone)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "bad_signature");
    // Signed by another key under bank-a's name.
    let impostor = signer("bank-a", 66);
    let forged = SignedRequest::sign(CONSORTIUM, &impostor, 5, TIME, publish_action(phone));
    let (status, body) = harness
        .post(
            "records",
            json!({"request": encode(&forged), "identifier": identifier_json(phone)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "bad_signature");
    // A valid request whose signed bytes were altered (the severity) after signing.
    let mut altered = SignedRequest::sign(CONSORTIUM, &a, 6, TIME, publish_action(phone));
    if let Action::PublishRecord { severity, .. } = &mut altered.action {
        *severity = 5;
    }
    let (status, body) = harness
        .post(
            "records",
            json!({"request": encode(&altered), "identifier": identifier_json(phone)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Signed for another consortium.
    let elsewhere = SignedRequest::sign("other", &a, 7, TIME, publish_action(phone));
    let (status, body) = harness
        .post(
            "records",
            json!({"request": encode(&elsewhere), "identifier": identifier_json(phone)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Nothing was logged.
    assert_eq!(harness.checkpoint().await.size, size);
    // A good request, then the same bytes again: a replay.
    let good = SignedRequest::sign(CONSORTIUM, &a, 8, TIME, publish_action(phone));
    let body = json!({"request": encode(&good), "identifier": identifier_json(phone)});
    let (status, _) = harness.post("records", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = harness.post("records", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "replayed_request");
    // An older sequence number is a replay too.
    let older = SignedRequest::sign(CONSORTIUM, &a, 7, TIME, publish_action(phone));
    let (status, answer) = harness
        .post(
            "records",
            json!({"request": encode(&older), "identifier": identifier_json(phone)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(harness.checkpoint().await.size, size + 1);
}

async fn bad_input_gets_its_code(mut harness: Harness) {
    let a = signer("bank-a", 1);
    let phone = "+8613900000002";
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "records",
            "{".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "records",
            json!({"request": "", "extra": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            "records",
            json!({"identifier": null}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "records",
            json!({"request": "not base64!"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_base64",
        ),
        (
            "records",
            json!({"request": "AQID"}).to_string(),
            StatusCode::BAD_REQUEST,
            "malformed_entry",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = harness.post_raw(path, &body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    // A publication on the query route, a query without its identifier, an approval
    // with one, a bad salt, an identifier that does not open the commitment, an
    // identifier that is not a phone number.
    let publication = encode(&harness.sign(&a, publish_action(phone)));
    let cases = vec![
        (
            "queries",
            json!({"request": publication.clone(), "identifier": identifier_json(phone)}),
            StatusCode::BAD_REQUEST,
            "wrong_route",
        ),
        (
            "records",
            json!({"request": publication.clone()}),
            StatusCode::BAD_REQUEST,
            "identifier_required",
        ),
        (
            "records",
            json!({"request": publication.clone(), "identifier": {"kind": "phone", "value": phone, "salt": "00"}}),
            StatusCode::BAD_REQUEST,
            "invalid_salt",
        ),
        (
            "records",
            json!({"request": publication.clone(), "identifier": {"kind": "planet", "value": phone, "salt": hex::encode([5u8; 16])}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identifier",
        ),
        (
            "records",
            json!({"request": publication.clone(), "identifier": {"kind": "phone", "value": "hello", "salt": hex::encode([5u8; 16])}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identifier",
        ),
        (
            "records",
            json!({"request": publication.clone(), "identifier": identifier_json("+8613900000003")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "commitment_mismatch",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = harness.post(path, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let approval = encode(&harness.sign(&a, Action::Approve { proposal: 1 }));
    let (status, answer) = harness
        .post(
            "approvals",
            json!({"request": approval, "identifier": identifier_json(phone)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "unexpected_identifier");
    // Out-of-range severity.
    let mut action = publish_action(phone);
    if let Action::PublishRecord { severity, .. } = &mut action {
        *severity = 9;
    }
    let (status, answer) = harness.act("records", &a, action, Some(phone)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_field");

    // Media type and size.
    let (status, bytes) = harness
        .send(
            Request::post("/v1/consortium/records")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(String::from_utf8(bytes)
        .unwrap()
        .contains("unsupported_media_type"));
    let huge = json!({"request": "A".repeat(100_000)}).to_string();
    let (status, answer) = harness.post_raw("records", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["code"], "payload_too_large");

    // Reads.
    let cases = [
        (
            "/v1/consortium/proofs/inclusion?index=5&size=1",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/v1/consortium/proofs/inclusion?index=0&size=9",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/v1/consortium/proofs/inclusion?index=x",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/consortium/proofs/inclusion?index=0&color=red",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/consortium/proofs/consistency?old=3&new=1",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/v1/consortium/proofs/consistency",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/consortium/entries/7",
            StatusCode::NOT_FOUND,
            "entry_not_found",
        ),
        (
            "/v1/consortium/entries/-1",
            StatusCode::BAD_REQUEST,
            "invalid_index",
        ),
        (
            "/v1/consortium/entries?start=7",
            StatusCode::NOT_FOUND,
            "entry_not_found",
        ),
        (
            "/v1/consortium/entries?begin=0",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/consortium/tile/0/005",
            StatusCode::NOT_FOUND,
            "tile_not_found",
        ),
        (
            "/v1/consortium/tile/300/000",
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            "/v1/consortium/tile/0/5",
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            "/v1/consortium/members/bank-z/query-count",
            StatusCode::NOT_FOUND,
            "member_not_found",
        ),
        ("/v1/consortium/nothing", StatusCode::NOT_FOUND, "not_found"),
    ];
    for (uri, status, code) in cases {
        let (got, answer) = harness.get_json(uri).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{uri}"
        );
    }
    let (status, bytes) = harness
        .send(
            Request::delete("/v1/consortium/checkpoint")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(String::from_utf8(bytes)
        .unwrap()
        .contains("method_not_allowed"));
    // Nothing above was logged: the log holds only the genesis entry.
    assert_eq!(harness.checkpoint().await.size, 1);
}

async fn an_edited_entry_or_hash_fails_verification(mut harness: Harness) {
    let a = signer("bank-a", 1);
    for number in 0..300 {
        let phone = format!("+86137{number:08}");
        let (status, _) = harness
            .act("records", &a, publish_action(&phone), Some(&phone))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let checkpoint = harness.checkpoint().await;
    assert_eq!(checkpoint.size, 301);
    // An entry edited in the database (before any entry was read: the service keeps
    // the entries it read ahead):
    // its bytes no longer hash to the leaf the signed tree commits to.
    flip_bit(
        &harness.test.database,
        "consortium_entries",
        "entry_index = 7",
        60,
    )
    .await;
    let error = harness
        .verify_entry(7, 301, &checkpoint.root)
        .await
        .unwrap_err();
    assert!(error.contains("leaf"), "{error}");
    // Put it back.
    flip_bit(
        &harness.test.database,
        "consortium_entries",
        "entry_index = 7",
        60,
    )
    .await;

    harness
        .verify_entry(5, 301, &checkpoint.root)
        .await
        .unwrap();
    harness
        .verify_entry(100, 301, &checkpoint.root)
        .await
        .unwrap();

    // A stored hash edited in the database: the level-4 hash over leaves 0..16 in tile
    // 0/0. Replays check leaves, so the service restarts; the proofs it then serves for
    // entries 16..256 use the edited hash and fail against the signed root.
    flip_bit(
        &harness.test.database,
        "consortium_tiles",
        "level = 0 AND tile_index = 0",
        256 * 32 + 1,
    )
    .await;
    harness.restart().await;
    let restarted = harness.checkpoint().await;
    assert_eq!(
        restarted.root, checkpoint.root,
        "the root is from higher hashes"
    );
    harness
        .verify_entry(5, 301, &checkpoint.root)
        .await
        .unwrap();
    let error = harness
        .verify_entry(100, 301, &checkpoint.root)
        .await
        .unwrap_err();
    assert!(error.contains("root"), "{error}");
}

async fn a_stored_snapshot_opens_the_log_and_an_edited_one_refuses_it(mut harness: Harness) {
    let (a, b) = (signer("bank-a", 1), signer("bank-b", 2));
    for number in 0..30 {
        let phone = format!("+86137{number:08}");
        let (status, _) = harness
            .act("records", &a, publish_action(&phone), Some(&phone))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let phone = "+8613700000003";
    let (status, _) = harness
        .act("queries", &b, query_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A snapshot as the service writes one every tenth of the log (at least 100,000
    // entries), through the SQL store itself.
    let database = harness.test.database.clone();
    tokio::task::spawn_blocking(move || {
        let store = tally_store::consortium::SqlLogStore::connect(&database).unwrap();
        let mut operator =
            tally_consortium::Operator::open(store, operator_key(), BlindingKey::new(1, [7; 32]))
                .unwrap();
        operator.write_snapshot().unwrap();
    })
    .await
    .unwrap();
    let (status, _) = harness
        .act("queries", &b, query_action(phone), Some(phone))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = harness.get("/v1/consortium/checkpoint").await;
    let (_, count_before) = harness
        .get_json("/v1/consortium/members/bank-b/query-count")
        .await;

    // Restarted from the snapshot plus one entry: the same checkpoint and counts.
    harness.restart().await;
    let (_, after) = harness.get("/v1/consortium/checkpoint").await;
    assert_eq!(after, before);
    let (_, count_after) = harness
        .get_json("/v1/consortium/members/bank-b/query-count")
        .await;
    assert_eq!(count_after, count_before);
    assert_eq!(count_after["total"], 2);

    // A byte of the stored snapshot edited: the service refuses to start.
    flip_bit_in(
        &harness.test.database,
        "consortium_snapshot",
        "state",
        "id = 1",
        40,
    )
    .await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        jiff::Timestamp::from_second(TIME as i64).unwrap(),
    ));
    let refused = ConsortiumLog::start(&harness.test.database, clock, config()).await;
    assert!(refused.is_err());
}

/// Every `(method, path)` of `.route("path", method(handler))` in the part of `source`
/// from `start` to the first `end` after it.
fn routes_in(source: &str, start: &str, end: &str) -> Vec<(String, String)> {
    let from = source.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let text = &source[from..];
    let mut rest = &text[..text.find(end).unwrap_or_else(|| panic!("no {end:?}"))];
    let mut routes = Vec::new();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.find('"').unwrap() + 1;
        let close = open + rest[open..].find('"').unwrap();
        let path = rest[open..close].to_string();
        rest = &rest[close..];
        let method = ["get(", "post(", "delete(", "put(", "patch("]
            .iter()
            .filter_map(|method| rest.find(method).map(|at| (at, method)))
            .min()
            .unwrap()
            .1
            .trim_end_matches('(');
        routes.push((method.to_string(), path));
    }
    routes
}

/// `GET /v1/consortium/openapi.json`: every route of the log's router (read from
/// `consortium_app`'s source, so that a route added without an annotation fails here) is
/// in the document with its method, the document has no other, and no bearer security:
/// members sign their requests.
async fn the_log_serves_its_own_openapi_document(harness: Harness) {
    let (status, document) = harness.get_json("/v1/consortium/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["info"]["title"], "Tally consortium log");
    let source = include_str!("../src/lib.rs");
    let consortium_app = &source[source.find("fn consortium_app(").unwrap()..];
    let routes: Vec<(String, String)> = routes_in(consortium_app, "let v1 =", ";")
        .into_iter()
        .filter(|(_, path)| path != "/openapi.json")
        // A wildcard (`{*index}`) is a plain parameter in OpenAPI.
        .map(|(method, path)| (method, format!("/v1/consortium{}", path.replace("{*", "{"))))
        .collect();
    assert!(routes.len() >= 13, "{routes:?}");
    for (method, path) in &routes {
        let operation = &document["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is not in /v1/consortium/openapi.json"
        );
        assert_eq!(operation["tags"], json!(["consortium"]), "{path}");
        assert!(operation.get("security").is_none(), "{path}");
    }
    let documented = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|key| ["get", "post", "delete", "put", "patch"].contains(&key.as_str()))
        .count();
    assert_eq!(documented, routes.len());
    assert!(document.get("security").is_none());
    assert!(document["components"].get("securitySchemes").is_none());
    assert!(!document.to_string().contains("bearer"));
    // The main API's document does not carry the log's routes.
    let main =
        serde_json::to_value(<tally_server::openapi::ApiDocument as utoipa::OpenApi>::openapi())
            .unwrap();
    assert!(main["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|path| !path.starts_with("/v1/consortium")));
}

/// The tlog-tiles path of a resource, written here from the specification
/// (https://c2sp.org/tlog-tiles) rather than taken from Tally, as a client computes it.
fn tlog_tiles_path(head: &str, index: u64, width: u64) -> String {
    let mut elements = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        elements.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    elements.reverse();
    let mut path = format!("tile/{head}/{}", elements.join("/"));
    if width < 256 {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

/// The hash of the perfect subtree of height `height` at position `index`, from the
/// fetched tiles: the `2^(height % 8)` hashes below it in the tile of level
/// `height / 8`, hashed pairwise up.
fn subtree_hash(tiles: &BTreeMap<(u32, u64), Vec<Hash>>, height: u32, index: u64) -> Hash {
    let level = height / 8;
    let count = 1u64 << (height % 8);
    let mut hashes: Vec<Hash> = (index * count..(index + 1) * count)
        .map(|position| tiles[&(level, position / 256)][(position % 256) as usize])
        .collect();
    while hashes.len() > 1 {
        hashes = hashes
            .chunks(2)
            .map(|pair| tally_consortium::node_hash(&pair[0], &pair[1]))
            .collect();
    }
    hashes[0]
}

/// `GET <prefix>/checkpoint`, the tiles and the entry bundles at the paths a tlog-tiles
/// client computes from the checkpoint's size: every entry hashes to its leaf, and the
/// tiles give the signed root (RFC 6962: the perfect subtrees of the size's binary
/// decomposition, left to right, folded from the right).
async fn a_tlog_tiles_client_rebuilds_the_signed_root_from_tiles_and_bundles(mut harness: Harness) {
    // The specification's own example of an index.
    assert_eq!(tlog_tiles_path("0", 1_234_067, 256), "tile/0/x001/x234/067");
    let a = signer("bank-a", 1);
    for number in 0..300 {
        let phone = format!("+86137{number:08}");
        let (status, _) = harness
            .act("records", &a, publish_action(&phone), Some(&phone))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let prefix = "/v1/consortium";
    let response = send(
        &harness.router,
        support::request("GET", &format!("{prefix}/checkpoint"), None, None, None),
    )
    .await;
    assert_eq!(
        response.headers["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers["cache-control"], "no-cache");
    let checkpoint = harness.checkpoint().await;
    let size = checkpoint.size;
    assert_eq!(size, 301);

    // Level l: size / 256^(l+1) full tiles, then one of width (size / 256^l) mod 256.
    let mut tiles: BTreeMap<(u32, u64), Vec<Hash>> = BTreeMap::new();
    let mut level = 0u32;
    while size >> (8 * level) > 0 {
        let hashes = size >> (8 * level);
        let (full, partial) = (hashes / 256, hashes % 256);
        let widths = (0..full)
            .map(|index| (index, 256))
            .chain((partial > 0).then_some((full, partial)));
        for (index, width) in widths {
            let path = tlog_tiles_path(&level.to_string(), index, width);
            let response = send(
                &harness.router,
                support::request("GET", &format!("{prefix}/{path}"), None, None, None),
            )
            .await;
            assert_eq!(response.status, StatusCode::OK, "{path}");
            assert_eq!(response.headers["content-type"], "application/octet-stream");
            assert!(response.headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable"));
            assert_eq!(response.body.len() as u64, width * 32, "{path}");
            let tile: Vec<Hash> = response
                .body
                .chunks(32)
                .map(|hash| Hash::from_slice(hash).unwrap())
                .collect();
            tiles.insert((level, index), tile);
        }
        level += 1;
    }
    // 301 entries: a full level-0 tile, a partial one of 45, a level-1 tile of width 1.
    assert_eq!(
        tiles
            .iter()
            .map(|(key, tile)| (*key, tile.len()))
            .collect::<Vec<_>>(),
        vec![((0, 0), 256), ((0, 1), 45), ((1, 0), 1)]
    );
    // A level-1 hash is the root of the full level-0 tile below it.
    assert_eq!(tiles[&(1, 0)][0], subtree_hash(&tiles, 8, 0));

    // Entry bundles: big-endian u16 lengths, each entry hashing to its level-0 leaf.
    for (index, width) in [(0u64, 256u64), (1, 45)] {
        let path = tlog_tiles_path("entries", index, width);
        let (status, bundle) = harness.get(&format!("{prefix}/{path}")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let mut rest = bundle.as_slice();
        let mut count = 0;
        while !rest.is_empty() {
            let length = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let entry = &rest[2..2 + length];
            assert_eq!(
                leaf_hash(entry),
                tiles[&(0, index)][count],
                "{path} {count}"
            );
            let (_, single) = harness
                .get(&format!("{prefix}/entries/{}", index * 256 + count as u64))
                .await;
            assert_eq!(entry, single.as_slice());
            rest = &rest[2 + length..];
            count += 1;
        }
        assert_eq!(count as u64, width);
    }

    // The root: 301 = 256 + 32 + 8 + 4 + 1.
    let mut offset = 0u64;
    let mut subtrees = Vec::new();
    for height in (0..64u32).rev() {
        if size & (1 << height) != 0 {
            subtrees.push(subtree_hash(&tiles, height, offset >> height));
            offset += 1 << height;
        }
    }
    let mut root = *subtrees.last().unwrap();
    for subtree in subtrees.iter().rev().skip(1) {
        root = tally_consortium::node_hash(subtree, &root);
    }
    assert_eq!(root, checkpoint.root, "the tiles give the signed root");

    // A partial tile of an earlier checkpoint's size is the start of today's; one wider
    // than the log, or a path in another spelling, is not served.
    let (status, earlier) = harness.get(&format!("{prefix}/tile/0/001.p/10")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(earlier.len(), 10 * 32);
    for (path, expected, code) in [
        ("tile/0/001.p/46", StatusCode::NOT_FOUND, "tile_not_found"),
        ("tile/0/002", StatusCode::NOT_FOUND, "tile_not_found"),
        (
            "tile/entries/001.p/46",
            StatusCode::NOT_FOUND,
            "tile_not_found",
        ),
        ("tile/entries/001", StatusCode::NOT_FOUND, "tile_not_found"),
        ("tile/0/1", StatusCode::BAD_REQUEST, "invalid_tile"),
        ("tile/0/x000/001", StatusCode::BAD_REQUEST, "invalid_tile"),
        ("tile/00/001", StatusCode::BAD_REQUEST, "invalid_tile"),
        ("tile/0/001.p/256", StatusCode::BAD_REQUEST, "invalid_tile"),
        (
            "tile/entries/1.p/5",
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
    ] {
        let (status, body) = harness.get_json(&format!("{prefix}/{path}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (expected, Some(code)),
            "{path}"
        );
    }
}

/// The operator re-reads its stored log on a schedule: an entry edited in the database is
/// an alarm at the next check (the status route names the entry, the metric counts it),
/// and the log is intact again once the entry is put back.
async fn an_entry_edited_in_the_database_raises_the_integrity_alarm(mut harness: Harness) {
    // The process's metrics recorder, as `tally consortium serve` installs it at start.
    let _ = tally_server::metrics::handle();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        jiff::Timestamp::from_second(TIME as i64).unwrap(),
    ));
    let mut config = config();
    config.integrity_check_interval_seconds = 1;
    let (log, _) = ConsortiumLog::start(&harness.test.database, clock, config)
        .await
        .unwrap();
    harness.router = tally_server::consortium_app(
        tally_server::routes::consortium::ConsortiumAppState::new(log.clone()),
    );
    let a = signer("bank-a", 1);
    for number in 0..20 {
        let phone = format!("+86137{number:08}");
        let (status, _) = harness
            .act("records", &a, publish_action(&phone), Some(&phone))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let status = log.check_integrity().await.unwrap();
    assert_eq!(status.state, IntegrityState::Intact);
    assert_eq!((status.tree_size, status.entries), (21, 21));
    let (code, body) = harness.get_json("/v1/consortium/status").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["tree_size"], 21);
    assert_eq!(body["integrity"]["state"], "intact");
    assert_eq!(body["integrity"]["interval_seconds"], 1);
    // The latest checkpoint is stored beside the log (a read queued after the last reply
    // runs once it is), as served.
    log.read(|_| ()).await.unwrap();
    let database = harness.test.database.clone();
    let stored = tokio::task::spawn_blocking(move || {
        tally_store::consortium::SqlLogStore::connect(&database)
            .unwrap()
            .read_checkpoint()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(stored, Some((21, log.checkpoint())));

    // An entry edited in the database: the next scheduled check alarms, naming it.
    let mut changes = log.integrity_changes();
    flip_bit(
        &harness.test.database,
        "consortium_entries",
        "entry_index = 7",
        60,
    )
    .await;
    changes.mark_unchanged();
    let alarmed = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            changes.changed().await.unwrap();
            let status = changes.borrow_and_update().clone();
            if status.state == IntegrityState::Tampered {
                return status;
            }
        }
    })
    .await
    .expect("a scheduled check sees the edit");
    assert_eq!(alarmed.first_bad_entry, Some(7));
    assert!(alarmed.alarms >= 1);
    let (_, body) = harness.get_json("/v1/consortium/status").await;
    assert_eq!(body["integrity"]["state"], "tampered");
    assert_eq!(body["integrity"]["first_bad_entry"], 7);
    assert_eq!(
        body["integrity"]["detail"],
        "entry 7 does not hash to its leaf hash"
    );
    let (code, metrics) = harness.get("/metrics").await;
    assert_eq!(code, StatusCode::OK);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("tally_consortium_integrity_alarms_total"),
        "{metrics}"
    );

    // A stored tile edited instead (the level-4 hash over entries 0..16): named too.
    flip_bit(
        &harness.test.database,
        "consortium_entries",
        "entry_index = 7",
        60,
    )
    .await;
    flip_bit(
        &harness.test.database,
        "consortium_tiles",
        "level = 0 AND tile_index = 0",
        21 * 32 + 1,
    )
    .await;
    let status = log.check_integrity().await.unwrap();
    assert_eq!(status.state, IntegrityState::Tampered);
    assert_eq!(status.first_bad_entry, None);
    assert_eq!(
        status.detail.as_deref(),
        Some("tile tile/0/000: middle hash 0 is not the root of hashes 0..16")
    );

    // Put back: intact again.
    flip_bit(
        &harness.test.database,
        "consortium_tiles",
        "level = 0 AND tile_index = 0",
        21 * 32 + 1,
    )
    .await;
    let status = log.check_integrity().await.unwrap();
    assert_eq!(status.state, IntegrityState::Intact, "{:?}", status.detail);
}
