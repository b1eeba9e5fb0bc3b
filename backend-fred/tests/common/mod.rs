//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use backend_fred::FredBackend;
use resilience_core::ConnectionConfig;
use testkit::server::RedisServer;

/// A config pointing at `port` with the given socket timeout.
pub(crate) fn config(port: u16, socket_timeout: Duration) -> ConnectionConfig {
    ConnectionConfig::default()
        .with_host("127.0.0.1")
        .with_port(port)
        .with_socket_timeout(socket_timeout)
        .with_socket_connect_timeout(socket_timeout)
}

/// A fresh server and a backend connected to it.
pub(crate) async fn server_and_backend(socket_timeout: Duration) -> (RedisServer, FredBackend) {
    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let backend = FredBackend::connect(&config(server.port(), socket_timeout))
        .await
        .expect("connect");
    (server, backend)
}

/// Polls `f` until it returns `Some`, or panics after `deadline`. Returns the value and
/// how long it took.
pub(crate) async fn wait_for<T, F, Fut>(deadline: Duration, mut f: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return (v, start.elapsed());
        }
        assert!(
            start.elapsed() < deadline,
            "condition not met within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Connects this driver for the scenarios of `testkit::scenarios`, which take a factory,
/// as users connect: through `resilient_redis::connect_backend`, which puts the cluster
/// router over one backend per node for a cluster configuration.
pub(crate) fn factory(
    config: resilience_core::ConnectionConfig,
) -> testkit::scenarios::BackendFuture {
    Box::pin(async move {
        resilient_redis::connect_backend(&config, resilient_redis::BackendKind::Fred)
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
