//! Conversion of redis-rs replies into the core's canonical [`Value`]s.
//!
//! Two steps:
//!
//! 1. [`convert`] maps each `redis::Value` variant onto [`Value`] one to one (RESP3 types
//!    included, so a `protocol=resp3` connection would still work): `SimpleString` →
//!    `Status`, `BulkString`/`VerbatimString`/`BigNumber` → `Bytes`, `Set`/`Push` → `Array`,
//!    `Boolean` → `Int` 0/1 (as Lua and RESP2 have it), `Attribute` → its data. A
//!    `ServerError` anywhere, even nested inside an array, fails the whole reply: callers
//!    never see a silent partial success.
//! 2. [`shape`] brings the reply into the shape the command documents, undoing RESP2's
//!    flattening: `HGETALL` → `Map`, `WITHSCORES` → `[member, Double]` pairs, scores and
//!    `HINCRBYFLOAT` → `Double` (parsed with
//!    [`parse_redis_double`](resilience_core::value::parse_redis_double)), `SCAN`'s cursor →
//!    `Int`.
//!
//! A reply of the wrong shape is a [`ErrorKind::Server`] error that names the shapes, never
//! a panic.

use bytes::Bytes;
use resilience_core::value::parse_redis_double;
use resilience_core::{BackendError, ErrorKind, Value};

use crate::classify::from_server_error;
use crate::translate::ReplyShape;

/// Converts a driver reply one to one; a server error anywhere inside becomes `Err`.
pub(crate) fn convert(v: redis::Value) -> Result<Value, BackendError> {
    Ok(match v {
        redis::Value::Nil => Value::Nil,
        redis::Value::Int(i) => Value::Int(i),
        redis::Value::BulkString(b) => Value::Bytes(Bytes::from(b)),
        redis::Value::Array(items) | redis::Value::Set(items) => Value::Array(convert_all(items)?),
        redis::Value::SimpleString(s) => {
            if s == "OK" {
                Value::Okay
            } else {
                Value::Status(s)
            }
        }
        redis::Value::Okay => Value::Okay,
        redis::Value::Map(pairs) => {
            let mut out = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                out.push((convert(k)?, convert(v)?));
            }
            Value::Map(out)
        }
        redis::Value::Attribute { data, .. } => convert(*data)?,
        redis::Value::Double(d) => Value::Double(d),
        redis::Value::Boolean(b) => Value::Int(i64::from(b)),
        redis::Value::VerbatimString { text, .. } => Value::Bytes(Bytes::from(text)),
        redis::Value::BigNumber(n) => Value::Bytes(Bytes::from(n)),
        redis::Value::Push { data, .. } => Value::Array(convert_all(data)?),
        redis::Value::ServerError(err) => return Err(from_server_error(&err)),
        // `redis::Value` is non-exhaustive: a future variant is reported, not guessed.
        #[allow(unreachable_patterns)]
        _ => {
            return Err(unexpected(
                "a known reply type",
                "an unknown redis-rs value",
            ));
        }
    })
}

fn convert_all(items: Vec<redis::Value>) -> Result<Vec<Value>, BackendError> {
    items.into_iter().map(convert).collect()
}

fn unexpected(expected: &str, got: &str) -> BackendError {
    BackendError::new(
        ErrorKind::Server,
        format!("unexpected reply: expected {expected}, got {got}"),
    )
}

