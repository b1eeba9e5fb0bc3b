//! [`TieredMemory`]: the tiers for all agents, built once, and the per-agent handles.

use std::sync::Arc;
use std::time::Duration;

use resilience_core::{ClientRouter, ResilientClient};

use crate::agent::AgentMemory;
use crate::clock::Clock;
use crate::config::{ImConfig, StmConfig};
use crate::error::Result;
use crate::hooks::{Hooks, MemoryEvent};
use crate::keys::{validate_agent_id, validate_namespace};
use crate::scripts::ScriptSet;
use crate::shared::{AgentHandles, Inner};
use crate::tier::{TierHandle, TierSettings, TierShared};

/// The default key namespace.
pub const DEFAULT_NAMESPACE: &str = "agent_memory";

/// Builds a [`TieredMemory`].
#[derive(Debug)]
#[must_use = "call build()"]
pub struct TieredMemoryBuilder {
    stm_client: Arc<dyn ClientRouter>,
    im_client: Arc<dyn ClientRouter>,
    stm: StmConfig,
    im: ImConfig,
    fallback: Option<ResilientClient>,
    namespace: String,
    hooks: Hooks,
    embedding_dimension: Option<usize>,
    vector_replica_bytes: u64,
}

impl TieredMemoryBuilder {
    /// Adds a listener told of every [`MemoryEvent`] (stored, moved to IM, expired,
    /// evicted, deleted), on a thread of its own, never on the write path: see the
    /// [`MemoryEvent`] docs for what a slow or panicking listener does.
    pub fn on_event(mut self, listener: impl Fn(&MemoryEvent) + Send + Sync + 'static) -> Self {
        self.hooks.add(Arc::new(listener));
        self
    }

    /// The byte budget of the local replica of vector blocks (and, for searches with a
    /// text term, postings blocks) that similarity searches keep, so a warm search
    /// fetches only what was appended since the last one (default 128 MiB; 0 turns it
    /// off, and every search fetches whole blocks). The text indexes built from the
    /// postings blocks have a budget of the same size of their own. See
    /// [`TieredMemory::vector_replica_bytes`].
    pub fn vector_replica_bytes(mut self, budget: u64) -> Self {
        self.vector_replica_bytes = budget;
        self
    }

    /// STM settings (default: 24 h, 1000 entries).
    pub fn stm_config(mut self, config: StmConfig) -> Self {
        self.stm = config;
        self
    }

    /// IM settings (default: 7 days, 10000 entries, compression level 1).
    pub fn im_config(mut self, config: ImConfig) -> Self {
        self.im = config;
        self
    }

    /// A local fallback store (a client over an
    /// [`InMemoryBackend`](backend_memory::InMemoryBackend), as
    /// [`connect_in_memory`](crate::connect_in_memory) gives): writes the primary did not
    /// confirm are also written there, and reads use it while the primary is unreachable.
    pub fn fallback(mut self, client: ResilientClient) -> Self {
        self.fallback = Some(client);
        self
    }

    /// Fixes the embedding dimension (1..=[`MAX_DIMENSION`](crate::MAX_DIMENSION)): an
    /// embedding or query of another is [`Error::InvalidInput`](crate::Error). Unset, the
    /// first embedding this `TieredMemory` stores fixes it. Every process writing one
    /// namespace must use the same dimension: a search that meets a stored embedding of
    /// another one says so.
    pub fn embedding_dimension(mut self, dimension: usize) -> Self {
        self.embedding_dimension = Some(dimension);
        self
    }

    /// The key namespace (default [`DEFAULT_NAMESPACE`]): 1..=64 bytes of `[A-Za-z0-9_.:-]`.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Builds the tiers and registers their scripts with every client, so `EVALSHA`s
    /// (including queued replays) survive a server that lost its script cache.
    /// An invalid namespace or a zero capacity is [`Error::InvalidInput`](crate::Error).
    pub fn build(self) -> Result<TieredMemory> {
        validate_namespace(&self.namespace)?;
        if self
            .embedding_dimension
            .is_some_and(|d| d == 0 || d > crate::MAX_DIMENSION)
        {
            return Err(crate::Error::InvalidInput(format!(
                "embedding dimension must be 1..={}",
                crate::MAX_DIMENSION
            )));
        }
        if self.stm.capacity == 0 || self.im.capacity == 0 {
            return Err(crate::Error::InvalidInput(
                "tier capacities must be at least 1".to_owned(),
            ));
        }
        let scripts = Arc::new(ScriptSet::new());
        let hooks = Arc::new(self.hooks);
        let clock = Clock::new();
        let replica = (self.vector_replica_bytes > 0)
            .then(|| crate::replica::VectorReplica::new(self.vector_replica_bytes));
        let shared = |router: Arc<dyn ClientRouter>,
                      settings: TierSettings,
                      replica: Option<Arc<crate::replica::VectorReplica>>| {
            for client in router.clients() {
                for s in scripts.all() {
                    client.register_script(s);
                }
            }
            Arc::new(TierShared {
                router,
                settings,
                scripts: scripts.clone(),
                hooks: hooks.clone(),
                clock,
                namespace: self.namespace.clone(),
                replica,
                compacting: Default::default(),
            })
        };
        let stm = shared(
            self.stm_client,
            TierSettings::stm(&self.stm),
            replica.clone(),
        );
        let im = shared(self.im_client, TierSettings::im(&self.im), replica);
        let fallback = self
            .fallback
            .map(|c| shared(Arc::new(c), TierSettings::stm(&self.stm), None));
        Ok(TieredMemory {
            inner: Arc::new(Inner::new(
                stm,
                im,
                fallback,
                self.stm,
                self.im,
                clock,
                self.embedding_dimension,
            )),
        })
    }
}

