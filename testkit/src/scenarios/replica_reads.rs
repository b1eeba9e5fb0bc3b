//! Reads served by replicas on a real Redis Cluster, through a master's failover.
//!
//! [`cluster_replica_reads`] writes keys on every shard, reads them all back with
//! [`ReadPolicy::PreferReplica`] and checks, in the nodes' own `INFO commandstats`, that
//! the replicas ran every `GET` and the masters none. Then it SIGKILLs a master and keeps
//! reading every key until its replica has been promoted and a while after: every read
//! must be answered, with the value written.
//!
//! [`sentinel_replica_reads`] does the first part behind Sentinel (one master, one
//! replica), and checks that one call's [`ReadPolicy::scope`] sends its reads to the
//! master instead.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::hash_slot;
use resilience_core::{Command, ConnectionConfig, KvBackend, ReadPolicy, SetOptions, Value};
use tokio::time::Instant;

use super::BackendFuture;
use crate::server::{RedisCluster, RespConnection, RespReply, SentinelDeployment};

/// Keys written and read, spread over every shard.
const KEYS: usize = 300;

/// How long reads go on after the replica was promoted.
const AFTER_PROMOTION: Duration = Duration::from_secs(2);

/// What [`cluster_replica_reads`] measured.
#[derive(Clone, Debug)]
pub struct ReplicaReadsReport {
    /// The backend's name.
    pub backend: &'static str,
    /// `GET`s the replicas ran for the first pass over the keys.
    pub replica_gets: u64,
    /// `GET`s the masters ran for it (0 when every read went to a replica).
    pub master_gets: u64,
    /// Reads made from the kill until 2 s after the replica's promotion.
    pub reads_through_failover: u64,
    /// Of those, the reads that failed or returned anything but the value written.
    pub wrong_through_failover: u64,
    /// From the SIGKILL to the promotion, as the cluster reported it.
    pub kill_to_promoted: Duration,
}

impl fmt::Display for ReplicaReadsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cluster replica reads backend={} replica_gets={} master_gets={} reads_through_failover={} wrong_through_failover={} kill_to_promoted_ms={}",
            self.backend,
            self.replica_gets,
            self.master_gets,
            self.reads_through_failover,
            self.wrong_through_failover,
            self.kill_to_promoted.as_millis(),
        )
    }
}

fn key(n: usize) -> String {
    format!("replica-read:{n}")
}

fn value_bytes(n: usize) -> Bytes {
    Bytes::from(format!("v{n}"))
}

fn value(n: usize) -> Value {
    Value::Bytes(value_bytes(n))
}

/// Every `GET` the nodes in `ports` have run, summed.
async fn gets(cluster: &RedisCluster, ports: &[u16]) -> Result<u64, String> {
    let mut total = 0;
    for &port in ports {
        total += cluster
            .command_calls(port, "get")
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(total)
}

/// How many `GET`s the server at `addr` has run (`INFO commandstats`).
async fn gets_at(addr: std::net::SocketAddr) -> Result<u64, String> {
    let mut conn = RespConnection::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let stats = match conn.command(&["INFO", "commandstats"]).await {
        Ok(RespReply::Bulk(Some(b))) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(format!("INFO commandstats on {addr}: {other:?}")),
    };
    Ok(stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.trim().parse().ok())
        .unwrap_or(0))
}

/// Writes every key (to the master).
async fn write_all(backend: &dyn KvBackend) -> Result<(), String> {
    for n in 0..KEYS {
        backend
            .execute(Command::Set {
                key: key(n),
                value: value_bytes(n),
                options: SetOptions::default(),
            })
            .await
            .map_err(|e| format!("SET {}: {e}", key(n)))?;
    }
    Ok(())
}

/// Connects with `base`'s nodes, short timeouts and `PreferReplica`, and writes every
/// key (to the masters).
async fn connect_and_write(
    connect: &impl Fn(ConnectionConfig) -> BackendFuture,
    base: ConnectionConfig,
) -> Result<Arc<dyn KvBackend>, String> {
    let config = base
        .with_socket_timeout(Duration::from_millis(1000))
        .with_socket_connect_timeout(Duration::from_millis(1000))
        .with_read_policy(ReadPolicy::PreferReplica);
    let backend = connect(config).await.map_err(|e| format!("connect: {e}"))?;
    write_all(backend.as_ref()).await?;
    Ok(backend)
}

/// Reads every key once; the reads that failed or returned another value, described.
async fn read_all(backend: &dyn KvBackend) -> Vec<String> {
    let mut wrong = Vec::new();
    for n in 0..KEYS {
        match backend.execute(Command::Get { key: key(n) }).await {
            Ok(v) if v == value(n) => {}
            other => wrong.push(format!("{}: {other:?}", key(n))),
        }
    }
    wrong
}

