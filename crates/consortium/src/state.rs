//! The consortium's rules as a pure state machine: replaying the log's entries rebuilds members, proposals, records and query counts.
//!
//! [`ConsortiumState::apply`] checks an entry completely before it changes anything, so a
//! refused entry leaves the state as it was; the operator calls it before appending, and
//! an auditor or mirror replays the whole log through it and must get the same answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::entry::{
    Action, Entry, EntryBody, Genesis, MemberKey, Quorum, RiskType, SignedRequest, UnixSeconds,
    NAME_SIZE_MAX, TEXT_SIZE_MAX,
};
use crate::error::Refusal;
use crate::identifier::BlindedIdentifier;
use crate::identifier::IdentifierKind;
use crate::note::is_valid_key_name;
use crate::Error;

mod encoding;

/// Seconds in a UTC day, the period of query quotas.
pub const DAY_SECONDS: u64 = 86_400;
/// Highest severity of a record.
pub const SEVERITY_MAX: u8 = 5;
/// Highest daily query quota the members can vote for one member.
pub const QUERY_QUOTA_PER_DAY_MAX: u32 = 10_000_000;

/// Whether a member may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// Admitted and in good standing.
    Active,
    /// Suspended: can neither publish, query, propose nor approve.
    Suspended,
}

/// A member as the log defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Ed25519 public key that signs its requests.
    pub public_key: [u8; 32],
    /// Active or suspended.
    pub status: MemberStatus,
    /// Log index of the entry that admitted it.
    pub admitted_at: u64,
    /// Highest request sequence number accepted from it.
    pub last_sequence: u64,
    /// Its own daily query quota, when the members voted one; else the consortium's.
    pub query_quota_per_day: Option<u32>,
}

/// What a proposal would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalKind {
    /// Admit a candidate.
    Admission(MemberKey),
    /// Suspend a member.
    Suspension(String),
    /// Set a member's daily query quota.
    Quota(String, u32),
}

/// A proposal awaiting approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// What it would do.
    pub kind: ProposalKind,
    /// Members who approved it (the proposer included).
    pub approvals: BTreeSet<String>,
    /// When it stops accepting approvals.
    pub expires_at: UnixSeconds,
    /// Whether it has been carried out.
    pub carried_out: bool,
}

/// A published risk record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRecord {
    /// Log index of its publication entry (its id).
    pub index: u64,
    /// The publishing member.
    pub publisher: String,
    /// The blinded identifier.
    pub identifier: BlindedIdentifier,
    /// What kind of risk.
    pub risk_type: RiskType,
    /// 1 to 5.
    pub severity: u8,
    /// When it was logged.
    pub published_at: UnixSeconds,
    /// When it stops being live.
    pub expires_at: UnixSeconds,
    /// The publisher's evidence reference.
    pub evidence_reference: String,
    /// Log index of its retraction, if retracted.
    pub retracted_at: Option<u64>,
}

impl RiskRecord {
    /// Live at `time`: not retracted and not expired.
    pub fn is_live(&self, time: UnixSeconds) -> bool {
        self.retracted_at.is_none() && time < self.expires_at
    }
}

/// A member's query counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryCount {
    /// All queries ever logged.
    pub total: u64,
    /// The UTC day (seconds / 86400) of `in_day`.
    pub day: u64,
    /// Queries logged on that day.
    pub in_day: u32,
}

/// What applying an entry did, for the caller's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The consortium was founded.
    Founded,
    /// A proposal was opened (and carried out at once when the quorum is one).
    ProposalOpened {
        /// Its index.
        proposal: u64,
        /// Whether it was carried out.
        carried_out: bool,
    },
    /// A proposal was approved.
    Approved {
        /// Its index.
        proposal: u64,
        /// Whether this approval carried it out.
        carried_out: bool,
    },
    /// A record was published.
    Published {
        /// Its index.
        record: u64,
    },
    /// A record was retracted.
    Retracted {
        /// Its index.
        record: u64,
    },
    /// A query was logged.
    Queried {
        /// Live records returned.
        result_count: u32,
    },
}

