//! Embeddings: how they are checked, stored and scored.
//!
//! STM keeps an embedding as written, `f32`s. IM, at compression levels 1 and 2, keeps it
//! as one signed byte per dimension and one `f32` scale (the largest magnitude over 127):
//! 388 bytes at dimension 384 instead of 1,536. Scoring is cosine similarity, and the
//! scale cancels out of it, so an IM vector is scored straight from its bytes, against the
//! query as 16-bit integers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The widest embedding accepted.
pub const MAX_DIMENSION: usize = u16::MAX as usize;

/// An embedding as a tier stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum StoredEmbedding {
    /// As written.
    F32(Vec<f32>),
    /// `value[i] ≈ scale * bytes[i]`.
    I8 { scale: f32, values: Vec<i8> },
}

impl StoredEmbedding {
    /// Stores `v` exactly, or quantized to bytes.
    pub(crate) fn new(v: &[f32], quantize: bool) -> Self {
        if !quantize {
            return StoredEmbedding::F32(v.to_vec());
        }
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        if max == 0.0 {
            return StoredEmbedding::I8 {
                scale: 0.0,
                values: vec![0; v.len()],
            };
        }
        let scale = max / 127.0;
        let values = v
            .iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        StoredEmbedding::I8 { scale, values }
    }

    /// The vector, dequantized when stored as bytes.
    pub(crate) fn to_f32(&self) -> Vec<f32> {
        match self {
            StoredEmbedding::F32(v) => v.clone(),
            StoredEmbedding::I8 { scale, values } => {
                values.iter().map(|&b| f32::from(b) * scale).collect()
            }
        }
    }
}

/// Checks a stored embedding: non-empty and finite, and of `dimension` when one is
/// fixed.
pub(crate) fn check_stored(v: &[f32], dimension: Option<usize>) -> Result<()> {
    if v.is_empty() {
        return Err(Error::InvalidInput("embedding is empty".to_owned()));
    }
    if v.len() > MAX_DIMENSION {
        return Err(Error::InvalidInput(format!(
            "embedding has {} dimensions, over the limit of {MAX_DIMENSION}",
            v.len()
        )));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(
            "embedding values must be finite".to_owned(),
        ));
    }
    check_dimension(v.len(), dimension)
}

/// Checks a query vector like [`check_stored`], and that it has a direction (a zero
/// vector has no cosine with anything). Returns it scaled to length 1.
pub(crate) fn unit_query(q: &[f32], dimension: Option<usize>) -> Result<Vec<f32>> {
    check_stored(q, dimension)?;
    let norm = q
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return Err(Error::InvalidInput(
            "query embedding is all zeros: it has no direction to compare".to_owned(),
        ));
    }
    Ok(q.iter().map(|&x| (f64::from(x) / norm) as f32).collect())
}

/// `len` against the namespace's dimension.
pub(crate) fn check_dimension(len: usize, dimension: Option<usize>) -> Result<()> {
    match dimension {
        Some(d) if d != len => Err(Error::InvalidInput(format!(
            "embedding has dimension {len}; this memory's embeddings have dimension {d}"
        ))),
        _ => Ok(()),
    }
}

/// Lanes summed separately, so the compiler keeps them in vector registers.
const LANES: usize = 8;

/// Cosine similarity of a unit-length `query` and `v`; 0 for a zero `v`.
///
/// Compiled for each of the CPU's vector units and chosen at run time (AVX-512, AVX2 or
/// the x86-64 baseline; NEON on ARM64). Every version computes the same result bit for
/// bit: each of the eight lanes adds its products in the same order, the lanes are summed
/// in the same order, and Rust never fuses a multiply and an add on its own, so wider
/// registers only do more lanes' work per instruction.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2", "aarch64+neon"))]
pub(crate) fn cosine_f32(query: &[f32], v: &[f32]) -> f32 {
    let mut dot = [0f32; LANES];
    let mut norm = [0f32; LANES];
    let (qc, vc) = (query.chunks_exact(LANES), v.chunks_exact(LANES));
    let (qr, vr) = (qc.remainder(), vc.remainder());
    for (q, x) in qc.zip(vc) {
        for i in 0..LANES {
            dot[i] += q[i] * x[i];
            norm[i] += x[i] * x[i];
        }
    }
    let (mut d, mut n) = (dot.iter().sum::<f32>(), norm.iter().sum::<f32>());
    for (q, x) in qr.iter().zip(vr) {
        d += q * x;
        n += x * x;
    }
    if n > 0.0 { d / n.sqrt() } else { 0.0 }
}

