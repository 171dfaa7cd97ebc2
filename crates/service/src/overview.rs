//! The operations overview: one day's counts across the ledger, the risk engine, the case
//! queue, customers and credit, as the console's first page shows them. Only counts: no
//! amount is summed here, so nothing of money passes through it.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use tally_store::console::NamedCount;
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
    /// Credit accounts by delinquency bucket.
    pub credit: bool,
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
        Some(database.entries_posted_between(from, to).await?)
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
    Ok(Overview {
        day: request.day,
        entries_posted,
        decisions_by_action,
        cases_by_status,
        customers,
        accounts_by_bucket,
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
