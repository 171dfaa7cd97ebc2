//! Requests of the dispute routes (`routes/disputes.rs`).

use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /v1/disputes/{id}/evidence`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeEvidenceRequest {
    /// What answers the cardholder's claim: a text, or a reference to documents kept
    /// elsewhere (a delivery's tracking number, a signed receipt's id); 1 to 4,000
    /// characters, not blank. Sent again before the deadline, it replaces the earlier.
    #[schema(min_length = 1, max_length = 4000)]
    pub evidence: String,
}

/// `GET /v1/disputes`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisputesQuery {
    /// One merchant's disputes (the merchant must exist).
    pub merchant_id: Option<String>,
    /// `opened`, `evidence_submitted`, `accepted`, `won` or `lost`.
    pub status: Option<String>,
    /// The page after this dispute id.
    pub after: Option<String>,
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
}
