//! `POST /v1/entries/batch` on SQLite and PostgreSQL: entries applied in order, each under its
//! own idempotency key and refused on its own with the code `POST /v1/entries` would give;
//! a replayed batch answers the same and moves nothing; keys are shared with single posts;
//! a malformed batch (empty, too large, a key repeated, a key Tally keeps, a body over the
//! limit) applies nothing; a key limited to namespaces is refused per entry.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::{json, Value};
use tally_core::Clock;
use tally_server::state::Limits;
use tally_store::testing::TestDatabase;

mod support;
use support::{code, Setup, TestApp};

struct Harness {
    app: TestApp,
    writer_key: String,
    bank: String,
    wallet: String,
    shop: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let limits = Limits {
            body_limit_bytes: 4096,
            batch_body_limit_bytes: 512 * 1024,
            page_size_max: 1000,
        };
        let app = TestApp::start(
            test,
            "2026-05-01T00:00:00Z",
            Setup::default().limits(limits),
        )
        .await;
        let writer_key = app.key("writer", &["ledger:read", "ledger:write"]).await;
        let mut harness = Self {
            app,
            writer_key,
            bank: String::new(),
            wallet: String::new(),
            shop: String::new(),
        };
        harness.bank = harness.open("bank", "asset", json!({})).await;
        // The wallet may not go below zero: a transfer out of it needs what came in before.
        harness.wallet = harness
            .open(
                "wallet",
                "liability",
                json!({"debits_must_not_exceed_credits": true}),
            )
            .await;
        harness.shop = harness.open("shop", "liability", json!({})).await;
        harness
    }

    async fn open(&self, code: &str, kind: &str, flags: Value) -> String {
        let body = json!({"code": code, "kind": kind, "currency": "CNY", "flags": flags});
        let (status, account) = self
            .call(
                "POST",
                "/v1/accounts",
                &self.writer_key,
                Some(&format!("open-{code}")),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        account["id"].as_str().unwrap().to_string()
    }

    async fn batch(&self, key: &str, entries: Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/v1/entries/batch",
            key,
            None,
            Some(json!({ "entries": entries })),
        )
        .await
    }

    /// The credits less the debits posted to `account`, in minor units.
    async fn credit_balance(&self, account: &str) -> i64 {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/accounts/{account}"),
                &self.writer_key,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let minor = |field: &str| -> i64 {
            body["balance"][field]
                .as_str()
                .unwrap()
                .replace('.', "")
                .parse()
                .unwrap()
        };
        minor("credits_posted") - minor("debits_posted")
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }
}

/// A batch item moving `amount` CNY from `from` (debited) to `to` (credited).
fn transfer(key: &str, from: &str, to: &str, amount: &str) -> Value {
    json!({"idempotency_key": key, "entry": {"legs": [
        {"account_id": from, "side": "debit", "amount": amount, "currency": "CNY"},
        {"account_id": to, "side": "credit", "amount": amount, "currency": "CNY"},
    ], "description": key}})
}

fn codes(body: &Value) -> Vec<(String, u64)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            let code = match result["status"].as_str().unwrap() {
                "applied" => "applied".to_string(),
                _ => result["error"]["code"].as_str().unwrap().to_string(),
            };
            (code, result["http_status"].as_u64().unwrap())
        })
        .collect()
}

