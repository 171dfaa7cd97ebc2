//! Combined checkout: in the last weeks, customers top their wallets up from a bank card
//! and pay orders part from the wallet, the rest on their credit line in three
//! installments; some orders are refunded. The bank is Tally's own simulator
//! (`tally_channel::simulator`), run in this process on the demo's clock for the demo's
//! duration; every payment goes through the payment service and its risk decision. On its
//! last day a customer orders a television from a phone it has just changed its password
//! on: the engine holds the delivery, left for the newcomer to release. Each day the
//! merchants' settlement of the day before runs; at the end Tally's books are reconciled
//! against the bank's settlement file of each day with card top-ups, the last of them with
//! breaks injected, left open on the worklist.

use super::figures::GroundTruth;
use super::lending::Lending;
use super::world::{Behaviour, Size};
use super::Services;
use jiff::civil::Date;
use jiff::ToSpan;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tally_channel::simulator::{
    serve_with_clock, RecordType, SettlementFile, SettlementRow, SimulatorConfig, SimulatorControl,
};
use tally_channel::{ChannelId, Reference};
use tally_core::{Amount, Clock, Currency, SplitMix64};
use tally_payments::{CaptureMethod, Funding, RefundPolicy, SettlementTerms, Share, Source};
use tally_risk::{Event, EventKind, ProfileField};
use tally_service::payments::{ConfirmInput, CreatePayment, PaymentService, PaymentServiceError};
use tally_service::recon::{reconcile_books, BooksRunOptions};

/// The bank simulator's shared secret: it lives only as long as the demo's build.
pub const BANK_SECRET: &str = "tally-demo-bank";

/// What each shopper puts in its wallet before its first order.
const TOP_UP: i64 = 80_000;
/// What each order takes from the wallet; the credit line pays the rest.
const FROM_WALLET: i64 = 10_000;

/// What the held order costs: at least the 2,000 CNY of the rule
/// `takeover_high_value_new_address`.
pub const HELD_ORDER_AMOUNT: i64 = 260_000;

/// Starts the bank simulator on a free local port, on `clock`: its URL and its control
/// client.
pub async fn start_bank(
    seed: u64,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(String, SimulatorControl)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let mut config = SimulatorConfig::new(BANK_SECRET);
    config.seed = seed;
    tokio::spawn(async move { serve_with_clock(listener, config, clock).await });
    let control = SimulatorControl::new(&url, BANK_SECRET)?;
    Ok((url, control))
}

