//! Console sessions: sign-in with an API key, the session cookie, the check every page
//! makes (session known and not idle, key still live), the CSRF check of every form, and
//! sign-out.
//!
//! The cookie carries 32 random bytes; the database keeps only their SHA-256, so a copy of
//! `console_sessions` opens nothing. The CSRF token is per session, sent back in a hidden
//! field of every form and compared in constant time. The cookie is `SameSite=Strict` as
//! well, so a cross-site form does not even carry it; the token covers browsers that ignore
//! that attribute.

use super::layout::{frame_refusal, page, respond, PageError};
use super::{ConsoleState, BASE_PATH, COOKIE_NAME};
use crate::auth::{principal_of_secret, Principal};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::SignedDuration;
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tally_ledger::AccountNamespaces;
use tally_store::console::ConsoleSession;

/// Longest API key read from the sign-in form; keys are far shorter.
const KEY_LENGTH_MAX: usize = 256;

/// Who is looking at a page: the principal of the session's key, the session's CSRF token,
/// and the hash of its token (to end it).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf_token: String,
    pub token_hash: String,
}

/// 32 random bytes, base64url without padding.
fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a session token.
fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The session token of the request's cookie, if it carries one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// Whether the request came over TLS: the configuration says so (a proxy that does not
/// tell), or the request's scheme or its proxy's `X-Forwarded-Proto` is https. A client
/// claiming https only makes its own cookie stricter.
fn over_tls(state: &ConsoleState, headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    state.app.console.secure_cookie
        || uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a session token (or, with `None`, the one that removes it).
fn cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let mut value = match token {
        Some(token) => format!("{COOKIE_NAME}={token}"),
        None => format!("{COOKIE_NAME}=; Max-Age=0"),
    };
    value.push_str(&format!("; Path={BASE_PATH}; HttpOnly; SameSite=Strict"));
    if secure {
        value.push_str("; Secure");
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `303 See Other` to `location`.
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// To the sign-in page, removing the cookie of a session that ended.
fn to_sign_in(remove_cookie: bool, secure: bool) -> Response {
    let mut response = see_other("/console/sign-in");
    if remove_cookie {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookie(None, secure));
    }
    response
}

/// The sign-in page, with an error when a key was refused.
fn sign_in_form(status: StatusCode, error: Option<&str>) -> Response {
    let content = html! {
        section.sign-in {
            h1 { "Sign in to the Tally console" }
            p { "Paste an API key (" code { "tally keys create" } " prints one). The console "
                "shows what the key's scopes allow, and the session ends after a while unused "
                "or when the key is revoked." }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action="/console/sign-in" {
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="off" required
                    maxlength=(KEY_LENGTH_MAX);
                button type="submit" { "Sign in" }
            }
        }
    };
    respond(status, page(None, "Sign in", content))
}

pub async fn sign_in_page() -> Response {
    sign_in_form(StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
}

/// Signs in: the key is verified as the API verifies a bearer key; a live key gets a new
/// session (any session the browser had ends) and the cookie, then the overview. A refused
/// key gets the form again with the error, and no cookie.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        // A sign-in posted by another site would sign this browser in with that site's key
        // (login CSRF); there is no session yet whose token the form could carry.
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "cross_origin_sign_in",
            "a sign-in must come from the console's own page",
        ));
    }
    let secret = form.key.trim();
    let refused = "unknown, expired or revoked API key";
    if secret.is_empty() || secret.len() > KEY_LENGTH_MAX || secret.contains('\0') {
        return Ok(sign_in_form(StatusCode::FORBIDDEN, Some(refused)));
    }
    let Some(principal) = principal_of_secret(&state.app, secret).await? else {
        tracing::info!("console sign-in refused");
        return Ok(sign_in_form(StatusCode::FORBIDDEN, Some(refused)));
    };
    let database = &state.app.database;
    let now = state.app.clock.now();
    if let Some(previous) = cookie_token(&headers) {
        database
            .delete_console_session(&hash_token(&previous))
            .await?;
    }
    database
        .delete_console_sessions_idle_since(now - idle_timeout(&state))
        .await?;
    let token = random_token();
    database
        .insert_console_session(&ConsoleSession {
            token_hash: hash_token(&token),
            api_key_id: principal.key_id.clone(),
            scopes: principal.scopes.clone(),
            csrf_token: random_token(),
            created_at: now,
            last_seen_at: now,
        })
        .await?;
    tracing::info!(key = %principal.key_id, "console session opened");
    let mut response = see_other("/console/overview");
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(Some(&token), over_tls(&state, &headers, &uri)),
    );
    Ok(response)
}

/// Whether a form came from this host: its `Origin` (which browsers send with every form
/// `POST`) names the `Host` it was sent to. A request without either (not a browser's form)
/// passes; the key it carries is checked all the same.
fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return true;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

fn idle_timeout(state: &ConsoleState) -> SignedDuration {
    let seconds = i64::try_from(state.app.console.idle_timeout_seconds).unwrap_or(i64::MAX);
    SignedDuration::from_secs(seconds)
}

