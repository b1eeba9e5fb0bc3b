//! A postings block turned into an inverted index, kept up to date by parsing only what
//! was appended since it last looked.
//!
//! Scoring BM25 straight from the block means parsing every record of the agent's tier
//! on every search: for 10,000 memories, about four million instructions per query, more
//! than half of what cosine scoring costs. The block only grows between compactions (see
//! the `postings` module), so [`TextIndex`] parses each record once: it lists each memory
//! once (its first record: a replayed write appends a second), with its length, and for
//! each word the memories that have it and how often. A search then walks every memory
//! once for the statistics BM25 needs over the memories it searches (count and lengths:
//! a comparison and an addition each), and only the posting lists of the query's words.
//!
//! The local replica keeps one index per postings block it holds (see `replica`); a
//! block of another generation (compacted) is indexed again from its start.

use rustc_hash::FxHashMap;
use ulid::Ulid;

use crate::error::Result;
use crate::postings::PostingsBlock;
use crate::scoring::bm25_of_word;

/// The inverted index of one postings block, up to the bytes it has read.
#[derive(Debug, Default)]
pub(crate) struct TextIndex {
    /// The block's generation, and how many of its bytes are indexed.
    generation: u64,
    covered: usize,
    /// Each memory once, in the order its first record came: id and length in words.
    memories: Vec<(Ulid, u16)>,
    /// Which of `memories` a memory id is.
    position: FxHashMap<Ulid, u32>,
    /// For each word, the memories that have it (positions in `memories`) and how often.
    words: FxHashMap<u64, Vec<(u32, u8)>>,
}

impl TextIndex {
    /// Brings the index up to `block`: parses the records past what it has read, or, for
    /// a block of another generation or shorter than what was read, indexes it again.
    pub(crate) fn catch_up(&mut self, block: &[u8]) -> Result<()> {
        let parsed = PostingsBlock::parse(block)?;
        if parsed.generation != self.generation || block.len() < self.covered || self.covered == 0 {
            *self = TextIndex {
                generation: parsed.generation,
                covered: parsed.header.len(),
                ..TextIndex::default()
            };
        }
        for posting in PostingsBlock::parse_from(block, self.covered)?.records() {
            let posting = posting?;
            if self.position.contains_key(&posting.id) {
                continue;
            }
            let at = u32::try_from(self.memories.len()).unwrap_or(u32::MAX);
            self.position.insert(posting.id, at);
            self.memories.push((posting.id, posting.length));
            for (word, count) in posting.words() {
                self.words.entry(word).or_default().push((at, count));
            }
        }
        self.covered = block.len();
        Ok(())
    }

    /// About how many bytes the index takes (for the replica's budget).
    pub(crate) fn weight(&self) -> usize {
        let listed: usize = self.words.values().map(Vec::len).sum();
        self.memories.len() * (18 + 40) + self.words.len() * 48 + listed * 8
    }

    /// BM25 of the query's distinct `words` for every memory `searched` admits that has one
    /// of them (the others score 0), with `N`, `df` and the average length taken over the
    /// memories `searched` admits (see `scoring`).
    pub(crate) fn bm25(
        &self,
        words: &[u64],
        searched: impl Fn(Ulid) -> bool,
    ) -> FxHashMap<Ulid, f32> {
        let admitted: Vec<bool> = self.memories.iter().map(|(id, _)| searched(*id)).collect();
        let (mut documents, mut total_length) = (0u64, 0u64);
        for ((_, length), admitted) in self.memories.iter().zip(&admitted) {
            if *admitted {
                documents += 1;
                total_length += u64::from(*length);
            }
        }
        let n = documents as f64;
        let avg_length = if documents == 0 {
            1.0
        } else {
            (total_length as f64 / n).max(f64::MIN_POSITIVE)
        };
        let mut scores: FxHashMap<u32, f64> = FxHashMap::default();
        for word in words {
            let Some(list) = self.words.get(word) else {
                continue;
            };
            let admitted_list = || list.iter().filter(|(at, _)| admitted[*at as usize]);
            let df = admitted_list().count() as f64;
            for (at, count) in admitted_list() {
                let length = f64::from(self.memories[*at as usize].1);
                *scores.entry(*at).or_default() +=
                    bm25_of_word(n, df, f64::from(*count), length, avg_length);
            }
        }
        scores
            .into_iter()
            .map(|(at, score)| (self.memories[at as usize].0, score as f32))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::postings::{header, record};
    use crate::text::{Terms, term_of};

    fn block(generation: u64, records: &[(u128, &str)]) -> Vec<u8> {
        let mut bytes = header(generation).to_vec();
        for (id, text) in records {
            bytes.extend(record(Ulid::from(*id), &Terms::of_text(text)));
        }
        bytes
    }

    #[test]
    fn an_appended_tail_is_indexed_without_reading_the_rest_again() {
        let mut index = TextIndex::default();
        let mut bytes = block(3, &[(1, "red fox"), (2, "hen")]);
        index.catch_up(&bytes).unwrap();
        assert_eq!(index.memories.len(), 2);
        bytes.extend(record(Ulid::from(3u128), &Terms::of_text("red red")));
        bytes.extend(record(Ulid::from(1u128), &Terms::of_text("red fox")));
        index.catch_up(&bytes).unwrap();
        // The replayed record of 1 is not a second memory.
        assert_eq!(index.memories.len(), 3);
        assert_eq!(index.words[&term_of("red")], [(0, 1), (2, 2)]);
        // Another generation is indexed from its start.
        index.catch_up(&block(4, &[(9, "cow")])).unwrap();
        assert_eq!(index.memories, [(Ulid::from(9u128), 1)]);
        assert!(index.weight() > 0);
    }

    #[test]
    fn the_index_scores_what_parsing_the_block_scores() {
        let bytes = block(
            1,
            &[
                (1, "fox fox hen"),
                (2, "hen"),
                (3, "cow cow"),
                (1, "fox fox hen"),
            ],
        );
        let mut index = TextIndex::default();
        index.catch_up(&bytes).unwrap();
        let query = [term_of("fox")];
        // By hand (see `scoring`): N = 3, avg_len = 2, df = 1.
        let want = ((8.0f64 / 3.0).ln() * 4.4 / 3.65) as f32;
        let scores = index.bm25(&query, |_| true);
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[&Ulid::from(1u128)], want);
        // Leaving out 3: N = 2, idf = ln 2.
        let scores = index.bm25(&query, |id| id != Ulid::from(3u128));
        assert_eq!(scores[&Ulid::from(1u128)], (2f64.ln() * 4.4 / 3.65) as f32);
        assert!(index.bm25(&[term_of("pig")], |_| true).is_empty());
    }
}
