//! `tally pay ...`: combined checkout from the command line, for operators, demos and
//! scripts. Each subcommand is one call to a running `tally serve` (`--url`, key in
//! `--api-key` or `TALLY_API_KEY`, scopes `payments:write` / `payments:read`); every write
//! the API makes idempotent carries `--key` (a fresh one is made and printed on standard
//! error when it is not given, so that a retry can reuse it). The answer is printed as JSON;
//! a refusal prints its status, code and message and exits with 1.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Arguments {
    #[command(flatten)]
    pub server: crate::client::Server,
    /// Idempotency key of a write; reuse it to retry safely.
    #[arg(long = "key", visible_alias = "idempotency-key", global = true)]
    pub key: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a payment for an order, paid by one to four sources. Sources are listed in
    /// the order wallet, vault, credit line, card (a refund by `reverse_funding` goes back
    /// to the last first); exactly one may take the rest of the order.
    Create(CreateArguments),
    /// Confirm a payment: every source reserved, all or nothing (and captured when the
    /// capture is automatic).
    Confirm {
        id: String,
        /// The one-time code sent to the shopper, when the payment asked for one.
        #[arg(long)]
        code: Option<String>,
        /// The shopper's device, for risk control.
        #[arg(long)]
        device: Option<String>,
        /// The shopper's IP address, for risk control.
        #[arg(long)]
        ip: Option<String>,
    },
    /// Capture an authorised payment, whole or in part (taken from the sources pro rata).
    Capture {
        id: String,
        /// Less than authorised, e.g. 80.00 (the rest is released); the whole when absent.
        #[arg(long)]
        amount: Option<String>,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Cancel a payment not captured: every reserved source is released.
    Cancel { id: String },
    /// Refund part or all of a captured payment.
    Refund {
        id: String,
        /// e.g. 30.00.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// How the refund is split across the sources.
        #[arg(long, value_enum, default_value_t = RefundPolicy::ReverseFunding)]
        policy: RefundPolicy,
    },
    /// Show a payment, with its legs, refunds and every status change.
    Get { id: String },
    /// Cards saved for customers (tokens of the channel, never numbers).
    #[command(subcommand)]
    Cards(CardsCommand),
    /// A customer's wallet and vault.
    #[command(subcommand)]
    Wallet(WalletCommand),
}

#[derive(Debug, clap::Args)]
pub struct CreateArguments {
    #[arg(long)]
    pub merchant: String,
    /// The merchant's order reference.
    #[arg(long)]
    pub order: String,
    /// The paying customer (1 to 64 ASCII letters, digits, `-`, `_`, `.`).
    #[arg(long)]
    pub customer: String,
    /// The order's amount, e.g. 120.00.
    #[arg(long)]
    pub amount: String,
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// Pay from the wallet: an amount (e.g. 20.00) or `rest`.
    #[arg(long, value_name = "AMOUNT|rest")]
    pub wallet: Option<String>,
    /// Pay from the vault (an instant redemption): an amount or `rest`.
    #[arg(long, value_name = "AMOUNT|rest")]
    pub vault: Option<String>,
    /// Pay from a credit account in TERM monthly installments: `ACCOUNT:TERM` takes the
    /// rest, `ACCOUNT:TERM:AMOUNT` a fixed amount.
    #[arg(long, value_name = "ACCOUNT:TERM[:AMOUNT]")]
    pub credit_line: Option<String>,
    /// Pay from a saved card: `TOKEN` takes the rest, `TOKEN:AMOUNT` a fixed amount.
    #[arg(long, value_name = "TOKEN[:AMOUNT]")]
    pub card: Option<String>,
    /// Capture only when asked (`tally pay capture`), within 7 days.
    #[arg(long)]
    pub manual_capture: bool,
    /// Until when the shopper may complete it (RFC 3339); 30 minutes from now by default.
    #[arg(long)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// The last source listed first.
    ReverseFunding,
    /// In proportion to what each source can still get back.
    ProRata,
    /// Tally's own sources first, the card last.
    CardLast,
}

