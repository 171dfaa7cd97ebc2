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
    CountProof, Entry, EntryBody, Genesis, IdentifierKind, IdentifierOpening, InclusionProof,
    KeyType, LogFollower, MemberKey, MemoryLogStore, MerkleLog, Note, Observation, Operator,
    Quorum, RiskType, SignedRequest, SignerKey, VerifierKey,
};
use tally_core::SplitMix64;

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
    /// Verify a checkpoint, an inclusion proof or a consistency proof from files, or
    /// (`--url`) a running log's checkpoint, an entry's inclusion and consistency with an
    /// older checkpoint.
    Verify(VerifyArgs),
    /// Run the consortium log service (its own listener) on the Tally database.
    Serve(ServeArgs),
    /// A member's client: sign requests with the member key and send them to a log.
    Client(ClientArgs),
    /// Generate the consortium's identifier blinding key (held by the operator only).
    BlindingKeygen {
        /// File to create for the key (refused if it exists; mode 0600).
        #[arg(long)]
        secret_file: PathBuf,
    },
    /// A mirror: check a new checkpoint against the last one verified (kept in a state
    /// file) and alarm (exit 1) on a fork. From files (one step), or following a running
    /// log (`--url`): every new entry is fetched and the tree recomputed, so an edited
    /// entry, an edited hash or a fork is an alarm.
    Follow {
        /// Base URL of a running log, e.g. http://127.0.0.1:8081.
        #[arg(long, conflicts_with_all = ["checkpoint", "proof"])]
        url: Option<String>,
        /// With --url: check once and stop, instead of polling.
        #[arg(long)]
        once: bool,
        /// With --url: seconds between polls.
        #[arg(long, default_value_t = 10)]
        interval_seconds: u64,
        /// Operator verifier key `name+id+key`, or `@file`.
        #[arg(long)]
        log_key: String,
        /// File holding the last verified signed checkpoint (created on first use).
        #[arg(long)]
        state: PathBuf,
        /// The new signed checkpoint.
        #[arg(long, required_unless_present = "url")]
        checkpoint: Option<PathBuf>,
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
        /// Store the log in a database (durable commits) instead of memory.
        #[arg(long)]
        durable: bool,
        /// With --durable: the database (default: a new SQLite file under /var/tmp,
        /// deleted afterwards).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Entries per commit.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// With --durable: only fill a log with --operator-entries signed requests and
        /// measure a mirror following it over HTTP, one entry per request and in ranges.
        #[arg(long, requires = "durable")]
        follow: bool,
    },
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct VerifyArgs {
    #[command(subcommand)]
    command: Option<Verify>,
    /// Base URL of a running log, e.g. http://127.0.0.1:8081.
    #[arg(long)]
    url: Option<String>,
    /// Operator verifier key `name+id+key`, or `@file`.
    #[arg(long)]
    log_key: Option<String>,
    /// With --url: also check that this entry is in the log.
    #[arg(long)]
    index: Option<u64>,
    /// With --url: an older signed checkpoint file the log must extend.
    #[arg(long)]
    old: Option<PathBuf>,
    /// With --url: also fetch and check this member's query count proof.
    #[arg(long)]
    member: Option<String>,
    /// With --member: write the count proof to this file (for `verify count`).
    #[arg(long, requires = "member")]
    count_proof_out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: crate::serve::ConfigArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// The operator's secret signer key file (`tally consortium keygen`); its name is
    /// the log's origin.
    #[arg(long)]
    operator_key: PathBuf,
    /// The blinding key file (`tally consortium blinding-keygen`).
    #[arg(long)]
    blinding_key: PathBuf,
    /// Genesis file (JSON) to found the log when the database holds none.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Base URL of the log, e.g. http://127.0.0.1:8081.
    #[arg(long)]
    url: String,
    /// The member's secret signer key file; its name is the member's name.
    #[arg(long)]
    key: PathBuf,
    /// The consortium's name (requests are signed for it).
    #[arg(long)]
    consortium: String,
    #[command(subcommand)]
    action: ClientAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClientAction {
    /// Publish a risk record about an identifier (sent with a fresh salt, blinded by the log).
    Publish {
        /// phone, national_id, card, device or account.
        #[arg(long)]
        kind: String,
        /// The identifier.
        #[arg(long)]
        identifier: String,
        /// fraud, stolen_account, money_mule, identity_theft, synthetic_identity or other.
        #[arg(long)]
        risk_type: String,
        /// 1 (low) to 5 (high).
        #[arg(long)]
        severity: u8,
        /// Days until the record stops being live.
        #[arg(long, default_value_t = 365)]
        expires_in_days: u64,
        /// The member's own evidence reference (a case number).
        #[arg(long)]
        evidence: String,
    },
    /// Retract one of the member's records, named by its log index.
    Retract {
        #[arg(long)]
        record: u64,
        #[arg(long)]
        reason: String,
    },
    /// Ask for live records about an identifier (logged and counted).
    Query {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        identifier: String,
    },
    /// Propose admitting a member: its verifier key `name+id+key`, or `@file`.
    ProposeAdmission {
        #[arg(long)]
        candidate: String,
    },
    /// Propose suspending a member.
    ProposeSuspension {
        #[arg(long)]
        member: String,
        #[arg(long)]
        reason: String,
    },
    /// Propose a member's daily query quota.
    ProposeQuota {
        #[arg(long)]
        member: String,
        #[arg(long)]
        queries_per_day: u32,
    },
    /// Approve an open proposal, named by its log index.
    Approve {
        #[arg(long)]
        proposal: u64,
    },
    /// List the members.
    Members,
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
    /// Check a member's query count proof (`GET /v1/consortium/members/{name}/query-count`,
    /// field `proof`): the checkpoint it carries is signed by the operator and commits a
    /// member map holding the member's leaf.
    Count {
        /// Operator verifier key `name+id+key`, or `@file`.
        #[arg(long)]
        log_key: String,
        /// The count proof file.
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
        Command::Verify(arguments) => match arguments.command {
            Some(verify) => run_verify(verify),
            None => {
                let (Some(url), Some(log_key)) = (arguments.url, arguments.log_key) else {
                    bail!("give a subcommand, or --url and --log-key");
                };
                block_on(remote::verify(
                    &url,
                    &log_key,
                    arguments.index,
                    arguments.old.as_deref(),
                    arguments
                        .member
                        .as_deref()
                        .map(|member| (member, arguments.count_proof_out.as_deref())),
                ))
            }
        },
        Command::Serve(arguments) => block_on(remote::serve(arguments)),
        Command::Client(arguments) => block_on(remote::client(arguments)),
        Command::BlindingKeygen { secret_file } => {
            write_secret(&secret_file, &format!("1 {}", hex::encode(random_seed()?)))?;
            println!("wrote blinding key epoch 1 to {}", secret_file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Follow {
            url: Some(url),
            once,
            interval_seconds,
            log_key,
            state,
            ..
        } => block_on(remote::mirror(
            &url,
            &log_key,
            &state,
            once,
            interval_seconds,
        )),
        Command::Follow {
            url: None,
            log_key,
            state,
            checkpoint,
            proof,
            cosign_key,
            ..
        } => {
            let Some(checkpoint) = checkpoint else {
                bail!("--checkpoint or --url is needed");
            };
            let code = follow(&log_key, &state, &checkpoint, proof.as_deref())?;
            match cosign_key {
                Some(key) if code == ExitCode::SUCCESS => cosign(&log_key, &state, &key),
                _ => Ok(code),
            }
        }
        Command::Demo { dir, entries } => demo(&dir, entries),
        Command::Bench {
            operator_entries,
            durable: true,
            database_url,
            batch,
            follow: true,
            ..
        } => block_on(durable::bench_follow(operator_entries, database_url, batch)),
        Command::Bench {
            entries,
            proofs,
            operator_entries,
            durable: true,
            database_url,
            batch,
            ..
        } => block_on(durable::bench(
            entries,
            proofs,
            operator_entries,
            database_url,
            batch,
        )),
        Command::Bench {
            entries,
            proofs,
            operator_entries,
            ..
        } => {
            bench(entries, proofs)?;
            bench_operator(operator_entries)
        }
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
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
        Verify::Count { log_key, proof } => {
            let operator = verifier_key(&log_key)?;
            let proof = CountProof::parse(&read_text(&proof)?)?;
            Ok(check_count_proof(&proof, &operator))
        }
    }
}

/// Verifies a count proof and prints what it proves.
fn check_count_proof(proof: &CountProof, operator: &VerifierKey) -> ExitCode {
    match proof.verify(operator, &[]) {
        Ok(opened) => {
            println!(
                "OK {} ({:?}) had {} queries and {} publications logged in {} at size {}",
                proof.leaf.member,
                proof.leaf.status,
                proof.leaf.queries,
                proof.leaf.publications,
                opened.checkpoint.origin,
                opened.checkpoint.size
            );
            ExitCode::SUCCESS
        }
        Err(error) => failed("count proof", &error),
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

/// A member's signed publication about a phone number, as the operator logs it: the
/// member commits to the normalised number with a salt and signs; the operator checks
/// the opening and blinds.
fn publication(
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
    let mut numbers = SplitMix64::new(9);
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

mod remote {
    //! The consortium log over HTTP: `serve`, the member client, `verify --url` and the
    //! mirror (`follow --url`).

    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::Arc;

    use anyhow::{bail, Context};
    use base64::Engine;
    use serde_json::{json, Value};
    use tally_consortium::{
        check_member_map, leaf_hash, normalise, open_checkpoint, replay_batch, verify_consistency,
        verify_inclusion, Action, BlindingKey, ConsortiumState, CountProof, Entry, Genesis, Hash,
        IdentifierKind, IdentifierOpening, LogFollower, MemberKey, MemoryLogStore, MerkleLog,
        Observation, Quorum, RiskType, SignedRequest, SignerKey,
    };
    use tally_core::{Clock, SystemClock};
    use tally_server::routes::consortium::ConsortiumAppState;
    use tally_service::consortium::{ConsortiumConfig, ConsortiumLog};
    use tally_store::Database;

    use super::{random_seed, read_text, verifier_key, ClientAction, ClientArgs, ServeArgs};

    /// The genesis file: the consortium's name, founders' verifier keys and rules.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct GenesisFile {
        consortium: String,
        /// Verifier keys `name+id+key`.
        founders: Vec<String>,
        /// `[numerator, denominator]`.
        quorum: [u32; 2],
        query_quota_per_day: u32,
        proposal_lifetime_seconds: u64,
        request_skew_seconds_max: u64,
    }

    fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
        let file: GenesisFile = serde_json::from_str(&read_text(path)?)
            .with_context(|| format!("parsing the genesis file {}", path.display()))?;
        let founders = file
            .founders
            .iter()
            .map(|text| {
                let key = verifier_key(text)?;
                Ok(MemberKey {
                    name: key.name().to_owned(),
                    public_key: key.public_key(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Genesis {
            consortium: file.consortium,
            founders,
            quorum: Quorum {
                numerator: file.quorum[0],
                denominator: file.quorum[1],
            },
            query_quota_per_day: file.query_quota_per_day,
            proposal_lifetime_seconds: file.proposal_lifetime_seconds,
            request_skew_seconds_max: file.request_skew_seconds_max,
        })
    }

    pub(super) fn read_blinding_key(path: &Path) -> anyhow::Result<BlindingKey> {
        let text = read_text(path)?;
        let mut parts = text.split_whitespace();
        let epoch: u32 = parts
            .next()
            .and_then(|epoch| epoch.parse().ok())
            .context("the blinding key file starts with its epoch")?;
        let key = parts.next().context("the blinding key file holds a key")?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(key, &mut bytes).context("the blinding key is 32 bytes in hex")?;
        Ok(BlindingKey::new(epoch, bytes))
    }

    pub async fn serve(arguments: ServeArgs) -> anyhow::Result<ExitCode> {
        let config = arguments.config.load()?;
        let signer = SignerKey::parse(read_text(&arguments.operator_key)?.trim())?;
        let blinding = read_blinding_key(&arguments.blinding_key)?;
        let genesis = match &arguments.genesis {
            Some(path) => Some(read_genesis(path)?),
            None => None,
        };
        let address: std::net::SocketAddr = arguments
            .listen
            .parse()
            .with_context(|| format!("{:?} is not an address", arguments.listen))?;
        let database = Database::connect(config.database.url.expose()).await?;
        database.migrate().await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (log, thread) = ConsortiumLog::start(
            &database,
            clock,
            ConsortiumConfig::new(signer, blinding, genesis),
        )
        .await
        .context("opening the consortium log")?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        eprintln!(
            "tally consortium log is serving on http://{address} ({:?})",
            database.backend()
        );
        axum::serve(
            listener,
            tally_server::consortium_app(ConsortiumAppState::new(log)),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        // Every handle is gone with the router: the operator thread finishes its batch.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        database.close().await;
        Ok(ExitCode::SUCCESS)
    }

    fn base(url: &str) -> String {
        format!("{}/v1/consortium", url.trim_end_matches('/'))
    }

    async fn get_text(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
        let response = http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {text}");
        }
        Ok(text)
    }

    async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&get_text(http, url).await?)?)
    }

    async fn get_bytes(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
        let response = http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let bytes = response.bytes().await?.to_vec();
        if !status.is_success() {
            bail!("GET {url}: {status}");
        }
        Ok(bytes)
    }

    fn hashes(value: &Value) -> anyhow::Result<Vec<Hash>> {
        value
            .as_array()
            .context("a list of hashes")?
            .iter()
            .map(|hash| Ok(Hash::from_base64(hash.as_str().context("a hash")?)?))
            .collect()
    }

    fn now() -> anyhow::Result<u64> {
        Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs())
    }

    fn risk_type(name: &str) -> anyhow::Result<RiskType> {
        [
            RiskType::Fraud,
            RiskType::StolenAccount,
            RiskType::MoneyMule,
            RiskType::IdentityTheft,
            RiskType::SyntheticIdentity,
            RiskType::Other,
        ]
        .into_iter()
        .find(|risk_type| risk_type.name() == name)
        .with_context(|| format!("unknown risk type {name:?}"))
    }

    fn opening(kind: &str, identifier: &str) -> anyhow::Result<IdentifierOpening> {
        let kind = IdentifierKind::from_name(kind)?;
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&random_seed()?[..16]);
        Ok(IdentifierOpening::new(
            normalise(kind, identifier, None)?,
            salt,
        ))
    }

    pub async fn client(arguments: ClientArgs) -> anyhow::Result<ExitCode> {
        let http = reqwest::Client::new();
        let root = base(&arguments.url);
        let key = SignerKey::parse(read_text(&arguments.key)?.trim())?;
        let members = get_json(&http, &format!("{root}/members")).await?;
        // The next sequence number: one above the last the log accepted from us.
        let sequence = members["members"]
            .as_array()
            .and_then(|members| {
                members
                    .iter()
                    .find(|member| member["name"] == key.name())
                    .and_then(|member| member["last_sequence"].as_u64())
            })
            .unwrap_or(0)
            + 1;
        let time = now()?;
        let (route, action, opening) = match arguments.action {
            ClientAction::Publish {
                kind,
                identifier,
                risk_type: name,
                severity,
                expires_in_days,
                evidence,
            } => {
                let opening = opening(&kind, &identifier)?;
                let action = Action::PublishRecord {
                    identifier: opening.commitment(),
                    risk_type: risk_type(&name)?,
                    severity,
                    expires_at: time + expires_in_days * 86_400,
                    evidence_reference: evidence,
                };
                ("records", action, Some((kind, opening)))
            }
            ClientAction::Query { kind, identifier } => {
                let opening = opening(&kind, &identifier)?;
                let action = Action::Query {
                    identifier: opening.commitment(),
                };
                ("queries", action, Some((kind, opening)))
            }
            ClientAction::Retract { record, reason } => (
                "retractions",
                Action::RetractRecord { record, reason },
                None,
            ),
            ClientAction::ProposeAdmission { candidate } => {
                let candidate = verifier_key(&candidate)?;
                let action = Action::ProposeAdmission {
                    candidate: MemberKey {
                        name: candidate.name().to_owned(),
                        public_key: candidate.public_key(),
                    },
                };
                ("proposals", action, None)
            }
            ClientAction::ProposeSuspension { member, reason } => (
                "proposals",
                Action::ProposeSuspension { member, reason },
                None,
            ),
            ClientAction::ProposeQuota {
                member,
                queries_per_day,
            } => (
                "proposals",
                Action::ProposeQuota {
                    member,
                    queries_per_day,
                },
                None,
            ),
            ClientAction::Approve { proposal } => ("approvals", Action::Approve { proposal }, None),
            ClientAction::Members => {
                println!("{}", serde_json::to_string_pretty(&members)?);
                return Ok(ExitCode::SUCCESS);
            }
        };
        let request = SignedRequest::sign(&arguments.consortium, &key, sequence, time, action);
        let mut body = json!({
            "request": base64::engine::general_purpose::STANDARD.encode(request.to_bytes()),
        });
        if let Some((kind, opening)) = &opening {
            body["identifier"] = json!({
                "kind": kind,
                "value": opening.identifier().expose(),
                "salt": hex::encode(opening.salt()),
            });
        }
        let response = http
            .post(format!("{root}/{route}"))
            .json(&body)
            .send()
            .await
            .context("sending the request")?;
        let status = response.status();
        let answer: Value = response.json().await.context("reading the answer")?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    /// `verify --url`: the checkpoint's signature; with `index`, the entry's inclusion;
    /// with `old`, consistency of the current checkpoint with an older one.
    pub async fn verify(
        url: &str,
        log_key: &str,
        index: Option<u64>,
        old: Option<&Path>,
        member: Option<(&str, Option<&Path>)>,
    ) -> anyhow::Result<ExitCode> {
        let http = reqwest::Client::new();
        let root_url = base(url);
        let operator = verifier_key(log_key)?;
        let text = get_text(&http, &format!("{root_url}/checkpoint")).await?;
        let checkpoint = match open_checkpoint(&text, &operator, &[]) {
            Ok(opened) => opened.checkpoint,
            Err(error) => return Ok(super::failed("checkpoint", &error)),
        };
        println!(
            "OK checkpoint {} size {} root {}",
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root.to_base64()
        );
        if let Some(index) = index {
            let bytes = get_bytes(&http, &format!("{root_url}/entries/{index}")).await?;
            let proof = get_json(
                &http,
                &format!(
                    "{root_url}/proofs/inclusion?index={index}&size={}",
                    checkpoint.size
                ),
            )
            .await?;
            let leaf = Hash::from_base64(proof["leaf"].as_str().context("a leaf hash")?)?;
            if leaf_hash(&bytes) != leaf {
                println!("FAILED: entry {index} does not hash to the leaf of its proof");
                return Ok(ExitCode::from(1));
            }
            if let Err(error) = verify_inclusion(
                index,
                checkpoint.size,
                &leaf,
                &hashes(&proof["hashes"])?,
                &checkpoint.root,
            ) {
                return Ok(super::failed("inclusion", &error));
            }
            println!("OK entry {index} is in the log at size {}", checkpoint.size);
        }
        if let Some(path) = old {
            let older = match open_checkpoint(&read_text(path)?, &operator, &[]) {
                Ok(opened) => opened.checkpoint,
                Err(error) => return Ok(super::failed("old checkpoint", &error)),
            };
            if older.size > checkpoint.size {
                println!("FAILED: the old checkpoint is larger than the log");
                return Ok(ExitCode::from(1));
            }
            let proof = get_json(
                &http,
                &format!(
                    "{root_url}/proofs/consistency?old={}&new={}",
                    older.size, checkpoint.size
                ),
            )
            .await?;
            let result = if older.size == checkpoint.size {
                if older.root == checkpoint.root {
                    Ok(())
                } else {
                    Err(tally_consortium::Error::RootMismatch)
                }
            } else {
                verify_consistency(
                    older.size,
                    checkpoint.size,
                    &hashes(&proof["hashes"])?,
                    &older.root,
                    &checkpoint.root,
                )
            };
            if let Err(error) = result {
                return Ok(super::failed(
                    "consistency (a fork or a rewritten history)",
                    &error,
                ));
            }
            println!("OK size {} extends size {}", checkpoint.size, older.size);
        }
        if let Some((member, out)) = member {
            let answer =
                get_json(&http, &format!("{root_url}/members/{member}/query-count")).await?;
            let text = answer["proof"].as_str().context("a count proof")?;
            if let Some(path) = out {
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let proof = CountProof::parse(text)?;
            if proof.leaf.member != member {
                println!(
                    "FAILED: asked for {member}, the proof is about {}",
                    proof.leaf.member
                );
                return Ok(ExitCode::from(1));
            }
            let code = super::check_count_proof(&proof, &operator);
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
        }
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

    /// Splits a range response: each entry as a 4-byte big-endian length and its bytes.
    fn split_entries(mut bytes: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut entries = Vec::new();
        while !bytes.is_empty() {
            let (length, rest) = bytes
                .split_first_chunk::<4>()
                .context("a truncated entry length")?;
            let length = u32::from_be_bytes(*length) as usize;
            if rest.len() < length {
                bail!("a truncated entry");
            }
            let (entry, rest) = rest.split_at(length);
            entries.push(entry.to_vec());
            bytes = rest;
        }
        Ok(entries)
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
            let entries = split_entries(&get_bytes(&self.http, &url).await?)?;
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

    pub async fn mirror(
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
}

mod durable {
    //! `tally consortium bench --durable`: appends committed to a database (one
    //! transaction per batch, on disk before the next), and proofs read from its tiles.

    use std::process::ExitCode;
    use std::time::Instant;

    use anyhow::{bail, Context};
    use tally_consortium::{
        leaf_hash, verify_consistency, verify_inclusion, BlindingKey, Genesis, KeyType, LogStore,
        MemberKey, MerkleLog, Operator, Quorum, SignerKey,
    };
    use tally_store::consortium::SqlLogStore;
    use tally_store::testing::TestDatabase;
    use tally_store::Database;

    use super::{publication, rate, SplitMix64, DEMO_TIME};

    /// A fresh database for one phase: a SQLite file under /var/tmp (removed after), or
    /// a fresh schema on the PostgreSQL server of `url` (dropped after).
    struct Scratch {
        database: Database,
        directory: Option<std::path::PathBuf>,
        schema: Option<(String, String)>,
    }

    impl Scratch {
        async fn new(url: Option<&str>, name: &str) -> anyhow::Result<Self> {
            match url {
                Some(url) if Database::backend_of(url) == tally_store::Backend::Postgres => {
                    let test = TestDatabase::postgres_at(url).await?;
                    let schema = test.schema.clone().context("a schema")?;
                    Ok(Scratch {
                        database: test.database.clone(),
                        directory: None,
                        schema: Some((url.to_owned(), schema)),
                    })
                }
                Some(url) => {
                    let database = Database::connect(url).await?;
                    database.migrate().await?;
                    Ok(Scratch {
                        database,
                        directory: None,
                        schema: None,
                    })
                }
                None => {
                    let directory = std::path::PathBuf::from(format!(
                        "/var/tmp/tally-consortium-bench-{}-{name}",
                        std::process::id()
                    ));
                    std::fs::create_dir_all(&directory)?;
                    let database = Database::connect(&format!(
                        "sqlite://{}",
                        directory.join("log.db").display()
                    ))
                    .await?;
                    database.migrate().await?;
                    Ok(Scratch {
                        database,
                        directory: Some(directory),
                        schema: None,
                    })
                }
            }
        }

        async fn remove(self) -> anyhow::Result<()> {
            self.database.close().await;
            if let Some(directory) = self.directory {
                std::fs::remove_dir_all(&directory)
                    .with_context(|| format!("removing {}", directory.display()))?;
            }
            if let Some((url, schema)) = self.schema {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&mut admin)
                    .await?;
            }
            Ok(())
        }
    }

    pub async fn bench(
        entries: u64,
        proofs: u64,
        operator_entries: u64,
        database_url: Option<String>,
        batch: usize,
    ) -> anyhow::Result<ExitCode> {
        if entries < 2 || proofs == 0 || batch == 0 {
            bail!("need at least 2 entries, 1 proof and a batch of 1");
        }
        let url = database_url.as_deref();
        let scratch = Scratch::new(url, "log").await?;
        let database = scratch.database.clone();
        println!("backend {:?}, batches of {batch}", database.backend());
        tokio::task::spawn_blocking(move || log_phase(&database, entries, proofs, batch))
            .await
            .context("the benchmark thread")??;
        scratch.remove().await?;
        if operator_entries > 0 {
            let scratch = Scratch::new(url, "operator").await?;
            let database = scratch.database.clone();
            tokio::task::spawn_blocking(move || operator_phase(&database, operator_entries, batch))
                .await
                .context("the benchmark thread")??;
            scratch.remove().await?;
            let scratch = Scratch::new(url, "service").await?;
            service_phase(&scratch.database, operator_entries, batch).await?;
            scratch.remove().await?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Fills a log through the operator, serves it over HTTP on a local socket, and times
    /// a mirror's first step over all of it (fetch, tree, replay of the rules with
    /// signature checks, member map check): one entry per request, then in ranges.
    pub async fn bench_follow(
        count: u64,
        database_url: Option<String>,
        batch: usize,
    ) -> anyhow::Result<ExitCode> {
        if count == 0 || batch == 0 {
            bail!("need at least 1 entry and a batch of 1");
        }
        let scratch = Scratch::new(database_url.as_deref(), "follow").await?;
        let database = scratch.database.clone();
        println!("backend {:?}", database.backend());
        tokio::task::spawn_blocking(move || operator_phase(&database, count, batch))
            .await
            .context("the benchmark thread")??;
        let clock: std::sync::Arc<dyn tally_core::Clock> =
            std::sync::Arc::new(tally_core::SystemClock);
        let config = tally_service::consortium::ConsortiumConfig::new(
            SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?,
            BlindingKey::new(1, [3; 32]),
            None,
        );
        let (log, _) =
            tally_service::consortium::ConsortiumLog::start(&scratch.database, clock, config)
                .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = tally_server::consortium_app(
            tally_server::routes::consortium::ConsortiumAppState::new(log.clone()),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let key = SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?
            .verifier()
            .to_string();
        // What a mirror did before it replayed the rules: fetch each entry by its own
        // request and hash it.
        let http = reqwest::Client::new();
        let started = Instant::now();
        let mut leaves = Vec::with_capacity(count as usize + 1);
        for index in 0..=count {
            let response = http
                .get(format!("{url}/v1/consortium/entries/{index}"))
                .send()
                .await?
                .error_for_status()?;
            leaves.push(leaf_hash(&response.bytes().await?));
        }
        let (per_second, seconds) = rate(count + 1, started);
        println!(
            "fetch and hash only (no replay), 1 entry per request: {per_second:.0} entries/s ({seconds:.1} s)"
        );
        for entries_per_request in [1, super::remote::ENTRIES_PER_REQUEST] {
            let mut mirror = super::remote::Mirror::new(&url, &key)?;
            mirror.entries_per_request = entries_per_request;
            let started = Instant::now();
            if mirror.step().await?.is_err() {
                bail!("the mirror alarmed on an honest log");
            }
            let (per_second, seconds) = rate(count + 1, started);
            println!(
                "mirror first step over {} entries, {entries_per_request} entries per request: {per_second:.0} entries/s ({seconds:.1} s)",
                count + 1
            );
        }
        server.abort();
        drop(log);
        scratch.remove().await?;
        Ok(ExitCode::SUCCESS)
    }

    /// Appends `entries` realistic entries (a signed publication whose time field holds a
    /// counter) through `MerkleLog` over the SQL store, one commit per batch; then reads
    /// proofs from the stored tiles with a cold cache.
    fn log_phase(
        database: &Database,
        entries: u64,
        proofs: u64,
        batch: usize,
    ) -> anyhow::Result<()> {
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
        println!("entry size {} bytes, {entries} entries", template.len());
        let mut log = MerkleLog::open(SqlLogStore::connect(database)?)?;
        let started = Instant::now();
        let mut window = Instant::now();
        let mut appended = 0u64;
        let report_every = (entries / 10).max(1);
        let mut next_report = report_every;
        while appended < entries {
            let count = (entries - appended).min(batch as u64);
            let mut bytes = Vec::with_capacity(count as usize);
            for offset in 0..count {
                let mut entry = template.clone();
                entry[1..9].copy_from_slice(&(appended + offset).to_be_bytes());
                bytes.push(entry);
            }
            log.append_entries(bytes)?;
            appended += count;
            if appended >= next_report {
                let (per_second, _) = rate(report_every, window);
                println!("  at {appended}: {per_second:.0} entries/s over the last {report_every}");
                window = Instant::now();
                next_report += report_every;
            }
        }
        let (per_second, seconds) = rate(entries, started);
        println!(
            "durable append (leaf hash + tiles + entries committed per batch): {per_second:.0} entries/s ({seconds:.1} s)"
        );

        // Proofs with a cold cache: a fresh connection and log.
        drop(log);
        let log = MerkleLog::open(SqlLogStore::connect(database)?)?;
        let size = log.size();
        if size != log.store().tree_size()? {
            bail!("the stored size is not the log's");
        }
        let root = log.root();
        let mut numbers = SplitMix64::new(42);
        let indexes: Vec<u64> = (0..proofs).map(|_| numbers.below(size)).collect();
        let started = Instant::now();
        let mut generated = Vec::with_capacity(proofs as usize);
        for index in &indexes {
            generated.push((log.leaf_hash(*index)?, log.inclusion_proof(*index, size)?));
        }
        let (per_second, seconds) = rate(proofs, started);
        println!("inclusion proof (and leaf hash) from the stored tiles at size {size}: {per_second:.0}/s ({seconds:.2} s)");
        let started = Instant::now();
        for (index, (leaf, proof)) in indexes.iter().zip(&generated) {
            verify_inclusion(*index, size, leaf, proof, &root)?;
        }
        let (per_second, seconds) = rate(proofs, started);
        println!("inclusion proof verification: {per_second:.0}/s ({seconds:.2} s)");
        let old_sizes: Vec<u64> = (0..proofs).map(|_| 1 + numbers.below(size - 1)).collect();
        let started = Instant::now();
        let mut consistency = Vec::with_capacity(proofs as usize);
        for old_size in &old_sizes {
            consistency.push((
                log.root_at(*old_size)?,
                log.consistency_proof(*old_size, size)?,
            ));
        }
        let (per_second, seconds) = rate(proofs, started);
        println!("consistency proof (and old root) from the stored tiles to size {size}: {per_second:.0}/s ({seconds:.2} s)");
        let started = Instant::now();
        for (old_size, (old_root, proof)) in old_sizes.iter().zip(&consistency) {
            verify_consistency(*old_size, size, proof, old_root, &root)?;
        }
        let (per_second, seconds) = rate(proofs, started);
        println!("consistency proof verification: {per_second:.0}/s ({seconds:.2} s)");
        // Entries read back hash to their leaves (a sample).
        for index in indexes.iter().take(1000) {
            let bytes = log.entry(*index)?.context("a stored entry")?;
            if leaf_hash(&bytes) != log.leaf_hash(*index)? {
                bail!("entry {index} does not hash to its leaf");
            }
        }
        Ok(())
    }

    /// Members sending signed publications concurrently through the operator thread
    /// (`ConsortiumLog::submit`, what each HTTP request awaits): group commit of whatever
    /// is queued, one checkpoint per batch, each caller answered after the commit. One
    /// task per member (1000 members), each sending its requests in sequence order.
    async fn service_phase(database: &Database, count: u64, batch: usize) -> anyhow::Result<()> {
        const MEMBERS: u64 = 1000;
        let members: Vec<SignerKey> = (0..MEMBERS)
            .map(|number| {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&number.to_be_bytes());
                SignerKey::from_seed(&format!("bank-{number}"), KeyType::Ed25519, seed)
            })
            .collect::<Result<_, _>>()?;
        let genesis = Genesis {
            consortium: "bench".into(),
            founders: members
                .iter()
                .map(|member| MemberKey {
                    name: member.name().to_owned(),
                    public_key: member.verifier().public_key(),
                })
                .collect(),
            quorum: Quorum {
                numerator: 1,
                denominator: 2,
            },
            query_quota_per_day: 1000,
            proposal_lifetime_seconds: 86_400,
            request_skew_seconds_max: 300,
        };
        let blinding = BlindingKey::new(1, [3; 32]);
        let per_member = count.div_ceil(MEMBERS);
        let mut numbers = SplitMix64::new(11);
        let mut work = Vec::with_capacity(MEMBERS as usize);
        for member in &members {
            let mut requests = Vec::with_capacity(per_member as usize);
            for sequence in 1..=per_member {
                let opening = tally_consortium::IdentifierOpening::new(
                    tally_consortium::normalise(
                        tally_consortium::IdentifierKind::Phone,
                        &format!("+86138{:08}", numbers.below(100_000_000)),
                        None,
                    )?,
                    [9; 16],
                );
                let action = tally_consortium::Action::PublishRecord {
                    identifier: opening.commitment(),
                    risk_type: tally_consortium::RiskType::Fraud,
                    severity: 3,
                    expires_at: DEMO_TIME + 86_400,
                    evidence_reference: "bench case".into(),
                };
                let request = tally_consortium::SignedRequest::sign(
                    "bench", member, sequence, DEMO_TIME, action,
                );
                requests.push((request, opening));
            }
            work.push(requests);
        }
        let clock: std::sync::Arc<dyn tally_core::Clock> = std::sync::Arc::new(
            tally_core::ManualClock::new(jiff::Timestamp::from_second(DEMO_TIME as i64)?),
        );
        let operator_key =
            SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
        let mut config =
            tally_service::consortium::ConsortiumConfig::new(operator_key, blinding, Some(genesis));
        config.batch_size_max = batch.min(tally_consortium::operator::ENTRY_BATCH_SIZE_MAX);
        let (log, _) =
            tally_service::consortium::ConsortiumLog::start(database, clock, config).await?;
        let total = per_member * MEMBERS;
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(work.len());
        for requests in work {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests.len());
                for (request, opening) in requests {
                    let sent = Instant::now();
                    log.submit(request, Some(opening)).await?;
                    latencies.push(sent.elapsed());
                }
                Ok::<_, tally_consortium::Error>(latencies)
            }));
        }
        let mut latencies = Vec::with_capacity(total as usize);
        for task in tasks {
            latencies.extend(task.await??);
        }
        let (per_second, seconds) = rate(total, started);
        latencies.sort();
        let percentile = |share: f64| {
            latencies
                .get(
                    ((latencies.len() as f64 * share) as usize)
                        .min(latencies.len().saturating_sub(1)),
                )
                .map(|latency| latency.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        println!(
            "durable service append ({MEMBERS} members sending concurrently, group commit): {per_second:.0} entries/s ({seconds:.1} s), latency p50 {:.1} ms p99 {:.1} ms",
            percentile(0.5),
            percentile(0.99)
        );
        Ok(())
    }

    /// Signed publications through `Operator::append` over the SQL store: rules, request
    /// signatures checked on every core, blinding done by the caller, one durable commit
    /// per batch. Signing (the members' work) is done before and not measured.
    fn operator_phase(database: &Database, count: u64, batch: usize) -> anyhow::Result<()> {
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
        let signing = Instant::now();
        let mut numbers = SplitMix64::new(9);
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
        println!(
            "signed {count} requests in {:.1} s (not measured below)",
            signing.elapsed().as_secs_f64()
        );
        let store = SqlLogStore::connect(database)?;
        let mut operator = Operator::found(store, operator_key, blinding, genesis, DEMO_TIME)?;
        let batch = batch.min(tally_consortium::operator::ENTRY_BATCH_SIZE_MAX);
        let started = Instant::now();
        let mut pending = Vec::with_capacity(batch);
        for entry in entries {
            pending.push(entry);
            if pending.len() == batch {
                let results = operator.append(std::mem::take(&mut pending))?;
                if results.iter().any(Result::is_err) {
                    bail!("the operator refused a benchmark entry");
                }
                operator.checkpoint()?;
            }
        }
        if !pending.is_empty() {
            operator.append(pending)?;
            operator.checkpoint()?;
        }
        let (per_second, seconds) = rate(count, started);
        println!(
            "durable operator append (rules + Ed25519 request checks on all cores + commit + checkpoint per batch): {per_second:.0} entries/s ({seconds:.1} s)"
        );
        let reopening = Instant::now();
        let store = SqlLogStore::connect(database)?;
        let operator_key =
            SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
        let mut reopened =
            Operator::open(store, operator_key.clone(), BlindingKey::new(1, [3; 32]))?;
        let (per_second, seconds) = rate(reopened.log().size(), reopening);
        println!(
            "Operator::open replay of {} entries: {per_second:.0} entries/s ({seconds:.1} s)",
            reopened.log().size()
        );
        let snapshotting = Instant::now();
        reopened.write_snapshot()?;
        let snapshot_seconds = snapshotting.elapsed().as_secs_f64();
        let snapshot_bytes = reopened
            .log()
            .store()
            .read_snapshot()?
            .map(|snapshot| snapshot.state.len())
            .unwrap_or(0);
        let reopening = Instant::now();
        let store = SqlLogStore::connect(database)?;
        let from_snapshot = Operator::open(store, operator_key, BlindingKey::new(1, [3; 32]))?;
        println!(
            "snapshot of the state at {} entries: {:.1} MB written in {snapshot_seconds:.2} s; Operator::open from it: {:.2} s",
            from_snapshot.log().size(),
            snapshot_bytes as f64 / 1e6,
            reopening.elapsed().as_secs_f64()
        );
        if from_snapshot.state() != reopened.state() {
            bail!("the state opened from the snapshot differs from the replayed one");
        }
        Ok(())
    }
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
    fn blinding_key_files_are_read_from_lower_or_upper_case_hex() -> anyhow::Result<()> {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("blinding.key");
        let bytes: [u8; 32] = std::array::from_fn(|index| (index * 37 + 5) as u8);
        let phone = normalise(IdentifierKind::Phone, "+8613812345678", None)?;
        let expected = BlindingKey::new(3, bytes).blind(&phone)?;
        for text in [hex::encode(bytes), hex::encode_upper(bytes)] {
            std::fs::write(&path, format!("3 {text}\n"))?;
            let key = remote::read_blinding_key(&path)?;
            assert_eq!(key.epoch(), 3);
            assert_eq!(key.blind(&phone)?, expected);
        }
        let good = hex::encode(bytes);
        let signed = format!("+{}", &good[1..]);
        let short = &good[..62];
        let not_hex = format!("zz{}", &good[2..]);
        for bad in [signed.as_str(), short, not_hex.as_str()] {
            std::fs::write(&path, format!("3 {bad}\n"))?;
            assert!(remote::read_blinding_key(&path).is_err(), "{bad} was taken");
        }
        Ok(())
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

    /// A log served over a real socket, for `verify --url` and the mirror.
    struct Served {
        url: String,
        log: tally_service::consortium::ConsortiumLog,
        server: tokio::task::JoinHandle<()>,
    }

    fn operator_signer() -> SignerKey {
        SignerKey::from_seed("cli.tally.example/log", KeyType::Ed25519, [8; 32]).expect("key")
    }

    async fn serve_log(database: &tally_store::Database, quota: u32) -> Served {
        serve_log_with(database, quota, false).await
    }

    /// A lying operator: its checkpoints commit a member map in which bank-a made one
    /// query fewer than the log holds (signed with the real operator key).
    async fn lying_checkpoint(
        log: tally_service::consortium::ConsortiumLog,
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        let path = request.uri().path().to_owned();
        let response = next.run(request).await;
        if !path.ends_with("/checkpoint") {
            return response;
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let note = Note::parse(std::str::from_utf8(&bytes).expect("text")).expect("note");
        let honest = Checkpoint::parse(&note.text).expect("checkpoint");
        let mut leaves = log
            .read(|operator| {
                tally_consortium::MemberMap::of(operator.state())
                    .leaves()
                    .to_vec()
            })
            .await
            .expect("read");
        leaves[0].queries = leaves[0].queries.saturating_sub(1);
        let hashes: Vec<tally_consortium::Hash> = leaves
            .iter()
            .map(tally_consortium::MemberLeaf::hash)
            .collect();
        let lie = Checkpoint {
            extensions: vec![tally_consortium::MapCommitment {
                members: leaves.len() as u64,
                root: tally_consortium::root_of(&hashes),
            }
            .extension_line()],
            ..honest
        };
        let text = lie.sign(&operator_signer()).expect("sign").to_string();
        axum::response::IntoResponse::into_response(text)
    }

    async fn serve_log_with(database: &tally_store::Database, quota: u32, lying: bool) -> Served {
        let member = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).expect("key");
        let genesis = Genesis {
            consortium: "cli".into(),
            founders: vec![MemberKey {
                name: "bank-a".into(),
                public_key: member.verifier().public_key(),
            }],
            quorum: Quorum {
                numerator: 1,
                denominator: 2,
            },
            query_quota_per_day: quota,
            proposal_lifetime_seconds: 86_400,
            request_skew_seconds_max: 300,
        };
        let clock: std::sync::Arc<dyn tally_core::Clock> =
            std::sync::Arc::new(tally_core::ManualClock::new(
                jiff::Timestamp::from_second(DEMO_TIME as i64).expect("time"),
            ));
        let config = tally_service::consortium::ConsortiumConfig::new(
            operator_signer(),
            BlindingKey::new(1, [3; 32]),
            Some(genesis),
        );
        let (log, _) = tally_service::consortium::ConsortiumLog::start(database, clock, config)
            .await
            .expect("start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let mut router = tally_server::consortium_app(
            tally_server::routes::consortium::ConsortiumAppState::new(log.clone()),
        );
        if lying {
            let shared = log.clone();
            router = router.layer(axum::middleware::from_fn(move |request, next| {
                lying_checkpoint(shared.clone(), request, next)
            }));
        }
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Served {
            url: format!("http://{address}"),
            log,
            server,
        }
    }

    async fn publish_many(log: &tally_service::consortium::ConsortiumLog, first: u64, count: u64) {
        let member = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).expect("key");
        for sequence in first..first + count {
            let opening = IdentifierOpening::new(
                normalise(IdentifierKind::Phone, &format!("+86137{sequence:08}"), None)
                    .expect("phone"),
                [4; 16],
            );
            let action = Action::PublishRecord {
                identifier: opening.commitment(),
                risk_type: RiskType::Fraud,
                severity: 2,
                expires_at: DEMO_TIME + 86_400,
                evidence_reference: "case".into(),
            };
            let request = SignedRequest::sign("cli", &member, sequence, DEMO_TIME, action);
            log.submit(request, Some(opening)).await.expect("publish");
        }
    }

    async fn flip_bit(
        database: &tally_store::Database,
        table: &str,
        condition: &str,
        offset: usize,
    ) {
        let tally_store::Database::Sqlite(pool) = database else {
            panic!("SQLite");
        };
        let (mut bytes,): (Vec<u8>,) =
            sqlx::query_as(&format!("SELECT bytes FROM {table} WHERE {condition}"))
                .fetch_one(pool)
                .await
                .expect("select");
        bytes[offset] ^= 1;
        sqlx::query(&format!("UPDATE {table} SET bytes = $1 WHERE {condition}"))
            .bind(bytes)
            .execute(pool)
            .await
            .expect("update");
    }

    async fn step(url: &str, key: &str) -> Result<Observation, String> {
        let mut mirror = remote::Mirror::new(url, key).expect("mirror");
        match mirror.step().await.expect("step") {
            Ok(observation) => Ok(observation),
            Err(remote::Alarm::Fork(detail)) => Err(format!("FORK {detail}")),
            Err(remote::Alarm::Tampered(detail)) => Err(format!("TAMPERED {detail}")),
        }
    }

    #[test]
    fn verify_url_and_the_mirror_detect_edits_and_forks() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let directory = tempfile::tempdir().expect("directory");
            let connect = |name: &str| {
                let url = format!("sqlite://{}", directory.path().join(name).display());
                async move {
                    let database = tally_store::Database::connect(&url).await.expect("connect");
                    database.migrate().await.expect("migrate");
                    database
                }
            };
            let database = connect("log.db").await;
            let key = operator_signer().verifier().to_string();
            let served = serve_log(&database, 100).await;
            publish_many(&served.log, 1, 300).await;
            let check = |url: String, index: u64, old: Option<PathBuf>| {
                let key = key.clone();
                async move {
                    remote::verify(&url, &key, Some(index), old.as_deref(), None)
                        .await
                        .expect("verify")
                }
            };
            // An entry edited in the database before the service read it.
            flip_bit(&database, "consortium_entries", "entry_index = 7", 60).await;
            assert_eq!(check(served.url.clone(), 7, None).await, ExitCode::from(1));
            let alarm = step(&served.url, &key).await.unwrap_err();
            assert!(alarm.starts_with("TAMPERED"), "{alarm}");
            flip_bit(&database, "consortium_entries", "entry_index = 7", 60).await;
            served.server.abort();
            drop(served);

            // Restored and restarted: everything verifies; keep the checkpoint.
            let served = serve_log(&database, 100).await;
            assert_eq!(
                step(&served.url, &key).await,
                Ok(Observation::First { size: 301 })
            );
            assert_eq!(
                check(served.url.clone(), 100, None).await,
                ExitCode::SUCCESS
            );
            let old = directory.path().join("old.txt");
            std::fs::write(&old, served.log.checkpoint()).expect("write");
            publish_many(&served.log, 301, 5).await;
            assert_eq!(
                check(served.url.clone(), 303, Some(old.clone())).await,
                ExitCode::SUCCESS
            );
            served.server.abort();
            drop(served);

            // A stored hash edited (the level-4 hash over entries 0..16): after a restart
            // the proofs served for entries 16..256 are wrong.
            flip_bit(
                &database,
                "consortium_tiles",
                "level = 0 AND tile_index = 0",
                256 * 32 + 1,
            )
            .await;
            let served = serve_log(&database, 100).await;
            assert_eq!(
                check(served.url.clone(), 100, None).await,
                ExitCode::from(1)
            );
            let alarm = step(&served.url, &key).await.unwrap_err();
            assert!(alarm.contains("wrong inclusion proof"), "{alarm}");
            served.server.abort();
            drop(served);

            // A fork: another history under the same operator key, of the same size.
            let other = connect("fork.db").await;
            let forked = serve_log(&other, 99).await;
            publish_many(&forked.log, 1, 305).await;
            let mut mirror = remote::Mirror::new(&forked.url, &key).expect("mirror");
            // The mirror knows the first log at size 306 (from the old checkpoint + 5).
            let first = connect("log.db").await;
            let flipped_back = {
                flip_bit(
                    &first,
                    "consortium_tiles",
                    "level = 0 AND tile_index = 0",
                    256 * 32 + 1,
                )
                .await;
                serve_log(&first, 100).await
            };
            mirror.root_url = format!("{}/v1/consortium", flipped_back.url);
            assert!(matches!(
                mirror.step().await.expect("step"),
                Ok(Observation::First { size: 306 })
            ));
            mirror.root_url = format!("{}/v1/consortium", forked.url);
            assert!(matches!(
                mirror.step().await.expect("step"),
                Err(remote::Alarm::Fork(_))
            ));
            // verify --url with the old checkpoint of the first log fails on the fork too.
            assert_eq!(
                check(forked.url.clone(), 3, Some(old)).await,
                ExitCode::from(1)
            );
        });
    }

    async fn query_many(log: &tally_service::consortium::ConsortiumLog, first: u64, count: u64) {
        let member = SignerKey::from_seed("bank-a", KeyType::Ed25519, [1; 32]).expect("key");
        for sequence in first..first + count {
            let opening = IdentifierOpening::new(
                normalise(IdentifierKind::Phone, "+8613700000001", None).expect("phone"),
                [6; 16],
            );
            let action = Action::Query {
                identifier: opening.commitment(),
            };
            let request = SignedRequest::sign("cli", &member, sequence, DEMO_TIME, action);
            log.submit(request, Some(opening)).await.expect("query");
        }
    }

    #[test]
    fn count_proofs_verify_and_the_mirror_catches_counts_the_log_does_not_give() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let directory = tempfile::tempdir().expect("directory");
            let url = format!("sqlite://{}", directory.path().join("log.db").display());
            let database = tally_store::Database::connect(&url).await.expect("connect");
            database.migrate().await.expect("migrate");
            let key = operator_signer().verifier().to_string();
            let served = serve_log(&database, 100).await;
            publish_many(&served.log, 1, 250).await;
            query_many(&served.log, 251, 7).await;

            // The member's count proof, online and from the file it wrote.
            let file = directory.path().join("count.txt");
            assert_eq!(
                remote::verify(&served.url, &key, None, None, Some(("bank-a", Some(&file))))
                    .await
                    .expect("verify"),
                ExitCode::SUCCESS
            );
            let proof =
                CountProof::parse(&std::fs::read_to_string(&file).expect("read")).expect("parse");
            assert_eq!((proof.leaf.queries, proof.leaf.publications), (7, 250));
            let count = |path: PathBuf| {
                verify_exit(Verify::Count {
                    log_key: key.clone(),
                    proof: path,
                })
            };
            assert_eq!(count(file.clone()), 0);
            let text = std::fs::read_to_string(&file).expect("read");
            std::fs::write(&file, text.replace("queries 7", "queries 6")).expect("write");
            assert_eq!(count(file.clone()), 1);

            // An honest log: the mirror replays its 258 entries and agrees, whether it
            // fetches them in ranges (cut at the end of the log) or one per request.
            for entries_per_request in [remote::ENTRIES_PER_REQUEST, 100, 1] {
                let mut mirror = remote::Mirror::new(&served.url, &key).expect("mirror");
                mirror.entries_per_request = entries_per_request;
                assert!(matches!(
                    mirror.step().await.expect("step"),
                    Ok(Observation::First { size: 258 })
                ));
            }
            served.server.abort();
            drop(served);

            // A lying operator: honest entries and tree, a signed member map that hides
            // one of bank-a's queries. Count proofs against it verify (the signature is
            // the operator's), and the mirror is what catches it.
            let lying = serve_log_with(&database, 100, true).await;
            let alarm = step(&lying.url, &key).await.unwrap_err();
            assert!(alarm.contains("member counts"), "{alarm}");
            lying.server.abort();
            drop(lying);

            // The last query's result count edited in the database under an honest
            // service (after its start, before it read the entry): the mirror alarms.
            let served = serve_log(&database, 100).await;
            let length = served
                .log
                .read(|operator| operator.log().entry(257))
                .await
                .expect("read")
                .expect("entry")
                .expect("bytes")
                .len();
            served
                .log
                .read(|operator| operator.log().store().forget_cache())
                .await
                .expect("forget");
            flip_bit(
                &database,
                "consortium_entries",
                "entry_index = 257",
                length - 1,
            )
            .await;
            let alarm = step(&served.url, &key).await.unwrap_err();
            assert!(alarm.starts_with("TAMPERED"), "{alarm}");
        });
    }
}
