//! The operations console under `/console`: HTML pages rendered on the server (maud
//! templates, escaped at compile time) with one embedded style sheet, no JavaScript and no
//! build step, served by `tally serve` itself.
//!
//! A person signs in by pasting an API key, verified by the API's own code
//! ([`crate::auth::principal_of_secret`]); the console then keeps a server-side session
//! (`console_sessions`, only a SHA-256 of its token stored) behind an HttpOnly, SameSite=Strict
//! cookie on `/console`. Every page checks the session (unknown or idle past
//! `[console] idle_timeout_seconds` → the sign-in page) and the key (revoked or expired →
//! the session ends); every form carries the session's CSRF token, compared in constant time.
//! What a person sees follows the key's scopes, as the API does: a page needing a scope the
//! key lacks answers 403 and its link is not shown. Every action goes through the same
//! service call as its API route (`CustomerService`, `RiskService`, `PaymentService`): cases
//! (bulk claim, evidence export), customers, rules (upload, back-test, four-eyes
//! activation), payments and merchants with their settlement, the reconciliation worklist
//! (`ReconWorklist`: assign, resolve), the consortium log (checked on the server), the audit. Tables sort and page on the server (`table`).

mod audit;
mod cases;
mod consortium;
mod customers;
mod layout;
mod merchants;
mod overview;
mod payments;
mod recon;
mod rules;
pub mod session;
mod table;

use crate::state::AppState;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use tally_service::risk::RiskService;

/// The name of the session cookie.
pub const COOKIE_NAME: &str = "tally_console";

/// Where every console page lives, and the cookie's path.
pub const BASE_PATH: &str = "/console";

/// The one style sheet, embedded in the binary.
const STYLE_SHEET: &str = include_str!("console.css");

/// What the console's handlers share: the application's state and the risk service (absent
/// in a process that does not serve risk; its pages then say so).
#[derive(Clone)]
pub struct ConsoleState {
    pub app: AppState,
    pub risk: Option<Arc<RiskService>>,
}

/// The console's routes, under [`BASE_PATH`]. These are HTML for people, not API operations:
/// they are not in the OpenAPI document.
pub fn router<S>(app: AppState, risk: Option<Arc<RiskService>>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let state = ConsoleState { app, risk };
    // Every page and form but sign-in needs a session; forms are also checked for their
    // CSRF token by the same layer.
    let signed_in = Router::new()
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/overview", get(overview::show))
        .route("/console/cases", get(cases::queue))
        .route("/console/cases/claim", post(cases::claim_cases))
        .route("/console/cases/{id}", get(cases::case_page))
        .route("/console/cases/{id}/evidence", post(cases::export_evidence))
        .route("/console/cases/{id}/{action}", post(cases::move_case))
        .route("/console/customers", get(customers::search_page))
        .route("/console/customers/search", post(customers::search))
        .route("/console/customers/{id}", get(customers::customer_page))
        .route("/console/customers/{id}/reveal", post(customers::reveal))
        .route("/console/audit", get(audit::show))
        .route("/console/consortium", get(consortium::show))
        .route("/console/payments", get(payments::list))
        .route("/console/payments/find", get(payments::find))
        .route("/console/payments/{id}", get(payments::payment_page))
        .route(
            "/console/payments/{id}/delivery-release",
            post(payments::release_delivery),
        )
        .route("/console/merchants", get(merchants::list))
        .route("/console/merchants/{id}", get(merchants::merchant_page))
        .route("/console/settlement", get(merchants::runs))
        .route("/console/settlement/{date}", get(merchants::run_page))
        .route("/console/recon", get(recon::runs))
        .route("/console/recon/{date}", get(recon::run_page))
        .route("/console/recon/exceptions/{id}", get(recon::exception_page))
        .route("/console/recon/exceptions/{id}/assign", post(recon::assign))
        .route(
            "/console/recon/exceptions/{id}/resolve",
            post(recon::resolve),
        )
        .route("/console/rules", get(rules::show).post(rules::upload))
        .route("/console/rules/backtest", post(rules::backtest))
        .route(
            "/console/rules/activation-requests/{id}/{decision}",
            post(rules::decide),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/assets/console.css", get(style_sheet))
        .merge(signed_in)
        .with_state(state)
}

async fn style_sheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_SHEET,
    )
}
