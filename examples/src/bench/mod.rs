//! The benchmark harness behind `examples/bench`: how much does the resilience layer cost
//! compared with the raw driver under it?
//!
//! # What is measured
//!
//! Scenario `setget`: N concurrent Tokio tasks share `--ops` operations. Each task
//! alternates `SET key value` and `GET key` on its own ring of keys (so half the operations
//! are SETs, half GETs; each one is timed and counted as one operation). The same load runs
//! against:
//!
//! - **raw**: the driver itself, set up as its backend sets it up (redis-rs: a
//!   `ConnectionManager` with the backend's settings, cloned per task; fred: the very client
//!   `FredBackend` uses);
//! - **resilient**: [`ResilientClient::set`](resilience_core::ResilientClient::set) /
//!   [`get`](resilience_core::ResilientClient::get) over the backend on that driver, with the
//!   default breaker, no metrics recorder installed.
//!
//! # Fairness
//!
//! The ratio resilient/raw should measure the layer, not the setup, so:
//!
//! - one generic load function ([`load::run_load`]) drives both: same task structure, the same
//!   keys (built before the clock starts), the same 64-byte value, the same per-operation
//!   timing, one multiplexed connection each;
//! - before measuring a backend at a concurrency, both modes run a warm-up (a tenth of
//!   `--ops`), which connects, fills the allocator and the server's key space;
//! - then raw and resilient alternate, `--repeats` times, in ABBA order (raw, resilient,
//!   resilient, raw, …) so that a slow drift of the machine does not favour one mode;
//! - the reported run of each mode is the one with the **median** throughput (`--pick
//!   median`, the default), or the **best** (`--pick best`: on a busy machine, noise only
//!   ever slows a run down, so the best run is the closest to what the code can do).
//!
//! # Keys and cleanup
//!
//! Keys live under a prefix unique to the run (`bench:<pid>:<nanos>:`); they are deleted at
//! the end, also when a run fails. Without `--url`, a private `redis-server` is started on a
//! free port (never 6379) and stopped at the end.
//!
//! # Output
//!
//! [`run`] returns a [`Report`]: every run, the picked [`Sample`] of each mode and the
//! [`Comparison`]s. [`Report::table`] formats it for people; [`Sample::to_json_line`] gives
//! one JSON object per line:
//!
//! ```json
//! {"scenario":"setget","backend":"redis-rs","mode":"raw","concurrency":256,"ops":200000,"ops_per_sec":250000.0,"p50_us":900.1,"p99_us":1800.5,"cpu_us_per_op":3.05}
//! ```
//!
//! The other scenarios ([`tiers`], [`recall`], [`recovery`], [`drain`], [`open`], [`once`],
//! [`http_server`], and the
//! `redis-benchmark` comparison in [`compare`]) report [`Measurement`]s, one JSON line each
//! with its `scenario` field; [`Report::json_lines`] gives them all, [`chart::draw`] the SVG.
//!
//! # Pinning
//!
//! On a machine with two or more CPUs, every server the bench starts runs on one CPU and
//! the bench on the others ([`BenchConfig::pinning`], set by the binary unless `--no-pin`
//! or `--url`), so that neither side's CPU time includes its contention with the other.
//! The report's first line says where each ran ([`BenchConfig::placement`]).
//!
//! # Ratios, and finding where the overhead is
//!
//! - The **CPU time per operation** of this process (Linux) is in the table and in the
//!   JSON lines (`cpu_us_per_op`). It moves much less than throughput when other processes
//!   compete for the cores.
//! - Each ratio (`resilient/raw`, and `backend/raw` with the backend mode) is reported from
//!   throughput and from CPU per operation: the ratio of the medians, the median of the
//!   ratios of the repeats taken pairwise (each pair ran back to back), and the lowest and
//!   highest pairwise ratio ([`Ratio`]); one JSON line each, with `"mode":"resilient/raw"`.
//! - With [`BenchConfig::backend_mode`] (`--with-backend-mode`), a third mode, `backend`,
//!   runs the load on the backend alone (`KvBackend::execute`, no `ResilientClient`), which
//!   splits the overhead into the backend crate's part (translation, reply shaping, its own
//!   timeout) and the client's part (breaker, counters, metrics, span).
//! - For a figure that does not depend on the machine's load at all, `scripts/overhead.sh`
//!   counts instructions per operation with callgrind (binary `overhead`).

// Built with no backend feature, nothing can be measured and the machinery is unused.
#![cfg_attr(not(any(feature = "redis-rs", feature = "fred")), allow(dead_code))]

pub mod chart;
pub mod cluster;
pub mod compare;
pub mod drain;
mod error;
pub mod hand_rolled;
pub mod http_server;
pub mod load;
pub mod measurement;
pub mod once;
pub mod open;
pub mod recall;
pub mod recovery;
pub mod server_cpu;
pub mod targets;
pub mod tiers;
pub mod vsim;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use resilience_core::{ConnectionConfig, ResilientClient, ResilientClientBuilder};
use serde::Serialize;

pub use error::BenchError;
use load::{LoadResult, LoadSpec, OpError, Target, key_rings, run_load};
pub use measurement::{Goal, Measurement};
use targets::Resilient;

/// The `scenario` field of the SET/GET comparison.
pub const SCENARIO_SETGET: &str = "setget";

/// Keys in each task's ring.
const KEYS_PER_TASK: usize = 64;

/// A backend (and the raw driver under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    /// redis-rs (`RedisRsBackend`); needs the `redis-rs` feature.
    RedisRs,
    /// fred (`FredBackend`); needs the `fred` feature.
    Fred,
}

impl BenchError {
    /// An operation of `backend` failed during a run: what ran (`mode`), at which
    /// concurrency, and the error.
    pub fn load(
        backend: BackendChoice,
        mode: &'static str,
        concurrency: usize,
        error: impl ToString,
    ) -> Self {
        BenchError::Load {
            backend: backend.name(),
            mode,
            concurrency,
            error: error.to_string(),
        }
    }
}

