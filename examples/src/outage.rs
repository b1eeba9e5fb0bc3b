//! A long outage at a high write rate, simulated on Tokio's paused clock: does the recovery
//! queue stay within its capacity, does it report what it evicts and refuses, and what
//! does it cost in memory?
//!
//! [`run_outage`] drives a [`ResilientClient`] over an [`InMemoryBackend`] behind a
//! [`FaultyBackend`] in outage: `writes_per_sec` `SET`s of unique keys per simulated second,
//! a share of them `High` and the rest `Normal`, for the whole outage. Then the outage
//! ends, the health probe closes the breaker and the queue drains. The report says where
//! every write went, and the accounting identities in [`OutageReport::check`] must hold.
//!
//! Used by `examples/src/bin/outage_bound.rs` (the full 10-minute run, in release mode) and
//! by `examples/tests/outage_bound.rs` (a shorter run in every `cargo test`).

use std::fmt;
use std::time::Duration;

use backend_memory::InMemoryBackend;
use bytes::Bytes;
use resilience_core::{Command, Error, Priority, ResilientClient, SetOptions, StoreOutcome};
use testkit::faulty::FaultyBackend;

/// The shape of a simulated outage.
#[derive(Clone, Debug)]
pub struct OutageConfig {
    /// Writes submitted per simulated second.
    pub writes_per_sec: u64,
    /// How long the backend is down.
    pub outage: Duration,
    /// The recovery queue's capacity.
    pub capacity: usize,
    /// Percent of writes submitted `High` (the rest are `Normal`).
    pub high_percent: u64,
    /// Bytes in each written value.
    pub value_bytes: usize,
}

impl Default for OutageConfig {
    /// Ten minutes at 10,000 writes per second into a 10,000-slot queue, one write in five
    /// `High`, 64-byte values.
    fn default() -> Self {
        OutageConfig {
            writes_per_sec: 10_000,
            outage: Duration::from_secs(600),
            capacity: 10_000,
            high_percent: 20,
            value_bytes: 64,
        }
    }
}

/// Where the writes of a simulated outage went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutageReport {
    /// Writes submitted.
    pub submitted: u64,
    /// Stored at once (none, during an outage).
    pub stored: u64,
    /// Accepted into the recovery queue.
    pub queued: u64,
    /// Refused with `Error::QueueFull` (queue full of equal or higher priority).
    pub queue_full: u64,
    /// Any other outcome (none expected).
    pub other: u64,
    /// Largest queue depth seen (sampled every 10 ms of simulated time and at the end).
    pub peak_depth: usize,
    /// The queue's capacity.
    pub capacity: usize,
    /// Queued writes evicted by higher-priority ones (`stats().queue.evicted`).
    pub evicted: u64,
    /// Queued writes given up, evictions included (`stats().queue.dead_lettered`).
    pub dead_lettered: u64,
    /// Queued writes replayed after the outage (`stats().queue.completed`).
    pub completed: u64,
    /// Keys in the backend at the end: every replayed write, each to its own key.
    pub keys_stored: usize,
    /// Queue depth at the end.
    pub final_depth: usize,
    /// Simulated time from the end of the outage until the queue was empty.
    pub drain_time: Duration,
}

impl OutageReport {
    /// The promises, as a list of broken ones (empty when all hold): depth never over
    /// capacity, every write accounted for, every queued write either replayed or
    /// dead-lettered, every replayed write in the backend.
    pub fn check(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let mut expect = |ok: bool, what: String| {
            if !ok {
                broken.push(what);
            }
        };
        expect(
            self.peak_depth <= self.capacity,
            format!(
                "peak depth {} over capacity {}",
                self.peak_depth, self.capacity
            ),
        );
        expect(
            self.stored + self.queued + self.queue_full + self.other == self.submitted,
            format!(
                "outcomes do not add up to {} submitted: {self:?}",
                self.submitted
            ),
        );
        expect(
            self.completed + self.dead_lettered + self.final_depth as u64 == self.queued,
            format!("queued writes unaccounted for: {self:?}"),
        );
        expect(
            self.keys_stored as u64 == self.completed + self.stored,
            format!(
                "{} keys stored, {} writes applied",
                self.keys_stored,
                self.completed + self.stored
            ),
        );
        expect(
            self.final_depth == 0,
            format!("{} writes still queued", self.final_depth),
        );
        broken
    }
}

impl fmt::Display for OutageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "submitted={} stored={} queued={} queue_full={} other={} peak_depth={}/{} \
             evicted={} dead_lettered={} completed={} keys_stored={} final_depth={} drain={:?}",
            self.submitted,
            self.stored,
            self.queued,
            self.queue_full,
            self.other,
            self.peak_depth,
            self.capacity,
            self.evicted,
            self.dead_lettered,
            self.completed,
            self.keys_stored,
            self.final_depth,
            self.drain_time
        )
    }
}

/// Runs the outage. Call it on a runtime whose clock is paused
/// (`start_paused = true`): simulated time advances by itself while the runtime is idle,
/// so ten minutes take as long as the writes themselves. `on_tick` is called every 10 ms of
/// simulated time (for sampling memory, say).
///
/// # Errors
///
/// A configuration the client refuses (a capacity of 0).
pub async fn run_outage(
    config: &OutageConfig,
    mut on_tick: impl FnMut(),
) -> Result<OutageReport, resilience_core::Error> {
    let store = InMemoryBackend::new();
    let (backend, faults) = FaultyBackend::new(store.clone());
    let client = ResilientClient::builder("outage", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .with_health_check_interval(Duration::from_secs(1)),
        )
        .queue(resilience_core::QueueConfig::default().with_capacity(config.capacity))
        .build()?;
    faults.set_outage(true);

    const TICK: Duration = Duration::from_millis(10);
    let per_tick = (config.writes_per_sec / 100).max(1);
    let total = config.writes_per_sec * config.outage.as_secs();
    let value = Bytes::from(vec![b'v'; config.value_bytes]);
    let mut report = OutageReport {
        capacity: config.capacity,
        ..OutageReport::default()
    };
    for i in 0..total {
        if i > 0 && i % per_tick == 0 {
            report.peak_depth = report.peak_depth.max(client.stats().queue.depth);
            on_tick();
            tokio::time::sleep(TICK).await;
        }
        let priority = if i % 100 < config.high_percent {
            Priority::High
        } else {
            Priority::Normal
        };
        let write = Command::Set {
            key: format!("k{i}"),
            value: value.clone(),
            options: SetOptions::default(),
        };
        report.submitted += 1;
        match client.submit(vec![write], priority).await {
            StoreOutcome::Stored => report.stored += 1,
            // The ticket is dropped: its fate is counted by the queue's statistics.
            StoreOutcome::Queued(_) => report.queued += 1,
            StoreOutcome::Failed(Error::QueueFull { .. }) => report.queue_full += 1,
            StoreOutcome::Failed(_) | StoreOutcome::Dropped => report.other += 1,
        }
    }
    report.peak_depth = report.peak_depth.max(client.stats().queue.depth);
    on_tick();

    faults.set_outage(false);
    let recovered = tokio::time::Instant::now();
    while client.stats().queue.depth > 0 && recovered.elapsed() < Duration::from_secs(3600) {
        tokio::time::sleep(TICK).await;
        on_tick();
    }
    report.drain_time = recovered.elapsed();
    let stats = client.stats().queue;
    report.evicted = stats.evicted;
    report.dead_lettered = stats.dead_lettered;
    report.completed = stats.completed;
    report.final_depth = stats.depth;
    report.keys_stored = store.len();
    client.shutdown(Duration::from_secs(1)).await;
    Ok(report)
}
