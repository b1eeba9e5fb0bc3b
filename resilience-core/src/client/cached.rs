//! Reads through the client-side cache ([`crate::cache`]): `GET` and `HGETALL`, the
//! `*_cached` methods that may answer stale while Redis is down, and the write hook that
//! invalidates locally.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use crate::breaker::CircuitState;
use crate::cache::{CacheStats, Cached, Entry, Freshness, ReadCache, TrackedReply};
use crate::{Command, Error, Value};

use super::call::record_outcome;
use super::{ClientInner, ResilientClient};

/// Removes the keys a write touches from the cache when created (before the write is
/// sent) and again when dropped (after it ended, or was cancelled).
pub(crate) struct WriteGuard {
    cache: Arc<ReadCache>,
    /// `None`: some write declared no keys, so any key may change.
    keys: Option<Vec<String>>,
}

impl WriteGuard {
    fn apply(&self) {
        match &self.keys {
            Some(keys) => keys.iter().for_each(|k| self.cache.invalidate_key(k)),
            None => self.cache.flush(),
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.apply();
    }
}

/// A [`WriteGuard`] for the writes among `cmds`, or `None` when none writes.
pub(crate) fn before_write(cache: &Arc<ReadCache>, cmds: &[Command]) -> Option<WriteGuard> {
    let mut keys: Option<Vec<String>> = Some(Vec::new());
    let mut writes = false;
    for cmd in cmds.iter().filter(|c| c.is_write()) {
        writes = true;
        match (&mut keys, cmd.keys()) {
            (_, []) => keys = None,
            (Some(all), some) => all.extend_from_slice(some),
            (None, _) => {}
        }
    }
    if !writes {
        return None;
    }
    let guard = WriteGuard {
        cache: Arc::clone(cache),
        keys,
    };
    guard.apply();
    Some(guard)
}

/// Which cached command a read is.
#[derive(Clone, Copy)]
enum Kind {
    Get,
    Hgetall,
}

impl Kind {
    fn command(self, key: String) -> Command {
        match self {
            Kind::Get => Command::Get { key },
            Kind::Hgetall => Command::Hgetall { key },
        }
    }

    fn matches(self, entry: &Entry) -> bool {
        matches!(
            (self, entry),
            (Kind::Get, Entry::String(_)) | (Kind::Hgetall, Entry::Hash(_))
        )
    }

    fn entry(self, value: Value) -> Result<Entry, Error> {
        Ok(match self {
            Kind::Get => Entry::String(value.into_opt_bytes()?),
            Kind::Hgetall => Entry::Hash(Arc::new(
                value.into_pairs()?.into_iter().collect::<HashMap<_, _>>(),
            )),
        })
    }
}

impl ClientInner {
    /// Whether cached entries may be served as [`Freshness::Cached`] now.
    fn cache_trusted(&self, cache: &ReadCache) -> bool {
        cache.is_tracking()
            && !matches!(
                self.breaker.state(),
                CircuitState::Open | CircuitState::ForcedOpen
            )
    }

