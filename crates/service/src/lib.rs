//! Application services of Tally: the use cases that tie a request to the domain rules and
//! to storage, called alike by the HTTP routes (`tally-server`) and the command line
//! (`tally`).
//!
//! A service takes typed inputs and returns typed outcomes and errors with stable codes; it
//! knows nothing of HTTP. The pure rules live in the domain crates (`tally-ledger`,
//! `tally-credit`, `tally-risk`, ...), rows and SQL in `tally-store`. Where a use case both
//! changes state and moves money, the intent-first mechanism of [`intent`] (used by
//! [`credit::operations`] and the payments' intent log) makes the two land together exactly
//! once.

pub mod caller;
pub mod consortium;
pub mod credit;
pub mod customers;
pub mod evidence;
pub mod intent;
pub mod key_rotation;
pub mod overview;
pub mod payments;
pub mod recon;
pub mod reports;
pub mod risk;
pub mod risk_fingerprints;
pub mod risk_gate;
pub mod sealed_texts;
pub mod service_accounts;
pub mod stolen_accounts;
