//! Every route of the OpenAPI document, on SQLite and PostgreSQL, against the scopes the
//! document says it needs: without a key it answers 401; with a key holding every scope but
//! those, 403 `forbidden`; with a key holding only those, it gets past authorisation. A
//! route whose layer checks another scope than its document says fails here.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{Clock, ManualClock, Secret};
use tally_privacy::Privacy;
use tally_server::auth::SCOPES;
use tally_server::state::Limits;
use tally_server::{app_with_risk, AppState};
use tally_service::credit::decision::{CreditFiles, CreditService};
use tally_service::risk::RiskService;
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};
use tower::ServiceExt;

struct Harness {
    router: Router,
    database: Database,
    clock: Arc<ManualClock>,
    _test: TestDatabase,
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let clock = Arc::new(ManualClock::new("2026-06-01T12:00:00Z".parse().unwrap()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let database = test.database.clone();
        let (writer, _) =
            LedgerWriter::start(&database, dyn_clock.clone(), WriterConfig::default())
                .await
                .unwrap();
        let risk = RiskService::open(&database, dyn_clock.clone())
            .await
            .unwrap();
        let credit = CreditService::start(
            database.clone(),
            writer.clone(),
            CreditFiles::default().load().unwrap(),
        )
        .await
        .unwrap();
        let keys: BTreeMap<String, Secret<String>> =
            BTreeMap::from([("a".to_string(), Secret::new(BASE64.encode([7_u8; 32])))]);
        let privacy = Privacy::new(&keys, "a", &Secret::new(BASE64.encode([9_u8; 32]))).unwrap();
        let state = AppState::new(database.clone(), writer, dyn_clock, Limits::default())
            .with_privacy(Some(Arc::new(privacy)))
            .with_credit(Some(Arc::new(credit)));
        Self {
            router: app_with_risk(state, Some(Arc::new(risk))),
            database,
            clock,
            _test: test,
        }
    }

    async fn key(&self, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|scope| scope.to_string()).collect();
        self.database
            .create_api_key(name, &scopes, self.clock.now())
            .await
            .unwrap()
            .secret
            .expose()
            .clone()
    }

    async fn call(&self, method: &str, uri: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("Idempotency-Key", "scope-check");
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = if method == "GET" {
            request.body(Body::empty())
        } else {
            request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
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
