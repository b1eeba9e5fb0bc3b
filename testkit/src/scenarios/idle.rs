//! A connection that dies while idle, against a real `redis-server`, written once and run
//! for every backend: the client notices without waiting for a call.
//!
//! ```no_run
//! # use testkit::scenarios::{self, BackendFuture};
//! # async fn demo(connect: fn(resilience_core::ConnectionConfig) -> BackendFuture) {
//! let report = scenarios::idle::idle_blackhole(connect).await.expect("scenario ran");
//! report.print_and_assert();
//! # }
//! ```
//!
//! The run, every wait bounded by a deadline; the one sleep is the idle spell itself:
//!
//! 1. A server behind a fault proxy, and a client over it with a client cache (its backend
//!    connected with `client_tracking`) and idle liveness on its defaults.
//! 2. The client caches a key (`Fresh`, then `Cached`), then makes no call for
//!    [`IdleOptions::idle`] (10 s by default): its connection is idle, as a service's is at
//!    night.
//! 3. The proxy blackholes the connection: nothing the client sends arrives, nothing comes
//!    back, and the socket stays open, as in a partition.
//! 4. With no call made, the breaker must open within [`IdleOptions::bound`] (3 s; the
//!    client's own bound, `idle_after + timeout`, is 2 s). Then `get_cached` must answer
//!    the key as `Stale`, never `Cached` or `Fresh`, and a plain `GET` must fail fast
//!    (within [`IdleOptions::fail_fast`], 100 ms) instead of waiting out its timeout.
//! 5. The partition heals: the breaker closes and the key reads `Fresh` or `Cached` again
//!    (the connection survived, and an invalidation sent during the partition arrives
//!    before the reply that closes the breaker).

use std::fmt;
use std::time::Duration;

use resilience_core::{
    CacheConfig, CircuitBreakerConfig, CircuitState, ConnectionConfig, Freshness, LivenessConfig,
    ResilientClient, SetOptions,
};
use tokio::time::Instant;

use super::{BackendFuture, ScenarioFailure};
use crate::proxy::{FaultProxy, ProxyMode};
use crate::server::RedisServer;

/// Knobs of [`idle_blackhole_with`].
#[derive(Clone, Debug)]
pub struct IdleOptions {
    /// How long the client makes no call before the partition (default 10 s; the
    /// environment variable `IDLE_BLACKHOLE_SECS` sets it for the default options).
    pub idle: Duration,
    /// The promise: the breaker opens within this of the partition (default 3 s).
    pub bound: Duration,
    /// The promise: a call made once the breaker is open ends within this (default 100 ms).
    pub fail_fast: Duration,
    /// The backend's socket timeout (default 2 s): what a call would wait without the watch.
    pub socket_timeout: Duration,
}

impl Default for IdleOptions {
    fn default() -> Self {
        let idle = std::env::var("IDLE_BLACKHOLE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_secs);
        IdleOptions {
            idle,
            bound: Duration::from_secs(3),
            fail_fast: Duration::from_millis(100),
            socket_timeout: Duration::from_secs(2),
        }
    }
}

/// What a run measured, and the promises it broke.
#[derive(Clone, Debug)]
pub struct IdleReport {
    /// The backend's name.
    pub backend: &'static str,
    /// How long the connection was idle before the partition.
    pub idle: Duration,
    /// From the partition to the breaker opening, with no call made (`None`: it did not
    /// open within the bound).
    pub detected_after: Option<Duration>,
    /// How the cached key read once the breaker was open.
    pub freshness_after: Option<Freshness>,
    /// How long the plain `GET` made then took, and whether it failed.
    pub next_call: Option<(Duration, bool)>,
    /// From the partition healing to the key reading `Fresh` or `Cached` again.
    pub recovered_after: Option<Duration>,
    /// Broken promises, in words.
    pub violations: Vec<String>,
}

impl IdleReport {
    /// Prints the report and panics, like `assert!`, unless every promise held: the
    /// partition noticed within the bound with no call made, the cached key `Stale`, the
    /// next call failing fast, and reads trusted again once the partition healed.
    pub fn print_and_assert(&self) {
        super::print_and_assert(self, &self.violations);
    }
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "idle connection blackholed, over {} (idle {:?} first):",
            self.backend, self.idle
        )?;
        writeln!(
            f,
            "  breaker open after: {:?} (no call made)",
            self.detected_after
        )?;
        writeln!(f, "  cached key then: {:?}", self.freshness_after)?;
        if let Some((took, failed)) = self.next_call {
            writeln!(f, "  next GET: {took:?}, failed: {failed}")?;
        }
        writeln!(
            f,
            "  trusted again after healing: {:?}",
            self.recovered_after
        )?;
        if self.violations.is_empty() {
            write!(f, "  no violations")
        } else {
            write!(f, "  violations: {:?}", self.violations)
        }
    }
}

