//! [`ClusterBackend`]: Redis Cluster routing over one single-server backend per node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use crate::{BackendError, Command, ConnectionConfig, ErrorKind, KvBackend, Value};

use super::node::{ConnectNode, Node};
use super::read_policy::ReadPolicy;
use super::redirect::Redirect;
pub use super::replica_reads::ReplicaReadStats;
use super::replica_reads::{ReplicaReads, next_replica};
use super::slot::hash_slot;
use super::slot_map::{Addr, SlotMap, cluster_slots};

/// Least time between two refreshes of the slot map started by failures or `MOVED`s.
pub(crate) const CLUSTER_REFRESH_THROTTLE: Duration = Duration::from_millis(100);

/// How often the slot map is read again when nothing asked for it.
pub(crate) const CLUSTER_REFRESH_PERIOD: Duration = Duration::from_secs(10);

/// Most sends of one call: the first, and the redirects and `TRYAGAIN` waits after it.
const MAX_SENDS: usize = 8;

/// First wait after a `TRYAGAIN` (or an `ASK` for a batch); doubles each time.
const TRYAGAIN_WAIT: Duration = Duration::from_millis(10);

/// A [`KvBackend`] for a Redis Cluster: routes each command to the master that serves its
/// slot, over one single-server backend per node that a driver opens with
/// [`ConnectNode`](crate::backend::ConnectNode).
///
/// Both Redis backends run their cluster mode on it, so cluster routing behaves the
/// same whatever the driver.
///
/// # Routing
///
/// - The slot map comes from `CLUSTER SLOTS`, read at connect from the first seed that
///   answers, and read again after a `MOVED`, after a node failed a call
///   (`Unavailable`, `Timeout`, `CLUSTERDOWN`-like `Busy`; at most every
///   100 ms) and every 10 s. Nodes that stop
///   being masters are dropped, which stops their reconnects.
/// - A command goes to the master of its keys' slot. Every key of one command, and of
///   one batch, must be in the same slot (use a hash tag: `{agent-1}:a`, `{agent-1}:b`);
///   otherwise the call fails with `InvalidInput` before anything is sent.
/// - A keyless command (`PING`, `SCAN`, a raw command without keys) goes to the first
///   master; `SCRIPT LOAD` goes to every master, so a later `EVALSHA` finds the script
///   wherever its keys live.
/// - Nodes are dialed at the address the cluster announces, or where
///   [`ConnectionConfig::cluster_address_map`] points it (NAT, port forwarding, a proxy
///   per node).
/// - With a [`ReadPolicy`] other than `Primary` (the client's,
///   [`ConnectionConfig::read_policy`], or one call's, [`ReadPolicy::scope`]), a read-only
///   command, or a pipeline of them, goes to a replica of its slot's master, round-robin,
///   with `READONLY` sent on that replica's connection when it needs it (a replica answers
///   `MOVED` to a connection that has not sent it). A replica that cannot be reached is
///   left out for a second and the read goes to the master (`PreferReplica`) or fails
///   (`Replica`); [`replica_reads`](ClusterBackend::replica_reads) and the
///   [`REPLICA_READS`](crate::observe::REPLICA_READS) metric count both.
///
/// # Redirects and failures
///
/// A node refuses a command it did not run with a redirect, which is followed within the
/// call: `MOVED` (the slot moved: the map is updated and the command sent to the new
/// owner), `ASK` (the slot is migrating: the command is sent once to the target after
/// `ASKING`; a batch waits for the migration as for `TRYAGAIN`) and `TRYAGAIN` (sent
/// again after 10 ms, 20 ms, …).
///
/// Anything else ends the call with the node's error, and **nothing is ever sent again
/// after a connection error or a timeout**: the node's backend reports a command that
/// may have run as `Timeout`, and it stays `Timeout`, so the resilience layer above
/// retries it only if it is idempotent. A write is never applied twice by the router.
///
/// Every call ends within the socket timeout, redirects and a first connect to a node
/// included.
///
/// Per-shard circuit breakers sit on top: a [`ShardedClient`](crate::ShardedClient) over
/// this backend.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use backend_memory::InMemoryBackend;
/// # use resilience_core::{ClusterBackend, ConnectionConfig, KvBackend};
/// # async fn demo() -> Result<(), resilience_core::BackendError> {
/// let config = ConnectionConfig::from_url("redis://127.0.0.1:7000?cluster=127.0.0.1:7001")
///     .map_err(|e| resilience_core::BackendError::new(resilience_core::ErrorKind::InvalidInput, e.to_string()))?;
/// // A driver passes its single-server connect; a stand-in here.
/// let cluster = ClusterBackend::connect(&config, |node: ConnectionConfig| async move {
///     Ok(Arc::new(InMemoryBackend::new()) as Arc<dyn KvBackend>)
/// })
/// .await?;
/// # let _ = cluster; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterBackend {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    /// The nodes' backends' name (`"redis-rs"`, `"fred"`).
    pub(super) name: &'static str,
    /// Which node answers reads when a call does not say.
    read_policy: ReadPolicy,
    pub(super) replica_reads: ReplicaReads,
    connector: Arc<dyn ConnectNode>,
    /// The configuration each node is connected with (host and port replaced).
    node_config: ConnectionConfig,
    seeds: Vec<Addr>,
    routes: RwLock<Arc<Routes>>,
    /// Every node the slot map names (masters and replicas, each connected on first use)
    /// and the seed being read, by address.
    pool: Mutex<HashMap<Addr, Arc<Node>>>,
    pub(super) call_timeout: Duration,
    refreshing: AtomicBool,
    last_refresh: Mutex<Instant>,
}