impl BackendChoice {
    /// The name used in output: `"redis-rs"` or `"fred"`.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::RedisRs => "redis-rs",
            BackendChoice::Fred => "fred",
        }
    }

    /// Whether this build includes the backend (its cargo feature is on).
    pub fn is_built(self) -> bool {
        match self {
            BackendChoice::RedisRs => cfg!(feature = "redis-rs"),
            BackendChoice::Fred => cfg!(feature = "fred"),
        }
    }

    /// Every backend this build includes, in a fixed order.
    pub fn all_built() -> Vec<BackendChoice> {
        [BackendChoice::RedisRs, BackendChoice::Fred]
            .into_iter()
            .filter(|b| b.is_built())
            .collect()
    }
}

impl From<BackendChoice> for resilient_redis::BackendKind {
    fn from(b: BackendChoice) -> Self {
        match b {
            BackendChoice::RedisRs => resilient_redis::BackendKind::RedisRs,
            BackendChoice::Fred => resilient_redis::BackendKind::Fred,
        }
    }
}

/// A part of the suite, selected with `--scenario` (each one's JSON lines carry its name
/// in the `scenario` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Raw driver against resilient client, SET/GET (and `redis-benchmark` alongside).
    SetGet,
    /// memory-tiers: `store`, `recent(20)`, STM -> IM transitions ([`tiers`]).
    Tiers,
    /// memory-tiers: `similar(k=10)` against brute force, recall@10 ([`recall`]).
    Recall,
    /// Server killed and restarted: time to the first success and to Closed ([`recovery`]).
    Recovery,
    /// 100,000 writes queued during an outage, then the rate they land at ([`drain`]).
    Drain,
    /// Latency of a call the open breaker rejects ([`open`]).
    Open,
    /// An exactly-once `INCRBY` against a plain one ([`once`]).
    Once,
    /// SET/GET through the cluster router against each driver's own cluster client, on
    /// a private Redis Cluster ([`cluster`]).
    Cluster,
    /// memory-server over HTTP against the tiers in process: stores per second and
    /// `similar` latency ([`http_server`]).
    Server,
}

impl Scenario {
    /// Every scenario, in the order a full run takes them.
    pub const ALL: [Scenario; 9] = [
        Scenario::SetGet,
        Scenario::Tiers,
        Scenario::Recall,
        Scenario::Recovery,
        Scenario::Drain,
        Scenario::Open,
        Scenario::Once,
        Scenario::Cluster,
        Scenario::Server,
    ];

    /// The name on the command line and in the `scenario` field.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SetGet => SCENARIO_SETGET,
            Scenario::Tiers => tiers::SCENARIO,
            Scenario::Recall => recall::SCENARIO,
            Scenario::Recovery => recovery::SCENARIO,
            Scenario::Drain => drain::SCENARIO,
            Scenario::Open => open::SCENARIO,
            Scenario::Once => once::SCENARIO,
            Scenario::Cluster => cluster::SCENARIO,
            Scenario::Server => http_server::SCENARIO,
        }
    }

    /// Parses a comma-separated list (`setget,tiers` or `all`) into scenarios, in the
    /// suite's order, without duplicates.
    pub fn parse_list(list: &str) -> Result<Vec<Scenario>, BenchError> {
        let mut wanted = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                wanted.extend(Scenario::ALL);
                continue;
            }
            match Scenario::ALL.into_iter().find(|s| s.name() == name) {
                Some(s) => wanted.push(s),
                None => {
                    return Err(BenchError::InvalidConfig(format!(
                        "unknown scenario {name:?}: expected setget, tiers, recall, recovery, drain, open, once, cluster, server or all"
                    )));
                }
            }
        }
        Ok(Scenario::ALL
            .into_iter()
            .filter(|s| wanted.contains(s))
            .collect())
    }
}

/// Raw driver or resilient client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The driver alone.
    Raw,
    /// `ResilientClient` over the backend on that driver.
    Resilient,
    /// The backend alone (`KvBackend::execute`), without the client: a diagnostic mode,
    /// measured only with [`BenchConfig::backend_mode`].
    Backend,
}

impl Mode {
    /// `"raw"` or `"resilient"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Resilient => "resilient",
            Mode::Backend => "backend",
        }
    }
}

/// Which of the repeated runs of a mode is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The run with the median throughput (the upper middle one for an even count).
    Median,
    /// The run with the highest throughput.
    Best,
}

