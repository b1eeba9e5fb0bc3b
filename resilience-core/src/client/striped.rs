//! A counter that many threads bump without sharing a cache line.
//!
//! Every call through a client counts itself. One `AtomicU64` for that would be written by
//! every worker thread on every call, and on a multi-core machine its cache line would
//! bounce between cores (tens to hundreds of nanoseconds per call under load, the cost of
//! the whole breaker several times over). Here each thread adds to one of a few stripes,
//! each on its own cache line, chosen once per thread; reading sums them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many stripes: threads beyond this share stripes (still far fewer bounces).
const STRIPES: usize = 8;

/// One stripe, alone on its cache line (128 bytes: two lines, for adjacent-line prefetch).
#[derive(Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A monotonically increasing count, cheap to bump from many threads at once.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

/// Hands each thread its stripe, round robin.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

impl StripedCounter {
    /// Adds one.
    #[inline]
    pub(crate) fn increment(&self) {
        let index = STRIPE.try_with(|s| *s).unwrap_or(0);
        self.stripes[index].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The total: every increment that happened before this call started is included.
    pub(crate) fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_every_increment_from_every_thread() {
        let counter = Arc::new(StripedCounter::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.increment();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.get(), 12_000);
    }

    #[test]
    fn stripes_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<Stripe>() >= 64);
        assert_eq!(std::mem::size_of::<Stripe>() % 64, 0);
    }
}
