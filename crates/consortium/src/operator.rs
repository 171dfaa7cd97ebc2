//! The log operator's core: the rules, the Merkle log and the checkpoint key together, as the service will drive them.
//!
//! Every batch of entries is checked against the rules in order; refused entries are
//! reported and left out, accepted ones are committed to the store in one [`Commit`]
//! (so a batch is durable all or nothing), and a checkpoint can be signed at once.
//! If a commit fails after the rules accepted a batch, the in-memory state is ahead of
//! the store: the operator refuses all further work until it is reopened from the
//! store, which replays the entries (the TigerBeetle way: crash and recover rather than
//! guess).
//!
//! The log's time never runs backwards: an entry (a query's too) is stamped at the time
//! it is given or at the time of the entry before it, whichever is later, and
//! [`Operator::open`] starts from the time of the stored entries. A clock that runs
//! behind after a restart thus holds the log's time still instead of stopping the
//! service, and cannot take a day's query count back to an earlier day.
//!
//! [`Commit`]: crate::Commit

use crate::checkpoint::Checkpoint;
use crate::entry::{Action, Entry, EntryBody, Genesis, SignedRequest, UnixSeconds};
use crate::identifier::{BlindingKey, IdentifierOpening};
use crate::member_map::{CountProof, MemberMap};
use crate::note::{Note, SignerKey};
use crate::state::{ConsortiumState, Effect, RiskRecord};
use crate::tiles::{LogStore, MerkleLog};
use crate::Error;

/// Most entries accepted in one batch.
pub const ENTRY_BATCH_SIZE_MAX: usize = 10_000;

/// What became of one entry of a batch: its log index and effect, or why it was refused.
pub type EntryOutcome = Result<(u64, Effect), Error>;

/// The answer to a member's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    /// Log index of the query record.
    pub index: u64,
    /// The live records, oldest first.
    pub records: Vec<RiskRecord>,
}

/// The operator of one consortium log.
#[derive(Debug)]
pub struct Operator<S> {
    log: MerkleLog<S>,
    state: ConsortiumState,
    signer: SignerKey,
    blinding: BlindingKey,
    poisoned: bool,
    /// Tree size of the latest snapshot stored or tried (0: none).
    snapshot_size: u64,
    /// Time of the latest entry (the latest of the entries': the log's time).
    last_time: UnixSeconds,
}

/// Fewest entries between two snapshots: rewriting the whole state costs far more than
/// an entry, so it is done for a tenth of the log at a time, and at least this many.
pub const SNAPSHOT_INTERVAL_MIN: u64 = 100_000;

