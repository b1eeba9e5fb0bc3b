//! Helpers shared by the integration tests: servers, configs and timing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use backend_redis_rs::RedisRsBackend;
use resilience_core::{BackendError, Command, ConnectionConfig, Value};
use testkit::proxy::FaultProxy;
use testkit::server::RedisServer;

use tokio::time::Instant;

/// The shared test helpers (a 500 ms socket timeout, configs, command builders, `timed`);
/// each test binary uses some of them.
#[allow(unused_imports)]
pub(crate) use testkit::scenarios::support::{
    SOCKET_TIMEOUT, b, config, config_for, get, set, spawn_server as server, timed,
};

/// Slack allowed on top of a timeout (scheduling on a busy 2-core machine).
pub(crate) const SLACK: Duration = Duration::from_millis(100);

pub(crate) fn proxied_config(proxy: &FaultProxy) -> ConnectionConfig {
    config_for("127.0.0.1", proxy.addr().port())
}

pub(crate) async fn connect(server: &RedisServer) -> RedisRsBackend {
    RedisRsBackend::connect(&config(server))
        .await
        .expect("connect to the test server")
}

/// Calls PING until it succeeds or `within` passes; returns how long it took and how many
/// calls failed first.
pub(crate) async fn until_ping_succeeds(
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

/// Connects this driver for the scenarios of `testkit::scenarios`, which take a factory,
/// as users connect: through `resilient_redis::connect_backend`, which puts the cluster
/// router over one backend per node for a cluster configuration.
pub(crate) fn factory(
    config: resilience_core::ConnectionConfig,
) -> testkit::scenarios::BackendFuture {
    Box::pin(async move {
        resilient_redis::connect_backend(&config, resilient_redis::BackendKind::RedisRs)
            .await
            .map_err(|e| match e.backend_error() {
                Some(backend) => backend.clone(),
                None => resilience_core::BackendError::new(
                    resilience_core::ErrorKind::InvalidInput,
                    e.to_string(),
                ),
            })
    })
}
