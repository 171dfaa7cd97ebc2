//! Onboarding: each applicant becomes a customer (personal data sealed, blind-indexed) and
//! applies for a credit account, which the credit decision (scorecard, score bands and the
//! policy's rule table) approves with a limit or declines with its reasons. Approved
//! customers' credit activation is an event for the risk engine.

use super::figures::GroundTruth;
use super::world::Applicant;
use super::Services;
use anyhow::Context;
use jiff::civil::Date;
use serde_json::json;
use std::sync::Arc;
use tally_core::{Amount, Currency, CustomerId};
use tally_risk::{Event, EventKind};
use tally_service::credit::opening::Application;
use tally_service::credit::operations::request_hash;
use tally_service::customers::NewCustomer;

/// What onboarding made of an applicant.
#[derive(Debug, Clone)]
pub struct Onboarded {
    pub applicant: Applicant,
    pub customer_id: String,
    /// The credit account, when the decision approved.
    pub account: Option<i64>,
    /// The approved limit in fen (0 when declined).
    pub limit: i64,
}

/// Onboards one applicant on `day`: customer, application, and the activation event.
async fn onboard_one(
    services: Arc<Services>,
    applicant: Applicant,
    day: Date,
) -> anyhow::Result<Onboarded> {
    let key = format!("demo-customer-{}", applicant.index);
    let customer = services
        .customers
        .create(
            &key,
            &NewCustomer {
                name: applicant.name.clone(),
                phone: applicant.phone.clone(),
                national_id: applicant.national_id.clone(),
            },
        )
        .await
        .with_context(|| format!("creating customer {}", applicant.index))?;
    let customer_id = customer.id.to_string();
    let key = format!("demo-application-{}", applicant.index);
    let body = json!({
        "customer": customer_id,
        "attributes": applicant.attributes,
        "statement_day": applicant.statement_day,
    });
    let hash = request_hash("open", 0, &body);
    let application = Application {
        key: &key,
        request_hash: &hash,
        customer_id: CustomerId(customer.id),
        statement_day: applicant.statement_day,
        due_days: applicant.due_days,
        monthly_income: Amount::new(applicant.monthly_income, Currency::CNY),
        monthly_debt_payments: Amount::new(applicant.monthly_debt_payments, Currency::CNY),
        attributes: applicant.attributes.clone(),
    };
    let now = services.clock_now();
    let answer = services
        .credit
        .open_account(
            services.state.privacy.as_deref(),
            &services.caller,
            &application,
            day,
            now,
            |account, decision| {
                json!({
                    "account": account.map(|account| account.id),
                    "limit": decision.limit.map(|limit| limit.minor()),
                })
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))
        .with_context(|| format!("credit application of customer {}", applicant.index))?;
    let account = answer.body["account"].as_i64();
    let limit = answer.body["limit"].as_i64().unwrap_or(0);
    if account.is_some() {
        let mut event = Event::new(
            format!("demo-activation-{}", applicant.index),
            EventKind::CreditActivation,
            now,
            customer_id.clone(),
        );
        event.device = Some(format!("device-{}", applicant.index));
        services
            .risk
            .decide(&event)
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    }
    Ok(Onboarded {
        applicant,
        customer_id,
        account,
        limit,
    })
}

/// Onboards the applicants of `day`, concurrently (each one's steps in order), and answers
/// them in the applicants' order.
pub async fn onboard_day(
    services: &Arc<Services>,
    applicants: Vec<Applicant>,
    day: Date,
    truth: &mut GroundTruth,
) -> anyhow::Result<Vec<Onboarded>> {
    let mut tasks = tokio::task::JoinSet::new();
    for applicant in applicants {
        tasks.spawn(onboard_one(services.clone(), applicant, day));
    }
    let mut onboarded = Vec::new();
    while let Some(done) = tasks.join_next().await {
        onboarded.push(done??);
    }
    onboarded.sort_by_key(|one| one.applicant.index);
    for one in &onboarded {
        truth.applicants += 1;
        if one.account.is_some() {
            truth.approved_answers += 1;
        }
    }
    Ok(onboarded)
}
