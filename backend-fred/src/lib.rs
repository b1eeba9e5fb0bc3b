//! # backend-fred
//!
//! [`FredBackend`]: the [`KvBackend`] trait on the [`fred`] crate (10.x), for one Redis
//! server. It only translates and classifies; breaker, retries and queueing live in
//! `resilience-core`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), resilience_core::BackendError> {
//! use backend_fred::FredBackend;
//! use resilience_core::{Command, ConnectionConfig, KvBackend};
//!
//! let config = ConnectionConfig::from_url("redis://127.0.0.1:6380/0")
//!     .map_err(|e| resilience_core::BackendError::new(
//!         resilience_core::ErrorKind::InvalidInput, e.to_string()))?;
//! let backend = FredBackend::connect(&config).await?;
//! let pong = backend.execute(Command::Ping).await?;
//! # Ok(()) }
//! ```
//!
//! ## How a command travels
//!
//! - `translate`: each `Command` becomes one fred `CustomCommand` with
//!   its arguments, sent with `custom_raw` (single commands) or queued on a fred pipeline /
//!   `MULTI` transaction (batches). The two hot commands, a single `GET` and `SET`, use
//!   fred's typed `get` / `set` instead (same bytes on the wire; fred encodes a custom
//!   command with two more allocations).
//! - `reply`: the reply frame becomes a core `Value`, then the command's
//!   canonical shape (RESP2 flat arrays to maps and `[member, score]` pairs, scores to
//!   `Double`). The connection speaks RESP2; with `ConnectionConfig::client_tracking` it
//!   speaks RESP3 and has `CLIENT TRACKING ON OPTIN` for the core's client-side cache
//!   (private `tracking` module), re-enabled after every reconnect.
//! - `classify` ([`classify_error`]): fred errors become `BackendError`s; server replies are
//!   classified by their code with `BackendError::from_reply`, like the redis-rs backend.
//!
//! ## What a batch costs on fred 10.1
//!
//! fred flushes its socket after every command it does not know (`CommandKind::_Custom`
//! is in its `should_flush`), and every command of a pipeline or `MULTI` goes through
//! its router one at a time, each flushed while no other call is queued behind it
//! (fred's own transactions flush each command as well). So each command of a batch is
//! its own write to the socket, and often its own read for the server: a batch costs
//! the server more on fred than on redis-rs, which writes a batch at once. fred's public
//! interface has no way around it (the typed methods flush alike inside a pipeline, and
//! its protocol module is private). It takes a change in fred: leave custom commands out
//! of `should_flush`, and flush a pipeline and a transaction once, after their last
//! command. Concurrent single `GET`s and `SET`s do coalesce: they use fred's typed
//! interface.
//!
//! ## Outages, timeouts and retries
//!
//! fred's defaults would hide an outage from the core (no command timeout, replaying
//! buffered commands after a reconnect). The settings in the `connect` module make
//! sure that:
//! - every call ends within `socket_timeout` (fred's per-command timeout, which wraps the
//!   whole wait from handing the command to fred to its reply; a batch is one pipeline,
//!   which fred bounds by its `default_command_timeout`, set to `socket_timeout`), with
//!   `Timeout` when the server does not answer, including one that accepted the
//!   connection and went silent. That is the only timer of a call: the backend adds none;
//! - a call made after the connection was seen closed, or while fred reconnects, fails at
//!   once with `Unavailable` and is never handed to fred: the backend keeps its own account
//!   of the connection from fred's error and reconnect events (private module
//!   `link_state`), because fred's own state still says "connected" until its first
//!   reconnect attempt, and a command handed to fred then would wait out `socket_timeout`
//!   and end as a `Timeout` although it was never written. fred's per-command `fail_fast`
//!   covers the rest of the reconnect. Commands written before the connection was lost
//!   fail with `Timeout` (they may have run) as soon as fred sees it closed, and so do
//!   commands handed to fred in the moment before the backend heard of the loss: those
//!   wait in fred's queue behind the reconnect, so each waiting call is ended when the
//!   loss is heard (private module `link_watch`) instead of at `socket_timeout`; one still
//!   queued is sent after the reconnect, which `Timeout`'s "it may have run" allows;
//! - fred sends each command at most once (`max_command_attempts = 1`), so a non-idempotent
//!   write is never applied twice by the driver: the core alone decides what to retry;
//! - a connection whose replies stop for `socket_timeout` is closed and rebuilt
//!   (`unresponsive` check), so a timed-out connection does not stay wedged; calls made
//!   while it is being rebuilt fail with `Unavailable` (they were never sent);
//! - fred reconnects in the background forever, 20 ms to 200 ms apart, so commands succeed
//!   again well within a second of the server coming back.
//!
//! ## Batches
//!
//! A non-atomic batch is one fred pipeline (one round trip). An atomic one is the same
//! pipeline wrapped in `MULTI` ... `EXEC`, built by hand: fred's own `multi()` runs inside
//! its router task, reads the replies with no timeout (a hung server would wedge every
//! other command) and re-sends the whole transaction once after a connection error, which
//! could apply it twice. A fred pipeline is written to the one connection in one go, so
//! nothing interleaves between `MULTI` and `EXEC`, and with one attempt per command
//! (`max_command_attempts = 1`, `fail_fast`) no part of it is ever re-sent.
//!
//! An error reply to any command (queued or inside `EXEC`) fails the whole call with that
//! error. fred's pipeline results do not tell a status reply from a bulk string; the typed
//! commands do not care (their shapes are fixed), and for `Command::Raw` inside a batch a
//! string `"OK"` is taken as the status `OK` and any other string as `Bytes`.
//!
//! ## TLS (`rediss://`)
//!
//! With `ConnectionConfig::tls` set (a `rediss://` URL sets it) fred connects with rustls
//! (feature `enable-rustls-ring`), configured from the shared `TlsConfig`:
//!
//! - `ca_file: None` trusts the platform's roots (`rustls-native-certs`, as fred's
//!   `TlsConnector::default_rustls` does); `Some(path)` trusts exactly that PEM file.
//! - `client_cert_file` and `client_key_file` (both or neither) add a client certificate,
//!   for servers with `tls-auth-clients yes`.
//! - `insecure: true` skips certificate verification. **Only for tests**: anyone on the
//!   path can read and change the traffic.
//! - The files are read when the client is built, in `connect`: a missing, unreadable or
//!   non-PEM file is `InvalidInput`, naming the file.
//! - A certificate the client does not trust (wrong CA, wrong name), a client certificate
//!   the server requires but did not get, and any other TLS alert fail at once with
//!   `Unavailable` and a message starting `TLS handshake failed`: the server was never
//!   reached, so the breaker counts it (see [`classify_error`]).
//!
//! ## Sentinel (`redis+sentinel://`)
//!
//! With `ConnectionConfig::sentinel` set, fred connects through the sentinels (its
//! `ServerConfig::Sentinel`, sentinel credentials from `SentinelConfig` with fred feature
//! `sentinel-auth`). fred asks the sentinels again on every reconnect, so after a
//! failover its reconnect loop (20 ms to 200 ms apart) reaches the new master as soon as
//! the sentinels name it, with the same client; a `READONLY` or `MASTERDOWN` reply from a
//! demoted master makes it reconnect through the sentinels too. See the private
//! `sentinel` module.
//!
//! ## Refused credentials
//!
//! When the server starts refusing the client's credentials (a password changed on the
//! server), fred keeps reconnecting and every command fails fast as "not connected". Those
//! failures are reported as `Auth`, not `Unavailable`, while the last reconnect was refused
//! for its credentials (private module `link_state`), so the breaker, which does not count
//! `Auth`, stays closed in front of a server that is up. The first call or two after the
//! connection is lost, before the refusal is known, fail as a lost connection.
//!
//! ## Redis Cluster
//!
//! This backend talks to one server. A Redis Cluster is the core's [`ClusterBackend`]
//! over one `FredBackend` per node: it routes by slot, following `MOVED`, `ASK` and
//! `TRYAGAIN`, never resending after a failure; a dead master only fails the commands for
//! its own slots. The `resilient-redis` crate's connect builds it for a configuration with
//! `cluster_nodes` (a `redis://h:p?cluster=h2:p2,…` URL).
//!
//! Why not fred's own clustered client: fred 10 reconnects a clustered client as a whole.
//! Losing one node's connection starts a full re-sync (`CLUSTER SLOTS`, then connect to
//! every master), and until it succeeds the client is not `Connected`, so every command
//! fails, whatever its slot; while a dead master is still listed as the owner of its slots
//! (until its replica is promoted) the re-sync keeps failing. One dead shard would stop
//! them all. It also follows `MOVED` with a second write attempt, so it may resend a
//! command after a connection drop. Each node's client is an ordinary single-server one,
//! configured as above (one attempt, `fail_fast`, timeouts, background reconnects).