/// The state of the consortium after replaying the log up to `next_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsortiumState {
    genesis: Option<Genesis>,
    members: BTreeMap<String, Member>,
    proposals: BTreeMap<u64, Proposal>,
    records: BTreeMap<u64, RiskRecord>,
    records_by_identifier: HashMap<BlindedIdentifier, Vec<u64>>,
    query_counts: BTreeMap<String, QueryCount>,
    publication_counts: BTreeMap<String, u64>,
    next_index: u64,
}

fn refuse<T>(reason: Refusal, detail: impl Into<String>) -> Result<T, Error> {
    Err(Error::refused(reason, detail))
}

impl ConsortiumState {
    /// The state of an empty log.
    pub fn new() -> Self {
        ConsortiumState::default()
    }

    /// Replays entries from index 0.
    pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<Self, Error> {
        let mut state = ConsortiumState::new();
        for entry in entries {
            state.apply(entry)?;
        }
        Ok(state)
    }

    /// Index the next entry will have.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The founding entry, once applied.
    pub fn genesis(&self) -> Option<&Genesis> {
        self.genesis.as_ref()
    }

    /// All members.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// All proposals by index.
    pub fn proposals(&self) -> &BTreeMap<u64, Proposal> {
        &self.proposals
    }

    /// A record by index.
    pub fn record(&self, index: u64) -> Option<&RiskRecord> {
        self.records.get(&index)
    }

    /// A member's query counts.
    pub fn query_count(&self, member: &str) -> QueryCount {
        self.query_counts.get(member).copied().unwrap_or_default()
    }

    /// Every member's query counts.
    pub fn query_counts(&self) -> &BTreeMap<String, QueryCount> {
        &self.query_counts
    }

    /// Records a member has published (retracted ones included).
    pub fn publication_count(&self, member: &str) -> u64 {
        self.publication_counts.get(member).copied().unwrap_or(0)
    }

    /// Live records about an identifier at `time`, oldest first.
    pub fn live_records(
        &self,
        identifier: &BlindedIdentifier,
        time: UnixSeconds,
    ) -> Vec<&RiskRecord> {
        self.records_by_identifier
            .get(identifier)
            .into_iter()
            .flatten()
            .filter_map(|index| self.records.get(index))
            .filter(|record| record.is_live(time))
            .collect()
    }

    fn active_count(&self, except: Option<&str>) -> u64 {
        self.members
            .iter()
            .filter(|(name, member)| {
                member.status == MemberStatus::Active && Some(name.as_str()) != except
            })
            .count() as u64
    }

    /// Builds the query record for a member's signed query at `time`, with the blinded
    /// identifier the operator derived from the opening of the member's commitment:
    /// checks the request as [`ConsortiumState::apply`] will, and counts the live
    /// records. The caller appends the returned entry, applies it, and answers with
    /// [`ConsortiumState::live_records`].
    pub fn query_entry(
        &self,
        request: SignedRequest,
        identifier: BlindedIdentifier,
        time: UnixSeconds,
    ) -> Result<Entry, Error> {
        let Action::Query {
            identifier: commitment,
        } = &request.action
        else {
            return refuse(Refusal::InvalidField, "not a query");
        };
        if commitment.kind != identifier.kind {
            return refuse(Refusal::InvalidField, "identifier kinds differ");
        }
        self.check_request(&request, time)?;
        self.check_quota(&request.member, time)?;
        let result_count = self.live_records(&identifier, time).len() as u32;
        Ok(Entry {
            time,
            body: EntryBody::QueryRecord {
                request,
                identifier,
                result_count,
            },
        })
    }

    /// Applies the next entry. Everything is checked before anything changes: on error
    /// the state is unchanged.
    pub fn apply(&mut self, entry: &Entry) -> Result<Effect, Error> {
        self.apply_with_verified_key(entry, None)
    }

