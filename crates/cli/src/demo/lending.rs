//! The credit business day by day: applications of the day, purchases in installments
//! (each decided by the risk engine, then authorised and captured on the customer's credit
//! account), repayments after each statement as each customer's behaviour says, and the
//! end of day of every account (statements, interest and penalties, delinquency buckets,
//! collections tasks).

use super::figures::GroundTruth;
use super::onboarding::{onboard_day, Onboarded};
use super::world::{Applicant, Behaviour, FIRST_DAY};
use super::Services;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tally_core::{Amount, Clock, Currency, SplitMix64};
use tally_credit::{Bucket, Cycle};
use tally_risk::{Event, EventKind};
use tally_service::credit::commands::CreditCommand;
use tally_service::credit::end_of_day::{run_end_of_day, EndOfDayOptions};
use tally_service::credit::operations::{request_hash, OperationError};

/// Installment terms a customer chooses from.
const TERMS: [u32; 4] = [1, 3, 6, 12];

/// A customer with a credit account, as the simulation follows it.
#[derive(Debug, Clone)]
pub struct Borrower {
    pub index: usize,
    pub customer_id: String,
    pub account: i64,
    pub limit: i64,
    pub behaviour: Behaviour,
    pub statement_day: i8,
    pub due_days: i32,
    pub opened_on: Date,
    pub purchases_per_thousand_days: u64,
    /// Its own random stream: what it does does not depend on the others' order.
    random: SplitMix64,
    /// A thief took the account over and the claim was confirmed: it buys nothing more.
    pub blocked: bool,
    pub purchases: u32,
    /// The day of its first purchase (a customer who never pays is judged from it).
    pub first_purchase: Option<Date>,
}

/// A purchase captured on credit: what the merchant's settlement will carry.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub reference: String,
    pub amount: i64,
    pub at: Timestamp,
}

/// What one borrower's day did.
#[derive(Debug, Default)]
struct DayOutcome {
    purchases: Vec<Purchase>,
    refused: u64,
    repayments: u64,
}

/// The credit book of the simulation.
pub struct Lending {
    waiting: BTreeMap<Date, Vec<Applicant>>,
    pub borrowers: Vec<Borrower>,
    pub purchases: Vec<Purchase>,
    seed: u64,
}

/// Whether `error` is a refusal of the credit rules (no credit left, frozen), which a
/// customer meets in real life, rather than a failure of the demo.
fn refused(error: &OperationError) -> bool {
    !matches!(
        error,
        OperationError::Store(_) | OperationError::LedgerUnavailable(_)
    )
}

impl Lending {
    pub fn new(applicants: Vec<Applicant>, seed: u64) -> anyhow::Result<Lending> {
        let mut waiting: BTreeMap<Date, Vec<Applicant>> = BTreeMap::new();
        for applicant in applicants {
            let day = FIRST_DAY.checked_add(applicant.applies_on_day.days())?;
            waiting.entry(day).or_default().push(applicant);
        }
        Ok(Lending {
            waiting,
            borrowers: Vec::new(),
            purchases: Vec::new(),
            seed,
        })
    }

