//! Log entries and signed member requests, as typed values with one canonical byte encoding.
//!
//! The log's leaf for an entry is `leaf_hash(entry.encode())`. Member requests are signed
//! with Ed25519 over [`request_message`]: a domain-separation line, the consortium name
//! and the request without its signature, so a signature is valid for one consortium, one
//! member, one sequence number and one action only.

use crate::encoding::{Reader, Writer, LIST_LENGTH_MAX};
use crate::identifier::{BlindedIdentifier, IdentifierCommitment, IdentifierKind};
use crate::note::SignerKey;
use crate::Error;

/// Version byte at the start of every encoded entry.
pub const ENTRY_VERSION: u8 = 1;
/// Domain separation of member request signatures.
pub const REQUEST_DOMAIN: &[u8] = b"tally-consortium/request/v1\n";
/// Longest member or consortium name, in bytes.
pub const NAME_SIZE_MAX: usize = 128;
/// Longest free text (reason, evidence reference), in bytes.
pub const TEXT_SIZE_MAX: usize = 512;

/// Seconds since the Unix epoch, given by the caller's clock.
pub type UnixSeconds = u64;

/// What a risk record says about an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskType {
    /// Confirmed fraud.
    Fraud,
    /// The account was taken over (stolen account).
    StolenAccount,
    /// Used to move proceeds of crime.
    MoneyMule,
    /// An identity used without its owner's consent.
    IdentityTheft,
    /// An identity assembled from real and invented data.
    SyntheticIdentity,
    /// Anything else; the evidence reference explains.
    Other,
}

impl RiskType {
    /// Stable byte in the encoding.
    pub fn byte(self) -> u8 {
        match self {
            RiskType::Fraud => 1,
            RiskType::StolenAccount => 2,
            RiskType::MoneyMule => 3,
            RiskType::IdentityTheft => 4,
            RiskType::SyntheticIdentity => 5,
            RiskType::Other => 255,
        }
    }

    /// The type of a stable byte.
    pub fn from_byte(byte: u8) -> Result<Self, Error> {
        Ok(match byte {
            1 => RiskType::Fraud,
            2 => RiskType::StolenAccount,
            3 => RiskType::MoneyMule,
            4 => RiskType::IdentityTheft,
            5 => RiskType::SyntheticIdentity,
            255 => RiskType::Other,
            other => return Err(Error::MalformedEntry(format!("unknown risk type {other}"))),
        })
    }

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            RiskType::Fraud => "fraud",
            RiskType::StolenAccount => "stolen_account",
            RiskType::MoneyMule => "money_mule",
            RiskType::IdentityTheft => "identity_theft",
            RiskType::SyntheticIdentity => "synthetic_identity",
            RiskType::Other => "other",
        }
    }
}

/// A member's name and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberKey {
    /// The institution's name in the consortium (a key name: no spaces, no `+`).
    pub name: String,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
}

/// The share of active members whose approval a proposal needs: at least
/// `ceil(numerator / denominator * active members)`, and at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Numerator of the share.
    pub numerator: u32,
    /// Denominator of the share (not zero, not below the numerator).
    pub denominator: u32,
}

impl Quorum {
    /// Approvals needed among `voters` eligible members.
    pub fn required(self, voters: u64) -> u64 {
        let numerator = u64::from(self.numerator);
        let denominator = u64::from(self.denominator.max(1));
        (voters * numerator).div_ceil(denominator).max(1)
    }
}

/// The first entry of a consortium log: its name, founders and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Name of the consortium; member requests sign it.
    pub consortium: String,
    /// Founding members, admitted without a vote.
    pub founders: Vec<MemberKey>,
    /// Quorum for admissions and suspensions.
    pub quorum: Quorum,
    /// Queries a member may make per UTC day.
    pub query_quota_per_day: u32,
    /// How long a proposal stays open, in seconds.
    pub proposal_lifetime_seconds: u64,
    /// Largest allowed gap between a request's time and the time it is logged.
    pub request_skew_seconds_max: u64,
}

