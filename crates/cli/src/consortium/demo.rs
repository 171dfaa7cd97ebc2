//! `tally consortium demo`: a small log's files (keys, two checkpoints, proofs, an entry)
//! to try `verify` on, and the signed publication the benchmarks reuse.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tally_consortium::{
    leaf_hash, normalise, Action, BlindingKey, Checkpoint, ConsistencyProof, Entry, EntryBody,
    Genesis, IdentifierKind, IdentifierOpening, InclusionProof, KeyType, MemberKey, MemoryLogStore,
    MerkleLog, Note, Quorum, RiskType, SignedRequest, SignerKey,
};
use tally_core::SplitMix64;

use super::keys::{random_seed, write_secret};

/// A member's signed publication about a phone number, as the operator logs it: the
/// member commits to the normalised number with a salt and signs; the operator checks
/// the opening and blinds.
pub(super) fn publication(
    consortium: &str,
    member: &SignerKey,
    blinding: &BlindingKey,
    sequence: u64,
    phone_number: &str,
    numbers: &mut SplitMix64,
    evidence_reference: &str,
) -> anyhow::Result<Entry> {
    let mut salt = [0u8; 16];
    salt[..8].copy_from_slice(&numbers.next_u64().to_be_bytes());
    salt[8..].copy_from_slice(&numbers.next_u64().to_be_bytes());
    let opening =
        IdentifierOpening::new(normalise(IdentifierKind::Phone, phone_number, None)?, salt);
    let commitment = opening.commitment();
    let action = Action::PublishRecord {
        identifier: commitment,
        risk_type: RiskType::Fraud,
        severity: 3,
        expires_at: DEMO_TIME + 365 * 86_400,
        evidence_reference: evidence_reference.to_owned(),
    };
    let request = SignedRequest::sign(consortium, member, sequence, DEMO_TIME, action);
    Ok(Entry {
        time: DEMO_TIME,
        body: EntryBody::Publication {
            request,
            identifier: blinding.blind_opening(&opening, &commitment)?,
        },
    })
}

const DEMO_ORIGIN: &str = "demo.tally.example/consortium";

pub(super) const DEMO_TIME: u64 = 1_800_000_000;

pub(super) fn demo(dir: &Path, entries: u64) -> anyhow::Result<ExitCode> {
    if entries < 2 {
        bail!("the demo needs at least 2 entries");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let operator = SignerKey::from_seed(DEMO_ORIGIN, KeyType::Ed25519, random_seed()?)?;
    let member = SignerKey::from_seed("demo-bank", KeyType::Ed25519, random_seed()?)?;
    write_secret(&dir.join("operator.key"), &operator.to_secret_string())?;
    std::fs::write(
        dir.join("operator.vkey"),
        format!("{}\n", operator.verifier()),
    )?;

    let mut log_entries = vec![Entry {
        time: DEMO_TIME,
        body: EntryBody::Genesis(Genesis {
            consortium: "demo".into(),
            founders: vec![MemberKey {
                name: member.name().to_owned(),
                public_key: member.verifier().public_key(),
            }],
            quorum: Quorum {
                numerator: 1,
                denominator: 2,
            },
            query_quota_per_day: 1000,
            proposal_lifetime_seconds: 7 * 86_400,
            request_skew_seconds_max: 300,
        }),
    }];
    let blinding = BlindingKey::new(1, random_seed()?);
    let mut numbers = SplitMix64::new(7);
    for sequence in 1..entries {
        let phone_number = format!("+86138{:08}", numbers.below(100_000_000));
        log_entries.push(publication(
            "demo",
            &member,
            &blinding,
            sequence,
            &phone_number,
            &mut numbers,
            &format!("demo case {sequence}"),
        )?);
    }
    let state = tally_consortium::ConsortiumState::replay(&log_entries)?;
    let encoded: Vec<Vec<u8>> = log_entries.iter().map(Entry::encode).collect();
    let leaves: Vec<_> = encoded.iter().map(|bytes| leaf_hash(bytes)).collect();
    let mut log = MerkleLog::open(MemoryLogStore::new())?;
    log.append_batch(&leaves)?;

    let old_size = entries / 2;
    for (size, file) in [
        (old_size, "checkpoint-old.txt"),
        (entries, "checkpoint-new.txt"),
    ] {
        let checkpoint = Checkpoint {
            origin: DEMO_ORIGIN.into(),
            size,
            root: log.root_at(size)?,
            extensions: vec![],
        };
        let note: Note = checkpoint.sign(&operator)?;
        std::fs::write(dir.join(file), note.to_string())?;
    }
    let index = entries / 3;
    let inclusion = InclusionProof {
        index,
        size: entries,
        leaf: leaves[index as usize],
        hashes: log.inclusion_proof(index, entries)?,
    };
    std::fs::write(dir.join("inclusion.proof"), inclusion.to_text())?;
    std::fs::write(dir.join("entry.bin"), &encoded[index as usize])?;
    let consistency = ConsistencyProof {
        old_size,
        new_size: entries,
        hashes: log.consistency_proof(old_size, entries)?,
    };
    std::fs::write(dir.join("consistency.proof"), consistency.to_text())?;
    println!(
        "wrote a demo log of {entries} entries ({} members, replayed) to {}",
        state.members().len(),
        dir.display()
    );
    println!(
        "try: tally consortium verify inclusion --log-key @{0}/operator.vkey --checkpoint {0}/checkpoint-new.txt --proof {0}/inclusion.proof --entry {0}/entry.bin",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