/// The dot product of a query's 16-bit integers with signed bytes (`v[i] as i8`), compiled
/// for each of the CPU's vector units and chosen at run time, as [`cosine_f32`] is. Integer
/// sums: every version gives the same result.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2", "aarch64+neon"))]
fn dot_i16_i8(query: &[i16], v: &[u8]) -> i32 {
    query
        .iter()
        .zip(v)
        .map(|(&q, &b)| i32::from(q) * i32::from(b as i8))
        .sum()
}

/// A unit-length query as 16-bit integers, for scoring vectors of bytes with integer
/// multiply-adds (which compile to SIMD on every x86-64 and ARM64 CPU): `values[i] ≈
/// query[i] * factor`, the factor as large as keeps every dot product within `i32`.
#[derive(Clone, Debug)]
pub(crate) struct WideQuery {
    values: Vec<i16>,
    factor: f32,
}

impl WideQuery {
    pub(crate) fn new(query: &[f32]) -> Self {
        let max = query.iter().fold(0f32, |m, x| m.max(x.abs()));
        // |byte| <= 128, so a dot product is at most len * limit * 128.
        let limit = (i32::MAX as usize / (128 * query.len().max(1))).min(i16::MAX as usize);
        let factor = if max > 0.0 { limit as f32 / max } else { 0.0 };
        let values = query
            .iter()
            .map(|x| (x * factor).round().clamp(-(limit as f32), limit as f32) as i16)
            .collect();
        WideQuery { values, factor }
    }

    /// Cosine similarity with a vector of signed bytes (`v[i] as i8`) whose length is
    /// `1 / inv_norm`: the scale of the bytes cancels out.
    pub(crate) fn cosine_i8(&self, v: &[u8], inv_norm: f32) -> f32 {
        if self.factor == 0.0 {
            return 0.0;
        }
        dot_i16_i8(&self.values, v) as f32 / self.factor * inv_norm
    }
}

