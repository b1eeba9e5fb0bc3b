//! The load itself: N tasks, each doing its share of SET/GET pairs, timed per operation.
//!
//! The same generic function drives every target (raw driver or resilient client), so the
//! only thing that differs between two runs is the [`Target`] implementation: task
//! structure, keys, values, timing and bookkeeping are identical.
//!
//! Each task owns a fixed ring of keys (prepared before the clock starts) and alternates
//! `SET key value` / `GET key` on them: operation `2m` sets key `m % ring`, operation
//! `2m + 1` reads it back. Half the operations are SETs, half GETs, and every one is timed
//! and counted on its own. The `GET` always finds the value just written, so a wrong reply
//! (a miss, a different length) is caught as an error instead of silently measured.
//!
//! Latencies are pushed into a per-task `Vec` preallocated for the task's operations (no
//! shared state on the hot path) and merged into one HDR histogram after the run.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::Barrier;

/// A failed operation during a load run (the message of the driver's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError(pub String);

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something the load can run against: the raw driver or the resilient client.
///
/// Implementations do exactly one round trip per call and check the reply's shape.
pub trait Target: Clone + Send + Sync + 'static {
    /// `SET key value`.
    fn set(&self, key: &str, value: &Bytes) -> impl Future<Output = Result<(), OpError>> + Send;
    /// `GET key`, which must return a value of `expected_len` bytes.
    fn get(
        &self,
        key: &str,
        expected_len: usize,
    ) -> impl Future<Output = Result<(), OpError>> + Send;
}

/// The shape of one load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Operations in total (split as evenly as possible over the tasks).
    pub ops: u64,
    /// The value written by every SET.
    pub value: Bytes,
    /// The keys of each task (`keys[task]`); there must be at least `concurrency` rings.
    pub keys: Arc<Vec<Vec<String>>>,
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Operations completed.
    pub ops: u64,
    /// Wall time from the start signal to the last task finishing.
    pub elapsed: Duration,
    /// Per-operation latencies, in nanoseconds.
    pub latencies_ns: Histogram<u64>,
    /// CPU time (user + system, all threads of this process) spent during the run, where
    /// the platform tells (Linux). Unlike throughput it hardly moves when other processes
    /// compete for the cores, so it is the steadier measure of what a mode costs.
    pub cpu: Option<Duration>,
}

/// CPU time used so far by this process (user + system, all threads), to the nanosecond:
/// `CLOCK_PROCESS_CPUTIME_ID`, the kernel's accounting of every thread's run time, not the
/// 10 ms ticks of `/proc/self/stat` (which made a 0.6 s run's CPU per operation move in
/// steps of 1.5 %). `None` where the platform does not tell (not Linux).
#[cfg(target_os = "linux")]
pub fn process_cpu_time() -> Option<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).ok()?;
    Some(Duration::new(
        u64::try_from(t.tv_sec()).ok()?,
        u32::try_from(t.tv_nsec()).ok()?,
    ))
}

/// CPU time used so far by this process: not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn process_cpu_time() -> Option<Duration> {
    None
}

impl LoadResult {
    /// Operations per second over the wall time.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// CPU microseconds per operation (see [`LoadResult::cpu`]).
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.ops > 0).then(|| cpu.as_secs_f64() * 1e6 / self.ops as f64)
    }

    /// The latency at `quantile` (0.0..=1.0), in microseconds.
    pub fn quantile_us(&self, quantile: f64) -> f64 {
        self.latencies_ns.value_at_quantile(quantile) as f64 / 1_000.0
    }
}

/// Operations of task `task` out of `tasks` sharing `ops` (the first `ops % tasks` tasks do
/// one more).
fn share(ops: u64, tasks: usize, task: usize) -> u64 {
    let tasks = tasks.max(1) as u64;
    let task = task as u64;
    ops / tasks + u64::from(task < ops % tasks)
}

/// Builds the key rings: `tasks` rings of `per_task` keys, all starting with `prefix`.
pub fn key_rings(prefix: &str, tasks: usize, per_task: usize) -> Vec<Vec<String>> {
    (0..tasks)
        .map(|t| {
            (0..per_task.max(1))
                .map(|k| format!("{prefix}{t}:{k}"))
                .collect()
        })
        .collect()
}

/// Runs `spec` against `target` on the current (multi-thread) runtime.
///
/// Tasks are spawned first and released together by a barrier; the clock runs from the
/// release to the last task's end. The first failed operation ends the run with its error.
pub async fn run_load<T: Target>(target: &T, spec: &LoadSpec) -> Result<LoadResult, OpError> {
    let tasks = spec.concurrency.max(1);
    if spec.keys.len() < tasks {
        return Err(OpError(format!(
            "{} key rings for {tasks} tasks",
            spec.keys.len()
        )));
    }
    let barrier = Arc::new(Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let target = target.clone();
        let barrier = Arc::clone(&barrier);
        let keys = Arc::clone(&spec.keys);
        let value = spec.value.clone();
        let ops = share(spec.ops, tasks, task);
        handles.push(tokio::spawn(async move {
            let ring = &keys[task];
            let mut latencies: Vec<u64> = Vec::with_capacity(ops as usize);
            barrier.wait().await;
            for op in 0..ops {
                let key = &ring[((op / 2) as usize) % ring.len()];
                let started = Instant::now();
                if op % 2 == 0 {
                    target.set(key, &value).await?;
                } else {
                    target.get(key, value.len()).await?;
                }
                latencies.push(started.elapsed().as_nanos() as u64);
            }
            Ok::<Vec<u64>, OpError>(latencies)
        }));
    }
    release_and_collect(&barrier, handles).await
}

