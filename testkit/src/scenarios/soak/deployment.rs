//! What the soak runs against ([`Deployment`]): one server, or a Redis Cluster, with fault
//! proxies between the client and the servers, and a [`Reader`] that reads the data back
//! straight from the servers.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use resilience_core::{ConnectionConfig, hash_slot};

use crate::proxy::{FaultProxy, ProxyMode};
use crate::scenarios::ScenarioFailure;
use crate::server::{
    ClusterProxies, RedisCluster, RedisServer, RespConnection, RespReply, SlotRange,
};

/// The cluster's node timeout in the soak: longer than any kill's down time, so a killed
/// master comes back from its AOF as the same master and no replica takes over (a
/// failover may drop what the master acknowledged last: Redis replicates asynchronously).
const CLUSTER_NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers under the soak, every one with `appendfsync always`.
pub(super) enum Deployment {
    /// One server behind one proxy.
    Single {
        server: Box<RedisServer>,
        proxy: FaultProxy,
    },
    /// 3 masters and 3 replicas, a proxy in front of each node for the client only (its
    /// `cluster_address_map` points the announced addresses at the proxies, so
    /// replication and gossip never cross a proxy).
    Cluster {
        cluster: RedisCluster,
        proxies: ClusterProxies,
    },
}

/// A server that keeps every acknowledged write through a SIGKILL (`appendfsync always`),
/// and a fault proxy in front of it.
pub(crate) async fn durable_server_behind_proxy()
-> Result<(RedisServer, FaultProxy), ScenarioFailure> {
    let server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await?;
    let proxy = FaultProxy::start(server.addr())
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("fault proxy: {e}")))?;
    Ok((server, proxy))
}

impl Deployment {
    /// One server and its proxy.
    pub(super) async fn single() -> Result<Deployment, ScenarioFailure> {
        let (server, proxy) = durable_server_behind_proxy().await?;
        Ok(Deployment::Single {
            server: Box::new(server),
            proxy,
        })
    }

    /// A cluster and a proxy per node.
    pub(super) async fn cluster() -> Result<Deployment, ScenarioFailure> {
        let cluster = RedisCluster::builder()
            .appendfsync_always(true)
            .node_timeout(CLUSTER_NODE_TIMEOUT)
            .spawn()
            .await
            .map_err(|e| ScenarioFailure::Setup(format!("could not start the cluster: {e}")))?;
        let proxies = ClusterProxies::start(&cluster)
            .await
            .map_err(|e| ScenarioFailure::Setup(format!("fault proxies: {e}")))?;
        Ok(Deployment::Cluster { cluster, proxies })
    }

    /// `"server"` or `"cluster"`, for the report.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Deployment::Single { .. } => "server",
            Deployment::Cluster { .. } => "cluster",
        }
    }

    /// Where the client connects: through the proxies.
    pub(super) fn connection_config(&self) -> ConnectionConfig {
        match self {
            Deployment::Single { server, proxy } => server
                .connection_config()
                .with_host(proxy.addr().ip().to_string())
                .with_port(proxy.addr().port()),
            Deployment::Cluster { cluster, proxies } => cluster
                .connection_config()
                .with_cluster_address_map(proxies.address_map()),
        }
    }

    /// Sets every proxy's mode.
    pub(super) fn set_mode(&self, mode: ProxyMode) {
        match self {
            Deployment::Single { proxy, .. } => proxy.set_mode(mode),
            Deployment::Cluster { proxies, .. } => proxies.set_mode(mode),
        }
    }

    /// Resets every connection every proxy holds now.
    pub(super) fn reset_all(&self) {
        match self {
            Deployment::Single { proxy, .. } => proxy.reset_all(),
            Deployment::Cluster { proxies, .. } => proxies.reset_all(),
        }
    }

    /// SIGKILLs the server (in a cluster, the master of `slot`), keeps it down for
    /// `down`, and restarts it on the same port (its AOF replayed).
    pub(super) async fn kill(&mut self, slot: u16, down: Duration) -> Result<(), ScenarioFailure> {
        let server = match self {
            Deployment::Single { server, .. } => server,
            Deployment::Cluster { cluster, .. } => {
                let port = cluster
                    .master_of(slot)
                    .await
                    .map_err(|e| ScenarioFailure::Setup(format!("master of slot {slot}: {e}")))?;
                cluster
                    .node_mut(port)
                    .ok_or_else(|| ScenarioFailure::Setup(format!("no node {port}")))?
            }
        };
        server.stop().await?;
        tokio::time::sleep(down).await;
        server.restart().await?;
        Ok(())
    }

    /// Every server up (a cluster also settled), every proxy passing.
    pub(super) async fn heal(&mut self) -> Result<(), ScenarioFailure> {
        self.set_mode(ProxyMode::Pass);
        match self {
            Deployment::Single { server, .. } => {
                if !server.is_running() {
                    server.restart().await?;
                }
            }
            Deployment::Cluster { cluster, .. } => {
                for port in cluster.ports() {
                    if let Some(node) = cluster.node_mut(port)
                        && !node.is_running()
                    {
                        node.restart().await?;
                    }
                }
                cluster
                    .wait_ready(Duration::from_secs(30))
                    .await
                    .map_err(|e| {
                        ScenarioFailure::Setup(format!("the cluster did not settle: {e}"))
                    })?;
            }
        }
        Ok(())
    }

    /// A reader straight to the servers (no proxy, not the backend under test).
    pub(super) async fn reader(&self) -> Result<Reader, ScenarioFailure> {
        let connect = |addr: SocketAddr| async move {
            RespConnection::connect(addr)
                .await
                .map_err(|e| ScenarioFailure::Setup(format!("read-back connection: {e}")))
        };
        match self {
            Deployment::Single { server, .. } => Ok(Reader::Single(connect(server.addr()).await?)),
            Deployment::Cluster { cluster, .. } => {
                let ranges = cluster
                    .slots()
                    .await
                    .map_err(|e| ScenarioFailure::Setup(format!("read-back slot map: {e}")))?;
                let mut nodes = HashMap::new();
                for range in &ranges {
                    if let std::collections::hash_map::Entry::Vacant(entry) =
                        nodes.entry(range.master)
                    {
                        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, range.master));
                        entry.insert(connect(addr).await?);
                    }
                }
                Ok(Reader::Cluster { ranges, nodes })
            }
        }
    }
}

/// Reads the data back: one connection, or one per master, picked by the key's slot.
pub(super) enum Reader {
    Single(RespConnection),
    Cluster {
        ranges: Vec<SlotRange>,
        nodes: HashMap<u16, RespConnection>,
    },
}

impl Reader {
    /// Sends `args` (`[command, key, …]`) to the server holding the key.
    pub(super) async fn command(&mut self, args: &[&str]) -> Result<RespReply, ScenarioFailure> {
        let failed = |e: String| ScenarioFailure::Setup(format!("read back {args:?}: {e}"));
        let conn = match self {
            Reader::Single(conn) => conn,
            Reader::Cluster { ranges, nodes } => {
                let key = args.get(1).copied().unwrap_or_default();
                let slot = hash_slot(key.as_bytes());
                let master = ranges
                    .iter()
                    .find(|r| (r.start..=r.end).contains(&slot))
                    .map(|r| r.master)
                    .ok_or_else(|| failed(format!("no master serves slot {slot}")))?;
                nodes
                    .get_mut(&master)
                    .ok_or_else(|| failed(format!("no connection to {master}")))?
            }
        };
        conn.command(args).await.map_err(|e| failed(e.to_string()))
    }
}
