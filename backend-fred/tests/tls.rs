//! TLS against a real `redis-server --tls-port`: the tests of `testkit::scenarios::tls`,
//! written once for every backend, run on `FredBackend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use backend_fred::FredBackend;
use resilience_core::KvBackend;
use testkit::scenarios::support::{config, get};
use testkit::scenarios::tls::{assert_tls_failure, set_get_works, tls_server};
use testkit::server::{TlsClientAuth, TlsFiles};

testkit::tls_tests!(common::factory);

/// The server's certificate is replaced by one from a CA the client does not trust (a
/// botched rotation): fred's background reconnects fail with the TLS error (reported on its
/// error channel, and logged by the backend), every call fails with a kind that counts for
/// the breaker, and the breaker opens. A TLS failure is never taken for a healthy server.
#[tokio::test]
async fn untrusted_certificate_after_a_restart_opens_the_breaker() {
    use fred::interfaces::EventInterface;
    use resilience_core::{CircuitState, ResilientClient};

    let mut server = tls_server(TlsClientAuth::No).await;
    let backend = FredBackend::connect(&config(&server)).await.unwrap();
    set_get_works(&backend).await;
    let mut errors = backend.client().error_rx();

    server.stop().await.unwrap();
    // New CA and server certificate, same paths: the client keeps trusting the old CA.
    TlsFiles::generate(server.dir()).unwrap();
    server.restart().await.unwrap();

    // Calls while fred reconnects fail fast; each failure counts for the breaker.
    let err = backend.execute(get("tls-k")).await.unwrap_err();
    assert!(err.kind().class().counts_for_breaker(), "{err}");
    // fred's reconnects are refused by the certificate check.
    let tls_error = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match errors.recv().await {
                Ok((e, _)) => {
                    let classified = backend_fred::classify_error(&e);
                    if classified.to_string().contains("TLS handshake failed") {
                        break classified;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(closed) => panic!("error channel closed: {closed}"),
            }
        }
    })
    .await
    .expect("a TLS error within 5 s");
    assert_tls_failure(&tls_error);

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
