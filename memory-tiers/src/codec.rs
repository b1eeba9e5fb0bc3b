//! An entry as hash fields, and back.
//!
//! | field | holds |
//! |---|---|
//! | `d` | JSON (one-letter names): agent, step, timestamp, type, creation time, level, tier, embedding |
//! | `c` | the content: JSON, or LZ4-packed JSON when `z` is `l` |
//! | `z` | `j` or `l` |
//! | `i` | importance, a decimal string in [0, 1] (also the importance index's score) |
//! | `r` | retrieval count, created by the first `HINCRBY` (absent means 0) |
//! | `a` | last access, Unix ms, set by reads (absent means the creation time) |
//!
//! Reads change only `r` and `a`, so a write replayed from the recovery queue (which sets
//! `d`, `c`, `z`, `i` again to the same values) is idempotent and does not undo reads.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::compress;
use crate::config::CompressionLevel;
use crate::entry::{MemoryEntry, MemoryMetadata, Tier, clamp_importance};
use crate::error::{Error, Result};

/// Field `d`. One-letter JSON names keep every stored entry, and every query reply, about
/// a hundred bytes shorter; the long names are still read (`alias`).
#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(rename = "g", alias = "agent_id")]
    agent_id: String,
    #[serde(rename = "s", alias = "step_number")]
    step_number: u64,
    #[serde(rename = "t", alias = "timestamp")]
    timestamp: u64,
    #[serde(rename = "m", alias = "memory_type")]
    memory_type: String,
    #[serde(rename = "c", alias = "creation_time")]
    creation_time: u64,
    #[serde(rename = "l", alias = "compression_level")]
    compression_level: u8,
    #[serde(rename = "r", alias = "current_tier")]
    current_tier: Tier,
    #[serde(
        rename = "e",
        alias = "embedding",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    embedding: Option<Vec<f32>>,
}

/// How to encode an entry for a tier.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Encoding<'a> {
    pub(crate) tier: Tier,
    pub(crate) level: CompressionLevel,
    pub(crate) transient: &'a [String],
    pub(crate) max_value_bytes: usize,
    /// Also write `r` and `a` (a move keeps the counters the entry had).
    pub(crate) with_counters: bool,
}

/// The importance as it is stored and scored.
pub(crate) fn importance_arg(x: f64) -> String {
    format!("{x}")
}

/// Encodes `entry` as hash fields for `enc.tier`, applying its compression. Returns the
/// fields and the importance as stored (rounded at levels 1 and 2).
pub(crate) fn encode(
    entry: &MemoryEntry,
    enc: Encoding<'_>,
) -> Result<(Vec<(String, Bytes)>, f64)> {
    let content = compress::reduce(&entry.content, enc.level, enc.transient);
    let json = serde_json::to_vec(&content)
        .map_err(|e| Error::InvalidInput(format!("content does not encode: {e}")))?;
    if json.len() > enc.max_value_bytes {
        return Err(Error::InvalidInput(format!(
            "content is {} bytes, over the limit of {}",
            json.len(),
            enc.max_value_bytes
        )));
    }
    let places = compress::places(enc.level);
    let round = |x: f64| places.map_or(x, |p| compress::round_to(x, p));
    let importance = round(entry.metadata.importance_score).clamp(0.0, 1.0);
    let embedding = entry
        .embedding
        .as_ref()
        .map(|e| e.iter().map(|x| round(f64::from(*x)) as f32).collect());
    let header = Header {
        agent_id: entry.agent_id.clone(),
        step_number: entry.step_number,
        timestamp: entry.timestamp,
        memory_type: entry.memory_type_str().to_owned(),
        creation_time: entry.metadata.creation_time,
        compression_level: enc.level.as_u8(),
        current_tier: enc.tier,
        embedding,
    };
    let header = serde_json::to_vec(&header)
        .map_err(|e| Error::InvalidInput(format!("entry does not encode: {e}")))?;
    if json.len() + header.len() > enc.max_value_bytes {
        return Err(Error::InvalidInput(format!(
            "entry is {} bytes with its embedding and metadata, over the limit of {}",
            json.len() + header.len(),
            enc.max_value_bytes
        )));
    }
    let (body, z) = if enc.level == CompressionLevel::Heavy {
        (compress::pack(&json), "l")
    } else {
        (json, "j")
    };
    let mut fields = vec![
        ("d".to_owned(), Bytes::from(header)),
        ("c".to_owned(), Bytes::from(body)),
        ("z".to_owned(), Bytes::from_static(z.as_bytes())),
        ("i".to_owned(), Bytes::from(importance_arg(importance))),
    ];
    if enc.with_counters {
        fields.push((
            "r".to_owned(),
            Bytes::from(entry.metadata.retrieval_count.to_string()),
        ));
        fields.push((
            "a".to_owned(),
            Bytes::from(entry.metadata.last_access_time.to_string()),
        ));
    }
    Ok((fields, importance))
}

