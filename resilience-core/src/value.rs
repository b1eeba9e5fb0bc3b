//! Replies as data.
//!
//! Its guide is in the docs of its main type.

use bytes::Bytes;

use crate::Error;

/// A Redis reply, independent of the driver and the protocol version.
///
/// [`Value`] mirrors RESP. Each [`Command`](crate::Command) documents the canonical shape a
/// backend must return; the typed accessors here turn a reply of the wrong shape into
/// [`Error::UnexpectedReply`] instead of a panic.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// The null reply (`GET` of a missing key).
    Nil,
    /// `+OK`.
    Okay,
    /// Any other simple-string status (`+PONG`, `+QUEUED`).
    Status(String),
    /// An integer reply.
    Int(i64),
    /// A double reply (RESP3, and canonical for scores and `HINCRBYFLOAT`).
    Double(f64),
    /// A bulk string: binary data.
    Bytes(Bytes),
    /// An array reply.
    Array(Vec<Value>),
    /// A map reply, in server order (canonical for `HGETALL`).
    Map(Vec<(Value, Value)>),
}

impl Value {
    fn unexpected(self, wanted: &'static str) -> Error {
        Error::UnexpectedReply {
            expected: wanted,
            got: self.kind_name(),
        }
    }

    /// A short name of the variant, for error messages (never the data itself).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Okay => "ok",
            Value::Status(_) => "status",
            Value::Int(_) => "integer",
            Value::Double(_) => "double",
            Value::Bytes(_) => "bulk string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// `Nil` as `None`, a bulk string as `Some`; anything else is an error.
    pub fn into_opt_bytes(self) -> Result<Option<Bytes>, Error> {
        match self {
            Value::Nil => Ok(None),
            Value::Bytes(b) => Ok(Some(b)),
            Value::Status(s) => Ok(Some(Bytes::from(s))),
            other => Err(other.unexpected("bulk string or nil")),
        }
    }

    /// An integer reply (a bulk string holding an integer is accepted too).
    pub fn into_int(self) -> Result<i64, Error> {
        match self {
            Value::Int(i) => Ok(i),
            Value::Bytes(ref b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.unexpected("integer")),
            other => Err(other.unexpected("integer")),
        }
    }

    /// A double reply (an integer or a bulk string holding a number is accepted too).
    pub fn into_double(self) -> Result<f64, Error> {
        match self {
            Value::Double(d) => Ok(d),
            Value::Int(i) => Ok(i as f64),
            Value::Bytes(ref b) => std::str::from_utf8(b)
                .ok()
                .and_then(parse_redis_double)
                .ok_or_else(|| self.unexpected("double")),
            other => Err(other.unexpected("double")),
        }
    }

    /// `Nil` as `None`, otherwise [`Value::into_double`].
    pub fn into_opt_double(self) -> Result<Option<f64>, Error> {
        match self {
            Value::Nil => Ok(None),
            other => other.into_double().map(Some),
        }
    }

    /// `Okay` as `true`, `Nil` as `false` (a `SET NX` that did not set).
    pub fn into_set_result(self) -> Result<bool, Error> {
        match self {
            Value::Okay => Ok(true),
            Value::Status(ref s) if s.eq_ignore_ascii_case("OK") => Ok(true),
            Value::Nil => Ok(false),
            other => Err(other.unexpected("OK or nil")),
        }
    }

    /// An array reply's elements.
    pub fn into_array(self) -> Result<Vec<Value>, Error> {
        match self {
            Value::Array(items) => Ok(items),
            Value::Nil => Ok(Vec::new()),
            other => Err(other.unexpected("array")),
        }
    }

