//! Commands without a [`Command`] variant, sent as [`Command::Raw`]: the check Redis makes
//! when queueing them inside `MULTI` (name and arity), the keys each touches, and what
//! each does.
//!
//! Supported: `PING`, `ECHO`, `FLUSHDB`, `FLUSHALL`, `DBSIZE`, `TYPE`, `INCR`, `DECR`,
//! `INCRBY`, `DECRBY`, `GET`, `DEL`, `EXISTS`, `PERSIST`, `HLEN`, `HMGET`, `GETRANGE`,
//! `SETRANGE`, `BITFIELD`, `EXPIRE` and `PEXPIRE` with `NX`/`XX`/`GT`/`LT`, `ZRANGEBYLEX`,
//! `ZREVRANGEBYLEX` and `ZLEXCOUNT`. Anything else is Redis's `ERR unknown command`.

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::bitfield;
use super::exec::{
    ExpireIf, NOT_INTEGER, apply, err, expire, get, hash_ref, incrby, parse_strict_i64, wrong_args,
    zset_ref,
};
use super::store::{Data, Entry, Keyspace, wrongtype};
use super::zset::LexBound;
use crate::{BackendError, Command, Value};

/// Redis's cap on a string's length.
const MAX_STRING_BYTES: u64 = 512 * 1024 * 1024;

fn arg_str(arg: &Bytes) -> Result<String, BackendError> {
    String::from_utf8(arg.to_vec()).map_err(|_| {
        BackendError::new(
            crate::ErrorKind::InvalidInput,
            "the in-memory backend takes UTF-8 keys only",
        )
    })
}

