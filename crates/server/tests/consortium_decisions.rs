//! The consortium inside decisions, on SQLite and PostgreSQL: a consortium log served over
//! HTTP in process, and two lenders (two Tally instances, each its own database and member
//! key, both founders of the log). The first confirms a stolen-account claim after
//! purchases from a thief's device, and the device is published to the log exactly once
//! (a lost answer resent finds the record, not a second one); the second then refuses a new
//! customer's purchase on that device with the consortium rule's reason. A log that does
//! not answer costs a decision its timeout and no hit; a spent quota stops the queries and
//! says so on the decision. A confirmed claim publishes the thief's card number, delivery
//! address and receiving phone too (never the victim's), and the second lender refuses
//! that card on another device; an answer of the log that does not verify against the
//! operator's signed checkpoint (a record changed, a signature not the operator's) is no
//! hit.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tally_core::{Clock, ManualClock};
use tally_server::consortium_app;
use tally_server::routes::consortium::ConsortiumAppState;
use tally_service::consortium::member_client::{MemberClient, MemberSettings};
use tally_service::consortium::ConsortiumLog;
use tally_service::risk::RiskService;
use tally_store::risk::RiskStore;
use tally_store::testing::TestDatabase;
use tally_store::Backend;
use tower::ServiceExt;

mod support;
use support::consortium::{operator_key, signer, CONSORTIUM};
use support::{Setup, TestApp};

/// The log's time (and both lenders'): the test log's fixed clock.
const START: &str = "2027-01-15T08:00:00Z";

/// A lender: its application, its member client and its keys.
struct Lender {
    app: TestApp,
    member: Arc<MemberClient>,
    writer: String,
    analyst: String,
}

impl Lender {
    /// A Tally instance over `test` as member `name` (key seed `seed`) of the log at `url`.
    async fn start(
        test: TestDatabase,
        url: &str,
        name: &str,
        seed: u8,
        settings: impl FnOnce(&mut MemberSettings),
    ) -> Self {
        Self::start_with(test, url, name, seed, Setup::default().risk(), settings).await
    }

    /// As [`Lender::start`], serving `setup` (its payments decided by the member's risk
    /// engine).
    async fn start_with(
        test: TestDatabase,
        url: &str,
        name: &str,
        seed: u8,
        setup: Setup,
        settings: impl FnOnce(&mut MemberSettings),
    ) -> Self {
        let mut app = TestApp::start(test, START, setup).await;
        let mut member_settings = MemberSettings {
            url: url.to_string(),
            consortium: CONSORTIUM.into(),
            key: Arc::new(signer(name, seed)),
            log_key: operator_key().verifier(),
            lookup_timeout: Duration::from_secs(5),
            hit_seconds: 3_600,
            miss_seconds: 600,
            queries_per_day: 100,
            record_days: 30,
        };
        settings(&mut member_settings);
        let clock: Arc<dyn Clock> = app.clock.clone();
        let member = Arc::new(
            MemberClient::new(member_settings, clock.clone())
                .unwrap()
                .with_privacy(app.state.privacy.clone())
                .resumed(RiskStore::new(app.database.clone()))
                .await
                .unwrap(),
        );
        let risk = RiskService::open(&app.database, clock)
            .await
            .unwrap()
            .with_privacy(app.state.privacy.clone())
            .with_consortium(Some(member.clone()));
        let risk = Arc::new(risk);
        if app.setup.payments {
            // The payment service takes its risk engine once: another instance on the same
            // database, its payments decided by this one.
            let instance = support::Instance::start_with_risk(
                &app.database,
                app.clock.clone(),
                &app.setup,
                Some(risk.clone()),
            )
            .await;
            app.writer = instance.writer;
            app.credit = instance.credit;
            app.payments = instance.payments;
            app.bank = instance.bank;
            app.codes = instance.codes;
        }
        app.risk = Some(risk);
        app.serve();
        let writer = app.key("risk writer", &["risk:write", "risk:read"]).await;
        let analyst = app.key("analyst", &["risk:analyst"]).await;
        Lender {
            app,
            member,
            writer,
            analyst,
        }
    }

    fn risk(&self) -> &RiskService {
        self.app.risk.as_deref().unwrap()
    }

    async fn call(&self, method: &str, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .call_raw(method, uri, Some(key), None, Some(body.to_string()))
            .await
    }

    /// The decision on an event of `kind` by `customer` on `device`, now.
    async fn decide(&self, id: &str, kind: &str, customer: &str, device: &str) -> Value {
        self.decide_with(id, kind, customer, device, json!({}))
            .await
    }

    /// The decision on an event with `more` fields (card, address, phone).
    async fn decide_with(
        &self,
        id: &str,
        kind: &str,
        customer: &str,
        device: &str,
        more: Value,
    ) -> Value {
        let at = self.app.clock.now().to_string();
        let mut event =
            json!({"id": id, "kind": kind, "at": at, "customer": customer, "device": device});
        if kind == "transaction" {
            event["amount"] = json!({"value": "120.00", "currency": "CNY"});
        }
        for (field, value) in more.as_object().unwrap() {
            event[field] = value.clone();
        }
        let (status, body) = self
            .call("POST", "/v1/risk/decisions", &self.writer, event)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["decision"].clone()
    }
}

