//! Extent trees (format-spec/05-inodes.md §5.5).
//!
//! The ext4 extent format: a 12-byte header followed by 12-byte entries.
//! The root lives in the inode's 48-byte `i_block` (header + 3 entries);
//! interior and leaf tree blocks hold 340 entries and end in a checksum tail.
//! Depth is bounded by [`MAX_EXTENT_DEPTH`].

use super::{checksum, layout, Layout, Le16, Le32, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `eh_magic`.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Deepest tree allowed. Why 5: with 340-way blocks and a 3-entry root, depth
/// 5 addresses far more than the 2^32 logical blocks a file can have, so a
/// deeper tree can only be corruption (and the bound stops cycles).
pub const MAX_EXTENT_DEPTH: u16 = 5;
/// Entries in the inode root.
pub const ROOT_MAX_ENTRIES: u16 = 3;
/// Entries in a tree block (before the 4-byte checksum tail).
pub const BLOCK_MAX_ENTRIES: u16 = ((BLOCK_SIZE - 12 - 4) / 12) as u16;
/// Offset of the checksum tail in a tree block.
pub const TAIL_OFFSET: usize = 12 + BLOCK_MAX_ENTRIES as usize * 12;
/// Longest initialized extent; longer `ee_len` values mean "unwritten"
/// (preallocated) with length `ee_len - 32768`.
pub const MAX_INIT_LEN: u16 = 32768;

/// Header of every extent node, format-spec/05 §5.5.1.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentHeader {
    pub eh_magic: Le16,
    pub eh_entries: Le16,
    pub eh_max: Le16,
    pub eh_depth: Le16,
    pub eh_generation: Le32,
}

/// A leaf entry: logical range to physical blocks, format-spec/05 §5.5.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Extent {
    pub ee_block: Le32,
    pub ee_len: Le16,
    pub ee_start_hi: Le16,
    pub ee_start_lo: Le32,
}

/// An interior entry: logical start to child block, format-spec/05 §5.5.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentIndex {
    pub ei_block: Le32,
    pub ei_leaf_lo: Le32,
    pub ei_leaf_hi: Le16,
    pub ei_unused: Le16,
}

/// Checksum tail of a tree block, format-spec/05 §5.5.4.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentTail {
    pub et_checksum: Le32,
}

const _: () = assert!(core::mem::size_of::<ExtentHeader>() == 12);
const _: () = assert!(core::mem::size_of::<Extent>() == 12);
const _: () = assert!(core::mem::size_of::<ExtentIndex>() == 12);
const _: () = assert!(TAIL_OFFSET == 4092);

impl Extent {
    /// Physical start block (48 bits).
    pub fn start(&self) -> u64 {
        (u64::from(self.ee_start_hi.get()) << 32) | u64::from(self.ee_start_lo.get())
    }
    /// Number of blocks covered.
    pub fn len(&self) -> u32 {
        let l = self.ee_len.get();
        u32::from(if l > MAX_INIT_LEN { l - MAX_INIT_LEN } else { l })
    }
    /// True for an empty extent (invalid on disk).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Preallocated but never written: reads as zeros.
    pub fn is_unwritten(&self) -> bool {
        self.ee_len.get() > MAX_INIT_LEN
    }
    /// Build an extent.
    pub fn new(logical: u32, start: u64, len: u16, unwritten: bool) -> Extent {
        let mut e = Extent::new_zeroed();
        e.ee_block.set(logical);
        e.ee_len.set(if unwritten { len + MAX_INIT_LEN } else { len });
        e.ee_start_hi.set((start >> 32) as u16);
        e.ee_start_lo.set(start as u32);
        e
    }
}

impl ExtentIndex {
    /// Child block (48 bits).
    pub fn leaf(&self) -> u64 {
        (u64::from(self.ei_leaf_hi.get()) << 32) | u64::from(self.ei_leaf_lo.get())
    }
}

/// A parsed extent node: its header and entries, not yet typed by depth.
#[derive(Debug, Clone, Copy)]
pub struct ExtentNode<'a> {
    pub header: &'a ExtentHeader,
    /// `eh_entries * 12` bytes of entries.
    pub entries: &'a [u8],
}

impl<'a> ExtentNode<'a> {
    pub fn depth(&self) -> u16 {
        self.header.eh_depth.get()
    }
    /// Leaf entries (valid when depth == 0).
    pub fn extents(&self) -> impl Iterator<Item = &'a Extent> + 'a {
        self.entries
            .chunks_exact(12)
            .filter_map(|c| Extent::ref_from_bytes(c).ok())
    }
    /// Index entries (valid when depth > 0).
    pub fn indexes(&self) -> impl Iterator<Item = &'a ExtentIndex> + 'a {
        self.entries
            .chunks_exact(12)
            .filter_map(|c| ExtentIndex::ref_from_bytes(c).ok())
    }
}

