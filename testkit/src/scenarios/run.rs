//! What every scenario shares: the backend factory's future, why a run could not happen,
//! the load it drives, its latency summaries and how its report is asserted.

use crate::server::SpawnError;
use resilience_core::{BackendError, KvBackend};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// What a backend factory returns: a connected backend, or why it could not connect.
pub type BackendFuture =
    Pin<Box<dyn Future<Output = Result<Arc<dyn KvBackend>, BackendError>> + Send + 'static>>;

/// Why a scenario could not run at all (as opposed to running and breaking a promise,
/// which [`KillReport::violations`](super::kill::KillReport::violations) lists).
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
/// ([`KillOptions`](super::kill::KillOptions), [`SoakOptions`](super::soak::SoakOptions), [`FailoverOptions`](super::sentinel::FailoverOptions)): writer tasks, their pace and
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
    pub(super) fn of(mut samples: Vec<Duration>) -> Latency {
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
