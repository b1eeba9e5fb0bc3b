//! One tier of one agent: the commands of each operation and the decoding of their
//! replies.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{
    ClientRouter, Command, ExpireCondition, LexBound, Limit, Priority, ResilientClient,
    SetCondition, SetOptions, StoreOutcome, Value, ZaddOptions,
};
use ulid::Ulid;

use crate::clock::Clock;
use crate::codec::{self, Encoding};
use crate::config::{CompressionLevel, ImConfig, StmConfig};
use crate::entry::{MemoryEntry, Tier};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::hooks::{Hooks, MemoryEventKind};
use crate::index;
use crate::keys::{AgentKeys, Index};
use crate::postings;
use crate::scripts::ScriptSet;
use crate::text::Terms;
use crate::vectors;

/// The most entries one query returns from one tier; larger limits are lowered to it. A
/// filtered query also reads at most this many index members per tier.
pub const MAX_QUERY_LIMIT: usize = 100_000;

/// The fewest index members a filtered query reads per round trip.
const FILTERED_PAGE: usize = 256;

/// Settings of a tier, whichever it is.
#[derive(Clone, Debug)]
pub(crate) struct TierSettings {
    pub(crate) tier: Tier,
    pub(crate) ttl: Duration,
    pub(crate) level: CompressionLevel,
    pub(crate) transient: Vec<String>,
    pub(crate) max_value_bytes: usize,
    pub(crate) cleanup_batch: usize,
    /// Entries per agent above which a write's reported size triggers a cleanup.
    pub(crate) capacity: usize,
}

impl TierSettings {
    pub(crate) fn stm(c: &StmConfig) -> Self {
        TierSettings {
            tier: Tier::Stm,
            ttl: c.ttl,
            level: CompressionLevel::None,
            transient: Vec::new(),
            max_value_bytes: c.max_value_bytes,
            cleanup_batch: c.cleanup_batch.max(1),
            capacity: c.capacity,
        }
    }

    pub(crate) fn im(c: &ImConfig) -> Self {
        TierSettings {
            tier: Tier::Im,
            ttl: c.ttl,
            level: c.compression,
            transient: c.transient_fields.clone(),
            max_value_bytes: c.max_value_bytes,
            cleanup_batch: c.cleanup_batch.max(1),
            capacity: c.capacity,
        }
    }
}

/// A tier shared by all agents: its client, settings and scripts.
#[derive(Debug)]
pub(crate) struct TierShared {
    /// The client for each slot: one for all, or one per cluster shard.
    pub(crate) router: Arc<dyn ClientRouter>,
    pub(crate) settings: TierSettings,
    pub(crate) scripts: Arc<ScriptSet>,
    /// The listeners of memory events, shared by every tier of one `TieredMemory`.
    pub(crate) hooks: Arc<Hooks>,
    pub(crate) clock: Clock,
    pub(crate) namespace: String,
    /// The local copies of vector blocks, shared by the tiers of one `TieredMemory`
    /// (`None` when turned off, and for the in-process fallback).
    pub(crate) replica: Option<Arc<crate::replica::VectorReplica>>,
    /// Vector blocks being compacted after a write: one compaction per block at a time.
    pub(crate) compacting: crate::claims::Claims,
}

/// A bounded index query.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query {
    pub(crate) index: Index,
    /// `None`: the whole index; `Some((min, max))`: values in this range, inclusive.
    pub(crate) scores: Option<(f64, f64)>,
    pub(crate) descending: bool,
    pub(crate) limit: usize,
}

/// The commands of one entry's write, and the size of its vector record (if any).
#[derive(Debug)]
pub(crate) struct WritePlan {
    pub(crate) commands: Vec<Command>,
    record_len: Option<usize>,
}

/// What a write's replies tell about its tier afterwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WriteReport {
    /// Entries the index lists: live ones and expired ones not yet cleaned up.
    pub(crate) indexed: u64,
    /// Records in the vector block, when the write appended one.
    pub(crate) vector_records: Option<u64>,
}

