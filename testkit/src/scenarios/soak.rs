//! The chaos soak: concurrent prioritized writers against a real `redis-server` while a
//! fault loop kills and restarts it and switches the network between pass, blackhole,
//! reset and latency; at the end every acknowledged write must be there, none applied
//! twice.
//!
//! The run, every wait bounded by a deadline:
//!
//! 1. A server with `appendfsync always` (what Redis acknowledged survives a SIGKILL) and a
//!    [`FaultProxy`](crate::proxy::FaultProxy) in front of it. The backend connects *through the proxy*, so
//!    blackholes and resets hit the client's connections; the server is killed and
//!    restarted behind the proxy, which opens a new upstream connection per client
//!    connection. The client keeps the default breaker (3 failures, only the health probe
//!    closes it) with a [`Load::health_check_interval`](super::Load::health_check_interval) probe.
//! 2. [`Load::writers`](super::Load::writers) tasks loop at [`Load::pace`](super::Load::pace): one
//!    [`submit`](ResilientClient::submit), alternating `High` and `Normal`, of a unique value
//!    `w{writer}-{seq}` to one of [`Load::keys_per_writer`](super::Load::keys_per_writer) keys, in three shapes
//!    (see [Writes](#writes)); then one `INCRBY` of a shared counter with
//!    [`execute`](ResilientClient::execute). [`Load::counters`](super::Load::counters) more tasks only
//!    run `INCRBY`.
//! 3. Meanwhile the fault loop, driven by a seeded RNG (the seed is printed; rerun with
//!    `SOAK_SEED`), pauses, then injects one fault, [`SoakOptions::max_faults`] at most,
//!    until [`SoakOptions::duration`] has passed. Faults come in shuffled rounds of the four
//!    kinds, so every kind is injected once four faults have been:
//!    - **kill**: SIGKILL, down for a moment, restart on the same port (AOF replayed);
//!    - **blackhole**: the proxy forwards nothing for a while, then passes again;
//!    - **reset**: every open connection is reset, and sometimes every new one too for a
//!      moment;
//!    - **latency**: every chunk is delayed (sometimes beyond the socket timeout) for a
//!      while.
//! 4. The network heals, the server is up; the writers stop; every ticket is awaited
//!    until [`SoakOptions::drain_deadline`] (a ticket still pending then is a hang).
//! 5. The data is read back straight from the server (not through the proxy, nor the
//!    backend under test) with a raw RESP connection, and checked.
//!
//! # Writes
//!
//! Each write carries a value no other write has. By `seq / 2 % 4`:
//!
//! - `0`, `1`: a plain `SET key value`: idempotent, so it is retried after a timeout and
//!   replayed in shared pipelined batches;
//! - `2`: `MULTI SET key value; HSET soak:w{i}:seen {seq} 1 EXEC`: idempotent, and leaves
//!   a per-write mark, so an acknowledged write is checked even once its key has been
//!   overwritten;
//! - `3`: `MULTI SET key value; HINCRBY soak:w{i}:applied {seq} 1 EXEC`: *not*
//!   idempotent, so the client must apply it at most once (no retry after a timeout; a
//!   replay that times out is dead-lettered, not repeated). The field counts how many
//!   times it was applied.
//!
//! # Acknowledged, lost and duplicated
//!
//! A write is **acknowledged** when `submit` returned `Stored`, or `Queued` and its ticket
//! resolved `Completed`. `Failed` (a non-idempotent write that timed out, `QueueFull`, …),
//! `Dropped`, dead-lettered and unresolved writes are not acknowledged; they are counted
//! and printed by cause, never hidden.
//!
//! **Lost** counts broken promises about acknowledged data:
//! - a key whose last issued write was acknowledged and that holds another value;
//! - an acknowledged shape-`2` write whose mark is missing;
//! - an acknowledged shape-`3` write whose count is 0;
//! - the `INCRBY` counter below the number of `INCRBY` calls that returned a value.
//!
//! **Duplicated** counts non-idempotent effects applied more than once (an idempotent
//! `SET` applied twice by a retry is by design, and indistinguishable from once):
//! - a shape-`3` write whose count is above 1, whatever its outcome;
//! - the `INCRBY` counter above (calls that returned a value) + (calls that failed with
//!   `Timeout`, which may or may not have run); every other error means it never ran.
//!
//! **Phantom** writes are the remaining broken promise: a shape-`3` write the client
//! reported as never applied (`Failed` with an error other than `Timeout`, or `Dropped`)
//! whose count is not 0.
//!
//! # Reading a run
//!
//! The line also gives the recovery queue's largest depth and its depth when the faults
//! ended. Once a key has queued writes, every new write to it queues behind them (per-key
//! order), and the replay worker applies each atomic batch in a round trip of its own, so
//! with faults every second or so most writes go through the queue, and the queue drains
//! only while the load leaves the replay room (hence the default
//! [`Load::pace`](super::Load::pace)). Under `appendfsync always` each such round trip costs an fsync:
//! measured on a busy 2-core machine over redis-rs, 2,000 queued single `SET`s replay in
//! about 45 ms (shared pipelined batches), 2,000 queued two-command transactions in about
//! 6 s (about 300 a second, one fsync each; 190 ms without `appendfsync always`). [`SoakReport::timeline`] samples breaker, queue and progress
//! every 50 ms for reading a run that broke a promise.
//!
//! # On a cluster
//!
//! [`chaos_soak_cluster`] runs the same load, faults and checks against a Redis Cluster
//! (3 masters and 3 replicas, every node with `appendfsync always`) with a fault proxy in
//! front of every node, for the client only (its `cluster_address_map` points the
//! announced addresses at the proxies, so replication and gossip never cross a proxy). A
//! kill hits the master of a random slot and restarts it on its AOF; the node timeout
//! (5 s) outlasts the longest kill, so the master comes back as itself and no replica
//! takes over (a failover may drop what a master acknowledged last: Redis replicates
//! asynchronously; the cluster chaos scenario covers failovers). The network faults hit
//! every proxy at once. A writer's keys share a hash tag, so its transactions stay in one
//! slot, and the data is read back from each key's master.
//!
//! # Duration
//!
//! [`SoakOptions::from_env`] reads `SOAK_SECS` (default [`SoakOptions::DEFAULT_SECS`], so
//! both backends' soaks fit in a minute of CI) and `SOAK_SEED`. A longer run:
//!
//! ```text
//! SOAK_SECS=600 cargo test -p backend-redis-rs --test scenarios soak:: -- --nocapture
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use resilience_core::{
    Command, ConnectionConfig, DeadLetterReason, Error, Priority, ResilientClient, SetOptions,
    StoreOutcome, Ticket, TicketOutcome,
};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::kill::{
    COUNTER_KEY, Fate, IncrCounts, Progress, WriterLog, counter, incr_once, wait_until,
};
use super::{BackendFuture, Load, ScenarioFailure};
use crate::proxy::ProxyMode;
use crate::server::RespReply;

