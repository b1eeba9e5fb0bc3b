//! The cache's types: its configuration and statistics, what a cached read returns, and
//! the invalidations a tracking backend feeds it.

#[cfg(feature = "cache")]
use std::time::Duration;

use tokio::sync::broadcast;

use crate::Value;

#[cfg(feature = "cache")]
/// Size and age limits of the client-side cache.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`CacheConfig::default().with_…(…)`), or assign fields of a default value.
///
/// Off by default. A client built with
/// [`ResilientClientBuilder::client_cache`](crate::ResilientClientBuilder::client_cache)
/// keeps `GET` and `HGETALL` replies in a bounded in-process cache ([moka]) and drops an
/// entry as soon as the server says its key changed (RESP3 `CLIENT TRACKING`, see
/// [`TrackingHub`](crate::backend::TrackingHub)). While Redis is down, [`get_cached`](crate::ResilientClient::get_cached)
/// and [`hgetall_cached`](crate::ResilientClient::hgetall_cached) may answer from the cache,
/// and say so ([`Freshness::Stale`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), resilience_core::Error> {
/// # let backend = backend_memory::InMemoryBackend::new();
/// use resilience_core::{CacheConfig, Freshness, ResilientClient};
/// // `backend` must track (e.g. a redis-rs or fred backend connected with
/// // `?client_tracking=true`); otherwise the cache stays off.
/// let client = ResilientClient::builder("agent_stm", backend)
///     .client_cache(CacheConfig::default())
///     .build()?;
/// let read = client.get_cached("agent:1:name").await?;
/// if read.freshness == Freshness::Stale {
///     // Redis is unreachable: this is the last value this client saw.
/// }
/// # Ok(()) }
/// ```
///
/// # Promises
///
/// - **Off unless asked.** Without `client_cache`, or over a backend whose
///   [`invalidations`](crate::KvBackend::invalidations) is `None` (a warning is logged
///   then), every read goes to the server exactly as before.
/// - **Bounded.** At most [`CacheConfig::max_entries`] keys, least recently used evicted
///   first, and no entry older than [`CacheConfig::ttl`] (a safety net against a missed
///   invalidation, e.g. a `FLUSHALL` that the fred backend cannot see).
/// - **Invalidated by the server.** A write by any client to a cached key removes the
///   entry when the server's invalidation message arrives (well under 100 ms on a local
///   network; the integration tests measure it). A write through *this* client removes it
///   locally too, before the write is sent and again when it ends (whatever its outcome,
///   queued replays included). A write whose keys are unknown (a `Raw` or script command
///   that declares none) empties the whole cache.
/// - **No stale fill.** A read that started before an invalidation of its key (or before
///   the cache was emptied, or before tracking was lost) never lands in the cache
///   afterwards: the invalidation wins.
/// - **Only tracked reads are kept.** A value enters the cache only if the server is
///   tracking its key for this connection (`OPTIN` mode: the read is sent right after
///   `CLIENT CACHING YES`, and fails over to a plain, uncached read if the connection is
///   not tracking).
/// - **Connection changes empty it.** When the backend's connection drops or is replaced,
///   the invalidations of the old one are lost: entries stop being served as
///   [`Freshness::Cached`] at once (they are kept only for stale reads), and the cache is
///   emptied when tracking is on again.
/// - **Plain reads never return stale data.** [`get`](crate::ResilientClient::get) and
///   [`hgetall`](crate::ResilientClient::hgetall) answer from the cache only while it is
///   trusted (tracking on, breaker not open); otherwise they go to the server and fail as
///   they always did. Only the `*_cached` methods serve stale values, marked
///   [`Freshness::Stale`].
///
/// [moka]: https://docs.rs/moka
#[derive(Clone, Debug, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most keys kept (least recently used evicted first). Default 10,000; at least 1.
    pub max_entries: u64,
    /// Longest an entry is kept, invalidated or not: a safety net. Default 60 s. Stale
    /// reads during an outage cannot be older than this either.
    pub ttl: Duration,
}

#[cfg(feature = "cache")]
impl CacheConfig {
    /// Checks every setting: the first one out of range is an
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming it and saying why.
    pub fn check(&self) -> Result<(), crate::Error> {
        if self.max_entries == 0 {
            return Err(crate::Error::InvalidInput(
                "client_cache.max_entries: a cache of 0 keys holds nothing; use 1 or more, or leave the cache off".into(),
            ));
        }
        if self.ttl.is_zero() {
            return Err(crate::Error::InvalidInput(
                "client_cache.ttl: a zero lifetime expires every entry as it is stored".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(feature = "cache")]
impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 10_000,
            ttl: Duration::from_secs(60),
        }
    }
}

#[cfg(feature = "cache")]
/// Where a value returned by [`get_cached`](crate::ResilientClient::get_cached) and
/// [`hgetall_cached`](crate::ResilientClient::hgetall_cached) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Read from the server by this call.
    Fresh,
    /// From the cache while it is trusted: the server is tracking the key for this client
    /// and the breaker is not open, so a newer write would have removed it.
    Cached,
    /// From the cache because the server could not be asked (breaker open, unreachable,
    /// timed out or busy): the last value this client saw, which may be out of date.
    Stale,
}

#[cfg(feature = "cache")]
/// A value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached<T> {
    /// The value.
    pub value: T,
    /// Whether it is fresh from the server, from the trusted cache, or stale.
    pub freshness: Freshness,
}

#[cfg(feature = "cache")]
/// A snapshot of a client's cache counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from the trusted cache.
    pub hits: u64,
    /// Reads that went to the server while the cache was on.
    pub misses: u64,
    /// Reads answered with a stale value.
    pub stale: u64,
    /// Keys removed because the server or a local write said they changed.
    pub invalidated_keys: u64,
    /// Times the whole cache was emptied.
    pub flushes: u64,
    /// Entries held now (approximate: the cache settles evictions in the background).
    pub entries: u64,
    /// Whether the backend is tracking for this cache now (invalidations flowing).
    pub tracking: bool,
}

/// What a tracking backend tells the cache. Sent on the broadcast channel of
/// [`InvalidationFeed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// These keys may have changed on the server.
    Keys(Vec<String>),
    /// Any key may have changed (`FLUSHDB`/`FLUSHALL`): empty the cache.
    All,
    /// The tracked connection was lost or replaced: its invalidations will not arrive.
    /// Entries are no longer trusted (kept for stale reads only) until [`Resumed`](Self::Resumed).
    Lost,
    /// Tracking is on again on the current connection. What was cached before may have
    /// missed invalidations: empty the cache, then trust new entries.
    Resumed,
}

/// A subscription to a backend's invalidations: the receiver, and whether tracking was on
/// when it was taken (read after subscribing, so no change in between is missed).
#[derive(Debug)]
pub struct InvalidationFeed {
    /// The invalidations, in the order the backend saw them. A receiver that lags behind
    /// (more than the channel holds) must assume it missed some: the cache empties itself.
    pub receiver: broadcast::Receiver<Invalidation>,
    /// Whether the backend's connection was tracking when the feed was taken.
    pub tracking: bool,
}

/// The reply of [`KvBackend::execute_tracked`](crate::KvBackend::execute_tracked).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedReply {
    /// The command's reply, in its canonical shape.
    pub value: Value,
    /// Whether the server now tracks the command's key for this backend's connection, so
    /// that a later change sends an invalidation. Only tracked replies may be cached.
    pub tracked: bool,
}
