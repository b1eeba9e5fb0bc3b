//! What a client holds: the handle, the parts behind it, and what its recovery queue
//! carries. Types only; what a client does with them lives in the sibling modules, each
//! adding its own `impl` blocks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock, RwLock};

use tokio::task::JoinHandle;

use crate::breaker::CircuitBreaker;
use crate::observe::CallMetrics;
use crate::queue::RecoveryQueue;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::{Command, DeadLetterReason, Error, KvBackend};

use super::striped::StripedCounter;

/// A resilient Redis client: breaker, retries, priority queue, over any [`KvBackend`].
///
/// Every call goes through the circuit breaker: while Redis is failing, calls fail fast with
/// [`Error::CircuitOpen`] instead of piling up behind timeouts, and a background health probe
/// closes the breaker about a second after Redis answers again, not after the full
/// `circuit_reset_timeout`.
///
/// What happens on failure depends on how you call:
///
/// - Plain command methods ([`get`](ResilientClient::get), [`set`](ResilientClient::set), …)
///   try once and return the error (the default).
/// - [`execute_with_retry`](ResilientClient::execute_with_retry) retries with a
///   [`RetryPolicy`], only when the error is retryable for that command (a timed-out `INCR`
///   is never retried: it may have been applied), within the shared [`RetryBudget`].
/// - [`store_with_retry`](ResilientClient::store_with_retry) and
///   [`submit`](ResilientClient::submit) follow the write's [`Priority`](crate::Priority): `Critical` retries
///   inline, `High` and `Normal` go to the recovery queue and are replayed when Redis is
///   back, `Low` is dropped. The [`StoreOutcome`](crate::StoreOutcome) always says which.
///
/// The client is cheap to clone (an `Arc` inside) and not generic: it holds an
/// `Arc<dyn KvBackend>`, so the backend is chosen at run time.
///
/// ```
/// # use backend_memory::InMemoryBackend;
/// # use resilience_core::{ResilientClient, SetOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), resilience_core::Error> {
/// let client = ResilientClient::builder("agent_stm", InMemoryBackend::new()).build()?;
/// client.set("agent:123:name", "Agent Smith", SetOptions::default()).await?;
/// assert_eq!(client.get("agent:123:name").await?.as_deref(), Some(&b"Agent Smith"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ResilientClient {
    pub(super) inner: Arc<ClientInner>,
}

impl std::fmt::Debug for ResilientClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientClient")
            .field("name", &self.inner.name)
            .field("backend", &self.inner.backend.name())
            .field("circuit_state", &self.inner.breaker.state())
            .finish_non_exhaustive()
    }
}

/// Counters behind [`ClientStats`](super::ClientStats).
#[derive(Default)]
pub(super) struct Counters {
    /// Bumped by every call that reaches the backend, from every thread: striped.
    pub(super) calls: StripedCounter,
    pub(super) failures: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) stored: AtomicU64,
    pub(super) queued: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) failed: AtomicU64,
}

pub(super) struct Tasks {
    pub(super) worker: JoinHandle<()>,
    pub(super) health: JoinHandle<()>,
}

pub(crate) struct ClientInner {
    pub(super) name: Arc<str>,
    pub(super) backend: Arc<dyn KvBackend>,
    pub(super) breaker: Arc<CircuitBreaker>,
    pub(super) retry_policy: RetryPolicy,
    pub(super) budget: RetryBudget,
    /// What may be sent again, for every retry the client makes.
    pub(super) retry_decision: Arc<dyn crate::RetryDecision>,
    /// What is reported per call.
    pub(super) observability: crate::observe::Observability,
    pub(super) queue: Arc<RecoveryQueue<QueuedWork>>,
    /// Scripts this client has seen, by SHA1, so NOSCRIPT can be answered by reloading.
    pub(super) scripts: RwLock<std::collections::HashMap<String, Arc<str>>>,
    pub(super) counters: Counters,
    pub(super) metrics: CallMetrics,
    pub(super) tasks: OnceLock<Tasks>,
    /// The client-side read cache, when configured and the backend tracks.
    #[cfg(feature = "cache")]
    pub(super) cache: Option<Arc<crate::cache::ReadCache>>,
    /// What the health probe sends while the breaker is Open, and the liveness check
    /// while the client is idle (default `PING`).
    pub(super) health_probe: Command,
    /// Set when a call ends with the server answering; the liveness watch clears it.
    pub(super) answered: AtomicBool,
    /// The liveness watch, when the client has one.
    pub(super) liveness: OnceLock<JoinHandle<()>>,
    /// Whether `submit` makes non-idempotent writes exactly-once, and how.
    pub(super) exactly_once: Option<super::exactly_once::ExactlyOnceConfig>,
    /// Feature `durable`: the on-disk journal behind the recovery queue, when configured.
    #[cfg(feature = "durable")]
    pub(super) journal: Option<Arc<crate::journal::Journal>>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Some(watch) = self.liveness.get() {
            watch.abort();
        }
        if let Some(tasks) = self.tasks.get() {
            tasks.worker.abort();
            tasks.health.abort();
        }
        let left = self.queue.len();
        if left > 0 {
            tracing::warn!(client = %self.name, left, "client dropped with queued writes; their tickets resolve as shut down (call shutdown() to drain)");
            self.queue.dead_letter_all(DeadLetterReason::Shutdown);
        }
    }
}

/// The future a store function returns, boxed so queued store functions can be kept.
pub type StoreFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

/// A queued `store_with_retry`: the store function with its agent and state bound.
pub(crate) type StoreJob = Arc<dyn Fn(ResilientClient) -> StoreFuture + Send + Sync>;

/// What a queued write carries.
pub(crate) enum QueuedWork {
    /// Data: one command, or a batch (atomic when `atomic`). `journal_seq` is its record in
    /// the durable journal (feature `durable`), `None` when it is not journaled.
    Commands {
        cmds: Vec<Command>,
        atomic: bool,
        journal_seq: Option<u64>,
    },
    /// A `store_with_retry` store function.
    Store(StoreJob),
}

impl std::fmt::Debug for QueuedWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueuedWork::Commands {
                cmds,
                atomic,
                journal_seq,
            } => f
                .debug_struct("Commands")
                .field(
                    "commands",
                    &cmds.iter().map(Command::name).collect::<Vec<_>>(),
                )
                .field("atomic", atomic)
                .field("journal_seq", journal_seq)
                .finish(),
            QueuedWork::Store(_) => f.write_str("Store(..)"),
        }
    }
}