fn field<'a, K: AsRef<str>>(fields: &'a [(K, Bytes)], name: &str) -> Option<&'a Bytes> {
    fields
        .iter()
        .find(|(k, _)| k.as_ref() == name)
        .map(|(_, v)| v)
}

fn number<T: std::str::FromStr, K: AsRef<str>>(
    fields: &[(K, Bytes)],
    name: &str,
) -> Result<Option<T>> {
    match field(fields, name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| Error::Corrupt(format!("field {name} is not a number"))),
    }
}

/// Decodes an entry from its hash fields. `max_value_bytes` bounds decompression.
pub(crate) fn decode<K: AsRef<str>>(
    memory_id: Ulid,
    fields: &[(K, Bytes)],
    max_value_bytes: usize,
) -> Result<MemoryEntry> {
    let header = field(fields, "d").ok_or_else(|| Error::Corrupt("missing field d".to_owned()))?;
    let header: Header = serde_json::from_slice(header)
        .map_err(|e| Error::Corrupt(format!("field d does not decode: {e}")))?;
    let body = field(fields, "c").ok_or_else(|| Error::Corrupt("missing field c".to_owned()))?;
    let json: std::borrow::Cow<'_, [u8]> = match field(fields, "z").map(|z| z.as_ref()) {
        Some(b"j") | None => std::borrow::Cow::Borrowed(body),
        Some(b"l") => std::borrow::Cow::Owned(compress::unpack(body, max_value_bytes)?),
        Some(_) => return Err(Error::Corrupt("unknown content encoding".to_owned())),
    };
    let content: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| Error::Corrupt(format!("content does not decode: {e}")))?;
    let importance: f64 = number(fields, "i")?.unwrap_or(0.0);
    let retrieval_count: u64 = number::<i64, _>(fields, "r")?.unwrap_or(0).max(0) as u64;
    let last_access_time: u64 = number(fields, "a")?.unwrap_or(header.creation_time);
    Ok(MemoryEntry {
        memory_id,
        agent_id: header.agent_id,
        step_number: header.step_number,
        timestamp: header.timestamp,
        content,
        metadata: MemoryMetadata {
            creation_time: header.creation_time,
            last_access_time,
            compression_level: header.compression_level,
            importance_score: clamp_importance(importance),
            retrieval_count,
            memory_type: header.memory_type,
            current_tier: header.current_tier,
        },
        embedding: header.embedding,
    })
}

