//! The intent-first mechanism every service uses so that its state and the money it moves
//! (ledger commands, a credit operation, a call to the bank) land together exactly once.
//!
//! What a service is about to do is written down as a *pending intent* before it acts, and
//! every effect is taken under a key derived from the intent and its step, so taking it
//! again acts once. Before anything else touches the same data, whatever is pending is
//! finished first ([`finish_pending`]); a retry of the same request is answered what it was
//! answered the first time, recognised by its [`request_fingerprint`].
//!
//! Two stores of intents use it, each keeping its own rows (their stored shapes predate
//! this module and stay as they are):
//!
//! - credit operations (`credit::operations`): the account's new state and the operation
//!   with all its ledger commands are written in one transaction, marked pending, then the
//!   commands are sent under `credit:{key}:{index}`. Every command is known up front, since
//!   the ledger is the only thing outside the row;
//! - payments (`payments::checkout::intent_log`): each step reaches outside the database
//!   (the credit service, the bank) and needs the outcome of the one before, so each step
//!   is written before it is taken, under `payments:{payment}:{sequence}`, and its outcome
//!   is applied to the payment once (the payment records the sequence applied through).

use sha2::{Digest, Sha256};
use std::fmt::Display;
use tally_ledger::{Actor, Command, LedgerError, Outcome};
use tally_store::{LedgerWriter, WriteError};

/// The key naming intent `intent` of `service` (`{service}:{intent}`): every key its
/// steps take derives from it, so no two intents share a ledger idempotency key.
pub fn intent_key(service: &str, intent: &str) -> String {
    format!("{service}:{intent}")
}

/// The key of step `step` under `parent` (`{parent}:{step}`): a step of an intent, or one
/// of several ledger commands a step makes (`:ledger`, `:hold`, `:entry`).
pub fn step_key(parent: &str, step: impl Display) -> String {
    format!("{parent}:{step}")
}

