//! Sentinel failover under a steady stream of writes, written once and run for every
//! backend.
//!
//! The promise: connected through sentinels to a named master, after a failover (the
//! master killed; 1 master, 1 replica, 3 sentinels spawned locally) writes resume on the
//! new master within 10 s, without restarting the client.
//!
//! The run, every wait bounded by a deadline:
//!
//! 1. A [`SentinelDeployment`]; the backend connects through its sentinels (the factory
//!    gets the deployment's sentinel-mode [`ConnectionConfig`]), and one
//!    [`ResilientClient`] with the default breaker (3 failures, 300 s reset timeout, 1 s
//!    health check) is built over it, once.
//! 2. One writer task loops: `SET sentinel:<i> <i>` with a distinct key each time (plain
//!    calls, no retry), then, until the kill, `WAIT 1 100` after each acknowledged `SET`;
//!    a write whose `WAIT` says the replica has it is *confirmed*. Writes are paced
//!    (`FailoverOptions::load`'s `pace`).
//! 3. Once writes are confirmed, the master is SIGKILLed. The time from the kill to the
//!    first acknowledged `SET` issued after the old master's process exited is measured
//!    (`kill_to_first_write`, from just before the kill, so never flattering), and
//!    separately when the sentinels agree on the new master.
//! 4. Writes continue for [`FailoverOptions::after_resume`], then stop.
//! 5. Checks: writes resumed within [`FailoverOptions::resume_within`]; every confirmed
//!    write and every write acknowledged after the kill is readable with its value
//!    (through the same client, so reads work on the new master too); the breaker ends
//!    Closed.
//!
//! Meanwhile [`INCR_TASKS`] tasks `INCR` one counter from start to end, through the kill,
//! so some are in flight when the master dies. No command is resent after a failover:
//! an `INCR` whose connection died may have run and must come back as `Timeout`, and
//! every other error means it did not run. So at the end the counter is at most the
//! acknowledged increments plus the timed-out ones; a resend, or an increment reported
//! as not run that ran, pushes it past that bound.
//!
//! [`follow_demoted_master`] checks the other way a master change shows: the master is
//! demoted to a replica while the client's connection to it stays open, so writes get
//! `READONLY` replies; the client must ask the sentinels again and move to the new master.
//!
//! A write that the old master acknowledged but whose `WAIT` did not confirm replication
//! may be lost in the failover: Redis replicates asynchronously, so that is Redis's
//! contract, not a client bug. Such losses are counted in the report, not failed on.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    CircuitState, Command, ConnectionConfig, ResilientClient, SetOptions, Value,
};
use tokio::time::Instant;

use super::{BackendFuture, Load, ScenarioFailure};
use crate::server::{
    FakeSentinel, RedisServer, RespConnection, RespReply, SENTINEL_MASTER_NAME, SentinelDeployment,
};

/// Knobs of [`sentinel_failover_with`].
#[derive(Clone, Debug)]
pub struct FailoverOptions {
    /// The load (default: one writer, 5 ms between writes, a 300 ms socket timeout). Its
    /// writes come from one task, in sequence, so a confirmed write's successor is known;
    /// of the load, `pace`, `socket_timeout` and `health_check_interval` apply.
    pub load: Load,
    /// Promise: the first write issued after the kill succeeds within this long of the
    /// kill (default 10 s).
    pub resume_within: Duration,
    /// How long writes continue after they resumed (default 500 ms).
    pub after_resume: Duration,
    /// Confirmed writes to see before the kill (default 20).
    pub writes_before_kill: usize,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        FailoverOptions {
            load: Load {
                writers: 1,
                pace: Duration::from_millis(5),
                counters: 0,
                keys_per_writer: 1,
                socket_timeout: Duration::from_millis(300),
                health_check_interval: Duration::from_secs(1),
            },
            resume_within: Duration::from_secs(10),
            after_resume: Duration::from_millis(500),
            writes_before_kill: 20,
        }
    }
}

