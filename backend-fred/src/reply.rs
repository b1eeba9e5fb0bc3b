//! Replies: fred's frames and values to the core's canonical [`Value`].
//!
//! Two steps. First a generic conversion:
//! - a single command is sent with `custom_raw`, so its reply arrives as the protocol frame
//!   ([`Resp3Frame`]; fred upgrades RESP2 frames to their RESP3 form) and
//!   [`frame_to_value`] keeps every distinction RESP makes (status vs bulk string);
//! - a pipeline or transaction only hands back fred's [`FredValue`], which merges status
//!   and bulk strings into one `String`; [`fred_to_value`] maps those to `Bytes`, and `"OK"`
//!   to [`Value::Okay`] only for a `Raw` command (documented in the crate docs).
//!
//! Then [`canonicalize`] gives each [`Command`] the exact shape its docs promise: RESP2 flat
//! `HGETALL` arrays become a `Map`, `WITHSCORES` flat arrays become `[member, Double]`
//! pairs, scores sent as bulk strings become `Double` (parsed with
//! [`parse_redis_double`]), the `SCAN` cursor becomes an `Int`.

use bytes::Bytes;
use fred::types::{Resp3Frame, Value as FredValue};
use resilience_core::value::parse_redis_double;
use resilience_core::{BackendError, Command, Value};

/// The reply shape a command promises, taken from the command before it is consumed by
/// translation (so no command is cloned on the hot path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `PING`: `Status("PONG")`.
    Pong,
    /// `SET`: `Okay` or `Nil`.
    SetReply,
    /// `GET`, `HGET`: `Bytes` or `Nil`.
    BulkOrNil,
    /// Integer replies.
    Int,
    /// `MGET`: an array as it is.
    Array,
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

impl Shape {
    /// The shape `cmd` promises.
    pub(crate) fn of(cmd: &Command) -> (Shape, &'static str) {
        let shape = match cmd {
            Command::Ping => Shape::Pong,
            Command::Set { .. } => Shape::SetReply,
            Command::Get { .. } | Command::Hget { .. } => Shape::BulkOrNil,
            Command::Del { .. }
            | Command::Exists { .. }
            | Command::Expire { .. }
            | Command::Pexpire { .. }
            | Command::Ttl { .. }
            | Command::Pttl { .. }
            | Command::Incrby { .. }
            | Command::Hset { .. }
            | Command::Hdel { .. }
            | Command::Hincrby { .. }
            | Command::Zrem { .. }
            | Command::Zcard { .. }
            | Command::Zremrangebyrank { .. } => Shape::Int,
            Command::Mget { .. } => Shape::Array,
            Command::Hgetall { .. } => Shape::Map,
            Command::Hincrbyfloat { .. } => Shape::Double,
            Command::Zadd { options, .. } => {
                if options.incr {
                    Shape::OptDouble
                } else {
                    Shape::Int
                }
            }
            Command::Zrange { with_scores, .. } | Command::Zrangebyscore { with_scores, .. } => {
                if *with_scores {
                    Shape::ScoredMembers
                } else {
                    Shape::Members
                }
            }
            Command::Zscore { .. } => Shape::OptDouble,
            Command::ScriptLoad { .. } => Shape::Sha,
            Command::Scan { .. } => Shape::Scan,
            Command::Eval { .. } | Command::Evalsha { .. } => Shape::Passthrough,
            Command::Raw { .. } => Shape::Raw,
        };
        (shape, cmd.name())
    }
}

/// A reply that does not have the shape its command promises.
fn shape(cmd: &str, what: &str) -> BackendError {
    BackendError::new(
        resilience_core::ErrorKind::Server,
        format!("unexpected reply to {cmd}: {what}"),
    )
}

/// Converts one protocol frame. Error frames (also nested ones) become the command's error,
/// classified by [`BackendError::from_reply`].
pub(crate) fn frame_to_value(frame: Resp3Frame) -> Result<Value, BackendError> {
    Ok(match frame {
        Resp3Frame::Null => Value::Nil,
        Resp3Frame::SimpleString { data, .. } => {
            if &data[..] == b"OK" {
                Value::Okay
            } else {
                Value::Status(String::from_utf8_lossy(&data).into_owned())
            }
        }
        Resp3Frame::SimpleError { data, .. } => return Err(BackendError::from_reply(&data)),
        Resp3Frame::BlobError { data, .. } => {
            return Err(BackendError::from_reply(&String::from_utf8_lossy(&data)));
        }
        Resp3Frame::BlobString { data, .. }
        | Resp3Frame::BigNumber { data, .. }
        | Resp3Frame::VerbatimString { data, .. }
        | Resp3Frame::ChunkedString(data) => Value::Bytes(data),
        Resp3Frame::Number { data, .. } => Value::Int(data),
        Resp3Frame::Double { data, .. } => Value::Double(data),
        Resp3Frame::Boolean { data, .. } => Value::Int(i64::from(data)),
        Resp3Frame::Array { data, .. } | Resp3Frame::Push { data, .. } => Value::Array(
            data.into_iter()
                .map(frame_to_value)
                .collect::<Result<_, _>>()?,
        ),
        Resp3Frame::Set { data, .. } => Value::Array(
            data.into_iter()
                .map(frame_to_value)
                .collect::<Result<_, _>>()?,
        ),
        Resp3Frame::Map { data, .. } => Value::Map(
            data.into_iter()
                .map(|(k, v)| Ok((frame_to_value(k)?, frame_to_value(v)?)))
                .collect::<Result<_, BackendError>>()?,
        ),
        Resp3Frame::Hello { .. } => {
            return Err(BackendError::new(
                resilience_core::ErrorKind::Server,
                "unexpected HELLO frame in a reply",
            ));
        }
    })
}

