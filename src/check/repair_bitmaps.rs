//! Repair of the allocation state (format-spec/04): block and inode bitmap
//! bits the check found wrong, damaged bitmap blocks resealed, then every
//! summary bit and the superblock's free counters recomputed from the
//! leaves, as the allocator keeps them.
//!
//! Leaked blocks are freed only when the check saw every block in use
//! ([`Knowledge::blocks`]); bits are only ever set otherwise.

use super::repair::{Fix, Knowledge, RepairOutcome};
use super::{Kind, Problem};
use crate::error::{FsError, Result};
use crate::format::bitmap::{self, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::fs::alloc::with_superblock;
use crate::fs::core::Fs;
use crate::fs::inode as ino_io;
use crate::fs::txn::Txn;
use crate::layout::{Geometry, Region};
use std::collections::{BTreeMap, BTreeSet};

/// Bitmap blocks changed per transaction. Why: keeps each transaction a
/// small fraction of even a small journal.
const LEAVES_PER_TXN: usize = 16;

/// Bits `start..end` of a bitmap block to set (true) or clear.
type Run = (u64, u64, bool);

/// Bit changes per bitmap block.
type Changes = BTreeMap<u64, Vec<Run>>;

/// One bitmap's leaves as the repair sees them.
struct Bitmap {
    leaves: Region,
    summary: Region,
    /// Valid bits (blocks or inodes).
    valid: u64,
}

fn bitmaps(g: &Geometry) -> [Bitmap; 2] {
    [
        Bitmap {
            leaves: g.block_bitmap,
            summary: g.block_summary,
            valid: g.blocks_count,
        },
        Bitmap {
            leaves: g.inode_bitmap,
            summary: g.inode_summary,
            valid: g.inodes_count.into(),
        },
    ]
}

/// Record bits `start..end` of `bm` to become `set`, split by leaf.
fn note(changes: &mut Changes, g: &Geometry, bm: &Bitmap, start: u64, end: u64, set: bool) {
    let per = g.bits_per_bitmap_block();
    let mut b = start;
    while b < end.min(bm.valid) {
        let leaf = b / per;
        let stop = ((leaf + 1) * per).min(end);
        if leaf < bm.leaves.blocks {
            let first = b % per;
            changes
                .entry(bm.leaves.start + leaf)
                .or_default()
                .push((first, first + (stop - b), set));
        }
        b = stop;
    }
}

pub(super) fn apply(fs: &Fs, problems: &[&Problem], know: &Knowledge, out: &mut RepairOutcome) {
    let g = fs.geometry();
    let [blocks, inodes] = bitmaps(g);
    let mut changes = Changes::new();
    let mut reseal = BTreeSet::new();
    let mut fixes = Vec::new();
    let mut marked = BTreeSet::new();
    let mut rebuilt = Changes::new();
    let mut counters = false;
    for p in problems {
        let what = match p.kind {
            Kind::LeakedBlocks { start, end } if know.blocks => {
                note(&mut changes, g, &blocks, start, end, false);
                "marked free in the bitmap"
            }
            Kind::UnmarkedBlocks { start, end } => {
                note(&mut changes, g, &blocks, start, end, true);
                "marked in use in the bitmap"
            }
            Kind::LeakedInode { ino } if !g.is_kernel_layout() => {
                note(&mut changes, g, &inodes, u64::from(ino - 1), u64::from(ino), false);
                "marked free in the inode bitmap"
            }
            Kind::UnmarkedInode { ino } if !g.is_kernel_layout() => {
                if marked.insert(ino) {
                    note(&mut changes, g, &inodes, u64::from(ino - 1), u64::from(ino), true);
                    let what = "marked in use in the inode bitmap";
                    fixes.push(Fix::new(format!("inode {ino}"), what));
                }
                continue;
            }
            Kind::BitmapBlock { block } if inodes.leaves.contains(block) => {
                // Its bits may be anything: the inode table says which are in use.
                let leaf = block - inodes.leaves.start;
                match fs.read(|txn, g| inode_leaf_from_table(txn, g, leaf)) {
                    Ok(runs) => rebuilt.insert(block, runs),
                    Err(e) => {
                        out.errors.push(format!("{}: not rebuilt: {e}", p.location));
                        continue;
                    }
                };
                "rebuilt from the inode table"
            }
            Kind::BitmapBlock { block } => {
                reseal.insert(block);
                "resealed (bt_free and checksum recomputed)"
            }
            Kind::SummaryBit { .. } | Kind::FreeBlocks | Kind::FreeInodes => {
                counters = true;
                continue;
            }
            _ => continue,
        };
        fixes.push(Fix::new(p.location.clone(), what));
    }
    if fixes.is_empty() && !counters {
        return;
    }
    for b in &reseal {
        changes.entry(*b).or_default();
    }
    // The rebuilt bits first: single-inode changes in the same leaf follow.
    for (b, runs) in rebuilt {
        changes.entry(b).or_default().splice(0..0, runs);
    }
    let list: Vec<_> = changes.into_iter().collect();
    for chunk in list.chunks(LEAVES_PER_TXN) {
        if let Err(e) = fs.write(|txn, g| write_leaves(txn, g, chunk)) {
            return out.errors.push(format!("bitmaps: not repaired: {e}"));
        }
    }
    match fs.write(|txn, g| summaries_and_counters(txn, g, &reseal)) {
        Ok(done) => {
            out.fixed.extend(fixes);
            // A reported summary bit or counter the changes above already
            // set right was repaired by them: only real changes are listed.
            for p in problems {
                let what = match p.kind {
                    Kind::SummaryBit { inodes, leaf } if done.summary_bits.contains(&(inodes, leaf)) => {
                        "set from its leaf".to_string()
                    }
                    Kind::FreeBlocks if done.free_blocks.0 != done.free_blocks.1 => {
                        format!("s_free_blocks set to {}", done.free_blocks.1)
                    }
                    Kind::FreeInodes if done.free_inodes.0 != done.free_inodes.1 => {
                        format!("s_free_inodes set to {}", done.free_inodes.1)
                    }
                    _ => continue,
                };
                out.fixed.push(Fix::new(p.location.clone(), what));
            }
        }
        Err(e) => out
            .errors
            .push(format!("bitmap summaries and free counters: not repaired: {e}")),
    }
}

/// What the last step changed: summary bits (inode bitmap?, leaf), and
/// each free counter (before, after).
#[derive(Default)]
struct Recounted {
    summary_bits: BTreeSet<(bool, u64)>,
    free_blocks: (u64, u64),
    free_inodes: (u64, u64),
}

/// The bits of inode bitmap leaf `leaf` as the inode table has them: in
/// use when reserved, or when the slot holds anything but a free inode (a
/// freed inode's slot is zeroed; a damaged one stays allocated).
fn inode_leaf_from_table(txn: &Txn<'_>, g: &Geometry, leaf: u64) -> Result<Vec<Run>> {
    let first = leaf * BITS_PER_TAILED_BLOCK;
    let end = (first + BITS_PER_TAILED_BLOCK).min(g.inodes_count.into());
    let mut runs: Vec<Run> = Vec::new();
    for bit in first..end {
        let n = bit as u32 + 1;
        let ino = g.inode_no(n).ok_or(FsError::NotFound)?;
        let off = g.inode_offset(ino);
        let at = (off % BLOCK_SIZE_U64) as usize;
        let zeroed = txn.block(off / BLOCK_SIZE_U64)?[at..at + g.inode_size]
            .iter()
            .all(|&b| b == 0);
        let free = zeroed || ino_io::load(txn, g, ino).is_ok_and(|b| b.base().is_free());
        let used = n < g.first_ino || !free;
        let i = bit - first;
        match runs.last_mut() {
            Some((_, e, s)) if *e == i && *s == used => *e += 1,
            _ => runs.push((i, i + 1, used)),
        }
    }
    Ok(runs)
}

/// Apply each block's bit changes and reseal it.
fn write_leaves(txn: &mut Txn<'_>, g: &Geometry, chunk: &[(u64, Vec<Run>)]) -> Result<()> {
    let kernel = g.is_kernel_layout();
    let len = if kernel { BLOCK_SIZE } else { TAILED_BITS_BYTES };
    for (block_no, runs) in chunk {
        let block = txn.block_mut(*block_no)?;
        for &(start, end, set) in runs {
            for n in start..end {
                bitmap::set_bit(&mut block[..len], n, set);
            }
        }
        if !kernel {
            bitmap::seal_tailed(block, *block_no, g.csum_seed, BITS_PER_TAILED_BLOCK);
        }
    }
    Ok(())
}

/// Every summary bit from its leaf (resealing the summary blocks that
/// change or were damaged), then both free counters from the bitmaps.
fn summaries_and_counters(txn: &mut Txn<'_>, g: &Geometry, reseal: &BTreeSet<u64>) -> Result<Recounted> {
    let per = BITS_PER_TAILED_BLOCK;
    let mut free = [0u64; 2];
    let mut done = Recounted::default();
    for (i, bm) in bitmaps(g).iter().enumerate() {
        if g.is_kernel_layout() {
            break;
        }
        let mut dirty = BTreeSet::new();
        for leaf in 0..bm.leaves.blocks {
            let bits = &txn.block(bm.leaves.start + leaf)?[..TAILED_BITS_BYTES];
            let full = bitmap::count_zeros(bits, per) == 0;
            let valid = bm.valid.saturating_sub(leaf * per).min(per);
            free[i] += bitmap::count_zeros(bits, valid);
            let s = bm.summary.start + leaf / per;
            if s >= bm.summary.end() {
                continue;
            }
            let sbits = &txn.block(s)?[..TAILED_BITS_BYTES];
            if bitmap::test_bit(sbits, leaf % per) != full {
                bitmap::set_bit(&mut txn.block_mut(s)?[..TAILED_BITS_BYTES], leaf % per, full);
                dirty.insert(s);
                done.summary_bits.insert((i == 1, leaf));
            }
        }
        dirty.extend(reseal.iter().filter(|&&b| bm.summary.contains(b)));
        for s in dirty {
            bitmap::seal_tailed(txn.block_mut(s)?, s, g.csum_seed, per);
        }
    }
    if g.is_kernel_layout() {
        let bits = txn.block(g.block_bitmap.start)?;
        free[0] = bitmap::count_zeros(bits, g.blocks_count);
        free[1] = (1..=g.inodes_count)
            .filter_map(|n| g.inode_no(n))
            .filter(|&i| !ino_io::load(txn, g, i).is_ok_and(|b| !b.base().is_free()))
            .count() as u64;
    }
    with_superblock(txn, |sb| {
        done.free_blocks = (sb.free_blocks(), free[0]);
        done.free_inodes = (sb.s_free_inodes.get().into(), free[1]);
        sb.set_free_blocks(free[0]);
        sb.s_free_inodes.set(free[1] as u32);
    })?;
    Ok(done)
}
