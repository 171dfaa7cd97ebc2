//! What a member lender sees of a consortium log stored in its database, each fact
//! checked with the consortium crate before it is shown: the latest stored checkpoint
//! under the operator's key, the stored entries and tiles against its root, the member's
//! query count through its count proof, and one entry looked up by index with its
//! inclusion proof. Read-only: it needs the operator's public key, never its signing or
//! blinding key, so it runs beside a log served by `tally consortium serve` or made by
//! `tally demo` without disturbing it.

use tally_consortium::{
    check_stored_log, leaf_hash, open_checkpoint, replay_batch, verify_inclusion, Checkpoint,
    ConsortiumState, CountProof, Entry, Error, LogStore, MemberMap, MerkleLog, Note, QueryCount,
    VerifierKey,
};
use tally_store::consortium::SqlLogStore;
use tally_store::Database;

/// Entries decoded and replayed at a time.
const REPLAY_BATCH_SIZE: u64 = 10_000;

/// One check and its outcome: what was checked, and either what holds or what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, for a person ("checkpoint signature").
    pub what: &'static str,
    /// `Ok(what holds)` or `Err(what failed)`.
    pub outcome: Result<String, String>,
}

impl Check {
    fn holds(what: &'static str, detail: String) -> Self {
        Check {
            what,
            outcome: Ok(detail),
        }
    }

    fn fails(what: &'static str, detail: String) -> Self {
        Check {
            what,
            outcome: Err(detail),
        }
    }

    /// Whether it holds.
    pub fn verified(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The latest stored checkpoint as it reads (before or whatever its signature says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFacts {
    pub origin: String,
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
    /// Entries stored, which may run ahead of the checkpoint by a batch.
    pub stored_entries: u64,
}

/// The member's logged counts, as the state replayed to the checkpoint's size gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCounts {
    pub member: String,
    /// `active` or `suspended`.
    pub status: String,
    pub queries: u64,
    pub publications: u64,
    /// Queries on `day` (a UTC day number), against the daily quota.
    pub day: u64,
    pub in_day: u32,
    /// Its leaf's index in the member map, and the map's size.
    pub leaf_index: u64,
    pub members: u64,
}

/// One entry looked up by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    pub index: u64,
    /// The entry's kind (`Genesis`, `RecordPublication`, `QueryRecord`, ...).
    pub kind: String,
    /// The member whose signed request it logs; `None` for the operator's own entries.
    pub member: Option<String>,
    /// When it was logged, in seconds since the epoch.
    pub time: u64,
    /// Leaf hash, base64.
    pub leaf: String,
}

/// The page's content: the facts and every check made, in order. A check that fails
/// stops the ones that build on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub checkpoint: Option<CheckpointFacts>,
    pub counts: Option<MemberCounts>,
    pub entry: Option<EntryFacts>,
    /// Why the entry asked for was not looked up (an index past the signed tree).
    pub lookup_refused: Option<String>,
    pub checks: Vec<Check>,
}

impl MemberView {
    /// Whether every check made holds.
    pub fn verified(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(Check::verified)
    }
}

/// Why the log could not be read at all (as opposed to a check that failed).
#[derive(Debug, thiserror::Error)]
pub enum MemberViewError {
    /// Code `consortium_log_not_found`.
    #[error("this database holds no signed consortium checkpoint: no log has run on it")]
    NoLog,
    /// Code `storage_unavailable`.
    #[error("the consortium log could not be read: {0}")]
    Storage(String),
}

impl MemberViewError {
    pub fn code(&self) -> &'static str {
        match self {
            MemberViewError::NoLog => "consortium_log_not_found",
            MemberViewError::Storage(_) => "storage_unavailable",
        }
    }
}

fn storage(error: impl std::fmt::Display) -> MemberViewError {
    MemberViewError::Storage(error.to_string())
}

fn failure(error: &Error) -> String {
    format!("{error} [{}]", error.code())
}

/// Reads and checks the log stored in `database` for `member`, under the operator's key
/// `operator`; with `lookup`, also that entry. Blocking (the log's store has a runtime of
/// its own): call it from `spawn_blocking`. Reading replays the entries up to the
/// checkpoint, so it costs tens of microseconds per entry.
pub fn member_view(
    database: &Database,
    operator: &VerifierKey,
    member: &str,
    lookup: Option<u64>,
) -> Result<MemberView, MemberViewError> {
    let store = SqlLogStore::connect(database).map_err(storage)?;
    let Some((_, note)) = store.read_checkpoint().map_err(storage)? else {
        return Err(MemberViewError::NoLog);
    };
    let stored_entries = store.tree_size().map_err(storage)?;
    let mut view = MemberView {
        checkpoint: None,
        counts: None,
        entry: None,
        lookup_refused: None,
        checks: Vec::new(),
    };
    // The facts as the note reads, shown even when its signature fails.
    if let Ok(body) = Note::parse(&note).and_then(|note| Checkpoint::parse(&note.text)) {
        view.checkpoint = Some(CheckpointFacts {
            origin: body.origin.clone(),
            size: body.size,
            root: body.root.to_base64(),
            stored_entries,
        });
    }
    let checkpoint = match open_checkpoint(&note, operator, &[]) {
        Ok(opened) => opened.checkpoint,
        Err(error) => {
            view.checks.push(Check::fails(
                "checkpoint signature",
                format!(
                    "not signed by the operator key {}: {}",
                    operator.name(),
                    failure(&error)
                ),
            ));
            return Ok(view);
        }
    };
    view.checks.push(Check::holds(
        "checkpoint signature",
        format!(
            "signed by the operator key {} (key id {:08x}), origin {}",
            operator.name(),
            operator.key_id(),
            checkpoint.origin
        ),
    ));
    if checkpoint.size > stored_entries {
        view.checks.push(Check::fails(
            "stored entries",
            format!(
                "the checkpoint signs {} entries, the database holds {stored_entries}",
                checkpoint.size
            ),
        ));
        return Ok(view);
    }
    let stored = check_stored_log(
        &store,
        stored_entries,
        Some((checkpoint.size, checkpoint.root)),
    )
    .map_err(storage)?;
    if let Some(finding) = stored.finding {
        view.checks
            .push(Check::fails("stored entries", finding.to_string()));
        return Ok(view);
    }
    view.checks.push(Check::holds(
        "stored entries",
        format!(
            "{} entries and {} tiles read: each entry hashes to its leaf, each tile to the \
             tiles below, and the first {} give the signed root",
            stored.entries, stored.tiles, checkpoint.size
        ),
    ));
    let log = MerkleLog::open(store).map_err(storage)?;
    match replayed(&log, checkpoint.size)? {
        Ok(state) => view.checks.push(count_check(
            &state,
            member,
            &note,
            operator,
            &mut view.counts,
        )),
        Err(detail) => view.checks.push(Check::fails("member count", detail)),
    }
    match lookup {
        Some(index) if index >= checkpoint.size => {
            view.lookup_refused = Some(format!(
                "entry {index} is not in the signed tree of {} entries (the first is 0)",
                checkpoint.size
            ));
        }
        Some(index) => view
            .checks
            .push(entry_check(&log, &checkpoint, index, &mut view.entry)?),
        None => {}
    }
    Ok(view)
}

