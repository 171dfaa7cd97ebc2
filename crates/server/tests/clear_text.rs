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
/// Free text typed beside an operation, naming people, phones and addresses.
const LIST_REASON: &str = "Card reported stolen by Wang Fang, ring 135 0000 1111";
const CONTACT_NOTE: &str = "Spoke to her husband Li Lei on 136 2222 3333, pays Friday";
const READ_REASON: &str = "Complaint from Chen Jing about her statement";
const ERASURE_REASON: &str = "Letter from Sun Li asking to be forgotten, 9 Huaihai Road";
const ACTIVATION_NOTE: &str = "Rollback asked by Zhou Min after a call from 150 4444 5555";
/// A second customer, erased after her risk events were stored.
const ERASED_NAME: &str = "孙丽";
const ERASED_PHONE: &str = "137 0013 7000";
const ERASED_NATIONAL_ID: &str = "110105199003071239";
const ERASED_EVENT_CARD: &str = "4012 8888 8888 1881";
const ERASED_EVENT_ADDRESS: &str = "3 Changle Road, Xuhui";
const ERASED_EVENT_PHONE: &str = "158 0158 0158";
const ERASED_DEVICE: &str = "device-of-sun-li";
const ERASED_IP: &str = "203.0.113.77";

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
    ERASED_NAME,
    ERASED_PHONE,
    ERASED_NATIONAL_ID,
    ERASED_EVENT_CARD,
    ERASED_EVENT_ADDRESS,
    ERASED_EVENT_PHONE,
];

