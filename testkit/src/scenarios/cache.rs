//! The client-side cache against a real `redis-server`, written once and run for every
//! backend: invalidation across two clients, stale reads during an outage, and flushes on
//! reconnect.
//!
//! ```no_run
//! # use testkit::scenarios::{self, BackendFuture};
//! # async fn demo(connect: fn(resilience_core::ConnectionConfig) -> BackendFuture) {
//! let report = scenarios::cache::cache_invalidation(connect).await.expect("scenario ran");
//! println!("{report}");
//! assert!(report.violations.is_empty(), "{:#?}", report.violations);
//! # }
//! ```
//!
//! The run, every wait bounded by a deadline (none is a bare sleep):
//!
//! 1. A server, client A (its backend connected with `client_tracking`, a client cache)
//!    and client B (no cache, no tracking).
//! 2. [`CacheOptions::rounds`] times: B sets a key, A reads it twice (`Fresh`, then
//!    `Cached`), B sets it again; the time from B's `SET` being sent until A's entry is
//!    gone is one latency sample, and must stay under [`CacheOptions::max_latency`]
//!    (100 ms, the promise). A's next read is `Fresh` with B's value. Once with `HGETALL`
//!    and `HSET` too.
//! 3. Reconnect: A caches a key; B runs `CLIENT KILL TYPE normal SKIPME yes` (A's
//!    connection drops, the server stays up) and overwrites the key while A may still be
//!    reconnecting, so its invalidation can be lost. Once A has tracking again (its cache
//!    was emptied), A must read B's value, not the old one.
//! 4. Outage: A caches a key; the server is killed. `get_cached` must answer the old value
//!    marked `Stale` (while failing, then while the breaker is open), and plain `get` must
//!    fail. The breaker must open.
//! 5. Restart: A's reads turn `Fresh` again, the cache was emptied on reconnect, and one
//!    more invalidation round works (a latency sample "after restart").

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{CacheConfig, Freshness};
use resilience_core::{CircuitState, Command, ConnectionConfig, ResilientClient, SetOptions};
use tokio::time::Instant;

use super::{BackendFuture, ScenarioFailure};
use crate::server::RedisServer;

/// Knobs of [`cache_invalidation_with`].
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// Invalidation rounds measured (default 20).
    pub rounds: usize,
    /// The promise: a write by another client evicts the entry within this (default 100 ms).
    pub max_latency: Duration,
    /// Both backends' socket timeout (default 2 s). The server fsyncs every write (so the
    /// keys survive the restart), and on a loaded disk one fsync can stall it for hundreds
    /// of milliseconds: a shorter timeout fails the scenario's own writes, not the cache.
    pub socket_timeout: Duration,
    /// A's breaker health-check interval (default 100 ms), so recovery is quick.
    pub health_check_interval: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            rounds: 20,
            max_latency: Duration::from_millis(100),
            socket_timeout: Duration::from_secs(2),
            health_check_interval: Duration::from_millis(100),
        }
    }
}

/// What a run measured, and the promises it broke.
#[derive(Clone, Debug)]
pub struct CacheReport {
    /// The backend's name.
    pub backend: &'static str,
    /// Time from B's `SET` being sent to A's entry being gone, per round, in order.
    pub latencies: Vec<Duration>,
    /// The same after the server was restarted (tracking re-enabled).
    pub latency_after_restart: Option<Duration>,
    /// How long the backend took to have tracking again after `CLIENT KILL`.
    pub reconnect_resumed_after: Option<Duration>,
    /// Stale reads A answered while the server was down.
    pub stale_reads: u64,
    /// Broken promises, in words.
    pub violations: Vec<String>,
}

impl CacheReport {
    fn sorted(&self) -> Vec<Duration> {
        let mut all = self.latencies.clone();
        all.sort();
        all
    }

    /// The median invalidation latency.
    pub fn median(&self) -> Option<Duration> {
        let sorted = self.sorted();
        sorted.get(sorted.len() / 2).copied()
    }

    /// The largest invalidation latency.
    pub fn max(&self) -> Option<Duration> {
        self.sorted().last().copied()
    }

