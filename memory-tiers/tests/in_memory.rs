//! The memory-tiers suite on `InMemoryBackend` (with tokio's paused clock where time
//! matters), plus the tests only the in-memory backend can run (expiry by advancing the
//! clock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use backend_memory::InMemoryBackend;
use memory_tiers::{MemoryInput, StmConfig, TieredMemory};
use resilience_core::{Command, KvBackend, Priority};
use serde_json::json;
use suite::MakeBackend;

fn in_memory() -> MakeBackend {
    Arc::new(|| {
        let b = InMemoryBackend::new();
        Arc::new(b) as Arc<dyn KvBackend>
    })
}

/// One test per case of the suite, on the clock the case needs.
macro_rules! in_memory_cases {
    ($($name:ident : $clock:ident),* $(,)?) => {$(
        in_memory_case!($name, $clock);
    )*
        /// The names of every case, for the completeness check below.
        const CASES: &[&str] = &[$(stringify!($name)),*];
    };
}

macro_rules! in_memory_case {
    ($name:ident, paused) => {
        #[tokio::test(start_paused = true)]
        async fn $name() {
            suite::$name(&in_memory()).await;
        }
    };
    ($name:ident, real) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            suite::$name(&in_memory()).await;
        }
    };
}

every_case!(in_memory_cases);

/// The case list names every case of the suite: each `pub(crate) async fn …(mk:
/// &MakeBackend)` in its sources, and nothing else.
#[test]
fn the_case_list_names_every_case_of_the_suite() {
    let sources = [
        include_str!("suite/mod.rs"),
        include_str!("suite/recall.rs"),
    ];
    let mut defined: Vec<&str> = sources
        .iter()
        .flat_map(|source| source.lines())
        .filter_map(|line| {
            let rest = line.strip_prefix("pub(crate) async fn ")?;
            let (name, args) = rest.split_once('(')?;
            args.starts_with("mk: &MakeBackend").then_some(name)
        })
        .collect();
    defined.sort_unstable();
    let mut listed = CASES.to_vec();
    listed.sort_unstable();
    assert!(defined.len() >= 15, "the instrument found only {defined:?}");
    assert_eq!(listed, defined);
}

/// Expired entries disappear from every query and from `count`, and a read never slides
/// an entry's expiry.
#[tokio::test(start_paused = true)]
async fn expired_entries_disappear_everywhere() {
    let b = InMemoryBackend::new();
    let c = suite::client("t", b.clone());
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .stm_config(StmConfig::default().with_ttl(Duration::from_secs(10)))
        .build()
        .unwrap();
    let agent = mem.agent("forgetful").unwrap();
    let store = |step: u64| {
        let agent = agent.clone();
        async move {
            agent
                .store(MemoryInput::new(step, json!(step)), Priority::Normal)
                .await
                .unwrap()
                .memory_id
        }
    };
    let old1 = store(1).await;
    let old2 = store(2).await;
    tokio::time::advance(Duration::from_secs(6)).await;
    let fresh = store(3).await;
    // A read at 6 s must not extend old1's life.
    assert!(agent.get(old1).await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(5)).await;

    let only_fresh = |found: Vec<memory_tiers::Retrieved>| {
        found.iter().map(|r| r.entry.memory_id).collect::<Vec<_>>() == vec![fresh]
    };
    assert!(only_fresh(agent.recent(10).await.unwrap()));
    assert!(only_fresh(
        agent.by_time_range(0, u64::MAX / 2, 10).await.unwrap()
    ));
    assert!(only_fresh(agent.by_step_range(0, 100, 10).await.unwrap()));
    assert!(only_fresh(agent.by_importance(0.0, 1.0, 10).await.unwrap()));
    assert_eq!(agent.count().await.unwrap().stm, 1);
    assert!(agent.get(old1).await.unwrap().is_none());
    assert!(agent.get(old2).await.unwrap().is_none());
    // The expired ids left the indexes.
    let zcard = |key: String| {
        let c = c.clone();
        async move { c.zcard(key).await.unwrap() }
    };
    let k = agent.stm().keys().clone();
    assert_eq!(zcard(k.index.clone()).await, 4, "one entry's four members");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(agent.count().await.unwrap().stm, 0);
    assert!(agent.recent(10).await.unwrap().is_empty());
    // Nothing lingers: the indexes expired with their last entry.
    assert_eq!(b.len(), 0, "keys left after everything expired");
    let _ = c.execute(Command::Ping).await.unwrap();
}

/// A maintenance pass moves entries about to expire from STM to IM.
#[tokio::test(start_paused = true)]
async fn maintain_moves_entries_near_expiry() {
    let (c, _b) = memory_tiers::connect_in_memory("t");
    let mem = TieredMemory::builder(c.clone(), c)
        .stm_config(
            StmConfig::default()
                .with_ttl(Duration::from_secs(3600))
                .with_near_expiry(Duration::from_secs(600)),
        )
        .build()
        .unwrap();
    let agent = mem.agent("aging").unwrap();
    let old = agent
        .store(MemoryInput::new(1, json!("old")), Priority::Normal)
        .await
        .unwrap()
        .memory_id;
    tokio::time::advance(Duration::from_secs(1800)).await;
    let young = agent
        .store(MemoryInput::new(2, json!("young")), Priority::Normal)
        .await
        .unwrap()
        .memory_id;
    let report = agent.maintain().await.unwrap();
    assert_eq!(report.moved, 0);
    tokio::time::advance(Duration::from_secs(1300)).await;
    let report = agent.maintain().await.unwrap();
    assert_eq!(report.moved, 1);
    assert_eq!((report.stm_count, report.im_count), (1, 1));
    assert!(agent.im().get(old, false).await.unwrap().is_some());
    assert!(agent.stm().get(young, false).await.unwrap().is_some());
}

