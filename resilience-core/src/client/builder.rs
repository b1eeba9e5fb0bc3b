//! Building a [`ResilientClient`] and its defaults.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, RwLock};

use crate::breaker::{CircuitBreaker, CircuitBreakerConfig};
#[cfg(feature = "cache")]
use crate::cache::{CacheConfig, ReadCache};
use crate::observe::{CallMetrics, Observability};
use crate::queue::{DeadLetter, DeadLetterListener, QueueConfig, RecoveryQueue};
use crate::retry::{ByClass, RetryBudget, RetryDecision, RetryPolicy};
use crate::{Command, Error, KvBackend};

use super::exactly_once::ExactlyOnceConfig;
use super::liveness::{self, LivenessConfig};
use super::state::{ClientInner, Counters, QueuedWork, ResilientClient};

/// Configures a [`ResilientClient`], part by part. Every part has a default.
///
/// A client is a stack of parts, each set once, by its own configuration:
///
/// | part | setter | default |
/// |---|---|---|
/// | circuit breaker | [`breaker`](Self::breaker), [`health_probe`](Self::health_probe) | 3 failures in a row open it for 300 s; `PING` probes every second |
/// | idle liveness | [`liveness`](Self::liveness) | a `PING` after 1 s without a call, answered within 1 s, or the breaker opens |
/// | retries | [`retry_policy`](Self::retry_policy), [`retry_budget`](Self::retry_budget), [`retry_decision`](Self::retry_decision) | 3 retries from 1 s doubling, jittered; a budget of 20 % of calls (at least 10 a second); retry by the error's class |
/// | recovery queue | [`queue`](Self::queue), [`on_dead_letter`](Self::on_dead_letter) | 10,000 writes, 20 attempts, an hour at most |
/// | client-side cache | [`client_cache`](Self::client_cache) | off |
/// | exactly-once writes | [`exactly_once`](Self::exactly_once) | off |
/// | call observability | [`observability`](Self::observability) | per-call metrics and spans on |
///
/// Each setter replaces its part's whole configuration, so the order of calls never
/// matters. [`build`](Self::build) checks every part and refuses an invalid setting with
/// an error naming it; nothing is clamped silently.
#[must_use = "call build() to get a client"]
pub struct ResilientClientBuilder {
    pub(super) name: String,
    backend: Arc<dyn KvBackend>,
    retry_policy: RetryPolicy,
    budget: RetryBudget,
    retry_decision: Arc<dyn RetryDecision>,
    breaker: CircuitBreakerConfig,
    queue: QueueConfig,
    dead_letter_listeners: Vec<DeadLetterListener>,
    #[cfg(feature = "cache")]
    cache: Option<CacheConfig>,
    health_probe: Command,
    liveness: Option<LivenessConfig>,
    exactly_once: Option<ExactlyOnceConfig>,
    observability: Observability,
}

impl std::fmt::Debug for ResilientClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientClientBuilder")
            .field("name", &self.name)
            .field("backend", &self.backend.name())
            .field("retry_policy", &self.retry_policy)
            .field("breaker", &self.breaker)
            .field("queue", &self.queue)
            .field("health_probe", &self.health_probe)
            .field("liveness", &self.liveness)
            .field("exactly_once", &self.exactly_once)
            .field("observability", &self.observability)
            .finish_non_exhaustive()
    }
}

impl ResilientClientBuilder {
    pub(super) fn new(name: String, backend: Arc<dyn KvBackend>) -> Self {
        ResilientClientBuilder {
            name,
            backend,
            retry_policy: RetryPolicy::default(),
            budget: RetryBudget::default(),
            retry_decision: Arc::new(ByClass),
            breaker: CircuitBreakerConfig::default(),
            queue: QueueConfig::default(),
            dead_letter_listeners: Vec::new(),
            #[cfg(feature = "cache")]
            cache: None,
            health_probe: Command::Ping,
            liveness: Some(LivenessConfig::default()),
            exactly_once: None,
            observability: Observability::default(),
        }
    }

    /// The policy `Critical` writes retry with (default: 3 retries, 1 s base, factor 2).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// The shared budget that caps retries across all calls of this client.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// What decides whether a failed command may be sent again, everywhere the client
    /// retries (default [`ByClass`]: the error's class decides; see [`RetryDecision`]).
    pub fn retry_decision(mut self, decision: impl RetryDecision) -> Self {
        self.retry_decision = Arc::new(decision);
        self
    }