impl WriteReport {
    /// Reads the replies of one [`WritePlan`]: `ZCARD` (four members per entry) and, with
    /// an embedding, `APPEND` (the block's length).
    fn from_replies(replies: &[Value], record_len: Option<usize>) -> Option<WriteReport> {
        let int = |i: usize| replies.get(i).cloned()?.into_int().ok();
        let indexed = int(3)?.max(0) as u64 / 4;
        let vector_records = record_len.and_then(|len| {
            let bytes = usize::try_from(int(5)?).ok()?;
            Some((bytes.saturating_sub(vectors::HEADER_LEN) / len.max(1)) as u64)
        });
        Some(WriteReport {
            indexed,
            vector_records,
        })
    }
}
/// Entries deleted (or cleared) per command.
const DELETE_BATCH: usize = 512;
/// How often `adjust_importance` re-reads an entry that changed under it before giving up.
const IMPORTANCE_ATTEMPTS: usize = 16;

/// A command without a [`Command`] variant, on `key`: `args` as sent, name first.
fn raw(args: Vec<Bytes>, key: &str, write: bool, idempotent: bool) -> Command {
    Command::Raw {
        args,
        keys: vec![key.to_owned()],
        write,
        idempotent,
    }
}

/// An index bound as [`index`] spells it (always `[…`, `(…`, `-` or `+`).
fn lex_bound(bound: &str) -> LexBound {
    LexBound::from_redis_arg(bound).unwrap_or_else(|| LexBound::inclusive(bound))
}

/// A fixed argument, not copied.
fn word(word: &'static [u8]) -> Bytes {
    Bytes::from_static(word)
}

