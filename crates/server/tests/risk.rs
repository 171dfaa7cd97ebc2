//! The risk routes in process on SQLite and PostgreSQL: decisions stored with their cases,
//! lists, rule set upload, activation and rollback, the analysts' case queue, stolen-account
//! claims with evidence, scopes and error codes, and a restart that rebuilds the engine.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tally_core::{Clock, ManualClock};
use tally_server::state::Limits;
use tally_server::{app_with_risk, AppState};
use tally_service::risk::RiskService;
use tally_store::testing::TestDatabase;
use tally_store::{LedgerWriter, WriterConfig};
use tower::ServiceExt;

mod support;
use support::{Instance, Setup, TestApp};

struct Harness {
    app: TestApp,
    writer_key: String,
    /// Two keys with `risk:admin`: one requests an activation, the other approves it.
    admin_one: String,
    admin_two: String,
    analyst: String,
    second_analyst: String,
    reader: String,
}

support::deref_to_app!(mut Harness);

/// The application with the risk service over `test`'s database: at the start, and for a
/// restart (a new writer and a risk service that rebuilds itself from the stored history).
async fn router(test: &TestDatabase, clock: Arc<ManualClock>) -> Router {
    let setup = Setup::default().risk();
    Instance::start(&test.database, clock, &setup).await.router
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let app = TestApp::start(test, "2026-06-01T12:00:00Z", Setup::default().risk()).await;
        let mut keys = Vec::new();
        for (name, scopes) in [
            ("risk writer", vec!["risk:write", "risk:read"]),
            ("analyst one", vec!["risk:analyst"]),
            ("analyst two", vec!["risk:analyst"]),
            ("ledger reader", vec!["ledger:read"]),
            ("risk admin", vec!["risk:admin", "risk:read"]),
            ("risk admin", vec!["risk:admin", "risk:read"]),
        ] {
            keys.push(app.key(name, &scopes).await);
        }
        Self {
            app,
            writer_key: keys[0].clone(),
            analyst: keys[1].clone(),
            second_analyst: keys[2].clone(),
            reader: keys[3].clone(),
            admin_one: keys[4].clone(),
            admin_two: keys[5].clone(),
        }
    }

    /// A request with the JSON content type whether or not it has a body, as the risk
    /// clients send them.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or_else(String::new, |body| body.to_string());
        self.app
            .call_raw(method, uri, Some(key), None, Some(body))
            .await
    }

    /// Makes `version` live as an operator does: one admin key requests it, another (of
    /// the same name, a different key) approves; answers the approval.
    async fn activate(&self, version: u64) -> (StatusCode, Value) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/risk/rule-sets/{version}/activation-requests"),
                &self.admin_one,
                Some(json!({"note": "test"})),
            )
            .await;
        if status != StatusCode::CREATED {
            return (status, body);
        }
        let id = body["request"]["id"].as_str().unwrap().to_string();
        self.call(
            "POST",
            &format!("/v1/risk/activation-requests/{id}/approve"),
            &self.admin_two,
            None,
        )
        .await
    }

    fn event(&self, id: &str, kind: &str, customer: &str, extra: Value) -> Value {
        support::risk_event(id, kind, self.clock.now(), customer, extra)
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    decisions_lists_and_cases,
    rule_sets_and_restart,
    stolen_account_claims,
    refusals,
    every_route_is_in_the_openapi_document,
    a_retried_event_answers_the_stored_decision,
    a_decision_that_cannot_be_stored_is_counted_once_and_stored_by_a_retry,
    identical_events_at_once_give_one_answer,
    an_event_from_the_future_is_refused,
    a_refused_write_changes_nothing_in_memory,
    an_activated_version_replays_history_into_its_cold_features,
    a_case_belongs_to_the_key_that_claimed_it_not_its_name,
    every_evidence_export_is_in_the_case_trail,
    an_evidence_package_names_linked_customers_and_its_seal_verifies,
    a_replaced_list_entry_stays_replaced_in_the_table_and_after_a_restart,
    the_service_forgets_old_keys_and_expired_list_entries_while_it_runs,
    an_expired_list_entry_is_neither_listed_nor_applied,
    each_start_draws_its_own_hash_seed_and_decides_the_same,
    submitting_events_cannot_switch_fraud_control_off,
    an_activation_needs_a_second_key_and_is_on_the_trail,
    an_activation_keeps_features_defined_the_same_way_even_renamed,
    cards_and_addresses_are_stored_as_fingerprints_or_refused_without_keys,
    a_malformed_card_number_or_phone_is_refused_and_nothing_is_stored,
);

