//! Searches: by embedding ([`AgentMemory::similar`]), by conditions
//! ([`AgentMemory::find`]) and by text ([`AgentMemory::search_content`]).
//!
//! Its guide is in the docs of its main type.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use bytes::Bytes;
use resilience_core::{Command, Pipeline, Value};
use ulid::Ulid;

use crate::agent::AgentMemory;
use crate::embedding::unit_query;
use crate::entry::{MemoryEntry, Retrieved, Source};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index;
use crate::keys::Index;
use crate::postings::PostingsBlock;
use crate::replica::Plan;
use crate::scoring::Scoring;
use crate::text_index::TextIndex;
use crate::tier::{MAX_QUERY_LIMIT, Query, TierHandle};
use crate::vectors::{self, Block, Scorer};

/// A memory found by [`AgentMemory::similar`] (with its cosine similarity to the query) or
/// [`AgentMemory::similar_scored`] (with its score).
///
/// A similarity search reads each tier's vector block in one round trip (whole the first
/// time, then only what was appended, from the local replica; see the `vectors` and
/// `replica` modules), with the postings block when the scoring has a text term, scores
/// every live record against the query in Rust, exactly (cosine; IM's byte-quantized
/// vectors are scored as stored), then reads the best candidates' entries a batch at a
/// time (one `MGET`, or cached `GET`s on a client with a read cache), keeping those the
/// filter matches, until it has `k`. A filter's server-side range (time, else step, else
/// importance) is read from the index in the same round trip as the blocks, and only ids
/// in it are scored.
///
/// Results of both tiers are merged by score (then memory id); a memory in both tiers (a
/// move in progress) is reported once, from STM. While the primary store is unreachable,
/// searches answer from the local fallback's recent entries, marked
/// [`Source::Fallback`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Scored {
    /// Cosine similarity, in [-1, 1] (IM's quantized vectors score within about 0.01 of
    /// their exact value); from [`AgentMemory::similar_scored`], the weighted score.
    pub score: f32,
    /// The memory and where it was found.
    pub memory: Retrieved,
}

/// A scored record, best first in a [`BinaryHeap`]: higher score, then lower id.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    /// The score, or while the entry is unread an upper bound of it.
    score: f32,
    id: Ulid,
    /// Every term of the score but importance (see `scoring`).
    partial: f32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.id.cmp(&self.id))
    }
}

/// Candidates read per `MGET`, for `missing` more results: twice as many, at least 16, so
/// entries the filter refuses or that are gone rarely cost another round trip.
fn batch_for(missing: usize) -> usize {
    (missing * 2).max(16)
}

/// A found entry, with its exact score, ranked like a [`Candidate`].
#[derive(Debug)]
struct Found {
    rank: Candidate,
    entry: MemoryEntry,
}

impl PartialEq for Found {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Found {}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// How one block (vectors or postings) is read in a search's round trip: whole, or, when
/// the replica holds a copy, as its header, length and what was appended since.
struct BlockRead<'k> {
    key: &'k str,
    plan: Plan,
}

impl<'k> BlockRead<'k> {
    fn plan(tier: &TierHandle, key: &'k str) -> Self {
        let plan = match &tier.shared.replica {
            Some(replica) => replica.plan(key),
            None => Plan::Whole,
        };
        BlockRead { key, plan }
    }

    fn is_delta(&self) -> bool {
        matches!(self.plan, Plan::Delta { .. })
    }

    /// Adds its commands to the search's round trip.
    fn push(&self, pipe: &mut Pipeline) {
        let key = self.key.to_owned();
        match &self.plan {
            Plan::Whole => {
                pipe.push(Command::Get { key });
            }
            Plan::Delta { held, .. } => {
                pipe.push(Command::Getrange {
                    key: key.clone(),
                    start: 0,
                    end: vectors::HEADER_LEN as i64 - 1,
                });
                pipe.push(Command::Strlen { key: key.clone() });
                pipe.push(Command::Getrange {
                    key,
                    start: held.len() as i64,
                    end: -1,
                });
            }
        }
    }

