//! `tally privacy reseal` and `tally privacy rotate-blind-index`: re-seal every customer's
//! personal data under the active encryption key, so that an old key can be removed from the
//! configuration, and recompute every customer's blind indexes under the current blind index
//! key, so that `previous_blind_index_key` can be removed (`tally_service::key_rotation` has
//! the procedures and their guarantees); and `tally privacy fingerprint-events`: rewrite the
//! cards and addresses of risk events and list entries stored before they were fingerprinted
//! (`tally_service::risk_fingerprints::backfill`).

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
    /// Rewrite the cards and addresses of risk events and list entries stored before they
    /// were fingerprinted to their keyed fingerprints (`privacy.risk_fingerprint_key`), so
    /// none stays in clear and lists and velocity features keep matching them. Safe beside a
    /// running service; resumable (run it again, or from `--after`, the last event it
    /// reported); progress on stderr after each page, a JSON report on stdout. Restart the
    /// service afterwards so that its features count old events under their fingerprints.
    FingerprintEvents {
        /// Rows read and written per page.
        #[arg(long, default_value_t = 1_000)]
        page_size: i64,
        /// Go on after this event sequence (a stopped walk's `last_sequence`).
        #[arg(long, default_value_t = 0)]
        after: i64,
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
                "{} of {} customers re-sealed ({} values), {} free texts re-sealed; every value \
                 is now under key {:?}",
                report.customers_resealed,
                report.customers,
                report.values_resealed,
                report.texts_resealed,
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
        Command::FingerprintEvents {
            page_size,
            after,
            config,
        } => {
            let (privacy, database) = keys_and_database(config).await?;
            let report = tally_service::risk_fingerprints::backfill(
                &database,
                &privacy,
                after,
                page_size,
                None,
                jiff::Timestamp::now(),
                |progress| {
                    eprintln!(
                        "list entries {} ({} rewritten), events {} ({} rewritten), last event {}",
                        progress.list_entries,
                        progress.list_entries_rewritten,
                        progress.events,
                        progress.events_rewritten,
                        progress.last_sequence
                    )
                },
            )
            .await;
            // The old page images of rewritten rows leave the SQLite `-wal` file too.
            let truncated = match &report {
                Ok(_) => database.truncate_write_ahead_log().await?,
                Err(_) => false,
            };
            database.close().await;
            let report = report.map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
            if !truncated {
                eprintln!(
                    "the write-ahead log could not be emptied while other connections read \
                     it: run the command again when the service is idle"
                );
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!(
                "{} of {} list entries and {} of {} events rewritten to fingerprints",
                report.list_entries_rewritten,
                report.list_entries,
                report.events_rewritten,
                report.events
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