    /// The public key a request's signature must verify under right now, if its member
    /// is known: what a caller checking signatures ahead of [`ConsortiumState::apply_with_verified_key`]
    /// verifies against.
    pub fn request_key(&self, entry: &Entry) -> Option<(&str, [u8; 32])> {
        let request = entry.body.request()?;
        let genesis = self.genesis.as_ref()?;
        let member = self.members.get(&request.member)?;
        Some((genesis.consortium.as_str(), member.public_key))
    }

    /// Like [`ConsortiumState::apply`], for a caller that already checked the request's
    /// signature (in parallel, at the edge) and found it valid under `verified_key`: when
    /// that is still the member's key the signature is not checked again.
    pub fn apply_with_verified_key(
        &mut self,
        entry: &Entry,
        verified_key: Option<&[u8; 32]>,
    ) -> Result<Effect, Error> {
        let index = self.next_index;
        let effect = match &entry.body {
            EntryBody::Genesis(genesis) => self.apply_genesis(genesis, index)?,
            EntryBody::Request(request) => {
                self.check_request_with(request, entry.time, verified_key)?;
                self.apply_action(request, entry.time, index)?
            }
            EntryBody::Publication {
                request,
                identifier,
            } => {
                self.check_request_with(request, entry.time, verified_key)?;
                self.apply_publication(request, identifier, entry.time, index)?
            }
            EntryBody::QueryRecord {
                request,
                identifier,
                result_count,
            } => {
                self.check_request_with(request, entry.time, verified_key)?;
                self.apply_query(request, identifier, *result_count, entry.time)?
            }
        };
        self.next_index += 1;
        Ok(effect)
    }

    fn genesis_or_refuse(&self) -> Result<&Genesis, Error> {
        match &self.genesis {
            Some(genesis) => Ok(genesis),
            None => refuse(Refusal::Genesis, "the log has no genesis entry"),
        }
    }

    fn apply_genesis(&mut self, genesis: &Genesis, index: u64) -> Result<Effect, Error> {
        if self.genesis.is_some() || index != 0 {
            return refuse(
                Refusal::Genesis,
                "genesis must be the first and only founding entry",
            );
        }
        let quorum = genesis.quorum;
        if quorum.denominator == 0 || quorum.numerator == 0 || quorum.numerator > quorum.denominator
        {
            return refuse(Refusal::InvalidField, "quorum must be a share in (0, 1]");
        }
        if genesis.founders.is_empty() || !valid_name(&genesis.consortium) {
            return refuse(Refusal::InvalidField, "need a consortium name and founders");
        }
        let mut members = BTreeMap::new();
        for founder in &genesis.founders {
            if !is_valid_key_name(&founder.name) || founder.name.len() > NAME_SIZE_MAX {
                return refuse(
                    Refusal::InvalidField,
                    format!("bad member name {:?}", founder.name),
                );
            }
            let duplicate_key = members
                .values()
                .any(|member: &Member| member.public_key == founder.public_key);
            if members.contains_key(&founder.name) || duplicate_key {
                return refuse(
                    Refusal::AlreadyMember,
                    format!("founder {} twice", founder.name),
                );
            }
            members.insert(
                founder.name.clone(),
                Member {
                    public_key: founder.public_key,
                    status: MemberStatus::Active,
                    admitted_at: index,
                    last_sequence: 0,
                    query_quota_per_day: None,
                },
            );
        }
        self.members = members;
        self.genesis = Some(genesis.clone());
        Ok(Effect::Founded)
    }

    /// Membership, signature, replay and freshness checks common to every request.
    fn check_request(&self, request: &SignedRequest, time: UnixSeconds) -> Result<(), Error> {
        self.check_request_with(request, time, None)
    }

