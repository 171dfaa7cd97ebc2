//! The daily flow of funds on SQLite and PostgreSQL, as a property: random days of combined
//! payments (wallet and an interest-free credit line), partial captures and refunds for two
//! merchants (Shanghai T+1 with a reserve, UTC T+0), each day settled the next morning, the
//! service in Shanghai's zone. For every day reported: each balance's opening + increases −
//! decreases = closing; each role's opening and closing equal the sums of its accounts'
//! balances read as of the day's bounds through the legs' running balances (another read
//! than the report's); captured, refunded and the fees equal what this test placed and
//! recomputed from the fee rules; settled and the reserve equal the runs' statements; the
//! clearing equals the top-up; and a day not over yet is refused.
#![allow(clippy::unwrap_used)]

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{AccountId, Clock, Currency, ManualClock};
use tally_payments::settlement::business_date;
use tally_payments::{FeeSchedule, FeeText, SettlementTerms};
use tally_service::credit::decision::CreditService;
use tally_service::payments::accounts::{balance_code, merchant_code, Balance, MerchantBalance};
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::PaymentService;
use tally_service::reports::{flow_of_funds, FlowOfFunds, ReportError};
use tally_store::testing::TestDatabase;
use tally_store::Database;

mod support;

use support::orders::{cny, interest_free_payments, onboard, order, Order, Shopper};
use support::CUSTOMER;

const MERCHANTS: [&str; 2] = ["shop-east", "shop-utc"];
const TOP_UP: i64 = 1_000_000_000;

fn shanghai() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap()
}

fn start() -> Timestamp {
    // Monday 2026-11-30, 10:00 UTC (18:00 in Shanghai).
    "2026-11-30T10:00:00Z".parse().unwrap()
}

fn fee_text(rate: &str, fixed: Option<&str>, minimum: Option<&str>) -> FeeText {
    FeeText {
        rate: rate.into(),
        fixed: fixed.map(Into::into),
        minimum: minimum.map(Into::into),
        maximum: None,
    }
}

fn merchant_terms(index: usize) -> (String, FeeSchedule, SettlementTerms) {
    let fees = BTreeMap::from([
        (
            "wallet".to_string(),
            fee_text("0.006", Some("0.10"), Some("0.20")),
        ),
        ("credit_line_3".to_string(), fee_text("0.015", None, None)),
    ]);
    let schedule = FeeSchedule::parse(Currency::CNY, Some("half_up"), &fees).unwrap();
    if index == 0 {
        let terms = SettlementTerms::parse(1, &[], 1_000, 3).unwrap();
        ("Asia/Shanghai".into(), schedule, terms)
    } else {
        let terms = SettlementTerms::parse(0, &[], 0, 0).unwrap();
        ("UTC".into(), schedule, terms)
    }
}

/// What this test put through on one business date (Shanghai), in minor units.
#[derive(Debug, Default, Clone)]
struct DayModel {
    captured: i64,
    captures: i64,
    refunded: i64,
    refunds: i64,
    fees_charged: i64,
    fees_returned: i64,
    settled: i64,
    reserve_held_net: i64,
    clearing: i64,
}

struct Shop {
    _test: TestDatabase,
    database: Database,
    clock: Arc<ManualClock>,
    payments: PaymentService,
    credit: Arc<CreditService>,
    credit_account: i64,
    fees: Vec<FeeSchedule>,
}

impl Shop {
    async fn open(test: TestDatabase) -> Shop {
        let database = test.database.clone();
        let clock = Arc::new(ManualClock::new(start()));
        let (payments, credit, credit_account) =
            interest_free_payments(&database, clock.clone(), Some(shanghai()), start()).await;
        let mut fees = Vec::new();
        for (index, id) in MERCHANTS.iter().enumerate() {
            let (zone, schedule, settlement) = merchant_terms(index);
            onboard(&payments, id, &zone, &schedule, &settlement, start()).await;
            fees.push(schedule);
        }
        let shop = Shop {
            _test: test,
            database,
            clock,
            payments,
            credit,
            credit_account,
            fees,
        };
        shop.top_up().await;
        shop
    }

    /// The shopper's wallet is funded by card money the channel owes Tally.
    async fn top_up(&self) {
        support::fund(
            &self.payments,
            Balance::Wallet,
            cny(TOP_UP),
            "payments-test-top-up".into(),
            "top-up",
        )
        .await;
    }