pub(super) mod deployment;

use deployment::{Deployment, Reader};

// A writer's keys share one hash tag, so its transactions stay in one slot of a cluster.

fn string_key(writer: usize, slot: usize) -> String {
    format!("soak:{{w{writer}}}:k{slot}")
}

fn seen_key(writer: usize) -> String {
    format!("soak:{{w{writer}}}:seen")
}

fn applied_key(writer: usize) -> String {
    format!("soak:{{w{writer}}}:applied")
}

/// Knobs of [`chaos_soak`]. The defaults are a load a 2-core machine sustains while
/// faults come every second or so.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// How long load and faults run (default [`SoakOptions::DEFAULT_SECS`] seconds). Setup,
    /// draining and checking come on top (a few seconds).
    pub duration: Duration,
    /// The fault loop's RNG seed (default: from the clock). Printed, so a run can be
    /// repeated with `SOAK_SEED`.
    pub seed: u64,
    /// Most faults injected (default 10,000: in practice the duration bounds the run).
    pub max_faults: usize,
    /// The load: 6 writers 40 ms apart over 5 keys each (leaving the replay room to catch up between faults: once a key has queued writes, every new write to it queues too), no `INCRBY`-only tasks (with `appendfsync always` they would compete with the replay for fsyncs), 250 ms timeouts and health checks.
    pub load: Load,
    /// Pause between two faults, drawn from this range (default 300 ms to 900 ms).
    pub pause: (Duration, Duration),
    /// How long a fault lasts (a kill's down time, a blackhole, a latency spell), drawn
    /// from this range (default 100 ms to 1 s).
    pub fault_length: (Duration, Duration),
    /// How long queued writes may take to resolve once the faults stopped (default 30 s;
    /// a ticket pending after that is reported as a hang).
    pub drain_deadline: Duration,
}

impl SoakOptions {
    /// The default duration in seconds: two backends' soaks plus setup stay within 60 s.
    pub const DEFAULT_SECS: u64 = 20;

    /// The defaults, with `SOAK_SECS` (whole or fractional seconds) and `SOAK_SEED` (a
    /// `u64`) from the environment when set. A value that does not parse is an error, not
    /// silently the default.
    pub fn from_env() -> Result<SoakOptions, ScenarioFailure> {
        SoakOptions::default().with_settings(
            std::env::var("SOAK_SECS").ok().as_deref(),
            std::env::var("SOAK_SEED").ok().as_deref(),
        )
    }

    /// These options with `secs` (whole or fractional seconds) as the duration and `seed`
    /// as the seed, each when given: what [`from_env`](Self::from_env) applies.
    pub fn with_settings(
        mut self,
        secs: Option<&str>,
        seed: Option<&str>,
    ) -> Result<SoakOptions, ScenarioFailure> {
        if let Some(secs) = secs {
            let parsed: f64 = secs.trim().parse().map_err(|_| {
                ScenarioFailure::Setup(format!("SOAK_SECS={secs:?} is not a number"))
            })?;
            self.duration = Duration::try_from_secs_f64(parsed).map_err(|_| {
                ScenarioFailure::Setup(format!("SOAK_SECS={secs:?} is not a duration"))
            })?;
        }
        if let Some(seed) = seed {
            self.seed = seed
                .trim()
                .parse()
                .map_err(|_| ScenarioFailure::Setup(format!("SOAK_SEED={seed:?} is not a u64")))?;
        }
        Ok(self)
    }
}

impl Default for SoakOptions {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        SoakOptions {
            load: Load {
                writers: 6,
                pace: Duration::from_millis(40),
                counters: 0,
                keys_per_writer: 5,
                socket_timeout: Duration::from_millis(250),
                health_check_interval: Duration::from_millis(250),
            },
            duration: Duration::from_secs(Self::DEFAULT_SECS),
            seed,
            max_faults: 10_000,
            pause: (Duration::from_millis(300), Duration::from_millis(900)),
            fault_length: (Duration::from_millis(100), Duration::from_secs(1)),
            drain_deadline: Duration::from_secs(30),
        }
    }
}

