//! An entry as hash fields, and back.
//!
//! | field | holds |
//! |---|---|
//! | `i` | importance, a decimal string in [0, 1] (also the importance index's score); every entry has it |
//! | `e` | the envelope: everything else about the entry, binary (below) |
//! | `r` | retrieval count, created by the first `HINCRBY` (absent means 0) |
//! | `a` | last access, Unix ms, set by reads (absent means the creation time) |
//!
//! The envelope is one schema-version byte ([`SCHEMA_VERSION`]), then a [`postcard`]
//! header (agent, step, timestamp, type, creation time, compression level, tier, how the
//! content is stored, its length, the embedding), then the content: the user's JSON, or
//! that JSON LZ4-packed at compression level 2. An envelope of another version, or an entry
//! of the layout before envelopes (JSON fields `d`, `c`, `z`), is
//! [`Error::UnsupportedSchema`]; a truncated or corrupt one is [`Error::Corrupt`].
//!
//! Reads change only `r` and `a`, so a write replayed from the recovery queue (which sets
//! `e` and `i` again to the same values) is idempotent and does not undo reads.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::compress;
use crate::config::CompressionLevel;
use crate::entry::{MemoryEntry, MemoryMetadata, Tier, clamp_importance};
use crate::error::{Error, Result};

/// The version of the stored layout this build writes and reads. Version 1 was the layout
/// before envelopes (JSON hash fields `d`, `c`, `z`).
pub const SCHEMA_VERSION: u8 = 2;

/// The schema version of entries with JSON fields instead of an envelope.
const FIELDS_SCHEMA_VERSION: u8 = 1;

/// How the content is stored inside the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ContentEncoding {
    /// The JSON text.
    Json,
    /// The JSON text, LZ4-packed ([`compress::pack`]).
    Lz4,
}

