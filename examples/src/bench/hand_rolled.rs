//! The baseline of scenario `tiers`: the same memories, written and read with the raw
//! driver by the simplest correct code a user would write without `memory-tiers`.
//!
//! - **store:** one `MULTI`: `SET <entry> <JSON of the MemoryEntry> PX <ttl>`, `ZADD` of the
//!   memory id to a timeline (by timestamp), a step index and an importance index, `EXEC`.
//! - **recent(n):** `ZREVRANGE timeline 0 n-1`, then `MGET` of those entries, each decoded
//!   back into a [`MemoryEntry`] (so the client's decoding is counted, as it is for the tiers).
//! - **a read by id:** one plain `GET` of the tiers' own entry: the yardstick a read that
//!   also counts itself is held to.
//!
//! All keys of one agent share the hash tag `{<agent>}`. The baseline keeps no expiry index,
//! no counters, no schema version and no TTL on its indexes: it is what the tiers are
//! measured against, not a replacement for them.
//!
//! With redis-rs it sends on a `ConnectionManager` set up as the raw `setget` target's
//! ([`super::targets::RawRedisRs`]); with fred, on the very client the `FredBackend` uses.

use std::future::Future;

use memory_tiers::MemoryEntry;

use super::load::OpError;

/// The keys of one agent in the baseline.
#[derive(Clone, Debug)]
pub struct HandKeys {
    /// Prefix of an entry's key: the memory id follows.
    pub entry_prefix: String,
    /// Memory ids by timestamp.
    pub timeline: String,
    /// Memory ids by step.
    pub steps: String,
    /// Memory ids by importance.
    pub importance: String,
}

impl HandKeys {
    /// The keys of `agent` under `namespace`.
    pub fn new(namespace: &str, agent: &str) -> Self {
        let base = format!("{namespace}:hand:{{{agent}}}:");
        HandKeys {
            entry_prefix: format!("{base}m:"),
            timeline: format!("{base}t"),
            steps: format!("{base}s"),
            importance: format!("{base}i"),
        }
    }

    /// The key of one entry.
    pub fn entry(&self, memory_id: &str) -> String {
        format!("{}{memory_id}", self.entry_prefix)
    }

    /// Every key of the agent: the entries of `ids`, then the three indexes.
    pub fn all_with(&self, ids: &[String]) -> Vec<String> {
        let mut keys: Vec<String> = ids.iter().map(|id| self.entry(id)).collect();
        keys.extend([
            self.timeline.clone(),
            self.steps.clone(),
            self.importance.clone(),
        ]);
        keys
    }

    /// Each index with `entry`'s score in it: timestamp, step, importance.
    pub fn scored<'a>(&'a self, entry: &MemoryEntry) -> [(&'a str, f64); 3] {
        [
            (&self.timeline, entry.timestamp as f64),
            (&self.steps, entry.step_number as f64),
            (&self.importance, entry.metadata.importance_score),
        ]
    }
}

/// A raw driver writing and reading memories by hand.
pub trait HandRolled: Clone + Send + Sync + 'static {
    /// Stores `entry` (as JSON, with a TTL of `ttl_ms`) and its three index members in one
    /// `MULTI`/`EXEC`.
    fn store(
        &self,
        keys: &HandKeys,
        entry: &MemoryEntry,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<(), OpError>> + Send;

    /// The `n` most recent entries, newest first: `ZREVRANGE`, then `MGET`, decoded.
    fn recent(
        &self,
        keys: &HandKeys,
        n: usize,
    ) -> impl Future<Output = Result<Vec<MemoryEntry>, OpError>> + Send;

    /// One plain `GET key`; whether the key was there.
    fn get(&self, key: &str) -> impl Future<Output = Result<bool, OpError>> + Send;

    /// Deletes the agent's entries and indexes.
    fn clear(&self, keys: &HandKeys) -> impl Future<Output = Result<(), OpError>> + Send;
}

/// The entry's JSON, as the baseline stores it.
pub fn encode(entry: &MemoryEntry) -> Result<Vec<u8>, OpError> {
    serde_json::to_vec(entry).map_err(|e| OpError(format!("encode: {e}")))
}

/// Decodes the entries an `MGET` returned; a missing one is an error (the bench never
/// lets an entry expire).
pub fn decode_all<B: AsRef<[u8]>>(blobs: Vec<Option<B>>) -> Result<Vec<MemoryEntry>, OpError> {
    blobs
        .into_iter()
        .map(|blob| {
            let blob = blob.ok_or_else(|| OpError("MGET: an entry is missing".to_owned()))?;
            serde_json::from_slice(blob.as_ref()).map_err(|e| OpError(format!("decode: {e}")))
        })
        .collect()
}

#[cfg(feature = "redis-rs")]
mod redis_rs {
    use memory_tiers::MemoryEntry;

    use super::{HandKeys, HandRolled, OpError, decode_all, encode};
    use crate::bench::targets::RawRedisRs;

