//! Redis Cluster scenarios, run for every backend in cluster mode: commands across shards
//! with `ASK` and `MOVED` redirects, `MULTI` and `EVALSHA` on hash-tagged keys
//! ([`cluster_commands`]), and a killed master with per-shard breakers
//! ([`cluster_failover`]).
//!
//! Each starts its own [`RedisCluster`] (3 masters, 3 replicas) and connects through the
//! factory passed in, with the cluster's seeds in `ConnectionConfig::cluster_nodes`. Both
//! return `Err` with a description of the first broken promise.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    CircuitState, Command, ConnectionConfig, Error, ErrorKind, KvBackend, SetOptions, Value,
};
use resilience_core::{ShardedClient, hash_slot};
use tokio::time::Instant;

use super::BackendFuture;
use crate::server::{ClusterError, RedisCluster};

/// How long [`cluster_failover`] waits for writes to the killed shard to succeed again.
pub const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

/// What [`cluster_failover`] measured.
#[derive(Clone, Debug)]
pub struct FailoverReport {
    /// The backend's name.
    pub backend: &'static str,
    /// From the SIGKILL of the master to the first write on its slots that succeeded.
    pub kill_to_first_write: Duration,
    /// From the SIGKILL until the cluster reported the replica promoted (seen by polling).
    pub kill_to_promoted: Option<Duration>,
    /// Writes to the dead shard refused by its open breaker.
    pub rejected: u64,
    /// The slowest of those refusals.
    pub max_rejected_latency: Duration,
    /// Writes to the dead shard that reached the backend and failed.
    pub failed_on_dead_shard: u64,
    /// Writes to the other shards during the outage, all of which succeeded.
    pub other_shard_writes: u64,
}

impl fmt::Display for FailoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cluster failover backend={} kill_to_first_write_ms={} kill_to_promoted_ms={} rejected={} max_rejected_latency_us={} failed_on_dead_shard={} other_shard_writes={}",
            self.backend,
            self.kill_to_first_write.as_millis(),
            self.kill_to_promoted.map_or(-1, |d| d.as_millis() as i64),
            self.rejected,
            self.max_rejected_latency.as_micros(),
            self.failed_on_dead_shard,
            self.other_shard_writes,
        )
    }
}

fn spawn_failed(e: ClusterError) -> String {
    format!("could not start the cluster: {e}")
}

/// A [`ShardedClient`] named `name` over `backend`, as the cluster scenarios use it: a
/// breaker per shard that opens after 3 failures and closes only by its health probe,
/// every 100 ms.
pub(super) async fn sharded_client(
    name: &str,
    backend: std::sync::Arc<dyn KvBackend>,
) -> Result<ShardedClient, String> {
    sharded_client_with(name, backend, None).await
}

/// [`sharded_client`] with exactly-once writes on `submit` when `exactly_once` is given.
pub(super) async fn sharded_client_with(
    name: &str,
    backend: std::sync::Arc<dyn KvBackend>,
    exactly_once: Option<resilience_core::ExactlyOnceConfig>,
) -> Result<ShardedClient, String> {
    ShardedClient::builder_arc(name, backend)
        .configure(move |b| {
            b.breaker(
                resilience_core::CircuitBreakerConfig::default()
                    .circuit_threshold(3)
                    .circuit_reset_timeout(Duration::from_secs(60))
                    .with_health_check_interval(Duration::from_millis(100)),
            )
            .exactly_once(exactly_once)
        })
        .build()
        .await
        .map_err(|e| format!("ShardedClient: {e}"))
}

/// The cluster's connection settings with short timeouts.
fn config(cluster: &RedisCluster) -> ConnectionConfig {
    cluster
        .connection_config()
        .with_socket_timeout(Duration::from_millis(1000))
        .with_socket_connect_timeout(Duration::from_millis(1000))
}

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(value.as_bytes()),
        options: SetOptions::default(),
    }
}

fn get(key: &str) -> Command {
    Command::Get {
        key: key.to_owned(),
    }
}

