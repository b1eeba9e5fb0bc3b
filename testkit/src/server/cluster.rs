//! A local Redis Cluster for integration tests: [`RedisCluster`].
//!
//! [`RedisCluster::spawn`] starts six `redis-server` processes (each a [`RedisServer`] on
//! a free port, in its own directory, with `cluster-enabled yes`), joins them with
//! `redis-cli --cluster create … --cluster-replicas 1` (three masters with one replica
//! each) and waits until every node reports `cluster_state:ok`, all 16384 slots are
//! served and every replica is in sync. Dropping it kills every process.
//!
//! The nodes use `cluster-node-timeout 1000` (ms), so when a master dies its replica is
//! promoted about two seconds later, and `cluster-replica-validity-factor 0`, so a
//! replica is always allowed to take over, and `cluster-require-full-coverage no`, so
//! while a shard has no master the other masters keep serving their slots (with the
//! default `yes`, every node answers `CLUSTERDOWN` from the moment a master is marked
//! failed until its replica takes over: one dead shard would stop them all). Each node's cluster bus listens on its own
//! free port (`cluster-port`), not on port + 10000.
//!
//! ```no_run
//! use testkit::server::RedisCluster;
//!
//! # async fn demo() -> Result<(), testkit::server::ClusterError> {
//! let mut cluster = RedisCluster::spawn().await?;
//! let url = cluster.url(); // redis://127.0.0.1:p1?cluster=127.0.0.1:p2,…
//! let killed = cluster.kill_master_owning(12182).await?; // the slot of "foo"
//! let promoted = cluster.wait_for_new_master(12182, killed, std::time::Duration::from_secs(20)).await?;
//! # let _ = (url, promoted);
//! # Ok(())
//! # }
//! ```
//!
//! `redis-cli` must be installed next to `redis-server`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::time::Duration;

use resilience_core::ConnectionConfig;
use tokio::process::Command;
use tokio::time::Instant;

use super::error::SpawnError;
use super::resp::{RespConnection, RespReply};
use super::single::{AclUser, RedisServer, free_port};
use crate::proxy::{FaultProxy, ProxyMode};

/// How long the cluster may take to form (create, agree, sync replicas).
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout of one admin command sent to one node.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a cluster could not be started or inspected.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A node could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// `redis-cli --cluster create` failed; its output.
    #[error("redis-cli --cluster create failed: {0}")]
    Create(String),
    /// The cluster did not reach the expected state in time.
    #[error("cluster not ready after {waited:?}: {state}")]
    NotReady {
        /// How long it was waited for.
        waited: Duration,
        /// What was last seen.
        state: String,
    },
    /// No live node knows who owns the slot, or a slot out of range.
    #[error("no live master owns slot {0}")]
    NoOwner(u16),
}

/// Settings of a [`RedisCluster`]: [`RedisCluster::spawn`] uses the defaults.
#[derive(Clone, Debug)]
pub struct RedisClusterBuilder {
    cpus: Option<Vec<usize>>,
    appendfsync_always: bool,
    node_timeout: Duration,
    acl_users: Vec<AclUser>,
}

impl Default for RedisClusterBuilder {
    fn default() -> Self {
        RedisClusterBuilder {
            cpus: None,
            appendfsync_always: false,
            node_timeout: Duration::from_millis(1000),
            acl_users: Vec::new(),
        }
    }
}

impl RedisClusterBuilder {
    /// Gives every node this ACL user (see [`RedisServerBuilder::acl_user`](super::RedisServerBuilder::acl_user)).
    pub fn acl_user(mut self, user: AclUser) -> Self {
        self.acl_users.push(user);
        self
    }

    /// Pins every node to `cpus` (benchmarks keep the servers off the client's CPU).
    pub fn cpus(mut self, cpus: Vec<usize>) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Every node with an AOF and `appendfsync always`, so what a master acknowledged
    /// survives its SIGKILL and restart (see [`RedisServerBuilder::appendfsync_always`](super::RedisServerBuilder::appendfsync_always)).
    pub fn appendfsync_always(mut self, on: bool) -> Self {
        self.appendfsync_always = on;
        self
    }

