//! The random orders of the settlement and flow-of-funds properties, and how one is put
//! through: paid from the wallet and an interest-free credit line, captured in part or
//! whole, refunded in parts; with what each step should charge or give back, recomputed from
//! the merchant's fee schedule and the credit plan's discount.

use super::CUSTOMER;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use proptest::prelude::*;
use std::sync::Arc;
use tally_core::{Amount, Currency, ManualClock};
use tally_payments::{
    CaptureMethod, FeeSchedule, Funding, PaymentMethod, RefundPolicy, SettlementTerms, Share,
    Source,
};
use tally_service::credit::decision::CreditService;
use tally_service::payments::merchants::testing::{test_merchant, test_privacy};
use tally_service::payments::{ConfirmInput, CreatePayment, PaymentService, PaymentsConfig};
use tally_store::Database;

pub fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

pub fn minor_of(view: &tally_service::credit::views::AmountView) -> i64 {
    Amount::parse(&view.value, Currency::CNY).unwrap().minor()
}

/// One order of a day.
#[derive(Debug, Clone)]
pub struct Order {
    /// Which of the test's merchants.
    pub merchant: usize,
    pub amount: i64,
    /// Per cent of the order paid from the wallet; the credit line takes the rest.
    pub wallet_percent: i64,
    /// Per cent of the order captured (100: whole).
    pub capture_percent: i64,
    /// Refunds, each a per cent of what is still refundable, and a policy.
    pub refunds: Vec<(i64, u8)>,
}

/// Orders for one of two merchants.
pub fn order() -> impl Strategy<Value = Order> {
    (
        0..2_usize,
        1_000_i64..80_000,
        0_i64..=100,
        prop_oneof![Just(100_i64), 20_i64..100],
        prop::collection::vec((1_i64..=100, 0_u8..3), 0..3),
    )
        .prop_map(
            |(merchant, amount, wallet_percent, capture_percent, refunds)| Order {
                merchant,
                amount,
                wallet_percent,
                capture_percent,
                refunds,
            },
        )
}

/// What an order moved, in minor units: each captured leg's gross and fee, and each refund
/// with, for each of its parts, what was refunded and what of the fee it gave back.
#[derive(Debug, Default)]
pub struct Placed {
    pub captures: Vec<(i64, i64)>,
    pub refunds: Vec<Refunded>,
}

/// One refund of an order.
#[derive(Debug)]
pub struct Refunded {
    pub amount: i64,
    /// Per leg refunded: the part and the fee it gave back (the credit plan's discount).
    pub parts: Vec<(i64, i64)>,
}

/// The merchant discount of the shopper's credit plan `plan` on `account`.
pub async fn discount_of(credit: &CreditService, account: i64, plan: u32) -> Amount {
    let stored = credit.operations.load(account).await.unwrap();
    stored
        .account
        .plans
        .iter()
        .find(|found| found.id == plan)
        .unwrap()
        .schedule
        .merchant_discount
}

/// The shopper's credit line in `payments` and `credit`.
pub struct Shopper<'a> {
    pub payments: &'a PaymentService,
    pub credit: &'a CreditService,
    pub credit_account: i64,
}

