//! # memory-tiers
//!
//! Short-term (STM) and intermediate (IM) memory for agents, on
//! [`resilience_core::ResilientClient`]s, that survives Redis outages.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), memory_tiers::Error> {
//! use memory_tiers::{MemoryInput, TieredMemory, connect_in_memory};
//! use resilience_core::Priority;
//!
//! let (client, _backend) = connect_in_memory("memory");
//! let memory = TieredMemory::builder(client.clone(), client).build()?;
//! let agent = memory.agent("agent-7")?;
//! let receipt = agent
//!     .store(MemoryInput::new(1, serde_json::json!({"saw": "a door"})), Priority::Normal)
//!     .await?;
//! assert!(receipt.outcome.is_stored());
//! let found = agent.get(receipt.memory_id).await?.expect("just stored");
//! assert_eq!(found.entry.metadata.retrieval_count, 1);
//! assert_eq!(agent.recent(20).await?.len(), 1);
//! # Ok(()) }
//! ```
//!
//! ## How it is laid out
//!
//! - [`keys`]: the key schema (the agent id is a Redis Cluster hash tag) and validation.
//! - [`entry`]: [`MemoryEntry`] (ULID ids, serde) and what agents write and read.
//! - [`config`]: [`StmConfig`] (24 h, 1000 per agent) and [`ImConfig`] (7 days, 10000).
//! - [`scripts`]: every write, read and query is one Lua script (on Redis, and the same
//!   source on [`InMemoryBackend`](resilience_core::InMemoryBackend)), so an entry, its
//!   indexes and their TTLs change together or not at all. On Redis, rank queries
//!   (`recent`) are read by one `SORT_RO … GET` instead, about half the server's cost,
//!   whenever it gives the script's answer (`sort_read` in the source says when).
//! - [`TieredMemory`] / [`AgentMemory`]: the API; [`transition`]: STM -> IM moves.
//!
//! ## The rules it keeps
//!
//! - Every key written has a TTL. Reads never change a TTL; index TTLs are only extended.
//! - Reads by id bump `retrieval_count` (`HINCRBY`) and `last_access_time` atomically.
//!   Range queries (`recent`, `by_*`) list entries without counting a retrieval.
//! - Importance is clamped to [0, 1] on write and on [`AgentMemory::adjust_importance`].
//! - Expired entries leave the indexes lazily: every query and `count` first removes the
//!   members whose expiry deadline (kept in an expiry index) has passed and whose entry is
//!   gone, up to a bounded batch (a `recent` read by `SORT_RO` checks for such a member in
//!   the same round trip, and hands over to the script when there is one). Deadlines are
//!   computed with the client's clock: with a server clock ahead of the client's, an
//!   expired entry can be counted for that skew.
//! - Writes go through [`ResilientClient::submit`](resilience_core::ResilientClient::submit)
//!   with the caller's priority; the script is idempotent, so replays are safe.
//! - Every stored entry carries the schema version ([`SCHEMA_VERSION`]); an entry of
//!   another version is [`Error::UnsupportedSchema`], never misread.
//!
//! ## Features
//!
//! - `redis-rs` (default): [`connect()`] can use the `redis` crate's backend.
//! - `fred`: [`connect()`] can use the `fred` crate's backend.
//!
//! [`BackendKind::InMemory`] needs neither.

pub mod agent;
mod clock;
mod codec;
mod compress;
pub mod config;
pub mod connect;
pub mod entry;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod memory;
pub mod scripts;
mod shared;
mod sort_read;
pub mod tier;
pub mod transition;

pub use agent::{AgentMemory, StoreReceipt, TierCounts, parse_memory_id};
pub use codec::SCHEMA_VERSION;
pub use config::{CompressionLevel, DEFAULT_MAX_VALUE_BYTES, ImConfig, StmConfig};
pub use connect::{BackendKind, connect, connect_backend, connect_in_memory, connect_with};
pub use entry::{MemoryEntry, MemoryInput, MemoryMetadata, Retrieved, Source, Tier};
pub use error::{Error, Result};
pub use keys::{AgentKeys, MAX_AGENT_ID_BYTES, validate_agent_id};
pub use memory::{DEFAULT_NAMESPACE, TieredMemory, TieredMemoryBuilder};
pub use scripts::lua_sources;
pub use tier::{MAX_QUERY_LIMIT, TierHandle};
pub use transition::MaintainReport;
pub use ulid::Ulid;
