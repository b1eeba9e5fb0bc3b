//! Bounded resources, in every `cargo test`: 60 simulated seconds of outage at 10,000
//! writes per second (600,000 writes, one in five `High`) into a 10,000-slot recovery queue.
//! The queue never exceeds its capacity, `High` writes evict `Normal` ones (reported as
//! evicted and dead-lettered), the rest are refused `QueueFull`, everything queued is
//! replayed or dead-lettered once the backend is back, and peak live heap stays bounded.
//!
//! The full 10-minute, 6,000,000-write run is a release binary:
//! `cargo run --release -p examples --bin outage_bound`.

use std::time::Duration;

use examples::alloc::Counting;
use examples::outage::{OutageConfig, run_outage};

#[global_allocator]
static ALLOC: Counting = Counting::new();

#[tokio::test(start_paused = true)]
async fn a_long_outage_keeps_the_queue_and_memory_bounded() {
    let config = OutageConfig {
        outage: Duration::from_secs(60),
        ..OutageConfig::default()
    };
    let baseline = ALLOC.live();
    ALLOC.reset_peak();
    // Peak after the first 10 simulated seconds (the queue is full after about 5) and at
    // the end: if memory grew with the number of writes, the second would be far larger.
    let mut ticks = 0u64;
    let mut early_peak = 0;
    let report = run_outage(&config, || {
        ticks += 1;
        if ticks == 1_000 {
            early_peak = ALLOC.peak();
        }
    })
    .await
    .expect("valid client settings");
    let peak = ALLOC.peak().saturating_sub(baseline);
    println!("{report}; peak live heap {peak} bytes (early {early_peak})");

    assert_eq!(report.check(), Vec::<String>::new());
    assert_eq!(report.submitted, 600_000);
    assert_eq!(report.peak_depth, config.capacity);
    // High evicted every Normal it found, then everything was refused.
    assert!(
        report.evicted > 0 && report.evicted == report.dead_lettered,
        "{report}"
    );
    assert!(report.queue_full > 500_000, "{report}");
    assert_eq!(report.completed, config.capacity as u64, "{report}");
    // A queued 64-byte SET costs well under 2 KiB; 600,000 of them unbounded would be
    // hundreds of MiB.
    assert!(
        peak < config.capacity * 2048,
        "peak live heap {peak} bytes for a {}-slot queue",
        config.capacity
    );
    assert!(
        ALLOC.peak() <= early_peak + early_peak / 10,
        "memory kept growing after the queue filled: {early_peak} -> {}",
        ALLOC.peak()
    );
}
