//! `tally privacy reseal` and `tally privacy rotate-blind-index`: re-seal every customer's
//! personal data under the active encryption key, so that an old key can be removed from the
//! configuration, and recompute every customer's blind indexes under the current blind index
//! key, so that `previous_blind_index_key` can be removed (`tally_service::key_rotation` has
//! the procedures and their guarantees).

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
    /// Recompute every customer's blind indexes (phone, national id, the creation's keyed
    /// request hash) under `privacy.blind_index_key`, while `privacy.previous_blind_index_key`
    /// keeps lookups finding customers not walked yet. Safe beside a running service;
    /// resumable (run it again, or from `--after`, the last customer it reported). Prints a
    /// JSON report; then remove the previous key from the configuration.
    RotateBlindIndex {
        /// Customers read and written per page.
        #[arg(long, default_value_t = 1_000)]
        page_size: i64,
        /// Go on after this customer id (a stopped walk's `last_customer`).
        #[arg(long, default_value = "")]
        after: String,
        #[command(flatten)]
        config: crate::serve::ConfigArgs,
    },
}

async fn keys_and_database(
    config: crate::serve::ConfigArgs,
) -> anyhow::Result<(tally_privacy::Privacy, Database)> {
    let config = config.load()?;
    let help = tally_server::routes::customers::PRIVACY_KEYS_HELP;
    let privacy = config
        .privacy
        .keys()
        .with_context(|| format!("no active encryption key or blind index key: {help}"))?
        .context("privacy keys")?;
    let database = crate::jobs::connect(config.database.url.expose()).await?;
    Ok((privacy, database))
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Reseal { page_size, config } => {
            let (privacy, database) = keys_and_database(config).await?;
            let report =
                tally_service::key_rotation::reseal_customers(&database, &privacy, page_size).await;
            database.close().await;
            let report = report?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!(
                "{} of {} customers re-sealed ({} values); every value is now under key {:?}",
                report.customers_resealed,
                report.customers,
                report.values_resealed,
                report.active_key
            );
        }
        Command::RotateBlindIndex {
            page_size,
            after,
            config,
        } => {
            let (privacy, database) = keys_and_database(config).await?;
            let report = tally_service::key_rotation::rotate_blind_index(
                &database, &privacy, &after, page_size, None,
            )
            .await;
            database.close().await;
            let report = report?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!(
                "{} of {} customers' blind indexes recomputed ({} already current, {} erased); \
                 privacy.previous_blind_index_key can now be removed",
                report.customers_rekeyed,
                report.customers,
                report.customers_current,
                report.customers_erased
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
