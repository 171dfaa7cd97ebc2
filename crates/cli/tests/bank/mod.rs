//! What the payment tests of the `tally` binary share: the bank simulator run as its own
//! process (`tally channel simulate`), cards registered with it, and the environment that
//! points `tally serve` at it.
// Each test binary uses part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_channel::simulator::{CardView, SimulatorControl};
use tally_channel::CardToken;
use tally_core::{Amount, Currency};

/// The bearer token of the simulator and the key of its signatures.
pub const SECRET: &str = "bank-secret-for-tests";

/// `tally channel simulate` on a free port, killed when this is dropped.
pub struct Bank {
    process: Child,
    /// Its base URL, ending in `/`.
    pub url: String,
    pub control: SimulatorControl,
}

impl Bank {
    /// Starts the simulator (no faults, `latency_ms` added to every answer) and waits until
    /// it answers.
    pub async fn start(binary: &str, port: u16, latency_ms: u64) -> Bank {
        let listen = format!("127.0.0.1:{port}");
        let process = Command::new(binary)
            .args(["channel", "simulate", "--listen", &listen])
            .args(["--latency-ms", &latency_ms.to_string()])
            .env("TALLY_CHANNEL_SECRET", SECRET)
            .env("TALLY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://{listen}/");
        let control = SimulatorControl::new(&url, SECRET).unwrap();
        let bank = Bank {
            process,
            url,
            control,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Any answer (a card that does not exist is refused) means it is listening.
        while let Err(tally_channel::ChannelError::Unavailable(_)) = bank
            .control
            .card(&CardToken::new("tok_probe".to_string()).unwrap())
            .await
        {
            assert!(
                Instant::now() < deadline,
                "the bank simulator did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bank
    }

    /// The environment that makes `tally serve` use this bank for cards, with `extra`
    /// settings. Leaked (a few bytes a test): the crash driver keeps it to restart the
    /// server with.
    pub fn server_environment(
        &self,
        extra: &[(&'static str, &'static str)],
    ) -> &'static [(&'static str, &'static str)] {
        let url: &'static str = Box::leak(self.url.clone().into_boxed_str());
        let mut environment = vec![
            ("TALLY__PAYMENTS__CHANNEL_URL", url),
            ("TALLY__PAYMENTS__CHANNEL_SECRET", SECRET),
        ];
        environment.extend_from_slice(extra);
        Box::leak(environment.into_boxed_slice())
    }

    /// Registers card number `index` (each index its own card and balance) with `balance`
    /// CNY; answers its token.
    pub async fn card(&self, index: u64, balance: &str) -> CardToken {
        let balance = Amount::parse(balance, Currency::CNY).unwrap();
        self.control
            .register_card(&card_number(index), "12/39", balance)
            .await
            .unwrap()
            .token
    }

    /// The bank's view of a card: held, captured, refunded and the rest.
    pub async fn view(&self, token: &CardToken) -> CardView {
        self.control.card(token).await.unwrap()
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A 16-digit card number passing the Luhn check, distinct for each `index`.
pub fn card_number(index: u64) -> String {
    let body = format!("400000{index:09}");
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(position, digit)| {
            let digit = digit.to_digit(10).unwrap();
            // From the right, every other digit starting with the first (the check digit
            // will sit to its right) is doubled.
            if position % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}