mod classify;
mod connect;
mod link_state;
mod link_watch;
mod pubsub;
mod reply;
mod sentinel;
mod tls;
mod tracking;
mod translate;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::WithOptions;
use fred::prelude::{Client, ClientLike, KeysInterface};
use fred::types::Value as FredValue;
use fred::types::config::Options;
use fred::types::{Expiration, SetOptions};
use futures::FutureExt;
#[cfg(doc)]
use resilience_core::ClusterBackend;
use resilience_core::{
    BackendError, Command, ConnectionConfig, ErrorKind, KvBackend, SetCondition, Value,
};

pub use classify::classify_error;

use resilience_core::backend::ReplyShape;

struct Inner {
    client: Client,
    /// The client with the per-command [`Options`] applied, built once at connect: every
    /// single command is sent through it.
    commands: WithOptions<Client>,
    options: Options,
    socket_timeout: Duration,
    task: fred::types::ConnectHandle,
    error_log: tokio::task::JoinHandle<()>,
    /// Whether the connection is down, and whether the credentials are being refused
    /// (see `link_state`).
    link: Arc<link_state::LinkState>,
    /// `host:port` of the server, for errors.
    address: String,
    /// The configuration connected with: blocking commands open their own connection.
    config: ConnectionConfig,
    /// RESP3 client tracking, with `ConnectionConfig::client_tracking` (see `tracking`).
    tracking: Option<tracking::Tracking>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop fred's routing and reconnection task with the last handle.
        self.task.abort();
        self.error_log.abort();
    }
}

