//! In-process HTTP tests of the credit service on SQLite and PostgreSQL: opening through
//! the credit decision, purchases as ledger holds captured into plans or voided, repayments,
//! refunds, payoff, freeze and close, credit balance payouts, stolen-account write-offs on
//! the evidence of a risk case, idempotent replays, every refusal with its code and nothing
//! changed, a crash between an operation's intent and the ledger, and end of day expiring
//! authorisations, storing statements and queueing collections; end of day racing operations
//! on the same accounts, and two service instances on one database operating on the same
//! accounts (each fails if the version check of end of day or of an operation is removed).
//! After each story the ledger is checked against the accounts: receivable = what customers
//! owe, credit balances, pending holds.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use axum::Router;
use jiff::civil::{date, Date};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{Clock, Currency};
use tally_credit::{AccountPolicy, LedgerRole};
use tally_service::credit::decision::{CreditFiles, CreditService};
use tally_service::credit::end_of_day::{run_end_of_day, EndOfDayOptions};
use tally_service::credit::ledger_accounts::credit_ledger_accounts;
use tally_store::risk::{CaseLogRow, CaseRow, RiskStore};
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter};

mod support;
use support::{application, attributes, cny, privacy, Instance, Setup, TestApp};

/// Valid PRC identity numbers: born 1990-03-07 and 1995-08-15.
const YOUNG_ID: &str = "110105199003071239";
const OTHER_ID: &str = "440304199508154567";

struct Harness {
    app: TestApp,
    /// The credit service served; a test replaces it to restart the service.
    credit: Arc<CreditService>,
    /// credit:write and credit:read.
    clerk: String,
    /// credit:read only.
    reader: String,
    admin: String,
}

support::deref_to_app!(Harness);

impl Harness {
    async fn new(test: TestDatabase) -> Self {
        let setup = Setup::default().privacy(privacy()).credit().risk();
        let app = TestApp::start(test, "2026-05-01T09:00:00Z", setup).await;
        let clerk = app.key("clerk", &["credit:write", "credit:read"]).await;
        let reader = app.key("reader", &["credit:read"]).await;
        let admin = app.key("admin", &["admin"]).await;
        Harness {
            credit: app.credit.clone().unwrap(),
            app,
            clerk,
            reader,
            admin,
        }
    }

    async fn service(database: &Database, writer: &LedgerWriter) -> Arc<CreditService> {
        support::credit_service(database, writer).await
    }

    /// Serves with the current credit service (a restart builds a new one first).
    fn serve(&mut self) {
        self.app.credit = Some(self.credit.clone());
        self.app.serve();
    }

