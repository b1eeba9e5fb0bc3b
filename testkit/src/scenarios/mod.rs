//! End-to-end fault scenarios for a `ResilientClient` over a real `redis-server`, written
//! once and run for every backend.
//!
//! A scenario owns everything it needs: it starts its own server, connects a backend
//! through the factory you pass (so this crate never depends on a driver crate), builds a
//! client, injects the fault, measures, checks the data that ended up in Redis and returns
//! a report with the numbers. The report lists the promises the run broke
//! ([`KillReport::violations`](kill::KillReport::violations)); a backend's test prints the report and asserts that list
//! is empty.
//!
//! ```no_run
//! use std::sync::Arc;
//! use backend_memory::InMemoryBackend;
//! use resilience_core::{BackendError, ConnectionConfig, KvBackend};
//! use testkit::scenarios::{self, BackendFuture};
//!
//! # async fn demo() {
//! // A real test passes e.g. `RedisRsBackend::connect(&config)` here.
//! fn connect(config: ConnectionConfig) -> BackendFuture {
//!     Box::pin(async move {
//!         let _ = config;
//!         Ok(Arc::new(InMemoryBackend::new()) as Arc<dyn KvBackend>)
//!     })
//! }
//! let report = scenarios::kill::kill_and_restart(connect).await.expect("scenario ran");
//! println!("{report}");
//! assert!(report.violations().is_empty(), "{:#?}", report.violations());
//! # }
//! ```
//!
//! # Scenarios
//!
//! - [`kill::kill_and_restart`]: one SIGKILL under load, with the breaker's promises.
//! - [`soak::chaos_soak`]: concurrent writers while a seeded fault loop kills, restarts,
//!   blackholes, resets and slows the server for a while; every acknowledged write must
//!   be there at the end, none applied twice.
//! - [`sentinel::sentinel_failover`]: a master, a replica and three sentinels; the master
//!   is SIGKILLed under writes, which must resume on the new master within 10 s without
//!   a new client, losing no confirmed write.
//! - [`dead_server::dead_server`]: kills, idle and under load, repeated: the first call
//!   after a kill fails fast as `Unavailable` (not sent), a `High` or `Normal` non-idempotent write
//!   made then is queued and applied exactly once, the breaker opens within 100 ms of a
//!   kill under load and closes within 1.5 s of the restart; and a write whose reply is
//!   lost in flight is `Timeout` and applied at most once.
//! - [`least_privilege::least_privilege`] (and `least_privilege_cluster`): a user
//!   without `@admin` or `@dangerous`, limited to one key namespace, as managed services
//!   hand out; the client, its cache and the cluster router work as that user.
//! - [`acl::acl_checks`]: ACL users over a real server: right and wrong passwords, `Auth`
//!   never opening the breaker, and the password in no error, `Debug` or log line.
//!
//! [`kill::kill_and_restart`]'s run, step by step, and the promises it checks are on
//! [`kill::kill_and_restart_with`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use resilience_core::{BackendError, KvBackend};

use crate::server::SpawnError;

pub mod acl;
pub mod backend_tests;
pub mod cache;
pub mod cluster;
pub mod cluster_chaos;
pub mod commands;
pub mod dead_server;
pub mod kill;
pub mod least_privilege;
pub mod lost_reply;
pub mod pubsub;
pub mod sentinel;
pub mod soak;
pub mod support;
pub mod tls;

pub use acl::{AclOptions, AclReport, acl_checks, acl_checks_with};
pub use dead_server::{
    DeadServerOptions, DeadServerReport, InFlightReport, dead_server, dead_server_with,
    in_flight_then_death,
};
/// What a backend factory returns: a connected backend, or why it could not connect.
pub type BackendFuture =
    Pin<Box<dyn Future<Output = Result<Arc<dyn KvBackend>, BackendError>> + Send + 'static>>;

/// Why a scenario could not run at all (as opposed to running and breaking a promise,
/// which [`KillReport::violations`](kill::KillReport::violations) lists).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioFailure {
    /// The `redis-server` could not be started, stopped or restarted.
    #[error("redis-server: {0}")]
    Server(#[from] SpawnError),
    /// The backend factory failed to connect to the fresh server.
    #[error("backend could not connect: {0}")]
    Connect(BackendError),
    /// A step that must succeed for the run to mean anything did not, in time.
    #[error("{0}")]
    Setup(String),
    /// The scenario's client settings were refused.
    #[error("client settings: {0}")]
    Settings(#[from] resilience_core::Error),
}

/// The load a scenario drives, the same description for every scenario that has one
/// ([`KillOptions`](kill::KillOptions), [`SoakOptions`](soak::SoakOptions), [`FailoverOptions`](sentinel::FailoverOptions)): writer tasks, their pace and
/// keys, the `INCRBY`-only tasks, and the timeouts of the backend and the client under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    /// Concurrent writer tasks.
    pub writers: usize,
    /// Each writer's pause between iterations (one write, and where the scenario has one,
    /// one `INCRBY`). Bounds how many writes pile up in the recovery queue while Redis is
    /// down.
    pub pace: Duration,
    /// Extra tasks that only run `INCRBY counter 1`, back to back while Redis answers, so
    /// several are in flight when it fails.
    pub counters: usize,
    /// Keys each writer cycles through (odd, so every key sees every write shape and both
    /// priorities).
    pub keys_per_writer: usize,
    /// The backend's `socket_timeout` and `socket_connect_timeout`.
    pub socket_timeout: Duration,
    /// The client's health-check interval.
    pub health_check_interval: Duration,
}

/// Latency summary of a set of calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// How many calls.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let at = |q: f64| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            // Nearest-rank percentile.
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Latency {
            count: samples.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} p50={:?} p99={:?} max={:?}",
            self.count, self.p50, self.p99, self.max
        )
    }
}

/// What every report's `print_and_assert` does: prints `report`, then panics, like
/// `assert!`, listing `violations` when there are any.
pub(crate) fn print_and_assert(report: &impl fmt::Display, violations: &[String]) {
    println!("{report}");
    assert!(violations.is_empty(), "{violations:#?}");
}