/// What [`sentinel_failover`] measured and checked.
#[derive(Clone, Debug)]
pub struct FailoverReport {
    /// The backend's name.
    pub backend: &'static str,
    /// The master that was killed.
    pub killed: SocketAddr,
    /// The master the sentinels agreed on afterwards.
    pub new_master: Option<SocketAddr>,
    /// From the kill to the sentinels agreeing on the new master.
    pub failover_seen: Option<Duration>,
    /// From the kill to the end of the first acknowledged `SET` issued after the old
    /// master exited.
    pub kill_to_first_write: Option<Duration>,
    /// The promise for `kill_to_first_write`.
    pub resume_within: Duration,
    /// `SET`s acknowledged before the kill (by the old master).
    pub acked_before_kill: usize,
    /// Of those, how many `WAIT` confirmed as replicated.
    pub confirmed_before_kill: usize,
    /// `SET`s acknowledged after the kill (by the new master).
    pub acked_after_kill: usize,
    /// `SET`s that failed (any error, `CircuitOpen` included).
    pub failed: usize,
    /// Confirmed or after-kill writes not readable with their value afterwards: must be
    /// empty.
    pub lost: Vec<String>,
    /// Writes the old master acknowledged without confirmed replication that the new
    /// master does not have (allowed by Redis's asynchronous replication).
    pub lost_unconfirmed: usize,
    /// The breaker's state at the end.
    pub final_state: CircuitState,
    /// The whole run.
    pub elapsed: Duration,
    /// `INCR`s of the counter, by outcome.
    pub incr: IncrTally,
    /// The counter's value at the end (`None`: it could not be read).
    pub counter: Option<u64>,
}

/// How the `INCR`s of a run ended.
#[derive(Clone, Debug, Default)]
pub struct IncrTally {
    /// Acknowledged.
    pub ok: u64,
    /// Timed out: they may or may not have run.
    pub timeout: u64,
    /// Any other error: they did not run.
    pub refused: u64,
}

/// Tasks incrementing the counter in [`sentinel_failover_with`].
pub const INCR_TASKS: usize = 4;

impl FailoverReport {
    /// Prints the report and panics, like `assert!`, with every broken promise (see
    /// [`violations`](Self::violations)).
    pub fn print_and_assert(&self) {
        super::print_and_assert(self, &self.violations());
    }

    /// The promises this run broke (empty when all held).
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        match self.kill_to_first_write {
            None => v.push(format!(
                "no write succeeded within {:?} of the kill",
                self.resume_within
            )),
            Some(t) if t > self.resume_within => v.push(format!(
                "writes resumed {t:?} after the kill (promise: {:?})",
                self.resume_within
            )),
            Some(_) => {}
        }
        if self.new_master.is_none() {
            v.push("the sentinels never agreed on a new master".to_owned());
        }
        if self.confirmed_before_kill == 0 {
            v.push("no write was confirmed before the kill: the run proves nothing".to_owned());
        }
        if self.acked_after_kill < 5 {
            v.push(format!(
                "only {} writes succeeded after the failover",
                self.acked_after_kill
            ));
        }
        if !self.lost.is_empty() {
            v.push(format!(
                "{} acknowledged writes lost: {:?}",
                self.lost.len(),
                &self.lost[..self.lost.len().min(10)]
            ));
        }
        if self.final_state != CircuitState::Closed {
            v.push(format!("breaker ended {:?}", self.final_state));
        }
        match self.counter {
            None => v.push("the counter could not be read back".to_owned()),
            Some(value) if value > self.incr.ok + self.incr.timeout => v.push(format!(
                "an INCR was applied twice: the counter is {value}, above {} acknowledged + {} timed out",
                self.incr.ok, self.incr.timeout
            )),
            Some(_) => {}
        }
        if self.incr.ok == 0 {
            v.push("no INCR succeeded: the run proves nothing".to_owned());
        }
        v
    }
}

impl fmt::Display for FailoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sentinel failover backend={} kill_to_first_write_ms={}",
            self.backend,
            self.kill_to_first_write
                .map_or_else(|| "none".to_owned(), |d| d.as_millis().to_string())
        )?;
        writeln!(
            f,
            "  killed {} -> new master {:?}, sentinels agreed after {:?}",
            self.killed, self.new_master, self.failover_seen
        )?;
        writeln!(
            f,
            "  SET acked before kill {} (confirmed by WAIT {}), after kill {}, failed {}; lost {} (unconfirmed lost {})",
            self.acked_before_kill,
            self.confirmed_before_kill,
            self.acked_after_kill,
            self.failed,
            self.lost.len(),
            self.lost_unconfirmed
        )?;
        writeln!(
            f,
            "  INCR ok {} timeout {} refused {}; counter {:?}",
            self.incr.ok, self.incr.timeout, self.incr.refused, self.counter
        )?;
        write!(
            f,
            "  breaker {:?}; total {:?}",
            self.final_state, self.elapsed
        )
    }
}

