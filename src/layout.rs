//! The validated geometry of one image (format-spec/01-overview.md and
//! 02-superblock.md §2.4): where every region lives, checked once against
//! the superblock and the image size, so later code can trust block and
//! inode numbers it derives from here.

use crate::error::{Expected, FsError, Result};
use crate::format::bitmap::{BITS_PER_KERNEL_BLOCK, BITS_PER_TAILED_BLOCK};
use crate::format::features::{self, Access, Features};
use crate::format::inode::{
    InodeNo, BASE_INODE_SIZE, KERNEL_INODES_PER_BLOCK, LARGE_INODES_PER_BLOCK, LARGE_INODE_SIZE,
};
use crate::format::superblock::{self, Superblock};
use crate::format::{checksum, BLOCK_SIZE_U64};

/// Kernel layout: the block bitmap block.
pub const KERNEL_BITMAP_BLOCK: u64 = 1;
/// Kernel layout: first inode-table block.
pub const KERNEL_INODE_TABLE_START: u64 = 2;
/// Kernel layout: inode-table blocks.
pub const KERNEL_INODE_TABLE_BLOCKS: u64 = 64;
/// Kernel layout: the root directory's block.
pub const KERNEL_ROOT_DIR_BLOCK: u64 = 66;
/// Kernel layout: most blocks (one bitmap block of 32768 bits = 128 MiB).
pub const KERNEL_MAX_BLOCKS: u64 = BITS_PER_KERNEL_BLOCK;
/// Kernel layout: inode count (64 blocks x 36 inodes).
pub const KERNEL_INODES: u64 = KERNEL_INODE_TABLE_BLOCKS * KERNEL_INODES_PER_BLOCK;

/// Most blocks of a v1 image: extents hold 48-bit physical block numbers.
pub const MAX_V1_BLOCKS: u64 = 1 << 48;

/// The `*_blocks` field that follows a region's `*_start` field.
fn blocks_field(start_field: &'static str) -> &'static str {
    match start_field {
        "s_vx_block_summary_start" => "s_vx_block_summary_blocks",
        "s_vx_block_bitmap_start" => "s_vx_block_bitmap_blocks",
        "s_vx_inode_summary_start" => "s_vx_inode_summary_blocks",
        "s_vx_inode_bitmap_start" => "s_vx_inode_bitmap_blocks",
        "s_vx_inode_table_start" => "s_vx_inode_table_blocks",
        "s_vx_journal_start" => "s_vx_journal_blocks",
        "s_vx_event_start" => "s_vx_event_blocks",
        other => other,
    }
}

/// A contiguous run of blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Region {
    pub start: u64,
    pub blocks: u64,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.start + self.blocks
    }
    pub fn contains(&self, block: u64) -> bool {
        block >= self.start && block < self.end()
    }
}

/// The geometry every other layer works from.
#[derive(Debug, Clone)]
pub struct Geometry {
    pub features: Features,
    pub access: Access,
    pub blocks_count: u64,
    pub inodes_count: u32,
    pub inode_size: usize,
    pub inodes_per_block: u64,
    pub block_bitmap: Region,
    pub block_summary: Region,
    pub inode_bitmap: Region,
    pub inode_summary: Region,
    pub inode_table: Region,
    pub journal: Region,
    pub events: Region,
    pub first_data_block: u64,
    pub first_ino: u32,
    /// Seed for metadata checksums, when metadata_csum is on.
    pub csum_seed: Option<u32>,
    /// Seed for the directory name hash.
    pub hash_seed: u32,
}

fn bad(off: u64, field: &'static str, exp: Expected, act: u64) -> FsError {
    FsError::corrupt("superblock", off, field, exp, act)
}