/// The state after the first `size` entries, or what stopped the replay.
fn replayed(
    log: &MerkleLog<SqlLogStore>,
    size: u64,
) -> Result<Result<ConsortiumState, String>, MemberViewError> {
    let mut state = ConsortiumState::new();
    let mut start = 0;
    while start < size {
        let end = (start + REPLAY_BATCH_SIZE).min(size);
        let mut entries = Vec::new();
        for index in start..end {
            let Some(bytes) = log.entry(index).map_err(storage)? else {
                return Ok(Err(format!("entry {index} is missing")));
            };
            match Entry::decode(&bytes) {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    return Ok(Err(format!(
                        "entry {index} does not decode: {}",
                        failure(&error)
                    )))
                }
            }
        }
        if let Err(error) = replay_batch(&mut state, &entries) {
            return Ok(Err(format!(
                "the consortium rules refuse entry {}: {}",
                state.next_index(),
                failure(&error)
            )));
        }
        start = end;
    }
    Ok(Ok(state))
}

/// The member's count proof, built from the replayed state and verified as a member's
/// client verifies one the log sends: the checkpoint's signature, then the member's leaf
/// in the member map the checkpoint commits. A leaf that does not match (the entries say
/// another count than the operator signed) fails here.
fn count_check(
    state: &ConsortiumState,
    member: &str,
    note: &str,
    operator: &VerifierKey,
    counts: &mut Option<MemberCounts>,
) -> Check {
    let map = MemberMap::of(state);
    let Some((index, leaf, hashes)) = map.prove(member) else {
        return Check::fails(
            "member count",
            format!("{member:?} is not a member of the log"),
        );
    };
    let members = map.leaves().len() as u64;
    let proof = CountProof {
        leaf: leaf.clone(),
        index,
        members,
        hashes,
        checkpoint: note.to_owned(),
    };
    let QueryCount { day, in_day, .. } = state.query_count(member);
    *counts = Some(MemberCounts {
        member: member.to_owned(),
        status: format!("{:?}", leaf.status).to_lowercase(),
        queries: leaf.queries,
        publications: leaf.publications,
        day,
        in_day,
        leaf_index: index,
        members,
    });
    match proof.verify(operator, &[]) {
        Ok(_) => Check::holds(
            "member count",
            format!(
                "leaf {index} of {members} ({member}: {} queries, {} publications) is in the \
                 member map the signed checkpoint commits, by an inclusion proof of {} hashes",
                leaf.queries,
                leaf.publications,
                proof.hashes.len()
            ),
        ),
        Err(error) => Check::fails("member count", failure(&error)),
    }
}

/// Entry `index` (below the checkpoint's size): its bytes hash to its leaf, and the leaf is in the signed tree by its
/// inclusion proof at the checkpoint's size.
fn entry_check(
    log: &MerkleLog<SqlLogStore>,
    checkpoint: &Checkpoint,
    index: u64,
    facts: &mut Option<EntryFacts>,
) -> Result<Check, MemberViewError> {
    const WHAT: &str = "entry inclusion";
    let Some(bytes) = log.entry(index).map_err(storage)? else {
        return Ok(Check::fails(WHAT, format!("entry {index} is missing")));
    };
    let leaf = leaf_hash(&bytes);
    let entry = match Entry::decode(&bytes) {
        Ok(entry) => entry,
        Err(error) => {
            return Ok(Check::fails(
                WHAT,
                format!("entry {index} does not decode: {}", failure(&error)),
            ))
        }
    };
    *facts = Some(EntryFacts {
        index,
        kind: format!("{:?}", entry.kind()),
        member: entry.body.request().map(|request| request.member.clone()),
        time: entry.time,
        leaf: leaf.to_base64(),
    });
    let proof = log
        .inclusion_proof(index, checkpoint.size)
        .map_err(storage)?;
    Ok(
        match verify_inclusion(index, checkpoint.size, &leaf, &proof, &checkpoint.root) {
            Ok(()) => Check::holds(
                WHAT,
                format!(
                    "entry {index} hashes to its leaf, which is in the signed tree of {} \
                     entries by an inclusion proof of {} hashes",
                    checkpoint.size,
                    proof.len()
                ),
            ),
            Err(error) => Check::fails(WHAT, failure(&error)),
        },
    )
}