/// Brings a converted reply into the canonical shape `shape` describes.
pub(crate) fn shape(shape: ReplyShape, v: Value) -> Result<Value, BackendError> {
    match shape {
        ReplyShape::AsIs => Ok(v),
        ReplyShape::Double => to_double(v),
        ReplyShape::Map => match v {
            Value::Map(pairs) => Ok(Value::Map(pairs)),
            Value::Array(items) => Ok(Value::Map(pairs(items)?)),
            Value::Nil => Ok(Value::Map(Vec::new())),
            other => Err(unexpected("map", other.kind_name())),
        },
        ReplyShape::ScoredMembers => {
            let items = match v {
                Value::Array(items) => items,
                Value::Nil => Vec::new(),
                other => return Err(unexpected("array", other.kind_name())),
            };
            // RESP3 already nests the pairs; RESP2 sends them flat.
            let nested = items
                .iter()
                .all(|item| matches!(item, Value::Array(pair) if pair.len() == 2));
            let pairs: Vec<(Value, Value)> = if nested && !items.is_empty() {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Value::Array(pair) = item {
                        let mut it = pair.into_iter();
                        if let (Some(m), Some(s)) = (it.next(), it.next()) {
                            out.push((m, s));
                        }
                    }
                }
                out
            } else {
                pairs(items)?
            };
            let mut out = Vec::with_capacity(pairs.len());
            for (member, score) in pairs {
                out.push(Value::Array(vec![member, to_double(score)?]));
            }
            Ok(Value::Array(out))
        }
        ReplyShape::Scan => {
            let Value::Array(items) = v else {
                return Err(unexpected("[cursor, keys]", v.kind_name()));
            };
            let mut it = items.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(cursor), Some(keys @ Value::Array(_)), None) => {
                    Ok(Value::Array(vec![Value::Int(to_cursor(cursor)?), keys]))
                }
                _ => Err(unexpected("[cursor, keys]", "another array")),
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, BackendError> {
    if !items.len().is_multiple_of(2) {
        return Err(unexpected("even-length array", "odd-length array"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn to_double(v: Value) -> Result<Value, BackendError> {
    match v {
        Value::Nil => Ok(Value::Nil),
        Value::Double(d) => Ok(Value::Double(d)),
        Value::Int(i) => Ok(Value::Double(i as f64)),
        Value::Bytes(ref b) => std::str::from_utf8(b)
            .ok()
            .and_then(parse_redis_double)
            .map(Value::Double)
            .ok_or_else(|| unexpected("a number", "a non-numeric bulk string")),
        Value::Status(ref s) => parse_redis_double(s)
            .map(Value::Double)
            .ok_or_else(|| unexpected("a number", "a non-numeric status")),
        other => Err(unexpected("a number", other.kind_name())),
    }
}

fn to_cursor(v: Value) -> Result<i64, BackendError> {
    match v {
        Value::Int(i) => Ok(i),
        Value::Bytes(ref b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .and_then(|c| i64::try_from(c).ok())
            .ok_or_else(|| unexpected("a cursor", "a non-numeric bulk string")),
        other => Err(unexpected("a cursor", other.kind_name())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    fn b(s: &str) -> Value {
        Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn converts_every_variant() {
        assert_eq!(convert(redis::Value::Nil).unwrap(), Value::Nil);
        assert_eq!(convert(redis::Value::Okay).unwrap(), Value::Okay);
        assert_eq!(
            convert(redis::Value::SimpleString("PONG".into())).unwrap(),
            Value::Status("PONG".into())
        );
        assert_eq!(
            convert(redis::Value::SimpleString("OK".into())).unwrap(),
            Value::Okay
        );
        assert_eq!(convert(redis::Value::Int(-3)).unwrap(), Value::Int(-3));
        assert_eq!(convert(bulk("x")).unwrap(), b("x"));
        assert_eq!(
            convert(redis::Value::Double(1.5)).unwrap(),
            Value::Double(1.5)
        );
        assert_eq!(convert(redis::Value::Boolean(true)).unwrap(), Value::Int(1));
        assert_eq!(
            convert(redis::Value::VerbatimString {
                format: redis::VerbatimFormat::Text,
                text: "hello".into()
            })
            .unwrap(),
            b("hello")
        );
        assert_eq!(
            convert(redis::Value::Set(vec![bulk("a")])).unwrap(),
            Value::Array(vec![b("a")])
        );
        assert_eq!(
            convert(redis::Value::Map(vec![(bulk("f"), bulk("v"))])).unwrap(),
            Value::Map(vec![(b("f"), b("v"))])
        );
        assert_eq!(
            convert(redis::Value::Attribute {
                data: Box::new(redis::Value::Int(7)),
                attributes: vec![]
            })
            .unwrap(),
            Value::Int(7)
        );
    }

    #[test]
    fn a_nested_server_error_fails_the_whole_reply() {
        let err = redis::parse_redis_value(b"*2\r\n:1\r\n-WRONGTYPE bad\r\n").unwrap();
        let got = convert(err).unwrap_err();
        assert_eq!(got.kind(), ErrorKind::Server);
        assert_eq!(got.code(), Some("WRONGTYPE"));
        assert_eq!(got.message(), "WRONGTYPE bad");
    }

    #[test]
    fn hgetall_flat_array_becomes_a_map() {
        let v = convert(redis::Value::Array(vec![
            bulk("a"),
            bulk("1"),
            bulk("b"),
            bulk("2"),
        ]))
        .unwrap();
        assert_eq!(
            shape(ReplyShape::Map, v).unwrap(),
            Value::Map(vec![(b("a"), b("1")), (b("b"), b("2"))])
        );
        assert_eq!(
            shape(ReplyShape::Map, Value::Array(vec![])).unwrap(),
            Value::Map(vec![])
        );
        assert!(shape(ReplyShape::Map, Value::Array(vec![b("a")])).is_err());
        assert!(shape(ReplyShape::Map, Value::Int(1)).is_err());
    }

    #[test]
    fn scores_become_doubles_flat_or_nested() {
        let flat = Value::Array(vec![b("a"), b("1.5"), b("b"), b("inf")]);
        let want = Value::Array(vec![
            Value::Array(vec![b("a"), Value::Double(1.5)]),
            Value::Array(vec![b("b"), Value::Double(f64::INFINITY)]),
        ]);
        assert_eq!(shape(ReplyShape::ScoredMembers, flat).unwrap(), want);
        let nested = Value::Array(vec![
            Value::Array(vec![b("a"), Value::Double(1.5)]),
            Value::Array(vec![b("b"), Value::Double(f64::INFINITY)]),
        ]);
        assert_eq!(shape(ReplyShape::ScoredMembers, nested).unwrap(), want);
        assert_eq!(
            shape(ReplyShape::ScoredMembers, Value::Array(vec![])).unwrap(),
            Value::Array(vec![])
        );
        assert!(shape(ReplyShape::ScoredMembers, Value::Array(vec![b("a")])).is_err());
        assert!(
            shape(
                ReplyShape::ScoredMembers,
                Value::Array(vec![b("a"), b("x")])
            )
            .is_err()
        );
    }

    #[test]
    fn doubles_and_nil() {
        assert_eq!(
            shape(ReplyShape::Double, b("-0.25")).unwrap(),
            Value::Double(-0.25)
        );
        assert_eq!(
            shape(ReplyShape::Double, b("-inf")).unwrap(),
            Value::Double(f64::NEG_INFINITY)
        );
        assert_eq!(shape(ReplyShape::Double, Value::Nil).unwrap(), Value::Nil);
        assert_eq!(
            shape(ReplyShape::Double, Value::Int(3)).unwrap(),
            Value::Double(3.0)
        );
        assert!(shape(ReplyShape::Double, b("abc")).is_err());
    }

    #[test]
    fn scan_cursor_becomes_an_int() {
        let v = Value::Array(vec![b("42"), Value::Array(vec![b("k")])]);
        assert_eq!(
            shape(ReplyShape::Scan, v).unwrap(),
            Value::Array(vec![Value::Int(42), Value::Array(vec![b("k")])])
        );
        assert!(
            shape(
                ReplyShape::Scan,
                Value::Array(vec![b("x"), Value::Array(vec![])])
            )
            .is_err()
        );
        assert!(shape(ReplyShape::Scan, Value::Int(0)).is_err());
    }
}
