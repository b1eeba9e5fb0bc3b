//! A dead server: calls fail fast, and say truthfully whether the command could have run.
//!
//! When the server dies (SIGKILL: the kernel closes its sockets and the client sees the
//! close), there are three cases, and each has one answer on every backend:
//!
//! - a call made after the backend has seen its connection close, or while it reconnects,
//!   was never sent: it fails within milliseconds as `Unavailable`;
//! - a command written to the server that then lost its connection before the reply may
//!   have run: `Timeout`, and it is never resent;
//! - a command the driver could not write: `Unavailable`.
//!
//! Since `Unavailable` means "not sent", a non-idempotent write made during the outage at
//! `High` or `Normal` priority is queued and applied exactly once after the restart, instead of being
//! refused as ambiguous.
//!
//! [`dead_server`] runs [`DeadServerOptions::kills`] kill cycles with the client's
//! default breaker (3 failures, a health probe every second) and the default
//! `socket_timeout` (2 s, so a call that waits out the timeout cannot pass for fast).
//! Each cycle has two kills:
//!
//! 1. **Idle, then kill.** No call runs for [`DeadServerOptions::idle`]; the server is
//!    SIGKILLed; a moment later ([`DeadServerOptions::call_after`]: 10 ms and 100 ms in
//!    turn) one `GET` is made and timed, and
//!    one `INCRBY` is submitted, at `High` and `Normal` priority in turn. The `GET` must fail as `Unavailable`
//!    within [`DeadServerOptions::first_call_within`]; the `INCRBY` must be queued. The
//!    server is restarted.
//! 2. **Kill under load.** [`DeadServerOptions::load_tasks`] tasks make `GET`s back to
//!    back; the server is SIGKILLed; the breaker must open within
//!    [`DeadServerOptions::open_within`] of the kill. After a moment the server is
//!    restarted, and the breaker must close within [`DeadServerOptions::close_within`] of
//!    the server answering `PING`.
//!
//! At the end every queued `INCRBY` must have completed and the counter must equal the
//! number submitted: each applied exactly once.
//!
//! [`in_flight_then_death`] covers the third case: through a fault proxy that holds the
//! server's replies ([`ProxyMode::HoldReplies`]), an `INCRBY` is applied by the server,
//! whose reply is held; then the server dies. The call must end as `Timeout`, and the
//! counter after the restart must be 0 or 1.
//!
//! The number of cycles can be raised for longer runs with the environment variable
//! `DEAD_SERVER_KILLS`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use resilience_core::{
    CircuitState, Command, ConnectionConfig, Error, ErrorKind, Priority, ResilientClient,
    StoreOutcome, Ticket, TicketOutcome, Transition, Value,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{BackendFuture, Latency, ScenarioFailure, print_and_assert};
use crate::proxy::ProxyMode;
use crate::server::RedisServer;

/// Knobs of [`dead_server_with`]. The defaults are the promises checked.
#[derive(Clone, Debug)]
pub struct DeadServerOptions {
    /// Kill cycles (each kills the server twice: idle, then under load). Default 10, or
    /// `DEAD_SERVER_KILLS` from the environment.
    pub kills: usize,
    /// How long the client is idle before the idle kill (default 200 ms).
    pub idle: Duration,
    /// How long after the idle kill the first call is made, taken in turn by the cycles
    /// (default 10 ms and 100 ms: fred's own state still says "connected" for 20 ms or
    /// more after a close, and 100 ms is a call a moment later).
    pub call_after: Vec<Duration>,
    /// Tasks making `GET`s back to back for the kill under load (default 4).
    pub load_tasks: usize,
    /// How long load runs against the dead server before the restart (default 300 ms).
    pub down_for: Duration,
    /// Promise: the first call after an idle kill fails as `Unavailable` within this
    /// (default 50 ms).
    pub first_call_within: Duration,
    /// Promise: under load, the breaker opens within this of the kill (default 100 ms).
    pub open_within: Duration,
    /// Promise: the breaker closes within this of the restarted server answering `PING`
    /// (default 1.5 s).
    pub close_within: Duration,
}

