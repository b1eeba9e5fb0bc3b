//! Sets: members added, removed, tested, popped, sampled, scanned and combined.

use std::collections::BTreeSet;

use bytes::Bytes;
use rand::seq::IteratorRandom;
use tokio::time::Instant;

use super::glob::glob_match;
use super::store::{Data, Entry, Keyspace, wrongtype};
use resilience_core::{BackendError, ScanOptions, Value};

/// The set at `key`, `None` when missing, `WRONGTYPE` for another type.
fn set_ref<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a BTreeSet<Bytes>>, BackendError> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Set(s), ..
        }) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

fn set_mut<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a mut BTreeSet<Bytes>>, BackendError> {
    match ks.get_mut(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Set(s), ..
        }) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

fn members(items: impl IntoIterator<Item = Bytes>) -> Value {
    Value::Array(items.into_iter().map(Value::Bytes).collect())
}

/// `SADD`: members added.
pub(super) fn add(
    ks: &mut Keyspace,
    key: String,
    new: Vec<Bytes>,
    now: Instant,
) -> Result<Value, BackendError> {
    if set_ref(ks, &key, now)?.is_none() {
        ks.insert(key.clone(), Data::Set(BTreeSet::new()), None);
    }
    let set = set_mut(ks, &key, now)?.ok_or_else(wrongtype)?;
    let added = new.into_iter().filter(|m| set.insert(m.clone())).count();
    Ok(Value::Int(added as i64))
}

/// `SREM`: members removed.
pub(super) fn remove(
    ks: &mut Keyspace,
    key: &str,
    gone: &[Bytes],
    now: Instant,
) -> Result<Value, BackendError> {
    let removed = match set_mut(ks, key, now)? {
        Some(set) => gone.iter().filter(|m| set.remove(*m)).count(),
        None => 0,
    };
    ks.remove_if_empty(key);
    Ok(Value::Int(removed as i64))
}

/// `SMEMBERS`.
pub(super) fn all(ks: &mut Keyspace, key: &str, now: Instant) -> Result<Value, BackendError> {
    Ok(members(
        set_ref(ks, key, now)?.into_iter().flatten().cloned(),
    ))
}

/// `SISMEMBER` (one member) and `SMISMEMBER` (an array).
pub(super) fn is_member(
    ks: &mut Keyspace,
    key: &str,
    candidates: &[Bytes],
    many: bool,
    now: Instant,
) -> Result<Value, BackendError> {
    let set = set_ref(ks, key, now)?;
    let mut flags = candidates
        .iter()
        .map(|m| Value::Int(i64::from(set.is_some_and(|s| s.contains(m)))));
    Ok(if many {
        Value::Array(flags.collect())
    } else {
        flags.next().unwrap_or(Value::Int(0))
    })
}

/// `SCARD`.
pub(super) fn card(ks: &mut Keyspace, key: &str, now: Instant) -> Result<Value, BackendError> {
    Ok(Value::Int(
        set_ref(ks, key, now)?.map_or(0, |s| s.len() as i64),
    ))
}

/// `SPOP`: random members removed.
pub(super) fn pop(
    ks: &mut Keyspace,
    key: &str,
    count: Option<u64>,
    now: Instant,
) -> Result<Value, BackendError> {
    let Some(set) = set_mut(ks, key, now)? else {
        return Ok(if count.is_some() {
            Value::Array(Vec::new())
        } else {
            Value::Nil
        });
    };
    let take = count.map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let chosen: Vec<Bytes> = set.iter().cloned().choose_multiple(&mut rand::rng(), take);
    for m in &chosen {
        set.remove(m);
    }
    ks.remove_if_empty(key);
    Ok(match count {
        Some(_) => members(chosen),
        None => chosen.into_iter().next().map_or(Value::Nil, Value::Bytes),
    })
}

/// `SRANDMEMBER`: random members, distinct for a positive count, repeats allowed for a
/// negative one.
pub(super) fn random(
    ks: &mut Keyspace,
    key: &str,
    count: Option<i64>,
    now: Instant,
) -> Result<Value, BackendError> {
    let set = set_ref(ks, key, now)?;
    let mut rng = rand::rng();
    let Some(count) = count else {
        return Ok(set
            .and_then(|s| s.iter().choose(&mut rng))
            .cloned()
            .map_or(Value::Nil, Value::Bytes));
    };
    let Some(set) = set.filter(|s| !s.is_empty()) else {
        return Ok(Value::Array(Vec::new()));
    };
    let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    Ok(if count >= 0 {
        members(set.iter().cloned().choose_multiple(&mut rng, n))
    } else {
        members((0..n).filter_map(|_| set.iter().choose(&mut rng).cloned()))
    })
}

/// `SSCAN`: the whole set in one page (cursor 0), as Redis does for small sets.
pub(super) fn scan(
    ks: &mut Keyspace,
    key: &str,
    options: &ScanOptions,
    now: Instant,
) -> Result<Value, BackendError> {
    let page = set_ref(ks, key, now)?
        .into_iter()
        .flatten()
        .filter(|m| {
            options
                .pattern
                .as_deref()
                .is_none_or(|p| glob_match(p.as_bytes(), m))
        })
        .cloned();
    Ok(Value::Array(vec![Value::Int(0), members(page)]))
}

/// How `SINTER`, `SUNION` and `SDIFF` combine their sets.
#[derive(Clone, Copy, Debug)]
pub(super) enum Combine {
    /// Members in every set.
    Inter,
    /// Members in any set.
    Union,
    /// Members of the first set in no other.
    Diff,
}

/// `SINTER`, `SUNION`, `SDIFF`.
pub(super) fn combine(
    ks: &mut Keyspace,
    keys: &[String],
    how: Combine,
    now: Instant,
) -> Result<Value, BackendError> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        sets.push(set_ref(ks, key, now)?.cloned().unwrap_or_default());
    }
    let mut it = sets.into_iter();
    let first = it.next().unwrap_or_default();
    let out = it.fold(first, |acc, next| match how {
        Combine::Inter => acc.intersection(&next).cloned().collect(),
        Combine::Union => acc.union(&next).cloned().collect(),
        Combine::Diff => acc.difference(&next).cloned().collect(),
    });
    Ok(members(out))
}
