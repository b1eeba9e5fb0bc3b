//! Telling the world about transitions: tracing, metrics and user listeners.
//!
//! A transition is queued while the transition lock is held (so the queue is in transition
//! order) and delivered after it is released. Whichever thread finds nobody delivering
//! becomes the deliverer and empties the queue; everyone else returns at once. So
//! listeners see transitions in order, run with no breaker lock held (a listener may call
//! [`force_open`](super::CircuitBreaker::force_open) or register another listener without
//! deadlocking; its own transition is delivered right after it returns), and one slow
//! listener delays only the thread that is delivering.
//!
//! A listener that panics is caught (`catch_unwind`) and logged; the breaker and the other
//! listeners carry on. The panic message still goes through the process's panic hook.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::sync::AtomicBool;
use super::{CircuitBreaker, CircuitState, METRIC_STATE, METRIC_TRANSITIONS, Transition, lock};

impl CircuitBreaker {
    /// Calls `listener` with every later transition of this breaker, in order, from
    /// whichever thread made (or is delivering) the transition, with no breaker lock held.
    /// A panicking listener is caught and logged.
    pub fn on_transition(&self, listener: impl Fn(&Transition) + Send + Sync + 'static) {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next: Vec<_> = listeners.iter().cloned().collect();
        next.push(Arc::new(listener));
        *listeners = Arc::new(next);
    }

    pub(super) fn drain_notifications(&self) {
        loop {
            // Take the flag only if it is free. (A `swap(true)` would do the same; loom
            // 0.7 mis-models a plain store racing a `swap` (tokio-rs/loom#254) and reports a
            // stuck flag that cannot happen, so the model-checked form is this one.)
            if self
                .draining
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Someone else is delivering; they will see what we queued.
                return;
            }
            {
                // Clears the flag even if a tracing subscriber or metrics recorder panics,
                // so later transitions are still delivered.
                let _delivering = ClearOnDrop(&self.draining);
                loop {
                    let next = lock(&self.pending).pop_front();
                    let Some(transition) = next else { break };
                    self.emit(&transition);
                }
            }
            if lock(&self.pending).is_empty() {
                return;
            }
        }
    }

    fn emit(&self, t: &Transition) {
        if matches!(t.to, CircuitState::Open | CircuitState::ForcedOpen) {
            tracing::warn!(
                breaker = %t.breaker,
                from = t.from.as_str(),
                to = t.to.as_str(),
                generation = t.generation,
                reason = t.reason,
                "circuit breaker opened"
            );
        } else {
            tracing::info!(
                breaker = %t.breaker,
                from = t.from.as_str(),
                to = t.to.as_str(),
                generation = t.generation,
                reason = t.reason,
                "circuit breaker state changed"
            );
        }
        metrics::counter!(
            METRIC_TRANSITIONS,
            "breaker" => t.breaker.clone(),
            "from" => t.from.as_str(),
            "to" => t.to.as_str()
        )
        .increment(1);
        metrics::gauge!(METRIC_STATE, "breaker" => t.breaker.clone()).set(f64::from(t.to.code()));
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for listener in listeners.iter() {
            if catch_unwind(AssertUnwindSafe(|| listener(t))).is_err() {
                tracing::error!(
                    breaker = %t.breaker,
                    to = t.to.as_str(),
                    "a circuit breaker transition listener panicked; ignored"
                );
            }
        }
    }
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
