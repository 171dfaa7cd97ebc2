//! The payout routes in process on SQLite and PostgreSQL: every refusal with its code (no
//! idempotency key, an unknown or suspended merchant, a payout above the available balance,
//! another currency, a key reused, a batch empty, too large, mixed or whose items together
//! overdraw, an unknown payout or batch, a state or limit that is not one, an encoding that
//! is not one, a return file before its batch file, one that does not parse, answers
//! another batch, payout or amount, or moves a paid payout to failed, a scheduled run before
//! its settlement run); a payout paid through the bank file; the fault test: a batch sent to
//! the bank simulator with failed and returned rows ends with each payout in the state the
//! bank gave it and the money back in the available balance it came from, the books
//! balanced; a funding a crash left undone is posted once; scheduled payouts after a
//! settlement run.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tally_channel::payout_file::{FileEncoding, PayoutFile, ReturnFile, ReturnStatus};
use tally_channel::simulator::FaultsUpdate;
use tally_channel::simulator::PartsPerMillion;
use tally_core::{Amount, Clock, Currency};
use tally_ledger::{Actor, Command, NewEntry, NewLeg, Side};
use tally_store::testing::TestDatabase;

mod support;
use support::{bearer, code, privacy, send, Setup, TestApp};

struct Payouts {
    app: TestApp,
    writer: String,
    reader: String,
    admin: String,
}

support::deref_to_app!(Payouts);

fn cny(value: &str) -> Value {
    json!({ "value": value, "currency": "CNY" })
}

fn merchant(id: &str, legal_name: &str, bank_account: &str) -> Value {
    json!({
        "id": id,
        "legal_name": legal_name,
        "licence_number": format!("LIC-{id}"),
        "bank_account": bank_account,
        "category_code": "5411",
        "time_zone": "UTC",
        "currency": "CNY",
        "fee_schedule": {"fees": {}},
        "settlement": {"delay_days": 1}
    })
}