/// Free text: sealed where stored and never logged, but an evidence package (an export for
/// the police) carries the claim, the case's trail and list entries' reasons as written.
const FREE_TEXT: &[&str] = &[
    CLAIM_TEXT,
    CASE_NOTE,
    LIST_REASON,
    CONTACT_NOTE,
    READ_REASON,
    ERASURE_REASON,
    ACTIVATION_NOTE,
];

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
    /// admin, risk:admin and risk:read: erasures, the reads' audit log, activations.
    admin: String,
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
        let admin = app
            .key("admin", &["admin", "risk:admin", "risk:read"])
            .await;
        Harness {
            app,
            clerk,
            analyst,
            reader,
            admin,
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
                json!({"reason": READ_REASON}),
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
        let task = self
            .expect(
                &self.clerk,
                "/v1/credit/tasks",
                None,
                json!({"account_id": account, "kind": "callback", "reason": "asked to be called",
                       "amount": cny("0.00"), "priority": 2}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let contact = self
            .expect(
                &self.clerk,
                &format!("/v1/credit/tasks/{task}/contacts"),
                None,
                json!({"outcome": "reached", "note": CONTACT_NOTE}),
            )
            .await;
        assert_eq!(contact["note"], CONTACT_NOTE, "{contact}");
        let (status, contacts) = self
            .call(
                "GET",
                &format!("/v1/credit/tasks/{task}/contacts"),
                &self.clerk,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{contacts}");
        assert_eq!(contacts["contacts"][0]["note"], CONTACT_NOTE, "{contacts}");
        self.expect(
            &self.analyst,
            "/v1/risk/lists",
            None,
            json!({"kind": "block", "field": "card", "value": BLOCKED_CARD, "reason": LIST_REASON}),
        )
        .await;
        let (status, lists) = self
            .call("GET", "/v1/risk/lists", &self.analyst, None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{lists}");
        assert!(
            lists["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|entry| entry["reason"] == LIST_REASON),
            "the reason is read as written: {lists}"
        );
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
                // The card listed in clear is matched by its fingerprint, and the hit answers
                // the entry's reason as written.
                assert_eq!(decided["decision"]["action"], "reject", "{decided}");
                assert_eq!(
                    decided["decision"]["list_hits"][0]["reason"], LIST_REASON,
                    "{decided}"
                );
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
        let (status, reads) = self
            .call(
                "GET",
                &format!("/v1/customers/{customer}/pii-reads"),
                &self.admin,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reads}");
        let reasons: Vec<&str> = reads["reads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|read| read["reason"].as_str().unwrap())
            .collect();
        assert!(reasons.contains(&READ_REASON), "{reads}");
        assert!(
            reasons
                .iter()
                .any(|reason| reason.starts_with("credit decision")),
            "the opening's read of the date of birth: {reads}"
        );
        let request = self
            .expect(
                &self.admin,
                "/v1/risk/rule-sets/1/activation-requests",
                None,
                json!({"note": ACTIVATION_NOTE}),
            )
            .await;
        assert_eq!(request["request"]["note"], ACTIVATION_NOTE, "{request}");
        let (status, requests) = self
            .call(
                "GET",
                "/v1/risk/activation-requests",
                &self.admin,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{requests}");
        assert_eq!(
            requests["requests"][0]["note"], ACTIVATION_NOTE,
            "{requests}"
        );
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

    /// A second customer whose two risk events carry a device, an IP address, a location, a
    /// card number, a delivery address and a receiving phone (kept sealed in
    /// `consortium_identifiers`): her id, with her events' decisions as stored.
    async fn customer_with_events(&self) -> (String, Vec<String>) {
        let customer = self
            .expect(
                &self.clerk,
                "/v1/customers",
                Some("customer-2"),
                json!({"name": ERASED_NAME, "phone": ERASED_PHONE,
                       "national_id": ERASED_NATIONAL_ID}),
            )
            .await;
        let customer = customer["id"].as_str().unwrap().to_string();
        for id in ["sun-1", "sun-2"] {
            self.expect(
                &self.analyst,
                "/v1/risk/decisions",
                None,
                json!({"id": id, "kind": "transaction", "at": "2026-05-01T09:00:00Z",
                       "customer": customer, "device": ERASED_DEVICE, "ip": ERASED_IP,
                       "geo": {"lat": 31.2, "lon": 121.4}, "merchant": "merchant-7",
                       "card": ERASED_EVENT_CARD, "address": ERASED_EVENT_ADDRESS,
                       "phone": ERASED_EVENT_PHONE, "amount": cny("52.00")}),
            )
            .await;
        }
        let decisions = self
            .rows(&format!(
                "SELECT decision FROM risk_events WHERE customer = '{customer}' ORDER BY sequence"
            ))
            .await;
        assert_eq!(decisions.len(), 2);
        (customer, decisions)
    }

    /// Erases customer `id` for [`ERASURE_REASON`]; the answer reads the reason as written.
    async fn erase(&self, id: &str) -> Value {
        let erased = self
            .expect(
                &self.admin,
                &format!("/v1/customers/{id}/erasure"),
                None,
                json!({"reason": ERASURE_REASON}),
            )
            .await;
        assert_eq!(erased["reason"], ERASURE_REASON, "{erased}");
        erased
    }

    /// The first column of every row `sql` selects, as text.
    async fn rows(&self, sql: &str) -> Vec<String> {
        let sql = sql.to_string();
        tally_store::with_pool!(&self.database, |pool| sqlx::query_as::<_, (String,)>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(text,)| text)
        .collect::<Vec<_>>())
    }

    /// How many `consortium_identifiers` rows customer `id` has.
    async fn kept_identifiers(&self, id: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM consortium_identifiers WHERE customer = '{id}'");
        tally_store::with_pool!(&self.database, |pool| sqlx::query_as::<_, (i64,)>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .fetch_one(pool)
        .await
        .unwrap()
        .0)
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
    an_erased_customers_risk_events_and_consortium_identifiers_keep_no_personal_data,
    tally_privacy_reseal_seals_every_free_text_again,
);

async fn no_personal_value_is_stored_or_logged_in_clear(harness: Harness) {
    harness.write_a_day().await;
    let (erased, _) = harness.customer_with_events().await;
    harness.erase(&erased).await;
    harness.backfill_old_rows().await;
    let stored = harness.dump().await;
    assert!(stored.len() > 10_000, "the dump holds the day's rows");
    let found = found_in("the database", &stored);
    assert!(found.is_empty(), "{found:#?}");
    let found = found_of(FREE_TEXT, "the database", &stored);
    assert!(found.is_empty(), "{found:#?}");
    // Searched where they are kept: both events' card, address and phone, and the
    // customers' phones and delivery addresses the day's gated operations and payments
    // looked up in the consortium; the erased customer's are gone.
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

async fn an_erased_customers_risk_events_and_consortium_identifiers_keep_no_personal_data(
    harness: Harness,
) {
    let (customer, decisions) = harness.customer_with_events().await;
    // Another person's event, which the erasure leaves alone.
    harness
        .expect(
            &harness.analyst,
            "/v1/risk/decisions",
            None,
            json!({"id": "other-1", "kind": "login", "at": "2026-05-01T09:00:00Z",
                   "customer": "lender-customer-7", "device": "device-of-another",
                   "ip": "198.51.100.9", "card": EVENT_CARD, "address": EVENT_ADDRESS,
                   "phone": EVENT_PHONE}),
        )
        .await;
    assert_eq!(harness.kept_identifiers(&customer).await, 6);
    assert_eq!(harness.kept_identifiers("lender-customer-7").await, 3);
    let bodies_of = |customer: &str| {
        format!("SELECT body FROM risk_events WHERE customer = '{customer}' ORDER BY sequence")
    };
    for body in harness.rows(&bodies_of(&customer)).await {
        assert!(body.contains(ERASED_DEVICE), "{body}");
    }

    let erased = harness.erase(&customer).await;
    assert_eq!(erased["erased_now"], true, "{erased}");

    // Her events keep what happened, when, how much and where it was bought, and the decision
    // as it was made; nothing that tells who she is or where.
    let bodies = harness.rows(&bodies_of(&customer)).await;
    assert_eq!(bodies.len(), 2);
    for (body, id) in bodies.iter().zip(["sun-1", "sun-2"]) {
        let event: Value = serde_json::from_str(body).unwrap();
        for field in ["device", "ip", "card", "address", "geo"] {
            assert!(event.get(field).is_none(), "{field} kept: {body}");
        }
        assert_eq!(event["id"], id, "{body}");
        assert_eq!(event["kind"], "transaction", "{body}");
        assert_eq!(event["customer"], customer.as_str(), "{body}");
        assert_eq!(event["merchant"], "merchant-7", "{body}");
        assert!(event.get("amount").is_some(), "{body}");
        assert!(event.get("at").is_some(), "{body}");
    }
    let after = harness
        .rows(&format!(
            "SELECT decision FROM risk_events WHERE customer = '{customer}' ORDER BY sequence"
        ))
        .await;
    assert_eq!(after, decisions, "the fraud record's decisions stay");
    // The identifiers kept for a publication are gone; another person's stay.
    assert_eq!(harness.kept_identifiers(&customer).await, 0);
    assert_eq!(harness.kept_identifiers("lender-customer-7").await, 3);
    let other = harness.rows(&bodies_of("lender-customer-7")).await;
    assert_eq!(other.len(), 1);
    assert!(other[0].contains("device-of-another"), "{other:?}");
    // Nothing of hers is left in any table, in any form (on SQLite, once the WAL holding the
    // pages as they were is emptied, as `tally privacy fingerprint-events` does).
    if matches!(harness.database, tally_store::Database::Sqlite(_)) {
        assert!(harness.database.truncate_write_ahead_log().await.unwrap());
    }
    let stored = harness.dump().await;
    let found = found_of(
        &[
            ERASED_DEVICE,
            ERASED_IP,
            ERASED_NAME,
            ERASED_PHONE,
            ERASED_NATIONAL_ID,
        ],
        "the database",
        &stored,
    );
    assert!(found.is_empty(), "{found:#?}");

    // Asked again, the erasure answers the first one, its reason as written.
    let again = harness.erase(&customer).await;
    assert_eq!(again["erased_now"], false, "{again}");
}

async fn tally_privacy_reseal_seals_every_free_text_again(harness: Harness) {
    use tally_store::sealed_texts::TextColumn;
    harness.write_a_day().await;
    let (erased, _) = harness.customer_with_events().await;
    harness.erase(&erased).await;
    // A reason written in clear before reasons were sealed: the walk seals it.
    harness
        .database
        .record_pii_reads(&[tally_store::customers::PiiRead {
            id: "0-written-in-clear".into(),
            at: jiff::Timestamp::now(),
            api_key_id: "key-0".into(),
            principal: "auditor".into(),
            customer_id: erased.clone(),
            field: "name".into(),
            reason: "written in clear".into(),
        }])
        .await
        .unwrap();
    let expected: [(TextColumn, &[&str]); 5] = [
        (TextColumn::ListEntryReason, &[LIST_REASON]),
        (TextColumn::ContactNote, &[CONTACT_NOTE]),
        (
            TextColumn::PiiReadReason,
            &[READ_REASON, "written in clear"],
        ),
        (TextColumn::ErasureReason, &[ERASURE_REASON]),
        (TextColumn::ActivationNote, &[ACTIVATION_NOTE]),
    ];
    let rotated = support::privacy_keys(&[("a", 7), ("b", 8)], "b");
    let report = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 2)
        .await
        .unwrap();
    let walked: u64 = report.texts.values().sum();
    assert_eq!(report.texts_resealed, walked, "{report:?}");
    for (column, texts) in expected {
        let stored = harness
            .database
            .texts_after(column, "", 1000)
            .await
            .unwrap();
        assert_eq!(
            report.texts.get(column.as_str()).copied(),
            Some(stored.len() as u64),
            "{report:?}"
        );
        let opened: Vec<String> = stored
            .iter()
            .map(|text| {
                assert!(text.text.starts_with("v1:b:"), "{column:?}: {text:?}");
                tally_service::sealed_texts::open_text(
                    Some(&rotated),
                    column,
                    &text.owner,
                    &text.text,
                )
            })
            .collect();
        for text in texts {
            assert!(
                opened.iter().any(|opened| opened == text),
                "{column:?}: {opened:?}"
            );
        }
    }
    let again = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 2)
        .await
        .unwrap();
    assert_eq!(again.texts, report.texts);
    assert_eq!(again.texts_resealed, 0, "{again:?}");
}
