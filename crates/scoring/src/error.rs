//! The one error type of the scoring crate, with a stable code for each kind.

/// Why a scoring operation was refused. Every variant but `Internal` is an expected error
/// caused by the input (data, configuration, model or policy file); `Internal` is a bug.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoringError {
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("column {0:?} not found in the data")]
    ColumnNotFound(String),
    #[error("invalid data: {0}")]
    InvalidData(String),
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    #[error("invalid applicant: {0}")]
    InvalidApplicant(String),
    /// A column that may not be a feature of a credit scorecard (see [`crate::fairness`]).
    #[error("column {column:?} is a protected attribute ({attribute}): a credit scorecard may not use it")]
    ProtectedAttribute {
        column: String,
        attribute: &'static str,
    },
    #[error("logistic regression did not converge within {iterations} iterations")]
    NotConverged { iterations: usize },
    #[error("internal error (a bug): {0}")]
    Internal(&'static str),
}

impl ScoringError {
    /// A stable code for the kind of error, never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            ScoringError::Csv(_) => "scoring_csv",
            ScoringError::ColumnNotFound(_) => "scoring_column_not_found",
            ScoringError::InvalidData(_) => "scoring_invalid_data",
            ScoringError::InvalidConfiguration(_) => "scoring_invalid_configuration",
            ScoringError::InvalidModel(_) => "scoring_invalid_model",
            ScoringError::InvalidPolicy(_) => "scoring_invalid_policy",
            ScoringError::InvalidApplicant(_) => "scoring_invalid_applicant",
            ScoringError::ProtectedAttribute { .. } => "scoring_protected_attribute",
            ScoringError::NotConverged { .. } => "scoring_not_converged",
            ScoringError::Internal(_) => "scoring_internal",
        }
    }
}