/// Signs out: the session ends and the cookie is removed.
pub async fn sign_out(
    State(state): State<ConsoleState>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, PageError> {
    state
        .app
        .database
        .delete_console_session(&viewer.token_hash)
        .await?;
    tracing::info!(key = %viewer.principal.key_id, "console session ended by sign-out");
    Ok(to_sign_in(true, over_tls(&state, &headers, &uri)))
}

/// Middleware of every page but sign-in: finds the session of the cookie, ends it when idle
/// past the timeout or when its key is revoked or expired (each → the sign-in page, 303),
/// records its use, and puts the [`Viewer`] in the request; a refusal page coming back is framed
/// with the viewer's navigation and sign-out. A form (`POST`) must carry the
/// session's CSRF token in its `csrf` field (403 otherwise, before any handler runs) and no
/// NUL character in any field (no store keeps it).
pub async fn require_session(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Response {
    let secure = over_tls(&state, request.headers(), request.uri());
    // No store keeps a NUL (PostgreSQL refuses it late, as a failure): refused at the edge,
    // as the API's `stored_text` layer does.
    let target = request
        .uri()
        .path_and_query()
        .map_or("", |target| target.as_str());
    if target.contains("%00") {
        return PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_text",
            "the address contains the NUL character (U+0000), which no field accepts",
        )
        .into_response();
    }
    let Some(token) = cookie_token(request.headers()) else {
        return to_sign_in(false, secure);
    };
    let database = &state.app.database;
    let token_hash = hash_token(&token);
    let session = match database.console_session(&token_hash).await {
        Ok(Some(session)) => session,
        Ok(None) => return to_sign_in(true, secure),
        Err(error) => return PageError::from(error).into_response(),
    };
    let now = state.app.clock.now();
    let idle = now.duration_since(session.last_seen_at);
    let key = if idle >= idle_timeout(&state) {
        tracing::info!(key = %session.api_key_id, "console session ended: idle");
        None
    } else {
        match database.api_key(&session.api_key_id).await {
            Ok(Some(key)) if key.is_live(now) => Some(key),
            Ok(_) => {
                tracing::info!(key = %session.api_key_id, "console session ended: key not live");
                None
            }
            Err(error) => return PageError::from(error).into_response(),
        }
    };
    let Some(key) = key else {
        if let Err(error) = database.delete_console_session(&token_hash).await {
            return PageError::from(error).into_response();
        }
        return to_sign_in(true, secure);
    };
    if let Err(error) = database.touch_console_session(&token_hash, now).await {
        return PageError::from(error).into_response();
    }
    let viewer = Viewer {
        principal: Principal {
            key_id: key.id,
            name: key.name,
            scopes: session.scopes,
            account_namespaces: AccountNamespaces::new(&key.account_namespaces),
        },
        csrf_token: session.csrf_token,
        token_hash,
    };
    let request = if request.method() == Method::POST {
        match checked_form(request, &viewer, state.app.limits.body_limit_bytes).await {
            Ok(request) => request,
            Err(refusal) => return frame_refusal(refusal.into_response(), &viewer),
        }
    } else {
        request
    };
    let mut request = request;
    request.extensions_mut().insert(viewer.clone());
    frame_refusal(next.run(request).await, &viewer)
}

/// The request again with its body, once its form carries the session's CSRF token and no
/// NUL character; refused (403, or 400 for a NUL or a body that is not a form) otherwise.
async fn checked_form(
    request: Request,
    viewer: &Viewer,
    body_limit_bytes: usize,
) -> Result<Request, PageError> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, body_limit_bytes).await.map_err(|_| {
        PageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the form is larger than the limit",
        )
    })?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the form could not be read",
        )
    })?;
    if fields
        .iter()
        .any(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "invalid_text",
            "the form contains the NUL character (U+0000), which no field accepts",
        ));
    }
    let tokens: Vec<&str> = fields
        .iter()
        .filter(|(name, _)| name == "csrf")
        .map(|(_, value)| value.as_str())
        .collect();
    let matches = match tokens.as_slice() {
        [token] => bool::from(token.as_bytes().ct_eq(viewer.csrf_token.as_bytes())),
        _ => false,
    };
    if !matches {
        tracing::warn!(key = %viewer.principal.key_id, "console form refused: CSRF token missing or wrong");
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "csrf_token_invalid",
            "the form's CSRF token is missing or wrong; nothing was changed. Reload the page \
             and send the form again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; tally_console=abc"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("tally_console="));
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn a_sign_in_from_another_site_is_told_apart() {
        let headers = |origin: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("tally.example:8080"));
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            headers
        };
        assert!(same_origin(&headers("http://tally.example:8080")));
        assert!(same_origin(&headers("https://TALLY.example:8080")));
        assert!(!same_origin(&headers("https://evil.example")));
        assert!(!same_origin(&headers("null")));
        assert!(same_origin(&HeaderMap::new()));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_on_the_console_path() {
        let set = cookie(Some("t"), true);
        assert_eq!(
            set.to_str().unwrap_or(""),
            "tally_console=t; Path=/console; HttpOnly; SameSite=Strict; Secure"
        );
        let removal = cookie(None, false);
        assert_eq!(
            removal.to_str().unwrap_or(""),
            "tally_console=; Max-Age=0; Path=/console; HttpOnly; SameSite=Strict"
        );
    }
}
