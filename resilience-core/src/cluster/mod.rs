//! Redis Cluster: hash slots, and per-shard circuit breakers.
//!
//! Its guide is in the docs of its main type.

mod router;
mod sharded;
mod slot;

pub use router::ClientRouter;
pub use sharded::{ShardStats, ShardedClient, ShardedClientBuilder};
pub use slot::{SLOT_COUNT, hash_slot, key_for_slot};
