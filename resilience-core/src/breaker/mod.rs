//! The circuit breaker: stop calling a backend that is down, find out quickly when it is
//! back.
//!
//! Its guide is in the docs of its main type.

mod config;
mod notify;
mod probe;
mod state;
mod sync;
mod window;

#[cfg(all(test, resilience_loom))]
mod loom_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::ErrorKind;

pub use config::{CircuitBreakerConfig, FailurePolicy, RateWindow};
pub use state::{CircuitState, Rejected, Transition};

use state::{INFLIGHT_ONE, Word};
use sync::{AtomicBool, AtomicU64, Mutex, MutexGuard};
use window::{Counters, duration_nanos};

/// Counter of transitions, labels `breaker`, `from`, `to`.
pub(crate) const METRIC_TRANSITIONS: &str = "resilience_breaker_transitions_total";
/// Gauge of the current state, label `breaker`: 0 closed, 1 open, 2 half-open,
/// 3 forced-open, 4 disabled.
pub(crate) const METRIC_STATE: &str = "resilience_breaker_state";

type Listener = Arc<dyn Fn(&Transition) + Send + Sync + 'static>;

/// A circuit breaker. `Send + Sync`; share it in an `Arc`.
///
/// A [`CircuitBreaker`] sits in front of every call a
/// [`ResilientClient`](crate::ResilientClient) makes. Before the call, ask it for a
/// [`Permit`]; after the call, tell the permit how it went:
///
/// ```
/// use resilience_core::ErrorKind;
/// use resilience_core::{CircuitBreaker, CircuitBreakerConfig};
///
/// let breaker = CircuitBreaker::new("stm", CircuitBreakerConfig::default());
/// match breaker.try_acquire() {
///     Ok(permit) => {
///         // ... make the call, then report what happened:
///         let outcome: Result<(), ErrorKind> = Err(ErrorKind::Server); // e.g. WRONGTYPE
///         match outcome {
///             Ok(()) => permit.record_success(),
///             // A WRONGTYPE means the server answered: it is up, so this counts as a success.
///             Err(kind) => permit.record_error(kind),
///         }
///     }
///     Err(rejected) => {
///         // Not attempted: fail fast, queue, or fall back.
///         println!("circuit {} for another {:?}", rejected.state, rejected.retry_after);
///     }
/// }
/// assert_eq!(breaker.state(), resilience_core::CircuitState::Closed);
/// ```
///
/// # States
///
/// - **Closed**: calls pass. Counted failures ([`ErrorClass::counts_for_breaker`](crate::ErrorClass::counts_for_breaker): unavailable,
///   timeout, busy; and, if configured, successes slower than `slow_call_threshold`) feed the
///   [`FailurePolicy`]: `threshold` failures in a row (default 3), or a failure
///   rate over a count or time window. When the policy trips, the breaker opens.
/// - **Open**: every call is [`Rejected`] at once, with the time left until `reset_timeout`
///   (default 300 s) has passed since it opened. The first call after that moves it to
///   HalfOpen and is admitted as the probe.
/// - **HalfOpen**: at most `half_open_max_calls` (default 1) probe permits are outstanding;
///   they are reserved with a compare-exchange, so with a limit of 1 exactly one of any
///   number of concurrent callers gets one. The rest are rejected at once. A probe's success
///   closes the breaker (counters cleared), its failure re-opens it for another
///   `reset_timeout`.
/// - **ForcedOpen** ([`force_open`](CircuitBreaker::force_open)) rejects everything until
///   [`reset`](CircuitBreaker::reset); **Disabled** ([`disable`](CircuitBreaker::disable))
///   admits everything and records nothing.
///
/// # Health probe
///
/// 300 s is a long time to reject calls after Redis came back in two. With
/// [`spawn_health_probe`](CircuitBreaker::spawn_health_probe) a background task pings the
/// backend every `health_check_interval` (default 1 s) while the breaker is Open, and closes
/// it as soon as a ping answers. It waits on the state's
/// [`watch`] channel while not Open, so a healthy breaker costs nothing.
///
/// # Generations
///
/// Every transition adds one to the breaker's [`generation`](CircuitBreaker::generation). A
/// permit remembers the generation it was issued in and its result is ignored once the
/// generation has moved on: a slow call that began while Closed and ends after the breaker
/// opened and half-opened must not close it.
///
/// # Costs
///
/// State, half-open reservations and generation live in one `AtomicU64`. With the default
/// policy, admitting a call and recording its success is two atomic loads (plus a store
/// when a failure streak ends): no lock, no allocation, no clock read. Rejecting while Open
/// is two loads and a read of Tokio's clock. A count window adds a `fetch_add` and a `swap`
/// per call; a time window and slow-call counting add clock reads, and a time window sums
/// its 20 time buckets on each record. Only transitions take a lock.
///
/// # Observing transitions
///
/// Every transition is a `tracing` event (warn when opening, info otherwise), increments
/// the counter [`BREAKER_TRANSITIONS`](crate::observe::BREAKER_TRANSITIONS) (labels `breaker`, `from`, `to`), sets the gauge
/// [`BREAKER_STATE`](crate::observe::BREAKER_STATE) (label `breaker`; see [`CircuitState::code`]), updates the channel
/// returned by [`subscribe`](CircuitBreaker::subscribe), and calls the listeners registered
/// with [`on_transition`](CircuitBreaker::on_transition), in transition order and with no
/// lock held, so a listener may call back into the breaker.
pub struct CircuitBreaker {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    /// State, half-open reservations and generation (see [`Word`]).
    word: AtomicU64,
    /// When it last opened, in nanoseconds since `base`.
    opened_at: AtomicU64,
    base: Instant,
    counters: Counters,
    reset_nanos: u64,
    /// `u64::MAX` when slow calls are not counted.
    slow_nanos: u64,
    clock_on_record: bool,
    half_open_max: u32,
    /// Serializes transitions (never held while user code runs).
    transition_lock: Mutex<()>,
    watch: watch::Sender<CircuitState>,
    pending: Mutex<VecDeque<Transition>>,
    draining: AtomicBool,
    listeners: RwLock<Arc<Vec<Listener>>>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("generation", &self.generation())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a permit's call came to, as far as the breaker cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Ignored,
}