/// Parse an extent node held in `bytes` (the 48-byte root, or a tree block)
/// found at image offset `offset`; `max` is the capacity the container allows.
pub fn parse_node(bytes: &[u8], offset: u64, max: u16) -> Result<ExtentNode<'_>> {
    let (header, rest) = ExtentHeader::ref_from_prefix(bytes)
        .map_err(|_| FsError::corrupt("extent node", offset, "size", Expected::AtLeast(12), bytes.len() as u64))?;
    let bad = |field, off: u64, exp, act: u16| FsError::corrupt("extent node", offset + off, field, exp, act.into());
    if header.eh_magic.get() != EXTENT_MAGIC {
        return Err(bad(
            "eh_magic",
            0,
            Expected::Eq(EXTENT_MAGIC.into()),
            header.eh_magic.get(),
        ));
    }
    if header.eh_max.get() != max {
        return Err(bad("eh_max", 4, Expected::Eq(max.into()), header.eh_max.get()));
    }
    if header.eh_entries.get() > max {
        return Err(bad(
            "eh_entries",
            2,
            Expected::AtMost(max.into()),
            header.eh_entries.get(),
        ));
    }
    if header.eh_depth.get() > MAX_EXTENT_DEPTH {
        return Err(bad(
            "eh_depth",
            6,
            Expected::AtMost(MAX_EXTENT_DEPTH.into()),
            header.eh_depth.get(),
        ));
    }
    let n = usize::from(header.eh_entries.get()) * 12;
    let entries = rest
        .get(..n)
        .ok_or_else(|| bad("eh_entries", 2, Expected::AtMost(max.into()), header.eh_entries.get()))?;
    Ok(ExtentNode { header, entries })
}

/// Parse a tree block at `block_no`, verifying its tail checksum when
/// `seed` is given (seeded by the owning inode number, then the block).
pub fn parse_tree_block(block: &[u8], block_no: u64, ino: u32, seed: Option<u32>) -> Result<ExtentNode<'_>> {
    let offset = block_no.saturating_mul(BLOCK_SIZE as u64);
    if let Some(seed) = seed {
        let want = tree_block_checksum(block, block_no, ino, seed);
        let got = block
            .get(TAIL_OFFSET..TAIL_OFFSET + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if got != want {
            return Err(FsError::corrupt(
                "extent block",
                offset + TAIL_OFFSET as u64,
                "et_checksum",
                Expected::Eq(want.into()),
                got.into(),
            ));
        }
    }
    parse_node(block, offset, BLOCK_MAX_ENTRIES)
}

/// Checksum of an extent tree block: seed, then block number, then the
/// owning inode number (le32), then bytes 0..4092.
pub fn tree_block_checksum(block: &[u8], block_no: u64, ino: u32, seed: u32) -> u32 {
    let body = block.get(..TAIL_OFFSET).unwrap_or(block);
    checksum::structure_csum(seed, block_no, &[&ino.to_le_bytes(), body])
}

/// Write a fresh, empty root into a 48-byte `i_block` area.
pub fn init_root(i_block: &mut [u8]) {
    let mut h = ExtentHeader::new_zeroed();
    h.eh_magic.set(EXTENT_MAGIC);
    h.eh_max.set(ROOT_MAX_ENTRIES);
    i_block.fill(0);
    i_block[..12].copy_from_slice(h.as_bytes());
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout(
            "ExtentHeader",
            12,
            crate::layout_of!(ExtentHeader {
                eh_magic,
                eh_entries,
                eh_max,
                eh_depth,
                eh_generation
            }),
        ),
        layout(
            "Extent",
            12,
            crate::layout_of!(Extent {
                ee_block,
                ee_len,
                ee_start_hi,
                ee_start_lo
            }),
        ),
        layout(
            "ExtentIndex",
            12,
            crate::layout_of!(ExtentIndex {
                ei_block,
                ei_leaf_lo,
                ei_leaf_hi,
                ei_unused
            }),
        ),
        layout("ExtentTail", 4, crate::layout_of!(ExtentTail { et_checksum })),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_one_extent() -> Vec<u8> {
        let mut root = vec![0u8; 48];
        init_root(&mut root);
        root[2..4].copy_from_slice(&1u16.to_le_bytes());
        root[12..24].copy_from_slice(Extent::new(0, 0x1_0000_0005, 7, false).as_bytes());
        root
    }

    #[test]
    fn root_parses_and_yields_48_bit_starts() {
        let root = root_with_one_extent();
        let node = parse_node(&root, 0, ROOT_MAX_ENTRIES).unwrap();
        let e: Vec<_> = node.extents().collect();
        assert_eq!(
            (e[0].start(), e[0].len(), e[0].is_unwritten()),
            (0x1_0000_0005, 7, false)
        );
    }

    #[test]
    fn each_header_field_is_checked() {
        for (byte, field) in [(0usize, "eh_magic"), (2, "eh_entries"), (4, "eh_max"), (6, "eh_depth")] {
            let mut root = root_with_one_extent();
            root[byte] = 0x7f;
            let e = parse_node(&root, 100, ROOT_MAX_ENTRIES).unwrap_err();
            assert_eq!(e.corruption().unwrap().field, field);
            assert_eq!(e.corruption().unwrap().offset, 100 + byte as u64);
        }
    }

    #[test]
    fn unwritten_extents_decode_their_length() {
        let e = Extent::new(10, 99, 5, true);
        assert!(e.is_unwritten());
        assert_eq!(e.len(), 5);
    }

    #[test]
    fn tree_block_checksum_catches_flips() {
        let mut block = vec![0u8; BLOCK_SIZE];
        let mut h = ExtentHeader::new_zeroed();
        h.eh_magic.set(EXTENT_MAGIC);
        h.eh_max.set(BLOCK_MAX_ENTRIES);
        block[..12].copy_from_slice(h.as_bytes());
        let c = tree_block_checksum(&block, 9, 12, 5);
        block[TAIL_OFFSET..].copy_from_slice(&c.to_le_bytes());
        assert!(parse_tree_block(&block, 9, 12, Some(5)).is_ok());
        block[2000] ^= 1;
        assert!(parse_tree_block(&block, 9, 12, Some(5)).is_err());
    }
}
