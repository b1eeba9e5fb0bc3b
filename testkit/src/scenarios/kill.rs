//! `kill_and_restart`: a server killed with SIGKILL under load and restarted on the same
//! port (the run and its promises are on [`kill_and_restart_with`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    BackendError, CircuitState, Command, ConnectionConfig, Error, KvBackend, Priority,
    ResilientClient, SetOptions, StoreOutcome, Ticket, TicketOutcome, Transition, Value,
};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::server::RedisServer;

use super::{BackendFuture, Latency, Load, ScenarioFailure, print_and_assert};

/// Knobs of [`kill_and_restart_with`]. The defaults are the promises checked and a load
/// that a 2-core machine sustains.
#[derive(Clone, Debug)]
pub struct KillOptions {
    /// The load: 8 writers 25 ms apart over 5 keys each, 4 `INCRBY` tasks, a 300 ms socket timeout, the client's default 1 s health-check interval.
    pub load: Load,
    /// How long load runs against the dead server after the breaker opened (default 1.5 s).
    pub down_for: Duration,
    /// Promise: the breaker closes at most this long after the server answers again
    /// (default 1.5 s).
    pub close_within: Duration,
    /// How long queued writes may take to land once the breaker closed (default 8 s).
    pub drain_deadline: Duration,
}

impl Default for KillOptions {
    fn default() -> Self {
        KillOptions {
            load: Load {
                writers: 8,
                pace: Duration::from_millis(25),
                counters: 4,
                keys_per_writer: 5,
                socket_timeout: Duration::from_millis(300),
                health_check_interval: Duration::from_secs(1),
            },
            down_for: Duration::from_millis(1500),
            close_within: Duration::from_millis(1500),
            drain_deadline: Duration::from_secs(8),
        }
    }
}

/// Fates of the prioritized writes of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Writes submitted.
    pub issued: u64,
    /// Applied at once ([`StoreOutcome::Stored`]).
    pub stored: u64,
    /// Queued ([`StoreOutcome::Queued`]).
    pub queued: u64,
    /// Queued `High` writes.
    pub queued_high: u64,
    /// Queued `Normal` writes.
    pub queued_normal: u64,
    /// Queued, then replayed and applied ([`TicketOutcome::Completed`]).
    pub completed: u64,
    /// Queued `High` writes completed.
    pub completed_high: u64,
    /// Queued `Normal` writes completed.
    pub completed_normal: u64,
    /// Queued, then given up ([`TicketOutcome::DeadLettered`]).
    pub dead_lettered: u64,
    /// Queued, and the ticket had not resolved by the drain deadline.
    pub unresolved: u64,
    /// Refused at once ([`StoreOutcome::Failed`]).
    pub failed: u64,
    /// Dropped ([`StoreOutcome::Dropped`]; never expected, no write is `Low`).
    pub dropped: u64,
}

/// Outcomes of the `INCRBY counter 1` calls, and the counter the server ended with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncrCounts {
    /// Calls that returned a value: applied exactly once.
    pub ok: u64,
    /// Calls that failed with `Timeout`: may or may not have been applied.
    pub timeout: u64,
    /// Calls that failed with `Unavailable`: never sent.
    pub unavailable: u64,
    /// Calls rejected by the open breaker: never sent.
    pub circuit_open: u64,
    /// Calls that failed otherwise (busy, server error, …): not applied.
    pub other: u64,
    /// The counter read back at the end (`None` when it could not be read).
    pub counter: Option<i64>,
}

impl IncrCounts {
    /// Whether the counter is consistent with "applied at most once each":
    /// `ok <= counter <= ok + timeout`.
    pub fn consistent(&self) -> bool {
        match self.counter {
            Some(c) => {
                let c = i128::from(c);
                c >= i128::from(self.ok) && c <= i128::from(self.ok) + i128::from(self.timeout)
            }
            None => false,
        }
    }
}

