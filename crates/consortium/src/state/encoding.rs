//! The state's canonical bytes, for snapshots ([`ConsortiumState::encode`]) and back
//! ([`ConsortiumState::decode`]).

use super::*;
use crate::encoding::{Reader, Writer};

/// Version byte of [`ConsortiumState::encode`].
const STATE_ENCODING_VERSION: u8 = 1;

fn length(reader: &mut Reader<'_>) -> Result<u64, Error> {
    reader.u64()
}

impl ConsortiumState {
    /// The whole state as canonical bytes (for snapshots): genesis, members, proposals,
    /// records, counts, next index. The index of records by identifier is rebuilt on
    /// decoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(STATE_ENCODING_VERSION).u64(self.next_index);
        match &self.genesis {
            None => {
                writer.u8(0);
            }
            Some(genesis) => {
                writer.u8(1).string(&genesis.consortium);
                writer.u64(genesis.founders.len() as u64);
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
        }
        writer.u64(self.members.len() as u64);
        for (name, member) in &self.members {
            writer
                .string(name)
                .fixed(&member.public_key)
                .u8(match member.status {
                    MemberStatus::Active => 0,
                    MemberStatus::Suspended => 1,
                })
                .u64(member.admitted_at)
                .u64(member.last_sequence);
            match member.query_quota_per_day {
                None => writer.u8(0),
                Some(quota) => writer.u8(1).u32(quota),
            };
        }
        writer.u64(self.proposals.len() as u64);
        for (index, proposal) in &self.proposals {
            writer.u64(*index);
            match &proposal.kind {
                ProposalKind::Admission(candidate) => writer
                    .u8(0)
                    .string(&candidate.name)
                    .fixed(&candidate.public_key),
                ProposalKind::Suspension(member) => writer.u8(1).string(member),
                ProposalKind::Quota(member, quota) => writer.u8(2).string(member).u32(*quota),
            };
            writer.u64(proposal.approvals.len() as u64);
            for approver in &proposal.approvals {
                writer.string(approver);
            }
            writer
                .u64(proposal.expires_at)
                .u8(u8::from(proposal.carried_out));
        }
        writer.u64(self.records.len() as u64);
        for record in self.records.values() {
            writer
                .u64(record.index)
                .string(&record.publisher)
                .u8(record.identifier.kind.byte())
                .u32(record.identifier.key_epoch)
                .fixed(&record.identifier.value)
                .u8(record.risk_type.byte())
                .u8(record.severity)
                .u64(record.published_at)
                .u64(record.expires_at)
                .string(&record.evidence_reference);
            match record.retracted_at {
                None => writer.u8(0),
                Some(index) => writer.u8(1).u64(index),
            };
        }
        writer.u64(self.query_counts.len() as u64);
        for (name, count) in &self.query_counts {
            writer
                .string(name)
                .u64(count.total)
                .u64(count.day)
                .u32(count.in_day);
        }
        writer.u64(self.publication_counts.len() as u64);
        for (name, count) in &self.publication_counts {
            writer.string(name).u64(*count);
        }
        writer.finish()
    }

    /// The state from [`ConsortiumState::encode`]'s bytes; any other bytes are refused.
    /// The bytes are trusted as a whole (a snapshot's are signed by the operator), so
    /// the rules are not re-checked.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(bytes);
        if reader.u8()? != STATE_ENCODING_VERSION {
            return Err(Error::MalformedEntry(
                "unknown state encoding version".into(),
            ));
        }
        let mut state = ConsortiumState {
            next_index: reader.u64()?,
            ..ConsortiumState::default()
        };
        if reader.bool()? {
            let consortium = reader.string()?;
            let mut founders = Vec::new();
            for _ in 0..length(&mut reader)? {
                founders.push(MemberKey {
                    name: reader.string()?,
                    public_key: reader.fixed()?,
                });
            }
            state.genesis = Some(Genesis {
                consortium,
                founders,
                quorum: Quorum {
                    numerator: reader.u32()?,
                    denominator: reader.u32()?,
                },
                query_quota_per_day: reader.u32()?,
                proposal_lifetime_seconds: reader.u64()?,
                request_skew_seconds_max: reader.u64()?,
            });
        }
        for _ in 0..length(&mut reader)? {
            let name = reader.string()?;
            let member = Member {
                public_key: reader.fixed()?,
                status: if reader.bool()? {
                    MemberStatus::Suspended
                } else {
                    MemberStatus::Active
                },
                admitted_at: reader.u64()?,
                last_sequence: reader.u64()?,
                query_quota_per_day: if reader.bool()? {
                    Some(reader.u32()?)
                } else {
                    None
                },
            };
            state.members.insert(name, member);
        }
        for _ in 0..length(&mut reader)? {
            let index = reader.u64()?;
            let kind = match reader.u8()? {
                0 => ProposalKind::Admission(MemberKey {
                    name: reader.string()?,
                    public_key: reader.fixed()?,
                }),
                1 => ProposalKind::Suspension(reader.string()?),
                2 => ProposalKind::Quota(reader.string()?, reader.u32()?),
                other => {
                    return Err(Error::MalformedEntry(format!(
                        "unknown proposal kind {other}"
                    )))
                }
            };
            let mut approvals = BTreeSet::new();
            for _ in 0..length(&mut reader)? {
                approvals.insert(reader.string()?);
            }
            state.proposals.insert(
                index,
                Proposal {
                    kind,
                    approvals,
                    expires_at: reader.u64()?,
                    carried_out: reader.bool()?,
                },
            );
        }
        for _ in 0..length(&mut reader)? {
            let record = RiskRecord {
                index: reader.u64()?,
                publisher: reader.string()?,
                identifier: BlindedIdentifier {
                    kind: IdentifierKind::from_byte(reader.u8()?)?,
                    key_epoch: reader.u32()?,
                    value: reader.fixed()?,
                },
                risk_type: RiskType::from_byte(reader.u8()?)?,
                severity: reader.u8()?,
                published_at: reader.u64()?,
                expires_at: reader.u64()?,
                evidence_reference: reader.string()?,
                retracted_at: if reader.bool()? {
                    Some(reader.u64()?)
                } else {
                    None
                },
            };
            // Records come in index order, as `apply_publication` appended them.
            state
                .records_by_identifier
                .entry(record.identifier)
                .or_default()
                .push(record.index);
            state.records.insert(record.index, record);
        }
        for _ in 0..length(&mut reader)? {
            let name = reader.string()?;
            let count = QueryCount {
                total: reader.u64()?,
                day: reader.u64()?,
                in_day: reader.u32()?,
            };
            state.query_counts.insert(name, count);
        }
        for _ in 0..length(&mut reader)? {
            let name = reader.string()?;
            state.publication_counts.insert(name, reader.u64()?);
        }
        reader.finish()?;
        Ok(state)
    }
}
