//! Redis Cluster mode: one single-server fred client per master, and the routing, the
//! redirects and the slot map kept here.
//!
//! Why not fred's own clustered client: fred 10 reconnects a clustered client as a whole.
//! Losing one node's connection starts a full re-sync (`CLUSTER SLOTS`, then connect to
//! every master), and until it succeeds the client is not `Connected`, so every command
//! fails, whatever its slot; while a dead master is still listed as the owner of its slots
//! (until its replica is promoted) the re-sync keeps failing. One dead shard would stop
//! them all. fred's clustered client also follows `MOVED` only with a second write attempt
//! (so it may re-send a command after a connection drop) and could not follow `ASK` here.
//!
//! So [`FredCluster`] holds one ordinary [`FredBackend`] per master (each configured as in
//! the `connect` module: one attempt, `fail_fast`, timeouts, background reconnects) and a
//! slot map read with `CLUSTER SLOTS`:
//!
//! - A command goes to the master of its first key's slot (the core's [`hash_slot`]), a
//!   keyless one to any master, `SCRIPT LOAD` to every master (a later `EVALSHA` may run
//!   on any of them). A batch goes, whole, to the master of its first keyed command, so
//!   `MULTI`/`EXEC` on hash-tagged keys runs on one node (other slots fail with
//!   `CROSSSLOT`).
//! - `MOVED slot host:port`: the slot map entry is updated, a full refresh is started in
//!   the background, and the command is sent once more to the new owner (it did not run:
//!   the server refused it).
//! - `ASK slot host:port`: the command is sent once to that node, in one pipeline after
//!   `ASKING` (the pair is written together on its one connection).
//! - A node that cannot be reached (`Unavailable`, `Timeout`) starts a background refresh
//!   of the slot map (at most one at a time, at most every [`REFRESH_INTERVAL`]), so once
//!   the replica is promoted the next command finds the new master. Clients of nodes that
//!   left the map are dropped (their reconnect tasks stop).
//!
//! Every call ends within `socket_timeout`, redirects and a first connect to a node
//! included (the connect goes on in its own task if the call gives up).
//!
//! A dead master thus only fails the commands for its own slots, at once (its client is
//! disconnected and fails fast); the other masters' clients never notice. Nothing is ever
//! re-sent after a connection error, as in single-server mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use resilience_core::{BackendError, Command, ConnectionConfig, ErrorKind, KvBackend, Value};
use resilience_core::{SLOT_COUNT, hash_slot};
use tokio::time::Instant;

use crate::FredBackend;

/// Least time between two background refreshes of the slot map.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// `host:port` of a node, as `CLUSTER SLOTS` and redirects name it.
type Addr = Arc<str>;

/// A node connect in progress, awaited by every caller that needs the node.
type Connecting =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<FredBackend, BackendError>>>;

/// The owner of every slot.
struct SlotMap {
    /// Slot -> index into `masters`.
    owner: Box<[u16]>,
    masters: Vec<Addr>,
}

/// The cluster router behind a [`FredBackend`] in cluster mode (see the module docs).
pub(crate) struct FredCluster {
    /// Settings for one node; host and port are replaced per node.
    node_config: ConnectionConfig,
    seeds: Vec<(String, u16)>,
    map: RwLock<Arc<SlotMap>>,
    nodes: RwLock<HashMap<Addr, FredBackend>>,
    /// Connects under way, shared by the callers waiting for the same node.
    connecting: Mutex<HashMap<Addr, Connecting>>,
    /// Every call ends within this (`socket_timeout`), redirects and connects included.
    call_timeout: Duration,
    refreshing: AtomicBool,
    last_refresh: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for FredCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.current_map();
        f.debug_struct("FredCluster")
            .field("masters", &map.masters)
            .finish_non_exhaustive()
    }
}

/// Bad input for the cluster.
fn invalid(msg: impl Into<String>) -> BackendError {
    BackendError::new(ErrorKind::InvalidInput, msg)
}

