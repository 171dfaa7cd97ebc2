//! HTTP API of Tally (axum): routes under `/v1`, API-key authentication with scopes, one
//! JSON error shape with stable codes, Prometheus metrics, OpenAPI, and configuration.
//!
//! A request flows: metrics and tracing layers → authentication (bearer key → principal
//! with scopes) → handler (scope check, strict JSON extraction, conversion of wire types
//! into ledger commands) → the store's ledger writer or a read on the pool → wire response.

pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod state;
pub mod stored_text;
pub mod wire;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use tally_core::Clock;
use tally_store::{Database, LedgerWriter, WriterConfig};

/// Builds the application router around its state. Used by `serve` and by in-process tests.
pub fn app(state: AppState) -> Router {
    app_with_risk(state, None)
}

/// The risk routes under `/v1/risk`, each group behind its scope.
fn risk_routes(risk: Arc<tally_service::risk::RiskService>, state: &AppState) -> Router<AppState> {
    use axum::routing::delete;
    use routes::risk;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    // Submitting events is kept apart from switching controls: a leaked event key cannot
    // change rule sets or remove list entries, and a version goes live only when a second
    // `risk:admin` key approves the request of a first.
    let writes = Router::new()
        .route("/decisions", post(risk::decide))
        .route("/lists", post(risk::add_list_entry))
        .route("/claims", post(risk::claim_stolen_account))
        .route_layer(scope("risk:write"));
    let administration = Router::new()
        .route("/rule-sets", post(risk::upload_rule_set))
        .route("/rule-sets/backtests", post(risk::backtest_rule_set))
        .route(
            "/rule-sets/{version}/activation-requests",
            post(risk::request_activation),
        )
        .route(
            "/activation-requests/{id}/{decision}",
            post(risk::decide_activation),
        )
        .route("/lists/{id}", delete(risk::remove_list_entry))
        .route_layer(scope("risk:admin"));
    let reads = Router::new()
        .route("/rule-sets", get(risk::list_rule_sets))
        .route("/lists", get(risk::list_entries))
        .route("/activation-requests", get(risk::list_activation_requests))
        .route_layer(scope("risk:read"));
    let analyst = Router::new()
        .route("/cases", get(risk::list_cases))
        .route("/cases/{id}", get(risk::get_case))
        .route("/cases/{id}/evidence", get(risk::evidence))
        .route("/cases/{id}/{action}", post(risk::move_case))
        .route("/claims/{id}/restore", post(risk::restore_access))
        .route_layer(scope("risk:analyst"));
    Router::new()
        .merge(writes)
        .merge(administration)
        .merge(reads)
        .merge(analyst)
        .with_state(risk::RiskContext {
            risk,
            credit: state.credit.clone(),
            evidence_signer: state.evidence_signer.clone(),
            gate: state.risk_gate.clone(),
            privacy: state.privacy.clone(),
        })
}

/// The customer routes, each group behind its scope. A lookup is a `POST` with the phone or
/// national id in the body, and a read in clear (`pii:read`) a `POST` with its reason in the
/// body; the old `GET`s with them in the query string, which access logs keep, answer
/// `410 lookup_moved` and `410 reveal_moved`.
fn customer_routes() -> Router<AppState> {
    use routes::{customers, held, profile};
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/customers", post(customers::create_customer))
        .route("/customers/{id}/phone", post(profile::change_phone))
        .route("/customers/{id}/name", post(profile::change_name))
        .route("/customers/{id}/address", post(profile::change_address))
        .route("/customers/{id}/bank-card", post(profile::bind_bank_card))
        .route("/held-operations/{id}/code", post(held::enter_code))
        .route_layer(scope("credit:write"));
    let reads = Router::new()
        .route("/customers", get(customers::lookup_moved))
        .route("/customers/search", post(customers::search_customers))
        .route("/customers/{id}", get(customers::get_customer))
        .route("/held-operations/{id}", get(held::held_operation))
        .route_layer(scope("credit:read"));
    let reveal = Router::new()
        .route("/customers/{id}/reveal", post(customers::reveal_customer))
        .route(
            "/customers/{id}/profile/reveal",
            post(customers::reveal_customer_profile),
        )
        .route_layer(scope("pii:read"));
    let audit = Router::new()
        .route("/customers/{id}/erasure", post(customers::erase_customer))
        .route("/customers/{id}/pii-reads", get(customers::list_pii_reads))
        .route("/pii-lookups", get(customers::list_pii_lookups))
        .route_layer(scope("admin"));
    Router::new()
        .merge(writes)
        .merge(reads)
        .merge(reveal)
        .merge(audit)
}

