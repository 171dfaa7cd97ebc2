//! Configuration: defaults in code, then a TOML file, then `TALLY__SECTION__KEY` environment
//! variables (e.g. `TALLY__SERVER__LISTEN=0.0.0.0:8080`), then command-line flags. Secrets
//! are `Secret` values and never appear in Debug output or logs.

use crate::state::Limits;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use tally_core::Secret;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub ledger: LedgerConfig,
    pub privacy: PrivacyConfig,
    pub log: LogConfig,
    /// Files replacing the credit defaults Tally ships (catalog, rules, scorecard).
    pub credit: tally_service::credit::decision::CreditFiles,
    pub payments: PaymentsSettings,
    pub console: ConsoleSettings,
    pub consortium_log: ConsortiumLogSettings,
    pub risk: RiskSettings,
    pub consortium_member: ConsortiumMemberSettings,
}

/// The risk service: the key that signs evidence packages, and how often stolen-account
/// claims whose credit steps failed are tried again.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSettings {
    /// A C2SP signer key (`PRIVATE+KEY+<name>+<id>+<key>`, the secret file `tally consortium
    /// keygen` writes). Without it, evidence packages carry their digest unsigned.
    pub evidence_signing_key: Option<Secret<String>>,
    /// Seconds between retries of claims' unfinished credit steps (`0`: only at start).
    pub claim_follow_up_interval_seconds: u64,
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self {
            evidence_signing_key: None,
            claim_follow_up_interval_seconds: 60,
        }
    }
}

impl RiskSettings {
    /// The evidence signer, parsed from its configured key.
    pub fn evidence_signer(&self) -> Result<Option<tally_consortium::SignerKey>, ConfigError> {
        self.evidence_signing_key
            .as_ref()
            .map(|key| {
                tally_consortium::SignerKey::parse(key.expose().trim()).map_err(|error| {
                    ConfigError::Invalid(format!("risk.evidence_signing_key: {error}"))
                })
            })
            .transpose()
    }
}

/// The consortium log this lender is a member of. `log_key` (the operator's public key, a
/// C2SP verifier key `name+hash+base64`) and `member` (this lender's member name) let the
/// console's Consortium page check a log stored in Tally's own database. `url`,
/// `consortium` and `key` (this member's C2SP signer key, `PRIVATE+KEY+<member>+...`, as
/// `tally consortium keygen` writes it; its name must be `member`) make Tally a member
/// over HTTP (`log_key` then required: every answer is checked against a checkpoint the
/// operator signed): every risk decision looks the event's device, card number, delivery
/// address and receiving phone up in the log (waiting at most
/// `lookup_timeout_ms`, answers kept `hit_seconds` / `miss_seconds`, at most
/// `queries_per_day` queries a UTC day), and confirmed fraud is published to it by a
/// worker every `publish_interval_seconds`, records live `record_days`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsortiumMemberSettings {
    pub log_key: Option<String>,
    pub member: Option<String>,
    pub url: Option<String>,
    pub consortium: Option<String>,
    pub key: Option<Secret<String>>,
    pub lookup_timeout_ms: u64,
    pub hit_seconds: u32,
    pub miss_seconds: u32,
    pub queries_per_day: u32,
    pub record_days: u32,
    pub publish_interval_seconds: u64,
}

impl Default for ConsortiumMemberSettings {
    fn default() -> Self {
        Self {
            log_key: None,
            member: None,
            url: None,
            consortium: None,
            key: None,
            lookup_timeout_ms: 50,
            hit_seconds: 3_600,
            miss_seconds: 600,
            queries_per_day: 10_000,
            record_days: 365,
            publish_interval_seconds: 10,
        }
    }
}

impl ConsortiumMemberSettings {
    /// The operator's key and the member name, both set and the key well formed; `None`
    /// when neither is set.
    pub fn member(&self) -> Result<Option<crate::state::ConsortiumMember>, ConfigError> {
        match (&self.log_key, &self.member) {
            (None, None) => Ok(None),
            (Some(key), Some(member)) if !member.trim().is_empty() => {
                let log_key = tally_consortium::VerifierKey::parse(key.trim()).map_err(|error| {
                    ConfigError::Invalid(format!(
                        "consortium_member.log_key is not a verifier key (name+hash+base64): {error}"
                    ))
                })?;
                Ok(Some(crate::state::ConsortiumMember {
                    log_key,
                    member: member.trim().to_string(),
                }))
            }
            _ => Err(ConfigError::Invalid(
                "consortium_member needs both log_key and member".into(),
            )),
        }
    }

