//! Disputes the simulator raises on captures and decides: refused on no capture, above what
//! is left of it (captured less refunded less other disputes not won), or for an unknown
//! dispute; decided once (the same decision again answers the same, the other is refused);
//! each notified, signed, with its reason, deadline and, on a loss, the bank's fee.

use crate::notifications::start_receiver;
use crate::support::{cny, config, reference, refusal_code, start, SECRET, VISA};
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;
use tally_channel::{
    verify_notification, AuthorizeRequest, CaptureRequest, NotificationType, RefundRequest,
};

#[tokio::test]
async fn disputes_are_raised_within_the_capture_decided_once_and_notified() {
    let (url, mut deliveries) = start_receiver(0).await;
    let mut config = config();
    config.notify_url = Some(url);
    let bank = start(config).await;
    let token = bank.card(VISA, "100.00").await;
    let authorization = bank
        .channel
        .authorize(&AuthorizeRequest {
            reference: reference("order-1:authorize"),
            token,
            amount: cny("50.00"),
        })
        .await
        .expect("an authorisation");
    let due_by = Timestamp::now()
        .checked_add(SignedDuration::from_hours(24 * 7))
        .expect("a deadline");
    let raise = |capture: &'static str, amount: &'static str| {
        let control = bank.control.clone();
        async move {
            control
                .raise_dispute(&reference(capture), cny(amount), "13.1", due_by)
                .await
        }
    };
    // Nothing captured under the reference yet.
    assert_eq!(
        refusal_code(raise("order-1:capture", "10.00").await),
        "capture_not_found"
    );
    bank.channel
        .capture(&CaptureRequest {
            reference: reference("order-1:capture"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("50.00"),
        })
        .await
        .expect("a capture");
    bank.channel
        .refund(&RefundRequest {
            reference: reference("order-1:refund"),
            channel_id: authorization.channel_id.clone(),
            amount: cny("20.00"),
        })
        .await
        .expect("a refund");
    // 50.00 captured, 20.00 refunded: 30.00 can be disputed.
    assert_eq!(
        refusal_code(raise("order-1:capture", "30.01").await),
        "dispute_exceeds_captured"
    );
    let first = raise("order-1:capture", "25.00").await.expect("a dispute");
    assert_eq!(first.status, "open");
    assert_eq!(
        refusal_code(raise("order-1:capture", "5.01").await),
        "dispute_exceeds_captured"
    );
    assert_eq!(
        refusal_code(bank.control.decide_dispute("dsp_nobody", "won").await),
        "dispute_not_found"
    );
    let lost = bank
        .control
        .decide_dispute(first.dispute_id.as_str(), "lost")
        .await
        .expect("a decision");
    assert_eq!((lost.status.as_str(), lost.fee.as_str()), ("lost", "15.00"));
    let again = bank
        .control
        .decide_dispute(first.dispute_id.as_str(), "lost")
        .await
        .expect("the same decision again");
    assert_eq!(again, lost);
    assert_eq!(
        refusal_code(
            bank.control
                .decide_dispute(first.dispute_id.as_str(), "won")
                .await
        ),
        "dispute_decided"
    );

    // authorised, captured, refunded, opened, lost: the decision repeated sends nothing.
    let mut disputes = Vec::new();
    for _ in 0..5 {
        let (header, body) = tokio::time::timeout(Duration::from_secs(15), deliveries.recv())
            .await
            .expect("a delivery within 15 s")
            .expect("the receiver is running");
        let notification = verify_notification(
            SECRET.as_bytes(),
            &header,
            &body,
            Timestamp::now(),
            Duration::from_secs(300),
        )
        .expect("a verified notification");
        if notification.dispute.is_some() {
            disputes.push(notification);
        }
    }
    let kinds: Vec<_> = disputes.iter().map(|n| n.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            NotificationType::DisputeOpened,
            NotificationType::DisputeLost
        ]
    );
    for notification in &disputes {
        assert_eq!(notification.reference, reference("order-1:capture"));
        assert_eq!(notification.channel_id, first.dispute_id);
        assert_eq!(notification.amount, cny("25.00"));
        let terms = notification.dispute.as_ref().expect("dispute terms");
        assert_eq!(terms.reason_code, "13.1");
        assert_eq!(terms.evidence_due_by, due_by);
    }
    assert_eq!(
        disputes[1].dispute.as_ref().map(|terms| terms.fee),
        Some(cny("15.00"))
    );
}