    fn check_request_with(
        &self,
        request: &SignedRequest,
        time: UnixSeconds,
        verified_key: Option<&[u8; 32]>,
    ) -> Result<(), Error> {
        let genesis = self.genesis_or_refuse()?;
        let Some(member) = self.members.get(&request.member) else {
            return refuse(
                Refusal::NotAMember,
                format!("{} is not a member", request.member),
            );
        };
        let already_verified = verified_key == Some(&member.public_key);
        if !already_verified && !request.verify(&genesis.consortium, &member.public_key) {
            return refuse(Refusal::BadSignature, "request signature does not verify");
        }
        if request.sequence <= member.last_sequence {
            return refuse(
                Refusal::Replay,
                format!(
                    "sequence {} is not above the last accepted {}",
                    request.sequence, member.last_sequence
                ),
            );
        }
        if member.status == MemberStatus::Suspended {
            return refuse(
                Refusal::Suspended,
                format!("{} is suspended", request.member),
            );
        }
        if request.time.abs_diff(time) > genesis.request_skew_seconds_max {
            return refuse(
                Refusal::InvalidField,
                "request time too far from the log time",
            );
        }
        Ok(())
    }

    fn accept_sequence(&mut self, request: &SignedRequest) {
        if let Some(member) = self.members.get_mut(&request.member) {
            member.last_sequence = request.sequence;
        }
    }

    fn apply_action(
        &mut self,
        request: &SignedRequest,
        time: UnixSeconds,
        index: u64,
    ) -> Result<Effect, Error> {
        let lifetime = self.genesis_or_refuse()?.proposal_lifetime_seconds;
        match &request.action {
            Action::ProposeAdmission { candidate } => {
                if !is_valid_key_name(&candidate.name) || candidate.name.len() > NAME_SIZE_MAX {
                    return refuse(Refusal::InvalidField, "bad candidate name");
                }
                let key_taken = self
                    .members
                    .values()
                    .any(|member| member.public_key == candidate.public_key);
                if self.members.contains_key(&candidate.name) || key_taken {
                    return refuse(Refusal::AlreadyMember, "name or key already a member");
                }
                if ed25519_dalek::VerifyingKey::from_bytes(&candidate.public_key).is_err() {
                    return refuse(Refusal::InvalidField, "candidate key is not Ed25519");
                }
                self.open_proposal(
                    request,
                    index,
                    time.saturating_add(lifetime),
                    ProposalKind::Admission(candidate.clone()),
                )
            }
            Action::ProposeSuspension { member, reason } => {
                if reason.len() > TEXT_SIZE_MAX {
                    return refuse(Refusal::InvalidField, "reason too long");
                }
                match self.members.get(member) {
                    Some(target) if target.status == MemberStatus::Active => {}
                    Some(_) => return refuse(Refusal::UnknownReference, "already suspended"),
                    None => {
                        return refuse(Refusal::NotAMember, format!("{member} is not a member"))
                    }
                }
                if *member == request.member {
                    return refuse(
                        Refusal::InvalidField,
                        "a member cannot propose its own suspension",
                    );
                }
                self.open_proposal(
                    request,
                    index,
                    time.saturating_add(lifetime),
                    ProposalKind::Suspension(member.clone()),
                )
            }
            Action::ProposeQuota {
                member,
                queries_per_day,
            } => {
                if *queries_per_day > QUERY_QUOTA_PER_DAY_MAX {
                    return refuse(Refusal::InvalidField, "quota above the maximum");
                }
                if !self.members.contains_key(member) {
                    return refuse(Refusal::NotAMember, format!("{member} is not a member"));
                }
                self.open_proposal(
                    request,
                    index,
                    time.saturating_add(lifetime),
                    ProposalKind::Quota(member.clone(), *queries_per_day),
                )
            }
            Action::Approve { proposal } => self.approve(request, *proposal, time),
            Action::PublishRecord { .. } => refuse(
                Refusal::InvalidField,
                "a publication is logged with its blinded identifier, not as a plain request",
            ),
            Action::RetractRecord { record, reason } => {
                if reason.len() > TEXT_SIZE_MAX {
                    return refuse(Refusal::InvalidField, "reason too long");
                }
                let Some(existing) = self.records.get(record) else {
                    return refuse(Refusal::UnknownReference, format!("no record at {record}"));
                };
                if existing.publisher != request.member {
                    return refuse(Refusal::NotThePublisher, "only the publisher may retract");
                }
                if existing.retracted_at.is_some() {
                    return refuse(Refusal::UnknownReference, "record already retracted");
                }
                self.accept_sequence(request);
                if let Some(existing) = self.records.get_mut(record) {
                    existing.retracted_at = Some(index);
                }
                Ok(Effect::Retracted { record: *record })
            }
            Action::Query { .. } => refuse(
                Refusal::InvalidField,
                "a query is logged as a query record, not a plain request",
            ),
        }
    }