    fn err(what: &str) -> impl Fn(redis::RedisError) -> OpError + '_ {
        move |e| OpError(format!("{what}: {e}"))
    }

    impl HandRolled for RawRedisRs {
        async fn store(
            &self,
            keys: &HandKeys,
            entry: &MemoryEntry,
            ttl_ms: u64,
        ) -> Result<(), OpError> {
            let id = entry.memory_id.to_string();
            let blob = encode(entry)?;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("SET")
                .arg(keys.entry(&id))
                .arg(blob)
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
            for (index, score) in keys.scored(entry) {
                pipe.cmd("ZADD").arg(index).arg(score).arg(&id).ignore();
            }
            let mut conn = self.manager();
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(err("store"))
        }

        async fn recent(&self, keys: &HandKeys, n: usize) -> Result<Vec<MemoryEntry>, OpError> {
            if n == 0 {
                return Ok(Vec::new());
            }
            let mut conn = self.manager();
            let ids: Vec<String> = redis::cmd("ZREVRANGE")
                .arg(&keys.timeline)
                .arg(0)
                .arg(n - 1)
                .query_async(&mut conn)
                .await
                .map_err(err("ZREVRANGE"))?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let entry_keys: Vec<String> = ids.iter().map(|id| keys.entry(id)).collect();
            let blobs: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(entry_keys)
                .query_async(&mut conn)
                .await
                .map_err(err("MGET"))?;
            decode_all(blobs)
        }

        async fn get(&self, key: &str) -> Result<bool, OpError> {
            let mut conn = self.manager();
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(err("GET"))?;
            Ok(value.is_some())
        }

        async fn clear(&self, keys: &HandKeys) -> Result<(), OpError> {
            let mut conn = self.manager();
            let ids: Vec<String> = redis::cmd("ZRANGE")
                .arg(&keys.timeline)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(err("ZRANGE"))?;
            let doomed = keys.all_with(&ids);
            for chunk in doomed.chunks(1024) {
                redis::cmd("DEL")
                    .arg(chunk)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(err("DEL"))?;
            }
            Ok(())
        }
    }
}

#[cfg(feature = "fred")]
pub use fred_hand::FredHand;

#[cfg(feature = "fred")]
mod fred_hand {
    use bytes::Bytes;
    use fred::interfaces::TransactionInterface;
    use fred::prelude::{Client, Expiration, KeysInterface, SortedSetsInterface};
    use memory_tiers::MemoryEntry;

    use super::{HandKeys, HandRolled, OpError, decode_all, encode};

    /// The fred client the `FredBackend` sends on, used by hand.
    #[derive(Clone)]
    pub struct FredHand(pub Client);

    impl std::fmt::Debug for FredHand {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FredHand").finish_non_exhaustive()
        }
    }

    fn err(what: &str) -> impl Fn(fred::error::Error) -> OpError + '_ {
        move |e| OpError(format!("{what}: {e}"))
    }

    impl HandRolled for FredHand {
        async fn store(
            &self,
            keys: &HandKeys,
            entry: &MemoryEntry,
            ttl_ms: u64,
        ) -> Result<(), OpError> {
            let id = entry.memory_id.to_string();
            let blob = Bytes::from(encode(entry)?);
            let trx = self.0.multi();
            let queued = async {
                trx.set::<(), _, _>(
                    keys.entry(&id),
                    blob,
                    Some(Expiration::PX(ttl_ms as i64)),
                    None,
                    false,
                )
                .await?;
                for (index, score) in keys.scored(entry) {
                    trx.zadd::<(), _, _>(index, None, None, false, false, (score, id.as_str()))
                        .await?;
                }
                Ok::<(), fred::error::Error>(())
            };
            queued.await.map_err(err("queue"))?;
            trx.exec::<()>(true).await.map_err(err("EXEC"))
        }

        async fn recent(&self, keys: &HandKeys, n: usize) -> Result<Vec<MemoryEntry>, OpError> {
            if n == 0 {
                return Ok(Vec::new());
            }
            let ids: Vec<String> = self
                .0
                .zrevrange(keys.timeline.as_str(), 0, n as i64 - 1, false)
                .await
                .map_err(err("ZREVRANGE"))?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let entry_keys: Vec<String> = ids.iter().map(|id| keys.entry(id)).collect();
            let blobs: Vec<Option<Bytes>> = self.0.mget(entry_keys).await.map_err(err("MGET"))?;
            decode_all(blobs)
        }

        async fn get(&self, key: &str) -> Result<bool, OpError> {
            let value: Option<Bytes> = self.0.get(key).await.map_err(err("GET"))?;
            Ok(value.is_some())
        }

        async fn clear(&self, keys: &HandKeys) -> Result<(), OpError> {
            let ids: Vec<String> = self
                .0
                .zrange(keys.timeline.as_str(), 0, -1, None, false, None, false)
                .await
                .map_err(err("ZRANGE"))?;
            let doomed = keys.all_with(&ids);
            for chunk in doomed.chunks(1024) {
                self.0
                    .del::<(), _>(chunk.to_vec())
                    .await
                    .map_err(err("DEL"))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_an_agent_shares_its_hash_tag() {
        let k = HandKeys::new("bench", "agent-1");
        for key in [&k.timeline, &k.steps, &k.importance, &k.entry("X")] {
            assert!(key.starts_with("bench:hand:{agent-1}:"), "{key}");
        }
    }

    #[test]
    fn a_missing_entry_is_an_error() {
        let err = decode_all::<Vec<u8>>(vec![None]).unwrap_err();
        assert!(err.0.contains("missing"), "{}", err.0);
    }
}
