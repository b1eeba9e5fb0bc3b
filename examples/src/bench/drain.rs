//! Scenario `drain`: a backlog of queued writes landing after an outage.
//!
//! Per backend, on a private `redis-server` started for the scenario (it gets killed):
//!
//! 1. the client is built with a recovery queue holding at least 100,000 writes
//!    (`QueueConfig::capacity`) and `drain_batch_size` writes per replay round trip
//!    (`QueueConfig::batch_size`, reported in the `detail` field);
//! 2. the server is killed (SIGKILL); `drain_writes` writes (default 100,000; `SET` of
//!    distinct keys, Normal priority through `ResilientClient::submit`) are submitted by
//!    8 tasks: the first ones fail and open the breaker, every one ends up `Queued`
//!    (reported: `enqueue`, submits per second while the breaker is Open);
//! 3. the server is restarted; the health probe closes the breaker and the replay worker
//!    drains the queue;
//! 4. measured (`drain`): writes per second from the breaker closing to the queue being
//!    empty (target >= 100,000/s), then checked: every key exists, nothing dead-lettered.

use std::time::{Duration, Instant};

use bytes::Bytes;
use resilience_core::{
    CircuitState, Command, Priority, QueueConfig, ResilientClient, SetOptions, StoreOutcome,
};

use super::load::{OpError, process_cpu_time, run_tasks};
use super::measurement::{Goal, Measurement};
use super::{BackendChoice, BenchConfig, BenchError, connect_client};

/// The `scenario` field of this scenario.
pub const SCENARIO: &str = "drain";

/// Target: queued writes landing per second.
pub const DRAIN_TARGET: f64 = 100_000.0;

/// Tasks submitting the backlog.
const SUBMITTERS: usize = 8;

/// Longest wait for the breaker to open or close.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

fn failed(backend: BackendChoice, error: impl ToString) -> BenchError {
    BenchError::load(backend, "drain", SUBMITTERS, error)
}

fn key(task: usize, i: u64) -> String {
    format!("bench:drain:{task}:{i}")
}

/// Runs the scenario for `backend` on a private server of its own.
pub async fn run(
    config: &BenchConfig,
    backend: BackendChoice,
) -> Result<Vec<Measurement>, BenchError> {
    let writes = config.drain_writes;
    let batch_size = config.drain_batch_size.max(1);
    let mut server = config.spawn_server().await?;
    let queue = QueueConfig::default()
        .with_capacity((writes as usize).max(100_000))
        .with_batch_size(batch_size);
    let client = connect_client(&server.connection_config(), backend, |b| b.queue(queue)).await?;
    let result = measure(&mut server, &client, backend, writes, config.value_size).await;
    let _ = client.shutdown(Duration::ZERO).await;
    let (enqueue, drain) = result?;
    let detail = format!(
        "batch_size={batch_size}, capacity={}",
        (writes as usize).max(100_000)
    );
    Ok(vec![
        enqueue.detail(format!("{SUBMITTERS} tasks, breaker Open")),
        drain.detail(detail),
    ])
}

async fn measure(
    server: &mut testkit::server::RedisServer,
    client: &ResilientClient,
    backend: BackendChoice,
    writes: u64,
    value_size: usize,
) -> Result<(Measurement, Measurement), BenchError> {
    // Connected and warm, then the outage.
    client
        .set("bench:drain:warm", "v", SetOptions::default())
        .await?;
    server.stop().await?;

    let value = Bytes::from(vec![b'q'; value_size.max(1)]);
    let states: Vec<(ResilientClient, usize, Bytes)> = (0..SUBMITTERS)
        .map(|t| (client.clone(), t, value.clone()))
        .collect();
    let enqueued = run_tasks(states, writes, |(client, task, value), i| async move {
        let cmd = Command::Set {
            key: key(task, i),
            value,
            options: SetOptions::default(),
        };
        match client.submit(vec![cmd], Priority::Normal).await {
            StoreOutcome::Queued(_) => Ok(()),
            other => Err(OpError(format!("expected Queued, got {}", other.as_str()))),
        }
    })
    .await
    .map_err(|OpError(e)| failed(backend, e))?;
    let depth = client.stats().queue.depth;
    if depth as u64 != writes {
        return Err(failed(
            backend,
            format!("{depth} writes queued, expected {writes}"),
        ));
    }
    let completed_before = client.stats().queue.completed;
    let enqueue = Measurement::new(
        SCENARIO,
        backend.name(),
        "enqueue",
        SUBMITTERS,
        enqueued.ops,
        enqueued.ops_per_sec(),
        "ops/s",
    )
    .latencies(enqueued.quantile_us(0.5), enqueued.quantile_us(0.99))
    .cpu(enqueued.cpu_us_per_op());

    let mut states = client.circuit_breaker().subscribe();
    server.restart().await?;
    let closed = tokio::time::timeout(
        STEP_DEADLINE,
        states.wait_for(|s| *s == CircuitState::Closed),
    )
    .await;
    if !closed.is_ok_and(|r| r.is_ok()) {
        return Err(failed(
            backend,
            "the breaker did not close after the restart",
        ));
    }
    let closed_at = Instant::now();
    let cpu_before = process_cpu_time();
    // Writes take well under a microsecond each to land; poll the depth every 200 µs.
    let deadline = closed_at + Duration::from_secs(120);
    while client.stats().queue.depth > 0 {
        if Instant::now() > deadline {
            return Err(failed(backend, "the queue did not drain within 120 s"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = closed_at.elapsed();
    let cpu = match (cpu_before, process_cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / writes as f64),
        _ => None,
    };
    let stats = client.stats().queue;
    let landed = stats.completed - completed_before;
    if landed != writes || stats.dead_lettered != 0 {
        return Err(failed(
            backend,
            format!(
                "{landed} of {writes} writes replayed, {} dead-lettered",
                stats.dead_lettered
            ),
        ));
    }
    // Every key is there.
    let mut found = 0u64;
    for task in 0..SUBMITTERS {
        let n = share(writes, task);
        let keys: Vec<String> = (0..n).map(|i| key(task, i)).collect();
        for chunk in keys.chunks(1_000) {
            found += client.exists(chunk.iter().map(String::as_str)).await? as u64;
        }
    }
    if found != writes {
        return Err(failed(
            backend,
            format!("{found} of {writes} keys exist after the drain"),
        ));
    }
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        writes as f64 / secs
    } else {
        0.0
    };
    let drain = Measurement::new(SCENARIO, backend.name(), "drain", 1, writes, rate, "ops/s")
        .cpu(cpu)
        .goal(Goal::AtLeast(DRAIN_TARGET));
    Ok((enqueue, drain))
}

/// Writes submitted by task `task` (as `run_tasks` shares them).
fn share(writes: u64, task: usize) -> u64 {
    let tasks = SUBMITTERS as u64;
    writes / tasks + u64::from((task as u64) < writes % tasks)
}