/// What [`kill_and_restart`] measured. `Display` prints it for humans.
#[derive(Clone, Debug)]
pub struct KillReport {
    /// The backend's name.
    pub backend: &'static str,
    /// The options the run used.
    pub options: KillOptions,
    /// From the SIGKILL to the breaker's Open transition (`None`: it never opened).
    pub opened_after_kill: Option<Duration>,
    /// The reason of that transition.
    pub open_reason: Option<&'static str>,
    /// Calls that had reached the backend and failed when the open breaker had settled
    /// (read twice `socket_timeout` + 200 ms after it opened): at least the threshold.
    pub failures_before_open: u64,
    /// Calls that reached the backend between settling and the restart: must be 0.
    pub calls_while_open: u64,
    /// Whether the restart began right after a failed health probe (the worst phase for
    /// the time to close: the next probe is a whole interval away).
    pub restarted_after_failed_probe: bool,
    /// How long `restart()` took (spawning until the server answered `PING`).
    pub restart_took: Duration,
    /// From the SIGKILL to the server answering again.
    pub down_for: Duration,
    /// From the server answering again to the breaker's Closed transition (`None`: it did
    /// not close by the deadline). Zero when it closed while `restart()` was still
    /// confirming the server was up.
    pub closed_after_restart: Option<Duration>,
    /// From the start of `restart()` to the Closed transition.
    pub closed_after_restart_began: Option<Duration>,
    /// The reason of that transition.
    pub close_reason: Option<&'static str>,
    /// Every breaker transition of the run: from, to, reason, time since the kill
    /// (negative times are before it, shown as `-`).
    pub transitions: Vec<(CircuitState, CircuitState, &'static str, Option<Duration>)>,
    /// The breaker's state at the end.
    pub final_state: CircuitState,
    /// Writes.
    pub writes: WriteCounts,
    /// How long the queued writes took to land after the breaker closed.
    pub drained_after_close: Option<Duration>,
    /// Keys (and hash fields) read back.
    pub keys_checked: usize,
    /// Keys whose value was not the last one written (up to 10 shown).
    pub wrong_values: Vec<String>,
    /// INCRBY accounting.
    pub incr: IncrCounts,
    /// Retries the client made (must be 0: nothing here may be retried).
    pub retries: u64,
    /// `CircuitOpen` rejections of INCRBY calls. Their latency is reported, not asserted
    /// (a wall-clock bound belongs to the bench, whose `open` scenario measures it); that
    /// none of them reached the backend is [`calls_while_open`](Self::calls_while_open).
    pub fail_fast: Latency,
    /// `submit` calls that started while Open (each one queues the write).
    pub submit_while_open: Latency,
    /// Wall time of the whole scenario.
    pub elapsed: Duration,
}

impl KillReport {
    /// Prints the report and panics, like `assert!`, with every broken promise (see
    /// [`violations`](Self::violations)): what a backend's test calls on the report.
    pub fn print_and_assert(&self) {
        print_and_assert(self, &self.violations());
    }

    /// The promises this run broke, one sentence each; empty when all held.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let o = &self.options;
        match (self.opened_after_kill, self.open_reason) {
            (Some(_), Some("failure threshold reached")) => {}
            (Some(_), reason) => {
                v.push(format!("breaker opened for {reason:?}, not the threshold"))
            }
            (None, _) => v.push("the breaker never opened after the kill".to_owned()),
        }
        if self.failures_before_open < 3 {
            v.push(format!(
                "breaker opened after {} failures, below the threshold 3",
                self.failures_before_open
            ));
        }
        if self.calls_while_open != 0 {
            v.push(format!(
                "{} calls reached the backend while the breaker was open",
                self.calls_while_open
            ));
        }
        if self.fail_fast.count == 0 {
            v.push("no call was rejected while the breaker was open".to_owned());
        }
        match self.closed_after_restart {
            Some(t) if t <= o.close_within => {}
            Some(t) => v.push(format!(
                "breaker closed {t:?} after the restart, later than {:?}",
                o.close_within
            )),
            None => v.push("the breaker did not close after the restart".to_owned()),
        }
        if !matches!(self.close_reason, Some("health probe succeeded")) {
            v.push(format!(
                "breaker closed by {:?}, not the health probe",
                self.close_reason
            ));
        }
        if !self.restarted_after_failed_probe {
            v.push("no failed health probe was seen while the server was down".to_owned());
        }
        if self.final_state != CircuitState::Closed {
            v.push(format!("breaker ended {:?}", self.final_state));
        }
        let w = &self.writes;
        if w.queued_high == 0 || w.queued_normal == 0 {
            v.push(format!(
                "the outage queued {} High and {} Normal writes; both must be exercised",
                w.queued_high, w.queued_normal
            ));
        }
        if w.completed != w.queued || w.dead_lettered != 0 || w.unresolved != 0 {
            v.push(format!(
                "{} writes queued but {} completed, {} dead-lettered, {} unresolved",
                w.queued, w.completed, w.dead_lettered, w.unresolved
            ));
        }
        if w.failed != 0 || w.dropped != 0 {
            v.push(format!(
                "{} writes failed and {} were dropped",
                w.failed, w.dropped
            ));
        }
        if w.stored + w.queued + w.failed + w.dropped != w.issued {
            v.push(format!(
                "{} writes issued but outcomes do not add up",
                w.issued
            ));
        }
        if !self.wrong_values.is_empty() {
            v.push(format!(
                "keys not holding their last written value: {:?}",
                self.wrong_values
            ));
        }
        if !self.incr.consistent() {
            v.push(format!(
                "INCRBY counter {:?} outside [ok {}, ok + timeouts {}]: a command was lost or applied twice",
                self.incr.counter,
                self.incr.ok,
                self.incr.ok + self.incr.timeout
            ));
        }
        if self.retries != 0 {
            v.push(format!("the client retried {} times", self.retries));
        }
        v
    }
}