/// The slot map and, per master (same order as the map's), its node and its replicas'.
pub(super) struct Routes {
    pub(super) map: SlotMap,
    masters: Vec<Arc<Node>>,
    replicas: Vec<Vec<Arc<Node>>>,
    /// Turns of the replicas' round-robin.
    next_replica: AtomicUsize,
}

impl Routes {
    /// The node of the master serving `slot`; the first master for keyless calls.
    #[inline]
    pub(super) fn owner(&self, slot: Option<u16>) -> &Arc<Node> {
        // `masters` follows the map's order, and a map always has a master.
        &self.masters[slot.map_or(0, |slot| self.map.owner_index(slot))]
    }

    /// The next replica of the master serving `slot`, round-robin, skipping those left
    /// out at `now_ms`; `None` when it has none to offer.
    pub(super) fn replica_for(&self, slot: u16, now_ms: u64) -> Option<Arc<Node>> {
        let replicas = self.replicas.get(self.map.owner_index(slot))?;
        next_replica(replicas, &self.next_replica, now_ms)
    }
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.shared.routes();
        f.debug_struct("ClusterBackend")
            .field("backend", &self.shared.name)
            .field("masters", &routes.map.masters())
            .finish_non_exhaustive()
    }
}

/// One call: a command or a batch.
#[derive(Clone)]
pub(super) enum Request {
    One(Command),
    Batch(Vec<Command>, bool),
}

/// Its answer.
pub(super) enum Reply {
    One(Value),
    Batch(Vec<Value>),
}

fn invalid(message: impl Into<String>) -> BackendError {
    BackendError::new(ErrorKind::InvalidInput, message)
}

