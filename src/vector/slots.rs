//! Where a slot's node record is in the node file (format-spec/08 §8.5.2),
//! computed without division: a search does it for every node it scores.

use crate::format::vector::{NodeGeometry, NodeLayout};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use strength_reduce::StrengthReducedU32;

/// How a slot number becomes a place in the node file (format-spec/08
/// §8.5.2). Computed for every node a search scores, so without division.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SlotMap {
    /// V1 records that fit in a block: this many per block, as a
    /// multiply-and-shift divisor (a hardware division costs tens of
    /// cycles).
    PerBlock(StrengthReducedU32),
    /// V1 records of a block or more: each starts a block and takes this
    /// many.
    Blocks(u64),
    /// Packed records, back to back from logical block 1: slot `s` at
    /// byte `s * stride` of that area.
    Packed(u64),
}

impl SlotMap {
    pub(crate) fn of(geo: NodeGeometry) -> SlotMap {
        let stride = geo.stride.max(1);
        match geo.layout {
            NodeLayout::Packed => SlotMap::Packed(stride.into()),
            NodeLayout::V1 if stride as usize <= BLOCK_SIZE => {
                SlotMap::PerBlock(StrengthReducedU32::new(BLOCK_SIZE as u32 / stride))
            }
            NodeLayout::V1 => SlotMap::Blocks(u64::from(stride).div_ceil(BLOCK_SIZE_U64)),
        }
    }

    /// (logical block, byte offset) of slot `s` in records of `stride`
    /// bytes: `vector::slot_offset` without its divisions.
    #[inline]
    pub(crate) fn place(self, s: u32, stride: u32) -> (u64, usize) {
        match self {
            SlotMap::PerBlock(per) => {
                let (q, r) = StrengthReducedU32::div_rem(s, per);
                (1 + u64::from(q), r as usize * stride as usize)
            }
            SlotMap::Blocks(n) => (1 + u64::from(s) * n, 0),
            SlotMap::Packed(stride) => {
                let byte = u64::from(s) * stride;
                (1 + byte / BLOCK_SIZE_U64, (byte % BLOCK_SIZE_U64) as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::hnsw::ListCoding;
    use crate::format::vector::{node_geometry, slot_offset, ElemType};

    #[test]
    fn slot_places_agree_with_the_spec_rule() {
        for layout in [NodeLayout::V1, NodeLayout::Packed] {
            for (dim, elem) in [
                (3, ElemType::F16),
                (128, ElemType::F32),
                (384, ElemType::F32),
                (1024, ElemType::F32),
            ] {
                let geo = node_geometry(dim, elem, 16, layout, ListCoding::Varint);
                let map = SlotMap::of(geo);
                for s in (0..5000).chain([u32::MAX / 2, u32::MAX - 1]) {
                    let (l, off) = map.place(s, geo.stride);
                    let want = slot_offset(layout, geo.stride.into(), s.into()).unwrap();
                    assert_eq!(l * BLOCK_SIZE_U64 + off as u64, want, "{layout:?} dim {dim} slot {s}");
                    assert!(off < BLOCK_SIZE);
                }
            }
        }
    }
}
