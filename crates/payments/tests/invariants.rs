//! Property tests of the payment rules: fundings resolve to exactly the order or are
//! refused; whatever happens to a payment, its legs keep the invariants (a failed payment
//! holds and takes nothing, captured plus released is what was reserved, refunds never
//! exceed what a source paid); refund splits place the whole refund; the vault's daily
//! yield loses no remainder.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use tally_core::{Amount, Currency};
use tally_payments::payment::AUTHORIZATION_VALIDITY;
use tally_payments::vault::{daily_yield, AnnualRate, CARRY_UNITS_PER_MINOR};
use tally_payments::{
    CaptureMethod, Funding, LegStatus, NewPayment, Payment, PaymentStatus, RefundPolicy, Share,
    Source,
};

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn source_strategy() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::Wallet),
        Just(Source::Vault),
        prop::sample::select(vec![1_u32, 3, 6, 12, 24])
            .prop_map(|term| Source::CreditLine { account: 7, term }),
        (0_u8..3).prop_map(|card| Source::Card {
            token: format!("tok_card_{card}")
        }),
    ]
}

/// Fundings that are valid by construction: distinct sources, positive shares, one rest.
fn valid_payment() -> impl Strategy<Value = (i64, Vec<Funding>)> {
    (
        1_i64..10_000_000,
        prop::collection::vec(source_strategy(), 1..6),
        any::<u64>(),
    )
        .prop_map(|(order, mut sources, seed)| {
            let mut distinct: Vec<Source> = Vec::new();
            for source in sources.drain(..) {
                // Each kind of source once per payment.
                if !distinct.iter().any(|other| other.kind() == source.kind()) {
                    distinct.push(source);
                }
            }
            let count = distinct.len().min(usize::try_from(order).unwrap_or(1));
            distinct.truncate(count.max(1));
            let rest_index = usize::try_from(seed % distinct.len() as u64).unwrap_or(0);
            // Give every fixed share at least one minor unit and leave at least one to the rest.
            let mut left = order - i64::try_from(distinct.len()).unwrap_or(1);
            let mut fundings = Vec::new();
            for (index, source) in distinct.into_iter().enumerate() {
                let share = if index == rest_index {
                    Share::Rest
                } else {
                    let extra = if left > 0 {
                        i64::try_from(
                            seed.rotate_left(u32::try_from(index).unwrap_or(0) * 7)
                                % (u64::try_from(left).unwrap_or(1) + 1),
                        )
                        .unwrap_or(0)
                    } else {
                        0
                    };
                    left -= extra;
                    Share::Fixed(cny(1 + extra))
                };
                fundings.push(Funding { source, share });
            }
            (order, fundings)
        })
}

fn start() -> Timestamp {
    Timestamp::from_second(1_780_000_000).expect("timestamp")
}

fn new_payment(order: i64, fundings: Vec<Funding>) -> Payment {
    Payment::new(
        NewPayment {
            merchant_id: "merchant-1".into(),
            order_reference: "order-1".into(),
            customer: "customer-1".into(),
            amount: cny(order),
            expires_at: start() + SignedDuration::from_mins(30),
            capture_method: CaptureMethod::Manual,
            fundings,
        },
        start(),
    )
    .expect("a valid payment is accepted")
}

/// One thing that can happen to a payment; most are refused in most states, which is the
/// point: a refused step must change nothing.
#[derive(Debug, Clone)]
enum Step {
    Reserve(usize),
    FailLeg(usize),
    Release(usize),
    Authorize,
    Review,
    Approve,
    /// Capture this many parts per thousand of the order.
    Capture(u16),
    End(u8),
    /// Refund this many parts per thousand of what is refundable, by this policy, finished or
    /// abandoned.
    Refund(u16, u8, bool),
    Expire,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0_usize..6).prop_map(Step::Reserve),
        1 => (0_usize..6).prop_map(Step::FailLeg),
        1 => (0_usize..6).prop_map(Step::Release),
        2 => Just(Step::Authorize),
        1 => Just(Step::Review),
        1 => Just(Step::Approve),
        2 => (1_u16..=1000).prop_map(Step::Capture),
        1 => (0_u8..3).prop_map(Step::End),
        3 => (1_u16..=1200, 0_u8..3, any::<bool>()).prop_map(|(share, policy, finish)| Step::Refund(share, policy, finish)),
        1 => Just(Step::Expire),
    ]
}