/// Settings of a benchmark run. [`Default`] is the command line's defaults.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server; `None` starts a private `redis-server` on a free port.
    pub url: Option<String>,
    /// Backends to measure, in order.
    pub backends: Vec<BackendChoice>,
    /// Concurrency levels (tasks), in order.
    pub concurrency: Vec<usize>,
    /// Operations per measured run.
    pub ops: u64,
    /// Measured runs per mode (alternating with the other mode).
    pub repeats: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Which run of each mode to report.
    pub pick: Pick,
    /// Print one line per run to stderr while running.
    pub progress: bool,
    /// Also measure the backend alone (mode `backend`), to split the overhead between the
    /// backend crate and the resilient client.
    pub backend_mode: bool,
    /// The scenarios to run (in the suite's order). Default: all of them.
    pub scenarios: Vec<Scenario>,
    /// `tiers`: agents, one task each. Default 64.
    pub tier_agents: usize,
    /// `tiers`: memories stored in all (and `recent(20)` queries made). Default 64,000.
    pub tier_ops: u64,
    /// `recall`: memories of the one agent searched. Default 10,000.
    pub recall_memories: u64,
    /// `recall`: `similar` queries measured (brute force runs a tenth as many). Default 200.
    pub recall_queries: usize,
    /// `recall`: embedding dimension. Default 384.
    pub recall_dimension: usize,
    /// `recall`: also search behind the fault proxy, which holds each chunk this long
    /// each way (`similar10_delayed`). Default `None`: loopback only.
    pub recall_delay: Option<Duration>,
    /// `recall`: a Redis 8 `redis-server` binary, to run the `VSIM` baseline on the same
    /// vectors (`vsim10`, …). Default `None`: no baseline.
    pub vsim_server: Option<std::path::PathBuf>,
    /// `recovery`: how long the server stays down. Default 1 s.
    pub outage: Duration,
    /// `recovery`: tasks of the light load (one GET per millisecond each). Default 4.
    pub recovery_tasks: usize,
    /// `drain`: writes queued during the outage. Default 100,000.
    pub drain_writes: u64,
    /// `drain`: the client's `QueueConfig::batch_size`. Default 1024.
    pub drain_batch_size: usize,
    /// `open`: rejected calls measured. Default 1,000,000.
    pub open_ops: u64,
    /// `open`: tasks hammering `get`. Default 64.
    pub open_concurrency: usize,
    /// `once`: `INCRBY`s per mode. Default 20,000.
    pub once_ops: u64,
    /// `server`: stores per round and mode. Default 20,000.
    pub server_ops: u64,
    /// `server`: concurrent callers (HTTP clients, or library tasks). Default 64.
    pub server_clients: usize,
    /// `setget`: requests of the `redis-benchmark` comparison (0: skip it). Default 200,000.
    pub redis_benchmark_requests: u64,
    /// Where the private servers run: with a split, every server the bench starts runs on
    /// its `server` CPU (the caller has pinned the bench itself to the `client` CPUs, see
    /// [`testkit::affinity`]). `None`: wherever the OS puts them.
    pub pinning: Option<testkit::affinity::CpuSplit>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            url: None,
            backends: BackendChoice::all_built(),
            concurrency: vec![1, 16, 256],
            ops: 200_000,
            repeats: 3,
            value_size: 64,
            pick: Pick::Median,
            progress: false,
            backend_mode: false,
            scenarios: Scenario::ALL.to_vec(),
            tier_agents: 64,
            tier_ops: 64_000,
            recall_memories: 10_000,
            recall_queries: 200,
            recall_dimension: 384,
            recall_delay: None,
            vsim_server: None,
            outage: Duration::from_secs(1),
            recovery_tasks: 4,
            drain_writes: 100_000,
            drain_batch_size: 1024,
            open_ops: 1_000_000,
            open_concurrency: 64,
            once_ops: 20_000,
            server_ops: 20_000,
            server_clients: 64,
            redis_benchmark_requests: 200_000,
            pinning: None,
        }
    }
}

impl BenchConfig {
    /// Starts a private `redis-server` (on the pinned CPU when [`BenchConfig::pinning`] is
    /// set).
    pub async fn spawn_server(&self) -> Result<testkit::server::RedisServer, BenchError> {
        let mut builder = testkit::server::RedisServer::builder();
        if let Some(split) = &self.pinning {
            builder = builder.cpus(vec![split.server]);
        }
        Ok(builder.spawn().await?)
    }

    /// One line saying where the client and the server ran, for the report's header.
    pub fn placement(&self) -> String {
        match (&self.pinning, &self.url) {
            (Some(split), _) => format!("pinned: {}", split.describe()),
            (None, Some(_)) => "not pinned by the bench (--url): pin the server with `taskset -c 1 redis-server ...` and the bench with `taskset -c 0 bench ...`".to_owned(),
            (None, None) => "not pinned: client and server share every CPU (ratios include their contention)".to_owned(),
        }
    }
}

/// One measured run (or the picked one) of one mode; serialises to the JSON line format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The scenario (`"setget"`).
    pub scenario: &'static str,
    /// `"redis-rs"` or `"fred"`.
    pub backend: &'static str,
    /// Raw driver or resilient client.
    pub mode: Mode,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Operations completed.
    pub ops: u64,
    /// Throughput over the run's wall time.
    pub ops_per_sec: f64,
    /// Median latency of one operation, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency of one operation, in microseconds.
    pub p99_us: f64,
    /// CPU time of this process per operation, in microseconds (Linux only; left out of
    /// the JSON line elsewhere). Steadier than throughput on a busy machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_op: Option<f64>,
}

impl Sample {
    fn from_load(
        scenario: &'static str,
        backend: BackendChoice,
        mode: Mode,
        concurrency: usize,
        r: &LoadResult,
    ) -> Self {
        Sample {
            scenario,
            backend: backend.name(),
            mode,
            concurrency,
            ops: r.ops,
            ops_per_sec: r.ops_per_sec(),
            p50_us: r.quantile_us(0.5),
            p99_us: r.quantile_us(0.99),
            cpu_us_per_op: r.cpu_us_per_op(),
        }
    }

    /// The sample as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> Result<String, BenchError> {
        serde_json::to_string(self).map_err(|e| BenchError::InvalidConfig(e.to_string()))
    }
}

/// Resilient against raw for one backend and concurrency (the picked samples).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The scenario (`"setget"`, or `"cluster"`: against a Redis Cluster, raw being the
    /// driver's own cluster client).
    pub scenario: &'static str,
    /// The backend.
    pub backend: &'static str,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// The picked raw sample.
    pub raw: Sample,
    /// The picked resilient sample.
    pub resilient: Sample,
    /// The picked backend-only sample, when [`BenchConfig::backend_mode`] is on.
    pub backend_only: Option<Sample>,
    /// Every measured run of this backend and concurrency, in the order they ran (empty
    /// when rebuilt from JSON lines).
    pub runs: Vec<Sample>,
}

/// A ratio between two modes: over the medians of the repeats, and its lowest and highest
/// value over the repeats taken pairwise (repeat `i` of one mode against repeat `i` of the
/// other, which ran next to each other in ABBA order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// Median of one mode over median of the other.
    pub median: f64,
    /// The median of the pairwise ratios. Each pair ran back to back, so a pair's two runs
    /// saw the same machine; on a VM whose speed drifts from one run to the next this is the
    /// steadier figure.
    pub paired: f64,
    /// A 95 % confidence interval of [`paired`](Self::paired), free of any assumption about
    /// how the runs spread ([`median_interval`]); `None` under 6 repeats. When it still
    /// straddles a target, more repeats are needed, not a different reading.
    pub paired_interval: Option<(f64, f64)>,
    /// The lowest pairwise ratio.
    pub min: f64,
    /// The highest pairwise ratio.
    pub max: f64,
}

