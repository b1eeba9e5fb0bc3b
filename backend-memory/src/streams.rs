//! Streams without consumer groups: `XADD` (auto and explicit ids, `NOMKSTREAM`,
//! trimming), `XRANGE`, `XREVRANGE`, `XLEN`, `XTRIM`, `XDEL` and non-blocking `XREAD`.
//!
//! `MAXLEN ~` trims exactly, which keeps what `~` promises (at least the threshold).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::time::Instant;

use super::errors::err;
use super::store::{Data, Entry, Keyspace, wrongtype};
use super::stream::{Stream, StreamId};
use resilience_core::{BackendError, Count, StreamTrim, TrimTo, Value, XaddOptions};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn format_id((ms, seq): StreamId) -> Bytes {
    Bytes::from(format!("{ms}-{seq}"))
}

/// Reads `ms-seq`, or `ms` (with `missing_seq` as the sequence).
fn parse_id(text: &str, missing_seq: u64) -> Result<StreamId, BackendError> {
    let bad = || err(INVALID_ID);
    match text.split_once('-') {
        Some((ms, seq)) => Ok((
            ms.parse().map_err(|_| bad())?,
            seq.parse().map_err(|_| bad())?,
        )),
        None => Ok((text.parse().map_err(|_| bad())?, missing_seq)),
    }
}

/// A range end: `-`, `+`, `(id` (exclusive) or `id`. `low` says which end it is.
fn range_end(text: &str, low: bool) -> Result<Option<StreamId>, BackendError> {
    match text {
        "-" => Ok(Some((0, 0))),
        "+" => Ok(Some((u64::MAX, u64::MAX))),
        _ => match text.strip_prefix('(') {
            Some(id) => {
                let id = parse_id(id, if low { 0 } else { u64::MAX })?;
                // Exclusive: step past the id; `None` when there is nothing past it.
                Ok(if low { next_id(id) } else { previous_id(id) })
            }
            None => parse_id(text, if low { 0 } else { u64::MAX }).map(Some),
        },
    }
}

fn next_id((ms, seq): StreamId) -> Option<StreamId> {
    match seq.checked_add(1) {
        Some(seq) => Some((ms, seq)),
        None => ms.checked_add(1).map(|ms| (ms, 0)),
    }
}

fn previous_id((ms, seq): StreamId) -> Option<StreamId> {
    match seq.checked_sub(1) {
        Some(seq) => Some((ms, seq)),
        None => ms.checked_sub(1).map(|ms| (ms, u64::MAX)),
    }
}

