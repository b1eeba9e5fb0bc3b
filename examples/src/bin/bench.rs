//! `bench`: the benchmark suite. The raw driver against `ResilientClient` over it (SET/GET
//! under load, with `redis-benchmark` alongside), the memory tiers, recovery after a server
//! kill, the drain of a queued backlog, and the cost of a call the open breaker rejects;
//! and similarity search over an agent's memories against brute force.
//!
//! ```text
//! cargo run --release -p examples --all-features --bin bench -- --chart target/bench.svg
//! cargo run --release -p examples --all-features --bin bench -- --scenario setget --ops 200000 --concurrency 1,16,256
//! cargo run --release -p examples --all-features --bin bench -- --scenario tiers,drain --json
//! ```
//!
//! `--scenario` picks the parts (`setget,tiers,recall,recovery,drain,open,once,cluster` or `all`, the
//! default);
//! `--json` lines carry a `scenario` field; `--scale 0.1` shrinks every operation count.
//!
//! For each backend (`redis-rs`, `fred`; `--backend all`, the default, takes those built in)
//! and each concurrency level, it runs a warm-up, then the raw driver and the resilient client
//! alternately (`--repeats` times each), and prints ops/s, p50 and p99 latency (µs) of the
//! picked run of each mode and the ratio resilient/raw. `--json` prints one JSON object per
//! line instead. Without `--url` it starts its own `redis-server` on a free port, pinned to
//! one CPU while the bench runs on the others (`--no-pin` turns that off); with `--url`,
//! pin both yourself (`taskset -c 1 redis-server ...`, `taskset -c 0 bench ...`).
//!
//! What exactly is measured, and why the comparison is fair: see the `examples::bench`
//! module docs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use examples::bench::{self, BackendChoice, BenchConfig, Pick, Scenario};

/// mimalloc, as a service that cares about throughput would configure it: glibc's malloc
/// was a quarter of the client's CPU in profiles of the tier scenarios. Raw and resilient
/// runs share it, so the ratios compare like with like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    /// redis-rs only.
    #[value(name = "redis-rs")]
    RedisRs,
    /// fred only.
    Fred,
    /// Every backend built in.
    All,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PickArg {
    /// The run with the median throughput.
    Median,
    /// The run with the best throughput.
    Best,
}

/// Raw driver against ResilientClient, SET/GET load on a Redis server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Redis URL (e.g. redis://127.0.0.1:6380/0); without it a private redis-server is started.
    #[arg(long)]
    url: Option<String>,
    /// Which backend(s) to measure.
    #[arg(long, value_enum, default_value = "all")]
    backend: BackendArg,
    /// Concurrency levels (tasks), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    concurrency: Vec<usize>,
    /// Operations per measured run (half SET, half GET).
    #[arg(long, default_value_t = 200_000)]
    ops: u64,
    /// Measured runs of each mode, alternating raw and resilient.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Which run of each mode to report.
    #[arg(long, value_enum, default_value = "median")]
    pick: PickArg,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// One JSON object per line on stdout; the table goes to stderr then.
    #[arg(long)]
    json: bool,
    /// Also measure the backend alone (mode "backend", no ResilientClient): splits the
    /// overhead between the backend crate and the client. Diagnostic.
    #[arg(long)]
    with_backend_mode: bool,
    /// No per-run progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Scenarios to run, comma separated: setget, tiers, recall, recovery, drain, open,
    /// once, cluster, or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Multiplies every operation count (--ops, --tier-ops, --recall-memories,
    /// --drain-writes, --open-ops, --redis-benchmark-requests): 0.1 for a quick look.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// tiers: agents (one task each).
    #[arg(long, default_value_t = 64)]
    tier_agents: usize,
    /// tiers: memories stored in all (and recent(20) queries made).
    #[arg(long, default_value_t = 64_000)]
    tier_ops: u64,
    /// recall: memories of the one agent searched (a tenth stay in STM).
    #[arg(long, default_value_t = 10_000)]
    recall_memories: u64,
    /// recall: similar(k=10) queries measured.
    #[arg(long, default_value_t = 200)]
    recall_queries: usize,
    /// recall: embedding dimension.
    #[arg(long, default_value_t = 384)]
    recall_dimension: usize,
    /// recall: also search behind the fault proxy adding this many milliseconds each way
    /// (e.g. 0.5), with and without the local vector replica.
    #[arg(long)]
    recall_delay_ms: Option<f64>,
    /// recall: a Redis 8 redis-server binary, to run the VSIM baseline on the same vectors
    /// in the same run (default: $BENCH_VSIM_SERVER, else no baseline).
    #[arg(long)]
    vsim_server: Option<PathBuf>,
    /// recovery: how long the server stays down, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    outage_ms: u64,
    /// recovery: tasks of the light load (1 GET per ms each).
    #[arg(long, default_value_t = 4)]
    recovery_tasks: usize,
    /// drain: writes queued during the outage.
    #[arg(long, default_value_t = 100_000)]
    drain_writes: u64,
    /// drain: the client's QueueConfig::batch_size (writes per replay round trip).
    #[arg(long, default_value_t = 1024)]
    drain_batch_size: usize,
    /// open: rejected calls measured.
    #[arg(long, default_value_t = 1_000_000)]
    open_ops: u64,
    /// open: tasks hammering get.
    #[arg(long, default_value_t = 64)]
    open_concurrency: usize,
    /// once: INCRBYs per mode (plain, exactly-once).
    #[arg(long, default_value_t = 20_000)]
    once_ops: u64,
    /// server: stores per round and mode (library, HTTP).
    #[arg(long, default_value_t = 20_000)]
    server_ops: u64,
    /// server: concurrent callers (HTTP clients with one keep-alive connection each, or
    /// library tasks).
    #[arg(long, default_value_t = 64)]
    server_clients: usize,
    /// setget: requests of the redis-benchmark comparison (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    redis_benchmark_requests: u64,
    /// Write an SVG chart of the setget results (raw vs resilient ops/s) to this path.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Measure nothing: draw the --chart of a past `--json` run from its saved output.
    #[arg(long, requires = "chart")]
    chart_from: Option<PathBuf>,
    /// Do not pin. By default, when the bench starts its own servers on a machine with two
    /// or more CPUs, it runs each server on one CPU and itself on the others, so that
    /// neither side's CPU time includes its contention with the other.
    #[arg(long)]
    no_pin: bool,
}

