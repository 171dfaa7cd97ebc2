//! Wire types of the consortium log's routes: signed member requests, what they did,
//! query answers, members and their query counts, and inclusion and consistency proofs.
//!
//! Response fields are declared in alphabetical order: the API has always answered with
//! sorted keys (its bodies were once built as `serde_json::Value` maps, which sort them),
//! and a struct serialises its fields in declaration order.

use serde::{Deserialize, Serialize};
use tally_consortium::{Effect, Member, MemberStatus, RiskRecord};
use utoipa::ToSchema;

/// A signed member request as a client sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedMemberRequest {
    /// Base64 of the request's canonical bytes (member name, sequence number, time, action
    /// and the member's Ed25519 signature).
    pub request: String,
    /// For publications and queries only: the identifier and the salt that open the
    /// signed commitment.
    #[serde(default)]
    pub identifier: Option<IdentifierBody>,
}

/// The opening of an identifier commitment. Personal data: checked, blinded and dropped,
/// never stored or logged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierBody {
    /// `phone`, `national_id`, `card`, `device`, `account` or `address`.
    #[schema(example = "phone")]
    pub kind: String,
    /// The identifier, normalised or not (it is normalised again).
    pub value: String,
    /// The member's 16-byte salt, hex.
    pub salt: String,
}

impl std::fmt::Debug for IdentifierBody {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "IdentifierBody({}, ***)", self.kind)
    }
}

/// A request logged, and what it did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedBody {
    pub effect: EffectBody,
    /// Log index of the entry.
    pub index: u64,
}

/// What a logged request did; `kind` says which of the other fields it has (the others
/// are absent, never null).
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectBody {
    /// With `proposal_opened` and `approved`: whether the proposal was carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool, required = false)]
    pub carried_out: Option<bool>,
    pub kind: EffectKind,
    /// With `proposal_opened` and `approved`: the proposal's log index.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64, required = false)]
    pub proposal: Option<u64>,
    /// With `published` and `retracted`: the record's log index.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64, required = false)]
    pub record: Option<u64>,
    /// With `queried`: how many live records the query returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u32, required = false)]
    pub result_count: Option<u32>,
}

/// Which effect a logged request had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// The consortium was founded.
    Founded,
    /// A proposal was opened (and carried out at once when the quorum is one).
    ProposalOpened,
    /// A proposal was approved.
    Approved,
    /// A record was published.
    Published,
    /// A record was retracted.
    Retracted,
    /// A query was logged.
    Queried,
}

impl EffectBody {
    pub fn new(effect: &Effect) -> Self {
        let of_kind = |kind| EffectBody {
            carried_out: None,
            kind,
            proposal: None,
            record: None,
            result_count: None,
        };
        match *effect {
            Effect::Founded => of_kind(EffectKind::Founded),
            Effect::ProposalOpened {
                proposal,
                carried_out,
            } => EffectBody {
                carried_out: Some(carried_out),
                proposal: Some(proposal),
                ..of_kind(EffectKind::ProposalOpened)
            },
            Effect::Approved {
                proposal,
                carried_out,
            } => EffectBody {
                carried_out: Some(carried_out),
                proposal: Some(proposal),
                ..of_kind(EffectKind::Approved)
            },
            Effect::Published { record } => EffectBody {
                record: Some(record),
                ..of_kind(EffectKind::Published)
            },
            Effect::Retracted { record } => EffectBody {
                record: Some(record),
                ..of_kind(EffectKind::Retracted)
            },
            Effect::Queried { result_count } => EffectBody {
                result_count: Some(result_count),
                ..of_kind(EffectKind::Queried)
            },
        }
    }
}

/// A query logged and answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryAnswerBody {
    /// Log index of the query's entry.
    pub index: u64,
    /// The live records about the identifier, oldest first.
    pub records: Vec<RecordBody>,
}

/// A live risk record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordBody {
    /// The publisher's evidence reference.
    pub evidence_reference: String,
    /// When it stops being live (Unix seconds).
    pub expires_at: u64,
    /// When it was logged (Unix seconds).
    pub published_at: u64,
    /// The publishing member.
    pub publisher: String,
    /// Log index of its publication entry (its id).
    pub record: u64,
    /// fraud, stolen_account, money_mule, identity_theft, synthetic_identity or other.
    pub risk_type: String,
    /// 1 to 5.
    pub severity: u8,
}