    fn apply_publication(
        &mut self,
        request: &SignedRequest,
        identifier: &BlindedIdentifier,
        time: UnixSeconds,
        index: u64,
    ) -> Result<Effect, Error> {
        let Action::PublishRecord {
            identifier: commitment,
            risk_type,
            severity,
            expires_at,
            evidence_reference,
        } = &request.action
        else {
            return refuse(Refusal::InvalidField, "a publication must hold a record");
        };
        if commitment.kind != identifier.kind {
            return refuse(Refusal::InvalidField, "identifier kinds differ");
        }
        if !(1..=SEVERITY_MAX).contains(severity) {
            return refuse(Refusal::InvalidField, "severity must be 1 to 5");
        }
        if *expires_at <= time {
            return refuse(
                Refusal::InvalidField,
                "record would expire before it is logged",
            );
        }
        if evidence_reference.len() > TEXT_SIZE_MAX {
            return refuse(Refusal::InvalidField, "evidence reference too long");
        }
        self.accept_sequence(request);
        self.records.insert(
            index,
            RiskRecord {
                index,
                publisher: request.member.clone(),
                identifier: *identifier,
                risk_type: *risk_type,
                severity: *severity,
                published_at: time,
                expires_at: *expires_at,
                evidence_reference: evidence_reference.clone(),
                retracted_at: None,
            },
        );
        self.records_by_identifier
            .entry(*identifier)
            .or_default()
            .push(index);
        *self
            .publication_counts
            .entry(request.member.clone())
            .or_default() += 1;
        Ok(Effect::Published { record: index })
    }

    fn open_proposal(
        &mut self,
        request: &SignedRequest,
        index: u64,
        expires_at: UnixSeconds,
        kind: ProposalKind,
    ) -> Result<Effect, Error> {
        self.accept_sequence(request);
        let mut approvals = BTreeSet::new();
        approvals.insert(request.member.clone());
        self.proposals.insert(
            index,
            Proposal {
                kind,
                approvals,
                expires_at,
                carried_out: false,
            },
        );
        let carried_out = self.carry_out_if_quorum(index);
        Ok(Effect::ProposalOpened {
            proposal: index,
            carried_out,
        })
    }

    fn approve(
        &mut self,
        request: &SignedRequest,
        proposal_index: u64,
        time: UnixSeconds,
    ) -> Result<Effect, Error> {
        let Some(proposal) = self.proposals.get(&proposal_index) else {
            return refuse(
                Refusal::UnknownReference,
                format!("no proposal at {proposal_index}"),
            );
        };
        if proposal.carried_out || time >= proposal.expires_at {
            return refuse(Refusal::UnknownReference, "proposal is closed");
        }
        if proposal.approvals.contains(&request.member) {
            return refuse(Refusal::AlreadyApproved, "already approved");
        }
        // A proposal overtaken by events (the candidate was admitted through another
        // proposal, the target is already suspended) takes no more approvals: carrying
        // it out again would reset a member and its replay protection.
        match &proposal.kind {
            ProposalKind::Suspension(target) => {
                if *target == request.member {
                    return refuse(
                        Refusal::InvalidField,
                        "a member cannot vote on its own suspension",
                    );
                }
                let still_active = self
                    .members
                    .get(target)
                    .is_some_and(|member| member.status == MemberStatus::Active);
                if !still_active {
                    return refuse(Refusal::UnknownReference, "the member is already suspended");
                }
            }
            ProposalKind::Admission(candidate) => {
                let key_taken = self
                    .members
                    .values()
                    .any(|member| member.public_key == candidate.public_key);
                if self.members.contains_key(&candidate.name) || key_taken {
                    return refuse(Refusal::AlreadyMember, "the candidate is already a member");
                }
            }
            ProposalKind::Quota(..) => {}
        }
        self.accept_sequence(request);
        if let Some(proposal) = self.proposals.get_mut(&proposal_index) {
            proposal.approvals.insert(request.member.clone());
        }
        let carried_out = self.carry_out_if_quorum(proposal_index);
        Ok(Effect::Approved {
            proposal: proposal_index,
            carried_out,
        })
    }

