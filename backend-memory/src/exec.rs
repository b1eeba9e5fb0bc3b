//! Command semantics: one function per command family, applied to a [`Keyspace`].
//!
//! Everything here runs with the backend's lock held and never awaits. Errors are the
//! exact error lines real Redis 7 sends, classified with [`BackendError::from_reply`].

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use resilience_core::backend::parse_strict_int;

use super::errors::{NOT_INTEGER, err, parse_strict_i64, wrong_args};

use super::glob::glob_match;
use super::store::{Data, Entry, Hash, Keyspace, wrongtype};
use super::zset::{SortedSet, rank_range};
use super::{lists, sets, streams, strings};
use resilience_core::{
    BackendError, Command, ExpireCondition, Limit, ListEnd, ScoreBound, SetCondition, SetOptions,
    Value, ZaddOptions,
};

const OVERFLOW: &str = "ERR increment or decrement would overflow";

/// Parses a float the way `HINCRBYFLOAT` reads a stored value: no spaces, no NaN.
fn parse_float(bytes: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(bytes).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v = resilience_core::backend::parse_redis_double(s)?;
    (!v.is_nan()).then_some(v)
}

fn deadline(now: Instant, millis: u64, cmd: &str) -> Result<Instant, BackendError> {
    let invalid = || err(&format!("ERR invalid expire time in '{cmd}' command"));
    if millis == 0 || millis > i64::MAX as u64 {
        return Err(invalid());
    }
    now.checked_add(Duration::from_millis(millis))
        .ok_or_else(invalid)
}

