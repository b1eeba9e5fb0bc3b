//! [`ShardedClient`]: one [`ResilientClient`] (so one breaker) per cluster shard.

use std::sync::Arc;
use std::time::Duration;

use crate::client::ClientStats;
use crate::{
    Command, Error, KvBackend, ResilientClient, ResilientClientBuilder, ShutdownReport, Value,
};

use super::router::ClientRouter;
use super::slot::{SLOT_COUNT, hash_slot};

/// Per-shard settings applied to every shard's builder.
type Configure = Arc<dyn Fn(ResilientClientBuilder) -> ResilientClientBuilder + Send + Sync>;

/// Inclusive slot ranges.
type Ranges = Vec<(u16, u16)>;

/// One shard: the slots it owns and its client.
#[derive(Debug)]
struct Shard {
    ranges: Vec<(u16, u16)>,
    client: ResilientClient,
}

struct Inner {
    name: String,
    shards: Vec<Shard>,
    /// For each slot, the index of its shard in `shards`.
    slot_map: Box<[u16]>,
}

/// One [`ResilientClient`] per Redis Cluster shard, all over one cluster backend.
///
/// A shard is a set of slot ranges: those one master owned when the client was built. Its
/// identity is the slot ranges, not the node, so it survives a failover (the promoted
/// replica serves the same slots). Each shard's client has its own circuit breaker, recovery
/// queue and health probe; the probe reads a key (`EXISTS {tag}`) whose slot the shard
/// owns, so the driver sends it to that shard's current master.
///
/// Route with [`client_for_key`](Self::client_for_key) or
/// [`client_for_slot`](Self::client_for_slot), then use the client as usual. Commands of
/// one call must stay within one slot (use hash tags), as Redis Cluster requires anyway.
///
/// ```
/// # use resilience_core::{InMemoryBackend, ShardedClient, SetOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), resilience_core::Error> {
/// // Built from a live cluster with `build().await`; here from explicit ranges.
/// let sharded = ShardedClient::builder("stm", InMemoryBackend::new())
///     .build_with_ranges(vec![vec![(0, 8191)], vec![(8192, 16383)]])?;
/// let client = sharded.client_for_key(b"{agent-1}:name");
/// client.set("{agent-1}:name", "Smith", SetOptions::default()).await?;
/// assert_eq!(sharded.shard_count(), 2);
/// # Ok(()) }
/// ```
///
/// A cluster backend (redis-rs or fred in cluster mode) routes every command to the master
/// that owns its key's slot. One [`ResilientClient`](crate::ResilientClient) over it would
/// have one breaker for the whole cluster: a dead master would open it for every key.
/// [`ShardedClient`] holds one `ResilientClient` per shard instead, all over the same
/// backend, each with its own breaker, recovery queue and health probe, so keys on healthy
/// masters keep working while keys on a dead one fail fast with
/// [`Error::CircuitOpen`](crate::Error::CircuitOpen).
///
/// - [`hash_slot`]: the slot of a key (CRC16/XMODEM mod 16384, with Redis's hash-tag rule).
/// - [`ShardedClient`]: the shards, read from `CLUSTER SLOTS` when it is built, and the
///   routing `client_for_key` / `client_for_slot`.
/// - [`ClientRouter`]: "which client serves this slot", implemented by both
///   [`ResilientClient`](crate::ResilientClient) (always itself) and [`ShardedClient`], so
///   code above (the memory tiers) can take either.
#[derive(Clone)]
pub struct ShardedClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShardedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedClient")
            .field("name", &self.inner.name)
            .field("shards", &self.inner.shards)
            .finish()
    }
}

/// One shard's slot ranges and client counters.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ShardStats {
    /// The slot ranges the shard owns (inclusive).
    pub ranges: Vec<(u16, u16)>,
    /// Its client's counters and breaker state.
    pub stats: ClientStats,
}

/// Builds a [`ShardedClient`]; see [`ShardedClient::builder`].
#[must_use = "call build() or build_with_ranges()"]
pub struct ShardedClientBuilder {
    name: String,
    backend: Arc<dyn KvBackend>,
    configure: Option<Configure>,
}

