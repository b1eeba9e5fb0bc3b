//! A small, deterministic text embedder: no model to download, the same vector for the
//! same text on every machine. Its use is a demo, a test, or a server asked to embed a
//! text itself; real recall wants a real model's vectors.
//!
//! Feature hashing: each lowercased word and each character trigram of a word adds ±1 to
//! one of `dimension` components (chosen, with its sign, by an FNV-1a hash), and the sum
//! is scaled to length 1. Texts that share words or word fragments point the same way, so
//! cosine similarity ranks "the red door" close to "a door, painted red". It knows nothing
//! of meaning ("car" and "automobile" share nothing): a stand-in for a real model, whose
//! vectors [`AgentMemory::similar`](crate::AgentMemory::similar) takes the same way.

/// The dimension [`hash_embedding`] is meant for: as wide as common small sentence models.
pub const HASH_EMBEDDING_DIMENSION: usize = 384;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The embedding of `text`, `dimension` wide (at least 1), of length 1 (all zeros for a
/// text without a letter or digit).
pub fn hash_embedding(text: &str, dimension: usize) -> Vec<f32> {
    let dimension = dimension.max(1);
    let mut v = vec![0f32; dimension];
    let mut add = |feature: &[u8], weight: f32| {
        let h = fnv1a(feature);
        let at = (h % dimension as u64) as usize;
        v[at] += if h >> 63 == 0 { weight } else { -weight };
    };
    let lowered = text.to_lowercase();
    for word in lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        add(word.as_bytes(), 1.0);
        let padded: Vec<u8> = [b" ", word.as_bytes(), b" "].concat();
        for gram in padded.windows(3) {
            add(gram, 0.5);
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn same_text_same_vector_and_unit_length() {
        let a = hash_embedding("The red door", HASH_EMBEDDING_DIMENSION);
        assert_eq!(a, hash_embedding("the RED door!", HASH_EMBEDDING_DIMENSION));
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(hash_embedding("  ...  ", 8).iter().all(|x| *x == 0.0));
    }

    #[test]
    fn shared_words_score_higher() {
        let q = hash_embedding("red door", HASH_EMBEDDING_DIMENSION);
        let near = hash_embedding("a door, painted red", HASH_EMBEDDING_DIMENSION);
        let far = hash_embedding("the river was cold", HASH_EMBEDDING_DIMENSION);
        assert!(cosine(&q, &near) > cosine(&q, &far) + 0.3);
    }
}
