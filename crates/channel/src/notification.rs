//! Asynchronous notifications from the channel: their JSON, the `Tally-Channel-Signature`
//! header that signs them, and [`verify_notification`], which a receiver runs before it
//! believes one.
//!
//! The scheme is Stripe's: `Tally-Channel-Signature: t=<unix seconds>,v1=<hex>` where the hex
//! is HMAC-SHA256 under the shared secret of `"<t>.<body>"`. Several `v1=` may be present
//! (while a secret is rotated); one matching is enough. The timestamp is signed, so a
//! captured notification replayed later is refused once it is older than the tolerance.
//!
//! **Receivers must deduplicate by `event_id`.** The channel delivers at least once: it
//! retries until it gets a 2xx, may send an event twice, and sends events late and out of
//! order. A repeated delivery carries the same `event_id` and body (only the signature's
//! timestamp changes), so Tally records the `event_id` with the effect of the event in one
//! transaction and answers 2xx to one it has already seen. Order is not meaningful either:
//! `occurred_at` and the operation's own state (ask [`crate::Channel::status`]) are.

use crate::identifiers::{ChannelId, Reference};
use crate::wire::amount_from_wire;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;
use tally_core::Amount;

/// The HTTP header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tally-Channel-Signature";

/// A verified notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Unique per event, the same on every delivery of it: the deduplication key.
    pub event_id: String,
    pub kind: NotificationType,
    /// Tally's reference of the operation the event is about.
    pub reference: Reference,
    /// The channel id of that operation.
    pub channel_id: ChannelId,
    pub amount: Amount,
    pub occurred_at: Timestamp,
    /// A dispute's terms, on `dispute.*` events only (their `channel_id` is the dispute's id,
    /// their `reference` the disputed capture's).
    pub dispute: Option<DisputeDetails>,
}

/// What a dispute notification says beyond the amount: why the cardholder disputes, until
/// when the merchant may answer, and what the channel charges when the dispute is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeDetails {
    /// The card scheme's reason code (`10.4` fraud, `13.1` goods not received, …).
    pub reason_code: String,
    /// Evidence must reach the channel before this moment.
    pub evidence_due_by: Timestamp,
    /// The channel's fee, charged on `dispute.lost` (zero on the other events).
    pub fee: Amount,
}

/// What happened. Types this version does not know are kept as `Unrecognized`, so a channel
/// adding a type does not make Tally refuse (and the channel retry) every such event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NotificationType {
    AuthorizationSucceeded,
    AuthorizationDeclined,
    CaptureSucceeded,
    VoidSucceeded,
    RefundSucceeded,
    PayoutPaid,
    PayoutReturned,
    /// A cardholder disputed a capture: the channel takes the amount back.
    DisputeOpened,
    /// The issuer decided for the merchant: the channel gives the amount back.
    DisputeWon,
    /// The issuer decided for the cardholder: final, and the channel charges its fee.
    DisputeLost,
    Unrecognized(String),
}

impl NotificationType {
    pub fn as_str(&self) -> &str {
        match self {
            NotificationType::AuthorizationSucceeded => "authorization.succeeded",
            NotificationType::AuthorizationDeclined => "authorization.declined",
            NotificationType::CaptureSucceeded => "capture.succeeded",
            NotificationType::VoidSucceeded => "void.succeeded",
            NotificationType::RefundSucceeded => "refund.succeeded",
            NotificationType::PayoutPaid => "payout.paid",
            NotificationType::PayoutReturned => "payout.returned",
            NotificationType::DisputeOpened => "dispute.opened",
            NotificationType::DisputeWon => "dispute.won",
            NotificationType::DisputeLost => "dispute.lost",
            NotificationType::Unrecognized(text) => text,
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "authorization.succeeded" => NotificationType::AuthorizationSucceeded,
            "authorization.declined" => NotificationType::AuthorizationDeclined,
            "capture.succeeded" => NotificationType::CaptureSucceeded,
            "void.succeeded" => NotificationType::VoidSucceeded,
            "refund.succeeded" => NotificationType::RefundSucceeded,
            "payout.paid" => NotificationType::PayoutPaid,
            "payout.returned" => NotificationType::PayoutReturned,
            "dispute.opened" => NotificationType::DisputeOpened,
            "dispute.won" => NotificationType::DisputeWon,
            "dispute.lost" => NotificationType::DisputeLost,
            other => NotificationType::Unrecognized(other.to_string()),
        }
    }
}