impl CircuitBreaker {
    /// A Closed breaker named `name` (the name labels its logs and metrics). Out-of-range
    /// settings are clamped, see [`CircuitBreakerConfig`].
    pub fn new(name: impl Into<String>, config: CircuitBreakerConfig) -> Self {
        let config = config.normalized();
        let name: Arc<str> = Arc::from(name.into());
        let counters = Counters::new(&config.policy);
        let slow_nanos = config.slow_call_threshold.map_or(u64::MAX, duration_nanos);
        let clock_on_record = config.slow_call_threshold.is_some() || counters.needs_clock();
        metrics::gauge!(METRIC_STATE, "breaker" => name.clone())
            .set(f64::from(CircuitState::Closed.code()));
        CircuitBreaker {
            reset_nanos: duration_nanos(config.reset_timeout),
            half_open_max: config.half_open_max_calls,
            word: AtomicU64::new(Word::new(CircuitState::Closed, 0, 0).0),
            opened_at: AtomicU64::new(0),
            base: Instant::now(),
            counters,
            slow_nanos,
            clock_on_record,
            transition_lock: Mutex::new(()),
            watch: watch::Sender::new(CircuitState::Closed),
            pending: Mutex::new(VecDeque::new()),
            draining: AtomicBool::new(false),
            listeners: RwLock::new(Arc::new(Vec::new())),
            name,
            config,
        }
    }

