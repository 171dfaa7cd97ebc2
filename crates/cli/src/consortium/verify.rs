//! `tally consortium verify`: checkpoints, inclusion, consistency and count proofs, from
//! files or (`--url`) from a running log; or (`--database`) a log's database directly.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tally_consortium::{
    check_stored_log, leaf_hash, open_checkpoint, replay_batch, verify_consistency,
    verify_inclusion, ConsistencyProof, ConsortiumState, CountProof, Entry, Hash, InclusionProof,
    LogStore, VerifierKey,
};

use super::client::{base, get_bytes, get_json, get_text, hashes};
use super::keys::verifier_key;
use super::{read_text, Verify};

/// A verification failure (exit 1) as opposed to an error (exit 2).
pub(super) fn failed(what: &str, error: &tally_consortium::Error) -> ExitCode {
    println!("FAILED: {what}: {error} [{}]", error.code());
    ExitCode::from(1)
}

pub(super) fn run_verify(verify: Verify) -> anyhow::Result<ExitCode> {
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
pub(super) fn check_count_proof(proof: &CountProof, operator: &VerifierKey) -> ExitCode {
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

/// `verify --url`: the checkpoint's signature; with `index`, the entry's inclusion;
/// with `old`, consistency of the current checkpoint with an older one.
pub(super) async fn verify(
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
        Err(error) => return Ok(failed("checkpoint", &error)),
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
            return Ok(failed("inclusion", &error));
        }
        println!("OK entry {index} is in the log at size {}", checkpoint.size);
    }
    if let Some(path) = old {
        let older = match open_checkpoint(&read_text(path)?, &operator, &[]) {
            Ok(opened) => opened.checkpoint,
            Err(error) => return Ok(failed("old checkpoint", &error)),
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
            return Ok(failed(
                "consistency (a fork or a rewritten history)",
                &error,
            ));
        }
        println!("OK size {} extends size {}", checkpoint.size, older.size);
    }
    if let Some((member, out)) = member {
        let answer = get_json(&http, &format!("{root_url}/members/{member}/query-count")).await?;
        let text = answer["proof"].as_str().context("a count proof")?;
        if let Some(path) = out {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let proof = CountProof::parse(text)?;
        if proof.leaf.member != member {
            println!(
                "FAILED: asked for {member}, the proof is about {}",
                proof.leaf.member
            );
            return Ok(ExitCode::from(1));
        }
        let code = check_count_proof(&proof, &operator);
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Entries decoded and replayed at a time by [`verify_database`].
const REPLAY_BATCH_SIZE: u64 = 10_000;

/// `verify --database`: the latest stored checkpoint's signature under the operator's
/// key; every stored entry against its leaf hash and every tile against the tiles below
/// it, the entries giving the checkpoint's root ([`check_stored_log`]); then every entry
/// decoded and replayed through the rules. Reads only; exit 1 names the first bad entry.
pub(super) async fn verify_database(url: &str, log_key: &str) -> anyhow::Result<ExitCode> {
    let operator = verifier_key(log_key)?;
    let database = tally_store::Database::connect(url)
        .await
        .context("connecting to the database")?;
    let verdict = tokio::task::spawn_blocking(move || check_database(&database, &operator))
        .await
        .context("the check stopped")??;
    Ok(match verdict {
        Ok(lines) => {
            for line in lines {
                println!("OK {line}");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            ExitCode::from(1)
        }
    })
}

/// What a check of a database found: what holds, line by line, or the first thing that
/// does not. `Err` when the database cannot be read.
pub(super) fn check_database(
    database: &tally_store::Database,
    operator: &VerifierKey,
) -> anyhow::Result<Result<Vec<String>, String>> {
    let store = tally_store::consortium::SqlLogStore::connect(database)?;
    let mut lines = Vec::new();
    let Some((_, note)) = store.read_checkpoint()? else {
        return Ok(Err(
            "the database holds no signed checkpoint (has the log served yet?)".into(),
        ));
    };
    let checkpoint = match open_checkpoint(&note, operator, &[]) {
        Ok(opened) => opened.checkpoint,
        Err(error) => {
            return Ok(Err(format!(
                "the stored checkpoint: {error} [{}]",
                error.code()
            )))
        }
    };
    let size = store.tree_size()?;
    if checkpoint.size > size {
        return Ok(Err(format!(
            "the checkpoint signs size {}, the database holds {size} entries",
            checkpoint.size
        )));
    }
    lines.push(format!(
        "checkpoint {} size {} root {} signed by the operator",
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root.to_base64()
    ));
    let check = check_stored_log(&store, size, Some((checkpoint.size, checkpoint.root)))?;
    if let Some(finding) = check.finding {
        return Ok(Err(match finding.entry() {
            Some(index) => format!("first bad entry {index}: {finding}"),
            None => finding.to_string(),
        }));
    }
    lines.push(format!(
        "entries {}, tiles {}: each entry hashes to its leaf, each tile to the tiles below, \
         and the entries give the signed root",
        check.entries, check.tiles
    ));
    let mut state = ConsortiumState::new();
    let mut start = 0;
    while start < size {
        let end = (start + REPLAY_BATCH_SIZE).min(size);
        let mut entries = Vec::with_capacity((end - start) as usize);
        for index in start..end {
            let bytes = store
                .read_entry(index)?
                .with_context(|| format!("entry {index} is missing"))?;
            match Entry::decode(&bytes) {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    return Ok(Err(format!(
                        "first bad entry {index}: it does not decode: {error}"
                    )))
                }
            }
        }
        if let Err(error) = replay_batch(&mut state, &entries) {
            // The state stops before the refused entry: it is the next one.
            let index = state.next_index();
            return Ok(Err(format!(
                "first bad entry {index}: the rules refuse it: {error}"
            )));
        }
        start = end;
    }
    lines.push(format!(
        "{size} entries replayed through the consortium rules"
    ));
    Ok(Ok(lines))
}