impl FredCluster {
    /// Connects to the first seed that answers, reads the slot map and connects to every
    /// master. Returns the router and the seed's backend (kept for `FredBackend::client`).
    pub(crate) async fn connect(
        cfg: &ConnectionConfig,
    ) -> Result<(Arc<FredCluster>, FredBackend), BackendError> {
        if cfg.db != 0 {
            return Err(invalid("a Redis Cluster has only database 0"));
        }
        if cfg.sentinel.is_some() {
            return Err(invalid("cluster and sentinel cannot be combined"));
        }
        // Client tracking is not wired into cluster mode (each node would need its own
        // invalidation feed): the nodes never track, so a client cache over this backend
        // stays off instead of missing other nodes' invalidations.
        let node_config = cfg
            .clone()
            .with_cluster_nodes(Vec::new())
            .with_client_tracking(false);
        let mut last_error = invalid("no cluster seed node given");
        let mut seed = None;
        for (host, port) in &cfg.cluster_nodes {
            match FredBackend::connect_single(&with_addr(&node_config, host, *port)).await {
                Ok(backend) => {
                    seed = Some((format!("{host}:{port}"), backend));
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        let (seed_addr, seed) = seed.ok_or(last_error)?;
        let map = read_slot_map(&seed).await?;
        let cluster = Arc::new(FredCluster {
            node_config,
            seeds: cfg.cluster_nodes.clone(),
            map: RwLock::new(Arc::new(map)),
            nodes: RwLock::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            call_timeout: cfg.socket_timeout.max(Duration::from_millis(1)),
            refreshing: AtomicBool::new(false),
            last_refresh: Mutex::new(Some(Instant::now())),
        });
        cluster.insert_node(Arc::from(seed_addr.as_str()), seed.clone());
        // Connect to every master now, so the first commands do not pay for it; one that
        // cannot be reached is connected on first use.
        let masters = cluster.current_map().masters.clone();
        futures::future::join_all(masters.iter().map(|m| cluster.node(m))).await;
        Ok((cluster, seed))
    }

    fn current_map(&self) -> Arc<SlotMap> {
        Arc::clone(&self.map.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn insert_node(&self, addr: Addr, backend: FredBackend) {
        self.nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(addr)
            .or_insert(backend);
    }

    /// The client of node `addr`, connecting it if needed. The connect runs in its own
    /// task (so a caller that gives up, at its deadline, never leaves a half-built client
    /// behind) and callers for the same node share it.
    async fn node(&self, addr: &Addr) -> Result<FredBackend, BackendError> {
        if let Some(b) = self
            .nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(addr)
        {
            return Ok(b.clone());
        }
        let connecting = {
            let mut pending = self
                .connecting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match pending.get(addr) {
                Some(shared) => shared.clone(),
                None => {
                    let (host, port) = split_addr(addr)?;
                    let config = with_addr(&self.node_config, host, port);
                    let task =
                        tokio::spawn(async move { FredBackend::connect_single(&config).await });
                    let shared = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(BackendError::unavailable(format!(
                                "fred: connect task failed: {e}"
                            )))
                        })
                    }
                    .boxed()
                    .shared();
                    pending.insert(Arc::clone(addr), shared.clone());
                    shared
                }
            }
        };
        let result = connecting.await;
        self.connecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(addr);
        let backend = result?;
        self.insert_node(Arc::clone(addr), backend);
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(addr)
            .cloned()
            .ok_or_else(|| BackendError::unavailable(format!("fred: node {addr} was dropped")))
    }

    /// The master that owns `slot`, or any master for `None`.
    fn owner(&self, slot: Option<u16>) -> Addr {
        let map = self.current_map();
        let index = match slot {
            Some(slot) => map.owner[usize::from(slot % SLOT_COUNT)],
            None => 0,
        };
        Arc::clone(&map.masters[usize::from(index)])
    }

    /// Runs one command within `socket_timeout` (see the module docs for routing and
    /// redirects).
    pub(crate) async fn execute(self: &Arc<Self>, cmd: Command) -> Result<Value, BackendError> {
        self.bounded(self.execute_unbounded(cmd)).await
    }

    /// Runs a batch within `socket_timeout`, on the master of its first keyed command's
    /// slot.
    pub(crate) async fn execute_batch(
        self: &Arc<Self>,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        self.bounded(self.execute_batch_unbounded(cmds, atomic))
            .await
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::timeout(format!(
                "fred: no reply from the cluster within {:?}",
                self.call_timeout
            ))),
        }
    }

