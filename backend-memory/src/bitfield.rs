//! `BITFIELD`: integers of 1 to 64 bits at any bit offset of a string.
//!
//! Bit 0 is the most significant bit of the first byte, as in Redis. Reading past the end
//! reads zeros; writing past it grows the string with zero bytes. Every operation is
//! parsed before any runs, so a malformed call changes nothing.

use bytes::Bytes;

use resilience_core::{BackendError, Value};

/// An integer type: `i1`..`i64` or `u1`..`u63` (Redis has no `u64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Width {
    bits: u32,
    signed: bool,
}

impl Width {
    fn parse(arg: &[u8]) -> Result<Width, BackendError> {
        let bad = || {
            BackendError::from_reply(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            )
        };
        let (signed, digits) = match arg.split_first() {
            Some((b'i' | b'I', rest)) => (true, rest),
            Some((b'u' | b'U', rest)) => (false, rest),
            _ => return Err(bad()),
        };
        let bits: u32 = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let max = if signed { 64 } else { 63 };
        if bits == 0 || bits > max {
            return Err(bad());
        }
        Ok(Width { bits, signed })
    }

    fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    /// `v` wrapped into this type's range (two's complement).
    fn wrap(self, v: i128) -> i128 {
        let modulus = 1i128 << self.bits;
        let unsigned = v.rem_euclid(modulus);
        if self.signed && unsigned > self.max() {
            unsigned - modulus
        } else {
            unsigned
        }
    }
}

/// What `SET` and `INCRBY` do with a result outside the type's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Get(Width, u64),
    Set(Width, u64, i64, Overflow),
    Incrby(Width, u64, i64, Overflow),
}

fn int(arg: &[u8]) -> Result<i64, BackendError> {
    super::errors::parse_strict_i64(arg)
        .ok_or_else(|| BackendError::from_reply("ERR value is not an integer or out of range"))
}

/// An offset: bits, or `#n` for `n` times the type's width.
fn offset(arg: &[u8], width: Width) -> Result<u64, BackendError> {
    let bad = || BackendError::from_reply("ERR bit offset is not an integer or out of range");
    let (scaled, digits) = match arg.split_first() {
        Some((b'#', rest)) => (true, rest),
        _ => (false, arg),
    };
    let n = super::errors::parse_strict_i64(digits)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(bad)?;
    let bits = if scaled {
        n.checked_mul(u64::from(width.bits)).ok_or_else(bad)?
    } else {
        n
    };
    // Redis caps strings at 512 MiB.
    if bits + u64::from(width.bits) > 512 * 1024 * 1024 * 8 {
        return Err(bad());
    }
    Ok(bits)
}

fn parse(args: &[Bytes]) -> Result<Vec<Op>, BackendError> {
    let syntax = || BackendError::from_reply("ERR syntax error");
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 0;
    while i < args.len() {
        let word = args[i].to_ascii_uppercase();
        let arg = |k: usize| args.get(i + k).ok_or_else(syntax);
        match word.as_slice() {
            b"GET" => {
                let w = Width::parse(arg(1)?)?;
                ops.push(Op::Get(w, offset(arg(2)?, w)?));
                i += 3;
            }
            b"SET" | b"INCRBY" => {
                let w = Width::parse(arg(1)?)?;
                let at = offset(arg(2)?, w)?;
                let v = int(arg(3)?)?;
                ops.push(if word == b"SET" {
                    Op::Set(w, at, v, overflow)
                } else {
                    Op::Incrby(w, at, v, overflow)
                });
                i += 4;
            }
            b"OVERFLOW" => {
                overflow = match arg(1)?.to_ascii_uppercase().as_slice() {
                    b"WRAP" => Overflow::Wrap,
                    b"SAT" => Overflow::Sat,
                    b"FAIL" => Overflow::Fail,
                    _ => {
                        return Err(BackendError::from_reply(
                            "ERR Invalid OVERFLOW type specified",
                        ));
                    }
                };
                i += 2;
            }
            _ => return Err(syntax()),
        }
    }
    Ok(ops)
}

fn read(bytes: &[u8], at: u64, w: Width) -> i128 {
    let mut v: u64 = 0;
    for i in 0..u64::from(w.bits) {
        let bit = at + i;
        let byte = usize::try_from(bit / 8)
            .ok()
            .and_then(|b| bytes.get(b))
            .copied()
            .unwrap_or(0);
        v = (v << 1) | u64::from((byte >> (7 - (bit % 8))) & 1);
    }
    let v = i128::from(v);
    if w.signed && v > w.max() {
        v - (1i128 << w.bits)
    } else {
        v
    }
}

