//! Customers' credit-balance payouts over HTTP on SQLite and PostgreSQL: a payout goes to
//! the bank card bound to the customer through the same batches and bank files as
//! merchants' payouts, decided first by the risk engine. Paid, the payable to the customer
//! clears to the credit business's bank account; failed, returned before it was paid and
//! returned after it was paid, the amount is credit balance again through a credit
//! operation; a return file read twice moves nothing twice; the books balance after each
//! step. Refusals: a customer without a bank card, the risk engine's rejection (a
//! block-listed customer), more than the credit balance: each moves nothing.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use tally_channel::payout_file::{FileEncoding, PayoutFile, ReturnFile, ReturnStatus};
use tally_channel::simulator::{FaultsUpdate, PartsPerMillion};
use tally_store::testing::TestDatabase;

mod support;
use support::{application, bearer, cny, code, privacy, send, Setup, TestApp};

/// A valid PRC identity number (born 1990-03-07).
const NATIONAL_ID: &str = "110105199003071239";
/// A Luhn-valid card number, as the customer types it.
const CARD: &str = "4111 1111 1111 1111";

struct Harness {
    app: TestApp,
    clerk: String,
    analyst: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).payments().risk();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let clerk = app
            .key(
                "clerk",
                &[
                    "credit:write",
                    "credit:read",
                    "payments:write",
                    "payments:read",
                ],
            )
            .await;
        let analyst = app.key("analyst", &["risk:write", "risk:analyst"]).await;
        Harness {
            app,
            clerk,
            analyst,
        }
    }

    async fn post(&self, uri: &str, idempotency: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.clerk, Some(idempotency), Some(body))
            .await
    }

    /// A customer with an approved credit line holding a credit balance of 300.00
    /// (overpaid): (account, customer).
    async fn customer_with_credit_balance(&self) -> (i64, String) {
        let (status, customer) = self
            .post(
                "/v1/customers",
                "customer-1",
                json!({"name": "李四", "phone": "13900139000", "national_id": NATIONAL_ID}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{customer}");
        let customer = customer["id"].as_str().unwrap().to_string();
        let (status, opened) = self
            .post(
                "/v1/credit/accounts",
                "open-1",
                application(&customer, true),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        let account = opened["account"]["id"].as_i64().unwrap();
        let (status, body) = self
            .post(
                &format!("/v1/credit/accounts/{account}/repayments"),
                "overpay",
                json!({"amount": cny("300.00")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(self.credit_balance(account).await, cny("300.00"));
        (account, customer)
    }

    async fn bind_card(&self, customer: &str) {
        let (status, body) = self
            .post(
                &format!("/v1/customers/{customer}/bank-card"),
                "card-1",
                json!({"card_number": CARD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn credit_balance(&self, account: i64) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/v1/credit/accounts/{account}"),
                &self.clerk,
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["credit_balance"].clone()
    }

    async fn pay_out(&self, account: i64, key: &str, value: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/credit/accounts/{account}/credit-balance/payouts"),
            key,
            json!({"amount": cny(value)}),
        )
        .await
    }

    /// A ledger account's balance by code: a liability's credits less debits, or an
    /// asset's debits less credits when `asset`; 0 for an account not opened yet.
    async fn balance(&self, code: &str, asset: bool) -> i64 {
        let Some(id) = self.database.account_id_by_code(code).await.unwrap() else {
            return 0;
        };
        let balance = self.database.account(id).await.unwrap().unwrap().balance;
        let liability = balance.credits_posted - balance.debits_posted;
        if asset {
            -liability
        } else {
            liability
        }
    }

    async fn payable(&self) -> i64 {
        self.balance("credit-payout-payable-CNY", false).await
    }

    async fn bank_account(&self) -> i64 {
        self.balance("credit-bank-CNY", true).await
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }

    async fn take_file(&self, batch: &str) -> Vec<u8> {
        let answer = send(
            &self.router,
            Request::builder()
                .method("POST")
                .uri(format!("/v1/payouts/batches/{batch}/file?encoding=gbk"))
                .header(header::AUTHORIZATION, bearer(&self.clerk))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.body
    }

    async fn post_return(&self, batch: &str, bytes: Vec<u8>) -> Value {
        let answer = send(
            &self.router,
            Request::builder()
                .method("POST")
                .uri(format!(
                    "/v1/payouts/batches/{batch}/return-file?encoding=gbk"
                ))
                .header(header::AUTHORIZATION, bearer(&self.clerk))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await;
        let body = answer.json();
        assert_eq!(answer.status, StatusCode::OK, "{body}");
        body
    }

    /// Pays `value` out under `key`, sends the batch's file to the bank simulator and reads
    /// its answer back: the payout as it ends.
    async fn through_the_bank(&self, account: i64, key: &str, value: &str) -> Value {
        let (status, made) = self.pay_out(account, key, value).await;
        assert_eq!(status, StatusCode::OK, "{made}");
        let batch = made["payout"]["batch_id"].as_str().unwrap().to_string();
        let file = self.take_file(&batch).await;
        let sent = PayoutFile::parse(&file, FileEncoding::Gbk).unwrap();
        assert_eq!(sent.rows.len(), 1);
        // The bank pays the card bound to the customer, in the customer's name.
        assert_eq!(sent.rows[0].account_number, CARD.replace(' ', ""));
        assert_eq!(sent.rows[0].account_name, "李四");
        assert_eq!(
            sent.rows[0].reference,
            made["payout"]["id"].as_str().unwrap()
        );
        let bank = self.bank.clone().unwrap();
        let answer = bank.payout_file(&file, FileEncoding::Gbk).await.unwrap();
        let answered = self.post_return(&batch, answer).await;
        answered["payouts"][0].clone()
    }

    async fn faults(&self, failure: u32, returned: u32) {
        self.bank
            .clone()
            .unwrap()
            .set_faults(&FaultsUpdate {
                payout_failure_rate_ppm: Some(PartsPerMillion::new(failure).unwrap()),
                payout_return_rate_ppm: Some(PartsPerMillion::new(returned).unwrap()),
                ..FaultsUpdate::default()
            })
            .await
            .unwrap();
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

tally_store::on_both_backends!(
    setup = Harness::new;
    a_credit_balance_payout_is_paid_failed_or_returned_and_never_lost,
    a_credit_balance_payout_refused_moves_nothing,
);

async fn a_credit_balance_payout_is_paid_failed_or_returned_and_never_lost(harness: Harness) {
    let (account, customer) = harness.customer_with_credit_balance().await;
    harness.bind_card(&customer).await;

    // Made: the credit balance is in the payable to the customer, a payout of its own.
    let (status, made) = harness.pay_out(account, "paid-1", "100.00").await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["paid_out"], cny("100.00"));
    assert_eq!(made["account"]["credit_balance"], cny("200.00"));
    let payout = &made["payout"];
    assert_eq!(payout["state"], "created", "{payout}");
    assert_eq!(payout["payee_kind"], "customer");
    assert_eq!(payout["customer_id"], customer.as_str());
    assert_eq!(payout["source"], "credit_balance");
    assert_eq!(payout["source_account"], account.to_string());
    assert!(payout.get("merchant_id").is_none(), "{payout}");
    assert_eq!(harness.payable().await, 10_000);
    harness.books_balance().await;
    // A retry answers the same payout and moves nothing.
    let entries = harness.entries().await;
    let (status, again) = harness.pay_out(account, "paid-1", "100.00").await;
    assert_eq!(
        (status, &again["payout"]["id"]),
        (StatusCode::OK, &payout["id"])
    );
    assert_eq!(harness.entries().await, entries);
    let id = payout["id"].as_str().unwrap().to_string();
    let batch = payout["batch_id"].as_str().unwrap().to_string();

    // Paid: the payable clears to the credit business's bank account.
    let file = harness.take_file(&batch).await;
    let sent = PayoutFile::parse(&file, FileEncoding::Gbk).unwrap();
    assert_eq!(sent.rows[0].account_number, "4111111111111111");
    assert_eq!(sent.rows[0].account_name, "李四");
    let bank = harness.bank.clone().unwrap();
    let answer = bank.payout_file(&file, FileEncoding::Gbk).await.unwrap();
    let answered = harness.post_return(&batch, answer.clone()).await;
    assert_eq!(answered["payouts"][0]["state"], "paid", "{answered}");
    assert_eq!(harness.payable().await, 0);
    assert_eq!(harness.bank_account().await, -10_000);
    assert_eq!(harness.credit_balance(account).await, cny("200.00"));
    harness.books_balance().await;

    // Returned after it was paid: back from the bank, and credit balance again, once.
    let mut returned = ReturnFile::parse(&answer, FileEncoding::Gbk).unwrap();
    assert_eq!(returned.rows.len(), 1);
    assert_eq!(returned.rows[0].reference, id);
    returned.rows[0].status = ReturnStatus::Returned {
        reason: "account_closed".into(),
    };
    let returned = returned.to_bytes(FileEncoding::Gbk).unwrap();
    let answered = harness.post_return(&batch, returned.clone()).await;
    assert_eq!(answered["payouts"][0]["state"], "returned", "{answered}");
    assert_eq!(harness.payable().await, 0);
    assert_eq!(harness.bank_account().await, 0);
    assert_eq!(harness.credit_balance(account).await, cny("300.00"));
    harness.books_balance().await;
    let entries = harness.entries().await;
    harness.post_return(&batch, returned).await;
    assert_eq!(harness.entries().await, entries);
    assert_eq!(harness.credit_balance(account).await, cny("300.00"));

    // Failed at the bank: credit balance again.
    harness.faults(1_000_000, 0).await;
    let failed = harness.through_the_bank(account, "failed-1", "50.00").await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(harness.payable().await, 0);
    assert_eq!(harness.credit_balance(account).await, cny("300.00"));
    harness.books_balance().await;

    // Returned by the receiving bank before it was confirmed paid: credit balance again.
    harness.faults(0, 1_000_000).await;
    let sent_back = harness
        .through_the_bank(account, "returned-1", "70.00")
        .await;
    assert_eq!(sent_back["state"], "returned", "{sent_back}");
    assert_eq!(harness.payable().await, 0);
    assert_eq!(harness.bank_account().await, 0);
    assert_eq!(harness.credit_balance(account).await, cny("300.00"));
    harness.books_balance().await;

    // And it can all be paid out again, the payouts listed with their payee.
    harness.faults(0, 0).await;
    let paid = harness.through_the_bank(account, "paid-2", "300.00").await;
    assert_eq!(paid["state"], "paid", "{paid}");
    assert_eq!(harness.credit_balance(account).await, cny("0.00"));
    assert_eq!(harness.bank_account().await, -30_000);
    harness.books_balance().await;
    let sql = format!(
        "SELECT COUNT(*) FROM payouts WHERE payee_kind = 'customer' \
         AND customer_id = '{customer}' AND source = 'credit_balance' \
         AND source_account = '{account}' AND merchant_id IS NULL"
    );
    assert_eq!(harness.scalar(&sql).await, 4);
    let sql = "SELECT COUNT(*) FROM credit_operations WHERE kind = 'return_credit_balance_payout'";
    assert_eq!(harness.scalar(sql).await, 3);
}

async fn a_credit_balance_payout_refused_moves_nothing(harness: Harness) {
    let (account, customer) = harness.customer_with_credit_balance().await;
    let operations = "SELECT COUNT(*) FROM credit_operations";
    let before = harness.scalar(operations).await;
    let entries = harness.entries().await;

    // No bank card bound: nothing to pay to, refused before the risk engine decides.
    let (status, body) = harness.pay_out(account, "no-card", "10.00").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "payout_no_bank_card"),
        "{body}"
    );
    let events = "SELECT COUNT(*) FROM risk_events WHERE body LIKE '%credit-balance-payout%'";
    assert_eq!(harness.scalar(events).await, 0);

    // More than the credit balance: the credit rules' code.
    harness.bind_card(&customer).await;
    let entries_with_card = harness.entries().await;
    let (status, body) = harness.pay_out(account, "too-much", "300.01").await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "credit_payout_exceeds_credit_balance"
        ),
        "{body}"
    );
    assert_eq!(harness.entries().await, entries_with_card);

    // A block-listed customer: the risk engine rejects it, nothing moves, a retry is the
    // same refusal.
    let (status, listed) = harness
        .call(
            "POST",
            "/v1/risk/lists",
            &harness.analyst,
            None,
            Some(
                json!({"kind": "block", "field": "customer", "value": customer, "reason": "test"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{listed}");
    let (status, body) = harness.pay_out(account, "blocked", "10.00").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "risk_rejected"),
        "{body}"
    );
    let (status, again) = harness.pay_out(account, "blocked", "10.00").await;
    assert_eq!((status, again), (StatusCode::CONFLICT, body));
    assert_eq!(harness.credit_balance(account).await, cny("300.00"));
    assert_eq!(harness.payable().await, 0);
    assert_eq!(harness.scalar("SELECT COUNT(*) FROM payouts").await, 0);
    assert_eq!(harness.scalar(operations).await, before);
    assert_eq!(harness.entries().await, entries_with_card);
    assert_eq!(entries_with_card, entries);
    harness.books_balance().await;
}
