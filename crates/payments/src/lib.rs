//! Payment rules of Tally, as pure logic with no I/O: combined checkout, where one order is
//! paid by several sources at once (wallet, vault, credit line in installments, bank card),
//! all or nothing.
//!
//! - [`funding`]: the sources and shares a shopper picks, resolved to exact amounts that sum
//!   to the order.
//! - [`payment`]: the payment's state machine, one leg per source, partial capture by a
//!   stated rule, and the invariants every payment keeps.
//! - [`refund`]: refunds routed back to the sources by a policy (reverse of funding order,
//!   pro rata, card last), never more than a source paid.
//! - [`vault`]: the stored-value fund's daily yield, exact, rounded down with the remainder
//!   carried, and its instant-redemption limit.
//! - [`merchant`]: a merchant's status and the moves between them.
//! - [`fees`]: a merchant's fee schedule per payment method, and how it agrees with the
//!   credit product's merchant discount.
//! - [`dispute`]: chargebacks on a card leg: states, the evidence deadline, and which of
//!   the merchant's balances a dispute takes its amount from.
//! - [`payout`]: a payout's states (created, submitted, paid, failed, returned), where its
//!   money is in each, and the checks before one is made.
//! - [`settlement`]: T+N business days in the merchant's zone with a holiday calendar, and
//!   the rolling reserve.
//!
//! Time enters only as the timestamps the caller passes; amounts are `tally_core::Amount`;
//! there is no floating point. The service layer (`tally-service`) drives a payment through
//! these rules, records each step before the external call it leads to, and moves the money
//! in the ledger.

pub mod dispute;
pub mod error;
pub mod fees;
pub mod funding;
pub mod merchant;
pub mod payment;
pub mod payout;
pub mod refund;
pub mod settlement;
pub mod vault;

pub use dispute::{DisputeDebit, DisputeError, DisputeStatus};
pub use error::PaymentError;
pub use fees::{Fee, FeeSchedule, FeeText, PaymentMethod};
pub use funding::{Funding, Share, Source};
pub use merchant::{MerchantError, MerchantStatus};
pub use payment::{
    CaptureMethod, DeliveryChange, Leg, LegStatus, NewPayment, Payment, PaymentStatus, Transition,
};
pub use payout::{PayoutError, PayoutState};
pub use refund::RefundPolicy;
pub use settlement::{SettlementDay, SettlementTerms};
pub use vault::{AnnualRate, DailyYield};
