//! Tally's HTTP answers pinned byte for byte (insta snapshots), so that a change in how
//! answers are built (typed response structs instead of `json!`, use cases moved into a
//! service) can show that nothing a client receives changed.
//!
//! One deterministic story per area drives every route of the API (ledger; customers and
//! personal-data lookups; credit purchases; credit statements, collections and write-offs;
//! risk; keys, authentication and the platform routes; the reconciliation worklist; the
//! consortium log's own router)
//! through its answers and main refusals, on SQLite and on PostgreSQL against the same
//! snapshots: the two backends must answer alike. Each snapshot holds the status line, the
//! headers a client reads (content type, `Allow`, `Retry-After`, `WWW-Authenticate`) and the
//! body. A JSON body is laid out one value per line without re-serialising it: only line
//! breaks and indentation are added outside strings, and the raw body is checked to carry no
//! whitespace there, so the snapshot still pins key order, number formats, escapes and field
//! names exactly. Binary bodies are shown in hex.
//!
//! The clock is a fixed `ManualClock`, idempotency keys and personal data are fixed, so
//! dates and amounts are stable. What still differs from run to run, the UUIDv7 ids of
//! accounts, entries, holds, customers, API keys, cases, list entries and activation
//! requests, is replaced in each story by `<uuid-1>`, `<uuid-2>`, ... in order of first
//! appearance, so that the snapshots still show which answers name the same thing.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use jiff::civil::{date, Date};
use jiff::SignedDuration;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tally_consortium::{Action, MemberKey, SignedRequest, SignerKey};
use tally_core::{Clock, Currency};
use tally_credit::{AccountPolicy, LedgerRole};
use tally_server::state::Limits;
use tally_server::{app, AppState};
use tally_service::credit::end_of_day::{run_end_of_day, EndOfDayOptions};
use tally_service::credit::ledger_accounts::credit_ledger_accounts;
use tally_store::testing::TestDatabase;

mod support;
use support::consortium::{publish_action, query_action, signer, Sequences};
use support::{application, bearer, cny, privacy, request, send, Answer, Setup, TestApp};

/// The time every story starts at.
const START: &str = "2026-05-01T09:00:00Z";

/// Valid PRC identity numbers: born 1990-03-07, 1995-08-15 and 1990-03-07.
const YOUNG_ID: &str = "110105199003071239";
const OTHER_ID: &str = "440304199508154567";
const THIRD_ID: &str = "110101199003077774";

/// The API keys of a story: name and scopes.
const KEYS: &[(&str, &[&str])] = &[
    ("admin", &["admin"]),
    ("ledger writer", &["ledger:write"]),
    ("ledger reader", &["ledger:read"]),
    ("clerk", &["credit:write", "credit:read"]),
    ("reader", &["credit:read"]),
    ("agent", &["credit:read", "pii:read"]),
    ("lookup burst", &["credit:read"]),
    ("risk writer", &["risk:write", "risk:read"]),
    ("risk admin one", &["risk:admin", "risk:read"]),
    ("risk admin two", &["risk:admin", "risk:read"]),
    ("analyst one", &["risk:analyst"]),
    ("analyst two", &["risk:analyst"]),
    ("monitor", &["metrics:read"]),
];

// ----- Answers and their snapshots -----

/// The headers a client reads, in this order, when the answer has them.
const SHOWN_HEADERS: [&str; 4] = ["content-type", "allow", "retry-after", "www-authenticate"];

/// Snapshots of one story: the UUIDs seen so far, numbered in order of first appearance.
#[derive(Default)]
struct Snapshots {
    uuids: Mutex<Vec<String>>,
}

impl Snapshots {
    /// Checks the answer's status (so that a story going astray fails at once, naming the
    /// step) and its snapshot `name`; returns the body as JSON for the next steps.
    fn check(&self, name: &str, status: u16, answer: &Answer) -> Value {
        let text = self.render(answer);
        assert_eq!(answer.status.as_u16(), status, "{name}:\n{text}");
        insta::assert_snapshot!(name, text);
        answer.json()
    }

    fn render(&self, answer: &Answer) -> String {
        let mut text = format!("{}\n", answer.status);
        for name in SHOWN_HEADERS {
            if let Some(value) = answer.headers.get(name) {
                let value = value.to_str().unwrap_or("<not visible ASCII>");
                text.push_str(&format!("{name}: {value}\n"));
            }
        }
        text.push('\n');
        let content_type = answer
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        match std::str::from_utf8(&answer.body) {
            Ok(body) if !content_type.starts_with("application/octet-stream") => {
                let body = without_digests(&self.stable_ids(body));
                if content_type.starts_with("application/json") {
                    text.push_str(&lay_out(&body).unwrap_or(body));
                } else {
                    text.push_str(&body);
                }
            }
            _ => text.push_str(&hex_lines(&answer.body)),
        }
        text
    }

