//! Risk on every link, over HTTP on SQLite and PostgreSQL: credit activation, credit
//! authorisations and customer profile changes are decided by the risk engine (the shipped
//! rule pack) before they take effect. Stories: a purchase from a blocked device is refused
//! with the rule's reason; an account takeover (a new device changes the phone, then buys
//! high-value goods for a new address) is stepped up, then held; an authorisation parked for
//! review reserves its credit, completes when the case is approved and is refused (the credit
//! given back) when it is rejected. Money out: a merchant payout refused with the rule's
//! reason moves nothing; one parked for review is paid on approval and refused on rejection,
//! the money where it was; a payout batch decided item by item (a watched merchant's item
//! parked, a block-listed one's refusing the batch); a withdrawal after a takeover is stepped up. Then every refusal of
//! the gate, each changing nothing.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::{json, Value};
use tally_core::Clock;
use tally_store::testing::TestDatabase;

mod support;
use support::{application, cny, code, privacy, Setup, TestApp};

/// A valid PRC identity number (born 1990-03-07).
const NATIONAL_ID: &str = "110105199003071239";

struct Harness {
    app: TestApp,
    /// credit:write and credit:read: the lender's app.
    clerk: String,
    /// risk:write (events, lists) and risk:analyst (cases).
    analyst: String,
    admin: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).payments().risk();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let clerk = app
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
        let analyst = app.key("analyst", &["risk:write", "risk:analyst"]).await;
        let admin = app.key("admin", &["admin"]).await;
        Harness {
            app,
            clerk,
            analyst,
            admin,
        }
    }

    async fn post(&self, uri: &str, idempotency: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.clerk, Some(idempotency), Some(body))
            .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &self.clerk, None, None).await
    }

    /// A customer with an approved credit line opened from `device`: (account, customer).
    async fn customer_with_line(&self, device: &str) -> (i64, String) {
        let (status, customer) = self
            .post(
                "/v1/customers",
                "customer-1",
                json!({"name": "李四", "phone": "13900139000", "national_id": NATIONAL_ID}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{customer}");
        let customer = customer["id"].as_str().unwrap().to_string();
        let mut opening = application(&customer, true);
        opening["device"] = json!(device);
        let (status, opened) = self.post("/v1/credit/accounts", "open-1", opening).await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        (opened["account"]["id"].as_i64().unwrap(), customer)
    }

    async fn list(&self, kind: &str, field: &str, value: &str) {
        let (status, body) = self
            .call(
                "POST",
                "/v1/risk/lists",
                &self.analyst,
                None,
                Some(json!({"kind": kind, "field": field, "value": value, "reason": "test"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn authorize(&self, account: i64, key: &str, body: Value) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/credit/accounts/{account}/authorizations"),
            key,
            body,
        )
        .await
    }

    /// The analyst claims case `id` and then approves or rejects it.
    async fn decide_case(&self, id: &str, action: &str) {
        for step in ["claim", action] {
            let (status, body) = self
                .call(
                    "POST",
                    &format!("/v1/risk/cases/{id}/{step}"),
                    &self.analyst,
                    None,
                    Some(json!({"note": "checked with the customer"})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{step}: {body}");
        }
    }

    async fn authorizations(&self, account: i64) -> usize {
        let (status, body) = self.get(&format!("/v1/credit/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["authorizations"].as_array().unwrap().len()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.scalar(sql).await
    }

    async fn available_credit(&self, account: i64) -> Value {
        let (status, body) = self.get(&format!("/v1/credit/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["available_credit"]["value"].clone()
    }

    /// A merchant's available balance (a liability: credits less debits), in minor units.
    async fn merchant_available(&self, merchant: &str) -> i64 {
        let code = format!("payments-merchant-{merchant}-available-CNY");
        let id = self.database.account_id_by_code(&code).await.unwrap();
        let Some(id) = id else { return 0 };
        let balance = self.database.account(id).await.unwrap().unwrap().balance;
        balance.credits_posted - balance.debits_posted
    }

    /// Puts `minor` in a merchant's available balance, as a settlement would (from the
    /// channel's clearing account).
    async fn fund_merchant(&self, merchant: &str, minor: i64) {
        use tally_ledger::{Actor, Command, NewEntry, NewLeg, Side};
        let payments = self.payments.as_deref().unwrap();
        let service = payments
            .accounts()
            .service(&self.database, &self.writer, tally_core::Currency::CNY)
            .await
            .unwrap();
        let accounts = payments
            .accounts()
            .merchant(
                &self.database,
                &self.writer,
                merchant,
                tally_core::Currency::CNY,
            )
            .await
            .unwrap();
        let amount = tally_core::Amount::new(minor, tally_core::Currency::CNY);
        let leg = |account_id, side| NewLeg {
            account_id,
            side,
            amount,
        };
        let entry = NewEntry {
            description: format!("test settlement of {merchant}"),
            metadata: Default::default(),
            legs: vec![
                leg(service.channel_clearing, Side::Debit),
                leg(accounts.available, Side::Credit),
            ],
        };
        self.writer
            .submit_as(
                Actor::Service("payments"),
                format!("risk-gate-test-fund:{merchant}:{minor}"),
                Command::PostEntry(entry),
            )
            .await
            .unwrap();
    }

    async fn payout(&self, key: &str, merchant: &str, value: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/payouts",
            key,
            json!({"merchant_id": merchant, "amount": cny(value)}),
        )
        .await
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    a_purchase_from_a_blocked_device_is_refused_with_the_rules_reason,
    an_account_takeover_is_stepped_up_then_held,
    a_reviewed_authorisation_completes_when_approved_and_is_refused_when_rejected,
    a_credit_activation_is_decided_before_the_line_opens,
    profile_changes_are_sealed_audited_and_refused_with_their_codes,
    a_name_change_is_gated_sealed_and_audited,
    the_address_and_bank_card_are_read_in_clear_only_with_a_reason_on_record,
    one_time_codes_are_refused_when_wrong_spent_or_expired,
    a_risk_event_naming_an_unknown_tally_customer_is_refused,
    a_payout_rejected_by_the_engine_moves_nothing,
    a_payout_parked_for_review_is_paid_on_approval_and_refused_on_rejection,
    a_payout_batch_is_decided_item_by_item,
    a_withdrawal_after_a_phone_change_is_stepped_up,
);

async fn a_purchase_from_a_blocked_device_is_refused_with_the_rules_reason(harness: Harness) {
    let (account, customer) = harness.customer_with_line("phone-1").await;
    harness.list("block", "device", "rooted-emulator").await;
    let purchase = json!({"amount": cny("100.00"), "device": "rooted-emulator"});
    let (status, body) = harness.authorize(account, "buy-1", purchase.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "risk_rejected");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("BLOCK_LISTED"), "{message}");
    assert_eq!(harness.authorizations(account).await, 0);
    // A retry is the same refusal, decided once.
    let (status, again) = harness.authorize(account, "buy-1", purchase).await;
    assert_eq!((status, again), (StatusCode::CONFLICT, body));
    let sql = format!(
        "SELECT COUNT(*) FROM risk_events WHERE customer = '{customer}' AND action = 'reject'"
    );
    assert_eq!(harness.count(&sql).await, 1);
    // The same purchase from the customer's own device goes through.
    let (status, body) = harness
        .authorize(
            account,
            "buy-2",
            json!({"amount": cny("100.00"), "device": "phone-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("risk").is_none(), "{body}");
}

async fn an_account_takeover_is_stepped_up_then_held(harness: Harness) {
    let (account, customer) = harness.customer_with_line("phone-1").await;
    // Two days later a device the customer never used changes the phone number.
    harness.clock.advance(jiff::SignedDuration::from_hours(48));
    let (status, held) = harness
        .post(
            &format!("/v1/customers/{customer}/phone"),
            "phone-change-1",
            json!({"phone": "13700137000", "device": "thief-phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    assert_eq!(held["action"], "step_up");
    assert_eq!(held["status"], "waiting_for_code");
    assert_eq!(held["reasons"], json!(["NEW_DEVICE_CREDENTIAL_CHANGE"]));
    let id = held["id"].as_str().unwrap();
    // Nothing changed yet: the phone is still the old one.
    let (_, shown) = harness.get(&format!("/v1/customers/{customer}")).await;
    assert!(
        shown["phone"].as_str().unwrap().ends_with("9000"),
        "{shown}"
    );
    // The thief has the customer's code (a SIM swap): the change goes through.
    let sent = harness.codes.last_for(id).unwrap();
    let (status, changed) = harness
        .post(
            &format!("/v1/held-operations/{id}/code"),
            "unused",
            json!({"code": sent}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["field"], "phone");
    assert_eq!(changed["risk_action"], "step_up");
    let (_, shown) = harness.get(&format!("/v1/customers/{customer}")).await;
    assert!(
        shown["phone"].as_str().unwrap().ends_with("7000"),
        "{shown}"
    );
    // Then a high-value purchase from the new device to an address never seen.
    let (status, body) = harness
        .authorize(
            account,
            "takeover-buy",
            json!({"amount": cny("3000.00"), "device": "thief-phone", "delivery_address": "Room 5, 88 Unknown Rd"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["risk"]["action"], "hold_delivery", "{body}");
    // A retry answers the same, the delivery hold's mark included, decided once.
    let (status, again) = harness
        .authorize(
            account,
            "takeover-buy",
            json!({"amount": cny("3000.00"), "device": "thief-phone", "delivery_address": "Room 5, 88 Unknown Rd"}),
        )
        .await;
    assert_eq!((status, &again), (StatusCode::CREATED, &body));
    let sql = format!("SELECT COUNT(*) FROM risk_events WHERE customer = '{customer}' AND action = 'hold_delivery'");
    assert_eq!(harness.count(&sql).await, 1);
    let reasons = body["risk"]["reasons"].as_array().unwrap();
    assert!(reasons.contains(&json!("ACCOUNT_TAKEOVER")), "{body}");
    let case = body["risk"]["case_id"].as_str().unwrap();
    let (status, case) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case}"),
            &harness.analyst,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{case}");
    assert_eq!(case["case"]["kind"], "hold_delivery", "{case}");
    // No address is stored in clear: the event carries only its fingerprint.
    let sql = "SELECT COUNT(*) FROM risk_events WHERE body LIKE '%Unknown Rd%'";
    assert_eq!(harness.count(sql).await, 0);
}

async fn a_reviewed_authorisation_completes_when_approved_and_is_refused_when_rejected(
    harness: Harness,
) {
    let (account, _) = harness.customer_with_line("phone-1").await;
    harness.list("watch", "device", "shared-tablet").await;
    let purchase = json!({"amount": cny("250.00"), "device": "shared-tablet"});
    let (status, held) = harness
        .authorize(account, "watched-1", purchase.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    assert_eq!(held["action"], "review");
    assert_eq!(held["status"], "under_review");
    let case = held["case_id"].as_str().unwrap().to_string();
    let id = held["id"].as_str().unwrap().to_string();
    // While parked, its credit is reserved: the customer cannot spend it twice meanwhile.
    let limit = harness.available_credit(account).await;
    assert_eq!(harness.authorizations(account).await, 1);
    let (_, line) = harness.get(&format!("/v1/credit/accounts/{account}")).await;
    assert_eq!(
        line["limit"]["value"],
        limit_plus(&limit, "250.00"),
        "{line}"
    );
    // Asked again, it answers where it stands.
    let (status, again) = harness
        .authorize(account, "watched-1", purchase.clone())
        .await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::ACCEPTED, &json!("under_review"))
    );
    harness.decide_case(&case, "approve").await;
    assert_eq!(harness.authorizations(account).await, 1);
    let (status, done) = harness.get(&format!("/v1/held-operations/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["outcome"]["kind"], "created");
    // The request again gets the authorisation, made once.
    let (status, authorized) = harness.authorize(account, "watched-1", purchase).await;
    assert_eq!(status, StatusCode::CREATED, "{authorized}");
    assert_eq!(authorized, done["outcome"]["body"]);
    assert_eq!(harness.authorizations(account).await, 1);

    let second = json!({"amount": cny("300.00"), "device": "shared-tablet"});
    let (status, held) = harness
        .authorize(account, "watched-2", second.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let case = held["case_id"].as_str().unwrap().to_string();
    let before = harness.available_credit(account).await;
    assert_eq!(harness.authorizations(account).await, 2);
    harness.decide_case(&case, "reject").await;
    // Rejected: the reservation is given back.
    assert_eq!(harness.authorizations(account).await, 1);
    assert_eq!(
        harness.available_credit(account).await,
        limit_plus(&before, "300.00")
    );
    let (status, refused) = harness.authorize(account, "watched-2", second).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(code(&refused), "risk_review_rejected");
    assert_eq!(harness.authorizations(account).await, 1);
    // The same key for another request is refused, nothing changed.
    let (status, reused) = harness
        .authorize(
            account,
            "watched-2",
            json!({"amount": cny("1.00"), "device": "shared-tablet"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reused}");
    assert_eq!(code(&reused), "idempotency_key_reused");
}

async fn a_credit_activation_is_decided_before_the_line_opens(harness: Harness) {
    let (status, customer) = harness
        .post(
            "/v1/customers",
            "customer-1",
            json!({"name": "李四", "phone": "13900139000", "national_id": NATIONAL_ID}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{customer}");
    let customer = customer["id"].as_str().unwrap().to_string();
    harness.list("block", "device", "farm-device").await;
    let mut opening = application(&customer, true);
    opening["device"] = json!("farm-device");
    let (status, body) = harness
        .post("/v1/credit/accounts", "open-blocked", opening)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "risk_rejected");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("BLOCK_LISTED"));
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM credit_accounts").await,
        0
    );
    let sql = format!(
        "SELECT COUNT(*) FROM risk_events WHERE customer = '{customer}' \
         AND body LIKE '%credit_activation%'"
    );
    assert_eq!(harness.count(&sql).await, 1);
    // From a device of its own the line opens, after its own activation event.
    let mut opening = application(&customer, true);
    opening["device"] = json!("phone-1");
    let (status, body) = harness.post("/v1/credit/accounts", "open-2", opening).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(harness.count(&sql).await, 2);
}

async fn profile_changes_are_sealed_audited_and_refused_with_their_codes(harness: Harness) {
    let (_, customer) = harness.customer_with_line("phone-1").await;
    let uri = |field: &str| format!("/v1/customers/{customer}/{field}");
    let (status, body) = harness
        .post(
            &uri("address"),
            "address-1",
            json!({"address": "Flat 2, 10 Jianguo Rd, Beijing", "device": "phone-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["field"], &body["risk_action"]),
        (&json!("address"), &json!("approve"))
    );
    let (status, body) = harness
        .post(
            &uri("bank-card"),
            "card-1",
            json!({"card_number": "4111 1111 1111 1111", "device": "phone-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Sealed, audited once each (a retry writes nothing again), never in clear.
    let (status, again) = harness
        .post(
            &uri("bank-card"),
            "card-1",
            json!({"card_number": "4111 1111 1111 1111", "device": "phone-1"}),
        )
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    let sql = format!(
        "SELECT COUNT(*) FROM customers WHERE id = '{customer}' AND address LIKE 'v1:%' \
         AND bank_card LIKE 'v1:%'"
    );
    assert_eq!(harness.count(&sql).await, 1);
    let sql =
        format!("SELECT COUNT(*) FROM customer_profile_changes WHERE customer_id = '{customer}'");
    assert_eq!(harness.count(&sql).await, 2);
    let clear = "SELECT COUNT(*) FROM risk_events WHERE body LIKE '%4111111111111111%' \
                 OR body LIKE '%Jianguo%'";
    assert_eq!(harness.count(clear).await, 0);

    // Refusals, each changing nothing.
    let other = "11111111-2222-4333-8444-555555555555";
    let refusals = [
        (
            format!("/v1/customers/{other}/phone"),
            json!({"phone": "13700137000"}),
            StatusCode::NOT_FOUND,
            "customer_unknown",
        ),
        (
            uri("phone"),
            json!({"phone": "12345"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone",
        ),
        (
            uri("bank-card"),
            json!({"card_number": "4111 1111 1111 1112"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card_number",
        ),
        (
            uri("address"),
            json!({"address": " \t "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_address",
        ),
        (
            uri("address"),
            json!({"address": "x", "device": "d".repeat(257)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "risk_invalid_event",
        ),
        (
            "/v1/customers/not-a-uuid/phone".to_string(),
            json!({"phone": "13700137000"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ];
    for (index, (uri, body, status, expected)) in refusals.into_iter().enumerate() {
        let (answered, refusal) = harness.post(&uri, &format!("refused-{index}"), body).await;
        assert_eq!(
            (answered, code(&refusal)),
            (status, expected),
            "{uri}: {refusal}"
        );
    }
    // Another customer's phone number is taken.
    let (status, second) = harness
        .post(
            "/v1/customers",
            "customer-2",
            json!({"name": "王五", "phone": "13600136000", "national_id": "440304199508154567"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, taken) = harness
        .post(
            &uri("phone"),
            "phone-taken",
            json!({"phone": "13600136000", "device": "phone-1"}),
        )
        .await;
    assert_eq!(
        (status, code(&taken)),
        (StatusCode::CONFLICT, "customer_phone_taken"),
        "{taken}"
    );
    // A change from a blocked device is refused with the rule's reason.
    harness.list("block", "device", "stolen-phone").await;
    let (status, rejected) = harness
        .post(
            &uri("phone"),
            "phone-blocked",
            json!({"phone": "13500135000", "device": "stolen-phone"}),
        )
        .await;
    assert_eq!(
        (status, code(&rejected)),
        (StatusCode::CONFLICT, "risk_rejected"),
        "{rejected}"
    );
    assert!(rejected["error"]["message"]
        .as_str()
        .unwrap()
        .contains("BLOCK_LISTED"));
    let (_, shown) = harness.get(&format!("/v1/customers/{customer}")).await;
    assert!(
        shown["phone"].as_str().unwrap().ends_with("9000"),
        "{shown}"
    );
    assert_eq!(harness.count(&sql).await, 2);
    // Without a key nothing is changed: the routes are behind credit:write.
    let (status, _) = harness
        .call(
            "POST",
            &uri("phone"),
            &harness.analyst,
            Some("k"),
            Some(json!({"phone": "13500135000"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let _ = &harness.admin;
}

async fn a_name_change_is_gated_sealed_and_audited(harness: Harness) {
    let (_, customer) = harness.customer_with_line("phone-1").await;
    let uri = format!("/v1/customers/{customer}/name");
    let (status, body) = harness
        .post(
            &uri,
            "name-1",
            json!({"name": " 李小四 ", "device": "phone-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["field"], &body["risk_action"]),
        (&json!("name"), &json!("approve"))
    );
    // A retry answers the same change and writes nothing again.
    let (status, again) = harness
        .post(
            &uri,
            "name-1",
            json!({"name": " 李小四 ", "device": "phone-1"}),
        )
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    let changes = format!(
        "SELECT COUNT(*) FROM customer_profile_changes WHERE customer_id = '{customer}' \
         AND field = 'name'"
    );
    assert_eq!(harness.count(&changes).await, 1);
    // Decided as a profile change of the name, which the event does not carry.
    let event_id = body["risk_event_id"].as_str().unwrap();
    let event = format!(
        "SELECT COUNT(*) FROM risk_events WHERE event_id = '{event_id}' \
         AND body LIKE '%\"profile_field\":\"name\"%' AND body NOT LIKE '%小四%'"
    );
    assert_eq!(harness.count(&event).await, 1);
    // Sealed (never in clear), masked when shown, in clear with pii:read and a reason.
    let sealed =
        format!("SELECT COUNT(*) FROM customers WHERE id = '{customer}' AND name LIKE 'v1:%'");
    assert_eq!(harness.count(&sealed).await, 1);
    let (_, shown) = harness.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(shown["name"], "李**", "{shown}");
    let reader = harness.key("reader", &["pii:read"]).await;
    let (status, clear) = harness
        .call(
            "POST",
            &format!("/v1/customers/{customer}/reveal"),
            &reader,
            None,
            Some(json!({"reason": "name change check"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{clear}");
    assert_eq!(clear["name"], "李小四");

    // Refusals, each changing nothing.
    let (status, refusal) = harness
        .post(&uri, "name-blank", json!({"name": "  "}))
        .await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"),
        "{refusal}"
    );
    let (status, refusal) = harness
        .post(
            "/v1/customers/11111111-2222-4333-8444-555555555555/name",
            "name-unknown",
            json!({"name": "王五"}),
        )
        .await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::NOT_FOUND, "customer_unknown"),
        "{refusal}"
    );
    harness.list("block", "device", "stolen-phone").await;
    let (status, rejected) = harness
        .post(
            &uri,
            "name-blocked",
            json!({"name": "王五", "device": "stolen-phone"}),
        )
        .await;
    assert_eq!(
        (status, code(&rejected)),
        (StatusCode::CONFLICT, "risk_rejected"),
        "{rejected}"
    );
    assert_eq!(harness.count(&changes).await, 1);
    let (_, shown) = harness.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(shown["name"], "李**", "{shown}");
    // An erased customer takes no name again.
    let (status, erased) = harness
        .call(
            "POST",
            &format!("/v1/customers/{customer}/erasure"),
            &harness.admin,
            None,
            Some(json!({"reason": "the customer asked"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    let (status, refusal) = harness
        .post(
            &uri,
            "name-erased",
            json!({"name": "王五", "device": "phone-1"}),
        )
        .await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::NOT_FOUND, "customer_unknown"),
        "{refusal}"
    );
    assert_eq!(harness.count(&changes).await, 1);
}

async fn the_address_and_bank_card_are_read_in_clear_only_with_a_reason_on_record(
    harness: Harness,
) {
    let (_, customer) = harness.customer_with_line("phone-1").await;
    let reader = harness.key("reader", &["pii:read"]).await;
    let reveal = |key: String, id: String, body: Value| {
        let harness = &harness;
        async move {
            harness
                .call(
                    "POST",
                    &format!("/v1/customers/{id}/profile/reveal"),
                    &key,
                    None,
                    Some(body),
                )
                .await
        }
    };
    // (Opening the line read the date of birth: not counted here.)
    let reads = format!(
        "SELECT COUNT(*) FROM pii_reads WHERE customer_id = '{customer}' \
         AND field IN ('address', 'bank_card')"
    );
    // Nothing set yet: nothing shown, nothing on the log.
    let (status, empty) = reveal(
        reader.clone(),
        customer.clone(),
        json!({"reason": "ticket 7"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(
        (&empty["address"], &empty["bank_card"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(harness.count(&reads).await, 0);

    for (field, body) in [
        (
            "address",
            json!({"address": "Flat 2, 10 Jianguo Rd", "device": "phone-1"}),
        ),
        (
            "bank-card",
            json!({"card_number": "4111-1111-1111-1111", "device": "phone-1"}),
        ),
    ] {
        let (status, changed) = harness
            .post(&format!("/v1/customers/{customer}/{field}"), field, body)
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
    }
    // Refused without a reason, without pii:read, for nobody: nothing read, nothing logged.
    let (status, refusal) = reveal(reader.clone(), customer.clone(), json!({})).await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::BAD_REQUEST, "reason_required")
    );
    let (status, refusal) = reveal(
        harness.clerk.clone(),
        customer.clone(),
        json!({"reason": "ticket 7"}),
    )
    .await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, refusal) = reveal(
        reader.clone(),
        "11111111-2222-4333-8444-555555555555".into(),
        json!({"reason": "ticket 7"}),
    )
    .await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::NOT_FOUND, "customer_not_found")
    );
    assert_eq!(harness.count(&reads).await, 0);

    // In clear, each value on the audit log with the key and the reason.
    let (status, clear) = reveal(
        reader.clone(),
        customer.clone(),
        json!({"reason": "delivery dispute 12"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{clear}");
    assert_eq!(clear["address"], "Flat 2, 10 Jianguo Rd");
    assert_eq!(clear["bank_card"], "4111111111111111");
    let logged = format!(
        "SELECT COUNT(*) FROM pii_reads WHERE customer_id = '{customer}' \
         AND reason LIKE 'v1:%' AND principal = 'reader' \
         AND field IN ('address', 'bank_card')"
    );
    assert_eq!(harness.count(&logged).await, 2);

    // `tally privacy reseal` moves the address and card to a new active key with the four
    // original fields, compare and set; run again, it changes nothing.
    let rotated = support::privacy_keys(&[("a", 7), ("b", 8)], "b");
    let report = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 1)
        .await
        .unwrap();
    assert_eq!(
        (report.customers_resealed, report.values_resealed),
        (1, 6),
        "{report:?}"
    );
    assert_eq!(report.values_by_key_before.get("a"), Some(&6));
    let sealed_under_b = format!(
        "SELECT COUNT(*) FROM customers WHERE id = '{customer}' AND address LIKE 'v1:b:%' \
         AND bank_card LIKE 'v1:b:%' AND name LIKE 'v1:b:%'"
    );
    assert_eq!(harness.count(&sealed_under_b).await, 1);
    let again = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 1)
        .await
        .unwrap();
    assert_eq!((again.customers_resealed, again.values_resealed), (0, 0));

    // Erased: nothing left to read.
    let (status, _) = harness
        .call(
            "POST",
            &format!("/v1/customers/{customer}/erasure"),
            &harness.admin,
            None,
            Some(json!({"reason": "the customer asked"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refusal) = reveal(reader, customer.clone(), json!({"reason": "ticket 8"})).await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::GONE, "customer_erased")
    );
    assert_eq!(harness.count(&reads).await, 2);
}

async fn one_time_codes_are_refused_when_wrong_spent_or_expired(harness: Harness) {
    let (account, customer) = harness.customer_with_line("phone-1").await;
    harness.clock.advance(jiff::SignedDuration::from_hours(48));
    let change = |key: &'static str, phone: &'static str| {
        let harness = &harness;
        let customer = customer.clone();
        async move {
            let (status, held) = harness
                .post(
                    &format!("/v1/customers/{customer}/phone"),
                    key,
                    json!({"phone": phone, "device": format!("new-device-{key}")}),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{held}");
            held["id"].as_str().unwrap().to_string()
        }
    };
    let enter = |id: String, code: String| {
        let harness = &harness;
        async move {
            harness
                .post(
                    &format!("/v1/held-operations/{id}/code"),
                    "unused",
                    json!({"code": code}),
                )
                .await
        }
    };
    let wrong = |id: &str| {
        let sent = harness.codes.last_for(id).unwrap();
        format!("{:06}", (sent.parse::<u32>().unwrap() + 1) % 1_000_000)
    };
    // Three wrong codes end it.
    let id = change("phone-a", "13700137000").await;
    for attempts_left in [2, 1] {
        let (status, body) = enter(id.clone(), wrong(&id)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "step_up_code_wrong")
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{attempts_left} attempts left")),
            "{message}"
        );
    }
    let (status, body) = enter(id.clone(), wrong(&id)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "step_up_failed"),
        "{body}"
    );
    // Even the right code comes too late now.
    let right = harness.codes.last_for(&id).unwrap();
    let (status, body) = enter(id.clone(), right).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "step_up_failed"),
        "{body}"
    );
    // An expired code.
    let id = change("phone-b", "13700137001").await;
    harness.clock.advance(jiff::SignedDuration::from_mins(11));
    let right = harness.codes.last_for(&id).unwrap();
    let (status, body) = enter(id.clone(), right).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "step_up_expired"),
        "{body}"
    );
    let (_, shown) = harness.get(&format!("/v1/customers/{customer}")).await;
    assert!(
        shown["phone"].as_str().unwrap().ends_with("9000"),
        "{shown}"
    );
    // No such held operation; one that takes no code.
    let (status, body) = enter("credit-authorization:none".into(), "000000".into()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "risk_held_operation_not_found")
    );
    let (status, body) = harness.get("/v1/held-operations/none").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "risk_held_operation_not_found")
    );
    harness.list("watch", "device", "shared-tablet").await;
    let (status, held) = harness
        .authorize(
            account,
            "watched",
            json!({"amount": cny("10.00"), "device": "shared-tablet"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let (status, body) = enter(held["id"].as_str().unwrap().into(), "000000".into()).await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::CONFLICT,
            "risk_held_operation_not_waiting_for_code"
        ),
        "{body}"
    );
}

async fn a_risk_event_naming_an_unknown_tally_customer_is_refused(harness: Harness) {
    let (_, customer) = harness.customer_with_line("phone-1").await;
    let event = |id: &str, customer: &str| json!({"id": id, "kind": "login", "at": harness.clock.now().to_string(), "customer": customer});
    let unknown = "11111111-2222-4333-8444-555555555555";
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/decisions",
            &harness.analyst,
            None,
            Some(event("login-1", unknown)),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "customer_unknown"),
        "{body}"
    );
    let sql = "SELECT COUNT(*) FROM risk_events WHERE event_id = 'login-1'";
    assert_eq!(harness.count(sql).await, 0);
    // A real customer, and a lender's own identifier, are decided.
    for (id, who) in [
        ("login-2", customer.as_str()),
        ("login-3", "lender-user-42"),
    ] {
        let (status, body) = harness
            .call(
                "POST",
                "/v1/risk/decisions",
                &harness.analyst,
                None,
                Some(event(id, who)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// `value` (a major-unit amount string) plus `more`, as the API writes amounts.
fn limit_plus(value: &Value, more: &str) -> Value {
    let minor = |text: &str| -> i64 {
        let (units, cents) = text.split_once('.').unwrap();
        units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
    };
    let total = minor(value.as_str().unwrap()) + minor(more);
    json!(format!("{}.{:02}", total / 100, total % 100))
}

async fn a_payout_rejected_by_the_engine_moves_nothing(harness: Harness) {
    harness.fund_merchant("m1", 100_000).await;
    harness.list("block", "merchant", "m1").await;
    let (status, body) = harness.payout("payout-1", "m1", "400.00").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "risk_rejected");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("BLOCK_LISTED"), "{message}");
    assert_eq!(harness.merchant_available("m1").await, 100_000);
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 0);
    // A retry is the same refusal, decided once.
    let (status, again) = harness.payout("payout-1", "m1", "400.00").await;
    assert_eq!((status, again), (StatusCode::CONFLICT, body));
    let sql = "SELECT COUNT(*) FROM risk_events WHERE action = 'reject' AND body LIKE '%payout%'";
    assert_eq!(harness.count(sql).await, 1);
    // A payout the payment service refuses is refused with its own code, before any event.
    harness.fund_merchant("m2", 10_000).await;
    let (status, body) = harness.payout("payout-2", "m2", "400.00").await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "payout_above_available_balance"
        ),
        "{body}"
    );
    assert_eq!(harness.count(sql).await, 1);
    // An approved payout moves the money at once.
    let (status, body) = harness.payout("payout-3", "m2", "40.00").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(harness.merchant_available("m2").await, 6_000);
}

async fn a_payout_parked_for_review_is_paid_on_approval_and_refused_on_rejection(harness: Harness) {
    harness.fund_merchant("m1", 100_000).await;
    harness.list("watch", "merchant", "m1").await;
    let (status, held) = harness.payout("watched-1", "m1", "300.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    assert_eq!(
        (&held["action"], &held["kind"], &held["status"]),
        (&json!("review"), &json!("payout"), &json!("under_review"))
    );
    assert_eq!(held["reasons"], json!(["WATCH_LISTED"]));
    // Parked, nothing moved.
    assert_eq!(harness.merchant_available("m1").await, 100_000);
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 0);
    let (status, again) = harness.payout("watched-1", "m1", "300.00").await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &held));
    let case = held["case_id"].as_str().unwrap().to_string();
    harness.decide_case(&case, "approve").await;
    assert_eq!(harness.merchant_available("m1").await, 70_000);
    let id = held["id"].as_str().unwrap();
    let (status, done) = harness.get(&format!("/v1/held-operations/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["outcome"]["state"], "created");
    // The request again answers the payout, made once.
    let (status, paid) = harness.payout("watched-1", "m1", "300.00").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid, done["outcome"]);
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 1);

    let (status, held) = harness.payout("watched-2", "m1", "200.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let case = held["case_id"].as_str().unwrap().to_string();
    harness.decide_case(&case, "reject").await;
    let (status, refused) = harness.payout("watched-2", "m1", "200.00").await;
    assert_eq!(
        (status, code(&refused)),
        (StatusCode::CONFLICT, "risk_review_rejected"),
        "{refused}"
    );
    // The money is where it was.
    assert_eq!(harness.merchant_available("m1").await, 70_000);
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 1);
    // A parked payout whose balance was spent meanwhile ends refused with the payout's code.
    let (status, held) = harness.payout("watched-3", "m1", "600.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let (status, body) = harness.payout("other", "m1", "500.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    harness
        .decide_case(body["case_id"].as_str().unwrap(), "approve")
        .await;
    harness
        .decide_case(held["case_id"].as_str().unwrap(), "approve")
        .await;
    let (status, refused) = harness.payout("watched-3", "m1", "600.00").await;
    assert_eq!(
        (status, code(&refused)),
        (StatusCode::CONFLICT, "payout_above_available_balance"),
        "{refused}"
    );
    assert_eq!(harness.merchant_available("m1").await, 20_000);
}

/// Each item of a payout batch is a `payout` event: a watched merchant's item is parked for
/// review and left out of the batch (paid on its own once approved), the others make the
/// batch; a block-listed merchant's item refuses the whole batch, nothing moved or parked.
async fn a_payout_batch_is_decided_item_by_item(harness: Harness) {
    harness.fund_merchant("m1", 100_000).await;
    harness.fund_merchant("m2", 50_000).await;
    harness.list("watch", "merchant", "m2").await;
    let batch = |items: &[(&str, &str)]| {
        json!({"payouts": items
            .iter()
            .map(|(merchant, value)| json!({"merchant_id": merchant, "amount": cny(value)}))
            .collect::<Vec<_>>()})
    };
    let held_batch = batch(&[("m1", "100.00"), ("m2", "50.00")]);
    let (status, first) = harness
        .post("/v1/payouts/batches", "batch-1", held_batch.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let payouts = first["batch"]["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1, "{first}");
    assert_eq!(payouts[0]["merchant_id"], "m1");
    let held = first["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{first}");
    assert_eq!(held[0]["index"], 1);
    assert_eq!(
        (
            &held[0]["operation"]["kind"],
            &held[0]["operation"]["status"]
        ),
        (&json!("payout"), &json!("under_review"))
    );
    assert_eq!(harness.merchant_available("m1").await, 90_000);
    assert_eq!(harness.merchant_available("m2").await, 50_000);
    // The same request again: the same answer, nothing made twice.
    let (status, again) = harness
        .post("/v1/payouts/batches", "batch-1", held_batch)
        .await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &first));
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 1);
    // Approved, the held item is paid out on its own.
    let case = held[0]["operation"]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    harness.decide_case(&case, "approve").await;
    assert_eq!(harness.merchant_available("m2").await, 45_000);
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 2);

    // A block-listed merchant's item refuses the whole batch.
    harness.fund_merchant("merchant-1", 10_000).await;
    harness.list("block", "merchant", "merchant-1").await;
    let parked = "SELECT COUNT(*) FROM risk_held_operations";
    let parked_before = harness.count(parked).await;
    let (status, refused) = harness
        .post(
            "/v1/payouts/batches",
            "batch-2",
            batch(&[("m2", "10.00"), ("m1", "10.00"), ("merchant-1", "10.00")]),
        )
        .await;
    assert_eq!(
        (status, code(&refused)),
        (StatusCode::CONFLICT, "risk_rejected"),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("BLOCK_LISTED"),
        "{refused}"
    );
    assert_eq!(harness.count("SELECT COUNT(*) FROM payouts").await, 2);
    assert_eq!(harness.count(parked).await, parked_before);
    assert_eq!(harness.merchant_available("m1").await, 90_000);
    assert_eq!(harness.merchant_available("merchant-1").await, 10_000);
    // The payment service's refusals come first, before any event.
    let events = harness.count("SELECT COUNT(*) FROM risk_events").await;
    let (status, refused) = harness
        .post("/v1/payouts/batches", "batch-3", batch(&[("m1", "900.01")]))
        .await;
    assert_eq!(
        (status, code(&refused)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "payout_above_available_balance"
        ),
        "{refused}"
    );
    assert_eq!(
        harness.count("SELECT COUNT(*) FROM risk_events").await,
        events
    );
}

async fn a_withdrawal_after_a_phone_change_is_stepped_up(harness: Harness) {
    let (_, customer) = harness.customer_with_line("phone-1").await;
    let bank = harness.bank.clone().unwrap();
    let card = bank
        .register_card(
            "4242424242424242",
            "12/30",
            tally_core::Amount::parse("5000.00", tally_core::Currency::CNY).unwrap(),
        )
        .await
        .unwrap();
    let token = card.token.as_str().to_string();
    let (status, body) = harness
        .post(
            "/v1/payments/cards",
            "card",
            json!({"customer": customer, "card_token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let wallet = format!("/v1/payments/wallets/{customer}");
    let (status, body) = harness
        .post(
            &format!("{wallet}/top-ups"),
            "top-up",
            json!({"card_token": token, "amount": cny("2000.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let balance = |body: &Value| body["wallet"]["available"]["value"].clone();
    // A withdrawal from the customer's own device goes through.
    let withdrawal = |key: &'static str, value: &'static str, device: &'static str| {
        let harness = &harness;
        let uri = format!("{wallet}/withdrawals");
        let token = token.clone();
        async move {
            harness
                .post(
                    &uri,
                    key,
                    json!({"card_token": token, "amount": cny(value), "device": device}),
                )
                .await
        }
    };
    let (status, body) = withdrawal("own", "100.00", "phone-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, shown) = harness.get(&wallet).await;
    assert_eq!(balance(&shown), json!("1900.00"), "{shown}");
    // Two days on, a new device changes the phone (the thief has the code), then withdraws.
    harness.clock.advance(jiff::SignedDuration::from_hours(48));
    let (status, held) = harness
        .post(
            &format!("/v1/customers/{customer}/phone"),
            "phone-change",
            json!({"phone": "13700137000", "device": "thief-phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let id = held["id"].as_str().unwrap();
    let sent = harness.codes.last_for(id).unwrap();
    let (status, body) = harness
        .post(
            &format!("/v1/held-operations/{id}/code"),
            "unused",
            json!({"code": sent}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, held) = withdrawal("cash-out", "1500.00", "thief-phone").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    assert_eq!(
        (&held["action"], &held["kind"], &held["status"]),
        (
            &json!("step_up"),
            &json!("withdrawal"),
            &json!("waiting_for_code")
        )
    );
    assert_eq!(held["reasons"], json!(["SPEND_AFTER_CREDENTIAL_CHANGE"]));
    // Held, nothing moved.
    let (_, shown) = harness.get(&wallet).await;
    assert_eq!(balance(&shown), json!("1900.00"), "{shown}");
    let (status, again) = withdrawal("cash-out", "1500.00", "thief-phone").await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &held));
    // The code the customer received lets it through: the wallet operation is made.
    let id = held["id"].as_str().unwrap();
    let sent = harness.codes.last_for(id).unwrap();
    let (status, made) = harness
        .post(
            &format!("/v1/held-operations/{id}/code"),
            "unused",
            json!({"code": sent}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["kind"], "withdrawal");
    let (_, shown) = harness.get(&wallet).await;
    assert_eq!(balance(&shown), json!("400.00"), "{shown}");
    // The request again answers the withdrawal, made once.
    let (status, answered) = withdrawal("cash-out", "1500.00", "thief-phone").await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["id"], made["id"]);
    let sql = format!(
        "SELECT COUNT(*) FROM wallet_operations WHERE customer = '{customer}' AND kind = 'withdrawal'"
    );
    assert_eq!(harness.count(&sql).await, 2);
}
