//! The pure core of a mirror or witness: follow a log's signed checkpoints and raise an alarm on a fork.
//!
//! A follower remembers the latest checkpoint it verified. Each newer checkpoint must
//! come with a consistency proof from that one; two checkpoints of the same size with
//! different roots, or a proof that fails, are evidence that the log showed two
//! histories (a fork) or rewrote one. The follower can then cosign what it verified
//! (C2SP tlog-cosignature), which is what a witness does. Fetching is the caller's job.

use crate::checkpoint::{open_checkpoint, Checkpoint};
use crate::hash::Hash;
use crate::merkle::verify_consistency;
use crate::note::{Note, NoteSignature, SignerKey, VerifierKey};
use crate::Error;

/// What a follower concluded from a new checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The first checkpoint it saw: trusted on first use.
    First {
        /// Its size.
        size: u64,
    },
    /// The same checkpoint again.
    Unchanged,
    /// The log grew consistently.
    Advanced {
        /// Previous size.
        from: u64,
        /// New size.
        to: u64,
    },
    /// An older checkpoint than the latest (a stale cache); ignored.
    Stale {
        /// Its size.
        size: u64,
    },
}

/// Evidence of a fork: two signed checkpoints that cannot both be true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    /// The checkpoint the follower had verified before, as signed text.
    pub known: String,
    /// The conflicting checkpoint, as signed text.
    pub conflicting: String,
    /// Why they conflict.
    pub reason: String,
}

/// Follows one log.
#[derive(Debug, Clone)]
pub struct LogFollower {
    operator: VerifierKey,
    latest: Option<(Checkpoint, String)>,
}

impl LogFollower {
    /// A follower of the log signed by `operator`, starting from nothing (or from a
    /// checkpoint text it trusts from a previous run, with [`LogFollower::observe`]).
    pub fn new(operator: VerifierKey) -> Self {
        LogFollower {
            operator,
            latest: None,
        }
    }

    /// The operator's key the follower checks checkpoints against.
    pub fn operator(&self) -> &VerifierKey {
        &self.operator
    }

    /// The signed text of the latest verified checkpoint.
    pub fn latest_text(&self) -> Option<&str> {
        self.latest.as_ref().map(|(_, text)| text.as_str())
    }

    /// The latest verified checkpoint.
    pub fn latest(&self) -> Option<&Checkpoint> {
        self.latest.as_ref().map(|(checkpoint, _)| checkpoint)
    }

    /// Takes a signed checkpoint and the consistency proof from the latest verified size
    /// to its size (empty when there is no latest or the sizes are equal).
    ///
    /// Returns `Err(Ok(evidence))` on a fork, `Err(Err(error))` when the input is not a
    /// valid checkpoint of this log at all.
    pub fn observe(
        &mut self,
        signed_checkpoint: &str,
        proof: &[Hash],
    ) -> Result<Observation, Result<ForkEvidence, Error>> {
        let opened = open_checkpoint(signed_checkpoint, &self.operator, &[]).map_err(Err)?;
        let new = opened.checkpoint;
        let Some((known, known_text)) = &self.latest else {
            let size = new.size;
            self.latest = Some((new, signed_checkpoint.to_owned()));
            return Ok(Observation::First { size });
        };
        let fork = |reason: String| {
            Ok(ForkEvidence {
                known: known_text.clone(),
                conflicting: signed_checkpoint.to_owned(),
                reason,
            })
        };
        if new.size == known.size {
            if new.root != known.root {
                return Err(fork(format!("two roots for size {}", new.size)));
            }
            return Ok(Observation::Unchanged);
        }
        if new.size < known.size {
            return Ok(Observation::Stale { size: new.size });
        }
        if known.size == 0 {
            // Every tree extends the empty tree.
        } else if let Err(error) =
            verify_consistency(known.size, new.size, proof, &known.root, &new.root)
        {
            return Err(fork(format!(
                "size {} is not consistent with size {}: {error}",
                new.size, known.size
            )));
        }
        let from = known.size;
        let to = new.size;
        self.latest = Some((new, signed_checkpoint.to_owned()));
        Ok(Observation::Advanced { from, to })
    }

    /// A cosignature (tlog-cosignature/v1) of the latest verified checkpoint at
    /// `timestamp`, by a witness key.
    pub fn cosign(&self, witness: &SignerKey, timestamp: u64) -> Result<NoteSignature, Error> {
        let (_, text) = self
            .latest
            .as_ref()
            .ok_or_else(|| Error::OutOfRange("no checkpoint verified yet".into()))?;
        let note = Note::parse(text)?;
        witness.signature_line(&note.text, timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::note::KeyType;
    use crate::tiles::{MemoryLogStore, MerkleLog};

    fn signed(log: &MerkleLog<MemoryLogStore>, operator: &SignerKey, size: u64) -> String {
        let checkpoint = Checkpoint {
            origin: operator.name().to_owned(),
            size,
            root: log.root_at(size).expect("root"),
            extensions: vec![],
        };
        checkpoint.sign(operator).expect("sign").to_string()
    }

    #[test]
    fn a_follower_advances_on_consistent_checkpoints_and_alarms_on_a_fork() -> Result<(), Error> {
        let operator = SignerKey::from_seed("log.example/a", KeyType::Ed25519, [3; 32])?;
        let mut log = MerkleLog::open(MemoryLogStore::new())?;
        let leaves: Vec<Hash> = (0..100u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        log.append_batch(&leaves)?;
        let mut follower = LogFollower::new(operator.verifier());
        assert_eq!(
            follower.observe(&signed(&log, &operator, 40), &[]),
            Ok(Observation::First { size: 40 })
        );
        let proof = log.consistency_proof(40, 100)?;
        assert_eq!(
            follower.observe(&signed(&log, &operator, 100), &proof),
            Ok(Observation::Advanced { from: 40, to: 100 })
        );
        assert_eq!(
            follower.observe(&signed(&log, &operator, 40), &[]),
            Ok(Observation::Stale { size: 40 })
        );

        // The operator signs another history of the same size: a fork.
        let mut forked = MerkleLog::open(MemoryLogStore::new())?;
        let mut other = leaves.clone();
        other[7] = leaf_hash(b"rewritten");
        forked.append_batch(&other)?;
        let alarm = follower.observe(&signed(&forked, &operator, 100), &[]);
        assert!(matches!(alarm, Err(Ok(ref evidence)) if evidence.reason.contains("two roots")));

        // A bigger forked tree cannot prove consistency with what the follower saw.
        forked.append_batch(&other[..10])?;
        let proof = forked.consistency_proof(100, 110)?;
        let alarm = follower.observe(&signed(&forked, &operator, 110), &proof);
        assert!(matches!(alarm, Err(Ok(_))));

        // A witness cosigns the latest verified checkpoint.
        let witness = SignerKey::from_seed("witness.example/w", KeyType::CosignatureV1, [4; 32])?;
        let line = follower.cosign(&witness, 1_800_000_000)?;
        let mut note = Note::parse(&signed(&log, &operator, 100))?;
        note.add_signature(line);
        let opened = open_checkpoint(
            &note.to_string(),
            &operator.verifier(),
            &[witness.verifier()],
        )?;
        assert_eq!(opened.cosigners().len(), 1);
        Ok(())
    }
}
