//! A local replica of agents' vector blocks, kept exact by fetching only what was
//! appended since the last search.
//!
//! A vector block only grows between compactions (a write appends its record; see the
//! `vectors` module), and a compaction gives it a new generation in its header. So a
//! search that already holds a block asks, in one atomic round trip, for the header and
//! for the bytes past the length it holds:
//!
//! - same generation: the held bytes are still the block's first bytes, and the tail is
//!   appended to them;
//! - another generation (a compaction), or a header that is not one: the block is fetched
//!   whole, as a first search does;
//! - no block at all: the agent has no vectors left, and the copy is dropped.
//!
//! What is scored is therefore always the block as the server holds it at that instant:
//! the replica saves bytes on the wire and server CPU, never exactness. Whether a record's
//! memory still exists is decided afterwards by reading its entry, as without a replica.
//!
//! Postings blocks (the words searches with a text term score, see `postings`) are held
//! and patched the same way, and each has a text index parsed from it (see
//! `text_index`), extended with what each patch appended.
//!
//! The replica is bounded by bytes: a least-recently-used cache weighted by each block's
//! length ([moka]), its budget set by
//! [`TieredMemoryBuilder::vector_replica_bytes`](crate::TieredMemoryBuilder::vector_replica_bytes)
//! and its size reported as the gauge `memory_tiers_vector_replica_bytes` (and by
//! [`TieredMemory::vector_replica_bytes`](crate::TieredMemory::vector_replica_bytes)).
//!
//! [moka]: https://docs.rs/moka

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use ulid::Ulid;

use crate::error::Result;
use crate::text_index::TextIndex;

/// The byte budget of the replica by default: 128 MiB, some 300,000 IM vectors at
/// dimension 384.
pub(crate) const DEFAULT_BUDGET: u64 = 128 << 20;

/// What the replica holds of the blocks it has seen, by block key.
#[derive(Debug)]
pub(crate) struct VectorReplica {
    blocks: moka::sync::Cache<String, Bytes>,
    /// The text index of each postings block held, bounded by the same budget again.
    indexes: moka::sync::Cache<String, Arc<IndexSlot>>,
}

/// One postings block's text index, and its weight as last measured.
#[derive(Debug, Default)]
pub(crate) struct IndexSlot {
    index: Mutex<TextIndex>,
    weight: AtomicUsize,
}

/// How a search gets a block it may hold.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Not held: fetch it whole.
    Whole,
    /// Held, `len` bytes at `generation`: ask for the header and the bytes from `len`.
    Delta { held: Bytes, generation: u64 },
}