/// What a member asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Propose admitting a new member.
    ProposeAdmission {
        /// The candidate's name and key.
        candidate: MemberKey,
    },
    /// Propose suspending a member.
    ProposeSuspension {
        /// The member to suspend.
        member: String,
        /// Why.
        reason: String,
    },
    /// Approve an open proposal, named by the log index of its entry.
    Approve {
        /// Log index of the proposal.
        proposal: u64,
    },
    /// Publish a risk record. The log entry adds the blinded identifier.
    PublishRecord {
        /// The member's commitment to the identifier the record is about.
        identifier: IdentifierCommitment,
        /// What kind of risk.
        risk_type: RiskType,
        /// Severity from 1 (low) to 5 (high).
        severity: u8,
        /// When the record stops being live.
        expires_at: UnixSeconds,
        /// The publisher's own reference to its evidence (case number), not evidence itself.
        evidence_reference: String,
    },
    /// Retract one of the member's own records, named by the log index of its entry.
    RetractRecord {
        /// Log index of the publication.
        record: u64,
        /// Why.
        reason: String,
    },
    /// Propose a daily query quota for one member (replacing the consortium default).
    ProposeQuota {
        /// The member.
        member: String,
        /// Queries it may make per UTC day.
        queries_per_day: u32,
    },
    /// Ask for live records about an identifier. The log entry adds the blinded identifier.
    Query {
        /// The member's commitment to the identifier.
        identifier: IdentifierCommitment,
    },
}

impl Action {
    fn tag(&self) -> u8 {
        match self {
            Action::ProposeAdmission { .. } => 1,
            Action::ProposeSuspension { .. } => 2,
            Action::Approve { .. } => 3,
            Action::PublishRecord { .. } => 4,
            Action::RetractRecord { .. } => 5,
            Action::Query { .. } => 6,
            Action::ProposeQuota { .. } => 7,
        }
    }

    fn encode(&self, writer: &mut Writer) {
        writer.u8(self.tag());
        match self {
            Action::ProposeAdmission { candidate } => {
                writer.string(&candidate.name).fixed(&candidate.public_key);
            }
            Action::ProposeSuspension { member, reason } => {
                writer.string(member).string(reason);
            }
            Action::Approve { proposal } => {
                writer.u64(*proposal);
            }
            Action::PublishRecord {
                identifier,
                risk_type,
                severity,
                expires_at,
                evidence_reference,
            } => {
                encode_commitment(writer, identifier);
                writer
                    .u8(risk_type.byte())
                    .u8(*severity)
                    .u64(*expires_at)
                    .string(evidence_reference);
            }
            Action::RetractRecord { record, reason } => {
                writer.u64(*record).string(reason);
            }
            Action::Query { identifier } => encode_commitment(writer, identifier),
            Action::ProposeQuota {
                member,
                queries_per_day,
            } => {
                writer.string(member).u32(*queries_per_day);
            }
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(match reader.u8()? {
            1 => Action::ProposeAdmission {
                candidate: MemberKey {
                    name: reader.string()?,
                    public_key: reader.fixed()?,
                },
            },
            2 => Action::ProposeSuspension {
                member: reader.string()?,
                reason: reader.string()?,
            },
            3 => Action::Approve {
                proposal: reader.u64()?,
            },
            4 => Action::PublishRecord {
                identifier: decode_commitment(reader)?,
                risk_type: RiskType::from_byte(reader.u8()?)?,
                severity: reader.u8()?,
                expires_at: reader.u64()?,
                evidence_reference: reader.string()?,
            },
            5 => Action::RetractRecord {
                record: reader.u64()?,
                reason: reader.string()?,
            },
            6 => Action::Query {
                identifier: decode_commitment(reader)?,
            },
            7 => Action::ProposeQuota {
                member: reader.string()?,
                queries_per_day: reader.u32()?,
            },
            other => return Err(Error::MalformedEntry(format!("unknown action {other}"))),
        })
    }
}

fn encode_commitment(writer: &mut Writer, commitment: &IdentifierCommitment) {
    writer.u8(commitment.kind.byte()).fixed(&commitment.digest);
}

fn decode_commitment(reader: &mut Reader<'_>) -> Result<IdentifierCommitment, Error> {
    Ok(IdentifierCommitment {
        kind: IdentifierKind::from_byte(reader.u8()?)?,
        digest: reader.fixed()?,
    })
}

fn encode_identifier(writer: &mut Writer, identifier: &BlindedIdentifier) {
    writer
        .u8(identifier.kind.byte())
        .u32(identifier.key_epoch)
        .fixed(&identifier.value);
}

fn decode_identifier(reader: &mut Reader<'_>) -> Result<BlindedIdentifier, Error> {
    Ok(BlindedIdentifier {
        kind: IdentifierKind::from_byte(reader.u8()?)?,
        key_epoch: reader.u32()?,
        value: reader.fixed()?,
    })
}

/// A member request and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The requesting member.
    pub member: String,
    /// Strictly increasing per member: a request whose sequence is not above the last
    /// accepted one is a replay.
    pub sequence: u64,
    /// When the member made the request, by its clock.
    pub time: UnixSeconds,
    /// What it asks for.
    pub action: Action,
    /// Ed25519 signature over [`request_message`].
    pub signature: [u8; 64],
}

