//! The recovery queue: writes that failed while Redis was unhealthy, waiting to be replayed.
//!
//! Its guide is in the docs of its main type.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::DeadLetterReason;
use crate::observe;
use crate::priority::{Priority, Ticket, TicketOutcome};

/// Limits of the recovery queue.
///
/// New fields may be added: build one from [`Default`] and the `with_*` setters
/// (`QueueConfig::default().with_…(…)`), or assign fields of a default value.
///
/// The queue lives inside each [`ResilientClient`](crate::ResilientClient), which replays it. The promises:
///
/// - **Bounded.** At most [`QueueConfig::capacity`] operations. When full, a new operation
///   evicts the *newest* queued operation of *lower* priority (whose ticket resolves
///   [`DeadLetterReason::Evicted`]); when there is none, the caller gets
///   [`Error::QueueFull`](crate::Error::QueueFull). Nothing accepted vanishes without its
///   ticket resolving and a metric saying so.
/// - **Order.** Priority first (`Critical`, then `High`, then `Normal`; `Low` is never
///   queued), FIFO within a priority, and, whatever the priorities, operations that share an
///   ordering key (an agent id, or a command's keys) are replayed in the order they were
///   issued: an operation is only eligible once every earlier operation on each of its keys
///   is done. A replay can therefore never overwrite a newer write.
/// - **Limits.** Each operation has `max_attempts` and `max_age`; past either it is
///   dead-lettered with its reason, visible to listeners and in metrics.
/// - **Closing.** Shutting the client down
///   ([`ResilientClient::shutdown`](crate::ResilientClient::shutdown)) stops intake; what
///   remains is dead-lettered with [`DeadLetterReason::Shutdown`] so every ticket resolves.
///
/// The queue is a plain `Mutex`-protected structure: it is only touched when Redis is
/// failing or recovering. On the healthy path a prioritized write only asks whether
/// anything is queued for its keys, and while the queue is empty that is one atomic load
/// (the count of queued operations, kept beside the lock), not the lock.
#[derive(Clone, Debug, PartialEq, Eq, derive_setters::Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct QueueConfig {
    /// Most operations held at once (`recovery_queue_capacity`). Default 10,000.
    pub capacity: usize,
    /// Replay attempts (that reached Redis and failed) before an operation is dead-lettered.
    /// Waiting while the breaker is open does not count. Default 20.
    pub max_attempts: u32,
    /// Longest an operation may wait before it is dead-lettered. Default 1 hour.
    pub max_age: Duration,
    /// Most operations replayed in one round trip. Default 256.
    pub batch_size: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_attempts: 20,
            max_age: Duration::from_secs(3600),
            batch_size: 256,
        }
    }
}

impl QueueConfig {
    /// Checks every setting: the first one out of range is an
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming it and saying why.
    pub fn check(&self) -> Result<(), crate::Error> {
        let bad = |setting: &str, why: &str| {
            Err(crate::Error::InvalidInput(format!(
                "queue.{setting}: {why}"
            )))
        };
        if self.capacity == 0 {
            return bad(
                "capacity",
                "a queue of 0 writes would refuse every write during an outage; use 1 or more",
            );
        }
        if self.max_attempts == 0 {
            return bad(
                "max_attempts",
                "0 attempts would dead-letter every write unreplayed; use 1 or more",
            );
        }
        if self.max_age.is_zero() {
            return bad(
                "max_age",
                "a zero age would dead-letter every write as it is queued",
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "use 1 or more writes per replay round trip");
        }
        Ok(())
    }
}

/// A dead-lettered operation, as told to listeners.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The operation's id (its ticket's id).
    pub id: u64,
    /// Its priority.
    pub priority: Priority,
    /// Its ordering keys (agent id, or the keys its commands touch).
    pub keys: Vec<String>,
    /// Why it was given up.
    pub reason: DeadLetterReason,
    /// How many replay attempts it had.
    pub attempts: u32,
}

/// Something that wants to hear about dead letters.
pub type DeadLetterListener = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// How an operation left the queue, as told to a [`LeaveHook`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Left<'a> {
    /// Replayed and applied.
    Completed,
    /// Given up, for this reason.
    DeadLettered(&'a DeadLetterReason),
}

