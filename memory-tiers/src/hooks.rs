//! Listeners told what happened to memories: stored, moved to IM, seen expired, evicted
//! from the fallback, deleted.
//!
//! Its guide is in the docs of its main type.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use ulid::Ulid;

/// Events waiting for the listeners before new ones are dropped.
const PENDING_EVENTS: usize = 4096;

/// What happened to a memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryEventKind {
    /// A store was accepted: stored, or queued to be stored once Redis answers.
    Stored,
    /// The memory moved from STM to IM.
    MovedToIm,
    /// Its expiry was seen: a cleanup removed it from its tier's index.
    Expired,
    /// The local fallback dropped its copy to stay within capacity.
    Evicted,
    /// It was deleted (`delete` or `clear`).
    Deleted,
}

/// One event: what happened, to which agent's memory.
///
/// A listener never runs on the write path. Events go through a bounded channel to one
/// thread of their own, which calls the listeners in order; a listener that panics is
/// logged and the next event still reaches every listener, and a slow one holds back only
/// the events after it, never a write. When the channel is full (4,096 events waiting), a
/// new event is dropped and counted ([`TieredMemory::events_dropped`]) rather than making a
/// write wait.
///
/// [`TieredMemory::events_dropped`]: crate::TieredMemory::events_dropped
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryEvent {
    /// What happened.
    pub kind: MemoryEventKind,
    /// The agent.
    pub agent_id: Arc<str>,
    /// The memory.
    pub memory_id: Ulid,
}

/// A listener, as registered with [`TieredMemoryBuilder::on_event`].
///
/// [`TieredMemoryBuilder::on_event`]: crate::TieredMemoryBuilder::on_event
pub(crate) type Listener = Arc<dyn Fn(&MemoryEvent) + Send + Sync>;

/// The listeners of one `TieredMemory` and the channel to their thread.
#[derive(Default)]
pub(crate) struct Hooks {
    listeners: Vec<Listener>,
    sender: OnceLock<mpsc::Sender<MemoryEvent>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("listeners", &self.listeners.len())
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Hooks {
    /// Adds a listener (before any event was sent).
    pub(crate) fn add(&mut self, listener: Listener) {
        self.listeners.push(listener);
    }

    /// Events dropped because the listeners fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands `kind` for `agent_id`'s memories `ids` to the listeners, without waiting.
    pub(crate) fn emit(&self, kind: MemoryEventKind, agent_id: &Arc<str>, ids: &[Ulid]) {
        if self.listeners.is_empty() || ids.is_empty() {
            return;
        }
        let sender = self.sender.get_or_init(|| self.start());
        for &memory_id in ids {
            let event = MemoryEvent {
                kind,
                agent_id: Arc::clone(agent_id),
                memory_id,
            };
            if sender.try_send(event).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Starts the listeners' thread; it ends when the last sender is dropped.
    fn start(&self) -> mpsc::Sender<MemoryEvent> {
        let (tx, mut rx) = mpsc::channel::<MemoryEvent>(PENDING_EVENTS);
        let listeners = self.listeners.clone();
        let started = std::thread::Builder::new()
            .name("memory-tiers-hooks".to_owned())
            .spawn(move || {
                while let Some(event) = rx.blocking_recv() {
                    for listener in &listeners {
                        if catch_unwind(AssertUnwindSafe(|| listener(&event))).is_err() {
                            tracing::warn!(?event, "a memory event listener panicked");
                        }
                    }
                }
            });
        if let Err(e) = started {
            // No thread, no listeners: every event is counted as dropped.
            tracing::warn!(error = %e, "could not start the memory event listeners' thread");
        }
        tx
    }
}
