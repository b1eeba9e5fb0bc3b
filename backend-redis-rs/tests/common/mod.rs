//! Helpers shared by the integration tests: servers, configs and timing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use backend_redis_rs::RedisRsBackend;
use bytes::Bytes;
use resilience_core::{BackendError, Command, ConnectionConfig, SetOptions, Value};
use testkit::{FaultProxy, RedisServer};
use tokio::time::Instant;

/// Socket timeout used by the tests: short, so fault tests are fast.
pub const SOCKET_TIMEOUT: Duration = Duration::from_millis(500);
/// Slack allowed on top of a timeout (scheduling on a busy 2-core machine).
pub const SLACK: Duration = Duration::from_millis(100);

pub async fn server() -> RedisServer {
    RedisServer::spawn()
        .await
        .expect("redis-server must be installed (apt-get install redis-server)")
}

pub fn config_for(host: &str, port: u16) -> ConnectionConfig {
    ConnectionConfig {
        host: host.to_owned(),
        port,
        socket_timeout: SOCKET_TIMEOUT,
        socket_connect_timeout: SOCKET_TIMEOUT,
        ..ConnectionConfig::default()
    }
}

pub fn config(server: &RedisServer) -> ConnectionConfig {
    ConnectionConfig {
        socket_timeout: SOCKET_TIMEOUT,
        socket_connect_timeout: SOCKET_TIMEOUT,
        ..server.connection_config()
    }
}

pub fn proxied_config(proxy: &FaultProxy) -> ConnectionConfig {
    config_for("127.0.0.1", proxy.addr().port())
}

pub async fn connect(server: &RedisServer) -> RedisRsBackend {
    RedisRsBackend::connect(&config(server))
        .await
        .expect("connect to the test server")
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: b(value),
        options: SetOptions::default(),
    }
}

pub fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

/// Runs `f` and returns its output with how long it took.
pub async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// Calls PING until it succeeds or `within` passes; returns how long it took and how many
/// calls failed first.
pub async fn until_ping_succeeds(
    backend: &RedisRsBackend,
    within: Duration,
) -> Result<(Duration, u32), (Duration, BackendError)> {
    use resilience_core::KvBackend;
    let start = Instant::now();
    let mut failures = 0;
    loop {
        match backend.execute(Command::Ping).await {
            Ok(Value::Status(s)) if s == "PONG" => return Ok((start.elapsed(), failures)),
            Ok(other) => panic!("PING answered {other:?}"),
            Err(e) => {
                failures += 1;
                if start.elapsed() > within {
                    return Err((start.elapsed(), e));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Connects a `RedisRsBackend` for the scenarios of `testkit::scenarios`, which take a factory.
pub fn factory(config: resilience_core::ConnectionConfig) -> testkit::scenarios::BackendFuture {
    Box::pin(async move {
        let backend = RedisRsBackend::connect(&config).await?;
        Ok(std::sync::Arc::new(backend) as std::sync::Arc<dyn resilience_core::KvBackend>)
    })
}