impl Default for DeadServerOptions {
    fn default() -> Self {
        let kills = std::env::var("DEAD_SERVER_KILLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        DeadServerOptions {
            kills,
            idle: Duration::from_millis(200),
            call_after: vec![Duration::from_millis(10), Duration::from_millis(100)],
            load_tasks: 4,
            down_for: Duration::from_millis(300),
            first_call_within: Duration::from_millis(50),
            open_within: Duration::from_millis(100),
            close_within: Duration::from_millis(1500),
        }
    }
}

/// How one call ended, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// It succeeded (the server was not dead after all).
    Ok,
    /// It failed with this error kind.
    Failed(ErrorKind),
    /// The breaker rejected it.
    CircuitOpen,
    /// Another client error.
    Other,
}

impl CallEnd {
    fn of<T>(result: &Result<T, Error>) -> CallEnd {
        match result {
            Ok(_) => CallEnd::Ok,
            Err(Error::CircuitOpen { .. }) => CallEnd::CircuitOpen,
            Err(e) => e.kind().map_or(CallEnd::Other, CallEnd::Failed),
        }
    }
}

/// What [`dead_server`] measured. `Display` prints it, one `dead-server` line first.
#[derive(Clone, Debug)]
pub struct DeadServerReport {
    /// The backend's name.
    pub backend: &'static str,
    /// The options the run used.
    pub options: DeadServerOptions,
    /// Per idle kill: how long after the kill the first call was made, its latency, and
    /// how it ended.
    pub first_calls: Vec<(Duration, Duration, CallEnd)>,
    /// The idle kills whose `INCRBY` (`High` or `Normal`), submitted right after the kill, was not
    /// queued, and how it ended instead.
    pub submits_not_queued: Vec<String>,
    /// `INCRBY`s submitted (one per idle kill) and stored or queued.
    pub submitted: u64,
    /// Queued `INCRBY`s whose ticket completed (one that did not is in `problems`).
    pub completed: u64,
    /// The counter read at the end.
    pub counter: Option<i64>,
    /// Per kill under load: from the kill to the Open transition (`None`: not in time).
    pub kill_to_open: Vec<Option<Duration>>,
    /// Per kill under load: from the server answering `PING` again to the Closed
    /// transition (`None`: not in time).
    pub restart_to_closed: Vec<Option<Duration>>,
    /// Steps of the run that did not go as they must (beyond the measured promises).
    pub problems: Vec<String>,
}

/// Median and worst of the samples that exist; `None` entries count as missing.
fn median_and_worst(samples: &[Option<Duration>]) -> (Option<Duration>, Option<Duration>, usize) {
    let present: Vec<Duration> = samples.iter().flatten().copied().collect();
    let missing = samples.len() - present.len();
    let latency = Latency::of(present);
    if latency.count == 0 {
        (None, None, missing)
    } else {
        (Some(latency.p50), Some(latency.max), missing)
    }
}

impl DeadServerReport {
    /// Every broken promise, in words; empty when the run kept them all.
    pub fn violations(&self) -> Vec<String> {
        let o = &self.options;
        let mut v = self.problems.clone();
        for (i, (_, took, end)) in self.first_calls.iter().enumerate() {
            if *end != CallEnd::Failed(ErrorKind::Unavailable) {
                v.push(format!(
                    "idle kill {i}: the first call ended {end:?}, not Unavailable"
                ));
            }
            if *took > o.first_call_within {
                v.push(format!(
                    "idle kill {i}: the first call took {took:?} (promise: {:?})",
                    o.first_call_within
                ));
            }
        }
        v.extend(self.submits_not_queued.iter().cloned());
        if self.counter != Some(self.submitted as i64) {
            v.push(format!(
                "the counter is {:?} after {} INCRBY 1 each stored or queued: not exactly once",
                self.counter, self.submitted
            ));
        }
        for (i, open) in self.kill_to_open.iter().enumerate() {
            match open {
                Some(d) if *d <= o.open_within => {}
                other => v.push(format!(
                    "kill under load {i}: the breaker opened after {other:?} (promise: {:?})",
                    o.open_within
                )),
            }
        }
        for (i, closed) in self.restart_to_closed.iter().enumerate() {
            match closed {
                Some(d) if *d <= o.close_within => {}
                other => v.push(format!(
                    "restart {i}: the breaker closed after {other:?} (promise: {:?})",
                    o.close_within
                )),
            }
        }
        v
    }

    /// Prints the report and panics, like `assert!`, with every broken promise.
    pub fn print_and_assert(&self) {
        print_and_assert(self, &self.violations());
    }
}

