//! Vector collections and vector blocks (format-spec/08-vectors.md).
//!
//! The catalogue is the hidden regular file of inode 2 (`s_vx_catalog_ino`):
//! a [`CatalogHeader`] then an rkyv-archived `Vec<CollectionRecord>`
//! (validated on access). Each collection owns a hidden, extent-mapped
//! *node file*: block 0 is its [`CollectionHeader`] (mutable counters),
//! then fixed-stride node records, each a [`NodeHeader`], the vector (element
//! type as declared) and the level-0 compressed adjacency
//! (format-spec/09-hnsw.md), so a search touches one place per node. The
//! image's `packed_nodes` feature picks the [`NodeLayout`]: records back to
//! back across blocks, or the v1 32-byte aligned records within blocks.

use super::hnsw::ListCoding;
use super::{checksum, layout, Layout, Le16, Le32, Le64, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `cat_magic`: "VXCT".
pub const CATALOG_MAGIC: u32 = 0x5443_5856;
/// `ch_magic`: "VXCH".
pub const COLLECTION_MAGIC: u32 = 0x4843_5856;
/// Largest dimension a collection may declare.
pub const MAX_DIM: u32 = 65_536;
/// Longest collection name.
pub const MAX_COLLECTION_NAME: usize = 64;
/// Most collections per image (bounds catalogue walks).
pub const MAX_COLLECTIONS: usize = 1024;
/// Alignment of vectors inside node records (AVX-512 loads).
pub const VECTOR_ALIGN: usize = 32;

/// Distance metric codes (`metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Metric {
    L2 = 1,
    Cosine = 2,
    InnerProduct = 3,
}

/// Element type codes (`elem_type`), the kernel module's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ElemType {
    F32 = 1,
    F16 = 2,
    Int8 = 3,
}

impl Metric {
    pub fn from_code(c: u8) -> Option<Metric> {
        [Metric::L2, Metric::Cosine, Metric::InnerProduct]
            .into_iter()
            .find(|m| *m as u8 == c)
    }
    pub fn parse(s: &str) -> Option<Metric> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Some(Metric::L2),
            "cosine" | "cos" => Some(Metric::Cosine),
            "ip" | "dot" | "inner_product" => Some(Metric::InnerProduct),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::InnerProduct => "ip",
        }
    }
}

impl ElemType {
    pub fn from_code(c: u8) -> Option<ElemType> {
        [ElemType::F32, ElemType::F16, ElemType::Int8]
            .into_iter()
            .find(|t| *t as u8 == c)
    }
    pub fn parse(s: &str) -> Option<ElemType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(ElemType::F32),
            "f16" | "float16" => Some(ElemType::F16),
            "i8" | "int8" => Some(ElemType::Int8),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
            ElemType::Int8 => "int8",
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 => 4,
            ElemType::F16 => 2,
            ElemType::Int8 => 1,
        }
    }
}

/// Header of the catalogue file, format-spec/08 §8.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CatalogHeader {
    pub cat_magic: Le32,
    pub cat_version: Le32,
    pub cat_len: Le32,
    pub cat_checksum: Le32,
    pub cat_generation: Le64,
    pub cat_next_id: Le32,
    pub cat_reserved: Le32,
}

/// One collection's description (rkyv-archived in the catalogue),
/// format-spec/08 §8.3. Immutable after creation; counters live in the
/// [`CollectionHeader`].
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CollectionRecord {
    pub id: u32,
    pub name: String,
    pub dim: u32,
    pub metric: u8,
    pub elem_type: u8,
    pub int8_scale: f32,
    pub m: u16,
    pub ef_construction: u16,
    pub node_ino: u32,
    pub created: i64,
}

/// Block 0 of a collection's node file, format-spec/08 §8.4.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CollectionHeader {
    pub ch_magic: Le32,
    pub ch_collection_id: Le32,
    pub ch_dim: Le32,
    pub ch_elem_type: u8,
    pub ch_metric: u8,
    pub ch_m: Le16,
    pub ch_node_stride: Le32,
    pub ch_vector_offset: Le32,
    pub ch_adj_offset: Le32,
    pub ch_adj_capacity: Le32,
    pub ch_count: Le64,
    pub ch_slots: Le64,
    pub ch_free_head: Le64,
    pub ch_entry_slot: Le64,
    pub ch_max_level: Le32,
    pub ch_upper_ino: Le32,
    pub ch_upper_stride: Le32,
    pub ch_upper_records: Le32,
    pub ch_int8_scale: Le32,
    pub ch_checksum: Le32,
}

