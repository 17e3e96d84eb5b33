//! The superblock (format-spec/02-superblock.md).
//!
//! 1024 bytes at byte 0 of block 0, in the VexFS kernel module's field order
//! and offsets (an ext2/ext4-shaped struct with natural C alignment, hence the
//! two padding fields). Feature images keep their region table in the first
//! bytes of the kernel's `s_reserved` area (`s_vx_*`, from offset 640).

use super::{layout, Layout, Le16, Le32, Le64};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of the superblock structure in bytes.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Offset of `s_checksum`.
pub const CHECKSUM_OFFSET: usize = 1020;
/// `s_state`: cleanly unmounted.
pub const STATE_VALID: u16 = 0x0001;
/// `s_state`: errors were detected.
pub const STATE_ERROR: u16 = 0x0002;
/// `s_state`: mounted read-write (not clean).
pub const STATE_DIRTY: u16 = 0x0004;
/// `s_vx_layout_version` written by this implementation.
pub const LAYOUT_VERSION_1: u32 = 1;
/// `s_checksum_type` for CRC-32 (IEEE).
pub const CSUM_TYPE_CRC32: u8 = 1;
/// `s_def_hash_version`: seeded CRC-32 name hash (format-spec/06).
pub const HASH_CRC32: u8 = 1;

/// The superblock, format-spec/02-superblock.md §2.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Superblock {
    pub s_magic: Le32,
    pub s_block_size: Le32,
    pub s_blocks_count: Le32,
    pub s_free_blocks: Le32,
    pub s_inodes_count: Le32,
    pub s_free_inodes: Le32,
    pub s_first_data_block: Le32,
    pub s_log_block_size: Le32,
    pub s_blocks_per_group: Le32,
    pub s_inodes_per_group: Le32,
    pub s_mtime: Le32,
    pub s_wtime: Le32,
    pub s_mnt_count: Le16,
    pub s_max_mnt_count: Le16,
    pub s_state: Le16,
    pub s_errors: Le16,
    pub s_minor_rev_level: Le16,
    pub s_pad0: [u8; 2],
    pub s_lastcheck: Le32,
    pub s_checkinterval: Le32,
    pub s_creator_os: Le32,
    pub s_rev_level: Le32,
    pub s_def_resuid: Le16,
    pub s_def_resgid: Le16,
    pub s_first_ino: Le32,
    pub s_inode_size: Le16,
    pub s_block_group_nr: Le16,
    pub s_feature_compat: Le32,
    pub s_feature_incompat: Le32,
    pub s_feature_ro_compat: Le32,
    pub s_uuid: [u8; 16],
    pub s_volume_name: [u8; 16],
    pub s_last_mounted: [u8; 64],
    pub s_algorithm_usage_bitmap: Le32,
    pub s_prealloc_blocks: u8,
    pub s_prealloc_dir_blocks: u8,
    pub s_reserved_gdt_blocks: Le16,
    pub s_journal_uuid: [u8; 16],
    pub s_journal_inum: Le32,
    pub s_journal_dev: Le32,
    pub s_last_orphan: Le32,
    pub s_hash_seed: [Le32; 4],
    pub s_def_hash_version: u8,
    pub s_jnl_backup_type: u8,
    pub s_desc_size: Le16,
    pub s_default_mount_opts: Le32,
    pub s_first_meta_bg: Le32,
    pub s_mkfs_time: Le32,
    pub s_jnl_blocks: [Le32; 17],
    pub s_blocks_count_hi: Le32,
    pub s_r_blocks_count_hi: Le32,
    pub s_free_blocks_count_hi: Le32,
    pub s_min_extra_isize: Le16,
    pub s_want_extra_isize: Le16,
    pub s_flags: Le32,
    pub s_raid_stride: Le16,
    pub s_mmp_update_interval: Le16,
    pub s_pad1: [u8; 4],
    pub s_mmp_block: Le64,
    pub s_raid_stripe_width: Le32,
    pub s_log_groups_per_flex: u8,
    pub s_checksum_type: u8,
    pub s_reserved_pad: Le16,
    pub s_kbytes_written: Le64,
    pub s_snapshot_inum: Le32,
    pub s_snapshot_id: Le32,
    pub s_snapshot_r_blocks_count: Le64,
    pub s_snapshot_list: Le32,
    pub s_error_count: Le32,
    pub s_first_error_time: Le32,
    pub s_first_error_ino: Le32,
    pub s_first_error_block: Le64,
    pub s_first_error_func: [u8; 32],
    pub s_first_error_line: Le32,
    pub s_last_error_time: Le32,
    pub s_last_error_ino: Le32,
    pub s_last_error_line: Le32,
    pub s_last_error_block: Le64,
    pub s_last_error_func: [u8; 32],
    pub s_mount_opts: [u8; 64],
    pub s_usr_quota_inum: Le32,
    pub s_grp_quota_inum: Le32,
    pub s_overhead_clusters: Le32,
    pub s_backup_bgs: [Le32; 2],
    pub s_encrypt_algos: [u8; 4],
    pub s_encrypt_pw_salt: [u8; 16],
    pub s_lpf_ino: Le32,
    pub s_prj_quota_inum: Le32,
    pub s_checksum_seed: Le32,
    pub s_wtime_hi: u8,
    pub s_mtime_hi: u8,
    pub s_mkfs_time_hi: u8,
    pub s_lastcheck_hi: u8,
    pub s_first_error_time_hi: u8,
    pub s_last_error_time_hi: u8,
    pub s_pad2: [u8; 2],
    pub s_encoding: Le16,
    pub s_encoding_flags: Le16,
    // ---- kernel s_reserved (offset 640): the VexFS region table ----
    pub s_vx_layout_version: Le32,
    pub s_vx_flags: Le32,
    pub s_vx_block_bitmap_start: Le64,
    pub s_vx_block_bitmap_blocks: Le64,
    pub s_vx_block_summary_start: Le64,
    pub s_vx_block_summary_blocks: Le64,
    pub s_vx_inode_bitmap_start: Le64,
    pub s_vx_inode_bitmap_blocks: Le64,
    pub s_vx_inode_summary_start: Le64,
    pub s_vx_inode_summary_blocks: Le64,
    pub s_vx_inode_table_start: Le64,
    pub s_vx_inode_table_blocks: Le64,
    pub s_vx_journal_start: Le64,
    pub s_vx_journal_blocks: Le64,
    pub s_vx_event_start: Le64,
    pub s_vx_event_blocks: Le64,
    pub s_vx_first_data_block: Le64,
    pub s_vx_catalog_ino: Le32,
    pub s_vx_reserved: [u8; 248],
    pub s_checksum: Le32,
}