/// [`sentinel_failover_with`] with the default [`FailoverOptions`].
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
pub async fn sentinel_failover<F>(connect: F) -> Result<FailoverReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    sentinel_failover_with(FailoverOptions::default(), connect).await
}

/// One `SET` as the writer saw it.
#[derive(Clone, Debug)]
struct WriteRecord {
    index: u64,
    issued: Instant,
    done: Instant,
    acked: bool,
    confirmed: bool,
}

/// Runs the scenario (see the module docs).
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
pub async fn sentinel_failover_with<F>(
    options: FailoverOptions,
    connect: F,
) -> Result<FailoverReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let started = Instant::now();
    let mut deployment = SentinelDeployment::spawn().await?;
    let config = deployment
        .connection_config()
        .with_socket_timeout(options.load.socket_timeout)
        .with_socket_connect_timeout(options.load.socket_timeout);
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let client = ResilientClient::builder("sentinel_failover", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .with_health_check_interval(options.load.health_check_interval),
        )
        .build()?;

    let records: Arc<Mutex<Vec<WriteRecord>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // `WAIT` only before the kill: afterwards the new master has no replica, and every
    // `WAIT` would take its whole 100 ms.
    let confirming = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn(write_loop(
        client.clone(),
        Arc::clone(&records),
        Arc::clone(&stop),
        Arc::clone(&confirming),
        options.load.pace,
    ));
    let counters: Vec<_> = (0..INCR_TASKS)
        .map(|_| {
            tokio::spawn(incr_loop(
                client.clone(),
                Arc::clone(&stop),
                options.load.pace,
            ))
        })
        .collect();
    let confirmed_count =
        |records: &Mutex<Vec<WriteRecord>>| lock(records).iter().filter(|r| r.confirmed).count();

    let load_deadline = Instant::now() + Duration::from_secs(5);
    while confirmed_count(&records) < options.writes_before_kill {
        if Instant::now() >= load_deadline {
            stop.store(true, Ordering::Relaxed);
            return Err(ScenarioFailure::Setup(format!(
                "fewer than {} writes confirmed within 5 s of connecting",
                options.writes_before_kill
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    confirming.store(false, Ordering::Relaxed);
    // Times count from `kill_started` (before the sentinels are even asked which node to
    // kill); writes count as "after the kill" only when issued once the old master is
    // dead (`killed_at`, after the process exited), so none of them can have been
    // acknowledged by it.
    let kill_started = Instant::now();
    let killed = deployment.kill_master().await?;
    let killed_at = Instant::now();
    let failover = deployment
        .wait_for_failover(killed, options.resume_within + Duration::from_secs(5))
        .await;
    let failover_seen = failover.is_ok().then(|| kill_started.elapsed());
    let new_master = failover.ok();

    let first_write = |records: &Mutex<Vec<WriteRecord>>| {
        lock(records)
            .iter()
            .find(|r| r.acked && r.issued >= killed_at)
            .map(|r| r.done)
    };
    let resume_deadline = kill_started + options.resume_within + Duration::from_secs(2);
    let mut resumed = first_write(&records);
    while resumed.is_none() && Instant::now() < resume_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        resumed = first_write(&records);
    }
    if resumed.is_some() {
        tokio::time::sleep(options.after_resume).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    let mut incr = IncrTally::default();
    for task in counters {
        if let Ok(Ok(tally)) = tokio::time::timeout(Duration::from_secs(5), task).await {
            incr.ok += tally.ok;
            incr.timeout += tally.timeout;
            incr.refused += tally.refused;
        }
    }
    let counter = read_with_deadline(&client, COUNTER)
        .await
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok());

    let records = lock(&records).clone();
    let mut lost = Vec::new();
    let mut lost_unconfirmed = 0;
    for record in records.iter().filter(|r| r.acked) {
        let key = key(record.index);
        let read = read_with_deadline(&client, &key).await;
        let intact = read.as_deref() == Some(record.index.to_string().as_bytes());
        if intact {
            continue;
        }
        if record.confirmed || record.issued >= killed_at {
            lost.push(format!("{key}: read {read:?}"));
        } else {
            lost_unconfirmed += 1;
        }
    }

    let before: Vec<&WriteRecord> = records.iter().filter(|r| r.issued < killed_at).collect();
    Ok(FailoverReport {
        backend: backend_name,
        killed,
        new_master,
        failover_seen,
        kill_to_first_write: resumed.map(|t| t.saturating_duration_since(kill_started)),
        resume_within: options.resume_within,
        acked_before_kill: before.iter().filter(|r| r.acked).count(),
        confirmed_before_kill: before.iter().filter(|r| r.confirmed).count(),
        acked_after_kill: records
            .iter()
            .filter(|r| r.acked && r.issued >= killed_at)
            .count(),
        failed: records.iter().filter(|r| !r.acked).count(),
        lost,
        lost_unconfirmed,
        final_state: client.circuit_state(),
        elapsed: started.elapsed(),
        incr,
        counter,
    })
}

/// The key the `INCR` tasks increment.
const COUNTER: &str = "sentinel:counter";

/// `INCR`s [`COUNTER`] until `stop`, every `pace`, and tallies the outcomes.
async fn incr_loop(client: ResilientClient, stop: Arc<AtomicBool>, pace: Duration) -> IncrTally {
    let mut tally = IncrTally::default();
    while !stop.load(Ordering::Relaxed) {
        match client.incrby(COUNTER, 1).await {
            Ok(_) => tally.ok += 1,
            Err(resilience_core::Error::Timeout(_)) => tally.timeout += 1,
            Err(_) => tally.refused += 1,
        }
        tokio::time::sleep(pace).await;
    }
    tally
}

fn key(index: u64) -> String {
    format!("sentinel:{index}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `SET`s distinct keys until `stop`, each followed by `WAIT 1 100` when acknowledged
/// while `confirming`.
async fn write_loop(
    client: ResilientClient,
    records: Arc<Mutex<Vec<WriteRecord>>>,
    stop: Arc<AtomicBool>,
    confirming: Arc<AtomicBool>,
    pace: Duration,
) {
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let issued = Instant::now();
        let acked = client
            .set(key(index), index.to_string(), SetOptions::default())
            .await
            .is_ok();
        let done = Instant::now();
        let confirmed = acked && confirming.load(Ordering::Relaxed) && replicated(&client).await;
        lock(&records).push(WriteRecord {
            index,
            issued,
            done,
            acked,
            confirmed,
        });
        index += 1;
        tokio::time::sleep(pace).await;
    }
}

/// `WAIT 1 100`: whether a replica acknowledged every write so far on this connection.
async fn replicated(client: &ResilientClient) -> bool {
    let wait = Command::Raw {
        args: vec![
            Bytes::from_static(b"WAIT"),
            Bytes::from_static(b"1"),
            Bytes::from_static(b"100"),
        ],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    };
    matches!(client.execute(wait).await, Ok(Value::Int(n)) if n >= 1)
}

/// `GET key`, retried for up to 5 s while the client cannot answer (the breaker may still
/// be recovering); `None` if the key is missing or no answer came.
async fn read_with_deadline(client: &ResilientClient, key: &str) -> Option<Bytes> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.get(key).await {
            Ok(value) => return value,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return None,
        }
    }
}

/// What [`follow_demoted_master`] saw.
#[derive(Clone, Debug)]
pub struct DemotionReport {
    /// The backend's name.
    pub backend: &'static str,
    /// Writes that failed with a `READONLY` reply (the demoted master answered).
    pub readonly_errors: usize,
    /// Writes that failed otherwise, as `kind` strings in order.
    pub other_errors: Vec<String>,
    /// From the demotion to the first acknowledged write.
    pub first_write_after: Option<Duration>,
    /// Whether that write is on the new master (read there directly).
    pub on_new_master: bool,
}

impl DemotionReport {
    /// Prints the report and panics, like `assert!`, with every broken promise (see
    /// [`violations`](Self::violations)).
    pub fn print_and_assert(&self) {
        super::print_and_assert(self, &self.violations());
    }

    /// The promises this run broke: writes resumed within 5 s, on the new master.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.first_write_after.is_none() {
            v.push("no write succeeded within 5 s of the demotion".to_owned());
        }
        if !self.on_new_master {
            v.push("the write after the demotion is not on the new master".to_owned());
        }
        v
    }
}