    /// Carries out a proposal whose active approvals reach the quorum.
    fn carry_out_if_quorum(&mut self, proposal_index: u64) -> bool {
        let Some(quorum) = self.genesis.as_ref().map(|genesis| genesis.quorum) else {
            return false;
        };
        let Some(proposal) = self.proposals.get(&proposal_index) else {
            return false;
        };
        let target = match &proposal.kind {
            ProposalKind::Suspension(target) => Some(target.as_str()),
            ProposalKind::Admission(_) | ProposalKind::Quota(..) => None,
        };
        let voters = self.active_count(target);
        // Only approvals of members still active count.
        let approvals = proposal
            .approvals
            .iter()
            .filter(|name| {
                self.members
                    .get(*name)
                    .is_some_and(|member| member.status == MemberStatus::Active)
            })
            .count() as u64;
        if approvals < quorum.required(voters) {
            return false;
        }
        let kind = proposal.kind.clone();
        match kind {
            ProposalKind::Admission(candidate) => {
                if self.members.contains_key(&candidate.name) {
                    // Refused in `approve` before anything changed; never overwrite.
                    return false;
                }
                self.members.insert(
                    candidate.name.clone(),
                    Member {
                        public_key: candidate.public_key,
                        status: MemberStatus::Active,
                        admitted_at: self.next_index,
                        last_sequence: 0,
                        query_quota_per_day: None,
                    },
                );
            }
            ProposalKind::Suspension(target) => {
                if let Some(member) = self.members.get_mut(&target) {
                    member.status = MemberStatus::Suspended;
                }
            }
            ProposalKind::Quota(target, queries_per_day) => {
                if let Some(member) = self.members.get_mut(&target) {
                    member.query_quota_per_day = Some(queries_per_day);
                }
            }
        }
        if let Some(proposal) = self.proposals.get_mut(&proposal_index) {
            proposal.carried_out = true;
        }
        true
    }

    /// The member's counts, the day and the queries already made that day, if it has
    /// quota left.
    fn check_quota(
        &self,
        member: &str,
        time: UnixSeconds,
    ) -> Result<(QueryCount, u64, u32), Error> {
        let default_quota = self.genesis_or_refuse()?.query_quota_per_day;
        let quota = self
            .members
            .get(member)
            .and_then(|member| member.query_quota_per_day)
            .unwrap_or(default_quota);
        let day = time / DAY_SECONDS;
        let count = self.query_count(member);
        let in_day = if count.day == day { count.in_day } else { 0 };
        if in_day >= quota {
            return refuse(
                Refusal::QuotaExceeded,
                format!("{member} used its {quota} queries for the day"),
            );
        }
        Ok((count, day, in_day))
    }

    fn apply_query(
        &mut self,
        request: &SignedRequest,
        identifier: &BlindedIdentifier,
        result_count: u32,
        time: UnixSeconds,
    ) -> Result<Effect, Error> {
        let Action::Query {
            identifier: commitment,
        } = &request.action
        else {
            return refuse(Refusal::InvalidField, "a query record must hold a query");
        };
        if commitment.kind != identifier.kind {
            return refuse(Refusal::InvalidField, "identifier kinds differ");
        }
        let (count, day, in_day) = self.check_quota(&request.member, time)?;
        let live = self.live_records(identifier, time).len() as u32;
        if live != result_count {
            return refuse(
                Refusal::InvalidField,
                format!("query record says {result_count} results, the log gives {live}"),
            );
        }
        self.accept_sequence(request);
        self.query_counts.insert(
            request.member.clone(),
            QueryCount {
                total: count.total + 1,
                day,
                in_day: in_day + 1,
            },
        );
        Ok(Effect::Queried { result_count })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_SIZE_MAX && !name.chars().any(char::is_control)
}
