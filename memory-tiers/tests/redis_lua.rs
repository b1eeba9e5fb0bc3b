//! The memory-tiers suite against a real `redis-server` (spawned on a free port by
//! testkit, never 6379): the same commands and Lua sources the in-memory tests run, on a
//! real server.
//!
//! Every test connects as a least-privilege ACL user, as a managed service hands out: no
//! `@admin`, no `@dangerous`, keys under the tiers' namespace only
//! (`testkit::scenarios::least_privilege`).
//!
//! Every test runs once per Redis driver compiled in (features `redis-rs` and `fred`).
//!
//! Needs `redis-server` on the PATH (`apt-get install redis-server`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use memory_tiers::{DEFAULT_NAMESPACE, MemoryInput, TieredMemory, connect_in_memory};
use resilience_core::{KvBackend, Priority, StoreOutcome, TicketOutcome};
use serde_json::json;
use suite::MakeBackend;
use testkit::scenarios::least_privilege;
use testkit::server::RedisServer;

/// Which driver a test runs on.
type Driver = resilient_redis::BackendKind;

/// A backend factory over one connected driver backend (clones share its connection).
async fn on(server: &RedisServer, driver: Driver) -> MakeBackend {
    let config = least_privilege::as_user(server.connection_config());
    let backend: Arc<dyn KvBackend> = resilient_redis::connect_backend(&config, driver)
        .await
        .expect("connect");
    Arc::new(move || Arc::clone(&backend))
}

async fn server() -> RedisServer {
    RedisServer::builder()
        .acl_user(least_privilege::user(DEFAULT_NAMESPACE))
        .spawn()
        .await
        .expect("redis-server must be installed (apt-get install redis-server)")
}

/// One test per suite case, on the driver of the module it is expanded in (`DRIVER`).
macro_rules! cases_on_driver {
    ($($name:ident : $clock:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = super::server().await;
            super::suite::$name(&super::on(&server, DRIVER).await).await;
        }
    )*};
}

/// Every suite case, on one driver, then the tests of this file.
macro_rules! on_driver {
    ($driver:expr) => {
        const DRIVER: super::Driver = $driver;
        every_case!(cases_on_driver);

        #[tokio::test]
        async fn stopped_server_queues_then_replays() {
            super::stopped_server_queues_then_replays($driver).await;
        }

        #[tokio::test]
        async fn redis_and_in_memory_agree() {
            super::redis_and_in_memory_agree($driver).await;
        }

        #[tokio::test]
        async fn recent_reads_in_index_order_and_skips_vanished_entries() {
            super::recent_reads_in_index_order_and_skips_vanished_entries($driver).await;
        }

        #[tokio::test]
        async fn a_search_reads_its_entries_through_the_client_cache() {
            super::a_search_reads_its_entries_through_the_client_cache($driver).await;
        }
    };
}