    /// Prints the report and panics, like `assert!`, unless every promise held: no
    /// violation, all 21 invalidation rounds measured and each under 100 ms, invalidation
    /// working again after the restart, and stale reads served while the server was down.
    /// What a backend's test calls on the report.
    pub fn print_and_assert(&self) {
        super::print_and_assert(self, &self.violations);
        assert_eq!(self.latencies.len(), 21, "{self}");
        assert!(
            self.max()
                .is_some_and(|max| max < Duration::from_millis(100)),
            "{self}"
        );
        assert!(self.latency_after_restart.is_some(), "{self}");
        assert!(self.stale_reads > 0, "{self}");
    }
}

impl fmt::Display for CacheReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sorted = self.sorted();
        writeln!(f, "client cache over {}:", self.backend)?;
        if let (Some(min), Some(median), Some(max)) = (sorted.first(), self.median(), self.max()) {
            writeln!(
                f,
                "  invalidation latency over {} rounds (B's SET sent -> A's entry gone): min {:?}, median {:?}, max {:?}",
                sorted.len(),
                min,
                median,
                max
            )?;
        }
        if let Some(after) = self.latency_after_restart {
            writeln!(f, "  invalidation latency after the restart: {after:?}")?;
        }
        if let Some(resumed) = self.reconnect_resumed_after {
            writeln!(
                f,
                "  tracking back after CLIENT KILL: {resumed:?} (cache emptied)"
            )?;
        }
        writeln!(f, "  stale reads while down: {}", self.stale_reads)?;
        if self.violations.is_empty() {
            write!(f, "  no violations")
        } else {
            write!(f, "  violations: {:?}", self.violations)
        }
    }
}

/// [`cache_invalidation_with`] with the default options.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn cache_invalidation(
    connect: fn(ConnectionConfig) -> BackendFuture,
) -> Result<CacheReport, ScenarioFailure> {
    cache_invalidation_with(connect, CacheOptions::default()).await
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn setup(what: &str, e: impl fmt::Display) -> ScenarioFailure {
    ScenarioFailure::Setup(format!("{what}: {e}"))
}

/// Polls `done` (yielding in between) until it holds or `limit` passes; the time it took.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::task::yield_now().await;
    }
}

/// One invalidation round on `key`: the latency, or a violation.
async fn round(
    a: &ResilientClient,
    b_client: &ResilientClient,
    key: &str,
    hash: bool,
    options: &CacheOptions,
) -> Result<Result<Duration, String>, ScenarioFailure> {
    let read = |fresh: bool| async move {
        if hash {
            a.hgetall_cached(key).await.map(|r| {
                (
                    r.value
                        .get("f")
                        .map(|v| String::from_utf8_lossy(v).into_owned()),
                    r.freshness,
                )
            })
        } else {
            a.get_cached(key).await.map(|r| {
                (
                    r.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    r.freshness,
                )
            })
        }
        .map_err(|e| setup(if fresh { "A's first read" } else { "A's read" }, e))
    };
    let write = |value: &'static str| async move {
        if hash {
            b_client.hset(key, "f", b(value)).await.map(|_| ())
        } else {
            b_client
                .set(key, b(value), SetOptions::default())
                .await
                .map(|_| ())
        }
        .map_err(|e| setup("B's write", e))
    };
    write("one").await?;
    let first = read(true).await?;
    let second = read(false).await?;
    if first != (Some("one".to_owned()), Freshness::Fresh)
        || second != (Some("one".to_owned()), Freshness::Cached)
    {
        return Ok(Err(format!(
            "{key}: reads before the write were {first:?} then {second:?}, expected Fresh then Cached"
        )));
    }
    let sent = Instant::now();
    write("two").await?;
    let gone = wait_until(Duration::from_secs(2), || !a.is_cached(key)).await;
    let latency = match gone {
        Some(_) => sent.elapsed(),
        None => return Ok(Err(format!("{key}: A's entry was not evicted within 2 s"))),
    };
    let after = read(false).await?;
    if after != (Some("two".to_owned()), Freshness::Fresh) {
        return Ok(Err(format!(
            "{key}: after B's write A read {after:?}, expected B's value, Fresh"
        )));
    }
    if latency > options.max_latency {
        return Ok(Err(format!(
            "{key}: eviction took {latency:?}, over {:?}",
            options.max_latency
        )));
    }
    Ok(Ok(latency))
}

