//! Chaos on a Redis Cluster ([`cluster_chaos`]): the soak's faults, on one master at a
//! time, while counters are incremented on every shard and high-priority writes are
//! submitted. In turn, on the master of the next shard:
//!
//! - **kill**: SIGKILL; its replica is promoted; once a write to its slots succeeds, the
//!   old master is restarted and rejoins as a replica, and the run waits until every
//!   replica has caught up;
//! - **blackhole**: the client's connections to it forward nothing for 1.5 s (longer
//!   than the 500 ms socket timeout), then pass again;
//! - **reset**: every connection of the client to it is reset, and every new one for
//!   300 ms.
//!
//! The client reaches every node through a fault proxy of its own ([`ClusterProxies`]: its
//! `cluster_address_map` points the announced addresses at the proxies), so the
//! network faults hit the client's connections only, never replication or gossip.
//!
//! What it proves, for the backend under test:
//!
//! - **No write is applied twice.** Every `INCR` ends as ok, timeout (it may have run)
//!   or unavailable (it did not run: refused, breaker open, not connected). For each
//!   counter, at the end, `ok ≤ value ≤ ok + timeouts`. A resend after a connection
//!   error would push a value past the upper bound; an acknowledged increment that was
//!   lost would put it under the lower one. Either is a violation.
//! - **No acknowledged write is lost.** Every high-priority `submit` that was stored (at
//!   once, or later from the recovery queue) is read back at the end.
//! - **Exactly-once increments are exact.** Other counters are incremented with
//!   high-priority `submit`s of a client in exactly-once mode: each is stored at once, or
//!   queued and replayed (with its write id) until stored. At the end every such counter
//!   equals its acknowledged increments exactly, and no increment's fate is unknown.
//!
//! It prints one line, `cluster-chaos backend=… secs=… kills=… ops=… ok=… ambiguous=…
//! exact=… exact_ambiguous=… violations=… lost=…`, and one with the other faults and the
//! time from each kill to the first successful write on the killed master's slots.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    Command, ConnectionConfig, Error, Priority, SetOptions, ShardedClient, StoreOutcome,
    TicketOutcome, hash_slot,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::BackendFuture;
use crate::proxy::ProxyMode;
use crate::server::{ClusterError, ClusterProxies, RedisCluster};

/// How long the load runs when `CLUSTER_CHAOS_SECS` is not set.
pub const DEFAULT_CHAOS_SECS: u64 = 20;

/// Concurrent `INCR` loops.
const INCR_WORKERS: usize = 16;

/// Concurrent `submit` loops.
const SUBMITTERS: usize = 2;

/// Counters per master.
const KEYS_PER_MASTER: usize = 8;

/// Concurrent exactly-once increment loops.
const EXACT_WORKERS: usize = 4;

