//! [`BenchError`]: why a benchmark could not run or measured nothing.

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A setting is out of range (no concurrency level, zero operations, …).
    #[error("invalid benchmark settings: {0}")]
    InvalidConfig(String),
    /// The backend's cargo feature is off in this build.
    #[error("backend {0} is not built in; rebuild with `--features {0}`")]
    NotBuilt(&'static str),
    /// The private redis-server did not start.
    #[error("could not start redis-server: {0}")]
    Server(#[from] testkit::server::SpawnError),
    /// The private Redis Cluster did not start.
    #[error("could not start the Redis Cluster: {0}")]
    Cluster(#[from] testkit::server::ClusterError),
    /// The URL was not understood, or a cleanup call failed.
    #[error(transparent)]
    Client(#[from] resilience_core::Error),
    /// Connecting a driver or backend failed.
    #[error("{backend}: could not connect: {message}")]
    Connect {
        /// The backend.
        backend: &'static str,
        /// The driver's error.
        message: String,
    },
    /// An operation failed during a run (a benchmark with errors measures nothing).
    #[error("{backend} {mode} at concurrency {concurrency}: {error}")]
    Load {
        /// The backend.
        backend: &'static str,
        /// `"raw"` or `"resilient"`.
        mode: &'static str,
        /// Concurrent tasks.
        concurrency: usize,
        /// The first failed operation.
        error: String,
    },
}