/// `n` scaled by `scale`, at least 1.
fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let backends = match args.backend {
        BackendArg::RedisRs => vec![BackendChoice::RedisRs],
        BackendArg::Fred => vec![BackendChoice::Fred],
        BackendArg::All => {
            let built = BackendChoice::all_built();
            for missing in [BackendChoice::RedisRs, BackendChoice::Fred]
                .into_iter()
                .filter(|b| !b.is_built())
            {
                eprintln!(
                    "note: {0} is not built in (add `--features {0}` to measure it)",
                    missing.name()
                );
            }
            built
        }
    };
    if let (Some(input), Some(path)) = (&args.chart_from, &args.chart) {
        let drawn = std::fs::read_to_string(input)
            .map_err(|e| bench::BenchError::InvalidConfig(format!("{}: {e}", input.display())))
            .and_then(|text| bench::chart::report_from_json_lines(&text))
            .and_then(|report| bench::chart::draw(path, &report));
        return match drawn {
            Ok(()) => {
                eprintln!("chart: {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let scenarios = match Scenario::parse_list(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !(args.scale.is_finite() && args.scale > 0.0) {
        eprintln!("error: --scale must be a positive number");
        return ExitCode::FAILURE;
    }
    let scale = args.scale;
    let recall_delay = match args.recall_delay_ms {
        None => None,
        Some(ms) if ms.is_finite() && ms > 0.0 => Some(Duration::from_secs_f64(ms / 1e3)),
        Some(_) => {
            eprintln!("error: --recall-delay-ms must be a positive number");
            return ExitCode::FAILURE;
        }
    };
    // Pinned before the runtime starts, so that every worker thread inherits it.
    let pinning = if args.no_pin || args.url.is_some() {
        None
    } else {
        testkit::affinity::CpuSplit::plan()
    };
    if let Some(split) = &pinning
        && let Err(e) = testkit::affinity::pin_current_thread(&split.client)
    {
        eprintln!(
            "error: could not pin the bench to CPUs {:?}: {e}",
            split.client
        );
        return ExitCode::FAILURE;
    }
    let config = BenchConfig {
        url: args.url,
        backends,
        concurrency: args.concurrency,
        ops: scaled(args.ops, scale),
        repeats: args.repeats,
        value_size: args.value_size,
        pick: match args.pick {
            PickArg::Median => Pick::Median,
            PickArg::Best => Pick::Best,
        },
        progress: !args.quiet,
        backend_mode: args.with_backend_mode,
        scenarios,
        tier_agents: args.tier_agents,
        tier_ops: scaled(args.tier_ops, scale),
        recall_memories: scaled(args.recall_memories, scale),
        recall_queries: args.recall_queries,
        recall_dimension: args.recall_dimension,
        recall_delay,
        vsim_server: args
            .vsim_server
            .or_else(|| std::env::var_os("BENCH_VSIM_SERVER").map(PathBuf::from)),
        outage: Duration::from_millis(args.outage_ms),
        recovery_tasks: args.recovery_tasks,
        drain_writes: scaled(args.drain_writes, scale),
        drain_batch_size: args.drain_batch_size,
        open_ops: scaled(args.open_ops, scale),
        open_concurrency: args.open_concurrency,
        once_ops: scaled(args.once_ops, scale),
        server_ops: scaled(args.server_ops, scale),
        server_clients: args.server_clients,
        redis_benchmark_requests: if args.redis_benchmark_requests == 0 {
            0
        } else {
            scaled(args.redis_benchmark_requests, scale)
        },
        pinning,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(bench::run(&config)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match report.json_lines() {
            Ok(lines) => print!("{lines}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        // The same run for people, on stderr (stdout stays pure JSON lines).
        eprint!("{}", report.table());
    } else {
        print!("{}", report.table());
    }
    if let Some(path) = &args.chart {
        match bench::chart::draw(path, &report) {
            Ok(()) => eprintln!("chart: {}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