/// A [`KvBackend`] on one fred client (a single multiplexed connection).
///
/// Cheap to clone (an `Arc` inside); `Send + Sync`. Dropping the last clone closes the
/// connection and stops reconnecting.
#[derive(Clone)]
pub struct FredBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FredBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FredBackend")
            .field("client", &self.inner.client.id())
            .field("socket_timeout", &self.inner.socket_timeout)
            .finish()
    }
}

impl FredBackend {
    /// Connects to one server and checks it answers a `PING`.
    ///
    /// Fails with `Unavailable` (refused, DNS, a failed TLS handshake: see the crate docs on
    /// TLS), `Timeout` (no TCP connection or no answer within `socket_connect_timeout`),
    /// `Auth` (bad or missing password) or `InvalidInput` (unreadable TLS files, database
    /// index over 255, a configuration with `cluster_nodes`, which is a cluster's: see the
    /// crate docs, "Redis Cluster"). In sentinel mode it connects to the master the
    /// sentinels name (see the crate docs, "Sentinel").
    ///
    /// # Errors
    ///
    /// As above: `Unavailable`, `Timeout`, `Auth` or `InvalidInput`, never a panic.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes closes whatever connection it opened.
    pub async fn connect(config: &ConnectionConfig) -> Result<Self, BackendError> {
        let client = connect::build_client(config)?;
        let task = connect::init(&client, config).await?;
        let link = Arc::new(link_state::LinkState::default());
        let error_log = connect::spawn_error_log(&client, Arc::clone(&link));
        let options = connect::command_options(config);
        let backend = FredBackend {
            inner: Arc::new(Inner {
                commands: client.with_options(&options),
                client,
                options,
                socket_timeout: config.socket_timeout.max(Duration::from_millis(1)),
                task,
                error_log,
                link,
                config: config.clone(),
                address: match &config.sentinel {
                    Some(sentinel) => format!("the master of {:?}", sentinel.master_name),
                    None => config.address(),
                },
                tracking: config.client_tracking.then(tracking::Tracking::new),
            }),
        };
        if let Err(e) = tracking::start(&backend).await {
            connect::stop(backend.client()).await;
            return Err(e);
        }
        Ok(backend)
    }

