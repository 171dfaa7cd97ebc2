//! The operations overview: one day's counts across the ledger, the risk engine, the case
//! queue, customers, credit, payments, settlement and reconciliation, as the console's first
//! page shows them. Only counts: no amount is summed here, so nothing of money passes
//! through it.
//!
//! The day is today unless nothing has happened today yet and something has before: then
//! it is the latest day with activity ([`overview_day`]), so a database whose business is
//! in the past (`tally demo`'s simulated months) shows its last business day, not an empty
//! page.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use tally_store::console::{Counted, NamedCount};
use tally_store::lists::{ListPage, SETTLEMENT_RUN_SORTS};
use tally_store::recon::RECON_RUN_SORTS;
use tally_store::{Database, StoreError};

/// Delinquency buckets in their order, as stored (`tally_store::credit::bucket_name`).
pub const BUCKETS: [&str; 8] = ["current", "m1", "m2", "m3", "m4", "m5", "m6", "m6_plus"];

/// Which parts of the overview to count (each follows a scope of whoever asks), for which
/// day in which time zone.
#[derive(Debug, Clone)]
pub struct OverviewRequest {
    pub day: Date,
    pub time_zone: TimeZone,
    /// Journal entries posted that day.
    pub ledger: bool,
    /// Risk decisions on events of that day, by action.
    pub risk_decisions: bool,
    /// Cases by status.
    pub cases: bool,
    /// How many customers there are.
    pub customers: bool,
    /// Credit accounts by delinquency bucket, applications approved and declined and
    /// purchases that day.
    pub credit: bool,
    /// Payments created that day, and the latest settlement run.
    pub payments: bool,
    /// The latest reconciliation run and the exceptions left open.
    pub recon: bool,
}

/// The latest settlement run: its business date and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementStatus {
    pub business_date: String,
    pub status: String,
}

/// Where reconciliation stands: the latest run (date, exceptions it opened, of them not
/// resolved) and the exceptions not resolved across every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconStatus {
    pub latest: Option<(String, i64, i64)>,
    pub unresolved: i64,
}

/// The counts asked for; `None` for a part not asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub day: Date,
    pub entries_posted: Option<i64>,
    /// Every action of the engine, in its order of severity, with zeros.
    pub decisions_by_action: Option<Vec<NamedCount>>,
    /// Every case status, open first, with zeros.
    pub cases_by_status: Option<Vec<NamedCount>>,
    pub customers: Option<i64>,
    /// Every bucket, current first, with zeros (and any other name found, after them).
    pub accounts_by_bucket: Option<Vec<NamedCount>>,
    /// Credit applications of the day: approved, declined (with zeros).
    pub applications: Option<Vec<NamedCount>>,
    /// Purchases authorised on credit lines that day.
    pub credit_purchases: Option<i64>,
    pub payments_created: Option<i64>,
    /// `None` inside: no settlement run yet.
    pub settlement: Option<Option<SettlementStatus>>,
    pub recon: Option<ReconStatus>,
}

/// The day the overview shows: `today`, unless the latest activity recorded is on an
/// earlier day, which is then shown (with `true`: not today).
pub async fn overview_day(
    database: &Database,
    today: Date,
    time_zone: &TimeZone,
) -> Result<(Date, bool), OverviewError> {
    let (start_of_today, _) = day_bounds(today, time_zone)?;
    match database.latest_activity_at().await? {
        Some(latest) if latest < start_of_today => {
            Ok((latest.to_zoned(time_zone.clone()).date(), true))
        }
        _ => Ok((today, false)),
    }
}