impl VectorReplica {
    /// A replica holding at most `budget` bytes of blocks.
    pub(crate) fn new(budget: u64) -> Arc<Self> {
        Arc::new(VectorReplica {
            blocks: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_key: &String, block: &Bytes| {
                    u32::try_from(block.len()).unwrap_or(u32::MAX)
                })
                .build(),
            indexes: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_key: &String, slot: &Arc<IndexSlot>| {
                    u32::try_from(slot.weight.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
                })
                .build(),
        })
    }

    /// How to read the block at `key`.
    pub(crate) fn plan(&self, key: &str) -> Plan {
        match self.blocks.get(key) {
            Some(held) => match crate::packed::generation_of(&held) {
                Some(generation) => Plan::Delta { held, generation },
                None => Plan::Whole,
            },
            None => Plan::Whole,
        }
    }

    /// The block after a delta read: `held` followed by `tail` when `header` is still
    /// `generation`'s, else `None` (fetch it whole). An empty `header` means the block is
    /// gone: the copy is dropped and the block is empty (`Some(empty)`).
    pub(crate) fn apply_delta(
        &self,
        key: &str,
        held: Bytes,
        generation: u64,
        header: &[u8],
        tail: &[u8],
    ) -> Option<Bytes> {
        if header.is_empty() {
            self.blocks.invalidate(key);
            return Some(Bytes::new());
        }
        if crate::packed::generation_of(header) != Some(generation) {
            return None;
        }
        if tail.is_empty() {
            return Some(held);
        }
        let mut grown = Vec::with_capacity(held.len() + tail.len());
        grown.extend_from_slice(&held);
        grown.extend_from_slice(tail);
        let grown = Bytes::from(grown);
        self.keep(key, grown.clone());
        Some(grown)
    }

    /// Holds `block` as the current copy of `key` (a whole read).
    pub(crate) fn keep(&self, key: &str, block: Bytes) {
        self.blocks.insert(key.to_owned(), block);
        self.report_size();
    }

    /// BM25 of `words` over the postings block `block` of `key` (see
    /// [`TextIndex::bm25`]), from the text index kept for it, brought up to `block` first
    /// (only what was appended since it last looked is parsed).
    pub(crate) fn text_scores(
        &self,
        key: &str,
        block: &[u8],
        words: &[u64],
        searched: impl Fn(Ulid) -> bool,
    ) -> Result<FxHashMap<Ulid, f32>> {
        let slot = self
            .indexes
            .get_with_by_ref(key, || Arc::new(IndexSlot::default()));
        let (scores, weight) = {
            let mut index = slot.index.lock().unwrap_or_else(PoisonError::into_inner);
            index.catch_up(block)?;
            (index.bm25(words, searched), index.weight())
        };
        if slot.weight.swap(weight, Ordering::Relaxed) != weight {
            // Weighed again at its new size.
            self.indexes.insert(key.to_owned(), slot);
            self.report_size();
        }
        Ok(scores)
    }

    /// The gauge, with the size as last settled: settling moka's pending work here would
    /// put it on every search that grows a copy.
    fn report_size(&self) {
        metrics::gauge!("memory_tiers_vector_replica_bytes")
            .set((self.blocks.weighted_size() + self.indexes.weighted_size()) as f64);
    }

    /// Bytes held now, blocks and text indexes (after pending evictions are applied).
    pub(crate) fn bytes(&self) -> u64 {
        self.blocks.run_pending_tasks();
        self.indexes.run_pending_tasks();
        self.blocks.weighted_size() + self.indexes.weighted_size()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::vectors::header;

    fn block(generation: u64, body: &[u8]) -> Bytes {
        let mut b = header(generation).to_vec();
        b.extend_from_slice(body);
        Bytes::from(b)
    }

    #[test]
    fn a_tail_of_the_same_generation_is_appended() {
        let replica = VectorReplica::new(1 << 20);
        replica.keep("k", block(7, b"abc"));
        let Plan::Delta { held, generation } = replica.plan("k") else {
            panic!("held")
        };
        assert_eq!(generation, 7);
        let grown = replica
            .apply_delta("k", held, generation, &header(7), b"def")
            .unwrap();
        assert_eq!(grown, block(7, b"abcdef"));
        let Plan::Delta { held, .. } = replica.plan("k") else {
            panic!("held")
        };
        assert_eq!(held, grown);
    }

    #[test]
    fn another_generation_or_a_gone_block_is_not_patched() {
        let replica = VectorReplica::new(1 << 20);
        replica.keep("k", block(7, b"abc"));
        let Plan::Delta { held, generation } = replica.plan("k") else {
            panic!("held")
        };
        assert!(
            replica
                .apply_delta("k", held.clone(), generation, &header(8), b"x")
                .is_none()
        );
        assert_eq!(
            replica.apply_delta("k", held, generation, b"", b""),
            Some(Bytes::new())
        );
        assert!(matches!(replica.plan("k"), Plan::Whole));
    }

    #[test]
    fn the_budget_bounds_the_bytes_held() {
        let replica = VectorReplica::new(10_000);
        for i in 0..20 {
            replica.keep(&format!("k{i}"), block(1, &[0; 990]));
        }
        assert!(replica.bytes() <= 10_000, "{}", replica.bytes());
        assert!(replica.bytes() >= 1_000);
    }
}
