//! Disputes on SQLite and PostgreSQL, as a property: random card payments, disputes (some
//! above what is left of the card leg), decisions either way (some contrary to an earlier
//! one), notifications delivered again, and settlement runs between them. After every step:
//! the books balance; the merchant's pending + available + reserve, and what the channel
//! owes Tally, both equal what was captured less the disputes not won and the fees of lost
//! ones; the reserve account equals the reserves not yet released (a dispute that takes
//! from the reserve lowers them); a refused or repeated notification moves nothing.
#![allow(clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
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
use tally_service::payments::notifications::NotificationRefusal;
use tally_service::payments::settlement::SettlementOptions;
use tally_service::payments::{ConfirmInput, CreatePayment, PaymentService, PaymentsConfig};
use tally_store::testing::TestDatabase;
use tally_store::{Database, LedgerWriter, WriterConfig};

const BANK_SECRET: &str = "bank-secret";
const CUSTOMER: &str = "shopper-1";
const MERCHANT: &str = "shop-d";

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

#[derive(Debug, Clone)]
enum Step {
    Pay(i64),
    Dispute { payment: usize, amount: i64 },
    Decide { dispute: usize, won: bool, fee: i64 },
    Redeliver(usize),
    Settle,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (100_i64..50_000).prop_map(Step::Pay),
        3 => (any::<usize>(), 1_i64..40_000)
            .prop_map(|(payment, amount)| Step::Dispute { payment, amount }),
        2 => (any::<usize>(), any::<bool>(), 0_i64..2_000)
            .prop_map(|(dispute, won, fee)| Step::Decide { dispute, won, fee }),
        1 => any::<usize>().prop_map(Step::Redeliver),
        1 => Just(Step::Settle),
    ]
}

struct Dispute {
    payment: usize,
    amount: i64,
    decided: Option<bool>,
    fee: i64,
}

struct Shop {
    _test: TestDatabase,
    database: Database,
    clock: Arc<ManualClock>,
    payments: PaymentService,
    token: String,
    /// Each payment's id and captured amount.
    paid: Vec<(String, i64)>,
    disputes: Vec<Dispute>,
    /// Every notification delivered, as sent.
    sent: Vec<Vec<u8>>,
    events: usize,
}