/// With a client cache (RESP3 tracking), a repeated search answers its entries from the
/// cache: the server runs no `GET` for them, and the results are the uncached client's.
/// A memory deleted through this client is gone at once; one deleted through another
/// client is gone once the server's invalidation arrived.
async fn a_search_reads_its_entries_through_the_client_cache(driver: Driver) {
    use memory_tiers::Filter;
    use resilience_core::{CacheConfig, ResilientClient};

    let server = server().await;
    let tracked = least_privilege::as_user(server.connection_config()).with_client_tracking(true);
    let backend = resilient_redis::connect_backend(&tracked, driver)
        .await
        .unwrap();
    let cached = ResilientClient::builder_arc("cached", backend)
        .client_cache(CacheConfig::default())
        .build()
        .unwrap();
    assert!(cached.has_read_cache());
    let plain = suite::client("plain", (on(&server, driver).await)());
    assert!(!plain.has_read_cache());
    let with_cache = TieredMemory::builder(cached.clone(), cached.clone())
        .build()
        .unwrap();
    let without = TieredMemory::builder(plain.clone(), plain.clone())
        .build()
        .unwrap();
    let agent = with_cache.agent("cached-search").unwrap();
    let other = without.agent("cached-search").unwrap();
    for step in 0..30 {
        let input = MemoryInput::new(step, json!({ "text": format!("note {step}") }))
            .embedding(suite::vector(step));
        assert!(
            agent
                .store(input, Priority::Normal)
                .await
                .unwrap()
                .outcome
                .is_stored()
        );
    }
    let query = suite::vector(7);
    let ids = |found: &[memory_tiers::Scored]| -> Vec<memory_tiers::Ulid> {
        found.iter().map(|s| s.memory.entry.memory_id).collect()
    };
    // Entries are read with `GET` through the cache, with one `MGET` without one.
    let gets = || async {
        server.command_calls("get").await.unwrap() + server.command_calls("mget").await.unwrap()
    };
    let first = agent.similar(&query, 5, &Filter::new()).await.unwrap();
    assert_eq!(
        ids(&first),
        ids(&other.similar(&query, 5, &Filter::new()).await.unwrap())
    );
    let before = gets().await;
    let again = agent.similar(&query, 5, &Filter::new()).await.unwrap();
    assert_eq!(ids(&again), ids(&first));
    // The STM block's delta is `GETRANGE`s and the IM block, which does not exist, is
    // asked for whole: one `GET`, and no entry was read from the server.
    assert_eq!(
        gets().await - before,
        1,
        "a warm search read entries from the server"
    );

    // Deleted through this client: gone from the next search at once.
    assert!(agent.delete(first[0].memory.entry.memory_id).await.unwrap());
    let after = agent.similar(&query, 5, &Filter::new()).await.unwrap();
    assert!(!ids(&after).contains(&first[0].memory.entry.memory_id));
    // Deleted through another client: gone once the invalidation arrived.
    let gone = after[0].memory.entry.memory_id;
    assert!(other.delete(gone).await.unwrap());
    let key = agent.stm().keys().entry(&gone.to_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cached.is_cached(&key) {
        assert!(
            std::time::Instant::now() < deadline,
            "no invalidation within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let last = agent.similar(&query, 5, &Filter::new()).await.unwrap();
    assert!(!ids(&last).contains(&gone));
    assert_eq!(
        ids(&last),
        ids(&other.similar(&query, 5, &Filter::new()).await.unwrap())
    );
}

mod redis_rs {
    on_driver!(super::Driver::RedisRs);
}

mod fred {
    on_driver!(super::Driver::Fred);
}

/// A real server stopped: Normal writes queue and are readable from the fallback; after
/// the restart (which also lost the script cache) every queued write lands.
async fn stopped_server_queues_then_replays(driver: Driver) {
    let mut server = server().await;
    let backend = (on(&server, driver).await)();
    let c = suite::client("stm", backend);
    let (fb, _) = connect_in_memory("fallback");
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .fallback(fb)
        .build()
        .unwrap();
    let agent = mem.agent("stopped").unwrap();
    assert!(
        agent
            .store(MemoryInput::new(0, json!(0)), Priority::Normal)
            .await
            .unwrap()
            .outcome
            .is_stored()
    );
    server.stop().await.unwrap();
    let mut tickets = Vec::new();
    for step in 1..=3 {
        let r = agent
            .store(MemoryInput::new(step, json!(step)), Priority::Normal)
            .await
            .unwrap();
        assert!(r.in_fallback);
        match r.outcome {
            StoreOutcome::Queued(t) => tickets.push(t),
            other => panic!("expected Queued, got {other:?}"),
        }
    }
    let recent = agent.recent(10).await.unwrap();
    assert_eq!(recent.len(), 3);
    assert!(
        recent
            .iter()
            .all(|r| r.source == memory_tiers::Source::Fallback)
    );
    server.restart().await.unwrap();
    for t in tickets {
        let outcome = tokio::time::timeout(Duration::from_secs(30), t.wait())
            .await
            .expect("replayed in time");
        assert_eq!(outcome, TicketOutcome::Completed);
    }
    // The restarted server lost the entry written before the stop (no persistence), and
    // holds the three replayed ones.
    let recent = agent.recent(10).await.unwrap();
    let steps: Vec<u64> = recent.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(steps, vec![3, 2, 1]);
    assert!(recent.iter().all(|r| r.source == memory_tiers::Source::Stm));
}

/// `recent(n)` returns the newest entries in the index's order (timestamp, then memory
/// id for ties), whole; an entry gone from under its index is skipped and the next one
/// read in its place, so the limit is still met.
async fn recent_reads_in_index_order_and_skips_vanished_entries(driver: Driver) {
    let server = server().await;
    let c = suite::client("recent", (on(&server, driver).await)());
    let mem = TieredMemory::builder(c.clone(), c.clone()).build().unwrap();
    let agent = mem.agent("sorted").unwrap();
    let mut stored = Vec::new();
    for step in 0..30u64 {
        // Three memories per timestamp: ties are ordered by memory id.
        let r = agent
            .store(
                MemoryInput::new(step, json!({"step": step}))
                    .importance(0.5)
                    .timestamp(1_000 + step / 3),
                Priority::Normal,
            )
            .await
            .unwrap();
        stored.push((1_000 + step / 3, r.memory_id));
    }
    stored.sort();
    stored.reverse();
    let expected: Vec<_> = stored.iter().take(20).map(|(_, id)| *id).collect();
    let recent = agent.recent(20).await.unwrap();
    let got: Vec<_> = recent.iter().map(|r| r.entry.memory_id).collect();
    assert_eq!(got, expected);
    let by_id = agent.get(recent[0].entry.memory_id).await.unwrap().unwrap();
    assert_eq!(recent[0].entry.content, by_id.entry.content);
    assert_eq!(recent[0].entry.metadata.importance_score, 0.5);

    // An entry gone from under its index (as when its key is evicted):
    let gone = recent[0].entry.memory_id;
    let deleted = c
        .delete([agent.stm().keys().entry(&gone.to_string())])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let recent = agent.recent(20).await.unwrap();
    assert_eq!(recent.len(), 20, "the next entry is read in its place");
    assert!(recent.iter().all(|r| r.entry.memory_id != gone));
    let got: Vec<_> = recent.iter().map(|r| r.entry.memory_id).collect();
    let expected: Vec<_> = stored.iter().skip(1).take(20).map(|(_, id)| *id).collect();
    assert_eq!(got, expected);
}

/// Every operation gives the same answers on a real server and on the in-memory backend
/// (which runs the same commands and the same Lua sources).
async fn redis_and_in_memory_agree(driver: Driver) {
    let server = server().await;
    let redis = suite::client("redis", (on(&server, driver).await)());
    let (memory, _) = connect_in_memory("memory");
    let mut seen = Vec::new();
    for c in [redis, memory] {
        let mem = TieredMemory::builder(c.clone(), c.clone())
            .stm_config(suite::small_stm(4, 1))
            .build()
            .unwrap();
        let agent = mem.agent("twin").unwrap();
        let mut log = Vec::new();
        let mut ids = Vec::new();
        for step in 0..7u64 {
            let r = agent
                .store(
                    MemoryInput::new(
                        step,
                        json!({"s": step, "f": 0.123456, "raw_observation": 1}),
                    )
                    .importance((step as f64 * 0.37) % 1.0)
                    .timestamp(1_000 + step),
                    Priority::Normal,
                )
                .await
                .unwrap();
            ids.push(r.memory_id);
        }
        let strip = |v: Vec<memory_tiers::Retrieved>| {
            v.into_iter()
                .map(|r| {
                    (
                        r.entry.step_number,
                        r.entry.content,
                        r.entry.metadata.importance_score,
                        r.entry.metadata.retrieval_count,
                        format!("{:?}", r.source),
                    )
                })
                .collect::<Vec<_>>()
        };
        log.push(format!("{:?}", agent.count().await.unwrap()));
        log.push(format!("{:?}", strip(agent.recent(10).await.unwrap())));
        log.push(format!(
            "{:?}",
            strip(agent.by_step_range(2, 5, 10).await.unwrap())
        ));
        log.push(format!(
            "{:?}",
            strip(agent.by_time_range(1_001, 1_004, 2).await.unwrap())
        ));
        log.push(format!(
            "{:?}",
            strip(agent.by_importance(0.2, 0.8, 10).await.unwrap())
        ));
        for id in &ids {
            let r = agent
                .get(*id)
                .await
                .unwrap()
                .map(|r| (r.entry.metadata.retrieval_count, format!("{:?}", r.source)));
            log.push(format!("{r:?}"));
            log.push(format!(
                "{:?}",
                agent.adjust_importance(*id, 0.5).await.unwrap()
            ));
        }
        log.push(format!("{:?}", agent.delete(ids[6]).await.unwrap()));
        log.push(format!("{:?}", agent.maintain().await.unwrap()));
        log.push(format!("{:?}", agent.clear().await.unwrap()));
        log.push(format!("{:?}", agent.count().await.unwrap()));
        seen.push(log);
    }
    assert_eq!(seen[0], seen[1]);
}
