//! Choosing the geometry of a new image (format-spec/01-overview.md §1.3):
//! region sizes from the image size and the options.

use crate::error::{FsError, Result};
use crate::format::bitmap::BITS_PER_TAILED_BLOCK;
use crate::format::inode::LARGE_INODES_PER_BLOCK;
use crate::format::BLOCK_SIZE_U64;
use crate::layout::{Region, KERNEL_MAX_BLOCKS, KERNEL_ROOT_DIR_BLOCK};

/// Smallest v1 image (room for the metadata and some data).
pub const MIN_V1_BYTES: u64 = 8 << 20;
/// Default bytes of image per inode (as ext4's inode_ratio).
pub const DEFAULT_INODE_RATIO: u64 = 16384;

/// Sizes of the v1 regions, in order on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub blocks: u64,
    pub inodes: u32,
    pub block_summary: Region,
    pub block_bitmap: Region,
    pub inode_summary: Region,
    pub inode_bitmap: Region,
    pub inode_table: Region,
    pub journal: Region,
    pub events: Region,
    pub first_data_block: u64,
}

/// Knobs a user may set; `None` picks the default.
#[derive(Debug, Clone, Default)]
pub struct Sizing {
    pub inode_ratio: Option<u64>,
    pub journal_blocks: Option<u64>,
    pub event_blocks: Option<u64>,
}

/// An explicit size (refused above `hi`, the largest the format's
/// sizing rules allow) or the derived one clamped to `lo ..= hi`.
fn clamp_default(choice: Option<u64>, derived: u64, lo: u64, hi: u64, what: &str) -> Result<u64> {
    match choice {
        Some(n) if n > hi => Err(FsError::Invalid(format!(
            "{what} can have at most {hi} blocks; {n} given"
        ))),
        Some(n) => Ok(n),
        None => Ok(derived.clamp(lo, hi)),
    }
}

/// Images from this many blocks (256 MiB) up get at least
/// [`JOURNAL_FLOOR`] journal blocks by default.
const JOURNAL_FLOOR_FROM: u64 = 65536;
/// 16 MiB, what ext4 gives a filesystem of 128 MiB to 1 GiB.
const JOURNAL_FLOOR: u64 = 4096;

/// The journal's default size before clamping (format-spec/10 §10.11):
/// 1/64 of the image (16 MiB per GiB, as ext4 sizes its journal), but at
/// least 16 MiB from 256 MiB up. Why: bulk work (a vector build changes
/// the same node blocks again and again) commits in batches of up to the
/// ring's size; 1/64 of a few hundred MiB made a commit, with its two to
/// four flushes, every few dozen inserts.
fn default_journal_blocks(blocks: u64) -> u64 {
    if blocks >= JOURNAL_FLOOR_FROM {
        (blocks / 64).max(JOURNAL_FLOOR)
    } else {
        blocks / 64
    }
}

/// Plan a v1 image of `bytes` bytes.
pub fn plan_v1(bytes: u64, sizing: &Sizing) -> Result<Plan> {
    if bytes < MIN_V1_BYTES {
        return Err(FsError::Invalid(format!(
            "a VexFS image needs at least {} MiB; {bytes} bytes given",
            MIN_V1_BYTES >> 20
        )));
    }
    let blocks = bytes / BLOCK_SIZE_U64;
    if blocks >= 1 << 48 {
        return Err(FsError::Invalid("image larger than 2^48 blocks (1 EiB)".into()));
    }
    let ratio = sizing.inode_ratio.unwrap_or(DEFAULT_INODE_RATIO).max(4096);
    let wanted = bytes.div_ceil(ratio).max(64).next_multiple_of(LARGE_INODES_PER_BLOCK);
    let inodes = wanted.min(u64::from(u32::MAX) / LARGE_INODES_PER_BLOCK * LARGE_INODES_PER_BLOCK);
    let bb = blocks.div_ceil(BITS_PER_TAILED_BLOCK);
    let ib = inodes.div_ceil(BITS_PER_TAILED_BLOCK);
    let journal = clamp_default(
        sizing.journal_blocks,
        default_journal_blocks(blocks),
        crate::format::journal::MIN_JOURNAL_BLOCKS,
        65536,
        "the journal",
    )?;
    let events = clamp_default(
        sizing.event_blocks,
        blocks / 512,
        crate::format::events::MIN_EVENT_BLOCKS,
        65536,
        "the event ring",
    )?;
    if journal < crate::format::journal::MIN_JOURNAL_BLOCKS || events < crate::format::events::MIN_EVENT_BLOCKS {
        return Err(FsError::Invalid(
            "the journal needs at least 64 blocks and the event ring at least 16".into(),
        ));
    }
    let mut next = 1u64;
    let mut take = |n: u64| {
        let r = Region { start: next, blocks: n };
        next += n;
        r
    };
    let plan = Plan {
        blocks,
        inodes: inodes as u32,
        block_summary: take(bb.div_ceil(BITS_PER_TAILED_BLOCK)),
        block_bitmap: take(bb),
        inode_summary: take(ib.div_ceil(BITS_PER_TAILED_BLOCK)),
        inode_bitmap: take(ib),
        inode_table: take(inodes / LARGE_INODES_PER_BLOCK),
        journal: take(journal),
        events: take(events),
        first_data_block: next,
    };
    if plan.first_data_block + 64 > blocks {
        return Err(FsError::Invalid(format!(
            "metadata needs {} of the {blocks} blocks; make the image larger or lower --journal-blocks/--event-blocks/--inode-ratio",
            plan.first_data_block
        )));
    }
    Ok(plan)
}

