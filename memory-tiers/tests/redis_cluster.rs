//! The memory-tiers suite against a local Redis Cluster (3 masters, 3 replicas, spawned by
//! testkit), once per Redis driver compiled in: every command and script runs on
//! hash-tagged keys routed to each agent's shard, on the same path as a single server. Then tiers over per-shard breakers
//! ([`ShardedClient`]) with a killed master: agents on the other shards keep storing, the
//! dead shard's agent queues at once, and its queued writes land after the promotion.
//!
//! One cluster per driver, shared by the suite's tests (flushed between them), keeps this
//! file to a few cluster start-ups. Needs `redis-server` and `redis-cli`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use memory_tiers::{MemoryInput, TieredMemory};
use resilience_core::hash_slot;
use resilience_core::{
    ConnectionConfig, KvBackend, Priority, ShardedClient, StoreOutcome, TicketOutcome,
};
use serde_json::json;
use suite::MakeBackend;
use testkit::server::RedisCluster;

type Driver = resilient_redis::BackendKind;

async fn backend(cluster: &RedisCluster, driver: Driver) -> Arc<dyn KvBackend> {
    let config = ConnectionConfig::from_url(&cluster.url())
        .unwrap()
        .with_socket_timeout(Duration::from_secs(1))
        .with_socket_connect_timeout(Duration::from_secs(1));
    resilient_redis::connect_backend(&config, driver)
        .await
        .expect("connect")
}

/// The suite's tests that need no paused clock, one after another on one cluster.
async fn suite_on_cluster(driver: Driver) {
    let cluster = RedisCluster::spawn().await.expect("cluster");
    let b = backend(&cluster, driver).await;
    let mk: MakeBackend = Arc::new(move || Arc::clone(&b));
    macro_rules! run {
        ($($name:ident : $clock:ident),* $(,)?) => {$(
            cluster.flush_all().await.expect("flush");
            suite::$name(&mk).await;
        )*};
    }
    every_case!(run);
}

/// Tiers over a [`ShardedClient`]: a killed master only stops the agents of its shard.
async fn sharded_tiers_survive_a_killed_master(driver: Driver) {
    let mut cluster = RedisCluster::spawn().await.expect("cluster");
    let sharded = ShardedClient::builder_arc("stm", backend(&cluster, driver).await)
        .configure(|b| {
            b.breaker(
                resilience_core::CircuitBreakerConfig::default()
                    .circuit_threshold(3)
                    .with_health_check_interval(Duration::from_millis(100)),
            )
        })
        .build()
        .await
        .expect("sharded client");
    let mem = TieredMemory::builder_routed(sharded.clone(), sharded.clone())
        .build()
        .unwrap();
    // One agent per shard.
    let masters: Vec<u16> = cluster
        .slots()
        .await
        .unwrap()
        .iter()
        .map(|r| r.master)
        .collect();
    let ranges = cluster.slots().await.unwrap();
    let agent_on = |port: u16| {
        (0..100_000)
            .map(|n| format!("agent-{n}"))
            .find(|id| {
                // Both tiers of the agent on this master (each tier is its own hash tag).
                ["stm", "im"].iter().all(|tier| {
                    let slot = hash_slot(format!("{tier}:{id}").as_bytes());
                    ranges
                        .iter()
                        .any(|r| r.master == port && (r.start..=r.end).contains(&slot))
                })
            })
            .unwrap()
    };
    let ids: Vec<String> = masters.iter().map(|&p| agent_on(p)).collect();
    let agents: Vec<_> = ids.iter().map(|id| mem.agent(id).unwrap()).collect();
    for a in &agents {
        let r = a
            .store(MemoryInput::new(0, json!(0)), Priority::Normal)
            .await
            .unwrap();
        assert!(r.outcome.is_stored());
    }
    let dead_slot = hash_slot(format!("stm:{}", ids[0]).as_bytes());
    let killed = cluster.kill_master_owning(dead_slot).await.unwrap();
    // Writes go on until the dead shard's breaker is open; the others keep storing.
    let mut tickets = Vec::new();
    let mut step = 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = agents[0]
            .store(MemoryInput::new(step, json!(step)), Priority::Normal)
            .await
            .unwrap();
        match r.outcome {
            StoreOutcome::Queued(t) => tickets.push(t),
            other => panic!("dead shard: expected Queued, got {other:?}"),
        }
        for a in &agents[1..] {
            let r = a
                .store(MemoryInput::new(step, json!(step)), Priority::Normal)
                .await
                .unwrap();
            assert!(r.outcome.is_stored(), "healthy shard: {:?}", r.outcome);
        }
        step += 1;
        if agents[0].stm().client().circuit_state() == resilience_core::CircuitState::Open {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead shard's breaker never opened"
        );
        // Later writes queue behind the first (same agent), so the breaker opens from the
        // replay worker's failures: give it time.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Open: a store on the dead shard is queued without waiting on the network, which the
    // client's call counter shows (no call reached the backend). How fast that is, is the
    // bench's to measure (`bench --scenario open`).
    let dead_client = agents[0].stm().client();
    let calls_before = dead_client.stats().calls;
    let r = agents[0]
        .store(MemoryInput::new(step, json!(step)), Priority::Normal)
        .await
        .unwrap();
    assert_eq!(
        dead_client.stats().calls,
        calls_before,
        "a store on the open shard reached the backend"
    );
    match r.outcome {
        StoreOutcome::Queued(t) => tickets.push(t),
        other => panic!("expected Queued, got {other:?}"),
    }
    cluster
        .wait_for_new_master(dead_slot, killed, Duration::from_secs(20))
        .await
        .expect("replica promoted");
    for t in tickets {
        let outcome = tokio::time::timeout(Duration::from_secs(20), t.wait())
            .await
            .expect("replayed in time");
        assert_eq!(outcome, TicketOutcome::Completed);
    }
    let steps: Vec<u64> = agents[0]
        .recent(100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry.step_number)
        .collect();
    // Every queued write landed (step 0, written before the kill, survives only if it
    // reached the replica first: replication is asynchronous).
    for s in 1..=step {
        assert!(steps.contains(&s), "step {s} missing: {steps:?}");
    }
    for s in &sharded.stats() {
        if s.stats.name != agents[0].stm().client().name() {
            assert_eq!(s.stats.rejected, 0, "{s:?}");
        }
    }
}

mod redis_rs {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suite_on_cluster() {
        super::suite_on_cluster(super::Driver::RedisRs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sharded_tiers_survive_a_killed_master() {
        super::sharded_tiers_survive_a_killed_master(super::Driver::RedisRs).await;
    }
}

mod fred {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suite_on_cluster() {
        super::suite_on_cluster(super::Driver::Fred).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sharded_tiers_survive_a_killed_master() {
        super::sharded_tiers_survive_a_killed_master(super::Driver::Fred).await;
    }
}
