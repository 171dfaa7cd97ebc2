//! A browser of the console in the tests: requests with the session cookie and forms,
//! sign-in, and what a page carries (its CSRF token, a redirect's target).

use super::{send, Answer, TestApp};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;

/// A signed-in browser: its cookie's token and the session's CSRF token.
pub struct Browser {
    pub token: String,
    pub csrf: String,
}

/// A console request to `router` with the session cookie `token` (if any) and a form (if
/// any).
pub async fn console_send(
    router: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::COOKIE, format!("other=1; tally_console={token}"));
    }
    let request = match form {
        Some(fields) => request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(serde_urlencoded::to_string(fields).unwrap())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    send(router, request).await
}

/// Signs in to `app`'s router with `key`: the session's tokens.
pub async fn sign_in(app: &TestApp, key: &str) -> Browser {
    let answer = console_send(
        &app.router,
        "POST",
        "/console/sign-in",
        None,
        Some(&[("key", key)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    let cookie = answer
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let token = cookie
        .strip_prefix("tally_console=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let overview = console_send(&app.router, "GET", "/console/overview", Some(&token), None).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", text(&overview));
    let csrf = csrf_of(&text(&overview));
    Browser { token, csrf }
}

pub fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

pub fn location(answer: &Answer) -> &str {
    answer
        .headers
        .get(header::LOCATION)
        .map_or("", |value| value.to_str().unwrap())
}

/// The CSRF token of the first form of a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

pub fn is_sign_in_redirect(answer: &Answer) -> bool {
    answer.status == StatusCode::SEE_OTHER && location(answer) == "/console/sign-in"
}