fn opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_owned(), |d| format!("{d:?}"))
}

impl fmt::Display for KillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let w = &self.writes;
        let i = &self.incr;
        writeln!(
            f,
            "kill_and_restart [{}]: {} writers every {:?} + {} INCRBY loops, socket_timeout {:?}, health check {:?}",
            self.backend,
            o.load.writers,
            o.load.pace,
            o.load.counters,
            o.load.socket_timeout,
            o.load.health_check_interval
        )?;
        writeln!(
            f,
            "  breaker: opened {} after SIGKILL ({:?}) after {} failures; {} calls reached the backend while open",
            opt(self.opened_after_kill),
            self.open_reason,
            self.failures_before_open,
            self.calls_while_open
        )?;
        writeln!(
            f,
            "  server down {:?}; restarted right after a failed probe: {}; restart took {:?}; breaker closed {} after the server answered ({} after restart began, {:?}); final {:?}",
            self.down_for,
            self.restarted_after_failed_probe,
            self.restart_took,
            opt(self.closed_after_restart),
            opt(self.closed_after_restart_began),
            self.close_reason,
            self.final_state
        )?;
        writeln!(f, "  fail fast (CircuitOpen INCRBY): {}", self.fail_fast)?;
        writeln!(
            f,
            "  submit while open (queued):     {}",
            self.submit_while_open
        )?;
        writeln!(
            f,
            "  writes: issued {} stored {} queued {} (high {} normal {}) completed {} (high {} normal {}) dead-lettered {} unresolved {} failed {} dropped {}; drained {} after close",
            w.issued,
            w.stored,
            w.queued,
            w.queued_high,
            w.queued_normal,
            w.completed,
            w.completed_high,
            w.completed_normal,
            w.dead_lettered,
            w.unresolved,
            w.failed,
            w.dropped,
            opt(self.drained_after_close)
        )?;
        writeln!(
            f,
            "  read back: {} keys/fields, {} wrong",
            self.keys_checked,
            self.wrong_values.len()
        )?;
        writeln!(
            f,
            "  INCRBY: ok {} timeout {} unavailable {} circuit_open {} other {}; counter {:?} (must be in [{}, {}]); client retries {}",
            i.ok,
            i.timeout,
            i.unavailable,
            i.circuit_open,
            i.other,
            i.counter,
            i.ok,
            i.ok + i.timeout,
            self.retries
        )?;
        write!(f, "  transitions:")?;
        for (from, to, reason, at) in &self.transitions {
            write!(
                f,
                " [{from:?}->{to:?} {reason} at +{}]",
                at.map_or_else(|| "-".to_owned(), |d| format!("{d:?}"))
            )?;
        }
        writeln!(f)?;
        write!(f, "  total {:?}", self.elapsed)
    }
}

/// [`kill_and_restart_with`] with the default [`KillOptions`].
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
pub async fn kill_and_restart<F>(connect: F) -> Result<KillReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    kill_and_restart_with(KillOptions::default(), connect).await
}

/// One prioritized write as issued.
struct Write {
    writer: usize,
    slot: usize,
    pair: bool,
    priority: Priority,
    value: Bytes,
    fate: Fate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Stored,
    Queued,
    Completed,
    DeadLettered,
    Unresolved,
    Failed,
    Dropped,
}

/// What one writer task saw.
#[derive(Default)]
pub(super) struct WriterLog {
    writes: Vec<Write>,
    tickets: Vec<(usize, Ticket)>,
    pub(super) incr: IncrCounts,
    rejections: Vec<Duration>,
    /// (started, took) of submits that queued.
    queued_submits: Vec<(Instant, Duration)>,
}

