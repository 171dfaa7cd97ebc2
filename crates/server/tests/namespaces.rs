//! API keys limited to account-code namespaces, on SQLite and PostgreSQL: such a key opens,
//! moves and reads only ledger accounts whose codes start with one of its prefixes (compared
//! without letter case or compatibility forms), and every other request is refused `403
//! account_outside_key_namespace`, naming the account and the namespaces, leaving nothing
//! behind; a retry under another key's idempotency key is refused too, not answered from
//! the stored outcome; rotation keeps the namespaces; keys without namespaces are unchanged.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::{json, Value};
use tally_core::Clock;
use tally_server::state::Limits;
use tally_store::testing::TestDatabase;
use tally_store::KeyLifecycleError;

mod support;
use support::{Setup, TestApp};

struct Harness {
    app: TestApp,
    /// Not limited by code: opens the accounts outside the namespace.
    admin: String,
    /// `ledger:read` and `ledger:write`, limited to `merchant-a-`.
    merchant: String,
    merchant_id: String,
}

support::deref_to_app!(Harness);

const NAMESPACE: &str = "merchant-a-";

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let limits = Limits {
            body_limit_bytes: 4096,
            batch_body_limit_bytes: 64 * 1024,
            page_size_max: 1000,
        };
        let setup = Setup::default().limits(limits);
        let app = TestApp::start(test, "2026-05-01T00:00:00Z", setup).await;
        let admin = app.key("admin", &["admin"]).await;
        let merchant = app
            .database
            .create_api_key_in_namespaces(
                "merchant-a",
                &["ledger:read".to_string(), "ledger:write".to_string()],
                &[NAMESPACE.to_string()],
                None,
                app.clock.now(),
            )
            .await
            .unwrap();
        Self {
            app,
            admin,
            merchant: merchant.secret.expose().clone(),
            merchant_id: merchant.key.id,
        }
    }

    async fn post(
        &self,
        uri: &str,
        key: &str,
        idempotency: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call("POST", uri, key, Some(idempotency), Some(body))
            .await
    }

    async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.call("GET", uri, key, None, None).await
    }

    /// Opens an account with `key`, which must succeed; its id.
    async fn open(&self, key: &str, code: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/accounts",
                key,
                &format!("open-{}", code.escape_unicode()),
                json!({"code": code, "kind": "asset", "currency": "CNY"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{code}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Rows a refused write must not add: accounts, entries, legs, holds and stored
    /// outcomes.
    async fn row_counts(&self) -> (i64, i64, i64, i64, i64) {
        let sql =
            "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM journal_entries), \
                   (SELECT COUNT(*) FROM journal_legs), (SELECT COUNT(*) FROM holds), \
                   (SELECT COUNT(*) FROM idempotency_keys)";
        tally_store::with_pool!(&self.database, |pool| sqlx::query_as(sql)
            .fetch_one(pool)
            .await
            .unwrap())
    }
}

fn transfer(from: &str, to: &str, amount: &str) -> Value {
    json!({
        "legs": [
            {"account_id": from, "side": "debit", "amount": amount, "currency": "CNY"},
            {"account_id": to, "side": "credit", "amount": amount, "currency": "CNY"},
        ],
    })
}

fn hold(from: &str, to: &str) -> Value {
    json!({
        "debit_account_id": from, "credit_account_id": to, "amount": "5.00", "currency": "CNY",
        "expires_at": "2026-05-02T00:00:00Z",
    })
}

/// A refusal for an account outside the namespace, naming it and the namespace.
fn assert_outside(status: StatusCode, body: &Value, account: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"]["code"], "account_outside_key_namespace",
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(account), "{message} names {account}");
    assert!(message.contains(&format!("{NAMESPACE:?}")), "{message}");
}

tally_store::on_both_backends!(
    setup = Harness::new;
    a_limited_key_opens_accounts_only_in_its_namespaces,
    a_limited_key_moves_only_accounts_in_its_namespaces,
    a_limited_key_reads_only_accounts_in_its_namespaces,
    a_limited_key_gets_no_stored_outcome_of_another_keys_request,
    rotation_keeps_the_namespaces_and_blank_ones_are_refused,
);

async fn a_limited_key_opens_accounts_only_in_its_namespaces(harness: Harness) {
    harness.open(&harness.merchant, "merchant-a-wallet").await;
    // Compared as the ledger compares codes: letter case and compatibility forms folded.
    harness.open(&harness.merchant, "MERCHANT-A-Cash").await;
    harness
        .open(&harness.merchant, "ｍｅｒｃｈａｎｔ-ａ-fees")
        .await;
    let before = harness.row_counts().await;
    for code in ["merchant-b-wallet", "merchant-a", "bank", " merchant-a-x"] {
        let (status, body) = harness
            .post(
                "/v1/accounts",
                &harness.merchant,
                &format!("refused-{}", code.escape_unicode()),
                json!({"code": code, "kind": "asset", "currency": "CNY"}),
            )
            .await;
        assert_outside(status, &body, &format!("{code:?}"));
    }
    assert_eq!(harness.row_counts().await, before);
    // A key without namespaces opens any code, as before.
    harness.open(&harness.admin, "merchant-b-wallet").await;
}

async fn a_limited_key_moves_only_accounts_in_its_namespaces(harness: Harness) {
    let wallet = harness.open(&harness.merchant, "merchant-a-wallet").await;
    let cash = harness.open(&harness.merchant, "merchant-a-cash").await;
    let bank = harness.open(&harness.admin, "bank").await;
    let other = harness.open(&harness.admin, "merchant-b-wallet").await;
    // Inside: entries and holds, posted and voided.
    let (status, body) = harness
        .post(
            "/v1/entries",
            &harness.merchant,
            "in-1",
            transfer(&cash, &wallet, "10.00"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, inside) = harness
        .post("/v1/holds", &harness.merchant, "in-2", hold(&wallet, &cash))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inside}");
    let inside = inside["id"].as_str().unwrap().to_string();
    let (status, body) = harness
        .post(
            &format!("/v1/holds/{inside}/post"),
            &harness.merchant,
            "in-3",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, voidable) = harness
        .post("/v1/holds", &harness.merchant, "in-4", hold(&wallet, &cash))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{voidable}");
    let voidable = voidable["id"].as_str().unwrap().to_string();
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/holds/{voidable}/void"),
            &harness.merchant,
            Some("in-5"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A hold the admin made between accounts outside the namespace.
    let (status, outside_hold) = harness
        .post("/v1/holds", &harness.admin, "admin-1", hold(&bank, &other))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{outside_hold}");
    let outside_hold = outside_hold["id"].as_str().unwrap().to_string();

    let before = harness.row_counts().await;
    // One leg outside is enough to refuse the entry; the refusal names that account.
    let (status, body) = harness
        .post(
            "/v1/entries",
            &harness.merchant,
            "out-1",
            transfer(&bank, &wallet, "1.00"),
        )
        .await;
    assert_outside(status, &body, &bank);
    let (status, body) = harness
        .post(
            "/v1/entries",
            &harness.merchant,
            "out-2",
            transfer(&other, &bank, "1.00"),
        )
        .await;
    assert_outside(status, &body, &other);
    let (status, body) = harness
        .post(
            "/v1/holds",
            &harness.merchant,
            "out-3",
            hold(&wallet, &bank),
        )
        .await;
    assert_outside(status, &body, &bank);
    let (status, body) = harness
        .post(
            &format!("/v1/holds/{outside_hold}/post"),
            &harness.merchant,
            "out-4",
            json!({}),
        )
        .await;
    assert_outside(status, &body, &bank);
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/holds/{outside_hold}/void"),
            &harness.merchant,
            Some("out-5"),
            None,
        )
        .await;
    assert_outside(status, &body, &bank);
    assert_eq!(harness.row_counts().await, before);
    // The admin still moves them.
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/holds/{outside_hold}/void"),
            &harness.admin,
            Some("admin-2"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_limited_key_reads_only_accounts_in_its_namespaces(harness: Harness) {
    let wallet = harness.open(&harness.merchant, "merchant-a-wallet").await;
    let cash = harness.open(&harness.merchant, "merchant-a-cash").await;
    let bank = harness.open(&harness.admin, "bank").await;
    let (_, own_entry) = harness
        .post(
            "/v1/entries",
            &harness.merchant,
            "in-1",
            transfer(&cash, &wallet, "10.00"),
        )
        .await;
    let own_entry = own_entry["id"].as_str().unwrap().to_string();
    let (_, own_hold) = harness
        .post("/v1/holds", &harness.merchant, "in-2", hold(&wallet, &cash))
        .await;
    let own_hold = own_hold["id"].as_str().unwrap().to_string();
    // An entry and a hold that touch the bank as well as the merchant's wallet.
    let (status, shared_entry) = harness
        .post(
            "/v1/entries",
            &harness.admin,
            "admin-1",
            transfer(&bank, &wallet, "3.00"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shared_entry}");
    let shared_entry = shared_entry["id"].as_str().unwrap().to_string();
    let (status, shared_hold) = harness
        .post("/v1/holds", &harness.admin, "admin-2", hold(&bank, &wallet))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shared_hold}");
    let shared_hold = shared_hold["id"].as_str().unwrap().to_string();

    for uri in [
        format!("/v1/accounts/{wallet}"),
        format!("/v1/accounts/{wallet}/balance"),
        format!("/v1/accounts/{wallet}/entries"),
        format!("/v1/entries/{own_entry}"),
        format!("/v1/holds/{own_hold}"),
    ] {
        let (status, body) = harness.get(&uri, &harness.merchant).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    for uri in [
        format!("/v1/accounts/{bank}"),
        format!("/v1/accounts/{bank}/balance?as_of=2026-05-01T00:00:00Z"),
        format!("/v1/accounts/{bank}/entries"),
        format!("/v1/entries/{shared_entry}"),
        format!("/v1/holds/{shared_hold}"),
    ] {
        let (status, body) = harness.get(&uri, &harness.merchant).await;
        assert_outside(status, &body, &bank);
        let (status, _) = harness.get(&uri, &harness.admin).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    // An unknown account is not found, as for any key.
    let (status, body) = harness
        .get(
            "/v1/accounts/0196a1d2-0000-7000-8000-000000000001",
            &harness.merchant,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn a_limited_key_gets_no_stored_outcome_of_another_keys_request(harness: Harness) {
    let bank = harness.open(&harness.admin, "bank").await;
    let other = harness.open(&harness.admin, "merchant-b-wallet").await;
    let (status, stored) = harness
        .post(
            "/v1/entries",
            &harness.admin,
            "shared-key",
            transfer(&bank, &other, "2.00"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (status, held) = harness
        .post(
            "/v1/holds",
            &harness.admin,
            "shared-hold",
            hold(&bank, &other),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let held = held["id"].as_str().unwrap().to_string();
    let (status, voided) = harness
        .call(
            "POST",
            &format!("/v1/holds/{held}/void"),
            &harness.admin,
            Some("shared-void"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    // The same key and body: the admin gets the stored outcome, the limited key a refusal.
    let (status, replayed) = harness
        .post(
            "/v1/entries",
            &harness.admin,
            "shared-key",
            transfer(&bank, &other, "2.00"),
        )
        .await;
    assert_eq!((status, &replayed), (StatusCode::CREATED, &stored));
    let (status, body) = harness
        .post(
            "/v1/entries",
            &harness.merchant,
            "shared-key",
            transfer(&bank, &other, "2.00"),
        )
        .await;
    assert_outside(status, &body, &bank);
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/holds/{held}/void"),
            &harness.merchant,
            Some("shared-void"),
            None,
        )
        .await;
    assert_outside(status, &body, &bank);
    assert!(!body.to_string().contains("voided"), "{body}");
}

async fn rotation_keeps_the_namespaces_and_blank_ones_are_refused(harness: Harness) {
    let now = harness.clock.now();
    let bank = harness.open(&harness.admin, "bank").await;
    let stored = harness
        .database
        .api_key(&harness.merchant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.account_namespaces, [NAMESPACE]);
    let rotated = harness
        .database
        .rotate_api_key(&harness.merchant_id, jiff::SignedDuration::ZERO, None, now)
        .await
        .unwrap();
    assert_eq!(rotated.key.account_namespaces, [NAMESPACE]);
    let key = rotated.secret.expose().clone();
    harness.open(&key, "merchant-a-after-rotation").await;
    let (status, body) = harness.get(&format!("/v1/accounts/{bank}"), &key).await;
    assert_outside(status, &body, &bank);
    // A key of several namespaces takes each.
    let both = harness
        .database
        .create_api_key_in_namespaces(
            "both",
            &["ledger:write".to_string()],
            &[NAMESPACE.to_string(), "merchant-c-".to_string()],
            None,
            now,
        )
        .await
        .unwrap();
    let both = both.secret.expose().clone();
    harness.open(&both, "merchant-c-wallet").await;
    harness.open(&both, "merchant-a-second").await;
    // A namespace that would match every code, or that no code can start with, is refused.
    for namespace in ["", "  ", "bad\u{202e}"] {
        let refused = harness
            .database
            .create_api_key_in_namespaces(
                "bad",
                &["ledger:read".to_string()],
                &[namespace.to_string()],
                None,
                now,
            )
            .await;
        assert!(
            matches!(refused, Err(KeyLifecycleError::InvalidAccountNamespace(..))),
            "{namespace:?}: {refused:?}"
        );
    }
}