async fn expect_value(
    backend: &dyn KvBackend,
    cmd: Command,
    want: Value,
    what: &str,
) -> Result<(), String> {
    match backend.execute(cmd).await {
        Ok(v) if v == want => Ok(()),
        other => Err(format!("{what}: expected {want:?}, got {other:?}")),
    }
}

fn bulk(s: &str) -> Value {
    Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
}

/// A key (with hash tag `tag…`) whose slot the master on `port` owns.
async fn key_on(cluster: &RedisCluster, port: u16, prefix: &str) -> Result<String, String> {
    let ranges = cluster.slots().await.map_err(|e| e.to_string())?;
    (0u32..1_000_000)
        .map(|n| format!("{{{prefix}{n}}}"))
        .find(|k| {
            let slot = hash_slot(k.as_bytes());
            ranges
                .iter()
                .any(|r| r.master == port && (r.start..=r.end).contains(&slot))
        })
        .ok_or_else(|| format!("no key found for node {port}"))
}

/// Commands on a cluster: keys on every shard, a write through `ASK` while its slot
/// migrates and a read through `MOVED` after, an atomic batch on hash-tagged keys, one on
/// a slot that moved under the driver (and a cross-slot one refused), and `EVALSHA` of a
/// loaded script on every shard.
///
/// # Errors
///
/// The error of the step that failed, as returned.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn cluster_commands(
    connect: impl Fn(ConnectionConfig) -> BackendFuture,
) -> Result<(), String> {
    let cluster = RedisCluster::spawn().await.map_err(spawn_failed)?;
    let backend = connect(config(&cluster))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let backend = &*backend;
    let masters: Vec<u16> = cluster
        .slots()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.master)
        .collect();

    // Plain keys land on every shard.
    for i in 0..30 {
        let key = format!("key:{i}");
        expect_value(backend, set(&key, &i.to_string()), Value::Okay, "SET").await?;
        expect_value(backend, get(&key), bulk(&i.to_string()), "GET").await?;
    }

    // ASK while the slot migrates, MOVED once it moved.
    let key = key_on(&cluster, masters[0], "mig").await?;
    let slot = hash_slot(key.as_bytes());
    let from = cluster
        .begin_slot_migration(slot, masters[1])
        .await
        .map_err(|e| e.to_string())?;
    if from != masters[0] {
        return Err(format!(
            "slot {slot} was on {from}, expected {}",
            masters[0]
        ));
    }
    expect_value(backend, set(&key, "asked"), Value::Okay, "SET through ASK").await?;
    expect_value(backend, get(&key), bulk("asked"), "GET through ASK").await?;
    cluster
        .finish_slot_migration(slot, masters[1])
        .await
        .map_err(|e| e.to_string())?;
    if cluster.master_of(slot).await.map_err(|e| e.to_string())? != masters[1] {
        return Err(format!("slot {slot} did not move"));
    }
    expect_value(backend, get(&key), bulk("asked"), "GET through MOVED").await?;
    let second = format!("{key}:2");
    expect_value(
        backend,
        set(&second, "moved"),
        Value::Okay,
        "SET after MOVED",
    )
    .await?;
    expect_value(backend, get(&second), bulk("moved"), "GET after MOVED").await?;

    // MULTI/EXEC on hash-tagged keys of each shard.
    for &port in &masters {
        let tag = key_on(&cluster, port, "tx").await?;
        let (a, b) = (format!("{tag}:a"), format!("{tag}:b"));
        let replies = backend
            .execute_batch(vec![set(&a, "1"), set(&b, "2"), get(&a)], true)
            .await
            .map_err(|e| format!("MULTI on {tag}: {e}"))?;
        if replies != vec![Value::Okay, Value::Okay, bulk("1")] {
            return Err(format!("MULTI on {tag}: {replies:?}"));
        }
        expect_value(backend, get(&b), bulk("2"), "GET after MULTI").await?;
    }
    // A transaction on a slot that moved since the driver last read the slot map: the
    // `MOVED` comes back inside the transaction (a queued command's error, under
    // `EXECABORT`), nothing ran, and the batch must still land on the new owner.
    let moved_key = key_on(&cluster, masters[0], "txmig").await?;
    let moved_slot = hash_slot(moved_key.as_bytes());
    cluster
        .begin_slot_migration(moved_slot, masters[2])
        .await
        .map_err(|e| e.to_string())?;
    cluster
        .finish_slot_migration(moved_slot, masters[2])
        .await
        .map_err(|e| e.to_string())?;
    let replies = backend
        .execute_batch(vec![set(&moved_key, "1"), get(&moved_key)], true)
        .await
        .map_err(|e| format!("MULTI through MOVED on {moved_key}: {e}"))?;
    if replies != vec![Value::Okay, bulk("1")] {
        return Err(format!("MULTI through MOVED on {moved_key}: {replies:?}"));
    }

    // A transaction over two slots cannot run on a cluster, and writes nothing.
    let (x, y) = ("cross:{a}", "cross:{b}");
    if hash_slot(x.as_bytes()) == hash_slot(y.as_bytes()) {
        return Err("test keys share a slot".to_owned());
    }
    match backend
        .execute_batch(vec![set(x, "1"), set(y, "1")], true)
        .await
    {
        Err(e) if e.kind() == ErrorKind::InvalidInput => {}
        other => {
            return Err(format!(
                "a cross-slot MULTI was not refused as bad input: {other:?}"
            ));
        }
    }
    expect_value(
        backend,
        get(x),
        Value::Nil,
        "GET after a refused cross-slot MULTI",
    )
    .await?;

    // EVALSHA, routed by its first key, on every shard.
    let source =
        "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return #KEYS";
    let sha = match backend
        .execute(Command::ScriptLoad {
            script: source.to_owned(),
        })
        .await
    {
        Ok(Value::Bytes(sha)) => String::from_utf8_lossy(&sha).into_owned(),
        other => return Err(format!("SCRIPT LOAD: {other:?}")),
    };
    for &port in &masters {
        let tag = key_on(&cluster, port, "lua").await?;
        let keys = vec![format!("{tag}:a"), format!("{tag}:b")];
        expect_value(
            backend,
            Command::Evalsha {
                sha1: sha.clone(),
                keys: keys.clone(),
                args: vec![Bytes::from_static(b"v")],
                idempotent: true,
            },
            Value::Int(2),
            "EVALSHA",
        )
        .await?;
        expect_value(backend, get(&keys[1]), bulk("v"), "GET after EVALSHA").await?;
        // In an atomic batch too, with the script loaded in the same round trip.
        let replies = backend
            .execute_batch(
                vec![
                    Command::ScriptLoad {
                        script: source.to_owned(),
                    },
                    Command::Evalsha {
                        sha1: sha.clone(),
                        keys: keys.clone(),
                        args: vec![Bytes::from_static(b"w")],
                        idempotent: true,
                    },
                ],
                true,
            )
            .await
            .map_err(|e| format!("EVALSHA in MULTI on {tag}: {e}"))?;
        if replies.get(1) != Some(&Value::Int(2)) {
            return Err(format!("EVALSHA in MULTI on {tag}: {replies:?}"));
        }
        expect_value(backend, get(&keys[0]), bulk("w"), "GET after EVALSHA batch").await?;
    }
    Ok(())
}

