//! The payment state machine as a table: every action tried from every status, each either
//! allowed (and then landing in the status it names, with the transition recorded) or
//! refused with its own code and the payment unchanged. The random property tests check
//! that a refused step changes nothing; this table says which steps must be refused, so a
//! guard removed or loosened fails here (mutation testing found the property tests alone
//! let such changes through; see TESTING.md).
#![allow(clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp};
use tally_core::{Amount, Currency};
use tally_payments::funding::{check_card_token, Funding, Share, Source};
use tally_payments::payment::{
    CaptureMethod, DeliveryChange, LegStatus, NewPayment, Payment, PaymentStatus,
    AUTHORIZATION_VALIDITY,
};
use tally_payments::refund::RefundPolicy;

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

fn start() -> Timestamp {
    "2026-05-01T00:00:00Z".parse().unwrap()
}

fn minutes(count: i64) -> Timestamp {
    start() + SignedDuration::from_mins(count)
}

/// 100.00 from the wallet (60.00) and a card (the rest, 40.00).
fn created() -> Payment {
    Payment::new(
        NewPayment {
            merchant_id: "merchant-1".into(),
            order_reference: "order-1".into(),
            customer: "customer-1".into(),
            amount: cny(10_000),
            expires_at: minutes(30),
            capture_method: CaptureMethod::Manual,
            fundings: vec![
                Funding {
                    source: Source::Wallet,
                    share: Share::Fixed(cny(6_000)),
                },
                Funding {
                    source: Source::Card {
                        token: "tok_visa_4242".into(),
                    },
                    share: Share::Rest,
                },
            ],
        },
        start(),
    )
    .unwrap()
}

fn reserved_all(mut payment: Payment) -> Payment {
    for index in 0..payment.legs.len() {
        payment.leg_reserved(index).unwrap();
    }
    payment
}

fn authorized() -> Payment {
    let mut payment = reserved_all(created());
    payment.authorize(minutes(1)).unwrap();
    payment
}

fn captured(minor: i64) -> Payment {
    let mut payment = authorized();
    let parts = payment.capture_split(cny(minor), minutes(2)).unwrap();
    payment.captured(&parts, minutes(2), "captured").unwrap();
    payment
}

fn refunded(capture: i64, refund: i64) -> Payment {
    let mut payment = captured(capture);
    let parts = payment
        .refund_split(cny(refund), RefundPolicy::ReverseFunding)
        .unwrap();
    payment.refund_started(&parts).unwrap();
    payment
        .refund_finished(&parts, minutes(3), "refunded")
        .unwrap();
    payment
}

/// A payment in each status, as the service would bring it there.
fn in_status(status: PaymentStatus) -> Payment {
    match status {
        PaymentStatus::Created => created(),
        PaymentStatus::RequiresAction => {
            let mut payment = created();
            payment.require_action(minutes(1), "step-up").unwrap();
            payment
        }
        PaymentStatus::Authorized => authorized(),
        PaymentStatus::UnderReview => {
            let mut payment = authorized();
            payment.hold_for_review(minutes(1), "review").unwrap();
            payment
        }
        PaymentStatus::Captured => captured(10_000),
        PaymentStatus::PartiallyCaptured => captured(5_000),
        PaymentStatus::PartiallyRefunded => refunded(10_000, 1_000),
        PaymentStatus::Refunded => refunded(10_000, 10_000),
        PaymentStatus::Failed => {
            let mut payment = created();
            payment.leg_failed(0).unwrap();
            payment
                .end_unpaid(PaymentStatus::Failed, minutes(1), "declined")
                .unwrap();
            payment
        }
        PaymentStatus::Cancelled => {
            let mut payment = created();
            payment
                .end_unpaid(PaymentStatus::Cancelled, minutes(1), "cancelled")
                .unwrap();
            payment
        }
        PaymentStatus::Expired => {
            let mut payment = created();
            payment
                .end_unpaid(PaymentStatus::Expired, minutes(30), "expired")
                .unwrap();
            payment
        }
    }
}

