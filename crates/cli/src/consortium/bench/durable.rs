//! `tally consortium bench --durable`: appends committed to a database (one
//! transaction per batch, on disk before the next), and proofs read from its tiles.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use tally_consortium::{
    leaf_hash, verify_consistency, verify_inclusion, BlindingKey, Genesis, KeyType, LogStore,
    MemberKey, MerkleLog, Operator, Quorum, SignerKey,
};
use tally_core::SplitMix64;
use tally_store::consortium::SqlLogStore;
use tally_store::testing::TestDatabase;
use tally_store::Database;

use super::{bench_publications, rate, BenchConsortium};
use crate::consortium::demo::{publication, DEMO_TIME};
use crate::consortium::mirror::{Mirror, ENTRIES_PER_REQUEST};

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
                let database =
                    Database::connect(&format!("sqlite://{}", directory.join("log.db").display()))
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
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await?;
        }
        Ok(())
    }
}

pub(crate) async fn bench(
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
pub(crate) async fn bench_follow(
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
    let clock: std::sync::Arc<dyn tally_core::Clock> = std::sync::Arc::new(tally_core::SystemClock);
    let config = tally_service::consortium::ConsortiumConfig::new(
        SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?,
        BlindingKey::new(1, [3; 32]),
        None,
    );
    let (log, _) =
        tally_service::consortium::ConsortiumLog::start(&scratch.database, clock, config).await?;
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
    for entries_per_request in [1, ENTRIES_PER_REQUEST] {
        let mut mirror = Mirror::new(&url, &key)?;
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
fn log_phase(database: &Database, entries: u64, proofs: u64, batch: usize) -> anyhow::Result<()> {
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
            let request =
                tally_consortium::SignedRequest::sign("bench", member, sequence, DEMO_TIME, action);
            requests.push((request, opening));
        }
        work.push(requests);
    }
    let clock: std::sync::Arc<dyn tally_core::Clock> = std::sync::Arc::new(
        tally_core::ManualClock::new(jiff::Timestamp::from_second(DEMO_TIME as i64)?),
    );
    let operator_key = SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
    let mut config =
        tally_service::consortium::ConsortiumConfig::new(operator_key, blinding, Some(genesis));
    config.batch_size_max = batch.min(tally_consortium::operator::ENTRY_BATCH_SIZE_MAX);
    let (log, _) = tally_service::consortium::ConsortiumLog::start(database, clock, config).await?;
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
            .get(((latencies.len() as f64 * share) as usize).min(latencies.len().saturating_sub(1)))
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
    let BenchConsortium {
        member,
        operator_key,
        genesis,
        blinding,
    } = BenchConsortium::new()?;
    let signing = Instant::now();
    let entries = bench_publications(&member, &blinding, count)?;
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
    let operator_key = SignerKey::from_seed("bench.tally.example/log", KeyType::Ed25519, [2; 32])?;
    let mut reopened = Operator::open(store, operator_key.clone(), BlindingKey::new(1, [3; 32]))?;
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