    /// `cluster-node-timeout` (default 1 s): how long a master may be unreachable before
    /// its replica takes over. A longer one lets a test kill and restart a master without
    /// a failover.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Starts 3 masters and 3 replicas with these settings and waits until the cluster
    /// serves every slot and every replica is in sync (bounded by
    /// [`CLUSTER_READY_TIMEOUT`]).
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn spawn(self) -> Result<RedisCluster, ClusterError> {
        let starting = (0..6).map(|_| RedisCluster::spawn_node(&self));
        let nodes = futures::future::try_join_all(starting).await?;
        let cluster = RedisCluster { nodes };
        cluster.create().await?;
        cluster.wait_ready(CLUSTER_READY_TIMEOUT).await?;
        Ok(cluster)
    }
}

/// A [`FaultProxy`] in front of every node of a [`RedisCluster`], for a client only.
///
/// The nodes keep announcing their own ports, so replication and gossip never cross a
/// proxy; a client configured with [`address_map`](Self::address_map) as its
/// `ConnectionConfig::cluster_address_map` dials every node through its proxy, so
/// blackholes, resets and latency hit the client's connections alone.
#[derive(Debug)]
pub struct ClusterProxies {
    by_node: HashMap<u16, FaultProxy>,
}

impl ClusterProxies {
    /// Starts one proxy per node of `cluster` (started or killed).
    ///
    /// # Errors
    ///
    /// The I/O error of the connection or the listener.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn start(cluster: &RedisCluster) -> std::io::Result<ClusterProxies> {
        let mut by_node = HashMap::new();
        for port in cluster.ports() {
            let node = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
            by_node.insert(port, FaultProxy::start(node).await?);
        }
        Ok(ClusterProxies { by_node })
    }

    /// Each node's announced address (`127.0.0.1:port`) and its proxy's address, for
    /// `ConnectionConfig::with_cluster_address_map`.
    pub fn address_map(&self) -> Vec<(String, String)> {
        self.by_node
            .iter()
            .map(|(port, proxy)| (format!("127.0.0.1:{port}"), proxy.addr().to_string()))
            .collect()
    }

    /// The proxy in front of the node on `port`.
    pub fn of_node(&self, port: u16) -> Option<&FaultProxy> {
        self.by_node.get(&port)
    }

    /// Sets every proxy's mode.
    pub fn set_mode(&self, mode: ProxyMode) {
        for proxy in self.by_node.values() {
            proxy.set_mode(mode);
        }
    }

    /// Resets every connection every proxy holds now.
    pub fn reset_all(&self) {
        for proxy in self.by_node.values() {
            proxy.reset_all();
        }
    }
}

/// One slot range and the ports of its master and replicas, from `CLUSTER SLOTS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot, inclusive.
    pub end: u16,
    /// The master's port.
    pub master: u16,
    /// The replicas' ports.
    pub replicas: Vec<u16>,
}

