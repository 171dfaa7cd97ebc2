//! No personal data in clear anywhere, on SQLite and PostgreSQL: a lender's day is written
//! through the API (a customer with name, phone and national id, her address and bank card
//! changed, read in clear with a reason, a credit line opened, a purchase to a delivery
//! address authorised and captured, a repayment, risk events carrying a raw card number, a
//! street address and a receiving phone (Tally a consortium member, so they are kept sealed
//! for a publication in `consortium_identifiers`), a block list entry on a card number, a
//! stolen-account claim and its evidence package), her name changed, a claim description and
//! a case note that name people, phones and addresses (sealed; the evidence package, an export
//! for the police, may carry them), and risk rows stored in clear before fingerprinting then
//! rewritten by the backfill walk, with every log line at the most verbose level captured; then the
//! database files (SQLite: the file, its `-wal` and `-shm`; PostgreSQL: every table of the
//! schema as text) and the log are searched for every clear value, in the forms it could take
//! (as typed, digits only, normalised, lower and upper case, UTF-16), and none is found. The
//! search is then shown to find one value written in clear by hand, so it cannot pass by
//! looking nowhere.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tally_store::testing::TestDatabase;

mod support;
use support::{application, cny, privacy, Setup, TestApp};

const NAME: &str = "欧阳娜娜";
const PHONE: &str = "139 1234 5678";
const NATIONAL_ID: &str = "11010519491231002X";
const HOME_ADDRESS: &str = "Flat 7, 88 Xiangyang Lane, Xuhui";
const BOUND_CARD: &str = "4111 1111 1111 1111";
const DELIVERY_ADDRESS: &str = "Room 12, 300 Quyang Avenue, Hongkou";
const EVENT_CARD: &str = "5500-0000-0000-0004";
const EVENT_ADDRESS: &str = "17 Wulumuqi Road, Jing'an";
const EVENT_PHONE: &str = "138 2468 1357";
const BLOCKED_CARD: &str = "4000 0000 0000 0002";
const NEW_NAME: &str = "欧阳晓晓";
const CLAIM_TEXT: &str = "My brother-in-law Zhao Gang used my phone, ring him on 137 6543 2100";
const CASE_NOTE: &str = "Called back at 186 1234 0099, she is at 5 Fuxing Road now";
/// A card and an address stored in clear before fingerprinting, then backfilled.
const OLD_EVENT_CARD: &str = "3782 822463 10005";
const OLD_EVENT_ADDRESS: &str = "66 Nanjing West Road, Jing'an";
const OLD_LISTED_CARD: &str = "6011 1111 1111 1117";

