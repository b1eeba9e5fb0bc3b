//! The memory-tiers test suite, written once against a backend factory so it can run on
//! `InMemoryBackend` (tests/in_memory.rs) and, later, on the Redis backends against a real
//! redis-server. Tests that need tokio's paused clock say so.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use memory_tiers::{
    CompressionLevel, Error, ImConfig, MemoryInput, Source, StmConfig, Tier, TieredMemory,
    connect_in_memory,
};
use resilience_core::{
    Command, ErrorKind, KvBackend, Priority, ResilientClient, StoreOutcome, TicketOutcome,
};
use serde_json::json;
use testkit::faulty::FaultyBackend;

mod recall;
pub(crate) use recall::*;

/// The one list of the suite's cases, each with the clock it needs on the in-memory
/// backend (`paused`: tokio's paused clock; `real`: a multi-thread runtime). Every file
/// that runs the suite expands its own test per case from this list, through a macro of
/// its own: `every_case!(that_macro)`. A case missing here runs nowhere, which
/// `tests/in_memory.rs` checks against the `pub(crate) async fn` cases of this module.
macro_rules! every_case {
    ($run:ident) => {
        $run!(
            store_read_query_delete: paused,
            importance_stays_in_unit_interval: paused,
            every_key_has_a_ttl_and_reads_keep_it: paused,
            concurrent_readers_count_exactly: real,
            overflow_moves_to_im_without_loss: paused,
            failed_and_interrupted_moves: paused,
            compression_levels_round_trip: paused,
            invalid_input_and_key_isolation: paused,
            cut_off_writes_are_all_or_nothing: paused,
            outage_queues_writes_and_fallback_serves_reads: paused,
            similar_ranks_across_tiers_exactly: paused,
            similar_finds_quantized_memories: paused,
            filters_and_content_search: paused,
            vector_blocks_compact_and_stay_searchable: paused,
            warm_searches_read_only_what_was_appended: paused,
            searches_answer_from_the_fallback_during_an_outage: paused,
            hybrid_scoring_ranks_as_computed_by_hand: paused,
        );
    };
}

/// Makes a fresh, empty backend (with the tiers' natives registered, for in-memory).
pub(crate) type MakeBackend = Arc<dyn Fn() -> Arc<dyn KvBackend> + Send + Sync>;

pub(crate) fn client(name: &str, backend: impl KvBackend) -> ResilientClient {
    ResilientClient::builder(name, backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .with_health_check_interval(Duration::from_millis(200)),
        )
        .build()
        .expect("valid client settings")
}

pub(crate) fn small_stm(capacity: usize, slack: usize) -> StmConfig {
    StmConfig::default()
        .with_capacity(capacity)
        .with_transition_slack(slack)
}

fn input(step: u64) -> MemoryInput {
    MemoryInput::new(
        step,
        json!({"step": step, "text": format!("memory {step}")}),
    )
}

async fn pttl(c: &ResilientClient, key: &str) -> i64 {
    c.execute(Command::Pttl {
        key: key.to_owned(),
    })
    .await
    .unwrap()
    .into_int()
    .unwrap()
}

async fn exists(c: &ResilientClient, keys: Vec<String>) -> i64 {
    c.execute(Command::Exists { keys })
        .await
        .unwrap()
        .into_int()
        .unwrap()
}

