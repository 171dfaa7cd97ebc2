//! How the command line's database jobs (`tally eod`, `settle`, `payouts`, `daily`, `report`,
//! `privacy`, `keys`, `migrate`, `bench`) open their database: the configuration loaded (file,
//! `TALLY__` variables, then flags), a connection, the migrations applied. Written once so
//! that every job opens it the same way and names a failure alike.

use crate::serve::ConfigArgs;
use anyhow::Context;
use tally_server::Config;
use tally_store::Database;

/// The process's configuration and its database, connected and migrated.
pub async fn open(arguments: &ConfigArgs) -> anyhow::Result<(Database, Config)> {
    let config = arguments.load()?;
    let database = connect(config.database.url.expose()).await?;
    Ok((database, config))
}

/// The database at `url`, connected and migrated: for a job that reads its configuration
/// itself (or has none).
pub async fn connect(url: &str) -> anyhow::Result<Database> {
    let database = Database::connect(url).await.context("connecting")?;
    database.migrate().await.context("migrating")?;
    Ok(database)
}
