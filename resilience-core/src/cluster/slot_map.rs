//! [`SlotMap`]: which master serves each hash slot, and its replicas, read from
//! `CLUSTER SLOTS`.

use std::sync::Arc;

use crate::{BackendError, Command, ErrorKind, Value};

use super::slot::SLOT_COUNT;

/// A node's address as the cluster names it: `host:port`.
pub(crate) type Addr = Arc<str>;

/// The owner of every slot: an index into `masters`, one entry per slot; and each
/// master's replicas.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotMap {
    owner: Box<[u16]>,
    masters: Vec<Addr>,
    /// The replicas of `masters[i]`, as `CLUSTER SLOTS` lists them.
    replicas: Vec<Vec<Addr>>,
}

/// The `CLUSTER SLOTS` command (keyless, read-only).
pub(crate) fn cluster_slots() -> Command {
    Command::Raw {
        args: vec!["CLUSTER".into(), "SLOTS".into()],
        keys: Vec::new(),
        write: false,
        idempotent: true,
    }
}

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id?], replicas…], …]`.
    ///
    /// Slots no master serves (a shard that lost its master for good) are given to the
    /// first master, which answers `MOVED` or `CLUSTERDOWN` for them; a reply with no
    /// master at all is an error.
    pub(crate) fn parse(reply: Value) -> Result<SlotMap, BackendError> {
        let bad = |what: &str| {
            BackendError::new(
                ErrorKind::Server,
                format!("unexpected CLUSTER SLOTS reply: {what}"),
            )
        };
        let Value::Array(entries) = reply else {
            return Err(bad("not an array"));
        };
        const UNSET: u16 = u16::MAX;
        let mut owner = vec![UNSET; usize::from(SLOT_COUNT)].into_boxed_slice();
        let mut masters: Vec<Addr> = Vec::new();
        let mut replicas: Vec<Vec<Addr>> = Vec::new();
        for entry in entries {
            let Value::Array(fields) = entry else {
                return Err(bad("an entry is not an array"));
            };
            let (Some(lo), Some(hi)) = (
                fields.first().and_then(as_slot),
                fields.get(1).and_then(as_slot),
            ) else {
                return Err(bad("a slot range is out of 0..=16383"));
            };
            if lo > hi {
                return Err(bad("a slot range ends before it starts"));
            }
            let Some(Value::Array(node)) = fields.get(2) else {
                return Err(bad("a range without master"));
            };
            let addr = node_addr(node).ok_or_else(|| bad("a master's address"))?;
            let index = match masters.iter().position(|m| *m == addr) {
                Some(i) => i,
                None => {
                    masters.push(addr);
                    replicas.push(Vec::new());
                    masters.len() - 1
                }
            };
            for replica in fields.iter().skip(3) {
                let Value::Array(node) = replica else {
                    return Err(bad("a replica is not an array"));
                };
                let addr = node_addr(node).ok_or_else(|| bad("a replica's address"))?;
                if !replicas[index].contains(&addr) {
                    replicas[index].push(addr);
                }
            }
            let index = u16::try_from(index).map_err(|_| bad("too many masters"))?;
            owner[usize::from(lo)..=usize::from(hi)].fill(index);
        }
        if masters.is_empty() {
            return Err(bad("no master serves any slot"));
        }
        for slot in owner.iter_mut().filter(|s| **s == UNSET) {
            *slot = 0;
        }
        Ok(SlotMap {
            owner,
            masters,
            replicas,
        })
    }

    /// The index in [`masters`](Self::masters) of the master serving `slot` (taken
    /// modulo 16384).
    #[inline]
    pub(crate) fn owner_index(&self, slot: u16) -> usize {
        usize::from(self.owner[usize::from(slot % SLOT_COUNT)])
    }

    /// The master serving `slot` (taken modulo 16384).
    pub(crate) fn owner(&self, slot: u16) -> &Addr {
        &self.masters[self.owner_index(slot)]
    }

    /// Every master, in the order `CLUSTER SLOTS` first named them.
    pub(crate) fn masters(&self) -> &[Addr] {
        &self.masters
    }

    /// The replicas of `masters()[index]`; none for an index out of range.
    pub(crate) fn replicas_of(&self, index: usize) -> &[Addr] {
        self.replicas.get(index).map_or(&[], Vec::as_slice)
    }

    /// Every node the map names: masters, then replicas.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &Addr> {
        self.masters.iter().chain(self.replicas.iter().flatten())
    }

    /// This map with `slot` served by `addr` (what a `MOVED` says).
    pub(crate) fn with_owner(&self, slot: u16, addr: &Addr) -> SlotMap {
        let mut next = self.clone();
        let index = match next.masters.iter().position(|m| m == addr) {
            Some(i) => i,
            None => {
                next.masters.push(Arc::clone(addr));
                next.replicas.push(Vec::new());
                next.masters.len() - 1
            }
        };
        if let (Some(entry), Ok(index)) = (
            next.owner.get_mut(usize::from(slot % SLOT_COUNT)),
            u16::try_from(index),
        ) {
            *entry = index;
        }
        next
    }

    /// Each master's slots as inclusive ranges, masters in the order of their first slot.
    pub(crate) fn ranges_by_master(&self) -> Vec<Vec<(u16, u16)>> {
        let mut ranges: Vec<Vec<(u16, u16)>> = vec![Vec::new(); self.masters.len()];
        let mut start = 0u16;
        for slot in 1..=SLOT_COUNT {
            let current = self.owner[usize::from(start)];
            if slot == SLOT_COUNT || self.owner[usize::from(slot)] != current {
                ranges[usize::from(current)].push((start, slot - 1));
                start = slot;
            }
        }
        ranges.retain(|r| !r.is_empty());
        ranges.sort_unstable_by_key(|r| r[0].0);
        ranges
    }
}

/// `host:port` of a `[host, port, id?, …]` node entry.
fn node_addr(node: &[Value]) -> Option<Addr> {
    let host = node.first().and_then(as_text)?;
    let port = node
        .get(1)
        .and_then(as_int)
        .and_then(|p| u16::try_from(p).ok())?;
    Some(Arc::from(format!("{host}:{port}")))
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::Status(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_slot(v: &Value) -> Option<u16> {
    as_int(v)
        .and_then(|i| u16::try_from(i).ok())
        .filter(|s| *s < SLOT_COUNT)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Status(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;

    fn node(port: i64, id: &str) -> Value {
        Value::Array(vec![
            Value::Bytes(Bytes::from_static(b"127.0.0.1")),
            Value::Int(port),
            Value::Bytes(Bytes::copy_from_slice(id.as_bytes())),
        ])
    }

    /// A `CLUSTER SLOTS` reply: each `(start, end, master port)` with one replica.
    pub(crate) fn reply(ranges: &[(i64, i64, i64)]) -> Value {
        Value::Array(
            ranges
                .iter()
                .map(|&(lo, hi, port)| {
                    Value::Array(vec![
                        Value::Int(lo),
                        Value::Int(hi),
                        node(port, &format!("id{port}")),
                        node(port + 100, "replica"),
                    ])
                })
                .collect(),
        )
    }

    #[test]
    fn masters_own_their_ranges() {
        let map = SlotMap::parse(reply(&[
            (0, 5460, 7000),
            (10923, 16383, 7002),
            (5461, 10000, 7001),
            (10001, 10922, 7000),
        ]))
        .unwrap();
        assert_eq!(map.masters().len(), 3);
        assert_eq!(&**map.owner(0), "127.0.0.1:7000");
        assert_eq!(map.replicas_of(0), [Arc::from("127.0.0.1:7100")]);
        assert_eq!(map.replicas_of(1), [Arc::from("127.0.0.1:7102")]);
        assert!(map.replicas_of(3).is_empty());
        assert_eq!(map.nodes().count(), 6);
        assert_eq!(&**map.owner(10922), "127.0.0.1:7000");
        assert_eq!(&**map.owner(12182), "127.0.0.1:7002");
        assert_eq!(&**map.owner(5461 + 16384), "127.0.0.1:7001");
        assert_eq!(
            map.ranges_by_master(),
            vec![
                vec![(0, 5460), (10001, 10922)],
                vec![(5461, 10000)],
                vec![(10923, 16383)]
            ]
        );
    }

    #[test]
    fn uncovered_slots_go_to_the_first_master_and_bad_replies_are_errors() {
        let map = SlotMap::parse(reply(&[(100, 200, 7001)])).unwrap();
        assert_eq!(&**map.owner(0), "127.0.0.1:7001");
        for bad in [
            Value::Okay,
            Value::Array(vec![]),
            Value::Array(vec![Value::Array(vec![Value::Int(0)])]),
            reply(&[(0, 16384, 7000)]),
            reply(&[(10, 0, 7000)]),
            reply(&[(0, 1, 70000)]),
        ] {
            assert_eq!(SlotMap::parse(bad).unwrap_err().kind(), ErrorKind::Server);
        }
    }

    #[test]
    fn a_moved_slot_changes_one_entry() {
        let map = SlotMap::parse(reply(&[(0, 8191, 7000), (8192, 16383, 7001)])).unwrap();
        let new: Addr = Arc::from("127.0.0.1:7005");
        let moved = map.with_owner(12182, &new);
        assert_eq!(moved.owner(12182), &new);
        assert_eq!(&**moved.owner(12181), "127.0.0.1:7001");
        assert_eq!(moved.masters().len(), 3);
        let back = moved.with_owner(12182, &Arc::from("127.0.0.1:7001"));
        assert_eq!(back.masters().len(), 3);
        assert_eq!(&**back.owner(12182), "127.0.0.1:7001");
    }
}
