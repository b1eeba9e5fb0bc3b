//! The keyspace: typed values, TTLs and lazy plus incremental expiry.
//!
//! Every key maps to an [`Entry`]: one typed value ([`Data`]) and an optional deadline on
//! tokio's clock. An expired key is removed the moment anything looks at it (lazy expiry,
//! as Redis does), and writers call [`Keyspace::sweep`] to drop a few already-expired keys
//! from the front of a deadline index, so keys nobody reads again do not pile up forever.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;
use tokio::time::Instant;

use super::zset::SortedSet;
use resilience_core::BackendError;

/// The reply Redis gives when a command meets a key of another type.
pub(crate) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

/// A `WRONGTYPE` server error.
pub(crate) fn wrongtype() -> BackendError {
    BackendError::from_reply(WRONGTYPE)
}

/// A hash: fields remember when they were first inserted so `HGETALL` replies in
/// insertion order, as a small Redis hash (listpack) does.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hash {
    fields: HashMap<String, (u64, Bytes)>,
    next_seq: u64,
}

impl Hash {
    /// Sets `field`; returns whether it was new. An update keeps the field's position.
    pub(crate) fn set(&mut self, field: String, value: Bytes) -> bool {
        match self.fields.get_mut(&field) {
            Some(slot) => {
                slot.1 = value;
                false
            }
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.fields.insert(field, (seq, value));
                true
            }
        }
    }

    /// The value of `field`.
    pub(crate) fn get(&self, field: &str) -> Option<&Bytes> {
        self.fields.get(field).map(|(_, v)| v)
    }

    /// Removes `field`; returns whether it was there.
    pub(crate) fn remove(&mut self, field: &str) -> bool {
        self.fields.remove(field).is_some()
    }

    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// Fields and values in insertion order.
    pub(crate) fn pairs(&self) -> Vec<(&str, &Bytes)> {
        let mut all: Vec<(u64, &str, &Bytes)> = self
            .fields
            .iter()
            .map(|(f, (seq, v))| (*seq, f.as_str(), v))
            .collect();
        all.sort_unstable_by_key(|(seq, _, _)| *seq);
        all.into_iter().map(|(_, f, v)| (f, v)).collect()
    }
}

/// A typed Redis value.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    /// A string (binary).
    Str(Bytes),
    /// A hash.
    Hash(Hash),
    /// A sorted set.
    ZSet(SortedSet),
    /// A list.
    List(VecDeque<Bytes>),
    /// A set (kept sorted, so replies are deterministic).
    Set(BTreeSet<Bytes>),
    /// A stream.
    Stream(super::stream::Stream),
    /// A HyperLogLog, kept as its distinct elements (so its count is exact).
    Hll(BTreeSet<Bytes>),
}

impl Data {
    /// The name `TYPE` replies with.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Data::Str(_) => "string",
            Data::Hash(_) => "hash",
            Data::ZSet(_) => "zset",
            Data::List(_) => "list",
            Data::Set(_) => "set",
            Data::Stream(_) => "stream",
            // Redis keeps a HyperLogLog in a string.
            Data::Hll(_) => "string",
        }
    }

    fn is_empty_collection(&self) -> bool {
        match self {
            Data::Str(_) => false,
            Data::Hash(h) => h.len() == 0,
            Data::ZSet(z) => z.len() == 0,
            Data::List(l) => l.is_empty(),
            Data::Set(s) => s.is_empty(),
            // An empty stream or HyperLogLog is still a key, as in Redis.
            Data::Stream(_) | Data::Hll(_) => false,
        }
    }
}

/// A key's value and deadline.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) data: Data,
    pub(crate) expires_at: Option<Instant>,
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// All keys, with a deadline index for cheap sweeping.
#[derive(Debug, Default)]
pub(crate) struct Keyspace {
    map: HashMap<String, Entry>,
    /// `(deadline, key)` for every key with a TTL; the front is the next to expire.
    deadlines: BTreeSet<(Instant, String)>,
    /// The Pub/Sub subscribers: not data (`FLUSHALL` keeps them), but here so that
    /// `PUBLISH` reaches them from every path a command takes, scripts included.
    pub(crate) channels: super::channels::Channels,
}

impl Keyspace {
    /// Drops `key` if its deadline has passed.
    fn expire_if_due(&mut self, key: &str, now: Instant) {
        if self.map.get(key).is_some_and(|e| e.is_expired(now)) {
            self.remove(key);
        }
    }

    /// The live entry at `key`.
    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<&Entry> {
        self.expire_if_due(key, now);
        self.map.get(key)
    }

    /// The live entry at `key`, mutable.
    pub(crate) fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        self.expire_if_due(key, now);
        self.map.get_mut(key)
    }

    /// Whether `key` holds a live value.
    pub(crate) fn contains(&mut self, key: &str, now: Instant) -> bool {
        self.get(key, now).is_some()
    }

    /// Removes `key` (live or not); returns the entry that was there.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        if let Some(at) = entry.expires_at {
            self.deadlines.remove(&(at, key.to_owned()));
        }
        Some(entry)
    }

    /// Stores `data` at `key` with deadline `expires_at`, replacing whatever was there.
    pub(crate) fn insert(&mut self, key: String, data: Data, expires_at: Option<Instant>) {
        if let Some(old) = self.map.get(&key).and_then(|e| e.expires_at) {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(at) = expires_at {
            self.deadlines.insert((at, key.clone()));
        }
        self.map.insert(key, Entry { data, expires_at });
    }

    /// Changes the deadline of an existing `key`; returns whether the key exists.
    pub(crate) fn set_deadline(&mut self, key: &str, expires_at: Option<Instant>) -> bool {
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.expires_at, expires_at);
        if old == expires_at {
            return true;
        }
        if let Some(old) = old {
            self.deadlines.remove(&(old, key.to_owned()));
        }
        if let Some(at) = expires_at {
            self.deadlines.insert((at, key.to_owned()));
        }
        true
    }

    /// Deletes `key` when it holds an empty hash or sorted set, as Redis does.
    pub(crate) fn remove_if_empty(&mut self, key: &str) {
        if self
            .map
            .get(key)
            .is_some_and(|e| e.data.is_empty_collection())
        {
            self.remove(key);
        }
    }

    /// Removes up to `budget` keys whose deadline has passed; returns how many it removed.
    pub(crate) fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let due = match self.deadlines.first() {
                Some((at, _)) if *at <= now => self.deadlines.pop_first(),
                _ => None,
            };
            let Some((_, key)) = due else { break };
            self.map.remove(&key);
            removed += 1;
        }
        removed
    }

    /// Removes every expired key, then returns the number of live keys.
    pub(crate) fn live_len(&mut self, now: Instant) -> usize {
        self.sweep(now, usize::MAX);
        self.map.len()
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
    }

    /// Iterates over every stored key with its entry, expired or not.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.map.iter()
    }

    /// Whether an entry's deadline has passed at `now`.
    pub(crate) fn entry_is_live(entry: &Entry, now: Instant) -> bool {
        !entry.is_expired(now)
    }
}
