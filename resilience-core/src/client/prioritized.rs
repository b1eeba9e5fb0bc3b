//! Prioritized writes: [`store_with_retry`](ResilientClient::store_with_retry) (
//! shape, a store function) and [`submit`](ResilientClient::submit) (data-only commands).
//!
//! Both follow the [`Priority`] table of [`crate::priority`], and both keep per-key order: a
//! write whose ordering key (the agent id, or the commands' keys) still has queued writes
//! does not overtake them. `High`/`Normal` queue behind them, `Critical` waits (within its
//! retry time) for them to drain first, `Low` is dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::CircuitState;
use crate::priority::{Priority, StoreOutcome};
use crate::queue::PushError;
use crate::{BackendError, Command, Error, Value};

use super::ResilientClient;
use super::state::{QueuedWork, StoreFuture, StoreJob};

/// What [`ResilientClient::submit_with_reply`] returns: the outcome, and the server's
/// reply when the write was applied right away.
#[derive(Debug)]
#[must_use = "the outcome says whether the write was stored"]
#[non_exhaustive]
pub struct Submitted {
    /// What happened to the write, as [`ResilientClient::submit`] reports it.
    pub outcome: StoreOutcome,
    /// The reply, present exactly when `outcome` is [`StoreOutcome::Stored`]: the
    /// command's reply, or for a batch an array of the replies in order.
    pub reply: Option<Value>,
}

impl ResilientClient {
    /// Stores an agent's state with priority handling, never raising:
    /// the [`StoreOutcome`] says whether it was stored, queued (with a ticket), dropped or
    /// failed, and why.
    ///
    /// `store_func` is given the client, the agent id and the state. It may be called again
    /// from the recovery queue after a failure, so it must be safe to repeat (setting state
    /// is; incrementing is not). Returning [`Error::StoreFailed`] (a store that reported
    /// `false`) counts as a retryable failure, not as a final one. Queued store functions live in memory
    /// only; for writes that must survive a crash use [`submit`](Self::submit) with data.
    /// With a durable journal configured (feature `durable`), a store function that would
    /// have to be queued is refused instead:
    /// `StoreOutcome::Failed(Error::InvalidInput("store functions cannot be journaled; use submit"))`.
    ///
    /// # Errors
    ///
    /// None: every failure is in the returned outcome (`StoreOutcome::Failed` with its error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes abandons the write where it stands: one the
    /// recovery queue already accepted stays queued and is replayed (its ticket is dropped, so
    /// no one hears how it ended); one not yet queued is never queued, and may or may not have
    /// been applied (an attempt, or a `Critical` retry, may have been in flight).
    pub async fn store_with_retry<S, F, Fut>(
        &self,
        agent_id: &str,
        state_data: S,
        store_func: F,
        priority: Priority,
    ) -> StoreOutcome
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(ResilientClient, String, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let agent = agent_id.to_owned();
        let job: StoreJob = Arc::new(move |client: ResilientClient| -> StoreFuture {
            Box::pin(store_func(client, agent.clone(), state_data.clone()))
        });
        self.prioritized(
            vec![agent_id.to_owned()],
            QueuedWork::Store(job),
            priority,
            true,
        )
        .await
        .outcome
    }

    /// Applies `batch` (one command, or several atomically with `MULTI`/`EXEC`) with
    /// priority handling. Being data, queued batches can be ordered by key and replayed in
    /// batches. A batch is retried after a timeout only if every command is idempotent.
    ///
    /// With a durable journal (feature `durable`, module `journal`), a write that has to be
    /// queued is committed to disk before `Queued` is returned, and survives a crash.
    ///
    /// # Errors
    ///
    /// None: every failure is in the returned outcome (`StoreOutcome::Failed` with its error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes abandons the write where it stands: one the
    /// recovery queue already accepted stays queued and is replayed (its ticket is dropped, so
    /// no one hears how it ended); one not yet queued is never queued, and may or may not have
    /// been applied (an attempt, or a `Critical` retry, may have been in flight).
    pub async fn submit(&self, batch: Vec<Command>, priority: Priority) -> StoreOutcome {
        self.submit_with_reply(batch, priority).await.outcome
    }

