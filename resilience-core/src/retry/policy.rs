//! [`RetryPolicy`]: how many times to retry and how long to wait before each retry.
//!
//! A policy is plain data. [`RetryPolicy::nominal_delay`] is the deterministic schedule
//! `min(max_delay, base_delay * backoff_factor^n)`; [`RetryPolicy::backoff`] hands out a fresh
//! [`Backoff`] iterator per call, which applies the policy's [`Jitter`] to that schedule.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How a [`Backoff`] randomises the nominal delay `d = nominal_delay(n)` of retry `n`.
///
/// Jitter spreads the retries of many clients that failed at the same moment (a Redis restart
/// fails every caller at once) so they do not come back in lock-step and knock the server over
/// again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomness: exactly `d`. This is the classic schedule; use it in tests that want exact
    /// delays, never in production fleets (synchronised retry storms).
    None,
    /// Uniform in `[0, d]`: the widest spread, but a retry may come back at once.
    Full,
    /// Uniform in `[d/2, d]`: the default. It spreads retries while keeping at least half of
    /// the nominal delay, so a struggling server still gets breathing room.
    #[default]
    Equal,
    /// AWS's "decorrelated jitter": `min(max_delay, uniform[base_delay, prev * 3])`, with
    /// `prev` starting at `base_delay` and then being the previous delay. It ignores
    /// `backoff_factor`; the growth comes from the `* 3`.
    Decorrelated,
}

/// The retry schedule: how many retries, and the delay before each.
///
/// Defaults: 3 retries, 1 s base delay, factor 2.0; plus a 30 s cap and
/// [`Jitter::Equal`]. With `Jitter::None` the default schedule is 1 s, 2 s, 4 s.
///
/// Every combination of field values is accepted; none panics. Odd values are interpreted as
/// documented on [`RetryPolicy::nominal_delay`].
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`RetryPolicy::default().with_…(…)`), or assign fields of a default value.
///
/// Three pieces, one concept each:
///
/// - [`RetryPolicy`] is the per-call schedule: at most `max_retries` retries,
///   the `n`-th after `min(max_delay, base_delay * backoff_factor^n)`, randomised by a
///   [`Jitter`]. [`RetryPolicy::backoff`] gives the delays of one call as a [`Backoff`]
///   iterator.
/// - [`RetryBudget`](crate::RetryBudget) is shared by all calls of a client and caps retries at a
///   fraction of recent calls plus a small floor, so an outage does not multiply the load on
///   a struggling server.
/// - [`retry_with`](crate::retry_with) runs an async operation under a policy and an optional
///   budget, waiting with `tokio::time::sleep` (never a blocking sleep), and says why it gave
///   up in a [`RetryError`](crate::RetryError).
///
/// What to retry is the caller's decision, passed as `should_retry`: the client uses
/// [`ErrorClass::may_retry`](crate::ErrorClass::may_retry) with the command's
/// idempotency, so only failures classified as retryable are retried.
///
/// ```
/// use std::time::Duration;
/// use resilience_core::{Jitter, RetryPolicy};
///
/// // The default schedule, without jitter: 1 s, 2 s, 4 s.
/// let policy = RetryPolicy::default().with_jitter(Jitter::None);
/// let delays: Vec<Duration> = policy.backoff().collect();
/// assert_eq!(delays, [1, 2, 4].map(Duration::from_secs));
///
/// // The default (Equal jitter) keeps each delay within [d/2, d].
/// for (n, d) in RetryPolicy::default().backoff().enumerate() {
///     let nominal = policy.nominal_delay(n as u32);
///     assert!(d >= nominal / 2 && d <= nominal);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct RetryPolicy {
    /// How many retries after the original attempt (so at most `1 + max_retries` attempts).
    /// Default 3.
    pub max_retries: u32,
    /// The nominal delay before the first retry. Default 1 s.
    pub base_delay: Duration,
    /// Each retry's nominal delay is the previous one times this. Default 2.0.
    /// At least 1.0: a backoff never shrinks ([`check`](Self::check) refuses less, and NaN;
    /// a [`Backoff`] made from such a policy treats it as 1.0). `+inf` is allowed and
    /// jumps straight to `max_delay` after the first retry.
    pub backoff_factor: f64,
    /// The cap on any single delay, jitter included. Default 30 s (the original Python
    /// client had no cap, so its delays grew without bound as `max_retries` grew).
    pub max_delay: Duration,
    /// How delays are randomised. Default [`Jitter::Equal`]: the original Python client had
    /// none, which makes every client that failed together retry together (a retry
    /// storm); `Equal` breaks the lock-step while keeping at least half of the nominal
    /// delay.
    pub jitter: Jitter,
    /// `Some(seed)` makes every [`Backoff`] from this policy draw the same sequence: for tests.
    /// `None` (the default) seeds each `Backoff` from the thread-local RNG.
    #[setters(strip_option)]
    pub seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            backoff_factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Equal,
            seed: None,
        }
    }
}