impl Ratio {
    /// The ratio of `num` over `den` by `metric`, or `None` when a run lacks the metric or
    /// the counts differ.
    fn of(
        num: &[&Sample],
        den: &[&Sample],
        metric: impl Fn(&Sample) -> Option<f64>,
    ) -> Option<Ratio> {
        if num.is_empty() || num.len() != den.len() {
            return None;
        }
        let a: Vec<f64> = num.iter().map(|s| metric(s)).collect::<Option<_>>()?;
        let b: Vec<f64> = den.iter().map(|s| metric(s)).collect::<Option<_>>()?;
        let pairs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        let median = median(&a) / median(&b);
        median.is_finite().then(|| Ratio {
            median,
            paired: self::median(&pairs),
            paired_interval: median_interval(&pairs),
            min: pairs.iter().copied().fold(f64::INFINITY, f64::min),
            max: pairs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} (paired {:.3}", self.median, self.paired)?;
        if let Some((low, high)) = self.paired_interval {
            write!(f, ", 95% {low:.3}..{high:.3}")?;
        }
        write!(f, ") [{:.3}..{:.3}]", self.min, self.max)
    }
}

/// A 95 % confidence interval of the median of `values`, from their order statistics: the
/// `k`-th lowest and `k`-th highest value, with `k` the largest rank such that a fair coin
/// tossed once per value comes up heads at most `k - 1` times with probability at most
/// 2.5 %. It assumes nothing about the distribution (the runs of a noisy VM are far from
/// normal). `None` under 6 values, where no such `k` exists.
pub fn median_interval(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    // P(X <= j) for X ~ Binomial(n, 1/2), accumulated term by term in logarithms.
    let mut log_term = n as f64 * 0.5f64.ln();
    let mut below = 0.0;
    let mut k = 0;
    for j in 0..n {
        below += log_term.exp();
        if below > 0.025 {
            break;
        }
        k = j + 1;
        log_term += ((n - j) as f64).ln() - ((j + 1) as f64).ln();
    }
    if k == 0 {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some((v[k - 1], v[n - k]))
}

/// The median of `values` (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Comparison {
    /// Resilient throughput divided by raw throughput (1.0 = no overhead), of the picked
    /// samples.
    pub fn ratio(&self) -> f64 {
        if self.raw.ops_per_sec > 0.0 {
            self.resilient.ops_per_sec / self.raw.ops_per_sec
        } else {
            0.0
        }
    }

    fn runs_of(&self, mode: Mode) -> Vec<&Sample> {
        self.runs.iter().filter(|r| r.mode == mode).collect()
    }

    /// Throughput of `mode` over raw's, from every repeat (`None` without runs).
    pub fn throughput_ratio(&self, mode: Mode) -> Option<Ratio> {
        Ratio::of(&self.runs_of(mode), &self.runs_of(Mode::Raw), |s| {
            Some(s.ops_per_sec)
        })
    }

    /// CPU µs per operation of `mode` over raw's, from every repeat (1.0 = no overhead;
    /// `None` without runs or CPU figures).
    pub fn cpu_ratio(&self, mode: Mode) -> Option<Ratio> {
        Ratio::of(&self.runs_of(mode), &self.runs_of(Mode::Raw), |s| {
            s.cpu_us_per_op
        })
    }

    /// The comparison as JSON lines (no trailing newlines), one per mode compared with raw
    /// (`"mode":"resilient/raw"`, `"backend/raw"`): the medians of both ratios and their
    /// spread over the repeats.
    fn json_lines(&self) -> Result<Vec<String>, BenchError> {
        let mut lines = Vec::new();
        let modes = [Mode::Resilient, Mode::Backend];
        for mode in modes {
            let (Some(ops), cpu) = (self.throughput_ratio(mode), self.cpu_ratio(mode)) else {
                continue;
            };
            let line = serde_json::json!({
                "scenario": self.scenario,
                "backend": self.backend,
                "mode": format!("{}/raw", mode.name()),
                "concurrency": self.concurrency,
                "repeats": self.runs_of(mode).len(),
                "ops_ratio": ops.median,
                "ops_ratio_paired": ops.paired,
                "ops_ratio_paired_95": ops.paired_interval.map(|(l, h)| [l, h]),
                "ops_ratio_min": ops.min,
                "ops_ratio_max": ops.max,
                "cpu_ratio": cpu.map(|r| r.median),
                "cpu_ratio_paired": cpu.map(|r| r.paired),
                "cpu_ratio_paired_95": cpu.and_then(|r| r.paired_interval).map(|(l, h)| [l, h]),
                "cpu_ratio_min": cpu.map(|r| r.min),
                "cpu_ratio_max": cpu.map(|r| r.max),
            });
            lines.push(
                serde_json::to_string(&line)
                    .map_err(|e| BenchError::InvalidConfig(e.to_string()))?,
            );
        }
        Ok(lines)
    }
}

/// Everything a benchmark run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every measured run, in the order they ran (warm-ups excluded).
    pub runs: Vec<Sample>,
    /// The picked sample of each backend, concurrency and mode.
    pub samples: Vec<Sample>,
    /// One per backend and concurrency.
    pub comparisons: Vec<Comparison>,
    /// The numbers of the other scenarios (and `redis-benchmark`), in the order measured.
    pub measurements: Vec<Measurement>,
    /// Notes for people (a skipped comparison, …), printed under the table.
    pub notes: Vec<String>,
    /// Where the client and the server ran ([`BenchConfig::placement`]), printed first.
    pub placement: String,
}

impl Report {
    /// A table for people: one row per mode, the ratio under each pair, the spread of the
    /// repeated runs in the last column.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if !self.placement.is_empty() {
            let _ = writeln!(out, "{}\n", self.placement);
        }
        if !self.comparisons.is_empty() {
            out.push_str(&self.setget_table());
        }
        if !self.measurements.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&measurement::table(&self.measurements));
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// Every result as JSON lines (the `setget` samples, then the measurements), each
    /// ending with a newline.
    pub fn json_lines(&self) -> Result<String, BenchError> {
        let mut out = String::new();
        for s in &self.samples {
            out.push_str(&s.to_json_line()?);
            out.push('\n');
        }
        for c in &self.comparisons {
            for line in c.json_lines()? {
                out.push_str(&line);
                out.push('\n');
            }
        }
        for m in &self.measurements {
            out.push_str(&m.to_json_line()?);
            out.push('\n');
        }
        Ok(out)
    }

    fn setget_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:<9} {:>5}  {:<9} {:>11} {:>9} {:>9} {:>11}   runs: ops/s (cpu µs/op)",
            "scenario", "backend", "conc", "mode", "ops/s", "p50 µs", "p99 µs", "cpu µs/op"
        );
        for c in &self.comparisons {
            for s in [Some(&c.raw), c.backend_only.as_ref(), Some(&c.resilient)]
                .into_iter()
                .flatten()
            {
                let runs: Vec<String> = c
                    .runs
                    .iter()
                    .filter(|r| r.mode == s.mode)
                    .map(|r| match r.cpu_us_per_op {
                        Some(cpu) => format!("{:.0} ({cpu:.2})", r.ops_per_sec),
                        None => format!("{:.0}", r.ops_per_sec),
                    })
                    .collect();
                let cpu = s
                    .cpu_us_per_op
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}"));
                let _ = writeln!(
                    out,
                    "{:<8} {:<9} {:>5}  {:<9} {:>11.0} {:>9.1} {:>9.1} {:>11}   {}",
                    c.scenario,
                    s.backend,
                    s.concurrency,
                    s.mode.name(),
                    s.ops_per_sec,
                    s.p50_us,
                    s.p99_us,
                    cpu,
                    runs.join(" ")
                );
            }
            for mode in [Mode::Backend, Mode::Resilient] {
                let Some(ops) = c.throughput_ratio(mode) else {
                    continue;
                };
                let cpu = c
                    .cpu_ratio(mode)
                    .map_or_else(|| "-".to_owned(), |r| r.to_string());
                let _ = writeln!(
                    out,
                    "{:<8} {:<9} {:>5}  {}/raw: ops/s {ops}, cpu µs/op {cpu}",
                    c.scenario,
                    c.backend,
                    c.concurrency,
                    mode.name(),
                );
            }
        }
        out
    }
}

