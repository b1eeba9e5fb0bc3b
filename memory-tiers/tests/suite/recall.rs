//! Searches: `similar`, `find`, `search_content`, vector-block compaction, and answers
//! from the fallback during an outage.

use std::collections::HashMap;

use memory_tiers::{
    AgentMemory, CompressionLevel, Error, Filter, ImConfig, MemoryInput, Source, TieredMemory,
    Ulid, connect_in_memory,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use resilience_core::{BackendError, Command, KvBackend, Priority, Value};
use serde_json::json;
use testkit::faulty::FaultyBackend;

use super::{MakeBackend, client, small_stm};

const DIM: usize = 16;

/// A deterministic pseudo-random unit vector for `seed`.
pub(crate) fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / norm).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn memory(step: u64) -> MemoryInput {
    let kind = if step.is_multiple_of(3) {
        "action"
    } else {
        "observation"
    };
    MemoryInput::new(
        step,
        json!({"step": step, "room": format!("room-{}", step % 4), "text": format!("Saw door number {step}")}),
    )
    .memory_type(kind)
    .embedding(vector(step))
}

/// Stores the [`memory`] of each step (each must be stored at once); their ids, in step
/// order.
async fn store_steps(agent: &AgentMemory, steps: std::ops::Range<u64>) -> Vec<Ulid> {
    let mut ids = Vec::new();
    for step in steps {
        let r = agent.store(memory(step), Priority::Normal).await.unwrap();
        assert!(r.outcome.is_stored(), "step {step}: {:?}", r.outcome);
        ids.push(r.memory_id);
    }
    ids
}

/// Exact over both tiers (IM kept as `f32` here): the same ids and scores as brute force,
/// best first, ties by id; deleted memories and bad queries are handled.
pub(crate) async fn similar_ranks_across_tiers_exactly(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c)
        .stm_config(small_stm(8, 0))
        .im_config(ImConfig::default().with_compression(CompressionLevel::None))
        .build()
        .unwrap();
    let agent = mem.agent("recaller").unwrap();
    let mut stored: HashMap<Ulid, u64> = HashMap::new();
    for step in 0..30 {
        let r = agent.store(memory(step), Priority::Normal).await.unwrap();
        assert!(r.outcome.is_stored());
        stored.insert(r.memory_id, step);
    }
    let counts = agent.count().await.unwrap();
    assert!(counts.im > 0 && counts.stm > 0, "{counts:?}");
    for probe in [3u64, 17, 1000] {
        let query = vector(probe);
        let found = agent.similar(&query, 5, &Filter::new()).await.unwrap();
        let mut expected: Vec<(f32, Ulid)> = stored
            .iter()
            .map(|(id, step)| (cosine(&query, &vector(*step)), *id))
            .collect();
        expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let got: Vec<Ulid> = found.iter().map(|s| s.memory.entry.memory_id).collect();
        let want: Vec<Ulid> = expected.iter().take(5).map(|e| e.1).collect();
        assert_eq!(got, want, "probe {probe}");
        for (s, (score, _)) in found.iter().zip(&expected) {
            assert!((s.score - score).abs() < 1e-5, "{} vs {score}", s.score);
            let source = s.memory.source;
            assert!(matches!(source, Source::Stm | Source::Im));
            let tier = s.memory.entry.metadata.current_tier;
            assert_eq!(source == Source::Stm, tier == memory_tiers::Tier::Stm);
        }
    }
    // A stored memory is its own best match; once deleted, it is gone from searches.
    let own = agent.similar(&vector(3), 1, &Filter::new()).await.unwrap();
    assert!(own[0].score > 0.9999);
    let id = own[0].memory.entry.memory_id;
    assert_eq!(
        own[0].memory.entry.embedding.as_deref(),
        Some(&vector(3)[..])
    );
    assert!(agent.delete(id).await.unwrap());
    let after = agent.similar(&vector(3), 30, &Filter::new()).await.unwrap();
    assert_eq!(after.len(), 29);
    assert!(after.iter().all(|s| s.memory.entry.memory_id != id));
    assert!(
        agent
            .similar(&vector(3), 0, &Filter::new())
            .await
            .unwrap()
            .is_empty()
    );

    // Bad queries and embeddings: typed errors, nothing sent.
    for bad in [
        vec![],
        vec![0.5; DIM - 1],
        vec![f32::NAN; DIM],
        vec![0.0; DIM],
    ] {
        let e = agent.similar(&bad, 3, &Filter::new()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{bad:?}: {e}");
    }
    let e = agent
        .store(
            MemoryInput::new(1, json!(1)).embedding(vec![1.0; DIM + 1]),
            Priority::Normal,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("dimension"), "{e}");
    // Another agent's memories are not searched.
    let other = mem.agent("someone-else").unwrap();
    assert!(
        other
            .similar(&vector(3), 3, &Filter::new())
            .await
            .unwrap()
            .is_empty()
    );
}