impl RecordBody {
    pub fn new(record: &RiskRecord) -> Self {
        Self {
            evidence_reference: record.evidence_reference.clone(),
            expires_at: record.expires_at,
            published_at: record.published_at,
            publisher: record.publisher.clone(),
            record: record.index,
            risk_type: record.risk_type.name().to_string(),
            severity: record.severity,
        }
    }
}

/// The consortium's members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberBody>,
}

/// A member as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberBody {
    /// Log index of the entry that admitted it.
    pub admitted_at: u64,
    /// Highest request sequence number accepted from it.
    pub last_sequence: u64,
    pub name: String,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
    /// Queries logged for it since the log began.
    pub queries_total: u64,
    /// Its own daily query quota, when the members voted one; null: the consortium's.
    #[schema(required = true)]
    pub query_quota_per_day: Option<u32>,
    pub status: MemberStatusName,
}

/// Whether a member may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatusName {
    /// Admitted and in good standing.
    Active,
    /// Suspended: can neither publish, query, propose nor approve.
    Suspended,
}

impl MemberBody {
    pub fn new(name: &str, member: &Member, queries_total: u64) -> Self {
        Self {
            admitted_at: member.admitted_at,
            last_sequence: member.last_sequence,
            name: name.to_string(),
            public_key: hex::encode(member.public_key),
            queries_total,
            query_quota_per_day: member.query_quota_per_day,
            status: match member.status {
                MemberStatus::Active => MemberStatusName::Active,
                MemberStatus::Suspended => MemberStatusName::Suspended,
            },
        }
    }
}

/// A member's logged query counts and the proof of its total, read at one tree size.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryCountBody {
    /// The UTC day (Unix seconds / 86400) of `in_day`.
    pub day: u64,
    /// Queries logged on that day.
    pub in_day: u32,
    pub member: String,
    /// The proof of `total` as text (`tally consortium verify count` checks it offline):
    /// the member's map leaf, the leaf's inclusion proof and the signed checkpoint that
    /// commits the map.
    pub proof: String,
    /// Records the member published since the log began (retracted ones included).
    pub publications: u64,
    /// All queries ever logged for the member.
    pub total: u64,
    /// The tree size of the proof's checkpoint.
    pub tree_size: u64,
}

/// The inclusion proof of an entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProofBody {
    /// The proof's hashes, base64, lowest first.
    pub hashes: Vec<String>,
    /// Index of the entry.
    pub index: u64,
    /// The entry's leaf hash, base64.
    pub leaf: String,
    /// Tree size the proof is for.
    pub size: u64,
}