/// Progress the main task waits on.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) stop: AtomicBool,
    pub(super) incr_ok: AtomicU64,
    pub(super) stored: AtomicU64,
}

pub(super) const COUNTER_KEY: &str = "chaos:counter";

fn string_key(writer: usize, slot: usize) -> String {
    format!("chaos:w{writer}:k{slot}")
}

fn hash_key(writer: usize) -> String {
    format!("chaos:w{writer}:h")
}

fn field(slot: usize) -> String {
    format!("f{slot}")
}

async fn writer(
    client: ResilientClient,
    index: usize,
    options: KillOptions,
    progress: Arc<Progress>,
) -> WriterLog {
    let mut log = WriterLog::default();
    let mut tick = tokio::time::interval(options.load.pace);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    while !progress.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let slot = (seq as usize) % options.load.keys_per_writer.max(1);
        // One write in four is an atomic pair (replayed alone, one fsync each).
        let pair = (seq / 2) % 4 == 1;
        let priority = if seq.is_multiple_of(2) {
            Priority::High
        } else {
            Priority::Normal
        };
        let value = Bytes::from(format!("w{index}-{seq}"));
        let mut batch = vec![Command::Set {
            key: string_key(index, slot),
            value: value.clone(),
            options: SetOptions::default(),
        }];
        if pair {
            batch.push(Command::Hset {
                key: hash_key(index),
                fields: vec![(field(slot), value.clone())],
            });
        }
        let started = Instant::now();
        let outcome = client.submit(batch, priority).await;
        let took = started.elapsed();
        let fate = match outcome {
            StoreOutcome::Stored => {
                progress.stored.fetch_add(1, Ordering::Relaxed);
                Fate::Stored
            }
            StoreOutcome::Queued(ticket) => {
                log.tickets.push((log.writes.len(), ticket));
                log.queued_submits.push((started, took));
                Fate::Queued
            }
            StoreOutcome::Failed(e) => {
                tracing::warn!(writer = index, seq, error = %e, "write failed");
                Fate::Failed
            }
            StoreOutcome::Dropped => Fate::Dropped,
        };
        log.writes.push(Write {
            writer: index,
            slot,
            pair,
            priority,
            value,
            fate,
        });

        incr_once(&client, &mut log, &progress).await;
        seq += 1;
    }
    log
}

/// A counter task: `INCRBY counter 1` back to back while they succeed (so several are in
/// flight when the server dies), at the writers' pace after a failure.
pub(super) async fn counter(
    client: ResilientClient,
    load: Load,
    progress: Arc<Progress>,
) -> WriterLog {
    let mut log = WriterLog::default();
    while !progress.stop.load(Ordering::Relaxed) {
        if !incr_once(&client, &mut log, &progress).await {
            tokio::time::sleep(load.pace).await;
        }
    }
    log
}

