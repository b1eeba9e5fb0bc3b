//! Entry points for the fuzz targets in the workspace's `fuzz/` crate and nothing else.
//!
//! Compiled only with the `fuzzing` feature and hidden from the docs: these wrap crate
//! internals (entry decoding, LZ4 unpacking, key building) so a fuzzer can call them with
//! arbitrary bytes. They are not part of the API and may change at any time.

use bytes::Bytes;
use ulid::Ulid;

use crate::entry::MemoryEntry;
use crate::error::Result;
use crate::keys::AgentKeys;

/// Decodes a stored entry, exactly as a read does, with `max_value_bytes` bounding
/// decompression; `None` for bytes that are no entry (a bump's zero-filled leftover).
pub fn decode_entry(stored: &[u8], max_value_bytes: usize) -> Result<Option<MemoryEntry>> {
    crate::codec::decode(Ulid::nil(), stored, max_value_bytes)
}

/// A valid stored entry (schema version, counters, index fields, header) around
/// `content`, stored as JSON or, with `lz4`, as packed JSON: decoding then exercises the
/// content's decoder.
pub fn stored_entry(content: &[u8], lz4: bool) -> Bytes {
    crate::codec::stored_around(content, lz4)
        .map(Bytes::from)
        .unwrap_or_default()
}

/// Undoes the level-2 LZ4 packing, refusing a declared length over `max`.
pub fn unpack(data: &[u8], max: usize) -> Result<Vec<u8>> {
    crate::compress::unpack(data, max)
}

/// Packs `data` as level 2 stores it (4-byte length, LZ4 block).
pub fn pack(data: &[u8]) -> Vec<u8> {
    crate::compress::pack(data)
}

/// The keys of `agent_id` in `tier` under `ns`. Both must already be valid
/// ([`crate::keys::validate_namespace`], [`crate::validate_agent_id`]).
pub fn agent_keys(ns: &str, tier: &str, agent_id: &str) -> AgentKeys {
    AgentKeys::new(ns, tier, agent_id)
}
