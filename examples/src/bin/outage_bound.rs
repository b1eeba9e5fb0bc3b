//! Bounded resources under a long outage: 10 minutes at 10,000 writes per second
//! (6,000,000 writes, one in five `High`) into a 10,000-slot recovery queue, on Tokio's
//! paused clock over an in-memory backend behind a fault injector in outage.
//!
//! Prints where every write went (queued, refused `QueueFull`, evicted, replayed), the
//! largest queue depth, and memory: peak live heap bytes (a counting global allocator)
//! and the process's peak resident set (`VmHWM`). Exits non-zero if a promise is broken.
//!
//! Run (release mode; about a minute):
//!
//! ```text
//! cargo run --release -p examples --bin outage_bound
//! cargo run --release -p examples --bin outage_bound -- --seconds 60 --rate 10000
//! ```

use std::time::Duration;

use examples::alloc::Counting;
use examples::outage::{OutageConfig, run_outage};

#[global_allocator]
static ALLOC: Counting = Counting::new();

fn vm_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() -> std::process::ExitCode {
    let mut config = OutageConfig::default();
    if let Some(s) = arg("--seconds") {
        config.outage = Duration::from_secs(s);
    }
    if let Some(r) = arg("--rate") {
        config.writes_per_sec = r;
    }
    if let Some(c) = arg("--capacity") {
        config.capacity = c as usize;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let baseline = ALLOC.live();
    ALLOC.reset_peak();
    let started = std::time::Instant::now();
    let report = match runtime.block_on(run_outage(&config, || {})) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let wall = started.elapsed();
    let peak = ALLOC.peak();
    println!(
        "outage {:?} at {}/s, capacity {}: {report}",
        config.outage, config.writes_per_sec, config.capacity
    );
    println!(
        "memory: peak live heap {} bytes ({:.1} MiB, baseline {} bytes), {:.0} bytes per queue slot; VmHWM {} KiB, VmRSS {} KiB; wall {:.1?}",
        peak,
        peak as f64 / (1024.0 * 1024.0),
        baseline,
        peak.saturating_sub(baseline) as f64 / config.capacity.max(1) as f64,
        vm_kib("VmHWM:").unwrap_or(0),
        vm_kib("VmRSS:").unwrap_or(0),
        wall
    );
    let broken = report.check();
    if broken.is_empty() && report.evicted > 0 && report.queue_full > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!(
            "broken: {broken:?} (evicted {}, queue_full {})",
            report.evicted, report.queue_full
        );
        std::process::ExitCode::FAILURE
    }
}