/// Short-term and intermediate memory for many agents, over one or two
/// [`ResilientClient`]s. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TieredMemory {
    inner: Arc<Inner>,
}

impl TieredMemory {
    /// Bytes the local replica holds now: vector and postings blocks, and the text
    /// indexes' estimated size (0 when it is off). The gauge
    /// `memory_tiers_vector_replica_bytes` reports it as of the last block kept.
    pub fn vector_replica_bytes(&self) -> u64 {
        self.inner
            .stm
            .replica
            .as_ref()
            .map_or(0, |replica| replica.bytes())
    }

    /// Starts building tiers over an STM client and an IM client (they may be the same).
    pub fn builder(stm: ResilientClient, im: ResilientClient) -> TieredMemoryBuilder {
        Self::builder_routed(stm, im)
    }

    /// Like [`builder`](Self::builder), with a [`ClientRouter`] per tier: a
    /// [`ShardedClient`](resilience_core::ShardedClient) gives each Redis Cluster shard its
    /// own breaker and recovery queue, so agents whose slot is on a dead master fail fast
    /// (or queue) while the others keep working. Each agent's handle uses the client of
    /// its hash tag's slot.
    pub fn builder_routed(stm: impl ClientRouter, im: impl ClientRouter) -> TieredMemoryBuilder {
        TieredMemoryBuilder {
            stm_client: Arc::new(stm),
            im_client: Arc::new(im),
            stm: StmConfig::default(),
            im: ImConfig::default(),
            fallback: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            hooks: Hooks::default(),
            embedding_dimension: None,
            vector_replica_bytes: crate::replica::DEFAULT_BUDGET,
        }
    }

    /// The handle for one agent. A bad agent id (empty, over 256 bytes, braces, control
    /// characters) is [`Error::InvalidInput`](crate::Error::InvalidInput).
    ///
    /// Handles are cheap to ask for again: the last 10,000 agents' are kept, so a server
    /// may call this on every request.
    pub fn agent(&self, agent_id: &str) -> Result<AgentMemory> {
        let inner = &self.inner;
        let handles = match inner.handles.get(agent_id) {
            Some(handles) => handles,
            None => {
                validate_agent_id(agent_id)?;
                inner.remember_agent(agent_id);
                let handles = AgentHandles {
                    agent_id: agent_id.into(),
                    stm: TierHandle::new(inner.stm.clone(), agent_id),
                    im: TierHandle::new(inner.im.clone(), agent_id),
                    fallback: inner
                        .fallback
                        .as_ref()
                        .map(|f| TierHandle::new(f.clone(), agent_id)),
                };
                inner.handles.insert(agent_id.to_owned(), handles.clone());
                handles
            }
        };
        Ok(AgentMemory {
            agent_id: handles.agent_id,
            stm: handles.stm,
            im: handles.im,
            fallback: handles.fallback,
            inner: inner.clone(),
        })
    }

    /// Memory events dropped because the listeners fell behind (see
    /// [`TieredMemoryBuilder::on_event`]).
    pub fn events_dropped(&self) -> u64 {
        self.inner.stm.hooks.dropped()
    }

    /// The STM settings.
    pub fn stm_config(&self) -> &StmConfig {
        &self.inner.stm_config
    }

    /// The IM settings.
    pub fn im_config(&self) -> &ImConfig {
        &self.inner.im_config
    }

    /// Agents handed out by [`agent`](Self::agent) so far (and not forgotten): the ones the
    /// background maintenance task visits.
    pub fn known_agents(&self) -> Vec<String> {
        self.inner.known_agents()
    }

    /// Stops maintaining `agent_id` in the background task (its memories stay stored).
    pub fn forget_agent(&self, agent_id: &str) {
        self.inner.forget_agent(agent_id);
    }

    /// Spawns a task that runs [`AgentMemory::maintain`] for every known agent every
    /// `interval` (the first pass after one interval). Failures are logged and retried on
    /// the next pass. Abort the returned handle to stop it.
    pub fn spawn_maintenance(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
            tick.tick().await;
            loop {
                tick.tick().await;
                for agent in this.known_agents() {
                    let Ok(handle) = this.agent(&agent) else {
                        continue;
                    };
                    if let Err(e) = handle.maintain().await {
                        tracing::warn!(agent = %agent, error = %e, "memory maintenance failed; will retry");
                    }
                }
            }
        })
    }
}