/// The bytes a member signs for a request.
pub fn request_message(
    consortium: &str,
    member: &str,
    sequence: u64,
    time: UnixSeconds,
    action: &Action,
) -> Vec<u8> {
    let mut writer = Writer::new();
    writer
        .fixed(REQUEST_DOMAIN)
        .string(consortium)
        .string(member)
        .u64(sequence)
        .u64(time);
    action.encode(&mut writer);
    writer.finish()
}

impl SignedRequest {
    /// Builds and signs a request with the member's key (whose name is the member name).
    pub fn sign(
        consortium: &str,
        key: &SignerKey,
        sequence: u64,
        time: UnixSeconds,
        action: Action,
    ) -> Self {
        let message = request_message(consortium, key.name(), sequence, time, &action);
        SignedRequest {
            member: key.name().to_owned(),
            sequence,
            time,
            action,
            signature: key.sign_bytes(&message),
        }
    }

    /// Checks the signature under `public_key` for `consortium`.
    pub fn verify(&self, consortium: &str, public_key: &[u8; 32]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
            return false;
        };
        let message = request_message(
            consortium,
            &self.member,
            self.sequence,
            self.time,
            &self.action,
        );
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&message, &signature).is_ok()
    }

    fn encode(&self, writer: &mut Writer) {
        writer
            .string(&self.member)
            .u64(self.sequence)
            .u64(self.time);
        self.action.encode(writer);
        writer.fixed(&self.signature);
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(SignedRequest {
            member: reader.string()?,
            sequence: reader.u64()?,
            time: reader.u64()?,
            action: Action::decode(reader)?,
            signature: reader.fixed()?,
        })
    }

    /// The request as canonical bytes (what a client sends).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(ENTRY_VERSION);
        self.encode(&mut writer);
        writer.finish()
    }

    /// A request from canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(bytes);
        if reader.u8()? != ENTRY_VERSION {
            return Err(Error::MalformedEntry("unknown request version".into()));
        }
        let request = SignedRequest::decode(&mut reader)?;
        reader.finish()?;
        Ok(request)
    }
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    /// The consortium's founding entry (always index 0).
    Genesis(Genesis),
    /// An accepted member request without an identifier: a proposal, an approval or a
    /// retraction.
    Request(SignedRequest),
    /// A risk record publication and the blinded identifier the operator derived from
    /// the opening of the member's commitment.
    Publication {
        /// The member's signed publication.
        request: SignedRequest,
        /// The blinded identifier.
        identifier: BlindedIdentifier,
    },
    /// A member's query, its blinded identifier and how many live records it returned.
    QueryRecord {
        /// The member's signed query.
        request: SignedRequest,
        /// The blinded identifier.
        identifier: BlindedIdentifier,
        /// Number of live records the answer listed.
        result_count: u32,
    },
}

impl EntryBody {
    /// The signed member request inside, if any.
    pub fn request(&self) -> Option<&SignedRequest> {
        match self {
            EntryBody::Genesis(_) => None,
            EntryBody::Request(request)
            | EntryBody::Publication { request, .. }
            | EntryBody::QueryRecord { request, .. } => Some(request),
        }
    }
}

