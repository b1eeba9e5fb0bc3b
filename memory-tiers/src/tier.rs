//! One tier of one agent: the scripts' calls and the decoding of their replies.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use resilience_core::{ClientRouter, Command, Priority, ResilientClient, StoreOutcome, Value};
use ulid::Ulid;

use crate::clock::Clock;
use crate::codec::{self, Encoding};
use crate::config::{CompressionLevel, ImConfig, StmConfig};
use crate::entry::{MemoryEntry, Tier};
use crate::error::{Error, Result};
use crate::keys::{AgentKeys, Index};
use crate::scripts::ScriptSet;
use crate::sort_read::{self, RankQuery, SortReads};

/// The most entries one query returns from one tier; larger limits are lowered to it.
pub const MAX_QUERY_LIMIT: usize = 100_000;

/// Settings of a tier, whichever it is.
#[derive(Clone, Debug)]
pub(crate) struct TierSettings {
    pub(crate) tier: Tier,
    pub(crate) ttl: Duration,
    pub(crate) level: CompressionLevel,
    pub(crate) transient: Vec<String>,
    pub(crate) max_value_bytes: usize,
    pub(crate) cleanup_batch: usize,
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
    pub(crate) clock: Clock,
    pub(crate) namespace: String,
    /// Whether rank queries may still use `SORT_RO` ([`sort_read`]).
    pub(crate) sort_reads: SortReads,
}

/// A bounded index query.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query {
    pub(crate) index: Index,
    /// `None`: by rank; `Some((min, max))`: by score, inclusive.
    pub(crate) scores: Option<(f64, f64)>,
    pub(crate) descending: bool,
    pub(crate) limit: usize,
}

fn score_arg(x: f64) -> String {
    if x == f64::INFINITY {
        "+inf".to_owned()
    } else if x == f64::NEG_INFINITY {
        "-inf".to_owned()
    } else {
        format!("{x}")
    }
}

/// One agent's view of one tier.
#[derive(Clone, Debug)]
pub struct TierHandle {
    pub(crate) shared: Arc<TierShared>,
    pub(crate) keys: AgentKeys,
    /// The client of this agent's slot (all its keys share one hash tag).
    client: ResilientClient,
}

impl TierHandle {
    pub(crate) fn new(shared: Arc<TierShared>, agent_id: &str) -> Self {
        let keys = AgentKeys::new(&shared.namespace, shared.settings.tier.as_str(), agent_id);
        let client = shared
            .router
            .client_for_key(keys.timeline.as_bytes())
            .clone();
        TierHandle {
            shared,
            keys,
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

    fn base_args(&self, now_ms: u64) -> Vec<Bytes> {
        vec![
            Bytes::from(self.keys.entry_prefix.clone()),
            Bytes::from(now_ms.to_string()),
            Bytes::from(self.shared.settings.cleanup_batch.to_string()),
        ]
    }

    /// The `EVALSHA` that writes `entry` to this tier (encoded and compressed for it).
    pub(crate) fn write_command(
        &self,
        entry: &MemoryEntry,
        with_counters: bool,
    ) -> Result<Command> {
        let s = &self.shared.settings;
        let (fields, importance) = codec::encode(
            entry,
            Encoding {
                tier: s.tier,
                level: s.level,
                transient: &s.transient,
                max_value_bytes: s.max_value_bytes,
                with_counters,
            },
        )?;
        let ttl_ms = (s.ttl.as_millis() as u64).max(1);
        let mut args = self.base_args(self.shared.clock.now_ms());
        args.push(Bytes::from(ttl_ms.to_string()));
        args.push(Bytes::from(entry.timestamp.to_string()));
        args.push(Bytes::from(entry.step_number.to_string()));
        args.push(Bytes::from(codec::importance_arg(importance)));
        args.push(Bytes::from(entry.memory_id.to_string()));
        for (f, v) in fields {
            args.push(Bytes::from(f));
            args.push(v);
        }
        Ok(self.shared.scripts.write.command(self.keys.indexes(), args))
    }

    /// Writes `entry` through the client's prioritized path. Also returns the tier's size
    /// after the write when it was stored right away (the script's reply), so the caller
    /// needs no second round trip to check capacity.
    pub(crate) async fn submit(
        &self,
        entry: &MemoryEntry,
        priority: Priority,
    ) -> Result<(StoreOutcome, Option<u64>)> {
        let cmd = self.write_command(entry, false)?;
        let submitted = self.client.submit_with_reply(vec![cmd], priority).await;
        let size = submitted
            .reply
            .and_then(|v| v.into_int().ok())
            .map(|n| n.max(0) as u64);
        Ok((submitted.outcome, size))
    }

    /// Writes `entry` now, once, without queueing; returns the tier's size afterwards.
    pub(crate) async fn write_now(&self, entry: &MemoryEntry, with_counters: bool) -> Result<u64> {
        let cmd = self.write_command(entry, with_counters)?;
        let v = self.client.execute(cmd).await?;
        Ok(v.into_int()?.max(0) as u64)
    }

    async fn run(&self, script: &resilience_core::Script, args: Vec<Bytes>) -> Result<Value> {
        Ok(self.client.eval(script, self.keys.indexes(), args).await?)
    }

    /// Reads one entry; `bump` counts it as a retrieval (`retrieval_count` + 1, last access
    /// now), atomically and without touching its TTL.
    pub async fn get(&self, memory_id: Ulid, bump: bool) -> Result<Option<MemoryEntry>> {
        let mut args = self.base_args(self.shared.clock.now_ms());
        args.push(Bytes::from(memory_id.to_string()));
        args.push(Bytes::from_static(if bump { b"1" } else { b"0" }));
        match self.run(&self.shared.scripts.get, args).await? {
            Value::Nil => Ok(None),
            fields => self.decode(memory_id, fields).map(Some),
        }
    }

    fn decode(&self, id: Ulid, fields: Value) -> Result<MemoryEntry> {
        let pairs = fields
            .into_pairs()
            .map_err(|e| Error::Corrupt(format!("entry reply: {e}")))?;
        codec::decode(id, &pairs, self.shared.settings.max_value_bytes)
    }

    /// Decodes a query's entry: the values of [`QUERY_FIELDS`] in order, nil when absent.
    ///
    /// [`QUERY_FIELDS`]: crate::scripts::QUERY_FIELDS
    fn decode_positional(&self, id: Ulid, values: Value) -> Result<MemoryEntry> {
        let values = values
            .into_array()
            .map_err(|e| Error::Corrupt(format!("entry reply: {e}")))?;
        let mut pairs = Vec::with_capacity(values.len());
        for (name, value) in crate::scripts::QUERY_FIELDS.iter().zip(values) {
            if let Some(v) = value
                .into_opt_bytes()
                .map_err(|e| Error::Corrupt(format!("entry reply: {e}")))?
            {
                pairs.push((*name, v));
            }
        }
        codec::decode(id, &pairs, self.shared.settings.max_value_bytes)
    }

    /// Runs a bounded query; entries in index order.
    pub(crate) async fn query(&self, q: Query) -> Result<Vec<MemoryEntry>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let limit = q.limit.min(MAX_QUERY_LIMIT);
        let now_ms = self.shared.clock.now_ms();
        if q.scores.is_none() {
            let rank = RankQuery {
                index_key: self.keys.index(q.index),
                expiry_key: &self.keys.expiry,
                entry_prefix: &self.keys.entry_prefix,
                descending: q.descending,
                limit,
                now_ms,
            };
            if let Some(rows) =
                sort_read::rank_query(&self.client, &self.shared.sort_reads, rank).await?
            {
                return rows
                    .into_iter()
                    .map(|(id, fields)| self.decode_row(id, Value::Array(fields)))
                    .collect();
            }
        }
        let mut args = self.base_args(now_ms);
        let (mode, min, max) = match q.scores {
            None => ("rank", "0".to_owned(), "0".to_owned()),
            Some((min, max)) => ("score", score_arg(min), score_arg(max)),
        };
        args.push(Bytes::from((q.index as u8).to_string()));
        args.push(Bytes::from_static(mode.as_bytes()));
        args.push(Bytes::from(min));
        args.push(Bytes::from(max));
        args.push(Bytes::from_static(if q.descending { b"1" } else { b"0" }));
        args.push(Bytes::from_static(b"0"));
        args.push(Bytes::from(limit.to_string()));
        let items = self
            .run(&self.shared.scripts.query, args)
            .await?
            .into_array()?;
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(id), Some(fields)) = (it.next(), it.next()) {
            out.push(self.decode_row(id, fields)?);
        }
        Ok(out)
    }

