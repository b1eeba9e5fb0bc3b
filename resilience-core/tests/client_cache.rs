//! The client-side cache (`resilience_core::CacheConfig`) over a tracking test backend: an
//! `InMemoryBackend` that, like a Redis server with `CLIENT TRACKING`, tells every
//! subscriber which keys a write changed. Time-dependent parts run on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backend_memory::InMemoryBackend;
use bytes::Bytes;
use resilience_core::backend::{InvalidationFeed, TrackedReply};
use resilience_core::{
    BackendError, CircuitState, Command, Error, Invalidation, KvBackend, ResilientClient,
    SetOptions, Value,
};
use resilience_core::{CacheConfig, Freshness};
use tokio::sync::{Mutex, Notify, broadcast};

/// An in-memory "server" that tracks: writes are announced on the feed.
struct TrackingMemory {
    memory: InMemoryBackend,
    feed: broadcast::Sender<Invalidation>,
    /// Whether writes are announced (off: only local invalidation can help).
    announce: AtomicBool,
    /// While set, every call fails with `Unavailable`.
    down: AtomicBool,
    /// Tracked reads served.
    tracked_reads: AtomicUsize,
    /// Plain (untracked) reads served.
    plain_reads: AtomicUsize,
    /// When set, a tracked read waits for this before answering (it has read already).
    hold: Mutex<Option<Arc<Notify>>>,
    /// Signalled when a held read has read its value.
    read_done: Notify,
    /// Keys read with tracking and not invalidated since (as the server keeps them).
    tracked: std::sync::Mutex<HashSet<String>>,
}

impl TrackingMemory {
    fn new() -> Arc<Self> {
        Arc::new(TrackingMemory {
            memory: InMemoryBackend::new(),
            feed: broadcast::channel(1024).0,
            announce: AtomicBool::new(true),
            down: AtomicBool::new(false),
            tracked_reads: AtomicUsize::new(0),
            plain_reads: AtomicUsize::new(0),
            hold: Mutex::new(None),
            read_done: Notify::new(),
            tracked: std::sync::Mutex::new(HashSet::new()),
        })
    }

    fn check_up(&self) -> Result<(), BackendError> {
        if self.down.load(Ordering::SeqCst) {
            Err(BackendError::unavailable("test: server down"))
        } else {
            Ok(())
        }
    }

    fn announce(&self, cmds: &[Command]) {
        if !self.announce.load(Ordering::SeqCst) {
            return;
        }
        // Like Redis: only keys read with tracking are announced, once per read.
        let mut tracked = self.tracked.lock().unwrap();
        for cmd in cmds.iter().filter(|c| c.is_write()) {
            let keys: Vec<String> = cmd
                .keys()
                .iter()
                .filter(|k| tracked.remove(*k))
                .cloned()
                .collect();
            if !keys.is_empty() {
                let _ = self.feed.send(Invalidation::Keys(keys));
            }
        }
    }
}

#[async_trait]
impl KvBackend for TrackingMemory {
    async fn execute(&self, cmd: Command) -> Result<Value, BackendError> {
        self.check_up()?;
        if !cmd.is_write() {
            self.plain_reads.fetch_add(1, Ordering::SeqCst);
        }
        let announce = cmd.clone();
        let value = self.memory.execute(cmd).await?;
        self.announce(std::slice::from_ref(&announce));
        Ok(value)
    }

    async fn execute_batch(
        &self,
        cmds: Vec<Command>,
        atomic: bool,
    ) -> Result<Vec<Value>, BackendError> {
        self.check_up()?;
        let announce = cmds.clone();
        let values = self.memory.execute_batch(cmds, atomic).await?;
        self.announce(&announce);
        Ok(values)
    }

