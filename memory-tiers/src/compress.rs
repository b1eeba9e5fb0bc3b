//! IM compression: dropping transient fields, rounding floats, LZ4 for level 2.
//!
//! Level 1 ([`CompressionLevel::Light`]) drops the configured transient top-level fields of
//! an object content and rounds every non-integer number (in content, embedding and
//! importance) to 3 decimal places; everything else is kept exactly. Level 2
//! ([`CompressionLevel::Heavy`]) rounds to 1 place and stores the content's JSON compressed
//! with LZ4 behind a 4-byte little-endian length. Decoding checks that length against the
//! configured maximum before allocating, and any truncated or corrupt block is
//! [`Error::Corrupt`].

use crate::config::CompressionLevel;
use crate::error::{Error, Result};

/// Decimal places floats keep at a level (`None` keeps them exact).
pub(crate) fn places(level: CompressionLevel) -> Option<i32> {
    match level {
        CompressionLevel::None => None,
        CompressionLevel::Light => Some(3),
        CompressionLevel::Heavy => Some(1),
    }
}

/// Rounds `x` to `places` decimal places.
pub(crate) fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    let r = (x * scale).round() / scale;
    if r.is_finite() { r } else { x }
}

/// Applies a level's lossy steps to content: drops `transient` top-level fields and
/// rounds floats. Integers and strings are untouched.
pub(crate) fn reduce(
    content: &serde_json::Value,
    level: CompressionLevel,
    transient: &[String],
) -> serde_json::Value {
    let Some(p) = places(level) else {
        return content.clone();
    };
    let mut out = content.clone();
    if let serde_json::Value::Object(map) = &mut out {
        for field in transient {
            map.remove(field);
        }
    }
    round_floats(&mut out, p);
    out
}

fn round_floats(v: &mut serde_json::Value, p: i32) {
    match v {
        serde_json::Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            if let Some(x) = n.as_f64()
                && let Some(r) = serde_json::Number::from_f64(round_to(x, p))
            {
                *n = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| round_floats(i, p)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| round_floats(i, p)),
        _ => {}
    }
}

/// LZ4-compresses `data` behind its 4-byte little-endian length.
pub(crate) fn pack(data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + data.len() / 2);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&lz4_flex::block::compress(data));
    out
}

/// Undoes [`pack`], refusing a declared length over `max` and any corrupt block.
pub(crate) fn unpack(data: &[u8], max: usize) -> Result<Vec<u8>> {
    let (head, body) = data
        .split_first_chunk::<4>()
        .ok_or_else(|| Error::Corrupt("compressed content shorter than its header".to_owned()))?;
    let len = u32::from_le_bytes(*head) as usize;
    if len > max {
        return Err(Error::Corrupt(format!(
            "compressed content declares {len} bytes, over the limit of {max}"
        )));
    }
    let out = lz4_flex::block::decompress(body, len)
        .map_err(|e| Error::Corrupt(format!("compressed content does not decode: {e}")))?;
    if out.len() != len {
        return Err(Error::Corrupt(format!(
            "compressed content decoded to {} bytes, its header said {len}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn light_drops_transients_and_rounds() {
        let v = json!({"a": 1.23456, "n": 7, "raw_observation": "x", "s": "keep", "l": [0.11119]});
        let r = reduce(&v, CompressionLevel::Light, &["raw_observation".to_owned()]);
        assert_eq!(r, json!({"a": 1.235, "n": 7, "s": "keep", "l": [0.111]}));
    }

    #[test]
    fn pack_round_trips_and_refuses_garbage() {
        let data = b"hello hello hello hello".repeat(10);
        let packed = pack(&data);
        assert_eq!(unpack(&packed, 1 << 20).ok(), Some(data.clone()));
        assert!(matches!(unpack(&packed, 10), Err(Error::Corrupt(_))));
        assert!(matches!(
            unpack(&packed[..packed.len() / 2], 1 << 20),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(unpack(&[1, 2], 1 << 20), Err(Error::Corrupt(_))));
        let mut bad = packed.clone();
        for b in bad.iter_mut().skip(4) {
            *b = 0xff;
        }
        assert!(matches!(unpack(&bad, 1 << 20), Err(Error::Corrupt(_))));
    }
}