/// Told about every operation that leaves the queue for good, with its payload (the
/// durable journal uses it to delete the operation's record). Runs outside the queue's lock.
pub(crate) type LeaveHook<P> = Arc<dyn Fn(&P, Left<'_>) + Send + Sync>;

/// A snapshot of the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Operations waiting, by priority: `[critical, high, normal]`.
    pub depth_by_priority: [usize; 3],
    /// Operations waiting in all.
    pub depth: usize,
    /// How long the oldest waiting operation has waited.
    pub oldest_age: Option<Duration>,
    /// The configured capacity.
    pub capacity: usize,
    /// Operations accepted so far.
    pub enqueued: u64,
    /// Operations replayed and applied.
    pub completed: u64,
    /// Operations given up (all reasons, evictions included).
    pub dead_lettered: u64,
    /// Operations evicted by a higher priority (also counted in `dead_lettered`).
    pub evicted: u64,
}

/// Why [`RecoveryQueue::push`] refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Full, and nothing of lower priority to evict.
    Full,
    /// Closed by shutdown.
    Closed,
    /// `Low` operations are never queued.
    LowPriority,
}

/// An operation handed to the replayer. Its payload is shared, not copied.
#[derive(Debug)]
pub(crate) struct Claimed<P> {
    /// The operation's id.
    pub id: u64,
    /// Its payload.
    pub payload: Arc<P>,
    /// Replay attempts so far (before this one).
    #[cfg_attr(not(test), allow(dead_code))]
    pub attempts: u32,
}

struct Entry<P> {
    priority: Priority,
    keys: Vec<String>,
    payload: Arc<P>,
    enqueued_at: Instant,
    attempts: u32,
    in_flight: bool,
    ticket: Option<oneshot::Sender<TicketOutcome>>,
}

struct State<P> {
    next_id: u64,
    ops: HashMap<u64, Entry<P>>,
    /// Pending ids per queueable priority (Critical, High, Normal), ascending = issue order.
    by_priority: [BTreeSet<u64>; 3],
    /// Pending ids per ordering key, in issue order.
    per_key: HashMap<String, VecDeque<u64>>,
    enqueued: u64,
    completed: u64,
    dead_lettered: u64,
    evicted: u64,
}

impl<P> State<P> {
    /// Removes an operation from every index; returns it.
    fn remove(&mut self, id: u64) -> Option<Entry<P>> {
        let entry = self.ops.remove(&id)?;
        self.by_priority[entry.priority.rank()].remove(&id);
        for key in &entry.keys {
            if let Some(ids) = self.per_key.get_mut(key) {
                if ids.front() == Some(&id) {
                    ids.pop_front();
                } else if let Some(pos) = ids.iter().position(|x| *x == id) {
                    ids.remove(pos);
                }
                if ids.is_empty() {
                    self.per_key.remove(key);
                }
            }
        }
        Some(entry)
    }

    /// When the oldest waiting operation was queued. Ids grow in issue order, so it is the
    /// smallest id of the three priority sets: O(log n), no scan.
    fn oldest_enqueued_at(&self) -> Option<Instant> {
        self.by_priority
            .iter()
            .filter_map(|ids| ids.first())
            .min()
            .and_then(|id| self.ops.get(id))
            .map(|e| e.enqueued_at)
    }

    fn depth_by_priority(&self) -> [usize; 3] {
        [
            self.by_priority[0].len(),
            self.by_priority[1].len(),
            self.by_priority[2].len(),
        ]
    }
}

/// The queue's lock, held: on release it records how many operations the queue holds,
/// so that [`RecoveryQueue::len`] and [`RecoveryQueue::has_pending`] can read that count
/// without the lock, and no mutation can forget to update it.
struct StateGuard<'a, P> {
    state: MutexGuard<'a, State<P>>,
    queued: &'a AtomicUsize,
}

impl<P> std::ops::Deref for StateGuard<'_, P> {
    type Target = State<P>;

    fn deref(&self) -> &State<P> {
        &self.state
    }
}

impl<P> std::ops::DerefMut for StateGuard<'_, P> {
    fn deref_mut(&mut self) -> &mut State<P> {
        &mut self.state
    }
}