impl RetryPolicy {
    /// Checks every setting: the first one out of range is an
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming it and saying why.
    pub fn check(&self) -> Result<(), crate::Error> {
        let bad = |setting: &str, why: &str| {
            Err(crate::Error::InvalidInput(format!(
                "retry_policy.{setting}: {why}"
            )))
        };
        if self.backoff_factor.is_nan() || self.backoff_factor < 1.0 {
            return bad("backoff_factor", "at least 1.0: a backoff never shrinks");
        }
        if self.max_delay < self.base_delay {
            return bad(
                "max_delay",
                "below base_delay, so every delay would be cut to it; raise it or lower base_delay",
            );
        }
        Ok(())
    }

    /// A policy that never retries (`max_retries = 0`); other fields are the defaults.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The un-jittered delay before retry `retry` (counting from 0 for the first retry):
    /// `min(max_delay, base_delay * backoff_factor^retry)`.
    ///
    /// Never panics and never overflows: any product that is infinite, not a number, or
    /// beyond `max_delay` is `max_delay`. A `backoff_factor` that is NaN or below 1.0 counts
    /// as 1.0 (constant delay). A `base_delay` above `max_delay` gives `max_delay`.
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let factor = self.effective_factor();
        if self.base_delay >= self.max_delay {
            return self.max_delay;
        }
        if retry == 0 || factor == 1.0 || self.base_delay.is_zero() {
            return self.base_delay;
        }
        let secs = self.base_delay.as_secs_f64() * factor.powf(f64::from(retry));
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            return self.max_delay;
        }
        Duration::try_from_secs_f64(secs).map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// A fresh sequence of jittered delays for one call: it yields exactly `max_retries`
    /// delays, the `n`-th being the wait before retry `n`.
    pub fn backoff(&self) -> Backoff {
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_rng(&mut rand::rng()),
        };
        Backoff {
            policy: self.clone(),
            next_retry: 0,
            prev: self.base_delay,
            rng,
        }
    }

    /// `backoff_factor`, with NaN and values below 1.0 replaced by 1.0.
    fn effective_factor(&self) -> f64 {
        let f = self.backoff_factor;
        if f.is_nan() || f < 1.0 { 1.0 } else { f }
    }
}

/// The jittered delays of one call, from [`RetryPolicy::backoff`].
///
/// An iterator of exactly `max_retries` items: the `n`-th item (from 0) is how long to wait
/// before retry `n`. Each item is within the bounds [`Jitter`] documents and never above
/// `max_delay`. Creating and advancing it allocates nothing.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    next_retry: u32,
    /// The previous delay, for [`Jitter::Decorrelated`].
    prev: Duration,
    rng: SmallRng,
}

impl Backoff {
    /// How many delays are left.
    pub fn remaining(&self) -> u32 {
        self.policy.max_retries.saturating_sub(self.next_retry)
    }

