//! An entry as hash fields, and back.
//!
//! | field | holds |
//! |---|---|
//! | `d` | JSON: agent, step, timestamp, type, creation time, level, tier, embedding |
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
use crate::entry::{MemoryEntry, MemoryMetadata, Tier};
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
struct Header {
    agent_id: String,
    step_number: u64,
    timestamp: u64,
    memory_type: String,
    creation_time: u64,
    compression_level: u8,
    current_tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

fn field<'a>(fields: &'a [(String, Bytes)], name: &str) -> Option<&'a Bytes> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn number<T: std::str::FromStr>(fields: &[(String, Bytes)], name: &str) -> Result<Option<T>> {
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
pub(crate) fn decode(
    memory_id: Ulid,
    fields: &[(String, Bytes)],
    max_value_bytes: usize,
) -> Result<MemoryEntry> {
    let header = field(fields, "d").ok_or_else(|| Error::Corrupt("missing field d".to_owned()))?;
    let header: Header = serde_json::from_slice(header)
        .map_err(|e| Error::Corrupt(format!("field d does not decode: {e}")))?;
    let body = field(fields, "c").ok_or_else(|| Error::Corrupt("missing field c".to_owned()))?;
    let json = match field(fields, "z").map(|z| z.as_ref()) {
        Some(b"j") | None => body.to_vec(),
        Some(b"l") => compress::unpack(body, max_value_bytes)?,
        Some(_) => return Err(Error::Corrupt("unknown content encoding".to_owned())),
    };
    let content: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| Error::Corrupt(format!("content does not decode: {e}")))?;
    let importance: f64 = number(fields, "i")?.unwrap_or(0.0);
    let retrieval_count: u64 = number::<i64>(fields, "r")?.unwrap_or(0).max(0) as u64;
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
            importance_score: importance.clamp(0.0, 1.0),
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
