//! Conversion of redis-rs replies into the core's [`Value`]s, one to one.
//!
//! [`convert`] maps each `redis::Value` variant onto [`Value`] (RESP3 types included, so a
//! `protocol=resp3` connection works too): `SimpleString` → `Status` (`OK` → `Okay`),
//! `BulkString`/`VerbatimString`/`BigNumber` → `Bytes`, `Set`/`Push` → `Array`, `Boolean`
//! → `Int` 0/1 (as Lua and RESP2 have it), `Attribute` → its data. A `ServerError`
//! anywhere, even nested inside an array, fails the whole reply: callers never see a
//! silent partial success.
//!
//! The canonical shape of each command's reply (`HGETALL` as a `Map`, scores as `Double`,
//! …) is the core's job: [`ReplyShape`](resilience_core::backend::ReplyShape).

use bytes::Bytes;
use resilience_core::{BackendError, ErrorKind, Value};

use crate::classify::from_server_error;

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
}
