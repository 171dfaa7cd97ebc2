//! Text that a store cannot keep (the NUL character) is refused at the edge with `400
//! invalid_text`, on every route of the OpenAPI document and on both backends, before any
//! handler runs: no entry, no idempotency record, no risk event counted.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::{json, Value};
use tally_core::Clock;
use tally_store::testing::TestDatabase;

mod support;
use support::{Setup, TestApp};

struct Harness {
    app: TestApp,
    admin: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let app = TestApp::start(test, "2026-06-01T12:00:00Z", Setup::default().risk()).await;
        let admin = app.key("admin", &["admin"]).await;
        Self { app, admin }
    }

    /// A request with the admin key, the JSON content type and idempotency key `key`,
    /// whether or not it has a body.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let body = body.unwrap_or_default();
        self.app
            .call_raw(method, uri, Some(&self.admin), Some(key), Some(body))
            .await
    }

    /// Rows that any write would add to.
    async fn row_counts(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in [
            "accounts",
            "journal_entries",
            "idempotency_keys",
            "risk_events",
            "customers",
        ] {
            counts.push(self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await);
        }
        counts
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    a_nul_anywhere_is_refused_on_every_route_and_changes_nothing,
    a_refused_risk_event_is_not_counted,
    ordinary_text_that_looks_like_an_escape_is_accepted,
);

fn invalid_text(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::BAD_REQUEST && body["error"]["code"] == "invalid_text"
}

async fn a_nul_anywhere_is_refused_on_every_route_and_changes_nothing(harness: Harness) {
    let (status, document) = harness
        .call("GET", "/v1/openapi.json", "read-document", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = harness.row_counts().await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "the document lists the routes");
    let mut checked = 0;
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            // Every path parameter a valid id, so that only the NUL can be refused.
            let id = uuid::Uuid::now_v7().to_string();
            let mut uri = String::new();
            for segment in path.split('/').filter(|segment| !segment.is_empty()) {
                uri.push('/');
                uri.push_str(if segment.starts_with('{') {
                    &id
                } else {
                    segment
                });
            }
            // A NUL in a JSON string of the body.
            if method != "GET" {
                let body = r#"{"description": "before\u0000after", "code": "x"}"#.to_string();
                let (status, answer) = harness.call(&method, &uri, "nul-body", Some(body)).await;
                assert!(
                    invalid_text(status, &answer),
                    "{method} {uri}: {status} {answer}"
                );
            }
            // A NUL in the query string and in a path segment.
            let (status, answer) = harness
                .call(&method, &format!("{uri}?note=a%00b"), "nul-query", None)
                .await;
            assert!(
                invalid_text(status, &answer),
                "{method} {uri}?: {status} {answer}"
            );
            if path.contains('{') {
                let with_nul = uri.replace(&id, "a%00b");
                let (status, answer) = harness.call(&method, &with_nul, "nul-path", None).await;
                assert!(
                    invalid_text(status, &answer),
                    "{method} {with_nul}: {status} {answer}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} operations checked");
    assert_eq!(
        harness.row_counts().await,
        before,
        "a refused request left a trace"
    );
}

async fn a_refused_risk_event_is_not_counted(harness: Harness) {
    let at = harness.clock.now().to_string();
    let event = |id: &str, device: &str| {
        json!({"id": id, "kind": "login", "at": at, "customer": "alice", "device": device})
            .to_string()
    };
    let (status, answer) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            "k1",
            Some(event("e1", "d\u{0}1")),
        )
        .await;
    assert!(invalid_text(status, &answer), "{status} {answer}");
    let (status, answer) = harness
        .call("POST", "/v1/risk/decisions", "k2", Some(event("e2", "d1")))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The refused event stored nothing and counted in no aggregate: this is the first.
    assert_eq!(answer["sequence"], 1, "{answer}");
    assert_eq!(harness.row_counts().await[3], 1);
}

async fn ordinary_text_that_looks_like_an_escape_is_accepted(harness: Harness) {
    // The six characters \u0000 (an escaped backslash, then u0000) are ordinary text.
    let body =
        json!({"code": "looks-like-\\u0000", "kind": "asset", "currency": "CNY"}).to_string();
    assert!(body.contains(r"\\u0000"));
    let (status, answer) = harness
        .call("POST", "/v1/accounts", "open", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["code"], "looks-like-\\u0000");
}
