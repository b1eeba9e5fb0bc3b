//! Real `redis-server` processes for integration tests.
//!
//! [`RedisServer::builder`] starts a `redis-server` on a free port of `127.0.0.1`, in its
//! own temporary directory, and waits until it answers `PING`. The test can then
//! [`stop`](RedisServer::stop) it (SIGKILL, like a crash) and [`restart`](RedisServer::restart)
//! it on the same port and directory, so clients reconnect to the same address and, with
//! [`appendfsync_always`](RedisServerBuilder::appendfsync_always), find every acknowledged
//! write again. Dropping the [`RedisServer`] kills the process and removes the directory.
//!
//! ```no_run
//! use testkit::server::{RedisServer, RespConnection, RespReply};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = RedisServer::builder().appendfsync_always(true).spawn().await?;
//! let mut conn = RespConnection::connect(server.addr()).await?;
//! conn.command(&["SET", "k", "v"]).await?;
//!
//! server.stop().await?; // SIGKILL: the "crash"
//! server.restart().await?; // same port, same dir: the AOF is replayed
//! let mut conn = RespConnection::connect(server.addr()).await?;
//! assert_eq!(conn.command(&["GET", "k"]).await?, RespReply::Bulk(Some(b"v".to_vec())));
//! # Ok(())
//! # }
//! ```
//!
//! Servers never use port 6379: the port is chosen by the kernel (bind `127.0.0.1:0`, read
//! the port, release it). Another process may grab that port before redis binds it; when
//! redis then fails with "Address already in use", spawning tries again on a new port, a
//! few times. Readiness is checked by PID (`INFO server`), so a server that someone else
//! started on "our" port is never mistaken for ours.
//!
//! ## TLS
//!
//! [`tls_generated`](RedisServerBuilder::tls_generated) (or [`tls`](RedisServerBuilder::tls)
//! with your own [`TlsFiles`]) starts the server with TLS only: `--port 0 --tls-port P`,
//! certificates generated with `rcgen` into its directory (see [`TlsFiles::generate`]).
//! Readiness is then checked with `redis-cli --tls` (same `PING` and PID check), so
//! `redis-cli` must be installed too. [`RedisServer::connection_config`] then carries the
//! `TlsConfig` (the CA and, when there is one, the client certificate) and
//! [`RedisServer::url`] is a `rediss://` URL. The plain [`RespConnection`] does not speak
//! TLS.
//!
//! ## Sentinel
//!
//! [`SentinelDeployment`] runs a master, a replica and three sentinels (see its module
//! docs), to test failover. [`FakeSentinel`] names whichever master the test says, to
//! change masters at an exact moment.
//!
//! ## Which server
//!
//! Every spawner runs `redis-server` from `PATH`, or the executable that the environment
//! variable `TESTKIT_REDIS_SERVER` ([`SERVER_BINARY_ENV`]) names, so the same tests run
//! against another build: `TESTKIT_REDIS_SERVER=/path/to/valkey-server cargo test …`
//! (`scripts/test.sh` runs its server matrix this way).
//!
//! If `redis-server` is not installed, [`SpawnError::NotFound`] says how to install it.
//! This module does the process management itself with `tokio::process` rather than using
//! the `redis-test` crate, which is synchronous, panics on failure, depends on the `redis`
//! driver and cannot restart a server on the same port.

mod cluster;
mod error;
mod fake_sentinel;
mod resp;
mod sentinel;
mod single;
mod tls;

pub use cluster::{
    CLUSTER_READY_TIMEOUT, ClusterError, ClusterProxies, RedisCluster, RedisClusterBuilder,
    SlotRange,
};
pub use error::SpawnError;
pub use fake_sentinel::FakeSentinel;
pub use resp::{RespConnection, RespReply, encode_command};
pub use sentinel::{MASTER_NAME as SENTINEL_MASTER_NAME, SentinelDeployment};
pub use single::{
    AclUser, DEFAULT_STARTUP_TIMEOUT, RedisServer, RedisServerBuilder, SERVER_BINARY_ENV,
    free_port, server_binary,
};
pub use tls::{TlsClientAuth, TlsFiles};