/// The kinds of fault the loop injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL, down for a moment, restart on the same port.
    Kill,
    /// The proxy forwards nothing for a while.
    Blackhole,
    /// Every open connection is reset (and sometimes every new one, for a moment).
    Reset,
    /// Every chunk is delayed for a while.
    Latency,
}

impl FaultKind {
    /// A lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Reset => "reset",
            FaultKind::Latency => "latency",
        }
    }

    const ALL: [FaultKind; 4] = [
        FaultKind::Kill,
        FaultKind::Blackhole,
        FaultKind::Reset,
        FaultKind::Latency,
    ];
}

/// How many faults of each kind a run injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Kill and restart.
    pub kill: u64,
    /// Blackhole, then pass.
    pub blackhole: u64,
    /// Reset every connection.
    pub reset: u64,
    /// Latency, then pass.
    pub latency: u64,
}

impl FaultCounts {
    /// All faults.
    pub fn total(&self) -> u64 {
        self.kill + self.blackhole + self.reset + self.latency
    }

    fn add(&mut self, kind: FaultKind) {
        match kind {
            FaultKind::Kill => self.kill += 1,
            FaultKind::Blackhole => self.blackhole += 1,
            FaultKind::Reset => self.reset += 1,
            FaultKind::Latency => self.latency += 1,
        }
    }
}

/// What [`chaos_soak`] measured. `Display` prints the one summary line.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// The backend's name.
    pub backend: &'static str,
    /// What ran under the soak: `"server"` or `"cluster"`.
    pub deployment: &'static str,
    /// The fault loop's seed.
    pub seed: u64,
    /// How long load and faults ran.
    pub duration: Duration,
    /// Faults injected.
    pub faults: FaultCounts,
    /// Writes submitted.
    pub issued: u64,
    /// Writes acknowledged: stored at once, or queued and completed.
    pub acknowledged: u64,
    /// Of those, stored at once.
    pub stored: u64,
    /// Of those, queued and then completed.
    pub completed: u64,
    /// Queued `High` writes.
    pub queued_high: u64,
    /// Queued `Normal` writes.
    pub queued_normal: u64,
    /// Acknowledged data missing or stale (see the [module docs](self)).
    pub lost: u64,
    /// Non-idempotent effects applied more than once (see the [module docs](self)).
    pub duplicated: u64,
    /// Writes reported as never applied that were applied.
    pub phantom: u64,
    /// Writes that failed at once, by error kind (`timeout`, `queue_full`, …).
    pub failed: BTreeMap<String, u64>,
    /// Dead-lettered writes, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// `Low` writes dropped (never expected: no write is `Low`).
    pub dropped: u64,
    /// Queued writes whose ticket had not resolved by the drain deadline: a hang.
    pub unresolved: u64,
    /// Keys, marks and counts read back.
    pub checked: u64,
    /// The first writes that were not acknowledged (failed, dead-lettered, unresolved,
    /// dropped), with their error, one line each (at most 20).
    pub unacknowledged: Vec<String>,
    /// The first broken promises found, one sentence each (at most 20).
    pub problems: Vec<String>,
    /// `INCRBY` accounting.
    pub incr: IncrCounts,
    /// Retries the client made inline (idempotent writes after a timeout).
    pub retries: u64,
    /// The recovery queue's largest depth seen (sampled every 50 ms).
    pub queue_max: usize,
    /// The recovery queue's depth when the faults ended.
    pub queue_at_end: usize,
    /// The run sampled every 50 ms: time since the load began, breaker state, queue depth,
    /// writes stored at once, INCRBY calls that succeeded and the last fault begun (for
    /// reading a failed run).
    pub timeline: Vec<String>,
    /// From the end of the faults until every ticket resolved.
    pub drained_in: Duration,
    /// Wall time of the whole scenario.
    pub elapsed: Duration,
}

impl SoakReport {
    /// Prints the report (with the unacknowledged writes, the broken checks and, when a
    /// promise broke, the timeline) and panics, like `assert!`, with every broken promise
    /// (see [`violations`](Self::violations)): what a backend's test calls on the report.
    pub fn print_and_assert(&self) {
        println!("{self}");
        for write in &self.unacknowledged {
            println!("  not acknowledged: {write}");
        }
        for problem in &self.problems {
            println!("  broken: {problem}");
        }
        let violations = self.violations();
        if !violations.is_empty() {
            for sample in &self.timeline {
                println!("  {sample}");
            }
        }
        assert!(violations.is_empty(), "{violations:#?}");
    }

    /// The promises this run broke, one sentence each; empty when all held.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.lost != 0 {
            v.push(format!("{} acknowledged writes lost", self.lost));
        }
        if self.duplicated != 0 {
            v.push(format!("{} writes applied twice", self.duplicated));
        }
        if self.phantom != 0 {
            v.push(format!(
                "{} writes reported as never applied were applied",
                self.phantom
            ));
        }
        if self.unresolved != 0 {
            v.push(format!(
                "{} queued writes unresolved after the drain deadline",
                self.unresolved
            ));
        }
        if self.dropped != 0 {
            v.push(format!("{} writes dropped", self.dropped));
        }
        if self.acknowledged == 0 {
            v.push("no write was acknowledged".to_owned());
        }
        if self.faults.total() >= 4
            && (self.faults.kill == 0
                || self.faults.blackhole == 0
                || self.faults.reset == 0
                || self.faults.latency == 0)
        {
            v.push(format!(
                "not every fault kind was injected: {:?}",
                self.faults
            ));
        }
        if self.faults.total() >= 4 && (self.queued_high == 0 || self.queued_normal == 0) {
            v.push(format!(
                "a whole round of faults queued {} High and {} Normal writes; both must be exercised",
                self.queued_high, self.queued_normal
            ));
        }
        if self.faults.total() == 0 {
            v.push("no fault was injected".to_owned());
        }
        if self.incr.counter.is_none() {
            v.push("the INCRBY counter could not be read".to_owned());
        }
        v
    }
}