/// The credit routes under `/v1/credit`, each group behind its scope.
fn credit_routes() -> Router<AppState> {
    use routes::credit;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/accounts", post(credit::open_account))
        .route("/accounts/{id}/limit", post(credit::set_limit))
        .route(
            "/accounts/{id}/temporary-limit",
            post(credit::set_temporary_limit),
        )
        .route("/accounts/{id}/authorizations", post(credit::authorize))
        .route(
            "/accounts/{id}/authorizations/{authorization}/capture",
            post(credit::capture),
        )
        .route(
            "/accounts/{id}/authorizations/{authorization}/void",
            post(credit::void),
        )
        .route("/accounts/{id}/repayments", post(credit::repay))
        .route(
            "/accounts/{id}/bill-installments",
            post(credit::bill_installment),
        )
        .route("/accounts/{id}/plans/{plan}/refunds", post(credit::refund))
        .route("/accounts/{id}/plans/{plan}/payoff", post(credit::pay_off))
        .route(
            "/accounts/{id}/plans/{plan}/stolen-write-off",
            post(credit::write_off_stolen),
        )
        .route(
            "/accounts/{id}/credit-balance/payouts",
            post(credit::pay_out_credit_balance),
        )
        .route("/accounts/{id}/{action}", post(credit::change_status))
        .route("/tasks", post(credit::add_task))
        .route("/tasks/{id}/close", post(credit::close_task))
        .route("/tasks/{id}/contacts", post(credit::record_contact))
        .route_layer(scope("credit:write"));
    let reads = Router::new()
        .route("/products", get(credit::products))
        .route("/accounts/{id}", get(credit::get_account))
        .route("/accounts/{id}/statements", get(credit::statements))
        .route("/accounts/{id}/offers", get(credit::offers))
        .route(
            "/accounts/{id}/plans/{plan}/payoff-quote",
            get(credit::payoff_quote),
        )
        .route("/tasks", get(credit::tasks))
        .route("/tasks/{id}/contacts", get(credit::task_contacts))
        .route_layer(scope("credit:read"));
    let admin = Router::new()
        .route("/products", post(credit::add_product))
        .route_layer(scope("admin"));
    Router::new().merge(writes).merge(reads).merge(admin)
}

