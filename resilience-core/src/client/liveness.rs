//! Idle-connection liveness: noticing, without waiting for a call, that the connection
//! under an idle client died silently.
//!
//! A connection that carries no calls says nothing about its health. A partition, a NAT
//! or load balancer that forgot the flow, or a frozen server host leaves an idle socket
//! "established" for as long as nobody writes to it, and a client-side cache over it goes
//! on trusting entries whose invalidations can no longer arrive. TCP keepalive cannot
//! help when the far end of the socket is a proxy that still answers for the dead server,
//! so the check is made where it cannot be fooled: in Redis's own protocol.
//!
//! While a client is idle, every [`LivenessConfig::idle_after`] in which no call ended, it
//! sends its health probe (`PING` unless
//! [`health_probe`](crate::ResilientClientBuilder::health_probe) says otherwise) to the
//! backend, bounded by [`LivenessConfig::timeout`]. When that probe fails as an outage
//! ([`ErrorClass::Outage`](crate::ErrorClass::Outage), a timeout included), the breaker
//! opens at once, with the reason `"idle connection did not answer"`:
//!
//! - the next call fails fast with [`Error::CircuitOpen`](crate::Error::CircuitOpen)
//!   instead of waiting out its socket timeout;
//! - the client-side cache stops serving entries as
//!   [`Cached`](crate::Freshness::Cached): `get_cached` answers them as
//!   [`Stale`](crate::Freshness::Stale), plain reads fail;
//! - the health probe closes the breaker as soon as the server answers again.
//!
//! A probe that timed out is left to run on to the backend's own timeout: a backend that
//! replaces a connection whose call timed out (both drivers do) replaces this one too, so
//! a socket that a partition cut for good is not kept until TCP gives up on it.
//!
//! So a connection that died while idle is noticed within `idle_after + timeout` (2 s with
//! the defaults, give or take the scheduler's milliseconds). A client that is busy sends no probe: its calls say whether the
//! connection works. Only backends whose calls cross a network connection
//! ([`KvBackend::is_networked`](crate::KvBackend::is_networked)) are watched, and the watch
//! runs in the Tokio runtime the client is built in; a client built outside a runtime is
//! not watched.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::Error;
use crate::breaker::CircuitState;

use super::state::ClientInner;

/// How an idle client checks its connection (see [`ResilientClientBuilder::liveness`]).
///
/// [`ResilientClientBuilder::liveness`]: crate::ResilientClientBuilder::liveness
#[derive(Clone, Copy, Debug, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct LivenessConfig {
    /// How long the client may go without a call ending before it sends a probe, and how
    /// often it checks. Default 1 s.
    pub idle_after: Duration,
    /// How long the probe may take before the connection counts as dead. Default 1 s.
    pub timeout: Duration,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            idle_after: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }
}

impl LivenessConfig {
    /// The longest a connection that died while idle goes unnoticed: `idle_after + timeout`.
    pub fn detection_bound(&self) -> Duration {
        self.idle_after.saturating_add(self.timeout)
    }

    /// Checks every setting: the first one out of range is an [`Error::InvalidInput`]
    /// naming it and saying why.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a zero `idle_after` (a probe between every two calls) or
    /// a zero `timeout` (every probe would fail).
    pub fn check(&self) -> Result<(), Error> {
        if self.idle_after.is_zero() {
            return Err(Error::InvalidInput(
                "liveness.idle_after: 0 would probe without pause; use 1 s or so, or turn liveness off".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::InvalidInput(
                "liveness.timeout: a probe given no time always fails; use about a second".into(),
            ));
        }
        Ok(())
    }
}

/// The reason the breaker gives when an idle probe failed.
pub(super) const REASON: &str = "idle connection did not answer";

impl ClientInner {
    /// Notes that a call ended with the server answering, for the liveness watch. A plain
    /// load first: on a busy client the flag is already set and its cache line stays
    /// shared between threads.
    #[inline(always)]
    pub(super) fn note_answered(&self) {
        if !self.answered.load(Ordering::Relaxed) {
            self.answered.store(true, Ordering::Relaxed);
        }
    }
}

/// The watch over an idle client's connection (see the module docs). Ends when the client
/// is dropped.
pub(super) async fn watch(client: Weak<ClientInner>, config: LivenessConfig) {
    let mut ticks = tokio::time::interval(config.idle_after);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (backend, probe, generation) = {
            let Some(inner) = client.upgrade() else {
                return;
            };
            // A call answered since the last tick, or the breaker is not closed (then the
            // health probe watches the server): nothing to ask.
            if inner.answered.swap(false, Ordering::Relaxed)
                || inner.breaker.state() != CircuitState::Closed
            {
                continue;
            }
            (
                Arc::clone(&inner.backend),
                inner.health_probe.clone(),
                inner.breaker.generation(),
            )
        };
        let mut reply = (*backend).execute(probe);
        let timed_out = match tokio::time::timeout(config.timeout, &mut reply).await {
            Ok(result) if is_answer(&result) => continue,
            Ok(_) => false,
            Err(_) => true,
        };
        {
            let Some(inner) = client.upgrade() else {
                return;
            };
            // A call answered while the probe waited: the connection works after all.
            if inner.answered.load(Ordering::Relaxed) {
                continue;
            }
            if inner.breaker.trip(generation, REASON) {
                tracing::warn!(client = %inner.name, timeout = ?config.timeout, "idle connection did not answer its probe: breaker open until the server answers again");
                inner.ensure_tasks();
            }
        }
        if timed_out {
            // The probe goes on to the backend's own timeout, which replaces a connection
            // that timed out: dropped here, the backend would never see it time out, and a
            // socket cut by a partition could stay in use until TCP gives up on it.
            let _ = tokio::time::timeout(LINGER, reply).await;
        }
    }
}

