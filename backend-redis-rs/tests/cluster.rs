//! redis-rs in Redis Cluster mode against a local cluster (3 masters, 3 replicas, spawned
//! by testkit): commands with `ASK`/`MOVED`, `MULTI` and `EVALSHA` on hash-tagged keys, and
//! a killed master with per-shard breakers. Needs `redis-server` and `redis-cli`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use backend_redis_rs::RedisRsBackend;
use resilience_core::{ConnectionConfig, KvBackend};
use testkit::scenarios::{BackendFuture, cluster};

fn connect(config: ConnectionConfig) -> BackendFuture {
    Box::pin(async move {
        let backend = RedisRsBackend::connect(&config).await?;
        Ok(Arc::new(backend) as Arc<dyn KvBackend>)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_follow_ask_and_moved_and_run_multi_and_evalsha() {
    cluster::cluster_commands(connect)
        .await
        .expect("cluster commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_stops_only_its_shard() {
    let report = cluster::cluster_failover(connect)
        .await
        .expect("failover scenario");
    println!("{report}");
}
