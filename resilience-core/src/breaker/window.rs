//! The Closed-state failure counters, one kind per [`FailurePolicy`], all lock-free.
//!
//! - Consecutive failures: one `AtomicU32`. A success only writes it when it is not already
//!   zero, so a healthy stream of successes never bounces the cache line between cores.
//! - Count window: a ring of N `AtomicU8` slots (empty / success / failure), a sequence
//!   number that hands out slots, and a running failure count adjusted by each slot swap.
//! - Time window: `TIME_BUCKETS` buckets, each an epoch plus call and failure counts; a
//!   bucket whose epoch is stale is reset by whoever first writes into it.
//!
//! Being lock-free, concurrent updates are only approximately ordered: at a bucket
//! rollover, or while the counters are cleared on entering Closed, an outcome recorded at
//! that very instant may be lost or counted in the new period. A breaker only needs a good
//! estimate of health, and nothing here can go out of range.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::config::{FailurePolicy, RateWindow};

/// How many buckets a [`RateWindow::Time`] window is split into.
pub(crate) const TIME_BUCKETS: usize = 20;

const REASON_CONSECUTIVE: &str = "failure threshold reached";
const REASON_RATE: &str = "failure rate exceeded";

const SLOT_EMPTY: u8 = 0;
const SLOT_SUCCESS: u8 = 1;
const SLOT_FAILURE: u8 = 2;

pub(super) enum Counters {
    Consecutive {
        threshold: u32,
        failures: AtomicU32,
    },
    Count {
        slots: Box<[AtomicU8]>,
        seq: AtomicU64,
        failures: AtomicI64,
        min_calls: u32,
        rate: f64,
    },
    Time {
        buckets: Box<[Bucket]>,
        width_nanos: u64,
        min_calls: u32,
        rate: f64,
    },
}

pub(super) struct Bucket {
    /// `time / width + 1` of the period this bucket counts; 0 = never used.
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
}

impl Counters {
    /// Counters for an already normalized policy.
    pub(super) fn new(policy: &FailurePolicy) -> Counters {
        match *policy {
            FailurePolicy::ConsecutiveFailures { threshold } => Counters::Consecutive {
                threshold,
                failures: AtomicU32::new(0),
            },
            FailurePolicy::FailureRate {
                window: RateWindow::Count(n),
                min_calls,
                failure_rate,
            } => Counters::Count {
                slots: (0..n).map(|_| AtomicU8::new(SLOT_EMPTY)).collect(),
                seq: AtomicU64::new(0),
                failures: AtomicI64::new(0),
                min_calls,
                rate: failure_rate,
            },
            FailurePolicy::FailureRate {
                window: RateWindow::Time(d),
                min_calls,
                failure_rate,
            } => Counters::Time {
                buckets: (0..TIME_BUCKETS)
                    .map(|_| Bucket {
                        epoch: AtomicU64::new(0),
                        calls: AtomicU32::new(0),
                        failures: AtomicU32::new(0),
                    })
                    .collect(),
                width_nanos: duration_nanos(d / TIME_BUCKETS as u32).max(1),
                min_calls,
                rate: failure_rate,
            },
        }
    }

    /// Whether [`record`](Self::record) needs the current time.
    pub(super) fn needs_clock(&self) -> bool {
        matches!(self, Counters::Time { .. })
    }

    /// Counts one outcome; `Some(reason)` when the breaker should now open.
    /// `now_nanos` is only read by a time window.
    #[inline]
    pub(super) fn record(&self, failure: bool, now_nanos: u64) -> Option<&'static str> {
        match self {
            Counters::Consecutive {
                threshold,
                failures,
            } => {
                if failure {
                    let n = failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                    (n >= *threshold).then_some(REASON_CONSECUTIVE)
                } else {
                    if failures.load(Ordering::Relaxed) != 0 {
                        failures.store(0, Ordering::Release);
                    }
                    None
                }
            }
            Counters::Count {
                slots,
                seq,
                failures,
                min_calls,
                rate,
            } => {
                let idx = seq.fetch_add(1, Ordering::AcqRel);
                let len = slots.len() as u64;
                let slot = &slots[(idx % len) as usize];
                let new = if failure { SLOT_FAILURE } else { SLOT_SUCCESS };
                let prev = slot.swap(new, Ordering::AcqRel);
                let delta = i64::from(new == SLOT_FAILURE) - i64::from(prev == SLOT_FAILURE);
                let fails = if delta == 0 {
                    failures.load(Ordering::Acquire)
                } else {
                    failures.fetch_add(delta, Ordering::AcqRel) + delta
                };
                let calls = idx.saturating_add(1).min(len);
                exceeds(fails, calls, *min_calls, *rate)
            }
            Counters::Time {
                buckets,
                width_nanos,
                min_calls,
                rate,
            } => {
                let epoch = now_nanos / width_nanos + 1;
                let bucket = &buckets[(epoch % TIME_BUCKETS as u64) as usize];
                let seen = bucket.epoch.load(Ordering::Acquire);
                if seen < epoch
                    && bucket
                        .epoch
                        .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    bucket.calls.store(0, Ordering::Release);
                    bucket.failures.store(0, Ordering::Release);
                }
                bucket.calls.fetch_add(1, Ordering::AcqRel);
                if failure {
                    bucket.failures.fetch_add(1, Ordering::AcqRel);
                }
                let (mut calls, mut fails) = (0u64, 0i64);
                for b in buckets.iter() {
                    let e = b.epoch.load(Ordering::Acquire);
                    if e != 0 && e <= epoch && e + TIME_BUCKETS as u64 > epoch {
                        calls += u64::from(b.calls.load(Ordering::Acquire));
                        fails += i64::from(b.failures.load(Ordering::Acquire));
                    }
                }
                exceeds(fails, calls, *min_calls, *rate)
            }
        }
    }

    /// Forgets every outcome (on entering Closed).
    pub(super) fn clear(&self) {
        match self {
            Counters::Consecutive { failures, .. } => failures.store(0, Ordering::Release),
            Counters::Count {
                slots,
                seq,
                failures,
                ..
            } => {
                seq.store(0, Ordering::Release);
                for s in slots.iter() {
                    s.store(SLOT_EMPTY, Ordering::Release);
                }
                failures.store(0, Ordering::Release);
            }
            Counters::Time { buckets, .. } => {
                for b in buckets.iter() {
                    b.epoch.store(0, Ordering::Release);
                    b.calls.store(0, Ordering::Release);
                    b.failures.store(0, Ordering::Release);
                }
            }
        }
    }
}

/// At least one failure, at least `min_calls` calls, and a failure share of at least `rate`.
#[inline]
fn exceeds(fails: i64, calls: u64, min_calls: u32, rate: f64) -> Option<&'static str> {
    if fails <= 0 || calls < u64::from(min_calls) || calls == 0 {
        return None;
    }
    (fails as f64 / calls as f64 >= rate).then_some(REASON_RATE)
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(super) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