impl RefundPolicy {
    fn as_str(self) -> &'static str {
        match self {
            RefundPolicy::ReverseFunding => "reverse_funding",
            RefundPolicy::ProRata => "pro_rata",
            RefundPolicy::CardLast => "card_last",
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum CardsCommand {
    /// Save a card the channel tokenised for a customer (saving it again changes nothing,
    /// so it needs no idempotency key).
    Save {
        #[arg(long)]
        customer: String,
        /// The channel's token.
        #[arg(long)]
        token: String,
    },
    /// A customer's saved cards, oldest first.
    List {
        #[arg(long)]
        customer: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum WalletCommand {
    /// The wallet and the vault: balance, held by payments in flight, available.
    Show {
        customer: String,
        /// ISO 4217 code (CNY when absent).
        #[arg(long)]
        currency: Option<String>,
    },
    /// Top the wallet up from a saved card.
    TopUp {
        customer: String,
        /// The saved card's token.
        #[arg(long)]
        card: String,
        /// e.g. 300.00.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Withdraw from the wallet to a saved card (a payout by the bank).
    Withdraw {
        customer: String,
        #[arg(long)]
        card: String,
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Move money from the wallet to the vault.
    VaultSubscribe {
        customer: String,
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Move money from the vault to the wallet at once (limited per day).
    VaultRedeem {
        customer: String,
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
}

fn money(value: &str, currency: &str) -> Value {
    json!({"value": value, "currency": currency})
}

/// A funding's amount: `rest` (no amount: the rest of the order) or a fixed value.
fn share(funding: Value, amount: &str, currency: &str) -> Value {
    let mut funding = funding;
    if amount != "rest" {
        funding["amount"] = money(amount, currency);
    }
    funding
}

/// Whether `text` reads as an amount (digits with at most one `.`) or `rest`: what may end
/// a `--card TOKEN:AMOUNT`.
fn is_share(text: &str) -> bool {
    text == "rest"
        || (!text.is_empty()
            && text.chars().all(|c| c.is_ascii_digit() || c == '.')
            && text.chars().filter(|&c| c == '.').count() <= 1)
}

/// The sources of `pay create`, in the order wallet, vault, credit line, card.
fn fundings(arguments: &CreateArguments) -> anyhow::Result<Vec<Value>> {
    let currency = &arguments.currency;
    let mut fundings = Vec::new();
    if let Some(amount) = &arguments.wallet {
        fundings.push(share(json!({"kind": "wallet"}), amount, currency));
    }
    if let Some(amount) = &arguments.vault {
        fundings.push(share(json!({"kind": "vault"}), amount, currency));
    }
    if let Some(line) = &arguments.credit_line {
        let parts: Vec<&str> = line.split(':').collect();
        let (account, term, amount) = match parts.as_slice() {
            [account, term] => (*account, *term, "rest"),
            [account, term, amount] => (*account, *term, *amount),
            _ => bail!("--credit-line is ACCOUNT:TERM or ACCOUNT:TERM:AMOUNT, not {line:?}"),
        };
        let account: i64 = account
            .parse()
            .with_context(|| format!("--credit-line: account {account:?} is not a number"))?;
        let term: u32 = term
            .parse()
            .with_context(|| format!("--credit-line: term {term:?} is not a number"))?;
        fundings.push(share(
            json!({"kind": "credit_line", "credit_account_id": account, "term": term}),
            amount,
            currency,
        ));
    }
    if let Some(card) = &arguments.card {
        let (token, amount) = match card.rsplit_once(':') {
            Some((token, amount)) if is_share(amount) => (token, amount),
            _ => (card.as_str(), "rest"),
        };
        fundings.push(share(
            json!({"kind": "card", "card_token": token}),
            amount,
            currency,
        ));
    }
    if fundings.is_empty() {
        bail!("name at least one source: --wallet, --vault, --credit-line or --card");
    }
    Ok(fundings)
}

/// The HTTP method, URL and body (none for a read) of a subcommand.
fn request(base: &str, command: &Command) -> anyhow::Result<(&'static str, String, Option<Value>)> {
    let payment = |id: &str, rest: &str| format!("{base}/{id}{rest}");
    Ok(match command {
        Command::Create(arguments) => {
            let mut body = json!({
                "merchant_id": arguments.merchant,
                "order_reference": arguments.order,
                "customer": arguments.customer,
                "amount": money(&arguments.amount, &arguments.currency),
                "fundings": fundings(arguments)?,
            });
            if arguments.manual_capture {
                body["capture_method"] = json!("manual");
            }
            if let Some(at) = &arguments.expires_at {
                body["expires_at"] = json!(at);
            }
            ("POST", base.to_string(), Some(body))
        }
        Command::Confirm {
            id,
            code,
            device,
            ip,
        } => {
            let mut body = json!({});
            for (name, value) in [("code", code), ("device", device), ("ip", ip)] {
                if let Some(value) = value {
                    body[name] = json!(value);
                }
            }
            ("POST", payment(id, "/confirm"), Some(body))
        }
        Command::Capture {
            id,
            amount,
            currency,
        } => {
            let mut body = json!({});
            if let Some(amount) = amount {
                body["amount"] = money(amount, currency);
            }
            ("POST", payment(id, "/capture"), Some(body))
        }
        Command::Cancel { id } => ("POST", payment(id, "/cancel"), Some(json!({}))),
        Command::Refund {
            id,
            amount,
            currency,
            policy,
        } => (
            "POST",
            payment(id, "/refunds"),
            Some(json!({"amount": money(amount, currency), "policy": policy.as_str()})),
        ),
        Command::Get { id } => ("GET", payment(id, ""), None),
        Command::Cards(CardsCommand::Save { customer, token }) => (
            "POST",
            format!("{base}/cards"),
            Some(json!({"customer": customer, "card_token": token})),
        ),
        Command::Cards(CardsCommand::List { customer }) => {
            let url = reqwest::Url::parse_with_params(
                &format!("{base}/cards"),
                [("customer", customer.as_str())],
            )
            .context("--url")?;
            ("GET", url.to_string(), None)
        }
        Command::Wallet(command) => wallet_request(base, command)?,
    })
}

fn wallet_request(
    base: &str,
    command: &WalletCommand,
) -> anyhow::Result<(&'static str, String, Option<Value>)> {
    let wallet = |customer: &str, rest: &str| format!("{base}/wallets/{customer}{rest}");
    Ok(match command {
        WalletCommand::Show { customer, currency } => {
            let mut url = reqwest::Url::parse(&wallet(customer, "")).context("--url")?;
            if let Some(currency) = currency {
                url.query_pairs_mut().append_pair("currency", currency);
            }
            ("GET", url.to_string(), None)
        }
        WalletCommand::TopUp {
            customer,
            card,
            amount,
            currency,
        } => (
            "POST",
            wallet(customer, "/top-ups"),
            Some(json!({"card_token": card, "amount": money(amount, currency)})),
        ),
        WalletCommand::Withdraw {
            customer,
            card,
            amount,
            currency,
        } => (
            "POST",
            wallet(customer, "/withdrawals"),
            Some(json!({"card_token": card, "amount": money(amount, currency)})),
        ),
        WalletCommand::VaultSubscribe {
            customer,
            amount,
            currency,
        } => (
            "POST",
            wallet(customer, "/vault-subscriptions"),
            Some(json!({"amount": money(amount, currency)})),
        ),
        WalletCommand::VaultRedeem {
            customer,
            amount,
            currency,
        } => (
            "POST",
            wallet(customer, "/vault-redemptions"),
            Some(json!({"amount": money(amount, currency)})),
        ),
    })
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let api_key = arguments.server.api_key()?;
    let base = arguments.server.base("/payments");
    let (method, url, body) = request(&base, &arguments.command)?;
    let http = reqwest::Client::new();
    let mut request = match method {
        "GET" => http.get(&url),
        _ => http.post(&url),
    }
    .bearer_auth(&api_key);
    if let Some(body) = &body {
        // Saving a card is idempotent by nature; the API reads no key for it.
        if !matches!(arguments.command, Command::Cards(CardsCommand::Save { .. })) {
            let key = crate::client::idempotency_key(arguments.key.as_deref());
            request = request.header("Idempotency-Key", key);
        }
        request = request.json(body);
    }
    crate::client::send_and_print(request, method, &url).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        arguments: Arguments,
    }

    fn body_of(arguments: &[&str]) -> Value {
        let cli =
            Cli::try_parse_from(std::iter::once("pay").chain(arguments.iter().copied())).unwrap();
        request("http://host/v1/payments", &cli.arguments.command)
            .unwrap()
            .2
            .unwrap()
    }

    #[test]
    fn create_lists_the_sources_with_their_shares() {
        let body = body_of(&[
            "create",
            "--merchant",
            "m-1",
            "--order",
            "o-1",
            "--customer",
            "c-1",
            "--amount",
            "120.00",
            "--wallet",
            "20.00",
            "--credit-line",
            "7:3:50.00",
            "--card",
            "tok_ab:cd",
            "--manual-capture",
        ]);
        assert_eq!(
            body,
            json!({
                "merchant_id": "m-1",
                "order_reference": "o-1",
                "customer": "c-1",
                "amount": {"value": "120.00", "currency": "CNY"},
                "capture_method": "manual",
                "fundings": [
                    {"kind": "wallet", "amount": {"value": "20.00", "currency": "CNY"}},
                    {"kind": "credit_line", "credit_account_id": 7, "term": 3,
                     "amount": {"value": "50.00", "currency": "CNY"}},
                    // `cd` is not an amount: part of the token, which takes the rest.
                    {"kind": "card", "card_token": "tok_ab:cd"},
                ]
            })
        );
    }

    #[test]
    fn a_card_with_an_amount_and_a_wallet_taking_the_rest() {
        let body = body_of(&[
            "create",
            "--merchant",
            "m",
            "--order",
            "o",
            "--customer",
            "c",
            "--amount",
            "10",
            "--wallet",
            "rest",
            "--card",
            "tok_1:4.50",
        ]);
        assert_eq!(
            body["fundings"],
            json!([
                {"kind": "wallet"},
                {"kind": "card", "card_token": "tok_1", "amount": {"value": "4.50", "currency": "CNY"}},
            ])
        );
    }

    #[test]
    fn a_payment_needs_a_source_and_a_credit_line_its_term() {
        let cli = Cli::try_parse_from([
            "pay",
            "create",
            "--merchant",
            "m",
            "--order",
            "o",
            "--customer",
            "c",
            "--amount",
            "1",
        ])
        .unwrap();
        assert!(request("http://host", &cli.arguments.command).is_err());
        let cli = Cli::try_parse_from([
            "pay",
            "create",
            "--merchant",
            "m",
            "--order",
            "o",
            "--customer",
            "c",
            "--amount",
            "1",
            "--credit-line",
            "7",
        ])
        .unwrap();
        assert!(request("http://host", &cli.arguments.command).is_err());
    }

    #[test]
    fn refund_sends_its_policy() {
        let body = body_of(&[
            "refund",
            "pay_1",
            "--amount",
            "5.00",
            "--policy",
            "card_last",
        ]);
        assert_eq!(
            body,
            json!({"amount": {"value": "5.00", "currency": "CNY"}, "policy": "card_last"})
        );
    }
}