/// Applies one data command. Scripting commands are handled by the caller; here they are
/// refused.
pub(crate) fn apply(ks: &mut Keyspace, cmd: Command, now: Instant) -> Result<Value, BackendError> {
    match cmd {
        Command::Ping => Ok(Value::Status("PONG".to_owned())),
        Command::Get { key } => strings::get(ks, &key, now),
        Command::Set {
            key,
            value,
            options,
        } => set(ks, key, value, options, now),
        Command::Del { keys } => {
            if keys.is_empty() {
                return Err(wrong_args("del"));
            }
            let mut removed = 0;
            for key in &keys {
                if ks.contains(key, now) && ks.remove(key).is_some() {
                    removed += 1;
                }
            }
            Ok(Value::Int(removed))
        }
        Command::Exists { keys } => {
            if keys.is_empty() {
                return Err(wrong_args("exists"));
            }
            let n = keys.iter().filter(|k| ks.contains(k, now)).count();
            Ok(Value::Int(n as i64))
        }
        Command::Expire {
            key,
            seconds,
            condition,
        } => {
            let millis = seconds
                .checked_mul(1000)
                .ok_or_else(|| err("ERR invalid expire time in 'expire' command"))?;
            expire(ks, &key, millis, ExpireIf::from(condition), now, "expire")
        }
        Command::Pexpire {
            key,
            millis,
            condition,
        } => expire(ks, &key, millis, ExpireIf::from(condition), now, "pexpire"),
        Command::Expireat {
            key,
            unix_seconds,
            condition,
        } => {
            let unix_ms = unix_seconds
                .checked_mul(1000)
                .ok_or_else(|| err("ERR invalid expire time in 'expireat' command"))?;
            let millis = match strings::instant_of_unix_ms(unix_ms.max(0) as u64, now) {
                Some(at) => i64::try_from(at.duration_since(now).as_millis()).unwrap_or(i64::MAX),
                None => 0,
            };
            expire(ks, &key, millis, ExpireIf::from(condition), now, "expireat")
        }
        Command::Ttl { key } => Ok(Value::Int(match remaining_ms(ks, &key, now) {
            Some(Some(ms)) => ms.saturating_add(500) / 1000,
            Some(None) => -1,
            None => -2,
        })),
        Command::Pttl { key } => Ok(Value::Int(match remaining_ms(ks, &key, now) {
            Some(Some(ms)) => ms,
            Some(None) => -1,
            None => -2,
        })),
        Command::Incrby { key, delta } => incrby(ks, key, delta, now),
        Command::Mget { keys } => {
            if keys.is_empty() {
                return Err(wrong_args("mget"));
            }
            Ok(Value::Array(
                keys.iter()
                    .map(|k| match ks.get(k, now) {
                        Some(Entry {
                            data: Data::Str(b), ..
                        }) => Value::Bytes(b.clone()),
                        _ => Value::Nil,
                    })
                    .collect(),
            ))
        }
        Command::Hset { key, fields } => {
            if fields.is_empty() {
                return Err(wrong_args("hset"));
            }
            let hash = hash_for_write(ks, key, now)?;
            let added = fields
                .into_iter()
                .map(|(f, v)| hash.set(f, v))
                .filter(|added| *added)
                .count();
            Ok(Value::Int(added as i64))
        }
        Command::Hget { key, field } => Ok(match hash_ref(ks, &key, now)? {
            Some(h) => h.get(&field).cloned().map_or(Value::Nil, Value::Bytes),
            None => Value::Nil,
        }),
        Command::Hgetall { key } => Ok(Value::Map(match hash_ref(ks, &key, now)? {
            Some(h) => h
                .pairs()
                .into_iter()
                .map(|(f, v)| {
                    (
                        Value::Bytes(Bytes::copy_from_slice(f.as_bytes())),
                        Value::Bytes(v.clone()),
                    )
                })
                .collect(),
            None => Vec::new(),
        })),
        Command::Hdel { key, fields } => {
            if fields.is_empty() {
                return Err(wrong_args("hdel"));
            }
            let removed = match hash_mut(ks, &key, now)? {
                Some(h) => fields.iter().filter(|f| h.remove(f)).count(),
                None => 0,
            };
            ks.remove_if_empty(&key);
            Ok(Value::Int(removed as i64))
        }
        Command::Hincrby { key, field, delta } => {
            let cur = match hash_ref(ks, &key, now)?.and_then(|h| h.get(&field)) {
                Some(v) => {
                    parse_strict_i64(v).ok_or_else(|| err("ERR hash value is not an integer"))?
                }
                None => 0,
            };
            let new = cur.checked_add(delta).ok_or_else(|| err(OVERFLOW))?;
            hash_for_write(ks, key, now)?.set(field, Bytes::from(new.to_string()));
            Ok(Value::Int(new))
        }
        Command::Hincrbyfloat { key, field, delta } => {
            if !delta.is_finite() {
                return Err(err("ERR value is NaN or Infinity"));
            }
            let stored = hash_ref(ks, &key, now)?.and_then(|h| h.get(&field));
            let cur = match stored {
                Some(v) => parse_float(v).ok_or_else(|| err("ERR hash value is not a float"))?,
                None => 0.0,
            };
            // Redis adds in long double. Whole numbers stay exact here too (i128), so large
            // integer counters print the same digits; other sums use f64.
            // (A long double holds integers exactly up to 2^64.)
            let exact = stored
                .map_or(Some(0), |v| parse_strict_int::<i128>(v))
                .filter(|_| delta.fract() == 0.0 && delta.abs() < 1.8e19)
                .map(|c| c + delta as i128)
                .filter(|sum| sum.unsigned_abs() < 1 << 64);
            let new = cur + delta;
            if !new.is_finite() {
                return Err(err("ERR increment would produce NaN or Infinity"));
            }
            let text = match exact {
                Some(sum) => sum.to_string(),
                None => format!("{new}"),
            };
            hash_for_write(ks, key, now)?.set(field, Bytes::from(text));
            Ok(Value::Double(new))
        }
        Command::Zadd {
            key,
            members,
            options,
        } => zadd(ks, key, members, options, now),
        Command::Zrange {
            key,
            start,
            stop,
            rev,
            with_scores,
        } => Ok(match zset_ref(ks, &key, now)? {
            Some(z) => match rank_range(start, stop, z.len()) {
                Some((from, to)) => range_reply(z.by_rank(from, to, rev), with_scores),
                None => Value::Array(Vec::new()),
            },
            None => Value::Array(Vec::new()),
        }),
        Command::Zrangebyscore {
            key,
            min,
            max,
            rev,
            with_scores,
            limit,
        } => {
            if bound_is_nan(min) || bound_is_nan(max) {
                return Err(err("ERR min or max is not a float"));
            }
            let (offset, count) = window(limit);
            Ok(match zset_ref(ks, &key, now)? {
                Some(z) => range_reply(z.by_score(min, max, rev, offset, count), with_scores),
                None => Value::Array(Vec::new()),
            })
        }
        Command::Zrem { key, members } => {
            if members.is_empty() {
                return Err(wrong_args("zrem"));
            }
            let removed = match zset_mut(ks, &key, now)? {
                Some(z) => members.iter().filter(|m| z.remove(m)).count(),
                None => 0,
            };
            ks.remove_if_empty(&key);
            Ok(Value::Int(removed as i64))
        }
        Command::Zcard { key } => Ok(Value::Int(
            zset_ref(ks, &key, now)?.map_or(0, |z| z.len() as i64),
        )),
        Command::Zscore { key, member } => Ok(zset_ref(ks, &key, now)?
            .and_then(|z| z.score(&member))
            .map_or(Value::Nil, Value::Double)),
        Command::Zremrangebyrank { key, start, stop } => {
            let removed = match zset_mut(ks, &key, now)? {
                Some(z) => match rank_range(start, stop, z.len()) {
                    Some((from, to)) => z.remove_by_rank(from, to),
                    None => 0,
                },
                None => 0,
            };
            ks.remove_if_empty(&key);
            Ok(Value::Int(removed as i64))
        }
        Command::Scan {
            cursor,
            pattern,
            count,
            type_name,
        } => scan(
            ks,
            cursor,
            pattern.as_deref(),
            count,
            type_name.as_deref(),
            now,
        ),
        Command::Raw { args, .. } => match super::raw::raw(ks, &args, now)? {
            super::raw::Raw::Apply(cmd) => apply(ks, cmd, now),
            super::raw::Raw::Answered(value) => Ok(value),
        },
        // Strings.
        Command::Getex { key, expiry } => strings::getex(ks, &key, expiry, now),
        Command::Getdel { key } => strings::getdel(ks, &key, now),
        Command::Mset { keys, values } => strings::mset(ks, keys, values, false, now),
        Command::Msetnx { keys, values } => strings::mset(ks, keys, values, true, now),
        Command::Incr { key } => incrby(ks, key, 1, now),
        Command::Decr { key } => incrby(ks, key, -1, now),
        Command::Decrby { key, delta } => {
            let delta = delta
                .checked_neg()
                .ok_or_else(|| err("ERR decrement would overflow"))?;
            incrby(ks, key, delta, now)
        }
        Command::Incrbyfloat { key, delta } => strings::incrbyfloat(ks, key, delta, now),
        Command::Append { key, value } => strings::append(ks, key, &value, now),
        Command::Strlen { key } => Ok(Value::Int(
            strings::string_ref(ks, &key, now)?.map_or(0, |s| s.len() as i64),
        )),
        Command::Getrange { key, start, end } => strings::getrange(ks, &key, start, end, now),
        Command::Setrange { key, offset, value } => strings::setrange(ks, key, offset, &value, now),
        Command::Setbit { key, offset, bit } => strings::setbit(ks, key, offset, bit, now),
        Command::Getbit { key, offset } => strings::getbit(ks, &key, offset, now),
        Command::Bitcount { key, range } => strings::bitcount(ks, &key, range, now),
        Command::Bitfield { key, args } => strings::bitfield_command(ks, key, &args, now),
        // Keys.
        Command::Unlink { keys } => apply(ks, Command::Del { keys }, now),
        Command::Persist { key } => {
            let had_ttl = ks.get(&key, now).is_some_and(|e| e.expires_at.is_some());
            if had_ttl {
                ks.set_deadline(&key, None);
            }
            Ok(Value::Int(i64::from(had_ttl)))
        }
        Command::Type { key } => Ok(Value::Status(
            ks.get(&key, now)
                .map_or("none", |e| e.data.type_name())
                .to_owned(),
        )),
        Command::Copy { keys, replace } => {
            let [source, destination] = keys;
            let Some(entry) = ks.get(&source, now) else {
                return Ok(Value::Int(0));
            };
            let (data, expires_at) = (entry.data.clone(), entry.expires_at);
            if !replace.0 && ks.contains(&destination, now) {
                return Ok(Value::Int(0));
            }
            ks.insert(destination, data, expires_at);
            Ok(Value::Int(1))
        }
        // Hashes.
        Command::Hsetnx { key, field, value } => {
            if hash_ref(ks, &key, now)?.is_some_and(|h| h.get(&field).is_some()) {
                return Ok(Value::Int(0));
            }
            hash_for_write(ks, key, now)?.set(field, value);
            Ok(Value::Int(1))
        }
        Command::Hmget { key, fields } => {
            let hash = hash_ref(ks, &key, now)?;
            Ok(Value::Array(
                fields
                    .iter()
                    .map(|f| {
                        hash.and_then(|h| h.get(f))
                            .map_or(Value::Nil, |v| Value::Bytes(v.clone()))
                    })
                    .collect(),
            ))
        }
        Command::Hexists { key, field } => Ok(Value::Int(i64::from(
            hash_ref(ks, &key, now)?.is_some_and(|h| h.get(&field).is_some()),
        ))),
        Command::Hlen { key } => Ok(Value::Int(
            hash_ref(ks, &key, now)?.map_or(0, |h| h.len() as i64),
        )),
        Command::Hkeys { key } => Ok(Value::Array(
            hash_ref(ks, &key, now)?
                .map(|h| h.pairs())
                .unwrap_or_default()
                .into_iter()
                .map(|(f, _)| Value::Bytes(Bytes::copy_from_slice(f.as_bytes())))
                .collect(),
        )),
        Command::Hvals { key } => Ok(Value::Array(
            hash_ref(ks, &key, now)?
                .map(|h| h.pairs())
                .unwrap_or_default()
                .into_iter()
                .map(|(_, v)| Value::Bytes(v.clone()))
                .collect(),
        )),
        Command::Hscan { key, options, .. } => {
            let pattern = options.pattern.as_deref();
            let page = hash_ref(ks, &key, now)?
                .map(|h| h.pairs())
                .unwrap_or_default()
                .into_iter()
                .filter(|(f, _)| pattern.is_none_or(|p| glob_match(p.as_bytes(), f.as_bytes())))
                .flat_map(|(f, v)| {
                    [
                        Value::Bytes(Bytes::copy_from_slice(f.as_bytes())),
                        Value::Bytes(v.clone()),
                    ]
                })
                .collect();
            Ok(Value::Array(vec![Value::Int(0), Value::Array(page)]))
        }
        // Lists.
        Command::Lpush { key, elements } => lists::push(ks, key, elements, ListEnd::Left, now),
        Command::Rpush { key, elements } => lists::push(ks, key, elements, ListEnd::Right, now),
        Command::Lpop { key, count } => lists::pop(ks, &key, count, ListEnd::Left, now),
        Command::Rpop { key, count } => lists::pop(ks, &key, count, ListEnd::Right, now),
        Command::Lrange { key, start, stop } => lists::range(ks, &key, start, stop, now),
        Command::Llen { key } => lists::len(ks, &key, now),
        Command::Ltrim { key, start, stop } => lists::trim(ks, &key, start, stop, now),
        Command::Lindex { key, index } => lists::index(ks, &key, index, now),
        Command::Lset {
            key,
            index,
            element,
        } => lists::set(ks, &key, index, element, now),
        Command::Lrem {
            key,
            count,
            element,
        } => lists::remove(ks, &key, count, &element, now),
        Command::Lmove { keys, from, to } => lists::lmove(ks, keys, from, to, now),
        // Sets.
        Command::Sadd { key, members } => sets::add(ks, key, members, now),
        Command::Srem { key, members } => sets::remove(ks, &key, &members, now),
        Command::Smembers { key } => sets::all(ks, &key, now),
        Command::Sismember { key, member } => {
            sets::is_member(ks, &key, std::slice::from_ref(&member), false, now)
        }
        Command::Smismember { key, members } => sets::is_member(ks, &key, &members, true, now),
        Command::Scard { key } => sets::card(ks, &key, now),
        Command::Spop { key, count } => sets::pop(ks, &key, count, now),
        Command::Srandmember { key, count } => sets::random(ks, &key, count, now),
        Command::Sscan { key, options, .. } => sets::scan(ks, &key, &options, now),
        Command::Sinter { keys } => sets::combine(ks, &keys, sets::Combine::Inter, now),
        Command::Sunion { keys } => sets::combine(ks, &keys, sets::Combine::Union, now),
        Command::Sdiff { keys } => sets::combine(ks, &keys, sets::Combine::Diff, now),
        // Sorted sets.
        Command::Zincrby {
            key,
            increment,
            member,
        } => zadd(
            ks,
            key,
            vec![(increment, member)],
            ZaddOptions::default().with_incr(true),
            now,
        ),
        Command::Zcount { key, min, max } => {
            Ok(Value::Int(zset_ref(ks, &key, now)?.map_or(0, |z| {
                z.by_score(min, max, false, 0, usize::MAX).len() as i64
            })))
        }
        Command::Zrank { key, member } => Ok(zset_ref(ks, &key, now)?
            .and_then(|z| z.rank(&member))
            .map_or(Value::Nil, |r| Value::Int(r as i64))),
        Command::Zmscore { key, members } => {
            let z = zset_ref(ks, &key, now)?;
            Ok(Value::Array(
                members
                    .iter()
                    .map(|m| z.and_then(|z| z.score(m)).map_or(Value::Nil, Value::Double))
                    .collect(),
            ))
        }
        Command::Zpopmin { key, count } => zpop(ks, &key, count, false, now),
        Command::Zpopmax { key, count } => zpop(ks, &key, count, true, now),
        Command::Zrangebylex {
            key,
            min,
            max,
            rev,
            limit,
        } => {
            let (offset, count) = window(limit);
            Ok(Value::Array(zset_ref(ks, &key, now)?.map_or_else(
                Vec::new,
                |z| {
                    z.by_lex(&min, &max, rev, offset, count)
                        .into_iter()
                        .map(|m| Value::Bytes(Bytes::copy_from_slice(m.as_bytes())))
                        .collect()
                },
            )))
        }
        Command::Zlexcount { key, min, max } => {
            Ok(Value::Int(zset_ref(ks, &key, now)?.map_or(0, |z| {
                z.by_lex(&min, &max, false, 0, usize::MAX).len() as i64
            })))
        }
        Command::Zscan { key, options, .. } => {
            let pattern = options.pattern.as_deref();
            let page = zset_ref(ks, &key, now)?
                .map(|z| z.by_rank(0, usize::MAX - 1, false))
                .unwrap_or_default()
                .into_iter()
                .filter(|(m, _)| pattern.is_none_or(|p| glob_match(p.as_bytes(), m.as_bytes())))
                .flat_map(|(m, s)| {
                    [
                        Value::Bytes(Bytes::copy_from_slice(m.as_bytes())),
                        Value::Bytes(Bytes::from(resilience_core::backend::format_score(s))),
                    ]
                })
                .collect();
            Ok(Value::Array(vec![Value::Int(0), Value::Array(page)]))
        }
        Command::Publish { channel, message } => {
            Ok(Value::Int(ks.channels.publish(&channel, &message, false)))
        }
        Command::Spublish { channel, message } => {
            Ok(Value::Int(ks.channels.publish(&channel, &message, true)))
        }
        // HyperLogLog, kept exact.
        Command::Pfadd { key, elements } => {
            let created = match ks.get_mut(&key, now) {
                None => {
                    ks.insert(key.clone(), Data::Hll(Default::default()), None);
                    true
                }
                Some(Entry {
                    data: Data::Hll(_), ..
                }) => false,
                Some(_) => {
                    return Err(err(
                        "WRONGTYPE Key is not a valid HyperLogLog string value.",
                    ));
                }
            };
            let Some(Entry {
                data: Data::Hll(set),
                ..
            }) = ks.get_mut(&key, now)
            else {
                return Err(wrongtype());
            };
            let added = elements
                .into_iter()
                .filter(|e| set.insert(e.clone()))
                .count();
            Ok(Value::Int(i64::from(created || added > 0)))
        }
        Command::Pfcount { keys } => {
            let mut union = std::collections::BTreeSet::new();
            for key in &keys {
                match ks.get(key, now) {
                    None => {}
                    Some(Entry {
                        data: Data::Hll(set),
                        ..
                    }) => union.extend(set.iter().cloned()),
                    Some(_) => {
                        return Err(err(
                            "WRONGTYPE Key is not a valid HyperLogLog string value.",
                        ));
                    }
                }
            }
            Ok(Value::Int(union.len() as i64))
        }
        // Streams.
        Command::Xadd {
            key,
            options,
            id,
            fields,
        } => streams::add(ks, key, options, &id, fields, now),
        Command::Xrange {
            key,
            start,
            end,
            count,
        } => streams::range(ks, &key, &start, &end, count, false, now),
        Command::Xrevrange {
            key,
            end,
            start,
            count,
        } => streams::range(ks, &key, &start, &end, count, true, now),
        Command::Xlen { key } => streams::len(ks, &key, now),
        Command::Xtrim { key, trim } => streams::trim_command(ks, &key, &trim, now),
        Command::Xdel { key, ids } => streams::delete(ks, &key, &ids, now),
        Command::Xread {
            count,
            block_ms: None,
            keys,
            ids,
        } => streams::read(ks, &keys, &ids, count, now),
        // What needs a server: blocking (nothing here can wake a waiter) and consumer groups.
        cmd @ (Command::Xread { .. }
        | Command::Blpop { .. }
        | Command::Brpop { .. }
        | Command::Blmove { .. }) => {
            Err(unsupported(&cmd, "blocking commands need a Redis server"))
        }
        cmd @ (Command::XgroupCreate { .. }
        | Command::Xreadgroup { .. }
        | Command::Xack { .. }
        | Command::Xpending { .. }
        | Command::Xautoclaim { .. }) => {
            Err(unsupported(&cmd, "consumer groups need a Redis server"))
        }
        Command::Eval { .. } | Command::Evalsha { .. } | Command::ScriptLoad { .. } => {
            Err(err("ERR This Redis command is not allowed from script"))
        }
        // `Command` grows with the table; a new entry without an arm here is refused, and
        // `tests/every_command.rs` fails until it has one.
        cmd => Err(unsupported(&cmd, "no in-memory implementation yet")),
    }
}

