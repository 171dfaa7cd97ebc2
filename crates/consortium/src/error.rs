//! The one error type of the consortium crate, with stable string codes.

/// Everything that can go wrong in the consortium log, its proofs, notes and rules.
///
/// Each variant has a stable code (see [`Error::code`]) that is never renamed: the
/// HTTP service and the command line report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hash was not 32 bytes, or not valid base64 or hex.
    #[error("invalid hash: {0}")]
    InvalidHash(String),
    /// An index or tree size is out of range for the operation.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A proof has the wrong shape (length, sizes) for the claimed tree sizes.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// A proof was well formed but leads to another root hash than the expected one.
    #[error("root hash mismatch: the proof does not lead to the expected root")]
    RootMismatch,
    /// The storage beneath the log failed or returned inconsistent data.
    #[error("storage: {0}")]
    Storage(String),
    /// A signed note could not be parsed.
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// A signer or verifier key string could not be parsed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// A signature from a known key did not verify.
    #[error("invalid signature for key {0}")]
    InvalidSignature(String),
    /// A note carried no signature from any key the verifier trusts.
    #[error("no signature from a trusted key")]
    NoTrustedSignature,
    /// A checkpoint body could not be parsed.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// A log entry or member request did not decode as canonical bytes.
    #[error("malformed entry: {0}")]
    MalformedEntry(String),
    /// An identifier could not be normalised.
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(String),
    /// A path is not a C2SP tlog-tiles tile or entry bundle path in its one spelling.
    #[error("invalid tile path: {0}")]
    InvalidTilePath(String),
    /// The consortium rules refuse the request.
    #[error("refused ({}): {detail}", reason.code())]
    Refused {
        /// Why the rules refuse it.
        reason: Refusal,
        /// Human readable detail.
        detail: String,
    },
    /// A broken invariant: a bug in Tally, never the caller's fault.
    #[error("internal: {0}")]
    Internal(String),
}

/// Why the consortium rules refuse a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The requester is not an admitted member.
    NotAMember,
    /// The requester is suspended.
    Suspended,
    /// The request's signature does not verify under the member's key.
    BadSignature,
    /// The request's sequence number is not above the last one accepted (a replay).
    Replay,
    /// The request belongs to another consortium.
    WrongConsortium,
    /// The referenced proposal or record does not exist or is closed.
    UnknownReference,
    /// The member already approved this proposal.
    AlreadyApproved,
    /// The candidate is already a member, or the name or key is taken.
    AlreadyMember,
    /// Only the publisher of a record may retract it.
    NotThePublisher,
    /// The member has used its query quota for the day.
    QuotaExceeded,
    /// The log has no genesis entry yet, or a second one was submitted.
    Genesis,
    /// A field is out of its allowed range (severity, expiry, lengths).
    InvalidField,
    /// The identifier and salt sent with a request do not open its signed commitment.
    CommitmentMismatch,
}

impl Refusal {
    /// Stable code of this refusal.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotAMember => "not_a_member",
            Refusal::Suspended => "member_suspended",
            Refusal::BadSignature => "bad_signature",
            Refusal::Replay => "replayed_request",
            Refusal::WrongConsortium => "wrong_consortium",
            Refusal::UnknownReference => "unknown_reference",
            Refusal::AlreadyApproved => "already_approved",
            Refusal::AlreadyMember => "already_member",
            Refusal::NotThePublisher => "not_the_publisher",
            Refusal::QuotaExceeded => "quota_exceeded",
            Refusal::Genesis => "genesis",
            Refusal::InvalidField => "invalid_field",
            Refusal::CommitmentMismatch => "commitment_mismatch",
        }
    }
}

impl Error {
    /// Stable code of this error, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidHash(_) => "invalid_hash",
            Error::OutOfRange(_) => "out_of_range",
            Error::InvalidProof(_) => "invalid_proof",
            Error::RootMismatch => "root_mismatch",
            Error::Storage(_) => "storage",
            Error::MalformedNote(_) => "malformed_note",
            Error::MalformedKey(_) => "malformed_key",
            Error::InvalidSignature(_) => "invalid_signature",
            Error::NoTrustedSignature => "no_trusted_signature",
            Error::MalformedCheckpoint(_) => "malformed_checkpoint",
            Error::MalformedEntry(_) => "malformed_entry",
            Error::InvalidIdentifier(_) => "invalid_identifier",
            Error::InvalidTilePath(_) => "invalid_tile",
            Error::Refused { reason, .. } => reason.code(),
            Error::Internal(_) => "internal",
        }
    }

    /// A refusal by the consortium rules.
    pub fn refused(reason: Refusal, detail: impl Into<String>) -> Self {
        Error::Refused {
            reason,
            detail: detail.into(),
        }
    }

    /// The refusal reason, when the rules refused the request.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Error::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}