const STATUSES: [PaymentStatus; 11] = [
    PaymentStatus::Created,
    PaymentStatus::RequiresAction,
    PaymentStatus::Authorized,
    PaymentStatus::UnderReview,
    PaymentStatus::Captured,
    PaymentStatus::PartiallyCaptured,
    PaymentStatus::PartiallyRefunded,
    PaymentStatus::Refunded,
    PaymentStatus::Failed,
    PaymentStatus::Cancelled,
    PaymentStatus::Expired,
];

/// Runs `action` on a payment in each status: the statuses it was allowed from, and for the
/// others checks the refusal's code is one of `refused_codes` and that nothing changed.
fn allowed_from(
    refused_codes: &[&str],
    action: impl Fn(&mut Payment) -> Result<(), tally_payments::PaymentError>,
) -> Vec<PaymentStatus> {
    let mut allowed = Vec::new();
    for status in STATUSES {
        let mut payment = in_status(status);
        assert_eq!(payment.status, status);
        payment.check_invariants().unwrap();
        let before = payment.clone();
        match action(&mut payment) {
            Ok(()) => {
                payment.check_invariants().unwrap();
                allowed.push(status);
            }
            Err(error) => {
                assert!(
                    refused_codes.contains(&error.code()),
                    "from {status:?}: {} {error}",
                    error.code()
                );
                assert_eq!(
                    payment, before,
                    "a refusal from {status:?} changed the payment"
                );
            }
        }
    }
    allowed
}

use PaymentStatus::*;

#[test]
fn every_action_is_allowed_only_from_its_statuses() {
    let conflict: &[&str] = &["payment_state_conflict"];
    // A refunded payment has nothing left to give back.
    let nothing_left: &[&str] = &["payment_state_conflict", "refund_exceeds_paid"];
    assert_eq!(
        allowed_from(conflict, |p| p.require_action(minutes(1), "step-up")),
        [Created]
    );
    assert_eq!(
        allowed_from(conflict, |p| p.leg_reserved(1)),
        [Created, RequiresAction]
    );
    assert_eq!(
        allowed_from(conflict, |p| p.leg_failed(1)),
        [Created, RequiresAction]
    );
    assert_eq!(
        allowed_from(conflict, |p| p.hold_for_review(minutes(2), "review")),
        [Authorized]
    );
    assert_eq!(
        allowed_from(conflict, |p| p.approve_review(minutes(2), "approved")),
        [UnderReview]
    );
    assert_eq!(
        allowed_from(conflict, |p| p
            .capture_split(cny(10_000), minutes(2))
            .map(drop)),
        [Authorized]
    );
    assert_eq!(
        allowed_from(nothing_left, |p| {
            p.refund_split(cny(100), RefundPolicy::ProRata).map(drop)
        }),
        [Captured, PartiallyCaptured, PartiallyRefunded]
    );
    assert_eq!(
        allowed_from(nothing_left, |p| p.refund_started(&[cny(0), cny(100)])),
        [Captured, PartiallyCaptured, PartiallyRefunded]
    );
    // Ending unpaid: only before anything was paid, and only with no leg still held.
    assert_eq!(
        allowed_from(conflict, |p| {
            for index in p.reserved_legs() {
                p.leg_released(index)?;
            }
            p.end_unpaid(Cancelled, minutes(2), "cancelled")
        }),
        [Created, RequiresAction, Authorized, UnderReview]
    );
}

#[test]
fn each_allowed_step_lands_where_it_says_and_is_on_the_record() {
    let payment = in_status(UnderReview);
    let moves: Vec<(PaymentStatus, PaymentStatus, &str)> = payment
        .transitions
        .iter()
        .map(|transition| (transition.from, transition.to, transition.cause.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            (Created, Authorized, "every source reserved"),
            (Authorized, UnderReview, "review")
        ]
    );
    assert_eq!(payment.transitions[1].at, minutes(1));
    let mut approved = payment.clone();
    approved
        .approve_review(minutes(5), "analyst approved")
        .unwrap();
    assert_eq!(approved.status, Authorized);
    assert_eq!(approved.transitions.last().unwrap().at, minutes(5));

    // Captured whole or in part, refunded in part or whole.
    assert_eq!(captured(10_000).status, Captured);
    assert_eq!(captured(9_999).status, PartiallyCaptured);
    assert_eq!(refunded(10_000, 1).status, PartiallyRefunded);
    assert_eq!(refunded(5_000, 5_000).status, Refunded);
    let partial = captured(5_000);
    let parts: Vec<i64> = partial
        .legs
        .iter()
        .map(|leg| leg.captured.minor())
        .collect();
    // Pro rata 60 : 40 of 50.00.
    assert_eq!(parts, [3_000, 2_000]);
    assert!(partial
        .legs
        .iter()
        .all(|leg| leg.status == LegStatus::Captured));
}

