//! [`AgentMemory`]: one agent's memory across STM, IM and the local fallback.
//!
//! Its guide is in the docs of its main type.

use std::cmp::Ordering;
use std::sync::Arc;

use resilience_core::{Priority, StoreOutcome};
use ulid::Ulid;

use crate::entry::{
    MemoryEntry, MemoryInput, MemoryMetadata, Retrieved, Source, Tier, clamp_importance,
};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::hooks::MemoryEventKind;
use crate::keys::Index;
use crate::shared::Inner;
use crate::tier::{Query, TierHandle, WriteReport};

/// What became of a [`store`](AgentMemory::store).
#[derive(Debug)]
#[non_exhaustive]
pub struct StoreReceipt {
    /// The new memory's id.
    pub memory_id: Ulid,
    /// What the resilient client did with the write (stored, queued with its ticket,
    /// dropped, failed).
    pub outcome: StoreOutcome,
    /// Whether the entry was also written to the local fallback (the primary did not
    /// confirm it).
    pub in_fallback: bool,
}

/// Live entries per tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierCounts {
    /// Live STM entries.
    pub stm: u64,
    /// Live IM entries.
    pub im: u64,
}

impl TierCounts {
    /// STM plus IM.
    pub fn total(&self) -> u64 {
        self.stm + self.im
    }
}

/// One agent's memory. Get it from [`TieredMemory::agent`](crate::TieredMemory::agent).
///
/// Reads look in STM, then IM. Range queries run on both tiers (each on the server, with
/// the limit) and are merged; an entry present in both (an interrupted move) is reported
/// once, from STM. While the primary store is unreachable, reads are answered from the
/// local fallback, if configured, marked [`Source::Fallback`].
#[derive(Clone, Debug)]
pub struct AgentMemory {
    pub(crate) agent_id: Arc<str>,
    pub(crate) stm: TierHandle,
    pub(crate) im: TierHandle,
    pub(crate) fallback: Option<TierHandle>,
    pub(crate) inner: Arc<Inner>,
}

/// Parses a memory id; anything but a ULID is [`Error::InvalidInput`].
pub fn parse_memory_id(s: &str) -> Result<Ulid> {
    Ulid::from_string(s)
        .map_err(|_| Error::InvalidInput(format!("{s:?} is not a memory id (ULID)")))
}

fn sort_merge(
    mut all: Vec<Retrieved>,
    order: fn(&MemoryEntry, &MemoryEntry) -> Ordering,
    limit: usize,
) -> Vec<Retrieved> {
    // Each tier's list is already in `order`: the sort merges two runs.
    all.sort_by(|a, b| order(&a.entry, &b.entry));
    // An id in both tiers (a move between its write to IM and its delete from STM): keep
    // the STM copy, which holds the counters as they are now.
    let mut stm_ids: Vec<Ulid> = all
        .iter()
        .filter(|r| r.source == Source::Stm)
        .map(|r| r.entry.memory_id)
        .collect();
    stm_ids.sort_unstable();
    all.retain(|r| !(r.source == Source::Im && stm_ids.binary_search(&r.entry.memory_id).is_ok()));
    // Any other repeat is the same entry twice, adjacent once sorted.
    all.dedup_by(|a, b| a.entry.memory_id == b.entry.memory_id);
    all.truncate(limit);
    all
}

pub(crate) fn newest_first(a: &MemoryEntry, b: &MemoryEntry) -> Ordering {
    b.timestamp
        .cmp(&a.timestamp)
        .then(b.memory_id.cmp(&a.memory_id))
}

pub(crate) fn oldest_first(a: &MemoryEntry, b: &MemoryEntry) -> Ordering {
    a.timestamp
        .cmp(&b.timestamp)
        .then(a.memory_id.cmp(&b.memory_id))
}

pub(crate) fn by_step(a: &MemoryEntry, b: &MemoryEntry) -> Ordering {
    a.step_number
        .cmp(&b.step_number)
        .then(a.memory_id.cmp(&b.memory_id))
}

pub(crate) fn most_important_first(a: &MemoryEntry, b: &MemoryEntry) -> Ordering {
    b.metadata
        .importance_score
        .total_cmp(&a.metadata.importance_score)
        .then(b.memory_id.cmp(&a.memory_id))
}

fn tag(entries: Vec<MemoryEntry>, source: Source) -> Vec<Retrieved> {
    entries
        .into_iter()
        .map(|entry| Retrieved { entry, source })
        .collect()
}