    /// Decodes one entry of a query: its id (an index member) and its positional fields.
    fn decode_row(&self, id: Value, fields: Value) -> Result<MemoryEntry> {
        let id = id.into_string()?;
        let id = Ulid::from_string(&id)
            .map_err(|_| Error::Corrupt(format!("index member {id:?} is not a ULID")))?;
        self.decode_positional(id, fields)
    }

    /// Live entries: removes index members whose entry expired (up to the cleanup batch per
    /// call, oldest deadline first), then counts the timeline.
    pub async fn count(&self) -> Result<u64> {
        let args = self.base_args(self.shared.clock.now_ms());
        Ok(self
            .run(&self.shared.scripts.count, args)
            .await?
            .into_int()?
            .max(0) as u64)
    }

    /// Deletes entries and their index members; returns how many existed.
    pub async fn delete(&self, ids: &[Ulid]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args = self.base_args(self.shared.clock.now_ms());
        args.extend(ids.iter().map(|id| Bytes::from(id.to_string())));
        Ok(self
            .run(&self.shared.scripts.delete, args)
            .await?
            .into_int()?
            .max(0) as u64)
    }

    /// Deletes every entry of this agent in this tier; returns how many ids were listed.
    pub async fn clear(&self) -> Result<u64> {
        let args = self.base_args(self.shared.clock.now_ms());
        Ok(self
            .run(&self.shared.scripts.clear, args)
            .await?
            .into_int()?
            .max(0) as u64)
    }

    /// Adds `delta` to an entry's importance, clamped to [0, 1]; the new value, or `None`
    /// when the entry is gone.
    pub async fn adjust_importance(&self, memory_id: Ulid, delta: f64) -> Result<Option<f64>> {
        if !delta.is_finite() {
            return Err(Error::InvalidInput(
                "importance delta must be finite".to_owned(),
            ));
        }
        let mut args = self.base_args(self.shared.clock.now_ms());
        args.push(Bytes::from(memory_id.to_string()));
        args.push(Bytes::from(format!("{delta}")));
        let v = self.run(&self.shared.scripts.importance, args).await?;
        match v.into_opt_bytes()? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .map(|x| Some(x.clamp(0.0, 1.0)))
                .ok_or_else(|| Error::Corrupt("importance reply is not a number".to_owned())),
        }
    }

    /// The most recent `n` entries, newest first.
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
