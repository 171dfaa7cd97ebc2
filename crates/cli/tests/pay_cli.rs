//! `tally pay` against the real `tally serve` and the bank simulator, each its own process,
//! on SQLite: a card saved, the wallet topped up from it (retried with its key), one
//! combined payment (wallet and card) created, confirmed, captured and partly refunded, with
//! the wallet and the bank's view of the card agreeing; and refusals printed with their
//! status and code and a non-zero exit, changing nothing.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::process::Command;
use tally_store::testing::TestDatabase;

mod support;
use support::{create_key, free_port, start_server, wait_until_healthy, Run, BINARY};

mod bank;
use bank::Bank;

const CUSTOMER: &str = "shopper-1";

impl Run {
    /// The JSON answer of a call that succeeded.
    fn answer(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap()
    }

    /// Asserts a refusal printed as `{status}: {code}: {message}` with exit code 1.
    fn assert_refused(&self, status: &str, code: &str) {
        assert_eq!(
            self.code, 1,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stdout.is_empty(), "{}", self.stdout);
        // The generated idempotency key, when there is one, comes first.
        let refusal = self.stderr.lines().last().unwrap_or_default();
        let mut parts = refusal.splitn(3, ": ");
        assert_eq!(parts.next(), Some(status), "{}", self.stderr);
        assert_eq!(parts.next(), Some(code), "{}", self.stderr);
        assert!(
            parts.next().is_some_and(|message| !message.is_empty()),
            "no message: {}",
            self.stderr
        );
    }
}

/// `tally serve`, killed when the test ends, failed or not.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tally pay --url BASE --api-key KEY ARGUMENTS…`.
fn pay(base: &str, key: &str, arguments: &[&str]) -> Run {
    Run::of(
        Command::new(BINARY)
            .args(["pay", "--url", base, "--api-key", key])
            .args(arguments)
            .env_remove("TALLY_API_KEY")
            .output()
            .unwrap(),
    )
}

