//! Building a [`ResilientClient`] and its defaults.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use crate::breaker::{CircuitBreaker, CircuitBreakerConfig, FailurePolicy};
use crate::cache::{CacheConfig, ReadCache};
use crate::observe::CallMetrics;
use crate::queue::{DeadLetter, DeadLetterListener, QueueConfig, RecoveryQueue};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::{Command, KvBackend};

use super::{ClientInner, Counters, QueuedWork, ResilientClient};

/// Configures a [`ResilientClient`]. Every setting has a default.
#[must_use = "call build() to get a client"]
pub struct ResilientClientBuilder {
    name: String,
    backend: Arc<dyn KvBackend>,
    retry_policy: RetryPolicy,
    budget: RetryBudget,
    breaker: CircuitBreakerConfig,
    queue: QueueConfig,
    dead_letter_listeners: Vec<DeadLetterListener>,
    cache: Option<CacheConfig>,
    health_probe: Command,
}

impl ResilientClientBuilder {
    pub(super) fn new(name: String, backend: Arc<dyn KvBackend>) -> Self {
        ResilientClientBuilder {
            name,
            backend,
            retry_policy: RetryPolicy::default(),
            budget: RetryBudget::default(),
            breaker: CircuitBreakerConfig::default(),
            queue: QueueConfig::default(),
            dead_letter_listeners: Vec::new(),
            cache: None,
            health_probe: Command::Ping,
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

    /// Consecutive counted failures that open the breaker (default 3). Selects the
    /// consecutive-failure policy.
    pub fn circuit_threshold(mut self, threshold: u32) -> Self {
        self.breaker.policy = FailurePolicy::ConsecutiveFailures {
            threshold: threshold.max(1),
        };
        self
    }

    /// How long the breaker stays open before admitting a probe (default 300 s). The
    /// health probe usually closes it much sooner.
    pub fn circuit_reset_timeout(mut self, timeout: Duration) -> Self {
        self.breaker.reset_timeout = timeout;
        self
    }

    /// How often the health probe pings while the breaker is open (default 1 s).
    pub fn health_check_interval(mut self, interval: Duration) -> Self {
        self.breaker.health_check_interval = interval;
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

    /// The whole breaker configuration (policy, slow calls, half-open probes).
    pub fn breaker_config(mut self, config: CircuitBreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Most writes the recovery queue holds (default 10,000).
    pub fn recovery_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue.capacity = capacity;
        self
    }

    /// The whole recovery queue configuration.
    pub fn queue_config(mut self, config: QueueConfig) -> Self {
        self.queue = config;
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
    pub fn client_cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Feature `durable`: keeps the recovery queue in a crash-safe journal at `path`
    /// (created if missing). Finish with [`try_build`](crate::JournaledBuilder::try_build),
    /// which can fail; call the other builder methods first. See [`crate::journal`].
    #[cfg(feature = "durable")]
    pub fn journal(
        self,
        path: impl Into<std::path::PathBuf>,
    ) -> super::journaled::JournaledBuilder {
        super::journaled::JournaledBuilder::new(self, path.into())
    }

    #[cfg(feature = "durable")]
    pub(crate) fn client_name(&self) -> &str {
        &self.name
    }

    /// Feature `durable`: builds a client over an open journal and queues the `recovered`
    /// records again (in the order given). Their tickets have no owner.
    #[cfg(feature = "durable")]
    pub(crate) fn build_journaled(
        self,
        journal: Arc<crate::journal::Journal>,
        recovered: Vec<(u64, crate::journal::JournalRecord)>,
    ) -> ResilientClient {
        // Deletes a write's record when it leaves the queue for good (see the journal docs).
        let hook = super::journaled::leave_hook(Arc::downgrade(&journal));
        let client = self.assemble(Some(hook), Some(Arc::clone(&journal)));
        let inner = &client.inner;
        for (seq, record) in recovered {
            for source in record.scripts {
                client.register_script(&super::Script::new(source));
            }
            let work = QueuedWork::Commands {
                cmds: record.cmds,
                atomic: record.atomic,
                journal_seq: Some(seq),
            };
            if let Err(e) = inner.queue.push(record.priority, record.keys, work) {
                tracing::warn!(client = %inner.name, seq, error = ?e, "journal: recovered write not queued; it stays on disk for the next start");
                journal.count_not_loaded();
            }
        }
        if !inner.queue.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            inner.ensure_tasks();
        }
        client
    }

    /// Builds the client. Needs no runtime: the replay worker and the health probe start
    /// on first need, inside the caller's Tokio runtime.
    pub fn build(self) -> ResilientClient {
        self.assemble(
            None,
            #[cfg(feature = "durable")]
            None,
        )
    }

    fn assemble(
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
        let cache = self.cache.and_then(|config| match self.backend.invalidations() {
            Some(feed) => Some(ReadCache::new(&config, feed)),
            None => {
                tracing::warn!(client = %name, backend = self.backend.name(), "client cache requested, but the backend does not track keys (connect it with client_tracking): the cache stays off");
                None
            }
        });
        ResilientClient {
            inner: Arc::new(ClientInner {
                breaker: Arc::new(CircuitBreaker::new(self.name, self.breaker)),
                metrics: CallMetrics::new(Arc::clone(&name)),
                name,
                backend: self.backend,
                retry_policy: self.retry_policy,
                budget: self.budget,
                queue: Arc::new(queue),
                scripts: RwLock::new(Default::default()),
                counters: Counters::default(),
                tasks: OnceLock::new(),
                cache,
                health_probe: self.health_probe,
                #[cfg(feature = "durable")]
                journal,
            }),
        }
    }
}