#[test]
fn an_authorisation_needs_every_leg_held() {
    let mut payment = created();
    payment.leg_reserved(0).unwrap();
    let before = payment.clone();
    let error = payment.authorize(minutes(1)).unwrap_err();
    assert_eq!(error.code(), "payment_leg_state_conflict");
    assert_eq!(payment, before);
    payment.leg_reserved(1).unwrap();
    payment.authorize(minutes(1)).unwrap();
    assert_eq!(
        payment.capture_before,
        Some(minutes(1) + AUTHORIZATION_VALIDITY)
    );
    // A leg already reserved, failed or released cannot be reserved or failed again.
    let error = payment.leg_released(5).unwrap_err();
    assert_eq!(error.code(), "payment_leg_not_found");
    let mut failing = created();
    failing.leg_failed(0).unwrap();
    assert_eq!(failing.legs[0].status, LegStatus::Failed);
    assert_eq!(
        failing.leg_reserved(0).unwrap_err().code(),
        "payment_leg_state_conflict"
    );
    // Ending with a leg still held is refused.
    let mut held = authorized();
    let error = held.end_unpaid(Failed, minutes(2), "declined").unwrap_err();
    assert_eq!(error.code(), "payment_legs_still_reserved");
    held.leg_released(0).unwrap();
    held.leg_released(1).unwrap();
    held.end_unpaid(Failed, minutes(2), "declined").unwrap();
    assert_eq!(held.status, Failed);
    assert!(held
        .legs
        .iter()
        .all(|leg| leg.status == LegStatus::Released));
    // A paid or ended payment's legs are not released any more: a state conflict, not a
    // question of the leg's own state.
    for status in [Captured, Refunded, Failed, Cancelled] {
        let mut ended = in_status(status);
        assert_eq!(
            ended.leg_released(0).unwrap_err().code(),
            "payment_state_conflict",
            "{status:?}"
        );
    }
    // The refusal to end a paid payment says which end was asked for.
    let mut paid = captured(10_000);
    let messages: Vec<String> = [Cancelled, Expired, Failed]
        .into_iter()
        .map(|to| {
            paid.end_unpaid(to, minutes(40), "late")
                .unwrap_err()
                .to_string()
        })
        .collect();
    assert!(messages[0].contains("be cancelled"), "{}", messages[0]);
    assert!(messages[1].contains("expire"), "{}", messages[1]);
    assert!(messages[2].contains("fail"), "{}", messages[2]);
    // Legs never reserved are released when the payment ends.
    let cancelled = in_status(Cancelled);
    assert!(cancelled
        .legs
        .iter()
        .all(|leg| leg.status == LegStatus::Released));
}

#[test]
fn deadlines_decide_expiry_and_refuse_late_steps() {
    let payment = created();
    assert_eq!(payment.deadline(), Some(minutes(30)));
    assert!(!payment.is_due_to_expire(minutes(29)));
    assert!(payment.is_due_to_expire(minutes(30)));
    // Expiring before the deadline is refused; at it, allowed.
    let mut early = created();
    assert_eq!(
        early
            .end_unpaid(Expired, minutes(29), "expired")
            .unwrap_err()
            .code(),
        "payment_state_conflict"
    );
    early.end_unpaid(Expired, minutes(30), "expired").unwrap();
    // A step-up after the deadline is refused as expired.
    let mut late = created();
    assert_eq!(
        late.require_action(minutes(31), "step-up")
            .unwrap_err()
            .code(),
        "payment_expired"
    );
    // An authorised payment's deadline is its capture deadline; a paid one has none.
    let authorised = authorized();
    let capture_before = minutes(1) + AUTHORIZATION_VALIDITY;
    assert_eq!(AUTHORIZATION_VALIDITY, SignedDuration::from_hours(168));
    assert_eq!(authorised.deadline(), Some(capture_before));
    assert_eq!(in_status(UnderReview).deadline(), Some(capture_before));
    assert_eq!(
        authorised
            .capture_split(cny(10_000), capture_before)
            .unwrap_err()
            .code(),
        "payment_expired"
    );
    assert_eq!(captured(10_000).deadline(), None);
    assert!(!captured(10_000).is_due_to_expire(capture_before));
    assert_eq!(in_status(Failed).deadline(), None);
}