/// Why the overview could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum OverviewError {
    #[error("day {day} in time zone {time_zone}: {message}")]
    Day {
        day: Date,
        time_zone: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `counted` in the order of `names` with zeros for the names missing, then any other.
fn in_order(names: &[&str], counted: Vec<NamedCount>) -> Vec<NamedCount> {
    let mut ordered: Vec<NamedCount> = names
        .iter()
        .map(|name| NamedCount {
            name: (*name).to_string(),
            count: counted
                .iter()
                .find(|count| count.name == *name)
                .map_or(0, |count| count.count),
        })
        .collect();
    ordered.extend(
        counted
            .into_iter()
            .filter(|count| !names.contains(&count.name.as_str())),
    );
    ordered
}

/// The first instant of `day` and of the day after it, in `time_zone`.
fn day_bounds(day: Date, time_zone: &TimeZone) -> Result<(Timestamp, Timestamp), OverviewError> {
    let refuse = |message: String| OverviewError::Day {
        day,
        time_zone: time_zone.iana_name().unwrap_or("fixed offset").to_string(),
        message,
    };
    let start = day
        .to_zoned(time_zone.clone())
        .map_err(|error| refuse(error.to_string()))?;
    let end = day
        .tomorrow()
        .and_then(|next| next.to_zoned(time_zone.clone()))
        .map_err(|error| refuse(error.to_string()))?;
    Ok((start.timestamp(), end.timestamp()))
}

/// Counts the parts of the overview `request` asks for.
pub async fn overview(
    database: &Database,
    request: &OverviewRequest,
) -> Result<Overview, OverviewError> {
    let (from, to) = day_bounds(request.day, &request.time_zone)?;
    let entries_posted = if request.ledger {
        Some(
            database
                .count_between(Counted::EntriesPosted, from, to)
                .await?,
        )
    } else {
        None
    };
    let decisions_by_action = if request.risk_decisions {
        let actions: Vec<&str> = tally_risk::Action::ALL
            .iter()
            .map(|action| action.as_str())
            .collect();
        let counted = database.risk_decisions_by_action(from, to).await?;
        Some(in_order(&actions, counted))
    } else {
        None
    };
    let cases_by_status = if request.cases {
        let counted = database.risk_cases_by_status().await?;
        Some(in_order(&crate::risk::CASE_STATUSES, counted))
    } else {
        None
    };
    let customers = if request.customers {
        Some(database.customer_count().await?)
    } else {
        None
    };
    let accounts_by_bucket = if request.credit {
        let counted = database.credit_accounts_by_bucket().await?;
        Some(in_order(&BUCKETS, counted))
    } else {
        None
    };
    let (applications, credit_purchases) = if request.credit {
        let counted = database.credit_applications_between(from, to).await?;
        (
            Some(in_order(&["approved", "declined"], counted)),
            Some(
                database
                    .count_between(Counted::CreditPurchases, from, to)
                    .await?,
            ),
        )
    } else {
        (None, None)
    };
    let (payments_created, settlement) = if request.payments {
        let latest = ListPage::new(&SETTLEMENT_RUN_SORTS, Some("business_date"), true, 0, 1)
            .map_err(StoreError::Corrupt)?;
        let run = database
            .settlement_runs_list(&latest)
            .await?
            .into_iter()
            .next()
            .map(|run| SettlementStatus {
                business_date: run.business_date,
                status: run.status,
            });
        (
            Some(
                database
                    .count_between(Counted::PaymentsCreated, from, to)
                    .await?,
            ),
            Some(run),
        )
    } else {
        (None, None)
    };
    let recon = if request.recon {
        let latest = ListPage::new(&RECON_RUN_SORTS, Some("business_date"), true, 0, 1)
            .map_err(StoreError::Corrupt)?;
        let run = database
            .recon_runs_list(&latest)
            .await?
            .into_iter()
            .next()
            .map(|row| (row.run.business_date, row.run.exceptions, row.unresolved));
        Some(ReconStatus {
            latest: run,
            unresolved: database.recon_exceptions_unresolved().await?,
        })
    } else {
        None
    };
    Ok(Overview {
        day: request.day,
        entries_posted,
        decisions_by_action,
        cases_by_status,
        customers,
        accounts_by_bucket,
        applications,
        credit_purchases,
        payments_created,
        settlement,
        recon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_in_the_given_order_with_zeros_then_the_others() {
        let counted = vec![
            NamedCount {
                name: "weird".into(),
                count: 1,
            },
            NamedCount {
                name: "m2".into(),
                count: 4,
            },
        ];
        let ordered = in_order(&["current", "m1", "m2"], counted);
        let pairs: Vec<(&str, i64)> = ordered
            .iter()
            .map(|count| (count.name.as_str(), count.count))
            .collect();
        assert_eq!(pairs, [("current", 0), ("m1", 0), ("m2", 4), ("weird", 1)]);
    }
}
