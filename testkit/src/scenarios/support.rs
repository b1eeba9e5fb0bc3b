//! Helpers of the written-once tests (here and in the backend crates' `tests/`): a
//! server, configs with short timeouts, and command builders. They panic, like `assert!`,
//! when a test cannot even start.
#![allow(clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{Command, ConnectionConfig, KvBackend, SetOptions};
use tokio::time::Instant;

use super::BackendFuture;
use crate::server::RedisServer;

/// Socket timeout of the tests' connections: short, so a refused connect is fast.
pub const SOCKET_TIMEOUT: Duration = Duration::from_millis(500);

/// A fresh redis-server on a free port; panics with how to install it when missing.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn spawn_server() -> RedisServer {
    RedisServer::spawn()
        .await
        .expect("redis-server must be installed (apt-get install redis-server)")
}

/// A config for `host:port` with [`SOCKET_TIMEOUT`] for both timeouts.
pub fn config_for(host: &str, port: u16) -> ConnectionConfig {
    ConnectionConfig::default()
        .with_host(host.to_owned())
        .with_port(port)
        .with_socket_timeout(SOCKET_TIMEOUT)
        .with_socket_connect_timeout(SOCKET_TIMEOUT)
}

/// `server`'s config (credentials and TLS files included) with [`SOCKET_TIMEOUT`].
pub fn config(server: &RedisServer) -> ConnectionConfig {
    server
        .connection_config()
        .with_socket_timeout(SOCKET_TIMEOUT)
        .with_socket_connect_timeout(SOCKET_TIMEOUT)
}

/// A backend connected to `server` through `connect`; panics when it cannot connect.
///
/// # Errors
///
/// None: a broken promise panics, as an assertion in a test does.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn connected<F>(connect: &F, server: &RedisServer) -> Arc<dyn KvBackend>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    connect(config(server))
        .await
        .expect("connect to the test server")
}

/// `s` as bytes.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// `SET key value`.
pub fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: b(value),
        options: SetOptions::default(),
    }
}

/// `GET key`.
pub fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

/// Runs `f`, returning its output and how long it took.
///
/// # Errors
///
/// None: it returns what `f` returns, with how long it took.
///
/// # Cancel safety
///
/// As `f`'s: dropping the future drops `f`.
pub async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}