impl fmt::Display for DemotionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "demoted master backend={}: first write after {:?} (on the new master: {}), READONLY errors {}, other errors {:?}",
            self.backend,
            self.first_write_after,
            self.on_new_master,
            self.readonly_errors,
            self.other_errors
        )
    }
}

/// A master demoted under an open connection (see the module docs): two plain servers
/// `x` and `y` and a [`FakeSentinel`] naming `x`; the backend connects through it and one
/// client writes. Then `x` becomes a replica of `y` (`REPLICAOF`, which leaves client
/// connections open, so writes to `x` get `READONLY`) and the sentinel names `y`. Writes
/// continue, paced 20 ms, until one succeeds (at most 5 s); it must be readable on `y`.
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
pub async fn follow_demoted_master<F>(connect: F) -> Result<DemotionReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let x = RedisServer::spawn().await?;
    let y = RedisServer::spawn().await?;
    let sentinel = FakeSentinel::start(SENTINEL_MASTER_NAME, x.addr())
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("fake sentinel: {e}")))?;
    let config = ConnectionConfig::default()
        .with_host("127.0.0.1")
        .with_port(sentinel.addr().port())
        .with_socket_timeout(Duration::from_millis(300))
        .with_socket_connect_timeout(Duration::from_millis(300))
        .with_sentinel(
            resilience_core::SentinelConfig::default()
                .with_master_name(SENTINEL_MASTER_NAME.to_owned())
                .with_nodes(vec![("127.0.0.1".to_owned(), sentinel.addr().port())]),
        );
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let client = ResilientClient::builder("demotion", backend).build()?;
    client
        .set("demotion:before", "1", SetOptions::default())
        .await
        .map_err(|e| ScenarioFailure::Setup(format!("first write: {e}")))?;

    let admin = |addr: SocketAddr, args: Vec<String>| async move {
        let run = async {
            let mut conn = RespConnection::connect(addr).await?;
            conn.command(&args).await
        };
        match tokio::time::timeout(Duration::from_secs(2), run).await {
            Ok(Ok(RespReply::Error(e))) => Err(ScenarioFailure::Setup(format!(
                "{addr} {}: {e}",
                args.join(" ")
            ))),
            Ok(Err(e)) => Err(ScenarioFailure::Setup(format!(
                "{addr} {}: {e}",
                args.join(" ")
            ))),
            Ok(Ok(reply)) => Ok(reply),
            Err(_) => Err(ScenarioFailure::Setup(format!("{addr}: no answer"))),
        }
    };
    sentinel.set_master(y.addr());
    admin(
        x.addr(),
        vec!["REPLICAOF".into(), "127.0.0.1".into(), y.port().to_string()],
    )
    .await?;
    let demoted = Instant::now();

    let mut readonly_errors = 0;
    let mut other_errors = Vec::new();
    let mut first_write_after = None;
    let mut index = 0u64;
    while demoted.elapsed() < Duration::from_secs(5) {
        match client
            .set(
                format!("demotion:{index}"),
                index.to_string(),
                SetOptions::default(),
            )
            .await
        {
            Ok(_) => {
                first_write_after = Some(demoted.elapsed());
                break;
            }
            Err(e) if e.backend_error().and_then(|b| b.code()) == Some("READONLY") => {
                readonly_errors += 1;
            }
            Err(e) => other_errors.push(
                e.kind()
                    .map_or_else(|| "CircuitOpen".to_owned(), |k| format!("{k:?}")),
            ),
        }
        index += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let on_new_master = first_write_after.is_some()
        && admin(y.addr(), vec!["GET".into(), format!("demotion:{index}")]).await?
            == RespReply::Bulk(Some(index.to_string().into_bytes()));
    Ok(DemotionReport {
        backend: backend_name,
        readonly_errors,
        other_errors,
        first_write_after,
        on_new_master,
    })
}
