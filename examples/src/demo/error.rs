//! [`DemoError`]: why the demo could not run.

/// Why the demo could not run (a run that loses writes is not an error: it is a report
/// whose [`is_success`](super::DemoReport::is_success) is false).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The flags do not fit together.
    #[error("{0}")]
    InvalidArgs(String),
    /// A `redis-server` could not be started.
    #[error("could not start redis-server: {0}")]
    Spawn(#[from] testkit::server::SpawnError),
    /// Local I/O failed (the proxy, resolving the URL, the chart's directory).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting to the backend failed.
    #[error("backend error: {0}")]
    Backend(#[from] resilience_core::Error),
    /// Building the memory tiers failed.
    #[error("memory tiers: {0}")]
    Tiers(#[from] memory_tiers::Error),
    /// The Prometheus exporter could not be installed.
    #[error("metrics exporter: {0}")]
    Metrics(String),
    /// The chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
}