/// The fingerprint of a request: the SHA-256 of its parts, one after the other, in hex. A
/// key stored with one fingerprint and sent again with another is a different request.
/// The parts are each service's own (stored fingerprints must keep matching their retries).
pub fn request_fingerprint(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Locks that serialise work on one intent's data within a process, by stripe: the version
/// check on the stored row is what protects against other processes.
pub struct LockStripes {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl LockStripes {
    /// `count` stripes (at least one).
    pub fn new(count: usize) -> LockStripes {
        LockStripes {
            stripes: (0..count.max(1))
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The stripe of a numbered record (a credit account).
    pub fn of_number(&self, number: i64) -> &tokio::sync::Mutex<()> {
        let count = i64::try_from(self.stripes.len()).unwrap_or(i64::MAX);
        let index = usize::try_from(number.rem_euclid(count)).unwrap_or(0);
        &self.stripes[index]
    }

    /// The stripe of a named record (a payment), by the first byte of its name's SHA-256.
    pub fn of_name(&self, name: &str) -> &tokio::sync::Mutex<()> {
        let digest = Sha256::digest(name.as_bytes());
        &self.stripes[usize::from(digest[0]) % self.stripes.len()]
    }
}

/// Why a ledger command was not applied nor refused by the ledger's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsent {
    /// The key holds another command: no retry can succeed, an operator must look.
    KeyTaken(String),
    /// The ledger could not be reached: the outcome is unknown, take the step again.
    Unavailable(String),
}

/// Sends `command` to the ledger as `actor` under `key`: the outcome (now or, for a key
/// seen before, the first time's), or the ledger's refusal; [`Unsent`] when neither is
/// known. Each service words the two `Unsent` cases in its own errors.
pub async fn submit(
    writer: &LedgerWriter,
    actor: Actor,
    key: &str,
    command: Command,
) -> Result<Result<Outcome, LedgerError>, Unsent> {
    match writer.submit_as(actor, key.to_string(), command).await {
        Ok(outcome) => Ok(Ok(outcome)),
        Err(WriteError::Ledger(error)) => Ok(Err(error)),
        Err(WriteError::KeyReused(key)) => Err(Unsent::KeyTaken(key)),
        Err(other) => Err(Unsent::Unavailable(other.to_string())),
    }
}

/// Intents a crash or a lost answer may have left pending, in the order they were written.
pub(crate) trait PendingIntents {
    type Intent;
    type Error;

    /// The intents still pending.
    async fn pending(&mut self) -> Result<Vec<Self::Intent>, Self::Error>;

    /// Finishes one: takes its effects again (each acts once under its key) and records
    /// the outcome.
    async fn finish(&mut self, intent: Self::Intent) -> Result<(), Self::Error>;
}

/// Finishes every pending intent of `log`, oldest first, stopping at the first that cannot
/// be finished (a later one may depend on it). Returns how many were finished.
pub(crate) async fn finish_pending<Log: PendingIntents>(
    log: &mut Log,
) -> Result<usize, Log::Error> {
    let pending = log.pending().await?;
    let count = pending.len();
    for intent in pending {
        log.finish(intent).await?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys are stored (ledger idempotency records, bank references): they must come out
    /// exactly as they did before this module existed.
    #[test]
    fn keys_keep_their_stored_shape() {
        let payment = intent_key("payments", "pay_0193");
        assert_eq!(step_key(&payment, 7), "payments:pay_0193:7");
        assert_eq!(
            step_key(&step_key(&payment, 7), "ledger"),
            "payments:pay_0193:7:ledger"
        );
        let operation = intent_key("credit", "client-key");
        assert_eq!(step_key(&operation, 0), "credit:client-key:0");
        assert_eq!(step_key(&operation, "hold"), "credit:client-key:hold");
    }

    proptest! {
        /// The fingerprint is the SHA-256 of the concatenated parts, however they are cut,
        /// so the fingerprints stored before this module still match their retries.
        #[test]
        fn fingerprint_is_the_hash_of_the_concatenation(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..6),
        ) {
            let joined: Vec<u8> = parts.concat();
            let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(
                request_fingerprint(&slices),
                hex::encode(Sha256::digest(&joined))
            );
        }

        /// A record always falls in the same stripe, within range, negative ids included.
        #[test]
        fn a_record_has_one_stripe(number in any::<i64>(), name in ".{0,40}", count in 1usize..300) {
            let stripes = LockStripes::new(count);
            prop_assert!(std::ptr::eq(stripes.of_number(number), stripes.of_number(number)));
            prop_assert!(std::ptr::eq(stripes.of_name(&name), stripes.of_name(&name)));
        }
    }

    #[test]
    fn a_held_stripe_excludes_the_same_record() {
        let stripes = LockStripes::new(64);
        let held = stripes.of_name("pay_1").try_lock().unwrap();
        assert!(stripes.of_name("pay_1").try_lock().is_err());
        drop(held);
        assert!(stripes.of_name("pay_1").try_lock().is_ok());
        assert_eq!(
            usize::try_from((-3_i64).rem_euclid(256)).unwrap(),
            253,
            "negative account numbers fall in a stripe, as before"
        );
        let _account = stripes.of_number(-3).try_lock().unwrap();
    }

    /// A log in memory: intents finish in order, and one that fails stops the rest.
    struct Log {
        pending: Vec<u32>,
        finished: Vec<u32>,
        fails: Option<u32>,
    }

    impl PendingIntents for Log {
        type Intent = u32;
        type Error = String;

        async fn pending(&mut self) -> Result<Vec<u32>, String> {
            Ok(self.pending.clone())
        }

        async fn finish(&mut self, intent: u32) -> Result<(), String> {
            if self.fails == Some(intent) {
                return Err(format!("intent {intent} is in flight"));
            }
            self.finished.push(intent);
            self.pending.retain(|pending| *pending != intent);
            Ok(())
        }
    }

    #[tokio::test]
    async fn pending_intents_finish_oldest_first_and_stop_at_one_in_flight() {
        let mut log = Log {
            pending: vec![1, 2, 3],
            finished: Vec::new(),
            fails: None,
        };
        assert_eq!(finish_pending(&mut log).await, Ok(3));
        assert_eq!(log.finished, vec![1, 2, 3]);
        assert_eq!(finish_pending(&mut log).await, Ok(0));

        let mut log = Log {
            pending: vec![4, 5, 6],
            finished: Vec::new(),
            fails: Some(5),
        };
        assert_eq!(
            finish_pending(&mut log).await,
            Err("intent 5 is in flight".to_string())
        );
        assert_eq!(log.finished, vec![4]);
        assert_eq!(log.pending, vec![5, 6]);
    }
}