const _: () = assert!(core::mem::size_of::<Superblock>() == SUPERBLOCK_SIZE);
const _: () = assert!(core::mem::offset_of!(Superblock, s_inode_size) == 84);
const _: () = assert!(core::mem::offset_of!(Superblock, s_vx_layout_version) == 640);
const _: () = assert!(core::mem::offset_of!(Superblock, s_checksum) == CHECKSUM_OFFSET);

impl Superblock {
    /// An all-zero superblock, for mkfs to fill in.
    pub fn zeroed() -> Self {
        <Self as FromZeros>::new_zeroed()
    }

    /// Parse the first 1024 bytes of an image: magic and, when
    /// `metadata_csum` is set, the checksum. Field-range checks live in
    /// [`crate::layout::Geometry`].
    pub fn parse(bytes: &[u8]) -> Result<&Superblock> {
        let head = bytes.get(..SUPERBLOCK_SIZE).ok_or(FsError::Truncated {
            needed: SUPERBLOCK_SIZE as u64,
            actual: bytes.len() as u64,
        })?;
        let sb = Superblock::ref_from_bytes(head)
            .map_err(|_| FsError::corrupt("superblock", 0, "size", Expected::Eq(1024), head.len() as u64))?;
        if sb.s_magic.get() != super::VEXFS_MAGIC {
            return Err(FsError::corrupt(
                "superblock",
                0,
                "s_magic",
                Expected::Eq(super::VEXFS_MAGIC as u64),
                sb.s_magic.get() as u64,
            ));
        }
        if sb.is_checksummed() {
            let want = sb.compute_checksum();
            if sb.s_checksum.get() != want {
                return Err(FsError::corrupt(
                    "superblock",
                    CHECKSUM_OFFSET as u64,
                    "s_checksum",
                    Expected::Eq(want as u64),
                    sb.s_checksum.get() as u64,
                ));
            }
        }
        Ok(sb)
    }

