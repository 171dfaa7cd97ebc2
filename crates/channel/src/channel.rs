//! The `Channel` trait Tally's payment service calls to move card money, and the typed
//! requests and answers of its operations.

use crate::error::ChannelError;
use crate::identifiers::{CardToken, ChannelId, Reference};
use jiff::Timestamp;
use std::future::Future;
use std::pin::Pin;
use tally_core::Amount;

/// The future every channel call returns: boxed so that `Channel` is object-safe and the
/// payment service can hold an `Arc<dyn Channel>` (the HTTP channel, or a test double).
pub type ChannelFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ChannelError>> + Send + 'a>>;

/// A payment channel (a bank or an acquirer): card authorisations and their capture, void
/// and refunds, and payouts to cards.
///
/// Every mutating call carries Tally's [`Reference`]: the same reference with the same
/// request returns the first answer and the bank acts once; with a different request it is
/// refused (`reference_reused`). After [`ChannelError::Timeout`] or
/// [`ChannelError::Unavailable`] the bank may have acted: retry with the same reference,
/// or ask [`Channel::status`].
pub trait Channel: Send + Sync {
    /// What the channel knows of a tokenised card (never its number).
    fn card<'a>(&'a self, token: &'a CardToken) -> ChannelFuture<'a, CardDetails>;

    /// Holds `amount` on the card. A decline is an answer (recorded under the reference),
    /// not an error.
    fn authorize<'a>(&'a self, request: &'a AuthorizeRequest) -> ChannelFuture<'a, Authorization>;

    /// Takes up to the authorised amount; the rest of the hold is released. Once per
    /// authorisation.
    fn capture<'a>(&'a self, request: &'a CaptureRequest) -> ChannelFuture<'a, Capture>;

    /// Releases a hold that was not captured.
    fn void<'a>(&'a self, request: &'a VoidRequest) -> ChannelFuture<'a, Void>;

    /// Gives back part or all of a captured amount; many refunds per authorisation, never
    /// more in total than was captured.
    fn refund<'a>(&'a self, request: &'a RefundRequest) -> ChannelFuture<'a, ChannelRefund>;

    /// Sends money to a card (a wallet withdrawal).
    fn payout<'a>(&'a self, request: &'a PayoutRequest) -> ChannelFuture<'a, Payout>;

    /// What the bank did for `reference`: the answer of the operation (a payout's current
    /// state), or `None` if no operation under it reached the bank or the bank refused it.
    /// Tally's recovery asks this after a timeout.
    fn status<'a>(&'a self, reference: &'a Reference)
        -> ChannelFuture<'a, Option<OperationStatus>>;
}

/// A tokenised card as the channel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    pub token: CardToken,
    pub last_four: String,
    /// `visa`, `mastercard`, `unionpay`, `amex` or `unknown`.
    pub brand: String,
    /// A stable hash of the card number computed by the channel: the same card gives the same
    /// fingerprint under every token, so Tally can tell two tokens of one card apart from two
    /// cards without ever seeing a number.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub reference: Reference,
    pub token: CardToken,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    pub reference: Reference,
    /// The authorisation's channel id.
    pub channel_id: ChannelId,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidRequest {
    pub reference: Reference,
    /// The authorisation's channel id.
    pub channel_id: ChannelId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub reference: Reference,
    /// The authorisation's channel id.
    pub channel_id: ChannelId,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRequest {
    pub reference: Reference,
    pub token: CardToken,
    pub amount: Amount,
}

/// The answer to an authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The authorisation's id at the channel, for capture, void and refunds.
    pub channel_id: ChannelId,
    pub amount: Amount,
    pub status: AuthorizationStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationStatus {
    /// The amount is held on the card.
    Authorized,
    /// The issuer turned it down (`do_not_honor`, ...); nothing is held.
    Declined { code: String, message: String },
}

/// The answer to a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The capture's own id at the channel.
    pub channel_id: ChannelId,
    pub authorization_id: ChannelId,
    pub captured: Amount,
    /// The part of the hold given back to the card.
    pub released: Amount,
}

/// The answer to a void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Void {
    pub channel_id: ChannelId,
    pub authorization_id: ChannelId,
    pub released: Amount,
}

/// The answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRefund {
    pub channel_id: ChannelId,
    pub authorization_id: ChannelId,
    pub amount: Amount,
    pub status: RefundStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// The money is back on the card.
    Succeeded,
}

/// The answer to a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub channel_id: ChannelId,
    pub amount: Amount,
    pub status: PayoutStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutStatus {
    /// Accepted; `payout.paid` or `payout.returned` will follow.
    Pending,
    /// The money reached the card.
    Paid,
    /// The card's bank sent it back (`code` says why); the money never reached the card.
    Returned { code: String },
}

/// What the bank did for one reference, as [`Channel::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationStatus {
    pub reference: Reference,
    pub occurred_at: Timestamp,
    pub operation: Operation,
}

/// An operation and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Authorization(Authorization),
    Capture(Capture),
    Void(Void),
    Refund(ChannelRefund),
    Payout(Payout),
}

impl Operation {
    /// The operation's own id at the channel.
    pub fn channel_id(&self) -> &ChannelId {
        match self {
            Operation::Authorization(authorization) => &authorization.channel_id,
            Operation::Capture(capture) => &capture.channel_id,
            Operation::Void(void) => &void.channel_id,
            Operation::Refund(refund) => &refund.channel_id,
            Operation::Payout(payout) => &payout.channel_id,
        }
    }
}
