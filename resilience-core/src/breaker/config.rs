//! How a breaker decides: [`CircuitBreakerConfig`], [`FailurePolicy`] and [`RateWindow`].

use std::time::Duration;

/// Settings of a [`CircuitBreaker`](super::CircuitBreaker).
///
/// [`check`](Self::check) says which setting is out of range and why; a client's
/// [`build`](crate::ResilientClientBuilder::build) refuses such a configuration. A
/// [`CircuitBreaker`](super::CircuitBreaker) built directly brings the values into range
/// instead ([`normalized`](Self::normalized)), and
/// [`config`](super::CircuitBreaker::config) returns what it uses.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`CircuitBreakerConfig::default().with_…(…)`), or assign fields of a default value.
#[derive(Clone, Debug, PartialEq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct CircuitBreakerConfig {
    /// When Closed turns into Open. Default
    /// `ConsecutiveFailures { threshold: 3 }` (`circuit_threshold`).
    pub policy: FailurePolicy,
    /// How long it stays Open before admitting a probe. Default 300 s (
    /// `circuit_reset_timeout`).
    pub reset_timeout: Duration,
    /// How many probe calls HalfOpen admits at once. Default 1.
    pub half_open_max_calls: u32,
    /// `Some(d)`: a call that succeeded but took longer than `d` counts as a failure.
    /// Default `None`.
    #[setters(strip_option)]
    pub slow_call_threshold: Option<Duration>,
    /// How often the health probe (if spawned) pings while Open. Default 1 s.
    pub health_check_interval: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            policy: FailurePolicy::default(),
            reset_timeout: Duration::from_secs(300),
            half_open_max_calls: 1,
            slow_call_threshold: None,
            health_check_interval: Duration::from_secs(1),
        }
    }
}

impl CircuitBreakerConfig {
    /// The consecutive-failure policy: `threshold` counted failures in a row open the
    /// breaker (`circuit_threshold`; default 3).
    pub fn circuit_threshold(mut self, threshold: u32) -> Self {
        self.policy = FailurePolicy::ConsecutiveFailures { threshold };
        self
    }

    /// How long the breaker stays open before admitting a probe (`circuit_reset_timeout`;
    /// default 300 s). The health probe usually closes it much sooner.
    pub fn circuit_reset_timeout(mut self, timeout: Duration) -> Self {
        self.reset_timeout = timeout;
        self
    }

    /// Checks every setting: the first one out of range is an
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming it and saying why.
    pub fn check(&self) -> Result<(), crate::Error> {
        let bad = |setting: &str, why: &str| {
            Err(crate::Error::InvalidInput(format!(
                "breaker.{setting}: {why}"
            )))
        };
        match &self.policy {
            FailurePolicy::ConsecutiveFailures { threshold: 0 } => {
                return bad(
                    "circuit_threshold",
                    "0 failures would open the breaker before any call; use 1 or more",
                );
            }
            FailurePolicy::ConsecutiveFailures { .. } => {}
            FailurePolicy::FailureRate {
                window,
                min_calls,
                failure_rate,
            } => {
                match *window {
                    RateWindow::Count(0) => {
                        return bad(
                            "policy.window",
                            "a window of 0 calls holds none; use 1 or more",
                        );
                    }
                    RateWindow::Time(d) if d < Duration::from_millis(1) => {
                        return bad("policy.window", "a time window must be at least 1 ms");
                    }
                    RateWindow::Count(n) if *min_calls > n => {
                        return bad(
                            "policy.min_calls",
                            "more than the count window holds, so it would never open",
                        );
                    }
                    _ => {}
                }
                if *min_calls == 0 {
                    return bad("policy.min_calls", "use 1 or more");
                }
                if !(0.0..=1.0).contains(failure_rate) {
                    return bad(
                        "policy.failure_rate",
                        "a share of calls, 0.0 to 1.0 (not NaN)",
                    );
                }
            }
        }
        if !(1..=super::state::MAX_HALF_OPEN_CALLS).contains(&self.half_open_max_calls) {
            return bad(
                "half_open_max_calls",
                &format!(
                    "1 to {} probe calls at once",
                    super::state::MAX_HALF_OPEN_CALLS
                ),
            );
        }
        if self.health_check_interval.is_zero() {
            return bad(
                "health_check_interval",
                "a zero interval would probe without pause; use 1 ms or more",
            );
        }
        Ok(())
    }

    /// The same settings with every value brought into range: a threshold, `min_calls`,
    /// window size or `half_open_max_calls` of 0 becomes 1, `half_open_max_calls` above
    /// the most a breaker admits becomes that, a `failure_rate` outside `0.0..=1.0` (or
    /// NaN) is clamped into it (NaN becomes 1.0), a time window below 1 ms becomes 1 ms,
    /// and a zero `health_check_interval` becomes 1 ms.
    pub fn normalized(mut self) -> Self {
        self.policy = match self.policy {
            FailurePolicy::ConsecutiveFailures { threshold } => {
                FailurePolicy::ConsecutiveFailures {
                    threshold: threshold.max(1),
                }
            }
            FailurePolicy::FailureRate {
                window,
                min_calls,
                failure_rate,
            } => {
                let window = match window {
                    RateWindow::Count(n) => RateWindow::Count(n.max(1)),
                    RateWindow::Time(d) => RateWindow::Time(d.max(Duration::from_millis(1))),
                };
                let min_calls = match window {
                    // A count window never holds more than its size.
                    RateWindow::Count(n) => min_calls.clamp(1, n),
                    RateWindow::Time(_) => min_calls.max(1),
                };
                let failure_rate = if failure_rate.is_nan() {
                    1.0
                } else {
                    failure_rate.clamp(0.0, 1.0)
                };
                FailurePolicy::FailureRate {
                    window,
                    min_calls,
                    failure_rate,
                }
            }
        };
        self.half_open_max_calls = self
            .half_open_max_calls
            .clamp(1, super::state::MAX_HALF_OPEN_CALLS);
        if self.health_check_interval.is_zero() {
            self.health_check_interval = Duration::from_millis(1);
        }
        self
    }
}

/// When a Closed breaker opens.
#[derive(Clone, Debug, PartialEq)]
pub enum FailurePolicy {
    /// After `threshold` counted failures in a row; any success starts the count again.
    ConsecutiveFailures {
        /// How many failures in a row open the breaker.
        threshold: u32,
    },
    /// When, among the calls in `window`, at least `min_calls` were seen and the share of
    /// failures is at least `failure_rate`.
    FailureRate {
        /// Which calls count: the last N, or those of the last duration.
        window: RateWindow,
        /// No decision before this many calls are in the window (clamped to the window size
        /// for a count window).
        min_calls: u32,
        /// The share of failures, `0.0..=1.0`, at or above which it opens.
        failure_rate: f64,
    },
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy::ConsecutiveFailures { threshold: 3 }
    }
}

/// The window a [`FailurePolicy::FailureRate`] looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateWindow {
    /// The last N recorded calls (a lock-free ring of N slots).
    Count(u32),
    /// The calls recorded in the last duration, kept in
    /// 20 buckets of `duration / 20` each:
    /// the window actually summed covers between 19/20 of the
    /// duration and all of it.
    Time(Duration),
}