    /// A blocking command (`BLPOP`, `XREAD BLOCK`) on a client of its own, connected for
    /// it and closed after: the server holds its reply, and on the shared connection every
    /// other call would wait behind it. Its deadline is the block time plus
    /// `socket_timeout` (a block of 0, forever, has none to speak of).
    async fn execute_blocking(&self, cmd: Command, block: Duration) -> Result<Value, BackendError> {
        /// What "no deadline" becomes: fred takes no unbounded timeout.
        const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
        let shape = ReplyShape::of(&cmd);
        let wire = translate::translate(&cmd)?;
        let patience = if block.is_zero() {
            FOREVER
        } else {
            block + self.inner.socket_timeout
        };
        let config = self.inner.config.clone().with_socket_timeout(patience);
        let client = connect::build_client(&config)?;
        let task = connect::init(&client, &config).await?;
        let options = Options {
            timeout: Some(patience),
            ..connect::command_options(&config)
        };
        let reply = client
            .with_options(&options)
            .custom_raw::<FredValue>(wire.cmd, wire.args)
            .await;
        connect::stop(&client).await;
        task.abort();
        match reply {
            Ok(frame) => shape.canonicalize(reply::frame_to_value(frame)?),
            Err(e) => Err(classify_error(&e)),
        }
    }

    /// The underlying fred client, for commands outside [`Command`] (use with care: it is
    /// configured as described in the crate docs).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The per-command options this backend sends every command with (one attempt, no
    /// redirections, `socket_timeout`, fail fast while disconnected: see the crate docs).
    /// Commands sent through [`client`](Self::client) directly should use them too
    /// (`client().with_options(backend.command_options())`) to behave the same.
    pub fn command_options(&self) -> &Options {
        &self.inner.options
    }

    /// Awaits a fred call and classifies its error. No timer: fred's own timeout
    /// (`socket_timeout`, see the crate docs) bounds it.
    async fn classified<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, fred::error::Error>>,
    ) -> Result<T, BackendError> {
        fut.await
            .map_err(|e| self.inner.link.explain(classify_error(&e)))
    }
}

/// Queues one command on a fred pipeline (in memory; resolves at once).
async fn queue(
    pipeline: &fred::clients::WithOptions<fred::clients::Pipeline<Client>>,
    wire: translate::Wire,
) -> Result<(), BackendError> {
    pipeline
        .custom::<(), FredValue>(wire.cmd, wire.args)
        .await
        .map_err(|e| classify_error(&e))
}

/// The canonical value of a typed fred reply (a decoded [`FredValue`], not a frame).
///
/// `ok_is_status`: the command's only string reply is the status `OK` (a `SET`, which
/// `Command::Set` never sends with `GET`), so fred's `"OK"` string is taken as that status
/// instead of bytes.
fn typed_reply(
    inner: &Inner,
    shape: ReplyShape,
    reply: Result<FredValue, fred::error::Error>,
    ok_is_status: bool,
) -> Result<Value, BackendError> {
    match reply {
        Ok(v) => shape.canonicalize(reply::fred_to_value(v, ok_is_status)),
        Err(e) => Err(inner.link.explain(classify_error(&e))),
    }
}

