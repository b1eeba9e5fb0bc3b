//! An entry as one Redis string, and back.
//!
//! | bytes | holds |
//! |---|---|
//! | 0 | the schema version, [`SCHEMA_VERSION`] |
//! | 1..5 | retrieval count, `u32` big-endian: `get` adds 1 with `BITFIELD … INCRBY u32 8 1` |
//! | 5..13 | last access, Unix ms, `i64` big-endian: `get` sets it with `BITFIELD … SET i64 40` |
//! | 13..77 | the index fields: expiry deadline, timestamp, step and importance, 16 hex digits each, exactly as the entry's index members spell them ([`IndexFields`]) |
//! | 77.. | a [`postcard`] header (agent, memory type, creation time, compression level, tier, how the content is stored, its length, the embedding: `f32`s, or bytes and a scale at compression levels 1 and 2), then the content: the user's JSON, or that JSON LZ4-packed at compression level 2 |
//!
//! The counters sit at fixed offsets so a read bumps them in one atomic command without
//! rewriting the entry, and the index fields so a script given the entry's key can name
//! its index members. A first byte of 0 is what `BITFIELD` leaves when it bumps an id that
//! does not exist (see the tier's `get`): not an entry. Another version, or an entry of the
//! layouts that stored a hash per memory (versions 1 and 2), is [`Error::UnsupportedSchema`];
//! a truncated or corrupt one is [`Error::Corrupt`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::compress;
use crate::config::CompressionLevel;
use crate::embedding::StoredEmbedding;
use crate::entry::{MemoryEntry, MemoryMetadata, Tier};
use crate::error::{Error, Result};
use crate::index::{FIELDS_HEX_LEN, IndexFields};

/// The version of the stored layout this build writes and reads. Versions 1 (JSON hash
/// fields) and 2 (a hash of an envelope and counters) stored each memory as a hash;
/// version 3 stored embeddings as `f32`s only, rounded like the content's numbers in IM.
pub const SCHEMA_VERSION: u8 = 4;

/// The newest layout that stored a hash per memory: what a hash where an entry should
/// be is.
pub(crate) const HASH_SCHEMA_VERSION: u8 = 2;

/// Bit offset of the retrieval count (`u32`), for `BITFIELD`.
pub(crate) const COUNT_BIT: u32 = 8;
/// [`COUNT_BIT`] as `BITFIELD` takes it.
pub(crate) const COUNT_BIT_ARG: &[u8] = b"8";
/// Bit offset of the last access time (`i64`), for `BITFIELD`.
pub(crate) const LAST_ACCESS_BIT: u32 = 40;
/// [`LAST_ACCESS_BIT`] as `BITFIELD` takes it.
pub(crate) const LAST_ACCESS_BIT_ARG: &[u8] = b"40";
/// Byte offset of the index fields.
pub(crate) const FIELDS_AT: usize = 13;
/// Bytes before the header.
const PREFIX_LEN: usize = FIELDS_AT + FIELDS_HEX_LEN;

/// How the content is stored inside the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ContentEncoding {
    /// The JSON text.
    Json,
    /// The JSON text, LZ4-packed ([`compress::pack`]).
    Lz4,
}

/// The header: what the entry is, apart from its content, counters and index fields.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    agent_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    memory_type: std::borrow::Cow<'a, str>,
    creation_time: u64,
    compression_level: u8,
    current_tier: Tier,
    content_encoding: ContentEncoding,
    /// Bytes of content after the header: a shorter entry was truncated.
    content_len: u64,
    embedding: Option<StoredEmbedding>,
}

/// How to encode an entry for a tier.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Encoding<'a> {
    pub(crate) tier: Tier,
    pub(crate) level: CompressionLevel,
    pub(crate) transient: &'a [String],
    pub(crate) max_value_bytes: usize,
    /// Keep the entry's counters (a move keeps what it had); otherwise none yet.
    pub(crate) with_counters: bool,
    /// When the entry expires, Unix ms.
    pub(crate) deadline: u64,
}

/// An entry encoded for a tier.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The entry's string.
    pub(crate) bytes: Bytes,
    /// Its index values (importance rounded at levels 1 and 2).
    pub(crate) fields: IndexFields,
    /// Its embedding as the tier keeps it (quantized at levels 1 and 2).
    pub(crate) embedding: Option<StoredEmbedding>,
}

