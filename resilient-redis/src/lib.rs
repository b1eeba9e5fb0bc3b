//! # resilient-redis
//!
//! The one dependency a service adds for a Redis client that keeps its promises through an
//! outage: connect by URL, on the driver your cargo features choose, and get a
//! [`ResilientClient`] (circuit breaker, retries with backoff, a priority recovery queue,
//! an optional client-side cache) over it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), resilient_redis::Error> {
//! use resilient_redis::{Priority, SetOptions, StoreOutcome};
//!
//! // `memory://` is the embedded backend; "redis://127.0.0.1:6379" would use a server.
//! let client = resilient_redis::connect("memory://").await?;
//! client.set("greeting", "hello", SetOptions::default()).await?;
//! assert_eq!(client.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//!
//! // A write that must survive an outage: stored now, or queued and replayed later.
//! let outcome = client
//!     .submit(vec![resilient_redis::Command::Incr { key: "visits".into() }], Priority::High)
//!     .await;
//! assert!(matches!(outcome, StoreOutcome::Stored));
//! # Ok(()) }
//! ```
//!
//! ## URLs
//!
//! | URL | backend |
//! |---|---|
//! | `memory://` | the embedded in-memory backend: Redis semantics, no server |
//! | `redis://[user:password@]host:port[/db]` | one server |
//! | `rediss://…` | one server over TLS |
//! | `redis+sentinel://…` | the master a set of Sentinels names, followed through failovers |
//! | `redis://host:port?cluster=host2:port2,…` | a Redis Cluster from its seeds |
//!
//! The options a URL may carry (timeouts, TLS files, client tracking, …) are
//! [`ConnectionConfig::from_url`]'s. Single server or cluster is decided once, here, at
//! connect ([`connect_backend`]): a cluster gets the core's router ([`ClusterBackend`])
//! over one single-server connection of the driver per node.
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `redis-rs` (default) | the driver on the `redis` crate ([`BackendKind::RedisRs`]) |
//! | `fred` | the driver on the `fred` crate ([`BackendKind::Fred`]) |
//! | `memory-tiers` | [`memory`]: agent memory (short-term and intermediate tiers) and [`memory::connect`] |
//! | `lua` | `EVAL` on `memory://` runs the script's own Lua source |
//! | `durable` | the crash-safe journal behind the recovery queue (`journal`) |
//! | `tower` | the client as a `tower::Service`, and services as backends (`tower`) |
//!
//! With both drivers compiled in, [`connect_with`] picks one per client at run time.
//!
//! ## What is re-exported
//!
//! Everything of `resilience-core` (the client, the breaker, the retry policy, the queue,
//! commands and values, the errors and their one classification, [`ErrorClass`]), the
//! embedded backend ([`InMemoryBackend`]) and, with their features, the driver backends
//! (`RedisRsBackend`, `FredBackend`) for code that builds a backend itself.

mod connect;
mod kind;
#[cfg(feature = "memory-tiers")]
pub mod memory;

pub use connect::{connect, connect_backend, connect_backend_url, connect_with};
pub use kind::BackendKind;

pub use backend_memory::{InMemoryBackend, NativeScript, ScriptContext};
pub use resilience_core::*;

#[cfg(feature = "fred")]
pub use backend_fred::FredBackend;
#[cfg(feature = "redis-rs")]
pub use backend_redis_rs::RedisRsBackend;