/// The in-memory backend's refusal of a command it does not implement: `InvalidInput`
/// (nothing ran), naming the command. Never a made-up answer.
fn unsupported(cmd: &Command, why: &str) -> BackendError {
    BackendError::new(
        resilience_core::ErrorKind::InvalidInput,
        format!(
            "{} is not implemented by the in-memory backend: {why}",
            cmd.name()
        ),
    )
}

/// `ZPOPMIN`/`ZPOPMAX`: members with scores, removed.
fn zpop(
    ks: &mut Keyspace,
    key: &str,
    count: Option<u64>,
    highest: bool,
    now: Instant,
) -> Result<Value, BackendError> {
    let Some(z) = zset_mut(ks, key, now)? else {
        return Ok(Value::Array(Vec::new()));
    };
    let take = count.map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX));
    if take == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    let popped: Vec<(String, f64)> = z
        .by_rank(0, take - 1, highest)
        .into_iter()
        .map(|(m, s)| (m.to_owned(), s))
        .collect();
    for (m, _) in &popped {
        z.remove(m);
    }
    ks.remove_if_empty(key);
    Ok(Value::Array(
        popped
            .into_iter()
            .map(|(m, s)| Value::Array(vec![Value::Bytes(Bytes::from(m)), Value::Double(s)]))
            .collect(),
    ))
}

