//! Replies in their canonical shape: [`ReplyShape`].

use bytes::Bytes;

use crate::value::parse_redis_double;
use crate::{BackendError, ErrorKind, Value};

/// The shape a command's reply must have, as documented on each
/// [`Command`](crate::Command) variant.
///
/// Taken from the command before it is sent (so a backend that consumes the command
/// needs no copy of it), then applied to the reply with [`canonicalize`](Self::canonicalize).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyShape {
    kind: Reply,
    /// The command's name, for error messages.
    command: &'static str,
}

/// The reply shapes of the command table: each entry names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `PING`: `Status("PONG")`.
    Pong,
    /// `SET`: `Okay` or `Nil`.
    SetOk,
    /// `GET`, `HGET`: `Bytes` or `Nil`.
    BulkOrNil,
    /// Integer replies.
    Int,
    /// `MGET`, `HMGET`, `SMISMEMBER`, `BITFIELD`: an array as it is.
    Array,
    /// `LSET`, `LTRIM`, `MSET`: `Okay`.
    Okay,
    /// `TYPE`: a `Status`.
    Status,
    /// `ZRANK`: `Int` or `Nil`.
    OptInt,
    /// `ZMSCORE`: an array of `Double` or `Nil`.
    OptDoubles,
    /// `XREAD`, `XREADGROUP`: a `Map` of stream key to entries (RESP2's array of
    /// `[key, entries]` pairs becomes one; `Nil`, nothing new, an empty one).
    KeyedMap,
    /// `HGETALL`: `Map`.
    Map,
    /// `HINCRBYFLOAT`: `Double`.
    Double,
    /// `ZSCORE`, `ZADD INCR`: `Double` or `Nil`.
    OptDouble,
    /// Range replies without scores: an array of members.
    Members,
    /// Range replies `WITHSCORES`: pairs `[member, Double]`.
    ScoredMembers,
    /// `SCRIPT LOAD`: the SHA as `Bytes`.
    Sha,
    /// `SCAN`: `[Int cursor, Array keys]`.
    Scan,
    /// `EVAL`, `EVALSHA`: the reply as decoded.
    Passthrough,
    /// `Raw`: the reply as decoded.
    Raw,
}

impl ReplyShape {
    /// The shape of a reply to the command named `command`, whose table entry promises
    /// `kind` (what [`ReplyShape::of`] reads off a command).
    #[inline]
    pub(crate) fn new(kind: Reply, command: &'static str) -> ReplyShape {
        ReplyShape { kind, command }
    }

    /// Whether the command was [`Command::Raw`](crate::Command::Raw), whose reply is passed through as the
    /// driver decoded it.
    pub fn is_raw(self) -> bool {
        self.kind == Reply::Raw
    }

    /// Gives `reply` (the driver's reply converted one to one) the canonical shape: RESP2's
    /// flat `HGETALL` and `WITHSCORES` arrays become a `Map` and `[member, Double]` pairs,
    /// scores and `HINCRBYFLOAT` become `Double`, the `SCAN` cursor an `Int` (a cursor
    /// beyond `i64::MAX` keeps its bits: cast it back with `as u64`), a status where bytes
    /// are promised becomes bytes and a bulk `OK` where `SET` promises `Okay` becomes
    /// `Okay`. Any other mismatch is a [`ErrorKind::Server`] error naming the command.
    #[inline]
    pub fn canonicalize(self, reply: Value) -> Result<Value, BackendError> {
        // The replies of the hot commands (`GET`, `SET`, the counters) usually arrive in
        // their canonical shape already: pass them through without the full match below,
        // which returns them unchanged too (test `fast_path_agrees_with_the_full_match`).
        if matches!(
            (self.kind, &reply),
            (Reply::BulkOrNil, Value::Bytes(_) | Value::Nil)
                | (Reply::SetOk, Value::Okay | Value::Nil)
                | (Reply::Int, Value::Int(_))
        ) {
            return Ok(reply);
        }
        self.reshape(reply)
    }