/// Checks a raw command's name and arity the way Redis does before queueing it in `MULTI`.
/// Returns the error Redis would reply at queue time.
pub(crate) fn check_raw(args: &[Bytes]) -> Result<(), BackendError> {
    let Some(name) = args.first() else {
        return Err(err("ERR unknown command '', with args beginning with: "));
    };
    let upper = name.to_ascii_uppercase();
    let n = args.len();
    let ok = match upper.as_slice() {
        b"PING" => (1..=2).contains(&n),
        b"ECHO" | b"TYPE" | b"INCR" | b"DECR" | b"GET" | b"PERSIST" | b"HLEN" | b"STRLEN" => n == 2,
        b"FLUSHDB" | b"FLUSHALL" => (1..=2).contains(&n),
        b"DBSIZE" => n == 1,
        b"INCRBY" | b"DECRBY" => n == 3,
        b"DEL" | b"EXISTS" | b"BITFIELD" => n >= 2,
        b"HMGET" | b"EXPIRE" | b"PEXPIRE" => n >= 3,
        b"APPEND" => n == 3,
        b"GETRANGE" | b"SETRANGE" | b"ZLEXCOUNT" => n == 4,
        b"ZRANGEBYLEX" | b"ZREVRANGEBYLEX" => n >= 4,
        _ => {
            let mut line = format!(
                "ERR unknown command '{}', with args beginning with: ",
                String::from_utf8_lossy(name)
            );
            for arg in args.iter().skip(1) {
                line.push_str(&format!("'{}' ", String::from_utf8_lossy(arg)));
            }
            return Err(err(&line));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(wrong_args(&String::from_utf8_lossy(name)))
    }
}

/// The keys a raw command touches, by its name (none for an unknown one).
#[cfg(feature = "lua")]
pub(crate) fn raw_keys(args: &[Bytes]) -> &[Bytes] {
    let Some(name) = args.first() else {
        return &[];
    };
    match name.to_ascii_uppercase().as_slice() {
        b"PING" | b"ECHO" | b"FLUSHDB" | b"FLUSHALL" | b"DBSIZE" => &[],
        b"DEL" | b"EXISTS" => &args[1..],
        _ if check_raw(args).is_ok() => &args[1..2],
        _ => &[],
    }
}

pub(super) fn raw(ks: &mut Keyspace, args: &[Bytes], now: Instant) -> Result<Value, BackendError> {
    check_raw(args)?;
    let name = args
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    let key = || {
        args.get(1)
            .map(arg_str)
            .unwrap_or_else(|| Ok(String::new()))
    };
    let int_arg = |i: usize| {
        args.get(i)
            .and_then(|a| parse_strict_i64(a))
            .ok_or_else(|| err(NOT_INTEGER))
    };
    let keys = || {
        args.iter()
            .skip(1)
            .map(arg_str)
            .collect::<Result<Vec<_>, _>>()
    };
    match name.as_slice() {
        b"PING" => Ok(match args.get(1) {
            Some(msg) => Value::Bytes(msg.clone()),
            None => Value::Status("PONG".to_owned()),
        }),
        b"ECHO" => Ok(Value::Bytes(args.get(1).cloned().unwrap_or_default())),
        b"FLUSHDB" | b"FLUSHALL" => {
            if let Some(mode) = args.get(1) {
                let mode = mode.to_ascii_uppercase();
                if mode != b"ASYNC" && mode != b"SYNC" {
                    return Err(err("ERR syntax error"));
                }
            }
            ks.clear();
            Ok(Value::Okay)
        }
        b"DBSIZE" => Ok(Value::Int(ks.live_len(now) as i64)),
        b"TYPE" => {
            let key = key()?;
            Ok(Value::Status(
                ks.get(&key, now)
                    .map_or("none", |e| e.data.type_name())
                    .to_owned(),
            ))
        }
        b"INCR" => incrby(ks, key()?, 1, now),
        b"DECR" => incrby(ks, key()?, -1, now),
        b"INCRBY" => incrby(ks, key()?, int_arg(2)?, now),
        b"DECRBY" => {
            let delta = int_arg(2)?
                .checked_neg()
                .ok_or_else(|| err("ERR decrement would overflow"))?;
            incrby(ks, key()?, delta, now)
        }
        b"GET" => get(ks, &key()?, now),
        b"DEL" => apply(ks, Command::Del { keys: keys()? }, now),
        b"EXISTS" => apply(ks, Command::Exists { keys: keys()? }, now),
        b"PERSIST" => {
            let key = key()?;
            let had_ttl = ks.get(&key, now).is_some_and(|e| e.expires_at.is_some());
            if had_ttl {
                ks.set_deadline(&key, None);
            }
            Ok(Value::Int(i64::from(had_ttl)))
        }
        b"HLEN" => Ok(Value::Int(
            hash_ref(ks, &key()?, now)?.map_or(0, |h| h.len() as i64),
        )),
        b"HMGET" => {
            let hash = hash_ref(ks, &key()?, now)?;
            args[2..]
                .iter()
                .map(|field| {
                    let field = arg_str(field)?;
                    Ok(hash
                        .and_then(|h| h.get(&field))
                        .map_or(Value::Nil, |v| Value::Bytes(v.clone())))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        b"APPEND" => append(ks, key()?, &args[2], now),
        b"STRLEN" => Ok(Value::Int(
            string_ref(ks, &key()?, now)?.map_or(0, |s| s.len() as i64),
        )),
        b"GETRANGE" => getrange(ks, &key()?, int_arg(2)?, int_arg(3)?, now),
        b"SETRANGE" => setrange(ks, key()?, int_arg(2)?, &args[3], now),
        b"BITFIELD" => bitfield_command(ks, key()?, &args[2..], now),
        b"EXPIRE" | b"PEXPIRE" => {
            let amount = int_arg(2)?;
            let millis = if name == b"EXPIRE" {
                amount
                    .checked_mul(1000)
                    .ok_or_else(|| err("ERR invalid expire time in 'expire' command"))?
            } else {
                amount
            };
            let cmd = String::from_utf8_lossy(&name).to_ascii_lowercase();
            expire_with(ks, &key()?, millis, &args[3..], now, &cmd)
        }
        b"ZLEXCOUNT" => {
            let (min, max) = (lex_bound(&args[2])?, lex_bound(&args[3])?);
            Ok(Value::Int(zset_ref(ks, &key()?, now)?.map_or(0, |z| {
                z.by_lex(&min, &max, false, 0, usize::MAX).len() as i64
            })))
        }
        b"ZRANGEBYLEX" | b"ZREVRANGEBYLEX" => {
            let rev = name == b"ZREVRANGEBYLEX";
            // The reversed form names the upper bound first.
            let (low, high) = if rev {
                (&args[3], &args[2])
            } else {
                (&args[2], &args[3])
            };
            let (min, max) = (lex_bound(low)?, lex_bound(high)?);
            let (offset, count) = match &args[4..] {
                [] => (0, usize::MAX),
                [word, offset, count] if word.eq_ignore_ascii_case(b"LIMIT") => {
                    let offset = parse_strict_i64(offset).ok_or_else(|| err(NOT_INTEGER))?;
                    let count = parse_strict_i64(count).ok_or_else(|| err(NOT_INTEGER))?;
                    if offset < 0 {
                        return Ok(Value::Array(Vec::new()));
                    }
                    // A negative count means "all the rest", as in Redis.
                    let count = usize::try_from(count).unwrap_or(usize::MAX);
                    (usize::try_from(offset).unwrap_or(usize::MAX), count)
                }
                _ => return Err(err("ERR syntax error")),
            };
            let members = zset_ref(ks, &key()?, now)?.map_or_else(Vec::new, |z| {
                z.by_lex(&min, &max, rev, offset, count)
                    .into_iter()
                    .map(|m| Value::Bytes(Bytes::copy_from_slice(m.as_bytes())))
                    .collect()
            });
            Ok(Value::Array(members))
        }
        _ => Err(err("ERR unknown command")),
    }
}

fn lex_bound(arg: &Bytes) -> Result<LexBound, BackendError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(LexBound::parse)
        .ok_or_else(|| err("ERR min or max not valid string range item"))
}

/// The string at `key`, `None` when missing, `WRONGTYPE` for another type.
fn string_ref<'a>(
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

fn getrange(
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
fn append(
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

fn setrange(
    ks: &mut Keyspace,
    key: String,
    offset: i64,
    value: &Bytes,
    now: Instant,
) -> Result<Value, BackendError> {
    let offset = u64::try_from(offset).map_err(|_| err("ERR offset is out of range"))?;
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

fn bitfield_command(
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

/// `EXPIRE`/`PEXPIRE key amount [NX|XX|GT|LT]` with the amount in milliseconds: the
/// options parsed and checked as Redis does, then [`expire`].
fn expire_with(
    ks: &mut Keyspace,
    key: &str,
    millis: i64,
    options: &[Bytes],
    now: Instant,
    cmd: &str,
) -> Result<Value, BackendError> {
    let mut condition = ExpireIf::default();
    for option in options {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => condition.no_ttl = true,
            b"XX" => condition.has_ttl = true,
            b"GT" => condition.later = true,
            b"LT" => condition.sooner = true,
            _ => {
                return Err(err(&format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    if condition.no_ttl && (condition.has_ttl || condition.later || condition.sooner) {
        return Err(err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if condition.later && condition.sooner {
        return Err(err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    expire(ks, key, millis, condition, now, cmd)
}