impl Shopper<'_> {
    /// Places `order` at `merchant` under `key` at `now`, charged by `fees`: created,
    /// confirmed, captured, refunded.
    pub async fn place(
        &self,
        key: &str,
        merchant: &str,
        order: &Order,
        fees: &FeeSchedule,
        now: Timestamp,
    ) -> Placed {
        let wallet = order.amount * order.wallet_percent / 100;
        let mut fundings = Vec::new();
        if wallet > 0 {
            fundings.push(Funding {
                source: Source::Wallet,
                share: Share::Fixed(cny(wallet)),
            });
        }
        if wallet < order.amount {
            fundings.push(Funding {
                source: Source::CreditLine {
                    account: self.credit_account,
                    term: 3,
                },
                share: Share::Rest,
            });
        }
        let created = self
            .payments
            .create(
                &format!("{key}:create"),
                CreatePayment {
                    merchant_id: merchant.into(),
                    order_reference: key.into(),
                    customer: CUSTOMER.into(),
                    amount: cny(order.amount),
                    expires_at: None,
                    capture_method: CaptureMethod::Manual,
                    fundings,
                },
                now,
            )
            .await
            .unwrap();
        self.payments
            .confirm(
                &format!("{key}:confirm"),
                &created.id,
                ConfirmInput::default(),
                now,
            )
            .await
            .unwrap();
        let capture = (order.amount * order.capture_percent / 100).max(1);
        let captured = self
            .payments
            .capture(
                &format!("{key}:capture"),
                &created.id,
                Some(cny(capture)),
                now,
            )
            .await
            .unwrap();
        let mut placed = Placed::default();
        let mut credit_plan = None;
        for leg in &captured.legs {
            let gross = minor_of(&leg.captured);
            if gross == 0 {
                continue;
            }
            let fee = match leg.kind.as_str() {
                "wallet" => fees.fee(PaymentMethod::Wallet, cny(gross)).unwrap().minor(),
                _ => {
                    let plan = leg.credit_plan_id.unwrap();
                    let discount = discount_of(self.credit, self.credit_account, plan)
                        .await
                        .minor();
                    credit_plan = Some((discount, gross, 0_i64, 0_i64));
                    let scheduled = fees.fee(PaymentMethod::CreditLine(3), cny(gross)).unwrap();
                    scheduled.minor().max(discount)
                }
            };
            placed.captures.push((gross, fee));
        }
        let mut refundable = capture;
        for (index, (percent, policy)) in order.refunds.iter().enumerate() {
            let amount = refundable * percent / 100;
            if amount == 0 {
                continue;
            }
            let policy = [
                RefundPolicy::ReverseFunding,
                RefundPolicy::ProRata,
                RefundPolicy::CardLast,
            ][usize::from(*policy)];
            let refunded = self
                .payments
                .refund(
                    &format!("{key}:refund-{index}"),
                    &created.id,
                    cny(amount),
                    policy,
                    now,
                )
                .await
                .unwrap();
            refundable -= amount;
            let mut refund = Refunded {
                amount,
                parts: Vec::new(),
            };
            let parts = &refunded.refunds.last().unwrap().parts;
            for (leg, part) in refunded.legs.iter().zip(parts) {
                let part = minor_of(part);
                if part == 0 {
                    continue;
                }
                let returned = if leg.kind == "credit_line" {
                    // The plan gives its discount back pro rata, the rest on the refund
                    // that completes the principal (tally_credit's Plan::refund).
                    let (discount, principal, refunded_before, returned_before) =
                        credit_plan.as_mut().unwrap();
                    *refunded_before += part;
                    let share = if *refunded_before == *principal {
                        *discount - *returned_before
                    } else {
                        *discount * part / *principal
                    };
                    *returned_before += share;
                    share
                } else {
                    0
                };
                refund.parts.push((part, returned));
            }
            placed.refunds.push(refund);
        }
        placed
    }
}

/// The payment service on `database` with the credit service and, at `at`, the shopper's
/// credit line of 1,000,000.00 (its id), paying credit-line fundings by the interest-free
/// product; `time_zone` its business dates' zone (the default's when `None`).
pub async fn interest_free_payments(
    database: &Database,
    clock: Arc<ManualClock>,
    time_zone: Option<TimeZone>,
    at: Timestamp,
) -> (PaymentService, Arc<CreditService>, i64) {
    let (writer, credit) = super::credit_service(database, clock).await;
    let credit_account = super::open_credit_line(&credit, cny(100_000_000), at).await;
    let mut config = PaymentsConfig {
        credit_product: "interest-free".into(),
        ..PaymentsConfig::default()
    };
    if let Some(time_zone) = time_zone {
        config.time_zone = time_zone;
    }
    let payments =
        PaymentService::new(database.clone(), writer, Some(credit.clone()), None, config);
    (payments, credit, credit_account)
}

/// Onboards merchant `id` at `at` in `time_zone` with its fees and settlement terms.
pub async fn onboard(
    payments: &PaymentService,
    id: &str,
    time_zone: &str,
    fees: &FeeSchedule,
    settlement: &SettlementTerms,
    at: Timestamp,
) {
    let mut merchant = test_merchant(id, Currency::CNY);
    merchant.time_zone = time_zone.into();
    merchant.fees = fees.clone();
    merchant.settlement = settlement.clone();
    payments
        .onboard_merchant(Some(&test_privacy()), merchant, None, at)
        .await
        .unwrap();
}
