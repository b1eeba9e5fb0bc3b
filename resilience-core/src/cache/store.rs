//! The cache store: a bounded moka cache, and the counters that keep a slow read from
//! putting an invalidated value back.
//!
//! # Why a fill can never outlive an invalidation
//!
//! A fill takes a [`FillTicket`] *before* its read is sent, and after the reply it inserts
//! the value, then checks the ticket; an invalidation bumps a counter, then removes the key:
//!
//! - per key: a counter per stripe (the key's hash picks one of [`STRIPES`]). Fill: insert,
//!   `SeqCst` fence, re-read the stripe; invalidation: bump the stripe, `SeqCst` fence,
//!   remove. With the two fences, either the fill sees the bump (and removes its own
//!   insert) or the removal sees the insert: both orders end with the key gone.
//! - whole cache: every flush bumps `epoch`, and an entry is served only if it was filled
//!   under the current epoch, so an entry filled across a flush is never served whatever
//!   moka's own `invalidate_all` timing.
//! - tracking lost: a fill that completes after [`Invalidation::Lost`], or that started
//!   before one, is not kept.
//!
//! An invalidation of another key in the same stripe also drops a concurrent fill: that
//! costs one cache miss, never correctness.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::types::{CacheConfig, CacheStats, Invalidation, InvalidationFeed};

/// How many per-key invalidation counters there are.
pub(crate) const STRIPES: usize = 64;

/// A cached reply, typed by the command that read it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Entry {
    /// A `GET` reply.
    String(Option<Bytes>),
    /// An `HGETALL` reply.
    Hash(Arc<HashMap<String, Bytes>>),
}

#[derive(Clone)]
struct Slot {
    entry: Entry,
    /// The flush epoch the fill started in; served only while it is the current one.
    epoch: u64,
}

/// Taken before a fill's read is sent; checked when its value is inserted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FillTicket {
    stripe: usize,
    stripe_seq: u64,
    epoch: u64,
    lost: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    invalidated_keys: AtomicU64,
    flushes: AtomicU64,
}

/// A client's read cache. See the module docs for the invariants.
pub(crate) struct ReadCache {
    entries: moka::sync::Cache<String, Slot>,
    stripes: [AtomicU64; STRIPES],
    epoch: AtomicU64,
    lost: AtomicU64,
    tracking: AtomicBool,
    hasher: RandomState,
    counters: Counters,
    /// The feed, until the listener task takes it (it starts inside a runtime).
    feed: Mutex<Option<broadcast::Receiver<Invalidation>>>,
    listener: OnceLock<JoinHandle<()>>,
}

impl Drop for ReadCache {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

impl ReadCache {
    /// A cache fed by `feed`. Its listener starts now if a Tokio runtime is running, else
    /// on first use ([`ReadCache::ensure_listener`]).
    pub(crate) fn new(config: &CacheConfig, feed: InvalidationFeed) -> Arc<Self> {
        let entries = moka::sync::Cache::builder()
            .max_capacity(config.max_entries)
            .time_to_live(config.ttl)
            .build();
        let cache = Arc::new(ReadCache {
            entries,
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            epoch: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            tracking: AtomicBool::new(feed.tracking),
            hasher: RandomState::new(),
            counters: Counters::default(),
            feed: Mutex::new(Some(feed.receiver)),
            listener: OnceLock::new(),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            cache.ensure_listener();
        }
        cache
    }

    /// Starts the task that applies the backend's invalidations, once. Must run inside a
    /// Tokio runtime (every caller is async).
    pub(crate) fn ensure_listener(self: &Arc<Self>) {
        if self.listener.get().is_some() {
            return;
        }
        let mut feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(receiver) = feed.take() {
            let task = tokio::spawn(listen(Arc::downgrade(self), receiver));
            // Only the holder of `feed`'s receiver gets here, so the cell is empty.
            let _ = self.listener.set(task);
        }
    }

    /// Whether the backend is tracking for this cache now.
    pub(crate) fn is_tracking(&self) -> bool {
        self.tracking.load(Ordering::SeqCst)
    }

    /// The entry for `key` if it was filled since the last flush (trusted or not: the
    /// caller decides whether it may serve it, and as what).
    pub(crate) fn lookup(&self, key: &str) -> Option<Entry> {
        let slot = self.entries.get(key)?;
        (slot.epoch == self.epoch.load(Ordering::SeqCst)).then_some(slot.entry)
    }

    /// Whether a value for `key` is held (filled since the last flush).
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    fn stripe(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) % STRIPES as u64) as usize
    }