fn stream_ref<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a Stream>, BackendError> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Stream(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

fn stream_mut<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a mut Stream>, BackendError> {
    match ks.get_mut(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Stream(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

fn entry_value(id: StreamId, fields: &[(Bytes, Bytes)]) -> Value {
    Value::Array(vec![
        Value::Bytes(format_id(id)),
        Value::Array(
            fields
                .iter()
                .flat_map(|(f, v)| [Value::Bytes(f.clone()), Value::Bytes(v.clone())])
                .collect(),
        ),
    ])
}

/// Trims `stream`; returns how many entries went.
fn trim(stream: &mut Stream, trim: &StreamTrim) -> Result<usize, BackendError> {
    let before = stream.entries.len();
    match &trim.to {
        TrimTo::MaxLen(n) => {
            let keep = usize::try_from(*n).unwrap_or(usize::MAX);
            while stream.entries.len() > keep {
                stream.entries.pop_first();
            }
        }
        TrimTo::MinId(id) => {
            let min = parse_id(id, 0)?;
            stream.entries = stream.entries.split_off(&min);
        }
    }
    Ok(before - stream.entries.len())
}

/// `XADD`.
pub(super) fn add(
    ks: &mut Keyspace,
    key: String,
    options: XaddOptions,
    id: &str,
    fields: Vec<(String, Bytes)>,
    now: Instant,
) -> Result<Value, BackendError> {
    if fields.is_empty() {
        return Err(super::errors::wrong_args("xadd"));
    }
    let exists = stream_ref(ks, &key, now)?.is_some();
    if !exists {
        if options.no_mkstream {
            return Ok(Value::Nil);
        }
        ks.insert(key.clone(), Data::Stream(Stream::default()), None);
    }
    let stream = stream_mut(ks, &key, now)?.ok_or_else(wrongtype)?;
    let last = stream.last;
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let new = match id {
        "*" => {
            let ms = wall_ms.max(last.0);
            if ms == last.0 {
                next_id(last).ok_or_else(|| err("ERR The stream has exhausted the last possible ID, unable to add more items"))?
            } else {
                (ms, 0)
            }
        }
        _ => match id.strip_suffix("-*") {
            Some(ms) => {
                let ms: u64 = ms.parse().map_err(|_| err(INVALID_ID))?;
                if ms == last.0 {
                    next_id(last).ok_or_else(|| err(INVALID_ID))?
                } else {
                    (ms, 0)
                }
            }
            None => parse_id(id, 0)?,
        },
    };
    if new == (0, 0) {
        return Err(err("ERR The ID specified in XADD must be greater than 0-0"));
    }
    if new <= last {
        return Err(err(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ));
    }
    let fields = fields
        .into_iter()
        .map(|(f, v)| (Bytes::from(f), v))
        .collect();
    stream.entries.insert(new, fields);
    stream.last = new;
    if let Some(t) = &options.trim {
        trim(stream, t)?;
    }
    Ok(Value::Bytes(format_id(new)))
}

/// `XRANGE` (`rev`: `XREVRANGE`, whose caller passes the ends already swapped back).
pub(super) fn range(
    ks: &mut Keyspace,
    key: &str,
    start: &str,
    end: &str,
    count: Option<Count>,
    rev: bool,
    now: Instant,
) -> Result<Value, BackendError> {
    let (low, high) = (range_end(start, true)?, range_end(end, false)?);
    let take = count.map_or(usize::MAX, |Count(n)| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let Some(stream) = stream_ref(ks, key, now)? else {
        return Ok(Value::Array(Vec::new()));
    };
    let (Some(low), Some(high)) = (low, high) else {
        return Ok(Value::Array(Vec::new()));
    };
    if low > high {
        return Ok(Value::Array(Vec::new()));
    }
    let range = stream.entries.range(low..=high);
    let items: Vec<Value> = if rev {
        range
            .rev()
            .take(take)
            .map(|(id, f)| entry_value(*id, f))
            .collect()
    } else {
        range
            .take(take)
            .map(|(id, f)| entry_value(*id, f))
            .collect()
    };
    Ok(Value::Array(items))
}

/// `XLEN`.
pub(super) fn len(ks: &mut Keyspace, key: &str, now: Instant) -> Result<Value, BackendError> {
    Ok(Value::Int(
        stream_ref(ks, key, now)?.map_or(0, |s| s.len() as i64),
    ))
}

/// `XTRIM`.
pub(super) fn trim_command(
    ks: &mut Keyspace,
    key: &str,
    how: &StreamTrim,
    now: Instant,
) -> Result<Value, BackendError> {
    let removed = match stream_mut(ks, key, now)? {
        Some(stream) => trim(stream, how)?,
        None => 0,
    };
    Ok(Value::Int(removed as i64))
}

/// `XDEL`.
pub(super) fn delete(
    ks: &mut Keyspace,
    key: &str,
    ids: &[String],
    now: Instant,
) -> Result<Value, BackendError> {
    let ids = ids
        .iter()
        .map(|id| parse_id(id, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let removed = match stream_mut(ks, key, now)? {
        Some(stream) => ids
            .iter()
            .filter(|id| stream.entries.remove(id).is_some())
            .count(),
        None => 0,
    };
    Ok(Value::Int(removed as i64))
}

/// Non-blocking `XREAD`: entries after each id, per stream that has any.
pub(super) fn read(
    ks: &mut Keyspace,
    keys: &[String],
    ids: &[String],
    count: Option<Count>,
    now: Instant,
) -> Result<Value, BackendError> {
    if keys.len() != ids.len() {
        return Err(err(
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    let take = count.map_or(usize::MAX, |Count(n)| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let mut out = Vec::new();
    for (key, id) in keys.iter().zip(ids) {
        let Some(stream) = stream_ref(ks, key, now)? else {
            if id != "$" {
                parse_id(id, 0)?;
            }
            continue;
        };
        let after = match id.as_str() {
            "$" => continue,
            id => parse_id(id, 0)?,
        };
        let Some(from) = next_id(after) else {
            continue;
        };
        let entries: Vec<Value> = stream
            .entries
            .range(from..)
            .take(take)
            .map(|(id, f)| entry_value(*id, f))
            .collect();
        if !entries.is_empty() {
            out.push((
                Value::Bytes(Bytes::copy_from_slice(key.as_bytes())),
                Value::Array(entries),
            ));
        }
    }
    Ok(Value::Map(out))
}
