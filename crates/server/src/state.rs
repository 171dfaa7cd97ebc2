//! The state every handler shares.

use crate::auth::KeyCache;
use crate::config::ConsoleSettings;
use crate::rate_limit::{RateLimiter, DEFAULT_LOOKUPS_PER_MINUTE};
use std::sync::Arc;
use tally_core::Clock;
use tally_privacy::Privacy;
use tally_service::credit::decision::CreditService;
use tally_service::payments::PaymentService;
use tally_service::risk_gate::RiskGate;
use tally_store::{Database, LedgerWriter};

/// The batch route's body limit unless configured: 1,000 two-leg entries with short
/// descriptions take about 300 KB.
pub const BATCH_BODY_LIMIT_BYTES_DEFAULT: usize = 2 * 1024 * 1024;

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_limit_bytes: usize,
    /// Largest body of `POST /v1/entries/batch`, which carries up to 1,000 entries.
    pub batch_body_limit_bytes: usize,
    pub page_size_max: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            batch_body_limit_bytes: BATCH_BODY_LIMIT_BYTES_DEFAULT,
            page_size_max: 1000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub database: Database,
    pub writer: LedgerWriter,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyCache>,
    pub limits: Limits,
    /// Keys for customers' personal data; `None` when none are configured, and then the
    /// customer routes answer 503 `privacy_keys_not_configured`.
    pub privacy: Option<Arc<Privacy>>,
    /// The credit service; `None` in processes that do not serve credit (then the credit
    /// routes answer 503 `credit_unavailable`).
    pub credit: Option<Arc<CreditService>>,
    /// The payment service; `None` in processes that do not serve payments (then the
    /// payment routes answer 503 `payments_unavailable`).
    pub payments: Option<Arc<PaymentService>>,
    /// Exact customer lookups allowed per API key, on the state's clock.
    pub lookups: Arc<RateLimiter>,
    /// The operations console's sessions and cookie.
    pub console: ConsoleSettings,
    /// The key that signs evidence packages' seals; `None`: seals carry the digest only.
    pub evidence_signer: Option<Arc<tally_consortium::SignerKey>>,
    /// The risk engine in front of credit activation, authorisations and profile changes;
    /// `None` in a process without the risk engine (then they go through ungated, and the
    /// profile change routes answer 503 `risk_unavailable`).
    pub risk_gate: Option<Arc<RiskGate>>,
    /// The consortium log this lender is a member of, stored in its database; `None`
    /// when not configured (the console's Consortium page then says what to set).
    pub consortium_member: Option<Arc<ConsortiumMember>>,
}

/// This lender as a member of a consortium log: the operator's public key, under which
/// every checkpoint is checked, and the member's name in the log.
#[derive(Debug, Clone)]
pub struct ConsortiumMember {
    pub log_key: tally_consortium::VerifierKey,
    pub member: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.database.backend())
            .field("limits", &self.limits)
            .field("privacy", &self.privacy.is_some())
            .field("lookups", &self.lookups)
            .finish()
    }
}

impl AppState {
    pub fn new(
        database: Database,
        writer: LedgerWriter,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        let lookups = Arc::new(RateLimiter::new(DEFAULT_LOOKUPS_PER_MINUTE, clock.clone()));
        Self {
            database,
            writer,
            clock,
            keys: Arc::new(KeyCache::default()),
            limits,
            privacy: None,
            credit: None,
            payments: None,
            lookups,
            console: ConsoleSettings::default(),
            evidence_signer: None,
            risk_gate: None,
            consortium_member: None,
        }
    }

    /// The same state signing evidence packages with `signer`.
    pub fn with_evidence_signer(mut self, signer: Option<tally_consortium::SignerKey>) -> Self {
        self.evidence_signer = signer.map(Arc::new);
        self
    }

    /// The same state with these personal-data keys.
    pub fn with_privacy(mut self, privacy: Option<Arc<Privacy>>) -> Self {
        self.privacy = privacy;
        self
    }

    /// The same state allowing each API key `per_minute` customer lookups a minute.
    pub fn with_lookups_per_minute(mut self, per_minute: u32) -> Self {
        self.lookups = Arc::new(RateLimiter::new(per_minute, self.clock.clone()));
        self
    }

    pub fn with_credit(mut self, credit: Option<Arc<CreditService>>) -> Self {
        self.credit = credit;
        self
    }

    pub fn with_console(mut self, console: ConsoleSettings) -> Self {
        self.console = console;
        self
    }

    pub fn with_consortium_member(mut self, member: Option<ConsortiumMember>) -> Self {
        self.consortium_member = member.map(Arc::new);
        self
    }

    pub fn with_payments(mut self, payments: Option<Arc<PaymentService>>) -> Self {
        self.payments = payments;
        self
    }

    pub fn with_risk_gate(mut self, gate: Option<Arc<RiskGate>>) -> Self {
        self.risk_gate = gate;
        self
    }
}
