//! The payment routes in process on SQLite and PostgreSQL, with a bank simulator behind
//! the channel: a combined payment from top-up to refund, and every refusal answered with
//! its code while no balance moves (sources not summing to the order, an unknown wallet, a
//! foreign card, a card number for a token, too little in the wallet, a declined card, an
//! expired payment, a capture above the authorised amount, a refund above what was paid,
//! a reused or missing idempotency key, a key without the scope).
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use jiff::SignedDuration;
use serde_json::{json, Value};
use tally_channel::simulator::{FaultsUpdate, PartsPerMillion};
use tally_core::Clock;
use tally_store::testing::TestDatabase;

mod support;
use support::{code, Setup, TestApp};

struct Shop {
    app: TestApp,
    writer: String,
    reader: String,
    token: String,
}

support::deref_to_app!(Shop);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

impl Shop {
    async fn new(test: TestDatabase) -> Self {
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", Setup::default().payments()).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let reader = app.key("reader", &["payments:read"]).await;
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
            token: card.token.as_str().to_string(),
        };
        let (status, body) = shop
            .post(
                "/v1/payments/cards",
                None,
                json!({"customer": "c1", "card_token": shop.token}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        shop
    }

    async fn post(&self, uri: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.writer, key, Some(body)).await
    }

    async fn get(&self, uri: &str) -> Value {
        let (status, body) = self.call("GET", uri, &self.reader, None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn top_up(&self, customer: &str, value: &str, key: &str) {
        let (status, body) = self
            .post(
                &format!("/v1/payments/wallets/{customer}/top-ups"),
                Some(key),
                json!({"card_token": self.token, "amount": amount(value)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The wallet's balance and held amount, as major-unit strings.
    async fn wallet(&self, customer: &str) -> (String, String) {
        let body = self.get(&format!("/v1/payments/wallets/{customer}")).await;
        (
            body["wallet"]["balance"]["value"]
                .as_str()
                .unwrap()
                .to_string(),
            body["wallet"]["held"]["value"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    /// The card's available balance at the bank.
    async fn card_available(&self) -> String {
        let token = tally_channel::CardToken::new(self.token.clone()).unwrap();
        self.bank
            .as_ref()
            .unwrap()
            .card(&token)
            .await
            .unwrap()
            .available
    }

    fn order(&self, customer: &str, total: &str, fundings: Value) -> Value {
        json!({
            "merchant_id": "m1",
            "order_reference": "o1",
            "customer": customer,
            "amount": amount(total),
            "fundings": fundings,
        })
    }

    async fn create(&self, key: &str, order: Value) -> String {
        let (status, body) = self.post("/v1/payments", Some(key), order).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Journal entries: a refusal posts none.
    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }
}

async fn a_combined_payment_from_top_up_to_refund(shop: Shop) {
    shop.top_up("c1", "300.00", "top-up-1").await;
    assert_eq!(shop.wallet("c1").await, ("300.00".into(), "0.00".into()));
    assert_eq!(shop.card_available().await, "700.00");
    let fundings = json!([
        {"kind": "wallet", "amount": amount("100.00")},
        {"kind": "card", "card_token": shop.token},
    ]);
    let id = shop
        .create("order-1", shop.order("c1", "120.00", fundings))
        .await;
    let (status, paid) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("confirm-1"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "captured");
    assert_eq!(paid["legs"][0]["captured"]["value"], "100.00");
    assert_eq!(paid["legs"][1]["captured"]["value"], "20.00");
    assert_eq!(shop.card_available().await, "680.00");
    // The same confirm again answers the same.
    let (_, again) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("confirm-1"),
            json!({}),
        )
        .await;
    assert_eq!(again, paid);
    let (status, refunded) = shop
        .post(
            &format!("/v1/payments/{id}/refunds"),
            Some("refund-1"),
            json!({"amount": amount("50.00"), "policy": "card_last"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "partially_refunded");
    assert_eq!(refunded["refunds"][0]["parts"][0]["value"], "50.00");
    assert_eq!(shop.wallet("c1").await, ("250.00".into(), "0.00".into()));
    let read = shop.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(read["status"], "partially_refunded");
    let cards = shop.get("/v1/payments/cards?customer=c1").await;
    assert_eq!(cards["cards"][0]["last_four"], "4242");
}

async fn every_refusal_has_its_code_and_changes_nothing(shop: Shop) {
    shop.top_up("c1", "100.00", "top-up-1").await;
    let before = (
        shop.entries().await,
        shop.wallet("c1").await,
        shop.card_available().await,
    );
    let unchanged = |label: &'static str| {
        let shop = &shop;
        let before = before.clone();
        async move {
            let now = (
                shop.entries().await,
                shop.wallet("c1").await,
                shop.card_available().await,
            );
            assert_eq!(now, before, "{label} changed something");
        }
    };

    // Sources that do not sum to the order.
    let short = shop.order(
        "c1",
        "120.00",
        json!([{"kind": "wallet", "amount": amount("100.00")}]),
    );
    let (status, body) = shop.post("/v1/payments", Some("k-short"), short).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "fundings_do_not_sum")
    );
    // A customer without a wallet; a card saved by someone else; a card number as a token.
    let no_wallet = shop.order("c2", "10.00", json!([{"kind": "wallet"}]));
    let (status, body) = shop
        .post("/v1/payments", Some("k-no-wallet"), no_wallet)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "balance_not_found")
    );
    let foreign = shop.order(
        "c2",
        "10.00",
        json!([{"kind": "card", "card_token": shop.token}]),
    );
    let (status, body) = shop.post("/v1/payments", Some("k-foreign"), foreign).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "funding_foreign_source")
    );
    let (status, body) = shop
        .post(
            "/v1/payments/cards",
            None,
            json!({"customer": "c1", "card_token": "4242424242424242"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_card_token")
    );
    unchanged("refusals at creation").await;

    // Too little in the wallet: the card part was authorised first, and is released.
    let fundings = json!([
        {"kind": "card", "card_token": shop.token, "amount": amount("10.00")},
        {"kind": "wallet"},
    ]);
    let id = shop
        .create("k-big", shop.order("c1", "150.00", fundings))
        .await;
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("k-big-confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYMENT_REQUIRED, "insufficient_balance")
    );
    assert_eq!(body["payment"]["status"], "failed");
    assert_eq!(body["payment"]["legs"][0]["status"], "released");
    unchanged("a wallet holding too little").await;

    // A card the bank declines: the wallet part is released.
    shop.bank
        .as_ref()
        .unwrap()
        .set_faults(&FaultsUpdate {
            decline_rate_ppm: Some(PartsPerMillion::ALWAYS),
            ..FaultsUpdate::default()
        })
        .await
        .unwrap();
    let fundings = json!([
        {"kind": "wallet", "amount": amount("50.00")},
        {"kind": "card", "card_token": shop.token},
    ]);
    let id = shop
        .create("k-declined", shop.order("c1", "80.00", fundings))
        .await;
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("k-declined-confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYMENT_REQUIRED, "card_declined")
    );
    assert_eq!(body["payment"]["legs"][0]["status"], "released");
    unchanged("a declined card").await;
    shop.bank
        .as_ref()
        .unwrap()
        .set_faults(&FaultsUpdate {
            decline_rate_ppm: Some(PartsPerMillion::NEVER),
            ..FaultsUpdate::default()
        })
        .await
        .unwrap();

    // An expired payment.
    let mut order = shop.order("c1", "10.00", json!([{"kind": "wallet"}]));
    order["expires_at"] = json!((shop.clock.now() + SignedDuration::from_mins(1)).to_string());
    let id = shop.create("k-expiring", order).await;
    shop.clock.advance(SignedDuration::from_mins(2));
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("k-expiring-confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "payment_expired")
    );
    unchanged("an expired payment").await;

    // A capture above the authorised amount, and a refund above what was paid.
    let mut order = shop.order("c1", "40.00", json!([{"kind": "wallet"}]));
    order["capture_method"] = json!("manual");
    let id = shop.create("k-manual", order).await;
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some("k-manual-confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("authorized"))
    );
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/capture"),
            Some("k-too-much"),
            json!({"amount": amount("40.01")}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "capture_exceeds_authorized"
        )
    );
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/capture"),
            Some("k-capture"),
            json!({"amount": amount("30.00")}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("partially_captured"))
    );
    let (status, body) = shop
        .post(
            &format!("/v1/payments/{id}/refunds"),
            Some("k-refund-too-much"),
            json!({"amount": amount("30.01")}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "refund_exceeds_paid")
    );
    assert_eq!(shop.wallet("c1").await, ("70.00".into(), "0.00".into()));

    // Keys: reused for another request, missing, from a key without the scope; scoped per
    // API key (another key's same idempotency key is another request).
    let order = shop.order("c1", "5.00", json!([{"kind": "wallet"}]));
    // A key names one request, whatever the route.
    let (status, body) = shop
        .post("/v1/payments", Some("k-capture"), order.clone())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    let (status, body) = shop
        .post("/v1/payments", Some("k-small"), order.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut other = order.clone();
    other["order_reference"] = json!("o2");
    let (status, body) = shop.post("/v1/payments", Some("k-small"), other).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    let (status, body) = shop.post("/v1/payments", None, order.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "idempotency_key_required")
    );
    let (status, _) = shop
        .call(
            "POST",
            "/v1/payments",
            &shop.reader,
            Some("k-reader"),
            Some(order.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let second = shop.key("second-shop", &["payments:write"]).await;
    let (status, body) = shop
        .call(
            "POST",
            "/v1/payments",
            &second,
            Some("k-small"),
            Some(order),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another API key's same key is its own: {body}"
    );
    let (status, body) = shop
        .post(
            "/v1/payments/pay_missing/confirm",
            Some("k-missing"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "payment_not_found")
    );
}

tally_store::on_both_backends!(
    setup = Shop::new;
    a_combined_payment_from_top_up_to_refund,
    every_refusal_has_its_code_and_changes_nothing,
);
