//! Writing a file's block map: the kernel layout's 12 direct blocks, or an
//! extent tree (format-spec/05-inodes.md §5.4-5.5).
//!
//! A file's map is edited as a sorted list of [`Mapping`]s and written
//! back whole: runs merge, the tree is rebuilt (in the old tree blocks,
//! more allocated or the surplus freed) with as few levels as the count
//! needs. Simple and always valid; files are usually a handful of extents.

use super::alloc;
use super::inode::InodeBuf;
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::format::extent::{
    self, Extent, ExtentHeader, ExtentIndex, BLOCK_MAX_ENTRIES, EXTENT_MAGIC, MAX_INIT_LEN, ROOT_MAX_ENTRIES,
    TAIL_OFFSET,
};
use crate::format::inode::{DIRECT_BLOCKS, EXTENTS_FL, I_BLOCK_BYTES};
use crate::layout::Geometry;
use crate::read::{collect_mappings, collect_tree_blocks, Mapping, MAX_LOGICAL_BLOCKS};
use zerocopy::{FromZeros, IntoBytes};

/// The file's current map and the tree blocks that hold it.
pub struct FileMap {
    pub runs: Vec<Mapping>,
    pub tree_blocks: Vec<u64>,
}

/// Read the map of an inode as the transaction sees it.
pub fn load(txn: &Txn<'_>, g: &Geometry, ino: &InodeBuf) -> Result<FileMap> {
    let view = ino.view();
    Ok(FileMap {
        runs: collect_mappings(txn, g, ino.ino, &view)?,
        tree_blocks: collect_tree_blocks(txn, g, ino.ino, &view)?,
    })
}

/// Physical block and unwritten flag of logical block `l`, if mapped.
pub fn lookup(runs: &[Mapping], l: u64) -> Option<(u64, bool)> {
    let i = runs.partition_point(|m| m.logical + m.len <= l);
    runs.get(i)
        .filter(|m| m.logical <= l)
        .map(|m| (m.physical + (l - m.logical), m.unwritten))
}

/// Remove logical blocks `from..to`; returns the physical runs released.
pub fn punch(runs: &mut Vec<Mapping>, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut freed = Vec::new();
    let mut out = Vec::with_capacity(runs.len() + 1);
    for m in runs.drain(..) {
        let (s, e) = (m.logical, m.logical + m.len);
        if e <= from || s >= to {
            out.push(m);
            continue;
        }
        if s < from {
            out.push(Mapping { len: from - s, ..m });
        }
        let (cs, ce) = (s.max(from), e.min(to));
        freed.push((m.physical + (cs - s), ce - cs));
        if e > to {
            out.push(Mapping {
                logical: to,
                physical: m.physical + (to - s),
                len: e - to,
                unwritten: m.unwritten,
            });
        }
    }
    *runs = out;
    freed
}

/// Insert a new run (the range must be unmapped) and merge neighbours.
pub fn insert(runs: &mut Vec<Mapping>, m: Mapping) {
    let i = runs.partition_point(|r| r.logical < m.logical);
    runs.insert(i, m);
    normalize(runs);
}

/// Mark logical blocks `from..to` (all mapped) as written.
pub fn mark_written(runs: &mut Vec<Mapping>, from: u64, to: u64) {
    let mut out = Vec::with_capacity(runs.len() + 2);
    for m in runs.drain(..) {
        let (s, e) = (m.logical, m.logical + m.len);
        if !m.unwritten || e <= from || s >= to {
            out.push(m);
            continue;
        }
        let (cs, ce) = (s.max(from), e.min(to));
        if s < cs {
            out.push(Mapping { len: cs - s, ..m });
        }
        out.push(Mapping {
            logical: cs,
            physical: m.physical + (cs - s),
            len: ce - cs,
            unwritten: false,
        });
        if ce < e {
            out.push(Mapping {
                logical: ce,
                physical: m.physical + (ce - s),
                len: e - ce,
                unwritten: true,
            });
        }
    }
    *runs = out;
    normalize(runs);
}