    /// The name given to [`new`](Self::new).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings in use (after clamping).
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.load().state()
    }

    /// How many transitions this breaker has made (kept in 40 bits: it wraps to 0 after
    /// about 10^12 transitions).
    pub fn generation(&self) -> u64 {
        self.load().generation()
    }

    /// A receiver of the current state, updated on every transition; await
    /// `changed()` or `wait_for(..)` on it instead of polling [`state`](Self::state).
    pub fn subscribe(&self) -> watch::Receiver<CircuitState> {
        self.watch.subscribe()
    }

    /// The admission decision: a [`Permit`] for the call, or why not.
    ///
    /// Closed and Disabled always admit. Open rejects until `reset_timeout` has passed
    /// since it opened; the first call after that turns it HalfOpen and is admitted as the
    /// probe. HalfOpen admits while fewer than `half_open_max_calls` permits are out.
    /// ForcedOpen always rejects. Never blocks, never allocates.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let word = self.load();
        // The common case, small enough to inline into every call: a closed breaker.
        if word.state() == CircuitState::Closed {
            return Ok(self.permit(word, CircuitState::Closed));
        }
        self.try_acquire_from(word)
    }

    /// [`try_acquire`](Self::try_acquire) in every state, from `word` as last read.
    #[inline(never)]
    fn try_acquire_from(&self, mut word: Word) -> Result<Permit<'_>, Rejected> {
        loop {
            match word.state() {
                CircuitState::Closed => return Ok(self.permit(word, CircuitState::Closed)),
                CircuitState::Disabled => return Ok(self.permit(word, CircuitState::Disabled)),
                CircuitState::ForcedOpen => {
                    return Err(Rejected {
                        state: CircuitState::ForcedOpen,
                        retry_after: Duration::ZERO,
                    });
                }
                CircuitState::Open => {
                    let elapsed = self
                        .now_nanos()
                        .saturating_sub(self.opened_at.load(Ordering::Acquire));
                    if elapsed < self.reset_nanos {
                        return Err(Rejected {
                            state: CircuitState::Open,
                            retry_after: Duration::from_nanos(self.reset_nanos - elapsed),
                        });
                    }
                    let generation = word.generation();
                    match self.transition(
                        |w| w.state() == CircuitState::Open && w.generation() == generation,
                        CircuitState::HalfOpen,
                        1,
                        "reset timeout elapsed",
                    ) {
                        Some(next) => return Ok(self.permit(next, CircuitState::HalfOpen)),
                        None => word = self.load(),
                    }
                }
                CircuitState::HalfOpen => {
                    if word.inflight() >= self.half_open_max {
                        return Err(Rejected {
                            state: CircuitState::HalfOpen,
                            retry_after: Duration::ZERO,
                        });
                    }
                    let next = Word(word.0 + INFLIGHT_ONE);
                    match self.word.compare_exchange_weak(
                        word.0,
                        next.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(self.permit(next, CircuitState::HalfOpen)),
                        Err(actual) => word = Word(actual),
                    }
                }
            }
        }
    }

    /// Opens the breaker by hand: every call is rejected until [`reset`](Self::reset).
    /// The health probe does not touch a forced-open breaker.
    pub fn force_open(&self) {
        self.transition(
            |w| w.state() != CircuitState::ForcedOpen,
            CircuitState::ForcedOpen,
            0,
            "forced open",
        );
    }

    /// Closed (in `generation`) -> Open at once, for `reason`: the client's idle liveness
    /// check found the connection dead. Whether it moved (not if the breaker left that
    /// Closed period meanwhile).
    pub(crate) fn trip(&self, generation: u64, reason: &'static str) -> bool {
        self.transition(
            |w| w.state() == CircuitState::Closed && w.generation() == generation,
            CircuitState::Open,
            0,
            reason,
        )
        .is_some()
    }

    /// Switches the breaker off: every call is admitted and no outcome is recorded, until
    /// [`reset`](Self::reset).
    pub fn disable(&self) {
        self.transition(
            |w| w.state() != CircuitState::Disabled,
            CircuitState::Disabled,
            0,
            "disabled",
        );
    }

    /// Back to Closed with every counter cleared, from any state (including ForcedOpen and
    /// Disabled). On a breaker that is already Closed it only clears the counters (no
    /// transition, the generation stays).
    pub fn reset(&self) {
        if self
            .transition(
                |w| w.state() != CircuitState::Closed,
                CircuitState::Closed,
                0,
                "reset",
            )
            .is_none()
        {
            self.counters.clear();
        }
    }

    #[inline]
    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos_at(Instant::now())
    }

    #[inline]
    fn nanos_at(&self, at: Instant) -> u64 {
        duration_nanos(at.saturating_duration_since(self.base))
    }

    #[inline]
    fn permit(&self, word: Word, kind: CircuitState) -> Permit<'_> {
        let started = if self.slow_nanos != u64::MAX && kind != CircuitState::Disabled {
            self.now_nanos()
        } else {
            0
        };
        Permit {
            breaker: self,
            generation: word.generation(),
            kind,
            started,
            done: false,
        }
    }

    #[inline]
    fn record(&self, generation: u64, kind: CircuitState, started: u64, outcome: Outcome) {
        match kind {
            CircuitState::Closed => self.record_closed(generation, started, outcome),
            CircuitState::HalfOpen => self.record_half_open(generation, started, outcome),
            _ => {}
        }
    }

    /// Whether a call counts as a failure, given its outcome and (when needed) the time.
    #[inline]
    fn is_failure(&self, started: u64, now: u64, outcome: Outcome) -> bool {
        outcome == Outcome::Failure || now.saturating_sub(started) > self.slow_nanos
    }

    #[inline]
    fn record_closed(&self, generation: u64, started: u64, outcome: Outcome) {
        if outcome == Outcome::Ignored {
            return;
        }
        let word = self.load();
        if word.state() != CircuitState::Closed || word.generation() != generation {
            return;
        }
        let now = if self.clock_on_record {
            self.now_nanos()
        } else {
            0
        };
        let failure = self.is_failure(started, now, outcome);
        if let Some(reason) = self.counters.record(failure, now) {
            self.transition(
                |w| w.state() == CircuitState::Closed && w.generation() == generation,
                CircuitState::Open,
                0,
                reason,
            );
        }
    }

    fn record_half_open(&self, generation: u64, started: u64, outcome: Outcome) {
        let same = |w: Word| w.state() == CircuitState::HalfOpen && w.generation() == generation;
        match outcome {
            Outcome::Ignored => {
                let mut word = self.load();
                while same(word) && word.inflight() > 0 {
                    match self.word.compare_exchange_weak(
                        word.0,
                        word.0 - INFLIGHT_ONE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return,
                        Err(actual) => word = Word(actual),
                    }
                }
            }
            Outcome::Success | Outcome::Failure => {
                if !same(self.load()) {
                    return;
                }
                let now = if self.slow_nanos != u64::MAX {
                    self.now_nanos()
                } else {
                    0
                };
                if self.is_failure(started, now, outcome) {
                    self.transition(same, CircuitState::Open, 0, "probe failed");
                } else {
                    self.transition(same, CircuitState::Closed, 0, "probe succeeded");
                }
            }
        }
    }

    /// Moves to `to` if the current word passes `accept`, one generation on, with
    /// `inflight` half-open reservations. Returns the new word, or `None` if `accept`
    /// refused (someone else moved first). Listeners run after the lock is released.
    fn transition(
        &self,
        accept: impl Fn(Word) -> bool,
        to: CircuitState,
        inflight: u32,
        reason: &'static str,
    ) -> Option<Word> {
        let guard = lock(&self.transition_lock);
        let at = Instant::now();
        let mut current = self.load();
        let next = loop {
            if !accept(current) {
                return None;
            }
            let next = current.next(to, inflight);
            match to {
                CircuitState::Open => self.opened_at.store(self.nanos_at(at), Ordering::Release),
                CircuitState::Closed => self.counters.clear(),
                _ => {}
            }
            // Only half-open reservations change the word outside this lock, so this
            // loop ends as soon as they settle.
            match self
                .word
                .compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break next,
                Err(actual) => current = Word(actual),
            }
        };
        self.watch.send_replace(to);
        lock(&self.pending).push_back(Transition {
            breaker: self.name.clone(),
            from: current.state(),
            to,
            generation: next.generation(),
            reason,
            at,
        });
        drop(guard);
        self.drain_notifications();
        Some(next)
    }
}

