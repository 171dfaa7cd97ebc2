//! Shared types of Tally: exact money, currencies, rates and rounding, typed ids, the
//! `Clock` through which all time enters, `Secret` for values that must never be printed,
//! and `SplitMix64`, the seeded generator behind generated data and reproducible splits.
//!
//! Everything here is pure: nothing reads the environment, and the only reader of the wall
//! clock is [`SystemClock`], which the shell constructs and passes in.

pub mod clock;
pub mod currency;
pub mod id;
pub mod money;
pub mod random;
pub mod rate;
pub mod secret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use currency::Currency;
pub use id::{AccountId, CustomerId, EntryId, HoldId};
pub use money::{Amount, MoneyError};
pub use random::SplitMix64;
pub use rate::Rounding;
pub use secret::Secret;
