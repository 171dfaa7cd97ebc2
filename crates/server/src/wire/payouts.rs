//! Wire types of the payout routes: a payout, a batch of them, a scheduled run's date, and
//! the queries of the list and the bank files. Answers are the payment service's
//! `PayoutView`, `PayoutBatchView`, `PayoutList` and `PayoutRunView`.

use crate::error::ApiError;
use crate::wire::{AmountInput, PositiveAmount};
use serde::Deserialize;
use tally_channel::payout_file::FileEncoding;
use tally_service::payments::payouts::{NewPayout, PayoutQuery};
use utoipa::ToSchema;

/// A payout out of a merchant's available balance to its settlement bank account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayoutRequest {
    pub merchant_id: String,
    /// In the merchant's currency, at most its available balance.
    #[schema(value_type = PositiveAmount)]
    pub amount: AmountInput,
}

impl CreatePayoutRequest {
    pub fn parse(&self) -> Result<NewPayout, ApiError> {
        Ok(NewPayout {
            merchant: self.merchant_id.clone(),
            amount: self.amount.parse()?,
        })
    }
}

/// Payouts to send to the bank in one file, all in one currency.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayoutBatchRequest {
    /// 1 to 1,000 payouts.
    #[schema(min_items = 1, max_items = 1000)]
    pub payouts: Vec<CreatePayoutRequest>,
}

/// The business date whose settlement run the scheduled payouts follow.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRunRequest {
    #[schema(value_type = String, format = Date, example = "2026-12-04")]
    pub business_date: jiff::civil::Date,
}

/// Which payouts to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayoutsQuery {
    /// Only this merchant's.
    pub merchant_id: Option<String>,
    /// Only those in this state: `created`, `submitted`, `paid`, `failed` or `returned`.
    pub state: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
    /// 1 to 500 (100 when absent).
    pub limit: Option<i64>,
}

impl PayoutsQuery {
    pub fn query(&self) -> PayoutQuery {
        PayoutQuery {
            merchant: self.merchant_id.clone(),
            state: self.state.clone(),
            after: self.after.clone(),
            limit: self.limit,
        }
    }
}

/// The encoding of a bank file.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayoutFileQuery {
    /// `utf-8` (when absent) or `gbk`.
    pub encoding: Option<String>,
}

impl PayoutFileQuery {
    pub fn encoding(&self) -> Result<FileEncoding, ApiError> {
        match &self.encoding {
            None => Ok(FileEncoding::Utf8),
            Some(name) => FileEncoding::parse(name).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_encoding",
                    format!("encoding {name:?} is not utf-8 or gbk"),
                )
            }),
        }
    }
}
