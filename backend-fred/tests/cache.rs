//! The client-side cache over `FredBackend` on real redis-servers: the shared scenario
//! (`testkit::scenarios::cache`: invalidation across two clients with its latency, stale
//! reads while down, flush on reconnect), the conformance suite over a tracking (RESP3)
//! connection, and the default (no tracking) path.
//!
//! `cargo test -p backend-fred --test cache -- --nocapture` prints the measured latencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use backend_fred::FredBackend;
use resilience_core::{ConnectionConfig, KvBackend};
use testkit::conformance;
use testkit::scenarios;
use testkit::server::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_client_evicts_the_entry_within_100_ms() {
    let report = scenarios::cache::cache_invalidation(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)");
    report.print_and_assert();
}

fn config(server: &RedisServer, client_tracking: bool) -> ConnectionConfig {
    ConnectionConfig {
        socket_timeout: Duration::from_secs(2),
        socket_connect_timeout: Duration::from_secs(2),
        client_tracking,
        ..server.connection_config()
    }
}

#[tokio::test]
async fn conformance_holds_over_a_tracking_resp3_connection() {
    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let backend = FredBackend::connect(&config(&server, true)).await.unwrap();
    let feed = backend
        .invalidations()
        .expect("a tracking backend has a feed");
    assert!(feed.tracking, "tracking is on once connect returns");
    let ns = conformance::unique_namespace("cache");
    let cases = conformance::run_all(&backend, &ns)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(cases, conformance::CASES.len());
}

#[tokio::test]
async fn without_client_tracking_nothing_is_tracked() {
    let server = RedisServer::spawn().await.expect("spawn redis-server");
    let backend = FredBackend::connect(&config(&server, false)).await.unwrap();
    assert!(backend.invalidations().is_none());
    let reply = backend
        .execute_tracked(resilience_core::Command::Get { key: "k".into() })
        .await
        .unwrap();
    assert!(!reply.tracked);
    assert_eq!(reply.value, resilience_core::Value::Nil);
}