impl<S: LogStore> Operator<S> {
    /// Founds a consortium on an empty store with its genesis entry. `signer` signs
    /// checkpoints; `blinding` blinds identifiers.
    pub fn found(
        store: S,
        signer: SignerKey,
        blinding: BlindingKey,
        genesis: Genesis,
        time: UnixSeconds,
    ) -> Result<Self, Error> {
        let log = MerkleLog::open(store)?;
        if log.size() != 0 {
            return Err(Error::refused(
                crate::Refusal::Genesis,
                "the store already holds a log",
            ));
        }
        let mut operator = Operator {
            log,
            state: ConsortiumState::new(),
            signer,
            blinding,
            poisoned: false,
            snapshot_size: 0,
            last_time: 0,
        };
        let results = operator.append(vec![Entry {
            time,
            body: EntryBody::Genesis(genesis),
        }])?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(operator),
            Some(Err(error)) => Err(error),
            None => Err(Error::Internal("genesis gave no result".into())),
        }
    }

    /// Opens an existing log: starts from the stored snapshot, if any, once its signature,
    /// root and digest check out ([`crate::snapshot::open`]), and replays every later
    /// entry through the rules, in batches whose request signatures are checked on every
    /// core. An edited entry after the snapshot fails here (its leaf hash, its bytes, its
    /// signature or the rules), and so does an edited snapshot. Replaying costs tens of
    /// microseconds per entry, dominated by signature checks.
    pub fn open(store: S, signer: SignerKey, blinding: BlindingKey) -> Result<Self, Error> {
        let log = MerkleLog::open(store)?;
        let (mut state, snapshot_size) = match log.store().read_snapshot()? {
            Some(stored) if stored.size <= log.size() => {
                let root = log.root_at(stored.size)?;
                let state = crate::snapshot::open(&stored, &signer.verifier(), &root)?;
                (state, stored.size)
            }
            Some(stored) => {
                return Err(Error::Storage(format!(
                    "the snapshot is at size {}, beyond the stored log of {}",
                    stored.size,
                    log.size()
                )))
            }
            None => (ConsortiumState::new(), 0),
        };
        let mut start = state.next_index();
        // The log's time: the latest entry time, at least the last entry's (the entries
        // before a snapshot are not replayed).
        let mut last_time = match log.size().checked_sub(1) {
            Some(last) => {
                let bytes = log
                    .entry(last)?
                    .ok_or_else(|| Error::Storage(format!("entry {last} is missing")))?;
                Entry::decode(&bytes)?.time
            }
            None => 0,
        };
        while start < log.size() {
            let end = (start + ENTRY_BATCH_SIZE_MAX as u64).min(log.size());
            let mut entries = Vec::with_capacity((end - start) as usize);
            for index in start..end {
                let bytes = log
                    .entry(index)?
                    .ok_or_else(|| Error::Storage(format!("entry {index} is missing")))?;
                if crate::hash::leaf_hash(&bytes) != log.leaf_hash(index)? {
                    return Err(Error::Storage(format!(
                        "entry {index} does not hash to its leaf hash"
                    )));
                }
                let entry = Entry::decode(&bytes)?;
                last_time = last_time.max(entry.time);
                entries.push(entry);
            }
            replay_batch(&mut state, &entries)?;
            start = end;
        }
        Ok(Operator {
            log,
            state,
            signer,
            blinding,
            poisoned: false,
            snapshot_size,
            last_time,
        })
    }

    /// Stores a snapshot of the state at the current size.
    pub fn write_snapshot(&mut self) -> Result<(), Error> {
        self.healthy()?;
        let snapshot = crate::snapshot::seal(&self.state, &self.log.root(), &self.signer)?;
        self.log.store_mut().write_snapshot(snapshot)?;
        self.snapshot_size = self.log.size();
        Ok(())
    }

    /// Stores a snapshot when the entries since the last one reach a tenth of the log
    /// (and at least [`SNAPSHOT_INTERVAL_MIN`]), so that opening replays at most about a
    /// tenth of the log while the state is rewritten about seven times as the log doubles.
    /// Returns whether it wrote one.
    pub fn snapshot_if_due(&mut self) -> Result<bool, Error> {
        let since = self.log.size() - self.snapshot_size;
        if since < SNAPSHOT_INTERVAL_MIN.max(self.log.size() / 10) {
            return Ok(false);
        }
        let written = self.write_snapshot();
        // A failed write is tried again after another interval, not after every batch.
        self.snapshot_size = self.log.size();
        written.map(|()| true)
    }

    /// The replayed state.
    pub fn state(&self) -> &ConsortiumState {
        &self.state
    }

    /// The Merkle log.
    pub fn log(&self) -> &MerkleLog<S> {
        &self.log
    }

    /// The log's time: that of its latest entry. The next entry is stamped no earlier.
    pub fn last_time(&self) -> UnixSeconds {
        self.last_time
    }

    /// Whether a commit failed after the rules accepted its entries: the operator then
    /// refuses all work until it is reopened from the store.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn healthy(&self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Internal(
                "a commit failed after the rules accepted it: reopen from the store".into(),
            ));
        }
        Ok(())
    }

    /// Checks each entry against the rules in order and commits the accepted ones in one
    /// store commit. Returns, per entry, its log index and effect, or why it was refused.
    /// An entry with a time before the log's time is stamped at the log's time.
    pub fn append(&mut self, entries: Vec<Entry>) -> Result<Vec<EntryOutcome>, Error> {
        self.healthy()?;
        if entries.len() > ENTRY_BATCH_SIZE_MAX {
            return Err(Error::OutOfRange(format!(
                "batch of {} entries is above the maximum {ENTRY_BATCH_SIZE_MAX}",
                entries.len()
            )));
        }
        let first = self.log.size();
        let verified = verify_signatures(&self.state, &entries);
        let mut results = Vec::with_capacity(entries.len());
        let mut accepted = Vec::with_capacity(entries.len());
        let mut last_time = self.last_time;
        for (mut entry, verified_key) in entries.into_iter().zip(verified) {
            entry.time = entry.time.max(last_time);
            let index = self.state.next_index();
            match self
                .state
                .apply_with_verified_key(&entry, verified_key.as_ref())
            {
                Ok(effect) => {
                    last_time = entry.time;
                    accepted.push(entry.encode());
                    results.push(Ok((index, effect)));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let count = accepted.len() as u64;
        if let Err(error) = self.log.append_entries(accepted) {
            self.poisoned = true;
            return Err(error);
        }
        self.last_time = last_time;
        // Pair assertion: the rules and the log agree on how many entries there are.
        if self.log.size() != first + count || self.state.next_index() != self.log.size() {
            self.poisoned = true;
            return Err(Error::Internal(format!(
                "log size {} and state index {} disagree",
                self.log.size(),
                self.state.next_index()
            )));
        }
        Ok(results)
    }

    /// Logs a member's signed publication at `time`: the opening (identifier and salt,
    /// sent alongside) must open the commitment the member signed; the entry carries the
    /// blinded identifier. The opening is not kept.
    pub fn publish(
        &mut self,
        request: SignedRequest,
        opening: &IdentifierOpening,
        time: UnixSeconds,
    ) -> Result<(u64, Effect), Error> {
        let Action::PublishRecord {
            identifier: commitment,
            ..
        } = &request.action
        else {
            return Err(Error::refused(
                crate::Refusal::InvalidField,
                "not a publication",
            ));
        };
        let identifier = self.blinding.blind_opening(opening, commitment)?;
        let mut results = self.append(vec![Entry {
            time,
            body: EntryBody::Publication {
                request,
                identifier,
            },
        }])?;
        results
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("no result".into())))
    }

    /// Logs one member request without an identifier (proposal, approval, retraction).
    pub fn submit(
        &mut self,
        request: SignedRequest,
        time: UnixSeconds,
    ) -> Result<(u64, Effect), Error> {
        let mut results = self.append(vec![Entry {
            time,
            body: EntryBody::Request(request),
        }])?;
        results
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("no result".into())))
    }

    /// Answers a member's signed query at `time` (or at the log's time, if later) and
    /// logs the query record; the opening must open the commitment the member signed and
    /// is not kept.
    pub fn query(
        &mut self,
        request: SignedRequest,
        opening: &IdentifierOpening,
        time: UnixSeconds,
    ) -> Result<QueryAnswer, Error> {
        self.healthy()?;
        let time = time.max(self.last_time);
        let Action::Query {
            identifier: commitment,
        } = &request.action
        else {
            return Err(Error::refused(crate::Refusal::InvalidField, "not a query"));
        };
        let identifier = self.blinding.blind_opening(opening, commitment)?;
        let entry = self.state.query_entry(request, identifier, time)?;
        let records: Vec<RiskRecord> = self
            .state
            .live_records(&identifier, time)
            .into_iter()
            .cloned()
            .collect();
        let mut results = self.append(vec![entry])?;
        let (index, _) = results
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("no result".into())))?;
        Ok(QueryAnswer { index, records })
    }

    /// The signed checkpoint of the log as it is now; the origin is the key's name, and
    /// an extension line commits the member map of the state after these entries.
    pub fn checkpoint(&self) -> Result<Note, Error> {
        self.checkpoint_with(&MemberMap::of(&self.state))
    }

    fn checkpoint_with(&self, map: &MemberMap) -> Result<Note, Error> {
        self.healthy()?;
        Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.log.size(),
            root: self.log.root(),
            extensions: vec![map.commitment().extension_line()],
        }
        .sign(&self.signer)
    }

    /// A member's counts with their proof against the checkpoint of the log as it is
    /// now; `None` if it is not a member.
    pub fn count_proof(&self, member: &str) -> Result<Option<CountProof>, Error> {
        let map = MemberMap::of(&self.state);
        let Some((index, leaf, hashes)) = map.prove(member) else {
            return Ok(None);
        };
        Ok(Some(CountProof {
            leaf,
            index,
            members: map.commitment().members,
            hashes,
            checkpoint: self.checkpoint_with(&map)?.to_string(),
        }))
    }
}

