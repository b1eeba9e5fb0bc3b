//! The shared conformance suite (testkit::conformance) against a real redis-server through
//! `FredBackend`: the same cases, the same expected results as for `InMemoryBackend` and
//! `RedisRsBackend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use testkit::conformance;

#[tokio::test]
async fn conformance_suite_passes_against_real_redis() {
    let (_server, backend) = common::server_and_backend(Duration::from_secs(2)).await;
    let ns = conformance::unique_namespace("fred");
    let cases = conformance::run_all(&backend, &ns)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(cases >= 12, "ran {cases} cases");
}
