//! The demo's command line: which backend, which outage, how long, and where the report goes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use resilient_redis::BackendKind;

use super::error::DemoError;

/// How the demo cuts the backend off in the middle of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutageKind {
    /// The embedded backend fails every call (through `testkit::faulty::FaultyBackend`).
    Fault,
    /// A `testkit::proxy::FaultProxy` in front of Redis accepts connections but answers nothing.
    Blackhole,
    /// The spawned `redis-server` is killed (SIGKILL), then restarted.
    Kill,
    /// No outage.
    None,
}

impl OutageKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageKind::Fault => "fault",
            OutageKind::Blackhole => "blackhole",
            OutageKind::Kill => "kill",
            OutageKind::None => "none",
        }
    }
}

/// The demo's command line (and its library configuration: parse it with
/// `DemoArgs::parse_from`).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "agent-demo",
    args_override_self = true,
    about = "Agents write memory through an outage; every write is accounted for and nothing is lost."
)]
pub struct DemoArgs {
    /// Number of agents, all running at once.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Steps per agent; each step stores one memory.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Pace: step `i` of every agent starts no earlier than `i * step_ms` after the start.
    #[arg(long, default_value_t = 30)]
    pub step_ms: u64,
    /// Backend: `memory` (embedded, no server), `redis-rs` or `fred`.
    #[arg(long, default_value = "memory")]
    pub backend: BackendKind,
    /// Redis URL for `redis-rs`/`fred`; without it the demo spawns its own `redis-server`.
    #[arg(long)]
    pub url: Option<String>,
    /// The outage: `fault` (default on memory), `blackhole` (default on Redis), `kill`
    /// (needs a spawned server), `none`.
    #[arg(long, value_enum)]
    pub outage: Option<OutageKind>,
    /// When the outage starts, as a fraction of the paced run (`steps * step_ms`).
    #[arg(long, default_value_t = 0.4)]
    pub outage_from: f64,
    /// When the outage ends, as a fraction of the paced run.
    #[arg(long, default_value_t = 0.6)]
    pub outage_to: f64,
    /// How often the breaker's health probe pings while it is open, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub health_check_ms: u64,
    /// Socket (reply and connect) timeout for Redis, in milliseconds, unless the URL sets one.
    #[arg(long, default_value_t = 500)]
    pub socket_timeout_ms: u64,
    /// After the steps, how long to wait for queued writes to land, in seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout_secs: u64,
    /// Where to write the SVG chart of the run.
    #[arg(long, default_value = "target/agent-demo.svg")]
    pub chart: PathBuf,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9000) while the demo runs.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Keep serving metrics this many seconds after the report (with `--metrics-addr`).
    #[arg(long, default_value_t = 0)]
    pub metrics_hold_secs: u64,
    /// Seed for the priorities and contents.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// No progress bar (for tests and logs).
    #[arg(long)]
    pub no_progress: bool,
}

impl DemoArgs {
    /// The outage this run uses: the one asked for, or the backend's default.
    pub fn outage_kind(&self) -> OutageKind {
        self.outage.unwrap_or(match self.backend {
            BackendKind::InMemory => OutageKind::Fault,
            _ => OutageKind::Blackhole,
        })
    }

    /// Checks the combination of flags, with a message that says what to change.
    pub fn validate(&self) -> Result<(), DemoError> {
        let bad = |m: String| Err(DemoError::InvalidArgs(m));
        if self.agents == 0 || self.steps == 0 {
            return bad("--agents and --steps must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.outage_from)
            || !(0.0..=1.0).contains(&self.outage_to)
            || self.outage_from >= self.outage_to
        {
            return bad(format!(
                "the outage window must satisfy 0 <= --outage-from < --outage-to <= 1 (got {} .. {})",
                self.outage_from, self.outage_to
            ));
        }
        let outage = self.outage_kind();
        match (self.backend, outage) {
            (BackendKind::InMemory, OutageKind::Blackhole | OutageKind::Kill) => bad(format!(
                "--outage {} needs a Redis server: add --backend redis-rs or --backend fred (the embedded backend uses --outage fault)",
                outage.as_str()
            )),
            (BackendKind::InMemory, _) if self.url.is_some() => bad(
                "--url needs --backend redis-rs or --backend fred (the default backend is the embedded one)"
                    .to_owned(),
            ),
            (BackendKind::RedisRs | BackendKind::Fred, OutageKind::Fault) => bad(
                "--outage fault is for the embedded backend; on Redis use blackhole, kill or none"
                    .to_owned(),
            ),
            (_, OutageKind::Kill) if self.url.is_some() => bad(
                "--outage kill stops and restarts a redis-server the demo spawned itself, so it cannot be used with --url; drop --url (the demo spawns one) or use --outage blackhole"
                    .to_owned(),
            ),
            (kind, _) if !kind.is_available() => bad(format!(
                "backend {kind} is not compiled into this build: rebuild with `--features {kind}`"
            )),
            _ => Ok(()),
        }
    }

    /// The paced length of the write phase: `steps * step_ms`.
    pub fn paced_duration(&self) -> Duration {
        Duration::from_millis(self.step_ms.saturating_mul(self.steps as u64))
    }
}