/// Every form a clear value could be found in: as typed, trimmed of separators, digits only,
/// normalised (E.164, lower case), upper case, and UTF-16 (little and big endian) for those.
fn forms(value: &str) -> Vec<Vec<u8>> {
    let mut texts = vec![
        value.to_string(),
        value.to_lowercase(),
        value.to_uppercase(),
    ];
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 8 {
        texts.push(digits.clone());
    }
    if value == PHONE || value == EVENT_PHONE {
        texts.push(format!("+86{digits}"));
        texts.push(format!("86{digits}"));
    }
    let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
    texts.push(collapsed.to_lowercase());
    let mut forms: Vec<Vec<u8>> = Vec::new();
    for text in texts {
        forms.push(text.as_bytes().to_vec());
        forms.push(text.encode_utf16().flat_map(u16::to_le_bytes).collect());
        forms.push(text.encode_utf16().flat_map(u16::to_be_bytes).collect());
        // As serde_json or a Debug print escapes non-ASCII text.
        if !text.is_ascii() {
            let escaped: String = text
                .encode_utf16()
                .map(|unit| format!("\\u{unit:04x}"))
                .collect();
            forms.push(escaped.into_bytes());
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

const VALUES: &[&str] = &[
    NAME,
    PHONE,
    NATIONAL_ID,
    HOME_ADDRESS,
    BOUND_CARD,
    DELIVERY_ADDRESS,
    EVENT_CARD,
    EVENT_ADDRESS,
    EVENT_PHONE,
    BLOCKED_CARD,
    NEW_NAME,
    OLD_EVENT_CARD,
    OLD_EVENT_ADDRESS,
    OLD_LISTED_CARD,
];

/// Free text: sealed where stored and never logged, but an evidence package (an export for
/// the police) carries the claim and the case's trail as written.
const FREE_TEXT: &[&str] = &[CLAIM_TEXT, CASE_NOTE];

/// The clear values (and the form) found in `haystack`, named by `place`.
fn found_in(place: &str, haystack: &[u8]) -> Vec<String> {
    found_of(VALUES, place, haystack)
}

/// The values of `values` (and the form) found in `haystack`, named by `place`.
fn found_of(values: &[&str], place: &str, haystack: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for value in values {
        for form in forms(value) {
            if memchr::memmem::find(haystack, &form).is_some() {
                found.push(format!(
                    "{value:?} in {place} as {:?}",
                    String::from_utf8_lossy(&form)
                ));
            }
        }
    }
    found
}

/// Every log line of this test binary, at the most verbose level.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Harness {
    app: TestApp,
    clerk: String,
    analyst: String,
    reader: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        log();
        let setup = Setup::default().privacy(privacy()).credit().risk();
        let mut app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        // A member of a consortium log that cannot be reached: lookups find nothing, and
        // the events' card numbers, addresses and phones are kept sealed all the same.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let clock: Arc<dyn tally_core::Clock> = app.clock.clone();
        let member = tally_service::consortium::member_client::MemberClient::new(
            tally_service::consortium::member_client::MemberSettings {
                url,
                consortium: support::consortium::CONSORTIUM.into(),
                key: Arc::new(support::consortium::signer("bank-a", 1)),
                log_key: support::consortium::operator_key().verifier(),
                lookup_timeout: std::time::Duration::from_millis(200),
                hit_seconds: 60,
                miss_seconds: 60,
                queries_per_day: 100,
                record_days: 30,
            },
            clock.clone(),
        )
        .unwrap()
        .with_privacy(app.state.privacy.clone());
        let risk = tally_service::risk::RiskService::open(&app.database, clock)
            .await
            .unwrap()
            .with_consortium(Some(Arc::new(member)))
            .with_privacy(app.state.privacy.clone());
        app.risk = Some(Arc::new(risk));
        app.serve();
        let clerk = app.key("clerk", &["credit:write", "credit:read"]).await;
        let analyst = app
            .key("analyst", &["risk:write", "risk:analyst", "risk:read"])
            .await;
        let reader = app.key("reader", &["pii:read"]).await;
        Harness {
            app,
            clerk,
            analyst,
            reader,
        }
    }

    async fn expect(&self, key: &str, uri: &str, idempotency: Option<&str>, body: Value) -> Value {
        let (status, answer) = self.call("POST", uri, key, idempotency, Some(body)).await;
        assert!(status.is_success(), "{uri}: {status} {answer}");
        answer
    }

    /// A lender's day that touches every personal value.
    async fn write_a_day(&self) {
        let customer = self
            .expect(
                &self.clerk,
                "/v1/customers",
                Some("customer-1"),
                json!({"name": NAME, "phone": PHONE, "national_id": NATIONAL_ID}),
            )
            .await;
        let customer = customer["id"].as_str().unwrap().to_string();
        let revealed = self
            .expect(
                &self.reader,
                &format!("/v1/customers/{customer}/reveal"),
                None,
                json!({"reason": "ticket 42"}),
            )
            .await;
        assert_eq!(revealed["name"], NAME, "the reveal answers in clear");
        let mut opening = application(&customer, true);
        opening["device"] = json!("phone-1");
        let opened = self
            .expect(&self.clerk, "/v1/credit/accounts", Some("open-1"), opening)
            .await;
        let account = opened["account"]["id"].as_i64().unwrap();
        self.expect(
            &self.clerk,
            &format!("/v1/customers/{customer}/address"),
            Some("address-1"),
            json!({"address": HOME_ADDRESS, "device": "phone-1"}),
        )
        .await;
        self.expect(
            &self.clerk,
            &format!("/v1/customers/{customer}/bank-card"),
            Some("card-1"),
            json!({"card_number": BOUND_CARD, "device": "phone-1"}),
        )
        .await;
        self.expect(
            &self.clerk,
            &format!("/v1/credit/accounts/{account}/authorizations"),
            Some("buy-1"),
            json!({"amount": cny("120.00"), "device": "phone-1", "delivery_address": DELIVERY_ADDRESS}),
        )
        .await;
        self.expect(
            &self.clerk,
            &format!("/v1/credit/accounts/{account}/authorizations/1/capture"),
            Some("capture-1"),
            json!({"product": "installment", "periods": 3}),
        )
        .await;
        self.expect(
            &self.clerk,
            &format!("/v1/credit/accounts/{account}/repayments"),
            Some("repay-1"),
            json!({"amount": cny("40.00")}),
        )
        .await;
        self.expect(
            &self.analyst,
            "/v1/risk/lists",
            None,
            json!({"kind": "block", "field": "card", "value": BLOCKED_CARD, "reason": "reported stolen"}),
        )
        .await;
        for (id, card) in [("e-1", EVENT_CARD), ("e-2", BLOCKED_CARD)] {
            let decided = self
                .expect(
                    &self.analyst,
                    "/v1/risk/decisions",
                    None,
                    json!({"id": id, "kind": "transaction", "at": "2026-05-01T09:00:00Z",
                           "customer": customer, "device": "phone-1", "card": card,
                           "address": EVENT_ADDRESS, "phone": EVENT_PHONE,
                           "amount": cny("35.00")}),
                )
                .await;
            if card == BLOCKED_CARD {
                // The card listed in clear is matched by its fingerprint.
                assert_eq!(decided["decision"]["action"], "reject", "{decided}");
            }
        }
        self.expect(
            &self.clerk,
            &format!("/v1/customers/{customer}/name"),
            Some("name-1"),
            json!({"name": NEW_NAME, "device": "phone-1"}),
        )
        .await;
        let claim = self
            .expect(
                &self.analyst,
                "/v1/risk/claims",
                None,
                json!({"customer": customer, "description": CLAIM_TEXT}),
            )
            .await;
        let case = claim["case"]["id"].as_str().unwrap();
        assert_eq!(claim["case"]["summary"], CLAIM_TEXT, "{claim}");
        self.expect(
            &self.analyst,
            &format!("/v1/risk/cases/{case}/note"),
            None,
            json!({"note": CASE_NOTE}),
        )
        .await;
        // Analysts still read what they typed.
        let (status, shown) = self
            .call(
                "GET",
                &format!("/v1/risk/cases/{case}"),
                &self.analyst,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(shown["case"]["summary"], CLAIM_TEXT, "{shown}");
        assert!(
            shown["log"]
                .as_array()
                .unwrap()
                .iter()
                .any(|line| line["note"] == CASE_NOTE),
            "{shown}"
        );
        let revealed = self
            .expect(
                &self.reader,
                &format!("/v1/customers/{customer}/reveal"),
                None,
                json!({"reason": "ticket 43"}),
            )
            .await;
        assert_eq!(revealed["name"], NEW_NAME, "the new name is read in clear");
        let (status, evidence) = self
            .call(
                "GET",
                &format!("/v1/risk/cases/{case}/evidence"),
                &self.analyst,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{evidence}");
        let exported = evidence.to_string();
        assert!(
            found_in("the evidence package", exported.as_bytes()).is_empty(),
            "{exported}"
        );
        assert!(
            evidence["cards"]
                .as_array()
                .is_some_and(|cards| !cards.is_empty()),
            "{evidence}"
        );
    }

    /// A risk event and a list entry as stored before cards and addresses were
    /// fingerprinted, rewritten by the backfill walk (`tally privacy fingerprint-events`).
    async fn backfill_old_rows(&self) {
        let body = json!({
            "id": "old-1", "kind": "login", "at": "2026-04-30T09:00:00Z",
            "customer": "lender-customer-9", "card": OLD_EVENT_CARD,
            "address": OLD_EVENT_ADDRESS,
        });
        let store = tally_store::risk::RiskStore::new(self.database.clone());
        let row = tally_store::risk::EventRow {
            sequence: 1_000_000,
            event_id: "old-1".into(),
            customer: "lender-customer-9".into(),
            at: 1_777_539_600_000_000,
            body: body.to_string(),
            action: "approve".into(),
            version: 1,
            decision: "{}".into(),
            decided_at: 1_777_539_600_000_000,
        };
        store
            .insert_events(&[tally_store::risk::DecisionRows::event(row)])
            .await
            .unwrap();
        store
            .insert_list_entry(&tally_store::risk::ListEntryRow {
                id: "old-entry".into(),
                kind: "watch".into(),
                field: "card".into(),
                value: OLD_LISTED_CARD.into(),
                reason: "old".into(),
                source: "analyst".into(),
                added_at: 0,
                added_by: "analyst".into(),
                expires_at: None,
            })
            .await
            .unwrap();
        let report = tally_service::risk_fingerprints::backfill(
            &self.database,
            &privacy(),
            0,
            100,
            None,
            jiff::Timestamp::now(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            (report.events_rewritten, report.list_entries_rewritten),
            (1, 1),
            "{report:?}"
        );
        assert!(self.database.truncate_write_ahead_log().await.unwrap());
    }

    /// Every text of every table of the database, one row per line.
    async fn dump(&self) -> Vec<u8> {
        match &self.database {
            tally_store::Database::Sqlite(_) => {
                // The files themselves, WAL and shared memory included.
                let path = self.test.url.trim_start_matches("sqlite://").to_string();
                let mut bytes = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    if let Ok(file) = std::fs::read(format!("{path}{suffix}")) {
                        bytes.extend(file);
                    }
                }
                bytes
            }
            tally_store::Database::Postgres(pool) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                assert!(tables.len() > 20, "{tables:?}");
                let mut bytes = Vec::new();
                for (table,) in tables {
                    let sql = format!(
                        "SELECT COALESCE(string_agg(row_text, E'\\n'), '') \
                         FROM (SELECT t::text AS row_text FROM \"{table}\" t) dumped"
                    );
                    let (text,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    bytes.extend(text.into_bytes());
                    bytes.push(b'\n');
                }
                bytes
            }
        }
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    no_personal_value_is_stored_or_logged_in_clear,
);

async fn no_personal_value_is_stored_or_logged_in_clear(harness: Harness) {
    harness.write_a_day().await;
    harness.backfill_old_rows().await;
    let stored = harness.dump().await;
    assert!(stored.len() > 10_000, "the dump holds the day's rows");
    let found = found_in("the database", &stored);
    assert!(found.is_empty(), "{found:#?}");
    let found = found_of(FREE_TEXT, "the database", &stored);
    assert!(found.is_empty(), "{found:#?}");
    // Searched where they are kept: both events' card, address and phone, and the
    // customers' phones and delivery addresses the day's gated operations and payments
    // looked up in the consortium (ten more).
    let kept = tally_store::with_pool!(&harness.database, |pool| sqlx::query_as::<_, (i64,)>(
        "SELECT COUNT(*) FROM consortium_identifiers"
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .0);
    assert_eq!(kept, 16);
    let logged = log().lock().unwrap().clone();
    assert!(!logged.is_empty(), "the log was captured");
    let found = found_in("the log", &logged);
    assert!(found.is_empty(), "{found:#?}");
    let found = found_of(FREE_TEXT, "the log", &logged);
    assert!(found.is_empty(), "{found:#?}");

    // The search finds a value that is in clear: one written by hand where an event's card
    // would be.
    // Bound, not written into the statement: statements are logged, and the other backend's
    // test searches the same log.
    let sql = "UPDATE risk_events SET body = body || $1 WHERE event_id = 'e-1'";
    tally_store::with_pool!(&harness.database, |pool| sqlx::query(sql)
        .bind(EVENT_CARD)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected());
    let found = found_in("the database", &harness.dump().await);
    assert!(
        found
            .iter()
            .any(|line| line.starts_with(&format!("{EVENT_CARD:?}"))),
        "{found:#?}"
    );
}
