//! The console's Payments, Merchants and Settlement pages over HTTP, on SQLite and
//! PostgreSQL: a payment's timeline, sources and refunds and a merchant's statements shown
//! exactly as the API gives them, a held delivery released from its risk case, tables
//! sorted and paged on the server, and sessions, scopes and CSRF as every page.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use tally_service::caller::Caller;
use tally_store::testing::TestDatabase;

mod support;
use support::console::{console_send, is_sign_in_redirect, location, sign_in, text, Browser};
use support::{privacy, Answer, Setup, TestApp};

struct Shop {
    app: TestApp,
    writer: String,
    reader: String,
    admin: String,
}

support::deref_to_app!(Shop);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

/// Rules by amount (minor units): 2,000.00 and more holds the order's delivery.
const HOLD_BIG_ORDERS: &str = r#"
name = "hold big orders"

[[rules]]
id = "watch_delivery"
condition = "amount >= 200000"
action = "hold_delivery"
reason = "AMOUNT_WATCH"
"#;

impl Shop {
    async fn new(test: TestDatabase) -> Self {
        // Friday 2026-05-01, 09:00 UTC.
        let setup = Setup::default().privacy(privacy()).payments().risk();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let reader = app.key("reader", &["payments:read"]).await;
        let admin = app.key("operator", &["admin"]).await;
        let bank = app.bank.clone().unwrap();
        let card = bank
            .register_card(
                "4242424242424242",
                "12/30",
                tally_core::Amount::parse("10000.00", tally_core::Currency::CNY).unwrap(),
            )
            .await
            .unwrap();
        let shop = Shop {
            app,
            writer,
            reader,
            admin,
        };
        let token = card.token.as_str().to_string();
        shop.post(
            "/v1/payments/cards",
            Some("card-1"),
            json!({"customer": "c1", "card_token": token}),
        )
        .await;
        shop.post(
            "/v1/payments/wallets/c1/top-ups",
            Some("top-up-1"),
            json!({"card_token": token, "amount": amount("5000.00")}),
        )
        .await;
        shop.post(
            "/v1/merchants",
            None,
            json!({
                "id": "shop-a",
                "legal_name": "Acme Trading Co.",
                "licence_number": "91310000MA1FL4XQ3",
                "bank_account": "6222021234567890",
                "category_code": "5411",
                "time_zone": "Asia/Shanghai",
                "currency": "CNY",
                "fee_schedule": {
                    "rounding": "half_up",
                    "fees": {"wallet": {"rate": "0.01", "minimum": "0.50"}}
                },
                "settlement": {"delay_days": 1, "reserve_basis_points": 500, "reserve_hold_days": 7}
            }),
        )
        .await;
        shop
    }

    /// A write that must succeed: its body.
    async fn post(&self, uri: &str, key: Option<&str>, body: Value) -> Value {
        let (status, answer) = self.call("POST", uri, &self.writer, key, Some(body)).await;
        assert!(status.is_success(), "{uri}: {status} {answer}");
        answer
    }

