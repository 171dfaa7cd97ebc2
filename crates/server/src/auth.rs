//! Authentication by API key (`Authorization: Bearer <key>`) and authorisation by scope.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use tally_ledger::{Account, AccountNamespaces, Actor, LedgerError};
use tally_store::ApiKey;

/// Scopes Tally knows. `admin` grants every scope.
pub const SCOPES: &[&str] = &[
    "admin",
    "ledger:read",
    "ledger:write",
    "metrics:read",
    "pii:read",
    "credit:read",
    "credit:write",
    "payments:read",
    "payments:write",
    "risk:read",
    "risk:write",
    "risk:admin",
    "risk:analyst",
    "consortium:member",
    "recon:read",
    "recon:write",
];

/// Who is calling: the key that authenticated the request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The account-code namespaces the key is limited to, if it is.
    pub account_namespaces: Option<AccountNamespaces>,
}

impl Principal {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|held| held == scope || held == "admin")
    }

    /// Who writes to the ledger for this key: a client, limited to the key's account-code
    /// namespaces if it has any.
    pub fn actor(&self) -> Actor {
        match &self.account_namespaces {
            Some(namespaces) => Actor::LimitedClient(namespaces.clone()),
            None => Actor::Client,
        }
    }

    /// Refuses (`403 account_outside_key_namespace`) to show a ledger account whose code
    /// lies outside the key's namespaces.
    pub fn may_read(&self, account: &Account) -> Result<(), ApiError> {
        match &self.account_namespaces {
            Some(namespaces) if !namespaces.contains(&account.code) => {
                Err(LedgerError::AccountOutsideKeyNamespace {
                    account_id: Some(account.id),
                    code: account.code.clone(),
                    namespaces: namespaces.prefixes().to_vec(),
                }
                .into())
            }
            _ => Ok(()),
        }
    }

    /// The key as the services name who asks.
    pub fn caller(&self) -> tally_service::caller::Caller {
        tally_service::caller::Caller {
            key_id: self.key_id.clone(),
            name: self.name.clone(),
        }
    }

    /// Refuses the request with 403 unless the key holds `scope` (or `admin`).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "API key {:?} lacks scope {scope}",
                self.name
            )))
        }
    }
}

/// How long a key looked up in the database is trusted without looking again. This bounds
/// how long a key revoked (or rotated out) through any process, or by `tally keys` on the
/// database, keeps working in this one: every `tally serve` on a database reads it again
/// within this time. One read per key and second is nothing beside a busy client's requests.
pub const CACHE_TIME_TO_LIVE: Duration = Duration::from_secs(1);
/// Most keys kept in the cache; it is emptied when full.
const CACHE_ENTRIES_MAX: usize = 10_000;

/// Recently verified keys by the hash of their secret, so that a busy client does not cost
/// a database read per request. Raw secrets are never kept.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, CachedKey>>,
}

/// A verified key: who it is, when it expires, and when it was read from the database.
type CachedKey = (Principal, Option<Timestamp>, Instant);

impl KeyCache {
    /// The cached principal, unless its entry is older than [`CACHE_TIME_TO_LIVE`] or the
    /// key's expiry has passed at `now`.
    fn get(&self, hash: &str, now: Timestamp) -> Option<Principal> {
        let entries = self.entries.read().ok()?;
        let (principal, expires_at, at) = entries.get(hash)?;
        let fresh = at.elapsed() < CACHE_TIME_TO_LIVE;
        let unexpired = expires_at.is_none_or(|expiry| now < expiry);
        (fresh && unexpired).then(|| principal.clone())
    }

    fn put(&self, hash: String, principal: Principal, expires_at: Option<Timestamp>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(hash, (principal, expires_at, Instant::now()));
        }
    }

    /// Forgets a key at once in this process (after revoking it here); other processes
    /// forget it within [`CACHE_TIME_TO_LIVE`].
    pub fn forget_key(&self, key_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (principal, _, _)| principal.key_id != key_id);
        }
    }
}

/// Who a stored key is, as a request's principal.
pub fn principal_of(key: ApiKey) -> Principal {
    Principal {
        key_id: key.id,
        name: key.name,
        scopes: key.scopes,
        account_namespaces: AccountNamespaces::new(&key.account_namespaces),
    }
}

/// The secret of an `Authorization` header value: the scheme is `Bearer` in any letter
/// case (RFC 7235: schemes are case-insensitive), then one or more spaces, then the key.
fn bearer_secret(value: &str) -> Option<&str> {
    let (scheme, secret) = value.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let secret = secret.trim();
    (!secret.is_empty()).then_some(secret)
}

/// Middleware: resolves the bearer key to a [`Principal`] in the request's extensions, or
/// answers 401.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <API key>"))?;
    let secret = header
        .to_str()
        .ok()
        .and_then(bearer_secret)
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <API key>"))?;
    let principal = principal_of_secret(&state, secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown, expired or revoked API key"))?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// The principal of an API key's secret, or `None` for an unknown, expired or revoked key:
/// the one verification of a key, for the API's bearer header and the console's sign-in
/// alike (with the cache of [`KeyCache`]).
pub async fn principal_of_secret(
    state: &AppState,
    secret: &str,
) -> Result<Option<Principal>, tally_store::StoreError> {
    let hash = tally_store::keys::hash_secret(secret);
    let now = state.clock.now();
    if let Some(principal) = state.keys.get(&hash, now) {
        return Ok(Some(principal));
    }
    let Some(key) = state.database.find_api_key(secret, now).await? else {
        return Ok(None);
    };
    let expires_at = key.expires_at;
    let principal = principal_of(key);
    state.keys.put(hash, principal.clone(), expires_at);
    Ok(Some(principal))
}

/// Revokes a key in the database and forgets it in this process at once; every other
/// process on the database refuses it within [`CACHE_TIME_TO_LIVE`].
pub async fn revoke(
    state: &AppState,
    key_id: &str,
) -> Result<ApiKey, tally_store::KeyLifecycleError> {
    let key = state
        .database
        .revoke_api_key(key_id, state.clock.now())
        .await?;
    state.keys.forget_key(key_id);
    Ok(key)
}

/// Middleware for a group of routes: refuses with 403 unless the caller's key holds the
/// scope given as this layer's state. It runs before the body is read, so a key without
/// the scope learns nothing about the request it sent.
pub async fn require_scope(
    State(scope): State<&'static str>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <API key>"))?;
    principal.require(scope)?;
    Ok(next.run(request).await)
}
