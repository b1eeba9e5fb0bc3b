//! `bench`: the raw driver against `ResilientClient` over it, SET/GET under load.
//!
//! ```text
//! cargo run --release -p examples --features fred --bin bench -- --ops 200000 --concurrency 1,16,256
//! ```
//!
//! For each backend (`redis-rs`, `fred`; `--backend all`, the default, takes those built in)
//! and each concurrency level, it runs a warm-up, then the raw driver and the resilient client
//! alternately (`--repeats` times each), and prints ops/s, p50 and p99 latency (µs) of the
//! picked run of each mode and the ratio resilient/raw. `--json` prints one JSON object per
//! line instead. Without `--url` it starts its own `redis-server` on a free port.
//!
//! What exactly is measured, and why the comparison is fair: see the `examples::bench`
//! module docs.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use examples::bench::{self, BackendChoice, BenchConfig, Pick};

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
    /// One JSON object per line on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Also measure the backend alone (mode "backend", no ResilientClient): splits the
    /// overhead between the backend crate and the client. Diagnostic.
    #[arg(long)]
    with_backend_mode: bool,
    /// No per-run progress lines on stderr.
    #[arg(long)]
    quiet: bool,
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
    let config = BenchConfig {
        url: args.url,
        backends,
        concurrency: args.concurrency,
        ops: args.ops,
        repeats: args.repeats,
        value_size: args.value_size,
        pick: match args.pick {
            PickArg::Median => Pick::Median,
            PickArg::Best => Pick::Best,
        },
        progress: !args.quiet,
        backend_mode: args.with_backend_mode,
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
        for sample in &report.samples {
            match sample.to_json_line() {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    } else {
        print!("{}", report.table());
    }
    ExitCode::SUCCESS
}
