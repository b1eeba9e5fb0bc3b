//! Scripted, deterministic faults around any [`KvBackend`].
//!
//! [`FaultyBackend::new`] wraps a backend and hands back two things: the
//! [`FaultyBackend`] itself, which you give to the code under test (a `ResilientClient`,
//! say), and a [`FaultController`], a cheap `Clone` handle the test keeps to inject faults
//! and read counters while the client owns the backend.
//!
//! ```
//! use std::time::Duration;
//! use resilience_core::{Command, ErrorKind, KvBackend, Value};
//! use testkit::faulty::FaultyBackend;
//! use testkit::mock::MockKvBackend;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mut inner = MockKvBackend::new();
//! inner.expect_execute().returning(|_| Ok(Value::Status("PONG".into())));
//! let (backend, faults) = FaultyBackend::new(inner);
//!
//! faults.fail_next(2, ErrorKind::Unavailable);
//! for _ in 0..2 {
//!     let err = backend.execute(Command::Ping).await.unwrap_err();
//!     assert_eq!(err.kind(), ErrorKind::Unavailable);
//! }
//! assert!(backend.execute(Command::Ping).await.is_ok());
//! assert_eq!((faults.calls(), faults.forwarded(), faults.injected()), (3, 1, 2));
//! # }
//! ```
//!
//! # What a call goes through
//!
//! Every `execute` and every `execute_batch` (a batch is one call) runs these steps, in
//! this order. The fault is *decided* when the call starts (one-shot budgets such as
//! `fail_next` are consumed then), so concurrent calls see a well-defined sequence:
//!
//! 1. [`calls`](FaultController::calls) is incremented.
//! 2. The configured [latency](FaultController::set_latency), if any, is slept
//!    (`tokio::time::sleep`, so it follows a paused clock).
//! 3. [Outage](FaultController::set_outage): fail `Unavailable`; the inner backend is not
//!    reached.
//! 4. [Hang](FaultController::set_hang): sleep the [hang timeout](FaultController::set_hang_timeout)
//!    (2 s by default, like `socket_timeout`), then fail `Timeout`; not reached.
//! 5. [`fail_next`](FaultController::fail_next): fail with the scripted kind; not reached.
//! 6. [`fail_when`](FaultController::fail_when): fail with the kind when the predicate
//!    matches the command (or any command of a batch); not reached.
//! 7. The call is forwarded to the inner backend ([`forwarded`](FaultController::forwarded)
//!    is incremented). If [`apply_then_timeout_next`](FaultController::apply_then_timeout_next)
//!    has budget left, the inner result is thrown away and `Timeout` is reported instead:
//!    the command *was* applied, which is exactly what a real timeout can hide.
//!
//! Injected errors carry the message `"injected fault: ..."`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use resilience_core::{BackendError, Command, ErrorKind, KvBackend, Value};

/// How long a call waits before failing `Timeout` while [hanging](FaultController::set_hang),
/// unless changed with [`FaultController::set_hang_timeout`]. Matches the default
/// `socket_timeout`.
pub const DEFAULT_HANG_TIMEOUT: Duration = Duration::from_secs(2);

type Predicate = Box<dyn Fn(&Command) -> bool + Send + Sync>;

/// The scripted part of the state; small and only touched once per call.
struct Script {
    fail_next: VecDeque<ErrorKind>,
    apply_then_timeout: usize,
    latency: Duration,
    hang_timeout: Duration,
    rules: Vec<(Predicate, ErrorKind)>,
}

struct State {
    outage: AtomicBool,
    hang: AtomicBool,
    calls: AtomicU64,
    forwarded: AtomicU64,
    failed: AtomicU64,
    injected: AtomicU64,
    script: Mutex<Script>,
}

