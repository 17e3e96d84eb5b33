//! Distance kernels (format-spec/08 §8.1 metrics) over vectors stored in
//! their on-disk element type, read in place from the map.
//!
//! The SIMD work is done by `simsimd`, which picks AVX-512, AVX2 or a
//! portable kernel at run time. f16 vectors are widened to f32 with `half`
//! (F16C when the CPU has it) into a scratch buffer first; int8 vectors use
//! simsimd's i8 kernels and the collection's scale.

use crate::error::{FsError, Result};
use crate::format::vector::{ElemType, Metric};
use half::slice::HalfFloatSliceExt;
use simsimd::SpatialSimilarity;

/// How a collection's vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Space {
    pub dim: usize,
    pub metric: Metric,
    pub elem: ElemType,
    /// int8 scale (element q means q * scale); 1.0 for other types.
    pub scale: f32,
}

impl Space {
    /// Bytes of one stored vector.
    pub fn vector_bytes(&self) -> usize {
        self.dim * self.elem.size()
    }

    /// Check a user vector (length and finiteness) — EINVAL otherwise.
    pub fn check(&self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(FsError::Invalid(format!(
                "vector has {} elements, the collection's dimension is {}",
                v.len(),
                self.dim
            )));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(FsError::Invalid(format!("vector element {i} is not a finite number")));
        }
        Ok(())
    }

    /// Encode a checked f32 vector into the element type (f16: nearest
    /// even; int8: round(v / scale) saturated to -128..=127).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        match self.elem {
            ElemType::F32 => {
                for (o, x) in out.chunks_exact_mut(4).zip(v) {
                    o.copy_from_slice(&x.to_le_bytes());
                }
            }
            ElemType::F16 => {
                for (o, x) in out.chunks_exact_mut(2).zip(v) {
                    o.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes());
                }
            }
            ElemType::Int8 => {
                for (o, x) in out.iter_mut().zip(v) {
                    *o = (x / self.scale).round().clamp(-128.0, 127.0) as i8 as u8;
                }
            }
        }
    }

    /// Decode a stored vector to f32 (exact for f32 and f16).
    pub fn decode(&self, bytes: &[u8]) -> Vec<f32> {
        match self.elem {
            ElemType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            ElemType::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            ElemType::Int8 => bytes.iter().map(|&b| f32::from(b as i8) * self.scale).collect(),
        }
    }
}

/// A prepared query: the vector in the collection's element type, and the
/// scratch space the f16 path needs. One per search (not shared).
pub struct Scorer {
    space: Space,
    /// The query in stored encoding (bytes as on disk).
    query: Vec<u8>,
    /// The query as f32 when the element type is f32 (else empty): the
    /// walk's distance then skips the general dispatch per node.
    query_f32: Vec<f32>,
    scratch_a: Vec<f32>,
    scratch_b: Vec<f32>,
}

impl Scorer {
    /// Prepare a checked f32 query.
    pub fn new(space: Space, query: &[f32]) -> Result<Scorer> {
        space.check(query)?;
        let mut q = vec![0u8; space.vector_bytes()];
        space.encode(query, &mut q);
        Ok(Scorer::from_stored(space, q))
    }