    fn name(&self) -> &'static str {
        "tracking-memory"
    }

    fn invalidations(&self) -> Option<InvalidationFeed> {
        Some(InvalidationFeed {
            receiver: self.feed.subscribe(),
            tracking: true,
        })
    }

    async fn execute_tracked(&self, cmd: Command) -> Result<TrackedReply, BackendError> {
        self.check_up()?;
        self.tracked_reads.fetch_add(1, Ordering::SeqCst);
        self.tracked
            .lock()
            .unwrap()
            .extend(cmd.keys().iter().cloned());
        let value = self.memory.execute(cmd).await?;
        let hold = self.hold.lock().await.clone();
        if let Some(hold) = hold {
            self.read_done.notify_one();
            hold.notified().await;
        }
        Ok(TrackedReply {
            value,
            tracked: true,
        })
    }
}

fn client(backend: &Arc<TrackingMemory>, config: CacheConfig) -> ResilientClient {
    ResilientClient::builder_arc("cached", Arc::clone(backend) as Arc<dyn KvBackend>)
        .breaker(resilience_core::CircuitBreakerConfig::default().circuit_threshold(2))
        .client_cache(config)
        .build()
        .expect("valid client settings")
}

fn plain_client(backend: &Arc<TrackingMemory>) -> ResilientClient {
    ResilientClient::builder_arc("writer", Arc::clone(backend) as Arc<dyn KvBackend>)
        .build()
        .expect("valid client settings")
}

async fn set(client: &ResilientClient, key: &str, value: &'static str) {
    client
        .set(
            key,
            Bytes::from_static(value.as_bytes()),
            SetOptions::default(),
        )
        .await
        .unwrap();
}

/// Lets the cache's listener task run until `done` holds (bounded).
async fn settle(done: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    done()
}

#[tokio::test(start_paused = true)]
async fn a_second_read_is_a_hit_and_marked_cached() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default());
    set(&a, "k", "v1").await;
    let first = a.get_cached("k").await.unwrap();
    assert_eq!(first.freshness, Freshness::Fresh);
    assert_eq!(first.value.as_deref(), Some(&b"v1"[..]));
    let second = a.get_cached("k").await.unwrap();
    assert_eq!(second.freshness, Freshness::Cached);
    assert_eq!(second.value.as_deref(), Some(&b"v1"[..]));
    // The plain method is served from the trusted cache too.
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(backend.tracked_reads.load(Ordering::SeqCst), 1);
    let stats = a.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (2, 1));
    assert!(stats.tracking);
}

#[tokio::test(start_paused = true)]
async fn hgetall_is_cached_and_a_missing_key_too() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default());
    a.hmset("h", [("f1", "1"), ("f2", "2")]).await.unwrap();
    let first = a.hgetall_cached("h").await.unwrap();
    assert_eq!(first.freshness, Freshness::Fresh);
    assert_eq!(first.value.len(), 2);
    let second = a.hgetall_cached("h").await.unwrap();
    assert_eq!(second.freshness, Freshness::Cached);
    assert_eq!(second.value, first.value);
    assert_eq!(a.hgetall("h").await.unwrap(), first.value);
    // A GET of a missing key is cached as missing.
    assert_eq!(a.get_cached("nope").await.unwrap().value, None);
    let again = a.get_cached("nope").await.unwrap();
    assert_eq!((again.value, again.freshness), (None, Freshness::Cached));
    assert_eq!(backend.tracked_reads.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_write_through_the_same_client_invalidates_at_once() {
    let backend = TrackingMemory::new();
    // No server invalidations: only the local write hook can drop the entry.
    backend.announce.store(false, Ordering::SeqCst);
    let a = client(&backend, CacheConfig::default());
    set(&a, "k", "v1").await;
    a.get("k").await.unwrap();
    assert!(a.is_cached("k"));
    set(&a, "k", "v2").await;
    assert!(!a.is_cached("k"), "the write did not invalidate its key");
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    a.hset("h", "f", "1").await.unwrap();
    a.hgetall("h").await.unwrap();
    assert!(a.is_cached("h"));
    // A pipeline write invalidates too.
    a.pipeline()
        .add_command(Command::Hdel {
            key: "h".into(),
            fields: vec!["f".into()],
        })
        .execute()
        .await
        .unwrap();
    assert!(!a.is_cached("h"));
    // A write that declares no keys empties the whole cache.
    a.get("k").await.unwrap();
    assert!(a.is_cached("k"));
    let _ = a
        .execute(Command::Raw {
            args: vec![Bytes::from_static(b"PING")],
            keys: vec![],
            write: true,
            idempotent: true,
        })
        .await;
    assert!(!a.is_cached("k"));
}

#[tokio::test(start_paused = true)]
async fn a_write_by_another_client_evicts_the_entry() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default());
    let b = plain_client(&backend);
    set(&b, "k", "v1").await;
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(a.is_cached("k"));
    set(&b, "k", "v2").await;
    assert!(
        settle(|| !a.is_cached("k")).await,
        "the server's invalidation did not evict the entry"
    );
    let read = a.get_cached("k").await.unwrap();
    assert_eq!(read.freshness, Freshness::Fresh);
    assert_eq!(read.value.as_deref(), Some(&b"v2"[..]));
}

