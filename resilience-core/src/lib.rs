//! # resilience-core
//!
//! The resilience layer a Rust service puts between itself and Redis, independent of the
//! Redis driver underneath.
//!
//! Data flows one way: your code -> [`ResilientClient`] -> [`KvBackend`] -> driver -> Redis.
//! The pieces, one concept per module:
//!
//! - [`command`] and [`value`]: commands and replies as data, so they can be logged,
//!   ordered per key, queued, persisted and replayed.
//! - [`error`]: one classification of failures ([`ErrorKind`]) that every backend maps onto,
//!   and the [`Error`] callers see.
//! - [`backend`]: the [`KvBackend`] trait, the seam where drivers plug in.
//! - [`wire`]: commands as the argument lists Redis receives and replies in their canonical
//!   shape, written once for every Redis backend.
//! - [`breaker`]: the circuit breaker (consecutive-failure and failure-rate policies,
//!   half-open probes, an active health probe while open).
//! - [`retry`]: backoff with jitter and a shared retry budget.
//! - [`priority`] and [`queue`]: what happens to a write when Redis is down, by priority,
//!   and the recovery queue that replays it.
//! - [`client`]: [`ResilientClient`], the handle applications hold.
//! - [`memory`]: [`InMemoryBackend`], Redis semantics with no server.
//! - [`config`]: [`ConnectionConfig`], shared by every backend.
//! - [`cluster`]: Redis Cluster hash slots and [`ShardedClient`] (one breaker per shard).
//! - [`observe`]: the metric names this crate emits.
//! - [`cache`]: the optional client-side read cache, invalidated by Redis (RESP3 client
//!   tracking), which may serve stale reads, marked as such, while Redis is down.
//! - `journal` (feature `durable`): the crash-safe journal that makes the recovery queue
//!   survive a restart.
//! - `tower` (feature `tower`): [`ResilientClient`] as a `tower::Service<Command>`, and any
//!   such service as a backend, so tower layers fit above or below the resilience layer.
//!
//! ## Features
//!
//! All off by default.
//!
//! - `durable`: the on-disk journal behind the recovery queue
//!   (`ResilientClientBuilder::journal`), on `redb`.
//! - `lua`: `EVAL` and `EVALSHA` on [`InMemoryBackend`] run the script's own Lua source
//!   (Lua 5.1, as Redis; vendored, so building needs a C compiler).
//! - `tower`: the `tower` module (tower 0.5).

pub mod backend;
pub mod command;
pub mod config;
pub mod error;
pub mod value;
pub mod wire;

pub mod breaker;

pub mod retry;

pub mod memory;

pub mod observe;
pub mod priority;
pub mod queue;

pub mod client;

// The optional client-side read cache (docs inside).
pub mod cache;
pub mod cluster;

// Feature `tower`: tower layers above and below the client (docs inside).
#[cfg(feature = "tower")]
pub mod tower;

// Feature `durable`: the crash-safe journal behind the recovery queue (docs inside).
#[cfg(feature = "durable")]
pub mod journal;

pub use backend::KvBackend;
pub use command::{Command, Limit, ScoreBound, SetCondition, SetOptions, ZaddOptions};
pub use config::{ConnectionConfig, SentinelConfig, TlsConfig};
pub use error::{BackendError, DeadLetterReason, Error, ErrorKind};
pub use value::Value;

pub use breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitState, FailurePolicy, Permit, RateWindow,
    Rejected, Transition,
};
//
pub use retry::{Backoff, Jitter, RetryBudget, RetryError, RetryPolicy, retry_with};
//
pub use memory::{InMemoryBackend, NativeScript, ScriptContext};
//
pub use cache::{CacheConfig, CacheStats, Cached, Freshness, Invalidation};
#[cfg(feature = "durable")]
pub use client::JournaledBuilder;
pub use client::{
    ClientStats, Pipeline, ResilientClient, ResilientClientBuilder, Script, ShutdownReport,
    StoreFuture, Submitted,
};
pub use cluster::{ClientRouter, ShardedClient, hash_slot};
pub use priority::{Priority, StoreOutcome, Ticket, TicketOutcome};
pub use queue::{DeadLetter, QueueConfig, QueueStats};