fn cny(value: &str) -> Value {
    json!({"value": value, "currency": "CNY"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_combined_payment_from_the_command_line() {
    let test = TestDatabase::sqlite().await.unwrap();
    let directory = tempfile::tempdir().unwrap();
    let url = test.url_for_another_process();
    let scopes = ["payments:write", "payments:read"];
    let key = create_key(&url, directory.path(), "checkout", &scopes);

    let bank = Bank::start(BINARY, free_port(), 0).await;
    // Merchants' sealed fields need the personal-data keys.
    let environment = bank.server_environment(support::PRIVACY_KEYS);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(start_server(&url, port, directory.path(), environment));
    wait_until_healthy(&reqwest::Client::new(), &base).await;
    let pay = |arguments: &[&str]| pay(&base, &key, arguments);

    // The merchant is onboarded before it is paid, with `tally merchants`.
    let merchant = Run::of(
        Command::new(BINARY)
            .args(["merchants", "--url", &base, "--api-key", &key, "onboard"])
            .args(["--id", "merchant-1", "--legal-name", "Merchant One Ltd"])
            .args([
                "--licence-number",
                "LIC-1",
                "--bank-account",
                "6222020000000001",
            ])
            .args(["--category-code", "5411", "--time-zone", "Asia/Shanghai"])
            .args(["--currency", "CNY"])
            .env_remove("TALLY_API_KEY")
            .output()
            .unwrap(),
    )
    .answer();
    assert_eq!(merchant["status"], "active", "{merchant}");
    assert_eq!(merchant["bank_account"], "************0001", "{merchant}");

    // The shopper's card, tokenised by the bank and saved for them.
    let token = bank.card(1, "1000.00").await;
    let card = pay(&[
        "cards",
        "save",
        "--customer",
        CUSTOMER,
        "--token",
        token.as_str(),
    ])
    .answer();
    assert_eq!(card["token"], token.as_str(), "{card}");
    assert_eq!(card["last_four"], &bank::card_number(1)[12..], "{card}");
    let cards = pay(&["cards", "list", "--customer", CUSTOMER]).answer();
    assert_eq!(cards["cards"].as_array().unwrap().len(), 1, "{cards}");

    // The wallet topped up from the card; the same key again answers the same, once.
    let top_up = [
        "wallet",
        "top-up",
        CUSTOMER,
        "--card",
        token.as_str(),
        "--amount",
        "300.00",
        "--key",
        "top-up-1",
    ];
    let first = pay(&top_up).answer();
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(pay(&top_up).answer(), first);
    let wallet = pay(&["wallet", "show", CUSTOMER]).answer();
    assert_eq!(wallet["wallet"]["balance"], cny("300.00"), "{wallet}");

    // 120.00: 50.00 from the wallet, the rest from the card; the key is made and printed.
    let create = pay(&[
        "create",
        "--merchant",
        "merchant-1",
        "--order",
        "order-1",
        "--customer",
        CUSTOMER,
        "--amount",
        "120.00",
        "--wallet",
        "50.00",
        "--card",
        token.as_str(),
    ]);
    assert!(
        create.stderr.starts_with("idempotency key: "),
        "{}",
        create.stderr
    );
    let created = create.answer();
    assert_eq!(created["status"], "created", "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let legs = &created["legs"];
    assert_eq!(legs[0]["kind"], "wallet");
    assert_eq!(legs[0]["amount"], cny("50.00"));
    assert_eq!(legs[1]["kind"], "card");
    assert_eq!(legs[1]["amount"], cny("70.00"));

    let confirmed = pay(&["confirm", &id, "--key", "confirm-1"]).answer();
    assert_eq!(confirmed["status"], "captured", "{confirmed}");
    assert_eq!(confirmed["legs"][0]["captured"], cny("50.00"));
    assert_eq!(confirmed["legs"][1]["captured"], cny("70.00"));
    assert_eq!(
        pay(&["confirm", &id, "--key", "confirm-1"]).answer(),
        confirmed
    );

    // 30.00 back, to the card first (the last source listed).
    let refunded = pay(&["refund", &id, "--amount", "30.00"]).answer();
    assert_eq!(refunded["status"], "partially_refunded", "{refunded}");
    assert_eq!(refunded["refunds"][0]["status"], "succeeded", "{refunded}");
    assert_eq!(refunded["legs"][1]["refunded"], cny("30.00"), "{refunded}");
    assert_eq!(pay(&["get", &id]).answer(), refunded);

    let wallet = pay(&["wallet", "show", CUSTOMER, "--currency", "CNY"]).answer();
    assert_eq!(wallet["wallet"]["balance"], cny("250.00"), "{wallet}");
    assert_eq!(wallet["wallet"]["held"], cny("0.00"), "{wallet}");
    let at_bank = bank.view(&token).await;
    assert_eq!(at_bank.captured, "370.00", "{at_bank:?}");
    assert_eq!(at_bank.refunded, "30.00", "{at_bank:?}");
    assert_eq!(at_bank.held, "0.00", "{at_bank:?}");
    assert_eq!(at_bank.available, "660.00", "{at_bank:?}");

    // Refusals: more than the wallet holds fails the payment and releases the card's
    // part; a refund of more than was paid, or a cancel of a paid payment, changes nothing.
    let created = pay(&[
        "create",
        "--merchant",
        "merchant-1",
        "--order",
        "order-2",
        "--customer",
        CUSTOMER,
        "--amount",
        "600.00",
        "--card",
        &format!("{}:100.00", token.as_str()),
        "--wallet",
        "rest",
        "--manual-capture",
    ])
    .answer();
    let declined = created["id"].as_str().unwrap().to_string();
    pay(&["confirm", &declined]).assert_refused("402 Payment Required", "insufficient_balance");
    let failed = pay(&["get", &declined]).answer();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        failed["failure"]["code"], "insufficient_balance",
        "{failed}"
    );
    pay(&["refund", &id, "--amount", "100.00"])
        .assert_refused("422 Unprocessable Entity", "refund_exceeds_paid");
    // A failed payment answers its decline to a capture; a captured one cannot be cancelled.
    pay(&["capture", &declined]).assert_refused("402 Payment Required", "insufficient_balance");
    pay(&["cancel", &id]).assert_refused("409 Conflict", "payment_state_conflict");

    let wallet = pay(&["wallet", "show", CUSTOMER]).answer();
    assert_eq!(wallet["wallet"]["balance"], cny("250.00"), "{wallet}");
    assert_eq!(wallet["wallet"]["held"], cny("0.00"), "{wallet}");
    let at_bank = bank.view(&token).await;
    assert_eq!(at_bank.held, "0.00", "{at_bank:?}");
    assert_eq!(at_bank.captured, "370.00", "{at_bank:?}");
}