#[tokio::test(start_paused = true)]
async fn a_fill_that_raced_an_invalidation_is_not_kept() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default());
    let b = plain_client(&backend);
    set(&b, "k", "old").await;
    let release = Arc::new(Notify::new());
    *backend.hold.lock().await = Some(Arc::clone(&release));
    let reader = {
        let a = a.clone();
        tokio::spawn(async move { a.get_cached("k").await })
    };
    // The read has its (old) value; before it lands, another client writes the key.
    backend.read_done.notified().await;
    let before = a.cache_stats().unwrap().invalidated_keys;
    set(&b, "k", "new").await;
    assert!(settle(|| a.cache_stats().unwrap().invalidated_keys > before).await);
    release.notify_one();
    let read = reader.await.unwrap().unwrap();
    assert_eq!(read.value.as_deref(), Some(&b"old"[..]));
    assert_eq!(read.freshness, Freshness::Fresh);
    assert!(
        !a.is_cached("k"),
        "a value read before the invalidation was cached after it"
    );
    *backend.hold.lock().await = None;
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
    assert!(a.is_cached("k"));
}

#[tokio::test(start_paused = true)]
async fn all_flushes_and_a_lost_connection_stops_trusting_until_resumed() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default());
    set(&a, "k", "v").await;
    a.get("k").await.unwrap();
    assert!(a.is_cached("k"));
    backend.feed.send(Invalidation::All).unwrap();
    assert!(settle(|| !a.is_cached("k")).await, "All did not flush");

    a.get("k").await.unwrap();
    assert!(a.is_cached("k"));
    backend.feed.send(Invalidation::Lost).unwrap();
    assert!(settle(|| !a.cache_stats().unwrap().tracking).await);
    // Untrusted: plain reads go to the server (untracked), the entry stays for stale reads.
    let plain_before = backend.plain_reads.load(Ordering::SeqCst);
    let read = a.get_cached("k").await.unwrap();
    assert_eq!(read.freshness, Freshness::Fresh);
    assert_eq!(backend.plain_reads.load(Ordering::SeqCst), plain_before + 1);
    assert!(a.is_cached("k"));
    backend.down.store(true, Ordering::SeqCst);
    let stale = a.get_cached("k").await.unwrap();
    assert_eq!(stale.freshness, Freshness::Stale);
    assert_eq!(stale.value.as_deref(), Some(&b"v"[..]));
    backend.down.store(false, Ordering::SeqCst);
    // Tracking back on a new connection: what was cached may have missed invalidations.
    backend.feed.send(Invalidation::Resumed).unwrap();
    assert!(settle(|| a.cache_stats().unwrap().tracking).await);
    assert!(!a.is_cached("k"), "Resumed must empty the cache");
    assert_eq!(a.get_cached("k").await.unwrap().freshness, Freshness::Fresh);
    assert_eq!(
        a.get_cached("k").await.unwrap().freshness,
        Freshness::Cached
    );
}