impl std::fmt::Debug for ShardedClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedClientBuilder")
            .field("name", &self.name)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl ShardedClient {
    /// Starts building per-shard clients named `<name>[<first slot>-<last slot>]` over
    /// `backend`, a cluster backend.
    pub fn builder(name: impl Into<String>, backend: impl KvBackend) -> ShardedClientBuilder {
        Self::builder_arc(name, Arc::new(backend))
    }

    /// Like [`builder`](Self::builder), for a backend already behind an `Arc`.
    pub fn builder_arc(
        name: impl Into<String>,
        backend: Arc<dyn KvBackend>,
    ) -> ShardedClientBuilder {
        ShardedClientBuilder {
            name: name.into(),
            backend,
            configure: None,
        }
    }

    /// The name given to the builder.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many shards there are.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The client of the shard that owns `slot` (a slot of 16384 or more is taken modulo
    /// 16384).
    pub fn client_for_slot(&self, slot: u16) -> &ResilientClient {
        let index = self.inner.slot_map[usize::from(slot % SLOT_COUNT)];
        &self.inner.shards[usize::from(index)].client
    }

    /// The client of the shard that owns `key`'s slot.
    pub fn client_for_key(&self, key: &[u8]) -> &ResilientClient {
        self.client_for_slot(hash_slot(key))
    }

    /// Each shard's slot ranges and client, in the order of their first slot.
    pub fn shards(&self) -> impl Iterator<Item = (&[(u16, u16)], &ResilientClient)> {
        self.inner
            .shards
            .iter()
            .map(|s| (s.ranges.as_slice(), &s.client))
    }

    /// A snapshot of every shard's counters and breaker, in the order of their first slot.
    pub fn stats(&self) -> Vec<ShardStats> {
        self.inner
            .shards
            .iter()
            .map(|s| ShardStats {
                ranges: s.ranges.clone(),
                stats: s.client.stats(),
            })
            .collect()
    }

    /// Shuts every shard's client down (see [`ResilientClient::shutdown`]), all at once,
    /// each with `deadline`. Reports in shard order.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<ShutdownReport> {
        futures::future::join_all(
            self.inner
                .shards
                .iter()
                .map(|s| s.client.shutdown(deadline)),
        )
        .await
    }
}

impl ClientRouter for ShardedClient {
    fn client_for_slot(&self, slot: u16) -> &ResilientClient {
        ShardedClient::client_for_slot(self, slot)
    }

    fn clients(&self) -> Vec<ResilientClient> {
        self.inner.shards.iter().map(|s| s.client.clone()).collect()
    }
}

impl ShardedClientBuilder {
    /// Settings applied to each shard's [`ResilientClientBuilder`] (breaker threshold,
    /// retry policy, health check interval, …). The health probe is set per shard after
    /// this runs.
    pub fn configure(
        mut self,
        f: impl Fn(ResilientClientBuilder) -> ResilientClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(f));
        self
    }

    /// Reads the shards from the cluster (`CLUSTER SLOTS` through the backend: the slot
    /// ranges of each master) and builds one client per shard.
    ///
    /// Fails with the backend's error when the cluster cannot be asked, and with
    /// [`Error::InvalidInput`] when the reply is not a full slot map (a backend that is not a
    /// cluster answers an error, and a cluster with uncovered slots is refused).
    pub async fn build(self) -> Result<ShardedClient, Error> {
        let reply = self
            .backend
            .execute(Command::Raw {
                args: vec!["CLUSTER".into(), "SLOTS".into()],
                keys: Vec::new(),
                write: false,
                idempotent: true,
            })
            .await?;
        let shards = parse_cluster_slots(reply)?;
        self.build_with_ranges(shards)
    }

    /// Builds one client per shard from explicit slot ranges (each inner `Vec` is one
    /// shard's inclusive ranges). The ranges must cover every slot exactly once, else
    /// [`Error::InvalidInput`].
    pub fn build_with_ranges(self, shards: Vec<Vec<(u16, u16)>>) -> Result<ShardedClient, Error> {
        let mut shards: Vec<Vec<(u16, u16)>> = shards
            .into_iter()
            .map(|mut ranges| {
                ranges.sort_unstable();
                ranges
            })
            .collect();
        shards.sort_unstable_by_key(|ranges| ranges.first().map_or(0, |r| r.0));
        let slot_map = slot_map(&shards)?;
        let built = shards
            .into_iter()
            .map(|ranges| {
                let (first, last) = (ranges[0].0, ranges[ranges.len() - 1].1);
                let name = format!("{}[{first}-{last}]", self.name);
                let mut builder = ResilientClient::builder_arc(name, Arc::clone(&self.backend));
                if let Some(configure) = &self.configure {
                    builder = configure(builder);
                }
                let client = builder.health_probe(probe_for(&ranges)).build();
                Shard { ranges, client }
            })
            .collect();
        Ok(ShardedClient {
            inner: Arc::new(Inner {
                name: self.name,
                shards: built,
                slot_map,
            }),
        })
    }
}