/// `LIMIT offset count` as the members to skip and to keep (no limit: all of them).
fn window(limit: Option<Limit>) -> (usize, usize) {
    match limit {
        Some(Limit { offset, count }) => (
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(count).unwrap_or(usize::MAX),
        ),
        None => (0, usize::MAX),
    }
}

fn bound_is_nan(b: ScoreBound) -> bool {
    matches!(b, ScoreBound::Inclusive(v) | ScoreBound::Exclusive(v) if v.is_nan())
}

fn range_reply(items: Vec<(&str, f64)>, with_scores: bool) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|(m, s)| {
                let member = Value::Bytes(Bytes::copy_from_slice(m.as_bytes()));
                if with_scores {
                    Value::Array(vec![member, Value::Double(s)])
                } else {
                    member
                }
            })
            .collect(),
    )
}

fn set(
    ks: &mut Keyspace,
    key: String,
    value: Bytes,
    options: SetOptions,
    now: Instant,
) -> Result<Value, BackendError> {
    let mut expires_at = options
        .expire_ms
        .map(|ms| deadline(now, ms.get(), "set"))
        .transpose()?;
    let mut already_past = false;
    if let Some(unix_ms) = options.expire_at_ms {
        match strings::instant_of_unix_ms(unix_ms.get(), now) {
            Some(at) => expires_at = Some(at),
            None => already_past = true,
        }
    }
    let old = if options.get {
        strings::get(ks, &key, now)?
    } else {
        Value::Nil
    };
    let current = ks.get(&key, now).map(|e| e.expires_at);
    let exists = current.is_some();
    let refused = match options.condition {
        Some(SetCondition::IfNotExists) => exists,
        Some(SetCondition::IfExists) => !exists,
        None => false,
    };
    if refused {
        return Ok(if options.get { old } else { Value::Nil });
    }
    if options.keep_ttl {
        expires_at = current.flatten();
    }
    // SET replaces any type and clears an existing TTL unless a new one is given; a
    // deadline already past stores nothing (the key is gone at once).
    if already_past {
        ks.remove(&key);
    } else {
        ks.insert(key, Data::Str(value), expires_at);
    }
    Ok(if options.get { old } else { Value::Okay })
}

