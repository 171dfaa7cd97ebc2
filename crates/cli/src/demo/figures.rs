//! The demo's figures, read back from what Tally stored (the database, the ledger, the
//! reconciliation's classification, the consortium log), and the ground truth the
//! simulation kept of what it injected. Each figure is printed beside its truth; any
//! difference fails the demo.

use super::consortium::Shared;
use super::fraud::Fraud;
use super::lending::Lending;
use super::payments::{BooksReconciled, Settled};
use super::reconciliation::Reconciled;
use super::world::Size;
use super::{Arguments, Services};
use jiff::civil::Date;
use jiff::Timestamp;
use std::collections::BTreeMap;
use tally_core::{Amount, Currency};
use tally_credit::LedgerRole;
use tally_service::credit::ledger_accounts::ledger_account_code;
use tally_service::overview::BUCKETS;

/// What the simulation did and expects, counted as it went.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    pub applicants: u64,
    /// Applications the credit decision answered as approved.
    pub approved_answers: u64,
    pub purchases: u64,
    pub purchases_refused: u64,
    pub repayments: u64,
    pub attacks: u64,
    pub stolen_purchases: u64,
    pub stolen_confirmed: u64,
    /// Fen.
    pub losses_written_off: i64,
    pub cases_open: i64,
    pub cases_approved: i64,
    pub cases_rejected: i64,
    pub buckets: BTreeMap<String, i64>,
    pub recon_matched: u64,
    pub recon_breaks: BTreeMap<String, u64>,
    pub consortium_published: u64,
    pub consortium_found: u64,
    pub payments_completed: u64,
    pub payments_refunded: u64,
    /// Installment plans the credit-line parts of combined payments opened.
    pub payment_plans: u64,
    pub settlement_runs: u64,
    /// Fen captured and refunded on the capture dates the settlement runs had due.
    pub settlement_gross: i64,
    pub settlement_refunds: i64,
    pub books_runs: u64,
    pub books_matched: i64,
    pub books_breaks: BTreeMap<String, u64>,
}

/// What Tally stored, read back.
#[derive(Debug, Clone)]
pub struct Counted {
    pub customers: i64,
    pub accounts: i64,
    /// Installment plans on every account (purchases, the thieves' included).
    pub plans: u64,
    pub attacks_caught: u64,
    /// The kind of each attack injected.
    pub attack_kinds: Vec<String>,
    pub decisions: Vec<(String, i64)>,
    pub cases: BTreeMap<String, i64>,
    pub buckets: BTreeMap<String, i64>,
    /// The fraud-loss expense in the ledger, fen.
    pub losses_written_off: i64,
    pub recon: Reconciled,
    pub shared: Shared,
    pub payments_completed: u64,
    pub payments_refunded: u64,
    /// Accounts whose stored balance is not the sum of their legs (none when balanced).
    pub unbalanced: Vec<String>,
    pub settled: Settled,
    pub books: BooksReconciled,
}

pub async fn count(
    services: &Services,
    lending: &Lending,
    fraud: &Fraud,
    recon: &Reconciled,
    shared: &Shared,
    payments: (u64, u64),
) -> anyhow::Result<Counted> {
    let database = &services.state.database;
    let customers = database.customer_count().await?;
    let buckets: BTreeMap<String, i64> = database
        .credit_accounts_by_bucket()
        .await?
        .into_iter()
        .map(|count| (count.name, count.count))
        .collect();
    let accounts = buckets.values().sum();
    let mut plans = 0;
    for borrower in &lending.borrowers {
        let stored = services
            .credit
            .operations
            .load(borrower.account)
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
        plans += stored.account.plans.len() as u64;
    }
    let decisions = database
        .risk_decisions_by_action(Timestamp::UNIX_EPOCH, Timestamp::MAX)
        .await?
        .into_iter()
        .map(|count| (count.name, count.count))
        .collect();
    let cases = database
        .risk_cases_by_status()
        .await?
        .into_iter()
        .map(|count| (count.name, count.count))
        .collect();
    let loss_account = database
        .account_id_by_code(&ledger_account_code(
            LedgerRole::FraudLossExpense,
            Currency::CNY,
        ))
        .await?;
    let losses_written_off = match loss_account {
        Some(id) => database.account(id).await?.map_or(0, |state| {
            state.balance.debits_posted - state.balance.credits_posted
        }),
        None => 0,
    };
    Ok(Counted {
        customers,
        accounts,
        plans,
        attacks_caught: fraud.caught(services).await?,
        attack_kinds: fraud
            .attacks
            .iter()
            .map(|attack| attack.kind.to_string())
            .collect(),
        decisions,
        cases,
        buckets,
        losses_written_off,
        recon: recon.clone(),
        shared: shared.clone(),
        payments_completed: payments.0,
        payments_refunded: payments.1,
        unbalanced: database.inconsistent_accounts().await?,
        settled: Settled::default(),
        books: BooksReconciled::default(),
    })
}

fn cny(minor: i64) -> String {
    Amount::new(minor, Currency::CNY).to_string()
}

fn per_mille(part: u64, whole: u64) -> String {
    let tenths = (part * 1000).checked_div(whole).unwrap_or(0);
    format!("{}.{} %", tenths / 10, tenths % 10)
}

