//! The breaker's hot paths never touch the heap: a counting global allocator watches
//! 10,000 admit+record calls on a Closed breaker and 10,000 rejections by an Open one.

#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use resilience_core::ErrorKind;
use resilience_core::{
    CircuitBreaker, CircuitBreakerConfig, CircuitState, FailurePolicy, RateWindow,
};

/// Counts this thread's allocations (tests run on several threads at once).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: during thread teardown the slot may be gone; don't count then.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const CALLS: usize = 10_000;

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_during(|| {
        let v: Vec<u64> = Vec::with_capacity(16);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1, "the counting allocator must work for the tests below");
}

#[test]
fn closed_fast_path_does_not_allocate() {
    for config in [
        CircuitBreakerConfig::default(),
        CircuitBreakerConfig::default().with_policy(FailurePolicy::FailureRate {
            window: RateWindow::Count(100),
            min_calls: 10,
            failure_rate: 0.5,
        }),
        CircuitBreakerConfig::default()
            .with_policy(FailurePolicy::FailureRate {
                window: RateWindow::Time(Duration::from_secs(10)),
                min_calls: 10,
                failure_rate: 0.5,
            })
            .with_slow_call_threshold(Duration::from_secs(5)),
    ] {
        let breaker = CircuitBreaker::new("alloc", config);
        // Warm up anything lazily initialised (thread-locals, the clock).
        breaker.try_acquire().unwrap().record_success();
        let n = allocations_during(|| {
            for i in 0..CALLS {
                let permit = breaker.try_acquire().expect("closed");
                match i % 4 {
                    0 => permit.record_success(),
                    1 => permit.record_error(ErrorKind::Server),
                    2 => permit.record_ignored(),
                    _ => drop(permit),
                }
            }
        });
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert_eq!(n, 0, "{:?}: {n} allocations", breaker.config().policy);
    }
}

#[test]
fn open_rejection_does_not_allocate() {
    let breaker = CircuitBreaker::new("alloc-open", CircuitBreakerConfig::default());
    for _ in 0..3 {
        breaker.try_acquire().unwrap().record_failure();
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    breaker.try_acquire().unwrap_err();
    let mut rejected = 0;
    let n = allocations_during(|| {
        for _ in 0..CALLS {
            rejected += usize::from(breaker.try_acquire().is_err());
        }
    });
    assert_eq!(rejected, CALLS);
    assert_eq!(n, 0, "{n} allocations while rejecting");

    breaker.force_open();
    let n = allocations_during(|| {
        for _ in 0..CALLS {
            rejected += usize::from(breaker.try_acquire().is_err());
        }
    });
    assert_eq!(rejected, 2 * CALLS);
    assert_eq!(n, 0, "{n} allocations while forced open");
}