    async fn api(&self, uri: &str) -> Value {
        let (status, body) = self.call("GET", uri, &self.reader, None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// A wallet payment of `total` to `merchant`, confirmed: its id.
    async fn pay(&self, order: &str, merchant: &str, total: &str) -> String {
        let created = self
            .post(
                "/v1/payments",
                Some(&format!("create-{order}")),
                json!({
                    "merchant_id": merchant,
                    "order_reference": order,
                    "customer": "c1",
                    "amount": amount(total),
                    "fundings": [{"kind": "wallet"}],
                }),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        self.post(
            &format!("/v1/payments/{id}/confirm"),
            Some(&format!("confirm-{order}")),
            json!({}),
        )
        .await;
        id
    }

    async fn page(&self, uri: &str, browser: &Browser) -> Answer {
        console_send(&self.app.router, "GET", uri, Some(&browser.token), None).await
    }

    async fn page_text(&self, uri: &str, browser: &Browser) -> String {
        let answer = self.page(uri, browser).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", text(&answer));
        text(&answer)
    }

    /// Makes the rule that holds big orders' delivery live (uploaded by one key, approved
    /// by another).
    async fn hold_big_orders(&self) {
        let risk = self.app.risk.as_ref().unwrap();
        let caller = |name: &str| Caller {
            key_id: name.into(),
            name: name.into(),
        };
        let uploaded = risk
            .upload_rule_set(HOLD_BIG_ORDERS, true, &caller("maker"))
            .await
            .unwrap();
        let request = uploaded.activation_request.unwrap();
        risk.decide_activation(&request.id, true, &caller("checker"))
            .await
            .unwrap();
    }
}

/// An amount of the API's JSON as the console writes it.
fn shown(amount: &Value) -> String {
    format!(
        "{} {}",
        amount["value"].as_str().unwrap(),
        amount["currency"].as_str().unwrap()
    )
}

tally_store::on_both_backends!(
    setup = Shop::new;
    a_payment_shows_its_timeline_sources_and_refunds_as_the_api_gives_them,
    a_held_delivery_is_released_from_its_case_once,
    a_merchant_shows_its_terms_and_statements_masked_and_exact,
    tables_sort_and_page_on_the_server_and_refuse_a_bad_query,
    pages_need_a_live_session_and_the_scope,
);

async fn a_payment_shows_its_timeline_sources_and_refunds_as_the_api_gives_them(shop: Shop) {
    let id = shop.pay("order-1", "shop-a", "100.00").await;
    shop.post(
        &format!("/v1/payments/{id}/refunds"),
        Some("refund-1"),
        json!({"amount": amount("30.25"), "policy": "reverse_funding"}),
    )
    .await;
    let api = shop.api(&format!("/v1/payments/{id}")).await;
    let browser = sign_in(&shop.app, &shop.reader).await;
    let page = shop
        .page_text(&format!("/console/payments/{id}"), &browser)
        .await;
    assert!(page.contains(&shown(&api["amount"])), "{page}");
    assert!(page.contains("partially refunded"), "{page}");
    // Every status change, with its time and cause, in order.
    let transitions = api["transitions"].as_array().unwrap();
    assert!(transitions.len() >= 2, "{api}");
    let mut at = 0;
    for change in transitions {
        let row = format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            change["at"].as_str().unwrap(),
            change["from"].as_str().unwrap().replace('_', " "),
            change["to"].as_str().unwrap().replace('_', " "),
            change["cause"].as_str().unwrap(),
        );
        let found = page[at..]
            .find(&row)
            .unwrap_or_else(|| panic!("{row} in {page}"));
        at += found + row.len();
    }
    // The source and the refund, exact.
    let leg = &api["legs"][0];
    assert!(page.contains("<td>wallet</td>"), "{page}");
    for value in ["amount", "captured", "refunded"] {
        assert!(page.contains(&shown(&leg[value])), "{value} {page}");
    }
    let refund = &api["refunds"][0];
    assert_eq!(refund["amount"]["value"], "30.25");
    assert!(page.contains("30.25 CNY"), "{page}");
    assert!(page.contains(refund["id"].as_str().unwrap()));
    assert!(page.contains("reverse funding"), "{page}");
    // Not held: nothing to release.
    assert!(!page.contains("delivery-release"), "{page}");
    // The find box goes to the page; an unknown payment is the API's 404.
    let answer = shop
        .page(&format!("/console/payments/find?id={id}"), &browser)
        .await;
    assert_eq!(location(&answer), format!("/console/payments/{id}"));
    let answer = shop.page("/console/payments/find?id=a%20b", &browser).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = shop
        .page("/console/payments/no-such-payment", &browser)
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(text(&answer).contains("payment_not_found"));
}

async fn a_held_delivery_is_released_from_its_case_once(shop: Shop) {
    shop.hold_big_orders().await;
    let id = shop.pay("order-big", "shop-a", "2500.00").await;
    assert_eq!(
        shop.api(&format!("/v1/payments/{id}")).await["delivery_held"],
        true
    );
    let case: String = tally_store::with_pool!(&shop.database, |pool| sqlx::query_scalar(
        "SELECT id FROM risk_cases WHERE kind = 'hold_delivery'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    // A reader sees the payment held, and no action.
    let reader = sign_in(&shop.app, &shop.reader).await;
    let page = shop
        .page_text(&format!("/console/payments/{id}"), &reader)
        .await;
    assert!(page.contains("held by risk control"), "{page}");
    assert!(!page.contains("delivery-release"), "{page}");
    // The hold is in the timeline, with the case that holds it.
    let held_row = format!(
        "<td colspan=\"2\">delivery held by risk control</td><td>risk control held the delivery, case {case}</td>"
    );
    assert!(page.contains(&held_row), "{held_row} in {page}");
    assert!(!page.contains("delivery released"), "{page}");
    let release = format!("/console/payments/{id}/delivery-release");
    let answer = console_send(
        &shop.app.router,
        "POST",
        &release,
        Some(&reader.token),
        Some(&[("csrf", &reader.csrf)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    // The analyst's case links the payment and releases it.
    let analyst_key = shop
        .key("analyst", &["risk:analyst", "payments:read"])
        .await;
    let analyst = sign_in(&shop.app, &analyst_key).await;
    let page = shop
        .page_text(&format!("/console/cases/{case}"), &analyst)
        .await;
    assert!(
        page.contains(&format!("href=\"/console/payments/{id}\"")),
        "{page}"
    );
    assert!(page.contains(&format!("action=\"{release}\"")), "{page}");
    for csrf in [None, Some("wrong")] {
        let form: Vec<(&str, &str)> = csrf.map(|token| ("csrf", token)).into_iter().collect();
        let answer = console_send(
            &shop.app.router,
            "POST",
            &release,
            Some(&analyst.token),
            Some(&form),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(text(&answer).contains("csrf_token_invalid"));
    }
    assert_eq!(
        shop.api(&format!("/v1/payments/{id}")).await["delivery_held"],
        true
    );
    for _ in 0..2 {
        let answer = console_send(
            &shop.app.router,
            "POST",
            &release,
            Some(&analyst.token),
            Some(&[("csrf", &analyst.csrf)]),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
        assert_eq!(location(&answer), format!("/console/payments/{id}"));
    }
    let api = shop.api(&format!("/v1/payments/{id}")).await;
    assert_eq!(api["delivery_held"], false, "{api}");
    // Released once: the API keeps the hold and the one release, in order.
    let changes = api["delivery_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{api}");
    assert_eq!(changes[0]["held"], true, "{api}");
    assert_eq!(changes[1]["held"], false, "{api}");
    assert_eq!(changes[1]["cause"], "released by an analyst", "{api}");
    let page = shop
        .page_text(&format!("/console/payments/{id}"), &analyst)
        .await;
    assert!(page.contains("not held"), "{page}");
    assert!(!page.contains("Release delivery"), "{page}");
    // The timeline shows the hold, then the release at its time.
    let released_row = format!(
        "<td>{}</td><td colspan=\"2\">delivery released</td><td>released by an analyst</td>",
        changes[1]["at"].as_str().unwrap()
    );
    let held_at = page.find(&held_row).unwrap_or_else(|| panic!("{page}"));
    let released_at = page
        .find(&released_row)
        .unwrap_or_else(|| panic!("{released_row} in {page}"));
    assert!(held_at < released_at, "{page}");
}

async fn a_merchant_shows_its_terms_and_statements_masked_and_exact(shop: Shop) {
    shop.pay("order-1", "shop-a", "100.00").await;
    shop.pay("order-2", "shop-a", "33.33").await;
    // Friday's captures settle T+1 on Monday 2026-05-04, once Monday has ended.
    shop.clock
        .set("2026-05-05T01:00:00Z".parse::<Timestamp>().unwrap());
    let (status, run) = shop
        .call(
            "POST",
            "/v1/settlement/runs",
            &shop.admin,
            None,
            Some(json!({"business_date": "2026-05-04"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let statements = shop
        .api("/v1/settlement/runs/2026-05-04/statements?merchant_id=shop-a")
        .await;
    let statement = &statements["statements"][0];
    assert_eq!(statement["gross"], amount("133.33"));
    let browser = sign_in(&shop.app, &shop.reader).await;
    let page = shop.page_text("/console/merchants/shop-a", &browser).await;
    // Masked as the API masks; nothing sealed appears in clear.
    for clear in ["Acme", "91310000MA1FL4XQ3", "6222021234567890", "MA1FL"] {
        assert!(!page.contains(clear), "{clear} in {page}");
    }
    assert!(page.contains(&format!("A{}", "*".repeat(15))), "{page}");
    assert!(page.contains("************7890"), "{page}");
    // Fees and terms as stored; the statement's every amount as the API gives it.
    assert!(page.contains("<td class=\"number\">0.01</td>"), "{page}");
    assert!(
        page.contains("<td class=\"number\">0.50 CNY</td>"),
        "{page}"
    );
    assert!(page.contains("T+1 business days"), "{page}");
    assert!(page.contains("500 basis points, held 7 days"), "{page}");
    for field in ["gross", "fees", "refunds", "reserve_held", "net"] {
        assert!(page.contains(&shown(&statement[field])), "{field}: {page}");
    }
    assert!(page.contains(&shown(&statement["balances"]["available"])));
    assert!(page.contains("href=\"/console/settlement/2026-05-04\""));

    let runs = shop.page_text("/console/settlement", &browser).await;
    assert!(
        runs.contains("href=\"/console/settlement/2026-05-04\""),
        "{runs}"
    );
    let run_page = shop
        .page_text("/console/settlement/2026-05-04", &browser)
        .await;
    assert!(
        run_page.contains("href=\"/console/merchants/shop-a\""),
        "{run_page}"
    );
    assert!(run_page.contains(&shown(&statement["net"])), "{run_page}");
    for (uri, status, code) in [
        (
            "/console/settlement/someday",
            StatusCode::BAD_REQUEST,
            "invalid_date",
        ),
        (
            "/console/settlement/2026-05-09",
            StatusCode::NOT_FOUND,
            "settlement_run_not_found",
        ),
        (
            "/console/merchants/no-such-shop",
            StatusCode::NOT_FOUND,
            "merchant_not_found",
        ),
    ] {
        let answer = shop.page(uri, &browser).await;
        assert_eq!(answer.status, status, "{uri}");
        assert!(text(&answer).contains(code), "{uri}: {}", text(&answer));
    }
}

async fn tables_sort_and_page_on_the_server_and_refuse_a_bad_query(shop: Shop) {
    let amounts = ["12.00", "3.50", "250.00", "0.99"];
    for (number, total) in amounts.iter().enumerate() {
        shop.pay(&format!("order-{number}"), "shop-a", total).await;
    }
    let browser = sign_in(&shop.app, &shop.reader).await;
    let order_of = |page: &str| -> Vec<String> {
        amounts
            .iter()
            .map(|total| {
                (
                    page.find(&format!("{total} CNY")).unwrap(),
                    total.to_string(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect()
    };
    let ascending = shop
        .page_text("/console/payments?sort=amount&order=asc", &browser)
        .await;
    assert_eq!(order_of(&ascending), ["0.99", "3.50", "12.00", "250.00"]);
    assert!(ascending.contains("aria-sort=\"ascending\""), "{ascending}");
    // The sorted column's header turns the order around.
    assert!(ascending.contains("href=\"/console/payments?sort=amount&amp;order=desc&amp;page=1\""));
    let descending = shop
        .page_text("/console/payments?sort=amount&order=desc", &browser)
        .await;
    assert_eq!(order_of(&descending), ["250.00", "12.00", "3.50", "0.99"]);
    // 50 rows a page: a second page holds none of these, and links back.
    let second = shop
        .page_text("/console/payments?sort=amount&order=desc&page=2", &browser)
        .await;
    assert!(!second.contains("CNY</td>"), "{second}");
    assert!(second.contains("rel=\"prev\""), "{second}");
    assert!(!descending.contains("rel=\"next\""), "{descending}");

    let merchants = shop
        .page_text("/console/merchants?sort=id&order=desc", &browser)
        .await;
    let position = |id: &str| merchants.find(&format!(">{id}</a>")).unwrap();
    assert!(position("shop-a") < position("merchant-1"), "{merchants}");
    assert!(position("m2") < position("m1"), "{merchants}");

    for uri in [
        "/console/payments?sort=amount_minor",
        "/console/payments?order=sideways",
        "/console/payments?page=0",
        "/console/payments?page=-3",
        "/console/merchants?sort=legal_name",
        "/console/settlement?page=x",
    ] {
        let answer = shop.page(uri, &browser).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(text(&answer).contains("invalid_query"), "{uri}");
    }
}

async fn pages_need_a_live_session_and_the_scope(shop: Shop) {
    let id = shop.pay("order-1", "shop-a", "100.00").await;
    let pages = [
        "/console/payments".to_string(),
        format!("/console/payments/{id}"),
        "/console/merchants".to_string(),
        "/console/merchants/shop-a".to_string(),
        "/console/settlement".to_string(),
        "/console/settlement/2026-05-04".to_string(),
    ];
    let release = format!("/console/payments/{id}/delivery-release");
    for uri in &pages {
        let answer = console_send(&shop.app.router, "GET", uri, None, None).await;
        assert!(is_sign_in_redirect(&answer), "{uri}");
    }
    let answer = console_send(
        &shop.app.router,
        "POST",
        &release,
        None,
        Some(&[("csrf", "x")]),
    )
    .await;
    assert!(is_sign_in_redirect(&answer));
    // A clerk without `payments:read` sees neither the pages nor their links.
    let clerk = shop.key("clerk", &["credit:read"]).await;
    let browser = sign_in(&shop.app, &clerk).await;
    let overview = shop.page_text("/console/overview", &browser).await;
    assert!(
        !overview.contains("href=\"/console/payments\""),
        "{overview}"
    );
    assert!(
        !overview.contains("href=\"/console/merchants\""),
        "{overview}"
    );
    for uri in &pages {
        let answer = shop.page(uri, &browser).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(text(&answer).contains("lacks scope payments:read"), "{uri}");
    }
    // A reader's session ends when idle past the timeout.
    let browser = sign_in(&shop.app, &shop.reader).await;
    let overview = shop.page_text("/console/overview", &browser).await;
    assert!(
        overview.contains("href=\"/console/payments\""),
        "{overview}"
    );
    assert!(
        overview.contains("href=\"/console/merchants\""),
        "{overview}"
    );
    shop.clock.advance(SignedDuration::from_secs(901));
    for uri in &pages {
        let answer = shop.page(uri, &browser).await;
        assert!(is_sign_in_redirect(&answer), "{uri}");
    }
}
