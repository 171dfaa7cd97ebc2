//! Merchant settlement on SQLite and PostgreSQL, as a property: random days of combined
//! payments (wallet and an interest-free credit line), partial captures and refunds for two
//! merchants in different zones, each day closed by a settlement run that is sometimes
//! repeated and sometimes killed mid-way and resumed. After every run, per merchant:
//! gross − fees − refunds = available + reserve + pending; pending holds exactly the net of
//! the capture dates not yet due and available + reserve exactly that of the dates due
//! (so nothing was settled twice or skipped); the reserve holds exactly the shares not
//! yet released; and the books balance. Fees are recomputed here from the published rules
//! (the fee schedule, the credit plan's discount and its pro-rata return on refunds).
#![allow(clippy::unwrap_used)]

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{AccountId, Amount, Clock, Currency, ManualClock};
use tally_payments::settlement::business_date;
use tally_payments::{FeeSchedule, FeeText, SettlementTerms};
use tally_service::credit::decision::CreditService;
use tally_service::payments::accounts::{merchant_code, Balance, MerchantBalance};
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::{PaymentService, PaymentServiceError};
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;

use support::orders::{cny, interest_free_payments, onboard, order, Order, Shopper};

const MERCHANTS: [&str; 2] = ["shop-east", "shop-utc"];

fn start() -> Timestamp {
    // Monday 2026-11-30, 10:00 UTC (18:00 in Shanghai).
    "2026-11-30T10:00:00Z".parse().unwrap()
}

/// How a day's run goes.
#[derive(Debug, Clone, Copy)]
enum RunMode {
    Once,
    Twice,
    /// Killed after this many merchants, then resumed.
    Killed(usize),
}

#[derive(Debug, Clone)]
struct Day {
    orders: Vec<Order>,
    run: RunMode,
}

fn day() -> impl Strategy<Value = Day> {
    (
        prop::collection::vec(order(), 0..4),
        prop_oneof![
            Just(RunMode::Once),
            Just(RunMode::Twice),
            (0_usize..2).prop_map(RunMode::Killed)
        ],
    )
        .prop_map(|(orders, run)| Day { orders, run })
}

fn fee_text(
    rate: &str,
    fixed: Option<&str>,
    minimum: Option<&str>,
    maximum: Option<&str>,
) -> FeeText {
    FeeText {
        rate: rate.into(),
        fixed: fixed.map(Into::into),
        minimum: minimum.map(Into::into),
        maximum: maximum.map(Into::into),
    }
}

/// The merchants' terms: Shanghai T+1 with a holiday and a 10 % reserve for 3 days, and
/// UTC T+0 with no reserve; both charge the wallet and the credit line.
fn merchant_terms(index: usize) -> (String, FeeSchedule, SettlementTerms) {
    let fees = BTreeMap::from([
        (
            "wallet".to_string(),
            fee_text("0.006", Some("0.10"), Some("0.20"), Some("3.00")),
        ),
        (
            "credit_line_3".to_string(),
            fee_text("0.015", None, None, None),
        ),
    ]);
    let schedule = FeeSchedule::parse(
        Currency::CNY,
        Some(if index == 0 { "half_up" } else { "down" }),
        &fees,
    )
    .unwrap();
    if index == 0 {
        let terms = SettlementTerms::parse(1, &["2026-12-02".to_string()], 1_000, 3).unwrap();
        ("Asia/Shanghai".into(), schedule, terms)
    } else {
        (
            "UTC".into(),
            schedule,
            SettlementTerms::parse(0, &[], 0, 0).unwrap(),
        )
    }
}

/// What the test expects of one merchant.
#[derive(Debug, Default)]
struct Expected {
    gross: i64,
    fees: i64,
    refunds: i64,
    /// Net moved to pending per capture (or refund) date in the merchant's zone.
    net_by_date: BTreeMap<Date, i64>,
    /// Reserve held per run date and when it is released.
    reserves: Vec<(Date, i64, Date)>,
}

struct Shop {
    _test: TestDatabase,
    database: Database,
    clock: Arc<ManualClock>,
    payments: PaymentService,
    credit: Arc<CreditService>,
    credit_account: i64,
    zones: Vec<TimeZone>,
    terms: Vec<(FeeSchedule, SettlementTerms)>,
}

