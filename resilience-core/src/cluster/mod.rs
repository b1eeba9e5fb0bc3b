//! Redis Cluster: hash slots, slot routing over per-node connections, and per-shard
//! circuit breakers; and reads from replicas, on a cluster or behind Sentinel.
//!
//! Its guide is in the docs of its main types, [`ClusterBackend`], [`ShardedClient`],
//! [`ReadPolicy`] and [`SentinelReadBackend`].

mod backend;
mod node;
mod read_policy;
mod redirect;
mod replica_reads;
mod router;
mod sentinel_reads;
mod sharded;
mod slot;
mod slot_map;

pub use backend::{ClusterBackend, ReplicaReadStats};
pub use node::ConnectNode;
pub use read_policy::ReadPolicy;
pub use router::ClientRouter;
pub use sentinel_reads::SentinelReadBackend;
pub use sharded::{ShardStats, ShardedClient, ShardedClientBuilder};
pub(crate) use slot::hash_tag;
pub use slot::{SLOT_COUNT, hash_slot, key_for_slot};
