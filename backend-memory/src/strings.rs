//! Strings: ranges, appends, bits, counters by float, and the multi-key and TTL-changing
//! reads and writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::bitfield;
use super::errors::err;
use super::store::{Data, Entry, Keyspace, wrongtype};
use resilience_core::{BackendError, GetExpiry, Value};

/// Redis's cap on a string's length.
const MAX_STRING_BYTES: u64 = 512 * 1024 * 1024;

/// The tokio instant of a Unix time in milliseconds; `None` when it is already past.
pub(super) fn instant_of_unix_ms(unix_ms: u64, now: Instant) -> Option<Instant> {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = Duration::from_millis(unix_ms);
    at.checked_sub(wall)
        .filter(|left| !left.is_zero())
        .and_then(|left| now.checked_add(left))
}

/// `GETEX`: the value, and the TTL changed as asked.
pub(super) fn getex(
    ks: &mut Keyspace,
    key: &str,
    expiry: Option<GetExpiry>,
    now: Instant,
) -> Result<Value, BackendError> {
    let value = get(ks, key, now)?;
    if value == Value::Nil {
        return Ok(value);
    }
    match expiry {
        None => {}
        Some(GetExpiry::Persist) => {
            ks.set_deadline(key, None);
        }
        Some(GetExpiry::AfterMs(ms)) => {
            let at = now
                .checked_add(Duration::from_millis(ms))
                .ok_or_else(|| err("ERR invalid expire time in 'getex' command"))?;
            ks.set_deadline(key, Some(at));
        }
        Some(GetExpiry::AtUnixMs(ms)) => match instant_of_unix_ms(ms, now) {
            Some(at) => {
                ks.set_deadline(key, Some(at));
            }
            None => {
                ks.remove(key);
            }
        },
    }
    Ok(value)
}

/// `GETDEL`: the value, and the key gone.
pub(super) fn getdel(ks: &mut Keyspace, key: &str, now: Instant) -> Result<Value, BackendError> {
    let value = get(ks, key, now)?;
    if value != Value::Nil {
        ks.remove(key);
    }
    Ok(value)
}

/// `MSET` (`only_new`: `MSETNX`, which sets nothing when any key exists).
pub(super) fn mset(
    ks: &mut Keyspace,
    keys: Vec<String>,
    values: Vec<Bytes>,
    only_new: bool,
    now: Instant,
) -> Result<Value, BackendError> {
    if keys.len() != values.len() || keys.is_empty() {
        return Err(super::errors::wrong_args(if only_new {
            "msetnx"
        } else {
            "mset"
        }));
    }
    if only_new && keys.iter().any(|k| ks.contains(k, now)) {
        return Ok(Value::Int(0));
    }
    for (key, value) in keys.into_iter().zip(values) {
        ks.insert(key, Data::Str(value), None);
    }
    Ok(if only_new { Value::Int(1) } else { Value::Okay })
}

/// `INCRBYFLOAT`: the string read as a float, plus `delta`, stored back as text.
pub(super) fn incrbyfloat(
    ks: &mut Keyspace,
    key: String,
    delta: f64,
    now: Instant,
) -> Result<Value, BackendError> {
    let not_float = || err("ERR value is not a valid float");
    let current = match string_ref(ks, &key, now)? {
        Some(b) => std::str::from_utf8(b)
            .ok()
            .filter(|s| !s.is_empty() && s.trim() == *s)
            .and_then(resilience_core::backend::parse_redis_double)
            .filter(|v| v.is_finite())
            .ok_or_else(not_float)?,
        None => 0.0,
    };
    let new = current + delta;
    if !new.is_finite() {
        return Err(err("ERR increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(format!("{new}"));
    match ks.get_mut(&key, now) {
        Some(entry) => entry.data = Data::Str(text),
        None => ks.insert(key, Data::Str(text), None),
    }
    Ok(Value::Double(new))
}

/// `SETBIT`: the bit's old value.
pub(super) fn setbit(
    ks: &mut Keyspace,
    key: String,
    offset: u64,
    bit: i64,
    now: Instant,
) -> Result<Value, BackendError> {
    if bit != 0 && bit != 1 {
        return Err(err("ERR bit is not an integer or out of range"));
    }
    if offset >= MAX_STRING_BYTES * 8 {
        return Err(err("ERR bit offset is not an integer or out of range"));
    }
    let (byte, shift) = ((offset / 8) as usize, 7 - (offset % 8) as u32);
    let old = edit_string(ks, key, true, now, |bytes| {
        if bytes.len() <= byte {
            bytes.resize(byte + 1, 0);
        }
        let old = (bytes[byte] >> shift) & 1;
        if bit == 1 {
            bytes[byte] |= 1 << shift;
        } else {
            bytes[byte] &= !(1 << shift);
        }
        Ok(old)
    })?;
    Ok(Value::Int(i64::from(old.unwrap_or(0))))
}

/// `GETBIT`.
pub(super) fn getbit(
    ks: &mut Keyspace,
    key: &str,
    offset: u64,
    now: Instant,
) -> Result<Value, BackendError> {
    let bit = string_ref(ks, key, now)?
        .and_then(|s| s.get((offset / 8) as usize).copied())
        .map_or(0, |b| (b >> (7 - offset % 8)) & 1);
    Ok(Value::Int(i64::from(bit)))
}

/// `BITCOUNT` over the whole string or a byte range.
pub(super) fn bitcount(
    ks: &mut Keyspace,
    key: &str,
    range: Option<resilience_core::ByteRange>,
    now: Instant,
) -> Result<Value, BackendError> {
    let Some(s) = string_ref(ks, key, now)? else {
        return Ok(Value::Int(0));
    };
    let len = s.len() as i64;
    let (start, end) = match range {
        None => (0, len - 1),
        Some(r) => {
            let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i };
            (norm(r.start), norm(r.end).min(len - 1))
        }
    };
    if len == 0 || start > end {
        return Ok(Value::Int(0));
    }
    let ones: u32 = s[start as usize..=end as usize]
        .iter()
        .map(|b| b.count_ones())
        .sum();
    Ok(Value::Int(i64::from(ones)))
}

/// The string at `key`, `None` when missing, `WRONGTYPE` for another type.
pub(super) fn string_ref<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a Bytes>, BackendError> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Str(b), ..
        }) => Ok(Some(b)),
        Some(_) => Err(wrongtype()),
    }
}

