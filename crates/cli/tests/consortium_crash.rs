//! Crash test of `tally consortium serve`: members send signed publications and queries
//! concurrently, the process is killed with SIGKILL mid-load, restarted on the same
//! database, and every request is sent again byte for byte. Every acknowledged entry must
//! be in the log at the index it was acknowledged at, every request must be in the log
//! exactly once (a retry of one that was committed is refused as a replay), and the log
//! must verify: the checkpoint, a mirror's replay of every entry (tree, rules, member
//! map) and each member's query count proof.
//! Runs on SQLite and on PostgreSQL (`TALLY_TEST_DATABASE_URL`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tally_consortium::{
    normalise, Action, CountProof, Entry, IdentifierKind, IdentifierOpening, KeyType, RiskType,
    SignedRequest, SignerKey,
};
use tally_store::testing::TestDatabase;

mod support;
use support::crash::Clients;
use support::{free_port, run_binary, spawn, wait_until_answering};
const CONSORTIUM: &str = "crash";
/// One client task per member: a member's requests are sent in sequence order.
const MEMBERS: usize = 8;
const REQUESTS_PER_MEMBER: usize = 150;
/// Acknowledged requests after which the server is killed.
const KILL_AFTER: usize = 300;
/// Every fifth request is a query, the others publications.
const QUERY_EVERY: usize = 5;

fn member_key(member: usize) -> SignerKey {
    SignerKey::from_seed(
        &format!("member-{member}"),
        KeyType::Ed25519,
        [member as u8 + 1; 32],
    )
    .unwrap()
}

fn operator_key() -> SignerKey {
    SignerKey::from_seed("crash.tally.example/log", KeyType::Ed25519, [99; 32]).unwrap()
}

/// Keys and genesis files in `directory`.
fn write_files(directory: &std::path::Path) {
    std::fs::write(
        directory.join("operator.key"),
        operator_key().to_secret_string(),
    )
    .unwrap();
    std::fs::write(
        directory.join("blinding.key"),
        format!("1 {}", "ab".repeat(32)),
    )
    .unwrap();
    let founders: Vec<String> = (0..MEMBERS)
        .map(|member| member_key(member).verifier().to_string())
        .collect();
    let genesis = json!({
        "consortium": CONSORTIUM,
        "founders": founders,
        "quorum": [1, 2],
        "query_quota_per_day": 100_000,
        "proposal_lifetime_seconds": 86_400,
        "request_skew_seconds_max": 3_600,
    });
    std::fs::write(directory.join("genesis.json"), genesis.to_string()).unwrap();
}

fn start_server(url: &str, port: u16, directory: &std::path::Path) -> Child {
    let listen = format!("127.0.0.1:{port}");
    let arguments = [
        "consortium",
        "serve",
        "--database-url",
        url,
        "--listen",
        &listen,
        "--operator-key",
        "operator.key",
        "--blinding-key",
        "blinding.key",
        "--genesis",
        "genesis.json",
    ];
    spawn(&arguments, directory, &[])
}

async fn wait_until_serving(client: &reqwest::Client, base: &str) {
    let url = format!("{base}/v1/consortium/checkpoint");
    let timeout = Duration::from_secs(120);
    wait_until_answering(client, &url, timeout, "the log did not start serving").await;
}

/// One member request as sent: its route and JSON body.
#[derive(Clone)]
struct Prepared {
    path: &'static str,
    body: Value,
}