    /// A bulk string as UTF-8 text.
    pub fn into_string(self) -> Result<String, Error> {
        match self {
            Value::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| Error::UnexpectedReply {
                expected: "UTF-8 text",
                got: "binary bulk string",
            }),
            Value::Status(s) => Ok(s),
            other => Err(other.unexpected("bulk string")),
        }
    }

    /// A map reply (or a flat RESP2 array of pairs) as field/value pairs of text and bytes.
    pub fn into_pairs(self) -> Result<Vec<(String, Bytes)>, Error> {
        let pair = |k: Value, v: Value| -> Result<(String, Bytes), Error> {
            let v = v.into_opt_bytes()?.unwrap_or_default();
            Ok((k.into_string()?, v))
        };
        match self {
            Value::Map(pairs) => pairs.into_iter().map(|(k, v)| pair(k, v)).collect(),
            Value::Array(items) => {
                if items.len() % 2 != 0 {
                    return Err(Error::UnexpectedReply {
                        expected: "even-length array",
                        got: "odd-length array",
                    });
                }
                let mut out = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    out.push(pair(k, v)?);
                }
                Ok(out)
            }
            Value::Nil => Ok(Vec::new()),
            other => Err(other.unexpected("map")),
        }
    }

    /// Members of a sorted-set range reply without scores.
    pub fn into_members(self) -> Result<Vec<String>, Error> {
        self.into_array()?
            .into_iter()
            .map(Value::into_string)
            .collect()
    }

    /// Members with scores of a `WITHSCORES` range reply (canonical pairs, or a flat array).
    pub fn into_scored_members(self) -> Result<Vec<(String, f64)>, Error> {
        let items = self.into_array()?;
        let mut out = Vec::with_capacity(items.len());
        let mut flat = Vec::new();
        for item in items {
            match item {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut it = pair.into_iter();
                    if let (Some(m), Some(s)) = (it.next(), it.next()) {
                        out.push((m.into_string()?, s.into_double()?));
                    }
                }
                other => flat.push(other),
            }
        }
        if !flat.is_empty() {
            if flat.len() % 2 != 0 {
                return Err(Error::UnexpectedReply {
                    expected: "member/score pairs",
                    got: "odd-length array",
                });
            }
            let mut it = flat.into_iter();
            while let (Some(m), Some(s)) = (it.next(), it.next()) {
                out.push((m.into_string()?, s.into_double()?));
            }
        }
        Ok(out)
    }
}

/// A typed reply: what a [`Value`] of a command's canonical shape converts into. The typed
/// [`ResilientClient`](crate::ResilientClient) methods return these; a reply of another
/// shape is [`Error::UnexpectedReply`], never a panic.
pub trait FromReply: Sized {
    /// Converts the canonical reply.
    fn from_reply(value: Value) -> Result<Self, Error>;
}

impl FromReply for Value {
    fn from_reply(value: Value) -> Result<Self, Error> {
        Ok(value)
    }
}

/// `Okay` (or any status).
impl FromReply for () {
    fn from_reply(value: Value) -> Result<Self, Error> {
        match value {
            Value::Okay | Value::Status(_) => Ok(()),
            other => Err(other.unexpected("OK")),
        }
    }
}

impl FromReply for i64 {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_int()
    }
}

/// An integer flag (`1`/`0`), or `Okay`/`Nil`.
impl FromReply for bool {
    fn from_reply(value: Value) -> Result<Self, Error> {
        match value {
            Value::Int(n) => Ok(n > 0),
            Value::Okay => Ok(true),
            Value::Nil => Ok(false),
            other => Err(other.unexpected("integer")),
        }
    }
}

impl FromReply for f64 {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_double()
    }
}

impl FromReply for Option<f64> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_opt_double()
    }
}

impl FromReply for Option<i64> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        match value {
            Value::Nil => Ok(None),
            other => other.into_int().map(Some),
        }
    }
}

impl FromReply for Option<Bytes> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_opt_bytes()
    }
}

/// A bulk string; `Nil` as empty.
impl FromReply for Bytes {
    fn from_reply(value: Value) -> Result<Self, Error> {
        Ok(value.into_opt_bytes()?.unwrap_or_default())
    }
}

/// Text (a status or UTF-8 bulk string).
impl FromReply for String {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_string()
    }
}

/// An array of bulk strings; `Nil` as none, and one bulk string (a pop without a count)
/// as one.
impl FromReply for Vec<Bytes> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        match value {
            Value::Bytes(b) => Ok(vec![b]),
            other => other
                .into_array()?
                .into_iter()
                .map(|v| Ok(v.into_opt_bytes()?.unwrap_or_default()))
                .collect(),
        }
    }
}