/// One `INCRBY counter 1`, accounted in `log`. Returns whether it succeeded.
pub(super) async fn incr_once(
    client: &ResilientClient,
    log: &mut WriterLog,
    progress: &Progress,
) -> bool {
    let started = Instant::now();
    let result = client
        .execute(Command::Incrby {
            key: COUNTER_KEY.to_owned(),
            delta: 1,
        })
        .await;
    let took = started.elapsed();
    match result {
        Ok(_) => {
            log.incr.ok += 1;
            progress.incr_ok.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        Err(Error::CircuitOpen { .. }) => {
            log.incr.circuit_open += 1;
            log.rejections.push(took);
        }
        Err(Error::Timeout(_)) => log.incr.timeout += 1,
        Err(Error::Unavailable(_)) => log.incr.unavailable += 1,
        Err(e) => {
            tracing::info!(error = %e, "INCRBY failed");
            log.incr.other += 1;
        }
    }
    false
}

/// Waits until `cond` holds, checking every 5 ms, until `deadline`. Returns whether it held.
pub(super) async fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The SIGKILL-and-restart scenario, for the backend that `connect` builds from a
/// [`ConnectionConfig`].
///
/// A server killed with SIGKILL under load and restarted on the same port: the breaker
/// opens after the threshold, calls fail fast while Open, the health probe closes it soon
/// after the restart, every queued High and Normal write lands afterwards (counted), and an
/// INCR counter shows no non-idempotent command applied twice.
///
/// The run, every wait bounded by a deadline:
///
/// 1. A server with `appendfsync always` (what Redis acknowledged survives the SIGKILL) and a
///    client with the default breaker (3 failures, 300 s reset timeout: only the health
///    probe can close it in time) and the default 1 s health-check interval.
/// 2. [`Load::writers`](super::Load::writers) tasks, each paced at [`Load::pace`](super::Load::pace), loop: one
///    prioritized write with [`submit`](ResilientClient::submit), alternating `High` and
///    `Normal`, mostly single `SET`s and one in four an atomic `SET`+`HSET` pair, over a
///    few keys per writer so keys are overwritten (with values unique per write); then one
///    `INCRBY counter 1` with [`execute`](ResilientClient::execute), which never retries.
///    [`Load::counters`](super::Load::counters) more tasks run `INCRBY counter 1` back to back while Redis
///    answers, so several are in flight at the kill.
/// 3. Once load is flowing, SIGKILL. The breaker must open by "failure threshold reached";
///    load continues for [`KillOptions::down_for`]; every call rejected with `CircuitOpen`
///    is timed, and the number of calls that reached the backend while Open is counted.
/// 4. Restart on the same port, right after a health probe's `PING` failed (seen through a
///    transparent wrapper around the backend): the worst phase, since the next probe is a
///    whole interval away. The time from the server answering again to the breaker's Closed
///    transition is measured.
/// 5. Load continues a moment, stops; every queued write's ticket is awaited.
/// 6. Checks: every write was stored at once or queued and then completed (none failed,
///    dropped or dead-lettered); every key holds the value of the last write issued to it;
///    the server's counter `c` satisfies `ok <= c <= ok + timeouts`, where `ok` counts the
///    INCRBY calls that returned a value and `timeouts` those that failed with `Timeout`
///    (which may or may not have run; every other error means it was never applied), and
///    the client made no retries at all.
///
/// Returns `Err` only when the run could not happen (no `redis-server`, the backend could
/// not connect to a fresh server, load never started); a run that breaks a promise returns
/// a report whose [`violations`](KillReport::violations) say which.
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
pub async fn kill_and_restart_with<F>(
    options: KillOptions,
    connect: F,
) -> Result<KillReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let began = Instant::now();
    let mut server = RedisServer::builder()
        .appendfsync_always(true)
        .spawn()
        .await?;
    let config = server
        .connection_config()
        .with_socket_timeout(options.load.socket_timeout)
        .with_socket_connect_timeout(options.load.socket_timeout);
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let (failed_pings_tx, mut failed_pings) = tokio::sync::watch::channel(0u64);
    let backend: Arc<dyn KvBackend> = Arc::new(PingWatch {
        inner: backend,
        failed_pings: failed_pings_tx,
    });
    let client = ResilientClient::builder_arc("chaos", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .circuit_threshold(3)
                .circuit_reset_timeout(Duration::from_secs(300))
                .with_health_check_interval(options.load.health_check_interval),
        )
        // Room for every write the paced load can queue during the outage, so none is
        // refused with QueueFull (which would be the load's fault, not the client's).
        .queue(resilience_core::QueueConfig::default().with_capacity(100_000))
        .build()?;
    // Transitions reach listeners after the state channel has changed, so the scenario
    // waits on the listener's own channel, not on `subscribe()`.
    let transitions: Arc<Mutex<Vec<Transition>>> = Arc::default();
    let (transition_tx, mut transition_rx) = tokio::sync::mpsc::unbounded_channel::<Transition>();
    {
        let transitions = Arc::clone(&transitions);
        client.circuit_breaker().on_transition(move |t| {
            transitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(t.clone());
            let _ = transition_tx.send(t.clone());
        });
    }

    // Load.
    let progress = Arc::new(Progress::default());
    let handles: Vec<JoinHandle<WriterLog>> = (0..options.load.writers)
        .map(|i| {
            tokio::spawn(writer(
                client.clone(),
                i,
                options.clone(),
                Arc::clone(&progress),
            ))
        })
        .chain((0..options.load.counters).map(|_| {
            tokio::spawn(counter(
                client.clone(),
                options.load.clone(),
                Arc::clone(&progress),
            ))
        }))
        .collect();
    let stop_and_join = |progress: Arc<Progress>, handles: Vec<JoinHandle<WriterLog>>| async move {
        progress.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::with_capacity(handles.len());
        for h in handles {
            match tokio::time::timeout(Duration::from_secs(5), h).await {
                Ok(Ok(log)) => logs.push(log),
                Ok(Err(e)) => return Err(ScenarioFailure::Setup(format!("writer task: {e}"))),
                Err(_) => {
                    return Err(ScenarioFailure::Setup(
                        "a writer did not stop within 5 s".to_owned(),
                    ));
                }
            }
        }
        Ok(logs)
    };
    let warm = options.load.writers as u64 * 10;
    let warmed = wait_until(Instant::now() + Duration::from_secs(10), || {
        progress.incr_ok.load(Ordering::Relaxed) >= warm
            && progress.stored.load(Ordering::Relaxed) >= warm
    })
    .await;
    if !warmed {
        let _ = stop_and_join(Arc::clone(&progress), handles).await;
        return Err(ScenarioFailure::Setup(
            "load did not start against the healthy server within 10 s".to_owned(),
        ));
    }

    // Crash.
    let killed = Instant::now();
    server.stop().await?;
    let open_transition = next_transition(
        &mut transition_rx,
        Instant::now() + Duration::from_secs(5),
        CircuitState::Open,
    )
    .await;
    let opened_at = open_transition.as_ref().map(|t| t.at);
    // Calls admitted before the breaker opened end within socket_timeout; after that no
    // call may reach the backend until the restart.
    // Twice the timeout plus slack: a busy machine may run a timed-out call's end late.
    let settle_at =
        opened_at.unwrap_or(killed) + options.load.socket_timeout * 2 + Duration::from_millis(200);
    tokio::time::sleep_until(settle_at).await;
    let settled = client.stats();
    // The outage lasts at least `down_for` after the breaker opened; then the server comes
    // back right after a health probe failed, the worst phase: the next probe is a whole
    // interval away.
    tokio::time::sleep_until(opened_at.unwrap_or(killed) + options.down_for).await;
    failed_pings.borrow_and_update();
    let probe_wait = options.load.health_check_interval * 2 + Duration::from_secs(1);
    let after_failed_probe = tokio::time::timeout(probe_wait, failed_pings.changed())
        .await
        .is_ok_and(|r| r.is_ok());
    let before_restart = client.stats();

    // Recovery.
    let restart_began = Instant::now();
    let restarted = server.restart().await;
    let back = Instant::now();
    if let Err(e) = restarted {
        let _ = stop_and_join(Arc::clone(&progress), handles).await;
        return Err(e.into());
    }
    let close_deadline = back + options.close_within.max(Duration::from_secs(1)) * 3;
    let close_transition = match opened_at {
        Some(_) => next_transition(&mut transition_rx, close_deadline, CircuitState::Closed).await,
        None => None,
    };
    let closed_at = close_transition.as_ref().map(|t| t.at);

    // Some load on the recovered server, then stop and wait for every queued write.
    let incr_at_close = progress.incr_ok.load(Ordering::Relaxed);
    let _ = wait_until(Instant::now() + Duration::from_secs(3), || {
        progress.incr_ok.load(Ordering::Relaxed) >= incr_at_close + warm
    })
    .await;
    let logs = stop_and_join(Arc::clone(&progress), handles).await?;
    let mut writes: Vec<Write> = Vec::new();
    let mut tickets: Vec<(usize, Ticket)> = Vec::new();
    let mut incr = IncrCounts::default();
    let mut rejections = Vec::new();
    let mut queued_submits = Vec::new();
    for log in logs {
        let base = writes.len();
        writes.extend(log.writes);
        tickets.extend(log.tickets.into_iter().map(|(i, t)| (base + i, t)));
        incr.ok += log.incr.ok;
        incr.timeout += log.incr.timeout;
        incr.unavailable += log.incr.unavailable;
        incr.circuit_open += log.incr.circuit_open;
        incr.other += log.incr.other;
        rejections.extend(log.rejections);
        queued_submits.extend(log.queued_submits);
    }
    let drain_deadline = Instant::now() + options.drain_deadline;
    for (index, ticket) in tickets {
        let fate = match tokio::time::timeout_at(drain_deadline, ticket.wait()).await {
            Ok(TicketOutcome::Completed) => Fate::Completed,
            Ok(TicketOutcome::DeadLettered { reason }) => {
                tracing::warn!(?reason, "queued write dead-lettered");
                Fate::DeadLettered
            }
            Err(_) => Fate::Unresolved,
        };
        if let Some(w) = writes.get_mut(index) {
            w.fate = fate;
        }
    }
    let drained = Instant::now();

    // Read back: every key and hash field must hold the last value written to it.
    let mut expected: HashMap<(String, Option<String>), (Bytes, bool)> = HashMap::new();
    for w in &writes {
        let acked = matches!(w.fate, Fate::Stored | Fate::Completed);
        let mut note = |key: (String, Option<String>)| {
            expected.insert(key, (w.value.clone(), acked));
        };
        note((string_key(w.writer, w.slot), None));
        if w.pair {
            note((hash_key(w.writer), Some(field(w.slot))));
        }
    }
    let mut wrong_values = Vec::new();
    let mut keys_checked = 0;
    let mut entries: Vec<_> = expected.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let reader = client.backend();
    for ((key, field), (value, acked)) in entries {
        if !acked {
            // The last write to it was not acknowledged: already a violation of its own.
            continue;
        }
        keys_checked += 1;
        let cmd = match &field {
            None => Command::Get { key: key.clone() },
            Some(f) => Command::Hget {
                key: key.clone(),
                field: f.clone(),
            },
        };
        let got = reader.execute(cmd).await;
        let ok = matches!(&got, Ok(Value::Bytes(b)) if *b == value);
        if !ok && wrong_values.len() < 10 {
            wrong_values.push(format!(
                "{key}{}: want {:?}, got {got:?}",
                field.map(|f| format!(".{f}")).unwrap_or_default(),
                String::from_utf8_lossy(&value)
            ));
        }
    }
    incr.counter = match reader
        .execute(Command::Get {
            key: COUNTER_KEY.to_owned(),
        })
        .await
    {
        Ok(Value::Bytes(b)) => std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()),
        _ => None,
    };

    let mut counts = WriteCounts {
        issued: writes.len() as u64,
        ..WriteCounts::default()
    };
    for w in &writes {
        let high = w.priority == Priority::High;
        let queued = matches!(
            w.fate,
            Fate::Queued | Fate::Completed | Fate::DeadLettered | Fate::Unresolved
        );
        if queued {
            counts.queued += 1;
            if high {
                counts.queued_high += 1;
            } else {
                counts.queued_normal += 1;
            }
        }
        match w.fate {
            Fate::Stored => counts.stored += 1,
            Fate::Completed => {
                counts.completed += 1;
                if high {
                    counts.completed_high += 1;
                } else {
                    counts.completed_normal += 1;
                }
            }
            Fate::DeadLettered => counts.dead_lettered += 1,
            Fate::Unresolved | Fate::Queued => counts.unresolved += 1,
            Fate::Failed => counts.failed += 1,
            Fate::Dropped => counts.dropped += 1,
        }
    }

    let stats = client.stats();
    let final_state = client.circuit_state();
    let _ = client.shutdown(Duration::from_millis(100)).await;
    let open_window = opened_at.map(|o| (o, closed_at.unwrap_or(restart_began)));
    let submit_while_open = Latency::of(
        queued_submits
            .into_iter()
            .filter(|(started, _)| open_window.is_some_and(|(o, c)| *started >= o && *started < c))
            .map(|(_, took)| took)
            .collect(),
    );
    let transitions = transitions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|t| (t.from, t.to, t.reason, t.at.checked_duration_since(killed)))
        .collect();
    Ok(KillReport {
        backend: backend_name,
        opened_after_kill: opened_at.map(|o| o.saturating_duration_since(killed)),
        open_reason: open_transition.map(|t| t.reason),
        failures_before_open: settled.failures,
        calls_while_open: before_restart.calls.saturating_sub(settled.calls),
        restarted_after_failed_probe: after_failed_probe,
        restart_took: back.saturating_duration_since(restart_began),
        down_for: back.saturating_duration_since(killed),
        closed_after_restart: closed_at.map(|c| c.saturating_duration_since(back)),
        closed_after_restart_began: closed_at.map(|c| c.saturating_duration_since(restart_began)),
        close_reason: close_transition.map(|t| t.reason),
        transitions,
        final_state,
        writes: counts,
        drained_after_close: closed_at.map(|c| drained.saturating_duration_since(c)),
        keys_checked,
        wrong_values,
        incr,
        retries: stats.retries,
        fail_fast: Latency::of(rejections),
        submit_while_open,
        elapsed: began.elapsed(),
        options,
    })
}