fn by_cause(map: &BTreeMap<String, u64>) -> String {
    let total: u64 = map.values().sum();
    if map.is_empty() {
        return total.to_string();
    }
    let parts: Vec<String> = map.iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!("{total} ({})", parts.join(" "))
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fc = &self.faults;
        let i = &self.incr;
        write!(
            f,
            "soak backend={} deployment={} seed={} duration={:.1}s faults={} (kill={} blackhole={} reset={} latency={}) \
             issued={} acknowledged={} (stored={} completed={}; queued high={} normal={}) lost={} duplicated={} \
             phantom={} failed={} dead_lettered={} dropped={} unresolved={} checked={} \
             incrby=(ok={} timeout={} counter={}) retries={} queue_max={} queue_at_end={} drained_in={:.1}s total={:.1}s",
            self.backend,
            self.deployment,
            self.seed,
            self.duration.as_secs_f64(),
            fc.total(),
            fc.kill,
            fc.blackhole,
            fc.reset,
            fc.latency,
            self.issued,
            self.acknowledged,
            self.stored,
            self.completed,
            self.queued_high,
            self.queued_normal,
            self.lost,
            self.duplicated,
            self.phantom,
            by_cause(&self.failed),
            by_cause(&self.dead_lettered),
            self.dropped,
            self.unresolved,
            self.checked,
            i.ok,
            i.timeout,
            i.counter
                .map_or_else(|| "unreadable".to_owned(), |c| c.to_string()),
            self.retries,
            self.queue_max,
            self.queue_at_end,
            self.drained_in.as_secs_f64(),
            self.elapsed.as_secs_f64(),
        )
    }
}

/// The shape of a write (see the [module docs](self#writes)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Set,
    Seen,
    Applied,
}

/// One write as issued.
struct SoakWrite {
    writer: usize,
    seq: u64,
    slot: usize,
    shape: Shape,
    priority: Priority,
    value: Bytes,
    fate: Fate,
    /// The error kind (`Failed`) or reason (`DeadLettered`).
    cause: Option<String>,
    /// The full error or reason.
    detail: Option<String>,
    /// Whether the client said it may have been applied although not acknowledged.
    maybe_applied: bool,
}

impl SoakWrite {
    fn acknowledged(&self) -> bool {
        matches!(self.fate, Fate::Stored | Fate::Completed)
    }
}

#[derive(Default)]
struct SoakLog {
    writes: Vec<SoakWrite>,
    tickets: Vec<(usize, Ticket)>,
    incr: WriterLog,
}

/// A short name for a dead letter's reason, for counting.
fn dead_letter_cause(reason: &DeadLetterReason) -> String {
    match reason {
        DeadLetterReason::MaxAttempts { .. } => "max_attempts".to_owned(),
        DeadLetterReason::MaxAge { .. } => "max_age".to_owned(),
        DeadLetterReason::Evicted => "evicted".to_owned(),
        DeadLetterReason::NonRetryable { error } => {
            // "redis timeout: …" -> "non_retryable(redis timeout)".
            let head = error.split(':').next().unwrap_or_default().trim();
            format!("non_retryable({head})")
        }
        DeadLetterReason::Shutdown => "shutdown".to_owned(),
        other => format!("{other}"),
    }
}

fn error_cause(e: &Error) -> (String, bool) {
    match e {
        Error::QueueFull { .. } => ("queue_full".to_owned(), false),
        Error::CircuitOpen { .. } => ("circuit_open".to_owned(), false),
        Error::Timeout(_) => ("timeout".to_owned(), true),
        other => match other.kind() {
            Some(kind) => (kind.as_str().to_owned(), false),
            None => (other.to_string(), false),
        },
    }
}

async fn soak_writer(
    client: ResilientClient,
    index: usize,
    options: SoakOptions,
    progress: Arc<Progress>,
) -> SoakLog {
    let mut log = SoakLog::default();
    let mut tick = tokio::time::interval(options.load.pace);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    while !progress.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let slot = (seq as usize) % options.load.keys_per_writer.max(1);
        let shape = match (seq / 2) % 4 {
            2 => Shape::Seen,
            3 => Shape::Applied,
            _ => Shape::Set,
        };
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
        match shape {
            Shape::Set => {}
            Shape::Seen => batch.push(Command::Hset {
                key: seen_key(index),
                fields: vec![(seq.to_string(), Bytes::from_static(b"1"))],
            }),
            Shape::Applied => batch.push(Command::Hincrby {
                key: applied_key(index),
                field: seq.to_string(),
                delta: 1,
            }),
        }
        let (fate, cause, detail, maybe_applied) = match client.submit(batch, priority).await {
            StoreOutcome::Stored => {
                progress.stored.fetch_add(1, Ordering::Relaxed);
                (Fate::Stored, None, None, false)
            }
            StoreOutcome::Queued(ticket) => {
                log.tickets.push((log.writes.len(), ticket));
                (Fate::Queued, None, None, false)
            }
            StoreOutcome::Failed(e) => {
                let (cause, maybe) = error_cause(&e);
                tracing::info!(writer = index, seq, error = %e, "soak write failed");
                (Fate::Failed, Some(cause), Some(e.to_string()), maybe)
            }
            StoreOutcome::Dropped => (Fate::Dropped, None, None, false),
        };
        log.writes.push(SoakWrite {
            writer: index,
            seq,
            slot,
            shape,
            priority,
            value,
            fate,
            cause,
            detail,
            maybe_applied,
        });
        incr_once(&client, &mut log.incr, &progress).await;
        seq += 1;
    }
    log
}