/// Store, read back by id, range queries, count, delete, clear.
pub(crate) async fn store_read_query_delete(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c).build().unwrap();
    let agent = mem.agent("agent-1").unwrap();
    let mut ids = Vec::new();
    for step in 0..10u64 {
        let r = agent
            .store(
                input(step)
                    .importance(step as f64 / 10.0)
                    .timestamp(1_000_000 + step * 1000),
                Priority::Normal,
            )
            .await
            .unwrap();
        assert!(r.outcome.is_stored());
        ids.push(r.memory_id);
    }
    let got = agent.get(ids[3]).await.unwrap().unwrap();
    assert_eq!(got.source, Source::Stm);
    assert_eq!(got.entry.step_number, 3);
    assert_eq!(got.entry.content["text"], "memory 3");
    assert_eq!(got.entry.metadata.retrieval_count, 1);
    assert_eq!(got.entry.metadata.current_tier, Tier::Stm);

    let recent = agent.recent(4).await.unwrap();
    let steps: Vec<u64> = recent.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(steps, vec![9, 8, 7, 6]);

    let by_time = agent.by_time_range(1_002_000, 1_005_000, 3).await.unwrap();
    let steps: Vec<u64> = by_time.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(steps, vec![2, 3, 4]);

    let by_step = agent.by_step_range(5, 100, 100).await.unwrap();
    assert_eq!(by_step.len(), 5);
    assert_eq!(by_step[0].entry.step_number, 5);

    let important = agent.by_importance(0.75, 1.0, 10).await.unwrap();
    let steps: Vec<u64> = important.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(steps, vec![9, 8]);

    assert_eq!(agent.count().await.unwrap().stm, 10);
    // Huge limits are capped, not sent as out-of-range integers.
    assert_eq!(agent.recent(usize::MAX).await.unwrap().len(), 10);
    let all = agent
        .by_importance(f64::NEG_INFINITY, f64::INFINITY, usize::MAX)
        .await
        .unwrap();
    assert_eq!(all.len(), 10);
    assert!(agent.by_step_range(7, 3, 10).await.unwrap().is_empty());
    assert!(agent.delete(ids[0]).await.unwrap());
    assert!(!agent.delete(ids[0]).await.unwrap());
    assert!(agent.get(ids[0]).await.unwrap().is_none());
    assert_eq!(agent.count().await.unwrap().total(), 9);
    assert_eq!(agent.clear().await.unwrap(), 9);
    assert_eq!(agent.count().await.unwrap().total(), 0);
    assert!(agent.recent(10).await.unwrap().is_empty());
}

/// Importance is clamped on write and on adjustment.
pub(crate) async fn importance_stays_in_unit_interval(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c).build().unwrap();
    let agent = mem.agent("a").unwrap();
    let hi = agent
        .store(input(1).importance(7.5), Priority::Normal)
        .await
        .unwrap();
    let lo = agent
        .store(input(2).importance(-3.0), Priority::Normal)
        .await
        .unwrap();
    let e = agent.get(hi.memory_id).await.unwrap().unwrap().entry;
    assert_eq!(e.metadata.importance_score, 1.0);
    let e = agent.get(lo.memory_id).await.unwrap().unwrap().entry;
    assert_eq!(e.metadata.importance_score, 0.0);
    assert_eq!(
        agent.adjust_importance(hi.memory_id, 0.5).await.unwrap(),
        Some(1.0)
    );
    assert_eq!(
        agent.adjust_importance(lo.memory_id, 0.25).await.unwrap(),
        Some(0.25)
    );
    assert_eq!(
        agent.adjust_importance(lo.memory_id, -9.0).await.unwrap(),
        Some(0.0)
    );
    let top = agent.by_importance(0.9, 1.0, 10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].entry.memory_id, hi.memory_id);
    assert!(matches!(
        agent
            .store(input(3).importance(f64::NAN), Priority::Normal)
            .await,
        Err(Error::InvalidInput(_))
    ));
}

/// Every key a write creates has a TTL, and a read does not change it.
pub(crate) async fn every_key_has_a_ttl_and_reads_keep_it(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .stm_config(small_stm(2, 0))
        .build()
        .unwrap();
    let agent = mem.agent("ttl-agent").unwrap();
    let mut ids = Vec::new();
    for step in 0..3 {
        ids.push(
            agent
                .store(input(step), Priority::High)
                .await
                .unwrap()
                .memory_id,
        );
    }
    // One entry moved to IM: check both tiers' keys.
    for tier in [agent.stm(), agent.im()] {
        let key = &tier.keys().index;
        let t = pttl(&c, key).await;
        assert!(t > 0, "{key} has pttl {t}");
    }
    for id in &ids {
        let tier = if agent.stm().get(*id, false).await.unwrap().is_some() {
            agent.stm()
        } else {
            agent.im()
        };
        let key = tier.keys().entry(&id.to_string());
        let before = pttl(&c, &key).await;
        assert!(before > 0, "{key} has pttl {before}");
        agent.get(*id).await.unwrap().unwrap();
        let after = pttl(&c, &key).await;
        assert!(
            after > 0 && after <= before,
            "read changed {key}'s TTL: {before} -> {after}"
        );
    }
    // A counted read of an id that does not exist leaves no key behind, in any tier.
    let nowhere = memory_tiers::Ulid::generate();
    assert!(agent.get(nowhere).await.unwrap().is_none());
    for tier in [agent.stm(), agent.im()] {
        // One key per call: the tiers' hash tags may live on different cluster slots.
        let key = tier.keys().entry(&nowhere.to_string());
        assert_eq!(exists(&c, vec![key]).await, 0, "a missed read left a key");
    }
}

