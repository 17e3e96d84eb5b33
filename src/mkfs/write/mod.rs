//! Writing the metadata of a new image into the mapped bytes: the kernel
//! module's fixed layout ([`kernel`]) or a v1 image ([`v1`]), whose files
//! are laid out by a [`Builder`] and whose bitmaps, superblock, journal
//! superblock and event-ring header are written by [`regions`].

mod builder;
mod regions;

use super::{MkfsOptions, MkfsSummary, Plan, Progress};
use crate::error::Result;
use crate::format::bitmap::{self, BITS_PER_KERNEL_BLOCK};
use crate::format::dir::{self, rec_len_for};
use crate::format::features::{self, V1_DEFAULT};
use crate::format::inode::{self, InodeBase, S_IFDIR};
use crate::format::superblock::{self, Superblock};
use crate::format::{checksum, BLOCK_SIZE, BLOCK_SIZE_U64, FIRST_INO_KERNEL, FIRST_INO_V1, ROOT_INO};
use crate::layout::{KERNEL_INODES, KERNEL_ROOT_DIR_BLOCK};
use builder::Builder;
use regions::{event_header, journal_superblock, v1_superblock, write_bitmaps};
use zerocopy::{FromZeros, IntoBytes};

fn block_mut(img: &mut [u8], n: u64) -> &mut [u8] {
    let s = n as usize * BLOCK_SIZE;
    &mut img[s..s + BLOCK_SIZE]
}

fn fill_common(sb: &mut Superblock, opts: &MkfsOptions, uuid: [u8; 16], time: i64) {
    sb.s_magic.set(crate::format::VEXFS_MAGIC);
    sb.s_block_size.set(BLOCK_SIZE as u32);
    sb.s_log_block_size.set(2);
    sb.s_max_mnt_count.set(0xFFFF);
    sb.s_state.set(superblock::STATE_VALID);
    sb.s_errors.set(2);
    sb.s_rev_level.set(1);
    sb.s_uuid = uuid;
    let label = opts.label.as_bytes();
    sb.s_volume_name[..label.len().min(16)].copy_from_slice(&label[..label.len().min(16)]);
    sb.s_mkfs_time.set(time as u32);
    sb.s_mkfs_time_hi = (time >> 32) as u8;
    sb.s_wtime.set(time as u32);
    sb.s_wtime_hi = (time >> 32) as u8;
    sb.s_lastcheck.set(time as u32);
}

