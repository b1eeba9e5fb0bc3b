//! The chaos soak over `FredBackend`. Concurrent High and Normal writers
//! against a redis-server with `appendfsync always`, behind a fault proxy, while a seeded
//! fault loop kills and restarts the server and blackholes, resets and slows the network.
//! Every acknowledged write must be there at the end with its latest value, and no
//! non-idempotent write applied twice.
//!
//! The scenario lives in `testkit::scenarios::soak` (written once, run for every backend).
//! It runs `SOAK_SECS` seconds (default 20, so both backends fit in a minute of CI);
//! a longer run, with a fixed seed to repeat one:
//!
//! ```text
//! SOAK_SECS=600 cargo test -p backend-fred --test soak -- --nocapture
//! SOAK_SEED=1234 cargo test -p backend-fred --test soak -- --nocapture
//! ```

mod common;

use testkit::scenarios::soak;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_loses_nothing_acknowledged_and_applies_nothing_twice() {
    soak::chaos_soak(common::factory)
        .await
        .expect("the soak must be able to run (is redis-server installed?)")
        .print_and_assert();
}

/// The same soak against a Redis Cluster (3 masters, 3 replicas), a fault proxy in front
/// of every node: a kill hits one master, the network faults every node at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_on_a_cluster_loses_nothing_acknowledged_and_applies_nothing_twice() {
    soak::chaos_soak_cluster(common::factory)
        .await
        .expect("the soak must be able to run (are redis-server and redis-cli installed?)")
        .print_and_assert();
}
