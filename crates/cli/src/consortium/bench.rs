//! `tally consortium bench`: in-memory append, proof, checkpoint and operator rates; the
//! durable benchmarks (a database, the service, a mirror over HTTP) are in [`durable`].

pub(super) mod durable;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use tally_consortium::{
    leaf_hash, open_checkpoint, BlindingKey, Checkpoint, Entry, Genesis, KeyType, MemberKey,
    MemoryLogStore, MerkleLog, Operator, Quorum, SignerKey,
};
use tally_core::SplitMix64;

use super::demo::{publication, DEMO_TIME};

fn rate(count: u64, started: Instant) -> (f64, f64) {
    let seconds = started.elapsed().as_secs_f64();
    (count as f64 / seconds.max(f64::MIN_POSITIVE), seconds)
}

pub(super) fn bench(entries: u64, proofs: u64) -> anyhow::Result<ExitCode> {
    const BATCH: usize = 1000;
    if entries < 2 || proofs == 0 {
        bail!("need at least 2 entries and 1 proof");
    }
    // One realistic entry (a signed risk record publication); each appended entry is a
    // copy whose 8-byte time field holds a counter, so every leaf differs. Signing is
    // not measured.
    let member = SignerKey::from_seed("bench-bank", KeyType::Ed25519, [1; 32])?;
    let blinding = BlindingKey::new(1, [3; 32]);
    let template = publication(
        "bench",
        &member,
        &blinding,
        1,
        "+8613800138000",
        &mut SplitMix64::new(1),
        "bench case",
    )?
    .encode();
    println!(
        "entry size {} bytes, batches of {BATCH}, {entries} entries",
        template.len()
    );

    let mut log = MerkleLog::open(MemoryLogStore::new())?;
    let started = Instant::now();
    let mut appended = 0u64;
    let mut leaves = Vec::with_capacity(BATCH);
    let mut entry = template.clone();
    while appended < entries {
        leaves.clear();
        let count = (entries - appended).min(BATCH as u64);
        for offset in 0..count {
            let counter = (appended + offset).to_be_bytes();
            entry[1..9].copy_from_slice(&counter);
            leaves.push(leaf_hash(&entry));
        }
        log.append_batch(&leaves)?;
        appended += count;
    }
    let (per_second, seconds) = rate(entries, started);
    println!(
        "append (leaf hash + tree + tiles, in memory): {per_second:.0} entries/s ({seconds:.2} s)"
    );

    let size = log.size();
    let root = log.root();
    let mut numbers = SplitMix64::new(42);
    let indexes: Vec<u64> = (0..proofs).map(|_| numbers.below(size)).collect();
    let started = Instant::now();
    let mut generated = Vec::with_capacity(proofs as usize);
    for index in &indexes {
        generated.push(log.inclusion_proof(*index, size)?);
    }
    let (per_second, seconds) = rate(proofs, started);
    println!("inclusion proof generation at size {size}: {per_second:.0}/s ({seconds:.2} s)");

    let leaf_hashes = indexes
        .iter()
        .map(|index| log.leaf_hash(*index))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    for ((index, proof), leaf) in indexes.iter().zip(&generated).zip(&leaf_hashes) {
        tally_consortium::verify_inclusion(*index, size, leaf, proof, &root)?;
    }
    let (per_second, seconds) = rate(proofs, started);
    println!("inclusion proof verification: {per_second:.0}/s ({seconds:.2} s)");

    let old_sizes: Vec<u64> = (0..proofs).map(|_| 1 + numbers.below(size - 1)).collect();
    let started = Instant::now();
    let mut consistency = Vec::with_capacity(proofs as usize);
    for old_size in &old_sizes {
        consistency.push(log.consistency_proof(*old_size, size)?);
    }
    let (per_second, seconds) = rate(proofs, started);
    println!("consistency proof generation to size {size}: {per_second:.0}/s ({seconds:.2} s)");

    let old_roots = old_sizes
        .iter()
        .map(|old_size| log.root_at(*old_size))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    for ((old_size, proof), old_root) in old_sizes.iter().zip(&consistency).zip(&old_roots) {
        tally_consortium::verify_consistency(*old_size, size, proof, old_root, &root)?;
    }
    let (per_second, seconds) = rate(proofs, started);
    println!("consistency proof verification: {per_second:.0}/s ({seconds:.2} s)");

    let operator = SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
    let checkpoint = Checkpoint {
        origin: "bench.tally.example/log".into(),
        size,
        root,
        extensions: vec![],
    };
    let signatures = proofs.min(10_000);
    let started = Instant::now();
    let mut text = String::new();
    for _ in 0..signatures {
        text = checkpoint.sign(&operator)?.to_string();
    }
    let (per_second, seconds) = rate(signatures, started);
    println!("checkpoint signing: {per_second:.0}/s ({seconds:.2} s)");
    let verifier = operator.verifier();
    let started = Instant::now();
    for _ in 0..signatures {
        open_checkpoint(&text, &verifier, &[])?;
    }
    let (per_second, seconds) = rate(signatures, started);
    println!("checkpoint verification: {per_second:.0}/s ({seconds:.2} s)");
    println!("tiles stored: {}", log.store().tile_count());
    Ok(ExitCode::SUCCESS)
}