/// Reads from replicas on a 3-master, 3-replica cluster, before and through a master's
/// failover (see the module docs). `connect` gets the cluster's settings with
/// `read_policy = PreferReplica`.
///
/// # Errors
///
/// The first broken promise: a read a master ran, a read a replica did not, a read that
/// failed or returned a wrong value; or a step that could not be done.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers it started stop with their handles.
pub async fn cluster_replica_reads(
    connect: impl Fn(ConnectionConfig) -> BackendFuture,
) -> Result<ReplicaReadsReport, String> {
    let mut cluster = RedisCluster::spawn()
        .await
        .map_err(|e| format!("could not start the cluster: {e}"))?;
    let backend = connect_and_write(&connect, cluster.connection_config()).await?;
    // Every replica caught up with its master's writes.
    cluster
        .wait_ready(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let ranges = cluster.slots().await.map_err(|e| e.to_string())?;
    let masters: Vec<u16> = ranges.iter().map(|r| r.master).collect();
    let replicas: Vec<u16> = ranges.iter().flat_map(|r| r.replicas.clone()).collect();
    let (masters_before, replicas_before) = (
        gets(&cluster, &masters).await?,
        gets(&cluster, &replicas).await?,
    );
    let wrong = read_all(backend.as_ref()).await;
    if !wrong.is_empty() {
        return Err(format!("reads from replicas went wrong: {wrong:?}"));
    }
    let mut report = ReplicaReadsReport {
        backend: backend.name(),
        replica_gets: gets(&cluster, &replicas).await? - replicas_before,
        master_gets: gets(&cluster, &masters).await? - masters_before,
        reads_through_failover: 0,
        wrong_through_failover: 0,
        kill_to_promoted: Duration::ZERO,
    };
    if report.replica_gets != KEYS as u64 || report.master_gets != 0 {
        return Err(format!(
            "{KEYS} reads should all have gone to replicas: {report}"
        ));
    }

    let dead_slot = hash_slot(key(0).as_bytes());
    let killed_at = Instant::now();
    let killed = cluster
        .kill_master_owning(dead_slot)
        .await
        .map_err(|e| e.to_string())?;
    let mut promoted_at = None;
    let watch = cluster.wait_for_new_master(dead_slot, killed, Duration::from_secs(30));
    tokio::pin!(watch);
    let mut wrong = Vec::new();
    loop {
        tokio::select! {
            promoted = &mut watch, if promoted_at.is_none() => {
                promoted.map_err(|e| format!("no replica promoted: {e}"))?;
                promoted_at = Some(Instant::now());
                report.kill_to_promoted = killed_at.elapsed();
            }
            found = read_all(backend.as_ref()) => {
                report.reads_through_failover += KEYS as u64;
                report.wrong_through_failover += found.len() as u64;
                wrong.extend(found.into_iter().take(5));
            }
        }
        if promoted_at.is_some_and(|at| at.elapsed() >= AFTER_PROMOTION) {
            break;
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "reads through the failover went wrong ({report}): {wrong:?}"
        ));
    }
    Ok(report)
}

/// What [`sentinel_replica_reads`] measured.
#[derive(Clone, Debug)]
pub struct SentinelReplicaReadsReport {
    /// The backend's name.
    pub backend: &'static str,
    /// `GET`s the replica ran for a pass over the keys under `PreferReplica`.
    pub replica_gets: u64,
    /// `GET`s the master ran for that pass (0 when every read went to the replica).
    pub master_gets: u64,
    /// `GET`s the master ran for a pass made under a per-call `Primary` scope.
    pub master_gets_when_scoped: u64,
}

impl fmt::Display for SentinelReplicaReadsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sentinel replica reads backend={} replica_gets={} master_gets={} master_gets_when_scoped={}",
            self.backend, self.replica_gets, self.master_gets, self.master_gets_when_scoped,
        )
    }
}

/// Reads from the replica of a Sentinel-managed master (see the module docs). `connect`
/// gets the deployment's settings with `read_policy = PreferReplica`.
///
/// # Errors
///
/// The first broken promise: a read the master ran under `PreferReplica`, a read the
/// replica did not, a scoped read that did not go to the master, a wrong value; or a
/// step that could not be done.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers it started stop with their handles.
pub async fn sentinel_replica_reads(
    connect: impl Fn(ConnectionConfig) -> BackendFuture,
) -> Result<SentinelReplicaReadsReport, String> {
    let deployment = SentinelDeployment::spawn()
        .await
        .map_err(|e| format!("could not start the deployment: {e}"))?;
    let backend = connect_and_write(&connect, deployment.connection_config()).await?;
    // The replica has every write: WAIT for one replica's acknowledgement.
    let wait = Command::Raw {
        args: vec!["WAIT".into(), "1".into(), "5000".into()],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    };
    match backend.execute(wait).await {
        Ok(Value::Int(1)) => {}
        other => return Err(format!("WAIT 1 5000 answered {other:?}")),
    }
    let master = deployment.master_addr().await.map_err(|e| e.to_string())?;
    let replica = deployment
        .nodes()
        .iter()
        .map(|n| n.addr())
        .find(|a| *a != master)
        .ok_or("the deployment has no replica")?;
    let (master_before, replica_before) = (gets_at(master).await?, gets_at(replica).await?);
    let wrong = read_all(backend.as_ref()).await;
    if !wrong.is_empty() {
        return Err(format!("reads from the replica went wrong: {wrong:?}"));
    }
    let (master_mid, replica_mid) = (gets_at(master).await?, gets_at(replica).await?);
    let wrong = ReadPolicy::Primary.scope(read_all(backend.as_ref())).await;
    if !wrong.is_empty() {
        return Err(format!(
            "scoped reads from the master went wrong: {wrong:?}"
        ));
    }
    let report = SentinelReplicaReadsReport {
        backend: backend.name(),
        replica_gets: replica_mid - replica_before,
        master_gets: master_mid - master_before,
        master_gets_when_scoped: gets_at(master).await? - master_mid,
    };
    if report.replica_gets != KEYS as u64
        || report.master_gets != 0
        || report.master_gets_when_scoped != KEYS as u64
    {
        return Err(format!(
            "{KEYS} reads should have gone to the replica, then {KEYS} to the master: {report}"
        ));
    }
    Ok(report)
}
