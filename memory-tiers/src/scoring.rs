//! How a similarity search ranks: the [`Scoring`] type, whose docs give the formula, and
//! BM25's share of one word.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::text::Terms;

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalization.
const B: f64 = 0.75;

/// The weights of a similarity search's score: by default cosine similarity alone, with
/// weight 1.
///
/// [`AgentMemory::similar_scored`](crate::AgentMemory::similar_scored) ranks each memory
/// by
///
/// ```text
/// score = w_cos · cosine + w_text · bm25 + w_recency · 2^(−age / half_life) + w_imp · importance
/// ```
///
/// in `f32`, added left to right (the ranking is exact for this formula: every searched
/// memory is scored, nothing is approximated). The terms:
///
/// - **cosine**: the similarity of the query embedding and the memory's, as
///   [`AgentMemory::similar`](crate::AgentMemory::similar) computes it.
/// - **bm25**: Okapi BM25 of the query text against the memory's words (see
///   [`Scoring::with_text`] for what a word is), with `k1 = 1.2`, `b = 0.75` and Lucene's non-negative idf:
///   `Σ idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len))` over the distinct words
///   `t` of the query, `idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5))`. `N`, `df` and
///   `avg_len` are taken over the memories the search scores in that tier (unexpired, in
///   the filter's range, each once), including deleted ones whose records the tier has
///   not yet compacted away. Computed in `f64`, then rounded to `f32`.
/// - **recency**: 1 for a memory stored now, halving every `half_life` of its age (from
///   when it was stored, its id's time), computed in `f64`, then rounded to `f32`.
/// - **importance**: the memory's importance score, in [0, 1], as stored now (an
///   adjustment counts at once).
///
/// Importance is not in the blocks a search reads; it is read with the entries. So the
/// search ranks by every other term plus `w_imp · 1`, an upper bound, and reads entries
/// in that order until the best exact scores found are above every bound left: the same
/// ranking as scoring everything exactly, at the cost of more entries read when `w_imp`
/// is large beside the other weights. Ties are broken by memory id.
#[derive(Clone, Debug, PartialEq)]
pub struct Scoring {
    cosine_weight: f32,
    text: Option<TextQuery>,
    recency: Option<(Duration, f32)>,
    importance_weight: f32,
}

/// The text term: the query as given, its distinct words (found once, when it is set)
/// and its weight.
#[derive(Clone, Debug, PartialEq)]
struct TextQuery {
    query: String,
    words: Vec<u64>,
    weight: f32,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            cosine_weight: 1.0,
            text: None,
            recency: None,
            importance_weight: 0.0,
        }
    }
}

impl Scoring {
    /// Cosine similarity alone, weight 1: what [`AgentMemory::similar`](crate::AgentMemory::similar) ranks by.
    pub fn cosine() -> Self {
        Scoring::default()
    }

    /// The weight of cosine similarity (default 1; 0 ranks by the other terms alone).
    pub fn with_cosine_weight(mut self, weight: f32) -> Self {
        self.cosine_weight = weight;
        self
    }

    /// Adds BM25 of `query` against each memory's words, with `weight`.
    ///
    /// A memory's words are the alphanumeric runs of every string in its content (object
    /// values and array items at any depth, not keys), lower-cased; a tier that drops
    /// transient fields leaves theirs out. Each memory keeps its 128 most frequent distinct
    /// words, counted up to 255 times, and a word is identified by its 64-bit hash. The
    /// query's words are found the same way; at least one is needed.
    pub fn with_text(mut self, query: impl Into<String>, weight: f32) -> Self {
        let query = query.into();
        let words = Terms::of_text(&query).counts.iter().map(|c| c.0).collect();
        self.text = Some(TextQuery {
            query,
            words,
            weight,
        });
        self
    }

    /// Adds recency, `2^(−age / half_life)`, with `weight`.
    pub fn with_recency(mut self, half_life: Duration, weight: f32) -> Self {
        self.recency = Some((half_life, weight));
        self
    }

    /// Adds the memory's importance score, with `weight`.
    pub fn with_importance(mut self, weight: f32) -> Self {
        self.importance_weight = weight;
        self
    }

    /// Whether this is cosine similarity alone, weight 1 (the plain search's ranking).
    pub(crate) fn is_plain_cosine(&self) -> bool {
        *self == Scoring::default()
    }

