//! A TCP proxy that passes, delays, blackholes or resets connections.
//!
//! Put a [`FaultProxy`] between a client and a server to test what the client does when the
//! network misbehaves: a slow link ([`ProxyMode::Latency`]), a partition or a hung server
//! ([`ProxyMode::Blackhole`]: connections are accepted but nothing is ever answered), a
//! server that drops every connection ([`ProxyMode::Reset`]), or replies lost in flight
//! ([`ProxyMode::HoldReplies`]: the server applies the command, its answer is held).
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::proxy::{FaultProxy, ProxyMode};
//! use testkit::server::RedisServer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = RedisServer::spawn().await?;
//! let proxy = FaultProxy::start(server.addr()).await?;
//! // Point the client under test at `proxy.url()` instead of `server.url()`...
//! proxy.set_mode(ProxyMode::Blackhole); // ...and watch its timeouts and breaker.
//! proxy.set_mode(ProxyMode::Pass); // the partition heals
//! proxy.reset_all(); // every open connection is reset once; new ones pass
//! # Ok(())
//! # }
//! ```
//!
//! A mode change applies at once to connections already open, not only to new ones. Each
//! accepted connection opens its own connection upstream (lazily: not while blackholed)
//! and forwards bytes both ways in chunks; a clean close on one side is passed on as a
//! half-close, so a reply in flight is still delivered. Dropping the proxy stops its
//! listener and closes every connection it holds.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What the proxy does with the traffic it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything both ways as fast as it comes.
    #[default]
    Pass,
    /// Forward everything, each chunk this long after it was read, in either direction:
    /// a link's propagation delay (a request/reply round trip takes at least twice this).
    /// Chunks travel together: a reply of many chunks arrives the delay after it was sent,
    /// not once per chunk.
    Latency(Duration),
    /// Accept connections and keep them open, but forward nothing either way and answer
    /// nothing: a partition, or a server that hangs. Bytes already read are held and
    /// delivered when the mode changes back.
    Blackhole,
    /// Reset (TCP RST) every open connection, and each new one as soon as it is accepted.
    Reset,
    /// Forward requests to the server, but hold its replies: the server applies each
    /// command and the client hears nothing. Held replies are delivered when the mode
    /// changes back; if the server closes the connection first (it died), they are lost
    /// and the client sees its connection closed: a reply lost in flight.
    HoldReplies,
}

/// Which way a [`pump`] carries bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Client to server.
    Requests,
    /// Server to client.
    Replies,
}

impl Direction {
    /// Whether bytes read this way are held (not forwarded) in `mode`.
    fn holds(self, mode: ProxyMode) -> bool {
        self == Direction::Replies && mode == ProxyMode::HoldReplies
    }
}

/// A running fault-injecting TCP proxy on `127.0.0.1`. See the [module docs](self).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    resets: watch::Sender<u64>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Stats {
    open: AtomicUsize,
    accepted: AtomicU64,
    /// Client to server.
    requests: Flow,
    /// Server to client.
    replies: Flow,
    /// Woken whenever a byte count moves.
    moved: tokio::sync::Notify,
}

/// The bytes of one direction, over every connection.
#[derive(Debug, Default)]
struct Flow {
    /// Read from the sending side (held or forwarded).
    read: AtomicU64,
    /// Written to the receiving side.
    forwarded: AtomicU64,
}

