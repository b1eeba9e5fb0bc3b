//! [`SpawnError`]: why a test server could not be started.

use std::time::Duration;

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The server binary is not on `PATH` (or [`SERVER_BINARY_ENV`](super::SERVER_BINARY_ENV) names a missing file).
    #[error(
        "redis-server not found: install it with `apt-get install -y redis-server`, or point TESTKIT_REDIS_SERVER at a redis-server or valkey-server binary"
    )]
    NotFound,
    /// Starting, signalling or waiting for the process failed, or the temporary directory
    /// could not be created.
    #[error("could not run redis-server: {0}")]
    Io(#[from] std::io::Error),
    /// The process exited while starting up (a bad argument, say). `log` is the end of its
    /// log and stderr.
    #[error("redis-server on port {port} exited during startup ({status}); log:\n{log}")]
    Exited {
        /// The port it was started on.
        port: u16,
        /// How it exited.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The process did not answer `PING` within the startup timeout; it was killed.
    #[error("redis-server on port {port} was not ready after {waited:?}; log:\n{log}")]
    NotReady {
        /// The port it was started on.
        port: u16,
        /// How long it was waited for.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
    /// A [`SentinelDeployment`](super::SentinelDeployment) did not come together or did not fail over in time.
    #[error("sentinel deployment: {0}")]
    Sentinel(String),
    /// Every port tried was taken by someone else before redis could bind it.
    #[error("redis-server could not bind a free port after {attempts} attempts")]
    PortsTaken {
        /// How many ports were tried.
        attempts: u32,
    },
}
