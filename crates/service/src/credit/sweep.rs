//! The daily sweep of repayments: what customers repaid on a business date sits in the
//! credit business's repayment clearing account (`credit-repayment-clearing-{CUR}`) until it
//! is swept to the bank account it arrived in (`credit-bank-{CUR}`, an asset of the credit
//! service), in one ledger entry per date and currency.
//!
//! The amount is the sum of the clearing account's debits posted during the date in the
//! service's zone (each repayment debits it; the sweeps credit it, so they never count).
//! The ledger posts at its writer's time, never in the past, so once the date is over its
//! legs do not change: the amount is the same however often the sweep is asked, and the
//! entry is posted under the key `credit-sweep:{date}:{CUR}`, which the ledger applies once.

use crate::credit::ledger_accounts::{credit_ledger_accounts, ledger_account_code, CREDIT_SERVICE};
use crate::credit::views::AmountView;
use crate::service_accounts::{open_service_account, owner_metadata};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{Amount, Currency};
use tally_credit::LedgerRole;
use tally_ledger::{AccountFlags, AccountKind, Command, NewAccount, NewEntry, NewLeg, Side};
use tally_store::{Database, LedgerWriter, StoreError};
use utoipa::ToSchema;

/// Why a sweep was refused or could not finish. Each kind has a stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{date} is not over yet in {zone}: its repayments may still arrive")]
    DateNotClosed { date: String, zone: String },
    /// The ledger refused or could not store the sweep (or opening its accounts).
    #[error("the sweep's ledger write failed: {0}")]
    Ledger(String),
}

impl SweepError {
    pub fn code(&self) -> &'static str {
        match self {
            SweepError::Store(_) => "storage_unavailable",
            SweepError::DateNotClosed { .. } => "sweep_date_not_closed",
            SweepError::Ledger(_) => "sweep_ledger_failed",
        }
    }
}

/// A date's sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SweepView {
    /// What was swept: the repayments that arrived during the date (zero: no entry).
    pub amount: AmountView,
    #[schema(value_type = String, format = Date)]
    pub business_date: Date,
    /// The ledger idempotency key of the sweep's entry.
    pub key: String,
}

/// The code of the bank account repayments arrive in and are swept to.
pub fn bank_account_code(currency: Currency) -> String {
    format!("credit-bank-{}", currency.code())
}

/// The credit business's bank account in `currency` (`credit-bank-{CUR}`), opened on first
/// use: repayments are swept to it, customers' credit-balance payouts are paid from it.
pub async fn credit_bank_account(
    database: &Database,
    writer: &LedgerWriter,
    currency: Currency,
) -> Result<tally_core::AccountId, String> {
    open_service_account(
        database,
        writer,
        CREDIT_SERVICE,
        "credit-ledger-account:",
        NewAccount {
            code: bank_account_code(currency),
            kind: AccountKind::Asset,
            currency,
            flags: AccountFlags::default(),
            metadata: owner_metadata(&CREDIT_SERVICE),
        },
    )
    .await
    .map_err(|error| error.to_string())
}

/// Sweeps the repayments of `date` (in `zone`) in `currency` from clearing to the bank.
pub async fn sweep_repayments(
    database: &Database,
    writer: &LedgerWriter,
    currency: Currency,
    date: Date,
    zone: &TimeZone,
    now: Timestamp,
) -> Result<SweepView, SweepError> {
    let zoned = |day: Date| {
        day.to_zoned(zone.clone())
            .map(|start| start.timestamp())
            .map_err(|error| SweepError::Ledger(format!("date {day}: {error}")))
    };
    let start = zoned(date)?;
    let end = zoned(
        date.tomorrow()
            .map_err(|error| SweepError::Ledger(error.to_string()))?,
    )?;
    if now < end {
        return Err(SweepError::DateNotClosed {
            date: date.to_string(),
            zone: zone.iana_name().unwrap_or("the service's zone").to_string(),
        });
    }
    let accounts = credit_ledger_accounts(database, writer, currency)
        .await
        .map_err(|error| SweepError::Ledger(error.to_string()))?;
    let clearing = accounts.account_of(LedgerRole::RepaymentClearing);
    let bank = credit_bank_account(database, writer, currency)
        .await
        .map_err(SweepError::Ledger)?;
    let mut minor: i64 = 0;
    for leg in database
        .pending_legs_between(
            &clearing.to_string(),
            start.as_microsecond(),
            end.as_microsecond(),
        )
        .await?
    {
        if leg.side == "debit" {
            minor = minor
                .checked_add(leg.amount)
                .ok_or_else(|| SweepError::Ledger("the day's repayments overflow".into()))?;
        }
    }
    let amount = Amount::new(minor, currency);
    let key = format!("credit-sweep:{date}:{}", currency.code());
    if amount.is_positive() {
        let entry = NewEntry {
            description: format!(
                "repayments of {date} swept from {} to {}",
                ledger_account_code(LedgerRole::RepaymentClearing, currency),
                bank_account_code(currency)
            ),
            metadata: BTreeMap::from([("sweep_date".to_string(), date.to_string())]),
            legs: vec![
                NewLeg {
                    account_id: bank,
                    side: Side::Debit,
                    amount,
                },
                NewLeg {
                    account_id: clearing,
                    side: Side::Credit,
                    amount,
                },
            ],
        };
        writer
            .submit_as(CREDIT_SERVICE, key.clone(), Command::PostEntry(entry))
            .await
            .map_err(|error| SweepError::Ledger(format!("{key}: {error}")))?;
    }
    Ok(SweepView {
        amount: amount.into(),
        business_date: date,
        key,
    })
}