/// How many bytes the proxy has carried so far, over every connection: what it read from
/// each side, and what it has forwarded to the other. A request the proxy has read but not
/// forwarded is held by it (a latency or a blackhole): the server has not seen it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Request bytes read from clients.
    pub requests_read: u64,
    /// Request bytes written to the server.
    pub requests_forwarded: u64,
    /// Reply bytes read from the server.
    pub replies_read: u64,
    /// Reply bytes written to clients.
    pub replies_forwarded: u64,
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<Stats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free port of `127.0.0.1`, in [`ProxyMode::Pass`].
    ///
    /// # Errors
    ///
    /// The I/O error of binding the listener.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it returns closes the listener it was binding; no
    /// connection was accepted yet.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream).await
    }

    /// Starts a proxy to `upstream` listening on `listen` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// The I/O error of binding the listener.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it returns closes the listener it was binding; no
    /// connection was accepted yet.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(ProxyMode::Pass);
        let (resets, resets_rx) = watch::channel(0u64);
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            mode_rx,
            resets_rx,
            Arc::clone(&stats),
        ));
        Ok(FaultProxy {
            addr,
            upstream,
            mode,
            resets,
            stats,
            task,
        })
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:port/` for [`addr`](Self::addr).
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// The address traffic is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches the mode; open connections follow it at once.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    /// Resets every connection open now, once, and leaves the mode as it is (connections
    /// made afterwards are handled normally).
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Connections open now (accepted and not yet closed or reset). A blackholed
    /// connection is not read from, so a client closing it is only noticed once the mode
    /// lets traffic through again.
    pub fn connections(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the proxy started.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// The bytes carried so far, both ways (see [`Traffic`]).
    pub fn traffic(&self) -> Traffic {
        let s = &self.stats;
        Traffic {
            requests_read: s.requests.read.load(Ordering::SeqCst),
            requests_forwarded: s.requests.forwarded.load(Ordering::SeqCst),
            replies_read: s.replies.read.load(Ordering::SeqCst),
            replies_forwarded: s.replies.forwarded.load(Ordering::SeqCst),
        }
    }

    /// Waits until the traffic satisfies `condition` (checked now and each time a count
    /// moves) and returns it, or `None` once `within` has passed. A test uses it to act at
    /// a known point of a request's way: read but held by the proxy, or forwarded to the
    /// server with its reply not yet delivered.
    ///
    /// # Errors
    ///
    /// None: the result says whether traffic was seen in time.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future only stops the wait.
    pub async fn wait_for_traffic(
        &self,
        within: Duration,
        condition: impl Fn(&Traffic) -> bool,
    ) -> Option<Traffic> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let moved = self.stats.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let now = self.traffic();
            if condition(&now) {
                return Some(now);
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                let last = self.traffic();
                return condition(&last).then_some(last);
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its listener and its JoinSet, which aborts every
        // connection task and closes their sockets.
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
    resets: watch::Receiver<u64>,
    stats: Arc<Stats>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    stats.open.fetch_add(1, Ordering::SeqCst);
                    stats.accepted.fetch_add(1, Ordering::SeqCst);
                    let guard = OpenGuard(Arc::clone(&stats));
                    let mut resets = resets.clone();
                    // Only resets requested from now on concern this connection.
                    resets.mark_unchanged();
                    tasks.spawn(connection(client, upstream, mode.clone(), resets, guard));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::debug!(error = %e, "fault proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Closes `stream` with a TCP RST instead of a FIN.
fn reset(stream: TcpStream) {
    if let Err(e) = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(error = %e, "could not set SO_LINGER 0; closing normally");
    }
    drop(stream);
}

/// Waits forever: used when the proxy's control channel is gone (the task is about to be
/// aborted anyway).
async fn forever() -> ! {
    match std::future::pending::<std::convert::Infallible>().await {}
}

/// Waits until a reset is due: the mode is `Reset`, or `reset_all` was called.
async fn reset_requested(mode: &mut watch::Receiver<ProxyMode>, resets: &mut watch::Receiver<u64>) {
    loop {
        if *mode.borrow_and_update() == ProxyMode::Reset {
            return;
        }
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { forever().await },
            changed = resets.changed() => match changed {
                Ok(()) => return,
                Err(_) => forever().await,
            },
        }
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<ProxyMode>,
    mut resets: watch::Receiver<u64>,
    open: OpenGuard,
) {
    // Connect upstream only once the mode lets traffic through.
    let upstream = loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Reset => return reset(client),
            ProxyMode::Blackhole => {
                tokio::select! {
                    changed = mode.changed() => if changed.is_err() { forever().await },
                    changed = resets.changed() => match changed {
                        Ok(()) => return reset(client),
                        Err(_) => forever().await,
                    },
                }
            }
            ProxyMode::Pass | ProxyMode::Latency(_) | ProxyMode::HoldReplies => {
                tokio::select! {
                    connected = TcpStream::connect(upstream) => match connected {
                        Ok(stream) => break stream,
                        // Upstream down: the client sees its connection closed.
                        Err(_) => return,
                    },
                    () = reset_requested(&mut mode, &mut resets) => return reset(client),
                }
            }
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let mut client = client;
    let mut upstream = upstream;
    let must_reset = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let (to_upstream, to_client) = (mode.clone(), mode.clone());
        let stats = &open.0;
        let both_ways = async move {
            tokio::try_join!(
                pump(
                    client_read,
                    upstream_write,
                    to_upstream,
                    stats,
                    Direction::Requests
                ),
                pump(
                    upstream_read,
                    client_write,
                    to_client,
                    stats,
                    Direction::Replies
                ),
            )
        };
        tokio::select! {
            _ = both_ways => false,
            () = reset_requested(&mut mode, &mut resets) => true,
        }
    };
    if must_reset {
        reset(client);
        reset(upstream);
    }
}

/// Waits while the mode is `Blackhole` and returns the first other mode.
async fn passable(mode: &mut watch::Receiver<ProxyMode>) -> ProxyMode {
    loop {
        let current = *mode.borrow_and_update();
        if current != ProxyMode::Blackhole {
            return current;
        }
        if mode.changed().await.is_err() {
            forever().await;
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => crate::fine_timer::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Copies `from` to `to` chunk by chunk, following the mode, counting into the direction's
/// flow; on EOF, half-closes `to`. Bytes the mode holds ([`ProxyMode::HoldReplies`]) are
/// kept until the mode lets them through, and dropped if `from` closes first. Under
/// [`ProxyMode::Latency`] each chunk is forwarded its delay after it was read, in order.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut mode: watch::Receiver<ProxyMode>,
    stats: &Stats,
    direction: Direction,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let flow = match direction {
        Direction::Requests => &stats.requests,
        Direction::Replies => &stats.replies,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut held: Vec<u8> = Vec::new();
    // Chunks on their way under `Latency`, in order, each with when it arrives.
    let mut in_flight: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    loop {
        let now = passable(&mut mode).await;
        if !held.is_empty() && !direction.holds(now) {
            for (_, chunk) in in_flight.drain(..) {
                to.write_all(&chunk).await?;
                flow.forwarded
                    .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            to.write_all(&held).await?;
            flow.forwarded
                .fetch_add(held.len() as u64, Ordering::SeqCst);
            held.clear();
            stats.moved.notify_waiters();
        }
        let arrival = in_flight.front().map(|(at, _)| *at);
        let n = tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    forever().await;
                }
                // Re-check the mode (a blackhole stops reading); reading is cancel-safe.
                continue;
            }
            () = sleep_until_some(arrival) => {
                if let Some((_, chunk)) = in_flight.pop_front() {
                    to.write_all(&chunk).await?;
                    flow.forwarded.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    stats.moved.notify_waiters();
                }
                continue;
            }
            read = from.read(&mut buf) => read?,
        };
        if n == 0 {
            // Chunks on their way still arrive; held bytes are lost: the sending side
            // closed before they were delivered.
            for (at, chunk) in in_flight.drain(..) {
                crate::fine_timer::sleep_until(at).await;
                to.write_all(&chunk).await?;
                flow.forwarded
                    .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            held.clear();
            to.shutdown().await?;
            return Ok(());
        }
        flow.read.fetch_add(n as u64, Ordering::SeqCst);
        stats.moved.notify_waiters();
        // The mode at forwarding time decides: held while blackholed, then delayed.
        let now = passable(&mut mode).await;
        if direction.holds(now) {
            held.extend_from_slice(&buf[..n]);
            continue;
        }
        // Behind chunks still on their way (in order), or delayed itself.
        let delay = match now {
            ProxyMode::Latency(delay) => Some(delay),
            _ if !in_flight.is_empty() => Some(Duration::ZERO),
            _ => None,
        };
        if let Some(delay) = delay {
            in_flight.push_back((Instant::now() + delay, buf[..n].to_vec()));
            continue;
        }
        to.write_all(&buf[..n]).await?;
        flow.forwarded.fetch_add(n as u64, Ordering::SeqCst);
        stats.moved.notify_waiters();
    }
}
