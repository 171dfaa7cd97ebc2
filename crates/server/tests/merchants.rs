//! The merchant and settlement routes in process on SQLite and PostgreSQL: onboarding with
//! sealed fields shown masked, every refusal with its code (a duplicate id or licence, a fee
//! schedule or terms that do not parse — the message names the field —, a status move not
//! allowed, a checkout for an unknown, suspended or closed merchant or in another currency,
//! a settlement of a date not over or not a date, statements of a run that never ran), and
//! a day settled: the statement as JSON and CSV, fees and reserve as the terms say.
#![allow(clippy::unwrap_used)]

use axum::http::{header, StatusCode};
use jiff::Timestamp;
use serde_json::{json, Value};
use tally_store::testing::TestDatabase;

mod support;
use support::{bearer, code, privacy, request, send, Setup, TestApp};

struct Shop {
    app: TestApp,
    writer: String,
    reader: String,
    admin: String,
    token: String,
}

support::deref_to_app!(Shop);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

fn merchant(id: &str, licence: &str) -> Value {
    json!({
        "id": id,
        "legal_name": "Acme Trading Co.",
        "licence_number": licence,
        "bank_account": "6222021234567890",
        "category_code": "5411",
        "time_zone": "Asia/Shanghai",
        "currency": "CNY",
        "fee_schedule": {
            "rounding": "half_up",
            "fees": {"wallet": {"rate": "0.01", "minimum": "0.50"}}
        },
        "settlement": {"delay_days": 1, "reserve_basis_points": 500, "reserve_hold_days": 7}
    })
}