impl ClusterBackend {
    /// Connects to a cluster: asks the seeds of `config.cluster_nodes`, in order, for the
    /// slot map (`CLUSTER SLOTS`), then connects to every master with `connector` (a
    /// master that cannot be reached now is connected on first use).
    ///
    /// Fails with `InvalidInput` when `config` has no seed, a database other than 0, or a
    /// sentinel, and with the last seed's error when none answered.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a configuration that is no cluster's (no seeds, a database other
    /// than 0); otherwise the last seed's failure (`Unavailable`, `Timeout`, `Auth`, or a
    /// reply that is no slot map) when no seed answers `CLUSTER SLOTS`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connections it opened; nothing was sent but `CLUSTER
    /// SLOTS`.
    pub async fn connect(
        config: &ConnectionConfig,
        connector: impl ConnectNode,
    ) -> Result<ClusterBackend, BackendError> {
        if config.cluster_nodes.is_empty() {
            return Err(invalid("cluster mode needs at least one seed node"));
        }
        if config.db != 0 {
            return Err(invalid("a Redis Cluster has only database 0"));
        }
        if config.sentinel.is_some() {
            return Err(invalid("cluster and sentinel cannot be combined"));
        }
        let connector: Arc<dyn ConnectNode> = Arc::new(connector);
        // Client tracking is not wired into cluster mode (each node would need its own
        // invalidation feed), so the nodes never track and a client cache stays off.
        let node_config = config
            .clone()
            .with_cluster_nodes(Vec::new())
            .with_client_tracking(false);
        let seeds: Vec<Addr> = config
            .cluster_nodes
            .iter()
            .map(|(host, port)| {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                Arc::from(format!("{host}:{port}"))
            })
            .collect();
        let mut last_error = invalid("no cluster seed node given");
        for seed in &seeds {
            let node = Node::new(Arc::clone(seed));
            let read = async {
                let backend = node.backend(&connector, &node_config).await?;
                let map = SlotMap::parse(backend.execute(cluster_slots()).await?)?;
                Ok::<_, BackendError>((backend, map))
            };
            match read.await {
                Ok((backend, map)) => {
                    let shared = Arc::new(Shared {
                        name: backend.name(),
                        read_policy: config.read_policy,
                        replica_reads: ReplicaReads::new(),
                        connector,
                        node_config,
                        seeds: seeds.clone(),
                        routes: RwLock::new(Arc::new(Routes {
                            map: map.clone(),
                            masters: Vec::new(),
                            replicas: Vec::new(),
                            next_replica: AtomicUsize::new(0),
                        })),
                        pool: Mutex::new(HashMap::from([(
                            Arc::clone(seed),
                            Arc::new(Node::connected(Arc::clone(seed), backend)),
                        )])),
                        call_timeout: config.socket_timeout.max(Duration::from_millis(1)),
                        refreshing: AtomicBool::new(false),
                        last_refresh: Mutex::new(Instant::now()),
                    });
                    shared.install(map);
                    // Connect to every master now, so the first commands do not pay for it.
                    let routes = shared.routes();
                    futures::future::join_all(
                        routes
                            .masters
                            .iter()
                            .map(|n| n.backend(&shared.connector, &shared.node_config)),
                    )
                    .await;
                    spawn_periodic_refresh(Arc::downgrade(&shared));
                    return Ok(ClusterBackend { shared });
                }
                Err(e) => {
                    tracing::debug!(seed = %seed, error = %e, "cluster seed did not answer");
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    /// The masters' addresses (`host:port`), as the last slot map read named them.
    pub fn masters(&self) -> Vec<String> {
        self.shared
            .routes()
            .map
            .masters()
            .iter()
            .map(|m| m.to_string())
            .collect()
    }

    /// Reads the slot map again now (from a master, else a seed), and waits for it.
    ///
    /// # Errors
    ///
    /// The last node's failure when no known node answers `CLUSTER SLOTS`; the slot map is then
    /// unchanged.
    ///
    /// # Cancel safety
    ///
    /// The map changes only once a whole reply is read: dropping the future leaves it as it
    /// was.
    pub async fn refresh(&self) -> Result<(), BackendError> {
        self.shared.refresh().await
    }

    /// How many reads replicas answered, and how many fell back to the master, since
    /// the backend was connected.
    pub fn replica_reads(&self) -> ReplicaReadStats {
        self.shared.replica_reads.stats()
    }

    async fn call(&self, request: Request) -> Result<Reply, BackendError> {
        let (slot, read_only) = match &request {
            Request::One(Command::ScriptLoad { script }) => {
                return self.script_load_everywhere(script).await.map(Reply::One);
            }
            Request::One(cmd) => (slot_of(std::slice::from_ref(cmd))?, cmd.is_read_only()),
            Request::Batch(cmds, atomic) => (
                slot_of(cmds)?,
                !atomic && cmds.iter().all(Command::is_read_only),
            ),
        };
        if let (Some(slot), true) = (slot, read_only) {
            let policy = ReadPolicy::of_this_call().unwrap_or(self.shared.read_policy);
            if policy != ReadPolicy::Primary {
                return self.shared.read(slot, request, policy).await;
            }
        }
        self.shared.send(slot, request).await
    }

    /// `SCRIPT LOAD` on every master at once; the first master's reply (the SHA1).
    async fn script_load_everywhere(&self, script: &str) -> Result<Value, BackendError> {
        let routes = self.shared.routes();
        let loads = routes.masters.iter().map(|node| {
            let cmd = Command::ScriptLoad {
                script: script.to_owned(),
            };
            self.shared.send_to(
                Arc::clone(node),
                None,
                Request::One(cmd),
                Instant::now() + self.shared.call_timeout,
            )
        });
        let mut replies = futures::future::try_join_all(loads).await?;
        match replies.swap_remove(0) {
            Reply::One(value) => Ok(value),
            Reply::Batch(_) => Err(BackendError::new(
                ErrorKind::Server,
                "unexpected reply to SCRIPT LOAD",
            )),
        }
    }
}

/// The one slot every key of `cmds` hashes to (`None` for keyless commands), or
/// `InvalidInput` when they span slots.
fn slot_of(cmds: &[Command]) -> Result<Option<u16>, BackendError> {
    let mut slot = None;
    for key in cmds.iter().flat_map(Command::keys) {
        let this = hash_slot(key.as_bytes());
        match slot {
            None => slot = Some(this),
            Some(first) if first != this => {
                return Err(invalid(format!(
                    "the keys of one call must share a hash slot on a Redis Cluster, \
                     these are in slots {first} and {this}: give them one hash tag \
                     ({{tag}}:a, {{tag}}:b)"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// `ASKING`, sent before a command redirected by `ASK`.
fn asking_command() -> Command {
    Command::Raw {
        args: vec![Bytes::from_static(b"ASKING")],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}

impl Shared {
    pub(super) fn routes(&self) -> Arc<Routes> {
        Arc::clone(&self.routes.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The node for `addr`, created (not yet connected) if it is new.
    fn node(&self, addr: &Addr) -> Arc<Node> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            pool.entry(Arc::clone(addr))
                .or_insert_with(|| Arc::new(Node::new(Arc::clone(addr)))),
        )
    }

    /// Makes `map` the routing table, with a node per master and replica, and forgets
    /// the nodes it no longer names.
    fn install(&self, map: SlotMap) {
        let masters: Vec<Arc<Node>> = map.masters().iter().map(|m| self.node(m)).collect();
        let replicas: Vec<Vec<Arc<Node>>> = (0..masters.len())
            .map(|i| map.replicas_of(i).iter().map(|r| self.node(r)).collect())
            .collect();
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|addr, _| map.nodes().any(|n| n == addr));
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Routes {
            map,
            masters,
            replicas,
            next_replica: AtomicUsize::new(0),
        });
    }

    /// Records a `MOVED`: `slot` is served by `addr` from now on; the rest of the map is
    /// read again soon.
    fn moved(self: &Arc<Self>, slot: u16, addr: &Addr) {
        let routes = self.routes();
        if routes.map.owner(slot) != addr {
            self.install(routes.map.with_owner(slot, addr));
        }
        self.refresh_soon();
    }

    /// Sends `request` to the owner of `slot`, following redirects, within the call's
    /// deadline.
    async fn send(
        self: &Arc<Self>,
        slot: Option<u16>,
        request: Request,
    ) -> Result<Reply, BackendError> {
        let node = Arc::clone(self.routes().owner(slot));
        self.send_to(node, slot, request, Instant::now() + self.call_timeout)
            .await
    }

    /// Sends `request` (on `slot`) to `node`, following redirects (see
    /// [`ClusterBackend`]), by `deadline`.
    pub(super) async fn send_to(
        self: &Arc<Self>,
        mut node: Arc<Node>,
        slot: Option<u16>,
        request: Request,
        deadline: Instant,
    ) -> Result<Reply, BackendError> {
        let mut asking = false;
        let mut wait = TRYAGAIN_WAIT;
        let mut sends = 0;
        loop {
            sends += 1;
            let attempt = self.attempt(&node, request.clone(), asking);
            // The first send is bounded by the node's own socket timeout; later ones by
            // what is left of the call's.
            let result = if sends == 1 && node.ready().is_some() {
                attempt.await
            } else {
                match tokio::time::timeout_at(deadline, attempt).await {
                    Ok(result) => result,
                    Err(_) => Err(BackendError::timeout(format!(
                        "{}: no reply from the cluster within {:?}",
                        self.name, self.call_timeout
                    ))),
                }
            };
            let error = match result {
                Ok(reply) => return Ok(reply),
                Err(error) => error,
            };
            let redirect = Redirect::of(&error);
            if redirect.is_none() || sends >= MAX_SENDS {
                if matches!(
                    error.kind(),
                    ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Busy
                ) {
                    self.refresh_soon();
                }
                return Err(error);
            }
            asking = false;
            match redirect {
                Some(Redirect::Moved(slot, addr)) => {
                    self.moved(slot, &addr);
                    node = self.node(&addr);
                }
                Some(Redirect::Ask(addr)) if matches!(request, Request::One(_)) => {
                    node = self.node(&addr);
                    asking = true;
                }
                // `TRYAGAIN`, or `ASK` for a batch (one `ASKING` covers one command):
                // the slot is migrating; wait a little and ask its owner again.
                _ => {
                    if Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    if slot.is_some() {
                        node = Arc::clone(self.routes().owner(slot));
                    }
                }
            }
        }
    }

    /// One send of `request` to `node` (after `ASKING` when `asking`).
    pub(super) async fn attempt(
        &self,
        node: &Node,
        request: Request,
        asking: bool,
    ) -> Result<Reply, BackendError> {
        let backend = match node.ready() {
            Some(backend) => Arc::clone(backend),
            None => node.backend(&self.connector, &self.node_config).await?,
        };
        match request {
            Request::One(cmd) if asking => {
                let mut replies = backend
                    .execute_batch(vec![asking_command(), cmd], false)
                    .await?;
                match (replies.pop(), replies.len()) {
                    (Some(value), 1) => Ok(Reply::One(value)),
                    _ => Err(BackendError::new(
                        ErrorKind::Server,
                        "unexpected reply: expected two replies after ASKING",
                    )),
                }
            }
            Request::One(cmd) => backend.execute(cmd).await.map(Reply::One),
            Request::Batch(cmds, atomic) => {
                backend.execute_batch(cmds, atomic).await.map(Reply::Batch)
            }
        }
    }

    /// Starts a refresh of the slot map in the background, unless one runs or one
    /// started less than [`CLUSTER_REFRESH_THROTTLE`] ago.
    pub(super) fn refresh_soon(self: &Arc<Self>) {
        {
            let mut last = self
                .last_refresh
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < CLUSTER_REFRESH_THROTTLE
                || self.refreshing.swap(true, Ordering::AcqRel)
            {
                return;
            }
            *last = Instant::now();
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(shared) = me.upgrade() {
                let _ = shared.refresh().await;
                shared.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// Reads the slot map from the first node that answers, masters first, then seeds,
    /// each bounded by the call timeout.
    async fn refresh(&self) -> Result<(), BackendError> {
        let mut candidates: Vec<Addr> = self.routes().map.masters().to_vec();
        for seed in &self.seeds {
            if !candidates.contains(seed) {
                candidates.push(Arc::clone(seed));
            }
        }
        let mut last_error = BackendError::unavailable("the cluster has no node to ask");
        for addr in candidates {
            let node = self.node(&addr);
            let read = async {
                let backend = node.backend(&self.connector, &self.node_config).await?;
                SlotMap::parse(backend.execute(cluster_slots()).await?)
            };
            let read = match tokio::time::timeout(self.call_timeout, read).await {
                Ok(read) => read,
                Err(_) => Err(BackendError::timeout(format!(
                    "no CLUSTER SLOTS reply from {addr} within {:?}",
                    self.call_timeout
                ))),
            };
            match read {
                Ok(map) => {
                    tracing::debug!(backend = self.name, masters = ?map.masters(), "cluster slot map read");
                    self.install(map);
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(backend = self.name, node = %addr, error = %e, "CLUSTER SLOTS failed");
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }
}

/// Reads the slot map every [`CLUSTER_REFRESH_PERIOD`] until the backend is dropped.
fn spawn_periodic_refresh(shared: Weak<Shared>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CLUSTER_REFRESH_PERIOD).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let _ = shared.refresh().await;
        }
    });
}

/// The refusal of a blocking command, which the router does not route yet (it needs a
/// connection of its own on the node that owns its keys): `InvalidInput`, naming the
/// command.
fn blocking_refused(cmd: &Command) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidInput,
        format!(
            "{} on a Redis Cluster is not supported yet: blocking commands run on a single server",
            cmd.name()
        ),
    )
}

impl ClusterBackend {
    /// [`KvBackend::execute`], without the box the trait's future needs.
    async fn route(&self, cmd: Command) -> Result<Value, BackendError> {
        if cmd.blocks_for().is_some() {
            return Err(blocking_refused(&cmd));
        }
        match self.call(Request::One(cmd)).await? {
            Reply::One(value) => Ok(value),
            Reply::Batch(_) => Err(BackendError::new(
                ErrorKind::Server,
                "unexpected batch reply",
            )),
        }
    }

    /// [`KvBackend::execute_batch`], without the trait's box (see [`route`](Self::route)).
    async fn route_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self.call(Request::Batch(cmds, atomic)).await? {
            Reply::Batch(values) => Ok(values),
            Reply::One(_) => Err(BackendError::new(
                ErrorKind::Server,
                "unexpected single reply",
            )),
        }
    }
}

#[async_trait]
impl KvBackend for ClusterBackend {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.route(cmd).await
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        self.route_batch(cmds, atomic).await
    }

    /// Shard channels on the master that owns their slot (they must share one); otherwise
    /// on any master that takes it, in slot-map order: a `PUBLISH`ed message reaches the
    /// subscribers of every node of a cluster. A master that fails is skipped (and the map
    /// refreshed), so a [`Subscriber`](crate::Subscriber) that lost its node follows the
    /// cluster: to another master, or to the replica promoted in its place.
    async fn open_pubsub(
        &self,
        subscriptions: &[crate::Subscription],
    ) -> Result<Box<dyn crate::PubSubLink>, BackendError> {
        let mut shard_slot = None;
        for subscription in subscriptions {
            if let crate::Subscription::Shard(channel) = subscription {
                let slot = hash_slot(channel.as_bytes());
                match shard_slot {
                    None => shard_slot = Some(slot),
                    Some(first) if first != slot => {
                        return Err(invalid(format!(
                            "the shard channels of one subscriber must share a hash slot, \
                             these are in slots {first} and {slot}: give them one hash tag"
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        let routes = self.shared.routes();
        let candidates: Vec<Arc<Node>> = match shard_slot {
            Some(slot) => vec![Arc::clone(routes.owner(Some(slot)))],
            None => routes.masters.clone(),
        };
        let mut last = None;
        for node in &candidates {
            let backend = match node.ready() {
                Some(backend) => Arc::clone(backend),
                None => match node
                    .backend(&self.shared.connector, &self.shared.node_config)
                    .await
                {
                    Ok(backend) => backend,
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                },
            };
            match backend.open_pubsub(subscriptions).await {
                Ok(link) => return Ok(link),
                Err(e) => last = Some(e),
            }
        }
        self.shared.refresh_soon();
        Err(last.unwrap_or_else(|| BackendError::unavailable("no cluster master to subscribe on")))
    }

    /// The nodes' backends' name.
    fn name(&self) -> &'static str {
        self.shared.name
    }

    fn is_networked(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::SetOptions;

    type Answer = Box<dyn FnMut(u16, &Command) -> Option<Result<Value, BackendError>> + Send>;

    /// Nodes that log what they are sent and answer from a script; `CLUSTER SLOTS` from
    /// `slots`, anything not scripted with `OK`.
    struct Fake {
        slots: Mutex<Value>,
        log: Mutex<Vec<(u16, String)>>,
        answer: Mutex<Answer>,
    }

    struct FakeNode {
        port: u16,
        fake: Arc<Fake>,
    }

    fn label(cmd: &Command) -> String {
        match cmd {
            Command::Raw { args, .. } => String::from_utf8_lossy(&args[0]).into_owned(),
            other => other.name().to_owned(),
        }
    }

    #[async_trait]
    impl KvBackend for FakeNode {
        async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
            if matches!(&cmd, Command::Raw { args, .. } if args[0] == "CLUSTER") {
                return Ok(self.fake.slots.lock().unwrap().clone());
            }
            self.fake.log.lock().unwrap().push((self.port, label(&cmd)));
            let scripted = (self.fake.answer.lock().unwrap())(self.port, &cmd);
            scripted.unwrap_or(Ok(Value::Okay))
        }

        async fn execute_batch(
            &self,
            cmds: Vec<Command>,
            _atomic: bool,
        ) -> Result<Vec<Value>, BackendError> {
            let mut out = Vec::new();
            for cmd in cmds {
                out.push(self.execute(cmd).await?);
            }
            Ok(out)
        }

        fn name(&self) -> &'static str {
            "fake"
        }
    }

    fn slots(ranges: &[(i64, i64, i64)]) -> Value {
        super::super::slot_map::tests::reply(ranges)
    }

    /// Two masters: 7000 serves 0..=8191, 7001 serves 8192..=16383. Seeds 6999
    /// (unreachable) and 7000.
    async fn cluster(answer: Answer) -> (ClusterBackend, Arc<Fake>) {
        cluster_reading(ReadPolicy::Primary, answer).await
    }

    /// [`cluster`] with a read policy; the replicas of 7000 and 7001 are 7100 and 7101.
    async fn cluster_reading(policy: ReadPolicy, answer: Answer) -> (ClusterBackend, Arc<Fake>) {
        let fake = Arc::new(Fake {
            slots: Mutex::new(slots(&[(0, 8191, 7000), (8192, 16383, 7001)])),
            log: Mutex::new(Vec::new()),
            answer: Mutex::new(answer),
        });
        let nodes = Arc::clone(&fake);
        let config = ConnectionConfig::default()
            .with_cluster_nodes(vec![("127.0.0.1".into(), 6999), ("127.0.0.1".into(), 7000)])
            .with_read_policy(policy);
        let backend = ClusterBackend::connect(&config, move |config: ConnectionConfig| {
            let fake = Arc::clone(&nodes);
            async move {
                if config.port == 6999 {
                    return Err(BackendError::unavailable("refused"));
                }
                Ok(Arc::new(FakeNode {
                    port: config.port,
                    fake,
                }) as Arc<dyn KvBackend>)
            }
        })
        .await
        .unwrap();
        (backend, fake)
    }

    fn log(fake: &Fake) -> Vec<(u16, String)> {
        std::mem::take(&mut *fake.log.lock().unwrap())
    }

    fn get(key: &str) -> Command {
        Command::Get { key: key.into() }
    }

    fn set(key: &str) -> Command {
        Command::Set {
            key: key.into(),
            value: Bytes::from_static(b"v"),
            options: SetOptions::default(),
        }
    }

    fn incr(key: &str) -> Command {
        Command::Incrby {
            key: key.into(),
            delta: 1,
        }
    }

    // Slots: "foo" 12182 (7001), "hello" 866 (7000).

    /// Replicas that answer `MOVED` to reads until their connection sent `READONLY`, as
    /// a real replica does.
    fn replicas_want_readonly() -> Answer {
        let mut readonly = std::collections::HashSet::new();
        Box::new(move |port, cmd| {
            if label(cmd) == "READONLY" {
                readonly.insert(port);
                return None;
            }
            (port >= 7100 && !readonly.contains(&port)).then(|| {
                Err(BackendError::from_reply("MOVED 12182 127.0.0.1:7001").with_code("MOVED"))
            })
        })
    }

    #[tokio::test]
    async fn reads_go_to_a_replica_after_readonly_and_writes_to_the_master() {
        let (cluster, fake) =
            cluster_reading(ReadPolicy::PreferReplica, replicas_want_readonly()).await;
        cluster.execute(get("foo")).await.unwrap();
        cluster.execute(get("foo")).await.unwrap();
        cluster.execute(set("foo")).await.unwrap();
        cluster
            .execute_batch(vec![get("{foo}:a"), get("{foo}:b")], false)
            .await
            .unwrap();
        // A transaction, even of reads, stays on the master.
        cluster
            .execute_batch(vec![get("{foo}:a"), get("{foo}:b")], true)
            .await
            .unwrap();
        assert_eq!(
            log(&fake),
            [
                // The first read is refused until the connection sent READONLY.
                (7101, "GET".into()),
                (7101, "READONLY".into()),
                (7101, "GET".into()),
                (7101, "GET".into()),
                (7001, "SET".into()),
                (7101, "READONLY".into()),
                (7101, "GET".into()),
                (7101, "GET".into()),
                (7001, "GET".into()),
                (7001, "GET".into()),
            ]
        );
        assert_eq!(cluster.replica_reads().by_replica, 3);
        assert_eq!(cluster.replica_reads().fallbacks, 0);
    }

    #[tokio::test]
    async fn a_call_can_override_the_clients_read_policy() {
        let (cluster, fake) = cluster(Box::new(|_, _| None)).await;
        cluster.execute(get("foo")).await.unwrap();
        ReadPolicy::Replica
            .scope(cluster.execute(get("foo")))
            .await
            .unwrap();
        assert_eq!(log(&fake), [(7001, "GET".into()), (7101, "GET".into())]);
    }

    #[tokio::test]
    async fn an_unreachable_replica_is_left_out_and_the_master_answers() {
        let (cluster, fake) = cluster_reading(
            ReadPolicy::PreferReplica,
            Box::new(|port, _| {
                (port == 7101).then(|| Err(BackendError::unavailable("connection refused")))
            }),
        )
        .await;
        cluster.execute(get("foo")).await.unwrap();
        // Left out now: straight to the master.
        cluster.execute(get("foo")).await.unwrap();
        assert_eq!(
            log(&fake),
            [
                (7101, "GET".into()),
                (7001, "GET".into()),
                (7001, "GET".into())
            ]
        );
        assert_eq!(cluster.replica_reads().fallbacks, 2);
        assert_eq!(cluster.replica_reads().by_replica, 0);
    }

    #[tokio::test]
    async fn the_replica_policy_never_reads_from_the_master() {
        let (cluster, fake) = cluster_reading(
            ReadPolicy::Replica,
            Box::new(|port, _| {
                (port == 7101).then(|| Err(BackendError::unavailable("connection refused")))
            }),
        )
        .await;
        let error = cluster.execute(get("foo")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(
            error.to_string().contains("read policy `replica`"),
            "{error}"
        );
        // A replica's server error is the answer, not a reason to go elsewhere.
        let (cluster, _) = cluster_reading(
            ReadPolicy::Replica,
            Box::new(|_, _| Some(Err(BackendError::from_reply("WRONGTYPE not a string")))),
        )
        .await;
        let error = cluster.execute(get("foo")).await.unwrap_err();
        assert!(error.to_string().contains("WRONGTYPE"), "{error}");
        assert_eq!(log(&fake), [(7101, "GET".into())]);
    }

    #[tokio::test]
    async fn commands_go_to_the_master_of_their_slot() {
        let (cluster, fake) = cluster(Box::new(|_, _| None)).await;
        assert_eq!(cluster.name(), "fake");
        assert_eq!(cluster.masters(), ["127.0.0.1:7000", "127.0.0.1:7001"]);
        cluster.execute(get("foo")).await.unwrap();
        cluster.execute(get("hello")).await.unwrap();
        cluster.execute(Command::Ping).await.unwrap();
        cluster
            .execute_batch(vec![set("{foo}:a"), get("{foo}:b")], true)
            .await
            .unwrap();
        assert_eq!(
            log(&fake),
            [
                (7001, "GET".into()),
                (7000, "GET".into()),
                (7000, "PING".into()),
                (7001, "SET".into()),
                (7001, "GET".into()),
            ]
        );
    }

    /// Every typed command of the table goes where its keys are, whatever the command:
    /// the router reads the keys from the table. A command with two keys in two slots is
    /// refused before anything is sent.
    #[tokio::test]
    async fn every_typed_command_is_routed_by_its_keys() {
        let (cluster, fake) = cluster(Box::new(|_, _| None)).await;
        let mut routed = 0;
        for spec in Command::SPECS.iter().filter(|s| s.name != "RAW") {
            let example = Command::from_args(&spec.example_args()).unwrap();
            let keys = example.keys().to_vec();
            if keys.is_empty() || example.blocks_for().is_some() {
                continue;
            }
            // Every key into the slot of "foo" (7001), then each key into its own slot.
            let spell = |tag: &dyn Fn(usize) -> &'static str| {
                let mut seen = 0;
                let args: Vec<Bytes> = spec
                    .example_args()
                    .into_iter()
                    .map(|arg| {
                        if keys.iter().any(|k| k.as_bytes() == arg.as_ref()) {
                            seen += 1;
                            Bytes::from(format!(
                                "{{{}}}{}",
                                tag(seen),
                                String::from_utf8_lossy(&arg)
                            ))
                        } else {
                            arg
                        }
                    })
                    .collect();
                Command::from_args(&args).unwrap()
            };
            let together = spell(&|_| "foo");
            cluster.execute(together).await.unwrap();
            assert_eq!(
                log(&fake),
                [(7001, spec.name.to_owned())],
                "{}",
                spec.example
            );
            routed += 1;
            if keys.len() > 1 {
                let apart = spell(&|n| if n == 1 { "foo" } else { "hello" });
                let error = cluster.execute(apart).await.unwrap_err();
                assert_eq!(error.kind(), ErrorKind::InvalidInput, "{}", spec.example);
                assert_eq!(log(&fake), [], "{}", spec.example);
            }
        }
        assert!(routed > 80, "{routed}");
    }

    #[tokio::test]
    async fn keys_of_two_slots_are_refused_before_anything_is_sent() {
        let (cluster, fake) = cluster(Box::new(|_, _| None)).await;
        let mget = Command::Mget {
            keys: vec!["foo".into(), "hello".into()],
        };
        let error = cluster.execute(mget).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.message().contains("12182 and 866"), "{error}");
        let error = cluster
            .execute_batch(vec![set("{a}x"), set("{b}y")], true)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(log(&fake), []);
        // Keyless commands join any slot.
        cluster
            .execute_batch(vec![Command::Ping, set("{a}x")], false)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn moved_is_followed_and_remembered() {
        let (cluster, fake) = cluster(Box::new(|port, cmd| {
            (port == 7001 && cmd.keys() == ["foo"])
                .then(|| Err(BackendError::from_reply("MOVED 12182 127.0.0.1:7002")))
        }))
        .await;
        *fake.slots.lock().unwrap() = slots(&[
            (0, 8191, 7000),
            (8192, 12181, 7001),
            (12182, 12182, 7002),
            (12183, 16383, 7001),
        ]);
        assert_eq!(cluster.execute(set("foo")).await.unwrap(), Value::Okay);
        assert_eq!(cluster.execute(get("foo")).await.unwrap(), Value::Okay);
        assert_eq!(
            log(&fake),
            [
                (7001, "SET".into()),
                (7002, "SET".into()),
                (7002, "GET".into())
            ]
        );
    }

    #[tokio::test]
    async fn ask_sends_one_command_after_asking_and_keeps_the_map() {
        let (cluster, fake) = cluster(Box::new(|port, cmd| {
            (port == 7001 && matches!(cmd, Command::Set { .. }))
                .then(|| Err(BackendError::from_reply("ASK 12182 127.0.0.1:7002")))
        }))
        .await;
        assert_eq!(cluster.execute(set("foo")).await.unwrap(), Value::Okay);
        cluster.execute(get("foo")).await.unwrap();
        assert_eq!(
            log(&fake),
            [
                (7001, "SET".into()),
                (7002, "ASKING".into()),
                (7002, "SET".into()),
                (7001, "GET".into())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tryagain_is_sent_again_after_a_wait() {
        let mut refusals = 2;
        let (cluster, fake) = cluster(Box::new(move |_, cmd| {
            (matches!(cmd, Command::Mget { .. }) && refusals > 0).then(|| {
                refusals -= 1;
                Err(BackendError::from_reply("TRYAGAIN Multiple keys request"))
            })
        }))
        .await;
        let mget = Command::Mget {
            keys: vec!["{foo}a".into(), "{foo}b".into()],
        };
        let started = Instant::now();
        cluster.execute(mget).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(30));
        assert_eq!(log(&fake).len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_told_to_ask_waits_for_the_migration() {
        let mut refusals = 1;
        let (cluster, fake) = cluster(Box::new(move |port, _| {
            (port == 7001 && refusals > 0).then(|| {
                refusals -= 1;
                Err(BackendError::from_reply("ASK 12182 127.0.0.1:7002"))
            })
        }))
        .await;
        cluster
            .execute_batch(vec![set("{foo}a"), get("{foo}a")], true)
            .await
            .unwrap();
        let sent: Vec<u16> = log(&fake).into_iter().map(|(port, _)| port).collect();
        assert_eq!(sent, [7001, 7001, 7001]);
    }

    #[tokio::test]
    async fn a_failure_after_sending_is_never_resent() {
        for kind in [ErrorKind::Timeout, ErrorKind::Unavailable] {
            let (cluster, fake) = cluster(Box::new(move |_, cmd| {
                matches!(cmd, Command::Incrby { .. })
                    .then(|| Err(BackendError::new(kind, "connection lost")))
            }))
            .await;
            let error = cluster.execute(incr("foo")).await.unwrap_err();
            assert_eq!(error.kind(), kind);
            let error = cluster
                .execute_batch(vec![incr("foo")], true)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), kind);
            assert_eq!(
                log(&fake),
                [(7001, "INCRBY".into()), (7001, "INCRBY".into())]
            );
        }
    }

    #[tokio::test]
    async fn redirect_loops_end() {
        let (cluster, fake) = cluster(Box::new(|port, _| {
            let other = if port == 7001 { 7000 } else { 7001 };
            Some(Err(BackendError::from_reply(&format!(
                "MOVED 12182 127.0.0.1:{other}"
            ))))
        }))
        .await;
        let error = cluster.execute(get("foo")).await.unwrap_err();
        assert_eq!(error.code(), Some("MOVED"));
        assert_eq!(log(&fake).len(), MAX_SENDS);
    }

    #[tokio::test]
    async fn script_load_reaches_every_master() {
        let (cluster, fake) = cluster(Box::new(|_, cmd| {
            matches!(cmd, Command::ScriptLoad { .. })
                .then(|| Ok(Value::Bytes(Bytes::from_static(b"sha"))))
        }))
        .await;
        let sha = cluster
            .execute(Command::ScriptLoad {
                script: "return 1".into(),
            })
            .await
            .unwrap();
        assert_eq!(sha, Value::Bytes(Bytes::from_static(b"sha")));
        let mut ports: Vec<u16> = log(&fake).into_iter().map(|(port, _)| port).collect();
        ports.sort_unstable();
        assert_eq!(ports, [7000, 7001]);
    }

    #[tokio::test]
    async fn a_refresh_drops_nodes_that_left() {
        let (cluster, fake) = cluster(Box::new(|_, _| None)).await;
        *fake.slots.lock().unwrap() = slots(&[(0, 16383, 7002)]);
        cluster.refresh().await.unwrap();
        assert_eq!(cluster.masters(), ["127.0.0.1:7002"]);
        cluster.execute(get("hello")).await.unwrap();
        assert_eq!(log(&fake), [(7002, "GET".into())]);
        let mut pool: Vec<Addr> = cluster
            .shared
            .pool
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        pool.sort();
        // The new master and its replica (not connected until a read needs it).
        assert_eq!(
            pool,
            [Arc::from("127.0.0.1:7002"), Arc::from("127.0.0.1:7102")]
        );
    }

    #[tokio::test]
    async fn bad_configurations_are_refused() {
        let connect = |config: ConnectionConfig| async move {
            ClusterBackend::connect(&config, |_: ConnectionConfig| async {
                Ok(Arc::new(crate::test_support::MapBackend::new()) as Arc<dyn KvBackend>)
            })
            .await
            .unwrap_err()
            .kind()
        };
        let seeded = ConnectionConfig::default().with_cluster_nodes(vec![("h".into(), 1)]);
        assert_eq!(
            connect(ConnectionConfig::default()).await,
            ErrorKind::InvalidInput
        );
        assert_eq!(
            connect(seeded.clone().with_db(1)).await,
            ErrorKind::InvalidInput
        );
        // An in-memory node is no cluster: CLUSTER SLOTS fails.
        assert_ne!(connect(seeded).await, ErrorKind::InvalidInput);
    }
}
