//! # backend-redis-rs
//!
//! [`RedisRsBackend`]: the [`KvBackend`] trait implemented on the
//! [`redis`](https://docs.rs/redis) crate (redis-rs 1.x). It only translates and
//! classifies; breakers, retries and queueing live once, in `resilience-core`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), resilience_core::Error> {
//! use backend_redis_rs::RedisRsBackend;
//! use resilience_core::{Command, ConnectionConfig, KvBackend};
//!
//! let config = ConnectionConfig::from_url("redis://127.0.0.1:6380/0?socket_timeout=0.5")?;
//! let backend = RedisRsBackend::connect(&config).await?;
//! let pong = backend.execute(Command::Ping).await?;
//! # let _ = pong;
//! # Ok(())
//! # }
//! ```
//!
//! The crate is small modules, one job each:
//!
//! - `connect` (private): the connection manager, configured so an outage
//!   reaches the core as `Unavailable` or `Timeout` within `socket_timeout`, with no driver
//!   retry that could apply a write twice (see below for the exact settings and why).
//! - `translate` (private): each [`Command`] to one `redis::Cmd`, as the core's
//!   [`backend`](resilience_core::backend) module spells it.
//! - `reply` (private): driver replies to the core's [`Value`], one to one; the core's
//!   [`ReplyShape`] then gives them their canonical shape.
//! - [`classify_error`]: driver errors to the core's `ErrorKind`, as a table.
//!
//! ## Promises
//!
//! - Every call ends within `socket_timeout` (connect time included): `Timeout` when the
//!   server does not answer, `Unavailable` when it cannot be reached.
//! - After the server comes back, the next call reconnects: nothing waits for a backoff.
//! - A batch is one round trip; an error reply to any of its commands fails the whole call
//!   with that error (the first one), so there is never a silent partial success.
//! - `EVALSHA` of an unknown script fails with code `NOSCRIPT`; reloading is the core's job.
//!
//! ## How redis-rs is configured, and why
//!
//! The backend holds one [`redis::aio::ConnectionManager`]: a multiplexed connection (one
//! socket, requests pipelined by a driver task) that reconnects by itself after an I/O
//! error. A bare `MultiplexedConnection` never reconnects, so it is not used directly.
//! Out of the box the manager would still hide outages, so it is configured:
//!
//! - **`number_of_retries = 0`.** The default (6 jittered retries, exponential from 100 ms)
//!   keeps a command waiting for seconds while the server is down, which hides the outage
//!   from the breaker. With zero, each reconnect is one attempt: while the server is down a
//!   call fails with `Unavailable` as fast as the OS refuses the connection, and each failed
//!   call starts the next attempt. The core's breaker and retry policy decide what happens
//!   next.
//! - **`connection_timeout = socket_connect_timeout`** on every connect and reconnect,
//!   including a server that accepts and never answers the handshake.
//! - **No driver `response_timeout`; one deadline per call instead.** The backend wraps
//!   the whole call, waiting for a reconnect included, in one `tokio::time::timeout_at`
//!   at `socket_timeout`: whatever the driver does, a call ends within `socket_timeout`.
//!   The driver's own response timeout would only cover the wait for the reply, so it
//!   would be a second timer per command that adds no guarantee.
//! - **The manager never resends a command.** A command in flight when the connection
//!   dies fails with `Timeout` (it may have run); only the *connection* is re-established.
//!   So no driver retry can apply a non-idempotent write twice.
//!
//! Two gaps of the manager are closed here, in the private `connect` module:
//!
//! - After a timed-out call it keeps using the same socket, which may be wedged (a hung
//!   server, a silent partition) for as long as TCP keeps it open. After a timeout, and
//!   after a handshake refused without an I/O error (which the manager would otherwise
//!   return to every later call), the backend swaps in a fresh, lazily connecting manager.
//!   Calls already running on the old one finish; the old socket closes when they are done.
//!   A timeout on a manager that never answered is not a wedged socket but a connect still
//!   under way: that one is left alone, since its own `connection_timeout` ends it and the
//!   manager then reconnects by itself (replacing it would restart a slow connect forever).
//! - A connect that failed is cached until the next call notices it, so the first call
//!   after the server comes back would fail with that stale error. A failure to *connect*
//!   (refused) means the command was never sent, so [`RedisRsBackend`]
//!   retries it exactly once, on the fresh attempt that the failure started. The same
//!   holds for a command handed to a connection that had already closed (next section).
//!   No other error is ever retried here.
//!
//! ## A dead server: what was sent, and what was not
//!
//! With RESP2 the manager learns that its socket died only when a call uses it, and
//! redis-rs reports the same error (`broken pipe`) whether the command was in flight on
//! the dead connection (it may have run) or was handed to a connection whose task had
//! already ended (it was never written). The backend tells the two apart by how the call
//! went (the private `HandedOver` future): handing a command to an ended connection task
//! fails on the call's first poll, while a command the task accepted waits for its reply
//! first. So:
//!
//! - a call made after the connection closed (the server died while the client was idle)
//!   was not sent: it is tried once more on the reconnect its failure started, and fails
//!   with `Unavailable` in well under a millisecond when the server is down (or succeeds,
//!   when only the connection had been cut);
//! - a call made while the manager reconnects fails with `Unavailable` as soon as the
//!   connect is refused;
//! - a command written and then left without a reply by a dying connection is `Timeout`:
//!   it may have run, and it is never resent.
//!
//! RESP2 is used (the default), and `CLIENT SETINFO` is sent as redis-rs does by default
//! (its reply is ignored). With `ConnectionConfig::client_tracking` the connection speaks
//! RESP3 and has `CLIENT TRACKING ON OPTIN`, re-enabled after every reconnect and renewal,
//! for the core's client-side cache (private `tracking` module).
//!
//! ## TLS (`rediss://`)
//!
//! With `ConnectionConfig::tls` set (a `rediss://` URL sets it), the connection is TLS with
//! rustls (redis-rs feature `tokio-rustls-comp`, the `ring` provider):
//!
//! - `ca_file: None` trusts the platform's roots (redis-rs loads them with
//!   `rustls-native-certs`); `Some(path)` trusts exactly the certificates in that PEM file
//!   (passed as `redis::TlsCertificates::root_cert`).
//! - `client_cert_file` and `client_key_file` (both or neither) add a client certificate,
//!   for servers with `tls-auth-clients yes`.
//! - `insecure: true` verifies nothing: no certificate check and no SNI (redis-rs feature
//!   `tls-rustls-insecure`). **Only for tests**: anyone on the path can read and change
//!   the traffic.
//! - The files are read and checked at `connect`: a missing, unreadable or non-PEM file is
//!   `InvalidInput`, naming the file.
//! - A certificate the client does not trust (wrong CA, wrong name), a client certificate
//!   the server requires but did not get, and any other TLS alert fail at once with
//!   `Unavailable` and a message starting `TLS handshake failed`: the server was never
//!   reached, so the breaker counts it (see [`classify_error`]).
//!
//! If no rustls crypto provider is installed process-wide, `connect` installs `ring`'s
//! (redis-rs builds its TLS configuration with the process default). Note that redis-rs
//! also loads the platform roots on each (re)connect even when `ca_file` is set; they are
//! not trusted then, but an unreadable system store would fail the connect.
//!
//! ## Sentinel (`redis+sentinel://`)
//!
//! With `ConnectionConfig::sentinel` set (a `redis+sentinel://` URL sets it), `connect`
//! asks the sentinels, in order, for the master's address (`SENTINEL
//! GET-MASTER-ADDR-BY-NAME`, each sentinel bounded by `socket_connect_timeout`, with the
//! sentinel credentials of `SentinelConfig`), then connects there as above (the config's
//! credentials, `db` and TLS).
//!
//! redis-rs does not follow a failover by itself (upstream issue #1438), so the backend
//! does (private module `sentinel`): a call that fails as a failover would make it fail
//! (`Unavailable`, `Timeout`, or a `READONLY` / `MASTERDOWN` reply from a demoted master)
//! wakes a background task that asks the sentinels every 100 ms while calls keep failing
//! (at most 5 s after the last failure). When they name another master, every later call
//! goes to a fresh connection there; calls still running on the old one finish there.
//! Calls never wait for the sentinels, so each keeps its one `socket_timeout` deadline,
//! and the client is never recreated. With the core's breaker (health probe every
//! second) writes resume about one probe interval after the sentinels finished the
//! failover.
//!
//! ## Redis Cluster
//!
//! This backend talks to one server. A Redis Cluster is the core's [`ClusterBackend`]
//! over one `RedisRsBackend` per node: it routes by slot, following `MOVED`, `ASK` and
//! `TRYAGAIN`, and never resends after a failure. The `resilient-redis` crate's connect
//! builds it for a configuration with `cluster_nodes` (a `redis://h:p?cluster=h2:p2,…`
//! URL); by hand it is
//! `ClusterBackend::connect(&config, |node| async move { Ok(Arc::new(RedisRsBackend::connect(&node).await?) as Arc<dyn KvBackend>) })`.
//! redis-rs's own cluster connection is not used, because it resends a request after a
//! connection error (that is how it moves a request to a new master after a failover),
//! which could apply a write twice.