/// How long a failover, a rejoin or the final drain may take before the run fails.
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// How long the load runs: `CLUSTER_CHAOS_SECS` seconds, else [`DEFAULT_CHAOS_SECS`].
pub fn chaos_duration() -> Duration {
    let secs = std::env::var("CLUSTER_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(DEFAULT_CHAOS_SECS);
    Duration::from_secs(secs.max(1))
}

/// What [`cluster_chaos`] counted.
#[derive(Clone, Debug, Default)]
pub struct ChaosReport {
    /// The backend's name.
    pub backend: &'static str,
    /// How long the load ran.
    pub secs: u64,
    /// Masters killed.
    pub kills: u64,
    /// Masters cut off from the client for a while (blackholed proxy).
    pub blackholes: u64,
    /// Times the client's connections to a master were reset.
    pub resets: u64,
    /// `INCR`s sent (every outcome).
    pub ops: u64,
    /// `INCR`s acknowledged.
    pub ok: u64,
    /// `INCR`s that timed out: they may or may not have run.
    pub ambiguous: u64,
    /// `INCR`s that certainly did not run (refused, breaker open, not connected).
    pub unavailable: u64,
    /// Exactly-once increments acknowledged (stored at once, or queued and replayed).
    pub exact: u64,
    /// Exactly-once increments whose fate is unknown (timed out, or given up while
    /// queued): none, when the mode keeps its promise.
    pub exact_ambiguous: u64,
    /// Counters outside `ok ..= ok + ambiguous`, and exactly-once counters other than
    /// their acknowledged increments.
    pub violations: u64,
    /// High-priority writes acknowledged as stored.
    pub acknowledged: u64,
    /// Acknowledged writes missing at the end.
    pub lost: u64,
    /// For each kill, the time until a write to the killed master's slots succeeded.
    pub kill_to_first_write: Vec<Duration>,
    /// The first broken promises, described.
    pub problems: Vec<String>,
}

impl ChaosReport {
    fn problem(&mut self, text: String) {
        if self.problems.len() < 10 {
            self.problems.push(text);
        }
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cluster-chaos backend={} secs={} kills={} ops={} ok={} ambiguous={} exact={} exact_ambiguous={} violations={} lost={}",
            self.backend,
            self.secs,
            self.kills,
            self.ops,
            self.ok,
            self.ambiguous,
            self.exact,
            self.exact_ambiguous,
            self.violations,
            self.lost
        )?;
        let ms: Vec<String> = self
            .kill_to_first_write
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect();
        write!(
            f,
            "cluster-chaos-faults backend={} blackholes={} resets={} unavailable={} acknowledged={} kill_to_first_write_ms=[{}]",
            self.backend,
            self.blackholes,
            self.resets,
            self.unavailable,
            self.acknowledged,
            ms.join(",")
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// One counter's outcomes.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    ambiguous: AtomicU64,
    unavailable: AtomicU64,
}

fn spawn_failed(e: ClusterError) -> String {
    format!("could not start the cluster: {e}")
}

/// Runs the chaos for `duration` (see the module docs) and returns the counts; `Err`
/// when the cluster could not be set up or did not recover within 30 s. The caller checks
/// `violations` and `lost` (both must be 0).
///
/// # Errors
///
/// The error of the step that failed, as returned.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn cluster_chaos(
    connect: impl Fn(ConnectionConfig) -> BackendFuture,
    duration: Duration,
) -> Result<ChaosReport, String> {
    let mut cluster = RedisCluster::spawn().await.map_err(spawn_failed)?;
    // A fault proxy in front of every node, for the client only.
    let proxies = ClusterProxies::start(&cluster)
        .await
        .map_err(|e| format!("fault proxies: {e}"))?;
    let config = cluster
        .connection_config()
        .with_cluster_address_map(proxies.address_map())
        .with_socket_timeout(Duration::from_millis(500))
        .with_socket_connect_timeout(Duration::from_millis(500));
    let backend = connect(config).await.map_err(|e| format!("connect: {e}"))?;
    let name = backend.name();
    let sharded = super::cluster::sharded_client_with(
        "chaos",
        backend,
        Some(resilience_core::ExactlyOnceConfig::default()),
    )
    .await?;
    let keys = counter_keys(&cluster, "chaos:counter").await?;
    let exact_keys = Arc::new(counter_keys(&cluster, "chaos:exact").await?);
    let tallies: Arc<Vec<Tally>> = Arc::new(keys.iter().map(|_| Tally::default()).collect());
    let keys = Arc::new(keys);
    let stop = Arc::new(AtomicBool::new(false));

    let mut load = JoinSet::new();
    for worker in 0..INCR_WORKERS {
        let (sharded, keys, tallies, stop) = (
            sharded.clone(),
            Arc::clone(&keys),
            Arc::clone(&tallies),
            Arc::clone(&stop),
        );
        load.spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let index = n % keys.len();
                let key = &keys[index];
                let tally = &tallies[index];
                match sharded
                    .client_for_key(key.as_bytes())
                    .incrby(key.as_str(), 1)
                    .await
                {
                    Ok(_) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if matches!(e, Error::Timeout(_)) {
                            tally.ambiguous.fetch_add(1, Ordering::Relaxed);
                        } else {
                            tally.unavailable.fetch_add(1, Ordering::Relaxed);
                        }
                        // Do not spin on an open breaker.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            Vec::new()
        });
    }
    for submitter in 0..SUBMITTERS {
        let (sharded, stop) = (sharded.clone(), Arc::clone(&stop));
        load.spawn(async move { submit_loop(sharded, submitter, stop).await });
    }
    for worker in 0..EXACT_WORKERS {
        let (sharded, keys, stop) = (sharded.clone(), Arc::clone(&exact_keys), Arc::clone(&stop));
        load.spawn(async move { exact_loop(sharded, worker, keys, stop).await });
    }

    let started = Instant::now();
    let mut report = ChaosReport {
        backend: name,
        ..ChaosReport::default()
    };
    let chaos = fault_loop(
        &mut cluster,
        &proxies,
        &sharded,
        &keys,
        started,
        duration,
        &mut report,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut submitted: Vec<Submission> = Vec::new();
    while let Some(joined) = load.join_next().await {
        submitted.extend(joined.map_err(|e| format!("a load task failed: {e}"))?);
    }
    report.secs = started.elapsed().as_secs();
    chaos?;
    cluster
        .wait_ready(STEP_DEADLINE)
        .await
        .map_err(|e| format!("the cluster did not settle: {e}"))?;

    // Every queued write reaches its fate; then each acknowledged one is read back.
    let drained = Instant::now() + STEP_DEADLINE;
    let mut exact_acknowledged = vec![0u64; exact_keys.len()];
    for submission in submitted {
        let immediate = matches!(submission.outcome, Acked::Stored);
        let acknowledged = match submission.outcome {
            Acked::Stored => true,
            Acked::Unknown => false,
            Acked::Queued(ticket) => {
                let remaining = drained.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, ticket.wait()).await {
                    Ok(TicketOutcome::Completed) => true,
                    Ok(TicketOutcome::DeadLettered { .. }) => false,
                    Err(_) => {
                        return Err(format!(
                            "a queued write was not settled in {STEP_DEADLINE:?}"
                        ));
                    }
                }
            }
        };
        if let Some(index) = submission.increments {
            if acknowledged {
                report.exact += 1;
                exact_acknowledged[index] += 1;
            } else {
                report.exact_ambiguous += 1;
            }
            continue;
        }
        if acknowledged {
            report.acknowledged += 1;
            let read = read_back(&sharded, &submission.key).await?;
            if read.as_deref() != Some(submission.value.as_bytes()) {
                report.problem(format!(
                    "{} (submitted after {} ms, stored {}) reads back {read:?}",
                    submission.key,
                    submission.at_ms,
                    if immediate {
                        "at once"
                    } else {
                        "from the queue"
                    },
                ));
                report.lost += 1;
            }
        }
    }
    for (key, tally) in keys.iter().zip(tallies.iter()) {
        let ok = tally.ok.load(Ordering::Relaxed);
        let ambiguous = tally.ambiguous.load(Ordering::Relaxed);
        let unavailable = tally.unavailable.load(Ordering::Relaxed);
        report.ok += ok;
        report.ambiguous += ambiguous;
        report.unavailable += unavailable;
        report.ops += ok + ambiguous + unavailable;
        let value = read_counter(&sharded, key).await?;
        if value < ok || value > ok + ambiguous {
            report.problem(format!(
                "counter {key} holds {value}: {ok} increments acknowledged, {ambiguous} timed out"
            ));
            report.violations += 1;
        }
    }
    for (key, acknowledged) in exact_keys.iter().zip(exact_acknowledged) {
        let value = read_counter(&sharded, key).await?;
        if value != acknowledged {
            report.problem(format!(
                "exactly-once counter {key} holds {value}: {acknowledged} increments acknowledged"
            ));
            report.violations += 1;
        }
    }
    sharded.shutdown(Duration::from_secs(5)).await;
    Ok(report)
}

