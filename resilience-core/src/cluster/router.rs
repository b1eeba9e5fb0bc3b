//! [`ClientRouter`]: which [`ResilientClient`] serves a hash slot.

use crate::ResilientClient;

/// Picks the [`ResilientClient`] for a hash slot: one client for everything (a plain
/// [`ResilientClient`]) or one per cluster shard ([`ShardedClient`](super::ShardedClient)).
///
/// Code that works on keys of one slot at a time (one agent's hash-tagged keys, say) asks
/// the router once for that slot and then uses the client it got, so with per-shard
/// breakers a dead shard only stops the keys it owns.
pub trait ClientRouter: Send + Sync + std::fmt::Debug + 'static {
    /// The client for keys in `slot` (0..16384; a larger value is reduced modulo 16384).
    fn client_for_slot(&self, slot: u16) -> &ResilientClient;

    /// Every distinct client, once each (to register scripts, drain, gather stats).
    fn clients(&self) -> Vec<ResilientClient>;

    /// The client for `key`'s slot (see [`hash_slot`](super::hash_slot)).
    fn client_for_key(&self, key: &[u8]) -> &ResilientClient {
        self.client_for_slot(super::hash_slot(key))
    }
}

impl ClientRouter for ResilientClient {
    /// Always this client: one breaker for the whole backend.
    fn client_for_slot(&self, _slot: u16) -> &ResilientClient {
        self
    }

    fn clients(&self) -> Vec<ResilientClient> {
        vec![self.clone()]
    }
}