fn validate(config: &BenchConfig) -> Result<(), BenchError> {
    if config.backends.is_empty() {
        return Err(BenchError::InvalidConfig(
            "no backend selected (none is built in? enable the redis-rs or fred feature)".into(),
        ));
    }
    if let Some(b) = config.backends.iter().find(|b| !b.is_built()) {
        return Err(BenchError::NotBuilt(b.name()));
    }
    if config.concurrency.is_empty() || config.concurrency.contains(&0) {
        return Err(BenchError::InvalidConfig(
            "concurrency levels must be a non-empty list of numbers above 0".into(),
        ));
    }
    if config.ops == 0 || config.repeats == 0 {
        return Err(BenchError::InvalidConfig(
            "ops and repeats must be above 0".into(),
        ));
    }
    if config.scenarios.is_empty() {
        return Err(BenchError::InvalidConfig("no scenario selected".into()));
    }
    if config.tier_agents == 0 || config.tier_ops == 0 {
        return Err(BenchError::InvalidConfig(
            "tier agents and tier ops must be above 0".into(),
        ));
    }
    if config.recall_dimension == 0 || config.recall_dimension > memory_tiers::MAX_DIMENSION {
        return Err(BenchError::InvalidConfig(format!(
            "recall dimension must be 1..={}",
            memory_tiers::MAX_DIMENSION
        )));
    }
    if config.drain_writes == 0 || config.drain_batch_size == 0 {
        return Err(BenchError::InvalidConfig(
            "drain writes and drain batch size must be above 0".into(),
        ));
    }
    if config.open_ops == 0 || config.open_concurrency == 0 || config.recovery_tasks == 0 {
        return Err(BenchError::InvalidConfig(
            "open ops, open concurrency and recovery tasks must be above 0".into(),
        ));
    }
    Ok(())
}

/// Connects `backend` to `connection` and wraps it in a [`ResilientClient`] named `bench`,
/// configured by `configure` (defaults otherwise).
pub async fn connect_client(
    connection: &ConnectionConfig,
    backend: BackendChoice,
    configure: impl FnOnce(ResilientClientBuilder) -> ResilientClientBuilder,
) -> Result<ResilientClient, BenchError> {
    let kv = resilient_redis::connect_backend(connection, backend.into())
        .await
        .map_err(|e| BenchError::Connect {
            backend: backend.name(),
            message: e.to_string(),
        })?;
    configure(ResilientClient::builder_arc("bench", kv))
        .build()
        .map_err(|e| BenchError::Connect {
            backend: backend.name(),
            message: e.to_string(),
        })
}