/// The consortium the operator benchmarks append to, from fixed seeds: one founding
/// member, the operator's key, the genesis and the blinding key.
pub(super) struct BenchConsortium {
    pub member: SignerKey,
    pub operator_key: SignerKey,
    pub genesis: Genesis,
    pub blinding: BlindingKey,
}

impl BenchConsortium {
    pub fn new() -> anyhow::Result<BenchConsortium> {
        let member = SignerKey::from_seed("bench-bank", KeyType::Ed25519, [1; 32])?;
        let operator_key =
            SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
        let genesis = Genesis {
            consortium: "bench".into(),
            founders: vec![MemberKey {
                name: member.name().to_owned(),
                public_key: member.verifier().public_key(),
            }],
            quorum: Quorum {
                numerator: 1,
                denominator: 2,
            },
            query_quota_per_day: 1000,
            proposal_lifetime_seconds: 86_400,
            request_skew_seconds_max: 300,
        };
        let blinding = BlindingKey::new(1, [3; 32]);
        Ok(BenchConsortium {
            member,
            operator_key,
            genesis,
            blinding,
        })
    }
}

/// `count` risk record publications signed by the benchmark member, the same on every run
/// (seeded).
pub(super) fn bench_publications(
    member: &SignerKey,
    blinding: &BlindingKey,
    count: u64,
) -> anyhow::Result<Vec<Entry>> {
    let mut numbers = SplitMix64::new(9);
    let mut entries = Vec::with_capacity(count as usize);
    for sequence in 1..=count {
        let phone_number = format!("+86138{:08}", numbers.below(100_000_000));
        entries.push(publication(
            "bench",
            member,
            blinding,
            sequence,
            &phone_number,
            &mut numbers,
            "bench case",
        )?);
    }
    Ok(entries)
}

/// Signed risk record publications through [`Operator::append`] in batches of 1000:
/// rules, Ed25519 request verification, canonical encoding, leaf hashing, tiles, all in
/// memory. Signing the requests (the members' work) is not measured.
pub(super) fn bench_operator(count: u64) -> anyhow::Result<ExitCode> {
    const BATCH: usize = 1000;
    if count == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let BenchConsortium {
        member,
        operator_key,
        genesis,
        blinding,
    } = BenchConsortium::new()?;
    let mut operator = Operator::found(
        MemoryLogStore::new(),
        operator_key,
        blinding.clone(),
        genesis,
        DEMO_TIME,
    )?;
    let entries = bench_publications(&member, &blinding, count)?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for entry in entries {
        batch.push(entry);
        if batch.len() == BATCH {
            let results = operator.append(std::mem::take(&mut batch))?;
            if results.iter().any(Result::is_err) {
                bail!("the operator refused a benchmark entry");
            }
        }
    }
    if !batch.is_empty() {
        operator.append(batch)?;
    }
    let (per_second, seconds) = rate(count, started);
    println!(
        "operator append (rules + request signature checks on all cores + log, in memory): {per_second:.0} entries/s ({seconds:.2} s)"
    );
    Ok(ExitCode::SUCCESS)
}