/// IM quantized (the default compression): every memory still finds itself first.
pub(crate) async fn similar_finds_quantized_memories(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c)
        .stm_config(small_stm(4, 0))
        .build()
        .unwrap();
    let agent = mem.agent("quantized").unwrap();
    let ids = store_steps(&agent, 0..20).await;
    assert!(agent.count().await.unwrap().im >= 16);
    for (step, id) in ids.iter().enumerate() {
        let best = agent
            .similar(&vector(step as u64), 2, &Filter::new())
            .await
            .unwrap();
        assert_eq!(best[0].memory.entry.memory_id, *id, "step {step}");
        assert!(best[0].score > 0.99, "{}", best[0].score);
        assert!(best[0].score >= best[1].score);
    }
}

/// Filters combine with `similar` and work alone in `find`; content search ignores case.
pub(crate) async fn filters_and_content_search(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c)
        .stm_config(small_stm(6, 0))
        .build()
        .unwrap();
    let agent = mem.agent("finder").unwrap();
    for step in 0..24 {
        agent
            .store(
                memory(step).importance(step as f64 / 24.0),
                Priority::Normal,
            )
            .await
            .unwrap();
    }
    let actions = Filter::new().memory_type("action");
    let found = agent.similar(&vector(5), 20, &actions).await.unwrap();
    assert_eq!(found.len(), 8);
    assert!(
        found
            .iter()
            .all(|s| s.memory.entry.metadata.memory_type == "action")
    );
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score));

    let steps = Filter::new().step_range(10, 13);
    let found = agent.similar(&vector(12), 3, &steps).await.unwrap();
    assert_eq!(found[0].memory.entry.step_number, 12);
    assert!(
        found
            .iter()
            .all(|s| (10..=13).contains(&s.memory.entry.step_number))
    );

    // find: the range on the server decides the order.
    let by_step = agent.find(&steps, 10).await.unwrap();
    let got: Vec<u64> = by_step.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(got, [10, 11, 12, 13]);
    let newest = agent.find(&actions, 3).await.unwrap();
    let got: Vec<u64> = newest.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(got, [21, 18, 15]);
    let important = agent
        .find(
            &Filter::new()
                .importance_range(0.5, 1.0)
                .memory_type("action"),
            2,
        )
        .await
        .unwrap();
    let got: Vec<u64> = important.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(got, [21, 18]);
    let room = agent
        .find(
            &Filter::new()
                .attribute("room", json!("room-1"))
                .step_range(0, 9),
            10,
        )
        .await
        .unwrap();
    let got: Vec<u64> = room.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(got, [1, 5, 9]);
    let pointer = agent
        .find(&Filter::new().attribute("/step", json!(7)), 10)
        .await
        .unwrap();
    assert_eq!(pointer.len(), 1);
    assert_eq!(pointer[0].entry.step_number, 7);

    let text = agent.search_content("DOOR NUMBER 2", 10).await.unwrap();
    let got: Vec<u64> = text.iter().map(|r| r.entry.step_number).collect();
    assert_eq!(got, [23, 22, 21, 20, 2], "newest first, across both tiers");
    assert!(agent.search_content("window", 10).await.unwrap().is_empty());
    let e = agent.search_content("", 10).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let nan = Filter::new().importance_range(f64::NAN, 1.0);
    assert!(matches!(
        agent.find(&nan, 1).await,
        Err(Error::InvalidInput(_))
    ));
}