/// Runs the scenario described in the module docs.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn cache_invalidation_with(
    connect: fn(ConnectionConfig) -> BackendFuture,
    options: CacheOptions,
) -> Result<CacheReport, ScenarioFailure> {
    let mut server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await?;
    let base = server
        .connection_config()
        .with_socket_timeout(options.socket_timeout)
        .with_socket_connect_timeout(options.socket_timeout);
    let backend_a = connect(base.clone().with_client_tracking(true))
        .await
        .map_err(ScenarioFailure::Connect)?;
    let backend_b = connect(base).await.map_err(ScenarioFailure::Connect)?;
    let a = ResilientClient::builder_arc("cache-a", backend_a)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .with_health_check_interval(options.health_check_interval),
        )
        .client_cache(CacheConfig::default())
        .build()?;
    let b_client = ResilientClient::builder_arc("cache-b", backend_b).build()?;
    let mut report = CacheReport {
        backend: a.backend_name(),
        latencies: Vec::new(),
        latency_after_restart: None,
        reconnect_resumed_after: None,
        stale_reads: 0,
        violations: Vec::new(),
    };
    match a.cache_stats() {
        Some(stats) if stats.tracking => {}
        other => {
            report
                .violations
                .push(format!("A has no tracking cache: {other:?}"));
            return Ok(report);
        }
    }

    // 2. Invalidation rounds.
    for i in 0..options.rounds {
        match round(&a, &b_client, &format!("cache:k{i}"), false, &options).await? {
            Ok(latency) => report.latencies.push(latency),
            Err(violation) => report.violations.push(violation),
        }
    }
    match round(&a, &b_client, "cache:hash", true, &options).await? {
        Ok(latency) => report.latencies.push(latency),
        Err(violation) => report.violations.push(violation),
    }

    // 3. A dropped connection (server up): invalidations sent meanwhile are lost, so the
    //    cache must be emptied once tracking is back.
    let key = "cache:kill";
    b_client
        .set(key, b("old"), SetOptions::default())
        .await
        .map_err(|e| setup("B's write", e))?;
    a.get(key).await.map_err(|e| setup("A's read", e))?;
    if !a.is_cached(key) {
        report.violations.push(format!("{key} was not cached"));
    }
    let flushes = a.cache_stats().map_or(0, |s| s.flushes);
    let killed = Instant::now();
    b_client
        .execute(Command::Raw {
            args: ["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]
                .iter()
                .map(|s| b(s))
                .collect(),
            keys: Vec::new(),
            write: false,
            idempotent: true,
        })
        .await
        .map_err(|e| setup("CLIENT KILL", e))?;
    b_client
        .set(key, b("new"), SetOptions::default())
        .await
        .map_err(|e| setup("B's write after the kill", e))?;
    let resumed = wait_until(Duration::from_secs(5), || {
        a.cache_stats()
            .is_some_and(|s| s.tracking && s.flushes > flushes)
    })
    .await;
    match resumed {
        Some(_) => report.reconnect_resumed_after = Some(killed.elapsed()),
        None => report
            .violations
            .push("tracking did not come back within 5 s of CLIENT KILL".to_owned()),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match a.get_cached(key).await {
            Ok(read) if read.value.as_deref() == Some(&b"new"[..]) => break,
            Ok(read) if read.value.as_deref() == Some(&b"old"[..]) => {
                report.violations.push(format!(
                    "after the reconnect A read the overwritten value ({:?})",
                    read.freshness
                ));
                break;
            }
            _ if Instant::now() > deadline => {
                report
                    .violations
                    .push("A could not read after the reconnect within 5 s".to_owned());
                break;
            }
            _ => tokio::task::yield_now().await,
        }
    }

    // 4. Outage: stale reads, marked.
    let key = "cache:stale";
    b_client
        .set(key, b("before"), SetOptions::default())
        .await
        .map_err(|e| setup("B's write", e))?;
    a.get(key).await.map_err(|e| setup("A's read", e))?;
    server.stop().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut opened = false;
    while Instant::now() < deadline {
        match a.get_cached(key).await {
            // Before A notices the connection is gone, its entry may still be trusted
            // (no write can happen meanwhile: the server is dead).
            Ok(read)
                if read.freshness != Freshness::Fresh
                    && read.value.as_deref() == Some(&b"before"[..]) => {}
            other => {
                report.violations.push(format!(
                    "while down, get_cached answered {other:?}, expected the old value, Stale"
                ));
                break;
            }
        }
        if a.circuit_state() == CircuitState::Open {
            opened = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    if opened {
        match a.get_cached(key).await {
            Ok(read) if read.freshness == Freshness::Stale => {}
            other => report.violations.push(format!(
                "with the breaker open, get_cached answered {other:?}, expected Stale"
            )),
        }
        if let Ok(value) = a.get(key).await {
            report.violations.push(format!(
                "plain get answered {value:?} with the breaker open"
            ));
        }
    } else {
        report
            .violations
            .push("the breaker did not open within 10 s of the kill".to_owned());
    }
    report.stale_reads = a.cache_stats().map_or(0, |s| s.stale);

    if a.cache_stats().is_none_or(|s| s.stale == 0) {
        report
            .violations
            .push("no read was answered Stale while the server was down".to_owned());
    }
    // 5. Restart: fresh again, cache emptied, invalidation works.
    let flushes = a.cache_stats().map_or(0, |s| s.flushes);
    server.restart().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match a.get_cached(key).await {
            Ok(read) if read.freshness == Freshness::Fresh => break,
            _ if Instant::now() > deadline => {
                report
                    .violations
                    .push("no Fresh read within 10 s of the restart".to_owned());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let tracking = wait_until(Duration::from_secs(5), || {
        a.cache_stats().is_some_and(|s| s.tracking)
    })
    .await;
    if tracking.is_none() {
        report
            .violations
            .push("tracking was not back within 5 s of the restart".to_owned());
    }
    if a.cache_stats().is_none_or(|s| s.flushes <= flushes) {
        report
            .violations
            .push("the cache was not emptied when tracking came back".to_owned());
    }
    // B's connection died with the server too: its first call after the restart may fail.
    let b_ready = Instant::now() + Duration::from_secs(5);
    while b_client.ping().await.is_err() {
        if Instant::now() > b_ready {
            return Err(setup("B after the restart", "no PONG within 5 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match round(&a, &b_client, "cache:after", false, &options).await? {
        Ok(latency) => report.latency_after_restart = Some(latency),
        Err(violation) => report.violations.push(violation),
    }
    drop(a);
    drop(b_client);
    server.stop().await?;
    Ok(report)
}

/// A config for `server` with 2 s timeouts, tracking on or off.
pub fn tracking_config(server: &RedisServer, client_tracking: bool) -> ConnectionConfig {
    server
        .connection_config()
        .with_socket_timeout(Duration::from_secs(2))
        .with_socket_connect_timeout(Duration::from_secs(2))
        .with_client_tracking(client_tracking)
}

/// The whole conformance suite passes over a connection with `client_tracking` (RESP3,
/// tracking on once `connect` returns): tracking changes no command's result. Panics on a
/// failure.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn conformance_holds_over_a_tracking_connection<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let backend = connect(tracking_config(&server, true))
        .await
        .expect("connect with client_tracking");
    let feed = backend
        .invalidations()
        .expect("a tracking backend has a feed");
    assert!(feed.tracking, "tracking is on once connect returns");
    let ns = crate::conformance::unique_namespace("cache");
    let cases = crate::conformance::run_all(&*backend, &ns)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(cases, crate::conformance::CASES.len());
}

/// Without `client_tracking` a backend has no invalidation feed and no read is tracked.
/// Panics on a failure.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn without_client_tracking_nothing_is_tracked<F>(connect: F)
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let backend = connect(tracking_config(&server, false))
        .await
        .expect("connect without client_tracking");
    assert!(backend.invalidations().is_none());
    let reply = backend
        .execute_tracked(Command::Get { key: "k".into() })
        .await
        .expect("a plain read");
    assert!(!reply.tracked);
    assert_eq!(reply.value, resilience_core::Value::Nil);
}