/// Runs the benchmark described by `config`: every selected scenario, in the suite's
/// order. Must run on a multi-thread Tokio runtime (on a current-thread one it runs, but
/// measures one core only).
///
/// `setget`, `tiers`, `open` and `redis-benchmark` use the server of `config.url`, or one
/// private `redis-server` started for the run; `recovery` and `drain` always start their
/// own private server (they kill it).
pub async fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    validate(config)?;
    let shared = config.scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::SetGet | Scenario::Tiers | Scenario::Recall | Scenario::Open | Scenario::Once
        )
    });
    let (server, connection) = match (&config.url, shared) {
        (Some(url), _) => (None, ConnectionConfig::from_url(url)?),
        (None, true) => {
            let server = config.spawn_server().await?;
            let connection = server.connection_config();
            (Some(server), connection)
        }
        (None, false) => (None, ConnectionConfig::default()),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let run_id = format!("{}:{nanos}", std::process::id());
    let mut report = Report {
        placement: config.placement(),
        ..Report::default()
    };
    let order = Scenario::ALL
        .into_iter()
        .filter(|s| config.scenarios.contains(s));
    for scenario in order {
        if config.progress {
            eprintln!("scenario {}", scenario.name());
        }
        match scenario {
            Scenario::SetGet => {
                run_setget(config, &connection, &run_id, &mut report).await?;
                if config.redis_benchmark_requests > 0 {
                    match compare::run(
                        &connection,
                        config.redis_benchmark_requests,
                        config.value_size,
                    )
                    .await
                    {
                        Ok(Some(ms)) => report.measurements.extend(ms),
                        Ok(None) => report
                            .notes
                            .push("redis-benchmark not found on PATH: comparison skipped".into()),
                        Err(e) => report.notes.push(format!("redis-benchmark failed: {e}")),
                    }
                }
            }
            Scenario::Tiers => {
                for &backend in &config.backends {
                    let namespace = format!("bench-{}-{run_id}", backend.name());
                    let ms = tiers::run(config, backend, &connection, &namespace).await?;
                    progress(config, &ms);
                    report.measurements.extend(ms);
                }
            }
            Scenario::Recall => {
                for &backend in &config.backends {
                    let namespace = format!("bench-recall-{}-{run_id}", backend.name());
                    let ms = recall::run(config, backend, &connection, &namespace).await?;
                    progress(config, &ms);
                    report.measurements.extend(ms);
                }
            }
            Scenario::Recovery => {
                for &backend in &config.backends {
                    let ms = recovery::run(config, backend).await?;
                    progress(config, &ms);
                    report.measurements.extend(ms);
                }
            }
            Scenario::Drain => {
                for &backend in &config.backends {
                    let ms = drain::run(config, backend).await?;
                    progress(config, &ms);
                    report.measurements.extend(ms);
                }
            }
            Scenario::Open => {
                for &backend in &config.backends {
                    let ms = open::run(config, backend, &connection).await?;
                    progress(config, &ms);
                    report.measurements.extend(ms);
                }
            }
            Scenario::Once => {
                for &backend in &config.backends {
                    let ms = once::run(config, backend, &connection, &run_id).await?;
                    progress(config, &ms);
                    report.measurements.extend(ms);
                }
            }
            Scenario::Cluster => cluster::run(config, &run_id, &mut report).await?,
            Scenario::Server => {
                let ms = http_server::run(config, &config.backends).await?;
                report.measurements.extend(ms);
            }
        }
    }
    drop(server);
    Ok(report)
}

fn progress(config: &BenchConfig, measurements: &[Measurement]) {
    if config.progress {
        for m in measurements {
            eprintln!(
                "  {} {} {}: {:.2} {}{}",
                m.scenario,
                m.backend,
                m.metric,
                m.value,
                m.unit,
                m.target
                    .as_ref()
                    .map(|t| format!(" (target {t})"))
                    .unwrap_or_default()
            );
        }
    }
}

async fn run_setget(
    config: &BenchConfig,
    connection: &ConnectionConfig,
    run_id: &str,
    report: &mut Report,
) -> Result<(), BenchError> {
    let prefix = format!("bench:{run_id}:");
    let tasks = config.concurrency.iter().copied().max().unwrap_or(1);
    let keys = Arc::new(key_rings(&prefix, tasks, KEYS_PER_TASK));
    let value = Bytes::from(vec![b'x'; config.value_size]);
    for &backend in &config.backends {
        let bench = Bench {
            scenario: SCENARIO_SETGET,
            config,
            backend,
            keys: Arc::clone(&keys),
            value: value.clone(),
        };
        match backend {
            BackendChoice::RedisRs => redis_rs(&bench, connection, report).await?,
            BackendChoice::Fred => fred(&bench, connection, report).await?,
        }
    }
    Ok(())
}

/// Measures redis-rs: the raw side is a `ConnectionManager` on one server, or redis-rs's
/// own cluster connection when `connection` names a cluster.
#[cfg(feature = "redis-rs")]
async fn redis_rs(
    bench: &Bench<'_>,
    connection: &ConnectionConfig,
    report: &mut Report,
) -> Result<(), BenchError> {
    let connect = |message: String| BenchError::Connect {
        backend: "redis-rs",
        message,
    };
    if connection.is_cluster() {
        let backend =
            resilient_redis::connect_backend(connection, resilient_redis::BackendKind::RedisRs)
                .await
                .map_err(|e| connect(e.to_string()))?;
        let client = ResilientClient::builder_arc("bench", backend).build()?;
        let raw = cluster::raw::RawRedisRsCluster::connect(connection)
            .await
            .map_err(|e| connect(e.0))?;
        return bench.measure_and_clean(raw, client, report).await;
    }
    let backend = backend_redis_rs::RedisRsBackend::connect(connection)
        .await
        .map_err(|e| connect(e.to_string()))?;
    let client = ResilientClient::builder("bench", backend).build()?;
    let raw = targets::RawRedisRs::connect(connection)
        .await
        .map_err(|e| connect(e.0))?;
    bench.measure_and_clean(raw, client, report).await
}

#[cfg(not(feature = "redis-rs"))]
async fn redis_rs(
    _bench: &Bench<'_>,
    _connection: &ConnectionConfig,
    _report: &mut Report,
) -> Result<(), BenchError> {
    Err(BenchError::NotBuilt("redis-rs"))
}