    /// This lender as a member over HTTP, when `url` is set (then `consortium` and `key`
    /// are needed, and the key's name must be `member` when that is set).
    pub fn client(
        &self,
    ) -> Result<Option<tally_service::consortium::member_client::MemberSettings>, ConfigError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let invalid =
            |message: String| ConfigError::Invalid(format!("consortium_member.{message}"));
        let (Some(consortium), Some(key), Some(log_key)) =
            (&self.consortium, &self.key, &self.log_key)
        else {
            return Err(invalid(
                "url needs consortium (the log's name), key (this member's signer key) and \
                 log_key (the operator's verifier key, which every answer is checked against)"
                    .into(),
            ));
        };
        let log_key = tally_consortium::VerifierKey::parse(log_key.trim())
            .map_err(|error| invalid(format!("log_key: {error}")))?;
        let key = tally_consortium::SignerKey::parse(key.expose().trim())
            .map_err(|error| invalid(format!("key: {error}")))?;
        if let Some(member) = &self.member {
            if member.trim() != key.name() {
                return Err(invalid(format!(
                    "key is {:?}'s, not member {:?}'s",
                    key.name(),
                    member.trim()
                )));
            }
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("url must start with http:// or https://".into()));
        }
        if self.lookup_timeout_ms == 0 || self.lookup_timeout_ms > 10_000 {
            return Err(invalid("lookup_timeout_ms must be 1 to 10000".into()));
        }
        Ok(Some(
            tally_service::consortium::member_client::MemberSettings {
                url: url.clone(),
                consortium: consortium.clone(),
                key: std::sync::Arc::new(key),
                log_key,
                lookup_timeout: std::time::Duration::from_millis(self.lookup_timeout_ms),
                hit_seconds: i64::from(self.hit_seconds),
                miss_seconds: i64::from(self.miss_seconds),
                queries_per_day: self.queries_per_day,
                record_days: u64::from(self.record_days),
            },
        ))
    }
}

/// The consortium log's operator (`tally consortium serve`): how often it re-reads its
/// stored entries and tiles against the signed tree and alarms on any that no longer hash
/// to it (`0`: never; a check reads the whole log).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsortiumLogSettings {
    pub integrity_check_interval_seconds: u64,
}

impl Default for ConsortiumLogSettings {
    fn default() -> Self {
        Self {
            integrity_check_interval_seconds:
                tally_service::consortium::INTEGRITY_CHECK_INTERVAL_SECONDS_DEFAULT,
        }
    }
}

/// The operations console under `/console`: how long a session may sit unused, and whether
/// its cookie is always marked `Secure` (set this behind a TLS-terminating proxy that does
/// not send `X-Forwarded-Proto: https`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// A session unused for this long ends; the next page asks to sign in again.
    pub idle_timeout_seconds: u64,
    pub secure_cookie: bool,
}

/// Longest idle timeout accepted: a day.
pub const CONSOLE_IDLE_TIMEOUT_SECONDS_MAX: u64 = 24 * 3600;

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            idle_timeout_seconds: 900,
            secure_cookie: false,
        }
    }
}

/// The payment service: the channel that moves card money (none: card sources answer
/// `503 channel_not_configured`, the other sources work), and how often payments left
/// mid-way are finished.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSettings {
    /// The channel's base URL, e.g. the bank simulator's `http://127.0.0.1:7070/`.
    pub channel_url: Option<String>,
    /// The channel's shared secret (bearer token and notification signing key).
    pub channel_secret: Option<Secret<String>>,
    /// One channel call, connection to last byte; past it the outcome is unknown and the
    /// step stays in flight until a retry or recovery finishes it.
    pub channel_timeout_ms: u64,
    /// The credit product a credit-line leg becomes.
    pub credit_product: String,
    /// How often the recovery worker looks for payments left mid-way or past their deadline.
    pub recovery_interval_ms: u64,
    /// The vault's annual yield, a decimal string (`"0.0185"` is 1.85 % a year).
    pub vault_annual_rate: String,
    /// How often the webhook worker sends the merchants' events due.
    pub webhook_interval_ms: u64,
    /// How many days delivered and given-up webhook events, their deliveries and attempts
    /// are kept (and listed) before the webhook worker removes them; at least 1.
    pub webhook_retention_days: u32,
}

