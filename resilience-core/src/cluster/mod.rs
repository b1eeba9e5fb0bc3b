//! Redis Cluster: hash slots, slot routing over per-node connections, and per-shard
//! circuit breakers.
//!
//! Its guide is in the docs of its main types, [`ClusterBackend`] and [`ShardedClient`].

mod backend;
mod node;
mod redirect;
mod router;
mod sharded;
mod slot;
mod slot_map;

pub use backend::ClusterBackend;
pub use node::ConnectNode;
pub use router::ClientRouter;
pub use sharded::{ShardStats, ShardedClient, ShardedClientBuilder};
pub use slot::{SLOT_COUNT, hash_slot, key_for_slot};
