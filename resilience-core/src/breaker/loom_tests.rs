//! Model-checked races of the breaker (loom): every interleaving, up to a preemption bound,
//! of concurrent `try_acquire`, probe records, `force_open` and `reset`.
//!
//! Built only with `--cfg resilience_loom` (see [`super::sync`]):
//!
//! ```text
//! RUSTFLAGS="--cfg resilience_loom" cargo test -p resilience-core --release --lib loom
//! ```
//!
//! Time is kept out of the model: `reset_timeout` is zero (an Open breaker half-opens on the
//! next call, whatever the clock says) so every execution is deterministic.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use loom::thread;

use super::*;

fn breaker(half_open_max_calls: u32) -> Arc<CircuitBreaker> {
    Arc::new(CircuitBreaker::new(
        "loom",
        CircuitBreakerConfig {
            policy: FailurePolicy::ConsecutiveFailures { threshold: 1 },
            reset_timeout: Duration::ZERO,
            half_open_max_calls,
            ..CircuitBreakerConfig::default()
        },
    ))
}

/// Runs `f` under every interleaving loom explores (preemption bound 3 unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise) and prints how many there were.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
    assert!(runs > 1, "loom explored only {runs} interleaving");
    println!("loom explored {runs} interleavings");
}

/// Half-open permits outstanding per generation, as the callers see them.
#[derive(Default)]
struct Outstanding(StdMutex<HashMap<u64, u32>>);

impl Outstanding {
    fn take(&self, generation: u64, limit: u32) {
        let mut map = self.0.lock().unwrap();
        let n = map.entry(generation).or_insert(0);
        *n += 1;
        assert!(
            *n <= limit,
            "{n} half-open permits outstanding in generation {generation}, limit {limit}"
        );
    }

    fn give_back(&self, generation: u64) {
        *self.0.lock().unwrap().get_mut(&generation).unwrap() -= 1;
    }
}

/// Three callers race for probe slots on an Open breaker whose reset timeout has passed;
/// each probe then succeeds, fails or is ignored. In no interleaving do more than `limit`
/// half-open permits of one generation exist at once.
fn half_open_admits_never_exceed(limit: u32) {
    model(move || {
        let b = breaker(limit);
        b.try_acquire().unwrap().record_failure();
        assert_eq!(b.state(), CircuitState::Open);
        let outstanding = Arc::new(Outstanding::default());
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let (b, outstanding) = (b.clone(), outstanding.clone());
                thread::spawn(move || {
                    let Ok(permit) = b.try_acquire() else {
                        return;
                    };
                    if permit.state() != CircuitState::HalfOpen {
                        return permit.record_ignored();
                    }
                    let generation = permit.generation();
                    outstanding.take(generation, limit);
                    thread::yield_now();
                    outstanding.give_back(generation);
                    match i {
                        0 => permit.record_success(),
                        1 => permit.record_failure(),
                        _ => permit.record_ignored(),
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(matches!(
            b.state(),
            CircuitState::Closed | CircuitState::Open | CircuitState::HalfOpen
        ));
    });
}

#[test]
fn loom_half_open_admits_never_exceed_one() {
    half_open_admits_never_exceed(1);
}

#[test]
fn loom_half_open_admits_never_exceed_two() {
    half_open_admits_never_exceed(2);
}

/// A probe's success, a probe's failure and a manual force-open/reset race. Listeners see
/// every transition exactly once, in order: generations 1, 2, 3, … with each `from` the
/// previous `to`, ending at the breaker's state, which the watch channel agrees with.
#[test]
fn loom_no_transition_is_lost_under_races() {
    model(|| {
        let b = breaker(1);
        let seen: Arc<StdMutex<Vec<Transition>>> = Arc::default();
        {
            let seen = seen.clone();
            b.on_transition(move |t| seen.lock().unwrap().push(t.clone()));
        }
        let watch = b.subscribe();
        b.try_acquire().unwrap().record_failure(); // Closed -> Open (generation 1)

        let prober = {
            let b = b.clone();
            thread::spawn(move || {
                // Open -> HalfOpen, then the probe's result.
                if let Ok(p) = b.try_acquire() {
                    p.record_success();
                }
            })
        };
        let failer = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(p) = b.try_acquire() {
                    p.record_failure();
                }
            })
        };
        b.force_open();
        b.reset();
        prober.join().unwrap();
        failer.join().unwrap();

        // One more transition after the race: it must be delivered too (a stuck delivery
        // flag would swallow it).
        b.disable();
        let seen = seen.lock().unwrap();
        let stuck = lock(&b.pending).len();
        let draining = b.draining.swap(false, Ordering::SeqCst);
        assert_eq!((stuck, draining), (0, false), "undelivered: {seen:?}");
        let mut from = CircuitState::Closed;
        for (i, t) in seen.iter().enumerate() {
            assert_eq!(t.generation, i as u64 + 1, "{seen:?}");
            assert_eq!(t.from, from, "{seen:?}");
            from = t.to;
        }
        assert_eq!(seen.len() as u64, b.generation(), "{seen:?}");
        assert_eq!(from, b.state(), "{seen:?}");
        assert_eq!(*watch.borrow(), b.state());
    });
}