impl AgentMemory {
    /// The agent's id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The agent's STM tier.
    pub fn stm(&self) -> &TierHandle {
        &self.stm
    }

    /// The agent's IM tier.
    pub fn im(&self) -> &TierHandle {
        &self.im
    }

    /// The agent's fallback tier, if one is configured.
    pub fn fallback(&self) -> Option<&TierHandle> {
        self.fallback.as_ref()
    }

    fn entry_from(&self, input: MemoryInput) -> Result<MemoryEntry> {
        if !input.importance.is_finite() {
            return Err(Error::InvalidInput(
                "importance must be a finite number".to_owned(),
            ));
        }
        if let Some(e) = &input.embedding {
            self.inner.check_embedding(e)?;
        }
        let now = self.inner.clock.now_ms();
        Ok(MemoryEntry {
            memory_id: self.inner.next_id(now),
            agent_id: self.agent_id.to_string(),
            step_number: input.step_number,
            timestamp: input.timestamp.unwrap_or(now),
            content: input.content,
            metadata: MemoryMetadata {
                creation_time: now,
                last_access_time: now,
                compression_level: 0,
                importance_score: clamp_importance(input.importance),
                retrieval_count: 0,
                memory_type: input.memory_type,
                current_tier: Tier::Stm,
            },
            embedding: input.embedding,
        })
    }

    /// Stores a memory in STM: entry, indexes and TTLs in one atomic script, through the
    /// resilient client with `priority` (stored now, queued for replay, dropped, or
    /// failed: see [`StoreOutcome`]). Oversized content, non-finite numbers are
    /// [`Error::InvalidInput`] before anything is sent.
    ///
    /// When the primary did not confirm the write (queued, dropped, or failed because it was
    /// unreachable), the entry is also written to the local fallback, if configured, so it
    /// stays readable. When the write leaves STM over capacity, the lowest-value entries
    /// move to IM before this returns (a failed move is logged and retried by the next
    /// write or [`maintain`](Self::maintain); nothing is lost).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for input refused before anything is
    /// sent (a bad agent id, an oversized value, a wrong embedding dimension, NaN);
    /// [`Error::Redis`](crate::Error::Redis) for a failure the priority handling and the
    /// fallback could not absorb. An outage is not an error: the receipt's outcome says the
    /// write was queued (or stored in the fallback).
    ///
    /// # Cancel safety
    ///
    /// The write is one atomic `MULTI`: dropping the future leaves it applied or not, never in
    /// part. One the recovery queue already accepted stays queued and is replayed.
    pub async fn store(&self, input: MemoryInput, priority: Priority) -> Result<StoreReceipt> {
        let entry = self.entry_from(input)?;
        let (outcome, stm_report) = self.stm.submit(&entry, priority).await?;
        let unconfirmed = match &outcome {
            StoreOutcome::Stored => false,
            StoreOutcome::Queued(_) | StoreOutcome::Dropped => true,
            StoreOutcome::Failed(e) => e.class().is_outage(),
        };
        let mut in_fallback = false;
        if unconfirmed && let Some(fb) = &self.fallback {
            match fb.write_now(std::slice::from_ref(&entry), false).await {
                Ok(report) => {
                    in_fallback = true;
                    self.trim_fallback(fb, report).await;
                }
                Err(e) => tracing::warn!(error = %e, "fallback write failed"),
            }
        }
        if matches!(outcome, StoreOutcome::Stored | StoreOutcome::Queued(_)) {
            self.stm.emit(MemoryEventKind::Stored, &[entry.memory_id]);
        }
        if outcome.is_stored() {
            self.after_write(stm_report).await;
        }
        Ok(StoreReceipt {
            memory_id: entry.memory_id,
            outcome,
            in_fallback,
        })
    }