/// Runs one task per element of `states`, all released together; task `t` calls
/// `op(states[t].clone(), i)` for its share `i = 0..` of `ops` operations, each timed.
/// The generic engine of the scenarios beyond `setget` (memory-tiers, rejected calls): same
/// barrier, clock, CPU accounting and histogram as [`run_load`].
pub async fn run_tasks<S, F, Fut>(states: Vec<S>, ops: u64, op: F) -> Result<LoadResult, OpError>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), OpError>> + Send + 'static,
{
    let tasks = states.len();
    if tasks == 0 {
        return Err(OpError("no task to run".to_owned()));
    }
    let op = Arc::new(op);
    let barrier = Arc::new(Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for (task, state) in states.into_iter().enumerate() {
        let op = Arc::clone(&op);
        let barrier = Arc::clone(&barrier);
        let n = share(ops, tasks, task);
        handles.push(tokio::spawn(async move {
            let mut latencies: Vec<u64> = Vec::with_capacity(n as usize);
            barrier.wait().await;
            for i in 0..n {
                let started = Instant::now();
                op(state.clone(), i).await?;
                latencies.push(started.elapsed().as_nanos() as u64);
            }
            Ok::<Vec<u64>, OpError>(latencies)
        }));
    }
    release_and_collect(&barrier, handles).await
}

/// The end every run shares: releases the spawned tasks (waiting on `barrier`), times them
/// from the release to the last one's end with the process's CPU time, and merges their
/// latencies (ns) into one histogram. The first failed task's error ends the run.
async fn release_and_collect(
    barrier: &Barrier,
    handles: Vec<tokio::task::JoinHandle<Result<Vec<u64>, OpError>>>,
) -> Result<LoadResult, OpError> {
    let tasks = handles.len();
    let cpu_before = process_cpu_time();
    barrier.wait().await;
    let started = Instant::now();
    let mut per_task = Vec::with_capacity(tasks);
    let mut first_error = None;
    for handle in handles {
        match handle.await {
            Ok(Ok(latencies)) => per_task.push(latencies),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(OpError(format!("load task failed: {join}")));
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, process_cpu_time()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    if let Some(e) = first_error {
        return Err(e);
    }
    // 1 ns .. 60 s at 3 significant digits.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| OpError(format!("histogram: {e}")))?;
    let mut ops = 0u64;
    for latencies in per_task {
        ops += latencies.len() as u64;
        for ns in latencies {
            histogram.saturating_record(ns.max(1));
        }
    }
    Ok(LoadResult {
        ops,
        elapsed,
        latencies_ns: histogram,
        cpu,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (ops, tasks) in [(200_000, 256), (10, 3), (3, 16), (0, 4), (7, 1)] {
            let shares: Vec<u64> = (0..tasks).map(|t| share(ops, tasks, t)).collect();
            assert_eq!(shares.iter().sum::<u64>(), ops);
            let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(max - min <= 1);
        }
    }

    #[derive(Clone, Default)]
    struct Counting {
        sets: Arc<AtomicU64>,
        gets: Arc<AtomicU64>,
    }

    impl Target for Counting {
        async fn set(&self, _key: &str, _value: &Bytes) -> Result<(), OpError> {
            self.sets.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        async fn get(&self, _key: &str, _len: usize) -> Result<(), OpError> {
            self.gets.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn half_sets_half_gets_all_counted() {
        let target = Counting::default();
        let spec = LoadSpec {
            concurrency: 4,
            ops: 1_000,
            value: Bytes::from_static(b"v"),
            keys: Arc::new(key_rings("t:", 4, 8)),
        };
        let result = run_load(&target, &spec).await.unwrap();
        assert_eq!(result.ops, 1_000);
        assert_eq!(result.latencies_ns.len(), 1_000);
        assert_eq!(target.sets.load(Ordering::Relaxed), 500);
        assert_eq!(target.gets.load(Ordering::Relaxed), 500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_tasks_shares_the_operations_over_the_states() {
        let counters: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let result = run_tasks(counters.clone(), 10, |c: Arc<AtomicU64>, _i| async move {
            c.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(result.ops, 10);
        let counts: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, vec![4, 3, 3]);
        assert!(
            run_tasks(Vec::<u8>::new(), 1, |_s, _i| async { Ok(()) })
                .await
                .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn too_few_key_rings_is_an_error() {
        let spec = LoadSpec {
            concurrency: 4,
            ops: 10,
            value: Bytes::from_static(b"v"),
            keys: Arc::new(key_rings("t:", 2, 8)),
        };
        assert!(run_load(&Counting::default(), &spec).await.is_err());
    }
}
