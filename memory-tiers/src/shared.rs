//! What every agent handle of one [`TieredMemory`](crate::TieredMemory) shares: the tiers,
//! their settings, the memory-id generator and the agents the maintenance task visits.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use ulid::{Generator, Ulid};

use crate::clock::Clock;
use crate::config::{ImConfig, StmConfig};
use crate::tier::{TierHandle, TierShared};

/// How many agents' handles one `TieredMemory` keeps (the least used go first).
const CACHED_AGENTS: u64 = 10_000;

/// An agent's tier handles, kept so that handing the agent out again builds no key names
/// (several `format!`s per tier, a tenth of a store's cost when a server asks for the
/// agent on every request).
#[derive(Clone, Debug)]
pub(crate) struct AgentHandles {
    pub(crate) agent_id: Arc<str>,
    pub(crate) stm: TierHandle,
    pub(crate) im: TierHandle,
    pub(crate) fallback: Option<TierHandle>,
}

/// The state of one `TieredMemory`, behind an `Arc` in it and in every `AgentMemory`.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) stm: Arc<TierShared>,
    pub(crate) im: Arc<TierShared>,
    pub(crate) fallback: Option<Arc<TierShared>>,
    pub(crate) stm_config: StmConfig,
    pub(crate) im_config: ImConfig,
    pub(crate) clock: Clock,
    ids: Mutex<Generator>,
    agents: Mutex<BTreeSet<String>>,
    /// Agents handed out lately, by id.
    pub(crate) handles: moka::sync::Cache<String, AgentHandles>,
    /// Agents whose after-write STM -> IM move is running: one at a time per agent.
    pub(crate) moving: crate::claims::Claims,
    /// The embedding dimension: configured, or fixed by the first embedding stored.
    dimension: OnceLock<usize>,
}

impl Inner {
    pub(crate) fn new(
        stm: Arc<TierShared>,
        im: Arc<TierShared>,
        fallback: Option<Arc<TierShared>>,
        stm_config: StmConfig,
        im_config: ImConfig,
        clock: Clock,
        dimension: Option<usize>,
    ) -> Self {
        let fixed = OnceLock::new();
        if let Some(d) = dimension {
            let _ = fixed.set(d);
        }
        Inner {
            stm,
            im,
            fallback,
            stm_config,
            im_config,
            clock,
            ids: Mutex::new(Generator::new()),
            agents: Mutex::new(BTreeSet::new()),
            handles: moka::sync::Cache::new(CACHED_AGENTS),
            moving: crate::claims::Claims::default(),
            dimension: fixed,
        }
    }

    /// The embedding dimension, once known.
    pub(crate) fn embedding_dimension(&self) -> Option<usize> {
        self.dimension.get().copied()
    }

    /// Checks an embedding to store: valid, and of the dimension (which the first one
    /// fixes when none was configured).
    pub(crate) fn check_embedding(&self, v: &[f32]) -> crate::Result<()> {
        crate::embedding::check_stored(v, None)?;
        let fixed = *self.dimension.get_or_init(|| v.len());
        crate::embedding::check_dimension(v.len(), Some(fixed))
    }

    /// A new ULID for time `now_ms`, strictly greater than every earlier one.
    pub(crate) fn next_id(&self, now_ms: u64) -> Ulid {
        let at = UNIX_EPOCH + Duration::from_millis(now_ms);
        let mut g = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        match g.generate_from_datetime(at) {
            Ok(id) => id,
            Err(overflow) => overflow.commit_overflow_increment(),
        }
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers `agent_id` for the maintenance task.
    pub(crate) fn remember_agent(&self, agent_id: &str) {
        self.agents().insert(agent_id.to_owned());
    }

    /// The agents remembered and not forgotten, in order.
    pub(crate) fn known_agents(&self) -> Vec<String> {
        self.agents().iter().cloned().collect()
    }

    /// Forgets `agent_id`.
    pub(crate) fn forget_agent(&self, agent_id: &str) {
        // The handles go too, so handing the agent out again remembers it again.
        self.handles.invalidate(agent_id);
        self.agents().remove(agent_id);
    }
}

#[cfg(test)]
mod tests {
    use crate::{TieredMemory, connect_in_memory};

    #[test]
    fn an_agent_handed_out_again_is_the_same_and_a_forgotten_one_is_remembered_again()
    -> crate::Result<()> {
        let (client, _backend) = connect_in_memory("t");
        let memory = TieredMemory::builder(client.clone(), client).build()?;
        let first = memory.agent("a")?;
        let again = memory.agent("a")?;
        assert_eq!(again.agent_id(), "a");
        assert_eq!(again.stm().keys, first.stm().keys);
        assert!(first.inner.handles.get("a").is_some(), "kept");
        assert!(
            memory.agent("bad{id}").is_err(),
            "a bad id is refused, cached or not"
        );
        assert_eq!(memory.known_agents(), ["a"]);
        memory.forget_agent("a");
        assert!(memory.known_agents().is_empty());
        memory.agent("a")?;
        assert_eq!(
            memory.known_agents(),
            ["a"],
            "handed out again, maintained again"
        );
        Ok(())
    }
}