/// [`idle_blackhole_with`] with the default options.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the server and proxy it started stop with their
/// handles, and nothing outside them was touched.
pub async fn idle_blackhole(
    connect: fn(ConnectionConfig) -> BackendFuture,
) -> Result<IdleReport, ScenarioFailure> {
    idle_blackhole_with(connect, IdleOptions::default()).await
}

/// The run described in the [module docs](self).
///
/// # Errors
///
/// As [`idle_blackhole`].
///
/// # Cancel safety
///
/// As [`idle_blackhole`].
pub async fn idle_blackhole_with(
    connect: fn(ConnectionConfig) -> BackendFuture,
    options: IdleOptions,
) -> Result<IdleReport, ScenarioFailure> {
    const KEY: &str = "idle:key";
    let server = RedisServer::builder().spawn().await?;
    let proxy = FaultProxy::start(server.addr())
        .await
        .map_err(|e| setup("starting the proxy", e))?;
    let config = server
        .connection_config()
        .with_host("127.0.0.1")
        .with_port(proxy.addr().port())
        .with_socket_timeout(options.socket_timeout)
        .with_socket_connect_timeout(options.socket_timeout)
        .with_client_tracking(true);
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let client = ResilientClient::builder_arc("idle", backend)
        .breaker(
            CircuitBreakerConfig::default().with_health_check_interval(Duration::from_millis(200)),
        )
        .client_cache(CacheConfig::default())
        .liveness(Some(LivenessConfig::default()))
        .build()?;
    let mut report = IdleReport {
        backend: client.backend_name(),
        idle: options.idle,
        detected_after: None,
        freshness_after: None,
        next_call: None,
        recovered_after: None,
        violations: Vec::new(),
    };

    // 2. Cache the key, then stay idle.
    client
        .set(KEY, "v1", SetOptions::default())
        .await
        .map_err(|e| setup("SET", e))?;
    for expected in [Freshness::Fresh, Freshness::Cached] {
        let read = client
            .get_cached(KEY)
            .await
            .map_err(|e| setup("get_cached", e))?;
        if read.freshness != expected || read.value.as_deref() != Some(&b"v1"[..]) {
            report.violations.push(format!(
                "before the partition, read {:?} {:?}, expected {expected:?} \"v1\"",
                read.freshness, read.value
            ));
            return Ok(report);
        }
    }
    tokio::time::sleep(options.idle).await;
    if client.circuit_state() != CircuitState::Closed {
        report.violations.push(format!(
            "the breaker is {:?} after an idle spell with the server up",
            client.circuit_state()
        ));
        return Ok(report);
    }

    // 3. The partition, with no call made: the breaker must open by itself.
    proxy.set_mode(ProxyMode::Blackhole);
    let partitioned = Instant::now();
    let opened = crate::conformance::wait_for(options.bound, || async {
        client.circuit_state() == CircuitState::Open
    })
    .await;
    report.detected_after = opened.then(|| partitioned.elapsed());
    if report.detected_after.is_none() {
        report.violations.push(format!(
            "the breaker did not open within {:?} of the partition",
            options.bound
        ));
    } else {
        // 4. The cache stops vouching for its entries, and calls fail fast.
        match client.get_cached(KEY).await {
            Ok(read) => {
                report.freshness_after = Some(read.freshness);
                if read.freshness != Freshness::Stale {
                    report.violations.push(format!(
                        "the cached key read {:?} after the partition was noticed, not Stale",
                        read.freshness
                    ));
                }
            }
            Err(e) => report
                .violations
                .push(format!("get_cached failed instead of answering Stale: {e}")),
        }
        let started = Instant::now();
        let result = client.get(KEY).await;
        let took = started.elapsed();
        report.next_call = Some((took, result.is_err()));
        if result.is_ok() || took > options.fail_fast {
            report.violations.push(format!(
                "the next GET took {took:?} ({result:?}); it must fail within {:?}",
                options.fail_fast
            ));
        }
    }

    // 5. The partition heals.
    proxy.set_mode(ProxyMode::Pass);
    let healed = Instant::now();
    // `Cached` is right too: the connection survived, and any invalidation sent during
    // the partition arrived before the reply that closed the breaker.
    let trusted = crate::conformance::wait_for(Duration::from_secs(10), || async {
        client.get_cached(KEY).await.is_ok_and(|read| {
            read.freshness != Freshness::Stale && read.value.as_deref() == Some(&b"v1"[..])
        })
    })
    .await;
    if trusted {
        report.recovered_after = Some(healed.elapsed());
    } else {
        report.violations.push(
            "the key did not read Fresh or Cached within 10 s of the partition healing".into(),
        );
    }
    Ok(report)
}

fn setup(what: &str, e: impl fmt::Display) -> ScenarioFailure {
    ScenarioFailure::Setup(format!("{what}: {e}"))
}