    /// The block, from its replies (and a second round trip when the copy held was
    /// compacted or made again since).
    async fn finish(
        self,
        tier: &TierHandle,
        replies: &mut impl Iterator<Item = Value>,
    ) -> Result<Option<Bytes>> {
        let missing = || Error::Corrupt("block reply missing".to_owned());
        match self.plan {
            Plan::Whole => {
                let block = replies.next().ok_or_else(missing)?.into_opt_bytes()?;
                tier.keep_block(self.key, block.as_ref());
                Ok(block)
            }
            Plan::Delta { held, generation } => {
                let header = replies.next().ok_or_else(missing)?.into_opt_bytes()?;
                let len = replies.next().ok_or_else(missing)?.into_int()?;
                let tail = replies.next().ok_or_else(missing)?.into_opt_bytes()?;
                let replica = tier.shared.replica.as_ref().ok_or_else(missing)?;
                let header = header.unwrap_or_default();
                // A block shorter than the copy is not the one the copy was taken from.
                let shrunk = usize::try_from(len).map_or(true, |len| len < held.len());
                let patched = if shrunk && !header.is_empty() {
                    None
                } else {
                    replica.apply_delta(
                        self.key,
                        held,
                        generation,
                        &header,
                        tail.as_deref().unwrap_or_default(),
                    )
                };
                match patched {
                    Some(block) => Ok(Some(block)),
                    None => tier.read_block(self.key).await,
                }
            }
        }
    }
}

impl TierHandle {
    /// The index range a filter runs on the server, as lexicographic bounds; `None` when no
    /// value can be in it.
    fn filter_range(filter: &Filter) -> Option<Option<(String, String)>> {
        match filter.narrowing() {
            None => Some(None),
            Some((index, min, max)) => {
                let (lo, hi) = index::value_range(index, min, max)?;
                Some(Some(index::lex_range(index, lo, hi)?))
            }
        }
    }