fn write(bytes: &mut Vec<u8>, at: u64, w: Width, v: i128) {
    let end = usize::try_from((at + u64::from(w.bits)).div_ceil(8)).unwrap_or(usize::MAX);
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    let raw = (v.rem_euclid(1i128 << w.bits)) as u64;
    for i in 0..u64::from(w.bits) {
        let bit = at + i;
        let on = (raw >> (u64::from(w.bits) - 1 - i)) & 1 == 1;
        let byte = &mut bytes[(bit / 8) as usize];
        let mask = 1u8 << (7 - (bit % 8));
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// The value to store for `v` under `overflow`, or `None` when `FAIL` refuses it.
fn fit(w: Width, v: i128, overflow: Overflow) -> Option<i128> {
    if (w.min()..=w.max()).contains(&v) {
        return Some(v);
    }
    match overflow {
        Overflow::Wrap => Some(w.wrap(v)),
        Overflow::Sat => Some(v.clamp(w.min(), w.max())),
        Overflow::Fail => None,
    }
}

/// Whether the operations `args` (after the key) would write: a missing key is created
/// only then.
pub(super) fn writes(args: &[Bytes]) -> Result<bool, BackendError> {
    Ok(parse(args)?.iter().any(|op| !matches!(op, Op::Get(..))))
}

/// Runs the operations `args` (after the key) on `bytes`; one reply per `GET`, `SET` and
/// `INCRBY`, in order: `GET` the value, `SET` the previous value, `INCRBY` the new value
/// (`Nil` when `OVERFLOW FAIL` refused it).
pub(super) fn run(bytes: &mut Vec<u8>, args: &[Bytes]) -> Result<Value, BackendError> {
    let ops = parse(args)?;
    let mut replies = Vec::with_capacity(ops.len());
    for op in ops {
        let reply = match op {
            Op::Get(w, at) => Some(read(bytes, at, w)),
            Op::Set(w, at, v, overflow) => {
                let old = read(bytes, at, w);
                fit(w, i128::from(v), overflow).map(|v| {
                    write(bytes, at, w, v);
                    old
                })
            }
            Op::Incrby(w, at, delta, overflow) => {
                let new = read(bytes, at, w) + i128::from(delta);
                fit(w, new, overflow).inspect(|&v| write(bytes, at, w, v))
            }
        };
        replies.push(reply.map_or(Value::Nil, |v| Value::Int(v as i64)));
    }
    Ok(Value::Array(replies))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn ints(v: Value) -> Vec<Option<i64>> {
        match v {
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::Int(n) => Some(n),
                    _ => None,
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counters_at_fixed_offsets_behave_as_in_redis() {
        let mut s = vec![3u8];
        let r = run(
            &mut s,
            &words("OVERFLOW SAT INCRBY u32 8 1 SET i64 40 1700000000000"),
        )
        .unwrap();
        assert_eq!(ints(r), [Some(1), Some(0)]);
        assert_eq!(s.len(), 13);
        assert_eq!(s[0], 3, "bits before the field are kept");
        let r = run(&mut s, &words("GET u32 8 GET i64 40 INCRBY u32 #0 5")).unwrap();
        assert_eq!(
            ints(r),
            [Some(1), Some(1_700_000_000_000), Some(3 * 16_777_216 + 5)]
        );
    }

    #[test]
    fn overflow_wraps_saturates_or_fails() {
        let mut s = Vec::new();
        assert_eq!(
            ints(run(&mut s, &words("SET u8 0 255 INCRBY u8 0 1")).unwrap()),
            [Some(0), Some(0)]
        );
        assert_eq!(
            ints(run(&mut s, &words("OVERFLOW SAT INCRBY i8 0 200")).unwrap()),
            [Some(127)]
        );
        assert_eq!(
            ints(run(&mut s, &words("OVERFLOW FAIL INCRBY i8 0 1")).unwrap()),
            [None]
        );
        assert_eq!(
            ints(run(&mut s, &words("GET i8 0 GET u4 0 GET i4 4")).unwrap()),
            [Some(127), Some(7), Some(-1)]
        );
    }

    #[test]
    fn malformed_calls_are_refused_before_anything_runs() {
        let mut s = vec![1u8];
        for bad in [
            "GET u64 0",
            "GET x8 0",
            "SET u8 -1 1",
            "INCRBY u8 0",
            "OVERFLOW NOPE",
            "FROB",
        ] {
            assert!(run(&mut s, &words(bad)).is_err(), "{bad}");
        }
        assert!(run(&mut s, &words("SET u8 0 9 GET u64 0")).is_err());
        assert_eq!(s, [1], "nothing ran");
    }
}
