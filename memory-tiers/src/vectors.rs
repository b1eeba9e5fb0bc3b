//! An agent's vector block: the embeddings of one tier, packed in one Redis string, so a
//! similarity search reads them all with one `GET` (a string costs the server a copy; a
//! hash of 10,000 fields costs it eight times as much to list) and scores them in Rust.
//!
//! ```text
//! <ns>:{<tier>:<agent_id>}:vectors
//!
//! header   b'V', version 1, generation (u64 BE)                      10 bytes
//! record   memory id (16 bytes, the ULID's bits), kind (1: f32, 2: i8),
//!          dimension (u16 BE), then dimension f32 LE, or the bytes' 1/length (f32 LE)
//!          and dimension signed bytes
//! ```
//!
//! A write appends its entry's record (`SET … NX` creates the header first, in the same
//! `MULTI` as the entry), so the block is never read half-written. Deletes, moves to IM and
//! expiry leave records behind: a search skips them (their entry is gone), and when the
//! records outnumber the indexed entries by half, a compaction rewrites the block with
//! only the live ones, keeping whatever was appended meanwhile (the compaction script
//! replaces the block only if its generation is still the one read). A replayed write
//! appends its record twice; searches and compaction keep one per id.
//!
//! An IM record at dimension 384 is 407 bytes: 388 of embedding, 16 of id, 3 of framing.

use std::collections::HashSet;

use ulid::Ulid;

use crate::embedding::{StoredEmbedding, WideQuery, cosine_f32, inv_norm_i8};
use crate::error::{Error, Result};
use crate::packed::{self, Packed};

/// Bytes of the block header.
pub(crate) const HEADER_LEN: usize = packed::HEADER_LEN;
const MAGIC: u8 = packed::VECTORS;
const KIND_F32: u8 = 1;
const KIND_I8: u8 = 2;
/// Id, kind and dimension.
const RECORD_HEAD: usize = 16 + 1 + 2;

/// The header of a block at `generation`.
pub(crate) fn header(generation: u64) -> [u8; HEADER_LEN] {
    packed::header(MAGIC, generation)
}

/// The record of `embedding` for memory `id`. An embedding is at most `u16::MAX` wide
/// (checked when stored).
pub(crate) fn record(id: Ulid, embedding: &StoredEmbedding) -> Vec<u8> {
    let (kind, dim, payload_len) = match embedding {
        StoredEmbedding::F32(v) => (KIND_F32, v.len(), 4 * v.len()),
        StoredEmbedding::I8 { values, .. } => (KIND_I8, values.len(), 4 + values.len()),
    };
    let mut out = Vec::with_capacity(RECORD_HEAD + payload_len);
    out.extend_from_slice(&u128::from(id).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(&u16::try_from(dim).unwrap_or(u16::MAX).to_be_bytes());
    match embedding {
        StoredEmbedding::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        StoredEmbedding::I8 { values, .. } => {
            out.extend_from_slice(&inv_norm_i8(values).to_le_bytes());
            out.extend(values.iter().map(|&b| b as u8));
        }
    }
    out
}

/// One record, borrowed from the block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    pub(crate) id: Ulid,
    kind: u8,
    dimension: usize,
    payload: &'a [u8],
    /// The whole record, for compaction.
    bytes: &'a [u8],
}

/// A parsed block (its header and generation through [`Packed`]).
#[derive(Debug)]
pub(crate) struct Block<'a>(Packed<'a>);

impl<'a> std::ops::Deref for Block<'a> {
    type Target = Packed<'a>;

    fn deref(&self) -> &Packed<'a> {
        &self.0
    }
}

fn corrupt(what: &str) -> Error {
    packed::corrupt("vector block", what)
}

