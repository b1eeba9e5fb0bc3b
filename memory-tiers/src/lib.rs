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
//!
//! // Memories with embeddings can be searched by similarity.
//! agent
//!     .store(MemoryInput::new(2, serde_json::json!("a red door")).embedding(vec![1.0, 0.0, 0.2]), Priority::Normal)
//!     .await?;
//! let best = agent.similar(&[0.9, 0.1, 0.2], 1, &memory_tiers::Filter::new()).await?;
//! assert_eq!(best[0].memory.entry.content, "a red door");
//! # Ok(()) }
//! ```
//!
//! ## How it is laid out
//!
//! - [`AgentKeys`]: the key schema (tier and agent id are a Redis Cluster hash tag) and
//!   validation: per agent and tier, one string per memory, one sorted set indexing them
//!   by timestamp, step, importance and expiry, all four as lexicographic members of the
//!   same set, and one string packing the embeddings for search.
//! - [`MemoryEntry`] (ULID ids, serde) and what agents write and read: stored as a schema
//!   version, fixed-offset counters and index fields, a compact binary header and the
//!   user's JSON.
//! - [`StmConfig`] (24 h, 1000 per agent) and [`ImConfig`] (7 days, 10000).
//! - [`TierHandle`]: each operation's commands. A write is one `MULTI` (the entry with its
//!   TTL, its four index members, the index's TTL); a range query is one `ZRANGEBYLEX` and
//!   one `MGET`; a read by id is one `BITFIELD` and one `GET`. Only delete-by-id,
//!   importance changes and vector compaction are Lua scripts ([`lua_sources`]; the same
//!   source runs on [`InMemoryBackend`](backend_memory::InMemoryBackend)).
//! - Searches ([`Scored`]): [`AgentMemory::similar`] scores every embedding of both tiers
//!   (read with one `GET` per tier) in Rust, exactly; [`AgentMemory::find`] takes a
//!   [`Filter`] (type, time, step and importance ranges, content attributes, text) and
//!   runs its range on the server; [`AgentMemory::search_content`] matches text.
//! - [`TieredMemory`] / [`AgentMemory`]: the API; [`MaintainReport`]: STM -> IM moves;
//!   [`MemoryEvent`]: listeners of memory events (stored, moved, expired, evicted,
//!   deleted), run off the write path.
//! - [`hash_embedding`]: a deterministic text embedder (feature hashing) for demos, tests
//!   and callers without a model.
//!
//! ## The rules it keeps
//!
//! - Every key written has a TTL; reads never change one. The index's TTL is reset on
//!   every write to outlast the newest entry.
//! - Every key a command or script touches is passed as a key, never built inside a
//!   script, so Cluster, ACL key patterns and proxies see all of them.
//! - Reads by id bump `retrieval_count` and `last_access_time` in one `BITFIELD`: atomic
//!   and exact. Range queries (`recent`, `by_*`) list entries without counting a retrieval.
//! - Importance is clamped to [0, 1] on write and on [`AgentMemory::adjust_importance`].
//! - Embeddings have one dimension per [`TieredMemory`] (configured, or fixed by the first
//!   one stored); STM keeps them as written, IM at compression levels 1 and 2 as one byte
//!   per dimension and a scale.
//! - An expired entry is never returned or counted. Its index members leave lazily: a
//!   query that meets one, a write that finds the tier over capacity, and
//!   [`AgentMemory::maintain`] remove expired members, a bounded batch at a time.
//!   Deadlines are computed with the client's clock.
//! - Writes go through [`ResilientClient::submit`](resilience_core::ResilientClient::submit)
//!   with the caller's priority; they store the same bytes and members when replayed.
//! - Every stored entry carries the schema version ([`SCHEMA_VERSION`]); an entry of
//!   another version, or a hash left by the layouts before, is [`Error::UnsupportedSchema`],
//!   never misread.
//!
//! ## Connecting
//!
//! The tiers take [`ResilientClient`](resilience_core::ResilientClient)s and know no
//! driver. [`connect_in_memory`] gives one on the embedded backend; to connect to Redis by
//! URL with the driver your features choose, use the `resilient-redis` crate (feature
//! `memory-tiers`: `resilient_redis::memory::connect(url)`).

mod agent;
mod claims;
mod clock;
mod codec;
mod compress;
mod config;
mod connect;
mod embedding;
mod entry;
mod error;
mod filter;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod hash_embedding;
mod hooks;
mod index;
mod keys;
mod memory;
mod packed;
mod postings;
mod recall;
mod replica;
mod scoring;
mod scripts;
mod shared;
mod text;
mod text_index;
mod tier;
mod transition;
mod vectors;

pub use agent::{AgentMemory, StoreReceipt, TierCounts, parse_memory_id};
pub use codec::SCHEMA_VERSION;
pub use config::{CompressionLevel, DEFAULT_MAX_VALUE_BYTES, ImConfig, StmConfig};
pub use connect::connect_in_memory;
pub use embedding::MAX_DIMENSION;
pub use entry::{MemoryEntry, MemoryInput, MemoryMetadata, Retrieved, Source, Tier};
pub use error::{Error, Result};
pub use filter::Filter;
pub use hash_embedding::{HASH_EMBEDDING_DIMENSION, hash_embedding};
pub use hooks::{MemoryEvent, MemoryEventKind};
pub use keys::{AgentKeys, MAX_AGENT_ID_BYTES, validate_agent_id, validate_namespace};
pub use memory::{DEFAULT_NAMESPACE, TieredMemory, TieredMemoryBuilder};
pub use recall::Scored;
pub use scoring::Scoring;
pub use scripts::lua_sources;
pub use tier::{MAX_QUERY_LIMIT, TierHandle};
pub use transition::MaintainReport;
pub use ulid::Ulid;
