//! Directories (format-spec/06-directories.md).
//!
//! A directory block is a chain of ext2 entries
//! `{inode le32, rec_len le16, name_len u8, file_type u8, name}` whose
//! `rec_len`s add up to the block size. With metadata_csum the last 12 bytes
//! are a [`DirTail`] pseudo-entry holding the block checksum. Hashed
//! directories (`INDEX_FL`) use the ext4 htree shape: logical block 0 is a
//! [`DxRoot`], interior [`DxNode`] blocks, leaves are ordinary entry blocks.

use super::{checksum, layout, Layout, Le16, Le32, BLOCK_SIZE, MAX_NAME_LEN};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of the fixed part of an entry.
pub const DIRENT_HEADER_SIZE: usize = 8;
/// Size of the checksum tail pseudo-entry.
pub const DIR_TAIL_SIZE: usize = 12;
/// `det_reserved_ft` marking a [`DirTail`].
pub const DIR_TAIL_FT: u8 = 0xDE;
/// Most entries one block can hold (12-byte minimum entries). Bounds loops.
pub const MAX_ENTRIES_PER_BLOCK: usize = BLOCK_SIZE / 12;
/// Deepest htree: root plus two interior levels. Why: 3 levels index
/// ~10^10 names, beyond `s_inodes_count`; a deeper tree is corruption.
pub const MAX_DX_LEVELS: u8 = 3;

/// Entry header, format-spec/06 §6.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirEntryHeader {
    pub inode: Le32,
    pub rec_len: Le16,
    pub name_len: u8,
    pub file_type: u8,
}

/// Checksum tail of a directory leaf block, format-spec/06 §6.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirTail {
    pub det_reserved_zero1: Le32,
    pub det_rec_len: Le16,
    pub det_reserved_zero2: u8,
    pub det_reserved_ft: u8,
    pub det_checksum: Le32,
}

/// Hash index root (logical block 0 of a hashed directory), format-spec/06 §6.4.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DxRoot {
    pub dot_inode: Le32,
    pub dot_rec_len: Le16,
    pub dot_name_len: u8,
    pub dot_file_type: u8,
    pub dot_name: [u8; 4],
    pub dotdot_inode: Le32,
    pub dotdot_rec_len: Le16,
    pub dotdot_name_len: u8,
    pub dotdot_file_type: u8,
    pub dotdot_name: [u8; 4],
    pub dx_reserved_zero: Le32,
    pub dx_hash_version: u8,
    pub dx_info_length: u8,
    pub dx_indirect_levels: u8,
    pub dx_unused_flags: u8,
    pub dx_limit: Le16,
    pub dx_count: Le16,
    pub dx_block: Le32,
}

/// Interior hash index block, format-spec/06 §6.5.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DxNode {
    pub fake_inode: Le32,
    pub fake_rec_len: Le16,
    pub fake_name_len: u8,
    pub fake_file_type: u8,
    pub dx_limit: Le16,
    pub dx_count: Le16,
    pub dx_block: Le32,
}

/// One index entry: names hashing to >= `hash` live under `block`.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DxEntry {
    pub hash: Le32,
    pub block: Le32,
}

/// Checksum tail of an index block (after `dx_limit` entries).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DxTail {
    pub dt_reserved: Le32,
    pub dt_checksum: Le32,
}

const _: () = assert!(core::mem::size_of::<DirEntryHeader>() == 8);
const _: () = assert!(core::mem::size_of::<DirTail>() == 12);
const _: () = assert!(core::mem::size_of::<DxRoot>() == 40);
const _: () = assert!(core::mem::size_of::<DxNode>() == 16);

/// One decoded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    pub inode: u32,
    pub file_type: u8,
    pub name: &'a [u8],
    /// Byte offset of the entry within its block.
    pub offset: usize,
    pub rec_len: usize,
}

/// Minimum record length for a name of `name_len` bytes (8 + name, 4-aligned).
pub fn rec_len_for(name_len: usize) -> usize {
    (DIRENT_HEADER_SIZE + name_len + 3) & !3
}

/// Iterates the live entries of one directory leaf block, validating each
/// `rec_len`/`name_len` before use. `limit` is where entries end (block size,
/// or block size - 12 when a checksum tail is present).
pub struct DirBlockIter<'a> {
    block: &'a [u8],
    pos: usize,
    limit: usize,
    base: u64,
    steps: usize,
}

impl<'a> DirBlockIter<'a> {
    pub fn new(block: &'a [u8], base: u64, has_tail: bool) -> Self {
        let limit = if has_tail {
            block.len().saturating_sub(DIR_TAIL_SIZE)
        } else {
            block.len()
        };
        DirBlockIter {
            block,
            pos: 0,
            limit,
            base,
            steps: 0,
        }
    }

