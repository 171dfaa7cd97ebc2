//! Wire types of the merchant and settlement routes: onboarding, a status change, a fee
//! schedule with settlement terms, and a settlement run's date. Answers are the payment
//! service's `MerchantView`, `SettlementRunView` and `SettlementStatementList`.

use crate::error::ApiError;
use serde::Deserialize;
use std::collections::BTreeMap;
use tally_payments::{FeeSchedule, FeeText, MerchantStatus, SettlementTerms};
use tally_service::payments::merchants::NewMerchant;
use utoipa::ToSchema;

/// One payment method's fee: `rate` × the captured amount (an exact decimal string,
/// `"0.006"`), plus `fixed`, kept between `minimum` and `maximum` (decimal strings in major
/// units of the schedule's currency).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeRequest {
    #[schema(example = "0.006")]
    pub rate: String,
    #[schema(example = "0.30")]
    pub fixed: Option<String>,
    pub minimum: Option<String>,
    pub maximum: Option<String>,
}

/// A fee schedule: fees by payment method (`wallet`, `vault`, `card`, `credit_line_1`,
/// `credit_line_3`, `credit_line_6`, `credit_line_12`, `credit_line_24`; a method not listed
/// costs nothing) and the rounding mode of `amount × rate` (`half_up` when absent).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeScheduleRequest {
    #[schema(example = "half_up")]
    pub rounding: Option<String>,
    #[serde(default)]
    pub fees: BTreeMap<String, FeeRequest>,
}

/// When the merchant is paid: T+`delay_days` business days in its zone, weekends and
/// `holidays` (ISO dates) skipped; `reserve_basis_points` of each day's net held for
/// `reserve_hold_days` calendar days.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementTermsRequest {
    #[schema(minimum = 0, maximum = 30)]
    pub delay_days: u32,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10000)]
    pub reserve_basis_points: u32,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 365)]
    pub reserve_hold_days: u32,
}

/// A merchant to onboard. The legal name, licence number and bank account are sealed at
/// rest and shown masked.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardMerchantRequest {
    /// 1 to 64 ASCII letters, digits, `-`, `_` or `.`: the `merchant_id` of its payments.
    #[schema(example = "shop-1")]
    pub id: String,
    pub legal_name: String,
    pub licence_number: String,
    /// The account settlements are paid to.
    pub bank_account: String,
    /// ISO 18245, four digits.
    #[schema(example = "5411")]
    pub category_code: String,
    /// IANA zone name; its days are the merchant's business days.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    /// ISO 4217 code of the currency it is paid in; its payments must be in it.
    #[schema(example = "CNY")]
    pub currency: String,
    /// No fees when absent.
    pub fee_schedule: Option<FeeScheduleRequest>,
    /// T+1, no holidays, no reserve when absent.
    pub settlement: Option<SettlementTermsRequest>,
}

/// A merchant's new fee schedule, and its settlement terms (kept when absent).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantTermsRequest {
    pub fee_schedule: FeeScheduleRequest,
    pub settlement: Option<SettlementTermsRequest>,
}

/// The statuses a merchant may be moved to.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatusInput {
    Active,
    Suspended,
    Closed,
}

/// A status change and why.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantStatusRequest {
    pub status: MerchantStatusInput,
    pub reason: String,
}

/// The business date to settle.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementRunRequest {
    #[schema(value_type = String, format = Date, example = "2026-12-04")]
    pub business_date: jiff::civil::Date,
}

/// Which merchant's statements, when not every merchant's.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementsQuery {
    pub merchant_id: Option<String>,
}

fn invalid(error: tally_payments::MerchantError) -> ApiError {
    ApiError::unprocessable("invalid_merchant_field", error.to_string())
}

impl FeeScheduleRequest {
    pub fn parse(&self, currency: tally_core::Currency) -> Result<FeeSchedule, ApiError> {
        let fees: BTreeMap<String, FeeText> = self
            .fees
            .iter()
            .map(|(method, fee)| {
                (
                    method.clone(),
                    FeeText {
                        rate: fee.rate.clone(),
                        fixed: fee.fixed.clone(),
                        minimum: fee.minimum.clone(),
                        maximum: fee.maximum.clone(),
                    },
                )
            })
            .collect();
        // Fields are named as the request nests them: `fee_schedule.fees.card.rate`.
        FeeSchedule::parse(currency, self.rounding.as_deref(), &fees).map_err(|error| match error {
            tally_payments::MerchantError::InvalidField { field, reason } => {
                invalid(tally_payments::MerchantError::InvalidField {
                    field: format!("fee_schedule.{field}"),
                    reason,
                })
            }
            other => invalid(other),
        })
    }
}

impl SettlementTermsRequest {
    pub fn parse(&self) -> Result<SettlementTerms, ApiError> {
        SettlementTerms::parse(
            self.delay_days,
            &self.holidays,
            self.reserve_basis_points,
            self.reserve_hold_days,
        )
        .map_err(invalid)
    }
}

impl OnboardMerchantRequest {
    pub fn parse(self) -> Result<NewMerchant, ApiError> {
        let currency = tally_core::Currency::from_code(&self.currency).map_err(|_| {
            invalid(tally_payments::MerchantError::InvalidField {
                field: "currency".into(),
                reason: format!("{:?} is not an ISO 4217 currency code", self.currency),
            })
        })?;
        let fees = match &self.fee_schedule {
            Some(schedule) => schedule.parse(currency)?,
            None => FeeSchedule::free(currency),
        };
        let settlement = match &self.settlement {
            Some(terms) => terms.parse()?,
            None => SettlementTerms::default(),
        };
        Ok(NewMerchant {
            id: self.id,
            legal_name: self.legal_name,
            licence_number: self.licence_number,
            bank_account: self.bank_account,
            category_code: self.category_code,
            time_zone: self.time_zone,
            currency,
            fees,
            settlement,
        })
    }
}

impl MerchantStatusInput {
    pub fn status(self) -> MerchantStatus {
        match self {
            MerchantStatusInput::Active => MerchantStatus::Active,
            MerchantStatusInput::Suspended => MerchantStatus::Suspended,
            MerchantStatusInput::Closed => MerchantStatus::Closed,
        }
    }
}
