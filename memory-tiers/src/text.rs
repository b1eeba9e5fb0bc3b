//! The words of a memory, as a similarity search's text term counts them.
//!
//! A memory's content is any JSON; its text is every string in it (object values and
//! array items, at any depth, not object keys), the same strings
//! [`Filter::content_contains`](crate::Filter::content_contains) looks in. Each string is
//! split at every character that is not alphanumeric, and each piece is lower-cased: a
//! token. A term is a token's 64-bit hash (xxh3), so a record stores a fixed 9 bytes per
//! distinct term, its hash and its count, and two different words share a term only with
//! odds of one in 2^64 per pair.
//!
//! A memory keeps at most [`MAX_TERMS`] distinct terms, its most frequent (ties by hash),
//! and counts up to 255 of each; its length is the number of its tokens (up to 65,535).
//! These are the numbers BM25 is computed on.

use serde_json::Value;

/// Distinct terms kept per memory.
pub(crate) const MAX_TERMS: usize = 128;

/// The term of one token (already lower-cased).
pub(crate) fn term_of(token: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(token.as_bytes())
}

/// A memory's terms: how many tokens it has, and each distinct term with its count,
/// sorted by term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Terms {
    /// Tokens in the text (saturating at `u16::MAX`).
    pub(crate) length: u16,
    /// `(term, count)`, sorted by term, at most [`MAX_TERMS`].
    pub(crate) counts: Vec<(u64, u8)>,
}

impl Terms {
    /// The terms of every string in `content`, leaving out the top-level fields named in
    /// `dropped` (the transient fields a compressed tier does not store).
    pub(crate) fn of_content(content: &Value, dropped: &[String]) -> Terms {
        let mut tokens = Vec::new();
        match content {
            Value::Object(map) if !dropped.is_empty() => map
                .iter()
                .filter(|(field, _)| !dropped.contains(field))
                .for_each(|(_, v)| each_string(v, &mut |s| tokenize(s, &mut tokens))),
            _ => each_string(content, &mut |s| tokenize(s, &mut tokens)),
        }
        Terms::of_tokens(tokens)
    }

    /// The terms of one text (a search's query).
    pub(crate) fn of_text(text: &str) -> Terms {
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        Terms::of_tokens(tokens)
    }

    fn of_tokens(mut tokens: Vec<u64>) -> Terms {
        let length = u16::try_from(tokens.len()).unwrap_or(u16::MAX);
        tokens.sort_unstable();
        let mut counts: Vec<(u64, u32)> = Vec::new();
        for term in tokens {
            match counts.last_mut() {
                Some((last, n)) if *last == term => *n += 1,
                _ => counts.push((term, 1)),
            }
        }
        if counts.len() > MAX_TERMS {
            // The most frequent, ties by term; then back in term order.
            counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            counts.truncate(MAX_TERMS);
            counts.sort_unstable_by_key(|c| c.0);
        }
        Terms {
            length,
            counts: counts
                .into_iter()
                .map(|(t, n)| (t, u8::try_from(n).unwrap_or(u8::MAX)))
                .collect(),
        }
    }

    /// How often `term` occurs (0 when it does not).
    #[cfg(test)]
    pub(crate) fn count(&self, term: u64) -> u8 {
        self.counts
            .binary_search_by_key(&term, |c| c.0)
            .map_or(0, |i| self.counts[i].1)
    }
}

fn each_string(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| each_string(i, f)),
        Value::Object(map) => map.values().for_each(|i| each_string(i, f)),
        _ => {}
    }
}

fn tokenize(text: &str, out: &mut Vec<u64>) {
    let mut lowered = String::new();
    for piece in text.split(|c: char| !c.is_alphanumeric()) {
        if piece.is_empty() {
            continue;
        }
        lowered.clear();
        lowered.extend(piece.chars().flat_map(char::to_lowercase));
        out.push(term_of(&lowered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_lower_cased_alphanumeric_runs_of_every_string() {
        let terms = Terms::of_content(
            &json!({
                "text": "The cat, the CAT; a dog!",
                "tags": ["Dog", 7, {"deep": "émigré café"}],
                "cat": 1,
                "scratch": "left out"
            }),
            &["scratch".to_owned()],
        );
        // the ×2, cat ×2, a, dog ×2, émigré, café: 9 tokens, 6 terms.
        assert_eq!(terms.length, 9);
        assert_eq!(terms.counts.len(), 6);
        assert_eq!(terms.count(term_of("the")), 2);
        assert_eq!(terms.count(term_of("cat")), 2);
        assert_eq!(terms.count(term_of("dog")), 2);
        assert_eq!(terms.count(term_of("café")), 1);
        assert_eq!(terms.count(term_of("bird")), 0);
        assert!(terms.counts.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            Terms::of_text("CAT cat"),
            Terms::of_content(&json!("cat Cat"), &[])
        );
    }

    #[test]
    fn the_most_frequent_terms_are_kept_and_counts_saturate() {
        let mut text: Vec<String> = (0..MAX_TERMS + 10).map(|i| format!("w{i}")).collect();
        text.extend(std::iter::repeat_n("often".to_owned(), 300));
        let terms = Terms::of_text(&text.join(" "));
        assert_eq!(terms.counts.len(), MAX_TERMS);
        assert_eq!(terms.count(term_of("often")), u8::MAX);
        assert_eq!(usize::from(terms.length), MAX_TERMS + 10 + 300);
    }
}
