//! `tally serve`, `tally migrate` and `tally keys`: running the service and preparing it.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tally_core::{Clock, Secret, SystemClock};
use tally_server::Config;

/// Where configuration comes from: a TOML file, `TALLY__...` variables, then these flags.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Database URL: a SQLite file (`sqlite://tally.db`, the default) or `postgres://...`.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// TOML configuration file; `TALLY__SECTION__KEY` variables override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(url) = &self.database_url {
            config.database.url = Secret::new(url.clone());
        }
        Ok(config)
    }
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// The server's logger (`TALLY_LOG` overrides the configured filter), built by
/// `tally_server::logging` so that no level writes query strings, bodies or keys.
pub(crate) fn init_logging(config: &Config) {
    use tracing_subscriber::util::SubscriberInitExt;
    let directives = std::env::var("TALLY_LOG").unwrap_or_else(|_| config.log.filter.clone());
    let subscriber =
        tally_server::logging::subscriber(&config.log.format, &directives, std::io::stderr);
    let _ = subscriber.try_init();
}

pub async fn serve(arguments: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = arguments.config.load()?;
    if let Some(listen) = arguments.listen {
        config.server.listen = listen;
    }
    let address = config.listen_address()?;
    init_logging(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (state, writer_task) = tally_server::open(&config, clock.clone())
        .await
        .context("opening the database")?;
    let risk = tally_service::risk::RiskService::open(&state.database, clock.clone())
        .await
        .context("rebuilding the risk engine from storage")?
        .with_privacy(state.privacy.clone());
    // Anomaly alerts are dated in the credit service's time zone (UTC without credit).
    let credit_zone = state
        .credit
        .as_ref()
        .map_or(jiff::tz::TimeZone::UTC, |credit| credit.time_zone.clone());
    // As a member of a consortium log: decisions look its records up, and confirmed fraud
    // is published to it by a worker (rows written with each confirmation).
    // It goes on from the last checkpoint it verified, stored in the database.
    let member = match config.consortium_member.client()? {
        Some(settings) => Some(Arc::new(
            tally_service::consortium::member_client::MemberClient::new(settings, clock.clone())
                .context("the consortium member's HTTP client")?
                .with_privacy(state.privacy.clone())
                .resumed(risk.store.clone())
                .await
                .context("loading the consortium member's last verified checkpoint")?,
        )),
        None => None,
    };
    let risk = Arc::new(
        risk.with_anomaly_alerts(config.credit.collections.anomaly_alerts(credit_zone))
            .with_consortium(member.clone()),
    );
    let publisher = member.map(|member| {
        tokio::spawn(
            tally_service::consortium::member_client::publish_continuously(
                member,
                risk.store.clone(),
                std::time::Duration::from_secs(
                    config.consortium_member.publish_interval_seconds.max(1),
                ),
            ),
        )
    });
    // Stolen-account claims whose credit lines a crash left behind their case.
    let followed_up = tally_service::stolen_accounts::StolenAccountClaims {
        risk: &risk,
        credit: state.credit.as_deref(),
        gate: None,
    }
    .finish_pending()
    .await
    .context("finishing the credit steps of stolen-account claims")?;
    if followed_up > 0 {
        tracing::info!(followed_up, "stolen-account claims followed up at start");
    }
    // A claim whose credit step failed (a line busy with end of day, a database restart) is
    // tried again on a schedule, not only at the next start or the case's next move.
    let interval = config.risk.claim_follow_up_interval_seconds;
    if interval > 0 {
        let (risk, credit) = (risk.clone(), state.credit.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
                let claims = tally_service::stolen_accounts::StolenAccountClaims {
                    risk: &risk,
                    credit: credit.as_deref(),
                    gate: None,
                };
                match claims.finish_pending().await {
                    Ok(0) => {}
                    Ok(followed_up) => {
                        tracing::info!(followed_up, "stolen-account claims followed up")
                    }
                    Err(error) => {
                        tracing::warn!(%error, "stolen-account claims could not be followed up")
                    }
                }
            }
        });
    }
    let recovery = state.payments.clone().map(|payments| {
        payments.attach_risk(risk.clone());
        spawn_payment_recovery(
            payments,
            clock.clone(),
            std::time::Duration::from_millis(config.payments.recovery_interval_ms.max(100)),
        )
    });
    let webhooks = state.payments.clone().map(|payments| {
        spawn_webhook_delivery(
            payments,
            clock.clone(),
            std::time::Duration::from_millis(config.payments.webhook_interval_ms.max(100)),
        )
    });
    let pruning = state.payments.clone().map(|payments| {
        spawn_webhook_pruning(
            payments,
            clock.clone(),
            jiff::SignedDuration::from_hours(
                24 * i64::from(config.payments.webhook_retention_days.max(1)),
            ),
        )
    });
    let backend = state.database.backend();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    tracing::info!(%address, ?backend, "tally is serving");
    eprintln!("tally is serving on http://{address} ({backend:?})");
    eprintln!(
        "the operations console is at http://{address}/console (sign in with a key from \
         `tally keys create`)"
    );
    tokio::spawn(async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            if let Some(handle) = tally_server::metrics::handle() {
                handle.run_upkeep();
            }
        }
    });
    let database = state.database.clone();
    axum::serve(listener, tally_server::app_with_risk(state, Some(risk)))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // The recovery worker holds the payment service and with it a writer handle: stopped
    // here, as a crash would stop it (whatever it was doing, the next start finishes).
    // So does the webhook worker: a delivery cut off is sent again, and receivers
    // deduplicate by event id. Pruning removes a batch in one transaction, all or nothing.
    for worker in [recovery, webhooks, publisher, pruning]
        .into_iter()
        .flatten()
    {
        worker.abort();
        let _ = worker.await;
    }
    // The router (and with it every other writer handle) is gone: the writer drains and
    // stops.
    let _ = writer_task.await;
    database.close().await;
    tracing::info!("tally stopped");
    Ok(ExitCode::SUCCESS)
}