    /// [`submit`](Self::submit), also returning the server's reply when the write was
    /// applied right away: the command's reply for one command, an array of the replies
    /// for a batch. Saves a second round trip when the write itself reports what the
    /// caller needs (a script returning a size, an `INCR` returning the count). A write
    /// applied later from the recovery queue has no reply here (await its ticket).
    ///
    /// # Errors
    ///
    /// None: every failure is in the returned outcome (`StoreOutcome::Failed` with its error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes abandons the write where it stands: one the
    /// recovery queue already accepted stays queued and is replayed (its ticket is dropped, so
    /// no one hears how it ended); one not yet queued is never queued, and may or may not have
    /// been applied (an attempt, or a `Critical` retry, may have been in flight).
    pub async fn submit_with_reply(&self, batch: Vec<Command>, priority: Priority) -> Submitted {
        if batch.is_empty() {
            return Submitted {
                outcome: self.count(
                    priority,
                    StoreOutcome::Failed(Error::InvalidInput(
                        "submit needs at least one command".to_owned(),
                    )),
                ),
                reply: None,
            };
        }
        let mut keys: Vec<String> = Vec::new();
        for key in batch.iter().flat_map(|c| c.keys()) {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        let idempotent = batch.iter().all(Command::is_idempotent);
        if let (Some(config), false) = (self.inner.exactly_once, idempotent) {
            return self.submit_once(batch, keys, &config, priority).await;
        }
        let atomic = batch.len() > 1;
        self.prioritized(
            keys,
            QueuedWork::Commands {
                cmds: batch,
                atomic,
                journal_seq: None,
            },
            priority,
            idempotent,
        )
        .await
    }

    /// `batch` (not idempotent) made exactly-once: one script call under a fresh write id,
    /// idempotent, so it is retried, queued and replayed like any idempotent write and
    /// applied once. The reply is the batch's own, as without the mode.
    async fn submit_once(
        &self,
        batch: Vec<Command>,
        keys: Vec<String>,
        config: &super::ExactlyOnceConfig,
        priority: Priority,
    ) -> Submitted {
        let count = batch.len();
        let wrapped = match super::exactly_once::wrap(&batch, &super::WriteId::new(), config) {
            Ok(wrapped) => wrapped,
            Err(e) => {
                return Submitted {
                    outcome: self.count(priority, StoreOutcome::Failed(e)),
                    reply: None,
                };
            }
        };
        let submitted = self
            .prioritized(
                keys,
                QueuedWork::Commands {
                    cmds: vec![wrapped],
                    atomic: false,
                    journal_seq: None,
                },
                priority,
                true,
            )
            .await;
        let reply = submitted.reply.and_then(|reply| {
            let mut values = super::exactly_once::unwrap(reply, count).ok()?.value;
            if count == 1 {
                values.pop()
            } else {
                Some(Value::Array(values))
            }
        });
        Submitted {
            outcome: submitted.outcome,
            reply,
        }
    }

    async fn prioritized(
        &self,
        keys: Vec<String>,
        work: QueuedWork,
        priority: Priority,
        idempotent: bool,
    ) -> Submitted {
        let inner = &self.inner;
        let unreplied = |outcome| Submitted {
            outcome,
            reply: None,
        };
        if inner.queue.is_closed() {
            return unreplied(self.count(priority, StoreOutcome::Failed(Error::Shutdown)));
        }
        if inner.queue.has_pending(&keys) {
            match priority {
                Priority::High | Priority::Normal => {
                    return unreplied(self.enqueue(keys, work, priority).await);
                }
                Priority::Low => {
                    tracing::info!(client = %inner.name, "low-priority write dropped: older writes for its keys are still queued");
                    return unreplied(self.count(priority, StoreOutcome::Dropped));
                }
                Priority::Critical => {
                    let deadline = Instant::now() + retry_window(&inner.retry_policy);
                    if !inner.queue.wait_keys_clear(&keys, deadline).await {
                        let error = if inner.breaker.state() == CircuitState::Closed {
                            Error::Timeout(BackendError::timeout(
                                "older queued writes for these keys did not drain in time",
                            ))
                        } else {
                            Error::CircuitOpen {
                                client: inner.name.to_string(),
                                retry_after: Duration::ZERO,
                            }
                        };
                        return unreplied(self.count(priority, StoreOutcome::Failed(error)));
                    }
                }
            }
        }
        let retryable = |e: &Error| inner.retry_decision.may_retry(e, idempotent);
        let (outcome, reply) = match priority {
            Priority::Critical => {
                match inner
                    .with_retries(&inner.retry_policy, retryable, || {
                        self.apply_with_reply(&work)
                    })
                    .await
                {
                    Ok(reply) => (StoreOutcome::Stored, reply),
                    Err(e) => (StoreOutcome::Failed(e), None),
                }
            }
            Priority::High | Priority::Normal => match self.apply_with_reply(&work).await {
                Ok(reply) => (StoreOutcome::Stored, reply),
                Err(e) if retryable(&e) => {
                    tracing::debug!(client = %inner.name, %priority, error = %e, "write failed; queueing it");
                    return unreplied(self.enqueue(keys, work, priority).await);
                }
                Err(e) => (StoreOutcome::Failed(e), None),
            },
            Priority::Low => match self.apply_with_reply(&work).await {
                Ok(reply) => (StoreOutcome::Stored, reply),
                Err(e) if retryable(&e) => {
                    tracing::info!(client = %inner.name, error = %e, "low-priority write dropped");
                    (StoreOutcome::Dropped, None)
                }
                Err(e) => (StoreOutcome::Failed(e), None),
            },
        };
        Submitted {
            outcome: self.count(priority, outcome),
            reply,
        }
    }

    async fn enqueue(
        &self,
        keys: Vec<String>,
        work: QueuedWork,
        priority: Priority,
    ) -> StoreOutcome {
        let inner = &self.inner;
        // Feature `durable`: with a journal, the write is on disk before it is queued (and
        // a store function, which cannot be written down, is refused).
        #[cfg(feature = "durable")]
        let (work, journal_seq) = match self.journal_work(&keys, work, priority).await {
            Ok(journaled) => journaled,
            Err(e) => return self.count(priority, StoreOutcome::Failed(e)),
        };
        let pushed = inner.queue.push(priority, keys, work);
        #[cfg(feature = "durable")]
        if let (Err(_), Some(seq), Some(journal)) = (&pushed, journal_seq, &inner.journal) {
            // Not queued after all: its record must not be replayed by a later start.
            journal.remove(seq, false);
        }
        let outcome = match pushed {
            Ok(ticket) => {
                inner.ensure_tasks();
                StoreOutcome::Queued(ticket)
            }
            Err(PushError::Full) => StoreOutcome::Failed(Error::QueueFull {
                client: inner.name.to_string(),
            }),
            Err(PushError::Closed) => StoreOutcome::Failed(Error::Shutdown),
            Err(PushError::LowPriority) => StoreOutcome::Dropped,
        };
        self.count(priority, outcome)
    }

    /// Feature `durable`: writes `work` to the journal (when there is one) and returns it
    /// tagged with its record's sequence number. Store functions cannot be journaled.
    #[cfg(feature = "durable")]
    async fn journal_work(
        &self,
        keys: &[String],
        work: QueuedWork,
        priority: Priority,
    ) -> Result<(QueuedWork, Option<u64>), Error> {
        let Some(journal) = &self.inner.journal else {
            return Ok((work, None));
        };
        if self.inner.queue.is_closed() {
            return Err(Error::Shutdown);
        }
        match work {
            QueuedWork::Store(_) => Err(Error::InvalidInput(
                "store functions cannot be journaled; use submit".to_owned(),
            )),
            QueuedWork::Commands { cmds, atomic, .. } => {
                let record = crate::journal::JournalRecord {
                    priority,
                    keys: keys.to_vec(),
                    scripts: self.inner.script_sources(&cmds),
                    cmds,
                    atomic,
                };
                let seq = journal.append(&record).await.map_err(|e| {
                    Error::StoreFailed(format!("not queued: recovery journal write failed: {e}"))
                })?;
                let work = QueuedWork::Commands {
                    cmds: record.cmds,
                    atomic,
                    journal_seq: Some(seq),
                };
                Ok((work, Some(seq)))
            }
        }
    }

    fn count(&self, priority: Priority, outcome: StoreOutcome) -> StoreOutcome {
        let c = &self.inner.counters;
        let counter = match &outcome {
            StoreOutcome::Stored => &c.stored,
            StoreOutcome::Queued(_) => &c.queued,
            StoreOutcome::Dropped => &c.dropped,
            StoreOutcome::Failed(_) => &c.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.inner
            .metrics
            .store_outcome(priority, &outcome)
            .increment(1);
        outcome
    }
}

/// The time a `Critical` write's retries take at most without jitter: how long it may wait
/// for older queued writes on its keys.
fn retry_window(policy: &crate::retry::RetryPolicy) -> Duration {
    (0..policy.max_retries)
        .map(|n| policy.nominal_delay(n))
        .fold(Duration::ZERO, Duration::saturating_add)
        .max(Duration::from_millis(100))
}