/// A card number the simulator accepts: 16 digits with a valid Luhn check digit.
fn card_number(index: usize) -> String {
    let body = format!("400000{index:09}");
    let sum: u32 = body
        .chars()
        .rev()
        .filter_map(|character| character.to_digit(10))
        .enumerate()
        .map(|(position, digit)| {
            if position % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn refused(error: &PaymentServiceError) -> anyhow::Error {
    anyhow::anyhow!("{}: {error}", error.code())
}

/// How many merchants the shoppers buy from (`merchant-0` to `merchant-4`).
const MERCHANTS: usize = 5;

/// Onboards the demo's merchants, each paid in yuan, T+1 in Shanghai with a 5 % reserve
/// held 30 days, at 0.6 % a wallet or card payment (at least 0.10) and 1.5 % a credit-line
/// payment in three installments.
async fn onboard_merchants(services: &Services, payments: &PaymentService) -> anyhow::Result<()> {
    use tally_payments::{FeeSchedule, FeeText};
    use tally_service::payments::merchants::NewMerchant;
    let rate = |rate: &str, minimum: Option<&str>| FeeText {
        rate: rate.to_string(),
        fixed: None,
        minimum: minimum.map(str::to_string),
        maximum: None,
    };
    let fees = BTreeMap::from([
        ("wallet".to_string(), rate("0.006", Some("0.10"))),
        ("card".to_string(), rate("0.006", Some("0.10"))),
        ("credit_line_3".to_string(), rate("0.015", None)),
    ]);
    let fees = FeeSchedule::parse(Currency::CNY, Some("half_up"), &fees)?;
    let settlement = settlement_terms();
    let now = services.clock_now();
    for number in 0..MERCHANTS {
        let merchant = NewMerchant {
            id: format!("merchant-{number}"),
            legal_name: format!("示例商户 {number} 有限公司"),
            licence_number: format!("9131000{number:02}DEMO{number:04}"),
            bank_account: format!("62220200000{number:05}"),
            category_code: "5311".to_string(),
            time_zone: "Asia/Shanghai".to_string(),
            currency: Currency::CNY,
            fees: fees.clone(),
            settlement: settlement.clone(),
        };
        payments
            .onboard_merchant(services.state.privacy.as_deref(), merchant, None, now)
            .await
            .map_err(|error| refused(&error))?;
    }
    Ok(())
}

/// Every merchant's settlement terms: T+1 business days, 5 % held 30 days.
fn settlement_terms() -> SettlementTerms {
    SettlementTerms {
        delay_days: 1,
        holidays: BTreeSet::new(),
        reserve_basis_points: 500,
        reserve_hold_days: 30,
    }
}

/// The merchants' zone: capture dates are theirs.
const MERCHANT_ZONE: &str = "Asia/Shanghai";

/// A capture, for the settlement's ground truth: its date in the merchants' zone, its
/// amount and what was refunded of it (the same day).
#[derive(Debug, Clone, Copy)]
struct Capture {
    date: Date,
    amount: i64,
    refunded: i64,
}

/// What the settlement runs stored, read back from their statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub runs: u64,
    /// Fen captured on the capture dates settled, and refunded on them.
    pub gross: i64,
    pub refunds: i64,
}

/// What the reconciliations of the books stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BooksReconciled {
    pub runs: u64,
    pub matched: i64,
    pub breaks: BTreeMap<String, u64>,
    /// The business date of the run with the injected breaks.
    pub with_breaks: Option<Date>,
}

/// The payments of the simulation, planned over its last weeks.
pub struct Payments {
    /// The day the merchants were onboarded (before the first order).
    onboarded: Option<Date>,
    bank: SimulatorControl,
    /// Payment numbers by day.
    planned: BTreeMap<Date, Vec<usize>>,
    /// Shoppers (borrower indexes) whose card is saved and wallet topped up.
    ready: BTreeMap<usize, String>,
    /// Every payment made, by id.
    pub made: Vec<String>,
    /// Every capture, for the settlement's truth.
    captures: Vec<Capture>,
    /// Card top-ups by UTC day (the bank's value date).
    top_ups: BTreeMap<Date, u64>,
    /// The dates settled, in order.
    settled_dates: Vec<Date>,
    /// Customers whose order waits with its delivery held, and the payments.
    pub held: Vec<(String, String)>,
    random: SplitMix64,
}

impl Payments {
    pub fn plan(
        bank: SimulatorControl,
        size: &Size,
        seed: u64,
        last_day: Date,
    ) -> anyhow::Result<Payments> {
        let mut random = SplitMix64::new(seed ^ 0xFA_7E57);
        let mut planned: BTreeMap<Date, Vec<usize>> = BTreeMap::new();
        for number in 0..size.payments {
            let day = last_day.checked_sub(random.range(0, 20).days())?;
            planned.entry(day).or_default().push(number);
        }
        Ok(Payments {
            onboarded: None,
            bank,
            planned,
            ready: BTreeMap::new(),
            made: Vec::new(),
            captures: Vec::new(),
            top_ups: BTreeMap::new(),
            settled_dates: Vec::new(),
            held: Vec::new(),
            random,
        })
    }

    fn service(services: &Services) -> anyhow::Result<&PaymentService> {
        services
            .state
            .payments
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("the payment service did not start"))
    }

    /// The orders of `day`, one after the other, each by a customer who pays its
    /// statements and still has credit.
    pub async fn run_day(
        &mut self,
        services: &Services,
        lending: &Lending,
        day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        let Some(numbers) = self.planned.remove(&day) else {
            return Ok(());
        };
        services.set_time(day, 14)?;
        self.onboard(services, day).await?;
        let shoppers: Vec<(usize, String, i64)> = lending
            .borrowers
            .iter()
            .filter(|borrower| {
                borrower.behaviour == Behaviour::PaysInFull
                    && !borrower.blocked
                    && borrower.opened_on < day
            })
            .map(|borrower| {
                (
                    borrower.index,
                    borrower.customer_id.clone(),
                    borrower.account,
                )
            })
            .collect();
        if shoppers.is_empty() {
            return Ok(());
        }
        let payments = Payments::service(services)?;
        for number in numbers {
            let (index, customer, account) = shoppers[number % shoppers.len()].clone();
            let now = services.clock.now();
            if !self.ready.contains_key(&index) {
                let card = self
                    .bank
                    .register_card(
                        &card_number(index),
                        "12/30",
                        Amount::new(2_000_000, Currency::CNY),
                    )
                    .await?;
                let token = card.token.as_str().to_string();
                payments
                    .save_card(&customer, &token, now)
                    .await
                    .map_err(|error| refused(&error))?;
                payments
                    .top_up(
                        &format!("demo-top-up-{index}"),
                        &customer,
                        &token,
                        Amount::new(TOP_UP, Currency::CNY),
                        now,
                    )
                    .await
                    .map_err(|error| refused(&error))?;
                *self
                    .top_ups
                    .entry(now.to_zoned(jiff::tz::TimeZone::UTC).date())
                    .or_insert(0) += 1;
                self.ready.insert(index, token);
            }
            let amount = self.random.range(150, 600) * 100;
            let request = CreatePayment {
                merchant_id: format!("merchant-{}", number % MERCHANTS),
                order_reference: format!("demo-order-{number}"),
                customer: customer.clone(),
                amount: Amount::new(amount, Currency::CNY),
                expires_at: None,
                capture_method: CaptureMethod::Automatic,
                fundings: vec![
                    Funding {
                        source: Source::Wallet,
                        share: Share::Fixed(Amount::new(FROM_WALLET, Currency::CNY)),
                    },
                    Funding {
                        source: Source::CreditLine { account, term: 3 },
                        share: Share::Rest,
                    },
                ],
            };
            let created = payments
                .create(&format!("demo-payment-{number}"), request, now)
                .await
                .map_err(|error| refused(&error))?;
            let confirmed = payments
                .confirm(
                    &format!("demo-payment-{number}-confirm"),
                    &created.id,
                    ConfirmInput {
                        device: Some(format!("device-{index}")),
                        ip: None,
                        code: None,
                    },
                    now,
                )
                .await;
            self.made.push(created.id.clone());
            let confirmed = match confirmed {
                Ok(view) => view,
                // Declined (no credit left, say): the payment failed and released its sources.
                Err(PaymentServiceError::Declined { .. }) => continue,
                Err(error) => return Err(refused(&error)),
            };
            if confirmed.status != "captured" {
                continue;
            }
            // The credit line's part became an installment plan.
            truth.payment_plans += 1;
            let mut capture = Capture {
                date: merchant_date(now)?,
                amount,
                refunded: 0,
            };
            // One order in four is returned: refunded whole, the credit line first.
            if number % 4 == 3 {
                let refunded = payments
                    .refund(
                        &format!("demo-payment-{number}-refund"),
                        &created.id,
                        Amount::new(amount, Currency::CNY),
                        RefundPolicy::ReverseFunding,
                        now,
                    )
                    .await
                    .map_err(|error| refused(&error))?;
                if refunded.status == "refunded" {
                    truth.payments_refunded += 1;
                    capture.refunded = amount;
                }
            } else {
                truth.payments_completed += 1;
            }
            self.captures.push(capture);
        }
        Ok(())
    }

    /// Onboards the merchants before the first order.
    async fn onboard(&mut self, services: &Services, day: Date) -> anyhow::Result<()> {
        if self.onboarded.is_none() {
            onboard_merchants(services, Self::service(services)?).await?;
            self.onboarded = Some(day);
        }
        Ok(())
    }

    /// A customer changes its password on a new phone and orders a television from it at
    /// once: the risk engine holds the delivery (`takeover_high_value_new_address`), the
    /// money is taken, and the case waits for an analyst to call the customer and release
    /// it. The customer: a shopper with a wallet, credit for the order and no claim.
    pub async fn hold_an_order(
        &mut self,
        services: &Services,
        lending: &Lending,
        day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        self.onboard(services, day).await?;
        services.set_time(day, 15)?;
        let payments = Payments::service(services)?;
        let mut chosen = None;
        for borrower in &lending.borrowers {
            if borrower.blocked || !self.ready.contains_key(&borrower.index) {
                continue;
            }
            let stored = services
                .credit
                .operations
                .load(borrower.account)
                .await
                .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
            let available = stored.account.available_credit(day).minor();
            if available >= HELD_ORDER_AMOUNT - FROM_WALLET
                && chosen.as_ref().is_none_or(|(_, best)| available > *best)
            {
                chosen = Some((borrower.clone(), available));
            }
        }
        let Some((shopper, _)) = chosen else {
            return Ok(());
        };
        let device = format!("new-phone-{}", shopper.index);
        let mut change = Event::new(
            format!("demo-new-phone-{}-password", shopper.index),
            EventKind::ProfileChange,
            services.clock.now(),
            shopper.customer_id.clone(),
        );
        change.device = Some(device.clone());
        change.profile_field = Some(ProfileField::Password);
        services
            .risk
            .decide(&change)
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
        services.clock.set(
            services
                .clock
                .now()
                .checked_add(jiff::SignedDuration::from_mins(5))?,
        );
        let now = services.clock.now();
        let request = CreatePayment {
            merchant_id: "merchant-0".to_string(),
            order_reference: "demo-order-television".to_string(),
            customer: shopper.customer_id.clone(),
            amount: Amount::new(HELD_ORDER_AMOUNT, Currency::CNY),
            expires_at: None,
            capture_method: CaptureMethod::Automatic,
            fundings: vec![
                Funding {
                    source: Source::Wallet,
                    share: Share::Fixed(Amount::new(FROM_WALLET, Currency::CNY)),
                },
                Funding {
                    source: Source::CreditLine {
                        account: shopper.account,
                        term: 3,
                    },
                    share: Share::Rest,
                },
            ],
        };
        let created = payments
            .create("demo-payment-television", request, now)
            .await
            .map_err(|error| refused(&error))?;
        let confirmed = payments
            .confirm(
                "demo-payment-television-confirm",
                &created.id,
                ConfirmInput {
                    device: Some(device),
                    ip: None,
                    code: None,
                },
                now,
            )
            .await
            .map_err(|error| refused(&error))?;
        self.made.push(created.id.clone());
        if !confirmed.delivery_held || confirmed.status != "captured" {
            anyhow::bail!(
                "the television order was not held: {} (delivery held {})",
                confirmed.status,
                confirmed.delivery_held
            );
        }
        truth.payment_plans += 1;
        truth.payments_completed += 1;
        truth.cases_open += 1;
        self.captures.push(Capture {
            date: merchant_date(now)?,
            amount: HELD_ORDER_AMOUNT,
            refunded: 0,
        });
        self.held.push((shopper.customer_id.clone(), created.id));
        Ok(())
    }

    /// The merchants' settlement of the day before `day`, once the merchants exist: what
    /// is due moves to their available balances, and each gets a statement.
    pub async fn settle_yesterday(&mut self, services: &Services, day: Date) -> anyhow::Result<()> {
        if self.onboarded.is_none_or(|onboarded| onboarded >= day) {
            return Ok(());
        }
        services.set_time(day, 14)?;
        let date = day.yesterday()?;
        let run = Payments::service(services)?
            .run_settlement(date, services.clock.now(), Default::default())
            .await
            .map_err(|error| refused(&error))?;
        if run.status != "done" {
            anyhow::bail!("the settlement of {date} stopped: {}", run.status);
        }
        self.settled_dates.push(date);
        Ok(())
    }

    /// The settlement's truth: every capture on a date the last run had due, with its
    /// refunds, by the merchants' terms (`SettlementTerms::last_capture_date_due`).
    pub fn expect_settlement(&self, truth: &mut GroundTruth) -> anyhow::Result<()> {
        truth.settlement_runs = self.settled_dates.len() as u64;
        let Some(last) = self.settled_dates.last() else {
            return Ok(());
        };
        let Some(through) = settlement_terms().last_capture_date_due(*last)? else {
            return Ok(());
        };
        for capture in self
            .captures
            .iter()
            .filter(|capture| capture.date <= through)
        {
            truth.settlement_gross += capture.amount;
            truth.settlement_refunds += capture.refunded;
        }
        Ok(())
    }

    /// The settlement runs and their statements, as the payment service has them.
    pub async fn settled(&self, services: &Services) -> anyhow::Result<Settled> {
        let payments = Payments::service(services)?;
        let mut settled = Settled::default();
        for date in &self.settled_dates {
            let run = payments
                .settlement_run(*date)
                .await
                .map_err(|error| refused(&error))?;
            settled.runs += u64::from(run.status == "done");
            for statement in payments
                .settlement_statements(*date, None)
                .await
                .map_err(|error| refused(&error))?
            {
                settled.gross += statement.gross.minor();
                settled.refunds += statement.refunds.minor();
            }
        }
        Ok(settled)
    }

    /// Reconciles Tally's books of each past day with card top-ups against the bank's
    /// settlement file of the day, as `tally recon books` does; into the file of the last
    /// of them the bank's mistakes are injected (see [`inject_breaks`]).
    pub async fn reconcile_books(
        &self,
        services: &Services,
        directory: &std::path::Path,
        last_day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<BooksReconciled> {
        let mut reconciled = BooksReconciled::default();
        let Some(with_breaks) = self.top_ups.keys().rfind(|day| **day < last_day).copied() else {
            return Ok(reconciled);
        };
        reconciled.with_breaks = Some(with_breaks);
        std::fs::create_dir_all(directory)?;
        let now = services.clock.now();
        for (day, count) in self.top_ups.range(..=with_breaks) {
            let mut text = self.bank.settlement_file(*day).await?;
            truth.books_matched += i64::try_from(*count)?;
            if *day == with_breaks {
                let (injected, broken) = inject_breaks(&text)?;
                text = injected;
                // Each top-up the bank left out or settled wrong is matched no more.
                truth.books_matched -= i64::try_from(broken.len())? - 1;
                for class in broken {
                    truth.books_breaks.insert(class.to_string(), 1);
                }
            }
            let file = directory.join(format!("settlement-{day}.csv"));
            std::fs::write(&file, text)?;
            let mut options = BooksRunOptions::new(*day, file, directory.to_path_buf());
            options.threads = 1;
            options.memory_limit_bytes = 64 << 20;
            let run = reconcile_books(&services.state.database, &options, now)
                .await
                .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
            let view = run.view();
            reconciled.runs += 1;
            reconciled.matched += view.matched;
            for (class, currencies) in &view.summary.classes {
                if class == "matched" {
                    continue;
                }
                let count: u64 = currencies.values().map(|totals| totals.count).sum();
                *reconciled.breaks.entry(class.clone()).or_insert(0) += count;
            }
        }
        truth.books_runs = reconciled.runs;
        Ok(reconciled)
    }

    /// The customers whose order is held.
    pub fn held_shoppers(&self) -> Vec<String> {
        self.held
            .iter()
            .map(|(customer, _)| customer.clone())
            .collect()
    }

    /// Payments captured and refunded, as the payment service has them now.
    pub async fn count(&self, services: &Services) -> anyhow::Result<(u64, u64)> {
        let payments = Payments::service(services)?;
        let now = services.clock.now();
        let mut captured = 0;
        let mut refunded = 0;
        let ids: BTreeSet<&String> = self.made.iter().collect();
        for id in ids {
            let view = payments
                .get(id, now)
                .await
                .map_err(|error| refused(&error))?;
            match view.status.as_str() {
                "captured" => captured += 1,
                "refunded" => refunded += 1,
                _ => {}
            }
        }
        Ok((captured, refunded))
    }
}

/// The capture date of `at` in the merchants' zone.
fn merchant_date(at: jiff::Timestamp) -> anyhow::Result<Date> {
    let zone = jiff::tz::TimeZone::get(MERCHANT_ZONE)?;
    Ok(tally_payments::settlement::business_date(at, &zone))
}

/// The bank's file with its mistakes: a capture under a reference Tally never sent
/// (missing in the ledger), its first row settled a fen too high (an amount mismatch) and,
/// when it has a second, that one left out (missing in the channel); the trailers computed
/// again, so the file agrees with itself and the breaks show only against Tally's books.
/// The file, and the classes of the breaks injected.
fn inject_breaks(text: &str) -> anyhow::Result<(String, Vec<&'static str>)> {
    let file = SettlementFile::parse(text).map_err(|error| anyhow::anyhow!(error))?;
    let mut rows = file.rows;
    let mut broken = vec!["missing_in_ledger"];
    if rows.len() >= 2 {
        rows.remove(1);
        broken.push("missing_in_channel");
    }
    if let Some(first) = rows.first_mut() {
        first.amount = first
            .amount
            .checked_add(Amount::new(1, first.amount.currency()))?;
        broken.push("amount_mismatch");
    }
    rows.push(SettlementRow {
        record_type: RecordType::Capture,
        value_date: file.value_date,
        reference: Reference::new(format!("bank-only-{}", file.value_date))?,
        channel_id: ChannelId::new("cap_bank_only_1")?,
        card_last_four: "0000".to_string(),
        amount: Amount::new(8_800, Currency::CNY),
        fee: Amount::new(53, Currency::CNY),
    });
    Ok((SettlementFile::new(file.value_date, rows)?.to_csv(), broken))
}
