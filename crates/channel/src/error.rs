//! `ChannelError`: why a call to a channel gave no answer Tally can act on, split by what
//! Tally must do next (ask again later, or take the refusal as final).

/// A call to the channel that did not return its answer.
///
/// Deliberately not `#[non_exhaustive]`: the payment service must decide for every kind
/// whether the bank may have acted, so a new kind should fail its `match` at compile time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel could not be reached or answered that it is down, or the connection broke
    /// after the request was sent. The outcome is unknown: the bank may have acted. Retry with
    /// the same reference, or ask [`crate::Channel::status`].
    #[error("channel unavailable: {0}")]
    Unavailable(String),
    /// No answer within the configured time. The outcome is unknown: the bank may have acted.
    #[error("channel timed out: {0}")]
    Timeout(String),
    /// The bank answered no, and did nothing (`insufficient_funds`, `card_not_found`,
    /// `capture_exceeds_authorized`, `reference_reused`, ...: see [`refusal`]).
    #[error("channel refused the request ({code}): {message}")]
    Refused { code: String, message: String },
    /// The bank answered something Tally cannot read, or Tally built a request it cannot send.
    /// The outcome is unknown.
    #[error("channel protocol error: {0}")]
    Protocol(String),
}

impl ChannelError {
    /// A stable code for logs, metrics and Tally's own answers; never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Unavailable(_) => "channel_unavailable",
            ChannelError::Timeout(_) => "channel_timeout",
            ChannelError::Refused { .. } => "channel_refused",
            ChannelError::Protocol(_) => "channel_protocol_error",
        }
    }

    /// Whether the bank may have acted although no answer came: the payment must stay in
    /// flight until a retry with the same reference or [`crate::Channel::status`] tells.
    pub fn outcome_unknown(&self) -> bool {
        !matches!(self, ChannelError::Refused { .. })
    }
}

/// The refusal codes the simulator answers (a real channel's codes are mapped onto these by
/// its adapter). Stable strings, never renamed.
pub mod refusal {
    /// The reference was used before for a different request.
    pub const REFERENCE_REUSED: &str = "reference_reused";
    /// The request is malformed (an amount that is not positive, an unknown currency, ...).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The shared secret was missing or wrong.
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const CARD_NOT_FOUND: &str = "card_not_found";
    pub const CARD_EXPIRED: &str = "card_expired";
    pub const INVALID_CARD_NUMBER: &str = "invalid_card_number";
    pub const AUTHORIZATION_NOT_FOUND: &str = "authorization_not_found";
    /// The card has less available balance than the authorisation asks.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    /// The amount's currency is not the card's (or not the authorisation's).
    pub const CURRENCY_MISMATCH: &str = "currency_mismatch";
    pub const CAPTURE_EXCEEDS_AUTHORIZED: &str = "capture_exceeds_authorized";
    /// A capture or void of an authorisation that was already captured or voided.
    pub const AUTHORIZATION_NOT_PENDING: &str = "authorization_not_pending";
    /// A refund of an authorisation that was never captured.
    pub const AUTHORIZATION_NOT_CAPTURED: &str = "authorization_not_captured";
    pub const REFUND_EXCEEDS_CAPTURED: &str = "refund_exceeds_captured";
    /// The issuer's generic decline (the simulator's `decline_rate`). An authorisation
    /// answer's decline code, not a refusal.
    pub const DO_NOT_HONOR: &str = "do_not_honor";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_has_a_known_outcome() {
        assert!(ChannelError::Timeout("late".into()).outcome_unknown());
        assert!(ChannelError::Unavailable("down".into()).outcome_unknown());
        assert!(ChannelError::Protocol("garbled".into()).outcome_unknown());
        let refused = ChannelError::Refused {
            code: refusal::INSUFFICIENT_FUNDS.into(),
            message: "not enough".into(),
        };
        assert!(!refused.outcome_unknown());
        assert_eq!(refused.code(), "channel_refused");
    }
}
