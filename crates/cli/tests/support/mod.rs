//! What the crash tests of `tally serve` share: a free port, starting the real binary,
//! waiting for it to answer, and a POST with an idempotency key.

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_tally");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tally serve` on `url` and `port` in `directory`, with extra environment.
pub fn start_server(
    url: &str,
    port: u16,
    directory: &std::path::Path,
    environment: &[(&str, &str)],
) -> Child {
    Command::new(BINARY)
        .args([
            "serve",
            "--database-url",
            url,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(directory)
        .env("TALLY_LOG", "warn")
        .envs(environment.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub async fn wait_until_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn post(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    idempotency: &str,
    path: &str,
    body: &Value,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let value = response.json().await?;
    Ok((status, value))
}