/// The condition of `EXPIRE`/`PEXPIRE … NX|XX|GT|LT` (all off: unconditional).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ExpireIf {
    /// `NX`: only when the key has no TTL.
    pub(super) no_ttl: bool,
    /// `XX`: only when the key has a TTL.
    pub(super) has_ttl: bool,
    /// `GT`: only when the new deadline is later (no TTL counts as infinite).
    pub(super) later: bool,
    /// `LT`: only when the new deadline is sooner.
    pub(super) sooner: bool,
}

impl From<Option<ExpireCondition>> for ExpireIf {
    fn from(condition: Option<ExpireCondition>) -> Self {
        let mut out = ExpireIf::default();
        match condition {
            Some(ExpireCondition::NoTtl) => out.no_ttl = true,
            Some(ExpireCondition::HasTtl) => out.has_ttl = true,
            Some(ExpireCondition::Later) => out.later = true,
            Some(ExpireCondition::Sooner) => out.sooner = true,
            None => {}
        }
        out
    }
}

/// `EXPIRE`/`PEXPIRE` with the amount in milliseconds: 1 when the deadline was set (or
/// the key deleted, for an amount of zero or less), 0 when the key is missing or the
/// condition refused it.
pub(super) fn expire(
    ks: &mut Keyspace,
    key: &str,
    millis: i64,
    condition: ExpireIf,
    now: Instant,
    cmd: &str,
) -> Result<Value, BackendError> {
    // Like Redis, an out-of-range time is an error even for a missing key.
    let at = if millis > 0 {
        Some(deadline(now, millis.unsigned_abs(), cmd)?)
    } else {
        None
    };
    let Some(entry) = ks.get(key, now) else {
        return Ok(Value::Int(0));
    };
    // A deadline in the past counts as now; no TTL counts as infinite.
    let new = at.unwrap_or(now);
    let allowed = match entry.expires_at {
        None => !(condition.has_ttl || condition.later),
        Some(current) => {
            !condition.no_ttl
                && (!condition.later || new > current)
                && (!condition.sooner || new < current)
        }
    };
    if !allowed {
        return Ok(Value::Int(0));
    }
    match at {
        Some(at) => {
            ks.set_deadline(key, Some(at));
        }
        None => {
            ks.remove(key);
        }
    }
    Ok(Value::Int(1))
}