/// How long an unanswered probe is left to reach the backend's own timeout (a bound for a
/// backend that has none).
const LINGER: Duration = Duration::from_secs(60);

/// Whether a probe's outcome shows the server there: an answer, or a refusal (an error
/// that is not an outage).
fn is_answer(result: &Result<crate::Value, crate::BackendError>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => !e.kind().class().is_outage(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use async_trait::async_trait;

    use super::*;
    use crate::{BackendError, Command, KvBackend, ResilientClient, Value};

    /// A networked backend whose link can be cut: then nothing it is sent is ever answered.
    #[derive(Default)]
    struct Link {
        cut: AtomicBool,
        pings: AtomicUsize,
        networked: bool,
    }

    impl Link {
        fn networked() -> Arc<Link> {
            Arc::new(Link {
                networked: true,
                ..Link::default()
            })
        }
    }

    #[async_trait]
    impl KvBackend for Link {
        async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
            if matches!(cmd, Command::Ping) {
                self.pings.fetch_add(1, Ordering::Relaxed);
            }
            if self.cut.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
            Ok(Value::Status("PONG".into()))
        }

        async fn execute_batch(
            &self,
            cmds: Vec<Command>,
            _atomic: bool,
        ) -> Result<Vec<Value>, BackendError> {
            Ok(cmds.iter().map(|_| Value::Okay).collect())
        }

        fn name(&self) -> &'static str {
            "link"
        }

        fn is_networked(&self) -> bool {
            self.networked
        }
    }

    fn client(link: &Arc<Link>, liveness: Option<LivenessConfig>) -> ResilientClient {
        ResilientClient::builder_arc("liveness", Arc::clone(link) as Arc<dyn KvBackend>)
            .liveness(liveness)
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_client_opens_its_breaker_within_the_bound_when_its_link_dies() {
        let link = Link::networked();
        let client = client(&link, Some(LivenessConfig::default()));
        // Idle with a live link: probes answered, the breaker stays closed.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(link.pings.load(Ordering::Relaxed) >= 2);
        assert_eq!(client.circuit_state(), CircuitState::Closed);

        link.cut.store(true, Ordering::Relaxed);
        let cut = tokio::time::Instant::now();
        let bound = LivenessConfig::default().detection_bound();
        while client.circuit_state() == CircuitState::Closed {
            assert!(cut.elapsed() <= bound, "not noticed within {bound:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(client.circuit_state(), CircuitState::Open);
        // The next call fails at once, without waiting on the dead link.
        assert!(matches!(
            client.ping().await,
            Err(Error::CircuitOpen { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_client_sends_no_probe() {
        let link = Link::networked();
        let client = client(&link, Some(LivenessConfig::default()));
        for _ in 0..50 {
            client.get("k").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(link.pings.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn no_probe_when_liveness_is_off_or_the_backend_is_in_process() {
        let off = Link::networked();
        let _off = client(&off, None);
        let local = Arc::new(Link::default());
        let _local = client(&local, Some(LivenessConfig::default()));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(off.pings.load(Ordering::Relaxed), 0);
        assert_eq!(local.pings.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn settings_out_of_range_are_refused_by_name() {
        let zero_idle = LivenessConfig::default().with_idle_after(Duration::ZERO);
        let error = zero_idle.check().unwrap_err().to_string();
        assert!(error.contains("liveness.idle_after"), "{error}");
        let zero_timeout = LivenessConfig::default().with_timeout(Duration::ZERO);
        let error = zero_timeout.check().unwrap_err().to_string();
        assert!(error.contains("liveness.timeout"), "{error}");
        assert!(LivenessConfig::default().check().is_ok());
        assert_eq!(
            LivenessConfig::default().detection_bound(),
            Duration::from_secs(2)
        );
    }
}
