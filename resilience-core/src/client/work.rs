//! What the recovery queue holds ([`QueuedWork`]: data, or a store function) and one
//! attempt at applying it, shared by the priority handling and the replay.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::queue::Batching;
use crate::{Command, Error, Value};

use super::ResilientClient;

/// The future a store function returns, boxed so queued store functions can be kept.
pub type StoreFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

/// A queued `store_with_retry`: the store function with its agent and state bound.
pub(crate) type StoreJob = Arc<dyn Fn(ResilientClient) -> StoreFuture + Send + Sync>;

/// What a queued write carries.
pub(crate) enum QueuedWork {
    /// Data: one command, or a batch (atomic when `atomic`). `journal_seq` is its record in
    /// the durable journal (feature `durable`), `None` when it is not journaled.
    Commands {
        cmds: Vec<Command>,
        atomic: bool,
        journal_seq: Option<u64>,
    },
    /// A `store_with_retry` store function.
    Store(StoreJob),
}

impl std::fmt::Debug for QueuedWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueuedWork::Commands {
                cmds,
                atomic,
                journal_seq,
            } => f
                .debug_struct("Commands")
                .field(
                    "commands",
                    &cmds.iter().map(Command::name).collect::<Vec<_>>(),
                )
                .field("atomic", atomic)
                .field("journal_seq", journal_seq)
                .finish(),
            QueuedWork::Store(_) => f.write_str("Store(..)"),
        }
    }
}

impl QueuedWork {
    /// Whether the replay may send this work in one round trip with others.
    pub(super) fn batching(&self) -> Batching {
        match self {
            QueuedWork::Commands { cmds, .. } if cmds.len() == 1 && cmds[0].is_idempotent() => {
                Batching::Shareable
            }
            _ => Batching::Alone,
        }
    }
}

impl ResilientClient {
    /// One attempt at the work.
    pub(super) async fn apply(&self, work: &QueuedWork) -> Result<(), Error> {
        self.apply_with_reply(work).await.map(|_| ())
    }

    /// One attempt at the work, returning the server's reply (`None` for a store
    /// function, which has none).
    pub(super) async fn apply_with_reply(&self, work: &QueuedWork) -> Result<Option<Value>, Error> {
        match work {
            QueuedWork::Commands { cmds, atomic, .. } => match cmds.as_slice() {
                [one] => self.inner.call(one.clone()).await.map(Some),
                many => self
                    .inner
                    .call_batch(many.to_vec(), *atomic)
                    .await
                    .map(|replies| Some(Value::Array(replies))),
            },
            QueuedWork::Store(job) => job(self.clone()).await.map(|()| None),
        }
    }
}