mod classify;
mod connect;
mod pubsub;
mod reply;
mod sentinel;
mod tracking;
mod translate;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Cmd, Pipeline};
#[cfg(doc)]
use resilience_core::ClusterBackend;
use resilience_core::{BackendError, Command, ConnectionConfig, ErrorKind, KvBackend, Value};
use tokio::time::Instant;

pub use classify::classify_error;

use connect::Connector;
use resilience_core::backend::ReplyShape;
use translate::translate;

/// A [`KvBackend`] on redis-rs, for one Redis server.
///
/// Cheap to clone (an `Arc` inside); clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisRsBackend {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connector,
    socket_timeout: Duration,
    socket_connect_timeout: Duration,
    address: String,
    /// Sentinel mode: follows the master through failovers.
    follower: Option<sentinel::Follower>,
    /// RESP3 client tracking, with `ConnectionConfig::client_tracking` (see `tracking`).
    tracking: Option<tracking::Tracking>,
}

impl sentinel::SwitchTarget for Inner {
    fn switch_to(&self, client: redis::Client) {
        self.conn.switch_to(client);
    }
}

impl std::fmt::Debug for RedisRsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRsBackend")
            .field("address", &self.inner.address)
            .field("socket_timeout", &self.inner.socket_timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) enum Request<'a> {
    One(&'a Cmd),
    Batch(&'a Pipeline),
}

impl RedisRsBackend {
    /// Connects to one server (host, port, db, username and password from `config`).
    ///
    /// Fails with `Unavailable` (refused, DNS, a TLS handshake that failed: see the crate
    /// docs on TLS), `Timeout` (no handshake within `socket_connect_timeout`), `Auth`
    /// (wrong credentials) or `InvalidInput` (unreadable TLS files; a configuration with
    /// `cluster_nodes`, which is a cluster's: see the crate docs, "Redis Cluster").
    ///
    /// In sentinel mode (`config.sentinel` set) it first asks the sentinels for the master
    /// (each bounded by `socket_connect_timeout`; `Unavailable` when none gives an address,
    /// `Auth` when they refuse the sentinel credentials), connects there, and from then on
    /// follows the master through failovers (see the crate docs, "Sentinel").
    ///
    /// # Errors
    ///
    /// As above: `Unavailable`, `Timeout`, `Auth` or `InvalidInput`, never a panic.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes closes whatever connection it opened.
    pub async fn connect(config: &ConnectionConfig) -> Result<Self, BackendError> {
        if let Some(sentinel) = &config.sentinel {
            return Self::connect_sentinel(config, sentinel).await;
        }
        let client = connect::client_for(config)?;
        let tracking = config.client_tracking.then(tracking::Tracking::new);
        let mut manager_config = connect::manager_config(config);
        if let Some(tracking) = &tracking {
            manager_config = manager_config.set_push_sender(tracking.push_sender());
        }
        let manager =
            Self::first_manager(&client, &manager_config, config, config.address()).await?;
        let mut connector = Connector::new(client, manager_config, manager);
        if let Some(tracking) = &tracking {
            connector = connector.with_renew_hook(tracking.renew_hook());
        }
        let backend = RedisRsBackend {
            inner: Arc::new(Inner {
                conn: connector,
                socket_timeout: config.socket_timeout,
                socket_connect_timeout: config.socket_connect_timeout,
                address: config.address(),
                follower: None,
                tracking,
            }),
        };
        tracking::start(&backend).await?;
        Ok(backend)
    }

    async fn connect_sentinel(
        config: &ConnectionConfig,
        sentinel: &resilience_core::SentinelConfig,
    ) -> Result<Self, BackendError> {
        let sentinels = sentinel::Sentinels::new(config, sentinel)?;
        let master = sentinels.master().await?;
        let client = sentinel::master_client(config, &master)?;
        let manager_config = connect::manager_config(config);
        let address = format!("{}:{}", master.0, master.1);
        let manager = Self::first_manager(&client, &manager_config, config, address).await?;
        let follower_config = config.clone();
        let inner = Arc::new_cyclic(|weak| Inner {
            conn: Connector::new(client, manager_config, manager),
            socket_timeout: config.socket_timeout,
            socket_connect_timeout: config.socket_connect_timeout,
            address: format!("the master of {:?}", sentinel.master_name),
            follower: Some(sentinel::Follower::spawn(
                sentinels,
                follower_config,
                master,
                weak.clone(),
            )),
            // Client tracking is not wired through sentinel failovers: a cache over this
            // backend stays off (see `resilience_core::CacheConfig`).
            tracking: None,
        });
        Ok(RedisRsBackend { inner })
    }

    /// Connects the first manager, bounded by `socket_connect_timeout`.
    async fn first_manager(
        client: &redis::Client,
        manager_config: &redis::aio::ConnectionManagerConfig,
        config: &ConnectionConfig,
        address: String,
    ) -> Result<ConnectionManager, BackendError> {
        let connecting = ConnectionManager::new_with_config(client.clone(), manager_config.clone());
        match tokio::time::timeout(config.socket_connect_timeout, connecting).await {
            Ok(Ok(manager)) => Ok(manager),
            Ok(Err(e)) => Err(classify_error(&e).at_connect()),
            Err(_) => Err(BackendError::timeout(format!(
                "redis-rs: no connection to {address} within {:?}",
                config.socket_connect_timeout
            ))),
        }
    }

    /// Tells the sentinel follower, if any, how a call ended.
    #[inline]
    fn report(&self, outcome: Result<(), &BackendError>) {
        if let Some(follower) = &self.inner.follower {
            match outcome {
                Ok(()) => follower.healthy(),
                Err(e) => follower.suspect(e),
            }
        }
    }

    /// Sends one request under the `socket_timeout` deadline. See the `connect` module docs
    /// for the one case that is sent twice (a refused connect: the command was never sent).
    ///
    /// The deadline is the only timer of a call: the driver has no response timeout of
    /// its own (see `connect::manager_config`), since this one also covers waiting for a
    /// reconnect, which the driver's would not.
    /// A blocking command (`BLPOP`, `XREAD BLOCK`) on a connection of its own, opened for
    /// it and closed after: the server holds its reply, and on the shared multiplexed
    /// connection every other call would wait behind it. Its deadline is the block time
    /// plus `socket_timeout` (a block of 0, forever, has no deadline).
    async fn execute_blocking(
        &self,
        cmd: &Command,
        block: Duration,
    ) -> Result<Value, BackendError> {
        let connector = &self.inner.conn;
        let (redis_cmd, shape) = translate(cmd)?;
        let client = connector.client();
        // No driver response timeout (its default would cut the block short): the
        // deadline below is the only one.
        let own = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.socket_connect_timeout))
            .set_response_timeout(None);
        let connect = client.get_multiplexed_async_connection_with_config(&own);
        let mut conn = match tokio::time::timeout(self.inner.socket_connect_timeout, connect).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(classify_error(&e).at_connect()),
            Err(_) => {
                return Err(BackendError::unavailable(format!(
                    "redis-rs: no connection to {} for {} within {:?}",
                    self.inner.address,
                    cmd.name(),
                    self.inner.socket_connect_timeout
                )));
            }
        };
        let call = async {
            conn.send_packed_command(&redis_cmd)
                .await
                .and_then(redis::Value::extract_error)
        };
        let reply = if block.is_zero() {
            call.await
        } else {
            match tokio::time::timeout(block + self.inner.socket_timeout, call).await {
                Ok(reply) => reply,
                Err(_) => {
                    return Err(BackendError::timeout(format!(
                        "redis-rs: no reply to {} within its block time {block:?} plus {:?}",
                        cmd.name(),
                        self.inner.socket_timeout
                    )));
                }
            }
        };
        match reply {
            Ok(raw) => shape.canonicalize(reply::convert(raw)?),
            Err(e) => Err(classify_error(&e)),
        }
    }

    async fn send(&self, request: Request<'_>) -> Result<redis::Value, BackendError> {
        let deadline = Instant::now() + self.inner.socket_timeout;
        let connector = &self.inner.conn;
        let mut may_retry_unsent = true;
        loop {
            let lease = connector.current();
            let generation = lease.generation;
            let mut conn = lease.manager;
            let attempt = std::pin::pin!(async {
                match request {
                    // Straight to the manager: `Cmd::query_async` would box the future.
                    Request::One(cmd) => conn
                        .send_packed_command(cmd)
                        .await
                        .and_then(redis::Value::extract_error),
                    Request::Batch(pipe) => pipe.query_async::<redis::Value>(&mut conn).await,
                }
            });
            let mut handed = HandedOver::new(attempt);
            let outcome = tokio::time::timeout_at(deadline, &mut handed).await;
            let waited = handed.waited();
            match outcome {
                Ok(Ok(value)) => {
                    connector.mark_answered(generation);
                    self.report(Ok(()));
                    return Ok(value);
                }
                Ok(Err(e)) => {
                    let unsent = !waited && e.is_connection_dropped() && !e.is_connection_refusal();
                    // Refused means the connect failed, and a lost connection reported
                    // before the call ever waited means the connection's task had already
                    // ended (see `HandedOver`): either way the command was never sent, so
                    // one more try, on the reconnect this failure just started, cannot
                    // apply it twice. It avoids failing on a stale cached connect error,
                    // and on a connection that died while idle when the server is back.
                    if may_retry_unsent && (e.is_connection_refusal() || unsent) {
                        may_retry_unsent = false;
                        continue;
                    }
                    if classify::is_server_reply(&e) {
                        // An error reply is still an answer: the connection works.
                        connector.mark_answered(generation);
                    } else if e.is_timeout() && !connector.has_answered(generation) {
                        // A connect attempt that timed out: the manager reconnects itself.
                    } else if classify::needs_fresh_connection(&e) {
                        connector.renew(generation);
                    }
                    let error = if unsent {
                        BackendError::unavailable(format!(
                            "redis-rs: not sent: the connection to {} had closed before the command was handed to it ({e})",
                            self.inner.address
                        ))
                        .with_source(e)
                    } else {
                        classify_error(&e)
                    };
                    self.report(Err(&error));
                    return Err(error);
                }
                Err(_) => {
                    if connector.has_answered(generation) {
                        connector.renew(generation);
                    }
                    let error = BackendError::timeout(format!(
                        "redis-rs: no reply from {} within {:?}",
                        self.inner.address, self.inner.socket_timeout
                    ));
                    self.report(Err(&error));
                    return Err(error);
                }
            }
        }
    }
}

