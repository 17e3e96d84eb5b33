//! Block and inode allocation through a transaction
//! (format-spec/04-allocation.md).
//!
//! Feature images: tailed bitmap leaves plus a summary bitmap (one bit per
//! leaf, set = full), so finding space skips full leaves without reading
//! them. The kernel layout: one 32768-bit block bitmap, inodes free when
//! `i_mode` is 0. Every change keeps `bt_free`, the checksums, the summary
//! and the superblock's free counters exact, in the same transaction.

use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::format::bitmap::{self, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use crate::format::superblock::Superblock;
use crate::layout::{Geometry, Region};
use zerocopy::FromBytes;

/// Longest run one allocation returns (an extent holds at most 32768).
pub const MAX_RUN: u32 = 32768;

/// Change the superblock inside a transaction (checksum kept current).
pub fn with_superblock<R>(txn: &mut Txn<'_>, f: impl FnOnce(&mut Superblock) -> R) -> Result<R> {
    let block = txn.block_mut(0)?;
    let (sb, _) = Superblock::mut_from_prefix(block).map_err(|_| FsError::Invalid("superblock view".into()))?;
    let r = f(sb);
    sb.update_checksum();
    Ok(r)
}

/// One bitmap (blocks or inodes) as the allocator sees it.
struct BitmapRef<'g> {
    g: &'g Geometry,
    leaves: Region,
    summary: Region,
    /// Number of valid bits (blocks or inodes).
    valid: u64,
}

impl BitmapRef<'_> {
    fn kernel(&self) -> bool {
        self.g.is_kernel_layout()
    }

    fn per_leaf(&self) -> u64 {
        if self.kernel() {
            bitmap::BITS_PER_KERNEL_BLOCK
        } else {
            BITS_PER_TAILED_BLOCK
        }
    }

    fn bits_len(&self) -> usize {
        if self.kernel() {
            crate::format::BLOCK_SIZE
        } else {
            TAILED_BITS_BYTES
        }
    }

    /// Bitmap block `n` (a leaf or a summary block), its checksum and
    /// `bt_free` verified first (format-spec/04 §4.8): bits read from a
    /// damaged block would hand out blocks in use, and resealing it on the
    /// next change would make the damage look valid. A private copy (one
    /// this transaction or a staged one changed and resealed) is not
    /// checked again: it never left memory, and checking it on every
    /// allocation was a fifth of a file-create profile.
    fn verified<'t>(&self, txn: &'t Txn<'_>, n: u64) -> Result<&'t [u8]> {
        let block = txn.block(n)?;
        if !self.kernel() && !txn.has_copy(n) {
            bitmap::parse_tailed(block, n, self.g.csum_seed, BITS_PER_TAILED_BLOCK)?;
        }
        Ok(block)
    }

    /// Is leaf `i` marked full in the summary? `checked` remembers the
    /// summary block verified last, so a scan verifies each one once.
    fn leaf_full(&self, txn: &Txn<'_>, i: u64, checked: &mut Option<u64>) -> Result<bool> {
        if self.kernel() {
            return Ok(false);
        }
        let per = BITS_PER_TAILED_BLOCK;
        let n = self.summary.start + i / per;
        let block = if *checked == Some(n) {
            txn.block(n)?
        } else {
            let b = self.verified(txn, n)?;
            *checked = Some(n);
            b
        };
        Ok(bitmap::test_bit(&block[..TAILED_BITS_BYTES], i % per))
    }

    /// Set or clear bits `first..first+len` (all in one leaf); returns how
    /// many changed. Reseals the leaf and updates the summary.
    fn set_run(&self, txn: &mut Txn<'_>, first: u64, len: u64, used: bool) -> Result<u64> {
        let per = self.per_leaf();
        let leaf = first / per;
        let leaf_block = self.leaves.start + leaf;
        let sblock_no = self.summary.start + leaf / per;
        self.verified(txn, leaf_block)?;
        if !self.kernel() {
            self.verified(txn, sblock_no)?;
        }
        let bits_len = self.bits_len();
        let block = txn.block_mut(leaf_block)?;
        let mut changed = 0;
        for n in first..first + len {
            if bitmap::set_bit(&mut block[..bits_len], n % per, used) != used {
                changed += 1;
            }
        }
        if self.kernel() {
            return Ok(changed);
        }
        bitmap::seal_tailed(block, leaf_block, self.g.csum_seed, per);
        let full = u32::from_le_bytes([
            block[TAILED_BITS_BYTES],
            block[TAILED_BITS_BYTES + 1],
            block[TAILED_BITS_BYTES + 2],
            block[TAILED_BITS_BYTES + 3],
        ]) == 0;
        let sblock = txn.block_mut(sblock_no)?;
        bitmap::set_bit(&mut sblock[..TAILED_BITS_BYTES], leaf % per, full);
        bitmap::seal_tailed(sblock, sblock_no, self.g.csum_seed, per);
        Ok(changed)
    }

    /// Free bits among the valid ones, every leaf verified.
    fn count_free(&self, txn: &Txn<'_>) -> Result<u64> {
        let per = self.per_leaf();
        let mut free = 0;
        for leaf in 0..self.valid.div_ceil(per) {
            let block = self.verified(txn, self.leaves.start + leaf)?;
            free += bitmap::count_zeros(&block[..self.bits_len()], (self.valid - leaf * per).min(per));
        }
        Ok(free)
    }

    /// Find a free run of up to `want` bits at or after `goal`, wrapping
    /// around once. Leaves the summary marks full are not read.
    fn find(&self, txn: &Txn<'_>, goal: u64, want: u64) -> Result<Option<(u64, u64)>> {
        let per = self.per_leaf();
        let leaves = self.valid.div_ceil(per);
        let goal = if goal >= self.valid { 0 } else { goal };
        let first_leaf = goal / per;
        let mut checked = None;
        for step in 0..=leaves {
            let leaf = (first_leaf + step) % leaves;
            if self.leaf_full(txn, leaf, &mut checked)? {
                continue;
            }
            let leaf_limit = (self.valid - leaf * per).min(per);
            let (from, limit) = match step {
                0 => (goal % per, leaf_limit),
                s if s == leaves => (0, (goal % per).min(leaf_limit)),
                _ => (0, leaf_limit),
            };
            let block = self.verified(txn, self.leaves.start + leaf)?;
            let bits = &block[..self.bits_len()];
            if let Some(start) = bitmap::find_zero(bits, from, limit) {
                let mut end = start + 1;
                while end < leaf_limit && end - start < want && !bitmap::test_bit(bits, end) {
                    end += 1;
                }
                return Ok(Some((leaf * per + start, end - start)));
            }
        }
        Ok(None)
    }
}

