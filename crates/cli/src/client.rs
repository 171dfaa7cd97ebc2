//! What the HTTP-client subcommands (`tally credit`, `tally customers`, `tally pay`, ...)
//! share: where the server is and the key to call it with, the idempotency key of a write
//! and how an answer is printed and turned into an exit code.

use anyhow::{anyhow, Context};
use reqwest::Url;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;

/// Where `tally serve` listens and the API key to call it with (each subcommand's help
/// names the scopes it needs).
#[derive(Debug, clap::Args)]
pub struct Server {
    /// Where `tally serve` listens.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// API key (the scopes each subcommand needs are in its help).
    #[arg(long, env = "TALLY_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
}

/// The arguments of an HTTP-client subcommand: the server, then what to ask it.
#[derive(Debug, clap::Args)]
pub struct Arguments<Command: clap::Subcommand> {
    #[command(flatten)]
    pub server: Server,
    #[command(subcommand)]
    pub command: Command,
}

impl Server {
    /// The API key, or what to give.
    pub fn api_key(&self) -> anyhow::Result<String> {
        self.api_key
            .clone()
            .ok_or_else(|| anyhow!("an API key is needed: --api-key or TALLY_API_KEY"))
    }

    /// `{url}/v1{path}`.
    pub fn base(&self, path: &str) -> String {
        format!("{}/v1{path}", self.url.trim_end_matches('/'))
    }

    /// `{url}/v1{path}` as a URL.
    pub fn endpoint(&self, path: &str) -> anyhow::Result<Url> {
        Url::parse(&self.base(path)).with_context(|| format!("--url {:?}", self.url))
    }

    /// Appends `segments` to `url`'s path, each escaped: whatever is typed names a
    /// resource, not a route.
    pub fn push_path(&self, url: &mut Url, segments: &[&str]) -> anyhow::Result<()> {
        url.path_segments_mut()
            .map_err(|()| anyhow!("--url {:?} cannot have a path", self.url))?
            .extend(segments);
        Ok(())
    }
}

/// The idempotency key of a write: the one given, or a fresh one printed on standard error
/// so that the caller can retry with it.
pub fn idempotency_key(given: Option<&str>) -> String {
    match given {
        Some(key) => key.to_owned(),
        None => {
            let key = uuid::Uuid::now_v7().to_string();
            eprintln!("idempotency key: {key}");
            key
        }
    }
}

/// Sends `request` (`method` and `url` name it in a connection error) and prints the answer:
/// a success as pretty JSON on standard output (exit 0), a refusal as
/// `{status}: {code}: {message}` on standard error (exit 1).
pub async fn send_and_print(
    request: reqwest::RequestBuilder,
    method: &str,
    url: &str,
) -> anyhow::Result<ExitCode> {
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        // A closed pipe (`| head`) is not an error of the call.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&answer)?
        );
        Ok(ExitCode::SUCCESS)
    } else {
        let code = answer["error"]["code"].as_str().unwrap_or("error");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        eprintln!("{status}: {code}: {message}");
        Ok(ExitCode::from(1))
    }
}