#[tokio::test(start_paused = true)]
async fn stale_while_the_breaker_is_open_and_plain_reads_fail() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default());
    a.hset("h", "f", "1").await.unwrap();
    set(&a, "k", "v").await;
    a.get("k").await.unwrap();
    a.hgetall("h").await.unwrap();
    // The connection drops: the backend says tracking is lost, calls fail.
    backend.down.store(true, Ordering::SeqCst);
    backend.feed.send(Invalidation::Lost).unwrap();
    assert!(settle(|| !a.cache_stats().unwrap().tracking).await);
    // Unreachable: the failing read falls back to the held value.
    let stale = a.get_cached("k").await.unwrap();
    assert_eq!(stale.freshness, Freshness::Stale);
    let _ = a.get("k").await;
    assert_eq!(a.circuit_state(), CircuitState::Open);
    let calls = a.stats().calls;
    let stale = a.get_cached("k").await.unwrap();
    assert_eq!(
        (stale.value.as_deref(), stale.freshness),
        (Some(&b"v"[..]), Freshness::Stale)
    );
    let stale = a.hgetall_cached("h").await.unwrap();
    assert_eq!(stale.freshness, Freshness::Stale);
    assert_eq!(stale.value.get("f").map(|v| &v[..]), Some(&b"1"[..]));
    assert_eq!(
        a.stats().calls,
        calls,
        "an open breaker must not reach the backend"
    );
    // The plain methods never answer stale.
    assert!(matches!(a.get("k").await, Err(Error::CircuitOpen { .. })));
    assert!(matches!(
        a.hgetall("h").await,
        Err(Error::CircuitOpen { .. })
    ));
    // A key never cached has nothing stale to give.
    assert!(matches!(
        a.get_cached("other").await,
        Err(Error::CircuitOpen { .. })
    ));
    assert!(a.cache_stats().unwrap().stale >= 3);
    // Server errors are not outages: no stale value for them.
    backend.down.store(false, Ordering::SeqCst);
    backend.feed.send(Invalidation::Resumed).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(matches!(a.get_cached("h").await, Err(Error::Server(_))));
}

#[tokio::test(start_paused = true)]
async fn the_cache_is_bounded() {
    let backend = TrackingMemory::new();
    let a = client(&backend, CacheConfig::default().with_max_entries(10));
    for i in 0..200 {
        a.get(format!("k{i}")).await.unwrap();
    }
    let stats = a.cache_stats().unwrap();
    assert!(stats.entries <= 10, "{stats:?}");
    assert!(stats.entries > 0, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_tracking_backend_the_cache_stays_off() {
    let client = ResilientClient::builder("plain", InMemoryBackend::new())
        .client_cache(CacheConfig::default())
        .build()
        .expect("valid client settings");
    assert!(client.cache_stats().is_none());
    client
        .set("k", Bytes::from_static(b"v"), SetOptions::default())
        .await
        .unwrap();
    let read = client.get_cached("k").await.unwrap();
    assert_eq!(
        (read.value.as_deref(), read.freshness),
        (Some(&b"v"[..]), Freshness::Fresh)
    );
    assert!(!client.is_cached("k"));
    // And a client without `client_cache` never caches, even over a tracking backend.
    let backend = TrackingMemory::new();
    let plain = plain_client(&backend);
    plain.get("k").await.unwrap();
    plain.get("k").await.unwrap();
    assert_eq!(backend.tracked_reads.load(Ordering::SeqCst), 0);
    assert!(plain.cache_stats().is_none());
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let backend = TrackingMemory::new();
    let a = client(
        &backend,
        CacheConfig::default().with_ttl(Duration::from_millis(50)),
    );
    a.get("k").await.unwrap();
    assert!(a.is_cached("k"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while a.is_cached("k") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!a.is_cached("k"), "the entry outlived its ttl");
}