/// Header of every node record, format-spec/08 §8.5.3. In the v1 geometry
/// 12 reserved zero bytes follow it, so that the vector starts 32 bytes
/// into the record; in the packed geometry the vector follows at once.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NodeHeader {
    pub n_owner_ino: Le32,
    pub n_level: u8,
    pub n_flags: u8,
    pub n_adj_len: Le16,
    pub n_upper_ref: Le32,
    pub n_next_free: Le32,
    pub n_checksum: Le32,
}

const _: () = assert!(core::mem::size_of::<CatalogHeader>() == 32);
const _: () = assert!(core::mem::size_of::<CollectionHeader>() == 88);
const _: () = assert!(core::mem::size_of::<NodeHeader>() == 20);

/// Bytes of a [`NodeHeader`].
pub const NODE_HEADER_LEN: usize = core::mem::size_of::<NodeHeader>();
/// Offset of `n_checksum` in a node record.
pub const NODE_CSUM_AT: usize = 16;

/// `n_flags`: the slot holds a live vector.
pub const NODE_LIVE: u8 = 0x01;
/// `n_flags`: deleted, awaiting neighbour repair before reuse.
pub const NODE_DELETED: u8 = 0x02;

/// How node records are laid out in the node file (format-spec/08 §8.5.1):
/// chosen for the whole image by the `packed_nodes` incompat feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeLayout {
    /// Records padded to 32 bytes, never straddling a block when they fit
    /// in one (images without `packed_nodes`).
    V1,
    /// Records back to back, 4-byte aligned, straddling block boundaries.
    Packed,
}

/// The fixed record geometry of a collection (format-spec/08 §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeGeometry {
    pub vector_offset: u32,
    pub adj_offset: u32,
    pub adj_capacity: u32,
    pub stride: u32,
    pub layout: NodeLayout,
}

/// Record geometry for a collection (§8.5.1).
///
/// V1: the header and 12 reserved bytes, the vector padded to 32 bytes,
/// adjacency of `2*m` neighbours at 3 bytes average (varint deltas), the
/// whole rounded to 32 bytes; records never straddle a block when they fit
/// in one, and larger ones start on a block boundary.
///
/// Packed: the header, the vector, then [`default_list_bytes`] of
/// adjacency for lists coded as `coding`, rounded up to 4 bytes so every
/// vector stays aligned for its element type ([`packed_geometry`] for
/// other list bytes). The v1 geometry does not depend on the coding.
pub fn node_geometry(dim: u32, elem: ElemType, m: u16, layout: NodeLayout, coding: ListCoding) -> NodeGeometry {
    let align = |x: usize, a: usize| x.div_ceil(a) * a;
    let vec_bytes = dim as usize * elem.size();
    match layout {
        NodeLayout::V1 => {
            let vector_offset = 32;
            let adj_offset = vector_offset + align(vec_bytes, VECTOR_ALIGN);
            let adj_capacity = align(2 * usize::from(m) * 3 + 8, 8);
            let mut stride = align(adj_offset + adj_capacity, VECTOR_ALIGN);
            if stride > BLOCK_SIZE {
                stride = align(stride, BLOCK_SIZE);
            }
            NodeGeometry {
                vector_offset: vector_offset as u32,
                adj_offset: adj_offset as u32,
                adj_capacity: adj_capacity as u32,
                stride: stride as u32,
                layout,
            }
        }
        NodeLayout::Packed => packed_geometry(dim, elem, default_list_bytes(m, coding)),
    }
}

/// Fewest level-0 list bytes a packed collection may have.
pub const MIN_LIST_BYTES: u32 = 4;
/// Most level-0 list bytes a packed collection may have. Why: 2·M ≤ 512
/// ids (M ≤ 256) at up to 4 varint bytes each; more is never used.
pub const MAX_LIST_BYTES: u32 = 2048;

