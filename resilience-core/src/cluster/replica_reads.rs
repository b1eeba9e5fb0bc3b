//! Reads answered by replicas: picking one, `READONLY`, and falling back to the master.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::time::Instant;

use crate::{BackendError, Command, ErrorKind};

use super::backend::{Reply, Request, Shared};
use super::node::Node;
use super::read_policy::ReadPolicy;
use super::redirect::Redirect;

/// How long a replica that failed a read is left out of reads, in ms.
pub(super) const LEAVE_OUT_MS: u64 = 1000;

/// How many reads replicas answered, and how many went to the master because no replica
/// could (see [`ReadPolicy`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaReadStats {
    /// Reads a replica answered.
    pub by_replica: u64,
    /// Reads that went to the master because no replica of the shard was reachable
    /// (`PreferReplica`), or that the shard has none.
    pub fallbacks: u64,
}

/// The router's replica-read counters and the clock replicas are left out by.
pub(crate) struct ReplicaReads {
    epoch: Instant,
    by_replica: AtomicU64,
    fallbacks: AtomicU64,
}

impl ReplicaReads {
    pub(crate) fn new() -> ReplicaReads {
        ReplicaReads {
            epoch: Instant::now(),
            by_replica: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> ReplicaReadStats {
        ReplicaReadStats {
            by_replica: self.by_replica.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// Milliseconds since the router started: the clock of [`Node::is_left_out`].
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn count(&self, served_by: &'static str) {
        let counter = if served_by == "replica" {
            &self.by_replica
        } else {
            &self.fallbacks
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::observe::REPLICA_READS, "served_by" => served_by).increment(1);
    }
}

/// The next of `replicas` not left out at `now_ms`, taking turns by `turn`: the one
/// round-robin of the cluster router and the Sentinel reads.
pub(super) fn next_replica(
    replicas: &[Arc<Node>],
    turn: &AtomicUsize,
    now_ms: u64,
) -> Option<Arc<Node>> {
    let count = replicas.len();
    let start = turn.fetch_add(1, Ordering::Relaxed);
    (0..count)
        .map(|i| &replicas[start.wrapping_add(i) % count])
        .find(|node| !node.is_left_out(now_ms))
        .cloned()
}

/// `READONLY`: lets a replica's connection answer reads of its master's slots.
fn readonly_command() -> Command {
    Command::Raw {
        args: vec![Bytes::from_static(b"READONLY")],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}

impl Shared {
    /// A read-only `request` on `slot` under `policy` (not `Primary`): to a replica of the
    /// slot's master, else to the master (`PreferReplica`) or `Unavailable` (`Replica`).
    pub(super) async fn read(
        self: &Arc<Self>,
        slot: u16,
        request: Request,
        policy: ReadPolicy,
    ) -> Result<Reply, BackendError> {
        let deadline = Instant::now() + self.call_timeout;
        let routes = self.routes();
        let now = self.replica_reads.now_ms();
        let mut reason = String::from("its master has no replica in the slot map");
        if let Some(replica) = routes.replica_for(slot, now) {
            match self.read_on(&replica, request.clone(), deadline).await {
                Ok(reply) => {
                    self.replica_reads.count("replica");
                    return Ok(reply);
                }
                Err(e) if e.kind() == ErrorKind::Timeout => {
                    // The call's time is spent; the retry the layer above makes goes elsewhere.
                    replica.leave_out_until(now + LEAVE_OUT_MS);
                    self.refresh_soon();
                    return Err(e);
                }
                Err(e) if e.kind() == ErrorKind::Unavailable || Redirect::of(&e).is_some() => {
                    // Not reachable (nothing was sent), or no longer a replica of the slot.
                    replica.leave_out_until(now + LEAVE_OUT_MS);
                    self.refresh_soon();
                    reason = format!("replica {} failed: {e}", replica.addr());
                }
                Err(e) => return Err(e),
            }
        }
        if policy == ReadPolicy::Replica {
            return Err(BackendError::unavailable(format!(
                "no replica can answer a read of slot {slot} (read policy `replica`): {reason}"
            )));
        }
        self.replica_reads.count("primary_fallback");
        let master = Arc::clone(routes.owner(Some(slot)));
        self.send_to(master, Some(slot), request, deadline).await
    }

    /// One read on `replica` by `deadline`. A single command is sent as it is, and again
    /// after `READONLY` if the replica answers `MOVED` (a connection that has not sent
    /// `READONLY` yet, a new one after a reconnect); a pipeline always starts with it.
    async fn read_on(
        self: &Arc<Self>,
        replica: &Node,
        request: Request,
        deadline: Instant,
    ) -> Result<Reply, BackendError> {
        let read = async {
            match request {
                Request::One(cmd) => {
                    match self
                        .attempt(replica, Request::One(cmd.clone()), false)
                        .await
                    {
                        Err(e) if matches!(Redirect::of(&e), Some(Redirect::Moved(..))) => {
                            self.after_readonly(replica, vec![cmd], true).await
                        }
                        other => other,
                    }
                }
                Request::Batch(cmds, _) => self.after_readonly(replica, cmds, false).await,
            }
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::timeout(format!(
                "{}: no reply from replica {} within {:?}",
                self.name,
                replica.addr(),
                self.call_timeout
            ))),
        }
    }

    /// `cmds` on `replica` in one pipeline after `READONLY`; their replies (the one
    /// reply when `one`).
    async fn after_readonly(
        &self,
        replica: &Node,
        cmds: Vec<Command>,
        one: bool,
    ) -> Result<Reply, BackendError> {
        let mut batch = Vec::with_capacity(cmds.len() + 1);
        batch.push(readonly_command());
        batch.extend(cmds);
        let expected = batch.len();
        let mut replies = match self
            .attempt(replica, Request::Batch(batch, false), false)
            .await?
        {
            Reply::Batch(replies) if replies.len() == expected => replies,
            _ => {
                return Err(BackendError::new(
                    ErrorKind::Server,
                    format!("unexpected reply: expected {expected} replies after READONLY"),
                ));
            }
        };
        replies.remove(0);
        match replies.pop() {
            Some(value) if one => Ok(Reply::One(value)),
            Some(value) => {
                replies.push(value);
                Ok(Reply::Batch(replies))
            }
            None => Ok(Reply::Batch(replies)),
        }
    }
}
