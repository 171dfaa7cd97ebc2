//! In-process HTTP tests of customers on SQLite and PostgreSQL: personal data sealed at
//! rest, found through blind indexes, masked unless read with `pii:read` and a reason in the
//! body (`POST /v1/customers/{id}/reveal`; the old query form is gone), every field read in
//! clear on the append-only audit log, idempotent creation, and reads
//! across a rotation of the encryption key; lookups in the body only, rate limited per key
//! and audited before the answer, and logs that hold no query string, body or key.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tally_core::Clock;
use tally_privacy::Privacy;
use tally_server::state::Limits;
use tally_server::{app, AppState};
use tally_store::testing::TestDatabase;
use tally_store::Database;
use tower::ServiceExt;

mod support;
use support::{code, Setup, TestApp};

/// Zhang San of GB 11643-1999's example: born 1949-12-31.
const NATIONAL_ID: &str = "11010519491231002X";
const PHONE: &str = "13800138000";

struct Harness {
    app: TestApp,
    admin: String,
    creator: String,
    reader: String,
    pii_reader: String,
}

support::deref_to_app!(Harness);

/// Privacy keys: encryption keys `ids` (key `id` is 32 bytes of its first character),
/// `active` sealing new values, one blind index key throughout.
/// A stored read's reason opened under key `a`.
fn opened_reason(read: &tally_store::customers::PiiRead) -> String {
    tally_service::sealed_texts::open_text(
        Some(&privacy(&["a"], "a")),
        tally_store::sealed_texts::TextColumn::PiiReadReason,
        &read.id,
        &read.reason,
    )
}