    fn bad(&self, off: usize, field: &'static str, exp: Expected, act: u64) -> FsError {
        FsError::corrupt("directory entry", self.base + off as u64, field, exp, act)
    }

    fn next_entry(&mut self) -> Result<DirEntry<'a>> {
        let pos = self.pos;
        let (h, _) = self
            .block
            .get(pos..self.limit)
            .and_then(|b| DirEntryHeader::ref_from_prefix(b).ok())
            .ok_or_else(|| self.bad(pos, "rec_len", Expected::AtLeast(8), (self.limit - pos) as u64))?;
        let rec_len = usize::from(h.rec_len.get());
        let name_len = usize::from(h.name_len);
        if rec_len < 12 || rec_len % 4 != 0 || pos + rec_len > self.limit {
            return Err(self.bad(
                pos + 4,
                "rec_len",
                Expected::Within(12, (self.limit - pos) as u64),
                rec_len as u64,
            ));
        }
        if h.inode.get() != 0 && DIRENT_HEADER_SIZE + name_len > rec_len {
            return Err(self.bad(
                pos + 6,
                "name_len",
                Expected::AtMost((rec_len - 8) as u64),
                name_len as u64,
            ));
        }
        let name = &self.block[pos + 8..pos + 8 + name_len.min(rec_len - 8)];
        self.pos = pos + rec_len;
        Ok(DirEntry {
            inode: h.inode.get(),
            file_type: h.file_type,
            name,
            offset: pos,
            rec_len,
        })
    }
}

impl<'a> Iterator for DirBlockIter<'a> {
    type Item = Result<DirEntry<'a>>;

    /// Yields every record, free ones too (inode 0); stops after an error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.limit || self.steps > MAX_ENTRIES_PER_BLOCK {
            return None;
        }
        self.steps += 1;
        let r = self.next_entry();
        if r.is_err() {
            self.pos = self.limit;
        }
        Some(r)
    }
}

/// Validate a name for a directory entry: 1..=255 bytes, no '/' or NUL.
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > MAX_NAME_LEN {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::Invalid("a name must be 1-255 bytes without '/' or NUL".into()));
    }
    Ok(())
}

/// Name hash for hashed directories (`dx_hash_version` 1): CRC-32 seeded by
/// `s_hash_seed[0]`, with bit 0 cleared (ext4 uses it as a collision flag).
pub fn name_hash(name: &[u8], seed: u32) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(name);
    h.finalize() & !1
}

/// Checksum of a leaf block with a tail: seed, block number, directory inode
/// number, then bytes before the tail's checksum field.
pub fn leaf_checksum(block: &[u8], block_no: u64, dir_ino: u32, seed: u32) -> u32 {
    let end = block.len().saturating_sub(4);
    checksum::structure_csum(seed, block_no, &[&dir_ino.to_le_bytes(), &block[..end]])
}

/// Verify the tail of a leaf block at `block_no`.
pub fn verify_leaf_tail(block: &[u8], block_no: u64, dir_ino: u32, seed: u32) -> Result<()> {
    let base = block_no.saturating_mul(BLOCK_SIZE as u64);
    let tail_at = block.len().saturating_sub(DIR_TAIL_SIZE);
    let tail = block
        .get(tail_at..)
        .and_then(|b| DirTail::ref_from_bytes(b).ok())
        .ok_or_else(|| {
            FsError::corrupt(
                "directory block",
                base,
                "size",
                Expected::Eq(BLOCK_SIZE as u64),
                block.len() as u64,
            )
        })?;
    if tail.det_rec_len.get() != DIR_TAIL_SIZE as u16 || tail.det_reserved_ft != DIR_TAIL_FT {
        return Err(FsError::corrupt(
            "directory block",
            base + tail_at as u64 + 7,
            "det_reserved_ft",
            Expected::Eq(DIR_TAIL_FT.into()),
            tail.det_reserved_ft.into(),
        ));
    }
    let want = leaf_checksum(block, block_no, dir_ino, seed);
    if tail.det_checksum.get() != want {
        return Err(FsError::corrupt(
            "directory block",
            base + tail_at as u64 + 8,
            "det_checksum",
            Expected::Eq(want.into()),
            tail.det_checksum.get().into(),
        ));
    }
    Ok(())
}