    /// `text` with each UUID replaced by `<uuid-N>`, N its rank of first appearance in
    /// the story.
    fn stable_ids(&self, text: &str) -> String {
        const LENGTH: usize = 36;
        let mut seen = self.uuids.lock().unwrap();
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut index = 0;
        while index + LENGTH <= bytes.len() {
            let before = index.checked_sub(1).map(|at| bytes[at]);
            let after = bytes.get(index + LENGTH).copied();
            let bounded = !before.is_some_and(|byte| byte.is_ascii_alphanumeric())
                && !after.is_some_and(|byte| byte.is_ascii_alphanumeric());
            if bounded && is_uuid(&bytes[index..index + LENGTH]) {
                let uuid = &text[index..index + LENGTH];
                let rank = match seen.iter().position(|known| known == uuid) {
                    Some(position) => position + 1,
                    None => {
                        seen.push(uuid.to_string());
                        seen.len()
                    }
                };
                out.push_str(&text[copied..index]);
                out.push_str(&format!("<uuid-{rank}>"));
                index += LENGTH;
                copied = index;
            } else {
                index += 1;
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// `text` with each `"sha256":"<64 hex digits>"` digest replaced by `<sha256>`: an evidence
/// package's digest covers its ids, which differ from run to run.
fn without_digests(text: &str) -> String {
    const KEY: &str = "\"sha256\":\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let start = at + KEY.len();
        out.push_str(&rest[..start]);
        let digest = rest.get(start..start + 64);
        if digest.is_some_and(|digest| digest.bytes().all(|byte| byte.is_ascii_hexdigit())) {
            out.push_str("<sha256>");
            rest = &rest[start + 64..];
        } else {
            rest = &rest[start..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether `bytes` is a UUID in its hyphenated form (8-4-4-4-12 hex digits).
fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| {
            if matches!(index, 8 | 13 | 18 | 23) {
                *byte == b'-'
            } else {
                byte.is_ascii_hexdigit()
            }
        })
}

/// A compact JSON text laid out one value per line, by adding line breaks and indentation
/// outside strings and nothing else; `None` when the text has whitespace outside strings
/// (it is then shown as received). Removing the layout gives the text back, byte for byte.
fn lay_out(compact: &str) -> Option<String> {
    let chars: Vec<char> = compact.chars().collect();
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    let line = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    for (index, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                if chars.get(index + 1) != Some(&close) {
                    depth += 1;
                    line(&mut out, depth);
                }
            }
            '}' | ']' => {
                let open = if c == '}' { '{' } else { '[' };
                if index == 0 || chars[index - 1] != open {
                    depth = depth.saturating_sub(1);
                    line(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                line(&mut out, depth);
            }
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    assert_eq!(remove_layout(&out), compact, "the layout must be lossless");
    Some(out)
}

/// Removes what [`lay_out`] added: whitespace outside strings.
fn remove_layout(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_whitespace() {
            continue;
        }
        out.push(c);
    }
    out
}

/// Bytes in hex, 32 to a line.
fn hex_lines(bytes: &[u8]) -> String {
    let mut text = format!("<{} bytes>", bytes.len());
    for chunk in bytes.chunks(32) {
        text.push('\n');
        text.push_str(&hex::encode(chunk));
    }
    text
}

#[test]
fn the_layout_adds_only_whitespace_outside_strings() {
    let compact = r#"{"a":[1,2.50,{}],"b":"x, {y}: \"[z]\"","c":[],"d":{"e":null}}"#;
    let laid = lay_out(compact).unwrap();
    assert_eq!(
        laid,
        "{\n  \"a\":[\n    1,\n    2.50,\n    {}\n  ],\n  \"b\":\"x, {y}: \\\"[z]\\\"\",\n  \"c\":[],\n  \"d\":{\n    \"e\":null\n  }\n}"
    );
    assert_eq!(remove_layout(&laid), compact);
    // A body with whitespace outside strings is shown as it came.
    assert_eq!(lay_out("{\"a\": 1}"), None);
}

#[test]
fn uuids_are_numbered_in_order_of_first_appearance() {
    let snapshots = Snapshots::default();
    let first = "01890a5d-ac96-774b-bcce-b302099a8057";
    let second = "01890A5D-AC96-774B-BCCE-B302099A8058";
    let text = format!("{first} x{second} {first}-{second} a{first}");
    assert_eq!(
        snapshots.stable_ids(&text),
        format!("<uuid-1> x{second} <uuid-1>-<uuid-2> a{first}")
    );
    assert_eq!(snapshots.stable_ids(second), "<uuid-2>");
}

// ----- The application's harness -----

/// The whole API in one router (ledger, customers, credit, risk), on a fixed clock.
struct Harness {
    app: TestApp,
    /// Secrets by key name.
    keys: BTreeMap<&'static str, String>,
    snapshots: Snapshots,
}

support::deref_to_app!(Harness);

/// The `id` an answer names.
fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_string()
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).credit().risk();
        let app = TestApp::start(test, START, setup).await;
        let mut keys = BTreeMap::new();
        for (name, scopes) in KEYS {
            keys.insert(*name, app.key(name, scopes).await);
        }
        Harness {
            app,
            keys,
            snapshots: Snapshots::default(),
        }
    }

    fn check(&self, name: &str, status: u16, answer: &Answer) -> Value {
        self.snapshots.check(name, status, answer)
    }

    /// A request with the key named `key` (if any), an idempotency key (if any) and a JSON
    /// body (if any).
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        idempotency: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let authorization = key.map(|key| {
            let secret = self.keys.get(key).unwrap_or_else(|| panic!("no key {key}"));
            bearer(secret)
        });
        let request = request(method, uri, authorization.as_deref(), idempotency, body);
        send(&self.router, request).await
    }

    async fn get(&self, key: &str, uri: &str) -> Answer {
        self.call("GET", uri, Some(key), None, None).await
    }

    async fn post(&self, key: &str, uri: &str, idempotency: Option<&str>, body: Value) -> Answer {
        self.call("POST", uri, Some(key), idempotency, Some(body.to_string()))
            .await
    }

    /// [`Harness::call`], its answer checked against snapshot `name` and status `status`;
    /// the body as JSON.
    #[allow(clippy::too_many_arguments)]
    async fn check_call(
        &self,
        name: &str,
        status: u16,
        method: &str,
        uri: &str,
        key: Option<&str>,
        idempotency: Option<&str>,
        body: Option<String>,
    ) -> Value {
        let answer = self.call(method, uri, key, idempotency, body).await;
        self.check(name, status, &answer)
    }

    /// A GET checked against snapshot `name` and status `status`; the body as JSON.
    async fn check_get(&self, name: &str, status: u16, key: &str, uri: &str) -> Value {
        self.check(name, status, &self.get(key, uri).await)
    }

    /// A POST checked against snapshot `name` and status `status`; the body as JSON.
    async fn check_post(
        &self,
        name: &str,
        status: u16,
        key: &str,
        uri: &str,
        idempotency: Option<&str>,
        body: Value,
    ) -> Value {
        let answer = self.post(key, uri, idempotency, body).await;
        self.check(name, status, &answer)
    }

    /// A POST whose answer is not snapshotted (a step already pinned elsewhere), checked
    /// for its status.
    async fn step(
        &self,
        key: &str,
        uri: &str,
        idempotency: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let answer = self.post(key, uri, Some(idempotency), body).await;
        let json = answer.json();
        assert_eq!(answer.status.as_u16(), status, "{uri}: {json}");
        json
    }

    async fn customer(&self, national_id: &str, phone: &str) -> String {
        let body = json!({"name": "李四", "phone": phone, "national_id": national_id});
        let created = self
            .step(
                "clerk",
                "/v1/customers",
                &format!("customer-{national_id}"),
                body,
                201,
            )
            .await;
        id(&created)
    }

    /// End of day for every date from `from` to `to`, with the clock at 23:00 of each.
    async fn end_of_day(&self, from: Date, to: Date) {
        let policy = AccountPolicy::default();
        let options = EndOfDayOptions::default();
        let mut day = from;
        while day <= to {
            self.clock.set(format!("{day}T23:00:00Z").parse().unwrap());
            run_end_of_day(
                &self.database,
                &self.writer,
                day,
                &policy,
                &options,
                &*self.clock,
            )
            .await
            .unwrap();
            day = day.tomorrow().unwrap();
        }
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    ledger,
    customers,
    credit_purchases,
    credit_statements_and_write_offs,
    risk,
    keys_and_platform,
    reconciliation,
);

// ----- Ledger -----

async fn ledger(h: Harness) {
    let (w, r) = ("ledger writer", "ledger reader");
    let bank = id(&h
        .check_post(
            "ledger_01_account_opened",
            201,
            w,
            "/v1/accounts",
            Some("open-bank"),
            json!({"code": "1001-bank", "kind": "asset", "currency": "CNY"}),
        )
        .await);
    let wallet_request = json!({
        "code": "2001-wallet-alice", "kind": "liability", "currency": "CNY",
        "flags": {"debits_must_not_exceed_credits": true},
        "metadata": {"owner": "alice", "tier": "gold"},
    });
    let wallet = id(&h
        .check_post(
            "ledger_02_account_opened_with_flags_and_metadata",
            201,
            w,
            "/v1/accounts",
            Some("open-wallet"),
            wallet_request.clone(),
        )
        .await);
    h.check_post(
        "ledger_03_account_opening_replayed",
        201,
        w,
        "/v1/accounts",
        Some("open-wallet"),
        wallet_request,
    )
    .await;
    h.check_post(
        "ledger_04_idempotency_key_reused",
        409,
        w,
        "/v1/accounts",
        Some("open-wallet"),
        json!({"code": "2002-other", "kind": "liability", "currency": "CNY"}),
    )
    .await;
    h.check_post(
        "ledger_05_account_code_taken",
        409,
        w,
        "/v1/accounts",
        Some("open-bank-again"),
        json!({"code": "1001-bank", "kind": "asset", "currency": "CNY"}),
    )
    .await;
    h.check_post(
        "ledger_06_invalid_account_kind",
        422,
        w,
        "/v1/accounts",
        Some("open-kind"),
        json!({"code": "9-x", "kind": "cash", "currency": "CNY"}),
    )
    .await;
    h.check_post(
        "ledger_07_unknown_currency",
        422,
        w,
        "/v1/accounts",
        Some("open-currency"),
        json!({"code": "9-y", "kind": "asset", "currency": "XYZ"}),
    )
    .await;
    h.check_post(
        "ledger_08_account_code_reserved",
        422,
        w,
        "/v1/accounts",
        Some("open-reserved"),
        json!({"code": "Credit-mine", "kind": "asset", "currency": "CNY"}),
    )
    .await;
    h.check_post(
        "ledger_09_idempotency_key_required",
        400,
        w,
        "/v1/accounts",
        None,
        json!({"code": "9-z", "kind": "asset", "currency": "CNY"}),
    )
    .await;
    h.check_call(
        "ledger_10_malformed_json",
        400,
        "POST",
        "/v1/accounts",
        Some(w),
        Some("open-malformed"),
        Some("{\"code\":".into()),
    )
    .await;
    h.check_post(
        "ledger_11_unknown_field",
        400,
        w,
        "/v1/accounts",
        Some("open-unknown"),
        json!({"code": "9-z", "kind": "asset", "currency": "CNY", "colour": "red"}),
    )
    .await;
    h.check_get(
        "ledger_12_account_read",
        200,
        r,
        &format!("/v1/accounts/{wallet}"),
    )
    .await;
    h.check_get(
        "ledger_13_account_not_found",
        404,
        r,
        "/v1/accounts/01890a5d-ac96-774b-bcce-b302099a8057",
    )
    .await;
    h.check_get(
        "ledger_14_account_id_not_a_uuid",
        400,
        r,
        "/v1/accounts/not-a-uuid",
    )
    .await;
    let transfer = |from: &str, to: &str, amount: &str| {
        json!({
            "legs": [
                {"account_id": from, "side": "debit", "amount": amount, "currency": "CNY"},
                {"account_id": to, "side": "credit", "amount": amount, "currency": "CNY"},
            ],
            "description": "deposit",
            "metadata": {"channel": "bank transfer"},
        })
    };
    let entry = id(&h
        .check_post(
            "ledger_15_entry_posted",
            201,
            w,
            "/v1/entries",
            Some("deposit-1"),
            transfer(&bank, &wallet, "100.00"),
        )
        .await);
    h.check_post(
        "ledger_16_entry_replayed",
        201,
        w,
        "/v1/entries",
        Some("deposit-1"),
        transfer(&bank, &wallet, "100.00"),
    )
    .await;
    let mut unbalanced = transfer(&bank, &wallet, "10.00");
    unbalanced["legs"][1]["amount"] = json!("9.99");
    h.check_post(
        "ledger_17_entry_unbalanced",
        422,
        w,
        "/v1/entries",
        Some("unbalanced"),
        unbalanced,
    )
    .await;
    h.check_post(
        "ledger_18_entry_over_the_accounts_limit",
        422,
        w,
        "/v1/entries",
        Some("overdraw"),
        transfer(&wallet, &bank, "150.00"),
    )
    .await;
    h.check_post(
        "ledger_19_entry_on_an_unknown_account",
        404,
        w,
        "/v1/entries",
        Some("unknown-account"),
        transfer(&bank, "01890a5d-ac96-774b-bcce-b302099a8057", "1.00"),
    )
    .await;
    h.check_post(
        "ledger_20_entry_amount_not_a_decimal_of_the_currency",
        422,
        w,
        "/v1/entries",
        Some("fractional"),
        transfer(&bank, &wallet, "1.001"),
    )
    .await;
    h.check_get(
        "ledger_21_entry_read",
        200,
        r,
        &format!("/v1/entries/{entry}"),
    )
    .await;
    h.check_get(
        "ledger_22_entry_not_found",
        404,
        r,
        "/v1/entries/01890a5d-ac96-774b-bcce-b302099a8057",
    )
    .await;
    h.clock.advance(SignedDuration::from_hours(2));
    h.check_post(
        "ledger_23_second_entry_posted_later",
        201,
        w,
        "/v1/entries",
        Some("deposit-2"),
        transfer(&bank, &wallet, "50.00"),
    )
    .await;
    h.check_get(
        "ledger_24_balance_now",
        200,
        r,
        &format!("/v1/accounts/{wallet}/balance"),
    )
    .await;
    h.check_get(
        "ledger_25_balance_as_of_an_earlier_time",
        200,
        r,
        &format!("/v1/accounts/{wallet}/balance?as_of=2026-05-01T10:00:00Z"),
    )
    .await;
    h.check_get(
        "ledger_26_balance_as_of_not_a_time",
        400,
        r,
        &format!("/v1/accounts/{wallet}/balance?as_of=yesterday"),
    )
    .await;
    let page = h
        .check_get(
            "ledger_27_legs_first_page",
            200,
            r,
            &format!("/v1/accounts/{wallet}/entries?limit=1"),
        )
        .await;
    h.check_get(
        "ledger_28_legs_next_page",
        200,
        r,
        &format!(
            "/v1/accounts/{wallet}/entries?limit=1&after={}",
            page["next_after"]
        ),
    )
    .await;
    h.check_get(
        "ledger_29_legs_limit_out_of_range",
        400,
        r,
        &format!("/v1/accounts/{wallet}/entries?limit=0"),
    )
    .await;
    h.check_get(
        "ledger_30_legs_unknown_query_parameter",
        400,
        r,
        &format!("/v1/accounts/{wallet}/entries?colour=red"),
    )
    .await;
    let hold_request = |amount: &str, expires_at: &str| {
        json!({
            "debit_account_id": wallet, "credit_account_id": bank, "amount": amount,
            "currency": "CNY", "expires_at": expires_at, "description": "card purchase",
            "metadata": {"merchant": "m-17"},
        })
    };
    let hold = id(&h
        .check_post(
            "ledger_31_hold_created",
            201,
            w,
            "/v1/holds",
            Some("hold-1"),
            hold_request("30.00", "2026-05-02T09:00:00Z"),
        )
        .await);
    h.check_get("ledger_32_hold_read", 200, r, &format!("/v1/holds/{hold}"))
        .await;
    h.check_post(
        "ledger_33_hold_posted_in_part",
        201,
        w,
        &format!("/v1/holds/{hold}/post"),
        Some("post-hold-1"),
        json!({"amount": "20.00", "currency": "CNY"}),
    )
    .await;
    h.check_post(
        "ledger_34_hold_posted_again",
        409,
        w,
        &format!("/v1/holds/{hold}/post"),
        Some("post-hold-1-again"),
        json!({}),
    )
    .await;
    let second = id(&h
        .check_post(
            "ledger_35_second_hold_created",
            201,
            w,
            "/v1/holds",
            Some("hold-2"),
            hold_request("5.00", "2026-05-03T09:00:00Z"),
        )
        .await);
    h.check_post(
        "ledger_36_hold_post_amount_without_currency",
        422,
        w,
        &format!("/v1/holds/{second}/post"),
        Some("post-hold-2"),
        json!({"amount": "1.00"}),
    )
    .await;
    h.check_call(
        "ledger_37_hold_voided",
        200,
        "POST",
        &format!("/v1/holds/{second}/void"),
        Some(w),
        Some("void-hold-2"),
        None,
    )
    .await;
    h.check_call(
        "ledger_38_hold_voided_again",
        409,
        "POST",
        &format!("/v1/holds/{second}/void"),
        Some(w),
        Some("void-hold-2-again"),
        None,
    )
    .await;
    h.check_get(
        "ledger_39_hold_not_found",
        404,
        r,
        "/v1/holds/01890a5d-ac96-774b-bcce-b302099a8057",
    )
    .await;
    h.check_post(
        "ledger_40_hold_expiring_in_the_past",
        422,
        w,
        "/v1/holds",
        Some("hold-past"),
        hold_request("1.00", "2026-04-30T09:00:00Z"),
    )
    .await;
    h.check_get(
        "ledger_41_account_after_holds",
        200,
        r,
        &format!("/v1/accounts/{wallet}"),
    )
    .await;
    h.check_post(
        "ledger_42_write_without_scope",
        403,
        r,
        "/v1/accounts",
        Some("reader-open"),
        json!({"code": "9-r", "kind": "asset", "currency": "CNY"}),
    )
    .await;
    let credit = credit_ledger_accounts(&h.database, &h.writer, Currency::CNY)
        .await
        .unwrap();
    let receivable = credit.account_of(LedgerRole::CustomerReceivable).as_uuid();
    h.check_post(
        "ledger_43_entry_on_an_account_of_the_credit_service",
        403,
        w,
        "/v1/entries",
        Some("into-credit"),
        transfer(&bank, &receivable.to_string(), "1.00"),
    )
    .await;
    h.check_post(
        "ledger_44_idempotency_key_reserved_for_tally",
        400,
        w,
        "/v1/entries",
        Some("credit:mine"),
        transfer(&bank, &wallet, "1.00"),
    )
    .await;
}

// ----- Customers and personal-data lookups -----

async fn customers(h: Harness) {
    let request = json!({"name": "李四", "phone": "+86 138-0013-8000", "national_id": THIRD_ID});
    let customer = id(&h
        .check_post(
            "customers_01_created",
            201,
            "clerk",
            "/v1/customers",
            Some("customer-1"),
            request.clone(),
        )
        .await);
    h.check_post(
        "customers_02_creation_replayed",
        201,
        "clerk",
        "/v1/customers",
        Some("customer-1"),
        request,
    )
    .await;
    h.check_post(
        "customers_03_idempotency_key_reused",
        409,
        "clerk",
        "/v1/customers",
        Some("customer-1"),
        json!({"name": "王五", "phone": "13900139000", "national_id": YOUNG_ID}),
    )
    .await;
    h.check_post(
        "customers_04_phone_taken",
        409,
        "clerk",
        "/v1/customers",
        Some("customer-2"),
        json!({"name": "王五", "phone": "13800138000", "national_id": YOUNG_ID}),
    )
    .await;
    h.check_post(
        "customers_05_national_id_taken",
        409,
        "clerk",
        "/v1/customers",
        Some("customer-3"),
        json!({"name": "王五", "phone": "13900139000", "national_id": THIRD_ID}),
    )
    .await;
    h.check_post(
        "customers_06_invalid_phone",
        400,
        "clerk",
        "/v1/customers",
        Some("customer-4"),
        json!({"name": "王五", "phone": "12345", "national_id": YOUNG_ID}),
    )
    .await;
    h.check_post(
        "customers_07_national_id_checksum_invalid",
        400,
        "clerk",
        "/v1/customers",
        Some("customer-5"),
        json!({"name": "王五", "phone": "13900139000", "national_id": "110105194912310021"}),
    )
    .await;
    h.check_post(
        "customers_08_name_empty",
        400,
        "clerk",
        "/v1/customers",
        Some("customer-6"),
        json!({"name": " ", "phone": "13900139000", "national_id": YOUNG_ID}),
    )
    .await;
    h.check_post(
        "customers_09_created_without_credit_write",
        403,
        "reader",
        "/v1/customers",
        Some("customer-7"),
        json!({"name": "王五", "phone": "13900139000", "national_id": YOUNG_ID}),
    )
    .await;
    let uri = format!("/v1/customers/{customer}");
    h.check_get("customers_10_read_masked", 200, "reader", &uri)
        .await;
    let reveal = format!("{uri}/reveal");
    h.check_post(
        "customers_11_read_in_clear_without_pii_read",
        403,
        "reader",
        &reveal,
        None,
        json!({"reason": "ticket-42"}),
    )
    .await;
    h.check_post(
        "customers_12_read_in_clear_without_reason",
        400,
        "agent",
        &reveal,
        None,
        json!({}),
    )
    .await;
    h.clock.advance(SignedDuration::from_mins(1));
    h.check_post(
        "customers_13_read_in_clear",
        200,
        "agent",
        &reveal,
        None,
        json!({"reason": "ticket-42"}),
    )
    .await;
    h.check_get(
        "customers_14_not_found",
        404,
        "reader",
        "/v1/customers/01890a5d-ac96-774b-bcce-b302099a8057",
    )
    .await;
    h.check_get(
        "customers_15_id_not_a_uuid",
        400,
        "reader",
        "/v1/customers/nobody",
    )
    .await;
    h.check_get(
        "customers_16_unknown_query_parameter",
        400,
        "reader",
        &format!("{uri}?colour=red"),
    )
    .await;
    let search = |body: Value| h.post("agent", "/v1/customers/search", None, body);
    h.check(
        "customers_17_found_by_phone",
        200,
        &search(json!({"phone": "+86 138 0013 8000", "reason": "call 1"})).await,
    );
    h.check(
        "customers_18_found_by_national_id",
        200,
        &search(json!({"national_id": THIRD_ID})).await,
    );
    h.check(
        "customers_19_nobody_found",
        200,
        &search(json!({"phone": "13700137000", "reason": "call 2"})).await,
    );
    h.check(
        "customers_20_lookup_by_two_fields",
        400,
        &search(json!({"phone": "13800138000", "national_id": THIRD_ID})).await,
    );
    h.check(
        "customers_21_lookup_without_field",
        400,
        &search(json!({"reason": "call 3"})).await,
    );
    h.check(
        "customers_22_lookup_of_an_invalid_phone",
        400,
        &search(json!({"phone": "12"})).await,
    );
    h.check(
        "customers_23_lookup_reason_with_control_character",
        400,
        &search(json!({"phone": "13800138000", "reason": "call\u{7}"})).await,
    );
    h.check_get(
        "customers_24_lookup_in_the_query_string_moved",
        410,
        "reader",
        "/v1/customers?phone=13800138000",
    )
    .await;
    let lookups = h
        .check_get(
            "customers_25_lookups_listed",
            200,
            "admin",
            "/v1/pii-lookups",
        )
        .await;
    assert_eq!(lookups["lookups"].as_array().unwrap().len(), 3);
    let page = h
        .check_get(
            "customers_26_lookups_first_page",
            200,
            "admin",
            "/v1/pii-lookups?limit=2",
        )
        .await;
    h.check_get(
        "customers_27_lookups_next_page",
        200,
        "admin",
        &format!(
            "/v1/pii-lookups?limit=2&after={}",
            page["next_after"].as_str().unwrap()
        ),
    )
    .await;
    h.check_get(
        "customers_28_lookups_limit_out_of_range",
        400,
        "admin",
        "/v1/pii-lookups?limit=0",
    )
    .await;
    h.check_get(
        "customers_29_lookups_without_admin",
        403,
        "agent",
        "/v1/pii-lookups",
    )
    .await;
    h.check_get(
        "customers_30_reads_in_clear_listed",
        200,
        "admin",
        &format!("{uri}/pii-reads"),
    )
    .await;
    h.check_get(
        "customers_31_reads_of_an_unknown_customer",
        404,
        "admin",
        "/v1/customers/01890a5d-ac96-774b-bcce-b302099a8057/pii-reads",
    )
    .await;
    // A key's lookups per minute (30 by default), then the refusal with when to retry.
    for _ in 0..30 {
        let answer = h
            .post(
                "lookup burst",
                "/v1/customers/search",
                None,
                json!({"phone": "13800138000"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    h.check_post(
        "customers_32_lookups_rate_limited",
        429,
        "lookup burst",
        "/v1/customers/search",
        None,
        json!({"phone": "13800138000"}),
    )
    .await;
    h.check_get(
        "customers_33_read_in_clear_in_the_query_string_moved",
        410,
        "agent",
        &format!("{uri}?unmasked=true&reason=ticket-42"),
    )
    .await;
}

// ----- Credit: products, opening, purchases, money in and back, account changes -----

async fn credit_purchases(h: Harness) {
    h.check_get(
        "credit_purchases_01_products",
        200,
        "reader",
        "/v1/credit/products",
    )
    .await;
    let product = json!({
        "code": "holiday-12", "name": "Holiday installments", "currency": "CNY",
        "fee_model": {"kind": "flat_fee"},
        "terms": [{"periods": 12, "rate": "0.007", "tier_rates": {"A": "0.0045", "B": "0.005", "C": "0.0055", "D": "0.006"}}]
    });
    h.check_post(
        "credit_purchases_02_product_added",
        201,
        "admin",
        "/v1/credit/products",
        None,
        product.clone(),
    )
    .await;
    h.check_post(
        "credit_purchases_03_product_exists",
        409,
        "admin",
        "/v1/credit/products",
        None,
        product.clone(),
    )
    .await;
    let mut unknown_tier = product.clone();
    unknown_tier["code"] = json!("holiday-6");
    unknown_tier["terms"][0]["tier_rates"] = json!({"prime": "0.004"});
    h.check_post(
        "credit_purchases_04_product_pricing_an_unknown_tier",
        422,
        "admin",
        "/v1/credit/products",
        None,
        unknown_tier,
    )
    .await;
    h.check_post(
        "credit_purchases_05_product_added_without_admin",
        403,
        "clerk",
        "/v1/credit/products",
        None,
        product,
    )
    .await;

    let customer = h.customer(YOUNG_ID, "13900139000").await;
    let declined_customer = h.customer(OTHER_ID, "13900139001").await;
    let opened = h
        .check_post(
            "credit_purchases_06_account_opened",
            201,
            "clerk",
            "/v1/credit/accounts",
            Some("open-1"),
            application(&customer, true),
        )
        .await;
    let id = opened["account"]["id"].as_i64().unwrap();
    h.check_post(
        "credit_purchases_07_opening_replayed",
        201,
        "clerk",
        "/v1/credit/accounts",
        Some("open-1"),
        application(&customer, true),
    )
    .await;
    h.check_post(
        "credit_purchases_08_application_declined",
        200,
        "clerk",
        "/v1/credit/accounts",
        Some("open-2"),
        application(&declined_customer, false),
    )
    .await;
    h.check_post(
        "credit_purchases_09_opening_for_an_unknown_customer",
        422,
        "clerk",
        "/v1/credit/accounts",
        Some("open-3"),
        application("01890a5d-ac96-774b-bcce-b302099a8057", true),
    )
    .await;
    let mut late = application(&customer, true);
    late["due_days"] = json!(29);
    h.check_post(
        "credit_purchases_10_opening_with_due_days_over_28",
        422,
        "clerk",
        "/v1/credit/accounts",
        Some("open-4"),
        late,
    )
    .await;
    let mut mixed = application(&customer, true);
    mixed["application"]["monthly_debt_payments"] = json!({"value": "10.00", "currency": "USD"});
    h.check_post(
        "credit_purchases_11_opening_in_two_currencies",
        422,
        "clerk",
        "/v1/credit/accounts",
        Some("open-5"),
        mixed,
    )
    .await;
    let account = format!("/v1/credit/accounts/{id}");
    h.check_get("credit_purchases_12_account_read", 200, "reader", &account)
        .await;
    h.check_get(
        "credit_purchases_13_account_not_found",
        404,
        "reader",
        "/v1/credit/accounts/999",
    )
    .await;
    h.check_get(
        "credit_purchases_14_account_id_not_a_number",
        400,
        "reader",
        "/v1/credit/accounts/x",
    )
    .await;
    h.check_get(
        "credit_purchases_15_offers_of_one_product",
        200,
        "reader",
        &format!("{account}/offers?amount=1200.00&product=installment"),
    )
    .await;
    h.check_get(
        "credit_purchases_16_offers_of_every_product",
        200,
        "reader",
        &format!("{account}/offers?amount=300.00"),
    )
    .await;
    h.check_get(
        "credit_purchases_17_offers_of_nothing",
        422,
        "reader",
        &format!("{account}/offers?amount=0.00"),
    )
    .await;
    h.check_get(
        "credit_purchases_18_offers_of_an_unknown_product",
        422,
        "reader",
        &format!("{account}/offers?amount=10.00&product=lease"),
    )
    .await;
    h.check_get(
        "credit_purchases_19_offers_without_amount",
        400,
        "reader",
        &format!("{account}/offers"),
    )
    .await;

    let authorizations = format!("{account}/authorizations");
    let purchase = json!({"amount": cny("1000.00"), "merchant_reference": "order 77"});
    h.check_post(
        "credit_purchases_20_purchase_authorised",
        201,
        "clerk",
        &authorizations,
        Some("authorize-1"),
        purchase.clone(),
    )
    .await;
    h.check_post(
        "credit_purchases_21_authorisation_replayed",
        201,
        "clerk",
        &authorizations,
        Some("authorize-1"),
        purchase,
    )
    .await;
    h.check_post(
        "credit_purchases_22_idempotency_key_reused",
        409,
        "clerk",
        &authorizations,
        Some("authorize-1"),
        json!({"amount": cny("999.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_23_credit_insufficient",
        422,
        "clerk",
        &authorizations,
        Some("authorize-big"),
        json!({"amount": cny("99999999.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_24_authorisation_open_too_long",
        422,
        "clerk",
        &authorizations,
        Some("authorize-long"),
        json!({"amount": cny("1.00"), "expires_on": "2026-12-31"}),
    )
    .await;
    h.check_post(
        "credit_purchases_25_amount_not_a_decimal_of_the_currency",
        422,
        "clerk",
        &authorizations,
        Some("authorize-fraction"),
        json!({"amount": cny("1.001")}),
    )
    .await;
    h.check_post(
        "credit_purchases_26_captured_into_installments",
        200,
        "clerk",
        &format!("{authorizations}/1/capture"),
        Some("capture-1"),
        json!({"amount": cny("800.00"), "product": "installment", "periods": 3}),
    )
    .await;
    h.check_post(
        "credit_purchases_27_captured_again",
        404,
        "clerk",
        &format!("{authorizations}/1/capture"),
        Some("capture-1-again"),
        json!({"product": "installment", "periods": 3}),
    )
    .await;
    h.check_post(
        "credit_purchases_28_second_purchase_authorised",
        201,
        "clerk",
        &authorizations,
        Some("authorize-2"),
        json!({"amount": cny("200.00"), "expires_on": "2026-05-03"}),
    )
    .await;
    h.check_post(
        "credit_purchases_29_capture_of_an_unknown_term",
        422,
        "clerk",
        &format!("{authorizations}/2/capture"),
        Some("capture-2"),
        json!({"product": "installment", "periods": 5}),
    )
    .await;
    h.check_call(
        "credit_purchases_30_authorisation_voided",
        200,
        "POST",
        &format!("{authorizations}/2/void"),
        Some("clerk"),
        Some("void-2"),
        None,
    )
    .await;
    h.check_call(
        "credit_purchases_31_authorisation_voided_again",
        404,
        "POST",
        &format!("{authorizations}/2/void"),
        Some("clerk"),
        Some("void-2-again"),
        None,
    )
    .await;
    h.check_post(
        "credit_purchases_32_repaid_before_billing",
        200,
        "clerk",
        &format!("{account}/repayments"),
        Some("repay-1"),
        json!({"amount": cny("100.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_33_repayment_in_another_currency",
        422,
        "clerk",
        &format!("{account}/repayments"),
        Some("repay-usd"),
        json!({"amount": {"value": "1.00", "currency": "USD"}}),
    )
    .await;
    h.check_post(
        "credit_purchases_34_refunded_in_part",
        200,
        "clerk",
        &format!("{account}/plans/1/refunds"),
        Some("refund-1"),
        json!({"amount": cny("300.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_35_refund_of_an_unknown_plan",
        404,
        "clerk",
        &format!("{account}/plans/9/refunds"),
        Some("refund-9"),
        json!({"amount": cny("1.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_36_refund_above_the_principal",
        422,
        "clerk",
        &format!("{account}/plans/1/refunds"),
        Some("refund-too-much"),
        json!({"amount": cny("600.00")}),
    )
    .await;
    let quote = h
        .check_get(
            "credit_purchases_37_payoff_quote",
            200,
            "reader",
            &format!("{account}/plans/1/payoff-quote"),
        )
        .await;
    h.check_post(
        "credit_purchases_38_payoff_below_the_quote",
        422,
        "clerk",
        &format!("{account}/plans/1/payoff"),
        Some("payoff-low"),
        json!({"amount": cny("1.00")}),
    )
    .await;
    let overpaid = quote["amount"]["value"]
        .as_str()
        .unwrap()
        .parse::<rust_decimal::Decimal>()
        .unwrap()
        + rust_decimal::Decimal::new(15_000, 2);
    h.check_post(
        "credit_purchases_39_paid_off_with_more_than_the_quote",
        200,
        "clerk",
        &format!("{account}/plans/1/payoff"),
        Some("payoff-1"),
        json!({"amount": cny(&format!("{overpaid:.2}"))}),
    )
    .await;
    h.check_get(
        "credit_purchases_40_payoff_quote_of_a_settled_plan",
        409,
        "reader",
        &format!("{account}/plans/1/payoff-quote"),
    )
    .await;
    h.check_get(
        "credit_purchases_41_payoff_quote_of_an_unknown_plan",
        404,
        "reader",
        &format!("{account}/plans/9/payoff-quote"),
    )
    .await;
    h.check_call(
        "credit_purchases_42_closing_with_a_credit_balance",
        409,
        "POST",
        &format!("{account}/close"),
        Some("clerk"),
        Some("close-1"),
        None,
    )
    .await;
    let payouts = format!("{account}/credit-balance/payouts");
    h.check_post(
        "credit_purchases_43_payout_above_the_credit_balance",
        422,
        "clerk",
        &payouts,
        Some("payout-too-much"),
        json!({"amount": cny("250.01")}),
    )
    .await;
    h.check_post(
        "credit_purchases_44_payout_of_nothing",
        422,
        "clerk",
        &payouts,
        Some("payout-zero"),
        json!({"amount": cny("0.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_45_credit_balance_paid_out",
        200,
        "clerk",
        &payouts,
        Some("payout-1"),
        json!({"amount": cny("250.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_46_limit_set",
        200,
        "clerk",
        &format!("{account}/limit"),
        Some("limit-1"),
        json!({"limit": cny("3000.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_47_limit_negative",
        422,
        "clerk",
        &format!("{account}/limit"),
        Some("limit-2"),
        json!({"limit": cny("-5.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_48_temporary_limit_set",
        200,
        "clerk",
        &format!("{account}/temporary-limit"),
        Some("temporary-1"),
        json!({"limit": cny("5000.00"), "until": "2026-05-31"}),
    )
    .await;
    h.check_post(
        "credit_purchases_49_temporary_limit_already_over",
        422,
        "clerk",
        &format!("{account}/temporary-limit"),
        Some("temporary-2"),
        json!({"limit": cny("5000.00"), "until": "2026-04-01"}),
    )
    .await;
    h.check_call(
        "credit_purchases_50_frozen",
        200,
        "POST",
        &format!("{account}/freeze"),
        Some("clerk"),
        Some("freeze-1"),
        None,
    )
    .await;
    h.check_post(
        "credit_purchases_51_purchase_on_a_frozen_account",
        409,
        "clerk",
        &authorizations,
        Some("authorize-frozen"),
        json!({"amount": cny("10.00")}),
    )
    .await;
    h.check_call(
        "credit_purchases_52_unfrozen",
        200,
        "POST",
        &format!("{account}/unfreeze"),
        Some("clerk"),
        Some("unfreeze-1"),
        None,
    )
    .await;
    h.check_call(
        "credit_purchases_53_closed",
        200,
        "POST",
        &format!("{account}/close"),
        Some("clerk"),
        Some("close-2"),
        None,
    )
    .await;
    h.check_post(
        "credit_purchases_54_purchase_on_a_closed_account",
        409,
        "clerk",
        &authorizations,
        Some("authorize-closed"),
        json!({"amount": cny("10.00")}),
    )
    .await;
    h.check_call(
        "credit_purchases_55_unknown_account_action",
        404,
        "POST",
        &format!("{account}/explode"),
        Some("clerk"),
        Some("explode-1"),
        None,
    )
    .await;
    h.check_post(
        "credit_purchases_56_idempotency_key_reserved_for_tally",
        400,
        "clerk",
        &format!("{account}/repayments"),
        Some("credit-repay"),
        json!({"amount": cny("1.00")}),
    )
    .await;
    h.check_post(
        "credit_purchases_57_repayment_on_an_unknown_account",
        404,
        "clerk",
        "/v1/credit/accounts/999/repayments",
        Some("repay-999"),
        json!({"amount": cny("1.00")}),
    )
    .await;
    h.check_get(
        "credit_purchases_58_account_after_the_story",
        200,
        "reader",
        &account,
    )
    .await;
}

// ----- Credit: end of day, statements, bill installments, collections, write-offs -----

async fn credit_statements_and_write_offs(h: Harness) {
    let first = h.customer(YOUNG_ID, "13900139000").await;
    let second = h.customer(OTHER_ID, "13900139001").await;
    let mut accounts = Vec::new();
    for (number, customer) in [&first, &second].into_iter().enumerate() {
        let opened = h
            .step(
                "clerk",
                "/v1/credit/accounts",
                &format!("open-{number}"),
                application(customer, true),
                201,
            )
            .await;
        accounts.push(format!("/v1/credit/accounts/{}", opened["account"]["id"]));
    }
    let (a, b) = (&accounts[0], &accounts[1]);
    // The first customer buys for 2,000.00 in one period and leaves an authorisation to
    // expire; the second buys for 900.00 and never pays.
    h.step(
        "clerk",
        &format!("{a}/authorizations"),
        "a-1",
        json!({"amount": cny("2000.00")}),
        201,
    )
    .await;
    h.step(
        "clerk",
        &format!("{a}/authorizations/1/capture"),
        "a-capture-1",
        json!({"product": "installment", "periods": 1}),
        200,
    )
    .await;
    h.step(
        "clerk",
        &format!("{a}/authorizations"),
        "a-2",
        json!({"amount": cny("300.00"), "expires_on": "2026-05-02"}),
        201,
    )
    .await;
    h.step(
        "clerk",
        &format!("{b}/authorizations"),
        "b-1",
        json!({"amount": cny("900.00")}),
        201,
    )
    .await;
    h.step(
        "clerk",
        &format!("{b}/authorizations/1/capture"),
        "b-capture-1",
        json!({"product": "installment", "periods": 1}),
        200,
    )
    .await;
    // Statements are cut on the 5th, due on the 14th.
    h.end_of_day(date(2026, 5, 1), date(2026, 5, 5)).await;
    h.clock.set("2026-05-06T09:00:00Z".parse().unwrap());
    h.check_get(
        "credit_statements_01_statements",
        200,
        "reader",
        &format!("{a}/statements"),
    )
    .await;
    h.check_get(
        "credit_statements_02_statements_limit_not_a_number",
        400,
        "reader",
        &format!("{a}/statements?limit=x"),
    )
    .await;
    h.check_get(
        "credit_statements_03_statements_of_an_unknown_account",
        404,
        "reader",
        "/v1/credit/accounts/999/statements",
    )
    .await;
    h.check_get(
        "credit_statements_04_account_with_its_open_statement",
        200,
        "reader",
        a,
    )
    .await;
    h.check_post(
        "credit_statements_05_statement_put_into_installments",
        200,
        "clerk",
        &format!("{a}/bill-installments"),
        Some("bill-1"),
        json!({"product": "installment", "periods": 3}),
    )
    .await;
    h.check_post(
        "credit_statements_06_bill_installment_refused",
        422,
        "clerk",
        &format!("{a}/bill-installments"),
        Some("bill-2"),
        json!({"product": "installment", "periods": 3}),
    )
    .await;
    h.check_post(
        "credit_statements_07_bill_installment_of_an_unknown_product",
        422,
        "clerk",
        &format!("{a}/bill-installments"),
        Some("bill-3"),
        json!({"product": "lease", "periods": 3}),
    )
    .await;
    // The second customer's statement goes unpaid: overdue from the 15th, M1 after grace.
    h.end_of_day(date(2026, 5, 6), date(2026, 5, 20)).await;
    h.clock.set("2026-05-21T09:00:00Z".parse().unwrap());
    let overdue = h
        .check_get("credit_statements_08_account_overdue", 200, "reader", b)
        .await;
    let tasks = h
        .check_get(
            "credit_statements_09_collections_queue",
            200,
            "reader",
            "/v1/credit/tasks",
        )
        .await;
    assert!(!tasks["tasks"].as_array().unwrap().is_empty(), "{tasks}");
    h.check_get(
        "credit_statements_10_collections_queue_limit_not_a_number",
        400,
        "reader",
        "/v1/credit/tasks?limit=x",
    )
    .await;
    let account_id = overdue["id"].as_i64().unwrap();
    let task = |kind: &str, account: i64, priority: i64| {
        json!({"account_id": account, "kind": kind, "reason": "asked to be called after 6pm",
               "amount": cny("0.00"), "priority": priority})
    };
    let added = h
        .check_post(
            "credit_statements_11_task_added",
            201,
            "clerk",
            "/v1/credit/tasks",
            None,
            task("callback", account_id, 3),
        )
        .await;
    // A call on the task: a promise to pay, followed up the day after its date; the
    // contacts of the task; a promise without its date; an unknown task.
    let contacts = format!("/v1/credit/tasks/{}/contacts", added["id"]);
    h.check_post(
        "credit_statements_11a_contact_recorded",
        201,
        "clerk",
        &contacts,
        None,
        json!({"outcome": "promise_to_pay", "note": "salary on the 25th",
               "promised_amount": cny("300.00"), "promised_date": "2026-05-25"}),
    )
    .await;
    h.check_post(
        "credit_statements_11b_contact_promise_without_a_date",
        422,
        "clerk",
        &contacts,
        None,
        json!({"outcome": "promise_to_pay", "note": "soon", "promised_amount": cny("300.00")}),
    )
    .await;
    h.check_get(
        "credit_statements_11c_task_contacts",
        200,
        "reader",
        &contacts,
    )
    .await;
    h.check_get(
        "credit_statements_11d_contacts_of_an_unknown_task",
        404,
        "reader",
        "/v1/credit/tasks/999/contacts",
    )
    .await;
    h.check_post(
        "credit_statements_12_task_of_an_unknown_kind",
        422,
        "clerk",
        "/v1/credit/tasks",
        None,
        task("visit", account_id, 3),
    )
    .await;
    h.check_post(
        "credit_statements_13_task_with_priority_out_of_range",
        422,
        "clerk",
        "/v1/credit/tasks",
        None,
        task("alert", account_id, 9),
    )
    .await;
    h.check_post(
        "credit_statements_14_task_on_an_unknown_account",
        404,
        "clerk",
        "/v1/credit/tasks",
        None,
        task("alert", 999, 1),
    )
    .await;
    let close = format!("/v1/credit/tasks/{}/close", added["id"]);
    h.check_post(
        "credit_statements_15_task_closed",
        200,
        "clerk",
        &close,
        None,
        json!({"note": "called"}),
    )
    .await;
    h.check_post(
        "credit_statements_16_task_closed_again",
        404,
        "clerk",
        &close,
        None,
        json!({"note": "called again"}),
    )
    .await;
    h.check_post(
        "credit_statements_17_overdue_account_repaid",
        200,
        "clerk",
        &format!("{b}/repayments"),
        Some("b-repay"),
        json!({"amount": overdue["billed_balance"]}),
    )
    .await;
    // A purchase on the first account that the customer then reports stolen.
    h.step(
        "clerk",
        &format!("{a}/authorizations"),
        "a-3",
        json!({"amount": cny("600.00")}),
        201,
    )
    .await;
    h.step(
        "clerk",
        &format!("{a}/authorizations/3/capture"),
        "a-capture-3",
        json!({"product": "loan", "periods": 6}),
        200,
    )
    .await;
    let write_off = format!("{a}/plans/3/stolen-write-off");
    h.check_post(
        "credit_statements_18_write_off_without_a_case",
        422,
        "clerk",
        &write_off,
        Some("write-off-0"),
        json!({"case_id": "no-such-case"}),
    )
    .await;
    let case = h
        .check_post(
            "credit_statements_19_stolen_account_claimed",
            201,
            "risk writer",
            "/v1/risk/claims",
            None,
            json!({"customer": first, "description": "my phone was stolen on 20 May"}),
        )
        .await["case"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.check_post(
        "credit_statements_20_write_off_on_an_open_case",
        422,
        "clerk",
        &write_off,
        Some("write-off-1"),
        json!({"case_id": case}),
    )
    .await;
    let moves = format!("/v1/risk/cases/{case}");
    h.step(
        "analyst one",
        &format!("{moves}/claim"),
        "-",
        json!({}),
        200,
    )
    .await;
    h.check_post(
        "credit_statements_21_stolen_account_confirmed",
        200,
        "analyst one",
        &format!("{moves}/approve"),
        None,
        json!({"note": "police report 2026-0520"}),
    )
    .await;
    h.check_post(
        "credit_statements_22_written_off",
        200,
        "clerk",
        &write_off,
        Some("write-off-2"),
        json!({"case_id": case}),
    )
    .await;
    h.check_post(
        "credit_statements_23_written_off_again",
        409,
        "clerk",
        &write_off,
        Some("write-off-3"),
        json!({"case_id": case}),
    )
    .await;
    h.check_post(
        "credit_statements_24_write_off_for_another_customers_account",
        422,
        "clerk",
        &format!("{b}/plans/1/stolen-write-off"),
        Some("write-off-4"),
        json!({"case_id": case}),
    )
    .await;
    h.check_post(
        "credit_statements_25_purchase_by_a_blocked_customer",
        409,
        "clerk",
        &format!("{a}/authorizations"),
        Some("a-4"),
        json!({"amount": cny("1.00")}),
    )
    .await;
    h.check_get(
        "credit_statements_26_statements_after_the_story",
        200,
        "reader",
        &format!("{b}/statements?limit=5"),
    )
    .await;
}

// ----- Risk -----

async fn risk(h: Harness) {
    let event = |id: &str, kind: &str, customer: &str, extra: Value| {
        let mut event = json!({"id": id, "kind": kind, "at": START, "customer": customer});
        for (key, value) in extra.as_object().unwrap() {
            event[key] = value.clone();
        }
        event
    };
    let decide = |body: Value| h.post("risk writer", "/v1/risk/decisions", None, body);
    let login = event(
        "e1",
        "login",
        "alice",
        json!({"device": "d1", "ip": "203.0.113.7", "geo": {"lat": 31.23, "lon": 121.47}}),
    );
    h.check("risk_01_login_approved", 200, &decide(login.clone()).await);
    h.check("risk_02_decision_replayed", 200, &decide(login).await);
    h.check(
        "risk_03_event_id_reused",
        409,
        &decide(event("e1", "login", "alice", json!({"device": "d2"}))).await,
    );
    h.check(
        "risk_04_invalid_event",
        422,
        &decide(event("e-bad", "teleport", "alice", json!({}))).await,
    );
    h.check(
        "risk_05_transaction_without_amount",
        422,
        &decide(event("e-no-amount", "transaction", "alice", json!({}))).await,
    );
    let mut future = event("e-future", "login", "alice", json!({}));
    future["at"] = json!("2026-05-01T09:10:00Z");
    h.check("risk_06_event_in_the_future", 422, &decide(future).await);
    h.check_post(
        "risk_07_decision_without_risk_write",
        403,
        "analyst one",
        "/v1/risk/decisions",
        None,
        event("e-x", "login", "alice", json!({})),
    )
    .await;
    let lists = "/v1/risk/lists";
    h.check_post("risk_08_device_watched", 201, "risk writer", lists, None, json!({"kind": "watch", "field": "device", "value": "d-watch", "reason": "seen in a fraud ring"})).await;
    let review = h.check(
        "risk_09_transaction_on_a_watched_device_reviewed",
        200,
        &decide(event(
            "e2",
            "transaction",
            "bob",
            json!({"device": "d-watch", "merchant": "m1", "amount": cny("120.00")}),
        ))
        .await,
    );
    let case = review["case_id"].as_str().unwrap().to_string();
    let block = h.check_post("risk_10_card_blocked", 201, "risk writer", lists, None, json!({"kind": "block", "field": "card", "value": "card-9", "reason": "reported stolen", "expires_at": "2026-06-01T00:00:00Z"})).await;
    h.check(
        "risk_11_transaction_on_a_blocked_card_rejected",
        200,
        &decide(event(
            "e3",
            "transaction",
            "carol",
            json!({"card": "card-9", "amount": cny("9.99")}),
        ))
        .await,
    );
    h.check_post(
        "risk_12_allow_entry_without_risk_admin",
        403,
        "risk writer",
        lists,
        None,
        json!({"kind": "allow", "field": "customer", "value": "carol", "reason": "vip"}),
    )
    .await;
    h.check_post(
        "risk_13_list_entry_of_an_unknown_kind",
        422,
        "risk writer",
        lists,
        None,
        json!({"kind": "grey", "field": "card", "value": "card-1", "reason": "x"}),
    )
    .await;
    h.check_post("risk_14_list_entry_expiring_in_the_past", 422, "risk writer", lists, None, json!({"kind": "block", "field": "card", "value": "card-1", "reason": "x", "expires_at": "2026-04-01T00:00:00Z"})).await;
    h.check_post(
        "risk_15_allow_entry_by_admin",
        201,
        "admin",
        lists,
        None,
        json!({"kind": "allow", "field": "customer", "value": "carol", "reason": "vip"}),
    )
    .await;
    h.check_get("risk_16_lists", 200, "risk writer", lists)
        .await;
    let entry = format!("{lists}/{}", block["id"].as_str().unwrap());
    h.check_call(
        "risk_17_list_entry_removed",
        200,
        "DELETE",
        &entry,
        Some("risk admin one"),
        None,
        None,
    )
    .await;
    h.check_call(
        "risk_18_list_entry_removed_again",
        404,
        "DELETE",
        &entry,
        Some("risk admin one"),
        None,
        None,
    )
    .await;
    h.check_call(
        "risk_19_list_entry_removed_without_risk_admin",
        403,
        "DELETE",
        &entry,
        Some("risk writer"),
        None,
        None,
    )
    .await;

    // Analysts work the queue a few minutes later.
    h.clock.advance(SignedDuration::from_mins(5));
    let cases = "/v1/risk/cases";
    h.check_get("risk_20_open_cases", 200, "analyst one", cases)
        .await;
    h.check_get(
        "risk_21_cases_of_an_unknown_status",
        400,
        "analyst one",
        &format!("{cases}?status=lost"),
    )
    .await;
    h.check_get(
        "risk_22_cases_limit_out_of_range",
        400,
        "analyst one",
        &format!("{cases}?limit=0"),
    )
    .await;
    let moves = format!("{cases}/{case}");
    h.check_post(
        "risk_23_approved_before_claimed",
        409,
        "analyst one",
        &format!("{moves}/approve"),
        None,
        json!({}),
    )
    .await;
    h.check_post(
        "risk_24_case_claimed",
        200,
        "analyst one",
        &format!("{moves}/claim"),
        None,
        json!({"note": "mine"}),
    )
    .await;
    h.check_post(
        "risk_25_approved_by_another_analyst",
        409,
        "analyst two",
        &format!("{moves}/approve"),
        None,
        json!({}),
    )
    .await;
    h.check_post(
        "risk_26_note_added",
        200,
        "analyst one",
        &format!("{moves}/note"),
        None,
        json!({"note": "called the customer"}),
    )
    .await;
    h.check_post(
        "risk_27_empty_note",
        422,
        "analyst one",
        &format!("{moves}/note"),
        None,
        json!({"note": " "}),
    )
    .await;
    h.check_post(
        "risk_28_unknown_case_action",
        404,
        "analyst one",
        &format!("{moves}/escalate"),
        None,
        json!({}),
    )
    .await;
    h.check_post(
        "risk_29_case_approved",
        200,
        "analyst one",
        &format!("{moves}/approve"),
        None,
        json!({"note": "customer confirmed the order"}),
    )
    .await;
    h.check_get("risk_30_case_read", 200, "analyst one", &moves)
        .await;
    h.check_get(
        "risk_31_case_not_found",
        404,
        "analyst one",
        &format!("{cases}/no-such-case"),
    )
    .await;
    h.check_get(
        "risk_32_evidence",
        200,
        "analyst one",
        &format!("{moves}/evidence"),
    )
    .await;
    h.check_get(
        "risk_33_evidence_of_an_unknown_case",
        404,
        "analyst one",
        &format!("{cases}/no-such-case/evidence"),
    )
    .await;
    let claim = h
        .check_post(
            "risk_34_stolen_account_claimed",
            201,
            "risk writer",
            "/v1/risk/claims",
            None,
            json!({"customer": "dave", "description": "lost my phone"}),
        )
        .await["case"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.check_post(
        "risk_35_claim_without_customer",
        422,
        "risk writer",
        "/v1/risk/claims",
        None,
        json!({"customer": "", "description": "?"}),
    )
    .await;
    let claim = format!("{cases}/{claim}");
    h.step(
        "analyst two",
        &format!("{claim}/claim"),
        "-",
        json!({}),
        200,
    )
    .await;
    h.check_post(
        "risk_36_claim_rejected",
        200,
        "analyst two",
        &format!("{claim}/reject"),
        None,
        json!({"note": "found the phone"}),
    )
    .await;
    h.check_get(
        "risk_37_closed_cases",
        200,
        "analyst one",
        &format!("{cases}?status=approved&limit=10"),
    )
    .await;

    // Rule sets: a version goes live when a second key approves the request of a first.
    h.clock.advance(SignedDuration::from_mins(5));
    let rule_sets = "/v1/risk/rule-sets";
    h.check_get("risk_38_rule_sets", 200, "risk writer", rule_sets)
        .await;
    let broken = tally_risk::DEFAULT_RULES.replacen(
        "condition = \"block_listed\"",
        "condition = \"block_listed &&\"",
        1,
    );
    h.check_post(
        "risk_39_rule_set_that_does_not_compile",
        422,
        "risk admin one",
        rule_sets,
        None,
        json!({"source": broken}),
    )
    .await;
    h.check_post(
        "risk_40_rule_set_that_is_not_toml",
        422,
        "risk admin one",
        rule_sets,
        None,
        json!({"source": "rules = ["}),
    )
    .await;
    h.check_post(
        "risk_41_rule_set_uploaded_without_risk_admin",
        403,
        "risk writer",
        rule_sets,
        None,
        json!({"source": tally_risk::DEFAULT_RULES}),
    )
    .await;
    let gentler =
        tally_risk::DEFAULT_RULES.replacen("action = \"reject\"", "action = \"review\"", 1);
    h.check_post(
        "risk_42_rule_set_uploaded",
        201,
        "risk admin one",
        rule_sets,
        None,
        json!({"source": gentler}),
    )
    .await;
    let request = h
        .check_post(
            "risk_43_activation_requested",
            201,
            "risk admin one",
            &format!("{rule_sets}/2/activation-requests"),
            None,
            json!({"note": "block list reviews"}),
        )
        .await["request"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decision = format!("/v1/risk/activation-requests/{request}");
    h.check_call(
        "risk_44_activation_approved_by_its_requester",
        403,
        "POST",
        &format!("{decision}/approve"),
        Some("risk admin one"),
        None,
        None,
    )
    .await;
    h.check_call(
        "risk_45_activation_approved",
        200,
        "POST",
        &format!("{decision}/approve"),
        Some("risk admin two"),
        None,
        None,
    )
    .await;
    h.check_call(
        "risk_46_activation_approved_again",
        409,
        "POST",
        &format!("{decision}/approve"),
        Some("risk admin two"),
        None,
        None,
    )
    .await;
    h.check_call(
        "risk_47_activation_decision_unknown",
        404,
        "POST",
        &format!("{decision}/maybe"),
        Some("risk admin two"),
        None,
        None,
    )
    .await;
    let rollback = h
        .check_post(
            "risk_48_rollback_requested",
            201,
            "risk admin one",
            &format!("{rule_sets}/1/activation-requests"),
            None,
            json!({}),
        )
        .await["request"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.check_call(
        "risk_49_rollback_rejected",
        200,
        "POST",
        &format!("/v1/risk/activation-requests/{rollback}/reject"),
        Some("risk admin two"),
        None,
        None,
    )
    .await;
    h.check_call(
        "risk_50_activation_request_not_found",
        404,
        "POST",
        "/v1/risk/activation-requests/no-such-request/approve",
        Some("risk admin two"),
        None,
        None,
    )
    .await;
    h.check_post(
        "risk_51_activation_of_an_unknown_version",
        404,
        "risk admin one",
        &format!("{rule_sets}/9/activation-requests"),
        None,
        json!({}),
    )
    .await;
    h.check_post(
        "risk_52_activation_of_a_version_that_is_not_a_number",
        400,
        "risk admin one",
        &format!("{rule_sets}/latest/activation-requests"),
        None,
        json!({}),
    )
    .await;
    h.check_post(
        "risk_53_rule_set_uploaded_with_its_activation_requested",
        201,
        "risk admin one",
        rule_sets,
        None,
        json!({"source": tally_risk::DEFAULT_RULES, "activate": true}),
    )
    .await;
    h.check_get(
        "risk_54_activation_requests",
        200,
        "risk writer",
        "/v1/risk/activation-requests",
    )
    .await;
    h.check_get(
        "risk_55_rule_sets_after_activation",
        200,
        "risk writer",
        rule_sets,
    )
    .await;
    h.post(
        "risk writer",
        lists,
        None,
        json!({"kind": "block", "field": "customer", "value": "mallory", "reason": "test"}),
    )
    .await;
    h.check(
        "risk_56_blocked_customer_reviewed_under_version_2",
        200,
        &decide(event(
            "e4",
            "transaction",
            "mallory",
            json!({"amount": cny("1.00")}),
        ))
        .await,
    );
}

// ----- Keys, authentication and the platform routes -----

async fn keys_and_platform(h: Harness) {
    let health = send(
        &h.router,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    h.check("platform_01_health", 200, &health);
    let account = h
        .step(
            "ledger writer",
            "/v1/accounts",
            "open-bank",
            json!({"code": "1001-bank", "kind": "asset", "currency": "CNY"}),
            201,
        )
        .await;
    let uri = format!("/v1/accounts/{}", account["id"].as_str().unwrap());
    let with_authorization = |value: Option<&str>| {
        let mut request = Request::get(uri.as_str());
        if let Some(value) = value {
            request = request.header(header::AUTHORIZATION, value);
        }
        send(&h.router, request.body(Body::empty()).unwrap())
    };
    h.check(
        "keys_01_without_authorization",
        401,
        &with_authorization(None).await,
    );
    h.check(
        "keys_02_not_a_bearer_key",
        401,
        &with_authorization(Some("Basic YWxpY2U6c2VjcmV0")).await,
    );
    h.check(
        "keys_03_unknown_key",
        401,
        &with_authorization(Some("Bearer tally_not-a-key")).await,
    );
    h.check(
        "keys_04_bearer_scheme_in_another_letter_case",
        200,
        &with_authorization(Some(&format!("bEaReR {}", h.keys["ledger reader"]))).await,
    );
    h.check_get("keys_05_key_without_the_scope", 403, "reader", &uri)
        .await;
    // A key that expires, one revoked, one rotated with a grace period.
    let now = h.clock.now();
    let scopes = vec!["ledger:read".to_string()];
    let temporary = h
        .database
        .create_api_key_expiring(
            "temporary",
            &scopes,
            Some(now + SignedDuration::from_secs(60)),
            now,
        )
        .await
        .unwrap()
        .secret
        .expose()
        .clone();
    let bearer = |secret: &str| format!("Bearer {secret}");
    assert_eq!(
        with_authorization(Some(&bearer(&temporary))).await.status,
        StatusCode::OK
    );
    h.clock.advance(SignedDuration::from_secs(61));
    h.check(
        "keys_06_expired_key",
        401,
        &with_authorization(Some(&bearer(&temporary))).await,
    );
    let revoked = h
        .database
        .create_api_key("revoked", &scopes, h.clock.now())
        .await
        .unwrap();
    let revoked_secret = revoked.secret.expose().clone();
    assert_eq!(
        with_authorization(Some(&bearer(&revoked_secret)))
            .await
            .status,
        StatusCode::OK
    );
    tally_server::auth::revoke(&h.state, &revoked.key.id)
        .await
        .unwrap();
    h.check(
        "keys_07_revoked_key",
        401,
        &with_authorization(Some(&bearer(&revoked_secret))).await,
    );
    let old = h
        .database
        .create_api_key("rotating", &scopes, h.clock.now())
        .await
        .unwrap();
    let old_secret = old.secret.expose().clone();
    let rotated = h
        .database
        .rotate_api_key(
            &old.key.id,
            SignedDuration::from_secs(30),
            None,
            h.clock.now(),
        )
        .await
        .unwrap();
    let new_secret = rotated.secret.expose().clone();
    h.check(
        "keys_08_old_key_within_its_grace",
        200,
        &with_authorization(Some(&bearer(&old_secret))).await,
    );
    h.check(
        "keys_09_new_key",
        200,
        &with_authorization(Some(&bearer(&new_secret))).await,
    );
    // The old key was first read after its rotation: the cache knows its new expiry.
    h.clock.advance(SignedDuration::from_secs(31));
    h.check(
        "keys_10_old_key_after_its_grace",
        401,
        &with_authorization(Some(&bearer(&old_secret))).await,
    );

    h.check_get("platform_02_openapi", 200, "reader", "/v1/openapi.json")
        .await;
    h.check_get(
        "platform_03_metrics_without_metrics_read",
        403,
        "reader",
        "/metrics",
    )
    .await;
    // Metrics count every request of the process (other tests run beside this one): only
    // the status, the content type and the families of Tally's HTTP metrics are stable.
    let metrics = h.get("monitor", "/metrics").await;
    let families: Vec<&str> = std::str::from_utf8(&metrics.body)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("# TYPE tally_http_"))
        .collect();
    let stable = Answer {
        status: metrics.status,
        headers: metrics.headers.clone(),
        body: families.join("\n").into_bytes(),
    };
    h.check("platform_04_metrics_families", 200, &stable);
    h.check_get(
        "platform_05_unknown_route",
        404,
        "reader",
        "/v1/no-such-route",
    )
    .await;
    h.check(
        "platform_06_unknown_route_outside_v1",
        404,
        &send(
            &h.router,
            Request::get("/no-such-route").body(Body::empty()).unwrap(),
        )
        .await,
    );
    h.check_call(
        "platform_07_method_not_allowed",
        405,
        "DELETE",
        &uri,
        Some("ledger reader"),
        None,
        None,
    )
    .await;
    h.check(
        "platform_08_method_not_allowed_on_health",
        405,
        &send(
            &h.router,
            Request::post("/healthz").body(Body::empty()).unwrap(),
        )
        .await,
    );
    h.check_get(
        "platform_09_uri_too_long",
        414,
        "ledger reader",
        &format!("/v1/accounts/{}", "a".repeat(10_000)),
    )
    .await;
    let without_content_type = Request::post("/v1/accounts")
        .header(header::AUTHORIZATION, bearer(&h.keys["ledger writer"]))
        .header("Idempotency-Key", "no-content-type")
        .body(Body::from(
            r#"{"code":"9-x","kind":"asset","currency":"CNY"}"#,
        ))
        .unwrap();
    h.check(
        "platform_10_body_without_content_type",
        415,
        &send(&h.router, without_content_type).await,
    );
    let large = json!({"code": "9-x", "kind": "asset", "currency": "CNY", "metadata": {"note": "x".repeat(70_000)}});
    h.check_post(
        "platform_11_payload_too_large",
        413,
        "ledger writer",
        "/v1/accounts",
        Some("too-large"),
        large,
    )
    .await;
    h.check_post(
        "platform_12_nul_character_in_the_body",
        400,
        "ledger writer",
        "/v1/accounts",
        Some("nul"),
        json!({"code": "9-\u{0}", "kind": "asset", "currency": "CNY"}),
    )
    .await;
    h.check_get(
        "platform_13_nul_character_in_the_query",
        400,
        "ledger reader",
        &format!("{uri}/balance?as_of=%00"),
    )
    .await;

    // A process that serves neither credit, customers nor risk.
    let bare = app(AppState::new(
        h.database.clone(),
        h.writer.clone(),
        h.state.clock.clone(),
        Limits::default(),
    ));
    let on_bare = |method: &str, uri: &str, key: &str, body: Option<Value>| {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, bearer(&h.keys[key]))
            .header("Idempotency-Key", "bare-1");
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        send(&bare, request.body(body).unwrap())
    };
    h.check(
        "platform_14_customers_without_privacy_keys",
        503,
        &on_bare(
            "POST",
            "/v1/customers",
            "clerk",
            Some(json!({"name": "李四", "phone": "13900139000", "national_id": YOUNG_ID})),
        )
        .await,
    );
    h.check(
        "platform_15_credit_without_the_credit_service",
        503,
        &on_bare("GET", "/v1/credit/products", "reader", None).await,
    );
    h.check(
        "platform_16_risk_without_the_risk_service",
        404,
        &on_bare("GET", "/v1/risk/rule-sets", "risk writer", None).await,
    );
}

// ----- Reconciliation of Tally's books -----

/// A run of Tally's books (the bank's file has two rows the books do not) and its
/// worklist: runs, exceptions, an assignment, resolutions with a note and with an adjusting
/// entry, and the refusals.
async fn reconciliation(h: Harness) {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("settlement-2026-04-29.csv");
    std::fs::write(
        &file,
        "record_type,value_date,reference,channel_id,card_last_four,amount,currency,fee\n\
         capture,2026-04-29,bank-only-1,cap_1,4242,10.00,CNY,0.06\n\
         refund,2026-04-29,bank-only-2,ref_2,4242,5.00,CNY,0.00\n\
         trailer,2026-04-29,2,,,15.00,CNY,0.06\n",
    )
    .unwrap();
    let mut options = tally_service::recon::BooksRunOptions::new(
        date(2026, 4, 29),
        file,
        work.path().join("runs"),
    );
    options.threads = 1;
    tally_service::recon::reconcile_books(&h.database, &options, h.clock.now())
        .await
        .unwrap();
    for code in ["recon-suspense-CNY", "bank-differences-CNY"] {
        h.step(
            "ledger writer",
            "/v1/accounts",
            code,
            json!({"code": code, "kind": "asset", "currency": "CNY"}),
            201,
        )
        .await;
    }
    let a = "admin";
    h.check_get("reconciliation_01_runs", 200, a, "/v1/recon/runs")
        .await;
    h.check_get("reconciliation_02_run", 200, a, "/v1/recon/runs/2026-04-29")
        .await;
    h.check_get(
        "reconciliation_03_run_not_found",
        404,
        a,
        "/v1/recon/runs/2026-04-30",
    )
    .await;
    h.check_get(
        "reconciliation_04_exceptions",
        200,
        a,
        "/v1/recon/exceptions?run=2026-04-29&state=open",
    )
    .await;
    h.check_get(
        "reconciliation_05_exceptions_unknown_class",
        422,
        a,
        "/v1/recon/exceptions?class=late",
    )
    .await;
    let first = "/v1/recon/exceptions/rex_20260429_00000001";
    let second = "/v1/recon/exceptions/rex_20260429_00000002";
    h.check_post(
        "reconciliation_06_assign",
        200,
        a,
        &format!("{first}/assign"),
        None,
        json!({"assignee": "ops-li"}),
    )
    .await;
    h.check_post(
        "reconciliation_07_resolve_with_a_note",
        200,
        a,
        &format!("{first}/resolve"),
        None,
        json!({"note": "the bank settled it twice; it reverses it tomorrow"}),
    )
    .await;
    h.check_post(
        "reconciliation_08_resolved_twice",
        409,
        a,
        &format!("{first}/resolve"),
        None,
        json!({"note": "again"}),
    )
    .await;
    let legs = |credit: &str| {
        json!([
            {"account_code": "recon-suspense-CNY", "side": "debit", "amount": "5.00", "currency": "CNY"},
            {"account_code": "bank-differences-CNY", "side": "credit", "amount": credit, "currency": "CNY"}
        ])
    };
    h.check_post(
        "reconciliation_09_adjusting_entry_unbalanced",
        422,
        a,
        &format!("{second}/resolve"),
        None,
        json!({"note": "booked to suspense", "adjusting_entry": {"description": "bank-only refund", "legs": legs("4.99")}}),
    )
    .await;
    h.check_post(
        "reconciliation_10_resolve_with_an_adjusting_entry",
        200,
        a,
        &format!("{second}/resolve"),
        None,
        json!({"note": "booked to suspense", "adjusting_entry": {"description": "bank-only refund", "legs": legs("5.00")}}),
    )
    .await;
    h.check_get(
        "reconciliation_11_exception_not_found",
        404,
        a,
        "/v1/recon/exceptions/rex_missing",
    )
    .await;
    h.check_get(
        "reconciliation_12_forbidden",
        403,
        "ledger writer",
        "/v1/recon/runs",
    )
    .await;
}

// ----- The consortium log (its own router) -----

struct ConsortiumHarness {
    router: Router,
    sequences: Sequences,
    snapshots: Snapshots,
    _test: TestDatabase,
}

impl ConsortiumHarness {
    async fn new(test: TestDatabase) -> Self {
        ConsortiumHarness {
            router: support::consortium::router(&test.database).await,
            sequences: Sequences::default(),
            snapshots: Snapshots::default(),
            _test: test,
        }
    }

    fn check(&self, name: &str, status: u16, answer: &Answer) -> Value {
        self.snapshots.check(name, status, answer)
    }

    async fn get(&self, uri: &str) -> Answer {
        send(&self.router, request("GET", uri, None, None, None)).await
    }

    async fn post(&self, route: &str, body: String) -> Answer {
        let uri = format!("/v1/consortium/{route}");
        send(&self.router, request("POST", &uri, None, None, Some(body))).await
    }

    /// `action` signed by `member` with its next sequence number.
    fn sign(&self, member: &SignerKey, action: Action) -> SignedRequest {
        self.sequences.sign(member, action)
    }

    fn body(request: &SignedRequest, phone: Option<&str>) -> String {
        support::consortium::body(request, phone).to_string()
    }

    async fn act(
        &self,
        route: &str,
        member: &SignerKey,
        action: Action,
        phone: Option<&str>,
    ) -> Answer {
        let request = self.sign(member, action);
        self.post(route, Self::body(&request, phone)).await
    }

    /// A GET checked against snapshot `name` and status `status`; the body as JSON.
    async fn check_get(&self, name: &str, status: u16, uri: &str) -> Value {
        self.check(name, status, &self.get(uri).await)
    }

    /// A POST checked against snapshot `name` and status `status`; the body as JSON.
    async fn check_post(&self, name: &str, status: u16, route: &str, body: String) -> Value {
        self.check(name, status, &self.post(route, body).await)
    }

    /// [`ConsortiumHarness::act`] checked against snapshot `name` and status `status`; the
    /// body as JSON.
    async fn check_act(
        &self,
        name: &str,
        status: u16,
        route: &str,
        member: &SignerKey,
        action: Action,
        phone: Option<&str>,
    ) -> Value {
        let answer = self.act(route, member, action, phone).await;
        self.check(name, status, &answer)
    }
}

tally_store::on_both_backends!(setup = ConsortiumHarness::new; consortium);

async fn consortium(h: ConsortiumHarness) {
    let (a, b, d) = (
        signer("bank-a", 1),
        signer("bank-b", 2),
        signer("bank-d", 4),
    );
    let phone = "+86 138 0013 8000";
    h.check_get("consortium_01_health", 200, "/healthz").await;
    h.check_get(
        "consortium_02_genesis_checkpoint",
        200,
        "/v1/consortium/checkpoint",
    )
    .await;
    h.check_get("consortium_03_members", 200, "/v1/consortium/members")
        .await;
    let published = h.sign(&a, publish_action(phone));
    let body = ConsortiumHarness::body(&published, Some(phone));
    h.check_post(
        "consortium_04_record_published",
        201,
        "records",
        body.clone(),
    )
    .await;
    h.check_post("consortium_05_request_replayed", 409, "records", body)
        .await;
    let mut unsigned = h.sign(&a, publish_action(phone));
    unsigned.signature = [0; 64];
    h.check_post(
        "consortium_06_bad_signature",
        401,
        "records",
        ConsortiumHarness::body(&unsigned, Some(phone)),
    )
    .await;
    h.check_act(
        "consortium_07_publication_without_identifier",
        400,
        "records",
        &a,
        publish_action(phone),
        None,
    )
    .await;
    h.check_act(
        "consortium_08_action_on_the_wrong_route",
        400,
        "records",
        &a,
        query_action(phone),
        Some(phone),
    )
    .await;
    let mismatched = h.sign(&a, publish_action(phone));
    h.check_post(
        "consortium_09_identifier_not_opening_the_commitment",
        422,
        "records",
        ConsortiumHarness::body(&mismatched, Some("+8613900000000")),
    )
    .await;
    h.check_act(
        "consortium_10_query_answered",
        200,
        "queries",
        &b,
        query_action(phone),
        Some(phone),
    )
    .await;
    h.check_get(
        "consortium_11_query_count",
        200,
        "/v1/consortium/members/bank-b/query-count",
    )
    .await;
    h.check_get(
        "consortium_12_query_count_of_an_unknown_member",
        404,
        "/v1/consortium/members/bank-x/query-count",
    )
    .await;
    h.check_act(
        "consortium_13_retraction_by_another_member",
        403,
        "retractions",
        &b,
        Action::RetractRecord {
            record: 1,
            reason: "not mine".into(),
        },
        None,
    )
    .await;
    h.check_act(
        "consortium_14_record_retracted",
        201,
        "retractions",
        &a,
        Action::RetractRecord {
            record: 1,
            reason: "resolved".into(),
        },
        None,
    )
    .await;
    let candidate = signer("bank-c", 3);
    let admission = Action::ProposeAdmission {
        candidate: MemberKey {
            name: "bank-c".into(),
            public_key: candidate.verifier().public_key(),
        },
    };
    let proposal = h
        .check_act(
            "consortium_15_admission_proposed",
            201,
            "proposals",
            &a,
            admission,
            None,
        )
        .await["index"]
        .as_u64()
        .unwrap();
    h.check_act(
        "consortium_16_approved_twice_by_one_member",
        409,
        "approvals",
        &a,
        Action::Approve { proposal },
        None,
    )
    .await;
    h.check_act(
        "consortium_17_admission_approved",
        201,
        "approvals",
        &b,
        Action::Approve { proposal },
        None,
    )
    .await;
    h.check_act(
        "consortium_18_approval_of_an_unknown_proposal",
        404,
        "approvals",
        &b,
        Action::Approve { proposal: 999 },
        None,
    )
    .await;
    h.check_act(
        "consortium_19_publication_by_a_non_member",
        403,
        "records",
        &signer("bank-z", 26),
        publish_action(phone),
        Some(phone),
    )
    .await;
    h.check_act(
        "consortium_20_identifier_with_an_approval",
        400,
        "approvals",
        &b,
        Action::Approve { proposal },
        Some(phone),
    )
    .await;
    for _ in 0..5 {
        let answer = h.act("queries", &d, query_action(phone), Some(phone)).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    h.check_act(
        "consortium_21_query_quota_used_up",
        429,
        "queries",
        &d,
        query_action(phone),
        Some(phone),
    )
    .await;
    h.check_get(
        "consortium_22_members_after_the_story",
        200,
        "/v1/consortium/members",
    )
    .await;
    h.check_get("consortium_23_checkpoint", 200, "/v1/consortium/checkpoint")
        .await;
    h.check_get(
        "consortium_24_inclusion_proof",
        200,
        "/v1/consortium/proofs/inclusion?index=1&size=5",
    )
    .await;
    h.check_get(
        "consortium_25_inclusion_proof_at_the_current_size",
        200,
        "/v1/consortium/proofs/inclusion?index=3",
    )
    .await;
    h.check_get(
        "consortium_26_inclusion_proof_out_of_range",
        400,
        "/v1/consortium/proofs/inclusion?index=99",
    )
    .await;
    h.check_get(
        "consortium_27_inclusion_proof_without_index",
        400,
        "/v1/consortium/proofs/inclusion",
    )
    .await;
    h.check_get(
        "consortium_28_consistency_proof",
        200,
        "/v1/consortium/proofs/consistency?old=1&new=5",
    )
    .await;
    h.check_get(
        "consortium_29_consistency_proof_out_of_range",
        400,
        "/v1/consortium/proofs/consistency?old=99",
    )
    .await;
    h.check_get("consortium_30_entry", 200, "/v1/consortium/entries/1")
        .await;
    h.check_get(
        "consortium_31_entry_not_found",
        404,
        "/v1/consortium/entries/999",
    )
    .await;
    h.check_get(
        "consortium_32_entry_index_not_a_number",
        400,
        "/v1/consortium/entries/first",
    )
    .await;
    h.check_get(
        "consortium_33_entries",
        200,
        "/v1/consortium/entries?start=0&count=3",
    )
    .await;
    h.check_get(
        "consortium_34_entries_past_the_end",
        404,
        "/v1/consortium/entries?start=999",
    )
    .await;
    // Tiles at their C2SP tlog-tiles paths: the partial level-0 tile of the log's 11 entries.
    h.check_get("consortium_35_tile", 200, "/v1/consortium/tile/0/000.p/11")
        .await;
    h.check_get(
        "consortium_36_tile_not_found",
        404,
        "/v1/consortium/tile/5/000",
    )
    .await;
    h.check_get(
        "consortium_37_tile_not_a_number",
        400,
        "/v1/consortium/tile/x/000",
    )
    .await;
    h.check_get("consortium_38_openapi", 200, "/v1/consortium/openapi.json")
        .await;
    h.check_post("consortium_39_malformed_json", 400, "records", "{".into())
        .await;
    h.check_post(
        "consortium_40_request_not_base64",
        400,
        "records",
        json!({"request": "not base64!"}).to_string(),
    )
    .await;
    h.check_get("consortium_41_unknown_route", 404, "/v1/consortium/nothing")
        .await;
    h.check_get(
        "consortium_42_method_not_allowed",
        405,
        "/v1/consortium/records",
    )
    .await;
    h.check_get(
        "consortium_43_entry_bundle",
        200,
        "/v1/consortium/tile/entries/000.p/2",
    )
    .await;
    h.check_get(
        "consortium_44_tile_index_not_in_tlog_tiles_form",
        400,
        "/v1/consortium/tile/0/0",
    )
    .await;
    h.check_get(
        "consortium_45_tile_wider_than_the_log",
        404,
        "/v1/consortium/tile/0/000.p/12",
    )
    .await;
    h.check_get("consortium_46_status", 200, "/v1/consortium/status")
        .await;
}