/// Moves and deletes leave records behind; writes compact the block, which stays
/// searchable and bounded.
pub(crate) async fn vector_blocks_compact_and_stay_searchable(mk: &MakeBackend) {
    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .stm_config(small_stm(8, 0))
        .build()
        .unwrap();
    let agent = mem.agent("compactor").unwrap();
    let ids = store_steps(&agent, 0..300).await;
    let block_len = |key: String| {
        let c = c.clone();
        async move {
            let v = c.execute(Command::Get { key }).await.unwrap();
            v.into_opt_bytes().unwrap().map_or(0, |b| b.len())
        }
    };
    // An STM record at dimension 16 is 16 + 3 + 64 bytes; STM holds 8 entries, and its
    // block at most 8 * 1.5 + 64 records before a write compacts it.
    let stm_len = block_len(agent.stm().keys().vectors.clone()).await;
    assert!(
        stm_len <= 10 + (8 + 4 + 64 + 1) * 83,
        "STM block is {stm_len} bytes"
    );
    assert!(stm_len > 10, "the block holds the live entries");
    for (step, id) in ids.iter().enumerate().step_by(37) {
        let best = agent
            .similar(&vector(step as u64), 1, &Filter::new())
            .await
            .unwrap();
        assert_eq!(best[0].memory.entry.memory_id, *id, "step {step}");
    }
    let counts = agent.count().await.unwrap();
    assert_eq!(counts.total(), 300);
    let all = agent
        .similar(&vector(0), 1000, &Filter::new())
        .await
        .unwrap();
    assert_eq!(all.len(), 300, "every memory once");
}

/// Counts what the searches read of vector blocks: whole (`GET`) or from an offset
/// (`GETRANGE` past the header), and the bytes that came back.
struct BlockReads {
    inner: Arc<dyn KvBackend>,
    whole: AtomicUsize,
    tails: AtomicUsize,
    bytes: AtomicUsize,
}

#[async_trait::async_trait]
impl KvBackend for BlockReads {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.note(&cmd);
        let reply = self.inner.execute(cmd).await;
        self.note_reply(&reply);
        reply
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        let reads: Vec<bool> = cmds.iter().map(|c| self.note(c)).collect();
        let replies = self.inner.execute_batch(cmds, atomic).await?;
        for (read, reply) in reads.iter().zip(&replies) {
            if *read {
                self.note_reply(&Ok(reply.clone()));
            }
        }
        Ok(replies)
    }

    fn name(&self) -> &'static str {
        "block-reads"
    }
}

