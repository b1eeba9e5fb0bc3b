//! Building a client with a journal, and the queue hook that keeps the journal in step
//! with the recovery queue (feature `durable`; the journal itself is [`crate::journal`]).

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use super::builder::ResilientClientBuilder;
use super::script::Script;
use super::state::{QueuedWork, ResilientClient};
use crate::DeadLetterReason;
use crate::journal::{Journal, JournalError};
use crate::queue::{LeaveHook, Left};

impl ResilientClientBuilder {
    /// Feature `durable`: keeps the recovery queue in a crash-safe journal at `path`
    /// (created if missing). Finish with [`try_build`](crate::JournaledBuilder::try_build),
    /// which can fail; call the other builder methods first. See [`crate::journal`].
    pub fn journal(self, path: impl Into<std::path::PathBuf>) -> JournaledBuilder {
        JournaledBuilder::new(self, path.into())
    }

    /// Feature `durable`: builds a client over an open journal and queues the `recovered`
    /// records again (in the order given). Their tickets have no owner.
    pub(crate) fn build_journaled(
        self,
        journal: Arc<crate::journal::Journal>,
        recovered: Vec<(u64, crate::journal::JournalRecord)>,
    ) -> ResilientClient {
        // Deletes a write's record when it leaves the queue for good (see the journal docs).
        let hook = leave_hook(Arc::downgrade(&journal));
        let client = self.assemble(Some(hook), Some(Arc::clone(&journal)));
        let inner = &client.inner;
        for (seq, record) in recovered {
            for source in record.scripts {
                client.register_script(&Script::new(source));
            }
            let work = QueuedWork::Commands {
                cmds: record.cmds,
                atomic: record.atomic,
                journal_seq: Some(seq),
            };
            if let Err(e) = inner.queue.push(record.priority, record.keys, work) {
                tracing::warn!(client = %inner.name, seq, error = ?e, "journal: recovered write not queued; it stays on disk for the next start");
                journal.count_not_loaded();
            }
        }
        if !inner.queue.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            inner.ensure_tasks();
        }
        client
    }
}

/// The queue hook that deletes a write's record when it leaves the queue for good
/// (applied or dead-lettered). A write abandoned at shutdown keeps its record for the next
/// start. Weak: the client owns the journal; once it is gone, records stay (at least once).
pub(crate) fn leave_hook(journal: Weak<Journal>) -> LeaveHook<QueuedWork> {
    Arc::new(move |work, left| {
        if let QueuedWork::Commands {
            journal_seq: Some(seq),
            ..
        } = work
            && !matches!(left, Left::DeadLettered(DeadLetterReason::Shutdown))
            && let Some(journal) = journal.upgrade()
        {
            journal.remove(*seq, left == Left::Completed);
        }
    })
}

/// A [`ResilientClientBuilder`] with a journal: finish it with [`try_build`](Self::try_build).
///
/// A separate type so that a journaled client can only be built fallibly: opening a file
/// can fail, and silently falling back to an in-memory queue would break the promise.
#[must_use = "call try_build() to get a client"]
pub struct JournaledBuilder {
    builder: ResilientClientBuilder,
    path: PathBuf,
}

impl std::fmt::Debug for JournaledBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournaledBuilder")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JournaledBuilder {
    pub(crate) fn new(builder: ResilientClientBuilder, path: PathBuf) -> Self {
        JournaledBuilder { builder, path }
    }

    /// Opens the journal, queues every pending record again (in issue order, with its
    /// priority and keys) and builds the client. Corrupt records are skipped and reported
    /// ([`JournalStats::corrupt`](crate::journal::JournalStats::corrupt)). Inside a Tokio runtime the replay starts at once;
    /// otherwise on the client's first use.
    ///
    /// # Errors
    ///
    /// [`JournalError::Settings`] for an invalid client setting (checked first, as
    /// [`ResilientClientBuilder::build`] does); [`JournalError::Storage`] when the file
    /// cannot be opened or created (including when another client or process has it open:
    /// one journal, one client).
    pub fn try_build(self) -> Result<ResilientClient, JournalError> {
        self.builder
            .check()
            .map_err(|e| JournalError::Settings(e.to_string()))?;
        let name = self.builder.name.clone();
        let (journal, records) = Journal::open(&self.path, &name)?;
        Ok(self.builder.build_journaled(Arc::new(journal), records))
    }
}