    /// The command the health probe sends while the breaker is Open (default `PING`); the
    /// breaker half-opens as soon as it succeeds. On a cluster backend a `PING` goes to any
    /// node, so a per-shard client (see [`crate::cluster::ShardedClient`]) probes with a
    /// read keyed to a slot its shard owns instead, which the driver routes to that shard.
    /// Use a read: the probe is sent once per `health_check_interval` while Open.
    pub fn health_probe(mut self, command: Command) -> Self {
        self.health_probe = command;
        self
    }

    /// How the client checks its connection while idle, so that one that died silently is
    /// noticed without waiting for a call (default: a probe after 1 s without a call,
    /// answered within 1 s; `None` turns it off). A probe that fails as an outage opens
    /// the breaker at once. Only backends that cross a network are watched, and only in
    /// the Tokio runtime the client is built in. See [`LivenessConfig`].
    pub fn liveness(mut self, config: Option<LivenessConfig>) -> Self {
        self.liveness = config;
        self
    }

    /// Exactly-once writes (default off; see [`ExactlyOnceConfig`]): with a config,
    /// [`submit`](ResilientClient::submit) sends a batch that is not idempotent (an
    /// `INCR`, an `LPUSH`) with a write id, so that it can be retried after a timeout and
    /// queued during an outage, and is applied once. The per-call form,
    /// [`execute_once`](ResilientClient::execute_once), works whatever this setting.
    pub fn exactly_once(mut self, config: Option<ExactlyOnceConfig>) -> Self {
        self.exactly_once = config;
        self
    }

    /// The circuit breaker: its policy (`circuit_threshold`), how long it stays open
    /// (`circuit_reset_timeout`), half-open probes, slow calls, the health probe's interval.
    pub fn breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// The recovery queue: its capacity (`recovery_queue_capacity`), attempts, age limit
    /// and replay batch size.
    pub fn queue(mut self, config: QueueConfig) -> Self {
        self.queue = config;
        self
    }

    /// What the client reports per call (default: metrics and spans on). Turned off, a
    /// part costs nothing on the call path (see [`Observability`]).
    pub fn observability(mut self, observability: Observability) -> Self {
        self.observability = observability;
        self
    }

    /// A listener told about every dead-lettered write.
    pub fn on_dead_letter(
        mut self,
        listener: impl Fn(&DeadLetter) + Send + Sync + 'static,
    ) -> Self {
        self.dead_letter_listeners.push(Arc::new(listener));
        self
    }

    /// Turns on the client-side read cache for `GET` and `HGETALL` (off by default; see
    /// [`CacheConfig`](crate::CacheConfig) for what it promises). It needs a backend that tracks
    /// ([`KvBackend::invalidations`] is `Some`, e.g. a Redis backend connected with
    /// `client_tracking`); over any other backend the cache stays off and a warning is
    /// logged when the client is built.
    #[cfg(feature = "cache")]
    pub fn client_cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Builds the client. Needs no runtime: the replay worker and the health probe start
    /// on first need, inside the caller's Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the first invalid setting and why (a breaker
    /// threshold of 0, an empty queue, a retry factor below 1, …). Nothing is clamped.
    pub fn build(self) -> Result<ResilientClient, Error> {
        self.check()?;
        Ok(self.assemble(
            None,
            #[cfg(feature = "durable")]
            None,
        ))
    }

    /// The client of a builder whose settings are all defaults, which are valid (a test
    /// beside this builder checks it), so nothing needs checking.
    pub(super) fn assemble_defaults(self) -> ResilientClient {
        self.assemble(
            None,
            #[cfg(feature = "durable")]
            None,
        )
    }