/// The next transition into `to`, if one comes before `deadline`.
async fn next_transition(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Transition>,
    deadline: Instant,
    to: CircuitState,
) -> Option<Transition> {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(t)) if t.to == to => return Some(t),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// A transparent wrapper that tells the scenario when a `PING` (the health probe's
/// command; the load never sends one) fails, so it can restart the server in the probe's
/// worst phase.
struct PingWatch {
    inner: Arc<dyn KvBackend>,
    failed_pings: tokio::sync::watch::Sender<u64>,
}

#[async_trait::async_trait]
impl KvBackend for PingWatch {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        let ping = matches!(cmd, Command::Ping);
        let result = self.inner.execute(cmd).await;
        if ping && result.is_err() {
            self.failed_pings.send_modify(|n| *n += 1);
        }
        result
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        self.inner.execute_batch(cmds, atomic).await
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn latency_uses_nearest_rank_percentiles() {
        let l = Latency::of((1..=100).rev().map(ms).collect());
        assert_eq!(
            (l.count, l.p50, l.p99, l.max),
            (100, ms(50), ms(99), ms(100))
        );
        assert_eq!(Latency::of(Vec::new()), Latency::default());
        let one = Latency::of(vec![ms(7)]);
        assert_eq!((one.p50, one.p99, one.max), (ms(7), ms(7), ms(7)));
    }