/// `1 / |v|` of a vector of signed bytes, 0 for a zero vector.
pub(crate) fn inv_norm_i8(v: &[i8]) -> f32 {
    let squares: i64 = v.iter().map(|&b| i64::from(b) * i64::from(b)).sum();
    if squares > 0 {
        (1.0 / (squares as f64).sqrt()) as f32
    } else {
        0.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact_cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn bad_vectors_are_invalid_input() {
        for (v, dim, says) in [
            (vec![], None, "empty"),
            (vec![1.0, f32::NAN], None, "finite"),
            (vec![1.0, f32::INFINITY], None, "finite"),
            (
                vec![1.0, 2.0],
                Some(3),
                "dimension 2; this memory's embeddings have dimension 3",
            ),
        ] {
            let e = check_stored(&v, dim).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let e = unit_query(&[0.0, 0.0], None).unwrap_err().to_string();
        assert!(e.contains("all zeros"), "{e}");
        assert!(check_stored(&[0.0, 0.0], Some(2)).is_ok());
    }

    #[test]
    fn quantized_bytes_keep_the_largest_magnitude_exact_enough() {
        let v = [0.5f32, -0.25, 0.0, 0.125];
        let q = StoredEmbedding::new(&v, true);
        let StoredEmbedding::I8 { values, .. } = &q else {
            panic!("not quantized")
        };
        assert_eq!(values[0], 127);
        assert_eq!(values[2], 0);
        for (a, b) in q.to_f32().iter().zip(v) {
            assert!((a - b).abs() <= 0.5 / 127.0, "{a} vs {b}");
        }
        assert_eq!(StoredEmbedding::new(&v, false).to_f32(), v);
        let zero = StoredEmbedding::new(&[0.0; 3], true);
        assert_eq!(zero.to_f32(), [0.0; 3]);
    }

    /// [`cosine_f32`] spelled out one operation at a time, in the order it promises (each
    /// lane adds its products in order, then the lanes in order, then the tail): the
    /// oracle its vector versions must match bit for bit.
    fn cosine_f32_in_order(query: &[f32], v: &[f32]) -> f32 {
        let whole = query.len().min(v.len()) / LANES * LANES;
        let (mut dot, mut norm) = ([0f32; LANES], [0f32; LANES]);
        for start in (0..whole).step_by(LANES) {
            for lane in 0..LANES {
                let (q, x) = (query[start + lane], v[start + lane]);
                dot[lane] += q * x;
                norm[lane] += x * x;
            }
        }
        let (mut d, mut n) = (0f32, 0f32);
        for lane in 0..LANES {
            d += dot[lane];
            n += norm[lane];
        }
        for i in whole..query.len().min(v.len()) {
            d += query[i] * v[i];
            n += v[i] * v[i];
        }
        if n > 0.0 { d / n.sqrt() } else { 0.0 }
    }

    proptest! {
        /// The version the CPU runs (AVX-512, AVX2 or baseline) gives the oracle's bits.
        #[test]
        fn the_vector_unit_scores_f32_bit_for_bit(
            pair in (1usize..1200).prop_flat_map(|d| (
                prop::collection::vec(-1.0f32..1.0, d),
                prop::collection::vec(-1.0f32..1.0, d),
            ))
        ) {
            let (q, v) = pair;
            prop_assert_eq!(cosine_f32(&q, &v).to_bits(), cosine_f32_in_order(&q, &v).to_bits());
        }

        /// The integer dot product equals the exact one (in 64 bits), whatever the unit.
        #[test]
        fn the_vector_unit_scores_bytes_exactly(
            pair in (1usize..1200).prop_flat_map(|d| (
                prop::collection::vec(-2048i16..=2048, d),
                prop::collection::vec(any::<u8>(), d),
            ))
        ) {
            let (q, v) = pair;
            let exact: i64 = q.iter().zip(&v).map(|(&a, &b)| i64::from(a) * i64::from(b as i8)).sum();
            prop_assert_eq!(i64::from(dot_i16_i8(&q, &v)), exact);
        }

        #[test]
        fn scores_match_the_exact_cosine(
            pair in (1usize..40).prop_flat_map(|d| (
                prop::collection::vec(-1.0f32..1.0, d),
                prop::collection::vec(-1.0f32..1.0, d),
            ))
        ) {
            let (q, v) = pair;
            prop_assume!(q.iter().any(|x| x.abs() > 1e-3) && v.iter().any(|x| x.abs() > 1e-3));
            let unit = unit_query(&q, None).unwrap();
            let exact = exact_cosine(&q, &v);
            let f32_score = f64::from(cosine_f32(&unit, &v));
            prop_assert!((f32_score - exact).abs() < 1e-4, "{f32_score} vs {exact}");
            // Quantization moves each byte by at most half a step.
            let StoredEmbedding::I8 { values, .. } = StoredEmbedding::new(&v, true) else {
                unreachable!()
            };
            let bytes: Vec<u8> = values.iter().map(|&b| b as u8).collect();
            let wide = WideQuery::new(&unit);
            let i8_score = f64::from(wide.cosine_i8(&bytes, inv_norm_i8(&values)));
            prop_assert!((i8_score - exact).abs() < 0.05, "{i8_score} vs {exact}");
        }
    }
}
