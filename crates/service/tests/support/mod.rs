//! What the payment service's stories share: the ledger writer and the credit service on a
//! test database, the shopper's credit line, a balance funded with card money the channel
//! owes Tally (as a top-up through the channel would), and a bank simulator on a free port
//! with the channel that speaks to it; the random orders of the settlement properties
//! ([`orders`]).
// Each test binary uses part of it.
#![allow(dead_code)]

pub mod orders;

use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_channel::simulator::{serve, SimulatorConfig, SimulatorControl};
use tally_channel::{Channel, HttpChannel, HttpChannelConfig};
use tally_core::{AccountId, Amount, Clock, Currency, Secret};
use tally_credit::{Account, Cycle};
use tally_ledger::{Command, NewEntry, NewLeg, Side};
use tally_service::credit::decision::{CreditFiles, CreditService};
use tally_service::credit::operations::{Answer, AnswerKind};
use tally_service::payments::accounts::{Balance, PAYMENTS_SERVICE};
use tally_service::payments::PaymentService;
use tally_store::{Database, LedgerWriter, WriterConfig};

/// The shopper of every story.
pub const CUSTOMER: &str = "shopper-1";

/// The secret the bank simulator and the channel share.
pub const BANK_SECRET: &str = "bank-secret";

/// The ledger writer on `database` and the credit service over it, with the default
/// credit files.
pub async fn credit_service(
    database: &Database,
    clock: Arc<dyn Clock>,
) -> (LedgerWriter, Arc<CreditService>) {
    let writer = LedgerWriter::start(database, clock, WriterConfig::default())
        .await
        .unwrap()
        .0;
    let credit = Arc::new(
        CreditService::start(
            database.clone(),
            writer.clone(),
            CreditFiles::default().load().unwrap(),
        )
        .await
        .unwrap(),
    );
    (writer, credit)
}

/// Opens the shopper's credit line with `limit` at `at` (statement day 5, due day 20); its
/// id.
pub async fn open_credit_line(credit: &CreditService, limit: Amount, at: Timestamp) -> i64 {
    let account = Account::open(limit, Cycle::new(5, 20).unwrap()).unwrap();
    let answer = credit
        .operations
        .open(
            "open-1",
            "open-1",
            Some(CUSTOMER),
            Some(&account),
            at,
            |id| Answer {
                kind: AnswerKind::Created,
                body: serde_json::json!({ "id": id }),
            },
        )
        .await
        .unwrap();
    answer.body["id"].as_i64().unwrap()
}

/// Puts `amount` in the shopper's `balance` (opened if need be) from the channel's clearing
/// account, as entry `key` with `description`; the balance's account.
pub async fn fund(
    payments: &PaymentService,
    balance: Balance,
    amount: Amount,
    key: String,
    description: &str,
) -> AccountId {
    let service = payments
        .accounts()
        .service(payments.database(), payments.writer(), Currency::CNY)
        .await
        .unwrap();
    let account = payments
        .accounts()
        .balance(
            payments.database(),
            payments.writer(),
            balance,
            CUSTOMER,
            Currency::CNY,
            true,
        )
        .await
        .unwrap()
        .unwrap();
    payments
        .writer()
        .submit_as(
            PAYMENTS_SERVICE,
            key,
            Command::PostEntry(NewEntry {
                description: description.into(),
                metadata: BTreeMap::new(),
                legs: vec![
                    NewLeg {
                        account_id: service.channel_clearing,
                        side: Side::Debit,
                        amount,
                    },
                    NewLeg {
                        account_id: account,
                        side: Side::Credit,
                        amount,
                    },
                ],
            }),
        )
        .await
        .unwrap();
    account
}

/// Starts a bank simulator on a free port whose lost answers arrive `lost_answer_delay_ms`
/// late; its URL and control client.
pub async fn bank(lost_answer_delay_ms: u64) -> (String, SimulatorControl) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let mut config = SimulatorConfig::new(BANK_SECRET);
    config.lost_answer_delay_ms = lost_answer_delay_ms;
    tokio::spawn(async move { serve(listener, config).await });
    let control = SimulatorControl::new(&url, BANK_SECRET).unwrap();
    (url, control)
}

/// The channel to the bank at `url`, giving up on an answer after `timeout`.
pub fn channel(url: String, timeout: std::time::Duration) -> Arc<dyn Channel> {
    Arc::new(
        HttpChannel::new(HttpChannelConfig {
            base_url: url,
            timeout,
            secret: Secret::new(BANK_SECRET.to_string()),
        })
        .unwrap(),
    )
}