    /// A uniform draw in `[lo, hi]` (returns `lo` when `hi <= lo`).
    fn uniform(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let u: f64 = self.rng.random_range(0.0..=1.0);
        let span = (hi - lo).as_secs_f64() * u;
        let d = Duration::try_from_secs_f64(span)
            .ok()
            .and_then(|s| lo.checked_add(s))
            .unwrap_or(hi);
        d.clamp(lo, hi)
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next_retry >= self.policy.max_retries {
            return None;
        }
        let n = self.next_retry;
        self.next_retry += 1;
        let max = self.policy.max_delay;
        let delay = match self.policy.jitter {
            Jitter::None => self.policy.nominal_delay(n),
            Jitter::Full => {
                let d = self.policy.nominal_delay(n);
                self.uniform(Duration::ZERO, d)
            }
            Jitter::Equal => {
                let d = self.policy.nominal_delay(n);
                self.uniform(d / 2, d)
            }
            Jitter::Decorrelated => {
                let base = self.policy.base_delay;
                let hi = self.prev.saturating_mul(3);
                let d = self.uniform(base, hi).min(max);
                self.prev = d;
                d
            }
        };
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining()).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Backoff {}

impl std::iter::FusedIterator for Backoff {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn defaults_are_the_seeds_plus_cap_and_equal_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries, 3);
        assert_eq!(p.base_delay, secs(1));
        assert_eq!(p.backoff_factor, 2.0);
        assert_eq!(p.max_delay, secs(30));
        assert_eq!(p.jitter, Jitter::Equal);
        assert_eq!(p.seed, None);
        assert_eq!(RetryPolicy::none().max_retries, 0);
        assert_eq!(RetryPolicy::none().backoff().count(), 0);
    }

    #[test]
    fn no_jitter_follows_base_times_factor_pow_n_capped() {
        let p = RetryPolicy {
            max_retries: 8,
            jitter: Jitter::None,
            ..RetryPolicy::default()
        };
        let delays: Vec<_> = p.backoff().collect();
        let expected: Vec<_> = [1, 2, 4, 8, 16, 30, 30, 30].map(secs).to_vec();
        assert_eq!(delays, expected);
        for n in 0..8 {
            assert_eq!(p.nominal_delay(n), expected[n as usize]);
        }
    }

    #[test]
    fn non_integer_factor_and_millisecond_base() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            backoff_factor: 1.5,
            max_delay: secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(p.nominal_delay(0), Duration::from_millis(100));
        assert_eq!(p.nominal_delay(1), Duration::from_millis(150));
        assert_eq!(p.nominal_delay(2), Duration::from_millis(225));
        assert_eq!(p.nominal_delay(10), secs(1));
    }

    #[test]
    fn odd_factors_are_treated_sanely() {
        let mk = |f: f64| RetryPolicy {
            backoff_factor: f,
            ..RetryPolicy::default()
        };
        for f in [f64::NAN, -2.0, 0.0, 0.5, f64::NEG_INFINITY] {
            for n in [0, 1, 5, u32::MAX] {
                assert_eq!(mk(f).nominal_delay(n), secs(1), "factor {f} retry {n}");
            }
        }
        let inf = mk(f64::INFINITY);
        assert_eq!(inf.nominal_delay(0), secs(1));
        assert_eq!(inf.nominal_delay(1), secs(30));
    }

    #[test]
    fn huge_values_saturate_at_max_delay_without_panicking() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::MAX,
            backoff_factor: f64::MAX,
            max_delay: Duration::MAX,
            jitter: Jitter::None,
            seed: Some(1),
        };
        assert_eq!(p.nominal_delay(u32::MAX), Duration::MAX);
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let d: Vec<_> = p.clone().with_jitter(jitter).backoff().collect();
            assert_eq!(d.len(), 5);
            assert!(d.iter().all(|d| *d <= Duration::MAX));
        }
        let p = RetryPolicy {
            backoff_factor: 1e300,
            ..RetryPolicy::default()
        };
        assert_eq!(p.nominal_delay(u32::MAX), secs(30));
        assert_eq!(p.nominal_delay(3), secs(30));
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            backoff_factor: f64::INFINITY,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.nominal_delay(7), Duration::ZERO);
        let capped_base = RetryPolicy {
            base_delay: secs(60),
            ..RetryPolicy::default()
        };
        assert_eq!(capped_base.nominal_delay(0), secs(30));
    }

    #[test]
    fn seeded_backoff_is_deterministic_and_unseeded_varies() {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let p = RetryPolicy {
                max_retries: 20,
                jitter,
                seed: Some(42),
                ..RetryPolicy::default()
            };
            let a: Vec<_> = p.backoff().collect();
            let b: Vec<_> = p.backoff().collect();
            assert_eq!(a, b, "{jitter:?}");
            let other: Vec<_> = p.clone().with_seed(43).backoff().collect();
            assert_ne!(a, other, "{jitter:?}: different seeds should differ");
        }
        // Unseeded: 20 draws of Full jitter over [0, 30 s] colliding exactly is impossible
        // in practice (probability ~0).
        let p = RetryPolicy {
            max_retries: 20,
            jitter: Jitter::Full,
            ..RetryPolicy::default()
        };
        let a: Vec<_> = p.backoff().collect();
        let b: Vec<_> = p.backoff().collect();
        assert_ne!(a, b);
    }

    #[test]
    fn backoff_yields_exactly_max_retries_and_is_fused() {
        for n in [0u32, 1, 3, 17] {
            let mut b = RetryPolicy::default().with_max_retries(n).backoff();
            assert_eq!(b.len(), n as usize);
            assert_eq!(b.by_ref().count(), n as usize);
            assert_eq!(b.next(), None);
            assert_eq!(b.remaining(), 0);
        }
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        // A constant 1 s nominal delay, 2000 seeded (so deterministic) draws per mode.
        let spread = |jitter| {
            let p = RetryPolicy {
                max_retries: 2000,
                backoff_factor: 1.0,
                jitter,
                seed: Some(2024),
                ..RetryPolicy::default()
            };
            let d: Vec<f64> = p.backoff().map(|d| d.as_secs_f64()).collect();
            let mean = d.iter().sum::<f64>() / d.len() as f64;
            let min = d.iter().copied().fold(f64::INFINITY, f64::min);
            let max = d.iter().copied().fold(0.0, f64::max);
            (min, mean, max)
        };
        let (min, mean, max) = spread(Jitter::Full);
        assert!(
            min < 0.01 && max > 0.99 && (0.45..0.55).contains(&mean),
            "{min} {mean} {max}"
        );
        let (min, mean, max) = spread(Jitter::Equal);
        assert!(
            (0.5..0.51).contains(&min) && max > 0.99,
            "{min} {mean} {max}"
        );
        assert!((0.72..0.78).contains(&mean), "{mean}");
        let (min, _, max) = spread(Jitter::Decorrelated);
        assert!(min >= 1.0 && max <= 30.0 && max > 10.0, "{min} {max}");
    }

    fn jitter_strategy() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
        ]
    }

    prop_compose! {
        fn policy_strategy()(
            max_retries in 0u32..40,
            base_ms in 0u64..5_000,
            backoff_factor in prop_oneof![0.0f64..10.0, Just(f64::NAN), Just(-1.0), Just(1e12)],
            max_ms in 0u64..120_000,
            jitter in jitter_strategy(),
            seed in any::<u64>(),
        ) -> RetryPolicy {
            RetryPolicy {
                max_retries,
                base_delay: Duration::from_millis(base_ms),
                backoff_factor,
                max_delay: Duration::from_millis(max_ms),
                jitter,
                seed: Some(seed),
            }
        }
    }

    proptest! {
        #[test]
        fn every_delay_stays_within_its_jitter_bounds(p in policy_strategy()) {
            let delays: Vec<_> = p.backoff().collect();
            prop_assert_eq!(delays.len(), p.max_retries as usize);
            let mut prev = p.base_delay;
            for (n, d) in delays.iter().copied().enumerate() {
                let nominal = p.nominal_delay(n as u32);
                prop_assert!(nominal <= p.max_delay);
                prop_assert!(d <= p.max_delay);
                match p.jitter {
                    Jitter::None => prop_assert_eq!(d, nominal),
                    Jitter::Full => prop_assert!(d <= nominal),
                    Jitter::Equal => prop_assert!(d >= nominal / 2 && d <= nominal),
                    Jitter::Decorrelated => {
                        let lo = p.base_delay.min(p.max_delay);
                        let hi = prev.saturating_mul(3).max(p.base_delay).min(p.max_delay);
                        prop_assert!(d >= lo && d <= hi, "{:?} not in [{:?}, {:?}]", d, lo, hi);
                        prev = d;
                    }
                }
            }
        }

        #[test]
        fn nominal_delay_is_monotonic_and_capped(p in policy_strategy(), n in 0u32..200) {
            prop_assert!(p.nominal_delay(n) <= p.nominal_delay(n + 1));
            prop_assert!(p.nominal_delay(n) <= p.max_delay);
        }
    }
}