/// The consistency proof between two tree sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProofBody {
    /// The proof's hashes, base64.
    pub hashes: Vec<String>,
    pub new_size: u64,
    pub old_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body as the API sends it: the serialised struct must equal the serialised JSON
    /// value of it, whose object keys are sorted.
    fn assert_sorted_keys<T: Serialize>(body: &T) {
        let text = serde_json::to_string(body).expect("the body serialises");
        let value = serde_json::to_value(body).expect("the body serialises");
        assert_eq!(text, value.to_string());
    }

    #[test]
    fn every_answer_serialises_with_sorted_keys() {
        let effects = [
            Effect::Founded,
            Effect::ProposalOpened {
                proposal: 3,
                carried_out: true,
            },
            Effect::Approved {
                proposal: 3,
                carried_out: false,
            },
            Effect::Published { record: 4 },
            Effect::Retracted { record: 4 },
            Effect::Queried { result_count: 2 },
        ];
        for effect in &effects {
            assert_sorted_keys(&LoggedBody {
                effect: EffectBody::new(effect),
                index: 5,
            });
        }
        assert_sorted_keys(&QueryAnswerBody {
            index: 6,
            records: vec![RecordBody {
                evidence_reference: "case 17".into(),
                expires_at: 2_000_000_000,
                published_at: 1_700_000_000,
                publisher: "bank-a".into(),
                record: 4,
                risk_type: "fraud".into(),
                severity: 3,
            }],
        });
        assert_sorted_keys(&MemberList {
            members: vec![MemberBody::new(
                "bank-a",
                &Member {
                    public_key: [7; 32],
                    status: MemberStatus::Suspended,
                    admitted_at: 0,
                    last_sequence: 9,
                    query_quota_per_day: Some(100),
                },
                12,
            )],
        });
        assert_sorted_keys(&QueryCountBody {
            day: 19_700,
            in_day: 2,
            member: "bank-a".into(),
            proof: "proof text".into(),
            publications: 1,
            total: 12,
            tree_size: 8,
        });
        assert_sorted_keys(&InclusionProofBody {
            hashes: vec!["aGFzaA==".into()],
            index: 1,
            leaf: "bGVhZg==".into(),
            size: 8,
        });
        assert_sorted_keys(&ConsistencyProofBody {
            hashes: vec!["aGFzaA==".into()],
            new_size: 8,
            old_size: 4,
        });
    }

    /// Each effect carries exactly the fields its kind names, as the answers always did.
    #[test]
    fn an_effect_carries_only_the_fields_of_its_kind() {
        let text = |effect: Effect| {
            serde_json::to_string(&EffectBody::new(&effect)).expect("the body serialises")
        };
        assert_eq!(text(Effect::Founded), r#"{"kind":"founded"}"#);
        assert_eq!(
            text(Effect::Approved {
                proposal: 3,
                carried_out: true
            }),
            r#"{"carried_out":true,"kind":"approved","proposal":3}"#
        );
        assert_eq!(
            text(Effect::Retracted { record: 4 }),
            r#"{"kind":"retracted","record":4}"#
        );
        assert_eq!(
            text(Effect::Queried { result_count: 0 }),
            r#"{"kind":"queried","result_count":0}"#
        );
    }
}

/// The log's status: its signed size and the latest check of its stored entries and
/// tiles against the signed tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogStatusBody {
    pub integrity: IntegrityBody,
    /// The tree size of the latest signed checkpoint.
    pub tree_size: u64,
}

/// The latest check of the stored log (`[consortium_log] integrity_check_interval_seconds`).
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrityBody {
    /// Checks that alarmed (`tampered` or `check_failed`) since the log started.
    pub alarms: u64,
    /// When the latest check finished (RFC 3339), absent before the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub checked_at: Option<String>,
    /// Checks finished since the log started.
    pub checks: u64,
    /// What is wrong, or why the check failed; absent when nothing is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub detail: Option<String>,
    /// Entries the latest check read and hashed.
    pub entries: u64,
    /// The first entry that no longer hashes to the tree, when the finding is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64, required = false)]
    pub first_bad_entry: Option<u64>,
    /// Seconds between scheduled checks (0: none scheduled).
    pub interval_seconds: u64,
    pub state: IntegrityStateName,
    /// Tiles the latest check read and checked.
    pub tiles: u64,
    /// The tree size the latest check read.
    pub tree_size: u64,
}

/// What the latest check found: `intact`, `tampered` (an entry or tile no longer hashes
/// to the signed tree: an alarm), `check_failed` (the store could not be read: an
/// alarm) or `not_checked` (no check yet).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityStateName {
    NotChecked,
    Intact,
    Tampered,
    CheckFailed,
}

impl IntegrityBody {
    pub fn new(status: &tally_service::consortium::IntegrityStatus) -> Self {
        use tally_service::consortium::IntegrityState;
        IntegrityBody {
            alarms: status.alarms,
            checked_at: status.checked_at.map(|time| time.to_string()),
            checks: status.checks,
            detail: status.detail.clone(),
            entries: status.entries,
            first_bad_entry: status.first_bad_entry,
            interval_seconds: status.interval_seconds,
            state: match status.state {
                IntegrityState::NotChecked => IntegrityStateName::NotChecked,
                IntegrityState::Intact => IntegrityStateName::Intact,
                IntegrityState::Tampered => IntegrityStateName::Tampered,
                IntegrityState::CheckFailed => IntegrityStateName::CheckFailed,
            },
            tiles: status.tiles,
            tree_size: status.tree_size,
        }
    }
}
