//! The account rules a lender configures: minimum payment, revolving interest, grace days,
//! penalties and their cap, rounding, the allocation order of repayments, what each
//! delinquency bucket triggers, and the smallest balance put into installments.

use super::{Bucket, BucketAction, DelinquencyAction};
use crate::allocation::AllocationOrder;
use crate::error::CreditError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_core::Rounding;

/// The account rules a lender configures (TOML, serde). Defaults are the issue's. Rates and
/// shares are decimal strings (`"0.0005"`); a number is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountPolicy {
    /// Share of the principal due in the minimum payment (0.10).
    #[serde(with = "tally_core::rate::exact")]
    pub minimum_principal_share: Decimal,
    /// Daily interest on a remainder left after a minimum payment (0.0005 = 0.05% a day).
    #[serde(with = "tally_core::rate::exact")]
    pub revolving_daily_rate: Decimal,
    /// Days after the due date before penalties start.
    pub grace_days: i32,
    /// Daily penalty on an overdue item's principal, fee and interest (0.0005).
    #[serde(with = "tally_core::rate::exact")]
    pub penalty_daily_rate: Decimal,
    /// Most penalty one item can ever carry, as a share of what it billed (0.25).
    #[serde(with = "tally_core::rate::exact")]
    pub penalty_cap_share: Decimal,
    /// Rounding of daily interest and penalties (per item per day).
    pub rounding: Rounding,
    pub allocation_order: AllocationOrder,
    pub bucket_actions: Vec<BucketAction>,
    /// Smallest statement balance that may be put into installments, in minor units.
    pub bill_installment_minimum_minor: i64,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        AccountPolicy {
            minimum_principal_share: Decimal::new(10, 2),
            revolving_daily_rate: Decimal::new(5, 4),
            grace_days: 3,
            penalty_daily_rate: Decimal::new(5, 4),
            penalty_cap_share: Decimal::new(25, 2),
            rounding: Rounding::HalfUp,
            allocation_order: AllocationOrder::default(),
            bucket_actions: vec![
                BucketAction {
                    bucket: Bucket::M1,
                    action: DelinquencyAction::Freeze,
                },
                BucketAction {
                    bucket: Bucket::M1,
                    action: DelinquencyAction::Contact,
                },
                BucketAction {
                    bucket: Bucket::M3,
                    action: DelinquencyAction::Contact,
                },
                BucketAction {
                    bucket: Bucket::M6Plus,
                    action: DelinquencyAction::ChargeOff,
                },
            ],
            bill_installment_minimum_minor: 10_000,
        }
    }
}

impl AccountPolicy {
    pub fn validate(&self) -> Result<(), CreditError> {
        self.allocation_order.validate()?;
        let rates = [
            self.minimum_principal_share,
            self.revolving_daily_rate,
            self.penalty_daily_rate,
            self.penalty_cap_share,
        ];
        if rates
            .iter()
            .any(|rate| rate.is_sign_negative() || *rate > Decimal::ONE)
        {
            return Err(CreditError::InvalidConfiguration(
                "policy rates and shares must be in [0, 1]".into(),
            ));
        }
        if self.grace_days < 0 {
            return Err(CreditError::InvalidConfiguration(
                "grace_days must not be negative".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_loads_from_toml_with_defaults() {
        let policy: AccountPolicy = toml::from_str(
            r#"
            grace_days = 5
            allocation_order = ["penalty", "overdue_principal", "overdue_fee", "overdue_interest",
                                "current_principal", "current_fee", "current_interest"]
            "#,
        )
        .unwrap();
        policy.validate().unwrap();
        assert_eq!(policy.grace_days, 5);
        assert_eq!(policy.minimum_principal_share, Decimal::new(10, 2));
        assert_eq!(policy.penalty_daily_rate, Decimal::new(5, 4));
        assert!(toml::from_str::<AccountPolicy>("grace = 5").is_err());
        let quoted: AccountPolicy = toml::from_str(r#"penalty_daily_rate = "0.0004""#).unwrap();
        assert_eq!(quoted.penalty_daily_rate, Decimal::new(4, 4));
        let error = toml::from_str::<AccountPolicy>("penalty_daily_rate = 0.0004")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expected a decimal written as a string"),
            "{error}"
        );
    }
}