impl State {
    fn script(&self) -> MutexGuard<'_, Script> {
        // A panic while holding this lock cannot leave the script inconsistent (every
        // update is a single assignment), so a poisoned lock is still usable.
        self.script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What was decided for one call when it started.
enum Plan {
    Fail(ErrorKind),
    Hang(Duration),
    Forward { then_timeout: bool },
}

/// A [`KvBackend`] that wraps `B` and injects the faults its [`FaultController`] scripts.
///
/// See the [module docs](self) for the order in which faults apply. [`name`](KvBackend::name)
/// is the inner backend's name.
pub struct FaultyBackend<B: KvBackend> {
    inner: B,
    state: Arc<State>,
}

impl<B: KvBackend> std::fmt::Debug for FaultyBackend<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("inner", &self.inner.name())
            .finish_non_exhaustive()
    }
}

/// The test's handle on a [`FaultyBackend`]: inject faults and read counters.
///
/// Cloning is cheap (one `Arc`); all clones control the same backend. Every setting takes
/// effect for calls that *start* after it is made.
#[derive(Clone)]
pub struct FaultController {
    state: Arc<State>,
}

impl<B: KvBackend> FaultyBackend<B> {
    /// Wraps `inner` with no faults configured, and returns the controller for it.
    pub fn new(inner: B) -> (Self, FaultController) {
        let state = Arc::new(State {
            outage: AtomicBool::new(false),
            hang: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            script: Mutex::new(Script {
                fail_next: VecDeque::new(),
                apply_then_timeout: 0,
                latency: Duration::ZERO,
                hang_timeout: DEFAULT_HANG_TIMEOUT,
                rules: Vec::new(),
            }),
        });
        let controller = FaultController {
            state: Arc::clone(&state),
        };
        (FaultyBackend { inner, state }, controller)
    }

    /// Another controller for this backend (same state as the one `new` returned).
    pub fn controller(&self) -> FaultController {
        FaultController {
            state: Arc::clone(&self.state),
        }
    }

    /// The wrapped backend, to inspect it directly (calls made through this reference
    /// bypass faults and counters).
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Decides the fault for a call whose commands are `cmds`, consuming one-shot budgets.
    fn plan(&self, cmds: &[Command]) -> (Duration, Plan) {
        let state = &self.state;
        state.calls.fetch_add(1, Ordering::SeqCst);
        let mut script = state.script();
        let latency = script.latency;
        let plan = if state.outage.load(Ordering::SeqCst) {
            Plan::Fail(ErrorKind::Unavailable)
        } else if state.hang.load(Ordering::SeqCst) {
            Plan::Hang(script.hang_timeout)
        } else if let Some(kind) = script.fail_next.pop_front() {
            Plan::Fail(kind)
        } else if let Some(kind) = script
            .rules
            .iter()
            .find(|(pred, _)| cmds.iter().any(pred))
            .map(|(_, kind)| *kind)
        {
            Plan::Fail(kind)
        } else {
            let then_timeout = script.apply_then_timeout > 0;
            if then_timeout {
                script.apply_then_timeout -= 1;
            }
            Plan::Forward { then_timeout }
        };
        (latency, plan)
    }

    /// Runs a call through its plan; `forward` reaches the inner backend.
    async fn run<T, F, Fut>(
        &self,
        (latency, plan): (Duration, Plan),
        forward: F,
    ) -> Result<T, BackendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let result = match plan {
            Plan::Fail(kind) => Err(self.injected(kind, "scripted failure")),
            Plan::Hang(timeout) => {
                tokio::time::sleep(timeout).await;
                Err(self.injected(ErrorKind::Timeout, "server did not answer (hang)"))
            }
            Plan::Forward { then_timeout } => {
                let result = forward().await;
                self.state.forwarded.fetch_add(1, Ordering::SeqCst);
                if then_timeout {
                    Err(self.injected(
                        ErrorKind::Timeout,
                        "applied by the server, then reported as a timeout",
                    ))
                } else {
                    result
                }
            }
        };
        if result.is_err() {
            self.state.failed.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    fn injected(&self, kind: ErrorKind, what: &str) -> BackendError {
        self.state.injected.fetch_add(1, Ordering::SeqCst);
        BackendError::new(kind, format!("injected fault: {what}"))
    }
}

#[async_trait]
impl<B: KvBackend> KvBackend for FaultyBackend<B> {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        let plan = self.plan(std::slice::from_ref(&cmd));
        self.run(plan, || self.inner.execute(cmd)).await
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        let plan = self.plan(&cmds);
        self.run(plan, || self.inner.execute_batch(cmds, atomic))
            .await
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn is_networked(&self) -> bool {
        self.inner.is_networked()
    }

