//! [`SentinelReadBackend`]: a Sentinel-managed master, with its replicas answering reads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use crate::backend::{InvalidationFeed, TrackedReply};
use crate::{BackendError, Command, ConnectionConfig, ErrorKind, KvBackend, Value};

use super::backend::{Reply, Request};
use super::node::{ConnectNode, Node};
use super::read_policy::ReadPolicy;
use super::replica_reads::{LEAVE_OUT_MS, ReplicaReadStats, ReplicaReads, next_replica};

/// How often the replica list is read again when nothing asked for it.
const REFRESH_PERIOD: Duration = Duration::from_secs(10);

/// A [`KvBackend`] for a Sentinel-managed master that sends reads to its replicas under a
/// [`ReadPolicy`] other than `Primary`.
///
/// Everything but reads goes to `primary`, the driver's own Sentinel backend, which
/// follows the master through failovers. The replicas are the ones the sentinels list
/// (`SENTINEL REPLICAS <master>`, asked with the sentinel credentials) that are neither
/// down nor disconnected, read at connect, every 10 s and soon after a replica failed a
/// read; each is connected on first use with the driver's single-server connect and the
/// data nodes' settings.
///
/// A read-only command (or a non-atomic pipeline of them) goes to the next replica,
/// round-robin, under the client's policy ([`ConnectionConfig::read_policy`]) or one
/// call's ([`ReadPolicy::scope`]). A replica that cannot be reached or does not answer
/// in time is left out for a second; with `PreferReplica` the read then goes to the
/// master, with `Replica` it fails with `Unavailable`.
/// [`replica_reads`](Self::replica_reads) and the
/// [`REPLICA_READS`](crate::observe::REPLICA_READS) metric count both.
///
/// Replicas answer with what they have replicated: a read right after a write may not
/// see it yet.
#[derive(Clone)]
pub struct SentinelReadBackend {
    shared: Arc<SentinelShared>,
}

struct SentinelShared {
    primary: Arc<dyn KvBackend>,
    connector: Arc<dyn ConnectNode>,
    /// How the replicas are connected: the data nodes' settings, no sentinel.
    node_config: ConnectionConfig,
    /// How each sentinel is asked: its address, the sentinel credentials.
    sentinels: Vec<ConnectionConfig>,
    master_name: String,
    read_policy: ReadPolicy,
    replicas: RwLock<Arc<Vec<Arc<Node>>>>,
    next_replica: AtomicUsize,
    reads: ReplicaReads,
    refreshing: AtomicBool,
}

impl std::fmt::Debug for SentinelReadBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelReadBackend")
            .field("backend", &self.shared.primary.name())
            .field("master_name", &self.shared.master_name)
            .field("read_policy", &self.shared.read_policy)
            .finish_non_exhaustive()
    }
}

impl SentinelReadBackend {
    /// Wraps `primary` (the driver's backend for `config`, a Sentinel configuration) and
    /// reads the replica list once; replicas are then connected with `connector` when a
    /// read first needs them.
    ///
    /// A sentinel that does not answer leaves the list empty until the next refresh:
    /// reads go to the master meanwhile (`PreferReplica`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `config` has no Sentinel settings.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `primary` and the sentinel connections it opened.
    pub async fn connect(
        config: &ConnectionConfig,
        primary: Arc<dyn KvBackend>,
        connector: impl ConnectNode,
    ) -> Result<SentinelReadBackend, BackendError> {
        let Some(sentinel) = &config.sentinel else {
            return Err(BackendError::new(
                ErrorKind::InvalidInput,
                "SentinelReadBackend needs a Sentinel configuration (config.sentinel)",
            ));
        };
        let mut node_config = config.clone();
        node_config.sentinel = None;
        node_config.client_tracking = false;
        let sentinels = sentinel
            .nodes
            .iter()
            .map(|(host, port)| {
                let mut asked = node_config.clone().with_host(host.clone()).with_port(*port);
                asked.db = 0;
                asked.username = sentinel.username.clone();
                asked.password = sentinel.password.clone();
                asked
            })
            .collect();
        let shared = Arc::new(SentinelShared {
            primary,
            connector: Arc::new(connector),
            node_config,
            sentinels,
            master_name: sentinel.master_name.clone(),
            read_policy: config.read_policy,
            replicas: RwLock::new(Arc::new(Vec::new())),
            next_replica: AtomicUsize::new(0),
            reads: ReplicaReads::new(),
            refreshing: AtomicBool::new(false),
        });
        if let Err(e) = shared.refresh().await {
            tracing::debug!(error = %e, "no sentinel listed the replicas; reads go to the master for now");
        }
        spawn_periodic_refresh(Arc::downgrade(&shared));
        Ok(SentinelReadBackend { shared })
    }

