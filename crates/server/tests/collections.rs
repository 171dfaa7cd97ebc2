//! Anomalies reach collections, on both backends: a risk decision whose reasons signal trouble
//! on a credit account (the default pack's bust-out and takeover reasons) raises the
//! collections queue's anomaly alert task on the customer's credit account, once a day per
//! reason however many events say it; other decisions and customers without a credit line
//! raise none. Collections agents record call outcomes and promises to pay with their
//! follow-up date, within the contact hours and the daily limit of contacts.

// A test file: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{application, cny, privacy, Setup, TestApp};
use tally_core::Clock;
use tally_store::testing::TestDatabase;

/// A valid PRC identity number: born 1990-03-07.
const NATIONAL_ID: &str = "110105199003071239";

struct Harness {
    app: TestApp,
    /// credit:write and credit:read.
    agent: String,
    /// risk:write: the lender's app sending events.
    events: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).credit().risk();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let agent = app.key("agent", &["credit:write", "credit:read"]).await;
        let events = app.key("events", &["risk:write"]).await;
        Harness { app, agent, events }
    }

    async fn agent(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, uri, &self.agent, None, body).await
    }

    /// A customer with an open credit account: (account id, customer id).
    async fn credit_customer(&self) -> (i64, String) {
        let (status, customer) = self
            .call(
                "POST",
                "/v1/customers",
                &self.agent,
                Some("customer-1"),
                Some(json!({"name": "李四", "phone": "13900139000", "national_id": NATIONAL_ID})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{customer}");
        let customer = customer["id"].as_str().unwrap().to_string();
        let (status, opened) = self
            .call(
                "POST",
                "/v1/credit/accounts",
                &self.agent,
                Some("open-1"),
                Some(application(&customer, true)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        (opened["account"]["id"].as_i64().unwrap(), customer)
    }

    /// Decides a risk event of `customer` now; answers the decision.
    async fn event(&self, id: &str, kind: &str, customer: &str, extra: Value) -> Value {
        let event = support::risk_event(id, kind, self.clock.now(), customer, extra);
        let (status, body) = self
            .call(
                "POST",
                "/v1/risk/decisions",
                &self.events,
                None,
                Some(event),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["decision"].clone()
    }

    async fn tasks(&self) -> Vec<Value> {
        let (status, body) = self.agent("GET", "/v1/credit/tasks", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["tasks"].as_array().unwrap().clone()
    }

    async fn contact(&self, task: i64, body: Value) -> (StatusCode, Value) {
        self.agent(
            "POST",
            &format!("/v1/credit/tasks/{task}/contacts"),
            Some(body),
        )
        .await
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    a_bust_out_raises_one_anomaly_alert_on_the_credit_account,
    a_takeover_pattern_raises_an_anomaly_alert,
    contacts_record_outcomes_and_promises_within_the_hours_and_the_daily_limit,
);

fn reasons(decision: &Value) -> Vec<&str> {
    decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason.as_str().unwrap())
        .collect()
}

async fn a_bust_out_raises_one_anomaly_alert_on_the_credit_account(harness: Harness) {
    let (account, customer) = harness.credit_customer().await;
    assert!(harness.tasks().await.is_empty());
    // Ordinary events raise nothing.
    let login = harness
        .event("login-1", "login", &customer, json!({"device": "d1"}))
        .await;
    assert_eq!(login["action"], "approve");
    harness
        .event("activation-1", "credit_activation", &customer, json!({}))
        .await;
    assert!(harness.tasks().await.is_empty());
    // 10,000.00 in a day within a week of activation: the default pack's bust-out rule.
    let spend = harness
        .event(
            "purchase-1",
            "transaction",
            &customer,
            json!({"amount": cny("10000.00"), "merchant": "m1"}),
        )
        .await;
    assert_eq!(reasons(&spend), ["BUST_OUT"], "{spend}");
    let tasks = harness.tasks().await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!(task["kind"], "alert");
    assert_eq!(task["reason"], "BUST_OUT");
    assert_eq!(task["account_id"], account);
    assert_eq!(task["customer_id"], customer.as_str());
    assert_eq!(task["priority"], 1);
    assert_eq!(task["risk_event_id"], "purchase-1");
    assert_eq!(task["amount_minor"], 1_000_000);
    assert_eq!(task["currency"], "CNY");
    assert_eq!(task["business_date"], "2026-05-01");
    assert_eq!(task["status"], "open");
    assert_eq!(task["contacts"], 0);
    // More of the same on the day, and a retry of the first event, make no second call.
    let again = harness
        .event(
            "purchase-2",
            "transaction",
            &customer,
            json!({"amount": cny("1.00"), "merchant": "m1"}),
        )
        .await;
    assert_eq!(reasons(&again), ["BUST_OUT"]);
    harness
        .event(
            "purchase-1",
            "transaction",
            &customer,
            json!({"amount": cny("10000.00"), "merchant": "m1"}),
        )
        .await;
    assert_eq!(harness.tasks().await.len(), 1);
    // The same pattern from a customer without a credit line raises nothing.
    for (id, kind, extra) in [
        ("other-activation", "credit_activation", json!({})),
        (
            "other-purchase",
            "transaction",
            json!({"amount": cny("10000.00"), "merchant": "m1"}),
        ),
    ] {
        harness.event(id, kind, "no-credit-line", extra).await;
    }
    assert_eq!(harness.tasks().await.len(), 1);
    // The next day's bust-out is a new alert.
    harness.clock.set("2026-05-02T10:00:00Z".parse().unwrap());
    harness
        .event(
            "purchase-3",
            "transaction",
            &customer,
            json!({"amount": cny("10000.00"), "merchant": "m1"}),
        )
        .await;
    let tasks = harness.tasks().await;
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(tasks[1]["business_date"], "2026-05-02");
    assert_eq!(tasks[1]["risk_event_id"], "purchase-3");
    let stored = harness
        .scalar("SELECT COUNT(*) FROM credit_contact_tasks WHERE kind = 'alert'")
        .await;
    assert_eq!(stored, 2);
}

async fn a_takeover_pattern_raises_an_anomaly_alert(harness: Harness) {
    let (account, customer) = harness.credit_customer().await;
    // The customer's own device, two hours ago.
    harness.clock.set("2026-05-01T07:00:00Z".parse().unwrap());
    harness
        .event(
            "login-1",
            "login",
            &customer,
            json!({"device": "own-phone"}),
        )
        .await;
    // A phone number changed from a device never seen before: a takeover pattern.
    harness.clock.set("2026-05-01T09:00:00Z".parse().unwrap());
    let change = harness
        .event(
            "phone-change-1",
            "profile_change",
            &customer,
            json!({"device": "new-phone", "profile_field": "phone"}),
        )
        .await;
    assert_eq!(change["action"], "step_up", "{change}");
    assert_eq!(reasons(&change), ["NEW_DEVICE_CREDENTIAL_CHANGE"]);
    let tasks = harness.tasks().await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["kind"], "alert");
    assert_eq!(tasks[0]["reason"], "NEW_DEVICE_CREDENTIAL_CHANGE");
    assert_eq!(tasks[0]["account_id"], account);
    assert_eq!(tasks[0]["risk_event_id"], "phone-change-1");
    // No amount on a profile change: the task shows none.
    assert_eq!(tasks[0]["amount_minor"], 0);
}

async fn contacts_record_outcomes_and_promises_within_the_hours_and_the_daily_limit(
    harness: Harness,
) {
    let (account, _) = harness.credit_customer().await;
    let (status, added) = harness
        .agent(
            "POST",
            "/v1/credit/tasks",
            Some(
                json!({"account_id": account, "kind": "callback", "reason": "asked to be called",
                        "amount": cny("0.00"), "priority": 2}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let task = added["id"].as_i64().unwrap();
    // Refusals change nothing.
    let refusals = [
        (
            json!({"outcome": "promise_to_pay", "note": "will pay"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
        ),
        (
            json!({"outcome": "promise_to_pay", "note": "will pay", "promised_amount": cny("100.00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
        ),
        (
            json!({"outcome": "promise_to_pay", "note": "will pay", "promised_amount": cny("100.00"),
                   "promised_date": "2026-04-30"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
        ),
        (
            json!({"outcome": "reached", "note": "spoke", "promised_amount": cny("100.00"),
                   "promised_date": "2026-05-03"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
        ),
        (
            json!({"outcome": "maybe", "note": "?"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
        ),
    ];
    for (body, status, code) in refusals {
        let (answered, error) = harness.contact(task, body.clone()).await;
        assert_eq!(
            (answered, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} {error}"
        );
    }
    let (status, error) = harness
        .contact(999, json!({"outcome": "reached", "note": "spoke"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["error"]["code"], "credit_task_not_found");
    assert_eq!(
        harness.scalar("SELECT COUNT(*) FROM credit_contacts").await,
        0
    );
    // An unanswered call is followed up the next day.
    let (status, first) = harness
        .contact(task, json!({"outcome": "no_answer", "note": "rang out"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["follow_up_date"], "2026-05-02");
    assert_eq!(first["recorded_by"], "agent");
    assert_eq!(first["business_date"], "2026-05-01");
    assert_eq!(first["promised_amount"], Value::Null);
    // A promise to pay 500.00 by the 10th is followed up on the 11th.
    let (status, promise) = harness
        .contact(
            task,
            json!({"outcome": "promise_to_pay", "note": "salary on the 10th",
                   "promised_amount": cny("500.00"), "promised_date": "2026-05-10"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{promise}");
    assert_eq!(promise["promised_amount"], cny("500.00"));
    assert_eq!(promise["promised_date"], "2026-05-10");
    assert_eq!(promise["follow_up_date"], "2026-05-11");
    // Reaching the customer again keeps the promise and its follow-up on the task.
    let (status, _) = harness
        .contact(task, json!({"outcome": "reached", "note": "confirmed"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let listed = harness.tasks().await;
    let row = listed.iter().find(|row| row["id"] == task).unwrap();
    assert_eq!(row["contacts"], 3);
    assert_eq!(row["last_outcome"], "reached");
    assert_eq!(row["promised_amount_minor"], 50_000);
    assert_eq!(row["promised_date"], "2026-05-10");
    assert_eq!(row["follow_up_date"], "2026-05-11");
    // Three contacts a day at most: the fourth is refused and not recorded.
    let (status, error) = harness
        .contact(task, json!({"outcome": "reached", "note": "once more"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["code"], "collections_contact_limit_reached");
    let (status, contacts) = harness
        .agent("GET", &format!("/v1/credit/tasks/{task}/contacts"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{contacts}");
    let outcomes: Vec<&str> = contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| contact["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["no_answer", "promise_to_pay", "reached"]);
    // The next day, before 08:00 local time, no contact; from 08:00 the count starts again.
    harness.clock.set("2026-05-02T07:59:00Z".parse().unwrap());
    let (status, error) = harness
        .contact(task, json!({"outcome": "reached", "note": "early"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["code"], "collections_contact_outside_hours");
    harness.clock.set("2026-05-02T21:00:00Z".parse().unwrap());
    let (status, error) = harness
        .contact(task, json!({"outcome": "reached", "note": "late"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["code"], "collections_contact_outside_hours");
    harness.clock.set("2026-05-02T08:00:00Z".parse().unwrap());
    let (status, _) = harness
        .contact(task, json!({"outcome": "reached", "note": "on time"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        harness.scalar("SELECT COUNT(*) FROM credit_contacts").await,
        4
    );
    // The daily limit counts the customer, not the task: a second task of the same customer
    // shares it.
    let (_, second) = harness
        .agent(
            "POST",
            "/v1/credit/tasks",
            Some(
                json!({"account_id": account, "kind": "alert", "reason": "checked by hand",
                        "amount": cny("0.00"), "priority": 1}),
            ),
        )
        .await;
    let second = second["id"].as_i64().unwrap();
    for note in ["one", "two"] {
        let (status, _) = harness
            .contact(second, json!({"outcome": "reached", "note": note}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, error) = harness
        .contact(second, json!({"outcome": "reached", "note": "three"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["code"], "collections_contact_limit_reached");
    // A closed task takes no contact; its contacts can still be read.
    let (status, _) = harness
        .agent(
            "POST",
            &format!("/v1/credit/tasks/{task}/close"),
            Some(json!({"note": "paid"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    harness.clock.set("2026-05-03T09:00:00Z".parse().unwrap());
    let (status, error) = harness
        .contact(task, json!({"outcome": "reached", "note": "after closing"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, contacts) = harness
        .agent("GET", &format!("/v1/credit/tasks/{task}/contacts"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(contacts["contacts"].as_array().unwrap().len(), 4);
    let (status, _) = harness
        .agent("GET", "/v1/credit/tasks/999/contacts", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