    /// A scorer whose query is a vector already in stored encoding.
    pub fn from_stored(space: Space, stored: Vec<u8>) -> Scorer {
        let n = if space.elem == ElemType::F16 { space.dim } else { 0 };
        let query_f32 = match space.elem {
            ElemType::F32 => space.decode(&stored),
            _ => Vec::new(),
        };
        Scorer {
            space,
            query_f32,
            query: stored,
            scratch_a: vec![0.0; n],
            scratch_b: vec![0.0; n],
        }
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The query in stored encoding.
    pub fn query_bytes(&self) -> &[u8] {
        &self.query
    }

    /// Distance from the query to a stored vector (smaller is closer).
    #[inline]
    pub fn to(&mut self, stored: &[u8]) -> f32 {
        if !self.query_f32.is_empty() {
            let n = self.query_f32.len() * 4;
            if let Some(Ok(y)) = stored.get(..n).map(bytemuck::try_cast_slice::<u8, f32>) {
                let d = metric_f32(self.space.metric, &self.query_f32, y);
                return d.map_or(f32::INFINITY, |d| d as f32);
            }
        }
        let Scorer {
            space,
            query,
            scratch_a,
            scratch_b,
            ..
        } = self;
        between(space, query, stored, scratch_a, scratch_b)
    }

    /// Distance between two stored vectors (neighbour selection).
    pub fn between(&mut self, a: &[u8], b: &[u8]) -> f32 {
        let Scorer {
            space,
            scratch_a,
            scratch_b,
            ..
        } = self;
        between(space, a, b, scratch_a, scratch_b)
    }
}

#[inline]
fn between(space: &Space, a: &[u8], b: &[u8], sa: &mut [f32], sb: &mut [f32]) -> f32 {
    let n = space.vector_bytes();
    let (a, b) = (&a[..n.min(a.len())], &b[..n.min(b.len())]);
    let d = match space.elem {
        ElemType::F32 => match (
            bytemuck::try_cast_slice::<u8, f32>(a),
            bytemuck::try_cast_slice::<u8, f32>(b),
        ) {
            (Ok(x), Ok(y)) => metric_f32(space.metric, x, y),
            // Unaligned input (never from the map, where vectors are at
            // least 4-byte aligned, format-spec/08 §8.5.1): copy once.
            _ => {
                let (x, y) = (space.decode(a), space.decode(b));
                metric_f32(space.metric, &x, &y)
            }
        },
        ElemType::F16 => {
            let (x, y) = (bytemuck::cast_slice::<u8, u16>(a), bytemuck::cast_slice::<u8, u16>(b));
            let (x, y): (&[half::f16], &[half::f16]) = (bytemuck::cast_slice(x), bytemuck::cast_slice(y));
            x.convert_to_f32_slice(&mut sa[..x.len()]);
            y.convert_to_f32_slice(&mut sb[..y.len()]);
            metric_f32(space.metric, &sa[..x.len()], &sb[..y.len()])
        }
        ElemType::Int8 => {
            let (x, y): (&[i8], &[i8]) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
            let s2 = f64::from(space.scale) * f64::from(space.scale);
            match space.metric {
                Metric::L2 => i8::l2sq(x, y).map(|d| d * s2),
                Metric::Cosine => <i8 as SpatialSimilarity>::cos(x, y),
                Metric::InnerProduct => i8::dot(x, y).map(|d| -d * s2),
            }
        }
    };
    d.map_or(f32::INFINITY, |d| d as f32)
}

#[inline]
fn metric_f32(metric: Metric, x: &[f32], y: &[f32]) -> Option<f64> {
    match metric {
        Metric::L2 => f32::l2sq(x, y),
        Metric::Cosine => <f32 as SpatialSimilarity>::cos(x, y),
        Metric::InnerProduct => f32::dot(x, y).map(|d| -d),
    }
}

/// Which SIMD kernels simsimd selected on this CPU (for stats and benches).
pub fn simd_level() -> &'static str {
    use simsimd::capabilities as c;
    if c::uses_sapphire() || c::uses_genoa() || c::uses_ice() || c::uses_skylake() {
        "avx512"
    } else if c::uses_haswell() {
        "avx2"
    } else {
        "portable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(metric: Metric, elem: ElemType) -> Space {
        Space {
            dim: 4,
            metric,
            elem,
            scale: 0.5,
        }
    }

    fn stored(s: &Space, v: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; s.vector_bytes()];
        s.encode(v, &mut out);
        out
    }

    #[test]
    fn f32_metrics_match_the_definitions() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 1.0, 4.0]);
        for (metric, want) in [(Metric::L2, 5.0), (Metric::InnerProduct, -23.0)] {
            let s = space(metric, ElemType::F32);
            let mut sc = Scorer::new(s, &a).unwrap();
            let d = sc.to(&stored(&s, &b));
            assert!((d - want).abs() < 1e-4, "{metric:?}: {d} vs {want}");
        }
        let s = space(Metric::Cosine, ElemType::F32);
        let mut sc = Scorer::new(s, &a).unwrap();
        assert!(
            sc.to(&stored(&s, &a)).abs() < 1e-5,
            "cosine of a vector with itself is 0"
        );
    }

    #[test]
    fn f16_and_int8_agree_with_f32_on_representable_values() {
        let (a, b) = ([1.0, -2.0, 0.5, 4.0], [0.0, 2.0, 1.0, -4.0]);
        let want = 1.0 + 16.0 + 0.25 + 64.0;
        for elem in [ElemType::F16, ElemType::Int8] {
            let s = space(Metric::L2, elem);
            let mut sc = Scorer::new(s, &a).unwrap();
            let d = sc.to(&stored(&s, &b));
            assert!((d - want).abs() < 1e-3, "{elem:?}: {d}");
            assert_eq!(s.decode(&stored(&s, &b)), b.to_vec(), "{elem:?} round trip");
        }
    }

    #[test]
    fn bad_vectors_are_rejected() {
        let s = space(Metric::L2, ElemType::F32);
        assert!(matches!(s.check(&[1.0; 3]), Err(FsError::Invalid(_))));
        assert!(matches!(s.check(&[1.0, f32::NAN, 0.0, 0.0]), Err(FsError::Invalid(_))));
        assert!(matches!(
            s.check(&[1.0, f32::INFINITY, 0.0, 0.0]),
            Err(FsError::Invalid(_))
        ));
        assert!(s.check(&[0.0; 4]).is_ok());
    }

    #[test]
    fn int8_saturates() {
        let s = space(Metric::L2, ElemType::Int8);
        assert_eq!(stored(&s, &[1000.0, -1000.0, 0.26, -0.24]), vec![127, 128, 1, 0]);
    }
}