/// Write a tail into the last 12 bytes of `block` and seal its checksum.
pub fn seal_leaf_tail(block: &mut [u8], block_no: u64, dir_ino: u32, seed: u32) {
    let at = block.len() - DIR_TAIL_SIZE;
    let mut t = DirTail::new_zeroed();
    t.det_rec_len.set(DIR_TAIL_SIZE as u16);
    t.det_reserved_ft = DIR_TAIL_FT;
    block[at..].copy_from_slice(t.as_bytes());
    let c = leaf_checksum(block, block_no, dir_ino, seed);
    let n = block.len();
    block[n - 4..].copy_from_slice(&c.to_le_bytes());
}

/// Write one entry header + name at `off` (caller checked the space).
pub fn write_entry(block: &mut [u8], off: usize, inode: u32, rec_len: u16, file_type: u8, name: &[u8]) {
    let mut h = DirEntryHeader::new_zeroed();
    h.inode.set(inode);
    h.rec_len.set(rec_len);
    h.name_len = name.len() as u8;
    h.file_type = file_type;
    block[off..off + 8].copy_from_slice(h.as_bytes());
    block[off + 8..off + 8 + name.len()].copy_from_slice(name);
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout(
            "DirEntryHeader",
            8,
            crate::layout_of!(DirEntryHeader {
                inode,
                rec_len,
                name_len,
                file_type
            }),
        ),
        layout(
            "DirTail",
            12,
            crate::layout_of!(DirTail {
                det_reserved_zero1,
                det_rec_len,
                det_reserved_zero2,
                det_reserved_ft,
                det_checksum
            }),
        ),
        layout(
            "DxRoot",
            40,
            crate::layout_of!(DxRoot {
                dot_inode,
                dot_rec_len,
                dot_name_len,
                dot_file_type,
                dot_name,
                dotdot_inode,
                dotdot_rec_len,
                dotdot_name_len,
                dotdot_file_type,
                dotdot_name,
                dx_reserved_zero,
                dx_hash_version,
                dx_info_length,
                dx_indirect_levels,
                dx_unused_flags,
                dx_limit,
                dx_count,
                dx_block
            }),
        ),
        layout(
            "DxNode",
            16,
            crate::layout_of!(DxNode {
                fake_inode,
                fake_rec_len,
                fake_name_len,
                fake_file_type,
                dx_limit,
                dx_count,
                dx_block
            }),
        ),
        layout("DxEntry", 8, crate::layout_of!(DxEntry { hash, block })),
        layout(
            "DxTail",
            8,
            crate::layout_of!(DxTail {
                dt_reserved,
                dt_checksum
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_with(names: &[&[u8]], tail: bool) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK_SIZE];
        let end = if tail { BLOCK_SIZE - DIR_TAIL_SIZE } else { BLOCK_SIZE };
        let mut off = 0;
        for (i, n) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            let rl = if last { end - off } else { rec_len_for(n.len()) };
            write_entry(&mut b, off, 10 + i as u32, rl as u16, 1, n);
            off += rl;
        }
        if tail {
            seal_leaf_tail(&mut b, 70, 1, 3);
        }
        b
    }

    #[test]
    fn entries_decode_in_order() {
        let b = block_with(&[b".", b"..", b"hello"], true);
        let names: Vec<_> = DirBlockIter::new(&b, 0, true)
            .map(|e| e.unwrap().name.to_vec())
            .collect();
        assert_eq!(names, vec![b".".to_vec(), b"..".to_vec(), b"hello".to_vec()]);
        verify_leaf_tail(&b, 70, 1, 3).unwrap();
    }

    #[test]
    fn bad_rec_len_is_reported_with_its_offset() {
        let mut b = block_with(&[b"a", b"b"], false);
        b[4..6].copy_from_slice(&5u16.to_le_bytes());
        let err = DirBlockIter::new(&b, 8192, false).find_map(|r| r.err()).unwrap();
        let c = err.corruption().unwrap();
        assert_eq!((c.field, c.offset, c.actual), ("rec_len", 8196, 5));
    }

    #[test]
    fn rec_len_past_block_end_is_rejected() {
        let mut b = block_with(&[b"a"], false);
        b[4..6].copy_from_slice(&8192u16.to_le_bytes());
        assert!(DirBlockIter::new(&b, 0, false).any(|r| r.is_err()));
    }

    #[test]
    fn any_flip_in_a_checksummed_block_is_detected() {
        let b = block_with(&[b".", b"..", b"x"], true);
        for i in (0..BLOCK_SIZE).step_by(97).chain([BLOCK_SIZE - 1]) {
            let mut c = b.clone();
            c[i] ^= 0x08;
            assert!(verify_leaf_tail(&c, 70, 1, 3).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name(&[b'a'; 256]).is_err());
        assert!(check_name(b"a/b").is_err());
        assert!(check_name(b"a\0").is_err());
        assert!(check_name(b"").is_err());
        check_name(&[b'a'; 255]).unwrap();
    }
}