    /// The replicas reads go to (`host:port`), as the sentinels last listed them.
    pub fn replicas(&self) -> Vec<String> {
        self.shared
            .replicas()
            .iter()
            .map(|node| node.addr().to_string())
            .collect()
    }

    /// How many reads replicas answered, and how many fell back to the master.
    pub fn replica_reads(&self) -> ReplicaReadStats {
        self.shared.reads.stats()
    }

    /// Reads the replica list from the sentinels now.
    ///
    /// # Errors
    ///
    /// The last sentinel's failure when none answered; the list is then unchanged.
    ///
    /// # Cancel safety
    ///
    /// The list changes only once a whole reply is read.
    pub async fn refresh(&self) -> Result<(), BackendError> {
        self.shared.refresh().await
    }

    /// The policy for a call: its own, else the client's; `None` for `Primary`.
    fn policy(&self) -> Option<ReadPolicy> {
        let policy = ReadPolicy::of_this_call().unwrap_or(self.shared.read_policy);
        (policy != ReadPolicy::Primary).then_some(policy)
    }
}

impl SentinelShared {
    fn replicas(&self) -> Arc<Vec<Arc<Node>>> {
        Arc::clone(&self.replicas.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The next replica not left out at `now_ms`, round-robin.
    fn next_replica(&self, now_ms: u64) -> Option<Arc<Node>> {
        next_replica(&self.replicas(), &self.next_replica, now_ms)
    }

    /// Asks the sentinels, in order, for the master's replicas; the first answer wins.
    async fn refresh(&self) -> Result<(), BackendError> {
        let mut last = BackendError::unavailable("no sentinel configured");
        for config in &self.sentinels {
            let ask = async {
                let sentinel = self.connector.connect_node(config.clone()).await?;
                sentinel.execute(sentinel_replicas(&self.master_name)).await
            };
            let reply = match tokio::time::timeout(self.node_config.socket_timeout, ask).await {
                Ok(reply) => reply,
                Err(_) => Err(BackendError::timeout(format!(
                    "sentinel {}:{} did not list the replicas in time",
                    config.host, config.port
                ))),
            };
            match reply.and_then(|reply| healthy_replicas(&reply)) {
                Ok(addrs) => {
                    let known = self.replicas();
                    let nodes = addrs
                        .into_iter()
                        .map(|addr| {
                            known
                                .iter()
                                .find(|n| **n.addr() == *addr)
                                .cloned()
                                .unwrap_or_else(|| Arc::new(Node::new(Arc::from(addr))))
                        })
                        .collect();
                    *self
                        .replicas
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Arc::new(nodes);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts a refresh in the background unless one runs.
    fn refresh_soon(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(shared) = me.upgrade() {
                let _ = shared.refresh().await;
                shared.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// `request` on a replica under `policy`, else on the master (`PreferReplica`).
    async fn read(
        self: &Arc<Self>,
        policy: ReadPolicy,
        request: Request,
    ) -> Result<Reply, BackendError> {
        let now = self.reads.now_ms();
        let mut reason = String::from("the sentinels list no replica that is up");
        if let Some(replica) = self.next_replica(now) {
            let attempt = async {
                let backend = match replica.ready() {
                    Some(backend) => Arc::clone(backend),
                    None => replica.backend(&self.connector, &self.node_config).await?,
                };
                run(backend.as_ref(), request.clone()).await
            };
            let result = match tokio::time::timeout(self.node_config.socket_timeout, attempt).await
            {
                Ok(result) => result,
                Err(_) => Err(BackendError::timeout(format!(
                    "no reply from replica {} within {:?}",
                    replica.addr(),
                    self.node_config.socket_timeout
                ))),
            };
            match result {
                Ok(value) => {
                    self.reads.count("replica");
                    return Ok(value);
                }
                Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
                    replica.leave_out_until(now + LEAVE_OUT_MS);
                    self.refresh_soon();
                    if e.kind() == ErrorKind::Timeout {
                        // The call's time is spent; the retry the layer above makes goes
                        // elsewhere.
                        return Err(e);
                    }
                    reason = format!("replica {} failed: {e}", replica.addr());
                }
                Err(e) => return Err(e),
            }
        }
        if policy == ReadPolicy::Replica {
            return Err(BackendError::unavailable(format!(
                "no replica can answer the read (read policy `replica`): {reason}"
            )));
        }
        self.reads.count("primary_fallback");
        run(self.primary.as_ref(), request).await
    }
}

/// `request` on `backend`.
async fn run(backend: &dyn KvBackend, request: Request) -> Result<Reply, BackendError> {
    match request {
        Request::One(cmd) => backend.execute(cmd).await.map(Reply::One),
        Request::Batch(cmds, atomic) => backend.execute_batch(cmds, atomic).await.map(Reply::Batch),
    }
}

/// `SENTINEL REPLICAS <master>`.
fn sentinel_replicas(master: &str) -> Command {
    Command::Raw {
        args: vec![
            Bytes::from_static(b"SENTINEL"),
            Bytes::from_static(b"REPLICAS"),
            Bytes::copy_from_slice(master.as_bytes()),
        ],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}

/// `ip:port` of every replica in a `SENTINEL REPLICAS` reply (a list of field/value
/// lists, or maps over RESP3) whose flags say neither down nor disconnected.
fn healthy_replicas(reply: &Value) -> Result<Vec<String>, BackendError> {
    let Value::Array(entries) = reply else {
        return Err(BackendError::new(
            ErrorKind::Server,
            format!("unexpected SENTINEL REPLICAS reply: {reply:?}"),
        ));
    };
    let text = |v: &Value| match v {
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Status(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    };
    let mut addrs = Vec::new();
    for entry in entries {
        let pairs: Vec<(String, String)> = match entry {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
                .collect(),
            Value::Map(map) => map
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect(),
            _ => continue,
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (Some(ip), Some(port), Some(flags)) = (field("ip"), field("port"), field("flags"))
        else {
            continue;
        };
        let down = flags
            .split(',')
            .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
        if !down {
            addrs.push(format!("{ip}:{port}"));
        }
    }
    Ok(addrs)
}

/// Reads the replica list every [`REFRESH_PERIOD`] until the backend is dropped.
fn spawn_periodic_refresh(shared: Weak<SentinelShared>) {
    tokio::spawn(async move {
        let mut next = Instant::now() + REFRESH_PERIOD;
        loop {
            tokio::time::sleep_until(next).await;
            next += REFRESH_PERIOD;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let _ = shared.refresh().await;
        }
    });
}

#[async_trait]
impl KvBackend for SentinelReadBackend {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        match self.policy() {
            Some(policy) if cmd.is_read_only() && cmd.blocks_for().is_none() => {
                match self.shared.read(policy, Request::One(cmd)).await? {
                    Reply::One(value) => Ok(value),
                    Reply::Batch(_) => Err(BackendError::new(
                        ErrorKind::Server,
                        "unexpected batch reply",
                    )),
                }
            }
            _ => self.shared.primary.execute(cmd).await,
        }
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        match self.policy() {
            Some(policy)
                if !atomic && !cmds.is_empty() && cmds.iter().all(Command::is_read_only) =>
            {
                match self
                    .shared
                    .read(policy, Request::Batch(cmds, false))
                    .await?
                {
                    Reply::Batch(values) => Ok(values),
                    Reply::One(_) => Err(BackendError::new(
                        ErrorKind::Server,
                        "unexpected single reply",
                    )),
                }
            }
            _ => self.shared.primary.execute_batch(cmds, atomic).await,
        }
    }

    async fn open_pubsub(
        &self,
        subscriptions: &[crate::Subscription],
    ) -> Result<Box<dyn crate::PubSubLink>, BackendError> {
        self.shared.primary.open_pubsub(subscriptions).await
    }

    fn name(&self) -> &'static str {
        self.shared.primary.name()
    }

    fn is_networked(&self) -> bool {
        self.shared.primary.is_networked()
    }

    fn invalidations(&self) -> Option<InvalidationFeed> {
        self.shared.primary.invalidations()
    }

    async fn execute_tracked(&self, cmd: Command) -> Result<TrackedReply, BackendError> {
        self.shared.primary.execute_tracked(cmd).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn replica(ip: &str, port: i64, flags: &str) -> Value {
        Value::Array(vec![
            bulk("name"),
            bulk(&format!("{ip}:{port}")),
            bulk("ip"),
            bulk(ip),
            bulk("port"),
            Value::Int(port),
            bulk("flags"),
            bulk(flags),
        ])
    }

    #[test]
    fn only_replicas_that_are_up_are_read_from() {
        let reply = Value::Array(vec![
            replica("10.0.0.1", 6380, "slave"),
            replica("10.0.0.2", 6381, "s_down,slave"),
            replica("10.0.0.3", 6382, "slave,disconnected"),
            Value::Map(vec![
                (bulk("ip"), bulk("10.0.0.4")),
                (bulk("port"), bulk("6383")),
                (bulk("flags"), bulk("slave")),
            ]),
        ]);
        assert_eq!(
            healthy_replicas(&reply).unwrap(),
            ["10.0.0.1:6380", "10.0.0.4:6383"]
        );
        assert_eq!(
            healthy_replicas(&Value::Okay).unwrap_err().kind(),
            ErrorKind::Server
        );
    }
}