/// The JSON of a notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NotificationBody {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    reference: Reference,
    channel_id: ChannelId,
    amount: String,
    currency: String,
    occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dispute: Option<DisputeBody>,
}

/// A dispute's part of the JSON; the fee is in the notification's currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DisputeBody {
    reason_code: String,
    evidence_due_by: Timestamp,
    fee: String,
}

impl Notification {
    /// The body the channel sends.
    pub fn to_json(&self) -> Vec<u8> {
        let body = NotificationBody {
            event_id: self.event_id.clone(),
            kind: self.kind.as_str().to_string(),
            reference: self.reference.clone(),
            channel_id: self.channel_id.clone(),
            amount: self.amount.to_decimal_string(),
            currency: self.amount.currency().code().to_string(),
            occurred_at: self.occurred_at,
            dispute: self.dispute.as_ref().map(|dispute| DisputeBody {
                reason_code: dispute.reason_code.clone(),
                evidence_due_by: dispute.evidence_due_by,
                fee: dispute.fee.to_decimal_string(),
            }),
        };
        // A struct of strings and a timestamp always serializes.
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn from_json(body: &[u8]) -> Result<Self, NotificationError> {
        let body: NotificationBody = serde_json::from_slice(body)
            .map_err(|error| NotificationError::MalformedBody(error.to_string()))?;
        if body.event_id.is_empty() {
            return Err(NotificationError::MalformedBody("empty event_id".into()));
        }
        let dispute = match &body.dispute {
            Some(dispute) => Some(DisputeDetails {
                reason_code: dispute.reason_code.clone(),
                evidence_due_by: dispute.evidence_due_by,
                fee: amount_from_wire(&dispute.fee, &body.currency)
                    .map_err(NotificationError::MalformedBody)?,
            }),
            None => None,
        };
        Ok(Notification {
            dispute,
            amount: amount_from_wire(&body.amount, &body.currency)
                .map_err(NotificationError::MalformedBody)?,
            event_id: body.event_id,
            kind: NotificationType::parse(&body.kind),
            reference: body.reference,
            channel_id: body.channel_id,
            occurred_at: body.occurred_at,
        })
    }
}

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    MalformedHeader(String),
    #[error("no signature matches the body")]
    BadSignature,
    #[error("signed at {signed_at}, outside the tolerance around {now}")]
    Stale {
        signed_at: Timestamp,
        now: Timestamp,
    },
    #[error("malformed notification body: {0}")]
    MalformedBody(String),
}

impl NotificationError {
    /// A stable code; never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            NotificationError::MalformedHeader(_) => "notification_malformed_header",
            NotificationError::BadSignature => "notification_bad_signature",
            NotificationError::Stale { .. } => "notification_stale",
            NotificationError::MalformedBody(_) => "notification_malformed_body",
        }
    }
}