/// The kinds of entries, for display and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// Founding entry.
    Genesis,
    /// Member admission proposal.
    AdmissionProposal,
    /// Suspension proposal.
    SuspensionProposal,
    /// Per-member quota proposal.
    QuotaProposal,
    /// Approval of a proposal.
    Approval,
    /// Risk record publication.
    RecordPublication,
    /// Risk record retraction.
    RecordRetraction,
    /// Query record.
    QueryRecord,
    /// A request whose action does not belong in a plain request entry (refused on replay).
    Invalid,
}

/// One entry of the consortium log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the operator logged it, by the operator's clock.
    pub time: UnixSeconds,
    /// What it records.
    pub body: EntryBody,
}

impl Entry {
    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        match &self.body {
            EntryBody::Genesis(_) => EntryKind::Genesis,
            EntryBody::QueryRecord { .. } => EntryKind::QueryRecord,
            EntryBody::Publication { .. } => EntryKind::RecordPublication,
            EntryBody::Request(request) => match request.action {
                Action::ProposeAdmission { .. } => EntryKind::AdmissionProposal,
                Action::ProposeSuspension { .. } => EntryKind::SuspensionProposal,
                Action::ProposeQuota { .. } => EntryKind::QuotaProposal,
                Action::Approve { .. } => EntryKind::Approval,
                Action::RetractRecord { .. } => EntryKind::RecordRetraction,
                Action::PublishRecord { .. } | Action::Query { .. } => EntryKind::Invalid,
            },
        }
    }

    /// The canonical bytes of the entry: the log leaf.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(ENTRY_VERSION).u64(self.time);
        match &self.body {
            EntryBody::Genesis(genesis) => {
                writer.u8(0).string(&genesis.consortium);
                writer.u32(genesis.founders.len() as u32);
                for founder in &genesis.founders {
                    writer.string(&founder.name).fixed(&founder.public_key);
                }
                writer
                    .u32(genesis.quorum.numerator)
                    .u32(genesis.quorum.denominator)
                    .u32(genesis.query_quota_per_day)
                    .u64(genesis.proposal_lifetime_seconds)
                    .u64(genesis.request_skew_seconds_max);
            }
            EntryBody::Request(request) => {
                writer.u8(1);
                request.encode(&mut writer);
            }
            EntryBody::QueryRecord {
                request,
                identifier,
                result_count,
            } => {
                writer.u8(2);
                request.encode(&mut writer);
                encode_identifier(&mut writer, identifier);
                writer.u32(*result_count);
            }
            EntryBody::Publication {
                request,
                identifier,
            } => {
                writer.u8(3);
                request.encode(&mut writer);
                encode_identifier(&mut writer, identifier);
            }
        }
        writer.finish()
    }

    /// An entry from canonical bytes; any other bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(bytes);
        if reader.u8()? != ENTRY_VERSION {
            return Err(Error::MalformedEntry("unknown entry version".into()));
        }
        let time = reader.u64()?;
        let body = match reader.u8()? {
            0 => {
                let consortium = reader.string()?;
                let count = reader.u32()? as usize;
                if count > LIST_LENGTH_MAX {
                    return Err(Error::MalformedEntry("too many founders".into()));
                }
                let mut founders = Vec::with_capacity(count);
                for _ in 0..count {
                    founders.push(MemberKey {
                        name: reader.string()?,
                        public_key: reader.fixed()?,
                    });
                }
                EntryBody::Genesis(Genesis {
                    consortium,
                    founders,
                    quorum: Quorum {
                        numerator: reader.u32()?,
                        denominator: reader.u32()?,
                    },
                    query_quota_per_day: reader.u32()?,
                    proposal_lifetime_seconds: reader.u64()?,
                    request_skew_seconds_max: reader.u64()?,
                })
            }
            1 => EntryBody::Request(SignedRequest::decode(&mut reader)?),
            2 => EntryBody::QueryRecord {
                request: SignedRequest::decode(&mut reader)?,
                identifier: decode_identifier(&mut reader)?,
                result_count: reader.u32()?,
            },
            3 => EntryBody::Publication {
                request: SignedRequest::decode(&mut reader)?,
                identifier: decode_identifier(&mut reader)?,
            },
            other => return Err(Error::MalformedEntry(format!("unknown entry body {other}"))),
        };
        reader.finish()?;
        Ok(Entry { time, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::KeyType;

    fn identifier() -> BlindedIdentifier {
        BlindedIdentifier {
            kind: IdentifierKind::Phone,
            key_epoch: 1,
            value: [3; 32],
        }
    }

    fn commitment() -> IdentifierCommitment {
        IdentifierCommitment {
            kind: IdentifierKind::Phone,
            digest: [4; 32],
        }
    }

    fn samples() -> Result<Vec<Entry>, Error> {
        let key = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32])?;
        let actions = vec![
            Action::ProposeAdmission {
                candidate: MemberKey {
                    name: "bank-c".into(),
                    public_key: [9; 32],
                },
            },
            Action::ProposeSuspension {
                member: "bank-b".into(),
                reason: "abuse".into(),
            },
            Action::Approve { proposal: 7 },
            Action::PublishRecord {
                identifier: commitment(),
                risk_type: RiskType::MoneyMule,
                severity: 4,
                expires_at: 2_000_000_000,
                evidence_reference: "case 17".into(),
            },
            Action::RetractRecord {
                record: 3,
                reason: "error".into(),
            },
            Action::ProposeQuota {
                member: "bank-b".into(),
                queries_per_day: 5_000,
            },
        ];
        let mut entries = vec![Entry {
            time: 5,
            body: EntryBody::Genesis(Genesis {
                consortium: "alliance".into(),
                founders: vec![MemberKey {
                    name: "bank-a".into(),
                    public_key: key.verifier().public_key(),
                }],
                quorum: Quorum {
                    numerator: 2,
                    denominator: 3,
                },
                query_quota_per_day: 100,
                proposal_lifetime_seconds: 86_400,
                request_skew_seconds_max: 300,
            }),
        }];
        for (sequence, action) in actions.into_iter().enumerate() {
            entries.push(Entry {
                time: 10,
                body: EntryBody::Request(SignedRequest::sign(
                    "alliance",
                    &key,
                    sequence as u64 + 1,
                    9,
                    action,
                )),
            });
        }
        entries.push(Entry {
            time: 11,
            body: EntryBody::QueryRecord {
                request: SignedRequest::sign(
                    "alliance",
                    &key,
                    99,
                    11,
                    Action::Query {
                        identifier: commitment(),
                    },
                ),
                identifier: identifier(),
                result_count: 2,
            },
        });
        let publication = SignedRequest::sign(
            "alliance",
            &key,
            100,
            11,
            Action::PublishRecord {
                identifier: commitment(),
                risk_type: RiskType::Fraud,
                severity: 1,
                expires_at: 20,
                evidence_reference: String::new(),
            },
        );
        entries.push(Entry {
            time: 11,
            body: EntryBody::Publication {
                request: publication,
                identifier: identifier(),
            },
        });
        Ok(entries)
    }

    #[test]
    fn entries_round_trip_and_refuse_any_other_bytes() -> Result<(), Error> {
        for entry in samples()? {
            let bytes = entry.encode();
            assert_eq!(Entry::decode(&bytes)?, entry);
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(Entry::decode(&trailing).is_err());
            for length in 0..bytes.len() {
                assert!(Entry::decode(&bytes[..length]).is_err());
            }
        }
        Ok(())
    }

    #[test]
    fn request_signatures_bind_consortium_member_sequence_and_action() -> Result<(), Error> {
        let key = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32])?;
        let public = key.verifier().public_key();
        let request = SignedRequest::sign("alliance", &key, 1, 9, Action::Approve { proposal: 7 });
        assert!(request.verify("alliance", &public));
        assert!(!request.verify("other alliance", &public));
        let mut changed = request.clone();
        changed.sequence = 2;
        assert!(!changed.verify("alliance", &public));
        let mut changed = request.clone();
        changed.action = Action::Approve { proposal: 8 };
        assert!(!changed.verify("alliance", &public));
        assert_eq!(SignedRequest::from_bytes(&request.to_bytes())?, request);
        Ok(())
    }
}
