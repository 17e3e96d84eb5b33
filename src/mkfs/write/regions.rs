//! The fixed regions of a new v1 image: the tailed bitmaps and their
//! summaries, the superblock, the journal superblock and the event-ring
//! header.

use super::{block_mut, fill_common, set_range};
use crate::format::bitmap::{self, BITS_PER_TAILED_BLOCK};
use crate::format::features::Features;
use crate::format::inode::{self, EXTRA_ISIZE_V1};
use crate::format::superblock::{self, Superblock};
use crate::format::{checksum, events, journal, BLOCK_SIZE, CATALOG_INO, FIRST_INO_V1};
use crate::layout::Region;
use crate::mkfs::{MkfsOptions, Plan};
use zerocopy::{FromZeros, IntoBytes};

/// Write a tailed bitmap region and its summary: bits below `used` and at or
/// past `valid` are set. Returns the number of free bits.
pub(super) fn write_bitmaps(
    img: &mut [u8],
    leaves: Region,
    summary: Region,
    valid: u64,
    used: u64,
    seed: u32,
    progress: &mut dyn FnMut(),
) -> u64 {
    let per = BITS_PER_TAILED_BLOCK;
    let mut free = 0;
    let mut full_leaves = Vec::new();
    for i in 0..leaves.blocks {
        let (lo, hi) = (i * per, (i + 1) * per);
        let blk = block_mut(img, leaves.start + i);
        blk.fill(0);
        let bits = &mut blk[..bitmap::TAILED_BITS_BYTES];
        set_range(bits, 0, used.clamp(lo, hi) - lo);
        set_range(bits, valid.clamp(lo, hi) - lo, per);
        bitmap::seal_tailed(blk, leaves.start + i, Some(seed), per);
        let leaf_free = u64::from(u32::from_le_bytes(
            blk[bitmap::TAILED_BITS_BYTES..bitmap::TAILED_BITS_BYTES + 4]
                .try_into()
                .unwrap_or_default(),
        ));
        free += leaf_free;
        if leaf_free == 0 {
            full_leaves.push(i);
        }
        progress();
    }
    for j in 0..summary.blocks {
        let blk = block_mut(img, summary.start + j);
        blk.fill(0);
        let bits = &mut blk[..bitmap::TAILED_BITS_BYTES];
        for &leaf in full_leaves.iter().filter(|&&l| l / per == j) {
            bitmap::set_bit(bits, leaf % per, true);
        }
        set_range(bits, leaves.blocks.clamp(j * per, (j + 1) * per) - j * per, per);
        bitmap::seal_tailed(blk, summary.start + j, Some(seed), per);
    }
    free
}

pub(super) fn v1_superblock(plan: &Plan, opts: &MkfsOptions, uuid: [u8; 16], time: i64, feats: Features) -> Superblock {
    let mut sb = Superblock::zeroed();
    fill_common(&mut sb, opts, uuid, time);
    sb.s_feature_compat.set(feats.compat);
    sb.s_feature_incompat.set(feats.incompat);
    sb.s_feature_ro_compat.set(feats.ro_compat);
    sb.set_blocks_count(plan.blocks);
    sb.s_inodes_count.set(plan.inodes);
    sb.s_first_data_block.set(plan.first_data_block as u32);
    sb.s_blocks_per_group.set(BITS_PER_TAILED_BLOCK as u32);
    sb.s_inodes_per_group.set(plan.inodes);
    sb.s_first_ino.set(FIRST_INO_V1);
    sb.s_inode_size.set(inode::LARGE_INODE_SIZE as u16);
    sb.s_min_extra_isize.set(EXTRA_ISIZE_V1);
    sb.s_want_extra_isize.set(EXTRA_ISIZE_V1);
    sb.s_checksum_type = superblock::CSUM_TYPE_CRC32;
    sb.s_checksum_seed.set(checksum::image_seed(&uuid));
    sb.s_def_hash_version = superblock::HASH_CRC32;
    for (i, s) in sb.s_hash_seed.iter_mut().enumerate() {
        s.set(checksum::structure_csum(0x6861_7368, i as u64, &[&uuid]));
    }
    sb.s_vx_layout_version.set(superblock::LAYOUT_VERSION_1);
    let regions = [
        (
            &mut sb.s_vx_block_summary_start,
            &mut sb.s_vx_block_summary_blocks,
            plan.block_summary,
        ),
        (
            &mut sb.s_vx_block_bitmap_start,
            &mut sb.s_vx_block_bitmap_blocks,
            plan.block_bitmap,
        ),
        (
            &mut sb.s_vx_inode_summary_start,
            &mut sb.s_vx_inode_summary_blocks,
            plan.inode_summary,
        ),
        (
            &mut sb.s_vx_inode_bitmap_start,
            &mut sb.s_vx_inode_bitmap_blocks,
            plan.inode_bitmap,
        ),
        (
            &mut sb.s_vx_inode_table_start,
            &mut sb.s_vx_inode_table_blocks,
            plan.inode_table,
        ),
        (&mut sb.s_vx_journal_start, &mut sb.s_vx_journal_blocks, plan.journal),
        (&mut sb.s_vx_event_start, &mut sb.s_vx_event_blocks, plan.events),
    ];
    for (start, blocks, r) in regions {
        start.set(r.start);
        blocks.set(r.blocks);
    }
    sb.s_vx_first_data_block.set(plan.first_data_block);
    sb.s_vx_catalog_ino.set(CATALOG_INO);
    sb
}

pub(super) fn journal_superblock(img: &mut [u8], plan: &Plan, uuid: [u8; 16], seed: u32) {
    let mut js = journal::JournalSuperblock::new_zeroed();
    js.js_magic.set(journal::JOURNAL_SB_MAGIC);
    js.js_version.set(1);
    js.js_block_size.set(BLOCK_SIZE as u32);
    js.js_max_len.set(plan.journal.blocks as u32);
    js.js_first.set(1);
    js.js_sequence.set(1);
    js.js_uuid = uuid;
    let blk = block_mut(img, plan.journal.start);
    blk.fill(0);
    blk[..72].copy_from_slice(js.as_bytes());
    let c = journal::superblock_checksum(blk, plan.journal.start, seed);
    blk[68..72].copy_from_slice(&c.to_le_bytes());
    blk.copy_within(0..72, journal::BACKUP_OFFSET);
}

pub(super) fn event_header(img: &mut [u8], plan: &Plan, seed: u32) {
    let mut h = events::EventRingHeader::new_zeroed();
    h.er_magic.set(events::EVENT_RING_MAGIC);
    h.er_version.set(1);
    h.er_ring_blocks.set(plan.events.blocks - 1);
    h.er_next_seq.set(1);
    h.er_oldest_seq.set(1);
    let blk = block_mut(img, plan.events.start);
    blk.fill(0);
    blk[..72].copy_from_slice(h.as_bytes());
    let c = events::header_checksum(blk, plan.events.start, seed);
    blk[68..72].copy_from_slice(&c.to_le_bytes());
}
