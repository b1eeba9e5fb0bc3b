//! fred in Redis Cluster mode against a local cluster (3 masters, 3 replicas, spawned
//! by testkit): commands with `ASK`/`MOVED`, `MULTI` and `EVALSHA` on hash-tagged keys, and
//! a killed master with per-shard breakers. Needs `redis-server` and `redis-cli`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::scenarios::{cluster, cluster_chaos};

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

/// Masters killed (and brought back as replicas), blackholed and reset under concurrent
/// `INCR`s and high-priority writes: no increment applied twice, no acknowledged write
/// lost.
/// `CLUSTER_CHAOS_SECS` runs it longer than the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_chaos() {
    let report = cluster_chaos::cluster_chaos(common::factory, cluster_chaos::chaos_duration())
        .await
        .expect("chaos scenario");
    println!("{report}");
    assert_eq!(report.violations, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert!(
        report.kills >= 1
            && report.blackholes >= 1
            && report.resets >= 1
            && report.ok > 0
            && report.acknowledged > 0,
        "{report}"
    );
}