/// The payment routes under `/v1/payments`, each group behind its scope.
fn payment_routes() -> Router<AppState> {
    use routes::payments;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/", post(payments::create_payment))
        .route("/cards", post(payments::save_card))
        .route("/wallets/{customer}/top-ups", post(payments::top_up))
        .route("/wallets/{customer}/withdrawals", post(payments::withdraw))
        .route(
            "/wallets/{customer}/vault-subscriptions",
            post(payments::subscribe_to_vault),
        )
        .route(
            "/wallets/{customer}/vault-redemptions",
            post(payments::redeem_from_vault),
        )
        .route("/{id}/confirm", post(payments::confirm_payment))
        .route("/{id}/capture", post(payments::capture_payment))
        .route("/{id}/cancel", post(payments::cancel_payment))
        .route("/{id}/refunds", post(payments::refund_payment))
        .route(
            "/webhook-endpoints",
            post(payments::create_webhook_endpoint),
        )
        .route_layer(scope("payments:write"));
    let admin = Router::new()
        .route("/vault-yields", post(payments::accrue_vault_yield))
        .route_layer(scope("admin"));
    let analyst = Router::new()
        .route("/{id}/review", post(payments::review_payment))
        .route("/{id}/delivery-release", post(payments::release_delivery))
        .route_layer(scope("risk:analyst"));
    let reads = Router::new()
        .route("/cards", get(payments::list_cards))
        .route("/webhook-endpoints", get(payments::list_webhook_endpoints))
        .route(
            "/webhook-deliveries",
            get(payments::list_webhook_deliveries),
        )
        .route("/wallets/{customer}", get(payments::get_balances))
        .route("/{id}", get(payments::get_payment))
        .route_layer(scope("payments:read"));
    Router::new()
        .merge(writes)
        .merge(analyst)
        .merge(admin)
        .merge(reads)
}

/// The merchant routes under `/v1/merchants`, the settlement routes under `/v1/settlement`
/// and the reports under `/v1/reports`, each group behind its scope.
fn merchant_routes() -> Router<AppState> {
    use routes::merchants;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/merchants", post(merchants::onboard_merchant))
        .route(
            "/merchants/{id}/status",
            post(merchants::change_merchant_status),
        )
        .route(
            "/merchants/{id}/fee-schedule",
            axum::routing::put(merchants::set_fee_schedule),
        )
        .route_layer(scope("payments:write"));
    let admin = Router::new()
        .route("/settlement/runs", post(merchants::run_settlement))
        .route_layer(scope("admin"));
    let reports = Router::new()
        .route(
            "/reports/flow-of-funds",
            get(routes::reports::get_flow_of_funds),
        )
        .route_layer(scope("admin"));
    let reads = Router::new()
        .route("/merchants/{id}", get(merchants::get_merchant))
        .route(
            "/settlement/runs/{business_date}/statements",
            get(merchants::get_statements),
        )
        .route(
            "/settlement/runs/{business_date}/statements.csv",
            get(merchants::get_statements_csv),
        )
        .route_layer(scope("payments:read"));
    Router::new()
        .merge(writes)
        .merge(admin)
        .merge(reports)
        .merge(reads)
        .merge(dispute_routes())
}

/// The dispute routes under `/v1/disputes`: reads with `payments:read`, the merchant's
/// answers with `payments:write`.
fn dispute_routes() -> Router<AppState> {
    use routes::disputes;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/disputes/{id}/evidence", post(disputes::submit_evidence))
        .route("/disputes/{id}/accept", post(disputes::accept_dispute))
        .route_layer(scope("payments:write"));
    let reads = Router::new()
        .route("/disputes", get(disputes::list_disputes))
        .route("/disputes/{id}", get(disputes::get_dispute))
        .route_layer(scope("payments:read"));
    Router::new().merge(writes).merge(reads)
}

/// The reconciliation worklist under `/v1/recon`: reads behind `recon:read`, changes
/// behind `recon:write`.
fn recon_routes() -> Router<AppState> {
    use routes::recon;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/exceptions/{id}/assign", post(recon::assign_exception))
        .route("/exceptions/{id}/resolve", post(recon::resolve_exception))
        .route_layer(scope("recon:write"));
    let reads = Router::new()
        .route("/runs", get(recon::list_runs))
        .route("/runs/{business_date}", get(recon::get_run))
        .route("/exceptions", get(recon::list_exceptions))
        .route("/exceptions/{id}", get(recon::get_exception))
        .route_layer(scope("recon:read"));
    Router::new().merge(writes).merge(reads)
}