impl Shop {
    async fn open(test: TestDatabase) -> Shop {
        let database = test.database.clone();
        // Monday 2026-11-30, 10:00 UTC.
        let clock = Arc::new(ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap()));
        let writer = LedgerWriter::start(&database, clock.clone(), WriterConfig::default())
            .await
            .unwrap()
            .0;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let config = SimulatorConfig::new(BANK_SECRET);
        tokio::spawn(async move { serve(listener, config).await });
        let bank = SimulatorControl::new(&url, BANK_SECRET).unwrap();
        let channel: Arc<dyn Channel> = Arc::new(
            HttpChannel::new(HttpChannelConfig {
                base_url: url,
                timeout: std::time::Duration::from_secs(5),
                secret: Secret::new(BANK_SECRET.to_string()),
            })
            .unwrap(),
        );
        let payments = PaymentService::new(
            database.clone(),
            writer,
            None,
            Some(channel),
            PaymentsConfig {
                channel_secret: Some(Secret::new(BANK_SECRET.to_string())),
                ..PaymentsConfig::default()
            },
        );
        let mut merchant = test_merchant(MERCHANT, Currency::CNY);
        // T+0 with 10 % held for 30 days, so that disputes meet pending, available and
        // reserve alike.
        merchant.settlement = SettlementTerms::parse(0, &[], 1_000, 30).unwrap();
        let now = clock.now();
        payments
            .onboard_merchant(Some(&test_privacy()), merchant, None, now)
            .await
            .unwrap();
        let card = bank
            .register_card(
                "4242424242424242",
                "12/30",
                Amount::parse("100000000.00", Currency::CNY).unwrap(),
            )
            .await
            .unwrap();
        payments
            .save_card(CUSTOMER, card.token.as_str(), now)
            .await
            .unwrap();
        Shop {
            _test: test,
            database,
            clock,
            payments,
            token: card.token.as_str().to_string(),
            paid: Vec::new(),
            disputes: Vec::new(),
            sent: Vec::new(),
            events: 0,
        }
    }

    async fn pay(&mut self, amount: i64) {
        let now = self.clock.now();
        let key = format!("order-{}", self.paid.len());
        let created = self
            .payments
            .create(
                &format!("{key}:create"),
                CreatePayment {
                    merchant_id: MERCHANT.into(),
                    order_reference: key.clone(),
                    customer: CUSTOMER.into(),
                    amount: cny(amount),
                    expires_at: None,
                    capture_method: CaptureMethod::Automatic,
                    fundings: vec![Funding {
                        source: Source::Card {
                            token: self.token.clone(),
                        },
                        share: Share::Rest,
                    }],
                },
                now,
            )
            .await
            .unwrap();
        let paid = self
            .payments
            .confirm(
                &format!("{key}:confirm"),
                &created.id,
                ConfirmInput::default(),
                now,
            )
            .await
            .unwrap();
        assert_eq!(paid.status, "captured");
        self.paid.push((created.id, amount));
    }

    /// A `kind` notification about dispute `index`, as the bank would send it.
    fn notification(
        &mut self,
        kind: NotificationType,
        index: usize,
        amount: i64,
        fee: i64,
    ) -> Vec<u8> {
        self.events += 1;
        let payment = &self.paid[self.disputes.get(index).map_or(0, |d| d.payment)];
        let now = self.clock.now();
        Notification {
            event_id: format!("evt_{}", self.events),
            kind,
            reference: Reference::new(format!("payments:{}:2", payment.0)).unwrap(),
            channel_id: ChannelId::new(format!("dsp_{index}")).unwrap(),
            amount: cny(amount),
            occurred_at: now,
            dispute: Some(DisputeDetails {
                reason_code: "10.4".into(),
                evidence_due_by: now.checked_add(SignedDuration::from_hours(24 * 7)).unwrap(),
                fee: cny(fee),
            }),
        }
        .to_json()
    }

    async fn deliver(&self, body: &[u8]) -> Result<bool, NotificationRefusal> {
        let now = self.clock.now();
        let signature = signature_header(BANK_SECRET.as_bytes(), now, body);
        self.payments
            .receive_notification(Some(&signature), body, now)
            .await
            .map(|receipt| receipt.duplicate)
    }

    async fn scalar(&self, sql: &str) -> i64 {
        tally_store::with_pool!(&self.database, |pool| sqlx::query_scalar(
            sqlx::AssertSqlSafe(sql)
        )
        .fetch_one(pool)
        .await
        .unwrap())
    }

    /// Credits less debits of the account with `code`.
    async fn liability(&self, code: &str) -> i64 {
        self.scalar(&format!(
            "SELECT COALESCE((SELECT b.credits_posted - b.debits_posted FROM accounts a \
             JOIN account_balances b ON b.account_id = a.id WHERE a.code = '{code}'), 0)"
        ))
        .await
    }

    async fn entries(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM journal_entries").await
    }

    async fn check(&self) {
        for totals in self.database.currency_totals().await.unwrap() {
            assert_eq!(totals.debits_posted, totals.credits_posted, "{totals:?}");
        }
        let mut owed: i64 = self.paid.iter().map(|(_, amount)| amount).sum();
        for dispute in &self.disputes {
            match dispute.decided {
                Some(true) => {}
                Some(false) => owed -= dispute.amount + dispute.fee,
                None => owed -= dispute.amount,
            }
        }
        let mut merchant = 0;
        for balance in [
            MerchantBalance::Pending,
            MerchantBalance::Available,
            MerchantBalance::Reserve,
        ] {
            merchant += self
                .liability(&merchant_code(MERCHANT, balance, Currency::CNY))
                .await;
        }
        assert_eq!(merchant, owed, "the merchant's balances");
        assert_eq!(
            -self.liability("payments-channel-clearing-CNY").await,
            owed,
            "what the channel owes Tally"
        );
        let reserve = self
            .liability(&merchant_code(
                MERCHANT,
                MerchantBalance::Reserve,
                Currency::CNY,
            ))
            .await;
        let unreleased = self
            .scalar(&format!(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM merchant_reserves \
                 WHERE merchant_id = '{MERCHANT}' AND released_on IS NULL"
            ))
            .await;
        assert_eq!(reserve, unreleased, "the reserve account and its rows");
        assert!(reserve >= 0, "a dispute never overdraws the reserve");
    }

    async fn take(&mut self, step: Step) {
        match step {
            Step::Pay(amount) => self.pay(amount).await,
            Step::Dispute { payment, amount } => {
                if self.paid.is_empty() {
                    return;
                }
                let payment = payment % self.paid.len();
                let left = self.paid[payment].1
                    - self
                        .disputes
                        .iter()
                        .filter(|d| d.payment == payment && d.decided != Some(true))
                        .map(|d| d.amount)
                        .sum::<i64>();
                let index = self.disputes.len();
                self.disputes.push(Dispute {
                    payment,
                    amount,
                    decided: None,
                    fee: 0,
                });
                let body = self.notification(NotificationType::DisputeOpened, index, amount, 0);
                let entries = self.entries().await;
                match self.deliver(&body).await {
                    Ok(duplicate) => {
                        assert!(amount <= left, "{amount} taken with {left} left");
                        assert!(!duplicate);
                        self.sent.push(body);
                    }
                    Err(refusal) => {
                        assert!(amount > left, "{refusal}");
                        assert_eq!(refusal.code(), "dispute_exceeds_captured");
                        assert_eq!(self.entries().await, entries);
                        self.disputes.pop();
                    }
                }
            }
            Step::Decide { dispute, won, fee } => {
                if self.disputes.is_empty() {
                    return;
                }
                let index = dispute % self.disputes.len();
                let (amount, decided) = (self.disputes[index].amount, self.disputes[index].decided);
                let kind = if won {
                    NotificationType::DisputeWon
                } else {
                    NotificationType::DisputeLost
                };
                let body = self.notification(kind, index, amount, fee);
                let entries = self.entries().await;
                let answer = self.deliver(&body).await;
                match decided {
                    Some(earlier) if earlier != won => {
                        let refusal = answer.unwrap_err();
                        assert_eq!(refusal.code(), "dispute_decided_other_way");
                        assert_eq!(self.entries().await, entries);
                    }
                    Some(_) => {
                        answer.unwrap();
                        assert_eq!(self.entries().await, entries, "a decision repeated");
                    }
                    None => {
                        answer.unwrap();
                        self.disputes[index].decided = Some(won);
                        self.disputes[index].fee = if won { 0 } else { fee };
                        self.sent.push(body);
                    }
                }
            }
            Step::Redeliver(index) => {
                if self.sent.is_empty() {
                    return;
                }
                let body = self.sent[index % self.sent.len()].clone();
                let entries = self.entries().await;
                assert!(self.deliver(&body).await.unwrap(), "a duplicate");
                assert_eq!(self.entries().await, entries);
            }
            Step::Settle => {
                let date = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
                let next: Timestamp = date
                    .tomorrow()
                    .unwrap()
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .unwrap()
                    .timestamp()
                    .checked_add(SignedDuration::from_hours(1))
                    .unwrap();
                self.clock.set(next);
                self.payments
                    .run_settlement(date, next, SettlementOptions::default())
                    .await
                    .unwrap();
            }
        }
    }
}

async fn story(test: TestDatabase, steps: Vec<Step>) {
    let mut shop = Shop::open(test).await;
    for step in steps {
        shop.take(step).await;
        shop.check().await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn disputes_move_the_merchants_money_once_sqlite(steps in prop::collection::vec(step(), 6..20)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            story(TestDatabase::sqlite().await.unwrap(), steps).await;
        });
    }

    #[test]
    fn disputes_move_the_merchants_money_once_postgres(steps in prop::collection::vec(step(), 6..20)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            if let Some(test) = TestDatabase::postgres().await {
                story(test, steps).await;
            }
        });
    }
}