/// The envelope's header: what the entry is, apart from its content and counters.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    agent_id: std::borrow::Cow<'a, str>,
    step_number: u64,
    timestamp: u64,
    #[serde(borrow)]
    memory_type: std::borrow::Cow<'a, str>,
    creation_time: u64,
    compression_level: u8,
    current_tier: Tier,
    content_encoding: ContentEncoding,
    /// Bytes of content after the header: a shorter envelope was truncated.
    content_len: u64,
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
    let (body, content_encoding) = if enc.level == CompressionLevel::Heavy {
        (compress::pack(&json), ContentEncoding::Lz4)
    } else {
        (json, ContentEncoding::Json)
    };
    let header = Header {
        agent_id: entry.agent_id.as_str().into(),
        step_number: entry.step_number,
        timestamp: entry.timestamp,
        memory_type: entry.metadata.memory_type.as_str().into(),
        creation_time: entry.metadata.creation_time,
        compression_level: enc.level.as_u8(),
        current_tier: enc.tier,
        content_encoding,
        content_len: body.len() as u64,
        embedding,
    };
    let mut envelope = postcard::to_extend(&header, vec![SCHEMA_VERSION])
        .map_err(|e| Error::InvalidInput(format!("entry does not encode: {e}")))?;
    envelope.extend_from_slice(&body);
    if envelope.len() > enc.max_value_bytes {
        return Err(Error::InvalidInput(format!(
            "entry is {} bytes with its embedding and metadata, over the limit of {}",
            envelope.len(),
            enc.max_value_bytes
        )));
    }
    let mut fields = vec![
        ("i".to_owned(), Bytes::from(importance_arg(importance))),
        ("e".to_owned(), Bytes::from(envelope)),
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

/// Splits an envelope into its header and content, checking its version and length.
fn open(envelope: &[u8]) -> Result<(Header<'_>, &[u8])> {
    let (&version, rest) = envelope
        .split_first()
        .ok_or_else(|| Error::Corrupt("empty envelope".to_owned()))?;
    if version != SCHEMA_VERSION {
        return Err(Error::UnsupportedSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let (header, content) = postcard::take_from_bytes::<Header<'_>>(rest)
        .map_err(|e| Error::Corrupt(format!("envelope header does not decode: {e}")))?;
    if content.len() as u64 != header.content_len {
        return Err(Error::Corrupt(format!(
            "envelope holds {} bytes of content, its header says {}",
            content.len(),
            header.content_len
        )));
    }
    Ok((header, content))
}

/// An envelope of this schema version around `content` as it would be stored (`lz4`: as
/// packed content), with a fixed header: for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn envelope_around(content: &[u8], lz4: bool) -> Result<Vec<u8>> {
    let header = Header {
        agent_id: "agent".into(),
        step_number: 1,
        timestamp: 2,
        memory_type: "observation".into(),
        creation_time: 3,
        compression_level: if lz4 { 2 } else { 0 },
        current_tier: Tier::Im,
        content_encoding: if lz4 {
            ContentEncoding::Lz4
        } else {
            ContentEncoding::Json
        },
        content_len: content.len() as u64,
        embedding: None,
    };
    let mut envelope = postcard::to_extend(&header, vec![SCHEMA_VERSION])
        .map_err(|e| Error::InvalidInput(format!("entry does not encode: {e}")))?;
    envelope.extend_from_slice(content);
    Ok(envelope)
}

/// Decodes an entry from its hash fields. `max_value_bytes` bounds decompression.
pub(crate) fn decode<K: AsRef<str>>(
    memory_id: Ulid,
    fields: &[(K, Bytes)],
    max_value_bytes: usize,
) -> Result<MemoryEntry> {
    let Some(envelope) = field(fields, "e") else {
        // Entries before envelopes had their importance too, and JSON fields instead.
        return Err(
            if field(fields, "i").is_some() || field(fields, "d").is_some() {
                Error::UnsupportedSchema {
                    found: FIELDS_SCHEMA_VERSION,
                    supported: SCHEMA_VERSION,
                }
            } else {
                Error::Corrupt("missing field e".to_owned())
            },
        );
    };
    let (header, body) = open(envelope)?;
    let json: std::borrow::Cow<'_, [u8]> = match header.content_encoding {
        ContentEncoding::Json => std::borrow::Cow::Borrowed(body),
        ContentEncoding::Lz4 => std::borrow::Cow::Owned(compress::unpack(body, max_value_bytes)?),
    };
    let content: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| Error::Corrupt(format!("content does not decode: {e}")))?;
    let importance: f64 = number(fields, "i")?.unwrap_or(0.0);
    let retrieval_count: u64 = number::<i64, _>(fields, "r")?.unwrap_or(0).max(0) as u64;
    let last_access_time: u64 = number(fields, "a")?.unwrap_or(header.creation_time);
    Ok(MemoryEntry {
        memory_id,
        agent_id: header.agent_id.into_owned(),
        step_number: header.step_number,
        timestamp: header.timestamp,
        content,
        metadata: MemoryMetadata {
            creation_time: header.creation_time,
            last_access_time,
            compression_level: header.compression_level,
            importance_score: clamp_importance(importance),
            retrieval_count,
            memory_type: header.memory_type.into_owned(),
            current_tier: header.current_tier,
        },
        embedding: header.embedding,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(super) fn entry() -> MemoryEntry {
        MemoryEntry {
            memory_id: Ulid::nil(),
            agent_id: "agent-1".to_owned(),
            step_number: 7,
            timestamp: 1_764_160_000_000,
            content: serde_json::json!({"saw": "a door", "n": 3}),
            metadata: MemoryMetadata {
                creation_time: 1_764_160_000_001,
                last_access_time: 1_764_160_000_001,
                compression_level: 0,
                importance_score: 0.5,
                retrieval_count: 0,
                memory_type: "observation".to_owned(),
                current_tier: Tier::Stm,
            },
            embedding: Some(vec![0.5, -1.0]),
        }
    }

    pub(super) fn encoding(level: CompressionLevel) -> Encoding<'static> {
        Encoding {
            tier: Tier::Stm,
            level,
            transient: &[],
            max_value_bytes: 1 << 20,
            with_counters: false,
        }
    }

    #[test]
    fn an_entry_comes_back_as_it_was_stored() {
        let original = entry();
        for level in [CompressionLevel::None, CompressionLevel::Heavy] {
            let (fields, importance) = encode(&original, encoding(level)).unwrap();
            assert_eq!(importance, 0.5);
            let back = decode(Ulid::nil(), &fields, 1 << 20).unwrap();
            assert_eq!(back.content, original.content, "{level:?}");
            assert_eq!(back.agent_id, original.agent_id);
            assert_eq!(back.embedding, original.embedding);
            assert_eq!(back.metadata.compression_level, level.as_u8());
            let (header, _) = open(field(&fields, "e").unwrap()).unwrap();
            let packed = level == CompressionLevel::Heavy;
            assert_eq!(header.content_encoding == ContentEncoding::Lz4, packed);
        }
    }

    #[test]
    fn the_envelope_starts_with_the_schema_version_and_is_compact() {
        let (fields, _) = encode(&entry(), encoding(CompressionLevel::None)).unwrap();
        let envelope = field(&fields, "e").unwrap();
        assert_eq!(envelope[0], SCHEMA_VERSION);
        let json = serde_json::to_vec(&entry()).unwrap();
        assert!(
            envelope.len() * 2 < json.len(),
            "{} bytes against {} as JSON",
            envelope.len(),
            json.len()
        );
    }

    #[test]
    fn another_schema_version_is_refused_by_number() {
        let (mut fields, _) = encode(&entry(), encoding(CompressionLevel::None)).unwrap();
        let e = fields.iter_mut().find(|(k, _)| k == "e").unwrap();
        let mut future = e.1.to_vec();
        future[0] = SCHEMA_VERSION + 1;
        e.1 = Bytes::from(future);
        let err = decode(Ulid::nil(), &fields, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedSchema {
                    found: 3,
                    supported: 2
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("version 3"), "{err}");
    }

    #[test]
    fn an_entry_of_the_layout_before_envelopes_is_version_1() {
        let old = [
            (
                "d".to_owned(),
                Bytes::from_static(br#"{"g":"a","s":1,"t":2,"m":"o","c":3,"l":0,"r":"Stm"}"#),
            ),
            ("c".to_owned(), Bytes::from_static(b"{}")),
            ("z".to_owned(), Bytes::from_static(b"j")),
            ("i".to_owned(), Bytes::from_static(b"0.5")),
        ];
        let err = decode(Ulid::nil(), &old, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedSchema {
                    found: 1,
                    supported: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_envelope_is_corrupt() {
        let (fields, _) = encode(&entry(), encoding(CompressionLevel::None)).unwrap();
        let envelope = field(&fields, "e").unwrap().clone();
        for cut in [0, 1, 5, envelope.len() - 1] {
            let fields = vec![
                ("i".to_owned(), Bytes::from_static(b"0.5")),
                ("e".to_owned(), envelope.slice(..cut)),
            ];
            let err = decode(Ulid::nil(), &fields, 1 << 20).unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "cut at {cut}: {err}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod proptests {
    //! Arbitrary and corrupted fields and envelopes never panic the decoder, decoded values
    //! respect their documented ranges, and decompression never produces more than the
    //! configured maximum. The `fuzz/` crate's `im_decode` target checks the same
    //! properties with coverage guidance.

    use super::tests::{encoding, entry};
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 6] = ["e", "i", "r", "a", "d", "x"];

    fn valid_envelope(level: CompressionLevel) -> Bytes {
        let (fields, _) = encode(&entry(), encoding(level)).unwrap();
        field(&fields, "e").unwrap().clone()
    }

    /// What every decode must satisfy: an entry with its importance in [0, 1], or a typed
    /// error.
    fn check(result: Result<MemoryEntry>) -> std::result::Result<(), TestCaseError> {
        match result {
            Ok(entry) => {
                let importance = entry.metadata.importance_score;
                prop_assert!(
                    (0.0..=1.0).contains(&importance),
                    "importance {importance} out of [0, 1]"
                );
            }
            Err(e) => prop_assert!(
                matches!(e, Error::Corrupt(_) | Error::UnsupportedSchema { .. }),
                "{e}"
            ),
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
            check(decode(Ulid::nil(), &fields, max))?;
        }

        #[test]
        fn corrupted_envelopes_are_refused_or_decoded_in_range(
            heavy in any::<bool>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
            max in 0usize..1024,
        ) {
            let level = if heavy { CompressionLevel::Heavy } else { CompressionLevel::None };
            let mut envelope = valid_envelope(level).to_vec();
            for (at, byte) in flips {
                let at = at.index(envelope.len());
                envelope[at] ^= byte;
            }
            if truncate {
                envelope.truncate(cut.index(envelope.len() + 1));
            }
            let fields = vec![
                ("i".to_owned(), Bytes::from_static(b"0.5")),
                ("e".to_owned(), Bytes::from(envelope)),
            ];
            check(decode(Ulid::nil(), &fields, max))?;
        }

        #[test]
        fn numeric_fields_stay_in_range(
            i in prop::sample::select(vec!["NaN", "nan", "inf", "-inf", "1e999", "-0", "0.5", "2", "-3", " 0.25 "]),
            r in prop::sample::select(vec!["-5", "0", "9223372036854775807", "x", "1.5"]),
        ) {
            let fields = vec![
                ("e".to_owned(), valid_envelope(CompressionLevel::None)),
                ("i".to_owned(), Bytes::from(i)),
                ("r".to_owned(), Bytes::from(r)),
            ];
            check(decode(Ulid::nil(), &fields, 1024))?;
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