impl Geometry {
    /// Validate `sb` against an image of `image_len` bytes.
    pub fn new(sb: &Superblock, image_len: u64) -> Result<Geometry> {
        let features = sb.features();
        let access = features.check()?;
        if sb.s_block_size.get() != 4096 {
            return Err(bad(4, "s_block_size", Expected::Eq(4096), sb.s_block_size.get().into()));
        }
        let blocks_count = sb.blocks_count();
        let needed = blocks_count
            .checked_mul(BLOCK_SIZE_U64)
            .ok_or_else(|| bad(8, "s_blocks_count", Expected::Below(1 << 52), blocks_count))?;
        if needed > image_len {
            return Err(FsError::Truncated {
                needed,
                actual: image_len,
            });
        }
        let g = if features.is_kernel_layout() {
            Self::kernel(sb, features, access, blocks_count)?
        } else {
            Self::v1(sb, features, access, blocks_count)?
        };
        g.check_counts(sb)?;
        Ok(g)
    }

    fn kernel(sb: &Superblock, features: Features, access: Access, blocks_count: u64) -> Result<Geometry> {
        if !(KERNEL_ROOT_DIR_BLOCK + 1..=KERNEL_MAX_BLOCKS).contains(&blocks_count) {
            return Err(bad(
                8,
                "s_blocks_count",
                Expected::Within(KERNEL_ROOT_DIR_BLOCK + 1, KERNEL_MAX_BLOCKS),
                blocks_count,
            ));
        }
        if usize::from(sb.s_inode_size.get()) != BASE_INODE_SIZE {
            return Err(bad(
                84,
                "s_inode_size",
                Expected::Eq(BASE_INODE_SIZE as u64),
                sb.s_inode_size.get().into(),
            ));
        }
        let inodes_count = sb.s_inodes_count.get();
        if u64::from(inodes_count) > KERNEL_INODES || inodes_count == 0 {
            return Err(bad(
                16,
                "s_inodes_count",
                Expected::Within(1, KERNEL_INODES),
                inodes_count.into(),
            ));
        }
        Ok(Geometry {
            features,
            access,
            blocks_count,
            inodes_count,
            inode_size: BASE_INODE_SIZE,
            inodes_per_block: KERNEL_INODES_PER_BLOCK,
            block_bitmap: Region {
                start: KERNEL_BITMAP_BLOCK,
                blocks: 1,
            },
            block_summary: Region::default(),
            inode_bitmap: Region::default(),
            inode_summary: Region::default(),
            inode_table: Region {
                start: KERNEL_INODE_TABLE_START,
                blocks: KERNEL_INODE_TABLE_BLOCKS,
            },
            journal: Region::default(),
            events: Region::default(),
            first_data_block: KERNEL_ROOT_DIR_BLOCK,
            first_ino: sb.s_first_ino.get().max(2),
            csum_seed: None,
            hash_seed: 0,
        })
    }

    fn v1(sb: &Superblock, features: Features, access: Access, blocks_count: u64) -> Result<Geometry> {
        if sb.s_vx_layout_version.get() != crate::format::superblock::LAYOUT_VERSION_1 {
            return Err(bad(
                640,
                "s_vx_layout_version",
                Expected::Eq(1),
                sb.s_vx_layout_version.get().into(),
            ));
        }
        if sb.s_log_block_size.get() != 2 {
            return Err(bad(
                28,
                "s_log_block_size",
                Expected::Eq(2),
                sb.s_log_block_size.get().into(),
            ));
        }
        Self::check_v1_fields(sb, features, blocks_count)?;
        let large = features.has_incompat(features::INCOMPAT_LARGE_INODE);
        let inode_size = if large { LARGE_INODE_SIZE } else { BASE_INODE_SIZE };
        if usize::from(sb.s_inode_size.get()) != inode_size {
            return Err(bad(
                84,
                "s_inode_size",
                Expected::Eq(inode_size as u64),
                sb.s_inode_size.get().into(),
            ));
        }
        let inodes_per_block = if large {
            LARGE_INODES_PER_BLOCK
        } else {
            KERNEL_INODES_PER_BLOCK
        };
        let r = |start: &crate::format::Le64, blocks: &crate::format::Le64| Region {
            start: start.get(),
            blocks: blocks.get(),
        };
        let csum = features.has_ro_compat(features::RO_COMPAT_METADATA_CSUM);
        let g = Geometry {
            features,
            access,
            blocks_count,
            inodes_count: sb.s_inodes_count.get(),
            inode_size,
            inodes_per_block,
            block_bitmap: r(&sb.s_vx_block_bitmap_start, &sb.s_vx_block_bitmap_blocks),
            block_summary: r(&sb.s_vx_block_summary_start, &sb.s_vx_block_summary_blocks),
            inode_bitmap: r(&sb.s_vx_inode_bitmap_start, &sb.s_vx_inode_bitmap_blocks),
            inode_summary: r(&sb.s_vx_inode_summary_start, &sb.s_vx_inode_summary_blocks),
            inode_table: r(&sb.s_vx_inode_table_start, &sb.s_vx_inode_table_blocks),
            journal: r(&sb.s_vx_journal_start, &sb.s_vx_journal_blocks),
            events: r(&sb.s_vx_event_start, &sb.s_vx_event_blocks),
            first_data_block: sb.s_vx_first_data_block.get(),
            first_ino: sb.s_first_ino.get(),
            csum_seed: csum.then(|| sb.s_checksum_seed.get()),
            hash_seed: sb.s_hash_seed[0].get(),
        };
        if csum && sb.s_checksum_seed.get() != checksum::image_seed(&sb.s_uuid) {
            return Err(bad(
                624,
                "s_checksum_seed",
                Expected::Eq(checksum::image_seed(&sb.s_uuid).into()),
                sb.s_checksum_seed.get().into(),
            ));
        }
        g.check_regions()?;
        Ok(g)
    }