    /// [`canonicalize`](Self::canonicalize) for every reply not already canonical.
    fn reshape(self, reply: Value) -> Result<Value, BackendError> {
        let cmd = self.command;
        match self.kind {
            Reply::Pong => match reply {
                ref t if is_text(t, "PONG") => Ok(Value::Status("PONG".to_owned())),
                other => Ok(other),
            },
            Reply::SetOk => match reply {
                Value::Nil => Ok(Value::Nil),
                ref t if matches!(t, Value::Okay) || is_text(t, "OK") => Ok(Value::Okay),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::BulkOrNil | Reply::Sha => match reply {
                Value::Nil if self.kind == Reply::BulkOrNil => Ok(Value::Nil),
                Value::Bytes(_) => Ok(reply),
                Value::Status(s) => Ok(Value::Bytes(Bytes::from(s))),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Int => to_int(cmd, reply),
            Reply::Array => match reply {
                Value::Array(_) => Ok(reply),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Okay => match reply {
                ref t if matches!(t, Value::Okay) || is_text(t, "OK") => Ok(Value::Okay),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Status => match reply {
                Value::Status(_) => Ok(reply),
                Value::Okay => Ok(Value::Status("OK".to_owned())),
                Value::Bytes(b) => String::from_utf8(b.to_vec())
                    .map(Value::Status)
                    .map_err(|_| mismatch(cmd, "a status that is not UTF-8")),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::OptInt => match reply {
                Value::Nil => Ok(Value::Nil),
                other => to_int(cmd, other),
            },
            Reply::OptDoubles => match reply {
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Nil => Ok(Value::Nil),
                        other => to_double(cmd, other),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Map => Ok(Value::Map(flat_to_pairs(cmd, reply)?)),
            Reply::KeyedMap => match reply {
                Value::Nil => Ok(Value::Map(Vec::new())),
                Value::Map(_) => Ok(reply),
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::Array(pair) if pair.len() == 2 => {
                            let mut it = pair.into_iter();
                            match (it.next(), it.next()) {
                                (Some(k), Some(v)) => Ok((k, v)),
                                _ => Err(mismatch(cmd, "a broken [key, entries] pair")),
                            }
                        }
                        other => Err(mismatch(cmd, other.kind_name())),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Map),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Double => to_double(cmd, reply),
            Reply::OptDouble => match reply {
                Value::Nil => Ok(Value::Nil),
                other => to_double(cmd, other),
            },
            Reply::ScoredMembers => scored(cmd, reply),
            Reply::Members => match reply {
                Value::Array(_) => Ok(reply),
                Value::Nil => Ok(Value::Array(Vec::new())),
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Scan => match reply {
                Value::Array(items) if items.len() == 2 => {
                    let mut it = items.into_iter();
                    match (it.next(), it.next()) {
                        (Some(cursor), Some(keys @ Value::Array(_))) => {
                            Ok(Value::Array(vec![to_int(cmd, cursor)?, keys]))
                        }
                        _ => Err(mismatch(cmd, "not a cursor and an array of keys")),
                    }
                }
                other => Err(mismatch(cmd, other.kind_name())),
            },
            Reply::Passthrough | Reply::Raw => Ok(reply),
        }
    }
}

/// A reply that does not have the shape its command promises.
fn mismatch(cmd: &str, what: &str) -> BackendError {
    BackendError::new(
        ErrorKind::Server,
        format!("unexpected reply to {cmd}: {what}"),
    )
}

fn to_double(cmd: &str, v: Value) -> Result<Value, BackendError> {
    let parsed = match &v {
        Value::Double(d) => Some(*d),
        Value::Int(i) => Some(*i as f64),
        Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(parse_redis_double),
        Value::Status(s) => parse_redis_double(s),
        other => return Err(mismatch(cmd, other.kind_name())),
    };
    parsed
        .map(Value::Double)
        .ok_or_else(|| mismatch(cmd, "a score that is not a number"))
}

fn to_int(cmd: &str, v: Value) -> Result<Value, BackendError> {
    match v {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Bytes(b) => parse_int(&b)
            .map(Value::Int)
            .ok_or_else(|| mismatch(cmd, "not an integer")),
        other => Err(mismatch(cmd, other.kind_name())),
    }
}

/// Parses an integer; a `u64` beyond `i64::MAX` (a SCAN cursor) keeps its bits.
fn parse_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    s.parse::<i64>()
        .ok()
        .or_else(|| s.parse::<u64>().ok().map(|u| u as i64))
}

fn is_text(v: &Value, text: &str) -> bool {
    match v {
        Value::Bytes(b) => b.eq_ignore_ascii_case(text.as_bytes()),
        Value::Status(s) => s.eq_ignore_ascii_case(text),
        _ => false,
    }
}

fn flat_to_pairs(cmd: &str, v: Value) -> Result<Vec<(Value, Value)>, BackendError> {
    match v {
        Value::Map(pairs) => Ok(pairs),
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(mismatch(cmd, "an odd-length array where pairs were due"));
            }
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            Ok(out)
        }
        other => Err(mismatch(cmd, other.kind_name())),
    }
}

/// `WITHSCORES` replies: RESP3 nests `[member, score]` pairs, RESP2 sends them flat.
fn scored(cmd: &str, v: Value) -> Result<Value, BackendError> {
    let items = match v {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => return Err(mismatch(cmd, other.kind_name())),
    };
    let nested = !items.is_empty()
        && items
            .iter()
            .all(|i| matches!(i, Value::Array(p) if p.len() == 2));
    let pairs: Vec<(Value, Value)> = if nested {
        items
            .into_iter()
            .filter_map(|i| match i {
                Value::Array(p) => {
                    let mut it = p.into_iter();
                    Some((it.next()?, it.next()?))
                }
                _ => None,
            })
            .collect()
    } else {
        flat_to_pairs(cmd, Value::Array(items))?
    };
    pairs
        .into_iter()
        .map(|(m, s)| Ok(Value::Array(vec![m, to_double(cmd, s)?])))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Command, SetOptions, ZaddOptions};

    fn bs(s: &str) -> Value {
        Value::from(s)
    }

    fn shape(cmd: &Command, v: Value) -> Result<Value, BackendError> {
        ReplyShape::of(cmd).canonicalize(v)
    }

    #[test]
    fn fast_path_agrees_with_the_full_match() {
        let get = Command::Get { key: "k".into() };
        let set = Command::Set {
            key: "k".into(),
            value: "v".into(),
            options: SetOptions::default(),
        };
        let incr = Command::Incrby {
            key: "k".into(),
            delta: 1,
        };
        let replies = [
            Value::Nil,
            Value::Okay,
            Value::Int(7),
            bs("OK"),
            bs("12"),
            Value::Status("OK".into()),
            Value::Double(1.5),
            Value::Array(vec![]),
        ];
        for cmd in [&get, &set, &incr] {
            let s = ReplyShape::of(cmd);
            for reply in &replies {
                let fast = s.canonicalize(reply.clone());
                let full = s.reshape(reply.clone());
                assert_eq!(
                    fast.as_ref().ok(),
                    full.as_ref().ok(),
                    "{} with {reply:?}",
                    cmd.name()
                );
                assert_eq!(
                    fast.is_err(),
                    full.is_err(),
                    "{} with {reply:?}",
                    cmd.name()
                );
            }
        }
    }

    #[test]
    fn hgetall_flat_or_map_becomes_map() {
        let cmd = Command::Hgetall { key: "h".into() };
        let v = Value::Array(vec![bs("f"), bs("v"), bs("g"), bs("w")]);
        let map = Value::Map(vec![(bs("f"), bs("v")), (bs("g"), bs("w"))]);
        assert_eq!(shape(&cmd, v).unwrap(), map);
        assert_eq!(shape(&cmd, map.clone()).unwrap(), map);
        assert_eq!(shape(&cmd, Value::Nil).unwrap(), Value::Map(vec![]));
        let err = shape(&cmd, Value::Array(vec![bs("f")])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server);
        assert!(err.to_string().contains("HGETALL"), "{err}");
    }

    #[test]
    fn withscores_flat_or_nested_becomes_pairs_of_doubles() {
        let cmd = Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: false,
            with_scores: true,
        };
        let want = Value::Array(vec![
            Value::Array(vec![bs("a"), Value::Double(1.5)]),
            Value::Array(vec![bs("b"), Value::Double(f64::INFINITY)]),
        ]);
        let flat = Value::Array(vec![bs("a"), bs("1.5"), bs("b"), bs("inf")]);
        assert_eq!(shape(&cmd, flat).unwrap(), want);
        let nested = Value::Array(vec![
            Value::Array(vec![bs("a"), Value::Double(1.5)]),
            Value::Array(vec![bs("b"), Value::Double(f64::INFINITY)]),
        ]);
        assert_eq!(shape(&cmd, nested).unwrap(), want);
        assert!(shape(&cmd, Value::Array(vec![bs("a"), bs("x")])).is_err());
    }

    #[test]
    fn scores_and_cursor_are_numbers() {
        let zscore = Command::Zscore {
            key: "z".into(),
            member: "m".into(),
        };
        assert_eq!(shape(&zscore, bs("2")).unwrap(), Value::Double(2.0));
        assert_eq!(shape(&zscore, bs("-0.25")).unwrap(), Value::Double(-0.25));
        assert_eq!(shape(&zscore, Value::Int(3)).unwrap(), Value::Double(3.0));
        assert!(shape(&zscore, bs("abc")).is_err());
        assert_eq!(shape(&zscore, Value::Nil).unwrap(), Value::Nil);
        let zincr = Command::Zadd {
            key: "z".into(),
            members: vec![(1.0, "m".into())],
            options: ZaddOptions {
                incr: true,
                ..Default::default()
            },
        };
        assert_eq!(shape(&zincr, Value::Nil).unwrap(), Value::Nil);
        let scan = Command::Scan {
            cursor: 0,
            pattern: None,
            count: None,
            type_name: None,
        };
        let v = Value::Array(vec![bs("17"), Value::Array(vec![bs("k")])]);
        assert_eq!(
            shape(&scan, v).unwrap(),
            Value::Array(vec![Value::Int(17), Value::Array(vec![bs("k")])])
        );
        let big = Value::Array(vec![bs("18446744073709551615"), Value::Array(vec![])]);
        assert_eq!(
            shape(&scan, big).unwrap(),
            Value::Array(vec![Value::Int(-1), Value::Array(vec![])])
        );
    }

    #[test]
    fn set_and_ping_replies_from_either_driver() {
        let set = Command::Set {
            key: "k".into(),
            value: Bytes::new(),
            options: SetOptions::default(),
        };
        assert_eq!(shape(&set, Value::Okay).unwrap(), Value::Okay);
        assert_eq!(shape(&set, bs("OK")).unwrap(), Value::Okay);
        assert_eq!(shape(&set, Value::Nil).unwrap(), Value::Nil);
        assert!(shape(&set, Value::Int(1)).is_err());
        assert_eq!(
            shape(&Command::Ping, bs("PONG")).unwrap(),
            Value::Status("PONG".into())
        );
        let get = Command::Get { key: "k".into() };
        assert_eq!(
            shape(&get, Value::Status("x".into())).unwrap(),
            Value::Bytes(Bytes::from_static(b"x"))
        );
        assert!(shape(&get, Value::Int(3)).is_err());
        let load = Command::ScriptLoad {
            script: "return 1".into(),
        };
        assert!(shape(&load, Value::Nil).is_err());
    }

    #[test]
    fn raw_and_scripts_pass_through() {
        let raw = Command::Raw {
            args: vec![Bytes::from_static(b"X")],
            keys: vec![],
            write: false,
            idempotent: true,
        };
        assert!(ReplyShape::of(&raw).is_raw());
        assert_eq!(shape(&raw, Value::Int(5)).unwrap(), Value::Int(5));
        let eval = Command::Eval {
            script: "return {1}".into(),
            keys: vec![],
            args: vec![],
        };
        assert!(!ReplyShape::of(&eval).is_raw());
        let v = Value::Array(vec![Value::Int(1)]);
        assert_eq!(shape(&eval, v.clone()).unwrap(), v);
    }
}
