//! STM -> IM transitions.
//!
//! Its guide is in the docs of its main type.

use std::collections::HashSet;

use ulid::Ulid;

use crate::agent::AgentMemory;
use crate::entry::MemoryEntry;
use crate::error::Result;
use crate::hooks::MemoryEventKind;
use crate::keys::Index;
use crate::tier::Query;

/// IM writes per round trip during a move.
const MOVE_BATCH: usize = 256;

/// What a maintenance pass did.
///
/// A move is: read the chosen STM entries (without counting a retrieval), write them to IM
/// (encoded and compressed for IM, keeping their counters), and only when IM confirmed
/// every write of a batch, delete them from STM. Both steps are idempotent by memory id:
/// writing an entry to IM again sets the same fields and scores, deleting it from STM again
/// deletes nothing. So:
///
/// - a failed IM write leaves the STM copies (nothing lost); the next pass moves them;
/// - an interrupted move (IM written, STM delete failed) leaves the same id in both tiers;
///   reads report it once (from STM), and the next pass that chooses it again finishes the
///   move without a duplicate.
///
/// Lowest value first: entries with the lowest importance, the oldest first among equals
/// (ULIDs order by time), taken from the importance index on the server. A maintenance
/// pass also moves entries whose TTL ends within [`StmConfig::near_expiry`].
///
/// [`StmConfig::near_expiry`]: crate::StmConfig::near_expiry
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintainReport {
    /// Entries moved from STM to IM.
    pub moved: u64,
    /// Expired entries whose index members the pass removed.
    pub expired_removed: u64,
    /// Live STM entries after the pass.
    pub stm_count: u64,
    /// Live IM entries after the pass.
    pub im_count: u64,
    /// Whether IM holds more than its configured capacity (IM never deletes to honour it).
    pub im_over_capacity: bool,
}

impl AgentMemory {
    /// Moves entries from STM to IM until STM holds at most its capacity minus `slack`
    /// (and, when `near_expiry`, the entries about to expire). Returns how many moved.
    pub(crate) async fn transition_excess(&self, slack: u64, near_expiry: bool) -> Result<u64> {
        let capacity = self.inner.stm_config.capacity as u64;
        let size = self.stm.count().await?;
        let excess = if size > capacity {
            size - capacity + slack.min(capacity)
        } else {
            0
        };
        let mut chosen: Vec<MemoryEntry> = Vec::new();
        if excess > 0 {
            chosen = self
                .stm
                .query(Query {
                    index: Index::Importance,
                    scores: None,
                    descending: false,
                    limit: excess as usize,
                })
                .await?;
        }
        if near_expiry {
            let horizon =
                self.inner.clock.now_ms() + self.inner.stm_config.near_expiry.as_millis() as u64;
            let soon = self
                .stm
                .query(Query {
                    index: Index::Expiry,
                    scores: Some((f64::NEG_INFINITY, horizon as f64)),
                    descending: false,
                    limit: self.inner.stm_config.capacity.max(1),
                })
                .await?;
            let have: HashSet<Ulid> = chosen.iter().map(|e| e.memory_id).collect();
            chosen.extend(soon.into_iter().filter(|e| !have.contains(&e.memory_id)));
        }
        self.move_to_im(&chosen).await
    }

    /// Writes `entries` to IM and, batch by batch once IM confirmed, deletes them from STM.
    pub(crate) async fn move_to_im(&self, entries: &[MemoryEntry]) -> Result<u64> {
        let mut moved = 0;
        for batch in entries.chunks(MOVE_BATCH) {
            // Any error: nothing of this batch is deleted from STM.
            let size = self.im.write_now(batch, true).await?;
            self.im.tidy(size).await;
            let ids: Vec<Ulid> = batch.iter().map(|e| e.memory_id).collect();
            self.stm.delete(&ids).await?;
            self.im.emit(MemoryEventKind::MovedToIm, &ids);
            moved += ids.len() as u64;
        }
        Ok(moved)
    }

    /// A maintenance pass: removes a batch of expired entries' index members from each
    /// tier, moves the lowest-value entries while STM is over capacity, and the entries
    /// whose STM TTL ends within `near_expiry`, compacts vector blocks that moves, deletes
    /// and expiry left mostly dead; then counts both tiers.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when a tier fails; the batches moved before it
    /// stay moved, and nothing is lost (see [`MaintainReport`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the pass between steps: a memory is never lost, and one whose
    /// move was interrupted is in both tiers, read once, until a later pass finishes the move.
    pub async fn maintain(&self) -> Result<MaintainReport> {
        let (stm, im) = tokio::join!(self.stm.cleanup(), self.im.cleanup());
        let expired_removed = stm? + im?;
        let moved = self.transition_excess(0, true).await?;
        // Moves and expiry leave vector records behind: compact where they pile up.
        for tier in [&self.stm, &self.im] {
            if let Err(e) = tier.tidy_vectors().await {
                tracing::debug!(error = %e, "vector compaction failed; the next pass retries");
            }
        }
        let counts = self.count().await?;
        Ok(MaintainReport {
            expired_removed,
            moved,
            stm_count: counts.stm,
            im_count: counts.im,
            im_over_capacity: counts.im > self.inner.im_config.capacity as u64,
        })
    }
}
