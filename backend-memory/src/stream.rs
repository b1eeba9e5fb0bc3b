//! The stream data type: entries by id, kept in order. The commands on it are
//! `streams.rs`'s.

use std::collections::BTreeMap;

use bytes::Bytes;

/// A stream entry's id: milliseconds, then a sequence number.
pub(crate) type StreamId = (u64, u64);

/// A stream: entries in id order, and the last id ever given (deleted entries keep it).
#[derive(Clone, Debug, Default)]
pub(crate) struct Stream {
    pub(crate) entries: BTreeMap<StreamId, Vec<(Bytes, Bytes)>>,
    pub(crate) last: StreamId,
}

impl Stream {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
