//! `tally consortium`: keys, verification of checkpoints and proofs, the log service, a member's client, a mirror, a demo log and benchmarks.
//!
//! Exit codes: 0 verified, 1 verification failed (the files are well formed but do not
//! prove what they claim: a bad signature, a proof that does not lead to the root),
//! 2 error (unreadable or malformed input).
//!
//! This file holds the command tree and its dispatch; each area has a file of its own:
//! [`keys`] (operator, member, witness and blinding keys), [`verify`] (checkpoints and
//! proofs, from files or a running log), [`serve`] (the log service), [`client`] (a
//! member's requests over HTTP), [`mirror`] (`follow`: fork and tamper alarms), [`demo`]
//! (a small log's files) and [`bench`] (in memory and durable).

mod bench;
mod client;
mod demo;
pub(crate) mod keys;
mod mirror;
mod serve;
#[cfg(test)]
mod tests;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

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
    /// Verify a checkpoint, an inclusion proof or a consistency proof from files;
    /// (`--url`) a running log's checkpoint, an entry's inclusion and consistency with an
    /// older checkpoint; or (`--database`) a log's database directly: every entry, every
    /// tile, the rules replayed, and the latest stored checkpoint's signature and root.
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
    #[arg(long, conflicts_with = "database")]
    url: Option<String>,
    /// The log's database URL (`sqlite://...` or `postgres://...`), read without changing
    /// it: exit 1 naming the first entry or tile that does not hash to the signed tree.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
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
        /// phone, national_id, card, device, account or address.
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
        } => keys::keygen(&name, cosigner, &secret_file),
        Command::Verify(arguments) => match arguments.command {
            Some(verify) => verify::run_verify(verify),
            None if arguments.database.is_some() => {
                let (Some(database), Some(log_key)) = (arguments.database, arguments.log_key)
                else {
                    bail!("--database needs --log-key");
                };
                block_on(verify::verify_database(&database, &log_key))
            }
            None => {
                let (Some(url), Some(log_key)) = (arguments.url, arguments.log_key) else {
                    bail!("give a subcommand, --url and --log-key, or --database and --log-key");
                };
                block_on(verify::verify(
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
        Command::Serve(arguments) => block_on(serve::serve(arguments)),
        Command::Client(arguments) => block_on(client::client(arguments)),
        Command::BlindingKeygen { secret_file } => keys::blinding_keygen(&secret_file),
        Command::Follow {
            url: Some(url),
            once,
            interval_seconds,
            log_key,
            state,
            ..
        } => block_on(mirror::mirror(
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
            let code = mirror::follow(&log_key, &state, &checkpoint, proof.as_deref())?;
            match cosign_key {
                Some(key) if code == ExitCode::SUCCESS => mirror::cosign(&log_key, &state, &key),
                _ => Ok(code),
            }
        }
        Command::Demo { dir, entries } => demo::demo(&dir, entries),
        Command::Bench {
            operator_entries,
            durable: true,
            database_url,
            batch,
            follow: true,
            ..
        } => block_on(bench::durable::bench_follow(
            operator_entries,
            database_url,
            batch,
        )),
        Command::Bench {
            entries,
            proofs,
            operator_entries,
            durable: true,
            database_url,
            batch,
            ..
        } => block_on(bench::durable::bench(
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
            bench::bench(entries, proofs)?;
            bench::bench_operator(operator_entries)
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

pub(super) fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