/// Every request of every member, signed once (retries resend the same bytes).
fn prepare(time: u64) -> Vec<Vec<Prepared>> {
    (0..MEMBERS)
        .map(|member| {
            let key = member_key(member);
            (1..=REQUESTS_PER_MEMBER)
                .map(|sequence| {
                    let phone = format!("+8613{member}{:08}", sequence % 40);
                    let identifier = normalise(IdentifierKind::Phone, &phone, None).unwrap();
                    let salt = [sequence as u8; 16];
                    let opening = IdentifierOpening::new(identifier, salt);
                    let (path, action) = if sequence % QUERY_EVERY == 0 {
                        (
                            "queries",
                            Action::Query {
                                identifier: opening.commitment(),
                            },
                        )
                    } else {
                        (
                            "records",
                            Action::PublishRecord {
                                identifier: opening.commitment(),
                                risk_type: RiskType::Fraud,
                                severity: 3,
                                expires_at: time + 86_400,
                                evidence_reference: format!("case {member}-{sequence}"),
                            },
                        )
                    };
                    let request =
                        SignedRequest::sign(CONSORTIUM, &key, sequence as u64, time, action);
                    Prepared {
                        path,
                        body: json!({
                            "request": base64::engine::general_purpose::STANDARD
                                .encode(request.to_bytes()),
                            "identifier": {
                                "kind": "phone",
                                "value": phone,
                                "salt": hex::encode(salt),
                            },
                        }),
                    }
                })
                .collect()
        })
        .collect()
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    request: &Prepared,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client
        .post(format!("{base}/v1/consortium/{}", request.path))
        .json(&request.body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn crash_and_recover(url: String) {
    let directory = tempfile::tempdir().unwrap();
    write_files(directory.path());
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let requests = Arc::new(prepare(time));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(&url, port, directory.path());
    wait_until_serving(&client, &base).await;

    // Drive the members until the server dies under them. Acknowledged: (member,
    // sequence) -> the log index of the reply.
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<BTreeMap<(usize, usize), u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for member in 0..MEMBERS {
        let (client, base, requests) = (reqwest::Client::new(), base.clone(), requests.clone());
        let (count, dead, acknowledged) = (
            acknowledged_count.clone(),
            dead.clone(),
            acknowledged.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for (offset, request) in requests[member].iter().enumerate() {
                if dead.load(Ordering::SeqCst) {
                    break;
                }
                match send(&client, &base, request).await {
                    Ok((200 | 201, reply)) => {
                        let index = reply["index"].as_u64().unwrap();
                        acknowledged
                            .lock()
                            .unwrap()
                            .insert((member, offset + 1), index);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, reply)) => panic!("member {member} refused: {status} {reply}"),
                    // The server died mid-request: the rest is for after the restart.
                    Err(_) => break,
                }
            }
        }));
    }
    let clients = Clients {
        acknowledged: acknowledged_count,
        dead,
        tasks,
    };
    let message = format!("the load never reached {KILL_AFTER} requests");
    let (timeout, poll) = (Duration::from_secs(300), Duration::from_millis(2));
    clients
        .kill_server_at(&mut server, KILL_AFTER, timeout, poll, &message)
        .await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    let total = MEMBERS * REQUESTS_PER_MEMBER;
    assert!(acknowledged.len() >= KILL_AFTER);
    assert!(
        acknowledged.len() < total,
        "the server was killed after the load ended"
    );

    // Restart on the same database and send every request again, in each member's order.
    let mut server = start_server(&url, port, directory.path());
    wait_until_serving(&client, &base).await;
    let mut retries = Vec::new();
    for member in 0..MEMBERS {
        let (client, base, requests) = (reqwest::Client::new(), base.clone(), requests.clone());
        retries.push(tokio::spawn(async move {
            let mut replayed = Vec::new();
            for (offset, request) in requests[member].iter().enumerate() {
                let (status, reply) = send(&client, &base, request).await.unwrap();
                match status {
                    200 | 201 => {}
                    // Already committed before the crash (acknowledged or not).
                    409 if reply["error"]["code"] == "replayed_request" => {
                        replayed.push((member, offset + 1))
                    }
                    _ => panic!(
                        "retry of member {member} request {}: {status} {reply}",
                        offset + 1
                    ),
                }
            }
            replayed
        }));
    }
    let mut replayed = std::collections::BTreeSet::new();
    for retry in retries {
        replayed.extend(retry.await.unwrap());
    }
    // Every acknowledged request was committed, so its retry is refused as a replay (not
    // merely as many replays as acknowledgements: each one by name).
    for request in acknowledged.keys() {
        assert!(
            replayed.contains(request),
            "acknowledged request {request:?} was not refused as a replay on retry"
        );
    }
    let replays = replayed.len();

    // The log holds the genesis and every request exactly once, each acknowledged one at
    // its acknowledged index.
    let mut entries = Vec::new();
    while entries.len() < total + 1 {
        let bytes = client
            .get(format!(
                "{base}/v1/consortium/entries?start={}",
                entries.len()
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut rest = &bytes[..];
        assert!(
            !rest.is_empty(),
            "the log ends at {} entries",
            entries.len()
        );
        while !rest.is_empty() {
            let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            entries.push(Entry::decode(&rest[4..4 + length]).unwrap());
            rest = &rest[4 + length..];
        }
    }
    assert_eq!(entries.len(), total + 1);
    let mut seen: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate().skip(1) {
        let request = entry.body.request().unwrap();
        let member: usize = request.member["member-".len()..].parse().unwrap();
        let previous = seen.insert((member, request.sequence as usize), index as u64);
        assert!(previous.is_none(), "{} logged twice", request.member);
    }
    assert_eq!(seen.len(), total);
    for (request, index) in &acknowledged {
        assert_eq!(
            seen.get(request),
            Some(index),
            "acknowledged request {request:?} is not at its index"
        );
    }

    // The log verifies: its checkpoint, a mirror's replay of every entry and the
    // member map, and each member's query count proof.
    let log_key = operator_key().verifier().to_string();
    let (verified, output) = run_binary(
        &[
            "consortium",
            "verify",
            "--url",
            &base,
            "--log-key",
            &log_key,
        ],
        directory.path(),
    );
    assert!(verified, "{output}");
    let (followed, output) = run_binary(
        &[
            "consortium",
            "follow",
            "--url",
            &base,
            "--log-key",
            &log_key,
            "--state",
            "mirror.txt",
            "--once",
        ],
        directory.path(),
    );
    assert!(followed, "{output}");
    for member in 0..MEMBERS {
        let answer: Value = client
            .get(format!(
                "{base}/v1/consortium/members/member-{member}/query-count"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let proof = CountProof::parse(answer["proof"].as_str().unwrap()).unwrap();
        proof.verify(&operator_key().verifier(), &[]).unwrap();
        assert_eq!(
            proof.leaf.queries as usize,
            REQUESTS_PER_MEMBER / QUERY_EVERY
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "acknowledged before the crash: {} of {total}; {replays} retries refused as replays; \
         every request logged exactly once",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_load_loses_and_duplicates_no_consortium_entry_on_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("crash.db").display());
    let database = tally_store::Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    database.close().await;
    crash_and_recover(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_load_loses_and_duplicates_no_consortium_entry_on_postgres() {
    // `None` only under TALLY_TEST_SKIP_POSTGRES=1; the skip is printed.
    let Some(test) = TestDatabase::postgres().await else {
        return;
    };
    crash_and_recover(test.url_for_another_process()).await;
}