impl<P> Drop for StateGuard<'_, P> {
    fn drop(&mut self) {
        // Still under the lock: the mutex guard is dropped after this.
        self.queued.store(self.state.ops.len(), Ordering::Release);
    }
}

/// The recovery queue, generic over what an operation carries.
pub(crate) struct RecoveryQueue<P> {
    client: Arc<str>,
    config: QueueConfig,
    state: Mutex<State<P>>,
    /// How many operations `state` holds, written under its lock each time the lock is
    /// released (see [`StateGuard`]), read without it.
    queued: AtomicUsize,
    /// Per-queue metric handles.
    metrics: observe::QueueMetrics,
    closed: AtomicBool,
    /// Woken when work is added.
    work: Notify,
    /// Woken when operations leave the queue (for drain waiters).
    drained: Notify,
    listeners: Mutex<Vec<DeadLetterListener>>,
    /// Optional: told when an operation leaves (see [`RecoveryQueue::with_leave_hook`]).
    leave_hook: Option<LeaveHook<P>>,
}

impl<P> std::fmt::Debug for RecoveryQueue<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryQueue")
            .field("client", &self.client)
            .field("config", &self.config)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What [`RecoveryQueue::take_batch`] should do with an eligible operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Batching {
    /// It may share a round trip with other shareable operations.
    Shareable,
    /// It must be replayed on its own.
    Alone,
}

impl<P> RecoveryQueue<P> {
    /// An empty queue for the client named `client`.
    pub(crate) fn new(client: impl Into<Arc<str>>, config: QueueConfig) -> Self {
        let client: Arc<str> = client.into();
        RecoveryQueue {
            metrics: observe::QueueMetrics::new(Arc::clone(&client)),
            client,
            config,
            state: Mutex::new(State {
                next_id: 1,
                ops: HashMap::new(),
                by_priority: Default::default(),
                per_key: HashMap::new(),
                enqueued: 0,
                completed: 0,
                dead_lettered: 0,
                evicted: 0,
            }),
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            work: Notify::new(),
            drained: Notify::new(),
            listeners: Mutex::new(Vec::new()),
            leave_hook: None,
        }
    }

    /// Sets the hook told about every operation that leaves the queue for good (applied or
    /// dead-lettered; not released ones). Set once, before the queue is shared.
    pub(crate) fn with_leave_hook(mut self, hook: LeaveHook<P>) -> Self {
        self.leave_hook = Some(hook);
        self
    }

