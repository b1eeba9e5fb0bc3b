//! Redis Cluster: hash slots, and per-shard circuit breakers.
//!
//! A cluster backend (redis-rs or fred in cluster mode) routes every command to the master
//! that owns its key's slot. One [`ResilientClient`](crate::ResilientClient) over it would
//! have one breaker for the whole cluster: a dead master would open it for every key.
//! [`ShardedClient`] holds one `ResilientClient` per shard instead, all over the same
//! backend, each with its own breaker, recovery queue and health probe, so keys on healthy
//! masters keep working while keys on a dead one fail fast with
//! [`Error::CircuitOpen`](crate::Error::CircuitOpen).
//!
//! - [`hash_slot`]: the slot of a key (CRC16/XMODEM mod 16384, with Redis's hash-tag rule).
//! - [`ShardedClient`]: the shards, read from `CLUSTER SLOTS` when it is built, and the
//!   routing `client_for_key` / `client_for_slot`.
//! - [`ClientRouter`]: "which client serves this slot", implemented by both
//!   [`ResilientClient`](crate::ResilientClient) (always itself) and [`ShardedClient`], so
//!   code above (the memory tiers) can take either.

mod router;
mod sharded;
mod slot;

pub use router::ClientRouter;
pub use sharded::{ShardStats, ShardedClient, ShardedClientBuilder};
pub use slot::{SLOT_COUNT, hash_slot, key_for_slot};