/// Picks the `EXEC` reply out of `[OK, QUEUED x n, EXEC]`.
fn exec_reply(value: FredValue, n: usize) -> Result<FredValue, BackendError> {
    let unexpected = |what: &str| {
        BackendError::new(
            ErrorKind::Server,
            format!("unexpected MULTI/EXEC reply: {what}"),
        )
    };
    match value {
        FredValue::Array(mut items) if items.len() == n + 2 => match items.pop() {
            Some(FredValue::Null) => Err(unexpected("transaction aborted (nil EXEC)")),
            Some(exec) => Ok(exec),
            None => Err(unexpected("empty")),
        },
        FredValue::Array(items) => Err(unexpected(&format!(
            "{} replies for {} commands",
            items.len(),
            n + 2
        ))),
        other => Err(unexpected(&format!("{:?}", other.kind()))),
    }
}

/// Converts a batch's results to canonical values, failing on the first error.
fn batch_results(shapes: &[ReplyShape], value: FredValue) -> Result<Vec<Value>, BackendError> {
    let items = match value {
        FredValue::Array(items) => items,
        other if shapes.len() == 1 => vec![other],
        other => {
            return Err(BackendError::new(
                ErrorKind::Server,
                format!("unexpected batch reply: {:?}", other.kind()),
            ));
        }
    };
    if items.len() != shapes.len() {
        return Err(BackendError::new(
            ErrorKind::Server,
            format!(
                "batch of {} commands got {} replies",
                shapes.len(),
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .zip(shapes)
        .map(|(v, shape)| shape.canonicalize(reply::fred_to_value(v, shape.is_raw())))
        .collect()
}

/// Boxes the future `build` returns, allocating the box first.
///
/// fred's command futures are large (a `get` or `set` is about 6.8 KB). `Box::pin(fut)`
/// builds the future on the stack and then copies all of it into the box; with the box
/// allocated first and the future written into it, the compiler builds the future in place
/// (callgrind, fred backend alone at c=16: 15,513 → 14,840 instructions per operation, the
/// one `memcpy` per call gone). Both are safe code; only the order differs.
#[inline(always)]
fn built_in_box<'a, F>(
    build: impl FnOnce() -> F,
) -> Pin<Box<dyn Future<Output = Result<Value, BackendError>> + Send + 'a>>
where
    F: Future<Output = Result<Value, BackendError>> + Send + 'a,
{
    let slot = Box::<F>::new_uninit();
    let boxed: Box<F> = Box::write(slot, build());
    Box::into_pin(boxed)
}

/// `SET`'s TTL option as fred's typed `set` takes it: `Some(None)` for none, `None` for a
/// combination Redis refuses (sent as written, so the server says why).
fn fred_expiration(options: &resilience_core::SetOptions) -> Option<Option<Expiration>> {
    let clamp = |ms: u64| ms.min(i64::MAX as u64) as i64;
    match (options.expire_ms, options.expire_at_ms, options.keep_ttl) {
        (None, None, false) => Some(None),
        (Some(ms), None, false) => Some(Some(Expiration::PX(clamp(ms.get())))),
        (None, Some(at), false) => Some(Some(Expiration::PXAT(clamp(at.get())))),
        (None, None, true) => Some(Some(Expiration::KEEPTTL)),
        _ => None,
    }
}

#[async_trait]
impl KvBackend for FredBackend {
    // Written out instead of `async fn` so that the one box `async_trait` needs holds the
    // fred future itself (several KB) plus a small `map`: an `async` body would be a
    // second, larger state machine around it, built on the stack and copied on each call.
    //
    // No timer of our own: fred's per-command timeout (`Options::timeout` =
    // `socket_timeout`, set on `commands`) wraps the whole wait, from handing the command
    // to fred's router (a non-blocking `try_send`) to the reply, reconnects included; with
    // `fail_fast` a command made while disconnected fails at once. A second timer per
    // command would add nothing but CPU.
    fn execute<'life0, 'async_trait>(
        &'life0 self,
        cmd: Command,
    ) -> Pin<Box<dyn Future<Output = Result<Value, BackendError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        if let Some(block) = cmd.blocks_for() {
            return Box::pin(self.execute_blocking(cmd, block));
        }
        let inner: &Inner = &self.inner;
        if let Some(refused) = inner.link.refuse_while_down(&inner.address) {
            return Box::pin(std::future::ready(Err(refused)));
        }
        let shape = ReplyShape::of(&cmd);
        // GET and SET, the hot commands, go through fred's typed interface, which sends the
        // same command (the conformance suite checks both paths alike): through
        // `custom_raw`, fred splits and copies the command's name, allocates per argument
        // and flushes more often, which callgrind counted at 11 % more instructions per
        // operation (scripts/overhead.sh, fred backend, c=16: 17,278 against 15,535).
        // Every other command is sent as `Command::write_args` spells it.
        let cmd = match cmd {
            Command::Get { key } => {
                return built_in_box(|| {
                    inner
                        .link
                        .pending
                        .watch(inner.commands.get::<FredValue, _>(key))
                        .map(move |reply| typed_reply(inner, shape, reply, false))
                });
            }
            Command::Set {
                key,
                value,
                options,
            } => match fred_expiration(&options) {
                Some(expire) => {
                    let condition = options.condition.map(|c| match c {
                        SetCondition::IfNotExists => SetOptions::NX,
                        SetCondition::IfExists => SetOptions::XX,
                    });
                    return built_in_box(|| {
                        inner
                            .link
                            .pending
                            .watch(inner.commands.set::<FredValue, _, _>(
                                key,
                                value,
                                expire,
                                condition,
                                options.get,
                            ))
                            .map(move |reply| typed_reply(inner, shape, reply, !options.get))
                    });
                }
                // A TTL combination Redis refuses: sent as written, so the server says why.
                None => Command::Set {
                    key,
                    value,
                    options,
                },
            },
            other => other,
        };
        let wire = match translate::translate(&cmd) {
            Ok(wire) => wire,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        built_in_box(|| {
            inner
                .link
                .pending
                .watch(inner.commands.custom_raw::<FredValue>(wire.cmd, wire.args))
                .map(move |reply| match reply {
                    Ok(frame) => shape.canonicalize(reply::frame_to_value(frame)?),
                    Err(e) => Err(inner.link.explain(classify_error(&e))),
                })
        })
    }

    async fn open_pubsub(
        &self,
        subscriptions: &[resilience_core::Subscription],
    ) -> Result<Box<dyn resilience_core::PubSubLink>, BackendError> {
        Ok(Box::new(
            pubsub::open(&self.inner.config, subscriptions).await?,
        ))
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
        if let Some(refused) = self.inner.link.refuse_while_down(&self.inner.address) {
            return Err(refused);
        }
        let shapes: Vec<ReplyShape> = cmds.iter().map(ReplyShape::of).collect();
        let wires = cmds
            .iter()
            .map(translate::translate)
            .collect::<Result<Vec<_>, _>>()?;
        let pipeline = self.inner.client.pipeline();
        let queued = pipeline.with_options(&self.inner.options);
        let n = wires.len();
        if atomic {
            queue(&queued, translate::multi()).await?;
        }
        for w in wires {
            queue(&queued, w).await?;
        }
        if atomic {
            queue(&queued, translate::exec()).await?;
        }
        let value = self
            .classified(self.inner.link.pending.watch(pipeline.all::<FredValue>()))
            .await?;
        let value = if atomic { exec_reply(value, n)? } else { value };
        batch_results(&shapes, value)
    }

    fn name(&self) -> &'static str {
        "fred"
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