    /// Every part's settings, checked.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.breaker.check()?;
        self.queue.check()?;
        self.retry_policy.check()?;
        #[cfg(feature = "cache")]
        if let Some(cache) = &self.cache {
            cache.check()?;
        }
        if let Some(liveness) = &self.liveness {
            liveness.check()?;
        }
        if self
            .exactly_once
            .is_some_and(|config| config.record_ttl < std::time::Duration::from_millis(1))
        {
            return Err(Error::InvalidInput(
                "exactly_once: record_ttl must be at least a millisecond".to_owned(),
            ));
        }
        if self.health_probe.is_write() {
            return Err(Error::InvalidInput(format!(
                "health_probe: {} writes; the probe is sent every health_check_interval while the breaker is open, so it must be a read",
                self.health_probe.name()
            )));
        }
        Ok(())
    }

    pub(super) fn assemble(
        self,
        leave_hook: Option<crate::queue::LeaveHook<QueuedWork>>,
        #[cfg(feature = "durable")] journal: Option<Arc<crate::journal::Journal>>,
    ) -> ResilientClient {
        let name: Arc<str> = Arc::from(self.name.as_str());
        let mut queue = RecoveryQueue::new(Arc::clone(&name), self.queue);
        if let Some(hook) = leave_hook {
            queue = queue.with_leave_hook(hook);
        }
        for listener in self.dead_letter_listeners {
            queue.on_dead_letter(listener);
        }
        #[cfg(feature = "cache")]
        let cache = self.cache.and_then(|config| match self.backend.invalidations() {
            Some(feed) => Some(ReadCache::new(&config, feed)),
            None => {
                tracing::warn!(client = %name, backend = self.backend.name(), "client cache requested, but the backend does not track keys (connect it with client_tracking): the cache stays off");
                None
            }
        });
        let watched = self.liveness.filter(|_| self.backend.is_networked());
        let client = ResilientClient {
            inner: Arc::new(ClientInner {
                breaker: Arc::new(CircuitBreaker::new(self.name, self.breaker)),
                retry_decision: self.retry_decision,
                observability: self.observability,
                metrics: CallMetrics::new(Arc::clone(&name)),
                name,
                backend: self.backend,
                retry_policy: self.retry_policy,
                budget: self.budget,
                queue: Arc::new(queue),
                scripts: RwLock::new(Default::default()),
                counters: Counters::default(),
                tasks: OnceLock::new(),
                #[cfg(feature = "cache")]
                cache,
                health_probe: self.health_probe,
                answered: AtomicBool::new(false),
                liveness: OnceLock::new(),
                exactly_once: self.exactly_once,
                #[cfg(feature = "durable")]
                journal,
            }),
        };
        client.register_script(&super::exactly_once::script());
        if let (Some(config), Ok(runtime)) = (watched, tokio::runtime::Handle::try_current()) {
            let watch = runtime.spawn(liveness::watch(Arc::downgrade(&client.inner), config));
            let _ = client.inner.liveness.set(watch);
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::MapBackend;

    fn builder() -> ResilientClientBuilder {
        ResilientClient::builder("t", MapBackend::new())
    }

    #[test]
    fn the_defaults_are_valid_settings() {
        assert!(builder().check().is_ok());
    }

    #[test]
    fn an_invalid_setting_is_refused_by_name() {
        let refused = |b: ResilientClientBuilder, setting: &str| {
            let error = b.build().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(setting), "{setting}: {error}");
        };
        refused(
            builder().breaker(CircuitBreakerConfig::default().circuit_threshold(0)),
            "breaker.circuit_threshold",
        );
        refused(
            builder().breaker(CircuitBreakerConfig::default().with_half_open_max_calls(0)),
            "breaker.half_open_max_calls",
        );
        refused(
            builder().breaker(
                CircuitBreakerConfig::default()
                    .with_health_check_interval(std::time::Duration::ZERO),
            ),
            "breaker.health_check_interval",
        );
        refused(
            builder().queue(QueueConfig::default().with_capacity(0)),
            "queue.capacity",
        );
        refused(
            builder().queue(QueueConfig::default().with_batch_size(0)),
            "queue.batch_size",
        );
        refused(
            builder().retry_policy(RetryPolicy::default().with_backoff_factor(0.5)),
            "retry_policy.backoff_factor",
        );
        refused(
            builder().retry_policy(RetryPolicy::default().with_backoff_factor(f64::NAN)),
            "retry_policy.backoff_factor",
        );
        #[cfg(feature = "cache")]
        refused(
            builder().client_cache(CacheConfig::default().with_max_entries(0)),
            "client_cache.max_entries",
        );
        refused(
            builder().health_probe(Command::Del {
                keys: vec!["k".into()],
            }),
            "health_probe",
        );
    }

    #[test]
    fn each_setter_replaces_its_part_so_order_does_not_matter() {
        let a = builder()
            .breaker(CircuitBreakerConfig::default().circuit_threshold(7))
            .queue(QueueConfig::default().with_capacity(5));
        let b = builder()
            .queue(QueueConfig::default().with_capacity(5))
            .breaker(CircuitBreakerConfig::default().circuit_threshold(7));
        assert_eq!(a.breaker, b.breaker);
        assert_eq!(a.queue, b.queue);
    }
}
