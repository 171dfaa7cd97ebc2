//! `tally consortium follow`: a mirror or witness that checks each new checkpoint against
//! the last one verified, from files (one step) or following a running log, where every
//! entry is fetched, the tree recomputed and the rules replayed; a fork or an edit is an
//! alarm.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tally_consortium::{
    check_member_map, decode_entry_range, leaf_hash, open_checkpoint, replay_batch,
    ConsistencyProof, ConsortiumState, Entry, Hash, LogFollower, MemoryLogStore, MerkleLog, Note,
    Observation, SignerKey,
};

use super::client::{base, get_bytes, get_json, get_text, hashes};
use super::keys::{random_seed, verifier_key};
use super::read_text;
use super::verify::failed;

pub(super) fn follow(
    log_key: &str,
    state: &Path,
    checkpoint: &Path,
    proof: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let operator = verifier_key(log_key)?;
    let mut follower = LogFollower::new(operator);
    if state.exists() {
        if let Err(error) = follower.observe(&read_text(state)?, &[]) {
            bail!(
                "the state file {} is not a valid checkpoint: {error:?}",
                state.display()
            );
        }
    }
    let text = read_text(checkpoint)?;
    let hashes = match proof {
        Some(path) => {
            let proof = ConsistencyProof::parse(&read_text(path)?)?;
            let known = follower.latest().map(|latest| latest.size).unwrap_or(0);
            if proof.old_size != known {
                bail!(
                    "the proof starts at size {}, the state is at size {known}",
                    proof.old_size
                );
            }
            proof.hashes
        }
        None => Vec::new(),
    };
    match follower.observe(&text, &hashes) {
        Ok(observation) => {
            if matches!(
                observation,
                Observation::First { .. } | Observation::Advanced { .. }
            ) {
                std::fs::write(state, &text)
                    .with_context(|| format!("writing {}", state.display()))?;
            }
            println!("OK {observation:?}");
            Ok(ExitCode::SUCCESS)
        }
        Err(Ok(evidence)) => {
            println!("FORK: {}", evidence.reason);
            println!("--- known checkpoint ---\n{}", evidence.known);
            println!("--- conflicting checkpoint ---\n{}", evidence.conflicting);
            Ok(ExitCode::from(1))
        }
        Err(Err(error)) => Ok(failed("checkpoint", &error)),
    }
}