impl Shop {
    async fn new(test: TestDatabase) -> Self {
        // Friday 2026-05-01, 09:00 UTC (17:00 in Shanghai).
        let setup = Setup::default().privacy(privacy()).payments();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let reader = app.key("reader", &["payments:read"]).await;
        let admin = app.key("operator", &["admin"]).await;
        let bank = app.bank.clone().unwrap();
        let card = bank
            .register_card(
                "4242424242424242",
                "12/30",
                tally_core::Amount::parse("1000.00", tally_core::Currency::CNY).unwrap(),
            )
            .await
            .unwrap();
        let shop = Shop {
            app,
            writer,
            reader,
            admin,
            token: card.token.as_str().to_string(),
        };
        let (status, body) = shop
            .post(
                "/v1/payments/cards",
                Some("card-1"),
                json!({"customer": "c1", "card_token": shop.token}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = shop
            .post(
                "/v1/payments/wallets/c1/top-ups",
                Some("top-up-1"),
                json!({"card_token": shop.token, "amount": amount("500.00")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        shop
    }

    async fn post(&self, uri: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.writer, key, Some(body)).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &self.reader, None, None).await
    }

    async fn pay(&self, key: &str, merchant: &str, currency: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/payments",
            Some(key),
            json!({
                "merchant_id": merchant,
                "order_reference": key,
                "customer": "c1",
                "amount": {"value": "100.00", "currency": currency},
                "fundings": [{"kind": "wallet"}],
            }),
        )
        .await
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }

    async fn settle(&self, date: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/v1/settlement/runs",
            &self.admin,
            None,
            Some(json!({"business_date": date})),
        )
        .await
    }

    fn set_now(&self, at: &str) {
        let at: Timestamp = at.parse().unwrap();
        self.clock.set(at);
    }
}

/// A refusal: its status and code, and the message (which names the field).
fn refused(answer: &(StatusCode, Value), status: StatusCode, expected: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(code(&answer.1), expected, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_string()
}

async fn onboarding_masks_sealed_fields_and_refuses_duplicates(shop: Shop) {
    let (status, body) = shop
        .post(
            "/v1/merchants",
            None,
            merchant("shop-a", "91310000MA1FL4XQ3"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["legal_name"], format!("A{}", "*".repeat(15)));
    assert_eq!(body["licence_number"], format!("{}4XQ3", "*".repeat(13)));
    assert_eq!(body["bank_account"], "************7890");
    assert_eq!(body["history"][0]["reason"], "onboarded");
    // Nothing personal is stored in clear.
    let clear = shop
        .scalar(
            "SELECT COUNT(*) FROM merchants WHERE legal_name NOT LIKE 'v1:%' \
             OR bank_account NOT LIKE 'v1:%' OR licence_number NOT LIKE 'v1:%'",
        )
        .await;
    assert_eq!(clear, 0);
    let (status, read) = shop.get("/v1/merchants/shop-a").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, body);

    let again = shop
        .post("/v1/merchants", None, merchant("shop-a", "OTHER-1"))
        .await;
    refused(&again, StatusCode::CONFLICT, "merchant_exists");
    // The same licence written another way is the same business.
    let twin = shop
        .post(
            "/v1/merchants",
            None,
            merchant("shop-b", "91310000-ma1fl 4xq3"),
        )
        .await;
    refused(&twin, StatusCode::CONFLICT, "merchant_licence_taken");
    let missing = shop.get("/v1/merchants/nobody").await;
    refused(&missing, StatusCode::NOT_FOUND, "merchant_not_found");
}

async fn fee_schedules_and_terms_that_do_not_parse_name_their_field(shop: Shop) {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"fee_schedule": {"fees": {"card": {"rate": "abc"}}}}),
            "fee_schedule.fees.card.rate",
        ),
        (
            json!({"fee_schedule": {"fees": {"card": {"rate": "1.5"}}}}),
            "fee_schedule.fees.card.rate",
        ),
        (
            json!({"fee_schedule": {"fees": {"credit_line_5": {"rate": "0.01"}}}}),
            "fee_schedule.fees.credit_line_5",
        ),
        (
            json!({"fee_schedule": {"fees": {"wallet": {"rate": "0.01", "minimum": "2.00", "maximum": "1.00"}}}}),
            "fee_schedule.fees.wallet.maximum",
        ),
        (
            json!({"fee_schedule": {"fees": {"vault": {"rate": "0.01", "fixed": "0.001"}}}}),
            "fee_schedule.fees.vault.fixed",
        ),
        (
            json!({"fee_schedule": {"rounding": "nearest"}}),
            "fee_schedule.rounding",
        ),
        (
            json!({"settlement": {"delay_days": 1, "holidays": ["2026-02-30"]}}),
            "settlement.holidays[0]",
        ),
        (
            json!({"settlement": {"delay_days": 31}}),
            "settlement.delay_days",
        ),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"category_code": "54"}), "category_code"),
        (json!({"currency": "XXY"}), "currency"),
        (json!({"id": "shop one"}), "id"),
    ];
    for (index, (change, field)) in cases.into_iter().enumerate() {
        let mut body = merchant(&format!("shop-{index}"), &format!("LIC-{index}"));
        for (name, value) in change.as_object().unwrap() {
            body[name] = value.clone();
        }
        let answer = shop.post("/v1/merchants", None, body).await;
        let message = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_merchant_field",
        );
        assert!(
            message.starts_with(&format!("{field}:")),
            "{field}: {message}"
        );
    }
    assert_eq!(
        shop.scalar("SELECT COUNT(*) FROM merchants").await,
        3,
        "only the harness's merchants"
    );

    // Replacing the schedule: the same checks, and nothing changes on a refusal.
    let (status, _) = shop
        .post("/v1/merchants", None, merchant("shop-a", "LIC-A"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let put = |body: Value| {
        shop.call(
            "PUT",
            "/v1/merchants/shop-a/fee-schedule",
            &shop.writer,
            None,
            Some(body),
        )
    };
    let answer =
        put(json!({"fee_schedule": {"fees": {"card": {"rate": "0.02", "maximum": "x"}}}})).await;
    let message = refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_merchant_field",
    );
    assert!(
        message.starts_with("fee_schedule.fees.card.maximum:"),
        "{message}"
    );
    let (_, before) = shop.get("/v1/merchants/shop-a").await;
    assert_eq!(before["fees"]["fees"]["wallet"]["rate"], "0.01");
    let (status, after) = put(json!({"fee_schedule": {"rounding": "down", "fees": {"card": {"rate": "0.006", "fixed": "0.30"}}}})).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["fees"]["rounding"], "down");
    assert_eq!(after["fees"]["fees"]["card"]["rate"], "0.006");
    assert!(after["fees"]["fees"]["wallet"].is_null());
    assert_eq!(after["settlement"]["reserve_basis_points"], 500);
    let unknown = shop
        .call(
            "PUT",
            "/v1/merchants/nobody/fee-schedule",
            &shop.writer,
            None,
            Some(json!({"fee_schedule": {}})),
        )
        .await;
    refused(&unknown, StatusCode::NOT_FOUND, "merchant_not_found");
}

