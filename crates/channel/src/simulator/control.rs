//! The simulator's own API beyond what a channel offers Tally: registering cards (the only
//! place a card number goes), viewing a card's balances, faults, down and up, settlement
//! files; its JSON, and `SimulatorControl`, a small client for tests and demos.

use crate::error::ChannelError;
use crate::identifiers::CardToken;
use crate::simulator::faults::{Faults, FaultsUpdate};
use crate::wire::ErrorBody;
use jiff::civil::Date;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tally_core::{Amount, Secret};

/// `POST /v1/cards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRegistration {
    /// 12 to 19 digits passing the Luhn check.
    pub number: String,
    /// `MM/YY`; the card is good through that month.
    pub expiry: String,
    /// The opening available balance, in major units (ignored for a number registered
    /// before: a card has one balance, however many tokens).
    pub balance: String,
    pub currency: String,
}

/// `GET /v1/cards/{token}` (and the answer to `POST /v1/cards`): the card and its
/// balances, all in the card's currency. Always
/// `available = opening_balance − held − captured + refunded + paid_out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardView {
    pub token: CardToken,
    pub last_four: String,
    pub brand: String,
    pub fingerprint: String,
    pub expiry: String,
    pub currency: String,
    pub opening_balance: String,
    /// What the card can still spend.
    pub available: String,
    /// Held by authorisations not yet captured or voided.
    pub held: String,
    /// Taken by captures (refunds do not lower it).
    pub captured: String,
    pub refunded: String,
    pub paid_out: String,
}

impl CardView {
    /// One of the balance fields as an [`Amount`].
    pub fn amount(&self, field: &str) -> Result<Amount, String> {
        crate::wire::amount_from_wire(field, &self.currency)
    }
}

/// A client of the simulator's control endpoints, for tests and demos. Tally's payment
/// service uses [`crate::HttpChannel`], which has no way to send a card number.
#[derive(Debug, Clone)]
pub struct SimulatorControl {
    client: reqwest::Client,
    base_url: Url,
    secret: Secret<String>,
}

impl SimulatorControl {
    pub fn new(base_url: &str, secret: &str) -> Result<Self, ChannelError> {
        let base_url = Url::parse(base_url)
            .map_err(|error| ChannelError::Protocol(format!("base URL: {error}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| ChannelError::Protocol(format!("HTTP client: {error}")))?;
        Ok(SimulatorControl {
            client,
            base_url,
            secret: Secret::new(secret.to_string()),
        })
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<Vec<u8>, ChannelError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| ChannelError::Protocol("base URL cannot hold a path".into()))?
            .pop_if_empty()
            .extend(segments);
        let mut request = self
            .client
            .request(method, url)
            .bearer_auth(self.secret.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ChannelError::Unavailable(error.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ChannelError::Unavailable(error.to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) if status.is_client_error() => Err(ChannelError::Refused {
                code: body.error.code,
                message: body.error.message,
            }),
            Ok(body) => Err(ChannelError::Unavailable(body.error.code)),
            Err(_) => Err(ChannelError::Protocol(format!(
                "{status} without an error body"
            ))),
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T, ChannelError> {
        let bytes = self.call(method, segments, body).await?;
        serde_json::from_slice(&bytes).map_err(|error| ChannelError::Protocol(error.to_string()))
    }

    /// Registers a card number and returns its token with the card's view.
    pub async fn register_card(
        &self,
        number: &str,
        expiry: &str,
        balance: Amount,
    ) -> Result<CardView, ChannelError> {
        let registration = CardRegistration {
            number: number.to_string(),
            expiry: expiry.to_string(),
            balance: balance.to_decimal_string(),
            currency: balance.currency().code().to_string(),
        };
        self.json(Method::POST, &["v1", "cards"], Some(&registration))
            .await
    }

    pub async fn card(&self, token: &CardToken) -> Result<CardView, ChannelError> {
        self.json(Method::GET, &["v1", "cards", token.as_str()], None::<&()>)
            .await
    }

    /// Changes the faults given in `update`; returns all faults in force.
    pub async fn set_faults(&self, update: &FaultsUpdate) -> Result<Faults, ChannelError> {
        self.json(Method::POST, &["v1", "faults"], Some(update))
            .await
    }

    /// Plays the cardholder's issuer: disputes `amount` of the capture under `reference`
    /// (the bank sends `dispute.opened`).
    pub async fn raise_dispute(
        &self,
        reference: &crate::identifiers::Reference,
        amount: Amount,
        reason_code: &str,
        evidence_due_by: jiff::Timestamp,
    ) -> Result<super::DisputeView, ChannelError> {
        let request = super::DisputeRequest {
            reference: reference.clone(),
            amount: amount.to_decimal_string(),
            currency: amount.currency().code().to_string(),
            reason_code: reason_code.to_string(),
            evidence_due_by,
        };
        self.json(Method::POST, &["v1", "disputes"], Some(&request))
            .await
    }

    /// Decides a dispute: `won` (for the merchant) or `lost` (the bank's fee charged).
    pub async fn decide_dispute(
        &self,
        dispute_id: &str,
        outcome: &str,
    ) -> Result<super::DisputeView, ChannelError> {
        let decision = super::DisputeDecision {
            outcome: outcome.to_string(),
        };
        self.json(
            Method::POST,
            &["v1", "disputes", dispute_id, "decision"],
            Some(&decision),
        )
        .await
    }

    /// Every call of the bank's API answers 503 `channel_down` until [`Self::up`].
    pub async fn down(&self) -> Result<(), ChannelError> {
        self.call(Method::POST, &["v1", "down"], None::<&()>)
            .await?;
        Ok(())
    }

    pub async fn up(&self) -> Result<(), ChannelError> {
        self.call(Method::POST, &["v1", "up"], None::<&()>).await?;
        Ok(())
    }

    /// The settlement file of `date` as served (CSV; see [`super::settlement`]).
    pub async fn settlement_file(&self, date: Date) -> Result<String, ChannelError> {
        let date = date.to_string();
        let bytes = self
            .call(Method::GET, &["v1", "settlement-files", &date], None::<&()>)
            .await?;
        String::from_utf8(bytes).map_err(|error| ChannelError::Protocol(error.to_string()))
    }
    /// Sends a batch payout file (see [`crate::payout_file`]) and returns the bank's return
    /// file, both in `encoding`.
    pub async fn payout_file(
        &self,
        file: &[u8],
        encoding: crate::payout_file::FileEncoding,
    ) -> Result<Vec<u8>, ChannelError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| ChannelError::Protocol("base URL cannot hold a path".into()))?
            .pop_if_empty()
            .extend(["v1", "payout-files"]);
        url.query_pairs_mut()
            .append_pair("encoding", encoding.as_str());
        let response = self
            .client
            .post(url)
            .bearer_auth(self.secret.expose())
            .body(file.to_vec())
            .send()
            .await
            .map_err(|error| ChannelError::Unavailable(error.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ChannelError::Unavailable(error.to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ChannelError::Refused {
                code: body.error.code,
                message: body.error.message,
            }),
            Err(_) => Err(ChannelError::Protocol(format!(
                "{status} without an error body"
            ))),
        }
    }
}