impl Payouts {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).payments();
        let app = TestApp::start(test, "2026-05-04T09:00:00Z", setup).await;
        let writer = app
            .key("payouts", &["payments:write", "payments:read"])
            .await;
        let reader = app.key("reader", &["payments:read"]).await;
        let admin = app.key("operator", &["admin"]).await;
        let payouts = Payouts {
            app,
            writer,
            reader,
            admin,
        };
        for (id, name, account) in [
            ("shop-a", "上海示例贸易有限公司", "6222021234567890"),
            ("shop-b", "Acme Trading Co.", "6222029876543210"),
            // The bank fails every payout to an account number that is not digits.
            ("shop-c", "北京关闭商行", "CLOSED-0001"),
        ] {
            let (status, body) = payouts
                .post("/v1/merchants", None, merchant(id, name, account))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        payouts
    }

    async fn post(&self, uri: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.writer, key, Some(body)).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &self.reader, None, None).await
    }

    fn payments(&self) -> &tally_service::payments::PaymentService {
        self.app.payments.as_deref().unwrap()
    }

    async fn account(&self, code: &str) -> tally_core::AccountId {
        self.database
            .account_id_by_code(code)
            .await
            .unwrap()
            .unwrap()
    }

    /// A liability's balance (credits less debits), or an asset's (debits less credits)
    /// when `asset`, in minor units.
    async fn balance(&self, code: &str, asset: bool) -> i64 {
        let id = self.account(code).await;
        let balance = self.database.account(id).await.unwrap().unwrap().balance;
        let liability = balance.credits_posted - balance.debits_posted;
        if asset {
            -liability
        } else {
            liability
        }
    }

    async fn available(&self, merchant: &str) -> i64 {
        self.balance(
            &format!("payments-merchant-{merchant}-available-CNY"),
            false,
        )
        .await
    }

    async fn payable(&self, merchant: &str) -> i64 {
        self.balance(&format!("payments-merchant-{merchant}-payable-CNY"), false)
            .await
    }

    async fn clearing(&self) -> i64 {
        self.balance("payments-channel-clearing-CNY", true).await
    }

    /// Puts `minor` in a merchant's available balance, as a settlement would (from the
    /// channel's clearing account, where captured card money waits).
    async fn fund(&self, merchant: &str, minor: i64) {
        let service = self
            .payments()
            .accounts()
            .service(&self.database, &self.writer_handle(), Currency::CNY)
            .await
            .unwrap();
        let available = self
            .account(&format!("payments-merchant-{merchant}-available-CNY"))
            .await;
        let amount = Amount::new(minor, Currency::CNY);
        let entry = NewEntry {
            description: format!("test settlement of {merchant}"),
            metadata: BTreeMap::new(),
            legs: vec![
                NewLeg {
                    account_id: service.channel_clearing,
                    side: Side::Debit,
                    amount,
                },
                NewLeg {
                    account_id: available,
                    side: Side::Credit,
                    amount,
                },
            ],
        };
        self.app
            .writer
            .submit_as(
                Actor::Service("payments"),
                format!("payments-test-fund:{merchant}:{minor}"),
                Command::PostEntry(entry),
            )
            .await
            .unwrap();
    }

    fn writer_handle(&self) -> tally_store::LedgerWriter {
        self.app.writer.clone()
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }

    async fn take_file(&self, batch: &str, encoding: &str) -> (StatusCode, Vec<u8>) {
        let answer = send(
            &self.router,
            Request::builder()
                .method("POST")
                .uri(format!(
                    "/v1/payouts/batches/{batch}/file?encoding={encoding}"
                ))
                .header(header::AUTHORIZATION, bearer(&self.writer))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        (answer.status, answer.body)
    }

    async fn post_return(
        &self,
        batch: &str,
        bytes: Vec<u8>,
        encoding: &str,
    ) -> (StatusCode, Value) {
        let answer = send(
            &self.router,
            Request::builder()
                .method("POST")
                .uri(format!(
                    "/v1/payouts/batches/{batch}/return-file?encoding={encoding}"
                ))
                .header(header::AUTHORIZATION, bearer(&self.writer))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await;
        (answer.status, answer.json())
    }

    async fn books_balance(&self) {
        for totals in self.database.currency_totals().await.unwrap() {
            assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
        }
        assert_eq!(
            self.database.inconsistent_accounts().await.unwrap(),
            Vec::<String>::new()
        );
    }
}

/// A refusal: its status and code; the message.
fn refused(answer: &(StatusCode, Value), status: StatusCode, expected: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(code(&answer.1), expected, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_string()
}

fn payout(merchant: &str, value: &str) -> Value {
    json!({"merchant_id": merchant, "amount": cny(value)})
}

async fn every_refusal_has_its_code(app: Payouts) {
    app.fund("shop-a", 10_000).await;
    let entries = app.entries().await;

    let no_key = app
        .post("/v1/payouts", None, payout("shop-a", "1.00"))
        .await;
    assert_eq!(no_key.0, StatusCode::BAD_REQUEST, "{}", no_key.1);
    let message = refused(
        &app.post("/v1/payouts", Some("k1"), payout("nobody", "1.00"))
            .await,
        StatusCode::NOT_FOUND,
        "merchant_not_found",
    );
    assert!(message.contains("nobody"), "{message}");
    let message = refused(
        &app.post("/v1/payouts", Some("k2"), payout("shop-a", "100.01"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_above_available_balance",
    );
    assert!(message.contains("100.00"), "{message}");
    refused(
        &app.post(
            "/v1/payouts",
            Some("k3"),
            json!({"merchant_id": "shop-a", "amount": {"value": "1.00", "currency": "USD"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_currency_mismatch",
    );
    refused(
        &app.post("/v1/payouts", Some("k4"), payout("shop-a", "0.00"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_amount_not_positive",
    );
    refused(
        &app.post("/v1/payouts", Some("k5"), payout("shop-a", "1.001"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_amount",
    );
    // A suspended merchant's balance is held; active again, it is paid.
    let (status, _) = app
        .post(
            "/v1/merchants/shop-a/status",
            None,
            json!({"status": "suspended", "reason": "chargeback review"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    refused(
        &app.post("/v1/payouts", Some("k6"), payout("shop-a", "1.00"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_suspended",
    );
    let (status, _) = app
        .post(
            "/v1/merchants/shop-a/status",
            None,
            json!({"status": "active", "reason": "review closed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Nothing refused moved money.
    assert_eq!(app.entries().await, entries);
    assert_eq!(app.available("shop-a").await, 10_000);

    let (status, created) = app
        .post("/v1/payouts", Some("k7"), payout("shop-a", "1.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, again) = app
        .post("/v1/payouts", Some("k7"), payout("shop-a", "1.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, created);
    refused(
        &app.post("/v1/payouts", Some("k7"), payout("shop-a", "2.00"))
            .await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    );

    // Batches.
    refused(
        &app.post("/v1/payouts/batches", Some("b1"), json!({"payouts": []}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_batch_empty",
    );
    let many: Vec<Value> = (0..1001).map(|_| payout("shop-a", "0.01")).collect();
    refused(
        &app.post("/v1/payouts/batches", Some("b2"), json!({"payouts": many}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_batch_too_large",
    );
    let message = refused(
        &app.post(
            "/v1/payouts/batches",
            Some("b3"),
            json!({"payouts": [payout("shop-a", "60.00"), payout("shop-a", "39.01")]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_above_available_balance",
    );
    assert!(message.starts_with("payouts[1]: "), "{message}");
    let message = refused(
        &app.post(
            "/v1/payouts/batches",
            Some("b4"),
            json!({"payouts": [payout("shop-a", "1.00"), payout("ghost", "1.00")]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "merchant_not_found",
    );
    assert!(message.starts_with("payouts[1]: "), "{message}");
    let message = refused(
        &app
            .post(
                "/v1/payouts/batches",
                Some("b5"),
                json!({"payouts": [payout("shop-a", "1.00"), {"merchant_id": "shop-b", "amount": {"value": "1", "currency": "JPY"}}]}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_currency_mismatch",
    );
    assert!(message.starts_with("payouts[1]: "), "{message}");

    // Reads.
    refused(
        &app.get("/v1/payouts/po_nothing").await,
        StatusCode::NOT_FOUND,
        "payout_not_found",
    );
    refused(
        &app.get("/v1/payouts/batches/pob_nothing").await,
        StatusCode::NOT_FOUND,
        "payout_batch_not_found",
    );
    refused(
        &app.get("/v1/payouts?state=pending").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_payout_state",
    );
    refused(
        &app.get("/v1/payouts?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    );
    refused(
        &app.get("/v1/payouts?merchant_id=ghost").await,
        StatusCode::NOT_FOUND,
        "merchant_not_found",
    );
    let (status, listed) = app
        .get("/v1/payouts?merchant_id=shop-a&state=created")
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["payouts"].as_array().unwrap().len(), 1);
    let (_, none) = app.get("/v1/payouts?merchant_id=shop-b").await;
    assert_eq!(none["payouts"], json!([]));

    // Files.
    let batch = created["batch_id"].as_str().unwrap().to_string();
    let (status, body) = app.take_file("pob_nothing", "utf-8").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = app.take_file(&batch, "latin-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let reference = created["id"].as_str().unwrap();
    let answer = |amount: &str, status: &str| {
        format!("H,{batch},2026-05-04,CNY,1\nD,1,{reference},{amount},{status},account_closed\n")
            .into_bytes()
    };
    refused(
        &app.post_return(&batch, answer("1.00", "RETURNED"), "utf-8")
            .await,
        StatusCode::CONFLICT,
        "payout_not_submitted",
    );
    let (status, file) = app.take_file(&batch, "utf-8").await;
    assert_eq!(status, StatusCode::OK);
    let file = String::from_utf8(file).unwrap();
    assert!(file.starts_with(&format!("H,{batch},2026-05-04,CNY,1,1.00\nD,1,{reference},6222021234567890,上海示例贸易有限公司,1.00\n")), "{file}");
    let message = refused(
        &app.post_return(&batch, b"H,x\n".to_vec(), "utf-8").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_payout_file",
    );
    assert!(message.starts_with("line 1: "), "{message}");
    refused(
        &app.post_return(
            &batch,
            format!("H,pob_other,2026-05-04,CNY,1\nD,1,{reference},1.00,PAID,\n").into_bytes(),
            "utf-8",
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "return_file_mismatch",
    );
    refused(
        &app.post_return(
            &batch,
            format!("H,{batch},2026-05-04,CNY,1\nD,1,po_stranger,1.00,PAID,\n").into_bytes(),
            "utf-8",
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "return_file_mismatch",
    );
    refused(
        &app.post_return(&batch, answer("1.01", "RETURNED"), "utf-8")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "return_file_mismatch",
    );
    let (status, paid) = app
        .post_return(
            &batch,
            format!("H,{batch},2026-05-04,CNY,1\nD,1,{reference},1.00,PAID,\n").into_bytes(),
            "utf-8",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    let message = refused(
        &app.post_return(&batch, answer("1.00", "FAILED"), "utf-8")
            .await,
        StatusCode::CONFLICT,
        "payout_state_conflict",
    );
    assert!(message.contains("paid"), "{message}");

    // Scheduled payouts wait for their settlement run, and need an operator's key.
    refused(
        &app.call(
            "POST",
            "/v1/payouts/runs",
            &app.admin,
            None,
            Some(json!({"business_date": "2026-05-03"})),
        )
        .await,
        StatusCode::CONFLICT,
        "settlement_run_not_done",
    );
    let (status, _) = app
        .call(
            "POST",
            "/v1/payouts/runs",
            &app.writer,
            None,
            Some(json!({"business_date": "2026-05-03"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            "POST",
            "/v1/payouts",
            &app.reader,
            Some("k9"),
            Some(payout("shop-a", "1.00")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.books_balance().await;
}

async fn a_payout_moves_to_payable_then_to_the_bank(app: Payouts) {
    app.fund("shop-b", 50_000).await;
    let clearing = app.clearing().await;
    let (status, created) = app
        .post("/v1/payouts", Some("p1"), payout("shop-b", "120.50"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "created");
    assert_eq!(created["amount"], cny("120.50"));
    assert_eq!(created["source"], "merchant_available");
    assert_eq!(app.available("shop-b").await, 50_000 - 12_050);
    assert_eq!(app.payable("shop-b").await, 12_050);
    let id = created["id"].as_str().unwrap();
    let batch = created["batch_id"].as_str().unwrap();

    let (status, first) = app.take_file(batch, "gbk").await;
    assert_eq!(status, StatusCode::OK);
    let (_, second) = app.take_file(batch, "gbk").await;
    assert_eq!(first, second, "the same file every time it is taken");
    let (_, submitted) = app.get(&format!("/v1/payouts/{id}")).await;
    assert_eq!(submitted["state"], "submitted");
    let bank = app.bank.clone().unwrap();
    let answer = bank.payout_file(&first, FileEncoding::Gbk).await.unwrap();
    let (status, batch_view) = app.post_return(batch, answer.clone(), "gbk").await;
    assert_eq!(status, StatusCode::OK, "{batch_view}");
    assert_eq!(batch_view["status"], "answered");
    let (_, paid) = app.get(&format!("/v1/payouts/{id}")).await;
    assert_eq!(paid["state"], "paid");
    let states: Vec<&str> = paid["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["created", "submitted", "paid"]);
    assert_eq!(app.payable("shop-b").await, 0);
    assert_eq!(app.available("shop-b").await, 50_000 - 12_050);
    assert_eq!(app.clearing().await, clearing - 12_050);
    // The return file read again moves nothing.
    let entries = app.entries().await;
    let (status, _) = app.post_return(batch, answer, "gbk").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.entries().await, entries);
    app.books_balance().await;
}

/// The fault test: a batch over three merchants sent to the bank simulator, which fails
/// some rows (every one to shop-c's account, which is not digits, and others at random)
/// and returns others; each payout ends in the state the bank's file gives it, paid money
/// has left through the channel, the rest is back in each merchant's available balance.
async fn a_batch_with_failed_and_returned_payouts_puts_the_money_back(app: Payouts) {
    let merchants = ["shop-a", "shop-b", "shop-c"];
    for merchant in merchants {
        app.fund(merchant, 100_000).await;
    }
    let clearing = app.clearing().await;
    let bank = app.bank.clone().unwrap();
    bank.set_faults(&FaultsUpdate {
        payout_failure_rate_ppm: Some(PartsPerMillion::new(200_000).unwrap()),
        payout_return_rate_ppm: Some(PartsPerMillion::new(300_000).unwrap()),
        ..FaultsUpdate::default()
    })
    .await
    .unwrap();
    let items: Vec<Value> = (0..24)
        .map(|index| {
            let merchant = merchants[index % 3];
            payout(merchant, &format!("{}.{:02}", 10 + index, index))
        })
        .collect();
    let (status, batch) = app
        .post(
            "/v1/payouts/batches",
            Some("batch-1"),
            json!({"payouts": items}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let batch_id = batch["id"].as_str().unwrap().to_string();
    let (status, file) = app.take_file(&batch_id, "gbk").await;
    assert_eq!(status, StatusCode::OK);
    let sent = PayoutFile::parse(&file, FileEncoding::Gbk).unwrap();
    assert_eq!(sent.rows.len(), 24);
    let answer = bank.payout_file(&file, FileEncoding::Gbk).await.unwrap();
    // The bank answers a file sent twice the same, and pays each reference once.
    assert_eq!(
        bank.payout_file(&file, FileEncoding::Gbk).await.unwrap(),
        answer
    );
    let returned = ReturnFile::parse(&answer, FileEncoding::Gbk).unwrap();
    let expected: BTreeMap<String, &'static str> = returned
        .rows
        .iter()
        .map(|row| {
            let state = match row.status {
                ReturnStatus::Paid => "paid",
                ReturnStatus::Failed { .. } => "failed",
                ReturnStatus::Returned { .. } => "returned",
            };
            (row.reference.clone(), state)
        })
        .collect();
    for state in ["paid", "failed", "returned"] {
        assert!(
            expected.values().any(|found| *found == state),
            "the bank's answer should hold a {state} row: {expected:?}"
        );
    }
    let (status, answered) = app.post_return(&batch_id, answer.clone(), "gbk").await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    let mut paid_by_merchant: BTreeMap<String, i64> = BTreeMap::new();
    for payout in answered["payouts"].as_array().unwrap() {
        let id = payout["id"].as_str().unwrap();
        assert_eq!(payout["state"], expected[id], "{payout}");
        let merchant = payout["merchant_id"].as_str().unwrap();
        if merchant == "shop-c" {
            assert_eq!(payout["state"], "failed", "{payout}");
        }
        if payout["state"] == "paid" {
            let minor = Amount::parse(payout["amount"]["value"].as_str().unwrap(), Currency::CNY)
                .unwrap()
                .minor();
            *paid_by_merchant.entry(merchant.to_string()).or_default() += minor;
        }
    }
    let mut paid_total = 0;
    for merchant in merchants {
        let paid = paid_by_merchant.get(merchant).copied().unwrap_or(0);
        paid_total += paid;
        assert_eq!(app.available(merchant).await, 100_000 - paid, "{merchant}");
        assert_eq!(app.payable(merchant).await, 0, "{merchant}");
    }
    assert_eq!(app.clearing().await, clearing - paid_total);
    // Read again, the return file moves nothing.
    let entries = app.entries().await;
    let (status, again) = app.post_return(&batch_id, answer, "gbk").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.entries().await, entries);
    assert_eq!(again["payouts"], answered["payouts"]);
    let (_, failed) = app.get("/v1/payouts?state=failed&merchant_id=shop-c").await;
    assert_eq!(failed["payouts"].as_array().unwrap().len(), 8);
    app.books_balance().await;
}

/// A crash after a payout's funding was posted but before it was marked: recovery posts it
/// again under its key, which the ledger applies once.
async fn a_funding_left_undone_is_posted_once(app: Payouts) {
    app.fund("shop-a", 5_000).await;
    let (status, created) = app
        .post("/v1/payouts", Some("crash-1"), payout("shop-a", "30.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let entries = app.entries().await;
    app.execute(&format!(
        "UPDATE payouts SET funding = 'decided' WHERE id = '{id}'"
    ))
    .await
    .unwrap();
    let looked_at = app
        .payments()
        .recover_payouts(app.clock.now(), 100)
        .await
        .unwrap();
    assert_eq!(looked_at, 1);
    assert_eq!(app.entries().await, entries);
    assert_eq!(app.available("shop-a").await, 2_000);
    assert_eq!(app.payable("shop-a").await, 3_000);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM payouts WHERE id = '{id}' AND funding = 'posted'"
        ))
        .await,
        1
    );
    // The next payout's check sees the first one's money gone.
    refused(
        &app.post("/v1/payouts", Some("crash-2"), payout("shop-a", "20.01"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payout_above_available_balance",
    );
    app.books_balance().await;
}

/// After the settlement run of a date, every merchant's positive available balance goes
/// out in one scheduled batch; a suspended merchant's stays; asked again, the same batch.
async fn scheduled_payouts_follow_the_settlement_run(app: Payouts) {
    app.fund("shop-a", 7_000).await;
    app.fund("shop-b", 3_000).await;
    let (status, _) = app
        .post(
            "/v1/merchants/shop-b/status",
            None,
            json!({"status": "suspended", "reason": "review"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.set("2026-05-05T01:00:00Z".parse().unwrap());
    let (status, run) = app
        .call(
            "POST",
            "/v1/settlement/runs",
            &app.admin,
            None,
            Some(json!({"business_date": "2026-05-04"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run_payouts = || {
        app.call(
            "POST",
            "/v1/payouts/runs",
            &app.admin,
            None,
            Some(json!({"business_date": "2026-05-04"})),
        )
    };
    let (status, first) = run_payouts().await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let batches = first["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{first}");
    assert_eq!(batches[0]["kind"], "scheduled");
    // The payout merchants of the harness (m1, m2, merchant-1) hold nothing.
    let payouts = batches[0]["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1, "{first}");
    assert_eq!(payouts[0]["merchant_id"], "shop-a");
    assert_eq!(payouts[0]["amount"], cny("70.00"));
    assert_eq!(app.available("shop-a").await, 0);
    assert_eq!(app.available("shop-b").await, 3_000);
    let entries = app.entries().await;
    let (status, second) = run_payouts().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second, first);
    assert_eq!(app.entries().await, entries);
    app.books_balance().await;
}

tally_store::on_both_backends!(
    setup = Payouts::new;
    every_refusal_has_its_code,
    a_payout_moves_to_payable_then_to_the_bank,
    a_batch_with_failed_and_returned_payouts_puts_the_money_back,
    a_funding_left_undone_is_posted_once,
    scheduled_payouts_follow_the_settlement_run,
);