/// A running local Redis Cluster of three masters with one replica each.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts 3 masters and 3 replicas and waits until the cluster serves every slot and
    /// every replica is in sync (bounded by [`CLUSTER_READY_TIMEOUT`]).
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn spawn() -> Result<RedisCluster, ClusterError> {
        Self::builder().spawn().await
    }

    /// Settings for a cluster other than [`spawn`](Self::spawn)'s.
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder::default()
    }

    /// Starts one cluster node. Its bus port is picked before the server starts, so a
    /// server another test spawns meanwhile can take it: then every attempt of that spawn
    /// fails on the bus port, and the node is tried again with a fresh one.
    async fn spawn_node(settings: &RedisClusterBuilder) -> Result<RedisServer, SpawnError> {
        const BUS_ATTEMPTS: u32 = 5;
        let mut last = SpawnError::PortsTaken { attempts: 0 };
        for _ in 0..BUS_ATTEMPTS {
            let bus = free_port().map_err(SpawnError::Io)?;
            let mut builder =
                RedisServer::builder().appendfsync_always(settings.appendfsync_always);
            if let Some(cpus) = &settings.cpus {
                builder = builder.cpus(cpus.clone());
            }
            for user in &settings.acl_users {
                builder = builder.acl_user(user.clone());
            }
            let spawned = builder
                .arg("cluster-enabled", "yes")
                .arg("cluster-config-file", "nodes.conf")
                .arg(
                    "cluster-node-timeout",
                    settings.node_timeout.as_millis().to_string(),
                )
                .arg("cluster-replica-validity-factor", "0")
                .arg("cluster-require-full-coverage", "no")
                .arg("cluster-port", bus.to_string())
                .spawn()
                .await;
            match spawned {
                Err(e @ SpawnError::PortsTaken { .. }) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    async fn create(&self) -> Result<(), ClusterError> {
        let mut cli = Command::new("redis-cli");
        cli.arg("--cluster").arg("create");
        for node in &self.nodes {
            cli.arg(format!("127.0.0.1:{}", node.port()));
        }
        cli.args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(CLUSTER_READY_TIMEOUT, cli.output())
            .await
            .map_err(|_| ClusterError::Create("timed out".to_owned()))?
            .map_err(|e| ClusterError::Create(format!("could not run redis-cli: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("All 16384 slots covered") {
            return Err(ClusterError::Create(format!(
                "{}\n{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Waits until every live node says `cluster_state:ok` with all slots ok, every slot
    /// has a live master, every other live node is a replica whose link to its master is
    /// up and that has caught up with the master's replication offset (so a master
    /// killed now loses no write it acknowledged before), and gossip has converged.
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ClusterError> {
        let started = Instant::now();
        loop {
            let state = match self.check_ready().await {
                Ok(()) => return Ok(()),
                Err(seen) => seen,
            };
            if started.elapsed() >= timeout {
                return Err(ClusterError::NotReady {
                    waited: started.elapsed(),
                    state,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn check_ready(&self) -> Result<(), String> {
        let live: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.pid().is_some())
            .map(RedisServer::port)
            .collect();
        for &port in &live {
            let info = text_reply(port, &["CLUSTER", "INFO"]).await?;
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return Err(format!("node {port}: {}", first_lines(&info)));
            }
        }
        let ranges = self.slots().await.map_err(|e| e.to_string())?;
        for &port in &live {
            if ranges.iter().any(|r| r.master == port) {
                continue;
            }
            // Not a master with slots: it must be a replica in sync (a node that was just
            // told to replicate is a master without slots for a moment).
            let repl = text_reply(port, &["INFO", "replication"]).await?;
            if !repl.contains("role:slave") || !repl.contains("master_link_status:up") {
                return Err(format!("node {port} is not yet a replica in sync"));
            }
        }
        // Every replica has the writes its master had a moment ago. `master_link_status:up`
        // is not enough: after a diskless full sync the master streams nothing until the
        // replica's first `REPLCONF ACK` (up to a second later), and a master killed in
        // that window takes every write since the snapshot with it.
        for range in ranges.iter().filter(|r| live.contains(&r.master)) {
            let master = text_reply(range.master, &["INFO", "replication"]).await?;
            let target = info_field(&master, "master_repl_offset").unwrap_or(0);
            for &replica in range.replicas.iter().filter(|p| live.contains(p)) {
                let repl = text_reply(replica, &["INFO", "replication"]).await?;
                let offset = info_field(&repl, "slave_repl_offset").unwrap_or(0);
                if offset < target {
                    return Err(format!(
                        "replica {replica} is at offset {offset}, its master {} was at {target}",
                        range.master
                    ));
                }
            }
        }
        // Gossip has converged: every live node's slot map lists every live node.
        for &port in &live {
            let seen = match admin(port, &["CLUSTER", "SLOTS"]).await? {
                RespReply::Array(Some(entries)) => {
                    parse_slots(entries).map_err(|e| e.to_string())?
                }
                other => return Err(format!("node {port}: CLUSTER SLOTS answered {other:?}")),
            };
            let listed = seen
                .iter()
                .flat_map(|r| std::iter::once(r.master).chain(r.replicas.iter().copied()))
                .filter(|p| live.contains(p))
                .count();
            if listed != live.len() {
                return Err(format!(
                    "node {port} knows {listed} of {} live nodes",
                    live.len()
                ));
            }
        }
        let covered: u32 = ranges
            .iter()
            .filter(|r| live.contains(&r.master))
            .map(|r| u32::from(r.end - r.start) + 1)
            .sum();
        if covered != 16384 {
            return Err(format!("live masters cover {covered} slots"));
        }
        Ok(())
    }

    /// The ports of every node, started or killed, in creation order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// `127.0.0.1:port` of every node, as seeds for a client.
    pub fn seed_nodes(&self) -> Vec<(String, u16)> {
        self.ports()
            .into_iter()
            .map(|p| ("127.0.0.1".to_owned(), p))
            .collect()
    }

    /// `redis://127.0.0.1:p1/?cluster=127.0.0.1:p2,…`: every node as a seed.
    pub fn url(&self) -> String {
        let ports = self.ports();
        let rest: Vec<String> = ports[1..]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis://127.0.0.1:{}/?cluster={}", ports[0], rest.join(","))
    }

    /// Connection settings with every node as a seed (the rest default).
    pub fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig::default()
            .with_host("127.0.0.1")
            .with_port(self.ports()[0])
            .with_cluster_nodes(self.seed_nodes())
    }

    /// The slot map as a live node sees it (`CLUSTER SLOTS`).
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn slots(&self) -> Result<Vec<SlotRange>, ClusterError> {
        let mut last = String::from("no live node");
        for node in self.nodes.iter().filter(|n| n.pid().is_some()) {
            match admin(node.port(), &["CLUSTER", "SLOTS"]).await {
                Ok(RespReply::Array(Some(entries))) => return parse_slots(entries),
                Ok(other) => last = format!("{other:?}"),
                Err(e) => last = e,
            }
        }
        Err(ClusterError::NotReady {
            waited: Duration::ZERO,
            state: last,
        })
    }

    /// The port of the master that owns `slot`, as a live node sees it.
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn master_of(&self, slot: u16) -> Result<u16, ClusterError> {
        self.slots()
            .await?
            .into_iter()
            .find(|r| (r.start..=r.end).contains(&slot))
            .map(|r| r.master)
            .ok_or(ClusterError::NoOwner(slot))
    }

    /// Kills (SIGKILL) the master that owns `slot` and returns its port. Its replica is
    /// promoted by the cluster about two seconds later: see
    /// [`wait_for_new_master`](Self::wait_for_new_master).
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn kill_master_owning(&mut self, slot: u16) -> Result<u16, ClusterError> {
        let port = self.master_of(slot).await?;
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .ok_or(ClusterError::NoOwner(slot))?;
        node.stop().await?;
        Ok(port)
    }

    /// Waits until a live master other than `old` owns `slot` and the cluster says
    /// `cluster_state:ok` again; returns the new master's port.
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn wait_for_new_master(
        &self,
        slot: u16,
        old: u16,
        timeout: Duration,
    ) -> Result<u16, ClusterError> {
        let started = Instant::now();
        loop {
            if let Ok(port) = self.master_of(slot).await
                && port != old
                && self.check_ready().await.is_ok()
            {
                return Ok(port);
            }
            if started.elapsed() >= timeout {
                return Err(ClusterError::NotReady {
                    waited: started.elapsed(),
                    state: format!("slot {slot} still has no new master"),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts moving an empty `slot` to the master on port `to`: `IMPORTING` on `to`,
    /// `MIGRATING` on the owner. From now on the owner answers `ASK` for keys of the slot
    /// it does not hold. Returns the owner's port. Finish with
    /// [`finish_slot_migration`](Self::finish_slot_migration).
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn begin_slot_migration(&self, slot: u16, to: u16) -> Result<u16, ClusterError> {
        let from = self.master_of(slot).await?;
        let (from_id, to_id) = (node_id(from).await?, node_id(to).await?);
        let slot_s = slot.to_string();
        expect_ok(to, &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from_id]).await?;
        expect_ok(from, &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to_id]).await?;
        Ok(from)
    }

    /// Gives `slot` to the master on port `to` (`SETSLOT … NODE` on it, then on every other
    /// live master), so the old owner answers `MOVED`. Keys still on the old owner are not
    /// moved: use it for slots whose keys were all written through `ASK`.
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn finish_slot_migration(&self, slot: u16, to: u16) -> Result<(), ClusterError> {
        let to_id = node_id(to).await?;
        let slot_s = slot.to_string();
        expect_ok(to, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id]).await?;
        let masters: Vec<u16> = self.slots().await?.iter().map(|r| r.master).collect();
        for port in masters.into_iter().filter(|p| *p != to) {
            expect_ok(port, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id]).await?;
        }
        Ok(())
    }

    /// Empties every live master (`FLUSHALL` and `SCRIPT FLUSH`), so tests can share one
    /// cluster. Replicas follow their masters.
    ///
    /// # Errors
    ///
    /// The error of the step that failed, as returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the step: a process it was starting is killed (its handle
    /// kills on drop); one it had already signalled stays as the signal left it.
    pub async fn flush_all(&self) -> Result<(), ClusterError> {
        let masters: Vec<u16> = self.slots().await?.iter().map(|r| r.master).collect();
        for port in masters {
            expect_ok(port, &["FLUSHALL"]).await?;
            expect_ok(port, &["SCRIPT", "FLUSH"]).await?;
        }
        Ok(())
    }

    /// How many times the node on `port` has run `command` (lower case, as `INFO
    /// commandstats` names it: `get`, `set`), from `cmdstat_<command>:calls=`; 0 when it
    /// never ran it.
    ///
    /// # Errors
    ///
    /// The node did not answer `INFO commandstats`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only drops its admin connection.
    pub async fn command_calls(&self, port: u16, command: &str) -> Result<u64, ClusterError> {
        command_calls_on(port, command)
            .await
            .map_err(|state| ClusterError::NotReady {
                waited: Duration::ZERO,
                state,
            })
    }

    /// A node's [`RedisServer`] by port (to stop or restart it).
    pub fn node_mut(&mut self, port: u16) -> Option<&mut RedisServer> {
        self.nodes.iter_mut().find(|n| n.port() == port)
    }
}

/// How many times the server on `port` has run `command`, from `INFO commandstats`
/// (`cmdstat_<command>:calls=`); 0 when it never ran it.
pub(crate) async fn command_calls_on(port: u16, command: &str) -> Result<u64, String> {
    let stats = text_reply(port, &["INFO", "commandstats"]).await?;
    let prefix = format!("cmdstat_{command}:calls=");
    Ok(stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.trim().parse().ok())
        .unwrap_or(0))
}

/// One admin command to the node on `port`, bounded by [`ADMIN_TIMEOUT`].
async fn admin(port: u16, args: &[&str]) -> Result<RespReply, String> {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let call = async {
        let mut conn = RespConnection::connect(addr).await?;
        conn.command(args).await
    };
    match tokio::time::timeout(ADMIN_TIMEOUT, call).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(format!("node {port}: {e}")),
        Err(_) => Err(format!("node {port}: no reply within {ADMIN_TIMEOUT:?}")),
    }
}

async fn node_id(port: u16) -> Result<String, ClusterError> {
    match admin(port, &["CLUSTER", "MYID"]).await {
        Ok(RespReply::Bulk(Some(id))) => Ok(String::from_utf8_lossy(&id).into_owned()),
        other => Err(ClusterError::NotReady {
            waited: Duration::ZERO,
            state: format!("CLUSTER MYID on {port}: {other:?}"),
        }),
    }
}

async fn expect_ok(port: u16, args: &[&str]) -> Result<(), ClusterError> {
    match admin(port, args).await {
        Ok(RespReply::Simple(ok)) if ok == "OK" => Ok(()),
        other => Err(ClusterError::NotReady {
            waited: Duration::ZERO,
            state: format!("{args:?} on {port}: {other:?}"),
        }),
    }
}

async fn text_reply(port: u16, args: &[&str]) -> Result<String, String> {
    match admin(port, args).await? {
        RespReply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => Err(format!("node {port}: unexpected reply {other:?}")),
    }
}

/// The number after `name:` in an `INFO` reply.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

fn first_lines(text: &str) -> String {
    text.lines().take(3).collect::<Vec<_>>().join(" ")
}

fn parse_slots(entries: Vec<RespReply>) -> Result<Vec<SlotRange>, ClusterError> {
    let bad = |what: &str| ClusterError::NotReady {
        waited: Duration::ZERO,
        state: format!("unexpected CLUSTER SLOTS reply: {what}"),
    };
    let port_of = |node: &RespReply| match node {
        RespReply::Array(Some(fields)) => match fields.get(1) {
            Some(RespReply::Int(p)) => u16::try_from(*p).ok(),
            _ => None,
        },
        _ => None,
    };
    let mut out = Vec::new();
    for entry in entries {
        let RespReply::Array(Some(fields)) = entry else {
            return Err(bad("entry"));
        };
        let (Some(RespReply::Int(start)), Some(RespReply::Int(end))) =
            (fields.first(), fields.get(1))
        else {
            return Err(bad("range"));
        };
        let master = fields
            .get(2)
            .and_then(port_of)
            .ok_or_else(|| bad("master"))?;
        out.push(SlotRange {
            start: u16::try_from(*start).map_err(|_| bad("start"))?,
            end: u16::try_from(*end).map_err(|_| bad("end"))?,
            master,
            replicas: fields.iter().skip(3).filter_map(port_of).collect(),
        });
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_name() {
        let info =
            "# Replication\r\nrole:slave\r\nslave_repl_offset:631623\r\nmaster_repl_offset:7\r\n";
        assert_eq!(info_field(info, "slave_repl_offset"), Some(631_623));
        assert_eq!(info_field(info, "master_repl_offset"), Some(7));
        assert_eq!(info_field(info, "role"), None);
        assert_eq!(info_field(info, "repl_offset"), None);
    }
}
