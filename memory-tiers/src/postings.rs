//! An agent's postings block: the words of each memory of one tier that has an embedding,
//! packed in one Redis string beside the vector block, so a similarity search with a text
//! term (BM25) reads them the way it reads the vectors: whole the first time, then only
//! what was appended since (the local replica keeps both blocks).
//!
//! ```text
//! <ns>:{<tier>:<agent_id>}:postings
//!
//! header   b'T', version 1, generation (u64 BE)                       10 bytes
//! record   memory id (16 bytes), length in tokens (u16 BE), term count n (u8),
//!          then n times: term (u64 BE), count (u8), terms in ascending order
//! ```
//!
//! A write appends its entry's record in the same `MULTI` as its vector record, so the two
//! blocks list the same memories; deletes, moves and expiry leave records behind, as in
//! the vector block, and the block is compacted with it, to the same live set. What a term
//! and a length are is in the `text` module.

use std::collections::HashSet;

use ulid::Ulid;

use crate::error::Result;
use crate::packed::{self, Packed};
use crate::text::Terms;

/// Bytes of the block header.
pub(crate) const HEADER_LEN: usize = packed::HEADER_LEN;
const MAGIC: u8 = packed::POSTINGS;
/// Id, length and term count.
const RECORD_HEAD: usize = 16 + 2 + 1;
/// Term and count.
const POSTING_LEN: usize = 8 + 1;

/// The header of a postings block at `generation`.
pub(crate) fn header(generation: u64) -> [u8; HEADER_LEN] {
    packed::header(MAGIC, generation)
}

/// The record of memory `id` with `terms`.
pub(crate) fn record(id: Ulid, terms: &Terms) -> Vec<u8> {
    let n = terms.counts.len().min(usize::from(u8::MAX));
    let mut out = Vec::with_capacity(RECORD_HEAD + n * POSTING_LEN);
    out.extend_from_slice(&u128::from(id).to_be_bytes());
    out.extend_from_slice(&terms.length.to_be_bytes());
    out.push(n as u8);
    for (term, count) in &terms.counts[..n] {
        out.extend_from_slice(&term.to_be_bytes());
        out.push(*count);
    }
    out
}

/// One memory's record, borrowed from the block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Posting<'a> {
    pub(crate) id: Ulid,
    /// Tokens in the memory's text.
    pub(crate) length: u16,
    terms: &'a [u8],
    bytes: &'a [u8],
}

impl Posting<'_> {
    /// The memory's words and how often each occurs, in ascending order of word.
    pub(crate) fn words(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        self.terms.chunks_exact(POSTING_LEN).map(|p| {
            let mut word = [0; 8];
            word.copy_from_slice(&p[..8]);
            (u64::from_be_bytes(word), p[8])
        })
    }

    /// How often `term` occurs in the memory (0 when it does not).
    #[cfg(test)]
    pub(crate) fn count(&self, term: u64) -> u8 {
        // Sorted by term: a binary search over the fixed-size postings.
        let (mut lo, mut hi) = (0, self.terms.len() / POSTING_LEN);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = &self.terms[mid * POSTING_LEN..(mid + 1) * POSTING_LEN];
            let mut word = [0; 8];
            word.copy_from_slice(&at[..8]);
            match u64::from_be_bytes(word).cmp(&term) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return at[8],
            }
        }
        0
    }
}

/// A parsed postings block (its header and generation through [`Packed`]).
#[derive(Debug)]
pub(crate) struct PostingsBlock<'a>(Packed<'a>);

impl<'a> std::ops::Deref for PostingsBlock<'a> {
    type Target = Packed<'a>;

    fn deref(&self) -> &Packed<'a> {
        &self.0
    }
}

impl<'a> PostingsBlock<'a> {
    /// Reads a block's header; records are read as they are iterated.
    pub(crate) fn parse(block: &'a [u8]) -> Result<PostingsBlock<'a>> {
        Packed::parse(block, MAGIC, "postings block").map(PostingsBlock)
    }

    /// The block's records from byte `offset` on (where an earlier read of it ended).
    pub(crate) fn parse_from(block: &'a [u8], offset: usize) -> Result<PostingsBlock<'a>> {
        Packed::parse_from(block, MAGIC, "postings block", offset).map(PostingsBlock)
    }

    /// The records in the order they were appended; a truncated one is [`Error::Corrupt`](crate::Error::Corrupt).
    pub(crate) fn records(&self) -> impl Iterator<Item = Result<Posting<'a>>> + 'a {
        self.0.records(next_record)
    }
}

fn next_record(rest: &[u8]) -> Result<(Posting<'_>, &[u8])> {
    let id = packed::record_id(rest, RECORD_HEAD, "postings block")?;
    let length = u16::from_be_bytes([rest[16], rest[17]]);
    let len = RECORD_HEAD + usize::from(rest[18]) * POSTING_LEN;
    let (bytes, after) = packed::split_record(rest, len, "postings block")?;
    let posting = Posting {
        id,
        length,
        terms: &bytes[RECORD_HEAD..],
        bytes,
    };
    Ok((posting, after))
}

/// `block` with only the first record of each id in `live`, under the next generation's
/// header; `None` when it would not shrink.
pub(crate) fn compacted(
    block: &PostingsBlock<'_>,
    live: &HashSet<Ulid>,
) -> Result<Option<Vec<u8>>> {
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
    use crate::text::term_of;

    #[test]
    fn records_round_trip_and_compact() {
        let (a, b) = (Ulid::from(1u128), Ulid::from(2u128));
        let terms = Terms::of_text("red fox, red hen");
        let mut bytes = header(5).to_vec();
        bytes.extend(record(a, &terms));
        bytes.extend(record(b, &Terms::default()));
        bytes.extend(record(a, &terms));
        let block = PostingsBlock::parse(&bytes).unwrap();
        assert_eq!(block.generation, 5);
        let all: Vec<Posting<'_>> = block.records().map(|r| r.unwrap()).collect();
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].id, all[0].length), (a, 4));
        assert_eq!(all[0].count(term_of("red")), 2);
        assert_eq!(all[0].count(term_of("hen")), 1);
        assert_eq!(all[0].count(term_of("cow")), 0);
        let words: Vec<(u64, u8)> = all[0].words().collect();
        assert_eq!(words.len(), 3);
        assert!(words.windows(2).all(|w| w[0].0 < w[1].0));
        let tail = PostingsBlock::parse_from(&bytes, HEADER_LEN + all[0].bytes.len()).unwrap();
        assert_eq!(tail.records().count(), 2);
        assert_eq!(
            (all[1].id, all[1].length, all[1].count(term_of("red"))),
            (b, 0, 0)
        );
        let out = compacted(&block, &[a].into()).unwrap().unwrap();
        let out = PostingsBlock::parse(&out).unwrap();
        assert_eq!(out.generation, 6);
        assert_eq!(
            out.records().map(|r| r.unwrap().id).collect::<Vec<_>>(),
            [a]
        );
        assert_eq!(packed::generation_of(&header(9)), Some(9));
    }

    #[test]
    fn damage_is_an_error() {
        let mut bytes = header(1).to_vec();
        bytes.extend(record(Ulid::from(3u128), &Terms::of_text("a b c")));
        for cut in 1..bytes.len() - HEADER_LEN {
            let block = PostingsBlock::parse(&bytes[..bytes.len() - cut]).unwrap();
            assert!(block.records().any(|r| r.is_err()));
        }
        assert!(PostingsBlock::parse(&crate::vectors::header(1)).is_err());
    }
}