/// Sleeps a random time from `range`, but not past `end`.
async fn sleep_within(rng: &mut SmallRng, range: (Duration, Duration), end: Option<Instant>) {
    let (lo, hi) = range;
    let d = if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    };
    let until = Instant::now() + d;
    tokio::time::sleep_until(end.map_or(until, |e| until.min(e))).await;
}

/// Injects faults until `end` (at most `max_faults`, then waits for `end`). Leaves the
/// proxies passing and the servers up.
async fn fault_loop(
    deployment: &mut Deployment,
    options: &SoakOptions,
    end: Instant,
    last_fault: &std::sync::Mutex<&'static str>,
) -> Result<FaultCounts, ScenarioFailure> {
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut counts = FaultCounts::default();
    let mut round: Vec<FaultKind> = Vec::new();
    while counts.total() < options.max_faults as u64 {
        sleep_within(&mut rng, options.pause, Some(end)).await;
        if Instant::now() >= end {
            break;
        }
        if round.is_empty() {
            round.extend(FaultKind::ALL);
            round.shuffle(&mut rng);
        }
        let Some(kind) = round.pop() else { break };
        tracing::info!(?kind, "soak fault");
        counts.add(kind);
        let note = |what: &'static str| {
            *last_fault
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = what;
        };
        note(kind.as_str());
        match kind {
            FaultKind::Kill => {
                let (lo, hi) = options.fault_length;
                let down = if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                };
                // In a cluster, the master of a random slot.
                let slot = rng.random_range(0..resilience_core::SLOT_COUNT);
                deployment.kill(slot, down).await?;
            }
            FaultKind::Blackhole => {
                deployment.set_mode(ProxyMode::Blackhole);
                sleep_within(&mut rng, options.fault_length, None).await;
                deployment.set_mode(ProxyMode::Pass);
            }
            FaultKind::Reset => {
                deployment.reset_all();
                if rng.random_bool(0.5) {
                    deployment.set_mode(ProxyMode::Reset);
                    let (lo, hi) = options.fault_length;
                    sleep_within(&mut rng, (lo / 2, hi / 2), None).await;
                    deployment.set_mode(ProxyMode::Pass);
                }
            }
            FaultKind::Latency => {
                // Sometimes below the socket timeout (slow), sometimes beyond (timeouts).
                let per_chunk = rng.random_range(
                    Duration::from_millis(5)
                        ..=options.load.socket_timeout.max(Duration::from_millis(10)),
                );
                deployment.set_mode(ProxyMode::Latency(per_chunk));
                sleep_within(&mut rng, options.fault_length, None).await;
                deployment.set_mode(ProxyMode::Pass);
            }
        }
        note("healed");
    }
    // After the last fault allowed, the load runs on a healthy server until the end.
    tokio::time::sleep_until(end).await;
    *last_fault
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = "ended";
    deployment.heal().await?;
    Ok(counts)
}

/// [`chaos_soak_with`] with [`SoakOptions::from_env`].
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
pub async fn chaos_soak<F>(connect: F) -> Result<SoakReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    chaos_soak_with(SoakOptions::from_env()?, connect).await
}

/// The chaos soak (see the [module docs](self)), for the backend that `connect` builds
/// from a [`ConnectionConfig`] (pointed at the proxy).
///
/// Returns `Err` only when the run could not happen (no `redis-server`, the backend could
/// not connect, load never started, the server could not be restarted, the final read
/// failed); a run that breaks a promise returns a report whose
/// [`violations`](SoakReport::violations) say which.
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
pub async fn chaos_soak_with<F>(
    options: SoakOptions,
    connect: F,
) -> Result<SoakReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let began = Instant::now();
    let deployment = Deployment::single().await?;
    soak(options, deployment, began, connect).await
}

/// [`chaos_soak_cluster_with`] with [`SoakOptions::from_env`].
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
pub async fn chaos_soak_cluster<F>(connect: F) -> Result<SoakReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    chaos_soak_cluster_with(SoakOptions::from_env()?, connect).await
}

/// The chaos soak against a Redis Cluster (3 masters, 3 replicas, `appendfsync always`, a
/// 5 s node timeout so a killed master comes back as the same master), with a fault proxy
/// in front of every node for the client: a kill hits the master of a random slot, the
/// network faults hit every proxy at once, and the data is read back from each key's
/// master. Otherwise as [`chaos_soak_with`].
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
pub async fn chaos_soak_cluster_with<F>(
    options: SoakOptions,
    connect: F,
) -> Result<SoakReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let began = Instant::now();
    let deployment = Deployment::cluster().await?;
    soak(options, deployment, began, connect).await
}