/// Blocks of a kernel-layout image of `bytes` bytes.
pub fn plan_kernel(bytes: u64) -> Result<u64> {
    let blocks = bytes / BLOCK_SIZE_U64;
    if blocks <= KERNEL_ROOT_DIR_BLOCK {
        return Err(FsError::Invalid(format!(
            "a kernel-layout image needs at least {} blocks",
            KERNEL_ROOT_DIR_BLOCK + 1
        )));
    }
    if blocks > KERNEL_MAX_BLOCKS {
        return Err(FsError::Invalid(format!(
            "the kernel layout has one bitmap block and so holds at most {} MiB; got {} MiB",
            (KERNEL_MAX_BLOCKS * BLOCK_SIZE_U64) >> 20,
            bytes >> 20
        )));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_larger_than_the_format_allows_are_refused() {
        let big = Sizing {
            journal_blocks: Some(65537),
            ..Sizing::default()
        };
        let e = plan_v1(1 << 30, &big).unwrap_err();
        assert!(
            e.to_string()
                .contains("the journal can have at most 65536 blocks; 65537 given"),
            "{e}"
        );
        let big = Sizing {
            event_blocks: Some(1 << 20),
            ..Sizing::default()
        };
        assert!(plan_v1(1 << 30, &big)
            .unwrap_err()
            .to_string()
            .contains("the event ring"));
    }

    #[test]
    fn regions_are_contiguous_and_in_order() {
        let p = plan_v1(64 << 20, &Sizing::default()).unwrap();
        let order = [
            p.block_summary,
            p.block_bitmap,
            p.inode_summary,
            p.inode_bitmap,
            p.inode_table,
            p.journal,
            p.events,
        ];
        assert_eq!(order[0].start, 1);
        for w in order.windows(2) {
            assert_eq!(w[0].end(), w[1].start);
        }
        assert_eq!(p.events.end(), p.first_data_block);
        assert_eq!(p.inodes, 4096);
    }

    #[test]
    fn journal_default_has_a_floor_from_256_mib() {
        let blocks = |mib: u64| plan_v1(mib << 20, &Sizing::default()).unwrap().journal.blocks;
        assert_eq!(blocks(64), 256, "1/64 below 256 MiB");
        assert_eq!(blocks(255), 255 * 256 / 64);
        assert_eq!(blocks(256), 4096, "the 16 MiB floor");
        assert_eq!(blocks(400), 4096);
        assert_eq!(blocks(2048), 8192, "1/64 above 1 GiB");
    }

    #[test]
    fn huge_images_scale() {
        let p = plan_v1(100 << 40, &Sizing::default()).unwrap();
        assert!(p.block_bitmap.blocks > 800_000);
        assert_eq!(p.inodes as u64 % 16, 0);
        assert_eq!(p.journal.blocks, 65536);
    }

    #[test]
    fn tiny_and_oversized_inputs_are_refused() {
        assert!(plan_v1(1 << 20, &Sizing::default()).is_err());
        assert!(plan_kernel(129 << 20).is_err());
        assert_eq!(plan_kernel(128 << 20).unwrap(), 32768);
    }
}
