//! A settlement run racing a dispute that takes from the reserve, on SQLite and PostgreSQL.
//! Each round (a Monday) a new merchant (T+0, 10 % held for a day) is paid 100.00 by card and settled,
//! so that it holds 90.00 available and a reserve row of 10.00 due the next day; then the
//! next day's run (which releases that row) and a dispute of 95.00 (which takes all of the
//! available balance and half the reserve, lowering the row) start at once. Whichever comes
//! first, the merchant ends with 5.00 in its balances, its reserve account equal to its
//! rows not yet released and never below zero, and the books balance: nothing released
//! that a dispute took, nothing counted twice.
#![allow(clippy::unwrap_used)]

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use tally_channel::simulator::{serve, SimulatorConfig, SimulatorControl};
use tally_channel::{
    signature_header, Channel, ChannelId, DisputeDetails, HttpChannel, HttpChannelConfig,
    Notification, NotificationType, Reference,
};
use tally_core::{Amount, Clock, Currency, ManualClock, Secret};
use tally_payments::{CaptureMethod, Funding, SettlementTerms, Share, Source};
use tally_service::payments::accounts::{merchant_code, MerchantBalance};
use tally_service::payments::merchants::testing::{test_merchant, test_privacy};
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::{ConfirmInput, CreatePayment, PaymentService, PaymentsConfig};
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

const BANK_SECRET: &str = "bank-secret";
const CUSTOMER: &str = "shopper-1";
const ROUNDS: usize = 6;

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

/// The start of `date` in UTC plus `hours`.
fn at(date: Date, hours: i64) -> Timestamp {
    date.to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .checked_add(SignedDuration::from_hours(hours))
        .unwrap()
}

async fn scalar(database: &Database, sql: &str) -> i64 {
    tally_store::with_pool!(database, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
        sql.to_string()
    ))
    .fetch_one(pool)
    .await
    .unwrap())
}

/// Credits less debits of the account with `code`.
async fn liability(database: &Database, code: &str) -> i64 {
    scalar(
        database,
        &format!(
            "SELECT COALESCE((SELECT b.credits_posted - b.debits_posted FROM accounts a \
             JOIN account_balances b ON b.account_id = a.id WHERE a.code = '{code}'), 0)"
        ),
    )
    .await
}

async fn race(test: TestDatabase) {
    let database = test.database.clone();
    let start: Date = "2026-11-30".parse().unwrap();
    let clock = Arc::new(ManualClock::new(at(start, 10)));
    let writer = LedgerWriter::start(&database, clock.clone(), WriterConfig::default())
        .await
        .unwrap()
        .0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { serve(listener, SimulatorConfig::new(BANK_SECRET)).await });
    let bank = SimulatorControl::new(&url, BANK_SECRET).unwrap();
    let channel: Arc<dyn Channel> = Arc::new(
        HttpChannel::new(HttpChannelConfig {
            base_url: url,
            timeout: std::time::Duration::from_secs(5),
            secret: Secret::new(BANK_SECRET.to_string()),
        })
        .unwrap(),
    );
    let payments = Arc::new(PaymentService::new(
        database.clone(),
        writer,
        None,
        Some(channel),
        PaymentsConfig {
            channel_secret: Some(Secret::new(BANK_SECRET.to_string())),
            ..PaymentsConfig::default()
        },
    ));
    let card = bank
        .register_card(
            "4242424242424242",
            "12/30",
            Amount::parse("100000000.00", Currency::CNY).unwrap(),
        )
        .await
        .unwrap();
    payments
        .save_card(CUSTOMER, card.token.as_str(), clock.now())
        .await
        .unwrap();
    for round in 0..ROUNDS {
        let day = start
            // A Monday each round: the capture is due the same business day.
            .checked_add(jiff::Span::new().days(7 * round as i64))
            .unwrap();
        let next = day.tomorrow().unwrap();
        clock.set(at(day, 10));
        let shop = format!("shop-{round}");
        let mut merchant = test_merchant(&shop, Currency::CNY);
        merchant.settlement = SettlementTerms::parse(0, &[], 1_000, 1).unwrap();
        payments
            .onboard_merchant(Some(&test_privacy()), merchant, None, clock.now())
            .await
            .unwrap();
        let created = payments
            .create(
                &format!("order-{round}:create"),
                CreatePayment {
                    merchant_id: shop.clone(),
                    order_reference: format!("order-{round}"),
                    customer: CUSTOMER.into(),
                    amount: cny(10_000),
                    expires_at: None,
                    capture_method: CaptureMethod::Automatic,
                    fundings: vec![Funding {
                        source: Source::Card {
                            token: card.token.as_str().to_string(),
                        },
                        share: Share::Rest,
                    }],
                },
                clock.now(),
            )
            .await
            .unwrap();
        let paid = payments
            .confirm(
                &format!("order-{round}:confirm"),
                &created.id,
                ConfirmInput::default(),
                clock.now(),
            )
            .await
            .unwrap();
        assert_eq!(paid.status, "captured");
        clock.set(at(next, 1));
        payments
            .run_settlement(day, clock.now(), SettlementOptions::default())
            .await
            .unwrap();
        let code = |balance| merchant_code(&shop, balance, Currency::CNY);
        assert_eq!(
            liability(&database, &code(MerchantBalance::Available)).await,
            9_000
        );
        assert_eq!(
            liability(&database, &code(MerchantBalance::Reserve)).await,
            1_000
        );

        // The next day's run releases the row; the dispute takes from it; both at once.
        clock.set(at(next.tomorrow().unwrap(), 1));
        let now = clock.now();
        let body = Notification {
            event_id: format!("evt_{round}"),
            kind: NotificationType::DisputeOpened,
            reference: Reference::new(format!("payments:{}:2", created.id)).unwrap(),
            channel_id: ChannelId::new(format!("dsp_{round}")).unwrap(),
            amount: cny(9_500),
            occurred_at: now,
            dispute: Some(DisputeDetails {
                reason_code: "10.4".into(),
                evidence_due_by: now.checked_add(SignedDuration::from_hours(24 * 7)).unwrap(),
                fee: cny(0),
            }),
        }
        .to_json();
        let signature = signature_header(BANK_SECRET.as_bytes(), now, &body);
        let settling = {
            let payments = payments.clone();
            tokio::spawn(async move {
                payments
                    .run_settlement(next, now, SettlementOptions::default())
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        };
        let disputing = {
            let payments = payments.clone();
            tokio::spawn(async move {
                payments
                    .receive_notification(Some(&signature), &body, now)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        };
        settling.await.unwrap().unwrap();
        disputing.await.unwrap().unwrap();

        let reserve = liability(&database, &code(MerchantBalance::Reserve)).await;
        let unreleased = scalar(
            &database,
            &format!(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM merchant_reserves \
                 WHERE merchant_id = '{shop}' AND released_on IS NULL"
            ),
        )
        .await;
        assert_eq!(
            reserve, unreleased,
            "{shop}: the reserve account and its rows"
        );
        assert!(reserve >= 0, "{shop}: the reserve overdrawn: {reserve}");
        let mut balances = 0;
        for balance in [
            MerchantBalance::Pending,
            MerchantBalance::Available,
            MerchantBalance::Reserve,
        ] {
            balances += liability(&database, &code(balance)).await;
        }
        assert_eq!(balances, 500, "{shop}: paid 100.00, 95.00 disputed");
        for totals in database.currency_totals().await.unwrap() {
            assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
        }
    }
}

tally_store::on_both_backends!(race);