/// The payout routes under `/v1/payouts`, each behind its scope; a batch and a return file
/// may be as large as a ledger batch.
fn payout_routes(batch_body_limit: usize) -> Router<AppState> {
    use routes::payouts;
    let scope =
        |scope: &'static str| axum::middleware::from_fn_with_state(scope, auth::require_scope);
    let writes = Router::new()
        .route("/payouts", post(payouts::create_payout))
        .route(
            "/payouts/batches",
            post(payouts::create_payout_batch).layer(DefaultBodyLimit::max(batch_body_limit)),
        )
        .route(
            "/payouts/batches/{id}/file",
            post(payouts::take_payout_batch_file),
        )
        .route(
            "/payouts/batches/{id}/return-file",
            post(payouts::read_payout_return_file).layer(DefaultBodyLimit::max(batch_body_limit)),
        )
        .route_layer(scope("payments:write"));
    let admin = Router::new()
        .route("/payouts/runs", post(payouts::run_scheduled_payouts))
        .route_layer(scope("admin"));
    let reads = Router::new()
        .route("/payouts", get(payouts::list_payouts))
        .route("/payouts/{id}", get(payouts::get_payout))
        .route("/payouts/batches/{id}", get(payouts::get_payout_batch))
        .route_layer(scope("payments:read"));
    Router::new().merge(writes).merge(admin).merge(reads)
}

/// The application router, with the risk routes when a risk service is given.
pub fn app_with_risk(
    mut state: AppState,
    risk: Option<Arc<tally_service::risk::RiskService>>,
) -> Router {
    // Merchants' webhook secrets are sealed with the keys that seal personal data.
    if let (Some(payments), Some(privacy)) = (&state.payments, &state.privacy) {
        payments.attach_privacy(privacy.clone());
    }
    // With the risk engine, credit and profile changes are gated by it (one-time codes to
    // the log unless the caller set a gate with its own sink).
    if let (Some(risk), None) = (&risk, &state.risk_gate) {
        state.risk_gate = Some(Arc::new(
            tally_service::risk_gate::RiskGate::new(
                risk.clone(),
                state.database.clone(),
                state.clock.clone(),
                state.privacy.clone(),
                state.credit.clone(),
            )
            .with_payments(state.payments.clone()),
        ));
    }
    let body_limit = state.limits.body_limit_bytes;
    let batch_body_limit = state.limits.batch_body_limit_bytes;
    let ledger_reads = Router::new()
        .route("/accounts/{id}", get(routes::ledger::get_account))
        .route("/accounts/{id}/balance", get(routes::ledger::get_balance))
        .route(
            "/accounts/{id}/entries",
            get(routes::ledger::list_account_entries),
        )
        .route("/entries/{id}", get(routes::ledger::get_entry))
        .route("/holds/{id}", get(routes::ledger::get_hold))
        .route_layer(axum::middleware::from_fn_with_state(
            "ledger:read",
            auth::require_scope,
        ));
    let ledger_writes = Router::new()
        .route("/accounts", post(routes::ledger::create_account))
        .route("/entries", post(routes::ledger::post_entry))
        .route(
            "/entries/batch",
            post(routes::ledger::post_entries_batch).layer(DefaultBodyLimit::max(batch_body_limit)),
        )
        .route("/holds", post(routes::ledger::create_hold))
        .route("/holds/{id}/post", post(routes::ledger::post_hold))
        .route("/holds/{id}/void", post(routes::ledger::void_hold))
        .route_layer(axum::middleware::from_fn_with_state(
            "ledger:write",
            auth::require_scope,
        ));
    let mut v1 = Router::new()
        .merge(ledger_reads)
        .merge(ledger_writes)
        .merge(customer_routes())
        .nest("/credit", credit_routes())
        .nest("/payments", payment_routes())
        .merge(merchant_routes())
        .nest("/recon", recon_routes())
        .merge(payout_routes(batch_body_limit))
        .route("/openapi.json", get(openapi::document));
    if let Some(risk) = risk.clone() {
        v1 = v1.nest("/risk", risk_routes(risk, &state));
    }
    let authenticated = Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics::render))
        .layer(axum::middleware::from_fn_with_state(
            stored_text::BodyLimits {
                default: body_limit,
                batch: batch_body_limit,
            },
            stored_text::refuse_unstorable_text,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    // The console authenticates by its session cookie, not by bearer keys: its routes are
    // merged beside the API's, outside their authentication layer.
    let console = console::router(state.clone(), risk);
    // The channel authenticates by signing each notification, not by an API key; the text
    // check still applies (an event id or reference is stored).
    let channel_notifications = Router::new()
        .route(
            "/v1/payments/channel-notifications",
            post(routes::payments::receive_channel_notification),
        )
        .layer(axum::middleware::from_fn_with_state(
            stored_text::BodyLimits {
                default: body_limit,
                batch: body_limit,
            },
            stored_text::refuse_unstorable_text,
        ));
    Router::new()
        .route("/healthz", get(routes::health))
        .merge(channel_notifications)
        .merge(authenticated)
        .merge(console)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(error::limit_uri_length))
        .layer(axum::middleware::map_response(error::json_client_errors))
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(logging::http_trace_layer())
        .with_state(state)
}

