//! API keys: created once and printed once; only a SHA-256 hash of the secret is stored.
//!
//! A key is 32 random bytes, so a fast hash is enough: there is nothing to brute-force
//! that a slow password hash would protect.
//!
//! A key lives until it is revoked or its expiry passes. Rotation makes a new key with the
//! old one's name, scopes and account namespaces and lets the old one expire after a grace
//! period, so that a client can switch without a moment in which neither key works.
//!
//! A key may be limited to account-code namespaces (`merchant-a-`): it then opens, moves and
//! reads only ledger accounts whose codes start with one of them (see
//! [`tally_ledger::AccountNamespaces`]).

use crate::database::Database;
use crate::error::StoreError;
use crate::rows::{micros, timestamp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tally_core::Secret;

/// The prefix of every key, so that a leaked key is easy to recognise in logs or code.
pub const KEY_PREFIX: &str = "tally_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    /// After this instant the key authenticates nothing.
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// Account-code prefixes the key is limited to; empty when it is limited by scope alone.
    pub account_namespaces: Vec<String>,
}

impl ApiKey {
    /// Whether the key authenticates at `now`: not revoked, and not past its expiry.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }

    /// `live`, `expired` or `revoked` at `now`.
    pub fn status(&self, now: Timestamp) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.is_live(now) {
            "live"
        } else {
            "expired"
        }
    }
}

/// A key just created: the only moment its secret exists outside the client.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: Secret<String>,
}

/// Why a key could not be revoked or rotated; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyLifecycleError {
    #[error("no API key {0}")]
    NotFound(String),
    #[error("API key {0} is already revoked")]
    Revoked(String),
    #[error("API key {0} expired at {1}")]
    Expired(String, Timestamp),
    #[error("the expiry {0} is not after now ({1})")]
    ExpiryNotInFuture(Timestamp, Timestamp),
    #[error("the grace period must not be negative")]
    NegativeGrace,
    #[error("account namespace {0:?} {1}")]
    InvalidAccountNamespace(String, &'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stored form of a key's secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

type KeyRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn key_of(row: KeyRow) -> Result<ApiKey, StoreError> {
    let (id, name, scopes, created_at, expires_at, revoked_at, rotated_from, namespaces) = row;
    let account_namespaces = match namespaces {
        None => Vec::new(),
        Some(text) => serde_json::from_str(&text).map_err(|error| {
            StoreError::Corrupt(format!("account namespaces of API key {id}: {error}"))
        })?,
    };
    Ok(ApiKey {
        id,
        name,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        created_at: timestamp(created_at)?,
        expires_at: expires_at.map(timestamp).transpose()?,
        revoked_at: revoked_at.map(timestamp).transpose()?,
        rotated_from,
        account_namespaces,
    })
}

/// The stored form of a key's namespaces: a JSON array, or NULL for none.
fn namespaces_column(namespaces: &[String]) -> Option<String> {
    (!namespaces.is_empty())
        .then(|| serde_json::to_string(namespaces).unwrap_or_else(|_| "[]".to_string()))
}

/// Longest account namespace, in characters: the longest account code the API documents.
pub const ACCOUNT_NAMESPACE_CHARACTERS_MAX: usize = 256;

/// Refuses a namespace that would match every code (empty or blank), that no account code
/// could start with (a character codes may not hold), or longer than a code.
fn check_namespaces(namespaces: &[String]) -> Result<(), KeyLifecycleError> {
    for namespace in namespaces {
        let refuse = |reason| {
            Err(KeyLifecycleError::InvalidAccountNamespace(
                namespace.clone(),
                reason,
            ))
        };
        if namespace.trim().is_empty() {
            return refuse("must not be empty or blank: it would match every account code");
        }
        if namespace.chars().any(tally_ledger::forbidden_in_code) {
            return refuse(
                "holds a control or bidirectional formatting character, which no account code may hold",
            );
        }
        if namespace.chars().count() > ACCOUNT_NAMESPACE_CHARACTERS_MAX {
            return refuse("is longer than 256 characters");
        }
    }
    Ok(())
}

/// A fresh key (id and secret) with these attributes.
fn mint(
    name: &str,
    scopes: &[String],
    account_namespaces: &[String],
    expires_at: Option<Timestamp>,
    rotated_from: Option<String>,
    now: Timestamp,
) -> (ApiKey, Secret<String>) {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let key = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        scopes: scopes.to_vec(),
        created_at: now,
        expires_at,
        revoked_at: None,
        rotated_from,
        account_namespaces: account_namespaces.to_vec(),
    };
    (key, Secret::new(secret))
}

