//! Replies: fred's frames and values to the core's [`Value`], one to one.
//!
//! - a single command is sent with `custom_raw`, so its reply arrives as the protocol frame
//!   ([`Resp3Frame`]; fred upgrades RESP2 frames to their RESP3 form) and
//!   [`frame_to_value`] keeps every distinction RESP makes (status vs bulk string);
//! - a pipeline or transaction, and the typed `GET` and `SET`, hand back fred's
//!   [`FredValue`], which merges status and bulk strings into one `String`;
//!   [`fred_to_value`] maps those to `Bytes`, and `"OK"` to [`Value::Okay`] only for a
//!   `Raw` command (documented in the crate docs) and a single `SET`, whose only string
//!   reply is that status.
//!
//! The canonical shape of each command's reply (`HGETALL` as a `Map`, scores as `Double`,
//! `SET`'s `OK` as `Okay`, …) is the core's job:
//! [`ReplyShape`](resilience_core::backend::ReplyShape).

use fred::types::{Resp3Frame, Value as FredValue};
use resilience_core::{BackendError, Value};

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

/// Converts fred's decoded value (pipelines, transactions, the typed `GET` and `SET`).
/// fred merges status and bulk strings; `ok_is_status` takes an `"OK"` string as the
/// status `OK`: for a `Raw` command, and for a `SET`, whose only string reply is that
/// status.
pub(crate) fn fred_to_value(v: FredValue, ok_is_status: bool) -> Value {
    match v {
        FredValue::Null => Value::Nil,
        FredValue::Boolean(b) => Value::Int(i64::from(b)),
        FredValue::Integer(i) => Value::Int(i),
        FredValue::Double(d) => Value::Double(d),
        FredValue::String(s) => {
            if ok_is_status && &s[..] == "OK" {
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
                .map(|(k, v)| (Value::Bytes(k.into_bytes()), fred_to_value(v, ok_is_status)))
                .collect(),
        ),
        FredValue::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| fred_to_value(v, ok_is_status))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

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