/// Everything `tally serve` needs, opened: database migrated, writer running.
pub async fn open(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<(AppState, tokio::task::JoinHandle<()>), tally_store::StoreError> {
    let database = Database::connect(config.database.url.expose()).await?;
    database.migrate().await?;
    let (writer, task) = LedgerWriter::start(
        &database,
        clock.clone(),
        WriterConfig {
            batch_size_max: config.ledger.batch_size_max,
            queue_length_max: config.ledger.queue_length_max,
            entry_amount_max: config.ledger.entry_amount_max,
            ..WriterConfig::default()
        },
    )
    .await?;
    let setup = config.credit.load().map_err(|error| {
        tally_store::StoreError::Corrupt(format!("credit configuration: {error}"))
    })?;
    let credit = Arc::new(
        tally_service::credit::decision::CreditService::start(
            database.clone(),
            writer.clone(),
            setup,
        )
        .await?,
    );
    let payments = Arc::new(tally_service::payments::PaymentService::new(
        database.clone(),
        writer.clone(),
        Some(credit.clone()),
        channel(config)?,
        tally_service::payments::PaymentsConfig {
            time_zone: credit.time_zone.clone(),
            credit_product: config.payments.credit_product.clone(),
            vault_annual_rate: vault_annual_rate(config)?,
            channel_secret: config.payments.channel_secret.clone(),
        },
    ));
    let privacy = privacy(config);
    if let Some(privacy) = &privacy {
        // Before any worker starts: the webhook worker opens sealed secrets.
        payments.attach_privacy(privacy.clone());
    }
    let state = AppState::new(database, writer, clock, config.limits())
        .with_privacy(privacy)
        .with_lookups_per_minute(config.privacy.lookups_per_minute)
        .with_credit(Some(credit))
        .with_payments(Some(payments))
        .with_console(config.console)
        .with_evidence_signer(
            config
                .risk
                .evidence_signer()
                .map_err(|error| tally_store::StoreError::Corrupt(error.to_string()))?,
        )
        .with_consortium_member(
            config
                .consortium_member
                .member()
                .map_err(|error| tally_store::StoreError::Corrupt(error.to_string()))?,
        );
    Ok((state, task))
}

/// The vault's annual yield of the configuration.
fn vault_annual_rate(
    config: &Config,
) -> Result<tally_payments::vault::AnnualRate, tally_store::StoreError> {
    let text = &config.payments.vault_annual_rate;
    let refuse = |reason: String| {
        tally_store::StoreError::Corrupt(format!("payments.vault_annual_rate {text:?}: {reason}"))
    };
    let rate = tally_core::rate::exact::parse(text).map_err(refuse)?;
    tally_payments::vault::AnnualRate::new(rate).map_err(|error| refuse(error.to_string()))
}

/// The payment channel of the configuration, or `None` (with a warning) without a URL.
fn channel(
    config: &Config,
) -> Result<Option<Arc<dyn tally_channel::Channel>>, tally_store::StoreError> {
    let settings = &config.payments;
    let Some(url) = settings.channel_url.clone() else {
        tracing::warn!(
            "payments.channel_url is not set: card sources answer 503 channel_not_configured"
        );
        return Ok(None);
    };
    let secret = settings.channel_secret.clone().unwrap_or_default();
    let channel = tally_channel::HttpChannel::new(tally_channel::HttpChannelConfig {
        base_url: url,
        timeout: std::time::Duration::from_millis(settings.channel_timeout_ms),
        secret,
    })
    .map_err(|error| tally_store::StoreError::Corrupt(format!("payments.channel_url: {error}")))?;
    Ok(Some(Arc::new(channel)))
}

/// The personal-data keys of the configuration, or `None` (with a warning) when they are
/// not all configured: Tally then serves everything but customers, rather than invent keys
/// whose loss would make the data unreadable and whose copy beside the database would
/// protect nothing.
fn privacy(config: &Config) -> Option<Arc<tally_privacy::Privacy>> {
    match config.privacy.keys() {
        None => {
            tracing::warn!(
                "customer routes are disabled: {}",
                routes::customers::PRIVACY_KEYS_HELP
            );
            None
        }
        Some(Ok(privacy)) => Some(Arc::new(privacy)),
        Some(Err(error)) => {
            // `Config::validate` has checked the keys already; this is a belt and braces.
            tracing::error!(%error, "customer routes are disabled: privacy keys are invalid");
            None
        }
    }
}

/// Builds the consortium log's router (`tally consortium serve`, its own listener):
/// signed member requests, members, checkpoint, proofs, entries and tiles, and their
/// OpenAPI document ([`openapi::ConsortiumApiDocument`]), under `/v1/consortium`.
/// Separate from [`app`]: members authenticate by request signatures.
pub fn consortium_app(state: routes::consortium::ConsortiumAppState) -> Router {
    use routes::consortium;
    let body_limit = state.body_limit_bytes;
    let v1 = Router::new()
        .route("/proposals", post(consortium::propose))
        .route("/approvals", post(consortium::approve))
        .route("/records", post(consortium::publish))
        .route("/retractions", post(consortium::retract))
        .route("/queries", post(consortium::query))
        .route("/members", get(consortium::members))
        .route("/members/{name}/query-count", get(consortium::query_count))
        .route("/checkpoint", get(consortium::checkpoint))
        .route("/proofs/inclusion", get(consortium::inclusion_proof))
        .route("/proofs/consistency", get(consortium::consistency_proof))
        .route("/entries", get(consortium::entries))
        .route("/entries/{index}", get(consortium::entry))
        // C2SP tlog-tiles under the prefix `/v1/consortium`: the index spans path
        // segments (`x001/234.p/5`), so it is a wildcard, and the static `entries` wins.
        .route("/tile/entries/{*index}", get(consortium::entry_bundle))
        .route("/tile/{level}/{*index}", get(consortium::tile))
        .route("/status", get(consortium::status))
        .route("/openapi.json", get(openapi::consortium_document));
    Router::new()
        .route("/healthz", get(routes::health))
        // The log's own metrics (its integrity alarms among them), public as its reads are.
        .route("/metrics", get(metrics::render_public))
        .nest("/v1/consortium", v1)
        .layer(axum::middleware::from_fn_with_state(
            stored_text::BodyLimits {
                default: body_limit,
                batch: body_limit,
            },
            stored_text::refuse_unstorable_text,
        ))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(error::limit_uri_length))
        .layer(axum::middleware::map_response(error::json_client_errors))
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(logging::http_trace_layer())
        .with_state(state)
}