/// Measures fred: the raw side is the backend's own fred client on one server, or fred's
/// clustered client when `connection` names a cluster.
#[cfg(feature = "fred")]
async fn fred(
    bench: &Bench<'_>,
    connection: &ConnectionConfig,
    report: &mut Report,
) -> Result<(), BenchError> {
    let connect = |message: String| BenchError::Connect {
        backend: "fred",
        message,
    };
    if connection.is_cluster() {
        let backend =
            resilient_redis::connect_backend(connection, resilient_redis::BackendKind::Fred)
                .await
                .map_err(|e| connect(e.to_string()))?;
        let raw = cluster::raw::RawFredCluster::connect(connection)
            .await
            .map_err(|e| connect(e.0))?;
        let client = ResilientClient::builder_arc("bench", backend).build()?;
        return bench.measure_and_clean(raw, client, report).await;
    }
    let backend = backend_fred::FredBackend::connect(connection)
        .await
        .map_err(|e| connect(e.to_string()))?;
    let raw = targets::RawFred(fred::interfaces::ClientLike::with_options(
        backend.client(),
        backend.command_options(),
    ));
    let client = ResilientClient::builder("bench", backend).build()?;
    bench.measure_and_clean(raw, client, report).await
}

#[cfg(not(feature = "fred"))]
async fn fred(
    _bench: &Bench<'_>,
    _connection: &ConnectionConfig,
    _report: &mut Report,
) -> Result<(), BenchError> {
    Err(BenchError::NotBuilt("fred"))
}

/// One backend's part of the run.
struct Bench<'a> {
    /// The scenario the samples are reported under.
    scenario: &'static str,
    config: &'a BenchConfig,
    backend: BackendChoice,
    keys: Arc<Vec<Vec<String>>>,
    value: Bytes,
}

impl Bench<'_> {
    /// Measures every concurrency level, then deletes the keys (also after a failure).
    async fn measure_and_clean<R: Target>(
        &self,
        raw: R,
        client: ResilientClient,
        report: &mut Report,
    ) -> Result<(), BenchError> {
        let resilient = Resilient(client.clone());
        let backend_only = targets::BackendOnly(Arc::clone(client.backend()));
        let mut result = Ok(());
        for &concurrency in &self.config.concurrency {
            result = self
                .measure(&raw, &resilient, &backend_only, concurrency, report)
                .await;
            if result.is_err() {
                break;
            }
        }
        let cleaned = self.clean(&client).await;
        let _ = client.shutdown(std::time::Duration::ZERO).await;
        result.and(cleaned)
    }

    /// Deletes the keys, in one `DEL` per hash slot and 1,000 keys (a cluster refuses
    /// keys of several slots in one command).
    async fn clean(&self, client: &ResilientClient) -> Result<(), BenchError> {
        let mut by_slot: std::collections::BTreeMap<u16, Vec<&str>> = Default::default();
        for key in self.keys.iter().flatten() {
            by_slot
                .entry(resilience_core::hash_slot(key.as_bytes()))
                .or_default()
                .push(key);
        }
        for keys in by_slot.values() {
            for chunk in keys.chunks(1_000) {
                client.delete(chunk.iter().copied()).await?;
            }
        }
        Ok(())
    }

    fn spec(&self, concurrency: usize, ops: u64) -> LoadSpec {
        LoadSpec {
            concurrency,
            ops,
            value: self.value.clone(),
            keys: Arc::clone(&self.keys),
        }
    }

    async fn once<T: Target>(
        &self,
        target: &T,
        mode: Mode,
        spec: &LoadSpec,
    ) -> Result<LoadResult, BenchError> {
        run_load(target, spec)
            .await
            .map_err(|OpError(error)| BenchError::Load {
                backend: self.backend.name(),
                mode: mode.name(),
                concurrency: spec.concurrency,
                error,
            })
    }

    /// Warm-up of both modes, then `repeats` alternating measured runs of each.
    async fn measure<R: Target>(
        &self,
        raw: &R,
        resilient: &Resilient,
        backend_only: &targets::BackendOnly,
        concurrency: usize,
        report: &mut Report,
    ) -> Result<(), BenchError> {
        let warmup = self.spec(
            concurrency,
            (self.config.ops / 10).max(concurrency as u64 * 2),
        );
        self.once(raw, Mode::Raw, &warmup).await?;
        self.once(resilient, Mode::Resilient, &warmup).await?;
        if self.config.backend_mode {
            self.once(backend_only, Mode::Backend, &warmup).await?;
        }

        let spec = self.spec(concurrency, self.config.ops);
        let mut raws = Vec::with_capacity(self.config.repeats);
        let mut resilients = Vec::with_capacity(self.config.repeats);
        let mut backends = Vec::new();
        let mut modes = vec![Mode::Raw, Mode::Resilient];
        if self.config.backend_mode {
            modes.insert(1, Mode::Backend);
        }
        for repeat in 0..self.config.repeats {
            // ABBA: raw first on even repeats, resilient first on odd ones.
            let mut order = modes.clone();
            if repeat % 2 == 1 {
                order.reverse();
            }
            for mode in order {
                let result = match mode {
                    Mode::Raw => self.once(raw, mode, &spec).await?,
                    Mode::Resilient => self.once(resilient, mode, &spec).await?,
                    Mode::Backend => self.once(backend_only, mode, &spec).await?,
                };
                let sample =
                    Sample::from_load(self.scenario, self.backend, mode, concurrency, &result);
                if self.config.progress {
                    eprintln!(
                        "  {} c={} {} run {}/{}: {:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs, cpu {:.2} µs/op",
                        sample.backend,
                        concurrency,
                        mode.name(),
                        repeat + 1,
                        self.config.repeats,
                        sample.ops_per_sec,
                        sample.p50_us,
                        sample.p99_us,
                        sample.cpu_us_per_op.unwrap_or(f64::NAN)
                    );
                }
                report.runs.push(sample.clone());
                match mode {
                    Mode::Raw => raws.push(sample),
                    Mode::Resilient => resilients.push(sample),
                    Mode::Backend => backends.push(sample),
                }
            }
        }
        let raw = pick(raws, self.config.pick)?;
        let resilient = pick(resilients, self.config.pick)?;
        let backend_only = if backends.is_empty() {
            None
        } else {
            Some(pick(backends, self.config.pick)?)
        };
        report.samples.push(raw.clone());
        report.samples.extend(backend_only.clone());
        report.samples.push(resilient.clone());
        let runs = report
            .runs
            .iter()
            .filter(|r| r.backend == self.backend.name() && r.concurrency == concurrency)
            .cloned()
            .collect();
        report.comparisons.push(Comparison {
            scenario: self.scenario,
            backend: self.backend.name(),
            concurrency,
            raw,
            resilient,
            backend_only,
            runs,
        });
        Ok(())
    }
}