/// The health probe of a shard: `EXISTS {tag}` with a tag in one of its slots, so a
/// cluster driver sends it to the shard's master.
fn probe_for(ranges: &[(u16, u16)]) -> Command {
    let owned = |slot: u16| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot));
    let tag = (0u32..10_000_000)
        .map(|n| n.to_string())
        .find(|tag| owned(hash_slot(tag.as_bytes())));
    match tag {
        Some(tag) => Command::Exists {
            keys: vec![format!("{{{tag}}}:health")],
        },
        // Unreachable for a non-empty range (every slot has a short decimal tag).
        None => Command::Ping,
    }
}

/// Slot to shard index; checks the ranges cover every slot exactly once.
fn slot_map(shards: &[Vec<(u16, u16)>]) -> Result<Box<[u16]>, Error> {
    const UNSET: u16 = u16::MAX;
    if shards.is_empty() || shards.len() > usize::from(SLOT_COUNT) {
        return Err(Error::InvalidInput(format!(
            "a cluster needs 1..=16384 shards, got {}",
            shards.len()
        )));
    }
    let mut map = vec![UNSET; usize::from(SLOT_COUNT)].into_boxed_slice();
    for (index, ranges) in shards.iter().enumerate() {
        if ranges.is_empty() {
            return Err(Error::InvalidInput(format!("shard {index} owns no slot")));
        }
        for &(lo, hi) in ranges {
            if lo > hi || hi >= SLOT_COUNT {
                return Err(Error::InvalidInput(format!(
                    "bad slot range {lo}-{hi} (slots are 0..=16383)"
                )));
            }
            for slot in lo..=hi {
                let entry = &mut map[usize::from(slot)];
                if *entry != UNSET {
                    return Err(Error::InvalidInput(format!(
                        "slot {slot} is owned by two shards"
                    )));
                }
                *entry = index as u16;
            }
        }
    }
    if let Some(slot) = map.iter().position(|&s| s == UNSET) {
        return Err(Error::InvalidInput(format!(
            "slot {slot} is not served by any shard (is the cluster fully set up?)"
        )));
    }
    Ok(map)
}

