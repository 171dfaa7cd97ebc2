//! The flow-of-funds report route in process on SQLite and PostgreSQL: a day with a card
//! top-up and a wallet payment reported as JSON and as CSV (by `Accept` and by
//! `format=csv`), and every refusal with its code: not a date, a date that does not exist,
//! an unknown currency, a missing parameter, a format not offered, a day not over yet, a
//! key without the `admin` scope, no key.
#![allow(clippy::unwrap_used)]

use axum::http::{header, StatusCode};
use jiff::Timestamp;
use serde_json::{json, Value};
use tally_store::testing::TestDatabase;

mod support;
use support::{bearer, code, privacy, request, send, Setup, TestApp};

struct Books {
    app: TestApp,
    writer: String,
    reader: String,
    admin: String,
}

support::deref_to_app!(Books);

fn amount(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

impl Books {
    /// A merchant paid 100.00 from a wallet topped up with 500.00 by card, on Friday
    /// 2026-05-01 (the service's zone is UTC).
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).payments();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let writer = app.key("shop", &["payments:write", "payments:read"]).await;
        let reader = app.key("reader", &["payments:read"]).await;
        let admin = app.key("finance", &["admin"]).await;
        let bank = app.bank.clone().unwrap();
        let card = bank
            .register_card(
                "4242424242424242",
                "12/30",
                tally_core::Amount::parse("1000.00", tally_core::Currency::CNY).unwrap(),
            )
            .await
            .unwrap();
        let books = Books {
            app,
            writer,
            reader,
            admin,
        };
        let token = card.token.as_str().to_string();
        let steps = [
            (
                "/v1/merchants",
                None,
                json!({
                    "id": "shop-a",
                    "legal_name": "Acme Trading Co.",
                    "licence_number": "LIC-A",
                    "bank_account": "6222021234567890",
                    "category_code": "5411",
                    "time_zone": "UTC",
                    "currency": "CNY",
                    "fee_schedule": {
                        "rounding": "half_up",
                        "fees": {"wallet": {"rate": "0.01", "minimum": "0.50"}}
                    },
                    "settlement": {"delay_days": 0, "reserve_basis_points": 0, "reserve_hold_days": 0}
                }),
            ),
            (
                "/v1/payments/cards",
                Some("card-1"),
                json!({"customer": "c1", "card_token": token}),
            ),
            (
                "/v1/payments/wallets/c1/top-ups",
                Some("top-up-1"),
                json!({"card_token": token, "amount": amount("500.00")}),
            ),
        ];
        for (uri, key, body) in steps {
            let (status, answer) = books
                .call("POST", uri, &books.writer, key, Some(body))
                .await;
            assert!(status.is_success(), "{uri}: {answer}");
        }
        let (status, created) = books
            .call(
                "POST",
                "/v1/payments",
                &books.writer,
                Some("p-1"),
                Some(json!({
                    "merchant_id": "shop-a",
                    "order_reference": "p-1",
                    "customer": "c1",
                    "amount": amount("100.00"),
                    "fundings": [{"kind": "wallet"}],
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap();
        let (status, paid) = books
            .call(
                "POST",
                &format!("/v1/payments/{id}/confirm"),
                &books.writer,
                Some("p-1:confirm"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{paid}");
        assert_eq!(paid["status"], "captured");
        books
    }

    async fn report(&self, key: &str, query: &str) -> (StatusCode, Value) {
        self.call(
            "GET",
            &format!("/v1/reports/flow-of-funds?{query}"),
            key,
            None,
            None,
        )
        .await
    }

    fn set_now(&self, at: &str) {
        let at: Timestamp = at.parse().unwrap();
        self.clock.set(at);
    }
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, expected: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(code(&answer.1), expected, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_string()
}

async fn a_day_is_reported_as_json_and_csv(books: Books) {
    books.set_now("2026-05-02T00:00:00Z");
    let (status, report) = books
        .report(&books.admin, "date=2026-05-01&currency=CNY")
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["business_date"], "2026-05-01");
    assert_eq!(report["currency"], "CNY");
    assert_eq!(report["time_zone"], "UTC");
    let flows = &report["flows"];
    // 100.00 paid from the wallet at 1 %: 1.00 of fees, 99.00 pending for the merchant.
    assert_eq!(flows["captured"], amount("100.00"));
    assert_eq!(flows["captures"], 1);
    assert_eq!(flows["fees_charged"], amount("1.00"));
    assert_eq!(flows["fee_income"], amount("1.00"));
    assert_eq!(flows["refunded"], amount("0.00"));
    assert_eq!(flows["settled"], amount("0.00"));
    assert_eq!(flows["paid_out"], amount("0.00"));
    // The card top-up: the channel owes Tally 500.00.
    assert_eq!(flows["clearing"], amount("500.00"));
    let balance = |role: &str| {
        report["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|balance| balance["role"] == role)
            .unwrap_or_else(|| panic!("no {role} in {report}"))
            .clone()
    };
    let pending = balance("merchant_pending");
    assert_eq!(pending["opening"], amount("0.00"));
    assert_eq!(pending["increases"], amount("99.00"));
    assert_eq!(pending["closing"], amount("99.00"));
    assert_eq!(pending["movements"][0]["kind"], "capture");
    let wallets = balance("wallets");
    assert_eq!(wallets["closing"], amount("400.00"));
    assert_eq!(wallets["normal_side"], "credit");
    assert_eq!(balance("channel_clearing")["normal_side"], "debit");

    let (status, csv) = books
        .report(&books.admin, "date=2026-05-01&currency=CNY&format=csv")
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_string();
    assert!(
        csv.starts_with(
            "business_date,currency,figure,amount\n2026-05-01,CNY,captured,100.00\n\
             2026-05-01,CNY,captures,1\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("2026-05-01,CNY,merchant_pending.closing,99.00\n"),
        "{csv}"
    );
    let answer = send(&books.router, {
        let mut by_accept = request(
            "GET",
            "/v1/reports/flow-of-funds?date=2026-05-01&currency=CNY",
            Some(&bearer(&books.admin)),
            None,
            None,
        );
        by_accept
            .headers_mut()
            .insert(header::ACCEPT, "text/csv".parse().unwrap());
        by_accept
    })
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert_eq!(String::from_utf8(answer.body).unwrap(), csv);

    // The day before: nothing moved, every balance opens and closes at zero.
    let (status, quiet) = books
        .report(&books.admin, "date=2026-04-30&currency=CNY")
        .await;
    assert_eq!(status, StatusCode::OK, "{quiet}");
    assert_eq!(quiet["flows"]["captured"], amount("0.00"));
    for balance in quiet["balances"].as_array().unwrap() {
        assert_eq!(balance["closing"], amount("0.00"), "{balance}");
        assert_eq!(balance["movements"], json!([]), "{balance}");
    }
    // Another currency has no accounts: an empty report, not an error.
    let (status, dollars) = books
        .report(&books.admin, "date=2026-05-01&currency=USD")
        .await;
    assert_eq!(status, StatusCode::OK, "{dollars}");
    assert_eq!(dollars["balances"], json!([]));
    assert_eq!(
        dollars["flows"]["captured"],
        json!({"currency": "USD", "value": "0.00"})
    );
}

async fn every_refusal_has_its_code(books: Books) {
    // Friday is not over yet at 09:00 UTC.
    let message = refused(
        &books
            .report(&books.admin, "date=2026-05-01&currency=CNY")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "report_date_not_closed",
    );
    assert!(
        message.contains("2026-05-01") && message.contains("UTC"),
        "{message}"
    );
    refused(
        &books
            .report(&books.admin, "date=2026-06-01&currency=CNY")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "report_date_not_closed",
    );
    for date in ["someday", "2026-02-30", "01%2F05%2F2026", ""] {
        let message = refused(
            &books
                .report(&books.admin, &format!("date={date}&currency=CNY"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_business_date",
        );
        assert!(message.contains("is not a date"), "{message}");
    }
    for currency in ["XXY", "cny", "EURO", ""] {
        refused(
            &books
                .report(
                    &books.admin,
                    &format!("date=2026-04-30&currency={currency}"),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        );
    }
    let message = refused(
        &books
            .report(&books.admin, "date=2026-04-30&currency=CNY&format=xlsx")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_report_format",
    );
    assert!(message.contains("xlsx"), "{message}");
    for query in [
        "date=2026-04-30",
        "currency=CNY",
        "date=2026-04-30&currency=CNY&merchant=x",
    ] {
        refused(
            &books.report(&books.admin, query).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    for key in [&books.reader, &books.writer] {
        let answer = books.report(key, "date=2026-04-30&currency=CNY").await;
        assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    }
    let anonymous = books
        .call_raw(
            "GET",
            "/v1/reports/flow-of-funds?date=2026-04-30&currency=CNY",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(anonymous.0, StatusCode::UNAUTHORIZED, "{}", anonymous.1);
}

tally_store::on_both_backends!(
    setup = Books::new;
    a_day_is_reported_as_json_and_csv,
    every_refusal_has_its_code,
);
