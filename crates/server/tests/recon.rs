//! The reconciliation worklist in process on SQLite and PostgreSQL: a run of Tally's books
//! stored by the service (the bank's file has three rows Tally's books do not), listed and
//! read; its exceptions filtered by run, class, state and assignee, assigned, resolved
//! with a note and with an adjusting entry that the ledger holds with the exception's id;
//! and every refusal with its code, changing nothing: an unknown run or exception, a class,
//! state or limit that does not exist, a blank assignee or note, resolving twice, an
//! adjusting entry that does not balance or names an unknown account, and the wrong scope.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::{json, Value};
use tally_store::testing::TestDatabase;

mod support;
use support::recon::{books_run, FIRST, RUN, SECOND, THIRD};
use support::{code, Setup, TestApp};

struct Books {
    app: TestApp,
    reader: String,
    writer: String,
    ledger: String,
    _work: tempfile::TempDir,
}

support::deref_to_app!(Books);

impl Books {
    async fn new(test: TestDatabase) -> Self {
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", Setup::default()).await;
        let reader = app.key("auditor", &["recon:read"]).await;
        let writer = app.key("ops", &["recon:write", "recon:read"]).await;
        let ledger = app.key("books", &["ledger:write", "ledger:read"]).await;
        let work = books_run(&app, &ledger).await;
        Books {
            app,
            reader,
            writer,
            ledger,
            _work: work,
        }
    }

