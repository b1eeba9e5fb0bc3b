//! fred in Redis Cluster mode against a local cluster (3 masters, 3 replicas, spawned
//! by testkit): commands with `ASK`/`MOVED`, `MULTI` and `EVALSHA` on hash-tagged keys, and
//! a killed master with per-shard breakers. Needs `redis-server` and `redis-cli`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::scenarios::cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_follow_ask_and_moved_and_run_multi_and_evalsha() {
    cluster::cluster_commands(common::factory)
        .await
        .expect("cluster commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_stops_only_its_shard() {
    let report = cluster::cluster_failover(common::factory)
        .await
        .expect("failover scenario");
    println!("{report}");
}