fn listed<V: std::fmt::Display>(pairs: impl IntoIterator<Item = (String, V)>) -> String {
    let parts: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// One line of the report: the figure, and whether it agrees with its truth.
struct Report {
    lines: Vec<String>,
    mismatches: Vec<String>,
}

impl Report {
    fn line(&mut self, name: &str, figure: String, truth: String) {
        if figure == truth {
            self.lines.push(format!("{name:<26} {figure}"));
        } else {
            self.lines.push(format!(
                "{name:<26} {figure}   MISMATCH: the simulation expected {truth}"
            ));
            self.mismatches.push(name.to_string());
        }
    }
}

/// Prints the figures beside the truth; whether every one agrees.
pub fn print(
    arguments: &Arguments,
    size: &Size,
    last_day: Date,
    counted: &Counted,
    truth: &GroundTruth,
) -> bool {
    let mut report = Report {
        lines: Vec::new(),
        mismatches: Vec::new(),
    };
    report.line(
        "customers",
        counted.customers.to_string(),
        truth.applicants.to_string(),
    );
    let accounts = u64::try_from(counted.accounts).unwrap_or(0);
    report.line(
        "credit accounts opened",
        format!(
            "{accounts} of {} applications (approval rate {})",
            counted.customers,
            per_mille(accounts, u64::try_from(counted.customers).unwrap_or(0))
        ),
        format!(
            "{} of {} applications (approval rate {})",
            truth.approved_answers,
            truth.applicants,
            per_mille(truth.approved_answers, truth.applicants)
        ),
    );
    report.line(
        "purchases in installments",
        counted.plans.to_string(),
        (truth.purchases + truth.stolen_purchases + truth.payment_plans).to_string(),
    );
    report.lines.push(format!(
        "{:<26} {} refused by the credit rules, {} repayments",
        "", truth.purchases_refused, truth.repayments
    ));
    let mut attack_kinds: BTreeMap<String, u64> = BTreeMap::new();
    for kind in &counted.attack_kinds {
        *attack_kinds.entry(kind.clone()).or_insert(0) += 1;
    }
    report.line(
        "fraud attempts caught",
        format!("{} of {}", counted.attacks_caught, truth.attacks),
        format!("{} of {}", truth.attacks, truth.attacks),
    );
    report
        .lines
        .push(format!("{:<26} {}", "", listed(attack_kinds.into_iter())));
    report.lines.push(format!(
        "{:<26} {}",
        "risk decisions",
        listed(counted.decisions.iter().cloned())
    ));
    let cases = |open: i64, approved: i64, rejected: i64| {
        format!("open {open}, claimed 0, approved {approved}, rejected {rejected}")
    };
    let count_of = |status: &str| counted.cases.get(status).copied().unwrap_or(0);
    report.line(
        "risk cases",
        format!(
            "open {}, claimed {}, approved {}, rejected {}",
            count_of("open"),
            count_of("claimed"),
            count_of("approved"),
            count_of("rejected")
        ),
        cases(truth.cases_open, truth.cases_approved, truth.cases_rejected),
    );
    report.line(
        "stolen-account losses",
        format!("{} written off", cny(counted.losses_written_off)),
        format!("{} written off", cny(truth.losses_written_off)),
    );
    let buckets = |counts: &BTreeMap<String, i64>| {
        listed(
            BUCKETS
                .iter()
                .map(|bucket| {
                    (
                        bucket.to_string(),
                        counts.get(*bucket).copied().unwrap_or(0),
                    )
                })
                .filter(|(name, count)| name == "current" || *count > 0),
        )
    };
    report.line(
        "delinquency by bucket",
        buckets(&counted.buckets),
        buckets(&truth.buckets),
    );
    let breaks = |classes: &BTreeMap<String, u64>| {
        format!(
            "{} ({})",
            classes.values().sum::<u64>(),
            listed(classes.iter().map(|(name, count)| (name.clone(), *count)))
        )
    };
    report.line(
        "reconciliation breaks",
        breaks(&counted.recon.breaks),
        breaks(&truth.recon_breaks),
    );
    report.line(
        "reconciliation matched",
        counted.recon.matched.to_string(),
        truth.recon_matched.to_string(),
    );
    report.line(
        "consortium records shared",
        format!(
            "{} (the peer's query found {})",
            counted.shared.published, counted.shared.found_by_peer
        ),
        format!(
            "{} (the peer's query found {})",
            truth.consortium_published, truth.consortium_found
        ),
    );
    report.line(
        "combined payments",
        format!(
            "{} completed, {} refunded",
            counted.payments_completed, counted.payments_refunded
        ),
        format!(
            "{} completed, {} refunded",
            truth.payments_completed, truth.payments_refunded
        ),
    );
    report.line(
        "merchant settlement",
        format!(
            "{} runs: {} captured, {} refunded",
            counted.settled.runs,
            cny(counted.settled.gross),
            cny(counted.settled.refunds)
        ),
        format!(
            "{} runs: {} captured, {} refunded",
            truth.settlement_runs,
            cny(truth.settlement_gross),
            cny(truth.settlement_refunds)
        ),
    );
    let books = |runs: u64, matched: i64, classes: &BTreeMap<String, u64>| {
        format!(
            "{runs} days: {matched} top-ups matched, breaks {}",
            breaks(classes)
        )
    };
    report.line(
        "books reconciliation",
        books(
            counted.books.runs,
            counted.books.matched,
            &counted.books.breaks,
        ),
        books(truth.books_runs, truth.books_matched, &truth.books_breaks),
    );
    report.line(
        "books balance",
        if counted.unbalanced.is_empty() {
            "yes".into()
        } else {
            format!("no: {}", counted.unbalanced.join(", "))
        },
        "yes".into(),
    );
    println!(
        "tally demo: seed {}, {} applicants, {} months of business ({} to {})",
        arguments.seed,
        size.applicants,
        size.months,
        super::world::FIRST_DAY,
        last_day
    );
    for line in &report.lines {
        println!("  {line}");
    }
    if report.mismatches.is_empty() {
        println!("ground truth: every figure matches what the simulation injected");
        true
    } else {
        println!(
            "ground truth: {} figure(s) differ: {}",
            report.mismatches.len(),
            report.mismatches.join(", ")
        );
        false
    }
}
