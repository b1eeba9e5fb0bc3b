//! The framing the vector and postings blocks share: a 10-byte header (a magic byte, a
//! version, a generation as a big-endian `u64`), then records appended one after another,
//! each led by its memory id. Each block's module defines its records; this one reads the
//! header, walks the records with the block's own record parser, and compacts.

use std::collections::HashSet;

use ulid::Ulid;

use crate::error::{Error, Result};

/// Bytes of a block header.
pub(crate) const HEADER_LEN: usize = 10;
/// The header version both blocks are written with.
pub(crate) const VERSION: u8 = 1;
/// The vector block's magic byte.
pub(crate) const VECTORS: u8 = b'V';
/// The postings block's magic byte.
pub(crate) const POSTINGS: u8 = b'T';

/// The generation in a vector or postings block's header, or `None` when `bytes` does not
/// start with one.
pub(crate) fn generation_of(bytes: &[u8]) -> Option<u64> {
    let header: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
    let magic = header[0] == VECTORS || header[0] == POSTINGS;
    (magic && header[1] == VERSION).then(|| {
        let mut generation = [0; 8];
        generation.copy_from_slice(&header[2..]);
        u64::from_be_bytes(generation)
    })
}

/// The header of a block with `magic` at `generation`.
pub(crate) fn header(magic: u8, generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[0] = magic;
    h[1] = VERSION;
    h[2..].copy_from_slice(&generation.to_be_bytes());
    h
}

/// A block's record parser: the record `bytes` start with, and the bytes after it.
pub(crate) type NextRecord<'a, R> = fn(&'a [u8]) -> Result<(R, &'a [u8])>;

/// The memory id a record starts with, once its first `head` bytes are there; `what`
/// names the block in the error.
pub(crate) fn record_id(rest: &[u8], head: usize, what: &str) -> Result<Ulid> {
    match rest.get(..16) {
        Some(id) if rest.len() >= head.max(16) => {
            let mut bytes = [0; 16];
            bytes.copy_from_slice(id);
            Ok(Ulid::from(u128::from_be_bytes(bytes)))
        }
        _ => Err(corrupt(what, "truncated record")),
    }
}

/// A record of `len` bytes, and the bytes after it.
pub(crate) fn split_record<'a>(
    rest: &'a [u8],
    len: usize,
    what: &str,
) -> Result<(&'a [u8], &'a [u8])> {
    if rest.len() < len {
        return Err(corrupt(what, "truncated record"));
    }
    Ok(rest.split_at(len))
}

/// A block's header and its records' bytes, unparsed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed<'a> {
    /// The header as stored.
    pub(crate) header: &'a [u8],
    pub(crate) generation: u64,
    /// The records' bytes (from the header's end, or from where an earlier read ended).
    pub(crate) records: &'a [u8],
}

impl<'a> Packed<'a> {
    /// Reads the header of a block that must start with `magic`; `what` names the block in
    /// errors ([`Error::Corrupt`]).
    pub(crate) fn parse(block: &'a [u8], magic: u8, what: &str) -> Result<Packed<'a>> {
        if block.len() < HEADER_LEN || block[0] != magic {
            return Err(corrupt(what, "no header"));
        }
        if block[1] != VERSION {
            return Err(corrupt(
                what,
                &format!("version {} (this build reads {VERSION})", block[1]),
            ));
        }
        let mut generation = [0; 8];
        generation.copy_from_slice(&block[2..HEADER_LEN]);
        Ok(Packed {
            header: &block[..HEADER_LEN],
            generation: u64::from_be_bytes(generation),
            records: &block[HEADER_LEN..],
        })
    }

    /// As [`parse`](Self::parse), with the records from byte `offset` on (a record
    /// boundary: where an earlier read of the same block ended).
    pub(crate) fn parse_from(
        block: &'a [u8],
        magic: u8,
        what: &str,
        offset: usize,
    ) -> Result<Packed<'a>> {
        let mut packed = Packed::parse(block, magic, what)?;
        packed.records = block
            .get(offset.max(HEADER_LEN)..)
            .ok_or_else(|| corrupt(what, "read past its end"))?;
        Ok(packed)
    }

    /// The records in the order they were appended, each read by `next` (a record and
    /// the bytes after it); after an error, nothing more.
    pub(crate) fn records<R: 'a>(
        &self,
        next: NextRecord<'a, R>,
    ) -> impl Iterator<Item = Result<R>> + 'a {
        let mut rest = self.records;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let parsed = next(rest);
            match &parsed {
                Ok((_, after)) => rest = after,
                Err(_) => rest = &[],
            }
            Some(parsed.map(|(r, _)| r))
        })
    }
}

/// `records` (each a memory id and its record's bytes) without the records of ids not in
/// `live` and without repeats, after `header` (the next generation's); `None` when it
/// would not shrink.
pub(crate) fn compacted<'a>(
    header: [u8; HEADER_LEN],
    size_hint: usize,
    records: impl Iterator<Item = Result<(Ulid, &'a [u8])>>,
    live: &HashSet<Ulid>,
) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(size_hint / 2 + HEADER_LEN);
    out.extend_from_slice(&header);
    let mut kept = HashSet::new();
    let mut dropped = false;
    for record in records {
        let (id, bytes) = record?;
        if live.contains(&id) && kept.insert(id) {
            out.extend_from_slice(bytes);
        } else {
            dropped = true;
        }
    }
    Ok(dropped.then_some(out))
}

/// A damaged block of kind `what`.
pub(crate) fn corrupt(what: &str, detail: &str) -> Error {
    Error::Corrupt(format!("{what}: {detail}"))
}
