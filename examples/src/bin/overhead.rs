//! `overhead`: a small, fixed SET/GET load in one mode, for counting instructions.
//!
//! `scripts/overhead.sh` runs this under `valgrind --tool=callgrind`, twice per mode with
//! two operation counts, and divides the difference in instructions by the difference in
//! operations: the counts are zeroed when the measured load starts, the process's end
//! cancels out, and what is left is the client's instructions per operation, the same on
//! every run whatever the machine's load.
//!
//! ```text
//! overhead --url redis://127.0.0.1:6390 --backend redis-rs --mode resilient --ops 10000
//! ```
//!
//! The load is the bench's `setget` load ([`examples::bench::load::run_load`]): tasks
//! alternating `SET key value` and `GET key`, 64-byte values, on a current-thread Tokio
//! runtime (under callgrind threads run one at a time anyway, and one thread keeps the
//! count free of work-stealing noise).

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use examples::bench::load::{LoadSpec, Target, key_rings, run_load};
use examples::bench::targets::{BackendOnly, Resilient};
use resilience_core::observe::Observability;
use resilience_core::{ConnectionConfig, ResilientClient};

/// mimalloc, as in the bench, so the counts match what the bench runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    /// redis-rs.
    #[value(name = "redis-rs")]
    RedisRs,
    /// fred.
    Fred,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    /// The driver alone, as the bench's raw mode.
    Raw,
    /// The backend alone (`KvBackend::execute`).
    Backend,
    /// `ResilientClient` over the backend.
    Resilient,
    /// `ResilientClient` with per-call observability off (no call metrics, no spans).
    ResilientBare,
}

/// A fixed SET/GET load in one mode (for instruction counts).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server, e.g. redis://127.0.0.1:6390.
    #[arg(long)]
    url: String,
    /// The driver.
    #[arg(long, value_enum)]
    backend: BackendArg,
    /// What sends the commands.
    #[arg(long, value_enum)]
    mode: ModeArg,
    /// Operations measured (half SET, half GET), after the warm-up.
    #[arg(long, default_value_t = 10_000)]
    ops: u64,
    /// Operations of the warm-up.
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Concurrent tasks.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let config = ConnectionConfig::from_url(&args.url).map_err(|e| e.to_string())?;
    match (args.backend, args.mode) {
        // A cluster URL (`?cluster=`): raw is the driver's own cluster client.
        (BackendArg::RedisRs, ModeArg::Raw) if config.is_cluster() => {
            load(args, raw_redis_rs_cluster(&config).await?).await
        }
        (BackendArg::Fred, ModeArg::Raw) if config.is_cluster() => {
            load(args, raw_fred_cluster(&config).await?).await
        }
        (BackendArg::RedisRs, ModeArg::Raw) => load(args, raw_redis_rs(&config).await?).await,
        (BackendArg::Fred, ModeArg::Raw) => {
            // The backend owns fred's connection task: it stays alive for the whole load.
            let (_backend, raw) = raw_fred(&config).await?;
            load(args, raw).await
        }
        (backend, ModeArg::Backend) => {
            let client = resilient(&config, backend).await?;
            load(args, BackendOnly(Arc::clone(client.backend()))).await
        }
        (backend, ModeArg::Resilient) => {
            load(args, Resilient(resilient(&config, backend).await?)).await
        }
        (backend, ModeArg::ResilientBare) => {
            load(args, Resilient(bare(&config, backend).await?)).await
        }
    }
}

/// The client with its default parts.
async fn resilient(
    config: &ConnectionConfig,
    backend: BackendArg,
) -> Result<ResilientClient, String> {
    connect(config, backend, Observability::default()).await
}

/// The client with per-call observability off.
async fn bare(config: &ConnectionConfig, backend: BackendArg) -> Result<ResilientClient, String> {
    connect(config, backend, Observability::OFF).await
}