    #[test]
    fn the_counter_must_lie_between_acknowledged_and_possibly_applied() {
        let incr = |counter| IncrCounts {
            ok: 10,
            timeout: 2,
            counter,
            ..IncrCounts::default()
        };
        assert!(incr(Some(10)).consistent());
        assert!(incr(Some(12)).consistent());
        assert!(
            !incr(Some(9)).consistent(),
            "an acknowledged INCRBY was lost"
        );
        assert!(!incr(Some(13)).consistent(), "an INCRBY was applied twice");
        assert!(!incr(None).consistent());
    }

    fn good_report() -> KillReport {
        KillReport {
            backend: "test",
            options: KillOptions::default(),
            opened_after_kill: Some(ms(2)),
            open_reason: Some("failure threshold reached"),
            failures_before_open: 3,
            calls_while_open: 0,
            restarted_after_failed_probe: true,
            restart_took: ms(20),
            down_for: ms(2000),
            closed_after_restart: Some(ms(980)),
            closed_after_restart_began: Some(ms(1000)),
            close_reason: Some("health probe succeeded"),
            transitions: Vec::new(),
            final_state: CircuitState::Closed,
            writes: WriteCounts {
                issued: 10,
                stored: 6,
                queued: 4,
                queued_high: 2,
                queued_normal: 2,
                completed: 4,
                completed_high: 2,
                completed_normal: 2,
                ..WriteCounts::default()
            },
            drained_after_close: Some(ms(100)),
            keys_checked: 4,
            wrong_values: Vec::new(),
            incr: IncrCounts {
                ok: 5,
                timeout: 1,
                counter: Some(6),
                ..IncrCounts::default()
            },
            retries: 0,
            fail_fast: Latency {
                count: 10,
                p50: Duration::from_micros(1),
                p99: Duration::from_micros(20),
                max: Duration::from_micros(30),
            },
            submit_while_open: Latency::default(),
            elapsed: ms(5000),
        }
    }