/// `None`: missing; `Some(None)`: no TTL; `Some(Some(ms))`: milliseconds left, rounded up.
fn remaining_ms(ks: &mut Keyspace, key: &str, now: Instant) -> Option<Option<i64>> {
    let entry = ks.get(key, now)?;
    Some(entry.expires_at.map(|at| {
        let left = at.saturating_duration_since(now);
        let ms = left.as_nanos().div_ceil(1_000_000);
        i64::try_from(ms).unwrap_or(i64::MAX)
    }))
}

pub(super) fn incrby(
    ks: &mut Keyspace,
    key: String,
    delta: i64,
    now: Instant,
) -> Result<Value, BackendError> {
    match ks.get_mut(&key, now) {
        Some(Entry {
            data: Data::Str(b), ..
        }) => {
            let cur = parse_strict_i64(b).ok_or_else(|| err(NOT_INTEGER))?;
            let new = cur.checked_add(delta).ok_or_else(|| err(OVERFLOW))?;
            // INCR keeps the key's TTL.
            *b = Bytes::from(new.to_string());
            Ok(Value::Int(new))
        }
        Some(_) => Err(wrongtype()),
        None => {
            ks.insert(key, Data::Str(Bytes::from(delta.to_string())), None);
            Ok(Value::Int(delta))
        }
    }
}

