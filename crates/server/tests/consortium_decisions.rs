//! The consortium inside decisions, on SQLite and PostgreSQL: a consortium log served over
//! HTTP in process, and two lenders (two Tally instances, each its own database and member
//! key, both founders of the log). The first confirms a stolen-account claim after
//! purchases from a thief's device, and the device is published to the log exactly once
//! (a lost answer resent finds the record, not a second one); the second then refuses a new
//! customer's purchase on that device with the consortium rule's reason. A log that does
//! not answer costs a decision its timeout and no hit; a spent quota stops the queries and
//! says so on the decision.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tally_core::{Clock, ManualClock};
use tally_server::consortium_app;
use tally_server::routes::consortium::ConsortiumAppState;
use tally_service::consortium::member_client::{MemberClient, MemberSettings};
use tally_service::consortium::ConsortiumLog;
use tally_service::risk::RiskService;
use tally_store::testing::TestDatabase;
use tally_store::Backend;

mod support;
use support::consortium::{signer, CONSORTIUM};
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
        let mut app = TestApp::start(test, START, Setup::default().risk()).await;
        let mut member_settings = MemberSettings {
            url: url.to_string(),
            consortium: CONSORTIUM.into(),
            key: Arc::new(signer(name, seed)),
            lookup_timeout: Duration::from_secs(5),
            hit_seconds: 3_600,
            miss_seconds: 600,
            queries_per_day: 100,
            record_days: 30,
        };
        settings(&mut member_settings);
        let clock: Arc<dyn Clock> = app.clock.clone();
        let member = Arc::new(MemberClient::new(member_settings, clock.clone()).unwrap());
        let risk = RiskService::open(&app.database, clock)
            .await
            .unwrap()
            .with_consortium(Some(member.clone()));
        app.risk = Some(Arc::new(risk));
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
        let at = self.app.clock.now().to_string();
        let mut event =
            json!({"id": id, "kind": kind, "at": at, "customer": customer, "device": device});
        if kind == "transaction" {
            event["amount"] = json!({"value": "120.00", "currency": "CNY"});
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
    let clock: Arc<dyn Clock> = clock;
    let log = ConsortiumLog::start(&test.database, clock, support::consortium::config())
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
