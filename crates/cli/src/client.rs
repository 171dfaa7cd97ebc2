//! What the HTTP-client subcommands (`tally credit`, `tally customers`) share: the
//! idempotency key of a write and how an answer is printed and turned into an exit code.

use anyhow::Context;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;

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
