//! A per-API-key rate limit (for exact customer lookups), as a token bucket kept as one time
//! per key (the generic cell rate algorithm): a key may make `per_minute` calls at once and
//! then one every `60 s / per_minute`.
//!
//! Exact lookups answer masked customers, but enough of them confirm a hidden value one guess
//! at a time; a limit per key makes that take months instead of seconds, and the audit log
//! shows who tried. Time comes from the injected [`Clock`], so tests step it instead of
//! sleeping. The state is per process: `n` processes serving one database allow `n` times
//! the rate, which the audit log still records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tally_core::Clock;

/// Lookups a key may make per minute unless configured otherwise: a call-centre agent
/// answers a few calls a minute; a script guessing numbers needs thousands.
pub const DEFAULT_LOOKUPS_PER_MINUTE: u32 = 30;

const MINUTE_MICROSECONDS: i64 = 60_000_000;
/// Keys remembered before the idle ones (whose bucket is full again) are forgotten.
const KEYS_REMEMBERED_MAX: usize = 10_000;

/// A refused call: when the key may call again, in whole seconds (at least 1), for the
/// `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

pub struct RateLimiter {
    per_minute: u32,
    clock: Arc<dyn Clock>,
    /// Per key, the time (microseconds since the epoch) its bucket is full again; a call is
    /// allowed while that is at most a minute less one interval ahead.
    full_at: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_minute", &self.per_minute)
            .finish()
    }
}

impl RateLimiter {
    /// A limit of `per_minute` calls per key (0 is read as 1).
    pub fn new(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            per_minute: per_minute.max(1),
            clock,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Counts one call by `key`, or refuses it (counting nothing) with the time to wait.
    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        let interval = MINUTE_MICROSECONDS / i64::from(self.per_minute);
        // A full bucket holds `per_minute` calls: the first is free, the others fit in this.
        let tolerance = MINUTE_MICROSECONDS - interval;
        let now = self.clock.now().as_microsecond();
        // A poisoned lock only means another call panicked; the times are still valid.
        let mut full_at = self
            .full_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if full_at.len() >= KEYS_REMEMBERED_MAX {
            full_at.retain(|_, time| *time > now);
        }
        let key_full_at = full_at.get(key).copied().unwrap_or(now).max(now);
        let ahead = key_full_at - now;
        if ahead > tolerance {
            let wait = ahead - tolerance;
            let seconds = (wait + 999_999) / 1_000_000;
            return Err(RetryAfter(u64::try_from(seconds).unwrap_or(1).max(1)));
        }
        full_at.insert(key.to_string(), key_full_at + interval);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use tally_core::ManualClock;

    #[test]
    fn a_key_gets_its_burst_then_one_call_per_interval() {
        let clock = Arc::new(ManualClock::new("2026-05-01T00:00:00Z".parse().unwrap()));
        let limiter = RateLimiter::new(30, clock.clone());
        for _ in 0..30 {
            limiter.check("key-a").unwrap();
        }
        // One every 2 s after the burst; refusals count nothing.
        assert_eq!(limiter.check("key-a"), Err(RetryAfter(2)));
        assert_eq!(limiter.check("key-a"), Err(RetryAfter(2)));
        // Another key has its own bucket.
        limiter.check("key-b").unwrap();
        clock.advance(SignedDuration::from_millis(1_500));
        assert_eq!(limiter.check("key-a"), Err(RetryAfter(1)));
        clock.advance(SignedDuration::from_millis(500));
        limiter.check("key-a").unwrap();
        assert_eq!(limiter.check("key-a"), Err(RetryAfter(2)));
        // A minute idle fills the bucket again, and no more than that.
        clock.advance(SignedDuration::from_secs(600));
        for _ in 0..30 {
            limiter.check("key-a").unwrap();
        }
        assert!(limiter.check("key-a").is_err());
    }

    #[test]
    fn a_clock_stepping_back_does_not_grant_calls() {
        let clock = Arc::new(ManualClock::new("2026-05-01T00:00:00Z".parse().unwrap()));
        let limiter = RateLimiter::new(1, clock.clone());
        limiter.check("key").unwrap();
        assert_eq!(limiter.check("key"), Err(RetryAfter(60)));
        clock.advance(SignedDuration::from_secs(-3600));
        assert!(limiter.check("key").is_err());
    }
}