/// Write a kernel-layout image: the VexFS kernel module's fixed layout.
pub fn kernel(img: &mut [u8], blocks: u64, opts: &MkfsOptions, uuid: [u8; 16], time: i64) -> Result<MkfsSummary> {
    img[..(KERNEL_ROOT_DIR_BLOCK as usize + 1) * BLOCK_SIZE].fill(0);
    let bits = block_mut(img, 1);
    set_range(bits, 0, KERNEL_ROOT_DIR_BLOCK + 1);
    set_range(bits, blocks, BITS_PER_KERNEL_BLOCK);
    let mut root = InodeBase::new_zeroed();
    root.i_mode.set(S_IFDIR | 0o755);
    root.i_links_count.set(2);
    root.i_size.set(BLOCK_SIZE_U64);
    root.i_blocks.set(8);
    for t in [&mut root.i_atime, &mut root.i_ctime, &mut root.i_mtime] {
        t.set(time as u32);
    }
    root.i_block[0].set(KERNEL_ROOT_DIR_BLOCK as u32);
    let off = 2 * BLOCK_SIZE;
    img[off..off + inode::BASE_INODE_SIZE].copy_from_slice(root.as_bytes());
    write_dot_entries(block_mut(img, KERNEL_ROOT_DIR_BLOCK), ROOT_INO, ROOT_INO, false);
    let mut sb = Superblock::zeroed();
    fill_common(&mut sb, opts, uuid, time);
    let free_blocks = blocks - (KERNEL_ROOT_DIR_BLOCK + 1);
    sb.s_blocks_count.set(blocks as u32);
    sb.s_free_blocks.set(free_blocks as u32);
    sb.s_inodes_count.set(KERNEL_INODES as u32);
    sb.s_free_inodes.set(KERNEL_INODES as u32 - 1);
    sb.s_first_data_block.set(KERNEL_ROOT_DIR_BLOCK as u32);
    sb.s_blocks_per_group.set(BITS_PER_KERNEL_BLOCK as u32);
    sb.s_inodes_per_group.set(KERNEL_INODES as u32);
    sb.s_first_ino.set(FIRST_INO_KERNEL);
    sb.s_inode_size.set(inode::BASE_INODE_SIZE as u16);
    sb.update_checksum();
    img[..superblock::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    Ok(MkfsSummary {
        blocks,
        inodes: KERNEL_INODES as u32,
        free_blocks,
        free_inodes: KERNEL_INODES as u32 - 1,
        first_data_block: KERNEL_ROOT_DIR_BLOCK,
        journal_blocks: 0,
        event_blocks: 0,
        uuid,
        features: Vec::new(),
    })
}

/// Set bits `from..to` (LSB first) of a bitmap, whole bytes at a time.
fn set_range(bits: &mut [u8], from: u64, to: u64) {
    let to = to.min(bits.len() as u64 * 8);
    let mut n = from;
    while n < to {
        if n.is_multiple_of(8) && n + 8 <= to {
            let (a, b) = ((n / 8) as usize, (to / 8) as usize);
            bits[a..b].fill(0xff);
            n = to / 8 * 8;
        } else {
            bitmap::set_bit(bits, n, true);
            n += 1;
        }
    }
}

/// "." and ".." filling a fresh directory block (with a tail when checksummed).
fn write_dot_entries(block: &mut [u8], ino: u32, parent: u32, tail: bool) {
    block.fill(0);
    let end = if tail {
        BLOCK_SIZE - dir::DIR_TAIL_SIZE
    } else {
        BLOCK_SIZE
    };
    let dot = rec_len_for(1);
    dir::write_entry(block, 0, ino, dot as u16, 2, b".");
    dir::write_entry(block, dot, parent, (end - dot) as u16, 2, b"..");
}

/// Write a v1 image with the default feature set.
pub fn v1(
    img: &mut [u8],
    plan: &Plan,
    opts: &MkfsOptions,
    uuid: [u8; 16],
    time: i64,
    progress: Progress<'_>,
) -> Result<MkfsSummary> {
    let seed = checksum::image_seed(&uuid);
    let features = opts.v1_features();
    img[..BLOCK_SIZE].fill(0);
    let mut b = Builder {
        img,
        plan,
        seed,
        time,
        owner: opts_owner(opts),
        next_block: plan.first_data_block,
        next_ino: FIRST_INO_V1,
        node_layout: features.node_layout(),
        list_coding: features.list_coding(),
    };
    b.root_dir()?;
    let mut records = Vec::new();
    for (i, spec) in opts.collections.iter().enumerate() {
        records.push(b.collection(i as u32 + 1, spec)?);
    }
    b.catalogue(&records)?;
    let (used_blocks, used_inodes) = (b.next_block, b.next_ino - 1);
    let total = plan.block_bitmap.blocks + plan.inode_bitmap.blocks;
    let mut done = 0;
    let mut tick = || {
        done += 1;
        if done % 64 == 0 || done == total {
            progress(done, total);
        }
    };
    let free_blocks = write_bitmaps(
        img,
        plan.block_bitmap,
        plan.block_summary,
        plan.blocks - 1,
        used_blocks,
        seed,
        &mut tick,
    );
    let free_inodes = write_bitmaps(
        img,
        plan.inode_bitmap,
        plan.inode_summary,
        plan.inodes.into(),
        used_inodes.into(),
        seed,
        &mut tick,
    );
    journal_superblock(img, plan, uuid, seed);
    event_header(img, plan, seed);
    let mut sb = v1_superblock(plan, opts, uuid, time, features);
    sb.set_free_blocks(free_blocks);
    sb.s_free_inodes.set(free_inodes as u32);
    sb.update_checksum();
    img[..superblock::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    // The backup superblock in the last block, never written again.
    let backup = block_mut(img, plan.blocks - 1);
    backup.fill(0);
    backup[..superblock::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    debug_assert!(V1_DEFAULT.has_incompat(features::INCOMPAT_REGIONS));
    Ok(MkfsSummary {
        blocks: plan.blocks,
        inodes: plan.inodes,
        free_blocks,
        free_inodes: free_inodes as u32,
        first_data_block: plan.first_data_block,
        journal_blocks: plan.journal.blocks,
        event_blocks: plan.events.blocks,
        uuid,
        features: features.names(),
    })
}

fn opts_owner(opts: &MkfsOptions) -> (u32, u32) {
    opts.root_owner.unwrap_or((0, 0))
}
