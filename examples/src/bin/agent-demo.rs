//! The main job: 50 agents write memory through an outage, and nothing is lost.
//!
//! Run: `cargo run --release -p examples --bin agent-demo` (embedded backend, no server).
//! On Redis: `--backend redis-rs|fred` (spawns a `redis-server`, or `--url URL`), with
//! `--outage blackhole|kill|none`. `--help` lists every flag; the module docs of
//! `examples::demo` explain what the report means.
//!
//! Exits 0 when every write is accounted for and nothing was lost, 1 otherwise, 2 when the
//! demo could not run.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use examples::demo::{DemoArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = DemoArgs::parse();
    if let Some(addr) = args.metrics_addr {
        println!("metrics: http://{addr}/metrics");
    }
    match run(&args).await {
        Ok(report) => {
            println!("{report}");
            if report.metrics_url.is_some() && args.metrics_hold_secs > 0 {
                println!("serving metrics for {} s more", args.metrics_hold_secs);
                tokio::time::sleep(Duration::from_secs(args.metrics_hold_secs)).await;
            }
            if report.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("agent-demo: {e}");
            ExitCode::from(2)
        }
    }
}