impl FromReply for Vec<String> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_members()
    }
}

impl FromReply for Vec<Option<Bytes>> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value
            .into_array()?
            .into_iter()
            .map(Value::into_opt_bytes)
            .collect()
    }
}

impl FromReply for Vec<Option<f64>> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value
            .into_array()?
            .into_iter()
            .map(Value::into_opt_double)
            .collect()
    }
}

impl FromReply for Vec<Option<i64>> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value
            .into_array()?
            .into_iter()
            .map(<Option<i64>>::from_reply)
            .collect()
    }
}

impl FromReply for Vec<bool> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value
            .into_array()?
            .into_iter()
            .map(bool::from_reply)
            .collect()
    }
}

impl FromReply for Vec<(String, f64)> {
    fn from_reply(value: Value) -> Result<Self, Error> {
        value.into_scored_members()
    }
}

/// A scan page: the next cursor (0 when done) and the page's entries, flat.
impl FromReply for (u64, Vec<Bytes>) {
    fn from_reply(value: Value) -> Result<Self, Error> {
        let mut items = value.into_array()?.into_iter();
        match (items.next(), items.next(), items.next()) {
            (Some(cursor), Some(page), None) => {
                Ok((cursor.into_int()? as u64, Vec::<Bytes>::from_reply(page)?))
            }
            _ => Err(Error::UnexpectedReply {
                expected: "a cursor and a page",
                got: "another array",
            }),
        }
    }
}

/// Formats a score the way Redis accepts it (`inf`, `-inf`, or the shortest exact decimal).
pub fn format_score(v: f64) -> String {
    if v == f64::INFINITY {
        "+inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-inf".to_owned()
    } else {
        // `{}` on f64 prints the shortest representation that round-trips.
        format!("{v}")
    }
}

/// Parses an integer exactly as Redis's `string2ll` does: an optional `-`, digits with no
/// leading zero, no `+`, no spaces. `None` for anything else, or a value that does not fit `T`.
pub fn parse_strict_int<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let valid = match digits {
        [] => false,
        [b'0'] => bytes.len() == 1,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !valid {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Parses a score as Redis prints it (`inf`, `+inf`, `-inf`, decimals, exponents).
pub fn parse_redis_double(s: &str) -> Option<f64> {
    match s {
        "inf" | "+inf" | "Inf" | "+Inf" => Some(f64::INFINITY),
        "-inf" | "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_accessors_reject_wrong_shapes_without_panicking() {
        assert!(matches!(
            Value::Int(1).into_opt_bytes(),
            Err(Error::UnexpectedReply { .. })
        ));
        assert_eq!(Value::from("12").into_int().ok(), Some(12));
        assert_eq!(Value::from("1.5").into_double().ok(), Some(1.5));
        assert_eq!(
            Value::from("-inf").into_double().ok(),
            Some(f64::NEG_INFINITY)
        );
        assert!(Value::from("x").into_int().is_err());
    }

    #[test]
    fn pairs_come_from_maps_and_flat_arrays() {
        let map = Value::Map(vec![(Value::from("f"), Value::from("v"))]);
        let flat = Value::Array(vec![Value::from("f"), Value::from("v")]);
        let want = vec![("f".to_owned(), Bytes::from_static(b"v"))];
        assert_eq!(map.into_pairs().ok(), Some(want.clone()));
        assert_eq!(flat.into_pairs().ok(), Some(want));
        assert!(Value::Array(vec![Value::from("f")]).into_pairs().is_err());
    }

    #[test]
    fn scored_members_accept_pairs_and_flat_arrays() {
        let pairs = Value::Array(vec![Value::Array(vec![
            Value::from("a"),
            Value::Double(1.0),
        ])]);
        let flat = Value::Array(vec![Value::from("a"), Value::from("1")]);
        let want = vec![("a".to_owned(), 1.0)];
        assert_eq!(pairs.into_scored_members().ok(), Some(want.clone()));
        assert_eq!(flat.into_scored_members().ok(), Some(want));
    }
}
