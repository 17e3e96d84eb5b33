//! The hidden files behind collections: growing node and upper files by
//! whole blocks, allocating slots and upper records (format-spec/08
//! §8.5.4, §8.6), and creating a new hidden file.

use super::store::Collection;
use crate::error::{Expected, FsError, Result};
use crate::format::extent;
use crate::format::inode::{InodeNo, EXTENTS_FL};
use crate::format::vector::{NodeHeader, NODE_HEADER_LEN};
use crate::format::BLOCK_SIZE_U64;
use crate::fs::inode::{self as ino_io, now, InodeBuf, Time};
use crate::fs::txn::Txn;
use crate::fs::{alloc, map};
use crate::layout::Geometry;
use crate::read::Mapping;
use zerocopy::{FromZeros, IntoBytes};

/// Most blocks a hidden file grows by at once. Why: growth rebuilds the
/// extent tree, so growing by a fraction of the size keeps that rare,
/// while the cap bounds what one transaction allocates.
const MAX_GROWTH_BLOCKS: u64 = 256;

/// Highest slot id plus one (slot ids are 32-bit on disk).
const MAX_SLOTS: u64 = u32::MAX as u64;

/// Make logical blocks `0..end` of hidden file `ino` mapped; `runs` is
/// its map, updated in place. New blocks are not zeroed here: callers
/// zero a block when its first record is written.
pub fn ensure_mapped(txn: &mut Txn<'_>, g: &Geometry, ino: InodeNo, runs: &mut Vec<Mapping>, end: u64) -> Result<()> {
    let have = runs.last().map_or(0, |m| m.logical + m.len);
    if have >= end {
        return Ok(());
    }
    let want = (end - have).max((have / 8).clamp(1, MAX_GROWTH_BLOCKS));
    let mut b = ino_io::load(txn, g, ino)?;
    let mut fm = map::load(txn, g, &b)?;
    let mut l = have;
    while l < have + want {
        let goal = fm.runs.last().map_or(g.first_data_block, |m| m.physical + m.len);
        let left = (have + want - l).min(u64::from(alloc::MAX_RUN)) as u32;
        let (phys, got) = match alloc::alloc_blocks(txn, g, goal, left) {
            Ok(r) => r,
            // Out of space after the blocks that were needed: keep what we have.
            Err(FsError::NoSpace) if l >= end => break,
            Err(e) => return Err(e),
        };
        map::insert(
            &mut fm.runs,
            Mapping {
                logical: l,
                physical: phys,
                len: got.into(),
                unwritten: false,
            },
        );
        l += u64::from(got);
    }
    map::store(txn, g, &mut b, &fm)?;
    b.set_size(b.size().max(l * BLOCK_SIZE_U64));
    ino_io::store(txn, g, &b)?;
    *runs = fm.runs;
    Ok(())
}

/// Create a hidden regular file (links 1, in no directory, extent-mapped).
pub fn create_hidden(txn: &mut Txn<'_>, g: &Geometry) -> Result<InodeNo> {
    let n = alloc::alloc_inode(txn, g, g.first_ino)?;
    let ino = InodeNo::new(n, g.inodes_count).ok_or(FsError::NoSpace)?;
    let mut b = InodeBuf::new(ino, g);
    let base = b.base_mut();
    base.i_mode.set(0o100600);
    base.i_links_count.set(1);
    base.i_flags.set(EXTENTS_FL);
    extent::init_root(base.i_block.as_mut_bytes());
    let t = now();
    base.i_generation.set(t.nsec ^ (t.sec as u32));
    for w in [Time::Access, Time::Change, Time::Modify, Time::Birth] {
        b.set_time(w, t);
    }
    ino_io::store(txn, g, &b)?;
    Ok(ino)
}

impl Collection {
    /// A slot for a new vector: the head of the free chain, or a new slot
    /// at the end of the node file. The caller writes the whole record.
    pub fn alloc_slot(&mut self, txn: &mut Txn<'_>, g: &Geometry) -> Result<u32> {
        let head = self.header.ch_free_head.get();
        if head == 0 {
            return self.append_slot(txn, g);
        }
        let s = (head - 1) as u32;
        let node = self.node(txn, s)?;
        let next = node.header().n_next_free.get();
        if node.header().n_flags != 0 || u64::from(next) > self.slots() {
            let at = self.record_offset(s);
            return Err(FsError::corrupt(
                "node record",
                at + 12,
                "n_next_free",
                Expected::Known,
                next.into(),
            ));
        }
        self.header.ch_free_head.set(next.into());
        Ok(s)
    }

    /// A new slot at the end of the node file (growing it).
    pub fn append_slot(&mut self, txn: &mut Txn<'_>, g: &Geometry) -> Result<u32> {
        let s = self.slots();
        if s >= MAX_SLOTS {
            return Err(FsError::NoSpace);
        }
        let s = s as u32;
        let (blocks, first_new) = self.slot_blocks(s);
        let mut runs = std::mem::take(&mut self.node_runs);
        let before = runs.clone();
        let r = ensure_mapped(txn, g, self.node_ino, &mut runs, blocks.end);
        let changed = before != runs;
        self.node_runs = runs;
        if changed {
            self.node_runs_changed();
        }
        r?;
        for l in first_new..blocks.end {
            self.block_new(txn, super::store::block_of(&self.node_runs, l, "node file")?)?;
        }
        self.header.ch_slots.set(u64::from(s) + 1);
        Ok(s)
    }

    /// Put slot `s` (not live, not named by any list) on the free chain
    /// (format-spec/08 §8.5.4).
    pub fn free_slot(&mut self, txn: &mut Txn<'_>, s: u32) -> Result<()> {
        let mut rec = vec![0u8; self.geo.stride as usize];
        let mut h = NodeHeader::new_zeroed();
        h.n_next_free.set(self.header.ch_free_head.get() as u32);
        rec[..NODE_HEADER_LEN].copy_from_slice(h.as_bytes());
        self.put_record(txn, s, &mut rec)?;
        self.header.ch_free_head.set(u64::from(s) + 1);
        Ok(())
    }

    /// `levels` consecutive upper records (levels 1..=levels of one node);
    /// returns the first. v1 writers always append (§8.6).
    pub fn alloc_upper(&mut self, txn: &mut Txn<'_>, g: &Geometry, levels: u8) -> Result<u32> {
        let Some(ino) = self.upper_ino else {
            return Err(FsError::corrupt(
                "collection header",
                0,
                "ch_upper_ino",
                Expected::Known,
                0,
            ));
        };
        let first = self.header.ch_upper_records.get();
        let end = first.checked_add(levels.into()).ok_or(FsError::NoSpace)?;
        for r in first..end {
            let (l, starts) = self.upper_blocks(r);
            let mut runs = std::mem::take(&mut self.upper_runs);
            let res = ensure_mapped(txn, g, ino, &mut runs, l + 1);
            self.upper_runs = runs;
            res?;
            if starts {
                self.block_new(txn, super::store::block_of(&self.upper_runs, l, "upper file")?)?;
            }
        }
        self.header.ch_upper_records.set(end);
        Ok(first)
    }
}
