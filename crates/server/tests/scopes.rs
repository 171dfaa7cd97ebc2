//! Every route of the OpenAPI document, on SQLite and PostgreSQL, against the scopes the
//! document says it needs: without a key it answers 401; with a key holding every scope but
//! those, 403 `forbidden`; with a key holding only those, it gets past authorisation. A
//! route whose layer checks another scope than its document says fails here.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::Value;
use tally_server::auth::SCOPES;
use tally_store::testing::TestDatabase;

mod support;
use support::{privacy, Setup, TestApp};

struct Harness {
    app: TestApp,
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).credit().risk();
        let app = TestApp::start(test, "2026-06-01T12:00:00Z", setup).await;
        Self { app }
    }

    async fn key(&self, name: &str, scopes: &[&str]) -> String {
        self.app.key(name, scopes).await
    }

    /// A request with the same idempotency key throughout and, but for a GET, an empty
    /// JSON object as its body: enough to get past authorisation.
    async fn call(&self, method: &str, uri: &str, key: Option<&str>) -> (StatusCode, Value) {
        let body = (method != "GET").then(|| "{}".to_string());
        self.app
            .call_raw(method, uri, key, Some("scope-check"), body)
            .await
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    every_route_needs_the_scopes_its_document_names,
);

/// A refusal for a missing scope, as the authorisation layer words it.
fn refused_for_scope(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::FORBIDDEN
        && body["error"]["code"] == "forbidden"
        && body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("lacks scope"))
}

async fn every_route_needs_the_scopes_its_document_names(harness: Harness) {
    let admin = harness.key("admin", &["admin"]).await;
    let (status, document) = harness.call("GET", "/v1/openapi.json", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let method = method.to_uppercase();
            let uri = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let needed: Vec<&str> = operation["security"]
                .as_array()
                .and_then(|schemes| schemes.first())
                .and_then(|scheme| scheme["api_key"].as_array())
                .map(|scopes| scopes.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let route = format!("{method} {path}");
            assert!(!needed.is_empty(), "{route} names no scope");
            for scope in &needed {
                assert!(SCOPES.contains(scope), "{route}: unknown scope {scope}");
            }

            let (status, body) = harness.call(&method, &uri, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{route} without a key: {body}"
            );

            // Every scope Tally knows but the ones the route needs (and admin).
            let others: Vec<&str> = SCOPES
                .iter()
                .copied()
                .filter(|scope| *scope != "admin" && !needed.contains(scope))
                .collect();
            let key = harness.key(&format!("all but {needed:?}"), &others).await;
            let (status, body) = harness.call(&method, &uri, Some(&key)).await;
            assert!(
                refused_for_scope(status, &body),
                "{route} with every scope but {needed:?}: {status} {body}"
            );

            let key = harness.key(&format!("only {needed:?}"), &needed).await;
            let (status, body) = harness.call(&method, &uri, Some(&key)).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && !refused_for_scope(status, &body),
                "{route} with only {needed:?}: {status} {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} operations checked");
}