impl Shop {
    async fn open(test: TestDatabase) -> Shop {
        let database = test.database.clone();
        let clock = Arc::new(ManualClock::new(start()));
        let (payments, credit, credit_account) =
            interest_free_payments(&database, clock.clone(), None, start()).await;
        let mut zones = Vec::new();
        let mut terms = Vec::new();
        for (index, id) in MERCHANTS.iter().enumerate() {
            let (zone, fees, settlement) = merchant_terms(index);
            onboard(&payments, id, &zone, &fees, &settlement, start()).await;
            zones.push(TimeZone::get(&zone).unwrap());
            terms.push((fees, settlement));
        }
        let shop = Shop {
            _test: test,
            database,
            clock,
            payments,
            credit,
            credit_account,
            zones,
            terms,
        };
        shop.top_up(cny(1_000_000_000)).await;
        shop
    }

    fn set_now(&self, at: Timestamp) {
        self.clock.set(at);
    }

    async fn top_up(&self, amount: Amount) {
        support::fund(
            &self.payments,
            Balance::Wallet,
            amount,
            "payments-test-top-up".into(),
            "top-up",
        )
        .await;
    }

    async fn balance_of(&self, merchant: &str, balance: MerchantBalance) -> i64 {
        let code = merchant_code(merchant, balance, Currency::CNY);
        let id: AccountId = self
            .database
            .account_id_by_code(&code)
            .await
            .unwrap()
            .unwrap();
        let state = self.database.account(id).await.unwrap().unwrap();
        state.balance.credits_posted - state.balance.debits_posted
    }

    /// Places an order and keeps what the merchant should get in `expected`.
    async fn place(&self, key: &str, order: &Order, expected: &mut [Expected]) {
        let shopper = Shopper {
            payments: &self.payments,
            credit: &self.credit,
            credit_account: self.credit_account,
        };
        let now = self.clock.now();
        let (fees, _) = &self.terms[order.merchant];
        let placed = shopper
            .place(key, MERCHANTS[order.merchant], order, fees, now)
            .await;
        let date = business_date(now, &self.zones[order.merchant]);
        let model = &mut expected[order.merchant];
        for (gross, fee) in placed.captures {
            model.gross += gross;
            model.fees += fee;
            *model.net_by_date.entry(date).or_default() += gross - fee;
        }
        for refund in placed.refunds {
            model.refunds += refund.amount;
            for (part, returned) in refund.parts {
                model.fees -= returned;
                *model.net_by_date.entry(date).or_default() -= part - returned;
            }
        }
    }

