//! `tally privacy reseal`: seals every customer's personal data again under the active
//! encryption key, so that an old key can be removed from the configuration
//! (`tally_server::key_rotation` has the procedure and its guarantees).

use anyhow::Context;
use std::process::ExitCode;
use tally_store::Database;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-seal every customer's fields under `privacy.active_encryption_key`, reading the
    /// old values with whichever configured key sealed them. Safe beside a running service;
    /// running it again changes nothing. Prints a JSON report.
    Reseal {
        /// Customers read and written per page.
        #[arg(long, default_value_t = 1_000)]
        page_size: i64,
        /// Database (`--database-url`) and configuration file with the `[privacy]` keys, as
        /// for `tally serve` (`TALLY__PRIVACY__...` variables override the file).
        #[command(flatten)]
        config: crate::serve::ConfigArgs,
    },
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Reseal { page_size, config } = command;
    let config = config.load()?;
    let settings = &config.privacy;
    let help = tally_server::routes::customers::PRIVACY_KEYS_HELP;
    let active = settings
        .active_encryption_key
        .as_deref()
        .with_context(|| format!("no active encryption key: {help}"))?;
    let blind_index_key = settings
        .blind_index_key
        .as_ref()
        .with_context(|| format!("no blind index key: {help}"))?;
    let privacy = tally_privacy::Privacy::new(&settings.encryption_keys, active, blind_index_key)
        .context("privacy keys")?;
    let database = Database::connect(config.database.url.expose())
        .await
        .context("connecting")?;
    database.migrate().await?;
    let report =
        tally_service::key_rotation::reseal_customers(&database, &privacy, page_size).await;
    database.close().await;
    let report = report?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "{} of {} customers re-sealed ({} values); every value is now under key {:?}",
        report.customers_resealed, report.customers, report.values_resealed, report.active_key
    );
    Ok(ExitCode::SUCCESS)
}