pub(super) fn hash_ref<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a Hash>, BackendError> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Hash(h),
            ..
        }) => Ok(Some(h)),
        Some(_) => Err(wrongtype()),
    }
}

fn hash_mut<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a mut Hash>, BackendError> {
    match ks.get_mut(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Hash(h),
            ..
        }) => Ok(Some(h)),
        Some(_) => Err(wrongtype()),
    }
}

/// The hash at `key`, created empty when missing. The caller must leave it non-empty.
fn hash_for_write(ks: &mut Keyspace, key: String, now: Instant) -> Result<&mut Hash, BackendError> {
    if !ks.contains(&key, now) {
        ks.insert(key.clone(), Data::Hash(Hash::default()), None);
    }
    hash_mut(ks, &key, now)?.ok_or_else(wrongtype)
}

pub(super) fn zset_ref<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a SortedSet>, BackendError> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::ZSet(z),
            ..
        }) => Ok(Some(z)),
        Some(_) => Err(wrongtype()),
    }
}

pub(super) fn zset_mut<'a>(
    ks: &'a mut Keyspace,
    key: &str,
    now: Instant,
) -> Result<Option<&'a mut SortedSet>, BackendError> {
    match ks.get_mut(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::ZSet(z),
            ..
        }) => Ok(Some(z)),
        Some(_) => Err(wrongtype()),
    }
}

