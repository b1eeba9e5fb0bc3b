//! What happens to a write when Redis fails, by priority.
//!
//! Its guide is in the docs of its main type.

use std::fmt;

use tokio::sync::oneshot;

use crate::{DeadLetterReason, Error};

/// How much a write matters when Redis is failing.
///
/// | priority | on a retryable failure |
/// |---|---|
/// | `Critical` | retried inline with the retry policy; if every attempt fails, the caller gets the error |
/// | `High`, `Normal` | queued for background replay; `High` is always replayed before `Normal` |
/// | `Low` | logged, counted and dropped |
///
/// An error that retrying cannot fix (WRONGTYPE, NOAUTH, bad input) is
/// [`StoreOutcome::Failed`] at once, whatever the priority: it is never queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Priority {
    /// Must land now or the caller must know: retried inline.
    Critical,
    /// Queued on failure, replayed before `Normal`.
    High,
    /// Queued on failure.
    Normal,
    /// Dropped on failure (counted).
    Low,
}

impl Priority {
    /// All priorities, most important first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    /// 0 for `Critical` up to 3 for `Low`: lower is more important.
    pub const fn rank(self) -> usize {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }

    /// A stable lower-case name, used in metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The immediate result of a prioritized write. Never silent: each variant says where the
/// write is.
#[derive(Debug)]
pub enum StoreOutcome {
    /// Applied to Redis.
    Stored,
    /// Redis failed; the write waits in the recovery queue. Await the ticket for its fate.
    Queued(Ticket),
    /// Redis failed and the write was `Low` priority: it was dropped (and counted).
    Dropped,
    /// The write was not applied and will not be: the error says why.
    Failed(Error),
}

impl StoreOutcome {
    /// Whether the write was applied right away.
    pub fn is_stored(&self) -> bool {
        matches!(self, StoreOutcome::Stored)
    }

    /// A short name for logs and metrics: `stored`, `queued`, `dropped`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StoreOutcome::Stored => "stored",
            StoreOutcome::Queued(_) => "queued",
            StoreOutcome::Dropped => "dropped",
            StoreOutcome::Failed(_) => "failed",
        }
    }
}

/// The final fate of a queued write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketOutcome {
    /// Replayed and applied.
    Completed,
    /// Given up, with the reason.
    DeadLettered {
        /// Why it was given up.
        reason: DeadLetterReason,
    },
}

/// A claim on a queued write's final fate. Resolves exactly once.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    rx: oneshot::Receiver<TicketOutcome>,
}

impl Ticket {
    pub(crate) fn new(id: u64) -> (Ticket, oneshot::Sender<TicketOutcome>) {
        let (tx, rx) = oneshot::channel();
        (Ticket { id, rx }, tx)
    }

    /// The queued operation's id (unique per client, increasing in issue order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the final fate. If the client is dropped without
    /// [`shutdown`](crate::ResilientClient::shutdown), the write is reported as
    /// dead-lettered with [`DeadLetterReason::Shutdown`], never lost silently.
    ///
    /// # Errors
    ///
    /// None: the outcome says whether the write completed or was dead-lettered, and why.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the ticket: the write stays queued and is replayed, and no
    /// one hears how it ended.
    pub async fn wait(self) -> TicketOutcome {
        self.rx.await.unwrap_or(TicketOutcome::DeadLettered {
            reason: DeadLetterReason::Shutdown,
        })
    }

    /// The fate if it is already known, without waiting.
    pub fn try_outcome(&mut self) -> Option<TicketOutcome> {
        match self.rx.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(TicketOutcome::DeadLettered {
                reason: DeadLetterReason::Shutdown,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_order_by_importance() {
        let ranks: Vec<usize> = Priority::ALL.iter().map(|p| p.rank()).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3]);
        assert_eq!(Priority::High.to_string(), "high");
    }

    #[tokio::test]
    async fn a_dropped_sender_resolves_as_shutdown() {
        let (ticket, tx) = Ticket::new(7);
        drop(tx);
        assert_eq!(ticket.id(), 7);
        assert_eq!(
            ticket.wait().await,
            TicketOutcome::DeadLettered {
                reason: DeadLetterReason::Shutdown
            }
        );
    }
}