/// Finishes payments left mid-way (a crash, a lost answer) and expires those past their
/// deadline: once at start, then every `interval`.
pub(crate) fn spawn_payment_recovery(
    payments: Arc<tally_service::payments::PaymentService>,
    clock: Arc<dyn Clock>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // Batches of 500 until a pass leaves nothing to do.
            loop {
                match payments.recover(clock.now(), 500).await {
                    Ok(report) if report.examined > 0 => {
                        tracing::info!(?report, "payments recovered");
                        if report.settled == 0 || report.examined < 500 {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "payment recovery failed; trying again later");
                        break;
                    }
                }
            }
            match payments.recover_wallet_operations(clock.now(), 500).await {
                Ok(0) => {}
                Ok(pending) => tracing::info!(pending, "wallet operations still pending"),
                Err(error) => tracing::warn!(%error, "wallet recovery failed; trying again later"),
            }
            tokio::time::sleep(interval).await;
        }
    })
}

/// Sends the merchants' webhook events due: every `interval`, until a pass finds nothing.
pub(crate) fn spawn_webhook_delivery(
    payments: Arc<tally_service::payments::PaymentService>,
    clock: Arc<dyn Clock>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            loop {
                match payments.deliver_webhooks(clock.now(), 100).await {
                    Ok(report) if report.attempted + report.fanned_out > 0 => {
                        tracing::debug!(?report, "webhooks delivered");
                        if report.attempted < 100 && report.fanned_out < 100 {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "webhook delivery failed; trying again later");
                        break;
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    })
}

/// Seals webhook secrets still in clear, then removes the webhook events done with
/// (delivered or given up) and older than `retention`, with their deliveries and attempts:
/// at start, then every hour, a batch at a time. Hourly:
/// the search reads the outbox from its oldest event, and a retention counted in days
/// need not be kept to the second.
pub(crate) fn spawn_webhook_pruning(
    payments: Arc<tally_service::payments::PaymentService>,
    clock: Arc<dyn Clock>,
    retention: jiff::SignedDuration,
) -> tokio::task::JoinHandle<()> {
    use tally_service::payments::webhooks::PRUNED_PER_PASS;
    const PRUNING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
    tokio::spawn(async move {
        // Secrets stored in clear before they were sealed are sealed first, once a start.
        match payments.seal_webhook_secrets().await {
            Ok(0) => {}
            Ok(sealed) => tracing::info!(sealed, "webhook secrets sealed"),
            Err(error) => tracing::warn!(%error, "sealing webhook secrets failed"),
        }
        loop {
            loop {
                match payments
                    .prune_webhook_events(clock.now(), retention, PRUNED_PER_PASS)
                    .await
                {
                    Ok(removed) => {
                        tracing::debug!(removed, "old webhook events removed");
                        if removed < u64::try_from(PRUNED_PER_PASS).unwrap_or(u64::MAX) {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "removing old webhook events failed; trying again later");
                        break;
                    }
                }
            }
            tokio::time::sleep(PRUNING_INTERVAL).await;
        }
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

pub async fn migrate(arguments: ConfigArgs) -> anyhow::Result<ExitCode> {
    let (database, _) = crate::jobs::open(&arguments).await?;
    database.close().await;
    eprintln!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Creates an API key and prints it once; only its hash is stored.
    Create {
        /// A name for the key, e.g. the client that will use it.
        #[arg(long)]
        name: String,
        /// A scope the key grants; repeat for several (admin grants all).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z); default never.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<jiff::Timestamp>,
        /// Limits the key to ledger accounts whose codes start with this prefix (compared
        /// without letter case or compatibility forms): it opens, moves and reads no other.
        /// Repeat for several; default: any account its scopes allow.
        #[arg(long = "account-namespace", value_name = "PREFIX")]
        account_namespaces: Vec<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Lists every key (id, name, scopes, status, created, expires, revoked, rotated
    /// from, account namespaces); secrets are not stored, so none is shown.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Revokes a key: every `tally serve` on the database refuses it within a second.
    Revoke {
        /// The key's id (from `tally keys list`).
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Rotates a key: prints a new key with the same name, scopes and account namespaces
    /// once; the old key keeps working for the grace period, then stops.
    Rotate {
        /// The id of the key to replace.
        id: String,
        /// How long the old key keeps working, in seconds (0: it stops at once).
        #[arg(long, default_value_t = 3600)]
        grace_seconds: u32,
        /// When the new key stops working (RFC 3339); default never.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<jiff::Timestamp>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// A key's namespaces in `tally keys list`: each as JSON text (a prefix may hold spaces or
/// tabs), separated by spaces; `-` for a key not limited by code.
fn namespaces_listed(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        return "-".to_string();
    }
    namespaces
        .iter()
        .map(|prefix| serde_json::Value::from(prefix.as_str()).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn namespaces_described(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "on any ledger account its scopes allow".to_string()
    } else {
        format!(
            "limited to account codes starting with {}",
            namespaces_listed(namespaces)
        )
    }
}

fn optional_time(at: Option<jiff::Timestamp>) -> String {
    at.map_or_else(|| "-".to_string(), |at| at.to_string())
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            expires_at,
            account_namespaces,
            config,
        } => {
            for scope in &scopes {
                if !tally_server::auth::SCOPES.contains(&scope.as_str()) {
                    anyhow::bail!(
                        "unknown scope {scope:?}; known scopes: {}",
                        tally_server::auth::SCOPES.join(", ")
                    );
                }
            }
            if name.trim().is_empty() {
                anyhow::bail!("--name must not be empty");
            }
            let (database, _) = crate::jobs::open(&config).await?;
            let created = database
                .create_api_key_in_namespaces(
                    &name,
                    &scopes,
                    &account_namespaces,
                    expires_at,
                    SystemClock.now(),
                )
                .await;
            database.close().await;
            let created = created?;
            eprintln!(
                "created key {:?} ({}) with scopes {}, expiring {}, {}; it is shown once:",
                created.key.name,
                created.key.id,
                scopes.join(" "),
                optional_time(created.key.expires_at),
                namespaces_described(&created.key.account_namespaces),
            );
            println!("{}", created.secret.expose());
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { config } => {
            let (database, _) = crate::jobs::open(&config).await?;
            let keys = database.api_keys().await;
            database.close().await;
            let now = SystemClock.now();
            println!(
                "id\tname\tscopes\tstatus\tcreated_at\texpires_at\trevoked_at\trotated_from\taccount_namespaces"
            );
            for key in keys? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.name,
                    key.scopes.join(" "),
                    key.status(now),
                    key.created_at,
                    optional_time(key.expires_at),
                    optional_time(key.revoked_at),
                    key.rotated_from.as_deref().unwrap_or("-"),
                    namespaces_listed(&key.account_namespaces),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { id, config } => {
            let (database, _) = crate::jobs::open(&config).await?;
            let revoked = database.revoke_api_key(&id, SystemClock.now()).await;
            database.close().await;
            let key = revoked?;
            eprintln!(
                "revoked key {:?} ({}); every tally serve on this database refuses it within {} s",
                key.name,
                key.id,
                tally_server::auth::CACHE_TIME_TO_LIVE.as_secs()
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate {
            id,
            grace_seconds,
            expires_at,
            config,
        } => {
            let (database, _) = crate::jobs::open(&config).await?;
            let rotated = database
                .rotate_api_key(
                    &id,
                    jiff::SignedDuration::from_secs(i64::from(grace_seconds)),
                    expires_at,
                    SystemClock.now(),
                )
                .await;
            let old = database.api_key(&id).await;
            database.close().await;
            let rotated = rotated?;
            eprintln!(
                "key {id} works until {}; its replacement {:?} ({}) with scopes {}, expiring {}, {}, is shown once:",
                optional_time(old?.and_then(|old| old.expires_at)),
                rotated.key.name,
                rotated.key.id,
                rotated.key.scopes.join(" "),
                optional_time(rotated.key.expires_at),
                namespaces_described(&rotated.key.account_namespaces),
            );
            println!("{}", rotated.secret.expose());
            Ok(ExitCode::SUCCESS)
        }
    }
}
