//! Lists: pushes and pops at both ends, ranges, trims, edits and moves.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

use super::errors::err;
use super::store::{Data, Entry, Keyspace, wrongtype};
use super::zset::rank_range;
use resilience_core::{BackendError, ListEnd, Value};

const NO_SUCH_KEY: &str = "ERR no such key";

/// The list at `key`, `None` when missing, `WRONGTYPE` for another type.
fn list_ref<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a VecDeque<Bytes>>, BackendError> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::List(l),
            ..
        }) => Ok(Some(l)),
        Some(_) => Err(wrongtype()),
    }
}

fn list_mut<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a mut VecDeque<Bytes>>, BackendError> {
    match ks.get_mut(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::List(l),
            ..
        }) => Ok(Some(l)),
        Some(_) => Err(wrongtype()),
    }
}

/// `LPUSH`/`RPUSH`: the length after.
pub(super) fn push(
    ks: &mut Keyspace,
    key: String,
    elements: Vec<Bytes>,
    end: ListEnd,
    now: Instant,
) -> Result<Value, BackendError> {
    if list_ref(ks, &key, now)?.is_none() {
        ks.insert(key.clone(), Data::List(VecDeque::new()), None);
    }
    let list = list_mut(ks, &key, now)?.ok_or_else(wrongtype)?;
    for element in elements {
        match end {
            ListEnd::Left => list.push_front(element),
            ListEnd::Right => list.push_back(element),
        }
    }
    Ok(Value::Int(list.len() as i64))
}

/// `LPOP`/`RPOP`: one element (or `Nil`), or with a count an array.
pub(super) fn pop(
    ks: &mut Keyspace,
    key: &str,
    count: Option<u64>,
    end: ListEnd,
    now: Instant,
) -> Result<Value, BackendError> {
    let Some(list) = list_mut(ks, key, now)? else {
        return Ok(if count.is_some() {
            Value::Array(Vec::new())
        } else {
            Value::Nil
        });
    };
    let take = count.map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut popped = Vec::new();
    while popped.len() < take {
        let next = match end {
            ListEnd::Left => list.pop_front(),
            ListEnd::Right => list.pop_back(),
        };
        match next {
            Some(e) => popped.push(Value::Bytes(e)),
            None => break,
        }
    }
    ks.remove_if_empty(key);
    Ok(match count {
        Some(_) => Value::Array(popped),
        None => popped.pop().unwrap_or(Value::Nil),
    })
}

/// `LRANGE`.
pub(super) fn range(
    ks: &mut Keyspace,
    key: &str,
    start: i64,
    stop: i64,
    now: Instant,
) -> Result<Value, BackendError> {
    let items = match list_ref(ks, key, now)? {
        Some(list) => match rank_range(start, stop, list.len()) {
            Some((from, to)) => list.range(from..=to).cloned().map(Value::Bytes).collect(),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    Ok(Value::Array(items))
}

/// `LLEN`.
pub(super) fn len(ks: &mut Keyspace, key: &str, now: Instant) -> Result<Value, BackendError> {
    Ok(Value::Int(
        list_ref(ks, key, now)?.map_or(0, |l| l.len() as i64),
    ))
}

/// `LTRIM`.
pub(super) fn trim(
    ks: &mut Keyspace,
    key: &str,
    start: i64,
    stop: i64,
    now: Instant,
) -> Result<Value, BackendError> {
    if let Some(list) = list_mut(ks, key, now)? {
        match rank_range(start, stop, list.len()) {
            Some((from, to)) => {
                list.truncate(to + 1);
                list.drain(..from);
            }
            None => list.clear(),
        }
        ks.remove_if_empty(key);
    }
    Ok(Value::Okay)
}

/// The position of `index` (negative from the end) in a list of `len`.
fn position(index: i64, len: usize) -> Option<usize> {
    let at = if index < 0 { len as i64 + index } else { index };
    usize::try_from(at).ok().filter(|at| *at < len)
}

/// `LINDEX`.
pub(super) fn index(
    ks: &mut Keyspace,
    key: &str,
    index: i64,
    now: Instant,
) -> Result<Value, BackendError> {
    Ok(list_ref(ks, key, now)?
        .and_then(|l| position(index, l.len()).and_then(|at| l.get(at)))
        .cloned()
        .map_or(Value::Nil, Value::Bytes))
}

/// `LSET`.
pub(super) fn set(
    ks: &mut Keyspace,
    key: &str,
    index: i64,
    element: Bytes,
    now: Instant,
) -> Result<Value, BackendError> {
    let list = list_mut(ks, key, now)?.ok_or_else(|| err(NO_SUCH_KEY))?;
    let at = position(index, list.len()).ok_or_else(|| err("ERR index out of range"))?;
    list[at] = element;
    Ok(Value::Okay)
}

/// `LREM`.
pub(super) fn remove(
    ks: &mut Keyspace,
    key: &str,
    count: i64,
    element: &Bytes,
    now: Instant,
) -> Result<Value, BackendError> {
    let Some(list) = list_mut(ks, key, now)? else {
        return Ok(Value::Int(0));
    };
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let mut removed = 0;
    if count >= 0 {
        let mut i = 0;
        while i < list.len() && removed < limit {
            if list[i] == element {
                list.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = list.len();
        while i > 0 && removed < limit {
            i -= 1;
            if list[i] == element {
                list.remove(i);
                removed += 1;
            }
        }
    }
    ks.remove_if_empty(key);
    Ok(Value::Int(removed as i64))
}

/// `LMOVE`: the element moved, or `Nil` when the source is empty.
pub(super) fn lmove(
    ks: &mut Keyspace,
    keys: [String; 2],
    from: ListEnd,
    to: ListEnd,
    now: Instant,
) -> Result<Value, BackendError> {
    let [source, destination] = keys;
    // Both types are checked before anything moves, as Redis does.
    if list_ref(ks, &source, now)?.is_none() {
        return Ok(Value::Nil);
    }
    list_ref(ks, &destination, now)?;
    let Value::Bytes(element) = pop(ks, &source, None, from, now)? else {
        return Ok(Value::Nil);
    };
    push(ks, destination, vec![element.clone()], to, now)?;
    Ok(Value::Bytes(element))
}