impl Default for PaymentsSettings {
    fn default() -> Self {
        Self {
            channel_url: None,
            channel_secret: None,
            channel_timeout_ms: 5_000,
            credit_product: "installment".into(),
            recovery_interval_ms: 5_000,
            vault_annual_rate: tally_service::payments::checkout::VAULT_ANNUAL_RATE_DEFAULT.into(),
            webhook_interval_ms: 1_000,
            webhook_retention_days: tally_service::payments::webhooks::RETENTION_DAYS_DEFAULT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Largest body of `POST /v1/entries/batch` (up to 1,000 entries).
    pub batch_body_limit_bytes: usize,
    /// Most rows one page of a listing returns.
    pub page_size_max: i64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 64 * 1024,
            batch_body_limit_bytes: crate::state::BATCH_BODY_LIMIT_BYTES_DEFAULT,
            page_size_max: 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://tally.db` (the default, in the working directory) or `postgres://...`.
    /// A secret because PostgreSQL URLs can carry a password.
    pub url: Secret<String>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://tally.db".into()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    pub batch_size_max: usize,
    pub queue_length_max: usize,
    /// The largest amount one entry (per currency) or hold may move, in minor units.
    pub entry_amount_max: i64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            batch_size_max: 512,
            queue_length_max: 8192,
            entry_amount_max: tally_ledger::ENTRY_AMOUNT_MAX_DEFAULT,
        }
    }
}

/// Keys for personal data: AES-256-GCM field keys by id (base64 of 32 bytes), the id that
/// seals new values, and the HMAC key of blind indexes; and how many exact customer lookups
/// (by phone or national id) each API key may make per minute.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    pub encryption_keys: BTreeMap<String, Secret<String>>,
    pub active_encryption_key: Option<String>,
    pub blind_index_key: Option<Secret<String>>,
    /// The blind index key being rotated away from: kept while `tally privacy
    /// rotate-blind-index` recomputes the stored indexes under `blind_index_key`, so lookups
    /// find customers not walked yet. Needs `risk_fingerprint_key`.
    pub previous_blind_index_key: Option<Secret<String>>,
    /// The key of risk control's card and address fingerprints, when it is not the blind
    /// index key: set it to the old blind index key before rotating that one, so fingerprints
    /// made before still match (their values were never stored to recompute them).
    pub risk_fingerprint_key: Option<Secret<String>>,
    /// At least 1; 30 by default (a burst of 30, then one every 2 s).
    pub lookups_per_minute: u32,
}

impl PrivacyConfig {
    /// The personal-data keys, `None` when the encryption or blind index key is missing.
    pub fn keys(&self) -> Option<Result<tally_privacy::Privacy, tally_privacy::PrivacyError>> {
        let active = self.active_encryption_key.as_deref()?;
        let blind_index_key = self.blind_index_key.as_ref()?;
        Some((|| {
            let mut privacy =
                tally_privacy::Privacy::new(&self.encryption_keys, active, blind_index_key)?;
            if let Some(previous) = &self.previous_blind_index_key {
                privacy = privacy.with_previous_blind_index_key(previous)?;
            }
            if let Some(key) = &self.risk_fingerprint_key {
                privacy = privacy.with_fingerprint_key(key)?;
            }
            Ok(privacy)
        })())
    }
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            encryption_keys: BTreeMap::new(),
            active_encryption_key: None,
            blind_index_key: None,
            previous_blind_index_key: None,
            risk_fingerprint_key: None,
            lookups_per_minute: crate::rate_limit::DEFAULT_LOOKUPS_PER_MINUTE,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `tally_server=debug,info`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: server.listen {0:?} is not an address such as 127.0.0.1:8080")]
    Listen(String),
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration: privacy: {0}")]
    Privacy(#[from] tally_privacy::PrivacyError),
}

impl Config {
    /// Loads defaults, then `file` if given, then `TALLY__...` variables, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("TALLY__").split("__"));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_address()?;
        if self.server.body_limit_bytes == 0
            || self.server.batch_body_limit_bytes == 0
            || self.ledger.batch_size_max == 0
        {
            return Err(ConfigError::Invalid(
                "body_limit_bytes and batch_size_max must be positive".into(),
            ));
        }
        if self.ledger.entry_amount_max <= 0 {
            return Err(ConfigError::Invalid(
                "ledger.entry_amount_max must be a positive number of minor units".into(),
            ));
        }
        if self.privacy.lookups_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "privacy.lookups_per_minute must be at least 1".into(),
            ));
        }
        if !(1..=CONSOLE_IDLE_TIMEOUT_SECONDS_MAX).contains(&self.console.idle_timeout_seconds) {
            return Err(ConfigError::Invalid(format!(
                "console.idle_timeout_seconds must be 1 to {CONSOLE_IDLE_TIMEOUT_SECONDS_MAX}"
            )));
        }
        self.consortium_member.member()?;
        self.consortium_member.client()?;
        if let Some(active) = &self.privacy.active_encryption_key {
            tally_privacy::FieldCipher::new(&self.privacy.encryption_keys, active)?;
        }
        if let Some(key) = &self.privacy.blind_index_key {
            tally_privacy::BlindIndex::new(key)?;
        }
        // Rotating the blind index key without a fingerprint key of its own would change
        // every card and address fingerprint with it: the operator says which key they keep.
        if self.privacy.previous_blind_index_key.is_some()
            && self.privacy.risk_fingerprint_key.is_none()
        {
            return Err(ConfigError::Invalid(
                "privacy.previous_blind_index_key needs privacy.risk_fingerprint_key: set it to \
                 the key risk fingerprints were made with (the old blind index key), or they \
                 all change"
                    .into(),
            ));
        }
        if let Some(Err(error)) = self.privacy.keys() {
            return Err(error.into());
        }
        self.credit
            .load()
            .map_err(|error| ConfigError::Invalid(format!("credit: {error}")))?;
        self.risk.evidence_signer()?;
        Ok(())
    }

    pub fn listen_address(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|_| ConfigError::Listen(self.server.listen.clone()))
    }

    pub fn limits(&self) -> Limits {
        Limits {
            body_limit_bytes: self.server.body_limit_bytes,
            batch_body_limit_bytes: self.server.batch_body_limit_bytes,
            page_size_max: self.server.page_size_max,
        }
    }
}