fn mac(secret: &[u8], signed_at: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(signed_at.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Tally-Channel-Signature` value for `body` signed at `signed_at`.
pub fn signature_header(secret: &[u8], signed_at: Timestamp, body: &[u8]) -> String {
    let seconds = signed_at.as_second();
    let signature = mac(secret, seconds, body).finalize().into_bytes();
    format!("t={seconds},v1={}", hex::encode(signature))
}

/// Checks a notification's signature and age, then reads it.
///
/// Refuses a header without `t=` or `v1=` (`MalformedHeader`), a body no `v1=` signature
/// matches under `secret` (`BadSignature`, compared in constant time), a timestamp further
/// than `tolerance` from `now` either way (`Stale`: a replay, or a clock far off), and a body
/// that is not a notification (`MalformedBody`). Deduplicating by `event_id` is the
/// caller's part (see the module notes).
pub fn verify_notification(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<Notification, NotificationError> {
    let mut signed_at = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(NotificationError::MalformedHeader(format!(
                "{part:?} is not key=value"
            )));
        };
        match key {
            "t" => {
                let seconds: i64 = value.parse().map_err(|_| {
                    NotificationError::MalformedHeader(format!("t={value:?} is not a number"))
                })?;
                signed_at = Some(seconds);
            }
            // A signature that is not hex cannot match; other schemes are ignored.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let signed_at =
        signed_at.ok_or_else(|| NotificationError::MalformedHeader("no t= timestamp".into()))?;
    if signatures.is_empty() {
        return Err(NotificationError::MalformedHeader(
            "no v1= signature".into(),
        ));
    }
    let authentic = signatures
        .iter()
        .any(|signature| mac(secret, signed_at, body).verify_slice(signature).is_ok());
    if !authentic {
        return Err(NotificationError::BadSignature);
    }
    let signed_time = Timestamp::from_second(signed_at)
        .map_err(|_| NotificationError::MalformedHeader(format!("t={signed_at} out of range")))?;
    let age = now.duration_since(signed_time).unsigned_abs();
    if age > tolerance {
        return Err(NotificationError::Stale {
            signed_at: signed_time,
            now,
        });
    }
    Notification::from_json(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Currency;

    const SECRET: &[u8] = b"whsec_test";

    fn notification() -> Notification {
        Notification {
            event_id: "evt_1".into(),
            kind: NotificationType::CaptureSucceeded,
            reference: Reference::new("order-1:capture").expect("a valid reference"),
            channel_id: ChannelId::new("cap_1").expect("a valid channel id"),
            amount: Amount::new(1250, Currency::CNY),
            occurred_at: Timestamp::from_second(1_700_000_000).expect("a valid time"),
            dispute: None,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("a valid time")
    }

    #[test]
    fn a_signed_notification_verifies_and_reads_back() {
        let body = notification().to_json();
        let header = signature_header(SECRET, at(1_700_000_000), &body);
        let read = verify_notification(
            SECRET,
            &header,
            &body,
            at(1_700_000_100),
            Duration::from_secs(300),
        );
        assert_eq!(read, Ok(notification()));
    }

    #[test]
    fn any_matching_signature_is_enough_during_a_rotation() {
        let body = notification().to_json();
        let good = signature_header(SECRET, at(1_700_000_000), &body);
        let other = signature_header(b"old", at(1_700_000_000), &body);
        let other_signature = other.split_once(",v1=").expect("a signature").1;
        let header = format!("{good},v1={other_signature},v0=ignored");
        let read = verify_notification(SECRET, &header, &body, at(1_700_000_000), Duration::ZERO);
        assert!(read.is_ok(), "{read:?}");
    }

    #[test]
    fn a_malformed_header_a_forgery_and_a_replay_are_refused() {
        let body = notification().to_json();
        let header = signature_header(SECRET, at(1_700_000_000), &body);
        let now = at(1_700_000_000);
        let tolerance = Duration::from_secs(300);
        let refuse = |header: &str, body: &[u8], now: Timestamp| {
            verify_notification(SECRET, header, body, now, tolerance)
                .expect_err("refused")
                .code()
        };
        assert_eq!(refuse("", &body, now), "notification_malformed_header");
        assert_eq!(refuse("t=1", &body, now), "notification_malformed_header");
        assert_eq!(refuse("v1=00", &body, now), "notification_malformed_header");
        assert_eq!(
            refuse("t=x,v1=00", &body, now),
            "notification_malformed_header"
        );
        assert_eq!(
            refuse("t=1700000000,v1=zz", &body, now),
            "notification_malformed_header"
        );
        assert_eq!(
            refuse("t=1700000000,v1=00", &body, now),
            "notification_bad_signature"
        );
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert_eq!(
            refuse(&header, &tampered, now),
            "notification_bad_signature"
        );
        assert_eq!(
            refuse(&header, &body, at(1_700_000_301)),
            "notification_stale"
        );
        assert_eq!(
            refuse(&header, &body, at(1_699_999_699)),
            "notification_stale"
        );
        let garbage = b"{}";
        let signed = signature_header(SECRET, now, garbage);
        assert_eq!(refuse(&signed, garbage, now), "notification_malformed_body");
    }

    #[test]
    fn an_unknown_type_is_kept_not_refused() {
        let mut future = notification();
        future.kind = NotificationType::Unrecognized("dispute.reopened".into());
        let body = future.to_json();
        let header = signature_header(SECRET, at(1_700_000_000), &body);
        let read = verify_notification(SECRET, &header, &body, at(1_700_000_000), Duration::ZERO);
        assert_eq!(read, Ok(future));
    }

    #[test]
    fn a_dispute_notification_carries_its_terms_both_ways() {
        let mut dispute = notification();
        dispute.kind = NotificationType::DisputeLost;
        dispute.dispute = Some(DisputeDetails {
            reason_code: "10.4".into(),
            evidence_due_by: at(1_700_600_000),
            fee: Amount::new(1500, Currency::CNY),
        });
        let body = dispute.to_json();
        let header = signature_header(SECRET, at(1_700_000_000), &body);
        let read = verify_notification(SECRET, &header, &body, at(1_700_000_000), Duration::ZERO);
        assert_eq!(read, Ok(dispute));
    }
}
