//! The replay worker: one task that applies the recovery queue when Redis is back.
//!
//! It sleeps while the queue is empty and while the breaker is open (it waits on the
//! breaker's state channel, it never polls), wakes for the oldest write's `max_age`, and
//! replays in batches: queued single idempotent commands share one pipelined round trip;
//! anything else (transactions, non-idempotent commands, store functions) goes alone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::CircuitState;
use crate::queue::{Claimed, RecoveryQueue};
use crate::{Command, Error};

use super::state::QueuedWork;
use super::{ClientInner, ResilientClient};

/// A queued store function.
/// A write's failure in a split batch, and whether the retry decision keeps it.
type Refused = (Error, bool);

/// How one replay went.
enum Replayed {
    /// Everything applied.
    Applied,
    /// The breaker refused; nothing was sent.
    NotAttempted { retry_after: Duration },
    /// It reached Redis and failed.
    Failed { error: Error, retryable: bool },
    /// A shared batch hit an error only some of its writes may cause: each was replayed
    /// on its own, with these results.
    Split(Vec<(u64, Result<(), Refused>)>),
}

/// Longest the worker sleeps on one wait, so a forced-open breaker's `Duration::MAX` never
/// overflows a timer.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The worker loop. Holds the client weakly: it ends when the client is dropped.
pub(crate) async fn run(client: Weak<ClientInner>, queue: Arc<RecoveryQueue<QueuedWork>>) {
    let Some(mut state_rx) = client.upgrade().map(|c| c.breaker.subscribe()) else {
        return;
    };
    let mut failures: u32 = 0;
    loop {
        queue.expire(Instant::now());
        if queue.is_empty() {
            queue.work_added().await;
            continue;
        }
        let Some(inner) = client.upgrade() else {
            return;
        };
        let batch = queue.take_batch(QueuedWork::batching);
        if batch.is_empty() {
            drop(inner);
            wait_for_work(&queue, None).await;
            continue;
        }
        let ids: Vec<u64> = batch.iter().map(|c| c.id).collect();
        let replayed = inner.replay(&batch).await;
        let backoff = inner.retry_policy.nominal_delay(failures).min(
            inner
                .breaker
                .config()
                .health_check_interval
                .max(Duration::from_millis(10)),
        );
        drop(inner);
        match replayed {
            Replayed::Applied => {
                failures = 0;
                queue.complete(&ids);
            }
            Replayed::NotAttempted { retry_after } => {
                queue.release(&ids);
                wait_for_breaker(&queue, &mut state_rx, retry_after).await;
            }
            Replayed::Failed { error, retryable } => {
                queue.fail(&ids, &error.to_string(), retryable);
                if retryable {
                    failures = failures.saturating_add(1);
                    wait_for_breaker(&queue, &mut state_rx, backoff).await;
                }
            }
            Replayed::Split(results) => {
                for (id, result) in results {
                    match result {
                        Ok(()) => queue.complete(&[id]),
                        Err((e, retryable)) => queue.fail(&[id], &e.to_string(), retryable),
                    }
                }
            }
        }
        if state_rx.has_changed().is_err() {
            return;
        }
    }
}

/// Waits until the breaker changes state, `retry_after` passes, or the oldest write
/// reaches its `max_age`.
async fn wait_for_breaker(
    queue: &RecoveryQueue<QueuedWork>,
    state_rx: &mut tokio::sync::watch::Receiver<CircuitState>,
    retry_after: Duration,
) {
    let until = Instant::now() + retry_after.min(MAX_WAIT);
    let until = queue.next_expiry().map_or(until, |e| e.min(until));
    tokio::select! {
        _ = state_rx.changed() => {}
        _ = tokio::time::sleep_until(until) => {}
    }
}

/// Waits for new work or the oldest write's expiry.
async fn wait_for_work(queue: &RecoveryQueue<QueuedWork>, limit: Option<Duration>) {
    let until = Instant::now() + limit.unwrap_or(MAX_WAIT);
    let until = queue.next_expiry().map_or(until, |e| e.min(until));
    tokio::select! {
        _ = queue.work_added() => {}
        _ = tokio::time::sleep_until(until) => {}
    }
}

impl ClientInner {
    async fn replay(self: &Arc<Self>, batch: &[Claimed<QueuedWork>]) -> Replayed {
        let client = ResilientClient {
            inner: Arc::clone(self),
        };
        if let [only] = batch {
            let idempotent = match &*only.payload {
                QueuedWork::Commands { cmds, .. } => cmds.iter().all(Command::is_idempotent),
                QueuedWork::Store(_) => true,
            };
            return self.classify(client.apply(&only.payload).await, idempotent);
        }
        let cmds: Vec<Command> = batch
            .iter()
            .filter_map(|c| match &*c.payload {
                QueuedWork::Commands { cmds, .. } => cmds.first().cloned(),
                QueuedWork::Store(_) => None,
            })
            .collect();
        match self.call_batch(cmds, false).await {
            Ok(_) => Replayed::Applied,
            Err(e) if self.retry_decision.may_retry(&e, true) => self.classify(Err(e), true),
            Err(_) => {
                // Some write in the batch is refused by the server (WRONGTYPE, …): find which
                // by replaying each alone. Every write in a shared batch is idempotent, so
                // applying one again is harmless.
                let mut results = Vec::with_capacity(batch.len());
                for claimed in batch {
                    let result = client.apply(&claimed.payload).await.map_err(|e| {
                        let retryable = self.retry_decision.may_retry(&e, true);
                        (e, retryable)
                    });
                    results.push((claimed.id, result));
                }
                Replayed::Split(results)
            }
        }
    }
}

impl ClientInner {
    /// What a replay's result means for the queue: applied, not attempted (the breaker
    /// held it back), or failed, kept for another attempt when the retry decision says so.
    fn classify(&self, result: Result<(), Error>, idempotent: bool) -> Replayed {
        match result {
            Ok(()) => Replayed::Applied,
            Err(Error::CircuitOpen { retry_after, .. }) => Replayed::NotAttempted { retry_after },
            Err(error) => {
                let retryable = self.retry_decision.may_retry(&error, idempotent);
                Replayed::Failed { error, retryable }
            }
        }
    }
}
