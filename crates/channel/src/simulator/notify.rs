//! Delivery of the simulator's notifications: each signed at the moment it is sent, after a
//! random delay (late and out of order), retried with doubling back-off until a 2xx.

use crate::notification::{signature_header, SIGNATURE_HEADER};
use crate::simulator::state::Delivery;
use std::sync::Arc;
use std::time::Duration;
use tally_core::{Clock, Secret};

/// Sends notifications to one URL.
#[derive(Clone)]
pub(crate) struct Notifier {
    client: reqwest::Client,
    url: String,
    secret: Secret<String>,
    clock: Arc<dyn Clock>,
    attempts_max: u32,
    retry_base: Duration,
}

/// Longest wait between two attempts.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(60);

impl Notifier {
    pub(crate) fn new(
        url: String,
        secret: Secret<String>,
        clock: Arc<dyn Clock>,
        attempts_max: u32,
        retry_base: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Notifier {
            client,
            url,
            secret,
            clock,
            attempts_max,
            retry_base,
        })
    }

    /// Starts a task per delivery of each notification; returns at once.
    pub(crate) fn dispatch(&self, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            let body = delivery.notification.to_json();
            for delay_ms in delivery.delays_ms {
                let notifier = self.clone();
                let body = body.clone();
                let event_id = delivery.notification.event_id.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    notifier.deliver(&event_id, body).await;
                });
            }
        }
    }

    async fn deliver(&self, event_id: &str, body: Vec<u8>) {
        let mut wait = self.retry_base;
        for attempt in 1..=self.attempts_max {
            let header = signature_header(self.secret.expose().as_bytes(), self.clock.now(), &body);
            let sent = self
                .client
                .post(&self.url)
                .header(SIGNATURE_HEADER, header)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => tracing::info!(
                    event_id,
                    attempt,
                    status = response.status().as_u16(),
                    "notification refused"
                ),
                Err(error) => {
                    tracing::info!(event_id, attempt, %error, "notification not delivered")
                }
            }
            if attempt < self.attempts_max {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_DELAY_MAX);
            }
        }
        tracing::warn!(event_id, "notification abandoned after its last attempt");
    }
}