/// Locks a mutex, ignoring poisoning: nothing that can panic runs under these locks, and
/// their data stays consistent at every step anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`].
///
/// Report the call's outcome with one of the `record_*` methods. A permit dropped without
/// a record (say, its future was cancelled) counts as [`record_ignored`](Self::record_ignored).
/// A permit issued in an older generation than the breaker's current one changes nothing.
#[must_use = "a permit should be given the call's outcome; dropping it records nothing"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    kind: CircuitState,
    /// Nanoseconds since the breaker's base when issued; only set when slow calls count.
    started: u64,
    done: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("generation", &self.generation)
            .field("state", &self.kind)
            .finish()
    }
}

impl Permit<'_> {
    /// The call succeeded (it still counts as a failure if it was slower than
    /// `slow_call_threshold`). In HalfOpen this closes the breaker.
    #[inline]
    pub fn record_success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The call failed in a way that says the backend is unhealthy (unavailable, timeout,
    /// busy). In HalfOpen this re-opens the breaker.
    #[inline]
    pub fn record_failure(mut self) {
        self.finish(Outcome::Failure);
    }

    /// The outcome says nothing about the backend's health (the caller gave up, the
    /// request was invalid before it was sent, …). Releases a half-open slot and changes
    /// nothing else.
    #[inline]
    pub fn record_ignored(mut self) {
        self.finish(Outcome::Ignored);
    }

    /// The call failed with `kind`: a failure if [`ErrorClass::counts_for_breaker`](crate::ErrorClass::counts_for_breaker), else a
    /// success, because the server answered. WRONGTYPE, syntax errors, NOAUTH and the like
    /// therefore never open the breaker.
    #[inline]
    pub fn record_error(mut self, kind: ErrorKind) {
        self.finish(if kind.class().counts_for_breaker() {
            Outcome::Failure
        } else {
            Outcome::Success
        });
    }

    /// The generation this permit was issued in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The state that admitted this call: `Closed`, `HalfOpen` (a probe) or `Disabled`.
    pub fn state(&self) -> CircuitState {
        self.kind
    }

    #[inline]
    fn finish(&mut self, outcome: Outcome) {
        if !self.done {
            self.done = true;
            self.breaker
                .record(self.generation, self.kind, self.started, outcome);
        }
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.finish(Outcome::Ignored);
    }
}
