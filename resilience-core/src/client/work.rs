//! One attempt at applying what the recovery queue holds (data, or a store function),
//! shared by the priority handling and the replay.

use crate::queue::Batching;
use crate::{Error, Value};

use super::state::{QueuedWork, ResilientClient};

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