    /// Places an order now and adds what it moved to `day`.
    async fn place(&self, key: &str, order: &Order, day: &mut DayModel) {
        let shopper = Shopper {
            payments: &self.payments,
            credit: &self.credit,
            credit_account: self.credit_account,
        };
        let merchant = MERCHANTS[order.merchant];
        let fees = &self.fees[order.merchant];
        let placed = shopper
            .place(key, merchant, order, fees, self.clock.now())
            .await;
        for (gross, fee) in placed.captures {
            day.captured += gross;
            day.captures += 1;
            day.fees_charged += fee;
        }
        for (part, returned) in placed.refunds.into_iter().flat_map(|refund| refund.parts) {
            // A refund part the returned discount covers whole moves nothing and posts no
            // entry.
            if part - returned > 0 {
                day.refunded += part;
                day.refunds += 1;
                day.fees_returned += returned;
            }
        }
    }

    /// Runs the settlement of the Shanghai business date before `now`, and adds the
    /// statements' figures to `day` (the day its entries are posted on).
    async fn settle(&self, day: &mut DayModel) {
        let now = self.clock.now();
        let date = business_date(now, &TimeZone::UTC).yesterday().unwrap();
        let run = self
            .payments
            .run_settlement(date, now, SettlementOptions::default())
            .await
            .unwrap();
        assert_eq!(run.status, "done");
        for statement in self
            .payments
            .settlement_statements(date, None)
            .await
            .unwrap()
        {
            day.settled += statement.net.minor();
            day.reserve_held_net +=
                statement.reserve_held.minor() - statement.reserve_released.minor();
        }
    }

    /// Every account the payment service has in CNY by role, as this test knows them.
    async fn accounts_by_role(&self) -> BTreeMap<&'static str, (bool, Vec<AccountId>)> {
        let id = |code: String| {
            let database = self.database.clone();
            async move { database.account_id_by_code(&code).await.unwrap() }
        };
        let service = self
            .payments
            .accounts()
            .service(
                self.payments.database(),
                self.payments.writer(),
                Currency::CNY,
            )
            .await
            .unwrap();
        let mut roles: BTreeMap<&'static str, (bool, Vec<AccountId>)> = BTreeMap::from([
            (
                "captures_in_transit",
                (false, vec![service.merchant_payable]),
            ),
            ("channel_clearing", (true, vec![service.channel_clearing])),
            ("credit_due", (true, vec![service.credit_due])),
            ("fee_income", (false, vec![service.fee_income])),
            (
                "vault_yield_expense",
                (true, vec![service.vault_yield_expense]),
            ),
        ]);
        for (balance, role) in [
            (MerchantBalance::Pending, "merchant_pending"),
            (MerchantBalance::Available, "merchant_available"),
            (MerchantBalance::Reserve, "merchant_reserve"),
            (MerchantBalance::Payable, "merchant_payable"),
        ] {
            let mut ids = Vec::new();
            for merchant in MERCHANTS {
                ids.push(
                    id(merchant_code(merchant, balance, Currency::CNY))
                        .await
                        .unwrap(),
                );
            }
            roles.insert(role, (false, ids));
        }
        let wallet = id(balance_code(Balance::Wallet, CUSTOMER, Currency::CNY)).await;
        roles.insert("wallets", (false, vec![wallet.unwrap()]));
        if let Some(vault) = id(balance_code(Balance::Vault, CUSTOMER, Currency::CNY)).await {
            roles.insert("vaults", (false, vec![vault]));
        }
        roles
    }

    /// The sum of `accounts`' posted balances as of `at`, grown by debits or by credits.
    async fn balance_at(&self, accounts: &[AccountId], by_debits: bool, at: Timestamp) -> i64 {
        let mut total = 0;
        for account in accounts {
            let balance = self.database.balance_as_of(*account, at).await.unwrap();
            let net = balance.debits_posted - balance.credits_posted;
            total += if by_debits { net } else { -net };
        }
        total
    }

    async fn report(&self, day: i64) -> FlowOfFunds {
        let date = business_date(start(), &shanghai())
            .checked_add(jiff::Span::new().days(day))
            .unwrap();
        flow_of_funds(
            &self.database,
            &shanghai(),
            date,
            Currency::CNY,
            self.clock.now(),
        )
        .await
        .unwrap()
    }

    async fn check(&self, report: &FlowOfFunds, model: &DayModel) {
        let flows = &report.flows;
        assert_eq!(flows.captured, cny(model.captured), "captured");
        assert_eq!(flows.captures, model.captures, "captures");
        assert_eq!(flows.refunded, cny(model.refunded), "refunded");
        assert_eq!(flows.refunds, model.refunds, "refunds");
        assert_eq!(flows.fees_charged, cny(model.fees_charged), "fees charged");
        assert_eq!(
            flows.fees_returned,
            cny(model.fees_returned),
            "fees returned"
        );
        assert_eq!(flows.settled, cny(model.settled), "settled");
        assert_eq!(
            flows.reserve_held_net,
            cny(model.reserve_held_net),
            "reserve"
        );
        assert_eq!(flows.clearing, cny(model.clearing), "clearing");
        assert_eq!(flows.paid_out, cny(0), "no payouts exist yet");
        let roles = self.accounts_by_role().await;
        let shown: Vec<&str> = report.balances.iter().map(|b| b.role.as_str()).collect();
        let mut known: Vec<&str> = roles.keys().copied().collect();
        known.sort_unstable();
        let mut sorted = shown.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, known,
            "every account of the payment service, by role"
        );
        let before = |at: Timestamp| at.checked_sub(SignedDuration::from_micros(1)).unwrap();
        for balance in &report.balances {
            let (by_debits, accounts) = &roles[balance.role.as_str()];
            assert_eq!(balance.accounts, i64::try_from(accounts.len()).unwrap());
            assert_eq!(
                balance.normal_side == "debit",
                *by_debits,
                "{}",
                balance.role
            );
            let opening = self
                .balance_at(accounts, *by_debits, before(report.from))
                .await;
            let closing = self
                .balance_at(accounts, *by_debits, before(report.to))
                .await;
            assert_eq!(balance.opening, cny(opening), "{} opening", balance.role);
            assert_eq!(balance.closing, cny(closing), "{} closing", balance.role);
            assert_eq!(
                balance.opening.minor() + balance.increases.minor() - balance.decreases.minor(),
                balance.closing.minor(),
                "{}: opening + movements = closing",
                balance.role
            );
            let (up, down) = balance.movements.iter().fold((0, 0), |(up, down), m| {
                (up + m.increases.minor(), down + m.decreases.minor())
            });
            assert_eq!(
                (up, down),
                (balance.increases.minor(), balance.decreases.minor())
            );
        }
        // The fee income's day is what the payment service kept of the fees.
        let fee_income = report
            .balances
            .iter()
            .find(|b| b.role == "fee_income")
            .unwrap();
        assert_eq!(
            flows.fee_income.minor(),
            fee_income.closing.minor() - fee_income.opening.minor()
        );
        let lines = report.to_csv();
        assert!(lines.starts_with("business_date,currency,figure,amount\n"));
        assert!(lines.contains(&format!(
            "{},CNY,captured,{}\n",
            report.business_date,
            flows.captured.to_decimal_string()
        )));
    }
}