impl BlockReads {
    /// Whether `cmd` reads a vector block, counted by kind.
    fn note(&self, cmd: &Command) -> bool {
        match cmd {
            Command::Get { key } if key.ends_with(":vectors") => {
                self.whole.fetch_add(1, Ordering::Relaxed);
                true
            }
            Command::Getrange { key, start, .. } if key.ends_with(":vectors") && *start > 0 => {
                self.tails.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    fn note_reply(&self, reply: &Result<Value, BackendError>) {
        if let Ok(Value::Bytes(b)) = reply {
            self.bytes.fetch_add(b.len(), Ordering::Relaxed);
        }
    }
}

/// A warm search reads only what was appended to a block since the last one, and finds
/// exactly what a search without the replica finds: through appends, deletes, a
/// compaction (a new generation: read whole again) and a block deleted and made again.
pub(crate) async fn warm_searches_read_only_what_was_appended(mk: &MakeBackend) {
    let reads = Arc::new(BlockReads {
        inner: mk(),
        whole: AtomicUsize::new(0),
        tails: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
    });
    let c = client("t", Arc::clone(&reads) as Arc<dyn KvBackend>);
    let mem = TieredMemory::builder(c.clone(), c.clone())
        .stm_config(small_stm(8, 0))
        .build()
        .unwrap();
    let plain = TieredMemory::builder(c.clone(), c)
        .stm_config(small_stm(8, 0))
        .vector_replica_bytes(0)
        .build()
        .unwrap();
    let agent = mem.agent("warm").unwrap();
    let same_agent = plain.agent("warm").unwrap();
    let agree = |probe: u64| {
        let (agent, same_agent) = (agent.clone(), same_agent.clone());
        async move {
            let ids = |found: Vec<memory_tiers::Scored>| {
                found
                    .iter()
                    .map(|s| (s.score.to_bits(), s.memory.entry.memory_id))
                    .collect::<Vec<_>>()
            };
            let warm = agent.similar(&vector(probe), 50, &Filter::new()).await;
            let cold = same_agent.similar(&vector(probe), 50, &Filter::new()).await;
            assert_eq!(ids(warm.unwrap()), ids(cold.unwrap()), "probe {probe}");
        }
    };
    let ids = store_steps(&agent, 0..40).await;
    agree(1).await;
    assert!(mem.vector_replica_bytes() > 0);
    let bytes = reads.bytes.load(Ordering::Relaxed);

    // Warm: one more memory, then searches read only the tail of each block.
    let before = reads.whole.load(Ordering::Relaxed);
    store_steps(&agent, 40..41).await;
    let tails = reads.tails.load(Ordering::Relaxed);
    let bytes_before = reads.bytes.load(Ordering::Relaxed);
    let found = agent.similar(&vector(40), 1, &Filter::new()).await.unwrap();
    assert_eq!(reads.whole.load(Ordering::Relaxed), before, "no whole read");
    assert_eq!(
        reads.tails.load(Ordering::Relaxed) - tails,
        2,
        "one tail per tier"
    );
    let tail_bytes = reads.bytes.load(Ordering::Relaxed) - bytes_before;
    assert!(
        tail_bytes < bytes / 4,
        "a warm search read {tail_bytes} bytes of blocks; the first read {bytes}"
    );
    assert!(found[0].score > 0.9999, "the new memory finds itself");
    agree(40).await;

    // Deletes: a deleted memory is never returned.
    assert!(agent.delete(ids[3]).await.unwrap());
    agree(3).await;
    let again = agent.similar(&vector(3), 50, &Filter::new()).await.unwrap();
    assert!(again.iter().all(|s| s.memory.entry.memory_id != ids[3]));

    // Many more writes compact the blocks (new generations): still exact.
    store_steps(&agent, 41..400).await;
    for probe in [5, 77, 250, 399] {
        agree(probe).await;
    }

    // Every memory deleted, then new ones: a new block, never taken for the old one.
    for found in agent
        .similar(&vector(0), 1000, &Filter::new())
        .await
        .unwrap()
    {
        agent.delete(found.memory.entry.memory_id).await.unwrap();
    }
    for key in [
        agent.stm().keys().vectors.clone(),
        agent.im().keys().vectors.clone(),
    ] {
        mem_client_del(&agent, key).await;
    }
    agree(9).await;
    store_steps(&agent, 1000..1005).await;
    agree(1002).await;
    let fresh = agent
        .similar(&vector(1002), 5, &Filter::new())
        .await
        .unwrap();
    assert_eq!(fresh.len(), 5, "the new block's memories, all of them");
}

/// Deletes `key` through the agent's STM client.
async fn mem_client_del(agent: &AgentMemory, key: String) {
    agent
        .stm()
        .client()
        .execute(Command::Del { keys: vec![key] })
        .await
        .unwrap();
}

/// During an outage, searches answer from the fallback's recent entries.
pub(crate) async fn searches_answer_from_the_fallback_during_an_outage(mk: &MakeBackend) {
    let (faulty, faults) = FaultyBackend::new(mk());
    let c = client("t", faulty);
    let (fb, _fb_backend) = connect_in_memory("fallback");
    let mem = TieredMemory::builder(c.clone(), c)
        .fallback(fb)
        .build()
        .unwrap();
    let agent = mem.agent("outage-search").unwrap();
    agent.store(memory(0), Priority::Normal).await.unwrap();
    faults.set_outage(true);
    let mut during = Vec::new();
    for step in 1..=4 {
        let r = agent.store(memory(step), Priority::Normal).await.unwrap();
        assert!(r.in_fallback);
        during.push(r.memory_id);
    }
    let best = agent.similar(&vector(2), 2, &Filter::new()).await.unwrap();
    assert_eq!(best[0].memory.entry.memory_id, during[1]);
    assert!(best.iter().all(|s| s.memory.source == Source::Fallback));
    let found = agent
        .find(&Filter::new().memory_type("action"), 10)
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "step 3 only: step 0 was written before the outage"
    );
    assert_eq!(found[0].source, Source::Fallback);
    let text = agent.search_content("number 4", 10).await.unwrap();
    assert_eq!(text[0].entry.memory_id, during[3]);
    faults.set_outage(false);
}

/// A unit vector along `axis`.
fn axis(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[axis] = 1.0;
    v
}

/// Hybrid scoring, ranked as computed by hand: BM25 over four memories, then with
/// importance (read with the entries, so ranked by an upper bound first), cosine and
/// recency; then against an independent brute force over forty memories.
pub(crate) async fn hybrid_scoring_ranks_as_computed_by_hand(mk: &MakeBackend) {
    use memory_tiers::Scoring;

    let c = client("t", mk());
    let mem = TieredMemory::builder(c.clone(), c)
        .stm_config(small_stm(64, 0))
        .build()
        .unwrap();
    let agent = mem.agent("hybrid").unwrap();
    let docs = [
        ("red fox red", 0.2, 0),
        ("red hen", 0.9, 1),
        ("blue whale", 0.5, 2),
        ("fox", 0.0, 3),
    ];
    let mut ids = Vec::new();
    for (step, (text, importance, along)) in docs.iter().enumerate() {
        let input = MemoryInput::new(step as u64, json!({ "text": text }))
            .importance(*importance)
            .embedding(axis(*along));
        let r = agent.store(input, Priority::Normal).await.unwrap();
        assert!(r.outcome.is_stored(), "{:?}", r.outcome);
        ids.push(r.memory_id);
    }
    let [a, b, c, d] = [ids[0], ids[1], ids[2], ids[3]];
    // N = 4 memories of 3, 2, 2 and 1 words: avg_len = 2. "red" is in a and b, "fox" in a
    // and d: df = 2 each, idf = ln(1 + 2.5/2.5) = ln 2. norm(len) = 1.2·(0.25 + 0.75·len/2):
    // 1.65, 1.2 and 0.75 for lengths 3, 2 and 1. BM25 = Σ idf·tf·2.2/(tf + norm):
    let ln2 = std::f64::consts::LN_2;
    let bm25_a = (ln2 * 2.0 * 2.2 / (2.0 + 1.65) + ln2 * 2.2 / (1.0 + 1.65)) as f32; // 1.4110
    let bm25_b = (ln2 * 2.2 / (1.0 + 1.2)) as f32; // 0.6931
    let bm25_d = (ln2 * 2.2 / (1.0 + 0.75)) as f32; // 0.8714
    let ranked = |found: &[memory_tiers::Scored]| -> Vec<(Ulid, f32)> {
        found
            .iter()
            .map(|s| (s.memory.entry.memory_id, s.score))
            .collect()
    };
    let search = |scoring: Scoring, query: Vec<f32>, k: usize| {
        let agent = agent.clone();
        async move {
            agent
                .similar_scored(&query, k, &Filter::new(), &scoring)
                .await
                .unwrap()
        }
    };
    let text = Scoring::cosine()
        .with_cosine_weight(0.0)
        .with_text("Red, FOX!", 1.0);
    let found = search(text.clone(), axis(0), 4).await;
    assert_eq!(
        ranked(&found),
        [(a, bm25_a), (d, bm25_d), (b, bm25_b), (c, 0.0)]
    );
    // + importance: a 1.611, b 1.593, d 0.871, c 0.5; the best two alone as well.
    let with_importance = text.clone().with_importance(1.0);
    let found = search(with_importance.clone(), axis(0), 4).await;
    let order: Vec<Ulid> = ranked(&found).iter().map(|r| r.0).collect();
    assert_eq!(order, [a, b, d, c]);
    assert_eq!(found[0].score, bm25_a + 0.2f32);
    assert_eq!(found[1].score, bm25_b + 0.9f32);
    let best_two: Vec<Ulid> = ranked(&search(with_importance, axis(0), 2).await)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(best_two, [a, b]);
    // Importance weighted 2: b 2.493, a 1.811, c 1.0, d 0.871.
    let found = search(text.clone().with_importance(2.0), axis(0), 4).await;
    let order: Vec<Ulid> = ranked(&found).iter().map(|r| r.0).collect();
    assert_eq!(order, [b, a, c, d]);
    // Cosine against c's axis, weight 1, + text: a 1.411, c 1.0, d 0.871, b 0.693.
    let found = search(Scoring::cosine().with_text("red fox", 1.0), axis(2), 4).await;
    assert_eq!(
        ranked(&found),
        [(a, bm25_a), (c, 1.0), (d, bm25_d), (b, bm25_b)]
    );
    // Recency alone: the newest first (the same age ranks by id).
    let found = search(
        Scoring::cosine()
            .with_cosine_weight(0.0)
            .with_recency(std::time::Duration::from_secs(3600), 1.0),
        axis(0),
        4,
    )
    .await;
    let mut newest_first = ids.clone();
    newest_first.sort_by(|x, y| y.timestamp_ms().cmp(&x.timestamp_ms()).then(x.cmp(y)));
    let order: Vec<Ulid> = ranked(&found).iter().map(|r| r.0).collect();
    assert_eq!(order, newest_first);
    assert!(found.iter().all(|s| s.score > 0.99 && s.score <= 1.0));
    // Plain `similar` is cosine alone.
    let plain = agent.similar(&axis(2), 1, &Filter::new()).await.unwrap();
    assert_eq!(ranked(&plain), [(c, 1.0)]);
    // Bad scoring: a typed error, nothing sent.
    let e = agent
        .similar_scored(
            &axis(0),
            3,
            &Filter::new(),
            &Scoring::cosine().with_text("?!", 1.0),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");

    // Forty more, words drawn from a small vocabulary, in a second agent: the ranking by
    // BM25 + importance equals a brute force over the stored memories.
    let agent = mem.agent("hybrid-brute").unwrap();
    let vocabulary = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut stored: Vec<(Ulid, Vec<&str>, f64)> = Vec::new();
    for step in 0..40u64 {
        let words: Vec<&str> = (0..1 + next() % 6)
            .map(|_| vocabulary[(next() % 8) as usize])
            .collect();
        let importance = (next() % 1001) as f64 / 1000.0;
        let input = MemoryInput::new(step, json!({ "text": words.join(" ") }))
            .importance(importance)
            .embedding(vector(step));
        let r = agent.store(input, Priority::Normal).await.unwrap();
        assert!(r.outcome.is_stored());
        stored.push((r.memory_id, words, importance));
    }
    for (query, w_text, w_imp) in [
        ("cat dog", 1.0f32, 0.5f32),
        ("eel", 0.3, 2.0),
        ("gnu fox ant", 2.0, 0.1),
    ] {
        let scoring = Scoring::cosine()
            .with_cosine_weight(0.0)
            .with_text(query, w_text)
            .with_importance(w_imp);
        let found = agent
            .similar_scored(&vector(0), 10, &Filter::new(), &scoring)
            .await
            .unwrap();
        let terms: Vec<&str> = {
            let mut t: Vec<&str> = query.split(' ').collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        let n = stored.len() as f64;
        let avg = stored.iter().map(|s| s.1.len() as f64).sum::<f64>() / n;
        let df = |t: &str| stored.iter().filter(|s| s.1.contains(&t)).count() as f64;
        let mut expected: Vec<(f32, Ulid)> = stored
            .iter()
            .map(|(id, words, importance)| {
                let len = words.len() as f64;
                let bm25: f64 = terms
                    .iter()
                    .map(|t| {
                        let tf = words.iter().filter(|w| *w == t).count() as f64;
                        let idf = (1.0 + (n - df(t) + 0.5) / (df(t) + 0.5)).ln();
                        idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avg))
                    })
                    .sum();
                (0.0 + w_text * bm25 as f32 + w_imp * *importance as f32, *id)
            })
            .collect();
        expected.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
        let got: Vec<Ulid> = found.iter().map(|s| s.memory.entry.memory_id).collect();
        let want: Vec<Ulid> = expected.iter().take(10).map(|e| e.1).collect();
        assert_eq!(got, want, "query {query:?}");
        for (s, (score, _)) in found.iter().zip(&expected) {
            assert!((s.score - score).abs() < 1e-5, "{} vs {score}", s.score);
        }
    }
}
