//! `tally consortium serve`: the consortium log service on its own listener, over the
//! Tally database.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tally_consortium::{Genesis, MemberKey, Quorum, SignerKey};
use tally_core::{Clock, SystemClock};
use tally_server::routes::consortium::ConsortiumAppState;
use tally_service::consortium::{ConsortiumConfig, ConsortiumLog};
use tally_store::Database;

use super::keys::{read_blinding_key, verifier_key};
use super::{read_text, ServeArgs};

/// The genesis file: the consortium's name, founders' verifier keys and rules.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    consortium: String,
    /// Verifier keys `name+id+key`.
    founders: Vec<String>,
    /// `[numerator, denominator]`.
    quorum: [u32; 2],
    query_quota_per_day: u32,
    proposal_lifetime_seconds: u64,
    request_skew_seconds_max: u64,
}

fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let file: GenesisFile = serde_json::from_str(&read_text(path)?)
        .with_context(|| format!("parsing the genesis file {}", path.display()))?;
    let founders = file
        .founders
        .iter()
        .map(|text| {
            let key = verifier_key(text)?;
            Ok(MemberKey {
                name: key.name().to_owned(),
                public_key: key.public_key(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Genesis {
        consortium: file.consortium,
        founders,
        quorum: Quorum {
            numerator: file.quorum[0],
            denominator: file.quorum[1],
        },
        query_quota_per_day: file.query_quota_per_day,
        proposal_lifetime_seconds: file.proposal_lifetime_seconds,
        request_skew_seconds_max: file.request_skew_seconds_max,
    })
}

pub(super) async fn serve(arguments: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = arguments.config.load()?;
    // The operator's alarms (an integrity check that finds an edit) are error logs.
    crate::serve::init_logging(&config);
    let signer = SignerKey::parse(read_text(&arguments.operator_key)?.trim())?;
    let blinding = read_blinding_key(&arguments.blinding_key)?;
    let genesis = match &arguments.genesis {
        Some(path) => Some(read_genesis(path)?),
        None => None,
    };
    let address: std::net::SocketAddr = arguments
        .listen
        .parse()
        .with_context(|| format!("{:?} is not an address", arguments.listen))?;
    let database = Database::connect(config.database.url.expose()).await?;
    database.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The recorder first, so that the integrity checks' metrics are kept from the start.
    let _ = tally_server::metrics::handle();
    let mut log_config = ConsortiumConfig::new(signer, blinding, genesis);
    log_config.integrity_check_interval_seconds =
        config.consortium_log.integrity_check_interval_seconds;
    let (log, thread) = ConsortiumLog::start(&database, clock, log_config)
        .await
        .context("opening the consortium log")?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    eprintln!(
        "tally consortium log is serving on http://{address} ({:?}); tlog-tiles prefix \
         http://{address}/v1/consortium; stored log checked every {} s",
        database.backend(),
        config.consortium_log.integrity_check_interval_seconds
    );
    axum::serve(
        listener,
        tally_server::consortium_app(ConsortiumAppState::new(log)),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Every handle is gone with the router: the operator thread finishes its batch.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    database.close().await;
    Ok(ExitCode::SUCCESS)
}