    /// A tracked read through the breaker (the cache-fill twin of `call_once_hooked`).
    async fn call_tracked(self: &Arc<Self>, cmd: Command) -> Result<TrackedReply, Error> {
        let (ordinal, name) = (cmd.ordinal(), cmd.name());
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => return Err(self.reject(ordinal, name, rejected)),
        };
        let started = self.call_start();
        let span = if self.observability.call_spans {
            tracing::trace_span!("redis.call", client = %self.name, backend = self.backend.name(), command = name, tracked = true, outcome = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let result = (*self.backend)
            .execute_tracked(cmd)
            .instrument(span.clone())
            .await;
        record_outcome(&span, result.as_ref().err());
        self.finish(permit, ordinal, name, started, result.as_ref().err());
        result.map_err(|e| Error::from(e.naming_command(name)))
    }

    /// One cached read: a trusted hit, else the server (filling the cache when the read
    /// is tracked), else, with `allow_stale`, the last value held when the server could
    /// not be asked.
    async fn read_through(
        self: &Arc<Self>,
        cache: &Arc<ReadCache>,
        kind: Kind,
        key: String,
        allow_stale: bool,
    ) -> Result<Cached<Entry>, Error> {
        cache.ensure_listener();
        let trusted = self.cache_trusted(cache);
        if trusted && let Some(entry) = cache.lookup(&key).filter(|e| kind.matches(e)) {
            cache.count_hit();
            return Ok(Cached {
                value: entry,
                freshness: Freshness::Cached,
            });
        }
        cache.count_miss();
        let result = if trusted {
            let ticket = cache.begin_fill(&key);
            match self.call_tracked(kind.command(key.clone())).await {
                Ok(reply) => {
                    let entry = kind.entry(reply.value)?;
                    if reply.tracked {
                        cache.complete_fill(ticket, key.clone(), entry.clone());
                    }
                    Ok(entry)
                }
                Err(e) => Err(e),
            }
        } else {
            match self.call(kind.command(key.clone())).await {
                Ok(value) => kind.entry(value),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(entry) => Ok(Cached {
                value: entry,
                freshness: Freshness::Fresh,
            }),
            Err(e) if allow_stale && e.class().is_outage() => {
                match cache.lookup(&key).filter(|entry| kind.matches(entry)) {
                    Some(entry) => {
                        cache.count_stale();
                        Ok(Cached {
                            value: entry,
                            freshness: Freshness::Stale,
                        })
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

fn into_string(entry: Entry) -> Option<Bytes> {
    match entry {
        Entry::String(value) => value,
        Entry::Hash(_) => None,
    }
}

fn into_hash(entry: Entry) -> HashMap<String, Bytes> {
    match entry {
        Entry::Hash(map) => Arc::try_unwrap(map).unwrap_or_else(|shared| (*shared).clone()),
        Entry::String(_) => HashMap::new(),
    }
}

impl ResilientClient {
    /// `GET` through the cache: `Ok` holds the value and where it came from
    /// ([`Freshness`]). While the server cannot be asked (breaker open, unreachable, timed
    /// out, busy) and the cache still holds the key, the held value is returned as
    /// [`Freshness::Stale`] instead of the error. Without a cache it is `get` marked
    /// `Fresh`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), when no cached value may answer (a stale one answers an
    /// outage only while the entry is younger than the cache's `ttl`).
    ///
    /// # Cancel safety
    ///
    /// As [`execute`](Self::execute); a read being cached is simply not cached.
    pub async fn get_cached(&self, key: impl Into<String>) -> Result<Cached<Option<Bytes>>, Error> {
        let key = key.into();
        match &self.inner.cache {
            Some(cache) => {
                let read = self.inner.read_through(cache, Kind::Get, key, true).await?;
                Ok(Cached {
                    value: into_string(read.value),
                    freshness: read.freshness,
                })
            }
            None => Ok(Cached {
                value: self.get(key).await?,
                freshness: Freshness::Fresh,
            }),
        }
    }

    /// `HGETALL` through the cache, like [`get_cached`](Self::get_cached).
    ///
    /// # Errors
    ///
    /// As [`get_cached`](Self::get_cached).
    ///
    /// # Cancel safety
    ///
    /// As [`get_cached`](Self::get_cached).
    pub async fn hgetall_cached(
        &self,
        key: impl Into<String>,
    ) -> Result<Cached<HashMap<String, Bytes>>, Error> {
        let key = key.into();
        match &self.inner.cache {
            Some(cache) => {
                let read = self
                    .inner
                    .read_through(cache, Kind::Hgetall, key, true)
                    .await?;
                Ok(Cached {
                    value: into_hash(read.value),
                    freshness: read.freshness,
                })
            }
            None => Ok(Cached {
                value: self.hgetall(key).await?,
                freshness: Freshness::Fresh,
            }),
        }
    }

    /// The cache's counters, or `None` when this client has no cache (not configured, or
    /// the backend does not track).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(|c| {
            c.settle();
            c.stats()
        })
    }

    /// Whether the cache holds a value for `key` now (trusted or kept for stale reads).
    /// `false` without a cache. For tests and diagnostics: it does not read or fill.
    pub fn is_cached(&self, key: &str) -> bool {
        self.inner.cache.as_ref().is_some_and(|c| c.contains(key))
    }

    /// Empties the cache (a no-op without one).
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.flush();
        }
    }

    /// `GET` through the cache for the plain [`get`](Self::get): never stale.
    pub(super) async fn get_via_cache(
        &self,
        cache: &Arc<ReadCache>,
        key: String,
    ) -> Result<Option<Bytes>, Error> {
        let read = self
            .inner
            .read_through(cache, Kind::Get, key, false)
            .await?;
        Ok(into_string(read.value))
    }

    /// `HGETALL` through the cache for the plain [`hgetall`](Self::hgetall): never stale.
    pub(super) async fn hgetall_via_cache(
        &self,
        cache: &Arc<ReadCache>,
        key: String,
    ) -> Result<HashMap<String, Bytes>, Error> {
        let read = self
            .inner
            .read_through(cache, Kind::Hgetall, key, false)
            .await?;
        Ok(into_hash(read.value))
    }
}