impl fmt::Display for DeadServerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first: Vec<Option<Duration>> = self.first_calls.iter().map(|c| Some(c.1)).collect();
        let (first_p50, first_max, _) = median_and_worst(&first);
        let (open_p50, open_max, open_missing) = median_and_worst(&self.kill_to_open);
        let (close_p50, close_max, close_missing) = median_and_worst(&self.restart_to_closed);
        let unavailable = self
            .first_calls
            .iter()
            .filter(|c| c.2 == CallEnd::Failed(ErrorKind::Unavailable))
            .count();
        writeln!(
            f,
            "dead-server backend={} kills={} first_call_p50={first_p50:?} first_call_max={first_max:?} \
             first_call_unavailable={unavailable}/{} kill_to_open_p50={open_p50:?} kill_to_open_max={open_max:?} \
             restart_to_closed_p50={close_p50:?} restart_to_closed_max={close_max:?} \
             incr_submitted={} counter={:?}",
            self.backend,
            self.options.kills,
            self.first_calls.len(),
            self.submitted,
            self.counter,
        )?;
        if open_missing + close_missing > 0 {
            writeln!(
                f,
                "  breaker did not open {open_missing} times, did not close {close_missing} times in time"
            )?;
        }
        for (i, (after, took, end)) in self.first_calls.iter().enumerate() {
            writeln!(
                f,
                "  idle kill {i}: first call {after:?} after the kill: {end:?} in {took:?}"
            )?;
        }
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        Ok(())
    }
}

/// [`dead_server_with`] with the default options.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn dead_server<F>(connect: F) -> Result<DeadServerReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    dead_server_with(DeadServerOptions::default(), connect).await
}

const EXACT_KEY: &str = "dead:exact";
const PROBE_KEY: &str = "dead:probe";

/// The kill cycles described in the [module docs](self), for the backend that `connect`
/// builds from a [`ConnectionConfig`]. `Err` only when the run could not happen.
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn dead_server_with<F>(
    options: DeadServerOptions,
    connect: F,
) -> Result<DeadServerReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let mut server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await?;
    // The default timeouts: a call that waits them out shows as seconds, not milliseconds.
    let backend = connect(server.connection_config())
        .await
        .map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let client = ResilientClient::builder_arc("dead-server", backend)
        // What a call meets when nothing watched the idle connection: the liveness watch
        // would open the breaker first (the `idle` scenario measures that).
        .liveness(None)
        .build()?;
    let (transition_tx, mut transitions) = mpsc::unbounded_channel::<Transition>();
    client.circuit_breaker().on_transition(move |t| {
        let _ = transition_tx.send(t.clone());
    });

    let mut report = DeadServerReport {
        backend: backend_name,
        options: options.clone(),
        first_calls: Vec::new(),
        submits_not_queued: Vec::new(),
        submitted: 0,
        completed: 0,
        counter: None,
        kill_to_open: Vec::new(),
        restart_to_closed: Vec::new(),
        problems: Vec::new(),
    };
    let mut tickets: Vec<Ticket> = Vec::new();

    for cycle in 0..options.kills {
        // 1. Idle, then kill.
        ready(&client, &mut transitions, &mut report.problems, cycle).await;
        tokio::time::sleep(options.idle).await;
        server.stop().await?;
        let call_after = options
            .call_after
            .get(cycle % options.call_after.len().max(1))
            .copied()
            .unwrap_or_default();
        tokio::time::sleep(call_after).await;
        let started = Instant::now();
        let first = client.get(PROBE_KEY).await;
        report
            .first_calls
            .push((call_after, started.elapsed(), CallEnd::of(&first)));
        let priority = if cycle % 2 == 0 {
            Priority::High
        } else {
            Priority::Normal
        };
        let submit = client
            .submit(
                vec![Command::Incrby {
                    key: EXACT_KEY.to_owned(),
                    delta: 1,
                }],
                priority,
            )
            .await;
        match submit {
            StoreOutcome::Queued(ticket) => {
                report.submitted += 1;
                tickets.push(ticket);
            }
            StoreOutcome::Stored => {
                report.submitted += 1;
                report.submits_not_queued.push(format!(
                    "idle kill {cycle}: the {priority:?} INCRBY after the kill was stored at once, so the server was not dead"
                ));
            }
            other => report.submits_not_queued.push(format!(
                "idle kill {cycle}: the {priority:?} INCRBY after the kill was not queued: {other:?}"
            )),
        }
        server.restart().await?;

        // 2. Kill under load.
        ready(&client, &mut transitions, &mut report.problems, cycle).await;
        let load = Load::start(&client, options.load_tasks);
        if !load.wait_for_success(Duration::from_secs(5)).await {
            report
                .problems
                .push(format!("kill under load {cycle}: the load never succeeded"));
        }
        // From the SIGKILL, which `stop` sends first before waiting for the exit.
        let killed = Instant::now();
        server.stop().await?;
        let opened = wait_transition(
            &mut transitions,
            CircuitState::Open,
            killed + Duration::from_secs(3),
        )
        .await;
        report
            .kill_to_open
            .push(opened.map(|at| at.saturating_duration_since(killed)));
        tokio::time::sleep(options.down_for).await;
        load.stop().await;
        server.restart().await?;
        let answering = Instant::now();
        let closed = if client.circuit_state() == CircuitState::Closed {
            Some(answering)
        } else {
            wait_transition(
                &mut transitions,
                CircuitState::Closed,
                answering + Duration::from_secs(5),
            )
            .await
        };
        report
            .restart_to_closed
            .push(closed.map(|at| at.saturating_duration_since(answering)));
    }

    ready(
        &client,
        &mut transitions,
        &mut report.problems,
        options.kills,
    )
    .await;
    for ticket in tickets {
        match tokio::time::timeout(Duration::from_secs(10), ticket.wait()).await {
            Ok(TicketOutcome::Completed) => report.completed += 1,
            Ok(other) => report
                .problems
                .push(format!("a queued INCRBY ended {other:?}")),
            Err(_) => report
                .problems
                .push("a queued INCRBY did not complete within 10 s".to_owned()),
        }
    }
    report.counter = read_counter(&client, EXACT_KEY).await;
    Ok(report)
}

