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

/// The consortium log this lender is a member of, when the log is stored in Tally's own
/// database (`tally consortium serve` on it, or `tally demo`'s): the operator's public key
/// (a C2SP verifier key, `name+hash+base64`) and this lender's member name. The console's
/// Consortium page checks the log under that key; without both it says what to set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsortiumMemberSettings {
    pub log_key: Option<String>,
    pub member: Option<String>,
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
    /// At least 1; 30 by default (a burst of 30, then one every 2 s).
    pub lookups_per_minute: u32,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            encryption_keys: BTreeMap::new(),
            active_encryption_key: None,
            blind_index_key: None,
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
        if let Some(active) = &self.privacy.active_encryption_key {
            tally_privacy::FieldCipher::new(&self.privacy.encryption_keys, active)?;
        }
        if let Some(key) = &self.privacy.blind_index_key {
            tally_privacy::BlindIndex::new(key)?;
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
