//! Wire types of the reconciliation worklist: list filters, an assignment, a resolution
//! (a note, or a note with an adjusting journal entry whose legs name accounts by code).
//! Answers are the service's `RunView` and `ExceptionView`.

use crate::error::ApiError;
use crate::wire::{parse_amount, parse_currency};
use serde::{Deserialize, Serialize};
use tally_ledger::Side;
use tally_service::recon::{AdjustingLeg, ExceptionView, Resolution, RunView};
use utoipa::ToSchema;

/// `GET /v1/recon/runs`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Runs before this date (YYYY-MM-DD), for the next page.
    pub before: Option<String>,
    /// At most this many, 1 to 500 (100 when absent).
    pub limit: Option<i64>,
}

/// `GET /v1/recon/exceptions`: every filter given must hold.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExceptionsQuery {
    /// The run's business date (YYYY-MM-DD).
    pub run: Option<String>,
    /// `missing_in_channel`, `missing_in_ledger`, `amount_mismatch`, `status_mismatch`,
    /// `currency_mismatch`, `fee_mismatch`, `duplicate_in_ledger`, `duplicate_in_channel`
    /// or `timing`.
    pub class: Option<String>,
    /// `open`, `assigned` or `resolved`.
    pub state: Option<String>,
    pub assignee: Option<String>,
    /// Exceptions after this id, for the next page.
    pub after: Option<String>,
    /// At most this many, 1 to 500 (100 when absent).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionList {
    pub exceptions: Vec<ExceptionView>,
}

/// Who works the exception.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignExceptionRequest {
    /// 1 to 128 characters, not blank.
    #[schema(example = "ops-li")]
    pub assignee: String,
}

/// One leg of an adjusting entry.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustingLegRequest {
    /// The ledger account's code.
    #[schema(example = "payments-channel-clearing-CNY")]
    pub account_code: String,
    /// `debit` or `credit`.
    #[schema(example = "debit")]
    pub side: String,
    /// Decimal string in major units.
    #[schema(example = "0.01")]
    pub amount: String,
    #[schema(example = "CNY")]
    pub currency: String,
}

/// The entry that corrects the books: balanced in one currency, as every entry.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustingEntryRequest {
    /// 1 to 256 characters, not blank.
    pub description: String,
    /// Two to 128 legs.
    #[schema(min_items = 2, max_items = 128)]
    pub legs: Vec<AdjustingLegRequest>,
}

/// How the exception is resolved: a note always; with `adjusting_entry`, the entry is
/// posted first (its metadata names the exception) and the exception keeps its id.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveExceptionRequest {
    /// 1 to 1,000 characters, not blank.
    #[schema(example = "the bank confirmed its file double-counted the row")]
    pub note: String,
    pub adjusting_entry: Option<AdjustingEntryRequest>,
}

impl ResolveExceptionRequest {
    pub fn parse(self) -> Result<Resolution, ApiError> {
        let Some(entry) = self.adjusting_entry else {
            return Ok(Resolution::Note(self.note));
        };
        let mut legs = Vec::with_capacity(entry.legs.len());
        for leg in entry.legs {
            let side = Side::parse(&leg.side).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_side",
                    format!("side {:?} is not debit or credit", leg.side),
                )
            })?;
            let currency = parse_currency(&leg.currency)?;
            legs.push(AdjustingLeg {
                account_code: leg.account_code,
                side,
                amount: parse_amount(&leg.amount, currency)?,
            });
        }
        Ok(Resolution::AdjustingEntry {
            note: self.note,
            description: entry.description,
            legs,
        })
    }
}