/// An argument of the caller's, copied once.
fn arg(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// A hash where an entry should be is an entry of the layouts that stored hashes.
pub(crate) fn schema_error(e: resilience_core::Error) -> Error {
    if e.backend_error().and_then(|b| b.code()) == Some("WRONGTYPE") {
        Error::UnsupportedSchema {
            found: codec::HASH_SCHEMA_VERSION,
            supported: codec::SCHEMA_VERSION,
        }
    } else {
        Error::Redis(e)
    }
}

/// One agent's view of one tier.
#[derive(Clone, Debug)]
pub struct TierHandle {
    pub(crate) shared: Arc<TierShared>,
    pub(crate) keys: AgentKeys,
    /// The agent, for memory events.
    agent_id: Arc<str>,
    /// The client of this agent's slot in this tier (all its keys here share one hash tag).
    pub(crate) client: ResilientClient,
}

impl TierHandle {
    pub(crate) fn new(shared: Arc<TierShared>, agent_id: &str) -> Self {
        let keys = AgentKeys::new(&shared.namespace, shared.settings.tier.as_str(), agent_id);
        let client = shared.router.client_for_key(keys.index.as_bytes()).clone();
        TierHandle {
            shared,
            keys,
            agent_id: agent_id.into(),
            client,
        }
    }

    /// Which tier this is.
    pub fn tier(&self) -> Tier {
        self.shared.settings.tier
    }

    /// This agent's keys in this tier.
    pub fn keys(&self) -> &AgentKeys {
        &self.keys
    }

    /// The client this agent's keys in this tier go through (with per-shard breakers, the
    /// client of the shard that owns the agent's slot).
    pub fn client(&self) -> &ResilientClient {
        &self.client
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// The index's TTL: the tier's plus a slack of 1/64 of it (at least 1 s), set on every
    /// write, so the index (and the vector block) outlives every entry it lists.
    pub(crate) fn index_ttl_ms(&self) -> u64 {
        let ttl_ms = (self.shared.settings.ttl.as_millis() as u64).max(1);
        ttl_ms.saturating_add((ttl_ms / 64).max(1000))
    }

    /// The commands that write `entry` (encoded and compressed for this tier), to run in
    /// one `MULTI`: the entry with its TTL, its four index members, the index's TTL, and
    /// the index's size; with an embedding, also the vector block's header (if it has none
    /// yet), the entry's record appended to it, and the block's TTL.
    ///
    /// An entry expires the tier's TTL after its creation, whenever it is written: so
    /// writing one entry to one tier again (a replay, a retried move) stores the same bytes
    /// and the same index members, never a second expiry member (a second vector record
    /// is possible; searches keep one).
    pub(crate) fn write_commands(
        &self,
        entry: &MemoryEntry,
        with_counters: bool,
    ) -> Result<WritePlan> {
        let s = &self.shared.settings;
        let ttl_ms = (s.ttl.as_millis() as u64).max(1);
        let now_ms = self.now_ms();
        let deadline = entry.metadata.creation_time.saturating_add(ttl_ms);
        let encoded = codec::encode(
            entry,
            Encoding {
                tier: s.tier,
                level: s.level,
                transient: &s.transient,
                max_value_bytes: s.max_value_bytes,
                with_counters,
                deadline,
            },
        )?;
        // Past its deadline already (a write replayed long after): gone at once.
        let left_ms = deadline.saturating_sub(now_ms).max(1);
        let index_ttl = i64::try_from(self.index_ttl_ms()).unwrap_or(i64::MAX);
        let index = &self.keys.index;
        let id = entry.memory_id.to_string();
        let mut commands = vec![
            Command::Set {
                key: self.keys.entry(&id),
                value: encoded.bytes,
                options: SetOptions::default().with_expire_ms(left_ms),
            },
            Command::Zadd {
                key: index.clone(),
                members: encoded
                    .fields
                    .members(&id)
                    .into_iter()
                    .map(|m| (0.0, m))
                    .collect(),
                options: ZaddOptions::default(),
            },
            Command::Pexpire {
                key: index.clone(),
                millis: index_ttl,
                condition: None,
            },
            Command::Zcard { key: index.clone() },
        ];
        let mut record_len = None;
        if let Some(embedding) = &encoded.embedding {
            let vectors = &self.keys.vectors;
            let record = vectors::record(entry.memory_id, embedding);
            record_len = Some(record.len());
            commands.extend([
                Command::Set {
                    key: vectors.clone(),
                    // A block starts at a generation of its own (the low, random bits
                    // of its first memory's id), so a block deleted and made again is
                    // never taken for the one a replica holds.
                    value: Bytes::copy_from_slice(&vectors::header(
                        u128::from(entry.memory_id) as u64
                    )),
                    options: SetOptions::default().with_condition(SetCondition::IfNotExists),
                },
                // Sent again, it appends the record twice; searches and compaction keep
                // one per id, so it is as safe to resend as the rest of the write. `APPEND`
                // in general is not (the typed `Command::Append` says so), hence a raw
                // command that declares what this layout makes true.
                raw(
                    vec![word(b"APPEND"), arg(vectors), Bytes::from(record)],
                    vectors,
                    true,
                    true,
                ),
                Command::Pexpire {
                    key: vectors.clone(),
                    millis: index_ttl,
                    condition: None,
                },
            ]);
            // The memory's words, for text scoring, the same way (see `postings`).
            let postings = &self.keys.postings;
            let dropped: &[String] = if s.level == CompressionLevel::None {
                &[]
            } else {
                &s.transient
            };
            let terms = Terms::of_content(&entry.content, dropped);
            commands.extend([
                Command::Set {
                    key: postings.clone(),
                    value: Bytes::copy_from_slice(&postings::header(
                        u128::from(entry.memory_id) as u64
                    )),
                    options: SetOptions::default().with_condition(SetCondition::IfNotExists),
                },
                raw(
                    vec![
                        word(b"APPEND"),
                        arg(postings),
                        Bytes::from(postings::record(entry.memory_id, &terms)),
                    ],
                    postings,
                    true,
                    true,
                ),
                Command::Pexpire {
                    key: postings.clone(),
                    millis: index_ttl,
                    condition: None,
                },
            ]);
        }
        Ok(WritePlan {
            commands,
            record_len,
        })
    }

    /// Runs a [`cleanup`](Self::cleanup) when a write found more entries indexed than the
    /// tier's capacity (so expired entries' members stay bounded by the capacity, and
    /// cost nothing while a tier is within it), and compacts the vector block when its
    /// records outnumber the indexed entries by half.
    pub(crate) async fn tidy(&self, report: WriteReport) {
        if report.indexed > self.shared.settings.capacity as u64
            && let Err(e) = self.cleanup().await
        {
            tracing::debug!(error = %e, "cleanup after a write failed; the next one retries");
        }
        if report
            .vector_records
            .is_some_and(|records| vectors::bloated(records, report.indexed))
            && let Some(_claim) = self.shared.compacting.claim(&self.keys.vectors)
            && let Err(e) = self.compact_vectors().await
        {
            tracing::debug!(error = %e, "vector compaction failed; a later write retries");
        }
    }

    /// Writes `entry` through the client's prioritized path. Also returns what the write
    /// found when it was stored right away (the index's size, the vector block's), so the
    /// caller needs no second round trip to check capacity.
    pub(crate) async fn submit(
        &self,
        entry: &MemoryEntry,
        priority: Priority,
    ) -> Result<(StoreOutcome, Option<WriteReport>)> {
        let plan = self.write_commands(entry, false)?;
        let record_len = plan.record_len;
        let submitted = self.client.submit_with_reply(plan.commands, priority).await;
        let report = submitted
            .reply
            .and_then(|r| r.into_array().ok())
            .and_then(|replies| WriteReport::from_replies(&replies, record_len));
        Ok((submitted.outcome, report))
    }

    /// Writes `entries` now, once, without queueing, in one `MULTI`; reports the tier as
    /// the last write left it.
    pub(crate) async fn write_now(
        &self,
        entries: &[MemoryEntry],
        with_counters: bool,
    ) -> Result<WriteReport> {
        let mut tx = self.client.transaction();
        let mut last = (0, None);
        let mut pushed = 0;
        for entry in entries {
            let plan = self.write_commands(entry, with_counters)?;
            last = (pushed, plan.record_len);
            pushed += plan.commands.len();
            for cmd in plan.commands {
                tx.push(cmd);
            }
        }
        let replies = tx.execute().await?;
        let (at, record_len) = last;
        Ok(replies
            .get(at..)
            .and_then(|r| WriteReport::from_replies(r, record_len))
            .unwrap_or_default())
    }

    /// Decodes a stored entry; `None` when it is no entry or its deadline has passed.
    pub(crate) fn decode_live(
        &self,
        id: Ulid,
        stored: &[u8],
        now_ms: u64,
    ) -> Result<Option<MemoryEntry>> {
        codec::decode_live(id, stored, self.shared.settings.max_value_bytes, now_ms)
    }

    /// Reads one entry; `bump` counts it as a retrieval (`retrieval_count` + 1, last access
    /// now), atomically and without touching its TTL.
    ///
    /// The bump is one `BITFIELD` on the entry's fixed-offset counters, pipelined with the
    /// `GET` that reads the entry back. Bumping an id that does not exist creates a
    /// zero-filled string with no TTL, which every read takes for no entry; seeing one,
    /// `get` deletes it with `PEXPIRE … 0 NX`, which never touches a real entry (those
    /// always have a TTL). So a hit costs the server two commands, and a miss three.
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
    /// Dropping the future changes nothing but, with `bump`, possibly the retrieval count (one
    /// atomic `BITFIELD`, which may have run).
    pub async fn get(&self, memory_id: Ulid, bump: bool) -> Result<Option<MemoryEntry>> {
        let key = self.keys.entry(&memory_id.to_string());
        let now_ms = self.now_ms();
        let stored = if bump {
            let mut pipe = self.client.pipeline();
            pipe.push(Command::Bitfield {
                key: key.clone(),
                args: vec![
                    word(b"OVERFLOW"),
                    word(b"SAT"),
                    word(b"INCRBY"),
                    word(b"u32"),
                    word(codec::COUNT_BIT_ARG),
                    word(b"1"),
                    word(b"SET"),
                    word(b"i64"),
                    word(codec::LAST_ACCESS_BIT_ARG),
                    Bytes::from(now_ms.to_string()),
                ],
            })
            .push(Command::Get { key: key.clone() });
            let replies = pipe
                .execute_with_retry(self.client.retry_policy())
                .await
                .map_err(schema_error)?;
            let stored = match replies.into_iter().nth(1) {
                Some(v) => v.into_opt_bytes()?,
                None => return Err(Error::Corrupt("GET reply missing".to_owned())),
            };
            if stored.as_ref().is_some_and(|s| codec::is_leftover(s)) {
                let unbump = Command::Pexpire {
                    key: key.clone(),
                    millis: 0,
                    condition: Some(ExpireCondition::NoTtl),
                };
                if let Err(e) = self.client.execute(unbump).await {
                    tracing::debug!(error = %e, key, "could not delete a miss's leftover");
                }
                return Ok(None);
            }
            stored
        } else {
            self.client.get(key).await.map_err(schema_error)?
        };
        match stored {
            None => Ok(None),
            Some(stored) => self.decode_live(memory_id, &stored, now_ms),
        }
    }

    /// A `ZRANGEBYLEX` (or `ZREVRANGEBYLEX`) page of the index between `lo` and `hi`.
    pub(crate) fn range_page(&self, lo: &str, hi: &str, descending: bool, count: usize) -> Command {
        Command::Zrangebylex {
            key: self.keys.index.clone(),
            min: lex_bound(lo),
            max: lex_bound(hi),
            rev: descending,
            limit: Some(Limit {
                offset: 0,
                count: count as u64,
            }),
        }
    }

    /// Runs a bounded query; entries in index order.
    ///
    /// One `ZRANGEBYLEX` names the entries, one `MGET` reads them. Members whose entry has
    /// expired are skipped (and the page after the last member read, so the limit is still
    /// met while live entries remain), then removed by a bounded [`cleanup`](Self::cleanup).
    pub(crate) async fn query(&self, q: Query) -> Result<Vec<MemoryEntry>> {
        self.query_where(q, None).await
    }

    /// [`query`](Self::query), keeping only entries `filter` matches: pages of at least
    /// [`FILTERED_PAGE`] members, until `q.limit` entries matched or
    /// [`MAX_QUERY_LIMIT`] members were read.
    pub(crate) async fn query_where(
        &self,
        q: Query,
        filter: Option<&Filter>,
    ) -> Result<Vec<MemoryEntry>> {
        let limit = q.limit.min(MAX_QUERY_LIMIT);
        let (lo, hi) = match q.scores {
            None => (0, u64::MAX),
            Some((min, max)) => match index::value_range(q.index, min, max) {
                Some(range) => range,
                None => return Ok(Vec::new()),
            },
        };
        let Some((lo, hi)) = index::lex_range(q.index, lo, hi) else {
            return Ok(Vec::new());
        };
        let now_ms = self.now_ms();
        let mut out = Vec::with_capacity(limit.min(1024));
        let (mut lo, mut hi) = (lo, hi);
        let mut stale = 0;
        let mut scanned = 0;
        while out.len() < limit && scanned < MAX_QUERY_LIMIT {
            let want = match filter {
                None => limit - out.len(),
                Some(_) => (limit - out.len()).max(FILTERED_PAGE),
            };
            let members = self
                .client
                .execute(self.range_page(&lo, &hi, q.descending, want))
                .await?
                .into_array()?;
            let page = members.len();
            if page == 0 {
                break;
            }
            scanned += page;
            let mut ids = Vec::with_capacity(page);
            let mut keys = Vec::with_capacity(page);
            let mut last = None;
            for m in members {
                let m = m.into_opt_bytes()?.unwrap_or_default();
                let (id, text) = index::member_id_text(&m)?;
                ids.push(id);
                keys.push(self.keys.entry(text));
                last = Some(m);
            }
            let stored = self.read_stored(keys).await?;
            let mut missing = Vec::new();
            for (id, stored) in ids.into_iter().zip(stored) {
                match stored.into_opt_bytes()? {
                    Some(stored) => match self.decode_live(id, &stored, now_ms)? {
                        Some(entry) => {
                            if out.len() < limit && filter.is_none_or(|f| f.matches(&entry)) {
                                out.push(entry);
                            }
                        }
                        None => stale += 1,
                    },
                    None => missing.push(self.keys.entry(&id.to_string())),
                }
            }
            stale += missing.len();
            self.refuse_old_layout(missing).await?;
            if page < want {
                break;
            }
            // The next page starts after the last member read (not at an offset, which a
            // concurrent cleanup would shift).
            if let Some(last) = last {
                let after = format!("({}", String::from_utf8_lossy(&last));
                if q.descending {
                    hi = after;
                } else {
                    lo = after;
                }
            }
        }
        if stale > 0
            && let Err(e) = self.cleanup().await
        {
            tracing::debug!(error = %e, "cleanup after a query failed; the next one retries");
        }
        Ok(out)
    }

    /// The stored bytes of the entries at `keys`, in order, with one `MGET`: nil where
    /// there is none, and where a key holds another type (see
    /// [`refuse_old_layout`](Self::refuse_old_layout)).
    pub(crate) async fn read_stored(&self, keys: Vec<String>) -> Result<Vec<Value>> {
        Ok(self
            .client
            .execute(Command::Mget { keys })
            .await
            .map_err(schema_error)?
            .into_array()?)
    }

    /// `MGET` answers nil for an expired entry and for a hash alike: when entries a query
    /// listed were nil, asks their types (one pipeline, only then), and refuses a hash as
    /// an entry of the layouts before.
    async fn refuse_old_layout(&self, missing: Vec<String>) -> Result<()> {
        if missing.is_empty() {
            return Ok(());
        }
        let mut pipe = self.client.pipeline();
        for key in &missing {
            pipe.push(Command::Type { key: key.clone() });
        }
        for reply in pipe.execute().await? {
            if reply.into_string().is_ok_and(|t| t == "hash") {
                return Err(Error::UnsupportedSchema {
                    found: codec::HASH_SCHEMA_VERSION,
                    supported: codec::SCHEMA_VERSION,
                });
            }
        }
        Ok(())
    }

    /// Live entries: the index's expiry members whose deadline has not passed.
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
    pub async fn count(&self) -> Result<u64> {
        let Some((min, max)) = index::lex_range(Index::Expiry, self.now_ms(), u64::MAX) else {
            return Ok(0);
        };
        let cmd = Command::Zlexcount {
            key: self.keys.index.clone(),
            min: lex_bound(&min),
            max: lex_bound(&max),
        };
        Ok(self.client.execute(cmd).await?.into_int()?.max(0) as u64)
    }

    /// Removes, in one `MULTI`, the entries named by `expiry_members` and all four index
    /// members of each, and tells the listeners (`kind`); returns how many members it was
    /// given.
    async fn drop_listed(&self, expiry_members: Vec<String>, kind: MemoryEventKind) -> Result<u64> {
        let listed = expiry_members.len() as u64;
        let mut keys = Vec::with_capacity(expiry_members.len());
        let mut members = Vec::with_capacity(4 * expiry_members.len());
        let mut ids = Vec::with_capacity(expiry_members.len());
        for m in expiry_members {
            match index::parse_expiry_member(m.as_bytes()) {
                Ok((fields, id)) => {
                    ids.push(id);
                    let id = id.to_string();
                    keys.push(self.keys.entry(&id));
                    members.extend(fields.members(&id));
                }
                // Not ours to read, but ours to remove: a cleanup must always progress.
                Err(_) => members.push(m),
            }
        }
        let mut tx = self.client.transaction();
        if !keys.is_empty() {
            tx.push(Command::Del { keys });
        }
        tx.push(Command::Zrem {
            key: self.keys.index.clone(),
            members,
        });
        tx.execute().await?;
        self.shared.hooks.emit(kind, &self.agent_id, &ids);
        Ok(listed)
    }

    /// Tells the listeners of memory events that `kind` happened to `ids` of this agent.
    pub(crate) fn emit(&self, kind: MemoryEventKind, ids: &[Ulid]) {
        self.shared.hooks.emit(kind, &self.agent_id, ids);
    }

    /// Removes entries whose deadline has passed, and their index members: up to the
    /// cleanup batch, oldest deadline first. Returns how many it removed.
    pub(crate) async fn cleanup(&self) -> Result<u64> {
        // Deadlines before now.
        let Some(before) = self.now_ms().checked_sub(1) else {
            return Ok(0);
        };
        let Some((lo, hi)) = index::lex_range(Index::Expiry, 0, before) else {
            return Ok(0);
        };
        let batch = self.shared.settings.cleanup_batch;
        let due = self
            .client
            .execute(self.range_page(&lo, &hi, false, batch))
            .await?
            .into_members()?;
        if due.is_empty() {
            return Ok(0);
        }
        self.drop_listed(due, MemoryEventKind::Expired).await
    }

    /// Deletes entries and their index members; returns how many existed.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be written;
    /// [`Error::Contended`](crate::Error::Contended) when the entry kept changing under it.
    ///
    /// # Cancel safety
    ///
    /// Each tier's change is one script, atomic: dropping the future leaves it applied or not,
    /// never in part.
    pub async fn delete(&self, ids: &[Ulid]) -> Result<u64> {
        let mut n = 0;
        for batch in ids.chunks(DELETE_BATCH) {
            let ids: Vec<String> = batch.iter().map(Ulid::to_string).collect();
            let mut keys = Vec::with_capacity(ids.len() + 1);
            keys.push(self.keys.index.clone());
            keys.extend(ids.iter().map(|id| self.keys.entry(id)));
            let args = ids.into_iter().map(Bytes::from).collect();
            let deleted = self
                .client
                .eval(&self.shared.scripts.delete, keys, args)
                .await
                .map_err(schema_error)?;
            n += deleted.into_int()?.max(0) as u64;
        }
        Ok(n)
    }

    /// Deletes every entry of this agent in this tier, expired or not, with their index
    /// members; returns how many entries the index listed.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be written;
    /// [`Error::Contended`](crate::Error::Contended) when the entry kept changing under it.
    ///
    /// # Cancel safety
    ///
    /// Each tier's change is one script, atomic: dropping the future leaves it applied or not,
    /// never in part.
    pub async fn clear(&self) -> Result<u64> {
        let Some((lo, hi)) = index::lex_range(Index::Expiry, 0, u64::MAX) else {
            return Ok(0);
        };
        let mut n = 0;
        loop {
            let listed = self
                .client
                .execute(self.range_page(&lo, &hi, false, DELETE_BATCH))
                .await?
                .into_members()?;
            if listed.is_empty() {
                return Ok(n);
            }
            n += self.drop_listed(listed, MemoryEventKind::Deleted).await?;
        }
    }

    /// Adds `delta` to an entry's importance, clamped to [0, 1]; the new value, or `None`
    /// when the entry is gone.
    ///
    /// Reads the entry, computes the new value, and replaces it in the entry and the index
    /// in one script only if it is still the value read; on a concurrent change, reads
    /// again (at most 16 times, then [`Error::Contended`]).
    ///
    /// # Errors
    ///
    /// [`Error::Redis`](crate::Error::Redis) when the tier cannot be written;
    /// [`Error::Contended`](crate::Error::Contended) when the entry kept changing under it.
    ///
    /// # Cancel safety
    ///
    /// Each tier's change is one script, atomic: dropping the future leaves it applied or not,
    /// never in part.
    pub async fn adjust_importance(&self, memory_id: Ulid, delta: f64) -> Result<Option<f64>> {
        if !delta.is_finite() {
            return Err(Error::InvalidInput(
                "importance delta must be finite".to_owned(),
            ));
        }
        let id = memory_id.to_string();
        let key = self.keys.entry(&id);
        for _ in 0..IMPORTANCE_ATTEMPTS {
            let Some(stored) = self.client.get(key.clone()).await.map_err(schema_error)? else {
                return Ok(None);
            };
            let Some(fields) = codec::index_fields(&stored)? else {
                return Ok(None);
            };
            let new = (fields.importance + delta).clamp(0.0, 1.0);
            let (old_key, new_key) = (
                index::importance_key(fields.importance),
                index::importance_key(new),
            );
            let args = vec![
                Bytes::from(id.clone()),
                Bytes::copy_from_slice(&index::hex(old_key)),
                Bytes::copy_from_slice(&index::hex(new_key)),
            ];
            let keys = vec![key.clone(), self.keys.index.clone()];
            let reply = self
                .client
                .eval(&self.shared.scripts.importance, keys, args)
                .await
                .map_err(schema_error)?
                .into_int()?;
            match reply {
                1 => return Ok(Some(f64::from_bits(new_key))),
                -1 => return Ok(None),
                _ => continue,
            }
        }
        Err(Error::Contended(format!(
            "importance of {id} changed {IMPORTANCE_ATTEMPTS} times while being adjusted"
        )))
    }

    /// The most recent `n` entries, newest first.
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
    pub async fn recent(&self, n: usize) -> Result<Vec<MemoryEntry>> {
        self.query(Query {
            index: Index::Timeline,
            scores: None,
            descending: true,
            limit: n,
        })
        .await
    }
}