impl<'a> Block<'a> {
    /// Reads a block's header; records are read as they are iterated.
    pub(crate) fn parse(block: &'a [u8]) -> Result<Block<'a>> {
        Packed::parse(block, MAGIC, "vector block").map(Block)
    }

    /// The records in the order they were appended; a truncated or unknown record is
    /// [`Error::Corrupt`].
    pub(crate) fn records(&self) -> impl Iterator<Item = Result<Record<'a>>> + 'a {
        self.0.records(next_record)
    }
}

fn next_record(rest: &[u8]) -> Result<(Record<'_>, &[u8])> {
    let id = packed::record_id(rest, RECORD_HEAD, "vector block")?;
    let kind = rest[16];
    let dimension = usize::from(u16::from_be_bytes([rest[17], rest[18]]));
    let payload_len = match kind {
        KIND_F32 => 4 * dimension,
        KIND_I8 => 4 + dimension,
        other => return Err(corrupt(&format!("record kind {other}"))),
    };
    let (bytes, after) = packed::split_record(rest, RECORD_HEAD + payload_len, "vector block")?;
    let record = Record {
        id,
        kind,
        dimension,
        payload: &bytes[RECORD_HEAD..],
        bytes,
    };
    Ok((record, after))
}

/// Scores records against one unit-length query, reusing a buffer for `f32` payloads.
#[derive(Debug)]
pub(crate) struct Scorer<'q> {
    query: &'q [f32],
    wide: WideQuery,
    floats: Vec<f32>,
}

impl<'q> Scorer<'q> {
    pub(crate) fn new(query: &'q [f32]) -> Self {
        Scorer {
            query,
            wide: WideQuery::new(query),
            floats: Vec::with_capacity(query.len()),
        }
    }

