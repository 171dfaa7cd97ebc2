//! The console's Reconciliation pages over HTTP, on SQLite and PostgreSQL: a run of Tally's
//! books stored by the service (the bank's file has three rows Tally's books do not), its
//! summary by class, its exceptions filtered, sorted and paged on the server, one assigned
//! to the viewer, one resolved with a note and one with an adjusting entry the ledger holds,
//! each through the worklist the API uses; every refusal with its code and nothing changed;
//! and sessions, CSRF and the scopes `recon:read` (see) and `recon:write` (act).
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use jiff::SignedDuration;
use serde_json::{json, Value};
use tally_store::testing::TestDatabase;

mod support;
use support::console::{console_send, is_sign_in_redirect, location, sign_in, text, Browser};
use support::recon::{books_run, FIRST, RUN, SECOND, THIRD};
use support::{privacy, Answer, Setup, TestApp};

/// A customer whose name and phone must never appear on these pages.
const NAME: &str = "张三";
const PHONE: &str = "13800138000";

struct Books {
    app: TestApp,
    reader: String,
    clerk: String,
    api: String,
    _work: tempfile::TempDir,
}

support::deref_to_app!(Books);

impl Books {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy());
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let reader = app.key("Zhao Min, auditor", &["recon:read"]).await;
        let clerk = app
            .key("Sun Li, finance clerk", &["recon:write", "recon:read"])
            .await;
        let api = app.key("api", &["recon:read", "ledger:write"]).await;
        let work = books_run(&app, &api).await;
        let onboarding = app.key("onboarding", &["credit:write"]).await;
        let (status, body) = app
            .call(
                "POST",
                "/v1/customers",
                &onboarding,
                Some("customer-1"),
                Some(json!({"name": NAME, "phone": PHONE, "national_id": "11010519491231002X"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Books {
            app,
            reader,
            clerk,
            api,
            _work: work,
        }
    }

    async fn page(&self, uri: &str, browser: &Browser) -> Answer {
        console_send(&self.app.router, "GET", uri, Some(&browser.token), None).await
    }

    async fn page_text(&self, uri: &str, browser: &Browser) -> String {
        let answer = self.page(uri, browser).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", text(&answer));
        let page = text(&answer);
        // Nothing personal on any of these pages.
        for clear in [NAME, PHONE, "8000"] {
            assert!(!page.contains(clear), "{clear} on {uri}");
        }
        page
    }

    async fn form(&self, uri: &str, browser: &Browser, fields: &[(&str, &str)]) -> Answer {
        let mut form = vec![("csrf", browser.csrf.as_str())];
        form.extend_from_slice(fields);
        console_send(
            &self.app.router,
            "POST",
            uri,
            Some(&browser.token),
            Some(&form),
        )
        .await
    }

    /// The exception as the API gives it.
    async fn exception(&self, id: &str) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/recon/exceptions/{id}"),
                &self.api,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }
}

/// The exception ids of a page, in their order.
fn ids(page: &str) -> Vec<String> {
    page.match_indices("<a href=\"/console/recon/exceptions/rex_")
        .map(|(at, _)| {
            let start = at + "<a href=\"/console/recon/exceptions/".len();
            page[start..start + page[start..].find('"').unwrap()].to_string()
        })
        .collect()
}

tally_store::on_both_backends!(
    setup = Books::new;
    runs_show_their_status_and_summary_by_class,
    the_worklist_filters_sorts_and_pages_on_the_server,
    an_exception_is_assigned_and_resolved_as_the_api_would,
    a_refused_resolution_changes_nothing_and_says_why,
    pages_and_forms_need_a_live_session_the_csrf_token_and_the_scope,
    the_overview_shows_the_latest_day_with_activity_and_where_reconciliation_stands,
);

async fn runs_show_their_status_and_summary_by_class(books: Books) {
    let browser = sign_in(&books.app, &books.reader).await;
    let overview = books.page_text("/console/overview", &browser).await;
    assert!(
        overview.contains("href=\"/console/recon\">Reconciliation</a>"),
        "{overview}"
    );
    let runs = books.page_text("/console/recon", &browser).await;
    assert!(
        runs.contains(&format!("href=\"/console/recon/{RUN}\"")),
        "{runs}"
    );
    assert!(runs.contains("breaks open"), "{runs}");
    assert!(runs.contains("missing in ledger 3"), "{runs}");
    let run = books
        .page_text(&format!("/console/recon/{RUN}"), &browser)
        .await;
    // The summary's sums as the API gives them: 35.00 CNY on the channel's side.
    assert!(
        run.contains("<td>missing in ledger</td><td>CNY</td><td class=\"number\">3</td><td class=\"number\">0.00 CNY</td><td class=\"number\">35.00 CNY</td>"),
        "{run}"
    );
    assert_eq!(ids(&run), [FIRST, SECOND, THIRD]);
    // A reader is shown no action.
    assert!(!run.contains("/assign"), "{run}");
    let exception = books
        .page_text(&format!("/console/recon/exceptions/{SECOND}"), &browser)
        .await;
    assert!(exception.contains("bank-only-2"), "{exception}");
    assert!(exception.contains("20.00 CNY"), "{exception}");
    assert!(!exception.contains("/resolve"), "{exception}");

    // Every exception resolved, the run is reconciled.
    books
        .execute("UPDATE recon_exceptions SET state = 'resolved', resolution = 'note', note = 'x'")
        .await
        .unwrap();
    let runs = books.page_text("/console/recon", &browser).await;
    assert!(runs.contains("reconciled"), "{runs}");
    assert!(!runs.contains("breaks open"), "{runs}");
}

async fn the_worklist_filters_sorts_and_pages_on_the_server(books: Books) {
    let browser = sign_in(&books.app, &books.clerk).await;
    let run = format!("/console/recon/{RUN}");
    let page = books
        .page_text(&format!("{run}?sort=channel_amount&order=desc"), &browser)
        .await;
    // 20.00, 10.00, 5.00.
    assert_eq!(ids(&page), [SECOND, FIRST, THIRD]);
    assert!(page.contains("aria-sort=\"descending\""), "{page}");
    let page = books
        .page_text(&format!("{run}?sort=channel_amount&order=asc"), &browser)
        .await;
    assert_eq!(ids(&page), [THIRD, FIRST, SECOND]);
    // Filters are kept in the header's links.
    let page = books
        .page_text(
            &format!("{run}?class=missing_in_ledger&state=open"),
            &browser,
        )
        .await;
    assert_eq!(ids(&page), [FIRST, SECOND, THIRD]);
    assert!(
        page.contains(
            "?class=missing_in_ledger&amp;state=open&amp;sort=class&amp;order=asc&amp;page=1"
        ),
        "{page}"
    );
    let page = books
        .page_text(&format!("{run}?class=amount_mismatch"), &browser)
        .await;
    assert!(ids(&page).is_empty(), "{page}");
    assert!(page.contains("No exceptions."), "{page}");
    // 50 a page: the second holds none, and links back.
    let page = books.page_text(&format!("{run}?page=2"), &browser).await;
    assert!(ids(&page).is_empty(), "{page}");
    assert!(page.contains("rel=\"prev\""), "{page}");
    // Assigned to me: none, then the one assigned.
    let mine = format!("{run}?mine=1");
    assert!(ids(&books.page_text(&mine, &browser).await).is_empty());
    let answer = books
        .form(
            &format!("/console/recon/exceptions/{THIRD}/assign"),
            &browser,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(ids(&books.page_text(&mine, &browser).await), [THIRD]);
    let page = books
        .page_text(&format!("{run}?state=assigned"), &browser)
        .await;
    assert_eq!(ids(&page), [THIRD]);

    for (uri, status, code) in [
        (
            format!("{run}?sort=reference"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{run}?order=up"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{run}?page=0"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/console/recon?sort=settlement_file".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{run}?class=lost"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recon_field",
        ),
        (
            format!("{run}?state=closed"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recon_field",
        ),
        (
            "/console/recon/2026-04-30".to_string(),
            StatusCode::NOT_FOUND,
            "recon_run_not_found",
        ),
        (
            "/console/recon/exceptions/rex_20260429_00000009".to_string(),
            StatusCode::NOT_FOUND,
            "recon_exception_not_found",
        ),
    ] {
        let answer = books.page(&uri, &browser).await;
        assert_eq!(answer.status, status, "{uri}: {}", text(&answer));
        assert!(text(&answer).contains(code), "{uri}: {}", text(&answer));
    }
}

async fn an_exception_is_assigned_and_resolved_as_the_api_would(books: Books) {
    let browser = sign_in(&books.app, &books.clerk).await;
    let page = books
        .page_text(&format!("/console/recon/exceptions/{FIRST}"), &browser)
        .await;
    assert!(
        page.contains(&format!(
            "action=\"/console/recon/exceptions/{FIRST}/assign\""
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "action=\"/console/recon/exceptions/{FIRST}/resolve\""
        )),
        "{page}"
    );
    let answer = books
        .form(
            &format!("/console/recon/exceptions/{FIRST}/assign"),
            &browser,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(
        location(&answer),
        format!("/console/recon/exceptions/{FIRST}")
    );
    let api = books.exception(FIRST).await;
    assert_eq!(api["state"], "assigned");
    assert_eq!(api["assignee"], "Sun Li, finance clerk");
    // Assigned to me: no assign button any more.
    let page = books
        .page_text(&format!("/console/recon/exceptions/{FIRST}"), &browser)
        .await;
    assert!(!page.contains("/assign\""), "{page}");

    // Resolved with a note.
    let note = "the bank's test capture; it reversed it the next day";
    let answer = books
        .form(
            &format!("/console/recon/exceptions/{FIRST}/resolve"),
            &browser,
            &[("note", note)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    let api = books.exception(FIRST).await;
    assert_eq!(api["state"], "resolved");
    assert_eq!(api["resolution"], "note");
    assert_eq!(api["note"], note);
    let page = books
        .page_text(&format!("/console/recon/exceptions/{FIRST}"), &browser)
        .await;
    assert!(page.contains(note), "{page}");
    assert!(!page.contains("/resolve\""), "{page}");

    // Resolved with an adjusting entry: posted once, its id on the exception.
    let entries = books.entries().await;
    let answer = books
        .form(
            &format!("/console/recon/exceptions/{SECOND}/resolve"),
            &browser,
            &[
                ("note", "booked to suspense until the bank explains it"),
                ("description", "bank-only settlement, to suspense"),
                ("debit_account", "recon-suspense-CNY"),
                ("credit_account", "bank-differences-CNY"),
                ("amount", "20.00"),
                ("currency", "CNY"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(books.entries().await, entries + 1);
    let api = books.exception(SECOND).await;
    assert_eq!(api["resolution"], "adjusting_entry");
    let entry = api["adjusting_entry_id"].as_str().unwrap().to_string();
    let page = books
        .page_text(&format!("/console/recon/exceptions/{SECOND}"), &browser)
        .await;
    assert!(page.contains(&entry), "{page}");
    // Resolving again is the API's conflict.
    let answer = books
        .form(
            &format!("/console/recon/exceptions/{FIRST}/resolve"),
            &browser,
            &[("note", "again")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(text(&answer).contains("recon_exception_resolved"));
}

async fn a_refused_resolution_changes_nothing_and_says_why(books: Books) {
    let browser = sign_in(&books.app, &books.clerk).await;
    let resolve = format!("/console/recon/exceptions/{THIRD}/resolve");
    let entries = books.entries().await;
    let entry = |account: &'static str, amount: &'static str| {
        vec![
            ("note", "to suspense"),
            ("description", "bank-only refund"),
            ("debit_account", "recon-suspense-CNY"),
            ("credit_account", account),
            ("amount", amount),
            ("currency", "CNY"),
        ]
    };
    for (fields, status, code) in [
        (
            vec![("note", "   ")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recon_field",
        ),
        (
            entry("no-such-account", "5.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "account_not_found",
        ),
        (
            entry("bank-differences-CNY", "five"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            entry("bank-differences-CNY", "0.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_not_positive",
        ),
    ] {
        let answer = books.form(&resolve, &browser, &fields).await;
        assert_eq!(answer.status, status, "{fields:?}: {}", text(&answer));
        assert!(
            text(&answer).contains(code),
            "{fields:?}: {}",
            text(&answer)
        );
        // The refusal keeps the viewer's navigation.
        assert!(text(&answer).contains("form class=\"sign-out\""));
    }
    assert_eq!(books.entries().await, entries);
    assert_eq!(books.exception(THIRD).await["state"], "open");
    let answer = books
        .form(
            "/console/recon/exceptions/rex_20260429_00000009/assign",
            &browser,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(text(&answer).contains("recon_exception_not_found"));
}

async fn pages_and_forms_need_a_live_session_the_csrf_token_and_the_scope(books: Books) {
    let pages = [
        "/console/recon".to_string(),
        format!("/console/recon/{RUN}"),
        format!("/console/recon/exceptions/{FIRST}"),
    ];
    let assign = format!("/console/recon/exceptions/{FIRST}/assign");
    let resolve = format!("/console/recon/exceptions/{FIRST}/resolve");
    for uri in &pages {
        let answer = console_send(&books.app.router, "GET", uri, None, None).await;
        assert!(is_sign_in_redirect(&answer), "{uri}");
    }
    for uri in [&assign, &resolve] {
        let answer = console_send(
            &books.app.router,
            "POST",
            uri,
            None,
            Some(&[("csrf", "x"), ("note", "n")]),
        )
        .await;
        assert!(is_sign_in_redirect(&answer), "{uri}");
    }

    // A clerk's form without the session's CSRF token, or with another, is refused before
    // anything changes.
    let clerk = sign_in(&books.app, &books.clerk).await;
    for uri in [&assign, &resolve] {
        for csrf in [None, Some("wrong")] {
            let mut form: Vec<(&str, &str)> = vec![("note", "n")];
            form.extend(csrf.map(|token| ("csrf", token)));
            let answer = console_send(
                &books.app.router,
                "POST",
                uri,
                Some(&clerk.token),
                Some(&form),
            )
            .await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
            assert!(text(&answer).contains("csrf_token_invalid"), "{uri}");
        }
    }
    assert_eq!(books.exception(FIRST).await["state"], "open");

    // A reader sees the pages but no form, and an action is refused.
    let reader = sign_in(&books.app, &books.reader).await;
    for uri in &pages {
        let page = books.page_text(uri, &reader).await;
        assert!(!page.contains("/assign\""), "{uri}: {page}");
        assert!(!page.contains("/resolve\""), "{uri}: {page}");
    }
    for uri in [&assign, &resolve] {
        let answer = books.form(uri, &reader, &[("note", "n")]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(text(&answer).contains("lacks scope recon:write"), "{uri}");
    }
    assert_eq!(books.exception(FIRST).await["state"], "open");

    // A key without `recon:read` sees neither the pages nor their link.
    let analyst = books.key("analyst", &["risk:analyst"]).await;
    let analyst = sign_in(&books.app, &analyst).await;
    let overview = books.page_text("/console/overview", &analyst).await;
    assert!(!overview.contains("href=\"/console/recon\""), "{overview}");
    for uri in &pages {
        let answer = books.page(uri, &analyst).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(text(&answer).contains("lacks scope recon:read"), "{uri}");
    }
    for uri in [&assign, &resolve] {
        let answer = books.form(uri, &analyst, &[("note", "n")]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
    }

    // Idle past the timeout, the session is over.
    books.clock.advance(SignedDuration::from_secs(901));
    for uri in &pages {
        let answer = books.page(uri, &clerk).await;
        assert!(is_sign_in_redirect(&answer), "{uri}");
    }
    let answer = books.form(&assign, &clerk, &[]).await;
    assert!(is_sign_in_redirect(&answer));
    assert_eq!(books.exception(FIRST).await["state"], "open");
}

async fn the_overview_shows_the_latest_day_with_activity_and_where_reconciliation_stands(
    books: Books,
) {
    let admin = books.key("operator", &["admin"]).await;
    let browser = sign_in(&books.app, &admin).await;
    // Nothing posted yet: today, and the run's three exceptions open.
    let page = books.page_text("/console/overview", &browser).await;
    assert!(page.contains("Today is 2026-05-01."), "{page}");
    assert!(
        page.contains("<span class=\"number\">3</span><a href=\"/console/recon\">"),
        "{page}"
    );
    assert!(
        page.contains("latest run 2026-04-29: 3 found, 3 open"),
        "{page}"
    );
    assert!(page.contains("no settlement run yet"), "{page}");

    // An adjusting entry posted on 1 May, then three quiet days: the overview shows 1 May.
    let (status, body) = books
        .call(
            "POST",
            &format!("/v1/recon/exceptions/{FIRST}/resolve"),
            &books.clerk,
            None,
            Some(json!({
                "note": "to suspense",
                "adjusting_entry": {"description": "bank-only capture", "legs": [
                    {"account_code": "recon-suspense-CNY", "side": "debit", "amount": "10.00", "currency": "CNY"},
                    {"account_code": "bank-differences-CNY", "side": "credit", "amount": "10.00", "currency": "CNY"}
                ]}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    books.clock.advance(SignedDuration::from_hours(72));
    let browser = sign_in(&books.app, &admin).await;
    let page = books.page_text("/console/overview", &browser).await;
    assert!(
        page.contains(
            "Nothing has happened today (2026-05-04) yet: this is <strong>2026-05-01</strong>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"number\">1</span><span>ledger entries posted</span>"),
        "{page}"
    );
    assert!(
        page.contains("latest run 2026-04-29: 3 found, 2 open"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"number\">0 / 0</span><span>credit applications approved / declined</span>"),
        "{page}"
    );
    // A key with only `recon:read` sees the reconciliation tile and nothing of the others.
    let reader = sign_in(&books.app, &books.reader).await;
    let page = books.page_text("/console/overview", &reader).await;
    assert!(page.contains("reconciliation exceptions open"), "{page}");
    assert!(!page.contains("ledger entries posted"), "{page}");
    assert!(!page.contains("credit applications"), "{page}");
}
