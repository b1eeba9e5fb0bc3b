//! # resilience-core
//!
//! The resilience layer a Rust service puts between itself and Redis, independent of the
//! Redis driver underneath.
//!
//! Data flows one way: your code -> [`ResilientClient`] -> [`KvBackend`] -> driver -> Redis.
//! Every item has one path: the crate root, except what only backend authors need
//! ([`backend`]), the metric names ([`observe`]) and the optional `tower` and `journal`
//! modules. The pieces:
//!
//! - [`Command`] and [`Value`]: commands and replies as data, so they can be logged,
//!   ordered per key, queued, persisted and replayed.
//! - [`ErrorKind`]: one classification of failures that every backend maps onto, and the
//!   [`Error`] callers see.
//! - [`KvBackend`]: the seam where drivers plug in; [`backend`] holds what writing one
//!   takes (commands as argument lists, replies in their canonical shape, client-tracking
//!   support), written once for every Redis backend.
//! - [`CircuitBreaker`]: consecutive-failure and failure-rate policies, half-open probes,
//!   an active health probe while open.
//! - [`RetryPolicy`] and [`RetryBudget`]: backoff with jitter and a shared retry budget.
//! - [`Priority`] and [`QueueConfig`]: what happens to a write when Redis is down, by
//!   priority, and the recovery queue that replays it.
//! - [`ResilientClient`]: the handle applications hold.
//! - [`ConnectionConfig`]: shared by every backend.
//! - [`ShardedClient`]: Redis Cluster hash slots, one breaker per shard.
//! - [`observe`]: the metric names this crate emits.
//! - [`CacheConfig`]: the optional client-side read cache, invalidated by Redis (RESP3
//!   client tracking), which may serve stale reads, marked as such, while Redis is down.
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
//! - `tower`: the `tower` module (tower 0.5).

pub mod backend;
mod command;
mod config;
mod error;
mod error_class;
mod seam;
mod value;
mod wire;

mod breaker;

mod retry;

pub mod observe;
mod priority;
mod pubsub;
mod queue;

mod client;

#[cfg(test)]
mod test_support;

// The optional client-side read cache (docs inside).
mod cache;
mod cluster;

// Feature `tower`: tower layers above and below the client (docs inside).
#[cfg(feature = "tower")]
pub mod tower;

// Feature `durable`: the crash-safe journal behind the recovery queue (docs inside).
#[cfg(feature = "durable")]
pub mod journal;

pub use command::{
    ArgReader, ByteRange, Command, CommandSpec, Count, ExpireCondition, GetExpiry, GroupRead,
    IntoField, LexBound, LexEnd, Limit, ListEnd, MkStream, Replace, ScanOptions, ScoreBound,
    SetCondition, SetOptions, StreamTrim, TrimTo, WireArg, XaddOptions, XautoclaimCount,
    ZaddOptions,
};
pub use config::{ConnectionConfig, SentinelConfig, TlsConfig};
pub use error::{BackendError, DeadLetterReason, Error, ErrorKind};
pub use error_class::ErrorClass;
pub use seam::KvBackend;
pub use value::{FromReply, Value};

pub use breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitState, FailurePolicy, Permit, RateWindow,
    Rejected, Transition,
};
//
pub use retry::{
    Backoff, ByClass, Jitter, RetryBudget, RetryDecision, RetryError, RetryPolicy, retry_with,
};
//
pub use cache::Invalidation;
#[cfg(feature = "cache")]
pub use cache::{CacheConfig, CacheStats, Cached, Freshness};
#[cfg(feature = "durable")]
pub use client::JournaledBuilder;
pub use client::{
    ClientStats, DEFAULT_RECORD_TTL, ExactlyOnceConfig, LivenessConfig, Once, Pipeline,
    ResilientClient, ResilientClientBuilder, Script, ShutdownReport, StoreFuture, Submitted,
    WriteId, script_sha1,
};
pub use cluster::{
    ClientRouter, ClusterBackend, ReadPolicy, ReplicaReadStats, SLOT_COUNT, SentinelReadBackend,
    ShardStats, ShardedClient, ShardedClientBuilder, hash_slot, key_for_slot,
};
pub use priority::{Priority, StoreOutcome, Ticket, TicketOutcome};
pub use pubsub::{
    Gap, MessageKind, PubSubLink, PubSubMessage, Subscriber, SubscriberConfig, SubscriberEvent,
    Subscription,
};
pub use queue::{DeadLetter, DeadLetterListener, QueueConfig, QueueStats};