macro_rules! key_sql {
    ($module:ident, $database:ty) => {
        mod $module {
            use super::*;
            use sqlx::Pool;

            const KEY_COLUMNS: &str = "SELECT id, name, scopes, created_at, expires_at, \
                revoked_at, rotated_from, account_namespaces FROM api_keys";

            async fn insert_in(
                connection: &mut <$database as sqlx::Database>::Connection,
                key: &ApiKey,
                secret_hash: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO api_keys (id, name, secret_hash, scopes, created_at, expires_at, \
                     rotated_from, account_namespaces) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&key.id)
                .bind(&key.name)
                .bind(secret_hash)
                .bind(key.scopes.join(" "))
                .bind(micros(key.created_at))
                .bind(key.expires_at.map(micros))
                .bind(&key.rotated_from)
                .bind(namespaces_column(&key.account_namespaces))
                .execute(&mut *connection)
                .await?;
                Ok(())
            }

            pub async fn insert(
                pool: &Pool<$database>,
                key: &ApiKey,
                secret_hash: &str,
            ) -> Result<(), StoreError> {
                let mut connection = pool.acquire().await?;
                insert_in(&mut connection, key, secret_hash).await
            }

            pub async fn find_live(
                pool: &Pool<$database>,
                secret_hash: &str,
                now: i64,
            ) -> Result<Option<KeyRow>, StoreError> {
                let sql = format!(
                    "{KEY_COLUMNS} WHERE secret_hash = $1 AND revoked_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $2)"
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(secret_hash)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?)
            }

            pub async fn by_id(
                pool: &Pool<$database>,
                id: &str,
            ) -> Result<Option<KeyRow>, StoreError> {
                let sql = format!("{KEY_COLUMNS} WHERE id = $1");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?)
            }

            pub async fn all(pool: &Pool<$database>) -> Result<Vec<KeyRow>, StoreError> {
                let sql = format!("{KEY_COLUMNS} ORDER BY created_at, id");
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?)
            }

            /// Marks the key revoked; false when it does not exist or was revoked already.
            pub async fn revoke(
                pool: &Pool<$database>,
                id: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
                Ok(updated == 1)
            }

            /// In one transaction: the old key, if still live at `now`, expires at
            /// `old_expires_at` (never later than it would have), and the new key is stored.
            /// False when the old key was not live any more.
            pub async fn rotate(
                pool: &Pool<$database>,
                old_id: &str,
                old_expires_at: i64,
                new_key: &ApiKey,
                new_secret_hash: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut transaction = pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE api_keys SET expires_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(old_id)
                .bind(old_expires_at)
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
                if updated != 1 {
                    transaction.rollback().await?;
                    return Ok(false);
                }
                insert_in(&mut transaction, new_key, new_secret_hash).await?;
                transaction.commit().await?;
                Ok(true)
            }
        }
    };
}

key_sql!(sqlite, sqlx::Sqlite);
key_sql!(postgres, sqlx::Postgres);

macro_rules! on_pool {
    ($database:expr, $function:ident ( $($argument:expr),* )) => {
        match $database {
            Database::Sqlite(pool) => sqlite::$function(pool, $($argument),*).await,
            Database::Postgres(pool) => postgres::$function(pool, $($argument),*).await,
        }
    };
}