    fn lock(&self) -> StateGuard<'_, P> {
        // A panic while holding the lock cannot leave the indexes half-updated in a way
        // that loses operations (every mutation is a few map operations), so recover.
        StateGuard {
            state: self.state.lock().unwrap_or_else(PoisonError::into_inner),
            queued: &self.queued,
        }
    }

    /// Adds a listener told about every dead letter (after the fact, outside any lock).
    pub(crate) fn on_dead_letter(&self, listener: DeadLetterListener) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    /// Queues an operation. Evicts the newest lower-priority operation when full.
    pub(crate) fn push(
        &self,
        priority: Priority,
        keys: Vec<String>,
        payload: P,
    ) -> Result<Ticket, PushError> {
        if priority == Priority::Low {
            return Err(PushError::LowPriority);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let mut evicted = None;
        let ticket = {
            let mut state = self.lock();
            if state.ops.len() >= self.config.capacity {
                let victim = (priority.rank() + 1..3).rev().find_map(|rank| {
                    state.by_priority[rank]
                        .iter()
                        .rev()
                        .find(|id| state.ops.get(id).is_some_and(|e| !e.in_flight))
                        .copied()
                });
                let Some(victim) = victim else {
                    return Err(PushError::Full);
                };
                if let Some(entry) = state.remove(victim) {
                    state.dead_lettered += 1;
                    state.evicted += 1;
                    evicted = Some((victim, entry));
                }
            }
            let id = state.next_id;
            state.next_id += 1;
            let (ticket, tx) = Ticket::new(id);
            for key in &keys {
                state.per_key.entry(key.clone()).or_default().push_back(id);
            }
            state.by_priority[priority.rank()].insert(id);
            state.ops.insert(
                id,
                Entry {
                    priority,
                    keys,
                    payload: Arc::new(payload),
                    enqueued_at: Instant::now(),
                    attempts: 0,
                    in_flight: false,
                    ticket: Some(tx),
                },
            );
            state.enqueued += 1;
            self.publish_depth(&state);
            ticket
        };
        self.metrics.enqueued(priority).increment(1);
        if let Some((id, entry)) = evicted {
            self.resolve_dead(id, entry, DeadLetterReason::Evicted);
        }
        self.work.notify_one();
        Ok(ticket)
    }

    /// Whether any queued operation shares one of `keys` (a new write on them must queue
    /// behind it, not overtake it).
    pub(crate) fn has_pending(&self, keys: &[String]) -> bool {
        // Nothing queued (the healthy path): no lock. An operation pushed before this call
        // began stored its count before its lock was released, so it is seen here.
        if self.queued.load(Ordering::Acquire) == 0 {
            return false;
        }
        let state = self.lock();
        !state.per_key.is_empty() && keys.iter().any(|k| state.per_key.contains_key(k))
    }

    /// Operations waiting.
    pub(crate) fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dead-letters every operation older than `max_age`; returns how many.
    pub(crate) fn expire(&self, now: Instant) -> usize {
        let expired: Vec<(u64, Entry<P>, Duration)> = {
            let mut state = self.lock();
            if state
                .oldest_enqueued_at()
                .is_none_or(|t| now - t < self.config.max_age)
            {
                return 0;
            }
            let old: Vec<u64> = state
                .ops
                .iter()
                .filter(|(_, e)| !e.in_flight && now - e.enqueued_at >= self.config.max_age)
                .map(|(id, _)| *id)
                .collect();
            let out: Vec<_> = old
                .into_iter()
                .filter_map(|id| {
                    let entry = state.remove(id)?;
                    let age = now - entry.enqueued_at;
                    Some((id, entry, age))
                })
                .collect();
            state.dead_lettered += out.len() as u64;
            if !out.is_empty() {
                self.publish_depth(&state);
            }
            out
        };
        let n = expired.len();
        for (id, entry, age) in expired {
            self.resolve_dead(id, entry, DeadLetterReason::MaxAge { age });
        }
        if n > 0 {
            self.drained.notify_waiters();
        }
        n
    }

    /// When the oldest waiting operation reaches `max_age`.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.lock()
            .oldest_enqueued_at()
            .map(|t| t + self.config.max_age)
    }

    /// Claims the next operations to replay, in queue order, and marks them in flight.
    ///
    /// An operation is eligible when every earlier operation on each of its keys is done or
    /// already in this batch (a batch runs in order, so same-key order holds inside it).
    /// If the first eligible operation must run [`Batching::Alone`], it is returned alone;
    /// otherwise up to `batch_size` shareable operations are returned.
    ///
    /// Each call looks at no more than `4 * batch_size` operations per priority, so draining
    /// a long queue costs time in proportion to its length, not its square. When that window
    /// holds nothing eligible, the oldest operation of all is taken: nothing was issued
    /// before it on any of its keys, so it is always eligible, and the queue always moves.
    pub(crate) fn take_batch(&self, batching: impl Fn(&P) -> Batching) -> Vec<Claimed<P>> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let batch_size = self.config.batch_size;
        let scan_limit = batch_size.saturating_mul(4);
        let mut batch: Vec<Claimed<P>> = Vec::new();
        {
            // How many operations of each key this batch already holds, front first.
            let mut cursor: HashMap<&str, usize> = HashMap::new();
            'priorities: for rank in 0..3 {
                for id in state.by_priority[rank].iter().take(scan_limit) {
                    let Some(entry) = state.ops.get(id) else {
                        continue;
                    };
                    if entry.in_flight {
                        continue;
                    }
                    let eligible = entry.keys.iter().all(|key| {
                        let at = cursor.get(key.as_str()).copied().unwrap_or(0);
                        state
                            .per_key
                            .get(key)
                            .and_then(|ids| ids.get(at))
                            .is_some_and(|front| front == id)
                    });
                    if !eligible {
                        continue;
                    }
                    match batching(&entry.payload) {
                        Batching::Alone if batch.is_empty() => {
                            batch.push(claim(*id, entry));
                            break 'priorities;
                        }
                        Batching::Alone => continue,
                        Batching::Shareable => {}
                    }
                    for key in &entry.keys {
                        *cursor.entry(key.as_str()).or_insert(0) += 1;
                    }
                    batch.push(claim(*id, entry));
                    if batch.len() >= batch_size {
                        break 'priorities;
                    }
                }
            }
        }
        if batch.is_empty() {
            let oldest = state
                .by_priority
                .iter()
                .filter_map(|ids| ids.first())
                .min()
                .copied();
            if let Some(entry) = oldest.and_then(|id| state.ops.get(&id).map(|e| (id, e)))
                && !entry.1.in_flight
            {
                batch.push(claim(entry.0, entry.1));
            }
        }
        for claimed in &batch {
            if let Some(entry) = state.ops.get_mut(&claimed.id) {
                entry.in_flight = true;
            }
        }
        batch
    }

    /// The claimed operations were applied: resolve their tickets `Completed`.
    pub(crate) fn complete(&self, ids: &[u64]) {
        let done: Vec<Entry<P>> = {
            let mut state = self.lock();
            let done: Vec<Entry<P>> = ids.iter().filter_map(|id| state.remove(*id)).collect();
            state.completed += done.len() as u64;
            self.publish_depth(&state);
            done
        };
        self.metrics.completed().increment(done.len() as u64);
        for mut entry in done {
            if let Some(hook) = &self.leave_hook {
                hook(&entry.payload, Left::Completed);
            }
            if let Some(tx) = entry.ticket.take() {
                // The owner may have stopped waiting; the write is applied either way.
                let _ = tx.send(TicketOutcome::Completed);
            }
        }
        self.drained.notify_waiters();
    }

    /// The claimed operations were not attempted (the breaker said no): put them back as
    /// they were, attempts unchanged.
    pub(crate) fn release(&self, ids: &[u64]) {
        let mut state = self.lock();
        for id in ids {
            if let Some(entry) = state.ops.get_mut(id) {
                entry.in_flight = false;
            }
        }
    }

    /// The claimed operations reached Redis and failed. A `retryable` failure counts an
    /// attempt and dead-letters at `max_attempts`; a non-retryable one dead-letters now.
    pub(crate) fn fail(&self, ids: &[u64], error: &str, retryable: bool) {
        let dead: Vec<(u64, Entry<P>, DeadLetterReason)> = {
            let mut state = self.lock();
            let mut dead = Vec::new();
            for id in ids {
                let Some(entry) = state.ops.get_mut(id) else {
                    continue;
                };
                entry.in_flight = false;
                entry.attempts += 1;
                let reason = if !retryable {
                    Some(DeadLetterReason::NonRetryable {
                        error: error.to_owned(),
                    })
                } else if entry.attempts >= self.config.max_attempts {
                    Some(DeadLetterReason::MaxAttempts {
                        attempts: entry.attempts,
                        last_error: error.to_owned(),
                    })
                } else {
                    None
                };
                if let Some(reason) = reason
                    && let Some(entry) = state.remove(*id)
                {
                    dead.push((*id, entry, reason));
                }
            }
            state.dead_lettered += dead.len() as u64;
            if !dead.is_empty() {
                self.publish_depth(&state);
            }
            dead
        };
        let any = !dead.is_empty();
        for (id, entry, reason) in dead {
            self.resolve_dead(id, entry, reason);
        }
        if any {
            self.drained.notify_waiters();
        }
    }

    /// Stops intake: later pushes get [`PushError::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.work.notify_one();
        self.drained.notify_waiters();
    }

    /// Whether intake is stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Dead-letters everything still waiting with `reason`; returns how many.
    pub(crate) fn dead_letter_all(&self, reason: DeadLetterReason) -> usize {
        let all: Vec<(u64, Entry<P>)> = {
            let mut state = self.lock();
            let ids: Vec<u64> = state.ops.keys().copied().collect();
            let all: Vec<_> = ids
                .into_iter()
                .filter_map(|id| state.remove(id).map(|e| (id, e)))
                .collect();
            state.dead_lettered += all.len() as u64;
            self.publish_depth(&state);
            all
        };
        let n = all.len();
        for (id, entry) in all {
            self.resolve_dead(id, entry, reason.clone());
        }
        self.drained.notify_waiters();
        n
    }

    /// Waits until new work may be available (a push, or close).
    pub(crate) async fn work_added(&self) {
        self.work.notified().await;
    }

    /// Waits until no queued operation shares one of `keys`, or `deadline` passes;
    /// returns whether they cleared.
    pub(crate) async fn wait_keys_clear(&self, keys: &[String], deadline: Instant) -> bool {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.has_pending(keys) {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return !self.has_pending(keys);
            }
        }
    }

    /// Waits until the queue is empty or `deadline` passes; returns whether it emptied.
    pub(crate) async fn wait_empty(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_empty();
            }
        }
    }

    /// A snapshot.
    pub(crate) fn stats(&self) -> QueueStats {
        let now = Instant::now();
        let state = self.lock();
        let depth_by_priority = state.depth_by_priority();
        QueueStats {
            depth_by_priority,
            depth: state.ops.len(),
            oldest_age: state.oldest_enqueued_at().map(|t| now - t),
            capacity: self.config.capacity,
            enqueued: state.enqueued,
            completed: state.completed,
            dead_lettered: state.dead_lettered,
            evicted: state.evicted,
        }
    }

    fn publish_depth(&self, state: &State<P>) {
        let oldest = state
            .oldest_enqueued_at()
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.metrics.oldest_age().set(oldest);
        for (rank, depth) in state.depth_by_priority().iter().enumerate() {
            self.metrics.depth(Priority::ALL[rank]).set(*depth as f64);
        }
    }

    fn resolve_dead(&self, id: u64, mut entry: Entry<P>, reason: DeadLetterReason) {
        if let Some(hook) = &self.leave_hook {
            hook(&entry.payload, Left::DeadLettered(&reason));
        }
        tracing::warn!(client = %self.client, id, priority = %entry.priority, %reason, "queued write dead-lettered");
        self.metrics.dead_lettered(&reason).increment(1);
        let letter = DeadLetter {
            id,
            priority: entry.priority,
            keys: std::mem::take(&mut entry.keys),
            reason: reason.clone(),
            attempts: entry.attempts,
        };
        if let Some(tx) = entry.ticket.take() {
            let _ = tx.send(TicketOutcome::DeadLettered { reason });
        }
        let listeners: Vec<DeadLetterListener> = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for listener in listeners {
            listener(&letter);
        }
    }
}