    /// The `k` entries of this tier that `filter` matches with the best scores under
    /// `scoring` against `query` (unit length), best first, with their scores.
    pub(crate) async fn similar(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        scoring: &Scoring,
    ) -> Result<Vec<(f32, MemoryEntry)>> {
        let Some(range) = Self::filter_range(filter) else {
            return Ok(Vec::new());
        };
        let text = scoring.text_terms();
        let vectors = BlockRead::plan(self, &self.keys.vectors);
        let postings = text
            .is_some()
            .then(|| BlockRead::plan(self, &self.keys.postings));
        // One round trip: each block (whole, or its header, length and what was appended
        // since the copy held, atomically) and, for a filter, the index range.
        let mut pipe = if vectors.is_delta() || postings.as_ref().is_some_and(BlockRead::is_delta) {
            self.client.transaction()
        } else {
            self.client.pipeline()
        };
        vectors.push(&mut pipe);
        if let Some(postings) = &postings {
            postings.push(&mut pipe);
        }
        if let Some((lo, hi)) = &range {
            pipe.push(self.range_page(lo, hi, false, MAX_QUERY_LIMIT));
        }
        let mut replies = pipe
            .execute_with_retry(self.client.retry_policy())
            .await?
            .into_iter();
        let block = vectors.finish(self, &mut replies).await?;
        let postings = match postings {
            Some(read) => read.finish(self, &mut replies).await?,
            None => None,
        };
        let block = match block {
            Some(block) if !block.is_empty() => block,
            _ => return Ok(Vec::new()),
        };
        let allowed = match (range, replies.next()) {
            (None, _) => None,
            (Some(_), Some(members)) => Some(
                members
                    .into_members()?
                    .iter()
                    .map(|m| index::member_id(m.as_bytes()))
                    .collect::<Result<HashSet<Ulid>>>()?,
            ),
            (Some(_), None) => return Err(Error::Corrupt("range reply missing".to_owned())),
        };
        let now_ms = self.now_ms();
        let ttl_ms = self.shared.settings.ttl.as_millis() as u64;
        // Entries expire the tier's TTL after creation, which is their id's time.
        let searched = |id: Ulid| {
            id.timestamp_ms().saturating_add(ttl_ms) >= now_ms
                && allowed.as_ref().is_none_or(|a| a.contains(&id))
        };
        let bm25 = match (&text, &postings) {
            (Some(words), Some(postings)) if !postings.is_empty() => {
                self.text_scores(postings, words, searched)?
            }
            _ => Default::default(),
        };
        let plain = scoring.is_plain_cosine();
        let block = Block::parse(&block)?;
        let mut scorer = Scorer::new(query);
        let mut candidates = Vec::new();
        for record in block.records() {
            let record = record?;
            if !searched(record.id) {
                continue;
            }
            let cosine = scorer.score(&record)?;
            candidates.push(if plain {
                Candidate {
                    score: cosine,
                    id: record.id,
                    partial: cosine,
                }
            } else {
                let age_ms = now_ms.saturating_sub(record.id.timestamp_ms());
                let text = bm25.get(&record.id).copied().unwrap_or(0.0);
                let partial = scoring.partial(cosine, text, age_ms);
                Candidate {
                    // Importance is read with the entry: rank by its upper bound.
                    score: scoring.with_importance_of(partial, 1.0),
                    id: record.id,
                    partial,
                }
            });
        }
        let mut pending = BinaryHeap::from(candidates);
        let mut found: BinaryHeap<Found> = BinaryHeap::new();
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(k);
        loop {
            // A found entry's score is exact; it is final once no candidate left could
            // score above it (a candidate's score is an upper bound).
            while out.len() < k
                && let Some(best) = found.peek()
                && pending.peek().is_none_or(|next| best.rank >= *next)
                && let Some(best) = found.pop()
            {
                out.push((best.rank.score, best.entry));
            }
            if out.len() >= k || pending.is_empty() {
                break;
            }
            let want = batch_for(k - out.len());
            let mut batch = Vec::with_capacity(want);
            while batch.len() < want
                && let Some(c) = pending.pop()
            {
                if seen.insert(c.id) {
                    batch.push(c);
                }
            }
            let keys = batch
                .iter()
                .map(|c| self.keys.entry(&c.id.to_string()))
                .collect();
            let stored = self.read_candidates(keys).await?;
            for (c, stored) in batch.into_iter().zip(stored) {
                let Some(stored) = stored else {
                    continue;
                };
                if let Some(entry) = self.decode_live(c.id, &stored, now_ms)?
                    && filter.matches(&entry)
                {
                    let score = if plain {
                        c.score
                    } else {
                        scoring.with_importance_of(c.partial, entry.metadata.importance_score)
                    };
                    found.push(Found {
                        rank: Candidate {
                            score,
                            id: c.id,
                            partial: c.partial,
                        },
                        entry,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The stored entries at `keys` (`None` where there is none): one `MGET`, or, when the
    /// client keeps a read cache, a `GET` per key, answered by the cache where it holds
    /// the entry, so a warm search reads no entry from the server. The cache is kept
    /// honest by the server's invalidations: an entry another client changed or deleted
    /// may be answered from the cache until its invalidation arrives (milliseconds on a
    /// local network); this client's own changes are dropped from it at once.
    async fn read_candidates(&self, keys: Vec<String>) -> Result<Vec<Option<Bytes>>> {
        if !self.client.has_read_cache() {
            return self
                .read_stored(keys)
                .await?
                .into_iter()
                .map(|v| v.into_opt_bytes().map_err(Error::from))
                .collect();
        }
        let reads = keys.into_iter().map(|key| self.client.get(key));
        futures::future::try_join_all(reads)
            .await
            .map_err(crate::tier::schema_error)
    }

    /// BM25 of `words` for this tier's memories in the postings block `block` (see
    /// `scoring`), from the replica's text index of it, or from an index of its own when
    /// there is no replica.
    fn text_scores(
        &self,
        block: &[u8],
        words: &[u64],
        searched: impl Fn(Ulid) -> bool,
    ) -> Result<rustc_hash::FxHashMap<Ulid, f32>> {
        match &self.shared.replica {
            Some(replica) => replica.text_scores(&self.keys.postings, block, words, searched),
            None => {
                let mut index = TextIndex::default();
                index.catch_up(block)?;
                Ok(index.bm25(words, searched))
            }
        }
    }

    /// A whole block, read alone (after a compaction changed its generation), and kept
    /// in the replica.
    async fn read_block(&self, key: &str) -> Result<Option<Bytes>> {
        // Not through a client cache: the replica is the block's copy.
        let block = self
            .client
            .execute(Command::Get {
                key: key.to_owned(),
            })
            .await?
            .into_opt_bytes()?;
        self.keep_block(key, block.as_ref());
        Ok(block)
    }

    /// Holds a block read whole in the replica (when there is one).
    fn keep_block(&self, key: &str, block: Option<&Bytes>) {
        if let (Some(replica), Some(block)) = (&self.shared.replica, block) {
            replica.keep(key, block.clone());
        }
    }

    /// Compacts the vector block if its records outnumber the indexed entries by half
    /// (after moves and deletes, which leave records behind): one round trip to size the
    /// block and the index, a compaction only when it pays. Returns whether it compacted.
    pub(crate) async fn tidy_vectors(&self) -> Result<bool> {
        let vectors = &self.keys.vectors;
        let mut pipe = self.client.pipeline();
        pipe.push(Command::Getrange {
            key: vectors.clone(),
            start: 0,
            end: vectors::PREFIX_LEN as i64 - 1,
        })
        .push(Command::Strlen {
            key: vectors.clone(),
        })
        .push(Command::Zcard {
            key: self.keys.index.clone(),
        });
        let replies = pipe.execute().await?;
        let [prefix, len, members] = <[Value; 3]>::try_from(replies)
            .map_err(|_| Error::Corrupt("sizing replies missing".to_owned()))?;
        let Some(record_len) = prefix
            .into_opt_bytes()?
            .and_then(|p| vectors::first_record_len(&p))
        else {
            return Ok(false);
        };
        let len = usize::try_from(len.into_int()?).unwrap_or(0);
        let records = (len.saturating_sub(vectors::HEADER_LEN) / record_len) as u64;
        let indexed = members.into_int()?.max(0) as u64 / 4;
        if vectors::bloated(records, indexed) {
            self.compact_vectors().await
        } else {
            Ok(false)
        }
    }

    /// Rewrites the vector block with one record per live entry: reads the block and the
    /// index's live expiry members in one round trip, then swaps in the compacted copy
    /// with a script that keeps anything appended since and gives up if another compaction
    /// ran first. Returns whether it replaced the block.
    pub(crate) async fn compact_vectors(&self) -> Result<bool> {
        let Some((lo, hi)) = index::lex_range(Index::Expiry, self.now_ms(), u64::MAX) else {
            return Ok(false);
        };
        let mut pipe = self.client.pipeline();
        pipe.push(Command::Get {
            key: self.keys.vectors.clone(),
        })
        .push(self.range_page(&lo, &hi, false, MAX_QUERY_LIMIT))
        .push(Command::Get {
            key: self.keys.postings.clone(),
        });
        let mut replies = pipe.execute().await?.into_iter();
        let (Some(block), Some(members), Some(postings)) =
            (replies.next(), replies.next(), replies.next())
        else {
            return Err(Error::Corrupt("compaction replies missing".to_owned()));
        };
        let Some(block) = block.into_opt_bytes()? else {
            return Ok(false);
        };
        let live = members
            .into_members()?
            .iter()
            .map(|m| index::parse_expiry_member(m.as_bytes()).map(|(_, id)| id))
            .collect::<Result<HashSet<Ulid>>>()?;
        // The postings block lists the same memories: compacted to the same live set.
        if let Some(postings) = postings.into_opt_bytes()? {
            let parsed = PostingsBlock::parse(&postings)?;
            if let Some(compacted) = crate::postings::compacted(&parsed, &live)? {
                self.swap_compacted(
                    &self.keys.postings,
                    parsed.header,
                    postings.len(),
                    compacted,
                )
                .await?;
            }
        }
        let parsed = Block::parse(&block)?;
        let Some(compacted) = vectors::compacted(&parsed, &live)? else {
            return Ok(false);
        };
        self.swap_compacted(&self.keys.vectors, parsed.header, block.len(), compacted)
            .await
    }

    /// Replaces the block at `key`, read as `len` bytes under `header`, with `compacted`
    /// plus whatever was appended since, unless another compaction ran first. Returns
    /// whether it replaced it.
    async fn swap_compacted(
        &self,
        key: &str,
        header: &[u8],
        len: usize,
        compacted: Vec<u8>,
    ) -> Result<bool> {
        let args = vec![
            Bytes::copy_from_slice(header),
            Bytes::from(len.to_string()),
            Bytes::from(compacted),
            Bytes::from(self.index_ttl_ms().to_string()),
        ];
        let replaced = self
            .client
            .eval(
                &self.shared.scripts.compact_vectors,
                vec![key.to_owned()],
                args,
            )
            .await?
            .into_int()?;
        Ok(replaced == 1)
    }
}

/// Merges both tiers' results: best score first, then lower memory id; an id found in
/// both tiers is kept once, from STM.
fn merge_scored(mut all: Vec<Scored>, k: usize) -> Vec<Scored> {
    let rank = |s: &Scored| u8::from(s.memory.source != Source::Stm);
    all.sort_by(|a, b| {
        a.memory
            .entry
            .memory_id
            .cmp(&b.memory.entry.memory_id)
            .then(rank(a).cmp(&rank(b)))
    });
    all.dedup_by(|later, kept| later.memory.entry.memory_id == kept.memory.entry.memory_id);
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.memory.entry.memory_id.cmp(&b.memory.entry.memory_id))
    });
    all.truncate(k);
    all
}

fn scored(found: Vec<(f32, MemoryEntry)>, source: Source) -> impl Iterator<Item = Scored> {
    found.into_iter().map(move |(score, entry)| Scored {
        score,
        memory: Retrieved { entry, source },
    })
}

impl AgentMemory {
    /// The `k` memories most similar to `query` across STM and IM that `filter` matches,
    /// best first, with their cosine similarity: exact over every stored embedding (IM's
    /// quantized as stored), ties broken by memory id, a memory in both tiers once.
    ///
    /// `query` must have the namespace's embedding dimension, be finite and not all zeros;
    /// otherwise [`Error::InvalidInput`], before anything is sent. While the primary store
    /// is unreachable, the answer comes from the local fallback's recent entries, marked
    /// [`Source::Fallback`]; without a fallback it is the primary's error.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be read and no fallback
    /// answers; [`Error::Corrupt`](crate::Error::Corrupt) or
    /// [`Error::UnsupportedSchema`](crate::Error::UnsupportedSchema) for an entry this version
    /// cannot read; [`Error::InvalidInput`](crate::Error::InvalidInput) for bad arguments.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a read; dropping the future changes nothing.
    pub async fn similar(&self, query: &[f32], k: usize, filter: &Filter) -> Result<Vec<Scored>> {
        self.similar_scored(query, k, filter, &Scoring::cosine())
            .await
    }

    /// The `k` memories across STM and IM that `filter` matches with the best scores under
    /// `scoring`, best first: a weighted sum of cosine similarity to `query`, BM25 of a
    /// text, recency and importance, exact for that formula (see [`Scoring`]), ties broken
    /// by memory id, a memory in both tiers once. [`similar`](Self::similar) is this with
    /// [`Scoring::cosine`].
    ///
    /// Text scoring reads each tier's postings block beside its vector block (held in the
    /// local replica like it); BM25's statistics are each tier's own.
    ///
    /// # Errors
    ///
    /// As [`similar`](Self::similar); a negative or non-finite weight, a zero half-life or
    /// a text without words is [`Error::InvalidInput`], before anything is sent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a read; dropping the future changes nothing.
    pub async fn similar_scored(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        scoring: &Scoring,
    ) -> Result<Vec<Scored>> {
        filter.check()?;
        scoring.check()?;
        let query = unit_query(query, self.inner.embedding_dimension())?;
        let k = k.min(MAX_QUERY_LIMIT);
        if k == 0 {
            return Ok(Vec::new());
        }
        let (stm, im) = tokio::join!(
            self.stm.similar(&query, k, filter, scoring),
            self.im.similar(&query, k, filter, scoring)
        );
        match (stm, im) {
            (Ok(s), Ok(i)) => {
                let all = scored(s, Source::Stm)
                    .chain(scored(i, Source::Im))
                    .collect();
                Ok(merge_scored(all, k))
            }
            (Err(e), _) | (_, Err(e)) => {
                let fb = self.fallback_or(e)?;
                let found = fb.similar(&query, k, filter, scoring).await?;
                Ok(merge_scored(scored(found, Source::Fallback).collect(), k))
            }
        }
    }

    /// Up to `limit` memories across STM and IM that `filter` matches. The filter's
    /// time range (or else step range, or else importance range) runs on the server; the
    /// rest is checked on each entry read, and each tier reads at most
    /// [`MAX_QUERY_LIMIT`] index members.
    ///
    /// The order follows the range that ran on the server: newest first with a time range
    /// or none, by step (lowest first) with a step range, most important first with only
    /// an importance range; ties by memory id. While the primary store is unreachable, the
    /// answer comes from the local fallback, marked [`Source::Fallback`].
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be read and no fallback
    /// answers; [`Error::Corrupt`](crate::Error::Corrupt) or
    /// [`Error::UnsupportedSchema`](crate::Error::UnsupportedSchema) for an entry this version
    /// cannot read; [`Error::InvalidInput`](crate::Error::InvalidInput) for bad arguments.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a read; dropping the future changes nothing.
    pub async fn find(&self, filter: &Filter, limit: usize) -> Result<Vec<Retrieved>> {
        filter.check()?;
        let (index, scores) = match filter.narrowing() {
            None => (Index::Timeline, None),
            Some((index, min, max)) => (index, Some((min, max))),
        };
        let q = Query {
            index,
            scores,
            descending: index != Index::Steps,
            limit,
        };
        let order = match index {
            Index::Steps => crate::agent::by_step,
            Index::Importance => crate::agent::most_important_first,
            _ => crate::agent::newest_first,
        };
        let filter = (!filter.is_range_only()).then_some(filter);
        self.query_all(q, order, filter).await
    }

    /// Up to `limit` memories whose content holds `text` in one of its strings, ignoring
    /// case, newest first: [`find`](Self::find) with
    /// [`Filter::content_contains`]. An empty `text` is [`Error::InvalidInput`].
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be read and no fallback
    /// answers; [`Error::Corrupt`](crate::Error::Corrupt) or
    /// [`Error::UnsupportedSchema`](crate::Error::UnsupportedSchema) for an entry this version
    /// cannot read; [`Error::InvalidInput`](crate::Error::InvalidInput) for bad arguments.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a read; dropping the future changes nothing.
    pub async fn search_content(&self, text: &str, limit: usize) -> Result<Vec<Retrieved>> {
        self.find(&Filter::new().content_contains(text), limit)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_pop_best_score_then_lowest_id() {
        let c = |score, id: u128| Candidate {
            score,
            id: Ulid::from(id),
            partial: score,
        };
        let mut heap = BinaryHeap::from(vec![c(0.5, 3), c(0.9, 9), c(0.5, 1), c(-1.0, 0)]);
        let order: Vec<u128> = std::iter::from_fn(|| heap.pop())
            .map(|c| c.id.into())
            .collect();
        assert_eq!(order, [9, 1, 3, 0]);
        assert_eq!(batch_for(1), 16);
        assert_eq!(batch_for(50), 100);
    }
}