    #[test]
    fn a_run_that_kept_every_promise_has_no_violations() {
        let report = good_report();
        assert_eq!(report.violations(), Vec::<String>::new());
        assert!(report.to_string().contains("kill_and_restart [test]"));
    }

    #[test]
    fn each_broken_promise_is_reported() {
        type Breaker = (&'static str, fn(&mut KillReport));
        let breakers: Vec<Breaker> = vec![
            ("slow close", |r| r.closed_after_restart = Some(ms(1501))),
            ("never closed", |r| r.closed_after_restart = None),
            ("closed by timeout", |r| {
                r.close_reason = Some("reset timeout elapsed")
            }),
            ("calls while open", |r| r.calls_while_open = 1),
            ("below threshold", |r| r.failures_before_open = 2),
            ("lost write", |r| r.writes.completed = 3),
            ("dead letter", |r| r.writes.dead_lettered = 1),
            ("failed write", |r| {
                r.writes.failed = 1;
                r.writes.stored -= 1;
            }),
            ("stale value", |r| r.wrong_values.push("k".to_owned())),
            ("double INCR", |r| r.incr.counter = Some(7)),
            ("retry", |r| r.retries = 1),
            ("no Normal queued", |r| r.writes.queued_normal = 0),
        ];
        for (name, broken) in breakers {
            let mut report = good_report();
            broken(&mut report);
            assert_eq!(
                report.violations().len(),
                1,
                "{name}: {:?}",
                report.violations()
            );
        }
    }
}
