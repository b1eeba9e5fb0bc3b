//! The local Redis Cluster spawner: it forms, and it agrees with our hash slots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resilience_core::hash_slot;
use testkit::server::{RedisCluster, RespConnection, RespReply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_forms_and_agrees_on_hash_slots() {
    let started = std::time::Instant::now();
    let cluster = RedisCluster::spawn().await.expect("cluster");
    eprintln!("cluster ready in {:?}", started.elapsed());
    let slots = cluster.slots().await.unwrap();
    assert_eq!(slots.len(), 3, "{slots:?}");
    assert!(slots.iter().all(|r| r.replicas.len() == 1), "{slots:?}");
    assert_eq!(
        slots
            .iter()
            .map(|r| u32::from(r.end - r.start) + 1)
            .sum::<u32>(),
        16384
    );
    let config = resilience_core::ConnectionConfig::from_url(&cluster.url()).unwrap();
    assert_eq!(config.cluster_nodes, cluster.seed_nodes());

    // Our slot function agrees with the server's.
    let addr = format!("127.0.0.1:{}", cluster.ports()[0]).parse().unwrap();
    let mut conn = RespConnection::connect(addr).await.unwrap();
    for key in [
        "foo",
        "{user1000}.following",
        "agent_memory:stm:{a-1}:timeline",
        "",
        "x{}y",
    ] {
        let reply = conn.command(&["CLUSTER", "KEYSLOT", key]).await.unwrap();
        assert_eq!(
            reply,
            RespReply::Int(i64::from(hash_slot(key.as_bytes()))),
            "{key:?}"
        );
    }

    // Failover (kill_master_owning, wait_for_new_master) is exercised by the backends'
    // tests/scenarios.rs through testkit::scenarios::cluster.
}
