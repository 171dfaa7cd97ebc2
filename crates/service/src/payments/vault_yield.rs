//! The vault's daily yield run: every vault earns, for each day, its balance at the end of
//! that day times the annual rate over 365, credited in whole minor units rounded down with
//! the fraction carried to the next day (`tally_payments::vault::daily_yield`), as an entry
//! from the payment service's yield expense to the vault.
//!
//! Days are accrued in order: a vault whose last day is further back has the days between
//! accrued first. Each day's entry is posted under `payments-yield:{vault code}:{day}`
//! before the day is recorded, so a run stopped between the two and run again posts the
//! same entry once (the balance as of a past day does not change) and records the day.

use crate::payments::accounts::{balance_code, Balance, ACCOUNT_CODE_PREFIX, PAYMENTS_SERVICE};
use crate::payments::checkout::{transfer, PaymentService};
use crate::payments::error::PaymentServiceError;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_core::{Amount, Currency};
use tally_ledger::Command;
use tally_payments::vault::{daily_yield, AnnualRate};
use tally_store::{StoreError, WriteError};
use utoipa::ToSchema;

/// Vaults read per query.
const VAULTS_PER_PAGE: i64 = 500;
/// The most days one run catches up for one vault.
const CATCH_UP_DAYS_MAX: i32 = 366;

/// What a yield run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct YieldReport {
    /// The last day accrued.
    pub date: String,
    /// Vaults brought up to the date.
    pub vaults: usize,
    /// Days accrued, over all vaults.
    pub days: usize,
    /// Minor units credited per currency.
    pub credited: BTreeMap<String, i64>,
}

fn invalid(message: impl Into<String>) -> PaymentServiceError {
    PaymentServiceError::Invalid(message.into())
}

/// The customer and currency of a vault's code (`payments-vault-{customer}-{CUR}`).
fn vault_of(code: &str) -> Option<(String, Currency)> {
    let rest = code.strip_prefix(&format!("{ACCOUNT_CODE_PREFIX}vault-"))?;
    let (customer, currency) = rest.rsplit_once('-')?;
    Some((customer.to_string(), Currency::from_code(currency).ok()?))
}

impl PaymentService {
    /// Accrues every vault's yield through `date` at `rate`; `date` must be over (by the
    /// service's time zone) at `now`.
    pub async fn accrue_vault_yield(
        &self,
        date: Date,
        rate: AnnualRate,
        now: Timestamp,
    ) -> Result<YieldReport, PaymentServiceError> {
        let zone = self.time_zone();
        let end_of = |day: Date| -> Result<Timestamp, PaymentServiceError> {
            let next = day
                .checked_add(1.day())
                .map_err(|error| invalid(error.to_string()))?;
            let start = next
                .to_zoned(zone.clone())
                .map_err(|error| invalid(error.to_string()))?
                .timestamp();
            // The last instant of `day`: balances as they stood when it ended.
            start
                .checked_sub(jiff::SignedDuration::from_micros(1))
                .map_err(|error| invalid(error.to_string()))
        };
        if end_of(date)? >= now {
            return Err(invalid(format!(
                "{date} is not over yet; its yield is accrued after it ends"
            )));
        }
        let mut report = YieldReport {
            date: date.to_string(),
            ..YieldReport::default()
        };
        let mut after = String::new();
        loop {
            let page = self
                .database()
                .accounts_with_code_prefix(
                    &format!("{ACCOUNT_CODE_PREFIX}vault-"),
                    &after,
                    VAULTS_PER_PAGE,
                )
                .await?;
            let Some((_, last)) = page.last() else {
                break;
            };
            after = last.clone();
            for (account, code) in page {
                let Some((customer, currency)) = vault_of(&code) else {
                    continue;
                };
                if balance_code(Balance::Vault, &customer, currency) != code {
                    continue;
                }
                let stored = self
                    .database()
                    .vault_yield(&customer, currency.code())
                    .await?;
                let (mut day, mut carried) = match stored {
                    Some((through, carried)) => {
                        let through: Date = through.parse().map_err(|error| {
                            StoreError::Corrupt(format!("vault yield day {through}: {error}"))
                        })?;
                        let next = through
                            .checked_add(1.day())
                            .map_err(|error| invalid(error.to_string()))?;
                        (next, carried)
                    }
                    None => (date, 0),
                };
                let first = day;
                if day > date {
                    continue;
                }
                if (date - first).get_days() > CATCH_UP_DAYS_MAX {
                    day = date
                        .checked_sub(CATCH_UP_DAYS_MAX.days())
                        .map_err(|error| invalid(error.to_string()))?;
                }
                let accounts = self
                    .accounts()
                    .service(self.database(), self.writer(), currency)
                    .await?;
                while day <= date {
                    let balance = self.database().balance_as_of(account, end_of(day)?).await?;
                    let posted =
                        Amount::new(balance.credits_posted - balance.debits_posted, currency);
                    let earned = daily_yield(posted, rate, carried)?;
                    if earned.credited.is_positive() {
                        let key = format!("payments-yield:{code}:{day}");
                        let entry = transfer(
                            accounts.vault_yield_expense,
                            account,
                            earned.credited,
                            format!("vault yield of {day}"),
                            &code,
                        );
                        match self
                            .writer()
                            .submit_as(PAYMENTS_SERVICE, key.clone(), Command::PostEntry(entry))
                            .await
                        {
                            Ok(_) => {}
                            Err(WriteError::Ledger(error)) => {
                                return Err(PaymentServiceError::LedgerRefused {
                                    key,
                                    message: error.to_string(),
                                })
                            }
                            Err(error) => {
                                return Err(PaymentServiceError::InFlight {
                                    payment: code.clone(),
                                    reason: error.to_string(),
                                })
                            }
                        }
                        *report
                            .credited
                            .entry(currency.code().to_string())
                            .or_insert(0) += earned.credited.minor();
                    }
                    carried = earned.carried;
                    self.database()
                        .set_vault_yield(&customer, currency.code(), &day.to_string(), carried)
                        .await?;
                    report.days += 1;
                    day = day
                        .checked_add(1.day())
                        .map_err(|error| invalid(error.to_string()))?;
                }
                report.vaults += 1;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_code_names_its_customer_and_currency() {
        assert_eq!(
            vault_of("payments-vault-shopper-1-CNY"),
            Some(("shopper-1".to_string(), Currency::CNY))
        );
        assert_eq!(vault_of("payments-wallet-shopper-1-CNY"), None);
        assert_eq!(vault_of("payments-vault-shopper-XXX"), None);
    }
}
