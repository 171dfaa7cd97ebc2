//! The console's case queue actions and rule back-test over HTTP, on SQLite and
//! PostgreSQL: several cases claimed with one CSRF-protected form (a case claimed first by
//! another analyst refused alone), a case's evidence package downloaded as the API gives
//! it, its export written in the trail, and a candidate rule set back-tested against the
//! stored history in the console and through `POST /v1/risk/rule-sets/backtests`;
//! sessions, scopes and CSRF as every form.
#![allow(clippy::unwrap_used)]

use axum::http::{header, StatusCode};
use serde_json::{json, Value};
use tally_store::testing::TestDatabase;

mod support;
use support::console::{console_send, is_sign_in_redirect, sign_in, text};
use support::{Answer, Setup, TestApp};

struct Harness {
    app: TestApp,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().risk();
        let app = TestApp::start(test, "2026-06-01T12:00:00Z", setup).await;
        Self { app }
    }

    /// `count` review cases opened by the risk engine (a watched device): their ids.
    async fn review_cases(&self, count: usize) -> Vec<String> {
        let writer = self.key("events", &["risk:write"]).await;
        let (status, entry) = self
            .call("POST", "/v1/risk/lists", &writer, None, Some(json!({"kind": "watch", "field": "device", "value": "d-watch", "reason": "seen in a fraud ring"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
        let mut ids = Vec::new();
        for number in 0..count {
            let event = json!({"id": format!("e{number}"), "kind": "transaction", "at": "2026-06-01T12:00:00Z", "customer": format!("customer-{number}"), "device": "d-watch", "merchant": "m1", "amount": {"value": "120.05", "currency": "CNY"}});
            let (status, body) = self
                .call("POST", "/v1/risk/decisions", &writer, None, Some(event))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            ids.push(body["case_id"].as_str().unwrap().to_string());
        }
        ids
    }

    async fn post(&self, uri: &str, token: &str, form: &[(&str, &str)]) -> Answer {
        console_send(&self.app.router, "POST", uri, Some(token), Some(form)).await
    }

    async fn count_rows(&self, sql: &str) -> i64 {
        self.scalar(sql).await
    }

    async fn case(&self, id: &str) -> Value {
        let reader = self.key("reader", &["risk:analyst"]).await;
        let (status, body) = self
            .call("GET", &format!("/v1/risk/cases/{id}"), &reader, None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    checked_cases_are_claimed_with_one_form,
    a_bulk_claim_needs_a_session_the_token_the_scope_and_a_selection,
    the_evidence_package_downloads_as_the_api_gives_it_and_is_in_the_trail,
    a_candidate_is_back_tested_against_the_analysts_decisions,
    the_queue_sorts_by_a_column_and_keeps_its_filters,
);

async fn the_queue_sorts_by_a_column_and_keeps_its_filters(harness: Harness) {
    harness.review_cases(3).await;
    let key = harness.key("ana", &["risk:analyst"]).await;
    let browser = sign_in(&harness.app, &key).await;
    let get = |uri: &'static str| {
        let router = harness.app.router.clone();
        let token = browser.token.clone();
        async move { console_send(&router, "GET", uri, Some(&token), None).await }
    };
    let positions = |page: &str| -> Vec<usize> {
        (0..3)
            .map(|number| {
                page.find(&format!("<code>customer-{number}</code>"))
                    .unwrap()
            })
            .collect()
    };
    let answer = get("/console/cases?status=open&sort=customer&order=desc").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let page = text(&answer);
    let at = positions(&page);
    assert!(at[2] < at[1] && at[1] < at[0], "{page}");
    assert!(page.contains("aria-sort=\"descending\""), "{page}");
    // Headers keep the filters and turn the sorted column's order around.
    assert!(
        page.contains(
            "href=\"/console/cases?status=open&amp;sort=customer&amp;order=asc&amp;page=1\""
        ),
        "{page}"
    );
    let page = text(&get("/console/cases?sort=customer&order=asc").await);
    let at = positions(&page);
    assert!(at[0] < at[1] && at[1] < at[2], "{page}");
    for uri in [
        "/console/cases?sort=summary",
        "/console/cases?order=up",
        "/console/cases?page=0",
    ] {
        let answer = get(uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(text(&answer).contains("invalid_query"), "{uri}");
    }
}

/// Rejects every event of 100.00 or more: each of the test's three review cases.
const REJECT_FROM_100: &str = r#"
name = "reject from 100"

[[rules]]
id = "big"
condition = "amount >= 10000"
action = "reject"
reason = "AMOUNT_BIG"
"#;

/// The same with a condition that does not compile, on line 7.
const BROKEN: &str = r#"
name = "broken"

[[rules]]
id = "big"
action = "reject"
condition = "amount >>> 10000"
reason = "AMOUNT_BIG"
"#;

async fn a_candidate_is_back_tested_against_the_analysts_decisions(harness: Harness) {
    let ids = harness.review_cases(3).await;
    // The analyst rejects the first case (fraud) and approves the second (clean).
    let analyst = harness.key("ana", &["risk:analyst"]).await;
    let browser = sign_in(&harness.app, &analyst).await;
    for (id, decision) in [(&ids[0], "reject"), (&ids[1], "approve")] {
        for action in ["claim", decision] {
            let answer = harness
                .post(
                    &format!("/console/cases/{id}/{action}"),
                    &browser.token,
                    &[("csrf", &browser.csrf), ("note", "")],
                )
                .await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
        }
    }
    // The API: every stored `review` becomes `reject`; one of three flagged is fraud.
    let admin = harness.key("lead", &["risk:admin"]).await;
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets/backtests",
            &admin,
            None,
            Some(json!({"source": REJECT_FROM_100})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["report"]["events"], 3, "{body}");
    assert_eq!(body["labelled_fraud"], 1);
    assert_eq!(body["labelled_clean"], 1);
    assert_eq!(body["report"]["labels"]["true_positives"], 1);
    assert_eq!(body["report"]["labels"]["false_positives"], 2);
    assert_eq!(body["report"]["labels"]["false_negatives"], 0);
    assert_eq!(body["changed_from_stored"], 3);
    assert_eq!(body["changed"][0]["was"], "review");
    assert_eq!(body["changed"][0]["would_be"], "reject");
    assert_eq!(body["changed"][0]["reasons"], json!(["AMOUNT_BIG"]));
    assert_eq!(body["report"]["live_diff"]["events_changed"], 3);
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets/backtests",
            &admin,
            None,
            Some(json!({"source": BROKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "risk_rule_does_not_compile");
    let (status, _) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets/backtests",
            &analyst,
            None,
            Some(json!({"source": REJECT_FROM_100})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing was stored: the live version and the versions are as they were.
    let rule_sets = harness
        .count_rows("SELECT COUNT(*) FROM risk_rule_sets")
        .await;
    assert_eq!(rule_sets, 1);

    // The console: the same figures, in integers, and the changed decisions.
    let lead = sign_in(&harness.app, &admin).await;
    let rules = text(
        &console_send(
            &harness.app.router,
            "GET",
            "/console/rules",
            Some(&lead.token),
            None,
        )
        .await,
    );
    assert!(
        rules.contains("action=\"/console/rules/backtest\""),
        "{rules}"
    );
    let answer = harness
        .post(
            "/console/rules/backtest",
            &lead.token,
            &[("csrf", &lead.csrf), ("source", REJECT_FROM_100)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let page = text(&answer);
    assert!(
        page.contains("<strong>33.3 %</strong> — 1 of 3 flagged events were fraud"),
        "{page}"
    );
    assert!(
        page.contains("<strong>100.0 %</strong> — 1 of 1 fraud events flagged"),
        "{page}"
    );
    assert!(
        page.contains("3 stored decisions would be decided otherwise."),
        "{page}"
    );
    for number in 0..3 {
        assert!(page.contains(&format!("<code>e{number}</code>")), "{page}");
    }
    assert!(page.contains("<code>AMOUNT_BIG</code>"), "{page}");
    let answer = harness
        .post(
            "/console/rules/backtest",
            &lead.token,
            &[("csrf", &lead.csrf), ("source", BROKEN)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = text(&answer);
    assert!(page.contains("The candidate was not back-tested"), "{page}");
    assert!(page.contains("line 7"), "{page}");
    let answer = harness
        .post(
            "/console/rules/backtest",
            &lead.token,
            &[("csrf", "wrong"), ("source", REJECT_FROM_100)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = harness
        .post(
            "/console/rules/backtest",
            &browser.token,
            &[("csrf", &browser.csrf), ("source", REJECT_FROM_100)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(text(&answer).contains("lacks scope risk:admin"));
    let answer = console_send(
        &harness.app.router,
        "POST",
        "/console/rules/backtest",
        None,
        Some(&[("csrf", "x"), ("source", REJECT_FROM_100)]),
    )
    .await;
    assert!(is_sign_in_redirect(&answer));
}

async fn checked_cases_are_claimed_with_one_form(harness: Harness) {
    let ids = harness.review_cases(3).await;
    let key = harness.key("ana", &["risk:analyst"]).await;
    let browser = sign_in(&harness.app, &key).await;
    let queue = text(
        &console_send(
            &harness.app.router,
            "GET",
            "/console/cases",
            Some(&browser.token),
            None,
        )
        .await,
    );
    assert!(queue.contains("action=\"/console/cases/claim\""), "{queue}");
    for id in &ids {
        assert!(
            queue.contains(&format!("name=\"case\" value=\"{id}\"")),
            "{queue}"
        );
    }
    // Another analyst claims the last case first: it alone is refused.
    let other = harness.key("bo", &["risk:analyst"]).await;
    let other_browser = sign_in(&harness.app, &other).await;
    let answer = harness
        .post(
            &format!("/console/cases/{}/claim", ids[2]),
            &other_browser.token,
            &[("csrf", &other_browser.csrf), ("note", "")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let form = [
        ("csrf", browser.csrf.as_str()),
        ("case", ids[0].as_str()),
        ("case", ids[1].as_str()),
        ("case", ids[2].as_str()),
    ];
    let answer = harness
        .post("/console/cases/claim", &browser.token, &form)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let page = text(&answer);
    assert!(page.contains("Claimed 2 of 3 cases"), "{page}");
    assert!(page.contains("refused: "), "{page}");
    for id in &ids[..2] {
        let case = harness.case(id).await;
        assert_eq!(case["case"]["status"], "claimed", "{case}");
        assert_eq!(case["case"]["assignee"], "ana", "{case}");
    }
    assert_eq!(harness.case(&ids[2]).await["case"]["assignee"], "bo");
}

async fn a_bulk_claim_needs_a_session_the_token_the_scope_and_a_selection(harness: Harness) {
    let ids = harness.review_cases(1).await;
    let form = [("csrf", "x"), ("case", ids[0].as_str())];
    let answer = console_send(
        &harness.app.router,
        "POST",
        "/console/cases/claim",
        None,
        Some(&form),
    )
    .await;
    assert!(is_sign_in_redirect(&answer));
    let key = harness.key("ana", &["risk:analyst"]).await;
    let browser = sign_in(&harness.app, &key).await;
    for csrf in [None, Some("wrong")] {
        let mut form: Vec<(&str, &str)> = vec![("case", ids[0].as_str())];
        if let Some(token) = csrf {
            form.push(("csrf", token));
        }
        let answer = harness
            .post("/console/cases/claim", &browser.token, &form)
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(text(&answer).contains("csrf_token_invalid"));
    }
    let answer = harness
        .post(
            "/console/cases/claim",
            &browser.token,
            &[("csrf", &browser.csrf)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(&answer).contains("no_case_selected"));
    assert_eq!(harness.case(&ids[0]).await["case"]["status"], "open");
    // A key without `risk:analyst` moves nothing.
    let clerk = harness.key("clerk", &["credit:read"]).await;
    let clerk_browser = sign_in(&harness.app, &clerk).await;
    let form = [
        ("csrf", clerk_browser.csrf.as_str()),
        ("case", ids[0].as_str()),
    ];
    let answer = harness
        .post("/console/cases/claim", &clerk_browser.token, &form)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(harness.case(&ids[0]).await["case"]["status"], "open");
}

async fn the_evidence_package_downloads_as_the_api_gives_it_and_is_in_the_trail(harness: Harness) {
    let ids = harness.review_cases(1).await;
    let id = &ids[0];
    let key = harness.key("ana", &["risk:analyst"]).await;
    let browser = sign_in(&harness.app, &key).await;
    let page = text(
        &console_send(
            &harness.app.router,
            "GET",
            &format!("/console/cases/{id}"),
            Some(&browser.token),
            None,
        )
        .await,
    );
    let uri = format!("/console/cases/{id}/evidence");
    assert!(page.contains(&format!("action=\"{uri}\"")), "{page}");
    // Without the token nothing is exported, and nothing is written.
    let answer = harness
        .post(&uri, &browser.token, &[("csrf", "wrong")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let exports = |case: &Value| {
        case["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|line| line["action"] == "evidence_exported")
            .count()
    };
    assert_eq!(exports(&harness.case(id).await), 0);
    let answer = harness
        .post(&uri, &browser.token, &[("csrf", &browser.csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let header_of = |name: header::HeaderName| {
        answer
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(header_of(header::CONTENT_TYPE), "application/json");
    assert_eq!(header_of(header::CACHE_CONTROL), "no-store");
    assert_eq!(
        header_of(header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"case-{id}-evidence.json\"")
    );
    let package: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(package["case"]["id"], id.as_str());
    assert_eq!(package["devices"], json!(["d-watch"]));
    assert_eq!(package["events"][0]["event"]["amount"]["value"], "120.05");
    // The export is in the trail, with who did it, as the API's own export is.
    let case = harness.case(id).await;
    assert_eq!(exports(&case), 1, "{case}");
    let line = case["log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["action"] == "evidence_exported")
        .unwrap();
    assert_eq!(line["actor"], "ana");
    // The API's package has the same shape.
    let (status, api) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{id}/evidence"),
            &key,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys = |value: &Value| {
        value
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&api), keys(&package));
    // A key without `risk:analyst` gets no package.
    let clerk = harness.key("clerk", &["credit:read"]).await;
    let clerk_browser = sign_in(&harness.app, &clerk).await;
    let answer = harness
        .post(&uri, &clerk_browser.token, &[("csrf", &clerk_browser.csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}