    /// The cosine similarity of the query and `r`; a record of another dimension is
    /// [`Error::InvalidInput`] (the query does not fit the stored embeddings).
    pub(crate) fn score(&mut self, r: &Record<'_>) -> Result<f32> {
        if r.dimension != self.query.len() {
            return Err(Error::InvalidInput(format!(
                "query embedding has dimension {}; memory {} was stored with dimension {}",
                self.query.len(),
                r.id,
                r.dimension
            )));
        }
        let score = match r.kind {
            KIND_F32 => {
                self.floats.clear();
                self.floats.extend(
                    r.payload
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                cosine_f32(self.query, &self.floats)
            }
            _ => {
                let p = r.payload;
                let inv_norm = f32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                if !(inv_norm.is_finite() && inv_norm >= 0.0) {
                    return Err(corrupt(&format!("record of {} has no length", r.id)));
                }
                self.wide.cosine_i8(&p[4..], inv_norm)
            }
        };
        if score.is_finite() {
            Ok(score)
        } else {
            Err(corrupt(&format!("record of {} does not score", r.id)))
        }
    }
}

/// Bytes of a block's header and its first record's head: what [`first_record_len`] reads.
pub(crate) const PREFIX_LEN: usize = HEADER_LEN + RECORD_HEAD;

/// The length of the first record of a block, from its first [`PREFIX_LEN`] bytes; `None`
/// when the block holds no (whole) record head.
pub(crate) fn first_record_len(prefix: &[u8]) -> Option<usize> {
    let head = prefix.get(HEADER_LEN..PREFIX_LEN)?;
    let dimension = usize::from(u16::from_be_bytes([head[17], head[18]]));
    match head[16] {
        KIND_F32 => Some(RECORD_HEAD + 4 * dimension),
        KIND_I8 => Some(RECORD_HEAD + 4 + dimension),
        _ => None,
    }
}

/// Whether a block of `records` for `indexed` entries is worth compacting: its records
/// outnumber the entries by half (and by more than a few).
pub(crate) fn bloated(records: u64, indexed: u64) -> bool {
    records > indexed + indexed / 2 + 64
}

/// `block` without the records of ids not in `live` and without repeats, under the next
/// generation's header; `None` when it would not shrink.
pub(crate) fn compacted(block: &Block<'_>, live: &HashSet<Ulid>) -> Result<Option<Vec<u8>>> {
    packed::compacted(
        header(block.generation.wrapping_add(1)),
        block.records.len(),
        block.records().map(|r| r.map(|r| (r.id, r.bytes))),
        live,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn block_of(records: &[(Ulid, StoredEmbedding)]) -> Vec<u8> {
        let mut b = header(7).to_vec();
        for (id, e) in records {
            b.extend(record(*id, e));
        }
        b
    }

    #[test]
    fn records_round_trip_and_score() {
        let (a, b) = (Ulid::from(1u128), Ulid::from(u128::MAX));
        let bytes = block_of(&[
            (a, StoredEmbedding::new(&[1.0, 0.0, 0.0], false)),
            (b, StoredEmbedding::new(&[0.0, 2.0, 0.0], true)),
        ]);
        let block = Block::parse(&bytes).unwrap();
        assert_eq!(block.generation, 7);
        let query = [0.0, 1.0, 0.0];
        let mut scorer = Scorer::new(&query);
        let scored: Vec<(Ulid, f32)> = block
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r.id, scorer.score(&r).unwrap())
            })
            .collect();
        assert_eq!(scored, [(a, 0.0), (b, 1.0)]);
        // An IM record at dimension 384 is 407 bytes.
        let im = record(a, &StoredEmbedding::new(&[0.5; 384], true));
        assert_eq!(im.len(), 407);
        assert_eq!(
            first_record_len(&bytes[..PREFIX_LEN]),
            Some(RECORD_HEAD + 12)
        );
        let mut im_block = header(0).to_vec();
        im_block.extend(&im);
        assert_eq!(first_record_len(&im_block), Some(407));
        assert_eq!(first_record_len(&header(0)), None);
    }

    #[test]
    fn wrong_dimensions_and_damage_are_errors() {
        let bytes = block_of(&[(Ulid::from(3u128), StoredEmbedding::new(&[1.0, 0.0], false))]);
        let block = Block::parse(&bytes).unwrap();
        let r = block.records().next().unwrap().unwrap();
        let query = [1.0, 0.0, 0.0];
        let e = Scorer::new(&query).score(&r).unwrap_err().to_string();
        assert!(
            e.contains("dimension 3") && e.contains("dimension 2"),
            "{e}"
        );
        for cut in 1..bytes.len() - HEADER_LEN {
            let cut = &bytes[..bytes.len() - cut];
            if let Ok(b) = Block::parse(cut) {
                assert!(b.records().any(|r| r.is_err()), "{} bytes", cut.len());
            }
        }
        assert!(Block::parse(b"Vx").is_err());
        let mut other = bytes.clone();
        other[1] = 9;
        assert!(
            Block::parse(&other)
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        let mut kind = bytes;
        kind[HEADER_LEN + 16] = 7;
        let b = Block::parse(&kind).unwrap();
        assert!(b.records().next().unwrap().is_err());
    }

    proptest::proptest! {
        /// Damaged blocks: records of any kind and dimension with random payloads (NaNs,
        /// infinities, wrong lengths), then garbage. Every score is finite or an error,
        /// and nothing panics.
        #[test]
        fn damaged_blocks_score_finite_or_refuse(
            query in proptest::collection::vec(-1.0f32..1.0, 1..8),
            records in proptest::collection::vec(
                (0u8..4, proptest::prelude::any::<bool>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
                0..6,
            ),
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..30),
        ) {
            let mut bytes = header(1).to_vec();
            for (n, (kind, fits, payload)) in records.iter().enumerate() {
                bytes.extend_from_slice(&(n as u128).to_be_bytes());
                bytes.push(*kind);
                let dim = if *fits { query.len() } else { payload.len() % 5 };
                bytes.extend_from_slice(&(dim as u16).to_be_bytes());
                let want = if *kind == KIND_F32 { 4 * dim } else { 4 + dim };
                bytes.extend(payload.iter().copied().cycle().take(want));
            }
            bytes.extend(garbage);
            let block = Block::parse(&bytes).unwrap();
            let mut scorer = Scorer::new(&query);
            let mut live = HashSet::new();
            for r in block.records() {
                let Ok(r) = r else { break };
                live.insert(r.id);
                if let Ok(score) = scorer.score(&r) {
                    proptest::prop_assert!(score.is_finite(), "{score}");
                }
            }
            let _ = compacted(&block, &live);
        }
    }

    #[test]
    fn compaction_keeps_one_record_per_live_id() {
        let (a, b, c) = (Ulid::from(1u128), Ulid::from(2u128), Ulid::from(3u128));
        let e = StoredEmbedding::new(&[1.0], false);
        let bytes = block_of(&[
            (a, e.clone()),
            (b, e.clone()),
            (a, e.clone()),
            (c, e.clone()),
        ]);
        let block = Block::parse(&bytes).unwrap();
        let live: HashSet<Ulid> = [a, c].into();
        let out = compacted(&block, &live).unwrap().unwrap();
        let out = Block::parse(&out).unwrap();
        assert_eq!(out.generation, 8);
        let ids: Vec<Ulid> = out.records().map(|r| r.unwrap().id).collect();
        assert_eq!(ids, [a, c]);
        let all: HashSet<Ulid> = [a, c].into();
        let again = compacted(&out, &all).unwrap();
        assert!(again.is_none(), "nothing to drop");
    }
}