/// The background maintenance task finishes moves that failed on write, lowest value
/// (importance, then age) first.
#[tokio::test(start_paused = true)]
async fn background_maintenance_moves_lowest_value_first() {
    let b = InMemoryBackend::new();
    let (im_backend, im_faults) = testkit::faulty::FaultyBackend::new(b.clone());
    let c = suite::client("stm", b.clone());
    let mem = TieredMemory::builder(c, suite::client("im", im_backend))
        .stm_config(suite::small_stm(3, 0))
        .build()
        .unwrap();
    let agent = mem.agent("bg").unwrap();
    im_faults.set_outage(true);
    let mut ids = Vec::new();
    for (step, importance) in [0.9, 0.1, 0.5, 0.2, 0.8, 0.5].into_iter().enumerate() {
        let r = agent
            .store(
                MemoryInput::new(step as u64, json!(step)).importance(importance),
                Priority::Normal,
            )
            .await
            .unwrap();
        ids.push(r.memory_id);
    }
    assert_eq!(
        agent.stm().count().await.unwrap(),
        6,
        "moves failed: all still in STM"
    );
    im_faults.set_outage(false);
    let task = mem.spawn_maintenance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(61)).await;
    let mut counts = agent.count().await.unwrap();
    for _ in 0..10 {
        if counts.stm == 3 {
            break;
        }
        // The IM client's breaker may still be open on the first pass.
        tokio::time::sleep(Duration::from_secs(60)).await;
        counts = agent.count().await.unwrap();
    }
    task.abort();
    assert_eq!((counts.stm, counts.im), (3, 3));
    // Moved: 0.1, 0.2 and the older of the two 0.5s.
    for (i, in_im) in [false, true, true, true, false, false]
        .into_iter()
        .enumerate()
    {
        let found = agent.im().get(ids[i], false).await.unwrap().is_some();
        assert_eq!(found, in_im, "entry {i}");
        assert_eq!(
            agent.stm().get(ids[i], false).await.unwrap().is_some(),
            !in_im,
            "entry {i}"
        );
    }
}

/// During a long outage the fallback keeps at most STM's capacity, the most valuable first.
#[tokio::test(start_paused = true)]
async fn fallback_is_bounded() {
    let b = InMemoryBackend::new();
    let (faulty, faults) = testkit::faulty::FaultyBackend::new(b);
    let c = suite::client("stm", faulty);
    let (fb, fb_backend) = memory_tiers::connect_in_memory("fallback");
    let mem = TieredMemory::builder(c.clone(), c)
        .stm_config(suite::small_stm(5, 0))
        .fallback(fb)
        .build()
        .unwrap();
    let agent = mem.agent("long-outage").unwrap();
    faults.set_outage(true);
    for step in 0..8u64 {
        let r = agent
            .store(
                MemoryInput::new(step, json!(step)).importance(step as f64 / 10.0),
                Priority::Low,
            )
            .await
            .unwrap();
        assert!(r.in_fallback);
    }
    let recent = agent.recent(100).await.unwrap();
    let steps: Vec<u64> = recent.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(steps, vec![7, 6, 5, 4, 3]);
    assert!(fb_backend.len() <= 5 + 4, "entries plus four indexes");
}

/// With per-shard clients, each agent's handle uses the client of its slot's shard: an
/// open breaker on one shard queues that agent's writes and leaves the other's alone.
#[tokio::test(start_paused = true)]
async fn routed_tiers_use_the_client_of_the_agents_shard() {
    use resilience_core::hash_slot;
    use resilience_core::{ShardedClient, StoreOutcome};
    let backend = in_memory()();
    let sharded = ShardedClient::builder_arc("stm", backend)
        .build_with_ranges(vec![vec![(0, 8191)], vec![(8192, 16383)]])
        .unwrap();
    let mem = TieredMemory::builder_routed(sharded.clone(), sharded.clone())
        .build()
        .unwrap();
    let on = |low: bool| {
        (0..1000)
            .map(|n| format!("agent-{n}"))
            .find(|id| {
                // Both tiers of the agent on the same shard.
                let stm = hash_slot(format!("stm:{id}").as_bytes()) < 8192;
                let im = hash_slot(format!("im:{id}").as_bytes()) < 8192;
                stm == low && im == low
            })
            .unwrap()
    };
    let (low, high) = (
        mem.agent(&on(true)).unwrap(),
        mem.agent(&on(false)).unwrap(),
    );
    assert_eq!(low.stm().client().name(), "stm[0-8191]");
    assert_eq!(high.stm().client().name(), "stm[8192-16383]");
    high.stm().client().circuit_breaker().force_open();
    let r = low
        .store(MemoryInput::new(1, json!(1)), Priority::Normal)
        .await
        .unwrap();
    assert!(r.outcome.is_stored(), "{:?}", r.outcome);
    let r = high
        .store(MemoryInput::new(1, json!(1)), Priority::Normal)
        .await
        .unwrap();
    assert!(
        matches!(r.outcome, StoreOutcome::Queued(_)),
        "{:?}",
        r.outcome
    );
    assert_eq!(sharded.stats()[0].stats.rejected, 0);
}
