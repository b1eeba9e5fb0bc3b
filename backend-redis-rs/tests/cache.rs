//! The client-side cache over `RedisRsBackend` on real redis-servers: the shared scenario
//! (`testkit::scenarios::cache`: invalidation across two clients with its latency, stale
//! reads while down, flush on reconnect), the conformance suite over a tracking (RESP3)
//! connection, and the default (no tracking) path.
//!
//! `cargo test -p backend-redis-rs --test cache -- --nocapture` prints the measured latencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use backend_redis_rs::RedisRsBackend;
use resilience_core::ConnectionConfig;
use testkit::scenarios;
use testkit::server::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_client_evicts_the_entry_within_100_ms() {
    let report = scenarios::cache::cache_invalidation(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)");
    report.print_and_assert();
}

#[tokio::test]
async fn conformance_holds_over_a_tracking_resp3_connection() {
    scenarios::cache::conformance_holds_over_a_tracking_connection(common::factory).await;
}

#[tokio::test]
async fn without_client_tracking_nothing_is_tracked() {
    scenarios::cache::without_client_tracking_nothing_is_tracked(common::factory).await;
}

/// `FLUSHDB` by another client arrives as a null invalidation: the whole cache empties.
/// (fred drops that message; see backend-fred's `tracking` module docs.)
#[tokio::test]
async fn flushdb_by_another_client_empties_the_cache() {
    use bytes::Bytes;
    use resilience_core::CacheConfig;
    use resilience_core::{Command, ResilientClient, SetOptions};

    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let a = ResilientClient::builder(
        "a",
        RedisRsBackend::connect(&scenarios::cache::tracking_config(&server, true))
            .await
            .unwrap(),
    )
    .client_cache(CacheConfig::default())
    .build()
    .expect("valid client settings");
    let b = ResilientClient::builder(
        "b",
        RedisRsBackend::connect(&scenarios::cache::tracking_config(&server, false))
            .await
            .unwrap(),
    )
    .build()
    .expect("valid client settings");
    b.set("k", Bytes::from_static(b"v"), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(a.is_cached("k"));
    let flushes = a.cache_stats().unwrap().flushes;
    b.execute(Command::Raw {
        args: vec![Bytes::from_static(b"FLUSHDB")],
        keys: vec![],
        write: true,
        idempotent: true,
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while a.is_cached("k") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!a.is_cached("k"), "FLUSHDB did not empty A's cache");
    assert!(a.cache_stats().unwrap().flushes > flushes);
    assert_eq!(a.get("k").await.unwrap(), None);
}

/// After a timeout the backend replaces its connection manager (`Connector::renew`); the
/// new connection is not tracking, so the cache must stop trusting its entries at once (the
/// old socket is still open: no disconnection push says so), serve them only as stale, and
/// be emptied once tracking is on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_connection_is_tracked_again_and_the_cache_emptied() {
    use bytes::Bytes;
    use resilience_core::{CacheConfig, Freshness};
    use resilience_core::{ResilientClient, SetOptions};
    use testkit::proxy::{FaultProxy, ProxyMode};

    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let proxied = ConnectionConfig::default()
        .with_host("127.0.0.1")
        .with_port(proxy.addr().port())
        .with_socket_timeout(Duration::from_millis(200))
        .with_socket_connect_timeout(Duration::from_millis(200))
        .with_client_tracking(true);
    let a = ResilientClient::builder("a", RedisRsBackend::connect(&proxied).await.unwrap())
        .breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(100))
        .client_cache(CacheConfig::default())
        .build()
        .expect("valid client settings");
    let b = ResilientClient::builder(
        "b",
        RedisRsBackend::connect(&scenarios::cache::tracking_config(&server, false))
            .await
            .unwrap(),
    )
    .build()
    .expect("valid client settings");
    b.set("k", Bytes::from_static(b"old"), SetOptions::default())
        .await
        .unwrap();
    a.get("k").await.unwrap();
    assert_eq!(
        a.get_cached("k").await.unwrap().freshness,
        Freshness::Cached
    );
    let flushes = a.cache_stats().unwrap().flushes;

    proxy.set_mode(ProxyMode::Blackhole);
    assert!(a.ping().await.is_err(), "a blackholed ping must time out");
    // The timeout replaced the manager: tracking is lost although no socket closed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while a.cache_stats().unwrap().tracking && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        !a.cache_stats().unwrap().tracking,
        "renewal did not report the loss"
    );
    let stale = a.get_cached("k").await.unwrap();
    assert_eq!(
        (stale.value.as_deref(), stale.freshness),
        (Some(&b"old"[..]), Freshness::Stale)
    );
    b.set("k", Bytes::from_static(b"new"), SetOptions::default())
        .await
        .unwrap();

    proxy.set_mode(ProxyMode::Pass);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !a
        .cache_stats()
        .is_some_and(|s| s.tracking && s.flushes > flushes)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = a.cache_stats().unwrap();
    assert!(stats.tracking && stats.flushes > flushes, "{stats:?}");
    let read = a.get_cached("k").await.unwrap();
    assert_eq!(read.value.as_deref(), Some(&b"new"[..]), "{read:?}");
    assert_eq!(
        a.get_cached("k").await.unwrap().freshness,
        Freshness::Cached
    );
}