async fn connect(
    config: &ConnectionConfig,
    backend: BackendArg,
    observability: Observability,
) -> Result<ResilientClient, String> {
    let choice = match backend {
        BackendArg::RedisRs => examples::bench::BackendChoice::RedisRs,
        BackendArg::Fred => examples::bench::BackendChoice::Fred,
    };
    examples::bench::connect_client(config, choice, |b| b.observability(observability))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(feature = "redis-rs")]
async fn raw_redis_rs(config: &ConnectionConfig) -> Result<impl Target, String> {
    examples::bench::targets::RawRedisRs::connect(config)
        .await
        .map_err(|e| e.0)
}

#[cfg(not(feature = "redis-rs"))]
async fn raw_redis_rs(_config: &ConnectionConfig) -> Result<Resilient, String> {
    Err("redis-rs is not built in; rebuild with `--features redis-rs`".to_owned())
}

#[cfg(feature = "redis-rs")]
async fn raw_redis_rs_cluster(config: &ConnectionConfig) -> Result<impl Target, String> {
    examples::bench::cluster::raw::RawRedisRsCluster::connect(config)
        .await
        .map_err(|e| e.0)
}

#[cfg(not(feature = "redis-rs"))]
async fn raw_redis_rs_cluster(_config: &ConnectionConfig) -> Result<Resilient, String> {
    Err("redis-rs is not built in; rebuild with `--features redis-rs`".to_owned())
}

#[cfg(feature = "fred")]
async fn raw_fred_cluster(config: &ConnectionConfig) -> Result<impl Target, String> {
    examples::bench::cluster::raw::RawFredCluster::connect(config)
        .await
        .map_err(|e| e.0)
}

#[cfg(not(feature = "fred"))]
async fn raw_fred_cluster(_config: &ConnectionConfig) -> Result<Resilient, String> {
    Err("fred is not built in; rebuild with `--features fred`".to_owned())
}

/// The raw fred client the backend uses, and the backend that keeps it connected.
#[cfg(feature = "fred")]
async fn raw_fred(
    config: &ConnectionConfig,
) -> Result<(backend_fred::FredBackend, impl Target), String> {
    let backend = backend_fred::FredBackend::connect(config)
        .await
        .map_err(|e| e.to_string())?;
    let raw = examples::bench::targets::RawFred(fred::interfaces::ClientLike::with_options(
        backend.client(),
        backend.command_options(),
    ));
    Ok((backend, raw))
}

#[cfg(not(feature = "fred"))]
async fn raw_fred(_config: &ConnectionConfig) -> Result<((), Resilient), String> {
    Err("fred is not built in; rebuild with `--features fred`".to_owned())
}

/// Called once, between the warm-up and the measured load. `scripts/overhead.sh` has
/// callgrind zero its counts when this is entered (`--zero-before`), so what ran before
/// (start-up, connecting, the warm-up, and one-time work whose cost depends on wall time,
/// such as calibrating the latency clock) is not counted at all.
#[inline(never)]
fn measured_load_starts() {
    std::hint::black_box(());
}

/// The warm-up, then the measured load; keys are this process's own and deleted by nobody
/// (the script's private server goes away with them).
async fn load<T: Target>(args: &Args, target: T) -> Result<(), String> {
    // Always five digits: the keys' length is part of what each operation costs (copying,
    // formatting lengths, allocation size classes), so a process id one digit shorter
    // would change the count by about 0.5 %.
    let prefix = format!("overhead:{:05}:", std::process::id() % 100_000);
    let keys = Arc::new(key_rings(&prefix, args.concurrency.max(1), 64));
    let spec = |ops| LoadSpec {
        concurrency: args.concurrency.max(1),
        ops,
        value: Bytes::from(vec![b'x'; 64]),
        keys: Arc::clone(&keys),
    };
    run_load(&target, &spec(args.warmup))
        .await
        .map_err(|e| e.0)?;
    measured_load_starts();
    let result = run_load(&target, &spec(args.ops)).await.map_err(|e| e.0)?;
    println!(
        "ops={} elapsed_ms={}",
        result.ops,
        result.elapsed.as_millis()
    );
    Ok(())
}
