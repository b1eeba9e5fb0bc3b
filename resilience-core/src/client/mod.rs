//! [`ResilientClient`]: the one handle applications hold.
//!
//! Its guide is in the docs of its main type.

mod builder;
#[cfg(feature = "cache")]
mod cached;
mod call;
mod commands;
mod exactly_once;
pub use exactly_once::{DEFAULT_RECORD_TTL, ExactlyOnceConfig, Once, WriteId};
#[cfg(feature = "durable")]
mod journaled;
#[cfg(feature = "durable")]
pub use journaled::JournaledBuilder;
mod liveness;
pub use liveness::LivenessConfig;
mod pipeline;
mod prioritized;
mod replay;
mod script;
mod state;
mod striped;
mod work;

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

pub use builder::ResilientClientBuilder;
use call::record_outcome;
pub use pipeline::Pipeline;
pub use prioritized::Submitted;
pub use script::{Script, script_sha1};
pub(crate) use state::ClientInner;
use state::Tasks;
pub use state::{ResilientClient, StoreFuture};

use crate::breaker::{CircuitBreaker, CircuitState, Rejected};
use crate::observe::CallStart;
use crate::queue::QueueStats;
use crate::retry::{RetryError, RetryPolicy, retry_with};
use crate::{BackendError, Command, DeadLetterReason, Error, KvBackend, Value};

/// A snapshot of a client's state and counters.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClientStats {
    /// The client's name.
    pub name: String,
    /// The backend's name.
    pub backend: &'static str,
    /// The breaker's state.
    pub circuit_state: CircuitState,
    /// Calls that reached the backend.
    pub calls: u64,
    /// Calls that reached the backend and failed.
    pub failures: u64,
    /// Calls refused by the open circuit.
    pub rejected: u64,
    /// Retries made (inline, by `Critical` writes and `execute_with_retry`).
    pub retries: u64,
    /// Prioritized writes stored at once.
    pub stored: u64,
    /// Prioritized writes queued.
    pub queued: u64,
    /// `Low` writes dropped.
    pub dropped: u64,
    /// Prioritized writes that failed for good at once.
    pub failed: u64,
    /// The recovery queue.
    pub queue: QueueStats,
}

/// What [`ResilientClient::shutdown`] managed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether the recovery queue was empty before the deadline.
    pub drained: bool,
    /// Queued writes still waiting at the deadline, now dead-lettered with
    /// [`DeadLetterReason::Shutdown`] (their tickets say so).
    pub abandoned: usize,
}

impl ResilientClient {
    /// Starts building a client named `client_name` (used in metrics, logs and errors) over
    /// `backend`. Defaults: 3 failures open the breaker for 300 s, retries
    /// 3 times from 1 s doubling.
    pub fn builder(
        client_name: impl Into<String>,
        backend: impl KvBackend,
    ) -> ResilientClientBuilder {
        ResilientClientBuilder::new(client_name.into(), Arc::new(backend))
    }

    /// A client named `client_name` over `backend` with every part at its default (the
    /// table on [`ResilientClientBuilder`]). Infallible: the defaults are valid settings.
    pub fn new(client_name: impl Into<String>, backend: impl KvBackend) -> ResilientClient {
        ResilientClientBuilder::new(client_name.into(), Arc::new(backend)).assemble_defaults()
    }