    async fn execute_unbounded(self: &Arc<Self>, cmd: Command) -> Result<Value, BackendError> {
        if let Command::ScriptLoad { script } = cmd {
            return self.script_load_everywhere(script).await;
        }
        let slot = slot_of(&cmd);
        let target = self.owner(slot);
        let retry = cmd.clone();
        let result = self
            .on_node(&target, |b| async move { b.execute(cmd).await })
            .await;
        match result {
            Err(e) => match redirect(&e) {
                Some(Redirect::Moved(slot, addr)) => {
                    self.moved(slot, &addr);
                    self.on_node(&addr, |b| async move { b.execute(retry).await })
                        .await
                }
                Some(Redirect::Ask(addr)) => {
                    let mut values = self
                        .on_node(&addr, |b| async move {
                            b.execute_batch(vec![asking(), retry], false).await
                        })
                        .await?;
                    values.pop().ok_or_else(|| {
                        BackendError::new(ErrorKind::Server, "no reply after ASKING")
                    })
                }
                None => Err(e),
            },
            ok => ok,
        }
    }

    async fn execute_batch_unbounded(
        self: &Arc<Self>,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        let slot = cmds.iter().find_map(slot_of);
        let target = self.owner(slot);
        let retry = cmds.clone();
        let result = self
            .on_node(
                &target,
                |b| async move { b.execute_batch(cmds, atomic).await },
            )
            .await;
        match result {
            Err(e) => match redirect(&e) {
                Some(Redirect::Moved(slot, addr)) => {
                    self.moved(slot, &addr);
                    self.on_node(
                        &addr,
                        |b| async move { b.execute_batch(retry, atomic).await },
                    )
                    .await
                }
                // A batch is not sent after ASKING: the slot is migrating, try later.
                _ => Err(e),
            },
            ok => ok,
        }
    }