async fn checkout_refuses_merchants_that_cannot_be_paid(shop: Shop) {
    let (status, _) = shop
        .post("/v1/merchants", None, merchant("shop-a", "LIC-A"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let entries = shop.entries().await;
    let payments = shop.scalar("SELECT COUNT(*) FROM payments").await;
    refused(
        &shop.pay("p-unknown", "nobody", "CNY").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_unknown",
    );
    refused(
        &shop.pay("p-usd", "shop-a", "USD").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_currency_mismatch",
    );
    let status_change = |status: &str| {
        shop.post(
            "/v1/merchants/shop-a/status",
            None,
            json!({"status": status, "reason": "compliance review"}),
        )
    };
    let (status, suspended) = status_change("suspended").await;
    assert_eq!(status, StatusCode::OK, "{suspended}");
    assert_eq!(suspended["history"][1]["status"], "suspended");
    let message = refused(
        &shop.pay("p-suspended", "shop-a", "CNY").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_not_active",
    );
    assert!(message.contains("suspended"), "{message}");
    refused(
        &status_change("suspended").await,
        StatusCode::CONFLICT,
        "merchant_status_conflict",
    );
    let blank = shop
        .post(
            "/v1/merchants/shop-a/status",
            None,
            json!({"status": "active", "reason": " "}),
        )
        .await;
    let message = refused(
        &blank,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_merchant_field",
    );
    assert!(message.starts_with("reason:"), "{message}");
    assert_eq!(shop.entries().await, entries);
    assert_eq!(shop.scalar("SELECT COUNT(*) FROM payments").await, payments);

    let (status, _) = status_change("active").await;
    assert_eq!(status, StatusCode::OK);
    let (status, paid) = shop.pay("p-ok", "shop-a", "CNY").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let (status, _) = status_change("closed").await;
    assert_eq!(status, StatusCode::OK);
    refused(
        &shop.pay("p-closed", "shop-a", "CNY").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_not_active",
    );
    refused(
        &status_change("active").await,
        StatusCode::CONFLICT,
        "merchant_status_conflict",
    );
    let (_, read) = shop.get("/v1/merchants/shop-a").await;
    let statuses: Vec<&str> = read["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "suspended", "active", "closed"]);
}

async fn a_day_is_settled_with_its_fees_and_reserve(shop: Shop) {
    let (status, _) = shop
        .post("/v1/merchants", None, merchant("shop-a", "LIC-A"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, created) = shop.pay("p-1", "shop-a", "CNY").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, paid) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("p-1:confirm"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "captured");

    // Friday is not over yet; a date that does not exist is refused; no run yet.
    let early = shop.settle("2026-05-01").await;
    let message = refused(
        &early,
        StatusCode::UNPROCESSABLE_ENTITY,
        "settlement_date_not_closed",
    );
    assert!(message.contains("2026-05-01"), "{message}");
    let (status, body) = shop.settle("2026-02-30").await;
    assert!(status.is_client_error(), "{body}");
    assert!(!code(&body).is_empty());
    refused(
        &shop.get("/v1/settlement/runs/2026-05-04/statements").await,
        StatusCode::NOT_FOUND,
        "settlement_run_not_found",
    );
    refused(
        &shop.get("/v1/settlement/runs/someday/statements").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_business_date",
    );
    let reader_run = shop
        .call(
            "POST",
            "/v1/settlement/runs",
            &shop.writer,
            None,
            Some(json!({"business_date": "2026-05-01"})),
        )
        .await;
    assert_eq!(reader_run.0, StatusCode::FORBIDDEN);

    // Friday's capture settles T+1 on Monday 2026-05-04; the run waits for Monday to end.
    shop.set_now("2026-05-05T01:00:00Z");
    let (status, run) = shop.settle("2026-05-04").await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "done");
    let (status, again) = shop.settle("2026-05-04").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, run);
    let (status, body) = shop
        .get("/v1/settlement/runs/2026-05-04/statements?merchant_id=shop-a")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statement = &body["statements"][0];
    // 100.00 at 1 % (1.00, above the 0.50 minimum); 5 % of 99.00 held for 7 days.
    assert_eq!(statement["gross"], amount("100.00"));
    assert_eq!(statement["fees"], amount("1.00"));
    assert_eq!(statement["refunds"], amount("0.00"));
    assert_eq!(statement["reserve_held"], amount("4.95"));
    assert_eq!(statement["net"], amount("94.05"));
    assert_eq!(statement["balances"]["available"], amount("94.05"));
    assert_eq!(statement["balances"]["pending"], amount("0.00"));
    assert_eq!(statement["balances"]["reserve"], amount("4.95"));
    assert_eq!(statement["carried"], false);
    // The capture dates settled: every one through Friday's.
    assert_eq!(statement["through_date"], "2026-05-01");

    let (status, csv) = shop
        .get("/v1/settlement/runs/2026-05-04/statements.csv?merchant_id=shop-a")
        .await;
    assert_eq!(status, StatusCode::OK);
    let expected = "business_date,merchant_id,currency,from_date,through_date,gross,fees,refunds,reserve_held,reserve_released,net,pending,available,reserve,carried,disputes,disputes_through_pending\n\
                    2026-05-04,shop-a,CNY,,2026-05-01,100.00,1.00,0.00,4.95,0.00,94.05,0.00,94.05,4.95,false,0.00,0.00\n";
    assert_eq!(csv, Value::String(expected.into()));
    let answer = send(&shop.router, {
        let mut by_accept = request(
            "GET",
            "/v1/settlement/runs/2026-05-04/statements?merchant_id=shop-a",
            Some(&bearer(&shop.reader)),
            None,
            None,
        );
        by_accept
            .headers_mut()
            .insert(header::ACCEPT, "text/csv".parse().unwrap());
        by_accept
    })
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert_eq!(String::from_utf8(answer.body).unwrap(), expected);
    refused(
        &shop
            .get("/v1/settlement/runs/2026-05-04/statements?merchant_id=nobody")
            .await,
        StatusCode::NOT_FOUND,
        "merchant_not_found",
    );

    // A refund larger than what is pending leaves a negative balance, carried and shown.
    let (status, refunded) = shop
        .post(
            &format!("/v1/payments/{id}/refunds"),
            Some("p-1:refund"),
            json!({"amount": amount("100.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    shop.set_now("2026-05-07T01:00:00Z");
    let (status, _) = shop.settle("2026-05-06").await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = shop
        .get("/v1/settlement/runs/2026-05-06/statements?merchant_id=shop-a")
        .await;
    let statement = &body["statements"][0];
    assert_eq!(statement["refunds"], amount("100.00"));
    assert_eq!(statement["net"], amount("-100.00"));
    assert_eq!(statement["balances"]["available"], amount("-5.95"));
    assert_eq!(statement["carried"], true);
    for totals in shop.database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
    }
}

tally_store::on_both_backends!(
    setup = Shop::new;
    onboarding_masks_sealed_fields_and_refuses_duplicates,
    fee_schedules_and_terms_that_do_not_parse_name_their_field,
    checkout_refuses_merchants_that_cannot_be_paid,
    a_day_is_settled_with_its_fees_and_reserve,
);