#[test]
fn captures_take_no_more_than_was_authorised() {
    let payment = authorized();
    assert_eq!(
        payment
            .capture_split(cny(10_001), minutes(2))
            .unwrap_err()
            .code(),
        "capture_exceeds_authorized"
    );
    assert_eq!(
        payment
            .capture_split(cny(0), minutes(2))
            .unwrap_err()
            .code(),
        "amount_not_positive"
    );
    assert_eq!(
        payment
            .capture_split(Amount::new(100, Currency::EUR), minutes(2))
            .unwrap_err()
            .code(),
        "currency_mismatch"
    );
    // A part above its leg, or negative, is refused; so is a part count that does not match.
    let mut taking = authorized();
    let before = taking.clone();
    for parts in [
        vec![cny(6_001), cny(0)],
        vec![cny(-1), cny(4_000)],
        vec![cny(6_000)],
    ] {
        assert!(taking.captured(&parts, minutes(2), "captured").is_err());
        assert_eq!(taking, before);
    }
    taking
        .captured(&[cny(6_000), cny(4_000)], minutes(2), "captured")
        .unwrap();
    assert_eq!(taking.status, Captured);
    // A second capture is a state conflict.
    assert_eq!(
        taking
            .captured(&[cny(1), cny(1)], minutes(3), "again")
            .unwrap_err()
            .code(),
        "payment_state_conflict"
    );
}

#[test]
fn refunds_never_give_back_more_than_a_source_paid() {
    let mut payment = captured(10_000);
    assert_eq!(payment.refundable().unwrap(), [cny(6_000), cny(4_000)]);
    let before = payment.clone();
    let error = payment.refund_started(&[cny(6_001), cny(0)]).unwrap_err();
    assert_eq!(error.code(), "refund_exceeds_paid");
    assert_eq!(payment, before);
    assert!(payment.refund_started(&[cny(1)]).is_err());
    assert!(payment.refund_started(&[cny(-1), cny(1)]).is_err());
    assert_eq!(payment, before);
    // A refund in flight is not refundable again; abandoned, it is.
    payment.refund_started(&[cny(1_000), cny(0)]).unwrap();
    assert_eq!(payment.refundable().unwrap(), [cny(5_000), cny(4_000)]);
    assert!(payment
        .refund_finished(&[cny(1_001), cny(0)], minutes(3), "x")
        .is_err());
    payment.refund_abandoned(&[cny(1_000), cny(0)]).unwrap();
    assert_eq!(payment.refundable().unwrap(), [cny(6_000), cny(4_000)]);
    assert_eq!(payment.status, Captured);
    // Refunds in full end refunded; a zero refund changes no status.
    payment.refund_started(&[cny(0), cny(0)]).unwrap();
    payment
        .refund_finished(&[cny(0), cny(0)], minutes(3), "nothing")
        .unwrap();
    assert_eq!(payment.status, Captured);
    payment.refund_started(&[cny(6_000), cny(4_000)]).unwrap();
    payment
        .refund_finished(&[cny(6_000), cny(4_000)], minutes(4), "all")
        .unwrap();
    assert_eq!(payment.status, Refunded);
    assert_eq!(payment.refundable().unwrap(), [cny(0), cny(0)]);
    // Card last: the other sources give back first, the card only what is left.
    let card_last = captured(10_000)
        .refund_split(cny(5_000), RefundPolicy::CardLast)
        .unwrap();
    assert_eq!(card_last, [cny(5_000), cny(0)]);
}