/// Kills the master that owns one shard's slots while writes go to every shard through a
/// [`ShardedClient`] (breaker threshold 3, health probe every 100 ms). Checks that writes
/// to the other shards all succeed during the outage, that writes to the dead shard are
/// refused fast by its open breaker, and that they succeed again once the replica was
/// promoted (within [`FAILOVER_DEADLINE`]); returns the numbers.
///
/// # Errors
///
/// The error of the step that failed, as returned.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn cluster_failover(
    connect: impl Fn(ConnectionConfig) -> BackendFuture,
) -> Result<FailoverReport, String> {
    let mut cluster = RedisCluster::spawn().await.map_err(spawn_failed)?;
    let backend = connect(config(&cluster))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = backend.name();
    let sharded = sharded_client("cluster", backend).await?;
    if sharded.shard_count() != 3 {
        return Err(format!("expected 3 shards, got {}", sharded.shard_count()));
    }
    let masters: Vec<u16> = cluster
        .slots()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.master)
        .collect();
    let mut keys = Vec::new();
    for &port in &masters {
        keys.push(key_on(&cluster, port, "fo").await?);
    }
    let dead_key = keys[0].clone();
    let dead_slot = hash_slot(dead_key.as_bytes());
    for key in &keys {
        sharded
            .client_for_key(key.as_bytes())
            .set(key.as_str(), "before", SetOptions::default())
            .await
            .map_err(|e| format!("write before the kill to {key}: {e}"))?;
    }

    let killed_at = Instant::now();
    let killed = cluster
        .kill_master_owning(dead_slot)
        .await
        .map_err(|e| e.to_string())?;
    if killed != masters[0] {
        return Err(format!("killed {killed}, expected {}", masters[0]));
    }
    // Watch for the promotion in the background, to report when it happened.
    let cluster = std::sync::Arc::new(cluster);
    let watcher = {
        let cluster = std::sync::Arc::clone(&cluster);
        tokio::spawn(async move {
            cluster
                .wait_for_new_master(dead_slot, killed, FAILOVER_DEADLINE)
                .await
                .map(|_| killed_at.elapsed())
                .ok()
        })
    };

    let dead = sharded.client_for_key(dead_key.as_bytes()).clone();
    let mut report = FailoverReport {
        backend: name,
        kill_to_first_write: Duration::ZERO,
        kill_to_promoted: None,
        rejected: 0,
        max_rejected_latency: Duration::ZERO,
        failed_on_dead_shard: 0,
        other_shard_writes: 0,
    };
    let mut n = 0u64;
    loop {
        n += 1;
        let value = format!("during-{n}");
        let started = Instant::now();
        // A transaction, not a single command: a driver may follow `MOVED` for single
        // commands only, and a batch (a queued write's replay) must reach the new master
        // too.
        let written = dead
            .transaction()
            .add_command(Command::Set {
                key: dead_key.clone(),
                value: Bytes::from(value.clone()),
                options: SetOptions::default(),
            })
            .add_command(Command::Get {
                key: dead_key.clone(),
            })
            .execute()
            .await;
        match written {
            Ok(_) => {
                report.kill_to_first_write = killed_at.elapsed();
                break;
            }
            Err(Error::CircuitOpen { .. }) => {
                report.rejected += 1;
                report.max_rejected_latency = report.max_rejected_latency.max(started.elapsed());
            }
            Err(_) => report.failed_on_dead_shard += 1,
        }
        for key in &keys[1..] {
            report.other_shard_writes += 1;
            let written = sharded
                .client_for_key(key.as_bytes())
                .set(key.as_str(), value.clone(), SetOptions::default())
                .await;
            if let Err(e) = written {
                return Err(format!(
                    "write to the healthy shard of {key} failed {:?} after the kill: {e}",
                    killed_at.elapsed()
                ));
            }
        }
        if killed_at.elapsed() > FAILOVER_DEADLINE {
            return Err(format!(
                "no write to the killed shard succeeded within {FAILOVER_DEADLINE:?}: {report}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    report.kill_to_promoted = watcher.await.ok().flatten();

    if report.rejected == 0 {
        return Err(format!(
            "the dead shard's breaker never refused a write: {report}"
        ));
    }
    if report.max_rejected_latency > Duration::from_millis(50) {
        return Err(format!("a refused write was slow: {report}"));
    }
    if dead.circuit_state() != CircuitState::Closed {
        return Err(format!(
            "the dead shard's breaker is {:?} after a success",
            dead.circuit_state()
        ));
    }
    for stats in sharded.stats() {
        if stats.stats.name != dead.name() && stats.stats.rejected != 0 {
            return Err(format!("a healthy shard refused calls: {stats:?}"));
        }
    }
    // Every shard serves again.
    for key in &keys {
        let client = sharded.client_for_key(key.as_bytes());
        let deadline = Instant::now() + FAILOVER_DEADLINE;
        loop {
            match client
                .set(key.as_str(), "after", SetOptions::default())
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "shard of {key} does not serve after the failover: {e}"
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    Ok(report)
}