    /// Takes the ticket for a fill of `key`; call before the read is sent.
    pub(crate) fn begin_fill(&self, key: &str) -> FillTicket {
        let stripe = self.stripe(key);
        FillTicket {
            stripe,
            stripe_seq: self.stripes[stripe].load(Ordering::SeqCst),
            epoch: self.epoch.load(Ordering::SeqCst),
            lost: self.lost.load(Ordering::SeqCst),
        }
    }

    /// Keeps a tracked read's `entry` for `key`, unless anything that could make it stale
    /// happened since `ticket` was taken (see the module docs). Returns whether it was kept.
    pub(crate) fn complete_fill(&self, ticket: FillTicket, key: String, entry: Entry) -> bool {
        if !self.is_tracking() {
            return false;
        }
        let probe = key.clone();
        self.entries.insert(
            key,
            Slot {
                entry,
                epoch: ticket.epoch,
            },
        );
        fence(Ordering::SeqCst);
        let intact = self.stripes[ticket.stripe].load(Ordering::SeqCst) == ticket.stripe_seq
            && self.epoch.load(Ordering::SeqCst) == ticket.epoch
            && self.lost.load(Ordering::SeqCst) == ticket.lost
            && self.is_tracking();
        if !intact {
            self.entries.invalidate(&probe);
        }
        intact
    }

    /// Removes `key` (a local write, or the server said it changed).
    pub(crate) fn invalidate_key(&self, key: &str) {
        let stripe = self.stripe(key);
        self.stripes[stripe].fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.entries.invalidate(key);
        self.counters
            .invalidated_keys
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Empties the cache: nothing filled before is served again.
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies one message from the backend.
    pub(crate) fn apply(&self, invalidation: Invalidation) {
        match invalidation {
            Invalidation::Keys(keys) => {
                for key in &keys {
                    self.invalidate_key(key);
                }
            }
            Invalidation::All => self.flush(),
            Invalidation::Lost => {
                self.tracking.store(false, Ordering::SeqCst);
                self.lost.fetch_add(1, Ordering::SeqCst);
            }
            Invalidation::Resumed => {
                self.flush();
                self.tracking.store(true, Ordering::SeqCst);
            }
        }
    }

    pub(crate) fn count_hit(&self) {
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_stale(&self) {
        self.counters.stale.fetch_add(1, Ordering::Relaxed);
    }

    /// Settles moka's pending evictions (for exact counts in tests and stats).
    pub(crate) fn settle(&self) {
        self.entries.run_pending_tasks();
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            invalidated_keys: c.invalidated_keys.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            entries: self.entries.entry_count(),
            tracking: self.is_tracking(),
        }
    }
}

/// Applies the feed to the cache until either is gone. A lagging receiver missed messages:
/// it empties the cache. A closed feed (the backend is gone) means no more invalidations:
/// the cache stops trusting its entries.
async fn listen(cache: Weak<ReadCache>, mut receiver: broadcast::Receiver<Invalidation>) {
    loop {
        let message = receiver.recv().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        match message {
            Ok(invalidation) => cache.apply(invalidation),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "client cache: invalidations lagged behind; emptying the cache"
                );
                cache.flush();
            }
            Err(RecvError::Closed) => {
                cache.apply(Invalidation::Lost);
                return;
            }
        }
    }
}