fn block_bitmap(g: &Geometry) -> BitmapRef<'_> {
    BitmapRef {
        g,
        leaves: g.block_bitmap,
        summary: g.block_summary,
        valid: g.blocks_count,
    }
}

fn inode_bitmap(g: &Geometry) -> BitmapRef<'_> {
    BitmapRef {
        g,
        leaves: g.inode_bitmap,
        summary: g.inode_summary,
        valid: g.inodes_count.into(),
    }
}

/// Allocate up to `want` contiguous blocks, preferring `goal`; returns
/// (first block, count >= 1). Blocks freed by transactions that are not
/// durable yet are skipped ([`Txn::with_quarantine`]). ENOSPC when the
/// image is full.
pub fn alloc_blocks(txn: &mut Txn<'_>, g: &Geometry, goal: u64, want: u32) -> Result<(u64, u32)> {
    let bm = block_bitmap(g);
    let mut goal = goal.max(g.first_data_block);
    let want = u64::from(want.clamp(1, MAX_RUN));
    // Why bounded: every retry skips at least one quarantined block.
    let max_tries = txn.quarantined_len() + 1;
    for _ in 0..max_tries {
        let (start, len) = bm.find(txn, goal, want)?.ok_or(FsError::NoSpace)?;
        if start < g.first_data_block {
            return Err(FsError::NoSpace);
        }
        let len = match txn.first_quarantined(start, start + len) {
            None => len,
            Some(q) if q > start => q - start,
            Some(_) => {
                goal = quarantined_run_end(txn, start);
                continue;
            }
        };
        let changed = bm.set_run(txn, start, len, true)?;
        with_superblock(txn, |sb| sb.set_free_blocks(sb.free_blocks().saturating_sub(changed)))?;
        return Ok((start, len as u32));
    }
    Err(FsError::NoSpace)
}