async fn a_malformed_card_number_or_phone_is_refused_and_nothing_is_stored(harness: Harness) {
    let amount = json!({"value": "5.00", "currency": "CNY"});
    for (id, fields, expected) in [
        // Written as a card number, and not one: a wrong check digit, too few digits.
        (
            "bad-1",
            json!({"card": "4111 1111 1111 1112", "amount": amount}),
            "invalid_card_number",
        ),
        (
            "bad-2",
            json!({"card": "4111-1111", "amount": amount}),
            "invalid_card_number",
        ),
        // A receiving phone that is no phone number.
        (
            "bad-3",
            json!({"phone": "12345", "amount": amount}),
            "invalid_phone",
        ),
        (
            "bad-4",
            json!({"phone": "+86 23800138000", "card": "4111111111111111", "amount": amount}),
            "invalid_phone",
        ),
    ] {
        let event = harness.event(id, "transaction", "alice", fields.clone());
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(event),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(expected)),
            "{fields}: {body}"
        );
        // The message says what is wrong, never the value.
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("4111") && !message.contains("2380013"),
            "{message}"
        );
    }
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM risk_events WHERE event_id LIKE 'bad-%'")
            .await,
        0
    );
    // A lender's card token and a real phone go through.
    let event = harness.event(
        "good-1",
        "transaction",
        "alice",
        json!({"card": "tok_2031", "phone": "+86 138 0013 8000", "amount": amount}),
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(event),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn cards_and_addresses_are_stored_as_fingerprints_or_refused_without_keys(
    mut harness: Harness,
) {
    let privacy = support::privacy();
    let card = privacy.card_fingerprint("4111111111111111");
    let address = privacy.address_fingerprint("1 main st").unwrap();
    // A card number listed in clear is listed as its fingerprint...
    let (status, entry) = harness
        .call("POST", "/v1/risk/lists", &harness.writer_key, Some(json!({"kind": "block", "field": "card", "value": "4111-1111-1111-1111", "reason": "stolen"})))
        .await;
    assert_eq!(
        (status, &entry["value"]),
        (StatusCode::CREATED, &json!(card)),
        "{entry}"
    );
    // ... and an event's card number, written another way, is matched by it.
    let purchase = harness.event("fp-1", "transaction", "alice", json!({"card": "4111 1111 1111 1111", "address": " 1 Main  St ", "amount": {"value": "5.00", "currency": "CNY"}}));
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"]["action"], "reject", "{body}");
    let stored = format!(
        "SELECT COUNT(*) FROM risk_events WHERE event_id = 'fp-1' AND body LIKE '%{card}%' \
         AND body LIKE '%{address}%' AND body NOT LIKE '%4111%' AND lower(body) NOT LIKE '%main st%'"
    );
    assert_eq!(harness.scalar(&stored).await, 1);
    // A phone number is no customer reference.
    let by_phone = harness.event("fp-2", "login", "+86 138 0013 8000", json!({}));
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(by_phone),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("risk_customer_is_phone_number")
        ),
        "{body}"
    );

    // Without personal-data keys, a card or an address is refused, never stored in clear.
    harness.app.setup.privacy = None;
    harness.app.serve();
    let with_card = harness.event(
        "fp-3",
        "transaction",
        "alice",
        json!({"card": "4111111111111111", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let with_address = harness.event("fp-4", "login", "alice", json!({"address": "1 Main St"}));
    for event in [with_card, with_address] {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(event),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("privacy_keys_not_configured")
            ),
            "{body}"
        );
    }
    let (status, body) = harness
        .call("POST", "/v1/risk/lists", &harness.writer_key, Some(json!({"kind": "block", "field": "address", "value": "1 Main St", "reason": "fraud"})))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM risk_events WHERE event_id IN ('fp-2', 'fp-3', 'fp-4')")
            .await,
        0
    );
    // An event without them needs no keys.
    let plain = harness.event("fp-5", "login", "alice", json!({"device": "d1"}));
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(plain),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn decisions_lists_and_cases(harness: Harness) {
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(harness.event("e1", "login", "alice", json!({"device": "d1"}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sequence"], 1);
    assert_eq!(body["decision"]["action"], "approve");
    assert_eq!(body["decision"]["rule_set_version"], 1);
    assert_eq!(body["case_id"], Value::Null);
    // A watched device on a transaction goes to review and opens a case.
    let (status, entry) = harness
        .call("POST", "/v1/risk/lists", &harness.writer_key, Some(json!({"kind": "watch", "field": "device", "value": "d-watch", "reason": "seen in a fraud ring"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let transaction = harness.event("e2", "transaction", "bob", json!({"device": "d-watch", "amount": {"value": "120.00", "currency": "CNY"}, "merchant": "m1"}));
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(transaction),
        )
        .await;
    assert_eq!(body["decision"]["action"], "review", "{body}");
    let case_id = body["case_id"].as_str().unwrap().to_string();
    let (_, cases) = harness
        .call("GET", "/v1/risk/cases", &harness.analyst, None)
        .await;
    assert_eq!(cases["cases"][0]["id"], case_id.as_str());
    assert_eq!(cases["cases"][0]["kind"], "review");
    // Approving needs a claim, and only the analyst who claimed may close it.
    let approve = format!("/v1/risk/cases/{case_id}/approve");
    let (status, body) = harness
        .call("POST", &approve, &harness.analyst, Some(json!({})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("risk_case_wrong_status"))
    );
    let (status, _) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/claim"),
            &harness.analyst,
            Some(json!({"note": "mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness
        .call("POST", &approve, &harness.second_analyst, Some(json!({})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("risk_case_claimed_by_another"))
    );
    let (status, _) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/note"),
            &harness.analyst,
            Some(json!({"note": "called the customer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness
        .call(
            "POST",
            &approve,
            &harness.analyst,
            Some(json!({"note": "customer confirmed the order"})),
        )
        .await;
    assert_eq!(
        (status, body["case"]["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let (_, case) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case_id}"),
            &harness.analyst,
            None,
        )
        .await;
    let actions: Vec<&str> = case["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["opened", "claimed", "note", "approved"]);
    // A blocked card is rejected; removing the entry lets the next one through.
    let (_, entry) = harness
        .call("POST", "/v1/risk/lists", &harness.writer_key, Some(json!({"kind": "block", "field": "card", "value": "card-9", "reason": "reported stolen"})))
        .await;
    let purchase = |id: &str| {
        harness.event(
            id,
            "transaction",
            "carol",
            json!({"card": "card-9", "amount": {"value": "9.99", "currency": "CNY"}}),
        )
    };
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("e3")),
        )
        .await;
    assert_eq!(body["decision"]["action"], "reject");
    assert!(body["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|reason| !reason.as_str().unwrap().is_empty()));
    let entry_id = entry["id"].as_str().unwrap();
    let (status, _) = harness
        .call(
            "DELETE",
            &format!("/v1/risk/lists/{entry_id}"),
            &harness.admin_one,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness
        .call(
            "DELETE",
            &format!("/v1/risk/lists/{entry_id}"),
            &harness.admin_one,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("risk_list_entry_not_found"))
    );
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("e4")),
        )
        .await;
    assert_eq!(body["decision"]["action"], "approve", "{body}");
}

async fn rule_sets_and_restart(harness: Harness) {
    let broken = tally_risk::DEFAULT_RULES.replacen(
        "condition = \"block_listed\"",
        "condition = \"block_listed &&\"",
        1,
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": broken, "activate": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("blocked_entity"),
        "{body}"
    );
    let (_, sets) = harness
        .call("GET", "/v1/risk/rule-sets", &harness.writer_key, None)
        .await;
    assert_eq!(sets["active"], 1);
    // Version 2: the block-list rule only reviews. Activate it, then roll back to 1.
    let gentler =
        tally_risk::DEFAULT_RULES.replacen("action = \"reject\"", "action = \"review\"", 1);
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": gentler, "activate": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);
    // Uploading with `activate` asks for the activation; nothing is live before a second
    // key approves it.
    assert_eq!(body["activation_request"]["status"], "pending", "{body}");
    let (_, sets) = harness
        .call("GET", "/v1/risk/rule-sets", &harness.writer_key, None)
        .await;
    assert_eq!(sets["active"], 1, "{sets}");
    let request = body["activation_request"]["id"].as_str().unwrap();
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/activation-requests/{request}/approve"),
            &harness.admin_two,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["activation"]["version"], 2, "{body}");
    harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(
                json!({"kind": "block", "field": "customer", "value": "mallory", "reason": "test"}),
            ),
        )
        .await;
    let login = |id: &str| harness.event(id, "login", "mallory", json!({}));
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(login("l1")),
        )
        .await;
    assert_eq!(
        (
            body["decision"]["action"].as_str(),
            body["decision"]["rule_set_version"].as_u64()
        ),
        (Some("review"), Some(2)),
        "{body}"
    );
    let (status, _) = harness.activate(1).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness.activate(9).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("risk_unknown_rule_set_version"))
    );
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(login("l2")),
        )
        .await;
    assert_eq!(
        (
            body["decision"]["action"].as_str(),
            body["sequence"].as_i64()
        ),
        (Some("reject"), Some(2))
    );
    // Three purchases on one card before the restart; the fourth after it must see them.
    for index in 0..3 {
        let purchase = harness.event(
            &format!("c{index}"),
            "transaction",
            "frank",
            json!({"card": "card-77", "amount": {"value": "5.00", "currency": "CNY"}}),
        );
        let (_, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(purchase),
            )
            .await;
        assert_eq!(
            body["decision"]["features"]["card_transactions_10m"],
            index + 1,
            "{body}"
        );
    }
    // A restart rebuilds versions, the active one, lists, the event sequence and the
    // velocity features from stored history.
    let restarted = router(&harness.test, harness.clock.clone()).await;
    let send = |event: Value| {
        let router = restarted.clone();
        let key = harness.writer_key.clone();
        async move {
            let request = Request::builder()
                .method("POST")
                .uri("/v1/risk/decisions")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(event.to_string()))
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            serde_json::from_slice::<Value>(
                &response.into_body().collect().await.unwrap().to_bytes(),
            )
            .unwrap()
        }
    };
    let body = send(login("l3")).await;
    assert_eq!(body["sequence"], 6);
    assert_eq!(
        (
            body["decision"]["action"].as_str(),
            body["decision"]["rule_set_version"].as_u64()
        ),
        (Some("reject"), Some(1))
    );
    let purchase = harness.event(
        "c3",
        "transaction",
        "frank",
        json!({"card": "card-77", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let body = send(purchase).await;
    assert_eq!(
        body["decision"]["features"]["card_transactions_10m"], 4,
        "the restart blinded the engine: {body}"
    );
}

async fn stolen_account_claims(harness: Harness) {
    for (index, amount) in ["99.00", "4999.00"].into_iter().enumerate() {
        let event = harness.event(&format!("t{index}"), "transaction", "dave", json!({"device": "d-thief", "address": "addr-hash-1", "amount": {"value": amount, "currency": "CNY"}}));
        harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(event),
            )
            .await;
    }
    // An ordinary review case first, then the claim: the claim goes to the front.
    harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(json!({"kind": "watch", "field": "device", "value": "d-w", "reason": "x"})),
        )
        .await;
    let event = harness.event(
        "t9",
        "transaction",
        "erin",
        json!({"device": "d-w", "amount": {"value": "1.00", "currency": "CNY"}}),
    );
    harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(event),
        )
        .await;
    let (status, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "dave", "description": "I did not make these purchases"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    let (_, cases) = harness
        .call("GET", "/v1/risk/cases", &harness.analyst, None)
        .await;
    assert_eq!(cases["cases"][0]["id"], case_id.as_str());
    assert_eq!(cases["cases"][0]["priority"], 0);
    let (_, evidence) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case_id}/evidence"),
            &harness.analyst,
            None,
        )
        .await;
    assert_eq!(evidence["events"].as_array().unwrap().len(), 2);
    assert_eq!(evidence["devices"], json!(["d-thief"]));
    assert_eq!(evidence["events"][1]["event"]["amount"]["value"], "4999.00");
    harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/claim"),
            &harness.analyst,
            Some(json!({})),
        )
        .await;
    let (status, _) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/approve"),
            &harness.analyst,
            Some(json!({"note": "confirmed with the police"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The account is locked: the customer is on the block list.
    let event = harness.event("t10", "login", "dave", json!({}));
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(event),
        )
        .await;
    assert_eq!(body["decision"]["action"], "reject");
}

async fn refusals(harness: Harness) {
    let (status, body) = harness.call("POST", "/v1/risk/decisions", &harness.writer_key, Some(json!({"id": "x", "kind": "teleport", "at": "2026-06-01T12:00:00Z", "customer": "a"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("risk_invalid_event"))
    );
    let (status, body) = harness.call("POST", "/v1/risk/decisions", &harness.writer_key, Some(json!({"id": "x", "kind": "transaction", "at": "2026-06-01T12:00:00Z", "customer": "a"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("risk_invalid_event")),
        "a transaction without an amount: {body}"
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.reader,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = harness
        .call("GET", "/v1/risk/cases", &harness.writer_key, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(json!({"kind": "grey", "field": "device", "value": "v", "reason": "r"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("risk_invalid_list_entry")
        )
    );
    let (status, body) = harness
        .call("GET", "/v1/risk/cases/nope", &harness.analyst, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("risk_case_not_found"))
    );
    let (status, body) = harness
        .call("GET", "/v1/risk/cases?status=lost", &harness.analyst, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    // Nothing refused was stored: the next decision is the first.
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(harness.event("ok", "login", "a", json!({}))),
        )
        .await;
    assert_eq!(body["sequence"], 1);
}

/// One route of a router's source: method, path and the scope of its group.
#[derive(Debug)]
struct SourceRoute {
    method: String,
    path: String,
    scope: Option<String>,
}

/// The text of `source` from `start` to the first `end` after it.
fn section<'a>(source: &'a str, start: &str, end: &str) -> &'a str {
    let from = source.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let text = &source[from..];
    &text[..text
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"))]
}

/// Every `.route("path", method(handler))` in `text`, with the scope of the first
/// `scope("...")` layer after it.
fn routes_in(text: &str) -> Vec<SourceRoute> {
    let literal = |text: &str| {
        let open = text.find('"').unwrap() + 1;
        let close = open + text[open..].find('"').unwrap();
        (text[open..close].to_string(), close + 1)
    };
    let mut routes = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let (path, after) = literal(rest);
        rest = &rest[after..];
        let method = ["get(", "post(", "delete(", "put(", "patch("]
            .iter()
            .filter_map(|method| rest.find(method).map(|at| (at, method)))
            .min()
            .unwrap()
            .1
            .trim_end_matches('(')
            .to_string();
        let scope = rest.find("scope(").map(|at| literal(&rest[at..]).0);
        routes.push(SourceRoute {
            method,
            path,
            scope,
        });
    }
    routes
}

/// Every route `risk_routes` registers (read from the router's source, so that a route
/// added without an annotation fails here) is in `/v1/openapi.json` with its method, tag
/// and scope, and the document lists no risk operation the router does not serve.
async fn every_route_is_in_the_openapi_document(harness: Harness) {
    let (status, document) = harness
        .call("GET", "/v1/openapi.json", &harness.reader, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let routes = routes_in(section(
        include_str!("../src/lib.rs"),
        "fn risk_routes(",
        "\n}\n",
    ));
    assert!(routes.len() >= 12, "{routes:?}");
    for route in &routes {
        let path = format!("/v1/risk{}", route.path);
        let operation = &document["paths"][&path][&route.method];
        assert!(
            operation.is_object(),
            "{} {path} is not in /v1/openapi.json",
            route.method
        );
        assert_eq!(operation["tags"], json!(["risk"]), "{path}");
        let scope = route.scope.as_deref().unwrap();
        assert_eq!(
            operation["security"],
            json!([{"api_key": [scope]}]),
            "{} {path}",
            route.method
        );
    }
    let documented: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/v1/risk/"))
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "post", "delete", "put", "patch"].contains(&key.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    assert_eq!(documented.len(), routes.len(), "{documented:?}");
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["name"].as_str().unwrap())
        .collect();
    assert!(tags.contains(&"risk"), "{tags:?}");
}

async fn count_events(harness: &Harness) -> i64 {
    harness.scalar("SELECT COUNT(*) FROM risk_events").await
}

async fn count_cases(harness: &Harness) -> i64 {
    harness.scalar("SELECT COUNT(*) FROM risk_cases").await
}

async fn a_retried_event_answers_the_stored_decision(harness: Harness) {
    // A watched device opens a case, so a second case would show.
    let (status, _) = harness
        .call("POST", "/v1/risk/lists", &harness.writer_key, Some(json!({"kind": "watch", "field": "device", "value": "d-watch", "reason": "seen in a fraud ring"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let purchase = harness.event(
        "t1",
        "transaction",
        "grace",
        json!({"card": "card-9", "device": "d-watch", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let (status, first) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["decision"]["features"]["card_transactions_10m"], 1);
    assert!(first["case_id"].is_string(), "{first}");
    let (events, cases) = (count_events(&harness).await, count_cases(&harness).await);
    // The client retries (after a 503 or a lost answer): the same answer, nothing new.
    let (status, again) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(count_events(&harness).await, events);
    assert_eq!(count_cases(&harness).await, cases);
    // The same id with another body is refused and changes nothing.
    let mut other = purchase.clone();
    other["amount"] = json!({"value": "6.00", "currency": "CNY"});
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(other),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "risk_event_id_reused", "{body}");
    assert_eq!(count_events(&harness).await, events);
    // The features were not fed again: the next purchase on the card is the second.
    let next = harness.event(
        "t2",
        "transaction",
        "grace",
        json!({"card": "card-9", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(next),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["decision"]["features"]["card_transactions_10m"], 2,
        "{body}"
    );
    assert_eq!(body["sequence"], first["sequence"].as_i64().unwrap() + 1);
    // After a restart the stored decision still answers the retry.
    let restarted = router(&harness.test, harness.clock.clone()).await;
    let request = Request::builder()
        .method("POST")
        .uri("/v1/risk/decisions")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", harness.writer_key),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(purchase.to_string()))
        .unwrap();
    let response = restarted.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body, first);
    assert_eq!(count_events(&harness).await, events + 1);
}

/// Makes the database refuse new rows of `table` (a trigger named `name`), as a full disk or
/// a lost server would, until [`accept_again`] drops it.
async fn refuse_inserts(harness: &Harness, table: &str, name: &str) {
    match &harness.test.database {
        tally_store::Database::Sqlite(_) => {
            execute(
                harness,
                &format!(
                    "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                     BEGIN SELECT RAISE(ABORT, 'storage unavailable'); END"
                ),
            )
            .await;
        }
        tally_store::Database::Postgres(_) => {
            execute(
                harness,
                &format!(
                    "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'storage unavailable'; END $$"
                ),
            )
            .await;
            execute(
                harness,
                &format!(
                    "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION {name}()"
                ),
            )
            .await;
        }
    }
}

async fn accept_again(harness: &Harness, table: &str, name: &str) {
    match &harness.test.database {
        tally_store::Database::Sqlite(_) => {
            execute(harness, &format!("DROP TRIGGER {name}")).await;
        }
        tally_store::Database::Postgres(_) => {
            execute(harness, &format!("DROP TRIGGER {name} ON {table}")).await;
        }
    }
}

/// The promise of `503 storage_unavailable` on a decision: the event was counted in the
/// velocity features once, and a retry with the same event id stores it. Retries while the
/// store still fails, then one after it recovers: stored once, counted once.
async fn a_decision_that_cannot_be_stored_is_counted_once_and_stored_by_a_retry(harness: Harness) {
    let purchase = harness.event(
        "t1",
        "transaction",
        "grace",
        json!({"card": "card-9", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    refuse_inserts(&harness, "risk_events", "risk_events_refused").await;
    for attempt in 0..2 {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(purchase.clone()),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
            "attempt {attempt}: {body}"
        );
        assert_eq!(count_events(&harness).await, 0);
    }
    accept_again(&harness, "risk_events", "risk_events_refused").await;
    let (status, stored) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    // Three attempts, one count: the features were fed once.
    assert_eq!(
        stored["decision"]["features"]["card_transactions_10m"], 1,
        "{stored}"
    );
    assert_eq!(count_events(&harness).await, 1);
    let (status, again) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase.clone()),
        )
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &stored));
    assert_eq!(count_events(&harness).await, 1);
    let next = harness.event(
        "t2",
        "transaction",
        "grace",
        json!({"card": "card-9", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(next),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["decision"]["features"]["card_transactions_10m"], 2,
        "{body}"
    );
    assert_eq!(body["sequence"], stored["sequence"].as_i64().unwrap() + 1);
    assert_eq!(count_events(&harness).await, 2);
    // After a restart the stored decision still answers the retry, and nothing is added.
    let restarted = router(&harness.test, harness.clock.clone()).await;
    let request = Request::builder()
        .method("POST")
        .uri("/v1/risk/decisions")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", harness.writer_key),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(purchase.to_string()))
        .unwrap();
    let response = restarted.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body, stored);
    assert_eq!(count_events(&harness).await, 2);
}

async fn identical_events_at_once_give_one_answer(harness: Harness) {
    let purchase = harness.event(
        "t-once",
        "transaction",
        "heidi",
        json!({"card": "card-10", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let mut calls = Vec::new();
    for _ in 0..8 {
        let router = harness.router.clone();
        let key = harness.writer_key.clone();
        let purchase = purchase.clone();
        calls.push(tokio::spawn(async move {
            let request = Request::builder()
                .method("POST")
                .uri("/v1/risk/decisions")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(purchase.to_string()))
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let body: Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            (status, body)
        }));
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(*body, answers[0].1);
    }
    assert_eq!(
        answers[0].1["decision"]["features"]["card_transactions_10m"],
        1
    );
    assert_eq!(count_events(&harness).await, 1);
}

async fn an_event_from_the_future_is_refused(harness: Harness) {
    let purchase = |id: &str, at: &str| json!({"id": id, "kind": "transaction", "at": at, "customer": "ivan", "card": "card-2100", "amount": {"value": "5.00", "currency": "CNY"}});
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("f1", "2100-01-01T00:00:00Z")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "risk_event_in_future", "{body}");
    assert_eq!(count_events(&harness).await, 0);
    // Within the allowed clock skew (five minutes) an event is taken.
    let skewed = (harness.clock.now() + jiff::SignedDuration::from_mins(4)).to_string();
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("f2", &skewed)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let beyond = (harness.clock.now() + jiff::SignedDuration::from_mins(6)).to_string();
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("f3", &beyond)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Five real purchases on the card in ten minutes read 1..5 (the refused one blinded
    // nothing; the skewed one is after them all).
    for index in 0..5 {
        let at =
            (harness.clock.now() - jiff::SignedDuration::from_mins(10 - 2 * index - 1)).to_string();
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(purchase(&format!("r{index}"), &at)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["decision"]["features"]["card_transactions_10m"],
            index + 1,
            "{body}"
        );
    }
}

async fn execute(harness: &Harness, sql: &str) {
    harness.execute(sql).await.unwrap();
}

async fn case_status(harness: &Harness, id: &str) -> String {
    let sql = format!("SELECT status FROM risk_cases WHERE id = '{id}'");
    let (status,): (String,) = tally_store::with_pool!(&harness.database, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap()
    });
    status
}

async fn a_refused_write_changes_nothing_in_memory(harness: Harness) {
    let gentler =
        tally_risk::DEFAULT_RULES.replacen("action = \"reject\"", "action = \"review\"", 1);
    // Upload: the database refuses version 2 (another writer stored it): the engine does
    // not keep it either.
    execute(&harness, "INSERT INTO risk_rule_sets (version, source, uploaded_at, uploaded_by) VALUES (2, 'elsewhere', 0, 'another process')").await;
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": gentler, "activate": true})),
        )
        .await;
    assert!(!status.is_success(), "{status} {body}");
    let (_, sets) = harness
        .call("GET", "/v1/risk/rule-sets", &harness.writer_key, None)
        .await;
    assert_eq!(sets["active"], 1, "{sets}");
    assert_eq!(sets["versions"].as_array().unwrap().len(), 1, "{sets}");
    execute(&harness, "DELETE FROM risk_rule_sets WHERE version = 2").await;
    // Activation: the activation cannot be stored, so the live version stays.
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": gentler})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);
    execute(
        &harness,
        "ALTER TABLE risk_activations RENAME TO risk_activations_away",
    )
    .await;
    let (status, body) = harness.activate(2).await;
    assert!(!status.is_success(), "{status} {body}");
    execute(
        &harness,
        "ALTER TABLE risk_activations_away RENAME TO risk_activations",
    )
    .await;
    let (_, sets) = harness
        .call("GET", "/v1/risk/rule-sets", &harness.writer_key, None)
        .await;
    assert_eq!(sets["active"], 1, "{sets}");
    // A list entry the database did not take is not applied either.
    execute(
        &harness,
        "ALTER TABLE risk_list_entries RENAME TO risk_list_entries_away",
    )
    .await;
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(json!({"kind": "block", "field": "customer", "value": "oscar", "reason": "test"})),
        )
        .await;
    assert!(!status.is_success(), "{status} {body}");
    execute(
        &harness,
        "ALTER TABLE risk_list_entries_away RENAME TO risk_list_entries",
    )
    .await;
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(harness.event("o1", "login", "oscar", json!({}))),
        )
        .await;
    assert_eq!(body["decision"]["action"], "approve", "{body}");
    // A stolen-account approval whose block cannot be stored leaves the case claimed and
    // the customer unblocked; approving again then does both.
    let (status, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "peggy", "description": "not me"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    let (status, _) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/claim"),
            &harness.analyst,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    execute(
        &harness,
        "ALTER TABLE risk_list_entries RENAME TO risk_list_entries_away",
    )
    .await;
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/approve"),
            &harness.analyst,
            Some(json!({"note": "confirmed"})),
        )
        .await;
    assert!(!status.is_success(), "{status} {body}");
    execute(
        &harness,
        "ALTER TABLE risk_list_entries_away RENAME TO risk_list_entries",
    )
    .await;
    assert_eq!(case_status(&harness, &case_id).await, "claimed");
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(harness.event("p1", "login", "peggy", json!({}))),
        )
        .await;
    assert_eq!(body["decision"]["action"], "approve", "{body}");
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/approve"),
            &harness.analyst,
            Some(json!({"note": "confirmed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(case_status(&harness, &case_id).await, "approved");
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(harness.event("p2", "login", "peggy", json!({}))),
        )
        .await;
    assert_eq!(body["decision"]["action"], "reject", "{body}");
}

async fn an_activated_version_replays_history_into_its_cold_features(harness: Harness) {
    // Version 2 widens the card window: the feature is defined anew, so it starts cold.
    let wider = tally_risk::DEFAULT_RULES.replacen(
        "name = \"card_transactions_10m\"\nkind = \"count\"\nkey = \"card\"\nwindow = \"10m\"",
        "name = \"card_transactions_10m\"\nkind = \"count\"\nkey = \"card\"\nwindow = \"15m\"",
        1,
    );
    assert_ne!(wider, tally_risk::DEFAULT_RULES);
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": wider})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let purchase = |id: String| {
        harness.event(
            &id,
            "transaction",
            "judy",
            json!({"card": "card-15", "amount": {"value": "100.00", "currency": "CNY"}}),
        )
    };
    for index in 0..5 {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(purchase(format!("w{index}"))),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = harness.activate(2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["activation"]["cold_features"]
            .as_array()
            .unwrap()
            .contains(&json!("card_transactions_10m")),
        "{body}"
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("w5".into())),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"]["rule_set_version"], 2);
    assert_eq!(
        body["decision"]["features"]["card_transactions_10m"], 6,
        "{body}"
    );
}

/// Two API keys may share a name: a case claimed by one is not the other's to close.
async fn a_case_belongs_to_the_key_that_claimed_it_not_its_name(harness: Harness) {
    let scopes = vec!["risk:analyst".to_string()];
    let now = harness.clock.now();
    let mut twins = Vec::new();
    for _ in 0..2 {
        twins.push(
            harness
                .test
                .database
                .create_api_key("night shift", &scopes, now)
                .await
                .unwrap()
                .secret
                .expose()
                .clone(),
        );
    }
    let (status, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "gina", "description": "not me"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/claim"),
            &twins[0],
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["assignee"], "night shift");
    for action in ["approve", "reject"] {
        let (status, body) = harness
            .call(
                "POST",
                &format!("/v1/risk/cases/{case_id}/{action}"),
                &twins[1],
                Some(json!({"note": "not mine"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert_eq!(
            body["error"]["code"], "risk_case_claimed_by_another",
            "{body}"
        );
    }
    assert_eq!(case_status(&harness, &case_id).await, "claimed");
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/approve"),
            &twins[0],
            Some(json!({"note": "confirmed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["assignee"], "night shift");
    assert_eq!(case_status(&harness, &case_id).await, "approved");
    // A case claimed before key ids were recorded has none: its owner is known by name.
    let (_, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "hugo", "description": "not me"})),
        )
        .await;
    let old_case = claim["case"]["id"].as_str().unwrap().to_string();
    harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{old_case}/claim"),
            &harness.analyst,
            Some(json!({})),
        )
        .await;
    execute(
        &harness,
        &format!("UPDATE risk_cases SET assignee_key = NULL WHERE id = '{old_case}'"),
    )
    .await;
    let (status, _) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{old_case}/reject"),
            &harness.second_analyst,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{old_case}/reject"),
            &harness.analyst,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The evidence package carries personal data: every export is a line in the case's trail,
/// with who exported it and when, before the package is served.
async fn every_evidence_export_is_in_the_case_trail(harness: Harness) {
    let (_, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "ivy", "description": "not me"})),
        )
        .await;
    let case_id = claim["case"]["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/risk/cases/{case_id}/evidence");
    let (status, package) = harness.call("GET", &uri, &harness.analyst, None).await;
    assert_eq!(status, StatusCode::OK, "{package}");
    let last = package["trail"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "evidence_exported", "{package}");
    assert_eq!(last["actor"], "analyst one");
    harness.clock.advance(jiff::SignedDuration::from_secs(60));
    let (status, _) = harness
        .call("GET", &uri, &harness.second_analyst, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, case) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case_id}"),
            &harness.analyst,
            None,
        )
        .await;
    let exports: Vec<(String, String)> = case["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["action"] == "evidence_exported")
        .map(|line| {
            (
                line["actor"].as_str().unwrap().to_string(),
                line["at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        exports,
        vec![
            (
                "analyst one".to_string(),
                "2026-06-01T12:00:00Z".to_string()
            ),
            (
                "analyst two".to_string(),
                "2026-06-01T12:01:00Z".to_string()
            ),
        ]
    );
    // A refused export (no such case) records nothing and serves nothing.
    let (status, _) = harness
        .call(
            "GET",
            "/v1/risk/cases/nope/evidence",
            &harness.analyst,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Adding an entry of the same kind, field and value replaces the live one, in the table as
/// in the engine: after add A, add B, delete B the value is on no list, before and after a
/// restart.
async fn a_replaced_list_entry_stays_replaced_in_the_table_and_after_a_restart(
    mut harness: Harness,
) {
    async fn listed(harness: &Harness, value: &str) -> Vec<Value> {
        let (status, body) = harness
            .call("GET", "/v1/risk/lists", &harness.writer_key, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["value"] == value)
            .cloned()
            .collect()
    }
    async fn action(harness: &Harness, id: &str) -> String {
        let event = harness.event(id, "login", "jack", json!({"device": "d-twice"}));
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(event),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["decision"]["action"].as_str().unwrap().to_string()
    }
    let mut ids = Vec::new();
    for reason in ["first report", "second report"] {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/lists",
                &harness.writer_key,
                Some(json!({"kind": "block", "field": "device", "value": "d-twice", "reason": reason})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let live = listed(&harness, "d-twice").await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["id"], ids[1].as_str());
    assert_eq!(action(&harness, "j1").await, "reject");
    // The replaced entry is no longer live: it cannot be removed again.
    let (status, _) = harness
        .call(
            "DELETE",
            &format!("/v1/risk/lists/{}", ids[0]),
            &harness.admin_one,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = harness
        .call(
            "DELETE",
            &format!("/v1/risk/lists/{}", ids[1]),
            &harness.admin_one,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&harness, "d-twice").await, Vec::<Value>::new());
    assert_ne!(action(&harness, "j2").await, "reject");
    harness.router = router(&harness.test, harness.clock.clone()).await;
    assert_eq!(listed(&harness, "d-twice").await, Vec::<Value>::new());
    assert_ne!(action(&harness, "j3").await, "reject");
}

/// While the service runs, feature keys with nothing left in their windows and expired list
/// entries are forgotten from memory (on a timer, by the service clock).
async fn the_service_forgets_old_keys_and_expired_list_entries_while_it_runs(harness: Harness) {
    let dyn_clock: Arc<dyn Clock> = harness.clock.clone();
    let (writer, _) = LedgerWriter::start(
        &harness.test.database,
        dyn_clock.clone(),
        WriterConfig::default(),
    )
    .await
    .unwrap();
    let risk = Arc::new(
        RiskService::open_with_maintenance(
            &harness.test.database,
            dyn_clock.clone(),
            std::time::Duration::from_millis(20),
        )
        .await
        .unwrap(),
    );
    let state = AppState::new(
        harness.test.database.clone(),
        writer,
        dyn_clock,
        Limits::default(),
    )
    .with_privacy(Some(support::privacy()));
    let mut harness = harness;
    harness.router = app_with_risk(state, Some(risk.clone()));
    let event = harness.event(
        "k1",
        "transaction",
        "kim",
        json!({"device": "d-old", "card": "c-old", "amount": {"value": "5.00", "currency": "CNY"}}),
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(event),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expires = (harness.clock.now() + jiff::SignedDuration::from_hours(1)).to_string();
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(json!({"kind": "watch", "field": "device", "value": "d-soon", "reason": "x", "expires_at": expires})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let held = |state: &tally_service::risk::RiskState| -> (usize, usize) {
        let keys = state
            .engine
            .feature_key_counts()
            .iter()
            .map(|(_, count)| count)
            .sum();
        (keys, state.engine.lists().entries().count())
    };
    {
        let state = risk.state.lock().await;
        let (keys, entries) = held(&state);
        assert!(keys > 0);
        assert_eq!(entries, 1);
    }
    // A little while later nothing is forgotten: the windows still hold the key.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(held(&*risk.state.lock().await).0 > 0);
    // Past the longest window (90 days) and the list entry's expiry: all gone.
    harness
        .clock
        .advance(jiff::SignedDuration::from_hours(24 * 91));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if held(&*risk.state.lock().await) == (0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the engine still holds {:?}",
            held(&*risk.state.lock().await)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn an_expired_list_entry_is_neither_listed_nor_applied(harness: Harness) {
    let expires = (harness.clock.now() + jiff::SignedDuration::from_hours(1)).to_string();
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(json!({"kind": "block", "field": "card", "value": "card-brief", "reason": "stolen for an hour", "expires_at": expires})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let listed = |body: &Value| {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            // Listed as the fingerprint events carry, never in clear.
            .any(|entry| entry["value"] == support::privacy().card_fingerprint("card-brief"))
    };
    let (status, body) = harness
        .call("GET", "/v1/risk/lists", &harness.writer_key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(listed(&body), "{body}");
    // Two hours on, the entry has expired: not listed, and the card goes through.
    harness.clock.advance(jiff::SignedDuration::from_hours(2));
    let (status, body) = harness
        .call("GET", "/v1/risk/lists", &harness.writer_key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!listed(&body), "{body}");
    let purchase = harness.event(
        "x1",
        "transaction",
        "carol",
        json!({"card": "card-brief", "amount": {"value": "9.99", "currency": "CNY"}}),
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["decision"]["action"], "reject", "{body}");
    // A service started now does not load the expired entry either.
    let dyn_clock: Arc<dyn Clock> = harness.clock.clone();
    let restarted = RiskService::open(&harness.test.database, dyn_clock)
        .await
        .unwrap();
    assert_eq!(
        restarted
            .state
            .lock()
            .await
            .engine
            .lists()
            .entries()
            .count(),
        0
    );
}

async fn each_start_draws_its_own_hash_seed_and_decides_the_same(harness: Harness) {
    // Some history through the first service: a watched device, a blocked card, a device
    // shared by several customers.
    for entry in [
        json!({"kind": "watch", "field": "device", "value": "d-ring", "reason": "seen in a fraud ring"}),
        json!({"kind": "block", "field": "card", "value": "card-lost", "reason": "reported stolen"}),
    ] {
        let (status, body) = harness
            .call("POST", "/v1/risk/lists", &harness.writer_key, Some(entry))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let purchase = |id: &str, customer: &str, device: &str, card: &str| {
        harness.event(
            id,
            "transaction",
            customer,
            json!({"device": device, "card": card, "address": "1 Main St", "amount": {"value": "19.99", "currency": "CNY"}}),
        )
    };
    for (index, customer) in ["amy", "ben", "cat", "dan", "eve"].iter().enumerate() {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(purchase(
                    &format!("h{index}"),
                    customer,
                    "d-shared",
                    "card-1",
                )),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        harness.clock.advance(jiff::SignedDuration::from_secs(30));
    }
    // Two services started on the database rebuild their memory with seeds of their own.
    let clock: Arc<dyn Clock> = harness.clock.clone();
    let first = RiskService::open(&harness.test.database, clock.clone())
        .await
        .unwrap();
    let second = RiskService::open(&harness.test.database, clock)
        .await
        .unwrap();
    let mut first = first.state.lock().await;
    let mut second = second.state.lock().await;
    let public = tally_risk::EngineConfig::default().hash_seed;
    let seeds = (
        first.engine.config().hash_seed,
        second.engine.config().hash_seed,
    );
    assert_ne!(seeds.0, public);
    assert_ne!(seeds.1, public);
    assert_ne!(seeds.0, seeds.1);
    // The seed changes hashing, never a decision.
    let events = [
        purchase("n1", "fay", "d-shared", "card-1"),
        purchase("n2", "gus", "d-ring", "card-2"),
        purchase("n3", "hal", "d-new", "card-lost"),
        purchase("n4", "amy", "d-shared", "card-1"),
        harness.event("n5", "login", "ben", json!({"device": "d-ring"})),
    ];
    let mut actions = Vec::new();
    for event in &events {
        let event = tally_risk::Event::from_json(&event.to_string()).unwrap();
        let decided = first.engine.decide(&event).unwrap();
        assert_eq!(decided, second.engine.decide(&event).unwrap());
        actions.push(decided.action);
    }
    // The events exercise the hashed keys: list hits and velocity on a shared device.
    assert!(
        actions
            .iter()
            .any(|action| *action != tally_risk::Action::Approve),
        "{actions:?}"
    );
}

/// A key that submits events (`risk:write`) cannot upload or activate a rule set, allow an
/// entity, or remove a list entry: those take `risk:admin`.
async fn submitting_events_cannot_switch_fraud_control_off(harness: Harness) {
    let (status, entry) = harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.writer_key,
            Some(json!({"kind": "block", "field": "customer", "value": "mallory", "reason": "fraud"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a block still takes risk:write: {entry}"
    );
    let entry_id = entry["id"].as_str().unwrap();
    let empty = "name = \"off\"\n";
    let refused = [
        (
            "POST",
            "/v1/risk/rule-sets".to_string(),
            Some(json!({"source": empty, "activate": true})),
        ),
        (
            "POST",
            "/v1/risk/rule-sets/1/activation-requests".to_string(),
            Some(json!({})),
        ),
        ("DELETE", format!("/v1/risk/lists/{entry_id}"), None),
        (
            "POST",
            "/v1/risk/lists".to_string(),
            Some(
                json!({"kind": "allow", "field": "customer", "value": "mallory", "reason": "vip"}),
            ),
        ),
    ];
    let soon = (harness.clock.now() + jiff::SignedDuration::from_secs(1)).to_string();
    let refused = refused.into_iter().chain([(
        "POST",
        "/v1/risk/lists".to_string(),
        // The same block ending in a second: a removal in disguise.
        Some(json!({"kind": "block", "field": "customer", "value": "mallory", "reason": "r", "expires_at": soon})),
    )]);
    for (method, uri, body) in refused {
        let (status, answer) = harness.call(method, &uri, &harness.writer_key, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{method} {uri}: {answer}"
        );
    }
    let (_, sets) = harness
        .call("GET", "/v1/risk/rule-sets", &harness.writer_key, None)
        .await;
    assert_eq!(sets["versions"].as_array().unwrap().len(), 1, "{sets}");
    let (_, lists) = harness
        .call("GET", "/v1/risk/lists", &harness.writer_key, None)
        .await;
    assert_eq!(lists["entries"].as_array().unwrap().len(), 1, "{lists}");
    let purchase = harness.event(
        "m1",
        "transaction",
        "mallory",
        json!({"amount": {"value": "10.00", "currency": "CNY"}}),
    );
    let (_, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase),
        )
        .await;
    assert_eq!(body["decision"]["action"], "reject", "{body}");
}

/// Maker and checker: the key that requests an activation cannot approve it, a different
/// key (same name, different id) can, and both are on the trail the API serves.
async fn an_activation_needs_a_second_key_and_is_on_the_trail(harness: Harness) {
    let gentler =
        tally_risk::DEFAULT_RULES.replacen("action = \"reject\"", "action = \"review\"", 1);
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": gentler, "activate": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request = body["activation_request"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let approve = format!("/v1/risk/activation-requests/{request}/approve");
    let (status, body) = harness
        .call("POST", &approve, &harness.admin_one, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("risk_approver_is_requester")),
        "{body}"
    );
    let active = || async {
        let (_, sets) = harness
            .call("GET", "/v1/risk/rule-sets", &harness.admin_one, None)
            .await;
        sets["active"].clone()
    };
    assert_eq!(active().await, 1);
    let (status, body) = harness
        .call("POST", &approve, &harness.admin_two, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["activation"]["version"], 2, "{body}");
    assert_eq!(active().await, 2);
    let (status, body) = harness
        .call("POST", &approve, &harness.admin_two, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("risk_activation_request_decided")
        ),
        "{body}"
    );
    // A rollback requested and rejected changes nothing live.
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets/1/activation-requests",
            &harness.admin_two,
            Some(json!({"note": "roll back"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rollback = body["request"]["id"].as_str().unwrap().to_string();
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/activation-requests/{rollback}/reject"),
            &harness.admin_one,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request"]["status"], "rejected");
    assert_eq!(active().await, 2);
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets/7/activation-requests",
            &harness.admin_one,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("risk_unknown_rule_set_version"))
    );
    // The trail, newest first: who asked and who decided, by key id.
    let admins: Vec<String> = harness
        .test
        .database
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|key| key.name == "risk admin")
        .map(|key| key.id)
        .collect();
    assert_eq!(admins.len(), 2);
    let (status, trail) = harness
        .call(
            "GET",
            "/v1/risk/activation-requests",
            &harness.writer_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    let requests = trail["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "{trail}");
    let approved = &requests[1];
    assert_eq!(approved["id"], request.as_str());
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["version"], 2);
    assert_eq!(
        approved["requested_by"]["key_id"],
        admins[0].as_str(),
        "{trail}"
    );
    assert_eq!(
        approved["decided_by"]["key_id"],
        admins[1].as_str(),
        "{trail}"
    );
    assert_eq!(approved["decided_by"]["name"], "risk admin");
    assert_eq!(requests[0]["id"], rollback.as_str());
    assert_eq!(requests[0]["note"], "roll back");
    // The approved version is the one a restart makes live.
    let restarted = router(&harness.test, harness.clock.clone()).await;
    let request = Request::builder()
        .uri("/v1/risk/rule-sets")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", harness.admin_one),
        )
        .body(Body::empty())
        .unwrap();
    let response = restarted.oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let sets: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(sets["active"], 2, "{sets}");
}

/// A new version that renames a feature without changing what it computes keeps its
/// state: the activation reports it kept, not cold, and its count goes on.
async fn an_activation_keeps_features_defined_the_same_way_even_renamed(harness: Harness) {
    let renamed = tally_risk::DEFAULT_RULES.replace("card_transactions_10m", "card_count_10m");
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/rule-sets",
            &harness.admin_one,
            Some(json!({"source": renamed})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let purchase = |id: String| {
        harness.event(
            &id,
            "transaction",
            "judy",
            json!({"card": "card-15", "amount": {"value": "100.00", "currency": "CNY"}}),
        )
    };
    for index in 0..3 {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(purchase(format!("k{index}"))),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = harness.activate(2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["activation"]["cold_features"], json!([]), "{body}");
    assert!(
        body["activation"]["kept_features"]
            .as_array()
            .unwrap()
            .contains(&json!("card_count_10m")),
        "{body}"
    );
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.writer_key,
            Some(purchase("k3".into())),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"]["rule_set_version"], 2);
    assert_eq!(body["decision"]["features"]["card_count_10m"], 4, "{body}");
}

/// The evidence package names the other customers whose events carried the victim's device,
/// card or address, with their cases, and nobody else; its seal verifies under Tally's
/// evidence key, a changed figure does not, and the digest is on the case's trail.
async fn an_evidence_package_names_linked_customers_and_its_seal_verifies(harness: Harness) {
    use tally_consortium::{KeyType, SignerKey};
    let signer = SignerKey::from_seed("evidence.tally.test", KeyType::Ed25519, [3; 32]).unwrap();
    let mut harness = harness;
    // Unsigned first: without a key the seal carries the digest only.
    let (_, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "gina", "description": "not me"})),
        )
        .await;
    let gina_case = claim["case"]["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/risk/cases/{gina_case}/evidence");
    let (status, unsigned) = harness.call("GET", &uri, &harness.analyst, None).await;
    assert_eq!(status, StatusCode::OK, "{unsigned}");
    assert_eq!(unsigned["seal"]["signed_note"], Value::Null);
    assert_eq!(unsigned["seal"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(unsigned["linked_customers"], json!([]));
    let error = tally_service::evidence::verify(&unsigned, &signer.verifier()).unwrap_err();
    assert_eq!(error.code(), "evidence_unsigned");

    let signed_state = harness
        .state
        .clone()
        .with_evidence_signer(Some(signer.clone()));
    harness.router = app_with_risk(signed_state, harness.risk.clone());
    let amount = |value: &str| json!({"value": value, "currency": "CNY"});
    for (id, customer, extra) in [
        (
            "g1",
            "gina",
            json!({"device": "d-ring", "card": "c-ring", "address": "a-gina", "amount": amount("20.00")}),
        ),
        (
            "h1",
            "hank",
            json!({"device": "d-ring", "amount": amount("30.00")}),
        ),
        (
            "i1",
            "ivan",
            json!({"device": "d-ivan", "card": "c-ring", "amount": amount("40.00")}),
        ),
        (
            "k1",
            "kurt",
            json!({"device": "d-kurt", "address": "a-gina", "amount": amount("50.00")}),
        ),
        (
            "j1",
            "judy",
            json!({"device": "d-judy", "card": "c-judy", "address": "a-judy", "amount": amount("60.00")}),
        ),
    ] {
        let event = harness.event(id, "transaction", customer, extra);
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.writer_key,
                Some(event),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, claim) = harness
        .call(
            "POST",
            "/v1/risk/claims",
            &harness.writer_key,
            Some(json!({"customer": "hank", "description": "not me either"})),
        )
        .await;
    let hank_case = claim["case"]["id"].as_str().unwrap().to_string();

    let (status, package) = harness.call("GET", &uri, &harness.analyst, None).await;
    assert_eq!(status, StatusCode::OK, "{package}");
    // Cards and addresses are in the package as their fingerprints, as stored.
    let privacy = support::privacy();
    let ring_card = privacy.card_fingerprint("c-ring");
    let gina_address = privacy.address_fingerprint("a-gina").unwrap();
    assert_eq!(package["cards"], json!([ring_card]));
    let linked: Vec<(String, Value, Vec<String>)> = package["linked_customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|linked| {
            let cases = linked["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|case| case["id"].as_str().unwrap().to_string())
                .collect();
            (
                linked["customer"].as_str().unwrap().to_string(),
                linked["shared"].clone(),
                cases,
            )
        })
        .collect();
    assert_eq!(
        linked,
        vec![
            (
                "hank".to_string(),
                json!([{"kind": "device", "value": "d-ring"}]),
                vec![hank_case.clone()]
            ),
            (
                "ivan".to_string(),
                json!([{"kind": "card", "value": ring_card}]),
                vec![]
            ),
            (
                "kurt".to_string(),
                json!([{"kind": "address", "value": gina_address}]),
                vec![]
            ),
        ],
        "{package}"
    );

    let verified = tally_service::evidence::verify(&package, &signer.verifier()).unwrap();
    assert_eq!(verified.case_id, gina_case);
    assert_eq!(verified.sha256, package["seal"]["sha256"].as_str().unwrap());
    let mut changed = package.clone();
    changed["events"][0]["event"]["amount"]["value"] = json!("2.00");
    let error = tally_service::evidence::verify(&changed, &signer.verifier()).unwrap_err();
    assert_eq!(error.code(), "evidence_digest_mismatch");

    // Both digests are on the trail, after the export they seal.
    let (_, case) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{gina_case}"),
            &harness.analyst,
            None,
        )
        .await;
    let sealed: Vec<String> = case["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["action"] == "evidence_sealed")
        .map(|line| line["note"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sealed,
        vec![
            format!(
                "evidence package sha256 {} not signed (no evidence key configured)",
                unsigned["seal"]["sha256"].as_str().unwrap()
            ),
            format!("evidence package sha256 {} signed", verified.sha256),
        ]
    );
}