    /// Runs `f` on node `addr`; an unreachable node starts a refresh of the slot map.
    async fn on_node<T, F, Fut>(self: &Arc<Self>, addr: &Addr, f: F) -> Result<T, BackendError>
    where
        F: FnOnce(FredBackend) -> Fut,
        Fut: std::future::Future<Output = Result<T, BackendError>>,
    {
        let result = match self.node(addr).await {
            Ok(backend) => f(backend).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result
            && matches!(
                e.kind(),
                ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Busy
            )
        {
            self.refresh_soon();
        }
        result
    }

    /// `SCRIPT LOAD` on every master at once; the first reply (the SHA1) is returned.
    async fn script_load_everywhere(
        self: &Arc<Self>,
        script: String,
    ) -> Result<Value, BackendError> {
        let masters = self.current_map().masters.clone();
        let loads = masters.iter().map(|addr| {
            let cmd = Command::ScriptLoad {
                script: script.clone(),
            };
            self.on_node(addr, |b| async move { b.execute(cmd).await })
        });
        let mut replies = futures::future::try_join_all(loads).await?;
        if replies.is_empty() {
            return Err(BackendError::unavailable("the cluster has no master"));
        }
        Ok(replies.swap_remove(0))
    }

    /// Records a `MOVED`: `slot` now belongs to `addr`; the rest is refreshed soon.
    fn moved(self: &Arc<Self>, slot: u16, addr: &Addr) {
        {
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            let mut next = SlotMap {
                owner: map.owner.clone(),
                masters: map.masters.clone(),
            };
            let index = match next.masters.iter().position(|m| m == addr) {
                Some(i) => i,
                None => {
                    next.masters.push(Arc::clone(addr));
                    next.masters.len() - 1
                }
            };
            if let Some(entry) = next.owner.get_mut(usize::from(slot)) {
                *entry = index as u16;
            }
            *map = Arc::new(next);
        }
        self.refresh_soon();
    }

    /// Starts a background refresh of the slot map, unless one runs or one ran less than
    /// [`REFRESH_INTERVAL`] ago.
    fn refresh_soon(self: &Arc<Self>) {
        {
            let mut last = self
                .last_refresh
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
                return;
            }
            if self.refreshing.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(Instant::now());
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(cluster) = me.upgrade() {
                cluster.refresh().await;
                cluster.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// Reads the slot map from the first node that answers (masters first, then seeds)
    /// and drops the clients of nodes that are no longer masters.
    async fn refresh(&self) {
        let mut candidates: Vec<Addr> = self.current_map().masters.clone();
        for (h, p) in &self.seeds {
            let addr: Addr = Arc::from(format!("{h}:{p}").as_str());
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
        for addr in candidates {
            let Ok(node) = self.node(&addr).await else {
                continue;
            };
            match read_slot_map(&node).await {
                Ok(map) => {
                    let keep = map.masters.clone();
                    *self.map.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
                    self.nodes
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|a, _| keep.contains(a));
                    tracing::debug!(backend = "fred", masters = ?keep, "cluster slot map refreshed");
                    return;
                }
                Err(e) => {
                    tracing::debug!(backend = "fred", node = %addr, error = %e, "CLUSTER SLOTS failed");
                }
            }
        }
    }
}

fn with_addr(base: &ConnectionConfig, host: &str, port: u16) -> ConnectionConfig {
    base.clone().with_host(host.to_owned()).with_port(port)
}

fn split_addr(addr: &str) -> Result<(&str, u16), BackendError> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| invalid(format!("bad node address {addr:?}")))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| invalid(format!("bad node address {addr:?}")))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

/// The slot a command runs on: its first key's.
pub(crate) fn slot_of(cmd: &Command) -> Option<u16> {
    cmd.keys().first().map(|k| hash_slot(k.as_bytes()))
}

fn asking() -> Command {
    Command::Raw {
        args: vec![Bytes::from_static(b"ASKING")],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}

#[derive(Debug, PartialEq)]
enum Redirect {
    Moved(u16, Addr),
    Ask(Addr),
}

/// The redirect an error reply asks for (`MOVED 3999 127.0.0.1:6381`, `ASK …`).
fn redirect(e: &BackendError) -> Option<Redirect> {
    let code = e.code()?;
    if code != "MOVED" && code != "ASK" {
        return None;
    }
    let message = e.message();
    let at = message.find(code)?;
    let mut parts = message[at + code.len()..].split_whitespace();
    let slot = parts.next()?.parse::<u16>().ok()?;
    let addr: Addr = Arc::from(parts.next()?);
    split_addr(&addr).ok()?;
    Some(if code == "MOVED" {
        Redirect::Moved(slot, addr)
    } else {
        Redirect::Ask(addr)
    })
}

/// `CLUSTER SLOTS` through `node`, as a slot map.
async fn read_slot_map(node: &FredBackend) -> Result<SlotMap, BackendError> {
    let reply = node
        .execute(Command::Raw {
            args: vec![Bytes::from_static(b"CLUSTER"), Bytes::from_static(b"SLOTS")],
            keys: Vec::new(),
            write: false,
            idempotent: true,
        })
        .await?;
    parse_slots(reply)
}

fn parse_slots(reply: Value) -> Result<SlotMap, BackendError> {
    let bad = |what: &str| {
        BackendError::new(
            ErrorKind::Server,
            format!("unexpected CLUSTER SLOTS reply: {what}"),
        )
    };
    let Value::Array(entries) = reply else {
        return Err(bad("not an array"));
    };
    let mut owner = vec![u16::MAX; usize::from(SLOT_COUNT)].into_boxed_slice();
    let mut masters: Vec<Addr> = Vec::new();
    for entry in entries {
        let Value::Array(fields) = entry else {
            return Err(bad("entry"));
        };
        let int = |v: Option<&Value>| match v {
            Some(Value::Int(i)) => Some(*i),
            Some(Value::Bytes(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        };
        let (Some(lo), Some(hi)) = (int(fields.first()), int(fields.get(1))) else {
            return Err(bad("range"));
        };
        let Some(Value::Array(node)) = fields.get(2) else {
            return Err(bad("master"));
        };
        let host = match node.first() {
            Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::Status(s)) => s.clone(),
            _ => return Err(bad("host")),
        };
        let port = int(node.get(1)).ok_or_else(|| bad("port"))?;
        let addr: Addr = Arc::from(format!("{host}:{port}").as_str());
        let index = match masters.iter().position(|m| *m == addr) {
            Some(i) => i,
            None => {
                masters.push(addr);
                masters.len() - 1
            }
        };
        let (lo, hi) = (
            usize::try_from(lo).map_err(|_| bad("range"))?,
            usize::try_from(hi).map_err(|_| bad("range"))?,
        );
        if lo > hi || hi >= owner.len() {
            return Err(bad("range"));
        }
        for slot in &mut owner[lo..=hi] {
            *slot = index as u16;
        }
    }
    if masters.is_empty() {
        return Err(bad("no master"));
    }
    // Uncovered slots (a shard without master) go to the first master, which answers
    // CLUSTERDOWN / MOVED for them.
    for slot in owner.iter_mut().filter(|s| **s == u16::MAX) {
        *slot = 0;
    }
    Ok(SlotMap { owner, masters })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redirects_are_parsed_from_error_replies() {
        let moved = BackendError::from_reply("MOVED 3999 127.0.0.1:6381");
        assert_eq!(
            redirect(&moved),
            Some(Redirect::Moved(3999, Arc::from("127.0.0.1:6381")))
        );
        let ask = BackendError::from_reply("ASK 12182 10.0.0.2:7000");
        assert_eq!(
            redirect(&ask),
            Some(Redirect::Ask(Arc::from("10.0.0.2:7000")))
        );
        assert_eq!(redirect(&BackendError::from_reply("ERR nope")), None);
        assert_eq!(redirect(&BackendError::from_reply("MOVED x y")), None);
    }

    #[test]
    fn evalsha_is_routed_by_its_first_key() {
        let cmd = Command::Evalsha {
            sha1: "e0e1f9fabfc9d4800c877a703b823ac0578ff8db".into(),
            keys: vec!["{agent-1}:a".into(), "{agent-1}:b".into()],
            args: vec![],
            idempotent: true,
        };
        assert_eq!(slot_of(&cmd), Some(hash_slot(b"agent-1")));
        assert_eq!(slot_of(&Command::Ping), None);
    }

    #[test]
    fn slot_maps_parse_and_fill_gaps() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::Bytes(Bytes::from_static(b"127.0.0.1")),
                Value::Int(port),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(8000), node(7000)]),
            Value::Array(vec![Value::Int(8001), Value::Int(16383), node(7001)]),
        ]);
        let map = parse_slots(reply).unwrap();
        assert_eq!(map.masters.len(), 2);
        assert_eq!(&*map.masters[map.owner[12182] as usize], "127.0.0.1:7001");
        assert!(parse_slots(Value::Okay).is_err());
    }
}