    /// Keeps the fallback within STM's capacity: it holds recent writes only, and drops its
    /// lowest-value copies (their primary writes stay queued). `report` is what the write
    /// reported; over capacity, expired entries go first, then the live excess.
    async fn trim_fallback(&self, fb: &TierHandle, report: WriteReport) {
        let capacity = self.inner.stm_config.capacity as u64;
        fb.tidy(report).await;
        if report.indexed <= capacity {
            return;
        }
        let size = match fb.count().await {
            Ok(n) if n > capacity => n,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not size the fallback");
                return;
            }
        };
        let q = Query {
            index: Index::Importance,
            scores: None,
            descending: false,
            limit: (size - capacity) as usize,
        };
        let trimmed = match fb.query(q).await {
            Ok(victims) => {
                let ids: Vec<Ulid> = victims.iter().map(|e| e.memory_id).collect();
                let deleted = fb.delete(&ids).await.map(|_| ());
                if deleted.is_ok() {
                    fb.emit(MemoryEventKind::Evicted, &ids);
                }
                deleted
            }
            Err(e) => Err(e),
        };
        if let Err(e) = trimmed {
            tracing::warn!(error = %e, "could not trim the fallback");
        }
    }

    /// Moves entries to IM when STM is over capacity after a write. `report` says how
    /// many entries STM's index listed after the write (expired ones included); when
    /// unknown (a write queued, then replayed) the live ones are counted. Over capacity,
    /// expired entries are cleaned up first, then the live excess moves.
    async fn after_write(&self, report: Option<WriteReport>) {
        let capacity = self.inner.stm_config.capacity as u64;
        let report = match report {
            Some(r) => r,
            None => match self.stm.count().await {
                Ok(indexed) => WriteReport {
                    indexed,
                    vector_records: None,
                },
                Err(e) => {
                    tracing::debug!(error = %e, "could not size STM after a write");
                    return;
                }
            },
        };
        self.stm.tidy(report).await;
        if report.indexed > capacity {
            let Some(_claim) = self.inner.moving.claim(&self.agent_id) else {
                // Another write of this agent is moving the excess now.
                return;
            };
            let slack = self.inner.stm_config.transition_slack as u64;
            if let Err(e) = self.transition_excess(slack, false).await {
                tracing::warn!(agent = %self.agent_id, error = %e, "STM -> IM move failed; the entries stay in STM");
            }
        }
    }

    pub(crate) fn fallback_or(&self, e: Error) -> Result<&TierHandle> {
        match &self.fallback {
            Some(fb) if e.is_unreachable() => Ok(fb),
            _ => Err(e),
        }
    }

    /// Reads a memory by id: STM, then IM, then the fallback. Counts a retrieval
    /// (`retrieval_count` + 1, `last_access_time` now) atomically, without touching the TTL.
    ///
    /// While the primary is unreachable, an id the fallback does not hold is the primary's
    /// error (it may well exist there), not `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As the range reads ([`recent`](Self::recent)).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future changes nothing but, possibly, the retrieval count: the read and its
    /// count are one atomic `BITFIELD`, which may have run.
    pub async fn get(&self, memory_id: Ulid) -> Result<Option<Retrieved>> {
        let primary = async {
            if let Some(e) = self.stm.get(memory_id, true).await? {
                return Ok(Some(Retrieved {
                    entry: e,
                    source: Source::Stm,
                }));
            }
            Ok::<_, Error>(self.im.get(memory_id, true).await?.map(|e| Retrieved {
                entry: e,
                source: Source::Im,
            }))
        };
        // Missed on the primary (or it is unreachable): a write the primary has not applied
        // yet may be in the fallback.
        let primary_error = match primary.await {
            Ok(Some(r)) => return Ok(Some(r)),
            Ok(None) => None,
            Err(e) if e.is_unreachable() && self.fallback.is_some() => Some(e),
            Err(e) => return Err(e),
        };
        let Some(fb) = &self.fallback else {
            return Ok(None);
        };
        match fb.get(memory_id, true).await? {
            Some(entry) => Ok(Some(Retrieved {
                entry,
                source: Source::Fallback,
            })),
            // Not in the fallback either: while the primary is unreachable that proves
            // nothing, so say so rather than "not found".
            None => match primary_error {
                Some(e) => Err(e),
                None => Ok(None),
            },
        }
    }

    /// Runs `q` on both tiers and merges, or on the fallback when the primary is
    /// unreachable.
    pub(crate) async fn query_all(
        &self,
        q: Query,
        order: fn(&MemoryEntry, &MemoryEntry) -> Ordering,
        filter: Option<&Filter>,
    ) -> Result<Vec<Retrieved>> {
        let (stm, im) = tokio::join!(
            self.stm.query_where(q, filter),
            self.im.query_where(q, filter)
        );
        match (stm, im) {
            (Ok(s), Ok(i)) => {
                let mut all = tag(s, Source::Stm);
                all.extend(tag(i, Source::Im));
                Ok(sort_merge(
                    all,
                    order,
                    q.limit.min(crate::tier::MAX_QUERY_LIMIT),
                ))
            }
            (Err(e), _) | (_, Err(e)) => {
                let fb = self.fallback_or(e)?;
                Ok(sort_merge(
                    tag(fb.query_where(q, filter).await?, Source::Fallback),
                    order,
                    q.limit,
                ))
            }
        }
    }

    /// The `n` most recent memories, newest first (by timestamp, then id).
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
    pub async fn recent(&self, n: usize) -> Result<Vec<Retrieved>> {
        self.query_all(
            Query {
                index: Index::Timeline,
                scores: None,
                descending: true,
                limit: n,
            },
            newest_first,
            None,
        )
        .await
    }

    /// Memories with `from_ms <= timestamp <= to_ms`, oldest first, at most `limit`.
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
    pub async fn by_time_range(
        &self,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<Retrieved>> {
        self.query_all(
            Query {
                index: Index::Timeline,
                scores: Some((from_ms as f64, to_ms as f64)),
                descending: false,
                limit,
            },
            oldest_first,
            None,
        )
        .await
    }

    /// Memories with `from <= step_number <= to`, by step, at most `limit`.
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
    pub async fn by_step_range(&self, from: u64, to: u64, limit: usize) -> Result<Vec<Retrieved>> {
        self.query_all(
            Query {
                index: Index::Steps,
                scores: Some((from as f64, to as f64)),
                descending: false,
                limit,
            },
            by_step,
            None,
        )
        .await
    }

    /// Memories with `min <= importance <= max`, most important first, at most `limit`.
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
    pub async fn by_importance(&self, min: f64, max: f64, limit: usize) -> Result<Vec<Retrieved>> {
        if min.is_nan() || max.is_nan() {
            return Err(Error::InvalidInput(
                "importance bounds must be numbers".to_owned(),
            ));
        }
        self.query_all(
            Query {
                index: Index::Importance,
                scores: Some((min, max)),
                descending: true,
                limit,
            },
            most_important_first,
            None,
        )
        .await
    }

    /// Live entries in each tier (expired index members are removed first).
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
    pub async fn count(&self) -> Result<TierCounts> {
        let (stm, im) = tokio::join!(self.stm.count(), self.im.count());
        Ok(TierCounts { stm: stm?, im: im? })
    }

    /// Deletes a memory from every tier (and the fallback); whether it existed anywhere.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be written;
    /// [`Error::Contended`](crate::Error::Contended) when the entry kept changing under it.
    ///
    /// # Cancel safety
    ///
    /// Each tier's change is one script, atomic: dropping the future leaves it applied or not,
    /// never in part; a tier already changed stays changed.
    pub async fn delete(&self, memory_id: Ulid) -> Result<bool> {
        let ids = [memory_id];
        let (stm, im) = tokio::join!(self.stm.delete(&ids), self.im.delete(&ids));
        let mut n = stm? + im?;
        if let Some(fb) = &self.fallback {
            n += fb.delete(&ids).await.unwrap_or(0);
        }
        if n > 0 {
            self.stm.emit(MemoryEventKind::Deleted, &ids);
        }
        Ok(n > 0)
    }

    /// Deletes every memory of the agent in every tier (and the fallback); how many ids
    /// were listed.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be written;
    /// [`Error::Contended`](crate::Error::Contended) when the entry kept changing under it.
    ///
    /// # Cancel safety
    ///
    /// Each tier's change is one script, atomic: dropping the future leaves it applied or not,
    /// never in part; a tier already changed stays changed.
    pub async fn clear(&self) -> Result<u64> {
        let (stm, im) = tokio::join!(self.stm.clear(), self.im.clear());
        let mut n = stm? + im?;
        if let Some(fb) = &self.fallback {
            n += fb.clear().await.unwrap_or(0);
        }
        Ok(n)
    }

    /// Adds `delta` to a memory's importance, clamped to [0, 1], in whichever tier holds
    /// it; the new importance, or `None` when it is nowhere.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be written;
    /// [`Error::Contended`](crate::Error::Contended) when the entry kept changing under it.
    ///
    /// # Cancel safety
    ///
    /// Each tier's change is one script, atomic: dropping the future leaves it applied or not,
    /// never in part; a tier already changed stays changed.
    pub async fn adjust_importance(&self, memory_id: Ulid, delta: f64) -> Result<Option<f64>> {
        if let Some(v) = self.stm.adjust_importance(memory_id, delta).await? {
            return Ok(Some(v));
        }
        self.im.adjust_importance(memory_id, delta).await
    }
}