    async fn post(&self, uri: &str, idempotency: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, &self.clerk, Some(idempotency), Some(body))
            .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, &self.reader, None, None).await
    }

    async fn customer(&self, national_id: &str, phone: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/customers",
                &format!("customer-{national_id}"),
                json!({"name": "李四", "phone": phone, "national_id": national_id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Opens an approved account for a new customer; returns (account id, customer id).
    async fn open(&self) -> (i64, String) {
        let customer = self.customer(YOUNG_ID, "13900139000").await;
        let (status, body) = self
            .post(
                "/v1/credit/accounts",
                "open-1",
                application(&customer, true),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["decision"]["outcome"], "approved");
        (body["account"]["id"].as_i64().unwrap(), customer)
    }

    async fn account(&self, id: i64) -> Value {
        let (status, body) = self.get(&format!("/v1/credit/accounts/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Rewrites account `id`'s stored state with `edit`, as if Tally had stored it so.
    async fn edit_stored_account(&self, id: i64, edit: impl FnOnce(&mut Value)) {
        let sql = format!("SELECT state FROM credit_accounts WHERE id = {id}");
        let state: String = tally_store::with_pool!(&self.database, |pool| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap()
        });
        let mut state: Value = serde_json::from_str(&state).unwrap();
        edit(&mut state);
        let update = "UPDATE credit_accounts SET state = $1, version = version + 1 WHERE id = $2";
        let state = state.to_string();
        tally_store::with_pool!(&self.database, |pool| {
            sqlx::query(update)
                .bind(state)
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
        });
    }

    /// Ledger balance (debits − credits, posted and pending) of a credit role, in fen.
    async fn ledger(&self, role: LedgerRole) -> (i64, i64) {
        let accounts = credit_ledger_accounts(&self.database, &self.writer, Currency::CNY)
            .await
            .unwrap();
        let state = self
            .database
            .account(accounts.account_of(role))
            .await
            .unwrap()
            .unwrap();
        let balance = state.balance;
        (
            balance.debits_posted - balance.credits_posted,
            balance.debits_pending - balance.credits_pending,
        )
    }

    /// The books agree with the accounts: the receivable is what customers owe (unpaid
    /// principal plus billed charges), credit balances are owed back, holds are pending.
    async fn assert_books_match(&self, ids: &[i64]) {
        let mut owed = 0_i64;
        let mut credit_balance = 0_i64;
        let mut held = 0_i64;
        for id in ids {
            let stored = self.credit.operations.load(*id).await.unwrap().account;
            let billed_principal: i64 = stored.dues.iter().map(|due| due.principal.minor()).sum();
            owed += stored.unpaid_principal().minor() + stored.billed_balance().minor()
                - billed_principal;
            credit_balance += stored.credit_balance.minor();
            held += stored.held.minor();
        }
        let (receivable, receivable_pending) = self.ledger(LedgerRole::CustomerReceivable).await;
        assert_eq!(receivable, owed, "receivable against what customers owe");
        assert_eq!(
            receivable_pending, held,
            "pending holds against held credit"
        );
        let (balance, _) = self.ledger(LedgerRole::CustomerCreditBalance).await;
        assert_eq!(-balance, credit_balance, "credit balances owed back");
        let totals = self.database.currency_totals().await.unwrap();
        for total in totals {
            assert_eq!(total.debits_posted, total.credits_posted, "books balance");
        }
        assert_eq!(
            self.scalar("SELECT COUNT(*) FROM credit_operations WHERE status = 'pending'")
                .await,
            0,
            "no operation is left half done"
        );
    }
}

tally_store::on_both_backends!(
    setup = Harness::new;
    a_purchase_from_opening_to_refund,
    refusals_change_nothing,
    a_declined_application_is_answered_and_replayed,
    a_crash_between_intent_and_ledger_is_finished,
    a_stolen_purchase_is_written_off_on_a_confirmed_case,
    a_stolen_account_claim_from_freeze_to_restored_access,
    a_rejected_claim_lifts_its_freeze_and_the_purchase_goes_through,
    a_claim_left_behind_by_a_crash_is_followed_up_at_start,
    end_of_day_expires_holds_cuts_statements_and_queues_collections,
    products_are_added_through_the_api,
    concurrent_openings_get_their_own_accounts,
    business_dates_are_in_the_lenders_time_zone,
    offers_disclose_each_terms_price_before_a_purchase,
    keys_reserved_for_tally_are_refused_on_credit_routes,
    a_ledger_key_held_by_another_command_is_not_an_outage,
    a_credit_ledger_account_code_taken_by_another_account_is_not_adopted,
    one_key_sent_twice_at_once_gets_one_answer,
    bad_amounts_paths_and_queries_get_their_codes,
    a_credit_balance_is_paid_out_and_the_account_then_closes,
    a_charged_off_account_keeps_its_credit_balance,
    the_account_shows_what_is_still_to_pay_on_its_statement,
    an_account_stored_with_due_days_0_or_over_28_still_buys,
    a_client_cannot_move_the_credit_services_ledger_accounts,
    end_of_day_racing_operations_keeps_the_books,
    two_service_instances_on_one_database_keep_the_books,
);

async fn offers_disclose_each_terms_price_before_a_purchase(harness: Harness) {
    let (id, _) = harness.open().await;
    let tier = harness.account(id).await["pricing_tier"]
        .as_str()
        .unwrap()
        .to_owned();
    let operations = harness
        .scalar("SELECT COUNT(*) FROM credit_operations")
        .await;
    let uri = format!("/v1/credit/accounts/{id}/offers?amount=1200.00&product=installment");
    let (status, body) = harness.get(&uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pricing_tier"], tier.as_str());
    assert_eq!(body["within_available_credit"], true);
    let offers = body["offers"].as_array().unwrap();
    let periods: Vec<u64> = offers
        .iter()
        .map(|offer| offer["periods"].as_u64().unwrap())
        .collect();
    assert_eq!(periods, vec![1, 3, 6, 12, 24]);
    // Three installments at the tier's rate of the shipped catalog.
    let catalog = tally_credit::Catalog::default_catalog().unwrap();
    let term = catalog.product("installment").unwrap().term(3).unwrap();
    let rate = term.tier_rates[&tier];
    let fee = (rate * rust_decimal::Decimal::from(1200)).round_dp(2);
    let three = &offers[1];
    assert_eq!(three["pricing"]["tier"], tier.as_str());
    assert_eq!(three["pricing"]["rate"], rate.to_string());
    assert_eq!(
        three["total_charges"],
        cny(&format!("{:.2}", fee * rust_decimal::Decimal::from(3)))
    );
    assert_eq!(
        three["total_repayable"],
        cny(&format!(
            "{:.2}",
            rust_decimal::Decimal::from(1200) + fee * rust_decimal::Decimal::from(3)
        ))
    );
    assert!(three["true_apr"]["nominal_annual"].is_string());
    // Looking changed nothing.
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations")
            .await,
        operations
    );

    // The purchase on that term gets exactly the schedule the offer showed.
    harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "offer-authorize",
            json!({"amount": cny("1200.00")}),
        )
        .await;
    let (status, captured) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "offer-capture",
            json!({"product": "installment", "periods": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{captured}");
    let plan = &captured["account"]["plans"][0];
    assert_eq!(plan["installments"], three["installments"]);
    assert_eq!(plan["pricing"], three["pricing"]);
    assert_eq!(plan["true_apr"], three["true_apr"]);

    // Without a product: every term of every product in the account's currency.
    let (status, all) = harness
        .get(&format!("/v1/credit/accounts/{id}/offers?amount=50000.00"))
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let terms: usize = catalog
        .products
        .iter()
        .map(|product| product.terms.len())
        .sum();
    assert_eq!(all["offers"].as_array().unwrap().len(), terms);
    assert_eq!(all["within_available_credit"], false);

    for (query, status, code) in [
        (
            "amount=12.345",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            "amount=0.00",
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_not_positive",
        ),
        (
            "amount=10.00&product=nothing",
            StatusCode::UNPROCESSABLE_ENTITY,
            "credit_product_not_found",
        ),
        (
            "product=installment",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "amount=10.00&colour=red",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ] {
        let (answer, body) = harness
            .get(&format!("/v1/credit/accounts/{id}/offers?{query}"))
            .await;
        assert_eq!(
            (answer, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    let (status, body) = harness
        .get("/v1/credit/accounts/999/offers?amount=1.00")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn business_dates_are_in_the_lenders_time_zone(mut harness: Harness) {
    let (id, _) = harness.open().await;
    // 17:30 UTC on 1 May is 01:30 on 2 May in Beijing.
    harness.clock.set("2026-05-01T17:30:00Z".parse().unwrap());
    let uri = format!("/v1/credit/accounts/{id}/authorizations");
    let (_, utc) = harness
        .post(&uri, "utc", json!({"amount": cny("1.00")}))
        .await;
    assert_eq!(utc["authorization"]["authorized_on"], "2026-05-01");
    let files = CreditFiles {
        time_zone: Some("Asia/Shanghai".into()),
        ..CreditFiles::default()
    };
    let setup = files.load().unwrap();
    assert_eq!(setup.time_zone.iana_name(), Some("Asia/Shanghai"));
    harness.credit = Arc::new(
        CreditService::start(harness.database.clone(), harness.writer.clone(), setup)
            .await
            .unwrap(),
    );
    harness.serve();
    let (_, beijing) = harness
        .post(&uri, "beijing", json!({"amount": cny("1.00")}))
        .await;
    assert_eq!(beijing["authorization"]["authorized_on"], "2026-05-02");
    // An unknown zone is a configuration error, not a silent UTC.
    let wrong = CreditFiles {
        time_zone: Some("Mars/Olympus_Mons".into()),
        ..CreditFiles::default()
    };
    assert!(wrong.load().unwrap_err().to_string().contains("time zone"));
}

/// A valid PRC identity number born on 1990-01-`day` with sequence `sequence`.
fn national_id(day: u32, sequence: u32) -> String {
    let body = format!("1101051990010{}{:03}", day, sequence);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(weights)
        .map(|(digit, weight)| digit.to_digit(10).unwrap() * weight)
        .sum();
    let check = "10X98765432".as_bytes()[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

async fn concurrent_openings_get_their_own_accounts(harness: Harness) {
    let mut customers = Vec::new();
    for index in 1..=8_u32 {
        customers.push(
            harness
                .customer(
                    &national_id(index, index * 7),
                    &format!("1370000000{index}"),
                )
                .await,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (index, customer) in customers.into_iter().enumerate() {
        let router = harness.router.clone();
        let key = harness.clerk.clone();
        tasks.spawn(async move {
            let idempotency = format!("open-{index}");
            let (status, body) = post_to(
                &router,
                &key,
                "/v1/credit/accounts",
                &idempotency,
                application(&customer, true),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            (
                body["account"]["id"].as_i64().unwrap(),
                body["account"]["customer_id"].clone(),
                customer,
            )
        });
    }
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, stored_customer, customer) = joined.unwrap();
        assert_eq!(stored_customer, customer.as_str());
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=8).collect::<Vec<i64>>());
}

async fn products_are_added_through_the_api(mut harness: Harness) {
    let tier_rates = json!({"A": "0.0045", "B": "0.005", "C": "0.0055", "D": "0.006"});
    let product = json!({
        "code": "holiday-12", "name": "Holiday installments", "currency": "CNY",
        "fee_model": {"kind": "flat_fee"},
        "terms": [{"periods": 12, "rate": "0.007", "tier_rates": tier_rates}]
    });
    let add = |key: String, body: Value| {
        let harness = &harness;
        async move {
            harness
                .call("POST", "/v1/credit/products", &key, None, Some(body))
                .await
        }
    };
    let (status, _) = add(harness.clerk.clone(), product.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Every credit route is in the OpenAPI document.
    let (status, document) = harness.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/credit/accounts",
        "/v1/credit/accounts/{id}",
        "/v1/credit/accounts/{id}/authorizations",
        "/v1/credit/accounts/{id}/authorizations/{authorization}/capture",
        "/v1/credit/accounts/{id}/authorizations/{authorization}/void",
        "/v1/credit/accounts/{id}/repayments",
        "/v1/credit/accounts/{id}/plans/{plan}/refunds",
        "/v1/credit/accounts/{id}/plans/{plan}/payoff",
        "/v1/credit/accounts/{id}/plans/{plan}/payoff-quote",
        "/v1/credit/accounts/{id}/plans/{plan}/stolen-write-off",
        "/v1/credit/accounts/{id}/bill-installments",
        "/v1/credit/accounts/{id}/statements",
        "/v1/credit/accounts/{id}/offers",
        "/v1/credit/accounts/{id}/limit",
        "/v1/credit/accounts/{id}/temporary-limit",
        "/v1/credit/accounts/{id}/{action}",
        "/v1/credit/tasks",
        "/v1/credit/tasks/{id}/close",
        "/v1/credit/products",
    ] {
        assert!(document["paths"].get(path).is_some(), "missing {path}");
    }
    let (status, body) = add(harness.admin.clone(), product.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = add(harness.admin.clone(), product.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("credit_product_exists"))
    );
    let mut bad = product.clone();
    bad["code"] = json!("odd-term");
    bad["terms"] = json!([{"periods": 5, "rate": "0.01"}]);
    let (status, body) = add(harness.admin.clone(), bad).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("credit_invalid_product")
        )
    );
    // A rate for a tier no score band gives (here a misspelt "a") could never apply: refused.
    let mut misspelt = product.clone();
    misspelt["code"] = json!("misspelt-tier");
    misspelt["terms"] = json!([{"periods": 12, "rate": "0.007", "tier_rates": {"a": "0.004"}}]);
    let (status, body) = add(harness.admin.clone(), misspelt).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "credit_invalid_product");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(r#"tier "a""#), "{message}");
    assert!(
        message.contains("A, B, C, D") || message.contains("D, C, B, A"),
        "{message}"
    );
    // The merchant's discount does not depend on the customer's tier.
    let mut discount = product.clone();
    discount["code"] = json!("tiered-discount");
    discount["fee_model"] = json!({"kind": "interest_free"});
    let (status, body) = add(harness.admin.clone(), discount).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "credit_invalid_product");
    let (_, listed) = harness.get("/v1/credit/products").await;
    let codes: Vec<&str> = listed["products"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|product| product["code"].as_str())
        .collect();
    assert!(!codes.contains(&"misspelt-tier") && !codes.contains(&"tiered-discount"));
    // A restart with a score policy that no longer gives tier D stops, naming the stored
    // product: its tier D rate could never apply again.
    let directory = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = directory.path().join(name);
        std::fs::write(&path, text).unwrap();
        Some(path.display().to_string())
    };
    let setup = CreditFiles {
        score_policy: file(
            "policy.toml",
            &tally_service::credit::decision::DEFAULT_SCORE_POLICY.replace(r#""D""#, r#""E""#),
        ),
        catalog: file(
            "catalog.toml",
            r#"[[product]]
               code = "installment"
               name = "Installments"
               currency = "CNY"
               fee_model = { kind = "flat_fee" }
               terms = [{ periods = 3, rate = "0.007" }]"#,
        ),
        ..CreditFiles::default()
    }
    .load()
    .unwrap();
    let error = CreditService::start(harness.database.clone(), harness.writer.clone(), setup)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(r#"product holiday-12 prices tier "D""#),
        "{error}"
    );
    // Listed, kept across a restart, and usable for a purchase.
    harness.credit = Harness::service(&harness.database, &harness.writer).await;
    harness.serve();
    let (status, listed) = harness.get("/v1/credit/products").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed["products"]
        .as_array()
        .unwrap()
        .iter()
        .any(|product| product["code"] == "holiday-12"));
    let (id, _) = harness.open().await;
    harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize",
            json!({"amount": cny("1200.00")}),
        )
        .await;
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture",
            json!({"product": "holiday-12", "periods": 12}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The plan is priced at the rate of the tier the decision gave the account.
    let tier = harness.account(id).await["pricing_tier"]
        .as_str()
        .unwrap()
        .to_owned();
    let rate: rust_decimal::Decimal = tier_rates[&tier].as_str().unwrap().parse().unwrap();
    let fee = (rate * rust_decimal::Decimal::from(1200)).round_dp(2);
    let plan = &body["account"]["plans"][0];
    assert_eq!(plan["pricing"]["tier"], tier.as_str());
    assert_eq!(plan["pricing"]["rate"], tier_rates[&tier]);
    for installment in plan["installments"].as_array().unwrap() {
        assert_eq!(installment["fee"], cny(&format!("{fee:.2}")));
    }
    harness.assert_books_match(&[id]).await;
}

async fn a_purchase_from_opening_to_refund(harness: Harness) {
    let (id, customer) = harness.open().await;
    let opened = harness.account(id).await;
    assert_eq!(opened["customer_id"], customer.as_str());
    let limit = opened["limit"]["value"].as_str().unwrap().to_string();
    assert!(opened["pricing_tier"].is_string());
    // The date of birth was read for the decision, and the read is in the audit log.
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM pii_reads WHERE field = 'date_of_birth'")
            .await,
        1
    );

    let uri = format!("/v1/credit/accounts/{id}/authorizations");
    let (status, body) = harness
        .post(&uri, "authorize-1", json!({"amount": cny("1000.00")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["authorization"]["id"], 1);
    assert_eq!(body["account"]["held"], cny("1000.00"));
    assert_eq!(
        harness.ledger(LedgerRole::CustomerReceivable).await,
        (0, 100_000)
    );
    // A retry answers the same and holds nothing more; the key with another body is refused.
    let (status, again) = harness
        .post(&uri, "authorize-1", json!({"amount": cny("1000.00")}))
        .await;
    assert_eq!((status, &again), (StatusCode::CREATED, &body));
    let (status, reused) = harness
        .post(&uri, "authorize-1", json!({"amount": cny("999.00")}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!(harness.scalar("SELECT COUNT(*) FROM holds").await, 1);

    // Capture 800 of the 1,000 into 3 installments: the rest is released.
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture-1",
            json!({"amount": cny("800.00"), "product": "installment", "periods": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let plan = &body["account"]["plans"][0];
    assert_eq!(plan["principal"], cny("800.00"));
    assert_eq!(plan["installments"].as_array().unwrap().len(), 3);
    assert!(plan["true_apr"]["nominal_annual"].is_string());
    assert_eq!(body["account"]["held"], cny("0.00"));
    assert_eq!(
        harness.ledger(LedgerRole::CustomerReceivable).await,
        (80_000, 0)
    );
    assert_eq!(
        harness.ledger(LedgerRole::MerchantPayable).await,
        (-80_000, 0)
    );
    harness.assert_books_match(&[id]).await;

    // Nothing is billed yet: a repayment becomes credit balance.
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/repayments"),
            "repay-1",
            json!({"amount": cny("100.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["to_credit_balance"], cny("100.00"));
    // A partial refund takes unbilled installments last first.
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/plans/1/refunds"),
            "refund-1",
            json!({"amount": cny("300.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["unpaid_principal"], cny("500.00"));
    harness.assert_books_match(&[id]).await;

    // Pay the plan off at its quote.
    let (status, quote) = harness
        .get(&format!("/v1/credit/accounts/{id}/plans/1/payoff-quote"))
        .await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/plans/1/payoff"),
            "payoff-1",
            json!({"amount": quote["amount"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["unpaid_principal"], cny("0.00"));
    assert_eq!(body["account"]["available_credit"]["value"], limit.as_str());
    // The 100.00 repaid before anything was billed is still the customer's money: an
    // account holding it does not close (end of day would never look at it again).
    assert_eq!(body["account"]["credit_balance"], cny("100.00"));
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/close"),
            "close-1",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "credit_account_has_credit_balance");
    assert_eq!(harness.account(id).await["status"], "open");
    harness.assert_books_match(&[id]).await;
    // A cycle whose due date could pass the next statement date is refused at opening.
    let (status, body) = harness
        .post(
            "/v1/credit/accounts",
            "open-due-29",
            json!({
                "customer_id": customer,
                "statement_day": 5,
                "due_days": 29,
                "application": {
                    "monthly_income": {"value": "20000.00", "currency": "CNY"},
                    "monthly_debt_payments": {"value": "1000.00", "currency": "CNY"},
                    "attributes": attributes(true),
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "credit_invalid_due_days");
}

async fn refusals_change_nothing(harness: Harness) {
    let (id, _) = harness.open().await;
    let before = harness.account(id).await;
    let operations = harness
        .scalar("SELECT COUNT(*) FROM credit_operations")
        .await;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "authorizations",
            json!({"amount": cny("99999999.00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credit_insufficient",
        ),
        (
            "authorizations",
            json!({"amount": cny("-1.00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_not_positive",
        ),
        (
            "authorizations",
            json!({"amount": {"value": "1.00", "currency": "USD"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
        ),
        (
            "authorizations",
            json!({"amount": cny("1.00"), "expires_on": "2026-12-31"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        // It goes into the ledger hold's description: longer, the ledger would refuse.
        (
            "authorizations",
            json!({"amount": cny("1.00"), "merchant_reference": "r".repeat(201)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_merchant_reference",
        ),
        (
            "authorizations/7/capture",
            json!({"product": "installment", "periods": 3}),
            StatusCode::NOT_FOUND,
            "credit_authorization_not_found",
        ),
        (
            "authorizations/7/void",
            json!({}),
            StatusCode::NOT_FOUND,
            "credit_authorization_not_found",
        ),
        (
            "plans/3/refunds",
            json!({"amount": cny("1.00")}),
            StatusCode::NOT_FOUND,
            "credit_plan_not_found",
        ),
        (
            "bill-installments",
            json!({"product": "installment", "periods": 3}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credit_bill_installment_refused",
        ),
        (
            "limit",
            json!({"limit": cny("-5.00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_not_positive",
        ),
        (
            "temporary-limit",
            json!({"limit": cny("50000.00"), "until": "2026-04-01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "plans/1/stolen-write-off",
            json!({"case_id": "no-such-case"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "risk_case_not_found",
        ),
    ];
    for (index, (path, body, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/{path}"),
                &format!("refused-{index}"),
                body,
            )
            .await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {answer}"
        );
    }
    // An authorisation that cannot be captured into a product or term that does not exist.
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-ok",
            json!({"amount": cny("10.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (index, (product, periods, code)) in [
        ("no-such-product", 3, "credit_product_not_found"),
        ("installment", 5, "credit_term_not_offered"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, answer) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
                &format!("capture-refused-{index}"),
                json!({"product": product, "periods": periods}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["code"], code);
    }
    let (status, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture-too-much",
            json!({"amount": cny("10.01"), "product": "installment", "periods": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer["error"]["code"],
        "credit_capture_exceeds_authorization"
    );
    let (status, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/void"),
            "void-1",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM holds WHERE status = 'voided'")
            .await,
        1
    );

    // Frozen: no purchase; an account that owes cannot close.
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/freeze"),
            "freeze",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-frozen",
            json!({"amount": cny("1.00")}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("credit_account_frozen"))
    );
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/unfreeze"),
            "unfreeze",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Who and how: no key, no scope, no idempotency key, unknown account and route.
    let uri = format!("/v1/credit/accounts/{id}/repayments");
    let body = Some(json!({"amount": cny("1.00")}));
    let (status, _) = harness
        .call("POST", &uri, &harness.reader, Some("k"), body.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = harness
        .call("POST", &uri, &harness.clerk, None, body.clone())
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_required"))
    );
    let (status, answer) = harness
        .post(
            "/v1/credit/accounts/999/repayments",
            "missing",
            json!({"amount": cny("1.00")}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("credit_account_not_found"))
    );
    let (status, answer) = harness
        .post(
            &uri,
            "unknown-field",
            json!({"amount": cny("1.00"), "tip": 1}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_field"))
    );
    let (status, answer) = harness
        .post(
            &uri,
            "number",
            json!({"amount": {"value": 1.0, "currency": "CNY"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // After all that: the same account, and only the successful operations stored.
    let mut after = harness.account(id).await;
    let mut expected = before.clone();
    after["status"] = Value::Null;
    expected["status"] = Value::Null;
    after["authorizations"] = Value::Null;
    expected["authorizations"] = Value::Null;
    assert_eq!(after, expected);
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations")
            .await,
        operations + 4
    );
    harness.assert_books_match(&[id]).await;
}

async fn a_declined_application_is_answered_and_replayed(harness: Harness) {
    let customer = harness.customer(OTHER_ID, "13700137000").await;
    let request = json!({
        "customer_id": customer,
        "statement_day": 10,
        "application": {
            "monthly_income": cny("3000.00"),
            "monthly_debt_payments": cny("2500.00"),
            "attributes": attributes(false),
        }
    });
    let (status, body) = harness
        .post("/v1/credit/accounts", "open-declined", request.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"]["outcome"], "declined");
    assert!(body["account"].is_null());
    let reasons: Vec<&str> = body["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason.as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"debt_to_income_too_high"), "{reasons:?}");
    assert!(reasons.contains(&"score_band_declined"), "{reasons:?}");
    assert!(!body["decision"]["adverse_reasons"]
        .as_array()
        .unwrap()
        .is_empty());
    let (status, again) = harness
        .post("/v1/credit/accounts", "open-declined", request)
        .await;
    assert_eq!((status, again), (StatusCode::OK, body));
    assert_eq!(
        harness.scalar("SELECT COUNT(*) FROM credit_accounts").await,
        0
    );

    // Unknown customer, statement day out of range.
    let (status, answer) = harness
        .post(
            "/v1/credit/accounts",
            "open-nobody",
            json!({
                "customer_id": "01890000-0000-7000-8000-000000000000",
                "statement_day": 10,
                "application": {"monthly_income": cny("3000.00"), "monthly_debt_payments": cny("0.00")}
            }),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("customer_not_found"))
    );
    let (status, answer) = harness
        .post(
            "/v1/credit/accounts",
            "open-day-31",
            json!({
                "customer_id": customer,
                "statement_day": 31,
                "application": {"monthly_income": cny("3000.00"), "monthly_debt_payments": cny("0.00")}
            }),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("credit_invalid_statement_day")
        )
    );
}

async fn a_crash_between_intent_and_ledger_is_finished(mut harness: Harness) {
    let (id, _) = harness.open().await;
    let uri = format!("/v1/credit/accounts/{id}/authorizations");
    // A crash after the state and intent are stored, before the ledger hears of it.
    harness.credit.operations.stop_before_ledger(true);
    let (status, answer) = harness
        .post(&uri, "authorize-crash", json!({"amount": cny("500.00")}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(harness.scalar("SELECT COUNT(*) FROM holds").await, 0);
    harness.credit.operations.stop_before_ledger(false);
    // The retry finishes it: one hold, the first answer.
    let (status, body) = harness
        .post(&uri, "authorize-crash", json!({"amount": cny("500.00")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["authorization"]["amount"], cny("500.00"));
    assert_eq!(harness.scalar("SELECT COUNT(*) FROM holds").await, 1);
    harness.assert_books_match(&[id]).await;

    // Another crash; this time the next operation on the account finishes it first.
    harness.credit.operations.stop_before_ledger(true);
    let (status, _) = harness
        .post(&uri, "authorize-crash-2", json!({"amount": cny("200.00")}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    harness.credit.operations.stop_before_ledger(false);
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/2/capture"),
            "capture-after-crash",
            json!({"product": "interest-free", "periods": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM holds WHERE status = 'posted'")
            .await,
        1
    );
    harness.assert_books_match(&[id]).await;

    // And a third: a restart (a new service over the same database) finishes it at start.
    harness.credit.operations.stop_before_ledger(true);
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/repayments"),
            "repay-crash",
            json!({"amount": cny("50.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    harness.credit = Harness::service(&harness.database, &harness.writer).await;
    harness.serve();
    harness.assert_books_match(&[id]).await;
    assert_eq!(
        harness.ledger(LedgerRole::RepaymentClearing).await,
        (5_000, 0)
    );
}

async fn a_stolen_purchase_is_written_off_on_a_confirmed_case(harness: Harness) {
    let (id, customer) = harness.open().await;
    harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize",
            json!({"amount": cny("600.00")}),
        )
        .await;
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture",
            json!({"product": "loan", "periods": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let risk = RiskStore::new(harness.database.clone());
    let case = |id: &str, status: &str, customer: &str| CaseRow {
        id: id.into(),
        kind: "stolen_account".into(),
        priority: 0,
        status: status.into(),
        customer: customer.into(),
        event_sequence: None,
        summary: "customer reports the phone stolen".into(),
        assignee: Some("analyst".into()),
        created_at: 0,
        updated_at: 0,
    };
    let log = |case_id: &str| CaseLogRow {
        id: format!("log-{case_id}"),
        case_id: case_id.into(),
        at: 0,
        actor: "analyst".into(),
        action: "approved".into(),
        note: "confirmed".into(),
    };
    risk.insert_case(&case("open-case", "open", &customer), &log("open-case"))
        .await
        .unwrap();
    risk.insert_case(
        &case("other-case", "approved", "someone-else"),
        &log("other-case"),
    )
    .await
    .unwrap();
    risk.insert_case(&case("confirmed", "approved", &customer), &log("confirmed"))
        .await
        .unwrap();
    let uri = format!("/v1/credit/accounts/{id}/plans/1/stolen-write-off");
    for (case_id, code) in [
        ("open-case", "stolen_account_not_confirmed"),
        ("other-case", "stolen_account_other_customer"),
    ] {
        let (status, answer) = harness
            .post(
                &uri,
                &format!("write-off-{case_id}"),
                json!({"case_id": case_id}),
            )
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code))
        );
    }
    let (status, body) = harness
        .post(&uri, "write-off", json!({"case_id": "confirmed"}))
        .await;
    // Once the claim is confirmed the customer is on the block list: nothing more is bought.
    risk.insert_list_entry(&tally_store::risk::ListEntryRow {
        id: "block-1".into(),
        kind: "block".into(),
        field: "customer".into(),
        value: customer.clone(),
        reason: "confirmed stolen account".into(),
        source: "case confirmed".into(),
        added_at: 0,
        added_by: "analyst".into(),
        expires_at: None,
    })
    .await
    .unwrap();
    let (blocked, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-blocked",
            json!({"amount": cny("1.00")}),
        )
        .await;
    assert_eq!(
        (blocked, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("customer_blocked"))
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["unpaid_principal"], cny("0.00"));
    assert_eq!(body["account"]["bucket"], "current");
    assert_eq!(body["account"]["plans"][0]["status"], "written_off_fraud");
    assert_eq!(
        harness.ledger(LedgerRole::FraudLossExpense).await,
        (60_000, 0)
    );
    harness.assert_books_match(&[id]).await;
}

/// Purchases at 09:00 (100.00), 10:00 (200.00) and 11:00 (300.00), each captured over 6
/// months, and one authorised at 12:00 (50.00) and not captured. Returns the account, its
/// customer, and keys with risk:write and risk:analyst.
async fn three_purchases_and_a_pending_one(harness: &Harness) -> (i64, String, String, String) {
    let (id, customer) = harness.open().await;
    for (index, (time, value)) in [
        ("2026-05-01T09:00:00Z", "100.00"),
        ("2026-05-01T10:00:00Z", "200.00"),
        ("2026-05-01T11:00:00Z", "300.00"),
        ("2026-05-01T12:00:00Z", "50.00"),
    ]
    .into_iter()
    .enumerate()
    {
        harness.clock.set(time.parse().unwrap());
        let (status, body) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/authorizations"),
                &format!("authorize-{index}"),
                json!({"amount": cny(value)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if index < 3 {
            let (status, body) = harness
                .post(
                    &format!(
                        "/v1/credit/accounts/{id}/authorizations/{}/capture",
                        index + 1
                    ),
                    &format!("capture-{index}"),
                    json!({"product": "loan", "periods": 6}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    harness.clock.set("2026-05-01T13:00:00Z".parse().unwrap());
    let reporter = harness.key("claims desk", &["risk:write"]).await;
    let analyst = harness.key("analyst", &["risk:analyst"]).await;
    (id, customer, reporter, analyst)
}

async fn claim(harness: &Harness, reporter: &str, body: Value) -> (StatusCode, Value) {
    harness
        .call("POST", "/v1/risk/claims", reporter, None, Some(body))
        .await
}

async fn move_case(harness: &Harness, analyst: &str, case_id: &str, action: &str) -> Value {
    let (status, body) = harness
        .call(
            "POST",
            &format!("/v1/risk/cases/{case_id}/{action}"),
            analyst,
            None,
            Some(json!({"note": "checked with the customer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

async fn a_stolen_account_claim_from_freeze_to_restored_access(harness: Harness) {
    let (id, customer, reporter, analyst) = three_purchases_and_a_pending_one(&harness).await;
    // Refused: a compromise time after the claim.
    let (status, body) = claim(
        &harness,
        &reporter,
        json!({"customer": customer, "description": "x", "compromised_at": "2026-05-02T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = claim(
        &harness,
        &reporter,
        json!({"customer": customer, "description": "my phone was stolen at 09:30",
               "compromised_at": "2026-05-01T09:30:00Z", "police_reference": "PR-2026-0501"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let case_id = body["case"]["id"].as_str().unwrap().to_string();
    // At once: the line is frozen, and the pending purchase waits.
    let account = harness.account(id).await;
    assert_eq!(account["status"], "frozen", "{account}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/4/capture"),
            "capture-while-claimed",
            json!({"product": "loan", "periods": 6}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("credit_stolen_account_claim_open")
        ),
        "{body}"
    );
    // Access cannot be restored before the claim is confirmed.
    let restore = format!("/v1/risk/claims/{case_id}/restore");
    let (status, body) = harness
        .call(
            "POST",
            &restore,
            &analyst,
            None,
            Some(json!({"note": "id card seen"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("risk_claim_not_confirmed"))
    );
    move_case(&harness, &analyst, &case_id, "claim").await;
    move_case(&harness, &analyst, &case_id, "approve").await;
    // Confirmed: the two purchases from 09:30 on are written off with everything on them,
    // the pending one is voided, the first purchase stays the customer's.
    let account = harness.account(id).await;
    let plans = account["plans"].as_array().unwrap();
    let statuses: Vec<&str> = plans
        .iter()
        .map(|plan| plan["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["active", "written_off_fraud", "written_off_fraud"],
        "{account}"
    );
    assert_eq!(account["unpaid_principal"], cny("100.00"));
    assert_eq!(account["held"], cny("0.00"));
    assert_eq!(account["authorizations"], json!([]));
    assert_eq!(account["bucket"], "current");
    assert_eq!(account["status"], "frozen");
    assert_eq!(
        harness.ledger(LedgerRole::FraudLossExpense).await,
        (50_000, 0)
    );
    harness.assert_books_match(&[id]).await;
    let (status, evidence) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case_id}/evidence"),
            &analyst,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{evidence}");
    assert_eq!(evidence["claim"]["police_reference"], "PR-2026-0501");
    assert_eq!(evidence["claim"]["compromised_at"], "2026-05-01T09:30:00Z");
    // One credit operation for the whole confirmation.
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations WHERE kind = 'confirm_stolen_account_claim'")
            .await,
        1
    );
    // The customer is blocked until re-verified.
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-after-confirm",
            json!({"amount": cny("1.00")}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("customer_blocked"))
    );
    let (status, body) = harness
        .call("POST", &restore, &analyst, None, Some(json!({"note": " "})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
    );
    let (status, body) = harness
        .call(
            "POST",
            &restore,
            &analyst,
            None,
            Some(json!({"note": "identity card checked at the branch"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = harness
        .call(
            "POST",
            &restore,
            &analyst,
            None,
            Some(json!({"note": "again"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("risk_claim_already_restored"))
    );
    let (_, case) = harness
        .call(
            "GET",
            &format!("/v1/risk/cases/{case_id}"),
            &analyst,
            None,
            None,
        )
        .await;
    let actions: Vec<&str> = case["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "opened",
            "claimed",
            "approved",
            "evidence_exported",
            "evidence_sealed",
            "access_restored"
        ]
    );
    let account = harness.account(id).await;
    assert_eq!(account["status"], "open", "{account}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-after-restore",
            json!({"amount": cny("1.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    harness.assert_books_match(&[id]).await;
    // Refused: a case that is not a claim.
    let (status, body) = harness
        .call(
            "POST",
            "/v1/risk/claims/no-such-case/restore",
            &analyst,
            None,
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("risk_case_not_found"))
    );
}

async fn a_rejected_claim_lifts_its_freeze_and_the_purchase_goes_through(harness: Harness) {
    let (id, customer, reporter, analyst) = three_purchases_and_a_pending_one(&harness).await;
    let (status, body) = claim(
        &harness,
        &reporter,
        json!({"customer": customer, "description": "I think my phone was stolen",
               "compromised_at": "2026-05-01T08:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let case_id = body["case"]["id"].as_str().unwrap().to_string();
    move_case(&harness, &analyst, &case_id, "claim").await;
    move_case(&harness, &analyst, &case_id, "reject").await;
    let account = harness.account(id).await;
    assert_eq!(account["status"], "open", "{account}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/4/capture"),
            "capture-after-reject",
            json!({"product": "loan", "periods": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(harness.ledger(LedgerRole::FraudLossExpense).await, (0, 0));
    harness.assert_books_match(&[id]).await;
}

async fn a_claim_left_behind_by_a_crash_is_followed_up_at_start(harness: Harness) {
    let (id, customer, _, _) = three_purchases_and_a_pending_one(&harness).await;
    // As a crash would leave it: the case approved and its claim stored, the credit line
    // not yet told.
    let risk = RiskStore::new(harness.database.clone());
    let case = CaseRow {
        id: "crashed-claim".into(),
        kind: "stolen_account".into(),
        priority: 0,
        status: "approved".into(),
        customer: customer.clone(),
        event_sequence: None,
        summary: "stolen".into(),
        assignee: Some("analyst".into()),
        created_at: 0,
        updated_at: 0,
    };
    let log = CaseLogRow {
        id: "log-crashed".into(),
        case_id: "crashed-claim".into(),
        at: 0,
        actor: "analyst".into(),
        action: "opened".into(),
        note: "".into(),
    };
    let claim = tally_store::risk::ClaimRow {
        case_id: "crashed-claim".into(),
        compromised_at: Some(
            "2026-05-01T10:30:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_microsecond(),
        ),
        police_reference: None,
        followed_up: "none".into(),
        restored_at: None,
        restored_by: None,
    };
    risk.insert_claim(&case, &log, &claim).await.unwrap();
    let claims = tally_service::stolen_accounts::StolenAccountClaims {
        risk: harness.app.risk.as_deref().unwrap(),
        credit: Some(&harness.credit),
        gate: None,
    };
    assert_eq!(claims.finish_pending().await.unwrap(), 1);
    // Run again: nothing is left, and nothing is written off twice.
    assert_eq!(claims.finish_pending().await.unwrap(), 0);
    let account = harness.account(id).await;
    let statuses: Vec<&str> = account["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|plan| plan["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "active", "written_off_fraud"]);
    assert_eq!(
        harness.ledger(LedgerRole::FraudLossExpense).await,
        (30_000, 0)
    );
    harness.assert_books_match(&[id]).await;
}

async fn end_of_day_expires_holds_cuts_statements_and_queues_collections(harness: Harness) {
    let (id, customer) = harness.open().await;
    let uri = format!("/v1/credit/accounts/{id}/authorizations");
    let (status, _) = harness
        .post(
            &uri,
            "a-1",
            json!({"amount": cny("300.00"), "expires_on": "2026-05-03"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = harness
        .post(
            &uri,
            "a-2",
            json!({"amount": cny("900.00"), "expires_on": "2026-05-08"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/2/capture"),
            "capture",
            json!({"product": "installment", "periods": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let policy = AccountPolicy::default();
    let options = EndOfDayOptions::default();
    let database = harness.database.clone();
    let writer = harness.writer.clone();
    let clock = harness.clock.clone();
    let run = |day: Date| {
        let (database, writer, policy, options, clock) = (
            database.clone(),
            writer.clone(),
            policy.clone(),
            options.clone(),
            clock.clone(),
        );
        async move { run_end_of_day(&database, &writer, day, &policy, &options, &*clock).await }
    };
    // 1–3 May: the first authorisation expires at the end of its last day.
    for day in 1..=3 {
        run(date(2026, 5, day)).await.unwrap();
    }
    let account = harness.account(id).await;
    assert_eq!(account["held"], cny("0.00"));
    assert!(account["authorizations"].as_array().unwrap().is_empty());
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM holds WHERE status = 'voided'")
            .await,
        1
    );
    harness.clock.set("2026-05-04T09:00:00Z".parse().unwrap());
    let (status, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture-expired",
            json!({"product": "installment", "periods": 1}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("credit_authorization_not_found")
        )
    );
    // Statement on 5 May, due 14 May, never paid: overdue from 15 May, M1 after the grace.
    let mut day = date(2026, 5, 4);
    while day <= date(2026, 5, 20) {
        run(day).await.unwrap();
        day = day.tomorrow().unwrap();
    }
    let (status, statements) = harness
        .get(&format!("/v1/credit/accounts/{id}/statements"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let statements = statements["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["statement_date"], "2026-05-05");
    assert_eq!(statements[0]["due_date"], "2026-05-14");
    assert_eq!(statements[0]["closing_balance"], cny("900.00"));
    let account = harness.account(id).await;
    assert_eq!(account["bucket"], "m1");
    assert_eq!(account["status"], "frozen");
    let (status, tasks) = harness.get("/v1/credit/tasks").await;
    assert_eq!(status, StatusCode::OK);
    let tasks = tasks["tasks"].as_array().unwrap();
    assert!(
        tasks
            .iter()
            .any(|task| task["account_id"] == id && task["bucket"] == "m1"),
        "{tasks:?}"
    );
    // Who to call: the account's customer.
    assert!(
        tasks
            .iter()
            .all(|task| task["customer_id"] == customer.as_str()),
        "{tasks:?}"
    );
    // A callback added by hand, then closed.
    let (status, task) = harness
        .post(
            "/v1/credit/tasks",
            "task",
            json!({"account_id": id, "kind": "callback", "reason": "asked to be called after 6pm",
                   "amount": cny("0.00"), "priority": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let (status, _) = harness
        .post(
            &format!("/v1/credit/tasks/{}/close", task["id"]),
            "close-task",
            json!({"note": "called"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Paying what is owed brings the account current again, and the books still agree.
    harness.clock.set("2026-05-21T09:00:00Z".parse().unwrap());
    let owed = account["billed_balance"].clone();
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/repayments"),
            "repay-all",
            json!({"amount": owed}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["bucket"], "current");
    harness.assert_books_match(&[id]).await;
}

/// One step of a random story.
#[derive(Debug, Clone)]
enum Step {
    Authorize(i64),
    /// Capture authorisation (index among those open) for this share (in percent) of it,
    /// into product/term number `product`.
    Capture(usize, i64, usize),
    Void(usize),
    Repay(i64),
    /// Refund this share (in percent) of what plan (index) can still be refunded.
    Refund(usize, i64),
    PayOff(usize),
    /// End of day for this many days.
    Days(u8),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (1_i64..400_000).prop_map(Step::Authorize),
        3 => (0_usize..3, 1_i64..=100, 0_usize..6).prop_map(|(a, b, c)| Step::Capture(a, b, c)),
        1 => (0_usize..3).prop_map(Step::Void),
        2 => (1_i64..300_000).prop_map(Step::Repay),
        1 => (0_usize..3, 1_i64..=100).prop_map(|(a, b)| Step::Refund(a, b)),
        1 => (0_usize..3).prop_map(Step::PayOff),
        3 => (1_u8..40).prop_map(Step::Days),
    ]
}

/// Products and terms the random stories capture into.
const TERMS: [(&str, u32); 6] = [
    ("installment", 1),
    ("installment", 3),
    ("loan", 6),
    ("equal-principal", 12),
    ("interest-free", 3),
    ("pay-in-4", 4),
];

fn fen(minor: i64) -> Value {
    cny(&format!("{}.{:02}", minor / 100, minor % 100))
}

/// Any story of purchases, captures, voids, repayments, refunds, payoffs and end-of-day
/// runs (statements, interest, penalties, expiry) keeps the books equal to the accounts,
/// never leaves a pending operation, and never shows negative available credit or more
/// held than authorised.
#[test]
fn any_story_keeps_the_books_equal_to_the_accounts() {
    use proptest::prelude::*;
    let config = ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in proptest::collection::vec(step(), 1..30))| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let harness = Harness::new(TestDatabase::sqlite().await.unwrap()).await;
            let (id, _) = harness.open().await;
            let mut day = date(2026, 5, 1);
            let policy = AccountPolicy::default();
            for (index, step) in steps.iter().enumerate() {
                let key = format!("step-{index}");
                let account = harness.account(id).await;
                let open: Vec<i64> = account["authorizations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|authorization| authorization["id"].as_i64().unwrap())
                    .collect();
                let plans = account["plans"].as_array().unwrap().clone();
                let base = format!("/v1/credit/accounts/{id}");
                let (status, answer) = match step {
                    Step::Authorize(minor) => {
                        harness
                            .post(&format!("{base}/authorizations"), &key, json!({"amount": fen(*minor)}))
                            .await
                    }
                    Step::Capture(which, share, term) => {
                        let Some(authorization) = open.get(which % open.len().max(1)) else { continue };
                        let amount = account["authorizations"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|held| held["id"] == *authorization)
                            .unwrap()["amount"]["value"]
                            .as_str()
                            .unwrap()
                            .replace('.', "")
                            .parse::<i64>()
                            .unwrap();
                        let (product, periods) = TERMS[*term];
                        let captured = (amount * share / 100).max(1);
                        harness
                            .post(
                                &format!("{base}/authorizations/{authorization}/capture"),
                                &key,
                                json!({"amount": fen(captured), "product": product, "periods": periods}),
                            )
                            .await
                    }
                    Step::Void(which) => {
                        let Some(authorization) = open.get(which % open.len().max(1)) else { continue };
                        harness
                            .post(&format!("{base}/authorizations/{authorization}/void"), &key, json!({}))
                            .await
                    }
                    Step::Repay(minor) => {
                        harness
                            .post(&format!("{base}/repayments"), &key, json!({"amount": fen(*minor)}))
                            .await
                    }
                    Step::Refund(which, share) => {
                        let Some(plan) = plans.get(which % plans.len().max(1)) else { continue };
                        let principal: i64 = plan["principal"]["value"].as_str().unwrap().replace('.', "").parse().unwrap();
                        let refunded: i64 = plan["refunded"]["value"].as_str().unwrap().replace('.', "").parse().unwrap();
                        let amount = ((principal - refunded) * share / 100).max(1);
                        harness
                            .post(&format!("{base}/plans/{}/refunds", plan["id"]), &key, json!({"amount": fen(amount)}))
                            .await
                    }
                    Step::PayOff(which) => {
                        let Some(plan) = plans.get(which % plans.len().max(1)) else { continue };
                        let (status, quote) = harness
                            .get(&format!("{base}/plans/{}/payoff-quote", plan["id"]))
                            .await;
                        if status != StatusCode::OK {
                            continue;
                        }
                        harness
                            .post(&format!("{base}/plans/{}/payoff", plan["id"]), &key, json!({"amount": quote["amount"]}))
                            .await
                    }
                    Step::Days(days) => {
                        for _ in 0..*days {
                            run_end_of_day(&harness.database, &harness.writer, day, &policy, &EndOfDayOptions::default(), &*harness.clock)
                                .await
                                .unwrap();
                            day = day.tomorrow().unwrap();
                        }
                        harness.clock.set(day.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp());
                        continue;
                    }
                };
                // Refusals the credit rules give a random story are fine, each with its own
                // code; a malformed request, a generic code or a failure of the service is not.
                const REFUSALS: &[&str] = &[
                    "credit_insufficient",
                    "credit_account_frozen",
                    "credit_account_closed",
                    "credit_account_charged_off",
                    "credit_authorization_not_found",
                    "credit_plan_not_found",
                    "credit_plan_not_active",
                    "credit_refund_exceeds_principal",
                    "credit_payoff_below_quote",
                    "credit_amount_too_large",
                    "credit_term_not_offered",
                ];
                let code = answer["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    status.is_success() || (status.is_client_error() && REFUSALS.contains(&code)),
                    "{step:?}: {status} {answer}"
                );
                let after = harness.account(id).await;
                assert!(!after["available_credit"]["value"].as_str().unwrap().starts_with('-'));
                let held: i64 = after["held"]["value"].as_str().unwrap().replace('.', "").parse().unwrap();
                let authorized: i64 = after["authorizations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|held| held["amount"]["value"].as_str().unwrap().replace('.', "").parse::<i64>().unwrap())
                    .sum();
                assert_eq!(held, authorized, "held equals what is authorised");
            }
            harness.assert_books_match(&[id]).await;
        });
    });
}

/// An amount in fen from its decimal string (`"20000.00"`).
fn minor_units(value: &Value) -> i64 {
    value.as_str().unwrap().replace('.', "").parse().unwrap()
}

async fn keys_reserved_for_tally_are_refused_on_credit_routes(harness: Harness) {
    let (id, customer) = harness.open().await;
    let operations = harness
        .scalar("SELECT COUNT(*) FROM credit_operations")
        .await;
    // End of day stores its chunks as credit operations under `credit-eod:{date}:{cursor}`,
    // and the ledger keys of an operation are `credit:{key}:…`.
    for (uri, key) in [
        (
            format!("/v1/credit/accounts/{id}/authorizations"),
            "credit-eod:2026-05-01:0",
        ),
        (
            format!("/v1/credit/accounts/{id}/repayments"),
            "credit:repay",
        ),
    ] {
        let (status, body) = harness
            .post(&uri, key, json!({"amount": cny("10.00")}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {body}");
        assert_eq!(body["error"]["code"], "invalid_idempotency_key");
    }
    let application = json!({
        "customer_id": customer,
        "statement_day": 5,
        "application": {
            "monthly_income": cny("20000.00"),
            "monthly_debt_payments": cny("1000.00"),
        }
    });
    let (status, body) = harness
        .post("/v1/credit/accounts", "credit-open", application)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_idempotency_key");
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations")
            .await,
        operations
    );
}

async fn a_ledger_key_held_by_another_command_is_not_an_outage(harness: Harness) {
    let (id, _) = harness.open().await;
    // Another command under the ledger key the authorisation "taken" makes its hold with
    // (possible for a key stored before client keys under `credit:` were refused).
    harness
        .writer
        .submit(
            "credit:taken:hold".into(),
            tally_ledger::Command::CreateAccount(tally_ledger::NewAccount {
                code: "someone-else".into(),
                kind: tally_ledger::AccountKind::Asset,
                currency: Currency::CNY,
                flags: tally_ledger::AccountFlags::default(),
                metadata: BTreeMap::new(),
            }),
        )
        .await
        .unwrap();
    let uri = format!("/v1/credit/accounts/{id}/authorizations");
    // Retrying can never help, so the answer is not 503 "retry" (which a client would do for
    // ever), the first time or the next.
    for _ in 0..2 {
        let (status, body) = harness
            .post(&uri, "taken", json!({"amount": cny("10.00")}))
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body["error"]["code"], "credit_ledger_conflict", "{body}");
    }
}

async fn a_credit_ledger_account_code_taken_by_another_account_is_not_adopted(harness: Harness) {
    // A liability opened under the code of the credit receivable (possible before codes
    // under `credit-` were refused) would take every purchase's hold on the wrong side.
    harness
        .writer
        .submit(
            "someone-else".into(),
            tally_ledger::Command::CreateAccount(tally_ledger::NewAccount {
                code: "credit-receivable-CNY".into(),
                kind: tally_ledger::AccountKind::Liability,
                currency: Currency::CNY,
                flags: tally_ledger::AccountFlags::default(),
                metadata: BTreeMap::new(),
            }),
        )
        .await
        .unwrap();
    let (id, _) = harness.open().await;
    let before = harness.account(id).await;
    let operations = harness
        .scalar("SELECT COUNT(*) FROM credit_operations")
        .await;
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "a-1",
            json!({"amount": cny("10.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "credit_ledger_conflict", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credit-receivable-CNY"),
        "{body}"
    );
    assert_eq!(harness.account(id).await, before);
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations")
            .await,
        operations
    );
}

async fn one_key_sent_twice_at_once_gets_one_answer(harness: Harness) {
    let (id, _) = harness.open().await;
    let base = format!("/v1/credit/accounts/{id}");
    let available = minor_units(&harness.account(id).await["available_credit"]["value"]);
    let amount = fen(available * 6 / 10);
    let rounds = 6;
    for round in 0..rounds {
        // Two authorisations of 60 % of the available credit under one key: both get the
        // first one's answer (not 201 and 422).
        let uri = format!("{base}/authorizations");
        let key = format!("twice-authorize-{round}");
        let body = json!({ "amount": amount });
        let (first, second) = tokio::join!(
            harness.post(&uri, &key, body.clone()),
            harness.post(&uri, &key, body.clone()),
        );
        assert_eq!(first.0, StatusCode::CREATED, "round {round}: {}", first.1);
        assert_eq!(first, second, "round {round}");
        // Two voids of it under one key: both 200 (not 200 and 404).
        let authorization = &first.1["authorization"]["id"];
        let uri = format!("{base}/authorizations/{authorization}/void");
        let key = format!("twice-void-{round}");
        let (first, second) = tokio::join!(
            harness.post(&uri, &key, json!({})),
            harness.post(&uri, &key, json!({})),
        );
        assert_eq!(first.0, StatusCode::OK, "round {round}: {}", first.1);
        assert_eq!(first, second, "round {round}");
    }
    assert_eq!(harness.scalar("SELECT COUNT(*) FROM holds").await, rounds);
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM holds WHERE status = 'voided'")
            .await,
        rounds
    );
    harness.assert_books_match(&[id]).await;
}

async fn bad_amounts_paths_and_queries_get_their_codes(harness: Harness) {
    let (id, customer) = harness.open().await;
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "a-1",
            json!({"amount": cny("100.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = harness.account(id).await;
    let operations = harness
        .scalar("SELECT COUNT(*) FROM credit_operations")
        .await;
    let tasks = harness
        .scalar("SELECT COUNT(*) FROM credit_contact_tasks")
        .await;
    let digits = json!({"value": "1.001", "currency": "CNY"});
    let words = json!({"value": "ten", "currency": "CNY"});
    let nowhere = json!({"value": "1.00", "currency": "XYZ"});
    let account = format!("/v1/credit/accounts/{id}");
    // The codes the ledger routes give for the same mistakes.
    let cases: Vec<(String, Value, StatusCode, &str)> = vec![
        (
            format!("{account}/repayments"),
            json!({"amount": digits}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            format!("{account}/repayments"),
            json!({"amount": nowhere}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            format!("{account}/repayments"),
            json!({"amount": {"value": 1.5, "currency": "CNY"}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            format!("{account}/repayments"),
            json!({"amount": {"value": "1.00", "currency": "CNY", "x": 1}}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            format!("{account}/authorizations"),
            json!({"amount": words}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            format!("{account}/authorizations"),
            json!({"amount": nowhere}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            format!("{account}/authorizations/1/capture"),
            json!({"amount": digits, "product": "installment", "periods": 3}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            format!("{account}/plans/1/refunds"),
            json!({"amount": nowhere}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            format!("{account}/plans/1/payoff"),
            json!({"amount": digits}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            format!("{account}/limit"),
            json!({"limit": nowhere}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            format!("{account}/temporary-limit"),
            json!({"limit": digits, "until": "2026-06-01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            "/v1/credit/tasks".into(),
            json!({"account_id": id, "kind": "alert", "reason": "r", "amount": nowhere, "priority": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            "/v1/credit/accounts".into(),
            json!({"customer_id": customer, "statement_day": 5, "application": {
            "monthly_income": digits, "monthly_debt_payments": cny("1.00")}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            "/v1/credit/accounts/abc/repayments".into(),
            json!({"amount": cny("1.00")}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("{account}/plans/x/refunds"),
            json!({"amount": cny("1.00")}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "/v1/credit/tasks/x/close".into(),
            json!({"note": "n"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ];
    for (index, (uri, body, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = harness.post(&uri, &format!("bad-{index}"), body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{uri}: {answer}"
        );
    }
    for (uri, code) in [
        (format!("{account}/statements?limit=x"), "invalid_query"),
        (format!("{account}/statements?colour=red"), "invalid_query"),
        ("/v1/credit/tasks?limit=x".to_string(), "invalid_query"),
        ("/v1/credit/tasks?colour=red".to_string(), "invalid_query"),
        (
            format!("{account}/offers?amount=1.00&colour=red"),
            "invalid_query",
        ),
        ("/v1/credit/accounts/abc".to_string(), "invalid_id"),
        (format!("{account}/plans/x/payoff-quote"), "invalid_id"),
    ] {
        let (status, answer) = harness.get(&uri).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{uri}: {answer}"
        );
    }
    assert_eq!(harness.account(id).await, before);
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations")
            .await,
        operations
    );
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_contact_tasks")
            .await,
        tasks
    );
    // An amount written another way is the same request: a retry replays.
    let uri = format!("{account}/repayments");
    let (status, first) = harness
        .post(&uri, "repay", json!({"amount": cny("1.5")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = harness
        .post(&uri, "repay", json!({"amount": cny("1.50")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    harness.assert_books_match(&[id]).await;
}

/// A customer who overpaid gets the credit balance back (in two payouts, one while the
/// account is frozen), the money moves once however often a payout is retried, every
/// refusal says why and changes nothing, and the account then closes.
async fn a_credit_balance_is_paid_out_and_the_account_then_closes(harness: Harness) {
    let (id, _) = harness.open().await;
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize",
            json!({"amount": cny("500.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture",
            json!({"product": "installment", "periods": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Paying the plan off with 150.00 more than the quote: the customer overpaid.
    let (status, quote) = harness
        .get(&format!("/v1/credit/accounts/{id}/plans/1/payoff-quote"))
        .await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let quote = quote["amount"]["value"].as_str().unwrap().to_string();
    let overpaid = format!(
        "{:.2}",
        quote.parse::<rust_decimal::Decimal>().unwrap() + rust_decimal::Decimal::new(15_000, 2)
    );
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/plans/1/payoff"),
            "payoff",
            json!({"amount": cny(&overpaid)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["credit_balance"], cny("150.00"));
    harness.assert_books_match(&[id]).await;

    // Refusals: each with its code, and nothing changes.
    let uri = format!("/v1/credit/accounts/{id}/credit-balance/payouts");
    let before = harness.account(id).await;
    let operations = harness
        .scalar("SELECT COUNT(*) FROM credit_operations")
        .await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"amount": cny("0.00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_not_positive",
        ),
        (
            json!({"amount": cny("-1.00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_not_positive",
        ),
        (
            json!({"amount": {"value": "1.00", "currency": "USD"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
        ),
        (
            json!({"amount": cny("1.001")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            json!({"amount": {"value": "1.00", "currency": "XYZ"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            json!({"amount": cny("150.01")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credit_payout_exceeds_credit_balance",
        ),
    ];
    for (number, (body, expected, code)) in cases.into_iter().enumerate() {
        let (status, answer) = harness
            .post(&uri, &format!("refused-{number}"), body.clone())
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (expected, Some(code)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = harness
        .post(
            &uri,
            "refused-field",
            json!({"amount": cny("1.00"), "to": "x"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_field"))
    );
    // No idempotency key; a key without credit:write; no such account.
    let (status, answer) = harness
        .call(
            "POST",
            &uri,
            &harness.clerk,
            None,
            Some(json!({"amount": cny("1.00")})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_required"))
    );
    let (status, answer) = harness
        .call(
            "POST",
            &uri,
            &harness.reader,
            Some("reader-payout"),
            Some(json!({"amount": cny("1.00")})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{}/credit-balance/payouts", id + 1000),
            "no-such-account",
            json!({"amount": cny("1.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(harness.account(id).await, before);
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations")
            .await,
        operations
    );
    assert_eq!(
        harness.ledger(LedgerRole::CustomerPayoutPayable).await,
        (0, 0)
    );

    // A frozen account still gets its customer's money back: 100.00 now.
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/freeze"),
            "freeze",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness
        .post(&uri, "payout-1", json!({"amount": cny("100.00")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paid_out"], cny("100.00"));
    assert_eq!(body["account"]["credit_balance"], cny("50.00"));
    assert_eq!(body["account"]["status"], "frozen");
    assert_eq!(
        harness.ledger(LedgerRole::CustomerPayoutPayable).await,
        (-10_000, 0)
    );
    harness.assert_books_match(&[id]).await;
    // A retry answers the same and moves nothing more; the key with another body is refused.
    let (status, again) = harness
        .post(&uri, "payout-1", json!({"amount": cny("100.00")}))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    let (status, reused) = harness
        .post(&uri, "payout-1", json!({"amount": cny("50.00")}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!(
        harness.ledger(LedgerRole::CustomerPayoutPayable).await,
        (-10_000, 0)
    );
    assert_eq!(harness.account(id).await["credit_balance"], cny("50.00"));
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM credit_operations WHERE kind = 'pay_out_credit_balance'")
            .await,
        1
    );

    // The rest, after unfreezing: the balance is zero and the account closes.
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/unfreeze"),
            "unfreeze",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness
        .post(&uri, "payout-2", json!({"amount": cny("50.00")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["credit_balance"], cny("0.00"));
    let (status, answer) = harness
        .post(&uri, "payout-3", json!({"amount": cny("0.01")}))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("credit_payout_exceeds_credit_balance")
        )
    );
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/close"),
            "close",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["status"], "closed");
    assert_eq!(
        harness.ledger(LedgerRole::CustomerPayoutPayable).await,
        (-15_000, 0)
    );
    assert_eq!(
        harness.ledger(LedgerRole::CustomerCreditBalance).await,
        (0, 0)
    );
    harness.assert_books_match(&[id]).await;
}

/// Money that reaches a charged-off account stays against the debt charged off: it is not
/// paid out (`credit_account_charged_off`, 409), and nothing changes.
async fn a_charged_off_account_keeps_its_credit_balance(harness: Harness) {
    let (id, _) = harness.open().await;
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize",
            json!({"amount": cny("900.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture",
            json!({"product": "installment", "periods": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A lender that charges off as soon as an account is overdue (M1), to keep this short.
    let mut policy = AccountPolicy::default();
    policy
        .bucket_actions
        .push(tally_credit::account::BucketAction {
            bucket: tally_credit::Bucket::M1,
            action: tally_credit::account::DelinquencyAction::ChargeOff,
        });
    let mut day = date(2026, 5, 1);
    while day <= date(2026, 5, 20) {
        run_end_of_day(
            &harness.database,
            &harness.writer,
            day,
            &policy,
            &EndOfDayOptions::default(),
            &*harness.clock,
        )
        .await
        .unwrap();
        day = day.tomorrow().unwrap();
    }
    assert_eq!(harness.account(id).await["status"], "charged_off");
    // A payment after the charge-off is held as credit balance, against the debt.
    harness.clock.set("2026-05-21T09:00:00Z".parse().unwrap());
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/repayments"),
            "recovery",
            json!({"amount": cny("50.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["credit_balance"], cny("50.00"));
    let before = harness.account(id).await;
    let (status, answer) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/credit-balance/payouts"),
            "payout",
            json!({"amount": cny("50.00")}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("credit_account_charged_off"))
    );
    assert_eq!(harness.account(id).await, before);
    assert_eq!(
        harness.ledger(LedgerRole::CustomerPayoutPayable).await,
        (0, 0)
    );
    harness.assert_books_match(&[id]).await;
}

/// The open statement tells a client what is still to pay for its minimum: the minimum less
/// what a stolen-account write-off and a refund took off it, less what the customer paid.
async fn the_account_shows_what_is_still_to_pay_on_its_statement(harness: Harness) {
    let (id, customer) = harness.open().await;
    // Three purchases in one period each: 1,000.00 the customer's, 500.00 the thief's and
    // 300.00 returned to the merchant.
    for (number, value) in [(1, "1000.00"), (2, "500.00"), (3, "300.00")] {
        let (status, body) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/authorizations"),
                &format!("authorize-{number}"),
                json!({"amount": cny(value)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/authorizations/{number}/capture"),
                &format!("capture-{number}"),
                json!({"product": "installment", "periods": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let policy = AccountPolicy::default();
    let options = EndOfDayOptions::default();
    let run = |day: Date| {
        let (harness, policy, options) = (&harness, &policy, &options);
        async move {
            run_end_of_day(
                &harness.database,
                &harness.writer,
                day,
                policy,
                options,
                &*harness.clock,
            )
            .await
            .unwrap();
        }
    };
    for day in 1..=5 {
        run(date(2026, 5, day)).await;
    }
    harness.clock.set("2026-05-06T09:00:00Z".parse().unwrap());
    // Statement on 5 May, due 14 May: 10% of the 1,800.00 billed.
    let open = harness.account(id).await["open_statement"].clone();
    assert_eq!(open["due_date"], "2026-05-14");
    assert_eq!(open["minimum_payment"], cny("180.00"));
    assert_eq!(open["minimum_due"], cny("180.00"));
    assert_eq!(open["still_to_pay"], cny("180.00"));
    assert_eq!(open["paid"], cny("0.00"));

    // The thief's purchase is written off: its 50.00 part of the minimum is not the
    // customer's.
    let risk = RiskStore::new(harness.database.clone());
    risk.insert_case(
        &CaseRow {
            id: "confirmed".into(),
            kind: "stolen_account".into(),
            priority: 0,
            status: "approved".into(),
            customer: customer.clone(),
            event_sequence: None,
            summary: "customer reports the phone stolen".into(),
            assignee: Some("analyst".into()),
            created_at: 0,
            updated_at: 0,
        },
        &CaseLogRow {
            id: "log-confirmed".into(),
            case_id: "confirmed".into(),
            at: 0,
            actor: "analyst".into(),
            action: "approved".into(),
            note: "confirmed".into(),
        },
    )
    .await
    .unwrap();
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/plans/2/stolen-write-off"),
            "write-off",
            json!({"case_id": "confirmed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["account"]["open_statement"]["still_to_pay"],
        cny("130.00")
    );
    // The 300.00 purchase is refunded in full: its 30.00 part goes too.
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/plans/3/refunds"),
            "refund",
            json!({"amount": cny("300.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let open = harness.account(id).await["open_statement"].clone();
    // The minimum as cut is unchanged; what is due and still to pay are the customer's own.
    assert_eq!(open["minimum_payment"], cny("180.00"));
    assert_eq!(open["minimum_due"], cny("100.00"));
    assert_eq!(open["still_to_pay"], cny("100.00"));

    // A part payment leaves the rest to pay; paying it leaves nothing.
    let repay = |key: &'static str, value: &'static str| {
        let harness = &harness;
        async move {
            let (status, body) = harness
                .post(
                    &format!("/v1/credit/accounts/{id}/repayments"),
                    key,
                    json!({"amount": cny(value)}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    repay("repay-1", "60.00").await;
    let open = harness.account(id).await["open_statement"].clone();
    assert_eq!(open["paid"], cny("60.00"));
    assert_eq!(open["still_to_pay"], cny("40.00"));
    repay("repay-2", "40.00").await;
    let open = harness.account(id).await["open_statement"].clone();
    assert_eq!(open["minimum_due"], cny("100.00"));
    assert_eq!(open["still_to_pay"], cny("0.00"));
    assert!(harness.account(id).await["earlier_statements"]
        .as_array()
        .unwrap()
        .is_empty());

    // Met by the due date: the account stays current and the rest revolves.
    harness.clock.set("2026-05-16T09:00:00Z".parse().unwrap());
    for day in 6..=15 {
        run(date(2026, 5, day)).await;
    }
    let account = harness.account(id).await;
    assert_eq!(account["bucket"], "current");
    assert_eq!(account["status"], "open");
    assert!(account["open_statement"].is_null());
    harness.assert_books_match(&[id]).await;
}

/// Accounts opened when Tally accepted `due_days` 0 to 31 keep buying: only a new account's
/// cycle must have 1 to 28.
async fn an_account_stored_with_due_days_0_or_over_28_still_buys(harness: Harness) {
    let (id, _) = harness.open().await;
    for (number, due_days) in [(1, 30), (2, 0)] {
        harness
            .edit_stored_account(id, |state| state["cycle"]["due_days"] = json!(due_days))
            .await;
        let (status, offers) = harness
            .get(&format!(
                "/v1/credit/accounts/{id}/offers?amount=100.00&product=installment"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{offers}");
        let (status, body) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/authorizations"),
                &format!("authorize-{number}"),
                json!({"amount": cny("100.00")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = harness
            .post(
                &format!("/v1/credit/accounts/{id}/authorizations/{number}/capture"),
                &format!("capture-{number}"),
                json!({"product": "installment", "periods": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let account = &body["account"];
        assert_eq!(account["held"], cny("0.00"));
        let plan = &account["plans"][number - 1];
        // Billed on 5 May, due `due_days` after it.
        let due = date(2026, 5, 5)
            .checked_add(jiff::Span::new().days(due_days))
            .unwrap();
        assert_eq!(plan["installments"][0]["due_date"], due.to_string());
    }
    // No hold is left behind.
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM holds WHERE status = 'pending'")
            .await,
        0
    );
    harness.assert_books_match(&[id]).await;
}

/// A `ledger:write` key could post against the credit receivable once it knew the id: the
/// ledger then disagreed with the credit accounts and every payoff was refused (`500
/// credit_ledger_refused`). The credit service's accounts are its own.
async fn a_client_cannot_move_the_credit_services_ledger_accounts(harness: Harness) {
    let (id, _) = harness.open().await;
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-1",
            json!({"amount": cny("300.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations/1/capture"),
            "capture-1",
            json!({"amount": cny("300.00"), "product": "installment", "periods": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ledger = credit_ledger_accounts(&harness.database, &harness.writer, Currency::CNY)
        .await
        .unwrap();
    let receivable = ledger
        .account_of(LedgerRole::CustomerReceivable)
        .to_string();
    let clearing = ledger.account_of(LedgerRole::RepaymentClearing).to_string();
    let (status, body) = harness
        .call(
            "GET",
            &format!("/v1/accounts/{receivable}"),
            &harness.admin,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["owner"], "credit", "{body}");

    let writer = harness
        .database
        .create_api_key(
            "ledger client",
            &["ledger:write".into()],
            harness.clock.now(),
        )
        .await
        .unwrap()
        .secret
        .expose()
        .clone();
    let (status, body) = harness
        .call(
            "POST",
            "/v1/accounts",
            &writer,
            Some("open-own"),
            Some(json!({"code": "client-cash", "kind": "asset", "currency": "CNY"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let own = body["id"].as_str().unwrap().to_string();
    let journal = harness.scalar("SELECT COUNT(*) FROM journal_entries").await;
    let leg = |account: &str, side: &str| json!({"account_id": account, "side": side, "amount": "300.00", "currency": "CNY"});
    for (name, uri, body) in [
        (
            "entry to the receivable",
            "/v1/entries",
            json!({"legs": [leg(&own, "debit"), leg(&receivable, "credit")]}),
        ),
        (
            "entry from the clearing account",
            "/v1/entries",
            json!({"legs": [leg(&clearing, "debit"), leg(&own, "credit")]}),
        ),
        (
            "hold on the receivable",
            "/v1/holds",
            json!({"debit_account_id": own, "credit_account_id": receivable,
                   "amount": "300.00", "currency": "CNY", "expires_at": "2027-01-01T00:00:00Z"}),
        ),
    ] {
        let (status, answer) = harness
            .call(
                "POST",
                uri,
                &writer,
                Some(&name.replace(' ', "-")),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {answer}");
        assert_eq!(
            answer["error"]["code"], "account_owned_by_service",
            "{name}"
        );
    }
    // The credit service's own hold on the receivable cannot be voided by a client.
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/authorizations"),
            "authorize-2",
            json!({"amount": cny("50.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hold: String = match &harness.database {
        Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT id FROM holds WHERE status = 'pending'")
                .fetch_one(pool)
                .await
                .unwrap()
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT id FROM holds WHERE status = 'pending'")
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    let (status, answer) = harness
        .call(
            "POST",
            &format!("/v1/holds/{hold}/void"),
            &writer,
            Some("void-credit-hold"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "account_owned_by_service");
    assert_eq!(
        harness.scalar("SELECT COUNT(*) FROM journal_entries").await,
        journal
    );
    assert_eq!(
        harness
            .scalar("SELECT COUNT(*) FROM holds WHERE status = 'pending'")
            .await,
        1
    );
    harness.assert_books_match(&[id]).await;

    // The books still agree, so the plan pays off.
    let (status, quote) = harness
        .get(&format!("/v1/credit/accounts/{id}/plans/1/payoff-quote"))
        .await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let (status, body) = harness
        .post(
            &format!("/v1/credit/accounts/{id}/plans/1/payoff"),
            "payoff-1",
            json!({"amount": quote["amount"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["unpaid_principal"], cny("0.00"));
    harness.assert_books_match(&[id]).await;
}

/// A POST to any router (another service instance's), answering its status and body.
async fn post_to(
    router: &Router,
    key: &str,
    uri: &str,
    idempotency: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = Some(body.to_string());
    support::call(router, "POST", uri, Some(key), Some(idempotency), body).await
}

/// Opens `count` approved accounts, each for its own customer.
async fn open_accounts(harness: &Harness, count: u32) -> Vec<i64> {
    let mut ids = Vec::new();
    for index in 1..=count {
        let customer = harness
            .customer(
                &national_id(index, index * 7),
                &format!("1370000000{index}"),
            )
            .await;
        let (status, body) = harness
            .post(
                "/v1/credit/accounts",
                &format!("open-{index}"),
                application(&customer, true),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["account"]["id"].as_i64().unwrap());
    }
    ids
}

/// One round of a customer's operations on account `id`, through `router`, keys made
/// unique by `tag`: a purchase captured into installments, one authorised and left to expire
/// on `expires_on`, a repayment and a refund of part of the new plan. Answers how many
/// operations succeeded; a refusal is allowed (it changes nothing), an outage is not.
async fn operations_round(
    router: Router,
    clerk: String,
    id: i64,
    tag: String,
    expires_on: Date,
) -> usize {
    let accounts = format!("/v1/credit/accounts/{id}");
    let mut succeeded = 0;
    let mut check = |status: StatusCode, body: &Value, what: &str| {
        assert!(
            !status.is_server_error(),
            "{what} on account {id} ({tag}): {status} {body}"
        );
        if status.is_success() {
            succeeded += 1;
        }
        status.is_success()
    };
    let (status, body) = post_to(
        &router,
        &clerk,
        &format!("{accounts}/authorizations"),
        &format!("expiring-{id}-{tag}"),
        json!({"amount": cny("2.00"), "expires_on": expires_on.to_string()}),
    )
    .await;
    check(status, &body, "authorisation left to expire");
    let (status, body) = post_to(
        &router,
        &clerk,
        &format!("{accounts}/authorizations"),
        &format!("purchase-{id}-{tag}"),
        json!({"amount": cny("30.00")}),
    )
    .await;
    if check(status, &body, "authorisation") {
        let authorization = body["authorization"]["id"].as_i64().unwrap();
        let (status, body) = post_to(
            &router,
            &clerk,
            &format!("{accounts}/authorizations/{authorization}/capture"),
            &format!("capture-{id}-{tag}"),
            json!({"product": "installment", "periods": 3}),
        )
        .await;
        if check(status, &body, "capture") {
            let plan = body["account"]["plans"].as_array().unwrap().last().unwrap()["id"]
                .as_i64()
                .unwrap();
            let (status, body) = post_to(
                &router,
                &clerk,
                &format!("{accounts}/plans/{plan}/refunds"),
                &format!("refund-{id}-{tag}"),
                json!({"amount": cny("0.10")}),
            )
            .await;
            check(status, &body, "refund");
        }
    }
    let (status, body) = post_to(
        &router,
        &clerk,
        &format!("{accounts}/repayments"),
        &format!("repay-{id}-{tag}"),
        json!({"amount": cny("1.00")}),
    )
    .await;
    check(status, &body, "repayment");
    succeeded
}

/// End of day and credit operations on the same accounts at the same time: each writes an
/// account only if its version is still the one it read, so neither overwrites the other's
/// state (a repayment lost from the account but in the ledger; an expired authorisation back
/// on the account but released in the ledger). The books are checked after every day.
async fn end_of_day_racing_operations_keeps_the_books(harness: Harness) {
    let ids = open_accounts(&harness, 4).await;
    let policy = AccountPolicy::default();
    let options = EndOfDayOptions::default();
    let mut succeeded = 0;
    for day in 2..=12_i8 {
        // Operations of `day` run while end of day closes the day before.
        let today = date(2026, 5, day);
        harness
            .clock
            .set(format!("{today}T04:00:00Z").parse().unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for id in &ids {
            tasks.spawn(operations_round(
                harness.router.clone(),
                harness.clerk.clone(),
                *id,
                today.to_string(),
                today,
            ));
        }
        let yesterday = today.yesterday().unwrap();
        let report = run_end_of_day(
            &harness.database,
            &harness.writer,
            yesterday,
            &policy,
            &options,
            &*harness.clock,
        )
        .await
        .unwrap();
        assert_eq!(report.accounts, 4, "{yesterday}");
        while let Some(joined) = tasks.join_next().await {
            succeeded += joined.unwrap();
        }
        harness.assert_books_match(&ids).await;
    }
    assert!(
        succeeded >= 4 * 11 * 4,
        "only {succeeded} operations succeeded"
    );
}

/// Two service instances (two pools, two ledger writers, two credit services) on one
/// database operating on the same accounts at once, with end of day run by the second: an
/// operation writes the account only if its version is still the one it read, so one
/// instance never overwrites what the other stored.
async fn two_service_instances_on_one_database_keep_the_books(harness: Harness) {
    let ids = open_accounts(&harness, 3).await;
    let other_database = harness.test.connect_again().await.unwrap();
    // One risk process serves a database (its sequence numbers are its own), so the second
    // instance decides through the first one's engine, as a second credit process would.
    let other = Instance::start_with_risk(
        &other_database,
        harness.clock.clone(),
        &harness.setup,
        harness.app.risk.clone(),
    )
    .await;
    let (other_writer, other_router) = (other.writer, other.router);
    let policy = AccountPolicy::default();
    let options = EndOfDayOptions::default();
    let mut succeeded = 0;
    for day in 2..=6_i8 {
        let today = date(2026, 5, day);
        harness
            .clock
            .set(format!("{today}T04:00:00Z").parse().unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for id in &ids {
            for (instance, router) in [&harness.router, &other_router].into_iter().enumerate() {
                // Two rounds per instance and account, so that operations on one account
                // from both instances overlap.
                for round in 0..2 {
                    tasks.spawn(operations_round(
                        router.clone(),
                        harness.clerk.clone(),
                        *id,
                        format!("{today}-{instance}-{round}"),
                        today,
                    ));
                }
            }
        }
        let yesterday = today.yesterday().unwrap();
        run_end_of_day(
            &other_database,
            &other_writer,
            yesterday,
            &policy,
            &options,
            &*harness.clock,
        )
        .await
        .unwrap();
        while let Some(joined) = tasks.join_next().await {
            succeeded += joined.unwrap();
        }
        harness.assert_books_match(&ids).await;
    }
    assert!(
        succeeded >= 3 * 5 * 4 * 4,
        "only {succeeded} operations succeeded"
    );
}