/// Another fresh database of the same backend as `test`'s.
async fn another(test: &TestDatabase) -> TestDatabase {
    match test.database.backend() {
        Backend::Sqlite => TestDatabase::sqlite().await.unwrap(),
        Backend::Postgres => TestDatabase::postgres().await.unwrap(),
    }
}

/// Serves the test log (founders bank-a, bank-b, bank-d; five queries a day) over `test`'s
/// database on a local port, on `clock`; its base URL, and its router to read it in process.
async fn serve_log(test: &TestDatabase, clock: Arc<ManualClock>) -> (String, Router) {
    serve_log_with_quota(test, clock, 5).await
}

/// As [`serve_log`], members allowed `queries_per_day` queries a day.
async fn serve_log_with_quota(
    test: &TestDatabase,
    clock: Arc<ManualClock>,
    queries_per_day: u32,
) -> (String, Router) {
    let clock: Arc<dyn Clock> = clock;
    let log = ConsortiumLog::start(
        &test.database,
        clock,
        support::consortium::config_with_quota(queries_per_day),
    )
    .await
    .unwrap()
    .0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = consortium_app(ConsortiumAppState::new(log));
    let served = router.clone();
    tokio::spawn(async move {
        axum::serve(listener, served).await.unwrap();
    });
    (format!("http://{address}"), router)
}

/// `member`'s counts as the log proves them.
async fn counts(log: &Router, member: &str) -> Value {
    let uri = format!("/v1/consortium/members/{member}/query-count");
    support::send(log, support::request("GET", &uri, None, None, None))
        .await
        .json()
}

fn reasons(decision: &Value) -> Vec<String> {
    decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason.as_str().unwrap().to_string())
        .collect()
}

tally_store::on_both_backends!(confirmed_fraud_at_one_lender_is_refused_at_another);