/// 50 concurrent readers of one memory: the count ends exactly at 50.
pub(crate) async fn concurrent_readers_count_exactly(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c).build().unwrap();
    let agent = mem.agent("readers").unwrap();
    let id = agent
        .store(input(1), Priority::Normal)
        .await
        .unwrap()
        .memory_id;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move {
            agent.get(id).await.unwrap().is_some()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let e = agent.stm().get(id, false).await.unwrap().unwrap();
    assert_eq!(e.metadata.retrieval_count, 50);
}

/// Writing 1,500 memories to an STM of 1,000 leaves at most 1,000 in STM and the rest in
/// IM: none lost, none duplicated.
pub(crate) async fn overflow_moves_to_im_without_loss(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c).build().unwrap();
    let agent = mem.agent("busy").unwrap();
    let mut ids = Vec::new();
    for step in 0..1500u64 {
        let r = agent
            .store(
                input(step).importance((step % 10) as f64 / 10.0),
                Priority::Normal,
            )
            .await
            .unwrap();
        assert!(r.outcome.is_stored());
        ids.push(r.memory_id);
    }
    let counts = agent.count().await.unwrap();
    assert!(counts.stm <= 1000, "{counts:?}");
    assert_eq!(counts.total(), 1500, "{counts:?}");
    let mut in_stm = 0;
    for id in &ids {
        let s = agent.stm().get(*id, false).await.unwrap().is_some();
        let i = agent.im().get(*id, false).await.unwrap().is_some();
        assert!(s ^ i, "{id} in stm: {s}, in im: {i}");
        in_stm += usize::from(s);
    }
    assert_eq!(in_stm as u64, counts.stm);
    let all: HashSet<_> = agent
        .recent(2000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry.memory_id)
        .collect();
    assert_eq!(all.len(), 1500);
}