    /// The applications of `day`, decided; approved customers become borrowers.
    pub async fn open_accounts_of(
        &mut self,
        services: &Arc<Services>,
        day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        let Some(applicants) = self.waiting.remove(&day) else {
            return Ok(());
        };
        services.set_time(day, 9)?;
        let onboarded = onboard_day(services, applicants, day, truth).await?;
        for Onboarded {
            applicant,
            customer_id,
            account,
            limit,
        } in onboarded
        {
            let Some(account) = account else {
                continue;
            };
            self.borrowers.push(Borrower {
                index: applicant.index,
                customer_id,
                account,
                limit,
                behaviour: applicant.behaviour,
                statement_day: applicant.statement_day,
                due_days: applicant.due_days,
                opened_on: day,
                purchases_per_thousand_days: applicant.purchases_per_thousand_days,
                random: SplitMix64::new(
                    self.seed ^ (applicant.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
                blocked: false,
                purchases: 0,
                first_purchase: None,
            });
        }
        Ok(())
    }

    /// The day's repayments and purchases of every borrower, concurrently (each one's in
    /// order); purchases are kept in the borrowers' order.
    pub async fn trade(
        &mut self,
        services: &Arc<Services>,
        day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        services.set_time(day, 12)?;
        let mut tasks = tokio::task::JoinSet::new();
        for (position, borrower) in std::mem::take(&mut self.borrowers).into_iter().enumerate() {
            let services = services.clone();
            tasks.spawn(async move {
                let mut borrower = borrower;
                let outcome = borrower_day(&services, &mut borrower, day).await;
                (position, borrower, outcome)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (position, borrower, outcome) = joined?;
            done.push((position, borrower, outcome?));
        }
        done.sort_by_key(|(position, _, _)| *position);
        for (_, borrower, outcome) in done {
            self.borrowers.push(borrower);
            truth.purchases += outcome.purchases.len() as u64;
            truth.purchases_refused += outcome.refused;
            truth.repayments += outcome.repayments;
            self.purchases.extend(outcome.purchases);
        }
        Ok(())
    }

    /// End of day of every credit account for `day`.
    pub async fn end_of_day(&self, services: &Services, day: Date) -> anyhow::Result<()> {
        services.set_time(day, 23)?;
        let options = EndOfDayOptions {
            chunk_size: 20_000,
            threads: 0,
            crash_after_accounts: None,
        };
        run_end_of_day(
            &services.state.database,
            &services.state.writer,
            day,
            services.credit.operations.policy(),
            &options,
            services.clock.as_ref(),
        )
        .await
        .map_err(|error| anyhow::anyhow!("end of day {day}: {}: {error}", error.code()))?;
        Ok(())
    }

    /// The delinquency the simulation expects on `last_day`: every customer who never pays
    /// and bought something is past due from the due date of the first statement after its
    /// first purchase; everyone else pays each statement and stays current.
    pub fn expected_buckets(&self, last_day: Date) -> anyhow::Result<BTreeMap<String, i64>> {
        let mut buckets = BTreeMap::new();
        for borrower in &self.borrowers {
            let bucket = match (borrower.behaviour, borrower.first_purchase) {
                (Behaviour::NeverPays, Some(bought)) => {
                    // The cycle's calendar: the first statement strictly after the purchase
                    // bills its first installment, due `due_days` later.
                    let cycle = Cycle::new(borrower.statement_day, borrower.due_days)?;
                    let due = cycle.due_date(cycle.next_statement_date(bought)?)?;
                    let days_past_due = (last_day - due).get_days();
                    Bucket::of_days_past_due(days_past_due)
                }
                _ => Bucket::Current,
            };
            *buckets.entry(bucket_name(bucket)).or_insert(0) += 1;
        }
        Ok(buckets)
    }

    pub fn borrower_mut(&mut self, index: usize) -> Option<&mut Borrower> {
        self.borrowers
            .iter_mut()
            .find(|borrower| borrower.index == index)
    }
}

/// The stored name of a bucket.
pub fn bucket_name(bucket: Bucket) -> String {
    serde_json::to_value(bucket)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{bucket:?}").to_lowercase())
}

/// One borrower's day: a repayment after its statement, then perhaps a purchase.
async fn borrower_day(
    services: &Services,
    borrower: &mut Borrower,
    day: Date,
) -> anyhow::Result<DayOutcome> {
    let mut outcome = DayOutcome::default();
    if borrower.behaviour != Behaviour::NeverPays {
        let after_statement = [day.yesterday()?, day.checked_sub(2.days())?]
            .iter()
            .any(|earlier| earlier.day() == borrower.statement_day);
        if after_statement && repay(services, borrower, day).await? {
            outcome.repayments += 1;
        }
    }
    let buys = match borrower.behaviour {
        // Buys once, the day after opening, and is never heard of again.
        Behaviour::NeverPays => borrower.purchases == 0 && day > borrower.opened_on,
        _ => {
            day > borrower.opened_on
                && borrower.random.below(1000) < borrower.purchases_per_thousand_days
        }
    };
    if buys && !borrower.blocked {
        match purchase(services, borrower, day).await? {
            Some(purchase) => outcome.purchases.push(purchase),
            None => outcome.refused += 1,
        }
    }
    Ok(outcome)
}

/// Repays what the behaviour says on the open statement; whether anything was paid.
async fn repay(services: &Services, borrower: &Borrower, day: Date) -> anyhow::Result<bool> {
    let operations = &services.credit.operations;
    let stored = operations
        .load(borrower.account)
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    let Some(open) = stored.account.open_statement.as_ref() else {
        return Ok(false);
    };
    let still_to_pay = open.still_to_pay();
    if !still_to_pay.is_positive() {
        return Ok(false);
    }
    let amount = match borrower.behaviour {
        Behaviour::PaysInFull => {
            let billed = stored.account.billed_balance();
            if billed.minor() > still_to_pay.minor() {
                billed
            } else {
                still_to_pay
            }
        }
        _ => still_to_pay,
    };
    let key = format!("demo-repay-{}-{day}", borrower.account);
    let command = CreditCommand::Repay { amount };
    let hash = request_hash(
        command.kind(),
        borrower.account,
        &json!({ "amount": amount.minor() }),
    );
    services
        .credit
        .operations
        .execute(
            &key,
            borrower.account,
            &command,
            &hash,
            day,
            services.clock.now(),
        )
        .await
        .map_err(|error| anyhow::anyhow!("repayment {key}: {}: {error}", error.code()))?;
    Ok(true)
}

/// A purchase: the risk engine decides the order, then the credit account authorises and
/// captures it in installments. `None` when the risk engine or the credit rules refused.
async fn purchase(
    services: &Services,
    borrower: &mut Borrower,
    day: Date,
) -> anyhow::Result<Option<Purchase>> {
    let ceiling = (borrower.limit / 4).clamp(5_000, 150_000) / 100;
    let amount = borrower.random.range(50, ceiling.max(51)) * 100;
    let periods = TERMS[borrower.random.index_below(TERMS.len())];
    let minute = i8::try_from(borrower.random.range(0, 59))?;
    let number = borrower.purchases + 1;
    let reference = format!("demo-purchase-{}-{number}", borrower.index);
    let at = services.at(day, 10, minute)?;
    let mut event = Event::new(
        reference.clone(),
        EventKind::Transaction,
        at,
        borrower.customer_id.clone(),
    );
    event.device = Some(format!("device-{}", borrower.index));
    event.card = Some(format!("card-{}", borrower.index));
    event.address = Some(format!("address-{}", borrower.index));
    event.merchant = Some(format!("merchant-{}", borrower.random.below(12)));
    event.amount = Some(Amount::new(amount, Currency::CNY));
    let decided = services
        .risk
        .decide(&event)
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    borrower.purchases = number;
    // A step-up is a second factor the genuine customer passes; anything stronger stops
    // the order.
    if !matches!(
        decided.decision["action"].as_str(),
        Some("approve" | "step_up")
    ) {
        return Ok(None);
    }
    if borrower.first_purchase.is_none() {
        borrower.first_purchase = Some(day);
    }
    let captured = charge(
        services,
        borrower.account,
        &reference,
        Amount::new(amount, Currency::CNY),
        periods,
        day,
    )
    .await?;
    if captured.is_none() && borrower.purchases == 1 {
        borrower.first_purchase = None;
    }
    Ok(captured.map(|_| Purchase {
        reference,
        amount,
        at,
    }))
}

/// Authorises and captures `amount` on `account` in `periods` installments: the plan's id,
/// or `None` when the credit rules refused it.
pub async fn charge(
    services: &Services,
    account: i64,
    reference: &str,
    amount: Amount,
    periods: u32,
    day: Date,
) -> anyhow::Result<Option<u32>> {
    let operations = &services.credit.operations;
    let now = services.clock.now();
    let authorize = CreditCommand::Authorize {
        amount,
        expires_on: None,
        merchant_reference: Some(format!("order {reference}")),
    };
    let key = format!("{reference}-authorize");
    let hash = request_hash(
        authorize.kind(),
        account,
        &json!({ "amount": amount.minor(), "reference": reference }),
    );
    let authorized = match operations
        .execute(&key, account, &authorize, &hash, day, now)
        .await
    {
        Ok(answer) => answer,
        Err(error) if refused(&error) => return Ok(None),
        Err(error) => anyhow::bail!("authorising {reference}: {}: {error}", error.code()),
    };
    let authorization = authorized.body["authorization"]["id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| anyhow::anyhow!("authorising {reference}: no authorisation id"))?;
    let capture = CreditCommand::Capture {
        authorization,
        amount: None,
        product: "installment".into(),
        periods,
    };
    let key = format!("{reference}-capture");
    let hash = request_hash(
        capture.kind(),
        account,
        &json!({ "authorization": authorization, "periods": periods }),
    );
    let captured = operations
        .execute(&key, account, &capture, &hash, day, now)
        .await
        .map_err(|error| anyhow::anyhow!("capturing {reference}: {}: {error}", error.code()))?;
    let plan = captured.body["plan_id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| anyhow::anyhow!("capturing {reference}: no plan id"))?;
    Ok(Some(plan))
}
