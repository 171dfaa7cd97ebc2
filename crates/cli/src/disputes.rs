//! `tally disputes ...`: merchants' disputes (chargebacks) from the command line, each
//! subcommand one call to a running `tally serve` (`--url`, key in `--api-key` or
//! `TALLY_API_KEY`), answered by the same payment service as the API:
//!
//! - `list [--merchant ID] [--status S] [--after ID] [--limit N]`: `GET /v1/disputes`;
//! - `show ID`: `GET /v1/disputes/{id}`;
//! - `evidence ID (--text TEXT | --file FILE)`: `POST /v1/disputes/{id}/evidence`;
//! - `accept ID`: `POST /v1/disputes/{id}/accept` (the merchant does not contest it).

use anyhow::{bail, Context};
use serde_json::json;
use std::process::ExitCode;

pub type Arguments = crate::client::Arguments<Command>;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Disputes in id (time) order, by merchant and status.
    List {
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long, value_parser = ["opened", "evidence_submitted", "accepted", "won", "lost"])]
        status: Option<String>,
        /// The page after this dispute id.
        #[arg(long)]
        after: Option<String>,
        /// 1 to 500.
        #[arg(long)]
        limit: Option<i64>,
    },
    /// One dispute: its amount, where it was taken from, its evidence and outcome.
    Show { id: String },
    /// Submits the merchant's evidence before the deadline (again: it replaces the earlier).
    Evidence {
        id: String,
        /// The evidence as text.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        text: Option<String>,
        /// A UTF-8 file holding the evidence.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Accepts the dispute: the merchant does not contest it.
    Accept { id: String },
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let api_key = arguments.server.api_key()?;
    let mut url = arguments.server.endpoint("/disputes")?;
    let mut push_path = |segments: &[&str]| arguments.server.push_path(&mut url, segments);
    let http = reqwest::Client::new();
    let request = match &arguments.command {
        Command::List {
            merchant,
            status,
            after,
            limit,
        } => {
            let mut query = url.query_pairs_mut();
            if let Some(merchant) = merchant {
                query.append_pair("merchant_id", merchant);
            }
            if let Some(status) = status {
                query.append_pair("status", status);
            }
            if let Some(after) = after {
                query.append_pair("after", after);
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
            drop(query);
            http.get(url.clone())
        }
        Command::Show { id } => {
            push_path(&[id])?;
            http.get(url.clone())
        }
        Command::Evidence { id, text, file } => {
            push_path(&[id, "evidence"])?;
            let evidence = match (text, file) {
                (Some(text), _) => text.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?,
                (None, None) => bail!("--text or --file is needed"),
            };
            http.post(url.clone())
                .json(&json!({ "evidence": evidence }))
        }
        Command::Accept { id } => {
            push_path(&[id, "accept"])?;
            http.post(url.clone())
        }
    };
    crate::client::send_and_print(request.bearer_auth(&api_key), "request", url.as_str()).await
}
