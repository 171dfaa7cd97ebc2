//! Credit payment rules of Tally ("consume first, pay later"), as pure logic with no I/O.
//!
//! Products and installment schedules, the true APR of every plan, and (see the modules)
//! account rules. Time enters as dates the caller passes; amounts are `tally_core::Amount`;
//! rates are `rust_decimal::Decimal`; there is no floating point in this crate.

pub mod account;
pub mod allocation;
pub mod error;
pub mod finance;
pub mod posting;
pub mod product;
pub mod schedule;

pub use account::{Account, AccountPolicy, AccountStatus, Bucket, DayOutcome, Plan, Statement};
pub use allocation::{allocate, AllocationOrder, AllocationStep, Applied, Component, Due};
pub use error::CreditError;
pub use finance::TrueApr;
pub use posting::{LedgerRole, Posting};
pub use product::{EarlyPayoffRule, FeeModel, Product, RemainderOn, TermPricing};
pub use schedule::{Cycle, Installment, Schedule};