/// Merge runs that continue each other logically and physically.
fn normalize(runs: &mut Vec<Mapping>) {
    let mut out: Vec<Mapping> = Vec::with_capacity(runs.len());
    for m in runs.drain(..) {
        if let Some(last) = out.last_mut() {
            let contiguous = last.logical + last.len == m.logical
                && last.physical + last.len == m.physical
                && last.unwritten == m.unwritten;
            if contiguous {
                last.len += m.len;
                continue;
            }
        }
        out.push(m);
    }
    *runs = out;
}

/// Blocks of data mapped.
pub fn mapped_blocks(runs: &[Mapping]) -> u64 {
    runs.iter().map(|m| m.len).sum()
}

/// Write `runs` back as the inode's map, rebuilding its tree; updates
/// `i_blocks` (data + tree + xattr block).
pub fn store(txn: &mut Txn<'_>, g: &Geometry, ino: &mut InodeBuf, map: &FileMap) -> Result<()> {
    let xattr = u64::from(ino.view().xattr_block() != 0);
    if ino.base().flags() & EXTENTS_FL == 0 {
        store_direct(ino, &map.runs)?;
        ino.set_blocks_512((mapped_blocks(&map.runs) + xattr) * 8);
        return Ok(());
    }
    let extents = to_extents(&map.runs)?;
    let goal = map.runs.first().map_or(g.first_data_block, |m| m.physical);
    // The old tree blocks are rewritten in place and only the surplus is
    // freed: fresh blocks for every rebuild would each land right after
    // the file's data (the goal) and split a file being appended into one
    // extent per write.
    let mut reuse = map.tree_blocks.iter().copied();
    let (root, tree) = build_tree(txn, g, ino.ino.get(), &extents, goal, &mut reuse)?;
    for b in reuse {
        alloc::free_blocks(txn, g, b, 1)?;
    }
    ino.base_mut().i_block.as_mut_bytes().copy_from_slice(&root);
    ino.set_blocks_512((mapped_blocks(&map.runs) + tree + xattr) * 8);
    Ok(())
}

fn store_direct(ino: &mut InodeBuf, runs: &[Mapping]) -> Result<()> {
    let mut direct = [0u32; DIRECT_BLOCKS];
    for m in runs {
        for i in 0..m.len {
            let l = (m.logical + i) as usize;
            let slot = direct.get_mut(l).ok_or(FsError::FileTooBig)?;
            *slot = u32::try_from(m.physical + i).map_err(|_| FsError::FileTooBig)?;
        }
    }
    for (d, v) in ino.base_mut().i_block.iter_mut().zip(direct) {
        d.set(v);
    }
    Ok(())
}

/// Split runs into on-disk extents (at most 32768 blocks, 32767 unwritten).
fn to_extents(runs: &[Mapping]) -> Result<Vec<Extent>> {
    let mut out = Vec::new();
    for m in runs {
        if m.logical + m.len > MAX_LOGICAL_BLOCKS {
            return Err(FsError::FileTooBig);
        }
        let max = if m.unwritten {
            u64::from(MAX_INIT_LEN) - 1
        } else {
            u64::from(MAX_INIT_LEN)
        };
        let mut done = 0;
        while done < m.len {
            let n = (m.len - done).min(max);
            out.push(Extent::new(
                (m.logical + done) as u32,
                m.physical + done,
                n as u16,
                m.unwritten,
            ));
            done += n;
        }
    }
    Ok(out)
}