async fn entries_apply_in_order_each_on_its_own(harness: Harness) {
    let (bank, wallet, shop) = (&harness.bank, &harness.wallet, &harness.shop);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let entries = json!([
        transfer("fund", bank, wallet, "100.00"),
        // Spends what the entry before brought.
        transfer("spend-1", wallet, shop, "60.00"),
        // More than is left in the wallet.
        transfer("spend-2", wallet, shop, "60.00"),
        transfer("to-nowhere", bank, unknown, "1.00"),
        {"idempotency_key": "unbalanced", "entry": {"legs": [
            {"account_id": bank, "side": "debit", "amount": "5.00", "currency": "CNY"},
            {"account_id": shop, "side": "credit", "amount": "4.00", "currency": "CNY"},
        ]}},
        {"idempotency_key": "bad-amount", "entry": {"legs": [
            {"account_id": bank, "side": "debit", "amount": "5.001", "currency": "CNY"},
            {"account_id": shop, "side": "credit", "amount": "5.001", "currency": "CNY"},
        ]}},
        // What is left: the refusals before it took nothing.
        transfer("spend-3", wallet, shop, "40.00"),
    ]);
    let (status, first) = harness.batch(&harness.writer_key, entries.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        codes(&first),
        vec![
            ("applied".to_string(), 201),
            ("applied".to_string(), 201),
            ("exceeds_credits".to_string(), 422),
            ("account_not_found".to_string(), 404),
            ("entry_unbalanced".to_string(), 422),
            ("invalid_amount".to_string(), 422),
            ("applied".to_string(), 201),
        ],
        "{first}"
    );
    assert_eq!(
        (first["applied"].as_u64(), first["refused"].as_u64()),
        (Some(3), Some(4))
    );
    let keys: Vec<&str> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "fund",
            "spend-1",
            "spend-2",
            "to-nowhere",
            "unbalanced",
            "bad-amount",
            "spend-3"
        ]
    );
    assert_eq!(first["results"][1]["entry"]["description"], "spend-1");
    assert_eq!(harness.credit_balance(wallet).await, 0);
    assert_eq!(harness.credit_balance(shop).await, 10_000);
    assert_eq!(harness.entries().await, 3);

    // The same batch again answers the same and moves nothing.
    let (status, again) = harness.batch(&harness.writer_key, entries).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(harness.credit_balance(shop).await, 10_000);
    assert_eq!(harness.entries().await, 3);

    // Batch items and single posts share one key space.
    let (status, single) = harness
        .call(
            "POST",
            "/v1/entries",
            &harness.writer_key,
            Some("spend-1"),
            Some(transfer("spend-1", wallet, shop, "60.00")["entry"].clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{single}");
    assert_eq!(single["id"], first["results"][1]["entry"]["id"]);
    assert_eq!(harness.entries().await, 3);
}

async fn a_key_used_for_another_entry_is_refused_in_its_place(harness: Harness) {
    let (bank, wallet) = (&harness.bank, &harness.wallet);
    let (status, body) = harness
        .batch(
            &harness.writer_key,
            json!([transfer("k1", bank, wallet, "1.00")]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = harness
        .batch(
            &harness.writer_key,
            json!([
                transfer("k2", bank, wallet, "2.00"),
                transfer("k1", bank, wallet, "9.00"),
                transfer("k3", bank, wallet, "3.00"),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        codes(&body),
        vec![
            ("applied".to_string(), 201),
            ("idempotency_key_reused".to_string(), 409),
            ("applied".to_string(), 201),
        ]
    );
    assert_eq!(harness.credit_balance(wallet).await, 600);
}

async fn a_malformed_batch_applies_nothing(harness: Harness) {
    let (bank, wallet) = (&harness.bank, &harness.wallet);
    let refusals: Vec<(Value, StatusCode, &str)> = vec![
        (json!([]), StatusCode::UNPROCESSABLE_ENTITY, "batch_empty"),
        (
            Value::Array(
                (0..1001)
                    .map(|index| transfer(&format!("m{index}"), bank, wallet, "0.01"))
                    .collect(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_too_large",
        ),
        (
            json!([
                transfer("same", bank, wallet, "1.00"),
                transfer("other", bank, wallet, "1.00"),
                transfer("same", bank, wallet, "2.00"),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_idempotency_key_repeated",
        ),
        (
            json!([
                transfer("fine", bank, wallet, "1.00"),
                transfer("credit:mine", bank, wallet, "1.00"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
        (
            json!([transfer("", bank, wallet, "1.00")]),
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
    ];
    for (entries, status, expected) in refusals {
        let (answered, body) = harness.batch(&harness.writer_key, entries).await;
        assert_eq!((answered, code(&body)), (status, expected), "{body}");
    }
    // A body above the batch limit (512 KiB here).
    let padding = "p".repeat(1000);
    let large: Vec<Value> = (0..600)
        .map(|index| {
            let mut item = transfer(&format!("l{index}"), bank, wallet, "0.01");
            item["entry"]["description"] = json!(padding);
            item
        })
        .collect();
    let (status, body) = harness
        .batch(&harness.writer_key, Value::Array(large))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    // A key without `ledger:write`.
    let reader = harness.key("reader", &["ledger:read"]).await;
    let (status, body) = harness
        .batch(&reader, json!([transfer("r", bank, wallet, "1.00")]))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(harness.entries().await, 0);
    // Other routes keep their own, smaller limit.
    let (status, body) = harness
        .call(
            "POST",
            "/v1/entries",
            &harness.writer_key,
            Some("big-single"),
            Some(json!({"legs": [], "description": "p".repeat(5000)})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
}

async fn a_limited_key_is_refused_entry_by_entry(harness: Harness) {
    let inside = harness.open("merchant-a-till", "asset", json!({})).await;
    let inside_too = harness
        .open("merchant-a-payable", "liability", json!({}))
        .await;
    let limited = harness
        .database
        .create_api_key_in_namespaces(
            "merchant-a",
            &["ledger:write".to_string()],
            &["merchant-a-".to_string()],
            None,
            harness.clock.now(),
        )
        .await
        .unwrap();
    let key = limited.secret.expose().clone();
    let (status, body) = harness
        .batch(
            &key,
            json!([
                transfer("inside", &inside, &inside_too, "1.00"),
                transfer("outside", &harness.bank, &inside_too, "1.00"),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        codes(&body),
        vec![
            ("applied".to_string(), 201),
            ("account_outside_key_namespace".to_string(), 403),
        ]
    );
}

tally_store::on_both_backends!(
    setup = Harness::new;
    entries_apply_in_order_each_on_its_own,
    a_key_used_for_another_entry_is_refused_in_its_place,
    a_malformed_batch_applies_nothing,
    a_limited_key_is_refused_entry_by_entry,
);