pub(super) fn getrange(
    ks: &mut Keyspace,
    key: &str,
    start: i64,
    end: i64,
    now: Instant,
) -> Result<Value, BackendError> {
    let empty = Value::Bytes(Bytes::new());
    let Some(s) = string_ref(ks, key, now)? else {
        return Ok(empty);
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(empty);
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (len + end).max(0) } else { end }.min(len - 1);
    if len == 0 || start > end {
        return Ok(empty);
    }
    Ok(Value::Bytes(s.slice(start as usize..=end as usize)))
}

/// Applies `f` to the string at `key` (created empty when missing and `create`), keeping
/// its TTL; `None` when the key is missing and not created.
fn edit_string<T>(
    ks: &mut Keyspace,
    key: String,
    create: bool,
    now: Instant,
    f: impl FnOnce(&mut Vec<u8>) -> Result<T, BackendError>,
) -> Result<Option<T>, BackendError> {
    let mut bytes = match string_ref(ks, &key, now)? {
        Some(b) => b.to_vec(),
        None if create => Vec::new(),
        None => return Ok(None),
    };
    let out = f(&mut bytes)?;
    match ks.get_mut(&key, now) {
        Some(entry) => entry.data = Data::Str(Bytes::from(bytes)),
        None => ks.insert(key, Data::Str(Bytes::from(bytes)), None),
    }
    Ok(Some(out))
}

/// `APPEND`: extends the string in place when no reader shares its buffer (so a string
/// grown by many appends costs amortized O(appended bytes), not a copy per call).
pub(super) fn append(
    ks: &mut Keyspace,
    key: String,
    value: &Bytes,
    now: Instant,
) -> Result<Value, BackendError> {
    let Some(entry) = ks.get_mut(&key, now) else {
        let len = value.len() as i64;
        ks.insert(key, Data::Str(value.clone()), None);
        return Ok(Value::Int(len));
    };
    let Data::Str(s) = &mut entry.data else {
        return Err(wrongtype());
    };
    if s.len() as u64 + value.len() as u64 > MAX_STRING_BYTES {
        return Err(err(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    let mut grown = std::mem::take(s)
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(shared.as_ref()));
    grown.extend_from_slice(value);
    *s = grown.freeze();
    Ok(Value::Int(s.len() as i64))
}

pub(super) fn setrange(
    ks: &mut Keyspace,
    key: String,
    offset: u64,
    value: &Bytes,
    now: Instant,
) -> Result<Value, BackendError> {
    if offset + value.len() as u64 > MAX_STRING_BYTES {
        return Err(err(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    if value.is_empty() {
        // Nothing to write: the length as it is, and a missing key stays missing.
        return Ok(Value::Int(
            string_ref(ks, &key, now)?.map_or(0, |s| s.len() as i64),
        ));
    }
    let len = edit_string(ks, key, true, now, |bytes| {
        let at = offset as usize;
        if bytes.len() < at + value.len() {
            bytes.resize(at + value.len(), 0);
        }
        bytes[at..at + value.len()].copy_from_slice(value);
        Ok(bytes.len())
    })?;
    Ok(Value::Int(len.unwrap_or(0) as i64))
}

pub(super) fn bitfield_command(
    ks: &mut Keyspace,
    key: String,
    ops: &[Bytes],
    now: Instant,
) -> Result<Value, BackendError> {
    let create = bitfield::writes(ops)?;
    match edit_string(ks, key, create, now, |bytes| bitfield::run(bytes, ops))? {
        Some(reply) => Ok(reply),
        // Only reads of a missing key: they read zeros.
        None => bitfield::run(&mut Vec::new(), ops),
    }
}

pub(crate) fn get(ks: &mut Keyspace, key: &str, now: Instant) -> Result<Value, BackendError> {
    match ks.get(key, now) {
        None => Ok(Value::Nil),
        Some(Entry {
            data: Data::Str(b), ..
        }) => Ok(Value::Bytes(b.clone())),
        Some(Entry {
            data: Data::Hll(_), ..
        }) => Err(BackendError::new(
            resilience_core::ErrorKind::InvalidInput,
            "GET of a HyperLogLog is not implemented by the in-memory backend: it keeps the \
             elements, not Redis's encoding",
        )),
        Some(_) => Err(wrongtype()),
    }
}
