//! API keys: created once and printed once; only a SHA-256 hash of the secret is stored.
//!
//! A key is 32 random bytes, so a fast hash is enough: there is nothing to brute-force
//! that a slow password hash would protect.

use crate::database::Database;
use crate::error::StoreError;
use crate::rows::timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::Timestamp;
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
}

/// A key just created: the only moment its secret exists outside the client.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: Secret<String>,
}

/// The stored form of a key's secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Database {
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<NewApiKey, StoreError> {
        let mut bytes = [0_u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let key = ApiKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            scopes: scopes.to_vec(),
            created_at: now,
        };
        let hash = hash_secret(&secret);
        match self {
            Database::Sqlite(pool) => {
                crate::backend::sqlite::insert_api_key(pool, &key, &hash).await?
            }
            Database::Postgres(pool) => {
                crate::backend::postgres::insert_api_key(pool, &key, &hash).await?
            }
        }
        Ok(NewApiKey {
            key,
            secret: Secret::new(secret),
        })
    }

    /// The live key whose secret is `secret`, if any.
    pub async fn find_api_key(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_secret(secret);
        let row = match self {
            Database::Sqlite(pool) => crate::backend::sqlite::find_api_key(pool, &hash).await?,
            Database::Postgres(pool) => crate::backend::postgres::find_api_key(pool, &hash).await?,
        };
        row.map(|(id, name, scopes, created_at)| {
            Ok(ApiKey {
                id,
                name,
                scopes: scopes.split_whitespace().map(str::to_string).collect(),
                created_at: timestamp(created_at)?,
            })
        })
        .transpose()
    }
}