/// The level-0 list bytes a packed collection gets unless its creator
/// chooses (format-spec/08 §8.5.1). Varint lists: `6·M − 4`, 92 at M =
/// 16, room for 2·M ids at about 2.9 bytes, the varint length of ids in
/// collections of a few million vectors (measured: 60 bytes keep recall
/// at 100,000 vectors but lose 6 points at ef 192 at a million). Rice
/// lists: `4·M`, 64 at M = 16, room for 2·M ids at up to 15.75 bits (a 100,000-slot
/// collection's full lists take about 14, a million-slot one's about 17,
/// so there a full list keeps 30 of its 32 ids).
pub fn default_list_bytes(m: u16, coding: ListCoding) -> u32 {
    let m = u32::from(m);
    let bytes = match coding {
        ListCoding::Varint => (6 * m).saturating_sub(4),
        ListCoding::Rice => 4 * m,
    };
    bytes.clamp(MIN_LIST_BYTES, MAX_LIST_BYTES)
}

/// The packed geometry with at least `list_bytes` of level-0 list area
/// (§8.5.1): rounded up so that the stride, and so every vector, is a
/// multiple of 4 bytes.
pub fn packed_geometry(dim: u32, elem: ElemType, list_bytes: u32) -> NodeGeometry {
    let adj_offset = NODE_HEADER_LEN + dim as usize * elem.size();
    let stride = (adj_offset + list_bytes as usize).next_multiple_of(4);
    NodeGeometry {
        vector_offset: NODE_HEADER_LEN as u32,
        adj_offset: adj_offset as u32,
        adj_capacity: (stride - adj_offset) as u32,
        stride: stride as u32,
        layout: NodeLayout::Packed,
    }
}

/// Byte offset of slot `s` in the node file, the rule of format-spec/08
/// §8.5.2 written out plainly (`None` for a zero stride or an overflow).
/// Readers on the hot path compute the same without division.
pub fn slot_offset(layout: NodeLayout, stride: u64, s: u64) -> Option<u64> {
    if stride == 0 {
        return None;
    }
    let block = BLOCK_SIZE as u64;
    match layout {
        NodeLayout::Packed => block.checked_add(s.checked_mul(stride)?),
        NodeLayout::V1 if stride <= block => {
            let per_block = block / stride;
            let first = (1 + s / per_block).checked_mul(block)?;
            first.checked_add((s % per_block) * stride)
        }
        NodeLayout::V1 => (1 + s.checked_mul(stride.div_ceil(block))?).checked_mul(block),
    }
}

/// Checksum of the catalogue: seed, inode 2, the 32-byte header without
/// `cat_checksum` (bytes 12..16), then the `cat_len` archive bytes.
pub fn catalog_checksum(header: &[u8], payload: &[u8], seed: u32) -> u32 {
    let h = header.get(..32).unwrap_or(header);
    checksum::structure_csum(
        seed,
        u64::from(super::CATALOG_INO),
        &[h.get(..12).unwrap_or(h), h.get(16..).unwrap_or(&[]), payload],
    )
}

/// Checksum of a collection header (seed, node inode, all but ch_checksum).
pub fn collection_header_checksum(bytes: &[u8], node_ino: u32, seed: u32) -> u32 {
    checksum::csum_skipping(seed, u64::from(node_ino), bytes, 84)
}