/// Applies a batch of entries read from a log to a replayed state, checking their
/// request signatures on every core first: what opening a log and mirroring one do.
/// Stops at the first entry the rules refuse (the log holds an entry it should not).
pub fn replay_batch(state: &mut ConsortiumState, entries: &[Entry]) -> Result<(), Error> {
    let verified = verify_signatures(state, entries);
    for (entry, verified_key) in entries.iter().zip(verified) {
        state.apply_with_verified_key(entry, verified_key.as_ref())?;
    }
    Ok(())
}

/// Checks the request signatures of a batch on every core, against the members' keys
/// as they are before the batch. A request whose check fails here, or whose member's
/// key changes within the batch, is checked again by the rules in order.
fn verify_signatures(state: &ConsortiumState, entries: &[Entry]) -> Vec<Option<[u8; 32]>> {
    let check = |entry: &Entry| -> Option<[u8; 32]> {
        let (consortium, key) = state.request_key(entry)?;
        let request = entry.body.request()?;
        request.verify(consortium, &key).then_some(key)
    };
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 16);
    if threads == 1 || entries.len() < 64 {
        return entries.iter().map(check).collect();
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                // A panicking check thread only loses the shortcut: the rules check again.
                handle.join().unwrap_or_default()
            })
            .collect()
    })
}