    /// Regions lie in order, inside the image, without overlap, and are
    /// large enough for the counts they serve.
    fn check_regions(&self) -> Result<()> {
        let per_leaf = BITS_PER_TAILED_BLOCK;
        let need_bb = self.blocks_count.div_ceil(per_leaf);
        let need_ib = u64::from(self.inodes_count).div_ceil(per_leaf);
        // (start field, its offset, region, minimum blocks); the blocks field
        // follows its start field at offset + 8.
        let checks: [(&'static str, u64, Region, u64); 8] = [
            (
                "s_vx_block_summary_start",
                664,
                self.block_summary,
                need_bb.div_ceil(per_leaf),
            ),
            ("s_vx_block_bitmap_start", 648, self.block_bitmap, need_bb),
            (
                "s_vx_inode_summary_start",
                696,
                self.inode_summary,
                need_ib.div_ceil(per_leaf),
            ),
            ("s_vx_inode_bitmap_start", 680, self.inode_bitmap, need_ib),
            (
                "s_vx_inode_table_start",
                712,
                self.inode_table,
                u64::from(self.inodes_count).div_ceil(self.inodes_per_block),
            ),
            (
                "s_vx_journal_start",
                728,
                self.journal,
                if self.features.has_compat(features::COMPAT_HAS_JOURNAL) {
                    crate::format::journal::MIN_JOURNAL_BLOCKS
                } else {
                    0
                },
            ),
            (
                "s_vx_event_start",
                744,
                self.events,
                if self.features.has_ro_compat(features::RO_COMPAT_EVENTS) {
                    crate::format::events::MIN_EVENT_BLOCKS
                } else {
                    0
                },
            ),
            (
                "s_vx_first_data_block",
                760,
                Region {
                    start: self.first_data_block,
                    blocks: 1,
                },
                1,
            ),
        ];
        let mut next_free = 1u64;
        for (field, off, region, min_blocks) in checks {
            if region.blocks < min_blocks {
                return Err(bad(
                    off + 8,
                    blocks_field(field),
                    Expected::AtLeast(min_blocks),
                    region.blocks,
                ));
            }
            if region.blocks == 0 {
                continue;
            }
            if region.start < next_free
                || region
                    .start
                    .checked_add(region.blocks)
                    .is_none_or(|e| e > self.blocks_count)
            {
                return Err(bad(
                    off,
                    field,
                    Expected::Within(next_free, self.blocks_count.saturating_sub(region.blocks)),
                    region.start,
                ));
            }
            next_free = region.end();
        }
        Ok(())
    }

    fn check_v1_fields(sb: &Superblock, features: Features, blocks_count: u64) -> Result<()> {
        if blocks_count > MAX_V1_BLOCKS {
            return Err(bad(8, "s_blocks_count", Expected::AtMost(MAX_V1_BLOCKS), blocks_count));
        }
        if features.has_ro_compat(features::RO_COMPAT_METADATA_CSUM)
            && sb.s_checksum_type != superblock::CSUM_TYPE_CRC32
        {
            return Err(bad(
                373,
                "s_checksum_type",
                Expected::Eq(superblock::CSUM_TYPE_CRC32.into()),
                sb.s_checksum_type.into(),
            ));
        }
        if features.has_ro_compat(features::RO_COMPAT_VECTORS)
            && sb.s_vx_catalog_ino.get() != crate::format::CATALOG_INO
        {
            return Err(bad(
                768,
                "s_vx_catalog_ino",
                Expected::Eq(crate::format::CATALOG_INO.into()),
                sb.s_vx_catalog_ino.get().into(),
            ));
        }
        Ok(())
    }

    fn check_counts(&self, sb: &Superblock) -> Result<()> {
        if self.inodes_count == 0 || u64::from(self.inodes_count) > self.inode_table.blocks * self.inodes_per_block {
            return Err(bad(
                16,
                "s_inodes_count",
                Expected::Within(1, self.inode_table.blocks * self.inodes_per_block),
                self.inodes_count.into(),
            ));
        }
        if sb.free_blocks() > self.blocks_count {
            return Err(bad(
                12,
                "s_free_blocks",
                Expected::AtMost(self.blocks_count),
                sb.free_blocks(),
            ));
        }
        if sb.s_free_inodes.get() > self.inodes_count {
            return Err(bad(
                20,
                "s_free_inodes",
                Expected::AtMost(self.inodes_count.into()),
                sb.s_free_inodes.get().into(),
            ));
        }
        if self.first_ino < 2 || self.first_ino > self.inodes_count {
            return Err(bad(
                80,
                "s_first_ino",
                Expected::Within(2, self.inodes_count.into()),
                self.first_ino.into(),
            ));
        }
        Ok(())
    }

    pub fn is_kernel_layout(&self) -> bool {
        self.features.is_kernel_layout()
    }

    /// Validate an inode number.
    pub fn inode_no(&self, n: u32) -> Option<InodeNo> {
        InodeNo::new(n, self.inodes_count)
    }

    /// Image byte offset of inode `ino`.
    pub fn inode_offset(&self, ino: InodeNo) -> u64 {
        let idx = u64::from(ino.get() - 1);
        let block = self.inode_table.start + idx / self.inodes_per_block;
        block * BLOCK_SIZE_U64 + (idx % self.inodes_per_block) * self.inode_size as u64
    }

    /// True for a block that may belong to a file (not metadata, in range).
    pub fn is_data_block(&self, block: u64) -> bool {
        block >= self.first_data_block && block < self.blocks_count && Some(block) != self.backup_superblock()
    }

    /// v1 images keep a copy of the superblock, written by mkfs and never
    /// again, in their last block (format-spec/02-superblock.md §2.5).
    pub fn backup_superblock(&self) -> Option<u64> {
        (!self.is_kernel_layout()).then(|| self.blocks_count - 1)
    }

    /// Bits per bitmap block in this layout.
    pub fn bits_per_bitmap_block(&self) -> u64 {
        if self.is_kernel_layout() {
            BITS_PER_KERNEL_BLOCK
        } else {
            BITS_PER_TAILED_BLOCK
        }
    }

    /// Every metadata region, for fsck and inspect.
    pub fn regions(&self) -> Vec<(&'static str, Region)> {
        let mut v = vec![("superblock", Region { start: 0, blocks: 1 })];
        for (name, r) in [
            ("block summary", self.block_summary),
            ("block bitmap", self.block_bitmap),
            ("inode summary", self.inode_summary),
            ("inode bitmap", self.inode_bitmap),
            ("inode table", self.inode_table),
            ("journal", self.journal),
            ("event ring", self.events),
        ] {
            if r.blocks > 0 {
                v.push((name, r));
            }
        }
        if let Some(b) = self.backup_superblock() {
            v.push(("backup superblock", Region { start: b, blocks: 1 }));
        }
        v
    }
}
