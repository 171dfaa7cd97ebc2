//! Two payment services on one database, as two processes would run (each its own pool,
//! ledger writer and in-process locks), racing payouts of the same merchants' balances on
//! SQLite and PostgreSQL: never more is paid than was available. Each merchant holds
//! 100.00 and each service asks for ten payouts of 10.00 at once: exactly ten are funded
//! (the available balance ends at zero, never below), the others fail their funding or are
//! refused above the available balance, and the books balance.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{Amount, Currency, ManualClock};
use tally_ledger::{Command, NewEntry, NewLeg, Side};
use tally_service::payments::accounts::PAYMENTS_SERVICE;
use tally_service::payments::merchants::testing::{test_merchant, test_privacy};
use tally_service::payments::payouts::NewPayout;
use tally_service::payments::{PaymentService, PaymentsConfig};
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

const MERCHANTS: [&str; 3] = ["race-a", "race-b", "race-c"];
const HELD: i64 = 10_000;
const EACH: i64 = 1_000;
const ASKED_PER_SERVICE: usize = 10;

fn now() -> Timestamp {
    "2026-12-01T09:00:00Z".parse().unwrap()
}

/// A payment service as another process would start it on `url`.
async fn service_at(url: &str) -> (Database, PaymentService) {
    let database = Database::connect(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let writer = LedgerWriter::start(&database, clock, WriterConfig::default())
        .await
        .unwrap()
        .0;
    let service = PaymentService::new(
        database.clone(),
        writer,
        None,
        None,
        PaymentsConfig::default(),
    );
    (database, service)
}

/// A liability's balance (credits less debits) in minor units.
async fn balance(database: &Database, code: &str) -> i64 {
    let id = database.account_id_by_code(code).await.unwrap().unwrap();
    let balance = database.account(id).await.unwrap().unwrap().balance;
    balance.credits_posted - balance.debits_posted
}

async fn race(test: TestDatabase) {
    let (database, first) = service_at(&test.url_for_another_process()).await;
    let (_, second) = service_at(&test.url_for_another_process()).await;
    let privacy = test_privacy();
    for merchant in MERCHANTS {
        first
            .onboard_merchant(
                Some(&privacy),
                test_merchant(merchant, Currency::CNY),
                None,
                now(),
            )
            .await
            .unwrap();
        // The merchant's available balance, as a settlement would fill it.
        let accounts = first
            .accounts()
            .merchant(&database, first.writer(), merchant, Currency::CNY)
            .await
            .unwrap();
        let service = first
            .accounts()
            .service(&database, first.writer(), Currency::CNY)
            .await
            .unwrap();
        let amount = Amount::new(HELD, Currency::CNY);
        first
            .writer()
            .submit_as(
                PAYMENTS_SERVICE,
                format!("payments-test-fund:{merchant}"),
                Command::PostEntry(NewEntry {
                    description: format!("test settlement of {merchant}"),
                    metadata: BTreeMap::new(),
                    legs: vec![
                        NewLeg {
                            account_id: service.channel_clearing,
                            side: Side::Debit,
                            amount,
                        },
                        NewLeg {
                            account_id: accounts.available,
                            side: Side::Credit,
                            amount,
                        },
                    ],
                }),
            )
            .await
            .unwrap();
    }
    let first = Arc::new(first);
    let second = Arc::new(second);
    let mut tasks = Vec::new();
    for merchant in MERCHANTS {
        for (name, service) in [("first", &first), ("second", &second)] {
            for number in 0..ASKED_PER_SERVICE {
                let service = Arc::clone(service);
                tasks.push(tokio::spawn(async move {
                    service
                        .create_payout(
                            &format!("race:{merchant}:{name}:{number}"),
                            NewPayout {
                                merchant: merchant.to_string(),
                                amount: Amount::new(EACH, Currency::CNY),
                            },
                            now(),
                        )
                        .await
                        .map_err(|error| error.code().to_string())
                }));
            }
        }
    }
    for task in tasks {
        match task.await.unwrap() {
            Ok(payout) => assert!(
                payout.state == "created" || payout.state == "failed",
                "{payout:?}"
            ),
            Err(code) => assert_eq!(code, "payout_above_available_balance"),
        }
    }
    for merchant in MERCHANTS {
        let available = balance(
            &database,
            &format!("payments-merchant-{merchant}-available-CNY"),
        )
        .await;
        let payable = balance(
            &database,
            &format!("payments-merchant-{merchant}-payable-CNY"),
        )
        .await;
        assert_eq!(available, 0, "{merchant}: paid beyond its balance");
        assert_eq!(payable, HELD, "{merchant}");
        let funded: Vec<(String, i64)> = tally_store::with_pool!(&database, |pool| {
            sqlx::query_as(
                "SELECT funding, amount_minor FROM payouts WHERE merchant_id = $1 \
                 AND funding = 'posted'",
            )
            .bind(merchant)
            .fetch_all(pool)
            .await
            .unwrap()
        });
        assert_eq!(
            funded.iter().map(|(_, amount)| amount).sum::<i64>(),
            HELD,
            "{merchant}: {funded:?}"
        );
    }
    for totals in database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
    }
}

tally_store::on_both_backends!(race);