/// The shards of a `CLUSTER SLOTS` reply: the ranges grouped by master (its node id, or
/// its address when the reply has no id).
fn parse_cluster_slots(reply: Value) -> Result<Vec<Vec<(u16, u16)>>, Error> {
    let bad = |what: &str| Error::InvalidInput(format!("unexpected CLUSTER SLOTS reply: {what}"));
    // (master identity, its ranges), in the order first seen.
    let mut masters: Vec<(Vec<u8>, Ranges)> = Vec::new();
    let Value::Array(entries) = reply else {
        return Err(bad("not an array"));
    };
    for entry in entries {
        let Value::Array(fields) = entry else {
            return Err(bad("an entry is not an array"));
        };
        let mut fields = fields.into_iter();
        let lo = fields
            .next()
            .and_then(as_slot)
            .ok_or_else(|| bad("start slot"))?;
        let hi = fields
            .next()
            .and_then(as_slot)
            .ok_or_else(|| bad("end slot"))?;
        let Some(Value::Array(master)) = fields.next() else {
            return Err(bad("no master"));
        };
        let identity = match (master.first(), master.get(1), master.get(2)) {
            (_, _, Some(id)) if as_bytes(id).is_some_and(|b| !b.is_empty()) => {
                as_bytes(id).unwrap_or_default()
            }
            (Some(host), Some(port), _) => {
                let mut addr = as_bytes(host).unwrap_or_default();
                addr.extend_from_slice(format!(":{}", as_int(port).unwrap_or(0)).as_bytes());
                addr
            }
            _ => return Err(bad("master without address")),
        };
        match masters.iter_mut().find(|(id, _)| *id == identity) {
            Some((_, ranges)) => ranges.push((lo, hi)),
            None => masters.push((identity, vec![(lo, hi)])),
        }
    }
    Ok(masters.into_iter().map(|(_, ranges)| ranges).collect())
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::Status(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_slot(v: Value) -> Option<u16> {
    as_int(&v)
        .and_then(|i| u16::try_from(i).ok())
        .filter(|s| *s < SLOT_COUNT)
}

fn as_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.to_vec()),
        Value::Status(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{CircuitState, InMemoryBackend};
    use bytes::Bytes;

    fn b(s: &str) -> Value {
        Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn node(port: i64, id: &str) -> Value {
        Value::Array(vec![b("127.0.0.1"), Value::Int(port), b(id)])
    }

    #[test]
    fn cluster_slots_group_by_master() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node(7000, "a"),
                node(7003, "d"),
            ]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node(7002, "c")]),
            Value::Array(vec![Value::Int(5461), Value::Int(10000), node(7001, "b")]),
            Value::Array(vec![Value::Int(10001), Value::Int(10922), node(7000, "a")]),
        ]);
        let shards = parse_cluster_slots(reply).unwrap();
        assert_eq!(
            shards,
            vec![
                vec![(0, 5460), (10001, 10922)],
                vec![(10923, 16383)],
                vec![(5461, 10000)]
            ]
        );
        assert!(matches!(
            parse_cluster_slots(Value::Okay),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            parse_cluster_slots(Value::Array(vec![Value::Array(vec![Value::Int(0)])])),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn ranges_must_cover_every_slot_once() {
        let build = |shards: Vec<Vec<(u16, u16)>>| {
            ShardedClient::builder("t", InMemoryBackend::new()).build_with_ranges(shards)
        };
        for bad in [
            vec![],
            vec![vec![(0, 100)]],
            vec![vec![(0, 16383)], vec![(5, 5)]],
            vec![vec![(0, 16384)]],
            vec![vec![(10, 0), (0, 16383)]],
            vec![vec![(0, 16383)], vec![]],
        ] {
            assert!(
                matches!(build(bad.clone()), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
        assert!(build(vec![vec![(0, 16383)]]).is_ok());
    }

    #[tokio::test]
    async fn routes_by_slot_and_breakers_are_per_shard() {
        let sharded = ShardedClient::builder("s", InMemoryBackend::new())
            .configure(|b| b.circuit_threshold(1))
            .build_with_ranges(vec![vec![(8192, 16383)], vec![(0, 8191)]])
            .unwrap();
        assert_eq!(sharded.shard_count(), 2);
        // Sorted by first slot.
        let names: Vec<&str> = sharded.shards().map(|(_, c)| c.name()).collect();
        assert_eq!(names, vec!["s[0-8191]", "s[8192-16383]"]);
        let foo = sharded.client_for_key(b"foo"); // slot 12182
        let hello = sharded.client_for_key(b"hello"); // slot 866
        assert_eq!(foo.name(), "s[8192-16383]");
        assert_eq!(hello.name(), "s[0-8191]");
        assert_eq!(sharded.client_for_slot(8191 + 16384).name(), "s[0-8191]");
        foo.circuit_breaker().force_open();
        assert!(matches!(
            foo.get("foo").await,
            Err(Error::CircuitOpen { .. })
        ));
        assert_eq!(hello.get("hello").await.unwrap(), None);
        let stats = sharded.stats();
        assert_eq!(stats[1].stats.circuit_state, CircuitState::ForcedOpen);
        assert_eq!(stats[1].stats.rejected, 1);
        assert_eq!(stats[0].stats.circuit_state, CircuitState::Closed);
        assert_eq!(stats[0].ranges, vec![(0, 8191)]);
        assert_eq!(ClientRouter::clients(&sharded).len(), 2);
    }

    #[test]
    fn the_probe_reads_a_key_of_the_shard() {
        for ranges in [
            vec![(0u16, 0u16)],
            vec![(16383, 16383)],
            vec![(5461, 10922)],
        ] {
            let Command::Exists { keys } = probe_for(&ranges) else {
                panic!("expected EXISTS");
            };
            let slot = hash_slot(keys[0].as_bytes());
            assert!(ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot)));
        }
    }
}