/// A call's future that remembers whether it ever waited (returned `Pending`).
///
/// redis-rs reports a connection that is gone with the same error (`broken pipe`) whether
/// the command was in flight on it (it may have run) or was handed to a connection whose
/// task had already ended (it was never written). The two differ in one observable way:
/// handing a command to an ended connection task fails at once, on the call's first poll,
/// since the task's channel is closed; a command accepted by a live task waits for its
/// reply, so its call returns `Pending` at least once before any failure. So a
/// lost-connection error from a call that never waited means "not sent". The one case
/// read conservatively the other way: a call that waited for a reconnect and was then
/// handed to a connection that had died in between is reported as `Timeout`.
struct HandedOver<F> {
    inner: F,
    waited: bool,
}

impl<F> HandedOver<F> {
    fn new(inner: F) -> Self {
        HandedOver {
            inner,
            waited: false,
        }
    }

    /// Whether the future returned `Pending` at least once.
    fn waited(&self) -> bool {
        self.waited
    }
}

impl<F: std::future::Future + Unpin> std::future::Future for HandedOver<F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let poll = std::pin::Pin::new(&mut self.inner).poll(cx);
        if poll.is_pending() {
            self.waited = true;
        }
        poll
    }
}

#[async_trait]
impl KvBackend for RedisRsBackend {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        if let Some(block) = cmd.blocks_for() {
            // Boxed: its connect and wait would otherwise make every call's future larger.
            return Box::pin(self.execute_blocking(&cmd, block)).await;
        }
        let (redis_cmd, shape) = translate(&cmd)?;
        let raw = self.send(Request::One(&redis_cmd)).await?;
        shape.canonicalize(reply::convert(raw)?)
    }

    async fn open_pubsub(
        &self,
        subscriptions: &[resilience_core::Subscription],
    ) -> Result<Box<dyn resilience_core::PubSubLink>, BackendError> {
        let connector = &self.inner.conn;
        let link = pubsub::open(
            &connector.client(),
            subscriptions,
            self.inner.socket_connect_timeout,
            self.inner.socket_timeout,
        )
        .await?;
        Ok(Box::new(link))
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        resilience_core::backend::check_batch(&cmds, atomic)?;
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        let mut shapes: Vec<ReplyShape> = Vec::with_capacity(cmds.len());
        for cmd in &cmds {
            let (redis_cmd, shape) = translate(cmd)?;
            pipe.add_command(redis_cmd);
            shapes.push(shape);
        }
        let raw = self.send(Request::Batch(&pipe)).await?;
        let items = match reply::convert(raw)? {
            Value::Array(items) => items,
            // EXEC answers nil when a WATCHed key changed; this backend sends no WATCH, so
            // a nil means the transaction did not run.
            Value::Nil => {
                return Err(BackendError::new(
                    ErrorKind::Server,
                    "EXECABORT transaction was not executed",
                )
                .with_code("EXECABORT"));
            }
            other => {
                return Err(BackendError::new(
                    ErrorKind::Server,
                    format!(
                        "unexpected reply: expected one reply per command, got {}",
                        other.kind_name()
                    ),
                ));
            }
        };
        if items.len() != shapes.len() {
            return Err(BackendError::new(
                ErrorKind::Server,
                format!(
                    "unexpected reply: expected {} replies, got {}",
                    shapes.len(),
                    items.len()
                ),
            ));
        }
        items
            .into_iter()
            .zip(shapes)
            .map(|(item, shape)| shape.canonicalize(item))
            .collect()
    }

    fn name(&self) -> &'static str {
        "redis-rs"
    }

    fn is_networked(&self) -> bool {
        true
    }

    fn invalidations(&self) -> Option<resilience_core::backend::InvalidationFeed> {
        tracking::invalidations(self)
    }

    async fn execute_tracked(
        &self,
        cmd: Command,
    ) -> Result<resilience_core::backend::TrackedReply, BackendError> {
        tracking::execute_tracked(self, cmd).await
    }
}