/// Converts fred's decoded value (pipelines and transactions). `raw` says whether the
/// command was `Raw`, whose `"OK"` string is taken as the status `OK`.
pub(crate) fn fred_to_value(v: FredValue, raw: bool) -> Value {
    match v {
        FredValue::Null => Value::Nil,
        FredValue::Boolean(b) => Value::Int(i64::from(b)),
        FredValue::Integer(i) => Value::Int(i),
        FredValue::Double(d) => Value::Double(d),
        FredValue::String(s) => {
            if raw && &s[..] == "OK" {
                Value::Okay
            } else {
                Value::Bytes(s.into_inner())
            }
        }
        FredValue::Bytes(b) => Value::Bytes(b),
        FredValue::Queued => Value::Status("QUEUED".to_owned()),
        FredValue::Map(m) => Value::Map(
            m.inner()
                .into_iter()
                .map(|(k, v)| (Value::Bytes(k.into_bytes()), fred_to_value(v, raw)))
                .collect(),
        ),
        FredValue::Array(items) => {
            Value::Array(items.into_iter().map(|v| fred_to_value(v, raw)).collect())
        }
    }
}

fn to_double(cmd: &str, v: Value) -> Result<Value, BackendError> {
    match v {
        Value::Double(d) => Ok(Value::Double(d)),
        Value::Int(i) => Ok(Value::Double(i as f64)),
        Value::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(parse_redis_double)
            .map(Value::Double)
            .ok_or_else(|| shape(cmd, "score is not a number")),
        Value::Status(s) => parse_redis_double(&s)
            .map(Value::Double)
            .ok_or_else(|| shape(cmd, "score is not a number")),
        other => Err(shape(cmd, other.kind_name())),
    }
}

fn to_opt_double(cmd: &str, v: Value) -> Result<Value, BackendError> {
    match v {
        Value::Nil => Ok(Value::Nil),
        other => to_double(cmd, other),
    }
}

fn to_int(cmd: &str, v: Value) -> Result<Value, BackendError> {
    match v {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Bytes(b) => parse_int(&b)
            .map(Value::Int)
            .ok_or_else(|| shape(cmd, "not an integer")),
        other => Err(shape(cmd, other.kind_name())),
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
                return Err(shape(cmd, "odd-length array"));
            }
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            Ok(out)
        }
        other => Err(shape(cmd, other.kind_name())),
    }
}