fn apply(payment: &mut Payment, step: &Step, now: Timestamp) -> bool {
    let before = payment.clone();
    let result = match step {
        Step::Reserve(leg) => payment.leg_reserved(*leg),
        Step::FailLeg(leg) => payment.leg_failed(*leg),
        Step::Release(leg) => payment.leg_released(*leg),
        Step::Authorize => payment.authorize(now),
        Step::Review => payment.hold_for_review(now, "review"),
        Step::Approve => payment.approve_review(now, "approved"),
        Step::Capture(share) => {
            let amount = cny((payment.amount.minor() * i64::from(*share) / 1000).max(1));
            payment
                .capture_split(amount, now)
                .and_then(|parts| payment.captured(&parts, now, "capture"))
        }
        Step::End(kind) => {
            let to = [
                PaymentStatus::Failed,
                PaymentStatus::Cancelled,
                PaymentStatus::Expired,
            ][usize::from(*kind)];
            payment.end_unpaid(to, now, "end")
        }
        Step::Refund(share, policy, finish) => {
            let refundable: i64 = payment
                .refundable()
                .map(|parts| parts.iter().map(Amount::minor).sum())
                .unwrap_or(0);
            // Above 1000 ‰: the whole refundable amount, or (above 1100 ‰) one unit more.
            let amount = cny(match share {
                1101.. => refundable + 1,
                1000..=1100 => refundable,
                _ => (refundable * i64::from(*share) / 1000).max(1),
            });
            let policy = [
                RefundPolicy::ReverseFunding,
                RefundPolicy::ProRata,
                RefundPolicy::CardLast,
            ][usize::from(*policy)];
            payment.refund_split(amount, policy).and_then(|parts| {
                let total: i64 = parts.iter().map(Amount::minor).sum();
                assert_eq!(
                    total,
                    amount.minor(),
                    "a refund split places the whole refund"
                );
                payment.refund_started(&parts)?;
                if *finish {
                    payment.refund_finished(&parts, now, "refund")
                } else {
                    payment.refund_abandoned(&parts)
                }
            })
        }
        Step::Expire => payment.end_unpaid(PaymentStatus::Expired, now, "expired"),
    };
    if result.is_err() {
        assert_eq!(
            *payment, before,
            "a refused step changed the payment: {step:?}"
        );
    }
    result.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_fundings_resolve_to_exactly_the_order((order, fundings) in valid_payment()) {
        let payment = new_payment(order, fundings);
        let total: i64 = payment.legs.iter().map(|leg| leg.amount.minor()).sum();
        prop_assert_eq!(total, order);
        prop_assert!(payment.legs.iter().all(|leg| leg.amount.is_positive()));
    }

    #[test]
    fn arbitrary_fundings_sum_to_the_order_or_are_refused(
        order in -10_i64..100_000,
        shares in prop::collection::vec((source_strategy(), prop::option::of(-10_i64..60_000)), 0..8),
    ) {
        let fundings: Vec<Funding> = shares
            .into_iter()
            .map(|(source, share)| Funding {
                source,
                share: share.map_or(Share::Rest, |minor| Share::Fixed(cny(minor))),
            })
            .collect();
        if let Ok(amounts) = tally_payments::funding::resolve(cny(order), &fundings) {
            prop_assert_eq!(amounts.iter().map(Amount::minor).sum::<i64>(), order);
            prop_assert!(amounts.iter().all(Amount::is_positive));
        }
    }

    #[test]
    fn every_step_keeps_the_invariants(
        (order, fundings) in valid_payment(),
        prefix in 0_u8..3,
        capture_share in 1_u16..=1000,
        random_steps in prop::collection::vec((step_strategy(), 0_i64..120), 1..40),
    ) {
        let mut payment = new_payment(order, fundings);
        // Two runs in three start from an authorised or captured payment, so that captures
        // and refunds are reached as often as the early states.
        let mut steps: Vec<(Step, i64)> = Vec::new();
        if prefix > 0 {
            steps.extend((0..payment.legs.len()).map(|leg| (Step::Reserve(leg), 1)));
            steps.push((Step::Authorize, 1));
        }
        if prefix > 1 {
            steps.push((Step::Capture(capture_share), 1));
        }
        steps.extend(random_steps);
        let mut now = start();
        let mut reserved_ever = vec![false; payment.legs.len()];
        for (step, seconds) in &steps {
            // Seconds pass between steps; an expiry step jumps past every deadline.
            now += SignedDuration::from_secs(*seconds);
            if matches!(step, Step::Expire) {
                now += AUTHORIZATION_VALIDITY;
            }
            apply(&mut payment, step, now);
            if let Err(broken) = payment.check_invariants() {
                prop_assert!(false, "{broken} after {step:?}: {payment:?}");
            }
            for (index, leg) in payment.legs.iter().enumerate() {
                reserved_ever[index] |= leg.status == LegStatus::Reserved;
            }
        }
        // A payment that ended unpaid took nothing from any source.
        if payment.status.is_unpaid_end() {
            prop_assert!(payment.legs.iter().all(|leg| leg.captured.is_zero()));
        }
        // Per source: what was captured plus what was released is what was reserved.
        for (index, leg) in payment.legs.iter().enumerate() {
            if leg.status == LegStatus::Captured {
                prop_assert!(reserved_ever[index]);
                let released = leg.amount.minor() - leg.captured.minor();
                prop_assert_eq!(leg.captured.minor() + released, leg.amount.minor());
            }
            prop_assert!(leg.refunded.minor() + leg.refunding.minor() <= leg.captured.minor());
        }
    }

    #[test]
    fn an_authorisation_never_outlives_its_validity(
        (order, fundings) in valid_payment(),
        late in 0_i64..1_000_000,
    ) {
        let mut payment = new_payment(order, fundings);
        for leg in 0..payment.legs.len() {
            payment.leg_reserved(leg).expect("reserve");
        }
        payment.authorize(start()).expect("authorize");
        let now = start() + AUTHORIZATION_VALIDITY + SignedDuration::from_secs(late);
        prop_assert!(payment.is_due_to_expire(now));
        prop_assert!(payment.capture_split(payment.amount, now).is_err());
    }

    #[test]
    fn the_vault_loses_no_remainder_over_any_run_of_days(
        balance in 0_i64..100_000_000_000,
        rate_units in 0_i64..=1_000_000_000,
        days in 1_usize..800,
    ) {
        let rate = AnnualRate::new(rust_decimal::Decimal::new(rate_units, 10)).expect("rate");
        let mut carried = 0_i64;
        let mut credited = 0_i128;
        for _ in 0..days {
            let day = daily_yield(cny(balance), rate, carried).expect("yield");
            prop_assert!((0..CARRY_UNITS_PER_MINOR).contains(&day.carried));
            credited += i128::from(day.credited.minor());
            carried = day.carried;
        }
        // credited + carried is exactly the total earned, in carry units.
        let exact = i128::from(balance) * i128::from(rate_units) * i128::try_from(days).unwrap_or(0);
        prop_assert_eq!(credited * i128::from(CARRY_UNITS_PER_MINOR) + i128::from(carried), exact);
    }
}
