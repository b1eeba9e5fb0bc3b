//! What the resilience layer costs per call: `ResilientClient::get` over the in-memory
//! backend against calling the backend directly, on a current-thread runtime.
//!
//! Run: `cargo bench -p resilience-core --bench client`

#![allow(missing_docs)]

use std::hint::black_box;

use backend_memory::InMemoryBackend;
use criterion::{Criterion, criterion_group, criterion_main};
use resilience_core::{Command, KvBackend, ResilientClient, SetOptions};

fn bench_get(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let backend = InMemoryBackend::new();
    let client = ResilientClient::builder("bench", backend.clone())
        .build()
        .expect("valid client settings");
    rt.block_on(async {
        let _ = client
            .set("bench:key", "value", SetOptions::default())
            .await;
    });

    let mut group = c.benchmark_group("get");
    group.bench_function("backend_direct", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                backend
                    .execute(Command::Get {
                        key: "bench:key".to_owned(),
                    })
                    .await,
            )
        })
    });
    group.bench_function("resilient_client", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(client.get("bench:key").await) })
    });
    group.finish();
}

criterion_group!(benches, bench_get);
criterion_main!(benches);