fn scored(cmd: &str, v: Value) -> Result<Value, BackendError> {
    let items = match v {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => return Err(shape(cmd, other.kind_name())),
    };
    let already_pairs = items
        .iter()
        .all(|i| matches!(i, Value::Array(p) if p.len() == 2));
    let pairs: Vec<(Value, Value)> = if already_pairs {
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

/// Gives `v` the canonical shape `shape` (of the command named `cmd`) documents.
pub(crate) fn canonicalize(
    shape_of: (Shape, &'static str),
    v: Value,
) -> Result<Value, BackendError> {
    let (kind, cmd) = shape_of;
    match kind {
        Shape::Pong => match v {
            ref t if is_text(t, "PONG") => Ok(Value::Status("PONG".to_owned())),
            other => Ok(other),
        },
        Shape::SetReply => match v {
            Value::Nil => Ok(Value::Nil),
            ref t if matches!(t, Value::Okay) || is_text(t, "OK") => Ok(Value::Okay),
            other => Err(shape(cmd, other.kind_name())),
        },
        Shape::BulkOrNil => match v {
            Value::Nil | Value::Bytes(_) => Ok(v),
            Value::Status(s) => Ok(Value::Bytes(Bytes::from(s))),
            other => Err(shape(cmd, other.kind_name())),
        },
        Shape::Int => to_int(cmd, v),
        Shape::Array => match v {
            Value::Array(_) => Ok(v),
            other => Err(shape(cmd, other.kind_name())),
        },
        Shape::Map => Ok(Value::Map(flat_to_pairs(cmd, v)?)),
        Shape::Double => to_double(cmd, v),
        Shape::OptDouble => to_opt_double(cmd, v),
        Shape::ScoredMembers => scored(cmd, v),
        Shape::Members => match v {
            Value::Array(_) => Ok(v),
            Value::Nil => Ok(Value::Array(Vec::new())),
            other => Err(shape(cmd, other.kind_name())),
        },
        Shape::Sha => match v {
            Value::Bytes(_) => Ok(v),
            Value::Status(s) => Ok(Value::Bytes(Bytes::from(s))),
            other => Err(shape(cmd, other.kind_name())),
        },
        Shape::Scan => match v {
            Value::Array(items) if items.len() == 2 => {
                let mut it = items.into_iter();
                match (it.next(), it.next()) {
                    (Some(cursor), Some(keys @ Value::Array(_))) => {
                        Ok(Value::Array(vec![to_int(cmd, cursor)?, keys]))
                    }
                    _ => Err(shape(cmd, "cursor and keys")),
                }
            }
            other => Err(shape(cmd, other.kind_name())),
        },
        Shape::Passthrough | Shape::Raw => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use resilience_core::{SetOptions, ZaddOptions};

    fn bs(s: &str) -> Value {
        Value::from(s)
    }

    #[test]
    fn frames_keep_status_and_bulk_apart() {
        let ok = Resp3Frame::SimpleString {
            data: Bytes::from_static(b"OK"),
            attributes: None,
        };
        assert_eq!(frame_to_value(ok).unwrap(), Value::Okay);
        let bulk_ok = Resp3Frame::BlobString {
            data: Bytes::from_static(b"OK"),
            attributes: None,
        };
        assert_eq!(frame_to_value(bulk_ok).unwrap(), bs("OK"));
        let err = Resp3Frame::SimpleError {
            data: "NOSCRIPT No matching script".into(),
            attributes: None,
        };
        assert!(frame_to_value(err).unwrap_err().is_noscript());
    }

    #[test]
    fn hgetall_flat_becomes_map() {
        let cmd = Command::Hgetall { key: "h".into() };
        let v = Value::Array(vec![bs("f"), bs("v"), bs("g"), bs("w")]);
        assert_eq!(
            canonicalize(Shape::of(&cmd), v).unwrap(),
            Value::Map(vec![(bs("f"), bs("v")), (bs("g"), bs("w"))])
        );
        assert!(canonicalize(Shape::of(&cmd), Value::Array(vec![bs("f")])).is_err());
    }

    #[test]
    fn withscores_flat_becomes_pairs_of_doubles() {
        let cmd = Command::Zrange {
            key: "z".into(),
            start: 0,
            stop: -1,
            rev: false,
            with_scores: true,
        };
        let v = Value::Array(vec![bs("a"), bs("1.5"), bs("b"), bs("inf")]);
        assert_eq!(
            canonicalize(Shape::of(&cmd), v).unwrap(),
            Value::Array(vec![
                Value::Array(vec![bs("a"), Value::Double(1.5)]),
                Value::Array(vec![bs("b"), Value::Double(f64::INFINITY)]),
            ])
        );
    }

    #[test]
    fn scores_and_cursor_are_numbers() {
        let zscore = Command::Zscore {
            key: "z".into(),
            member: "m".into(),
        };
        assert_eq!(
            canonicalize(Shape::of(&zscore), bs("2")).unwrap(),
            Value::Double(2.0)
        );
        assert_eq!(
            canonicalize(Shape::of(&zscore), Value::Nil).unwrap(),
            Value::Nil
        );
        let zincr = Command::Zadd {
            key: "z".into(),
            members: vec![(1.0, "m".into())],
            options: ZaddOptions {
                incr: true,
                ..Default::default()
            },
        };
        assert_eq!(
            canonicalize(Shape::of(&zincr), Value::Nil).unwrap(),
            Value::Nil
        );
        let scan = Command::Scan {
            cursor: 0,
            pattern: None,
            count: None,
        };
        let v = Value::Array(vec![bs("17"), Value::Array(vec![bs("k")])]);
        assert_eq!(
            canonicalize(Shape::of(&scan), v).unwrap(),
            Value::Array(vec![Value::Int(17), Value::Array(vec![bs("k")])])
        );
    }

    #[test]
    fn set_replies_from_either_path() {
        let set = Command::Set {
            key: "k".into(),
            value: Bytes::new(),
            options: SetOptions::default(),
        };
        assert_eq!(
            canonicalize(Shape::of(&set), Value::Okay).unwrap(),
            Value::Okay
        );
        assert_eq!(
            canonicalize(Shape::of(&set), bs("OK")).unwrap(),
            Value::Okay
        );
        assert_eq!(
            canonicalize(Shape::of(&set), Value::Nil).unwrap(),
            Value::Nil
        );
        assert!(canonicalize(Shape::of(&set), Value::Int(1)).is_err());
        assert_eq!(
            canonicalize(Shape::of(&Command::Ping), bs("PONG")).unwrap(),
            Value::Status("PONG".into())
        );
    }

    #[test]
    fn fred_values_convert() {
        let v = FredValue::Array(vec![
            FredValue::String("OK".into()),
            FredValue::Null,
            FredValue::Integer(3),
        ]);
        assert_eq!(
            fred_to_value(v.clone(), false),
            Value::Array(vec![bs("OK"), Value::Nil, Value::Int(3)])
        );
        assert_eq!(
            fred_to_value(v, true),
            Value::Array(vec![Value::Okay, Value::Nil, Value::Int(3)])
        );
    }
}
