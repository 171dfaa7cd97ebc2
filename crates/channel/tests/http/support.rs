//! Starting a simulator on a random local port, and the small helpers every test uses.

use std::sync::Arc;
use std::time::Duration;
use tally_channel::simulator::{self, CardView, SimulatorConfig, SimulatorControl};
use tally_channel::{CardToken, Channel, ChannelId, HttpChannel, HttpChannelConfig, Reference};
use tally_core::{Amount, Clock, Currency, Secret, SystemClock};

pub const SECRET: &str = "channel-test-secret";
pub const VISA: &str = "4242424242424242";
pub const MASTERCARD: &str = "5555555555554444";

/// A running simulator and clients of it.
pub struct Bank {
    pub url: String,
    pub control: SimulatorControl,
    /// Held as the payment service holds it.
    pub channel: Arc<dyn Channel>,
}

impl Bank {
    /// A channel to this bank with another timeout or secret.
    pub fn channel_with(&self, timeout: Duration, secret: &str) -> Arc<dyn Channel> {
        http_channel(&self.url, timeout, secret)
    }

    /// Registers a card with `balance` CNY and returns its token.
    pub async fn card(&self, number: &str, balance: &str) -> CardToken {
        self.control
            .register_card(number, "12/35", cny(balance))
            .await
            .expect("a registered card")
            .token
    }

    pub async fn view(&self, token: &CardToken) -> CardView {
        self.control.card(token).await.expect("a card view")
    }
}

pub fn config() -> SimulatorConfig {
    let mut config = SimulatorConfig::new(SECRET);
    config.seed = 42;
    config
}

pub async fn start(config: SimulatorConfig) -> Bank {
    start_with_clock(config, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(config: SimulatorConfig, clock: Arc<dyn Clock>) -> Bank {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let url = format!("http://{}/", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        simulator::serve_with_clock(listener, config, clock)
            .await
            .expect("the simulator serves");
    });
    let control = SimulatorControl::new(&url, SECRET).expect("a control client");
    let channel = http_channel(&url, Duration::from_secs(5), SECRET);
    Bank {
        url,
        control,
        channel,
    }
}

fn http_channel(url: &str, timeout: Duration, secret: &str) -> Arc<dyn Channel> {
    Arc::new(
        HttpChannel::new(HttpChannelConfig {
            base_url: url.to_string(),
            timeout,
            secret: Secret::new(secret.to_string()),
        })
        .expect("a valid channel configuration"),
    )
}

pub fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).expect("a CNY amount")
}

pub fn reference(text: &str) -> Reference {
    Reference::new(text).expect("a valid reference")
}

/// A balance field of a card view, as text with the currency's digits.
pub fn balance(view: &CardView, field: fn(&CardView) -> &String) -> String {
    view.amount(field(view))
        .expect("a readable balance")
        .to_decimal_string()
}

/// The refusal code of a channel error, or a panic naming what came instead.
pub fn refusal_code<T: std::fmt::Debug>(result: Result<T, tally_channel::ChannelError>) -> String {
    match result {
        Err(tally_channel::ChannelError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn channel_id(text: &str) -> ChannelId {
    ChannelId::new(text).expect("a valid channel id")
}