    /// Like [`builder`](Self::builder), for a backend already behind an `Arc`.
    pub fn builder_arc(
        client_name: impl Into<String>,
        backend: Arc<dyn KvBackend>,
    ) -> ResilientClientBuilder {
        ResilientClientBuilder::new(client_name.into(), backend)
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The backend's name (`"redis-rs"`, `"fred"`, `"memory"`).
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// The backend, for callers that need to bypass the resilience layer (tests, tooling).
    pub fn backend(&self) -> &Arc<dyn KvBackend> {
        &self.inner.backend
    }

    /// The circuit breaker's current state.
    pub fn circuit_state(&self) -> CircuitState {
        self.inner.breaker.state()
    }

    /// The circuit breaker, to force it open, disable it, or listen to transitions.
    pub fn circuit_breaker(&self) -> &Arc<CircuitBreaker> {
        &self.inner.breaker
    }

    /// Whether `get` and `hgetall` may be answered by a client-side cache: one was
    /// configured ([`ResilientClientBuilder::client_cache`]) and the backend tracks keys.
    /// Always `false` without the crate's `cache` feature. A caller choosing between one
    /// `MGET` and several cached `GET`s asks this.
    pub fn has_read_cache(&self) -> bool {
        #[cfg(feature = "cache")]
        {
            self.inner.cache.is_some()
        }
        #[cfg(not(feature = "cache"))]
        {
            false
        }
    }

    /// The default retry policy (used by `Critical` writes).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry_policy
    }

    /// Adds a listener told about every dead-lettered write.
    pub fn on_dead_letter(
        &self,
        listener: impl Fn(&crate::queue::DeadLetter) + Send + Sync + 'static,
    ) {
        self.inner.queue.on_dead_letter(Arc::new(listener));
    }

    /// A snapshot of counters, breaker state and queue depth.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        let queue = self.inner.queue.stats();
        ClientStats {
            name: self.inner.name.to_string(),
            backend: self.inner.backend.name(),
            circuit_state: self.inner.breaker.state(),
            calls: c.calls.get(),
            failures: c.failures.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            stored: c.stored.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            queue,
        }
    }

    /// Feature `durable`: the journal's counters (recovered, corrupt, pending, …), or
    /// `None` when the client has no journal.
    #[cfg(feature = "durable")]
    pub fn journal_stats(&self) -> Option<crate::journal::JournalStats> {
        self.inner.journal.as_ref().map(|j| j.stats())
    }

    /// Feature `durable`: the journal, when the client has one (to [`flush`] it or read its
    /// path).
    ///
    /// [`flush`]: crate::journal::Journal::flush
    #[cfg(feature = "durable")]
    pub fn journal(&self) -> Option<&Arc<crate::journal::Journal>> {
        self.inner.journal.as_ref()
    }

    /// Feature `durable`: how many queued writes were read back from the journal when this
    /// client started (they have no ticket owner; see [`crate::journal`]).
    #[cfg(feature = "durable")]
    pub fn recovered(&self) -> u64 {
        self.journal_stats().map_or(0, |s| s.recovered)
    }

    /// Runs one command through the breaker, without retries. The reply has the canonical
    /// shape documented on the [`Command`] variant.
    ///
    /// # Errors
    ///
    /// Whatever the call ended with: `CircuitOpen` when the breaker refused it (nothing was
    /// sent), otherwise the backend's classified failure (`Unavailable`: not sent; `Timeout`:
    /// it may have run; `Busy`, `Server`, `Auth`, `InvalidInput`), or `UnexpectedReply` for a
    /// reply of the wrong shape. [`Error::class`] says what each means.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes abandons the call: a command already written
    /// may still run on the server (as after a `Timeout`), nothing is resent, and the breaker
    /// records the call as neither a success nor a failure.
    #[inline(always)]
    pub fn execute(&self, cmd: Command) -> impl Future<Output = Result<Value, Error>> + Send + '_ {
        self.inner.call(cmd)
    }

    /// Stops taking prioritized writes (later ones are [`StoreOutcome::Failed`] with
    /// [`Error::Shutdown`]), replays what it can from the recovery queue until `deadline`
    /// passes, then dead-letters what is left, so every ticket resolves. Plain calls keep
    /// working.
    ///
    /// [`StoreOutcome::Failed`]: crate::StoreOutcome::Failed
    ///
    /// # Errors
    ///
    /// None: the report says whether the queue drained and how many writes were abandoned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before the deadline leaves the client closed to new prioritized
    /// writes and its queued writes where they are: the replay worker keeps draining them, and
    /// none is dead-lettered.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let inner = &self.inner;
        inner.queue.close();
        let drained = if inner.queue.is_empty() {
            true
        } else {
            inner.ensure_tasks();
            inner.queue.wait_empty(Instant::now() + deadline).await
        };
        let abandoned = inner.queue.dead_letter_all(DeadLetterReason::Shutdown);
        if let Some(tasks) = inner.tasks.get() {
            tasks.worker.abort();
            tasks.health.abort();
        }
        tracing::info!(client = %inner.name, drained, abandoned, "client shut down");
        ShutdownReport { drained, abandoned }
    }
}

