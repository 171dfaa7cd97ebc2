//! `tally credit ...`: the credit API from the command line, for operators and scripts.
//! Each subcommand is one call to a running `tally serve` (`--url`, key in `--api-key` or
//! `TALLY_API_KEY`); writes carry `--idempotency-key` (a fresh one is made and printed
//! when it is not given, so a retry can reuse it). The answer is printed as JSON; an error
//! prints its code and message and exits with 1.

use anyhow::Context;
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Arguments {
    #[command(flatten)]
    pub server: crate::client::Server,
    /// Idempotency key of a write; reuse it to retry safely.
    #[arg(long, global = true)]
    pub idempotency_key: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Open an account through the credit decision.
    Open {
        #[arg(long)]
        customer: String,
        #[arg(long)]
        statement_day: i8,
        /// Monthly income, e.g. 12000.00.
        #[arg(long)]
        income: String,
        /// Monthly debt payments, e.g. 1500.00.
        #[arg(long, default_value = "0.00")]
        debt_payments: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// Scorecard attributes as a JSON object.
        #[arg(long, default_value = "{}")]
        attributes: String,
    },
    /// Show an account.
    Show { account: i64 },
    /// Authorise a purchase (a ledger hold until it is captured, voided or expires).
    Authorize {
        account: i64,
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// Last day it can be captured (YYYY-MM-DD; default in 7 days).
        #[arg(long)]
        expires_on: Option<String>,
    },
    /// Capture an authorisation into an installment plan.
    Capture {
        account: i64,
        authorization: u32,
        #[arg(long)]
        product: String,
        #[arg(long)]
        periods: u32,
        /// Less than authorised (the rest is released).
        #[arg(long)]
        amount: Option<String>,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Void an authorisation.
    Void { account: i64, authorization: u32 },
    /// Record a repayment.
    Repay {
        account: i64,
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Refund part or all of a plan's principal.
    Refund {
        account: i64,
        plan: u32,
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// What paying a plan off today costs.
    Quote { account: i64, plan: u32 },
    /// What a purchase of AMOUNT would cost on each term, at the account's pricing tier:
    /// installments, charges, total repayable and true APR (changes nothing).
    Offers {
        account: i64,
        /// In the account's currency, e.g. 1200.00.
        amount: String,
        /// Only this product's terms.
        #[arg(long)]
        product: Option<String>,
    },
    /// Pay a plan off (at least the quote).
    Payoff {
        account: i64,
        plan: u32,
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Put the open statement into installments.
    BillInstallment {
        account: i64,
        #[arg(long)]
        product: String,
        #[arg(long)]
        periods: u32,
    },
    /// Pay part or all of the customer's credit balance back to them (at most the credit
    /// balance less what is billed and still owed).
    CreditBalancePayout {
        account: i64,
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Write off a purchase on an approved stolen-account risk case.
    WriteOff {
        account: i64,
        plan: u32,
        #[arg(long)]
        case: String,
    },
    /// Set the limit.
    Limit {
        account: i64,
        amount: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Set a temporary limit until a date.
    TemporaryLimit {
        account: i64,
        amount: String,
        #[arg(long)]
        until: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Freeze an account (no new purchases).
    Freeze { account: i64 },
    /// Unfreeze an account.
    Unfreeze { account: i64 },
    /// Close an account that owes and holds nothing.
    Close { account: i64 },
    /// Statements of an account, newest first.
    Statements { account: i64 },
    /// The collections queue: open contact tasks, most urgent first.
    Tasks,
    /// The product catalog.
    Products,
    /// Add a product from a JSON file (scope admin).
    AddProduct { file: std::path::PathBuf },
}

fn money(value: &str, currency: &str) -> Value {
    json!({"value": value, "currency": currency})
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let api_key = arguments.server.api_key()?;
    let base = arguments.server.base("/credit");
    let account = |id: i64, rest: &str| format!("{base}/accounts/{id}{rest}");
    let (method, url, body) = match &arguments.command {
        Command::Open {
            customer,
            statement_day,
            income,
            debt_payments,
            currency,
            attributes,
        } => {
            let attributes: Value =
                serde_json::from_str(attributes).context("--attributes must be a JSON object")?;
            (
                "POST",
                format!("{base}/accounts"),
                Some(json!({
                    "customer_id": customer,
                    "statement_day": statement_day,
                    "application": {
                        "monthly_income": money(income, currency),
                        "monthly_debt_payments": money(debt_payments, currency),
                        "attributes": attributes,
                    }
                })),
            )
        }
        Command::Show { account: id } => ("GET", account(*id, ""), None),
        Command::Authorize {
            account: id,
            amount,
            currency,
            expires_on,
        } => {
            let mut body = json!({"amount": money(amount, currency)});
            if let Some(day) = expires_on {
                body["expires_on"] = json!(day);
            }
            ("POST", account(*id, "/authorizations"), Some(body))
        }
        Command::Capture {
            account: id,
            authorization,
            product,
            periods,
            amount,
            currency,
        } => {
            let mut body = json!({"product": product, "periods": periods});
            if let Some(amount) = amount {
                body["amount"] = money(amount, currency);
            }
            (
                "POST",
                account(*id, &format!("/authorizations/{authorization}/capture")),
                Some(body),
            )
        }
        Command::Void {
            account: id,
            authorization,
        } => (
            "POST",
            account(*id, &format!("/authorizations/{authorization}/void")),
            Some(json!({})),
        ),
        Command::Repay {
            account: id,
            amount,
            currency,
        } => (
            "POST",
            account(*id, "/repayments"),
            Some(json!({"amount": money(amount, currency)})),
        ),
        Command::Refund {
            account: id,
            plan,
            amount,
            currency,
        } => (
            "POST",
            account(*id, &format!("/plans/{plan}/refunds")),
            Some(json!({"amount": money(amount, currency)})),
        ),
        Command::Quote { account: id, plan } => (
            "GET",
            account(*id, &format!("/plans/{plan}/payoff-quote")),
            None,
        ),
        Command::Offers {
            account: id,
            amount,
            product,
        } => {
            let mut query = vec![("amount", amount.as_str())];
            if let Some(product) = product {
                query.push(("product", product.as_str()));
            }
            let url = reqwest::Url::parse_with_params(&account(*id, "/offers"), &query)
                .with_context(|| format!("--url {:?}", arguments.server.url))?;
            ("GET", url.to_string(), None)
        }
        Command::Payoff {
            account: id,
            plan,
            amount,
            currency,
        } => (
            "POST",
            account(*id, &format!("/plans/{plan}/payoff")),
            Some(json!({"amount": money(amount, currency)})),
        ),
        Command::BillInstallment {
            account: id,
            product,
            periods,
        } => (
            "POST",
            account(*id, "/bill-installments"),
            Some(json!({"product": product, "periods": periods})),
        ),
        Command::CreditBalancePayout {
            account: id,
            amount,
            currency,
        } => (
            "POST",
            account(*id, "/credit-balance/payouts"),
            Some(json!({"amount": money(amount, currency)})),
        ),
        Command::WriteOff {
            account: id,
            plan,
            case,
        } => (
            "POST",
            account(*id, &format!("/plans/{plan}/stolen-write-off")),
            Some(json!({"case_id": case})),
        ),
        Command::Limit {
            account: id,
            amount,
            currency,
        } => (
            "POST",
            account(*id, "/limit"),
            Some(json!({"limit": money(amount, currency)})),
        ),
        Command::TemporaryLimit {
            account: id,
            amount,
            until,
            currency,
        } => (
            "POST",
            account(*id, "/temporary-limit"),
            Some(json!({"limit": money(amount, currency), "until": until})),
        ),
        Command::Freeze { account: id } => ("POST", account(*id, "/freeze"), Some(json!({}))),
        Command::Unfreeze { account: id } => ("POST", account(*id, "/unfreeze"), Some(json!({}))),
        Command::Close { account: id } => ("POST", account(*id, "/close"), Some(json!({}))),
        Command::Statements { account: id } => ("GET", account(*id, "/statements"), None),
        Command::Tasks => ("GET", format!("{base}/tasks"), None),
        Command::Products => ("GET", format!("{base}/products"), None),
        Command::AddProduct { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let product: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            ("POST", format!("{base}/products"), Some(product))
        }
    };
    let http = reqwest::Client::new();
    let mut request = match method {
        "GET" => http.get(&url),
        _ => http.post(&url),
    }
    .bearer_auth(&api_key);
    if let Some(body) = &body {
        let key = crate::client::idempotency_key(arguments.idempotency_key.as_deref());
        request = request.header("Idempotency-Key", key).json(body);
    }
    crate::client::send_and_print(request, method, &url).await
}