/// The first block after `start` (a quarantined block) that is not
/// quarantined (the loop is bounded by the quarantine's size).
fn quarantined_run_end(txn: &Txn<'_>, start: u64) -> u64 {
    let mut b = start + 1;
    while txn.first_quarantined(b, b + 1).is_some() {
        b += 1;
    }
    b
}

/// Free `len` blocks from `start` (they must lie in the data area).
pub fn free_blocks(txn: &mut Txn<'_>, g: &Geometry, start: u64, len: u64) -> Result<()> {
    let bm = block_bitmap(g);
    let per = bm.per_leaf();
    let mut b = start;
    let end = start + len;
    let mut changed = 0;
    while b < end {
        if !g.is_data_block(b) {
            return Err(FsError::corrupt(
                "block reference",
                b * 4096,
                "block",
                crate::error::Expected::AtLeast(g.first_data_block),
                b,
            ));
        }
        let run = (per - b % per).min(end - b);
        changed += bm.set_run(txn, b, run, false)?;
        for x in b..b + run {
            txn.forget(x);
        }
        b += run;
    }
    with_superblock(txn, |sb| sb.set_free_blocks(sb.free_blocks() + changed))?;
    Ok(())
}

/// Set the superblock's free block and inode counts from the bitmaps
/// (tailed bitmaps: the sum of their verified `bt_free`, less the padding
/// bits past the last valid one, which mkfs leaves clear).
pub fn recount_free(txn: &mut Txn<'_>, g: &Geometry) -> Result<()> {
    if g.is_kernel_layout() {
        return Ok(());
    }
    let blocks = block_bitmap(g).count_free(txn)?;
    let inodes = inode_bitmap(g).count_free(txn)?;
    with_superblock(txn, |sb| {
        sb.set_free_blocks(blocks);
        sb.s_free_inodes.set(inodes as u32);
    })
}

/// Allocate an inode number at or after `goal` (kernel layout: the first
/// inode whose i_mode is 0). The caller initialises the inode.
pub fn alloc_inode(txn: &mut Txn<'_>, g: &Geometry, goal: u32) -> Result<u32> {
    let n = if g.is_kernel_layout() {
        kernel_free_inode(txn, g)?
    } else {
        let bm = inode_bitmap(g);
        let goal = u64::from(goal.max(g.first_ino) - 1);
        let (bit, _) = bm.find(txn, goal, 1)?.ok_or(FsError::NoSpace)?;
        if bit + 1 < u64::from(g.first_ino) {
            return Err(FsError::NoSpace);
        }
        bm.set_run(txn, bit, 1, true)?;
        bit as u32 + 1
    };
    with_superblock(txn, |sb| sb.s_free_inodes.set(sb.s_free_inodes.get().saturating_sub(1)))?;
    Ok(n)
}

fn kernel_free_inode(txn: &Txn<'_>, g: &Geometry) -> Result<u32> {
    for n in g.first_ino..=g.inodes_count {
        let off = g.inode_offset(crate::format::inode::InodeNo::new(n, g.inodes_count).ok_or(FsError::NoSpace)?);
        let block = txn.block(off / 4096)?;
        let at = (off % 4096) as usize;
        if block[at..at + 2] == [0, 0] {
            return Ok(n);
        }
    }
    Err(FsError::NoSpace)
}

/// Release inode `n` (the caller has already cleared or zeroed it).
pub fn free_inode(txn: &mut Txn<'_>, g: &Geometry, n: u32) -> Result<()> {
    if !g.is_kernel_layout() {
        inode_bitmap(g).set_run(txn, u64::from(n - 1), 1, false)?;
    }
    with_superblock(txn, |sb| sb.s_free_inodes.set(sb.s_free_inodes.get() + 1))?;
    Ok(())
}