/// Encodes `entry` for `enc.tier`, applying its compression.
pub(crate) fn encode(entry: &MemoryEntry, enc: Encoding<'_>) -> Result<Encoded> {
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
    let fields = IndexFields {
        deadline: enc.deadline,
        timestamp: entry.timestamp,
        step: entry.step_number,
        importance: round(entry.metadata.importance_score).clamp(0.0, 1.0),
    };
    // Quantized, not rounded: rounding to 1 or 3 places would erase most of a
    // unit-length embedding's components.
    let embedding = entry
        .embedding
        .as_ref()
        .map(|e| StoredEmbedding::new(e, enc.level != CompressionLevel::None));
    let (body, content_encoding) = if enc.level == CompressionLevel::Heavy {
        (compress::pack(&json), ContentEncoding::Lz4)
    } else {
        (json, ContentEncoding::Json)
    };
    let header = Header {
        agent_id: entry.agent_id.as_str().into(),
        memory_type: entry.metadata.memory_type.as_str().into(),
        creation_time: entry.metadata.creation_time,
        compression_level: enc.level.as_u8(),
        current_tier: enc.tier,
        content_encoding,
        content_len: body.len() as u64,
        embedding: embedding.clone(),
    };
    let (count, last_access) = if enc.with_counters {
        (
            u32::try_from(entry.metadata.retrieval_count).unwrap_or(u32::MAX),
            entry.metadata.last_access_time,
        )
    } else {
        (0, entry.metadata.creation_time)
    };
    let mut out = Vec::with_capacity(PREFIX_LEN + 64 + body.len());
    out.push(SCHEMA_VERSION);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&i64::try_from(last_access).unwrap_or(i64::MAX).to_be_bytes());
    out.extend_from_slice(&fields.hex());
    let mut out = postcard::to_extend(&header, out)
        .map_err(|e| Error::InvalidInput(format!("entry does not encode: {e}")))?;
    out.extend_from_slice(&body);
    if out.len() > enc.max_value_bytes {
        return Err(Error::InvalidInput(format!(
            "entry is {} bytes with its embedding and metadata, over the limit of {}",
            out.len(),
            enc.max_value_bytes
        )));
    }
    Ok(Encoded {
        bytes: Bytes::from(out),
        fields,
        embedding,
    })
}

/// The parts of a stored entry, checked: version, counters, index fields, header, content.
struct Parts<'a> {
    count: u32,
    last_access: i64,
    fields: IndexFields,
    header: Header<'a>,
    content: &'a [u8],
}

/// Splits a stored entry into its parts, checking its version and lengths. `None` for the
/// zero-filled bytes a bump of a missing id leaves behind.
fn open(stored: &[u8]) -> Result<Option<Parts<'_>>> {
    let (&version, _) = stored
        .split_first()
        .ok_or_else(|| Error::Corrupt("empty entry".to_owned()))?;
    if version == 0 {
        return Ok(None);
    }
    if version != SCHEMA_VERSION {
        return Err(Error::UnsupportedSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if stored.len() < PREFIX_LEN {
        return Err(Error::Corrupt(format!(
            "entry is {} bytes, shorter than its {PREFIX_LEN}-byte prefix",
            stored.len()
        )));
    }
    let count_at = (COUNT_BIT / 8) as usize;
    let access_at = (LAST_ACCESS_BIT / 8) as usize;
    let mut count = [0u8; 4];
    count.copy_from_slice(&stored[count_at..count_at + 4]);
    let mut last_access = [0u8; 8];
    last_access.copy_from_slice(&stored[access_at..access_at + 8]);
    let fields = IndexFields::parse(&stored[FIELDS_AT..PREFIX_LEN])?;
    let (header, content) = postcard::take_from_bytes::<Header<'_>>(&stored[PREFIX_LEN..])
        .map_err(|e| Error::Corrupt(format!("entry header does not decode: {e}")))?;
    if content.len() as u64 != header.content_len {
        return Err(Error::Corrupt(format!(
            "entry holds {} bytes of content, its header says {}",
            content.len(),
            header.content_len
        )));
    }
    Ok(Some(Parts {
        count: u32::from_be_bytes(count),
        last_access: i64::from_be_bytes(last_access),
        fields,
        header,
        content,
    }))
}

/// Whether `stored` is the zero-filled string a bump of a missing id leaves, not an entry.
pub(crate) fn is_leftover(stored: &[u8]) -> bool {
    stored.first() == Some(&0)
}

/// The index fields of a stored entry (`None` for a bump's leftover bytes).
pub(crate) fn index_fields(stored: &[u8]) -> Result<Option<IndexFields>> {
    Ok(open(stored)?.map(|p| p.fields))
}

/// A stored entry of this schema version around `content` as it would be stored (`lz4`:
/// as packed content), with a fixed header: for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn stored_around(content: &[u8], lz4: bool) -> Result<Vec<u8>> {
    let header = Header {
        agent_id: "agent".into(),
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
    let fields = IndexFields {
        deadline: 4,
        timestamp: 2,
        step: 1,
        importance: 0.5,
    };
    let mut out = vec![SCHEMA_VERSION];
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&fields.hex());
    let mut out = postcard::to_extend(&header, out)
        .map_err(|e| Error::InvalidInput(format!("entry does not encode: {e}")))?;
    out.extend_from_slice(content);
    Ok(out)
}

