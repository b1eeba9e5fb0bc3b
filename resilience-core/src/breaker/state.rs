//! The breaker's states, what a rejection and a transition look like, and how the state,
//! the half-open reservations and the generation share one `AtomicU64`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Where a [`CircuitBreaker`](super::CircuitBreaker) is.
///
/// ```text
///            threshold reached                reset_timeout elapsed
///  Closed ─────────────────────────▶ Open ───────────────────────────▶ HalfOpen
///    ▲                                ▲  ╰── health probe answers ──────▶ │
///    │                                ╰──────── probe failed ─────────────┤
///    ╰──────────────────────────── probe succeeded ───────────────────────╯
///
///  ForcedOpen and Disabled are entered and left only by hand
///  (force_open / disable / reset).
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls pass; failures are counted.
    Closed,
    /// Calls are rejected until `reset_timeout` has passed (or the health probe sees the
    /// backend answer).
    Open,
    /// At most `half_open_max_calls` probe calls are admitted; the first result decides.
    HalfOpen,
    /// Opened by hand: everything is rejected until [`reset`](super::CircuitBreaker::reset).
    /// The health probe leaves it alone.
    ForcedOpen,
    /// Switched off by hand: everything is admitted and nothing is recorded.
    Disabled,
}

impl CircuitState {
    /// A stable lower-case name, used in logs and metric labels:
    /// `closed`, `open`, `half_open`, `forced_open`, `disabled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::ForcedOpen => "forced_open",
            CircuitState::Disabled => "disabled",
        }
    }

    /// The value of the `resilience_breaker_state` gauge: 0 closed, 1 open, 2 half-open,
    /// 3 forced-open, 4 disabled.
    pub const fn code(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
            CircuitState::ForcedOpen => 3,
            CircuitState::Disabled => 4,
        }
    }

    /// Whether calls are rejected in this state (`Open` and `ForcedOpen`; `HalfOpen` only
    /// rejects once its probe slots are taken).
    pub const fn is_open(self) -> bool {
        matches!(self, CircuitState::Open | CircuitState::ForcedOpen)
    }

    const fn from_code(code: u64) -> CircuitState {
        match code {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            3 => CircuitState::ForcedOpen,
            _ => CircuitState::Disabled,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`try_acquire`](super::CircuitBreaker::try_acquire) said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The state that rejected the call: `Open`, `HalfOpen` (all probe slots taken) or
    /// `ForcedOpen`.
    pub state: CircuitState,
    /// How long until the breaker admits a probe by itself:
    ///
    /// - `Open`: the time left of `reset_timeout` (the health probe may close it sooner).
    /// - `HalfOpen`: zero; a probe is running and its result decides any moment now.
    /// - `ForcedOpen`: zero. The breaker never reopens by itself; only
    ///   [`reset`](super::CircuitBreaker::reset) does. Check `state` to tell this apart.
    pub retry_after: Duration,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker {}; retry after {:?}",
            self.state, self.retry_after
        )
    }
}

impl std::error::Error for Rejected {}

/// One change of state, as given to listeners registered with
/// [`on_transition`](super::CircuitBreaker::on_transition).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Transition {
    /// The breaker's name.
    pub breaker: Arc<str>,
    /// The state it left.
    pub from: CircuitState,
    /// The state it entered.
    pub to: CircuitState,
    /// The generation it entered (every transition adds one).
    pub generation: u64,
    /// Why, in a few words: `"failure threshold reached"`, `"failure rate exceeded"`,
    /// `"reset timeout elapsed"`, `"probe succeeded"`, `"probe failed"`, `"health probe"`,
    /// `"health probe succeeded"`, `"forced open"`, `"disabled"`, `"reset"`.
    pub reason: &'static str,
    /// When it happened (Tokio's clock, so paused-clock tests see virtual time).
    pub at: tokio::time::Instant,
}

// Layout of the state word: bits 0..4 the state, bits 4..24 the number of half-open permits
// outstanding, bits 24..64 the generation. One compare-exchange therefore changes state,
// reservations and generation together.
const STATE_BITS: u32 = 4;
const INFLIGHT_BITS: u32 = 20;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;
const INFLIGHT_SHIFT: u32 = STATE_BITS;
const INFLIGHT_MASK: u64 = ((1 << INFLIGHT_BITS) - 1) << INFLIGHT_SHIFT;
const GEN_SHIFT: u32 = STATE_BITS + INFLIGHT_BITS;

/// The largest `half_open_max_calls` the state word can count; larger values are clamped.
pub(crate) const MAX_HALF_OPEN_CALLS: u32 = (1 << INFLIGHT_BITS) - 1;

/// One half-open reservation, to add to or subtract from a word.
pub(super) const INFLIGHT_ONE: u64 = 1 << INFLIGHT_SHIFT;

/// A decoded view of the packed state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Word(pub(super) u64);

impl Word {
    pub(super) const fn new(state: CircuitState, inflight: u32, generation: u64) -> Word {
        Word(
            (state.code() as u64)
                | (((inflight as u64) << INFLIGHT_SHIFT) & INFLIGHT_MASK)
                | (generation << GEN_SHIFT),
        )
    }

    pub(super) const fn state(self) -> CircuitState {
        CircuitState::from_code(self.0 & STATE_MASK)
    }

    pub(super) const fn inflight(self) -> u32 {
        ((self.0 & INFLIGHT_MASK) >> INFLIGHT_SHIFT) as u32
    }

    pub(super) const fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }

    /// The word after a transition to `to` with `inflight` reservations, one generation on.
    /// The generation has 40 bits and wraps after about 10^12 transitions.
    pub(super) const fn next(self, to: CircuitState, inflight: u32) -> Word {
        Word::new(
            to,
            inflight,
            self.generation().wrapping_add(1) & ((1 << (64 - GEN_SHIFT)) - 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips() {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::ForcedOpen,
            CircuitState::Disabled,
        ] {
            let w = Word::new(state, 7, 123_456);
            assert_eq!(w.state(), state);
            assert_eq!(w.inflight(), 7);
            assert_eq!(w.generation(), 123_456);
            let n = w.next(CircuitState::HalfOpen, 1);
            assert_eq!(n.generation(), 123_457);
            assert_eq!(n.state(), CircuitState::HalfOpen);
            assert_eq!(Word(w.0 + INFLIGHT_ONE).inflight(), 8);
            assert_eq!(CircuitState::from_code(u64::from(state.code())), state);
        }
        let last = Word::new(CircuitState::Open, MAX_HALF_OPEN_CALLS, (1 << 40) - 1);
        assert_eq!(last.inflight(), MAX_HALF_OPEN_CALLS);
        assert_eq!(last.next(CircuitState::Closed, 0).generation(), 0);
    }
}
