//! Authentication by API key (`Authorization: Bearer <key>`) and authorisation by scope.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
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
    "risk:read",
    "risk:write",
    "risk:analyst",
    "consortium:member",
];

/// Who is calling: the key that authenticated the request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|held| held == scope || held == "admin")
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

/// How long a key looked up in the database is trusted without looking again.
const CACHE_TIME_TO_LIVE: Duration = Duration::from_secs(30);
/// Most keys kept in the cache; it is emptied when full.
const CACHE_ENTRIES_MAX: usize = 10_000;

/// Recently verified keys by the hash of their secret, so that a busy client does not cost
/// a database read per request. Raw secrets are never kept.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, (Principal, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.read().ok()?;
        let (principal, at) = entries.get(hash)?;
        (at.elapsed() < CACHE_TIME_TO_LIVE).then(|| principal.clone())
    }

    fn put(&self, hash: String, principal: Principal) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(hash, (principal, Instant::now()));
        }
    }
}

fn principal_of(key: ApiKey) -> Principal {
    Principal {
        key_id: key.id,
        name: key.name,
        scopes: key.scopes,
    }
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
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <API key>"))?;
    let hash = tally_store::keys::hash_secret(secret);
    let principal = match state.keys.get(&hash) {
        Some(principal) => principal,
        None => {
            let key = state
                .database
                .find_api_key(secret)
                .await?
                .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
            let principal = principal_of(key);
            state.keys.put(hash, principal.clone());
            principal
        }
    };
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
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