    fn invalidations(&self) -> Option<resilience_core::backend::InvalidationFeed> {
        self.inner.invalidations()
    }

    /// Faults apply to tracked reads (client cache fills) like to any other call.
    async fn execute_tracked(
        &self,
        cmd: Command,
    ) -> Result<resilience_core::backend::TrackedReply, BackendError> {
        let plan = self.plan(std::slice::from_ref(&cmd));
        self.run(plan, || self.inner.execute_tracked(cmd)).await
    }
}

impl FaultController {
    /// The next `n` calls fail with `kind` without reaching the inner backend. Adds to any
    /// failures already scripted (they are used first).
    pub fn fail_next(&self, n: usize, kind: ErrorKind) {
        let mut script = self.state.script();
        script.fail_next.extend(std::iter::repeat_n(kind, n));
    }

    /// While `on`, every call fails `Unavailable` without reaching the inner backend, as if
    /// the server were down.
    pub fn set_outage(&self, on: bool) {
        self.state.outage.store(on, Ordering::SeqCst);
    }

    /// Whether an outage is on.
    pub fn outage(&self) -> bool {
        self.state.outage.load(Ordering::SeqCst)
    }

    /// Sleeps `latency` (`tokio::time::sleep`) at the start of every call. Zero turns it off.
    pub fn set_latency(&self, latency: Duration) {
        self.state.script().latency = latency;
    }

    /// While `on`, every call waits the [hang timeout](Self::set_hang_timeout), then fails
    /// `Timeout` without reaching the inner backend, like a server that stopped answering.
    pub fn set_hang(&self, on: bool) {
        self.state.hang.store(on, Ordering::SeqCst);
    }

    /// How long a hanging call waits before failing (default [`DEFAULT_HANG_TIMEOUT`]).
    pub fn set_hang_timeout(&self, timeout: Duration) {
        self.state.script().hang_timeout = timeout;
    }

    /// The next `n` calls that reach the inner backend are applied there and then reported
    /// as `Timeout`, so a test can check that non-idempotent commands are not retried after
    /// a timeout (and count how often a command was really applied).
    pub fn apply_then_timeout_next(&self, n: usize) {
        self.state.script().apply_then_timeout += n;
    }

    /// From now on, a call fails with `kind` (without reaching the inner backend) when
    /// `predicate` holds for its command, or for any command of a batch. Rules are checked
    /// in the order they were added; [`clear`](Self::clear) removes them.
    pub fn fail_when<F>(&self, predicate: F, kind: ErrorKind)
    where
        F: Fn(&Command) -> bool + Send + Sync + 'static,
    {
        self.state.script().rules.push((Box::new(predicate), kind));
    }

    /// Removes every fault: outage and hang off, no latency, no scripted failures, no
    /// `fail_when` rules, the hang timeout back to its default. Counters are kept.
    pub fn clear(&self) {
        self.state.outage.store(false, Ordering::SeqCst);
        self.state.hang.store(false, Ordering::SeqCst);
        let mut script = self.state.script();
        script.fail_next.clear();
        script.apply_then_timeout = 0;
        script.latency = Duration::ZERO;
        script.hang_timeout = DEFAULT_HANG_TIMEOUT;
        script.rules.clear();
    }

    /// Calls started so far (`execute` and `execute_batch`; a batch counts once).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls that reached the inner backend (including those then reported as `Timeout`).
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Calls that returned an error, injected or from the inner backend.
    pub fn failed(&self) -> u64 {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// Calls whose error was injected by this wrapper.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }

    /// Scripted `fail_next` failures not used yet.
    pub fn pending_failures(&self) -> usize {
        self.state.script().fail_next.len()
    }
}

impl std::fmt::Debug for FaultController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultController")
            .field("calls", &self.calls())
            .field("forwarded", &self.forwarded())
            .field("failed", &self.failed())
            .field("outage", &self.outage())
            .finish_non_exhaustive()
    }
}