impl ClientInner {
    fn circuit_open(&self, rejected: Rejected) -> Error {
        Error::CircuitOpen {
            client: self.name.to_string(),
            retry_after: rejected.retry_after,
        }
    }

    /// Starts the replay worker and the health probe, once. Called lazily from the paths
    /// that can need them (a counted failure, a queued write, shutdown), which always run
    /// inside a Tokio runtime, so building a client never requires one.
    fn ensure_tasks(self: &Arc<Self>) {
        self.tasks.get_or_init(|| {
            let backend = Arc::clone(&self.backend);
            let probe = self.health_probe.clone();
            let timeout = self
                .breaker
                .config()
                .health_check_interval
                .max(Duration::from_secs(1));
            let health = self.breaker.spawn_health_probe(move || {
                let backend = Arc::clone(&backend);
                let probe = probe.clone();
                async move {
                    // `(*backend)`: call the backend's own method, not the `Arc<B>` forwarding
                    // impl, which would box a second future around it.
                    matches!(
                        tokio::time::timeout(timeout, (*backend).execute(probe)).await,
                        Ok(Ok(_))
                    )
                }
            });
            let worker = tokio::spawn(replay::run(Arc::downgrade(self), Arc::clone(&self.queue)));
            Tasks { worker, health }
        });
    }

    /// Records the end of a call that reached the backend. A success with per-call metrics
    /// off (the cheapest call there is) is recorded inline; the rest out of line.
    #[inline(always)]
    fn finish(
        self: &Arc<Self>,
        permit: crate::breaker::Permit<'_>,
        cmd_ordinal: usize,
        cmd_name: &'static str,
        started: Option<CallStart>,
        error: Option<&BackendError>,
    ) {
        if error.is_none() && !self.observability.call_metrics {
            self.note_answered();
            permit.record_success();
        } else {
            self.finish_metered(permit, cmd_ordinal, cmd_name, started, error);
        }
    }

    /// [`finish`](Self::finish) for a failure, or with per-call metrics on.
    #[inline(never)]
    fn finish_metered(
        self: &Arc<Self>,
        permit: crate::breaker::Permit<'_>,
        cmd_ordinal: usize,
        cmd_name: &'static str,
        started: Option<CallStart>,
        error: Option<&BackendError>,
    ) {
        let metered = self.observability.call_metrics;
        if metered {
            self.counters.calls.increment();
            if let Some(started) = started {
                self.metrics.record_duration(started);
            }
        }
        match error {
            None => {
                self.note_answered();
                permit.record_success();
                if metered {
                    self.metrics.record(cmd_ordinal, cmd_name, Ok(()));
                }
            }
            Some(e) => {
                let kind = e.kind();
                if !kind.class().is_outage() {
                    // The server answered, with an error.
                    self.note_answered();
                }
                permit.record_error(kind);
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                if metered {
                    self.metrics.record(cmd_ordinal, cmd_name, Err(Some(kind)));
                }
                if kind.class().counts_for_breaker() {
                    self.ensure_tasks();
                }
            }
        }
    }

    /// The `redis.call` span of a call, or none when call spans are off.
    #[inline(always)]
    fn call_span(&self, command: &'static str) -> tracing::Span {
        if self.observability.call_spans {
            self.new_call_span(command)
        } else {
            tracing::Span::none()
        }
    }

    /// The span itself, kept out of line: the macro's code would stop the check above from
    /// being inlined into every call.
    #[inline(never)]
    fn new_call_span(&self, command: &'static str) -> tracing::Span {
        tracing::trace_span!("redis.call", client = %self.name, backend = self.backend.name(), command, outcome = tracing::field::Empty)
    }

