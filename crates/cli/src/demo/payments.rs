//! Combined checkout: in the last weeks, customers top their wallets up from a bank card
//! and pay orders part from the wallet, the rest on their credit line in three
//! installments; some orders are refunded. The bank is Tally's own simulator
//! (`tally_channel::simulator`), run in this process for the demo's duration; every
//! payment goes through the payment service and its risk decision.

use super::figures::GroundTruth;
use super::lending::Lending;
use super::world::{Behaviour, Size};
use super::Services;
use jiff::civil::Date;
use jiff::ToSpan;
use std::collections::{BTreeMap, BTreeSet};
use tally_channel::simulator::{serve, SimulatorConfig, SimulatorControl};
use tally_core::{Amount, Clock, Currency, SplitMix64};
use tally_payments::{CaptureMethod, Funding, RefundPolicy, Share, Source};
use tally_service::payments::{ConfirmInput, CreatePayment, PaymentService, PaymentServiceError};

/// The bank simulator's shared secret: it lives only as long as the demo's build.
pub const BANK_SECRET: &str = "tally-demo-bank";

/// What each shopper puts in its wallet before its first order.
const TOP_UP: i64 = 80_000;
/// What each order takes from the wallet; the credit line pays the rest.
const FROM_WALLET: i64 = 10_000;

/// Starts the bank simulator on a free local port: its URL and its control client.
pub async fn start_bank(seed: u64) -> anyhow::Result<(String, SimulatorControl)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let mut config = SimulatorConfig::new(BANK_SECRET);
    config.seed = seed;
    tokio::spawn(async move { serve(listener, config).await });
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
    use tally_payments::{FeeSchedule, FeeText, SettlementTerms};
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
    let settlement = SettlementTerms {
        delay_days: 1,
        holidays: BTreeSet::new(),
        reserve_basis_points: 500,
        reserve_hold_days: 30,
    };
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

/// The payments of the simulation, planned over its last weeks.
pub struct Payments {
    /// Whether the merchants are onboarded (before the first order).
    onboarded: bool,
    bank: SimulatorControl,
    /// Payment numbers by day.
    planned: BTreeMap<Date, Vec<usize>>,
    /// Shoppers (borrower indexes) whose card is saved and wallet topped up.
    ready: BTreeMap<usize, String>,
    /// Every payment made, by id.
    pub made: Vec<String>,
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
            onboarded: false,
            bank,
            planned,
            ready: BTreeMap::new(),
            made: Vec::new(),
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
        if !self.onboarded {
            onboard_merchants(services, Self::service(services)?).await?;
            self.onboarded = true;
        }
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
                }
            } else {
                truth.payments_completed += 1;
            }
        }
        Ok(())
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