fn privacy(ids: &[&str], active: &str) -> Arc<Privacy> {
    let keys: Vec<(&str, u8)> = ids.iter().map(|id| (*id, id.as_bytes()[0])).collect();
    support::privacy_keys(&keys, active)
}

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let limits = Limits {
            body_limit_bytes: 4096,
            batch_body_limit_bytes: 64 * 1024,
            page_size_max: 1000,
        };
        let setup = Setup::default()
            .limits(limits)
            .privacy(privacy(&["a"], "a"));
        let app = TestApp::start(test, "2026-05-01T00:00:00.123456789Z", setup).await;
        let admin = app.key("admin", &["admin"]).await;
        let creator = app.key("onboarding", &["credit:write"]).await;
        let reader = app.key("collections", &["credit:read"]).await;
        let pii_reader = app.key("compliance", &["credit:read", "pii:read"]).await;
        Self {
            app,
            admin,
            creator,
            reader,
            pii_reader,
        }
    }

    /// Serves the same database with other privacy keys (a restart with a new config).
    fn use_privacy(&mut self, privacy: Option<Arc<Privacy>>) {
        self.app.setup.privacy = privacy;
        self.app.serve();
    }

    async fn create(&self, idempotency: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/v1/customers",
            &self.creator,
            Some(idempotency),
            Some(body),
        )
        .await
    }

    async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.call("GET", uri, key, None, None).await
    }

    /// `POST /v1/customers/{id}/reveal` with `reason` in the body (none: an empty object).
    async fn reveal(&self, id: &str, key: &str, reason: Option<&str>) -> (StatusCode, Value) {
        let body = match reason {
            Some(reason) => json!({ "reason": reason }),
            None => json!({}),
        };
        let uri = format!("/v1/customers/{id}/reveal");
        self.call("POST", &uri, key, None, Some(body)).await
    }

    /// `POST /v1/customers/search` with `body`.
    async fn search(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", "/v1/customers/search", key, None, Some(body))
            .await
    }

    /// Creates Zhang San and returns his id.
    async fn zhang_san(&self) -> String {
        let (status, body) = self
            .create(
                "create-zhang-san",
                json!({"name": "张三", "phone": PHONE, "national_id": NATIONAL_ID}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn counts(&self) -> (i64, i64, i64) {
        (
            self.scalar("SELECT COUNT(*) FROM customers").await,
            self.scalar("SELECT COUNT(*) FROM customer_idempotency_keys")
                .await,
            self.scalar("SELECT COUNT(*) FROM pii_reads").await,
        )
    }

    /// The stored row of a customer, every column as text.
    async fn raw_row(&self, id: &str) -> Vec<String> {
        let sql = "SELECT name, phone, national_id, date_of_birth, phone_index, \
                   national_id_index FROM customers WHERE id = $1";
        let row: (String, String, String, String, String, String) =
            tally_store::with_pool!(&self.database, |pool| sqlx::query_as(sql)
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap());
        vec![row.0, row.1, row.2, row.3, row.4, row.5]
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    created_customers_are_read_masked,
    personal_data_is_not_stored_in_clear,
    one_person_is_one_customer,
    invalid_input_is_refused_with_its_code,
    creation_is_idempotent,
    customers_are_found_by_phone_or_national_id_in_any_form,
    the_lookup_in_the_query_string_is_gone,
    lookups_are_rate_limited_per_key,
    every_lookup_is_audited_before_the_answer,
    logs_hold_no_query_string_body_or_key,
    reading_in_clear_needs_pii_read_and_a_reason_and_is_audited,
    a_read_in_clear_carries_its_reason_in_the_body,
    the_read_in_clear_in_the_query_string_is_gone,
    a_read_in_clear_that_cannot_be_audited_shows_nothing,
    the_audit_log_cannot_be_changed,
    values_stay_readable_after_the_key_rotates,
    resealing_retires_the_old_key,
    resealing_stops_at_a_value_that_does_not_open,
    without_privacy_keys_customers_are_unavailable,
    each_route_needs_its_scope,
    erasure_destroys_personal_data_and_keeps_the_customer_id,
    erasure_is_refused_with_its_codes,
    the_blind_index_key_rotates_with_lookups_working_throughout,
);

async fn created_customers_are_read_masked(harness: Harness) {
    let (status, created) = harness
        .create(
            "create-1",
            json!({"name": "张三", "phone": "+86 138 0013 8000", "national_id": "11010519491231002x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["masked"], true);
    // Last four of phone and national id, first character of the name, no birth date.
    assert_eq!(created["name"], "张*");
    assert_eq!(created["phone"], "*******8000");
    assert_eq!(created["national_id"], "**************002X");
    assert_eq!(created["date_of_birth"], "****-**-**");
    assert_eq!(created["created_at"], "2026-05-01T00:00:00.123456Z");
    let id = created["id"].as_str().unwrap();
    let (status, read) = harness
        .get(&format!("/v1/customers/{id}"), &harness.reader)
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, created);
    assert!(harness.database.customer_exists(id).await.unwrap());
    let stored = harness.database.customer(id).await.unwrap().unwrap();
    let born = tally_service::customers::date_of_birth(&privacy(&["a"], "a"), &stored);
    assert_eq!(born.unwrap(), jiff::civil::date(1949, 12, 31));
    assert!(!harness
        .database
        .customer_exists("0196a3b4-0000-7000-8000-000000000000")
        .await
        .unwrap());
    let (status, body) = harness
        .get(
            "/v1/customers/0196a3b4-0000-7000-8000-000000000000",
            &harness.reader,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "customer_not_found")
    );
    let (status, body) = harness.get("/v1/customers/nope", &harness.reader).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    let (status, body) = harness
        .create(
            "create-2",
            json!({"name": "John Smith", "phone": "+44 7911 123456", "national_id": "440306198506123458"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "J********");
    assert_eq!(body["phone"], "*******3456");
    assert_eq!(body["national_id"], "**************3458");
}

async fn personal_data_is_not_stored_in_clear(harness: Harness) {
    let id = harness.zhang_san().await;
    let row = harness.raw_row(&id).await;
    for sealed in &row[..4] {
        assert!(sealed.starts_with("v1:a:"), "{sealed}");
    }
    let everything = row.join(" ");
    // Short fragments could occur in random base64 by chance; these cannot.
    for clear in ["13800138000", NATIONAL_ID, "1949-12-31", "19491231", "张"] {
        assert!(
            !everything.contains(clear),
            "{clear:?} appears in the stored row"
        );
    }
    // The indexes are 256-bit HMACs in hex.
    assert_eq!(row[4].len(), 64);
    assert_eq!(row[5].len(), 64);
}

async fn one_person_is_one_customer(harness: Harness) {
    harness.zhang_san().await;
    let (status, body) = harness
        .create(
            "same-phone",
            json!({"name": "李四", "phone": "+86 138-0013-8000", "national_id": "110101199003077774"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "customer_phone_taken"),
        "{body}"
    );
    let (status, body) = harness
        .create(
            "same-national-id",
            json!({"name": "张三", "phone": "13900139000", "national_id": "11010519491231002x"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "customer_national_id_taken"),
        "{body}"
    );
    assert_eq!(harness.counts().await, (1, 1, 0));
    // A refused creation does not consume its key: corrected, it goes through.
    let (status, body) = harness
        .create(
            "same-phone",
            json!({"name": "李四", "phone": "13900139000", "national_id": "110101199003077774"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(harness.counts().await, (2, 2, 0));
}

async fn invalid_input_is_refused_with_its_code(harness: Harness) {
    let valid = json!({"name": "张三", "phone": PHONE, "national_id": NATIONAL_ID});
    let with = |field: &str, value: &str| {
        let mut body = valid.clone();
        body[field] = json!(value);
        body
    };
    for (body, expected) in [
        (
            with("national_id", "110105194912310021"),
            "national_id_checksum_invalid",
        ),
        (
            with("national_id", "11010519491231002"),
            "invalid_national_id",
        ),
        (
            with("national_id", "110101199002300014"),
            "invalid_national_id",
        ),
        (with("phone", "12345"), "invalid_phone"),
        (with("phone", "+86 23800138000"), "invalid_phone"),
        (with("name", "   "), "invalid_name"),
        (json!({"name": "张三", "phone": PHONE}), "invalid_request"),
        (
            json!({"name": "张三", "phone": PHONE, "national_id": NATIONAL_ID, "date_of_birth": "1949-12-31"}),
            "unknown_field",
        ),
    ] {
        let (status, answer) = harness.create("invalid", body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, expected),
            "{body}: {answer}"
        );
    }
    let (status, answer) = harness
        .call("POST", "/v1/customers", &harness.creator, None, Some(valid))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::BAD_REQUEST, "idempotency_key_required")
    );
    assert_eq!(harness.counts().await, (0, 0, 0));
}

async fn creation_is_idempotent(harness: Harness) {
    let id = harness.zhang_san().await;
    // The same request, written differently, under the same key: the same customer.
    let (status, replay) = harness
        .create(
            "create-zhang-san",
            json!({"name": " 张三 ", "phone": "+86 138-0013-8000", "national_id": "11010519491231002x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{replay}");
    assert_eq!(replay["id"], id.as_str());
    assert_eq!(replay["phone"], "*******8000");
    let (status, body) = harness
        .create(
            "create-zhang-san",
            json!({"name": "李四", "phone": "13900139000", "national_id": "110101199003077774"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    assert_eq!(harness.counts().await, (1, 1, 0));
}

async fn customers_are_found_by_phone_or_national_id_in_any_form(harness: Harness) {
    let id = harness.zhang_san().await;
    for lookup in [
        json!({"phone": "+86 138-0013-8000"}),
        json!({"phone": "13800138000", "reason": "call 1"}),
        json!({"national_id": "11010519491231002x"}),
        json!({"phone": "008613800138000", "national_id": null}),
    ] {
        let (status, body) = harness.search(&harness.reader, lookup.clone()).await;
        assert_eq!(status, StatusCode::OK, "{lookup}: {body}");
        let customers = body["customers"].as_array().unwrap();
        assert_eq!(customers.len(), 1, "{lookup}");
        assert_eq!(customers[0]["id"], id.as_str());
        assert_eq!(customers[0]["masked"], true);
        assert_eq!(customers[0]["phone"], "*******8000");
    }
    let (status, body) = harness
        .search(&harness.reader, json!({"phone": "13900139000"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customers"], json!([]));
    for (lookup, expected) in [
        (json!({}), "lookup_field_required"),
        (
            json!({"phone": "13800138000", "national_id": "11010519491231002X"}),
            "too_many_lookup_fields",
        ),
        (json!({"phone": "12"}), "invalid_phone"),
        (
            json!({"national_id": "110105194912310021"}),
            "national_id_checksum_invalid",
        ),
        (
            json!({"phone": "13800138000", "reason": "a\u{7}b"}),
            "invalid_reason",
        ),
        (json!({"email": "a@b.c"}), "unknown_field"),
    ] {
        let (status, body) = harness.search(&harness.reader, lookup.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, expected),
            "{lookup}: {body}"
        );
    }
}

/// Every personal value of Zhang San as it would be shown in clear, in the forms an answer
/// could carry it.
const CLEAR_VALUES: [&str; 6] = [
    "张三",
    PHONE,
    "+8613800138000",
    NATIONAL_ID,
    "1949-12-31",
    "19491231",
];

/// The audit rule, checked on an answer: if it shows any personal value in clear, every field
/// it shows is on the audit log for that customer with that reason.
async fn assert_shown_only_if_audited(
    harness: &Harness,
    id: &str,
    reason: &str,
    status: StatusCode,
    body: &Value,
) {
    let text = body.to_string();
    let shown: Vec<&str> = ["name", "phone", "national_id", "date_of_birth"]
        .into_iter()
        .filter(|field| {
            body[*field]
                .as_str()
                .is_some_and(|value| CLEAR_VALUES.iter().any(|clear| value.contains(clear)))
        })
        .collect();
    let leaked = CLEAR_VALUES.iter().any(|clear| text.contains(clear));
    if !leaked {
        return;
    }
    let audited: Vec<String> = harness
        .database
        .pii_reads(id, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|read| opened_reason(read) == reason)
        .map(|read| read.field)
        .collect();
    let unaudited: Vec<&&str> = shown
        .iter()
        .filter(|field| !audited.iter().any(|audited| audited == *field))
        .collect();
    assert!(
        !shown.is_empty() && unaudited.is_empty(),
        "an answer ({status}) showed personal data not on the audit log: fields {unaudited:?} \
         shown without a record (audited {audited:?}): {text}"
    );
}

/// Reading in clear is audited before anything is shown: when the audit log refuses the
/// write (here a trigger refusing every row, then only the national id's row), the answer
/// is an error that carries no personal value, and no value is shown without its record.
async fn a_read_in_clear_that_cannot_be_audited_shows_nothing(harness: Harness) {
    let id = harness.zhang_san().await;
    let sqlite = matches!(harness.database, Database::Sqlite(_));
    // A trigger of its own per round: a pooled SQLite connection may still know a trigger
    // of the same name that another connection dropped.
    let refuse = |round: usize, condition: &str| {
        if sqlite {
            vec![format!(
                "CREATE TRIGGER audit_log_unavailable_{round} BEFORE INSERT ON pii_reads \
                 WHEN {condition} BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"
            )]
        } else {
            vec![
                format!(
                    "CREATE FUNCTION audit_log_unavailable_{round}() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN IF {condition} THEN \
                     RAISE EXCEPTION 'audit log unavailable'; END IF; RETURN NEW; END $$"
                ),
                format!(
                    "CREATE TRIGGER audit_log_unavailable_{round} BEFORE INSERT ON pii_reads \
                     FOR EACH ROW EXECUTE FUNCTION audit_log_unavailable_{round}()"
                ),
            ]
        }
    };
    let drop_trigger = |round: usize| {
        if sqlite {
            format!("DROP TRIGGER audit_log_unavailable_{round}")
        } else {
            format!("DROP TRIGGER audit_log_unavailable_{round} ON pii_reads")
        }
    };
    for (round, condition) in ["TRUE", "NEW.field = 'national_id'"].iter().enumerate() {
        for statement in refuse(round, condition) {
            harness.execute(&statement).await.unwrap();
        }
        let reason = format!("ticket CS-{round}");
        let (status, body) = harness
            .reveal(&id, &harness.pii_reader, Some(&reason))
            .await;
        assert!(
            status.is_server_error(),
            "a read in clear answered {status} while its audit failed ({condition}): {body}"
        );
        assert!(!code(&body).is_empty(), "{body}");
        let text = body.to_string();
        for clear in CLEAR_VALUES {
            assert!(!text.contains(clear), "the error carries {clear}: {text}");
        }
        assert_shown_only_if_audited(&harness, &id, &reason, status, &body).await;
        // All or none: a refused field's neighbours are not recorded either.
        assert_eq!(harness.counts().await.2, 0, "{condition}");
        harness.execute(&drop_trigger(round)).await.unwrap();
    }
    // The log back, the same read shows the values, each on record.
    let reason = "ticket CS-9";
    let (status, body) = harness.reveal(&id, &harness.pii_reader, Some(reason)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["national_id"], NATIONAL_ID);
    assert_shown_only_if_audited(&harness, &id, reason, status, &body).await;
    assert_eq!(harness.counts().await.2, 4);
}

async fn the_lookup_in_the_query_string_is_gone(harness: Harness) {
    harness.zhang_san().await;
    // The old form answers a clear error and looks nothing up, matched or not.
    for uri in [
        "/v1/customers?phone=13800138000",
        "/v1/customers?national_id=11010519491231002X",
        "/v1/customers",
    ] {
        let (status, body) = harness.get(uri, &harness.reader).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::GONE, "lookup_moved"),
            "{uri}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("POST /v1/customers/search"), "{message}");
        assert!(!body.to_string().contains("8000"), "{body}");
    }
    assert!(harness
        .database
        .pii_lookups(None, 100)
        .await
        .unwrap()
        .is_empty());
}

async fn lookups_are_rate_limited_per_key(harness: Harness) {
    harness.zhang_san().await;
    // Guessing phone numbers: 30 lookups a minute (the default), then one every 2 s.
    let guess = |sequence: u32| json!({"phone": format!("1380013{sequence:04}")});
    for sequence in 0..30 {
        let (status, body) = harness.search(&harness.reader, guess(sequence)).await;
        assert_eq!(status, StatusCode::OK, "lookup {sequence}: {body}");
    }
    // The right number, too late: refused, with when to come back.
    let request = Request::builder()
        .method("POST")
        .uri("/v1/customers/search")
        .header(header::AUTHORIZATION, format!("Bearer {}", harness.reader))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"phone": PHONE}).to_string()))
        .unwrap();
    let response = harness.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(code(&body), "rate_limited");
    assert!(body["customers"].is_null(), "{body}");
    // Another key has its own allowance.
    let (status, body) = harness
        .search(&harness.pii_reader, json!({"phone": PHONE}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    harness
        .clock
        .advance(jiff::SignedDuration::from_millis(1_999));
    let (status, _) = harness.search(&harness.reader, guess(30)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    harness.clock.advance(jiff::SignedDuration::from_millis(1));
    let (status, body) = harness
        .search(&harness.reader, json!({"phone": PHONE}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customers"].as_array().unwrap().len(), 1);
    let (status, _) = harness.search(&harness.reader, guess(31)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Refused lookups looked nothing up and are not on the audit log.
    let lookups = harness.database.pii_lookups(None, 1000).await.unwrap();
    assert_eq!(lookups.len(), 32);
    // The limit is the configuration's.
    let state_with = |per_minute: u32| {
        let dyn_clock: Arc<dyn Clock> = harness.clock.clone();
        AppState::new(
            harness.database.clone(),
            harness.writer.clone(),
            dyn_clock,
            Limits::default(),
        )
        .with_privacy(Some(privacy(&["a"], "a")))
        .with_lookups_per_minute(per_minute)
    };
    let router = app(state_with(1));
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let request = Request::builder()
            .method("POST")
            .uri("/v1/customers/search")
            .header(header::AUTHORIZATION, format!("Bearer {}", harness.admin))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"phone": PHONE}).to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        statuses.push((
            response.status(),
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|value| value.to_str().unwrap().to_string()),
        ));
    }
    assert_eq!(
        statuses,
        [
            (StatusCode::OK, None),
            (StatusCode::TOO_MANY_REQUESTS, Some("60".to_string()))
        ]
    );
}

async fn every_lookup_is_audited_before_the_answer(harness: Harness) {
    let id = harness.zhang_san().await;
    let row = harness.raw_row(&id).await;
    let (phone_index, national_id_index) = (row[4].clone(), row[5].clone());
    let (status, _) = harness
        .search(
            &harness.reader,
            json!({"phone": "+86 138 0013 8000", "reason": " call 4711 "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = harness
        .search(&harness.reader, json!({"national_id": NATIONAL_ID}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = harness
        .search(&harness.pii_reader, json!({"phone": "13900139000"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Refused input looked nothing up.
    let (status, _) = harness
        .search(&harness.reader, json!({"phone": "12"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let lookups = harness.database.pii_lookups(None, 100).await.unwrap();
    let seen: Vec<_> = lookups
        .iter()
        .map(|lookup| {
            (
                lookup.principal.as_str(),
                lookup.field.as_str(),
                lookup.reason.as_deref(),
                lookup.customer_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("collections", "phone", Some("call 4711"), Some(id.as_str())),
            ("collections", "national_id", None, Some(id.as_str())),
            ("compliance", "phone", None, None),
        ]
    );
    // The blind index of the value searched, never the value.
    assert_eq!(lookups[0].value_index, phone_index);
    assert_eq!(lookups[1].value_index, national_id_index);
    assert_eq!(lookups[2].value_index.len(), 64);
    assert_ne!(lookups[2].value_index, phone_index);
    assert_ne!(lookups[0].api_key_id, lookups[2].api_key_id);
    assert_eq!(lookups[0].at.to_string(), "2026-05-01T00:00:00.123456Z");
    let everything = format!("{lookups:?}");
    for clear in ["13800138000", "13900139000", NATIONAL_ID] {
        assert!(!everything.contains(clear), "{clear:?} in {everything}");
    }
    // Admin keys read the log by page; other keys may not.
    let (status, page) = harness.get("/v1/pii-lookups?limit=2", &harness.admin).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["lookups"][0]["id"], lookups[0].id.as_str());
    assert_eq!(page["lookups"][0]["customer_id"], id.as_str());
    assert_eq!(page["lookups"][0]["reason"], "call 4711");
    assert_eq!(page["lookups"][1]["field"], "national_id");
    let after = page["next_after"].as_str().unwrap();
    let (_, rest) = harness
        .get(&format!("/v1/pii-lookups?after={after}"), &harness.admin)
        .await;
    assert_eq!(rest["lookups"][0]["value_index"], lookups[2].value_index);
    assert_eq!(rest["lookups"][0]["customer_id"], Value::Null);
    assert_eq!(rest["next_after"], Value::Null);
    let (status, _) = harness.get("/v1/pii-lookups", &harness.pii_reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The audit log cannot be changed.
    for sql in [
        "UPDATE pii_lookups SET customer_id = NULL",
        "DELETE FROM pii_lookups",
    ] {
        assert!(harness.execute(sql).await.is_err(), "{sql}");
    }
    // Without the audit log, no answer.
    harness.execute("DROP TABLE pii_lookups").await.unwrap();
    let (status, body) = harness
        .search(&harness.reader, json!({"phone": PHONE}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        "{body}"
    );
    assert!(!body.to_string().contains(&id), "{body}");
}

/// Log lines written by Tally's logger, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'writer> tracing_subscriber::fmt::MakeWriter<'writer> for Captured {
    type Writer = Captured;

    fn make_writer(&'writer self) -> Self::Writer {
        self.clone()
    }
}

async fn logs_hold_no_query_string_body_or_key(harness: Harness) {
    use tracing::instrument::WithSubscriber;
    let leaked_key = "tally_leaked_in_the_url_0123456789";
    for format in ["text", "json"] {
        let captured = Captured::default();
        // The most verbose filter an operator could set.
        let logger = tally_server::logging::subscriber(format, "trace", captured.clone());
        async {
            // A creation's body (replayed the second time), mistakes in the URL, a lookup's
            // body, a body whose value an error message quotes, and a read in clear.
            let id = harness.zhang_san().await;
            let (status, _) = harness
                .call(
                    "POST",
                    &format!("/v1/customers/search?api_key={leaked_key}&phone=13800138000"),
                    &harness.reader,
                    None,
                    Some(json!({"phone": "+86 139 1234 5678"})),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            let (status, body) = harness
                .search(&harness.reader, json!({"phone": 13912345678_u64}))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.to_string().contains("13912345678"), "{body}");
            let (status, _) = harness
                .get(
                    &format!("/v1/customers?phone=13800138000&api_key={leaked_key}"),
                    &harness.reader,
                )
                .await;
            assert_eq!(status, StatusCode::GONE);
            let (status, _) = harness
                .reveal(&id, &harness.pii_reader, Some("caller 13800138000"))
                .await;
            assert_eq!(status, StatusCode::OK);
            let (status, _) = harness
                .get(
                    &format!("/v1/customers/{id}?unmasked=true&reason=caller%2013800138000"),
                    &harness.pii_reader,
                )
                .await;
            assert_eq!(status, StatusCode::GONE);
        }
        .with_subscriber(logger)
        .await;
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        // Something was written: the requests, by method and path.
        assert!(log.contains("/v1/customers/search"), "{format}: {log}");
        assert!(log.contains("POST"), "{format}: {log}");
        for secret in [
            "13800138000",
            "138 0013 8000",
            "13912345678",
            "139 1234 5678",
            "1391234",
            NATIONAL_ID,
            "张三",
            leaked_key,
            "api_key=",
            "unmasked=",
            harness.reader.as_str(),
            harness.pii_reader.as_str(),
            harness.creator.as_str(),
        ] {
            assert!(
                !log.contains(secret),
                "{format}: {secret:?} in the log:\n{log}"
            );
        }
    }
}

async fn reading_in_clear_needs_pii_read_and_a_reason_and_is_audited(harness: Harness) {
    let id = harness.zhang_san().await;
    let reason = Some("ticket CS-1234");
    let (status, body) = harness.reveal(&id, &harness.reader, reason).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    for blank in [None, Some("  ")] {
        let (status, body) = harness.reveal(&id, &harness.pii_reader, blank).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "reason_required"),
            "{blank:?}"
        );
    }
    // Masked reads, even by a key that may read in clear, are not audited.
    let (status, body) = harness
        .get(&format!("/v1/customers/{id}"), &harness.pii_reader)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["masked"], true);
    assert_eq!(harness.counts().await.2, 0);

    harness.clock.advance(jiff::SignedDuration::from_secs(60));
    let (status, body) = harness.reveal(&id, &harness.pii_reader, reason).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["masked"], false);
    assert_eq!(body["name"], "张三");
    assert_eq!(body["phone"], "+8613800138000");
    assert_eq!(body["national_id"], NATIONAL_ID);
    assert_eq!(body["date_of_birth"], "1949-12-31");

    let (status, log) = harness
        .get(&format!("/v1/customers/{id}/pii-reads"), &harness.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let reads = log["reads"].as_array().unwrap();
    let mut fields: Vec<&str> = reads
        .iter()
        .map(|read| read["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["date_of_birth", "name", "national_id", "phone"]);
    for read in reads {
        assert_eq!(read["principal"], "compliance");
        assert_eq!(read["customer_id"], id.as_str());
        assert_eq!(read["reason"], "ticket CS-1234");
        assert_eq!(read["at"], "2026-05-01T00:01:00.123456Z");
        assert!(!read["api_key_id"].as_str().unwrap().is_empty());
    }
    assert_eq!(log["next_after"], Value::Null);
    // Pages follow the cursor.
    let (_, first) = harness
        .get(
            &format!("/v1/customers/{id}/pii-reads?limit=3"),
            &harness.admin,
        )
        .await;
    assert_eq!(first["reads"].as_array().unwrap().len(), 3);
    let after = first["next_after"].as_str().unwrap();
    let (_, second) = harness
        .get(
            &format!("/v1/customers/{id}/pii-reads?limit=3&after={after}"),
            &harness.admin,
        )
        .await;
    assert_eq!(second["reads"].as_array().unwrap().len(), 1);
    // The audit log is for administrators only.
    let (status, _) = harness
        .get(
            &format!("/v1/customers/{id}/pii-reads"),
            &harness.pii_reader,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(harness.counts().await.2, 4);
}

async fn a_read_in_clear_carries_its_reason_in_the_body(harness: Harness) {
    let id = harness.zhang_san().await;
    let (status, body) = harness
        .reveal(&id, &harness.pii_reader, Some("  ticket CS-77  "))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["masked"], false);
    assert_eq!(body["name"], "张三");
    assert_eq!(body["phone"], "+8613800138000");
    assert_eq!(body["national_id"], NATIONAL_ID);
    assert_eq!(body["date_of_birth"], "1949-12-31");
    // One row per field shown, with the key, its name and the reason trimmed.
    let reads = harness.database.pii_reads(&id, None, 100).await.unwrap();
    let mut fields: Vec<&str> = reads.iter().map(|read| read.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["date_of_birth", "name", "national_id", "phone"]);
    for read in &reads {
        // Sealed where stored, the read's id in its associated data.
        assert!(read.reason.starts_with("v1:a:"), "{read:?}");
        assert_eq!(opened_reason(read), "ticket CS-77");
        assert_eq!(read.principal, "compliance");
        assert!(!read.api_key_id.is_empty());
    }

    // Refusals show nothing and record nothing.
    let too_long = "x".repeat(501);
    let unknown = "0196a3b4-0000-7000-8000-000000000000";
    for (target, key, body, expected) in [
        (
            id.as_str(),
            &harness.pii_reader,
            json!({"reason": "call\u{7}"}),
            (StatusCode::BAD_REQUEST, "invalid_reason"),
        ),
        (
            id.as_str(),
            &harness.pii_reader,
            json!({ "reason": too_long }),
            (StatusCode::BAD_REQUEST, "invalid_reason"),
        ),
        (
            id.as_str(),
            &harness.pii_reader,
            json!({"reason": "ticket", "unmasked": true}),
            (StatusCode::BAD_REQUEST, "unknown_field"),
        ),
        (
            unknown,
            &harness.pii_reader,
            json!({"reason": "ticket"}),
            (StatusCode::NOT_FOUND, "customer_not_found"),
        ),
        (
            "nobody",
            &harness.pii_reader,
            json!({"reason": "ticket"}),
            (StatusCode::BAD_REQUEST, "invalid_id"),
        ),
        (
            id.as_str(),
            &harness.creator,
            json!({"reason": "ticket"}),
            (StatusCode::FORBIDDEN, "forbidden"),
        ),
    ] {
        let uri = format!("/v1/customers/{target}/reveal");
        let (status, answer) = harness.call("POST", &uri, key, None, Some(body)).await;
        assert_eq!((status, code(&answer)), expected, "{uri}: {answer}");
        assert!(!answer.to_string().contains("张三"), "{answer}");
    }
    assert_eq!(harness.counts().await.2, 4);
}

/// Regression: the reason for a read in clear (and the intent to read in clear) used to
/// travel in the URL (`GET /v1/customers/{id}?unmasked=true&reason=...`), which proxies
/// write to their access logs.
async fn the_read_in_clear_in_the_query_string_is_gone(harness: Harness) {
    let id = harness.zhang_san().await;
    for (query, key) in [
        ("unmasked=true&reason=ticket%20CS-1234", &harness.pii_reader),
        ("unmasked=true", &harness.pii_reader),
        ("reason=ticket%20CS-1234", &harness.pii_reader),
        ("unmasked=false", &harness.pii_reader),
        ("unmasked=yes&reason=", &harness.pii_reader),
        ("unmasked=true&reason=ticket%20CS-1234", &harness.reader),
    ] {
        let uri = format!("/v1/customers/{id}?{query}");
        let (status, body) = harness.get(&uri, key).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::GONE, "reveal_moved"),
            "{uri}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("POST /v1/customers/{id}/reveal"),
            "{message}"
        );
        for clear in ["张三", "8000", NATIONAL_ID, "1949"] {
            assert!(!body.to_string().contains(clear), "{body}");
        }
    }
    // Nothing was read in clear, so nothing is on the audit log.
    assert_eq!(harness.counts().await.2, 0);
    // The masked read is as it was.
    let (status, body) = harness
        .get(&format!("/v1/customers/{id}"), &harness.pii_reader)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["masked"], true);
    assert_eq!(harness.counts().await.2, 0);
}

async fn the_audit_log_cannot_be_changed(harness: Harness) {
    let id = harness.zhang_san().await;
    let (status, _) = harness
        .reveal(&id, &harness.pii_reader, Some("audit test"))
        .await;
    assert_eq!(status, StatusCode::OK);
    for sql in [
        "UPDATE pii_reads SET reason = 'nothing to see'",
        "UPDATE pii_reads SET principal = 'someone else' WHERE field = 'phone'",
        "DELETE FROM pii_reads",
        "DELETE FROM pii_reads WHERE field = 'name'",
    ] {
        let error = harness.execute(sql).await.unwrap_err();
        assert!(
            error.to_string().contains("pii_reads rows are immutable"),
            "{sql}: {error}"
        );
    }
    if matches!(harness.database, Database::Postgres(_)) {
        assert!(harness.execute("TRUNCATE pii_reads").await.is_err());
    }
    assert_eq!(harness.counts().await.2, 4);
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM pii_reads WHERE reason LIKE 'v1:%'")
            .await,
        4
    );
}

async fn values_stay_readable_after_the_key_rotates(mut harness: Harness) {
    let old = harness.zhang_san().await;
    // Key b becomes active; a stays configured for reading.
    harness.use_privacy(Some(privacy(&["a", "b"], "b")));
    let (status, body) = harness
        .create(
            "create-li-si",
            json!({"name": "李四", "phone": "13900139000", "national_id": "110101199003077774"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let new = body["id"].as_str().unwrap().to_string();
    assert!(harness.raw_row(&new).await[0].starts_with("v1:b:"));
    assert!(harness.raw_row(&old).await[0].starts_with("v1:a:"));
    for (id, phone) in [(&old, "+8613800138000"), (&new, "+8613900139000")] {
        let (status, body) = harness
            .reveal(id, &harness.pii_reader, Some("rotation"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["phone"], phone);
    }
    // The blind index key did not change, so lookups still find the old customer.
    let (_, body) = harness
        .search(&harness.reader, json!({"phone": "13800138000"}))
        .await;
    assert_eq!(body["customers"][0]["id"], old.as_str());
    // Once key a is removed, its values cannot be opened, and the answer says why.
    harness.use_privacy(Some(privacy(&["b"], "b")));
    let (status, body) = harness
        .get(&format!("/v1/customers/{old}"), &harness.reader)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "privacy_key_unavailable"),
        "{body}"
    );
}

/// Creates `count` customers with distinct phones and national ids; returns their ids.
async fn customers(harness: &Harness, count: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for sequence in 0..count {
        let national_id = national_id_with_check(&format!("11010119900307{:03}", 100 + sequence));
        let (status, body) = harness
            .create(
                &format!("create-{sequence}"),
                json!({"name": "王五", "phone": format!("1390013{:04}", sequence), "national_id": national_id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids
}

/// The 17 digits and their ISO 7064 MOD 11-2 check character.
fn national_id_with_check(first_17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first_17
        .chars()
        .zip(WEIGHTS)
        .map(|(digit, weight)| digit.to_digit(10).unwrap() * weight)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{first_17}{check}")
}

async fn resealing_retires_the_old_key(mut harness: Harness) {
    // Seven customers under key a, then key b becomes active and two more come under it.
    let mut ids = customers(&harness, 7).await;
    let rotated = privacy(&["a", "b"], "b");
    harness.use_privacy(Some(rotated.clone()));
    let (status, body) = harness
        .create(
            "create-li-si",
            json!({"name": "李四", "phone": "13900139999", "national_id": "110101199003077774"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    ids.push(body["id"].as_str().unwrap().to_string());
    let before: Vec<Vec<String>> = {
        let mut rows = Vec::new();
        for id in &ids {
            rows.push(harness.raw_row(id).await);
        }
        rows
    };

    // Pages of 3, so the walk crosses pages.
    let report = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 3)
        .await
        .unwrap();
    assert_eq!(report.active_key, "b");
    assert_eq!(report.customers, 8);
    assert_eq!(report.customers_resealed, 7);
    assert_eq!(report.values_resealed, 28);
    assert_eq!(
        report.values_by_key_before,
        BTreeMap::from([("a".to_string(), 28), ("b".to_string(), 4)])
    );
    for (id, old) in ids.iter().zip(&before) {
        let row = harness.raw_row(id).await;
        for value in &row[..4] {
            assert!(value.starts_with("v1:b:"), "{value}");
        }
        // The blind indexes (another key) are unchanged, so lookups still find everyone.
        assert_eq!(row[4..], old[4..]);
    }
    // A second walk finds nothing to do and changes nothing.
    let mut resealed_rows = Vec::new();
    for id in &ids {
        resealed_rows.push(harness.raw_row(id).await);
    }
    let again = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 3)
        .await
        .unwrap();
    assert_eq!((again.customers, again.customers_resealed), (8, 0));
    for (id, resealed) in ids.iter().zip(&resealed_rows) {
        assert_eq!(&harness.raw_row(id).await, resealed);
    }

    // Key a is removed: every customer still opens, in clear and through the indexes.
    harness.use_privacy(Some(privacy(&["b"], "b")));
    let (status, body) = harness
        .reveal(&ids[0], &harness.pii_reader, Some("rotation"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phone"], "+8613900130000");
    assert_eq!(body["name"], "王五");
    let (_, body) = harness
        .search(&harness.reader, json!({"phone": "13900130006"}))
        .await;
    assert_eq!(body["customers"][0]["id"], ids[6].as_str());
}

async fn resealing_stops_at_a_value_that_does_not_open(mut harness: Harness) {
    let ids = customers(&harness, 3).await;
    // The second customer's phone is swapped with the first's: each value still names key
    // a, but is bound to another customer, so it does not authenticate.
    let first = harness.raw_row(&ids[0]).await;
    harness
        .execute(&format!(
            "UPDATE customers SET phone = '{}' WHERE id = '{}'",
            first[1], ids[1]
        ))
        .await
        .unwrap();
    let rotated = privacy(&["a", "b"], "b");
    harness.use_privacy(Some(rotated.clone()));
    let error = tally_service::key_rotation::reseal_customers(&harness.database, &rotated, 10)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("customer {}, field phone", ids[1])),
        "{error}"
    );
    // The walk went in id order: the first customer is done, the swapped one and those after
    // it are as they were (nothing re-sealed as if it were genuine).
    assert!(harness.raw_row(&ids[0]).await[0].starts_with("v1:b:"));
    assert_eq!(harness.raw_row(&ids[1]).await[1], first[1]);
    assert!(harness.raw_row(&ids[2]).await[0].starts_with("v1:a:"));
    // Without key a configured, the walk names the missing key.
    let only_b = privacy(&["b"], "b");
    let error = tally_service::key_rotation::reseal_customers(&harness.database, &only_b, 10)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(r#""a""#), "{error}");
}

async fn without_privacy_keys_customers_are_unavailable(mut harness: Harness) {
    let id = harness.zhang_san().await;
    harness.use_privacy(None);
    let body = json!({"name": "李四", "phone": "13900139000", "national_id": "110101199003077774"});
    for (status, answer) in [
        harness.create("create-li-si", body).await,
        harness
            .get(&format!("/v1/customers/{id}"), &harness.reader)
            .await,
        harness
            .search(&harness.reader, json!({"phone": "13800138000"}))
            .await,
        harness
            .reveal(&id, &harness.pii_reader, Some("ticket"))
            .await,
    ] {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert_eq!(code(&answer), "privacy_keys_not_configured");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("privacy.blind_index_key"), "{message}");
    }
    assert_eq!(harness.counts().await, (1, 1, 0));
}

async fn each_route_needs_its_scope(harness: Harness) {
    let id = harness.zhang_san().await;
    let body = json!({"name": "李四", "phone": "13900139000", "national_id": "110101199003077774"});
    let (status, _) = harness
        .call(
            "POST",
            "/v1/customers",
            &harness.reader,
            Some("by-reader"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for uri in [
        format!("/v1/customers/{id}"),
        format!("/v1/customers/{id}/pii-reads"),
    ] {
        let (status, _) = harness.get(&uri, &harness.creator).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
    let (status, _) = harness
        .search(&harness.creator, json!({"phone": "13800138000"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Reading in clear takes pii:read, which credit:read does not give.
    for key in [&harness.creator, &harness.reader] {
        let (status, _) = harness.reveal(&id, key, Some("ticket")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, document) = harness.get("/v1/openapi.json", &harness.reader).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/customers",
        "/v1/customers/search",
        "/v1/customers/{id}",
        "/v1/customers/{id}/reveal",
        "/v1/customers/{id}/pii-reads",
        "/v1/pii-lookups",
    ] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
    assert_eq!(harness.counts().await, (1, 1, 0));
}

async fn erase(harness: &Harness, id: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let uri = format!("/v1/customers/{id}/erasure");
    harness.call("POST", &uri, key, None, Some(body)).await
}

async fn erasure_destroys_personal_data_and_keeps_the_customer_id(harness: Harness) {
    let id = harness.zhang_san().await;
    let (status, _) = harness
        .search(&harness.reader, json!({"phone": PHONE}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = harness
        .reveal(&id, &harness.pii_reader, Some("ticket 7"))
        .await;
    assert_eq!(status, StatusCode::OK);

    let reason = "the customer's request, ticket 9";
    let (status, erased) = erase(&harness, &id, &harness.admin, json!({ "reason": reason })).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(
        (
            &erased["customer_id"],
            &erased["erased_by"],
            &erased["reason"],
            &erased["erased_now"]
        ),
        (&json!(id), &json!("admin"), &json!(reason), &json!(true))
    );
    // Destroyed, not flagged: every sealed field and both indexes overwritten.
    let row = harness.raw_row(&id).await;
    assert_eq!(row[..4], ["erased"; 4]);
    assert_eq!(row[4..], [format!("erased:{id}"), format!("erased:{id}")]);
    let keyed = [
        "SELECT COUNT(*) FROM customer_idempotency_keys WHERE request_hash <> 'erased'",
        "SELECT COUNT(*) FROM pii_lookups WHERE value_index <> 'erased'",
    ];
    for sql in keyed {
        assert_eq!(harness.scalar(sql).await, 0, "{sql}");
    }
    // The id stays, with its audit trails; the erasure is on record once, never a value.
    assert_eq!(harness.counts().await, (1, 1, 4));
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM customer_erasures WHERE principal = 'admin'")
            .await,
        1
    );
    assert!(harness
        .execute("UPDATE customer_erasures SET reason = 'other'")
        .await
        .is_err());

    // Reads answer that the customer was erased; lookups no longer find them.
    for (status, body) in [
        harness
            .get(&format!("/v1/customers/{id}"), &harness.reader)
            .await,
        harness
            .reveal(&id, &harness.pii_reader, Some("ticket 8"))
            .await,
    ] {
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(code(&body), "customer_erased");
    }
    let (status, found) = harness
        .search(&harness.reader, json!({"phone": PHONE}))
        .await;
    assert_eq!((status, &found["customers"]), (StatusCode::OK, &json!([])));

    // Again: the first erasure, unchanged.
    let (status, again) = erase(
        &harness,
        &id,
        &harness.admin,
        json!({"reason": "asked twice"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["erased_now"], false);
    assert_eq!(
        (&again["erased_at"], &again["reason"]),
        (&erased["erased_at"], &json!(reason))
    );
    // The person can become a customer again, as a new one.
    let (status, body) = harness
        .create(
            "create-again",
            json!({"name": "张三", "phone": PHONE, "national_id": NATIONAL_ID}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(body["id"], json!(id));
}

async fn erasure_is_refused_with_its_codes(harness: Harness) {
    let id = harness.zhang_san().await;
    let unknown = "019de0e2-0000-7000-8000-000000000000";
    let long = "x".repeat(501);
    for (customer, key, body, expected, error) in [
        (
            &id as &str,
            &harness.admin,
            json!({"reason": "  "}),
            StatusCode::BAD_REQUEST,
            "reason_required",
        ),
        (
            &id,
            &harness.admin,
            json!({"reason": long}),
            StatusCode::BAD_REQUEST,
            "invalid_reason",
        ),
        (
            &id,
            &harness.admin,
            json!({"reason": "a\u{7}b"}),
            StatusCode::BAD_REQUEST,
            "invalid_reason",
        ),
        (
            unknown,
            &harness.admin,
            json!({"reason": "r"}),
            StatusCode::NOT_FOUND,
            "customer_not_found",
        ),
        (
            "not-a-uuid",
            &harness.admin,
            json!({"reason": "r"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            &id,
            &harness.creator,
            json!({"reason": "r"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ] {
        let (status, answer) = erase(&harness, customer, key, body).await;
        assert_eq!((status, code(&answer)), (expected, error), "{answer}");
    }
    // Nothing was erased.
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM customer_erasures")
            .await,
        0
    );
    let (status, _) = harness
        .get(&format!("/v1/customers/{id}"), &harness.reader)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Personal-data keys with encryption key `a` and blind index key `blind` (32 bytes of it),
/// the previous one and the fingerprint key when given.
fn blind_index_keys(blind: u8, previous: Option<u8>) -> Arc<Privacy> {
    use base64::Engine;
    let key = |byte: u8| {
        tally_core::Secret::new(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    };
    let keys = BTreeMap::from([("a".to_string(), key(b'a'))]);
    let mut privacy = Privacy::new(&keys, "a", &key(blind)).unwrap();
    if let Some(previous) = previous {
        privacy = privacy
            .with_previous_blind_index_key(&key(previous))
            .unwrap()
            .with_fingerprint_key(&key(previous))
            .unwrap();
    }
    Arc::new(privacy)
}

/// The id of the customer a lookup by `phone` finds, if any.
async fn finds(harness: &Harness, phone: &str) -> Option<String> {
    let (status, body) = harness
        .search(&harness.reader, json!({ "phone": phone }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["customers"][0]["id"].as_str().map(str::to_string)
}

async fn the_blind_index_key_rotates_with_lookups_working_throughout(mut harness: Harness) {
    // The harness's blind index key is 32 bytes of 9.
    let zhang = harness.zhang_san().await;
    let li_phone = "13900139999";
    let (status, li) = harness
        .create(
            "create-li-si",
            json!({"name": "李四", "phone": li_phone, "national_id": "110101199003077774"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{li}");
    let li = li["id"].as_str().unwrap().to_string();
    // Before.
    assert_eq!(finds(&harness, PHONE).await, Some(zhang.clone()));

    // During: the new key (8) beside the old one, one customer walked of two.
    let rotating = blind_index_keys(8, Some(9));
    harness.use_privacy(Some(rotating.clone()));
    let database = harness.database.clone();
    let rotate = |after: String, pages: Option<u64>| {
        let database = database.clone();
        let rotating = rotating.clone();
        async move {
            tally_service::key_rotation::rotate_blind_index(&database, &rotating, &after, 1, pages)
                .await
                .unwrap()
        }
    };
    let first = rotate(String::new(), Some(1)).await;
    assert_eq!((first.customers, first.customers_rekeyed), (1, 1));
    assert_eq!(finds(&harness, PHONE).await, Some(zhang.clone()));
    assert_eq!(finds(&harness, li_phone).await, Some(li.clone()));
    // One person stays one customer under either key.
    for (key, phone) in [("dup-1", PHONE), ("dup-2", li_phone)] {
        let (status, body) = harness
            .create(
                key,
                json!({"name": "王五", "phone": phone, "national_id": "110101200002290018"}),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "customer_phone_taken")
        );
    }

    // Resumed from where it stopped, then again from the start: nothing left to do.
    let rest = rotate(first.last_customer.clone().unwrap(), None).await;
    assert_eq!((rest.customers, rest.customers_rekeyed), (1, 1));
    let again = rotate(String::new(), None).await;
    assert_eq!((again.customers_rekeyed, again.customers_current), (0, 2));

    // After: the previous key removed, everyone found; the old key alone finds no one.
    harness.use_privacy(Some(blind_index_keys(8, None)));
    assert_eq!(finds(&harness, PHONE).await, Some(zhang.clone()));
    assert_eq!(finds(&harness, li_phone).await, Some(li));
    // A retried creation still replays (its keyed request hash moved with the indexes).
    let (status, body) = harness
        .create(
            "create-zhang-san",
            json!({"name": "张三", "phone": PHONE, "national_id": NATIONAL_ID}),
        )
        .await;
    assert_eq!((status, &body["id"]), (StatusCode::CREATED, &json!(zhang)));
    harness.use_privacy(Some(blind_index_keys(9, None)));
    assert_eq!(finds(&harness, PHONE).await, None);
}
