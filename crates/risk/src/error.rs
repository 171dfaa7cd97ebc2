//! The one error type of the risk crate, with a stable code for each kind.

/// Why the risk engine refused an input. Each variant has a stable [`RiskError::code`] that
/// the HTTP layer can return unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RiskError {
    /// An event could not be read: unknown kind, malformed or missing field.
    #[error("invalid event: {message}")]
    InvalidEvent { message: String },
    /// A rule set is not valid TOML or breaks a structural rule (duplicate id, bad window).
    #[error("invalid rule set at line {line}: {message}")]
    InvalidRuleSet { line: usize, message: String },
    /// One rule's condition does not compile. The live rule set keeps running.
    #[error("rule {rule_id:?} at line {line} does not compile: {message}")]
    RuleDoesNotCompile {
        rule_id: String,
        line: usize,
        message: String,
    },
    /// A rule set version that the registry does not hold.
    #[error("unknown rule set version {0}")]
    UnknownVersion(u32),
    /// A list entry could not be accepted.
    #[error("invalid list entry: {message}")]
    InvalidListEntry { message: String },
    /// A label file line could not be read (back-testing).
    #[error("invalid label: {message}")]
    InvalidLabel { message: String },
}

impl RiskError {
    /// A stable machine-readable code, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            RiskError::InvalidEvent { .. } => "risk_invalid_event",
            RiskError::InvalidRuleSet { .. } => "risk_invalid_rule_set",
            RiskError::RuleDoesNotCompile { .. } => "risk_rule_does_not_compile",
            RiskError::UnknownVersion(_) => "risk_unknown_rule_set_version",
            RiskError::InvalidListEntry { .. } => "risk_invalid_list_entry",
            RiskError::InvalidLabel { .. } => "risk_invalid_label",
        }
    }

    pub(crate) fn event(message: impl Into<String>) -> Self {
        RiskError::InvalidEvent {
            message: message.into(),
        }
    }
}