    /// Runs the settlement of `date` as `mode` says, and records the reserves expected.
    async fn settle(
        &self,
        date: Date,
        mode: RunMode,
        expected: &mut [Expected],
        settled: &mut [Option<Date>],
    ) {
        let now = self.clock.now();
        let run = match mode {
            RunMode::Once => self
                .payments
                .run_settlement(date, now, SettlementOptions::default())
                .await
                .unwrap(),
            RunMode::Twice => {
                let first = self
                    .payments
                    .run_settlement(date, now, SettlementOptions::default())
                    .await
                    .unwrap();
                let balances = self.all_balances().await;
                let second = self
                    .payments
                    .run_settlement(date, now, SettlementOptions::default())
                    .await
                    .unwrap();
                assert_eq!(first, second);
                assert_eq!(
                    balances,
                    self.all_balances().await,
                    "a repeated run moved money"
                );
                second
            }
            RunMode::Killed(after) => {
                let stopped = self
                    .payments
                    .run_settlement(
                        date,
                        now,
                        SettlementOptions {
                            stop_after: Some(after),
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(stopped.status, "running");
                assert_eq!(stopped.merchants_settled, i64::try_from(after).unwrap());
                self.payments
                    .run_settlement(date, now, SettlementOptions::default())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(run.status, "done");
        assert_eq!(run.merchants_settled, 2);
        for (index, model) in expected.iter_mut().enumerate() {
            let (_, terms) = &self.terms[index];
            let through = terms.last_capture_date_due(date).unwrap().unwrap();
            let through = settled[index].map_or(through, |before| before.max(through));
            let before = settled[index];
            settled[index] = Some(through);
            let due: i64 = model
                .net_by_date
                .range(..=through)
                .filter(|(day, _)| before.is_none_or(|before| **day > before))
                .map(|(_, net)| net)
                .sum();
            let held = terms.reserve_share(cny(due)).unwrap().minor();
            if held > 0 {
                model
                    .reserves
                    .push((date, held, terms.reserve_release_date(date).unwrap()));
            }
        }
    }

    async fn all_balances(&self) -> Vec<i64> {
        let mut all = Vec::new();
        for merchant in MERCHANTS {
            for balance in MerchantBalance::ALL {
                all.push(self.balance_of(merchant, balance).await);
            }
        }
        all
    }

    async fn check(&self, date: Date, expected: &[Expected], settled: &[Option<Date>]) {
        for (index, merchant) in MERCHANTS.iter().enumerate() {
            let model = &expected[index];
            let pending = self.balance_of(merchant, MerchantBalance::Pending).await;
            let available = self.balance_of(merchant, MerchantBalance::Available).await;
            let reserve = self.balance_of(merchant, MerchantBalance::Reserve).await;
            let paid = self.balance_of(merchant, MerchantBalance::Payable).await;
            assert_eq!(
                model.gross - model.fees - model.refunds,
                available + paid + pending + reserve,
                "{merchant}: gross − fees − refunds = settled + pending + reserve"
            );
            let through = settled[index].unwrap();
            let not_due: i64 = model
                .net_by_date
                .range(through.tomorrow().unwrap()..)
                .map(|(_, net)| net)
                .sum();
            assert_eq!(
                pending, not_due,
                "{merchant}: pending holds what is not due after {date}"
            );
            let in_reserve: i64 = model
                .reserves
                .iter()
                .filter(|(_, _, release)| *release > date)
                .map(|(_, held, _)| held)
                .sum();
            assert_eq!(reserve, in_reserve, "{merchant}: the reserve after {date}");
        }
        for totals in self.database.currency_totals().await.unwrap() {
            assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
            assert_eq!(totals.debits_pending, totals.credits_pending, "{totals:?}");
        }
        assert!(self
            .database
            .inconsistent_accounts()
            .await
            .unwrap()
            .is_empty());
    }
}

async fn story(test: TestDatabase, days: Vec<Day>) {
    let shop = Shop::open(test).await;
    let mut expected: Vec<Expected> = (0..MERCHANTS.len()).map(|_| Expected::default()).collect();
    let mut settled: Vec<Option<Date>> = vec![None; MERCHANTS.len()];
    for (number, day) in days.iter().enumerate() {
        let offset = i64::try_from(number).unwrap();
        let morning = start()
            .checked_add(SignedDuration::from_hours(24 * offset))
            .unwrap();
        shop.set_now(morning);
        for (index, order) in day.orders.iter().enumerate() {
            shop.place(&format!("d{number}-o{index}"), order, &mut expected)
                .await;
        }
        // The next day at 01:00 UTC the date is over in UTC and in Shanghai.
        let date = morning.to_zoned(TimeZone::UTC).date();
        let too_early = shop
            .payments
            .run_settlement(date, morning, SettlementOptions::default())
            .await;
        assert!(matches!(
            too_early,
            Err(PaymentServiceError::SettlementDateNotClosed { .. })
        ));
        shop.set_now(morning.checked_add(SignedDuration::from_hours(15)).unwrap());
        shop.settle(date, day.run, &mut expected, &mut settled)
            .await;
        shop.check(date, &expected, &settled).await;
    }
    // A week later every date is due: pending is empty, and the run of an earlier date,
    // run late, settles nothing again.
    let last = start()
        .checked_add(SignedDuration::from_hours(24 * 10))
        .unwrap();
    shop.set_now(last);
    let date = last.to_zoned(TimeZone::UTC).date().yesterday().unwrap();
    shop.settle(date, RunMode::Once, &mut expected, &mut settled)
        .await;
    shop.check(date, &expected, &settled).await;
    for merchant in MERCHANTS {
        assert_eq!(shop.balance_of(merchant, MerchantBalance::Pending).await, 0);
    }
    let statements = shop
        .payments
        .settlement_statements(date, None)
        .await
        .unwrap();
    assert_eq!(statements.len(), 2);
    let first_date = start()
        .to_zoned(TimeZone::UTC)
        .date()
        .checked_sub(1.day())
        .unwrap();
    let early = shop
        .payments
        .run_settlement(first_date, last, SettlementOptions::default())
        .await
        .unwrap();
    assert_eq!(early.status, "done");
    shop.check(date, &expected, &settled).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn settlement_settles_each_capture_date_once_sqlite(days in prop::collection::vec(day(), 2..5)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            story(TestDatabase::sqlite().await.unwrap(), days).await;
        });
    }

    #[test]
    fn settlement_settles_each_capture_date_once_postgres(days in prop::collection::vec(day(), 2..5)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            if let Some(test) = TestDatabase::postgres().await {
                story(test, days).await;
            }
        });
    }
}