    /// When a call started, for the latency histogram, or nothing when call metrics are
    /// off. The latency clock, not Tokio's: this only feeds the histogram, and Tokio's
    /// `Instant::now` first asks whether a test has paused its clock.
    #[inline]
    fn call_start(&self) -> Option<CallStart> {
        self.observability
            .call_metrics
            .then(|| self.metrics.start())
    }

    fn reject(&self, cmd_ordinal: usize, cmd_name: &'static str, rejected: Rejected) -> Error {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        if self.observability.call_metrics {
            self.metrics.record(cmd_ordinal, cmd_name, Err(None));
        }
        self.circuit_open(rejected)
    }

    /// One command through the breaker. An `EVALSHA` the server does not know is answered
    /// by loading the script (when this client has seen it) and running it again: NOSCRIPT
    /// means it did not run, so this cannot apply it twice.
    ///
    /// The common case (no client cache to invalidate, not a script) is one unboxed
    /// [`call::Call`]; the rare ones run boxed (see [`call::CallFuture`]).
    #[inline(always)]
    fn call(self: &Arc<Self>, cmd: Command) -> call::CallFuture<'_> {
        #[cfg(feature = "cache")]
        let cached_write = self.cache.is_some() && cmd.is_write();
        #[cfg(not(feature = "cache"))]
        let cached_write = false;
        if cached_write || matches!(cmd, Command::Evalsha { .. }) {
            return call::CallFuture::Boxed(Box::pin(self.call_rare(cmd)));
        }
        self.call_once(cmd)
    }

    /// [`call`](Self::call)'s rare paths: a write that drops its keys from the client cache
    /// before it is sent and again when it ends, and an `EVALSHA` answered `NOSCRIPT`.
    async fn call_rare(self: &Arc<Self>, cmd: Command) -> Result<Value, Error> {
        #[cfg(feature = "cache")]
        let _written = match &self.cache {
            Some(cache) if cmd.is_write() => {
                cached::before_write(cache, std::slice::from_ref(&cmd))
            }
            _ => None,
        };
        let Command::Evalsha { .. } = &cmd else {
            return self.call_once(cmd).await;
        };
        // Kept for the rare NOSCRIPT: the backend consumes the command it sends.
        let again = cmd.clone();
        match self.call_once(cmd).await {
            Err(Error::Server(e)) if e.is_noscript() => {
                self.reload_scripts_for(std::slice::from_ref(&again))
                    .await?;
                self.call_once(again).await
            }
            result => result,
        }
    }

    /// One command through the breaker, with no cache hook and no script reload.
    #[inline(always)]
    fn call_once(self: &Arc<Self>, cmd: Command) -> call::CallFuture<'_> {
        let (ordinal, name) = (cmd.ordinal(), cmd.name());
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => {
                return call::CallFuture::Answered(Some(Err(self.reject(ordinal, name, rejected))));
            }
        };
        let span = self.call_span(name);
        let started = self.call_start();
        // `(*self.backend)`: method lookup on an `Arc<dyn KvBackend>` finds the forwarding
        // `impl KvBackend for Arc<B>` first, which boxes one more future per call (an
        // allocation, a copy of the future and an extra poll layer): call the backend directly.
        let backend = (*self.backend).execute(cmd);
        call::CallFuture::Sent(call::Call {
            inner: self,
            permit: Some(permit),
            ordinal,
            name,
            started,
            span,
            backend,
        })
    }

    /// A batch through the breaker (one round trip). Scripts this client knows are loaded in
    /// the same round trip (SCRIPT LOAD before their EVALSHA, also valid inside MULTI), so a
    /// server that restarted and lost its script cache still runs them.
    async fn call_batch(
        self: &Arc<Self>,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, Error> {
        #[cfg(feature = "cache")]
        let _written = match &self.cache {
            Some(cache) => cached::before_write(cache, &cmds),
            None => None,
        };
        let (cmds, loads) = self.with_script_loads(cmds);
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => return Err(self.reject(BATCH_ORDINAL, "BATCH", rejected)),
        };
        let started = self.call_start();
        let span = if self.observability.call_spans {
            tracing::trace_span!("redis.batch", client = %self.name, backend = self.backend.name(), atomic, len = cmds.len(), outcome = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let result = (*self.backend)
            .execute_batch(cmds, atomic)
            .instrument(span.clone())
            .await;
        record_outcome(&span, result.as_ref().err());
        self.finish(
            permit,
            BATCH_ORDINAL,
            "BATCH",
            started,
            result.as_ref().err(),
        );
        let mut values = result.map_err(Error::from)?;
        values.drain(..loads.min(values.len()));
        Ok(values)
    }

    /// Prepends a SCRIPT LOAD for every distinct known script an EVALSHA in `cmds` uses.
    fn with_script_loads(&self, cmds: Vec<Command>) -> (Vec<Command>, usize) {
        let shas: Vec<&str> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Evalsha { sha1, .. } => Some(sha1.as_str()),
                _ => None,
            })
            .collect();
        if shas.is_empty() {
            return (cmds, 0);
        }
        let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
        let mut loads: Vec<Command> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for sha in shas {
            if seen.contains(&sha) {
                continue;
            }
            seen.push(sha);
            if let Some(source) = scripts.get(sha) {
                loads.push(Command::ScriptLoad {
                    script: source.to_string(),
                });
            }
        }
        drop(scripts);
        let n = loads.len();
        loads.extend(cmds);
        (loads, n)
    }

    /// Loads every known script the EVALSHA commands in `cmds` use.
    async fn reload_scripts_for(self: &Arc<Self>, cmds: &[Command]) -> Result<(), Error> {
        let sources: Vec<Arc<str>> = {
            let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
            cmds.iter()
                .filter_map(|c| match c {
                    Command::Evalsha { sha1, .. } => scripts.get(sha1).cloned(),
                    _ => None,
                })
                .collect()
        };
        if sources.is_empty() {
            return Err(Error::Server(BackendError::from_reply(
                "NOSCRIPT No matching script, and this client was never given its source (use Script / register_script)",
            )));
        }
        for source in sources {
            self.call_once(Command::ScriptLoad {
                script: source.to_string(),
            })
            .await?;
        }
        Ok(())
    }

    /// Feature `durable`: the sources of the known scripts `cmds` run, for a journal record.
    #[cfg(feature = "durable")]
    fn script_sources(&self, cmds: &[Command]) -> Vec<String> {
        let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<String> = Vec::new();
        for cmd in cmds {
            if let Command::Evalsha { sha1, .. } = cmd
                && let Some(source) = scripts.get(sha1)
                && !out.iter().any(|s| **s == **source)
            {
                out.push(source.to_string());
            }
        }
        out
    }

    fn register_script(&self, sha1: &str, source: &Arc<str>) {
        let known = self
            .scripts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(sha1);
        if !known {
            self.scripts
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(sha1.to_owned(), Arc::clone(source));
        }
    }

    /// Runs `attempt` up to 1 + `policy.max_retries` times with the policy's backoff, while
    /// `retryable(&error)` says so and the shared budget allows (see [`retry_with`]).
    async fn with_retries<T, F, Fut>(
        &self,
        policy: &RetryPolicy,
        retryable: impl Fn(&Error) -> bool,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let result = retry_with(
            policy,
            Some(&self.budget),
            |e: &Error| retryable(e),
            |n| {
                if n > 0 {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    self.metrics.retries().increment(1);
                }
                attempt()
            },
        )
        .await;
        result.map_err(|e| match e {
            RetryError::BudgetExhausted(
                Error::Unavailable(b) | Error::Timeout(b) | Error::Busy(b),
            ) => Error::RetryBudgetExhausted(b),
            other => other.into_inner(),
        })
    }
}

/// The metrics slot used for batches (they are counted under the `RAW` ordinal's row).
const BATCH_ORDINAL: usize = Command::VARIANTS - 1;
