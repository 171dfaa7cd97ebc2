//! `tally consortium`: key generation, offline verification of checkpoints and proofs, a demo log and a benchmark.
//!
//! Exit codes: 0 verified, 1 verification failed (the files are well formed but do not
//! prove what they claim: a bad signature, a proof that does not lead to the root),
//! 2 error (unreadable or malformed input).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use tally_consortium::{
    leaf_hash, normalise, open_checkpoint, Action, BlindingKey, Checkpoint, ConsistencyProof,
    Entry, EntryBody, Genesis, IdentifierKind, IdentifierOpening, InclusionProof, KeyType,
    LogFollower, MemberKey, MemoryLogStore, MerkleLog, Note, Observation, Operator, Quorum,
    RiskType, SignedRequest, SignerKey, VerifierKey,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Generate an Ed25519 key for a log operator, a member or a witness (cosigner).
    Keygen {
        /// Key name: the log origin for an operator, the institution name for a member.
        #[arg(long)]
        name: String,
        /// Make a witness cosignature (cosignature/v1) key instead of a note key.
        #[arg(long)]
        cosigner: bool,
        /// File to create for the secret signer key (refused if it exists; mode 0600).
        #[arg(long)]
        secret_file: PathBuf,
    },
    /// Verify a checkpoint, an inclusion proof or a consistency proof from files.
    #[command(subcommand)]
    Verify(Verify),
    /// One step of a file-based mirror: check a new checkpoint against the last one
    /// verified (kept in a state file) and alarm (exit 1) on a fork.
    Follow {
        /// Operator verifier key `name+id+key`, or `@file`.
        #[arg(long)]
        log_key: String,
        /// File holding the last verified signed checkpoint (created on first use).
        #[arg(long)]
        state: PathBuf,
        /// The new signed checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Consistency proof from the state's size to the new size.
        #[arg(long)]
        proof: Option<PathBuf>,
        /// Act as a witness: cosign the verified checkpoint with this cosigner secret
        /// key file and write it, cosigned, to `<checkpoint>.cosigned`.
        #[arg(long)]
        cosign_key: Option<PathBuf>,
    },
    /// Write a small demo log's files (keys, two checkpoints, proofs) to try `verify`.
    Demo {
        /// Directory to write into (created).
        #[arg(long)]
        dir: PathBuf,
        /// Entries in the demo log.
        #[arg(long, default_value_t = 1000)]
        entries: u64,
    },
    /// Measure in-memory append, proof generation and verification rates (release build).
    Bench {
        /// Entries to append.
        #[arg(long, default_value_t = 10_000_000)]
        entries: u64,
        /// Proofs to generate and verify per measurement.
        #[arg(long, default_value_t = 100_000)]
        proofs: u64,
        /// Signed requests to push through the operator (rules, signature check, log).
        #[arg(long, default_value_t = 100_000)]
        operator_entries: u64,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Verify {
    /// Check a signed checkpoint against the log operator's key (and witnesses' keys).
    Checkpoint {
        /// Operator verifier key `name+id+key`, or `@file`.
        #[arg(long)]
        log_key: String,
        /// Witness verifier keys (cosignature/v1) whose cosignatures must verify.
        #[arg(long)]
        witness: Vec<String>,
        /// The checkpoint file.
        checkpoint: PathBuf,
    },
    /// Check that an entry is in the log at a signed checkpoint.
    Inclusion {
        /// Operator verifier key `name+id+key`, or `@file`.
        #[arg(long)]
        log_key: String,
        /// The signed checkpoint the proof is for.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The inclusion proof file.
        #[arg(long)]
        proof: PathBuf,
        /// The entry's bytes; when given, its leaf hash must be the proof's.
        #[arg(long)]
        entry: Option<PathBuf>,
    },
    /// Check that a newer signed checkpoint extends an older one (no fork, no rewrite).
    Consistency {
        /// Operator verifier key `name+id+key`, or `@file`.
        #[arg(long)]
        log_key: String,
        /// The older checkpoint.
        #[arg(long)]
        old: PathBuf,
        /// The newer checkpoint.
        #[arg(long)]
        new: PathBuf,
        /// The consistency proof file.
        #[arg(long)]
        proof: PathBuf,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Keygen {
            name,
            cosigner,
            secret_file,
        } => keygen(&name, cosigner, &secret_file),
        Command::Verify(verify) => run_verify(verify),
        Command::Follow {
            log_key,
            state,
            checkpoint,
            proof,
            cosign_key,
        } => {
            let code = follow(&log_key, &state, &checkpoint, proof.as_deref())?;
            match cosign_key {
                Some(key) if code == ExitCode::SUCCESS => cosign(&log_key, &state, &key),
                _ => Ok(code),
            }
        }
        Command::Demo { dir, entries } => demo(&dir, entries),
        Command::Bench {
            entries,
            proofs,
            operator_entries,
        } => {
            bench(entries, proofs)?;
            bench_operator(operator_entries)
        }
    }
}

fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut seed))
        .context("reading 32 random bytes from /dev/urandom")?;
    Ok(seed)
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