/// Waits (up to 10 s) until the breaker is Closed and a `PING` succeeds, draining the
/// transitions seen so far; notes a problem otherwise.
async fn ready(
    client: &ResilientClient,
    transitions: &mut mpsc::UnboundedReceiver<Transition>,
    problems: &mut Vec<String>,
    cycle: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if client.circuit_state() == CircuitState::Closed
            && matches!(client.ping().await, Ok(()))
            && client.circuit_state() == CircuitState::Closed
        {
            while transitions.try_recv().is_ok() {}
            return;
        }
        if Instant::now() >= deadline {
            problems.push(format!(
                "cycle {cycle}: the client was not ready within 10 s of the restart"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The time of the next transition into `to`, if one comes before `deadline`.
async fn wait_transition(
    transitions: &mut mpsc::UnboundedReceiver<Transition>,
    to: CircuitState,
    deadline: Instant,
) -> Option<Instant> {
    loop {
        match tokio::time::timeout_at(deadline, transitions.recv()).await {
            Ok(Some(t)) if t.to == to => return Some(t.at),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The counter at `key`, read once the server answers (up to 5 s).
async fn read_counter(client: &ResilientClient, key: &str) -> Option<i64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.get(key).await {
            Ok(Some(bytes)) => return std::str::from_utf8(&bytes).ok()?.parse().ok(),
            Ok(None) => return Some(0),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => return None,
        }
    }
}

/// Tasks making `GET`s back to back until stopped (after a failure they pause 1 ms, so
/// rejections by the open breaker do not spin).
struct Load {
    stop: Arc<AtomicBool>,
    succeeded: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(client: &ResilientClient, tasks: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let succeeded = Arc::new(AtomicU64::new(0));
        let tasks = (0..tasks)
            .map(|_| {
                let (client, stop, succeeded) =
                    (client.clone(), Arc::clone(&stop), Arc::clone(&succeeded));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if client.get(PROBE_KEY).await.is_ok() {
                            succeeded.fetch_add(1, Ordering::Relaxed);
                        } else {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            succeeded,
            tasks,
        }
    }

    /// Whether some `GET` succeeded within `within`.
    async fn wait_for_success(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.succeeded.load(Ordering::Relaxed) < 10 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What [`in_flight_then_death`] saw.
#[derive(Clone, Debug)]
pub struct InFlightReport {
    /// The backend's name.
    pub backend: &'static str,
    /// How the `INCRBY` whose reply was lost ended, and after how long.
    pub call: (Duration, CallEnd),
    /// The error's text.
    pub message: String,
    /// The counter after the restart.
    pub counter: Option<i64>,
    /// Steps that did not go as they must.
    pub problems: Vec<String>,
}

impl InFlightReport {
    /// Every broken promise, in words.
    pub fn violations(&self) -> Vec<String> {
        let mut v = self.problems.clone();
        if self.call.1 != CallEnd::Failed(ErrorKind::Timeout) {
            v.push(format!(
                "the INCRBY whose reply was lost ended {:?}, not Timeout: {}",
                self.call.1, self.message
            ));
        }
        if !matches!(self.counter, Some(0 | 1)) {
            v.push(format!(
                "the counter is {:?} after one INCRBY 1: applied more than once, or unreadable",
                self.counter
            ));
        }
        v
    }

    /// Prints the report and panics, like `assert!`, with every broken promise.
    pub fn print_and_assert(&self) {
        print_and_assert(self, &self.violations());
    }
}

impl fmt::Display for InFlightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "in-flight backend={} call={:?} after {:?} counter={:?}: {}",
            self.backend, self.call.1, self.call.0, self.counter, self.message
        )
    }
}

/// A write applied by the server whose reply is lost when the server dies (see the
/// [module docs](self)).
///
/// # Errors
///
/// `ScenarioFailure` when the run could not happen (no `redis-server`, a backend that
/// could not connect, a setup step that did not finish in time); a broken promise is
/// in the report, not an error.
///
/// # Cancel safety
///
/// Dropping the future ends the run: the servers and proxies it started stop with their
/// handles (their processes are killed on drop), and nothing outside them was touched.
pub async fn in_flight_then_death<F>(connect: F) -> Result<InFlightReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    const KEY: &str = "dead:in-flight";
    let (mut server, proxy) = super::soak::deployment::durable_server_behind_proxy().await?;
    let config = server
        .connection_config()
        .with_host("127.0.0.1")
        .with_port(proxy.addr().port());
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let client = ResilientClient::builder_arc("in-flight", backend)
        // The held reply holds the liveness probe too, which would open the breaker.
        .liveness(None)
        .build()?;
    let mut problems = Vec::new();
    if let Err(e) = client.ping().await {
        return Err(ScenarioFailure::Setup(format!(
            "PING through the proxy: {e}"
        )));
    }
    let before = proxy.traffic();
    proxy.set_mode(ProxyMode::HoldReplies);
    let call = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = client
                .execute(Command::Incrby {
                    key: KEY.to_owned(),
                    delta: 1,
                })
                .await;
            (started.elapsed(), result)
        })
    };
    // The server applied it and answered; the proxy holds the answer.
    if proxy
        .wait_for_traffic(Duration::from_secs(5), |t| {
            t.requests_forwarded > before.requests_forwarded && t.replies_read > before.replies_read
        })
        .await
        .is_none()
    {
        problems.push("the INCRBY never reached the server through the proxy".to_owned());
    }
    server.stop().await?;
    let (took, result) = call
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("the call's task: {e}")))?;
    let message = match &result {
        Ok(v) => format!("answered {v:?}"),
        Err(e) => e.to_string(),
    };
    let end = CallEnd::of(&result);
    proxy.set_mode(ProxyMode::Pass);
    server.restart().await?;
    // A fresh client: the first may have its breaker open by now.
    let reader = ResilientClient::builder_arc(
        "in-flight-check",
        connect(server.connection_config())
            .await
            .map_err(ScenarioFailure::Connect)?,
    )
    .build()?;
    let counter = match reader
        .execute(Command::Get {
            key: KEY.to_owned(),
        })
        .await
    {
        Ok(Value::Bytes(b)) => std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()),
        Ok(Value::Nil) => Some(0),
        Ok(other) => {
            problems.push(format!("GET {KEY} answered {other:?}"));
            None
        }
        Err(e) => {
            problems.push(format!("GET {KEY}: {e}"));
            None
        }
    };
    Ok(InFlightReport {
        backend: backend_name,
        call: (took, end),
        message,
        counter,
        problems,
    })
}