async fn confirmed_fraud_at_one_lender_is_refused_at_another(log_database: TestDatabase) {
    let log_clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let (url, log) = serve_log(&log_database, log_clock.clone()).await;
    let lender_a = Lender::start(another(&log_database).await, &url, "bank-a", 1, |_| {}).await;
    let lender_b = Lender::start(
        another(&log_database).await,
        &url,
        "bank-b",
        2,
        |settings| {
            settings.queries_per_day = 4;
        },
    )
    .await;

    // Time passes alike for the log and the lenders (the log refuses requests dated more
    // than five minutes from its own time).
    let advance = |minutes: i64| {
        for clock in [&log_clock, &lender_a.app.clock, &lender_b.app.clock] {
            clock.advance(jiff::SignedDuration::from_mins(minutes));
        }
    };

    // At lender A, the customer logs in from their own phone; half an hour later the
    // thief has the account and buys three times from another device.
    let own = lender_a
        .decide("a-1", "login", "victim", "victims-phone")
        .await;
    assert_eq!(own["consortium"][0]["outcome"], "no_record", "{own}");
    advance(30);
    let compromised_at = lender_a.app.clock.now();
    for purchase in 0..3 {
        advance(1);
        let decision = lender_a
            .decide(
                &format!("a-buy-{purchase}"),
                "transaction",
                "victim",
                "thief-device-7",
            )
            .await;
        assert!(!reasons(&decision).contains(&"CONSORTIUM_FRAUD".to_string()));
    }
    // The log answered the thief's device once; the next purchases read the cached miss.
    let cached = lender_a
        .decide("a-buy-again", "transaction", "victim", "thief-device-7")
        .await;
    assert_eq!(cached["consortium"][0]["cached"], true);
    assert_eq!(counts(&log, "bank-a").await["in_day"], 2);

    // The claim, confirmed by an analyst.
    let (status, claim) = lender_a
        .call(
            "POST",
            "/v1/risk/claims",
            &lender_a.writer,
            json!({"customer": "victim", "description": "not my purchases", "compromised_at": compromised_at.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    for action in ["claim", "approve"] {
        let (status, body) = lender_a
            .call(
                "POST",
                &format!("/v1/risk/cases/{case_id}/{action}"),
                &lender_a.analyst,
                json!({"note": "confirmed with the customer"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The confirmation wrote the thief's device (never the victim's phone) to the outbox.
    let rows = lender_a
        .risk()
        .store
        .case_publications(&case_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].identifier, "thief-device-7");
    assert_eq!(rows[0].status, "pending");

    // The worker publishes it once; a second pass finds nothing to do.
    let store = &lender_a.risk().store;
    assert_eq!(
        lender_a.member.publish_pending(store, 100).await.unwrap(),
        1
    );
    assert_eq!(
        lender_a.member.publish_pending(store, 100).await.unwrap(),
        0
    );
    let published = store.case_publications(&case_id).await.unwrap();
    assert_eq!(published[0].status, "published");
    let record = published[0].record_index.unwrap();
    assert_eq!(counts(&log, "bank-a").await["publications"], 1);
    let (_, trail) = lender_a
        .call(
            "GET",
            &format!("/v1/risk/cases/{case_id}"),
            &lender_a.analyst,
            Value::Null,
        )
        .await;
    let published_line = trail["log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["action"] == "consortium_published")
        .unwrap_or_else(|| panic!("no publication in the trail: {trail}"));
    assert!(published_line["note"]
        .as_str()
        .unwrap()
        .contains(&format!("record {record}")));

    // A crash after the log logged it but before the row said so: the same signed request
    // is sent again, the log refuses the replay, and the worker finds the record in the log
    // instead of publishing a second one.
    lender_a
        .app
        .execute(&format!(
            "UPDATE consortium_publications SET status = 'pending', record_index = NULL, \
             published_at = NULL WHERE case_id = '{case_id}'"
        ))
        .await
        .unwrap();
    assert_eq!(
        lender_a.member.publish_pending(store, 100).await.unwrap(),
        1
    );
    let again = store.case_publications(&case_id).await.unwrap();
    assert_eq!(again[0].record_index, Some(record));
    assert_eq!(counts(&log, "bank-a").await["publications"], 1);

    // At lender B, a new customer's purchase on the thief's device is refused by the
    // consortium rule, and the decision explains it.
    let refused = lender_b
        .decide("b-1", "transaction", "newcomer", "thief-device-7")
        .await;
    assert_eq!(refused["action"], "reject", "{refused}");
    assert!(
        reasons(&refused).contains(&"CONSORTIUM_FRAUD".to_string()),
        "{refused}"
    );
    assert_eq!(refused["consortium"][0]["outcome"], "records");
    assert_eq!(
        refused["consortium"][0]["records"][0]["publisher"],
        "bank-a"
    );
    assert_eq!(
        refused["consortium"][0]["records"][0]["risk_type"],
        "stolen_account"
    );
    let hit = refused["list_hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hit| hit["source"] == "consortium")
        .unwrap();
    assert_eq!(hit["field"], "device");
    // Lender A's own record is shown to it once its cached miss expired, but is no hit
    // there: the rule acts on what other members reported.
    advance(11);
    let own_record = lender_a
        .decide("a-after", "login", "someone", "thief-device-7")
        .await;
    assert_eq!(
        own_record["consortium"][0]["outcome"], "records",
        "{own_record}"
    );
    assert_eq!(
        own_record["consortium"][0]["records"][0]["publisher"],
        "bank-a"
    );
    assert!(!reasons(&own_record).contains(&"CONSORTIUM_FRAUD".to_string()));

    // The quota: B may ask four times a day. One query so far; three more devices use the
    // rest, the fifth device is not asked, and the decision says so.
    assert_eq!(counts(&log, "bank-b").await["in_day"], 1);
    for device in 0..3 {
        let decision = lender_b
            .decide(
                &format!("b-q{device}"),
                "login",
                "newcomer",
                &format!("device-{device}"),
            )
            .await;
        assert_eq!(decision["consortium"][0]["outcome"], "no_record");
    }
    let spent = lender_b
        .decide("b-spent", "login", "newcomer", "device-9")
        .await;
    assert_eq!(spent["consortium"][0]["outcome"], "quota_spent");
    assert_eq!(counts(&log, "bank-b").await["in_day"], 4);
    // What is cached is still known.
    let known = lender_b
        .decide("b-2", "transaction", "another", "thief-device-7")
        .await;
    assert_eq!(known["action"], "reject");
    assert_eq!(known["consortium"][0]["cached"], true);

    // A log that takes connections and never answers: the decision waits its 50 ms, knows
    // no hit, and is made.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let lender_c = Lender::start(
        another(&log_database).await,
        &silent_url,
        "bank-d",
        4,
        |settings| {
            settings.lookup_timeout = Duration::from_millis(50);
        },
    )
    .await;
    let started = std::time::Instant::now();
    let decision = lender_c
        .decide("c-1", "transaction", "newcomer", "thief-device-7")
        .await;
    let waited = started.elapsed();
    assert_eq!(decision["consortium"][0]["outcome"], "timed_out");
    assert_ne!(decision["action"], "reject");
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    // The timeout, plus storing the decision on a loaded machine: far from the request's
    // own ten seconds.
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

/// The outcome of the lookup of `field` on a decision.
fn lookup<'a>(decision: &'a Value, field: &str) -> &'a Value {
    decision["consortium"]
        .as_array()
        .unwrap()
        .iter()
        .find(|lookup| lookup["field"] == field)
        .unwrap_or_else(|| panic!("no lookup of {field}: {decision}"))
}

/// What a log in the middle does to the answers it passes on.
const HONEST: u8 = 0;
const CHANGED_RECORD: u8 = 1;
const FOREIGN_SIGNATURE: u8 = 2;

/// Serves `log` on a local port through a middle that, by `mode`, passes answers on,
/// raises the severity of each record a query answers, or signs the checkpoint with a key
/// that is not the operator's; its base URL.
async fn serve_through_middle(log: Router, mode: Arc<AtomicU8>) -> String {
    let middle = Router::new().fallback(move |request: Request<Body>| {
        let log = log.clone();
        let mode = mode.clone();
        async move {
            let path = request.uri().path().to_string();
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let response = log
                .oneshot(Request::from_parts(parts, Body::from(body)))
                .await
                .unwrap();
            let (mut parts, body) = response.into_parts();
            let mut body = body.collect().await.unwrap().to_bytes().to_vec();
            match mode.load(Ordering::SeqCst) {
                CHANGED_RECORD if path.ends_with("/queries") => {
                    let mut answer: Value = serde_json::from_slice(&body).unwrap();
                    for record in answer["records"].as_array_mut().unwrap() {
                        record["severity"] = json!(1);
                    }
                    body = answer.to_string().into_bytes();
                }
                FOREIGN_SIGNATURE if path.ends_with("/checkpoint") => {
                    // The same checkpoint, signed under the operator's name by another key.
                    let text = String::from_utf8(body).unwrap();
                    let signed = text.split("\n\n").next().unwrap().to_string() + "\n";
                    let impostor = tally_consortium::SignerKey::from_seed(
                        operator_key().name(),
                        tally_consortium::KeyType::Ed25519,
                        [7; 32],
                    )
                    .unwrap();
                    let mut note = tally_consortium::Note::parse(&text).unwrap();
                    note.signatures.clear();
                    note.sign(&impostor, 0).unwrap();
                    assert_eq!(note.text, signed);
                    body = note.to_string().into_bytes();
                }
                _ => {}
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            axum::response::Response::from_parts(parts, Body::from(body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, middle).await.unwrap();
    });
    format!("http://{address}")
}

tally_store::on_both_backends!(a_thiefs_card_address_and_phone_are_refused_at_another_lender);

async fn a_thiefs_card_address_and_phone_are_refused_at_another_lender(log_database: TestDatabase) {
    let log_clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    // Each identifier of a decision is a query: more than the other story's five a day.
    let (url, log) = serve_log_with_quota(&log_database, log_clock.clone(), 100).await;
    let lender_a = Lender::start(another(&log_database).await, &url, "bank-a", 1, |_| {}).await;
    let lender_b = Lender::start(another(&log_database).await, &url, "bank-b", 2, |_| {}).await;
    let mode = Arc::new(AtomicU8::new(CHANGED_RECORD));
    let middle_url = serve_through_middle(log.clone(), mode.clone()).await;
    let lender_c = Lender::start(
        another(&log_database).await,
        &middle_url,
        "bank-d",
        4,
        |_| {},
    )
    .await;
    let advance = |minutes: i64| {
        for clock in [
            &log_clock,
            &lender_a.app.clock,
            &lender_b.app.clock,
            &lender_c.app.clock,
        ] {
            clock.advance(jiff::SignedDuration::from_mins(minutes));
        }
    };

    // The victim buys with their own card, delivered home; then the thief takes the account
    // and buys with a card of their own, delivered to their address and phone, once to the
    // victim's address.
    let victims_card = "4111 1111 1111 1111";
    let victims_address = "88 Jianguo Road, Chaoyang, Beijing";
    let thiefs_card = "5555 5555 5555 4444";
    let thiefs_address = "12 Harbour Street, Nanshan, Shenzhen";
    let thiefs_phone = "+86 139 0000 1111";
    let own = lender_a
        .decide_with(
            "a-own",
            "transaction",
            "victim",
            "victims-phone",
            json!({"card": victims_card, "address": victims_address}),
        )
        .await;
    assert_eq!(lookup(&own, "card")["outcome"], "no_record", "{own}");
    assert_eq!(lookup(&own, "address")["outcome"], "no_record", "{own}");
    advance(30);
    let compromised_at = lender_a.app.clock.now();
    advance(1);
    let stolen = lender_a
        .decide_with(
            "a-thief-1",
            "transaction",
            "victim",
            "thief-device-8",
            json!({"card": thiefs_card, "address": thiefs_address, "phone": thiefs_phone}),
        )
        .await;
    for field in ["device", "card", "address", "phone"] {
        assert_eq!(lookup(&stolen, field)["outcome"], "no_record", "{stolen}");
    }
    advance(1);
    lender_a
        .decide_with(
            "a-thief-2",
            "transaction",
            "victim",
            "thief-device-8",
            json!({"card": thiefs_card, "address": victims_address}),
        )
        .await;

    // Kept sealed for a publication (card, address and phone of the first purchase, card
    // and address of the others): nothing of them in clear, in the kept rows or the events.
    let kept = lender_a
        .risk()
        .store
        .customer_consortium_identifiers("victim", 100)
        .await
        .unwrap();
    assert_eq!(kept.len(), 7, "{kept:?}");
    let events = lender_a
        .risk()
        .store
        .customer_events("victim", 100)
        .await
        .unwrap();
    let stored = format!("{kept:?} {events:?}");
    for clear in [
        "4111",
        "5555555555554444",
        "5555 5555",
        "Harbour",
        "harbour",
        "13900001111",
        "Jianguo",
        "jianguo",
    ] {
        assert!(!stored.contains(clear), "{clear} in clear: {stored}");
    }
    assert!(kept.iter().all(|row| row.sealed.starts_with("v1:")));

    let (status, claim) = lender_a
        .call(
            "POST",
            "/v1/risk/claims",
            &lender_a.writer,
            json!({"customer": "victim", "description": "not my purchases", "compromised_at": compromised_at.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    for action in ["claim", "approve"] {
        let (status, body) = lender_a
            .call(
                "POST",
                &format!("/v1/risk/cases/{case_id}/{action}"),
                &lender_a.analyst,
                json!({"note": "confirmed with the customer"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The thief's device, card, address and phone; never the victim's card or address.
    let store = &lender_a.risk().store;
    let rows = store.case_publications(&case_id).await.unwrap();
    let mut kinds: Vec<&str> = rows.iter().map(|row| row.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["address", "card", "device", "phone"], "{rows:?}");
    for row in rows.iter().filter(|row| row.kind != "device") {
        assert_eq!(
            row.identifier.len(),
            64,
            "a fingerprint, not the value: {row:?}"
        );
    }
    assert_eq!(
        lender_a.member.publish_pending(store, 100).await.unwrap(),
        4
    );
    let published = store.case_publications(&case_id).await.unwrap();
    assert!(
        published.iter().all(|row| row.status == "published"),
        "{published:?}"
    );
    assert_eq!(counts(&log, "bank-a").await["publications"], 4);

    // At lender B, another customer pays with the thief's card (written otherwise) on a
    // device of their own: refused by the consortium rule, the hit on the card.
    let refused = lender_b
        .decide_with(
            "b-card",
            "transaction",
            "newcomer",
            "newcomers-phone",
            json!({"card": "5555-5555-5555-4444"}),
        )
        .await;
    assert_eq!(refused["action"], "reject", "{refused}");
    assert!(reasons(&refused).contains(&"CONSORTIUM_FRAUD".to_string()));
    assert_eq!(lookup(&refused, "device")["outcome"], "no_record");
    assert_eq!(lookup(&refused, "card")["outcome"], "records");
    assert_eq!(
        lookup(&refused, "card")["records"][0]["publisher"],
        "bank-a"
    );
    let hit = refused["list_hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hit| hit["source"] == "consortium")
        .unwrap();
    assert_eq!(hit["field"], "card");
    // A delivery to the thief's address, or to their phone, is refused too; the victim's
    // address was never published.
    let to_address = lender_b
        .decide_with(
            "b-address",
            "transaction",
            "another",
            "another-phone",
            json!({"address": "12 harbour street,  nanshan, SHENZHEN"}),
        )
        .await;
    assert_eq!(lookup(&to_address, "address")["outcome"], "records");
    assert!(reasons(&to_address).contains(&"CONSORTIUM_FRAUD".to_string()));
    let to_phone = lender_b
        .decide_with(
            "b-phone",
            "transaction",
            "third",
            "third-phone",
            json!({"phone": "13900001111", "address": victims_address}),
        )
        .await;
    assert_eq!(lookup(&to_phone, "phone")["outcome"], "records");
    assert_eq!(lookup(&to_phone, "address")["outcome"], "no_record");
    assert!(reasons(&to_phone).contains(&"CONSORTIUM_FRAUD".to_string()));

    // Lender C reads the log through a middle. A record changed on its way is no hit: the
    // lookup is unavailable and the decision goes on.
    let changed = lender_c
        .decide_with(
            "c-changed",
            "transaction",
            "newcomer",
            "c-device-1",
            json!({"card": thiefs_card}),
        )
        .await;
    assert_eq!(
        lookup(&changed, "card")["outcome"],
        "unavailable",
        "{changed}"
    );
    assert!(
        lookup(&changed, "card")["error"]
            .as_str()
            .unwrap()
            .contains("did not verify"),
        "{changed}"
    );
    assert!(!reasons(&changed).contains(&"CONSORTIUM_FRAUD".to_string()));
    // A checkpoint signed by another key under the operator's name is no hit either.
    mode.store(FOREIGN_SIGNATURE, Ordering::SeqCst);
    advance(1);
    let forged = lender_c
        .decide_with(
            "c-forged",
            "transaction",
            "newcomer",
            "c-device-2",
            json!({"card": thiefs_card}),
        )
        .await;
    assert_eq!(
        lookup(&forged, "card")["outcome"],
        "unavailable",
        "{forged}"
    );
    assert!(!reasons(&forged).contains(&"CONSORTIUM_FRAUD".to_string()));
    // Passed on as the log answered, the same lookup verifies and refuses.
    mode.store(HONEST, Ordering::SeqCst);
    advance(1);
    let honest = lender_c
        .decide_with(
            "c-honest",
            "transaction",
            "newcomer",
            "c-device-3",
            json!({"card": thiefs_card}),
        )
        .await;
    assert_eq!(lookup(&honest, "card")["outcome"], "records", "{honest}");
    assert!(reasons(&honest).contains(&"CONSORTIUM_FRAUD".to_string()));
    assert!(lender_c.member.verified_size().await.unwrap() > 0);
}

/// Refuses inserts into `table` (a trigger named `name`), as a failing disk would.
async fn refuse_inserts(app: &TestApp, table: &str, name: &str) {
    let statements = match app.database.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'storage unavailable'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'storage unavailable'; END $$"
            ),
            format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {name}()"
            ),
        ],
    };
    for statement in statements {
        app.execute(&statement).await.unwrap();
    }
}

/// Takes inserts into `table` again.
async fn accept_again(app: &TestApp, table: &str, name: &str) {
    let statement = match app.database.backend() {
        Backend::Sqlite => format!("DROP TRIGGER {name}"),
        Backend::Postgres => format!("DROP TRIGGER {name} ON {table}"),
    };
    app.execute(&statement).await.unwrap();
}

tally_store::on_both_backends!(a_decision_and_the_identifiers_it_keeps_are_stored_together);

/// The identifiers a decision keeps for a publication are written in the transaction that
/// stores the decision: when they cannot be written, neither is the decision (no event
/// that a confirmed case could never publish), and a retry stores both, once.
async fn a_decision_and_the_identifiers_it_keeps_are_stored_together(log_database: TestDatabase) {
    let log_clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let (url, _log) = serve_log_with_quota(&log_database, log_clock, 100).await;
    let lender = Lender::start(another(&log_database).await, &url, "bank-a", 1, |_| {}).await;
    let event = json!({
        "id": "together-1", "kind": "transaction", "at": lender.app.clock.now().to_string(),
        "customer": "lender-customer-1", "device": "device-1",
        "amount": {"value": "120.00", "currency": "CNY"},
        "card": "5555 5555 5555 4444", "address": "12 Harbour Street, Shenzhen",
        "phone": "+86 139 0000 1111",
    });
    let count = |table: &'static str| {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE event_id = 'together-1'");
        let app = &lender.app;
        async move { app.scalar(&sql).await }
    };

    refuse_inserts(&lender.app, "consortium_identifiers", "identifiers_refused").await;
    for attempt in 0..2 {
        let (status, body) = lender
            .call("POST", "/v1/risk/decisions", &lender.writer, event.clone())
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
            "attempt {attempt}: {body}"
        );
        assert_eq!(
            count("risk_events").await,
            0,
            "a decision without its identifiers"
        );
        assert_eq!(count("consortium_identifiers").await, 0);
    }
    accept_again(&lender.app, "consortium_identifiers", "identifiers_refused").await;
    for _ in 0..2 {
        let (status, body) = lender
            .call("POST", "/v1/risk/decisions", &lender.writer, event.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(count("risk_events").await, 1);
        assert_eq!(count("consortium_identifiers").await, 3);
    }
    let kept = lender
        .risk()
        .store
        .event_consortium_identifiers("together-1")
        .await
        .unwrap();
    let kinds: Vec<&str> = kept.iter().map(|row| row.kind.as_str()).collect();
    assert_eq!(kinds, ["address", "card", "phone"], "{kept:?}");

    // And the other way round: an event that cannot be stored leaves no identifier.
    refuse_inserts(&lender.app, "risk_events", "events_refused").await;
    let mut second = event.clone();
    second["id"] = json!("together-2");
    let (status, body) = lender
        .call("POST", "/v1/risk/decisions", &lender.writer, second)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        lender
            .app
            .scalar("SELECT COUNT(*) FROM consortium_identifiers WHERE event_id = 'together-2'")
            .await,
        0
    );
}

tally_store::on_both_backends!(a_published_thiefs_address_refuses_a_checkout_at_another_lender);

/// A checkout request carries no address or phone: the decision on it looks up the
/// customer's delivery address and phone from the customer record, with the device.
async fn a_published_thiefs_address_refuses_a_checkout_at_another_lender(
    log_database: TestDatabase,
) {
    let log_clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let (url, _log) = serve_log_with_quota(&log_database, log_clock.clone(), 100).await;
    let lender_a = Lender::start(another(&log_database).await, &url, "bank-a", 1, |_| {}).await;
    let lender_b = Lender::start_with(
        another(&log_database).await,
        &url,
        "bank-b",
        2,
        Setup::default().payments().risk(),
        |_| {},
    )
    .await;
    let advance = |minutes: i64| {
        for clock in [&log_clock, &lender_a.app.clock, &lender_b.app.clock] {
            clock.advance(jiff::SignedDuration::from_mins(minutes));
        }
    };
    let thiefs_address = "12 Harbour Street, Nanshan, Shenzhen";

    // At lender B, a customer delivers to the address, with a wallet to pay from.
    let clerk = lender_b
        .app
        .key(
            "clerk",
            &[
                "credit:write",
                "credit:read",
                "payments:write",
                "payments:read",
            ],
        )
        .await;
    let post = |uri: String, key: String, body: Value| {
        let app = &lender_b.app;
        let clerk = clerk.clone();
        async move { app.call("POST", &uri, &clerk, Some(&key), Some(body)).await }
    };
    let (status, customer) = post(
        "/v1/customers".into(),
        "customer-1".into(),
        json!({"name": "李四", "phone": "13900139000", "national_id": "110105199003071239"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{customer}");
    let customer = customer["id"].as_str().unwrap().to_string();
    let (status, changed) = post(
        format!("/v1/customers/{customer}/address"),
        "address-1".into(),
        json!({"address": thiefs_address, "device": "b-phone"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let card = lender_b
        .app
        .bank
        .as_ref()
        .unwrap()
        .register_card(
            "4242424242424242",
            "12/30",
            tally_core::Amount::parse("10000.00", tally_core::Currency::CNY).unwrap(),
        )
        .await
        .unwrap();
    let token = card.token.as_str().to_string();
    let (status, saved) = post(
        "/v1/payments/cards".into(),
        "card-1".into(),
        json!({"customer": customer, "card_token": token}),
    )
    .await;
    assert!(status.is_success(), "{saved}");
    let (status, topped) = post(
        format!("/v1/payments/wallets/{customer}/top-ups"),
        "top-up-1".into(),
        json!({"card_token": token, "amount": {"value": "1000.00", "currency": "CNY"}}),
    )
    .await;
    assert!(status.is_success(), "{topped}");
    let pay = |order: &'static str| {
        let customer = customer.clone();
        let post = &post;
        async move {
            let (status, created) = post(
                "/v1/payments".into(),
                format!("create-{order}"),
                json!({
                    "merchant_id": "m1", "order_reference": order, "customer": customer,
                    "amount": {"value": "120.00", "currency": "CNY"},
                    "fundings": [{"kind": "wallet"}],
                }),
            )
            .await;
            assert!(status.is_success(), "{created}");
            let id = created["id"].as_str().unwrap().to_string();
            let (status, confirmed) = post(
                format!("/v1/payments/{id}/confirm"),
                format!("confirm-{order}"),
                json!({"device": "b-phone"}),
            )
            .await;
            (id, status, confirmed)
        }
    };
    let decision = |id: String| {
        let store = lender_b.risk().store.clone();
        async move {
            let row = store
                .event_by_id(&format!("payment:{id}"))
                .await
                .unwrap()
                .unwrap();
            serde_json::from_str::<Value>(&row.decision).unwrap()
        }
    };
    // Nothing is known of the address yet: paid, the address and phone looked up.
    let (paid, status, answer) = pay("order-1").await;
    assert!(status.is_success(), "{answer}");
    let first = decision(paid).await;
    for field in ["device", "address", "phone"] {
        assert_eq!(lookup(&first, field)["outcome"], "no_record", "{first}");
    }

    // Lender A confirms a stolen account whose thief delivered to that address.
    advance(30);
    let compromised_at = lender_a.app.clock.now();
    advance(1);
    lender_a
        .decide_with(
            "a-thief",
            "transaction",
            "victim",
            "thief-device",
            json!({"address": thiefs_address}),
        )
        .await;
    let (status, claim) = lender_a
        .call(
            "POST",
            "/v1/risk/claims",
            &lender_a.writer,
            json!({"customer": "victim", "description": "not my purchases", "compromised_at": compromised_at.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    for action in ["claim", "approve"] {
        let (status, body) = lender_a
            .call(
                "POST",
                &format!("/v1/risk/cases/{case_id}/{action}"),
                &lender_a.analyst,
                json!({"note": "confirmed with the customer"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let store = &lender_a.risk().store;
    assert_eq!(
        lender_a.member.publish_pending(store, 100).await.unwrap(),
        2,
        "the thief's device and address"
    );

    // Past B's memory of the miss, B's next checkout by the customer is refused: the hit
    // is on the delivery address, the device being unknown to the log.
    advance(11);
    let (refused, status, answer) = pay("order-2").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("risk_rejected")),
        "{answer}"
    );
    let second = decision(refused).await;
    assert_eq!(second["action"], "reject", "{second}");
    assert!(reasons(&second).contains(&"CONSORTIUM_FRAUD".to_string()));
    assert_eq!(lookup(&second, "device")["outcome"], "no_record");
    assert_eq!(lookup(&second, "address")["outcome"], "records", "{second}");
    assert_eq!(lookup(&second, "phone")["outcome"], "no_record");
}

/// A member's settings for the log at `url`: member `name`, key seed `seed`.
fn member_settings(url: &str, name: &str, seed: u8) -> MemberSettings {
    MemberSettings {
        url: url.to_string(),
        consortium: CONSORTIUM.into(),
        key: Arc::new(signer(name, seed)),
        log_key: operator_key().verifier(),
        lookup_timeout: Duration::from_secs(5),
        hit_seconds: 3_600,
        miss_seconds: 600,
        queries_per_day: 100,
        record_days: 30,
    }
}

/// Serves, on a local port, `log` with its checkpoint replaced by `checkpoint`; its base URL.
async fn serve_with_checkpoint(log: Router, checkpoint: String) -> String {
    let middle = Router::new().fallback(move |request: Request<Body>| {
        let log = log.clone();
        let checkpoint = checkpoint.clone();
        async move {
            if request.uri().path().ends_with("/checkpoint") {
                return axum::response::Response::new(Body::from(checkpoint));
            }
            log.oneshot(request).await.unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, middle).await.unwrap();
    });
    format!("http://{address}")
}

tally_store::on_both_backends!(a_restarted_member_goes_on_from_the_checkpoint_it_verified_last);

async fn a_restarted_member_goes_on_from_the_checkpoint_it_verified_last(
    log_database: TestDatabase,
) {
    use tally_consortium::IdentifierKind::Device;
    use tally_service::consortium::member_client::LookupOutcome;
    let log_clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let (url, log) = serve_log_with_quota(&log_database, log_clock.clone(), 100).await;
    let lender = another(&log_database).await;
    let store = RiskStore::new(lender.database.clone());
    let clock: Arc<dyn Clock> = log_clock.clone();
    let log_key = operator_key().verifier().to_string();
    let member = |url: &str| {
        let store = store.clone();
        let clock = clock.clone();
        let settings = member_settings(url, "bank-b", 2);
        async move {
            Arc::new(
                MemberClient::new(settings, clock)
                    .unwrap()
                    .resumed(store)
                    .await
                    .unwrap(),
            )
        }
    };
    let answered = |outcome: &LookupOutcome| matches!(outcome, LookupOutcome::Answered { .. });

    // The member verifies the log's checkpoints as it queries, each stored.
    let running = member(&url).await;
    assert!(answered(&running.lookup(Device, "device-0").await));
    let old = store.verified_checkpoint(&log_key).await.unwrap().unwrap();
    let old_size = running.verified_size().await.unwrap();
    for n in 1..4 {
        assert!(answered(
            &running.lookup(Device, &format!("device-{n}")).await
        ));
    }
    let size = running.verified_size().await.unwrap();
    assert!(size > old_size, "{size} {old_size}");
    let latest = store.verified_checkpoint(&log_key).await.unwrap().unwrap();
    assert!(latest.contains(&format!("\n{size}\n")), "{latest}");
    // Never stored back: an older one does not replace it.
    assert!(!store
        .save_verified_checkpoint(&log_key, &old, old_size, 0)
        .await
        .unwrap());
    drop(running);

    // Restarted, it goes on from there, before it asks anything.
    let restarted = member(&url).await;
    assert_eq!(restarted.verified_size().await, Some(size));

    // A log in the middle answering with the older checkpoint is not believed: the query's
    // entry is not in the tree it last verified, and it keeps that tree.
    let stale_url = serve_with_checkpoint(log.clone(), old.clone()).await;
    let through_stale = member(&stale_url).await;
    let outcome = through_stale.lookup(Device, "device-stale").await;
    assert!(
        matches!(outcome, LookupOutcome::Unavailable(_)),
        "{outcome:?}"
    );
    assert_eq!(through_stale.verified_size().await, Some(size));

    // Another log under the operator's key, of another history and longer, is a fork to
    // the restarted member; a member starting from nothing would have trusted it, as a
    // restart did before.
    let other_database = another(&log_database).await;
    let (other_url, _other) = serve_log_with_quota(&other_database, log_clock.clone(), 100).await;
    let stranger = Arc::new(
        MemberClient::new(member_settings(&other_url, "bank-d", 4), clock.clone()).unwrap(),
    );
    for n in 0..=size {
        assert!(answered(
            &stranger.lookup(Device, &format!("other-{n}")).await
        ));
    }
    assert!(stranger.verified_size().await.unwrap() > size);
    let forked = member(&other_url).await;
    match forked.lookup(Device, "device-fork").await {
        LookupOutcome::Unavailable(error) => assert!(error.contains("forked"), "{error}"),
        outcome => panic!("a fork was believed: {outcome:?}"),
    }
    assert_eq!(forked.verified_size().await, Some(size));
    assert_eq!(
        store.verified_checkpoint(&log_key).await.unwrap().unwrap(),
        latest
    );
    let fresh = Arc::new(
        MemberClient::new(member_settings(&other_url, "bank-b", 2), clock.clone()).unwrap(),
    );
    assert!(answered(&fresh.lookup(Device, "device-fresh").await));
}
