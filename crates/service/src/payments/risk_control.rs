//! Risk control on every payment: the risk engine decides each payment as a `transaction`
//! event before any money is reserved, and the payment acts on the decision.
//!
//! - `reject`: the payment fails with the decision's reason codes; nothing was reserved.
//! - `step_up`: the payment waits in `requires_action` for a one-time code sent to the
//!   shopper through a [`CodeSink`]; a confirm with the right code goes on, three wrong
//!   codes fail it.
//! - `review`: every source is reserved and the payment waits in `under_review` for an
//!   analyst (approve captures, reject releases); the risk engine opened the case.
//! - `hold_delivery`: the payment succeeds, and the order's delivery is marked held until
//!   an analyst releases it.
//! - `approve`: the payment goes on.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Wrong one-time codes a payment takes before it fails.
pub const STEP_UP_ATTEMPTS_MAX: u32 = 3;
/// How long a one-time code is good for.
pub const STEP_UP_VALIDITY: SignedDuration = SignedDuration::from_mins(10);

/// Where one-time codes go: an SMS gateway, a push service; tests keep them.
pub trait CodeSink: Send + Sync {
    /// Sends `code` to `customer` for payment `payment`.
    fn send(&self, customer: &str, payment: &str, code: &str);
}

/// A sink for development: writes the code to the log under target `tally::one_time_codes`
/// (a production deployment plugs in its SMS or push gateway instead).
pub struct LogSink;

impl CodeSink for LogSink {
    fn send(&self, customer: &str, payment: &str, code: &str) {
        tracing::info!(target: "tally::one_time_codes", customer, payment, code, "one-time code");
    }
}

/// A sink that keeps the codes it was given, for tests and demos.
#[derive(Default)]
pub struct KeptCodes {
    codes: std::sync::Mutex<Vec<(String, String, String)>>,
}

impl KeptCodes {
    /// The last code sent for `payment`.
    pub fn last_for(&self, payment: &str) -> Option<String> {
        self.codes
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|(_, sent_for, _)| sent_for == payment)
            .map(|(_, _, code)| code.clone())
    }
}

impl CodeSink for KeptCodes {
    fn send(&self, customer: &str, payment: &str, code: &str) {
        if let Ok(mut codes) = self.codes.lock() {
            codes.push((customer.to_string(), payment.to_string(), code.to_string()));
        }
    }
}

/// What risk control decided on a payment, kept with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskVerdict {
    /// `approve`, `step_up`, `review`, `hold_delivery` or `reject`.
    pub action: String,
    pub reasons: Vec<String>,
    /// The event's sequence number in the risk engine's log.
    pub sequence: i64,
    /// The analyst case the decision opened, if any.
    pub case_id: Option<String>,
}

/// A one-time code waiting to be entered: its hash (never the code), tries and deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUp {
    pub code_hash: String,
    pub attempts: u32,
    pub expires_at: Timestamp,
}

/// The hash a one-time code is kept as, bound to its payment.
pub fn code_hash(payment: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{payment}:{code}").as_bytes()))
}

/// A new six-digit code.
pub fn new_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

/// Compares two hashes in time independent of where they differ.
pub fn same_hash(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
