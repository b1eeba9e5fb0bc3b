//! The active health probe: while the breaker is Open, ping the backend every
//! `health_check_interval` and close the breaker as soon as it answers.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use super::{CircuitBreaker, CircuitState};

impl CircuitBreaker {
    /// Spawns the health probe task for this breaker and returns its handle.
    ///
    /// The task holds only a `Weak` reference and a state receiver, so it ends by itself
    /// when the breaker is dropped (abort the handle to stop it sooner). While the breaker
    /// is not Open it sleeps on the state channel (no polling). While Open it waits
    /// `health_check_interval`, then runs `probe()` (typically a PING with a timeout); when
    /// the probe returns `true` and the breaker is still in the same Open period, it moves
    /// Open -> HalfOpen (reason `"health probe"`) and, that ping being a successful probe,
    /// HalfOpen -> Closed (reason `"health probe succeeded"`). A probe that panics counts as
    /// `false`. ForcedOpen and Disabled are left alone.
    ///
    /// Must be called from within a Tokio runtime (it uses `tokio::spawn`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use resilience_core::{CircuitBreaker, CircuitBreakerConfig};
    /// use resilience_core::{Command, KvBackend};
    ///
    /// fn watch_health(backend: Arc<dyn KvBackend>) -> Arc<CircuitBreaker> {
    ///     let breaker = Arc::new(CircuitBreaker::new("stm", CircuitBreakerConfig::default()));
    ///     breaker.spawn_health_probe(move || {
    ///         let backend = backend.clone();
    ///         async move {
    ///             let ping = backend.execute(Command::Ping);
    ///             matches!(tokio::time::timeout(Duration::from_secs(1), ping).await, Ok(Ok(_)))
    ///         }
    ///     });
    ///     breaker
    /// }
    /// ```
    pub fn spawn_health_probe<F, Fut>(self: &Arc<Self>, probe: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let weak = Arc::downgrade(self);
        let mut states = self.subscribe();
        let interval = self.config.health_check_interval;
        tokio::spawn(async move {
            loop {
                // Asleep until the breaker opens; Err = the breaker was dropped.
                if states.wait_for(|s| *s == CircuitState::Open).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        changed = states.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            // Re-opened or left Open: start over (re-checked below).
                            if *states.borrow_and_update() == CircuitState::Open {
                                continue;
                            }
                            break;
                        }
                    }
                    let generation = {
                        let Some(breaker) = weak.upgrade() else {
                            return;
                        };
                        let word = breaker.load();
                        if word.state() != CircuitState::Open {
                            break;
                        }
                        word.generation()
                    };
                    let healthy = AssertUnwindSafe(probe())
                        .catch_unwind()
                        .await
                        .unwrap_or(false);
                    let Some(breaker) = weak.upgrade() else {
                        return;
                    };
                    if healthy {
                        breaker.recovered_by_probe(generation);
                    }
                }
            }
        })
    }

    /// Open (in `generation`) -> HalfOpen -> Closed, after a successful health probe.
    fn recovered_by_probe(&self, generation: u64) {
        if let Some(half_open) = self.transition(
            |w| w.state() == CircuitState::Open && w.generation() == generation,
            CircuitState::HalfOpen,
            0,
            "health probe",
        ) {
            let generation = half_open.generation();
            self.transition(
                |w| w.state() == CircuitState::HalfOpen && w.generation() == generation,
                CircuitState::Closed,
                0,
                "health probe succeeded",
            );
        }
    }
}