    /// The superblock checksum is verified when metadata_csum is set *or*
    /// `s_checksum_type` says CRC-32, so that a single flipped bit cannot
    /// switch checking off (format-spec/13-checksums.md).
    pub fn is_checksummed(&self) -> bool {
        self.ro_compat() & super::features::RO_COMPAT_METADATA_CSUM != 0 || self.s_checksum_type == CSUM_TYPE_CRC32
    }

    /// Find the superblock of an image of `len` bytes: the primary at byte
    /// 0, or, when it is damaged, the backup copy v1 images keep in their
    /// last block (format-spec/02-superblock.md §2.5). `read(offset, n)`
    /// reads image bytes. Returns the superblock and, when it came from the
    /// backup, what was wrong with the primary.
    pub fn find(len: u64, read: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> Result<(Superblock, Option<FsError>)> {
        let head = read(0, SUPERBLOCK_SIZE).unwrap_or_default();
        let primary = Superblock::parse(&head).cloned();
        let err = match primary {
            Ok(sb) => return Ok((sb, None)),
            Err(e @ FsError::Truncated { .. }) => return Err(e),
            Err(e) => e,
        };
        let last = (len / 4096).saturating_sub(1);
        let backup = read(last * 4096, SUPERBLOCK_SIZE).and_then(|b| Superblock::parse(&b).ok().cloned());
        match backup {
            Some(sb) if !sb.features().is_kernel_layout() && sb.blocks_count() == last + 1 => Ok((sb, Some(err))),
            _ => Err(err),
        }
    }

    /// CRC-32 of bytes 0..1020 (format-spec/13-checksums.md).
    pub fn compute_checksum(&self) -> u32 {
        super::checksum::superblock_csum(&self.as_bytes()[..CHECKSUM_OFFSET])
    }

    /// Recompute `s_checksum` (callers set it whenever they change a field).
    pub fn update_checksum(&mut self) {
        let c = self.compute_checksum();
        self.s_checksum.set(c);
    }

    pub fn ro_compat(&self) -> u32 {
        self.s_feature_ro_compat.get()
    }

    /// The feature words.
    pub fn features(&self) -> super::features::Features {
        super::features::Features {
            compat: self.s_feature_compat.get(),
            incompat: self.s_feature_incompat.get(),
            ro_compat: self.s_feature_ro_compat.get(),
        }
    }

    /// 64-bit block count (`s_blocks_count_hi` only with the 64bit feature).
    pub fn blocks_count(&self) -> u64 {
        self.join_hi(self.s_blocks_count.get(), self.s_blocks_count_hi.get())
    }

    /// 64-bit free block count.
    pub fn free_blocks(&self) -> u64 {
        self.join_hi(self.s_free_blocks.get(), self.s_free_blocks_count_hi.get())
    }

    fn join_hi(&self, lo: u32, hi: u32) -> u64 {
        if self.features().has_incompat(super::features::INCOMPAT_64BIT) {
            (u64::from(hi) << 32) | u64::from(lo)
        } else {
            u64::from(lo)
        }
    }

    /// Set the 64-bit free block count (splitting into lo/hi).
    pub fn set_free_blocks(&mut self, n: u64) {
        self.s_free_blocks.set(n as u32);
        self.s_free_blocks_count_hi.set((n >> 32) as u32);
    }

    /// Set the 64-bit block count (splitting into lo/hi).
    pub fn set_blocks_count(&mut self, n: u64) {
        self.s_blocks_count.set(n as u32);
        self.s_blocks_count_hi.set((n >> 32) as u32);
    }

    /// The volume label, up to the first NUL.
    pub fn volume_name(&self) -> String {
        let end = self.s_volume_name.iter().position(|&b| b == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.s_volume_name[..end]).into_owned()
    }

    /// 64-bit mkfs time (`s_mkfs_time_hi` holds bits 32..40).
    pub fn mkfs_time(&self) -> i64 {
        (i64::from(self.s_mkfs_time_hi) << 32) | i64::from(self.s_mkfs_time.get())
    }
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![layout(
        "Superblock",
        core::mem::size_of::<Superblock>(),
        crate::layout_of!(Superblock {
            s_magic,
            s_block_size,
            s_blocks_count,
            s_free_blocks,
            s_inodes_count,
            s_free_inodes,
            s_first_data_block,
            s_log_block_size,
            s_blocks_per_group,
            s_inodes_per_group,
            s_mtime,
            s_wtime,
            s_mnt_count,
            s_max_mnt_count,
            s_state,
            s_errors,
            s_minor_rev_level,
            s_pad0,
            s_lastcheck,
            s_checkinterval,
            s_creator_os,
            s_rev_level,
            s_def_resuid,
            s_def_resgid,
            s_first_ino,
            s_inode_size,
            s_block_group_nr,
            s_feature_compat,
            s_feature_incompat,
            s_feature_ro_compat,
            s_uuid,
            s_volume_name,
            s_last_mounted,
            s_algorithm_usage_bitmap,
            s_prealloc_blocks,
            s_prealloc_dir_blocks,
            s_reserved_gdt_blocks,
            s_journal_uuid,
            s_journal_inum,
            s_journal_dev,
            s_last_orphan,
            s_hash_seed,
            s_def_hash_version,
            s_jnl_backup_type,
            s_desc_size,
            s_default_mount_opts,
            s_first_meta_bg,
            s_mkfs_time,
            s_jnl_blocks,
            s_blocks_count_hi,
            s_r_blocks_count_hi,
            s_free_blocks_count_hi,
            s_min_extra_isize,
            s_want_extra_isize,
            s_flags,
            s_raid_stride,
            s_mmp_update_interval,
            s_pad1,
            s_mmp_block,
            s_raid_stripe_width,
            s_log_groups_per_flex,
            s_checksum_type,
            s_reserved_pad,
            s_kbytes_written,
            s_snapshot_inum,
            s_snapshot_id,
            s_snapshot_r_blocks_count,
            s_snapshot_list,
            s_error_count,
            s_first_error_time,
            s_first_error_ino,
            s_first_error_block,
            s_first_error_func,
            s_first_error_line,
            s_last_error_time,
            s_last_error_ino,
            s_last_error_line,
            s_last_error_block,
            s_last_error_func,
            s_mount_opts,
            s_usr_quota_inum,
            s_grp_quota_inum,
            s_overhead_clusters,
            s_backup_bgs,
            s_encrypt_algos,
            s_encrypt_pw_salt,
            s_lpf_ino,
            s_prj_quota_inum,
            s_checksum_seed,
            s_wtime_hi,
            s_mtime_hi,
            s_mkfs_time_hi,
            s_lastcheck_hi,
            s_first_error_time_hi,
            s_last_error_time_hi,
            s_pad2,
            s_encoding,
            s_encoding_flags,
            s_vx_layout_version,
            s_vx_flags,
            s_vx_block_bitmap_start,
            s_vx_block_bitmap_blocks,
            s_vx_block_summary_start,
            s_vx_block_summary_blocks,
            s_vx_inode_bitmap_start,
            s_vx_inode_bitmap_blocks,
            s_vx_inode_summary_start,
            s_vx_inode_summary_blocks,
            s_vx_inode_table_start,
            s_vx_inode_table_blocks,
            s_vx_journal_start,
            s_vx_journal_blocks,
            s_vx_event_start,
            s_vx_event_blocks,
            s_vx_first_data_block,
            s_vx_catalog_ino,
            s_vx_reserved,
            s_checksum
        }),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::features::RO_COMPAT_METADATA_CSUM;

    fn valid_bytes(csum: bool) -> Vec<u8> {
        let mut sb = Superblock::zeroed();
        sb.s_magic.set(crate::format::VEXFS_MAGIC);
        if csum {
            sb.s_feature_ro_compat.set(RO_COMPAT_METADATA_CSUM);
        }
        sb.update_checksum();
        sb.as_bytes().to_vec()
    }

    #[test]
    fn bad_magic_is_reported_at_offset_0() {
        let mut b = valid_bytes(false);
        b[0] ^= 1;
        let e = Superblock::parse(&b).unwrap_err();
        let c = e.corruption().unwrap();
        assert_eq!((c.offset, c.field), (0, "s_magic"));
        assert_eq!(c.actual, 0x5645_5847);
    }

    #[test]
    fn every_byte_flip_is_caught_by_the_checksum() {
        let good = valid_bytes(true);
        assert!(Superblock::parse(&good).is_ok());
        for i in 4..SUPERBLOCK_SIZE {
            let mut b = good.clone();
            b[i] ^= 0x10;
            assert!(Superblock::parse(&b).is_err(), "flip at byte {i} not detected");
        }
    }

    #[test]
    fn short_input_is_truncated_not_a_panic() {
        assert!(matches!(
            Superblock::parse(&[0u8; 100]),
            Err(FsError::Truncated {
                needed: 1024,
                actual: 100
            })
        ));
    }
}