/// Exactly-once increments of `keys`, in turn, as high-priority `submit`s until `stop`:
/// each stored at once, queued, or (a broken promise) of unknown fate.
async fn exact_loop(
    sharded: ShardedClient,
    worker: usize,
    keys: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> Vec<Submission> {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut n = worker;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let index = n % keys.len();
        let key = keys[index].clone();
        let incr = Command::Incrby {
            key: key.clone(),
            delta: 1,
        };
        let outcome = match sharded
            .client_for_key(key.as_bytes())
            .submit(vec![incr], Priority::High)
            .await
        {
            StoreOutcome::Stored => Acked::Stored,
            StoreOutcome::Queued(ticket) => Acked::Queued(ticket),
            StoreOutcome::Failed(Error::Timeout(_)) => Acked::Unknown,
            // Refused before it was sent: not applied, nothing to count.
            StoreOutcome::Dropped | StoreOutcome::Failed(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        out.push(Submission {
            key,
            value: String::new(),
            outcome,
            at_ms: t0.elapsed().as_millis(),
            increments: Some(index),
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

/// [`KEYS_PER_MASTER`] counter keys (`prefix:n`) on each master.
async fn counter_keys(cluster: &RedisCluster, prefix: &str) -> Result<Vec<String>, String> {
    let ranges = cluster.slots().await.map_err(|e| e.to_string())?;
    let mut keys = Vec::new();
    for range in &ranges {
        let mine = (0u32..)
            .map(|n| format!("{prefix}:{n}"))
            .filter(|k| {
                let slot = hash_slot(k.as_bytes());
                ranges
                    .iter()
                    .any(|r| r.master == range.master && (r.start..=r.end).contains(&slot))
            })
            .take(KEYS_PER_MASTER);
        keys.extend(mine);
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// The faults of [`fault_loop`], taken in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL a master; its replica takes over; it comes back as a replica.
    Kill,
    /// The master's proxy forwards nothing for [`BLACKHOLE_FOR`], then passes again.
    Blackhole,
    /// The master's proxy resets every open connection, and every new one for
    /// [`RESET_FOR`].
    Reset,
}

/// How long a blackhole lasts (longer than the socket timeout, so calls time out).
const BLACKHOLE_FOR: Duration = Duration::from_millis(1500);

/// How long new connections are reset after the open ones were.
const RESET_FOR: Duration = Duration::from_millis(300);

/// Until `duration` is over (and at least once each), one fault after another, each on the master of the next
/// shard (walking the counter keys so every master gets each kind of fault): kill,
/// blackhole, reset. After each, waits until a write to that master's slots succeeds (the
/// time is recorded for kills), and after a kill until the old master rejoined as a
/// replica and caught up.
async fn fault_loop(
    cluster: &mut RedisCluster,
    proxies: &ClusterProxies,
    sharded: &ShardedClient,
    keys: &[String],
    started: Instant,
    duration: Duration,
    report: &mut ChaosReport,
) -> Result<(), String> {
    const FAULTS: [Fault; 3] = [Fault::Kill, Fault::Blackhole, Fault::Reset];
    // A little steady load before the first fault.
    tokio::time::sleep(Duration::from_millis(500).min(duration)).await;
    let mut round = 0usize;
    // Every kind of fault at least once, however short `duration` is.
    while started.elapsed() < duration || round < FAULTS.len() {
        let key = &keys[(round * KEYS_PER_MASTER) % keys.len()];
        let fault = FAULTS[round % FAULTS.len()];
        round += 1;
        let slot = hash_slot(key.as_bytes());
        let master = cluster
            .master_of(slot)
            .await
            .map_err(|e| format!("master of slot {slot}: {e}"))?;
        let proxy = proxies
            .of_node(master)
            .ok_or_else(|| format!("no proxy in front of node {master}"))?;
        let began = Instant::now();
        match fault {
            Fault::Kill => {
                cluster
                    .kill_master_owning(slot)
                    .await
                    .map_err(|e| format!("kill: {e}"))?;
                report.kills += 1;
            }
            Fault::Blackhole => {
                proxy.set_mode(ProxyMode::Blackhole);
                tokio::time::sleep(BLACKHOLE_FOR).await;
                proxy.set_mode(ProxyMode::Pass);
                report.blackholes += 1;
            }
            Fault::Reset => {
                proxy.set_mode(ProxyMode::Reset);
                proxy.reset_all();
                tokio::time::sleep(RESET_FOR).await;
                proxy.set_mode(ProxyMode::Pass);
                report.resets += 1;
            }
        }
        first_write(sharded, key, round).await?;
        if fault == Fault::Kill {
            report.kill_to_first_write.push(began.elapsed());
            let node = cluster
                .node_mut(master)
                .ok_or_else(|| format!("no node {master}"))?;
            node.restart()
                .await
                .map_err(|e| format!("restart {master}: {e}"))?;
            cluster
                .wait_ready(STEP_DEADLINE)
                .await
                .map_err(|e| format!("node {master} did not rejoin: {e}"))?;
        }
        // Some load on the healed cluster before the next fault.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// Writes to `key`'s slots until a write succeeds. `Err` after [`STEP_DEADLINE`].
async fn first_write(sharded: &ShardedClient, key: &str, round: usize) -> Result<(), String> {
    let began = Instant::now();
    let probe = format!("chaos:probe:{{{key}}}");
    let client = sharded.client_for_key(probe.as_bytes());
    loop {
        let written = client
            .set(probe.as_str(), round.to_string(), SetOptions::default())
            .await;
        if written.is_ok() {
            return Ok(());
        }
        if began.elapsed() > STEP_DEADLINE {
            return Err(format!(
                "no write to the slots of {key} within {STEP_DEADLINE:?} of a fault"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Where a submitted write stands.
enum Acked {
    Stored,
    Queued(resilience_core::Ticket),
    /// An exactly-once increment that failed as `Timeout`: it may have run.
    Unknown,
}

/// A submitted write that was stored or queued (dropped or failed ones are not
/// acknowledged and need no check).
struct Submission {
    key: String,
    value: String,
    outcome: Acked,
    /// When it was submitted, from the start of its loop.
    at_ms: u128,
    /// For an exactly-once increment, the index of its counter.
    increments: Option<usize>,
}

/// Submits unique `SET`s at high priority until `stop`, every 2 ms.
async fn submit_loop(
    sharded: ShardedClient,
    submitter: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Submission> {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("chaos:ack:{submitter}:{n}");
        let value = format!("{submitter}-{n}");
        let set = Command::Set {
            key: key.clone(),
            value: Bytes::from(value.clone()),
            options: SetOptions::default(),
        };
        let outcome = sharded
            .client_for_key(key.as_bytes())
            .submit(vec![set], Priority::High)
            .await;
        let outcome = match outcome {
            StoreOutcome::Stored => Acked::Stored,
            StoreOutcome::Queued(ticket) => Acked::Queued(ticket),
            StoreOutcome::Dropped | StoreOutcome::Failed(_) => continue,
        };
        out.push(Submission {
            key,
            value,
            outcome,
            at_ms: t0.elapsed().as_millis(),
            increments: None,
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

/// A counter's value (0 when absent), read with [`read_back`].
async fn read_counter(sharded: &ShardedClient, key: &str) -> Result<u64, String> {
    match read_back(sharded, key).await? {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("counter {key} is not a number")),
    }
}

/// `GET key`, retried until it answers (the cluster may still be settling).
async fn read_back(sharded: &ShardedClient, key: &str) -> Result<Option<Bytes>, String> {
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        match sharded.client_for_key(key.as_bytes()).get(key).await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("could not read {key} back: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
