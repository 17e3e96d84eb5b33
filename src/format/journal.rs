//! The journal ring (format-spec/10-journal.md).
//!
//! A jbd2-like physical block journal in the region of `s_vx_journal_blocks`
//! blocks starting at `s_vx_journal_start`. Block 0 of the region is the [`JournalSuperblock`];
//! blocks 1.. form the ring. A transaction is a descriptor block (tags naming
//! home blocks), the block images, optional revoke blocks, and a commit
//! block. Every record block starts with a [`JournalHeader`] and ends with
//! a 4-byte checksum; data blocks are covered by the tag checksums.

use super::{checksum, layout, Layout, Le32, Le64, LeI32, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `js_magic`: "VXJS".
pub const JOURNAL_SB_MAGIC: u32 = 0x534A_5856;
/// `jh_magic`: "VXJL".
pub const JOURNAL_MAGIC: u32 = 0x4C4A_5856;
/// `jh_blocktype` values.
pub const BLOCKTYPE_DESCRIPTOR: u32 = 1;
pub const BLOCKTYPE_COMMIT: u32 = 2;
pub const BLOCKTYPE_REVOKE: u32 = 3;
/// `t_flags`: the first 4 bytes of the data block were the journal magic and
/// were zeroed in the journal copy (restore on replay).
pub const TAG_ESCAPED: u32 = 0x1;
/// `t_flags`: last tag of this descriptor.
pub const TAG_LAST: u32 = 0x2;
/// Offset of the record checksum in descriptor, revoke and commit blocks.
pub const RECORD_CSUM_OFFSET: usize = BLOCK_SIZE - 4;
/// Tags per descriptor block (after the 16-byte header, before the checksum).
pub const TAGS_PER_DESCRIPTOR: usize = (RECORD_CSUM_OFFSET - 16) / 16;
/// Offset of the journal superblock's backup copy within its block (a
/// different 512-byte sector than the primary, format-spec/10 §10.2).
pub const BACKUP_OFFSET: usize = 2048;
/// Smallest journal mkfs creates (superblock + room for a few transactions).
pub const MIN_JOURNAL_BLOCKS: u64 = 64;

/// Block 0 of the journal region, format-spec/10 §10.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct JournalSuperblock {
    pub js_magic: Le32,
    pub js_version: Le32,
    pub js_block_size: Le32,
    pub js_max_len: Le32,
    pub js_first: Le32,
    pub js_errno: LeI32,
    pub js_sequence: Le64,
    pub js_start: Le64,
    pub js_uuid: [u8; 16],
    pub js_reserved: [u8; 12],
    pub js_checksum: Le32,
}

/// Header of every descriptor, commit and revoke block, format-spec/10 §10.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct JournalHeader {
    pub jh_magic: Le32,
    pub jh_blocktype: Le32,
    pub jh_sequence: Le64,
}

/// A descriptor tag: one block image follows for each, format-spec/10 §10.4.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct JournalTag {
    pub t_blocknr: Le64,
    pub t_flags: Le32,
    pub t_checksum: Le32,
}

/// Body of a revoke block after the header, format-spec/10 §10.5.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RevokeHeader {
    pub r_count: Le32,
    pub r_reserved: Le32,
}

/// Body of a commit block after the header, format-spec/10 §10.6.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CommitBody {
    pub c_commit_sec: Le64,
    pub c_commit_nsec: Le32,
    pub c_data_blocks: Le32,
    pub c_data_checksum: Le32,
    pub c_reserved: Le32,
}

const _: () = assert!(core::mem::size_of::<JournalSuperblock>() == 72);
const _: () = assert!(core::mem::size_of::<JournalHeader>() == 16);
const _: () = assert!(core::mem::size_of::<JournalTag>() == 16);

/// Checksum of the journal superblock (seed, its block number, all but
/// `js_checksum`).
pub fn superblock_checksum(bytes: &[u8], block_no: u64, seed: u32) -> u32 {
    checksum::csum_skipping(seed, block_no, bytes.get(..72).unwrap_or(bytes), 68)
}

