//! The frame every console page shares (navigation by scope, the sign-out form), its
//! security headers, the error page, and the SVG bar chart.

use super::session::Viewer;
use crate::error::ApiError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The pages of the navigation, each with the scope it needs (`None`: any signed-in key).
const NAVIGATION: [(&str, &str, Option<&str>); 9] = [
    ("/console/overview", "Overview", None),
    ("/console/cases", "Risk cases", Some("risk:analyst")),
    ("/console/rules", "Rules", Some("risk:admin")),
    ("/console/customers", "Customers", Some("credit:read")),
    ("/console/payments", "Payments", Some("payments:read")),
    ("/console/merchants", "Merchants", Some("payments:read")),
    ("/console/recon", "Reconciliation", Some("recon:read")),
    (
        "/console/consortium",
        "Consortium",
        Some("consortium:member"),
    ),
    ("/console/audit", "Audit", Some("admin")),
];

/// A whole page: the head, the navigation the viewer's scopes allow, `content`.
pub fn page(viewer: Option<&Viewer>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tally console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header.top {
                    a.brand href="/console/overview" { "Tally" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Console" {
                            @for (href, label, scope) in NAVIGATION {
                                @if scope.is_none_or(|scope| viewer.principal.has(scope)) {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        form.sign-out method="post" action="/console/sign-out" {
                            span.who { "Signed in as " strong { (viewer.principal.name) } }
                            (csrf_field(viewer))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token in every form.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf_token); }
}

/// Answers `markup` with `status` and the headers every console page carries: never cached
/// (a page may hold a value read in clear), never framed, no script, forms only to itself,
/// and no address sent to another site. The referrer policy is `same-origin`, not
/// `no-referrer`: under `no-referrer` a browser sends `Origin: null` with every form `POST`
/// (Fetch standard, "append a request Origin header"), and sign-in, which checks the origin
/// against login CSRF, refused every real browser.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page's refusal or failure, answered as an HTML page with its status and message.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// The refusal of a page or action that needs a scope the key lacks.
    pub fn forbidden(viewer: &Viewer, scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "API key {:?} lacks scope {scope}, which this page needs",
                viewer.principal.name
            ),
        )
    }
}

/// An API error keeps its status, code and message: the console says what the API would.
impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self {
            status: error.status,
            code: error.code.to_string(),
            message: error.message,
        }
    }
}

impl From<tally_store::StoreError> for PageError {
    fn from(error: tally_store::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        let content = html! {
            h1 { (self.status.as_u16()) " " (title) }
            p.error role="alert" { (self.message) }
            p.muted { "Code: " code { (self.code) } }
            p { a href="/console/overview" { "Back to the overview" } }
        };
        let mut response = respond(self.status, page(None, &title, content.clone()));
        response
            .extensions_mut()
            .insert(RefusalPage { title, content });
        response
    }
}

/// A refusal's title and content, kept on its response: a handler's error does not know
/// who is signed in, and the session layer, which does, frames it again with their
/// navigation and sign-out ([`frame_refusal`]), so a refused page is no dead end.
#[derive(Debug, Clone)]
pub struct RefusalPage {
    title: String,
    content: Markup,
}

/// `response` again, framed for `viewer`, when it is a refusal page; as it is otherwise.
pub fn frame_refusal(response: Response, viewer: &Viewer) -> Response {
    match response.extensions().get::<RefusalPage>() {
        Some(refusal) => respond(
            response.status(),
            page(Some(viewer), &refusal.title, refusal.content.clone()),
        ),
        None => response,
    }
}

/// Requires `scope` of the viewer (or `admin`), or refuses with the 403 page.
pub fn require(viewer: &Viewer, scope: &str) -> Result<(), PageError> {
    if viewer.principal.has(scope) {
        Ok(())
    } else {
        Err(PageError::forbidden(viewer, scope))
    }
}

/// Width of the longest bar of a chart, in SVG units.
const BAR_WIDTH_MAX: i64 = 400;
/// Height of one bar and the space between bars.
const BAR_HEIGHT: i64 = 22;
const BAR_GAP: i64 = 8;
/// Room for the labels left of the bars.
const LABEL_WIDTH: i64 = 120;

/// A horizontal bar chart of counts, in SVG. Each bar's width is `count × 400 / largest`,
/// computed in integers, so it is exact and the same everywhere.
pub fn bar_chart(title: &str, bars: &[(String, i64)]) -> Markup {
    let largest = bars.iter().map(|(_, count)| *count).max().unwrap_or(0);
    let rows = i64::try_from(bars.len()).unwrap_or(0);
    let height = rows * (BAR_HEIGHT + BAR_GAP);
    let width = LABEL_WIDTH + BAR_WIDTH_MAX + 80;
    html! {
        figure.chart {
            figcaption { (title) }
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) {
                @for (index, (label, count)) in bars.iter().enumerate() {
                    @let y = i64::try_from(index).unwrap_or(0) * (BAR_HEIGHT + BAR_GAP);
                    @let bar = bar_width(*count, largest);
                    text x="0" y=(y + BAR_HEIGHT - 6) { (label) }
                    rect.bar x=(LABEL_WIDTH) y=(y) width=(bar) height=(BAR_HEIGHT) {}
                    text x=(LABEL_WIDTH + bar + 6) y=(y + BAR_HEIGHT - 6) { (count) }
                }
            }
        }
    }
}

/// `count × BAR_WIDTH_MAX / largest`, rounded down, in integers; 0 when nothing was counted.
fn bar_width(count: i64, largest: i64) -> i64 {
    if largest <= 0 || count <= 0 {
        return 0;
    }
    let width = i128::from(count) * i128::from(BAR_WIDTH_MAX) / i128::from(largest);
    i64::try_from(width).unwrap_or(BAR_WIDTH_MAX)
}

/// A time stored in microseconds, as RFC 3339 in UTC to the second.
pub fn time(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros)
        .map(|at| at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_integer_fractions_of_the_largest() {
        assert_eq!(bar_width(0, 0), 0);
        assert_eq!(bar_width(5, 10), 200);
        assert_eq!(bar_width(1, 3), 133);
        assert_eq!(bar_width(10, 10), BAR_WIDTH_MAX);
        assert_eq!(bar_width(i64::MAX, i64::MAX), BAR_WIDTH_MAX);
    }
}
