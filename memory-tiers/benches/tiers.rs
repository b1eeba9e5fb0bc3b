//! Throughput of the tiers on `InMemoryBackend` (no server): `store` at concurrency 64,
//! `recent(20)`, and STM -> IM moves. Run with `cargo bench -p memory-tiers`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memory_tiers::{MemoryInput, StmConfig, TieredMemory, connect_in_memory};
use resilience_core::Priority;
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn memory(capacity: usize) -> TieredMemory {
    let (c, _) = connect_in_memory("bench");
    TieredMemory::builder(c.clone(), c)
        .stm_config(StmConfig::default().with_capacity(capacity))
        .build()
        .expect("tiers")
}

fn content(i: u64) -> serde_json::Value {
    json!({"step": i, "observation": "the agent saw a door", "score": 0.5})
}

fn store(c: &mut Criterion) {
    let rt = runtime();
    // Large capacity: this measures writes, not transitions.
    let mem = memory(usize::MAX / 2);
    let agents: Vec<_> = (0..64)
        .map(|i| mem.agent(&format!("agent-{i}")).unwrap())
        .collect();
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(64));
    g.bench_function("concurrency_64", |b| {
        b.to_async(&rt).iter(|| {
            let agents = agents.clone();
            async move {
                let tasks: Vec<_> = agents
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| {
                        tokio::spawn(async move {
                            a.store(
                                MemoryInput::new(i as u64, content(i as u64)),
                                Priority::Normal,
                            )
                            .await
                            .unwrap()
                        })
                    })
                    .collect();
                for t in tasks {
                    assert!(t.await.unwrap().outcome.is_stored());
                }
            }
        })
    });
    g.finish();
}

fn recent(c: &mut Criterion) {
    let rt = runtime();
    let mem = memory(1000);
    let agent = mem.agent("reader").unwrap();
    rt.block_on(async {
        for i in 0..500 {
            agent
                .store(MemoryInput::new(i, content(i)), Priority::Normal)
                .await
                .unwrap();
        }
    });
    let mut g = c.benchmark_group("recent");
    g.throughput(Throughput::Elements(1));
    g.bench_function("recent_20", |b| {
        b.to_async(&rt).iter(|| {
            let agent = agent.clone();
            async move {
                assert_eq!(agent.recent(20).await.unwrap().len(), 20);
            }
        })
    });
    g.finish();
}

fn transition(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("transition");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("stm_to_im_1000", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Fill STM (capacity 2000) with 2000, then shrink capacity to 1000 via a
                // second handle: maintain() moves 1000.
                let (client, _) = connect_in_memory("bench");
                let big = TieredMemory::builder(client.clone(), client.clone())
                    .stm_config(StmConfig::default().with_capacity(2000))
                    .build()
                    .unwrap();
                let a = big.agent("mover").unwrap();
                for i in 0..2000 {
                    a.store(MemoryInput::new(i, content(i)), Priority::Normal)
                        .await
                        .unwrap();
                }
                let small = TieredMemory::builder(client.clone(), client)
                    .stm_config(
                        StmConfig::default()
                            .with_capacity(1000)
                            .with_near_expiry(Duration::ZERO),
                    )
                    .build()
                    .unwrap();
                let a = small.agent("mover").unwrap();
                let start = std::time::Instant::now();
                let report = a.maintain().await.unwrap();
                total += start.elapsed();
                assert_eq!(report.moved, 1000);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, store, recent, transition);
criterion_main!(benches);
