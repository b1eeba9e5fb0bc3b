//! The client-side cache over `FredBackend` on real redis-servers: the shared scenario
//! (`testkit::scenarios::cache`: invalidation across two clients with its latency, stale
//! reads while down, flush on reconnect), the conformance suite over a tracking (RESP3)
//! connection, and the default (no tracking) path.
//!
//! `cargo test -p backend-fred --test cache -- --nocapture` prints the measured latencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::scenarios;

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