/// Decodes a stored entry; `None` for the zero-filled bytes a bump of a missing id leaves
/// behind. `max_value_bytes` bounds decompression.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode(
    memory_id: Ulid,
    stored: &[u8],
    max_value_bytes: usize,
) -> Result<Option<MemoryEntry>> {
    decode_live(memory_id, stored, max_value_bytes, 0)
}

/// [`decode`], and `None` also when the entry's deadline is before `now_ms`.
pub(crate) fn decode_live(
    memory_id: Ulid,
    stored: &[u8],
    max_value_bytes: usize,
    now_ms: u64,
) -> Result<Option<MemoryEntry>> {
    let Some(parts) = open(stored)? else {
        return Ok(None);
    };
    if parts.fields.deadline < now_ms {
        return Ok(None);
    }
    let json: std::borrow::Cow<'_, [u8]> = match parts.header.content_encoding {
        ContentEncoding::Json => std::borrow::Cow::Borrowed(parts.content),
        ContentEncoding::Lz4 => {
            std::borrow::Cow::Owned(compress::unpack(parts.content, max_value_bytes)?)
        }
    };
    let content: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| Error::Corrupt(format!("content does not decode: {e}")))?;
    let header = parts.header;
    Ok(Some(MemoryEntry {
        memory_id,
        agent_id: header.agent_id.into_owned(),
        step_number: parts.fields.step,
        timestamp: parts.fields.timestamp,
        content,
        metadata: MemoryMetadata {
            creation_time: header.creation_time,
            last_access_time: u64::try_from(parts.last_access).unwrap_or(0),
            compression_level: header.compression_level,
            importance_score: parts.fields.importance,
            retrieval_count: u64::from(parts.count),
            memory_type: header.memory_type.into_owned(),
            current_tier: header.current_tier,
        },
        embedding: header.embedding.map(|e| e.to_f32()),
    }))
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
                last_access_time: 1_764_160_000_009,
                compression_level: 0,
                importance_score: 0.5,
                retrieval_count: 4,
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
            deadline: 1_764_160_086_400_000,
        }
    }

    fn back(stored: &[u8]) -> MemoryEntry {
        decode(Ulid::nil(), stored, 1 << 20).unwrap().unwrap()
    }

    #[test]
    fn an_entry_comes_back_as_it_was_stored() {
        let original = entry();
        for level in [CompressionLevel::None, CompressionLevel::Heavy] {
            let Encoded {
                bytes: stored,
                fields,
                ..
            } = encode(&original, encoding(level)).unwrap();
            assert_eq!(fields.importance, 0.5);
            assert_eq!(fields.deadline, 1_764_160_086_400_000);
            let back = back(&stored);
            assert_eq!(back.content, original.content, "{level:?}");
            assert_eq!(back.agent_id, original.agent_id);
            let (want, got) = (original.embedding.clone().unwrap(), back.embedding.unwrap());
            for (w, g) in want.iter().zip(&got) {
                // Exact as written at level 0; within half a quantization step at level 2.
                let step = if level == CompressionLevel::None {
                    0.0
                } else {
                    0.5 / 127.0
                };
                assert!((w - g).abs() <= step, "{level:?}: {w} vs {g}");
            }
            assert_eq!((back.timestamp, back.step_number), (original.timestamp, 7));
            assert_eq!(back.metadata.compression_level, level.as_u8());
            assert_eq!(back.metadata.retrieval_count, 0, "a new entry has no reads");
            assert_eq!(
                back.metadata.last_access_time,
                original.metadata.creation_time
            );
            let packed = open(&stored).unwrap().unwrap().header.content_encoding;
            assert_eq!(
                packed == ContentEncoding::Lz4,
                level == CompressionLevel::Heavy
            );
        }
    }

    #[test]
    fn counters_sit_where_bitfield_bumps_them() {
        let enc = Encoding {
            with_counters: true,
            ..encoding(CompressionLevel::None)
        };
        let Encoded {
            bytes: stored,
            fields,
            ..
        } = encode(&entry(), enc).unwrap();
        assert_eq!(stored[0], SCHEMA_VERSION);
        let bit = |b: u32| (b / 8) as usize;
        assert_eq!(
            stored[bit(COUNT_BIT)..bit(COUNT_BIT) + 4],
            4u32.to_be_bytes()
        );
        assert_eq!(
            stored[bit(LAST_ACCESS_BIT)..bit(LAST_ACCESS_BIT) + 8],
            1_764_160_000_009i64.to_be_bytes()
        );
        assert_eq!(stored[FIELDS_AT..FIELDS_AT + FIELDS_HEX_LEN], fields.hex());
        let mut bumped = stored.to_vec();
        bumped[1..5].copy_from_slice(&5u32.to_be_bytes());
        bumped[5..13].copy_from_slice(&1_764_160_000_100i64.to_be_bytes());
        let read = back(&bumped);
        assert_eq!(read.metadata.retrieval_count, 5);
        assert_eq!(read.metadata.last_access_time, 1_764_160_000_100);
        assert_eq!(index_fields(&bumped).unwrap(), Some(fields));
    }

    #[test]
    fn the_bit_offsets_are_spelled_as_their_numbers() {
        assert_eq!(COUNT_BIT_ARG, COUNT_BIT.to_string().as_bytes());
        assert_eq!(LAST_ACCESS_BIT_ARG, LAST_ACCESS_BIT.to_string().as_bytes());
    }

    #[test]
    fn an_entry_is_compact() {
        let stored = encode(&entry(), encoding(CompressionLevel::None))
            .unwrap()
            .bytes;
        let json = serde_json::to_vec(&entry()).unwrap();
        assert!(
            stored.len() < json.len(),
            "{} bytes against {} as JSON",
            stored.len(),
            json.len()
        );
    }

    #[test]
    fn another_schema_version_is_refused_by_number() {
        let stored = encode(&entry(), encoding(CompressionLevel::None))
            .unwrap()
            .bytes;
        let mut future = stored.to_vec();
        future[0] = SCHEMA_VERSION + 1;
        let err = decode(Ulid::nil(), &future, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedSchema {
                    found: 5,
                    supported: 4
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("version 4"), "{err}");
    }

    #[test]
    fn a_bumps_leftover_is_no_entry() {
        assert!(decode(Ulid::nil(), &[0; 13], 1 << 20).unwrap().is_none());
        assert!(index_fields(&[0; 13]).unwrap().is_none());
    }

    #[test]
    fn a_truncated_entry_is_corrupt() {
        let stored = encode(&entry(), encoding(CompressionLevel::None))
            .unwrap()
            .bytes;
        for cut in [
            0,
            1,
            5,
            13,
            40,
            PREFIX_LEN,
            PREFIX_LEN + 3,
            stored.len() - 1,
        ] {
            let err = decode(Ulid::nil(), &stored[..cut], 1 << 20).unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "cut at {cut}: {err}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod proptests {
    //! Arbitrary and corrupted entries never panic the decoder, decoded values respect
    //! their documented ranges, and decompression never produces more than the configured
    //! maximum. The `fuzz/` crate's `im_decode` target checks the same properties with
    //! coverage guidance.

    use super::tests::{encoding, entry};
    use super::*;
    use proptest::prelude::*;

    /// What every decode must satisfy: an entry with its importance in [0, 1], nothing, or
    /// a typed error.
    fn check(result: Result<Option<MemoryEntry>>) -> std::result::Result<(), TestCaseError> {
        match result {
            Ok(Some(entry)) => {
                let importance = entry.metadata.importance_score;
                prop_assert!(
                    (0.0..=1.0).contains(&importance),
                    "importance {importance} out of [0, 1]"
                );
            }
            Ok(None) => {}
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
        fn arbitrary_bytes_never_panic(
            stored in prop::collection::vec(any::<u8>(), 0..256),
            versioned in any::<bool>(),
            max in 0usize..4096,
        ) {
            let mut stored = stored;
            if versioned && !stored.is_empty() {
                stored[0] = SCHEMA_VERSION;
            }
            check(decode(Ulid::nil(), &stored, max))?;
        }

        #[test]
        fn corrupted_entries_are_refused_or_decoded_in_range(
            heavy in any::<bool>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
            max in 0usize..1024,
        ) {
            let level = if heavy { CompressionLevel::Heavy } else { CompressionLevel::None };
            let stored = encode(&entry(), encoding(level)).unwrap().bytes;
            let mut stored = stored.to_vec();
            for (at, byte) in flips {
                let at = at.index(stored.len());
                stored[at] ^= byte;
            }
            if truncate {
                stored.truncate(cut.index(stored.len() + 1));
            }
            check(decode(Ulid::nil(), &stored, max))?;
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