impl Database {
    /// A new key without expiry.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<NewApiKey, StoreError> {
        let (key, secret) = mint(name, scopes, &[], None, None, now);
        on_pool!(self, insert(&key, &hash_secret(secret.expose())))?;
        Ok(NewApiKey { key, secret })
    }

    /// A new key that stops authenticating at `expires_at` (which must be after `now`).
    pub async fn create_api_key_expiring(
        &self,
        name: &str,
        scopes: &[String],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<NewApiKey, KeyLifecycleError> {
        self.create_api_key_in_namespaces(name, scopes, &[], expires_at, now)
            .await
    }

    /// A new key limited to the ledger accounts whose codes start with one of
    /// `account_namespaces` (none: not limited by code), stopping at `expires_at`.
    pub async fn create_api_key_in_namespaces(
        &self,
        name: &str,
        scopes: &[String],
        account_namespaces: &[String],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<NewApiKey, KeyLifecycleError> {
        check_expiry(expires_at, now)?;
        check_namespaces(account_namespaces)?;
        let (key, secret) = mint(name, scopes, account_namespaces, expires_at, None, now);
        on_pool!(self, insert(&key, &hash_secret(secret.expose())))?;
        Ok(NewApiKey { key, secret })
    }

    /// The key whose secret is `secret`, if it is live at `now` (not revoked, not expired).
    pub async fn find_api_key(
        &self,
        secret: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_secret(secret);
        on_pool!(self, find_live(&hash, micros(now)))?
            .map(key_of)
            .transpose()
    }

    /// A key by its id, whatever its status.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        on_pool!(self, by_id(id))?.map(key_of).transpose()
    }

    /// Every key, live or not, oldest first. Secrets are not stored, so none is returned.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        on_pool!(self, all())?.into_iter().map(key_of).collect()
    }

    /// Revokes a key: from the commit on, no lookup finds it.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<ApiKey, KeyLifecycleError> {
        if !on_pool!(self, revoke(id, micros(now)))? {
            return Err(match self.api_key(id).await? {
                None => KeyLifecycleError::NotFound(id.to_string()),
                Some(_) => KeyLifecycleError::Revoked(id.to_string()),
            });
        }
        self.api_key(id)
            .await?
            .ok_or_else(|| KeyLifecycleError::NotFound(id.to_string()))
    }

    /// Rotates a live key: a new key with its name, scopes and account namespaces (and
    /// `expires_at`), while the old one keeps working for `grace` (or until its own expiry, if sooner) and then stops.
    pub async fn rotate_api_key(
        &self,
        id: &str,
        grace: SignedDuration,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<NewApiKey, KeyLifecycleError> {
        if grace.is_negative() {
            return Err(KeyLifecycleError::NegativeGrace);
        }
        check_expiry(expires_at, now)?;
        let old = self.live_key(id, now).await?;
        let grace_end = now
            .checked_add(grace)
            .map_err(|_| KeyLifecycleError::NegativeGrace)?;
        let old_expires_at = old
            .expires_at
            .map_or(grace_end, |expiry| expiry.min(grace_end));
        let (key, secret) = mint(
            &old.name,
            &old.scopes,
            &old.account_namespaces,
            expires_at,
            Some(old.id.clone()),
            now,
        );
        let hash = hash_secret(secret.expose());
        if !on_pool!(
            self,
            rotate(id, micros(old_expires_at), &key, &hash, micros(now))
        )? {
            // Revoked or expired since it was read.
            self.live_key(id, now).await?;
            return Err(KeyLifecycleError::Revoked(id.to_string()));
        }
        Ok(NewApiKey { key, secret })
    }

    async fn live_key(&self, id: &str, now: Timestamp) -> Result<ApiKey, KeyLifecycleError> {
        let key = self
            .api_key(id)
            .await?
            .ok_or_else(|| KeyLifecycleError::NotFound(id.to_string()))?;
        if key.revoked_at.is_some() {
            return Err(KeyLifecycleError::Revoked(id.to_string()));
        }
        match key.expires_at {
            Some(expiry) if expiry <= now => {
                Err(KeyLifecycleError::Expired(id.to_string(), expiry))
            }
            _ => Ok(key),
        }
    }
}

fn check_expiry(expires_at: Option<Timestamp>, now: Timestamp) -> Result<(), KeyLifecycleError> {
    match expires_at {
        Some(expiry) if expiry <= now => Err(KeyLifecycleError::ExpiryNotInFuture(expiry, now)),
        _ => Ok(()),
    }
}