/// Build the tree bottom-up in blocks taken from `reuse` first, then
/// allocated near `goal`; returns the 48-byte root and the number of tree
/// blocks.
fn build_tree(
    txn: &mut Txn<'_>,
    g: &Geometry,
    ino: u32,
    extents: &[Extent],
    goal: u64,
    reuse: &mut impl Iterator<Item = u64>,
) -> Result<([u8; I_BLOCK_BYTES], u64)> {
    let mut level: Vec<(u32, Vec<u8>)> = extents
        .iter()
        .map(|e| (e.ee_block.get(), e.as_bytes().to_vec()))
        .collect();
    let mut depth = 0u16;
    let mut tree_blocks = 0u64;
    while level.len() > usize::from(ROOT_MAX_ENTRIES) {
        let mut next = Vec::new();
        for chunk in level.chunks(usize::from(BLOCK_MAX_ENTRIES)) {
            let b = match reuse.next() {
                Some(b) => b,
                None => alloc::alloc_blocks(txn, g, goal, 1)?.0,
            };
            tree_blocks += 1;
            let block = txn.block_new(b)?;
            write_node(block, depth, BLOCK_MAX_ENTRIES, chunk);
            let c = extent::tree_block_checksum(block, b, ino, g.csum_seed.unwrap_or(0));
            block[TAIL_OFFSET..TAIL_OFFSET + 4]
                .copy_from_slice(&if g.csum_seed.is_some() { c } else { 0 }.to_le_bytes());
            let mut ix = ExtentIndex::new_zeroed();
            ix.ei_block.set(chunk[0].0);
            ix.ei_leaf_lo.set(b as u32);
            ix.ei_leaf_hi.set((b >> 32) as u16);
            next.push((chunk[0].0, ix.as_bytes().to_vec()));
        }
        level = next;
        depth += 1;
        if depth > extent::MAX_EXTENT_DEPTH {
            return Err(FsError::FileTooBig);
        }
    }
    let mut root = [0u8; I_BLOCK_BYTES];
    write_node(&mut root, depth, ROOT_MAX_ENTRIES, &level);
    Ok((root, tree_blocks))
}

fn write_node(dst: &mut [u8], depth: u16, max: u16, entries: &[(u32, Vec<u8>)]) {
    let mut h = ExtentHeader::new_zeroed();
    h.eh_magic.set(EXTENT_MAGIC);
    h.eh_entries.set(entries.len() as u16);
    h.eh_max.set(max);
    h.eh_depth.set(depth);
    dst[..12].copy_from_slice(h.as_bytes());
    for (i, (_, e)) in entries.iter().enumerate() {
        dst[12 + i * 12..24 + i * 12].copy_from_slice(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(logical: u64, physical: u64, len: u64) -> Mapping {
        Mapping {
            logical,
            physical,
            len,
            unwritten: false,
        }
    }

    #[test]
    fn insert_merges_contiguous_runs() {
        let mut r = vec![m(0, 100, 2)];
        insert(&mut r, m(2, 102, 3));
        assert_eq!(r, vec![m(0, 100, 5)]);
        insert(&mut r, m(10, 200, 1));
        assert_eq!(r.len(), 2);
        assert_eq!(lookup(&r, 4), Some((104, false)));
        assert_eq!(lookup(&r, 5), None);
    }

    #[test]
    fn punch_splits_and_reports_freed_blocks() {
        let mut r = vec![m(0, 100, 10)];
        let freed = punch(&mut r, 3, 5);
        assert_eq!(freed, vec![(103, 2)]);
        assert_eq!(r, vec![m(0, 100, 3), m(5, 105, 5)]);
    }

    #[test]
    fn writing_into_an_unwritten_run_splits_it() {
        let mut r = vec![Mapping {
            logical: 0,
            physical: 50,
            len: 4,
            unwritten: true,
        }];
        mark_written(&mut r, 1, 2);
        assert_eq!(r.len(), 3);
        assert!(!r[1].unwritten && r[1].logical == 1 && r[1].len == 1);
    }

    #[test]
    fn long_runs_split_into_legal_extents() {
        let e = to_extents(&[m(0, 1000, 70_000)]).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e.iter().map(|x| x.len()).sum::<u32>(), 70_000);
    }
}
