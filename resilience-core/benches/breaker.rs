//! Costs of the circuit breaker's hot paths.
//!
//! - `closed_fast_path`: `try_acquire` + `record_success` on a Closed breaker with the
//!   default policy (target: <= 50 ns).
//! - `open_rejection`: `try_acquire` on an Open breaker (target: <= 100 ns).
//! - `closed_fast_path_count_window`: the same with a failure-rate count window.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience_core::{CircuitBreaker, CircuitBreakerConfig, FailurePolicy, RateWindow};

fn closed_fast_path(c: &mut Criterion) {
    let breaker = CircuitBreaker::new("bench", CircuitBreakerConfig::default());
    c.bench_function("closed_fast_path", |b| {
        b.iter(|| {
            if let Ok(permit) = black_box(&breaker).try_acquire() {
                permit.record_success();
            }
        })
    });
    let breaker = CircuitBreaker::new(
        "bench-count",
        CircuitBreakerConfig::default().with_policy(FailurePolicy::FailureRate {
            window: RateWindow::Count(100),
            min_calls: 10,
            failure_rate: 0.5,
        }),
    );
    c.bench_function("closed_fast_path_count_window", |b| {
        b.iter(|| {
            if let Ok(permit) = black_box(&breaker).try_acquire() {
                permit.record_success();
            }
        })
    });
}

fn open_rejection(c: &mut Criterion) {
    let breaker = CircuitBreaker::new(
        "bench-open",
        CircuitBreakerConfig::default().with_reset_timeout(Duration::from_secs(3600)),
    );
    breaker.force_open();
    breaker.reset();
    for _ in 0..3 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.record_failure();
        }
    }
    assert!(breaker.try_acquire().is_err(), "the breaker must be open");
    c.bench_function("open_rejection", |b| {
        b.iter(|| black_box(black_box(&breaker).try_acquire().is_err()))
    });
}

criterion_group!(benches, closed_fast_path, open_rejection);
criterion_main!(benches);