impl MemoryEntry {
    fn memory_type_str(&self) -> &str {
        &self.metadata.memory_type
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod proptests {
    //! Arbitrary and corrupted hash fields never panic the decoder, decoded values respect
    //! their documented ranges, and decompression never produces more than the configured
    //! maximum. The `fuzz/` crate's `im_decode` target checks the same properties with
    //! coverage guidance.

    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 7] = ["d", "c", "z", "i", "r", "a", "x"];

    fn valid_header() -> Vec<u8> {
        serde_json::to_vec(&Header {
            agent_id: "a".to_owned(),
            step_number: 1,
            timestamp: 2,
            memory_type: "observation".to_owned(),
            creation_time: 3,
            compression_level: 2,
            current_tier: Tier::Im,
            embedding: Some(vec![0.5, 1.0]),
        })
        .unwrap()
    }

    /// What every successful decode must satisfy.
    fn check_decoded(
        fields: &[(String, Bytes)],
        max: usize,
        entry: &MemoryEntry,
    ) -> std::result::Result<(), TestCaseError> {
        let importance = entry.metadata.importance_score;
        prop_assert!(
            (0.0..=1.0).contains(&importance),
            "importance {importance} out of [0, 1]"
        );
        // Compressed content decodes to at most `max` bytes of JSON; serde_json's
        // re-encoding of a parsed value is no longer than a small multiple of its input.
        if field(fields, "z").map(|z| z.as_ref()) == Some(b"l".as_slice()) {
            let c = field(fields, "c").unwrap();
            let declared = u32::from_le_bytes(c[..4].try_into().unwrap()) as usize;
            prop_assert!(declared <= max);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_fields_never_panic(
            fields in prop::collection::vec(
                (prop::sample::select(NAMES.to_vec()), prop::collection::vec(any::<u8>(), 0..64)),
                0..8,
            ),
            max in 0usize..4096,
        ) {
            let fields: Vec<(String, Bytes)> = fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Bytes::from(v)))
                .collect();
            if let Ok(entry) = decode(Ulid::nil(), &fields, max) {
                check_decoded(&fields, max, &entry)?;
            }
        }

        #[test]
        fn numeric_fields_stay_in_range(
            i in prop::sample::select(vec!["NaN", "nan", "inf", "-inf", "1e999", "-0", "0.5", "2", "-3", " 0.25 "]),
            r in prop::sample::select(vec!["-5", "0", "9223372036854775807", "x", "1.5"]),
        ) {
            let fields = vec![
                ("d".to_owned(), Bytes::from(valid_header())),
                ("c".to_owned(), Bytes::from_static(b"{\"k\":1}")),
                ("i".to_owned(), Bytes::from(i)),
                ("r".to_owned(), Bytes::from(r)),
            ];
            match decode(Ulid::nil(), &fields, 1024) {
                Ok(entry) => check_decoded(&fields, 1024, &entry)?,
                Err(e) => prop_assert!(matches!(e, Error::Corrupt(_)), "{e}"),
            }
        }

        #[test]
        fn corrupted_compressed_content_is_refused_or_bounded(
            content in prop::collection::vec(any::<u8>(), 0..512),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
            max in 0usize..1024,
        ) {
            let json = serde_json::to_vec(&serde_json::json!({ "bytes": content })).unwrap();
            let mut packed = compress::pack(&json);
            for (at, byte) in flips {
                let at = at.index(packed.len());
                packed[at] ^= byte;
            }
            if truncate {
                packed.truncate(cut.index(packed.len() + 1));
            }
            if let Ok(out) = compress::unpack(&packed, max) {
                prop_assert!(out.len() <= max, "{} > {max}", out.len());
            }
            let fields = vec![
                ("d".to_owned(), Bytes::from(valid_header())),
                ("c".to_owned(), Bytes::from(packed)),
                ("z".to_owned(), Bytes::from_static(b"l")),
            ];
            if let Ok(entry) = decode(Ulid::nil(), &fields, max) {
                check_decoded(&fields, max, &entry)?;
                let again = serde_json::to_vec(&entry.content).unwrap();
                prop_assert!(again.len() <= 2 * max + 16, "{} from at most {max}", again.len());
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn decompression_bombs_are_refused_before_allocating(
            len in 1usize..(4 << 20),
            max in 0usize..(1 << 20),
            lie in any::<bool>(),
        ) {
            // A block of zeros compresses about 250:1; its header declares the real size,
            // or (`lie`) claims a small one.
            let bomb = vec![0u8; len];
            let mut packed = compress::pack(&bomb);
            if lie {
                let claimed = u32::try_from(max.min(len.saturating_sub(1))).unwrap();
                packed[..4].copy_from_slice(&claimed.to_le_bytes());
            }
            match compress::unpack(&packed, max) {
                Ok(out) => {
                    prop_assert!(out.len() <= max);
                    prop_assert!(!lie && len <= max);
                }
                Err(e) => prop_assert!(matches!(e, Error::Corrupt(_))),
            }
        }
    }
}
