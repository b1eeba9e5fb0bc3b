//! TLS against a real `redis-server --tls-port`: the tests of `testkit::scenarios::tls`,
//! written once for every backend, run on `RedisRsBackend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend_redis_rs::RedisRsBackend;
use resilience_core::KvBackend;
use testkit::scenarios::support::{config, get};
use testkit::scenarios::tls::{assert_tls_failure, set_get_works, tls_server};
use testkit::server::{TlsClientAuth, TlsFiles};

testkit::tls_tests!(common::factory);

/// The server's certificate is replaced by one from a CA the client does not trust (a
/// botched rotation): every call fails as `Unavailable` with the TLS message, and the
/// breaker counts the failures and opens. A TLS failure is never taken for a healthy
/// server.
#[tokio::test]
async fn untrusted_certificate_after_a_restart_opens_the_breaker() {
    use resilience_core::{CircuitState, ResilientClient};
    use std::time::Duration;

    let mut server = tls_server(TlsClientAuth::No).await;
    let backend = RedisRsBackend::connect(&config(&server)).await.unwrap();
    set_get_works(&backend).await;

    server.stop().await.unwrap();
    // New CA and server certificate, same paths: the client keeps trusting the old CA.
    TlsFiles::generate(server.dir()).unwrap();
    server.restart().await.unwrap();

    // The first call may see the old connection's end; then every reconnect is refused
    // by the client's certificate check.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let err = loop {
        let err = backend.execute(get("tls-k")).await.unwrap_err();
        if err.to_string().contains("TLS handshake failed") {
            break err;
        }
        assert!(err.kind().class().counts_for_breaker(), "{err}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no TLS error: {err}"
        );
    };
    assert_tls_failure(&err);

    let client = ResilientClient::builder("tls", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(3)
                .circuit_reset_timeout(Duration::from_secs(60))
                .with_health_check_interval(Duration::from_secs(3600)),
        )
        .build()
        .expect("valid client settings");
    for _ in 0..3 {
        assert!(client.get("tls-k").await.is_err());
    }
    assert_eq!(client.circuit_state(), CircuitState::Open);
}
