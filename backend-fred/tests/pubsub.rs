//! Pub/Sub through a SIGKILL: the `Subscriber` resubscribes after the restart and reports
//! the outage as a gap. The scenario lives in `testkit::scenarios::pubsub` (written once,
//! run for every backend).

mod common;

use testkit::scenarios::pubsub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resubscribes_after_a_kill_and_reports_the_gap() {
    pubsub::subscriber_survives_a_kill(common::factory)
        .await
        .expect("the scenario must be able to run (is redis-server installed?)")
        .print_and_assert();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_follows_a_cluster_failover() {
    pubsub::subscriber_follows_a_cluster_failover(common::factory)
        .await
        .expect("the scenario must be able to run (are redis-server and redis-cli installed?)")
        .print_and_assert();
}