    /// Checks every weight (finite, not negative), the half-life (above zero) and the
    /// text (at least one word): [`Error::InvalidInput`] naming the one at fault.
    pub(crate) fn check(&self) -> Result<()> {
        let weight = |name: &str, w: f32| {
            if w.is_finite() && w >= 0.0 {
                Ok(())
            } else {
                Err(Error::InvalidInput(format!(
                    "scoring: the {name} weight is {w}: use a finite weight of 0 or more"
                )))
            }
        };
        weight("cosine", self.cosine_weight)?;
        weight("importance", self.importance_weight)?;
        if let Some(text) = &self.text {
            weight("text", text.weight)?;
            if text.words.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "scoring: the text query {:?} has no words (letters or digits)",
                    text.query
                )));
            }
        }
        if let Some((half_life, w)) = &self.recency {
            weight("recency", *w)?;
            if half_life.is_zero() {
                return Err(Error::InvalidInput(
                    "scoring: the recency half-life is zero: give it a duration above zero"
                        .to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// The text query's distinct words, when the text term counts (a weight above 0: a
    /// zero weight adds nothing, so the search reads no postings for it).
    pub(crate) fn text_terms(&self) -> Option<&[u64]> {
        self.text
            .as_ref()
            .filter(|t| t.weight > 0.0)
            .map(|t| t.words.as_slice())
    }

    /// Every term but importance: `w_cos·cosine + w_text·bm25 + w_recency·recency`.
    pub(crate) fn partial(&self, cosine: f32, bm25: f32, age_ms: u64) -> f32 {
        let mut score = self.cosine_weight * cosine;
        if let Some(text) = &self.text {
            score += text.weight * bm25;
        }
        if let Some((half_life, w)) = &self.recency {
            let halvings = age_ms as f64 / half_life.as_millis().max(1) as f64;
            score += w * (-halvings).exp2() as f32;
        }
        score
    }

    /// The whole score, from [`partial`](Self::partial) and the importance.
    pub(crate) fn with_importance_of(&self, partial: f32, importance: f64) -> f32 {
        partial + self.importance_weight * importance as f32
    }
}

/// One word's share of a memory's BM25: `idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len))`
/// with `idf = ln(1 + (N − df + 0.5)/(df + 0.5))`.
pub(crate) fn bm25_of_word(n: f64, df: f64, tf: f64, length: f64, avg_length: f64) -> f64 {
    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
    let norm = K1 * (1.0 - B + B * length / avg_length);
    idf * tf * (K1 + 1.0) / (tf + norm)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_weights_and_empty_text_are_refused_by_name() {
        let bad = [
            (Scoring::cosine().with_cosine_weight(-1.0), "cosine"),
            (Scoring::cosine().with_importance(f32::NAN), "importance"),
            (Scoring::cosine().with_text("fox", f32::INFINITY), "text"),
            (Scoring::cosine().with_text("  ,; ", 1.0), "no words"),
            (
                Scoring::cosine().with_recency(Duration::ZERO, 1.0),
                "half-life",
            ),
            (
                Scoring::cosine().with_recency(Duration::from_secs(1), -0.5),
                "recency",
            ),
        ];
        for (scoring, name) in bad {
            let e = scoring.check().unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        assert!(Scoring::cosine().check().is_ok());
        assert!(Scoring::cosine().is_plain_cosine());
        assert!(!Scoring::cosine().with_importance(0.1).is_plain_cosine());
    }

    #[test]
    fn the_query_words_are_found_once_and_a_zero_text_weight_reads_no_postings() {
        let weighted = Scoring::cosine().with_text("The red DOOR, the door", 0.5);
        let words = weighted.text_terms().unwrap();
        assert_eq!(words.len(), 3, "distinct words: the, red, door");
        assert_eq!(
            words,
            Terms::of_text("door red the")
                .counts
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>()
        );
        let zero = Scoring::cosine().with_text("red door", 0.0);
        assert!(zero.check().is_ok());
        assert!(
            zero.text_terms().is_none(),
            "nothing to score, nothing to read"
        );
        assert_eq!(zero.partial(0.5, 7.0, 0), 0.5);
    }

    #[test]
    fn recency_halves_every_half_life() {
        let s = Scoring::cosine()
            .with_cosine_weight(0.0)
            .with_recency(Duration::from_secs(10), 1.0);
        assert_eq!(s.partial(0.9, 0.0, 0), 1.0);
        assert_eq!(s.partial(0.9, 0.0, 10_000), 0.5);
        assert_eq!(s.partial(0.9, 0.0, 20_000), 0.25);
    }

    #[test]
    fn bm25_of_a_word_by_hand() {
        // N = 3, df = 1: idf = ln(1 + 2.5/1.5) = ln(8/3); tf = 2, len = 3, avg_len = 2:
        // norm = 1.2·(0.25 + 0.75·1.5) = 1.65; 2·2.2/(2 + 1.65) = 4.4/3.65.
        let want = (8.0f64 / 3.0).ln() * 4.4 / 3.65;
        assert!((bm25_of_word(3.0, 1.0, 2.0, 3.0, 2.0) - want).abs() < 1e-12);
    }
}