fn zadd(
    ks: &mut Keyspace,
    key: String,
    members: Vec<(f64, String)>,
    options: ZaddOptions,
    now: Instant,
) -> Result<Value, BackendError> {
    let nx = options.condition == Some(SetCondition::IfNotExists);
    let xx = options.condition == Some(SetCondition::IfExists);
    let gt = options.greater_than == Some(true);
    let lt = options.greater_than == Some(false);
    if nx && xx {
        return Err(err(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (gt || lt) && nx {
        return Err(err(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if members.is_empty() {
        return Err(wrong_args("zadd"));
    }
    if options.incr && members.len() > 1 {
        return Err(err(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    if members.iter().any(|(s, _)| s.is_nan()) {
        return Err(err("ERR value is not a valid float"));
    }
    let exists = zset_ref(ks, &key, now)?.is_some();
    if !exists {
        if xx {
            return Ok(if options.incr {
                Value::Nil
            } else {
                Value::Int(0)
            });
        }
        ks.insert(key.clone(), Data::ZSet(SortedSet::default()), None);
    }
    let z = zset_mut(ks, &key, now)?.ok_or_else(wrongtype)?;
    let (mut added, mut updated) = (0i64, 0i64);
    let mut incr_reply = Value::Nil;
    let mut failure = None;
    for (score, member) in members {
        match z.score(&member) {
            Some(cur) => {
                if nx {
                    continue;
                }
                let new = if options.incr { cur + score } else { score };
                if new.is_nan() {
                    failure = Some(err("ERR resulting score is not a number (NaN)"));
                    break;
                }
                if (gt && new <= cur) || (lt && new >= cur) {
                    continue;
                }
                if new != cur {
                    z.insert(member, new);
                    updated += 1;
                }
                incr_reply = Value::Double(new);
            }
            None => {
                if xx {
                    continue;
                }
                z.insert(member, score);
                added += 1;
                incr_reply = Value::Double(score);
            }
        }
    }
    ks.remove_if_empty(&key);
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(if options.incr {
        incr_reply
    } else if options.changed {
        Value::Int(added + updated)
    } else {
        Value::Int(added)
    })
}

/// A stable 63-bit hash (FNV-1a, top bit dropped) of a key: SCAN walks keys in this order,
/// and 63 bits keep every cursor a non-negative `Int`.
fn scan_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) >> 1
}

/// `SCAN`: keys are visited in order of a fixed hash; the cursor is the next hash to look
/// at. Keys sharing a hash are never split across calls, so every key present for the whole
/// iteration is returned at least once, whatever is added or removed meanwhile.
fn scan(
    ks: &mut Keyspace,
    cursor: u64,
    pattern: Option<&str>,
    count: Option<u64>,
    type_name: Option<&str>,
    now: Instant,
) -> Result<Value, BackendError> {
    let count = match count {
        Some(0) => return Err(err("ERR syntax error")),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => 10,
    };
    // Like Redis, `MATCH *` is no filter at all (it even matches the empty key).
    let pattern = pattern.filter(|p| *p != "*");
    let mut candidates: Vec<(u64, &String, &'static str)> = ks
        .iter()
        .filter(|(_, e)| Keyspace::entry_is_live(e, now))
        .map(|(k, e)| (scan_hash(k), k, e.data.type_name()))
        .filter(|(h, _, _)| *h >= cursor)
        .collect();
    let next = if candidates.len() > count {
        candidates.select_nth_unstable(count - 1);
        let boundary = candidates[count - 1].0;
        // Include every key with the boundary hash, so a hash group is never split.
        candidates.retain(|(h, _, _)| *h <= boundary);
        if boundary >= i64::MAX as u64 {
            0
        } else {
            boundary + 1
        }
    } else {
        0
    };
    let keys = candidates
        .into_iter()
        .filter(|(_, k, _)| pattern.is_none_or(|p| glob_match(p.as_bytes(), k.as_bytes())))
        .filter(|(_, _, kind)| type_name.is_none_or(|t| kind.eq_ignore_ascii_case(t)))
        .map(|(_, k, _)| Value::Bytes(Bytes::copy_from_slice(k.as_bytes())))
        .collect();
    Ok(Value::Array(vec![
        Value::Int(next as i64),
        Value::Array(keys),
    ]))
}

/// The error Redis would give when queueing `cmd` inside `MULTI` (unknown command or wrong
/// number of arguments), which makes `EXEC` discard the whole transaction. The arity is
/// the command table's.
pub(crate) fn queue_time_error(cmd: &Command) -> Option<BackendError> {
    if let Command::Raw { args, .. } = cmd {
        return super::raw::check_raw(args).err();
    }
    let mut counted = ArgCount(0);
    if let Err(e) = cmd.write_args(&mut counted) {
        return Some(e);
    }
    let (n, arity) = (counted.0, cmd.arity());
    let fits = if arity >= 0 { n == arity } else { n >= -arity };
    (!fits).then(|| wrong_args(&cmd.name().to_ascii_lowercase().replace(' ', "|")))
}

/// Counts the arguments a command writes.
struct ArgCount(i32);

impl resilience_core::backend::ArgSink for ArgCount {
    fn word(&mut self, _: &'static str) {
        self.0 += 1;
    }
    fn text(&mut self, _: &str) {
        self.0 += 1;
    }
    fn bytes(&mut self, _: &Bytes) {
        self.0 += 1;
    }
    fn int(&mut self, _: i64) {
        self.0 += 1;
    }
    fn uint(&mut self, _: u64) {
        self.0 += 1;
    }
    fn score(&mut self, _: f64) {
        self.0 += 1;
    }
}