async fn story(test: TestDatabase, days: Vec<Vec<Order>>) {
    let shop = Shop::open(test).await;
    let mut models: Vec<DayModel> = vec![DayModel::default(); days.len() + 1];
    models[0].clearing = TOP_UP;
    for (number, orders) in days.iter().enumerate() {
        let offset = i64::try_from(number).unwrap();
        let day_start = start()
            .checked_add(SignedDuration::from_hours(24 * offset))
            .unwrap();
        if number > 0 {
            // 02:00 UTC (10:00 in Shanghai): yesterday is over everywhere; settle it first.
            shop.clock.set(
                day_start
                    .checked_sub(SignedDuration::from_hours(8))
                    .unwrap(),
            );
            shop.settle(&mut models[number]).await;
        }
        shop.clock.set(day_start);
        for (index, order) in orders.iter().enumerate() {
            shop.place(&format!("d{number}-o{index}"), order, &mut models[number])
                .await;
        }
        // The day is not over yet in Shanghai at 10:00 UTC (18:00 there).
        let refused = flow_of_funds(
            &shop.database,
            &shanghai(),
            business_date(day_start, &shanghai()),
            Currency::CNY,
            shop.clock.now(),
        )
        .await;
        assert!(matches!(refused, Err(ReportError::DateNotClosed { .. })));
    }
    // The last settlement, on the day after the last.
    let last = days.len();
    let after = start()
        .checked_add(SignedDuration::from_hours(
            24 * i64::try_from(last).unwrap() - 8,
        ))
        .unwrap();
    shop.clock.set(after);
    shop.settle(&mut models[last]).await;
    shop.clock
        .set(after.checked_add(SignedDuration::from_hours(24)).unwrap());
    for (number, model) in models.iter().enumerate() {
        let report = shop.report(i64::try_from(number).unwrap()).await;
        shop.check(&report, model).await;
    }
    for totals in shop.database.currency_totals().await.unwrap() {
        assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn flow_of_funds_reconciles_with_the_books_sqlite(
        days in prop::collection::vec(prop::collection::vec(order(), 0..4), 1..4)
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            story(TestDatabase::sqlite().await.unwrap(), days).await;
        });
    }

    #[test]
    fn flow_of_funds_reconciles_with_the_books_postgres(
        days in prop::collection::vec(prop::collection::vec(order(), 0..4), 1..4)
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            if let Some(test) = TestDatabase::postgres().await {
                story(test, days).await;
            }
        });
    }
}