/// Cosigns the checkpoint in the state file (just verified by [`follow`]) and writes it
/// with the cosignature next to the state file.
pub(super) fn cosign(log_key: &str, state: &Path, key_file: &Path) -> anyhow::Result<ExitCode> {
    let witness = SignerKey::parse(read_text(key_file)?.trim())?;
    let mut follower = LogFollower::new(verifier_key(log_key)?);
    let text = read_text(state)?;
    if let Err(error) = follower.observe(&text, &[]) {
        bail!("the state file is not a valid checkpoint: {error:?}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let mut note = Note::parse(&text)?;
    note.add_signature(follower.cosign(&witness, now)?);
    let path = state.with_extension("cosigned");
    std::fs::write(&path, note.to_string())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("OK cosigned as {} into {}", witness.name(), path.display());
    Ok(ExitCode::SUCCESS)
}

/// Why a mirror step alarms.
pub(super) enum Alarm {
    Fork(String),
    Tampered(String),
}

/// Entries a mirror asks for per request (the log's range route caps it too).
pub(super) const ENTRIES_PER_REQUEST: u64 = 1000;

/// Entries replayed at once (their request signatures are checked on every core).
const REPLAY_BATCH: usize = 10_000;

/// The mirror: its own copy of every leaf, the state replayed from every entry, and
/// the last verified checkpoint.
pub(super) struct Mirror {
    http: reqwest::Client,
    pub(super) root_url: String,
    follower: LogFollower,
    log: MerkleLog<MemoryLogStore>,
    state: ConsortiumState,
    checked: u64,
    /// 1 fetches each entry by its own request (`/entries/{index}`), as mirrors did
    /// before the range route; measured by `tally consortium bench --durable`.
    pub(super) entries_per_request: u64,
}

impl Mirror {
    pub(super) fn new(url: &str, log_key: &str) -> anyhow::Result<Self> {
        Ok(Mirror {
            http: reqwest::Client::new(),
            root_url: base(url),
            follower: LogFollower::new(verifier_key(log_key)?),
            log: MerkleLog::open(MemoryLogStore::new())?,
            state: ConsortiumState::new(),
            checked: 0,
            entries_per_request: ENTRIES_PER_REQUEST,
        })
    }

    /// Entries `start..` (at most `entries_per_request`, never past `end`).
    async fn fetch(&self, start: u64, end: u64) -> anyhow::Result<Vec<Vec<u8>>> {
        if self.entries_per_request <= 1 {
            let url = format!("{}/entries/{start}", self.root_url);
            return Ok(vec![get_bytes(&self.http, &url).await?]);
        }
        let count = (end - start).min(self.entries_per_request);
        let url = format!("{}/entries?start={start}&count={count}", self.root_url);
        let entries = decode_entry_range(&get_bytes(&self.http, &url).await?)?;
        if entries.is_empty() || entries.len() as u64 > count {
            bail!(
                "asked for {count} entries from {start}, got {}",
                entries.len()
            );
        }
        Ok(entries)
    }

    /// Adds fetched entries to the mirror's tree and replays them through the rules;
    /// an entry that does not decode or that the rules refuse is an alarm.
    fn absorb(&mut self, entries: &[Vec<u8>]) -> anyhow::Result<Result<(), Alarm>> {
        let first = self.log.size();
        let leaves: Vec<Hash> = entries.iter().map(|bytes| leaf_hash(bytes)).collect();
        self.log.append_batch(&leaves)?;
        let mut decoded = Vec::with_capacity(entries.len());
        for (offset, bytes) in entries.iter().enumerate() {
            match Entry::decode(bytes) {
                Ok(entry) => decoded.push(entry),
                Err(error) => {
                    return Ok(Err(Alarm::Tampered(format!(
                        "entry {} is not a consortium entry: {error}",
                        first + offset as u64
                    ))))
                }
            }
        }
        if let Err(error) = replay_batch(&mut self.state, &decoded) {
            return Ok(Err(Alarm::Tampered(format!(
                "the log holds entry {} that its rules refuse: {error}",
                self.state.next_index()
            ))));
        }
        Ok(Ok(()))
    }

    /// One step: the new checkpoint must be signed, consistent with the last one,
    /// and its root must be the root of the entries the log serves; the member map
    /// it commits must be the one those entries give; the proofs the log serves for
    /// new entries must be the ones the mirror computes.
    pub(super) async fn step(&mut self) -> anyhow::Result<Result<Observation, Alarm>> {
        let text = get_text(&self.http, &format!("{}/checkpoint", self.root_url)).await?;
        let known = self
            .follower
            .latest()
            .map(|latest| latest.size)
            .unwrap_or(0);
        let opened = match open_checkpoint(&text, self.follower_key(), &[]) {
            Ok(opened) => opened.checkpoint,
            Err(error) => bail!("the log's checkpoint does not verify: {error}"),
        };
        let proof = if known > 0 && opened.size > known {
            hashes(
                &get_json(
                    &self.http,
                    &format!(
                        "{}/proofs/consistency?old={known}&new={}",
                        self.root_url, opened.size
                    ),
                )
                .await?["hashes"],
            )?
        } else {
            Vec::new()
        };
        let observation = match self.follower.observe(&text, &proof) {
            Ok(observation) => observation,
            Err(Ok(evidence)) => {
                return Ok(Err(Alarm::Fork(format!(
                    "{}\n--- known checkpoint ---\n{}--- conflicting checkpoint ---\n{}",
                    evidence.reason, evidence.known, evidence.conflicting
                ))))
            }
            Err(Err(error)) => bail!("the log's checkpoint does not verify: {error}"),
        };
        // Fetch the new entries, recompute the tree and replay the rules.
        let size = opened.size;
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut next = self.log.size();
        while next < size {
            let entries = self.fetch(next, size).await?;
            next += entries.len() as u64;
            pending.extend(entries);
            if pending.len() >= REPLAY_BATCH || next >= size {
                if let Err(alarm) = self.absorb(&std::mem::take(&mut pending))? {
                    return Ok(Err(alarm));
                }
            }
        }
        if size > 0 && self.log.root_at(size)? != opened.root {
            return Ok(Err(Alarm::Tampered(format!(
                "the entries the log serves do not have the signed root of size {size}"
            ))));
        }
        if self.state.next_index() == size {
            if let Err(error) = check_member_map(&self.state, &opened) {
                return Ok(Err(Alarm::Tampered(format!(
                    "the checkpoint's member counts are not the log's: {error}"
                ))));
            }
        }
        // Spot-check the proofs the log serves against our own: the new entries and a
        // sample of old ones.
        let mut indexes: Vec<u64> = (self.checked..size).step_by(97).collect();
        indexes.extend([size.saturating_sub(1), self.checked.saturating_sub(1)]);
        let seed = u64::from_le_bytes(random_seed()?[..8].try_into().unwrap_or([0; 8]));
        if size > 0 {
            indexes.extend((0..4).map(|offset| seed.wrapping_add(offset * 7919) % size));
        }
        for index in indexes.into_iter().filter(|index| *index < size) {
            let served = get_json(
                &self.http,
                &format!(
                    "{}/proofs/inclusion?index={index}&size={size}",
                    self.root_url
                ),
            )
            .await?;
            if hashes(&served["hashes"])? != self.log.inclusion_proof(index, size)? {
                return Ok(Err(Alarm::Tampered(format!(
                    "the log serves a wrong inclusion proof for entry {index} at size {size} \
                     (a stored hash was edited)"
                ))));
            }
        }
        self.checked = size;
        Ok(Ok(observation))
    }

    fn follower_key(&self) -> &tally_consortium::VerifierKey {
        self.follower.operator()
    }
}

pub(super) async fn mirror(
    url: &str,
    log_key: &str,
    state: &Path,
    once: bool,
    interval_seconds: u64,
) -> anyhow::Result<ExitCode> {
    let mut mirror = Mirror::new(url, log_key)?;
    if state.exists() {
        if let Err(error) = mirror.follower.observe(&read_text(state)?, &[]) {
            bail!(
                "the state file {} is not a valid checkpoint: {error:?}",
                state.display()
            );
        }
    }
    loop {
        match mirror.step().await? {
            Ok(observation) => {
                if matches!(
                    observation,
                    Observation::First { .. } | Observation::Advanced { .. }
                ) {
                    if let Some(verified) = mirror.follower.latest_text() {
                        std::fs::write(state, verified)
                            .with_context(|| format!("writing {}", state.display()))?;
                    }
                }
                println!("OK {observation:?}");
            }
            Err(Alarm::Fork(detail)) => {
                println!("FORK: {detail}");
                return Ok(ExitCode::from(1));
            }
            Err(Alarm::Tampered(detail)) => {
                println!("TAMPERED: {detail}");
                return Ok(ExitCode::from(1));
            }
        }
        if once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_secs(interval_seconds.max(1))).await;
    }
}