#[test]
fn stored_names_and_groups_of_statuses() {
    let names: Vec<&str> = STATUSES.iter().map(PaymentStatus::as_str).collect();
    assert_eq!(
        names,
        [
            "created",
            "requires_action",
            "authorized",
            "under_review",
            "captured",
            "partially_captured",
            "partially_refunded",
            "refunded",
            "failed",
            "cancelled",
            "expired"
        ]
    );
    let paid: Vec<PaymentStatus> = STATUSES
        .into_iter()
        .filter(PaymentStatus::is_paid)
        .collect();
    assert_eq!(
        paid,
        [Captured, PartiallyCaptured, PartiallyRefunded, Refunded]
    );
    let unpaid: Vec<PaymentStatus> = STATUSES
        .into_iter()
        .filter(PaymentStatus::is_unpaid_end)
        .collect();
    assert_eq!(unpaid, [Failed, Cancelled, Expired]);
    let legs: Vec<&str> = [
        LegStatus::Pending,
        LegStatus::Reserved,
        LegStatus::Captured,
        LegStatus::Released,
        LegStatus::Failed,
    ]
    .iter()
    .map(LegStatus::as_str)
    .collect();
    assert_eq!(
        legs,
        ["pending", "reserved", "captured", "released", "failed"]
    );
}

#[test]
fn delivery_holds_and_card_sources_are_recorded() {
    let mut payment = captured(10_000);
    assert!(!payment.delivery_held);
    let held_at = payment.created_at;
    let released_at = held_at + SignedDuration::from_secs(3_600);
    payment.hold_delivery(held_at, "risk control, case c1");
    assert!(payment.delivery_held);
    // Held twice, or released when not held: nothing more is recorded.
    payment.hold_delivery(released_at, "again");
    payment.release_delivery(released_at, "released by an analyst");
    payment.release_delivery(released_at, "again");
    assert!(!payment.delivery_held);
    assert_eq!(
        payment.delivery_changes,
        [
            DeliveryChange {
                held: true,
                at: held_at,
                cause: "risk control, case c1".into()
            },
            DeliveryChange {
                held: false,
                at: released_at,
                cause: "released by an analyst".into()
            },
        ]
    );
    assert!(!Source::Wallet.is_card());
    assert!(Source::Card {
        token: "tok".into()
    }
    .is_card());
    // A payment funded by a card number instead of a token is refused when it is made.
    let mut by_number = NewPayment {
        merchant_id: "merchant-1".into(),
        order_reference: "order-2".into(),
        customer: "customer-1".into(),
        amount: cny(100),
        expires_at: minutes(30),
        capture_method: CaptureMethod::Automatic,
        fundings: vec![Funding {
            source: Source::Card {
                token: "4242424242424242".into(),
            },
            share: Share::Rest,
        }],
    };
    assert_eq!(
        Payment::new(by_number.clone(), start()).unwrap_err().code(),
        "invalid_card_token"
    );
    by_number.fundings[0].source = Source::Card {
        token: "tok_visa_4242".into(),
    };
    assert!(Payment::new(by_number, start()).is_ok());
    // A card token of 12 to 19 digits could be the number itself; 11 digits cannot.
    assert!(check_card_token("12345678901").is_ok());
    assert_eq!(
        check_card_token("4242424242424242").unwrap_err().code(),
        "invalid_card_token"
    );
    let long = "t".repeat(129);
    assert!(check_card_token(&long).is_err());
    assert!(check_card_token(&"t".repeat(128)).is_ok());
}

#[test]
fn the_invariants_catch_a_broken_payment() {
    let sound = captured(10_000);
    sound.check_invariants().unwrap();
    let mut broken = sound.clone();
    broken.legs[0].captured = cny(6_001);
    assert!(broken.check_invariants().is_err());
    let mut broken = sound.clone();
    broken.legs[1].refunded = cny(4_001);
    assert!(broken.check_invariants().is_err());
    let mut broken = sound.clone();
    broken.legs[1].refunding = cny(-1);
    assert!(broken.check_invariants().is_err());
    let mut broken = sound.clone();
    broken.legs[0].amount = cny(6_001);
    assert!(broken.check_invariants().is_err());
    let mut broken = authorized();
    broken.legs[0].captured = cny(1);
    assert!(broken.check_invariants().is_err());
}