/// Checksum of a record block: seed, then the ring position (block index
/// within the region, so a record copied to another position fails), then
/// bytes 0..4092. Records left from an earlier lap at the same position are
/// told apart by `jh_sequence`, not by this checksum.
pub fn record_checksum(block: &[u8], ring_index: u64, seed: u32) -> u32 {
    checksum::structure_csum(seed, ring_index, &[block.get(..RECORD_CSUM_OFFSET).unwrap_or(block)])
}

/// Parse and verify the journal superblock at `block_no`.
pub fn parse_superblock(block: &[u8], block_no: u64, seed: u32, region_blocks: u64) -> Result<&JournalSuperblock> {
    let base = block_no.saturating_mul(BLOCK_SIZE as u64);
    let (js, _) = JournalSuperblock::ref_from_prefix(block).map_err(|_| {
        FsError::corrupt(
            "journal superblock",
            base,
            "size",
            Expected::AtLeast(72),
            block.len() as u64,
        )
    })?;
    let bad = |off: u64, field, exp, act: u64| FsError::corrupt("journal superblock", base + off, field, exp, act);
    if js.js_magic.get() != JOURNAL_SB_MAGIC {
        return Err(bad(
            0,
            "js_magic",
            Expected::Eq(JOURNAL_SB_MAGIC.into()),
            js.js_magic.get().into(),
        ));
    }
    let want = superblock_checksum(block, block_no, seed);
    if js.js_checksum.get() != want {
        return Err(bad(
            68,
            "js_checksum",
            Expected::Eq(want.into()),
            js.js_checksum.get().into(),
        ));
    }
    if u64::from(js.js_max_len.get()) != region_blocks {
        return Err(bad(
            12,
            "js_max_len",
            Expected::Eq(region_blocks),
            js.js_max_len.get().into(),
        ));
    }
    if js.js_first.get() != 1 {
        return Err(bad(16, "js_first", Expected::Eq(1), js.js_first.get().into()));
    }
    if js.js_start.get() >= region_blocks {
        return Err(bad(32, "js_start", Expected::Below(region_blocks), js.js_start.get()));
    }
    Ok(js)
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout(
            "JournalSuperblock",
            72,
            crate::layout_of!(JournalSuperblock {
                js_magic,
                js_version,
                js_block_size,
                js_max_len,
                js_first,
                js_errno,
                js_sequence,
                js_start,
                js_uuid,
                js_reserved,
                js_checksum
            }),
        ),
        layout(
            "JournalHeader",
            16,
            crate::layout_of!(JournalHeader {
                jh_magic,
                jh_blocktype,
                jh_sequence
            }),
        ),
        layout(
            "JournalTag",
            16,
            crate::layout_of!(JournalTag {
                t_blocknr,
                t_flags,
                t_checksum
            }),
        ),
        Layout {
            name: "RevokeHeader",
            size: 8,
            origin: 16,
            fields: crate::layout_of!(RevokeHeader { r_count, r_reserved }),
        },
        Layout {
            name: "CommitBody",
            size: 24,
            origin: 16,
            fields: crate::layout_of!(CommitBody {
                c_commit_sec,
                c_commit_nsec,
                c_data_blocks,
                c_data_checksum,
                c_reserved
            }),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    fn sb(seed: u32) -> Vec<u8> {
        let mut js = JournalSuperblock::new_zeroed();
        js.js_magic.set(JOURNAL_SB_MAGIC);
        js.js_version.set(1);
        js.js_block_size.set(4096);
        js.js_max_len.set(256);
        js.js_first.set(1);
        js.js_sequence.set(1);
        let mut b = vec![0u8; BLOCK_SIZE];
        b[..72].copy_from_slice(js.as_bytes());
        let c = superblock_checksum(&b, 500, seed);
        b[68..72].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn valid_superblock_parses_and_every_flip_is_caught() {
        let b = sb(11);
        parse_superblock(&b, 500, 11, 256).unwrap();
        for i in 0..72 {
            let mut c = b.clone();
            c[i] ^= 0x02;
            assert!(parse_superblock(&c, 500, 11, 256).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn records_from_another_ring_position_fail_their_checksum() {
        let block = vec![1u8; BLOCK_SIZE];
        assert_ne!(record_checksum(&block, 3, 1), record_checksum(&block, 4, 1));
    }
}
