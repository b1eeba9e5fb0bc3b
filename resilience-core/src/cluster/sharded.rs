//! [`ShardedClient`]: one [`ResilientClient`] (so one breaker) per cluster shard.

use std::sync::Arc;
use std::time::Duration;

use crate::client::ClientStats;
use crate::{Command, Error, KvBackend, ResilientClient, ResilientClientBuilder, ShutdownReport};

use super::router::ClientRouter;
use super::slot::{SLOT_COUNT, hash_slot};
use super::slot_map::{SlotMap, cluster_slots};

/// Per-shard settings applied to every shard's builder.
type Configure = Arc<dyn Fn(ResilientClientBuilder) -> ResilientClientBuilder + Send + Sync>;

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
/// # use backend_memory::InMemoryBackend;
/// # use resilience_core::{ShardedClient, SetOptions};
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
    ///
    /// # Errors
    ///
    /// None: each shard's report says how its queue ended.
    ///
    /// # Cancel safety
    ///
    /// As [`ResilientClient::shutdown`], for every shard.
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
    /// Fails with the backend's error when the cluster cannot be asked (a backend that is
    /// not a cluster answers an error), and with [`Error::InvalidInput`] when the reply is
    /// not a slot map. Slots no master serves at that moment (a shard that lost its master
    /// for good) belong to the first shard.
    ///
    /// # Errors
    ///
    /// As above, and what [`ResilientClientBuilder::build`](crate::ResilientClientBuilder::build)
    /// refuses in the shards' settings.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes builds nothing; `CLUSTER SLOTS` is a read.
    pub async fn build(self) -> Result<ShardedClient, Error> {
        let reply = self.backend.execute(cluster_slots()).await?;
        let map = SlotMap::parse(reply).map_err(|e| Error::InvalidInput(e.message().to_owned()))?;
        self.build_with_ranges(map.ranges_by_master())
    }

    /// Builds one client per shard from explicit slot ranges (each inner `Vec` is one
    /// shard's inclusive ranges). The ranges must cover every slot exactly once, else
    /// [`Error::InvalidInput`]; so must the shards' client settings be valid (see
    /// [`ResilientClientBuilder::build`]).
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
                let client = builder.health_probe(probe_for(&ranges)).build()?;
                Ok(Shard { ranges, client })
            })
            .collect::<Result<_, Error>>()?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::CircuitState;
    use crate::test_support::MapBackend;

    #[tokio::test]
    async fn shards_are_the_masters_of_a_slot_map() {
        // A backend whose `CLUSTER SLOTS` is answered from a fixed reply.
        let backend = crate::test_support::MapBackend::new();
        let reply = super::super::slot_map::tests::reply(&[
            (0, 5460, 7000),
            (10923, 16383, 7002),
            (5461, 10000, 7001),
            (10001, 10922, 7000),
        ]);
        let map = SlotMap::parse(reply).unwrap();
        let sharded = ShardedClient::builder("s", backend)
            .build_with_ranges(map.ranges_by_master())
            .unwrap();
        let ranges: Vec<Vec<(u16, u16)>> = sharded.shards().map(|(r, _)| r.to_vec()).collect();
        assert_eq!(
            ranges,
            vec![
                vec![(0, 5460), (10001, 10922)],
                vec![(5461, 10000)],
                vec![(10923, 16383)]
            ]
        );
    }

    #[test]
    fn ranges_must_cover_every_slot_once() {
        let build = |shards: Vec<Vec<(u16, u16)>>| {
            ShardedClient::builder("t", MapBackend::new()).build_with_ranges(shards)
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
        let sharded = ShardedClient::builder("s", MapBackend::new())
            .configure(|b| b.breaker(crate::CircuitBreakerConfig::default().circuit_threshold(1)))
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