/// An IM write failing during a transition keeps the STM copy; a later pass finishes the
/// move. A move interrupted after the IM write (STM delete failed) duplicates nothing.
pub(crate) async fn failed_and_interrupted_moves(mk: &MakeBackend) {
    let shared = mk();
    let stm_client = client("stm", shared.clone());
    let (im_backend, im_faults) = FaultyBackend::new(shared.clone());
    let im_client = client("im", im_backend);
    let mem = TieredMemory::builder(stm_client.clone(), im_client)
        .stm_config(small_stm(3, 0))
        .build()
        .unwrap();
    let agent = mem.agent("mover").unwrap();
    im_faults.set_outage(true);
    let mut ids = Vec::new();
    for step in 0..4 {
        let r = agent
            .store(input(step).importance(0.1 * step as f64), Priority::Normal)
            .await
            .unwrap();
        assert!(r.outcome.is_stored());
        ids.push(r.memory_id);
    }
    // The move failed: all four are still in STM.
    assert_eq!(agent.stm().count().await.unwrap(), 4);
    assert!(agent.maintain().await.is_err());
    assert_eq!(agent.stm().count().await.unwrap(), 4);
    im_faults.set_outage(false);
    // Let the IM client's breaker close again.
    let mut report = None;
    for _ in 0..100 {
        match agent.maintain().await {
            Ok(r) => {
                report = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let report = report.expect("maintain succeeds once IM is back");
    assert_eq!(report.moved, 1);
    assert_eq!((report.stm_count, report.im_count), (3, 1));
    assert!(agent.im().get(ids[0], false).await.unwrap().is_some());
    assert!(agent.stm().get(ids[0], false).await.unwrap().is_none());

    // Interrupted: IM written, STM delete fails.
    let delete_sha = resilience_core::script_sha1(
        memory_tiers::lua_sources()
            .iter()
            .find(|(n, _)| *n == "delete")
            .unwrap()
            .1,
    );
    let (stm_faulty, stm_faults) = FaultyBackend::new(shared.clone());
    let mem2 = TieredMemory::builder(client("stm2", stm_faulty), client("im2", shared.clone()))
        .stm_config(small_stm(3, 0))
        .build()
        .unwrap();
    let agent2 = mem2.agent("mover").unwrap();
    stm_faults.fail_when(
        move |c| matches!(c, Command::Evalsha { sha1, .. } if *sha1 == delete_sha),
        ErrorKind::Unavailable,
    );
    let extra = agent2
        .store(input(9).importance(0.0), Priority::Normal)
        .await
        .unwrap();
    assert!(extra.outcome.is_stored());
    // The lowest-value entry (the new one, importance 0) is now in both tiers.
    assert!(
        agent2
            .stm()
            .get(extra.memory_id, false)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        agent2
            .im()
            .get(extra.memory_id, false)
            .await
            .unwrap()
            .is_some()
    );
    let recent = agent2.recent(10).await.unwrap();
    let n = recent
        .iter()
        .filter(|r| r.entry.memory_id == extra.memory_id)
        .count();
    assert_eq!(n, 1, "reported once while in both tiers");
    stm_faults.clear();
    let mut done = false;
    for _ in 0..100 {
        if agent2.maintain().await.is_ok() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done);
    assert!(
        agent2
            .stm()
            .get(extra.memory_id, false)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        agent2
            .im()
            .get(extra.memory_id, false)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(agent2.count().await.unwrap().total(), 5);
}

async fn moved_entry(
    level: CompressionLevel,
    mk: &MakeBackend,
) -> (
    memory_tiers::MemoryEntry,
    ResilientClient,
    memory_tiers::AgentMemory,
) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .stm_config(small_stm(1, 0))
        .im_config(ImConfig::default().with_compression(level))
        .build()
        .unwrap();
    let agent = mem.agent("squeeze").unwrap();
    let content = json!({
        "score": 0.123456, "n": 42, "big": 12345678901u64, "name": "keep me",
        "raw_observation": "drop", "debug_info": {"x": 1}, "temporary_data": [1, 2],
        "nested": {"f": 1.98765, "list": [0.55555, 3]}
    });
    let first = agent
        .store(
            MemoryInput::new(7, content)
                .importance(0.123456)
                .embedding(vec![0.25, 0.123456]),
            Priority::Normal,
        )
        .await
        .unwrap();
    agent.get(first.memory_id).await.unwrap().unwrap();
    agent
        .store(input(8).importance(0.9), Priority::Normal)
        .await
        .unwrap();
    let moved = agent
        .im()
        .get(first.memory_id, false)
        .await
        .unwrap()
        .expect("moved to IM");
    (moved, c, agent)
}

/// Compression levels 1 and 2 keep what they promise; corrupt payloads are errors.
pub(crate) async fn compression_levels_round_trip(mk: &MakeBackend) {
    let (e, _, _) = moved_entry(CompressionLevel::Light, mk).await;
    assert_eq!(
        e.content,
        json!({"score": 0.123, "n": 42, "big": 12345678901u64, "name": "keep me",
               "nested": {"f": 1.988, "list": [0.556, 3]}})
    );
    assert_eq!(e.metadata.importance_score, 0.123);
    assert_eq!(e.metadata.compression_level, 1);
    assert_eq!(e.metadata.current_tier, Tier::Im);
    assert_eq!(
        e.metadata.retrieval_count, 1,
        "counters move with the entry"
    );
    assert_eq!(e.step_number, 7);
    // The embedding is quantized to one byte per value, scaled by the largest (exact).
    let embedding = e.embedding.clone().unwrap();
    assert_eq!(embedding[0], 0.25);
    assert!(
        (embedding[1] - 0.123456).abs() <= 0.5 * 0.25 / 127.0,
        "{embedding:?}"
    );

    let (e, c, agent) = moved_entry(CompressionLevel::Heavy, mk).await;
    assert_eq!(
        e.content,
        json!({"score": 0.1, "n": 42, "big": 12345678901u64, "name": "keep me",
               "nested": {"f": 2.0, "list": [0.6, 3]}})
    );
    assert_eq!(e.metadata.compression_level, 2);
    assert_eq!(e.metadata.importance_score, 0.1);
    let key = agent.im().keys().entry(&e.memory_id.to_string());
    let stored = c.get(key.clone()).await.unwrap().unwrap();
    assert_eq!(stored[0], memory_tiers::SCHEMA_VERSION);
    let put = |value: bytes::Bytes| {
        let (c, key) = (c.clone(), key.clone());
        async move {
            c.set(
                key,
                value,
                resilience_core::SetOptions::with_ttl(Duration::from_secs(600)),
            )
            .await
            .unwrap();
        }
    };

    // Truncated or garbage: corrupt. Another version, or a hash of the layouts before:
    // refused by its version. Never a panic, never a misread entry.
    for bad in [
        stored.slice(..stored.len() / 2),
        bytes::Bytes::from_static(b"\x04\xff\xff\xff"),
    ] {
        put(bad).await;
        let got = agent.get(e.memory_id).await;
        assert!(matches!(got, Err(Error::Corrupt(_))), "{got:?}");
    }
    let mut future = stored.to_vec();
    future[0] = memory_tiers::SCHEMA_VERSION + 1;
    put(bytes::Bytes::from(future)).await;
    let got = agent.im().get(e.memory_id, false).await;
    assert!(
        matches!(got, Err(Error::UnsupportedSchema { found, .. }) if found == memory_tiers::SCHEMA_VERSION + 1),
        "{got:?}"
    );
    let recent = agent.recent(10).await;
    assert!(
        matches!(recent, Err(Error::UnsupportedSchema { found, .. }) if found == memory_tiers::SCHEMA_VERSION + 1),
        "a query refuses it too: {recent:?}"
    );
    c.delete([key.clone()]).await.unwrap();
    // As the layouts before wrote it: a hash, with a TTL.
    c.hset(key.clone(), "e", "an entry of schema version 2")
        .await
        .unwrap();
    c.expire(key.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    for bump in [false, true] {
        let got = agent.im().get(e.memory_id, bump).await;
        assert!(
            matches!(got, Err(Error::UnsupportedSchema { found: 2, .. })),
            "{got:?}"
        );
    }
    let recent = agent.recent(10).await;
    assert!(
        matches!(recent, Err(Error::UnsupportedSchema { found: 2, .. })),
        "a query refuses it too: {recent:?}"
    );
}

/// Bad agent ids and oversized values are `InvalidInput`; distinct agents never share a
/// key.
pub(crate) async fn invalid_input_and_key_isolation(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .stm_config(StmConfig::default().with_max_value_bytes(1000))
        .build()
        .unwrap();
    for bad in ["", "a{b}", "}", "x\ny", "\u{7f}", &"a".repeat(257)] {
        assert!(
            matches!(mem.agent(bad), Err(Error::InvalidInput(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        TieredMemory::builder(c.clone(), c.clone())
            .namespace("{x}")
            .build(),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        memory_tiers::parse_memory_id("not-a-ulid"),
        Err(Error::InvalidInput(_))
    ));
    let agent = mem.agent("big").unwrap();
    let big = MemoryInput::new(1, json!("x".repeat(2000)));
    assert!(matches!(
        agent.store(big, Priority::Critical).await,
        Err(Error::InvalidInput(_))
    ));
    let big_embedding = MemoryInput::new(1, json!("small")).embedding(vec![0.5; 1000]);
    assert!(matches!(
        agent.store(big_embedding, Priority::Normal).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        agent
            .store(
                MemoryInput::new(1, json!(1)).embedding(vec![f32::NAN]),
                Priority::Normal
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(agent.count().await.unwrap().total(), 0);

    let names = ["a", "a:b", "a:", ":a", "b", "a b", "ä", "a\u{300}", "A"];
    let mut seen = HashSet::new();
    for name in names {
        let a = mem.agent(name).unwrap();
        for tier in [a.stm(), a.im()] {
            let k = tier.keys();
            for key in [&k.index, &k.entry_prefix] {
                assert!(seen.insert(key.clone()), "{key} shared");
                let tag = &key[key.find('{').unwrap() + 1..key.find('}').unwrap()];
                assert_eq!(
                    tag,
                    format!("{}:{name}", tier.tier().as_str()),
                    "hash tag of {key}"
                );
            }
        }
        a.store(input(1), Priority::Normal).await.unwrap();
    }
    for name in names {
        let a = mem.agent(name).unwrap();
        let r = a.recent(10).await.unwrap();
        assert_eq!(r.len(), 1, "{name}");
        assert_eq!(r[0].entry.agent_id, name);
    }
}

/// A write cut off mid-way leaves all of its keys or none.
pub(crate) async fn cut_off_writes_are_all_or_nothing(mk: &MakeBackend) {
    let shared = mk();
    let (faulty, faults) = FaultyBackend::new(shared.clone());
    let probe = client("probe", shared);
    let c = client("t", faulty);
    let mem = TieredMemory::builder(c.clone(), c).build().unwrap();
    let agent = mem.agent("cut").unwrap();
    // How many of the write's five parts exist: its entry, and its four index members.
    let parts = |id: memory_tiers::Ulid| {
        let probe = probe.clone();
        let k = agent.stm().keys().clone();
        async move {
            let n = exists(&probe, vec![k.entry(&id.to_string())]).await;
            let members = probe.zrange(k.index.clone(), 0, -1).await.unwrap();
            n + members
                .iter()
                .filter(|m| m.ends_with(&id.to_string()))
                .count() as i64
        }
    };
    // One write first, so the script is loaded on the server.
    assert!(
        agent
            .store(input(0), Priority::Normal)
            .await
            .unwrap()
            .outcome
            .is_stored()
    );

    // Refused before it reached the store: none.
    faults.fail_next(1, ErrorKind::Unavailable);
    let r = agent.store(input(1), Priority::Low).await.unwrap();
    assert!(matches!(r.outcome, StoreOutcome::Dropped));
    assert_eq!(parts(r.memory_id).await, 0);

    // Applied, then the reply lost: all.
    faults.apply_then_timeout_next(1);
    let r = agent.store(input(2), Priority::Low).await.unwrap();
    assert!(matches!(r.outcome, StoreOutcome::Dropped));
    assert_eq!(parts(r.memory_id).await, 5);

    // A timed-out idempotent write retried by a Critical store: applied once, all keys.
    faults.apply_then_timeout_next(1);
    let r = agent.store(input(3), Priority::Critical).await.unwrap();
    assert!(r.outcome.is_stored(), "{:?}", r.outcome);
    assert_eq!(parts(r.memory_id).await, 5);
    assert_eq!(agent.count().await.unwrap().stm, 3);
}

/// An outage: Normal writes queue and all land after recovery; meanwhile they are readable
/// from the fallback, marked as such.
pub(crate) async fn outage_queues_writes_and_fallback_serves_reads(mk: &MakeBackend) {
    let shared = mk();
    let (faulty, faults) = FaultyBackend::new(shared);
    let c = client("t", faulty);
    let (fb, _fb_backend) = connect_in_memory("fallback");
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .fallback(fb)
        .build()
        .unwrap();
    let agent = mem.agent("outage").unwrap();
    let before = agent.store(input(0), Priority::Normal).await.unwrap();
    assert!(before.outcome.is_stored() && !before.in_fallback);

    faults.set_outage(true);
    let mut tickets = Vec::new();
    let mut ids = Vec::new();
    for step in 1..=5 {
        let r = agent.store(input(step), Priority::Normal).await.unwrap();
        assert!(r.in_fallback);
        ids.push(r.memory_id);
        match r.outcome {
            StoreOutcome::Queued(t) => tickets.push(t),
            other => panic!("expected Queued, got {other:?}"),
        }
    }
    let recent = agent.recent(10).await.unwrap();
    assert_eq!(
        recent.len(),
        5,
        "the fallback holds the writes made during the outage"
    );
    assert!(recent.iter().all(|r| r.source == Source::Fallback));
    let got = agent.get(ids[2]).await.unwrap().unwrap();
    assert_eq!(got.source, Source::Fallback);
    assert_eq!(got.entry.step_number, 3);
    assert!(matches!(agent.count().await, Err(e) if e.is_unreachable()));
    // Written before the outage, so not in the fallback: unknown, not "absent".
    assert!(matches!(agent.get(before.memory_id).await, Err(e) if e.is_unreachable()));

    faults.set_outage(false);
    for t in tickets {
        let outcome = tokio::time::timeout(Duration::from_secs(600), t.wait())
            .await
            .expect("ticket resolves");
        assert_eq!(outcome, TicketOutcome::Completed);
    }
    let recent = agent.recent(10).await.unwrap();
    assert_eq!(recent.len(), 6);
    assert!(recent.iter().all(|r| r.source == Source::Stm));
    assert_eq!(agent.count().await.unwrap().stm, 6);
    assert_eq!(
        agent.get(ids[2]).await.unwrap().unwrap().source,
        Source::Stm
    );
}