fn claim<P>(id: u64, entry: &Entry<P>) -> Claimed<P> {
    Claimed {
        id,
        payload: Arc::clone(&entry.payload),
        attempts: entry.attempts,
    }
}

#[cfg(test)]
mod loom_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn queue(capacity: usize) -> RecoveryQueue<&'static str> {
        RecoveryQueue::new(
            "test",
            QueueConfig {
                capacity,
                max_attempts: 3,
                max_age: Duration::from_secs(60),
                batch_size: 100,
            },
        )
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn take_ids(q: &RecoveryQueue<&'static str>) -> Vec<&'static str> {
        q.take_batch(|_| Batching::Shareable)
            .iter()
            .map(|c| *c.payload)
            .collect()
    }

    #[tokio::test]
    async fn the_lock_free_count_follows_every_push_and_every_removal() {
        let q = queue(10);
        assert!(q.is_empty() && !q.has_pending(&keys(&["a"])));
        q.push(Priority::Normal, keys(&["a"]), "a1").unwrap();
        q.push(Priority::High, keys(&["b"]), "b1").unwrap();
        assert_eq!(q.len(), 2);
        assert!(q.has_pending(&keys(&["a"])) && !q.has_pending(&keys(&["c"])));
        let claimed = q.take_batch(|_| Batching::Shareable);
        assert_eq!(
            q.len(),
            2,
            "claimed operations are still queued until completed"
        );
        let ids: Vec<u64> = claimed.iter().map(|c| c.id).collect();
        q.complete(&ids[..1]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.dead_letter_all(DeadLetterReason::Shutdown), 1);
        assert!(q.is_empty() && !q.has_pending(&keys(&["a", "b"])));
    }

    #[tokio::test]
    async fn high_before_normal_fifo_within_priority() {
        let q = queue(10);
        q.push(Priority::Normal, keys(&["a"]), "n1").unwrap();
        q.push(Priority::High, keys(&["b"]), "h1").unwrap();
        q.push(Priority::Normal, keys(&["c"]), "n2").unwrap();
        q.push(Priority::High, keys(&["d"]), "h2").unwrap();
        assert_eq!(take_ids(&q), vec!["h1", "h2", "n1", "n2"]);
    }

    #[tokio::test]
    async fn same_key_order_wins_over_priority() {
        let q = queue(10);
        q.push(Priority::Normal, keys(&["a"]), "n-a").unwrap();
        q.push(Priority::High, keys(&["a"]), "h-a").unwrap();
        q.push(Priority::High, keys(&["b"]), "h-b").unwrap();
        // h-a is behind n-a on key a: in one batch n-a comes first; h-a is not eligible in
        // the High pass yet, so it waits for the next batch.
        let first = q.take_batch(|_| Batching::Shareable);
        let names: Vec<_> = first.iter().map(|c| *c.payload).collect();
        assert_eq!(names, vec!["h-b", "n-a"]);
        q.complete(&first.iter().map(|c| c.id).collect::<Vec<_>>());
        assert_eq!(take_ids(&q), vec!["h-a"]);
    }

    #[tokio::test]
    async fn alone_operations_run_alone_and_block_their_keys() {
        let q = queue(10);
        q.push(Priority::Normal, keys(&["a"]), "incr").unwrap();
        q.push(Priority::Normal, keys(&["a"]), "set-a").unwrap();
        q.push(Priority::Normal, keys(&["b"]), "set-b").unwrap();
        let alone = |p: &&str| {
            if *p == "incr" {
                Batching::Alone
            } else {
                Batching::Shareable
            }
        };
        let first: Vec<_> = q.take_batch(alone).iter().map(|c| *c.payload).collect();
        assert_eq!(first, vec!["incr"]);
    }

    #[tokio::test]
    async fn full_queue_evicts_newest_lower_priority_or_refuses() {
        let q = queue(2);
        let mut n1 = q.push(Priority::Normal, keys(&["a"]), "n1").unwrap();
        let mut n2 = q.push(Priority::Normal, keys(&["b"]), "n2").unwrap();
        assert_eq!(
            q.push(Priority::Normal, keys(&["c"]), "n3").unwrap_err(),
            PushError::Full
        );
        q.push(Priority::High, keys(&["d"]), "h1").unwrap();
        assert_eq!(
            n2.try_outcome(),
            Some(TicketOutcome::DeadLettered {
                reason: DeadLetterReason::Evicted
            })
        );
        assert_eq!(n1.try_outcome(), None);
        q.push(Priority::Critical, keys(&["e"]), "c1").unwrap();
        assert!(n1.try_outcome().is_some());
        assert_eq!(
            q.push(Priority::High, keys(&["f"]), "h2").unwrap_err(),
            PushError::Full
        );
        let stats = q.stats();
        assert_eq!(stats.depth, 2);
        assert_eq!(stats.evicted, 2);
        assert_eq!(stats.depth_by_priority, [1, 1, 0]);
        assert_eq!(
            q.push(Priority::Low, keys(&["g"]), "l").unwrap_err(),
            PushError::LowPriority
        );
    }

    #[tokio::test]
    async fn failures_dead_letter_at_max_attempts_or_when_not_retryable() {
        let q = queue(10);
        let t1 = q.push(Priority::Normal, keys(&["a"]), "a").unwrap();
        let t2 = q.push(Priority::Normal, keys(&["b"]), "b").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        q.on_dead_letter(Arc::new(move |d: &DeadLetter| {
            sink.lock().unwrap().push(d.clone())
        }));
        for _ in 0..3 {
            let batch = q.take_batch(|_| Batching::Shareable);
            let a: Vec<u64> = batch
                .iter()
                .filter(|c| *c.payload == "a")
                .map(|c| c.id)
                .collect();
            let b: Vec<u64> = batch
                .iter()
                .filter(|c| *c.payload == "b")
                .map(|c| c.id)
                .collect();
            q.fail(&a, "connection refused", true);
            q.release(&b);
        }
        assert_eq!(
            t1.wait().await,
            TicketOutcome::DeadLettered {
                reason: DeadLetterReason::MaxAttempts {
                    attempts: 3,
                    last_error: "connection refused".into()
                }
            }
        );
        let b = q.take_batch(|_| Batching::Shareable);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].attempts, 0, "released operations keep their attempts");
        q.fail(&[b[0].id], "WRONGTYPE", false);
        assert!(matches!(
            t2.wait().await,
            TicketOutcome::DeadLettered {
                reason: DeadLetterReason::NonRetryable { .. }
            }
        ));
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_blocked_window_still_makes_progress_with_the_oldest_operation() {
        // batch_size 100 -> scan window 400 per priority. 1,000 High writes on key "a" all
        // wait behind one older Normal write on "a": the High window holds nothing eligible,
        // and the Normal pass finds the blocker.
        let q = queue(2000);
        q.push(Priority::Normal, keys(&["a"]), "blocker").unwrap();
        for _ in 0..1000 {
            q.push(Priority::High, keys(&["a"]), "h").unwrap();
        }
        let mut drained = 0;
        let mut first = true;
        loop {
            let batch = q.take_batch(|_| Batching::Shareable);
            if batch.is_empty() {
                break;
            }
            if first {
                assert_eq!(*batch[0].payload, "blocker");
                first = false;
            }
            drained += batch.len();
            q.complete(&batch.iter().map(|c| c.id).collect::<Vec<_>>());
        }
        assert_eq!(drained, 1001);
    }

    #[tokio::test]
    async fn alone_operations_blocking_every_key_cannot_stall_the_queue() {
        let q = queue(5000);
        for i in 0..4000 {
            let key = format!("k{}", i % 8);
            q.push(
                Priority::Normal,
                vec![key],
                if i % 3 == 0 { "alone" } else { "x" },
            )
            .unwrap();
        }
        let mut rounds = 0;
        while !q.is_empty() {
            let batch = q.take_batch(|p| {
                if *p == "alone" {
                    Batching::Alone
                } else {
                    Batching::Shareable
                }
            });
            assert!(!batch.is_empty(), "the queue must always move");
            q.complete(&batch.iter().map(|c| c.id).collect::<Vec<_>>());
            rounds += 1;
            assert!(rounds <= 4000);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn max_age_dead_letters_old_operations() {
        let q = queue(10);
        let t = q.push(Priority::High, keys(&["a"]), "old").unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        let fresh = q.push(Priority::High, keys(&["b"]), "fresh").unwrap();
        assert_eq!(q.expire(Instant::now()), 0);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(q.next_expiry(), Some(Instant::now()));
        assert_eq!(q.expire(Instant::now()), 1);
        assert!(matches!(
            t.wait().await,
            TicketOutcome::DeadLettered {
                reason: DeadLetterReason::MaxAge { .. }
            }
        ));
        assert_eq!(q.len(), 1);
        drop(fresh);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_refuses_intake_and_dead_letter_all_resolves_everything() {
        let q = queue(10);
        let t = q.push(Priority::Normal, keys(&["a"]), "x").unwrap();
        q.close();
        assert_eq!(
            q.push(Priority::High, keys(&["b"]), "y").unwrap_err(),
            PushError::Closed
        );
        assert!(
            !q.wait_empty(Instant::now() + Duration::from_millis(10))
                .await
        );
        assert_eq!(q.dead_letter_all(DeadLetterReason::Shutdown), 1);
        assert_eq!(
            t.wait().await,
            TicketOutcome::DeadLettered {
                reason: DeadLetterReason::Shutdown
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn key_waiters_wake_when_their_keys_clear() {
        let q = Arc::new(queue(10));
        q.push(Priority::Normal, keys(&["a"]), "x").unwrap();
        let waiter = {
            let q = Arc::clone(&q);
            tokio::spawn(async move {
                q.wait_keys_clear(&keys(&["a"]), Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        let batch = q.take_batch(|_| Batching::Shareable);
        q.complete(&[batch[0].id]);
        assert!(waiter.await.unwrap());
    }
}
