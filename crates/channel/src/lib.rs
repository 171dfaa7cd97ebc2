//! Tally's payment channel connector: how card money moves through a bank or acquirer.
//!
//! - [`Channel`] (`channel.rs`): the trait the payment service calls (card details,
//!   authorise, capture, void, refund, payout, status), object-safe behind
//!   `Arc<dyn Channel>`. Every mutating call carries Tally's [`Reference`], an idempotency
//!   key: repeated, it gets the first answer and the bank acts once.
//! - [`ChannelError`] (`error.rs`): `Unavailable`, `Timeout` and `Protocol` leave the outcome
//!   unknown (the bank may have acted: retry with the same reference or ask
//!   [`Channel::status`]); `Refused` is a definite no.
//! - [`HttpChannel`] (`http.rs`): the trait over HTTP, against the API in `wire.rs`.
//! - [`notification`]: the signed asynchronous notifications and
//!   [`verify_notification`]; receivers deduplicate by `event_id`.
//! - [`payout_file`]: the bank's batch payout file and its return file (CSV, UTF-8 or
//!   GBK), with control totals.
//! - [`simulator`]: a bank with cards and balances, fault injection and settlement files,
//!   served over HTTP, for tests, demos and `tally channel simulate`.
//!
//! An adapter crate, not a domain crate: it does I/O. Amounts are [`tally_core::Amount`]
//! throughout and decimal strings on the wire; rates are parts per million; no float
//! carries money.

pub mod channel;
pub mod error;
pub mod http;
pub mod identifiers;
pub mod notification;
pub mod payout_file;
pub mod simulator;
pub mod wire;

pub use channel::{
    Authorization, AuthorizationStatus, AuthorizeRequest, Capture, CaptureRequest, CardDetails,
    Channel, ChannelFuture, ChannelRefund, Operation, OperationStatus, Payout, PayoutRequest,
    PayoutStatus, RefundRequest, RefundStatus, Void, VoidRequest,
};
pub use error::{refusal, ChannelError};
pub use http::{HttpChannel, HttpChannelConfig};
pub use identifiers::{CardToken, ChannelId, InvalidIdentifier, Reference};
pub use notification::{
    signature_header, verify_notification, DisputeDetails, Notification, NotificationError,
    NotificationType, SIGNATURE_HEADER,
};
