//! The operations console over HTTP, on SQLite and PostgreSQL: sessions (sign-in with an API
//! key, the cookie's attributes, idle timeout, a revoked key, sign-out), CSRF on every form,
//! pages that follow the key's scopes, a customer masked until one field is shown in clear
//! with a reason (one audit row), and the risk case worked from the queue to approval.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use jiff::SignedDuration;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tally_core::Clock;
use tally_store::testing::TestDatabase;

mod support;
use support::{privacy, send, Answer, Setup, TestApp};

const NATIONAL_ID: &str = "11010519491231002X";
const PHONE: &str = "13800138000";
const PHONE_IN_CLEAR: &str = "+8613800138000";

struct Harness {
    app: TestApp,
}

support::deref_to_app!(Harness);

/// A signed-in browser: its cookie's token and the session's CSRF token.
struct Browser {
    token: String,
    csrf: String,
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).credit().risk();
        let app = TestApp::start(test, "2026-06-01T12:00:00Z", setup).await;
        Self { app }
    }

    /// A console request with the session cookie `token` (if any) and a form (if any).
    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Answer {
        self.send_with(method, uri, token, form, &[]).await
    }

    async fn send_with(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::COOKIE, format!("other=1; tally_console={token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match form {
            Some(fields) => request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(serde_urlencoded::to_string(fields).unwrap())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        send(&self.app.router, request).await
    }

    /// Signs in with `key`: the session's tokens, read from the cookie and a page's form.
    async fn sign_in(&self, key: &str) -> Browser {
        let answer = self
            .send("POST", "/console/sign-in", None, Some(&[("key", key)]))
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
        assert_eq!(location(&answer), "/console/overview");
        let cookie = set_cookie(&answer).unwrap();
        let token = cookie
            .strip_prefix("tally_console=")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let overview = self
            .send("GET", "/console/overview", Some(&token), None)
            .await;
        assert_eq!(overview.status, StatusCode::OK, "{}", text(&overview));
        let csrf = csrf_of(&text(&overview));
        Browser { token, csrf }
    }

    async fn count(&self, sql: &str) -> i64 {
        self.scalar(sql).await
    }

    /// A customer created through the API: its id.
    async fn customer(&self) -> String {
        let writer = self.key("onboarding", &["credit:write"]).await;
        let (status, body) = self
            .call(
                "POST",
                "/v1/customers",
                &writer,
                Some("customer-1"),
                Some(json!({"name": "张三", "phone": PHONE, "national_id": NATIONAL_ID})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// A review case opened by the risk engine (a watched device on a transaction): its id.
    async fn review_case(&self) -> String {
        let writer = self.key("events", &["risk:write"]).await;
        let (status, entry) = self
            .call("POST", "/v1/risk/lists", &writer, None, Some(json!({"kind": "watch", "field": "device", "value": "d-watch", "reason": "seen in a fraud ring"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
        let event = json!({"id": "e1", "kind": "transaction", "at": "2026-06-01T12:00:00Z", "customer": "bob", "device": "d-watch", "merchant": "m1", "amount": {"value": "120.05", "currency": "CNY"}});
        let (status, body) = self
            .call("POST", "/v1/risk/decisions", &writer, None, Some(event))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["decision"]["action"], "review", "{body}");
        body["case_id"].as_str().unwrap().to_string()
    }

    async fn case_status(&self, id: &str) -> String {
        let status: String = tally_store::with_pool!(&self.database, |pool| sqlx::query_scalar(
            "SELECT status FROM risk_cases WHERE id = $1"
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap());
        status
    }
}

fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

fn location(answer: &Answer) -> &str {
    answer
        .headers
        .get(header::LOCATION)
        .map_or("", |value| value.to_str().unwrap())
}

fn set_cookie(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get(header::SET_COOKIE)
        .map(|value| value.to_str().unwrap().to_string())
}

/// The CSRF token of the first form of a page.
fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

fn is_sign_in_redirect(answer: &Answer) -> bool {
    answer.status == StatusCode::SEE_OTHER && location(answer) == "/console/sign-in"
}

tally_store::on_both_backends!(
    setup = Harness::new;
    every_page_and_form_without_a_session_goes_to_sign_in,
    a_wrong_key_at_sign_in_gets_the_form_again_and_no_cookie,
    the_cookie_is_http_only_strict_on_the_console_path_and_secure_over_tls,
    an_idle_session_ends_and_a_used_one_goes_on,
    a_revoked_or_expired_key_ends_its_sessions,
    forms_without_the_right_csrf_token_are_refused_and_change_nothing,
    a_confirmed_claim_is_worked_to_restored_access,
    pages_and_links_follow_the_keys_scopes,
    a_customer_is_masked_until_one_field_is_shown_with_a_reason,
    a_lookup_by_phone_is_audited_and_answered_masked,
    a_case_is_explained_and_worked_from_claim_to_approval,
    the_overview_counts_today_and_draws_bars,
    a_rule_set_is_refused_at_its_line_then_uploaded_and_made_live_by_a_second_key,
    sign_out_ends_the_session,
    the_console_is_not_part_of_the_api_document,
);

/// Every page and every form needs a session: without a cookie, or with one the database
/// does not know, each answers 303 to the sign-in page (the unknown cookie is removed).
async fn every_page_and_form_without_a_session_goes_to_sign_in(harness: Harness) {
    let customer = "01890a5d-ac96-774b-bcce-b302099a8057";
    let gets = [
        "/console/overview".to_string(),
        "/console/cases".to_string(),
        "/console/cases/c1".to_string(),
        "/console/customers".to_string(),
        format!("/console/customers/{customer}"),
        "/console/audit".to_string(),
        "/console/rules".to_string(),
    ];
    let posts = [
        "/console/sign-out".to_string(),
        "/console/cases/c1/claim".to_string(),
        "/console/rules".to_string(),
        "/console/rules/activation-requests/r1/approve".to_string(),
        "/console/customers/search".to_string(),
        format!("/console/customers/{customer}/reveal"),
    ];
    let requests = gets
        .iter()
        .map(|uri| ("GET", uri))
        .chain(posts.iter().map(|uri| ("POST", uri)));
    for (method, uri) in requests {
        let form: Option<&[(&str, &str)]> = (method == "POST").then_some(&[("csrf", "x")]);
        let answer = harness.send(method, uri, None, form).await;
        assert!(
            is_sign_in_redirect(&answer),
            "{method} {uri}: {}",
            answer.status
        );
        assert_eq!(set_cookie(&answer), None, "{method} {uri}");
        let answer = harness.send(method, uri, Some("forged"), form).await;
        assert!(
            is_sign_in_redirect(&answer),
            "{method} {uri}: {}",
            answer.status
        );
        assert!(
            set_cookie(&answer).unwrap().contains("Max-Age=0"),
            "{method} {uri}"
        );
    }
    // A NUL in the address is refused before anything is read, on either backend.
    let key = harness.key("analyst", &["risk:analyst"]).await;
    let browser = harness.sign_in(&key).await;
    for uri in ["/console/cases/a%00b", "/console/cases?kind=%00"] {
        let answer = harness.send("GET", uri, Some(&browser.token), None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(text(&answer).contains("invalid_text"));
    }
    let answer = harness.send("GET", "/console", None, None).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), "/console/overview");
    let answer = harness.send("GET", "/console/sign-in", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(text(&answer).contains("name=\"key\""));
}

async fn a_wrong_key_at_sign_in_gets_the_form_again_and_no_cookie(harness: Harness) {
    let key = harness.key("analyst", &["risk:analyst"]).await;
    for wrong in [
        "tally_not-a-key".to_string(),
        String::new(),
        format!("{key}x"),
        "x".repeat(300),
    ] {
        let answer = harness
            .send("POST", "/console/sign-in", None, Some(&[("key", &wrong)]))
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{wrong:?}");
        assert_eq!(set_cookie(&answer), None);
        let page = text(&answer);
        assert!(
            page.contains("unknown, expired or revoked API key"),
            "{page}"
        );
        assert!(page.contains("name=\"key\""));
        assert!(!page.contains(&key));
    }
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM console_sessions").await,
        0
    );
    // A right key posted from another site's form signs nobody in (login CSRF).
    let answer = harness
        .send_with(
            "POST",
            "/console/sign-in",
            None,
            Some(&[("key", &key)]),
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(set_cookie(&answer), None);
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM console_sessions").await,
        0
    );
    let answer = harness
        .send_with(
            "POST",
            "/console/sign-in",
            None,
            Some(&[("key", &key)]),
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    harness
        .execute("DELETE FROM console_sessions")
        .await
        .unwrap();
    // A revoked key is as wrong as an unknown one.
    let id = harness.database.api_keys().await.unwrap()[0].id.clone();
    tally_server::auth::revoke(&harness.state, &id)
        .await
        .unwrap();
    let answer = harness
        .send("POST", "/console/sign-in", None, Some(&[("key", &key)]))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(set_cookie(&answer), None);
}

async fn the_cookie_is_http_only_strict_on_the_console_path_and_secure_over_tls(harness: Harness) {
    let key = harness.key("analyst", &["risk:analyst"]).await;
    let answer = harness
        .send("POST", "/console/sign-in", None, Some(&[("key", &key)]))
        .await;
    let cookie = set_cookie(&answer).unwrap();
    let attributes: Vec<&str> = cookie.split("; ").collect();
    assert!(attributes[0].starts_with("tally_console="), "{cookie}");
    let token = attributes[0].trim_start_matches("tally_console=");
    assert!(token.len() >= 43, "{cookie}");
    assert_eq!(
        attributes[1..],
        ["Path=/console", "HttpOnly", "SameSite=Strict"]
    );
    // Only a hash of the token is stored, with the key and its scopes.
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let (stored_hash, key_id, scopes): (String, String, String) = tally_store::with_pool!(
        &harness.database,
        |pool| sqlx::query_as("SELECT token_hash, api_key_id, scopes FROM console_sessions")
            .fetch_one(pool)
            .await
            .unwrap()
    );
    assert_eq!(stored_hash, hash);
    assert_eq!(scopes, "risk:analyst");
    assert_eq!(
        key_id,
        harness.database.api_keys().await.unwrap()[0].id.clone()
    );
    // Behind a TLS proxy the cookie is Secure.
    let answer = harness
        .send_with(
            "POST",
            "/console/sign-in",
            None,
            Some(&[("key", &key)]),
            &[("x-forwarded-proto", "https")],
        )
        .await;
    let cookie = set_cookie(&answer).unwrap();
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Strict; Secure"),
        "{cookie}"
    );
    // Pages are never cached, framed or scripted.
    let browser = harness.sign_in(&key).await;
    let page = harness
        .send("GET", "/console/overview", Some(&browser.token), None)
        .await;
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    // Not `no-referrer`: a browser then sends `Origin: null` with the sign-in form, which
    // the origin check refuses (found by the browser tests, crates/cli/tests/browser).
    assert_eq!(page.headers[header::REFERRER_POLICY], "same-origin");
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
}

async fn an_idle_session_ends_and_a_used_one_goes_on(harness: Harness) {
    let key = harness.key("analyst", &["risk:analyst"]).await;
    let browser = harness.sign_in(&key).await;
    // Used every 10 minutes, it lasts (the default idle timeout is 15 minutes).
    for _ in 0..3 {
        harness.clock.advance(SignedDuration::from_secs(600));
        let answer = harness
            .send("GET", "/console/cases", Some(&browser.token), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    harness.clock.advance(SignedDuration::from_secs(900));
    let answer = harness
        .send("GET", "/console/cases", Some(&browser.token), None)
        .await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
    assert!(set_cookie(&answer).unwrap().contains("Max-Age=0"));
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM console_sessions").await,
        0
    );
    // Signing in again works.
    let browser = harness.sign_in(&key).await;
    let answer = harness
        .send("GET", "/console/cases", Some(&browser.token), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

async fn a_revoked_or_expired_key_ends_its_sessions(harness: Harness) {
    let key = harness.key("analyst", &["risk:analyst"]).await;
    let browser = harness.sign_in(&key).await;
    let id = harness.database.api_keys().await.unwrap()[0].id.clone();
    tally_server::auth::revoke(&harness.state, &id)
        .await
        .unwrap();
    let answer = harness
        .send("GET", "/console/overview", Some(&browser.token), None)
        .await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM console_sessions").await,
        0
    );

    let expiring = harness
        .database
        .create_api_key_expiring(
            "temporary",
            &["risk:analyst".to_string()],
            Some(harness.clock.now() + SignedDuration::from_secs(60)),
            harness.clock.now(),
        )
        .await
        .unwrap();
    let browser = harness.sign_in(expiring.secret.expose()).await;
    harness.clock.advance(SignedDuration::from_secs(61));
    let answer = harness
        .send("GET", "/console/overview", Some(&browser.token), None)
        .await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
}

/// A form without the session's CSRF token, or with another one (another session's), is
/// refused with 403 before anything happens: no claim, no read in clear, no sign-out.
async fn forms_without_the_right_csrf_token_are_refused_and_change_nothing(harness: Harness) {
    let case = harness.review_case().await;
    let customer = harness.customer().await;
    let key = harness
        .key("analyst", &["risk:analyst", "credit:read", "pii:read"])
        .await;
    let browser = harness.sign_in(&key).await;
    let other = harness.sign_in(&key).await;
    assert_ne!(browser.csrf, other.csrf);
    let claim = format!("/console/cases/{case}/claim");
    let reveal = format!("/console/customers/{customer}/reveal");
    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        (claim.as_str(), vec![("note", "mine")]),
        ("/console/rules", vec![("source", SMALL_RULE_SET)]),
        (
            reveal.as_str(),
            vec![("field", "phone"), ("reason", "ticket 7")],
        ),
        (
            "/console/customers/search",
            vec![("field", "phone"), ("value", PHONE)],
        ),
        ("/console/sign-out", vec![]),
    ];
    for (uri, fields) in &forms {
        let wrong: Vec<(&str, &str)> = fields
            .iter()
            .copied()
            .chain([("csrf", other.csrf.as_str())])
            .collect();
        let twice: Vec<(&str, &str)> = fields
            .iter()
            .copied()
            .chain([("csrf", browser.csrf.as_str()), ("csrf", "x")])
            .collect();
        for form in [fields.clone(), wrong, twice] {
            let answer = harness
                .send("POST", uri, Some(&browser.token), Some(&form))
                .await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri} {form:?}");
            let page = text(&answer);
            assert!(page.contains("CSRF token is missing or wrong"), "{page}");
            assert_eq!(
                answer.headers[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
        }
    }
    assert_eq!(harness.case_status(&case).await, "open");
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM risk_rule_sets").await,
        1
    );
    assert_eq!(harness.count("SELECT COUNT(*) FROM pii_reads").await, 0);
    assert_eq!(harness.count("SELECT COUNT(*) FROM pii_lookups").await, 0);
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM console_sessions").await,
        2
    );
    // With its own token, the same form goes through.
    let answer = harness
        .send(
            "POST",
            &claim,
            Some(&browser.token),
            Some(&[("note", "mine"), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(harness.case_status(&case).await, "claimed");
}

/// A key without `risk:analyst` has no link to the cases and gets 403 on them; one with it
/// has both. Customers need `credit:read`, the audit `admin`, showing in clear `pii:read`.
async fn pages_and_links_follow_the_keys_scopes(harness: Harness) {
    let customer = harness.customer().await;
    let clerk = harness.key("clerk", &["credit:read"]).await;
    let browser = harness.sign_in(&clerk).await;
    let overview = text(
        &harness
            .send("GET", "/console/overview", Some(&browser.token), None)
            .await,
    );
    assert!(!overview.contains("href=\"/console/cases\""), "{overview}");
    assert!(!overview.contains("href=\"/console/audit\""));
    assert!(overview.contains("href=\"/console/customers\""));
    for uri in [
        "/console/cases",
        "/console/cases/c1",
        "/console/audit",
        "/console/rules",
    ] {
        let answer = harness.send("GET", uri, Some(&browser.token), None).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        let page = text(&answer);
        assert!(page.contains("lacks scope"), "{uri}");
        // No dead end: the refusal keeps the clerk's navigation and sign-out.
        assert!(page.contains("href=\"/console/customers\""), "{page}");
        assert!(page.contains("action=\"/console/sign-out\""), "{page}");
        assert!(!page.contains("href=\"/console/audit\""), "{page}");
    }
    let answer = harness
        .send(
            "POST",
            "/console/cases/c1/claim",
            Some(&browser.token),
            Some(&[("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Masked, without the form to show in clear, which is refused anyway.
    let page = text(
        &harness
            .send(
                "GET",
                &format!("/console/customers/{customer}"),
                Some(&browser.token),
                None,
            )
            .await,
    );
    assert!(page.contains("*******8000"), "{page}");
    assert!(!page.contains("Show in clear"));
    let answer = harness
        .send(
            "POST",
            &format!("/console/customers/{customer}/reveal"),
            Some(&browser.token),
            Some(&[("field", "phone"), ("reason", "r"), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(harness.count("SELECT COUNT(*) FROM pii_reads").await, 0);

    let analyst = harness.key("analyst", &["risk:analyst"]).await;
    let browser = harness.sign_in(&analyst).await;
    let overview = text(
        &harness
            .send("GET", "/console/overview", Some(&browser.token), None)
            .await,
    );
    assert!(overview.contains("href=\"/console/cases\""));
    assert!(!overview.contains("href=\"/console/customers\""));
    let answer = harness
        .send("GET", "/console/cases", Some(&browser.token), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = harness
        .send(
            "GET",
            &format!("/console/customers/{customer}"),
            Some(&browser.token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

/// The customer page shows nothing personal in clear; "show in clear" of the phone with a
/// reason shows the phone (and only it) once and writes exactly one `pii_reads` row; the
/// page read again is masked; the read is on the audit page.
async fn a_customer_is_masked_until_one_field_is_shown_with_a_reason(harness: Harness) {
    let customer = harness.customer().await;
    let key = harness
        .key("agent", &["credit:read", "pii:read", "admin"])
        .await;
    let browser = harness.sign_in(&key).await;
    let uri = format!("/console/customers/{customer}");
    let in_clear = [PHONE, PHONE_IN_CLEAR, NATIONAL_ID, "张三", "1949-12-31"];
    let masked = text(&harness.send("GET", &uri, Some(&browser.token), None).await);
    assert!(masked.contains("*******8000"), "{masked}");
    assert!(masked.contains("Show in clear"));
    for value in in_clear {
        assert!(!masked.contains(value), "{value} in {masked}");
    }
    // No reason: refused, nothing read.
    let reveal = format!("{uri}/reveal");
    let answer = harness
        .send(
            "POST",
            &reveal,
            Some(&browser.token),
            Some(&[
                ("field", "phone"),
                ("reason", "  "),
                ("csrf", &browser.csrf),
            ]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(text(&answer).contains("reason_required"));
    assert_eq!(harness.count("SELECT COUNT(*) FROM pii_reads").await, 0);

    let answer = harness
        .send(
            "POST",
            &reveal,
            Some(&browser.token),
            Some(&[
                ("field", "phone"),
                ("reason", "ticket 42"),
                ("csrf", &browser.csrf),
            ]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    let shown = text(&answer);
    assert!(shown.contains(PHONE_IN_CLEAR), "{shown}");
    for value in [NATIONAL_ID, "张三", "1949-12-31"] {
        assert!(!shown.contains(value), "{value} in {shown}");
    }
    assert_eq!(harness.count("SELECT COUNT(*) FROM pii_reads").await, 1);
    let (id, field, reason, principal): (String, String, String, String) = tally_store::with_pool!(
        &harness.database,
        |pool| sqlx::query_as("SELECT id, field, reason, principal FROM pii_reads")
            .fetch_one(pool)
            .await
            .unwrap()
    );
    // The reason is sealed where stored.
    assert!(reason.starts_with("v1:"), "{reason}");
    let reason = tally_service::sealed_texts::open_text(
        Some(&privacy()),
        tally_store::sealed_texts::TextColumn::PiiReadReason,
        &id,
        &reason,
    );
    assert_eq!(
        (field.as_str(), reason.as_str(), principal.as_str()),
        ("phone", "ticket 42", "agent")
    );
    // Shown once: the page read again is masked.
    let again = text(&harness.send("GET", &uri, Some(&browser.token), None).await);
    assert!(!again.contains(PHONE_IN_CLEAR));
    // And the read is on the audit page.
    let audit = text(
        &harness
            .send("GET", "/console/audit", Some(&browser.token), None)
            .await,
    );
    assert!(audit.contains("ticket 42"), "{audit}");
    assert!(audit.contains(&customer));
    assert!(!audit.contains(PHONE_IN_CLEAR));
}

async fn a_lookup_by_phone_is_audited_and_answered_masked(harness: Harness) {
    let customer = harness.customer().await;
    let key = harness.key("agent", &["credit:read", "admin"]).await;
    let browser = harness.sign_in(&key).await;
    let answer = harness
        .send(
            "POST",
            "/console/customers/search",
            Some(&browser.token),
            Some(&[
                ("field", "phone"),
                ("value", "+86 138 0013 8000"),
                ("reason", "call 9"),
                ("csrf", &browser.csrf),
            ]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let page = text(&answer);
    assert!(
        page.contains(&format!("/console/customers/{customer}")),
        "{page}"
    );
    assert!(page.contains("*******8000"));
    assert!(!page.contains(PHONE_IN_CLEAR));
    assert_eq!(harness.count("SELECT COUNT(*) FROM pii_lookups").await, 1);
    let audit = text(
        &harness
            .send(
                "GET",
                "/console/audit?log=lookups",
                Some(&browser.token),
                None,
            )
            .await,
    );
    assert!(audit.contains("call 9"), "{audit}");
    // An invalid phone is refused with the API's code.
    let answer = harness
        .send(
            "POST",
            "/console/customers/search",
            Some(&browser.token),
            Some(&[("field", "phone"), ("value", "12"), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(text(&answer).contains("invalid_phone"), "{}", text(&answer));
}

/// The queue filters by kind, status and "assigned to me"; the case page explains the
/// decision (rules that fired, reason codes, the event's amount exactly as sent); claim and
/// approve go through the same service as the API, and only the claiming key may approve.
async fn a_case_is_explained_and_worked_from_claim_to_approval(harness: Harness) {
    let case = harness.review_case().await;
    let analyst = harness.key("analyst", &["risk:analyst"]).await;
    let second = harness.key("second", &["risk:analyst"]).await;
    let browser = harness.sign_in(&analyst).await;
    let other = harness.sign_in(&second).await;
    let case_link = format!("/console/cases/{case}");
    let queue = text(
        &harness
            .send("GET", "/console/cases", Some(&browser.token), None)
            .await,
    );
    assert!(queue.contains(&case_link), "{queue}");
    for (filter, listed) in [
        ("?kind=review", true),
        ("?kind=stolen_account", false),
        ("?status=claimed", false),
        ("?mine=1", false),
    ] {
        let page = text(
            &harness
                .send(
                    "GET",
                    &format!("/console/cases{filter}"),
                    Some(&browser.token),
                    None,
                )
                .await,
        );
        assert_eq!(page.contains(&case_link), listed, "{filter}");
    }
    let answer = harness
        .send(
            "GET",
            "/console/cases?status=lost",
            Some(&browser.token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    let page = text(
        &harness
            .send("GET", &case_link, Some(&browser.token), None)
            .await,
    );
    assert!(page.contains("Rules that fired"), "{page}");
    assert!(page.contains("watch"), "{page}");
    assert!(page.contains("120.05 CNY"), "{page}");
    assert!(page.contains("recent events"), "{page}");
    assert!(page.contains(&format!("{case_link}/claim")));
    assert!(!page.contains(&format!("{case_link}/approve")));

    let claim = harness
        .send(
            "POST",
            &format!("{case_link}/claim"),
            Some(&browser.token),
            Some(&[("note", "looking"), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(claim.status, StatusCode::SEE_OTHER, "{}", text(&claim));
    assert_eq!(location(&claim), case_link);
    let mine = text(
        &harness
            .send(
                "GET",
                "/console/cases?status=claimed&mine=1",
                Some(&browser.token),
                None,
            )
            .await,
    );
    assert!(mine.contains(&case_link), "{mine}");
    // Another analyst may not approve it: the API's refusal, as a page.
    let refused = harness
        .send(
            "POST",
            &format!("{case_link}/approve"),
            Some(&other.token),
            Some(&[("csrf", &other.csrf)]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(text(&refused).contains("risk_case_claimed_by_another"));
    let approve = harness
        .send(
            "POST",
            &format!("{case_link}/approve"),
            Some(&browser.token),
            Some(&[("note", "customer confirmed"), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(approve.status, StatusCode::SEE_OTHER, "{}", text(&approve));
    assert_eq!(harness.case_status(&case).await, "approved");
    let page = text(
        &harness
            .send("GET", &case_link, Some(&browser.token), None)
            .await,
    );
    assert!(page.contains("customer confirmed"), "{page}");
    // The API sees the same case.
    let api_key = harness.key("api", &["risk:analyst"]).await;
    let (_, body) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case}"),
            &api_key,
            None,
            None,
        )
        .await;
    assert_eq!(body["case"]["status"], "approved");
    assert_eq!(body["case"]["assignee"], "analyst");
    let unknown = harness
        .send(
            "POST",
            &format!("{case_link}/lose"),
            Some(&browser.token),
            Some(&[("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn a_confirmed_claim_is_worked_to_restored_access(harness: Harness) {
    let customer = harness.customer().await;
    let reporter = harness.key("claims desk", &["risk:write"]).await;
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &reporter,
            None,
            Some(json!({"customer": customer, "description": "phone stolen",
                        "compromised_at": "2026-05-01T08:00:00Z", "police_reference": "PR-77"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let case = body["case"]["id"].as_str().unwrap().to_string();
    let analyst = harness.key("analyst", &["risk:analyst"]).await;
    let browser = harness.sign_in(&analyst).await;
    let case_link = format!("/console/cases/{case}");
    let restore = format!("{case_link}/restore");
    for action in ["claim", "approve"] {
        let moved = harness
            .send(
                "POST",
                &format!("{case_link}/{action}"),
                Some(&browser.token),
                Some(&[("note", "called back"), ("csrf", &browser.csrf)]),
            )
            .await;
        assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", text(&moved));
    }
    let page = text(
        &harness
            .send("GET", &case_link, Some(&browser.token), None)
            .await,
    );
    assert!(page.contains("PR-77"), "{page}");
    assert!(page.contains(&restore), "{page}");
    // The note is required: a blank one is refused and nothing changes.
    let blank = harness
        .send(
            "POST",
            &restore,
            Some(&browser.token),
            Some(&[("note", " "), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    let restored = harness
        .send(
            "POST",
            &restore,
            Some(&browser.token),
            Some(&[
                ("note", "identity card at the branch"),
                ("csrf", &browser.csrf),
            ]),
        )
        .await;
    assert_eq!(
        restored.status,
        StatusCode::SEE_OTHER,
        "{}",
        text(&restored)
    );
    let page = text(
        &harness
            .send("GET", &case_link, Some(&browser.token), None)
            .await,
    );
    assert!(page.contains("identity card at the branch"), "{page}");
    assert!(!page.contains(&restore), "{page}");
    assert_eq!(
        harness
            .count(&format!(
                "SELECT COUNT(*) FROM risk_list_entries WHERE source = 'case {case}' AND removed_at IS NULL"
            ))
            .await,
        0
    );
    let again = harness
        .send(
            "POST",
            &restore,
            Some(&browser.token),
            Some(&[("note", "again"), ("csrf", &browser.csrf)]),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(text(&again).contains("risk_claim_already_restored"));
}

async fn the_overview_counts_today_and_draws_bars(harness: Harness) {
    harness.review_case().await;
    harness.customer().await;
    let key = harness.key("admin", &["admin"]).await;
    let browser = harness.sign_in(&key).await;
    let page = text(
        &harness
            .send("GET", "/console/overview", Some(&browser.token), None)
            .await,
    );
    assert!(page.contains("<svg"), "{page}");
    assert!(page.contains("Risk decisions of the day, by action"));
    assert!(page.contains("Credit accounts by delinquency bucket"));
    // One review out of one decision: the longest bar, 400 wide; the others none.
    assert!(page.contains("width=\"400\""), "{page}");
    assert!(page.contains("2026-06-01"));
    let value: Value = json!(page.matches("<rect").count());
    assert!(value.as_u64().unwrap() >= 5 + 4 + 8, "{page}");
}

/// A small valid rule set: one feature, one rule.
const SMALL_RULE_SET: &str = r#"name = "stricter addresses"

[[features]]
name = "address_customers_30d"
kind = "distinct_count"
key = "address"
of = "customer"
window = "30d"
event_kinds = ["transaction"]

[[rules]]
id = "address_behind_many_accounts"
event_kinds = ["transaction"]
condition = "address_customers_30d >= 4"
score = 40
action = "hold_delivery"
reason = "SHARED_ADDRESS"
"#;

/// Rules: a rule set whose rule does not compile is refused, 422, naming the rule and its
/// line, with the source kept in the form and nothing stored; a valid one is stored, and the
/// request to make it live is approved only by another key.
async fn a_rule_set_is_refused_at_its_line_then_uploaded_and_made_live_by_a_second_key(
    harness: Harness,
) {
    let lead = harness.key("risk lead", &["risk:admin"]).await;
    let lead = harness.sign_in(&lead).await;
    let page = text(
        &harness
            .send("GET", "/console/rules", Some(&lead.token), None)
            .await,
    );
    assert!(page.contains("Live: version <strong>1</strong>"), "{page}");
    assert!(page.contains("href=\"/console/rules\""), "{page}");

    let broken = SMALL_RULE_SET.replace("address_customers_30d >= 4", "address_customers_30d >=");
    let answer = harness
        .send(
            "POST",
            "/console/rules",
            Some(&lead.token),
            Some(&[("source", broken.as_str()), ("csrf", lead.csrf.as_str())]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = text(&answer);
    assert!(
        page.contains("rule &quot;address_behind_many_accounts&quot; at line 14 does not compile"),
        "{page}"
    );
    // The source sent is kept in the form, to be fixed where it is.
    assert!(page.contains("address_customers_30d &gt;="), "{page}");
    assert!(!page.contains("address_customers_30d &gt;= 4"), "{page}");
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM risk_rule_sets").await,
        1
    );

    let answer = harness
        .send(
            "POST",
            "/console/rules",
            Some(&lead.token),
            Some(&[
                ("source", SMALL_RULE_SET),
                ("activate", "1"),
                ("csrf", lead.csrf.as_str()),
            ]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(location(&answer), "/console/rules?uploaded=2");
    let request: String = tally_store::with_pool!(&harness.database, |pool| sqlx::query_scalar(
        "SELECT id FROM risk_activation_requests WHERE version = 2 AND status = 'pending'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    let approve = format!("/console/rules/activation-requests/{request}/approve");
    let page = text(
        &harness
            .send("GET", "/console/rules?uploaded=2", Some(&lead.token), None)
            .await,
    );
    assert!(page.contains("Version 2 uploaded."), "{page}");
    assert!(page.contains(&approve), "{page}");

    // Four eyes: the requester's own approval is refused, and version 1 stays live.
    let answer = harness
        .send(
            "POST",
            &approve,
            Some(&lead.token),
            Some(&[("csrf", lead.csrf.as_str())]),
        )
        .await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert!(text(&answer).contains("risk_approver_is_requester"));
    let page = text(
        &harness
            .send("GET", "/console/rules", Some(&lead.token), None)
            .await,
    );
    assert!(page.contains("Live: version <strong>1</strong>"), "{page}");

    let second = harness.key("second risk lead", &["risk:admin"]).await;
    let second = harness.sign_in(&second).await;
    let answer = harness
        .send(
            "POST",
            &approve,
            Some(&second.token),
            Some(&[("csrf", second.csrf.as_str())]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(location(&answer), "/console/rules?decided=approved");
    let page = text(
        &harness
            .send("GET", "/console/rules", Some(&lead.token), None)
            .await,
    );
    assert!(page.contains("Live: version <strong>2</strong>"), "{page}");
    assert!(page.contains("approved by second risk lead"), "{page}");
}

async fn sign_out_ends_the_session(harness: Harness) {
    let key = harness.key("analyst", &["risk:analyst"]).await;
    let browser = harness.sign_in(&key).await;
    let answer = harness
        .send(
            "POST",
            "/console/sign-out",
            Some(&browser.token),
            Some(&[("csrf", &browser.csrf)]),
        )
        .await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
    assert!(set_cookie(&answer).unwrap().contains("Max-Age=0"));
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM console_sessions").await,
        0
    );
    let answer = harness
        .send("GET", "/console/overview", Some(&browser.token), None)
        .await;
    assert!(is_sign_in_redirect(&answer));
}

/// The console's routes are HTML pages for people, signed in by cookie, not API operations
/// signed by bearer keys: they are left out of `/v1/openapi.json` on purpose, so the route
/// and scope checks over that document (`scopes.rs`, the contract test) do not reach them;
/// this file checks them instead. An API key alone does not open a console page.
async fn the_console_is_not_part_of_the_api_document(harness: Harness) {
    let key = harness.key("admin", &["admin"]).await;
    let (status, document) = harness
        .call("GET", "/v1/openapi.json", &key, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() > 40);
    assert!(paths.keys().all(|path| !path.starts_with("/console")));
    let answer = harness
        .send_with(
            "GET",
            "/console/overview",
            None,
            None,
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await;
    assert!(is_sign_in_redirect(&answer), "{}", answer.status);
}