    async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.call("GET", uri, key, None, None).await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.writer, None, Some(body)).await
    }

    async fn exception(&self, id: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v1/recon/exceptions/{id}"), &self.reader)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn ids(&self, query: &str) -> Vec<String> {
        let (status, body) = self
            .get(&format!("/v1/recon/exceptions{query}"), &self.reader)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|exception| exception["id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }
}

fn adjusting(legs: Value) -> Value {
    json!({
        "note": "the bank's own correction; booked to suspense",
        "adjusting_entry": {"description": "bank-only settlement, to suspense", "legs": legs}
    })
}

fn leg(account: &str, side: &str, amount: &str) -> Value {
    json!({"account_code": account, "side": side, "amount": amount, "currency": "CNY"})
}

async fn the_worklist_lists_assigns_and_resolves(books: Books) {
    let (status, body) = books.get("/v1/recon/runs", &books.reader).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let runs = body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["business_date"], RUN);
    assert_eq!(runs[0]["channel_records"], 3);
    assert_eq!(runs[0]["ledger_records"], 0);
    assert_eq!(runs[0]["exceptions"], 3);
    assert_eq!(
        runs[0]["summary"]["classes"]["missing_in_ledger"]["CNY"],
        json!({"channel_amount": "35.00", "count": 3, "ledger_amount": "0.00"})
    );
    let (status, run) = books
        .get(&format!("/v1/recon/runs/{RUN}"), &books.reader)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&run, &runs[0]);
    let (_, older) = books
        .get(&format!("/v1/recon/runs?before={RUN}"), &books.reader)
        .await;
    assert_eq!(older["runs"], json!([]));

    assert_eq!(
        books
            .ids(&format!("?run={RUN}&class=missing_in_ledger"))
            .await,
        [FIRST, SECOND, THIRD]
    );
    assert_eq!(
        books.ids(&format!("?after={FIRST}&limit=1")).await,
        [SECOND]
    );
    assert_eq!(books.ids("?class=timing").await, Vec::<String>::new());
    let first = books.exception(FIRST).await;
    assert_eq!(first["reference"], "bank-only-1");
    assert_eq!(first["channel_amount"], "10.00");
    assert_eq!(first["state"], "open");
    assert!(first.get("ledger_amount").is_none());

    let (status, assigned) = books
        .post(
            &format!("/v1/recon/exceptions/{FIRST}/assign"),
            json!({"assignee": "ops-li"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    assert_eq!(assigned["state"], "assigned");
    assert_eq!(assigned["assignee"], "ops-li");
    assert_eq!(assigned["version"], 2);
    assert_eq!(books.ids("?assignee=ops-li").await, [FIRST]);
    assert_eq!(books.ids("?state=open").await, [SECOND, THIRD]);

    let (status, resolved) = books
        .post(
            &format!("/v1/recon/exceptions/{FIRST}/resolve"),
            json!({"note": "settled twice by the bank, confirmed by phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolution"], "note");
    assert_eq!(resolved["assignee"], "ops-li");
    assert_eq!(books.ids("?state=resolved").await, [FIRST]);

    // An adjusting entry through the ledger, which keeps the exception's id.
    let entries = books.entries().await;
    let (status, adjusted) = books
        .post(
            &format!("/v1/recon/exceptions/{SECOND}/resolve"),
            adjusting(json!([
                leg("recon-suspense-CNY", "debit", "20.00"),
                leg("bank-differences-CNY", "credit", "20.00")
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{adjusted}");
    assert_eq!(adjusted["resolution"], "adjusting_entry");
    assert_eq!(books.entries().await, entries + 1);
    let entry_id = adjusted["adjusting_entry_id"].as_str().unwrap();
    let (status, entry) = books
        .get(&format!("/v1/entries/{entry_id}"), &books.ledger)
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["metadata"]["recon_exception"], SECOND);
    assert_eq!(entry["legs"].as_array().unwrap().len(), 2);
}

async fn every_refusal_has_its_code(books: Books) {
    let reader = books.reader.clone();
    let expect = |status: StatusCode, body: &Value, wanted: StatusCode, wanted_code: &str| {
        assert_eq!((status, code(body)), (wanted, wanted_code), "{body}");
    };
    let (status, body) = books.get("/v1/recon/runs/2026-04-30", &reader).await;
    expect(status, &body, StatusCode::NOT_FOUND, "recon_run_not_found");
    let (status, body) = books
        .get("/v1/recon/exceptions?run=2026-04-30", &reader)
        .await;
    expect(status, &body, StatusCode::NOT_FOUND, "recon_run_not_found");
    let (status, body) = books.get("/v1/recon/exceptions/rex_missing", &reader).await;
    expect(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "recon_exception_not_found",
    );
    for query in ["?class=late", "?state=closed", "?limit=0", "?limit=501"] {
        let (status, body) = books
            .get(&format!("/v1/recon/exceptions{query}"), &reader)
            .await;
        expect(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recon_field",
        );
    }
    let (status, body) = books.get("/v1/recon/runs?limit=0", &reader).await;
    expect(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_recon_field",
    );

    let assign = format!("/v1/recon/exceptions/{FIRST}/assign");
    let resolve = format!("/v1/recon/exceptions/{FIRST}/resolve");
    let (status, body) = books
        .post(
            "/v1/recon/exceptions/rex_missing/assign",
            json!({"assignee": "ops-li"}),
        )
        .await;
    expect(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "recon_exception_not_found",
    );
    let (status, body) = books
        .post(
            "/v1/recon/exceptions/rex_missing/resolve",
            json!({"note": "n"}),
        )
        .await;
    expect(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "recon_exception_not_found",
    );
    let (status, body) = books.post(&assign, json!({"assignee": "  "})).await;
    expect(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_recon_field",
    );
    let (status, body) = books
        .post(&assign, json!({"assignee": "x".repeat(129)}))
        .await;
    expect(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_recon_field",
    );
    let (status, body) = books.post(&resolve, json!({"note": ""})).await;
    expect(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_recon_field",
    );

    // Adjusting entries the ledger refuses: nothing posted, the exception unchanged.
    let entries = books.entries().await;
    let refusals = [
        (
            json!([
                leg("recon-suspense-CNY", "debit", "10.00"),
                leg("bank-differences-CNY", "credit", "9.99")
            ]),
            "entry_unbalanced",
        ),
        (
            json!([
                leg("recon-suspense-CNY", "debit", "10.00"),
                leg("no-such-account", "credit", "10.00")
            ]),
            "account_not_found",
        ),
        (
            json!([leg("recon-suspense-CNY", "debit", "10.00")]),
            "entry_too_few_legs",
        ),
        (
            json!([
                leg("recon-suspense-CNY", "sideways", "10.00"),
                leg("bank-differences-CNY", "credit", "10.00")
            ]),
            "invalid_side",
        ),
        (
            json!([
                leg("recon-suspense-CNY", "debit", "10.001"),
                leg("bank-differences-CNY", "credit", "10.001")
            ]),
            "invalid_amount",
        ),
    ];
    for (legs, wanted) in refusals {
        let (status, body) = books.post(&resolve, adjusting(legs)).await;
        expect(status, &body, StatusCode::UNPROCESSABLE_ENTITY, wanted);
    }
    assert_eq!(books.entries().await, entries);
    assert_eq!(books.exception(FIRST).await["state"], "open");
    assert_eq!(books.exception(FIRST).await["version"], 1);

    // Resolving twice, or assigning what is resolved.
    let (status, body) = books.post(&resolve, json!({"note": "explained"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = books.post(&resolve, json!({"note": "again"})).await;
    expect(
        status,
        &body,
        StatusCode::CONFLICT,
        "recon_exception_resolved",
    );
    let (status, body) = books
        .post(
            &resolve,
            adjusting(json!([
                leg("recon-suspense-CNY", "debit", "10.00"),
                leg("bank-differences-CNY", "credit", "10.00")
            ])),
        )
        .await;
    expect(
        status,
        &body,
        StatusCode::CONFLICT,
        "recon_exception_resolved",
    );
    assert_eq!(books.entries().await, entries);
    let (status, body) = books.post(&assign, json!({"assignee": "ops-li"})).await;
    expect(
        status,
        &body,
        StatusCode::CONFLICT,
        "recon_exception_resolved",
    );
    assert_eq!(books.exception(FIRST).await["note"], "explained");

    // The wrong scope: refused before anything is read or changed.
    let (status, body) = books
        .call(
            "POST",
            &format!("/v1/recon/exceptions/{SECOND}/assign"),
            &reader,
            None,
            Some(json!({"assignee": "ops-li"})),
        )
        .await;
    expect(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = books.get("/v1/recon/runs", &books.ledger).await;
    expect(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(books.exception(SECOND).await["state"], "open");
}

tally_store::on_both_backends!(
    setup = Books::new;
    the_worklist_lists_assigns_and_resolves,
    every_refusal_has_its_code,
);