#[cfg(test)]
// figment's Jail returns its own large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults_and_secrets_stay_hidden() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tally.toml",
                r#"
                [server]
                listen = "127.0.0.1:9000"
                [database]
                url = "postgres://tally:hunter2@db/tally"
                [privacy]
                encryption_keys = { "2026" = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" }
                active_encryption_key = "2026"
                lookups_per_minute = 12
                "#,
            )?;
            jail.set_env("TALLY__SERVER__LISTEN", "127.0.0.1:9100");
            let config =
                Config::load(Some(Path::new("tally.toml"))).map_err(|error| error.to_string())?;
            assert_eq!(config.server.listen, "127.0.0.1:9100");
            assert_eq!(config.privacy.lookups_per_minute, 12);
            assert_eq!(config.console.idle_timeout_seconds, 900);
            assert!(!config.console.secure_cookie);
            assert_eq!(Config::default().privacy.lookups_per_minute, 30);
            assert_eq!(
                config.database.url.expose(),
                "postgres://tally:hunter2@db/tally"
            );
            let printed = format!("{config:?}");
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(!printed.contains("AQEBAQEB"), "{printed}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[server]\nlisten_on = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("typo.toml"))).is_err());
            jail.create_file("bad.toml", "[server]\nlisten = \"not an address\"\n")?;
            assert!(matches!(
                Config::load(Some(Path::new("bad.toml"))),
                Err(ConfigError::Listen(_))
            ));
            jail.create_file(
                "key.toml",
                "[privacy]\nencryption_keys = { a = \"c2hvcnQ=\" }\nactive_encryption_key = \"a\"\n",
            )?;
            assert!(matches!(
                Config::load(Some(Path::new("key.toml"))),
                Err(ConfigError::Privacy(_))
            ));
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            jail.create_file("idle.toml", "[console]\nidle_timeout_seconds = 0\n")?;
            assert!(matches!(
                Config::load(Some(Path::new("idle.toml"))),
                Err(ConfigError::Invalid(_))
            ));
            jail.create_file("zero.toml", "[privacy]\nlookups_per_minute = 0\n")?;
            assert!(matches!(
                Config::load(Some(Path::new("zero.toml"))),
                Err(ConfigError::Invalid(_))
            ));
            // An evidence key that does not parse is refused at start, naming the key.
            jail.create_file(
                "evidence.toml",
                "[risk]\nevidence_signing_key = \"PRIVATE+KEY+x+00000000+bm90IGEga2V5\"\n",
            )?;
            match Config::load(Some(Path::new("evidence.toml"))) {
                Err(ConfigError::Invalid(message)) => {
                    assert!(
                        message.starts_with("risk.evidence_signing_key"),
                        "{message}"
                    )
                }
                other => panic!("a bad evidence key was accepted: {other:?}"),
            }
            let signer = tally_consortium::SignerKey::from_seed(
                "evidence.tally.test",
                tally_consortium::KeyType::Ed25519,
                [1; 32],
            )
            .expect("a key");
            jail.create_file(
                "signed.toml",
                &format!(
                    "[risk]\nevidence_signing_key = \"{}\"\n",
                    signer.to_secret_string()
                ),
            )?;
            let config = Config::load(Some(Path::new("signed.toml"))).expect("a good key loads");
            let loaded = config
                .risk
                .evidence_signer()
                .expect("parses")
                .expect("present");
            assert_eq!(loaded.verifier(), signer.verifier());
            Ok(())
        });
    }
}
