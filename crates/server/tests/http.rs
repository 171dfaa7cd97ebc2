//! In-process HTTP tests (tower `oneshot`, no socket) on SQLite and PostgreSQL: the happy
//! paths, authentication and scopes, and every bad input answered with its stable code
//! while leaving no trace in the database.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tally_core::Clock;
use tally_server::state::Limits;
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;
use support::{request, send, Instance, Setup, TestApp};

struct Harness {
    app: TestApp,
    admin: String,
    reader: String,
    writer: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let limits = Limits {
            body_limit_bytes: 4096,
            batch_body_limit_bytes: 64 * 1024,
            page_size_max: 1000,
        };
        // A start time with nanoseconds: replies must carry the stored (microsecond) time.
        let app = TestApp::start(
            test,
            "2026-05-01T00:00:00.123456789Z",
            Setup::default().limits(limits),
        )
        .await;
        let admin = app.key("admin", &["admin"]).await;
        let reader = app.key("reader", &["ledger:read"]).await;
        let writer = app.key("writer", &["ledger:write"]).await;
        Self {
            app,
            admin,
            reader,
            writer,
        }
    }

    /// A request to `router` with this `Authorization` header value, if any.
    async fn call_on(
        &self,
        router: &Router,
        method: &str,
        uri: &str,
        authorization: Option<String>,
        idempotency: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let request = request(method, uri, authorization.as_deref(), idempotency, body);
        let answer = send(router, request).await;
        (answer.status, answer.json_or_text())
    }

    async fn post(
        &self,
        uri: &str,
        key: &str,
        idempotency: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call_raw(
            "POST",
            uri,
            Some(key),
            Some(idempotency),
            Some(body.to_string()),
        )
        .await
    }

    async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.call_raw("GET", uri, Some(key), None, None).await
    }

    async fn open(&self, code: &str, currency: &str, limited: bool) -> String {
        let (status, body) = self
            .post(
                "/v1/accounts",
                &self.writer,
                &format!("open-{code}"),
                json!({
                    "code": code, "kind": "asset", "currency": currency,
                    "flags": {"debits_must_not_exceed_credits": limited},
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Rows in the journal and the idempotency table: a refused request must not add any.
    async fn row_counts(&self) -> (i64, i64, i64, i64) {
        let sql =
            "SELECT (SELECT COUNT(*) FROM journal_entries), (SELECT COUNT(*) FROM journal_legs), \
                   (SELECT COUNT(*) FROM holds), (SELECT COUNT(*) FROM idempotency_keys)";
        tally_store::with_pool!(&self.database, |pool| sqlx::query_as(sql)
            .fetch_one(pool)
            .await
            .unwrap())
    }
}

fn transfer(from: &str, to: &str, amount: &str, currency: &str) -> Value {
    json!({
        "legs": [
            {"account_id": from, "side": "debit", "amount": amount, "currency": currency},
            {"account_id": to, "side": "credit", "amount": amount, "currency": currency},
        ],
        "description": "transfer",
    })
}

tally_store::on_both_backends!(
    setup = Harness::new;
    ledger_round_trip,
    authentication_and_scopes,
    bad_input_gets_its_code_and_changes_nothing,
    holds_over_http,
    documents_and_metrics,
    keys_and_codes_reserved_for_tally_are_refused,
    a_bad_path_parameter_gets_a_json_error,
    a_write_the_ledger_cannot_store_is_applied_once_by_its_retry,
    the_bearer_scheme_is_read_in_any_letter_case,
    every_client_error_has_the_json_error_shape,
    a_revoked_key_is_refused_by_every_instance_within_the_cache_bound,
    keys_expire_and_rotate_with_a_grace_period,
);

async fn ledger_round_trip(harness: Harness) {
    let bank = harness.open("bank", "CNY", false).await;
    let wallet = harness.open("wallet", "CNY", true).await;
    // Retrying an account's creation under its key returns the same account.
    assert_eq!(harness.open("wallet", "CNY", true).await, wallet);
    let (status, entry) = harness
        .post(
            "/v1/entries",
            &harness.writer,
            "t1",
            transfer(&bank, &wallet, "1234.50", "CNY"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["legs"][1]["amount"], "1234.50");
    // Replaying the key returns the identical result.
    let (status, replay) = harness
        .post(
            "/v1/entries",
            &harness.writer,
            "t1",
            transfer(&bank, &wallet, "1234.50", "CNY"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, entry);
    let id = entry["id"].as_str().unwrap();
    let (status, fetched) = harness
        .get(&format!("/v1/entries/{id}"), &harness.reader)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, entry);
    let (_, account) = harness
        .get(&format!("/v1/accounts/{wallet}"), &harness.reader)
        .await;
    assert_eq!(account["balance"]["credits_posted"], "1234.50");
    assert_eq!(account["balance"]["debits_posted"], "0.00");
    // Balance as of before and after the entry.
    let (status, before) = harness
        .get(
            &format!("/v1/accounts/{wallet}/balance?as_of=2026-04-30T00:00:00Z"),
            &harness.reader,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["balance"]["credits_posted"], "0.00");
    harness.clock.advance(jiff::SignedDuration::from_hours(1));
    harness
        .post(
            "/v1/entries",
            &harness.writer,
            "t2",
            transfer(&wallet, &bank, "0.50", "CNY"),
        )
        .await;
    let (_, middle) = harness
        .get(
            &format!("/v1/accounts/{wallet}/balance?as_of=2026-05-01T00:30:00Z"),
            &harness.reader,
        )
        .await;
    assert_eq!(middle["balance"]["credits_posted"], "1234.50");
    assert_eq!(middle["balance"]["debits_posted"], "0.00");
    let (_, now) = harness
        .get(&format!("/v1/accounts/{wallet}/balance"), &harness.reader)
        .await;
    assert_eq!(now["balance"]["debits_posted"], "0.50");
    // Pages of one leg each.
    let (_, first) = harness
        .get(
            &format!("/v1/accounts/{wallet}/entries?limit=1"),
            &harness.reader,
        )
        .await;
    assert_eq!(first["legs"][0]["amount"], "1234.50");
    assert_eq!(first["next_after"], 1);
    let (_, second) = harness
        .get(
            &format!("/v1/accounts/{wallet}/entries?limit=1&after=1"),
            &harness.reader,
        )
        .await;
    assert_eq!(second["legs"][0]["amount"], "0.50");
    let (_, last) = harness
        .get(
            &format!("/v1/accounts/{wallet}/entries?limit=1&after=2"),
            &harness.reader,
        )
        .await;
    assert_eq!(last["legs"], json!([]));
    assert_eq!(last["next_after"], Value::Null);
}

async fn authentication_and_scopes(harness: Harness) {
    let (status, body) = harness.call_raw("GET", "/healthz", None, None, None).await;
    assert_eq!((status, body), (StatusCode::OK, Value::String("ok".into())));
    let wallet = harness.open("wallet", "USD", false).await;
    let uri = format!("/v1/accounts/{wallet}");
    let (status, body) = harness.call_raw("GET", &uri, None, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = harness
        .call_raw("GET", &uri, Some("tally_not-a-real-key"), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A writer cannot read; a reader cannot write; admin can do both.
    let (status, body) = harness.get(&uri, &harness.writer).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let before = harness.row_counts().await;
    let (status, body) = harness
        .post(
            "/v1/entries",
            &harness.reader,
            "r1",
            json!({"not": "even valid"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(harness.row_counts().await, before);
    let (status, _) = harness.get(&uri, &harness.admin).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = harness
        .call_raw("GET", "/metrics", Some(&harness.reader), None, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = harness
        .call_raw("GET", "/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn bad_input_gets_its_code_and_changes_nothing(harness: Harness) {
    let bank = harness.open("bank", "CNY", false).await;
    let wallet = harness.open("wallet", "CNY", true).await;
    let dollars = harness.open("dollars", "USD", false).await;
    harness
        .post(
            "/v1/entries",
            &harness.writer,
            "fund",
            transfer(&bank, &wallet, "10.00", "CNY"),
        )
        .await;
    let missing = uuid::Uuid::now_v7().to_string();
    let huge = "x".repeat(5000);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("malformed", "{\"legs\": [".into(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("unknown field", json!({"legs": [], "colour": "red"}).to_string(), StatusCode::BAD_REQUEST, "unknown_field"),
        ("float amount", json!({"legs": [{"account_id": bank, "side": "debit", "amount": 1.5, "currency": "CNY"}]}).to_string(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("too large", json!({"legs": [], "description": huge}).to_string(), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("unbalanced", json!({"legs": [
            {"account_id": bank, "side": "debit", "amount": "1.00", "currency": "CNY"},
            {"account_id": wallet, "side": "credit", "amount": "0.99", "currency": "CNY"}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY, "entry_unbalanced"),
        ("wrong currency", transfer(&bank, &dollars, "1.00", "CNY").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch"),
        ("unknown currency", transfer(&bank, &wallet, "1.00", "XYZ").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_currency"),
        ("too many digits", transfer(&bank, &wallet, "1.001", "CNY").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount"),
        ("overdraft", transfer(&wallet, &bank, "10.01", "CNY").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "exceeds_credits"),
        ("unknown account", transfer(&bank, &missing, "1.00", "CNY").to_string(), StatusCode::NOT_FOUND, "account_not_found"),
        ("one leg", json!({"legs": [{"account_id": bank, "side": "debit", "amount": "1.00", "currency": "CNY"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "entry_too_few_legs"),
        ("bad side", json!({"legs": [{"account_id": bank, "side": "up", "amount": "1.00", "currency": "CNY"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_side"),
        ("reused key", transfer(&bank, &wallet, "2.00", "CNY").to_string(), StatusCode::CONFLICT, "idempotency_key_reused"),
        // One account debited and credited near the 64-bit limit left its totals without
        // headroom for ever; legs that net to zero on an account are refused at any amount.
        ("self transfer", transfer(&bank, &bank, "92233720368547758.00", "CNY").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "entry_nets_to_zero_on_account"),
        ("small self transfer", transfer(&bank, &bank, "1.00", "CNY").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "entry_nets_to_zero_on_account"),
        ("above the maximum", transfer(&bank, &wallet, "100000000000.01", "CNY").to_string(), StatusCode::UNPROCESSABLE_ENTITY, "entry_amount_too_large"),
    ];
    let before = harness.row_counts().await;
    for (name, body, status, code) in cases {
        let key = if name == "reused key" {
            "fund".to_string()
        } else {
            format!("bad-{}", name.replace(' ', "-"))
        };
        let (got_status, got) = harness
            .call_raw(
                "POST",
                "/v1/entries",
                Some(&harness.writer),
                Some(&key),
                Some(body),
            )
            .await;
        assert_eq!(
            (got_status, got["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {got}"
        );
        assert!(got["error"]["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()));
        assert_eq!(harness.row_counts().await, before, "{name} left a trace");
    }
    let (status, body) = harness
        .call_raw(
            "POST",
            "/v1/entries",
            Some(&harness.writer),
            None,
            Some(transfer(&bank, &wallet, "1.00", "CNY").to_string()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_required"))
    );
    let request = Request::builder()
        .method("POST")
        .uri("/v1/entries")
        .header(header::AUTHORIZATION, format!("Bearer {}", harness.writer))
        .header("Idempotency-Key", "text")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(
            transfer(&bank, &wallet, "1.00", "CNY").to_string(),
        ))
        .unwrap();
    let answer = send(&harness.router, request).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = harness
        .post(
            "/v1/accounts",
            &harness.writer,
            "dup",
            json!({"code": "bank", "kind": "asset", "currency": "CNY"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("account_code_taken"))
    );
    let (status, body) = harness
        .post(
            "/v1/accounts",
            &harness.writer,
            "kind",
            json!({"code": "x", "kind": "cash", "currency": "CNY"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_account_kind")
        )
    );
    // A code that displays otherwise than it reads, or holds a control character.
    for (key, code) in [("bidi", "bank\u{202E}lac"), ("control", "bank\u{7}")] {
        let (status, body) = harness
            .post(
                "/v1/accounts",
                &harness.writer,
                key,
                json!({"code": code, "kind": "asset", "currency": "CNY"}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field")),
            "{key}: {body}"
        );
    }
    let (status, body) = harness
        .get("/v1/accounts/not-a-uuid", &harness.reader)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_id"))
    );
    let (status, body) = harness
        .get(&format!("/v1/accounts/{missing}"), &harness.reader)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("account_not_found"))
    );
    let (status, body) = harness
        .get(
            &format!("/v1/accounts/{bank}/balance?as_of=yesterday"),
            &harness.reader,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let (status, body) = harness
        .get(
            &format!("/v1/accounts/{bank}/entries?limit=0"),
            &harness.reader,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let (status, body) = harness.get("/v1/nowhere", &harness.reader).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = harness
        .call_raw("DELETE", "/v1/entries", Some(&harness.writer), None, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    assert_eq!(harness.row_counts().await, before);
}

async fn holds_over_http(harness: Harness) {
    let bank = harness.open("bank", "CNY", false).await;
    let wallet = harness.open("wallet", "CNY", true).await;
    let shop = harness.open("shop", "CNY", false).await;
    harness
        .post(
            "/v1/entries",
            &harness.writer,
            "fund",
            transfer(&bank, &wallet, "100.00", "CNY"),
        )
        .await;
    let hold = |amount: &str| {
        json!({
            "debit_account_id": wallet, "credit_account_id": shop, "amount": amount, "currency": "CNY",
            "expires_at": "2026-05-02T00:00:00Z", "description": "order 42",
        })
    };
    let (status, created) = harness
        .post("/v1/holds", &harness.writer, "h1", hold("80.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "pending");
    let (status, body) = harness
        .post("/v1/holds", &harness.writer, "h2", hold("20.01"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("exceeds_credits"))
    );
    let id = created["id"].as_str().unwrap();
    let (status, body) = harness
        .post(
            &format!("/v1/holds/{id}/post"),
            &harness.writer,
            "p0",
            json!({"amount": "80.01", "currency": "CNY"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("post_exceeds_hold"))
    );
    let (status, posted) = harness
        .post(
            &format!("/v1/holds/{id}/post"),
            &harness.writer,
            "p1",
            json!({"amount": "75.00", "currency": "CNY"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["hold"]["status"], "posted");
    assert_eq!(posted["hold"]["posted_amount"], "75.00");
    assert_eq!(posted["entry"]["legs"][0]["amount"], "75.00");
    let (_, account) = harness
        .get(&format!("/v1/accounts/{wallet}"), &harness.reader)
        .await;
    assert_eq!(account["balance"]["debits_posted"], "75.00");
    assert_eq!(account["balance"]["debits_pending"], "0.00");
    let (status, body) = harness
        .call_raw(
            "POST",
            &format!("/v1/holds/{id}/void"),
            Some(&harness.writer),
            Some("v1"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("hold_not_pending"))
    );
    let (_, second) = harness
        .post("/v1/holds", &harness.writer, "h3", hold("25.00"))
        .await;
    let second_id = second["id"].as_str().unwrap();
    let (status, voided) = harness
        .call_raw(
            "POST",
            &format!("/v1/holds/{second_id}/void"),
            Some(&harness.writer),
            Some("v2"),
            None,
        )
        .await;
    assert_eq!(
        (status, voided["status"].as_str()),
        (StatusCode::OK, Some("voided"))
    );
    let (status, fetched) = harness
        .get(&format!("/v1/holds/{second_id}"), &harness.reader)
        .await;
    assert_eq!((status, fetched), (StatusCode::OK, voided));
    let (status, body) = harness
        .post(
            "/v1/holds",
            &harness.writer,
            "h4",
            json!({
        "debit_account_id": wallet, "credit_account_id": shop, "amount": "1.00", "currency": "CNY",
        "expires_at": "2026-04-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("hold_expiry_not_in_future")
        )
    );
}

async fn documents_and_metrics(harness: Harness) {
    let (status, document) = harness.get("/v1/openapi.json", &harness.reader).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/accounts",
        "/v1/entries",
        "/v1/holds/{id}/post",
        "/v1/accounts/{id}/balance",
    ] {
        assert!(document["paths"].get(path).is_some(), "missing {path}");
    }
    harness
        .get("/v1/accounts/not-a-uuid", &harness.reader)
        .await;
    let (status, text) = harness
        .call_raw("GET", "/metrics", Some(&harness.admin), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("tally_http_requests_total"), "{text}");
    assert!(
        text.contains("tally_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

async fn keys_and_codes_reserved_for_tally_are_refused(harness: Harness) {
    let bank = harness.open("bank", "USD", false).await;
    let wallet = harness.open("wallet", "USD", false).await;
    let before = harness.row_counts().await;
    let hold = json!({
        "debit_account_id": bank, "credit_account_id": wallet, "amount": "1.00", "currency": "USD",
        "expires_at": "2026-05-02T00:00:00Z",
    });
    // Keys the credit service makes for its ledger commands, its ledger accounts and end
    // of day: a client taking one first would block a credit account or a currency for good.
    for (uri, key, body, prefix) in [
        (
            "/v1/entries",
            "credit:a-1:0",
            transfer(&bank, &wallet, "1.00", "USD"),
            "credit:",
        ),
        ("/v1/holds", "credit:a-1:hold", hold.clone(), "credit:"),
        (
            "/v1/entries",
            "credit-ledger-account:credit-receivable-USD",
            transfer(&bank, &wallet, "1.00", "USD"),
            "credit-",
        ),
        (
            "/v1/entries",
            "credit-eod:2026-05-01:0:USD",
            transfer(&bank, &wallet, "1.00", "USD"),
            "credit-",
        ),
        (
            "/v1/accounts",
            "credit-x",
            json!({"code": "float", "kind": "asset", "currency": "USD"}),
            "credit-",
        ),
    ] {
        let (status, body) = harness.post(uri, &harness.writer, key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {body}");
        assert_eq!(body["error"]["code"], "invalid_idempotency_key", "{key}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{prefix:?}")), "{message}");
    }
    // A key that only looks alike is the client's to use.
    let (status, body) = harness
        .post(
            "/v1/entries",
            &harness.writer,
            "Credit:a-1:0",
            transfer(&bank, &wallet, "1.00", "USD"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after_allowed = harness.row_counts().await;
    // The codes of the credit service's ledger accounts.
    // In any letter case or compatibility form: they read as the credit service's own.
    for (index, code) in [
        "credit-receivable-USD",
        "credit-anything",
        "CREDIT-receivable-USD",
        "Credit-x",
        "ｃｒｅｄｉｔ-receivable-USD",
        "ｃｒｅｄｉｔ－x",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = harness
            .post(
                "/v1/accounts",
                &harness.writer,
                &format!("open-reserved-{index}"),
                json!({"code": code, "kind": "asset", "currency": "USD"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {body}");
        assert_eq!(body["error"]["code"], "account_code_reserved", "{code}");
    }
    let (status, body) = harness
        .post(
            "/v1/accounts",
            &harness.writer,
            "open-credit",
            json!({"code": "credit", "kind": "asset", "currency": "USD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Nothing of the refused requests was stored.
    assert_eq!(before.0 + 1, after_allowed.0);
    assert_eq!(harness.row_counts().await.0, after_allowed.0);
    assert_eq!(harness.row_counts().await.3, after_allowed.3 + 1);
}

async fn a_bad_path_parameter_gets_a_json_error(harness: Harness) {
    // A percent-escape that is not UTF-8 fails before the handler sees the id.
    for uri in ["/v1/accounts/%FF", "/v1/entries/%FF%FE", "/v1/holds/%C3"] {
        let (status, body) = harness.get(uri, &harness.reader).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "invalid_id", "{uri}: {body}");
    }
}

/// `503 storage_unavailable` from the ledger promises that nothing was applied and that a
/// retry with the same idempotency key applies the write once. The database refuses new
/// journal entries (a trigger, as a full disk would) and then accepts them again.
async fn a_write_the_ledger_cannot_store_is_applied_once_by_its_retry(harness: Harness) {
    let bank = harness.open("bank", "CNY", false).await;
    let wallet = harness.open("wallet", "CNY", false).await;
    let execute = |sql: String| {
        let app: &TestApp = &harness;
        async move {
            app.execute(&sql).await.unwrap();
        }
    };
    let sqlite = matches!(harness.database, Database::Sqlite(_));
    if sqlite {
        execute(
            "CREATE TRIGGER journal_refused BEFORE INSERT ON journal_entries \
             BEGIN SELECT RAISE(ABORT, 'storage unavailable'); END"
                .into(),
        )
        .await;
    } else {
        execute(
            "CREATE FUNCTION journal_refused() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'storage unavailable'; END $$"
                .into(),
        )
        .await;
        execute(
            "CREATE TRIGGER journal_refused BEFORE INSERT ON journal_entries \
             FOR EACH ROW EXECUTE FUNCTION journal_refused()"
                .into(),
        )
        .await;
    }
    let counts = harness.row_counts().await;
    let (_, wallet_before) = harness
        .get(&format!("/v1/accounts/{wallet}"), &harness.reader)
        .await;
    for attempt in 0..2 {
        let (status, body) = harness
            .post(
                "/v1/entries",
                &harness.writer,
                "pay-1",
                transfer(&bank, &wallet, "10.00", "CNY"),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
            "attempt {attempt}: {body}"
        );
        assert_eq!(harness.row_counts().await, counts, "attempt {attempt}");
        let (_, wallet_now) = harness
            .get(&format!("/v1/accounts/{wallet}"), &harness.reader)
            .await;
        assert_eq!(wallet_now, wallet_before, "attempt {attempt}");
    }
    execute(if sqlite {
        "DROP TRIGGER journal_refused".into()
    } else {
        "DROP TRIGGER journal_refused ON journal_entries".into()
    })
    .await;
    let (status, entry) = harness
        .post(
            "/v1/entries",
            &harness.writer,
            "pay-1",
            transfer(&bank, &wallet, "10.00", "CNY"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let (status, replay) = harness
        .post(
            "/v1/entries",
            &harness.writer,
            "pay-1",
            transfer(&bank, &wallet, "10.00", "CNY"),
        )
        .await;
    assert_eq!((status, &replay), (StatusCode::CREATED, &entry));
    let (entries, legs, holds, keys) = harness.row_counts().await;
    assert_eq!(
        (entries, legs, holds, keys),
        (counts.0 + 1, counts.1 + 2, counts.2, counts.3 + 1),
        "applied once"
    );
    let (_, wallet_after) = harness
        .get(&format!("/v1/accounts/{wallet}"), &harness.reader)
        .await;
    assert_ne!(wallet_after, wallet_before);
    assert_eq!(
        harness.database.inconsistent_accounts().await.unwrap(),
        Vec::<String>::new()
    );
    for totals in harness.database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
    }
}
async fn the_bearer_scheme_is_read_in_any_letter_case(harness: Harness) {
    let wallet = harness.open("wallet", "USD", false).await;
    let uri = format!("/v1/accounts/{wallet}");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, body) = harness
            .call_on(
                &harness.router,
                "GET",
                &uri,
                Some(format!("{scheme} {}", harness.reader)),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
    for authorization in [
        format!("Basic {}", harness.reader),
        format!("Bearer{}", harness.reader),
        "Bearer ".to_string(),
    ] {
        let (status, body) = harness
            .call_on(
                &harness.router,
                "GET",
                &uri,
                Some(authorization),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

async fn every_client_error_has_the_json_error_shape(harness: Harness) {
    let wallet = harness.open("wallet", "USD", false).await;
    let long = format!("/v1/accounts/{}", "a".repeat(10_000));
    let cases = [
        // A route that exists without that method, at the top and in nested groups.
        (
            "DELETE",
            format!("/v1/accounts/{wallet}"),
            405,
            "method_not_allowed",
        ),
        ("GET", "/v1/entries".to_string(), 405, "method_not_allowed"),
        (
            "PUT",
            "/v1/credit/products".to_string(),
            405,
            "method_not_allowed",
        ),
        ("POST", "/healthz".to_string(), 405, "method_not_allowed"),
        ("GET", "/v1/no-such-route".to_string(), 404, "not_found"),
        ("GET", "/no-such-route".to_string(), 404, "not_found"),
        ("GET", long, 414, "uri_too_long"),
    ];
    for (method, uri, status, code) in cases {
        let (got, body) = harness
            .call_raw(method, &uri, Some(&harness.admin), None, None)
            .await;
        let shown = &uri[..uri.len().min(60)];
        assert_eq!(got.as_u16(), status, "{method} {shown}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {shown}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{method} {shown}: {body}"
        );
    }
}

/// A second `tally serve` on the same database: its own key cache, its own writer.
async fn second_instance(harness: &Harness) -> Router {
    Instance::start(&harness.database, harness.clock.clone(), &Setup::default())
        .await
        .router
}

async fn a_revoked_key_is_refused_by_every_instance_within_the_cache_bound(harness: Harness) {
    let wallet = harness.open("wallet", "USD", false).await;
    let uri = format!("/v1/accounts/{wallet}");
    let other = second_instance(&harness).await;
    let bearer = || Some(format!("Bearer {}", harness.reader));
    // Both instances have verified (and cached) the key.
    for router in [&harness.router, &other] {
        let (status, body) = harness
            .call_on(router, "GET", &uri, bearer(), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let reader_id = harness
        .database
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.name == "reader")
        .unwrap()
        .id;
    let revoked = tally_server::auth::revoke(&harness.state, &reader_id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    // The instance that revoked it refuses it at once; the other within the cache bound.
    let (status, body) = harness
        .call_on(&harness.router, "GET", &uri, bearer(), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    tokio::time::sleep(
        tally_server::auth::CACHE_TIME_TO_LIVE + std::time::Duration::from_millis(100),
    )
    .await;
    let (status, body) = harness
        .call_on(&other, "GET", &uri, bearer(), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    // Revoking twice is refused and changes nothing.
    assert!(matches!(
        tally_server::auth::revoke(&harness.state, &reader_id).await,
        Err(tally_store::KeyLifecycleError::Revoked(_))
    ));
}

async fn keys_expire_and_rotate_with_a_grace_period(harness: Harness) {
    let wallet = harness.open("wallet", "USD", false).await;
    let uri = format!("/v1/accounts/{wallet}");
    let now = harness.clock.now();
    let scopes = vec!["ledger:read".to_string()];
    // An expiry in the past is refused.
    assert!(matches!(
        harness
            .database
            .create_api_key_expiring("late", &scopes, Some(now), now)
            .await,
        Err(tally_store::KeyLifecycleError::ExpiryNotInFuture(..))
    ));
    let expiring = harness
        .database
        .create_api_key_expiring(
            "temporary",
            &scopes,
            Some(now + jiff::SignedDuration::from_secs(60)),
            now,
        )
        .await
        .unwrap();
    let temporary = expiring.secret.expose().clone();
    let (status, _) = harness.get(&uri, &temporary).await;
    assert_eq!(status, StatusCode::OK);

    // Rotation: a new key with the same name and scopes; the old one keeps working for the
    // grace period, even though it is cached.
    let reader = harness
        .database
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.name == "reader")
        .unwrap();
    let (status, _) = harness.get(&uri, &harness.reader).await;
    assert_eq!(status, StatusCode::OK);
    let rotated = harness
        .database
        .rotate_api_key(&reader.id, jiff::SignedDuration::from_secs(30), None, now)
        .await
        .unwrap();
    assert_eq!(rotated.key.name, "reader");
    assert_eq!(rotated.key.scopes, reader.scopes);
    assert_eq!(
        rotated.key.rotated_from.as_deref(),
        Some(reader.id.as_str())
    );
    assert_ne!(rotated.key.id, reader.id);
    let new_reader = rotated.secret.expose().clone();
    for key in [&harness.reader, &new_reader] {
        let (status, body) = harness.get(&uri, key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    harness.clock.advance(jiff::SignedDuration::from_secs(31));
    // The cache read the old key before its rotation: it learns the new expiry within its
    // bound (a real grace period is far longer than the bound).
    tokio::time::sleep(tally_server::auth::CACHE_TIME_TO_LIVE).await;
    let (status, body) = harness.get(&uri, &harness.reader).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old key after its grace: {body}"
    );
    let (status, body) = harness.get(&uri, &new_reader).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The old key, past its grace, can be neither rotated again nor used.
    assert!(matches!(
        harness
            .database
            .rotate_api_key(
                &reader.id,
                jiff::SignedDuration::ZERO,
                None,
                harness.clock.now()
            )
            .await,
        Err(tally_store::KeyLifecycleError::Expired(..))
    ));
    harness.clock.advance(jiff::SignedDuration::from_secs(30));
    let (status, _) = harness.get(&uri, &temporary).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "past its expiry");

    let listed = harness.database.api_keys().await.unwrap();
    let status_of = |id: &str| {
        listed
            .iter()
            .find(|key| key.id == id)
            .unwrap()
            .status(harness.clock.now())
    };
    assert_eq!(status_of(&reader.id), "expired");
    assert_eq!(status_of(&rotated.key.id), "live");
    assert_eq!(status_of(&expiring.key.id), "expired");
}