/// The run to report out of `runs` (not empty: `repeats` is at least 1).
fn pick(mut runs: Vec<Sample>, how: Pick) -> Result<Sample, BenchError> {
    runs.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
    let index = match how {
        Pick::Median => runs.len() / 2,
        Pick::Best => runs.len().saturating_sub(1),
    };
    if index < runs.len() {
        Ok(runs.swap_remove(index))
    } else {
        Err(BenchError::InvalidConfig("no measured run".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_interval_takes_the_binomial_order_statistics() {
        // Too few values for any 95 % interval: 5 coins all tails is 1/32 > 2.5 %.
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        // Six values: only min..max (1/64 per side).
        assert_eq!(
            median_interval(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]),
            Some((1.0, 6.0))
        );
        // 41 values: the 14th lowest and 14th highest (P(X <= 13) = 1.4 %, P(X <= 14) = 3.0 %).
        let values: Vec<f64> = (1..=41).rev().map(f64::from).collect();
        assert_eq!(median_interval(&values), Some((14.0, 28.0)));
    }

    fn sample(mode: Mode, ops_per_sec: f64) -> Sample {
        Sample {
            scenario: SCENARIO_SETGET,
            backend: "redis-rs",
            mode,
            concurrency: 16,
            ops: 1000,
            ops_per_sec,
            p50_us: 10.0,
            p99_us: 20.5,
            cpu_us_per_op: Some(3.0),
        }
    }

    #[test]
    fn json_line_has_exactly_the_documented_fields() {
        let line = sample(Mode::Resilient, 1234.5).to_json_line().unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut expected = vec![
            "scenario",
            "backend",
            "mode",
            "concurrency",
            "ops",
            "ops_per_sec",
            "p50_us",
            "p99_us",
            "cpu_us_per_op",
        ];
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(v["mode"], "resilient");
        assert_eq!(v["scenario"], "setget");
        assert_eq!(v["concurrency"], 16);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn ratios_are_of_medians_with_the_pairwise_spread() {
        let run = |mode, ops, cpu| Sample {
            cpu_us_per_op: Some(cpu),
            ..sample(mode, ops)
        };
        let c = Comparison {
            scenario: SCENARIO_SETGET,
            backend: "redis-rs",
            concurrency: 16,
            raw: sample(Mode::Raw, 100.0),
            resilient: sample(Mode::Resilient, 90.0),
            backend_only: None,
            runs: vec![
                run(Mode::Raw, 100.0, 10.0),
                run(Mode::Resilient, 90.0, 11.0),
                run(Mode::Resilient, 80.0, 12.0),
                run(Mode::Raw, 100.0, 10.0),
                run(Mode::Raw, 50.0, 20.0),
                run(Mode::Resilient, 50.0, 20.0),
            ],
        };
        let ops = c.throughput_ratio(Mode::Resilient).unwrap();
        assert!((ops.median - 0.8).abs() < 1e-9, "{ops}");
        assert!((ops.min - 0.8).abs() < 1e-9 && (ops.max - 1.0).abs() < 1e-9);
        // Pairs 0.9, 0.8, 1.0: their median.
        assert!((ops.paired - 0.9).abs() < 1e-9, "{ops}");
        let cpu = c.cpu_ratio(Mode::Resilient).unwrap();
        assert!((cpu.median - 1.2).abs() < 1e-9, "{cpu}");
        assert!((cpu.min - 1.0).abs() < 1e-9 && (cpu.max - 1.2).abs() < 1e-9);
        // Pairs 1.1, 1.2, 1.0.
        assert!((cpu.paired - 1.1).abs() < 1e-9, "{cpu}");
        assert!(c.throughput_ratio(Mode::Backend).is_none());
        let lines = c.json_lines().unwrap();
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["mode"], "resilient/raw");
        assert_eq!(v["repeats"], 3);
        assert!((v["cpu_ratio"].as_f64().unwrap() - 1.2).abs() < 1e-9);
    }

    #[test]
    fn pick_median_and_best() {
        let runs = || {
            vec![
                sample(Mode::Raw, 3.0),
                sample(Mode::Raw, 1.0),
                sample(Mode::Raw, 2.0),
            ]
        };
        assert_eq!(pick(runs(), Pick::Median).unwrap().ops_per_sec, 2.0);
        assert_eq!(pick(runs(), Pick::Best).unwrap().ops_per_sec, 3.0);
        assert!(pick(Vec::new(), Pick::Median).is_err());
    }

    #[test]
    fn ratio_is_resilient_over_raw() {
        let c = Comparison {
            scenario: SCENARIO_SETGET,
            backend: "fred",
            concurrency: 1,
            raw: sample(Mode::Raw, 200.0),
            resilient: sample(Mode::Resilient, 190.0),
            backend_only: None,
            runs: Vec::new(),
        };
        assert!((c.ratio() - 0.95).abs() < 1e-9);
        let zero = Comparison {
            raw: sample(Mode::Raw, 0.0),
            ..c
        };
        assert_eq!(zero.ratio(), 0.0);
    }

    #[test]
    fn bad_settings_are_rejected_before_anything_runs() {
        let ok = BenchConfig::default();
        for bad in [
            BenchConfig {
                concurrency: vec![],
                ..ok.clone()
            },
            BenchConfig {
                concurrency: vec![1, 0],
                ..ok.clone()
            },
            BenchConfig {
                ops: 0,
                ..ok.clone()
            },
            BenchConfig {
                repeats: 0,
                ..ok.clone()
            },
            BenchConfig {
                backends: vec![],
                ..ok.clone()
            },
        ] {
            assert!(matches!(validate(&bad), Err(BenchError::InvalidConfig(_))));
        }
    }
}