/// The run itself, on either deployment.
async fn soak<F>(
    options: SoakOptions,
    mut deployment: Deployment,
    began: Instant,
    connect: F,
) -> Result<SoakReport, ScenarioFailure>
where
    F: Fn(ConnectionConfig) -> BackendFuture,
{
    let config = deployment
        .connection_config()
        .with_socket_timeout(options.load.socket_timeout)
        .with_socket_connect_timeout(options.load.socket_timeout);
    let backend = connect(config).await.map_err(ScenarioFailure::Connect)?;
    let backend_name = backend.name();
    let client = ResilientClient::builder_arc("soak", backend)
        .breaker(
            resilience_core::CircuitBreakerConfig::default()
                .with_health_check_interval(options.load.health_check_interval),
        )
        .queue(resilience_core::QueueConfig::default().with_capacity(1_000_000))
        // Room for everything the paced load can queue during a fault: QueueFull would be
        // the load's fault, not the client's.
        .build()?;

    let progress = Arc::new(Progress::default());
    let writers: Vec<JoinHandle<SoakLog>> = (0..options.load.writers)
        .map(|i| {
            tokio::spawn(soak_writer(
                client.clone(),
                i,
                options.clone(),
                Arc::clone(&progress),
            ))
        })
        .collect();
    let counters: Vec<JoinHandle<WriterLog>> = (0..options.load.counters)
        .map(|_| {
            tokio::spawn(counter(
                client.clone(),
                options.load.clone(),
                Arc::clone(&progress),
            ))
        })
        .collect();
    let stop = |progress: &Progress| progress.stop.store(true, Ordering::Relaxed);

    let warm = options.load.writers as u64 * 5;
    let warmed = wait_until(Instant::now() + Duration::from_secs(10), || {
        progress.incr_ok.load(Ordering::Relaxed) >= warm
            && progress.stored.load(Ordering::Relaxed) >= warm
    })
    .await;
    if !warmed {
        stop(&progress);
        return Err(ScenarioFailure::Setup(
            "load did not start against the healthy server within 10 s".to_owned(),
        ));
    }

    let last_fault: Arc<std::sync::Mutex<&'static str>> = Arc::new(std::sync::Mutex::new("-"));
    let sampler = {
        let client = client.clone();
        let progress = Arc::clone(&progress);
        let last_fault = Arc::clone(&last_fault);
        tokio::spawn(async move {
            let began = Instant::now();
            let mut max = 0;
            let mut timeline = Vec::new();
            while !progress.stop.load(Ordering::Relaxed) {
                let stats = client.stats();
                max = max.max(stats.queue.depth);
                let fault = *last_fault
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                timeline.push(format!(
                    "+{:.2}s {:?} depth={} stored={} incr_ok={} fault={fault}",
                    began.elapsed().as_secs_f64(),
                    stats.circuit_state,
                    stats.queue.depth,
                    progress.stored.load(Ordering::Relaxed),
                    progress.incr_ok.load(Ordering::Relaxed),
                ));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (max, timeline)
        })
    };
    let load_began = Instant::now();
    let faults = match fault_loop(
        &mut deployment,
        &options,
        load_began + options.duration,
        &last_fault,
    )
    .await
    {
        Ok(faults) => faults,
        Err(e) => {
            stop(&progress);
            return Err(e);
        }
    };
    let faults_ended = Instant::now();
    let queue_at_end = client.stats().queue.depth;
    let duration = faults_ended.saturating_duration_since(load_began);

    // Stop the load; every submit and INCRBY in flight ends within the socket timeout.
    stop(&progress);
    let join_deadline = Instant::now() + Duration::from_secs(10);
    let mut logs = Vec::with_capacity(writers.len());
    for h in writers {
        match tokio::time::timeout_at(join_deadline, h).await {
            Ok(Ok(log)) => logs.push(log),
            Ok(Err(e)) => return Err(ScenarioFailure::Setup(format!("writer task: {e}"))),
            Err(_) => {
                return Err(ScenarioFailure::Setup(
                    "a writer did not stop within 10 s: a submit hung".to_owned(),
                ));
            }
        }
    }
    let mut incr = IncrCounts::default();
    let mut add_incr = |l: &IncrCounts| {
        incr.ok += l.ok;
        incr.timeout += l.timeout;
        incr.unavailable += l.unavailable;
        incr.circuit_open += l.circuit_open;
        incr.other += l.other;
    };
    for h in counters {
        match tokio::time::timeout_at(join_deadline, h).await {
            Ok(Ok(log)) => add_incr(&log.incr),
            Ok(Err(e)) => return Err(ScenarioFailure::Setup(format!("counter task: {e}"))),
            Err(_) => {
                return Err(ScenarioFailure::Setup(
                    "an INCRBY task did not stop within 10 s: a call hung".to_owned(),
                ));
            }
        }
    }

    // Every queued write resolves, or is reported unresolved at the deadline.
    let mut writes: Vec<SoakWrite> = Vec::new();
    let mut tickets: Vec<(usize, Ticket)> = Vec::new();
    for log in logs {
        let base = writes.len();
        writes.extend(log.writes);
        tickets.extend(log.tickets.into_iter().map(|(i, t)| (base + i, t)));
        add_incr(&log.incr.incr);
    }
    let drain_deadline = Instant::now() + options.drain_deadline;
    for (index, ticket) in tickets {
        let (fate, cause) = match tokio::time::timeout_at(drain_deadline, ticket.wait()).await {
            Ok(TicketOutcome::Completed) => (Fate::Completed, None),
            Ok(TicketOutcome::DeadLettered { reason }) => {
                tracing::warn!(?reason, "queued soak write dead-lettered");
                (
                    Fate::DeadLettered,
                    Some((dead_letter_cause(&reason), reason.to_string())),
                )
            }
            Err(_) => (Fate::Unresolved, None),
        };
        if let Some(w) = writes.get_mut(index) {
            w.fate = fate;
            if let Some((cause, detail)) = cause {
                w.cause = Some(cause);
                w.detail = Some(detail);
            }
            // A dead-lettered write may have reached Redis before it was given up.
            w.maybe_applied = fate != Fate::Completed;
        }
    }
    let drained_in = faults_ended.elapsed();
    let (queue_max, timeline) = tokio::time::timeout(Duration::from_secs(1), sampler)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let queue_max = queue_max.max(queue_at_end);
    let stats = client.stats();

    // Read back straight from the servers.
    let mut reader = deployment.reader().await?;
    let mut report = SoakReport {
        backend: backend_name,
        deployment: deployment.name(),
        seed: options.seed,
        duration,
        faults,
        incr,
        retries: stats.retries,
        queue_max,
        queue_at_end,
        timeline,
        drained_in,
        ..SoakReport::default()
    };
    check(&mut reader, &writes, options.load.writers, &mut report).await?;
    let _ = client.shutdown(Duration::from_millis(100)).await;
    report.elapsed = began.elapsed();
    Ok(report)
}

async fn command(reader: &mut Reader, args: &[&str]) -> Result<RespReply, ScenarioFailure> {
    reader.command(args).await
}

/// A hash read back as field -> value.
async fn hash(reader: &mut Reader, key: &str) -> Result<HashMap<String, Vec<u8>>, ScenarioFailure> {
    let mut map = HashMap::new();
    match command(reader, &["HGETALL", key]).await? {
        RespReply::Array(Some(items)) => {
            let mut it = items.into_iter();
            while let (Some(RespReply::Bulk(Some(f))), Some(RespReply::Bulk(Some(v)))) =
                (it.next(), it.next())
            {
                map.insert(String::from_utf8_lossy(&f).into_owned(), v);
            }
        }
        other => {
            return Err(ScenarioFailure::Setup(format!(
                "HGETALL {key} answered {other:?}"
            )));
        }
    }
    Ok(map)
}

/// Counts the run's writes and checks what the server holds against them.
async fn check(
    reader: &mut Reader,
    writes: &[SoakWrite],
    writers: usize,
    report: &mut SoakReport,
) -> Result<(), ScenarioFailure> {
    let problem = |report: &mut SoakReport, text: String| {
        if report.problems.len() < 20 {
            report.problems.push(text);
        }
    };
    let mut by_value: HashMap<&[u8], &SoakWrite> = HashMap::new();
    let mut last: BTreeMap<(usize, usize), &SoakWrite> = BTreeMap::new();
    for w in writes {
        report.issued += 1;
        by_value.insert(&w.value, w);
        last.insert((w.writer, w.slot), w);
        let queued = matches!(
            w.fate,
            Fate::Completed | Fate::DeadLettered | Fate::Unresolved | Fate::Queued
        );
        if queued {
            match w.priority {
                Priority::High => report.queued_high += 1,
                _ => report.queued_normal += 1,
            }
        }
        if !w.acknowledged() && report.unacknowledged.len() < 20 {
            report.unacknowledged.push(format!(
                "w{}-{} {:?} {:?} {:?}: {}",
                w.writer,
                w.seq,
                w.shape,
                w.priority,
                w.fate,
                w.detail.as_deref().unwrap_or("-")
            ));
        }
        match w.fate {
            Fate::Stored => report.stored += 1,
            Fate::Completed => report.completed += 1,
            Fate::Failed => {
                *report
                    .failed
                    .entry(w.cause.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            Fate::DeadLettered => {
                *report
                    .dead_lettered
                    .entry(w.cause.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            Fate::Dropped => report.dropped += 1,
            Fate::Unresolved | Fate::Queued => report.unresolved += 1,
        }
    }
    report.acknowledged = report.stored + report.completed;

    // Each key holds the value of its last write, when that write was acknowledged.
    for ((writer, slot), w) in &last {
        if !w.acknowledged() {
            continue;
        }
        let key = string_key(*writer, *slot);
        report.checked += 1;
        let got = command(reader, &["GET", &key]).await?;
        if got != RespReply::Bulk(Some(w.value.to_vec())) {
            report.lost += 1;
            let holder = match &got {
                RespReply::Bulk(Some(v)) => by_value.get(v.as_slice()).map(|h| {
                    format!(
                        " (written by seq {} {:?} {:?}, fate {:?} {:?})",
                        h.seq, h.shape, h.priority, h.fate, h.cause
                    )
                }),
                _ => None,
            };
            problem(
                report,
                format!(
                    "{key}: want {} (seq {} {:?} {:?} {:?}), got {got:?}{}",
                    String::from_utf8_lossy(&w.value),
                    w.seq,
                    w.shape,
                    w.priority,
                    w.fate,
                    holder.unwrap_or_default()
                ),
            );
        }
    }

    // Per-write marks and application counts.
    for writer in 0..writers {
        let seen = hash(reader, &seen_key(writer)).await?;
        let applied = hash(reader, &applied_key(writer)).await?;
        for w in writes.iter().filter(|w| w.writer == writer) {
            let field = w.seq.to_string();
            match w.shape {
                Shape::Set => {}
                Shape::Seen => {
                    if w.acknowledged() {
                        report.checked += 1;
                        if !seen.contains_key(&field) {
                            report.lost += 1;
                            problem(
                                report,
                                format!(
                                    "w{writer}-{} acknowledged ({:?}) but its mark is missing",
                                    w.seq, w.fate
                                ),
                            );
                        }
                    }
                }
                Shape::Applied => {
                    report.checked += 1;
                    let n: i64 = applied
                        .get(&field)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if n > 1 {
                        report.duplicated += 1;
                        problem(
                            report,
                            format!(
                                "w{writer}-{} applied {n} times ({:?} {:?})",
                                w.seq, w.fate, w.cause
                            ),
                        );
                    } else if n == 0 && w.acknowledged() {
                        report.lost += 1;
                        problem(
                            report,
                            format!(
                                "w{writer}-{} acknowledged ({:?}) but never applied",
                                w.seq, w.fate
                            ),
                        );
                    } else if n == 1 && !w.acknowledged() && !w.maybe_applied {
                        report.phantom += 1;
                        problem(
                            report,
                            format!(
                                "w{writer}-{} reported not applied ({:?} {:?}) but applied",
                                w.seq, w.fate, w.cause
                            ),
                        );
                    }
                }
            }
        }
    }

    // The INCRBY counter: every call that returned a value applied once, timeouts maybe.
    let counter = match command(reader, &["GET", COUNTER_KEY]).await? {
        RespReply::Bulk(Some(v)) => std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()),
        RespReply::Bulk(None) => Some(0),
        _ => None,
    };
    report.incr.counter = counter;
    if let Some(c) = counter {
        report.checked += 1;
        let ok = report.incr.ok as i64;
        let most = ok + report.incr.timeout as i64;
        if c < ok {
            report.lost += (ok - c) as u64;
            problem(
                report,
                format!("INCRBY counter {c} below the {ok} acknowledged"),
            );
        }
        if c > most {
            report.duplicated += (c - most) as u64;
            problem(
                report,
                format!("INCRBY counter {c} above {most} (acknowledged + timed out)"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> SoakReport {
        SoakReport {
            backend: "test",
            seed: 7,
            duration: Duration::from_secs(20),
            faults: FaultCounts {
                kill: 2,
                blackhole: 2,
                reset: 1,
                latency: 1,
            },
            issued: 100,
            acknowledged: 90,
            stored: 80,
            completed: 10,
            queued_high: 4,
            queued_normal: 6,
            incr: IncrCounts {
                ok: 5,
                counter: Some(5),
                ..IncrCounts::default()
            },
            ..SoakReport::default()
        }
    }

    #[test]
    fn the_summary_is_one_line_with_the_numbers_the_issue_asks_for() {
        let line = good().to_string();
        assert!(!line.contains('\n'), "{line}");
        for part in [
            "soak backend=test",
            "seed=7",
            "duration=20.0s",
            "faults=6 (kill=2 blackhole=2 reset=1 latency=1)",
            "acknowledged=90",
            "lost=0",
            "duplicated=0",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
        assert!(good().violations().is_empty(), "{:?}", good().violations());
    }

    #[test]
    fn each_broken_promise_is_reported() {
        type Breaker = (&'static str, fn(&mut SoakReport));
        let breakers: Vec<Breaker> = vec![
            ("lost", |r| r.lost = 1),
            ("duplicated", |r| r.duplicated = 1),
            ("phantom", |r| r.phantom = 1),
            ("hang", |r| r.unresolved = 1),
            ("dropped", |r| r.dropped = 1),
            ("nothing acknowledged", |r| r.acknowledged = 0),
            ("a kind never injected", |r| r.faults.reset = 0),
            ("counter unreadable", |r| r.incr.counter = None),
            ("no High write queued", |r| r.queued_high = 0),
        ];
        for (name, broken) in breakers {
            let mut r = good();
            broken(&mut r);
            assert_eq!(r.violations().len(), 1, "{name}: {:?}", r.violations());
        }
    }

    #[test]
    fn failures_are_printed_by_cause() {
        let mut r = good();
        r.failed.insert("timeout".to_owned(), 3);
        r.failed.insert("queue_full".to_owned(), 1);
        assert!(
            r.to_string().contains("failed=4 (queue_full=1 timeout=3)"),
            "{r}"
        );
    }

    #[test]
    fn fault_rounds_cover_every_kind() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut round: Vec<FaultKind> = FaultKind::ALL.to_vec();
        round.shuffle(&mut rng);
        let mut counts = FaultCounts::default();
        for k in round {
            counts.add(k);
        }
        assert_eq!(
            counts,
            FaultCounts {
                kill: 1,
                blackhole: 1,
                reset: 1,
                latency: 1
            }
        );
    }

    #[test]
    fn soak_secs_and_seed_are_parsed_or_refused() {
        let o = SoakOptions::default()
            .with_settings(Some(" 2.5 "), Some("42"))
            .expect("valid settings");
        assert_eq!((o.duration, o.seed), (Duration::from_millis(2500), 42));
        let kept = SoakOptions::default()
            .with_settings(None, None)
            .expect("nothing to parse");
        assert_eq!(
            kept.duration,
            Duration::from_secs(SoakOptions::DEFAULT_SECS)
        );
        for (secs, seed) in [(Some("abc"), None), (Some("-1"), None), (None, Some("x"))] {
            assert!(
                SoakOptions::default().with_settings(secs, seed).is_err(),
                "{secs:?} {seed:?} accepted"
            );
        }
    }
}