/// Parse and check a collection header found at image offset `offset`.
pub fn parse_collection_header(
    bytes: &[u8],
    offset: u64,
    node_ino: u32,
    seed: Option<u32>,
) -> Result<&CollectionHeader> {
    let (h, _) = CollectionHeader::ref_from_prefix(bytes).map_err(|_| {
        FsError::corrupt(
            "collection header",
            offset,
            "size",
            Expected::AtLeast(88),
            bytes.len() as u64,
        )
    })?;
    let bad = |off: u64, field, exp, act: u64| FsError::corrupt("collection header", offset + off, field, exp, act);
    if h.ch_magic.get() != COLLECTION_MAGIC {
        return Err(bad(
            0,
            "ch_magic",
            Expected::Eq(COLLECTION_MAGIC.into()),
            h.ch_magic.get().into(),
        ));
    }
    if let Some(seed) = seed {
        let want = collection_header_checksum(&bytes[..88], node_ino, seed);
        if h.ch_checksum.get() != want {
            return Err(bad(
                84,
                "ch_checksum",
                Expected::Eq(want.into()),
                h.ch_checksum.get().into(),
            ));
        }
    }
    if h.ch_dim.get() == 0 || h.ch_dim.get() > MAX_DIM {
        return Err(bad(
            8,
            "ch_dim",
            Expected::Within(1, MAX_DIM.into()),
            h.ch_dim.get().into(),
        ));
    }
    Ok(h)
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout(
            "CatalogHeader",
            32,
            crate::layout_of!(CatalogHeader {
                cat_magic,
                cat_version,
                cat_len,
                cat_checksum,
                cat_generation,
                cat_next_id,
                cat_reserved
            }),
        ),
        layout(
            "CollectionHeader",
            88,
            crate::layout_of!(CollectionHeader {
                ch_magic,
                ch_collection_id,
                ch_dim,
                ch_elem_type,
                ch_metric,
                ch_m,
                ch_node_stride,
                ch_vector_offset,
                ch_adj_offset,
                ch_adj_capacity,
                ch_count,
                ch_slots,
                ch_free_head,
                ch_entry_slot,
                ch_max_level,
                ch_upper_ino,
                ch_upper_stride,
                ch_upper_records,
                ch_int8_scale,
                ch_checksum
            }),
        ),
        layout(
            "NodeHeader",
            20,
            crate::layout_of!(NodeHeader {
                n_owner_ino,
                n_level,
                n_flags,
                n_adj_len,
                n_upper_ref,
                n_next_free,
                n_checksum
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_keeps_vectors_aligned_and_records_within_blocks() {
        for dim in [1u32, 3, 128, 384, 1000, 65_536] {
            for elem in [ElemType::F32, ElemType::F16, ElemType::Int8] {
                let g = node_geometry(dim, elem, 16, NodeLayout::V1, ListCoding::Rice);
                assert_eq!(g, node_geometry(dim, elem, 16, NodeLayout::V1, ListCoding::Varint));
                assert_eq!(g.vector_offset as usize % VECTOR_ALIGN, 0);
                assert_eq!(g.stride as usize % VECTOR_ALIGN, 0);
                assert!(g.adj_offset as usize >= g.vector_offset as usize + dim as usize * elem.size());
                let s = g.stride as usize;
                assert!(s <= BLOCK_SIZE || s.is_multiple_of(BLOCK_SIZE), "dim {dim}");
            }
        }
    }

    #[test]
    fn packed_geometry_is_header_vector_and_list_bytes() {
        for m in [1u16, 2, 4, 16, 48, 256] {
            for dim in [1u32, 3, 128, 384, 1000, 65_536] {
                for (elem, coding) in [ElemType::F32, ElemType::F16, ElemType::Int8]
                    .into_iter()
                    .flat_map(|e| [(e, ListCoding::Varint), (e, ListCoding::Rice)])
                {
                    let g = node_geometry(dim, elem, m, NodeLayout::Packed, coding);
                    let vec_bytes = dim * elem.size() as u32;
                    assert_eq!(g.vector_offset, 20);
                    assert_eq!(g.adj_offset, 20 + vec_bytes);
                    assert_eq!(g.stride % 4, 0, "every record, so every vector, 4-byte aligned");
                    assert_eq!(g.adj_capacity, g.stride - g.adj_offset);
                    let want = default_list_bytes(m, coding);
                    assert!((want..want + 4).contains(&g.adj_capacity), "m {m} dim {dim}");
                    // A stored capacity reproduces its geometry.
                    assert_eq!(packed_geometry(dim, elem, g.adj_capacity), g);
                }
            }
        }
        let varint = |m| default_list_bytes(m, ListCoding::Varint);
        let rice = |m| default_list_bytes(m, ListCoding::Rice);
        assert_eq!((varint(1), varint(16), rice(1), rice(16)), (4, 92, 4, 64));
        // The figures format-spec/08 §8.5.1 quotes.
        let g = node_geometry(128, ElemType::F32, 16, NodeLayout::Packed, ListCoding::Varint);
        assert_eq!((g.adj_offset, g.adj_capacity, g.stride), (532, 92, 624));
        let g = node_geometry(128, ElemType::F32, 16, NodeLayout::Packed, ListCoding::Rice);
        assert_eq!((g.adj_offset, g.adj_capacity, g.stride), (532, 64, 596));
        let g = node_geometry(3, ElemType::F16, 16, NodeLayout::Packed, ListCoding::Varint);
        assert_eq!((g.adj_offset, g.adj_capacity, g.stride), (26, 94, 120));
        let g = packed_geometry(128, ElemType::F32, 60);
        assert_eq!((g.adj_capacity, g.stride), (60, 592));
    }

    #[test]
    fn metric_and_type_names_parse() {
        assert_eq!(Metric::parse("cosine"), Some(Metric::Cosine));
        assert_eq!(ElemType::parse("int8"), Some(ElemType::Int8));
        assert_eq!(Metric::from_code(9), None);
    }
}