fn keygen(name: &str, cosigner: bool, secret_file: &Path) -> anyhow::Result<ExitCode> {
    let key_type = if cosigner {
        KeyType::CosignatureV1
    } else {
        KeyType::Ed25519
    };
    let signer = SignerKey::from_seed(name, key_type, random_seed()?)?;
    write_secret(secret_file, &signer.to_secret_string())?;
    println!("{}", signer.verifier());
    Ok(ExitCode::SUCCESS)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn verifier_key(argument: &str) -> anyhow::Result<VerifierKey> {
    let text = match argument.strip_prefix('@') {
        Some(path) => read_text(Path::new(path))?,
        None => argument.to_owned(),
    };
    Ok(VerifierKey::parse(text.trim())?)
}

/// A verification failure (exit 1) as opposed to an error (exit 2).
fn failed(what: &str, error: &tally_consortium::Error) -> ExitCode {
    println!("FAILED: {what}: {error} [{}]", error.code());
    ExitCode::from(1)
}

fn run_verify(verify: Verify) -> anyhow::Result<ExitCode> {
    match verify {
        Verify::Checkpoint {
            log_key,
            witness,
            checkpoint,
        } => {
            let operator = verifier_key(&log_key)?;
            let witnesses = witness
                .iter()
                .map(|key| verifier_key(key))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let opened = match open_checkpoint(&read_text(&checkpoint)?, &operator, &witnesses) {
                Ok(opened) => opened,
                Err(error) => return Ok(failed("checkpoint", &error)),
            };
            let cosigners = opened.cosigners();
            for key in &witnesses {
                if !cosigners.iter().any(|(name, _)| name == key.name()) {
                    println!("FAILED: no valid cosignature from witness {}", key.name());
                    return Ok(ExitCode::from(1));
                }
            }
            let body = &opened.checkpoint;
            println!(
                "OK checkpoint {} size {} root {}",
                body.origin,
                body.size,
                body.root.to_base64()
            );
            for (name, time) in cosigners {
                println!("OK cosigned by {name} at {time}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Verify::Inclusion {
            log_key,
            checkpoint,
            proof,
            entry,
        } => {
            let operator = verifier_key(&log_key)?;
            let opened = match open_checkpoint(&read_text(&checkpoint)?, &operator, &[]) {
                Ok(opened) => opened,
                Err(error) => return Ok(failed("checkpoint", &error)),
            };
            let proof = InclusionProof::parse(&read_text(&proof)?)?;
            let entry_bytes = match entry {
                Some(path) => Some(
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                ),
                None => None,
            };
            if let Some(bytes) = &entry_bytes {
                if leaf_hash(bytes) != proof.leaf {
                    println!("FAILED: the entry's leaf hash is not the proof's leaf");
                    return Ok(ExitCode::from(1));
                }
            }
            if proof.size != opened.checkpoint.size {
                println!(
                    "FAILED: proof is for size {}, checkpoint has size {}",
                    proof.size, opened.checkpoint.size
                );
                return Ok(ExitCode::from(1));
            }
            if let Err(error) = proof.verify(&opened.checkpoint.root) {
                return Ok(failed("inclusion", &error));
            }
            println!(
                "OK entry {} is in {} at size {}",
                proof.index, opened.checkpoint.origin, proof.size
            );
            if let Some(bytes) = &entry_bytes {
                match Entry::decode(bytes) {
                    Ok(decoded) => {
                        let member = decoded
                            .body
                            .request()
                            .map(|request| request.member.as_str())
                            .unwrap_or("the operator");
                        println!(
                            "entry: {:?} by {member} at {}",
                            decoded.kind(),
                            decoded.time
                        );
                    }
                    Err(error) => println!("entry: not a consortium entry ({error})"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Verify::Consistency {
            log_key,
            old,
            new,
            proof,
        } => {
            let operator = verifier_key(&log_key)?;
            let mut checkpoints = Vec::new();
            for path in [&old, &new] {
                match open_checkpoint(&read_text(path)?, &operator, &[]) {
                    Ok(opened) => checkpoints.push(opened.checkpoint),
                    Err(error) => return Ok(failed(&path.display().to_string(), &error)),
                }
            }
            let (old, new) = (&checkpoints[0], &checkpoints[1]);
            let proof = ConsistencyProof::parse(&read_text(&proof)?)?;
            if (proof.old_size, proof.new_size) != (old.size, new.size) {
                println!(
                    "FAILED: proof is for sizes {} to {}, checkpoints have {} and {}",
                    proof.old_size, proof.new_size, old.size, new.size
                );
                return Ok(ExitCode::from(1));
            }
            if let Err(error) = proof.verify(&old.root, &new.root) {
                return Ok(failed(
                    "consistency (a fork or a rewritten history)",
                    &error,
                ));
            }
            println!(
                "OK {} at size {} extends size {}",
                new.origin, new.size, old.size
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn follow(
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
fn cosign(log_key: &str, state: &Path, key_file: &Path) -> anyhow::Result<ExitCode> {
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

/// A deterministic stream of numbers for the demo and the benchmark (not for keys).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// A member's signed publication about a phone number, as the operator logs it: the
/// member commits to the normalised number with a salt and signs; the operator checks
/// the opening and blinds.
fn publication(
    consortium: &str,
    member: &SignerKey,
    blinding: &BlindingKey,
    sequence: u64,
    phone_number: &str,
    numbers: &mut SplitMix,
    evidence_reference: &str,
) -> anyhow::Result<Entry> {
    let mut salt = [0u8; 16];
    salt[..8].copy_from_slice(&numbers.next().to_be_bytes());
    salt[8..].copy_from_slice(&numbers.next().to_be_bytes());
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
const DEMO_TIME: u64 = 1_800_000_000;

fn demo(dir: &Path, entries: u64) -> anyhow::Result<ExitCode> {
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
    let mut numbers = SplitMix(7);
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

fn rate(count: u64, started: Instant) -> (f64, f64) {
    let seconds = started.elapsed().as_secs_f64();
    (count as f64 / seconds.max(f64::MIN_POSITIVE), seconds)
}

fn bench(entries: u64, proofs: u64) -> anyhow::Result<ExitCode> {
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
        &mut SplitMix(1),
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
    let mut numbers = SplitMix(42);
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

/// Signed risk record publications through [`Operator::append`] in batches of 1000:
/// rules, Ed25519 request verification, canonical encoding, leaf hashing, tiles, all in
/// memory. Signing the requests (the members' work) is not measured.
fn bench_operator(count: u64) -> anyhow::Result<ExitCode> {
    const BATCH: usize = 1000;
    if count == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let member = SignerKey::from_seed("bench-bank", KeyType::Ed25519, [1; 32])?;
    let operator_key = SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
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
    let mut operator = Operator::found(
        MemoryLogStore::new(),
        operator_key,
        blinding.clone(),
        genesis,
        DEMO_TIME,
    )?;
    let mut numbers = SplitMix(9);
    let mut entries = Vec::with_capacity(count as usize);
    for sequence in 1..=count {
        let phone_number = format!("+86138{:08}", numbers.below(100_000_000));
        entries.push(publication(
            "bench",
            &member,
            &blinding,
            sequence,
            &phone_number,
            &mut numbers,
            "bench case",
        )?);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn verify_exit(verify: Verify) -> u8 {
        let code = run_verify(verify).expect("runs");
        if code == ExitCode::SUCCESS {
            0
        } else if code == ExitCode::from(1) {
            1
        } else {
            2
        }
    }

    #[test]
    fn demo_files_verify_and_tampering_fails() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path();
        demo(path, 300).expect("demo");
        let key = format!("@{}", path.join("operator.vkey").display());
        let checkpoint = |name: &str| path.join(name);
        let inclusion = |checkpoint_file: &str| Verify::Inclusion {
            log_key: key.clone(),
            checkpoint: checkpoint(checkpoint_file),
            proof: path.join("inclusion.proof"),
            entry: Some(path.join("entry.bin")),
        };
        assert_eq!(
            verify_exit(Verify::Checkpoint {
                log_key: key.clone(),
                witness: vec![],
                checkpoint: checkpoint("checkpoint-new.txt"),
            }),
            0
        );
        assert_eq!(verify_exit(inclusion("checkpoint-new.txt")), 0);
        // The proof is for the new size, not the old checkpoint.
        assert_eq!(verify_exit(inclusion("checkpoint-old.txt")), 1);
        assert_eq!(
            verify_exit(Verify::Consistency {
                log_key: key.clone(),
                old: checkpoint("checkpoint-old.txt"),
                new: checkpoint("checkpoint-new.txt"),
                proof: path.join("consistency.proof"),
            }),
            0
        );
        // A tampered entry and a tampered checkpoint fail.
        let mut entry = std::fs::read(path.join("entry.bin")).expect("entry");
        entry[20] ^= 1;
        std::fs::write(path.join("entry.bin"), entry).expect("write");
        assert_eq!(verify_exit(inclusion("checkpoint-new.txt")), 1);
        let text = std::fs::read_to_string(checkpoint("checkpoint-new.txt")).expect("read");
        let forged = text.replacen("\n300\n", "\n301\n", 1);
        std::fs::write(checkpoint("checkpoint-new.txt"), forged).expect("write");
        assert_eq!(
            verify_exit(Verify::Checkpoint {
                log_key: key,
                witness: vec![],
                checkpoint: checkpoint("checkpoint-new.txt"),
            }),
            1
        );
    }

    #[test]
    fn follow_advances_and_alarms_on_a_fork() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path();
        demo(path, 300).expect("demo");
        let key = format!("@{}", path.join("operator.vkey").display());
        let state = path.join("state.txt");
        let step = |checkpoint: &str, proof: Option<&str>| {
            let proof = proof.map(|name| path.join(name));
            let code =
                follow(&key, &state, &path.join(checkpoint), proof.as_deref()).expect("runs");
            code == ExitCode::SUCCESS
        };
        assert!(step("checkpoint-old.txt", None));
        assert!(step("checkpoint-new.txt", Some("consistency.proof")));
        // As a witness: cosign what was verified; the cosignature verifies.
        let witness_file = path.join("witness.key");
        let witness = SignerKey::from_seed("witness.example/w1", KeyType::CosignatureV1, [5; 32])
            .expect("witness");
        write_secret(&witness_file, &witness.to_secret_string()).expect("write");
        assert_eq!(
            cosign(&key, &state, &witness_file).expect("cosign"),
            ExitCode::SUCCESS
        );
        let cosigned = std::fs::read_to_string(state.with_extension("cosigned")).expect("read");
        let operator_key = verifier_key(&key).expect("key");
        let opened =
            open_checkpoint(&cosigned, &operator_key, &[witness.verifier()]).expect("open");
        assert_eq!(opened.cosigners().len(), 1);
        // Another history of the same size, signed by the same operator: a fork.
        let operator = SignerKey::parse(
            std::fs::read_to_string(path.join("operator.key"))
                .expect("key")
                .trim(),
        )
        .expect("parse");
        let forged = Checkpoint {
            origin: operator.name().to_owned(),
            size: 300,
            root: leaf_hash(b"another history"),
            extensions: vec![],
        };
        let note = forged.sign(&operator).expect("sign");
        std::fs::write(path.join("forked.txt"), note.to_string()).expect("write");
        assert!(!step("forked.txt", None));
    }

    #[test]
    fn keygen_writes_a_secret_that_matches_the_printed_key() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let secret = dir.path().join("member.key");
        keygen("bank-a", false, &secret).expect("keygen");
        let text = std::fs::read_to_string(&secret).expect("secret");
        let signer = SignerKey::parse(text.trim()).expect("parse");
        assert_eq!(signer.name(), "bank-a");
        // Refuses to overwrite.
        assert!(keygen("bank-a", false, &secret).is_err());
    }
}
